//! `.gguf` (llama.cpp's format, versions 2 and 3): typed metadata, tensor infos, aligned
//! data. Our own bounds-checked parser; tensors load lazily with MLX's conversions
//! (Q4_0/Q4_1/Q8_0 → packed uint32 + `.scales` + `.biases`; BF16 and k-quants → float16).

use crate::gguf_quants::GgmlType;
use crate::lazy::{Decode, Load, Source};
use crate::{io_err, with_row_major_bytes, MetaValue, Sink};
use rmx_core::{runtime_err, value_err, Array, Dtype, Result};
use std::collections::{HashMap, HashSet};

const MAGIC: &[u8] = b"GGUF";
const DEFAULT_ALIGNMENT: usize = 32;

// Metadata value types.
const T_UINT8: u32 = 0;
const T_INT8: u32 = 1;
const T_UINT16: u32 = 2;
const T_INT16: u32 = 3;
const T_UINT32: u32 = 4;
const T_INT32: u32 = 5;
const T_FLOAT32: u32 = 6;
const T_BOOL: u32 = 7;
const T_STRING: u32 = 8;
const T_ARRAY: u32 = 9;
const T_UINT64: u32 = 10;
const T_INT64: u32 = 11;
const T_FLOAT64: u32 = 12;

fn value_dtype(t: u32) -> Option<Dtype> {
    Some(match t {
        T_UINT8 => Dtype::Uint8,
        T_INT8 => Dtype::Int8,
        T_UINT16 => Dtype::Uint16,
        T_INT16 => Dtype::Int16,
        T_UINT32 => Dtype::Uint32,
        T_INT32 => Dtype::Int32,
        T_FLOAT32 => Dtype::Float32,
        T_BOOL => Dtype::Bool,
        T_UINT64 => Dtype::Uint64,
        T_INT64 => Dtype::Int64,
        T_FLOAT64 => Dtype::Float64,
        _ => return None,
    })
}

/// A cursor over the file that never reads past the end.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    label: &'a str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        match end {
            Some(end) => {
                let s = &self.b[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(runtime_err!(
                "[load_gguf] {} is truncated: needed {n} bytes at offset {}, the file has {}",
                self.label,
                self.pos,
                self.b.len()
            )),
        }
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn len(&mut self) -> Result<usize> {
        let n = self.u64()?;
        usize::try_from(n)
            .map_err(|_| runtime_err!("[load_gguf] length {n} in {} is too large", self.label))
    }
    fn string(&mut self, what: &str) -> Result<String> {
        let n = self.len()?;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| value_err!("[load_gguf] A {what} in {} is not valid UTF-8", self.label))
    }
    fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }
}

fn read_value(r: &mut Reader, t: u32, key: &str) -> Result<MetaValue> {
    if t == T_STRING {
        return Ok(MetaValue::Str(r.string("string value")?));
    }
    if t == T_ARRAY {
        let et = r.u32()?;
        let n = r.len()?;
        if et == T_STRING {
            // Each string takes at least its 8-byte length: bound the count by the file.
            if n > r.remaining() / 8 {
                return Err(runtime_err!(
                    "[load_gguf] Array '{key}' in {} claims {n} strings, more than the file can hold",
                    r.label
                ));
            }
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(r.string("string value")?);
            }
            return Ok(MetaValue::StrList(v));
        }
        let dtype = match value_dtype(et) {
            Some(d) => d,
            None if et == T_ARRAY => {
                return Err(runtime_err!(
                "[load_gguf] Multiple levels of nested arrays are not supported ('{key}' in {})",
                r.label
            ))
            }
            None => {
                return Err(runtime_err!(
                    "[load_gguf] Unknown metadata value type {et} for '{key}' in {}",
                    r.label
                ))
            }
        };
        let nbytes = n
            .checked_mul(dtype.size())
            .ok_or_else(|| runtime_err!("[load_gguf] Array '{key}' in {} is too large", r.label))?;
        let bytes = r.take(nbytes)?;
        return Ok(MetaValue::Array(array_from_le(bytes, dtype, &[n])?));
    }
    let dtype = value_dtype(t).ok_or_else(|| {
        runtime_err!(
            "[load_gguf] Unknown metadata value type {t} for '{key}' in {}",
            r.label
        )
    })?;
    let bytes = r.take(dtype.size())?;
    Ok(MetaValue::Array(array_from_le(bytes, dtype, &[])?))
}

fn array_from_le(bytes: &[u8], dtype: Dtype, shape: &[usize]) -> Result<Array> {
    if dtype == Dtype::Bool {
        let v: Vec<u8> = bytes.iter().map(|&b| (b != 0) as u8).collect();
        return Ok(Array::from_data(rmx_core::ArrayData::from_bytes(
            &v, dtype, shape,
        )?));
    }
    Ok(Array::from_data(rmx_core::ArrayData::from_bytes(
        bytes, dtype, shape,
    )?))
}

struct TensorInfo {
    name: String,
    dims: Vec<usize>,
    ty: GgmlType,
    offset: usize,
}

/// Parses the file and returns lazy arrays (file order) and the metadata (file order).
#[allow(clippy::type_complexity)]
pub fn load(src: &Source) -> Result<(Vec<(String, Array)>, Vec<(String, MetaValue)>)> {
    let label: &str = &src.label;
    let mut r = Reader {
        b: src.bytes(),
        pos: 0,
        label,
    };
    if src.len() < 4 || r.take(4)? != MAGIC {
        return Err(runtime_err!(
            "[load_gguf] gguf_init failed: {label} is not a GGUF file (bad magic)"
        ));
    }
    let version = r.u32()?;
    if version != 2 && version != 3 {
        return Err(runtime_err!(
            "[load_gguf] gguf_init failed: unsupported GGUF version {version} in {label} (2 and 3 are supported)"
        ));
    }
    let n_tensors = r.len()?;
    let n_kv = r.len()?;
    // Lower bounds of an entry's size keep lying counts from allocating.
    if n_kv > r.remaining() / 12 || n_tensors > r.remaining() / 24 {
        return Err(runtime_err!(
            "[load_gguf] {label} claims {n_tensors} tensors and {n_kv} metadata entries, more than its size allows"
        ));
    }
    let mut metadata: Vec<(String, MetaValue)> = Vec::with_capacity(n_kv);
    let mut meta_index: HashMap<String, usize> = HashMap::with_capacity(n_kv);
    let mut alignment = DEFAULT_ALIGNMENT;
    for _ in 0..n_kv {
        let key = r.string("metadata key")?;
        let t = r.u32()?;
        let value = read_value(&mut r, t, &key)?;
        if key == "general.alignment" {
            alignment = match (&value, t) {
                (MetaValue::Array(a), T_UINT32) => a.item_as::<u32>()? as usize,
                _ => {
                    return Err(runtime_err!(
                        "[load_gguf] general.alignment in {label} is not a uint32"
                    ))
                }
            };
            if alignment == 0 || !alignment.is_power_of_two() {
                return Err(runtime_err!(
                    "[load_gguf] general.alignment {alignment} in {label} is not a power of two"
                ));
            }
        }
        // A repeated key keeps its first place and takes the last value. Hash maps keep
        // the name checks linear: a file can hold millions of entries.
        match meta_index.get(&key) {
            Some(&i) => metadata[i].1 = value,
            None => {
                meta_index.insert(key.clone(), metadata.len());
                metadata.push((key, value));
            }
        }
    }
    let mut infos = Vec::with_capacity(n_tensors);
    for _ in 0..n_tensors {
        let name = r.string("tensor name")?;
        let n_dims = r.u32()? as usize;
        if n_dims > 16 {
            return Err(runtime_err!(
                "[load_gguf] Tensor '{name}' in {label} has {n_dims} dimensions"
            ));
        }
        let mut dims = Vec::with_capacity(n_dims);
        for _ in 0..n_dims {
            let d = r.u64()?;
            if d > i32::MAX as u64 {
                return Err(runtime_err!(
                    "[load_gguf] Tensor '{name}' in {label} has dimension {d}, beyond MLX's int32 shapes"
                ));
            }
            dims.push(d as usize);
        }
        // GGML lists the fastest-varying dimension first; MLX shapes are the other way round.
        dims.reverse();
        let ty = GgmlType::from_id(r.u32()?);
        let offset = r.len()?;
        infos.push(TensorInfo {
            name,
            dims,
            ty,
            offset,
        });
    }
    let data_start = r.pos.div_ceil(alignment) * alignment;
    let mut arrays: Vec<(String, Array)> = Vec::with_capacity(n_tensors);
    let mut names: HashSet<String> = HashSet::with_capacity(n_tensors);
    let mut ranges: Vec<(usize, usize, usize)> = Vec::with_capacity(n_tensors);
    for (i, t) in infos.iter().enumerate() {
        let name = &t.name;
        let bad = |what: String| runtime_err!("[load_gguf] Tensor '{name}' in {label}: {what}");
        let (per_block, block_bytes) = t.ty.block().ok_or_else(|| {
            bad(format!(
                "tensor type {} is not supported (unknown to rmx)",
                t.ty.name()
            ))
        })?;
        let numel = crate::npy::nbytes(&t.dims, Dtype::Uint8, label)
            .map_err(|_| bad(format!("shape {:?} is too large", t.dims)))?;
        let last = t.dims.last().copied().unwrap_or(1);
        if !last.is_multiple_of(per_block) {
            return Err(bad(format!(
                "has incompatible last dim shape: {last} (type {} packs blocks of {per_block})",
                t.ty.name()
            )));
        }
        let nbytes = (numel / per_block)
            .checked_mul(block_bytes)
            .ok_or_else(|| bad("size overflows".into()))?;
        if !t.offset.is_multiple_of(alignment) {
            return Err(bad(format!(
                "offset {} is not a multiple of the alignment {alignment}",
                t.offset
            )));
        }
        let start = data_start
            .checked_add(t.offset)
            .filter(|s| s.checked_add(nbytes).is_some_and(|e| e <= src.len()))
            .ok_or_else(|| {
                bad(format!(
                    "data at offset {} + {nbytes} bytes lies past the end of the file ({} bytes)",
                    t.offset,
                    src.len()
                ))
            })?;
        ranges.push((start, start + nbytes, i));
        let shape = &t.dims;
        let plain = |dtype: Dtype| vec![Load::array(src, start, nbytes, Decode::Raw, shape, dtype)];
        let f16 = || {
            vec![Load::array(
                src,
                start,
                nbytes,
                Decode::GgufToF16(t.ty),
                shape,
                Dtype::Float16,
            )]
        };
        let outs = match t.ty {
            GgmlType::F32 => plain(Dtype::Float32),
            GgmlType::F16 => plain(Dtype::Float16),
            GgmlType::I8 => plain(Dtype::Int8),
            GgmlType::I16 => plain(Dtype::Int16),
            GgmlType::I32 => plain(Dtype::Int32),
            GgmlType::I64 => plain(Dtype::Int64),
            GgmlType::F64 => plain(Dtype::Float64),
            GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0 => {
                let bits = if t.ty == GgmlType::Q8_0 { 8 } else { 4 };
                let mut w_shape = shape.clone();
                let mut s_shape = shape.clone();
                if let (Some(w), Some(s)) = (w_shape.last_mut(), s_shape.last_mut()) {
                    *w = *w * bits / 32;
                    *s /= 32;
                }
                let outs = Load::arrays(
                    src,
                    start,
                    nbytes,
                    Decode::GgufPacked(t.ty),
                    vec![
                        (w_shape.as_slice().into(), Dtype::Uint32),
                        (s_shape.as_slice().into(), Dtype::Float16),
                        (s_shape.as_slice().into(), Dtype::Float16),
                    ],
                );
                // MLX drops the last 7 bytes (".weight") whatever they are.
                let prefix = if name.len() >= 7 {
                    let cut = name.len() - 7;
                    if !name.is_char_boundary(cut) {
                        return Err(value_err!(
                            "[load_gguf] Quantized tensor name '{name}' in {label} does not end in '.weight'"
                        ));
                    }
                    &name[..cut]
                } else {
                    name.as_str()
                };
                let mut o = outs.into_iter();
                insert(&mut arrays, &mut names, name.clone(), o.next().unwrap(), label)?;
                insert(&mut arrays, &mut names, format!("{prefix}.scales"), o.next().unwrap(), label)?;
                insert(&mut arrays, &mut names, format!("{prefix}.biases"), o.next().unwrap(), label)?;
                continue;
            }
            GgmlType::Other(_) => {
                return Err(bad(format!(
                    "tensor type {} is not supported (rmx decodes F32, F16, BF16, F64, I8-I64, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q2_K-Q8_K)",
                    t.ty.name()
                )))
            }
            _ => f16(),
        };
        for a in outs {
            insert(&mut arrays, &mut names, name.clone(), a, label)?;
        }
    }
    ranges.retain(|r| r.1 > r.0);
    ranges.sort();
    for w in ranges.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(runtime_err!(
                "[load_gguf] Tensors '{}' and '{}' overlap in {label}",
                infos[w[0].2].name,
                infos[w[1].2].name
            ));
        }
    }
    Ok((arrays, metadata))
}

fn insert(
    arrays: &mut Vec<(String, Array)>,
    names: &mut HashSet<String>,
    name: String,
    a: Array,
    label: &str,
) -> Result<()> {
    if !names.insert(name.clone()) {
        return Err(runtime_err!(
            "[load_gguf] Duplicate parameter name {name} in {label}; this can happen when loading quantized tensors."
        ));
    }
    arrays.push((name, a));
    Ok(())
}

fn tensor_type(dtype: Dtype) -> Option<GgmlType> {
    Some(match dtype {
        Dtype::Float32 => GgmlType::F32,
        Dtype::Float16 => GgmlType::F16,
        Dtype::Int8 => GgmlType::I8,
        Dtype::Int16 => GgmlType::I16,
        Dtype::Int32 => GgmlType::I32,
        _ => return None,
    })
}

fn meta_type(dtype: Dtype) -> Option<u32> {
    Some(match dtype {
        Dtype::Uint8 => T_UINT8,
        Dtype::Int8 => T_INT8,
        Dtype::Uint16 => T_UINT16,
        Dtype::Int16 => T_INT16,
        Dtype::Uint32 => T_UINT32,
        Dtype::Int32 => T_INT32,
        Dtype::Float32 => T_FLOAT32,
        Dtype::Bool => T_BOOL,
        Dtype::Uint64 => T_UINT64,
        Dtype::Int64 => T_INT64,
        _ => return None,
    })
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Serialises arrays (float32, float16, int8, int16, int32, as MLX allows) and metadata
/// (strings, lists of strings, 0-d or 1-d arrays of integer, float32 or bool dtype).
pub fn write(
    w: &mut dyn Sink,
    arrays: &[(String, Array)],
    metadata: &[(String, MetaValue)],
) -> Result<()> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(arrays.len() as u64).to_le_bytes());
    out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (key, v) in metadata {
        put_str(&mut out, key);
        match v {
            MetaValue::Str(s) => {
                out.extend_from_slice(&T_STRING.to_le_bytes());
                put_str(&mut out, s);
            }
            MetaValue::StrList(l) => {
                out.extend_from_slice(&T_ARRAY.to_le_bytes());
                out.extend_from_slice(&T_STRING.to_le_bytes());
                out.extend_from_slice(&(l.len() as u64).to_le_bytes());
                for s in l {
                    put_str(&mut out, s);
                }
            }
            MetaValue::Array(a) => {
                let t = meta_type(a.dtype()).ok_or_else(|| {
                    value_err!(
                        "[save_gguf] array type {} not support for metadata.",
                        a.dtype()
                    )
                })?;
                if a.ndim() > 1 {
                    return Err(runtime_err!(
                        "[save_gguf] Cannot save arrays with more than one dimension."
                    ));
                }
                if a.size() == 0 {
                    return Err(runtime_err!("[save_gguf] Cannot save empty arrays."));
                }
                let bytes = a.to_bytes()?;
                if a.ndim() == 1 {
                    out.extend_from_slice(&T_ARRAY.to_le_bytes());
                    out.extend_from_slice(&t.to_le_bytes());
                    out.extend_from_slice(&(a.size() as u64).to_le_bytes());
                } else {
                    out.extend_from_slice(&t.to_le_bytes());
                }
                out.extend_from_slice(&bytes);
            }
        }
    }
    let mut offset = 0usize;
    for (name, a) in arrays {
        let ty = tensor_type(a.dtype())
            .ok_or_else(|| runtime_err!("[save_gguf] dtype {} is not supported", a.dtype()))?;
        put_str(&mut out, name);
        out.extend_from_slice(&(a.ndim() as u32).to_le_bytes());
        for &d in a.shape().iter().rev() {
            out.extend_from_slice(&(d as u64).to_le_bytes());
        }
        out.extend_from_slice(&ty.id().to_le_bytes());
        out.extend_from_slice(&(offset as u64).to_le_bytes());
        offset = (offset + a.nbytes()).div_ceil(DEFAULT_ALIGNMENT) * DEFAULT_ALIGNMENT;
    }
    out.resize(out.len().div_ceil(DEFAULT_ALIGNMENT) * DEFAULT_ALIGNMENT, 0);
    w.write_all(&out).map_err(io_err)?;
    let zeros = [0u8; DEFAULT_ALIGNMENT];
    for (i, (_, a)) in arrays.iter().enumerate() {
        with_row_major_bytes(a, |b| w.write_all(b))?.map_err(io_err)?;
        let pad = a.nbytes().next_multiple_of(DEFAULT_ALIGNMENT) - a.nbytes();
        if i + 1 < arrays.len() {
            w.write_all(&zeros[..pad]).map_err(io_err)?;
        }
    }
    Ok(())
}

pub fn to_bytes(arrays: &[(String, Array)], metadata: &[(String, MetaValue)]) -> Result<Vec<u8>> {
    crate::to_vec(|w| write(w, arrays, metadata))
}
