//! `fast.gated_delta_update`: the gated delta rule (Gated DeltaNet / Qwen3-Next linear
//! attention) as MLX 0.32.4's CPU fallback computes it, a loop over time of ordinary ops:
//!
//! ```text
//! S = S * g_t                      (decay, in linear space)
//! S = S + k_t (x) ((v_t - S k_t) * beta_t)   (delta update)
//! y_t = S q_t
//! ```
//!
//! with the state `S` (`[B, Hv, Dv, Dk]`) kept in float32, queries/keys repeated over the
//! `Hv / Hk` value heads, and `mask[:, t]` (optional, `[B, T]`) keeping the old state and
//! a zero output where false. Outputs: `y` (`[B, T, Hv, Dv]`, the queries' dtype) and the
//! final state (float32). Ordinary ops, so grad and vmap work (as in MLX).

use crate::array::Array;
use crate::dtype::Dtype;
use crate::error::Result;

use super::creation::zeros_like;
use super::elementwise::{add, astype, multiply, subtract, where_};
use super::reduce::sum;
use super::shape::{expand_dims, repeat, squeeze, stack};

fn at(x: &Array, t: usize) -> Result<Array> {
    let mut start = vec![0i64; x.ndim()];
    let mut stop: Vec<i64> = x.shape().iter().map(|&d| d as i64).collect();
    start[1] = t as i64;
    stop[1] = t as i64 + 1;
    squeeze(&super::shape::slice(x, &start, &stop, None)?, Some(&[1]))
}

fn dims(name: &str, x: &Array, nd: usize) -> Result<()> {
    if x.ndim() != nd {
        return Err(crate::value_err!(
            "[gated_delta_update] {name} must have {nd} dimensions but got {}.",
            x.ndim()
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub fn gated_delta_update(
    q: &Array,
    k: &Array,
    v: &Array,
    g: &Array,
    beta: &Array,
    initial_state: Option<&Array>,
    mask: Option<&Array>,
) -> Result<Vec<Array>> {
    dims("queries", q, 4)?;
    dims("keys", k, 4)?;
    dims("values", v, 4)?;
    dims("gates", g, 3)?;
    dims("beta", beta, 3)?;
    let (b, t_n, hk, dk) = (q.shape()[0], q.shape()[1], q.shape()[2], q.shape()[3]);
    let (hv, dv) = (v.shape()[2], v.shape()[3]);
    if t_n == 0 {
        return Err(crate::value_err!(
            "[gated_delta_update] The sequence length must be positive."
        ));
    }
    let r = hv.checked_div(hk).unwrap_or(1);
    let (q, k) = if r > 1 {
        (repeat(q, r as i64, Some(2))?, repeat(k, r as i64, Some(2))?)
    } else {
        (q.clone(), k.clone())
    };
    let mut state = match initial_state {
        Some(s) => astype(s, Dtype::Float32)?,
        None => {
            super::creation::zeros(&[b as i64, hv as i64, dv as i64, dk as i64], Dtype::Float32)?
        }
    };
    let mut ys = Vec::with_capacity(t_n);
    for t in 0..t_n {
        let (qt, kt, vt) = (at(&q, t)?, at(&k, t)?, at(v, t)?);
        let (gt, bt) = (at(g, t)?, at(beta, t)?);
        let k4 = expand_dims(&kt, &[2])?; // [B, H, 1, Dk]
        let mut new = multiply(&state, &expand_dims(&gt, &[-1, -2])?)?;
        let kv = sum(&multiply(&new, &k4)?, Some(&[-1]), false)?;
        let delta = multiply(&subtract(&vt, &kv)?, &expand_dims(&bt, &[-1])?)?;
        new = add(&new, &multiply(&k4, &expand_dims(&delta, &[-1])?)?)?;
        let mut y = sum(
            &multiply(&new, &expand_dims(&qt, &[2])?)?,
            Some(&[-1]),
            false,
        )?;
        state = match mask {
            Some(m) => {
                let mt = at(m, t)?;
                y = where_(&expand_dims(&mt, &[-1, -2])?, &y, &zeros_like(&y)?)?;
                where_(&expand_dims(&mt, &[-1, -2, -3])?, &new, &state)?
            }
            None => new,
        };
        ys.push(y);
    }
    let y = astype(&stack(&ys, 1)?, q.dtype())?;
    Ok(vec![y, state])
}
