//! The lazy array handle. An `Array` is a cheap, clonable reference to either a
//! pending graph node (primitive + inputs) or materialised data (a strided view
//! of a shared buffer). Evaluation (eval.rs) turns the first into the second and
//! drops the node, detaching the graph.

use crate::allocator::Buffer;
use crate::device::Stream;
use crate::dtype::Dtype;
use crate::element::{Element, Scalar};
use crate::error::Result;
use crate::primitive::{OutputSpec, Primitive};
use crate::shape::{is_col_contiguous, is_row_contiguous, numel, row_strides, Shape, Strides};
use parking_lot::{Condvar, Mutex};
use std::sync::Arc;

/// A strided view of a buffer: what a materialised array holds and what kernels read.
#[derive(Clone)]
pub struct ArrayData {
    pub buffer: Arc<Buffer>,
    pub dtype: Dtype,
    pub shape: Shape,
    /// Strides in elements; may be zero (broadcast) or negative (reversed slices).
    pub strides: Strides,
    /// Offset of element `[0, 0, ...]` from the buffer start, in elements.
    pub offset: usize,
}

impl ArrayData {
    /// A fresh, uninitialised row-contiguous array.
    pub fn alloc(dtype: Dtype, shape: &[usize]) -> Result<ArrayData> {
        let buffer = Buffer::new(numel(shape) * dtype.size())?;
        Ok(ArrayData {
            buffer: Arc::new(buffer),
            dtype,
            shape: shape.into(),
            strides: row_strides(shape),
            offset: 0,
        })
    }

    pub fn from_slice<T: Element>(values: &[T], shape: &[usize]) -> Result<ArrayData> {
        assert_eq!(values.len(), numel(shape));
        let out = ArrayData::alloc(T::DTYPE, shape)?;
        unsafe {
            std::ptr::copy_nonoverlapping(values.as_ptr(), out.ptr_mut::<T>(), values.len());
        }
        Ok(out)
    }

    /// Builds a view from raw bytes (row-major) of `dtype`.
    pub fn from_bytes(bytes: &[u8], dtype: Dtype, shape: &[usize]) -> Result<ArrayData> {
        let n = numel(shape) * dtype.size();
        if bytes.len() != n {
            return Err(crate::value_err!(
                "[array] Expected {n} bytes for shape {:?} of {dtype}, got {}.",
                shape,
                bytes.len()
            ));
        }
        let out = ArrayData::alloc(dtype, shape)?;
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.buffer.as_mut_ptr(), n) };
        Ok(out)
    }

    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }
    pub fn is_row_contiguous(&self) -> bool {
        is_row_contiguous(&self.shape, &self.strides)
    }
    pub fn is_col_contiguous(&self) -> bool {
        is_col_contiguous(&self.shape, &self.strides)
    }
    /// Whether a primitive may write its output over this input: the scheduler donated it
    /// (no other reference to the buffer; see `Primitive::donatable_inputs`) and it is the
    /// dense, row-major whole of its buffer. Only meaningful on a donatable input inside
    /// `Primitive::eval`, where every other input's buffer is also held by its array.
    pub fn is_donated_whole(&self) -> bool {
        Arc::strong_count(&self.buffer) == 1
            && self.offset == 0
            && self.numel() > 0
            && self.numel() * self.dtype.size() == self.buffer.nbytes()
            && self.is_row_contiguous()
    }

    /// Pointer to element `[0, 0, ...]`.
    ///
    /// # Safety
    /// `T` must be the Rust type of `self.dtype`.
    pub unsafe fn ptr<T>(&self) -> *const T {
        (self.buffer.as_ptr() as *const T).add(self.offset)
    }

    /// Mutable pointer to element `[0, 0, ...]`; only for the op that owns a fresh buffer.
    ///
    /// # Safety
    /// `T` must be the Rust type of `self.dtype` and no one else may read or write concurrently.
    pub unsafe fn ptr_mut<T>(&self) -> *mut T {
        (self.buffer.as_mut_ptr() as *mut T).add(self.offset)
    }

    /// The elements as a slice when the view is dense row-major.
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        debug_assert_eq!(T::DTYPE, self.dtype);
        if !self.is_row_contiguous() {
            return None;
        }
        Some(unsafe { std::slice::from_raw_parts(self.ptr::<T>(), self.numel()) })
    }

    /// Calls `f(offset)` for every element's offset (in elements, relative to `ptr()`), in row-major order.
    pub fn for_each_offset(&self, mut f: impl FnMut(isize)) {
        for_each_offset(&self.shape, &self.strides, &mut f);
    }

    /// Copies the elements out in row-major order.
    pub fn to_vec<T: Element>(&self) -> Vec<T> {
        debug_assert_eq!(T::DTYPE, self.dtype);
        if let Some(s) = self.as_slice::<T>() {
            return s.to_vec();
        }
        let mut out = Vec::with_capacity(self.numel());
        let p = unsafe { self.ptr::<T>() };
        self.for_each_offset(|o| out.push(unsafe { *p.offset(o) }));
        out
    }

    /// A view of the same buffer with another shape/strides/offset.
    pub fn view(&self, shape: Shape, strides: Strides, offset: usize) -> ArrayData {
        ArrayData {
            buffer: self.buffer.clone(),
            dtype: self.dtype,
            shape,
            strides,
            offset,
        }
    }

    /// A view with its axes in the order `perm` (axis `i` of the view is axis `perm[i]`).
    pub fn permuted(&self, perm: &[usize]) -> ArrayData {
        self.view(
            perm.iter().map(|&d| self.shape[d]).collect(),
            perm.iter().map(|&d| self.strides[d]).collect(),
            self.offset,
        )
    }

    /// A view with `axis` moved last (the others keep their order).
    pub fn with_axis_last(&self, axis: usize) -> ArrayData {
        let mut perm: Vec<usize> = (0..self.ndim()).filter(|&d| d != axis).collect();
        perm.push(axis);
        self.permuted(&perm)
    }

    /// The inverse of `with_axis_last`: a view with the last axis moved to `axis`.
    pub fn with_last_axis_at(&self, axis: usize) -> ArrayData {
        let nd = self.ndim();
        let mut perm: Vec<usize> = (0..nd - 1).collect();
        perm.insert(axis, nd - 1);
        self.permuted(&perm)
    }
}

/// Row-major walk over a strided index space, calling `f` with each element offset.
pub fn for_each_offset(shape: &[usize], strides: &[isize], f: &mut impl FnMut(isize)) {
    let n = numel(shape);
    if n == 0 {
        return;
    }
    let nd = shape.len();
    if nd == 0 {
        f(0);
        return;
    }
    let inner = shape[nd - 1];
    let inner_stride = strides[nd - 1];
    let mut idx = vec![0usize; nd];
    let mut base: isize = 0;
    loop {
        let mut o = base;
        for _ in 0..inner {
            f(o);
            o += inner_stride;
        }
        // advance the outer index
        let mut d = nd - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            base += strides[d];
            if idx[d] < shape[d] {
                break;
            }
            base -= strides[d] * shape[d] as isize;
            idx[d] = 0;
        }
    }
}

/// A node of the lazy graph: one primitive applied to inputs, producing one or more outputs.
pub struct Node {
    pub primitive: Arc<dyn Primitive>,
    /// Cleared once the node is computed, which detaches the graph.
    pub inputs: Mutex<Vec<Array>>,
    pub stream: Stream,
    /// Where the node is in its life; each output array takes its result from `Done`
    /// when it is next touched. Lock order: an array's `state` before its node's `status`.
    pub(crate) status: Mutex<Status>,
    /// The node's event: signalled when `status` becomes `Done` or `Failed`.
    pub(crate) finished: Condvar,
    pub output_specs: Vec<OutputSpec>,
}

/// The life of a node: built, claimed by one evaluation (queued on its stream), then
/// computed or failed. An error stays on the node, so every later evaluation of an
/// array that depends on it reports it.
pub(crate) enum Status {
    Built,
    Scheduled,
    Done(Vec<ArrayData>),
    Failed(crate::Error),
}

impl Node {
    pub(crate) fn new(
        primitive: Arc<dyn Primitive>,
        inputs: Vec<Array>,
        stream: Stream,
        output_specs: Vec<OutputSpec>,
    ) -> Node {
        Node {
            primitive,
            inputs: Mutex::new(inputs),
            stream,
            status: Mutex::new(Status::Built),
            finished: Condvar::new(),
            output_specs,
        }
    }

    /// Whether the node has been computed (successfully).
    pub fn is_computed(&self) -> bool {
        matches!(*self.status.lock(), Status::Done(_))
    }
}

/// What `Array::progress` found.
pub(crate) enum Progress {
    Data(ArrayData),
    Failed(crate::Error),
    /// Pending on a node no evaluation has claimed.
    Unscheduled,
    /// Pending on a node that is queued or running.
    Running(Arc<Node>),
}

pub(crate) enum State {
    Pending { node: Arc<Node>, index: usize },
    Ready(ArrayData),
}

pub struct ArrayInner {
    shape: Shape,
    dtype: Dtype,
    pub(crate) state: Mutex<State>,
}

/// A lazy n-dimensional array. Cloning is cheap (a reference count).
#[derive(Clone)]
pub struct Array {
    pub(crate) inner: Arc<ArrayInner>,
}

impl std::fmt::Debug for Array {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Array(shape={:?}, dtype={})", self.shape(), self.dtype())
    }
}

impl Array {
    /// Wraps materialised data.
    pub fn from_data(data: ArrayData) -> Array {
        Array {
            inner: Arc::new(ArrayInner {
                shape: data.shape.clone(),
                dtype: data.dtype,
                state: Mutex::new(State::Ready(data)),
            }),
        }
    }

    /// A single-output graph node.
    pub fn from_op(
        shape: Shape,
        dtype: Dtype,
        primitive: Arc<dyn Primitive>,
        inputs: Vec<Array>,
    ) -> Array {
        // the common single-output case without from_multi_op's temporary vectors
        let specs = vec![OutputSpec {
            shape: shape.clone(),
            dtype,
        }];
        let stream = crate::device::current_stream();
        let node = Arc::new(Node::new(primitive, inputs, stream, specs));
        Array {
            inner: Arc::new(ArrayInner {
                shape,
                dtype,
                state: Mutex::new(State::Pending { node, index: 0 }),
            }),
        }
    }

    /// A graph node with several outputs (siblings).
    pub fn from_multi_op(
        outputs: Vec<(Shape, Dtype)>,
        primitive: Arc<dyn Primitive>,
        inputs: Vec<Array>,
    ) -> Vec<Array> {
        let specs = outputs
            .iter()
            .map(|(shape, dtype)| OutputSpec {
                shape: shape.clone(),
                dtype: *dtype,
            })
            .collect();
        let stream = crate::device::current_stream();
        let node = Arc::new(Node::new(primitive, inputs, stream, specs));
        outputs
            .into_iter()
            .enumerate()
            .map(|(index, (shape, dtype))| Array {
                inner: Arc::new(ArrayInner {
                    shape,
                    dtype,
                    state: Mutex::new(State::Pending {
                        node: node.clone(),
                        index,
                    }),
                }),
            })
            .collect()
    }

    /// A new handle on output `index` of a pending `node` (used by the transforms to
    /// name siblings of multi-output nodes that the traced graph did not reach).
    pub fn from_node(node: Arc<Node>, index: usize) -> Array {
        let spec = &node.output_specs[index];
        Array {
            inner: Arc::new(ArrayInner {
                shape: spec.shape.clone(),
                dtype: spec.dtype,
                state: Mutex::new(State::Pending {
                    node: node.clone(),
                    index,
                }),
            }),
        }
    }

    pub fn from_slice<T: Element>(values: &[T], shape: &[usize]) -> Result<Array> {
        if values.len() != numel(shape) {
            return Err(crate::value_err!(
                "[array] {} values cannot fill shape {:?}.",
                values.len(),
                shape
            ));
        }
        Ok(Array::from_data(ArrayData::from_slice(values, shape)?))
    }

    pub fn from_vec<T: Element>(values: Vec<T>, shape: &[usize]) -> Result<Array> {
        Self::from_slice(&values, shape)
    }

    /// A 0-d array holding `value` with the given dtype.
    pub fn scalar_of(value: Scalar, dtype: Dtype) -> Result<Array> {
        let data = ArrayData::alloc(dtype, &[])?;
        crate::dispatch!(dtype, T => unsafe { *data.ptr_mut::<T>() = T::from_scalar(value) });
        Ok(Array::from_data(data))
    }

    /// A 0-d array with the dtype MLX infers for a Python scalar.
    pub fn scalar(value: impl Into<Scalar>) -> Array {
        let v = value.into();
        Self::scalar_of(v, v.default_dtype()).expect("allocating a scalar")
    }

    pub fn shape(&self) -> &[usize] {
        &self.inner.shape
    }
    pub fn dtype(&self) -> Dtype {
        self.inner.dtype
    }
    pub fn ndim(&self) -> usize {
        self.inner.shape.len()
    }
    pub fn size(&self) -> usize {
        numel(&self.inner.shape)
    }
    pub fn itemsize(&self) -> usize {
        self.inner.dtype.size()
    }
    pub fn nbytes(&self) -> usize {
        self.size() * self.itemsize()
    }
    /// A stable identity for this array handle (shared by its clones).
    pub fn id(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }
    pub fn dim(&self, axis: i64) -> Result<usize> {
        let ax = crate::shape::normalize_axis("shape", axis, self.ndim())?;
        Ok(self.shape()[ax])
    }

    /// Whether the value is already computed.
    pub fn is_evaluated(&self) -> bool {
        match &*self.inner.state.lock() {
            State::Ready(_) => true,
            State::Pending { node, .. } => node.is_computed(),
        }
    }

    /// The node that produces this array and the output index, if still pending.
    pub fn node(&self) -> Option<(Arc<Node>, usize)> {
        match &*self.inner.state.lock() {
            State::Ready(_) => None,
            State::Pending { node, index } => Some((node.clone(), *index)),
        }
    }

    /// The primitive producing this array, if pending.
    pub fn primitive(&self) -> Option<Arc<dyn Primitive>> {
        self.node().map(|(n, _)| n.primitive.clone())
    }

    /// The inputs of the producing node (empty for leaves and evaluated arrays).
    pub fn inputs(&self) -> Vec<Array> {
        self.node()
            .map(|(n, _)| n.inputs.lock().clone())
            .unwrap_or_default()
    }

    /// The data if computed, without triggering evaluation.
    pub(crate) fn try_data(&self) -> Option<ArrayData> {
        match self.progress() {
            Progress::Data(d) => Some(d),
            _ => None,
        }
    }

    /// Where the array's value stands, under one lock of its state; computed data is
    /// taken from the node into the array (so the node can be dropped).
    pub(crate) fn progress(&self) -> Progress {
        let mut st = self.inner.state.lock();
        let found = match &*st {
            State::Ready(d) => return Progress::Data(d.clone()),
            State::Pending { node, index } => match &*node.status.lock() {
                Status::Done(r) => r[*index].clone(),
                Status::Failed(e) => return Progress::Failed(e.clone()),
                Status::Built => return Progress::Unscheduled,
                Status::Scheduled => return Progress::Running(node.clone()),
            },
        };
        *st = State::Ready(found.clone());
        Progress::Data(found)
    }

    /// Hands `data` (this array's computed data, fetched by the caller) over as the only
    /// reference to its buffer, when nothing else can reach it: the array is held only by
    /// `holders` known references (the consuming node's inputs and the caller's copy of
    /// them) and no view or other array shares the buffer. The array keeps an empty
    /// placeholder, which no one can read. Otherwise returns `data` unchanged.
    pub(crate) fn donate(&self, data: ArrayData, holders: usize) -> ArrayData {
        if Arc::strong_count(&self.inner) != holders {
            return data;
        }
        let mut st = self.inner.state.lock();
        let State::Ready(held) = &mut *st else {
            return data;
        };
        // the state's copy and `data`: no one else
        if !Arc::ptr_eq(&held.buffer, &data.buffer) || Arc::strong_count(&data.buffer) != 2 {
            return data;
        }
        match Buffer::new(0) {
            Ok(empty) => {
                *held = ArrayData {
                    buffer: Arc::new(empty),
                    dtype: held.dtype,
                    shape: vec![0].into(),
                    strides: vec![1].into(),
                    offset: 0,
                };
                data
            }
            Err(_) => data,
        }
    }

    /// Evaluates (if needed) and returns the data view.
    /// The view is readable from the host: a buffer last written on a device is copied back.
    pub fn data(&self) -> Result<ArrayData> {
        let d = match self.try_data() {
            Some(d) => d,
            None => {
                crate::eval::eval(std::slice::from_ref(self))?;
                self.try_data()
                    .ok_or_else(|| crate::runtime_err!("[eval] Array was not evaluated."))?
            }
        };
        d.buffer.make_resident(crate::Device::CPU)?;
        Ok(d)
    }

    /// Evaluates (if needed) and returns the data view wherever its valid copy lives: no
    /// copy back from a device, so not necessarily readable from the host. For code that
    /// hands the buffer to a device API (`rmx_cuda::graph::write_device`, ...).
    pub fn data_in_place(&self) -> Result<ArrayData> {
        if let Some(d) = self.try_data() {
            return Ok(d);
        }
        crate::eval::eval(std::slice::from_ref(self))?;
        self.try_data()
            .ok_or_else(|| crate::runtime_err!("[eval] Array was not evaluated."))
    }

    pub fn eval(&self) -> Result<()> {
        crate::eval::eval(std::slice::from_ref(self))
    }

    /// Evaluates and copies the elements out (row-major) as `T`, which must match the dtype.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        if T::DTYPE != self.dtype() {
            return Err(crate::type_err!(
                "[to_vec] Requested {} but the array is {}.",
                T::DTYPE,
                self.dtype()
            ));
        }
        Ok(self.data()?.to_vec::<T>())
    }

    /// Evaluates and returns the single element of a size-1 array.
    pub fn item(&self) -> Result<Scalar> {
        if self.size() != 1 {
            return Err(crate::value_err!(
                "[item] item can only be called on arrays of size 1."
            ));
        }
        let d = self.data()?;
        Ok(crate::dispatch!(d.dtype, T => unsafe { (*d.ptr::<T>()).to_scalar() }))
    }

    /// Typed `item`: converts the element with C-cast semantics.
    pub fn item_as<T: Element>(&self) -> Result<T> {
        Ok(T::from_scalar(self.item()?))
    }
}

impl From<bool> for Scalar {
    fn from(v: bool) -> Self {
        Scalar::Bool(v)
    }
}
impl From<i32> for Scalar {
    fn from(v: i32) -> Self {
        Scalar::Int(v as i64)
    }
}
impl From<i64> for Scalar {
    fn from(v: i64) -> Self {
        Scalar::Int(v)
    }
}
impl From<f32> for Scalar {
    fn from(v: f32) -> Self {
        Scalar::Float(v as f64)
    }
}
impl From<f64> for Scalar {
    fn from(v: f64) -> Self {
        Scalar::Float(v)
    }
}

impl Array {
    /// Builds an array of `dtype` from dynamically typed values (row-major).
    pub fn from_scalars(values: &[Scalar], shape: &[usize], dtype: Dtype) -> Result<Array> {
        if values.len() != numel(shape) {
            return Err(crate::value_err!(
                "[array] {} values cannot fill shape {:?}.",
                values.len(),
                shape
            ));
        }
        let data = ArrayData::alloc(dtype, shape)?;
        crate::dispatch!(dtype, T => {
            let p = unsafe { data.ptr_mut::<T>() };
            for (i, v) in values.iter().enumerate() {
                unsafe { *p.add(i) = T::from_scalar(*v) };
            }
        });
        Ok(Array::from_data(data))
    }

    /// Evaluates and returns every element as a dynamically typed scalar (row-major).
    pub fn to_scalars(&self) -> Result<Vec<Scalar>> {
        let d = self.data()?;
        Ok(
            crate::dispatch!(d.dtype, T => d.to_vec::<T>().into_iter().map(|v| v.to_scalar()).collect()),
        )
    }

    /// Evaluates and returns the raw bytes in row-major order.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let d = self.data()?;
        let d = if d.is_row_contiguous() {
            d
        } else {
            crate::backend::cpu::CpuBackendCopy::copy(&d)?
        };
        let n = d.numel() * d.dtype.size();
        let start = d.offset * d.dtype.size();
        Ok(d.buffer.as_bytes()[start..start + n].to_vec())
    }
}
