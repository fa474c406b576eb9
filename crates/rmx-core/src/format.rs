//! Text form of arrays in MLX's exact style: `array([1, 2], dtype=int32)`, six
//! significant digits (C's `%g`), dims longer than 6 summarised as `a, b, c, ..., x, y, z`.

use crate::array::Array;
use crate::element::Scalar;
use crate::error::Result;

use std::sync::atomic::{AtomicI32, Ordering};

const EDGE: usize = 3;

/// Decimal places for floats in `repr` (-1: C's `%g`, MLX's default).
static PRECISION: AtomicI32 = AtomicI32::new(-1);

pub fn set_precision(p: i32) {
    PRECISION.store(p, Ordering::Relaxed);
}
pub fn precision() -> i32 {
    PRECISION.load(Ordering::Relaxed)
}

fn format_float(v: f64) -> String {
    let p = precision();
    if p < 0 || !v.is_finite() {
        format_g(v)
    } else {
        format!("{:.*}", p as usize, v)
    }
}
const SUMMARY_THRESHOLD: usize = 6;

/// C's `%g` with precision 6.
pub fn format_g(v: f64) -> String {
    if v.is_nan() {
        return if v.is_sign_negative() {
            "-nan".into()
        } else {
            "nan".into()
        };
    }
    if v.is_infinite() {
        return if v < 0.0 { "-inf".into() } else { "inf".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{:.5e}", v);
    let (mant, exp) = sci.split_once('e').unwrap();
    let exp: i32 = exp.parse().unwrap();
    if !(-4..6).contains(&exp) {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (5 - exp).max(0) as usize;
        trim_zeros(&format!("{:.*}", decimals, v)).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn format_scalar(s: Scalar) -> String {
    match s {
        Scalar::Bool(b) => if b { "True" } else { "False" }.into(),
        Scalar::Int(i) => i.to_string(),
        Scalar::UInt(u) => u.to_string(),
        Scalar::Float(f) => format_float(f),
        Scalar::Complex(c) => {
            // C++ prints `re`, then '+' unless the imaginary part is negative, then `im`
            let re = format_float(c.re as f64);
            let im = format_float(c.im as f64);
            if c.im >= 0.0 || c.im.is_nan() {
                format!("{re}+{im}j")
            } else {
                format!("{re}{im}j")
            }
        }
    }
}

/// `array(..., dtype=...)`, evaluating the array.
pub fn repr(x: &Array) -> Result<String> {
    Ok(format!("array({}, dtype={})", body(x)?, x.dtype()))
}

/// The nested-list body alone (what `str()` shows inside `array(...)`).
pub fn body(x: &Array) -> Result<String> {
    let data = x.data()?;
    let values: Vec<Scalar> = crate::dispatch!(data.dtype, T => data.to_vec::<T>().into_iter().map(crate::element::Element::to_scalar).collect());
    let shape = x.shape().to_vec();
    if shape.is_empty() {
        return Ok(format_scalar(values[0]));
    }
    let mut out = String::new();
    write_dim(&mut out, &values, &shape, 0, 0);
    Ok(out)
}

fn write_dim(out: &mut String, values: &[Scalar], shape: &[usize], dim: usize, offset: usize) {
    let n = shape[dim];
    let inner: usize = shape[dim + 1..].iter().product();
    out.push('[');
    let summarise = n > SUMMARY_THRESHOLD;
    let indices: Vec<Option<usize>> = if summarise {
        (0..EDGE)
            .map(Some)
            .chain([None])
            .chain((n - EDGE..n).map(Some))
            .collect()
    } else {
        (0..n).map(Some).collect()
    };
    let last_dim = dim + 1 == shape.len();
    // "array(" is 6 characters; nested rows align under the first bracket
    let indent = " ".repeat(6 + dim + 1);
    for (k, idx) in indices.iter().enumerate() {
        if k > 0 {
            if last_dim {
                out.push_str(", ");
            } else {
                out.push_str(",\n");
                out.push_str(&indent);
            }
        }
        match idx {
            None => out.push_str("..."),
            Some(i) => {
                if last_dim {
                    out.push_str(&format_scalar(values[offset + i]));
                } else {
                    write_dim(out, values, shape, dim + 1, offset + i * inner);
                }
            }
        }
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::format_g;

    #[test]
    fn matches_c_percent_g() {
        assert_eq!(format_g(1.123456789), "1.12346");
        assert_eq!(format_g(123456.7), "123457");
        assert_eq!(format_g(1234567.0), "1.23457e+06");
        assert_eq!(format_g(1e-7), "1e-07");
        assert_eq!(format_g(0.0001), "0.0001");
        assert_eq!(format_g(2.0), "2");
        assert_eq!(format_g(1e20), "1e+20");
        assert_eq!(format_g(-0.0), "-0");
    }
}
