//! The lazy `Load` primitive: a tensor that is a byte range of a memory-mapped file (or of
//! bytes in memory), copied out and decoded only when the array is evaluated.

use crate::gguf_quants::{self, GgmlType};
use memmap2::Mmap;
use rmx_core::backend::Backend;
use rmx_core::primitive::{OutputSpec, Primitive};
use rmx_core::shape::{row_strides, Shape, Strides};
use rmx_core::{runtime_err, Array, ArrayData, Dtype, Result};
use std::path::Path;
use std::sync::Arc;

/// The bytes of one file, shared by every tensor loaded from it.
#[derive(Clone)]
pub struct Source {
    bytes: Arc<dyn AsRef<[u8]> + Send + Sync>,
    /// "file model.gguf" or "python file object": used in error messages.
    pub label: Arc<str>,
}

impl Source {
    /// Maps a file read-only. The mapping lives as long as any array that still needs it.
    pub fn open(path: &Path) -> std::io::Result<Source> {
        let file = std::fs::File::open(path)?;
        let label: Arc<str> = format!("file {}", path.display()).into();
        if file.metadata()?.len() == 0 {
            return Ok(Source::from_bytes(Vec::new(), &label));
        }
        // Safety: the mapping is read-only. A file truncated by another process while mapped
        // would fault on access (as with any mmap); rmx's own saves replace files by rename.
        let map = unsafe { Mmap::map(&file)? };
        let bytes: Arc<dyn AsRef<[u8]> + Send + Sync> = Arc::new(map);
        mapped::register(&file, &bytes);
        Ok(Source { bytes, label })
    }

    pub fn from_bytes(bytes: Vec<u8>, label: &str) -> Source {
        Source {
            bytes: Arc::new(bytes),
            label: label.into(),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        (*self.bytes).as_ref()
    }

    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `len` bytes at `offset`, or an error naming the file.
    pub fn range(&self, offset: usize, len: usize) -> Result<&[u8]> {
        offset
            .checked_add(len)
            .and_then(|end| self.bytes().get(offset..end))
            .ok_or_else(|| {
                runtime_err!(
                    "[load] Failed to read {len} bytes at offset {offset} from {} ({} bytes long)",
                    self.label,
                    self.len()
                )
            })
    }
}

/// How the stored bytes become the array's elements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decode {
    /// Little-endian elements, copied as they are.
    Raw,
    /// Big-endian elements of this many bytes: each element's bytes are reversed
    /// (for complex64 that swaps real and imaginary parts too, as MLX does).
    SwapBytes(usize),
    /// Stored in column-major (Fortran) order: the result is a column-major view.
    Fortran,
    /// Both: big-endian and column-major.
    SwapBytesFortran(usize),
    /// GGUF Q4_0/Q4_1/Q8_0 repacked into MLX's affine format (weights, scales, biases).
    GgufPacked(GgmlType),
    /// A GGUF type converted to float16 (bfloat16, k-quants, ...).
    GgufToF16(GgmlType),
}

/// Reads one tensor (or, for `GgufPacked`, three sibling arrays) from a byte range of a file.
pub struct Load {
    pub source: Source,
    pub offset: usize,
    pub nbytes: usize,
    pub decode: Decode,
}

impl std::fmt::Debug for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Load({}, offset={}, nbytes={}, {:?})",
            self.source.label, self.offset, self.nbytes, self.decode
        )
    }
}

impl Load {
    /// A lazy array (or the sibling arrays) reading `nbytes` at `offset`. The range must
    /// already have been checked against the source; `eval` checks again and errors.
    pub fn arrays(
        source: &Source,
        offset: usize,
        nbytes: usize,
        decode: Decode,
        outputs: Vec<(Shape, Dtype)>,
    ) -> Vec<Array> {
        let prim = Arc::new(Load {
            source: source.clone(),
            offset,
            nbytes,
            decode,
        });
        Array::from_multi_op(outputs, prim, vec![])
    }

    pub fn array(
        source: &Source,
        offset: usize,
        nbytes: usize,
        decode: Decode,
        shape: &[usize],
        dtype: Dtype,
    ) -> Array {
        Self::arrays(source, offset, nbytes, decode, vec![(shape.into(), dtype)])
            .pop()
            .expect("one output")
    }
}

fn col_strides(shape: &[usize]) -> Strides {
    let mut s = Strides::from_elem(0, shape.len());
    let mut acc = 1isize;
    for (i, &d) in shape.iter().enumerate() {
        s[i] = acc;
        acc *= d.max(1) as isize;
    }
    s
}

fn swapped(bytes: &[u8], size: usize) -> Vec<u8> {
    let mut v = bytes.to_vec();
    for chunk in v.chunks_exact_mut(size) {
        chunk.reverse();
    }
    v
}

/// Column-major bytes as a column-major view (no copy beyond the read).
fn fortran(bytes: &[u8], spec: &OutputSpec) -> Result<ArrayData> {
    let rev: Vec<usize> = spec.shape.iter().rev().copied().collect();
    let data = ArrayData::from_bytes(bytes, spec.dtype, &rev)?;
    debug_assert_eq!(data.strides, row_strides(&rev));
    Ok(data.view(spec.shape.clone(), col_strides(&spec.shape), 0))
}

impl Primitive for Load {
    fn name(&self) -> &'static str {
        "Load"
    }

    fn eval(
        &self,
        _backend: &dyn Backend,
        _inputs: &[ArrayData],
        outputs: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        let bytes = self.source.range(self.offset, self.nbytes)?;
        let spec = &outputs[0];
        match self.decode {
            Decode::Raw => Ok(vec![ArrayData::from_bytes(bytes, spec.dtype, &spec.shape)?]),
            Decode::SwapBytes(size) => Ok(vec![ArrayData::from_bytes(
                &swapped(bytes, size),
                spec.dtype,
                &spec.shape,
            )?]),
            Decode::Fortran => Ok(vec![fortran(bytes, spec)?]),
            Decode::SwapBytesFortran(size) => Ok(vec![fortran(&swapped(bytes, size), spec)?]),
            Decode::GgufPacked(t) => {
                let (w, s, b) = gguf_quants::unpack_affine(t, bytes)?;
                Ok(vec![
                    ArrayData::from_slice(&w, &outputs[0].shape)?,
                    ArrayData::from_slice(&s, &outputs[1].shape)?,
                    ArrayData::from_slice(&b, &outputs[2].shape)?,
                ])
            }
            Decode::GgufToF16(t) => {
                let v = gguf_quants::to_f16(t, bytes)?;
                Ok(vec![ArrayData::from_slice(&v, &spec.shape)?])
            }
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Which files this process has mapped and still uses, so a save over one of them
/// replaces it by rename (the mapping keeps the old bytes) while a save over any other
/// file rewrites it in place as MLX does (renaming over a large file is slow: the old
/// file's pages, often still being written back, are dropped at the rename).
pub(crate) mod mapped {
    use std::sync::{Arc, Mutex, MutexGuard, Weak};

    type Bytes = dyn AsRef<[u8]> + Send + Sync;
    /// (device, inode) of each mapped file, with the mapping.
    type Mapped = Vec<((u64, u64), Weak<Bytes>)>;
    static MAPPED: Mutex<Mapped> = Mutex::new(Vec::new());

    #[cfg(unix)]
    fn id(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        Some((meta.dev(), meta.ino()))
    }

    #[cfg(not(unix))]
    fn id(_meta: &std::fs::Metadata) -> Option<(u64, u64)> {
        None
    }

    fn lock() -> MutexGuard<'static, Mapped> {
        MAPPED.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn register(file: &std::fs::File, bytes: &Arc<Bytes>) {
        if let Some(key) = file.metadata().ok().as_ref().and_then(id) {
            let mut m = lock();
            m.retain(|(_, w)| w.strong_count() > 0);
            m.push((key, Arc::downgrade(bytes)));
        }
    }

    /// Whether the file at `meta` may still be mapped by a live array (true when the
    /// platform gives no file identity).
    pub fn in_use(meta: &std::fs::Metadata) -> bool {
        match id(meta) {
            Some(key) => lock()
                .iter()
                .any(|(k, w)| *k == key && w.strong_count() > 0),
            None => true,
        }
    }
}
