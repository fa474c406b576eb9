//! How each primitive is written to and read from an export file: `(op, params)` JSON.

use rmx_core::backend::{ArgReduceOp, BinaryOp, NormKind, ReduceOp, ScanOp, ScatterMode, UnaryOp};
use rmx_core::primitive::Primitive;
use rmx_core::primitives::autodiff::{Identity, StopGradient};
use rmx_core::primitives::depends::Depends;
use rmx_core::primitives::elementwise::{AsType, Binary, BitCast, Select, Unary};
use rmx_core::primitives::fast::attention::{Attention, MaskKind};
use rmx_core::primitives::fast::norm::Norm;
use rmx_core::primitives::fast::rope::Rope;
use rmx_core::primitives::fused::{Arg, Fused, FusedKind, FusedOp};
use rmx_core::primitives::indexing::{CheckIndices, ScatterAxis, Take, TakeAlongAxis};
use rmx_core::primitives::linalg::Matmul;
use rmx_core::primitives::reduce::{ArgReduce, Reduce, Scan, Softmax};
use rmx_core::primitives::sort::{SearchSorted, Sort};
use rmx_core::primitives::structure::{Concatenate, Copy, Pad, SliceUpdate};
use rmx_core::primitives::views::{AsStrided, Broadcast, Reshape, Slice, Transpose};
use rmx_core::{runtime_err, value_err, Dtype, Result, Scalar};
use serde_json::{json, Value};
use std::sync::Arc;

pub(super) fn op_err(name: &str) -> rmx_core::Error {
    value_err!("[export_function] Primitive {name} cannot be exported yet.")
}

pub(super) fn bad_file(what: &str) -> rmx_core::Error {
    runtime_err!("[import_function] Invalid or corrupt function file: {what}.")
}
/// The variant whose Debug name is `name`, among `all`.
pub(super) fn by_name<T: std::fmt::Debug + std::marker::Copy>(all: &[T], name: &str) -> Result<T> {
    all.iter()
        .copied()
        .find(|v| format!("{v:?}") == name)
        .ok_or_else(|| bad_file(&format!("unknown operation {name}")))
}

/// The Debug name of `v`, checked to decode back (so a new enum variant fails at export).
pub(super) fn name_of<T: std::fmt::Debug + std::marker::Copy + PartialEq>(
    all: &[T],
    v: T,
    prim: &str,
) -> Result<String> {
    if all.contains(&v) {
        Ok(format!("{v:?}"))
    } else {
        Err(op_err(prim))
    }
}

use UnaryOp as U;
const UNARY: [UnaryOp; 41] = [
    U::Abs,
    U::Negative,
    U::Sign,
    U::Sqrt,
    U::Rsqrt,
    U::Square,
    U::Reciprocal,
    U::Exp,
    U::Expm1,
    U::Log,
    U::Log1p,
    U::Log2,
    U::Log10,
    U::Sin,
    U::Cos,
    U::Tan,
    U::Arcsin,
    U::Arccos,
    U::Arctan,
    U::Sinh,
    U::Cosh,
    U::Tanh,
    U::Arcsinh,
    U::Arccosh,
    U::Arctanh,
    U::Floor,
    U::Ceil,
    U::Round,
    U::Trunc,
    U::Erf,
    U::Erfinv,
    U::Sigmoid,
    U::LogicalNot,
    U::BitwiseInvert,
    U::Real,
    U::Imag,
    U::Conjugate,
    U::IsNan,
    U::IsInf,
    U::IsPosInf,
    U::IsNegInf,
];
use BinaryOp as B;
const BINARY: [BinaryOp; 25] = [
    B::Add,
    B::Subtract,
    B::Multiply,
    B::Divide,
    B::Power,
    B::Maximum,
    B::Minimum,
    B::Remainder,
    B::FloorDivide,
    B::Arctan2,
    B::LogAddExp,
    B::Equal,
    B::NotEqual,
    B::Less,
    B::LessEqual,
    B::Greater,
    B::GreaterEqual,
    B::NanEqual,
    B::LogicalAnd,
    B::LogicalOr,
    B::BitwiseAnd,
    B::BitwiseOr,
    B::BitwiseXor,
    B::LeftShift,
    B::RightShift,
];
const REDUCE: [ReduceOp; 6] = [
    ReduceOp::Sum,
    ReduceOp::Prod,
    ReduceOp::Max,
    ReduceOp::Min,
    ReduceOp::All,
    ReduceOp::Any,
];
const ARGREDUCE: [ArgReduceOp; 2] = [ArgReduceOp::ArgMax, ArgReduceOp::ArgMin];
const SCATTER: [ScatterMode; 5] = [
    ScatterMode::Set,
    ScatterMode::Add,
    ScatterMode::Prod,
    ScatterMode::Max,
    ScatterMode::Min,
];
const NORM: [NormKind; 2] = [NormKind::Rms, NormKind::Layer];
const MASK: [MaskKind; 4] = [
    MaskKind::None,
    MaskKind::Causal,
    MaskKind::Bool,
    MaskKind::Additive,
];

pub(super) fn dtype_name(d: Dtype) -> &'static str {
    d.name()
}

pub(super) fn dtype_of(v: &Value) -> Result<Dtype> {
    v.as_str()
        .and_then(Dtype::from_name)
        .ok_or_else(|| bad_file("dtype"))
}

/// f32 parameters travel as their bit patterns: exact, and NaN/inf survive JSON.
pub(super) fn f32_bits(x: f32) -> Value {
    json!(x.to_bits())
}

pub(super) fn scalar_json(s: Scalar) -> Value {
    match s {
        Scalar::Bool(b) => json!(["bool", b]),
        Scalar::Int(i) => json!(["int", i]),
        Scalar::UInt(u) => json!(["uint", u]),
        Scalar::Float(f) => json!(["float", f.to_bits()]),
        Scalar::Complex(c) => json!(["complex", c.re.to_bits(), c.im.to_bits()]),
    }
}

/// Reads the parameters of one step.
pub(super) struct P<'a>(pub(super) &'a Value);

impl P<'_> {
    pub(super) fn get(&self, k: &str) -> Result<&Value> {
        self.0
            .get(k)
            .ok_or_else(|| bad_file(&format!("missing parameter {k}")))
    }
    pub(super) fn usize(&self, k: &str) -> Result<usize> {
        self.get(k)?
            .as_u64()
            .map(|x| x as usize)
            .ok_or_else(|| bad_file(k))
    }
    pub(super) fn bool(&self, k: &str) -> Result<bool> {
        self.get(k)?.as_bool().ok_or_else(|| bad_file(k))
    }
    pub(super) fn str(&self, k: &str) -> Result<&str> {
        self.get(k)?.as_str().ok_or_else(|| bad_file(k))
    }
    pub(super) fn f32(&self, k: &str) -> Result<f32> {
        let b = self.get(k)?.as_u64().ok_or_else(|| bad_file(k))?;
        Ok(f32::from_bits(b as u32))
    }
    pub(super) fn usizes(&self, k: &str) -> Result<Vec<usize>> {
        self.get(k)?
            .as_array()
            .ok_or_else(|| bad_file(k))?
            .iter()
            .map(|x| x.as_u64().map(|x| x as usize).ok_or_else(|| bad_file(k)))
            .collect()
    }
    pub(super) fn i64s(&self, k: &str) -> Result<Vec<i64>> {
        self.get(k)?
            .as_array()
            .ok_or_else(|| bad_file(k))?
            .iter()
            .map(|x| x.as_i64().ok_or_else(|| bad_file(k)))
            .collect()
    }
    pub(super) fn isizes(&self, k: &str) -> Result<Vec<isize>> {
        Ok(self.i64s(k)?.into_iter().map(|x| x as isize).collect())
    }
    pub(super) fn scalar(&self, k: &str) -> Result<Scalar> {
        let v = self.get(k)?.as_array().ok_or_else(|| bad_file(k))?;
        let tag = v
            .first()
            .and_then(|t| t.as_str())
            .ok_or_else(|| bad_file(k))?;
        let at = |i: usize| v.get(i).ok_or_else(|| bad_file(k));
        let bits = |i: usize| at(i)?.as_u64().ok_or_else(|| bad_file(k));
        Ok(match tag {
            "bool" => Scalar::Bool(at(1)?.as_bool().ok_or_else(|| bad_file(k))?),
            "int" => Scalar::Int(at(1)?.as_i64().ok_or_else(|| bad_file(k))?),
            "uint" => Scalar::UInt(bits(1)?),
            "float" => Scalar::Float(f64::from_bits(bits(1)?)),
            "complex" => Scalar::Complex(num_complex::Complex32::new(
                f32::from_bits(bits(1)? as u32),
                f32::from_bits(bits(2)? as u32),
            )),
            _ => return Err(bad_file(k)),
        })
    }
}

/// `(op, params)` of a primitive, or the "cannot be exported yet" error.
pub(super) fn encode(prim: &dyn Primitive) -> Result<(&'static str, Value)> {
    let any = prim.as_any();
    let name = prim.name();
    macro_rules! is {
        ($t:ty) => {
            any.downcast_ref::<$t>()
        };
    }
    let out = if let Some(p) = is!(Unary) {
        ("Unary", json!({"op": name_of(&UNARY, p.op, name)?}))
    } else if let Some(p) = is!(Binary) {
        ("Binary", json!({"op": name_of(&BINARY, p.op, name)?}))
    } else if is!(Select).is_some() {
        ("Select", json!({}))
    } else if let Some(p) = is!(AsType) {
        ("AsType", json!({"dtype": dtype_name(p.dtype)}))
    } else if let Some(p) = is!(BitCast) {
        ("BitCast", json!({"dtype": dtype_name(p.dtype)}))
    } else if let Some(p) = is!(Reshape) {
        ("Reshape", json!({"infer": p.infer}))
    } else if let Some(p) = is!(Transpose) {
        ("Transpose", json!({"perm": p.perm}))
    } else if let Some(p) = is!(Slice) {
        ("Slice", json!({"start": p.start, "step": p.step}))
    } else if is!(Broadcast).is_some() {
        ("Broadcast", json!({}))
    } else if let Some(p) = is!(AsStrided) {
        (
            "AsStrided",
            json!({"strides": p.strides, "offset": p.offset}),
        )
    } else if let Some(p) = is!(Reduce) {
        let op = name_of(&REDUCE, p.op, name)?;
        ("Reduce", json!({"op": op, "axes": p.axes}))
    } else if let Some(p) = is!(ArgReduce) {
        let op = name_of(&ARGREDUCE, p.op, name)?;
        ("ArgReduce", json!({"op": op, "axis": p.axis}))
    } else if is!(Softmax).is_some() {
        ("Softmax", json!({}))
    } else if let Some(p) = is!(Scan) {
        let op = match p.op {
            ScanOp::Reduce(r) => name_of(&REDUCE, r, name)?,
            ScanOp::LogAddExp => "LogAddExp".to_string(),
        };
        let v = json!({"op": op, "axis": p.axis, "reverse": p.reverse, "inclusive": p.inclusive});
        ("Scan", v)
    } else if is!(Copy).is_some() {
        ("Copy", json!({}))
    } else if let Some(p) = is!(Concatenate) {
        ("Concatenate", json!({"axis": p.axis}))
    } else if let Some(p) = is!(Pad) {
        let v = json!({"low": p.low, "value": scalar_json(p.value), "edge": p.edge});
        ("Pad", v)
    } else if let Some(p) = is!(SliceUpdate) {
        ("SliceUpdate", json!({"start": p.start, "step": p.step}))
    } else if is!(Matmul).is_some() {
        ("Matmul", json!({}))
    } else if let Some(p) = is!(Norm) {
        let v = json!({"kind": name_of(&NORM, p.kind, name)?, "eps": f32_bits(p.eps),
                       "has_weight": p.has_weight, "has_bias": p.has_bias});
        ("Norm", v)
    } else if let Some(p) = is!(Rope) {
        let v = json!({"dims": p.dims, "traditional": p.traditional,
                       "base": p.base.map(f32_bits), "scale": f32_bits(p.scale)});
        ("Rope", v)
    } else if let Some(p) = is!(Attention) {
        let v = json!({"scale": f32_bits(p.scale), "mask": name_of(&MASK, p.mask, name)?,
                       "has_sinks": p.has_sinks});
        ("Attention", v)
    } else if let Some(p) = is!(Take) {
        ("Take", json!({"axis": p.axis}))
    } else if let Some(p) = is!(TakeAlongAxis) {
        ("TakeAlongAxis", json!({"axis": p.axis}))
    } else if let Some(p) = is!(ScatterAxis) {
        let mode = name_of(&SCATTER, p.mode, name)?;
        ("ScatterAxis", json!({"mode": mode, "axis": p.axis}))
    } else if let Some(p) = is!(CheckIndices) {
        ("CheckIndices", json!({"size": p.size, "axis": p.axis}))
    } else if let Some(p) = is!(Sort) {
        ("Sort", json!({"axis": p.axis, "kth": p.kth, "arg": p.arg}))
    } else if let Some(p) = is!(SearchSorted) {
        ("SearchSorted", json!({"right": p.right}))
    } else if let Some(p) = is!(Fused) {
        ("Fused", json!({"ops": fused_ops_json(p, name)?}))
    } else if is!(StopGradient).is_some() {
        ("StopGradient", json!({}))
    } else if is!(Identity).is_some() {
        ("Identity", json!({}))
    } else if let Some(p) = is!(Depends) {
        ("Depends", json!({"n": p.n}))
    } else if let Some(out) = super::codec_kernels::encode(prim) {
        out
    } else {
        return Err(op_err(name));
    };
    Ok(out)
}

pub(super) fn decode(op: &str, params: &Value) -> Result<Arc<dyn Primitive>> {
    let p = P(params);
    Ok(match op {
        "Unary" => Arc::new(Unary {
            op: by_name(&UNARY, p.str("op")?)?,
        }),
        "Binary" => Arc::new(Binary {
            op: by_name(&BINARY, p.str("op")?)?,
        }),
        "Select" => Arc::new(Select),
        "AsType" => Arc::new(AsType {
            dtype: dtype_of(p.get("dtype")?)?,
        }),
        "BitCast" => Arc::new(BitCast {
            dtype: dtype_of(p.get("dtype")?)?,
        }),
        "Reshape" => Arc::new(Reshape {
            infer: match p.get("infer")? {
                Value::Null => None,
                _ => Some(p.usize("infer")?),
            },
        }),
        "Transpose" => Arc::new(Transpose {
            perm: p.usizes("perm")?,
        }),
        "Slice" => Arc::new(Slice {
            start: p.usizes("start")?,
            step: p.isizes("step")?,
        }),
        "Broadcast" => Arc::new(Broadcast),
        "AsStrided" => Arc::new(AsStrided {
            strides: p.isizes("strides")?,
            offset: p.usize("offset")?,
        }),
        "Reduce" => Arc::new(Reduce {
            op: by_name(&REDUCE, p.str("op")?)?,
            axes: p.usizes("axes")?,
        }),
        "ArgReduce" => Arc::new(ArgReduce {
            op: by_name(&ARGREDUCE, p.str("op")?)?,
            axis: p.usize("axis")?,
        }),
        "Softmax" => Arc::new(Softmax),
        "Scan" => Arc::new(Scan {
            op: match p.str("op")? {
                "LogAddExp" => ScanOp::LogAddExp,
                r => ScanOp::Reduce(by_name(&REDUCE, r)?),
            },
            axis: p.usize("axis")?,
            reverse: p.bool("reverse")?,
            inclusive: p.bool("inclusive")?,
        }),
        "Copy" => Arc::new(Copy),
        "Concatenate" => Arc::new(Concatenate {
            axis: p.usize("axis")?,
        }),
        "Pad" => Arc::new(Pad {
            low: p.usizes("low")?,
            value: p.scalar("value")?,
            edge: p.bool("edge")?,
        }),
        "SliceUpdate" => Arc::new(SliceUpdate {
            start: p.usizes("start")?,
            step: p.isizes("step")?,
        }),
        "Matmul" => Arc::new(Matmul),
        "Norm" => Arc::new(Norm {
            kind: by_name(&NORM, p.str("kind")?)?,
            eps: p.f32("eps")?,
            has_weight: p.bool("has_weight")?,
            has_bias: p.bool("has_bias")?,
        }),
        "Rope" => Arc::new(Rope {
            dims: p.usize("dims")?,
            traditional: p.bool("traditional")?,
            base: if p.get("base")?.is_null() {
                None
            } else {
                Some(p.f32("base")?)
            },
            scale: p.f32("scale")?,
        }),
        "Attention" => Arc::new(Attention {
            scale: p.f32("scale")?,
            mask: by_name(&MASK, p.str("mask")?)?,
            has_sinks: p.bool("has_sinks")?,
        }),
        "Take" => Arc::new(Take {
            axis: p.usize("axis")?,
        }),
        "TakeAlongAxis" => Arc::new(TakeAlongAxis {
            axis: p.usize("axis")?,
        }),
        "ScatterAxis" => Arc::new(ScatterAxis {
            mode: by_name(&SCATTER, p.str("mode")?)?,
            axis: p.usize("axis")?,
        }),
        "CheckIndices" => Arc::new(CheckIndices {
            size: p.usize("size")?,
            axis: p.usize("axis")?,
        }),
        "Sort" => Arc::new(Sort {
            axis: p.usize("axis")?,
            kth: if p.get("kth")?.is_null() {
                None
            } else {
                Some(p.usize("kth")?)
            },
            arg: p.bool("arg")?,
        }),
        "SearchSorted" => Arc::new(SearchSorted {
            right: p.bool("right")?,
        }),
        "Fused" => Arc::new(fused_from_json(p.get("ops")?)?),
        "StopGradient" => Arc::new(StopGradient),
        "Identity" => Arc::new(Identity),
        "Depends" => Arc::new(Depends { n: p.usize("n")? }),
        other => super::codec_kernels::decode(other, &p)?
            .ok_or_else(|| bad_file(&format!("unknown operation {other}")))?,
    })
}

/// A `Fused` program (from a `compile`d function called inside the exported one).
fn fused_ops_json(f: &Fused, prim: &str) -> Result<Vec<Value>> {
    f.ops
        .iter()
        .map(|o| {
            let (kind, op) = match o.kind {
                FusedKind::Unary(u) => ("Unary", Some(name_of(&UNARY, u, prim)?)),
                FusedKind::Binary(b) => ("Binary", Some(name_of(&BINARY, b, prim)?)),
                FusedKind::Cast => ("Cast", None),
                FusedKind::Select => ("Select", None),
            };
            let args: Vec<Value> = o
                .args
                .iter()
                .map(|a| match a {
                    Arg::Input(i) => json!(["in", i]),
                    Arg::Op(j) => json!(["op", j]),
                })
                .collect();
            Ok(json!({"kind": kind, "op": op, "args": args, "dtype": dtype_name(o.dtype)}))
        })
        .collect()
}

fn fused_from_json(v: &Value) -> Result<Fused> {
    let list = v.as_array().ok_or_else(|| bad_file("fused ops"))?;
    let mut ops = Vec::with_capacity(list.len());
    for o in list {
        let p = P(o);
        let kind = match p.str("kind")? {
            "Unary" => FusedKind::Unary(by_name(&UNARY, p.str("op")?)?),
            "Binary" => FusedKind::Binary(by_name(&BINARY, p.str("op")?)?),
            "Cast" => FusedKind::Cast,
            "Select" => FusedKind::Select,
            k => return Err(bad_file(&format!("fused kind {k}"))),
        };
        let args = p
            .get("args")?
            .as_array()
            .ok_or_else(|| bad_file("fused args"))?
            .iter()
            .map(|a| {
                let idx = a.get(1).and_then(|x| x.as_u64()).map(|x| x as usize);
                match (a.get(0).and_then(|t| t.as_str()), idx) {
                    (Some("in"), Some(i)) => Ok(Arg::Input(i)),
                    (Some("op"), Some(j)) if j < ops.len() => Ok(Arg::Op(j)),
                    _ => Err(bad_file("fused argument")),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        ops.push(FusedOp {
            kind,
            args,
            dtype: dtype_of(p.get("dtype")?)?,
        });
    }
    if ops.is_empty() {
        return Err(bad_file("empty fused program"));
    }
    Ok(Fused { ops })
}

/// Input and output counts of the fixed-arity primitives, so a damaged file cannot
/// hand a kernel fewer operands than it reads.
pub(super) fn check_arity(op: &str, inputs: usize, outputs: usize) -> Result<()> {
    let want = match op {
        "Unary" | "AsType" | "BitCast" | "Reshape" | "Transpose" | "Slice" | "Broadcast"
        | "AsStrided" | "Reduce" | "ArgReduce" | "Softmax" | "Scan" | "Copy" | "Sort"
        | "StopGradient" | "Identity" | "Pad" | "CheckIndices" => Some(1),
        "Binary" | "Matmul" | "Take" | "TakeAlongAxis" | "SliceUpdate" | "SearchSorted" => Some(2),
        "Select" | "ScatterAxis" => Some(3),
        _ => None,
    };
    let sources = matches!(op, "Full" | "Arange");
    if want.is_some_and(|w| w != inputs) || outputs == 0 || (inputs == 0) != sources {
        return Err(bad_file(&format!("{op} with {inputs} inputs")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmx_core::backend::{Backend, ConvParams, LinalgOp};
    use rmx_core::ops::quantized_fp::QuantMode;
    use rmx_core::primitive::OutputSpec;
    use rmx_core::primitives::conv::Convolution;
    use rmx_core::primitives::decompositions::Linalg;
    use rmx_core::primitives::fft::Fft;
    use rmx_core::primitives::quantized::QuantizedMatmul;
    use rmx_core::primitives::random::RandomBits;
    use rmx_core::ArrayData;

    /// A primitive defined outside rmx-core, which the file format cannot name.
    #[derive(Debug, PartialEq)]
    struct Outsider;

    impl Primitive for Outsider {
        fn name(&self) -> &'static str {
            "Outsider"
        }
        fn eval(
            &self,
            _: &dyn Backend,
            x: &[ArrayData],
            _: &[OutputSpec],
        ) -> Result<Vec<ArrayData>> {
            Ok(x.to_vec())
        }
        rmx_core::primitive_common!();
    }

    #[test]
    fn an_unknown_primitive_is_a_clear_export_error() {
        let err = encode(&Outsider).unwrap_err().to_string();
        assert!(
            err.contains("Primitive Outsider cannot be exported"),
            "{err}"
        );
    }

    #[test]
    fn kernel_family_parameters_round_trip() {
        let prims: Vec<Box<dyn Primitive>> = vec![
            Box::new(Fft {
                axes: vec![0, 2],
                inverse: true,
                real: true,
                scale: 0.125,
                n: 6,
            }),
            Box::new(Convolution(ConvParams {
                stride: vec![2, 1],
                pad_lo: vec![1, 0],
                pad_hi: vec![0, 3],
                kernel_dilation: vec![1, 2],
                input_dilation: vec![3, 1],
                groups: 2,
                flip: true,
            })),
            Box::new(QuantizedMatmul {
                group_size: 32,
                bits: 5,
                transpose: false,
                mode: QuantMode::Mxfp4,
            }),
            Box::new(Linalg {
                op: LinalgOp::Eigh {
                    upper: true,
                    vectors: false,
                },
            }),
            Box::new(RandomBits {
                shape: vec![3, 0, 2].into(),
                width: 2,
            }),
        ];
        for p in prims {
            let (op, params) = encode(p.as_ref()).unwrap();
            let back = decode(op, &params).unwrap();
            assert!(back.is_equivalent(p.as_ref()), "{op}: {params}");
        }
    }
}
