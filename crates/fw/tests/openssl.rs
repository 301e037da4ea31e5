//! The application note's §4.3.1 procedure run with the openssl CLI, against sealcell-fw:
//! signatures byte-identical to `openssl dgst -sha256 -sign`, openssl's base64 (as `base64`
//! wraps it) accepted, openssl accepting ours; and the rejections, each with its reason.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use sealcell_fw::certificate::{CertificateError, ClockPolicy, SignerCertificate};
use sealcell_fw::encoding::{SignatureFormat, decode_signature};
use sealcell_fw::hash::sha256_reader;
use sealcell_fw::key::{KeyError, SignatureError, VerifyingKey};
use sealcell_fw::sign::{SigningKey, SigningKeyError};
use sealcell_fw::verify::{VerifyError, verify_package, verify_with_key};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl CLI");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The §4.3.1 script, as written (but in a temporary directory instead of /data/$n).
fn application_note_script(dir: &Path) {
    std::fs::write(dir.join("update.zip"), package()).unwrap();
    sh(
        dir,
        "openssl req -newkey rsa:2048 -nodes -keyout priv.key -x509 -days 365 -out cert.pem -nodes -subj '/CN=$subj' 2>/dev/null && \
         openssl x509 -pubkey -noout -in cert.pem > pubkey.pem && \
         openssl dgst -sha256 -sign priv.key -out signature.bin update.zip && \
         base64 signature.bin > signature.b64",
    );
}

fn package() -> Vec<u8> {
    (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    sha256_reader(bytes, |_| {}).unwrap().0
}

#[test]
fn the_application_note_procedure_and_sealcell_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    application_note_script(dir);
    let pkg = std::fs::read(dir.join("update.zip")).unwrap();

    // Signing: byte-identical to openssl's.
    let key = SigningKey::parse(&std::fs::read(dir.join("priv.key")).unwrap(), None).unwrap();
    let ours = key.sign_digest(&digest(&pkg)).unwrap();
    assert_eq!(
        ours,
        std::fs::read(dir.join("signature.bin")).unwrap(),
        "byte-identical to openssl dgst -sha256 -sign"
    );

    // Verifying openssl's signature, in the base64 the script writes (wrapped at 76 columns).
    let b64 = std::fs::read(dir.join("signature.b64")).unwrap();
    assert!(b64.contains(&b'\n'));
    let sig = decode_signature(&b64, SignatureFormat::Auto).unwrap();
    let cert = SignerCertificate::parse(&std::fs::read(dir.join("cert.pem")).unwrap()).unwrap();
    let v = verify_package(&pkg[..], &sig, &cert, ClockPolicy::Ignore, |_| {}).unwrap();
    assert_eq!(v.size(), pkg.len() as u64);
    assert_eq!(v.sha256(), &digest(&pkg));
    // The script quotes '/CN=$subj', so the CN is literally "$subj".
    assert_eq!(v.signer(), "$subj");
    let pubkey =
        VerifyingKey::from_spki_pem(&std::fs::read_to_string(dir.join("pubkey.pem")).unwrap())
            .unwrap();
    verify_with_key(&pkg[..], &sig, &pubkey, |_| {}).unwrap();
    // And within the certificate's validity today.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    verify_package(&pkg[..], &sig, &cert, ClockPolicy::At(now), |_| {}).unwrap();

    // openssl accepts a signature made here (with the same key re-encoded as encrypted PKCS#8).
    openssl(
        dir,
        &[
            "pkcs8", "-topk8", "-in", "priv.key", "-passout", "pass:pw", "-out", "enc.pem",
        ],
    );
    let enc = SigningKey::parse(&std::fs::read(dir.join("enc.pem")).unwrap(), Some(b"pw")).unwrap();
    std::fs::write(
        dir.join("ours.bin"),
        enc.sign_digest(&digest(&pkg)).unwrap(),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "dgst",
            "-sha256",
            "-verify",
            "pubkey.pem",
            "-signature",
            "ours.bin",
            "update.zip",
        ],
    );
    assert!(matches!(
        SigningKey::parse(&std::fs::read(dir.join("enc.pem")).unwrap(), Some(b"nope")),
        Err(SigningKeyError::Password)
    ));
    assert!(matches!(
        SigningKey::parse(&std::fs::read(dir.join("enc.pem")).unwrap(), None),
        Err(SigningKeyError::Password)
    ));
}

#[test]
fn ecdsa_p256_both_ways() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("pkg"), package()).unwrap();
    sh(
        dir,
        "openssl ecparam -name prime256v1 -genkey -noout -out ec.key && openssl ec -in ec.key -pubout -out ec.pub 2>/dev/null && \
         openssl dgst -sha256 -sign ec.key -out ec.sig pkg",
    );
    let pkg = std::fs::read(dir.join("pkg")).unwrap();
    let public =
        VerifyingKey::from_spki_pem(&std::fs::read_to_string(dir.join("ec.pub")).unwrap()).unwrap();
    verify_with_key(
        &pkg[..],
        &std::fs::read(dir.join("ec.sig")).unwrap(),
        &public,
        |_| {},
    )
    .unwrap();
    let key = SigningKey::parse(&std::fs::read(dir.join("ec.key")).unwrap(), None).unwrap();
    std::fs::write(
        dir.join("ours.sig"),
        key.sign_digest(&digest(&pkg)).unwrap(),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "dgst",
            "-sha256",
            "-verify",
            "ec.pub",
            "-signature",
            "ours.sig",
            "pkg",
        ],
    );
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/pki")
            .join(name),
    )
    .unwrap()
}

#[test]
fn rejections_each_with_its_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    application_note_script(dir);
    let pkg = std::fs::read(dir.join("update.zip")).unwrap();
    let sig = std::fs::read(dir.join("signature.bin")).unwrap();
    let cert = SignerCertificate::parse(&std::fs::read(dir.join("cert.pem")).unwrap()).unwrap();
    let check = |package: &[u8], sig: &[u8]| {
        verify_package(package, sig, &cert, ClockPolicy::Ignore, |_| {})
    };
    let mismatch = |r: Result<_, VerifyError>| {
        matches!(r, Err(VerifyError::Signature(SignatureError::Mismatch)))
    };

    let mut flipped = pkg.clone();
    flipped[1_234_567] ^= 0x04;
    assert!(mismatch(check(&flipped, &sig)), "flipped bit");
    assert!(
        mismatch(check(&pkg[..pkg.len() - 1], &sig)),
        "truncated package"
    );
    let mut longer = pkg.clone();
    longer.extend_from_slice(b"appended");
    assert!(mismatch(check(&longer, &sig)), "appended bytes");
    let mut bad_sig = sig.clone();
    bad_sig[100] ^= 1;
    assert!(mismatch(check(&pkg, &bad_sig)), "altered signature");
    assert!(matches!(
        check(&pkg, &sig[1..]),
        Err(VerifyError::Signature(SignatureError::WrongLength {
            expected: 256,
            got: 255
        }))
    ));
    let mut padded = vec![0u8];
    padded.extend_from_slice(&sig);
    assert!(matches!(
        check(&pkg, &padded),
        Err(VerifyError::Signature(SignatureError::WrongLength { .. }))
    ));

    // A SHA-1 signature by the right key.
    openssl(
        dir,
        &[
            "dgst",
            "-sha1",
            "-sign",
            "priv.key",
            "-out",
            "sha1.bin",
            "update.zip",
        ],
    );
    assert!(
        mismatch(check(&pkg, &std::fs::read(dir.join("sha1.bin")).unwrap())),
        "SHA-1 signature"
    );
    // The wrong key.
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "other.key",
        ],
    );
    openssl(
        dir,
        &[
            "dgst",
            "-sha256",
            "-sign",
            "other.key",
            "-out",
            "other.bin",
            "update.zip",
        ],
    );
    assert!(
        mismatch(check(&pkg, &std::fs::read(dir.join("other.bin")).unwrap())),
        "wrong key"
    );
    // Malformed base64.
    assert!(decode_signature(b"not*base64!", SignatureFormat::Base64).is_err());
    // A certificate whose key usage lacks digitalSignature (the test PKI's root CA: keyCertSign, cRLSign).
    assert!(matches!(
        SignerCertificate::parse(&fixture("root.pem")),
        Err(CertificateError::NoDigitalSignatureUsage)
    ));
    // The verification certificate of the test PKI is fine, and expires in 2126.
    let vc = SignerCertificate::parse(&fixture("verify.pem")).unwrap();
    assert!(matches!(
        vc.check_validity(ClockPolicy::At(5_000_000_000)),
        Err(CertificateError::Expired(_))
    ));
    assert!(matches!(
        vc.check_validity(ClockPolicy::At(0)),
        Err(CertificateError::NotYetValid(_))
    ));
    // An RSA key under 2048 bits, for signing and for verifying.
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out",
            "small.key",
        ],
    );
    openssl(
        dir,
        &["pkey", "-in", "small.key", "-pubout", "-out", "small.pub"],
    );
    assert!(matches!(
        SigningKey::parse(&std::fs::read(dir.join("small.key")).unwrap(), None),
        Err(SigningKeyError::Key(KeyError::RsaTooSmall(1024)))
    ));
    assert!(matches!(
        VerifyingKey::from_spki_pem(&std::fs::read_to_string(dir.join("small.pub")).unwrap()),
        Err(KeyError::RsaTooSmall(1024))
    ));
    // Ed25519 cannot sign firmware here.
    assert!(matches!(
        SigningKey::parse(&fixture("ed25519-pkcs8.pem"), None),
        Err(SigningKeyError::Unrecognised)
    ));
}
