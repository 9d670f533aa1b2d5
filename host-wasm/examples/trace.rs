//! Prints the trace of one run as JSON on stdout (the native side of the determinism test).
//!
//! ```text
//! cargo run -p heidi-wasm --example trace -- <scenario> <seed> [params-json]
//! cargo run -p heidi-wasm --example trace -- --config '<config-json>'
//! ```
//!
//! Exit status 0 with the trace, 2 with the error JSON on stderr.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match args.as_slice() {
        [flag, config] if flag == "--config" => config.clone(),
        [scenario, seed] => format!(r#"{{"scenario":{scenario:?},"seed":{seed}}}"#),
        [scenario, seed, params] => {
            format!(r#"{{"scenario":{scenario:?},"seed":{seed},"params":{params}}}"#)
        }
        _ => {
            eprintln!("usage: trace <scenario> <seed> [params-json] | trace --config <json>");
            return ExitCode::from(2);
        }
    };
    match heidi_wasm::run_json(config.as_bytes()) {
        Ok(trace) => {
            let mut out = std::io::stdout().lock();
            if out.write_all(&trace).and_then(|()| out.flush()).is_err() {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", String::from_utf8_lossy(&e.to_json()));
            ExitCode::from(2)
        }
    }
}
