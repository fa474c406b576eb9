//! Random bits: the threefry-2x32 (20 rounds) counter-based hash, laid out exactly as
//! MLX lays it out, so the same key gives the same bits in rmx and MLX.

use super::loops::{par_range, SendPtr};
use crate::array::ArrayData;
use crate::dtype::Dtype;
use crate::error::Result;

/// The threefry-2x32 hash of counter `(c0, c1)` under key `(k0, k1)`.
pub fn threefry2x32(key: (u32, u32), counter: (u32, u32)) -> (u32, u32) {
    const ROTATIONS: [[u32; 4]; 2] = [[13, 15, 26, 6], [17, 29, 16, 24]];
    let ks = [key.0, key.1, key.0 ^ key.1 ^ 0x1BD1_1BDA];
    let (mut a, mut b) = (counter.0.wrapping_add(ks[0]), counter.1.wrapping_add(ks[1]));
    for i in 0..5 {
        for r in ROTATIONS[i % 2] {
            a = a.wrapping_add(b);
            b = b.rotate_left(r) ^ a;
        }
        a = a.wrapping_add(ks[(i + 1) % 3]);
        b = b.wrapping_add(ks[(i + 2) % 3]).wrapping_add(i as u32 + 1);
    }
    (a, b)
}

/// The 32-bit words one key produces, as MLX arranges them: with `w` words, half of
/// them `h = w / 2`, and `o = w % 2`, the hash of counter `(j, j + h + o)` fills words
/// `j` and `j + h + o`; an odd middle word `h` is the first half of the hash of `(h, 0)`.
/// `task` runs over `0..h + o`; it returns `(index, word)` pairs to store.
fn key_task(key: (u32, u32), words: usize, task: usize) -> [(usize, Option<u32>); 2] {
    let (half, odd) = (words / 2, words % 2);
    if task < half {
        let (a, b) = threefry2x32(key, (task as u32, (task + half + odd) as u32));
        [(task, Some(a)), (task + half + odd, Some(b))]
    } else {
        let (a, _) = threefry2x32(key, (half as u32, 0));
        [(half, Some(a)), (0, None)]
    }
}

/// Random bits for each key of `keys` (`[..., 2]` uint32): the output (`shape`, of
/// `width` bytes per element: uint8/16/32) is split into equal runs, one per key.
pub fn random_bits(keys: &ArrayData, shape: &[usize], width: usize) -> Result<ArrayData> {
    let dtype = match width {
        1 => Dtype::Uint8,
        2 => Dtype::Uint16,
        _ => Dtype::Uint32,
    };
    let out = ArrayData::alloc(dtype, shape)?;
    let kv = keys.to_vec::<u32>();
    let num_keys = kv.len() / 2;
    if num_keys == 0 || out.numel() == 0 {
        return Ok(out);
    }
    let bytes_per_key = out.numel() / num_keys * width;
    let words = bytes_per_key.div_ceil(4);
    let tasks = words / 2 + words % 2;
    let base = SendPtr(unsafe { out.ptr_mut::<u8>() });
    par_range(num_keys * tasks, |s, e| {
        for t in s..e {
            let k = t / tasks;
            let key = (kv[2 * k], kv[2 * k + 1]);
            for (j, w) in key_task(key, words, t % tasks) {
                let Some(w) = w else { continue };
                // the last word of a key may be partial; bytes past the key are not written
                let n = 4.min(bytes_per_key - 4 * j);
                let bytes = w.to_ne_bytes();
                unsafe {
                    let dst = base.get().add(k * bytes_per_key + 4 * j);
                    std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, n);
                }
            }
        }
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threefry_known_answer() {
        // Random123's known-answer test for threefry2x32_20 with zero key and counter.
        assert_eq!(threefry2x32((0, 0), (0, 0)), (0x6b20_0159, 0x99ba_4efe));
        assert_eq!(
            threefry2x32((0xffff_ffff, 0xffff_ffff), (0xffff_ffff, 0xffff_ffff)),
            (0x1cb9_96fc, 0xbb00_2be7)
        );
    }
}
