//! The admin listener's configuration and its one credential: the secret
//! in `--admin-token-file`, which every admin call presents as
//! `authorization: Bearer <secret>`. The comparison is of SHA-256 digests in
//! constant time, so neither the secret's bytes nor its length leak through
//! timing; a refusal never echoes the header.

use std::path::Path;

use grpcio::{RpcContext, RpcStatus, RpcStatusCode};
use sha2::{Digest, Sha256};

use crate::service::identity::authorization_header;

/// Shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Where the admin service listens, and the secret its callers present.
#[derive(Clone)]
pub struct AdminConfig {
    /// The admin listener's address, host:port.
    pub listen: String,
    /// What callers must present.
    pub secret: AdminSecret,
}

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

impl AdminConfig {
    /// An admin listener on `listen` for callers presenting `secret`.
    ///
    /// # Errors
    /// A one-line message when the secret is shorter than
    /// [`MIN_SECRET_BYTES`].
    pub fn new(listen: &str, secret: Vec<u8>) -> Result<AdminConfig, String> {
        Ok(AdminConfig {
            listen: listen.to_owned(),
            secret: AdminSecret::new(secret)?,
        })
    }

    /// The admin configuration of `--admin-listen` and
    /// `--admin-token-file`: both or neither.
    ///
    /// # Errors
    /// A one-line message for one flag without the other, a file that
    /// cannot be read, or a secret that is too short.
    pub fn from_flags(
        listen: Option<String>,
        token_file: Option<&Path>,
    ) -> Result<Option<AdminConfig>, String> {
        match (listen, token_file) {
            (None, None) => Ok(None),
            (Some(_), None) => Err("--admin-listen needs --admin-token-file".to_owned()),
            (None, Some(_)) => Err("--admin-token-file needs --admin-listen".to_owned()),
            (Some(listen), Some(path)) => {
                let mut secret = std::fs::read(path).map_err(|error| {
                    format!("cannot read --admin-token-file {}: {error}", path.display())
                })?;
                // One trailing newline is the file's, not the secret's.
                if secret.last() == Some(&b'\n') {
                    secret.pop();
                    if secret.last() == Some(&b'\r') {
                        secret.pop();
                    }
                }
                AdminConfig::new(&listen, secret)
                    .map(Some)
                    .map_err(|problem| format!("--admin-token-file {}: {problem}", path.display()))
            }
        }
    }
}

/// The operator's secret, kept as its digest.
#[derive(Clone)]
pub struct AdminSecret {
    digest: [u8; 32],
}

impl AdminSecret {
    /// The secret `bytes`.
    ///
    /// # Errors
    /// A one-line message when it is shorter than [`MIN_SECRET_BYTES`].
    pub fn new(bytes: Vec<u8>) -> Result<AdminSecret, String> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the admin secret must be at least {MIN_SECRET_BYTES} bytes, got {}",
                bytes.len()
            ));
        }
        Ok(AdminSecret {
            digest: Sha256::digest(&bytes).into(),
        })
    }

    /// Whether `presented` is the secret, compared in constant time.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        digest
            .iter()
            .zip(self.digest.iter())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
    }

    /// Checks the call's `authorization: Bearer <secret>` header.
    ///
    /// # Errors
    /// UNAUTHENTICATED when the header is missing, not a bearer token, or
    /// not the secret.
    pub fn check(&self, ctx: &RpcContext<'_>) -> Result<(), RpcStatus> {
        let refused = |why: &str| {
            Err(RpcStatus::with_message(
                RpcStatusCode::UNAUTHENTICATED,
                why.to_owned(),
            ))
        };
        let Some(value) = authorization_header(ctx) else {
            return refused("the admin API needs authorization: Bearer <admin secret>");
        };
        let presented = match value.split_at_checked(7) {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case(b"bearer ") => rest,
            _ => return refused("the authorization header must be Bearer <admin secret>"),
        };
        if !self.matches(presented) {
            return refused("wrong admin secret");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_matches_itself_only() {
        let secret = AdminSecret::new(vec![b'k'; 32]).unwrap();
        assert!(secret.matches(&[b'k'; 32]));
        assert!(!secret.matches(&[b'k'; 31]));
        assert!(!secret.matches(&[b'k'; 33]));
        assert!(!secret.matches(b""));
        assert!(AdminSecret::new(vec![b'k'; 31]).is_err());
    }

    #[test]
    fn both_flags_or_neither() {
        assert!(AdminConfig::from_flags(None, None).unwrap().is_none());
        assert!(AdminConfig::from_flags(Some("127.0.0.1:0".into()), None).is_err());
        assert!(AdminConfig::from_flags(None, Some(Path::new("/nonexistent"))).is_err());
        let dir = std::env::temp_dir().join(format!("admin-secret-{}", std::process::id()));
        std::fs::write(&dir, format!("{}\n", "s".repeat(32))).unwrap();
        let config = AdminConfig::from_flags(Some("127.0.0.1:0".into()), Some(&dir))
            .unwrap()
            .unwrap();
        assert!(config.secret.matches("s".repeat(32).as_bytes()));
        std::fs::write(&dir, "short\n").unwrap();
        assert!(AdminConfig::from_flags(Some("127.0.0.1:0".into()), Some(&dir)).is_err());
        std::fs::remove_file(&dir).unwrap();
    }
}
