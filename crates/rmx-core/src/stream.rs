//! Streams: ordered queues of work on one device. As in MLX 0.32.4 each thread has its own
//! default stream per device (created on first use) and `clear_streams` destroys the
//! streams the calling thread created. Unlike MLX, any thread may use any live stream and
//! evaluate any array: the scheduler (scheduler/) makes that safe.

use crate::device::{check_available, default_device, Device};
use crate::error::Result;
use crate::scheduler;
use std::cell::RefCell;

/// An ordered queue of work on one device. `index` is unique in the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stream {
    pub index: usize,
    pub device: Device,
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stream({}, {})", self.device, self.index)
    }
}

thread_local! {
    /// This thread's default stream of each device it used (`set_default_stream` replaces it).
    static DEFAULTS: RefCell<Vec<Stream>> = const { RefCell::new(Vec::new()) };
    /// Overrides set by `with_stream` (the `stream=` argument of an op).
    static STREAM_STACK: RefCell<Vec<Stream>> = const { RefCell::new(Vec::new()) };
}

/// The calling thread's default stream of `device`, made on first use.
pub fn default_stream(device: Device) -> Result<Stream> {
    check_available("default_stream", device)?;
    if let Some(s) = DEFAULTS.with(|d| d.borrow().iter().find(|s| s.device == device).copied()) {
        return Ok(s);
    }
    let s = scheduler::create_stream(device);
    DEFAULTS.with(|d| d.borrow_mut().push(s));
    Ok(s)
}

/// Makes `stream` the calling thread's default for its device (not the default device).
pub fn set_default_stream(stream: Stream) -> Result<()> {
    check_available("set_default_stream", stream.device)?;
    DEFAULTS.with(|d| {
        let mut d = d.borrow_mut();
        d.retain(|s| s.device != stream.device);
        d.push(stream);
    });
    Ok(())
}

pub fn new_stream(device: Device) -> Result<Stream> {
    check_available("new_stream", device)?;
    Ok(scheduler::create_stream(device))
}

/// Destroys every stream the calling thread created; queued work still finishes. As in
/// MLX 0.32.4 the thread's default streams are destroyed too but stay the default, so
/// ops on them fail until `set_default_stream` names a live stream.
pub fn clear_streams() {
    scheduler::destroy_streams_of_current_thread();
}

/// Waits until everything queued on `stream` so far has run (a no-op on a destroyed stream).
pub fn synchronize(stream: Stream) -> Result<()> {
    check_available("synchronize", stream.device)?;
    scheduler::synchronize(stream);
    // A device backend may still be running what the stream queued (kernels are async).
    crate::backend::backend_for(stream.device)?.synchronize()
}

/// The stream ops built on this thread now run on.
pub fn current_stream() -> Stream {
    if let Some(s) = STREAM_STACK.with(|st| st.borrow().last().copied()) {
        return s;
    }
    let dev = default_device();
    default_stream(dev).unwrap_or_else(|_| {
        default_stream(Device::CPU).expect("the cpu device is always available")
    })
}

/// Runs `f` with ops placed on `stream`.
pub fn with_stream<R>(stream: Stream, f: impl FnOnce() -> R) -> R {
    STREAM_STACK.with(|st| st.borrow_mut().push(stream));
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            STREAM_STACK.with(|st| {
                st.borrow_mut().pop();
            });
        }
    }
    let _pop = Pop;
    f()
}

/// Runs `f` with ops placed on the default stream of `device`.
pub fn with_device<R>(device: Device, f: impl FnOnce() -> R) -> Result<R> {
    let s = default_stream(device)?;
    Ok(with_stream(s, f))
}

/// Checks that `stream` can take new work: MLX's error for a destroyed stream.
pub fn check_stream(stream: Stream) -> Result<()> {
    if scheduler::is_live(stream) {
        Ok(())
    } else {
        Err(no_stream(stream))
    }
}

pub(crate) fn no_stream(stream: Stream) -> crate::Error {
    crate::runtime_err!(
        "There is no Stream({}, {}) in current thread.",
        stream.device.kind.name(),
        stream.index
    )
}
