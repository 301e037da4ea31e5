//! Credentials as `+USECMNG` takes them (at-contract §3): the five types, the accepted input
//! forms, and what the module reports about each (MD5 of the stored DER, subject common name,
//! notAfter).
//!
//! - Certificates (types 0, 1, 3, 4): one X.509 certificate, PEM (`CERTIFICATE`) or DER.
//! - Private keys (type 2), PEM or DER unless said otherwise:
//!   - PKCS#1 RSA (`RSA PRIVATE KEY`), SEC1 EC (`EC PRIVATE KEY`), PKCS#8 (`PRIVATE KEY`);
//!   - encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`), decrypted at import with the given password:
//!     PBES2 (PBKDF2 or scrypt, AES-CBC or DES-EDE3-CBC; what `openssl pkcs8 -topk8` writes
//!     today) **and** the schemes older tools write by default (at-contract §3):
//!     `pbeWithMD5AndDES-CBC` and `pbeWithSHA1AndDES-CBC` (PBES1, RFC 8018 §6.1; ubxlib's own
//!     test key is the first), `pbeWithSHAAnd3-KeyTripleDES-CBC` and
//!     `pbeWithSHAAnd2-KeyTripleDES-CBC` (PKCS#12, RFC 7292 appendix C). RC2 and MD2 schemes are
//!     refused;
//!   - the traditional OpenSSL encrypted PEM, PEM only: `RSA PRIVATE KEY` or `EC PRIVATE KEY`
//!     with `Proc-Type: 4,ENCRYPTED` and `DEK-Info: <cipher>,<IV hex>` headers (RFC 1421 style;
//!     `openssl genrsa -des3`, `openssl rsa -des3 -traditional`, `openssl ec -des3`; LF or
//!     CRLF), key from OpenSSL's `EVP_BytesToKey` (MD5, one iteration, salt = the IV's first 8
//!     bytes), DEK-Info `DES-CBC`, `DES-EDE3-CBC`, `AES-128-CBC`, `AES-192-CBC` or
//!     `AES-256-CBC`. Any other cipher or Proc-Type is
//!     [`FormatError::UnsupportedKeyEncryption`]; broken armour is [`FormatError::Pem`].
//!
//!   The decryption is [`crate::encrypted_key`], the same code `sealcell fw sign` uses; it
//!   logs the scheme it tried, never the password. A wrong or missing password is
//!   [`FormatError::KeyDecryption`], whatever the scheme (also when a wrong password happens to
//!   unpad: the plaintext must be the key its form names).
//!
//! Whatever comes in, the stored form is DER, and the MD5 the module reports is that of the
//! stored DER (as on real modules). An encrypted PKCS#8 key is stored decrypted, as PKCS#8; a
//! traditional encrypted PEM is stored decrypted in its own form, PKCS#1 or SEC1 (as an
//! unencrypted `RSA PRIVATE KEY` / `EC PRIVATE KEY` is), so its MD5 is that of
//! `openssl rsa -traditional -outform DER` (`openssl ec -outform DER`).
//! Anything else is a format error (`+CME ERROR: 1913`).

use std::fmt;

use crate::encrypted_key::{DecryptError, EncryptedPem, EncryptedPrivateKey, PemKeyKind};
use der::{Decode, Encode};
use md5::{Digest, Md5};
use zeroize::Zeroizing;

/// **TOBY-L2: at most 8192 bytes per import.**
///
/// # Security
/// Bounds the memory one import can take.
pub const MAX_INPUT: usize = sealcell_at::commands::usecmng::MAX_IMPORT;

/// **TOBY-L2: internal names of 1 to 200 characters.**
pub const MAX_NAME: usize = sealcell_at::commands::usecmng::MAX_NAME;

/// **TOBY-L2: passwords (the seal's and a key's) of at most 128 characters.**
pub const MAX_PASSWORD: usize = sealcell_at::commands::usecmng::MAX_PASSWORD;

/// The `+USECMNG` types (application note §3, §4.2): part of the wire vocabulary, defined in
/// `sealcell-at` so the module and the host tools share it; re-exported here for the store's
/// users.
pub use sealcell_at::commands::usecmng::CredentialType;

/// Why an input is not an accepted certificate or key. All map to `+CME ERROR: 1913`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Empty input.
    #[error("no data")]
    Empty,
    /// More than [`MAX_INPUT`] bytes.
    #[error("{0} bytes is more than the {MAX_INPUT} a credential may have")]
    TooLarge(usize),
    /// The PEM armour is malformed (or holds more than one block).
    #[error("malformed PEM: {0}")]
    Pem(String),
    /// A PEM block of a kind this type does not take.
    #[error("a {label} PEM block is not a {expected}")]
    WrongPemLabel {
        /// The label found.
        label: String,
        /// What was expected.
        expected: &'static str,
    },
    /// The DER does not parse as a certificate.
    #[error("not an X.509 certificate: {0}")]
    NotACertificate(String),
    /// The DER does not parse as any accepted private key form.
    #[error("not a PKCS#1, SEC1 or PKCS#8 private key")]
    NotAKey,
    /// An encrypted key and no password, or a wrong one.
    #[error("the encrypted private key could not be decrypted with the given password")]
    KeyDecryption,
    /// A PKCS#8 key of an algorithm the module's TLS cannot use.
    #[error("private key algorithm {0} is not RSA, EC or Ed25519")]
    UnsupportedKeyAlgorithm(String),
    /// An encrypted key of a scheme (or scheme parameters) the module does not decrypt: RC2,
    /// MD2, or an out-of-bounds iteration count in encrypted PKCS#8; in a traditional PEM, a
    /// DEK-Info cipher other than DES-CBC, DES-EDE3-CBC and AES-CBC, a malformed IV, or a
    /// Proc-Type other than `4,ENCRYPTED`.
    #[error("{0}")]
    UnsupportedKeyEncryption(String),
}

/// A parsed credential: the DER to store and what the module reports about it.
pub struct Parsed {
    /// The stored form.
    pub der: Zeroizing<Vec<u8>>,
    /// The reported facts.
    pub facts: Facts,
}

impl fmt::Debug for Parsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parsed")
            .field("der", &"[redacted]")
            .field("facts", &self.facts)
            .finish()
    }
}

/// What the module reports about a stored credential; never its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    /// MD5 of the stored DER.
    pub md5: [u8; 16],
    /// The certificate's subject common name (empty when it has none); `None` for keys.
    pub subject_cn: Option<String>,
    /// The certificate's notAfter as `YYYY/MM/DD HH:MM:SS`; `None` for keys.
    pub not_after: Option<String>,
}

impl Facts {
    /// The MD5 as 32 lowercase hex digits.
    pub fn md5_hex(&self) -> String {
        hex::encode(self.md5)
    }
}

/// Parses `input` as a credential of type `kind`; `password` decrypts an encrypted key
/// (encrypted PKCS#8 or a traditional encrypted PEM).
pub fn parse(
    kind: CredentialType,
    input: &[u8],
    password: Option<&[u8]>,
) -> Result<Parsed, FormatError> {
    if input.is_empty() {
        return Err(FormatError::Empty);
    }
    if input.len() > MAX_INPUT {
        return Err(FormatError::TooLarge(input.len()));
    }
    let der = if kind.is_certificate() {
        let (label, der) = unarmour(input)?;
        certificate_der(label.as_deref(), der)?
    } else if let Some(pem) = EncryptedPem::parse(input).map_err(decryption_error)? {
        traditional_pem_key(&pem, password)?
    } else {
        let (label, der) = unarmour(input)?;
        key_der(label.as_deref(), der, password)?
    };
    facts(kind, &der).map(|facts| Parsed { der, facts })
}

/// The facts of an already stored DER (used when the store is opened).
pub fn facts(kind: CredentialType, der: &[u8]) -> Result<Facts, FormatError> {
    let md5: [u8; 16] = Md5::digest(der).into();
    if !kind.is_certificate() {
        return Ok(Facts {
            md5,
            subject_cn: None,
            not_after: None,
        });
    }
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|e| FormatError::NotACertificate(e.to_string()))?;
    let subject_cn = cert
        .tbs_certificate()
        .subject()
        .common_name()
        .ok()
        .flatten()
        .map(|cn| cn.value().into_owned())
        .unwrap_or_default();
    let t = cert.tbs_certificate().validity().not_after.to_date_time();
    let not_after = format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minutes(),
        t.seconds()
    );
    Ok(Facts {
        md5,
        subject_cn: Some(subject_cn),
        not_after: Some(not_after),
    })
}

/// PEM -> (label, DER); anything else is taken as DER.
fn unarmour(input: &[u8]) -> Result<(Option<String>, Zeroizing<Vec<u8>>), FormatError> {
    let trimmed = input.trim_ascii_start();
    if !trimmed.starts_with(b"-----BEGIN ") {
        return Ok((None, Zeroizing::new(input.to_vec())));
    }
    let (label, der) = pem_rfc7468::decode_vec(trimmed.trim_ascii_end())
        .map_err(|e| FormatError::Pem(e.to_string()))?;
    Ok((Some(label.to_string()), Zeroizing::new(der)))
}

fn certificate_der(
    label: Option<&str>,
    der: Zeroizing<Vec<u8>>,
) -> Result<Zeroizing<Vec<u8>>, FormatError> {
    if let Some(l) = label.filter(|l| *l != "CERTIFICATE") {
        return Err(FormatError::WrongPemLabel {
            label: l.to_string(),
            expected: "CERTIFICATE",
        });
    }
    // Exactly one certificate: from_der refuses trailing bytes.
    x509_cert::Certificate::from_der(&der)
        .map_err(|e| FormatError::NotACertificate(e.to_string()))?;
    Ok(der)
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";

fn key_der(
    label: Option<&str>,
    der: Zeroizing<Vec<u8>>,
    password: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>, FormatError> {
    match label {
        Some("RSA PRIVATE KEY") => pkcs1_key(der),
        Some("EC PRIVATE KEY") => sec1_key(der),
        Some("PRIVATE KEY") => pkcs8_key(der),
        Some("ENCRYPTED PRIVATE KEY") => encrypted_pkcs8_key(&der, password),
        Some(other) => Err(FormatError::WrongPemLabel {
            label: other.to_string(),
            expected: "private key",
        }),
        None => {
            // DER: the forms are distinct ASN.1 structures, so at most one parses.
            if pkcs8::PrivateKeyInfoRef::try_from(der.as_slice()).is_ok() {
                pkcs8_key(der)
            } else if !matches!(
                EncryptedPrivateKey::parse(&der),
                Err(DecryptError::Malformed)
            ) {
                encrypted_pkcs8_key(&der, password)
            } else if pkcs1::RsaPrivateKeyRef::from_der(&der).is_ok() {
                Ok(der)
            } else {
                sec1_key(der)
            }
        }
    }
}

fn pkcs1_key(der: Zeroizing<Vec<u8>>) -> Result<Zeroizing<Vec<u8>>, FormatError> {
    pkcs1::RsaPrivateKeyRef::from_der(&der).map_err(|_| FormatError::NotAKey)?;
    Ok(der)
}

fn sec1_key(der: Zeroizing<Vec<u8>>) -> Result<Zeroizing<Vec<u8>>, FormatError> {
    sec1::EcPrivateKey::from_der(&der).map_err(|_| FormatError::NotAKey)?;
    Ok(der)
}

fn pkcs8_key(der: Zeroizing<Vec<u8>>) -> Result<Zeroizing<Vec<u8>>, FormatError> {
    let info =
        pkcs8::PrivateKeyInfoRef::try_from(der.as_slice()).map_err(|_| FormatError::NotAKey)?;
    let oid = info.algorithm.oid.to_string();
    if ![OID_RSA, OID_EC, OID_ED25519].contains(&oid.as_str()) {
        return Err(FormatError::UnsupportedKeyAlgorithm(oid));
    }
    Ok(der)
}

fn encrypted_pkcs8_key(
    der: &[u8],
    password: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>, FormatError> {
    let plain = EncryptedPrivateKey::parse(der)
        .and_then(|key| key.decrypt(password))
        .map_err(decryption_error)?;
    // The decryptor checked it is a PrivateKeyInfo; its algorithm must be one TLS can use.
    pkcs8_key(plain).map_err(not_a_key_is_decryption)
}

/// A traditional encrypted PEM, decrypted and kept in its own form: PKCS#1 or SEC1 DER.
fn traditional_pem_key(
    pem: &EncryptedPem,
    password: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>, FormatError> {
    let plain = pem.decrypt(password).map_err(decryption_error)?;
    // The decryptor checked it is the key its label names; these checks are the unencrypted
    // forms' own.
    match pem.kind() {
        PemKeyKind::Rsa => pkcs1_key(plain),
        PemKeyKind::Ec => sec1_key(plain),
    }
    .map_err(not_a_key_is_decryption)
}

/// The one mapping of decryption errors to format errors (all `+CME ERROR: 1913`).
fn decryption_error(e: DecryptError) -> FormatError {
    match e {
        DecryptError::Malformed => FormatError::NotAKey,
        DecryptError::NoPassword | DecryptError::Password(_) => FormatError::KeyDecryption,
        DecryptError::Pem(what) => FormatError::Pem(what),
        other => FormatError::UnsupportedKeyEncryption(other.to_string()),
    }
}

/// A decrypted plaintext that is not a key means the password was wrong.
fn not_a_key_is_decryption(e: FormatError) -> FormatError {
    if e == FormatError::NotAKey {
        FormatError::KeyDecryption
    } else {
        e
    }
}

/// Re-encodes DER for a round-trip check (used by tests).
#[doc(hidden)]
pub fn certificate_round_trip(der: &[u8]) -> Option<Vec<u8>> {
    x509_cert::Certificate::from_der(der).ok()?.to_der().ok()
}
