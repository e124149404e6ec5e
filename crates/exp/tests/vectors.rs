//! The shared grid-id vectors (tests/vectors.json): the Rust implementation and the Python
//! reference (docs/grid_id.py) must both reproduce every one.

use std::path::PathBuf;
use std::process::Command;

use dbopt_exp::{DEFAULT_ID_CHARS, canonicalize, grid_id};
use serde_json::Value;

/// This package's directory: cargo's run-time `CARGO_MANIFEST_DIR`, so a test binary kept
/// in a build cache shared between checkouts reads the files of the checkout that runs it.
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

fn vectors_path() -> PathBuf {
    manifest_dir().join("tests/vectors.json")
}

fn text_field<'a>(vector: &'a Value, field: &str) -> &'a str {
    vector[field]
        .as_str()
        .unwrap_or_else(|| panic!("vector {vector}: `{field}` is not a string"))
}

#[test]
fn rust_reproduces_every_vector() {
    let text = std::fs::read_to_string(vectors_path()).unwrap();
    let vectors: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(vectors.len() >= 12, "only {} vectors", vectors.len());
    for vector in &vectors {
        let name = text_field(vector, "name");
        let extra: Vec<String> = vector
            .get("extra_volatile")
            .map(|v| serde_json::from_value(v.clone()).unwrap())
            .unwrap_or_default();
        let result = serde_json::from_str::<Value>(text_field(vector, "params_text"))
            .map_err(|e| e.to_string())
            .and_then(|params| canonicalize(&params, &extra).map_err(|e| e.to_string()));
        if vector.get("error").is_some() {
            assert!(result.is_err(), "{name}: expected an error, got {result:?}");
            continue;
        }
        let canonical = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            canonical.text,
            text_field(vector, "canonical"),
            "{name}: canonical text"
        );
        assert_eq!(
            canonical.hash,
            text_field(vector, "sha256"),
            "{name}: sha256"
        );
        assert_eq!(
            grid_id(&canonical.hash, DEFAULT_ID_CHARS),
            text_field(vector, "grid_id"),
            "{name}: grid id"
        );
        assert_eq!(
            canonical.id(DEFAULT_ID_CHARS),
            text_field(vector, "grid_id"),
            "{name}"
        );
    }
}

#[test]
fn python_reference_reproduces_every_vector() {
    let script = manifest_dir().join("../../docs/grid_id.py");
    let output = Command::new("python3")
        .arg(&script)
        .arg("--check")
        .arg(vectors_path())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run python3 (needed to check docs/grid_id.py against the vectors; install Python 3): {e}")
        });
    assert!(
        output.status.success(),
        "{} --check failed ({}):\n{}{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let self_test = Command::new("python3")
        .arg(&script)
        .arg("--self-test")
        .output()
        .unwrap();
    assert!(
        self_test.status.success(),
        "{} --self-test failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&self_test.stdout)
    );
}
