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
    ];
    for (text, field) in cases {
        let e = resolve(&args(), &env(), file(text).unwrap()).unwrap_err();
        assert_eq!(e.field, field, "{text}");
        assert!(e.to_string().contains(field));
    }
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
