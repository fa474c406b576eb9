//! Key/value caches, one per layer: a standard cache grown in steps (so appending a token
//! does not reallocate every time), a rotating cache bounded to `--max-kv-size` tokens
//! (the first `keep` tokens stay, the oldest others are dropped), and a quantized cache
//! (`--kv-bits`) storing keys and values in MLX's affine format.

use crate::error::Result;
use crate::invalid;
use rmx_core::backend::ScatterMode;
use rmx_core::{ops, Array, Dtype};

/// How a cache stores what it has seen.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum CacheKind {
    #[default]
    Standard,
    /// At most `max_size` tokens; the first `keep` (attention sinks) always stay.
    Rotating { max_size: usize, keep: usize },
    /// Keys and values quantized to `bits` in groups of `group_size` along the head dim.
    Quantized { bits: usize, group_size: usize },
}

impl CacheKind {
    pub fn from_flags(max_kv_size: Option<usize>, kv_bits: Option<usize>) -> Result<CacheKind> {
        match (max_kv_size, kv_bits) {
            (Some(_), Some(_)) => Err(invalid!("--max-kv-size and --kv-bits cannot be combined")),
            (Some(m), None) if m < 8 => Err(invalid!("--max-kv-size must be at least 8, got {m}")),
            (Some(m), None) => Ok(CacheKind::Rotating {
                max_size: m,
                keep: 4,
            }),
            (None, Some(b)) if ![2, 3, 4, 5, 6, 8].contains(&b) => Err(invalid!(
                "--kv-bits must be one of 2, 3, 4, 5, 6, 8, got {b}"
            )),
            (None, Some(b)) => Ok(CacheKind::Quantized {
                bits: b,
                group_size: 64,
            }),
            (None, None) => Ok(CacheKind::Standard),
        }
    }
}

/// Where a decode step of fixed shapes writes (`static_decode.rs`): the position is a
/// device-held int32 scalar, so one graph of the step serves every position and can be
/// replayed (a CUDA graph). Attention reads the first `window` stored tokens under `mask`.
#[derive(Clone)]
pub struct FixedStep {
    pub pos: Array,
    /// bool (1, 1, 1, window): key position <= pos.
    pub mask: Array,
    pub window: usize,
    /// `pos` as a dense (1, kv heads, 1, head dim) array, the scatter's indices for one
    /// token's keys or values (built once per step instead of once per layer and array).
    pub index: Option<Array>,
}

/// One layer's cache. Keys and values are (B, H, tokens, D).
pub struct KvCache {
    kind: CacheKind,
    /// Float storage with room to grow (standard and rotating caches).
    keys: Option<Array>,
    values: Option<Array>,
    /// Packed storage (quantized cache): [codes, scales, biases] for keys and for values.
    qkeys: Option<[Array; 3]>,
    qvalues: Option<[Array; 3]>,
    /// Tokens seen: the position the next token gets (RoPE offset).
    pub offset: usize,
    /// Tokens stored (less than `offset` once a rotating cache has dropped some).
    len: usize,
    step: usize,
    /// Tokens the first allocation holds at least (`reserve` before any update).
    min_capacity: usize,
    /// Set while decoding at a device-held position (see `FixedStep`).
    fixed: Option<FixedStep>,
}

impl Default for KvCache {
    fn default() -> Self {
        KvCache::new(CacheKind::Standard)
    }
}

fn dims(a: &Array) -> Vec<i64> {
    a.shape().iter().map(|&v| v as i64).collect()
}

/// `a[:, :, start:stop]`.
fn tokens(a: &Array, start: usize, stop: usize) -> Result<Array> {
    let mut lo = vec![0i64; a.ndim()];
    lo[2] = start as i64;
    let mut hi = dims(a);
    hi[2] = stop as i64;
    Ok(ops::slice(a, &lo, &hi, None)?)
}

impl KvCache {
    pub fn new(kind: CacheKind) -> KvCache {
        KvCache {
            kind,
            keys: None,
            values: None,
            qkeys: None,
            qvalues: None,
            offset: 0,
            len: 0,
            step: 256,
            min_capacity: 0,
            fixed: None,
        }
    }

    /// RoPE's position offset for the next tokens: the device-held position of a fixed
    /// step, else the host's count.
    pub fn rope_offset(&self) -> Result<Array> {
        Ok(match &self.fixed {
            Some(f) => f.pos.clone(),
            None => Array::from_slice(&[self.offset as i32], &[])?,
        })
    }

    /// The attention mask of a fixed step (None otherwise: the keys are exactly those seen).
    pub fn fixed_mask(&self) -> Option<&Array> {
        self.fixed.as_ref().map(|f| &f.mask)
    }

    /// Makes `update` write one token at `step.pos` and return the first `step.window`
    /// stored tokens, without moving the host's counts (`advance` does); `None` goes back.
    /// A fixed step needs a standard cache with storage for the window (`reserve`).
    pub fn set_fixed(&mut self, step: Option<FixedStep>) -> Result<()> {
        if let Some(f) = &step {
            let capacity = self.capacity();
            if self.kind != CacheKind::Standard || f.window > capacity {
                return Err(invalid!(
                    "a fixed-position step needs a standard cache with room for {} tokens (it has {capacity})",
                    f.window
                ));
            }
        }
        self.fixed = step;
        Ok(())
    }

    /// Counts `n` tokens written by fixed steps.
    pub fn advance(&mut self, n: usize) {
        self.offset += n;
        self.len += n;
    }

    /// Tokens the storage holds room for.
    pub fn capacity(&self) -> usize {
        self.keys.as_ref().map_or(0, |a| a.shape()[2])
    }

    /// Grows a standard cache's storage to hold `tokens`, rounded up to its step; before
    /// the first update, sizes the storage that update allocates instead. (A generation
    /// reserves what it may reach, so growing never copies the whole cache mid-way: with
    /// a 512-token prompt that was 0.44 of 12.6 ms per token over 128 tokens on 2 cores.)
    pub fn reserve(&mut self, tokens: usize) -> Result<()> {
        let capacity = self.capacity();
        if tokens <= capacity || self.kind != CacheKind::Standard {
            return Ok(());
        }
        if self.keys.is_none() && self.values.is_none() {
            self.min_capacity = tokens;
            return Ok(());
        }
        let new_cap = tokens.div_ceil(self.step) * self.step;
        for buf in [&mut self.keys, &mut self.values] {
            let Some(old) = buf.as_ref() else {
                return Err(invalid!("reserve needs a cache that has stored tokens"));
            };
            let mut shape = dims(old);
            shape[2] = (new_cap - capacity) as i64;
            let fresh = ops::zeros(&shape, old.dtype())?;
            *buf = Some(ops::concatenate(&[old.clone(), fresh], Some(2))?);
        }
        Ok(())
    }

    pub fn kind(&self) -> CacheKind {
        self.kind
    }

    /// Appends k, v (B, H, L, D); returns every key and value the new queries attend to.
    pub fn update(&mut self, k: &Array, v: &Array) -> Result<(Array, Array)> {
        if let Some(f) = self.fixed.clone() {
            if k.shape()[2] != 1 {
                return Err(invalid!("a fixed-position step takes one token"));
            }
            return self.update_fixed(&f, k, v);
        }
        let l = k.shape()[2];
        let out = match self.kind {
            CacheKind::Quantized { bits, group_size } => {
                self.update_quantized(k, v, bits, group_size)?
            }
            _ => self.update_float(k, v)?,
        };
        self.offset += l;
        if let CacheKind::Rotating { max_size, keep } = self.kind {
            if self.len > max_size {
                self.trim(max_size, keep)?;
            }
        }
        Ok(out)
    }

    /// In a fixed step, `f(k storage, v storage, position)` makes this step's queries and
    /// the storage with its key and value written (one op: `fast::rope_kv_update`); the
    /// cache keeps that storage and returns the queries and the window. `None` (and `f` not
    /// called) outside a fixed step or when `dtype` is not the storage's.
    pub fn update_fixed_with(
        &mut self,
        dtype: Dtype,
        f: impl FnOnce(&Array, &Array, &Array) -> Result<(Array, Array, Array)>,
    ) -> Result<Option<(Array, Array, Array)>> {
        let (Some(fx), Some(kbuf), Some(vbuf)) = (&self.fixed, &self.keys, &self.values) else {
            return Ok(None);
        };
        if kbuf.dtype() != dtype || vbuf.dtype() != dtype {
            return Ok(None);
        }
        let window = fx.window;
        let (q, keys, values) = f(kbuf, vbuf, &fx.pos)?;
        let out = (q, tokens(&keys, 0, window)?, tokens(&values, 0, window)?);
        // the old storage's handles go now, so the op can write it in place
        self.keys = Some(keys);
        self.values = Some(values);
        Ok(Some(out))
    }

    /// Writes one token at the fixed step's device-held position (a scatter that updates
    /// the storage in place once nothing else holds it) and returns the window.
    fn update_fixed(&mut self, f: &FixedStep, k: &Array, v: &Array) -> Result<(Array, Array)> {
        let put = |buf: &Array, new: &Array| -> Result<Array> {
            let at = match &f.index {
                Some(i) if i.shape() == new.shape() => i.clone(),
                _ => ops::broadcast_to(&ops::reshape(&f.pos, &[1, 1, 1, 1])?, new.shape())?,
            };
            Ok(ops::scatter_along_axis(
                ScatterMode::Set,
                buf,
                &at,
                &ops::astype(new, buf.dtype())?,
                2,
            )?)
        };
        let keys = put(self.keys.as_ref().expect("checked by set_fixed"), k)?;
        let values = put(self.values.as_ref().expect("checked by set_fixed"), v)?;
        let out = (tokens(&keys, 0, f.window)?, tokens(&values, 0, f.window)?);
        self.keys = Some(keys);
        self.values = Some(values);
        Ok(out)
    }

    fn update_float(&mut self, k: &Array, v: &Array) -> Result<(Array, Array)> {
        let l = k.shape()[2];
        let needed = self.len + l;
        let capacity = self.keys.as_ref().map_or(0, |a| a.shape()[2]);
        if needed > capacity {
            let new_cap = needed.max(self.min_capacity).div_ceil(self.step) * self.step;
            let grow = |old: &Option<Array>, new: &Array| -> Result<Array> {
                let mut shape = dims(new);
                shape[2] = (new_cap - capacity) as i64;
                let fresh = ops::zeros(&shape, new.dtype())?;
                Ok(match old {
                    Some(o) => ops::concatenate(&[o.clone(), fresh], Some(2))?,
                    None => fresh,
                })
            };
            self.keys = Some(grow(&self.keys, k)?);
            self.values = Some(grow(&self.values, v)?);
        }
        let put = |buf: &Array, new: &Array| -> Result<Array> {
            let mut start = vec![0i64; 4];
            start[2] = self.len as i64;
            let mut stop = dims(new);
            stop[2] = needed as i64;
            Ok(ops::slice_update(buf, new, &start, &stop, None)?)
        };
        let keys = put(self.keys.as_ref().expect("allocated above"), k)?;
        let values = put(self.values.as_ref().expect("allocated above"), v)?;
        self.len = needed;
        let out = (tokens(&keys, 0, needed)?, tokens(&values, 0, needed)?);
        self.keys = Some(keys);
        self.values = Some(values);
        Ok(out)
    }

    /// Keeps the first `keep` and the last `max_size - keep` stored tokens.
    fn trim(&mut self, max_size: usize, keep: usize) -> Result<()> {
        let drop_to = self.len - (max_size - keep);
        for buf in [&mut self.keys, &mut self.values] {
            let a = buf.as_ref().expect("a rotating cache stores floats");
            let kept = ops::concatenate(
                &[tokens(a, 0, keep)?, tokens(a, drop_to, self.len)?],
                Some(2),
            )?;
            *buf = Some(kept);
        }
        self.len = max_size;
        Ok(())
    }

    fn update_quantized(
        &mut self,
        k: &Array,
        v: &Array,
        bits: usize,
        group_size: usize,
    ) -> Result<(Array, Array)> {
        let d = k.shape()[3];
        let gs = if d.is_multiple_of(group_size) {
            group_size
        } else {
            32
        };
        if !d.is_multiple_of(gs) {
            return Err(invalid!(
                "--kv-bits needs a head dim divisible by 32, got {d}"
            ));
        }
        let quant = |x: &Array| -> Result<[Array; 3]> {
            let mut p = ops::quantized::quantize(x, Some(gs as i64), Some(bits as i64), "affine")?;
            let b = p.pop().expect("three parts");
            let s = p.pop().expect("three parts");
            let q = p.pop().expect("three parts");
            Ok([q, s, b])
        };
        let append = |old: &Option<[Array; 3]>, new: [Array; 3]| -> Result<[Array; 3]> {
            Ok(match old {
                None => new,
                Some(o) => {
                    let cat = |i: usize| ops::concatenate(&[o[i].clone(), new[i].clone()], Some(2));
                    [cat(0)?, cat(1)?, cat(2)?]
                }
            })
        };
        let qk = append(&self.qkeys, quant(k)?)?;
        let qv = append(&self.qvalues, quant(v)?)?;
        let deq = |p: &[Array; 3], like: &Array| -> Result<Array> {
            Ok(ops::quantized::dequantize(
                &p[0],
                &p[1],
                Some(&p[2]),
                Some(gs as i64),
                Some(bits as i64),
                "affine",
                Some(like.dtype()),
            )?)
        };
        let out = (deq(&qk, k)?, deq(&qv, v)?);
        self.len += k.shape()[2];
        self.qkeys = Some(qk);
        self.qvalues = Some(qv);
        Ok(out)
    }

    /// Forgets everything after the first `to` tokens; false when this cache cannot
    /// (a rotating cache that has dropped tokens, or a quantized one), then it is cleared.
    pub fn rewind(&mut self, to: usize) -> bool {
        let rewindable =
            self.kind == CacheKind::Standard || (self.offset == self.len && self.qkeys.is_none());
        if rewindable && to <= self.len {
            self.offset = to;
            self.len = to;
            return true;
        }
        *self = KvCache::new(self.kind);
        to == 0
    }

    /// The positions of the `stored` keys the last `update` returned, oldest first: all
    /// of them until a rotating cache drops some, then its `keep` first and a recent tail.
    pub fn key_positions(&self, stored: usize) -> Vec<usize> {
        if stored >= self.offset {
            return (0..stored).collect();
        }
        let keep = match self.kind {
            CacheKind::Rotating { keep, .. } => keep.min(stored),
            _ => 0,
        };
        (0..keep)
            .chain(self.offset - (stored - keep)..self.offset)
            .collect()
    }

    /// The arrays to evaluate after a step (so the graph behind them is dropped).
    pub fn state(&self) -> Vec<Array> {
        let mut v: Vec<Array> = self
            .keys
            .iter()
            .chain(self.values.iter())
            .cloned()
            .collect();
        for p in self.qkeys.iter().chain(self.qvalues.iter()) {
            v.extend(p.iter().cloned());
        }
        v
    }

    /// Bytes held by the stored keys and values.
    pub fn nbytes(&self) -> usize {
        self.state().iter().map(|a| a.nbytes()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (1, 2, l, 64) with entry value = position * 1000 + feature, so rows are traceable.
    fn seq(start: usize, l: usize) -> Array {
        let mut v = Vec::new();
        for _h in 0..2 {
            for p in start..start + l {
                for d in 0..64 {
                    v.push((p * 1000 + d) as f32 / 1000.0);
                }
            }
        }
        Array::from_vec(v, &[1, 2, l, 64]).unwrap()
    }

    fn positions(a: &Array) -> Vec<usize> {
        let v = a.to_vec::<f32>().unwrap();
        let l = a.shape()[2];
        (0..l).map(|i| (v[i * 64] + 0.5) as usize).collect()
    }

    #[test]
    fn standard_cache_returns_everything_in_order_across_growth() {
        let mut c = KvCache::new(CacheKind::Standard);
        let mut seen = 0;
        for l in [5, 1, 300, 1, 7] {
            let (k, v) = c.update(&seq(seen, l), &seq(seen, l)).unwrap();
            seen += l;
            assert_eq!(positions(&k), (0..seen).collect::<Vec<_>>());
            assert_eq!(k.to_vec::<f32>().unwrap(), v.to_vec::<f32>().unwrap());
        }
        assert_eq!(c.offset, seen);
        assert!(c.rewind(10));
        let (k, _) = c.update(&seq(10, 1), &seq(10, 1)).unwrap();
        assert_eq!(positions(&k), (0..11).collect::<Vec<_>>());
    }

    #[test]
    fn rotating_cache_keeps_the_first_tokens_and_the_newest() {
        let mut c = KvCache::new(CacheKind::Rotating {
            max_size: 10,
            keep: 2,
        });
        c.update(&seq(0, 6), &seq(0, 6)).unwrap();
        let mut seen = 6;
        for _ in 0..9 {
            let (k, _) = c.update(&seq(seen, 1), &seq(seen, 1)).unwrap();
            seen += 1;
            let p = positions(&k);
            assert_eq!(&p[..2], &[0, 1]);
            assert_eq!(*p.last().unwrap(), seen - 1);
            assert!(p.len() <= 11);
            assert!(p.windows(2).all(|w| w[0] < w[1]));
        }
        assert_eq!(c.offset, 15, "the position keeps counting for RoPE");
        assert!(!c.rewind(3), "a rotated cache cannot rewind");
        assert_eq!(c.offset, 0);
    }

    #[test]
    fn quantized_cache_stays_within_quantization_error() {
        let mut c = KvCache::new(CacheKind::Quantized {
            bits: 8,
            group_size: 64,
        });
        c.update(&seq(0, 3), &seq(0, 3)).unwrap();
        let (k, _) = c.update(&seq(3, 2), &seq(3, 2)).unwrap();
        let got = k.to_vec::<f32>().unwrap();
        let want = seq(0, 5).to_vec::<f32>().unwrap();
        // 8 bits over a group's range of 0.063: steps of 2.5e-4.
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 2e-4, "{g} vs {w}");
        }
    }

    /// A reservation made before the first update sizes that update's storage, so later
    /// tokens up to it are written in place; the returned keys are still exactly those seen.
    #[test]
    fn reserving_before_the_first_update_sizes_the_storage() {
        let mut c = KvCache::new(CacheKind::Standard);
        c.reserve(600).unwrap();
        assert_eq!(c.capacity(), 0);
        let (k, _) = c.update(&seq(0, 3), &seq(0, 3)).unwrap();
        assert_eq!(c.capacity(), 768);
        assert_eq!(positions(&k), vec![0, 1, 2]);
        for p in 3..300 {
            c.update(&seq(p, 1), &seq(p, 1)).unwrap();
        }
        assert_eq!(c.capacity(), 768, "no growth below the reservation");
        let (k, v) = c.update(&seq(300, 1), &seq(300, 1)).unwrap();
        assert_eq!(positions(&k), (0..301).collect::<Vec<_>>());
        assert_eq!(positions(&v), (0..301).collect::<Vec<_>>());
        // a rotating cache bounds its own size: the reservation does not apply
        let mut r = KvCache::new(CacheKind::Rotating {
            max_size: 16,
            keep: 4,
        });
        r.reserve(600).unwrap();
        r.update(&seq(0, 3), &seq(0, 3)).unwrap();
        assert_eq!(r.capacity(), 256);
    }

    /// The fixed step of `static_decode.rs`: one token written at a device-held position
    /// into reserved storage, the window returned, the host's counts moved by `advance`.
    #[test]
    fn a_fixed_step_writes_at_its_position_and_returns_the_window() {
        let mut c = KvCache::new(CacheKind::Standard);
        c.update(&seq(0, 3), &seq(0, 3)).unwrap();
        c.reserve(300).unwrap();
        assert_eq!(c.capacity(), 512);
        let window = 256;
        let pos = Array::from_slice(&[3i32], &[]).unwrap();
        let keys = ops::arange(0.0, window as f64, 1.0, rmx_core::Dtype::Int32).unwrap();
        let mask = ops::reshape(&ops::less_equal(&keys, &pos).unwrap(), &[1, 1, 1, 256]).unwrap();
        let step = FixedStep {
            pos,
            mask,
            window,
            index: None,
        };
        c.set_fixed(Some(step)).unwrap();
        assert!(c.fixed_mask().is_some());
        let (k, _) = c.update(&seq(3, 1), &seq(3, 1)).unwrap();
        assert_eq!(k.shape()[2], window);
        assert_eq!(&positions(&k)[..4], &[0, 1, 2, 3]);
        assert_eq!(c.offset, 3, "the host's count moves only with advance");
        assert!(
            c.update(&seq(4, 2), &seq(4, 2)).is_err(),
            "one token per fixed step"
        );
        c.set_fixed(None).unwrap();
        c.advance(1);
        let (k, _) = c.update(&seq(4, 1), &seq(4, 1)).unwrap();
        assert_eq!(positions(&k), (0..5).collect::<Vec<_>>());
    }

    #[test]
    fn a_fixed_step_needs_a_standard_cache_with_room() {
        let step = |window| FixedStep {
            pos: Array::from_slice(&[0i32], &[]).unwrap(),
            mask: Array::from_slice(&[true], &[1, 1, 1, 1]).unwrap(),
            window,
            index: None,
        };
        let mut c = KvCache::new(CacheKind::Standard);
        assert!(c.set_fixed(Some(step(1))).is_err(), "no storage yet");
        c.update(&seq(0, 2), &seq(0, 2)).unwrap();
        assert!(
            c.set_fixed(Some(step(512))).is_err(),
            "window past the storage"
        );
        assert!(c.set_fixed(Some(step(256))).is_ok());
        let mut r = KvCache::new(CacheKind::Rotating {
            max_size: 16,
            keep: 2,
        });
        r.update(&seq(0, 2), &seq(0, 2)).unwrap();
        assert!(r.set_fixed(Some(step(1))).is_err());
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(CacheKind::from_flags(Some(4), None).is_err());
        assert!(CacheKind::from_flags(None, Some(7)).is_err());
        assert!(CacheKind::from_flags(Some(64), Some(4)).is_err());
        assert_eq!(
            CacheKind::from_flags(None, None).unwrap(),
            CacheKind::Standard
        );
    }
}
