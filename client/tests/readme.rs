//! Every shell line of README.md's "Quick start" and "Client" sections runs
//! as written, so the README cannot drift from the code. A line this test
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

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
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
