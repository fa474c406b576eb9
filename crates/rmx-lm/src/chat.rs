//! The interactive chat loop: the conversation is re-rendered through the chat template
//! each turn, and only the tokens the KV cache has not seen yet are run through the model.

use crate::cache::{CacheKind, KvCache};
use crate::chat_template::{render, Message};
use crate::error::Result;
use crate::generate::{generate, GenerateOptions};
use crate::loader::Loaded;
use std::io::{BufRead, Write};

/// The conversation and the tokens its cache holds.
pub struct ChatSession<'a> {
    pub loaded: &'a Loaded,
    pub messages: Vec<Message>,
    cache: Vec<KvCache>,
    /// Every token the cache holds, in order.
    cached: Vec<u32>,
}

impl<'a> ChatSession<'a> {
    pub fn new(loaded: &'a Loaded, system_prompt: Option<&str>, kind: CacheKind) -> Self {
        let mut messages = Vec::new();
        if let Some(s) = system_prompt {
            messages.push(Message::new("system", s));
        }
        ChatSession {
            loaded,
            messages,
            cache: loaded.model.new_cache_of(kind),
            cached: Vec::new(),
        }
    }

    /// Tokens of the whole conversation so far, with the assistant's turn opened.
    fn prompt_ids(&self) -> Result<Vec<u32>> {
        let tok = &self.loaded.tokenizer;
        let text = match &tok.chat_template {
            Some(t) => render(t, &self.messages, true, "", "")?,
            None => {
                self.messages
                    .iter()
                    .map(|m| format!("{}: {}\n", m.role, m.content))
                    .collect::<String>()
                    + "assistant: "
            }
        };
        tok.encode(&text)
    }

    /// Answers `user`, streaming the reply to `on_text`; returns the reply.
    pub fn turn(
        &mut self,
        user: &str,
        opts: &GenerateOptions,
        on_text: impl FnMut(&str) -> bool,
    ) -> Result<String> {
        self.messages.push(Message::new("user", user));
        let ids = self.prompt_ids()?;
        // Reuse the longest prefix the cache already holds; rewind the rest.
        let common = ids
            .iter()
            .zip(&self.cached)
            .take_while(|(a, b)| a == b)
            .count();
        let mut common = common.min(ids.len() - 1); // one token must run to get logits
        let mut kept = true;
        for c in self.cache.iter_mut() {
            kept &= c.rewind(common);
        }
        if !kept {
            // This cache kind cannot rewind: start it over with the whole conversation.
            for c in self.cache.iter_mut() {
                c.rewind(0);
            }
            common = 0;
        }
        self.cached.truncate(common);
        let g = generate(
            self.loaded.model.as_ref(),
            &self.loaded.tokenizer,
            &ids[common..],
            &mut self.cache,
            opts,
            on_text,
        )?;
        self.cached.extend_from_slice(&ids[common..]);
        // The last sampled token is not counted as cached: the host path never runs it
        // through the model, greedy decoding (one step ahead) may have; the next turn
        // rewinds the cache to what `cached` lists either way.
        let fed = g.tokens.len().saturating_sub(1);
        self.cached.extend_from_slice(&g.tokens[..fed]);
        self.messages.push(Message::new("assistant", &g.text));
        Ok(g.text)
    }
}

/// A terminal REPL: `/reset` clears the conversation, `/exit` or end of input quits.
pub fn repl(
    loaded: &Loaded,
    system_prompt: Option<&str>,
    opts: &GenerateOptions,
    kind: CacheKind,
) -> Result<()> {
    let mut session = ChatSession::new(loaded, system_prompt, kind);
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    println!(
        "[rmx-lm chat with {}: /reset to start over, /exit to quit]",
        loaded.name
    );
    loop {
        print!(">> ");
        let _ = out.flush();
        let mut line = String::new();
        if stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| crate::LmError::Io(e.to_string()))?
            == 0
        {
            break;
        }
        let line = line.trim();
        match line {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                session = ChatSession::new(loaded, system_prompt, kind);
                continue;
            }
            _ => {}
        }
        session.turn(line, opts, |t| {
            let _ = out.write_all(t.as_bytes());
            let _ = out.flush();
            true
        })?;
        println!();
    }
    Ok(())
}
