//! fp8 e4m3 conversions, bit for bit MLX's CPU recipe (`ToFP8`/`FromFP8` in MLX's
//! `backend/cpu/unary_ops.h`): round to nearest even, saturating at ±448 (0x7E), so
//! inf and NaN become ±448 as in MLX; decoding goes through float16 times 256.

use crate::array::ArrayData;
use crate::dtype::Dtype;
use crate::error::Result;
use half::f16;
use rayon::prelude::*;

const PAR_MIN: usize = 1 << 16;

/// One float32 to its e4m3 code.
pub fn f32_to_fp8(f: f32) -> u8 {
    let fp8_max: u32 = 543 << 21;
    let denorm_mask: u32 = 141 << 23;
    let mut bits = f.to_bits();
    let sign = bits & 0x8000_0000;
    bits ^= sign;
    let result = if bits >= fp8_max {
        0x7E
    } else if bits < (121 << 23) {
        // subnormal range: let the float adder round at the right bit
        let low = (f32::from_bits(bits) + f32::from_bits(denorm_mask)).to_bits();
        low.wrapping_sub(denorm_mask) as u8
    } else {
        let mant_odd = (bits >> 20) & 1;
        let rebias = ((7i32 - 127) as u32) << 23;
        let high = bits
            .wrapping_add(rebias.wrapping_add(0x7FFFF))
            .wrapping_add(mant_odd);
        (high >> 20) as u8
    };
    result | (sign >> 24) as u8
}

/// One e4m3 code to float32 (exact).
pub fn fp8_to_f32(x: u8) -> f32 {
    let v = (x & 127) as u16;
    let sign = (((x >> 7) & 1) as u16) << 15;
    let u = (v << 7) | (((v + 1) >> 7) << 14) | sign;
    f16::from_bits(u).to_f32() * 256.0
}

fn map<A: Copy + Sync, B: Send>(v: &[A], f: impl Fn(A) -> B + Sync) -> Vec<B> {
    if v.len() >= PAR_MIN {
        v.par_iter().map(|&a| f(a)).collect()
    } else {
        v.iter().map(|&a| f(a)).collect()
    }
}

pub fn convert(x: &ArrayData, to_fp8: bool, out_dtype: Dtype) -> Result<ArrayData> {
    if to_fp8 {
        let x32 = if x.dtype == Dtype::Float32 {
            x.clone()
        } else {
            super::copy::cast(x, Dtype::Float32)?
        };
        let codes = map(&x32.to_vec::<f32>(), f32_to_fp8);
        ArrayData::from_slice(&codes, &x.shape)
    } else {
        // straight to the requested type (every e4m3 value is exact in each of them)
        let codes = x.to_vec::<u8>();
        match out_dtype {
            Dtype::Float16 => {
                ArrayData::from_slice(&map(&codes, |c| f16::from_f32(fp8_to_f32(c))), &x.shape)
            }
            Dtype::Bfloat16 => ArrayData::from_slice(
                &map(&codes, |c| crate::element::bf16_from_f32(fp8_to_f32(c))),
                &x.shape,
            ),
            Dtype::Float64 => {
                ArrayData::from_slice(&map(&codes, |c| fp8_to_f32(c) as f64), &x.shape)
            }
            _ => {
                let out = ArrayData::from_slice(&map(&codes, fp8_to_f32), &x.shape)?;
                if out_dtype == Dtype::Float32 {
                    Ok(out)
                } else {
                    super::copy::cast(&out, out_dtype)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_finite_code() {
        for c in 0u8..=255 {
            if c & 0x7F == 0x7F {
                continue; // the NaN codes
            }
            assert_eq!(f32_to_fp8(fp8_to_f32(c)), c, "code {c:#x}");
        }
        assert_eq!(fp8_to_f32(0x7E), 448.0);
        assert!(fp8_to_f32(0x7F).is_nan());
        assert_eq!(f32_to_fp8(f32::INFINITY), 0x7E);
        assert_eq!(f32_to_fp8(f32::NEG_INFINITY), 0xFE);
    }
}
