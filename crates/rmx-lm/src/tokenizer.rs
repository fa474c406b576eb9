//! Tokenizers through the `tokenizers` crate: from a Hugging Face `tokenizer.json`, or
//! rebuilt from GGUF metadata (see `gguf_tokenizer`), plus the streaming detokenizer.

use crate::error::{LmError, Result};
use crate::metadata::Meta;
use std::path::Path;

/// A tokenizer with the special ids generation needs.
pub struct Tokenizer {
    pub inner: tokenizers::Tokenizer,
    pub bos_id: Option<u32>,
    /// Generation stops at any of these.
    pub eos_ids: Vec<u32>,
    /// Whether `encode` prepends BOS (GGUF `tokenizer.ggml.add_bos_token`).
    pub add_bos: bool,
    pub chat_template: Option<String>,
}

fn tok_err(e: impl std::fmt::Display) -> LmError {
    LmError::Tokenizer(e.to_string())
}

impl Tokenizer {
    /// Rebuilds the tokenizer stored in a GGUF file's metadata.
    pub fn from_gguf(meta: &Meta) -> Result<Tokenizer> {
        let json = match meta.str("tokenizer.ggml.model")? {
            "llama" => crate::gguf_spm_tokenizer::tokenizer_json(meta)?,
            _ => crate::gguf_tokenizer::tokenizer_json(meta)?,
        };
        let inner =
            tokenizers::Tokenizer::from_bytes(json.to_string().as_bytes()).map_err(tok_err)?;
        let bos_id = meta
            .opt_num("tokenizer.ggml.bos_token_id")
            .map(|x| x as u32);
        let mut eos_ids = Vec::new();
        for key in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"] {
            if let Some(id) = meta.opt_num(key) {
                if !eos_ids.contains(&(id as u32)) {
                    eos_ids.push(id as u32);
                }
            }
        }
        Ok(Tokenizer {
            inner,
            bos_id,
            eos_ids,
            // llama.cpp adds BOS to a SentencePiece vocabulary that does not say otherwise.
            add_bos: meta
                .bool("tokenizer.ggml.add_bos_token")
                .unwrap_or(meta.opt_str("tokenizer.ggml.model") == Some("llama")),
            chat_template: meta.opt_str("tokenizer.chat_template").map(str::to_owned),
        })
    }

    /// Loads `tokenizer.json` (and `tokenizer_config.json` for the chat template and the
    /// special tokens) from a Hugging Face model folder.
    pub fn from_folder(dir: &Path, eos_from_config: &[u32]) -> Result<Tokenizer> {
        let inner = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| {
            LmError::Tokenizer(format!("{}: {e}", dir.join("tokenizer.json").display()))
        })?;
        let cfg: serde_json::Value =
            match std::fs::read_to_string(dir.join("tokenizer_config.json")) {
                Ok(s) => serde_json::from_str(&s)
                    .map_err(|e| LmError::Tokenizer(format!("tokenizer_config.json: {e}")))?,
                Err(_) => serde_json::Value::Null,
            };
        let token_id = |key: &str| -> Option<u32> {
            let v = &cfg[key];
            let s = v.as_str().or_else(|| v["content"].as_str())?;
            inner.token_to_id(s)
        };
        let mut eos_ids: Vec<u32> = eos_from_config.to_vec();
        if let Some(id) = token_id("eos_token") {
            if !eos_ids.contains(&id) {
                eos_ids.push(id);
            }
        }
        Ok(Tokenizer {
            bos_id: token_id("bos_token"),
            eos_ids,
            add_bos: false, // tokenizer.json's post-processor adds it where the model wants it
            chat_template: cfg["chat_template"].as_str().map(str::to_owned),
            inner,
        })
    }

    /// Token ids of `text`; special tokens written in the text (`<|im_start|>`) are parsed.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, true).map_err(tok_err)?;
        let mut ids = enc.get_ids().to_vec();
        if self.add_bos {
            if let Some(b) = self.bos_id {
                if ids.first() != Some(&b) {
                    ids.insert(0, b);
                }
            }
        }
        Ok(ids)
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, false).map_err(tok_err)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn token_text(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }
}

/// Turns a stream of token ids into text deltas that never split a UTF-8 character:
/// a token that ends inside a multi-byte character is held back until it completes.
pub struct StreamingDetokenizer<'a> {
    tokenizer: &'a Tokenizer,
    pending: Vec<u32>,
    /// Everything emitted so far.
    pub text: String,
}

impl<'a> StreamingDetokenizer<'a> {
    pub fn new(tokenizer: &'a Tokenizer) -> Self {
        StreamingDetokenizer {
            tokenizer,
            pending: Vec::new(),
            text: String::new(),
        }
    }

    /// Adds a token; returns the newly completed text (possibly empty).
    pub fn push(&mut self, id: u32) -> Result<String> {
        self.pending.push(id);
        let mut s = self.tokenizer.decode(&self.pending)?;
        // SentencePiece decoders drop the leading space of what they decode (the one the
        // encoder prepended): keep it for every piece but the first.
        if !self.text.is_empty() && !s.starts_with(' ') && self.starts_with_space() {
            s.insert(0, ' ');
        }
        // An incomplete character: wait for the next token (a character has at most 4
        // bytes, so more than 4 pending tokens means the bytes are really invalid).
        if s.ends_with('\u{FFFD}') && self.pending.len() < 4 {
            return Ok(String::new());
        }
        self.pending.clear();
        self.text.push_str(&s);
        Ok(s)
    }

    /// Whether the first pending token is a SentencePiece piece starting with a space.
    fn starts_with_space(&self) -> bool {
        self.pending
            .first()
            .and_then(|&id| self.tokenizer.token_text(id))
            .is_some_and(|t| t.starts_with('\u{2581}') || t == "<0x20>")
    }

    /// Emits what is held back (an unfinished character becomes U+FFFD).
    pub fn finish(&mut self) -> Result<String> {
        if self.pending.is_empty() {
            return Ok(String::new());
        }
        let mut s = self.tokenizer.decode(&self.pending)?;
        if !self.text.is_empty() && !s.starts_with(' ') && self.starts_with_space() {
            s.insert(0, ' ');
        }
        self.pending.clear();
        self.text.push_str(&s);
        Ok(s)
    }
}
