//! CUDA C kernels, generated per op and dtype and compiled by NVRTC on first use.

pub mod elementwise;
pub mod matmul;
pub mod ops_c;
pub mod prelude;
pub mod reduce;
pub mod rows;

#[cfg(test)]
mod compile_check;
