//! Export of the primitives with their own kernel families: creation, FFT, convolution,
//! quantization, fp8, random bits and the linalg decompositions. Their parameters are
//! checked against the step's inputs at import (`validate`), since a damaged file must
//! not hand a kernel parameters that disagree with its operands.

use super::codec::{bad_file, dtype_name, dtype_of, scalar_json, P};
use rmx_core::backend::{ConvParams, LinalgOp};
use rmx_core::ops::quantized_fp::QuantMode;
use rmx_core::primitive::{OutputSpec, Primitive};
use rmx_core::primitives::conv::Convolution;
use rmx_core::primitives::creation::{Arange, Full};
use rmx_core::primitives::decompositions::Linalg;
use rmx_core::primitives::fft::Fft;
use rmx_core::primitives::fp8::ConvertFp8;
use rmx_core::primitives::qqmm::QQMatmul;
use rmx_core::primitives::quantized::{Dequantize, Quantize, QuantizedMatmul};
use rmx_core::primitives::random::RandomBits;
use rmx_core::shape::Shape;
use rmx_core::{ops, Array, Dtype, Result};
use serde_json::{json, Value};
use std::sync::Arc;

const MODES: [QuantMode; 4] = [
    QuantMode::Affine,
    QuantMode::Mxfp4,
    QuantMode::Mxfp8,
    QuantMode::Nvfp4,
];

fn mode_of(p: &P, k: &str) -> Result<QuantMode> {
    let name = p.str(k)?;
    MODES
        .into_iter()
        .find(|m| m.name() == name)
        .ok_or_else(|| bad_file(k))
}

/// f64 parameters travel as their bit patterns (exact; NaN and inf survive JSON).
fn f64_of(p: &P, k: &str) -> Result<f64> {
    let b = p.get(k)?.as_u64().ok_or_else(|| bad_file(k))?;
    Ok(f64::from_bits(b))
}

fn linalg_json(op: LinalgOp) -> Value {
    use LinalgOp as L;
    match op {
        L::Inv => json!({"op": "Inv"}),
        L::TriInv { upper } => json!({"op": "TriInv", "upper": upper}),
        L::Cholesky { upper } => json!({"op": "Cholesky", "upper": upper}),
        L::Qr => json!({"op": "Qr"}),
        L::Svd { compute_uv } => json!({"op": "Svd", "compute_uv": compute_uv}),
        L::Eigh { upper, vectors } => json!({"op": "Eigh", "upper": upper, "vectors": vectors}),
        L::Eig { vectors } => json!({"op": "Eig", "vectors": vectors}),
        L::LuFactor => json!({"op": "LuFactor"}),
        L::Lu => json!({"op": "Lu"}),
        L::Solve => json!({"op": "Solve"}),
        L::SolveTriangular { upper } => json!({"op": "SolveTriangular", "upper": upper}),
        L::Det { log } => json!({"op": "Det", "log": log}),
    }
}

fn linalg_of(p: &P) -> Result<LinalgOp> {
    use LinalgOp as L;
    Ok(match p.str("op")? {
        "Inv" => L::Inv,
        "TriInv" => L::TriInv {
            upper: p.bool("upper")?,
        },
        "Cholesky" => L::Cholesky {
            upper: p.bool("upper")?,
        },
        "Qr" => L::Qr,
        "Svd" => L::Svd {
            compute_uv: p.bool("compute_uv")?,
        },
        "Eigh" => L::Eigh {
            upper: p.bool("upper")?,
            vectors: p.bool("vectors")?,
        },
        "Eig" => L::Eig {
            vectors: p.bool("vectors")?,
        },
        "LuFactor" => L::LuFactor,
        "Lu" => L::Lu,
        "Solve" => L::Solve,
        "SolveTriangular" => L::SolveTriangular {
            upper: p.bool("upper")?,
        },
        "Det" => L::Det {
            log: p.bool("log")?,
        },
        other => return Err(bad_file(&format!("linalg operation {other}"))),
    })
}

/// `(op, params)` of the primitives of this file; None for any other primitive.
pub(super) fn encode(prim: &dyn Primitive) -> Option<(&'static str, Value)> {
    let any = prim.as_any();
    Some(if let Some(p) = any.downcast_ref::<Full>() {
        ("Full", json!({"value": scalar_json(p.value)}))
    } else if let Some(p) = any.downcast_ref::<Arange>() {
        let v = json!({"start": p.start.to_bits(), "step": p.step.to_bits()});
        ("Arange", v)
    } else if let Some(p) = any.downcast_ref::<Fft>() {
        let v = json!({"axes": p.axes, "inverse": p.inverse, "real": p.real,
                       "scale": p.scale.to_bits(), "n": p.n});
        ("Fft", v)
    } else if let Some(Convolution(c)) = any.downcast_ref::<Convolution>() {
        let v = json!({"stride": c.stride, "pad_lo": c.pad_lo, "pad_hi": c.pad_hi,
                       "kernel_dilation": c.kernel_dilation, "input_dilation": c.input_dilation,
                       "groups": c.groups, "flip": c.flip});
        ("Convolution", v)
    } else if let Some(p) = any.downcast_ref::<Quantize>() {
        (
            "Quantize",
            json!({"group_size": p.group_size, "bits": p.bits}),
        )
    } else if let Some(p) = any.downcast_ref::<Dequantize>() {
        let v = json!({"group_size": p.group_size, "bits": p.bits, "dtype": dtype_name(p.dtype)});
        ("Dequantize", v)
    } else if let Some(p) = any.downcast_ref::<QuantizedMatmul>() {
        let v = json!({"group_size": p.group_size, "bits": p.bits, "transpose": p.transpose,
                       "mode": p.mode.name()});
        ("QuantizedMatmul", v)
    } else if let Some(p) = any.downcast_ref::<QQMatmul>() {
        let v = json!({"mode": p.mode.name(), "dense": p.dense, "global": p.global});
        ("QQMatmul", v)
    } else if let Some(p) = any.downcast_ref::<ConvertFp8>() {
        ("ConvertFp8", json!({"to_fp8": p.to_fp8}))
    } else if let Some(p) = any.downcast_ref::<RandomBits>() {
        (
            "RandomBits",
            json!({"shape": p.shape.as_slice(), "width": p.width}),
        )
    } else if let Some(p) = any.downcast_ref::<Linalg>() {
        ("Linalg", linalg_json(p.op))
    } else {
        return None;
    })
}

/// The primitive of `op`, or None when `op` is not one of this file's.
pub(super) fn decode(op: &str, p: &P) -> Result<Option<Arc<dyn Primitive>>> {
    let prim: Arc<dyn Primitive> = match op {
        "Full" => Arc::new(Full {
            value: p.scalar("value")?,
        }),
        "Arange" => Arc::new(Arange {
            start: f64_of(p, "start")?,
            step: f64_of(p, "step")?,
        }),
        "Fft" => Arc::new(Fft {
            axes: p.usizes("axes")?,
            inverse: p.bool("inverse")?,
            real: p.bool("real")?,
            scale: f64_of(p, "scale")?,
            n: p.usize("n")?,
        }),
        "Convolution" => Arc::new(Convolution(ConvParams {
            stride: p.usizes("stride")?,
            pad_lo: p.i64s("pad_lo")?,
            pad_hi: p.i64s("pad_hi")?,
            kernel_dilation: p.usizes("kernel_dilation")?,
            input_dilation: p.usizes("input_dilation")?,
            groups: p.usize("groups")?,
            flip: p.bool("flip")?,
        })),
        "Quantize" => Arc::new(Quantize {
            group_size: p.usize("group_size")?,
            bits: p.usize("bits")?,
        }),
        "Dequantize" => Arc::new(Dequantize {
            group_size: p.usize("group_size")?,
            bits: p.usize("bits")?,
            dtype: dtype_of(p.get("dtype")?)?,
        }),
        "QuantizedMatmul" => Arc::new(QuantizedMatmul {
            group_size: p.usize("group_size")?,
            bits: p.usize("bits")?,
            transpose: p.bool("transpose")?,
            mode: mode_of(p, "mode")?,
        }),
        "QQMatmul" => Arc::new(QQMatmul {
            mode: mode_of(p, "mode")?,
            dense: p.bool("dense")?,
            global: p.bool("global")?,
        }),
        "ConvertFp8" => Arc::new(ConvertFp8 {
            to_fp8: p.bool("to_fp8")?,
        }),
        "RandomBits" => Arc::new(RandomBits {
            shape: p.usizes("shape")?.into(),
            width: p.usize("width")?,
        }),
        "Linalg" => Arc::new(Linalg { op: linalg_of(p)? }),
        _ => return Ok(None),
    };
    Ok(Some(prim))
}

/// Checks a decoded step of this file's primitives against its operands: the output
/// specs must be what the op would build from inputs of these shapes and types. Shapes
/// are checked by rebuilding the op on lazy zeros where its rule is long (nothing is
/// computed); other primitives pass.
pub(super) fn validate(
    prim: &dyn Primitive,
    ins: &[(Shape, Dtype)],
    outs: &[OutputSpec],
) -> Result<()> {
    let any = prim.as_any();
    let bad = || {
        bad_file(&format!(
            "{} parameters that do not fit its operands",
            prim.name()
        ))
    };
    let zeros = |i: usize| -> Result<Array> {
        let (s, d) = ins.get(i).ok_or_else(bad)?;
        let dims: Vec<i64> = s.iter().map(|&n| n as i64).collect();
        ops::creation::zeros(&dims, *d)
    };
    let ints = |v: &[usize]| v.iter().map(|&x| x as i64).collect::<Vec<i64>>();
    let rebuilt: Vec<Array> = if let Some(Convolution(c)) = any.downcast_ref::<Convolution>() {
        let (x, w) = (zeros(0)?, zeros(1)?);
        if ins.len() != 2 || x.dtype() != w.dtype() {
            return Err(bad());
        }
        vec![ops::conv::conv_general(
            &x,
            &w,
            &ints(&c.stride),
            &c.pad_lo,
            &c.pad_hi,
            &ints(&c.kernel_dilation),
            &ints(&c.input_dilation),
            c.groups as i64,
            c.flip,
        )
        .map_err(|_| bad())?]
    } else if let Some(p) = any.downcast_ref::<Quantize>() {
        let (gs, bits) = (Some(p.group_size as i64), Some(p.bits as i64));
        ops::quantized::quantize(&zeros(0)?, gs, bits, "affine").map_err(|_| bad())?
    } else if let Some(p) = any.downcast_ref::<Dequantize>() {
        let (gs, bits) = (Some(p.group_size as i64), Some(p.bits as i64));
        if ins.len() != 3 {
            return Err(bad());
        }
        let (w, s, b) = (zeros(0)?, zeros(1)?, zeros(2)?);
        let d = ops::quantized::dequantize(&w, &s, Some(&b), gs, bits, "affine", Some(p.dtype));
        vec![d.map_err(|_| bad())?]
    } else if let Some(p) = any.downcast_ref::<QuantizedMatmul>() {
        let (gs, bits) = (Some(p.group_size as i64), Some(p.bits as i64));
        let biases = if ins.len() == 4 {
            Some(zeros(3)?)
        } else {
            None
        };
        let (x, w, s) = (zeros(0)?, zeros(1)?, zeros(2)?);
        let mode = p.mode.name();
        let y = ops::quantized::quantized_matmul(
            &x,
            &w,
            &s,
            biases.as_ref(),
            p.transpose,
            gs,
            bits,
            mode,
        );
        vec![y.map_err(|_| bad())?]
    } else if let Some(p) = any.downcast_ref::<Fft>() {
        return check_fft(p, ins, outs).ok_or_else(bad);
    } else if let Some(p) = any.downcast_ref::<RandomBits>() {
        let key_ok = ins.len() == 1
            && ins[0].1 == Dtype::Uint32
            && ins[0].0.last() == Some(&2)
            && [1, 2, 4].contains(&p.width);
        let out_ok = outs.len() == 1
            && outs[0].shape == p.shape
            && outs[0].dtype == RandomBits::dtype(p.width);
        return if key_ok && out_ok { Ok(()) } else { Err(bad()) };
    } else if any.is::<ConvertFp8>() {
        let ok = ins.len() == 1 && outs.len() == 1 && outs[0].shape == ins[0].0;
        return if ok { Ok(()) } else { Err(bad()) };
    } else {
        return Ok(());
    };
    let same = rebuilt.len() == outs.len()
        && rebuilt
            .iter()
            .zip(outs)
            .all(|(a, o)| a.shape() == o.shape.as_slice() && a.dtype() == o.dtype);
    if same {
        Ok(())
    } else {
        Err(bad())
    }
}

/// An FFT step's rule: distinct axes of the input; the last axis halves (`n/2 + 1`) in a
/// real forward transform and becomes `n` from `n/2 + 1` bins in a real inverse one.
fn check_fft(p: &Fft, ins: &[(Shape, Dtype)], outs: &[OutputSpec]) -> Option<()> {
    let [(shape, dtype)] = ins else { return None };
    let [out] = outs else { return None };
    let rank = shape.len();
    let mut seen = vec![false; rank];
    for &a in &p.axes {
        if a >= rank || std::mem::replace(&mut seen[a], true) {
            return None;
        }
    }
    let last = *p.axes.last()?;
    let mut want = shape.clone();
    let (in_dt, out_dt) = match (p.real, p.inverse) {
        (false, _) => (Dtype::Complex64, Dtype::Complex64),
        (true, false) => {
            want[last] = shape[last] / 2 + 1;
            (Dtype::Float32, Dtype::Complex64)
        }
        (true, true) => {
            if shape[last] != p.n / 2 + 1 {
                return None;
            }
            want[last] = p.n;
            (Dtype::Complex64, Dtype::Float32)
        }
    };
    (*dtype == in_dt && out.shape == want && out.dtype == out_dt).then_some(())
}
