//! Running an imported trace on inputs of new shapes (shapeless functions).

use rmx_core::primitives::autodiff::{Identity, StopGradient};
use rmx_core::primitives::elementwise::{AsType, Binary, Select, Unary};
use rmx_core::primitives::fast::norm::Norm;
use rmx_core::primitives::fast::rope::Rope;
use rmx_core::primitives::fused::Fused;
use rmx_core::primitives::linalg::Matmul;
use rmx_core::primitives::reduce::{ArgReduce, Reduce, Scan, Softmax};
use rmx_core::primitives::sort::Sort;
use rmx_core::primitives::structure::{Concatenate, Copy};
use rmx_core::primitives::views::{Broadcast, Reshape, Transpose};
use rmx_core::shape::{broadcast_many, numel, Shape};
use rmx_core::transforms::compile::{Ref, Step};
use rmx_core::{ops, value_err, Array, Result};

use super::Trace;

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
