//! Certificates for TLS tests, made at test time with the `openssl`
//! command (no private key is ever committed): a CA, a server certificate
//! for `localhost` and 127.0.0.1 signed by it, and a client certificate
//! signed by it, in a fresh directory removed on drop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use chat_client::api::TlsOptions;
use chat_server::tls::TlsConfig;

/// A directory of freshly made certificates.
pub struct TestCerts {
    pub dir: PathBuf,
}

/// Runs `openssl` with `args` in `dir`, panicking with its output if it
/// fails.
fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command runs (Debian package openssl)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Makes a P-256 key `name.key` and a certificate `name.pem` for `cn`,
/// signed by `ca` (self-signed, as a CA, without one).
fn issue(dir: &Path, name: &str, cn: &str, ca: Option<&str>) {
    let key = format!("{name}.key");
    let pem = format!("{name}.pem");
    let subject = format!("/CN={cn}");
    let new_key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &key,
    ];
    let Some(ca) = ca else {
        let mut args = vec![
            "req", "-x509", "-days", "2", "-subj", &subject, "-out", &pem,
        ];
        args.extend(new_key);
        return openssl(dir, &args);
    };
    let csr = format!("{name}.csr");
    let mut args = vec!["req", "-subj", &subject, "-out", &csr];
    args.extend(new_key);
    openssl(dir, &args);
    let ext = format!("{name}.ext");
    std::fs::write(
        dir.join(&ext),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .unwrap();
    let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &pem,
        ],
    );
}

impl TestCerts {
    /// A CA (`ca`), a server certificate (`server`) and a client one
    /// (`client`) signed by it; and a second CA (`other-ca`) with a server
    /// certificate of its own (`other-server`), for reload tests.
    pub fn new() -> TestCerts {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "chat-test-certs-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        issue(&dir, "ca", "chat test CA", None);
        issue(&dir, "server", "localhost", Some("ca"));
        issue(&dir, "client", "chat test client", Some("ca"));
        issue(&dir, "other-ca", "another test CA", None);
        issue(&dir, "other-server", "localhost", Some("other-ca"));
        TestCerts { dir }
    }

    /// The path of `file` in the directory.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// The contents of `file`.
    pub fn read(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.path(file)).unwrap()
    }

    /// TLS with `server.pem`, with mutual TLS against `ca.pem` if `mutual`.
    pub fn server_config(&self, mutual: bool) -> TlsConfig {
        TlsConfig {
            cert: self.path("server.pem"),
            key: self.path("server.key"),
            client_ca: mutual.then(|| self.path("ca.pem")),
        }
    }

    /// A client trusting the CA `ca` (a file stem), presenting the client
    /// certificate if `with_cert`.
    pub fn client(&self, ca: &str, with_cert: bool) -> TlsOptions {
        TlsOptions {
            ca: self.read(&format!("{ca}.pem")),
            identity: with_cert.then(|| (self.read("client.pem"), self.read("client.key"))),
            server_name: None,
        }
    }
}

impl Drop for TestCerts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
