//! gRPC test support: a throwaway PKI (rcgen), a reference upstream on an ephemeral loopback
//! port, clients over plain text or TLS, and transaction builders.

use heidi_grpc::proto::upstream_client::UpstreamClient;
use heidi_grpc::proto::{Query, Transaction, TransactionBatch};
use heidi_grpc::tls::{ClientTlsFiles, IdentityFiles, ServerTlsFiles};
use heidi_grpc::upstream::{ReferenceUpstream, Running, Stats, UpstreamConfig};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint, ServerTlsConfig};

/// The name in the server certificate (connect to 127.0.0.1 and check this name).
pub const SERVER_NAME: &str = "localhost";

/// A CA, a server certificate for [`SERVER_NAME`], a client certificate signed by the CA, and a
/// client certificate signed by ANOTHER CA (a client the server must refuse), as PEM files in
/// a temp dir.
pub struct TestPki {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub server: IdentityFiles,
    pub client: IdentityFiles,
    pub rogue_client: IdentityFiles,
}

fn new_ca(name: &str) -> (rcgen::Certificate, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    (cert, Issuer::new(params, key))
}

fn leaf(dir: &Path, name: &str, sans: &[&str], issuer: &Issuer<'static, KeyPair>) -> IdentityFiles {
    let key = KeyPair::generate().unwrap();
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(sans).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.signed_by(&key, issuer).unwrap();
    let files = IdentityFiles {
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    };
    std::fs::write(&files.cert, cert.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    files
}

impl TestPki {
    pub fn new() -> TestPki {
        let dir = tempfile::tempdir().unwrap();
        let (ca_cert, issuer) = new_ca("heidi test CA");
        let ca = dir.path().join("ca.crt");
        std::fs::write(&ca, ca_cert.pem()).unwrap();
        let server = leaf(dir.path(), "server", &[SERVER_NAME, "127.0.0.1"], &issuer);
        let client = leaf(dir.path(), "client", &["client"], &issuer);
        let (_, other) = new_ca("some other CA");
        let rogue_client = leaf(dir.path(), "rogue", &["client"], &other);
        TestPki {
            dir,
            ca,
            server,
            client,
            rogue_client,
        }
    }

    /// The server's TLS; with `mtls`, client certificates signed by the CA are required.
    pub fn server_tls(&self, mtls: bool) -> ServerTlsConfig {
        heidi_grpc::tls::server_config(&self.server_files(mtls)).unwrap()
    }

    /// The server's files (for CLI flags and for `tls::server_config`).
    pub fn server_files(&self, mtls: bool) -> ServerTlsFiles {
        ServerTlsFiles {
            identity: self.server.clone(),
            client_ca: mtls.then(|| self.ca.clone()),
        }
    }

    /// A client's files: trusts the CA, checks [`SERVER_NAME`], presents `identity`.
    pub fn client_files(&self, identity: Option<&IdentityFiles>) -> ClientTlsFiles {
        ClientTlsFiles {
            ca: self.ca.clone(),
            identity: identity.cloned(),
            domain: Some(SERVER_NAME.to_owned()),
        }
    }

    /// A client's TLS: trusts the CA, checks [`SERVER_NAME`], presents `identity`.
    pub fn client_tls(&self, identity: Option<&IdentityFiles>) -> ClientTlsConfig {
        heidi_grpc::tls::client_config(&self.client_files(identity)).unwrap()
    }
}

/// Starts a reference upstream on 127.0.0.1 with an ephemeral port (TLS when given).
pub async fn start_upstream(config: UpstreamConfig, tls: Option<ServerTlsConfig>) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    ReferenceUpstream::new(config)
        .unwrap()
        .spawn(listener, tls)
        .unwrap()
}

/// A plain-text client of the upstream at `running` (connects lazily, bounded timeouts).
pub fn upstream_client(running: &Running) -> UpstreamClient<Channel> {
    UpstreamClient::new(channel(&running.endpoint(), None))
}

/// A channel to `uri` (`http://…` or, with `tls`, `https://…`), with a 5 s connect timeout
/// and a 10 s per-call timeout so that no test hangs.
pub fn channel(uri: &str, tls: Option<ClientTlsConfig>) -> Channel {
    let mut endpoint = Endpoint::from_shared(uri.to_owned())
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10));
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).unwrap();
    }
    endpoint.connect_lazy()
}

/// A transaction with key `key` and one addition.
pub fn txn(key: &str) -> Transaction {
    Transaction {
        idempotency_key: key.to_owned(),
        additions: vec![heidi_grpc::proto::Triple {
            subject: format!("urn:{key}"),
            predicate: "urn:p".to_owned(),
            object: "1".to_owned(),
            graph: String::new(),
        }],
        actor: "test".to_owned(),
        ..Default::default()
    }
}

/// A batch of [`txn`]s.
pub fn batch(keys: &[&str]) -> TransactionBatch {
    TransactionBatch {
        transactions: keys.iter().map(|k| txn(k)).collect(),
    }
}

/// The counters through the `stats` query (what an outside process sees).
pub async fn query_stats(client: &mut UpstreamClient<Channel>) -> Stats {
    let reply = client
        .query(Query {
            kind: 0,
            text: "stats".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(reply.success, "{}", reply.error);
    let v: serde_json::Value = serde_json::from_slice(&reply.result).unwrap();
    serde_json::from_value(v).unwrap()
}

/// Polls `check` until it returns true, at most [`super::DEADLINE`]; panics with `what` after.
pub async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < super::DEADLINE,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A `heidi upstream` process on an ephemeral loopback port; killed on drop.
pub struct UpstreamProcess {
    pub child: Option<std::process::Child>,
    pub addr: std::net::SocketAddr,
}

impl UpstreamProcess {
    /// Starts `heidi upstream --listen 127.0.0.1:PORT ARGS…`; does not wait for it to listen.
    pub fn spawn(args: &[&str]) -> UpstreamProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = super::heidi_bare()
            .arg("upstream")
            .arg("--listen")
            .arg(addr.to_string())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        UpstreamProcess {
            child: Some(child),
            addr,
        }
    }

    /// Waits (bounded) until the port accepts connections.
    pub async fn wait_listening(&self) {
        let addr = self.addr;
        wait_for("heidi upstream to listen", || async move {
            tokio::net::TcpStream::connect(addr).await.is_ok()
        })
        .await;
    }

    /// SIGTERM, then waits (bounded) for the exit; returns (exit code, stdout, stderr).
    pub fn stop(mut self) -> (i32, String, String) {
        let child = self.child.take().unwrap();
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        wait_output(child)
    }
}

/// Waits (bounded by [`super::DEADLINE`]) for a child to exit; kills it past the deadline.
pub fn wait_output(mut child: std::process::Child) -> (i32, String, String) {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > super::DEADLINE {
            let _ = child.kill();
            panic!("process did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Drop for UpstreamProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
