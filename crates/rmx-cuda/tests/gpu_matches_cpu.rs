//! The CUDA backend from Rust: ops placed on the GPU agree with the same ops on the CPU.
//! Without a CUDA device (CI) every test returns at once after saying so; the Python
//! suite (python/tests/test_gpu.py) covers the op families in depth on the GPU machine.

use rmx_core::ops;
use rmx_core::stream::with_device;
use rmx_core::{Array, Device, Result};

fn gpu_or_skip() -> bool {
    let ok = rmx_cuda::init() || rmx_core::device::is_available(Device::GPU);
    if !ok {
        eprintln!("no CUDA device: skipping");
    }
    ok
}

fn random(shape: &[usize], seed: u64) -> Result<Array> {
    let key = ops::random::key(seed)?;
    with_device(Device::CPU, || {
        ops::random::uniform01(shape, rmx_core::Dtype::Float32, Some(&key))
    })?
}

fn on<R>(device: Device, f: impl FnOnce() -> Result<R>) -> Result<R> {
    with_device(device, f)?
}

#[test]
fn without_a_device_the_gpu_is_unavailable_or_registered() {
    let registered = rmx_cuda::init() || rmx_core::device::is_available(Device::GPU);
    assert_eq!(registered, rmx_cuda::is_available());
}

#[test]
fn elementwise_reduce_and_matmul_agree() -> Result<()> {
    if !gpu_or_skip() {
        return Ok(());
    }
    let a = random(&[64, 48], 1)?;
    let b = random(&[48, 32], 2)?;
    let run = |d: Device| {
        on(d, || {
            let y = ops::exp(&ops::multiply(&a, &Array::scalar(2.0f32))?)?;
            let s = ops::sum(&y, Some(&[0]), false)?;
            let m = ops::matmul(&a, &b)?;
            Ok((s.to_vec::<f32>()?, m.to_vec::<f32>()?))
        })
    };
    let (gs, gm) = run(Device::GPU)?;
    let (cs, cm) = run(Device::CPU)?;
    for (g, c) in gs.iter().zip(&cs).chain(gm.iter().zip(&cm)) {
        assert!((g - c).abs() <= 1e-4 * c.abs().max(1.0), "{g} vs {c}");
    }
    Ok(())
}

#[test]
fn a_device_result_reads_back_on_the_host() -> Result<()> {
    if !gpu_or_skip() {
        return Ok(());
    }
    let x = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3])?;
    let y = on(Device::GPU, || ops::add(&x, &x))?;
    assert_eq!(y.to_vec::<f32>()?, vec![2.0, 4.0, 6.0]);
    let z = on(Device::CPU, || ops::multiply(&y, &y))?;
    assert_eq!(z.to_vec::<f32>()?, vec![4.0, 16.0, 36.0]);
    Ok(())
}
