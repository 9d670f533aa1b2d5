//! `heidi-sidecar`: the gRPC sidecar proxy. See `heidi-sidecar --help` and docs/SIDECAR.md.

use clap::Parser;

fn main() -> std::process::ExitCode {
    heidi_grpc::sidecar::run::main(heidi_grpc::sidecar::config::Args::parse())
}
