//! Losses against host-computed values, and MLX's argument checks.

mod common;

use common::{arr, assert_close, vals};
use rmx_core::Array;
use rmx_nn::losses::{
    binary_cross_entropy, cross_entropy, l1_loss, mse_loss, nll_loss, CrossEntropy, Reduction,
};

const LOGITS: [f32; 6] = [2.0, 1.0, 0.1, -0.5, 0.3, 1.2];

fn targets() -> Array {
    Array::from_slice(&[0i32, 2], &[2]).unwrap()
}

/// Per-row `logsumexp - logit[target]` and the mean logit, in f64.
fn ce_ref(smoothing: f64) -> Vec<f64> {
    LOGITS
        .chunks(3)
        .zip([0usize, 2])
        .map(|(r, t)| {
            let r: Vec<f64> = r.iter().map(|v| *v as f64).collect();
            let lse = r.iter().map(|v| v.exp()).sum::<f64>().ln();
            let mean = r.iter().sum::<f64>() / 3.0;
            lse - (1.0 - smoothing) * r[t] - smoothing * mean
        })
        .collect()
}

#[test]
fn cross_entropy_with_indices_and_reductions() {
    let logits = arr(&LOGITS, &[2, 3]);
    let none = cross_entropy(&logits, &targets(), &CrossEntropy::default()).unwrap();
    assert_close(&vals(&none), &ce_ref(0.0), 1e-6);
    let want = ce_ref(0.0);
    let mean = CrossEntropy {
        reduction: Reduction::Mean,
        ..Default::default()
    };
    assert_close(
        &vals(&cross_entropy(&logits, &targets(), &mean).unwrap()),
        &[(want[0] + want[1]) / 2.0],
        1e-6,
    );
    let sum = CrossEntropy {
        reduction: Reduction::Sum,
        ..Default::default()
    };
    assert_close(
        &vals(&cross_entropy(&logits, &targets(), &sum).unwrap()),
        &[want[0] + want[1]],
        1e-6,
    );
}

#[test]
fn cross_entropy_label_smoothing_and_weights() {
    let logits = arr(&LOGITS, &[2, 3]);
    let w = arr(&[0.5, 2.0], &[2]);
    let opts = CrossEntropy {
        label_smoothing: 0.2,
        weights: Some(&w),
        ..Default::default()
    };
    let want: Vec<f64> = ce_ref(0.2)
        .iter()
        .zip([0.5, 2.0])
        .map(|(l, w)| l * w)
        .collect();
    assert_close(
        &vals(&cross_entropy(&logits, &targets(), &opts).unwrap()),
        &want,
        1e-6,
    );
    let bad = CrossEntropy {
        label_smoothing: 1.0,
        ..Default::default()
    };
    assert!(cross_entropy(&logits, &targets(), &bad).is_err());
    let w3 = arr(&[1.0; 3], &[3]);
    let bad_w = CrossEntropy {
        weights: Some(&w3),
        ..Default::default()
    };
    assert!(cross_entropy(&logits, &targets(), &bad_w).is_err());
}

#[test]
fn cross_entropy_with_probabilities_and_axis() {
    let logits = arr(&LOGITS, &[2, 3]);
    let probs = arr(&[1.0, 0.0, 0.0, 0.0, 0.0, 1.0], &[2, 3]);
    let l = cross_entropy(&logits, &probs, &CrossEntropy::default()).unwrap();
    assert_close(&vals(&l), &ce_ref(0.0), 1e-6);
    // classes along axis 0 of the transposed logits
    let lt = rmx_core::ops::transpose(&logits, None).unwrap();
    let opts = CrossEntropy {
        axis: 0,
        ..Default::default()
    };
    assert_close(
        &vals(&cross_entropy(&lt, &targets(), &opts).unwrap()),
        &ce_ref(0.0),
        1e-6,
    );
    let bad_t = Array::from_slice(&[0i32, 1, 2], &[3]).unwrap();
    let e = cross_entropy(&logits, &bad_t, &CrossEntropy::default()).unwrap_err();
    assert!(e.to_string().contains("does not match"), "{e}");
    let far = CrossEntropy {
        axis: 2,
        ..Default::default()
    };
    assert!(cross_entropy(&logits, &targets(), &far).is_err());
}

#[test]
fn regression_losses() {
    let p = arr(&[1.0, 2.0, -1.0], &[3]);
    let t = arr(&[0.5, 2.0, 1.0], &[3]);
    assert_close(
        &vals(&mse_loss(&p, &t, Reduction::Mean).unwrap()),
        &[(0.25 + 0.0 + 4.0) / 3.0],
        1e-6,
    );
    assert_close(
        &vals(&mse_loss(&p, &t, Reduction::None).unwrap()),
        &[0.25, 0.0, 4.0],
        1e-6,
    );
    assert_close(
        &vals(&l1_loss(&p, &t, Reduction::Sum).unwrap()),
        &[2.5],
        1e-6,
    );
    assert!(mse_loss(&p, &arr(&[1.0], &[1]), Reduction::Mean).is_err());
    assert_eq!(Reduction::from_name("sum").unwrap(), Reduction::Sum);
    assert!(Reduction::from_name("avg").is_err());
}

#[test]
fn binary_cross_entropy_logits_and_probabilities() {
    let z = [0.5f64, -1.0, 2.0];
    let t = [1.0f64, 0.0, 1.0];
    let logits = arr(&[0.5, -1.0, 2.0], &[3]);
    let targets = arr(&[1.0, 0.0, 1.0], &[3]);
    let want: Vec<f64> = z
        .iter()
        .zip(t)
        .map(|(z, t)| z.exp().ln_1p() - z * t)
        .collect();
    let got = binary_cross_entropy(&logits, &targets, None, true, Reduction::None).unwrap();
    assert_close(&vals(&got), &want, 1e-6);
    let probs: Vec<f32> = z
        .iter()
        .map(|z| (1.0 / (1.0 + (-z).exp())) as f32)
        .collect();
    let got =
        binary_cross_entropy(&arr(&probs, &[3]), &targets, None, false, Reduction::Mean).unwrap();
    assert_close(&vals(&got), &[want.iter().sum::<f64>() / 3.0], 1e-5);
}

#[test]
fn nll_picks_negative_log_probabilities() {
    let lp = arr(&[-0.1, -2.0, -3.0, -1.5, -0.5, -0.7], &[2, 3]);
    let l = nll_loss(&lp, &targets(), -1, Reduction::None).unwrap();
    assert_close(&vals(&l), &[0.1, 0.7], 1e-6);
    let l = nll_loss(&lp, &targets(), -1, Reduction::Mean).unwrap();
    assert_close(&vals(&l), &[0.4], 1e-6);
}
