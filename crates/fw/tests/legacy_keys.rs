//! Signing keys encrypted the way older tools write them (`tests/fixtures/legacy-keys`): PBES1
//! and PKCS#12 schemes, and the traditional OpenSSL encrypted PEM (`Proc-Type: 4,ENCRYPTED`,
//! `DEK-Info`), open with their password, sign byte-identically to `openssl dgst -sha256 -sign`
//! with the same file (RSA), or verifiably (ECDSA); a wrong password is
//! `SigningKeyError::Password`; an RC2 key and a DES-EDE3-CFB PEM are refused by name.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use sealcell_fw::encrypted_key::{
    DecryptError, EncryptedPem, EncryptedPrivateKey, PemCipher, PemKeyKind, Scheme,
};
use sealcell_fw::hash::sha256_reader;
use sealcell_fw::sign::{SigningKey, SigningKeyError};

const PASSWORD: &[u8] = b"legacy-pass";

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/legacy-keys")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Runs openssl; on OpenSSL 3, PBES1 (PBKDF1, DES) needs the legacy provider, so a failure is
/// retried with it loaded (options after the command's name). A missing openssl fails the test
/// with the install hint.
fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let run = |extra: &[&str]| {
        Command::new("openssl")
            .arg(args[0])
            .args(extra)
            .args(&args[1..])
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("openssl CLI ({e}): apt-get install openssl"))
    };
    let mut out = run(&[]);
    if !out.status.success() {
        out = run(&["-provider", "legacy", "-provider", "default"]);
    }
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

const SCHEMES: [(&str, Scheme); 5] = [
    ("pbe-md5-des", Scheme::PbeWithMd5AndDesCbc),
    ("pbe-sha1-des", Scheme::PbeWithSha1AndDesCbc),
    ("pbe-sha1-3des", Scheme::PbeWithShaAnd3KeyTripleDesCbc),
    ("pbe-sha1-2des", Scheme::PbeWithShaAnd2KeyTripleDesCbc),
    ("default", Scheme::Pbes2),
];

#[test]
fn rsa_keys_of_every_scheme_sign_byte_identically_to_openssl() {
    let tmp = tempfile::tempdir().unwrap();
    let package: Vec<u8> = (0..100_000u32).map(|i| ((i * 7) >> 3) as u8).collect();
    std::fs::write(tmp.path().join("update.zip"), &package).unwrap();
    let (digest, _) = sha256_reader(package.as_slice(), |_| {}).unwrap();
    for (stem, scheme) in SCHEMES {
        for ext in ["pem", "der"] {
            let file = format!("rsa-{stem}.{ext}");
            let bytes = fixture(&file);
            if ext == "der" {
                assert_eq!(EncryptedPrivateKey::parse(&bytes).unwrap().scheme(), scheme);
            }
            let key =
                SigningKey::parse(&bytes, Some(PASSWORD)).unwrap_or_else(|e| panic!("{file}: {e}"));
            let ours = key.sign_digest(&digest).unwrap();
            let theirs = openssl(
                tmp.path(),
                &[
                    "dgst",
                    "-sha256",
                    "-sign",
                    dir().join(&file).to_str().unwrap(),
                    "-keyform",
                    &ext.to_uppercase(),
                    "-passin",
                    "pass:legacy-pass",
                    "update.zip",
                ],
            );
            assert_eq!(ours, theirs, "{file}: byte-identical to openssl dgst -sign");
        }
    }
}

/// The traditional encrypted PEMs of the RSA key, with their DEK-Info cipher.
const TRADITIONAL_RSA: [(&str, PemCipher); 6] = [
    ("rsa-pem-des3.pem", PemCipher::DesEde3Cbc),
    ("rsa-pem-des3-crlf.pem", PemCipher::DesEde3Cbc),
    ("rsa-pem-des.pem", PemCipher::DesCbc),
    ("rsa-pem-aes128.pem", PemCipher::Aes128Cbc),
    ("rsa-pem-aes192.pem", PemCipher::Aes192Cbc),
    ("rsa-pem-aes256.pem", PemCipher::Aes256Cbc),
];

#[test]
fn traditional_pem_rsa_keys_sign_byte_identically_to_openssl() {
    // `openssl genrsa -des3` / `openssl rsa -des3 -traditional` output, as ubxlib's test key is.
    let tmp = tempfile::tempdir().unwrap();
    let package: Vec<u8> = (0..50_000u32).map(|i| (i ^ (i >> 5)) as u8).collect();
    std::fs::write(tmp.path().join("update.zip"), &package).unwrap();
    let (digest, _) = sha256_reader(package.as_slice(), |_| {}).unwrap();
    // The same key as PKCS#8 (make.sh writes one RSA key in every form) signs alike.
    let pkcs8 = SigningKey::parse(&fixture("rsa-default.pem"), Some(PASSWORD)).unwrap();
    let expected = pkcs8.sign_digest(&digest).unwrap();
    for (file, cipher) in TRADITIONAL_RSA {
        let bytes = fixture(file);
        let pem = EncryptedPem::parse(&bytes).unwrap().unwrap();
        assert_eq!(
            (pem.kind(), pem.cipher()),
            (PemKeyKind::Rsa, cipher),
            "{file}"
        );
        let key =
            SigningKey::parse(&bytes, Some(PASSWORD)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let ours = key.sign_digest(&digest).unwrap();
        assert_eq!(ours, expected, "{file}: as the PKCS#8 form of the same key");
        if cipher == PemCipher::DesEde3Cbc {
            let theirs = openssl(
                tmp.path(),
                &[
                    "dgst",
                    "-sha256",
                    "-sign",
                    dir().join(file).to_str().unwrap(),
                    "-passin",
                    "pass:legacy-pass",
                    "update.zip",
                ],
            );
            assert_eq!(ours, theirs, "{file}: byte-identical to openssl dgst -sign");
        }
    }
}

#[test]
fn traditional_pem_ec_key_signs_and_wrong_passwords_and_refusals() {
    let (digest, _) = sha256_reader(&b"firmware"[..], |_| {}).unwrap();
    let ec = fixture("ec-pem-des3.pem");
    let key = SigningKey::parse(&ec, Some(PASSWORD)).unwrap();
    assert!(matches!(key, SigningKey::P256(_)));
    let sig = key.sign_digest(&digest).unwrap();
    key.verifying_key().verify_digest(&digest, &sig).unwrap();
    for (file, _) in TRADITIONAL_RSA {
        let bytes = fixture(file);
        for wrong in [Some(&b"legacy-pasS"[..]), Some(b""), None] {
            assert_eq!(
                SigningKey::parse(&bytes, wrong).unwrap_err(),
                SigningKeyError::Password,
                "{file} with {wrong:?}"
            );
        }
    }
    let e = SigningKey::parse(&fixture("fail_rsa-pem-des3-cfb.pem"), Some(PASSWORD)).unwrap_err();
    assert!(
        matches!(&e, SigningKeyError::Encryption(DecryptError::UnsupportedScheme(s)) if s == "PEM DEK-Info DES-EDE3-CFB"),
        "{e:?}"
    );
    // Broken armour: not a key this reads.
    let text = String::from_utf8(fixture("rsa-pem-des3.pem")).unwrap();
    let no_blank = text.replacen("\n\n", "\n", 1);
    assert_eq!(
        SigningKey::parse(no_blank.as_bytes(), Some(PASSWORD)).unwrap_err(),
        SigningKeyError::Unrecognised
    );
}

#[test]
fn ec_keys_of_every_scheme_sign_and_verify() {
    let package = b"firmware";
    let (digest, _) = sha256_reader(&package[..], |_| {}).unwrap();
    for (stem, _) in SCHEMES {
        for ext in ["pem", "der"] {
            let file = format!("ec-{stem}.{ext}");
            let key = SigningKey::parse(&fixture(&file), Some(PASSWORD))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(matches!(key, SigningKey::P256(_)), "{file}");
            let sig = key.sign_digest(&digest).unwrap();
            key.verifying_key()
                .verify_digest(&digest, &sig)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }
}

#[test]
fn wrong_password_damage_and_refused_schemes() {
    for (stem, _) in SCHEMES {
        let file = format!("rsa-{stem}.der");
        let bytes = fixture(&file);
        for wrong in [&b"legacy-pasS"[..], b""] {
            assert_eq!(
                SigningKey::parse(&bytes, Some(wrong)).unwrap_err(),
                SigningKeyError::Password,
                "{file}"
            );
        }
        assert_eq!(
            SigningKey::parse(&bytes, None).unwrap_err(),
            SigningKeyError::Password,
            "{file}: no password (the CLI then prompts)"
        );
        // The last ciphertext byte flipped: the padding no longer checks.
        let mut damaged = bytes.clone();
        *damaged.last_mut().unwrap() ^= 0x80;
        assert_eq!(
            SigningKey::parse(&damaged, Some(PASSWORD)).unwrap_err(),
            SigningKeyError::Password,
            "{file} damaged"
        );
        assert_eq!(
            SigningKey::parse(&bytes[..bytes.len() - 3], Some(PASSWORD)).unwrap_err(),
            SigningKeyError::Unrecognised,
            "{file} truncated"
        );
    }
    let e =
        SigningKey::parse(&fixture("fail_rsa-pbe-sha1-rc2-40.pem"), Some(PASSWORD)).unwrap_err();
    assert!(
        matches!(&e, SigningKeyError::Encryption(DecryptError::UnsupportedScheme(s)) if s.starts_with("pbewithSHAAnd40BitRC2-CBC")),
        "{e:?}"
    );
    assert!(e.to_string().contains("openssl pkcs8 -topk8"), "{e}");
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_log_names_the_scheme_tried_and_never_the_password() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let key = fixture("rsa-pbe-md5-des.der");
        let key = EncryptedPrivateKey::parse(&key).unwrap();
        key.decrypt(Some(b"not-the-password")).unwrap_err();
        key.decrypt(Some(PASSWORD)).unwrap();
        let key = fixture("ec-pbe-sha1-3des.der");
        SigningKey::parse(&key, Some(PASSWORD)).unwrap();
        let key = fixture("rsa-pem-des3-crlf.pem");
        SigningKey::parse(&key, Some(b"not-the-password")).unwrap_err();
        SigningKey::parse(&key, Some(PASSWORD)).unwrap();
    });
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("scheme=\"pbeWithMD5AndDES-CBC\"")
            && text.contains("scheme=\"pbeWithSHAAnd3-KeyTripleDES-CBC\"")
            && text.contains("scheme=\"PEM DEK-Info DES-EDE3-CBC\""),
        "{text}"
    );
    assert!(text.contains("the password is wrong"), "{text}");
    assert!(
        !text.contains("legacy-pass") && !text.contains("not-the-password"),
        "{text}"
    );
}
