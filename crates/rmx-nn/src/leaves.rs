//! `Module` for the building blocks of a derived struct: the leaves (`Param`, `Array`),
//! containers (`Vec`, `Option`, `Box`, `BTreeMap` as MLX's dicts of modules) and plain
//! settings with no parameters.

use crate::{join_key, Module, Param};
use rmx_core::{value_err, Array, Result};

impl Module for Param {
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        f(prefix, self)
    }

    fn visit_params_mut(
        &mut self,
        prefix: &str,
        f: &mut dyn FnMut(&str, &mut Param) -> Result<()>,
    ) -> Result<()> {
        f(prefix, self)
    }
}

/// A bare `Array` field is a parameter that is always trainable: it has nowhere to keep
/// a frozen flag, so freezing it is an error that points at `Param`.
impl Module for Array {
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        f(prefix, &Param::new(self.clone()))
    }

    fn visit_params_mut(
        &mut self,
        prefix: &str,
        f: &mut dyn FnMut(&str, &mut Param) -> Result<()>,
    ) -> Result<()> {
        let mut p = Param::new(self.clone());
        f(prefix, &mut p)?;
        if p.is_frozen() {
            return Err(value_err!(
                "[freeze] Parameter \"{prefix}\" is a plain Array field, which is always trainable; declare it as rmx_nn::Param to freeze it."
            ));
        }
        *self = p.value().clone();
        Ok(())
    }
}

impl<T: Module> Module for Vec<T> {
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        for (i, m) in self.iter().enumerate() {
            m.visit_params(&join_key(prefix, &i.to_string()), f);
        }
    }

    fn visit_params_mut(
        &mut self,
        prefix: &str,
        f: &mut dyn FnMut(&str, &mut Param) -> Result<()>,
    ) -> Result<()> {
        for (i, m) in self.iter_mut().enumerate() {
            m.visit_params_mut(&join_key(prefix, &i.to_string()), f)?;
        }
        Ok(())
    }

    fn set_training(&mut self, training: bool) {
        for m in self {
            m.set_training(training);
        }
    }
}

impl<T: Module> Module for Option<T> {
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        if let Some(m) = self {
            m.visit_params(prefix, f);
        }
    }

    fn visit_params_mut(
        &mut self,
        prefix: &str,
        f: &mut dyn FnMut(&str, &mut Param) -> Result<()>,
    ) -> Result<()> {
        match self {
            Some(m) => m.visit_params_mut(prefix, f),
            None => Ok(()),
        }
    }

    fn set_training(&mut self, training: bool) {
        if let Some(m) = self {
            m.set_training(training);
        }
    }
}

impl<T: Module + ?Sized> Module for Box<T> {
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        (**self).visit_params(prefix, f)
    }

    fn visit_params_mut(
        &mut self,
        prefix: &str,
        f: &mut dyn FnMut(&str, &mut Param) -> Result<()>,
    ) -> Result<()> {
        (**self).visit_params_mut(prefix, f)
    }

    fn set_training(&mut self, training: bool) {
        (**self).set_training(training)
    }
}

/// Entries named `prefix.key`, in key order (a dict of modules in MLX).
impl<T: Module> Module for std::collections::BTreeMap<String, T> {
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        for (k, m) in self {
            m.visit_params(&join_key(prefix, k), f);
        }
    }

    fn visit_params_mut(
        &mut self,
        prefix: &str,
        f: &mut dyn FnMut(&str, &mut Param) -> Result<()>,
    ) -> Result<()> {
        for (k, m) in self.iter_mut() {
            m.visit_params_mut(&join_key(prefix, k), f)?;
        }
        Ok(())
    }

    fn set_training(&mut self, training: bool) {
        for m in self.values_mut() {
            m.set_training(training);
        }
    }
}

/// Settings such as `eps`, `dims` or `affine`: no parameters.
macro_rules! no_params {
    ($($t:ty),*) => {$(
        impl Module for $t {
            fn visit_params(&self, _: &str, _: &mut dyn FnMut(&str, &Param)) {}
            fn visit_params_mut(
                &mut self,
                _: &str,
                _: &mut dyn FnMut(&str, &mut Param) -> Result<()>,
            ) -> Result<()> {
                Ok(())
            }
        }
    )*};
}
no_params!(bool, f32, f64, usize, isize, u8, u16, u32, u64, i8, i16, i32, i64, String);
