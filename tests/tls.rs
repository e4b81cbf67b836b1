//! TLS on `--listen`: the Rust client over TLS (in token mode, as it is
//! meant to run), mutual TLS refusing a client without a certificate, a
//! renewed certificate served to new connections without a restart, and a
//! missing file as a start-up error. Certificates are made by the test
//! (`common::tls`).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chat_client::api::Api;
use chat_server::config::Config;
use chat_server::server::{start, StartError};
use common::tls::TestCerts;
use common::tokens::*;
use common::*;

#[test]
fn the_rust_client_chats_over_tls_in_token_mode() {
    let certs = TestCerts::new();
    let server = TestServer::start_tls(
        |config| {
            token_mode(config);
            config.tls = Some(certs.server_config(false));
        },
        &certs.client("ca", false),
    );
    let api = tokened(&server.api);
    let alice = api.open_inbox("alice", WAIT).unwrap();
    let _bob = api.open_inbox("bob", WAIT).unwrap();
    let mut request = chat_proto::chat::SendMessageRequest::new();
    request.recipient = "alice".into();
    request.text = "over TLS".into();
    api.client
        .send_message_opt(&request, api.call_as("bob"))
        .unwrap();
    let messages = receive(&alice, 1);
    assert_eq!(
        (messages[0].sender.as_str(), messages[0].text.as_str()),
        ("bob", "over TLS")
    );
    // A plain-text client gets nowhere.
    assert!(Api::connect(server.api.address(), Duration::from_secs(2)).is_err());
    // Nor does one that trusts another CA.
    let stranger = certs.client("other-ca", false);
    assert!(Api::connect_with(
        server.api.address(),
        Duration::from_secs(2),
        Some(&stranger)
    )
    .is_err());
}

#[test]
fn mutual_tls_refuses_a_client_without_a_certificate() {
    let certs = TestCerts::new();
    let server = TestServer::start_tls(
        |config| config.tls = Some(certs.server_config(true)),
        &certs.client("ca", true),
    );
    // The client with its certificate is served.
    let _carol = server.connect("carol");
    assert_eq!(server.names("carol"), ["carol"]);
    let without = certs.client("ca", false);
    let refused = Api::connect_with(server.api.address(), Duration::from_secs(2), Some(&without));
    assert!(refused.is_err(), "a client without a certificate connected");
}

#[test]
fn a_renewed_certificate_is_served_to_new_connections() {
    let certs = TestCerts::new();
    let (cert, key) = (certs.path("live.pem"), certs.path("live.key"));
    std::fs::copy(certs.path("server.pem"), &cert).unwrap();
    std::fs::copy(certs.path("server.key"), &key).unwrap();
    let server = TestServer::start_tls(
        |config| {
            config.tls = Some(chat_server::tls::TlsConfig {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: None,
            })
        },
        &certs.client("ca", false),
    );
    let address = server.api.address().to_owned();
    let old_ca = certs.client("ca", false);
    let new_ca = certs.client("other-ca", false);
    let quick = Duration::from_secs(2);
    assert!(Api::connect_with(&address, quick, Some(&new_ca)).is_err());

    // Renew: the other CA's certificate in the same files, with a later
    // modification time than any the first one could have.
    std::fs::copy(certs.path("other-server.key"), &key).unwrap();
    std::fs::copy(certs.path("other-server.pem"), &cert).unwrap();
    let later = SystemTime::now() + Duration::from_secs(60);
    for path in [&cert, &key] {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(later).unwrap();
    }
    let renewed = Api::connect_with(&address, WAIT, Some(&new_ca));
    assert!(
        renewed.is_ok(),
        "a new connection still got the old certificate"
    );
    assert!(Api::connect_with(&address, quick, Some(&old_ca)).is_err());
    // The connection made before the renewal still works.
    let _dave = server.connect("dave");
}

#[test]
fn a_missing_certificate_file_is_a_start_up_error() {
    let certs = TestCerts::new();
    let mut config = Config::with_listen("127.0.0.1:0");
    let mut tls = certs.server_config(false);
    tls.key = certs.path("no-such.key");
    config.tls = Some(tls);
    match start(&config, &test_logger()) {
        Err(error @ StartError::Tls(_)) => {
            let shown = error.to_string();
            assert!(
                shown.contains("--tls-key") && shown.contains("no-such.key"),
                "{shown}"
            );
        }
        Err(other) => panic!("expected a TLS error, got {other}"),
        Ok(_) => panic!("the server started without its key"),
    }
}

#[test]
fn a_certificate_that_is_not_pem_is_a_start_up_error() {
    let certs = TestCerts::new();
    let garbage = certs.path("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let mut config = Config::with_listen("127.0.0.1:0");
    let mut tls = certs.server_config(false);
    tls.cert = garbage;
    config.tls = Some(tls);
    match start(&config, &test_logger()) {
        Err(error @ StartError::Tls(_)) => {
            assert!(error.to_string().contains("--tls-cert"), "{error}");
        }
        Err(other) => panic!("expected a TLS error, got {other}"),
        Ok(_) => panic!("the server started with a garbage certificate"),
    }
}

/// A drain that keeps every message logged, with its level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<(slog::Level, String)>>>);

impl slog::Drain for Captured {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record<'_>, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
        let line = (record.level(), record.msg().to_string());
        self.0.lock().unwrap().push(line);
        Ok(())
    }
}

#[test]
fn token_mode_without_tls_off_loopback_warns_that_tokens_travel_in_clear_text() {
    let warned = |listen: &str, tls: bool| {
        let certs = TestCerts::new();
        let captured = Captured::default();
        let log = slog::Logger::root(captured.clone(), slog::o!());
        let mut config = Config::with_listen(listen);
        token_mode(&mut config);
        if tls {
            config.tls = Some(certs.server_config(false));
        }
        let server = start(&config, &log).expect("server starts");
        server.stop();
        let lines = captured.0.lock().unwrap();
        lines.iter().any(|(level, message)| {
            *level == slog::Level::Warning && message.contains("tokens travel in clear text")
        })
    };
    assert!(warned("0.0.0.0:0", false));
    assert!(!warned("0.0.0.0:0", true));
    assert!(!warned("127.0.0.1:0", false));
}

#[test]
fn the_demo_script_runs_clean_over_tls_in_token_mode() {
    let certs = TestCerts::new();
    let server = TestServer::start_tls(
        |config| {
            token_mode(config);
            config.tls = Some(certs.server_config(true));
        },
        &certs.client("ca", true),
    );
    let api = Api::connect_with(server.api.address(), WAIT, Some(&certs.client("ca", true)))
        .unwrap()
        .with_credentials(minted());
    assert_eq!(chat_client::demo::run(api), 0);
}
