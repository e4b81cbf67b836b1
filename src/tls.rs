//! TLS on `--listen` (`--tls-cert`, `--tls-key`) and mutual TLS
//! (`--tls-client-ca`: client certificates required and verified). gRPC
//! C-core asks [`Reloader`] for the certificates before each new
//! connection; it rereads the files only when their modification time or
//! size has changed, so a renewed certificate is served to new connections
//! without a restart, and a broken one is logged and the previous one kept.
//! This module owns the TLS flags and the reload rule; the bootstrap
//! listens with what [`server_credentials`] returns.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use grpcio::{
    CertificateRequestType, ServerCredentials, ServerCredentialsBuilder, ServerCredentialsFetcher,
};
use slog::Logger;

/// The TLS flags, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The server's certificate chain (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
    /// The CA that client certificates must be signed by (PEM); `None`:
    /// clients need no certificate.
    pub client_ca: Option<PathBuf>,
}

impl TlsConfig {
    /// The TLS configuration the flags ask for; `None` without `--tls-cert`.
    ///
    /// # Errors
    /// When only one of `--tls-cert` and `--tls-key` is given, or
    /// `--tls-client-ca` without them.
    pub fn from_flags(
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        client_ca: Option<PathBuf>,
    ) -> Result<Option<TlsConfig>, String> {
        let config = match (cert, key) {
            (Some(cert), Some(key)) => TlsConfig {
                cert,
                key,
                client_ca,
            },
            (None, None) if client_ca.is_none() => return Ok(None),
            (None, None) => return Err("--tls-client-ca needs --tls-cert and --tls-key".into()),
            (Some(_), None) => return Err("--tls-cert needs --tls-key".into()),
            (None, Some(_)) => return Err("--tls-key needs --tls-cert".into()),
        };
        Ok(Some(config))
    }

    /// The files, with the flag each comes from.
    fn files(&self) -> Vec<(&'static str, &Path)> {
        let mut files = vec![
            ("--tls-cert", self.cert.as_path()),
            ("--tls-key", &self.key),
        ];
        if let Some(ca) = &self.client_ca {
            files.push(("--tls-client-ca", ca));
        }
        files
    }
}

/// Whether `listen` (host:port) is a loopback address, where a token in
/// clear text never leaves the machine.
pub fn is_loopback(listen: &str) -> bool {
    let host = listen.rsplit_once(':').map_or(listen, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// What the files looked like when last read: modification time and size
/// of each, in [`TlsConfig::files`] order.
type Stamp = Vec<(Option<SystemTime>, u64)>;

/// The files' contents, read and checked.
struct Pem {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

/// Reads every file of `config`.
fn read_pem(config: &TlsConfig) -> Result<Pem, String> {
    let read = |flag: &str, path: &Path| {
        let bytes = std::fs::read(path)
            .map_err(|error| format!("{flag}: cannot read {}: {error}", path.display()))?;
        // C-core takes them as C strings.
        if bytes.contains(&0) {
            return Err(format!("{flag}: {} is not PEM", path.display()));
        }
        Ok(bytes)
    };
    Ok(Pem {
        cert: read("--tls-cert", &config.cert)?,
        key: read("--tls-key", &config.key)?,
        client_ca: match &config.client_ca {
            Some(ca) => Some(read("--tls-client-ca", ca)?),
            None => None,
        },
    })
}

/// The stamp of `config`'s files now (a missing file has no time).
fn stamp(config: &TlsConfig) -> Stamp {
    config
        .files()
        .into_iter()
        .map(|(_, path)| match std::fs::metadata(path) {
            Ok(meta) => (meta.modified().ok(), meta.len()),
            Err(_) => (None, 0),
        })
        .collect()
}

/// Hands C-core the certificates whenever their files have changed.
pub struct Reloader {
    config: TlsConfig,
    /// The files' stamp when last looked at.
    seen: Mutex<Option<Stamp>>,
    log: Logger,
}

impl Reloader {
    fn new(config: TlsConfig, log: Logger) -> Reloader {
        Reloader {
            config,
            seen: Mutex::new(None),
            log,
        }
    }

    /// The files' contents if they changed since they were last handed
    /// over; `Ok(None)` if not.
    ///
    /// # Errors
    /// When a changed file cannot be read; the previous certificates stay,
    /// and the files are tried again once they change.
    fn changed(&self) -> Result<Option<Pem>, String> {
        let now = stamp(&self.config);
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.as_ref() == Some(&now) {
            return Ok(None);
        }
        let first = seen.is_none();
        // Stamped before reading: a write racing with the read changes the
        // stamp again and is read at the next connection. A file that
        // cannot be read is not retried until it changes.
        *seen = Some(now);
        drop(seen);
        let pem = read_pem(&self.config)?;
        let message = if first {
            "TLS certificate loaded"
        } else {
            "TLS certificate reloaded"
        };
        slog::info!(self.log, "{}", message;
            "cert" => %self.config.cert.display(),
            "mutual" => self.config.client_ca.is_some());
        Ok(Some(pem))
    }
}

impl ServerCredentialsFetcher for Reloader {
    fn fetch(&self) -> Result<Option<ServerCredentialsBuilder>, Box<dyn std::error::Error>> {
        let pem = match self.changed() {
            Ok(Some(pem)) => pem,
            Ok(None) => return Ok(None),
            Err(problem) => {
                slog::warn!(self.log, "cannot reload the TLS certificate; keeping the previous one";
                    "error" => &problem);
                return Err(problem.into());
            }
        };
        // C-core wants client root certificates in a reloaded config even
        // when it asks for no client certificate (a debug build asserts
        // it): without a client CA, the server's own chain stands in,
        // unused.
        let roots = pem.client_ca.unwrap_or_else(|| pem.cert.clone());
        let builder = ServerCredentialsBuilder::new()
            .add_cert(pem.cert, pem.key)
            .root_cert(roots, request_type(&self.config));
        Ok(Some(builder))
    }
}

/// Whether clients must present a certificate.
fn request_type(config: &TlsConfig) -> CertificateRequestType {
    match config.client_ca {
        Some(_) => CertificateRequestType::RequestAndRequireClientCertificateAndVerify,
        None => CertificateRequestType::DontRequestClientCertificate,
    }
}

/// The credentials to listen with: TLS from `config`'s files, reloaded when
/// they change, or plain text without `config`.
///
/// # Errors
/// When a file cannot be read.
pub fn server_credentials(
    config: Option<&TlsConfig>,
    log: &Logger,
) -> Result<ServerCredentials, String> {
    let Some(config) = config else {
        return Ok(ServerCredentials::insecure());
    };
    // Read once here, so an unreadable file is a clear start-up error
    // rather than a failed listen.
    read_pem(config)?;
    let reloader = Reloader::new(config.clone(), log.clone());
    Ok(ServerCredentials::with_fetcher(
        Box::new(reloader),
        request_type(config),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_are_told_apart() {
        for listen in ["127.0.0.1:1", "localhost:1", "[::1]:1", "127.1.2.3:0"] {
            assert!(is_loopback(listen), "{listen}");
        }
        for listen in ["0.0.0.0:1", "[::]:1", "10.0.0.1:1", "example.com:1"] {
            assert!(!is_loopback(listen), "{listen}");
        }
    }

    #[test]
    fn the_tls_flags_go_together() {
        let path = || Some(PathBuf::from("x"));
        assert_eq!(TlsConfig::from_flags(None, None, None), Ok(None));
        for (cert, key, ca, flag) in [
            (path(), None, None, "--tls-cert needs --tls-key"),
            (None, path(), None, "--tls-key needs --tls-cert"),
            (None, None, path(), "--tls-client-ca needs"),
        ] {
            let error = TlsConfig::from_flags(cert, key, ca).unwrap_err();
            assert!(error.contains(flag), "{error}");
        }
    }

    #[test]
    fn files_are_reread_only_when_they_change() {
        let dir = std::env::temp_dir().join(format!("chat-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = TlsConfig {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            client_ca: None,
        };
        std::fs::write(&config.cert, "cert one").unwrap();
        std::fs::write(&config.key, "key one").unwrap();
        let reloader = Reloader::new(
            config.clone(),
            slog::Logger::root(slog::Discard, slog::o!()),
        );
        let first = reloader.changed().unwrap().unwrap();
        assert_eq!(first.cert, b"cert one");
        assert!(
            reloader.changed().unwrap().is_none(),
            "unchanged: not reread"
        );
        std::fs::write(&config.cert, "cert two, longer").unwrap();
        let second = reloader.changed().unwrap().unwrap();
        assert_eq!(second.cert, b"cert two, longer");
        std::fs::remove_file(&config.key).unwrap();
        let error = reloader.changed().err().unwrap();
        assert!(error.contains("--tls-key"), "{error}");
        assert!(
            reloader.changed().unwrap().is_none(),
            "not retried until it changes"
        );
        std::fs::write(&config.key, "key two").unwrap();
        assert_eq!(reloader.changed().unwrap().unwrap().key, b"key two");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
