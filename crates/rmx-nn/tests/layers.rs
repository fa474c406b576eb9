//! Layers and activations against host-computed formulas.

mod common;

use common::{arr, assert_close, vals};
use rmx_core::ops::random;
use rmx_core::Array;
use rmx_nn::activations as act;
use rmx_nn::{
    Activation, Dropout, Embedding, Layer, LayerNorm, Linear, Module, RMSNorm, Sequential,
};

const X: [f32; 6] = [0.5, -1.0, 2.0, 1.5, 0.0, -0.25];

#[test]
fn linear_forward_is_x_wt_plus_b() {
    let mut l = Linear::new(3, 2, true).unwrap();
    let w = [0.1f32, 0.2, 0.3, -0.4, 0.5, -0.6];
    let b = [0.01f32, -0.02];
    let p = [
        ("weight".to_string(), arr(&w, &[2, 3])),
        ("bias".to_string(), arr(&b, &[2])),
    ];
    l.update(&p.into_iter().collect()).unwrap();
    let y = l.forward(&arr(&X, &[2, 3])).unwrap();
    assert_eq!(y.shape(), [2, 2]);
    let mut want = Vec::new();
    for r in 0..2 {
        for o in 0..2 {
            let dot: f64 = (0..3)
                .map(|k| X[r * 3 + k] as f64 * w[o * 3 + k] as f64)
                .sum();
            want.push(dot + b[o] as f64);
        }
    }
    assert_close(&vals(&y), &want, 1e-6);
}

#[test]
fn linear_init_is_uniform_within_inverse_sqrt_fan_in() {
    random::seed(3).unwrap();
    let l = Linear::new(16, 32, true).unwrap();
    assert_eq!(l.weight.shape(), [32, 16]);
    assert_eq!(l.bias.as_ref().unwrap().shape(), [32]);
    let w = vals(&l.weight);
    let k = 0.25f32;
    assert!(w.iter().all(|v| v.abs() <= k));
    // U(-k, k) has variance k^2/3
    let var = w.iter().map(|v| (v * v) as f64).sum::<f64>() / w.len() as f64;
    assert!((var - (k * k) as f64 / 3.0).abs() < 0.004, "variance {var}");
    assert!(Linear::new(0, 3, true).is_err());
    let nb = Linear::new(4, 2, false).unwrap();
    assert_eq!(nb.parameters().len(), 1);
}

#[test]
fn embedding_takes_rows_and_has_normal_init() {
    random::seed(4).unwrap();
    let e = Embedding::new(2000, 16).unwrap();
    let w = vals(&e.weight);
    let var = w.iter().map(|v| (v * v) as f64).sum::<f64>() / w.len() as f64;
    assert!((var - 1.0 / 16.0).abs() < 0.005, "variance {var}");
    let idx = Array::from_slice(&[3i32, 0, 3], &[3]).unwrap();
    let y = e.forward(&idx).unwrap();
    assert_eq!(y.shape(), [3, 16]);
    let y = vals(&y);
    assert_eq!(&y[0..16], &w[48..64]);
    assert_eq!(&y[16..32], &w[0..16]);
    assert!(e.forward(&arr(&[1.0], &[1])).is_err());
    let lin = e.as_linear(&arr(&[1.0; 16], &[1, 16])).unwrap();
    assert_eq!(lin.shape(), [1, 2000]);
}

fn rows(x: &[f32], d: usize) -> Vec<Vec<f64>> {
    x.chunks(d)
        .map(|r| r.iter().map(|v| *v as f64).collect())
        .collect()
}

#[test]
fn layer_norm_normalizes_last_axis() {
    let mut ln = LayerNorm::new(3, 1e-5, true, true).unwrap();
    assert_eq!(ln.parameters().len(), 2);
    let p = [
        ("weight".to_string(), arr(&[1.0, 2.0, 0.5], &[3])),
        ("bias".to_string(), arr(&[0.0, 1.0, -1.0], &[3])),
    ];
    ln.update(&p.into_iter().collect()).unwrap();
    let y = ln.forward(&arr(&X, &[2, 3])).unwrap();
    let mut want = Vec::new();
    for r in rows(&X, 3) {
        let mean = r.iter().sum::<f64>() / 3.0;
        let var = r.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 3.0;
        for (i, v) in r.iter().enumerate() {
            let n = (v - mean) / (var + 1e-5).sqrt();
            want.push(n * [1.0, 2.0, 0.5][i] + [0.0, 1.0, -1.0][i]);
        }
    }
    assert_close(&vals(&y), &want, 1e-5);
    assert_eq!(
        LayerNorm::new(3, 1e-5, false, true)
            .unwrap()
            .parameters()
            .len(),
        0
    );
    assert_eq!(
        LayerNorm::new(3, 1e-5, true, false)
            .unwrap()
            .parameters()
            .len(),
        1
    );
    assert!(LayerNorm::new(3, 0.0, true, true).is_err());
    assert!(ln.forward(&arr(&X, &[3, 2])).is_err());
}

#[test]
fn rms_norm_scales_by_root_mean_square() {
    let rn = RMSNorm::new(3, 1e-5).unwrap();
    let y = rn.forward(&arr(&X, &[2, 3])).unwrap();
    let mut want = Vec::new();
    for r in rows(&X, 3) {
        let ms = r.iter().map(|v| v * v).sum::<f64>() / 3.0;
        want.extend(r.iter().map(|v| v / (ms + 1e-5).sqrt()));
    }
    assert_close(&vals(&y), &want, 1e-5);
}

#[test]
fn dropout_zeroes_and_rescales_in_training_only() {
    random::seed(5).unwrap();
    let mut d = Dropout::new(0.25).unwrap();
    let y = vals(&d.forward(&arr(&vec![1.0; 20000], &[20000])).unwrap());
    let zeros = y.iter().filter(|v| **v == 0.0).count() as f64 / y.len() as f64;
    assert!((zeros - 0.25).abs() < 0.02, "dropped fraction {zeros}");
    assert!(y
        .iter()
        .all(|v| *v == 0.0 || (*v - 1.0 / 0.75).abs() < 1e-6));
    d.train(false);
    assert_eq!(vals(&d.forward(&arr(&[2.0; 4], &[4])).unwrap()), [2.0; 4]);
    assert!(Dropout::new(1.0).is_err());
    assert!(Dropout::new(-0.1).is_err());
}

#[test]
fn sequential_names_entries_by_index_and_chains() {
    let s = Sequential::new()
        .push(Linear::new(3, 4, true).unwrap())
        .push(Activation::new(act::relu))
        .push(Linear::new(4, 2, false).unwrap());
    let names: Vec<String> = s.parameters().into_iter().map(|p| p.0).collect();
    assert_eq!(
        names,
        ["layers.0.weight", "layers.0.bias", "layers.2.weight"]
    );
    let x = arr(&X, &[2, 3]);
    let p = s.parameter_map();
    let h = act::relu(
        &rmx_core::ops::add(
            &rmx_core::ops::matmul(
                &x,
                &rmx_core::ops::transpose(&p["layers.0.weight"], None).unwrap(),
            )
            .unwrap(),
            &p["layers.0.bias"],
        )
        .unwrap(),
    )
    .unwrap();
    let want = rmx_core::ops::matmul(
        &h,
        &rmx_core::ops::transpose(&p["layers.2.weight"], None).unwrap(),
    )
    .unwrap();
    let want: Vec<f64> = vals(&want).iter().map(|v| *v as f64).collect();
    assert_close(&vals(&s.forward(&x).unwrap()), &want, 1e-6);
}

#[test]
fn activations_match_reference_values() {
    let x = arr(&[-1.0, 0.0, 1.0, 2.0], &[4]);
    assert_eq!(vals(&act::relu(&x).unwrap()), [0.0, 0.0, 1.0, 2.0]);
    // Phi(1) = 0.841344746..., Phi(2) = 0.977249868...
    assert_close(
        &vals(&act::gelu(&x).unwrap()),
        &[
            -0.158655253931457,
            0.0,
            0.841344746068543,
            1.954499736103642,
        ],
        1e-6,
    );
    let tanh_gelu = |v: f64| {
        0.5 * v * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (v + 0.044715 * v.powi(3))).tanh())
    };
    let want: Vec<f64> = [-1.0, 0.0, 1.0, 2.0]
        .iter()
        .map(|v| tanh_gelu(*v))
        .collect();
    assert_close(&vals(&act::gelu_approx(&x).unwrap()), &want, 1e-6);
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let want: Vec<f64> = [-1.0, 0.0, 1.0, 2.0].iter().map(|v| v * sig(*v)).collect();
    assert_close(&vals(&act::silu(&x).unwrap()), &want, 1e-6);
    let want: Vec<f64> = [-1.0f64, 0.0, 1.0, 2.0]
        .iter()
        .map(|v| v.exp().ln_1p())
        .collect();
    assert_close(&vals(&act::softplus(&x).unwrap()), &want, 1e-6);
    let want: Vec<f64> = [-1.0f64, 0.0, 1.0, 2.0].iter().map(|v| v.tanh()).collect();
    assert_close(&vals(&act::tanh(&x).unwrap()), &want, 1e-6);
    let ls = vals(&act::log_softmax(&x, -1).unwrap());
    let lse = [-1.0f64, 0.0, 1.0, 2.0]
        .iter()
        .map(|v| v.exp())
        .sum::<f64>()
        .ln();
    let want: Vec<f64> = [-1.0, 0.0, 1.0, 2.0].iter().map(|v| v - lse).collect();
    assert_close(&ls, &want, 1e-6);
    assert_close(
        &vals(&act::leaky_relu(&x, 0.1).unwrap()),
        &[-0.1, 0.0, 1.0, 2.0],
        1e-7,
    );
}
