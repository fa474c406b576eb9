//! `export_to_dot`: the pending graph behind some arrays in Graphviz DOT, in MLX's
//! layout: arrays are named A, B, ..., Z, AA, ... in the order they are first met (or
//! by the names given), each primitive is a rectangle labelled with its name and keyed
//! by its node's address, evaluated arrays and leaves are sources, requested arrays
//! sinks. Inputs are written before the nodes that use them (depth first).

use crate::array::Array;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::sync::Arc;

/// Arrays are identified by their node and output index while pending, else by handle.
#[derive(Clone, Copy, Hash, PartialEq, Eq)]
enum Key {
    Output(usize, usize),
    Handle(usize),
}

fn key(a: &Array) -> Key {
    match a.node() {
        Some((n, i)) => Key::Output(Arc::as_ptr(&n) as usize, i),
        None => Key::Handle(a.id()),
    }
}

struct Namer {
    names: HashMap<Key, String>,
}

impl Namer {
    fn get(&mut self, k: Key) -> String {
        let n = self.names.len();
        self.names.entry(k).or_insert_with(|| letters(n)).clone()
    }
}

/// 0 -> "A", 25 -> "Z", 26 -> "AA", ...
fn letters(mut n: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).expect("ascii")
}

/// MLX labels elementwise nodes by their operation ("Add", "Exp"); rmx's `Unary` and
/// `Binary` primitives carry the operation as a parameter.
fn label(p: &dyn crate::primitive::Primitive) -> String {
    use crate::ops::elementwise::{binary_name, unary_name};
    use crate::primitives::elementwise::{Binary, Unary};
    let snake = if let Some(b) = p.as_any().downcast_ref::<Binary>() {
        binary_name(b.op)
    } else if let Some(u) = p.as_any().downcast_ref::<Unary>() {
        unary_name(u.op)
    } else {
        return p.name().to_string();
    };
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

pub fn export_to_dot(outputs: &[Array], names: &[(String, Array)]) -> String {
    let mut namer = Namer {
        names: HashMap::new(),
    };
    for (name, a) in names {
        namer.names.insert(key(a), name.clone());
    }
    let sinks: HashSet<Key> = outputs.iter().map(key).collect();
    let mut out = String::from("digraph {\n");
    let mut done: HashSet<Key> = HashSet::new();
    // iterative post-order walk: (array, inputs already pushed)
    let mut stack: Vec<(Array, bool)> = outputs.iter().rev().map(|a| (a.clone(), false)).collect();
    while let Some((a, expanded)) = stack.pop() {
        let k = key(&a);
        if done.contains(&k) {
            continue;
        }
        let pending = a.node().filter(|(n, _)| !n.is_computed());
        let Some((node, _)) = pending else {
            done.insert(k);
            let _ = writeln!(out, "{{ rank=source; \"{}\"; }}", namer.get(k));
            continue;
        };
        let inputs = node.inputs.lock().clone();
        if !expanded {
            stack.push((a, true));
            for i in inputs.iter().rev() {
                if !done.contains(&key(i)) {
                    stack.push((i.clone(), false));
                }
            }
            continue;
        }
        let id = Arc::as_ptr(&node) as usize;
        let _ = writeln!(
            out,
            "{{ {id} [label =\"{}\", shape=rectangle]; }}",
            label(node.primitive.as_ref())
        );
        for i in &inputs {
            let _ = writeln!(out, "\"{}\" -> {id}", namer.get(key(i)));
        }
        for idx in 0..node.output_specs.len() {
            let ok = Key::Output(id, idx);
            done.insert(ok);
            let rank = if sinks.contains(&ok) {
                "rank=sink; "
            } else {
                ""
            };
            let name = namer.get(ok);
            let _ = writeln!(out, "{{ {rank}\"{name}\"; }}");
            let _ = writeln!(out, "{id} -> \"{name}\"");
        }
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::letters;

    #[test]
    fn names_like_mlx() {
        assert_eq!(letters(0), "A");
        assert_eq!(letters(25), "Z");
        assert_eq!(letters(26), "AA");
        assert_eq!(letters(27), "AB");
        assert_eq!(letters(26 + 26 * 26), "AAA");
    }
}
