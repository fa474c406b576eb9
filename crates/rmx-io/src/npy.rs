//! `.npy`: NumPy's single-array format, written byte for byte as MLX writes it (its header
//! padding, `fortran_order` for column-contiguous data, bfloat16 as `<V2`).

use crate::lazy::{Decode, Load, Source};
use crate::{io_err, with_row_major_bytes};
use rmx_core::{index_err, runtime_err, value_err, Array, Dtype, Result};
use std::io::Write;

const MAGIC: &[u8] = b"\x93NUMPY";

/// MLX's array-protocol string of a dtype.
pub fn descr(dtype: Dtype) -> &'static str {
    use Dtype::*;
    match dtype {
        Bool => "|b1",
        Uint8 => "|u1",
        Uint16 => "<u2",
        Uint32 => "<u4",
        Uint64 => "<u8",
        Int8 => "|i1",
        Int16 => "<i2",
        Int32 => "<i4",
        Int64 => "<i8",
        Float16 => "<f2",
        Bfloat16 => "<V2",
        Float32 => "<f4",
        Float64 => "<f8",
        Complex64 => "<c8",
    }
}

/// The dtype of an array-protocol string and whether it is big-endian. As in MLX the
/// byte-order character is optional and `V2` (two opaque bytes) is bfloat16.
pub fn dtype_from_descr(descr: &str) -> Result<(Dtype, bool)> {
    use Dtype::*;
    let (order, code) = match descr.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, &descr[1..]),
        _ => ('=', descr),
    };
    let dtype = match code {
        "b1" => Bool,
        "u1" => Uint8,
        "u2" => Uint16,
        "u4" => Uint32,
        "u8" => Uint64,
        "i1" => Int8,
        "i2" => Int16,
        "i4" => Int32,
        "i8" => Int64,
        "f2" => Float16,
        "V2" => Bfloat16,
        "f4" => Float32,
        "f8" => Float64,
        "c8" => Complex64,
        _ => {
            return Err(value_err!(
                "[load] Unsupported array protocol type-string: {descr}"
            ))
        }
    };
    Ok((dtype, order == '>' && dtype.size() > 1))
}

/// Whether a strided view is dense column-major, with MLX's rule: size-1 axes are ignored
/// and an empty array counts as contiguous.
fn col_contiguous(shape: &[usize], strides: &[isize]) -> bool {
    if shape.contains(&0) {
        return true;
    }
    let mut expected = 1isize;
    for (&d, &s) in shape.iter().zip(strides) {
        if d == 1 {
            continue;
        }
        if s != expected {
            return false;
        }
        expected *= d as isize;
    }
    true
}

/// The header (magic, version, length, dict, padding) exactly as MLX writes it, including
/// its padding rule, which counts two more length bytes than version 1 has.
pub fn header(dtype: Dtype, shape: &[usize], fortran: bool) -> Vec<u8> {
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': {}, 'shape': (",
        descr(dtype),
        if fortran { "True" } else { "False" }
    );
    for d in shape {
        dict.push_str(&format!("{d}, "));
    }
    dict.push_str(")}");
    let v1 = dict.len() + 15 < u16::MAX as usize;
    let padding = (6 + 2 + (2 + 2 * v1 as usize) + dict.len() + 1) % 16;
    dict.push_str(&" ".repeat(padding));
    dict.push('\n');
    let mut out = MAGIC.to_vec();
    if v1 {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Evaluates `a` and writes it: column-contiguous data as it lies, with
/// `fortran_order: True`; anything else in row-major order.
pub fn write(w: &mut dyn Write, a: &Array) -> Result<()> {
    let d = a.data()?;
    let size = d.dtype.size();
    let n = d.numel() * size;
    if col_contiguous(&d.shape, &d.strides) {
        let start = d.offset * size;
        let data = d
            .buffer
            .as_bytes()
            .get(start..start + n)
            .ok_or_else(|| runtime_err!("[save] Array view lies outside its buffer"))?;
        w.write_all(&header(d.dtype, &d.shape, true))
            .map_err(io_err)?;
        return w.write_all(data).map_err(io_err);
    }
    w.write_all(&header(d.dtype, &d.shape, false))
        .map_err(io_err)?;
    with_row_major_bytes(a, |b| w.write_all(b))?.map_err(io_err)
}

pub fn to_bytes(a: &Array) -> Result<Vec<u8>> {
    crate::to_vec(|w| write(w, a))
}

/// A parsed Python literal in the header dict (only the forms NumPy writes).
#[derive(Debug)]
enum Lit {
    Str(String),
    Bool(bool),
    Int,
    Tuple(Vec<i128>),
    None,
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn string(&mut self) -> Option<String> {
        self.ws();
        let q = *self.s.get(self.i)?;
        if q != b'\'' && q != b'"' {
            return None;
        }
        let start = self.i + 1;
        let len = self.s[start..].iter().position(|&c| c == q)?;
        self.i = start + len + 1;
        String::from_utf8(self.s[start..start + len].to_vec()).ok()
    }
    fn int(&mut self) -> Option<i128> {
        self.ws();
        let start = self.i;
        if self.s.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() && self.i - start < 30 {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }
    fn word(&mut self, w: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            true
        } else {
            false
        }
    }
    fn value(&mut self) -> Option<Lit> {
        self.ws();
        match *self.s.get(self.i)? {
            b'\'' | b'"' => self.string().map(Lit::Str),
            b'(' => {
                self.i += 1;
                let mut v = Vec::new();
                loop {
                    if self.eat(b')') {
                        return Some(Lit::Tuple(v));
                    }
                    v.push(self.int()?);
                    if !self.eat(b',') {
                        return self.eat(b')').then_some(Lit::Tuple(v));
                    }
                }
            }
            _ if self.word("True") => Some(Lit::Bool(true)),
            _ if self.word("False") => Some(Lit::Bool(false)),
            _ if self.word("None") => Some(Lit::None),
            _ => self.int().map(|_| Lit::Int),
        }
    }
    fn dict(&mut self) -> Option<Vec<(String, Lit)>> {
        if !self.eat(b'{') {
            return None;
        }
        let mut out = Vec::new();
        loop {
            if self.eat(b'}') {
                return Some(out);
            }
            let k = self.string()?;
            if !self.eat(b':') {
                return None;
            }
            out.push((k, self.value()?));
            if !self.eat(b',') {
                return self.eat(b'}').then_some(out);
            }
        }
    }
}

/// What a header says: dtype, shape, order, and where the data starts.
#[derive(Debug, PartialEq)]
pub struct Header {
    pub dtype: Dtype,
    pub big_endian: bool,
    pub fortran: bool,
    pub shape: Vec<usize>,
    pub data_offset: usize,
}

/// Parses the header at the start of `bytes` (`label` names the file in errors).
pub fn parse_header(bytes: &[u8], label: &str) -> Result<Header> {
    let short = || runtime_err!("[load] Failed to read from {label}: the file is truncated");
    let pre = bytes.get(..8).ok_or_else(short)?;
    if &pre[..6] != MAGIC {
        return Err(runtime_err!("[load] Invalid header in {label}"));
    }
    let (len, start) = match pre[6] {
        1 => (
            u16::from_le_bytes([
                bytes.get(8).copied().ok_or_else(short)?,
                bytes.get(9).copied().ok_or_else(short)?,
            ]) as usize,
            10,
        ),
        2 => {
            let b = bytes.get(8..12).ok_or_else(short)?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)
        }
        _ => {
            return Err(runtime_err!(
                "[load] Unsupported npy format version in {label}"
            ))
        }
    };
    let text = bytes.get(start..start + len).ok_or_else(short)?;
    let bad = |what: &str| value_err!("[load] Invalid npy header in {label}: {what}");
    let dict = Parser { s: text, i: 0 }
        .dict()
        .ok_or_else(|| bad("not a Python dict literal"))?;
    let get = |k: &str| dict.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v);
    let (dtype, big_endian) = match get("descr") {
        Some(Lit::Str(s)) => dtype_from_descr(s)?,
        _ => return Err(bad("no 'descr' string")),
    };
    let fortran = match get("fortran_order") {
        Some(Lit::Bool(b)) => *b,
        _ => return Err(bad("no 'fortran_order' bool")),
    };
    let shape = match get("shape") {
        Some(Lit::Tuple(t)) => t,
        Some(Lit::Int | Lit::Str(_) | Lit::Bool(_) | Lit::None) | None => {
            return Err(bad("no 'shape' tuple"))
        }
    };
    let mut dims = Vec::with_capacity(shape.len().min(64));
    for &d in shape {
        if d < 0 {
            return Err(runtime_err!(
                "[load] Negative dimension in shape in {label}"
            ));
        }
        if d > i32::MAX as i128 {
            return Err(index_err!(
                "[load] Dimension {d} in {label} is larger than MLX's int32 shapes allow"
            ));
        }
        dims.push(d as usize);
    }
    Ok(Header {
        dtype,
        big_endian,
        fortran,
        shape: dims,
        data_offset: start + len,
    })
}

/// Checked byte size of `shape` elements of `dtype`. The shape must also have strides that
/// fit in `isize` (the product of its dimensions with zeros counted as one): an empty array
/// such as `(0, 2**31-1, 2**31-1, 2**31-1)` needs no bytes, but its strides would overflow.
pub(crate) fn nbytes(shape: &[usize], dtype: Dtype, label: &str) -> Result<usize> {
    let strides_fit = shape
        .iter()
        .try_fold(1isize, |acc, &d| {
            acc.checked_mul(isize::try_from(d.max(1)).ok()?)
        })
        .is_some();
    shape
        .iter()
        .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
        .filter(|_| strides_fit)
        .ok_or_else(|| runtime_err!("[load] The shape {shape:?} in {label} is too large"))
}

/// Loads the `.npy` held by `src` starting at `base` and spanning `len` bytes, lazily.
pub fn load_at(src: &Source, base: usize, len: usize) -> Result<Array> {
    let bytes = src.range(base, len)?;
    let h = parse_header(bytes, &src.label)?;
    let n = nbytes(&h.shape, h.dtype, &src.label)?;
    if h.data_offset.checked_add(n).is_none_or(|end| end > len) {
        return Err(runtime_err!(
            "[load] Failed to read from {}: shape {:?} of {} needs {n} bytes of data, {} are left",
            src.label,
            h.shape,
            h.dtype,
            len.saturating_sub(h.data_offset)
        ));
    }
    let fortran = h.fortran && h.shape.len() > 1;
    let decode = match (h.big_endian, fortran) {
        (true, true) => Decode::SwapBytesFortran(h.dtype.size()),
        (true, false) => Decode::SwapBytes(h.dtype.size()),
        (false, true) => Decode::Fortran,
        (false, false) => Decode::Raw,
    };
    Ok(Load::array(
        src,
        base + h.data_offset,
        n,
        decode,
        &h.shape,
        h.dtype,
    ))
}

/// Loads a whole-file `.npy`.
pub fn load(src: &Source) -> Result<Array> {
    load_at(src, 0, src.len())
}
