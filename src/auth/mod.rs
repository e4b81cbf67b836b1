//! Token mode (`--auth-token-secret-file`): the caller of every call is the
//! `sub` of an HS256 JSON Web Token that the customer's backend minted with
//! a shared secret, rather than whatever name the `authorization` header
//! carries. This module owns the secret file's format, the token rules and
//! their refusal messages ([`AuthError`]), and the timer that ends a stream
//! when its token expires ([`expiry`]). It knows nothing of gRPC (the
//! adapter reads the header and maps [`AuthError`] to UNAUTHENTICATED) and
//! the domain knows nothing of tokens: the adapter hands it the verified
//! username, as it hands it the header's name in plain mode.

pub mod expiry;
mod hs256;

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::domain::check_name;
use expiry::ExpiryTimer;

/// Fewest bytes a secret may have: HS256's own key size.
pub const MIN_SECRET_BYTES: usize = 32;
/// `--auth-token-leeway-secs` when not given.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;
/// Largest `--auth-token-leeway-secs`.
pub const MAX_LEEWAY_SECS: u64 = 300;

/// An HMAC secret. Its `Debug` does not show it, so a logged config cannot
/// leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A secret of these bytes, as long as HS256 wants it.
    ///
    /// # Errors
    /// When it is shorter than [`MIN_SECRET_BYTES`].
    pub fn new(bytes: Vec<u8>) -> Result<Secret, String> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "must be at least {MIN_SECRET_BYTES} bytes, got {}",
                bytes.len()
            ));
        }
        Ok(Secret(bytes))
    }

    /// The secret's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret([{} bytes])", self.0.len())
    }
}

/// How token mode checks tokens: the `--auth-token-*` flags, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenConfig {
    /// The secret tokens are signed with now.
    pub secret: Secret,
    /// A previous secret still accepted while clients move to the new one.
    pub previous: Option<Secret>,
    /// The `aud` a token must name, if any is required.
    pub audience: Option<String>,
    /// The `iss` a token must carry, if any is required.
    pub issuer: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
}

impl TokenConfig {
    /// Reads the secret file at `path` (see [`parse_secrets`]) and checks
    /// the other token flags.
    ///
    /// # Errors
    /// A message naming the flag whose value cannot be used.
    pub fn from_flags(
        path: &Path,
        audience: Option<String>,
        issuer: Option<String>,
        leeway_secs: u64,
    ) -> Result<TokenConfig, String> {
        let bytes = std::fs::read(path).map_err(|error| {
            format!(
                "--auth-token-secret-file: cannot read {}: {error}",
                path.display()
            )
        })?;
        let (secret, previous) = parse_secrets(&bytes)
            .map_err(|problem| format!("--auth-token-secret-file {}: {problem}", path.display()))?;
        for (flag, value) in [("audience", &audience), ("issuer", &issuer)] {
            if value.as_deref().is_some_and(str::is_empty) {
                return Err(format!("--auth-token-{flag} must not be empty"));
            }
        }
        Ok(TokenConfig {
            secret,
            previous,
            audience,
            issuer,
            leeway: check_leeway(leeway_secs)?,
        })
    }
}

/// `--auth-token-leeway-secs` as a duration.
///
/// # Errors
/// When it is over [`MAX_LEEWAY_SECS`].
pub fn check_leeway(secs: u64) -> Result<Duration, String> {
    if secs > MAX_LEEWAY_SECS {
        return Err(format!(
            "--auth-token-leeway-secs must be at most {MAX_LEEWAY_SECS}, got {secs}"
        ));
    }
    Ok(Duration::from_secs(secs))
}

/// The secrets in a secret file: the current one on the first line and,
/// optionally, a previous one still accepted on the second. One trailing
/// newline (`\n` or `\r\n`) is trimmed from each line; every other byte
/// counts.
///
/// # Errors
/// When a secret is shorter than [`MIN_SECRET_BYTES`] or there are more
/// than two lines.
pub fn parse_secrets(bytes: &[u8]) -> Result<(Secret, Option<Secret>), String> {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut lines = bytes
        .split(|byte| *byte == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line).to_vec());
    let current = lines.next().unwrap_or_default();
    let previous = lines.next();
    if lines.next().is_some() {
        return Err("holds more than two lines (the secret, then a previous one)".to_owned());
    }
    let secret = Secret::new(current).map_err(|problem| format!("the secret {problem}"))?;
    let previous = previous
        .map(Secret::new)
        .transpose()
        .map_err(|problem| format!("the previous secret (second line) {problem}"))?;
    Ok((secret, previous))
}

/// Why a call's credentials are refused. Each case is answered with
/// UNAUTHENTICATED and its own message, which never repeats the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No `authorization` header.
    MissingHeader,
    /// The header is not `Bearer <token>` (a bare name, another scheme).
    NotBearer,
    /// The token is not three base64url parts of JSON.
    Malformed,
    /// The token's `alg` is not HS256 (`none`, HS512, RS256, ...).
    WrongAlgorithm,
    /// The signature was not made with the secret (nor the previous one).
    BadSignature,
    /// `exp` (plus the leeway) has passed.
    Expired,
    /// `nbf` (less the leeway) has not come yet.
    NotYetValid,
    /// A required claim is absent.
    MissingClaim(&'static str),
    /// A claim has the wrong JSON type (`exp` as a string, ...).
    MistypedClaim(&'static str),
    /// `sub` is not a valid username.
    InvalidSubject,
    /// `aud` does not name `--auth-token-audience`.
    WrongAudience,
    /// `iss` is not `--auth-token-issuer`.
    WrongIssuer,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::MissingHeader => {
                f.write_str("missing authorization header: token mode needs \"Bearer <token>\"")
            }
            AuthError::NotBearer => f.write_str("authorization header is not \"Bearer <token>\""),
            AuthError::Malformed => f.write_str("malformed token"),
            AuthError::WrongAlgorithm => f.write_str("token algorithm must be HS256"),
            AuthError::BadSignature => f.write_str("token signature does not verify"),
            AuthError::Expired => f.write_str("token expired"),
            AuthError::NotYetValid => f.write_str("token not yet valid"),
            AuthError::MissingClaim(claim) => write!(f, "token has no {claim} claim"),
            AuthError::MistypedClaim(claim) => {
                let kind = match *claim {
                    "exp" | "nbf" => "a number",
                    "aud" => "a string or a list of strings",
                    _ => "a string",
                };
                write!(f, "token claim {claim} must be {kind}")
            }
            AuthError::InvalidSubject => f.write_str("token sub is not a valid username"),
            AuthError::WrongAudience => f.write_str("token audience does not match"),
            AuthError::WrongIssuer => f.write_str("token issuer does not match"),
        }
    }
}

impl std::error::Error for AuthError {}

/// Who a verified token speaks for, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The username: the token's `sub`.
    pub user: String,
    /// The first moment the token is refused (`exp` + leeway + the second
    /// `exp` names); `None` if it lies beyond what the clock can hold.
    pub refused_from: Option<SystemTime>,
}

/// Checks tokens against the configured secrets and claims. Built once by
/// the bootstrap and shared by every handler; verifying takes no lock.
pub struct TokenVerifier {
    /// The current secret's key, then the previous one's.
    keys: Vec<DecodingKey>,
    validation: Validation,
    leeway: Duration,
    audience: bool,
    issuer: bool,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("keys", &self.keys.len())
            .field("leeway", &self.leeway)
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl TokenVerifier {
    /// A verifier for `config`.
    ///
    /// # Errors
    /// When HS256 cannot be installed as `jsonwebtoken`'s provider (see
    /// `hs256::install`) or a secret is refused as a key.
    pub fn new(config: &TokenConfig) -> Result<TokenVerifier, String> {
        hs256::install()?;
        let keys = std::iter::once(&config.secret)
            .chain(config.previous.as_ref())
            .map(|secret| DecodingKey::from_secret(secret.bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| format!("cannot use the token secret: {error}"))?;
        let mut validation = Validation::new(Algorithm::HS256);
        // Presence is checked here, after the signature, so that each
        // missing claim has its own message; the library checks the types,
        // `exp`, `nbf`, and `aud`/`iss` when they are configured.
        validation.required_spec_claims.clear();
        validation.leeway = config.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = config.audience.is_some();
        if let Some(audience) = &config.audience {
            validation.set_audience(&[audience]);
        }
        if let Some(issuer) = &config.issuer {
            validation.set_issuer(&[issuer]);
        }
        Ok(TokenVerifier {
            keys,
            validation,
            leeway: config.leeway,
            audience: config.audience.is_some(),
            issuer: config.issuer.is_some(),
        })
    }

    /// Verifies the value of an `authorization` header (`None`: there was
    /// none), which must be `Bearer <token>`.
    ///
    /// # Errors
    /// The [`AuthError`] that refuses it.
    pub fn verify_header(&self, header: Option<&[u8]>) -> Result<Identity, AuthError> {
        let header = header.ok_or(AuthError::MissingHeader)?;
        let header = std::str::from_utf8(header).map_err(|_| AuthError::NotBearer)?;
        let token = match header.trim().split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(AuthError::NotBearer),
        };
        self.verify(token)
    }

    /// Verifies a token: HS256 signed with the secret or the previous one,
    /// `exp` and `nbf` within the leeway, `aud` and `iss` as configured, and
    /// `sub` a valid username.
    ///
    /// # Errors
    /// The [`AuthError`] that refuses it.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        check_algorithm(token)?;
        let mut outcome = Err(AuthError::BadSignature);
        for key in &self.keys {
            outcome = jsonwebtoken::decode::<Value>(token, key, &self.validation)
                .map(|data| data.claims)
                .map_err(|error| refusal_of(error.kind()));
            if outcome != Err(AuthError::BadSignature) {
                break;
            }
        }
        let claims = outcome?;
        let exp = match claims.get("exp") {
            None | Some(Value::Null) => return Err(AuthError::MissingClaim("exp")),
            Some(exp) => seconds(exp).ok_or(AuthError::MistypedClaim("exp"))?,
        };
        let user = match claims.get("sub") {
            None | Some(Value::Null) => return Err(AuthError::MissingClaim("sub")),
            Some(Value::String(sub)) => sub,
            Some(_) => return Err(AuthError::MistypedClaim("sub")),
        };
        check_name(user).map_err(|_| AuthError::InvalidSubject)?;
        for (claim, required) in [("aud", self.audience), ("iss", self.issuer)] {
            if required && matches!(claims.get(claim), None | Some(Value::Null)) {
                return Err(AuthError::MissingClaim(claim));
            }
        }
        let refused_from = Duration::from_secs(exp)
            .checked_add(self.leeway + Duration::from_secs(1))
            .and_then(|after_epoch| UNIX_EPOCH.checked_add(after_epoch));
        Ok(Identity {
            user: user.clone(),
            refused_from,
        })
    }
}

/// Refuses a token whose header does not say HS256, before any key is
/// tried: `none` and algorithms the library does not know would otherwise
/// read as malformed.
fn check_algorithm(token: &str) -> Result<(), AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed)?;
    let header: Value = serde_json::from_slice(&header).map_err(|_| AuthError::Malformed)?;
    match header.get("alg") {
        Some(Value::String(alg)) if alg == "HS256" => Ok(()),
        Some(_) => Err(AuthError::WrongAlgorithm),
        None => Err(AuthError::Malformed),
    }
}

/// A NumericDate as whole seconds, as the library reads it (a fraction is
/// rounded); `None` when it is not a non-negative number.
fn seconds(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|secs| secs.is_finite() && *secs >= 0.0 && *secs < u64::MAX as f64)
            .map(|secs| secs.round() as u64)
    })
}

/// The refusal for a `jsonwebtoken` error.
fn refusal_of(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => AuthError::WrongAlgorithm,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(claim_name(claim)),
        ErrorKind::InvalidClaimFormat(claim) => AuthError::MistypedClaim(claim_name(claim)),
        // Bad base64, JSON or UTF-8, a header the library refuses, ...
        _ => AuthError::Malformed,
    }
}

/// A registered claim's name, as a static string for [`AuthError`].
fn claim_name(claim: &str) -> &'static str {
    match claim {
        "exp" => "exp",
        "nbf" => "nbf",
        "sub" => "sub",
        "aud" => "aud",
        "iss" => "iss",
        _ => "required",
    }
}

/// Token mode as the adapter uses it: the verifier, and the timer that ends
/// each stream when its token runs out.
#[derive(Debug)]
pub struct TokenAuth {
    /// Checks every call's token.
    pub verifier: TokenVerifier,
    /// Ends streams whose token has expired.
    pub expiry: ExpiryTimer,
}

impl TokenAuth {
    /// Builds the verifier and starts the expiry timer's thread.
    ///
    /// # Errors
    /// When the verifier cannot be built or the thread cannot start.
    pub fn start(config: &TokenConfig) -> Result<TokenAuth, String> {
        let verifier = TokenVerifier::new(config)?;
        let expiry = ExpiryTimer::start()
            .map_err(|error| format!("cannot start the token expiry timer: {error}"))?;
        Ok(TokenAuth { verifier, expiry })
    }
}

#[cfg(test)]
mod tests;
