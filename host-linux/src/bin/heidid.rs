//! `heidid`: the heidi-kernel daemon. See `heidid --help` and docs/DAEMON.md.

use clap::Parser;

fn main() -> std::process::ExitCode {
    heidi_daemon::run::main(heidi_daemon::config::Args::parse())
}
