//! `ConvTranspose1d`, `ConvTranspose2d`, `ConvTranspose3d`: MLX's channels-last transposed
//! convolutions (`NLC`, `NHWC`, `NDHWC` inputs, `(out, *kernel, in)` weights) with MLX's
//! defaults and initialisation.

use super::conv::{add_bias, conv_struct, i64s, init, ConvConfig};
use super::Layer;
use crate::{Module, Param};
use rmx_core::ops;
use rmx_core::{Array, Result};

/// A `ConvConfig` (stride, padding, dilation, groups, bias) plus the transposed
/// convolution's `output_padding`, the size added to the high side of each output axis.
/// Build one from a `ConvConfig` (`ConvConfig::default().stride(2).output_padding(1)`) or
/// set the fields for per-axis values. The default is MLX's: stride 1, padding 0,
/// dilation 1, output padding 0, with bias. MLX's `ConvTranspose*d` layers have no
/// `groups` argument; here it works as `mx.conv_transpose*d(..., groups=g)` does (weight
/// `(out, *kernel, in / groups)`, initialised with the per-group fan-in as `Conv*d`;
/// with one group that is MLX's `sqrt(1 / (in * prod(kernel)))`). Like MLX, no bound is
/// put on `output_padding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvTransposeConfig<const N: usize> {
    pub conv: ConvConfig<N>,
    pub output_padding: [usize; N],
}

impl<const N: usize> Default for ConvTransposeConfig<N> {
    fn default() -> Self {
        ConvConfig::default().into()
    }
}

impl<const N: usize> From<ConvConfig<N>> for ConvTransposeConfig<N> {
    fn from(conv: ConvConfig<N>) -> Self {
        ConvTransposeConfig {
            conv,
            output_padding: [0; N],
        }
    }
}

impl<const N: usize> ConvConfig<N> {
    /// This configuration for a transposed convolution, with `p` added to every output
    /// axis (MLX's `int` argument).
    pub fn output_padding(self, p: usize) -> ConvTransposeConfig<N> {
        ConvTransposeConfig {
            conv: self,
            output_padding: [p; N],
        }
    }
}

macro_rules! conv_transpose_layer {
    (
        $(#[$doc:meta])* $name:ident, $n:literal, $kernel:ty, |$k:ident| $kernel_axes:expr,
        $op:expr
    ) => {
        conv_struct!($(#[$doc])* $name, $n, output_padding);

        impl $name {
            /// MLX's defaults: stride 1, padding 0, dilation 1, output padding 0, with bias.
            pub fn new(in_channels: usize, out_channels: usize, kernel_size: $kernel) -> Result<$name> {
                Self::with_config(in_channels, out_channels, kernel_size, ConvTransposeConfig::default())
            }

            /// `cfg` is a `ConvTransposeConfig` or a plain `ConvConfig` (no output padding).
            pub fn with_config(
                in_channels: usize,
                out_channels: usize,
                kernel_size: $kernel,
                cfg: impl Into<ConvTransposeConfig<$n>>,
            ) -> Result<$name> {
                let cfg = cfg.into();
                let $k = kernel_size;
                Self::build(in_channels, out_channels, $kernel_axes, cfg.conv, cfg.output_padding)
            }
        }

        impl Layer for $name {
            fn forward(&self, x: &Array) -> Result<Array> {
                let op: fn(&Array, &Array, [[i64; $n]; 4], i64) -> Result<Array> = $op;
                let axes = [self.stride, self.padding, self.dilation, self.output_padding];
                let y = op(x, &self.weight, axes.map(i64s), self.groups as i64)?;
                add_bias(y, &self.bias)
            }
        }
    };
}

conv_transpose_layer!(
    /// 1-d transposed convolution over `(N, L, C_in)` inputs.
    ConvTranspose1d, 1, usize, |k| [k],
    |x, w, [s, p, d, o], g| ops::conv_transpose1d(x, w, s[0], p[0], d[0], o[0], g)
);
conv_transpose_layer!(
    /// 2-d transposed convolution over `(N, H, W, C_in)` inputs.
    ConvTranspose2d, 2, [usize; 2], |k| k,
    |x, w, [s, p, d, o], g| ops::conv_transpose2d(x, w, s, p, d, o, g)
);
conv_transpose_layer!(
    /// 3-d transposed convolution over `(N, D, H, W, C_in)` inputs.
    ConvTranspose3d, 3, [usize; 3], |k| k,
    |x, w, [s, p, d, o], g| ops::conv_transpose3d(x, w, s, p, d, o, g)
);
