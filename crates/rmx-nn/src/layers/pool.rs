//! Max and average pooling over 1, 2 or 3 spatial axes of channels-last inputs, as
//! `mlx.nn.MaxPool2d` & co.: pad, view the sliding windows, reduce over the window axes.

use super::Layer;
use crate::Module;
use rmx_core::ops;
use rmx_core::{value_err, Array, Result, Scalar};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reduce {
    Max,
    Mean,
}

/// The windows of `x` (`(N, *spatial, C)`) as `(N, *out_spatial, *window, C)`, MLX's
/// `_sliding_windows`: a reshape and transpose when windows tile the input exactly, a
/// strided view over the row-major elements otherwise.
fn sliding_windows(x: &Array, window: &[usize], stride: &[usize]) -> Result<Array> {
    let shape: Vec<i64> = x.shape().iter().map(|&d| d as i64).collect();
    let nd = window.len();
    if shape.len() != nd + 2 {
        return Err(value_err!(
            "To extract sliding windows the window shapes and strides must have the same \
             number of spatial dimensions as the signal but the signal has {} dims and the \
             window shape has {nd} and strides have {}.",
            shape.len().saturating_sub(2),
            stride.len()
        ));
    }
    let spatial = &shape[1..=nd];
    let win: Vec<i64> = window.iter().map(|&w| w as i64).collect();
    let st: Vec<i64> = stride.iter().map(|&s| s as i64).collect();
    if spatial.iter().zip(&win).any(|(s, w)| s < w) {
        return Err(value_err!(
            "[Pooling] The window {window:?} is larger than the (padded) input {spatial:?}."
        ));
    }
    if (0..nd).all(|i| win[i] == st[i] && spatial[i] % win[i] == 0) {
        let mut split = vec![shape[0]];
        for i in 0..nd {
            split.extend([spatial[i] / win[i], win[i]]);
        }
        split.push(shape[nd + 1]);
        let last = split.len() as i64 - 1;
        let mut order = vec![0];
        order.extend((1..last).step_by(2));
        order.extend((2..last).step_by(2));
        order.push(last);
        return ops::transpose(&ops::reshape(x, &split)?, Some(order.as_slice()));
    }
    // row-major strides of x
    let mut strides = vec![1i64; shape.len()];
    for i in (0..shape.len() - 1).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    let mut out_shape = vec![shape[0]];
    out_shape.extend((0..nd).map(|i| (spatial[i] - win[i]) / st[i] + 1));
    out_shape.extend(&win);
    out_shape.push(shape[nd + 1]);
    let mut out_strides = vec![strides[0]];
    out_strides.extend((0..nd).map(|i| strides[i + 1] * st[i]));
    out_strides.extend(&strides[1..=nd]);
    out_strides.push(1);
    ops::as_strided(x, &out_shape, &out_strides, 0)
}

fn pool(
    x: &Array,
    kernel: &[usize],
    stride: &[usize],
    padding: &[usize],
    reduce: Reduce,
) -> Result<Array> {
    let mut x = x.clone();
    if padding.iter().any(|&p| p > 0) {
        let mut widths = vec![(0, 0)];
        widths.extend(padding.iter().map(|&p| (p as i64, p as i64)));
        widths.push((0, 0));
        let value = match reduce {
            Reduce::Max => Scalar::Float(f64::NEG_INFINITY),
            Reduce::Mean => Scalar::Int(0),
        };
        x = ops::pad(&x, &widths, "constant", value)?;
    }
    let windows = sliding_windows(&x, kernel, stride)?;
    let nd = kernel.len() as i64;
    let axes: Vec<i64> = (-nd - 1..-1).collect();
    match reduce {
        Reduce::Max => ops::max(&windows, Some(axes.as_slice()), false),
        Reduce::Mean => ops::mean(&windows, Some(axes.as_slice()), false),
    }
}

fn check(name: &str, kernel: &[usize], stride: &[usize]) -> Result<()> {
    for (what, v) in [("kernel_size", kernel), ("stride", stride)] {
        if v.contains(&0) {
            return Err(value_err!(
                "[{name}] '{what}' must be positive but got {v:?}."
            ));
        }
    }
    Ok(())
}

macro_rules! pool_layer {
    ($(#[$doc:meta])* $name:ident, $n:literal, $reduce:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Module)]
        pub struct $name {
            #[module(skip)]
            pub kernel_size: [usize; $n],
            #[module(skip)]
            pub stride: [usize; $n],
            #[module(skip)]
            pub padding: [usize; $n],
        }

        impl $name {
            /// MLX's arguments: the stride defaults (`None`) to the kernel size; padding
            /// applies to both sides of each spatial axis.
            pub fn new(
                kernel_size: [usize; $n],
                stride: Option<[usize; $n]>,
                padding: [usize; $n],
            ) -> Result<$name> {
                let stride = stride.unwrap_or(kernel_size);
                check(stringify!($name), &kernel_size, &stride)?;
                Ok($name {
                    kernel_size,
                    stride,
                    padding,
                })
            }
        }

        impl Layer for $name {
            fn forward(&self, x: &Array) -> Result<Array> {
                pool(x, &self.kernel_size, &self.stride, &self.padding, $reduce)
            }
        }
    };
}

pool_layer!(
    /// Maximum over windows of `(N, L, C)`; padding is `-inf`.
    MaxPool1d, 1, Reduce::Max
);
pool_layer!(
    /// Maximum over windows of `(N, H, W, C)`; padding is `-inf`.
    MaxPool2d, 2, Reduce::Max
);
pool_layer!(
    /// Maximum over windows of `(N, D, H, W, C)`; padding is `-inf`.
    MaxPool3d, 3, Reduce::Max
);
pool_layer!(
    /// Mean over windows of `(N, L, C)`; padding is zeros (counted in the mean, as in MLX).
    AvgPool1d, 1, Reduce::Mean
);
pool_layer!(
    /// Mean over windows of `(N, H, W, C)`; padding is zeros (counted in the mean, as in MLX).
    AvgPool2d, 2, Reduce::Mean
);
pool_layer!(
    /// Mean over windows of `(N, D, H, W, C)`; padding is zeros (counted in the mean).
    AvgPool3d, 3, Reduce::Mean
);
