//! Greedy decoding with a step of fixed shapes, replayed as a CUDA graph on the GPU.
//!
//! The step reads its token and position from one device-held int32 pair, writes the new
//! key and value at that position (a scatter into storage of fixed capacity, in place),
//! and attends over a window of the first `window` stored tokens under a mask (positions
//! up to the current one). Nothing in it depends on the position on the host, so on the
//! GPU it is captured once per window (`rmx_cuda::graph`) and every later token is one
//! graph launch plus a 4-byte read, instead of ~600 graph nodes built, scheduled and
//! launched one by one. The window grows in steps of `WINDOW_STEP` tokens; each new window
//! runs one step uncaptured (compiling kernels and uploading constants), then captures.
//!
//! Without CUDA (or with `RMX_LM_CUDA_GRAPH=0`) the same step runs uncaptured every time;
//! the tests use that on the CPU to check the fixed-shape step against the usual one.

use crate::cache::{FixedStep, KvCache};
use crate::error::Result;
use crate::generate::forward_argmax;
use crate::models::LanguageModel;
use rmx_core::{ops, Array, Device, Dtype};

/// Tokens the attention window grows by.
const WINDOW_STEP: usize = 256;

/// Whether greedy decoding uses the fixed-shape step: on a GPU by default;
/// `RMX_LM_STATIC_DECODE=1` or `0` forces the choice (the tests run it on the CPU).
pub fn enabled() -> bool {
    match std::env::var("RMX_LM_STATIC_DECODE").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => rmx_core::device::default_device() != Device::CPU,
    }
}

/// Whether steps are captured and replayed as CUDA graphs (`RMX_LM_CUDA_GRAPH=0` keeps
/// them uncaptured, to compare).
#[cfg(feature = "cuda")]
fn capture_wanted() -> bool {
    rmx_core::device::default_device() != Device::CPU
        && std::env::var("RMX_LM_CUDA_GRAPH").as_deref() != Ok("0")
}

pub struct StaticDecoder {
    /// The window of the current step and how many steps ran with it uncaptured.
    window: usize,
    uncaptured: usize,
    #[cfg(feature = "cuda")]
    capture: bool,
    #[cfg(feature = "cuda")]
    replay: Option<Replay>,
}

#[cfg(not(feature = "cuda"))]
impl StaticDecoder {
    /// Without CUDA nothing is captured: nothing to report.
    pub fn profile_report(&mut self) -> Result<String> {
        Ok(String::new())
    }
}

/// A captured step: its int32 [token, position] input and its [1] token output, both at
/// the device addresses the graph reads and writes.
#[cfg(feature = "cuda")]
struct Replay {
    graph: rmx_cuda::graph::CapturedGraph,
    inputs: Array,
    next: Array,
}

impl StaticDecoder {
    /// A decoder for `cache` (filled by a prefill) with room for `tokens` in all; `None`
    /// when the model or cache cannot decode with fixed shapes.
    pub fn new(
        model: &dyn LanguageModel,
        cache: &mut [KvCache],
        tokens: usize,
    ) -> Result<Option<StaticDecoder>> {
        let standard = cache
            .iter()
            .all(|c| c.kind() == crate::cache::CacheKind::Standard && c.capacity() > 0);
        if !model.static_decode() || cache.is_empty() || !standard {
            return Ok(None);
        }
        for c in cache.iter_mut() {
            c.reserve(tokens)?;
        }
        Ok(Some(StaticDecoder {
            window: 0,
            uncaptured: 0,
            #[cfg(feature = "cuda")]
            capture: capture_wanted(),
            #[cfg(feature = "cuda")]
            replay: None,
        }))
    }

    /// Runs `token` through the model at the cache's next position and returns the greedy
    /// next token; the cache counts the token.
    pub fn step(
        &mut self,
        model: &dyn LanguageModel,
        cache: &mut [KvCache],
        token: u32,
    ) -> Result<u32> {
        let pos = cache[0].offset;
        let capacity = cache.iter().map(|c| c.capacity()).min().unwrap_or(0);
        if pos >= capacity {
            return Err(crate::invalid!(
                "the cache has room for {capacity} tokens; position {pos} is past it"
            ));
        }
        let window = (pos + 1).div_ceil(WINDOW_STEP) * WINDOW_STEP;
        let window = window.min(capacity);
        if window != self.window {
            self.window = window;
            self.uncaptured = 0;
            #[cfg(feature = "cuda")]
            {
                self.replay = None;
            }
        }
        let pair = [token as i32, pos as i32];
        #[cfg(feature = "cuda")]
        if self.capture && self.uncaptured > 0 {
            if self.replay.is_none() {
                self.replay = Some(self.capture(model, cache, &pair)?);
            }
            let next = self.replay.as_mut().expect("captured above").run(&pair)?;
            cache.iter_mut().for_each(|c| c.advance(1));
            return Ok(next);
        }
        let next = self.uncaptured_step(model, cache, &pair)?;
        self.uncaptured += 1;
        Ok(next)
    }

    /// The step's graph, evaluated at once.
    fn uncaptured_step(
        &self,
        model: &dyn LanguageModel,
        cache: &mut [KvCache],
        pair: &[i32; 2],
    ) -> Result<u32> {
        let inputs = Array::from_slice(pair, &[2])?;
        let next = build(model, cache, &inputs, self.window)?;
        crate::generate::eval_with_cache(&next, cache)?;
        cache.iter_mut().for_each(|c| c.advance(1));
        Ok(next.to_vec::<u32>()?[0])
    }

    /// Captures the step as a CUDA graph. A failed capture leaves the cache unusable (its
    /// storage was handed to the step), so the cache is cleared and the error returned.
    #[cfg(feature = "cuda")]
    fn capture(
        &self,
        model: &dyn LanguageModel,
        cache: &mut [KvCache],
        pair: &[i32; 2],
    ) -> Result<Replay> {
        let inputs = Array::from_slice(pair, &[2])?;
        // a device copy now, at the address the graph will read
        rmx_cuda::graph::write_device(&inputs.data_in_place()?, &bytes(pair))?;
        let before = storage(cache)?;
        let next = build(model, cache, &inputs, self.window)?;
        let state = crate::generate::with_cache_state(&next, cache);
        let captured = rmx_cuda::graph::capture(|| rmx_core::eval(&state));
        drop(state);
        // The graph must write the cache's own storage: a scatter that copied instead
        // (its input not donated) would leave every replay reading the storage as it was.
        let in_place = captured.is_ok() && storage(cache)? == before;
        match captured {
            Ok((graph, ())) if in_place => Ok(Replay {
                graph,
                inputs,
                next,
            }),
            Ok(_) => {
                for c in cache.iter_mut() {
                    *c = KvCache::new(c.kind());
                }
                Err(rmx_core::runtime_err!(
                    "The captured decode step did not update the KV cache in place; the cache \
                     was cleared. RMX_LM_CUDA_GRAPH=0 decodes without graphs."
                )
                .into())
            }
            Err(e) => {
                for c in cache.iter_mut() {
                    *c = KvCache::new(c.kind());
                }
                Err(rmx_core::runtime_err!(
                    "Capturing the decode step as a CUDA graph failed ({e}); the KV cache was \
                     cleared. RMX_LM_CUDA_GRAPH=0 decodes without graphs."
                )
                .into())
            }
        }
    }
}

#[cfg(feature = "cuda")]
impl StaticDecoder {
    /// What `benchmark --profile` prints about the captured step: the device time of a
    /// replay and a table of its kernels (empty before a capture). Leaves the cache's
    /// contents garbage (see `kernel_table`): for profiling only.
    pub fn profile_report(&mut self) -> Result<String> {
        let mut out = String::new();
        if let Some(ms) = self.replay_ms(100)? {
            out += &format!("100 back-to-back replays of the captured step: {ms:.3} ms each\n");
        }
        if let Some(r) = self.replay.as_ref() {
            let (edges, programmatic) = r.graph.edge_counts()?;
            out += &format!("{edges} dependency edges, {programmatic} programmatic\n");
        }
        if let Some(t) = self.kernel_table(20)? {
            out += &t;
        }
        Ok(out)
    }

    /// Milliseconds per replay of the captured step, `n` launched back to back with the
    /// last step's inputs (rewriting the same cache slot): the device's time per token.
    fn replay_ms(&mut self, n: usize) -> Result<Option<f64>> {
        let Some(r) = self.replay.as_mut() else {
            return Ok(None);
        };
        let mut out = [0u8; 4];
        rmx_cuda::graph::read_device(&r.next.data_in_place()?, &mut out)?;
        let t0 = std::time::Instant::now();
        for _ in 0..n {
            r.graph.launch()?;
        }
        rmx_cuda::graph::read_device(&r.next.data_in_place()?, &mut out)?;
        Ok(Some(t0.elapsed().as_secs_f64() * 1e3 / n.max(1) as f64))
    }

    /// A table of the captured step's kernels, each timed alone (`reps` launches), grouped
    /// by name, most time first. Leaves the cache's contents garbage (see
    /// `CapturedGraph::kernel_times`): for profiling only.
    fn kernel_table(&mut self, reps: usize) -> Result<Option<String>> {
        let Some(r) = self.replay.as_mut() else {
            return Ok(None);
        };
        let times = r.graph.kernel_times(reps)?;
        // by kernel and launch shape (the same kernel on different sizes apart)
        let mut by: std::collections::BTreeMap<(&str, String), (f64, usize)> = Default::default();
        for k in &times {
            let shape = format!("{:?}x{:?}", k.grid, k.block);
            let e = by.entry((k.name.as_str(), shape)).or_default();
            e.0 += k.micros;
            e.1 += 1;
        }
        let mut rows: Vec<_> = by.into_iter().collect();
        rows.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
        let total: f64 = times.iter().map(|k| k.micros).sum();
        let mut out = format!(
            "{} graph nodes; their kernels timed alone add up to {:.1} us\n| kernel | us | count | us each | grid x block |\n|---|---|---|---|---|\n",
            times.len(),
            total
        );
        for ((name, shape), (us, n)) in rows {
            out += &format!(
                "| {name} | {us:.1} | {n} | {:.2} | {shape} |\n",
                us / n as f64
            );
        }
        Ok(Some(out))
    }
}

#[cfg(feature = "cuda")]
impl Replay {
    /// One replay for `pair`; the token it picks.
    fn run(&mut self, pair: &[i32; 2]) -> Result<u32> {
        rmx_cuda::graph::write_device(&self.inputs.data_in_place()?, &bytes(pair))?;
        self.graph.launch()?;
        let mut out = [0u8; 4];
        rmx_cuda::graph::read_device(&self.next.data_in_place()?, &mut out)?;
        Ok(u32::from_le_bytes(out))
    }
}

/// The buffers holding the caches' keys and values (by address).
#[cfg(feature = "cuda")]
fn storage(cache: &[KvCache]) -> Result<Vec<usize>> {
    let mut v = Vec::new();
    for c in cache {
        for a in c.state() {
            v.push(std::sync::Arc::as_ptr(&a.data_in_place()?.buffer) as usize);
        }
    }
    Ok(v)
}

#[cfg(feature = "cuda")]
fn bytes(pair: &[i32; 2]) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&pair[0].to_le_bytes());
    b[4..].copy_from_slice(&pair[1].to_le_bytes());
    b
}

/// The lazy step: the greedy token after `inputs[0]` at position `inputs[1]`, the caches
/// set to write there and attend over `window` tokens.
fn build(
    model: &dyn LanguageModel,
    cache: &mut [KvCache],
    inputs: &Array,
    window: usize,
) -> Result<Array> {
    let token = ops::reshape(&ops::slice(inputs, &[0], &[1], None)?, &[1, 1])?;
    let pos = ops::reshape(&ops::slice(inputs, &[1], &[2], None)?, &[])?;
    let keys = ops::arange(0.0, window as f64, 1.0, Dtype::Int32)?;
    let mask = ops::reshape(&ops::less_equal(&keys, &pos)?, &[1, 1, 1, window as i64])?;
    let args = model.args();
    let one_token = [1, args.num_kv_heads as i64, 1, args.head_dim as i64];
    let index = ops::contiguous(&ops::broadcast_to_i64(
        &ops::reshape(&pos, &[1, 1, 1, 1])?,
        &one_token,
    )?)?;
    let step = FixedStep {
        pos,
        mask,
        window,
        index: Some(index),
    };
    let mut built = Ok(());
    for c in cache.iter_mut() {
        built = built.and(c.set_fixed(Some(step.clone())));
    }
    let next = built.and_then(|()| forward_argmax(model, &token, cache));
    // the graph is built: the caches go back to counting on the host
    for c in cache.iter_mut() {
        c.set_fixed(None)?;
    }
    next
}
