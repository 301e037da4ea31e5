//! Firmware package signatures (application note §4.2, §4.3): what the customer's openssl
//! script of §4.3.1 makes, and what `AT+UFWSINSTALL` checks.
//!
//! | Need | Use |
//! |---|---|
//! | SHA-256 of a file of any size, constant memory | [`hash::sha256_reader`] |
//! | A signature from base64 (wrapped or not), hex or raw bytes | [`encoding::decode_signature`] |
//! | The verification key of a certificate, with its checks | [`certificate::SignerCertificate`] |
//! | Verify a package: the only way to get a [`VerifiedFirmware`] | [`verify::verify_package`] |
//! | Sign like `openssl dgst -sha256 -sign` | [`sign::SigningKey`] |
//! | Decrypt an encrypted PKCS#8 key (PBES2, PBES1, PKCS#12 schemes) | [`encrypted_key::EncryptedPrivateKey`] |
//! | Decrypt a traditional OpenSSL PEM (`Proc-Type: 4,ENCRYPTED`, `DEK-Info`) | [`encrypted_key::EncryptedPem`] |
//! | Sign, or make a key and its certificate, in a PKCS#11 token named by a `pkcs11:` URI | [`pkcs11::Pkcs11Uri`], [`pkcs11::Module`] |
//!
//! RSA PKCS#1 v1.5 with SHA-256 (`rsa` 0.10, constant-time; keys of 2048 to 4096 bits) and
//! ECDSA P-256 with SHA-256 (DER or 64-byte r‖s) are accepted; nothing else.
#![forbid(unsafe_code)]

pub mod certificate;
pub mod credential;
pub mod encoding;
pub mod encrypted_key;
pub mod hash;
pub mod key;
pub mod keygen;
pub mod legacy_pem;
pub mod pkcs11;
pub mod sign;
pub mod verify;
pub use verify::{VerifiedFirmware, VerifyError};
