//! CUDA C kernels, generated per op and dtype and compiled by NVRTC on first use.

pub mod arg_reduce;
pub mod attention_gemm;
pub mod complex;
pub mod complex_reduce;
pub mod conv;
pub mod elementwise;
pub mod fast;
pub mod fft;
pub mod flash_attention;
pub mod fp8;
pub mod fused;
pub mod gemv;
pub mod indexing;
pub mod linalg;
pub mod matmul;
pub mod norm_linear;
pub mod ops_c;
pub mod prelude;
pub mod qmm;
pub mod quantize;
pub mod random;
pub mod reduce;
pub mod rope_kv;
pub mod rows;
pub mod scan;
pub mod searchsorted;
pub mod softmax;
pub mod sort;

#[cfg(test)]
mod compile_check;
