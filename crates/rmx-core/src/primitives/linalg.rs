//! `Matmul`: batched matrix product of inputs already broadcast to equal batch shapes.

use super::batching::{self, Batched};
use super::one;
use crate::array::{Array, ArrayData};
use crate::backend::Backend;
use crate::error::Result;
use crate::ops;
use crate::primitive::{OutputSpec, Primitive};

#[derive(Clone, Debug, PartialEq)]
pub struct Matmul;

impl Primitive for Matmul {
    fn name(&self) -> &'static str {
        "Matmul"
    }
    fn eval(
        &self,
        b: &dyn Backend,
        inputs: &[ArrayData],
        _out: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        one(b.matmul(&inputs[0], &inputs[1])?)
    }
    fn vjp(
        &self,
        p: &[Array],
        ct: &[Array],
        argnums: &[usize],
        _o: &[Array],
    ) -> Result<Vec<Array>> {
        argnums
            .iter()
            .map(|&k| {
                if k == 0 {
                    ops::matmul(&ct[0], &ops::swapaxes(&p[1], -1, -2)?)
                } else {
                    ops::matmul(&ops::swapaxes(&p[0], -1, -2)?, &ct[0])
                }
            })
            .collect()
    }
    fn jvp(&self, p: &[Array], t: &[Array], argnums: &[usize], _o: &[Array]) -> Result<Vec<Array>> {
        let mut acc: Option<Array> = None;
        for (&k, tk) in argnums.iter().zip(t) {
            let term = if k == 0 {
                ops::matmul(tk, &p[1])?
            } else {
                ops::matmul(&p[0], tk)?
            };
            acc = Some(match acc {
                None => term,
                Some(a) => ops::add(&a, &term)?,
            });
        }
        Ok(vec![acc.expect("at least one tangent")])
    }
    fn vmap(&self, x: &[Array], ax: &[Option<usize>], _out: &[OutputSpec]) -> Result<Batched> {
        let a = batching::to_front(&x[0], ax[0])?;
        let b = batching::to_front(&x[1], ax[1])?;
        batching::at_front(ops::matmul(&a, &b)?)
    }
    crate::primitive_common!();
}
