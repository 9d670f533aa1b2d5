//! Times whole simulation runs natively: `bench <config-json> <runs>` prints one line per run
//! (`steps <n> ns <elapsed>`) and then the median simulated events per second.
//! Used by `scripts/bench-sim.sh`, which times the same config in the wasm module under node.

use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [config, runs] = args.as_slice() else {
        eprintln!("usage: bench <config-json> <runs>");
        return ExitCode::from(2);
    };
    let runs: usize = match runs.parse() {
        Ok(n @ 1..=1_000) => n,
        _ => {
            eprintln!("bench: runs must be a whole number in 1..=1000, got {runs:?}");
            return ExitCode::from(2);
        }
    };
    let mut rates = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let trace = match heidi_wasm::run_json(config.as_bytes()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        };
        let ns = start.elapsed().as_nanos().max(1);
        let steps = steps_of(&trace);
        println!("steps {steps} ns {ns} bytes {}", trace.len());
        rates.push(u128::from(steps) * 1_000_000_000 / ns);
    }
    rates.sort_unstable();
    println!("native median events/s: {}", rates[rates.len() / 2]);
    ExitCode::SUCCESS
}

/// The trace's `"steps"` field (written before the ticks, so a prefix search finds it).
fn steps_of(trace: &[u8]) -> u64 {
    let key = b"\"steps\":";
    trace
        .windows(key.len())
        .position(|w| w == key)
        .map(|i| {
            trace[i + key.len()..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .fold(0u64, |n, b| n * 10 + u64::from(b - b'0'))
        })
        .unwrap_or(0)
}
