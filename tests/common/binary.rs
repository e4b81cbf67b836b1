//! The real `chat-server` binary on an ephemeral loopback port, for tests
//! that signal or kill the process; killed on drop if still running.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::WAIT;

/// The real binary on an ephemeral port, killed on drop if still running.
pub struct Binary {
    pub child: Child,
    pub port: u16,
}

impl Binary {
    pub fn start() -> Binary {
        Binary::start_with(&[]).0
    }

    /// Starts the binary with `extra` flags; returns it and its log lines
    /// as they come.
    pub fn start_with(extra: &[&str]) -> (Binary, crossbeam_channel::Receiver<String>) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .args(["--listen", "127.0.0.1:0", "--threads", "2"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chat-server");
        let stderr = child.stderr.take().unwrap();
        let (port_tx, port_rx) = crossbeam_channel::bounded(1);
        let (lines_tx, lines) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if line.contains("listening") {
                    let _ = port_tx.send(port_in(&line));
                }
                let _ = lines_tx.send(line);
            }
        });
        let port = port_rx
            .recv_timeout(WAIT)
            .expect("the server logs its port")
            .expect("the port parses");
        (Binary { child, port }, lines)
    }

    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on the PID of a child this test started.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// The exit code, if it exits within `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The port in a `listening` log line, term (`port: N,`) or JSON
/// (`"port":N,`).
pub fn port_in(line: &str) -> Option<u16> {
    let start = line
        .find("port: ")
        .map(|i| i + 6)
        .or_else(|| line.find("\"port\":").map(|i| i + 7))?;
    let digits: String = line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}
