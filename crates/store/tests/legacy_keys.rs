//! Encrypted private keys the way older tools write them (at-contract §3): PBES1
//! (`pbeWithMD5AndDES-CBC`, `pbeWithSHA1AndDES-CBC`) and the PKCS#12 schemes
//! (`pbeWithSHAAnd3-KeyTripleDES-CBC`, `pbeWithSHAAnd2-KeyTripleDES-CBC`), next to openssl's
//! default PBES2, RSA and EC, PEM and DER; and the traditional OpenSSL encrypted PEM
//! (`Proc-Type: 4,ENCRYPTED`, `DEK-Info: DES-CBC | DES-EDE3-CBC | AES-*-CBC`, LF and CRLF), from
//! `tests/fixtures/legacy-keys/make.sh`. Every key decrypts to the DER openssl decrypts it to
//! (same MD5: PKCS#8 for encrypted PKCS#8, PKCS#1 or SEC1 for a traditional PEM); a wrong
//! password is `KeyDecryption` (`+CME ERROR: 1913`) whatever the scheme; damaged input is an
//! error, never a panic.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use sealcell_store::credential::{CredentialType, FormatError, parse};
use sealcell_store::crypto::KdfPolicy;
use sealcell_store::{SimStorage, Storage, Store, StoreError};

const PASSWORD: &[u8] = b"legacy-pass";
const UTF8_PASSWORD: &str = "pässwörd-€";

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/legacy-keys")
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// facts.txt: file -> (openssl's name of the scheme, MD5 of the decrypted DER).
fn facts(dir: &Path) -> BTreeMap<String, (String, String)> {
    String::from_utf8(read(dir, "facts.txt"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 3, "facts.txt line {l:?}");
            (f[0].to_string(), (f[1].to_string(), f[2].to_string()))
        })
        .collect()
}

fn password_of(file: &str) -> &'static [u8] {
    if file.contains("-utf8.") {
        UTF8_PASSWORD.as_bytes()
    } else {
        PASSWORD
    }
}

/// openssl's name of each file's scheme, by the file's name.
fn expected_scheme(file: &str) -> &'static str {
    [
        ("-pbe-md5-des.", "pbeWithMD5AndDES-CBC"),
        ("-pbe-sha1-des.", "pbeWithSHA1AndDES-CBC"),
        ("-pbe-sha1-3des", "pbeWithSHA1And3-KeyTripleDES-CBC"),
        ("-pbe-sha1-2des.", "pbeWithSHA1And2-KeyTripleDES-CBC"),
        ("-default.", "PBES2"),
        ("-pem-des.", "DES-CBC"),
        ("-pem-des3", "DES-EDE3-CBC"),
        ("-pem-aes128.", "AES-128-CBC"),
        ("-pem-aes192.", "AES-192-CBC"),
        ("-pem-aes256.", "AES-256-CBC"),
    ]
    .into_iter()
    .find(|(part, _)| file.contains(part))
    .map(|(_, scheme)| scheme)
    .unwrap_or_else(|| panic!("{file}: no scheme for this name"))
}

/// Every key in `dir` decrypts, and its stored DER has openssl's MD5. Returns how many.
fn check_all(dir: &Path) -> usize {
    let facts = facts(dir);
    for (file, (scheme, md5)) in &facts {
        assert_eq!(scheme, expected_scheme(file), "{file}: openssl's scheme");
        let parsed = parse(
            CredentialType::ClientPrivateKey,
            &read(dir, file),
            Some(password_of(file)),
        )
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            &parsed.facts.md5_hex(),
            md5,
            "{file}: MD5 of the stored DER"
        );
        // Stored decrypted, as PKCS#8 (a traditional PEM: as PKCS#1 or SEC1): it imports again
        // with no password.
        let again = parse(CredentialType::ClientPrivateKey, &parsed.der, None).unwrap();
        assert_eq!(&again.facts.md5_hex(), md5, "{file}");
        let is_pkcs8 = pkcs8::PrivateKeyInfoRef::try_from(parsed.der.as_slice()).is_ok();
        assert_eq!(is_pkcs8, !file.contains("-pem-"), "{file}: stored form");
    }
    facts.len()
}

#[test]
fn every_scheme_pem_and_der_rsa_and_ec_decrypts_to_what_openssl_decrypts() {
    // 2 keys x 5 schemes x PEM and DER, plus the PKCS#12 key with a non-ASCII password; the
    // RSA key as 5 traditional PEMs and one with CRLF, the EC key as one.
    assert_eq!(check_all(&dir()), 28);
}

#[test]
fn a_wrong_or_missing_password_is_key_decryption_for_every_scheme() {
    let dir = dir();
    for file in facts(&dir).keys() {
        let input = read(&dir, file);
        for wrong in [
            &b"legacy-pasS"[..],
            b"",
            b"legacy-pass\n",
            "pässwörd-€".as_bytes(),
        ] {
            if wrong == password_of(file) {
                continue;
            }
            assert_eq!(
                parse(CredentialType::ClientPrivateKey, &input, Some(wrong)).unwrap_err(),
                FormatError::KeyDecryption,
                "{file} with {:?}",
                String::from_utf8_lossy(wrong)
            );
        }
        assert_eq!(
            parse(CredentialType::ClientPrivateKey, &input, None).unwrap_err(),
            FormatError::KeyDecryption,
            "{file} without a password"
        );
    }
    // The PKCS#12 password is UTF-8 text made UTF-16: the Latin-1 bytes of the same text are
    // another password.
    let latin1: Vec<u8> = UTF8_PASSWORD
        .chars()
        .filter_map(|c| u8::try_from(u32::from(c)).ok())
        .collect();
    assert_eq!(
        parse(
            CredentialType::ClientPrivateKey,
            &read(&dir, "rsa-pbe-sha1-3des-utf8.pem"),
            Some(&latin1)
        )
        .unwrap_err(),
        FormatError::KeyDecryption
    );
}

/// A DER header at `i`: (header length, content length).
fn header(der: &[u8], i: usize) -> (usize, usize) {
    match der[i + 1] {
        n if n < 0x80 => (2, usize::from(n)),
        0x81 => (3, usize::from(der[i + 2])),
        0x82 => (4, usize::from(der[i + 2]) << 8 | usize::from(der[i + 3])),
        n => panic!("length form {n:#x}"),
    }
}

/// In an `EncryptedPrivateKeyInfo` DER: (where the AlgorithmIdentifier starts, where the
/// ciphertext's OCTET STRING starts, where the ciphertext starts).
fn layout(der: &[u8]) -> (usize, usize, usize) {
    let algorithm = header(der, 0).0;
    let (h, n) = header(der, algorithm);
    let octets = algorithm + h + n;
    (algorithm, octets, octets + header(der, octets).0)
}

#[test]
fn damaged_keys_are_errors_never_panics() {
    let dir = dir();
    let key = CredentialType::ClientPrivateKey;
    for (file, _) in facts(&dir).iter().filter(|(f, _)| f.ends_with(".der")) {
        let der = read(&dir, file);
        let (algorithm, octets, at) = layout(&der);
        // Truncated: the structure no longer parses, so this is no encrypted key at all.
        for cut in [1, 8, der.len() / 2, der.len() - 1] {
            assert_eq!(
                parse(key, &der[..der.len() - cut], Some(PASSWORD)).unwrap_err(),
                FormatError::NotAKey,
                "{file} less {cut} bytes"
            );
        }
        // The ciphertext cut short (the structure re-encoded around it) or damaged in its first
        // block (the PrivateKeyInfo header) or last block (the padding).
        let ct = &der[at..];
        for (what, damaged) in [
            ("short by one byte", ct[..ct.len() - 1].to_vec()),
            ("short by one block", ct[..ct.len() - 8].to_vec()),
            ("one block", ct[..8].to_vec()),
            ("empty", Vec::new()),
            ("first block flipped", flip(ct, 3)),
            ("last block flipped", flip(ct, ct.len() - 1)),
        ] {
            let rebuilt = tlv(
                0x30,
                &[&der[algorithm..octets], &tlv(0x04, &damaged)].concat(),
            );
            assert_eq!(
                parse(key, &rebuilt, Some(PASSWORD)).unwrap_err(),
                FormatError::KeyDecryption,
                "{file}: ciphertext {what}"
            );
        }
    }
    // One byte flipped anywhere in one file of each scheme: an error or (a flip inside the key's
    // own numbers) a different key, and never a panic.
    for file in [
        "rsa-pbe-md5-des.der",
        "ec-pbe-sha1-des.der",
        "ec-pbe-sha1-3des.der",
        "ec-pbe-sha1-2des.der",
        "ec-default.der",
    ] {
        let der = read(&dir, file);
        let md5 = &facts(&dir)[file].1;
        for i in 0..der.len() {
            if let Ok(p) = parse(key, &flip(&der, i), Some(PASSWORD)) {
                assert_ne!(
                    &p.facts.md5_hex(),
                    md5,
                    "{file}: flip at {i} went unnoticed"
                );
            }
        }
    }
}

fn flip(bytes: &[u8], i: usize) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v[i] ^= 0x01;
    v
}

/// DER tag-length-value.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend([0x81, n as u8]);
    } else {
        out.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// An `EncryptedPrivateKeyInfo` of the PKCS#12 3DES scheme with the given parameters.
fn pkcs12_3des(salt: &[u8], iterations: &[u8], ciphertext: &[u8]) -> Vec<u8> {
    let oid = [
        0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x03,
    ];
    let params = tlv(0x30, &[tlv(0x04, salt), tlv(0x02, iterations)].concat());
    let algorithm = tlv(0x30, &[&oid[..], &params].concat());
    tlv(0x30, &[algorithm, tlv(0x04, ciphertext)].concat())
}

#[test]
fn refused_schemes_and_out_of_bounds_parameters() {
    let dir = dir();
    let key = CredentialType::ClientPrivateKey;
    // RC2 (40-bit): refused by name, as a format error (1913), not as a wrong password.
    let e = parse(
        key,
        &read(&dir, "fail_rsa-pbe-sha1-rc2-40.pem"),
        Some(PASSWORD),
    )
    .unwrap_err();
    assert!(
        matches!(&e, FormatError::UnsupportedKeyEncryption(m)
            if m.contains("pbewithSHAAnd40BitRC2-CBC (1.2.840.113549.1.12.1.6)")),
        "{e:?}"
    );
    // The PKCS#12 scheme of the fixture, re-encoded with other parameters. With its own they
    // decrypt (so the encoding is right).
    let der = read(&dir, "rsa-pbe-sha1-3des.der");
    let (_, _, at) = layout(&der);
    let (salt, ct) = (&der[22..30], &der[at..]);
    assert!(parse(key, &pkcs12_3des(salt, &[0x08, 0x00], ct), Some(PASSWORD)).is_ok());
    for (what, salt, iterations) in [
        ("65536 iterations", salt.to_vec(), vec![0x01, 0x00, 0x00]),
        ("0 iterations", salt.to_vec(), vec![0x00]),
        ("negative iterations", salt.to_vec(), vec![0xff]),
        ("a 65-byte salt", vec![7; 65], vec![0x08, 0x00]),
    ] {
        let e = parse(key, &pkcs12_3des(&salt, &iterations, ct), Some(PASSWORD)).unwrap_err();
        assert!(
            matches!(&e, FormatError::UnsupportedKeyEncryption(m) if m.contains("pbeWithSHAAnd3-KeyTripleDES-CBC")),
            "{what}: {e:?}"
        );
    }
    // The largest accepted count is accepted (and merely yields another key: a wrong password).
    assert_eq!(
        parse(
            key,
            &pkcs12_3des(salt, &[0x00, 0xff, 0xff], ct),
            Some(PASSWORD)
        )
        .unwrap_err(),
        FormatError::KeyDecryption
    );
}

#[test]
fn imports_through_the_store_as_usecmng_does() {
    // What AT+USECMNG=0,2,"<name>",<size>,"<password>" runs, sealed and unsealed: the MD5 it
    // reports is openssl's; a wrong password is a format error (the modem's +CME ERROR: 1913).
    let dir = dir();
    let facts = facts(&dir);
    let disk = SimStorage::new();
    let mut store = Store::open(
        Arc::new(disk.clone()) as Arc<dyn Storage>,
        common::device(7),
        KdfPolicy::INSECURE_FAST_FOR_TESTS,
    )
    .unwrap();
    let import = |store: &mut Store, file: &str, password: &[u8]| {
        store.import(
            CredentialType::ClientPrivateKey,
            file,
            &read(&dir, file),
            Some(password),
        )
    };
    for (sealed, files) in [
        (
            false,
            &[
                "rsa-pbe-md5-des.pem",
                "ec-pbe-sha1-des.der",
                "rsa-pem-des3.pem",
            ][..],
        ),
        (
            true,
            &[
                "rsa-pbe-sha1-3des.der",
                "ec-pbe-sha1-2des.pem",
                "ec-pem-des3.pem",
                "rsa-pem-des3-crlf.pem",
            ],
        ),
    ] {
        if sealed {
            store.seal(b"seal-pwd").unwrap();
        }
        for &file in files {
            let got = import(&mut store, file, PASSWORD).unwrap();
            assert_eq!(got.md5_hex(), facts[file].1, "{file}");
            assert_eq!(
                store
                    .facts(CredentialType::ClientPrivateKey, file)
                    .unwrap()
                    .md5_hex(),
                facts[file].1
            );
            assert!(matches!(
                import(&mut store, file, b"wrong"),
                Err(StoreError::Format(FormatError::KeyDecryption))
            ));
        }
    }
}

#[test]
fn make_sh_makes_the_fixtures_with_the_openssl_command_line() {
    let found = Command::new("openssl").arg("version").output();
    let Ok(version) = found else {
        panic!(
            "this test needs the openssl command line, which is missing: apt-get install openssl"
        )
    };
    assert!(version.status.success(), "openssl version failed");
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new("sh")
        .arg(dir().join("make.sh"))
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "make.sh with {}: {}",
        String::from_utf8_lossy(&version.stdout).trim(),
        String::from_utf8_lossy(&out.stderr)
    );
    // The same files as the committed ones (new keys, so other bytes and MD5s), and each
    // decrypts to what openssl decrypted it to.
    let names = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != "make.sh")
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(tmp.path()), names(&dir()));
    assert_eq!(check_all(tmp.path()), 28);
}

#[test]
fn a_traditional_pem_is_stored_as_the_pkcs1_key_inside_the_pkcs8_of_the_same_key() {
    // make.sh writes one RSA key in every form: the PKCS#8 of rsa-default.pem wraps (RFC 5958
    // privateKey) exactly the PKCS#1 DER that rsa-pem-*.pem is stored as.
    let dir = dir();
    let key = CredentialType::ClientPrivateKey;
    let pkcs8 = parse(key, &read(&dir, "rsa-default.pem"), Some(PASSWORD)).unwrap();
    let inner = pkcs8::PrivateKeyInfoRef::try_from(pkcs8.der.as_slice())
        .unwrap()
        .private_key
        .as_bytes()
        .to_vec();
    for file in [
        "rsa-pem-des.pem",
        "rsa-pem-des3.pem",
        "rsa-pem-des3-crlf.pem",
        "rsa-pem-aes128.pem",
        "rsa-pem-aes192.pem",
        "rsa-pem-aes256.pem",
    ] {
        let parsed = parse(key, &read(&dir, file), Some(PASSWORD)).unwrap();
        assert_eq!(parsed.der.as_slice(), inner.as_slice(), "{file}");
    }
}

#[test]
fn traditional_pems_refused_or_damaged() {
    let dir = dir();
    let key = CredentialType::ClientPrivateKey;
    // DES-EDE3-CFB, as openssl writes it: refused by name (1913), not taken as a wrong password.
    let e = parse(
        key,
        &read(&dir, "fail_rsa-pem-des3-cfb.pem"),
        Some(PASSWORD),
    )
    .unwrap_err();
    assert!(
        matches!(&e, FormatError::UnsupportedKeyEncryption(m) if m.contains("PEM DEK-Info DES-EDE3-CFB")),
        "{e:?}"
    );
    assert!(e.to_string().contains("openssl pkcs8 -topk8"), "{e}");
    let text = String::from_utf8(read(&dir, "rsa-pem-des3.pem")).unwrap();
    for (what, edited, expect) in [
        (
            "Proc-Type 4,MIC-CLEAR",
            text.replace("4,ENCRYPTED", "4,MIC-CLEAR"),
            "unsupported",
        ),
        (
            "a DEK-Info without IV",
            text.replace("DES-EDE3-CBC,", "DES-EDE3-CBC;"),
            "unsupported",
        ),
        ("no blank line", text.replacen("\n\n", "\n", 1), "pem"),
        (
            "no END line",
            text.replace("-----END RSA PRIVATE KEY-----", ""),
            "pem",
        ),
    ] {
        let e = parse(key, edited.as_bytes(), Some(PASSWORD)).unwrap_err();
        let ok = match expect {
            "unsupported" => matches!(e, FormatError::UnsupportedKeyEncryption(_)),
            _ => matches!(e, FormatError::Pem(_)),
        };
        assert!(ok, "{what}: {e:?}");
    }
    // Traditional PEM is a PEM form: the same bytes as a certificate are a PEM error, and a
    // traditional PEM is not taken for a certificate.
    assert!(matches!(
        parse(
            CredentialType::TrustedRootCa,
            text.as_bytes(),
            Some(PASSWORD)
        ),
        Err(FormatError::Pem(_))
    ));
    // Every byte flipped, and every cut: an error or (a flip inside the key's own numbers) a
    // different key, never a panic.
    let md5 = &facts(&dir)["rsa-pem-des3.pem"].1;
    let bytes = text.as_bytes();
    for i in 0..bytes.len() {
        if let Ok(p) = parse(key, &flip(bytes, i), Some(PASSWORD)) {
            assert_ne!(&p.facts.md5_hex(), md5, "flip at {i} went unnoticed");
        }
    }
    for cut in 1..bytes.len() - 1 {
        assert!(
            parse(key, &bytes[..cut], Some(PASSWORD)).is_err(),
            "cut at {cut}"
        );
    }
}
