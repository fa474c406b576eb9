//! An opt-in record of when each node ran and on which stream, for tests and debugging
//! (e.g. to check that two streams overlap, from timestamps taken inside the scheduler).
//! Off by default; when off it costs one relaxed atomic load per node.

use crate::array::Node;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct TraceEvent {
    pub stream: usize,
    pub primitive: &'static str,
    /// Nanoseconds since the trace clock's epoch (see `now`).
    pub start_ns: u64,
    pub end_ns: u64,
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static SYNCED: AtomicBool = AtomicBool::new(false);
static EVENTS: Mutex<Vec<TraceEvent>> = Mutex::new(Vec::new());

/// Turns recording on or off (turning it on clears earlier events).
pub fn enable(on: bool) {
    if on {
        EVENTS.lock().clear();
    }
    ENABLED.store(on, Ordering::SeqCst);
}

/// While recording, whether each node also waits for its device to finish it, so an
/// event's time includes the device's (for profiling where a GPU step's time goes; this
/// serializes host and device).
pub fn set_synced(on: bool) {
    SYNCED.store(on, Ordering::SeqCst);
}

pub(crate) fn synced() -> bool {
    SYNCED.load(Ordering::Relaxed)
}

/// Takes the events recorded so far.
pub fn take() -> Vec<TraceEvent> {
    std::mem::take(&mut *EVENTS.lock())
}

/// The trace clock, in nanoseconds (comparable with the events' times).
pub fn now() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

pub(crate) fn now_if_enabled() -> Option<u64> {
    ENABLED.load(Ordering::Relaxed).then(now)
}

pub(crate) fn record(node: &Node, start_ns: u64) {
    let ev = TraceEvent {
        stream: node.stream.index,
        primitive: node.primitive.name(),
        start_ns,
        end_ns: now(),
    };
    EVENTS.lock().push(ev);
}
