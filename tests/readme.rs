//! The README quotes the Python and Node example clients that the interop
//! suites run; this keeps the quotes identical to the files. (The Node suite
//! checks the README's `buf curl` lines the same way.)

use std::path::Path;

fn read(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
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
