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
//! redone on import; `Fused` nodes from a `compile`d function called inside are stored too),
//! with custom functions replaced by the forward graphs they wrap.
//!
//! `codec.rs` names each primitive and its parameters (`codec_kernels.rs` for the kernel
//! families, whose parameters are checked against their operands at import), `replay.rs`
//! runs a trace on new shapes (shapeless functions), and `describe.rs` lists a trace for
//! `export_function` with a callback.

mod codec;
mod codec_kernels;
mod describe;
mod replay;

use codec::{bad_file, check_arity, decode, dtype_name, dtype_of, encode, P};
use rmx_core::primitive::OutputSpec;
use rmx_core::primitives::autodiff::StopGradient;
use rmx_core::primitives::custom::CustomTransforms;
use rmx_core::primitives::views::Broadcast;
use rmx_core::shape::Shape;
use rmx_core::transforms::compile::{Ref, Step};
use rmx_core::transforms::CompiledGraph;
use rmx_core::{ops, runtime_err, value_err, Array, Dtype, Result};
use serde_json::{json, Value};

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

fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

fn spec_json(shape: &[usize], dtype: Dtype) -> Value {
    json!({"shape": shape, "dtype": dtype_name(dtype)})
}

fn spec_of(v: &Value) -> Result<(Shape, Dtype)> {
    let p = P(v);
    Ok((p.usizes("shape")?.into(), dtype_of(p.get("dtype")?)?))
}

/// The graph with every `custom_function` node replaced by the forward graph it wraps (as
/// MLX exports them): its outputs are read straight from its traced outputs (past the
/// `stop_gradient` that `custom_function` puts on them, so gradients of the imported
/// function flow through the forward graph as in MLX), and the custom vjp/jvp/vmap rules,
/// which are Python or Rust closures, are not kept. Steps left unused are dropped.
pub(crate) fn without_custom_rules(g: &CompiledGraph) -> CompiledGraph {
    let is_custom = |s: &Step| s.prim.as_any().is::<CustomTransforms>();
    if !g.steps().iter().any(is_custom) {
        return g.clone();
    }
    let steps = g.steps();
    // what each output of each step is now: itself, or the reference a custom node passed
    let mut alias: Vec<Option<Vec<Ref>>> = vec![None; steps.len()];
    let resolve = |r: &Ref, alias: &[Option<Vec<Ref>>]| -> Ref {
        match r {
            Ref::Step(s, k) => alias[*s].as_ref().map_or(r.clone(), |v| v[*k].clone()),
            other => other.clone(),
        }
    };
    let mut kept: Vec<Step> = Vec::with_capacity(steps.len());
    for (i, st) in steps.iter().enumerate() {
        let inputs: Vec<Ref> = st.inputs.iter().map(|r| resolve(r, &alias)).collect();
        if let Some(c) = st.prim.as_any().downcast_ref::<CustomTransforms>() {
            let through_stop = |r: &Ref| match r {
                Ref::Step(s, 0) if kept[*s].prim.as_any().is::<StopGradient>() => {
                    kept[*s].inputs[0].clone()
                }
                other => other.clone(),
            };
            alias[i] = Some(inputs[c.num_inputs..].iter().map(through_stop).collect());
        }
        // custom nodes stay as placeholders (never live) so indices do not move yet
        kept.push(Step {
            prim: st.prim.clone(),
            inputs,
            specs: st.specs.clone(),
        });
    }
    let outputs: Vec<Ref> = g.outputs().iter().map(|r| resolve(r, &alias)).collect();
    // keep the steps the outputs still reach, renumbered
    let mut live = vec![false; kept.len()];
    let mark = |r: &Ref, live: &mut Vec<bool>| {
        if let Ref::Step(s, _) = r {
            live[*s] = true;
        }
    };
    outputs.iter().for_each(|r| mark(r, &mut live));
    for i in (0..kept.len()).rev() {
        if live[i] {
            for r in &kept[i].inputs {
                mark(r, &mut live);
            }
        }
    }
    let mut index = vec![usize::MAX; kept.len()];
    let renumber = |r: &Ref, index: &[usize]| match r {
        Ref::Step(s, k) => Ref::Step(index[*s], *k),
        other => other.clone(),
    };
    let mut out_steps = Vec::new();
    for (i, st) in kept.into_iter().enumerate() {
        if live[i] {
            index[i] = out_steps.len();
            let inputs = st.inputs.iter().map(|r| renumber(r, &index)).collect();
            out_steps.push(Step { inputs, ..st });
        }
    }
    let outputs = outputs.iter().map(|r| renumber(r, &index)).collect();
    CompiledGraph::from_parts(g.num_inputs(), out_steps, outputs)
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
            let graph = without_custom_rules(&t.graph);
            let mut steps = Vec::new();
            for st in graph.steps() {
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
            let outputs = graph
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
            let mut steps: Vec<Step> = Vec::new();
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
                let in_specs: Vec<(Shape, Dtype)> = refs
                    .iter()
                    .map(|r| match r {
                        Ref::Input(i) => inputs[*i].clone(),
                        Ref::Const(a) => (a.shape().into(), a.dtype()),
                        Ref::Step(s, k) => {
                            let o: &OutputSpec = &steps[*s].specs[*k];
                            (o.shape.clone(), o.dtype)
                        }
                    })
                    .collect();
                codec_kernels::validate(prim.as_ref(), &in_specs, &specs)?;
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
