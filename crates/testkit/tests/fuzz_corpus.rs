//! Replays the saved `engine` fuzz corpus (`fuzz/corpus/engine/`) on stable.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use sealcell_modem::Module;
use sealcell_testkit::test_config;

#[test]
fn engine_corpus() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/engine");
    let tmp = tempfile::tempdir().unwrap();
    let mut config = test_config(tmp.path());
    config.fs_capacity = 1 << 20;
    let mut module = Module::open(config, sealcell_testkit::virtual_now()).unwrap();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        sealcell_modem::fuzzing::engine(&mut module, &data);
        n += 1;
    }
    assert!(n > 0, "empty corpus {}", dir.display());
}
