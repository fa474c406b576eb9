//! Function transformations. Each takes a function of arrays and returns derived values;
//! the derivatives are built from ordinary lazy ops, so they can be transformed again.

pub mod autodiff;

pub use autodiff::{grad, jvp, value_and_grad, vjp};
