//! rmx-nn: neural-network building blocks over rmx-core, mirroring `mlx.nn` and
//! `mlx.optimizers`: the `Module` trait (with `#[derive(Module)]`), layers, activations,
//! losses, optimizers with learning-rate schedules, and `value_and_grad` over a model's
//! trainable parameters. Parameter names follow MLX (`layers.0.weight`), so weights
//! saved here load in Python `mlx.nn` / `rmx.nn` and back.

// lets the derive's `::rmx_nn::...` paths resolve inside this crate too
extern crate self as rmx_nn;

pub mod activations;
pub mod layers;
mod leaves;
pub mod losses;
mod module;
pub mod optim;
mod param;
mod value_and_grad;
mod weights;

pub use layers::{
    Activation, AvgPool1d, AvgPool2d, AvgPool3d, Conv1d, Conv2d, Conv3d, ConvConfig,
    ConvTranspose1d, ConvTranspose2d, ConvTranspose3d, ConvTransposeConfig, Dropout, Embedding,
    Layer, LayerNorm, Linear, MaxPool1d, MaxPool2d, MaxPool3d, RMSNorm, Sequential,
};
pub use module::{join_key, Module, Params};
pub use param::Param;
pub use rmx_core::{Array, Error, Result};
pub use rmx_nn_derive::Module;
pub use value_and_grad::value_and_grad;
