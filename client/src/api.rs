//! A small blocking wrapper over the generated grpcio client: one channel to
//! the server (plain or TLS), calls that name their caller in the
//! `authorization` header (a bare name, or in token mode a bearer token:
//! see [`Credentials`]), and an [`Inbox`] that reads a Connect stream on its
//! own thread and hands events over a channel, so callers can wait for them
//! with a deadline: messages, and the membership and typing events a
//! stream asked for ([`Api::open_session_with`]).

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use chat_proto::chat::{
    connect_response, ConnectRequest, ConnectResponse, Connected, EventType, MembershipChange,
    Message, ResumeRequest, TypingStarted,
};
use chat_proto::chat_grpc::ChatServiceClient;
use crossbeam_channel::Receiver;
use futures::channel::oneshot;
use futures::{future, StreamExt};
use grpcio::{
    CallOption, ChannelBuilder, ClientSStreamReceiver, Environment, MetadataBuilder, RpcStatus,
    RpcStatusCode,
};

/// A connection to one chat server.
#[derive(Clone)]
pub struct Api {
    /// The generated client, on one HTTP/2 connection.
    pub client: ChatServiceClient,
    /// That connection, for the clients of other services the same server
    /// offers on it (the admin listener's `AdminService`).
    channel: grpcio::Channel,
    address: String,
    credentials: Credentials,
    /// The completion queue the channel runs on, shared by the fresh
    /// channels [`Api::reconnect`] opens (one thread, however many).
    env: Arc<Environment>,
    /// How the channel was secured, so a fresh one is secured the same way.
    tls: Option<TlsOptions>,
}

/// Mints a user's token (a stand-in for the backend that holds the secret).
pub type Minter = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// What a call carries in its `authorization` header.
#[derive(Clone, Default)]
pub enum Credentials {
    /// Plain mode: the caller's bare name.
    #[default]
    Names,
    /// Token mode, one identity: `Bearer <token>` on every call, Connect
    /// included, whoever the call says it is for.
    Token(String),
    /// Token mode, any user: `Bearer <token>` with the token `mint` makes
    /// for the caller (a name written `Bearer <name>` is the name).
    Minted(Minter),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token itself.
        f.write_str(match self {
            Credentials::Names => "Names",
            Credentials::Token(_) => "Token",
            Credentials::Minted(_) => "Minted",
        })
    }
}

/// How to reach a server over TLS: the CA that signed its certificate and,
/// for mutual TLS, this client's certificate and key (all PEM).
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// The CA certificates to trust (PEM).
    pub ca: Vec<u8>,
    /// This client's certificate chain and private key (PEM), for servers
    /// that require one.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// The name the server's certificate must carry, when it is not the
    /// host in the address.
    pub server_name: Option<String>,
}

impl TlsOptions {
    /// Reads the CA file and, when given, the client certificate and key.
    ///
    /// # Errors
    /// A one-line message naming the file that cannot be read.
    pub fn from_files(
        ca: &std::path::Path,
        identity: Option<(&std::path::Path, &std::path::Path)>,
    ) -> Result<TlsOptions, String> {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))
        };
        let identity = match identity {
            Some((cert, key)) => Some((read(cert)?, read(key)?)),
            None => None,
        };
        Ok(TlsOptions {
            ca: read(ca)?,
            identity,
            server_name: None,
        })
    }
}

impl Api {
    /// Connects to the server at `address` (host:port), waiting up to
    /// `timeout` for the connection. A refused connection fails at once: a
    /// plain TCP connect is tried first, as gRPC would retry it until the
    /// timeout.
    ///
    /// # Errors
    /// A one-line message when the address is malformed or cannot be
    /// resolved, or the server cannot be reached.
    pub fn connect(address: &str, timeout: Duration) -> Result<Api, String> {
        Api::connect_with(address, timeout, None)
    }

    /// Like [`Api::connect`], over TLS when `tls` is given.
    ///
    /// # Errors
    /// A one-line message when the server cannot be reached (over TLS: also
    /// when its certificate is not trusted, or it refuses ours).
    pub fn connect_with(
        address: &str,
        timeout: Duration,
        tls: Option<&TlsOptions>,
    ) -> Result<Api, String> {
        Api::open(Arc::new(Environment::new(1)), address, timeout, tls)
    }

    /// A fresh connection to the same server, secured and identified the
    /// same way, on the same completion queue. A reconnecting client uses
    /// it rather than the old channel, whose own reconnect backoff (up to
    /// two minutes in gRPC C-core) would otherwise decide when it comes
    /// back.
    ///
    /// # Errors
    /// As [`Api::connect_with`].
    pub fn reconnect(&self, timeout: Duration) -> Result<Api, String> {
        Api::open(
            Arc::clone(&self.env),
            &self.address,
            timeout,
            self.tls.as_ref(),
        )
        .map(|api| api.with_credentials(self.credentials.clone()))
    }

    fn open(
        env: Arc<Environment>,
        address: &str,
        timeout: Duration,
        tls: Option<&TlsOptions>,
    ) -> Result<Api, String> {
        let socket = resolve(address)?;
        TcpStream::connect_timeout(&socket, timeout).map_err(|error| {
            format!(
                "cannot reach a chat server at {address}: {}",
                connect_failure(&error, timeout)
            )
        })?;
        let builder = ChannelBuilder::new(Arc::clone(&env));
        let channel = match tls {
            None => builder.connect(address),
            Some(tls) => secure_channel(builder, tls, address)?,
        };
        let ready = futures::executor::block_on(channel.wait_for_connected(timeout));
        if !ready {
            return Err(match tls {
                None => format!(
                    "cannot reach a chat server at {address}: it accepts connections but does not \
                     speak gRPC in plain text (a TLS server needs --tls-ca)"
                ),
                Some(_) => format!(
                    "cannot reach a chat server at {address} over TLS: no TLS there, or its \
                     certificate is not signed by --tls-ca, or it refused ours"
                ),
            });
        }
        Ok(Api {
            client: ChatServiceClient::new(channel.clone()),
            channel,
            address: address.to_owned(),
            credentials: Credentials::Names,
            env,
            tls: tls.cloned(),
        })
    }

    /// This connection, its calls carrying `credentials`.
    pub fn with_credentials(mut self, credentials: Credentials) -> Api {
        self.credentials = credentials;
        self
    }

    /// Call options naming `user` as this connection's credentials say: the
    /// bare name ([`Api::as_user`]), or a bearer token. An empty `user`
    /// sends no header at all.
    pub fn call_as(&self, user: &str) -> CallOption {
        if user.is_empty() {
            return CallOption::default();
        }
        match &self.credentials {
            Credentials::Names => Api::as_user(user),
            Credentials::Token(token) => bearer(token),
            Credentials::Minted(mint) => {
                let name = user.strip_prefix("Bearer ").unwrap_or(user);
                bearer(&mint(name))
            }
        }
    }

    /// The options a Connect for `username` goes out with: none in plain
    /// mode, where Connect names its user in the request; the token in
    /// token mode.
    fn connect_options(&self, username: &str) -> CallOption {
        match self.credentials {
            Credentials::Names => CallOption::default(),
            _ => self.call_as(username),
        }
    }

    /// The connection, for a client of another service on the same
    /// address (e.g. `AdminServiceClient::new(api.channel().clone())`).
    pub fn channel(&self) -> &grpcio::Channel {
        &self.channel
    }

    /// The server's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Call options naming `user` in the `authorization` header.
    pub fn as_user(user: &str) -> CallOption {
        let mut headers = MetadataBuilder::new();
        // A name the header cannot carry goes out as no header at all; the
        // server then answers UNAUTHENTICATED.
        if headers.add_str("authorization", user).is_err() {
            return CallOption::default();
        }
        CallOption::default().headers(headers.build())
    }

    /// Opens `username`'s inbox and waits up to `timeout` for `connected`.
    ///
    /// # Errors
    /// The status the server refused the stream with.
    pub fn open_inbox(&self, username: &str, timeout: Duration) -> Result<Inbox, RpcStatus> {
        self.open_session(username, None, timeout)
            .map(|(inbox, _)| inbox)
    }

    /// Opens `username`'s inbox, asking to resume the session `resume`
    /// names when given, and waits up to `timeout` for `connected`, which
    /// it returns beside the inbox (its resume token, epoch and what
    /// became of the resume).
    ///
    /// # Errors
    /// The status the server refused the stream with.
    pub fn open_session(
        &self,
        username: &str,
        resume: Option<ResumeRequest>,
        timeout: Duration,
    ) -> Result<(Inbox, Connected), RpcStatus> {
        self.open_session_with(username, resume, &[], timeout)
    }

    /// Opens `username`'s inbox asking for the extra `events` (membership
    /// changes, typing notices) besides messages, and waits up to
    /// `timeout` for `connected`.
    ///
    /// # Errors
    /// The status the server refused the stream with.
    pub fn open_inbox_with(
        &self,
        username: &str,
        events: &[EventType],
        timeout: Duration,
    ) -> Result<Inbox, RpcStatus> {
        self.open_session_with(username, None, events, timeout)
            .map(|(inbox, _)| inbox)
    }

    /// Like [`Api::open_session`], asking for the extra `events` too: the
    /// stream then also carries [`InboxEvent::Membership`] and
    /// [`InboxEvent::Typing`] as asked.
    ///
    /// # Errors
    /// The status the server refused the stream with.
    pub fn open_session_with(
        &self,
        username: &str,
        resume: Option<ResumeRequest>,
        events: &[EventType],
        timeout: Duration,
    ) -> Result<(Inbox, Connected), RpcStatus> {
        let mut request = ConnectRequest::new();
        request.username = username.to_owned();
        request.resume = resume.into();
        request.events = events.iter().map(|&event| event.into()).collect();
        let stream = self
            .client
            .connect_opt(&request, self.connect_options(username))
            .map_err(status_of)?;
        let inbox = Inbox::spawn(stream);
        match inbox.next_event(timeout) {
            Some(InboxEvent::Connected(connected)) if connected.username == username => {
                Ok((inbox, connected))
            }
            Some(InboxEvent::Connected(connected)) => Err(RpcStatus::with_message(
                RpcStatusCode::INTERNAL,
                format!("connected as {:?}, not {username:?}", connected.username),
            )),
            Some(InboxEvent::Messages(_) | InboxEvent::Membership(_) | InboxEvent::Typing(_)) => {
                Err(RpcStatus::with_message(
                    RpcStatusCode::INTERNAL,
                    "an event came before `connected`".into(),
                ))
            }
            Some(InboxEvent::Ended(status)) => Err(status),
            None => Err(RpcStatus::with_message(
                RpcStatusCode::DEADLINE_EXCEEDED,
                "no `connected` event in time".into(),
            )),
        }
    }
}

/// The first address `address` (HOST:PORT) resolves to.
///
/// # Errors
/// `invalid server address ...` when it is not HOST:PORT with a port of
/// 1-65535; `cannot resolve ...` when the host has no address.
pub fn resolve(address: &str) -> Result<SocketAddr, String> {
    let invalid =
        || format!("invalid server address {address:?}: expected HOST:PORT, e.g. 127.0.0.1:13111");
    let (host, port) = address.rsplit_once(':').ok_or_else(invalid)?;
    let valid_port = port.parse::<u16>().is_ok_and(|port| port != 0);
    if host.is_empty() || !valid_port {
        return Err(invalid());
    }
    let mut found = address
        .to_socket_addrs()
        .map_err(|error| format!("cannot resolve the server address {address:?}: {error}"))?;
    found
        .next()
        .ok_or_else(|| format!("cannot resolve the server address {address:?}: no address"))
}

/// Why a TCP connect failed, in a few lower-case words.
fn connect_failure(error: &io::Error, timeout: Duration) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::TimedOut => format!("no answer within {}s", timeout.as_secs()),
        _ => error.to_string(),
    }
}

/// Opens `username`'s stream and reads `connected`, and then nothing more:
/// a client that has stopped reading, as the slow-consumer rule sees it.
///
/// # Errors
/// The status the server refused the stream with.
pub fn open_unread(
    api: &Api,
    username: &str,
) -> Result<ClientSStreamReceiver<ConnectResponse>, RpcStatus> {
    open_unread_session(api, username, None).map(|(stream, _)| stream)
}

/// Like [`open_unread`], asking to resume the session `resume` names when
/// given; returns the `connected` event beside the stream.
///
/// # Errors
/// The status the server refused the stream with; INTERNAL when its first
/// event is not `connected`.
pub fn open_unread_session(
    api: &Api,
    username: &str,
    resume: Option<ResumeRequest>,
) -> Result<(ClientSStreamReceiver<ConnectResponse>, Connected), RpcStatus> {
    let mut request = ConnectRequest::new();
    request.username = username.to_owned();
    request.resume = resume.into();
    let mut stream = api
        .client
        .connect_opt(&request, api.connect_options(username))
        .map_err(status_of)?;
    match futures::executor::block_on(stream.next()) {
        Some(Ok(ConnectResponse {
            event: Some(connect_response::Event::Connected(connected)),
            ..
        })) => Ok((stream, connected)),
        Some(Ok(_)) => Err(RpcStatus::with_message(
            RpcStatusCode::INTERNAL,
            "the first event is not `connected`".into(),
        )),
        Some(Err(error)) => Err(status_of(error)),
        None => Err(RpcStatus::with_message(
            RpcStatusCode::INTERNAL,
            "the stream ended without a status".into(),
        )),
    }
}

/// Call options carrying `authorization: Bearer <token>`; none if the
/// token cannot go in a header.
pub fn bearer(token: &str) -> CallOption {
    let mut headers = MetadataBuilder::new();
    if headers
        .add_str("authorization", &format!("Bearer {token}"))
        .is_err()
    {
        return CallOption::default();
    }
    CallOption::default().headers(headers.build())
}

/// A TLS channel to `address` trusting `tls.ca`, with the client's own
/// certificate when it has one.
fn secure_channel(
    builder: ChannelBuilder,
    tls: &TlsOptions,
    address: &str,
) -> Result<grpcio::Channel, String> {
    let mut pem = std::iter::once(&tls.ca).chain(tls.identity.iter().flat_map(|(c, k)| [c, k]));
    if pem.any(|bytes| bytes.contains(&0)) {
        return Err("a TLS file holds a NUL byte: not PEM".to_owned());
    }
    let mut credentials = grpcio::ChannelCredentialsBuilder::new().root_cert(tls.ca.clone());
    if let Some((cert, key)) = &tls.identity {
        credentials = credentials.cert(cert.clone(), key.clone());
    }
    let builder = match &tls.server_name {
        Some(name) => builder.override_ssl_target(name.clone()),
        None => builder,
    };
    Ok(builder
        .set_credentials(credentials.build())
        .connect(address))
}

/// Reads what is left of `stream` on a helper thread and returns the status
/// it ends with, or `None` if it has not ended within `timeout`.
pub fn final_status(
    mut stream: ClientSStreamReceiver<ConnectResponse>,
    timeout: Duration,
) -> Option<RpcStatus> {
    let (done, result) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let status = futures::executor::block_on(async {
            while let Some(item) = stream.next().await {
                if let Err(error) = item {
                    return status_of(error);
                }
            }
            RpcStatus::ok()
        });
        let _ = done.send(status);
    });
    result.recv_timeout(timeout).ok()
}

/// The status carried by a grpcio error (transport errors become
/// UNAVAILABLE, the way other gRPC clients report them).
pub fn status_of(error: grpcio::Error) -> RpcStatus {
    match error {
        grpcio::Error::RpcFailure(status) => status,
        other => RpcStatus::with_message(RpcStatusCode::UNAVAILABLE, other.to_string()),
    }
}

/// One event read from a Connect stream.
#[derive(Debug, Clone)]
pub enum InboxEvent {
    /// The `connected` event: the username, the resume token, the epoch
    /// and what became of a resume.
    Connected(Connected),
    /// A `delivery`: its messages, in order.
    Messages(Vec<Message>),
    /// A member joined, left, disconnected from or was removed from one of
    /// the user's groups (only on a stream that asked for
    /// `EVENT_TYPE_MEMBERSHIP`), in its place among the group's messages.
    Membership(MembershipChange),
    /// Someone started typing to the user or in one of its groups (only on
    /// a stream that asked for `EVENT_TYPE_TYPING`).
    Typing(TypingStarted),
    /// The stream ended with this status (OK if it ended without one).
    Ended(RpcStatus),
}

/// A Connect stream read on a background thread. Dropping it cancels the
/// stream, which disconnects the user.
pub struct Inbox {
    events: Receiver<InboxEvent>,
    cancel: Option<oneshot::Sender<()>>,
    reader: Option<JoinHandle<()>>,
}

impl Inbox {
    fn spawn(mut stream: ClientSStreamReceiver<ConnectResponse>) -> Inbox {
        let (sender, events) = crossbeam_channel::unbounded();
        let (cancel, mut cancelled) = oneshot::channel::<()>();
        let reader = std::thread::spawn(move || loop {
            let next = futures::executor::block_on(future::select(stream.next(), &mut cancelled));
            let event = match next {
                future::Either::Left((Some(Ok(response)), _)) => match response.event {
                    Some(connect_response::Event::Connected(c)) => InboxEvent::Connected(c),
                    Some(connect_response::Event::Delivery(d)) => InboxEvent::Messages(d.messages),
                    Some(connect_response::Event::Membership(m)) => InboxEvent::Membership(m),
                    Some(connect_response::Event::Typing(t)) => InboxEvent::Typing(t),
                    // An event kind this client does not know yet.
                    Some(_) | None => continue,
                },
                future::Either::Left((Some(Err(error)), _)) => InboxEvent::Ended(status_of(error)),
                future::Either::Left((None, _)) => InboxEvent::Ended(RpcStatus::ok()),
                // Cancelled: dropping `stream` on return cancels the call.
                future::Either::Right(_) => return,
            };
            let ended = matches!(event, InboxEvent::Ended(_));
            if sender.send(event).is_err() || ended {
                return;
            }
        });
        Inbox {
            events,
            cancel: Some(cancel),
            reader: Some(reader),
        }
    }

    /// The next event, waiting up to `timeout`; `None` if none came.
    pub fn next_event(&self, timeout: Duration) -> Option<InboxEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    /// The event channel, for callers that select over several inboxes.
    pub fn events(&self) -> &Receiver<InboxEvent> {
        &self.events
    }

    /// Cancels the stream and waits for the reader to stop.
    pub fn close(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        if let Some(cancel) = self.cancel.take() {
            let _ = cancel.send(());
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.shut();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_without_host_or_port_is_invalid() {
        for address in [
            "15111",
            ":15111",
            "localhost:",
            "localhost:http",
            "127.0.0.1:0",
            "1.2.3.4:70000",
        ] {
            let error = resolve(address).unwrap_err();
            assert!(
                error.starts_with("invalid server address"),
                "{address}: {error}"
            );
        }
    }

    #[test]
    fn host_and_port_resolve() {
        assert_eq!(
            resolve("127.0.0.1:13111"),
            Ok(SocketAddr::from(([127, 0, 0, 1], 13111)))
        );
        assert_eq!(resolve("[::1]:80").map(|a| a.port()), Ok(80));
    }

    #[test]
    fn a_refused_connection_fails_at_once_with_one_line() {
        // A port just bound and released: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|a| a.port())
            .unwrap();
        let address = format!("127.0.0.1:{port}");
        let error = Api::connect(&address, Duration::from_secs(30)).err();
        assert_eq!(
            error,
            Some(format!(
                "cannot reach a chat server at {address}: connection refused"
            ))
        );
    }
}
