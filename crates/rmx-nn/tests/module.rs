//! The Module trait and its derive: naming, update, freeze, weights, training flag.

mod common;

use common::{arr, tmp_dir, vals};
use rmx_core::Array;
use rmx_nn::{Dropout, Layer, Linear, Module, Param, Params};

#[derive(Module)]
struct Block {
    lin: Linear,
    norm: Option<rmx_nn::LayerNorm>,
    #[module(skip)]
    scale: Array,
    gain: Array,
    #[module(skip)]
    name: Vec<String>,
    depth: usize,
}

#[derive(Module)]
struct Net {
    blocks: Vec<Block>,
    head: Option<Linear>,
    missing: Option<Linear>,
    drop: Dropout,
}

#[derive(Module)]
struct Pair(Param, Vec<Param>);

#[derive(Module)]
struct Wrapper<T> {
    inner: T,
}

fn block(with_norm: bool) -> Block {
    Block {
        lin: Linear::new(3, 2, true).unwrap(),
        norm: if with_norm {
            Some(rmx_nn::LayerNorm::new(2, 1e-5, true, true).unwrap())
        } else {
            None
        },
        scale: arr(&[2.0], &[1]),
        gain: arr(&[1.0, 1.0], &[2]),
        name: vec!["b".into()],
        depth: 1,
    }
}

fn net() -> Net {
    Net {
        blocks: vec![block(true), block(false)],
        head: Some(Linear::new(2, 4, false).unwrap()),
        missing: None,
        drop: Dropout::new(0.5).unwrap(),
    }
}

#[test]
fn skipped_fields_keep_their_values() {
    let b = block(false);
    assert_eq!(vals(&b.scale), [2.0]);
    assert_eq!(b.name, ["b"]);
    assert_eq!(b.depth, 1);
}

fn names(m: &impl Module) -> Vec<String> {
    m.parameters().into_iter().map(|p| p.0).collect()
}

#[test]
fn dotted_names_follow_mlx_for_nested_vec_and_option() {
    let n = net();
    assert_eq!(
        names(&n),
        [
            "blocks.0.lin.weight",
            "blocks.0.lin.bias",
            "blocks.0.norm.weight",
            "blocks.0.norm.bias",
            "blocks.0.gain",
            "blocks.1.lin.weight",
            "blocks.1.lin.bias",
            "blocks.1.gain",
            "head.weight",
        ]
    );
    let shapes: Vec<Vec<usize>> = n
        .parameters()
        .iter()
        .map(|p| p.1.shape().to_vec())
        .collect();
    assert_eq!(shapes[0], [2, 3]);
    assert_eq!(shapes[8], [4, 2]);
    assert_eq!(n.num_parameters(), 6 + 2 + 2 + 2 + 2 + 6 + 2 + 2 + 8);
}

#[test]
fn tuple_and_generic_structs() {
    let p = Pair(
        Param::new(arr(&[1.0], &[1])),
        vec![Param::new(arr(&[2.0], &[1])), Param::new(arr(&[3.0], &[1]))],
    );
    assert_eq!(names(&p), ["0", "1.0", "1.1"]);
    let w = Wrapper { inner: p };
    assert_eq!(names(&w), ["inner.0", "inner.1.0", "inner.1.1"]);
}

#[test]
fn update_replaces_values_and_rejects_bad_maps_atomically() {
    let mut n = net();
    let mut full: Params = n
        .parameters()
        .into_iter()
        .map(|(k, v)| (k, rmx_core::ops::zeros_like(&v).unwrap()))
        .collect();
    n.update(&full).unwrap();
    assert!(vals(&n.blocks[1].lin.weight).iter().all(|v| *v == 0.0));

    let before = vals(&n.blocks[0].gain);
    // missing key
    let mut partial = full.clone();
    partial.remove("head.weight");
    partial.insert("blocks.0.gain".into(), arr(&[5.0, 5.0], &[2]));
    let e = n.update(&partial).unwrap_err().to_string();
    assert!(
        e.contains("Missing 1 parameters") && e.contains("head.weight"),
        "{e}"
    );
    assert_eq!(vals(&n.blocks[0].gain), before, "nothing changes on error");
    // partial updates are fine through update_partial
    n.update_partial(&partial).unwrap();
    assert_eq!(vals(&n.blocks[0].gain), [5.0, 5.0]);

    // unknown key
    full.insert("blocks.2.lin.weight".into(), arr(&[0.0; 6], &[2, 3]));
    let e = n.update(&full).unwrap_err().to_string();
    assert!(
        e.contains("not in model") && e.contains("blocks.2.lin.weight"),
        "{e}"
    );
    let e = n.update_partial(&full).unwrap_err().to_string();
    assert!(e.contains("blocks.2.lin.weight"), "{e}");
    full.remove("blocks.2.lin.weight");

    // wrong shape
    full.insert("head.weight".into(), arr(&[0.0; 6], &[2, 3]));
    let e = n.update(&full).unwrap_err().to_string();
    assert!(
        e.contains("head.weight") && e.contains("(4, 2)") && e.contains("(2, 3)"),
        "{e}"
    );
}

#[test]
fn freeze_by_key_and_unfreeze() {
    let mut n = net();
    n.freeze_keys(&["bias"]).unwrap();
    let trainable: Vec<String> = n.trainable_parameters().into_iter().map(|p| p.0).collect();
    assert!(
        trainable.iter().all(|k| !k.ends_with("bias")),
        "{trainable:?}"
    );
    assert!(trainable.contains(&"blocks.0.lin.weight".to_string()));

    // blocks.0 holds a plain Array (gain), which cannot be frozen: an error, no change
    let e = n.freeze_keys(&["blocks.0"]).unwrap_err().to_string();
    assert!(e.contains("blocks.0.gain") && e.contains("Param"), "{e}");
    let again: Vec<String> = n.trainable_parameters().into_iter().map(|p| p.0).collect();
    assert_eq!(again, trainable);

    n.freeze_keys(&["blocks.0.lin", "blocks.0.norm"]).unwrap();
    let trainable: Vec<String> = n.trainable_parameters().into_iter().map(|p| p.0).collect();
    assert!(
        trainable
            .iter()
            .all(|k| !k.starts_with("blocks.0.") || k == "blocks.0.gain"),
        "{trainable:?}"
    );
    assert!(trainable.contains(&"blocks.1.lin.weight".to_string()));

    n.unfreeze_keys(&["blocks.0.lin.bias"]).unwrap();
    let trainable: Vec<String> = n.trainable_parameters().into_iter().map(|p| p.0).collect();
    assert!(trainable.contains(&"blocks.0.lin.bias".to_string()));

    let e = n.freeze_keys(&["nothing_here"]).unwrap_err().to_string();
    assert!(e.contains("nothing_here"), "{e}");

    // a plain Array field cannot hold a frozen flag
    let e = n.freeze().unwrap_err().to_string();
    assert!(e.contains("gain") && e.contains("Param"), "{e}");
    assert!(n
        .trainable_parameters()
        .iter()
        .any(|p| p.0 == "blocks.1.lin.weight"));

    let mut l = Linear::new(2, 2, true).unwrap();
    l.freeze().unwrap();
    assert!(l.trainable_parameters().is_empty());
    assert_eq!(l.parameters().len(), 2);
    l.unfreeze().unwrap();
    assert_eq!(l.trainable_parameters().len(), 2);
}

#[test]
fn frozen_flags_survive_update() {
    let mut l = Linear::new(2, 2, true).unwrap();
    l.freeze_keys(&["weight"]).unwrap();
    let p = l.parameter_map();
    l.update(&p).unwrap();
    assert!(l.weight.is_frozen());
    assert!(!l.bias.as_ref().unwrap().is_frozen());
}

fn roundtrip(ext: &str) {
    let d = tmp_dir(&format!("roundtrip-{ext}"));
    let path = d.join(format!("w.{ext}"));
    let a = net();
    a.save_weights(&path).unwrap();
    let mut b = net();
    b.load_weights(&path, true).unwrap();
    for ((ka, va), (kb, vb)) in a.parameters().iter().zip(b.parameters().iter()) {
        assert_eq!(ka, kb);
        assert_eq!(vals(va), vals(vb), "{ka}");
    }
    // a model without the head: strict load names the extra key, non-strict ignores it
    let mut c = net();
    c.head = None;
    let e = c.load_weights(&path, true).unwrap_err().to_string();
    assert!(e.contains("head.weight"), "{e}");
    c.load_weights(&path, false).unwrap();
    assert_eq!(vals(&c.blocks[1].lin.weight), vals(&a.blocks[1].lin.weight));
    // a model with an extra layer: strict load names the missing key
    let mut d2 = net();
    d2.missing = Some(Linear::new(1, 1, false).unwrap());
    let e = d2.load_weights(&path, true).unwrap_err().to_string();
    assert!(
        e.contains("Missing 1 parameters") && e.contains("missing.weight"),
        "{e}"
    );
}

#[test]
fn save_load_roundtrip_npz() {
    roundtrip("npz");
}

#[test]
fn save_load_roundtrip_safetensors() {
    roundtrip("safetensors");
}

#[test]
fn weights_bad_extension_and_missing_file_are_errors() {
    let d = tmp_dir("badext");
    let n = net();
    let e = n.save_weights(d.join("w.bin")).unwrap_err().to_string();
    assert!(e.contains("Unsupported file extension"), "{e}");
    let mut n = net();
    assert!(n.load_weights(d.join("absent.npz"), true).is_err());
}

#[test]
fn train_flag_reaches_nested_dropout() {
    let mut n = net();
    assert!(n.drop.training, "layers start in training mode, as MLX");
    n.train(false);
    assert!(!n.drop.training);
    let x = arr(&[1.0; 8], &[8]);
    assert_eq!(vals(&n.drop.forward(&x).unwrap()), [1.0; 8]);
    n.train(true);
    assert!(n.drop.training);
}

#[test]
fn btreemap_entries_are_named_by_key() {
    let mut heads = std::collections::BTreeMap::new();
    heads.insert("b".to_string(), Linear::new(2, 1, false).unwrap());
    heads.insert("a".to_string(), Linear::new(2, 1, true).unwrap());
    let w = Wrapper { inner: heads };
    assert_eq!(
        names(&w),
        ["inner.a.weight", "inner.a.bias", "inner.b.weight"]
    );
}

#[test]
fn train_flag_reaches_dropout_inside_sequential() {
    let mut s = rmx_nn::Sequential::new()
        .push(Linear::new(4, 4, true).unwrap())
        .push(Dropout::new(0.9).unwrap());
    s.train(false);
    let x = arr(&[1.0; 8], &[2, 4]);
    let a = vals(&s.forward(&x).unwrap());
    let b = vals(&s.forward(&x).unwrap());
    assert_eq!(a, b, "evaluation mode is deterministic");
    s.train(true);
    rmx_core::ops::random::seed(1).unwrap();
    let big = arr(&vec![1.0; 400], &[100, 4]);
    let y = vals(&s.forward(&big).unwrap());
    let zeros = y.iter().filter(|v| **v == 0.0).count();
    assert!(
        zeros > 300,
        "training mode drops about 90%: {zeros} of 400 are zero"
    );
}
