//! at-contract §2, last row: a module whose store does not open with its own device key (a
//! clone, a tampered store) still answers, reads as sealed, and refuses every credential
//! operation with +CME ERROR: 1679, revealing nothing. A single damaged record is reported as
//! such, and the rest of the store keeps working.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use sealcell_modem::{Channel, Module};
use sealcell_testkit::transcript::pki_fixture;
use sealcell_testkit::{at, boot};

fn import(m: &mut Module, c: &mut Channel, kind: u8, name: &str, file: &str) -> String {
    let data = pki_fixture(file).unwrap();
    let prompt = at(
        m,
        c,
        format!("AT+USECMNG=0,{kind},\"{name}\",{}\r", data.len()).as_bytes(),
    );
    assert_eq!(prompt, "\r\n>", "{name}");
    at(m, c, &data)
}

fn sealed_module(dir: &Path) {
    let (mut m, mut c) = boot(dir);
    assert_eq!(
        at(&mut m, &mut c, b"AT+USECCFG=0,1,\"my_pwd\"\r"),
        "\r\nOK\r\n"
    );
    for (kind, name, file) in [
        (0, "RootCA", "root.pem"),
        (1, "Device", "client.pem"),
        (2, "DeviceKey", "client-pkcs1.pem"),
    ] {
        assert!(import(&mut m, &mut c, kind, name, file).ends_with("\r\nOK\r\n"));
    }
    assert!(at(&mut m, &mut c, b"AT+UDWNFILE=\"k.der\",3\r").ends_with(">"));
    at(&mut m, &mut c, b"abc");
}

fn copy_dir(from: &Path, to: &Path, skip_otp: bool) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if skip_otp && name == "otp" {
            continue;
        }
        let dest = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_dir(&entry.path(), &dest, false);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// Every credential operation of a module whose store does not open.
fn assert_store_refuses_everything(m: &mut Module, c: &mut Channel) {
    const SEC: &str = "\r\n+CME ERROR: 1679\r\n";
    assert_eq!(
        at(m, c, b"AT+USECCFG?\r"),
        "\r\n+USECCFG: 0,1\r\n\r\nOK\r\n",
        "still reads as sealed"
    );
    assert_eq!(
        at(m, c, b"AT+USECCFG=0,1,\"again\"\r"),
        "\r\n+CME ERROR: 3\r\n"
    );
    assert_eq!(at(m, c, b"AT+USECMNG=3\r"), SEC);
    assert_eq!(at(m, c, b"AT+USECMNG=3,2\r"), SEC);
    assert_eq!(at(m, c, b"AT+USECMNG=4,2,\"DeviceKey\"\r"), SEC);
    assert_eq!(
        at(m, c, b"AT+USECMNG=4,0,\"NoSuchItem\"\r"),
        SEC,
        "no existence oracle"
    );
    assert_eq!(at(m, c, b"AT+USECMNG=2,0,\"RootCA\"\r"), SEC);
    assert_eq!(
        at(m, c, b"AT+USECMNG=0,0,\"New\",100\r"),
        SEC,
        "refused before the prompt"
    );
    assert_eq!(at(m, c, b"AT+USECMNG=1,2,\"New\",\"k.der\"\r"), SEC);
    assert_eq!(
        at(m, c, b"AT+CMEE=2;+USECMNG=3\r"),
        "\r\n+CME ERROR: SEC data inconsistent or unsupported\r\n"
    );
    at(m, c, b"AT+CMEE=1\r");
    // The module itself keeps answering.
    assert_eq!(at(m, c, b"AT+CGMI\r"), "\r\nu-blox\r\n\r\nOK\r\n");
    assert!(at(m, c, b"AT+ULSTFILE\r").contains("\"k.der\""));
}

#[test]
fn a_clone_without_the_device_key_reveals_nothing() {
    let original = tempfile::tempdir().unwrap();
    sealed_module(original.path());
    let clone = tempfile::tempdir().unwrap();
    copy_dir(original.path(), clone.path(), true);
    let (mut m, mut c) = boot(clone.path());
    assert!(m.is_sealed());
    assert!(m.store().problem().is_some());
    assert_store_refuses_everything(&mut m, &mut c);
    // The original is untouched by all this.
    let (mut m, mut c) = boot(original.path());
    assert!(at(&mut m, &mut c, b"AT+USECMNG=3\r").contains("\"PK\",\"DeviceKey\""));
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn one_flipped_byte_in_any_store_file_is_detected_and_the_module_keeps_answering() {
    let original = tempfile::tempdir().unwrap();
    sealed_module(original.path());
    let store_files: Vec<PathBuf> = files_under(&original.path().join("sec"));
    assert_eq!(
        store_files.len(),
        6,
        "seal, two manifests, three records: {store_files:?}"
    );
    let mut seen_record_damage = 0;
    for file in &store_files {
        let rel = file.strip_prefix(original.path()).unwrap();
        let copy = tempfile::tempdir().unwrap();
        copy_dir(original.path(), copy.path(), false);
        let target = copy.path().join(rel);
        let mut bytes = std::fs::read(&target).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x80;
        std::fs::write(&target, &bytes).unwrap();

        let (mut m, mut c) = boot(copy.path());
        let name = rel.display().to_string();
        let problem = m.store().problem().map(ToString::to_string);
        if let Some(problem) = problem {
            // seal.bin or the manifest in use: the whole store is refused.
            assert!(
                name == "sec/seal.bin" || name.starts_with("sec/manifest."),
                "{name}: {problem}"
            );
            assert_store_refuses_everything(&mut m, &mut c);
        } else if name.starts_with("sec/manifest.") {
            // The stale slot: reported, not in use.
            assert!(!m.store().warnings().is_empty(), "{name}");
            assert_eq!(
                at(&mut m, &mut c, b"AT+USECMNG=3\r")
                    .matches("\r\n\"")
                    .count(),
                3,
                "{name}"
            );
        } else {
            // One record: that item alone is refused and unlisted; the others work.
            seen_record_damage += 1;
            let list = at(&mut m, &mut c, b"AT+USECMNG=3\r");
            assert_eq!(list.matches("\r\n\"").count(), 2, "{name}: {list:?}");
            let refused: Vec<&str> = [(0, "RootCA"), (1, "Device"), (2, "DeviceKey")]
                .iter()
                .filter(|(k, n)| {
                    at(
                        &mut m,
                        &mut c,
                        format!("AT+USECMNG=4,{k},\"{n}\"\r").as_bytes(),
                    ) == "\r\n+CME ERROR: 1679\r\n"
                })
                .map(|(_, n)| *n)
                .collect();
            assert_eq!(
                refused.len(),
                1,
                "{name}: exactly the damaged item is refused"
            );
            assert!(
                !list.contains(&format!("\"{}\"", refused[0])),
                "{name}: a damaged item is not listed"
            );
            // Replacing the damaged item repairs the store.
            let (kind, file) = match refused[0] {
                "RootCA" => (0, "root.pem"),
                "Device" => (1, "client.pem"),
                _ => (2, "client-pkcs1.pem"),
            };
            assert!(import(&mut m, &mut c, kind, refused[0], file).ends_with("\r\nOK\r\n"));
            assert_eq!(
                at(&mut m, &mut c, b"AT+USECMNG=3\r")
                    .matches("\r\n\"")
                    .count(),
                3
            );
        }
        assert_eq!(
            at(&mut m, &mut c, b"AT\r"),
            "\r\nOK\r\n",
            "{name}: the module keeps answering"
        );
    }
    assert_eq!(seen_record_damage, 3);
}

#[test]
fn security_profile_secrets_never_reach_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut c) = boot(dir.path());
    for cmd in [
        &b"AT+USECPRF=2,7,\"Key-Password-7781\"\r"[..],
        b"AT+USECPRF=2,8,\"Psk-Value-9923\"\r",
        b"AT+USECPRF=2,13,2,\"c2Vzc2lvbg==\",\"TWFzdGVyLUtleS02NjU=\"\r",
        b"AT+USECPRF=2,4,\"visible.example.com\"\r",
    ] {
        assert_eq!(at(&mut m, &mut c, cmd), "\r\nOK\r\n");
    }
    drop((m, c));
    let mut all = Vec::new();
    for f in files_under(dir.path()) {
        all.extend(std::fs::read(f).unwrap());
    }
    let text = String::from_utf8_lossy(&all);
    assert!(text.contains("visible.example.com"), "profiles persist");
    for secret in [
        "Key-Password-7781",
        "Psk-Value-9923",
        "TWFzdGVyLUtleS02NjU=",
    ] {
        assert!(!text.contains(secret), "{secret} reached the disk");
    }
}
