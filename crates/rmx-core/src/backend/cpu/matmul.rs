//! Batched matrix multiply through the `gemm` crate (f32/f64/complex64 directly from
//! strided views; f16/bf16 converted to f32 so accumulation is in f32).

use super::loops::{ConstPtr, SendPtr};
use crate::array::ArrayData;
use crate::dtype::Dtype;
use crate::error::Result;
use crate::shape::Shape;
use gemm::Parallelism;
use num_complex::Complex32;

pub fn matmul(a: &ArrayData, b: &ArrayData) -> Result<ArrayData> {
    let nd = a.ndim();
    let (m, k) = (a.shape[nd - 2], a.shape[nd - 1]);
    let n = b.shape[nd - 1];
    let mut out_shape: Shape = a.shape.clone();
    out_shape[nd - 1] = n;
    match a.dtype {
        Dtype::Float32 => matmul_typed::<f32>(a, b, &out_shape, m, n, k),
        Dtype::Float64 => matmul_typed::<f64>(a, b, &out_shape, m, n, k),
        Dtype::Complex64 => matmul_typed::<Complex32>(a, b, &out_shape, m, n, k),
        Dtype::Float16 | Dtype::Bfloat16 => {
            let a32 = super::copy::cast(a, Dtype::Float32)?;
            let b32 = super::copy::cast(b, Dtype::Float32)?;
            let c32 = matmul_typed::<f32>(&a32, &b32, &out_shape, m, n, k)?;
            super::copy::cast(&c32, a.dtype)
        }
        d => Err(crate::value_err!(
            "[matmul] Only real floating point types are supported but {d} and {d} were provided."
        )),
    }
}

fn matmul_typed<T: Copy + Send + Sync + 'static + crate::element::Element>(
    a: &ArrayData,
    b: &ArrayData,
    out_shape: &[usize],
    m: usize,
    n: usize,
    k: usize,
) -> Result<ArrayData> {
    let out = ArrayData::alloc(T::DTYPE, out_shape)?;
    let nd = a.ndim();
    let batch: usize = out_shape[..nd - 2].iter().product();
    if batch == 0 || m == 0 || n == 0 {
        return Ok(out);
    }
    let batch_shape = &out_shape[..nd - 2];
    let (ars, acs) = (a.strides[nd - 2], a.strides[nd - 1]);
    let (brs, bcs) = (b.strides[nd - 2], b.strides[nd - 1]);
    let ap = ConstPtr(unsafe { a.ptr::<T>() });
    let bp = ConstPtr(unsafe { b.ptr::<T>() });
    let op = SendPtr(unsafe { out.ptr_mut::<T>() });
    let offsets = |mut bi: usize| -> (isize, isize) {
        let (mut oa, mut ob) = (0isize, 0isize);
        for d in (0..nd - 2).rev() {
            let i = (bi % batch_shape[d]) as isize;
            bi /= batch_shape[d];
            oa += i * a.strides[d];
            ob += i * b.strides[d];
        }
        (oa, ob)
    };
    let threads = rayon::current_num_threads();
    let flops_per = m * n * k;
    let run_one = |bi: usize, par: Parallelism| {
        let (oa, ob) = offsets(bi);
        unsafe {
            if k == 0 {
                std::slice::from_raw_parts_mut(op.get().add(bi * m * n), m * n)
                    .fill(<T as crate::element::Element>::zero());
                return;
            }
            gemm::gemm(
                m,
                n,
                k,
                op.get().add(bi * m * n),
                1,
                n as isize,
                false,
                ap.get().offset(oa),
                acs,
                ars,
                bp.get().offset(ob),
                bcs,
                brs,
                <T as crate::element::Element>::zero(),
                <T as crate::element::Element>::one(),
                false,
                false,
                false,
                par,
            )
        }
    };
    if batch > 1 && flops_per < (1 << 21) {
        // many small products: one thread each
        use rayon::prelude::*;
        (0..batch)
            .into_par_iter()
            .for_each(|bi| run_one(bi, Parallelism::None));
    } else {
        let par = if flops_per >= (1 << 15) && threads > 1 {
            Parallelism::Rayon(threads)
        } else {
            Parallelism::None
        };
        for bi in 0..batch {
            run_one(bi, par);
        }
    }
    Ok(out)
}
