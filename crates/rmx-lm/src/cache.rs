//! Key/value caches: one per layer, grown in steps so appending a token does not copy the
//! whole history every time.

use crate::error::Result;
use rmx_core::{ops, Array};

/// Keys and values of shape (B, H, capacity, D), filled up to `offset`.
pub struct KvCache {
    keys: Option<Array>,
    values: Option<Array>,
    pub offset: usize,
    step: usize,
}

impl Default for KvCache {
    fn default() -> Self {
        KvCache {
            keys: None,
            values: None,
            offset: 0,
            step: 256,
        }
    }
}

fn dims(a: &Array) -> Vec<i64> {
    a.shape().iter().map(|&v| v as i64).collect()
}

impl KvCache {
    /// Appends k, v (B, H, L, D); returns all keys and values so far.
    pub fn update(&mut self, k: &Array, v: &Array) -> Result<(Array, Array)> {
        let l = k.shape()[2];
        let needed = self.offset + l;
        let capacity = self.keys.as_ref().map_or(0, |a| a.shape()[2]);
        if needed > capacity {
            let new_cap = needed.div_ceil(self.step) * self.step;
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
            start[2] = self.offset as i64;
            let mut stop = dims(new);
            stop[2] = needed as i64;
            Ok(ops::slice_update(buf, new, &start, &stop, None)?)
        };
        let keys = put(self.keys.as_ref().unwrap(), k)?;
        let values = put(self.values.as_ref().unwrap(), v)?;
        self.offset = needed;
        let used = |a: &Array| -> Result<Array> {
            let mut stop = dims(a);
            stop[2] = needed as i64;
            Ok(ops::slice(a, &[0; 4], &stop, None)?)
        };
        let out = (used(&keys)?, used(&values)?);
        self.keys = Some(keys);
        self.values = Some(values);
        Ok(out)
    }

    /// The arrays to evaluate after a step (so the graph behind them is dropped).
    pub fn state(&self) -> Vec<Array> {
        self.keys
            .iter()
            .chain(self.values.iter())
            .cloned()
            .collect()
    }
}
