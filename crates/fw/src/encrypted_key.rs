//! Encrypted private keys: the one decryptor behind `+USECMNG` type 2
//! (`sealcell_store::credential`), `sealcell fw sign` ([`crate::sign::SigningKey::parse`]) and
//! `sealcell provision` (which checks a plan's key files through `sealcell_store::credential`).
//! Two forms are accepted:
//!
//! - encrypted PKCS#8 (`EncryptedPrivateKeyInfo`, RFC 5958 §3; PEM `ENCRYPTED PRIVATE KEY` or
//!   DER): [`EncryptedPrivateKey`], with the schemes of the table below;
//! - the traditional OpenSSL encrypted PEM (`RSA PRIVATE KEY` or `EC PRIVATE KEY` with
//!   `Proc-Type: 4,ENCRYPTED` and `DEK-Info: <cipher>,<IV>` headers, RFC 1421 style; what
//!   `openssl genrsa -des3` and `openssl rsa|ec -des3 -traditional` write, and ubxlib's test
//!   key): [`EncryptedPem`], key from `EVP_BytesToKey` with MD5, DES-CBC, DES-EDE3-CBC or
//!   AES-128/192/256-CBC ([`PemCipher`]); it decrypts to PKCS#1 or SEC1 DER, as its label says.
//!   The header rules are in [`crate::legacy_pem`] (re-exported here).
//!
//! | Scheme | OID | Key derivation | Cipher | Implemented by |
//! |---|---|---|---|---|
//! | PBES2 (RFC 8018 §6.2) | 1.2.840.113549.1.5.13 | PBKDF2 or scrypt | AES-CBC, DES-EDE3-CBC | `pkcs8` / `pkcs5` |
//! | `pbeWithMD5AndDES-CBC` (PBES1, RFC 8018 §6.1) | 1.2.840.113549.1.5.3 | PBKDF1-MD5 | DES-CBC | here, over `md-5`, `des`, `cbc` |
//! | `pbeWithSHA1AndDES-CBC` (PBES1) | 1.2.840.113549.1.5.10 | PBKDF1-SHA1 | DES-CBC | here, over `sha1`, `des`, `cbc` |
//! | `pbeWithSHAAnd3-KeyTripleDES-CBC` (RFC 7292 appendix C) | 1.2.840.113549.1.12.1.3 | PKCS#12 KDF, SHA-1 (RFC 7292 B.2) | DES-EDE3-CBC | here |
//! | `pbeWithSHAAnd2-KeyTripleDES-CBC` (RFC 7292 appendix C) | 1.2.840.113549.1.12.1.4 | PKCS#12 KDF, SHA-1 | DES-EDE2-CBC | here |
//!
//! PBES1 and the PKCS#12 schemes are what older tools write by default (`openssl pkcs8 -topk8
//! -v1 PBE-MD5-DES`, `PBE-SHA1-DES`, `PBE-SHA1-3DES`; ubxlib's own test key is
//! `pbeWithMD5AndDES-CBC`). The `pkcs5` crate parses PBES1 parameters but will not decrypt them,
//! and the `pkcs12` crate's KDF is a pre-release of another generation, so PBKDF1 (RFC 8018 §5.1)
//! and the PKCS#12 KDF are written here, each a few lines, tested against the RFC's and
//! openssl's vectors. RC2 and MD2 schemes are refused ([`DecryptError::UnsupportedScheme`]).
//!
//! A wrong password is found as PKCS#5 padding that does not check, or a plaintext that is not a
//! PKCS#8 `PrivateKeyInfo` (for a traditional PEM: not the PKCS#1 or SEC1 key its label names):
//! both are [`DecryptError::Password`], as is a damaged ciphertext.
//! Derived keys, IVs and the plaintext are zeroized; the scheme tried is logged (`tracing`, at
//! debug), never the password.
//!
//! ```
//! use sealcell_fw::encrypted_key::{DecryptError, EncryptedPem, EncryptedPrivateKey};
//!
//! // Not an EncryptedPrivateKeyInfo at all:
//! assert_eq!(EncryptedPrivateKey::parse(b"\x30\x00").err(), Some(DecryptError::Malformed));
//! // Nor a traditional encrypted PEM (callers then try their other forms):
//! assert!(EncryptedPem::parse(b"\x30\x00").unwrap().is_none());
//! ```

use std::fmt;

use cbc::cipher::{BlockCipherDecrypt, BlockModeDecrypt, KeyInit, KeyIvInit, block_padding::Pkcs7};
use der::asn1::{ObjectIdentifier, OctetStringRef};
use der::{Decode, Reader, SliceReader};
use md5::Md5;
use sha1::Sha1;
use sha1::digest::Digest;
use sha1::digest::block_api::BlockSizeUser;
use spki::AlgorithmIdentifierRef;
use zeroize::{Zeroize, Zeroizing};

pub use crate::legacy_pem::{EncryptedPem, MAX_HEADER_LINES, MAX_PEM, PemCipher, PemKeyKind};

/// The highest PBES1 or PKCS#12 iteration count accepted (openssl writes 2048).
///
/// # Security
/// Bounds the hashing one import can cost: the count comes from the key file, which comes from
/// the wire. PBES1's `PBEParameter` decoder (`pkcs5`) takes at most 65535 anyway; the PKCS#12
/// schemes get the same bound.
pub const MAX_ITERATIONS: u32 = 65_535;

/// The longest PKCS#12 salt accepted (openssl writes 8 bytes; PBES1's is exactly 8).
///
/// # Security
/// Bounds the KDF's working buffer.
pub const MAX_SALT: usize = 64;

const OID_PBES2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
const OID_PBE_SHA_3DES: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.3");
const OID_PBE_SHA_2DES: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.4");

/// A password-based encryption scheme this module decrypts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// PBES2 (RFC 8018 §6.2), with whatever KDF and cipher `pkcs5` supports.
    Pbes2,
    /// `pbeWithMD5AndDES-CBC` (PBES1, RFC 8018 §6.1).
    PbeWithMd5AndDesCbc,
    /// `pbeWithSHA1AndDES-CBC` (PBES1, RFC 8018 §6.1).
    PbeWithSha1AndDesCbc,
    /// `pbeWithSHAAnd3-KeyTripleDES-CBC` (RFC 7292 appendix C).
    PbeWithShaAnd3KeyTripleDesCbc,
    /// `pbeWithSHAAnd2-KeyTripleDES-CBC` (RFC 7292 appendix C).
    PbeWithShaAnd2KeyTripleDesCbc,
    /// A traditional OpenSSL encrypted PEM ([`EncryptedPem`]) with this DEK-Info cipher;
    /// named `PEM DEK-Info <cipher>`.
    Pem(PemCipher),
}

impl Scheme {
    /// The scheme's ASN.1 name, as its RFC spells it.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Pbes2 => "PBES2",
            Scheme::PbeWithMd5AndDesCbc => "pbeWithMD5AndDES-CBC",
            Scheme::PbeWithSha1AndDesCbc => "pbeWithSHA1AndDES-CBC",
            Scheme::PbeWithShaAnd3KeyTripleDesCbc => "pbeWithSHAAnd3-KeyTripleDES-CBC",
            Scheme::PbeWithShaAnd2KeyTripleDesCbc => "pbeWithSHAAnd2-KeyTripleDES-CBC",
            Scheme::Pem(cipher) => cipher.scheme_name(),
        }
    }

    fn of(oid: ObjectIdentifier) -> Option<Scheme> {
        use pkcs5::pbes1;
        Some(match oid {
            OID_PBES2 => Scheme::Pbes2,
            pbes1::PBE_WITH_MD5_AND_DES_CBC_OID => Scheme::PbeWithMd5AndDesCbc,
            pbes1::PBE_WITH_SHA1_AND_DES_CBC_OID => Scheme::PbeWithSha1AndDesCbc,
            OID_PBE_SHA_3DES => Scheme::PbeWithShaAnd3KeyTripleDesCbc,
            OID_PBE_SHA_2DES => Scheme::PbeWithShaAnd2KeyTripleDesCbc,
            _ => return None,
        })
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an encrypted private key cannot be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The DER is not an `EncryptedPrivateKeyInfo` (RFC 5958 §3).
    #[error("not an encrypted PKCS#8 private key")]
    Malformed,
    /// The key is encrypted with a scheme not in the table of the module docs (RC2, MD2, ...).
    #[error(
        "private key encryption {0} is not supported; re-encrypt the key with `openssl pkcs8 -topk8`"
    )]
    UnsupportedScheme(String),
    /// The scheme's parameters are malformed or out of bounds (salt, iteration count).
    #[error(
        "the {0} parameters are malformed or out of bounds (at most {MAX_ITERATIONS} iterations)"
    )]
    Parameters(Scheme),
    /// A traditional encrypted PEM ([`EncryptedPem`]) whose armour is broken: no blank line
    /// after the headers, no END line, too many headers, a body that is not base64, too large.
    #[error("malformed PEM: {0}")]
    Pem(String),
    /// The key is encrypted and no password was given.
    #[error("the private key is encrypted and no password was given")]
    NoPassword,
    /// The password is wrong (or the ciphertext damaged): the result does not unpad, or is not a
    /// PKCS#8 private key.
    #[error("the password is wrong or the {0} key is damaged")]
    Password(Scheme),
}

/// A parsed `EncryptedPrivateKeyInfo` of a supported scheme, not yet decrypted.
#[derive(Clone, Copy)]
pub struct EncryptedPrivateKey<'a> {
    der: &'a [u8],
    scheme: Scheme,
    algorithm: AlgorithmIdentifierRef<'a>,
    ciphertext: &'a [u8],
}

impl fmt::Debug for EncryptedPrivateKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedPrivateKey")
            .field("scheme", &self.scheme)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

impl<'a> EncryptedPrivateKey<'a> {
    /// Parses the DER of an `EncryptedPrivateKeyInfo`. [`DecryptError::Malformed`] when it is
    /// not one (callers sniffing DER try the next form), [`DecryptError::UnsupportedScheme`]
    /// when it is one of a scheme this module does not decrypt.
    pub fn parse(der: &'a [u8]) -> Result<EncryptedPrivateKey<'a>, DecryptError> {
        let (algorithm, ciphertext) = outer(der).map_err(|_| DecryptError::Malformed)?;
        let scheme = Scheme::of(algorithm.oid)
            .ok_or_else(|| DecryptError::UnsupportedScheme(scheme_label(algorithm.oid)))?;
        Ok(EncryptedPrivateKey {
            der,
            scheme,
            algorithm,
            ciphertext,
        })
    }

    /// The scheme it is encrypted with.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Decrypts it with `password`: the DER of the PKCS#8 `PrivateKeyInfo` inside.
    pub fn decrypt(&self, password: Option<&[u8]>) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        logged_decrypt(
            self.scheme,
            "an encrypted PKCS#8 private key",
            password,
            |password| self.decrypt_with(password),
        )
    }

    fn decrypt_with(&self, password: &[u8]) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        let scheme = self.scheme;
        let wrong = DecryptError::Password(scheme);
        let plain = match scheme {
            Scheme::Pbes2 => {
                let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(self.der)
                    .map_err(|_| DecryptError::Parameters(scheme))?;
                let doc = info.decrypt(password).map_err(|_| wrong.clone())?;
                Zeroizing::new(doc.as_bytes().to_vec())
            }
            Scheme::PbeWithMd5AndDesCbc | Scheme::PbeWithSha1AndDesCbc => {
                let params = pkcs5::pbes1::Algorithm::try_from(self.algorithm)
                    .map_err(|_| DecryptError::Parameters(scheme))?
                    .parameters;
                let iterations = u32::from(params.iteration_count);
                if iterations == 0 {
                    return Err(DecryptError::Parameters(scheme));
                }
                // RFC 8018 §6.1.2: DK = PBKDF1(P, S, c, 16); K = DK<0..7>, IV = DK<8..15>.
                let mut dk = Zeroizing::new([0u8; 16]);
                if scheme == Scheme::PbeWithMd5AndDesCbc {
                    pbkdf1::<Md5>(password, &params.salt, iterations, dk.as_mut_slice());
                } else {
                    pbkdf1::<Sha1>(password, &params.salt, iterations, dk.as_mut_slice());
                }
                cbc_decrypt::<des::Des>(&dk[..8], &dk[8..], self.ciphertext)
                    .ok_or_else(|| wrong.clone())?
            }
            // Scheme::of never yields it: a traditional PEM is an EncryptedPem.
            Scheme::Pem(_) => return Err(DecryptError::Malformed),
            Scheme::PbeWithShaAnd3KeyTripleDesCbc | Scheme::PbeWithShaAnd2KeyTripleDesCbc => {
                let (salt, iterations) = pkcs12_parameters(self.algorithm)
                    .filter(|(s, i)| s.len() <= MAX_SALT && (1..=MAX_ITERATIONS).contains(i))
                    .ok_or(DecryptError::Parameters(scheme))?;
                // RFC 7292 B.2 and appendix C: key with ID 1, IV with ID 2, SHA-1.
                let password = bmp_password(password);
                let key_len = if scheme == Scheme::PbeWithShaAnd3KeyTripleDesCbc {
                    24
                } else {
                    16
                };
                let mut key = Zeroizing::new([0u8; 24]);
                let mut iv = Zeroizing::new([0u8; 8]);
                pkcs12_kdf::<Sha1>(&password, salt, 1, iterations, &mut key[..key_len]);
                pkcs12_kdf::<Sha1>(&password, salt, 2, iterations, iv.as_mut_slice());
                let plain = if key_len == 24 {
                    cbc_decrypt::<des::TdesEde3>(&key[..], &iv[..], self.ciphertext)
                } else {
                    cbc_decrypt::<des::TdesEde2>(&key[..16], &iv[..], self.ciphertext)
                };
                plain.ok_or_else(|| wrong.clone())?
            }
        };
        // A wrong password that happens to unpad (1 in 256 for DES) still yields garbage.
        pkcs8::PrivateKeyInfoRef::try_from(plain.as_slice()).map_err(|_| wrong)?;
        Ok(plain)
    }
}

/// Runs `decrypt` with the password (or fails with [`DecryptError::NoPassword`]), logging the
/// scheme tried and the outcome at debug; never the password.
pub(crate) fn logged_decrypt(
    scheme: Scheme,
    what: &'static str,
    password: Option<&[u8]>,
    decrypt: impl FnOnce(&[u8]) -> Result<Zeroizing<Vec<u8>>, DecryptError>,
) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
    tracing::debug!(scheme = scheme.name(), "decrypting {what}");
    let result = password.ok_or(DecryptError::NoPassword).and_then(decrypt);
    match &result {
        Ok(_) => tracing::debug!(scheme = scheme.name(), "private key decrypted"),
        Err(e) => tracing::debug!(
            scheme = scheme.name(),
            error = %e,
            "private key not decrypted"
        ),
    }
    result
}

/// `SEQUENCE { encryptionAlgorithm AlgorithmIdentifier, encryptedData OCTET STRING }`, and nothing
/// after it.
fn outer(der: &[u8]) -> der::Result<(AlgorithmIdentifierRef<'_>, &[u8])> {
    let mut reader = SliceReader::new(der)?;
    let parts = reader.sequence(|r| {
        let algorithm: AlgorithmIdentifierRef<'_> = r.decode()?;
        let data = <&OctetStringRef>::decode(r)?;
        Ok::<_, der::Error>((algorithm, data.as_bytes()))
    })?;
    reader.finish()?;
    Ok(parts)
}

/// The OID of a refused scheme, with its name when it is a known legacy one.
fn scheme_label(oid: ObjectIdentifier) -> String {
    let name = match oid.to_string().as_str() {
        "1.2.840.113549.1.5.1" => "pbeWithMD2AndDES-CBC",
        "1.2.840.113549.1.5.4" => "pbeWithMD2AndRC2-CBC",
        "1.2.840.113549.1.5.6" => "pbeWithMD5AndRC2-CBC",
        "1.2.840.113549.1.5.11" => "pbeWithSHA1AndRC2-CBC",
        "1.2.840.113549.1.12.1.1" => "pbeWithSHAAnd128BitRC4",
        "1.2.840.113549.1.12.1.2" => "pbeWithSHAAnd40BitRC4",
        "1.2.840.113549.1.12.1.5" => "pbeWithSHAAnd128BitRC2-CBC",
        "1.2.840.113549.1.12.1.6" => "pbewithSHAAnd40BitRC2-CBC",
        _ => return oid.to_string(),
    };
    format!("{name} ({oid})")
}

/// `pkcs-12PbeParams ::= SEQUENCE { salt OCTET STRING, iterations INTEGER }` (RFC 7292
/// appendix C).
fn pkcs12_parameters<'a>(algorithm: AlgorithmIdentifierRef<'a>) -> Option<(&'a [u8], u32)> {
    let params = algorithm.parameters?;
    params
        .sequence(|r| {
            let salt = <&OctetStringRef>::decode(r)?;
            let iterations: u32 = r.decode()?;
            Ok::<_, der::Error>((salt.as_bytes(), iterations))
        })
        .ok()
}

/// CBC decryption with PKCS#5 padding (RFC 8018 §6.1.2 steps 3-4); `None` when the key or IV
/// has the wrong length, the ciphertext is not whole blocks, or the padding does not check.
pub(crate) fn cbc_decrypt<C: BlockCipherDecrypt + KeyInit>(
    key: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let len = cbc::Decryptor::<C>::new_from_slices(key, iv)
        .ok()?
        .decrypt_padded::<Pkcs7>(&mut buf)
        .ok()?
        .len();
    buf.truncate(len);
    Some(buf)
}

/// PBKDF1 (RFC 8018 §5.1): T_1 = Hash(P || S), T_i = Hash(T_{i-1}), DK = T_c<0..dkLen-1>.
/// `out` is at most the hash's length (16 for PBES1 with MD5 or SHA-1), `iterations` >= 1.
fn pbkdf1<D: Digest>(password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
    let mut t = D::new()
        .chain_update(password)
        .chain_update(salt)
        .finalize();
    for _ in 1..iterations {
        let next = D::digest(&t);
        t.as_mut_slice().zeroize();
        t = next;
    }
    let n = out.len().min(t.len());
    out[..n].copy_from_slice(&t[..n]);
    t.as_mut_slice().zeroize();
}

/// The PKCS#12 KDF (RFC 7292 appendix B.2) filling `out`: `password` is already the
/// BMPString with its two trailing zero bytes ([`bmp_password`]), `id` 1 for a key, 2 for an IV,
/// 3 for a MAC key; `iterations` >= 1.
fn pkcs12_kdf<D: Digest + BlockSizeUser>(
    password: &[u8],
    salt: &[u8],
    id: u8,
    iterations: u32,
    out: &mut [u8],
) {
    let v = <D as BlockSizeUser>::block_size();
    let u = <D as Digest>::output_size();
    // 1. D: v bytes of ID. 2-4. I = S || P, each repeated to a whole number of v-byte blocks.
    let diversifier = vec![id; v];
    let repeat = |s: &[u8]| -> Vec<u8> {
        let len = v * s.len().div_ceil(v);
        s.iter().copied().cycle().take(len).collect()
    };
    let mut i = Zeroizing::new(repeat(salt));
    i.extend_from_slice(&Zeroizing::new(repeat(password)));
    // 5-7. For each u-byte chunk of the output: A = H^r(D || I); then I_j = (I_j + B + 1) mod
    // 2^v for each v-byte block I_j of I, where B is A repeated to v bytes.
    let mut chunks = out.chunks_mut(u).peekable();
    while let Some(chunk) = chunks.next() {
        let mut a = D::new()
            .chain_update(&diversifier)
            .chain_update(i.as_slice())
            .finalize();
        for _ in 1..iterations {
            let next = D::digest(&a);
            a.as_mut_slice().zeroize();
            a = next;
        }
        chunk.copy_from_slice(&a[..chunk.len()]);
        if chunks.peek().is_some() {
            let b = Zeroizing::new(a.iter().copied().cycle().take(v).collect::<Vec<u8>>());
            for block in i.chunks_mut(v) {
                let mut carry = 1u16;
                for (x, y) in block.iter_mut().zip(b.iter()).rev() {
                    carry += u16::from(*x) + u16::from(*y);
                    *x = carry as u8; // the low byte; the carry moves on
                    carry >>= 8;
                }
            }
        }
        a.as_mut_slice().zeroize();
    }
}

/// The password as the PKCS#12 KDF takes it (RFC 7292 appendix B.1): a BMPString (UTF-16 big
/// endian) with two trailing zero bytes. Like openssl (`OPENSSL_utf82uni`), UTF-8 is converted
/// as text, and bytes that are not UTF-8 are taken one character each.
fn bmp_password(password: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut bmp = Zeroizing::new(Vec::with_capacity(2 * password.len() + 2));
    match std::str::from_utf8(password) {
        Ok(text) => text
            .encode_utf16()
            .for_each(|unit| bmp.extend_from_slice(&unit.to_be_bytes())),
        Err(_) => password
            .iter()
            .for_each(|&b| bmp.extend_from_slice(&[0, b])),
    }
    bmp.extend_from_slice(&[0, 0]);
    bmp
}

#[cfg(test)]
mod tests {
    // Test code: a failed unwrap or panic is a failed test, reported with its location.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn pbkdf1_sha1_vector() {
        // The PKCS#5 v2.0 PBKDF1 vector ("password", salt 78578E5A5D63CB06, c = 1000), as in
        // PyCryptodome's and Bouncy Castle's test suites.
        let mut dk = [0u8; 16];
        pbkdf1::<Sha1>(b"password", &unhex("78578E5A5D63CB06"), 1000, &mut dk);
        assert_eq!(hex::encode_upper(dk), "DC19847E05C64D2FAF10EBFB4A3D2A20");
    }

    #[test]
    fn pbkdf1_with_one_iteration_is_one_hash() {
        let mut dk = [0u8; 16];
        pbkdf1::<Md5>(b"pw", b"saltsalt", 1, &mut dk);
        assert_eq!(dk[..], Md5::digest(b"pwsaltsalt")[..16]);
    }

    #[test]
    fn pkcs12_kdf_sha256_vectors_verified_against_openssl() {
        // RustCrypto's pkcs12 crate's vectors, checked against openssl's PKCS12_key_gen_utf8
        // (password "ge@äheim", salt 01..08, 100 iterations): key (ID 1), IV (ID 2), MAC (ID 3),
        // and outputs shorter than one hash.
        let pw = bmp_password("ge@äheim".as_bytes());
        let salt = [1, 2, 3, 4, 5, 6, 7, 8];
        for (id, expect) in [
            (
                1,
                "fae4d4957a3cc781e1180b9d4fb79c1e0c8579b746a3177e5b0768a3118bf863",
            ),
            (
                2,
                "e5ff813bc6547de5155b14d2fada85b3201a977349db6e26ccc998d9e8f83d6c",
            ),
            (
                3,
                "136355ed9434516682534f46d63956db5ff06b844702c2c1f3b46321e2524a4d",
            ),
        ] {
            for len in [32, 20, 12] {
                let mut out = vec![0u8; len];
                pkcs12_kdf::<sha2::Sha256>(&pw, &salt, id, 100, &mut out);
                assert_eq!(hex::encode(&out), expect[..2 * len], "ID {id}, {len} bytes");
            }
        }
    }

    #[test]
    fn pkcs12_kdf_longer_than_one_hash() {
        // More output than one SHA-1 (24 bytes for 3DES) takes a second round with I updated;
        // its first 20 bytes are the one-round output.
        let pw = bmp_password(b"legacy-pass");
        let (mut long, mut short) = ([0u8; 24], [0u8; 20]);
        pkcs12_kdf::<Sha1>(&pw, b"12345678", 1, 2048, &mut long);
        pkcs12_kdf::<Sha1>(&pw, b"12345678", 1, 2048, &mut short);
        assert_eq!(long[..20], short);
        assert_ne!(long[20..], [0; 4]);
    }

    #[test]
    fn bmp_password_is_utf16_big_endian_with_two_zero_bytes() {
        assert_eq!(bmp_password(b"ab")[..], [0, b'a', 0, b'b', 0, 0]);
        assert_eq!(
            bmp_password("ä€".as_bytes())[..],
            [0, 0xe4, 0x20, 0xac, 0, 0]
        );
        assert_eq!(bmp_password(&[0xff])[..], [0, 0xff, 0, 0]);
        assert_eq!(bmp_password(b"")[..], [0, 0]);
    }

    #[test]
    fn scheme_labels_name_refused_legacy_schemes() {
        let rc2 = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.6");
        assert_eq!(
            scheme_label(rc2),
            "pbewithSHAAnd40BitRC2-CBC (1.2.840.113549.1.12.1.6)"
        );
        let other = ObjectIdentifier::new_unwrap("1.2.3.4");
        assert_eq!(scheme_label(other), "1.2.3.4");
    }
}
