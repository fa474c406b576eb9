//! Inputs found by the fuzz targets (`scripts/fuzz.sh`), kept as regression tests: every
//! file under `tests/regressions/<format>/` must load to an error or to arrays that
//! evaluate, never panic, from memory and from a path. The committed fuzz seeds
//! (`fuzz/seeds/<format>/`, valid files) must load and evaluate.

use rmx_core::Array;
use rmx_io::{Format, Loaded, MetaValue, Metadata};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

const FORMATS: [Format; 4] = [Format::Npy, Format::Npz, Format::Safetensors, Format::Gguf];

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.is_file() && !p.ends_with(".gitkeep"));
    v.sort();
    v
}

/// Loads (from bytes, or from the path) and evaluates everything; `Err` is the first error.
fn load_all(path: &Path, format: Format, from_path: bool) -> rmx_core::Result<()> {
    let meta = matches!(format, Format::Safetensors | Format::Gguf);
    let (loaded, metadata) = if from_path {
        rmx_io::load_with_metadata(path, Some(format), meta)?
    } else {
        let bytes = std::fs::read(path).expect("read test file");
        rmx_io::load_bytes(bytes, &path.display().to_string(), format, meta)?
    };
    let mut arrays: Vec<Array> = match loaded {
        Loaded::Array(a) => vec![a],
        Loaded::Arrays(v) => v.into_iter().map(|(_, a)| a).collect(),
    };
    if let Some(Metadata::Gguf(m)) = metadata {
        arrays.extend(m.into_iter().filter_map(|(_, v)| match v {
            MetaValue::Array(a) => Some(a),
            _ => None,
        }));
    }
    for a in &arrays {
        a.eval()?;
        a.to_bytes()?;
    }
    Ok(())
}

/// Runs `check` on every file of every format under `root`, failing with all the offenders.
fn each_file(root: &Path, check: impl Fn(&Path, Format, rmx_core::Result<()>) -> Option<String>) {
    let mut problems = Vec::new();
    let mut count = 0;
    for format in FORMATS {
        for path in files(&root.join(format.name())) {
            for from_path in [false, true] {
                count += 1;
                match catch_unwind(AssertUnwindSafe(|| load_all(&path, format, from_path))) {
                    Ok(r) => problems.extend(check(&path, format, r)),
                    Err(_) => problems.push(format!("{}: panicked", path.display())),
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    eprintln!("{count} loads under {}", root.display());
}

#[test]
fn fuzz_regressions_error_without_panicking() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    each_file(&root, |path, _, r| {
        // An error must name the file; a file that loads is fine too.
        let e = r.err()?;
        let name = path.file_name()?.to_string_lossy().to_string();
        (!e.to_string().contains(&name))
            .then(|| format!("{}: error does not name the file: {e}", path.display()))
    });
}

#[test]
fn fuzz_seeds_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    each_file(&root, |path, _, r| {
        r.err().map(|e| format!("{}: {e}", path.display()))
    });
}

fn gguf_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A GGUF of `n` uint8 metadata entries and `n` empty float32 tensors (a few MB for 100k).
fn many_entries_gguf(n: usize) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&(n as u64).to_le_bytes());
    b.extend_from_slice(&(n as u64).to_le_bytes());
    for i in 0..n {
        gguf_str(&mut b, &format!("k{i}"));
        b.extend_from_slice(&0u32.to_le_bytes()); // uint8
        b.push(i as u8);
    }
    for i in 0..n {
        gguf_str(&mut b, &format!("t{i}"));
        b.extend_from_slice(&1u32.to_le_bytes()); // one dimension
        b.extend_from_slice(&0u64.to_le_bytes()); // of size 0
        b.extend_from_slice(&0u32.to_le_bytes()); // F32
        b.extend_from_slice(&0u64.to_le_bytes()); // offset
    }
    b.resize(b.len().next_multiple_of(32), 0);
    b
}

/// A file of many entries loads, with every entry kept in order. (Names are deduplicated
/// with hash maps; comparing each with every earlier one took minutes here. Speed itself is
/// not asserted: tests check behaviour, benchmarks measure time.)
#[test]
fn many_entries_load_in_linear_time() {
    let n = 100_000;
    let (loaded, meta) =
        rmx_io::load_bytes(many_entries_gguf(n), "many.gguf", Format::Gguf, true).unwrap();
    let Loaded::Arrays(arrays) = loaded else {
        panic!("gguf loads named arrays")
    };
    let Some(Metadata::Gguf(meta)) = meta else {
        panic!("gguf has metadata")
    };
    assert_eq!((arrays.len(), meta.len()), (n, n));
    assert_eq!(arrays[n - 1].0, format!("t{}", n - 1));

    let named: Vec<(String, Array)> = (0..20_000)
        .map(|i| {
            (
                format!("a{i}"),
                Array::from_slice(&[i as f32], &[1]).unwrap(),
            )
        })
        .collect();
    let npz = rmx_io::npz::to_bytes(&named, false).unwrap();
    let Loaded::Arrays(back) = rmx_io::load_bytes(npz, "many.npz", Format::Npz, false)
        .unwrap()
        .0
    else {
        panic!("npz loads named arrays")
    };
    assert_eq!(back.len(), 20_000);
}
