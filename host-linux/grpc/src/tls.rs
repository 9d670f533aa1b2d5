//! TLS for the sidecar and the upstream (rustls via tonic): PEM files into tonic's
//! [`ServerTlsConfig`] and [`ClientTlsConfig`].
//!
//! Files are read and checked here, so a missing file or one without the expected PEM section
//! is an error that names the file, at startup, rather than a handshake failure later.
//!
//! - Server: a certificate chain and its private key; with a client CA, **mutual TLS**: every
//!   client must present a certificate signed by that CA, or the handshake is refused.
//! - Client: the CA that signed the server's certificate, the name to check it against
//!   (default: the host of the URL), and for mutual TLS the client's certificate and key.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::{Path, PathBuf};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// A certificate chain and its private key, as PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityFiles {
    /// PEM file with one or more `CERTIFICATE` sections (leaf first).
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The server side's files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// The server's certificate and key.
    pub identity: IdentityFiles,
    /// With a CA file, clients must present a certificate it signed (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// The client side's files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientTlsFiles {
    /// PEM file with the CA certificate(s) that signed the server's certificate.
    pub ca: PathBuf,
    /// The client's certificate and key, for mutual TLS.
    pub identity: Option<IdentityFiles>,
    /// The name the server's certificate must carry (default: the endpoint's host).
    pub domain: Option<String>,
}

/// A TLS file that could not be used.
#[derive(Debug)]
pub struct TlsError {
    /// The file.
    pub path: PathBuf,
    /// What was wrong with it.
    pub reason: String,
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for TlsError {}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError {
        path: path.to_owned(),
        reason: format!("cannot read: {e}"),
    })
}

/// Reads a PEM file holding at least one `CERTIFICATE` section; returns its bytes.
pub fn read_certificates(path: &Path) -> Result<Vec<u8>, TlsError> {
    let pem = read(path)?;
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        cert.map_err(|e| TlsError {
            path: path.to_owned(),
            reason: format!("bad PEM: {e}"),
        })?;
        count += 1;
    }
    if count == 0 {
        return Err(TlsError {
            path: path.to_owned(),
            reason: "no CERTIFICATE section in the PEM file".to_owned(),
        });
    }
    Ok(pem)
}

/// Reads a PEM file holding a private key; returns its bytes.
pub fn read_private_key(path: &Path) -> Result<Vec<u8>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError {
        path: path.to_owned(),
        reason: format!("no usable PRIVATE KEY section in the PEM file ({e})"),
    })?;
    Ok(pem)
}

/// Reads a certificate chain and its key into a tonic [`Identity`].
pub fn read_identity(files: &IdentityFiles) -> Result<Identity, TlsError> {
    let cert = read_certificates(&files.cert)?;
    let key = read_private_key(&files.key)?;
    Ok(Identity::from_pem(cert, key))
}

/// The server's TLS configuration; with `client_ca`, client certificates are required.
pub fn server_config(files: &ServerTlsFiles) -> Result<ServerTlsConfig, TlsError> {
    let mut config = ServerTlsConfig::new().identity(read_identity(&files.identity)?);
    if let Some(ca) = &files.client_ca {
        config = config
            .client_ca_root(Certificate::from_pem(read_certificates(ca)?))
            .client_auth_optional(false);
    }
    Ok(config)
}

/// The client's TLS configuration: trust `ca`, check `domain`, present `identity` if given.
pub fn client_config(files: &ClientTlsFiles) -> Result<ClientTlsConfig, TlsError> {
    let mut config =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read_certificates(&files.ca)?));
    if let Some(identity) = &files.identity {
        config = config.identity(read_identity(identity)?);
    }
    if let Some(domain) = &files.domain {
        config = config.domain_name(domain.clone());
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOT_PEM: &[u8] = b"hello\n";

    fn write(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn missing_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let e = read_certificates(&missing).unwrap_err();
        assert_eq!(e.path, missing);
        assert!(e.to_string().contains("nope.pem: cannot read"), "{e}");

        let junk = write(dir.path(), "junk.pem", NOT_PEM);
        let e = read_certificates(&junk).unwrap_err();
        assert!(e.to_string().contains("junk.pem: no CERTIFICATE"), "{e}");
        let e = read_private_key(&junk).unwrap_err();
        assert!(
            e.to_string().contains("junk.pem: no usable PRIVATE KEY"),
            "{e}"
        );

        let cut = write(
            dir.path(),
            "cut.pem",
            b"-----BEGIN CERTIFICATE-----\nMIIB\n",
        );
        let e = read_certificates(&cut).unwrap_err();
        assert!(e.to_string().contains("cut.pem: bad PEM"), "{e}");
    }

    #[test]
    fn configs_fail_on_the_first_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let junk = write(dir.path(), "junk.pem", NOT_PEM);
        let files = ServerTlsFiles {
            identity: IdentityFiles {
                cert: junk.clone(),
                key: junk.clone(),
            },
            client_ca: None,
        };
        assert_eq!(server_config(&files).unwrap_err().path, junk);
        let client = ClientTlsFiles {
            ca: dir.path().join("ca.pem"),
            identity: None,
            domain: None,
        };
        assert!(
            client_config(&client)
                .unwrap_err()
                .to_string()
                .contains("ca.pem: cannot read")
        );
    }
}
