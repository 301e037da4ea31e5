//! The credential store's promises: sealed items are encrypted, device-bound, tamper-evident,
//! rollback-evident and crash-safe; the seal is once per lifetime and never lost.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{IMEI, device, facts, fixture, open};
use sealcell_store::credential::CredentialType::{self, *};
use sealcell_store::crypto::KdfPolicy;
use sealcell_store::{
    CrashMode, ItemState, OpenProblem, SealError, SimStorage, Storage, Store, StoreError,
};

const PASSWORD: &[u8] = b"my_pwd correct horse";

fn names(store: &Store) -> Vec<(CredentialType, String)> {
    store
        .list()
        .unwrap()
        .into_iter()
        .map(|i| (i.kind, i.name))
        .collect()
}

fn md5_of(file: &str) -> String {
    facts()[file].0.clone()
}

fn ok_facts(store: &Store, kind: CredentialType, name: &str) -> String {
    store.facts(kind, name).unwrap().md5_hex()
}

#[test]
fn unsealed_import_list_replace_remove() {
    let disk = SimStorage::new();
    let mut s = open(&disk, 1);
    assert!(!s.is_sealed());
    s.import(TrustedRootCa, "Root", &fixture("root.pem"), None)
        .unwrap();
    s.import(ClientPrivateKey, "Key", &fixture("client-pkcs1.pem"), None)
        .unwrap();
    s.import(ClientCertificate, "Dev", &fixture("client.der"), None)
        .unwrap();
    assert_eq!(
        names(&s),
        [
            (TrustedRootCa, "Root".into()),
            (ClientCertificate, "Dev".into()),
            (ClientPrivateKey, "Key".into())
        ]
    );
    // Replace: same type and name.
    s.import(TrustedRootCa, "Root", &fixture("verify.pem"), None)
        .unwrap();
    assert_eq!(ok_facts(&s, TrustedRootCa, "Root"), md5_of("verify.pem"));
    // Same name, other type: a different item.
    s.import(ServerCertificate, "Root", &fixture("server.pem"), None)
        .unwrap();
    assert_eq!(s.list().unwrap().len(), 4);
    s.remove(ClientCertificate, "Dev").unwrap();
    assert!(matches!(
        s.remove(ClientCertificate, "Dev"),
        Err(StoreError::NotFound(..))
    ));
    assert!(matches!(
        s.facts(ClientCertificate, "Dev"),
        Err(StoreError::NotFound(..))
    ));
    let s = open(&disk.crash(CrashMode::LoseUnsynced), 1);
    assert_eq!(
        s.list().unwrap().len(),
        3,
        "acknowledged changes survive power loss"
    );
    assert_eq!(
        s.der(ClientPrivateKey, "Key").unwrap().as_slice(),
        fixture("client-pkcs1.der").as_slice()
    );
}

#[test]
fn limits() {
    let disk = SimStorage::new();
    let mut s = open(&disk, 1);
    for i in 0..16 {
        s.import(
            TrustedRootCa,
            &format!("ca{i:02}"),
            &fixture("root.der"),
            None,
        )
        .unwrap();
    }
    assert!(matches!(
        s.check_import(TrustedRootCa, "one more"),
        Err(StoreError::Full)
    ));
    assert!(matches!(
        s.import(ClientCertificate, "one more", &fixture("client.der"), None),
        Err(StoreError::Full)
    ));
    // Replacing is always possible.
    s.import(TrustedRootCa, "ca03", &fixture("server.der"), None)
        .unwrap();
    assert!(matches!(
        s.check_import(TrustedRootCa, ""),
        Err(StoreError::InvalidName)
    ));
    assert!(matches!(
        s.check_import(TrustedRootCa, &"n".repeat(201)),
        Err(StoreError::InvalidName)
    ));
    s.remove(TrustedRootCa, "ca00").unwrap();
    s.import(TrustedRootCa, &"n".repeat(200), &fixture("root.der"), None)
        .unwrap();
}

#[test]
fn the_seal_hides_pre_seal_items_and_is_once_per_lifetime() {
    let disk = SimStorage::new();
    let mut s = open(&disk, 1);
    s.import(TrustedRootCa, "Old", &fixture("root.pem"), None)
        .unwrap();
    for bad in [
        &b""[..],
        &[b'x'; 129][..],
        b"tab\there",
        b"quote\"",
        b"\xc3\xa9",
    ] {
        assert!(
            matches!(s.seal(bad), Err(SealError::InvalidPassword)),
            "{bad:?}"
        );
    }
    assert!(!s.is_sealed());
    s.seal(PASSWORD).unwrap();
    assert!(s.is_sealed());
    assert_eq!(names(&s), [], "pre-seal items are unlisted");
    assert!(
        matches!(s.facts(TrustedRootCa, "Old"), Err(StoreError::NotFound(..))),
        "and unusable"
    );
    assert_eq!(s.plaintext_files().unwrap(), 1, "but they stay on disk");
    assert!(matches!(s.seal(PASSWORD), Err(SealError::AlreadySealed)));
    assert!(matches!(s.seal(b"other"), Err(SealError::AlreadySealed)));
    s.import(TrustedRootCa, "New", &fixture("root.pem"), None)
        .unwrap();
    s.import(
        ClientPrivateKey,
        "Key",
        &fixture("client-pkcs8-enc.pem"),
        Some(b"keypass123"),
    )
    .unwrap();

    let s = open(&disk.crash(CrashMode::LoseUnsynced), 1);
    assert!(s.is_sealed() && s.problem().is_none());
    assert_eq!(
        names(&s),
        [
            (TrustedRootCa, "New".into()),
            (ClientPrivateKey, "Key".into())
        ]
    );
    assert_eq!(
        s.der(ClientPrivateKey, "Key").unwrap().as_slice(),
        fixture("client-pkcs8.der").as_slice()
    );
    assert_eq!(ok_facts(&s, TrustedRootCa, "New"), md5_of("root.pem"));
}

#[test]
fn no_plaintext_after_the_seal() {
    let disk = SimStorage::new();
    let mut s = open(&disk, 1);
    s.seal(PASSWORD).unwrap();
    let inputs = [
        (
            ClientPrivateKey,
            "k1",
            "client-pkcs1.pem",
            "client-pkcs1.der",
            None,
        ),
        (
            ClientPrivateKey,
            "k2",
            "client-pkcs8-enc.pem",
            "client-pkcs8.der",
            Some(&b"keypass123"[..]),
        ),
        (
            ClientPrivateKey,
            "k3",
            "server-sec1.pem",
            "server-sec1.der",
            None,
        ),
        (ClientCertificate, "c1", "client.pem", "client.der", None),
        (TrustedRootCa, "r1", "root.der", "root.der", None),
    ];
    let mut needles: Vec<Vec<u8>> = vec![PASSWORD.to_vec(), b"keypass123".to_vec()];
    for (kind, name, file, der, pw) in inputs {
        s.import(kind, name, &fixture(file), pw).unwrap();
        let der = fixture(der);
        // Any 32-byte window of the DER would give it away.
        needles.extend(der.windows(32).step_by(97).map(<[u8]>::to_vec));
        let pem = String::from_utf8_lossy(&fixture(file)).into_owned();
        needles.extend(
            pem.lines()
                .filter(|l| l.len() == 64)
                .map(|l| l.as_bytes().to_vec()),
        );
    }
    for (path, content) in disk.snapshot() {
        for n in &needles {
            assert!(
                !content.windows(n.len()).any(|w| w == n.as_slice()),
                "{} holds plaintext",
                path.display()
            );
        }
    }
}

#[test]
fn a_clone_reveals_nothing() {
    let disk = SimStorage::new();
    let mut s = open(&disk, 1);
    s.seal(PASSWORD).unwrap();
    s.import(ClientPrivateKey, "Key", &fixture("client-pkcs1.pem"), None)
        .unwrap();
    // The same files under another device key, or another IMEI.
    for (duk, imei) in [(2u8, IMEI), (1u8, "490154203237526")] {
        let mut dev = device(duk);
        dev.imei = imei.to_string();
        let mut c = Store::open(
            Arc::new(disk.crash(CrashMode::KeepAll)),
            dev,
            KdfPolicy::INSECURE_FAST_FOR_TESTS,
        )
        .unwrap();
        assert!(c.is_sealed(), "a clone still reads as sealed");
        assert_eq!(c.problem(), Some(&OpenProblem::SealRecordUnreadable));
        assert!(matches!(
            c.list(),
            Err(StoreError::Unopenable(OpenProblem::SealRecordUnreadable))
        ));
        assert!(matches!(
            c.der(ClientPrivateKey, "Key"),
            Err(StoreError::Unopenable(_))
        ));
        assert!(matches!(
            c.facts(ClientPrivateKey, "Key"),
            Err(StoreError::Unopenable(_))
        ));
        assert!(matches!(
            c.import(TrustedRootCa, "x", &fixture("root.der"), None),
            Err(StoreError::Unopenable(_))
        ));
        assert!(matches!(
            c.remove(ClientPrivateKey, "Key"),
            Err(StoreError::Unopenable(_))
        ));
        assert!(matches!(c.seal(b"again"), Err(SealError::AlreadySealed)));
        assert!(c.master_key_for_tests().is_none());
    }
}

fn store_files(disk: &SimStorage) -> Vec<PathBuf> {
    disk.snapshot()
        .into_keys()
        .filter(|p| p.starts_with("sec"))
        .collect()
}

fn flip(disk: &SimStorage, path: &Path, at: usize) -> SimStorage {
    let copy = disk.crash(CrashMode::KeepAll);
    let mut bytes = copy.read(path).unwrap();
    let i = at % bytes.len();
    bytes[i] ^= 0x01;
    copy.write_atomic(path, &bytes).unwrap();
    copy
}

#[test]
fn tampering_with_any_store_file_is_detected() {
    let disk = SimStorage::new();
    let mut s = open(&disk, 1);
    s.import(TrustedRootCa, "Pre", &fixture("root.der"), None)
        .unwrap();
    s.seal(PASSWORD).unwrap();
    s.import(TrustedRootCa, "Root", &fixture("root.pem"), None)
        .unwrap();
    s.import(ClientCertificate, "Dev", &fixture("client.pem"), None)
        .unwrap();
    s.import(ClientPrivateKey, "Key", &fixture("client-pkcs1.pem"), None)
        .unwrap();
    let current = format!(
        "sec/manifest.{}",
        if s.generation() % 2 == 1 { "a" } else { "b" }
    );
    drop(s);
    let files = store_files(&disk);
    assert_eq!(files.len(), 7, "{files:?}");
    let mut checked = 0;
    for path in &files {
        let len = disk.read(path).unwrap().len();
        // Every byte of the seal record and the manifests; a sample of the larger records
        // (whose SHA-256 in the manifest covers every byte).
        let positions: Vec<usize> = if path.starts_with("sec/cred") || path.starts_with("sec/plain")
        {
            vec![0, 5, 17, len / 2, len - 1]
        } else {
            (0..len).collect()
        };
        for at in positions {
            let t = open(&flip(&disk, path, at), 1);
            let name = path.display().to_string();
            assert!(t.is_sealed(), "{name}");
            if name == "sec/seal.bin" {
                // Lowered KDF parameters are refused by the floor before the tag is checked.
                assert!(
                    matches!(
                        t.problem(),
                        Some(OpenProblem::SealRecordUnreadable | OpenProblem::KdfBelowFloor)
                    ),
                    "{name}@{at}: {:?}",
                    t.problem()
                );
            } else if name == current {
                assert_eq!(
                    t.problem(),
                    Some(&OpenProblem::Rollback {
                        manifest: 2,
                        counter: 3
                    }),
                    "{name}@{at}"
                );
            } else if name.starts_with("sec/manifest.") {
                // The stale slot is not in use: the store opens, and the damage is reported.
                assert!(t.problem().is_none(), "{name}@{at}");
                assert!(
                    t.warnings().iter().any(|w| w.contains(&name)),
                    "{name}@{at}: {:?}",
                    t.warnings()
                );
            } else if name.starts_with("sec/cred/") {
                let items = t.list().unwrap();
                let damaged: Vec<_> = items
                    .iter()
                    .filter(|i| matches!(i.state, ItemState::Damaged(_)))
                    .collect();
                assert_eq!(damaged.len(), 1, "{name}@{at}: exactly the altered record");
                let d = damaged[0];
                assert!(matches!(
                    t.facts(d.kind, &d.name),
                    Err(StoreError::Damaged { .. })
                ));
                assert!(matches!(
                    t.der(d.kind, &d.name),
                    Err(StoreError::Damaged { .. })
                ));
                assert_eq!(
                    items.len() - 1,
                    items
                        .iter()
                        .filter(|i| matches!(i.state, ItemState::Ok(_)))
                        .count()
                );
            } else {
                // sec/plain: the pre-seal item, unused once sealed.
                assert!(name.starts_with("sec/plain/"), "{name}");
                assert!(t.problem().is_none());
            }
            checked += 1;
        }
    }
    assert!(checked > 300, "{checked}");
}

#[test]
fn a_damaged_record_can_be_replaced_or_removed() {
    let disk = SimStorage::new();
    let mut s = open(&disk, 1);
    s.seal(PASSWORD).unwrap();
    s.import(TrustedRootCa, "Root", &fixture("root.pem"), None)
        .unwrap();
    s.import(TrustedRootCa, "Other", &fixture("server.pem"), None)
        .unwrap();
    let record = store_files(&disk)
        .into_iter()
        .find(|p| p.starts_with("sec/cred"))
        .unwrap();
    let mut t = open(&flip(&disk, &record, 100), 1);
    let damaged = t
        .list()
        .unwrap()
        .into_iter()
        .find(|i| matches!(i.state, ItemState::Damaged(_)))
        .unwrap();
    t.import(damaged.kind, &damaged.name, &fixture("verify.pem"), None)
        .unwrap();
    assert!(
        t.list()
            .unwrap()
            .iter()
            .all(|i| matches!(i.state, ItemState::Ok(_)))
    );
}

#[test]
fn rollback_of_the_store_is_detected() {
    let disk = SimStorage::new();
    let mut s = open(&disk, 1);
    s.seal(PASSWORD).unwrap();
    s.import(TrustedRootCa, "Old", &fixture("root.pem"), None)
        .unwrap();
    let old_sec: Vec<(PathBuf, Vec<u8>)> = disk
        .snapshot()
        .into_iter()
        .filter(|(p, _)| p.starts_with("sec"))
        .collect();
    s.remove(TrustedRootCa, "Old").unwrap();
    s.import(TrustedRootCa, "New", &fixture("server.pem"), None)
        .unwrap();
    drop(s);
    // Put back every store file of the older state; the counter in otp/ stays.
    let rolled = disk.crash(CrashMode::KeepAll);
    for p in store_files(&rolled) {
        rolled.remove(&p).unwrap();
    }
    for (p, b) in &old_sec {
        rolled.write_atomic(p, b).unwrap();
    }
    let t = open(&rolled, 1);
    assert_eq!(
        t.problem(),
        Some(&OpenProblem::Rollback {
            manifest: 1,
            counter: 3
        })
    );
    // Without the manifests at all: missing, not empty.
    let gone = disk.crash(CrashMode::KeepAll);
    for m in ["sec/manifest.a", "sec/manifest.b"] {
        let _ = gone.remove(Path::new(m));
    }
    assert_eq!(
        open(&gone, 1).problem(),
        Some(&OpenProblem::ManifestMissing { counter: 3 })
    );
    // Deleting the seal record does not unseal: the fuse in otp/ remembers.
    let unsealed = disk.crash(CrashMode::KeepAll);
    unsealed.remove(Path::new("sec/seal.bin")).unwrap();
    let t = open(&unsealed, 1);
    assert!(t.is_sealed());
    assert_eq!(t.problem(), Some(&OpenProblem::SealRecordMissing));
}

#[test]
fn the_kdf_floor_is_enforced_on_open() {
    let disk = SimStorage::new();
    let mut s = open(&disk, 1);
    s.seal(PASSWORD).unwrap();
    let strict = Store::open(Arc::new(disk.clone()), device(1), KdfPolicy::PRODUCTION).unwrap();
    assert_eq!(strict.problem(), Some(&OpenProblem::KdfBelowFloor));
}

#[test]
fn production_kdf_round_trip() {
    let disk = SimStorage::new();
    let mut s = Store::open(Arc::new(disk.clone()), device(1), KdfPolicy::PRODUCTION).unwrap();
    s.seal(PASSWORD).unwrap();
    s.import(ClientCertificate, "Dev", &fixture("client.pem"), None)
        .unwrap();
    let again = Store::open(Arc::new(disk.clone()), device(1), KdfPolicy::PRODUCTION).unwrap();
    assert_eq!(again.master_key_for_tests(), s.master_key_for_tests());
    assert_eq!(names(&again), [(ClientCertificate, "Dev".into())]);
}
