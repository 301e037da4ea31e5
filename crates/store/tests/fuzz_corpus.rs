//! Replays the saved cargo-fuzz corpora of the store's parsers on stable.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let files: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
}

#[test]
fn credential_corpus() {
    for data in corpus("credential") {
        sealcell_store::fuzzing::credential(&data);
    }
}

#[test]
fn store_format_corpus() {
    for data in corpus("store_format") {
        sealcell_store::fuzzing::store_format(&data);
    }
}
