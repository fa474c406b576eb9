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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

/// Blocks until every node of `nodes` is computed; returns the first error. A helping
/// thread keeps running its queue until all of them are done, rather than handing the
/// rest to the stream's worker after the first (a thread hand-off per target).
pub(crate) fn wait_all(nodes: &[Arc<Node>]) -> Result<()> {
    for node in nodes {
        wait_helping(node, nodes)?;
    }
    Ok(())
}

/// Runs `f` on a thread of rayon's pool (injecting it once if the caller is not one), so
/// the kernels' parallel loops share work through the pool's own deques; called from
/// outside, every parallel kernel would inject its work and sleep on a latch, two thread
/// switches per op. `help` runs there only nodes whose inputs are ready and leaves one
/// that must wait for another stream to the stream's worker thread: a pool thread that
/// waited could be sitting on top of (inside a parallel loop of) the kernel it waits for.
///
/// With `keep_awake` (a long evaluation), the pool's other threads spin for work while
/// `f` runs (`spin_for_work`): between two parallel kernels rayon puts idle threads to
/// sleep, and waking one costs tens of microseconds, more than a decode-sized kernel.
fn on_pool<R: Send>(keep_awake: bool, f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    let finished = AtomicBool::new(false);
    rayon::scope(|s| {
        if keep_awake {
            for _ in 1..rayon::current_num_threads() {
                s.spawn(|_| spin_for_work(&finished));
            }
        }
        let r = f();
        finished.store(true, Ordering::Release);
        r
    })
}

/// `on_pool`, except that a single queued node runs on the calling thread: entering the
/// pool from outside costs a wake-up and two thread switches (tens of microseconds on a
/// 2-core VM: a third of a compiled 1000-op call on 16 elements), more than one kernel that
/// goes parallel loses by injecting its work itself.
fn on_pool_unless_single<R: Send>(
    pending: usize,
    keep_awake: bool,
    f: impl FnOnce() -> R + Send,
) -> R {
    if pending <= 1 {
        f()
    } else {
        on_pool(keep_awake, f)
    }
}

/// Evaluations with at least this many queued nodes keep the pool awake.
const KEEP_AWAKE_NODES: usize = 32;
/// A spinning thread that found no work for this long goes back to rayon's sleep.
const SPIN_LIMIT: std::time::Duration = std::time::Duration::from_micros(300);

/// Runs the pool's jobs as they appear until `finished`, or until none came for
/// `SPIN_LIMIT` (so a long serial kernel does not keep a core busy for nothing).
fn spin_for_work(finished: &AtomicBool) {
    let mut last_work = std::time::Instant::now();
    while !finished.load(Ordering::Acquire) {
        match rayon::yield_now() {
            Some(rayon::Yield::Executed) => last_work = std::time::Instant::now(),
            _ if last_work.elapsed() > SPIN_LIMIT => return,
            _ => std::hint::spin_loop(),
        }
    }
}

/// Blocks until `node` is done; when helping, runs its queue until all of `targets` are.
fn wait_helping(node: &Arc<Node>, targets: &[Arc<Node>]) -> Result<()> {
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
        if let Some(q) = queue(node.stream) {
            let pending = q.pending();
            let helped = on_pool_unless_single(pending, pending >= KEEP_AWAKE_NODES, || {
                // targets finish roughly in order: skip the done prefix once, so a check
                // costs one lock per node run, not one per target
                let first_pending = std::cell::Cell::new(0);
                let finished = || {
                    let mut i = first_pending.get();
                    while i < targets.len()
                        && !matches!(*targets[i].status.lock(), Status::Scheduled)
                    {
                        i += 1;
                    }
                    first_pending.set(i);
                    i == targets.len()
                };
                q.help(&finished)
            });
            if helped {
                continue;
            }
        }
        let mut st = node.status.lock();
        if matches!(*st, Status::Scheduled) {
            node.finished.wait(&mut st);
        }
    }
}
