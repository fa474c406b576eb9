//! The CUDA C expression of each elementwise op, per kind of compute type. `None` means
//! this backend has no kernel for the pair and the op runs on the host instead.

use super::prelude::CType;
use rmx_core::backend::{BinaryOp, UnaryOp};

/// Expression of `x` (compute type `t`) giving the op's result.
pub fn unary_expr(op: UnaryOp, t: &CType) -> Option<String> {
    use UnaryOp::*;
    let m = |f: &str| format!("{}(x)", t.math(f));
    if t.float {
        return Some(match op {
            Abs => m("fabs"),
            Negative => "(-x)".into(),
            // 0 for zero and NaN, as MLX
            Sign => "(x > 0 ? 1 : (x < 0 ? -1 : 0))".into(),
            Sqrt => m("sqrt"),
            Rsqrt => m("rsqrt"),
            Square => "(x * x)".into(),
            Reciprocal => "(1 / x)".into(),
            Exp => m("exp"),
            Expm1 => m("expm1"),
            Log => m("log"),
            Log1p => m("log1p"),
            Log2 => m("log2"),
            Log10 => m("log10"),
            Sin => m("sin"),
            Cos => m("cos"),
            Tan => m("tan"),
            Arcsin => m("asin"),
            Arccos => m("acos"),
            Arctan => m("atan"),
            Sinh => m("sinh"),
            Cosh => m("cosh"),
            Tanh => m("tanh"),
            Arcsinh => m("asinh"),
            Arccosh => m("acosh"),
            Arctanh => m("atanh"),
            Floor => m("floor"),
            Ceil => m("ceil"),
            Round => m("rint"),
            Trunc => m("trunc"),
            Erf => m("erf"),
            Erfinv => m("erfinv"),
            Sigmoid => format!("(1 / (1 + {}(-x)))", t.math("exp")),
            LogicalNot => "(x == 0)".into(),
            IsNan => "is_nan(x)".into(),
            IsInf => format!("{}(x)", "isinf"),
            IsPosInf => "(isinf(x) && x > 0)".into(),
            IsNegInf => "(isinf(x) && x < 0)".into(),
            BitwiseInvert | Real | Imag | Conjugate => return None,
        });
    }
    let unsigned = t.compute.starts_with('u') || t.compute == "bool";
    Some(match op {
        Abs if unsigned => "x".into(),
        Abs => "(x < 0 ? -x : x)".into(),
        Negative if t.compute == "bool" => return None,
        Negative => "(-x)".into(),
        Sign if unsigned => "(x != 0)".into(),
        Sign => "(x > 0 ? 1 : (x < 0 ? -1 : 0))".into(),
        Square => "(x * x)".into(),
        Floor | Ceil | Round | Trunc | Conjugate => "x".into(),
        LogicalNot => "(x == 0)".into(),
        BitwiseInvert if t.compute == "bool" => "(!x)".into(),
        BitwiseInvert => "(~x)".into(),
        IsNan | IsInf | IsPosInf | IsNegInf => "false".into(),
        _ => return None,
    })
}

/// Expression of `a` and `b` (compute type `t`) giving the op's result.
pub fn binary_expr(op: BinaryOp, t: &CType) -> Option<String> {
    use BinaryOp::*;
    let cmp = |s: &str| Some(format!("(a {s} b)"));
    match op {
        Equal => return cmp("=="),
        NotEqual => return cmp("!="),
        Less => return cmp("<"),
        LessEqual => return cmp("<="),
        Greater => return cmp(">"),
        GreaterEqual => return cmp(">="),
        NanEqual => return Some("(a == b || (is_nan(a) && is_nan(b)))".into()),
        LogicalAnd => return Some("((a != 0) && (b != 0))".into()),
        LogicalOr => return Some("((a != 0) || (b != 0))".into()),
        Maximum => return Some("((is_nan(a) || a > b) ? a : b)".into()),
        Minimum => return Some("((is_nan(a) || a < b) ? a : b)".into()),
        _ => {}
    }
    if t.compute == "bool" {
        // `x | y` of boolean masks; other arithmetic on bool is promoted before it gets here
        return match op {
            BitwiseAnd => Some("(a && b)".into()),
            BitwiseOr => Some("(a || b)".into()),
            BitwiseXor => Some("(a != b)".into()),
            _ => None,
        };
    }
    if t.float {
        let f = |name: &str| t.math(name);
        return Some(match op {
            Add => "(a + b)".into(),
            Subtract => "(a - b)".into(),
            Multiply => "(a * b)".into(),
            Divide => "(a / b)".into(),
            Power if t.compute == "float" => "pow_f32(a, b)".into(),
            Power => format!("{}(a, b)", f("pow")),
            Remainder => format!(
                "([&]{{ auto r = {}(a, b); return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r; }}())",
                f("fmod")
            ),
            // the quotient rounded to the element type first, as the CPU (and MLX) do
            FloorDivide => format!("{}({})", f("floor"), t.load(&t.store("(a / b)"))),
            Arctan2 => format!("{}(a, b)", f("atan2")),
            LogAddExp => format!(
                "([&]{{ if (is_nan(a) || is_nan(b)) return a + b; auto m = a > b ? a : b; if (isinf(m)) return m; return m + {}({}(-{}(a - b))); }}())",
                f("log1p"),
                f("exp"),
                f("fabs")
            ),
            _ => return None,
        });
    }
    Some(match op {
        Add => "(a + b)".into(),
        Subtract => "(a - b)".into(),
        Multiply => "(a * b)".into(),
        BitwiseAnd => "(a & b)".into(),
        BitwiseOr => "(a | b)".into(),
        BitwiseXor => "(a ^ b)".into(),
        _ => return None,
    })
}

/// A device function `{name}(float g, float u)` giving `silu(g) * u` stored as `t`: the
/// values a product kernel stores (`g`, `u` rounded to `t`), then `sigmoid`, `g * sigmoid(g)`
/// and the product with `u` each rounded as the separate ops store them (the SwiGLU
/// epilogue of the matrix-vector kernels, equal to the unfused ops bit for bit).
pub fn swiglu_fn(name: &str, t: &CType) -> Option<String> {
    let sig = unary_expr(UnaryOp::Sigmoid, t)?;
    let mul = binary_expr(BinaryOp::Multiply, t)?;
    let rnd = |e: &str| t.load(&t.store(e));
    Some(format!(
        "__device__ __forceinline__ {s} {name}(float g_, float u_) {{\n  const {c} g = {rg}, u = {ru};\n  {c} sg; {{ const {c} x = g; sg = {rs}; }}\n  {c} gs; {{ const {c} a = g, b = sg; gs = {rm}; }}\n  const {c} a = gs, b = u;\n  return {st};\n}}\n",
        s = t.store,
        c = t.compute,
        rg = rnd("g_"),
        ru = rnd("u_"),
        rs = rnd(&sig),
        rm = rnd(&mul),
        st = t.store(&mul),
    ))
}
