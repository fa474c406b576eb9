//! rmx-io: save and load arrays in MLX's file formats (npy, npz, safetensors, GGUF).
//! Files opened by path are memory-mapped; every tensor is a lazy `Load` node (lazy.rs).

pub mod export;
pub mod gguf;
mod gguf_quants;
pub mod lazy;
pub mod npy;
pub mod npz;
pub mod safetensors;

use lazy::Source;
use rmx_core::{runtime_err, value_err, Array, Result};
use std::io::{BufWriter, Cursor, Seek, Write};
use std::path::{Path, PathBuf};

/// The file formats `load` understands, named as MLX's `format=` argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Npy,
    Npz,
    Safetensors,
    Gguf,
}

impl Format {
    /// MLX's names, exactly (`"npy"`, not `".npy"` or `"NPY"`).
    pub fn from_name(name: &str) -> Result<Format> {
        match name {
            "npy" => Ok(Format::Npy),
            "npz" => Ok(Format::Npz),
            "safetensors" => Ok(Format::Safetensors),
            "gguf" => Ok(Format::Gguf),
            _ => Err(value_err!("[load] Unknown file format {name}")),
        }
    }

    /// The format named by the text after the last `.` of a file name.
    pub fn from_file_name(name: &str) -> Result<Format> {
        match name.rfind('.') {
            Some(i) => Format::from_name(&name[i + 1..]),
            None => Err(value_err!(
                "[load] Could not infer file format from extension"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Npy => "npy",
            Format::Npz => "npz",
            Format::Safetensors => "safetensors",
            Format::Gguf => "gguf",
        }
    }
}

/// One GGUF metadata value, as MLX returns it: numbers and bools are arrays (0-d for a
/// scalar, 1-d for a list), strings are strings, lists of strings are lists.
#[derive(Clone, Debug)]
pub enum MetaValue {
    Array(Array),
    Str(String),
    StrList(Vec<String>),
}

/// What a file holds: one array (npy) or named arrays in file order (the others).
#[derive(Clone, Debug)]
pub enum Loaded {
    Array(Array),
    Arrays(Vec<(String, Array)>),
}

/// Metadata beside the arrays: safetensors' string map or GGUF's typed key/values.
#[derive(Clone, Debug)]
pub enum Metadata {
    Strings(Vec<(String, String)>),
    Gguf(Vec<(String, MetaValue)>),
}

/// Loads a file, inferring the format from its extension.
pub fn load(path: impl AsRef<Path>) -> Result<Loaded> {
    Ok(load_with_metadata(path, None, false)?.0)
}

/// `mx.load(file, format=..., return_metadata=...)` for a path. With `return_metadata`,
/// npy and npz raise (they have none), as in MLX.
pub fn load_with_metadata(
    path: impl AsRef<Path>,
    format: Option<Format>,
    return_metadata: bool,
) -> Result<(Loaded, Option<Metadata>)> {
    let path = path.as_ref();
    let format = match format {
        Some(f) => f,
        None => Format::from_file_name(&path.to_string_lossy())?,
    };
    check_metadata_format(format, return_metadata)?;
    let open = |ctx: &str| {
        Source::open(path).map_err(|e| match format {
            // MLX raises ValueError for a missing GGUF or npz file, RuntimeError otherwise.
            Format::Gguf => value_err!("[load_gguf] Failed to open {}: {e}", path.display()),
            Format::Npz => value_err!(
                "[load_npz] Input must be a zip file or a file-like object that can be opened with zipfile.ZipFile ({}: {e})",
                path.display()
            ),
            _ => runtime_err!("[{ctx}] Failed to open file {}: {e}", path.display()),
        })
    };
    match format {
        Format::Npy => Ok((Loaded::Array(npy::load(&open("load")?)?), None)),
        Format::Npz => Ok((Loaded::Arrays(npz::load(&open("load_npz")?)?), None)),
        Format::Safetensors => {
            let (arrays, meta) = safetensors::load(&open("load_safetensors")?)?;
            Ok((Loaded::Arrays(arrays), Some(Metadata::Strings(meta))))
        }
        Format::Gguf => {
            let (arrays, meta) = gguf::load(&open("load_gguf")?)?;
            Ok((Loaded::Arrays(arrays), Some(Metadata::Gguf(meta))))
        }
    }
    .map(|(l, m)| (l, if return_metadata { m } else { None }))
}

/// Loads from bytes already in memory (Python file-like objects).
pub fn load_bytes(
    bytes: Vec<u8>,
    label: &str,
    format: Format,
    return_metadata: bool,
) -> Result<(Loaded, Option<Metadata>)> {
    check_metadata_format(format, return_metadata)?;
    let src = Source::from_bytes(bytes, label);
    let (loaded, meta) = match format {
        Format::Npy => (Loaded::Array(npy::load(&src)?), None),
        Format::Npz => (Loaded::Arrays(npz::load(&src)?), None),
        Format::Safetensors => {
            let (a, m) = safetensors::load(&src)?;
            (Loaded::Arrays(a), Some(Metadata::Strings(m)))
        }
        Format::Gguf => {
            let (a, m) = gguf::load(&src)?;
            (Loaded::Arrays(a), Some(Metadata::Gguf(m)))
        }
    };
    Ok((loaded, if return_metadata { meta } else { None }))
}

fn check_metadata_format(format: Format, return_metadata: bool) -> Result<()> {
    if return_metadata && matches!(format, Format::Npy | Format::Npz) {
        return Err(value_err!(
            "[load] metadata not supported for format {}",
            format.name()
        ));
    }
    Ok(())
}

/// `path` with `suffix` appended unless it already ends with it (MLX's rule: `a.txt` → `a.txt.npy`).
pub fn with_suffix(path: impl AsRef<Path>, suffix: &str) -> PathBuf {
    let p = path.as_ref();
    if p.to_string_lossy().ends_with(suffix) {
        p.to_path_buf()
    } else {
        let mut s = p.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    }
}

/// Where a format writes: a file or bytes in memory (npz's zip writer needs `Seek`).
pub trait Sink: Write + Seek {}
impl<T: Write + Seek> Sink for T {}

pub(crate) fn io_err(e: std::io::Error) -> rmx_core::Error {
    runtime_err!("[save] Unable to write: {e}")
}

/// Row-major bytes of `a` handed to `f`, borrowed from its buffer when it already holds them.
pub(crate) fn with_row_major_bytes<R>(a: &Array, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
    let d = a.data()?;
    let size = d.dtype.size();
    let n = d.numel() * size;
    if d.is_row_contiguous() {
        if let Some(s) = d
            .buffer
            .as_bytes()
            .get(d.offset * size..d.offset * size + n)
        {
            return Ok(f(s));
        }
    }
    Ok(f(&a.to_bytes()?))
}

/// Runs a format writer into memory.
pub fn to_vec(write: impl FnOnce(&mut dyn Sink) -> Result<()>) -> Result<Vec<u8>> {
    let mut c = Cursor::new(Vec::new());
    write(&mut c)?;
    Ok(c.into_inner())
}

/// Evaluates every array (lazy inputs may read from the file about to be replaced).
fn eval_all<'a>(arrays: impl IntoIterator<Item = &'a Array>) -> Result<()> {
    let v: Vec<Array> = arrays.into_iter().cloned().collect();
    rmx_core::eval(&v)
}

/// `mx.save`: one array to `.npy` (the suffix is appended when missing).
pub fn save(path: impl AsRef<Path>, a: &Array) -> Result<()> {
    eval_all([a])?;
    write_file(&with_suffix(path, ".npy"), |w| npy::write(w, a))
}

/// `mx.savez`: named arrays in an uncompressed `.npz`.
pub fn savez(path: impl AsRef<Path>, arrays: &[(String, Array)]) -> Result<()> {
    eval_all(arrays.iter().map(|(_, a)| a))?;
    write_file(&with_suffix(path, ".npz"), |w| npz::write(w, arrays, false))
}

/// `mx.savez_compressed`: named arrays in a deflate-compressed `.npz`.
pub fn savez_compressed(path: impl AsRef<Path>, arrays: &[(String, Array)]) -> Result<()> {
    eval_all(arrays.iter().map(|(_, a)| a))?;
    write_file(&with_suffix(path, ".npz"), |w| npz::write(w, arrays, true))
}

/// `mx.save_safetensors` with string metadata.
pub fn save_safetensors(
    path: impl AsRef<Path>,
    arrays: &[(String, Array)],
    metadata: &[(String, String)],
) -> Result<()> {
    eval_all(arrays.iter().map(|(_, a)| a))?;
    write_file(&with_suffix(path, ".safetensors"), |w| {
        safetensors::write(w, arrays, metadata)
    })
}

/// `mx.save_gguf` with metadata.
pub fn save_gguf(
    path: impl AsRef<Path>,
    arrays: &[(String, Array)],
    metadata: &[(String, MetaValue)],
) -> Result<()> {
    eval_all(arrays.iter().map(|(_, a)| a))?;
    write_file(&with_suffix(path, ".gguf"), |w| {
        gguf::write(w, arrays, metadata)
    })
}

/// Writes a whole file through `write`. A file that arrays of this process still map is
/// replaced by renaming a temporary one over it, so those arrays keep their data instead
/// of faulting on a truncated mapping; any other file is rewritten in place, as MLX does
/// (see `lazy::mapped`).
pub fn write_file(path: &Path, write: impl FnOnce(&mut dyn Sink) -> Result<()>) -> Result<()> {
    let err = |e: std::io::Error| runtime_err!("[save] Unable to write {}: {e}", path.display());
    let replaceable = match std::fs::metadata(path) {
        Ok(m) => m.is_file() && lazy::mapped::in_use(&m),
        Err(_) => false,
    };
    let tmp = path.file_name().filter(|_| replaceable).map(|name| {
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".rmx-tmp-{}", std::process::id()));
        path.with_file_name(tmp_name)
    });
    if let Some(tmp) = tmp {
        if let Ok(f) = std::fs::File::create(&tmp) {
            let mut w = BufWriter::with_capacity(1 << 20, f);
            let done = write(&mut w)
                .and_then(|_| w.flush().map_err(err))
                .and_then(|_| std::fs::rename(&tmp, path).map_err(err));
            if done.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            return done;
        }
    }
    let f = std::fs::File::create(path).map_err(err)?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    write(&mut w)?;
    w.flush().map_err(err)
}
