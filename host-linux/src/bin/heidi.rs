//! `heidi`: the command line of heidi-kernel (see `heidi --help`). The daemon's subcommands and
//! `journal verify` come from `heidi-cli`; `heidi upstream` (the reference gRPC upstream) from
//! `heidi-grpc`, composed here so that the CLI library has no gRPC.

use heidi_cli::Exit;
use heidi_grpc::upstream::cli::{ServeError, UpstreamArgs, UpstreamCommand, serve};

fn main() -> std::process::ExitCode {
    heidi_cli::main_with(|command| match command {
        UpstreamCommand::Upstream(args) => upstream(&args),
    })
}

/// Serves until SIGINT/SIGTERM, then prints the counters (JSON) on stdout. Exit 2 on a bad
/// flag, TLS file or listen address (a non-loopback one without `--allow-remote`); 1 if the
/// server fails while serving.
fn upstream(args: &UpstreamArgs) -> Exit {
    match serve(args) {
        Ok(stats) => {
            match serde_json::to_string(&stats) {
                Ok(json) => heidi_cli::write_out(format_args!("{json}")),
                Err(e) => eprintln!("heidi upstream: stats: {e}"),
            }
            Exit::Ok
        }
        Err(e) => {
            eprintln!("heidi upstream: {e}");
            match e {
                ServeError::Usage(_) => Exit::Usage,
                ServeError::Serving(_) => Exit::DaemonError,
            }
        }
    }
}
