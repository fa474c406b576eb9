//! The public op API, named as in `mlx.core`. Each op checks its arguments, applies
//! MLX's dtype and shape rules and records a graph node; nothing is computed here.

pub mod conv;
pub mod creation;
pub mod elementwise;
pub mod fast;
pub mod fft;
pub mod indexing;
pub mod linalg;
pub mod quantized;
pub mod random;
pub mod reduce;
pub mod shape;
pub mod sort;

pub use conv::*;
pub use creation::*;
pub use elementwise::*;
pub use indexing::*;
pub use linalg::*;
pub use quantized::*;
pub use reduce::*;
pub use shape::*;
pub use sort::*;
pub mod linalg_decompositions;
pub mod linalg_norm;
pub mod multivariate_normal;
