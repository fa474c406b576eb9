//! Primitives that make arrays from parameters alone: `Full`, `Arange`.

use super::one;
use crate::array::ArrayData;
use crate::backend::Backend;
use crate::element::Scalar;
use crate::error::Result;
use crate::primitive::{OutputSpec, Primitive};

/// Every element set to `value`.
#[derive(Debug, PartialEq)]
pub struct Full {
    pub value: Scalar,
}

impl Primitive for Full {
    fn name(&self) -> &'static str {
        "Full"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        _inputs: &[ArrayData],
        out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.fill(self.value, out[0].dtype, &out[0].shape)?)
    }
    crate::primitive_common!();
}

/// `start + i * step`.
#[derive(Debug, PartialEq)]
pub struct Arange {
    pub start: f64,
    pub step: f64,
}

impl Primitive for Arange {
    fn name(&self) -> &'static str {
        "Arange"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        _inputs: &[ArrayData],
        out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.arange(self.start, self.step, out[0].dtype, out[0].shape[0])?)
    }
    crate::primitive_common!();
}
