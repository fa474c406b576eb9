//! The one CUDA device rmx drives: its context, the stream every kernel runs on, the
//! cuBLAS handle and the cache of NVRTC-compiled kernels.

use crate::launch::{pdl_enabled, with_grid_dependency, Function, Launch, Module};
use cudarc::cublas::CudaBlas;
use cudarc::driver::{CudaContext, CudaStream};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions};
use parking_lot::Mutex;
use rmx_core::Result;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

pub struct Gpu {
    pub ctx: Arc<CudaContext>,
    /// All kernels, copies and frees are ordered on this one stream, so a buffer freed
    /// (stream-ordered) or read back on the host never races a kernel still using it.
    pub stream: Arc<CudaStream>,
    pub blas: Mutex<CudaBlas>,
    kernels: Mutex<HashMap<String, Function>>,
    modules: Mutex<HashMap<String, Arc<Module>>>,
    arch: &'static str,
    /// Kernels are launched with programmatic dependent launch (launch.rs).
    pdl: bool,
    pub name: String,
    pub total_memory: usize,
    pub active: AtomicUsize,
    pub peak: AtomicUsize,
    /// Where kernels report an out-of-range index (see `IndexErrors`).
    pub index_errors: IndexErrors,
    /// `BLOCK_COUNTERS` zeroed u32s on the device: a kernel whose blocks each add one to
    /// their row's counter lets the last block finish the row, then sets it back to zero
    /// (the split-key attention merge). One stream: no two such kernels run at once.
    pub block_counters: u64,
}

/// Rows the block counters cover.
pub const BLOCK_COUNTERS: usize = 1024;

/// A record in pinned host memory that kernels write through its device address when an
/// index is out of range: `[set, op, index, size, axis]` (i64 each; `set` claimed with an
/// atomic CAS, so the first error wins). `Gpu::synchronize` reads it once the stream is
/// idle and raises the `IndexError`, then clears it: MLX leaves such indices undefined on
/// the GPU; here they surface at the next synchronization (eval, item, a host read).
pub struct IndexErrors {
    host: *mut i64,
    pub device: u64,
}

// The record is only read after a stream synchronization and written by kernels.
unsafe impl Send for IndexErrors {}
unsafe impl Sync for IndexErrors {}

/// Names of the ops that report out-of-range indices, by the code kernels store.
pub const INDEX_OPS: [&str; 4] = ["take", "take_along_axis", "scatter", "index"];

impl IndexErrors {
    fn new() -> Result<IndexErrors> {
        use cudarc::driver::sys;
        const DEVICEMAP: u32 = 0x02; // CU_MEMHOSTALLOC_DEVICEMAP
        let host = unsafe { cudarc::driver::result::malloc_host(5 * 8, DEVICEMAP) }
            .map_err(|e| driver_err("cuMemHostAlloc", e))? as *mut i64;
        unsafe { std::ptr::write_bytes(host, 0, 5) };
        let mut device = 0u64;
        let r = unsafe { sys::cuMemHostGetDevicePointer_v2(&mut device, host as *mut _, 0) };
        if r != sys::CUresult::CUDA_SUCCESS {
            return Err(driver_err("cuMemHostGetDevicePointer", r));
        }
        Ok(IndexErrors { host, device })
    }

    /// The error recorded since the last check (clearing it); call with the stream idle.
    fn take(&self) -> Result<()> {
        let rec = unsafe { std::ptr::read_volatile(self.host as *const [i64; 5]) };
        if rec[0] == 0 {
            return Ok(());
        }
        unsafe { std::ptr::write_bytes(self.host, 0, 5) };
        let op = INDEX_OPS.get(rec[1] as usize).copied().unwrap_or("index");
        Err(rmx_core::index_err!(
            "[{op}] Index {} is out of bounds for axis {} with size {}.",
            rec[2],
            rec[4],
            rec[3]
        ))
    }
}

static GPU: OnceLock<Option<Gpu>> = OnceLock::new();

/// The device, opened on first use; `None` when no driver or device is present.
pub fn gpu() -> Option<&'static Gpu> {
    GPU.get_or_init(|| Gpu::open().ok()).as_ref()
}

/// Like `gpu()`, for code that only runs once a device was found.
pub fn the_gpu() -> Result<&'static Gpu> {
    gpu().ok_or_else(|| rmx_core::runtime_err!("[cuda] No CUDA device is available."))
}

pub fn driver_err(what: &str, e: impl std::fmt::Debug) -> rmx_core::Error {
    rmx_core::runtime_err!("[cuda] {what} failed: {e:?}")
}

impl Gpu {
    fn open() -> Result<Gpu> {
        // cudarc panics when it loads a library that is absent; a missing driver, NVRTC or
        // cuBLAS must mean "no GPU", never a crash, so look for them first.
        let present = unsafe {
            cudarc::driver::sys::is_culib_present()
                && cudarc::nvrtc::sys::is_culib_present()
                && cudarc::cublas::sys::is_culib_present()
        };
        if !present {
            return Err(rmx_core::runtime_err!(
                "[cuda] The CUDA driver, NVRTC or cuBLAS library was not found."
            ));
        }
        let ctx = CudaContext::new(0).map_err(|e| driver_err("cuInit", e))?;
        // One stream, no per-slice event tracking: ordering comes from the stream. Not the
        // legacy default stream, which cannot be captured as a graph (graph.rs).
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx
            .new_stream()
            .map_err(|e| driver_err("cuStreamCreate", e))?;
        // Keep freed blocks in the driver's pool instead of returning them to the OS at
        // every synchronization (the pool's default): this is the caching allocator.
        unsafe { keep_pool_cached(&ctx) };
        let blas = CudaBlas::new(stream.clone()).map_err(|e| driver_err("cublasCreate", e))?;
        let (major, minor) = ctx
            .compute_capability()
            .map_err(|e| driver_err("compute capability", e))?;
        let arch: &'static str = Box::leak(format!("sm_{major}{minor}").into_boxed_str());
        let name = ctx.name().unwrap_or_default();
        let total_memory = cudarc::driver::result::mem_get_info()
            .map(|(_, t)| t)
            .unwrap_or(0);
        Ok(Gpu {
            ctx,
            stream,
            blas: Mutex::new(blas),
            kernels: Mutex::new(HashMap::new()),
            modules: Mutex::new(HashMap::new()),
            arch,
            pdl: pdl_enabled(major),
            name,
            total_memory,
            active: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            index_errors: IndexErrors::new()?,
            block_counters: zeroed_device_words(BLOCK_COUNTERS)?,
        })
    }

    /// Makes the context current on the calling thread (scheduler workers vary).
    pub fn bind(&self) -> Result<()> {
        self.ctx
            .bind_to_thread()
            .map_err(|e| driver_err("bind context", e))
    }

    pub fn arch(&self) -> &'static str {
        self.arch
    }

    /// The kernel `name`, compiled from `source()` by NVRTC on first use and cached for
    /// the process. `name` must identify the source (op and dtypes are in it).
    pub fn kernel(&self, name: &str, source: impl FnOnce() -> String) -> Result<Function> {
        self.kernel_in(name, name, source)
    }

    /// Entry point `entry` of the module `module` (compiled from `source()` once, whichever
    /// of its entry points is asked for first).
    pub fn kernel_in(
        &self,
        module: &str,
        entry: &str,
        source: impl FnOnce() -> String,
    ) -> Result<Function> {
        if let Some(f) = self.kernels.lock().get(entry) {
            return Ok(f.clone());
        }
        let loaded = self.modules.lock().get(module).cloned();
        let module_handle = match loaded {
            Some(m) => m,
            None => {
                let m = self.compile(module, &source())?;
                self.modules.lock().insert(module.to_string(), m.clone());
                m
            }
        };
        let f = module_handle.function(entry)?;
        self.kernels.lock().insert(entry.to_string(), f.clone());
        Ok(f)
    }

    /// A launch of `f` on rmx's stream.
    pub fn launch<'a>(&self, f: &'a Function) -> Launch<'a> {
        Launch::new(f, self.stream.cu_stream(), self.pdl)
    }

    fn compile(&self, name: &str, src: &str) -> Result<Arc<Module>> {
        let opts = CompileOptions {
            arch: Some(self.arch),
            // No fused multiply-add contraction: `a * b + c` rounds twice, as the CPU
            // backend and the unfused ops do, so fused and dequantized results match bitwise.
            options: vec!["--std=c++17".into(), "--fmad=false".into()],
            ..Default::default()
        };
        let ptx = compile_ptx_with_opts(with_grid_dependency(src), opts).map_err(|e| {
            rmx_core::runtime_err!("[cuda] NVRTC failed to compile kernel {name}: {e:?}")
        })?;
        self.bind()?;
        Module::load(&ptx.to_src()).map_err(|e| driver_err(&format!("loading kernel {name}"), e))
    }

    pub fn note_alloc(&self, nbytes: usize) {
        let now = self.active.fetch_add(nbytes, Ordering::Relaxed) + nbytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }
    pub fn note_free(&self, nbytes: usize) {
        self.active.fetch_sub(nbytes, Ordering::Relaxed);
    }

    /// Waits for everything queued on the device, then raises any out-of-range index a
    /// kernel reported meanwhile. While a graph is captured nothing runs, so there is
    /// nothing to wait for (an evaluation that ends in a synchronization can be captured).
    pub fn synchronize(&self) -> Result<()> {
        if crate::graph::is_capturing() {
            return Ok(());
        }
        self.stream
            .synchronize()
            .map_err(|e| driver_err("synchronize", e))?;
        self.index_errors.take()
    }
}

/// `n` zeroed 32-bit words of device memory, kept for the process.
fn zeroed_device_words(n: usize) -> Result<u64> {
    unsafe {
        let p =
            cudarc::driver::result::malloc_sync(n * 4).map_err(|e| driver_err("cuMemAlloc", e))?;
        cudarc::driver::result::memset_d8_sync(p, 0, n * 4)
            .map_err(|e| driver_err("cuMemsetD8", e))?;
        Ok(p)
    }
}

/// Sets the default memory pool's release threshold to "never".
unsafe fn keep_pool_cached(ctx: &CudaContext) {
    use cudarc::driver::sys;
    let mut pool = std::mem::MaybeUninit::uninit();
    if sys::cuDeviceGetDefaultMemPool(pool.as_mut_ptr(), ctx.cu_device())
        == sys::CUresult::CUDA_SUCCESS
    {
        let mut threshold: u64 = u64::MAX;
        sys::cuMemPoolSetAttribute(
            pool.assume_init(),
            sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
            &mut threshold as *mut u64 as *mut std::ffi::c_void,
        );
    }
}
