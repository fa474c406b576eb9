//! The `rmx-lm` command line: generate, chat, serve, convert, benchmark.

use clap::{Args, Parser, Subcommand};
use rmx_lm::chat_template::{render, Message};
use rmx_lm::generate::{generate, GenerateOptions};
use rmx_lm::loader::{self, Loaded};
use rmx_lm::sample::SamplerConfig;
use rmx_lm::Result;
use std::io::Write;
use std::path::PathBuf;

/// Decoding builds ~1,100 graph nodes per token, many small allocations each; mimalloc
/// cut the Python extension's per-op overhead by ~20 % against glibc's malloc (not
/// measured separately for rmx-lm).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "rmx-lm",
    version,
    about = "Run, chat with and serve LLMs on rmx"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Where models run: `gpu` (a CUDA build with a device), `cpu`, or `auto` (the GPU
    /// when there is one).
    #[arg(long, global = true, default_value = "auto")]
    device: String,
    /// The float type models compute in (default: float32 on the CPU, bfloat16 on the GPU).
    #[arg(long, global = true)]
    dtype: Option<String>,
}

/// Picks the device and the compute type from `--device` and `--dtype`.
fn choose_device(device: &str, dtype: Option<&str>) -> Result<()> {
    use rmx_core::{Device, Dtype};
    #[cfg(feature = "cuda")]
    let gpu = device != "cpu" && (rmx_cuda::init() || rmx_cuda::is_available());
    #[cfg(not(feature = "cuda"))]
    let gpu = false;
    let on_gpu = match device {
        "auto" => gpu,
        "cpu" => false,
        "gpu" if gpu => true,
        "gpu" => {
            return Err(rmx_lm::LmError::Invalid(
                "--device gpu: this build has no CUDA backend or no device was found".into(),
            ))
        }
        other => {
            return Err(rmx_lm::LmError::Invalid(format!(
                "unknown --device {other}"
            )))
        }
    };
    rmx_core::device::set_default_device(if on_gpu { Device::GPU } else { Device::CPU })?;
    let dtype = match dtype {
        None if on_gpu => Dtype::Bfloat16,
        None | Some("float32") => Dtype::Float32,
        Some("bfloat16") => Dtype::Bfloat16,
        Some("float16") => Dtype::Float16,
        Some(other) => return Err(rmx_lm::LmError::Invalid(format!("unknown --dtype {other}"))),
    };
    rmx_lm::layers::set_compute_dtype(dtype);
    Ok(())
}

#[derive(Args, Clone)]
struct ModelArg {
    /// A .gguf file, or a Hugging Face / mlx-lm model folder.
    #[arg(long)]
    model: PathBuf,
}

#[derive(Args, Clone)]
#[command(allow_negative_numbers = true)]
struct SamplingArgs {
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temp: f32,
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    #[arg(long, default_value_t = 0.0)]
    min_p: f32,
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Bound the KV cache to this many tokens (a rotating cache).
    #[arg(long)]
    max_kv_size: Option<usize>,
    /// Store the KV cache quantized to this many bits.
    #[arg(long)]
    kv_bits: Option<usize>,
}

impl SamplingArgs {
    fn cache_kind(&self) -> Result<rmx_lm::cache::CacheKind> {
        rmx_lm::cache::CacheKind::from_flags(self.max_kv_size, self.kv_bits)
    }

    fn options(&self) -> GenerateOptions {
        GenerateOptions {
            max_tokens: self.max_tokens,
            sampler: SamplerConfig {
                temperature: self.temp,
                top_p: self.top_p,
                top_k: self.top_k,
                min_p: self.min_p,
                repetition_penalty: self.repetition_penalty,
                seed: self.seed,
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Generate text from a prompt, streaming it to the terminal.
    Generate {
        #[command(flatten)]
        model: ModelArg,
        #[arg(long, default_value = "Hello")]
        prompt: String,
        #[arg(long)]
        system_prompt: Option<String>,
        /// Feed the prompt as is, without the model's chat template.
        #[arg(long)]
        ignore_chat_template: bool,
        #[command(flatten)]
        sampling: SamplingArgs,
        /// Print the prompt as the model sees it.
        #[arg(long)]
        verbose: bool,
        /// End with a JSON line of the generated token ids (testing).
        #[arg(long, hide = true)]
        print_ids: bool,
    },
    /// Chat interactively; the KV cache is kept between turns.
    Chat {
        #[command(flatten)]
        model: ModelArg,
        #[arg(long)]
        system_prompt: Option<String>,
        #[command(flatten)]
        sampling: SamplingArgs,
    },
    /// Serve an OpenAI-compatible HTTP API.
    Server {
        #[command(flatten)]
        model: ModelArg,
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Requests asking for more tokens are rejected.
        #[arg(long, default_value_t = 4096)]
        max_tokens_limit: usize,
    },
    /// Convert a GGUF file or a Hugging Face folder to MLX's format (optionally quantized).
    Convert {
        /// Source: a .gguf file or a Hugging Face / mlx-lm folder.
        #[arg(long)]
        model: PathBuf,
        /// Destination folder.
        #[arg(long)]
        out: PathBuf,
        /// Quantize float matrices (affine, MLX's format).
        #[arg(short = 'q', long)]
        quantize: bool,
        #[arg(long, default_value_t = 4)]
        q_bits: usize,
        #[arg(long, default_value_t = 64)]
        q_group_size: usize,
        /// Turn quantized matrices back into floats.
        #[arg(long)]
        dequantize: bool,
        /// float16, bfloat16 or float32 for the floats written.
        #[arg(long, default_value = "float16")]
        dtype: String,
    },
    /// Time prompt processing and generation at fixed lengths.
    Benchmark {
        #[command(flatten)]
        model: ModelArg,
        #[arg(long, short = 'p', default_value_t = 512)]
        prompt_tokens: usize,
        #[arg(long, short = 'g', default_value_t = 128)]
        generation_tokens: usize,
        #[arg(long, short = 'n', default_value_t = 3)]
        trials: usize,
        /// Instead of the table: where a decode step's time goes, per primitive (host time
        /// from inputs ready to kernel launched or done), over the generated tokens.
        #[arg(long)]
        profile: bool,
    },
    /// Print the token ids of a text as JSON (testing and debugging).
    #[command(hide = true)]
    Tokenize {
        #[command(flatten)]
        model: ModelArg,
        #[arg(long)]
        text: String,
        /// Also write the tokenizer as a Hugging Face tokenizer.json here.
        #[arg(long)]
        dump: Option<PathBuf>,
    },
    /// Write the logits of every position of a token sequence to an .npy file (testing).
    #[command(hide = true)]
    Logits {
        #[command(flatten)]
        model: ModelArg,
        /// Comma-separated token ids.
        #[arg(long)]
        tokens: String,
        #[arg(long)]
        out: PathBuf,
        /// Feed the tokens through the cache this many at a time (tests the cache path).
        #[arg(long)]
        chunk: Option<usize>,
    },
}

/// The prompt's token ids, through the chat template unless told otherwise.
fn prompt_ids(
    l: &Loaded,
    prompt: &str,
    system: Option<&str>,
    raw: bool,
    verbose: bool,
) -> Result<Vec<u32>> {
    let text = match (&l.tokenizer.chat_template, raw) {
        (Some(t), false) => {
            let mut msgs = Vec::new();
            if let Some(s) = system {
                msgs.push(Message::new("system", s));
            }
            msgs.push(Message::new("user", prompt));
            render(t, &msgs, true, "", "")?
        }
        _ => prompt.to_string(),
    };
    if verbose {
        eprintln!("==========\n{text}\n==========");
    }
    l.tokenizer.encode(&text)
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Generate {
            model,
            prompt,
            system_prompt,
            ignore_chat_template,
            sampling,
            verbose,
            print_ids,
        } => {
            let l = loader::load(&model.model)?;
            let ids = prompt_ids(
                &l,
                &prompt,
                system_prompt.as_deref(),
                ignore_chat_template,
                verbose,
            )?;
            let mut cache = l.model.new_cache_of(sampling.cache_kind()?);
            let mut out = std::io::stdout();
            let g = generate(
                l.model.as_ref(),
                &l.tokenizer,
                &ids,
                &mut cache,
                &sampling.options(),
                |s| {
                    let _ = out.write_all(s.as_bytes());
                    let _ = out.flush();
                    true
                },
            )?;
            println!();
            println!("==========");
            println!(
                "Prompt: {} tokens, {:.3} tokens-per-sec",
                g.prompt_tokens, g.prompt_tps
            );
            println!(
                "Generation: {} tokens, {:.3} tokens-per-sec",
                g.tokens.len(),
                g.generation_tps
            );
            println!("Peak memory: {:.3} GB", g.peak_memory_bytes as f64 / 1e9);
            if print_ids {
                println!("{}", serde_json::json!({"ids": g.tokens}));
            }
        }
        Command::Chat {
            model,
            system_prompt,
            sampling,
        } => {
            let l = loader::load(&model.model)?;
            rmx_lm::chat::repl(
                &l,
                system_prompt.as_deref(),
                &sampling.options(),
                sampling.cache_kind()?,
            )?;
        }
        Command::Server {
            model,
            host,
            port,
            max_tokens_limit,
        } => {
            let l = loader::load(&model.model)?;
            let config = rmx_lm::server::ServerConfig {
                host,
                port,
                max_tokens_limit,
                ..Default::default()
            };
            rmx_lm::server::serve(l, config)?;
        }
        Command::Convert {
            model,
            out,
            quantize,
            q_bits,
            q_group_size,
            dequantize,
            dtype,
        } => {
            let dtype = match dtype.as_str() {
                "float16" => rmx_core::Dtype::Float16,
                "bfloat16" => rmx_core::Dtype::Bfloat16,
                "float32" => rmx_core::Dtype::Float32,
                other => {
                    return Err(rmx_lm::invalid!(
                        "--dtype {other}: expected float16, bfloat16 or float32"
                    ))
                }
            };
            let opts = rmx_lm::convert::ConvertOptions {
                quantize: quantize.then_some(rmx_lm::config::QuantConfig {
                    group_size: q_group_size,
                    bits: q_bits,
                }),
                dequantize,
                dtype: Some(dtype),
            };
            rmx_lm::convert::convert(&model, &out, &opts)?;
            println!("wrote {}", out.display());
        }
        Command::Benchmark {
            model,
            prompt_tokens,
            generation_tokens,
            trials,
            profile,
        } => {
            let l = loader::load(&model.model)?;
            if profile {
                let p = rmx_lm::benchmark::profile(&l, prompt_tokens, generation_tokens)?;
                print!("{p}");
                return Ok(());
            }
            let t = rmx_lm::benchmark::run(&l, prompt_tokens, generation_tokens, trials)?;
            print!(
                "{}",
                rmx_lm::benchmark::table(&l.name, prompt_tokens, generation_tokens, &t)
            );
        }
        Command::Tokenize { model, text, dump } => {
            let l = loader::load(&model.model)?;
            if let Some(path) = dump {
                l.tokenizer
                    .inner
                    .save(&path, false)
                    .map_err(|e| rmx_lm::LmError::Tokenizer(e.to_string()))?;
            }
            let ids = l.tokenizer.encode(&text)?;
            let back = l.tokenizer.decode(&ids)?;
            println!("{}", serde_json::json!({"ids": ids, "decoded": back}));
        }
        Command::Logits {
            model,
            tokens,
            out,
            chunk,
        } => {
            let l = loader::load(&model.model)?;
            let ids: Vec<u32> = tokens
                .split(',')
                .map(|t| t.trim().parse::<u32>())
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| rmx_lm::invalid!("--tokens: {e}"))?;
            let mut cache = l.model.new_cache();
            let mut parts = Vec::new();
            for part in ids.chunks(chunk.unwrap_or(ids.len()).max(1)) {
                let x = rmx_core::Array::from_slice(part, &[1, part.len()])?;
                let y = l.model.forward(&x, &mut cache)?;
                rmx_core::eval(std::slice::from_ref(&y))?;
                parts.push(y);
            }
            let logits = rmx_core::ops::concatenate(&parts, Some(1))?;
            let logits = rmx_core::ops::astype(&logits, rmx_core::Dtype::Float32)?;
            rmx_io::save(&out, &logits)?;
        }
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = choose_device(&cli.device, cli.dtype.as_deref()).and_then(|_| run(cli)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
