//! fp8 e4m3 conversions with the CPU backend's bit recipe (`backend/cpu/fp8.rs`, MLX's):
//! encoding rounds to nearest even and saturates at ±448, decoding goes through float16
//! times 256. Float inputs are encoded directly, other types are cast to float32 first; decoding writes float16,
//! bfloat16, float32 or float64 directly (every e4m3 value is exact in each) and casts
//! to other types afterwards.

use super::elementwise::{cast, launch_config, row_contiguous, Kernel};
use super::prelude::{ctype, tag, PRELUDE};
use crate::device::{driver_err, Gpu};
use crate::memory::{alloc_output, device_ptr};
use rmx_core::{ArrayData, Dtype, Result};

pub const CODEC: &str = r#"
__device__ __forceinline__ u8 f32_to_fp8(float f) {
  u32 bits = __float_as_uint(f);
  const u32 sign = bits & 0x80000000u;
  bits ^= sign;
  u32 result;
  if (bits >= (543u << 21)) {
    result = 0x7E;
  } else if (bits < (121u << 23)) {
    const u32 denorm = 141u << 23;
    result = (__float_as_uint(__uint_as_float(bits) + __uint_as_float(denorm)) - denorm) & 0xFF;
  } else {
    const u32 mant_odd = (bits >> 20) & 1;
    const u32 rebias = ((u32)(7 - 127)) << 23;
    result = ((bits + rebias + 0x7FFFFu + mant_odd) >> 20) & 0xFF;
  }
  return (u8)(result | (sign >> 24));
}
__device__ __forceinline__ float fp8_to_f32(u8 x) {
  const u32 v = x & 127;
  const u32 u = (v << 7) | (((v + 1) >> 7) << 14) | ((u32)(x >> 7) << 15);
  return h2f((u16)u) * 256.0f;
}
"#;

fn source(name: &str, input: &str, output: &str, body: &str) -> String {
    format!(
        r#"{PRELUDE}{CODEC}
extern "C" __global__ void {name}(const {input}* __restrict__ x, {output}* __restrict__ out, i64 n) {{
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {{
    {body}
  }}
}}
"#
    )
}

/// The float value of a stored element of `dtype` for encoding. NaN must keep its sign (the
/// code's sign bit comes from it, as the host's conversions keep it): the half loads keep
/// it (`prelude.rs`); a float64 NaN is rebuilt with its sign, as PTX `cvt` would drop it.
fn encode_load(dtype: Dtype) -> Option<&'static str> {
    Some(match dtype {
        Dtype::Float32 => "x[i]",
        Dtype::Bfloat16 => "b2f(x[i])",
        Dtype::Float16 => "h2f(x[i])",
        Dtype::Float64 => "([&] { const double d = x[i]; return d == d ? (float)d : __uint_as_float(0x7fc00000u | (u32)(__double_as_longlong(d) >> 32 & 0x80000000u)); }())",
        _ => return None,
    })
}

/// The encoding kernel from `input` (float16, bfloat16, float32 or float64) when
/// `decode_to` is `None`, else the decoding one from codes to `decode_to` (the same four).
pub fn kernel(input: Dtype, decode_to: Option<Dtype>) -> Option<Kernel> {
    let (name, src) = match decode_to {
        None => {
            let name = format!("fp8_encode_{}", tag(input));
            let body = format!("out[i] = f32_to_fp8({});", encode_load(input)?);
            let src = source(&name, ctype(input)?.store, "u8", &body);
            (name, src)
        }
        Some(dt) => {
            let t = ctype(dt)?;
            let name = format!("fp8_decode_{}", tag(dt));
            let body = format!("out[i] = {};", t.store("fp8_to_f32(x[i])"));
            let src = source(&name, "u8", t.store, &body);
            (name, src)
        }
    };
    Some(Kernel { name, src })
}

pub fn fp8(
    gpu: &'static Gpu,
    x: &ArrayData,
    to_fp8: bool,
    out_dtype: Dtype,
) -> Result<Option<ArrayData>> {
    let direct = matches!(
        out_dtype,
        Dtype::Float16 | Dtype::Bfloat16 | Dtype::Float32 | Dtype::Float64
    );
    let x = if to_fp8 && encode_load(x.dtype).is_none() {
        cast(gpu, x, Dtype::Float32)?
    } else {
        row_contiguous(gpu, x)?
    };
    let Some(x) = x else { return Ok(None) };
    let out_dt = match (to_fp8, direct) {
        (true, _) => Dtype::Uint8,
        (false, true) => out_dtype,
        (false, false) => Dtype::Float32,
    };
    let Some(k) = kernel(x.dtype, (!to_fp8).then_some(out_dt)) else {
        return Ok(None);
    };
    let (out, out_ptr) = alloc_output(gpu, out_dt, &x.shape)?;
    let n = x.numel();
    if n > 0 {
        let name = k.name;
        let f = gpu.kernel(&name, || k.src)?;
        let (xp, n64) = (device_ptr(gpu, &x)?, n as i64);
        let mut b = gpu.launch(&f);
        b.arg(&xp).arg(&out_ptr).arg(&n64);
        unsafe { b.launch(launch_config(n)) }
            .map_err(|e| driver_err(&format!("launching {name}"), e))?;
    }
    if !to_fp8 && !direct {
        return cast(gpu, &out, out_dtype);
    }
    Ok(Some(out))
}
