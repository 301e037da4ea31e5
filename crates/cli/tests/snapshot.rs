//! `sealcell modem snapshot` / `restore` on the real binary (cli.md, "A test bench"): a seal
//! rehearsed and undone, the same identity and device key after; a restore that refuses a
//! non-empty directory, and a damaged or hostile snapshot that changes nothing.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{BIN, Modem, TEST_IMEI};

fn sealcell(args: &[&str], paths: &[&Path]) -> Output {
    Command::new(BIN).args(args).args(paths).output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn status(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(&sealcell(
        &["modem", "status", "--json", "--data"],
        &[dir],
    )))
    .unwrap()
}

#[test]
fn a_seal_is_rehearsed_then_undone_with_the_same_identity() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("module");
    let snap = work.path().join("before-seal.snap");
    // A module with a credential and a file, stopped.
    let m = Modem::start(&dir, &["--imei", TEST_IMEI]);
    let mut at = m.connect();
    at.cmd("AT+CMEE=1");
    assert!(at.cmd("AT+UDWNFILE=\"notes\",5").ends_with(">"));
    at.send(b"hello");
    at.read_until(b"OK\r\n");
    m.kill();
    let duk = std::fs::read(dir.join("otp/duk.bin")).unwrap();

    let out = ok(&sealcell(&["modem", "snapshot", "--data"], &[&dir, &snap]));
    assert!(
        out.contains(&format!("IMEI {TEST_IMEI}, not sealed")),
        "{out}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&snap).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a snapshot holds the device key");
    }

    // The irreversible step, on the emulator.
    let m = Modem::start(&dir, &["--imei", TEST_IMEI]);
    let mut at = m.connect();
    assert!(at.cmd("AT+USECCFG=0,1,\"my_pwd\"").ends_with("OK\r\n"));
    assert!(at.cmd("AT+USECCFG?").contains("+USECCFG: 0,1"));
    m.kill();
    assert_eq!(status(&dir)["sealed"], true);

    // Restore refuses the module that is there, then replaces it when told to.
    let refused = sealcell(&["modem", "restore", "--data"], &[&dir, &snap]);
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("is not empty") && err.contains("hint: "),
        "{err}"
    );
    assert_eq!(
        status(&dir)["sealed"],
        true,
        "a refused restore changes nothing"
    );
    let out = ok(&sealcell(
        &["modem", "restore", "--force", "--data"],
        &[&dir, &snap],
    ));
    assert!(
        out.contains(&format!("IMEI {TEST_IMEI}, not sealed")),
        "{out}"
    );

    // Unsealed, the same module: identity, device key, its file.
    let s = status(&dir);
    assert_eq!(s["sealed"], false);
    assert_eq!(s["imei"], TEST_IMEI);
    assert_eq!(std::fs::read(dir.join("otp/duk.bin")).unwrap(), duk);
    let m = Modem::start(&dir, &["--imei", TEST_IMEI]);
    let mut at = m.connect();
    assert!(at.cmd("AT+USECCFG?").contains("+USECCFG: 0,0"));
    assert!(at.cmd("AT+CGSN").contains(TEST_IMEI));
    assert!(
        at.cmd("AT+URDFILE=\"notes\"")
            .contains("+URDFILE: \"notes\",5,\"hello\"")
    );
    m.kill();
    // No staging directory, no temporary snapshot left beside them.
    let mut listing: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    listing.sort();
    let snap_name = snap.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(listing, [snap_name, "module".to_string()]);

    // Into a new directory, no --force needed.
    let other = work.path().join("copy");
    ok(&sealcell(&["modem", "restore", "--data"], &[&other, &snap]));
    assert_eq!(status(&other)["imei"], TEST_IMEI);
}

#[test]
fn a_damaged_or_hostile_snapshot_is_refused_and_changes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("module");
    let snap = work.path().join("m.snap");
    let m = Modem::start(&dir, &["--imei", TEST_IMEI]);
    m.kill();
    ok(&sealcell(&["modem", "snapshot", "--data"], &[&dir, &snap]));
    let good = std::fs::read(&snap).unwrap();
    let target = work.path().join("target");

    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 1;
    cases.push(("one bit flipped", flipped));
    cases.push(("truncated", good[..good.len() - 40].to_vec()));
    cases.push(("not a snapshot", b"PK\x03\x04 a zip".to_vec()));
    // A well-formed snapshot (its hash right) whose entry climbs out of the directory.
    cases.push((
        "a path with ..",
        forge(&[(2, "../escaped", b"x".as_slice())]),
    ));
    let absolute = work.path().join("abs-escaped");
    cases.push((
        "an absolute path",
        forge(&[(2, absolute.to_str().unwrap(), b"x".as_slice())]),
    ));
    cases.push(("no identity", forge(&[(2, "nvm.toml", b"".as_slice())])));
    for (what, bytes) in cases {
        std::fs::write(&snap, &bytes).unwrap();
        let out = sealcell(&["modem", "restore", "--data"], &[&target, &snap]);
        assert_eq!(out.status.code(), Some(2), "{what}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("is not a sealcell snapshot, or it is damaged"),
            "{what}: {err}"
        );
        assert!(!target.exists(), "{what}: nothing is written");
        assert!(!work.path().join("escaped").exists(), "{what}");
        assert!(!absolute.exists(), "{what}");
    }
    // Nothing to snapshot: no module there.
    let out = sealcell(&["modem", "snapshot", "--data"], &[&target, &snap]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no module"));
}

/// A snapshot of these file entries, with a right hash (v1, see `sealcell_modem::snapshot`).
fn forge(files: &[(u8, &str, &[u8])]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut out = b"sealcell-snapshot v1\n".to_vec();
    for (kind, path, content) in files {
        out.push(*kind);
        out.extend_from_slice(&(path.len() as u16).to_be_bytes());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(&0o600u32.to_be_bytes());
        out.extend_from_slice(&(content.len() as u64).to_be_bytes());
        out.extend_from_slice(content);
    }
    out.push(0);
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}
