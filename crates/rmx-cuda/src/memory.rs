//! Device copies of rmx buffers (see docs/design/memory.md).
//!
//! Every `Buffer` keeps its host block; a kernel that reads a buffer whose GPU bit is clear
//! uploads it first (`device_ptr`), kernels write only device memory (`alloc_output`
//! clears the host bit) and host readers copy back through `DeviceMemory::download`.
//! Device blocks come from the driver's stream-ordered pool (`cuMemAllocAsync`), which
//! caches freed blocks for reuse; no managed memory.

use crate::device::{driver_err, Gpu};
use cudarc::driver::result;
use rmx_core::allocator::{Buffer, DeviceMemory, Residency};
use rmx_core::{ArrayData, Dtype, Result};
use std::sync::Arc;

/// One device allocation, freed (stream-ordered) when its buffer drops; or, while a graph
/// is being captured, a piece of that graph's arena, freed with the arena.
pub struct DeviceAlloc {
    pub ptr: u64,
    nbytes: usize,
    gpu: &'static Gpu,
    arena: Option<Arc<Arena>>,
}

impl DeviceAlloc {
    pub fn new(gpu: &'static Gpu, nbytes: usize) -> Result<DeviceAlloc> {
        if nbytes == 0 {
            return Ok(DeviceAlloc {
                ptr: 0,
                nbytes,
                gpu,
                arena: None,
            });
        }
        if let Some(arena) = crate::graph::capturing_arena() {
            return Ok(DeviceAlloc {
                ptr: arena.alloc(nbytes)?,
                nbytes,
                gpu,
                arena: Some(arena),
            });
        }
        gpu.bind()?;
        let ptr = match unsafe { result::malloc_async(gpu.stream.cu_stream(), nbytes) } {
            Ok(p) => p,
            Err(_) => {
                // Out of memory: let queued frees land, hand the pool's cache back, retry.
                gpu.stream
                    .synchronize()
                    .map_err(|e| driver_err("synchronize", e))?;
                unsafe { trim_pool(gpu) };
                unsafe { result::malloc_async(gpu.stream.cu_stream(), nbytes) }.map_err(|e| {
                    rmx_core::runtime_err!(
                        "[cuda] Out of device memory allocating {nbytes} bytes ({} bytes in use by rmx, {} total): {e:?}",
                        gpu.active.load(std::sync::atomic::Ordering::Relaxed),
                        gpu.total_memory
                    )
                })?
            }
        };
        gpu.note_alloc(nbytes);
        Ok(DeviceAlloc {
            ptr,
            nbytes,
            gpu,
            arena: None,
        })
    }
}

/// Device memory for what a captured graph allocates (`graph::capture`): blocks from
/// `cuMemAlloc`, handed out by a bump pointer and never reused while the arena lives, so
/// every replay of the graph finds each intermediate at the address the capture recorded.
/// The arena lives as long as the graph and any array still pointing into it.
pub struct Arena {
    gpu: &'static Gpu,
    blocks: parking_lot::Mutex<ArenaBlocks>,
}

#[derive(Default)]
struct ArenaBlocks {
    /// (start, size) of each block.
    taken: Vec<(u64, usize)>,
    /// The free tail of the newest block.
    next: u64,
    left: usize,
}

/// Bytes of the arena's blocks (one decode step of a 1B model needs a few MB).
const ARENA_BLOCK: usize = 32 << 20;

impl Arena {
    pub fn new(gpu: &'static Gpu) -> Arena {
        Arena {
            gpu,
            blocks: parking_lot::Mutex::new(ArenaBlocks::default()),
        }
    }

    fn alloc(&self, nbytes: usize) -> Result<u64> {
        let size = nbytes.div_ceil(256) * 256;
        let mut b = self.blocks.lock();
        if size > b.left {
            let block = size.max(ARENA_BLOCK);
            self.gpu.bind()?;
            let p = unsafe { result::malloc_sync(block) }.map_err(|e| {
                rmx_core::runtime_err!(
                    "[cuda] Out of device memory allocating a {block}-byte block for a captured graph: {e:?}"
                )
            })?;
            self.gpu.note_alloc(block);
            b.taken.push((p, block));
            b.next = p;
            b.left = block;
        }
        let p = b.next;
        b.next += size as u64;
        b.left -= size;
        Ok(p)
    }

    /// Bytes held in blocks.
    pub fn nbytes(&self) -> usize {
        self.blocks.lock().taken.iter().map(|b| b.1).sum()
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // a replay still running may write into the blocks
        if self.gpu.bind().is_ok() && self.gpu.stream.synchronize().is_ok() {
            for &(p, n) in &self.blocks.lock().taken {
                unsafe {
                    let _ = result::free_sync(p);
                }
                self.gpu.note_free(n);
            }
        }
    }
}

/// Releases the unused blocks the default memory pool keeps cached.
unsafe fn trim_pool(gpu: &Gpu) {
    let mut pool = std::mem::MaybeUninit::uninit();
    let dev = gpu.ctx.cu_device();
    if cudarc::driver::sys::cuDeviceGetDefaultMemPool(pool.as_mut_ptr(), dev)
        == cudarc::driver::sys::CUresult::CUDA_SUCCESS
    {
        cudarc::driver::sys::cuMemPoolTrimTo(pool.assume_init(), 0);
    }
}

impl Drop for DeviceAlloc {
    fn drop(&mut self) {
        if self.ptr != 0 && self.arena.is_none() && self.gpu.bind().is_ok() {
            unsafe {
                let _ = result::free_async(self.ptr, self.gpu.stream.cu_stream());
            }
            self.gpu.note_free(self.nbytes);
        }
    }
}

impl DeviceMemory for DeviceAlloc {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn download(&self, host: &mut [u8]) -> Result<()> {
        if host.is_empty() {
            return Ok(());
        }
        crate::graph::refuse_while_capturing("read device data on the host")?;
        self.gpu.bind()?;
        unsafe { result::memcpy_dtoh_async(host, self.ptr, self.gpu.stream.cu_stream()) }
            .map_err(|e| driver_err("copy to host", e))?;
        self.gpu.synchronize()
    }
}

/// The device address of element `[0, 0, ...]` of `d`, uploading the buffer first when the
/// device holds no valid copy.
pub fn device_ptr(gpu: &'static Gpu, d: &ArrayData) -> Result<u64> {
    let base = buffer_ptr(gpu, &d.buffer)?;
    Ok(base + (d.offset * d.dtype.size()) as u64)
}

/// The device address of a buffer's start, uploading it if needed.
pub fn buffer_ptr(gpu: &'static Gpu, buffer: &Buffer) -> Result<u64> {
    let small = buffer.nbytes() <= 8 && buffer.nbytes() > 0;
    if small && !buffer.is_resident_on(rmx_core::Device::GPU) && buffer.device_memory().is_none() {
        return constant_ptr(gpu, buffer.as_bytes());
    }
    own_buffer_ptr(gpu, buffer)
}

/// The device address of `d`'s element `[0, ...]` in the buffer's own device copy, for
/// kernels that write into it (never a shared constant).
pub fn device_ptr_mut(gpu: &'static Gpu, d: &ArrayData) -> Result<u64> {
    let base = own_buffer_ptr(gpu, &d.buffer)?;
    Ok(base + (d.offset * d.dtype.size()) as u64)
}

fn own_buffer_ptr(gpu: &'static Gpu, buffer: &Buffer) -> Result<u64> {
    let mut slot = buffer.device_memory();
    if slot.is_none() {
        *slot = Some(Box::new(DeviceAlloc::new(gpu, buffer.nbytes())?));
    }
    let mem = slot
        .as_ref()
        .and_then(|m| m.as_any().downcast_ref::<DeviceAlloc>())
        .ok_or_else(|| rmx_core::runtime_err!("[cuda] Buffer holds another device's copy."))?;
    if !buffer.is_resident_on(rmx_core::Device::GPU) && buffer.nbytes() > 0 {
        // No valid device copy means the host copy is valid (a buffer always has one).
        crate::graph::refuse_while_capturing("upload host data")?;
        gpu.bind()?;
        unsafe { result::memcpy_htod_async(mem.ptr, buffer.as_bytes(), gpu.stream.cu_stream()) }
            .map_err(|e| driver_err("copy to device", e))?;
        buffer.add_residency(Residency::GPU);
    }
    Ok(mem.ptr)
}

/// A fresh row-contiguous array whose only valid copy will be the device one the caller's
/// kernel writes; returns it with its device address.
pub fn alloc_output(gpu: &'static Gpu, dtype: Dtype, shape: &[usize]) -> Result<(ArrayData, u64)> {
    let n: usize = shape.iter().product();
    let nbytes = n * dtype.size();
    let buffer = Buffer::new(nbytes)?;
    let mem = DeviceAlloc::new(gpu, nbytes)?;
    let ptr = mem.ptr;
    *buffer.device_memory() = Some(Box::new(mem));
    buffer.set_residency(Residency::GPU);
    let data = ArrayData {
        buffer: Arc::new(buffer),
        dtype,
        shape: shape.into(),
        strides: rmx_core::shape::row_strides(shape),
        offset: 0,
    };
    Ok((data, ptr))
}

/// Device copies of small host constants (the scalars of `x + 1`, a softmax scale, ...),
/// keyed by their bytes and kept for the process: an op's scalar operand is uploaded once,
/// not at every call (a pageable upload costs microseconds of host time per op). Host
/// buffers are immutable once written, so sharing by value is safe.
pub fn constant_ptr(gpu: &'static Gpu, bytes: &[u8]) -> Result<u64> {
    use parking_lot::Mutex;
    use std::collections::HashMap;
    static CONSTANTS: Mutex<Option<HashMap<Vec<u8>, DeviceAlloc>>> = Mutex::new(None);
    const MAX_CONSTANTS: usize = 1 << 14;
    let mut guard = CONSTANTS.lock();
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(a) = map.get(bytes) {
        return Ok(a.ptr);
    }
    if map.len() >= MAX_CONSTANTS {
        if crate::graph::graphs_alive() {
            // a captured graph may read any of them at every replay: keep them (leaked)
            std::mem::forget(std::mem::take(map));
        } else {
            map.clear(); // frees are stream-ordered: kernels queued before still read valid memory
        }
    }
    crate::graph::refuse_while_capturing("upload a new constant")?;
    let a = DeviceAlloc::new(gpu, bytes.len())?;
    gpu.bind()?;
    unsafe { result::memcpy_htod_async(a.ptr, bytes, gpu.stream.cu_stream()) }
        .map_err(|e| driver_err("copy to device", e))?;
    let ptr = a.ptr;
    map.insert(bytes.to_vec(), a);
    Ok(ptr)
}
