//! The CPU backend: kernels for each family of the `Backend` trait, threaded with rayon.

mod binary;
pub mod conv;
pub(crate) mod copy;
mod decompositions;
mod fast;
pub mod fast_math;
mod fft;
pub mod fp8;
mod fused_f32;
mod indexing;
pub mod loops;
pub mod math;
mod matmul;
mod qmm;
pub use qmm::decode_reads_half_scales;
pub mod qqmm;
mod quantized;
pub mod quantized_fp;
mod random;
mod reduce;
mod scan;
mod softmax;
mod sort;
mod stream_store;
mod unary;

use crate::array::ArrayData;
use crate::backend::{
    ArgReduceOp, AttnMask, Backend, BinaryOp, ConvParams, NormKind, QuantizeOp, ReduceOp, RopeSpec,
    ScanOp, ScatterMode, UnaryOp,
};
use crate::dtype::Dtype;
use crate::element::Scalar;
use crate::error::Result;

pub struct CpuBackend;

/// Direct access to the CPU copy kernel for host-side conversions.
pub struct CpuBackendCopy;
impl CpuBackendCopy {
    pub fn copy(x: &ArrayData) -> Result<ArrayData> {
        copy::copy(x)
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }
    fn unary(&self, op: UnaryOp, x: &ArrayData, out_dtype: Dtype) -> Result<ArrayData> {
        unary::unary(op, x, out_dtype)
    }
    fn binary(
        &self,
        op: BinaryOp,
        a: &ArrayData,
        b: &ArrayData,
        out_dtype: Dtype,
    ) -> Result<ArrayData> {
        binary::binary(op, a, b, out_dtype)
    }
    fn unary_over(&self, op: UnaryOp, x: &ArrayData, out_dtype: Dtype) -> Result<ArrayData> {
        if x.dtype != out_dtype || !x.is_donated_whole() {
            return unary::unary(op, x, out_dtype);
        }
        unary::unary_into(op, x, x)?;
        written_on_host(x.clone())
    }
    fn binary_over(
        &self,
        op: BinaryOp,
        a: &ArrayData,
        b: &ArrayData,
        out_dtype: Dtype,
    ) -> Result<ArrayData> {
        // the loops read a donated input through the output: the other input must take
        // their contiguous-or-scalar path (`loops::map2`)
        let plain = |x: &ArrayData| x.is_row_contiguous() || x.strides.iter().all(|&s| s == 0);
        let over = |mine: &ArrayData, other: &ArrayData| {
            mine.dtype == out_dtype && mine.is_donated_whole() && plain(other)
        };
        let out = if over(a, b) {
            a
        } else if over(b, a) {
            b
        } else {
            return binary::binary(op, a, b, out_dtype);
        };
        binary::binary_into(op, a, b, out)?;
        written_on_host(out.clone())
    }
    fn select(&self, cond: &ArrayData, a: &ArrayData, b: &ArrayData) -> Result<ArrayData> {
        copy::select(cond, a, b)
    }
    fn cast(&self, x: &ArrayData, dtype: Dtype) -> Result<ArrayData> {
        copy::cast(x, dtype)
    }
    fn copy(&self, x: &ArrayData) -> Result<ArrayData> {
        copy::copy(x)
    }
    fn fused(
        &self,
        program: &crate::primitives::fused::Fused,
        inputs: &[ArrayData],
        _out_dtype: Dtype,
    ) -> Result<Option<ArrayData>> {
        fused_f32::run(program, inputs).transpose()
    }
    fn copy_into(&self, src: &ArrayData, dst: &ArrayData) -> Result<()> {
        copy::copy_into(src, dst)?;
        // a device copy of dst's buffer (a donated input may have one) is stale now
        dst.buffer.set_residency(crate::allocator::Residency::HOST);
        Ok(())
    }
    fn fill(&self, value: Scalar, dtype: Dtype, shape: &[usize]) -> Result<ArrayData> {
        copy::fill(value, dtype, shape)
    }
    fn arange(&self, start: f64, step: f64, dtype: Dtype, n: usize) -> Result<ArrayData> {
        copy::arange(start, step, dtype, n)
    }
    fn reduce(
        &self,
        op: ReduceOp,
        x: &ArrayData,
        axes: &[usize],
        out_dtype: Dtype,
    ) -> Result<ArrayData> {
        reduce::reduce(op, x, axes, out_dtype)
    }
    fn scan(
        &self,
        op: ScanOp,
        x: &ArrayData,
        axis: usize,
        reverse: bool,
        inclusive: bool,
    ) -> Result<ArrayData> {
        scan::scan(op, x, axis, reverse, inclusive)
    }
    fn arg_reduce(&self, op: ArgReduceOp, x: &ArrayData, axis: usize) -> Result<ArrayData> {
        reduce::arg_reduce(op, x, axis)
    }
    fn matmul(&self, a: &ArrayData, b: &ArrayData) -> Result<ArrayData> {
        matmul::matmul(a, b)
    }
    fn check_indices(&self, indices: &ArrayData, size: usize, axis: usize) -> Result<ArrayData> {
        let v = indexing::checked_indices("index", indices, size, axis)?;
        ArrayData::from_slice(&v, &indices.shape)
    }
    fn take(&self, x: &ArrayData, indices: &ArrayData, axis: usize) -> Result<ArrayData> {
        indexing::take(x, indices, axis)
    }
    fn take_along_axis(
        &self,
        x: &ArrayData,
        indices: &ArrayData,
        axis: usize,
    ) -> Result<ArrayData> {
        indexing::take_along_axis(x, indices, axis)
    }
    fn scatter_along_axis(
        &self,
        mode: ScatterMode,
        x: &ArrayData,
        indices: &ArrayData,
        updates: &ArrayData,
        axis: usize,
    ) -> Result<ArrayData> {
        indexing::scatter_along_axis(mode, x, indices, updates, axis)
    }
    fn softmax(&self, x: &ArrayData) -> Result<ArrayData> {
        softmax::softmax(x)
    }
    fn random_bits(&self, keys: &ArrayData, shape: &[usize], width: usize) -> Result<ArrayData> {
        random::random_bits(keys, shape, width)
    }
    fn sort(&self, x: &ArrayData, axis: usize, kth: Option<usize>, arg: bool) -> Result<ArrayData> {
        let how = kth.map_or(sort::Arrange::Sort, sort::Arrange::Partition);
        sort::arrange(x, axis, how, arg)
    }
    fn searchsorted(&self, seq: &ArrayData, values: &ArrayData, right: bool) -> Result<ArrayData> {
        sort::searchsorted(seq, values, right)
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
        fft::fft(x, axes, inverse, real, out_shape, scale)
    }
    fn quantize(
        &self,
        op: QuantizeOp,
        inputs: &[ArrayData],
        group_size: usize,
        bits: usize,
    ) -> Result<Vec<ArrayData>> {
        match op {
            QuantizeOp::Quantize => quantized::quantize(&inputs[0], group_size, bits),
            QuantizeOp::Dequantize(dtype) => Ok(vec![quantized::dequantize(
                &inputs[0], &inputs[1], &inputs[2], group_size, bits, dtype,
            )?]),
        }
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
        qmm::quantized_matmul(x, w, scales, biases, group_size, bits, transpose)
    }
    fn norm(
        &self,
        kind: NormKind,
        x: &ArrayData,
        weight: Option<&ArrayData>,
        bias: Option<&ArrayData>,
        eps: f32,
    ) -> Result<ArrayData> {
        fast::norm::norm(kind, x, weight, bias, eps)
    }
    fn rope(
        &self,
        x: &ArrayData,
        offset: &ArrayData,
        freqs: Option<&ArrayData>,
        spec: RopeSpec,
    ) -> Result<ArrayData> {
        fast::rope::rope(x, offset, freqs, spec)
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
        fast::attention::attention(q, k, v, mask, sinks, scale)
    }
    fn conv(
        &self,
        x: &ArrayData,
        w: &ArrayData,
        p: &ConvParams,
        out_shape: &[usize],
    ) -> Result<ArrayData> {
        conv::conv(x, w, p, out_shape)
    }
    fn linalg(&self, op: crate::backend::LinalgOp, inputs: &[ArrayData]) -> Result<Vec<ArrayData>> {
        decompositions::linalg(op, inputs)
    }
}

/// A donated buffer just overwritten on the host: any device copy of it is stale.
fn written_on_host(out: ArrayData) -> Result<ArrayData> {
    out.buffer.set_residency(crate::allocator::Residency::HOST);
    Ok(out)
}
