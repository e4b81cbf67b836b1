//! The README quotes the Python and Node example clients that the interop
//! suites run, and the shell token minter that `tests/tokens.rs` runs; this
//! keeps the quotes identical to the files. (The Node suite
//! checks the README's `buf curl` lines the same way.)

mod common;

use common::manifest_dir;

fn read(path: &str) -> String {
    std::fs::read_to_string(manifest_dir().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The part of `text` from the first line starting with `from` up to (not
/// including) the first line starting with `until`, trailing blank lines
/// dropped.
fn excerpt(text: &str, from: &str, until: &str) -> String {
    let start = text
        .find(from)
        .unwrap_or_else(|| panic!("{from:?} not found"));
    let end = start
        + text[start..]
            .find(until)
            .unwrap_or_else(|| panic!("{until:?} not found"));
    format!("{}\n", text[start..end].trim_end())
}

#[test]
fn the_readme_quotes_the_python_example_as_the_tests_run_it() {
    let example = read("tests/interop/python/example.py");
    let snippet = excerpt(&example, "import grpc", "if __name__ == \"__main__\":");
    let readme = read("README.md");
    assert!(
        readme.contains(&format!("```python\n{snippet}```")),
        "README.md's Python snippet differs from tests/interop/python/example.py:\n{snippet}"
    );
}

#[test]
fn the_readme_quotes_the_node_example_as_the_tests_run_it() {
    let example = read("tests/interop/node/example.mjs");
    let snippet = excerpt(&example, "import grpc from", "// Run as a script");
    let readme = read("README.md");
    assert!(
        readme.contains(&format!("```js\n{snippet}```")),
        "README.md's Node snippet differs from tests/interop/node/example.mjs:\n{snippet}"
    );
}

/// Asserts that the README quotes `file` from the line starting with
/// `from` up to `until`, in a `fence` code block.
#[track_caller]
fn assert_quoted(file: &str, from: &str, until: &str, fence: &str) {
    let snippet = excerpt(&read(file), from, until);
    let readme = read("README.md");
    assert!(
        readme.contains(&format!("```{fence}\n{snippet}```")),
        "README.md's {fence} snippet differs from {file}:\n{snippet}"
    );
}

#[test]
fn the_readme_quotes_the_secure_examples_as_the_tests_run_them() {
    let until = "if __name__ == \"__main__\":";
    let file = "tests/interop/python/example_secure.py";
    assert_quoted(file, "import time", until, "python");
    let file = "tests/interop/node/example-secure.mjs";
    assert_quoted(file, "import grpc from", "// Run as a script", "js");
}

#[test]
fn the_readme_quotes_the_shell_token_minter_as_the_tests_run_it() {
    let file = "scripts/mint-token.sh";
    let snippet = excerpt(&read(file), "# --- mint ---", "# --- end ---");
    let body = snippet.trim_start_matches("# --- mint ---\n");
    let readme = read("README.md");
    assert!(
        readme.contains(&format!("```sh\n{body}```")),
        "README.md's shell token minter differs from {file}:\n{body}"
    );
}
