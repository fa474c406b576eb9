//! rmx-lm: load, run, chat with and serve LLMs on rmx.
//!
//! `loader::load` reads a model (GGUF file, or Hugging Face / mlx-lm folder) into a
//! `models::LanguageModel` and a `tokenizer::Tokenizer`; `generate::generate` runs it.

pub mod benchmark;
pub mod cache;
pub mod chat;
pub mod chat_template;
pub mod config;
pub mod convert;
pub mod error;
pub mod generate;
pub mod gguf_spm_tokenizer;
pub mod gguf_tokenizer;
pub mod kernels;
pub mod layers;
pub mod loader;
pub mod metadata;
pub mod models;
pub mod sample;
pub mod server;
pub mod static_decode;
pub mod tokenizer;
pub mod weights;

pub use error::{LmError, Result};
