//! `heidi`: the command line of heidi-kernel (see `heidi --help`).

fn main() -> std::process::ExitCode {
    heidi_linux::cli::main()
}
