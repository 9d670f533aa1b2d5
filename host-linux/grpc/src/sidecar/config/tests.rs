//! Every limit and guard of the sidecar's configuration, and the precedence of its layers.

use super::*;
use heidi_core::Duration;

fn file(text: &str) -> FileConfig {
    toml::from_str(text).unwrap()
}

fn env_batch(size: &str) -> Env {
    Env {
        batch_size: Some(size.to_owned()),
        ..Env::default()
    }
}

fn error(args: &Args, env: &Env, text: &str) -> ConfigError {
    resolve(args, env, file(text)).unwrap_err()
}

#[test]
fn defaults_follow_the_issue() {
    let c = SidecarConfig::defaults();
    assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(c.upstream, DEFAULT_UPSTREAM);
    assert_eq!(c.batch_size, 8);
    assert_eq!(c.batch_linger, Duration::from_millis(100));
    assert_eq!(c.queue_capacity, 1024);
    assert_eq!(c.max_in_flight, 8);
    assert_eq!(c.upstream_deadline, std::time::Duration::from_secs(2));
    // max_attempts counts the first call: 4 = one call and retries after 100, 200, 400 ms.
    assert_eq!(c.retry.max_attempts, 4);
    let delays: Vec<u64> = (1..=3).map(|n| c.retry.backoff(n).as_millis()).collect();
    assert_eq!(delays, [100, 200, 400]);
    assert_eq!(c.breaker.failure_threshold, 5);
    assert_eq!(c.breaker.reset_timeout, Duration::from_secs(60));
    assert_eq!(c.breaker.success_threshold, 1);
    assert_eq!(c.breaker.half_open_max_probes, 1);
    assert_eq!(c.budget, BudgetConfig::DEFAULT);
    assert!(c.metrics_listen.is_none() && c.tls.is_none() && c.upstream_tls.is_none());
    assert_eq!(c.log_filter, "info");
}

#[test]
fn batch_size_guard_names_its_source() {
    let none = Args::default();
    let e = error(&none, &env_batch("9"), "");
    assert_eq!(e.field, "BATCH_SIZE");
    assert!(e.reason.contains("guard of 8"), "{e}");
    assert_eq!(error(&none, &env_batch("0"), "").field, "BATCH_SIZE");
    let e = error(&none, &env_batch("eight"), "");
    assert_eq!(e.field, "BATCH_SIZE");
    assert!(e.reason.contains("does not parse"));
    assert_eq!(error(&none, &env_batch(""), "").field, "BATCH_SIZE");
    for ok in ["1", "8", " 3 "] {
        let c = resolve(&none, &env_batch(ok), FileConfig::default()).unwrap();
        assert_eq!(c.batch_size, ok.trim().parse::<usize>().unwrap());
    }
    let flag = Args {
        batch_size: Some(9),
        ..Args::default()
    };
    assert_eq!(error(&flag, &Env::default(), "").field, "--batch-size");
    let e = error(&none, &Env::default(), "[sidecar]\nbatch_size = 9");
    assert_eq!(e.field, "sidecar.batch_size");
}

#[test]
fn flags_beat_environment_beats_file() {
    let text = "[sidecar]\nbatch_size = 2\nbatch_timeout_ms = 20\nlisten = \"127.0.0.1:7000\"\nupstream = \"http://file:1\"";
    let env = Env {
        listen_addr: Some("127.0.0.1:7001".into()),
        warm_orchestrator_endpoint: Some("http://env:1".into()),
        batch_size: Some("3".into()),
        batch_timeout_ms: Some("30".into()),
        batch_max_bytes: None,
        log: Some("debug".into()),
    };
    let c = resolve(&Args::default(), &Env::default(), file(text)).unwrap();
    assert_eq!((c.batch_size, c.batch_linger.as_millis()), (2, 20));
    assert_eq!(
        (c.listen.port(), c.upstream.as_str()),
        (7000, "http://file:1")
    );
    let c = resolve(&Args::default(), &env, file(text)).unwrap();
    assert_eq!((c.batch_size, c.batch_linger.as_millis()), (3, 30));
    assert_eq!(
        (c.listen.port(), c.upstream.as_str()),
        (7001, "http://env:1")
    );
    assert_eq!(c.log_filter, "debug");
    let flags = Args {
        batch_size: Some(4),
        batch_timeout_ms: Some(40),
        listen: Some("127.0.0.1:7002".parse().unwrap()),
        upstream: Some("http://flag:1".into()),
        log: Some("warn".into()),
        ..Args::default()
    };
    let c = resolve(&flags, &env, file(text)).unwrap();
    assert_eq!((c.batch_size, c.batch_linger.as_millis()), (4, 40));
    assert_eq!(
        (c.listen.port(), c.upstream.as_str()),
        (7002, "http://flag:1")
    );
    assert_eq!(c.log_filter, "warn");
}

#[test]
fn batch_timeout_limits() {
    let env = |v: &str| Env {
        batch_timeout_ms: Some(v.into()),
        ..Env::default()
    };
    let none = Args::default();
    for ok in ["0", "60000"] {
        assert!(resolve(&none, &env(ok), FileConfig::default()).is_ok());
    }
    for bad in ["60001", "-1", "1.5"] {
        assert_eq!(
            error(&none, &env(bad), "").field,
            "BATCH_TIMEOUT_MS",
            "{bad}"
        );
    }
}

#[test]
fn batch_max_bytes_stays_within_the_upstream_message_limit() {
    let env = |v: &str| Env {
        batch_max_bytes: Some(v.into()),
        ..Env::default()
    };
    let none = Args::default();
    let c = resolve(&none, &Env::default(), FileConfig::default()).unwrap();
    assert_eq!(c.batch_max_bytes, DEFAULT_BATCH_MAX_BYTES);
    for ok in ["1", "4194304"] {
        let c = resolve(&none, &env(ok), FileConfig::default()).unwrap();
        assert_eq!(c.batch_max_bytes, ok.parse::<usize>().unwrap());
    }
    let e = error(&none, &env("4194305"), "");
    assert_eq!(e.field, "BATCH_MAX_BYTES");
    assert!(e.reason.contains("upstream message limit"), "{}", e.reason);
    assert_eq!(error(&none, &env("0"), "").field, "BATCH_MAX_BYTES");
    let flag = Args {
        batch_max_bytes: Some(5_000_000),
        ..Args::default()
    };
    assert_eq!(error(&flag, &env("10"), "").field, "--batch-max-bytes");
    let e = error(&none, &Env::default(), "[sidecar]\nbatch_max_bytes = 0");
    assert_eq!(e.field, "sidecar.batch_max_bytes");
}

#[test]
fn remote_addresses_need_the_explicit_flag() {
    let env = Env {
        listen_addr: Some("0.0.0.0:50051".into()),
        ..Env::default()
    };
    let e = error(&Args::default(), &env, "");
    assert_eq!(e.field, "LISTEN_ADDR");
    assert!(e.reason.contains("--allow-remote"));
    let allow = Args {
        allow_remote: true,
        ..Args::default()
    };
    assert_eq!(
        resolve(&allow, &env, FileConfig::default())
            .unwrap()
            .listen
            .port(),
        50051
    );
    let c = resolve(
        &Args::default(),
        &env,
        file("[sidecar]\nallow_remote = true"),
    )
    .unwrap();
    assert!(!c.listen.ip().is_loopback());
    assert_eq!(
        error(
            &Args::default(),
            &Env::default(),
            "[sidecar]\nlisten = \"10.0.0.1:1\""
        )
        .field,
        "sidecar.listen"
    );
    let metrics = Args {
        metrics_listen: Some("0.0.0.0:9464".parse().unwrap()),
        ..Args::default()
    };
    assert_eq!(
        error(&metrics, &Env::default(), "").field,
        "--metrics-listen"
    );
    let e = error(
        &Args::default(),
        &Env::default(),
        "[sidecar]\nmetrics_listen = \"0.0.0.0:1\"",
    );
    assert_eq!(e.field, "sidecar.metrics_listen");
    let c = resolve(
        &Args::default(),
        &Env::default(),
        file("[sidecar]\nmetrics_listen = \"127.0.0.1:0\""),
    )
    .unwrap();
    assert_eq!(c.metrics_listen.unwrap().port(), 0);
    let bad = Env {
        listen_addr: Some("localhost".into()),
        ..Env::default()
    };
    assert_eq!(error(&Args::default(), &bad, "").field, "LISTEN_ADDR");
}

#[test]
fn upstream_urls_are_checked() {
    let env = |v: &str| Env {
        warm_orchestrator_endpoint: Some(v.into()),
        ..Env::default()
    };
    for bad in ["not a url", "ftp://x:1", "http://"] {
        assert_eq!(
            error(&Args::default(), &env(bad), "").field,
            "WARM_ORCHESTRATOR_ENDPOINT",
            "{bad}"
        );
    }
    let e = error(&Args::default(), &env("https://up:1"), "");
    assert!(e.field.contains("upstream_tls.ca"), "{e}");
    let tls = "[sidecar.upstream_tls]\nca = \"/ca.pem\"";
    let e = error(&Args::default(), &env("http://up:1"), tls);
    assert_eq!(e.field, "WARM_ORCHESTRATOR_ENDPOINT");
    let c = resolve(&Args::default(), &env("https://up:1"), file(tls)).unwrap();
    let t = c.upstream_tls.unwrap();
    assert_eq!(t.ca, std::path::PathBuf::from("/ca.pem"));
    assert!(t.identity.is_none());
    let half = format!("{tls}\ncert = \"/c.pem\"");
    assert!(
        error(&Args::default(), &env("https://up:1"), &half)
            .field
            .contains("upstream_tls.key")
    );
    let half = format!("{tls}\nkey = \"/k.pem\"");
    assert!(
        error(&Args::default(), &env("https://up:1"), &half)
            .field
            .contains("upstream_tls.cert")
    );
}

#[test]
fn listener_tls_pairs() {
    let none = Args::default();
    let e = error(&none, &Env::default(), "[sidecar.tls]\ncert = \"/c\"");
    assert!(e.field.contains("tls.key"));
    let e = error(&none, &Env::default(), "[sidecar.tls]\nkey = \"/k\"");
    assert!(e.field.contains("tls.cert"));
    let e = error(&none, &Env::default(), "[sidecar.tls]\nclient_ca = \"/ca\"");
    assert!(e.field.contains("client_ca"));
    let c = resolve(
        &none,
        &Env::default(),
        file("[sidecar.tls]\ncert = \"/c\"\nkey = \"/k\"\nclient_ca = \"/ca\""),
    )
    .unwrap();
    assert!(c.tls.unwrap().client_ca.is_some());
}

/// Every numeric file key at both ends of its range and one step beyond each end.
#[test]
fn every_numeric_limit_is_reached() {
    let cases: [(&str, &str, u64, u64); 14] = [
        ("", "queue_capacity", 1, 1_048_576),
        ("", "max_in_flight", 1, 256),
        ("", "upstream_deadline_ms", 1, 600_000),
        ("", "batch_timeout_ms", 0, 60_000),
        ("", "batch_size", 1, 8),
        ("retry", "max_attempts", 1, 10),
        ("retry", "base_delay_ms", 1, 60_000),
        ("retry", "max_delay_ms", 100, 600_000),
        ("retry", "multiplier", 1, 10),
        ("budget", "window_ms", 10, 3_600_000),
        ("budget", "ratio_permille", 0, 10_000),
        ("budget", "min_retries_per_sec", 0, 1_000_000),
        ("breaker", "failure_threshold", 1, 10_000),
        ("breaker", "reset_timeout_ms", 1, 86_400_000),
    ];
    let none = Args::default();
    for (section, key, lo, hi) in cases {
        let header = match section {
            "" => "[sidecar]".to_owned(),
            s => format!("[sidecar.{s}]"),
        };
        // A long base delay needs a cap at least as long (checked by the core, below).
        let extra = match key {
            "base_delay_ms" => "\nmax_delay_ms = 600000",
            _ => "",
        };
        let doc = |v: u64| format!("{header}\n{key} = {v}{extra}");
        for ok in [lo, hi] {
            let r = resolve(&none, &Env::default(), file(&doc(ok)));
            assert!(r.is_ok(), "{key} = {ok}: {:?}", r.err());
        }
        let mut beyond = vec![hi + 1];
        if lo > 0 {
            beyond.push(lo - 1);
        }
        for bad in beyond {
            let e = error(&none, &Env::default(), &doc(bad));
            assert!(e.field.starts_with("sidecar."), "{key} = {bad}: {e}");
            assert!(
                e.field.contains(key.trim_end_matches("_ms")) || key == "max_delay_ms",
                "{key}: {e}"
            );
        }
    }
    let e = error(
        &none,
        &Env::default(),
        "[sidecar.breaker]\nsuccess_threshold = 101",
    );
    assert_eq!(e.field, "sidecar.breaker.success_threshold");
    assert_eq!(
        error(
            &none,
            &Env::default(),
            "[sidecar.breaker]\nsuccess_threshold = 0"
        )
        .field,
        "sidecar.breaker.success_threshold"
    );
}

#[test]
fn retry_policy_is_checked_by_the_core() {
    let e = error(
        &Args::default(),
        &Env::default(),
        "[sidecar.retry]\nbase_delay_ms = 500\nmax_delay_ms = 200",
    );
    assert_eq!(e.field, "sidecar.retry.max_delay");
    let c = resolve(
        &Args::default(),
        &Env::default(),
        file("[sidecar.retry]\njitter = \"none\"\nmax_attempts = 1"),
    )
    .unwrap();
    assert_eq!(c.retry.jitter, Jitter::None);
    assert_eq!(c.retry.max_attempts, 1);
}

#[test]
fn flags_for_retry_budget_breaker_are_range_checked() {
    let cases: [(Args, &str); 6] = [
        (
            Args {
                max_attempts: Some(0),
                ..Args::default()
            },
            "--max-attempts",
        ),
        (
            Args {
                max_attempts: Some(11),
                ..Args::default()
            },
            "--max-attempts",
        ),
        (
            Args {
                budget_ratio_permille: Some(10_001),
                ..Args::default()
            },
            "--budget-ratio-permille",
        ),
        (
            Args {
                breaker_failure_threshold: Some(0),
                ..Args::default()
            },
            "--breaker-failure-threshold",
        ),
        (
            Args {
                breaker_reset_timeout_ms: Some(0),
                ..Args::default()
            },
            "--breaker-reset-timeout-ms",
        ),
        (
            Args {
                upstream_deadline_ms: Some(0),
                ..Args::default()
            },
            "--upstream-deadline-ms",
        ),
    ];
    for (args, field) in cases {
        assert_eq!(error(&args, &Env::default(), "").field, field);
    }
}

#[test]
fn files_unknown_keys_and_missing_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sidecar.toml");
    std::fs::write(&path, "[sidecar]\nbatch_sise = 4\n").unwrap();
    let args = Args {
        config: Some(path.clone()),
        ..Args::default()
    };
    let e = load(&args, &Env::default()).unwrap_err();
    assert!(
        e.field.starts_with("--config") && e.reason.contains("batch_sise"),
        "{e}"
    );
    std::fs::write(&path, "[sidecar]\nbatch_size = 4\nmax_in_flight = 2\n").unwrap();
    let c = load(&args, &Env::default()).unwrap();
    assert_eq!((c.batch_size, c.max_in_flight), (4, 2));
    let missing = Args {
        config: Some(dir.path().join("absent.toml")),
        ..Args::default()
    };
    assert!(
        load(&missing, &Env::default())
            .unwrap_err()
            .field
            .starts_with("--config")
    );
}

#[test]
fn help_documents_the_environment_and_the_file() {
    use clap::CommandFactory;
    let help = Args::command().render_long_help().to_string();
    for needle in [
        "LISTEN_ADDR",
        "WARM_ORCHESTRATOR_ENDPOINT",
        "BATCH_SIZE",
        "BATCH_TIMEOUT_MS",
        "--allow-remote",
        "max_attempts",
        "[sidecar.breaker]",
        "RESOURCE_EXHAUSTED",
        "retry-after-ms",
    ] {
        assert!(help.contains(needle), "{needle} missing from --help");
    }
}
