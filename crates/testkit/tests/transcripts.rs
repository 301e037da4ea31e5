//! Runs every golden transcript in `tests/transcripts/` twice: each `>` line in one chunk, and
//! one byte at a time. `SEALCELL_BLESS=1 cargo test -p sealcell-testkit --test transcripts`
//! rewrites the expected output (review the diff before committing); `SEALCELL_BLESS=<text>`
//! rewrites only the transcripts whose file name contains `<text>`.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use sealcell_testkit::transcript::{Delivery, Transcript, run};

fn transcripts() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/transcripts");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "at"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no transcripts in {}", dir.display());
    files
}

#[test]
fn golden_transcripts() {
    let bless = std::env::var("SEALCELL_BLESS").ok();
    let mut failures = Vec::new();
    for path in transcripts() {
        let text = std::fs::read_to_string(&path).unwrap();
        let t = Transcript::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.file_name().unwrap().to_string_lossy();
        if let Some(filter) = bless.as_deref() {
            if filter != "1" && !name.contains(filter) {
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            let blessed = run(&t, dir.path(), Delivery::Chunk, true)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            std::fs::write(&path, blessed.render()).unwrap();
            continue;
        }
        for delivery in [Delivery::Chunk, Delivery::Bytewise] {
            let dir = tempfile::tempdir().unwrap();
            if let Err(e) = run(&t, dir.path(), delivery, false) {
                failures.push(format!("{}: {e}", path.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} transcript failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
