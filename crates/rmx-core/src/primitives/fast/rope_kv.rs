//! `RopeKvUpdate` (an rmx extension; MLX has none): a decoder layer's step from its fused
//! q|k|v projection to attention's inputs. Inputs `[x, k_cache, v_cache, offset, freqs?]`
//! with `x` `[B, L, Hq + 2 Hkv, D]` (query heads, then key heads, then value heads),
//! caches `[B, Hkv, S, D]` of `x`'s dtype and `offset` one int32. Outputs `[q, k_cache',
//! v_cache']`: the query heads `[B, Hq, L, D]` through RoPE at positions `offset + l`, and
//! the caches with the rotated keys and the values written at those positions (a scatter:
//! negative positions wrap once, others out of range are an `IndexError`). The caches are
//! written in place when nothing else holds them. One kernel on the GPU instead of a RoPE
//! and two scatters; derivatives and vmap go through that definition.

use super::rope::Rope;
use crate::array::{Array, ArrayData};
use crate::backend::{Backend, RopeSpec, ScatterMode};
use crate::dtype::Dtype;
use crate::error::Result;
use crate::ops;
use crate::primitive::{OutputSpec, Primitive};

#[derive(Clone, Debug, PartialEq)]
pub struct RopeKvUpdate {
    pub rope: Rope,
    pub num_heads: usize,
    pub num_kv_heads: usize,
}

impl RopeKvUpdate {
    fn spec(&self) -> RopeSpec {
        RopeSpec {
            dims: self.rope.dims,
            traditional: self.rope.traditional,
            base: self.rope.base.unwrap_or(1.0),
            scale: self.rope.scale,
        }
    }

    /// The definition from ordinary ops: head slices, two RoPEs and two scatters.
    pub fn composite(&self, p: &[Array]) -> Result<Vec<Array>> {
        let (x, kc, vc, offset) = (&p[0], &p[1], &p[2], &p[3]);
        let (b, l, d) = (
            x.shape()[0] as i64,
            x.shape()[1] as i64,
            x.shape()[3] as i64,
        );
        let part = |from: usize, n: usize| -> Result<Array> {
            let (from, n) = (from as i64, n as i64);
            let s = ops::slice(x, &[0, 0, from, 0], &[b, l, from + n, d], None)?;
            ops::transpose(&s, Some(&[0, 2, 1, 3]))
        };
        let (hq, hkv) = (self.num_heads, self.num_kv_heads);
        let rope = |y: Array| -> Array {
            let mut inputs = vec![y, offset.clone()];
            inputs.extend(p.get(4).cloned());
            self.rope.node(inputs)
        };
        let q = rope(part(0, hq)?);
        let k = rope(part(hq, hkv)?);
        let v = part(hq + hkv, hkv)?;
        let steps = ops::arange(0.0, l as f64, 1.0, Dtype::Int32)?;
        let at = ops::add(&ops::reshape(offset, &[1])?, &steps)?;
        let at = ops::broadcast_to(&ops::reshape(&at, &[1, 1, l, 1])?, k.shape())?;
        let kc = ops::scatter_along_axis(ScatterMode::Set, kc, &at, &k, 2)?;
        let vc = ops::scatter_along_axis(ScatterMode::Set, vc, &at, &v, 2)?;
        Ok(vec![q, kc, vc])
    }
}

impl Primitive for RopeKvUpdate {
    fn name(&self) -> &'static str {
        "RoPEKVUpdate"
    }
    /// The caches are written over in place when no one else holds them.
    fn donatable_inputs(&self) -> &'static [usize] {
        &[1, 2]
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        let heads = (self.num_heads, self.num_kv_heads);
        let [q, k, v] = b.rope_kv_update(
            [&inputs[0], &inputs[1], &inputs[2]],
            &inputs[3],
            inputs.get(4),
            self.spec(),
            heads,
        )?;
        Ok(vec![q, k, v])
    }
    super::rules_from_definition!(composite);
    crate::primitive_common!();
}

/// `Backend::rope_kv_update` from the backend's own `rope` and `copy_into`: the trait's
/// default, and a backend's fallback. Reads the position on the host.
pub fn rope_then_write_kv<B: Backend + ?Sized>(
    b: &B,
    [x, k_cache, v_cache]: [&ArrayData; 3],
    offset: &ArrayData,
    freqs: Option<&ArrayData>,
    spec: RopeSpec,
    (hq, hkv): (usize, usize),
) -> Result<[ArrayData; 3]> {
    let (bsz, l, d) = (x.shape[0], x.shape[1], x.shape[3]);
    // heads from..from+n of x as a [B, n, L, D] view
    let part = |from: usize, n: usize| {
        x.view(
            vec![bsz, n, l, d].into(),
            vec![x.strides[0], x.strides[2], x.strides[1], x.strides[3]].into(),
            (x.offset as isize + from as isize * x.strides[2]) as usize,
        )
    };
    let q = b.rope(&part(0, hq), offset, freqs, spec)?;
    let k = b.rope(&part(hq, hkv), offset, freqs, spec)?;
    let v = part(hq + hkv, hkv);
    // SAFETY: the offset is one int32 element of a computed host array
    let pos = unsafe { *offset.ptr::<i32>() } as i64;
    let size = k_cache.shape[2];
    let write = |cache: &ArrayData, new: &ArrayData| -> Result<ArrayData> {
        let out = if cache.is_donated_whole() {
            cache.clone()
        } else {
            b.copy(cache)?
        };
        for t in 0..l {
            let raw = pos + t as i64;
            let p = if raw < 0 { raw + size as i64 } else { raw };
            if p < 0 || p >= size as i64 {
                return Err(crate::index_err!(
                    "[rope_kv_update] Position {raw} is out of bounds for a cache of {size} tokens."
                ));
            }
            let row = |a: &ArrayData, at: usize| {
                let mut shape = a.shape.clone();
                shape[2] = 1;
                a.view(
                    shape,
                    a.strides.clone(),
                    (a.offset as isize + at as isize * a.strides[2]) as usize,
                )
            };
            b.copy_into(&row(new, t), &row(&out, p as usize))?;
        }
        Ok(out)
    };
    let k_cache = write(k_cache, &k)?;
    let v_cache = write(v_cache, &v)?;
    Ok([q, k_cache, v_cache])
}
