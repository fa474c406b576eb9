//! Devices and streams. Arrays have no location: each op runs on a stream, and a
//! stream belongs to a device. The scheduler (eval.rs) routes each node to its
//! stream's backend.

use crate::error::Result;
use parking_lot::Mutex;
use std::cell::RefCell;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceType {
    Cpu,
    Gpu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Device {
    pub kind: DeviceType,
    pub index: usize,
}

impl Device {
    pub const CPU: Device = Device {
        kind: DeviceType::Cpu,
        index: 0,
    };
    pub const GPU: Device = Device {
        kind: DeviceType::Gpu,
        index: 0,
    };
    pub fn cpu() -> Device {
        Device::CPU
    }
    pub fn gpu() -> Device {
        Device::GPU
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = match self.kind {
            DeviceType::Cpu => "cpu",
            DeviceType::Gpu => "gpu",
        };
        write!(f, "Device({k}, {})", self.index)
    }
}

/// An ordered queue of work on one device.
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

/// Whether a backend for `device` is compiled in and usable.
pub fn is_available(device: Device) -> bool {
    match device.kind {
        DeviceType::Cpu => device.index == 0,
        DeviceType::Gpu => false,
    }
}

pub fn device_count(kind: DeviceType) -> usize {
    match kind {
        DeviceType::Cpu => 1,
        DeviceType::Gpu => 0,
    }
}

struct Registry {
    default_device: Device,
    streams: Vec<Stream>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    default_device: Device::CPU,
    streams: Vec::new(),
});

fn ensure_default_streams(reg: &mut Registry) {
    if reg.streams.is_empty() {
        reg.streams.push(Stream {
            index: 0,
            device: Device::CPU,
        });
    }
}

thread_local! {
    /// Stream overrides set by `with_stream` (the `stream=` argument, `with mx.stream(s)`).
    static STREAM_STACK: RefCell<Vec<Stream>> = const { RefCell::new(Vec::new()) };
}

pub fn default_device() -> Device {
    REGISTRY.lock().default_device
}

pub fn set_default_device(device: Device) -> Result<()> {
    check_available(device)?;
    REGISTRY.lock().default_device = device;
    Ok(())
}

fn check_available(device: Device) -> Result<()> {
    if is_available(device) {
        return Ok(());
    }
    Err(match device.kind {
        DeviceType::Gpu => crate::value_err!("Cannot get gpu stream without gpu backend."),
        DeviceType::Cpu => crate::value_err!("[Device] Invalid cpu device index {}.", device.index),
    })
}

/// The default stream of `device`.
pub fn default_stream(device: Device) -> Result<Stream> {
    check_available(device)?;
    let mut reg = REGISTRY.lock();
    ensure_default_streams(&mut reg);
    Ok(*reg.streams.iter().find(|s| s.device == device).unwrap())
}

pub fn new_stream(device: Device) -> Result<Stream> {
    check_available(device)?;
    let mut reg = REGISTRY.lock();
    ensure_default_streams(&mut reg);
    let s = Stream {
        index: reg.streams.len(),
        device,
    };
    reg.streams.push(s);
    Ok(s)
}

/// The stream ops built on this thread now run on.
pub fn current_stream() -> Stream {
    if let Some(s) = STREAM_STACK.with(|st| st.borrow().last().copied()) {
        return s;
    }
    let dev = default_device();
    default_stream(dev).unwrap_or(Stream {
        index: 0,
        device: Device::CPU,
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
