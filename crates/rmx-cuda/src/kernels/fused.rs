//! `compile`'s fused elementwise programs as one generated kernel each: every input is
//! read once through its layout, the ops run in registers, the output is written once.
//! Each intermediate value is rounded to its dtype as the unfused ops would store it, so a
//! fused result equals the eager one bit for bit.

use super::elementwise::{element, kernel_source, launch, operands, Kernel};
use super::ops_c::{binary_expr, unary_expr};
use super::prelude::{ctype, float_to_int};
use crate::device::Gpu;
use crate::layout::Layout;
use crate::memory::{alloc_output, constant_ptr};
use parking_lot::Mutex;
use rmx_core::primitives::fused::{Arg, Fused, FusedKind};
use rmx_core::{ArrayData, Dtype, Result};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Inputs a generated kernel takes (~152 bytes of parameters each).
const MAX_INPUTS: usize = 128;

/// The kernel of `program` over inputs of `input_dtypes`; `None` when an op or dtype has
/// no CUDA expression here (the portable interpreter then runs it). Inputs marked in
/// `constant` are host scalars read from one packed array of 8-byte slots (`pc`, the last
/// parameter) instead of being operands of their own: a traced Python scalar costs no
/// parameter space (a 1000-op chain has ~1000 of them).
pub fn fused_kernel(program: &Fused, input_dtypes: &[Dtype], constant: &[bool]) -> Option<Kernel> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{:?}{input_dtypes:?}{constant:?}", program.ops).hash(&mut h);
    let name = format!("fused_{:016x}", h.finish());
    let mut body = String::new();
    let mut inputs = Vec::new();
    let mut names: Vec<String> = Vec::with_capacity(input_dtypes.len());
    let mut slot = 0usize;
    for (k, &d) in input_dtypes.iter().enumerate() {
        let t = ctype(d)?;
        let read = if constant.get(k).copied().unwrap_or(false) {
            slot += 1;
            format!("(*(const {}*)(pc + {}))", t.store, slot - 1)
        } else {
            inputs.push((format!("{k}"), t.store));
            element(&k.to_string())
        };
        body.push_str(&format!(
            "    const {} in{k} = {};\n",
            t.compute,
            t.load(&read)
        ));
        names.push(format!("in{k}"));
    }
    if slot > 0 {
        inputs.push(("c".to_string(), "u64"));
    }
    let mut dtypes: Vec<Dtype> = input_dtypes.to_vec();
    let mut values: Vec<(String, Dtype)> = Vec::new();
    for (n, op) in program.ops.iter().enumerate() {
        let arg = |a: &Arg| match a {
            Arg::Input(i) => (names[*i].clone(), dtypes[*i]),
            Arg::Op(j) => values[*j].clone(),
        };
        let to = ctype(op.dtype)?;
        let (a0, d0) = arg(&op.args[0]);
        let ti = ctype(d0)?;
        let value = match op.kind {
            FusedKind::Unary(u) => format!(
                "[&]{{ const {} x = {a0}; return ({})({}); }}()",
                ti.compute,
                to.compute,
                unary_expr(u, &ti)?
            ),
            FusedKind::Binary(b) => {
                let (a1, _) = arg(&op.args[1]);
                format!(
                    "[&]{{ const {c} a = {a0}; const {c} b = {a1}; return ({})({}); }}()",
                    to.compute,
                    binary_expr(b, &ti)?,
                    c = ti.compute
                )
            }
            FusedKind::Cast if to.compute == "bool" => format!("({a0} != 0)"),
            FusedKind::Cast if ti.float && !to.float => float_to_int(&a0, to.compute),
            FusedKind::Cast => format!("({})({a0})", to.compute),
            FusedKind::Select => {
                let (a1, _) = arg(&op.args[1]);
                let (a2, _) = arg(&op.args[2]);
                format!("({a0} ? {a1} : {a2})")
            }
        };
        // round through the stored type, as the unfused op's output would be
        body.push_str(&format!(
            "    const {} v{n} = {};\n",
            to.compute,
            to.load(&to.store(&value))
        ));
        values.push((format!("v{n}"), op.dtype));
        dtypes.push(op.dtype);
    }
    let (last, out_dtype) = values.last()?.clone();
    let to = ctype(out_dtype)?;
    body.push_str(&format!("    out[i] = {};", to.store(&last)));
    let ins: Vec<(&str, &str)> = inputs.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let src = kernel_source(&name, &ins, to.store, &body);
    Some(Kernel { name, src })
}

/// Programs seen, with their kernels (`None`: no CUDA kernel), kept for the process.
type ProgramMemo = HashMap<u64, Vec<(Fused, Vec<Dtype>, Vec<bool>, Option<Arc<Kernel>>)>>;
/// Above this many programs the memo starts over (the compiled modules stay cached).
const MEMO_PROGRAMS: usize = 4096;

/// `fused_kernel`, generated once per program, input dtypes and constant mask: a compiled
/// function's fused node comes back with the same program at every call, and generating a
/// long program's source cost more host time than running it (a 1000-op chain: 1.75 ms
/// per call). The lookup hashes the program's length and its first and last ops only
/// (hashing all of a 1000-op program was a quarter of such a call's host time); the full
/// comparison then tells programs in one bucket apart.
fn memo_kernel(program: &Fused, dtypes: &[Dtype], constant: &[bool]) -> Option<Arc<Kernel>> {
    static MEMO: Mutex<Option<ProgramMemo>> = Mutex::new(None);
    const ENDS: usize = 8;
    let ops = &program.ops;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        ops.len(),
        &ops[..ENDS.min(ops.len())],
        &ops[ops.len().saturating_sub(ENDS)..],
    )
        .hash(&mut h);
    (dtypes, constant).hash(&mut h);
    let key = h.finish();
    let mut guard = MEMO.lock();
    let memo = guard.get_or_insert_with(HashMap::new);
    let same = |e: &&(Fused, Vec<Dtype>, Vec<bool>, Option<Arc<Kernel>>)| {
        e.0 == *program && e.1 == dtypes && e.2 == constant
    };
    if let Some(found) = memo.get(&key).and_then(|v| v.iter().find(same)) {
        return found.3.clone();
    }
    if memo.len() >= MEMO_PROGRAMS {
        memo.clear();
    }
    let k = fused_kernel(program, dtypes, constant).map(Arc::new);
    memo.entry(key).or_default().push((
        program.clone(),
        dtypes.to_vec(),
        constant.to_vec(),
        k.clone(),
    ));
    k
}

pub fn fused(
    gpu: &'static Gpu,
    program: &Fused,
    inputs: &[ArrayData],
    out_dtype: Dtype,
) -> Result<Option<ArrayData>> {
    let Some(first) = inputs.first() else {
        return Ok(None);
    };
    let shape = first.shape.clone();
    // host-resident broadcast scalars travel packed, by value
    let constant: Vec<bool> = inputs
        .iter()
        .map(|x| {
            x.strides.iter().all(|&s| s == 0)
                && x.buffer.is_resident_on(rmx_core::Device::CPU)
                && x.dtype.size() <= 8
        })
        .collect();
    let operands_in: Vec<&ArrayData> = inputs
        .iter()
        .zip(&constant)
        .filter(|(_, &c)| !c)
        .map(|(x, _)| x)
        .collect();
    // Each operand is a pointer, a layout and a mode in the kernel's parameter space
    // (32 KB): very wide programs run on the portable interpreter instead.
    if operands_in.len() > MAX_INPUTS {
        return Ok(None);
    }
    let dtypes: Vec<Dtype> = inputs.iter().map(|x| x.dtype).collect();
    let Some(k) = memo_kernel(program, &dtypes, &constant) else {
        return Ok(None);
    };
    let Some(mut ops) = operands(gpu, &operands_in, &shape)? else {
        return Ok(None);
    };
    if constant.iter().any(|&c| c) {
        let mut packed = Vec::new();
        for (x, _) in inputs.iter().zip(&constant).filter(|(_, &c)| c) {
            let size = x.dtype.size();
            let mut slot = [0u8; 8];
            slot[..size].copy_from_slice(&x.buffer.as_bytes()[x.offset * size..][..size]);
            packed.extend_from_slice(&slot);
        }
        ops.ptrs.push(constant_ptr(gpu, &packed)?);
        ops.layouts.push(Layout::default());
        ops.modes.push(1);
    }
    let (out, optr) = alloc_output(gpu, out_dtype, &shape)?;
    launch(gpu, &k.name, || k.src.clone(), &ops, optr, out.numel())?;
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmx_core::backend::BinaryOp;
    use rmx_core::primitives::fused::FusedOp;

    /// `x * c0 + c1 * ...`: `n` ops over one array input and `n` scalar inputs.
    fn chain(n: usize) -> (Fused, Vec<Dtype>) {
        let mut prev = Arg::Input(0);
        let ops = (0..n)
            .map(|i| {
                let op = if i % 2 == 0 {
                    BinaryOp::Multiply
                } else {
                    BinaryOp::Add
                };
                let o = FusedOp {
                    kind: FusedKind::Binary(op),
                    args: vec![prev, Arg::Input(i + 1)],
                    dtype: Dtype::Float32,
                };
                prev = Arg::Op(i);
                o
            })
            .collect();
        (Fused { ops }, vec![Dtype::Float32; n + 1])
    }

    #[test]
    fn programs_are_generated_once() {
        let (p, dtypes) = chain(40);
        let constant: Vec<bool> = (0..dtypes.len()).map(|i| i > 0).collect();
        let a = memo_kernel(&p, &dtypes, &constant).expect("a kernel");
        let b = memo_kernel(&p.clone(), &dtypes, &constant).expect("a kernel");
        assert!(Arc::ptr_eq(&a, &b), "the same program must hit the memo");
        // another constant mask or program is another kernel
        let c = memo_kernel(&p, &dtypes, &vec![false; dtypes.len()]).expect("a kernel");
        assert_ne!(a.name, c.name);
        let (q, qd) = chain(41);
        let d = memo_kernel(&q, &qd, &vec![false; qd.len()]).expect("a kernel");
        assert_ne!(c.name, d.name);
        assert_eq!(*a, fused_kernel(&p, &dtypes, &constant).expect("a kernel"));
    }
}
