//! Convolutions, as in MLX: conv1d/2d/3d, their transposes, conv_general and the 1-d
//! `convolve` with NumPy's modes. Channels last: input `[N, ...spatial, C_in]`, weight
//! `[C_out, ...kernel, C_in / groups]`. The checks, their order and the output size rule
//! (C integer division) follow MLX; negative padding crops the input, as MLX does.

use crate::array::Array;
use crate::backend::ConvParams;
use crate::dtype::{promote_types, Dtype};
use crate::error::Result;
use crate::primitives::conv::Convolution;
use crate::shape::Shape;

use super::elementwise::astype;
use super::shape::{reshape, slice};

/// `(1,2,3)` as MLX prints vectors in messages.
fn tuple(v: &[i64]) -> String {
    let s: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    format!("({})", s.join(","))
}

fn shape_tuple(s: &[usize]) -> String {
    let v: Vec<i64> = s.iter().map(|&x| x as i64).collect();
    tuple(&v)
}

/// An empty or one-element parameter list applies to every spatial axis.
fn broadcast_param(v: &[i64], nsp: usize, default: i64) -> Vec<i64> {
    match v.len() {
        0 => vec![default; nsp],
        1 => vec![v[0]; nsp],
        _ => v.to_vec(),
    }
}

/// MLX's `run_conv_checks`: dtype, ranks and channel/group agreement.
fn conv_checks(x: &Array, w: &Array, nsp: usize, groups: i64) -> Result<()> {
    if !x.dtype().is_float() {
        return Err(crate::value_err!(
            "[conv] Invalid input array with type {}. Convolution currently only supports floating point types",
            x.dtype()
        ));
    }
    if w.ndim() != nsp + 2 {
        return Err(crate::value_err!(
            "[conv] Invalid weight array with {} dimensions for {nsp}D convolution. Expected an array with {} dimensions following the format [C_out, ..., C_in].",
            w.ndim(),
            nsp + 2
        ));
    }
    let cin = x.shape()[nsp + 1] as i64;
    let (cout, wcin) = (w.shape()[0] as i64, w.shape()[nsp + 1] as i64);
    if groups <= 0 {
        // MLX divides by the group count here (a crash for 0); rmx reports it instead
        return Err(crate::value_err!(
            "Given groups={groups} and weights of shape {}, expected to have {} input channels but got {cin} input channels instead.",
            shape_tuple(w.shape()),
            groups * wcin
        ));
    }
    if cin % groups != 0 {
        return Err(crate::value_err!(
            "[conv] The input channels must be divisible by the number of groups. Got input with shape {} and {groups} groups.",
            shape_tuple(x.shape())
        ));
    }
    if groups > 1 && cout % groups != 0 {
        return Err(crate::value_err!(
            "[conv] If groups > 1, the output channels must be divisible by the number of groups. Got {cout} output channels and {groups} groups."
        ));
    }
    if cin != groups * wcin {
        if groups == 1 {
            return Err(crate::value_err!(
                "[conv] Expect the input channels in the input and weight array to match but got shapes - input: {} and weight: {}",
                shape_tuple(x.shape()),
                shape_tuple(w.shape())
            ));
        }
        return Err(crate::value_err!(
            "Given groups={groups} and weights of shape {}, expected to have {} input channels but got {cin} input channels instead.",
            shape_tuple(w.shape()),
            groups * wcin
        ));
    }
    Ok(())
}

/// MLX's `conv_out_shape`: parameter checks and `(in + pads - kernel) / stride + 1` per axis,
/// with dilated sizes `1 + d * (n - 1)` and C's truncating division.
fn out_shape(
    x: &[usize],
    w: &[usize],
    stride: &[i64],
    lo: &[i64],
    hi: &[i64],
    kd: &[i64],
    id: &[i64],
) -> Result<Shape> {
    let nsp = x.len() - 2;
    let mut out: Shape = Shape::with_capacity(x.len());
    out.push(x[0]);
    for d in 0..nsp {
        if kd[d] <= 0 {
            return Err(crate::value_err!(
                "[conv] Kernel dilation sizes must be positive. Got kernel dilation {}.",
                tuple(kd)
            ));
        }
        if id[d] <= 0 {
            return Err(crate::value_err!(
                "[conv] Input dilation sizes must be positive. Got input dilation {}.",
                tuple(id)
            ));
        }
        if lo[d] < 0 || hi[d] < 0 {
            return Err(crate::value_err!(
                "[conv] Padding sizes must be non-negative. Got padding {} | {}.",
                tuple(lo),
                tuple(hi)
            ));
        }
        if stride[d] <= 0 {
            return Err(crate::value_err!(
                "[conv] Stride sizes must be positive. Got strides {}.",
                tuple(stride)
            ));
        }
        // i128: no parameter can overflow the arithmetic
        let kspan = 1 + kd[d] as i128 * (w[1 + d] as i128 - 1);
        let ispan = 1 + id[d] as i128 * (x[1 + d] as i128 - 1);
        let n = (ispan + lo[d] as i128 + hi[d] as i128 - kspan) / stride[d] as i128 + 1;
        if n <= 0 || n > isize::MAX as i128 {
            return Err(crate::value_err!(
                "[conv] Spatial dimensions of input after padding cannot be smaller than weight spatial dimensions. Got error at axis {} for input with shape {}, padding low {}, padding high {}, and weight of shape {}.",
                d + 1,
                shape_tuple(x),
                tuple(lo),
                tuple(hi),
                shape_tuple(w)
            ));
        }
        out.push(n as usize);
    }
    out.push(w[0]);
    Ok(out)
}

fn check_len(what: &str, v: &[i64], nsp: usize) -> Result<()> {
    if v.len() != nsp {
        return Err(crate::value_err!(
            "[conv] Invalid {what} {} for {nsp}D convolution.",
            tuple(v)
        ));
    }
    Ok(())
}

/// General convolution: strides, (lo, hi) padding per spatial axis (negative crops),
/// kernel and input dilation, groups and `flip` (convolution instead of correlation).
/// An empty or one-element list applies to every spatial axis.
#[allow(clippy::too_many_arguments)]
pub fn conv_general(
    input: &Array,
    weight: &Array,
    stride: &[i64],
    padding_lo: &[i64],
    padding_hi: &[i64],
    kernel_dilation: &[i64],
    input_dilation: &[i64],
    groups: i64,
    flip: bool,
) -> Result<Array> {
    if groups != 1 && input.ndim() != 3 && input.ndim() != 4 {
        return Err(crate::value_err!(
            "[conv] Can only handle groups != 1 in 1D or 2D convolutions."
        ));
    }
    let nsp = input.ndim().saturating_sub(2);
    if !(1..=3).contains(&nsp) {
        return Err(crate::value_err!(
            "[conv] Only works for inputs with 1-3 spatial dimensions. The inputs must be in the format [N, ..., C_in]"
        ));
    }
    conv_checks(input, weight, nsp, groups)?;
    let dt = promote_types(input.dtype(), weight.dtype());
    if dt == Dtype::Complex64 {
        // A real input with a complex weight: MLX 0.32.4 returns complex64 holding the
        // convolution with the weight's real part only (its CPU kernel reads the real
        // parts); rmx matches that.
        let wr = super::elementwise::real(weight)?;
        let xr = astype(input, Dtype::Float32)?;
        let out = conv_general(
            &xr,
            &wr,
            stride,
            padding_lo,
            padding_hi,
            kernel_dilation,
            input_dilation,
            groups,
            flip,
        )?;
        return astype(&out, Dtype::Complex64);
    }
    let mut x = astype(input, dt)?;
    let w = astype(weight, dt)?;
    let stride = broadcast_param(stride, nsp, 1);
    let mut lo = broadcast_param(padding_lo, nsp, 0);
    let mut hi = broadcast_param(padding_hi, nsp, 0);
    let kd = broadcast_param(kernel_dilation, nsp, 1);
    let id = broadcast_param(input_dilation, nsp, 1);
    check_len("strides", &stride, nsp)?;
    if lo.len() != nsp || hi.len() != nsp {
        return Err(crate::value_err!(
            "[conv] Invalid padding {} | {} for {nsp}D convolution.",
            tuple(&lo),
            tuple(&hi)
        ));
    }
    check_len("kernel dilation", &kd, nsp)?;
    check_len("input dilation", &id, nsp)?;
    // negative padding crops the (undilated) input, as in MLX
    if lo.iter().chain(&hi).any(|&p| p < 0) {
        let mut start = vec![0i64; nsp + 2];
        let mut stop: Vec<i64> = x.shape().iter().map(|&s| s as i64).collect();
        for d in 0..nsp {
            if lo[d] < 0 {
                start[d + 1] = start[d + 1].saturating_sub(lo[d]);
                lo[d] = 0;
            }
            if hi[d] < 0 {
                stop[d + 1] = stop[d + 1].saturating_add(hi[d]);
                hi[d] = 0;
            }
        }
        x = slice(&x, &start, &stop, None)?;
    }
    let shape = out_shape(x.shape(), w.shape(), &stride, &lo, &hi, &kd, &id)?;
    let us = |v: &[i64]| v.iter().map(|&a| a as usize).collect::<Vec<usize>>();
    let prim = Convolution(ConvParams {
        stride: us(&stride),
        pad_lo: lo,
        pad_hi: hi,
        kernel_dilation: us(&kd),
        input_dilation: us(&id),
        groups: groups as usize,
        flip,
    });
    Ok(prim.node(&x, &w, shape))
}

/// 1-d convolution (correlation) of `[N, L, C_in]` with `[C_out, K, C_in / groups]`.
pub fn conv1d(
    input: &Array,
    weight: &Array,
    stride: i64,
    padding: i64,
    dilation: i64,
    groups: i64,
) -> Result<Array> {
    conv_general(
        input,
        weight,
        &[stride],
        &[padding],
        &[padding],
        &[dilation],
        &[1],
        groups,
        false,
    )
}

/// 2-d convolution of `[N, H, W, C_in]` with `[C_out, KH, KW, C_in / groups]`.
pub fn conv2d(
    input: &Array,
    weight: &Array,
    stride: [i64; 2],
    padding: [i64; 2],
    dilation: [i64; 2],
    groups: i64,
) -> Result<Array> {
    conv_general(
        input,
        weight,
        &stride,
        &padding,
        &padding,
        &dilation,
        &[1, 1],
        groups,
        false,
    )
}

/// 3-d convolution of `[N, D, H, W, C_in]` with `[C_out, KD, KH, KW, C_in / groups]`.
pub fn conv3d(
    input: &Array,
    weight: &Array,
    stride: [i64; 3],
    padding: [i64; 3],
    dilation: [i64; 3],
    groups: i64,
) -> Result<Array> {
    conv_general(
        input,
        weight,
        &stride,
        &padding,
        &padding,
        &dilation,
        &[1, 1, 1],
        groups,
        false,
    )
}

/// MLX's `conv_transpose_general`: a flipped convolution of the input dilated by the
/// stride, padded by `dilated kernel - 1 - padding` low and that plus `output_padding` high.
fn conv_transpose_general(
    input: &Array,
    weight: &Array,
    stride: &[i64],
    padding: &[i64],
    dilation: &[i64],
    output_padding: &[i64],
    groups: i64,
) -> Result<Array> {
    let nsp = stride.len();
    let mut lo = vec![0i64; nsp];
    let mut hi = vec![0i64; nsp];
    // rank errors are conv_general's to report
    if input.ndim() == nsp + 2 && weight.ndim() == nsp + 2 {
        for i in 0..nsp {
            let k = weight.shape()[1 + i] as i64;
            let l = input.shape()[1 + i] as i64;
            // saturating: absurd parameters become an out-of-range error, not an overflow
            let wt_size = dilation[i].saturating_mul(k - 1).saturating_add(1);
            lo[i] = wt_size.saturating_sub(padding[i]).saturating_sub(1);
            // conv output size minus the dilated input size, as MLX computes them
            let conv_out = ((l - 1).saturating_mul(stride[i]))
                .saturating_sub(padding[i].saturating_mul(2))
                .saturating_add(dilation[i].saturating_mul(k - 1))
                .saturating_add(1);
            let out_size = stride[i].saturating_mul(l - 1).saturating_add(1);
            hi[i] = conv_out
                .saturating_sub(out_size)
                .saturating_add(padding[i])
                .saturating_add(output_padding[i]);
        }
    }
    conv_general(
        input,
        weight,
        &vec![1; nsp],
        &lo,
        &hi,
        dilation,
        stride,
        groups,
        true,
    )
}

/// 1-d transposed convolution.
pub fn conv_transpose1d(
    input: &Array,
    weight: &Array,
    stride: i64,
    padding: i64,
    dilation: i64,
    output_padding: i64,
    groups: i64,
) -> Result<Array> {
    conv_transpose_general(
        input,
        weight,
        &[stride],
        &[padding],
        &[dilation],
        &[output_padding],
        groups,
    )
}

/// 2-d transposed convolution.
pub fn conv_transpose2d(
    input: &Array,
    weight: &Array,
    stride: [i64; 2],
    padding: [i64; 2],
    dilation: [i64; 2],
    output_padding: [i64; 2],
    groups: i64,
) -> Result<Array> {
    conv_transpose_general(
        input,
        weight,
        &stride,
        &padding,
        &dilation,
        &output_padding,
        groups,
    )
}

/// 3-d transposed convolution.
pub fn conv_transpose3d(
    input: &Array,
    weight: &Array,
    stride: [i64; 3],
    padding: [i64; 3],
    dilation: [i64; 3],
    output_padding: [i64; 3],
    groups: i64,
) -> Result<Array> {
    conv_transpose_general(
        input,
        weight,
        &stride,
        &padding,
        &dilation,
        &output_padding,
        groups,
    )
}

/// The discrete convolution of two 1-d arrays (the longer one slides under the shorter,
/// flipped), `mode` "full", "valid" or "same" as in NumPy.
pub fn convolve(a: &Array, v: &Array, mode: &str) -> Result<Array> {
    if a.ndim() != 1 || v.ndim() != 1 {
        return Err(crate::value_err!("[convolve] Inputs must be 1D."));
    }
    if a.size() == 0 || v.size() == 0 {
        return Err(crate::value_err!("[convolve] Inputs cannot be empty."));
    }
    let (inp, wt) = if a.size() < v.size() { (v, a) } else { (a, v) };
    let k = wt.size() as i64;
    let (lo, hi) = match mode {
        "full" => (k - 1, k - 1),
        "valid" => (0, 0),
        "same" if k % 2 == 1 => (k / 2, k / 2),
        "same" => (k / 2, (k / 2 - 1).max(0)),
        _ => return Err(crate::value_err!("[convolve] Invalid mode.")),
    };
    let x = reshape(inp, &[1, -1, 1])?;
    let w = reshape(wt, &[1, -1, 1])?;
    let out = conv_general(&x, &w, &[1], &[lo], &[hi], &[1], &[1], 1, true)?;
    reshape(&out, &[-1])
}
