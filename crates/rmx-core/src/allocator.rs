//! A caching allocator for array buffers, and the memory API built on it
//! (`get_active_memory`, `get_peak_memory`, `set_cache_limit`, ... as in MLX).
//! Freed buffers go to a size-keyed cache so a loop of large ops does not page-fault
//! on every call; the cache is bounded by the cache limit.

use parking_lot::Mutex;
use std::alloc::{alloc, dealloc, Layout};
use std::collections::BTreeMap;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

const ALIGN: usize = 64;
/// Blocks of at least this size are aligned to 2 MiB and, on Linux, advised to use
/// transparent huge pages (as NumPy does for its large arrays): streaming a 40 MB
/// array then walks 20 TLB entries instead of 10,000.
const HUGE_PAGE_MIN: usize = 4 << 20;
const HUGE_PAGE: usize = 2 << 20;

/// The layout of a block of `capacity` bytes (the same on alloc and dealloc).
fn block_layout(capacity: usize) -> Option<Layout> {
    let align = if capacity >= HUGE_PAGE_MIN {
        HUGE_PAGE
    } else {
        ALIGN
    };
    Layout::from_size_align(capacity, align).ok()
}

/// Allocates a block from the system (huge-page advised when large).
fn system_alloc(capacity: usize) -> Option<NonNull<u8>> {
    let layout = block_layout(capacity)?;
    let p = NonNull::new(unsafe { alloc(layout) })?;
    #[cfg(target_os = "linux")]
    if capacity >= HUGE_PAGE_MIN {
        // advice only: failure (e.g. THP disabled) leaves ordinary pages
        unsafe { libc::madvise(p.as_ptr().cast(), capacity, libc::MADV_HUGEPAGE) };
    }
    Some(p)
}

/// Returns a block from `system_alloc` to the system.
///
/// # Safety
/// `p` came from `system_alloc(capacity)` and is not used afterwards.
unsafe fn system_free(p: NonNull<u8>, capacity: usize) {
    if let Some(layout) = block_layout(capacity) {
        unsafe { dealloc(p.as_ptr(), layout) };
    }
}

/// A block of host memory owned by one array buffer. Returned to the cache on drop.
pub struct Buffer {
    ptr: NonNull<u8>,
    nbytes: usize,
    capacity: usize,
    /// Which memories hold a valid copy of the bytes (`Residency` bits).
    residency: AtomicU8,
    /// The device copy, made by a device backend (see docs/design/memory.md).
    device: Mutex<Option<Box<dyn DeviceMemory>>>,
}

/// A copy of a buffer's bytes in a device's memory. The backend that made it owns its
/// allocation (freed when the buffer drops) and knows how to copy it back.
pub trait DeviceMemory: Send + Sync {
    fn as_any(&self) -> &dyn std::any::Any;
    /// Copies the device bytes into `dst` (the whole buffer), after the writes queued before.
    fn download(&self, dst: &mut [u8]) -> crate::Result<()>;
}

/// Residency bits of a `Buffer` (see docs/design/memory.md).
pub struct Residency;
impl Residency {
    pub const HOST: u8 = 1;
    pub const GPU: u8 = 2;
}

// The buffer is plain memory; synchronisation of writes is the scheduler's job
// (a buffer is written only by the op that produces it, before anyone else sees it).
unsafe impl Send for Buffer {}
unsafe impl Sync for Buffer {}

impl Buffer {
    /// Uninitialised memory of `nbytes` bytes, 64-byte aligned.
    pub fn new(nbytes: usize) -> crate::Result<Buffer> {
        ALLOCATOR.allocate(nbytes)
    }

    pub fn zeroed(nbytes: usize) -> crate::Result<Buffer> {
        let b = Buffer::new(nbytes)?;
        unsafe { std::ptr::write_bytes(b.ptr.as_ptr(), 0, nbytes) };
        Ok(b)
    }

    pub fn nbytes(&self) -> usize {
        self.nbytes
    }
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }
    /// Raw mutable pointer; callers must be the buffer's only writer.
    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    pub fn as_bytes(&self) -> &[u8] {
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.nbytes) }
    }

    /// Whether the memory `device` reads holds a valid copy.
    pub fn is_resident_on(&self, device: crate::Device) -> bool {
        self.residency.load(Ordering::Acquire) & residency_bit(device) != 0
    }

    /// Makes a valid host copy available before host code reads the buffer: copies the
    /// device copy back when the host bit is clear. Device copies are the device backend's
    /// job (it uploads through `device_memory` when a kernel of its needs the bytes).
    pub fn make_resident(&self, device: crate::Device) -> crate::Result<()> {
        if self.is_resident_on(device) {
            return Ok(());
        }
        let slot = self.device.lock();
        if self.is_resident_on(device) {
            return Ok(());
        }
        match (device.kind, &*slot) {
            (crate::DeviceType::Cpu, Some(mem)) => {
                // The host block is written only here, while no host reader can see it yet
                // (its HOST bit is clear) and the slot lock is held.
                let dst = unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.nbytes) };
                mem.download(dst)?;
                self.residency.fetch_or(Residency::HOST, Ordering::AcqRel);
                Ok(())
            }
            _ => Err(crate::runtime_err!(
                "[make_resident] No copy of this buffer on {device} and no backend to transfer it."
            )),
        }
    }

    /// The device copy slot; a device backend fills it (then `add_residency`).
    pub fn device_memory(&self) -> parking_lot::MutexGuard<'_, Option<Box<dyn DeviceMemory>>> {
        self.device.lock()
    }
    /// Marks `bits` as also holding a valid copy.
    pub fn add_residency(&self, bits: u8) {
        self.residency.fetch_or(bits, Ordering::AcqRel);
    }
    /// Marks exactly `bits` as holding a valid copy (after a write on one side).
    pub fn set_residency(&self, bits: u8) {
        self.residency.store(bits, Ordering::Release);
    }
}

fn residency_bit(device: crate::Device) -> u8 {
    match device.kind {
        crate::DeviceType::Cpu => Residency::HOST,
        crate::DeviceType::Gpu => Residency::GPU,
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        ALLOCATOR.free(self.ptr, self.capacity);
    }
}

/// Free blocks by capacity. The power-of-two classes up to 4 KiB (0-d and small arrays,
/// one per graph node in scalar code) sit in a fixed array: a B-tree search per
/// allocate/free pair was a visible share of the per-op overhead.
struct Cache {
    small: [Vec<NonNull<u8>>; SMALL_CLASSES],
    free: BTreeMap<usize, Vec<NonNull<u8>>>,
    bytes: usize,
}

/// Classes 64, 128, ..., 4096 bytes.
const SMALL_CLASSES: usize = 7;

fn small_index(capacity: usize) -> Option<usize> {
    (capacity <= 4096).then(|| capacity.trailing_zeros() as usize - ALIGN.trailing_zeros() as usize)
}

impl Cache {
    /// A cached block of `capacity`'s class, or for big sizes one up to 2x larger.
    fn pop(&mut self, capacity: usize) -> Option<(NonNull<u8>, usize)> {
        let found = match small_index(capacity) {
            Some(i) => self.small[i].pop().map(|p| (p, capacity)),
            // emptied lists stay in the map: removing and re-inserting a class on every
            // allocate/free pair allocated a tree node each time
            None => self
                .free
                .range_mut(capacity..capacity * 2)
                .find_map(|(&k, list)| list.pop().map(|p| (p, k))),
        };
        if let Some((_, k)) = found {
            self.bytes -= k;
        }
        found
    }

    fn push(&mut self, capacity: usize, ptr: NonNull<u8>) {
        self.bytes += capacity;
        match small_index(capacity) {
            Some(i) => self.small[i].push(ptr),
            None => self.free.entry(capacity).or_default().push(ptr),
        }
    }

    /// Every cached block with its capacity, largest classes first.
    fn drain(&mut self) -> Vec<(usize, NonNull<u8>)> {
        let mut out: Vec<(usize, NonNull<u8>)> = Vec::new();
        for (cap, list) in std::mem::take(&mut self.free).into_iter().rev() {
            out.extend(list.into_iter().map(|p| (cap, p)));
        }
        for (i, list) in self.small.iter_mut().enumerate().rev() {
            out.extend(std::mem::take(list).into_iter().map(|p| (ALIGN << i, p)));
        }
        self.bytes = 0;
        out
    }
}

unsafe impl Send for Cache {}

struct CachingAllocator {
    cache: Mutex<Cache>,
    active: AtomicUsize,
    peak: AtomicUsize,
    cache_limit: AtomicUsize,
    memory_limit: AtomicUsize,
}

static ALLOCATOR: CachingAllocator = CachingAllocator {
    cache: Mutex::new(Cache {
        small: [const { Vec::new() }; SMALL_CLASSES],
        free: BTreeMap::new(),
        bytes: 0,
    }),
    active: AtomicUsize::new(0),
    peak: AtomicUsize::new(0),
    cache_limit: AtomicUsize::new(usize::MAX),
    memory_limit: AtomicUsize::new(usize::MAX),
};

fn size_class(nbytes: usize) -> usize {
    if nbytes <= 4096 {
        nbytes.next_power_of_two().max(ALIGN)
    } else {
        nbytes.div_ceil(4096) * 4096
    }
}

impl CachingAllocator {
    fn allocate(&self, nbytes: usize) -> crate::Result<Buffer> {
        if nbytes == 0 {
            return Ok(Buffer {
                ptr: NonNull::new(ALIGN as *mut u8).unwrap(),
                nbytes: 0,
                capacity: 0,
                residency: AtomicU8::new(Residency::HOST),
                device: Mutex::new(None),
            });
        }
        let capacity = size_class(nbytes);
        let reused = self.cache.lock().pop(capacity);
        let (ptr, capacity) = match reused {
            Some(found) => found,
            None => {
                let limit = self.memory_limit.load(Ordering::Relaxed);
                if self.active.load(Ordering::Relaxed) + capacity > limit {
                    self.clear_cache();
                }
                let p = system_alloc(capacity).ok_or_else(|| {
                    crate::runtime_err!("[malloc] Unable to allocate {nbytes} bytes.")
                })?;
                (p, capacity)
            }
        };
        let now = self.active.fetch_add(capacity, Ordering::Relaxed) + capacity;
        self.peak.fetch_max(now, Ordering::Relaxed);
        Ok(Buffer {
            ptr,
            nbytes,
            capacity,
            residency: AtomicU8::new(Residency::HOST),
            device: Mutex::new(None),
        })
    }

    fn free(&self, ptr: NonNull<u8>, capacity: usize) {
        if capacity == 0 {
            return;
        }
        self.active.fetch_sub(capacity, Ordering::Relaxed);
        let limit = self.cache_limit.load(Ordering::Relaxed);
        let mut cache = self.cache.lock();
        if cache.bytes + capacity <= limit {
            cache.push(capacity, ptr);
        } else {
            drop(cache);
            unsafe { system_free(ptr, capacity) };
        }
    }

    fn clear_cache(&self) {
        let blocks = self.cache.lock().drain();
        for (cap, p) in blocks {
            unsafe { system_free(p, cap) };
        }
    }

    /// Frees cached blocks, largest first, until the cache holds at most `limit` bytes.
    fn trim_cache_to(&self, limit: usize) {
        let mut cache = self.cache.lock();
        if cache.bytes <= limit {
            return;
        }
        let blocks = cache.drain();
        let mut freed = Vec::new();
        let mut bytes: usize = blocks.iter().map(|(cap, _)| cap).sum();
        for (cap, p) in blocks {
            if bytes > limit {
                bytes -= cap;
                freed.push((cap, p));
            } else {
                cache.push(cap, p);
            }
        }
        drop(cache);
        for (cap, p) in freed {
            unsafe { system_free(p, cap) };
        }
    }
}

/// Bytes held by live arrays.
pub fn get_active_memory() -> usize {
    ALLOCATOR.active.load(Ordering::Relaxed)
}
/// The largest `get_active_memory()` seen since start or the last `reset_peak_memory()`.
pub fn get_peak_memory() -> usize {
    ALLOCATOR.peak.load(Ordering::Relaxed)
}
pub fn reset_peak_memory() {
    ALLOCATOR
        .peak
        .store(ALLOCATOR.active.load(Ordering::Relaxed), Ordering::Relaxed);
}
/// Bytes kept in the cache for reuse.
pub fn get_cache_memory() -> usize {
    ALLOCATOR.cache.lock().bytes
}
/// Sets the cache limit and returns the previous one.
pub fn set_cache_limit(limit: usize) -> usize {
    let old = ALLOCATOR.cache_limit.swap(limit, Ordering::Relaxed);
    ALLOCATOR.trim_cache_to(limit);
    old
}
/// Sets the memory limit (a guideline: past it the cache is released first) and returns the previous one.
pub fn set_memory_limit(limit: usize) -> usize {
    ALLOCATOR.memory_limit.swap(limit, Ordering::Relaxed)
}
pub fn get_memory_limit() -> usize {
    ALLOCATOR.memory_limit.load(Ordering::Relaxed)
}
pub fn get_cache_limit() -> usize {
    ALLOCATOR.cache_limit.load(Ordering::Relaxed)
}
pub fn clear_cache() {
    ALLOCATOR.clear_cache();
}

/// MLX's `get_array_buffer_size`: the bytes of the distinct buffers behind `arrays`
/// (a view and its base count once, and a view counts its whole buffer). Arrays must
/// be evaluated. rmx reports each buffer's requested size, which is what MLX's CPU
/// allocator reports for a freshly allocated buffer.
pub fn get_array_buffer_size(arrays: &[crate::Array]) -> crate::Result<usize> {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    for a in arrays {
        let d = a.try_data().ok_or_else(|| {
            crate::value_err!(
                "[get_array_buffer_size] Arrays must be evaluated before querying buffer size."
            )
        })?;
        if seen.insert(std::sync::Arc::as_ptr(&d.buffer) as usize) {
            total += d.buffer.nbytes();
        }
    }
    Ok(total)
}

/// MLX's `set_wired_limit`: wired (kept-resident) memory exists only on Apple silicon;
/// on other machines MLX 0.32.4 accepts the limit, ignores it and returns 0 as the
/// previous limit, and so does rmx.
pub fn set_wired_limit(_limit: usize) -> usize {
    0
}
