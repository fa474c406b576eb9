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
pub mod quantized_fp;
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
pub mod array_api;
pub mod depends;
pub mod fast_cross_entropy;
pub mod fast_gated_delta;
pub mod fp8;
pub mod stft;
pub mod unique;
pub mod windows;
pub use array_api::*;
pub use depends::*;
pub use fp8::*;
pub use unique::*;
pub use windows::*;
pub mod einsum;
pub use einsum::*;
pub mod gather_mm;
pub use gather_mm::*;
pub mod hadamard;
pub use hadamard::*;
pub mod linalg_decompositions;
pub mod linalg_norm;
pub mod multivariate_normal;
