//! `compile`: trace a function once on placeholders, simplify the graph, and replay it
//! for later calls with the same input shapes and dtypes (the cache lives with the
//! caller: the Python `compile` keys it by tree structure, shapes, dtypes and constants).
//!
//! Passes, each switchable (`CompileOptions`, `set_compile_mode`):
//! - dead-code removal: only nodes the outputs reach are kept (a property of tracing);
//! - common-subexpression elimination: equal primitives on equal inputs, and equal
//!   scalar constants, become one node;
//! - fusion: chains of elementwise nodes (unary, binary, casts, select) with one consumer
//!   become one `Fused` node, evaluated block by block.

use super::tape;
use crate::array::{Array, Node};
use crate::dtype::Dtype;
use crate::error::Result;
use crate::primitive::{OutputSpec, Primitive};
use crate::primitives::autodiff::Placeholder;
use crate::primitives::fused::{Arg, Fused, FusedKind, FusedOp};
use crate::primitives::views::Broadcast;
use crate::shape::Shape;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// Where a step's operand comes from: a graph input, a constant captured at trace time,
/// or output `k` of an earlier step.
#[derive(Clone)]
pub enum Ref {
    Input(usize),
    Const(Array),
    Step(usize, usize),
}

/// One node of a traced graph (public so that `export_function` can write and read it).
#[derive(Clone)]
pub struct Step {
    pub prim: Arc<dyn Primitive>,
    pub inputs: Vec<Ref>,
    pub specs: Vec<OutputSpec>,
}

/// A traced and simplified function, replayable on new inputs of the traced shapes.
#[derive(Clone)]
pub struct CompiledGraph {
    num_inputs: usize,
    steps: Vec<Step>,
    outputs: Vec<Ref>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompileMode {
    /// Trace and replay only.
    NoSimplify,
    /// CSE, but no fusion.
    NoFuse,
    /// Everything.
    Enabled,
    /// `compile` returns the function itself.
    Disabled,
}

static MODE: AtomicU8 = AtomicU8::new(u8::MAX);

fn mode_code(m: CompileMode) -> u8 {
    match m {
        CompileMode::NoSimplify => 0,
        CompileMode::NoFuse => 1,
        CompileMode::Enabled => 2,
        CompileMode::Disabled => 3,
    }
}

/// The process-wide mode: set explicitly, else `RMX_DISABLE_COMPILE` or
/// `MLX_DISABLE_COMPILE` in the environment disable it.
pub fn compile_mode() -> CompileMode {
    match MODE.load(Ordering::Relaxed) {
        0 => CompileMode::NoSimplify,
        1 => CompileMode::NoFuse,
        2 => CompileMode::Enabled,
        3 => CompileMode::Disabled,
        _ => {
            let off = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty() && v != "0");
            if off("RMX_DISABLE_COMPILE") || off("MLX_DISABLE_COMPILE") {
                CompileMode::Disabled
            } else {
                CompileMode::Enabled
            }
        }
    }
}

pub fn set_compile_mode(mode: CompileMode) {
    MODE.store(mode_code(mode), Ordering::Relaxed);
}

impl CompiledGraph {
    /// Traces `f` on placeholders of the given shapes and dtypes and simplifies the graph
    /// as the current compile mode allows.
    pub fn trace(
        f: impl FnOnce(&[Array]) -> Result<Vec<Array>>,
        specs: &[(Shape, Dtype)],
    ) -> Result<CompiledGraph> {
        let placeholders: Vec<Array> = specs
            .iter()
            .map(|(s, d)| Array::from_op(s.clone(), *d, Arc::new(Placeholder), vec![]))
            .collect();
        let outputs = f(&placeholders)?;
        let mut g = record(&placeholders, &outputs);
        let mode = compile_mode();
        if matches!(mode, CompileMode::NoFuse | CompileMode::Enabled) {
            g.cse();
        }
        if mode == CompileMode::Enabled {
            g.fuse();
        }
        Ok(g)
    }

    /// Traces `f` with common-subexpression elimination but no fusion: the form
    /// `export_function` writes (`Fused` nodes are rebuilt after loading).
    pub fn trace_unfused(
        f: impl FnOnce(&[Array]) -> Result<Vec<Array>>,
        specs: &[(Shape, Dtype)],
    ) -> Result<CompiledGraph> {
        let placeholders: Vec<Array> = specs
            .iter()
            .map(|(s, d)| Array::from_op(s.clone(), *d, Arc::new(Placeholder), vec![]))
            .collect();
        let outputs = f(&placeholders)?;
        let mut g = record(&placeholders, &outputs);
        g.cse();
        Ok(g)
    }

    /// A graph from its parts (steps in dependency order; references point backwards).
    pub fn from_parts(num_inputs: usize, steps: Vec<Step>, outputs: Vec<Ref>) -> CompiledGraph {
        CompiledGraph {
            num_inputs,
            steps,
            outputs,
        }
    }

    pub fn num_inputs(&self) -> usize {
        self.num_inputs
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    pub fn outputs(&self) -> &[Ref] {
        &self.outputs
    }

    /// Applies elementwise fusion when the compile mode allows it.
    pub fn fused(mut self) -> CompiledGraph {
        if compile_mode() == CompileMode::Enabled {
            self.fuse();
        }
        self
    }

    /// Number of nodes after simplification (for tests and debugging).
    pub fn num_steps(&self) -> usize {
        self.steps.len()
    }

    /// Number of `Fused` nodes.
    pub fn num_fused(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| s.prim.as_any().downcast_ref::<Fused>().is_some())
            .count()
    }

    /// Builds the simplified graph over `inputs` (lazy, like any op).
    pub fn call(&self, inputs: &[Array]) -> Result<Vec<Array>> {
        if inputs.len() != self.num_inputs {
            return Err(crate::value_err!(
                "[compile] Expected {} inputs, got {}.",
                self.num_inputs,
                inputs.len()
            ));
        }
        let mut vals: Vec<Vec<Array>> = Vec::with_capacity(self.steps.len());
        let get = |r: &Ref, vals: &Vec<Vec<Array>>| match r {
            Ref::Input(i) => inputs[*i].clone(),
            Ref::Const(a) => a.clone(),
            Ref::Step(s, k) => vals[*s][*k].clone(),
        };
        for step in &self.steps {
            let ins: Vec<Array> = step.inputs.iter().map(|r| get(r, &vals)).collect();
            let specs = step
                .specs
                .iter()
                .map(|s| (s.shape.clone(), s.dtype))
                .collect();
            vals.push(Array::from_multi_op(specs, step.prim.clone(), ins));
        }
        Ok(self.outputs.iter().map(|r| get(r, &vals)).collect())
    }
}

/// The graph between the placeholders and the outputs, as steps in dependency order.
fn record(placeholders: &[Array], outputs: &[Array]) -> CompiledGraph {
    let ids: HashSet<usize> = placeholders.iter().map(|a| a.id()).collect();
    let input_of: HashMap<usize, usize> = placeholders
        .iter()
        .enumerate()
        .map(|(i, a)| (a.id(), i))
        .collect();
    let mut step_of: HashMap<*const Node, usize> = HashMap::new();
    let mut refs: HashMap<usize, Ref> = HashMap::new();
    let mut steps: Vec<Step> = Vec::new();
    for a in tape(outputs, &ids, false) {
        if let Some(&i) = input_of.get(&a.id()) {
            refs.insert(a.id(), Ref::Input(i));
            continue;
        }
        let Some((node, index)) = a.node() else {
            continue;
        };
        let key = Arc::as_ptr(&node);
        let s = match step_of.get(&key) {
            Some(&s) => s,
            None => {
                let inputs = a
                    .inputs()
                    .iter()
                    .map(|i| {
                        refs.get(&i.id())
                            .cloned()
                            .unwrap_or_else(|| Ref::Const(i.clone()))
                    })
                    .collect();
                steps.push(Step {
                    prim: node.primitive.clone(),
                    inputs,
                    specs: node.output_specs.clone(),
                });
                step_of.insert(key, steps.len() - 1);
                steps.len() - 1
            }
        };
        refs.insert(a.id(), Ref::Step(s, index));
    }
    let outputs = outputs
        .iter()
        .map(|o| {
            refs.get(&o.id())
                .cloned()
                .unwrap_or_else(|| Ref::Const(o.clone()))
        })
        .collect();
    CompiledGraph {
        num_inputs: placeholders.len(),
        steps,
        outputs,
    }
}

/// A hashable identity for an operand, used by CSE: constants holding one value (a
/// scalar, or a scalar broadcast to a shape) compare by dtype, shape and the value's
/// bytes; other constants by identity. A traced `x * 1.0001` broadcasts its scalar outside
/// the traced graph, so without the splat case a 1000-op chain's fused node took 1000
/// distinct constant inputs.
#[derive(Clone, PartialEq, Eq, Hash)]
enum RefKey {
    Input(usize),
    Splat(Dtype, Vec<usize>, Vec<u8>),
    Const(usize),
    Step(usize, usize),
}

/// The one value `a` holds everywhere, as bytes: a computed single-element array, a
/// computed array of stride-0 axes, or a broadcast of one of those.
fn splat_bytes(a: &Array) -> Option<Vec<u8>> {
    if a.is_evaluated() {
        if a.size() == 1 {
            return a.to_bytes().ok();
        }
        let d = a.data().ok()?;
        if d.numel() == 0 || d.strides.iter().any(|&s| s != 0) {
            return None;
        }
        d.buffer.make_resident(crate::Device::CPU).ok()?;
        let size = d.dtype.size();
        let start = d.offset * size;
        return d
            .buffer
            .as_bytes()
            .get(start..start + size)
            .map(<[u8]>::to_vec);
    }
    a.primitive()?.as_any().downcast_ref::<Broadcast>()?;
    splat_bytes(a.inputs().first()?)
}

fn ref_key(r: &Ref) -> RefKey {
    match r {
        Ref::Input(i) => RefKey::Input(*i),
        Ref::Step(s, k) => RefKey::Step(*s, *k),
        Ref::Const(a) => match splat_bytes(a) {
            Some(bytes) => RefKey::Splat(a.dtype(), a.shape().to_vec(), bytes),
            None => RefKey::Const(a.id()),
        },
    }
}

impl CompiledGraph {
    fn remap(r: &Ref, alias: &[usize], canon: &HashMap<RefKey, Ref>) -> Ref {
        match r {
            Ref::Step(s, k) => Ref::Step(alias[*s], *k),
            Ref::Const(_) => canon.get(&ref_key(r)).cloned().unwrap_or_else(|| r.clone()),
            other => other.clone(),
        }
    }

    /// Common-subexpression elimination; steps are renumbered densely afterwards.
    fn cse(&mut self) {
        let mut canon_const: HashMap<RefKey, Ref> = HashMap::new();
        let mut seen: HashMap<(&'static str, Vec<RefKey>), Vec<usize>> = HashMap::new();
        // alias[s] = the kept step (old numbering) that step s equals
        let mut alias: Vec<usize> = Vec::with_capacity(self.steps.len());
        let mut kept: Vec<bool> = Vec::with_capacity(self.steps.len());
        for s in 0..self.steps.len() {
            let inputs: Vec<Ref> = self.steps[s]
                .inputs
                .iter()
                .map(|r| {
                    if let Ref::Const(_) = r {
                        canon_const.entry(ref_key(r)).or_insert_with(|| r.clone());
                    }
                    Self::remap(r, &alias, &canon_const)
                })
                .collect();
            self.steps[s].inputs = inputs;
            let key = (
                self.steps[s].prim.name(),
                self.steps[s].inputs.iter().map(ref_key).collect::<Vec<_>>(),
            );
            let same = seen.get(&key).and_then(|cands| {
                cands.iter().copied().find(|&c| {
                    self.steps[c].specs == self.steps[s].specs
                        && self.steps[c]
                            .prim
                            .is_equivalent(self.steps[s].prim.as_ref())
                })
            });
            match same {
                Some(c) => {
                    alias.push(c);
                    kept.push(false);
                }
                None => {
                    seen.entry(key).or_default().push(s);
                    alias.push(s);
                    kept.push(true);
                }
            }
        }
        self.outputs = self
            .outputs
            .iter()
            .map(|r| Self::remap(r, &alias, &canon_const))
            .collect();
        self.compact(&kept);
    }

    /// Drops the steps not `kept` and renumbers references.
    fn compact(&mut self, kept: &[bool]) {
        let mut new_index = vec![usize::MAX; kept.len()];
        let mut n = 0;
        for (s, &k) in kept.iter().enumerate() {
            if k {
                new_index[s] = n;
                n += 1;
            }
        }
        let fix = |r: &Ref| match r {
            Ref::Step(s, k) => Ref::Step(new_index[*s], *k),
            other => other.clone(),
        };
        let steps = std::mem::take(&mut self.steps);
        self.steps = steps
            .into_iter()
            .zip(kept)
            .filter(|(_, &k)| k)
            .map(|(mut st, _)| {
                st.inputs = st.inputs.iter().map(fix).collect();
                st
            })
            .collect();
        self.outputs = self.outputs.iter().map(fix).collect();
    }

    /// Merges chains of single-consumer elementwise steps into `Fused` steps.
    fn fuse(&mut self) {
        let n = self.steps.len();
        let kind: Vec<Option<FusedKind>> = self
            .steps
            .iter()
            .map(|s| {
                if s.specs.len() == 1 {
                    FusedKind::of(s.prim.as_ref())
                } else {
                    None
                }
            })
            .collect();
        let mut consumers = vec![0usize; n];
        for st in &self.steps {
            for r in &st.inputs {
                if let Ref::Step(s, _) = r {
                    consumers[*s] += 1;
                }
            }
        }
        let mut is_output = vec![false; n];
        for r in &self.outputs {
            if let Ref::Step(s, _) = r {
                is_output[*s] = true;
            }
        }
        // group[s] = the root step whose Fused node absorbs s
        let mut group: Vec<Option<usize>> = vec![None; n];
        for root in (0..n).rev() {
            if kind[root].is_none() || group[root].is_some() {
                continue;
            }
            group[root] = Some(root);
            let shape = self.steps[root].specs[0].shape.clone();
            let mut stack = vec![root];
            while let Some(s) = stack.pop() {
                for r in &self.steps[s].inputs {
                    if let Ref::Step(p, _) = r {
                        let p = *p;
                        if kind[p].is_some()
                            && group[p].is_none()
                            && consumers[p] == 1
                            && !is_output[p]
                            && self.steps[p].specs[0].shape == shape
                        {
                            group[p] = Some(root);
                            stack.push(p);
                        }
                    }
                }
            }
        }
        let mut kept = vec![true; n];
        for root in 0..n {
            if group[root] != Some(root) {
                continue;
            }
            let members: Vec<usize> = (0..=root).filter(|&s| group[s] == Some(root)).collect();
            if members.len() < 2 {
                continue;
            }
            let mut op_of: HashMap<usize, usize> = HashMap::new();
            let mut inputs: Vec<Ref> = Vec::new();
            let mut input_of: HashMap<RefKey, usize> = HashMap::new();
            let mut ops = Vec::with_capacity(members.len());
            for &m in &members {
                let args = self.steps[m]
                    .inputs
                    .iter()
                    .map(|r| match r {
                        Ref::Step(p, _) if op_of.contains_key(p) => Arg::Op(op_of[p]),
                        _ => {
                            let i = *input_of.entry(ref_key(r)).or_insert_with(|| {
                                inputs.push(r.clone());
                                inputs.len() - 1
                            });
                            Arg::Input(i)
                        }
                    })
                    .collect();
                ops.push(FusedOp {
                    kind: kind[m].expect("members are elementwise"),
                    args,
                    dtype: self.steps[m].specs[0].dtype,
                });
                op_of.insert(m, ops.len() - 1);
                if m != root {
                    kept[m] = false;
                }
            }
            self.steps[root].prim = Arc::new(Fused { ops });
            self.steps[root].inputs = inputs;
        }
        self.compact(&kept);
    }
}
