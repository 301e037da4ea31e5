//! Verification keys: RSA (2048..=4096 bits, PKCS#1 v1.5 with SHA-256) or ECDSA P-256 with
//! SHA-256, from a SubjectPublicKeyInfo (a certificate's, or `pubkey.pem` as
//! `openssl x509 -pubkey` writes it).

use der::{Decode, DecodePem};
use rsa::traits::PublicKeyParts;
use signature::hazmat::PrehashVerifier;
use spki::SubjectPublicKeyInfoRef;

/// The smallest RSA modulus accepted.
pub const MIN_RSA_BITS: u32 = 2048;
/// The largest RSA modulus accepted.
///
/// # Security
/// Bounds the cost of one verification.
pub const MAX_RSA_BITS: u32 = 4096;

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";

/// Why a key cannot verify firmware.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The public key does not parse.
    #[error("the public key does not parse: {0}")]
    Malformed(String),
    /// An RSA key smaller than 2048 bits.
    #[error("an RSA key of {0} bits is too small (at least {MIN_RSA_BITS} are required)")]
    RsaTooSmall(u32),
    /// An RSA key larger than 4096 bits.
    #[error("an RSA key of {0} bits is larger than the {MAX_RSA_BITS} accepted")]
    RsaTooLarge(u32),
    /// Not RSA nor ECDSA P-256.
    #[error("{0} keys cannot sign firmware here (RSA or ECDSA P-256 only)")]
    Unsupported(String),
}

/// A key that verifies SHA-256 firmware signatures.
#[derive(Clone, Debug)]
pub enum VerifyingKey {
    /// RSA PKCS#1 v1.5.
    Rsa {
        /// The key.
        key: rsa::pkcs1v15::VerifyingKey<sha2::Sha256>,
        /// Modulus size in bits.
        bits: u32,
        /// Signature length in bytes (the modulus length).
        signature_len: usize,
    },
    /// ECDSA over P-256.
    P256(p256::ecdsa::VerifyingKey),
}

/// Why a signature was not accepted by the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The decoded signature does not have the key's length.
    #[error("the signature is {got} bytes; this key's signatures are {expected}")]
    WrongLength {
        /// Bytes expected.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// It has the right shape but does not verify.
    #[error("the signature does not match the package and the key")]
    Mismatch,
}

impl VerifyingKey {
    /// The key of a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<VerifyingKey, KeyError> {
        let spki = SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        VerifyingKey::from_spki(spki)
    }

    /// The key of a `-----BEGIN PUBLIC KEY-----` PEM.
    pub fn from_spki_pem(pem: &str) -> Result<VerifyingKey, KeyError> {
        let spki = spki::SubjectPublicKeyInfoOwned::from_pem(pem)
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        let der = der::Encode::to_der(&spki).map_err(|e| KeyError::Malformed(e.to_string()))?;
        VerifyingKey::from_spki_der(&der)
    }

    /// The key of a parsed SubjectPublicKeyInfo.
    pub fn from_spki(spki: SubjectPublicKeyInfoRef<'_>) -> Result<VerifyingKey, KeyError> {
        let oid = spki.algorithm.oid.to_string();
        match oid.as_str() {
            OID_RSA => {
                let key = rsa::PublicKey::try_from(spki)
                    .map_err(|e| KeyError::Malformed(e.to_string()))?;
                let bits = key.n().bit_width();
                if bits < MIN_RSA_BITS {
                    return Err(KeyError::RsaTooSmall(bits));
                }
                if bits > MAX_RSA_BITS {
                    return Err(KeyError::RsaTooLarge(bits));
                }
                let signature_len = key.size();
                Ok(VerifyingKey::Rsa {
                    key: rsa::pkcs1v15::VerifyingKey::new(key),
                    bits,
                    signature_len,
                })
            }
            OID_EC => {
                let curve = spki
                    .algorithm
                    .parameters
                    .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok())
                    .map(|o| o.to_string());
                if curve.as_deref() != Some(OID_P256) {
                    return Err(KeyError::Unsupported(format!(
                        "EC ({})",
                        curve.unwrap_or_else(|| "unknown curve".into())
                    )));
                }
                p256::ecdsa::VerifyingKey::try_from(spki)
                    .map(VerifyingKey::P256)
                    .map_err(|e| KeyError::Malformed(e.to_string()))
            }
            other => Err(KeyError::Unsupported(other.to_string())),
        }
    }

    /// A short description: `RSA-2048` or `ECDSA P-256`.
    pub fn describe(&self) -> String {
        match self {
            VerifyingKey::Rsa { bits, .. } => format!("RSA-{bits}"),
            VerifyingKey::P256(_) => "ECDSA P-256".into(),
        }
    }

    /// Checks a signature over a SHA-256 digest. RSA signatures must be exactly the modulus
    /// length (no leading-zero stripping or padding by an encoding layer); ECDSA signatures are
    /// DER or 64-byte r‖s.
    pub fn verify_digest(&self, digest: &[u8; 32], sig: &[u8]) -> Result<(), SignatureError> {
        match self {
            VerifyingKey::Rsa {
                key, signature_len, ..
            } => {
                if sig.len() != *signature_len {
                    return Err(SignatureError::WrongLength {
                        expected: *signature_len,
                        got: sig.len(),
                    });
                }
                let sig = rsa::pkcs1v15::Signature::try_from(sig)
                    .map_err(|_| SignatureError::Mismatch)?;
                key.verify_prehash(digest, &sig)
                    .map_err(|_| SignatureError::Mismatch)
            }
            // The contract accepts both encodings: 64 bytes is taken as r‖s (IEEE P1363),
            // anything else as DER.
            VerifyingKey::P256(_) if sig.len() == 64 => self.verify_p1363(digest, sig),
            VerifyingKey::P256(_) => self.verify_der(digest, sig),
        }
    }

    /// ECDSA only: checks a 64-byte r‖s (IEEE P1363) signature.
    pub fn verify_p1363(&self, digest: &[u8; 32], sig: &[u8]) -> Result<(), SignatureError> {
        let VerifyingKey::P256(key) = self else {
            return Err(SignatureError::Mismatch);
        };
        if sig.len() != 64 {
            return Err(SignatureError::WrongLength {
                expected: 64,
                got: sig.len(),
            });
        }
        let sig = p256::ecdsa::Signature::from_slice(sig).map_err(|_| SignatureError::Mismatch)?;
        key.verify_prehash(digest, &sig)
            .map_err(|_| SignatureError::Mismatch)
    }

    /// ECDSA only: checks a DER (X9.62 `Ecdsa-Sig-Value`) signature, strictly encoded.
    pub fn verify_der(&self, digest: &[u8; 32], sig: &[u8]) -> Result<(), SignatureError> {
        let VerifyingKey::P256(key) = self else {
            return Err(SignatureError::Mismatch);
        };
        if !(8..=72).contains(&sig.len()) {
            return Err(SignatureError::WrongLength {
                expected: 72,
                got: sig.len(),
            });
        }
        let sig =
            p256::ecdsa::DerSignature::from_bytes(sig).map_err(|_| SignatureError::Mismatch)?;
        key.verify_prehash(digest, &sig)
            .map_err(|_| SignatureError::Mismatch)
    }
}
