//! [`ClientConfig`]: the seed's `HEIDI_KERNEL_*` variables, validated, with the names kept.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use heidi_core::retry::{PolicyError, RetryPolicy};

use crate::endpoint::{Endpoint, EndpointEnv, socket_path};
use heidi_common::Token;

/// How a [`Client`](super::Client) reaches the daemon and how hard it tries.
///
/// Build it with [`ClientConfig::from_env`], or as a struct literal from
/// [`ClientConfig::default`] (`ClientConfig { endpoint, ..ClientConfig::default() }`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// `HEIDI_KERNEL_ENABLED` (default true). False: every call goes to the null transport.
    pub enabled: bool,
    /// `HEIDI_KERNEL_REQUIRED` (default false): callers that need the daemon check
    /// [`Client::require`](super::Client::require) at start-up.
    pub required: bool,
    /// `HEIDI_KERNEL_ENDPOINT` (default: the socket path precedence of
    /// [`socket_path`](crate::endpoint::socket_path) as `unix://…`).
    pub endpoint: Endpoint,
    /// `HEIDI_KERNEL_TIMEOUT_MS` (default 5000, at least 1): bounds each attempt (connect,
    /// write and read together) and the wait for an in-flight slot.
    pub timeout_ms: u64,
    /// `HEIDI_KERNEL_MAX_INFLIGHT` (default 3, at least 1): attempts running at once.
    pub max_inflight: usize,
    /// `HEIDI_KERNEL_RETRY_ATTEMPTS` (default 2): retries after the first try, so a call makes
    /// at most `retry_attempts + 1` attempts.
    pub retry_attempts: u32,
    /// `HEIDI_KERNEL_RETRY_DELAY_MS` (default 100): the delay before the first retry; later
    /// delays double (see [`ClientConfig::retry_policy`]).
    pub retry_delay_ms: u64,
    /// `HEIDI_KERNEL_TOKEN` (default none): the bearer token sent as `Authorization: Bearer …`
    /// on every HTTP call (HTTP endpoints are loopback only, see
    /// [`Endpoint::parse`](crate::endpoint::Endpoint::parse)). Not used on the Unix socket,
    /// where the peer's credentials identify the caller. Never printed: `Debug` redacts it.
    pub token: Option<Token>,
}

/// A configuration variable with a value the client cannot use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable's name, e.g. `HEIDI_KERNEL_TIMEOUT_MS`.
    pub variable: &'static str,
    /// The value as given.
    pub value: String,
    /// What a valid value looks like.
    pub expected: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={:?}: expected {}",
            self.variable, self.value, self.expected
        )
    }
}

impl std::error::Error for ConfigError {}

/// `HEIDI_KERNEL_ENABLED`.
pub const ENV_ENABLED: &str = "HEIDI_KERNEL_ENABLED";
/// `HEIDI_KERNEL_REQUIRED`.
pub const ENV_REQUIRED: &str = "HEIDI_KERNEL_REQUIRED";
/// `HEIDI_KERNEL_ENDPOINT`.
pub const ENV_ENDPOINT: &str = "HEIDI_KERNEL_ENDPOINT";
/// `HEIDI_KERNEL_TIMEOUT_MS`.
pub const ENV_TIMEOUT_MS: &str = "HEIDI_KERNEL_TIMEOUT_MS";
/// `HEIDI_KERNEL_MAX_INFLIGHT`.
pub const ENV_MAX_INFLIGHT: &str = "HEIDI_KERNEL_MAX_INFLIGHT";
/// `HEIDI_KERNEL_RETRY_ATTEMPTS`.
pub const ENV_RETRY_ATTEMPTS: &str = "HEIDI_KERNEL_RETRY_ATTEMPTS";
/// `HEIDI_KERNEL_RETRY_DELAY_MS`.
pub const ENV_RETRY_DELAY_MS: &str = "HEIDI_KERNEL_RETRY_DELAY_MS";
/// `HEIDI_KERNEL_TOKEN`.
pub const ENV_TOKEN: &str = "HEIDI_KERNEL_TOKEN";

/// What a [`ConfigError`] shows instead of a secret's value.
const REDACTED: &str = "<redacted>";

/// Upper bound on `retry_attempts`: more retries than this only hide an outage.
pub const RETRY_ATTEMPTS_MAX: u32 = 10;
/// Upper bound on `timeout_ms` and `retry_delay_ms` (one hour).
pub const MILLIS_MAX: u64 = 3_600_000;
/// Upper bound on `max_inflight`.
pub const MAX_INFLIGHT_MAX: usize = 1024;

impl Default for ClientConfig {
    /// The seed's defaults, with the endpoint from the socket path precedence applied to an
    /// empty environment ([`FALLBACK_SOCKET`](crate::endpoint::FALLBACK_SOCKET)).
    fn default() -> ClientConfig {
        ClientConfig {
            enabled: true,
            required: false,
            endpoint: Endpoint::Unix(socket_path(None, &EndpointEnv::default())),
            timeout_ms: 5_000,
            max_inflight: 3,
            retry_attempts: 2,
            retry_delay_ms: 100,
            token: None,
        }
    }
}

impl ClientConfig {
    /// Reads and validates the `HEIDI_KERNEL_*` variables of the process (empty = unset).
    pub fn from_env() -> Result<ClientConfig, ConfigError> {
        let env = EndpointEnv::from_process();
        ClientConfig::from_lookup(|name| std::env::var(name).ok(), &env)
    }

    /// Reads and validates the variables through `lookup` (a test or the CLI may hide some);
    /// `env` gives the socket path precedence used when `HEIDI_KERNEL_ENDPOINT` is unset.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        env: &EndpointEnv,
    ) -> Result<ClientConfig, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let defaults = ClientConfig::default();
        let endpoint = match get(ENV_ENDPOINT) {
            Some(s) => Endpoint::parse(&s).map_err(|e| ConfigError {
                variable: ENV_ENDPOINT,
                value: s,
                expected: e.to_string(),
            })?,
            None => Endpoint::Unix(socket_path(None::<&Path>, env)),
        };
        let config = ClientConfig {
            enabled: parse_bool(ENV_ENABLED, get(ENV_ENABLED), defaults.enabled)?,
            required: parse_bool(ENV_REQUIRED, get(ENV_REQUIRED), defaults.required)?,
            endpoint,
            timeout_ms: parse_num(ENV_TIMEOUT_MS, get(ENV_TIMEOUT_MS), 1, MILLIS_MAX)?
                .unwrap_or(defaults.timeout_ms),
            max_inflight: parse_num(
                ENV_MAX_INFLIGHT,
                get(ENV_MAX_INFLIGHT),
                1,
                MAX_INFLIGHT_MAX as u64,
            )?
            .map_or(defaults.max_inflight, |n| n as usize),
            retry_attempts: parse_num(
                ENV_RETRY_ATTEMPTS,
                get(ENV_RETRY_ATTEMPTS),
                0,
                RETRY_ATTEMPTS_MAX.into(),
            )?
            .map_or(defaults.retry_attempts, |n| n as u32),
            retry_delay_ms: parse_num(ENV_RETRY_DELAY_MS, get(ENV_RETRY_DELAY_MS), 0, MILLIS_MAX)?
                .unwrap_or(defaults.retry_delay_ms),
            token: match get(ENV_TOKEN) {
                None => None,
                Some(text) => Some(Token::new(text).map_err(|expected| ConfigError {
                    variable: ENV_TOKEN,
                    value: REDACTED.to_owned(),
                    expected: expected.to_string(),
                })?),
            },
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks every field of a configuration built by hand; the error names the variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |variable, value: String, expected: &str| ConfigError {
            variable,
            value,
            expected: expected.to_owned(),
        };
        if !(1..=MILLIS_MAX).contains(&self.timeout_ms) {
            let e = "an integer from 1 to 3600000";
            return Err(bad(ENV_TIMEOUT_MS, self.timeout_ms.to_string(), e));
        }
        if !(1..=MAX_INFLIGHT_MAX).contains(&self.max_inflight) {
            let e = "an integer from 1 to 1024";
            return Err(bad(ENV_MAX_INFLIGHT, self.max_inflight.to_string(), e));
        }
        if self.retry_attempts > RETRY_ATTEMPTS_MAX {
            let e = "an integer from 0 to 10";
            return Err(bad(ENV_RETRY_ATTEMPTS, self.retry_attempts.to_string(), e));
        }
        if self.retry_delay_ms > MILLIS_MAX {
            let e = "an integer from 0 to 3600000";
            return Err(bad(ENV_RETRY_DELAY_MS, self.retry_delay_ms.to_string(), e));
        }
        self.retry_policy().map(|_| ()).map_err(|e| {
            bad(
                ENV_RETRY_DELAY_MS,
                self.retry_delay_ms.to_string(),
                &e.to_string(),
            )
        })
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The core retry policy for transport failures.
    ///
    /// The core's mapping ([`RetryPolicy::kernel_bridge`]): the seed's `RETRY_ATTEMPTS`
    /// counts *retries*, the core's `max_attempts` *attempts including the first try*; the
    /// base delay is `RETRY_DELAY_MS`, the rest [`RetryPolicy::KERNEL_BRIDGE`]'s.
    pub fn retry_policy(&self) -> Result<RetryPolicy, PolicyError> {
        let base = heidi_core::Duration::from_millis(self.retry_delay_ms);
        RetryPolicy::kernel_bridge(self.retry_attempts, base)
    }
}

/// `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off` (any case), like the seed.
fn parse_bool(
    variable: &'static str,
    value: Option<String>,
    default: bool,
) -> Result<bool, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError {
            variable,
            value,
            expected: "true or false (1/0, yes/no, on/off)".to_owned(),
        }),
    }
}

/// An integer in `min..=max`, or `None` when unset.
fn parse_num(
    variable: &'static str,
    value: Option<String>,
    min: u64,
    max: u64,
) -> Result<Option<u64>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    match value.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(ConfigError {
            variable,
            value,
            expected: format!("an integer from {min} to {max}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<ClientConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = EndpointEnv {
            xdg_runtime_dir: Some("/run/user/7".into()),
            ..EndpointEnv::default()
        };
        ClientConfig::from_lookup(|name| map.get(name).cloned(), &env)
    }

    #[test]
    fn defaults_match_the_seed() {
        let c = from(&[]).unwrap();
        assert!(c.enabled && !c.required);
        assert_eq!(
            c.endpoint,
            Endpoint::Unix("/run/user/7/heidi-kernel.sock".into())
        );
        assert_eq!(
            (
                c.timeout_ms,
                c.max_inflight,
                c.retry_attempts,
                c.retry_delay_ms
            ),
            (5000, 3, 2, 100)
        );
        let p = c.retry_policy().unwrap();
        assert_eq!(p.max_attempts, 3);
        assert_eq!(p.base_delay, heidi_core::Duration::from_millis(100));
        assert_eq!(p, RetryPolicy::KERNEL_BRIDGE);
        assert_eq!(ClientConfig::default().validate(), Ok(()));
    }

    #[test]
    fn values_are_read() {
        let c = from(&[
            (ENV_ENABLED, "no"),
            (ENV_REQUIRED, "TRUE"),
            (ENV_ENDPOINT, "http://127.0.0.1:8080"),
            (ENV_TIMEOUT_MS, "250"),
            (ENV_MAX_INFLIGHT, "8"),
            (ENV_RETRY_ATTEMPTS, "0"),
            (ENV_RETRY_DELAY_MS, "5000"),
        ])
        .unwrap();
        assert!(!c.enabled && c.required);
        assert!(matches!(c.endpoint, Endpoint::Http(_)));
        assert_eq!((c.timeout_ms, c.max_inflight), (250, 8));
        let p = c.retry_policy().unwrap();
        assert_eq!(p.max_attempts, 1);
        assert_eq!(p.max_delay, heidi_core::Duration::from_millis(5000));
        // Empty counts as unset.
        assert_eq!(from(&[(ENV_TIMEOUT_MS, "")]).unwrap().timeout_ms, 5000);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases = [
            (ENV_ENABLED, "maybe"),
            (ENV_REQUIRED, "2"),
            (ENV_ENDPOINT, "http://localhost.evil.com"),
            (ENV_ENDPOINT, "unix://relative.sock"),
            (ENV_TIMEOUT_MS, "0"),
            (ENV_TIMEOUT_MS, "-5"),
            (ENV_TIMEOUT_MS, "3600001"),
            (ENV_MAX_INFLIGHT, "0"),
            (ENV_MAX_INFLIGHT, "1025"),
            (ENV_RETRY_ATTEMPTS, "11"),
            (ENV_RETRY_ATTEMPTS, "two"),
            (ENV_RETRY_DELAY_MS, "1.5"),
            (ENV_TOKEN, "has a space"),
        ];
        for (var, value) in cases {
            let e = from(&[(var, value)]).unwrap_err();
            assert_eq!(e.variable, var, "{value}");
            assert!(e.to_string().starts_with(var), "{e}");
        }
    }

    #[test]
    fn the_token_is_read_and_never_shown() {
        assert_eq!(from(&[]).unwrap().token, None);
        let c = from(&[(ENV_TOKEN, "0123456789abcdef-secret")]).unwrap();
        assert_eq!(
            c.token.as_ref().unwrap().expose(),
            "0123456789abcdef-secret"
        );
        assert!(!format!("{c:?}").contains("secret"), "{c:?}");
        let e = from(&[(ENV_TOKEN, "bad secret")]).unwrap_err();
        assert!(!e.to_string().contains("secret") && !format!("{e:?}").contains("secret"));
        assert_eq!(e.variable, ENV_TOKEN);
    }

    #[test]
    fn limits_are_reachable() {
        assert!(from(&[(ENV_TIMEOUT_MS, "3600000")]).is_ok());
        assert!(from(&[(ENV_MAX_INFLIGHT, "1024")]).is_ok());
        assert!(from(&[(ENV_RETRY_ATTEMPTS, "10")]).is_ok());
        let hand = ClientConfig {
            max_inflight: 0,
            ..ClientConfig::default()
        };
        assert_eq!(hand.validate().unwrap_err().variable, ENV_MAX_INFLIGHT);
    }
}
