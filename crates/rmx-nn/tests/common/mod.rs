//! Helpers shared by the rmx-nn integration tests.
#![allow(dead_code)]

use rmx_core::Array;

pub fn arr(values: &[f32], shape: &[usize]) -> Array {
    Array::from_slice(values, shape).expect("array")
}

pub fn vals(a: &Array) -> Vec<f32> {
    a.to_vec::<f32>().expect("float32 values")
}

pub fn assert_close(got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "length: got {got:?}, want {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (*g as f64 - w).abs();
        assert!(
            err <= tol * (1.0 + w.abs()),
            "element {i}: got {g}, want {w} (got {got:?}, want {want:?})"
        );
    }
}

/// A fresh temporary directory for one test.
pub fn tmp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rmx-nn-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
