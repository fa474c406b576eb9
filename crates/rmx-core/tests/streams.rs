//! Streams and the scheduler: work on several streams and threads gives the single-threaded
//! results without deadlock; cross-stream inputs wait for their producer; async_eval
//! returns before the work is done and two streams overlap (timestamps from the scheduler's
//! trace, not wall-clock thresholds); background errors surface at the next eval.

use rmx_core::backend::Backend;
use rmx_core::device::{self, Device, Stream};
use rmx_core::primitive::{OutputSpec, Primitive};
use rmx_core::scheduler::trace;
use rmx_core::{ops, Array, ArrayData, Dtype, Error, Result};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// A pass-through node that takes `ms` milliseconds: a "large computation" whose
/// duration does not depend on how many cores are free.
#[derive(Debug, PartialEq)]
struct Slow {
    ms: u64,
}
impl Primitive for Slow {
    fn name(&self) -> &'static str {
        "Slow"
    }
    fn eval(&self, _b: &dyn Backend, x: &[ArrayData], _o: &[OutputSpec]) -> Result<Vec<ArrayData>> {
        std::thread::sleep(Duration::from_millis(self.ms));
        Ok(vec![x[0].clone()])
    }
    rmx_core::primitive_common!();
}

#[derive(Debug, PartialEq)]
struct Fails {
    panic: bool,
}
impl Primitive for Fails {
    fn name(&self) -> &'static str {
        "Fails"
    }
    fn eval(
        &self,
        _b: &dyn Backend,
        _x: &[ArrayData],
        _o: &[OutputSpec],
    ) -> Result<Vec<ArrayData>> {
        if self.panic {
            panic!("kernel bug");
        }
        Err(rmx_core::value_err!("[Fails] bad input"))
    }
    rmx_core::primitive_common!();
}

fn slow(x: &Array, ms: u64) -> Array {
    Array::from_op(
        x.shape().into(),
        x.dtype(),
        Arc::new(Slow { ms }),
        vec![x.clone()],
    )
}

fn on<R>(s: Stream, f: impl FnOnce() -> R) -> R {
    device::with_stream(s, f)
}

/// Tests reading the (global) trace run one at a time.
static TRACE: Mutex<()> = Mutex::new(());

fn events_on(events: &[trace::TraceEvent], stream: Stream) -> Vec<trace::TraceEvent> {
    let mut ev: Vec<_> = events
        .iter()
        .filter(|e| e.stream == stream.index)
        .cloned()
        .collect();
    ev.sort_by_key(|e| e.start_ns);
    ev
}

/// Runs `f` on a thread and fails if it does not finish within `secs` (a deadlock).
fn within<R: Send + 'static>(secs: u64, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(f()).ok());
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("deadlock: did not finish in time")
}

/// A small graph mixing the inputs; the same code gives the reference results.
fn graph(a: &Array, b: &Array, k: usize) -> Array {
    let s = Array::scalar(k as f32 + 1.0);
    let x = ops::add(&ops::multiply(a, &s).unwrap(), b).unwrap();
    let y = ops::exp(&ops::multiply(&x, &Array::scalar(0.01f32)).unwrap()).unwrap();
    let m = ops::matmul(&y, &ops::transpose(&x, None).unwrap()).unwrap();
    ops::sum(&m, Some(&[1]), false).unwrap()
}

fn input(seed: usize) -> Array {
    let v: Vec<f32> = (0..64 * 32)
        .map(|i| (((i * 7 + seed * 13) % 101) as f32 - 50.0) / 50.0)
        .collect();
    Array::from_slice(&v, &[64, 32]).unwrap()
}

#[test]
fn many_threads_and_streams_match_single_threaded_results() {
    for round in 0..5 {
        let out = within(60, move || {
            let a = input(round);
            let b = input(round + 1);
            // a shared, unevaluated subgraph that every thread reads
            let shared = ops::tanh(&ops::add(&a, &b).unwrap()).unwrap();
            let expected: Vec<Vec<f32>> = (0..8)
                .map(|k| {
                    let s = ops::tanh(&ops::add(&a, &b).unwrap()).unwrap();
                    graph(&s, &b, k).to_vec::<f32>().unwrap()
                })
                .collect();
            let common = device::new_stream(Device::CPU).unwrap();
            let handles: Vec<_> = (0..8)
                .map(|k| {
                    let (shared, b) = (shared.clone(), b.clone());
                    std::thread::spawn(move || {
                        let mine = device::new_stream(Device::CPU).unwrap();
                        // interleave: half the graph on this thread's stream, half on a shared one
                        let h = on(mine, || {
                            ops::multiply(&shared, &Array::scalar(1.0f32)).unwrap()
                        });
                        let r = on(common, || graph(&h, &b, k));
                        if k % 2 == 0 {
                            rmx_core::async_eval(std::slice::from_ref(&r)).unwrap();
                        }
                        r.to_vec::<f32>().unwrap()
                    })
                })
                .collect();
            let got: Vec<Vec<f32>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            (got, expected)
        });
        assert_eq!(out.0, out.1, "round {round}");
    }
}

#[test]
fn an_input_from_a_stream_still_running_is_waited_for() {
    let _t = TRACE.lock().unwrap_or_else(|e| e.into_inner());
    let (a_s, b_s) = (
        device::new_stream(Device::CPU).unwrap(),
        device::new_stream(Device::CPU).unwrap(),
    );
    trace::enable(true);
    let x = Array::from_slice(&[1.0f32, 2.0], &[2]).unwrap();
    let a = on(a_s, || slow(&x, 150));
    rmx_core::async_eval(std::slice::from_ref(&a)).unwrap();
    let b = on(b_s, || ops::add(&a, &Array::scalar(1.0f32)).unwrap());
    let built = trace::now();
    assert_eq!(
        within(20, move || b.to_vec::<f32>()).unwrap(),
        vec![2.0, 3.0]
    );
    let events = trace::take();
    let (a_ev, b_ev) = (events_on(&events, a_s), events_on(&events, b_s));
    trace::enable(false);
    assert_eq!(a_ev.len(), 1);
    assert!(
        built < a_ev[0].end_ns,
        "A had finished before B's op was built"
    );
    // B's add (its last node; the others prepare the scalar) ran only after A finished
    let add = b_ev.last().expect("B ran");
    assert!(add.start_ns >= a_ev[0].end_ns, "{b_ev:?} vs {a_ev:?}");
}

#[test]
fn async_eval_returns_at_once_and_two_streams_overlap() {
    let _t = TRACE.lock().unwrap_or_else(|e| e.into_inner());
    let (s1, s2) = (
        device::new_stream(Device::CPU).unwrap(),
        device::new_stream(Device::CPU).unwrap(),
    );
    trace::enable(true);
    let x = Array::from_slice(&[1.0f32], &[1]).unwrap();
    let first = on(s1, || slow(&x, 150));
    let second = on(s2, || slow(&x, 150));
    rmx_core::async_eval(std::slice::from_ref(&first)).unwrap();
    let returned = trace::now();
    rmx_core::async_eval(std::slice::from_ref(&second)).unwrap();
    within(20, move || rmx_core::eval(&[first, second])).unwrap();
    let events = trace::take();
    let (e1, e2) = (events_on(&events, s1), events_on(&events, s2));
    trace::enable(false);
    assert!(returned < e1[0].end_ns, "async_eval waited for the work");
    assert!(
        e2[0].start_ns < e1[0].end_ns,
        "the second computation started only after the first finished"
    );
}

#[test]
fn eval_blocks_only_on_what_it_asked_for() {
    let s1 = device::new_stream(Device::CPU).unwrap();
    let s2 = device::new_stream(Device::CPU).unwrap();
    let x = Array::from_slice(&[1.0f32], &[1]).unwrap();
    let long = on(s1, || slow(&x, 400));
    rmx_core::async_eval(std::slice::from_ref(&long)).unwrap();
    let quick = on(s2, || ops::add(&x, &x).unwrap());
    quick.eval().unwrap();
    assert!(
        !long.is_evaluated(),
        "eval of another stream waited for unrelated work"
    );
    long.eval().unwrap();
}

#[test]
fn background_errors_surface_at_the_next_eval_of_a_dependent() {
    for panic in [false, true] {
        let s = device::new_stream(Device::CPU).unwrap();
        let x = Array::from_slice(&[1.0f32], &[1]).unwrap();
        let bad = on(s, || {
            Array::from_op(
                vec![1].into(),
                Dtype::Float32,
                Arc::new(Fails { panic }),
                vec![x.clone()],
            )
        });
        let dep = ops::exp(&bad).unwrap();
        rmx_core::async_eval(std::slice::from_ref(&dep)).unwrap();
        let err = within(20, move || (dep.eval(), dep.item().map(|_| ()), bad.eval()));
        for e in [err.0, err.1, err.2] {
            match (panic, e) {
                (false, Err(Error::Value(m))) => assert!(m.contains("bad input")),
                (true, Err(Error::Runtime(m))) => assert!(m.contains("kernel bug")),
                (_, other) => panic!("unexpected {other:?}"),
            }
        }
    }
}

#[test]
fn a_destroyed_stream_refuses_work() {
    within(20, || {
        let s = device::new_stream(Device::CPU).unwrap();
        let x = Array::from_slice(&[1.0f32], &[1]).unwrap();
        let pending = on(s, || ops::exp(&x).unwrap());
        device::clear_streams();
        assert!(
            matches!(pending.eval(), Err(Error::Runtime(m)) if m.contains("There is no Stream"))
        );
        assert!(rmx_core::stream::check_stream(s).is_err());
        device::synchronize(s).unwrap();
    });
}

#[test]
fn gpu_and_unknown_devices_are_errors() {
    assert!(matches!(
        device::new_stream(Device::GPU),
        Err(Error::Value(_))
    ));
    let cpu1 = Device {
        kind: rmx_core::DeviceType::Cpu,
        index: 1,
    };
    assert!(matches!(device::default_stream(cpu1), Err(Error::Index(_))));
    assert!(!device::is_available(cpu1));
}

#[test]
fn synchronize_waits_for_queued_work() {
    let s = device::new_stream(Device::CPU).unwrap();
    let x = Array::from_slice(&[1.0f32], &[1]).unwrap();
    let a = on(s, || slow(&x, 100));
    rmx_core::async_eval(std::slice::from_ref(&a)).unwrap();
    within(20, move || {
        device::synchronize(s).unwrap();
        assert!(a.is_evaluated());
    });
}

#[test]
fn a_long_async_loop_runs_in_constant_memory() {
    // the training-loop pattern: queue step i+1 while step i may still run
    let s = device::new_stream(Device::CPU).unwrap();
    let mut x = ops::zeros(&[10_000], Dtype::Float32).unwrap();
    x.eval().unwrap();
    let start = rmx_core::allocator::get_active_memory();
    let mut growth = 0usize;
    for i in 0..10_000 {
        x = on(s, || {
            ops::add(
                &ops::multiply(&x, &Array::scalar(0.99f32)).unwrap(),
                &Array::scalar(1.0f32),
            )
            .unwrap()
        });
        rmx_core::async_eval(std::slice::from_ref(&x)).unwrap();
        if i % 100 == 0 {
            x.eval().unwrap();
            growth = growth.max(rmx_core::allocator::get_active_memory().saturating_sub(start));
        }
    }
    x.eval().unwrap();
    assert!(growth <= 4 * 10_000 * 4 + 8192, "grew by {growth} bytes");
}
