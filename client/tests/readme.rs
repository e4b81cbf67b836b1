//! Every shell line of README.md's "Quick start", "Client" and "Running
//! several nodes" sections runs as written, so the README cannot drift from
//! the code. A line this test
//! does not know fails it: a new line needs a plan here.
//!
//! What "as written" means here, line by line:
//! - `cargo run -p chat-client -- ARGS` lines run with bash exactly as
//!   written, but with the `chat-client` binary cargo built for this test in
//!   place of `cargo run -p chat-client --` and `--server ADDRESS` added:
//!   the README's lines use the default `127.0.0.1:13111`; the test starts a
//!   real server on a free port instead (and puts its address in place of
//!   `127.0.0.1:13111` wherever a line spells it out).
//! - `cargo run` (the server) is checked by starting the server the way the
//!   binary does, with its default flags but for the port (this crate links
//!   the server's library; its binary is not built for the client's tests),
//!   and reaching it.
//! - `make TARGET` lines are checked with `make -n TARGET` (the target
//!   exists and runs the cargo command it is documented to run); what that
//!   command does is checked as for the cargo lines above. The real targets
//!   build in release mode, which takes many minutes.
//! - `scripts/gen.sh` is not run here: it installs protoc when it is
//!   missing, which needs the network; `make check-generated`, part of
//!   `make test`, runs it.
//!
//! Every command is stopped if it has not ended within its time limit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use chat_client::api::Api;
use chat_server::config::Config;
use chat_server::logging;
use chat_server::server::{start, RunningServer};

/// The longest one README line may take (the demo is the slowest).
const LIMIT: Duration = Duration::from_secs(120);

/// The repository, from the package's directory as the test runner gives it
/// when the test runs (a build cache shared by several checkouts may hold
/// this binary built in another one).
fn repo_root() -> PathBuf {
    let package = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    package.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The shell lines of the `## TITLE` section's ```sh blocks, comments and
/// comment-only continuation lines dropped.
fn shell_lines(readme: &str, title: &str) -> Vec<String> {
    let start = readme
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("README.md has no section {title:?}"));
    let section = &readme[start + 1..];
    let section = &section[..section[3..]
        .find("\n## ")
        .map_or(section.len(), |end| end + 3)];
    let mut lines = Vec::new();
    let mut in_sh = false;
    for line in section.lines() {
        match (in_sh, line) {
            (false, "```sh") => in_sh = true,
            (true, "```") => in_sh = false,
            (true, line) if !line.trim_start().starts_with('#') => {
                let command = line.split(" #").next().unwrap_or(line).trim();
                lines.push(command.to_owned());
            }
            _ => {}
        }
    }
    lines
}

fn start_server() -> RunningServer {
    start(&Config::with_listen("127.0.0.1:0"), &logging::discard()).expect("server starts")
}

/// Runs `command` with bash in the repository root, `stdin` as its input,
/// stopping it after [`LIMIT`].
fn bash(command: &str, stdin: &str) -> Output {
    let mut child = Command::new("bash")
        .args(["-c", command])
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash starts");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).expect("write stdin");
    }
    let deadline = Instant::now() + LIMIT;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`{command}` did not end within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// Runs a `cargo run -p chat-client -- ...` line against `address`.
#[track_caller]
fn run_client_line(line: &str, address: &str, stdin: &str) -> String {
    let binary = env!("CARGO_BIN_EXE_chat-client");
    let command = line
        .replace(
            "cargo run -p chat-client --",
            &format!("'{binary}' --server {address}"),
        )
        .replace("127.0.0.1:13111", address);
    let output = bash(&command, stdin);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "`{line}` (run as `{command}`) failed: {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `make -n TARGET` prints `recipe`.
#[track_caller]
fn assert_make_runs(target: &str, recipe: &str) {
    let output = Command::new("make")
        .args(["-n", target])
        .current_dir(repo_root())
        .output()
        .expect("make runs");
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && shown.contains(recipe),
        "`make {target}` should run `{recipe}`; make -n shows:\n{shown}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[track_caller]
fn assert_contains(stdout: &str, line: &str, wanted: &[&str]) {
    for text in wanted {
        assert!(
            stdout.contains(text),
            "`{line}` printed no {text:?}:\n{stdout}"
        );
    }
}

#[test]
fn every_quick_start_and_client_shell_line_runs_as_written() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let mut lines = shell_lines(&readme, "Quick start");
    lines.extend(shell_lines(&readme, "Client"));
    assert!(lines.len() >= 6, "too few shell lines found: {lines:?}");

    let server = start_server();
    let address = format!("127.0.0.1:{}", server.port());
    for line in &lines {
        match line.as_str() {
            "make run-server" => {
                assert_make_runs("run-server", "cargo run --release --bin chat-server --");
                let other = start_server();
                Api::connect(&format!("127.0.0.1:{}", other.port()), LIMIT)
                    .expect("the server it starts serves");
                other.stop();
            }
            "cargo run" => {
                Api::connect(&address, LIMIT).expect("the server serves");
            }
            "make run-client" => {
                assert_make_runs(
                    "run-client",
                    "cargo run --release -p chat-client -- --server 127.0.0.1:13111 demo",
                );
                run_client_line("cargo run -p chat-client -- demo", &address, "");
            }
            "scripts/gen.sh" => {}
            "cargo run -p chat-client -- demo" => {
                let stdout = run_client_line(line, &address, "");
                assert_contains(&stdout, line, &["[demo]"]);
            }
            "cargo run -p chat-client -- chat --user alice" => {
                let stdout = run_client_line(line, &address, "/LIST\n/quit\n");
                assert_contains(&stdout, line, &["connected to", "  user alice"]);
            }
            "cargo run -p chat-client -- chat --help" => {
                let stdout = run_client_line(line, &address, "");
                assert_contains(&stdout, line, &["/to NAME", "Ctrl-W", "1-64 ASCII"]);
            }
            line if line.starts_with("printf ") && line.contains("chat --user bob") => {
                let stdout = run_client_line(line, &address, "");
                assert_contains(
                    &stdout,
                    line,
                    &[
                        "created #general",
                        "[#general] bob: hello, group",
                        "group #general (1 member, joined)",
                    ],
                );
                assert_eq!(
                    stdout.matches("bob: hello, group").count(),
                    1,
                    "the group line shows once:\n{stdout}"
                );
            }
            other => panic!("README line with no plan in this test: {other:?}"),
        }
    }
    server.stop();
}

/// A redis-server this test started, killed by its PID on drop.
struct Redis(std::process::Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// Every shell line of "Running several nodes", as written, with free
/// ports in place of 6379, 13111 and 13112: the `redis-server` line runs
/// with bash (in the foreground of a child this test stops), each
/// `cargo run --release -- FLAGS &` node starts in-process from exactly
/// those flags (parsed as the binary parses them), and the two
/// `chat-client` lines run the real client: bob's waits while alice's,
/// with piped input, sends to bob across the nodes.
#[test]
fn the_running_several_nodes_lines_run_as_written() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let lines = shell_lines(&readme, "Running several nodes");
    let ports = [
        ("6379", free_port().to_string()),
        ("13111", free_port().to_string()),
        ("13112", free_port().to_string()),
    ];
    let local = |line: &str| {
        ports
            .iter()
            .fold(line.to_owned(), |line, (from, to)| line.replace(from, to))
    };
    let mut redis = None;
    let mut nodes = Vec::new();
    let mut clients = Vec::new();
    for line in &lines {
        let line = local(line);
        if let Some(command) = line.strip_prefix("redis-server ") {
            let command = command.trim_end_matches('&').trim();
            let child = Command::new("bash")
                .args(["-c", &format!("exec redis-server {command}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server starts (scripts/install-deps.sh redis installs it)");
            redis = Some(Redis(child));
            let redis_port = &ports[0].1;
            let deadline = Instant::now() + Duration::from_secs(5);
            while std::net::TcpStream::connect(format!("127.0.0.1:{redis_port}")).is_err() {
                assert!(Instant::now() < deadline, "redis-server did not listen");
                std::thread::sleep(Duration::from_millis(5));
            }
        } else if let Some(flags) = line.strip_prefix("cargo run --release -- ") {
            let flags = flags.trim_end_matches('&').split_whitespace();
            let opt = <chat_server::config::Opt as structopt::StructOpt>::from_iter_safe(
                std::iter::once("chat-server").chain(flags),
            )
            .expect("the README's flags parse");
            let config = Config::from_opt(opt).expect("the README's flags are valid");
            assert!(config.cluster.is_some(), "{line}: a cluster node");
            nodes.push(start(&config, &logging::discard()).expect("the node starts"));
        } else if line.starts_with("cargo run -p chat-client -- ") {
            clients.push(line.replace(
                "cargo run -p chat-client --",
                &format!("'{}'", env!("CARGO_BIN_EXE_chat-client")),
            ));
        } else {
            panic!("README line with no plan in this test: {line:?}");
        }
    }
    assert!(redis.is_some(), "the section starts a redis-server");
    assert_eq!(nodes.len(), 2, "two nodes");
    let [alice, bob] = clients.as_slice() else {
        panic!("two chat-client lines, got {clients:?}");
    };
    // Bob waits for a message on the second node.
    let mut bob = Command::new("bash")
        .args(["-c", bob])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bob's client starts");
    let bob_out = bob.stdout.take().expect("bob's stdout");
    let (lines_tx, bob_lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(bob_out)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines_tx.send(line);
        }
    });
    let wait_for = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match bob_lines.recv_timeout(left) {
                Ok(line) if line.contains(what) => return,
                Ok(_) => continue,
                Err(_) => panic!("bob's client never printed {what:?}"),
            }
        }
    };
    wait_for("connected to");
    let output = bash(alice, "/to bob\nhello across nodes\n/quit\n");
    assert!(
        output.status.success(),
        "alice's client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    wait_for("alice: hello across nodes");
    drop(bob.stdin.take());
    let _ = bob.wait();
    for node in nodes {
        node.stop();
    }
    drop(redis);
}
