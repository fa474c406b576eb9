//! Evaluation: a topological walk from the requested arrays to computed leaves, handed to
//! the scheduler, which runs each node on its stream. A computed node drops its inputs,
//! so the graph behind evaluated arrays is freed (constant memory over a training loop).

use crate::array::{Array, Node, Status};
use crate::error::Result;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// Hashes node addresses (distinct, 8-byte aligned) by one multiply: SipHash was a
/// visible share of evaluating small graphs.
#[derive(Default)]
struct PtrHasher(u64);

impl Hasher for PtrHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, v: usize) {
        self.0 = (v as u64 >> 3)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }
}

type BuildPtrHasher = BuildHasherDefault<PtrHasher>;
use std::sync::Arc;

/// Computes every array in `outputs` (and what they depend on), blocking until they are
/// done; other queued work is not waited for. Shared subgraphs run once. An error of any
/// node they depend on, including one that failed in the background, is returned here.
pub fn eval(outputs: &[Array]) -> Result<()> {
    let (tape, targets) = build_tape(outputs);
    crate::scheduler::submit(&tape, true)?;
    drop(tape);
    crate::scheduler::wait_all(&targets)?;
    // As MLX, eval returns once device work is done; a device reports errors its kernels
    // recorded (an out-of-range index) at this point.
    let mut synced: Vec<crate::Device> = Vec::new();
    for node in &targets {
        let device = node.stream.device;
        if device != crate::Device::CPU && !synced.contains(&device) {
            synced.push(device);
            crate::backend::backend_for(device)?.synchronize()?;
        }
    }
    for out in outputs {
        out.try_data();
    }
    Ok(())
}

/// Queues the evaluation of `outputs` and returns at once; a later `eval`, `item`, ...
/// waits for the results (and reports any error).
pub fn async_eval(outputs: &[Array]) -> Result<()> {
    let (tape, _) = build_tape(outputs);
    crate::scheduler::submit(&tape, false)
}

/// Not-yet-claimed nodes in dependency order (one entry per node), and the nodes of
/// the outputs that are still to be computed.
fn build_tape(outputs: &[Array]) -> (Vec<Arc<Node>>, Vec<Arc<Node>>) {
    let mut tape = Vec::new();
    let mut targets = Vec::new();
    let mut seen: HashSet<usize, BuildPtrHasher> = HashSet::default();
    // (node, inputs pushed?)
    let mut stack: Vec<(Arc<Node>, bool)> = Vec::new();
    for out in outputs {
        let Some((node, _)) = out.node() else {
            continue;
        };
        if !matches!(*node.status.lock(), Status::Done(_)) {
            targets.push(node.clone());
        }
        stack.push((node, false));
        while let Some((node, expanded)) = stack.pop() {
            if expanded {
                tape.push(node);
                continue;
            }
            if !matches!(*node.status.lock(), Status::Built) {
                continue;
            }
            if !seen.insert(Arc::as_ptr(&node) as *const () as usize) {
                continue;
            }
            let at = stack.len();
            for inp in node.inputs.lock().iter().rev() {
                if let Some((n, _)) = inp.node() {
                    stack.push((n, false));
                }
            }
            stack.insert(at, (node, true));
        }
    }
    (tape, targets)
}
