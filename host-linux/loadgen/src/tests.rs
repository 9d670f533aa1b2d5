//! The load generator against in-test servers: the echo peer (whole, split and error
//! replies) and servers that misbehave (close early, answer unasked).

use super::*;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

/// A listener on a fresh socket; its directory lives as long as the returned guard.
fn listener() -> (tempfile::TempDir, PathBuf, UnixListener) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let listener = UnixListener::bind(&path).unwrap();
    (dir, path, listener)
}

/// The echo peer on its own thread and runtime.
fn spawn_echo(listener: UnixListener) {
    std::thread::spawn(move || echo::serve_blocking(listener));
}

/// Serves `connections` connections with `handler`, each on its own thread.
fn serve_n(listener: UnixListener, connections: usize, handler: fn(UnixStream)) {
    std::thread::spawn(move || {
        for _ in 0..connections {
            let (stream, _) = listener.accept().unwrap();
            std::thread::spawn(move || handler(stream));
        }
    });
}

fn config(socket: PathBuf, connections: usize, pipeline: usize, stop: Stop) -> LoadConfig {
    LoadConfig {
        socket,
        connections,
        pipeline,
        stop,
        rate_per_s: None,
        body: BenchMethod::Check.body().to_owned(),
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn every_request_is_answered_by_the_echo_peer() {
    let (_dir, path, listener) = listener();
    spawn_echo(listener);
    // 1003 is not a multiple of 4: the remainder is spread over the first connections.
    let report = block_on(run(&config(path, 4, 16, Stop::Requests(1003)))).unwrap();
    assert_eq!(report.summary.requests, 1003);
    assert_eq!(report.summary.errors, 0);
    assert_eq!(report.latencies.count(), 1003);
    assert!(report.from_send.is_none());
    assert!(report.summary.p50_ns > 0 && report.summary.p50_ns <= report.summary.p99_ns);
}

#[test]
fn requests_the_socket_cannot_take_at_once_are_sent_as_it_drains() {
    let (_dir, path, listener) = listener();
    // A server that answers the first request, then reads nothing for a while, then echoes:
    // meanwhile the client has far more queued (1024 × 4 KiB) than a socket buffer holds, so
    // its writes stop short.
    serve_n(listener, 1, |mut stream| {
        echo_one(&mut stream);
        std::thread::sleep(Duration::from_millis(200));
        echo_until_closed(&mut stream);
    });
    let mut config = config(path, 1, 1024, Stop::Requests(3000));
    config.body = format!(r#"{{"method":"PING","pad":"{}"}}"#, "x".repeat(4000));
    let bounded = async { tokio::time::timeout(Duration::from_secs(20), run(&config)).await };
    let report = block_on(bounded).expect("finishes").unwrap();
    assert_eq!(report.summary.requests, 3000);
    assert_eq!(report.summary.errors, 0);
}

#[test]
fn frames_split_into_single_bytes_are_reassembled() {
    let (_dir, path, listener) = listener();
    std::thread::spawn(move || {
        block_on(async {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::UnixListener::from_std(listener).unwrap();
            let mut conns = Vec::new();
            for _ in 0..2 {
                let (stream, _) = listener.accept().await.unwrap();
                conns.push(tokio::spawn(echo::echo_connection(stream, 1)));
            }
            for c in conns {
                let _ = c.await;
            }
        })
    });
    let report = block_on(run(&config(path, 2, 3, Stop::Requests(40)))).unwrap();
    assert_eq!((report.summary.requests, report.summary.errors), (40, 0));
}

#[test]
fn error_replies_are_counted_and_the_first_is_kept() {
    let (_dir, path, listener) = listener();
    spawn_echo(listener);
    let mut c = config(path, 2, 2, Stop::Requests(10));
    c.body = r#"{"error":true,"code":"OVERLOADED","message":"busy"}"#.into();
    let report = block_on(run(&c)).unwrap();
    assert_eq!((report.summary.requests, report.summary.errors), (10, 10));
    assert!(report.first_error.unwrap().contains("OVERLOADED"));
}

#[test]
fn open_loop_sends_at_most_the_scheduled_requests() {
    let (_dir, path, listener) = listener();
    spawn_echo(listener);
    let mut c = config(path, 2, 4, Stop::After(Duration::from_millis(200)));
    c.rate_per_s = Some(1000);
    let report = block_on(run(&c)).unwrap();
    // 1000/s for 0.2 s: 200 scheduled sends (100 per connection), never more.
    assert!(
        report.summary.requests <= 200,
        "{}",
        report.summary.requests
    );
    // Stopping by count, the open loop sends exactly that many.
    c.stop = Stop::Requests(50);
    c.rate_per_s = Some(5000);
    assert_eq!(block_on(run(&c)).unwrap().summary.requests, 50);
}

/// Reads one whole request frame (length prefix and body) and echoes it.
fn echo_one(s: &mut UnixStream) {
    let mut prefix = [0u8; 4];
    s.read_exact(&mut prefix).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
    s.read_exact(&mut body).unwrap();
    s.write_all(&[&prefix[..], &body].concat()).unwrap();
}

/// Echoes every byte until the client closes.
fn echo_until_closed(s: &mut UnixStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => s.write_all(&buf[..n]).unwrap(),
        }
    }
}

#[test]
fn a_server_closing_early_fails_the_run() {
    let (_dir, path, listener) = listener();
    // Closing during the first round trip, before the clock starts …
    serve_n(listener, 1, |mut s| {
        let mut b = [0u8; 256];
        let _ = s.read(&mut b);
    });
    let err = block_on(run(&config(path, 1, 1, Stop::Requests(5)))).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
    // … and with measured requests in flight.
    let (_dir, path, listener) = self::listener();
    serve_n(listener, 1, |mut s| {
        echo_one(&mut s);
        let mut b = [0u8; 256];
        let _ = s.read(&mut b);
    });
    let err = block_on(run(&config(path, 1, 1, Stop::Requests(5)))).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
}

#[test]
fn the_first_round_trip_is_not_measured() {
    let (_dir, path, listener) = listener();
    // A server whose first answer takes 400 ms (an accept backlog, a cold cache), then echoes.
    serve_n(listener, 1, |mut s| {
        std::thread::sleep(Duration::from_millis(400));
        echo_one(&mut s);
        echo_until_closed(&mut s);
    });
    let mut c = config(path, 1, 1, Stop::Requests(20));
    c.rate_per_s = Some(1000);
    let report = block_on(run(&c)).unwrap();
    assert_eq!(report.summary.requests, 20);
    // Measured, the slow answer would have made every one of the 20 scheduled sends late.
    assert!(
        report.latencies.max_ns() < 200_000_000,
        "{}",
        report.latencies.max_ns()
    );
}

#[test]
fn a_reply_nobody_asked_for_fails_the_run() {
    /// Answers one request twice (in one write, so the client reads both at once).
    fn answer_twice(s: &mut UnixStream) {
        let mut b = [0u8; 256];
        let n = s.read(&mut b).unwrap();
        let _ = s.write_all(&[&b[..n], &b[..n]].concat());
    }
    for measured in [false, true] {
        let (_dir, path, listener) = listener();
        let handler: fn(UnixStream) = if measured {
            |mut s| {
                echo_one(&mut s);
                answer_twice(&mut s);
                let _ = s.read(&mut [0u8; 256]);
            }
        } else {
            |mut s| {
                answer_twice(&mut s);
                let _ = s.read(&mut [0u8; 256]);
            }
        };
        serve_n(listener, 1, handler);
        let err = block_on(run(&config(path, 1, 1, Stop::Requests(1)))).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{measured}");
    }
}

#[test]
fn a_missing_socket_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        block_on(run(&config(
            dir.path().join("none"),
            1,
            1,
            Stop::Requests(1)
        )))
        .is_err()
    );
}

#[test]
fn limits_are_checked_before_connecting() {
    let path = PathBuf::from("/nonexistent/s.sock");
    let ok = config(
        path.clone(),
        load::CONNECTIONS_MAX,
        load::PIPELINE_MAX,
        Stop::Requests(1),
    );
    assert_eq!(ok.validate(), Ok(()));
    let bad = [
        config(path.clone(), 0, 1, Stop::Requests(1)),
        config(
            path.clone(),
            load::CONNECTIONS_MAX + 1,
            1,
            Stop::Requests(1),
        ),
        config(path.clone(), 1, 0, Stop::Requests(1)),
        config(path.clone(), 1, load::PIPELINE_MAX + 1, Stop::Requests(1)),
        config(path.clone(), 1, 1, Stop::Requests(0)),
        config(path.clone(), 1, 1, Stop::After(Duration::ZERO)),
        LoadConfig {
            rate_per_s: Some(0),
            ..config(path.clone(), 1, 1, Stop::Requests(1))
        },
        LoadConfig {
            body: String::new(),
            ..config(path, 1, 1, Stop::Requests(1))
        },
    ];
    for c in bad {
        assert!(c.validate().is_err(), "{c:?}");
        assert_eq!(
            block_on(run(&c)).unwrap_err().kind(),
            std::io::ErrorKind::InvalidInput
        );
    }
}
