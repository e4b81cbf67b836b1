//! Tokens for token-mode tests, signed here with `hmac` + `sha2` rather than
//! through the server's own code, so the server's verifier is checked
//! against an independent signer; and a token-mode configuration with a
//! secret file.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chat_client::api::{Api, Credentials};
use chat_server::auth::TokenConfig;
use chat_server::config::Config;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};

/// The secret the test servers sign with.
pub const SECRET: &[u8] = b"test-secret-that-is-32-bytes-or-more";
/// A previous secret, still accepted.
pub const PREVIOUS: &[u8] = b"previous-secret-also-32-bytes-long!!";

/// Seconds since the epoch, now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A JWT with this header and these claims, signed with HMAC-SHA256 (or
/// HMAC-SHA512 when the header says HS512) under `secret`.
pub fn sign_raw(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let encode = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let message = format!("{}.{}", encode(header), encode(claims));
    let signature = if header["alg"] == "HS512" {
        let mut mac = Hmac::<sha2::Sha512>::new_from_slice(secret).unwrap();
        mac.update(message.as_bytes());
        mac.finalize().into_bytes().to_vec()
    } else {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
        mac.update(message.as_bytes());
        mac.finalize().into_bytes().to_vec()
    };
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// An HS256 token with these claims under [`SECRET`].
pub fn sign(claims: &Value) -> String {
    sign_raw(&json!({ "alg": "HS256", "typ": "JWT" }), claims, SECRET)
}

/// `user`'s token, valid for an hour.
pub fn token_for(user: &str) -> String {
    sign(&json!({ "sub": user, "exp": now() + 3600 }))
}

/// Credentials that mint each caller's token as [`token_for`] does.
pub fn minted() -> Credentials {
    Credentials::Minted(Arc::new(token_for))
}

/// `api` with [`minted`] credentials.
pub fn tokened(api: &Api) -> Api {
    api.clone().with_credentials(minted())
}

/// A secret file holding `contents`, removed on drop.
pub struct SecretFile(pub PathBuf);

impl SecretFile {
    pub fn new(contents: &[u8]) -> SecretFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "chat-test-secret-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, contents).unwrap();
        SecretFile(path)
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Token mode with [`SECRET`] and [`PREVIOUS`], read from a secret file as
/// the flags would, with `leeway`.
pub fn token_config(leeway: Duration) -> TokenConfig {
    let mut contents = SECRET.to_vec();
    contents.push(b'\n');
    contents.extend_from_slice(PREVIOUS);
    contents.push(b'\n');
    let file = SecretFile::new(&contents);
    TokenConfig::from_flags(&file.0, None, None, leeway.as_secs()).unwrap()
}

/// Puts `config` in token mode with a 30 s leeway.
pub fn token_mode(config: &mut Config) {
    config.auth = Some(token_config(Duration::from_secs(30)));
}
