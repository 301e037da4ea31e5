//! Replays the saved `signature` fuzz corpus on stable.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sealcell_fw::encoding::{SignatureFormat, decode_signature};

#[test]
fn signature_corpus() {
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/signature");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        for format in [
            SignatureFormat::Auto,
            SignatureFormat::Base64,
            SignatureFormat::Hex,
            SignatureFormat::Binary,
        ] {
            if let Ok(sig) = decode_signature(&data, format) {
                assert!(!sig.is_empty());
            }
        }
        n += 1;
    }
    assert!(n > 0);
}
