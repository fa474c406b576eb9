//! `export_function` / `import_function`: traced graphs written to a file and read back as
//! functions that run without the Python code that built them.
//!
//! The format is rmx's own (version 1), not byte-compatible with MLX's `.mlxfn`:
//! the 8 bytes `RMXFN\0\0\0`, a little-endian u64 header length, a UTF-8 JSON header, then
//! the raw row-major bytes of the captured constants. The header holds, per trace, the
//! input specs, the steps (`{"op", "params", "inputs", "outputs"}`, where each input is
//! `["in", i]`, `["const", c]` or `["step", s, k]`), the output references, and an opaque
//! `meta` string for the caller (the Python side keeps its argument tree there).
//! Graphs are stored after common-subexpression elimination and before fusion (fusion is
//! redone on import; `Fused` nodes from a `compile`d function called inside are stored too).

use rmx_core::backend::{ArgReduceOp, BinaryOp, NormKind, ReduceOp, ScanOp, ScatterMode, UnaryOp};
use rmx_core::primitive::{OutputSpec, Primitive};
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
use rmx_core::shape::{broadcast_many, numel, Shape};
use rmx_core::transforms::compile::{Ref, Step};
use rmx_core::transforms::CompiledGraph;
use rmx_core::{ops, runtime_err, value_err, Array, Dtype, Result, Scalar};
use serde_json::{json, Value};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"RMXFN\0\0\0";
const VERSION: u64 = 1;

/// One traced signature of an exported function.
pub struct Trace {
    pub inputs: Vec<(Shape, Dtype)>,
    pub graph: CompiledGraph,
    /// Caller data stored with the trace (the Python argument tree).
    pub meta: String,
}

/// The content of an export file: every trace of one function.
#[derive(Default)]
pub struct ExportedFunction {
    pub shapeless: bool,
    pub metadata: String,
    pub traces: Vec<Trace>,
}

fn op_err(name: &str) -> rmx_core::Error {
    value_err!("[export_function] Primitive {name} cannot be exported yet.")
}

fn bad_file(what: &str) -> rmx_core::Error {
    runtime_err!("[import_function] Invalid or corrupt function file: {what}.")
}

/// The variant whose Debug name is `name`, among `all`.
fn by_name<T: std::fmt::Debug + std::marker::Copy>(all: &[T], name: &str) -> Result<T> {
    all.iter()
        .copied()
        .find(|v| format!("{v:?}") == name)
        .ok_or_else(|| bad_file(&format!("unknown operation {name}")))
}

/// The Debug name of `v`, checked to decode back (so a new enum variant fails at export).
fn name_of<T: std::fmt::Debug + std::marker::Copy + PartialEq>(
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

fn dtype_name(d: Dtype) -> &'static str {
    d.name()
}

fn dtype_of(v: &Value) -> Result<Dtype> {
    v.as_str()
        .and_then(Dtype::from_name)
        .ok_or_else(|| bad_file("dtype"))
}

/// f32 parameters travel as their bit patterns: exact, and NaN/inf survive JSON.
fn f32_bits(x: f32) -> Value {
    json!(x.to_bits())
}

fn scalar_json(s: Scalar) -> Value {
    match s {
        Scalar::Bool(b) => json!(["bool", b]),
        Scalar::Int(i) => json!(["int", i]),
        Scalar::UInt(u) => json!(["uint", u]),
        Scalar::Float(f) => json!(["float", f.to_bits()]),
        Scalar::Complex(c) => json!(["complex", c.re.to_bits(), c.im.to_bits()]),
    }
}

/// Reads the parameters of one step.
struct P<'a>(&'a Value);

impl P<'_> {
    fn get(&self, k: &str) -> Result<&Value> {
        self.0
            .get(k)
            .ok_or_else(|| bad_file(&format!("missing parameter {k}")))
    }
    fn usize(&self, k: &str) -> Result<usize> {
        self.get(k)?
            .as_u64()
            .map(|x| x as usize)
            .ok_or_else(|| bad_file(k))
    }
    fn bool(&self, k: &str) -> Result<bool> {
        self.get(k)?.as_bool().ok_or_else(|| bad_file(k))
    }
    fn str(&self, k: &str) -> Result<&str> {
        self.get(k)?.as_str().ok_or_else(|| bad_file(k))
    }
    fn f32(&self, k: &str) -> Result<f32> {
        let b = self.get(k)?.as_u64().ok_or_else(|| bad_file(k))?;
        Ok(f32::from_bits(b as u32))
    }
    fn usizes(&self, k: &str) -> Result<Vec<usize>> {
        self.get(k)?
            .as_array()
            .ok_or_else(|| bad_file(k))?
            .iter()
            .map(|x| x.as_u64().map(|x| x as usize).ok_or_else(|| bad_file(k)))
            .collect()
    }
    fn isizes(&self, k: &str) -> Result<Vec<isize>> {
        self.get(k)?
            .as_array()
            .ok_or_else(|| bad_file(k))?
            .iter()
            .map(|x| x.as_i64().map(|x| x as isize).ok_or_else(|| bad_file(k)))
            .collect()
    }
    fn scalar(&self, k: &str) -> Result<Scalar> {
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
fn encode(prim: &dyn Primitive) -> Result<(&'static str, Value)> {
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
    } else {
        return Err(op_err(name));
    };
    Ok(out)
}

fn decode(op: &str, params: &Value) -> Result<Arc<dyn Primitive>> {
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
        other => return Err(bad_file(&format!("unknown operation {other}"))),
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

fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

/// Input and output counts of the fixed-arity primitives, so a damaged file cannot
/// hand a kernel fewer operands than it reads.
fn check_arity(op: &str, inputs: usize, outputs: usize) -> Result<()> {
    let want = match op {
        "Unary" | "AsType" | "BitCast" | "Reshape" | "Transpose" | "Slice" | "Broadcast"
        | "AsStrided" | "Reduce" | "ArgReduce" | "Softmax" | "Scan" | "Copy" | "Sort"
        | "StopGradient" | "Identity" | "Pad" | "CheckIndices" => Some(1),
        "Binary" | "Matmul" | "Take" | "TakeAlongAxis" | "SliceUpdate" | "SearchSorted" => Some(2),
        "Select" | "ScatterAxis" => Some(3),
        _ => None,
    };
    if want.is_some_and(|w| w != inputs) || outputs == 0 || inputs == 0 {
        return Err(bad_file(&format!("{op} with {inputs} inputs")));
    }
    Ok(())
}

fn spec_json(shape: &[usize], dtype: Dtype) -> Value {
    json!({"shape": shape, "dtype": dtype_name(dtype)})
}

fn spec_of(v: &Value) -> Result<(Shape, Dtype)> {
    let p = P(v);
    Ok((p.usizes("shape")?.into(), dtype_of(p.get("dtype")?)?))
}

/// Collects constants into `blob`, deduplicated by array identity.
struct Consts {
    index: Vec<(usize, usize)>,
    specs: Vec<Value>,
    blob: Vec<u8>,
}

impl Consts {
    fn add(&mut self, a: &Array) -> Result<usize> {
        if let Some(&(_, i)) = self.index.iter().find(|(id, _)| *id == a.id()) {
            return Ok(i);
        }
        // A broadcast constant (a scalar operand, say) keeps its small source and the
        // broadcast, so shapeless replay can broadcast it to new shapes instead.
        let source = match a.primitive() {
            Some(p) if p.as_any().is::<Broadcast>() => a.inputs().into_iter().next(),
            _ => None,
        };
        let stored = source.as_ref().unwrap_or(a);
        stored.eval()?;
        let bytes = stored.to_bytes()?;
        let mut spec = spec_json(stored.shape(), stored.dtype());
        if source.is_some() {
            spec["broadcast"] = json!(a.shape());
        }
        spec["offset"] = json!(self.blob.len());
        spec["nbytes"] = json!(bytes.len());
        self.blob.extend_from_slice(&bytes);
        self.specs.push(spec);
        self.index.push((a.id(), self.specs.len() - 1));
        Ok(self.specs.len() - 1)
    }

    fn reference(&mut self, r: &Ref) -> Result<Value> {
        Ok(match r {
            Ref::Input(i) => json!(["in", i]),
            Ref::Const(a) => json!(["const", self.add(a)?]),
            Ref::Step(s, k) => json!(["step", s, k]),
        })
    }
}

impl ExportedFunction {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut consts = Consts {
            index: vec![],
            specs: vec![],
            blob: vec![],
        };
        let mut traces = Vec::new();
        for t in &self.traces {
            let mut steps = Vec::new();
            for st in t.graph.steps() {
                let (op, params) = encode(st.prim.as_ref())?;
                let inputs = st
                    .inputs
                    .iter()
                    .map(|r| consts.reference(r))
                    .collect::<Result<Vec<_>>>()?;
                let outputs: Vec<Value> = st
                    .specs
                    .iter()
                    .map(|s| spec_json(&s.shape, s.dtype))
                    .collect();
                steps.push(
                    json!({"op": op, "params": params, "inputs": inputs, "outputs": outputs}),
                );
            }
            let outputs = t
                .graph
                .outputs()
                .iter()
                .map(|r| consts.reference(r))
                .collect::<Result<Vec<_>>>()?;
            let inputs: Vec<Value> = t.inputs.iter().map(|(s, d)| spec_json(s, *d)).collect();
            traces.push(
                json!({"inputs": inputs, "steps": steps, "outputs": outputs, "meta": t.meta}),
            );
        }
        let header = json!({
            "format": "rmxfn",
            "version": VERSION,
            "shapeless": self.shapeless,
            "metadata": self.metadata,
            "constants": consts.specs,
            "traces": traces,
        });
        let header =
            serde_json::to_vec(&header).map_err(|e| value_err!("[export_function] {e}"))?;
        let mut out = Vec::with_capacity(16 + header.len() + consts.blob.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&consts.blob);
        Ok(out)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<ExportedFunction> {
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(bad_file("not an rmx function file"));
        }
        let n = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")) as usize;
        let end = n
            .checked_add(16)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| bad_file("truncated header"))?;
        let (header, blob) = (&bytes[16..end], &bytes[end..]);
        let h: Value = serde_json::from_slice(header).map_err(|e| bad_file(&e.to_string()))?;
        let version = h.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version != VERSION {
            return Err(runtime_err!(
                "[import_function] Unsupported function file version {version} (this rmx reads version {VERSION})."
            ));
        }
        let list = |v: &Value, k: &str| -> Result<Vec<Value>> {
            v.get(k)
                .and_then(|x| x.as_array())
                .cloned()
                .ok_or_else(|| bad_file(k))
        };
        let mut consts = Vec::new();
        for c in list(&h, "constants")? {
            let (shape, dtype) = spec_of(&c)?;
            let p = P(&c);
            let (off, nb) = (p.usize("offset")?, p.usize("nbytes")?);
            let data = off
                .checked_add(nb)
                .and_then(|e| blob.get(off..e))
                .ok_or_else(|| bad_file("truncated constants"))?;
            if checked_numel(&shape).and_then(|k| k.checked_mul(dtype.size())) != Some(nb) {
                return Err(bad_file("constant size"));
            }
            let d = Array::from_data(rmx_core::ArrayData::from_bytes(data, dtype, &shape)?);
            consts.push(match c.get("broadcast") {
                Some(_) => ops::broadcast_to(&d, &p.usizes("broadcast")?)?,
                None => d,
            });
        }
        // `outs[s]`: how many outputs step `s` has (references must point backwards).
        let reference = |v: &Value, outs: &[usize], ninputs: usize| -> Result<Ref> {
            let a = v.as_array().ok_or_else(|| bad_file("reference"))?;
            let idx = |i: usize| {
                a.get(i)
                    .and_then(|x| x.as_u64())
                    .map(|x| x as usize)
                    .ok_or_else(|| bad_file("reference"))
            };
            match a.first().and_then(|t| t.as_str()) {
                Some("in") if idx(1)? < ninputs => Ok(Ref::Input(idx(1)?)),
                Some("const") => consts
                    .get(idx(1)?)
                    .map(|c| Ref::Const(c.clone()))
                    .ok_or_else(|| bad_file("constant index")),
                Some("step")
                    if outs
                        .get(idx(1)?)
                        .is_some_and(|&n| idx(2).is_ok_and(|k| k < n)) =>
                {
                    Ok(Ref::Step(idx(1)?, idx(2)?))
                }
                _ => Err(bad_file("reference")),
            }
        };
        let mut traces = Vec::new();
        for t in list(&h, "traces")? {
            let inputs = list(&t, "inputs")?
                .iter()
                .map(spec_of)
                .collect::<Result<Vec<_>>>()?;
            let mut steps = Vec::new();
            let mut outs = Vec::new();
            for s in list(&t, "steps")? {
                let op = s
                    .get("op")
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| bad_file("op"))?;
                let prim = decode(op, P(&s).get("params")?)?;
                let refs = list(&s, "inputs")?
                    .iter()
                    .map(|r| reference(r, &outs, inputs.len()))
                    .collect::<Result<Vec<_>>>()?;
                let specs = list(&s, "outputs")?
                    .iter()
                    .map(|o| spec_of(o).map(|(shape, dtype)| OutputSpec { shape, dtype }))
                    .collect::<Result<Vec<_>>>()?;
                check_arity(op, refs.len(), specs.len())?;
                if specs.iter().any(|o| checked_numel(&o.shape).is_none()) {
                    return Err(bad_file("output shape"));
                }
                outs.push(specs.len());
                steps.push(Step {
                    prim,
                    inputs: refs,
                    specs,
                });
            }
            let outputs = list(&t, "outputs")?
                .iter()
                .map(|r| reference(r, &outs, inputs.len()))
                .collect::<Result<Vec<_>>>()?;
            let meta = P(&t).str("meta")?.to_string();
            // Fusion is redone here (as `compile` would), so files stay fusion-agnostic.
            let graph = CompiledGraph::from_parts(inputs.len(), steps, outputs).fused();
            traces.push(Trace {
                inputs,
                graph,
                meta,
            });
        }
        Ok(ExportedFunction {
            shapeless: P(&h).bool("shapeless")?,
            metadata: P(&h).str("metadata")?.to_string(),
            traces,
        })
    }

    pub fn write(&self, path: &str) -> Result<()> {
        let bytes = self.to_bytes()?;
        std::fs::write(path, bytes)
            .map_err(|e| value_err!("[export_function] Failed to write {path}: {e}"))
    }

    pub fn read(path: &str) -> Result<ExportedFunction> {
        let bytes = std::fs::read(path)
            .map_err(|e| runtime_err!("[import_function] Failed to open {path}: {e}"))?;
        Self::from_bytes(&bytes)
    }
}

impl Trace {
    /// Runs the trace on `inputs`. Their shapes may differ from the traced ones (shapeless
    /// functions): each step's output shapes are then inferred again, and broadcasts are
    /// deferred to the elementwise step that consumes them, since a recorded broadcast
    /// (of a constant, say) has the traced shape baked in.
    pub fn call(&self, inputs: &[Array]) -> Result<Vec<Array>> {
        if inputs.len() != self.inputs.len() {
            return Err(value_err!(
                "[import_function] Expected {} inputs, got {}.",
                self.inputs.len(),
                inputs.len()
            ));
        }
        let same = inputs
            .iter()
            .zip(&self.inputs)
            .all(|(a, (s, _))| a.shape() == s.as_slice());
        if same {
            return self.graph.call(inputs);
        }
        let old_in: Vec<Shape> = self.inputs.iter().map(|(s, _)| s.clone()).collect();
        let steps = self.graph.steps();
        // Per step: traced output shapes, and new values (with the shape a deferred
        // broadcast would have had).
        let mut old_out: Vec<Vec<Shape>> = Vec::with_capacity(steps.len());
        let mut vals: Vec<Vec<(Array, Option<Shape>)>> = Vec::with_capacity(steps.len());
        let old_shape = |r: &Ref, old_out: &[Vec<Shape>]| -> Shape {
            match r {
                Ref::Input(i) => old_in[*i].clone(),
                Ref::Const(a) => a.shape().into(),
                Ref::Step(s, k) => old_out[*s][*k].clone(),
            }
        };
        let raw = |r: &Ref, vals: &[Vec<(Array, Option<Shape>)>]| -> (Array, Option<Shape>) {
            match r {
                Ref::Input(i) => (inputs[*i].clone(), None),
                Ref::Const(a) => match a.primitive() {
                    Some(p) if p.as_any().is::<Broadcast>() => {
                        (a.inputs()[0].clone(), Some(a.shape().into()))
                    }
                    _ => (a.clone(), None),
                },
                Ref::Step(s, k) => vals[*s][*k].clone(),
            }
        };
        let materialise = |(a, b): (Array, Option<Shape>)| -> Result<Array> {
            match b {
                Some(shape) => ops::broadcast_to(&a, &shape),
                None => Ok(a),
            }
        };
        for st in steps {
            let any = st.prim.as_any();
            let olds: Vec<Shape> = st.inputs.iter().map(|r| old_shape(r, &old_out)).collect();
            let olds_out: Vec<Shape> = st.specs.iter().map(|s| s.shape.clone()).collect();
            let out = if any.is::<Broadcast>() {
                let (a, _) = raw(&st.inputs[0], &vals);
                let shape = broadcast_rule(&olds[0], a.shape(), &olds_out[0]);
                vec![(a, shape)]
            } else if any.is::<Binary>() || any.is::<Select>() || any.is::<Fused>() {
                let ins: Vec<Array> = st.inputs.iter().map(|r| raw(r, &vals).0).collect();
                let refs: Vec<&Array> = ins.iter().collect();
                let ins = ops::broadcast_arrays(&refs)?;
                let shape: Shape = ins[0].shape().into();
                let dtype = st.specs[0].dtype;
                vec![(Array::from_op(shape, dtype, st.prim.clone(), ins), None)]
            } else {
                let ins = st
                    .inputs
                    .iter()
                    .map(|r| materialise(raw(r, &vals)))
                    .collect::<Result<Vec<_>>>()?;
                let news: Vec<Shape> = ins.iter().map(|a| a.shape().into()).collect();
                let shapes = infer(st, &olds, &news, &olds_out)?;
                let specs = st
                    .specs
                    .iter()
                    .zip(shapes)
                    .map(|(s, sh)| (sh, s.dtype))
                    .collect();
                Array::from_multi_op(specs, st.prim.clone(), ins)
                    .into_iter()
                    .map(|a| (a, None))
                    .collect()
            };
            old_out.push(olds_out);
            vals.push(out);
        }
        self.graph
            .outputs()
            .iter()
            .map(|r| materialise(raw(r, &vals)))
            .collect()
    }
}

/// The shape a traced broadcast `old_in -> old_out` gives an input now of shape `new_in`:
/// dims the input supplied follow it, dims the broadcast added stay. None when the
/// rank changed (only an elementwise consumer can use it then).
fn broadcast_rule(old_in: &[usize], new_in: &[usize], old_out: &[usize]) -> Option<Shape> {
    if old_in.len() != new_in.len() {
        return None;
    }
    let lead = old_out.len() - old_in.len();
    let mut s: Shape = old_out.into();
    for d in 0..old_in.len() {
        if old_in[d] == old_out[lead + d] {
            s[lead + d] = new_in[d];
        }
    }
    Some(s)
}

/// Output shapes of `st` on inputs of shapes `news`, given the traced shapes `olds` ->
/// `old_out` (MLX's `output_shapes`, for the primitives whose rule follows from them).
fn infer(st: &Step, olds: &[Shape], news: &[Shape], old_out: &[Shape]) -> Result<Vec<Shape>> {
    if olds == news {
        return Ok(old_out.to_vec());
    }
    let any = st.prim.as_any();
    let first = || news[0].clone();
    let cannot = || {
        value_err!(
            "[import_function] Primitive {} cannot run on new input shapes in a shapeless function.",
            st.prim.name()
        )
    };
    // Kernels trust the shapes they are given: check what the traced call guaranteed.
    let last = |s: &Shape| s.last().copied();
    if any.is::<Norm>() {
        for (o, n) in olds.iter().zip(news).skip(1) {
            if last(o) == last(&olds[0]) && (n.len() != 1 || last(n) != last(&news[0])) {
                return Err(value_err!(
                    "[import_function] {}: the weight and bias must have the size of the input's last axis ({}).",
                    st.prim.name(),
                    last(&news[0]).unwrap_or(0)
                ));
            }
        }
    }
    if let Some(p) = any.downcast_ref::<Rope>() {
        let n = &news[0];
        if n.len() < 2
            || last(n).unwrap_or(0) < p.dims
            || news.get(2).is_some_and(|f| numel(f) != p.dims / 2)
        {
            return Err(cannot());
        }
    }
    if let Some(p) = any.downcast_ref::<Concatenate>() {
        let mut a = news[0].clone();
        for n in news {
            let mut b = n.clone();
            if b.len() != a.len() {
                return Err(cannot());
            }
            b[p.axis] = 0;
            a[p.axis] = 0;
            if a != b {
                return Err(value_err!(
                    "[concatenate] All the input array dimensions must match exactly except for the concatenation axis."
                ));
            }
        }
    }
    let shape: Shape = if any.is::<Binary>() || any.is::<Select>() {
        let refs: Vec<&[usize]> = news.iter().map(|s| s.as_slice()).collect();
        broadcast_many(&refs)?
    } else if any.is::<Unary>()
        || any.is::<AsType>()
        || any.is::<Copy>()
        || any.is::<Softmax>()
        || any.is::<Norm>()
        || any.is::<Rope>()
        || any.is::<Scan>()
        || any.is::<StopGradient>()
        || any.is::<Identity>()
        || any.is::<Sort>()
    {
        first()
    } else if let Some(p) = any.downcast_ref::<Transpose>() {
        p.perm.iter().map(|&i| news[0][i]).collect()
    } else if let Some(p) = any.downcast_ref::<Reduce>() {
        let keep = old_out[0].len() == olds[0].len();
        reduced(&news[0], &p.axes, keep)
    } else if let Some(p) = any.downcast_ref::<ArgReduce>() {
        let keep = old_out[0].len() == olds[0].len();
        reduced(&news[0], &[p.axis], keep)
    } else if any.is::<Matmul>() {
        let (a, b) = (&news[0], &news[1]);
        if a.len() < 2 || b.len() < 2 {
            return Err(cannot());
        }
        if a[a.len() - 1] != b[b.len() - 2] {
            return Err(value_err!(
                "[matmul] Last dimension of first input with shape {:?} must match second to last dimension of second input with shape {:?}.",
                a.as_slice(),
                b.as_slice()
            ));
        }
        let batch = broadcast_many(&[&a[..a.len() - 2], &b[..b.len() - 2]])?;
        let mut s = batch;
        s.push(a[a.len() - 2]);
        s.push(b[b.len() - 1]);
        s
    } else if let Some(Reshape { infer: Some(axis) }) = any.downcast_ref::<Reshape>() {
        // As MLX: the other dims stay as given, the inferred one takes up the rest.
        let mut s = old_out[0].clone();
        let rest: usize = s
            .iter()
            .enumerate()
            .filter(|(d, _)| d != axis)
            .map(|(_, &n)| n)
            .product();
        let total = numel(&news[0]);
        if rest == 0 || !total.is_multiple_of(rest) {
            return Err(value_err!(
                "[reshape] Cannot reshape array of size {total} into shape {:?}.",
                s.as_slice()
            ));
        }
        s[*axis] = total / rest;
        s
    } else if any.is::<Reshape>() && old_out[0].len() == 1 {
        [numel(&news[0])].into_iter().collect()
    } else if let Some(s) = any
        .is::<Reshape>()
        .then(|| unit_dims_reshape(&olds[0], &news[0], &old_out[0]))
        .flatten()
    {
        s
    } else if any.is::<Reshape>() && numel(&news[0]) == numel(&old_out[0]) {
        old_out[0].clone()
    } else if let Some(p) = any.downcast_ref::<Concatenate>() {
        let mut s = news[0].clone();
        s[p.axis] = news.iter().map(|n| n[p.axis]).sum();
        s
    } else {
        return Err(cannot());
    };
    if old_out.len() != 1 {
        return Err(cannot());
    }
    Ok(vec![shape])
}

/// A reshape that only added or removed size-1 dims (squeeze, expand_dims, keepdims)
/// applied to a new input: its other dims move to where they went at trace time.
fn unit_dims_reshape(old_in: &[usize], new_in: &[usize], old_out: &[usize]) -> Option<Shape> {
    let big = |s: &[usize]| -> Vec<usize> { (0..s.len()).filter(|&d| s[d] != 1).collect() };
    let (bi, bo) = (big(old_in), big(old_out));
    let same = bi.len() == bo.len() && bi.iter().zip(&bo).all(|(&i, &o)| old_in[i] == old_out[o]);
    if !same || (0..old_in.len()).any(|d| old_in[d] == 1 && new_in[d] != 1) {
        return None;
    }
    let mut s: Shape = old_out.into();
    for (&i, &o) in bi.iter().zip(&bo) {
        s[o] = new_in[i];
    }
    Some(s)
}

fn reduced(shape: &[usize], axes: &[usize], keep: bool) -> Shape {
    let mut out = Shape::new();
    for (d, &n) in shape.iter().enumerate() {
        if axes.contains(&d) {
            if keep {
                out.push(1);
            }
        } else {
            out.push(n);
        }
    }
    out
}
