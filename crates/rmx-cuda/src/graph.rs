//! Capturing an evaluation as a CUDA graph and replaying it: one launch instead of one per
//! kernel (a decode step of a 1B model is ~300 kernels, ~3.4 µs of host time each).
//!
//! `capture(f)` runs `f` (which evaluates rmx arrays) with the stream in capture mode: the
//! kernels are recorded, not run, and every device allocation comes from an `Arena` that
//! the graph owns, so each intermediate keeps its address across replays. What `f`
//! evaluates is therefore *not* computed by the capture; each `CapturedGraph::launch`
//! computes it, reading the inputs' device memory as it is at that moment. Callers change
//! inputs between replays with `write_device` and read outputs with `read_device` (rmx's
//! own residency bits know nothing of replays).
//!
//! Inside a capture nothing may touch the host: a host read, an upload, a new constant or
//! an op without a GPU kernel fails the capture with an error naming it. Run the step once
//! uncaptured first, so kernels are compiled and constants uploaded. Work queued from other
//! threads during a capture would be captured too: capture with nothing else running.

use crate::device::{driver_err, the_gpu, Gpu};
use crate::memory::{device_ptr_mut, Arena};
use cudarc::driver::{result, sys};
use parking_lot::Mutex;
use rmx_core::allocator::Residency;
use rmx_core::{ArrayData, Result};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

static CAPTURING: AtomicBool = AtomicBool::new(false);
/// Captured graphs alive: device memory they may read must not be freed meanwhile.
static LIVE_GRAPHS: AtomicUsize = AtomicUsize::new(0);

/// Whether a captured graph exists (see `memory::constant_ptr`).
pub(crate) fn graphs_alive() -> bool {
    LIVE_GRAPHS.load(Ordering::Acquire) > 0
}
static ARENA: Mutex<Option<Arc<Arena>>> = Mutex::new(None);

/// The arena of the capture in progress, if any.
pub(crate) fn capturing_arena() -> Option<Arc<Arena>> {
    if !CAPTURING.load(Ordering::Acquire) {
        return None;
    }
    ARENA.lock().clone()
}

pub(crate) fn is_capturing() -> bool {
    CAPTURING.load(Ordering::Acquire)
}

/// An error when a graph is being captured: `what` cannot be recorded in one.
pub(crate) fn refuse_while_capturing(what: &str) -> Result<()> {
    if is_capturing() {
        return Err(rmx_core::runtime_err!(
            "[cuda] Cannot {what} while capturing a CUDA graph: a captured step must run \
             entirely on the device (run it once uncaptured first, so constants are uploaded)."
        ));
    }
    Ok(())
}

/// A captured evaluation, replayed by `launch`.
pub struct CapturedGraph {
    exec: sys::CUgraphExec,
    /// Dropped after `exec` (fields drop after `Drop::drop`).
    graph: OwnedGraph,
    arena: Arc<Arena>,
}

/// A graph, destroyed when dropped.
struct OwnedGraph(sys::CUgraph);

impl Drop for OwnedGraph {
    fn drop(&mut self) {
        if !self.0.is_null() {
            unsafe {
                let _ = result::graph::destroy(self.0);
            }
        }
    }
}

// The graph is only launched (and dropped) by its owner; the driver's graph objects may
// be used from any thread as long as calls are not concurrent, which `&mut`/ownership gives.
unsafe impl Send for CapturedGraph {}

impl Drop for CapturedGraph {
    fn drop(&mut self) {
        LIVE_GRAPHS.fetch_sub(1, Ordering::AcqRel);
        unsafe {
            let _ = result::graph::exec_destroy(self.exec);
        }
    }
}

/// One kernel of a captured graph, timed alone (`CapturedGraph::kernel_times`).
#[derive(Clone, Debug)]
pub struct KernelTime {
    pub name: String,
    pub grid: (u32, u32, u32),
    pub block: (u32, u32, u32),
    pub micros: f64,
}

impl CapturedGraph {
    /// Queues one replay on rmx's stream (returns at once).
    pub fn launch(&mut self) -> Result<()> {
        let gpu = the_gpu()?;
        gpu.bind()?;
        unsafe { result::graph::launch(self.exec, gpu.stream.cu_stream()) }
            .map_err(|e| driver_err("launching a captured graph", e))
    }

    /// Device bytes the graph's intermediates and outputs occupy.
    pub fn arena_bytes(&self) -> usize {
        self.arena.nbytes()
    }

    fn nodes(&self) -> Result<Vec<sys::CUgraphNode>> {
        let mut n = 0usize;
        unsafe { sys::cuGraphGetNodes(self.graph.0, std::ptr::null_mut(), &mut n) }
            .result()
            .map_err(|e| driver_err("listing graph nodes", e))?;
        let mut nodes = vec![std::ptr::null_mut(); n];
        unsafe { sys::cuGraphGetNodes(self.graph.0, nodes.as_mut_ptr(), &mut n) }
            .result()
            .map_err(|e| driver_err("listing graph nodes", e))?;
        nodes.truncate(n);
        Ok(nodes)
    }

    /// The graph's dependency edges: how many in all, and how many are programmatic (the
    /// later kernel may launch before the earlier one completes; launch.rs).
    pub fn edge_counts(&self) -> Result<(usize, usize)> {
        let err = |e| driver_err("listing graph edges", e);
        let mut n = 0usize;
        let null = std::ptr::null_mut::<sys::CUgraphNode>();
        let no_data = std::ptr::null_mut::<sys::CUgraphEdgeData>();
        unsafe { sys::cuGraphGetEdges_v2(self.graph.0, null, null, no_data, &mut n) }
            .result()
            .map_err(err)?;
        let (mut from, mut to) = (vec![std::ptr::null_mut(); n], vec![std::ptr::null_mut(); n]);
        let mut data: Vec<sys::CUgraphEdgeData> = vec![unsafe { std::mem::zeroed() }; n];
        unsafe {
            sys::cuGraphGetEdges_v2(
                self.graph.0,
                from.as_mut_ptr(),
                to.as_mut_ptr(),
                data.as_mut_ptr(),
                &mut n,
            )
        }
        .result()
        .map_err(err)?;
        let programmatic = data[..n]
            .iter()
            .filter(|d| {
                d.type_ == sys::CUgraphDependencyType::CU_GRAPH_DEPENDENCY_TYPE_PROGRAMMATIC as u8
            })
            .count();
        Ok((n, programmatic))
    }

    /// Each kernel of the graph launched `reps` times on its own between two events, in
    /// capture order: where a replay's device time goes. A profiling tool: kernels that
    /// update memory in place run `reps` times, so the arrays the graph writes hold garbage
    /// afterwards.
    pub fn kernel_times(&mut self, reps: usize) -> Result<Vec<KernelTime>> {
        let gpu = the_gpu()?;
        gpu.bind()?;
        let stream = gpu.stream.cu_stream();
        let ev = |e| driver_err("timing kernels", e);
        let (start, end) = (
            result::event::create(sys::CUevent_flags::CU_EVENT_DEFAULT).map_err(ev)?,
            result::event::create(sys::CUevent_flags::CU_EVENT_DEFAULT).map_err(ev)?,
        );
        let mut out = Vec::new();
        for node in self.nodes()? {
            let mut kind = sys::CUgraphNodeType::CU_GRAPH_NODE_TYPE_EMPTY;
            unsafe { sys::cuGraphNodeGetType(node, &mut kind) }
                .result()
                .map_err(ev)?;
            if kind != sys::CUgraphNodeType::CU_GRAPH_NODE_TYPE_KERNEL {
                out.push(KernelTime {
                    name: format!("({kind:?})"),
                    grid: (0, 0, 0),
                    block: (0, 0, 0),
                    micros: 0.0,
                });
                continue;
            }
            let mut p: sys::CUDA_KERNEL_NODE_PARAMS = unsafe { std::mem::zeroed() };
            unsafe { sys::cuGraphKernelNodeGetParams_v2(node, &mut p) }
                .result()
                .map_err(ev)?;
            let mut name = "(library kernel)".to_string();
            if !p.func.is_null() {
                let mut c: *const std::ffi::c_char = std::ptr::null();
                if unsafe { sys::cuFuncGetName(&mut c, p.func) }
                    .result()
                    .is_ok()
                    && !c.is_null()
                {
                    name = unsafe { std::ffi::CStr::from_ptr(c) }
                        .to_string_lossy()
                        .into_owned();
                }
            }
            let mut micros = 0.0;
            if !p.func.is_null() {
                unsafe {
                    result::event::record(start, stream).map_err(ev)?;
                    for _ in 0..reps {
                        sys::cuLaunchKernel(
                            p.func,
                            p.gridDimX,
                            p.gridDimY,
                            p.gridDimZ,
                            p.blockDimX,
                            p.blockDimY,
                            p.blockDimZ,
                            p.sharedMemBytes,
                            stream,
                            p.kernelParams,
                            p.extra,
                        )
                        .result()
                        .map_err(ev)?;
                    }
                    result::event::record(end, stream).map_err(ev)?;
                    sys::cuEventSynchronize(end).result().map_err(ev)?;
                    micros = result::event::elapsed(start, end).map_err(ev)? as f64 * 1e3
                        / reps.max(1) as f64;
                }
            }
            out.push(KernelTime {
                name,
                grid: (p.gridDimX, p.gridDimY, p.gridDimZ),
                block: (p.blockDimX, p.blockDimY, p.blockDimZ),
                micros,
            });
        }
        unsafe {
            let _ = result::event::destroy(start);
            let _ = result::event::destroy(end);
        }
        Ok(out)
    }
}

/// Records the kernels `f` queues on the GPU as a graph (see the module docs); returns the
/// graph and `f`'s value. Waits for queued work first. On any error the capture is
/// abandoned: the arrays `f` evaluated hold no computed values then.
pub fn capture<T>(f: impl FnOnce() -> Result<T>) -> Result<(CapturedGraph, T)> {
    let gpu = the_gpu()?;
    gpu.bind()?;
    gpu.synchronize()?;
    let arena = Arc::new(Arena::new(gpu));
    *ARENA.lock() = Some(arena.clone());
    // Relaxed: allocating arena blocks (cuMemAlloc) is allowed meanwhile.
    let stream = gpu.stream.cu_stream();
    let mode = sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED;
    let begun = unsafe { result::stream::begin_capture(stream, mode) }
        .map_err(|e| driver_err("beginning a graph capture", e));
    CAPTURING.store(begun.is_ok(), Ordering::Release);
    let value = begun.and_then(|()| f());
    CAPTURING.store(false, Ordering::Release);
    *ARENA.lock() = None;
    let graph = unsafe { result::stream::end_capture(stream) }
        .map(OwnedGraph)
        .map_err(|e| driver_err("capturing a graph", e));
    let value = value?;
    let graph = graph?;
    if graph.0.is_null() {
        return Err(rmx_core::runtime_err!(
            "[cuda] The captured graph is empty."
        ));
    }
    // (the flag is moot: allocations come from the arena, not graph memory nodes)
    let flags = sys::CUgraphInstantiate_flags::CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH;
    let exec = unsafe { result::graph::instantiate(graph.0, flags) }
        .map_err(|e| driver_err("instantiating a captured graph", e))?;
    LIVE_GRAPHS.fetch_add(1, Ordering::AcqRel);
    Ok((CapturedGraph { graph, exec, arena }, value))
}

/// Writes `bytes` over `d`'s elements on the device (queued on rmx's stream); the host copy
/// is stale afterwards. For the inputs of a captured graph between replays.
pub fn write_device(d: &ArrayData, bytes: &[u8]) -> Result<()> {
    let (gpu, ptr) = host_transfer(d, bytes.len(), "write device memory from the host")?;
    unsafe { result::memcpy_htod_async(ptr, bytes, gpu.stream.cu_stream()) }
        .map_err(|e| driver_err("copy to device", e))?;
    d.buffer.set_residency(Residency::GPU);
    Ok(())
}

/// Reads `d`'s elements from the device into `out`, waiting for queued work (a replay's
/// outputs: the buffer's residency does not know the replay wrote them).
pub fn read_device(d: &ArrayData, out: &mut [u8]) -> Result<()> {
    let (gpu, ptr) = host_transfer(d, out.len(), "read device data on the host")?;
    unsafe { result::memcpy_dtoh_async(out, ptr, gpu.stream.cu_stream()) }
        .map_err(|e| driver_err("copy to host", e))?;
    gpu.synchronize()
}

/// The device and `d`'s device address for a host transfer of `nbytes` (`what`, refused
/// while capturing).
fn host_transfer(d: &ArrayData, nbytes: usize, what: &str) -> Result<(&'static Gpu, u64)> {
    check_extent(d, nbytes)?;
    refuse_while_capturing(what)?;
    let gpu = the_gpu()?;
    gpu.bind()?;
    Ok((gpu, device_ptr_mut(gpu, d)?))
}

/// `d` must be dense and hold exactly `nbytes`.
fn check_extent(d: &ArrayData, nbytes: usize) -> Result<()> {
    if !d.is_row_contiguous() || d.numel() * d.dtype.size() != nbytes {
        return Err(rmx_core::value_err!(
            "[cuda] Expected {nbytes} bytes for a dense array of shape {:?} and type {:?}.",
            d.shape,
            d.dtype
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmx_core::stream::with_device;
    use rmx_core::{ops, Array, Device};

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn a_captured_evaluation_replays_with_new_inputs() -> Result<()> {
        if !crate::init() && !rmx_core::device::is_available(Device::GPU) {
            eprintln!("no CUDA device: skipping");
            return Ok(());
        }
        with_device(Device::GPU, || -> Result<()> {
            let x = Array::from_slice(&[1f32, 2., 3., 4.], &[4])?;
            write_device(&x.data_in_place()?, &f32_bytes(&[1., 2., 3., 4.]))?;
            let build = || -> Result<Array> {
                let e = ops::exp(&x)?;
                let s = ops::sum(&e, None, false)?;
                ops::add(&ops::multiply(&e, &Array::scalar(2f32))?, &s)
            };
            // once uncaptured: kernels compiled, constants uploaded
            rmx_core::eval(&[build()?])?;
            let y = build()?;
            let (mut graph, ()) = capture(|| rmx_core::eval(std::slice::from_ref(&y)))?;
            assert!(graph.arena_bytes() > 0);
            for vals in [[0f32, 1., -1., 0.5], [3., -2., 0.25, 10.]] {
                write_device(&x.data_in_place()?, &f32_bytes(&vals))?;
                graph.launch()?;
                let mut out = [0u8; 16];
                read_device(&y.data_in_place()?, &mut out)?;
                let total: f32 = vals.iter().map(|v| v.exp()).sum();
                for (i, v) in vals.iter().enumerate() {
                    let got = f32::from_le_bytes(out[4 * i..4 * i + 4].try_into().unwrap());
                    let want = v.exp() * 2.0 + total;
                    assert!((got - want).abs() <= 1e-5 * want.abs(), "{got} vs {want}");
                }
            }
            // a host read cannot be captured; the device works normally after the refusal
            let z = ops::exp(&x)?;
            let refused = capture(|| z.to_vec::<f32>().map(|_| ()));
            let err = refused.err().expect("a host read inside a capture fails");
            assert!(err.to_string().contains("capturing a CUDA graph"), "{err}");
            let w = ops::exp(&Array::from_slice(&[0f32, 1.], &[2])?)?.to_vec::<f32>()?;
            assert_eq!(w[0], 1.0);
            assert!((w[1] - std::f32::consts::E).abs() < 1e-6);
            Ok(())
        })?
    }
}
