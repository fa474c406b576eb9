//! complex64 elementwise kernels. Values are a `c64` struct (two floats, 8-byte aligned,
//! the layout of the host's `Complex32`); each op is written as the CPU backend computes it
//! (`num_complex`'s formulas, C99 Annex G division in double), so results agree within
//! float rounding (CUDA's `sinf`/`expf` against glibc's). Ops not listed here run on the host.

use super::elementwise::{element, kernel_source, Kernel};
use super::prelude::{ctype, float_to_int, tag, PRELUDE};
use rmx_core::backend::{BinaryOp, UnaryOp};
use rmx_core::Dtype;

/// The `c64` type and the helpers the expressions use.
pub const COMPLEX: &str = r#"
struct __align__(8) c64 { float re, im; };
__device__ __forceinline__ c64 mkc(float re, float im) { c64 z; z.re = re; z.im = im; return z; }
__device__ __forceinline__ c64 cmul(c64 a, c64 b) { return mkc(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re); }
__device__ __forceinline__ bool cnan(c64 a) { return a.re != a.re || a.im != a.im; }
__device__ __forceinline__ bool clt(c64 a, c64 b) { return a.re < b.re || (a.re == b.re && a.im < b.im); }
__device__ __forceinline__ c64 cpolar(float r, float t) { return mkc(r * cosf(t), r * sinf(t)); }
__device__ c64 cdiv(c64 x, c64 y) {
  double a = x.re, b = x.im, c = y.re, d = y.im;
  const double logbw = floor(log2(fmax(fabs(c), fabs(d))));
  int ilogbw = 0;
  if (isfinite(logbw)) { ilogbw = (int)logbw; c = scalbn(c, -ilogbw); d = scalbn(d, -ilogbw); }
  const double denom = c * c + d * d;
  double re = scalbn((a * c + b * d) / denom, -ilogbw);
  double im = scalbn((b * c - a * d) / denom, -ilogbw);
  if (re != re && im != im) {
    const double inf = __longlong_as_double(0x7ff0000000000000ll);
    if (denom == 0.0 && (a == a || b == b)) {
      re = copysign(inf, c) * a; im = copysign(inf, c) * b;
    } else if ((isinf(a) || isinf(b)) && isfinite(c) && isfinite(d)) {
      const double a2 = copysign(isinf(a) ? 1.0 : 0.0, a), b2 = copysign(isinf(b) ? 1.0 : 0.0, b);
      re = inf * (a2 * c + b2 * d); im = inf * (b2 * c - a2 * d);
    } else if (logbw == inf && isfinite(a) && isfinite(b)) {
      const double c2 = copysign(isinf(c) ? 1.0 : 0.0, c), d2 = copysign(isinf(d) ? 1.0 : 0.0, d);
      re = 0.0 * (a * c2 + b * d2); im = 0.0 * (b * c2 - a * d2);
    }
  }
  return mkc((float)re, (float)im);
}
__device__ c64 cexp(c64 z) {
  float re = z.re, im = z.im;
  if (isinf(re)) {
    if (re < 0) { if (!isfinite(im)) return mkc(0.0f, 0.0f); }
    else if (im == 0 || !isfinite(im)) { if (isinf(im)) im = __int_as_float(0x7fc00000); return mkc(re, im); }
  } else if (re != re && im == 0) {
    return z;
  }
  return cpolar(expf(re), im);
}
// num_complex's `+`, `-` and `/` (the plain formula, as its `Div` computes it; the binary
// op's division is `cdiv` above), and `ln`
__device__ __forceinline__ c64 cadd(c64 a, c64 b) { return mkc(a.re + b.re, a.im + b.im); }
__device__ __forceinline__ c64 csub(c64 a, c64 b) { return mkc(a.re - b.re, a.im - b.im); }
__device__ __forceinline__ c64 cdivn(c64 a, c64 b) {
  const float n = b.re * b.re + b.im * b.im;
  return mkc((a.re * b.re + a.im * b.im) / n, (a.im * b.re - a.re * b.im) / n);
}
__device__ __forceinline__ c64 cln(c64 z) { return mkc(logf(hypotf(z.re, z.im)), atan2f(z.im, z.re)); }
__device__ c64 csqrt(c64 z);
#define C1 mkc(1.f, 0.f)
#define C2 mkc(2.f, 0.f)
#define CI mkc(0.f, 1.f)
#define CMINUS_I mkc(-0.f, -1.f)
__device__ c64 csqrt(c64 z) {
  if (z.im == 0) {
    if (!signbit(z.re)) return mkc(sqrtf(z.re), z.im);
    const float im = sqrtf(-z.re);
    return mkc(0.0f, signbit(z.im) ? -im : im);
  }
  if (z.re == 0) {
    const float x = sqrtf(fabsf(z.im) / 2);
    return mkc(x, signbit(z.im) ? -x : x);
  }
  return cpolar(sqrtf(hypotf(z.re, z.im)), atan2f(z.im, z.re) / 2);
}
"#;

/// The complex `op` from complex64 to `out`; `None` for ops the host runs.
pub fn unary_kernel(op: UnaryOp, out: Dtype) -> Option<Kernel> {
    use UnaryOp::*;
    let expr = match op {
        Abs => "hypotf(x.re, x.im)",
        Real => "x.re",
        Imag => "x.im",
        IsNan => "cnan(x)",
        IsInf => "(isinf(x.re) || isinf(x.im))",
        IsPosInf => "(x.re == INFINITY)",
        IsNegInf => "(x.re == -INFINITY)",
        Negative => "mkc(-x.re, -x.im)",
        Conjugate => "mkc(x.re, -x.im)",
        Square => "cmul(x, x)",
        Sqrt => "csqrt(x)",
        Exp => "cexp(x)",
        Log => "cln(x)",
        // the rest as num_complex 0.4 writes them (the CPU backend's formulas)
        Rsqrt => "cdivn(C1, csqrt(x))",
        Reciprocal => "cdivn(C1, x)",
        Log1p => "cln(cadd(x, C1))",
        Log2 => "([&] { const c64 l = cln(x); return mkc(l.re / 0.693147180559945309f, l.im / 0.693147180559945309f); }())",
        Log10 => "([&] { const c64 l = cln(x); return mkc(l.re / 2.302585092994045684f, l.im / 2.302585092994045684f); }())",
        Tan => "([&] { const float a = x.re + x.re, b = x.im + x.im, d = cosf(a) + coshf(b); return mkc(sinf(a) / d, sinhf(b) / d); }())",
        Tanh => "([&] { const float a = x.re + x.re, b = x.im + x.im, d = coshf(a) + cosf(b); return mkc(sinhf(a) / d, sinf(b) / d); }())",
        Sinh => "mkc(sinhf(x.re) * cosf(x.im), coshf(x.re) * sinf(x.im))",
        Cosh => "mkc(coshf(x.re) * cosf(x.im), sinhf(x.re) * sinf(x.im))",
        Arcsin => "cmul(CMINUS_I, cln(cadd(csqrt(csub(C1, cmul(x, x))), cmul(CI, x))))",
        Arccos => "cmul(CMINUS_I, cln(cadd(cmul(CI, csqrt(csub(C1, cmul(x, x)))), x)))",
        Arctan => "([&] { if (x.re == 0.f && x.im == 1.f) return mkc(0.f, INFINITY); if (x.re == 0.f && x.im == -1.f) return mkc(0.f, -INFINITY); return cdivn(csub(cln(cadd(C1, cmul(CI, x))), cln(csub(C1, cmul(CI, x)))), cmul(C2, CI)); }())",
        Arcsinh => "cln(cadd(x, csqrt(cadd(C1, cmul(x, x)))))",
        Arccosh => "cmul(C2, cln(cadd(csqrt(cdivn(cadd(x, C1), C2)), csqrt(cdivn(csub(x, C1), C2)))))",
        Arctanh => "([&] { if (x.re == 1.f && x.im == 0.f) return mkc(INFINITY, 0.f); if (x.re == -1.f && x.im == 0.f) return mkc(-INFINITY, 0.f); return cdivn(csub(cln(cadd(C1, x)), cln(csub(C1, x))), C2); }())",
        Sin => "mkc(sinf(x.re) * coshf(x.im), cosf(x.re) * sinhf(x.im))",
        Cos => "mkc(cosf(x.re) * coshf(x.im), -sinf(x.re) * sinhf(x.im))",
        Round => "mkc(rintf(x.re), rintf(x.im))",
        Sign => "([&] { const float n = hypotf(x.re, x.im); return n == 0 ? mkc(0.0f, 0.0f) : mkc(x.re / n, x.im / n); }())",
        _ => return None,
    };
    let (store, value) = output(out, expr)?;
    let name = format!("unary_{op:?}_c64_{}", tag(out));
    let body = format!("    const c64 x = {};\n    out[i] = {value};", element("x"));
    Some(with_helpers(name, &[("x", "c64")], store, &body))
}

/// The complex `op` on two complex64 operands; `None` for ops the host runs.
pub fn binary_kernel(op: BinaryOp, out: Dtype) -> Option<Kernel> {
    use BinaryOp::*;
    let expr = match op {
        Add => "mkc(a.re + b.re, a.im + b.im)",
        Subtract => "mkc(a.re - b.re, a.im - b.im)",
        Multiply => "cmul(a, b)",
        // complex floor division divides (MLX applies no floor to complex values)
        Divide | FloorDivide => "cdiv(a, b)",
        Equal => "(a.re == b.re && a.im == b.im)",
        NotEqual => "(a.re != b.re || a.im != b.im)",
        Maximum => "((cnan(a) || (!cnan(b) && clt(b, a))) ? a : b)",
        Minimum => "((cnan(a) || (!cnan(b) && clt(a, b))) ? a : b)",
        _ => return None,
    };
    let (store, value) = output(out, expr)?;
    let name = format!("binary_{op:?}_c64_{}", tag(out));
    let body = format!(
        "    const c64 a = {}; const c64 b = {};\n    out[i] = {value};",
        element("a"),
        element("b")
    );
    Some(with_helpers(
        name,
        &[("a", "c64"), ("b", "c64")],
        store,
        &body,
    ))
}

/// A real value of any type as complex64: `(value, 0)`.
pub fn from_real_kernel(input: Dtype) -> Option<Kernel> {
    let ti = ctype(input)?;
    let name = format!("cast_{}_c64", tag(input));
    let body = format!(
        "    out[i] = mkc((float)({}), 0.0f);",
        ti.load(&element("x"))
    );
    Some(with_helpers(name, &[("x", ti.store)], "c64", &body))
}

/// complex64 as another type, as the CPU casts it: bool tests for nonzero (NaN is
/// nonzero), other types take the real part as a float32 converts.
pub fn to_real_kernel(out: Dtype) -> Option<Kernel> {
    let to = ctype(out)?;
    let v = if to.compute == "bool" {
        "(x.re != 0.f || x.im != 0.f)".to_string()
    } else if !to.float {
        float_to_int("x.re", to.compute)
    } else {
        format!("({})(x.re)", to.compute)
    };
    let name = format!("cast_c64_{}", tag(out));
    let body = format!(
        "    const c64 x = {};\n    out[i] = {};",
        element("x"),
        to.store(&v)
    );
    Some(with_helpers(name, &[("x", "c64")], to.store, &body))
}

/// The stored type of `out` and `expr` converted to it (complex stays `c64`).
fn output(out: Dtype, expr: &str) -> Option<(&'static str, String)> {
    if out == Dtype::Complex64 {
        return Some(("c64", expr.to_string()));
    }
    let t = ctype(out)?;
    Some((t.store, t.store(&format!("({})({expr})", t.compute))))
}

fn with_helpers(name: String, inputs: &[(&str, &str)], out: &str, body: &str) -> Kernel {
    let src = kernel_source(&name, inputs, out, body).replacen(
        PRELUDE,
        &format!("{PRELUDE}{COMPLEX}"),
        1,
    );
    Kernel { name, src }
}
