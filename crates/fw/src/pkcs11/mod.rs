//! Signing keys in a PKCS#11 token (an HSM, SoftHSM2, a YubiKey, a cloud HSM's library), named by
//! RFC 7512 `pkcs11:` URIs: the application note's §4.3 signature made by a key that never
//! leaves the token.
//!
//! | Need | Use |
//! |---|---|
//! | Read `pkcs11:token=...;object=...?pin-source=file:...` | [`Pkcs11Uri::parse`] |
//! | Which PKCS#11 library to load | [`module_path()`] |
//! | The PIN from `pin-source=file:` | [`Pin::from_file`] |
//! | Load the library, find the token, log in | [`Module::load`], [`Module::token`], [`Token::login`] |
//! | Sign a file like `openssl dgst -sha256 -sign` | [`Session::private_key`], [`Session::sign_reader`] |
//! | Make a key pair inside the token and its certificate | [`Session::generate`] |
//!
//! RSA signs with `CKM_SHA256_RSA_PKCS` streamed through `C_SignUpdate` (byte-identical to
//! openssl with the same key: PKCS#1 v1.5 is deterministic); a token without multi-part signing
//! gets `CKM_RSA_PKCS` over the DigestInfo of a SHA-256 computed on the host, the same bytes.
//! ECDSA P-256 signs a host-computed SHA-256 with `CKM_ECDSA`; the token's r‖s is re-encoded
//! as DER, as [`crate::sign::SigningKey`] writes it.
//!
//! # Security
//! The PIN is never taken from the URI (`pin-value=` is refused: a URI is an argument, and
//! arguments are visible to every user of the machine); it is zeroized after use. Keys made by
//! [`Session::generate`] are `CKA_SENSITIVE`, not `CKA_EXTRACTABLE`, and stored in the token.

mod cert;
mod error;
mod pin;
mod token;
mod uri;

pub use cert::GeneratedInToken;
pub use error::Pkcs11Error;
pub use pin::{MAX_PIN_FILE, PIN_ENV, Pin};
pub use token::{
    MODULE_ENV, Module, PrivateKey, SOFTHSM2_MODULE, Session, Token, TokenKeyKind, module_path,
};
pub use uri::{MAX_URI, Pkcs11Uri, UriError};
