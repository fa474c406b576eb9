//! `Sequential`: layers applied in order, stored as MLX does under `layers.N`.
//! `Activation` wraps an activation function as a parameter-free layer, so indices
//! line up with an MLX `Sequential(Linear, ReLU, Linear)` (`layers.0`, `layers.2`).

use super::Layer;
use crate::{Module, Param};
use rmx_core::{Array, Result};

#[derive(Module, Default)]
pub struct Sequential {
    pub layers: Vec<Box<dyn Layer>>,
}

impl Sequential {
    pub fn new() -> Sequential {
        Sequential { layers: Vec::new() }
    }

    /// Appends a layer (builder style).
    pub fn push(mut self, layer: impl Layer + 'static) -> Sequential {
        self.layers.push(Box::new(layer));
        self
    }
}

impl Layer for Sequential {
    fn forward(&self, x: &Array) -> Result<Array> {
        let mut y = x.clone();
        for l in &self.layers {
            y = l.forward(&y)?;
        }
        Ok(y)
    }
}

impl<T: Layer + ?Sized> Layer for Box<T> {
    fn forward(&self, x: &Array) -> Result<Array> {
        (**self).forward(x)
    }
}

/// A function of one array as a layer without parameters (`Activation::new(relu)`).
#[derive(Clone, Copy)]
pub struct Activation {
    f: fn(&Array) -> Result<Array>,
}

impl Activation {
    pub fn new(f: fn(&Array) -> Result<Array>) -> Activation {
        Activation { f }
    }
}

impl Module for Activation {
    fn visit_params(&self, _: &str, _: &mut dyn FnMut(&str, &Param)) {}

    fn visit_params_mut(
        &mut self,
        _: &str,
        _: &mut dyn FnMut(&str, &mut Param) -> Result<()>,
    ) -> Result<()> {
        Ok(())
    }
}

impl Layer for Activation {
    fn forward(&self, x: &Array) -> Result<Array> {
        (self.f)(x)
    }
}
