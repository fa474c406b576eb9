//! The narrow interface between primitives and devices. A backend implements a small
//! set of kernel families (elementwise, reduce, copy, matmul, gather/scatter, ...); every
//! primitive evaluates through them, so a new device implements this trait and nothing else.
//! See docs/design/backends.md, docs/design/memory.md and docs/design/cuda.md for how a GPU
//! backend with device-resident buffers plugs in.

pub mod cpu;

use crate::array::ArrayData;
use crate::device::{Device, DeviceType};
use crate::dtype::Dtype;
use crate::element::Scalar;
use crate::error::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Abs,
    Negative,
    Sign,
    Sqrt,
    Rsqrt,
    Square,
    Reciprocal,
    Exp,
    Expm1,
    Log,
    Log1p,
    Log2,
    Log10,
    Sin,
    Cos,
    Tan,
    Arcsin,
    Arccos,
    Arctan,
    Sinh,
    Cosh,
    Tanh,
    Arcsinh,
    Arccosh,
    Arctanh,
    Floor,
    Ceil,
    Round,
    Trunc,
    Erf,
    Erfinv,
    Sigmoid,
    LogicalNot,
    BitwiseInvert,
    Real,
    Imag,
    Conjugate,
    IsNan,
    IsInf,
    IsPosInf,
    IsNegInf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Subtract,
    Multiply,
    Divide,
    Power,
    Maximum,
    Minimum,
    Remainder,
    FloorDivide,
    Arctan2,
    LogAddExp,
    Equal,
    NotEqual,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    /// Equality that also treats NaN == NaN (array_equal with equal_nan).
    NanEqual,
    LogicalAnd,
    LogicalOr,
    BitwiseAnd,
    BitwiseOr,
    BitwiseXor,
    LeftShift,
    RightShift,
}

impl BinaryOp {
    pub fn is_comparison(self) -> bool {
        use BinaryOp::*;
        matches!(
            self,
            Equal
                | NotEqual
                | Less
                | LessEqual
                | Greater
                | GreaterEqual
                | NanEqual
                | LogicalAnd
                | LogicalOr
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    Sum,
    Prod,
    Max,
    Min,
    All,
    Any,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgReduceOp {
    ArgMax,
    ArgMin,
}

/// A cumulative operation along one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScanOp {
    Reduce(ReduceOp),
    LogAddExp,
}

/// How scatter combines updates with the existing values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScatterMode {
    Set,
    Add,
    Prod,
    Max,
    Min,
}

/// Direction of an affine quantization kernel (see `Backend::quantize`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantizeOp {
    /// `[w]` (float, last dim a multiple of the group size) to `[wq, scales, biases]`.
    Quantize,
    /// `[wq, scales, biases]` (equal batch shapes) to one array of this float dtype: the
    /// promoted type of scales and biases, in which MLX computes.
    Dequantize(Dtype),
}
/// Which normalization over the last axis `Backend::norm` computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NormKind {
    /// `x * rsqrt(mean(x^2) + eps)`.
    Rms,
    /// `(x - mean(x)) * rsqrt(var(x) + eps)`.
    Layer,
}

/// Parameters of a rotary embedding (`Backend::rope`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RopeSpec {
    /// Leading features rotated (even); the rest pass through.
    pub dims: usize,
    /// Rotate adjacent pairs (2i, 2i+1) instead of the halves (i, i + dims/2).
    pub traditional: bool,
    /// Frequencies are `base^(-2i/dims)` unless explicit `freqs` are given.
    pub base: f32,
    /// Positions are `(t + offset) * scale`.
    pub scale: f32,
}

/// The mask of `Backend::attention`.
#[derive(Clone, Copy)]
pub enum AttnMask<'a> {
    None,
    /// Query i sees keys j <= i + Lk - Lq (MLX's lower-right alignment; when Lq > Lk the
    /// first rows see nothing and, scored like masked bool entries, average all values).
    Causal,
    /// A bool mask (false = masked, scored as the dtype's lowest finite value) or an
    /// additive mask of the queries' dtype, as a view broadcast to [B, Hq, Lq, Lk].
    Array(&'a ArrayData),
}

/// Parameters of a convolution (channels-last input `[N, ...spatial, C_in]`, weight
/// `[C_out, ...kernel, C_in / groups]`), one entry per spatial axis. Output position `t`
/// and kernel tap `k` read the input at `t * stride + k * kernel_dilation - pad_lo` in the
/// coordinates of the input dilated by `input_dilation`; positions outside the input or
/// between dilated elements read zero, so pads may be negative. `pad_hi` only enters the
/// output shape, which the caller gives. With `flip` the kernel taps are reversed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConvParams {
    pub stride: Vec<usize>,
    pub pad_lo: Vec<i64>,
    pub pad_hi: Vec<i64>,
    pub kernel_dilation: Vec<usize>,
    pub input_dilation: Vec<usize>,
    pub groups: usize,
    pub flip: bool,
}

/// The kernel families a device provides. Inputs are strided views; outputs are fresh
/// row-contiguous arrays unless stated. Binary/select inputs arrive already broadcast
/// (zero strides) to the output shape and cast to one dtype.
pub trait Backend: Send + Sync {
    fn name(&self) -> &'static str;
    /// Called by the scheduler for every input buffer before a node of this device runs.
    /// Host kernels need the host copy; a device backend may upload here or when a kernel
    /// of its reads the buffer (so inputs of ops it runs on the host are never uploaded).
    fn make_resident(&self, buffer: &crate::allocator::Buffer) -> Result<()> {
        buffer.make_resident(Device::CPU)
    }
    /// Waits until the device has finished the work queued on it (kernels run
    /// asynchronously on a device; host backends finish before returning).
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
    /// Properties `device_info` reports for this backend's device.
    fn device_info(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    fn unary(&self, op: UnaryOp, x: &ArrayData, out_dtype: Dtype) -> Result<ArrayData>;
    fn binary(
        &self,
        op: BinaryOp,
        a: &ArrayData,
        b: &ArrayData,
        out_dtype: Dtype,
    ) -> Result<ArrayData>;
    /// `unary` where `x` may have been donated by the scheduler (its buffer then has no
    /// other reference): a backend may write the result over it. Only a primitive whose
    /// `donatable_inputs` names the input may call this; the default ignores the donation.
    fn unary_over(&self, op: UnaryOp, x: &ArrayData, out_dtype: Dtype) -> Result<ArrayData> {
        self.unary(op, x, out_dtype)
    }
    /// `binary` where `a` or `b` may have been donated (see `unary_over`).
    fn binary_over(
        &self,
        op: BinaryOp,
        a: &ArrayData,
        b: &ArrayData,
        out_dtype: Dtype,
    ) -> Result<ArrayData> {
        self.binary(op, a, b, out_dtype)
    }
    /// `cond ? a : b` elementwise.
    fn select(&self, cond: &ArrayData, a: &ArrayData, b: &ArrayData) -> Result<ArrayData>;
    /// Converts to `dtype` with C-cast semantics.
    fn cast(&self, x: &ArrayData, dtype: Dtype) -> Result<ArrayData>;
    /// A row-contiguous copy of a view.
    fn copy(&self, x: &ArrayData) -> Result<ArrayData>;
    /// Writes `src` into `dst`, a same-shaped view into a buffer the caller owns.
    fn copy_into(&self, src: &ArrayData, dst: &ArrayData) -> Result<()>;
    /// A fresh row-contiguous array of unspecified contents, in this device's memory, for
    /// ops that then write all of it piecewise (`copy_into`).
    fn empty(&self, dtype: Dtype, shape: &[usize]) -> Result<ArrayData> {
        ArrayData::alloc(dtype, shape)
    }
    /// A fused elementwise program (`compile`'s `Fused` node) as one kernel: `inputs` are
    /// views of the output's shape. `None` (the default) runs the portable tiled
    /// interpreter, which calls this backend's unary/binary/cast/select kernels.
    fn fused(
        &self,
        _program: &crate::primitives::fused::Fused,
        _inputs: &[ArrayData],
        _out_dtype: Dtype,
    ) -> Result<Option<ArrayData>> {
        Ok(None)
    }
    fn fill(&self, value: Scalar, dtype: Dtype, shape: &[usize]) -> Result<ArrayData>;
    /// `start + i * step` for i in 0..n.
    fn arange(&self, start: f64, step: f64, dtype: Dtype, n: usize) -> Result<ArrayData>;
    /// Reduces over `axes`; the output keeps those axes with size 1.
    fn reduce(
        &self,
        op: ReduceOp,
        x: &ArrayData,
        axes: &[usize],
        out_dtype: Dtype,
    ) -> Result<ArrayData>;
    /// Cumulative `op` along `axis` (same dtype out), reversed and/or exclusive.
    fn scan(
        &self,
        op: ScanOp,
        x: &ArrayData,
        axis: usize,
        reverse: bool,
        inclusive: bool,
    ) -> Result<ArrayData>;
    /// Index of the max/min along `axis` (kept with size 1), as uint32.
    fn arg_reduce(&self, op: ArgReduceOp, x: &ArrayData, axis: usize) -> Result<ArrayData>;
    /// Batched matrix product of `[..., M, K]` and `[..., K, N]` with equal batch shapes.
    fn matmul(&self, a: &ArrayData, b: &ArrayData) -> Result<ArrayData>;
    /// Indices wrapped (negatives count from the end) and checked against `size`, as int64;
    /// any index out of range is an `IndexError`.
    fn check_indices(&self, indices: &ArrayData, size: usize, axis: usize) -> Result<ArrayData>;
    /// `x` taken at `indices` (any integer dtype, bounds-checked, negative wraps) along `axis`;
    /// output shape is `x.shape[..axis] + indices.shape + x.shape[axis+1..]`.
    fn take(&self, x: &ArrayData, indices: &ArrayData, axis: usize) -> Result<ArrayData>;
    /// `x` taken at `indices` along `axis`, where `indices` has `x`'s shape except along `axis`.
    fn take_along_axis(&self, x: &ArrayData, indices: &ArrayData, axis: usize)
        -> Result<ArrayData>;
    /// A copy of `x` with `updates` combined in at `indices` along `axis`
    /// (indices and updates have the same shape, equal to x's except along `axis`).
    fn scatter_along_axis(
        &self,
        mode: ScatterMode,
        x: &ArrayData,
        indices: &ArrayData,
        updates: &ArrayData,
        axis: usize,
    ) -> Result<ArrayData>;
    /// Softmax over the last axis (computed in f32 for half types, or the input type if `precise` is false... always accurate here).
    fn softmax(&self, x: &ArrayData) -> Result<ArrayData>;
    /// Threefry-2x32 random bits: `keys` is `[..., 2]` uint32; the output (`shape`, of
    /// `width`-byte unsigned integers) is split into equal runs, one per key, as MLX does.
    fn random_bits(&self, keys: &ArrayData, shape: &[usize], width: usize) -> Result<ArrayData>;
    /// `x` sorted along `axis` (stable, NaN last), or with `kth` partitioned so that
    /// position `kth` holds the element a sort would put there, smaller ones before it and
    /// larger ones after; with `arg`, the uint32 source indices of that arrangement.
    fn sort(&self, x: &ArrayData, axis: usize, kth: Option<usize>, arg: bool) -> Result<ArrayData>;
    /// For each of `values`, its insertion index (uint32) into the sorted 1-d `seq` of the
    /// same dtype: before equal elements, or after them with `right`.
    fn searchsorted(&self, seq: &ArrayData, values: &ArrayData, right: bool) -> Result<ArrayData>;
    /// Discrete Fourier transform over `axes`, times `scale`. Complex64 to complex64
    /// (`inverse`: the unnormalized conjugate transform); with `real`, forward takes
    /// float32 to the n/2+1 non-negative frequencies of the last of `axes`, and inverse
    /// takes those back to float32 of `out_shape`.
    fn fft(
        &self,
        x: &ArrayData,
        axes: &[usize],
        inverse: bool,
        real: bool,
        out_shape: &[usize],
        scale: f32,
    ) -> Result<ArrayData>;
    /// Affine quantization of the last axis in groups of `group_size` elements of `bits`
    /// bits, packed in uint32 words in MLX's layout (low bits first), or its inverse.
    fn quantize(
        &self,
        op: QuantizeOp,
        inputs: &[ArrayData],
        group_size: usize,
        bits: usize,
    ) -> Result<Vec<ArrayData>>;
    /// `x @ dequantize(w).T` (`transpose`) or `x @ dequantize(w)`: `x` `[..., M, K]` and
    /// scales/biases of one float dtype (the output's), `w` uint32; equal batch shapes.
    #[allow(clippy::too_many_arguments)]
    fn quantized_matmul(
        &self,
        x: &ArrayData,
        w: &ArrayData,
        scales: &ArrayData,
        biases: &ArrayData,
        group_size: usize,
        bits: usize,
        transpose: bool,
    ) -> Result<ArrayData>;
    /// Normalization over the last axis, then `* weight` and `+ bias` (1-d, the last
    /// axis' size); all inputs share one floating dtype, which the output has.
    fn norm(
        &self,
        kind: NormKind,
        x: &ArrayData,
        weight: Option<&ArrayData>,
        bias: Option<&ArrayData>,
        eps: f32,
    ) -> Result<ArrayData>;
    /// `h = x + residual` (one shape and floating dtype; rounded to it) and
    /// `rms_norm(h) * weight`: a pre-norm decoder's residual add and next norm. The default
    /// makes the two kernels.
    fn add_rms_norm(
        &self,
        x: &ArrayData,
        residual: &ArrayData,
        weight: Option<&ArrayData>,
        eps: f32,
    ) -> Result<(ArrayData, ArrayData)> {
        add_then_rms_norm(self, x, residual, weight, eps)
    }
    /// Rotary embedding of `x` `[B, ..., T, D]` (floating) at positions
    /// `(t + offset[b]) * scale`; `offset` is int32 with 1 or B elements, `freqs` (float32,
    /// dims/2 elements) replaces the base's frequencies.
    fn rope(
        &self,
        x: &ArrayData,
        offset: &ArrayData,
        freqs: Option<&ArrayData>,
        spec: RopeSpec,
    ) -> Result<ArrayData>;
    /// `[x, k_cache, v_cache]` to `[q, k_cache', v_cache']` (`ops::fast::rope_kv_update`):
    /// RoPE of the query and key heads of `x` `[B, L, Hq + 2 Hkv, D]` at positions
    /// `offset + l`, the rotated keys and the values written into the caches at those
    /// positions (in place when a cache `is_donated_whole`). The default makes a RoPE per
    /// part and copies.
    /// `silu(x W_g^T) * (x W_u^T)` for `W = [W_g; W_u]` (`ops::fast::swiglu_linear`), every
    /// intermediate rounded to `x`'s dtype. The default makes the product, then the three
    /// elementwise ops.
    fn swiglu_linear(&self, x: &ArrayData, weight: LinearWeight<'_>) -> Result<ArrayData> {
        crate::primitives::fast::swiglu::linear_then_swiglu(self, x, weight)
    }
    /// The RMS norm of `h` (`x`, or `x + residual` rounded to the dtype), times
    /// `norm_weight`, then `n @ W^T` or, `gated`, `swiglu_linear(n, W)`
    /// (`ops::fast::rms_norm_linear`); returns `h` when there is a residual. The default
    /// makes the norm kernel, then the product.
    fn rms_norm_linear(
        &self,
        x: &ArrayData,
        residual: Option<&ArrayData>,
        norm_weight: &ArrayData,
        eps: f32,
        weight: LinearWeight<'_>,
        gated: bool,
    ) -> Result<(Option<ArrayData>, ArrayData)> {
        crate::primitives::fast::norm_linear::norm_then_linear(
            self,
            x,
            residual,
            norm_weight,
            eps,
            weight,
            gated,
        )
    }
    fn rope_kv_update(
        &self,
        arrays: [&ArrayData; 3],
        offset: &ArrayData,
        freqs: Option<&ArrayData>,
        spec: RopeSpec,
        heads: (usize, usize),
    ) -> Result<[ArrayData; 3]> {
        crate::primitives::fast::rope_kv::rope_then_write_kv(
            self, arrays, offset, freqs, spec, heads,
        )
    }
    /// `softmax(scale * q k^T + mask) v` per head, with `q` `[B, Hq, Lq, D]`, `k`
    /// `[B, Hkv, Lk, D]`, `v` `[B, Hkv, Lk, Dv]` (Hq a multiple of Hkv) of one floating
    /// dtype; `sinks` (`[Hq]`, same dtype) adds one extra logit per head to each softmax.
    fn attention(
        &self,
        q: &ArrayData,
        k: &ArrayData,
        v: &ArrayData,
        mask: AttnMask<'_>,
        sinks: Option<&ArrayData>,
        scale: f32,
    ) -> Result<ArrayData>;
    /// Convolution of `x` with `w` (same float dtype) under `p`, into a fresh array of
    /// `out_shape` (`[N, ...out spatial, C_out]`).
    fn conv(
        &self,
        x: &ArrayData,
        w: &ArrayData,
        p: &ConvParams,
        out_shape: &[usize],
    ) -> Result<ArrayData>;
    /// `x @ W.T` (`transpose`) or `x @ W` for fp-mode quantized weights `W` (`w` uint32,
    /// `scales` uint8, batch shapes equal to x's), computed in f32 and returned in x's
    /// dtype. The default runs on the host in MLX's order of rounding (bit-identical).
    fn fp_quantized_matmul(
        &self,
        x: &ArrayData,
        w: &ArrayData,
        scales: &ArrayData,
        mode: crate::ops::quantized_fp::QuantMode,
        transpose: bool,
    ) -> Result<ArrayData> {
        w.buffer.make_resident(Device::CPU)?;
        scales.buffer.make_resident(Device::CPU)?;
        x.buffer.make_resident(Device::CPU)?;
        let y = if transpose {
            cpu::quantized_fp::qmm_t(x, w, scales, mode)?
        } else {
            cpu::quantized_fp::qmm_n(x, w, scales, mode)?
        };
        if x.dtype == Dtype::Float32 {
            Ok(y)
        } else {
            cpu::copy::cast(&y, x.dtype)
        }
    }
    /// `qqmm`: each group of `x`'s rows quantized and dequantized in MLX's kernel recipe
    /// (`cpu::qqmm`, with nvfp4's `global_scales.0` for x), times the fp-quantized `w`
    /// transposed (`fp_quantized_matmul`), times `global_scales.1 / 2688` (w's global
    /// scale). Shapes as `fp_quantized_matmul`; x's dtype. The default runs on the host.
    fn qqmm(
        &self,
        x: &ArrayData,
        w: &ArrayData,
        scales: &ArrayData,
        mode: crate::ops::quantized_fp::QuantMode,
        global_scales: Option<(&ArrayData, &ArrayData)>,
    ) -> Result<ArrayData> {
        x.buffer.make_resident(Device::CPU)?;
        let gs = match global_scales {
            Some((gx, gw)) => {
                gx.buffer.make_resident(Device::CPU)?;
                gw.buffer.make_resident(Device::CPU)?;
                Some((gx.to_vec::<f32>()[0], gw.to_vec::<f32>()[0]))
            }
            None => None,
        };
        let xhat = cpu::qqmm::quantize_dequantize(x, mode, gs.map(|g| g.0))?;
        let y = self.fp_quantized_matmul(&xhat, w, scales, mode, true)?;
        match gs {
            Some((_, gw)) => {
                y.buffer.make_resident(Device::CPU)?;
                cpu::qqmm::scale_by(&y, gw)
            }
            None => Ok(y),
        }
    }
    /// fp8 (e4m3) conversion: a float array to `uint8` codes (`to_fp8`), or `uint8`
    /// codes to floats of `out_dtype`. MLX's bit recipe; the default runs on the host.
    fn fp8(&self, x: &ArrayData, to_fp8: bool, out_dtype: Dtype) -> Result<ArrayData> {
        x.buffer.make_resident(Device::CPU)?;
        cpu::fp8::convert(x, to_fp8, out_dtype)
    }
    /// One dense decomposition or solve (`LinalgOp`) of every matrix in the last two axes
    /// of `inputs` (float32/float64, complex64 where `LinalgOp` says so; the inputs of a
    /// two-input op share dtype and batch shape). Returns the op's outputs, row-contiguous.
    fn linalg(&self, op: LinalgOp, inputs: &[ArrayData]) -> Result<Vec<ArrayData>>;
}

/// The `linalg` family. Outputs per `[..., m, n]` input (k = min(m, n)):
/// `Inv`, `TriInv`: the inverse; `Cholesky`: the triangular factor; `Qr`: Q `[m, k]`,
/// R `[k, n]`; `Svd`: U `[m, m]`, S `[k]`, Vh `[n, n]` (S only without `compute_uv`);
/// `Eigh`: ascending real eigenvalues `[n]` (and vectors as columns); `Eig`: complex64
/// eigenvalues (and vectors); `LuFactor`: compact LU `[m, n]`, LAPACK pivots (uint32 `[k]`);
/// `Lu`: the row permutation `p` (uint32 `[m]`, `A = L[p] @ U`), L `[m, k]`, U `[k, n]`;
/// `Solve`, `SolveTriangular`: X `[n, r]` with `A X = B`; `Det`: det (or sign and log|det|).
/// `Svd`, `Eigh` and `Eig` also take complex64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinalgOp {
    Inv,
    TriInv { upper: bool },
    Cholesky { upper: bool },
    Qr,
    Svd { compute_uv: bool },
    Eigh { upper: bool, vectors: bool },
    Eig { vectors: bool },
    LuFactor,
    Lu,
    Solve,
    SolveTriangular { upper: bool },
    Det { log: bool },
}

static GPU_BACKEND: std::sync::OnceLock<&'static dyn Backend> = std::sync::OnceLock::new();

/// Installs the GPU backend (a device crate such as `rmx-cuda` calls this once it found a
/// device). From then on `Device::GPU` is available and, as in MLX, the default device.
/// Returns false if one was already installed.
pub fn register_gpu_backend(backend: &'static dyn Backend) -> bool {
    let fresh = GPU_BACKEND.set(backend).is_ok();
    if fresh {
        let _ = crate::device::set_default_device(Device::GPU);
    }
    fresh
}

/// The installed GPU backend, if any.
pub fn gpu_backend() -> Option<&'static dyn Backend> {
    GPU_BACKEND.get().copied()
}

/// The weight of a linear layer `x @ W.T`: dense (`[N, K]`, of `x`'s dtype) or in MLX's
/// affine format (packed `w` `[N, K * bits / 32]`, `scales` and `biases` `[N, K /
/// group_size]` of `x`'s dtype).
#[derive(Clone, Copy)]
pub enum LinearWeight<'a> {
    Dense(&'a ArrayData),
    Quantized {
        w: &'a ArrayData,
        scales: &'a ArrayData,
        biases: &'a ArrayData,
        group_size: usize,
        bits: usize,
    },
}

/// The backend that runs ops placed on `device`.
pub fn backend_for(device: Device) -> Result<&'static dyn Backend> {
    match device.kind {
        DeviceType::Cpu => Ok(&cpu::CpuBackend),
        DeviceType::Gpu => gpu_backend()
            .ok_or_else(|| crate::value_err!("Cannot get gpu stream without gpu backend.")),
    }
}

/// `Backend::add_rms_norm` as its two kernels, `binary` then `norm`: the trait's default and
/// a backend's fallback where its fused kernel does not apply.
pub fn add_then_rms_norm<B: Backend + ?Sized>(
    b: &B,
    x: &ArrayData,
    residual: &ArrayData,
    weight: Option<&ArrayData>,
    eps: f32,
) -> Result<(ArrayData, ArrayData)> {
    let h = b.binary(BinaryOp::Add, x, residual, x.dtype)?;
    let y = b.norm(NormKind::Rms, &h, weight, None, eps)?;
    Ok((h, y))
}
