//! Every accepted input form, checked against facts computed by openssl (`make.sh`): the MD5
//! of the stored DER, the subject CN and notAfter; and every rejection with its reason.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{facts, fixture};
use sealcell_store::credential::{CredentialType, FormatError, MAX_INPUT, parse};

const CERT_TYPES: [CredentialType; 4] = [
    CredentialType::TrustedRootCa,
    CredentialType::ClientCertificate,
    CredentialType::ServerCertificate,
    CredentialType::SignatureVerificationCertificate,
];

#[test]
fn certificates_pem_and_der_match_openssl() {
    let facts = facts();
    let mut seen = 0;
    for (file, (md5, cn, not_after)) in &facts {
        let Some(cn) = cn else { continue };
        for kind in CERT_TYPES {
            let parsed = parse(kind, &fixture(file), None)
                .unwrap_or_else(|e| panic!("{file} as {kind}: {e}"));
            assert_eq!(&parsed.facts.md5_hex(), md5, "{file}");
            assert_eq!(
                parsed.facts.subject_cn.as_deref(),
                Some(cn.as_str()),
                "{file}"
            );
            assert_eq!(
                parsed.facts.not_after.as_ref(),
                not_after.as_ref(),
                "{file}"
            );
            // The stored form is the DER of the certificate.
            let der_file = file.replace(".pem", ".der");
            assert_eq!(
                parsed.der.as_slice(),
                fixture(&der_file).as_slice(),
                "{file}"
            );
        }
        seen += 1;
    }
    assert_eq!(seen, 10);
}

#[test]
fn keys_in_every_form_match_openssl() {
    let facts = facts();
    let mut seen = 0;
    for (file, (md5, cn, _)) in &facts {
        if cn.is_some() {
            continue;
        }
        let password: Option<&[u8]> = file.contains("-enc").then_some(b"keypass123");
        let parsed = parse(CredentialType::ClientPrivateKey, &fixture(file), password)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(&parsed.facts.md5_hex(), md5, "{file}");
        assert_eq!(parsed.facts.subject_cn, None);
        assert_eq!(parsed.facts.not_after, None);
        seen += 1;
    }
    assert_eq!(seen, 10);
}

/// A fixture, the type it is offered as, a password, and the expected reason.
type Rejection = (
    &'static str,
    CredentialType,
    Option<&'static [u8]>,
    fn(&FormatError) -> bool,
);

#[test]
fn rejections_with_their_reasons() {
    use CredentialType::*;
    let cases: Vec<Rejection> = vec![
        ("truncated-cert.der", TrustedRootCa, None, |e| {
            matches!(e, FormatError::NotACertificate(_))
        }),
        ("trailing-cert.der", TrustedRootCa, None, |e| {
            matches!(e, FormatError::NotACertificate(_))
        }),
        ("garbage.bin", ClientCertificate, None, |e| {
            matches!(e, FormatError::NotACertificate(_))
        }),
        ("garbage.bin", ClientPrivateKey, None, |e| {
            matches!(e, FormatError::NotAKey)
        }),
        ("corrupt-cert.pem", TrustedRootCa, None, |e| {
            matches!(e, FormatError::NotACertificate(_) | FormatError::Pem(_))
        }),
        ("client-pkcs8.pem", TrustedRootCa, None, |e| {
            matches!(e, FormatError::WrongPemLabel { .. })
        }),
        ("client.pem", ClientPrivateKey, None, |e| {
            matches!(e, FormatError::WrongPemLabel { .. })
        }),
        ("client.der", ClientPrivateKey, None, |e| {
            matches!(e, FormatError::NotAKey)
        }),
        ("client-pkcs1.der", ServerCertificate, None, |e| {
            matches!(e, FormatError::NotACertificate(_))
        }),
        ("ec-with-params.pem", ClientPrivateKey, None, |e| {
            matches!(e, FormatError::WrongPemLabel { .. } | FormatError::Pem(_))
        }),
        ("client-pkcs8-enc.pem", ClientPrivateKey, None, |e| {
            *e == FormatError::KeyDecryption
        }),
        (
            "client-pkcs8-enc.pem",
            ClientPrivateKey,
            Some(b"wrong"),
            |e| *e == FormatError::KeyDecryption,
        ),
        (
            "client-pkcs8-enc.der",
            ClientPrivateKey,
            Some(b"keypass12"),
            |e| *e == FormatError::KeyDecryption,
        ),
    ];
    for (file, kind, password, check) in cases {
        let err = parse(kind, &fixture(file), password)
            .err()
            .unwrap_or_else(|| panic!("{file} as {kind} was accepted"));
        assert!(check(&err), "{file} as {kind}: unexpected error {err:?}");
    }
    assert_eq!(
        parse(CredentialType::TrustedRootCa, b"", None).unwrap_err(),
        FormatError::Empty
    );
    let big = vec![0x30; MAX_INPUT + 1];
    assert_eq!(
        parse(CredentialType::TrustedRootCa, &big, None).unwrap_err(),
        FormatError::TooLarge(MAX_INPUT + 1)
    );
}

#[test]
fn the_8k_certificate_fits_and_pem_with_leading_whitespace_is_fine() {
    let big = fixture("big.pem");
    assert!(big.len() <= MAX_INPUT && big.len() > 8000);
    parse(CredentialType::TrustedRootCa, &big, None).unwrap();
    let mut padded = b"\r\n  ".to_vec();
    padded.extend(fixture("root.pem"));
    parse(CredentialType::TrustedRootCa, &padded, None).unwrap();
}
