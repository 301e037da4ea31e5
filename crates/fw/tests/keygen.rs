//! Keys and certificates made by `keygen`, checked by openssl: a valid key, a self-signed
//! certificate with key usage digitalSignature (critical), and signatures that cross-verify.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use sealcell_fw::certificate::{ClockPolicy, SignerCertificate};
use sealcell_fw::hash::sha256_reader;
use sealcell_fw::keygen::{KeyAlgorithm, KeygenError, generate};
use sealcell_fw::sign::SigningKey;
use sealcell_fw::verify::verify_package;

fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn generated_keys_and_certificates_pass_openssl() {
    for (alg, name) in [(KeyAlgorithm::Rsa(2048), "rsa"), (KeyAlgorithm::P256, "ec")] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let g = generate(alg, "Customer FW Signer", 365).unwrap();
        std::fs::write(dir.join("priv.key"), g.private_key_pem.as_bytes()).unwrap();
        std::fs::write(dir.join("cert.pem"), &g.certificate_pem).unwrap();
        std::fs::write(dir.join("pubkey.pem"), &g.public_key_pem).unwrap();
        std::fs::write(dir.join("pkg"), vec![7u8; 100_000]).unwrap();

        let text = openssl(dir, &["x509", "-in", "cert.pem", "-noout", "-text"]);
        assert!(
            text.contains("X509v3 Key Usage: critical") && text.contains("Digital Signature"),
            "{name}: {text}"
        );
        assert!(text.contains("CA:FALSE"), "{name}");
        assert!(
            text.contains("Subject: CN = Customer FW Signer")
                && text.contains("Issuer: CN = Customer FW Signer"),
            "{name}"
        );
        openssl(
            dir,
            &[
                "verify",
                "-CAfile",
                "cert.pem",
                "-partial_chain",
                "cert.pem",
            ],
        );
        openssl(dir, &["pkey", "-in", "priv.key", "-check", "-noout"]);
        let from_cert = openssl(dir, &["x509", "-in", "cert.pem", "-pubkey", "-noout"]);
        assert_eq!(from_cert, g.public_key_pem, "{name}");

        // Ours -> openssl.
        let key = SigningKey::parse(g.private_key_pem.as_bytes(), None).unwrap();
        let digest = sha256_reader(&std::fs::read(dir.join("pkg")).unwrap()[..], |_| {})
            .unwrap()
            .0;
        std::fs::write(dir.join("ours.sig"), key.sign_digest(&digest).unwrap()).unwrap();
        openssl(
            dir,
            &[
                "dgst",
                "-sha256",
                "-verify",
                "pubkey.pem",
                "-signature",
                "ours.sig",
                "pkg",
            ],
        );
        // openssl -> ours, through the certificate's checks.
        openssl(
            dir,
            &[
                "dgst",
                "-sha256",
                "-sign",
                "priv.key",
                "-out",
                "theirs.sig",
                "pkg",
            ],
        );
        let cert = SignerCertificate::parse(g.certificate_pem.as_bytes()).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let v = verify_package(
            &std::fs::read(dir.join("pkg")).unwrap()[..],
            &std::fs::read(dir.join("theirs.sig")).unwrap(),
            &cert,
            ClockPolicy::At(now),
            |_| {},
        )
        .unwrap();
        assert_eq!(v.signer(), "Customer FW Signer");
        assert!(
            cert.check_validity(ClockPolicy::At(now + 366 * 86_400))
                .is_err(),
            "{name}: 365 days"
        );
    }
}

#[test]
fn keygen_refuses_weak_or_oversized_rsa() {
    assert!(matches!(
        generate(KeyAlgorithm::Rsa(1024), "x", 1),
        Err(KeygenError::RsaSize(1024))
    ));
    assert!(matches!(
        generate(KeyAlgorithm::Rsa(8192), "x", 1),
        Err(KeygenError::RsaSize(8192))
    ));
}
