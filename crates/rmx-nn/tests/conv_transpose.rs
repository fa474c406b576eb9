//! Transposed convolution layers against the scatter definition on the host (f64), on
//! random inputs; names, shapes, defaults, configurations and the initialisation's bounds.

mod common;

use common::{assert_close, vals};
use rmx_core::ops::random;
use rmx_core::{Array, Dtype};
use rmx_nn::{
    ConvConfig, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d, ConvTransposeConfig, Layer,
    Module, Params,
};

fn normal(shape: &[usize]) -> Array {
    random::normal(shape, Dtype::Float32, None, None, None).unwrap()
}

/// `x` `(N, L, C)`, `w` `(O, K, C / groups)`: every input position `i` adds
/// `x[i] w[k]` at output position `i * stride - padding + k * dilation`, on an output of
/// length `(L - 1) stride - 2 padding + dilation (K - 1) + 1 + output_padding`.
#[allow(clippy::too_many_arguments)]
fn conv_transpose1d_ref(
    x: &[f32],
    [n, l, c]: [usize; 3],
    w: &[f32],
    [o, k]: [usize; 2],
    [stride, pad, dil, out_pad]: [usize; 4],
    groups: usize,
    bias: &[f32],
) -> (Vec<f64>, [usize; 3]) {
    let (cg, og) = (c / groups, o / groups);
    let ol = (l - 1) * stride + dil * (k - 1) + 1 + out_pad - 2 * pad;
    let bias_row: Vec<f64> = (0..o)
        .map(|oc| bias.get(oc).map_or(0.0, |v| *v as f64))
        .collect();
    let mut out: Vec<f64> = bias_row.repeat(n * ol);
    for b in 0..n {
        for i in 0..l {
            for a in 0..k {
                let t = (i * stride + a * dil) as isize - pad as isize;
                if t < 0 || t >= ol as isize {
                    continue;
                }
                for oc in 0..o {
                    let g = oc / og;
                    let mut acc = 0.0;
                    for ci in 0..cg {
                        let xv = x[(b * l + i) * c + g * cg + ci] as f64;
                        acc += xv * w[(oc * k + a) * cg + ci] as f64;
                    }
                    out[(b * ol + t as usize) * o + oc] += acc;
                }
            }
        }
    }
    (out, [n, ol, o])
}

fn set_bias(layer: &mut impl Module, out: usize) {
    // non-zero, so a dropped bias shows
    let p: Params = [("bias".to_string(), normal(&[out]))].into_iter().collect();
    layer.update_partial(&p).unwrap();
}

#[test]
fn conv_transpose1d_matches_the_scatter_definition() {
    random::seed(5).unwrap();
    // (stride, padding, dilation, output_padding, groups, bias)
    let cases = [
        (1, 0, 1, 0, 1, true),
        (2, 1, 1, 1, 1, true),
        (3, 2, 2, 0, 2, true),
        (2, 0, 3, 2, 4, false),
        (1, 1, 2, 1, 1, true),
    ];
    for (s, p, d, op, g, bias) in cases {
        let cfg = ConvConfig::default()
            .stride(s)
            .padding(p)
            .dilation(d)
            .groups(g)
            .bias(bias)
            .output_padding(op);
        let mut layer = ConvTranspose1d::with_config(4, 8, 3, cfg).unwrap();
        if bias {
            set_bias(&mut layer, 8);
        }
        let x = normal(&[2, 6, 4]);
        let y = layer.forward(&x).unwrap();
        let b = layer.bias.as_ref().map(|b| vals(b)).unwrap_or_default();
        let (want, shape) = conv_transpose1d_ref(
            &vals(&x),
            [2, 6, 4],
            &vals(&layer.weight),
            [8, 3],
            [s, p, d, op],
            g,
            &b,
        );
        assert_eq!(y.shape(), shape, "{cfg:?}");
        assert_close(&vals(&y), &want, 1e-5);
    }
}

#[test]
fn conv_transpose2d_over_one_row_is_conv_transpose1d() {
    random::seed(6).unwrap();
    let cfg = ConvTransposeConfig {
        conv: ConvConfig {
            stride: [1, 2],
            padding: [0, 1],
            dilation: [1, 2],
            groups: 3,
            bias: true,
        },
        output_padding: [0, 1],
    };
    let mut layer = ConvTranspose2d::with_config(3, 6, [1, 3], cfg).unwrap();
    set_bias(&mut layer, 6);
    let x = normal(&[2, 1, 5, 3]);
    let y = layer.forward(&x).unwrap();
    let (want, [n, ol, o]) = conv_transpose1d_ref(
        &vals(&x),
        [2, 5, 3],
        &vals(&layer.weight),
        [6, 3],
        [2, 1, 2, 1],
        3,
        &vals(layer.bias.as_ref().unwrap()),
    );
    assert_eq!(y.shape(), [n, 1, ol, o]);
    assert_close(&vals(&y), &want, 1e-5);
}

#[test]
fn conv_transpose_layers_have_mlx_names_shapes_and_init() {
    random::seed(7).unwrap();
    let c = ConvTranspose2d::new(8, 32, [3, 5]).unwrap();
    let mut names: Vec<String> = c.parameters().into_iter().map(|p| p.0).collect();
    names.sort();
    assert_eq!(names, ["bias", "weight"]);
    // (out, *kernel, in), as MLX's layers
    assert_eq!(c.weight.shape(), [32, 3, 5, 8]);
    assert_eq!(
        (c.in_channels(), c.out_channels(), c.kernel_size()),
        (8, 32, [3, 5])
    );
    assert_eq!(
        (c.stride, c.padding, c.dilation, c.output_padding, c.groups),
        ([1, 1], [0, 0], [1, 1], [0, 0], 1)
    );
    // U(-s, s) with s = sqrt(1 / (in * kh * kw)); bias zeros
    let s = (1.0f32 / 120.0).sqrt();
    let w = vals(&c.weight);
    assert!(w.iter().all(|v| v.abs() <= s));
    let var = w.iter().map(|v| (v * v) as f64).sum::<f64>() / w.len() as f64;
    assert!(
        (var - (s * s) as f64 / 3.0).abs() < 0.1 * (s * s) as f64 / 3.0,
        "variance {var}"
    );
    assert!(vals(c.bias.as_ref().unwrap()).iter().all(|v| *v == 0.0));

    let c1 = ConvTranspose1d::new(4, 2, 3).unwrap();
    assert_eq!(c1.weight.shape(), [2, 3, 4]);
    let cfg = ConvConfig::default()
        .stride(2)
        .bias(false)
        .output_padding(1);
    let c3 = ConvTranspose3d::with_config(2, 5, [1, 2, 3], cfg).unwrap();
    assert_eq!(c3.weight.shape(), [5, 1, 2, 3, 2]);
    assert_eq!(c3.parameters().len(), 1);
    assert_eq!(c3.output_padding, [1, 1, 1]);
    // (L - 1) * 2 + (K - 1) + 1 + 1 per axis
    let y = c3.forward(&normal(&[1, 3, 4, 5, 2])).unwrap();
    assert_eq!(y.shape(), [1, 6, 9, 12, 5]);

    let e =
        ConvTranspose2d::with_config(6, 4, [3, 3], ConvConfig::default().groups(4)).unwrap_err();
    assert!(
        e.to_string().contains("divisible by the number of groups"),
        "{e}"
    );
    assert!(ConvTranspose1d::new(4, 2, 0).is_err());
    assert!(ConvTranspose2d::with_config(4, 2, [3, 3], ConvConfig::default().stride(0)).is_err());
    // a plain ConvConfig is a transposed one without output padding
    assert_eq!(
        ConvTransposeConfig::from(ConvConfig::<2>::default()),
        ConvTransposeConfig::default()
    );
}
