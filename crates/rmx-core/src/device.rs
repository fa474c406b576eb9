//! Devices. Arrays have no location: each op runs on a stream (stream.rs), and a
//! stream belongs to a device. This file says which devices exist and which is the default.

use crate::error::Result;
use std::sync::atomic::{AtomicU64, Ordering};

pub use crate::stream::{
    clear_streams, current_stream, default_stream, new_stream, set_default_stream, synchronize,
    with_device, with_stream, Stream,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceType {
    Cpu,
    Gpu,
}

impl DeviceType {
    pub fn name(self) -> &'static str {
        match self {
            DeviceType::Cpu => "cpu",
            DeviceType::Gpu => "gpu",
        }
    }
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
        write!(f, "Device({}, {})", self.kind.name(), self.index)
    }
}

/// Whether a backend for `device` is compiled in and the device exists.
pub fn is_available(device: Device) -> bool {
    device.index < device_count(device.kind)
}

/// How many devices of `kind` this process can use: one GPU once a GPU backend is
/// registered (`backend::register_gpu_backend`), none before.
pub fn device_count(kind: DeviceType) -> usize {
    match kind {
        DeviceType::Cpu => 1,
        DeviceType::Gpu => crate::backend::gpu_backend().is_some() as usize,
    }
}

/// Properties of `device` as MLX reports them: `architecture` and `device_name` for the
/// CPU (of any index, as MLX 0.32.4), nothing for a GPU without a backend.
pub fn device_info(device: Device) -> Vec<(&'static str, String)> {
    match device.kind {
        DeviceType::Gpu => crate::backend::gpu_backend()
            .filter(|_| is_available(device))
            .map(|b| b.device_info())
            .unwrap_or_default(),
        DeviceType::Cpu => {
            let name = std::fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("model name"))
                        .and_then(|l| l.split_once(':'))
                        .map(|(_, v)| v.trim().to_string())
                })
                .unwrap_or_default();
            vec![
                ("architecture", std::env::consts::ARCH.to_string()),
                ("device_name", name),
            ]
        }
    }
}

// The default device is process-wide, as in MLX (the default *stream* is per thread).
static DEFAULT_DEVICE: AtomicU64 = AtomicU64::new(0);

fn pack(d: Device) -> u64 {
    ((d.kind == DeviceType::Gpu) as u64) << 32 | d.index as u64
}

pub fn default_device() -> Device {
    let v = DEFAULT_DEVICE.load(Ordering::Relaxed);
    Device {
        kind: if v >> 32 == 1 {
            DeviceType::Gpu
        } else {
            DeviceType::Cpu
        },
        index: (v & 0xffff_ffff) as usize,
    }
}

pub fn set_default_device(device: Device) -> Result<()> {
    check_available("set_default_device", device)?;
    DEFAULT_DEVICE.store(pack(device), Ordering::Relaxed);
    Ok(())
}

/// MLX's errors for a device without a backend (ValueError) and, where MLX has only a
/// C++ range error (IndexError), a clear message for a device index that does not exist.
pub(crate) fn check_available(op: &str, device: Device) -> Result<()> {
    if is_available(device) {
        return Ok(());
    }
    if device.kind == DeviceType::Gpu && device_count(DeviceType::Gpu) == 0 {
        return Err(match op {
            "new_stream" => {
                crate::value_err!("[new_stream] Cannot make gpu stream without gpu backend.")
            }
            "set_default_device" => {
                crate::value_err!("[set_default_device] Cannot set gpu device without gpu backend.")
            }
            _ => crate::value_err!("[{op}] Cannot get gpu stream without gpu backend."),
        });
    }
    let n = device_count(device.kind);
    Err(crate::index_err!(
        "[{op}] There is no {device}: {n} {} device{} available.",
        device.kind.name(),
        if n == 1 { " is" } else { "s are" }
    ))
}
