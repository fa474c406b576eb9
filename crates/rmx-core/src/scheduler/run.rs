//! Running one node: wait for its inputs (an input from another stream is waited on
//! through its node's event), make them resident on the node's device, compute, record
//! the result or the error, signal the node's event and drop the inputs (which detaches
//! the graph). Never panics and never returns early without signalling.

use crate::array::{Array, ArrayData, Node, Progress, State, Status};
use crate::error::Result;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

pub(crate) fn run_node(node: &Arc<Node>) {
    let mut started = None;
    let result =
        catch_unwind(AssertUnwindSafe(|| compute(node, &mut started))).unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(crate::runtime_err!(
                "[{}] Evaluation panicked: {msg}",
                node.primitive.name()
            ))
        });
    if let Some(t0) = started {
        super::trace::record(node, t0);
    }
    {
        let mut st = node.status.lock();
        *st = match result {
            Ok(r) => Status::Done(r),
            Err(e) => Status::Failed(e),
        };
    }
    node.finished.notify_all();
    let inputs = std::mem::take(&mut *node.inputs.lock());
    drop(inputs);
}

/// Computes the node's outputs; `started` gets the trace time once the inputs are ready.
fn compute(node: &Arc<Node>, started: &mut Option<u64>) -> Result<Vec<ArrayData>> {
    // no heap allocation for the usual few inputs
    let inputs: smallvec::SmallVec<[Array; 4]> = node.inputs.lock().iter().cloned().collect();
    let backend = crate::backend::backend_for(node.stream.device)?;
    let mut in_data: smallvec::SmallVec<[ArrayData; 4]> = smallvec::SmallVec::new();
    let donatable = node.primitive.donatable_inputs();
    for (i, inp) in inputs.iter().enumerate() {
        let mut d = wait_for_data(inp, node)?;
        if donatable.contains(&i) {
            // held by `node.inputs` and by `inputs` here, nowhere else
            d = inp.donate(d, 2);
        }
        backend.make_resident(&d.buffer)?;
        in_data.push(d);
    }
    *started = super::trace::now_if_enabled();
    let results = node.primitive.eval(backend, &in_data, &node.output_specs)?;
    if started.is_some() && super::trace::synced() {
        backend.synchronize()?;
    }
    if results.len() != node.output_specs.len() {
        return Err(crate::runtime_err!(
            "[{}] Produced {} outputs instead of {}.",
            node.primitive.name(),
            results.len(),
            node.output_specs.len()
        ));
    }
    // Consumers' kernels trust the node's shapes: a kernel that disagrees (only a damaged
    // imported function can make one) fails here instead of being read out of bounds.
    for (r, spec) in results.iter().zip(node.output_specs.iter()) {
        if r.shape[..] != spec.shape[..] || r.dtype != spec.dtype {
            return Err(crate::runtime_err!(
                "[{}] Produced an output of shape {:?} and type {} where {:?} {} was expected.",
                node.primitive.name(),
                &r.shape[..],
                r.dtype,
                &spec.shape[..],
                spec.dtype
            ));
        }
    }
    Ok(results)
}

/// The data of `inp`, waiting for its node's event if another stream is still computing
/// it. The array's own lock is not held while waiting, so readers of it never block.
/// Only stream workers and threads outside rayon's pool wait here: a helper on a pool
/// thread runs a node only once its inputs are ready (`inputs_ready`), since a pool
/// thread that blocks (or runs other pool jobs while it waits) can sit on top of the very
/// kernel it waits for.
fn wait_for_data(inp: &Array, consumer: &Node) -> Result<ArrayData> {
    loop {
        let src = match inp.progress() {
            Progress::Data(d) => return Ok(d),
            Progress::Failed(e) => return Err(e),
            Progress::Unscheduled => {
                return Err(crate::runtime_err!(
                    "[eval] An input of {} was never scheduled.",
                    consumer.primitive.name()
                ))
            }
            Progress::Running(node) => node,
        };
        let mut st = src.status.lock();
        while matches!(*st, Status::Scheduled) {
            src.finished.wait(&mut st);
        }
    }
}

/// Whether `node` can run without waiting: every input computed by another stream is
/// finished. Inputs from the node's own stream were queued before it, so they are done.
pub(crate) fn inputs_ready(node: &Node) -> bool {
    node.inputs
        .lock()
        .iter()
        .all(|inp| match &*inp.inner.state.lock() {
            State::Ready(_) => true,
            State::Pending { node: src, .. } => {
                src.stream == node.stream || !matches!(*src.status.lock(), Status::Scheduled)
            }
        })
}
