//! Optimizers and schedules against their formulas, computed independently on the host
//! in f64 (MLX's update rules as documented in mlx.optimizers).

mod common;

use common::{arr, assert_close, vals};
use rmx_nn::optim::{
    clip_grad_norm, AdaDelta, Adafactor, Adagrad, Adam, AdamW, Adamax, Lion, Optimizer, RMSprop,
    Schedule, Sgd,
};
use rmx_nn::{Module, Params};

const W0: [f64; 3] = [1.0, -2.0, 0.5];
const GRADS: [[f64; 3]; 3] = [[0.1, -0.2, 0.3], [-0.4, 0.5, 0.05], [0.25, 0.1, -0.6]];

fn map(name: &str, v: &[f64]) -> Params {
    let f: Vec<f32> = v.iter().map(|x| *x as f32).collect();
    [(name.to_string(), arr(&f, &[v.len()]))]
        .into_iter()
        .collect()
}

/// Runs three steps of `opt` on one parameter and returns its values after each step.
fn run(opt: &mut impl Optimizer) -> Vec<Vec<f32>> {
    let mut params = map("w", &W0);
    let mut out = Vec::new();
    for g in GRADS {
        params = opt.apply_gradients(&map("w", &g), &params).unwrap();
        out.push(vals(&params["w"]));
    }
    assert_eq!(opt.step(), 3);
    out
}

fn check(got: Vec<Vec<f32>>, want: Vec<[f64; 3]>) {
    for (g, w) in got.iter().zip(&want) {
        assert_close(g, w, 1e-5);
    }
}

fn sgd_ref(
    lr: &dyn Fn(usize) -> f64,
    mom: f64,
    wd: f64,
    damp: f64,
    nesterov: bool,
) -> Vec<[f64; 3]> {
    let (mut w, mut v) = (W0, [0.0; 3]);
    let mut out = Vec::new();
    for (t, g) in GRADS.iter().enumerate() {
        for i in 0..3 {
            let gi = g[i] + wd * w[i];
            let upd = if mom <= 0.0 {
                gi
            } else {
                v[i] = mom * v[i] + if damp > 0.0 { (1.0 - damp) * gi } else { gi };
                if nesterov {
                    gi + mom * v[i]
                } else {
                    v[i]
                }
            };
            w[i] -= lr(t) * upd;
        }
        out.push(w);
    }
    out
}

fn adam_ref(lr: f64, b1: f64, b2: f64, eps: f64, bc: bool, wd: f64) -> Vec<[f64; 3]> {
    let (mut w, mut m, mut v) = (W0, [0.0; 3], [0.0; 3]);
    let mut out = Vec::new();
    for (t, g) in GRADS.iter().enumerate() {
        let t = (t + 1) as i32;
        for i in 0..3 {
            w[i] *= 1.0 - lr * wd;
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            if bc {
                let c1 = lr / (1.0 - b1.powi(t));
                let c2 = 1.0 / (1.0 - b2.powi(t)).sqrt();
                w[i] -= c1 * m[i] / (v[i].sqrt() * c2 + eps);
            } else {
                w[i] -= lr * m[i] / (v[i].sqrt() + eps);
            }
        }
        out.push(w);
    }
    out
}

#[test]
fn sgd_plain() {
    check(
        run(&mut Sgd::new(0.1)),
        sgd_ref(&|_| 0.1, 0.0, 0.0, 0.0, false),
    );
}

#[test]
fn sgd_momentum_weight_decay_dampening() {
    let mut o = Sgd::new(0.05)
        .momentum(0.9)
        .weight_decay(0.01)
        .dampening(0.2);
    check(run(&mut o), sgd_ref(&|_| 0.05, 0.9, 0.01, 0.2, false));
    assert_eq!(o.state("w").unwrap().len(), 1);
}

#[test]
fn sgd_nesterov() {
    let mut o = Sgd::new(0.05).momentum(0.8).nesterov(true);
    check(run(&mut o), sgd_ref(&|_| 0.05, 0.8, 0.0, 0.0, true));
}

#[test]
fn sgd_nesterov_needs_momentum() {
    let mut o = Sgd::new(0.1).nesterov(true);
    let e = o
        .apply_gradients(&map("w", &[1.0]), &map("w", &[1.0]))
        .unwrap_err();
    assert!(e.to_string().contains("Nesterov"), "{e}");
    assert_eq!(o.step(), 0);
}

#[test]
fn sgd_follows_a_schedule() {
    let sched = Schedule::linear_schedule(0.1, 0.0, 4).unwrap();
    let mut o = Sgd::new(sched);
    check(
        run(&mut o),
        sgd_ref(&|t| 0.1 - 0.025 * t as f64, 0.0, 0.0, 0.0, false),
    );
}

#[test]
fn adam_default() {
    check(
        run(&mut Adam::new(0.01)),
        adam_ref(0.01, 0.9, 0.999, 1e-8, false, 0.0),
    );
}

#[test]
fn adam_bias_correction() {
    let mut o = Adam::new(0.01).betas(0.8, 0.99).bias_correction(true);
    check(run(&mut o), adam_ref(0.01, 0.8, 0.99, 1e-8, true, 0.0));
}

#[test]
fn adamw_decays_weights() {
    let mut o = AdamW::new(0.01).weight_decay(0.1);
    check(run(&mut o), adam_ref(0.01, 0.9, 0.999, 1e-8, false, 0.1));
    // MLX's default weight decay is 0.01
    check(
        run(&mut AdamW::new(0.02)),
        adam_ref(0.02, 0.9, 0.999, 1e-8, false, 0.01),
    );
}

#[test]
fn adam_rejects_bad_betas() {
    let mut o = Adam::new(0.1).betas(1.0, 0.9);
    let e = o
        .apply_gradients(&map("w", &[1.0]), &map("w", &[1.0]))
        .unwrap_err();
    assert!(e.to_string().contains("beta1"), "{e}");
}

#[test]
fn gradients_must_name_parameters_with_their_shapes() {
    let mut o = Sgd::new(0.1);
    let e = o
        .apply_gradients(&map("v", &[1.0]), &map("w", &[1.0]))
        .unwrap_err();
    assert!(e.to_string().contains("\"v\""), "{e}");
    let e = o
        .apply_gradients(&map("w", &[1.0, 2.0]), &map("w", &[1.0]))
        .unwrap_err();
    assert!(e.to_string().contains("shape"), "{e}");
}

#[test]
fn update_writes_into_the_model() {
    let mut lin = rmx_nn::Linear::new(3, 1, false).unwrap();
    let w0 = vals(&lin.weight);
    let grads: Params = [("weight".to_string(), arr(&[1.0, 2.0, 3.0], &[1, 3]))]
        .into_iter()
        .collect();
    Sgd::new(0.5).update(&mut lin, &grads).unwrap();
    let want: Vec<f64> = w0
        .iter()
        .zip([1.0, 2.0, 3.0])
        .map(|(w, g)| *w as f64 - 0.5 * g)
        .collect();
    assert_close(&vals(&lin.weight), &want, 1e-6);
    assert_eq!(lin.parameters().len(), 1);
}

#[test]
fn schedules_match_their_formulas() {
    let pi = std::f64::consts::PI;
    let c = Schedule::cosine_decay(0.1, 10, 0.01).unwrap();
    for s in [0u64, 3, 10, 15] {
        let k = s.min(10) as f64;
        let want = 0.01 + 0.5 * (1.0 + (pi * k / 10.0).cos()) * (0.1 - 0.01);
        assert!((c.at(s) - want).abs() < 1e-12, "cosine at {s}");
    }
    let l = Schedule::linear_schedule(0.0, 1.0, 4).unwrap();
    assert_eq!([l.at(0), l.at(2), l.at(4), l.at(9)], [0.0, 0.5, 1.0, 1.0]);
    let st = Schedule::step_decay(1.0, 0.5, 3).unwrap();
    assert_eq!(
        [st.at(0), st.at(2), st.at(3), st.at(7)],
        [1.0, 1.0, 0.5, 0.25]
    );
    let e = Schedule::exponential_decay(2.0, 0.5);
    assert_eq!(e.at(3), 0.25);
    let warm = Schedule::linear_schedule(0.0, 0.1, 10).unwrap();
    let j = Schedule::join(vec![warm, c], vec![10]).unwrap();
    assert!((j.at(5) - 0.05).abs() < 1e-12);
    assert!((j.at(10) - 0.1).abs() < 1e-12);
    assert!((j.at(13) - Schedule::cosine_decay(0.1, 10, 0.01).unwrap().at(3)).abs() < 1e-12);
    assert!(Schedule::join(vec![], vec![]).is_err());
    assert!(Schedule::join(vec![Schedule::Constant(0.1)], vec![3]).is_err());
    assert!(Schedule::cosine_decay(0.1, 0, 0.0).is_err());
    assert!(Schedule::step_decay(0.1, 0.5, 0).is_err());
}

#[test]
fn invalid_schedules_built_by_hand_are_errors_not_panics() {
    let bad = Schedule::Step {
        init: 0.1,
        decay_rate: 0.5,
        step_size: 0,
    };
    assert!(bad.at(3).is_nan());
    let mut o = Sgd::new(bad);
    let e = o
        .apply_gradients(&map("w", &[1.0]), &map("w", &[1.0]))
        .unwrap_err();
    assert!(e.to_string().contains("step_size"), "{e}");
    let empty = Schedule::Join {
        schedules: vec![],
        boundaries: vec![],
    };
    assert!(empty.at(0).is_nan());
    assert!(Sgd::new(empty)
        .apply_gradients(&map("w", &[1.0]), &map("w", &[1.0]))
        .is_err());
}

#[test]
fn clip_grad_norm_scales_only_large_gradients() {
    let mut g = map("a", &[3.0, 0.0]);
    g.extend(map("b", &[4.0]));
    let (clipped, norm) = clip_grad_norm(&g, 1.0).unwrap();
    assert_close(&vals(&norm), &[5.0], 1e-6);
    let s = 1.0 / (5.0 + 1e-6);
    assert_close(&vals(&clipped["a"]), &[3.0 * s, 0.0], 1e-6);
    assert_close(&vals(&clipped["b"]), &[4.0 * s], 1e-6);
    let (same, _) = clip_grad_norm(&g, 10.0).unwrap();
    assert_close(&vals(&same["b"]), &[4.0], 1e-6);
    assert!(clip_grad_norm(&g, -1.0).is_err());
}

/// One coordinate's update `f(w, g, state, t)`, t counting from 1.
type Rule<'a> = &'a dyn Fn(&mut f64, f64, &mut [f64], i32);

/// The three-step reference for a per-coordinate rule.
fn coordinate_ref(nstate: usize, f: Rule) -> Vec<[f64; 3]> {
    let mut w = W0;
    let mut st = vec![vec![0.0; nstate]; 3];
    let mut out = Vec::new();
    for (t, g) in GRADS.iter().enumerate() {
        for i in 0..3 {
            f(&mut w[i], g[i], &mut st[i], t as i32 + 1);
        }
        out.push(w);
    }
    out
}

#[test]
fn rmsprop_default_and_scheduled() {
    let want = coordinate_ref(1, &|w, g, v, _| {
        v[0] = 0.99 * v[0] + 0.01 * g * g;
        *w -= 0.01 * g / (v[0].sqrt() + 1e-8);
    });
    check(run(&mut RMSprop::new(0.01)), want);
    let lr = |t: i32| 0.1 * 0.5f64.powi(t - 1);
    let want = coordinate_ref(1, &|w, g, v, t| {
        v[0] = 0.8 * v[0] + 0.2 * g * g;
        *w -= lr(t) * g / (v[0].sqrt() + 1e-3);
    });
    let sched = Schedule::exponential_decay(0.1, 0.5);
    check(run(&mut RMSprop::new(sched).alpha(0.8).eps(1e-3)), want);
    let e = RMSprop::new(0.1)
        .eps(0.0)
        .apply_gradients(&map("w", &[1.0]), &map("w", &[1.0]))
        .unwrap_err();
    assert!(e.to_string().contains("epsilon should be >0"), "{e}");
}

#[test]
fn adagrad_accumulates_squares() {
    let want = coordinate_ref(1, &|w, g, v, _| {
        v[0] += g * g;
        *w -= 0.3 * g / (v[0].sqrt() + 1e-8);
    });
    let mut o = Adagrad::new(0.3);
    check(run(&mut o), want);
    // the state is the sum of squared gradients
    let v: f64 = GRADS.iter().map(|g| g[1] * g[1]).sum();
    assert_close(&vals(&o.state("w").unwrap()[0])[1..2], &[v], 1e-6);
}

#[test]
fn adadelta_tracks_both_averages() {
    let want = coordinate_ref(2, &|w, g, s, _| {
        let (rho, eps) = (0.9, 1e-6);
        s[0] = rho * s[0] + (1.0 - rho) * g * g;
        let d = (s[1] + eps).sqrt() / (s[0] + eps).sqrt() * g;
        s[1] = rho * s[1] + (1.0 - rho) * d * d;
        *w -= 2.0 * d;
    });
    let mut o = AdaDelta::new(2.0);
    check(run(&mut o), want);
    assert_eq!(o.state("w").unwrap().len(), 2);
    let e = AdaDelta::new(1.0)
        .rho(-0.5)
        .apply_gradients(&map("w", &[1.0]), &map("w", &[1.0]))
        .unwrap_err();
    assert!(e.to_string().contains("rho should be >=0"), "{e}");
}

#[test]
fn adamax_uses_the_infinity_norm() {
    let want = coordinate_ref(2, &|w, g, s, _| {
        s[0] = 0.8 * s[0] + 0.2 * g;
        s[1] = (0.95 * s[1]).max(g.abs());
        *w -= 0.05 * s[0] / (s[1] + 1e-8);
    });
    check(run(&mut Adamax::new(0.05).betas(0.8, 0.95)), want);
}

#[test]
fn lion_steps_by_the_sign_with_decoupled_decay() {
    for wd in [0.0, 0.5] {
        let want = coordinate_ref(1, &|w, g, m, _| {
            let c = 0.9 * m[0] + 0.1 * g;
            m[0] = 0.99 * m[0] + 0.01 * g;
            *w *= 1.0 - 0.1 * wd;
            *w -= 0.1 * c.signum();
        });
        check(run(&mut Lion::new(0.1).weight_decay(wd)), want);
    }
    let e = Lion::new(0.1)
        .betas(0.9, 1.0)
        .apply_gradients(&map("w", &[1.0]), &map("w", &[1.0]))
        .unwrap_err();
    assert!(e.to_string().contains("Lion beta2"), "{e}");
}

/// Adafactor on one `rows x cols` parameter (`rows == 0`: a vector of `cols`), f64.
fn adafactor_ref(
    o: &Adafactor,
    lr: f64,
    rows: usize,
    w0: &[f64],
    grads: &[Vec<f64>],
) -> Vec<Vec<f64>> {
    let factored = rows > 0;
    let (r, c) = if factored {
        (rows, w0.len() / rows)
    } else {
        (1, w0.len())
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let rms = |v: &[f64]| mean(&v.iter().map(|x| x * x).collect::<Vec<_>>()).sqrt();
    let mut w = w0.to_vec();
    let (mut row, mut col, mut v, mut avg) = (
        vec![0.0; r],
        vec![0.0; c],
        vec![0.0; w.len()],
        vec![0.0; w.len()],
    );
    let mut out = Vec::new();
    for (t, g) in grads.iter().enumerate() {
        let t = (t + 1) as f64;
        let rel = if o.relative_step {
            let min_step = if o.warmup_init { 1e-6 * t } else { 1e-2 };
            min_step.min(1.0 / t.sqrt())
        } else {
            lr
        };
        let step = if o.scale_parameter {
            o.eps.1.max(rms(&w)) * rel
        } else {
            rel
        };
        let beta2 = 1.0 - t.powf(o.decay_rate);
        let u: Vec<f64> = g.iter().map(|x| x * x + o.eps.0).collect();
        let mut upd: Vec<f64> = if factored {
            for i in 0..r {
                row[i] = beta2 * row[i] + (1.0 - beta2) * mean(&u[i * c..(i + 1) * c]);
            }
            for j in 0..c {
                let cm = (0..r).map(|i| u[i * c + j]).sum::<f64>() / r as f64;
                col[j] = beta2 * col[j] + (1.0 - beta2) * cm;
            }
            let rm = mean(&row);
            (0..r * c)
                .map(|k| g[k] / (row[k / c] / rm).sqrt() / col[k % c].sqrt())
                .collect()
        } else {
            (0..c)
                .map(|k| {
                    v[k] = beta2 * v[k] + (1.0 - beta2) * u[k];
                    g[k] / v[k].sqrt()
                })
                .collect()
        };
        let clip = (rms(&upd) / o.clip_threshold).max(1.0);
        for x in upd.iter_mut() {
            *x = step * *x / clip;
        }
        if let Some(b1) = o.beta_1 {
            for (a, x) in avg.iter_mut().zip(upd.iter_mut()) {
                *a = b1 * *a + (1.0 - b1) * *x;
                *x = *a;
            }
        }
        for (wk, x) in w.iter_mut().zip(&upd) {
            *wk += *wk * (-o.weight_decay * step);
            *wk -= x;
        }
        out.push(w.clone());
    }
    out
}

fn run_adafactor(
    o: &mut Adafactor,
    shape: &[usize],
    w0: &[f64],
    grads: &[Vec<f64>],
) -> Vec<Vec<f32>> {
    let f = |v: &[f64]| -> Params {
        let f: Vec<f32> = v.iter().map(|x| *x as f32).collect();
        [("w".to_string(), arr(&f, shape))].into_iter().collect()
    };
    let mut params = f(w0);
    let mut out = Vec::new();
    for g in grads {
        params = o.apply_gradients(&f(g), &params).unwrap();
        out.push(vals(&params["w"]));
    }
    out
}

#[test]
fn adafactor_vector_and_factored_matrix() {
    let w2 = [0.5, -1.0, 0.25, 2.0, -0.75, 1.5];
    let g2: Vec<Vec<f64>> = vec![
        vec![0.1, -0.2, 0.3, 0.05, -0.4, 0.2],
        vec![-0.3, 0.1, 0.2, -0.1, 0.6, 0.05],
        vec![0.2, 0.2, -0.1, 0.3, -0.2, -0.5],
    ];
    let g1: Vec<Vec<f64>> = GRADS.iter().map(|g| g.to_vec()).collect();
    let configs = [
        (Adafactor::new(), 0.0),
        (Adafactor::new().warmup_init(true).clip_threshold(0.5), 0.0),
        (
            Adafactor::with_learning_rate(0.05)
                .relative_step(false)
                .scale_parameter(false)
                .beta_1(Some(0.9))
                .weight_decay(0.1),
            0.05,
        ),
    ];
    for (opt, lr) in configs {
        // rows 2 x cols 3: factored; a vector: the plain second moment
        for (shape, rows, w0, grads) in [(vec![2, 3], 2, &w2[..], &g2), (vec![3], 0, &W0[..], &g1)]
        {
            let mut o = opt.clone();
            let got = run_adafactor(&mut o, &shape, w0, grads);
            let want = adafactor_ref(&opt, lr, rows, w0, grads);
            for (g, w) in got.iter().zip(&want) {
                assert_close(g, w, 1e-5);
            }
            let st = o.state("w").unwrap();
            let shapes: Vec<&[usize]> = st.iter().map(|a| a.shape()).collect();
            let mut expect: Vec<&[usize]> = if rows > 0 {
                vec![&[2], &[3]]
            } else {
                vec![&[3]]
            };
            if opt.beta_1.is_some() {
                expect.push(&shape);
            }
            assert_eq!(shapes, expect);
        }
    }
    let e = Adafactor::new()
        .relative_step(false)
        .apply_gradients(&map("w", &[1.0]), &map("w", &[1.0]))
        .unwrap_err();
    assert!(e.to_string().contains("learning_rate"), "{e}");
}
