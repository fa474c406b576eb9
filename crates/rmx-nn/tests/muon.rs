//! Muon against its formula computed independently on the host in f64 (mlx.optimizers.Muon
//! 0.32.4: momentum, Nesterov, weight decay; Newton–Schulz on rank >= 2 updates).

mod common;

use common::{arr, assert_close, vals};
use rmx_nn::optim::{Muon, Optimizer};
use rmx_nn::Params;

fn one(name: &str, values: &[f64], shape: &[usize]) -> Params {
    let f: Vec<f32> = values.iter().map(|x| *x as f32).collect();
    [(name.to_string(), arr(&f, shape))].into_iter().collect()
}

/// Row-major `(r, k) @ (k, c)`.
fn mm(a: &[f64], b: &[f64], r: usize, k: usize, c: usize) -> Vec<f64> {
    let mut out = vec![0.0; r * c];
    for i in 0..r {
        for j in 0..c {
            out[i * c + j] = (0..k).map(|t| a[i * k + t] * b[t * c + j]).sum();
        }
    }
    out
}

fn transpose(a: &[f64], r: usize, c: usize) -> Vec<f64> {
    (0..c * r).map(|i| a[(i % r) * c + i / r]).collect()
}

/// MLX's `_zeropower_via_newtonschulz5` of the `(r, c)` matrix `x`.
fn newton_schulz5(x: &[f64], r: usize, c: usize, steps: usize) -> Vec<f64> {
    let (a, b, cc) = (3.4445, -4.7750, 2.0315);
    let tall = r > c;
    let (mut x, r, c) = if tall {
        (transpose(x, r, c), c, r)
    } else {
        (x.to_vec(), r, c)
    };
    let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt() + 1e-7;
    x.iter_mut().for_each(|v| *v /= norm);
    for _ in 0..steps {
        let am = mm(&x, &transpose(&x, r, c), r, c, r);
        let a2 = mm(&am, &am, r, r, r);
        let bm: Vec<f64> = am.iter().zip(&a2).map(|(p, q)| b * p + cc * q).collect();
        let bx = mm(&bm, &x, r, r, c);
        x = x.iter().zip(&bx).map(|(p, q)| a * p + q).collect();
    }
    if tall {
        transpose(&x, r, c)
    } else {
        x
    }
}

/// Three steps of Muon on one parameter of `shape` from `w0` with gradients `grads`,
/// in f64; returns the parameter after each step.
fn muon_ref(
    w0: &[f64],
    shape: &[usize],
    grads: &[Vec<f64>],
    (lr, mu, wd, nesterov, ns): (f64, f64, f64, bool, usize),
) -> Vec<Vec<f64>> {
    let (mut w, mut v) = (w0.to_vec(), vec![0.0; w0.len()]);
    let mut out = Vec::new();
    for g in grads {
        let g: Vec<f64> = g.iter().zip(&w).map(|(g, w)| g + wd * w).collect();
        for i in 0..v.len() {
            v[i] = mu * v[i] + (1.0 - mu) * g[i];
        }
        let mut u: Vec<f64> = if nesterov {
            g.iter()
                .zip(&v)
                .map(|(g, v)| g * (1.0 - mu) + v * mu)
                .collect()
        } else {
            v.clone()
        };
        let mut step = lr;
        if shape.len() >= 2 {
            let rows = shape[0];
            u = newton_schulz5(&u, rows, u.len() / rows, ns);
            let r = shape.len();
            step *= (shape[r - 2] as f64 / shape[r - 1] as f64).max(1.0).sqrt();
        }
        w = w.iter().zip(&u).map(|(w, u)| w - step * u).collect();
        out.push(w.clone());
    }
    out
}

fn seq(n: usize, seed: f64) -> Vec<f64> {
    // deterministic, non-degenerate values in (-1, 1)
    (0..n).map(|i| ((i as f64 + 1.0) * seed).sin()).collect()
}

fn check(opt: &mut Muon, shape: &[usize], hyper: (f64, f64, f64, bool, usize)) {
    let n: usize = shape.iter().product();
    let w0 = seq(n, 0.7);
    let grads: Vec<Vec<f64>> = (0..3).map(|t| seq(n, 1.3 + t as f64)).collect();
    let want = muon_ref(&w0, shape, &grads, hyper);
    let mut params = one("w", &w0, shape);
    for (g, want) in grads.iter().zip(&want) {
        params = opt.apply_gradients(&one("w", g, shape), &params).unwrap();
        assert_close(&vals(&params["w"]), want, 1e-4);
    }
    assert_eq!(opt.state("w").map(|s| s.len()), Some(1));
}

#[test]
fn muon_defaults_are_mlx_s() {
    let m = Muon::new(0.02);
    assert_eq!(
        (m.momentum, m.weight_decay, m.nesterov, m.ns_steps),
        (0.95, 0.01, true, 5)
    );
    assert_eq!(m.learning_rate(), 0.02);
}

#[test]
fn muon_on_a_vector_is_momentum_sgd() {
    let h = (0.1, 0.95, 0.01, true, 5);
    check(&mut Muon::new(0.1), &[5], h);
    let h = (0.1, 0.8, 0.0, false, 5);
    check(
        &mut Muon::new(0.1)
            .momentum(0.8)
            .weight_decay(0.0)
            .nesterov(false),
        &[5],
        h,
    );
}

#[test]
fn muon_orthogonalizes_wide_and_tall_matrices() {
    check(&mut Muon::new(0.05), &[3, 5], (0.05, 0.95, 0.01, true, 5));
    // tall: iterated on the transpose, and the rate scaled by sqrt(rows / cols)
    check(&mut Muon::new(0.05), &[6, 2], (0.05, 0.95, 0.01, true, 5));
    let opt = Muon::new(0.05).momentum(0.9).nesterov(false).ns_steps(2);
    check(&mut opt.clone(), &[4, 4], (0.05, 0.9, 0.01, false, 2));
}

#[test]
fn muon_flattens_higher_ranks_and_scales_by_their_last_axes() {
    // (2, 3, 1): orthogonalized as (2, 3), rate scaled by sqrt(3 / 1) as MLX does
    check(
        &mut Muon::new(0.05),
        &[2, 3, 1],
        (0.05, 0.95, 0.01, true, 5),
    );
    check(
        &mut Muon::new(0.05),
        &[3, 2, 2, 2],
        (0.05, 0.95, 0.01, true, 5),
    );
}
