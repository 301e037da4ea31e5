//! Format stability: a store written by format v1 (`tests/golden/store-v1/`, made once by the
//! ignored test below and committed) must keep opening, with exactly these items, in every
//! later version; and what this code writes today must have the v1 layout, byte for byte where
//! the bytes are not random.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{IMEI, fixture};
use sealcell_store::credential::CredentialType::*;
use sealcell_store::crypto::{KdfParams, KdfPolicy};
use sealcell_store::format::{self, ManifestFile, RecordFile, SealFile};
use sealcell_store::{
    DeviceSecrets, FsStorage, ItemState, OpenProblem, SimStorage, Storage, Store,
};
use secrecy::SecretBox;

const GOLDEN_DUK: [u8; 32] = [0x42; 32];
const GOLDEN_PASSWORD: &[u8] = b"golden-v1-password";

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/store-v1")
}

fn golden_device() -> DeviceSecrets {
    DeviceSecrets {
        duk: SecretBox::new(Box::new(GOLDEN_DUK)),
        imei: IMEI.to_string(),
    }
}

/// Run once with `cargo test -p sealcell-store --test golden -- --ignored` to (re)make the
/// golden store; commit the result together with the reason for the change.
#[test]
#[ignore]
fn write_golden_v1() {
    let dir = golden_dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut s = Store::open(
        Arc::new(FsStorage::new(&dir)),
        golden_device(),
        KdfPolicy::INSECURE_FAST_FOR_TESTS,
    )
    .unwrap();
    s.import(TrustedRootCa, "PreSeal", &fixture("root.der"), None)
        .unwrap();
    s.seal(GOLDEN_PASSWORD).unwrap();
    s.import(TrustedRootCa, "RootCA", &fixture("root.pem"), None)
        .unwrap();
    s.import(ClientCertificate, "Device", &fixture("client.pem"), None)
        .unwrap();
    s.import(
        ClientPrivateKey,
        "DeviceKey",
        &fixture("client-pkcs1.pem"),
        None,
    )
    .unwrap();
    s.import(
        SignatureVerificationCertificate,
        "FwCert",
        &fixture("verify.der"),
        None,
    )
    .unwrap();
    s.remove(ClientCertificate, "Device").unwrap();
    s.import(ClientCertificate, "Device", &fixture("client.der"), None)
        .unwrap();
    std::fs::write(dir.join("README.md"), "Format v1 golden store made by crates/store/tests/golden.rs (write_golden_v1).\nDevice key: 32 bytes of 0x42; IMEI 490154203237518; seal password golden-v1-password; Argon2id m=64 KiB t=1 p=1 (the test-only profile).\n").unwrap();
}

#[test]
fn the_v1_golden_store_opens_with_its_items() {
    let dir = golden_dir();
    let s = Store::inspect(
        Arc::new(FsStorage::new(&dir)),
        golden_device(),
        KdfPolicy::INSECURE_FAST_FOR_TESTS,
    )
    .unwrap();
    assert!(s.is_sealed());
    assert_eq!(s.problem(), None);
    assert_eq!(s.generation(), 6);
    let facts = common::facts();
    let items: Vec<(String, String, String)> = s
        .list()
        .unwrap()
        .into_iter()
        .map(|i| match i.state {
            ItemState::Ok(f) => (i.kind.tag().to_string(), i.name, f.md5_hex()),
            ItemState::Damaged(r) => panic!("{}: {r}", i.name),
        })
        .collect();
    let want = |t: &str, n: &str, f: &str| (t.to_string(), n.to_string(), facts[f].0.clone());
    assert_eq!(
        items,
        [
            want("CA", "RootCA", "root.pem"),
            want("CC", "Device", "client.pem"),
            want("PK", "DeviceKey", "client-pkcs1.pem"),
            want("VC", "FwCert", "verify.pem"),
        ]
    );
    assert_eq!(
        s.der(ClientPrivateKey, "DeviceKey").unwrap().as_slice(),
        fixture("client-pkcs1.der").as_slice()
    );
    assert_eq!(s.plaintext_files().unwrap(), 1);
    // The production floor refuses the golden store's test-only KDF parameters.
    let strict = Store::inspect(
        Arc::new(FsStorage::new(&dir)),
        golden_device(),
        KdfPolicy::PRODUCTION,
    )
    .unwrap();
    assert_eq!(strict.problem(), Some(&OpenProblem::KdfBelowFloor));
    // Another device key opens nothing.
    let mut other = golden_device();
    other.duk = SecretBox::new(Box::new([0x43; 32]));
    let clone = Store::inspect(
        Arc::new(FsStorage::new(&dir)),
        other,
        KdfPolicy::INSECURE_FAST_FOR_TESTS,
    )
    .unwrap();
    assert_eq!(clone.problem(), Some(&OpenProblem::SealRecordUnreadable));
}

#[test]
fn the_v1_golden_files_have_the_documented_layout() {
    let dir = golden_dir();
    let seal = std::fs::read(dir.join("sec/seal.bin")).unwrap();
    assert_eq!(&seal[0..4], b"SCS1");
    assert_eq!(&seal[4..6], &1u16.to_le_bytes());
    assert_eq!(seal[6], format::KDF_ARGON2ID);
    assert_eq!(u32::from_le_bytes(seal[8..12].try_into().unwrap()), 64);
    assert_eq!(u32::from_le_bytes(seal[12..16].try_into().unwrap()), 1);
    assert_eq!(u32::from_le_bytes(seal[16..20].try_into().unwrap()), 1);
    assert_eq!(
        seal.len(),
        format::SEAL_HEADER_LEN + GOLDEN_PASSWORD.len() + 16
    );
    let counter = std::fs::read(dir.join("otp/counter")).unwrap();
    assert_eq!(counter, 6u64.to_le_bytes());
    assert_eq!(std::fs::read(dir.join("otp/sealed")).unwrap(), b"sealed\n");
    let current =
        ManifestFile::decode(&std::fs::read(dir.join("sec/manifest.b")).unwrap()).unwrap();
    assert_eq!((current.slot, current.generation), (1, 6));
    let stale = ManifestFile::decode(&std::fs::read(dir.join("sec/manifest.a")).unwrap()).unwrap();
    assert_eq!((stale.slot, stale.generation), (0, 5));
    let mut records: Vec<String> = std::fs::read_dir(dir.join("sec/cred"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    records.sort();
    let mut want = vec![
        format!("{}-1.bin", format::credential_id(TrustedRootCa, "RootCA")),
        format!(
            "{}-3.bin",
            format::credential_id(ClientPrivateKey, "DeviceKey")
        ),
        format!(
            "{}-4.bin",
            format::credential_id(SignatureVerificationCertificate, "FwCert")
        ),
        format!(
            "{}-6.bin",
            format::credential_id(ClientCertificate, "Device")
        ),
    ];
    want.sort();
    assert_eq!(
        records, want,
        "one record per live item, named <id>-<generation>.bin"
    );
    for r in &records {
        let rec =
            RecordFile::decode(&std::fs::read(dir.join("sec/cred").join(r)).unwrap()).unwrap();
        assert!(r.ends_with(&format!("-{}.bin", rec.generation)));
        assert_eq!(
            r.split('-').next().unwrap(),
            format::credential_id(rec.kind, &rec.name)
        );
    }
    let plain: Vec<_> = std::fs::read_dir(dir.join("sec/plain")).unwrap().collect();
    assert_eq!(plain.len(), 1);
}

#[test]
fn what_this_code_writes_today_is_v1() {
    let disk = SimStorage::new();
    let mut s = Store::open(
        Arc::new(disk.clone()),
        golden_device(),
        KdfPolicy::INSECURE_FAST_FOR_TESTS,
    )
    .unwrap();
    s.seal(GOLDEN_PASSWORD).unwrap();
    s.import(TrustedRootCa, "RootCA", &fixture("root.der"), None)
        .unwrap();
    let seal = SealFile::decode(&disk.read(Path::new("sec/seal.bin")).unwrap()).unwrap();
    assert_eq!(
        seal.kdf,
        KdfParams {
            m_kib: 64,
            t: 1,
            p: 1
        }
    );
    let m = ManifestFile::decode(&disk.read(Path::new("sec/manifest.a")).unwrap()).unwrap();
    assert_eq!((m.slot, m.generation), (0, 1));
    let rec_path = format!(
        "sec/cred/{}-1.bin",
        format::credential_id(TrustedRootCa, "RootCA")
    );
    let rec = RecordFile::decode(&disk.read(Path::new(&rec_path)).unwrap()).unwrap();
    assert_eq!(
        rec.header().len(),
        format::RECORD_FIXED_LEN + "RootCA".len()
    );
    assert_eq!(rec.ciphertext.len(), fixture("root.der").len() + 16);
}
