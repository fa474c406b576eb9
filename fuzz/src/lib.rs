//! Shared body of the fuzz targets: parse arbitrary bytes as one format and, when that
//! succeeds, evaluate every returned array so the lazy `Load` reads and decodes run too.
//! Errors are fine; a panic, an out-of-bounds read or an allocation the input cannot
//! justify (libFuzzer's `-malloc_limit_mb`) is a bug.

use rmx_core::Array;
use rmx_io::{Format, Loaded, MetaValue, Metadata};

pub fn run(data: &[u8], format: Format) {
    let with_meta = matches!(format, Format::Safetensors | Format::Gguf);
    let Ok((loaded, meta)) = rmx_io::load_bytes(data.to_vec(), "fuzz input", format, with_meta)
    else {
        return;
    };
    let mut arrays: Vec<Array> = match loaded {
        Loaded::Array(a) => vec![a],
        Loaded::Arrays(v) => v.into_iter().map(|(_, a)| a).collect(),
    };
    if let Some(Metadata::Gguf(m)) = meta {
        arrays.extend(m.into_iter().filter_map(|(_, v)| match v {
            MetaValue::Array(a) => Some(a),
            _ => None,
        }));
    }
    // One at a time: a failing tensor must not hide the others.
    for a in &arrays {
        if rmx_core::eval(std::slice::from_ref(a)).is_ok() {
            let _ = a.to_bytes();
        }
    }
}
