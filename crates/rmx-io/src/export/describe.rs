//! A trace described step by step, for `export_function` with a callback instead of a
//! file (MLX calls the callback with the inputs, outputs, constants, then one record per
//! primitive). The Python side turns this into MLX's dictionaries.

use super::codec::{dtype_name, encode};
use super::{without_custom_rules, ExportedFunction};
use rmx_core::backend::{BinaryOp, UnaryOp};
use rmx_core::primitive::Primitive;
use rmx_core::primitives::elementwise::{Binary, Unary};
use rmx_core::transforms::compile::Ref;
use rmx_core::{value_err, Array, Result};
use serde_json::{json, Value};

/// MLX's name of a primitive where rmx's differs (one MLX primitive covers several rmx
/// ops, or a different spelling); rmx's own name otherwise.
fn mlx_name(prim: &dyn Primitive) -> String {
    let any = prim.as_any();
    if let Some(u) = any.downcast_ref::<Unary>() {
        use UnaryOp as U;
        return match u.op {
            U::Arcsin => "ArcSin".into(),
            U::Arccos => "ArcCos".into(),
            U::Arctan => "ArcTan".into(),
            U::Arcsinh => "ArcSinh".into(),
            U::Arccosh => "ArcCosh".into(),
            U::Arctanh => "ArcTanh".into(),
            U::Erfinv => "ErfInv".into(),
            U::Log2 | U::Log10 => "Log".into(),
            U::Rsqrt => "Sqrt".into(),
            op => format!("{op:?}"),
        };
    }
    if let Some(b) = any.downcast_ref::<Binary>() {
        use BinaryOp as B;
        return match b.op {
            B::Arctan2 => "ArcTan2".into(),
            B::NanEqual => "NaNEqual".into(),
            B::BitwiseAnd | B::BitwiseOr | B::BitwiseXor | B::LeftShift | B::RightShift => {
                "BitwiseBinary".into()
            }
            op => format!("{op:?}"),
        };
    }
    prim.name().to_string()
}

impl ExportedFunction {
    /// Trace `index` as JSON plus its constants: `{"inputs": [[shape, dtype]], "constants":
    /// [[shape, dtype]], "steps": [{"name", "arguments", "inputs", "outputs"}], "outputs":
    /// [ref]}` where a ref is `["in", i]`, `["const", c]` or `["step", s, k]`. The
    /// arguments are rmx's parameters of the step (its export-file parameters).
    pub fn describe(&self, index: usize) -> Result<(String, Vec<Array>)> {
        let t = self
            .traces
            .get(index)
            .ok_or_else(|| value_err!("[export_function] No trace {index}."))?;
        let graph = without_custom_rules(&t.graph);
        let spec = |shape: &[usize], dtype: rmx_core::Dtype| json!([shape, dtype_name(dtype)]);
        let mut consts: Vec<Array> = Vec::new();
        let mut reference = |r: &Ref| -> Value {
            match r {
                Ref::Input(i) => json!(["in", i]),
                Ref::Step(s, k) => json!(["step", s, k]),
                Ref::Const(a) => {
                    let c = match consts.iter().position(|b| b.id() == a.id()) {
                        Some(c) => c,
                        None => {
                            consts.push(a.clone());
                            consts.len() - 1
                        }
                    };
                    json!(["const", c])
                }
            }
        };
        let mut steps = Vec::new();
        for st in graph.steps() {
            let (_, params) = encode(st.prim.as_ref())?;
            let arguments: Vec<Value> = match params {
                Value::Object(m)
                    if !(st.prim.as_any().is::<Unary>() || st.prim.as_any().is::<Binary>()) =>
                {
                    m.into_iter().map(|(_, v)| v).collect()
                }
                _ => vec![],
            };
            let inputs: Vec<Value> = st.inputs.iter().map(&mut reference).collect();
            let outputs: Vec<Value> = st.specs.iter().map(|s| spec(&s.shape, s.dtype)).collect();
            steps.push(
                json!({"name": mlx_name(st.prim.as_ref()), "arguments": arguments,
                              "inputs": inputs, "outputs": outputs}),
            );
        }
        let outputs: Vec<Value> = graph.outputs().iter().map(&mut reference).collect();
        let inputs: Vec<Value> = t.inputs.iter().map(|(s, d)| spec(s, *d)).collect();
        let desc = json!({"inputs": inputs, "steps": steps, "outputs": outputs});
        Ok((desc.to_string(), consts))
    }
}
