//! Typed access to GGUF metadata (`rmx_io::MetaValue`) with errors that name the key.

use crate::error::Result;
use crate::model_err;
use rmx_io::MetaValue;
use std::collections::HashMap;

/// GGUF key/values by name.
pub struct Meta(pub HashMap<String, MetaValue>);

impl Meta {
    pub fn new(entries: Vec<(String, MetaValue)>) -> Meta {
        Meta(entries.into_iter().collect())
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    pub fn str(&self, key: &str) -> Result<&str> {
        match self.0.get(key) {
            Some(MetaValue::Str(s)) => Ok(s),
            Some(_) => Err(model_err!("GGUF metadata '{key}' is not a string")),
            None => Err(model_err!("GGUF metadata '{key}' is missing")),
        }
    }

    pub fn opt_str(&self, key: &str) -> Option<&str> {
        self.str(key).ok()
    }

    pub fn strs(&self, key: &str) -> Result<&[String]> {
        match self.0.get(key) {
            Some(MetaValue::StrList(s)) => Ok(s),
            Some(_) => Err(model_err!("GGUF metadata '{key}' is not a list of strings")),
            None => Err(model_err!("GGUF metadata '{key}' is missing")),
        }
    }

    /// Numbers (any GGUF numeric type, scalar or list) as f64.
    pub fn nums(&self, key: &str) -> Result<Vec<f64>> {
        match self.0.get(key) {
            Some(MetaValue::Array(a)) => {
                Ok(rmx_core::ops::astype(a, rmx_core::Dtype::Float64)?.to_vec::<f64>()?)
            }
            Some(_) => Err(model_err!("GGUF metadata '{key}' is not numeric")),
            None => Err(model_err!("GGUF metadata '{key}' is missing")),
        }
    }

    pub fn num(&self, key: &str) -> Result<f64> {
        let v = self.nums(key)?;
        match v.as_slice() {
            [x] => Ok(*x),
            _ => Err(model_err!(
                "GGUF metadata '{key}' holds {} values, expected one",
                v.len()
            )),
        }
    }

    pub fn opt_num(&self, key: &str) -> Option<f64> {
        self.num(key).ok()
    }

    pub fn usize(&self, key: &str) -> Result<usize> {
        let x = self.num(key)?;
        if x < 0.0 || x.fract() != 0.0 {
            return Err(model_err!("GGUF metadata '{key}' = {x} is not a count"));
        }
        Ok(x as usize)
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        self.opt_num(key).map(|x| x != 0.0)
    }
}
