//! Signing, as `openssl dgst -sha256 -sign KEY FILE` does: RSA PKCS#1 v1.5 over SHA-256
//! (deterministic, so byte-identical to openssl), or ECDSA P-256 over SHA-256 in DER.
//! Keys in every form openssl writes: PKCS#1 and SEC1 (`openssl genrsa -traditional`,
//! `ecparam -genkey`), PKCS#8, and encrypted PKCS#8 (PBES2, and the PBES1 / PKCS#12 schemes
//! older tools write), PEM or DER; and the traditional encrypted PEM (`Proc-Type: 4,ENCRYPTED`,
//! `DEK-Info: DES-EDE3-CBC,...`; `openssl genrsa -des3`, `openssl rsa|ec -des3`), PEM only.
//! Decryption: [`crate::encrypted_key`].

use pkcs8::DecodePrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use signature::hazmat::PrehashSigner;
use zeroize::Zeroizing;

use crate::encrypted_key::{DecryptError, EncryptedPem, EncryptedPrivateKey, PemKeyKind};
use crate::key::{KeyError, MAX_RSA_BITS, MIN_RSA_BITS};

/// A key that signs firmware.
pub enum SigningKey {
    /// RSA PKCS#1 v1.5 with SHA-256.
    Rsa(rsa::pkcs1v15::SigningKey<sha2::Sha256>),
    /// ECDSA P-256 with SHA-256.
    P256(p256::ecdsa::SigningKey),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SigningKey::Rsa(_) => "SigningKey::Rsa([redacted])",
            SigningKey::P256(_) => "SigningKey::P256([redacted])",
        })
    }
}

/// Why a private key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigningKeyError {
    /// Not a private key in any accepted form.
    #[error("not an RSA or P-256 private key in PKCS#1, SEC1 or PKCS#8 form")]
    Unrecognised,
    /// Encrypted, and no password or a wrong one.
    #[error("the private key is encrypted and the password is missing or wrong")]
    Password,
    /// Encrypted with a scheme (or parameters) [`crate::encrypted_key`] does not decrypt.
    #[error(transparent)]
    Encryption(DecryptError),
    /// The key is not acceptable.
    #[error(transparent)]
    Key(#[from] KeyError),
}

fn rsa_key(key: rsa::PrivateKey) -> Result<SigningKey, SigningKeyError> {
    use rsa::traits::PublicKeyParts;
    let bits = key.n().bit_width();
    if bits < MIN_RSA_BITS {
        return Err(KeyError::RsaTooSmall(bits).into());
    }
    if bits > MAX_RSA_BITS {
        return Err(KeyError::RsaTooLarge(bits).into());
    }
    Ok(SigningKey::Rsa(rsa::pkcs1v15::SigningKey::new(key)))
}

fn from_pkcs8_der(der: &[u8]) -> Result<SigningKey, SigningKeyError> {
    if let Ok(k) = rsa::PrivateKey::from_pkcs8_der(der) {
        return rsa_key(k);
    }
    if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_der(der) {
        return Ok(SigningKey::P256(k));
    }
    Err(SigningKeyError::Unrecognised)
}

impl SigningKey {
    /// Reads a private key from PEM or DER; `password` opens an encrypted PKCS#8 key or a
    /// traditional encrypted PEM.
    pub fn parse(input: &[u8], password: Option<&[u8]>) -> Result<SigningKey, SigningKeyError> {
        if let Some(pem) = EncryptedPem::parse(input).map_err(decryption_error)? {
            return traditional_pem(&pem, password);
        }
        let text = input.trim_ascii_start();
        let (label, der) = if text.starts_with(b"-----BEGIN ") {
            let (label, der) = pem_rfc7468::decode_vec(text.trim_ascii_end())
                .map_err(|_| SigningKeyError::Unrecognised)?;
            (Some(label.to_string()), Zeroizing::new(der))
        } else {
            (None, Zeroizing::new(input.to_vec()))
        };
        match label.as_deref() {
            Some("RSA PRIVATE KEY") => rsa_key(
                rsa::PrivateKey::from_pkcs1_der(&der).map_err(|_| SigningKeyError::Unrecognised)?,
            ),
            Some("EC PRIVATE KEY") => {
                let sk = p256::SecretKey::from_sec1_der(&der)
                    .map_err(|_| SigningKeyError::Unrecognised)?;
                Ok(SigningKey::P256(sk.into()))
            }
            Some("PRIVATE KEY") => from_pkcs8_der(&der),
            Some("ENCRYPTED PRIVATE KEY") => decrypt(&der, password),
            Some(_) => Err(SigningKeyError::Unrecognised),
            None => {
                if let Ok(k) = from_pkcs8_der(&der) {
                    Ok(k)
                } else if !matches!(
                    EncryptedPrivateKey::parse(&der),
                    Err(DecryptError::Malformed)
                ) {
                    decrypt(&der, password)
                } else if let Ok(k) = rsa::PrivateKey::from_pkcs1_der(&der) {
                    rsa_key(k)
                } else {
                    let sk = p256::SecretKey::from_sec1_der(&der)
                        .map_err(|_| SigningKeyError::Unrecognised)?;
                    Ok(SigningKey::P256(sk.into()))
                }
            }
        }
    }

    /// Signs a SHA-256 digest.
    pub fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, signature::Error> {
        match self {
            SigningKey::Rsa(k) => {
                let sig: rsa::pkcs1v15::Signature = k.sign_prehash(digest)?;
                Ok(signature::SignatureEncoding::to_vec(&sig))
            }
            SigningKey::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign_prehash(digest)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
        }
    }

    /// The matching verification key.
    pub fn verifying_key(&self) -> crate::key::VerifyingKey {
        match self {
            SigningKey::Rsa(k) => {
                let public = signature::Keypair::verifying_key(k);
                let key: rsa::PublicKey = public.as_ref().clone();
                let (bits, signature_len) = {
                    use rsa::traits::PublicKeyParts;
                    (key.n().bit_width(), key.size())
                };
                crate::key::VerifyingKey::Rsa {
                    key: public,
                    bits,
                    signature_len,
                }
            }
            SigningKey::P256(k) => crate::key::VerifyingKey::P256(*k.verifying_key()),
        }
    }
}

/// The one mapping of decryption errors to signing-key errors.
fn decryption_error(e: DecryptError) -> SigningKeyError {
    match e {
        DecryptError::Malformed | DecryptError::Pem(_) => SigningKeyError::Unrecognised,
        DecryptError::NoPassword | DecryptError::Password(_) => SigningKeyError::Password,
        other => SigningKeyError::Encryption(other),
    }
}

/// A traditional encrypted PEM: decrypted (the decryptor checked the plaintext is the PKCS#1 or
/// SEC1 key its label names), then read as the unencrypted form is.
fn traditional_pem(
    pem: &EncryptedPem,
    password: Option<&[u8]>,
) -> Result<SigningKey, SigningKeyError> {
    let der = pem.decrypt(password).map_err(decryption_error)?;
    match pem.kind() {
        PemKeyKind::Rsa => rsa_key(
            rsa::PrivateKey::from_pkcs1_der(&der).map_err(|_| SigningKeyError::Unrecognised)?,
        ),
        PemKeyKind::Ec => {
            let sk =
                p256::SecretKey::from_sec1_der(&der).map_err(|_| SigningKeyError::Unrecognised)?;
            Ok(SigningKey::P256(sk.into()))
        }
    }
}

fn decrypt(der: &[u8], password: Option<&[u8]>) -> Result<SigningKey, SigningKeyError> {
    let plain = EncryptedPrivateKey::parse(der)
        .and_then(|key| key.decrypt(password))
        .map_err(decryption_error)?;
    from_pkcs8_der(&plain).map_err(|e| {
        if e == SigningKeyError::Unrecognised {
            SigningKeyError::Password
        } else {
            e
        }
    })
}
