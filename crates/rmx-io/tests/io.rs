//! Round trips through every format, and a fuzz-style test: thousands of random mutations
//! of valid files must load or fail with an error, never panic or read out of bounds.

use rmx_core::{Array, Dtype};
use rmx_io::{gguf, npy, npz, safetensors, Format, Loaded, MetaValue};

fn sample(dtype: Dtype, shape: &[usize], seed: u64) -> Array {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let bytes: Vec<u8> = (0..n * dtype.size())
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            // bool must hold 0 or 1
            if dtype == Dtype::Bool {
                (s & 1) as u8
            } else {
                s as u8
            }
        })
        .collect();
    Array::from_data(rmx_core::ArrayData::from_bytes(&bytes, dtype, shape).unwrap())
}

fn same(a: &Array, b: &Array) {
    assert_eq!(a.shape(), b.shape());
    assert_eq!(a.dtype(), b.dtype());
    assert_eq!(a.to_bytes().unwrap(), b.to_bytes().unwrap());
}

fn arrays(loaded: Loaded) -> Vec<(String, Array)> {
    match loaded {
        Loaded::Arrays(v) => v,
        Loaded::Array(a) => vec![(String::new(), a)],
    }
}

fn load(bytes: Vec<u8>, format: Format) -> rmx_core::Result<Vec<(String, Array)>> {
    let (l, _) = rmx_io::load_bytes(bytes, "test bytes", format, false)?;
    let v = arrays(l);
    let all: Vec<Array> = v.iter().map(|(_, a)| a.clone()).collect();
    rmx_core::eval(&all)?;
    Ok(v)
}

const SHAPES: &[&[usize]] = &[&[], &[0], &[3], &[2, 3], &[2, 0, 3], &[1, 4], &[2, 3, 4]];

#[test]
fn npy_round_trips_every_dtype_and_shape() {
    for d in rmx_core::dtype::ALL_DTYPES {
        for (i, shape) in SHAPES.iter().enumerate() {
            let a = sample(d, shape, i as u64);
            let back = load(npy::to_bytes(&a).unwrap(), Format::Npy).unwrap();
            same(&back[0].1, &a);
        }
    }
}

#[test]
fn npy_transposed_is_written_in_fortran_order() {
    let a = rmx_core::ops::transpose(&sample(Dtype::Int32, &[2, 3], 1), None).unwrap();
    let bytes = npy::to_bytes(&a).unwrap();
    let h = npy::parse_header(&bytes, "t").unwrap();
    assert!(h.fortran);
    same(&load(bytes, Format::Npy).unwrap()[0].1, &a);
}

#[test]
fn npz_safetensors_gguf_round_trip() {
    let all: Vec<(String, Array)> = rmx_core::dtype::ALL_DTYPES
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            (
                format!("{d}"),
                sample(d, SHAPES[i % SHAPES.len()], i as u64),
            )
        })
        .collect();
    for compressed in [false, true] {
        let back = load(npz::to_bytes(&all, compressed).unwrap(), Format::Npz).unwrap();
        for ((k, a), (k2, b)) in all.iter().zip(&back) {
            assert_eq!(k, k2);
            same(a, b);
        }
    }
    let meta = vec![("k".to_string(), "v".to_string())];
    let bytes = safetensors::to_bytes(&all, &meta).unwrap();
    let (l, m) = rmx_io::load_bytes(bytes, "st", Format::Safetensors, true).unwrap();
    let back = arrays(l);
    for (k, a) in &all {
        same(a, &back.iter().find(|(n, _)| n == k).unwrap().1);
    }
    assert!(matches!(m, Some(rmx_io::Metadata::Strings(ref s)) if *s == meta));

    let gg: Vec<(String, Array)> = [
        Dtype::Float32,
        Dtype::Float16,
        Dtype::Int8,
        Dtype::Int16,
        Dtype::Int32,
    ]
    .iter()
    .enumerate()
    .map(|(i, &d)| (format!("t{i}"), sample(d, SHAPES[i + 1], i as u64)))
    .collect();
    let gmeta = vec![
        ("s".to_string(), MetaValue::Str("x".into())),
        (
            "l".to_string(),
            MetaValue::StrList(vec!["a".into(), "".into()]),
        ),
        (
            "n".to_string(),
            MetaValue::Array(sample(Dtype::Uint32, &[3], 9)),
        ),
    ];
    let back = load(gguf::to_bytes(&gg, &gmeta).unwrap(), Format::Gguf).unwrap();
    for ((k, a), (k2, b)) in gg.iter().zip(&back) {
        assert_eq!(k, k2);
        same(a, b);
    }
}

#[test]
fn loading_from_a_path_is_lazy_and_save_replaces_files() {
    let dir = std::env::temp_dir().join(format!("rmx-io-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("w");
    let a = sample(Dtype::Float32, &[64, 64], 3);
    rmx_io::save_safetensors(&p, &[("a".into(), a.clone())], &[]).unwrap();
    let loaded = arrays(rmx_io::load(dir.join("w.safetensors")).unwrap());
    assert!(!loaded[0].1.is_evaluated());
    // Replace the file before reading: the old mapping keeps the old bytes.
    rmx_io::save_safetensors(&p, &[("b".into(), sample(Dtype::Int8, &[2], 4))], &[]).unwrap();
    same(&loaded[0].1, &a);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// xorshift, so the fuzz cases are the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, valid: &[u8]) -> Vec<u8> {
    let mut v = valid.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 => {
                let n = rng.below(v.len() + 1);
                v.truncate(n);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            2 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            3 if v.len() >= 8 => {
                // An extreme 8- or 4-byte field: lengths, counts, dims, offsets.
                let i = rng.below(v.len() - 7);
                let x: u64 = [u64::MAX, 1 << 40, 1 << 31, 0x7fff_ffff, 0, rng.next()][rng.below(6)];
                let w = if rng.below(2) == 0 { 8 } else { 4 };
                v[i..i + w].copy_from_slice(&x.to_le_bytes()[..w]);
            }
            4 => {
                let i = rng.below(v.len() + 1);
                v.insert(i, rng.next() as u8);
            }
            _ if !v.is_empty() => {
                let i = rng.below(v.len());
                v.remove(i);
            }
            _ => {}
        }
    }
    v
}

#[test]
fn mutated_files_never_panic() {
    let arrs: Vec<(String, Array)> = vec![
        ("a".into(), sample(Dtype::Float32, &[2, 3], 1)),
        ("b".into(), sample(Dtype::Int16, &[4], 2)),
        ("c".into(), sample(Dtype::Float16, &[], 3)),
    ];
    let gmeta = vec![
        ("s".to_string(), MetaValue::Str("x".into())),
        (
            "l".to_string(),
            MetaValue::StrList(vec!["a".into(), "bc".into()]),
        ),
        (
            "n".to_string(),
            MetaValue::Array(sample(Dtype::Int32, &[2], 5)),
        ),
    ];
    let seeds: Vec<(Format, Vec<u8>)> = vec![
        (Format::Npy, npy::to_bytes(&arrs[0].1).unwrap()),
        (Format::Npz, npz::to_bytes(&arrs, false).unwrap()),
        (Format::Npz, npz::to_bytes(&arrs, true).unwrap()),
        (
            Format::Safetensors,
            safetensors::to_bytes(&arrs, &[("k".into(), "v".into())]).unwrap(),
        ),
        (Format::Gguf, gguf::to_bytes(&arrs, &gmeta).unwrap()),
        (Format::Gguf, quantized_gguf()),
    ];
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let (mut ok, mut err) = (0, 0);
    for (format, valid) in &seeds {
        assert!(
            load(valid.clone(), *format).is_ok(),
            "{format:?} seed file loads"
        );
        for _ in 0..3000 {
            match load(mutate(&mut rng, valid), *format) {
                Ok(_) => ok += 1,
                Err(_) => err += 1,
            }
        }
    }
    assert!(err > 1000 && ok > 100, "ok {ok}, err {err}");
}

/// A GGUF with Q4_0, Q8_0, Q4_K and BF16 tensors written by hand (random blocks).
fn quantized_gguf() -> Vec<u8> {
    let mut rng = Rng(42);
    let tensors: [(&str, u32, usize, usize); 4] = [
        ("q.weight", 2, 32, 18),
        ("r.weight", 8, 32, 34),
        ("k", 12, 256, 144),
        ("h", 30, 1, 2),
    ];
    let mut out = b"GGUF".to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    let mut offset = 0usize;
    let mut data = Vec::new();
    for (name, ty, per, size) in tensors {
        out.extend_from_slice(&(name.len() as u64).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&(per as u64 * 2).to_le_bytes());
        out.extend_from_slice(&2u64.to_le_bytes());
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&(offset as u64).to_le_bytes());
        let n = 4 * size;
        data.resize(offset, 0);
        data.extend((0..n).map(|_| rng.next() as u8));
        offset = (offset + n).div_ceil(32) * 32;
    }
    out.resize(out.len().div_ceil(32) * 32, 0);
    out.extend_from_slice(&data);
    out
}
