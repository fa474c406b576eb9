//! The scheduler: every live stream has a queue (queue.rs) whose nodes run in order on
//! the stream's worker thread; a node whose input comes from another stream waits on
//! that input's event (run.rs). `submit` claims the nodes of an evaluation and queues
//! them; `wait` blocks on one node, running its stream's queue itself when no one else
//! is (so a single-stream `eval` runs inline, without a thread hand-off).
//!
//! Deadlock freedom: nodes are claimed and queued under one short lock (`SUBMIT`), each
//! evaluation in dependency order, so queue positions are consistent with the graph: the
//! earliest unfinished node has all its inputs done and sits at the front of its queue.

mod queue;
mod run;
pub mod trace;

use crate::array::{Node, Status};
use crate::device::{Device, Stream};
use crate::error::Result;
use parking_lot::{Mutex, RwLock};
use queue::StreamQueue;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

static NEXT_INDEX: AtomicUsize = AtomicUsize::new(0);
/// Live streams by index (`None` once destroyed).
static QUEUES: RwLock<Vec<Option<Arc<StreamQueue>>>> = RwLock::new(Vec::new());
static SUBMIT: Mutex<()> = Mutex::new(());

pub(crate) fn create_stream(device: Device) -> Stream {
    let mut queues = QUEUES.write();
    let stream = Stream {
        index: NEXT_INDEX.fetch_add(1, Ordering::Relaxed),
        device,
    };
    if queues.len() <= stream.index {
        queues.resize(stream.index + 1, None);
    }
    queues[stream.index] = Some(StreamQueue::new(stream));
    stream
}

fn queue(stream: Stream) -> Option<Arc<StreamQueue>> {
    QUEUES.read().get(stream.index).cloned().flatten()
}

pub(crate) fn is_live(stream: Stream) -> bool {
    QUEUES.read().get(stream.index).is_some_and(|q| q.is_some())
}

pub(crate) fn destroy_streams_of_current_thread() {
    let me = std::thread::current().id();
    let mut gone = Vec::new();
    for slot in QUEUES.write().iter_mut() {
        if slot.as_ref().is_some_and(|q| q.owner == me) {
            gone.extend(slot.take());
        }
    }
    for q in gone {
        q.close();
    }
}

pub(crate) fn synchronize(stream: Stream) {
    if let Some(q) = queue(stream) {
        q.synchronize();
    }
}

/// Claims the still-unclaimed nodes of `tape` (in dependency order) and queues each on
/// its stream. With `blocking` and a single stream, no worker is woken: the caller runs
/// the queue in `wait`. Fails, claiming nothing, if a node's stream was destroyed.
pub(crate) fn submit(tape: &[Arc<Node>], blocking: bool) -> Result<()> {
    let mut queues: Vec<(Arc<StreamQueue>, Vec<Arc<Node>>)> = Vec::new();
    for node in tape {
        if !queues.iter().any(|(q, _)| q.stream == node.stream) {
            let q = queue(node.stream).ok_or_else(|| crate::stream::no_stream(node.stream))?;
            queues.push((q, Vec::new()));
        }
    }
    let _order = SUBMIT.lock();
    for node in tape {
        let mut st = node.status.lock();
        if matches!(*st, Status::Built) {
            *st = Status::Scheduled;
            drop(st);
            let slot = queues.iter_mut().find(|(q, _)| q.stream == node.stream);
            slot.expect("resolved above").1.push(node.clone());
        }
    }
    let wake = !blocking || queues.len() > 1;
    for (q, nodes) in queues {
        if !nodes.is_empty() {
            q.push(nodes, wake);
        }
    }
    Ok(())
}

/// Blocks until `node` is computed (or failed), helping its stream when it is idle.
pub(crate) fn wait(node: &Arc<Node>) -> Result<()> {
    loop {
        match &*node.status.lock() {
            Status::Done(_) => return Ok(()),
            Status::Failed(e) => return Err(e.clone()),
            Status::Built => {
                return Err(crate::runtime_err!(
                    "[eval] {} was never scheduled.",
                    node.primitive.name()
                ))
            }
            Status::Scheduled => {}
        }
        let finished = || !matches!(*node.status.lock(), Status::Scheduled);
        if let Some(q) = queue(node.stream) {
            if q.help(&finished) {
                continue;
            }
        }
        let mut st = node.status.lock();
        if matches!(*st, Status::Scheduled) {
            node.finished.wait(&mut st);
        }
    }
}
