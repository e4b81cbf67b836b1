//! The verifier on its own, with tokens signed through the same provider.
//! Every refusal is also checked over gRPC, with tokens signed
//! independently, in `tests/tokens.rs`.

use serde_json::json;

use super::*;

fn config(leeway: u64) -> TokenConfig {
    TokenConfig {
        secret: Secret::new(b"a-secret-of-at-least-32-bytes!!!".to_vec()).unwrap(),
        previous: Some(Secret::new(b"the-previous-secret-32-bytes-ok!".to_vec()).unwrap()),
        audience: None,
        issuer: None,
        leeway: Duration::from_secs(leeway),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign(secret: &Secret, claims: &Value) -> String {
    hs256::install().unwrap();
    let key = jsonwebtoken::EncodingKey::from_secret(secret.bytes()).unwrap();
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), claims, &key).unwrap()
}

#[test]
fn a_valid_token_names_its_user_until_exp_plus_leeway() {
    let config = config(30);
    let verifier = TokenVerifier::new(&config).unwrap();
    let exp = now() + 60;
    let token = sign(&config.secret, &json!({ "sub": "alice", "exp": exp }));
    let identity = verifier.verify(&token).unwrap();
    assert_eq!(identity.user, "alice");
    assert_eq!(
        identity.refused_from,
        Some(UNIX_EPOCH + Duration::from_secs(exp + 31))
    );
    let header = format!("Bearer {token}");
    assert_eq!(
        verifier
            .verify_header(Some(header.as_bytes()))
            .unwrap()
            .user,
        "alice"
    );
    // The previous secret is still accepted; a third is not.
    let old = sign(
        config.previous.as_ref().unwrap(),
        &json!({ "sub": "bob", "exp": exp }),
    );
    assert_eq!(verifier.verify(&old).unwrap().user, "bob");
    let other = Secret::new(vec![b'x'; 32]).unwrap();
    let forged = sign(&other, &json!({ "sub": "bob", "exp": exp }));
    assert_eq!(verifier.verify(&forged), Err(AuthError::BadSignature));
}

#[test]
fn claims_are_checked_after_the_signature() {
    let config = config(0);
    let verifier = TokenVerifier::new(&config).unwrap();
    let exp = now() + 60;
    for (claims, refusal) in [
        (json!({ "sub": "alice" }), AuthError::MissingClaim("exp")),
        (json!({ "exp": exp }), AuthError::MissingClaim("sub")),
        (
            json!({ "sub": "alice", "exp": exp.to_string() }),
            AuthError::MistypedClaim("exp"),
        ),
        (
            json!({ "sub": 7, "exp": exp }),
            AuthError::MistypedClaim("sub"),
        ),
        (
            json!({ "sub": "not a name", "exp": exp }),
            AuthError::InvalidSubject,
        ),
        (
            json!({ "sub": "alice", "exp": now() - 2 }),
            AuthError::Expired,
        ),
        (
            json!({ "sub": "alice", "exp": exp, "nbf": now() + 60 }),
            AuthError::NotYetValid,
        ),
    ] {
        let token = sign(&config.secret, &claims);
        assert_eq!(verifier.verify(&token), Err(refusal), "{claims}");
    }
    // A fractional exp is a number too.
    let token = sign(
        &config.secret,
        &json!({ "sub": "a", "exp": exp as f64 + 0.5 }),
    );
    assert!(verifier.verify(&token).is_ok());
}

#[test]
fn audience_and_issuer_are_checked_only_when_configured() {
    let exp = now() + 60;
    let plain = config(0);
    let claims = json!({ "sub": "alice", "exp": exp, "aud": "other", "iss": "someone" });
    let token = sign(&plain.secret, &claims);
    assert!(TokenVerifier::new(&plain).unwrap().verify(&token).is_ok());

    let strict = TokenConfig {
        audience: Some("chat".into()),
        issuer: Some("backend".into()),
        ..config(0)
    };
    let verifier = TokenVerifier::new(&strict).unwrap();
    for (claims, outcome) in [
        (
            json!({ "sub": "a", "exp": exp, "aud": "chat", "iss": "backend" }),
            Ok(()),
        ),
        (
            json!({ "sub": "a", "exp": exp, "aud": ["x", "chat"], "iss": "backend" }),
            Ok(()),
        ),
        (
            json!({ "sub": "a", "exp": exp, "aud": "other", "iss": "backend" }),
            Err(AuthError::WrongAudience),
        ),
        (
            json!({ "sub": "a", "exp": exp, "aud": "chat", "iss": "other" }),
            Err(AuthError::WrongIssuer),
        ),
        (
            json!({ "sub": "a", "exp": exp, "iss": "backend" }),
            Err(AuthError::MissingClaim("aud")),
        ),
        (
            json!({ "sub": "a", "exp": exp, "aud": "chat" }),
            Err(AuthError::MissingClaim("iss")),
        ),
    ] {
        let token = sign(&strict.secret, &claims);
        assert_eq!(verifier.verify(&token).map(drop), outcome, "{claims}");
    }
}

#[test]
fn headers_that_are_not_a_bearer_token_are_refused() {
    let verifier = TokenVerifier::new(&config(0)).unwrap();
    assert_eq!(verifier.verify_header(None), Err(AuthError::MissingHeader));
    for header in ["alice", "Basic YWxpY2U=", "", "\u{e9}"] {
        assert_eq!(
            verifier.verify_header(Some(header.as_bytes())),
            Err(AuthError::NotBearer),
            "{header:?}"
        );
    }
    assert_eq!(
        verifier.verify_header(Some(b"\xff")),
        Err(AuthError::NotBearer)
    );
    for token in ["alice", "a.b", "a.b.c.d", "!!.e30.x", "e30.e30.x"] {
        assert_eq!(verifier.verify(token), Err(AuthError::Malformed), "{token}");
    }
    // {"alg":"none"} and {"alg":"HS512"}, whatever follows.
    for header in ["eyJhbGciOiJub25lIn0", "eyJhbGciOiJIUzUxMiJ9"] {
        let token = format!("{header}.e30.");
        assert_eq!(verifier.verify(&token), Err(AuthError::WrongAlgorithm));
    }
}

#[test]
fn a_secret_file_trims_one_newline_per_line() {
    let long = "k".repeat(32);
    let (secret, previous) = parse_secrets(format!("{long}\n").as_bytes()).unwrap();
    assert_eq!(secret.bytes(), long.as_bytes());
    assert_eq!(previous, None);
    // A second newline is a second, empty, line: too short a secret.
    assert!(parse_secrets(format!("{long}\n\n").as_bytes()).is_err());
    // Spaces are part of the secret.
    let spaced = format!(" {long} ");
    let (secret, _) = parse_secrets(spaced.as_bytes()).unwrap();
    assert_eq!(secret.bytes(), spaced.as_bytes());
    assert_eq!(
        format!("{secret:?}"),
        format!("Secret([{} bytes])", spaced.len())
    );
}
