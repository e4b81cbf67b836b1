//! A small blocking wrapper over the generated grpcio client: one channel to
//! the server, calls that name their caller in the `authorization` header,
//! and an [`Inbox`] that reads a Connect stream on its own thread and hands
//! events over a channel, so callers can wait for them with a deadline.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use chat_proto::chat::{connect_response, ConnectRequest, ConnectResponse, Message};
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
    address: String,
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
        let socket = resolve(address)?;
        TcpStream::connect_timeout(&socket, timeout).map_err(|error| {
            format!(
                "cannot reach a chat server at {address}: {}",
                connect_failure(&error, timeout)
            )
        })?;
        let env = Arc::new(Environment::new(1));
        let channel = ChannelBuilder::new(env).connect(address);
        let ready = futures::executor::block_on(channel.wait_for_connected(timeout));
        if !ready {
            return Err(format!(
                "cannot reach a chat server at {address}: it accepts connections but does not speak gRPC"
            ));
        }
        Ok(Api {
            client: ChatServiceClient::new(channel),
            address: address.to_owned(),
        })
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
        let mut request = ConnectRequest::new();
        request.username = username.to_owned();
        let stream = self
            .client
            .connect_opt(&request, CallOption::default())
            .map_err(status_of)?;
        let inbox = Inbox::spawn(stream);
        match inbox.next_event(timeout) {
            Some(InboxEvent::Connected(name)) if name == username => Ok(inbox),
            Some(InboxEvent::Connected(name)) => Err(RpcStatus::with_message(
                RpcStatusCode::INTERNAL,
                format!("connected as {name:?}, not {username:?}"),
            )),
            Some(InboxEvent::Messages(_)) => Err(RpcStatus::with_message(
                RpcStatusCode::INTERNAL,
                "a delivery came before `connected`".into(),
            )),
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
    let mut request = ConnectRequest::new();
    request.username = username.to_owned();
    let mut stream = api
        .client
        .connect_opt(&request, CallOption::default())
        .map_err(status_of)?;
    match futures::executor::block_on(stream.next()) {
        Some(Ok(_connected)) => Ok(stream),
        Some(Err(error)) => Err(status_of(error)),
        None => Err(RpcStatus::with_message(
            RpcStatusCode::INTERNAL,
            "the stream ended without a status".into(),
        )),
    }
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
    /// The `connected` event, with the username.
    Connected(String),
    /// A `delivery`: its messages, in order.
    Messages(Vec<Message>),
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
                    Some(connect_response::Event::Connected(c)) => {
                        InboxEvent::Connected(c.username)
                    }
                    Some(connect_response::Event::Delivery(d)) => InboxEvent::Messages(d.messages),
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
