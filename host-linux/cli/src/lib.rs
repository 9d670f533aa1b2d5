//! The `heidi` command line, without gRPC: the binary adds `heidi upstream` (from
//! `heidi-grpc`) through [`main_with`].
//!
//! Every daemon subcommand is one typed call of the [client library](heidi_client); the reply
//! is printed as pretty JSON (or raw with `--json`), and the exit code says what happened
//! ([`Exit`]). `journal verify` needs no daemon: it streams the file through the core's
//! verifier ([`verify::verify_journal`]).

/// `println!` for the CLI's results: a reader that went away (`heidi journal tail | head`)
/// ends the program quietly with status 141, as a shell reports a process killed by
/// `SIGPIPE`, instead of the panic `println!` gives on a broken pipe.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::write_out(format_args!($($arg)*))
    };
}

pub mod args;
pub mod policy_file;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use heidi_client::endpoint::{Endpoint, EndpointEnv};
use heidi_client::{
    CallResult, CallStatus, Client, ClientConfig, ENV_ENABLED, ENV_ENDPOINT, IdempotencyOutcome,
    JournalEntry, Token,
};
use heidi_store::verify;
use serde_json::Value;

use args::{
    BreakerCommand, Cli, Command, Global, HealthCommand, IdempotencyCommand, JournalCommand,
    LeaseCommand, LimitCommand, PipelineCommand, PolicyCommand,
};

/// Journals larger than this get a progress bar (when stderr is a terminal).
const PROGRESS_MIN_BYTES: u64 = 8 * 1024 * 1024;

/// The exit codes of `heidi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: success.
    Ok = 0,
    /// 1: the daemon answered with an error reply (or an unusable one).
    DaemonError = 1,
    /// 2: bad flags, configuration or input files.
    Usage = 2,
    /// 3: the daemon could not be reached, or did not answer in time.
    Unavailable = 3,
    /// 4: journal verification found a fault.
    VerifyFailed = 4,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// Parses the process arguments and runs `heidi` (clap itself exits 2 on a usage error);
/// `extra` runs the binary's own subcommands ([`Command::Extra`]).
pub fn main_with<X: Subcommand>(extra: impl FnOnce(X) -> Exit) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    run(Cli::<X>::parse(), extra).into()
}

/// Runs a parsed command line; `extra` runs the binary's own subcommands.
pub fn run<X: Subcommand>(cli: Cli<X>, extra: impl FnOnce(X) -> Exit) -> Exit {
    match cli.command {
        Command::Journal(JournalCommand::Verify {
            file,
            seals,
            key,
            anchor,
        }) => verify_command(verify::VerifyOptions::resolve(file, seals, key, anchor)),
        Command::Extra(command) => extra(command),
        command => {
            let client = match client_config(&cli.global)
                .and_then(|c| Client::new(c).map_err(|e| e.to_string()))
            {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("heidi: {e}");
                    return Exit::Usage;
                }
            };
            daemon_command(&client, command, cli.global.json, extra)
        }
    }
}

/// The library's configuration with the flags applied. `HEIDI_KERNEL_ENABLED` is ignored, and
/// `HEIDI_KERNEL_ENDPOINT` too when `--endpoint` or `--socket` is given.
pub fn client_config(global: &Global) -> Result<ClientConfig, String> {
    let flagged = global.endpoint.is_some() || global.socket.is_some();
    let lookup = |name: &str| {
        let hidden = name == ENV_ENABLED || (flagged && name == ENV_ENDPOINT);
        if hidden {
            None
        } else {
            std::env::var(name).ok()
        }
    };
    let mut config = ClientConfig::from_lookup(lookup, &EndpointEnv::from_process())
        .map_err(|e| e.to_string())?;
    if let Some(endpoint) = &global.endpoint {
        config.endpoint = Endpoint::parse(endpoint).map_err(|e| e.to_string())?;
    } else if let Some(socket) = &global.socket {
        let path = std::path::absolute(socket).map_err(|e| format!("--socket: {e}"))?;
        config.endpoint = Endpoint::Unix(path);
    }
    if let Some(ms) = global.timeout_ms {
        config.timeout_ms = ms;
    }
    if let Some(path) = &global.token_file {
        let token = Token::from_file(path).map_err(|e| format!("--token-file {e}"))?;
        config.token = Some(token);
    }
    config.validate().map_err(|e| match global.timeout_ms {
        Some(ms) if e.variable == heidi_client::ENV_TIMEOUT_MS => {
            format!("--timeout-ms {ms}: expected {}", e.expected)
        }
        _ => e.to_string(),
    })?;
    Ok(config)
}

/// One daemon call per subcommand.
fn daemon_command<X: Subcommand>(
    client: &Client,
    command: Command<X>,
    json: bool,
    extra: impl FnOnce(X) -> Exit,
) -> Exit {
    let result = match command {
        Command::Ping => client.ping(),
        Command::Status => client.status(),
        Command::Policy(PolicyCommand::Get) => client.get_policy(),
        Command::Policy(PolicyCommand::Apply { file }) => match policy_file::load_policy(&file) {
            Ok(doc) => client.apply_policy(doc),
            Err(e) => {
                eprintln!("heidi: {e}");
                return Exit::Usage;
            }
        },
        Command::Limit(LimitCommand::Check(a)) => {
            client.rate_limit_check(&a.key, &a.operation, a.cost, a.tier.as_deref())
        }
        Command::Limit(LimitCommand::Consume(a)) => {
            client.rate_limit_consume(&a.key, &a.operation, a.cost, a.tier.as_deref())
        }
        Command::Breaker(BreakerCommand::Acquire { name }) => client.breaker_acquire(&name),
        Command::Breaker(BreakerCommand::Record {
            name,
            permit,
            outcome,
            duration_ms,
        }) => client.breaker_record(&name, &permit, outcome, duration_ms),
        Command::Lease(LeaseCommand::Acquire { key }) => client.lease_acquire(&key),
        Command::Lease(LeaseCommand::Refresh { key, id }) => client.lease_refresh(&key, &id),
        Command::Lease(LeaseCommand::Release { key, id }) => client.lease_release(&key, &id),
        Command::Journal(JournalCommand::Tail { n }) => {
            let result = client.journal_tail(n);
            if result.success && !json {
                print_tail(&result);
                return Exit::Ok;
            }
            result
        }
        Command::Journal(JournalCommand::Append {
            event_type,
            message,
            stage,
            level,
        }) => {
            let mut entry = JournalEntry::info(&stage, &event_type, message);
            entry.level = level;
            client.journal_append(&entry)
        }
        Command::Journal(JournalCommand::Verify {
            file,
            seals,
            key,
            anchor,
        }) => {
            return verify_command(verify::VerifyOptions::resolve(file, seals, key, anchor));
        }
        Command::Extra(command) => return extra(command),
        Command::Health(HealthCommand::Report { name, fail }) => client.health_report(&name, !fail),
        Command::Health(HealthCommand::Aggregate) => client.health_aggregate(),
        Command::Idempotency(IdempotencyCommand::Begin { key }) => client.idempotency_begin(&key),
        Command::Idempotency(IdempotencyCommand::Complete {
            key,
            token,
            digest,
            failed: _,
        }) => {
            let outcome = match &digest {
                Some(digest) => IdempotencyOutcome::Success { digest },
                None => IdempotencyOutcome::Failure,
            };
            client.idempotency_complete(&key, &token, outcome)
        }
        Command::Pipeline(p) => match p {
            PipelineCommand::Start { mode } => client.pipeline_start(mode),
            PipelineCommand::Stop => client.pipeline_stop(),
            PipelineCommand::Pause => client.pipeline_pause(),
            PipelineCommand::Resume => client.pipeline_resume(),
            PipelineCommand::Reset => client.pipeline_reset(),
            PipelineCommand::TrainNow => client.pipeline_train_now(),
        },
    };
    report(client.endpoint(), &result, json)
}

/// Writes one line to stdout; a reader that went away ends the program with status 141 (as
/// after `SIGPIPE`), any other write error with status 1.
pub fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = out.write_fmt(args).and_then(|()| out.write_all(b"\n"));
    match written.and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(141),
        Err(e) => {
            eprintln!("heidi: cannot write to stdout: {e}");
            std::process::exit(1);
        }
    }
}

/// Prints a call's outcome and picks the exit code.
pub fn report(endpoint: &str, result: &CallResult, json: bool) -> Exit {
    let exit = exit_for(result.status);
    match (&result.payload, json) {
        (Some(payload), true) => outln!("{payload}"),
        (Some(payload), false) if result.success => outln!("{}", pretty(payload)),
        _ => {}
    }
    match result.status {
        CallStatus::Ok => {}
        CallStatus::Error => eprintln!(
            "heidi: error {}: {}",
            result.error_code.as_deref().unwrap_or("UNKNOWN"),
            result.reason.as_deref().unwrap_or("")
        ),
        CallStatus::Timeout | CallStatus::Unavailable => eprintln!(
            "heidi: daemon unavailable at {endpoint}: {} (after {} retries)",
            result.reason.as_deref().unwrap_or("no answer"),
            result.retry_count
        ),
    }
    exit
}

/// The exit code of a call status.
pub fn exit_for(status: CallStatus) -> Exit {
    match status {
        CallStatus::Ok => Exit::Ok,
        CallStatus::Error => Exit::DaemonError,
        CallStatus::Timeout | CallStatus::Unavailable => Exit::Unavailable,
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// `journal tail`: one line per event of the reply's `events` (compact JSON, oldest first),
/// and a note on stderr when the daemon cut the list to fit its reply limit; else the whole
/// reply.
fn print_tail(result: &CallResult) {
    match result.field("events").and_then(Value::as_array) {
        Some(events) => {
            for event in events {
                outln!("{event}");
            }
            if result.field("truncated") == Some(&Value::Bool(true)) {
                eprintln!(
                    "heidi: only the newest {} lines fit in one reply",
                    events.len()
                );
            }
        }
        None => {
            if let Some(p) = &result.payload {
                outln!("{}", pretty(p));
            }
        }
    }
}

/// `journal verify`, with a progress bar by bytes on large files when stderr is a terminal.
fn verify_command(opts: verify::VerifyOptions) -> Exit {
    let bar = progress_bar(&opts.journal);
    let mut tick = |n: u64| {
        if let Some(bar) = &bar {
            bar.set_position(n);
        }
    };
    let outcome = verify::verify_journal(&opts, &mut tick);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    match outcome {
        Ok(report) => {
            outln!("{report}");
            Exit::Ok
        }
        Err(e) => {
            eprintln!("{e}");
            if e.is_verification_failure() {
                Exit::VerifyFailed
            } else {
                Exit::Usage
            }
        }
    }
}

fn progress_bar(journal: &Path) -> Option<indicatif::ProgressBar> {
    let len = std::fs::metadata(journal).ok()?.len();
    if len < PROGRESS_MIN_BYTES || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    );
    if let Ok(style) = style {
        bar.set_style(style);
    }
    Some(bar)
}

#[cfg(test)]
mod tests;
