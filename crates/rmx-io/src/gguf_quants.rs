//! GGML tensor types: their block sizes, the repacking of Q4_0/Q4_1/Q8_0 into MLX's affine
//! quantized format, and the conversion of other types to float16 (llama.cpp's reference
//! dequantization in f32, then round-to-nearest-even with NaN made canonical, as MLX does).

use half::f16;
use rmx_core::{runtime_err, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    Q8K,
    I8,
    I16,
    I32,
    I64,
    F64,
    Bf16,
    /// A type rmx knows the size of but does not decode (IQ*, TQ*, MXFP4, ...).
    Other(u32),
}

impl GgmlType {
    pub fn from_id(id: u32) -> GgmlType {
        use GgmlType::*;
        match id {
            0 => F32,
            1 => F16,
            2 => Q4_0,
            3 => Q4_1,
            6 => Q5_0,
            7 => Q5_1,
            8 => Q8_0,
            10 => Q2K,
            11 => Q3K,
            12 => Q4K,
            13 => Q5K,
            14 => Q6K,
            15 => Q8K,
            24 => I8,
            25 => I16,
            26 => I32,
            27 => I64,
            28 => F64,
            30 => Bf16,
            other => Other(other),
        }
    }

    pub fn id(self) -> u32 {
        use GgmlType::*;
        match self {
            F32 => 0,
            F16 => 1,
            Q4_0 => 2,
            Q4_1 => 3,
            Q5_0 => 6,
            Q5_1 => 7,
            Q8_0 => 8,
            Q2K => 10,
            Q3K => 11,
            Q4K => 12,
            Q5K => 13,
            Q6K => 14,
            Q8K => 15,
            I8 => 24,
            I16 => 25,
            I32 => 26,
            I64 => 27,
            F64 => 28,
            Bf16 => 30,
            Other(i) => i,
        }
    }

    pub fn name(self) -> String {
        use GgmlType::*;
        match self {
            Q2K => "Q2_K".into(),
            Q3K => "Q3_K".into(),
            Q4K => "Q4_K".into(),
            Q5K => "Q5_K".into(),
            Q6K => "Q6_K".into(),
            Q8K => "Q8_K".into(),
            Bf16 => "BF16".into(),
            Other(i) => match i {
                // Q8_1 is an intermediate of llama.cpp's dot products; tools disagree on its
                // block size (36 or 40 bytes), so it is not decoded.
                9 => "Q8_1".into(),
                16 => "IQ2_XXS".into(),
                17 => "IQ2_XS".into(),
                18 => "IQ3_XXS".into(),
                19 => "IQ1_S".into(),
                20 => "IQ4_NL".into(),
                21 => "IQ3_S".into(),
                22 => "IQ2_S".into(),
                23 => "IQ4_XS".into(),
                29 => "IQ1_M".into(),
                34 => "TQ1_0".into(),
                35 => "TQ2_0".into(),
                39 => "MXFP4".into(),
                _ => format!("type {i}"),
            },
            t => format!("{t:?}"),
        }
    }

    /// (elements per block, bytes per block), from ggml's type table.
    pub fn block(self) -> Option<(usize, usize)> {
        use GgmlType::*;
        Some(match self {
            F32 | I32 => (1, 4),
            F16 | I16 | Bf16 => (1, 2),
            I8 => (1, 1),
            I64 | F64 => (1, 8),
            Q4_0 => (32, 18),
            Q4_1 => (32, 20),
            Q5_0 => (32, 22),
            Q5_1 => (32, 24),
            Q8_0 => (32, 34),
            Q2K => (256, 84),
            Q3K => (256, 110),
            Q4K => (256, 144),
            Q5K => (256, 176),
            Q6K => (256, 210),
            Q8K => (256, 292),
            Other(i) => match i {
                16 => (256, 66),
                17 => (256, 74),
                18 => (256, 98),
                19 => (256, 50),
                20 => (32, 18),
                21 => (256, 110),
                22 => (256, 82),
                23 => (256, 136),
                29 => (256, 56),
                34 => (256, 54),
                35 => (256, 66),
                39 => (32, 17),
                _ => return None,
            },
        })
    }
}

fn h(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// float32 → float16 as MLX's GGUF loader rounds: nearest-even, every NaN → ±0x7e00.
pub fn to_half(x: f32) -> f16 {
    if x.is_nan() {
        f16::from_bits(0x7e00 | ((x.to_bits() >> 16) as u16 & 0x8000))
    } else {
        f16::from_f32(x)
    }
}

/// Splits `bytes` into blocks of `size`; the caller has checked the length.
fn blocks(bytes: &[u8], size: usize) -> Result<std::slice::ChunksExact<'_, u8>> {
    if !bytes.len().is_multiple_of(size) {
        return Err(runtime_err!(
            "[load_gguf] {} bytes is not a whole number of {size}-byte blocks",
            bytes.len()
        ));
    }
    Ok(bytes.chunks_exact(size))
}

/// Q4_0/Q4_1/Q8_0 blocks of 32 → MLX's affine quantization with group size 32:
/// `w = scale * q + bias`, q packed little-end first into uint32 words (4 or 8 bits).
/// Runs over the blocks in parallel, writing each block's words, scale and bias in place
/// (a model's embedding table is converted when first used, on the critical path).
pub fn unpack_affine(t: GgmlType, bytes: &[u8]) -> Result<(Vec<u32>, Vec<f16>, Vec<f16>)> {
    use rayon::prelude::*;
    let (_, size) = t.block().expect("a known type");
    if !matches!(t, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0) {
        return Err(runtime_err!("[load_gguf] {t:?} is not an affine type"));
    }
    let n = blocks(bytes, size)?.len();
    let words_per_block = if t == GgmlType::Q8_0 { 8 } else { 4 };
    let mut words = vec![0u32; n * words_per_block];
    let mut scales = vec![f16::ZERO; n];
    let mut biases = vec![f16::ZERO; n];
    const PER_TASK: usize = 2048;
    words
        .par_chunks_mut(PER_TASK * words_per_block)
        .zip(scales.par_chunks_mut(PER_TASK))
        .zip(biases.par_chunks_mut(PER_TASK))
        .zip(bytes.par_chunks(PER_TASK * size))
        .for_each(|(((w, s), bi), src)| {
            let out = w.chunks_exact_mut(words_per_block).zip(s).zip(bi);
            for (((w, s), bias), b) in out.zip(src.chunks_exact(size)) {
                let d = f16::from_le_bytes([b[0], b[1]]);
                *s = d;
                let word = |q: [u8; 4]| u32::from_le_bytes(q);
                if t == GgmlType::Q8_0 {
                    *bias = f16::from_f32(-128.0 * d.to_f32());
                    // int8 q = uint8 (q + 128) - 128: flip the top bit.
                    for (wi, c) in w.iter_mut().zip(b[2..34].chunks_exact(4)) {
                        *wi = word([c[0], c[1], c[2], c[3]]) ^ 0x8080_8080;
                    }
                } else {
                    let qs = if t == GgmlType::Q4_0 {
                        *bias = f16::from_f32(-8.0 * d.to_f32());
                        &b[2..18]
                    } else {
                        *bias = f16::from_le_bytes([b[2], b[3]]);
                        &b[4..20]
                    };
                    // ggml keeps weight j in the low nibble of qs[j] and weight j+16 in
                    // the high one: the first 16 weights are the low nibbles, in order.
                    let pack = |j: usize, high: bool| {
                        if high {
                            (qs[j] >> 4) | (qs[j + 1] & 0xf0)
                        } else {
                            (qs[j] & 0x0f) | (qs[j + 1] << 4)
                        }
                    };
                    for (i, wi) in w.iter_mut().enumerate() {
                        let (j, high) = ((i % 2) * 8, i >= 2);
                        *wi = word([
                            pack(j, high),
                            pack(j + 2, high),
                            pack(j + 4, high),
                            pack(j + 6, high),
                        ]);
                    }
                }
            }
        });
    Ok((words, scales, biases))
}

/// Q4_K/Q5_K's 6-bit scale and min number `j` of the 12 packed bytes.
fn scale_min_k4(j: usize, q: &[u8]) -> (f32, f32) {
    if j < 4 {
        ((q[j] & 63) as f32, (q[j + 4] & 63) as f32)
    } else {
        (
            ((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4)) as f32,
            ((q[j + 4] >> 4) | ((q[j] >> 6) << 4)) as f32,
        )
    }
}

/// Dequantizes to float32 in llama.cpp's reference order of operations (indexed loops
/// kept as in the reference, so the two read side by side).
#[allow(clippy::needless_range_loop)]
pub fn to_f32(t: GgmlType, bytes: &[u8]) -> Result<Vec<f32>> {
    use GgmlType::*;
    let (per, size) = t
        .block()
        .filter(|_| !matches!(t, Other(_)))
        .ok_or_else(|| runtime_err!("[load_gguf] Unsupported GGUF tensor type {}", t.name()))?;
    let mut y: Vec<f32> = Vec::with_capacity(bytes.len() / size * per);
    for b in blocks(bytes, size)? {
        match t {
            F32 => y.push(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            F16 => y.push(h(b, 0)),
            Bf16 => y.push(f32::from_bits(
                (u16::from_le_bytes([b[0], b[1]]) as u32) << 16,
            )),
            I8 => y.push(b[0] as i8 as f32),
            I16 => y.push(i16::from_le_bytes([b[0], b[1]]) as f32),
            I32 => y.push(i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32),
            I64 => y.push(i64::from_le_bytes(b.try_into().unwrap()) as f32),
            F64 => y.push(f64::from_le_bytes(b.try_into().unwrap()) as f32),
            Q4_0 | Q4_1 => {
                let (d, m, qs) = if t == Q4_0 {
                    (h(b, 0), None, &b[2..18])
                } else {
                    (h(b, 0), Some(h(b, 2)), &b[4..20])
                };
                let v = |q: u8| match m {
                    None => (q as i32 - 8) as f32 * d,
                    Some(m) => q as f32 * d + m,
                };
                let lo: Vec<f32> = qs.iter().map(|&q| v(q & 0xf)).collect();
                y.extend(lo);
                y.extend(qs.iter().map(|&q| v(q >> 4)));
            }
            Q5_0 | Q5_1 => {
                let (d, m, o) = if t == Q5_0 {
                    (h(b, 0), None, 2)
                } else {
                    (h(b, 0), Some(h(b, 2)), 4)
                };
                let qh = u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
                let qs = &b[o + 4..o + 20];
                let v = |q: u32| match m {
                    None => (q as i32 - 16) as f32 * d,
                    Some(m) => q as f32 * d + m,
                };
                let mut out = [0f32; 32];
                for j in 0..16 {
                    let xh0 = ((qh >> j) << 4) & 0x10;
                    let xh1 = (qh >> (j + 12)) & 0x10;
                    out[j] = v((qs[j] & 0xf) as u32 | xh0);
                    out[j + 16] = v((qs[j] >> 4) as u32 | xh1);
                }
                y.extend_from_slice(&out);
            }
            Q8_0 => {
                let d = h(b, 0);
                y.extend(b[2..34].iter().map(|&q| q as i8 as f32 * d));
            }
            Q8K => {
                let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                y.extend(b[4..260].iter().map(|&q| d * q as i8 as f32));
            }
            Q2K => {
                let (scales, qs) = (&b[0..16], &b[16..80]);
                let (d, min) = (h(b, 80), h(b, 82));
                let mut is = 0;
                for n in 0..2 {
                    let q = &qs[n * 32..n * 32 + 32];
                    for shift in [0, 2, 4, 6] {
                        for half in 0..2 {
                            let sc = scales[is];
                            is += 1;
                            let dl = d * (sc & 0xf) as f32;
                            let ml = min * (sc >> 4) as f32;
                            for l in 0..16 {
                                y.push(dl * ((q[l + 16 * half] >> shift) & 3) as f32 - ml);
                            }
                        }
                    }
                }
            }
            Q3K => {
                let (hm, qs, sc_raw) = (&b[0..32], &b[32..96], &b[96..108]);
                let d_all = h(b, 108);
                let mut aux = [0u32; 4];
                for (i, a) in aux.iter_mut().take(3).enumerate() {
                    *a = u32::from_le_bytes(sc_raw[4 * i..4 * i + 4].try_into().unwrap());
                }
                let (k1, k2) = (0x0303_0303u32, 0x0f0f_0f0fu32);
                let tmp = aux[2];
                aux[2] = ((aux[0] >> 4) & k2) | (((tmp >> 4) & k1) << 4);
                aux[3] = ((aux[1] >> 4) & k2) | (((tmp >> 6) & k1) << 4);
                aux[0] = (aux[0] & k2) | ((tmp & k1) << 4);
                aux[1] = (aux[1] & k2) | (((tmp >> 2) & k1) << 4);
                let scales: Vec<i8> = aux
                    .iter()
                    .flat_map(|a| a.to_le_bytes())
                    .map(|x| x as i8)
                    .collect();
                let mut is = 0;
                let mut m = 1u8;
                for n in 0..2 {
                    let q = &qs[n * 32..n * 32 + 32];
                    for shift in [0, 2, 4, 6] {
                        for half in 0..2 {
                            let dl = d_all * (scales[is] as i32 - 32) as f32;
                            is += 1;
                            for l in 0..16 {
                                let i = l + 16 * half;
                                let qv = ((q[i] >> shift) & 3) as i32
                                    - if hm[i] & m != 0 { 0 } else { 4 };
                                y.push(dl * qv as f32);
                            }
                        }
                        m = m.wrapping_shl(1);
                    }
                }
            }
            Q4K | Q5K => {
                let (d, min) = (h(b, 0), h(b, 2));
                let scales = &b[4..16];
                let (qh, ql) = if t == Q5K {
                    (Some(&b[16..48]), &b[48..176])
                } else {
                    (None, &b[16..144])
                };
                let (mut u1, mut u2) = (1u8, 2u8);
                for j in 0..4 {
                    let (sc1, m1) = scale_min_k4(2 * j, scales);
                    // MLX 0.32.4 (gguflib) decodes Q4_K's high-nibble half with the scale and
                    // min of the low half instead of its own (llama.cpp uses 2j+1). rmx matches
                    // MLX bit for bit; Q5_K, which MLX refuses, follows llama.cpp.
                    let (sc2, m2) = scale_min_k4(2 * j + usize::from(t == Q5K), scales);
                    let (d1, m1) = (d * sc1, min * m1);
                    let (d2, m2) = (d * sc2, min * m2);
                    let q = &ql[32 * j..32 * j + 32];
                    let hi = |l: usize, u: u8| match qh {
                        Some(qh) if qh[l] & u != 0 => 16u8,
                        _ => 0,
                    };
                    for l in 0..32 {
                        y.push(d1 * ((q[l] & 0xf) + hi(l, u1)) as f32 - m1);
                    }
                    for l in 0..32 {
                        y.push(d2 * ((q[l] >> 4) + hi(l, u2)) as f32 - m2);
                    }
                    u1 = u1.wrapping_shl(2);
                    u2 = u2.wrapping_shl(2);
                }
            }
            Q6K => {
                let d = h(b, 208);
                let mut out = [0f32; 256];
                for n in 0..2 {
                    let ql = &b[64 * n..64 * n + 64];
                    let qh = &b[128 + 32 * n..128 + 32 * n + 32];
                    let sc = &b[192 + 8 * n..192 + 8 * n + 8];
                    let y = &mut out[128 * n..128 * n + 128];
                    for l in 0..32 {
                        let is = l / 16;
                        let q1 = ((ql[l] & 0xf) | ((qh[l] & 3) << 4)) as i32 - 32;
                        let q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                        let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                        let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                        y[l] = d * sc[is] as i8 as f32 * q1 as f32;
                        y[l + 32] = d * sc[is + 2] as i8 as f32 * q2 as f32;
                        y[l + 64] = d * sc[is + 4] as i8 as f32 * q3 as f32;
                        y[l + 96] = d * sc[is + 6] as i8 as f32 * q4 as f32;
                    }
                }
                y.extend_from_slice(&out);
            }
            Other(_) => unreachable!("filtered above"),
        }
    }
    Ok(y)
}

/// Any decodable type → float16 (what MLX does for types it does not keep packed).
pub fn to_f16(t: GgmlType, bytes: &[u8]) -> Result<Vec<f16>> {
    Ok(to_f32(t, bytes)?.into_iter().map(to_half).collect())
}
