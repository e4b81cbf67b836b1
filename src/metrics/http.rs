//! The `--metrics-listen` endpoint: a small HTTP/1.1 responder on one
//! thread, separate from the gRPC port. `GET /metrics` answers a scrape;
//! any other path is 404 and any other method on `/metrics` 405. Each
//! response closes its connection.
//!
//! One thread serves every connection through `poll(2)` on non-blocking
//! sockets, so a client that sends half a request, or reads its response
//! slowly, holds only its own connection: the next scrape is answered at
//! once. A request must arrive within [`HttpLimits::read_timeout`] of the
//! connection being accepted (else 408) and its response be taken within
//! as long again; at most [`HttpLimits::max_connections`] are open at once
//! (more wait in the listen backlog). [`MetricsServer::stop`] wakes the
//! thread through a socket pair and joins it.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use slog::{debug, warn, Logger};

use super::exposition::CONTENT_TYPE;
use super::Metrics;

/// The most bytes of request head read before answering 431.
const MAX_HEAD_BYTES: usize = 8 * 1024;

/// How long and how many clients the endpoint waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// How long a client has to send its request (and, again, to take the
    /// response) before its connection is closed.
    pub read_timeout: Duration,
    /// The most connections open at once.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            read_timeout: Duration::from_secs(5),
            max_connections: 64,
        }
    }
}

/// The running endpoint. Stopped by [`MetricsServer::stop`] or on drop.
#[derive(Debug)]
pub struct MetricsServer {
    port: u16,
    /// Writing a byte (or closing it) wakes the thread to stop.
    wake: Option<UnixStream>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `listen` (host:port; port 0 picks a free port) and serves
    /// scrapes of `metrics` from a new thread.
    ///
    /// # Errors
    /// The address cannot be bound, or the thread cannot be started.
    pub fn start(
        listen: &str,
        metrics: Metrics,
        limits: HttpLimits,
        log: &Logger,
    ) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let (wake, woken) = UnixStream::pair()?;
        woken.set_nonblocking(true)?;
        let responder = Responder {
            listener,
            woken,
            metrics,
            limits,
            connections: Vec::new(),
            log: log.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("chat-metrics".to_owned())
            .spawn(move || responder.run())?;
        Ok(MetricsServer {
            port,
            wake: Some(wake),
            thread: Some(thread),
        })
    }

    /// The port it listens on (the chosen one when asked for 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops serving: open connections are closed and the port is
    /// released before this returns.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        // Closing our end makes the thread's end readable (end of file).
        drop(self.wake.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The thread's state.
struct Responder {
    listener: TcpListener,
    /// Readable when the server stops.
    woken: UnixStream,
    metrics: Metrics,
    limits: HttpLimits,
    connections: Vec<Connection>,
    log: Logger,
}

/// One client connection.
struct Connection {
    stream: TcpStream,
    /// When it is closed whatever its state.
    deadline: Instant,
    /// How long each of the request and the response may take.
    timeout: Duration,
    state: State,
}

enum State {
    /// Reading the request head.
    Reading(Vec<u8>),
    /// Writing the response, from this offset.
    Writing(Vec<u8>, usize),
    /// Finished: to be closed.
    Done,
}

impl Responder {
    fn run(mut self) {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        loop {
            fds.clear();
            fds.push(pollfd(self.woken.as_raw_fd(), libc::POLLIN));
            let accepting = self.connections.len() < self.limits.max_connections;
            if accepting {
                fds.push(pollfd(self.listener.as_raw_fd(), libc::POLLIN));
            }
            for connection in &self.connections {
                let events = match connection.state {
                    State::Reading(_) => libc::POLLIN,
                    State::Writing(..) | State::Done => libc::POLLOUT,
                };
                fds.push(pollfd(connection.stream.as_raw_fd(), events));
            }
            let timeout = self.next_timeout_ms();
            // SAFETY: `fds` is a live, correctly sized array of pollfd.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if ready < 0 {
                let error = io::Error::last_os_error();
                if error.kind() == ErrorKind::Interrupted {
                    continue;
                }
                warn!(self.log, "metrics endpoint stopped"; "error" => %error);
                return;
            }
            if fds[0].revents != 0 {
                return;
            }
            let first_connection = if accepting { 2 } else { 1 };
            for (connection, fd) in self.connections.iter_mut().zip(&fds[first_connection..]) {
                if fd.revents != 0 {
                    connection.advance(&self.metrics);
                }
            }
            let now = Instant::now();
            self.connections.retain_mut(|connection| {
                if now >= connection.deadline {
                    connection.time_out();
                }
                !matches!(connection.state, State::Done)
            });
            if accepting && fds[1].revents != 0 {
                self.accept();
            }
        }
    }

    /// Milliseconds until the earliest deadline (-1: none, wait forever).
    fn next_timeout_ms(&self) -> libc::c_int {
        let Some(deadline) = self.connections.iter().map(|c| c.deadline).min() else {
            return -1;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        // Rounded up, so the deadline has passed when poll returns.
        let ms = left.as_micros().div_ceil(1000);
        libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
    }

    fn accept(&mut self) {
        while self.connections.len() < self.limits.max_connections {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    if let Err(error) = stream.set_nonblocking(true) {
                        debug!(self.log, "metrics connection dropped"; "error" => %error);
                        continue;
                    }
                    debug!(self.log, "metrics connection"; "peer" => %peer);
                    self.connections.push(Connection {
                        stream,
                        deadline: Instant::now() + self.limits.read_timeout,
                        timeout: self.limits.read_timeout,
                        state: State::Reading(Vec::new()),
                    });
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => {
                    // E.g. out of file descriptors: try again at the next wake-up.
                    debug!(self.log, "metrics accept failed"; "error" => %error);
                    return;
                }
            }
        }
    }
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

impl Connection {
    /// Reads or writes what the socket allows now.
    fn advance(&mut self, metrics: &Metrics) {
        if let State::Reading(head) = &mut self.state {
            match read_head(&mut self.stream, head) {
                Ok(Some(end)) => {
                    let response = respond(&head[..end], metrics);
                    self.start_writing(response);
                }
                Ok(None) if head.len() > MAX_HEAD_BYTES => {
                    self.start_writing(plain(431, "Request Header Fields Too Large", &[]));
                }
                Ok(None) => {}
                Err(_) => self.state = State::Done,
            }
        }
        if let State::Writing(response, written) = &mut self.state {
            loop {
                match self.stream.write(&response[*written..]) {
                    Ok(0) => break self.state = State::Done,
                    Ok(n) => {
                        *written += n;
                        if *written == response.len() {
                            break self.finish();
                        }
                    }
                    Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                    Err(error) if error.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break self.state = State::Done,
                }
            }
        }
    }

    fn start_writing(&mut self, response: Vec<u8>) {
        // A fresh allowance to take the response.
        self.deadline = Instant::now() + self.timeout;
        self.state = State::Writing(response, 0);
    }

    /// Ends the connection after the response: reads what the client sent
    /// beyond its head (so closing does not reset the connection before
    /// the client has read the response) and closes our side.
    fn finish(&mut self) {
        let mut sink = [0; 1024];
        while matches!(self.stream.read(&mut sink), Ok(n) if n > 0) {}
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        self.state = State::Done;
    }

    /// The deadline passed: a client still sending its request gets 408 (if
    /// its socket takes it at once); any other is closed.
    fn time_out(&mut self) {
        if let State::Reading(_) = self.state {
            let _ = self.stream.write(&plain(408, "Request Timeout", &[]));
        }
        self.state = State::Done;
    }
}

/// Reads into `head` until the socket has nothing more now. `Some(end)`
/// once the head is complete (`end` is where its blank line ends).
fn read_head(stream: &mut TcpStream, head: &mut Vec<u8>) -> io::Result<Option<usize>> {
    let mut chunk = [0; 2048];
    loop {
        if let Some(end) = head_end(head) {
            return Ok(Some(end));
        }
        if head.len() > MAX_HEAD_BYTES {
            return Ok(None);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(error) if error.kind() == ErrorKind::WouldBlock => return Ok(None),
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

/// Where the request head ends: after its first blank line.
fn head_end(head: &[u8]) -> Option<usize> {
    head.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
        .or_else(|| head.windows(2).position(|w| w == b"\n\n").map(|at| at + 2))
}

/// The whole response to a request whose head is `head`.
fn respond(head: &[u8], metrics: &Metrics) -> Vec<u8> {
    let Some((method, path)) = request_line(head) else {
        return plain(400, "Bad Request", &[]);
    };
    if path != "/metrics" {
        return plain(404, "Not Found", &[]);
    }
    if method != "GET" {
        return plain(405, "Method Not Allowed", &[("Allow", "GET")]);
    }
    response(200, "OK", CONTENT_TYPE, &[], metrics.scrape().as_bytes())
}

/// The method and the path (without its query) of a request line
/// `METHOD TARGET HTTP/1.x`.
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || method.is_empty() || !version.starts_with("HTTP/1.") {
        return None;
    }
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    Some((method, path))
}

fn plain(status: u16, reason: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let body = format!("{status} {reason}\n");
    response(
        status,
        reason,
        "text/plain; charset=utf-8",
        headers,
        body.as_bytes(),
    )
}

fn response(
    status: u16,
    reason: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(response: &[u8]) -> String {
        let text = String::from_utf8_lossy(response);
        text.lines().next().unwrap_or_default().to_owned()
    }

    #[test]
    fn requests_are_routed_by_path_then_method() {
        let metrics = Metrics::off();
        let cases: [(&[u8], &str); 7] = [
            (
                b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
                "HTTP/1.1 200 OK",
            ),
            (b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK"),
            (b"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
            (
                b"POST /metrics HTTP/1.1\r\n\r\n",
                "HTTP/1.1 405 Method Not Allowed",
            ),
            (
                b"HEAD /metrics HTTP/1.1\r\n\r\n",
                "HTTP/1.1 405 Method Not Allowed",
            ),
            (b"GARBAGE\r\n\r\n", "HTTP/1.1 400 Bad Request"),
            (b"GET /metrics SPDY/3\r\n\r\n", "HTTP/1.1 400 Bad Request"),
        ];
        for (request, status) in cases {
            assert_eq!(
                status_of(&respond(request, &metrics)),
                status,
                "{request:?}"
            );
        }
        let refused =
            String::from_utf8(respond(b"PUT /metrics HTTP/1.1\r\n\r\n", &metrics)).unwrap();
        assert!(refused.contains("\r\nAllow: GET\r\n"), "{refused}");
    }

    #[test]
    fn a_head_ends_at_its_first_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nrest"), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }
}
