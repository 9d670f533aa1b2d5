use super::*;

fn env() -> EndpointEnv {
    EndpointEnv {
        endpoint: None,
        sock: None,
        xdg_runtime_dir: Some("/run/user/1000".into()),
    }
}

fn args() -> Args {
    Args {
        out_dir: Some("/var/lib/heidi/out".into()),
        seal_key: Some("/etc/heidi/seal.key".into()),
        ..Args::default()
    }
}

fn file(text: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| err("file", e.to_string()))
}

#[test]
fn no_arguments_gives_working_defaults() {
    let c = resolve(&args(), &env(), FileConfig::default()).unwrap();
    assert_eq!(c.socket_path, Path::new("/run/user/1000/heidi-kernel.sock"));
    assert_eq!(c.socket_mode, 0o600);
    assert_eq!(c.http_addr, Some("127.0.0.1:8080".parse().unwrap()));
    assert_eq!(c.limits, Limits::default());
    assert_eq!(c.limits.max_connections, 1024);
    assert_eq!(c.journal.seal_every_lines, 1000);
    assert_eq!(c.journal.segment_max_bytes, 64 << 20);
    assert_eq!(
        (
            c.journal.segment_max_age,
            c.journal.retain_segments,
            c.journal.retain_age
        ),
        (None, None, None)
    );
}

#[test]
fn segment_settings_are_read_and_bounded() {
    let text = "[journal]\nsegment_max_bytes = 4096\nsegment_max_age_s = 60\n\
                retain_segments = 3\nretain_days = 2\n";
    let c = resolve(&args(), &env(), file(text).unwrap()).unwrap();
    assert_eq!(c.journal.segment_max_bytes, 4096);
    assert_eq!(c.journal.segment_max_age, Some(Duration::from_secs(60)));
    assert_eq!(c.journal.retain_segments, Some(3));
    assert_eq!(c.journal.retain_age, Some(Duration::from_secs(2 * 86_400)));
    for (text, field) in [
        (
            "[journal]\nsegment_max_bytes = 1023\n",
            "journal.segment_max_bytes",
        ),
        ("[journal]\nretain_days = 36501\n", "journal.retain_days"),
    ] {
        let e = resolve(&args(), &env(), file(text).unwrap()).unwrap_err();
        assert_eq!(e.field, field);
    }
}

#[test]
fn flags_beat_environment_beats_file() {
    let f = file("[socket]\npath = \"/file.sock\"\n[http]\nport = 9000\n").unwrap();
    let c = resolve(&args(), &env(), f).unwrap();
    assert_eq!(c.socket_path, Path::new("/file.sock"));
    assert_eq!(c.http_addr.unwrap().port(), 9000);

    let mut e = env();
    e.sock = Some("/env.sock".into());
    let f = file("[socket]\npath = \"/file.sock\"\n[http]\nport = 9000\n").unwrap();
    let c = resolve(&args(), &e, f).unwrap();
    assert_eq!(c.socket_path, Path::new("/env.sock"));

    let a = Args {
        socket: Some("/flag.sock".into()),
        port: Some(7000),
        ..args()
    };
    let f = file("[socket]\npath = \"/file.sock\"\n[http]\nport = 9000\n").unwrap();
    let c = resolve(&a, &e, f).unwrap();
    assert_eq!(c.socket_path, Path::new("/flag.sock"));
    assert_eq!(c.http_addr.unwrap().port(), 7000);
}

#[test]
fn errors_name_the_field() {
    let cases = [
        ("[limits]\nmax_connections = 0\n", "limits.max_connections"),
        (
            "[limits]\nrequest_max_bytes = 10000000\n",
            "limits.request_max_bytes",
        ),
        ("[limits]\nidle_timeout_ms = 1\n", "limits.idle_timeout_ms"),
        ("[socket]\nmode = \"0777\"\n", "socket.mode"),
        ("[socket]\npath = \"relative.sock\"\n", "socket.path"),
        ("[journal]\nrun_id = \"has space\"\n", "journal.run_id"),
        (
            "[journal]\nseal_every_lines = 0\n",
            "journal.seal_every_lines",
        ),
        ("[http]\nbind = \"0.0.0.0\"\n", "http.bind"),
        ("[http]\ntoken = \"short\"\n", "http.token"),
        ("[capacity]\nlimiter_slots = 0\n", "capacity.limiter_slots"),
        (
            "[capacity]\nheld_permits = 99999999\n",
            "capacity.held_permits",
        ),
        ("[runtime]\nworkers = 0\n", "runtime.workers"),
        ("[runtime]\nworkers = 1025\n", "runtime.workers"),
        ("[log]\naudit_interval_ms = 99\n", "log.audit_interval_ms"),
        (
            "[log]\naudit_interval_ms = 3600001\n",
            "log.audit_interval_ms",
        ),
        ("[authorization]\nadmin_uids = [0]\n", "authorization"),
    ];
    for (text, field) in cases {
        let e = resolve(&args(), &env(), file(text).unwrap()).unwrap_err();
        assert_eq!(e.field, field, "{text}");
        assert!(e.to_string().contains(field));
    }
}

#[test]
fn workers_leave_the_clients_a_cpu_and_can_be_set() {
    assert_eq!(
        [0, 1, 2, 3, 16].map(default_workers),
        [1, 1, 1, 2, 15],
        "CPUs minus one, at least one"
    );
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let c = resolve(&args(), &env(), FileConfig::default()).unwrap();
    assert_eq!(c.workers, default_workers(cpus));
    let c = resolve(&args(), &env(), file("[runtime]\nworkers = 3\n").unwrap()).unwrap();
    assert_eq!(c.workers, 3);
    let flag = Args {
        workers: Some(WORKERS_MAX),
        ..args()
    };
    let c = resolve(&flag, &env(), file("[runtime]\nworkers = 3\n").unwrap()).unwrap();
    assert_eq!(
        c.workers, WORKERS_MAX as usize,
        "the flag wins over the file"
    );
}

#[test]
fn unknown_keys_and_wrong_types_are_refused() {
    let e = file("[limits]\nmax_conections = 5\n").unwrap_err();
    assert!(e.reason.contains("max_conections"), "{}", e.reason);
    let e = file("[http]\nport = \"eighty\"\n").unwrap_err();
    assert!(e.reason.contains("port"), "{}", e.reason);
}

#[test]
fn non_loopback_http_needs_the_flag_and_a_token() {
    let wide = Args {
        http_bind: Some("0.0.0.0".parse().unwrap()),
        ..args()
    };
    assert_eq!(
        resolve(&wide, &env(), FileConfig::default())
            .unwrap_err()
            .field,
        "http.bind"
    );
    let flagged = Args {
        allow_non_loopback: true,
        ..wide
    };
    assert_eq!(
        resolve(&flagged, &env(), FileConfig::default())
            .unwrap_err()
            .field,
        "http.token"
    );
    let with_token = Args {
        http_token: Some("0123456789abcdef0123".into()),
        ..flagged
    };
    let c = resolve(&with_token, &env(), FileConfig::default()).unwrap();
    assert_eq!(c.http_addr.unwrap().ip().to_string(), "0.0.0.0");
}

#[test]
fn seal_key_inside_out_dir_is_refused() {
    let a = Args {
        seal_key: Some("/var/lib/heidi/out/seal.key".into()),
        ..args()
    };
    assert_eq!(
        resolve(&a, &env(), FileConfig::default())
            .unwrap_err()
            .field,
        "journal.seal_key"
    );
}

#[test]
fn no_http_turns_it_off() {
    let a = Args {
        no_http: true,
        ..args()
    };
    assert_eq!(
        resolve(&a, &env(), FileConfig::default())
            .unwrap()
            .http_addr,
        None
    );
}

#[test]
fn the_example_in_daemon_md_is_valid() {
    let doc = include_str!("../../../../docs/DAEMON.md");
    let start = doc.find("```toml\n").expect("DAEMON.md has a TOML example") + 8;
    let text = &doc[start..start + doc[start..].find("```").unwrap()];
    let c = resolve(&args(), &env(), file(text).unwrap()).unwrap();
    assert_eq!(c.socket_mode, 0o660);
    assert_eq!(c.limits.max_connections, 2048);
    assert_eq!(
        c.policy
            .limits()
            .get(heidi_core::limit::Operation::AiGenerate)
            .capacity_tokens(),
        120
    );
}

fn pipeline_config(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let vars = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    resolve_with(&args(), &env(), &vars, file(text)?)
}

#[test]
fn pipeline_settings_environment_beats_file_and_stages_get_their_limits() {
    let c = pipeline_config(
        "[pipeline]\nrounds = 5\nmode = \"full\"\n[pipeline.stages.train]\ncommand = [\"bash\", \"t.sh\"]\ntimeout_s = 9\naddress_space_mb = 256\nopen_files = 64\ncpu_seconds = 30\nprocesses = 8\ncapture_bytes = 2048\n",
        &[("ROUNDS", "7")],
    )
    .unwrap();
    let p = &c.pipeline;
    assert_eq!(p.settings.rounds, 7, "the variable wins");
    assert_eq!(p.settings.mode, heidi_core::pipeline::Mode::Full);
    let train = heidi_core::pipeline::Stage::Train;
    assert_eq!(p.settings.commands[train.index()].program, "bash");
    assert_eq!(
        p.settings.timeouts.train,
        heidi_core::Duration::from_secs(9)
    );
    let o = p.supervise[train.index()];
    assert_eq!(o.limits.address_space_bytes, Some(256 << 20));
    assert_eq!(
        (
            o.limits.open_files,
            o.limits.cpu_seconds,
            o.limits.processes
        ),
        (Some(64), Some(30), Some(8))
    );
    assert_eq!(o.capture_max_bytes, 2048);
    let other = p.supervise[heidi_core::pipeline::Stage::Eval.index()];
    assert_eq!(other, crate::runner::SuperviseOptions::default());
}

#[test]
fn allow_uncontained_is_off_by_default_and_applies_to_every_stage() {
    let off = pipeline_config("", &[]).unwrap();
    assert!(off.pipeline.supervise.iter().all(|o| !o.allow_uncontained));
    let text = "[pipeline]\nallow_uncontained = true\n[pipeline.stages.eval]\nprocesses = 4\n";
    let on = pipeline_config(text, &[]).unwrap();
    assert!(on.pipeline.supervise.iter().all(|o| o.allow_uncontained));
    let bad = pipeline_config("[pipeline]\nallow_uncontained = \"yes\"\n", &[]);
    assert!(bad.is_err());
}

#[test]
fn pipeline_errors_name_the_field() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 9] = [
        ("", &[("ROUNDS", "0")], "ROUNDS"),
        ("[pipeline]\nmode = \"fast\"", &[], "PIPELINE_MODE"),
        ("", &[("MAX_CPU_PCT", "101")], "MAX_CPU_PCT"),
        (
            "[pipeline.stages.nope]\ntimeout_s = 1",
            &[],
            "pipeline.stages.nope",
        ),
        (
            "[pipeline.stages.eval]\ncommand = []",
            &[],
            "pipeline.stages.eval.command",
        ),
        (
            "[pipeline.stages.eval]\ntimeout_s = 0",
            &[],
            "pipeline.stages.eval.timeout_s",
        ),
        (
            "[pipeline.stages.eval]\ntimeout_s = 604801",
            &[],
            "pipeline.stages.eval.timeout_s",
        ),
        (
            "[pipeline.stages.eval]\nprocesses = 0",
            &[],
            "pipeline.stages.eval.processes",
        ),
        (
            "[pipeline.stages.eval]\ncapture_bytes = 1023",
            &[],
            "pipeline.stages.eval.capture_bytes",
        ),
    ];
    for (text, vars, field) in cases {
        let e = pipeline_config(text, vars).unwrap_err().to_string();
        assert!(e.contains(field), "{text:?} {vars:?}: {e}");
    }
    let huge = pipeline_config(
        "[pipeline.stages.eval]\naddress_space_mb = 18446744073709551615",
        &[],
    );
    assert!(huge.unwrap_err().to_string().contains("address_space_mb"));
    assert!(pipeline_config("[pipeline.stages.eval]\ncapture_bytes = 16777216", &[]).is_ok());
    for key in ["mock_stage_ms", "start_gap_ms"] {
        let over = pipeline_config(&format!("[pipeline]\n{key} = 60001"), &[]);
        assert!(over.unwrap_err().to_string().contains(key));
        let c = pipeline_config(&format!("[pipeline]\n{key} = 0"), &[]).unwrap();
        assert!(c.pipeline.mock_stage.is_zero() || c.pipeline.settings.start_gap.as_micros() == 0);
    }
    assert!(pipeline_config("[pipeline.stages.eval]\ntimeout_s = 604800", &[]).is_ok());
}

#[test]
fn simulated_stages_have_no_start_gap_unless_one_is_set() {
    let gap = |text: &str, vars: &[(&str, &str)]| {
        let c = pipeline_config(text, vars).unwrap();
        c.pipeline.settings.start_gap.as_millis()
    };
    assert_eq!(gap("", &[]), 100, "real stages keep the default gap");
    assert_eq!(gap("", &[("HEIDI_MOCK_SUBPROCESSES", "1")]), 0);
    assert_eq!(gap("[pipeline]\nmock = true", &[]), 0);
    let set = "[pipeline]\nstart_gap_ms = 40";
    assert_eq!(
        gap(set, &[("HEIDI_MOCK_SUBPROCESSES", "1")]),
        40,
        "a set gap applies"
    );
    assert_eq!(gap(set, &[]), 40);
}

#[test]
fn readiness_checks_come_from_the_policy_section() {
    let f = file("[policy.readiness]\nchecks = [\"db\", \"cache\"]\n").unwrap();
    let c = resolve(&args(), &env(), f).unwrap();
    assert_eq!(c.policy.readiness_checks(), ["db", "cache"]);
    let f = file("[policy.readiness]\nchecks = [\"db\", \"db\"]\n").unwrap();
    let e = resolve(&args(), &env(), f).unwrap_err();
    assert_eq!(e.field, "policy.readiness.checks[1]");
}

#[test]
fn dash_h_is_the_host_and_accepts_localhost() {
    use clap::Parser;
    let a = Args::try_parse_from(["heidid", "-h", "localhost", "-p", "8181", "-d"]).unwrap();
    assert_eq!(a.http_bind, Some("127.0.0.1".parse().unwrap()));
    assert!(a.daemon);
    let a = Args::try_parse_from(["heidid", "--host", "::1"]).unwrap();
    assert_eq!(a.http_bind, Some("::1".parse().unwrap()));
    assert!(Args::try_parse_from(["heidid", "-h", "example.com"]).is_err());
    let help = Args::try_parse_from(["heidid", "--help"]).unwrap_err();
    assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
}

/// Sizes bounded by another piece's own limit (the journal's, the core's largest request and
/// reply) are refused here at one past it, naming the field.
#[test]
fn sizes_are_bounded_by_the_limits_of_the_pieces_that_take_them() {
    use heidi_core::proto::{REQUEST_LIMIT_MAX_BYTES, RESPONSE_LIMIT_MAX_BYTES};
    use heidi_store::JournalConfig;
    type Case = (&'static str, usize, fn(&Config) -> usize);
    let cases: [Case; 4] = [
        (
            "journal.group_commit_max_batch",
            JournalConfig::MAX_BATCH_LIMIT,
            |c| c.journal.group_commit_max_batch,
        ),
        (
            "journal.queue_capacity",
            JournalConfig::QUEUE_CAPACITY_LIMIT,
            |c| c.journal.queue_capacity,
        ),
        ("limits.request_max_bytes", REQUEST_LIMIT_MAX_BYTES, |c| {
            c.limits.request_max_bytes
        }),
        ("limits.response_max_bytes", RESPONSE_LIMIT_MAX_BYTES, |c| {
            c.limits.response_max_bytes
        }),
    ];
    for (field, max, get) in cases {
        let (section, name) = field.split_once('.').unwrap();
        let text = |n: usize| format!("[{section}]\n{name} = {n}\n");
        let c = resolve(&args(), &env(), file(&text(max)).unwrap()).unwrap();
        assert_eq!(get(&c), max, "{field}");
        let e = resolve(&args(), &env(), file(&text(max + 1)).unwrap()).unwrap_err();
        assert_eq!(e.field, field);
        assert!(e.reason.contains(&format!("..={max}")), "{}", e.reason);
    }
}
