//! Lazy graphs: nothing runs until eval, shared subgraphs run once, evaluation detaches
//! the graph, views share buffers.

use rmx_core::{ops, Array, Dtype, Error};
use std::sync::Arc;

fn f32s(v: &[f32], shape: &[usize]) -> Array {
    Array::from_slice(v, shape).unwrap()
}

#[test]
fn ops_are_lazy_until_eval() {
    let a = f32s(&[1.0, 2.0], &[2]);
    let b = ops::add(&a, &a).unwrap();
    assert!(!b.is_evaluated());
    assert!(b.primitive().is_some());
    b.eval().unwrap();
    assert!(b.is_evaluated());
    assert_eq!(b.to_vec::<f32>().unwrap(), vec![2.0, 4.0]);
}

#[test]
fn evaluation_detaches_the_graph() {
    let a = f32s(&[1.0, 2.0], &[2]);
    let b = ops::exp(&a).unwrap();
    let c = ops::multiply(&b, &b).unwrap();
    assert_eq!(c.inputs().len(), 2);
    c.eval().unwrap();
    // c is now a leaf: no primitive, no inputs keeping b alive
    assert!(c.primitive().is_none());
    assert!(c.inputs().is_empty());
}

#[test]
fn shared_subgraph_computes_once() {
    // d = (a+a) * (a+a): the add node appears once in the tape
    let a = f32s(&[3.0], &[1]);
    let s = ops::add(&a, &a).unwrap();
    let (node, _) = s.node().unwrap();
    let d = ops::multiply(&s, &s).unwrap();
    d.eval().unwrap();
    assert_eq!(d.to_vec::<f32>().unwrap(), vec![36.0]);
    // the node was computed and released its inputs
    assert!(node.inputs.lock().is_empty());
    assert_eq!(Arc::strong_count(&node), 1);
}

#[test]
fn loop_runs_in_constant_memory() {
    let mut x = ops::zeros(&[100_000], Dtype::Float32).unwrap();
    x.eval().unwrap();
    let a = Array::scalar(0.99f32);
    let b = Array::scalar(1.0f32);
    let mut peak_growth = 0usize;
    let start = rmx_core::allocator::get_active_memory();
    for _ in 0..500 {
        x = ops::add(&ops::multiply(&x, &a).unwrap(), &b).unwrap();
        x.eval().unwrap();
        let now = rmx_core::allocator::get_active_memory();
        peak_growth = peak_growth.max(now.saturating_sub(start));
    }
    // never more than the array itself plus one temporary beyond the start
    assert!(
        peak_growth <= 2 * 100_000 * 4 + 4096,
        "grew by {peak_growth} bytes"
    );
}

#[test]
fn views_share_the_buffer() {
    let a = ops::reshape(
        &ops::arange(0.0, 12.0, 1.0, Dtype::Float32).unwrap(),
        &[3, 4],
    )
    .unwrap();
    let t = ops::transpose(&a, None).unwrap();
    let s = ops::slice(&a, &[0, 1], &[3, 4], Some(&[1, 2])).unwrap();
    let (ad, td, sd) = (a.data().unwrap(), t.data().unwrap(), s.data().unwrap());
    assert!(Arc::ptr_eq(&ad.buffer, &td.buffer));
    assert!(Arc::ptr_eq(&ad.buffer, &sd.buffer));
    assert_eq!(td.strides.as_slice(), &[1, 4]);
    assert_eq!(
        s.to_vec::<f32>().unwrap(),
        vec![1.0, 3.0, 5.0, 7.0, 9.0, 11.0]
    );
}

#[test]
fn errors_are_results_not_panics() {
    let a = f32s(&[1.0, 2.0], &[2]);
    let b = f32s(&[1.0, 2.0, 3.0], &[3]);
    assert!(matches!(ops::add(&a, &b), Err(Error::Value(_))));
    assert!(matches!(
        ops::sum(&a, Some(&[3]), false),
        Err(Error::Index(_))
    ));
    let idx = Array::from_slice(&[5i32], &[1]).unwrap();
    let t = ops::take(&a, &idx, Some(0)).unwrap();
    // the bad index surfaces at evaluation as an IndexError
    assert!(matches!(t.eval(), Err(Error::Index(_))));
}

#[test]
fn weak_scalars_keep_the_array_dtype() {
    let a = Array::from_slice(&[1i8, 2], &[2]).unwrap();
    let s = ops::weak_scalar(rmx_core::Scalar::Int(1), a.dtype()).unwrap();
    assert_eq!(ops::add(&a, &s).unwrap().dtype(), Dtype::Int8);
    let f = ops::weak_scalar(rmx_core::Scalar::Float(1.0), a.dtype()).unwrap();
    assert_eq!(ops::add(&a, &f).unwrap().dtype(), Dtype::Float32);
    assert!(ops::weak_scalar(rmx_core::Scalar::Int(300), Dtype::Int8).is_err());
}

#[test]
fn data_in_place_evaluates_and_shares_the_buffer() {
    let a = f32s(&[1.0, -2.0], &[2]);
    let b = ops::abs(&a).unwrap();
    assert!(!b.is_evaluated());
    let d = b.data_in_place().unwrap();
    assert!(b.is_evaluated());
    assert_eq!(d.to_vec::<f32>(), vec![1.0, 2.0]);
    // the same buffer as the host view, not a copy
    assert!(Arc::ptr_eq(&d.buffer, &b.data().unwrap().buffer));
}

#[test]
fn a_scatter_writes_over_an_input_no_one_else_holds() {
    // the KV cache of a fixed-shape decode step is written in place this way
    let x = ops::zeros(&[2, 4], Dtype::Float32).unwrap();
    x.eval().unwrap();
    let before = Arc::as_ptr(&x.data_in_place().unwrap().buffer);
    let idx = Array::from_slice(&[1i32, 3], &[2, 1]).unwrap();
    let v = f32s(&[5.0, 6.0], &[2, 1]);
    let mode = rmx_core::backend::ScatterMode::Set;
    let y = ops::scatter_along_axis(mode, &x, &idx, &v, 1).unwrap();
    drop(x);
    y.eval().unwrap();
    assert_eq!(Arc::as_ptr(&y.data_in_place().unwrap().buffer), before);
    assert_eq!(
        y.to_vec::<f32>().unwrap(),
        vec![0.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 6.0]
    );
    // held elsewhere: a copy, the input unchanged
    let x2 = ops::zeros(&[2, 4], Dtype::Float32).unwrap();
    let y2 = ops::scatter_along_axis(mode, &x2, &idx, &v, 1).unwrap();
    y2.eval().unwrap();
    assert_eq!(x2.to_vec::<f32>().unwrap(), vec![0.0; 8]);
    assert_eq!(y2.to_vec::<f32>().unwrap()[1], 5.0);
}
