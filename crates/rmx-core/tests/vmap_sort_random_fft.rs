//! The vmap rules of the random, sort and fft primitives, called directly (the vmap
//! transform drives them the same way): a batched call must equal the per-item calls.

use rmx_core::{ops, Array};

fn f32s(v: &[f32], shape: &[usize]) -> Array {
    Array::from_slice(v, shape).unwrap()
}

/// Applies `unbatched`'s primitive to `batched` (batch axis `axis`), moves the batch axis
/// of the result first, and returns it with its items.
fn vmapped(unbatched: &Array, batched: &[Array], axes: &[Option<usize>]) -> Array {
    let (node, _) = unbatched.node().expect("a pending node");
    let (outs, out_axes) = node
        .primitive
        .vmap(batched, axes, &node.output_specs)
        .unwrap();
    match out_axes[0] {
        Some(a) => ops::moveaxis(&outs[0], a as i64, 0).unwrap(),
        None => outs[0].clone(),
    }
}

fn item(x: &Array, i: i64) -> Array {
    ops::take(x, &Array::scalar(i as i32), Some(0)).unwrap()
}

fn assert_same(a: &Array, b: &Array) {
    assert_eq!(a.shape(), b.shape());
    let (a, b) = (
        ops::astype(a, rmx_core::Dtype::Float32).unwrap(),
        ops::astype(b, rmx_core::Dtype::Float32).unwrap(),
    );
    assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
}

#[test]
fn sort_vmap_shifts_the_axis() {
    let vals: Vec<f32> = (0..24).map(|i| ((i * 7) % 11) as f32).collect();
    let xb = f32s(&vals, &[2, 3, 4]);
    for batch_axis in [0usize, 1, 2] {
        // the batch axis at `batch_axis`: items are xb[i] with the batch moved there
        let moved = ops::moveaxis(&xb, 0, batch_axis as i64).unwrap();
        let item0 = item(&xb, 0);
        for (op_axis, arg) in [(0i64, false), (1, true), (-1, false)] {
            let s = if arg {
                ops::argsort(&item0, Some(op_axis)).unwrap()
            } else {
                ops::sort(&item0, Some(op_axis)).unwrap()
            };
            let got = vmapped(&s, std::slice::from_ref(&moved), &[Some(batch_axis)]);
            for i in 0..2 {
                let it = item(&xb, i);
                let want = if arg {
                    ops::argsort(&it, Some(op_axis)).unwrap()
                } else {
                    ops::sort(&it, Some(op_axis)).unwrap()
                };
                assert_same(&item(&got, i), &want);
            }
        }
        let p = ops::partition(&item0, 1, Some(-1)).unwrap();
        let got = vmapped(&p, std::slice::from_ref(&moved), &[Some(batch_axis)]);
        for i in 0..2 {
            let want = ops::partition(&item(&xb, i), 1, Some(-1)).unwrap();
            assert_same(&item(&got, i), &want);
        }
    }
}

#[test]
fn random_bits_vmap_over_keys() {
    let keys = ops::random::split(&ops::random::key(3).unwrap(), 3).unwrap();
    let k0 = item(&keys, 0);
    let u = ops::random::bits(&[5], 4, Some(&k0)).unwrap();
    for axis in [0usize, 1] {
        let batched = if axis == 0 {
            keys.clone()
        } else {
            ops::transpose(&keys, None).unwrap()
        };
        let got = vmapped(&u, &[batched], &[Some(axis)]);
        for i in 0..3 {
            let want = ops::random::bits(&[5], 4, Some(&item(&keys, i))).unwrap();
            assert_eq!(
                item(&got, i).to_vec::<u32>().unwrap(),
                want.to_vec::<u32>().unwrap()
            );
        }
    }
}

#[test]
fn searchsorted_vmap_over_values() {
    let seq = f32s(&[1.0, 2.0, 3.0], &[3]);
    let vals = f32s(&[0.5, 2.5, 1.0, 3.5, 2.0, 9.0], &[2, 3]);
    let s = ops::searchsorted(&seq, &item(&vals, 0), "left").unwrap();
    let got = vmapped(&s, &[seq.clone(), vals.clone()], &[None, Some(0)]);
    for i in 0..2 {
        let want = ops::searchsorted(&seq, &item(&vals, i), "left").unwrap();
        assert_same(&item(&got, i), &want);
    }
}

#[test]
fn fft_vmap_shifts_the_axes() {
    use rmx_core::ops::fft::{fft1, fftn, FftKind, FftNorm};
    let vals: Vec<f32> = (0..60).map(|i| ((i * 13) % 17) as f32 - 8.0).collect();
    let xb = f32s(&vals, &[3, 4, 5]);
    let kinds = [
        FftKind {
            inverse: false,
            real: false,
        },
        FftKind {
            inverse: false,
            real: true,
        },
        FftKind {
            inverse: true,
            real: true,
        },
    ];
    for batch_axis in [0usize, 1, 2] {
        for kind in kinds {
            let one = |x: &Array| fft1(x, Some(6), -1, kind, FftNorm::Ortho).unwrap();
            let two =
                |x: &Array| fftn("fftn", x, None, Some(&[1, 0]), kind, FftNorm::Backward).unwrap();
            for f in [&one as &dyn Fn(&Array) -> Array, &two] {
                let y0 = f(&item(&xb, 0));
                // the primitive is the last node; feed it the batched, prepared input
                let prepared = y0.inputs()[0].clone();
                let batched: Vec<Array> = (0..3)
                    .map(|i| f(&item(&xb, i)).inputs()[0].clone())
                    .collect();
                let stacked = ops::stack(&batched, batch_axis as i64).unwrap();
                assert_eq!(prepared.shape(), batched[0].shape());
                let got = vmapped(&y0, &[stacked], &[Some(batch_axis)]);
                for i in 0..3 {
                    let want = f(&item(&xb, i));
                    let (g, w) = (item(&got, i), want);
                    assert_eq!(g.shape(), w.shape());
                    let to = |a: &Array| {
                        ops::astype(&ops::abs(a).unwrap(), rmx_core::Dtype::Float32)
                            .unwrap()
                            .to_vec::<f32>()
                            .unwrap()
                    };
                    for (a, b) in to(&g).iter().zip(to(&w)) {
                        assert!((a - b).abs() < 1e-3, "{a} vs {b}");
                    }
                }
            }
        }
    }
}
