//! Rebuilds a Hugging Face `tokenizer.json` from GGUF metadata, the way llama.cpp reads
//! it: BPE from `tokenizer.ggml.tokens`/`merges`, the pre-tokenizer `tokenizer.ggml.pre`
//! names, byte-level decoding, and `token_type == 3` (control) entries as special tokens.
//! The JSON form lets the Python `tokenizers` package load the very same tokenizer (tests).

use crate::error::{LmError, Result};
use crate::metadata::Meta;
use serde_json::{json, Value};

/// llama.cpp's token type for control tokens (`<|im_start|>`), kept whole when encoding.
const TOKEN_TYPE_CONTROL: f64 = 3.0;
/// User-defined tokens, also matched whole.
const TOKEN_TYPE_USER_DEFINED: f64 = 4.0;

// The split regexes llama.cpp uses for each `tokenizer.ggml.pre` (llama-vocab.cpp).
const LLAMA3_SPLIT: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

fn byte_level(use_regex: bool) -> Value {
    json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex})
}

fn split(pattern: &str) -> Value {
    json!({"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false})
}

/// The pre-tokenizer for a `tokenizer.ggml.pre` name.
fn pre_tokenizer(pre: &str) -> Result<Value> {
    let seq = |v: Vec<Value>| json!({"type": "Sequence", "pretokenizers": v});
    Ok(match pre {
        // GPT-2's regex inside ByteLevel.
        "default" | "gpt2" | "gpt-2" => byte_level(true),
        // SmolLM: every digit is its own piece, then GPT-2 byte-level.
        "smollm" | "starcoder" | "refact" => seq(vec![
            json!({"type": "Digits", "individual_digits": true}),
            byte_level(true),
        ]),
        "llama3" | "llama-bpe" | "llama-v3" | "dbrx" | "smaug-bpe" => {
            seq(vec![split(LLAMA3_SPLIT), byte_level(false)])
        }
        "qwen2" | "qwen35" | "deepseek-r1-qwen" => seq(vec![split(QWEN2_SPLIT), byte_level(false)]),
        other => {
            return Err(LmError::Tokenizer(format!(
                "unsupported GGUF pre-tokenizer '{other}' (supported: default, gpt2, smollm, starcoder, llama3/llama-bpe, qwen2)"
            )))
        }
    })
}

/// The `tokenizer.json` document for a GGUF file's BPE ("gpt2") tokenizer.
pub fn tokenizer_json(meta: &Meta) -> Result<Value> {
    let model = meta.str("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(LmError::Tokenizer(format!(
            "GGUF tokenizer model '{model}' is not supported (supported: gpt2, i.e. byte-level BPE, and llama, i.e. SentencePiece)"
        )));
    }
    let tokens = meta.strs("tokenizer.ggml.tokens")?;
    let merges = meta.strs("tokenizer.ggml.merges")?;
    let types = if meta.has("tokenizer.ggml.token_type") {
        meta.nums("tokenizer.ggml.token_type")?
    } else {
        vec![1.0; tokens.len()]
    };
    if types.len() != tokens.len() {
        return Err(LmError::Tokenizer(format!(
            "tokenizer.ggml.token_type has {} entries for {} tokens",
            types.len(),
            tokens.len()
        )));
    }
    let pre = meta.opt_str("tokenizer.ggml.pre").unwrap_or("default");
    let mut vocab = serde_json::Map::with_capacity(tokens.len());
    let mut added = Vec::new();
    for (id, (tok, &ty)) in tokens.iter().zip(&types).enumerate() {
        // A repeated token keeps its first id, as a HashMap-built vocab would.
        vocab.entry(tok.clone()).or_insert(json!(id));
        if ty == TOKEN_TYPE_CONTROL || ty == TOKEN_TYPE_USER_DEFINED {
            added.push(json!({
                "id": id, "content": tok, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": ty == TOKEN_TYPE_CONTROL,
            }));
        }
    }
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer(pre)?,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merges,
        },
    }))
}
