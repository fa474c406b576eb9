//! Element types, their categories and MLX's type-promotion rules.
//! The promotion table is MLX 0.32's, checked against it by the Python test suite.

use std::fmt;

/// The element type of an array. Names follow `mlx.core`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dtype {
    Bool,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Int8,
    Int16,
    Int32,
    Int64,
    Float16,
    Bfloat16,
    Float32,
    Float64,
    Complex64,
}

/// Abstract dtype categories, as `mx.floating`, `mx.integer`, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DtypeCategory {
    ComplexFloating,
    Floating,
    Inexact,
    SignedInteger,
    UnsignedInteger,
    Integer,
    Number,
    Generic,
}

/// Broad kind of a dtype, used by kernels and promotion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Unsigned,
    Signed,
    Float,
    Complex,
}

pub const ALL_DTYPES: [Dtype; 14] = [
    Dtype::Bool,
    Dtype::Uint8,
    Dtype::Uint16,
    Dtype::Uint32,
    Dtype::Uint64,
    Dtype::Int8,
    Dtype::Int16,
    Dtype::Int32,
    Dtype::Int64,
    Dtype::Float16,
    Dtype::Bfloat16,
    Dtype::Float32,
    Dtype::Float64,
    Dtype::Complex64,
];

impl Dtype {
    pub fn size(self) -> usize {
        use Dtype::*;
        match self {
            Bool | Uint8 | Int8 => 1,
            Uint16 | Int16 | Float16 | Bfloat16 => 2,
            Uint32 | Int32 | Float32 => 4,
            Uint64 | Int64 | Float64 | Complex64 => 8,
        }
    }

    pub fn kind(self) -> Kind {
        use Dtype::*;
        match self {
            Bool => Kind::Bool,
            Uint8 | Uint16 | Uint32 | Uint64 => Kind::Unsigned,
            Int8 | Int16 | Int32 | Int64 => Kind::Signed,
            Float16 | Bfloat16 | Float32 | Float64 => Kind::Float,
            Complex64 => Kind::Complex,
        }
    }

    pub fn name(self) -> &'static str {
        use Dtype::*;
        match self {
            Bool => "bool",
            Uint8 => "uint8",
            Uint16 => "uint16",
            Uint32 => "uint32",
            Uint64 => "uint64",
            Int8 => "int8",
            Int16 => "int16",
            Int32 => "int32",
            Int64 => "int64",
            Float16 => "float16",
            Bfloat16 => "bfloat16",
            Float32 => "float32",
            Float64 => "float64",
            Complex64 => "complex64",
        }
    }

    pub fn from_name(name: &str) -> Option<Dtype> {
        ALL_DTYPES.iter().copied().find(|d| d.name() == name)
    }

    pub fn is_float(self) -> bool {
        self.kind() == Kind::Float
    }
    pub fn is_complex(self) -> bool {
        self == Dtype::Complex64
    }
    /// Floating or complex.
    pub fn is_inexact(self) -> bool {
        matches!(self.kind(), Kind::Float | Kind::Complex)
    }
    pub fn is_integer(self) -> bool {
        matches!(self.kind(), Kind::Signed | Kind::Unsigned)
    }
    pub fn is_signed_integer(self) -> bool {
        self.kind() == Kind::Signed
    }
    pub fn is_unsigned_integer(self) -> bool {
        self.kind() == Kind::Unsigned
    }
    pub fn is_bool(self) -> bool {
        self == Dtype::Bool
    }

    /// Whether this dtype belongs to `category` (MLX's `issubdtype`).
    pub fn is_subdtype(self, category: DtypeCategory) -> bool {
        use DtypeCategory::*;
        match category {
            Generic => true,
            Number => self != Dtype::Bool,
            Integer => self.is_integer(),
            SignedInteger => self.is_signed_integer(),
            UnsignedInteger => self.is_unsigned_integer(),
            Inexact => self.is_inexact(),
            Floating => self.is_float(),
            ComplexFloating => self.is_complex(),
        }
    }

    /// The float type results of math on this dtype take (`exp(int32)` is float32).
    pub fn to_inexact(self) -> Dtype {
        if self.is_inexact() {
            self
        } else {
            Dtype::Float32
        }
    }
}

impl DtypeCategory {
    pub fn name(self) -> &'static str {
        use DtypeCategory::*;
        match self {
            ComplexFloating => "complexfloating",
            Floating => "floating",
            Inexact => "inexact",
            SignedInteger => "signedinteger",
            UnsignedInteger => "unsignedinteger",
            Integer => "integer",
            Number => "number",
            Generic => "generic",
        }
    }

    /// Category-in-category test used by `issubdtype(cat, cat)`.
    pub fn is_subcategory(self, parent: DtypeCategory) -> bool {
        use DtypeCategory::*;
        if self == parent || parent == Generic {
            return true;
        }
        matches!(
            (self, parent),
            (ComplexFloating, Inexact)
                | (ComplexFloating, Number)
                | (Floating, Inexact)
                | (Floating, Number)
                | (Inexact, Number)
                | (SignedInteger, Integer)
                | (SignedInteger, Number)
                | (UnsignedInteger, Integer)
                | (UnsignedInteger, Number)
                | (Integer, Number)
        )
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// MLX's binary promotion: the dtype both operands are cast to.
pub fn promote_types(a: Dtype, b: Dtype) -> Dtype {
    use Dtype::*;
    use Kind as K;
    if a == b {
        return a;
    }
    let (ka, kb) = (a.kind(), b.kind());
    match (ka, kb) {
        (K::Complex, _) | (_, K::Complex) => Complex64,
        (K::Bool, _) => b,
        (_, K::Bool) => a,
        (K::Float, K::Float) => {
            if a == Float64 || b == Float64 {
                Float64
            } else if a == Float32 || b == Float32 {
                Float32
            } else {
                // float16 with bfloat16
                Float32
            }
        }
        (K::Float, _) => a,
        (_, K::Float) => b,
        (K::Unsigned, K::Unsigned) | (K::Signed, K::Signed) => a.max(b),
        (K::Unsigned, K::Signed) => promote_unsigned_signed(a, b),
        (K::Signed, K::Unsigned) => promote_unsigned_signed(b, a),
    }
}

fn promote_unsigned_signed(u: Dtype, s: Dtype) -> Dtype {
    use Dtype::*;
    if u == Uint64 {
        return Float32;
    }
    // The signed type must hold every value of the unsigned one.
    let need = u.size() * 2;
    let size = need.max(s.size());
    match size {
        1 => Int8,
        2 => Int16,
        4 => Int32,
        _ => Int64,
    }
}

/// Promotion over many dtypes (used by concatenate, stack, ...).
pub fn result_type(dtypes: &[Dtype]) -> Option<Dtype> {
    let mut it = dtypes.iter().copied();
    let first = it.next()?;
    Some(it.fold(first, promote_types))
}

/// Array-API `isdtype`: whether `dtype` is of `kind` ("bool", "signed integer",
/// "unsigned integer", "integral", "real floating", "complex floating", "numeric").
pub fn isdtype(dtype: Dtype, kind: &str) -> crate::Result<bool> {
    Ok(match kind {
        "bool" => dtype.is_bool(),
        "signed integer" => dtype.is_signed_integer(),
        "unsigned integer" => dtype.is_unsigned_integer(),
        "integral" => dtype.is_integer(),
        "real floating" => dtype.is_float(),
        "complex floating" => dtype.is_complex(),
        "numeric" => !dtype.is_bool(),
        other => {
            return Err(crate::value_err!(
                "[isdtype] Unknown data type kind: '{other}'."
            ))
        }
    })
}

/// Limits of a floating type, as `mx.finfo`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FInfo {
    pub dtype: Dtype,
    pub min: f64,
    pub max: f64,
    pub eps: f64,
    pub smallest_normal: f64,
}

/// Limits of an integer type, as `mx.iinfo`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IInfo {
    pub dtype: Dtype,
    pub min: i128,
    pub max: i128,
}

pub fn finfo(dtype: Dtype) -> Option<FInfo> {
    use Dtype::*;
    let (max, eps, smallest_normal) = match dtype {
        Float16 => (
            65504.0,
            f64::from(half::f16::EPSILON),
            f64::from(half::f16::MIN_POSITIVE),
        ),
        Bfloat16 => (
            f64::from(half::bf16::MAX),
            f64::from(half::bf16::EPSILON),
            f64::from(half::bf16::MIN_POSITIVE),
        ),
        Float32 | Complex64 => (
            f32::MAX as f64,
            f32::EPSILON as f64,
            f32::MIN_POSITIVE as f64,
        ),
        Float64 => (f64::MAX, f64::EPSILON, f64::MIN_POSITIVE),
        _ => return None,
    };
    let dtype = if dtype == Complex64 { Float32 } else { dtype };
    Some(FInfo {
        dtype,
        min: -max,
        max,
        eps,
        smallest_normal,
    })
}

pub fn iinfo(dtype: Dtype) -> Option<IInfo> {
    use Dtype::*;
    let (min, max): (i128, i128) = match dtype {
        Uint8 => (0, u8::MAX as i128),
        Uint16 => (0, u16::MAX as i128),
        Uint32 => (0, u32::MAX as i128),
        Uint64 => (0, u64::MAX as i128),
        Int8 => (i8::MIN as i128, i8::MAX as i128),
        Int16 => (i16::MIN as i128, i16::MAX as i128),
        Int32 => (i32::MIN as i128, i32::MAX as i128),
        Int64 => (i64::MIN as i128, i64::MAX as i128),
        _ => return None,
    };
    Some(IInfo { dtype, min, max })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Dtype::*;

    #[test]
    fn promotion_follows_mlx_rules() {
        assert_eq!(promote_types(Uint8, Int8), Int16);
        assert_eq!(promote_types(Uint32, Int8), Int64);
        assert_eq!(promote_types(Uint64, Int8), Float32);
        assert_eq!(promote_types(Float16, Bfloat16), Float32);
        assert_eq!(promote_types(Int64, Float16), Float16);
        assert_eq!(promote_types(Float64, Complex64), Complex64);
        assert_eq!(promote_types(Bool, Uint16), Uint16);
        for a in ALL_DTYPES {
            for b in ALL_DTYPES {
                assert_eq!(promote_types(a, b), promote_types(b, a));
            }
        }
    }

    #[test]
    fn categories_nest() {
        assert!(Float16.is_subdtype(DtypeCategory::Inexact));
        assert!(!Bool.is_subdtype(DtypeCategory::Number));
        assert!(DtypeCategory::SignedInteger.is_subcategory(DtypeCategory::Number));
        assert!(!DtypeCategory::Floating.is_subcategory(DtypeCategory::Integer));
    }
}
