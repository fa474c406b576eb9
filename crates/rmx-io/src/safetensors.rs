//! `.safetensors`: a JSON header (names → dtype, shape, byte range) and raw little-endian
//! data. Our own parser on serde_json: it accepts what MLX accepts (gaps between tensors,
//! `"__metadata__": null`, `C64`, `F8_E4M3` as raw uint8), which the `safetensors` crate's
//! validation rejects or lacks, and its errors name the file. Unlike MLX it also reads and
//! writes `F64` (MLX has float64 arrays but refuses them here) and rejects overlapping tensors.

use crate::lazy::{Decode, Load, Source};
use crate::{io_err, with_row_major_bytes, Sink};
use rmx_core::{runtime_err, Array, Dtype, Result};
use serde_json::{Map, Value};

pub fn dtype_name(dtype: Dtype) -> &'static str {
    use Dtype::*;
    match dtype {
        Bool => "BOOL",
        Uint8 => "U8",
        Uint16 => "U16",
        Uint32 => "U32",
        Uint64 => "U64",
        Int8 => "I8",
        Int16 => "I16",
        Int32 => "I32",
        Int64 => "I64",
        Float16 => "F16",
        Bfloat16 => "BF16",
        Float32 => "F32",
        Float64 => "F64",
        Complex64 => "C64",
    }
}

fn dtype_from_name(name: &str) -> Option<Dtype> {
    use Dtype::*;
    Some(match name {
        "BOOL" => Bool,
        "U8" | "F8_E4M3" => Uint8,
        "U16" => Uint16,
        "U32" => Uint32,
        "U64" => Uint64,
        "I8" => Int8,
        "I16" => Int16,
        "I32" => Int32,
        "I64" => Int64,
        "F16" => Float16,
        "BF16" => Bfloat16,
        "F32" => Float32,
        "F64" => Float64,
        "C64" => Complex64,
        _ => return None,
    })
}

/// The file: header as MLX writes it (keys sorted bytewise, `"__metadata__": null` when
/// empty), then each array's row-major bytes in the given order, streamed from its buffer.
pub fn write(
    w: &mut dyn Sink,
    arrays: &[(String, Array)],
    metadata: &[(String, String)],
) -> Result<()> {
    let mut ranges = vec![(0usize, 0usize); arrays.len()];
    let mut end = 0usize;
    for (i, (_, a)) in arrays.iter().enumerate() {
        ranges[i] = (end, end + a.nbytes());
        end += a.nbytes();
    }
    let mut entries: Vec<(String, Value)> = Vec::with_capacity(arrays.len() + 1);
    let meta = if metadata.is_empty() {
        Value::Null
    } else {
        let mut m: Vec<&(String, String)> = metadata.iter().collect();
        m.sort();
        Value::Object(
            m.into_iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    };
    entries.push(("__metadata__".into(), meta));
    for (i, (name, a)) in arrays.iter().enumerate() {
        let mut entry = Map::new();
        entry.insert(
            "data_offsets".into(),
            serde_json::json!([ranges[i].0, ranges[i].1]),
        );
        entry.insert("dtype".into(), dtype_name(a.dtype()).into());
        entry.insert("shape".into(), serde_json::json!(a.shape()));
        entries.push((name.clone(), Value::Object(entry)));
    }
    // Byte order of the keys, as MLX's std::map-backed JSON writes them.
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let header: Map<String, Value> = entries.into_iter().collect();
    let text = serde_json::to_vec(&Value::Object(header))
        .map_err(|e| runtime_err!("[save_safetensors] {e}"))?;
    w.write_all(&(text.len() as u64).to_le_bytes())
        .map_err(io_err)?;
    w.write_all(&text).map_err(io_err)?;
    for (_, a) in arrays {
        with_row_major_bytes(a, |b| w.write_all(b))?.map_err(io_err)?;
    }
    Ok(())
}

pub fn to_bytes(arrays: &[(String, Array)], metadata: &[(String, String)]) -> Result<Vec<u8>> {
    crate::to_vec(|w| write(w, arrays, metadata))
}

fn as_dim(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| {
                // MLX (nlohmann::json) accepts integral floats such as 2.0.
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 1e30)
                    .map(|f| f as i128)
            }),
        _ => None,
    }
}

/// Parses the header and returns lazy arrays (in header order) and the metadata.
#[allow(clippy::type_complexity)]
pub fn load(src: &Source) -> Result<(Vec<(String, Array)>, Vec<(String, String)>)> {
    let label = &src.label;
    let bytes = src.bytes();
    let len_bytes = bytes.get(..8).ok_or_else(|| {
        runtime_err!(
            "[load_safetensors] Failed to read from {label}: the file is shorter than 8 bytes"
        )
    })?;
    let header_len = u64::from_le_bytes(len_bytes.try_into().unwrap());
    let file_len = bytes.len() as u64;
    if header_len > file_len - 8 {
        return Err(runtime_err!(
            "[load_safetensors] The JSON header is {header_len} bytes long but the file is only {file_len} bytes. Perhaps an incomplete download or corrupt file? ({label})"
        ));
    }
    let data_start = 8 + header_len as usize;
    let header: Value = serde_json::from_slice(&bytes[8..data_start])
        .map_err(|e| runtime_err!("[load_safetensors] Invalid JSON header in {label}: {e}"))?;
    let Value::Object(header) = header else {
        return Err(runtime_err!(
            "[load_safetensors] Invalid json metadata {label}"
        ));
    };
    let data_len = bytes.len() - data_start;
    let mut metadata = Vec::new();
    let mut arrays = Vec::new();
    let mut ranges: Vec<(usize, usize, &str)> = Vec::new();
    for (name, entry) in &header {
        let bad =
            |what: String| runtime_err!("[load_safetensors] Tensor '{name}' in {label}: {what}");
        if name == "__metadata__" {
            match entry {
                Value::Null => {}
                Value::Object(m) => {
                    for (k, v) in m {
                        match v {
                            Value::String(s) => metadata.push((k.clone(), s.clone())),
                            _ => return Err(runtime_err!("[load_safetensors] Metadata value '{k}' in {label} is not a string")),
                        }
                    }
                }
                _ => {
                    return Err(runtime_err!(
                        "[load_safetensors] __metadata__ in {label} is not an object"
                    ))
                }
            }
            continue;
        }
        let Value::Object(entry) = entry else {
            return Err(bad("the entry is not an object".into()));
        };
        let dtype_str = entry
            .get("dtype")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no 'dtype' string".into()))?;
        let dtype = dtype_from_name(dtype_str).ok_or_else(|| {
            runtime_err!("[safetensor] unsupported dtype {dtype_str} (tensor '{name}' in {label})")
        })?;
        let shape_v = entry
            .get("shape")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no 'shape' list".into()))?;
        let mut shape = Vec::with_capacity(shape_v.len());
        for d in shape_v {
            match as_dim(d) {
                Some(d) if (0..=i32::MAX as i128).contains(&d) => shape.push(d as usize),
                _ => return Err(bad(format!("invalid dimension {d} in shape"))),
            }
        }
        let offsets = entry
            .get("data_offsets")
            .and_then(Value::as_array)
            .filter(|o| o.len() == 2)
            .ok_or_else(|| bad("no 'data_offsets' pair".into()))?;
        let (start, end) = match (as_dim(&offsets[0]), as_dim(&offsets[1])) {
            (Some(s), Some(e)) if s >= 0 && e >= s => (s, e),
            _ => return Err(bad(format!("invalid data offsets {:?}", offsets))),
        };
        let nbytes = crate::npy::nbytes(&shape, dtype, label)
            .map_err(|_| bad(format!("shape {shape:?} is too large")))?;
        if nbytes as i128 != end - start {
            return Err(bad(format!(
                "invalid data offsets ({start}, {end}) for shape {shape:?} of {dtype}"
            )));
        }
        if end > data_len as i128 {
            return Err(bad(format!(
                "data offsets ({start}, {end}) lie past the end of the data ({data_len} bytes)"
            )));
        }
        let (start, end) = (start as usize, end as usize);
        ranges.push((start, end, name));
        arrays.push((
            name.clone(),
            Load::array(
                src,
                data_start + start,
                end - start,
                Decode::Raw,
                &shape,
                dtype,
            ),
        ));
    }
    ranges.retain(|r| r.1 > r.0);
    ranges.sort();
    for w in ranges.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(runtime_err!(
                "[load_safetensors] Tensors '{}' and '{}' overlap in {label}",
                w[0].2,
                w[1].2
            ));
        }
    }
    Ok((arrays, metadata))
}
