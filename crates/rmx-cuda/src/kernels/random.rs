//! Random bits: threefry-2x32 (20 rounds), one thread per hash, with the CPU backend's
//! (and MLX's) layout of words per key (`backend/cpu/random.rs`), so a key gives the same
//! bits on both devices.

use super::elementwise::Kernel;
use super::prelude::PRELUDE;
use crate::device::{driver_err, Gpu};
use crate::memory::{alloc_output, device_ptr};
use cudarc::driver::LaunchConfig;
use rmx_core::{ArrayData, Dtype, Result};

const BLOCK: u32 = 256;

pub fn random_bits_kernel() -> Kernel {
    let name = "random_bits".to_string();
    let src = format!(
        r#"{PRELUDE}
    __device__ __forceinline__ void threefry(u32 k0, u32 k1, u32 c0, u32 c1, u32* x0, u32* x1) {{
      const u32 ks[3] = {{k0, k1, k0 ^ k1 ^ 0x1BD11BDAu}};
      const int rot[2][4] = {{{{13, 15, 26, 6}}, {{17, 29, 16, 24}}}};
      u32 a = c0 + ks[0], b = c1 + ks[1];
#pragma unroll
      for (int i = 0; i < 5; ++i) {{
#pragma unroll
        for (int r = 0; r < 4; ++r) {{ a += b; b = __funnelshift_l(b, b, rot[i & 1][r]) ^ a; }}
        a += ks[(i + 1) % 3];
        b += ks[(i + 2) % 3] + (u32)(i + 1);
      }}
      *x0 = a; *x1 = b;
    }}
    // word j of key k; the last word of a key may be partial (bytes past the key untouched)
    __device__ __forceinline__ void put(u8* out, i64 k, i64 j, u32 w, i64 bytes_per_key) {{
      u8* dst = out + k * bytes_per_key + 4 * j;
      const i64 n = bytes_per_key - 4 * j < 4 ? bytes_per_key - 4 * j : 4;
      if (n == 4 && (bytes_per_key & 3) == 0) {{ *(u32*)dst = w; return; }}
      for (int b = 0; b < n; ++b) dst[b] = (u8)(w >> (8 * b));
    }}
    extern "C" __global__ void {name}(const u32* keys, u8* out, i64 num_keys, i64 tasks, i64 words, i64 bytes_per_key) {{
      const i64 half = words / 2, odd = words % 2;
      for (i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x; t < num_keys * tasks; t += (i64)gridDim.x * blockDim.x) {{
        const i64 k = t / tasks, task = t % tasks;
        const u32 k0 = keys[2 * k], k1 = keys[2 * k + 1];
        u32 a, b;
        if (task < half) {{
          threefry(k0, k1, (u32)task, (u32)(task + half + odd), &a, &b);
          put(out, k, task, a, bytes_per_key);
          put(out, k, task + half + odd, b, bytes_per_key);
        }} else {{
          threefry(k0, k1, (u32)half, 0u, &a, &b);
          put(out, k, half, a, bytes_per_key);
        }}
      }}
    }}
"#
    );
    Kernel { name, src }
}

/// As `Backend::random_bits`; `None` when the keys are not a row-contiguous uint32 array.
pub fn random_bits(
    gpu: &'static Gpu,
    keys: &ArrayData,
    shape: &[usize],
    width: usize,
) -> Result<Option<ArrayData>> {
    if keys.dtype != Dtype::Uint32 || !keys.is_row_contiguous() {
        return Ok(None);
    }
    let dtype = match width {
        1 => Dtype::Uint8,
        2 => Dtype::Uint16,
        _ => Dtype::Uint32,
    };
    let (out, optr) = alloc_output(gpu, dtype, shape)?;
    let num_keys = keys.numel() / 2;
    if num_keys == 0 || out.numel() == 0 {
        return Ok(Some(out));
    }
    let bytes_per_key = out.numel() / num_keys * width;
    let words = bytes_per_key.div_ceil(4);
    let tasks = words / 2 + words % 2;
    let kptr = device_ptr(gpu, keys)?;
    let Kernel { name, src } = random_bits_kernel();
    let f = gpu.kernel(&name, || src)?;
    let (nk, nt, nw, bpk) = (
        num_keys as i64,
        tasks as i64,
        words as i64,
        bytes_per_key as i64,
    );
    let mut b = gpu.launch(&f);
    b.arg(&kptr).arg(&optr).arg(&nk).arg(&nt).arg(&nw).arg(&bpk);
    let cfg = LaunchConfig {
        grid_dim: (
            (num_keys * tasks)
                .div_ceil(BLOCK as usize)
                .clamp(1, 1 << 20) as u32,
            1,
            1,
        ),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    };
    unsafe { b.launch(cfg) }.map_err(|e| driver_err("launching random_bits", e))?;
    Ok(Some(out))
}
