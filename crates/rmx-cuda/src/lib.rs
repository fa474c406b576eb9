//! rmx's CUDA backend. `init()` looks for a device (loading the driver, NVRTC and cuBLAS
//! dynamically, so this crate builds and its tests skip on machines without CUDA) and
//! registers `CudaBackend` with rmx-core, which makes `Device::GPU` available and, as in
//! MLX, the default device.
//!
//! Kernel families with a CUDA kernel here run on the device; the others run on the host
//! through the CPU backend (`host_fallback`): their inputs are copied back, their outputs
//! are host arrays that the next device kernel uploads. Every op therefore works with
//! `stream=gpu`; docs/design/cuda.md lists which families are native.

mod cufft;
pub mod device;
mod driver_costs;
pub mod graph;
mod kernels;
pub mod launch;
pub mod layout;
pub mod memory;

use device::{the_gpu, Gpu};
use kernels::{
    arg_reduce, conv, elementwise, fast, fft, fp8, fused, gemv, indexing, linalg, matmul,
    norm_linear, qmm, quantize, random, reduce, rope_kv, rows, scan, searchsorted, softmax, sort,
};
use rmx_core::allocator::{Buffer, Residency};
use rmx_core::backend::cpu::CpuBackend;
use rmx_core::backend::{
    ArgReduceOp, AttnMask, Backend, BinaryOp, ConvParams, LinalgOp, LinearWeight, NormKind,
    QuantizeOp, ReduceOp, RopeSpec, ScanOp, ScatterMode, UnaryOp,
};
use rmx_core::{ArrayData, Device, Dtype, Result, Scalar};

pub struct CudaBackend;

static BACKEND: CudaBackend = CudaBackend;

/// Finds a CUDA device and registers the backend; false when there is none (or it was
/// registered already). Safe to call more than once.
pub fn init() -> bool {
    if std::env::var_os("RMX_DISABLE_CUDA").is_some() {
        return false;
    }
    device::gpu().is_some() && rmx_core::backend::register_gpu_backend(&BACKEND)
}

pub use driver_costs::driver_costs;

/// Whether a CUDA device was found (without registering anything).
pub fn is_available() -> bool {
    device::gpu().is_some()
}

/// Bytes of device memory held by rmx arrays now, and the most since start.
pub fn device_memory() -> (usize, usize) {
    device::gpu().map_or((0, 0), |g| {
        use std::sync::atomic::Ordering::Relaxed;
        (g.active.load(Relaxed), g.peak.load(Relaxed))
    })
}

/// Ops of the GPU stream run on the host so far (`device_info`'s `host_fallback_ops`):
/// tests read it to check that a family runs natively.
static HOST_FALLBACKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs a CPU kernel on host copies of `inputs` (the result is host-resident).
fn host_fallback<T>(inputs: &[&ArrayData], f: impl FnOnce(&CpuBackend) -> Result<T>) -> Result<T> {
    graph::refuse_while_capturing("run an op without a GPU kernel (on the host)")?;
    HOST_FALLBACKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    for x in inputs {
        x.buffer.make_resident(Device::CPU)?;
    }
    f(&CpuBackend)
}

/// A GPU kernel when one fits (`Some`), else the CPU kernel on host copies.
fn native_or_host(
    inputs: &[&ArrayData],
    native: impl FnOnce(&'static Gpu) -> Result<Option<ArrayData>>,
    host: impl FnOnce(&CpuBackend) -> Result<ArrayData>,
) -> Result<ArrayData> {
    let gpu = the_gpu()?;
    gpu.bind()?;
    match native(gpu)? {
        Some(out) => Ok(out),
        None => host_fallback(inputs, host),
    }
}

/// The bytes of `value` as one element of `dtype` (little-endian, zero-extended).
fn scalar_bits(value: Scalar, dtype: Dtype) -> Result<u64> {
    let one = CpuBackend.fill(value, dtype, &[1])?;
    let mut bits = [0u8; 8];
    bits[..dtype.size()].copy_from_slice(&one.buffer.as_bytes()[..dtype.size()]);
    Ok(u64::from_le_bytes(bits))
}

impl Backend for CudaBackend {
    fn name(&self) -> &'static str {
        "cuda"
    }
    /// Inputs are uploaded by the kernels that read them, so ops that run on the host
    /// here never upload.
    fn make_resident(&self, _buffer: &Buffer) -> Result<()> {
        Ok(())
    }
    fn synchronize(&self) -> Result<()> {
        match device::gpu() {
            Some(g) => {
                g.bind()?;
                g.synchronize()
            }
            None => Ok(()),
        }
    }
    fn device_info(&self) -> Vec<(&'static str, String)> {
        match device::gpu() {
            Some(g) => vec![
                ("architecture", g.arch().to_string()),
                ("device_name", g.name.clone()),
                ("memory_size", g.total_memory.to_string()),
                (
                    "host_fallback_ops",
                    HOST_FALLBACKS
                        .load(std::sync::atomic::Ordering::Relaxed)
                        .to_string(),
                ),
            ],
            None => Vec::new(),
        }
    }
    fn unary(&self, op: UnaryOp, x: &ArrayData, out_dtype: Dtype) -> Result<ArrayData> {
        native_or_host(
            &[x],
            |g| elementwise::unary(g, op, x, out_dtype),
            |c| c.unary(op, x, out_dtype),
        )
    }
    fn binary(
        &self,
        op: BinaryOp,
        a: &ArrayData,
        b: &ArrayData,
        out_dtype: Dtype,
    ) -> Result<ArrayData> {
        native_or_host(
            &[a, b],
            |g| elementwise::binary(g, op, a, b, out_dtype),
            |c| c.binary(op, a, b, out_dtype),
        )
    }
    fn select(&self, cond: &ArrayData, a: &ArrayData, b: &ArrayData) -> Result<ArrayData> {
        native_or_host(
            &[cond, a, b],
            |g| elementwise::select(g, cond, a, b),
            |c| c.select(cond, a, b),
        )
    }
    fn cast(&self, x: &ArrayData, dtype: Dtype) -> Result<ArrayData> {
        native_or_host(
            &[x],
            |g| elementwise::cast(g, x, dtype),
            |c| c.cast(x, dtype),
        )
    }
    fn copy(&self, x: &ArrayData) -> Result<ArrayData> {
        native_or_host(&[x], |g| elementwise::cast(g, x, x.dtype), |c| c.copy(x))
    }
    fn copy_into(&self, src: &ArrayData, dst: &ArrayData) -> Result<()> {
        let gpu = the_gpu()?;
        gpu.bind()?;
        if src.dtype == dst.dtype && elementwise::copy_into(gpu, src, dst)? {
            return Ok(());
        }
        // The destination is a view into a buffer the caller owns: write it on the host
        // (after fetching its current bytes) and drop the device copy's validity.
        dst.buffer.make_resident(Device::CPU)?;
        host_fallback(&[src], |c| c.copy_into(src, dst))?;
        dst.buffer.set_residency(Residency::HOST);
        Ok(())
    }
    fn fill(&self, value: Scalar, dtype: Dtype, shape: &[usize]) -> Result<ArrayData> {
        let gpu = the_gpu()?;
        gpu.bind()?;
        elementwise::fill_bits(gpu, scalar_bits(value, dtype)?, dtype, shape)
    }
    fn empty(&self, dtype: Dtype, shape: &[usize]) -> Result<ArrayData> {
        let gpu = the_gpu()?;
        gpu.bind()?;
        Ok(memory::alloc_output(gpu, dtype, shape)?.0)
    }
    fn fused(
        &self,
        program: &rmx_core::primitives::fused::Fused,
        inputs: &[ArrayData],
        out_dtype: Dtype,
    ) -> Result<Option<ArrayData>> {
        let gpu = the_gpu()?;
        gpu.bind()?;
        fused::fused(gpu, program, inputs, out_dtype)
    }
    fn arange(&self, start: f64, step: f64, dtype: Dtype, n: usize) -> Result<ArrayData> {
        // the first two values as the host computes them give the start and the step
        let two = CpuBackend.arange(start, step, dtype, 2)?;
        let wide = CpuBackend.cast(&two, Dtype::Float64)?.to_vec::<f64>();
        native_or_host(
            &[],
            |g| elementwise::arange(g, wide[0], wide[1] - wide[0], dtype, n),
            |c| c.arange(start, step, dtype, n),
        )
    }
    fn reduce(
        &self,
        op: ReduceOp,
        x: &ArrayData,
        axes: &[usize],
        out_dtype: Dtype,
    ) -> Result<ArrayData> {
        native_or_host(
            &[x],
            |g| reduce::reduce(g, op, x, axes, out_dtype),
            |c| c.reduce(op, x, axes, out_dtype),
        )
    }
    fn scan(
        &self,
        op: ScanOp,
        x: &ArrayData,
        axis: usize,
        reverse: bool,
        inclusive: bool,
    ) -> Result<ArrayData> {
        native_or_host(
            &[x],
            |g| scan::scan(g, op, x, axis, reverse, inclusive),
            |c| c.scan(op, x, axis, reverse, inclusive),
        )
    }
    fn arg_reduce(&self, op: ArgReduceOp, x: &ArrayData, axis: usize) -> Result<ArrayData> {
        native_or_host(
            &[x],
            |g| arg_reduce::arg_reduce(g, op, x, axis),
            |c| c.arg_reduce(op, x, axis),
        )
    }
    fn matmul(&self, a: &ArrayData, b: &ArrayData) -> Result<ArrayData> {
        native_or_host(&[a, b], |g| matmul::matmul(g, a, b), |c| c.matmul(a, b))
    }
    fn check_indices(&self, indices: &ArrayData, size: usize, axis: usize) -> Result<ArrayData> {
        native_or_host(
            &[indices],
            |g| indexing::check_indices(g, indices, size, axis),
            |c| c.check_indices(indices, size, axis),
        )
    }
    fn take(&self, x: &ArrayData, indices: &ArrayData, axis: usize) -> Result<ArrayData> {
        native_or_host(
            &[x, indices],
            |g| indexing::take(g, x, indices, axis),
            |c| c.take(x, indices, axis),
        )
    }
    fn take_along_axis(
        &self,
        x: &ArrayData,
        indices: &ArrayData,
        axis: usize,
    ) -> Result<ArrayData> {
        native_or_host(
            &[x, indices],
            |g| indexing::take_along_axis(g, x, indices, axis),
            |c| c.take_along_axis(x, indices, axis),
        )
    }
    fn scatter_along_axis(
        &self,
        mode: ScatterMode,
        x: &ArrayData,
        indices: &ArrayData,
        updates: &ArrayData,
        axis: usize,
    ) -> Result<ArrayData> {
        native_or_host(
            &[x, indices, updates],
            |g| indexing::scatter_along_axis(g, mode, x, indices, updates, axis),
            |c| c.scatter_along_axis(mode, x, indices, updates, axis),
        )
    }
    fn softmax(&self, x: &ArrayData) -> Result<ArrayData> {
        native_or_host(&[x], |g| softmax::softmax(g, x), |c| c.softmax(x))
    }
    fn random_bits(&self, keys: &ArrayData, shape: &[usize], width: usize) -> Result<ArrayData> {
        native_or_host(
            &[keys],
            |g| random::random_bits(g, keys, shape, width),
            |c| c.random_bits(keys, shape, width),
        )
    }
    fn sort(&self, x: &ArrayData, axis: usize, kth: Option<usize>, arg: bool) -> Result<ArrayData> {
        native_or_host(
            &[x],
            |g| sort::sort(g, x, axis, kth, arg),
            |c| c.sort(x, axis, kth, arg),
        )
    }
    fn searchsorted(&self, seq: &ArrayData, values: &ArrayData, right: bool) -> Result<ArrayData> {
        native_or_host(
            &[seq, values],
            |g| searchsorted::searchsorted(g, seq, values, right),
            |c| c.searchsorted(seq, values, right),
        )
    }
    fn fft(
        &self,
        x: &ArrayData,
        axes: &[usize],
        inverse: bool,
        real: bool,
        out_shape: &[usize],
        scale: f32,
    ) -> Result<ArrayData> {
        native_or_host(
            &[x],
            |g| fft::fft(g, x, axes, inverse, real, out_shape, scale),
            |c| c.fft(x, axes, inverse, real, out_shape, scale),
        )
    }
    fn quantize(
        &self,
        op: QuantizeOp,
        inputs: &[ArrayData],
        group_size: usize,
        bits: usize,
    ) -> Result<Vec<ArrayData>> {
        let refs: Vec<&ArrayData> = inputs.iter().collect();
        let gpu = the_gpu()?;
        gpu.bind()?;
        match op {
            QuantizeOp::Dequantize(dtype) => {
                let (w, sc, b) = (&inputs[0], &inputs[1], &inputs[2]);
                if let Some(out) = qmm::dequantize(gpu, w, sc, b, group_size, bits, dtype)? {
                    return Ok(vec![out]);
                }
            }
            QuantizeOp::Quantize => {
                if let Some(outs) = quantize::quantize(gpu, &inputs[0], group_size, bits)? {
                    return Ok(outs);
                }
            }
        }
        host_fallback(&refs, |c| c.quantize(op, inputs, group_size, bits))
    }
    fn quantized_matmul(
        &self,
        x: &ArrayData,
        w: &ArrayData,
        scales: &ArrayData,
        biases: &ArrayData,
        group_size: usize,
        bits: usize,
        transpose: bool,
    ) -> Result<ArrayData> {
        native_or_host(
            &[x, w, scales, biases],
            |g| qmm::quantized_matmul(g, x, w, scales, biases, group_size, bits, transpose),
            |c| c.quantized_matmul(x, w, scales, biases, group_size, bits, transpose),
        )
    }
    fn norm(
        &self,
        kind: NormKind,
        x: &ArrayData,
        weight: Option<&ArrayData>,
        bias: Option<&ArrayData>,
        eps: f32,
    ) -> Result<ArrayData> {
        let mut ins = vec![x];
        ins.extend(weight);
        ins.extend(bias);
        native_or_host(
            &ins,
            |g| rows::norm(g, kind, x, weight, bias, eps),
            |c| c.norm(kind, x, weight, bias, eps),
        )
    }
    fn add_rms_norm(
        &self,
        x: &ArrayData,
        residual: &ArrayData,
        weight: Option<&ArrayData>,
        eps: f32,
    ) -> Result<(ArrayData, ArrayData)> {
        let gpu = the_gpu()?;
        gpu.bind()?;
        match rows::add_rms_norm(gpu, x, residual, weight, eps)? {
            Some(pair) => Ok(pair),
            None => rmx_core::backend::add_then_rms_norm(self, x, residual, weight, eps),
        }
    }
    fn rope(
        &self,
        x: &ArrayData,
        offset: &ArrayData,
        freqs: Option<&ArrayData>,
        spec: RopeSpec,
    ) -> Result<ArrayData> {
        let mut ins = vec![x, offset];
        ins.extend(freqs);
        native_or_host(
            &ins,
            |g| fast::rope(g, x, offset, freqs, spec),
            |c| c.rope(x, offset, freqs, spec),
        )
    }
    fn swiglu_linear(&self, x: &ArrayData, weight: LinearWeight<'_>) -> Result<ArrayData> {
        let gpu = the_gpu()?;
        gpu.bind()?;
        let native = match weight {
            LinearWeight::Dense(w) => gemv::gemv_swiglu(gpu, x, w)?,
            LinearWeight::Quantized {
                w,
                scales,
                biases,
                group_size,
                bits,
            } => qmm::quantized_swiglu(gpu, x, w, scales, biases, group_size, bits)?,
        };
        match native {
            Some(y) => Ok(y),
            // more rows: the product and the elementwise kernels
            None => rmx_core::primitives::fast::swiglu::linear_then_swiglu(self, x, weight),
        }
    }
    fn rms_norm_linear(
        &self,
        x: &ArrayData,
        residual: Option<&ArrayData>,
        norm_weight: &ArrayData,
        eps: f32,
        weight: LinearWeight<'_>,
        gated: bool,
    ) -> Result<(Option<ArrayData>, ArrayData)> {
        let gpu = the_gpu()?;
        gpu.bind()?;
        match norm_linear::rms_norm_linear(gpu, x, residual, norm_weight, eps, weight, gated)? {
            Some(out) => Ok(out),
            // more rows: the norm kernel, then the product
            None => rmx_core::primitives::fast::norm_linear::norm_then_linear(
                self,
                x,
                residual,
                norm_weight,
                eps,
                weight,
                gated,
            ),
        }
    }
    fn rope_kv_update(
        &self,
        arrays: [&ArrayData; 3],
        offset: &ArrayData,
        freqs: Option<&ArrayData>,
        spec: RopeSpec,
        heads: (usize, usize),
    ) -> Result<[ArrayData; 3]> {
        let gpu = the_gpu()?;
        gpu.bind()?;
        if let Some(out) = rope_kv::rope_kv_update(gpu, arrays, offset, freqs, spec, heads)? {
            return Ok(out);
        }
        let mut ins = arrays.to_vec();
        ins.push(offset);
        ins.extend(freqs);
        host_fallback(&ins, |c| {
            c.rope_kv_update(arrays, offset, freqs, spec, heads)
        })
    }
    fn attention(
        &self,
        q: &ArrayData,
        k: &ArrayData,
        v: &ArrayData,
        mask: AttnMask<'_>,
        sinks: Option<&ArrayData>,
        scale: f32,
    ) -> Result<ArrayData> {
        let mut ins = vec![q, k, v];
        if let AttnMask::Array(m) = mask {
            ins.push(m);
        }
        ins.extend(sinks);
        native_or_host(
            &ins,
            |g| fast::attention(g, q, k, v, mask, sinks, scale),
            |c| c.attention(q, k, v, mask, sinks, scale),
        )
    }
    fn fp8(&self, x: &ArrayData, to_fp8: bool, out_dtype: Dtype) -> Result<ArrayData> {
        native_or_host(
            &[x],
            |g| fp8::fp8(g, x, to_fp8, out_dtype),
            |c| c.fp8(x, to_fp8, out_dtype),
        )
    }
    fn linalg(&self, op: LinalgOp, inputs: &[ArrayData]) -> Result<Vec<ArrayData>> {
        let refs: Vec<&ArrayData> = inputs.iter().collect();
        let gpu = the_gpu()?;
        gpu.bind()?;
        if let Some(outs) = linalg::linalg(gpu, op, inputs)? {
            return Ok(outs);
        }
        host_fallback(&refs, |c| c.linalg(op, inputs))
    }
    fn conv(
        &self,
        x: &ArrayData,
        w: &ArrayData,
        p: &ConvParams,
        out_shape: &[usize],
    ) -> Result<ArrayData> {
        native_or_host(
            &[x, w],
            |g| conv::conv(g, x, w, p, out_shape),
            |c| c.conv(x, w, p, out_shape),
        )
    }
}
