//! Where a decode step's time goes: per-primitive kernel time (scheduler trace) over
//! `n` generated tokens of the given model, against the wall time per token.
//!
//!     cargo run --release -p rmx-lm --example decode_profile -- MODEL [prompt] [tokens]
use rmx_core::scheduler::trace;
use rmx_lm::generate::forward_last;
use std::collections::HashMap;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let l = rmx_lm::loader::load(std::path::Path::new(&args[1]))?;
    let prompt: usize = args.get(2).map_or(64, |s| s.parse().unwrap());
    let n: usize = args.get(3).map_or(64, |s| s.parse().unwrap());
    let mut cache = l.model.new_cache();
    let ids: Vec<u32> = (0..prompt as u32).map(|i| 100 + i).collect();
    forward_last(l.model.as_ref(), &ids, &mut cache)?;
    forward_last(l.model.as_ref(), &[7], &mut cache)?;
    trace::enable(true);
    let t0 = Instant::now();
    let (mut build, mut tok) = (0.0, 7u32);
    for _ in 0..n {
        let tb = Instant::now();
        let logits = forward_last(l.model.as_ref(), &[tok], &mut cache)?;
        build += tb.elapsed().as_secs_f64();
        tok = logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i as u32)
            .unwrap();
    }
    let wall = t0.elapsed().as_secs_f64() / n as f64;
    trace::enable(false);
    let ev = trace::take();
    let mut by: HashMap<&str, (f64, usize)> = HashMap::new();
    for e in &ev {
        let s = by.entry(e.primitive).or_default();
        s.0 += (e.end_ns - e.start_ns) as f64 * 1e-9;
        s.1 += 1;
    }
    let mut rows: Vec<_> = by.into_iter().collect();
    rows.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
    let total: f64 = rows.iter().map(|r| r.1 .0).sum::<f64>() / n as f64;
    println!(
        "wall {:.3} ms/token ({:.1} tok/s), kernels {:.3} ms/token, {} nodes/token, {:.3} ms build+eval",
        wall * 1e3,
        1.0 / wall,
        total * 1e3,
        ev.len() / n,
        build / n as f64 * 1e3
    );
    for (name, (t, c)) in rows {
        println!(
            "{name:>20} {:8.3} ms/token {:5} calls/token {:7.2} us/call",
            t / n as f64 * 1e3,
            c / n,
            t / c as f64 * 1e6
        );
    }
    Ok(())
}
