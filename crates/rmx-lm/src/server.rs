//! An OpenAI-compatible HTTP server: `/v1/chat/completions` and `/v1/completions` (with
//! and without SSE streaming), `/v1/models` and `/health`.
//!
//! One model serves requests one at a time (a queue behind a mutex); each request runs on
//! a blocking thread and streams its text through a channel, so a client that disconnects
//! stops its generation at the next token.

// Handlers return ready error responses through `Result<_, Response>`; they are built once
// per failed request, so their size does not matter.
#![allow(clippy::result_large_err)]

use crate::chat_template::{render, Message};
use crate::generate::{generate, FinishReason, GenerateOptions};
use crate::loader::Loaded;
use crate::sample::SamplerConfig;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    /// Requests asking for more tokens are rejected with 400.
    pub max_tokens_limit: usize,
    /// Request bodies above this size are rejected with 413.
    pub max_body_bytes: usize,
    pub default_max_tokens: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 8080,
            max_tokens_limit: 4096,
            max_body_bytes: 1 << 20,
            default_max_tokens: 512,
        }
    }
}

struct AppState {
    model: Mutex<Loaded>,
    config: ServerConfig,
    name: String,
}

type Shared = Arc<AppState>;

/// An OpenAI-style error response.
fn error(status: StatusCode, message: impl Into<String>, param: Option<&str>) -> Response {
    let body = json!({"error": {
        "message": message.into(),
        "type": if status.is_client_error() { "invalid_request_error" } else { "server_error" },
        "param": param,
        "code": Value::Null,
    }});
    (status, Json(body)).into_response()
}

fn bad(message: impl Into<String>, param: Option<&str>) -> Response {
    error(StatusCode::BAD_REQUEST, message, param)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

/// The fields both endpoints share; unknown fields are ignored, as OpenAI's API does.
#[derive(Deserialize)]
struct Common {
    max_tokens: Option<usize>,
    max_completion_tokens: Option<usize>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<usize>,
    min_p: Option<f32>,
    repetition_penalty: Option<f32>,
    seed: Option<u64>,
    stop: Option<Stop>,
    #[serde(default)]
    stream: bool,
}

#[derive(Deserialize)]
struct ChatRequest {
    messages: Vec<Message>,
    #[serde(flatten)]
    common: Common,
}

#[derive(Deserialize)]
struct CompletionRequest {
    prompt: String,
    #[serde(flatten)]
    common: Common,
}

fn options(c: &Common, cfg: &ServerConfig) -> Result<GenerateOptions, Response> {
    let max_tokens = c
        .max_completion_tokens
        .or(c.max_tokens)
        .unwrap_or(cfg.default_max_tokens);
    if max_tokens == 0 || max_tokens > cfg.max_tokens_limit {
        return Err(bad(
            format!(
                "max_tokens must be between 1 and {}, got {max_tokens}",
                cfg.max_tokens_limit
            ),
            Some("max_tokens"),
        ));
    }
    let sampler = SamplerConfig {
        temperature: c.temperature.unwrap_or(1.0),
        top_p: c.top_p.unwrap_or(1.0),
        top_k: c.top_k.unwrap_or(0),
        min_p: c.min_p.unwrap_or(0.0),
        repetition_penalty: c.repetition_penalty.unwrap_or(1.0),
        seed: c.seed.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        }),
        ..Default::default()
    };
    sampler.validate().map_err(|e| bad(e.to_string(), None))?;
    let stop = match &c.stop {
        None => vec![],
        Some(Stop::One(s)) => vec![s.clone()],
        Some(Stop::Many(v)) => v.clone(),
    };
    Ok(GenerateOptions {
        max_tokens,
        sampler,
        stop,
        ..Default::default()
    })
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| bad(format!("invalid request body: {e}"), None))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn finish_name(f: FinishReason) -> &'static str {
    match f {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}

/// What a request turns into: a prompt as token ids and how to generate.
struct Job {
    prompt: Vec<u32>,
    opts: GenerateOptions,
    chat: bool,
    stream: bool,
}

async fn chat_completions(State(s): State<Shared>, body: Bytes) -> Response {
    let req: ChatRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    if req.messages.is_empty() {
        return bad("messages must not be empty", Some("messages"));
    }
    let opts = match options(&req.common, &s.config) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let prompt = {
        let l = s.model.lock().unwrap_or_else(|p| p.into_inner());
        let text = match &l.tokenizer.chat_template {
            Some(t) => render(t, &req.messages, true, "", ""),
            None => Ok(req
                .messages
                .iter()
                .map(|m| format!("{}: {}\n", m.role, m.content))
                .collect()),
        };
        match text.and_then(|t| l.tokenizer.encode(&t)) {
            Ok(ids) => ids,
            Err(e) => return bad(e.to_string(), Some("messages")),
        }
    };
    run(
        s,
        Job {
            prompt,
            opts,
            chat: true,
            stream: req.common.stream,
        },
    )
    .await
}

async fn completions(State(s): State<Shared>, body: Bytes) -> Response {
    let req: CompletionRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let opts = match options(&req.common, &s.config) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let prompt = {
        let l = s.model.lock().unwrap_or_else(|p| p.into_inner());
        match l.tokenizer.encode(&req.prompt) {
            Ok(ids) if !ids.is_empty() => ids,
            Ok(_) => return bad("prompt must not be empty", Some("prompt")),
            Err(e) => return bad(e.to_string(), Some("prompt")),
        }
    };
    run(
        s,
        Job {
            prompt,
            opts,
            chat: false,
            stream: req.common.stream,
        },
    )
    .await
}

enum Piece {
    Text(String),
    Done {
        finish: FinishReason,
        prompt_tokens: usize,
        completion_tokens: usize,
    },
    Failed(String),
}

/// Generates on a blocking thread, sending text pieces; stops when the receiver is gone.
fn spawn_generation(
    s: Shared,
    job_prompt: Vec<u32>,
    opts: GenerateOptions,
) -> mpsc::Receiver<Piece> {
    let (tx, rx) = mpsc::channel::<Piece>(256);
    tokio::task::spawn_blocking(move || {
        let l = s.model.lock().unwrap_or_else(|p| p.into_inner());
        let mut cache = l.model.new_cache();
        let result = generate(
            l.model.as_ref(),
            &l.tokenizer,
            &job_prompt,
            &mut cache,
            &opts,
            |t| tx.blocking_send(Piece::Text(t.to_string())).is_ok(),
        );
        let last = match result {
            Ok(g) => Piece::Done {
                finish: g.finish,
                prompt_tokens: g.prompt_tokens,
                completion_tokens: g.tokens.len(),
            },
            Err(e) => Piece::Failed(e.to_string()),
        };
        let _ = tx.blocking_send(last);
    });
    rx
}

async fn run(s: Shared, job: Job) -> Response {
    let id = format!(
        "{}-{}",
        if job.chat { "chatcmpl" } else { "cmpl" },
        now_nanos()
    );
    let model = s.name.clone();
    let created = now();
    let mut rx = spawn_generation(s, job.prompt, job.opts);
    if !job.stream {
        let mut text = String::new();
        while let Some(p) = rx.recv().await {
            match p {
                Piece::Text(t) => text.push_str(&t),
                Piece::Failed(e) => return bad(e, None),
                Piece::Done {
                    finish,
                    prompt_tokens,
                    completion_tokens,
                } => {
                    let choice = if job.chat {
                        json!({"index": 0, "message": {"role": "assistant", "content": text},
                               "finish_reason": finish_name(finish)})
                    } else {
                        json!({"index": 0, "text": text, "logprobs": null,
                               "finish_reason": finish_name(finish)})
                    };
                    return Json(json!({
                        "id": id, "created": created, "model": model,
                        "object": if job.chat { "chat.completion" } else { "text_completion" },
                        "choices": [choice],
                        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                  "total_tokens": prompt_tokens + completion_tokens},
                    }))
                    .into_response();
                }
            }
        }
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "generation ended unexpectedly",
            None,
        );
    }
    let object = if job.chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    let chunk = move |delta: Option<&str>, finish: Option<&str>| -> Event {
        let choice = if job.chat {
            let d = match delta {
                Some(t) => json!({"role": "assistant", "content": t}),
                None => json!({}),
            };
            json!({"index": 0, "delta": d, "finish_reason": finish})
        } else {
            json!({"index": 0, "text": delta.unwrap_or(""), "finish_reason": finish})
        };
        Event::default().data(
            json!({"id": id, "object": object, "created": created, "model": model, "choices": [choice]})
                .to_string(),
        )
    };
    let stream = async_stream(rx, chunk);
    Sse::new(stream).into_response()
}

fn async_stream(
    mut rx: mpsc::Receiver<Piece>,
    chunk: impl Fn(Option<&str>, Option<&str>) -> Event + Send + 'static,
) -> impl futures_core::Stream<Item = Result<Event, Infallible>> {
    let (tx, out) = mpsc::channel::<Result<Event, Infallible>>(256);
    tokio::spawn(async move {
        while let Some(p) = rx.recv().await {
            let ev = match p {
                Piece::Text(t) => chunk(Some(&t), None),
                Piece::Done { finish, .. } => {
                    let _ = tx.send(Ok(chunk(None, Some(finish_name(finish))))).await;
                    let _ = tx.send(Ok(Event::default().data("[DONE]"))).await;
                    return;
                }
                Piece::Failed(e) => {
                    let _ = tx
                        .send(Ok(
                            Event::default().data(json!({"error": {"message": e}}).to_string())
                        ))
                        .await;
                    return;
                }
            };
            if tx.send(Ok(ev)).await.is_err() {
                return; // the client went away: dropping rx stops the generation
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(out)
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

async fn models(State(s): State<Shared>) -> Json<Value> {
    Json(json!({"object": "list", "data": [
        {"id": s.name, "object": "model", "created": now(), "owned_by": "rmx"}
    ]}))
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint", None)
}

pub fn router(loaded: Loaded, config: ServerConfig) -> Router {
    let name = loaded.name.clone();
    let limit = config.max_body_bytes;
    let state = Arc::new(AppState {
        model: Mutex::new(loaded),
        config,
        name,
    });
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .route("/v1/models", get(models))
        .route("/health", get(health))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Serves until the process is stopped.
pub fn serve(loaded: Loaded, config: ServerConfig) -> crate::Result<()> {
    let addr = format!("{}:{}", config.host, config.port);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| crate::LmError::Io(e.to_string()))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| crate::LmError::Io(format!("cannot bind {addr}: {e}")))?;
        eprintln!("rmx-lm server: http://{addr} (model {})", loaded.name);
        axum::serve(listener, router(loaded, config))
            .await
            .map_err(|e| crate::LmError::Io(e.to_string()))
    })
}
