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
