//! The transforms through the Rust API: vmap against an explicit loop, custom_function
//! rules replacing the derivatives, checkpoint giving the same gradient.
//! (Values are compared with MLX in the Python suite; these check the Rust surface.)

use rmx_core::primitives::custom::{Fun, VjpFun};
use rmx_core::transforms::{self, checkpoint, CustomFunction};
use rmx_core::{ops, Array, Error};
use std::sync::Arc;

fn f32s(v: &[f32], shape: &[usize]) -> Array {
    Array::from_slice(v, shape).unwrap()
}

fn values(a: &Array) -> Vec<f32> {
    a.to_vec::<f32>().unwrap()
}

#[test]
fn vmap_equals_a_loop_over_the_batch() {
    // f(row, w) = sum(sin(row) * w) for each column of x (in_axes 1), w shared
    let x = f32s(&[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], &[2, 3]);
    let w = f32s(&[2.0, -1.0], &[2]);
    let f = |a: &[Array]| -> rmx_core::Result<Vec<Array>> {
        Ok(vec![ops::sum(
            &ops::multiply(&ops::sin(&a[0])?, &a[1])?,
            None,
            false,
        )?])
    };
    let got = transforms::vmap(f, &[x.clone(), w.clone()], &[Some(1), None], &[Some(0)]).unwrap();
    let mut want = Vec::new();
    for j in 0..3i32 {
        let col = ops::take(&x, &Array::scalar(j), Some(1)).unwrap();
        want.push(values(&f(&[col, w.clone()]).unwrap()[0])[0]);
    }
    assert_eq!(got[0].shape(), &[3]);
    for (g, w) in values(&got[0]).iter().zip(&want) {
        assert!((g - w).abs() < 1e-6, "{g} vs {w}");
    }
}

#[test]
fn vmap_rejects_bad_axes() {
    let x = f32s(&[1.0, 2.0], &[2]);
    let id = |a: &[Array]| -> rmx_core::Result<Vec<Array>> { Ok(a.to_vec()) };
    assert!(matches!(
        transforms::vmap(id, std::slice::from_ref(&x), &[Some(1)], &[Some(0)]),
        Err(Error::Index(_))
    ));
    assert!(matches!(
        transforms::vmap(id, std::slice::from_ref(&x), &[None], &[Some(0)]),
        Err(Error::Value(_))
    ));
    let y = f32s(&[1.0, 2.0, 3.0], &[3]);
    assert!(matches!(
        transforms::vmap(id, &[x, y], &[Some(0), Some(0)], &[Some(0)]),
        Err(Error::Value(_))
    ));
}

#[test]
fn custom_vjp_replaces_the_derivative() {
    let fun: Fun = Arc::new(|a: &[Array]| Ok(vec![ops::sin(&a[0])?]));
    // a deliberately "wrong" rule: cotangent times 10
    let vjp: VjpFun = Arc::new(|_p: &[Array], ct: &[Array], _o: &[Array]| {
        Ok(vec![ops::multiply(&ct[0], &Array::scalar(10.0f32))?])
    });
    let cf = CustomFunction::new(fun).with_vjp(vjp);
    let x = f32s(&[0.5, 1.0], &[2]);
    let g = transforms::grad(
        |a| Ok(vec![ops::sum(&cf.call(a)?[0], None, false)?]),
        std::slice::from_ref(&x),
        &[0],
    )
    .unwrap();
    assert_eq!(values(&g[0]), vec![10.0, 10.0]);
    // the forward value is the function's
    let y = cf.call(std::slice::from_ref(&x)).unwrap();
    assert_eq!(values(&y[0]), values(&ops::sin(&x).unwrap()));
}

#[test]
fn checkpoint_gives_the_plain_gradient() {
    let body = |a: &[Array]| -> rmx_core::Result<Vec<Array>> {
        let mut t = a[0].clone();
        for _ in 0..5 {
            t = ops::multiply(&ops::sin(&t)?, &Array::scalar(1.5f32))?;
        }
        Ok(vec![t])
    };
    let ck = checkpoint(Arc::new(body));
    let x = f32s(&[0.3, -0.7, 1.1], &[3]);
    let sum = |v: Vec<Array>| ops::sum(&v[0], None, false).map(|s| vec![s]);
    let plain = transforms::grad(|a| sum(body(a)?), std::slice::from_ref(&x), &[0]).unwrap();
    let ckd = transforms::grad(|a| sum(ck.call(a)?), &[x], &[0]).unwrap();
    for (p, c) in values(&plain[0]).iter().zip(values(&ckd[0])) {
        assert!((p - c).abs() < 1e-6, "{p} vs {c}");
    }
}
