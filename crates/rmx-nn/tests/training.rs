//! value_and_grad over modules and short training runs.

mod common;

use common::{arr, assert_close, vals};
use rmx_core::ops::{self, random};
use rmx_core::{value_err, Array};
use rmx_nn::losses::{cross_entropy, mse_loss, CrossEntropy, Reduction};
use rmx_nn::optim::{Adam, Optimizer, Sgd};
use rmx_nn::{value_and_grad, Layer, Linear, Module};

fn mse(model: &Linear, b: &[Array]) -> rmx_core::Result<Array> {
    mse_loss(&model.forward(&b[0])?, &b[1], Reduction::Mean)
}

fn set(l: &mut Linear, w: &[f32], b: &[f32]) {
    let p = [
        ("weight".to_string(), arr(w, &[1, w.len()])),
        ("bias".to_string(), arr(b, &[1])),
    ];
    l.update(&p.into_iter().collect()).unwrap();
}

#[test]
fn gradients_of_mse_match_the_analytic_formula() {
    let mut l = Linear::new(2, 1, true).unwrap();
    set(&mut l, &[0.5, -1.0], &[0.25]);
    let x = [[1.0f64, 2.0], [-1.0, 0.5], [3.0, -2.0]];
    let y = [1.0f64, 0.0, -1.0];
    let xa = arr(&[1.0, 2.0, -1.0, 0.5, 3.0, -2.0], &[3, 2]);
    let ya = arr(&[1.0, 0.0, -1.0], &[3, 1]);
    let vg = value_and_grad(mse);
    let (loss, grads) = vg(&mut l, &[xa, ya]).unwrap();
    // d/dw mean((w.x + b - y)^2) = 2/n sum r x, d/db = 2/n sum r
    let r: Vec<f64> = x
        .iter()
        .zip(y)
        .map(|(xi, yi)| 0.5 * xi[0] - xi[1] + 0.25 - yi)
        .collect();
    let n = 3.0;
    assert_close(
        &vals(&loss),
        &[r.iter().map(|v| v * v).sum::<f64>() / n],
        1e-6,
    );
    let gw: Vec<f64> = (0..2)
        .map(|k| 2.0 / n * r.iter().zip(&x).map(|(r, xi)| r * xi[k]).sum::<f64>())
        .collect();
    assert_close(&vals(&grads["weight"]), &gw, 1e-6);
    assert_close(
        &vals(&grads["bias"]),
        &[2.0 / n * r.iter().sum::<f64>()],
        1e-6,
    );
    assert_eq!(grads.len(), 2);
    // the model holds its own parameters again afterwards
    assert_eq!(vals(&l.weight), [0.5, -1.0]);
}

#[test]
fn frozen_parameters_get_no_gradient() {
    let mut l = Linear::new(2, 1, true).unwrap();
    l.freeze_keys(&["bias"]).unwrap();
    let vg = value_and_grad(mse);
    let (_, grads) = vg(&mut l, &[arr(&[1.0, 2.0], &[1, 2]), arr(&[0.0], &[1, 1])]).unwrap();
    assert_eq!(grads.keys().collect::<Vec<_>>(), ["weight"]);
}

#[test]
fn a_failing_loss_leaves_the_model_intact() {
    let mut l = Linear::new(2, 1, true).unwrap();
    let before = vals(&l.weight);
    let vg = value_and_grad(|_: &Linear, _: &[Array]| Err(value_err!("boom")));
    let e = vg(&mut l, &[]).unwrap_err();
    assert_eq!(e.to_string(), "boom");
    assert_eq!(vals(&l.weight), before);
    // a non-scalar loss is an error from the transform
    let vg = value_and_grad(|m: &Linear, b: &[Array]| m.forward(&b[0]));
    assert!(vg(&mut l, &[arr(&[1.0, 2.0, 3.0, 4.0], &[2, 2])]).is_err());
}

fn train(opt: &mut impl Optimizer, steps: usize) -> (f32, f32) {
    random::seed(11).unwrap();
    // two Gaussian blobs, labels by sign of x0 + x1
    let x = random::normal(&[64, 2], rmx_core::Dtype::Float32, None, None, None).unwrap();
    let s = ops::sum(&x, Some(&[-1]), false).unwrap();
    let y = ops::astype(
        &ops::greater(&s, &Array::scalar(0.0)).unwrap(),
        rmx_core::Dtype::Int32,
    )
    .unwrap();
    let mut model = Linear::new(2, 2, true).unwrap();
    let vg = value_and_grad(|m: &Linear, b: &[Array]| {
        let opts = CrossEntropy {
            reduction: Reduction::Mean,
            ..Default::default()
        };
        cross_entropy(&m.forward(&b[0])?, &b[1], &opts)
    });
    let mut first = None;
    let mut last = 0.0;
    for _ in 0..steps {
        let (loss, g) = vg(&mut model, &[x.clone(), y.clone()]).unwrap();
        opt.update(&mut model, &g).unwrap();
        let mut live: Vec<Array> = model.parameters().into_iter().map(|p| p.1).collect();
        live.extend(opt.state_arrays());
        rmx_core::eval(&live).unwrap();
        last = loss.item_as::<f32>().unwrap();
        first.get_or_insert(last);
    }
    (first.unwrap(), last)
}

#[test]
fn loss_decreases_with_sgd_and_adam() {
    let (a, b) = train(&mut Sgd::new(0.5).momentum(0.9), 40);
    assert!(b < 0.5 * a, "sgd: {a} -> {b}");
    let (a, b) = train(&mut Adam::new(0.05), 40);
    assert!(b < 0.5 * a, "adam: {a} -> {b}");
}
