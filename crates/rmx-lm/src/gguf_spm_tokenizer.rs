//! Rebuilds a GGUF SentencePiece vocabulary (`tokenizer.ggml.model == "llama"`: Llama 2,
//! TinyLlama, Mistral, Gemma) as a Hugging Face `tokenizer.json`, behaving like llama.cpp's
//! SPM tokenizer and the `sentencepiece` library:
//! - spaces become `▁`, and `▁` is prepended to every piece of text between special tokens
//!   (`tokenizer.ggml.add_space_prefix`, default true);
//! - pieces merge pairwise, the pair whose merged piece scores highest first (SentencePiece
//!   BPE): the BPE merges are recovered from the vocabulary and `tokenizer.ggml.scores`,
//!   ordered as transformers' `generate_merges` orders them;
//! - characters outside the vocabulary become their UTF-8 bytes as `<0xXX>` tokens;
//! - control (`<s>`) and user-defined tokens are matched whole in the text.
//!
//! Decoding turns `▁` back into spaces, fuses byte tokens into characters, and drops the
//! one space the prefix added.

use crate::error::{LmError, Result};
use crate::metadata::Meta;
use serde_json::{json, Value};
use std::collections::HashMap;

// llama.cpp's token types (llama_token_type).
const NORMAL: i64 = 1;
const UNKNOWN: i64 = 2;
const CONTROL: i64 = 3;
const USER_DEFINED: i64 = 4;

/// BPE merges implied by a vocabulary with scores: every split (left, right) of a normal
/// token into two tokens of the vocabulary, best merged score first, ties to the longer
/// left part (transformers' `generate_merges` with `vocab_scores`).
fn merges(tokens: &[String], scores: &[f64], types: &[i64]) -> Vec<(String, String)> {
    let mut ids: HashMap<&str, usize> = HashMap::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        ids.entry(t.as_str()).or_insert(i);
    }
    let mut all: Vec<(usize, usize, f64)> = Vec::new();
    for (i, tok) in tokens.iter().enumerate() {
        if types[i] != NORMAL || ids[tok.as_str()] != i {
            continue;
        }
        let mut local: Vec<(usize, usize, f64)> = tok
            .char_indices()
            .skip(1)
            .filter_map(|(at, _)| {
                let (l, r) = tok.split_at(at);
                Some((*ids.get(l)?, *ids.get(r)?, scores[i]))
            })
            .collect();
        local.sort_by_key(|&(l, r, _)| (l, r));
        all.extend(local);
    }
    // A stable sort, descending by score, then by the parts' lengths (as Python's
    // `sorted(..., key=(score, len(l), len(r)), reverse=True)`).
    let len = |id: usize| tokens[id].chars().count();
    all.sort_by(|a, b| {
        b.2.partial_cmp(&a.2)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(len(b.0).cmp(&len(a.0)))
            .then(len(b.1).cmp(&len(a.1)))
    });
    all.into_iter()
        .map(|(l, r, _)| (tokens[l].clone(), tokens[r].clone()))
        .collect()
}

/// The `tokenizer.json` document for a GGUF file's SentencePiece ("llama") tokenizer.
pub fn tokenizer_json(meta: &Meta) -> Result<Value> {
    // A piece of spaces only is sometimes stored with real spaces (Gemma files): spell it
    // with `▁` as the normalized text will, unless that spelling is taken.
    let stored = meta.strs("tokenizer.ggml.tokens")?;
    let spelled: std::collections::HashSet<&str> = stored.iter().map(String::as_str).collect();
    let tokens: Vec<String> = stored
        .iter()
        .map(|t| {
            let respelled = "\u{2581}".repeat(t.chars().count());
            match !t.is_empty()
                && t.chars().all(|c| c == ' ')
                && !spelled.contains(respelled.as_str())
            {
                true => respelled,
                false => t.clone(),
            }
        })
        .collect();
    let tokens = &tokens;
    let n = tokens.len();
    let count = |key: &str, v: &[f64]| -> Result<()> {
        match v.len() == n {
            true => Ok(()),
            false => Err(LmError::Tokenizer(format!(
                "{key} has {} entries for {n} tokens",
                v.len()
            ))),
        }
    };
    let scores = match meta.has("tokenizer.ggml.scores") {
        true => meta.nums("tokenizer.ggml.scores")?,
        // No scores: earlier tokens merge first.
        false => (0..n).map(|i| -(i as f64)).collect(),
    };
    count("tokenizer.ggml.scores", &scores)?;
    let types = match meta.has("tokenizer.ggml.token_type") {
        true => meta.nums("tokenizer.ggml.token_type")?,
        false => vec![NORMAL as f64; n],
    };
    count("tokenizer.ggml.token_type", &types)?;
    let types: Vec<i64> = types.iter().map(|&t| t as i64).collect();
    let unk_id = meta
        .opt_num("tokenizer.ggml.unknown_token_id")
        .map(|x| x as usize)
        .or_else(|| types.iter().position(|&t| t == UNKNOWN))
        .filter(|&i| i < n);
    let prefix = meta.bool("tokenizer.ggml.add_space_prefix").unwrap_or(true);

    let mut vocab = serde_json::Map::with_capacity(n);
    let mut added = Vec::new();
    for (id, (tok, &ty)) in tokens.iter().zip(&types).enumerate() {
        vocab.entry(tok.clone()).or_insert(json!(id));
        if ty == CONTROL || ty == USER_DEFINED {
            added.push(json!({
                "id": id, "content": tok, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": ty == CONTROL,
            }));
        }
    }
    let merges: Vec<Value> = merges(tokens, &scores, &types)
        .into_iter()
        .map(|(l, r)| json!([l, r]))
        .collect();
    let replace = json!({"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"});
    let normalizer = match prefix {
        true => json!({"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u{2581}"}, replace]}),
        false => replace,
    };
    let mut decoders = vec![
        json!({"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "}),
        json!({"type": "ByteFallback"}),
        json!({"type": "Fuse"}),
    ];
    if prefix {
        decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
    }
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": null,
        "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {
            "type": "BPE", "dropout": null,
            "unk_token": unk_id.map(|i| tokens[i].clone()),
            "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
            "vocab": vocab, "merges": merges,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::merges;

    #[test]
    fn merges_follow_the_merged_pieces_scores() {
        let t: Vec<String> = ["a", "b", "c", "ab", "bc", "abc", "<s>"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let scores = [0.0, 0.0, 0.0, -2.0, -1.0, -3.0, 0.0];
        let types = [1, 1, 1, 1, 1, 1, 3];
        let m = merges(&t, &scores, &types);
        let m: Vec<(&str, &str)> = m.iter().map(|(l, r)| (l.as_str(), r.as_str())).collect();
        assert_eq!(
            m,
            [("b", "c"), ("a", "b"), ("ab", "c"), ("a", "bc")],
            "best score first, ties to the longer left part"
        );
    }
}
