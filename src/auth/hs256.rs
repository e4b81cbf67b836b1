//! HS256 for `jsonwebtoken`, over `hmac` + `sha2`: a [`CryptoProvider`] that
//! signs and verifies HS256 and refuses every other algorithm. It stands in
//! for the crate's `rust_crypto` feature, which would bring the `rsa` crate
//! (RUSTSEC-2023-0071) for algorithms token mode never accepts. This module
//! knows nothing of claims or of gRPC.

use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{Error as SignatureError, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The provider: HS256 only. JWKs are not supported (token mode reads its
/// secret from a file), so the key utilities are the crate's placeholders.
static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

/// Makes [`PROVIDER`] the process's `jsonwebtoken` provider. `jsonwebtoken`
/// keeps its provider per process (it has no per-call choice); installing
/// it again, as every server started in one test process does, is a no-op.
///
/// # Errors
/// When another provider was installed first: its algorithms would then be
/// the ones used, so token mode refuses to start.
pub fn install() -> std::result::Result<(), &'static str> {
    match PROVIDER.install_default() {
        Ok(()) => Ok(()),
        Err(installed) if std::ptr::eq(installed, &PROVIDER) => Ok(()),
        Err(_) => Err("another jsonwebtoken crypto provider is installed in this process"),
    }
}

/// An HS256 signer or verifier: the keyed HMAC, cloned per message.
struct Hs256(HmacSha256);

impl Hs256 {
    fn new(family: AlgorithmFamily, secret: &[u8]) -> Result<Hs256> {
        if family != AlgorithmFamily::Hmac {
            return Err(ErrorKind::InvalidKeyFormat.into());
        }
        HmacSha256::new_from_slice(secret)
            .map(Hs256)
            .map_err(|_| ErrorKind::InvalidKeyFormat.into())
    }

    fn mac(&self, message: &[u8]) -> HmacSha256 {
        let mut mac = self.0.clone();
        mac.update(message);
        mac
    }
}

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    match algorithm {
        Algorithm::HS256 => Ok(Box::new(Hs256::new(key.family(), key.as_bytes())?)),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    match algorithm {
        Algorithm::HS256 => Ok(Box::new(Hs256::new(key.family(), key.try_get_as_bytes()?)?)),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

impl Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, SignatureError> {
        Ok(self.mac(message).finalize().into_bytes().to_vec())
    }
}

impl Verifier<Vec<u8>> for Hs256 {
    fn verify(
        &self,
        message: &[u8],
        signature: &Vec<u8>,
    ) -> std::result::Result<(), SignatureError> {
        // Constant-time comparison.
        self.mac(message)
            .verify_slice(signature)
            .map_err(|_| SignatureError::new())
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}
