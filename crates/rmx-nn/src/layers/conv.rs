//! `Conv1d`, `Conv2d`, `Conv3d`: MLX's channels-last convolutions (`NLC`, `NHWC`, `NDHWC`
//! inputs, `(out, *kernel, in / groups)` weights) with MLX's defaults and initialisation.

use super::{f32_scalar, Layer};
use crate::{Module, Param};
use rmx_core::ops::{self, random};
use rmx_core::{value_err, Array, Dtype, Result};

/// Stride, padding, dilation, groups and bias of an `N`-d convolution. The default is
/// MLX's (stride 1, padding 0, dilation 1, groups 1, with bias); the builder methods set
/// every spatial axis to one value, like MLX's `int` arguments, and the fields take
/// per-axis values, like its tuples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvConfig<const N: usize> {
    pub stride: [usize; N],
    pub padding: [usize; N],
    pub dilation: [usize; N],
    pub groups: usize,
    pub bias: bool,
}

impl<const N: usize> Default for ConvConfig<N> {
    fn default() -> Self {
        ConvConfig {
            stride: [1; N],
            padding: [0; N],
            dilation: [1; N],
            groups: 1,
            bias: true,
        }
    }
}

impl<const N: usize> ConvConfig<N> {
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = [s; N];
        self
    }

    pub fn padding(mut self, p: usize) -> Self {
        self.padding = [p; N];
        self
    }

    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = [d; N];
        self
    }

    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }

    pub fn bias(mut self, on: bool) -> Self {
        self.bias = on;
        self
    }
}

/// MLX's initialisation: weight `(out, *kernel, in / groups)` from `U(-s, s)` with
/// `s = sqrt(1 / (in / groups * prod(kernel)))` (global key), bias zeros.
pub(super) fn init(
    name: &str,
    in_channels: usize,
    out_channels: usize,
    kernel: &[usize],
    groups: usize,
    bias: bool,
    axes: [&[usize]; 2],
) -> Result<(Param, Option<Param>)> {
    if in_channels == 0 || out_channels == 0 {
        return Err(value_err!(
            "[{name}] in_channels and out_channels must be positive, got {in_channels} and {out_channels}."
        ));
    }
    if groups == 0 || !in_channels.is_multiple_of(groups) {
        return Err(value_err!(
            "The number of input channels ({in_channels}) must be divisible by the number of groups ({groups})"
        ));
    }
    for (what, v) in [
        ("kernel_size", kernel),
        ("stride", axes[0]),
        ("dilation", axes[1]),
    ] {
        if v.contains(&0) {
            return Err(value_err!(
                "[{name}] '{what}' must be positive but got {v:?}."
            ));
        }
    }
    let per_group = in_channels / groups;
    let fan_in = per_group * kernel.iter().product::<usize>();
    let scale = (1.0 / fan_in as f64).sqrt();
    let mut shape = vec![out_channels];
    shape.extend_from_slice(kernel);
    shape.push(per_group);
    let weight = random::uniform(
        &f32_scalar(-scale),
        &f32_scalar(scale),
        &shape,
        Dtype::Float32,
        None,
    )?;
    let bias = if bias {
        Some(ops::zeros(&[out_channels as i64], Dtype::Float32)?.into())
    } else {
        None
    };
    Ok((weight.into(), bias))
}

pub(super) fn i64s<const N: usize>(v: [usize; N]) -> [i64; N] {
    v.map(|x| x as i64)
}

pub(super) fn add_bias(y: Array, bias: &Option<Param>) -> Result<Array> {
    match bias {
        Some(b) => ops::add(&y, b),
        None => Ok(y),
    }
}

/// The struct of a convolution layer: weight, optional bias, the per-axis `stride`,
/// `padding`, `dilation` and any `extra` per-axis fields (the transposed layers'
/// `output_padding`), `groups`; the channel and kernel accessors read off the weight,
/// and `build`, which initialises the parameters as MLX does.
macro_rules! conv_struct {
    ($(#[$doc:meta])* $name:ident, $n:literal $(, $extra:ident)*) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Module)]
        pub struct $name {
            /// `(out_channels, *kernel_size, in_channels / groups)`.
            pub weight: Param,
            /// `(out_channels,)`, absent when built without bias.
            pub bias: Option<Param>,
            #[module(skip)]
            pub stride: [usize; $n],
            #[module(skip)]
            pub padding: [usize; $n],
            #[module(skip)]
            pub dilation: [usize; $n],
            $(
                #[module(skip)]
                pub $extra: [usize; $n],
            )*
            #[module(skip)]
            pub groups: usize,
        }

        impl $name {
            fn build(
                in_channels: usize,
                out_channels: usize,
                kernel: [usize; $n],
                c: ConvConfig<$n>,
                $($extra: [usize; $n],)*
            ) -> Result<$name> {
                let (weight, bias) = init(
                    stringify!($name),
                    in_channels,
                    out_channels,
                    &kernel,
                    c.groups,
                    c.bias,
                    [&c.stride, &c.dilation],
                )?;
                Ok($name {
                    weight,
                    bias,
                    stride: c.stride,
                    padding: c.padding,
                    dilation: c.dilation,
                    $($extra,)*
                    groups: c.groups,
                })
            }

            pub fn in_channels(&self) -> usize {
                self.weight.shape()[$n + 1] * self.groups
            }

            pub fn out_channels(&self) -> usize {
                self.weight.shape()[0]
            }

            pub fn kernel_size(&self) -> [usize; $n] {
                std::array::from_fn(|i| self.weight.shape()[i + 1])
            }
        }
    };
}
pub(super) use conv_struct;

macro_rules! conv_layer {
    ($(#[$doc:meta])* $name:ident, $n:literal, $kernel:ty, |$k:ident| $kernel_axes:expr) => {
        conv_struct!($(#[$doc])* $name, $n);

        impl $name {
            /// MLX's defaults: stride 1, padding 0, dilation 1, groups 1, with bias.
            pub fn new(in_channels: usize, out_channels: usize, kernel_size: $kernel) -> Result<$name> {
                Self::with_config(in_channels, out_channels, kernel_size, ConvConfig::default())
            }

            pub fn with_config(
                in_channels: usize,
                out_channels: usize,
                kernel_size: $kernel,
                cfg: ConvConfig<$n>,
            ) -> Result<$name> {
                let $k = kernel_size;
                Self::build(in_channels, out_channels, $kernel_axes, cfg)
            }
        }
    };
}

conv_layer!(
    /// 1-d convolution over `(N, L, C_in)` inputs.
    Conv1d, 1, usize, |k| [k]
);
conv_layer!(
    /// 2-d convolution over `(N, H, W, C_in)` inputs.
    Conv2d, 2, [usize; 2], |k| k
);
conv_layer!(
    /// 3-d convolution over `(N, D, H, W, C_in)` inputs. MLX's `Conv3d` has no `groups`
    /// argument; here it works as for the other ranks (the core op supports it).
    Conv3d, 3, [usize; 3], |k| k
);

impl Layer for Conv1d {
    fn forward(&self, x: &Array) -> Result<Array> {
        let y = ops::conv1d(
            x,
            &self.weight,
            self.stride[0] as i64,
            self.padding[0] as i64,
            self.dilation[0] as i64,
            self.groups as i64,
        )?;
        add_bias(y, &self.bias)
    }
}

impl Layer for Conv2d {
    fn forward(&self, x: &Array) -> Result<Array> {
        let y = ops::conv2d(
            x,
            &self.weight,
            i64s(self.stride),
            i64s(self.padding),
            i64s(self.dilation),
            self.groups as i64,
        )?;
        add_bias(y, &self.bias)
    }
}

impl Layer for Conv3d {
    fn forward(&self, x: &Array) -> Result<Array> {
        let y = ops::conv3d(
            x,
            &self.weight,
            i64s(self.stride),
            i64s(self.padding),
            i64s(self.dilation),
            self.groups as i64,
        )?;
        add_bias(y, &self.bias)
    }
}
