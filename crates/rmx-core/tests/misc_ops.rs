//! The smaller MLX names through the Rust API: unique, windows, minmax, depends, fp8,
//! stft/istft, cross_entropy, get_array_buffer_size and export_to_dot (values from
//! NumPy's definitions; the Python suite compares them with MLX).

use rmx_core::ops::{self, fast_cross_entropy, stft};
use rmx_core::{Array, Dtype, Error};

fn f32s(v: &[f32], shape: &[usize]) -> Array {
    Array::from_slice(v, shape).unwrap()
}

#[test]
fn unique_with_index_inverse_counts() {
    let a = Array::from_slice(&[2i32, 1, 2, 3, 1], &[5]).unwrap();
    let fill = Array::from_slice(&[0i32], &[]).unwrap();
    let out = ops::unique(&a, 4, true, true, true, Some(&fill)).unwrap();
    assert_eq!(out[0].to_vec::<i32>().unwrap(), vec![1, 2, 3, 0]);
    assert_eq!(out[1].to_vec::<u32>().unwrap(), vec![1, 0, 3, 1]);
    assert_eq!(out[2].to_vec::<u32>().unwrap(), vec![1, 0, 1, 2, 0]);
    assert_eq!(out[3].to_vec::<i32>().unwrap(), vec![2, 2, 1, 0]);
    // truncated: the inverse is clamped, the counts of dropped values are gone
    let out = ops::unique(&a, 2, false, true, true, None).unwrap();
    assert_eq!(out[1].to_vec::<u32>().unwrap(), vec![1, 0, 1, 1, 0]);
    assert_eq!(out[2].to_vec::<i32>().unwrap(), vec![2, 2]);
    assert!(matches!(
        ops::unique(&a, -1, false, false, false, None),
        Err(Error::Value(_))
    ));
}

#[test]
fn windows_match_numpy_definitions() {
    let m = 7usize;
    let pi = std::f64::consts::PI;
    let han = ops::hanning(m as i64).unwrap().to_vec::<f32>().unwrap();
    let bla = ops::blackman(m as i64).unwrap().to_vec::<f32>().unwrap();
    for n in 0..m {
        let x = 2.0 * pi * n as f64 / (m - 1) as f64;
        assert!((han[n] as f64 - (0.5 - 0.5 * x.cos())).abs() < 1e-6);
        let b = 0.42 - 0.5 * x.cos() + 0.08 * (2.0 * x).cos();
        assert!((bla[n] as f64 - b).abs() < 1e-6);
    }
    assert_eq!(ops::bartlett(0).unwrap().shape(), &[0]);
    assert_eq!(ops::hamming(1).unwrap().to_vec::<f32>().unwrap(), vec![1.0]);
}

#[test]
fn minmax_and_depends() {
    let a = f32s(&[3.0, -1.0, 2.0, 5.0], &[2, 2]);
    let (lo, hi) = ops::minmax(&a, Some(&[1]), false).unwrap();
    assert_eq!(lo.to_vec::<f32>().unwrap(), vec![-1.0, 2.0]);
    assert_eq!(hi.to_vec::<f32>().unwrap(), vec![3.0, 5.0]);
    let dep = ops::add(&a, &a).unwrap();
    let out = ops::depends(std::slice::from_ref(&a), std::slice::from_ref(&dep)).unwrap();
    out[0].eval().unwrap();
    assert!(dep.is_evaluated());
    assert_eq!(
        rmx_core::allocator::get_array_buffer_size(&[out[0].clone(), a.clone()]).unwrap(),
        16
    );
    assert!(ops::depends(&[], &[a]).is_err());
}

#[test]
fn fp8_codes() {
    let x = f32s(&[0.0, 1.0, -1.0, 448.0, 1e9, f32::NAN, 0.001953125], &[7]);
    let c = ops::to_fp8(&x).unwrap();
    assert_eq!(
        c.to_vec::<u8>().unwrap(),
        vec![0, 56, 184, 126, 126, 126, 1]
    );
    let back = ops::from_fp8(&c, Dtype::Float32).unwrap();
    assert_eq!(
        back.to_vec::<f32>().unwrap(),
        vec![0.0, 1.0, -1.0, 448.0, 448.0, 448.0, 0.001953125]
    );
    assert!(ops::to_fp8(&Array::from_slice(&[1i32], &[1]).unwrap()).is_err());
}

#[test]
fn stft_round_trip_both_paths() {
    let n = 200;
    let sig: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 97) as f32 / 97.0 - 0.5)
        .collect();
    let x = f32s(&sig, &[n]);
    // hop 4 divides n_fft 16 (block path), hop 5 does not (gather path)
    for hop in [4i64, 5] {
        let w = ops::hanning(16).unwrap();
        let s = stft::stft(
            &x,
            16,
            Some(hop),
            None,
            Some(&w),
            true,
            "reflect",
            "backward",
            None,
        )
        .unwrap();
        assert_eq!(s.shape(), &[9, 1 + (n + 16 - 16) / hop as usize]);
        let y = stft::istft(
            &s,
            Some(16),
            Some(hop),
            None,
            Some(&w),
            true,
            "backward",
            None,
            Some(n as i64),
        )
        .unwrap();
        let got = y.to_vec::<f32>().unwrap();
        for (g, e) in got.iter().zip(&sig) {
            assert!((g - e).abs() < 1e-4, "hop {hop}: {g} vs {e}");
        }
    }
}

#[test]
fn cross_entropy_values() {
    let l = f32s(&[1.0, 2.0, 3.0, 0.0, 0.0, 0.0], &[2, 3]);
    let t = Array::from_slice(&[2i32, -3], &[2]).unwrap();
    let ce = fast_cross_entropy::cross_entropy(&l, &t).unwrap();
    let lse = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
    let v = ce.to_vec::<f32>().unwrap();
    assert!((v[0] as f64 - (lse - 3.0)).abs() < 1e-6);
    assert!((v[1] as f64 - 3f64.ln()).abs() < 1e-6);
}

#[test]
fn export_to_dot_lists_each_primitive_once() {
    let a = f32s(&[1.0, 2.0], &[2]);
    let b = ops::exp(&ops::add(&a, &a).unwrap()).unwrap();
    let c = ops::multiply(&b, &b).unwrap();
    let dot = rmx_core::graph_dot::export_to_dot(&[c], &[("a".into(), a)]);
    assert!(dot.starts_with("digraph {\n{ rank=source; \"a\"; }\n"));
    assert_eq!(dot.matches("shape=rectangle").count(), 3);
    assert!(dot.contains("label =\"Exp\""));
    assert_eq!(dot.matches("rank=sink").count(), 1);
    assert!(dot.ends_with('}'));
}
