//! `heidi upstream`: the reference gRPC upstream until SIGINT or SIGTERM.

use std::time::Duration;

use super::Exit;
use super::args::UpstreamArgs;
use crate::grpc::tls::{IdentityFiles, ServerTlsFiles, server_config};
use crate::grpc::upstream::{ReferenceUpstream, UpstreamConfig};

/// The configuration the flags describe.
pub fn config(args: &UpstreamArgs) -> UpstreamConfig {
    UpstreamConfig {
        failure_rate_ppm: args.failure_rate,
        seed: args.seed,
        latency: Duration::from_millis(args.latency_ms),
        cost: Duration::from_millis(args.cost_ms),
        concurrency: args.concurrency,
        outages: args.outages.clone(),
        capacity: args.capacity,
    }
}

/// The TLS files the flags name, if any.
pub fn tls_files(args: &UpstreamArgs) -> Option<ServerTlsFiles> {
    let (cert, key) = args.tls_cert.clone().zip(args.tls_key.clone())?;
    Some(ServerTlsFiles {
        identity: IdentityFiles { cert, key },
        client_ca: args.tls_client_ca.clone(),
    })
}

/// Serves until SIGINT/SIGTERM, then prints the counters (JSON) on stdout. Exit 2 on a bad
/// flag, TLS file or listen address (a non-loopback one without `--allow-remote`); 1 if the
/// server fails while serving.
pub fn run(args: &UpstreamArgs) -> Exit {
    match serve(args) {
        Ok(()) => Exit::Ok,
        Err((exit, e)) => {
            eprintln!("heidi upstream: {e}");
            exit
        }
    }
}

/// A non-loopback `--listen` address needs `--allow-remote`, as the sidecar's does.
pub fn check_listen(args: &UpstreamArgs) -> Result<(), String> {
    if args.listen.ip().is_loopback() || args.allow_remote {
        return Ok(());
    }
    Err(format!(
        "--listen {} is not a loopback address; pass --allow-remote to listen on it",
        args.listen
    ))
}

fn serve(args: &UpstreamArgs) -> Result<(), (Exit, String)> {
    let usage = |e: String| (Exit::Usage, e);
    check_listen(args).map_err(usage)?;
    let upstream = ReferenceUpstream::new(config(args)).map_err(|e| usage(e.to_string()))?;
    let tls = match tls_files(args) {
        Some(files) => Some(server_config(&files).map_err(|e| usage(e.to_string()))?),
        None => None,
    };
    let rt = tokio::runtime::Runtime::new().map_err(|e| usage(format!("runtime: {e}")))?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| usage(format!("cannot listen on {}: {e}", args.listen)))?;
        let shutdown = shutdown_signal().map_err(|e| usage(format!("signals: {e}")))?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        eprintln!("heidi upstream: listening on {scheme}://{}", args.listen);
        upstream
            .serve(listener, tls, shutdown)
            .await
            .map_err(|e| (Exit::DaemonError, e.to_string()))
    })?;
    match serde_json::to_string(&upstream.stats()) {
        Ok(json) => outln!("{json}"),
        Err(e) => eprintln!("heidi upstream: stats: {e}"),
    }
    Ok(())
}

/// Completes at the first SIGINT or SIGTERM.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: UpstreamArgs,
    }

    fn parse(flags: &[&str]) -> UpstreamArgs {
        Wrap::try_parse_from(std::iter::once("upstream").chain(flags.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn a_remote_listen_address_needs_allow_remote() {
        assert!(check_listen(&parse(&[])).is_ok());
        assert!(check_listen(&parse(&["--listen", "[::1]:1"])).is_ok());
        let e = check_listen(&parse(&["--listen", "0.0.0.0:1"])).unwrap_err();
        assert!(
            e.contains("0.0.0.0:1") && e.contains("--allow-remote"),
            "{e}"
        );
        assert!(check_listen(&parse(&["--listen", "0.0.0.0:1", "--allow-remote"])).is_ok());
    }
}
