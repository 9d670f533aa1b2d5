//! Where the daemon listens and clients connect: socket-path precedence (docs/DAEMON.md) and
//! endpoint strings (`unix:///path`, `http://127.0.0.1:8080`, `null`) with strict loopback
//! validation by parsed host.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The socket path used when nothing else names one and `XDG_RUNTIME_DIR` is unset.
pub const FALLBACK_SOCKET: &str = "/tmp/heidi-kernel.sock";

/// The environment a resolution reads; a struct so tests need not touch the process env.
#[derive(Clone, Debug, Default)]
pub struct EndpointEnv {
    /// `HEIDI_KERNEL_ENDPOINT`.
    pub endpoint: Option<String>,
    /// `HEIDI_KERNEL_SOCK`.
    pub sock: Option<String>,
    /// `XDG_RUNTIME_DIR`.
    pub xdg_runtime_dir: Option<String>,
}

impl EndpointEnv {
    /// Reads the three variables from the process environment (empty counts as unset).
    pub fn from_process() -> EndpointEnv {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        EndpointEnv {
            endpoint: var("HEIDI_KERNEL_ENDPOINT"),
            sock: var("HEIDI_KERNEL_SOCK"),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR"),
        }
    }
}

/// The socket path: `flag` > `HEIDI_KERNEL_ENDPOINT` (when `unix://…`) > `HEIDI_KERNEL_SOCK` >
/// `$XDG_RUNTIME_DIR/heidi-kernel.sock` > [`FALLBACK_SOCKET`].
pub fn socket_path(flag: Option<&Path>, env: &EndpointEnv) -> PathBuf {
    if let Some(path) = flag {
        return path.to_path_buf();
    }
    if let Some(path) = env
        .endpoint
        .as_deref()
        .and_then(|e| e.strip_prefix("unix://"))
    {
        return PathBuf::from(path);
    }
    if let Some(sock) = &env.sock {
        return PathBuf::from(sock.strip_prefix("unix://").unwrap_or(sock));
    }
    if let Some(dir) = &env.xdg_runtime_dir {
        return Path::new(dir).join("heidi-kernel.sock");
    }
    PathBuf::from(FALLBACK_SOCKET)
}

/// Where a client sends its calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix stream socket speaking framed JSON.
    Unix(PathBuf),
    /// The daemon's loopback HTTP listener (`POST /api/call`); the URL's host is loopback.
    Http(url::Url),
    /// No daemon: every call succeeds with an empty payload (tests, a disabled bridge).
    Null,
}

/// Why an endpoint string was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndpointError {
    /// Not `unix://`, `http://`, an absolute path or `null`.
    UnknownScheme(String),
    /// A Unix socket path that is not absolute.
    RelativeSocketPath(String),
    /// The URL did not parse.
    BadUrl(String),
    /// The URL's host is not loopback (`localhost`, `127.0.0.0/8`, `::1`).
    NotLoopback(String),
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointError::UnknownScheme(s) => {
                write!(
                    f,
                    "endpoint {s:?}: expected unix:///path, http://127.0.0.1:PORT or null"
                )
            }
            EndpointError::RelativeSocketPath(s) => {
                write!(f, "endpoint {s:?}: the socket path must be absolute")
            }
            EndpointError::BadUrl(s) => write!(f, "endpoint {s:?}: not a valid URL"),
            EndpointError::NotLoopback(s) => {
                write!(
                    f,
                    "endpoint {s:?}: HTTP endpoints must be loopback (localhost, 127.0.0.0/8, ::1)"
                )
            }
        }
    }
}

impl std::error::Error for EndpointError {}

impl Endpoint {
    /// Parses `unix:///abs/path`, `/abs/path`, `http://HOST:PORT[/]` (host checked after
    /// parsing, so `http://localhost.evil.com` and `http://127.0.0.1@evil.com` are refused)
    /// or `null`.
    pub fn parse(s: &str) -> Result<Endpoint, EndpointError> {
        if s == "null" {
            return Ok(Endpoint::Null);
        }
        if let Some(path) = s
            .strip_prefix("unix://")
            .or(s.starts_with('/').then_some(s))
        {
            if !path.starts_with('/') {
                return Err(EndpointError::RelativeSocketPath(s.to_owned()));
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        if s.starts_with("http://") {
            let url = url::Url::parse(s).map_err(|_| EndpointError::BadUrl(s.to_owned()))?;
            if !url.username().is_empty() || url.password().is_some() || !is_loopback_host(&url) {
                return Err(EndpointError::NotLoopback(s.to_owned()));
            }
            return Ok(Endpoint::Http(url));
        }
        Err(EndpointError::UnknownScheme(s.to_owned()))
    }

    /// The endpoint as configuration and telemetry spell it.
    pub fn display(&self) -> String {
        match self {
            Endpoint::Unix(path) => format!("unix://{}", path.display()),
            Endpoint::Http(url) => url.to_string(),
            Endpoint::Null => "null".to_owned(),
        }
    }
}

/// Whether a parsed URL's host is loopback: the name `localhost` exactly, or a loopback IP.
fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(endpoint: Option<&str>, sock: Option<&str>, xdg: Option<&str>) -> EndpointEnv {
        EndpointEnv {
            endpoint: endpoint.map(str::to_owned),
            sock: sock.map(str::to_owned),
            xdg_runtime_dir: xdg.map(str::to_owned),
        }
    }

    #[test]
    fn socket_precedence() {
        let all = env(Some("unix:///e.sock"), Some("/s.sock"), Some("/run/u"));
        assert_eq!(
            socket_path(Some(Path::new("/f.sock")), &all),
            Path::new("/f.sock")
        );
        assert_eq!(socket_path(None, &all), Path::new("/e.sock"));
        let http = env(
            Some("http://127.0.0.1:8080"),
            Some("/s.sock"),
            Some("/run/u"),
        );
        assert_eq!(socket_path(None, &http), Path::new("/s.sock"));
        let xdg = env(None, None, Some("/run/u"));
        assert_eq!(
            socket_path(None, &xdg),
            Path::new("/run/u/heidi-kernel.sock")
        );
        assert_eq!(
            socket_path(None, &env(None, None, None)),
            Path::new(FALLBACK_SOCKET)
        );
    }

    #[test]
    fn loopback_is_checked_on_the_parsed_host() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:80/",
            "http://127.9.9.9",
        ] {
            assert!(matches!(Endpoint::parse(ok), Ok(Endpoint::Http(_))), "{ok}");
        }
        for bad in [
            "http://localhost.evil.com",
            "http://localhost.evil.com:8080",
            "http://127.0.0.1.evil.com",
            "http://127.0.0.1@evil.com",
            "http://evil.com#@127.0.0.1",
            "http://10.0.0.1:8080",
            "http://[::2]:80",
        ] {
            assert!(
                matches!(Endpoint::parse(bad), Err(EndpointError::NotLoopback(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            Endpoint::parse("https://127.0.0.1"),
            Err(EndpointError::UnknownScheme(_))
        ));
    }

    #[test]
    fn unix_and_null() {
        assert_eq!(
            Endpoint::parse("unix:///tmp/x.sock"),
            Ok(Endpoint::Unix("/tmp/x.sock".into()))
        );
        assert_eq!(
            Endpoint::parse("/tmp/x.sock"),
            Ok(Endpoint::Unix("/tmp/x.sock".into()))
        );
        assert_eq!(Endpoint::parse("null"), Ok(Endpoint::Null));
        assert!(matches!(
            Endpoint::parse("unix://rel.sock"),
            Err(EndpointError::RelativeSocketPath(_))
        ));
    }
}
