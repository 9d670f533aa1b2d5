//! `heidi` tests: argument parsing, configuration, exit codes against a fake daemon.

use std::sync::{Arc, Mutex};

use clap::{CommandFactory, Parser};
use serde_json::{Value, json};

use super::args::{Command, LimitCommand};
use super::*;
use heidi_client::fake::FakeServer;

/// A subcommand the binary adds, as `heidi` adds `upstream`.
#[derive(Debug, clap::Subcommand)]
enum Extra {
    /// An added subcommand.
    Added,
}

type Cli = super::args::Cli<Extra>;

/// Runs with `Extra::Added` answering `Exit::Ok`.
fn run(cli: Cli) -> Exit {
    super::run(cli, |Extra::Added| Exit::Ok)
}

#[test]
fn an_added_subcommand_runs_without_a_daemon_configuration() {
    let cli = parse(&["--endpoint", "ftp://x", "added"]);
    assert_eq!(
        super::run(cli, |Extra::Added| Exit::DaemonError),
        Exit::DaemonError
    );
}

fn parse(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("heidi").chain(args.iter().copied())).unwrap()
}

fn at(server: &FakeServer, args: &[&str]) -> Cli {
    let socket = server.path.to_str().unwrap().to_owned();
    let mut all = vec!["--socket", socket.as_str()];
    all.extend_from_slice(args);
    parse(&all)
}

#[test]
fn the_command_line_is_consistent_and_parses() {
    Cli::command().debug_assert();
    let cli = parse(&[
        "limit",
        "consume",
        "api",
        "--operation",
        "get",
        "--cost",
        "3",
        "--tier",
        "pro",
        "--json",
    ]);
    assert!(cli.global.json);
    let Command::Limit(LimitCommand::Consume(a)) = cli.command else {
        panic!("{:?}", cli.command)
    };
    assert_eq!(
        (
            a.key.as_str(),
            a.operation.as_str(),
            a.cost,
            a.tier.as_deref()
        ),
        ("api", "get", 3, Some("pro"))
    );
    let bad = [
        &["breaker", "record", "b", "p", "maybe"][..],
        &["pipeline", "start", "--mode", "fast"],
        &["--endpoint", "null", "--socket", "/x", "ping"],
        &["nope"],
    ];
    for args in bad {
        let e = Cli::try_parse_from(std::iter::once("heidi").chain(args.iter().copied()));
        assert_eq!(e.unwrap_err().exit_code(), 2, "{args:?}");
    }
}

#[test]
fn flags_override_the_environment_and_are_validated() {
    let cli = parse(&["--endpoint", "http://localhost.evil.com", "ping"]);
    assert!(client_config(&cli.global).unwrap_err().contains("loopback"));
    let cli = parse(&["--timeout-ms", "0", "ping"]);
    assert!(
        client_config(&cli.global)
            .unwrap_err()
            .contains("--timeout-ms 0")
    );
    let cli = parse(&["--socket", "rel.sock", "--timeout-ms", "70", "ping"]);
    let c = client_config(&cli.global).unwrap();
    let Endpoint::Unix(path) = c.endpoint else {
        panic!()
    };
    assert!(path.is_absolute() && path.ends_with("rel.sock"));
    assert_eq!(c.timeout_ms, 70);
    assert_eq!(run(parse(&["--endpoint", "ftp://x", "ping"])), Exit::Usage);
}

#[test]
fn exit_codes_follow_the_reply() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    let server = FakeServer::json(move |req| {
        keep.lock().unwrap().push(req.clone());
        match req["method"].as_str() {
            Some("PIPELINE_TRAIN_NOW") => {
                json!({"error": true, "code": "REFUSED", "message": "running"})
            }
            _ => json!({"ok": true}),
        }
    });
    assert_eq!(run(at(&server, &["ping"])), Exit::Ok);
    assert_eq!(
        run(at(&server, &["pipeline", "train-now"])),
        Exit::DaemonError
    );
    assert_eq!(
        run(at(&server, &["pipeline", "start", "--mode", "full"])),
        Exit::Ok
    );
    assert_eq!(
        run(at(
            &server,
            &[
                "breaker",
                "record",
                "db",
                "17",
                "failure",
                "--duration-ms",
                "5"
            ]
        )),
        Exit::Ok
    );
    let seen = seen.lock().unwrap();
    let methods: Vec<&str> = seen.iter().map(|r| r["method"].as_str().unwrap()).collect();
    assert_eq!(
        methods,
        [
            "PING",
            "PIPELINE_TRAIN_NOW",
            "PIPELINE_START",
            "BREAKER_RECORD"
        ]
    );
    assert_eq!(seen[2]["params"], json!({"mode": "full"}));
    assert_eq!(
        seen[3]["params"],
        json!({"name": "db", "permit": "17", "outcome": "failure", "duration_ms": 5})
    );

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.sock");
    let cli = parse(&["--socket", missing.to_str().unwrap(), "status"]);
    assert_eq!(run(cli), Exit::Unavailable);
}

#[test]
fn policy_apply_sends_the_toml_document_as_json() {
    let seen: Arc<Mutex<Option<Value>>> = Arc::default();
    let keep = seen.clone();
    let server = FakeServer::json(move |req| {
        *keep.lock().unwrap() = Some(req["params"].clone());
        json!({"version": 2})
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, "[limits.api]\nrate = 5\n").unwrap();
    let cli = at(&server, &["policy", "apply", file.to_str().unwrap()]);
    assert_eq!(run(cli), Exit::Ok);
    let params = seen.lock().unwrap().clone().unwrap();
    assert_eq!(params, json!({"policy": {"limits": {"api": {"rate": 5}}}}));

    let bad = dir.path().join("policy.ini");
    std::fs::write(&bad, "x").unwrap();
    assert_eq!(
        run(at(&server, &["policy", "apply", bad.to_str().unwrap()])),
        Exit::Usage
    );
}

#[test]
fn journal_verify_exit_codes() {
    use heidi_core::WallTime;
    use heidi_core::journal::{ChainWriter, Event, MAX_LINE_BYTES};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let mut chain = ChainWriter::new("r").unwrap();
    let mut buf = vec![0u8; MAX_LINE_BYTES];
    let mut text = Vec::new();
    for n in 0..3 {
        let e = Event::info(WallTime::from_unix_millis(n), 0, "s", "t", "m");
        text.extend_from_slice(chain.append(&e, &mut buf).unwrap());
    }
    std::fs::write(&path, &text).unwrap();
    // An explicit key and seal file: the result must not depend on a default key existing.
    let key_path = dir.path().join("seal.key");
    let secret = b"a test seal key of at least thirty-two bytes";
    std::fs::write(&key_path, secret).unwrap();
    std::fs::set_permissions(
        &key_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let key = heidi_core::journal::SealKey::new(secret).unwrap();
    let mut record = [0u8; heidi_core::journal::SEAL_MAX_BYTES];
    let n = chain.seal(&key).unwrap().encode(&mut record).unwrap();
    let seals = dir.path().join("events.seals");
    std::fs::write(&seals, &record[..n]).unwrap();
    let (file, key_arg) = (path.to_str().unwrap(), key_path.to_str().unwrap());
    // No daemon is needed: the endpoint is never used.
    let offline = [
        "--socket",
        "/nonexistent.sock",
        "journal",
        "verify",
        file,
        "--key",
        key_arg,
    ];
    assert_eq!(run(parse(&offline)), Exit::Ok);
    // The seal file deleted: 3 lines and no seal.
    std::fs::remove_file(&seals).unwrap();
    assert_eq!(run(parse(&offline)), Exit::VerifyFailed);
    std::fs::write(&seals, &record[..n]).unwrap();
    text.pop();
    std::fs::write(&path, &text).unwrap();
    assert_eq!(run(parse(&offline)), Exit::VerifyFailed);
    let missing = ["journal", "verify", "/nonexistent/events.jsonl"];
    assert_eq!(run(parse(&missing)), Exit::Usage);
}
