//! The CUDA C every kernel source starts with, and how each dtype is stored, loaded and
//! computed in kernels. Half types are stored as 16-bit integers and converted with PTX
//! `cvt` instructions, so no CUDA header is needed at run time.

use rmx_core::Dtype;

// `loc` stays out of line: inlined into every unrolled operand read it made NVRTC take
// ~2 s per kernel instead of ~0.17 s (measured with NVRTC 13.5); only strided reads call it.
pub const PRELUDE: &str = r#"
typedef unsigned char u8; typedef signed char i8;
typedef unsigned short u16; typedef short i16;
typedef unsigned int u32; typedef int i32;
typedef unsigned long long u64; typedef long long i64;
#define INFINITY (__int_as_float(0x7f800000))
struct Layout { int ndim; int pad; i64 shape[8]; i64 strides[8]; };
// i % c and i / c in 32 bits when both fit (a 64-bit division is a long software routine)
__device__ __forceinline__ i64 rem_of(i64 i, i64 c) { return ((i | c) >> 32) ? i % c : (i64)((u32)i % (u32)c); }
__device__ __forceinline__ i64 quot_of(i64 i, i64 c) { return ((i | c) >> 32) ? i / c : (i64)((u32)i / (u32)c); }
__device__ __noinline__ i64 loc(const Layout& l, i64 i) {
  i64 o = 0;
  for (int d = l.ndim - 1; d >= 0; --d) { const i64 n = l.shape[d]; const i64 q = quot_of(i, n); o += (i - q * n) * l.strides[d]; i = q; }
  return o;
}
// element of a vector broadcast over a 2-d launch: read mode 3 (a row vector, `i % cols`)
// or 4 (a column vector, `i / cols`); see elementwise.rs
// (the 64-bit division stays out of line: inlined into every unrolled read it multiplied
// NVRTC's compile time)
__device__ __noinline__ i64 vec_index_wide(const Layout& l, int m, i64 i) { return m == 3 ? i % l.shape[1] : i / l.shape[1]; }
__device__ __forceinline__ i64 vec_index(const Layout& l, int m, i64 i) {
  const i64 c = l.shape[1];
  if ((i | c) >> 32) return vec_index_wide(l, m, i);
  const u32 q = (u32)i / (u32)c;
  return m == 3 ? (i64)((u32)i - q * (u32)c) : (i64)q;
}
// powf with the exponents of polynomial formulas (GELU's x**3) by multiplication: the
// exponent is usually one scalar, so the branch is uniform. Squares are exact products;
// cubes are computed in double (x^2 exact there) and rounded once more: within 0.5 ulp
// plus a double rounding, where powf is within 2 ulp and ~10x the instructions.
__device__ __forceinline__ float pow_f32(float a, float b) {
  if (b == 2.0f) return a * a;
  if (b == 3.0f) { const double d = a; return (float)(d * d * d); }
  return powf(a, b);
}
// NaN both ways as x86's F16C (MLX's CPU) converts it: sign and payload kept, quieted
// (PTX cvt gives a positive canonical NaN)
__device__ __forceinline__ float h2f(u16 h) {
  float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f == f ? f : __uint_as_float(((u32)(h & 0x8000) << 16) | 0x7FC00000u | ((u32)(h & 0x3FF) << 13));
}
__device__ __forceinline__ u16 f2h(float f) {
  u16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  const u32 b = __float_as_uint(f);
  return f == f ? h : (u16)(((b >> 16) & 0x8000) | 0x7E00 | ((b >> 13) & 0x3FF));
}
__device__ __forceinline__ float b2f(u16 h) { return __uint_as_float(((u32)h) << 16); }
__device__ __forceinline__ u16 f2b(float f) { u16 h; asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
// float -> integer as the host casts (x86 C++, MLX's CPU): truncation through a 32- or
// 64-bit signed conversion whose out-of-range (and NaN) result is the minimum value, then
// wrap-around to the narrower type
__device__ __forceinline__ int f2i_x86(double f) { const double t = trunc(f); return t >= -2147483648.0 && t <= 2147483647.0 ? (int)t : (int)0x80000000; }
__device__ __forceinline__ i64 f2l_x86(double f) { const double t = trunc(f); return t >= -9223372036854775808.0 && t < 9223372036854775808.0 ? (i64)t : (i64)0x8000000000000000ull; }
__device__ __forceinline__ u64 f2ul_x86(double f) { return f >= 9223372036854775808.0 && f < 18446744073709551616.0 ? (u64)f : (u64)f2l_x86(f); }
template <typename T> __device__ __forceinline__ bool is_nan(T) { return false; }
template <> __device__ __forceinline__ bool is_nan<float>(float x) { return x != x; }
template <> __device__ __forceinline__ bool is_nan<double>(double x) { return x != x; }
"#;

/// How a dtype lives in a kernel: storage type, compute type, load and store expressions.
pub struct CType {
    /// C type of the stored element.
    pub store: &'static str,
    /// C type arithmetic is done in.
    pub compute: &'static str,
    /// Floating compute (float/double math functions apply).
    pub float: bool,
    /// Suffix of the single-precision math functions (`expf`) or "" for double.
    pub fsuffix: &'static str,
}

impl CType {
    /// Expression converting stored `e` to the compute type.
    pub fn load(&self, e: &str) -> String {
        match self.store_kind() {
            'h' => format!("h2f({e})"),
            'b' => format!("b2f({e})"),
            _ => format!("(({}){e})", self.compute),
        }
    }
    /// Expression converting compute-typed `e` to the stored type.
    pub fn store(&self, e: &str) -> String {
        match self.store_kind() {
            'h' => format!("f2h((float)({e}))"),
            'b' => format!("f2b((float)({e}))"),
            'B' => format!("((u8)(({e}) != 0))"),
            _ => format!("(({})({e}))", self.store),
        }
    }
    fn store_kind(&self) -> char {
        match (self.store, self.compute) {
            ("u16", "float") if self.fsuffix == "fh" => 'h',
            ("u16", "float") => 'b',
            ("u8", "bool") => 'B',
            _ => '-',
        }
    }
    pub fn math(&self, f: &str) -> String {
        let suffix = if self.fsuffix.starts_with('f') {
            "f"
        } else {
            ""
        };
        format!("{f}{suffix}")
    }
}

/// The kernel view of `dtype`; `None` for complex64, which kernels here do not compute on.
pub fn ctype(dtype: Dtype) -> Option<CType> {
    let int = |store, compute| CType {
        store,
        compute,
        float: false,
        fsuffix: "",
    };
    Some(match dtype {
        Dtype::Bool => int("u8", "bool"),
        Dtype::Uint8 => int("u8", "u8"),
        Dtype::Uint16 => int("u16", "u16"),
        Dtype::Uint32 => int("u32", "u32"),
        Dtype::Uint64 => int("u64", "u64"),
        Dtype::Int8 => int("i8", "i8"),
        Dtype::Int16 => int("i16", "i16"),
        Dtype::Int32 => int("i32", "i32"),
        Dtype::Int64 => int("i64", "i64"),
        Dtype::Float16 => CType {
            store: "u16",
            compute: "float",
            float: true,
            fsuffix: "fh",
        },
        Dtype::Bfloat16 => CType {
            store: "u16",
            compute: "float",
            float: true,
            fsuffix: "fb",
        },
        Dtype::Float32 => CType {
            store: "float",
            compute: "float",
            float: true,
            fsuffix: "f",
        },
        Dtype::Float64 => CType {
            store: "double",
            compute: "double",
            float: true,
            fsuffix: "",
        },
        Dtype::Complex64 => return None,
    })
}

/// An unsigned C type of `size` bytes, for kernels that only move elements.
pub fn bits_type(size: usize) -> &'static str {
    match size {
        1 => "u8",
        2 => "u16",
        4 => "u32",
        _ => "u64",
    }
}

/// Short dtype tag for kernel names.
pub fn tag(dtype: Dtype) -> &'static str {
    match dtype {
        Dtype::Bool => "b1",
        Dtype::Uint8 => "u8",
        Dtype::Uint16 => "u16",
        Dtype::Uint32 => "u32",
        Dtype::Uint64 => "u64",
        Dtype::Int8 => "i8",
        Dtype::Int16 => "i16",
        Dtype::Int32 => "i32",
        Dtype::Int64 => "i64",
        Dtype::Float16 => "f16",
        Dtype::Bfloat16 => "bf16",
        Dtype::Float32 => "f32",
        Dtype::Float64 => "f64",
        Dtype::Complex64 => "c64",
    }
}

/// C expression converting float compute value `v` to integer compute type `to` as the
/// host does (see `f2i_x86` in the prelude).
pub fn float_to_int(v: &str, to: &str) -> String {
    let via = match to {
        "u32" | "i64" => "f2l_x86",
        "u64" => "f2ul_x86",
        _ => "f2i_x86",
    };
    format!("(({to}){via}((double)({v})))")
}
