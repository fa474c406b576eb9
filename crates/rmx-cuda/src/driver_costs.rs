//! The host time of the driver calls every device op makes (a kernel launch, a
//! stream-ordered allocation and free, an idle-stream synchronization), measured in a
//! loop: the floor under rmx's per-op host time, which `rmx-lm benchmark --profile`
//! prints beside the per-primitive host times of a decode step.

use crate::device::{driver_err, the_gpu};
use crate::memory::DeviceAlloc;
use cudarc::driver::LaunchConfig;
use rmx_core::Result;
use std::time::Instant;

/// Microseconds per empty-kernel launch, per 4 KiB allocation + free, and per
/// synchronization of an idle stream, each the mean of `reps` calls.
pub fn driver_costs(reps: usize) -> Result<(f64, f64, f64)> {
    let gpu = the_gpu()?;
    gpu.bind()?;
    let src = "extern \"C\" __global__ void rmx_empty(long long n) { if (n < 0) asm(\"trap;\"); }";
    let f = gpu.kernel("rmx_empty", || src.to_string())?;
    let reps = reps.max(1);
    let per = |t: Instant| t.elapsed().as_secs_f64() * 1e6 / reps as f64;
    let cfg = LaunchConfig {
        grid_dim: (1, 1, 1),
        block_dim: (32, 1, 1),
        shared_mem_bytes: 0,
    };
    let n = 1i64;
    gpu.synchronize()?;
    let t = Instant::now();
    for _ in 0..reps {
        let mut b = gpu.launch(&f);
        b.arg(&n);
        unsafe { b.launch(cfg) }.map_err(|e| driver_err("launching rmx_empty", e))?;
    }
    let launch = per(t);
    gpu.synchronize()?;
    let t = Instant::now();
    for _ in 0..reps {
        drop(DeviceAlloc::new(gpu, 4096)?);
    }
    let alloc = per(t);
    gpu.synchronize()?;
    let t = Instant::now();
    for _ in 0..reps {
        gpu.synchronize()?;
    }
    Ok((launch, alloc, per(t)))
}
