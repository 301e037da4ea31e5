//! Replays the saved cargo-fuzz corpora (`fuzz/corpus/<target>/`) through the same hooks the
//! fuzz targets call, so every input the fuzzer kept runs on stable in `cargo test`.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

#[test]
fn line_assembler_corpus() {
    for data in corpus("line_assembler") {
        sealcell_at::fuzzing::line_assembler(&data);
    }
}

#[test]
fn command_parser_corpus() {
    for data in corpus("command_parser") {
        sealcell_at::fuzzing::command_parser(&data);
    }
}

#[test]
fn dte_digester_corpus() {
    for data in corpus("dte_digester") {
        sealcell_at::fuzzing::dte_digester(&data);
    }
}

#[test]
fn xmodem_corpus() {
    for data in corpus("xmodem") {
        sealcell_at::fuzzing::xmodem(&data);
    }
}

#[test]
fn vocabulary_corpus() {
    for data in corpus("vocabulary") {
        sealcell_at::fuzzing::vocabulary(&data);
    }
}

#[test]
fn cmux_corpus() {
    for data in corpus("cmux") {
        sealcell_at::fuzzing::cmux(&data);
    }
}
