//! Convolution and pooling layers against direct loops on the host (f64), on random
//! inputs; names, shapes, defaults and the initialisation's bounds.

mod common;

use common::{assert_close, vals};
use rmx_core::ops::random;
use rmx_core::{Array, Dtype};
use rmx_nn::{
    AvgPool2d, Conv1d, Conv2d, Conv3d, ConvConfig, Layer, MaxPool1d, MaxPool2d, Module, Params,
};

fn normal(shape: &[usize]) -> Array {
    random::normal(shape, Dtype::Float32, None, None, None).unwrap()
}

/// `x` `(N, H, W, C)`, `w` `(O, KH, KW, C / groups)`, zero padding: the textbook loop.
#[allow(clippy::too_many_arguments)]
fn conv2d_ref(
    x: &[f32],
    [n, h, wd, c]: [usize; 4],
    w: &[f32],
    [o, kh, kw]: [usize; 3],
    stride: [usize; 2],
    pad: [usize; 2],
    dil: [usize; 2],
    groups: usize,
    bias: &[f32],
) -> (Vec<f64>, [usize; 4]) {
    let cg = c / groups;
    let og = o / groups;
    let oh = (h + 2 * pad[0] - dil[0] * (kh - 1) - 1) / stride[0] + 1;
    let ow = (wd + 2 * pad[1] - dil[1] * (kw - 1) - 1) / stride[1] + 1;
    let mut out = Vec::with_capacity(n * oh * ow * o);
    for b in 0..n {
        for i in 0..oh {
            for j in 0..ow {
                for oc in 0..o {
                    let g = oc / og;
                    let mut acc = bias.get(oc).map_or(0.0, |v| *v as f64);
                    for a in 0..kh {
                        for e in 0..kw {
                            let y = (i * stride[0] + a * dil[0]) as isize - pad[0] as isize;
                            let z = (j * stride[1] + e * dil[1]) as isize - pad[1] as isize;
                            if y < 0 || z < 0 || y >= h as isize || z >= wd as isize {
                                continue;
                            }
                            for ci in 0..cg {
                                let xv =
                                    x[((b * h + y as usize) * wd + z as usize) * c + g * cg + ci];
                                let wv = w[((oc * kh + a) * kw + e) * cg + ci];
                                acc += xv as f64 * wv as f64;
                            }
                        }
                    }
                    out.push(acc);
                }
            }
        }
    }
    (out, [n, oh, ow, o])
}

fn set_bias(layer: &mut impl Module, out: usize) {
    // non-zero, so a dropped bias shows
    let p: Params = [("bias".to_string(), normal(&[out]))].into_iter().collect();
    layer.update_partial(&p).unwrap();
}

#[test]
fn conv2d_matches_the_direct_loop() {
    random::seed(1).unwrap();
    let cases = [
        (ConvConfig::default(), [3, 3]),
        (ConvConfig::default().padding(1), [3, 3]),
        (
            ConvConfig {
                stride: [2, 1],
                padding: [1, 0],
                dilation: [1, 2],
                ..Default::default()
            },
            [3, 2],
        ),
        (
            ConvConfig::default().groups(2).stride(2).bias(false),
            [2, 2],
        ),
    ];
    for (cfg, k) in cases {
        let mut conv = Conv2d::with_config(4, 6, k, cfg).unwrap();
        if cfg.bias {
            set_bias(&mut conv, 6);
        }
        let x = normal(&[2, 7, 6, 4]);
        let y = conv.forward(&x).unwrap();
        let bias = conv.bias.as_ref().map(|b| vals(b)).unwrap_or_default();
        let (want, shape) = conv2d_ref(
            &vals(&x),
            [2, 7, 6, 4],
            &vals(&conv.weight),
            [6, k[0], k[1]],
            cfg.stride,
            cfg.padding,
            cfg.dilation,
            cfg.groups,
            &bias,
        );
        assert_eq!(y.shape(), shape, "{cfg:?}");
        assert_close(&vals(&y), &want, 1e-5);
    }
}

#[test]
fn conv1d_is_conv2d_over_one_row() {
    random::seed(2).unwrap();
    let cfg = ConvConfig::default()
        .stride(2)
        .padding(2)
        .dilation(2)
        .groups(3);
    let mut conv = Conv1d::with_config(3, 6, 3, cfg).unwrap();
    set_bias(&mut conv, 6);
    let x = normal(&[2, 11, 3]);
    let y = conv.forward(&x).unwrap();
    let (want, [n, _, ow, o]) = conv2d_ref(
        &vals(&x),
        [2, 1, 11, 3],
        &vals(&conv.weight),
        [6, 1, 3],
        [1, 2],
        [0, 2],
        [1, 2],
        3,
        &vals(conv.bias.as_ref().unwrap()),
    );
    assert_eq!(y.shape(), [n, ow, o]);
    assert_close(&vals(&y), &want, 1e-5);
}

#[test]
fn conv_layers_have_mlx_names_shapes_and_init() {
    random::seed(3).unwrap();
    let c = Conv2d::with_config(8, 32, [3, 5], ConvConfig::default().groups(2)).unwrap();
    let mut names: Vec<String> = c.parameters().into_iter().map(|p| p.0).collect();
    names.sort();
    assert_eq!(names, ["bias", "weight"]);
    assert_eq!(c.weight.shape(), [32, 3, 5, 4]);
    assert_eq!(
        (c.in_channels(), c.out_channels(), c.kernel_size()),
        (8, 32, [3, 5])
    );
    assert_eq!(
        (c.stride, c.padding, c.dilation, c.groups),
        ([1, 1], [0, 0], [1, 1], 2)
    );
    // U(-s, s) with s = sqrt(1 / (in / groups * kh * kw)); bias zeros
    let s = (1.0f32 / 60.0).sqrt();
    let w = vals(&c.weight);
    assert!(w.iter().all(|v| v.abs() <= s));
    let var = w.iter().map(|v| (v * v) as f64).sum::<f64>() / w.len() as f64;
    assert!(
        (var - (s * s) as f64 / 3.0).abs() < 0.1 * (s * s) as f64 / 3.0,
        "variance {var}"
    );
    assert!(vals(c.bias.as_ref().unwrap()).iter().all(|v| *v == 0.0));

    let c1 = Conv1d::new(4, 2, 3).unwrap();
    assert_eq!(c1.weight.shape(), [2, 3, 4]);
    let c3 = Conv3d::with_config(2, 5, [1, 2, 3], ConvConfig::default().bias(false)).unwrap();
    assert_eq!(c3.weight.shape(), [5, 1, 2, 3, 2]);
    assert_eq!(c3.parameters().len(), 1);
    let y = c3.forward(&normal(&[1, 3, 4, 5, 2])).unwrap();
    assert_eq!(y.shape(), [1, 3, 3, 3, 5]);

    let e = Conv2d::with_config(6, 4, [3, 3], ConvConfig::default().groups(4)).unwrap_err();
    assert!(
        e.to_string().contains("divisible by the number of groups"),
        "{e}"
    );
    assert!(Conv1d::new(4, 2, 0).is_err());
    assert!(Conv2d::with_config(4, 2, [3, 3], ConvConfig::default().stride(0)).is_err());
}

/// Max or mean over `k` windows with stride `s` and padding `p` of `(N, H, W, C)`.
fn pool2d_ref(
    x: &[f32],
    [n, h, w, c]: [usize; 4],
    k: usize,
    s: usize,
    p: usize,
    max: bool,
) -> Vec<f64> {
    let (hp, wp) = (h + 2 * p, w + 2 * p);
    let (oh, ow) = ((hp - k) / s + 1, (wp - k) / s + 1);
    let mut out = Vec::new();
    for b in 0..n {
        for i in 0..oh {
            for j in 0..ow {
                for ch in 0..c {
                    let mut vals = Vec::new();
                    for a in 0..k {
                        for e in 0..k {
                            let (y, z) = (
                                (i * s + a) as isize - p as isize,
                                (j * s + e) as isize - p as isize,
                            );
                            let inside = y >= 0 && z >= 0 && y < h as isize && z < w as isize;
                            vals.push(if inside {
                                x[((b * h + y as usize) * w + z as usize) * c + ch] as f64
                            } else if max {
                                f64::NEG_INFINITY
                            } else {
                                0.0
                            });
                        }
                    }
                    out.push(if max {
                        vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
                    } else {
                        vals.iter().sum::<f64>() / vals.len() as f64
                    });
                }
            }
        }
    }
    out
}

#[test]
fn pools_match_the_direct_loop() {
    random::seed(4).unwrap();
    let x = normal(&[2, 6, 6, 3]);
    let xv = vals(&x);
    // (kernel, stride, padding): tiling windows, overlapping ones, padded ones
    for (k, s, p) in [(2, 2, 0), (3, 1, 0), (3, 2, 1), (2, 2, 1)] {
        let mp = MaxPool2d::new([k, k], Some([s, s]), [p, p]).unwrap();
        let ap = AvgPool2d::new([k, k], Some([s, s]), [p, p]).unwrap();
        let o = (6 + 2 * p - k) / s + 1;
        let (ym, ya) = (mp.forward(&x).unwrap(), ap.forward(&x).unwrap());
        assert_eq!(ym.shape(), [2, o, o, 3]);
        assert_close(
            &vals(&ym),
            &pool2d_ref(&xv, [2, 6, 6, 3], k, s, p, true),
            1e-6,
        );
        assert_close(
            &vals(&ya),
            &pool2d_ref(&xv, [2, 6, 6, 3], k, s, p, false),
            1e-6,
        );
    }
    // the stride defaults to the kernel size
    assert_eq!(MaxPool2d::new([3, 2], None, [0, 0]).unwrap().stride, [3, 2]);
    let y = MaxPool1d::new([2], None, [0])
        .unwrap()
        .forward(&normal(&[1, 7, 2]))
        .unwrap();
    assert_eq!(y.shape(), [1, 3, 2]);
    assert!(MaxPool2d::new([0, 2], None, [0, 0]).is_err());
    assert!(MaxPool2d::new([2, 2], None, [0, 0])
        .unwrap()
        .forward(&normal(&[4, 4]))
        .is_err());
    assert!(MaxPool2d::new([5, 5], None, [0, 0])
        .unwrap()
        .forward(&normal(&[1, 4, 4, 1]))
        .is_err());
}
