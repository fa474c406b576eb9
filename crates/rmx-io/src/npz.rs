//! `.npz`: a zip archive of `.npy` members, stored (`savez`) or deflated
//! (`savez_compressed`). Stored members load lazily straight from the mapped archive.

use crate::lazy::Source;
use crate::npy;
use crate::Sink;
use rmx_core::{runtime_err, value_err, Array, Result};
use std::collections::HashMap;
use std::io::{Cursor, Read};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

/// Writes named arrays as `<name>.npy` members, in the given order.
pub fn write(w: &mut dyn Sink, arrays: &[(String, Array)], compressed: bool) -> Result<()> {
    let zerr = |e: zip::result::ZipError| runtime_err!("[savez] {e}");
    let mut zip = ZipWriter::new(w);
    for (name, a) in arrays {
        let nbytes = (a.nbytes() + 4096) as u64;
        let options = SimpleFileOptions::default()
            .compression_method(if compressed {
                CompressionMethod::Deflated
            } else {
                CompressionMethod::Stored
            })
            .large_file(nbytes >= u32::MAX as u64);
        zip.start_file(format!("{name}.npy"), options)
            .map_err(zerr)?;
        npy::write(&mut zip, a)?;
    }
    zip.finish().map_err(zerr)?;
    Ok(())
}

pub fn to_bytes(arrays: &[(String, Array)], compressed: bool) -> Result<Vec<u8>> {
    crate::to_vec(|w| write(w, arrays, compressed))
}

fn not_zip(label: &str, e: impl std::fmt::Display) -> rmx_core::Error {
    value_err!(
        "[load_npz] Input must be a zip file or a file-like object that can be opened with zipfile.ZipFile ({label}: {e})"
    )
}

/// Loads every member; names lose a trailing `.npy` (others are kept whole, as in MLX).
pub fn load(src: &Source) -> Result<Vec<(String, Array)>> {
    let mut zip = ZipArchive::new(Cursor::new(src.bytes())).map_err(|e| not_zip(&src.label, e))?;
    let mut out: Vec<(String, Array)> = Vec::with_capacity(zip.len().min(1 << 16));
    let mut index: HashMap<String, usize> = HashMap::new();
    for i in 0..zip.len() {
        let mut f = zip
            .by_index(i)
            .map_err(|e| runtime_err!("[load_npz] Cannot read member {i} of {}: {e}", src.label))?;
        let name = f.name().to_string();
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        let label = format!("{} (member {name})", src.label);
        let array = if f.compression() == CompressionMethod::Stored && !f.encrypted() {
            let start = usize::try_from(f.data_start()).unwrap_or(usize::MAX);
            let len = usize::try_from(f.size()).unwrap_or(usize::MAX);
            src.range(start, len)
                .map_err(|_| runtime_err!("[load] Failed to read from {label}: the member lies past the end of the archive"))?;
            npy::load_at(src, start, len).map_err(|e| relabel(e, &src.label, &label))?
        } else {
            // Bounded by the declared size: a lying header cannot make us allocate more.
            let mut bytes = Vec::new();
            let declared = f.size();
            (&mut f)
                .take(declared)
                .read_to_end(&mut bytes)
                .map_err(|e| runtime_err!("[load] Failed to read from {label}: {e}"))?;
            let member = Source::from_bytes(bytes, &label);
            npy::load(&member)?
        };
        // A repeated name keeps its first place and takes the last array (a hash map keeps
        // this linear in the number of members).
        match index.get(&key) {
            Some(&i) => out[i].1 = array,
            None => {
                index.insert(key.clone(), out.len());
                out.push((key, array));
            }
        }
    }
    Ok(out)
}

fn relabel(e: rmx_core::Error, from: &str, to: &str) -> rmx_core::Error {
    use rmx_core::Error::*;
    match e {
        Value(m) => Value(m.replace(from, to)),
        Index(m) => Index(m.replace(from, to)),
        Type(m) => Type(m.replace(from, to)),
        Runtime(m) => Runtime(m.replace(from, to)),
    }
}
