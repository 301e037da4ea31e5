//! Why a token operation failed, with hints, and the names of PKCS#11 return values.

use std::io;
use std::path::PathBuf;

use cryptoki::error::{Error as CkError, RvError};

use super::token::{MODULE_ENV, SOFTHSM2_MODULE};
use super::uri::UriError;
use crate::keygen::KeygenError;

/// Why a token operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs11Error {
    /// The URI is not usable.
    #[error(transparent)]
    Uri(#[from] UriError),
    /// Neither `module-path=` nor [`MODULE_ENV`].
    #[error("no PKCS#11 library: the URI has no module-path= and {MODULE_ENV} is not set")]
    NoModule,
    /// The library does not load or initialize.
    #[error("cannot load the PKCS#11 library {path}: {reason}")]
    Load {
        /// The library.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// No token with the URI's label (and serial, manufacturer, model).
    #[error("no token {wanted:?} in {module}; {}", list("tokens", available))]
    TokenNotFound {
        /// The label asked for.
        wanted: String,
        /// The library.
        module: PathBuf,
        /// The labels of the tokens present.
        available: Vec<String>,
    },
    /// The library loaded, and `C_Initialize` failed (SoftHSM2 without its configuration says
    /// `CKR_GENERAL_ERROR`).
    #[error("the PKCS#11 library {path} does not start: C_Initialize: {rv}")]
    Initialize {
        /// The library.
        path: PathBuf,
        /// The return value (`CKR_...`).
        rv: String,
    },
    /// Several tokens match.
    #[error("{count} tokens are labelled {wanted:?}")]
    TokenAmbiguous {
        /// The label asked for.
        wanted: String,
        /// How many match.
        count: usize,
    },
    /// No private key with the URI's label (and id).
    #[error(
        "no private key {uri} in the token; {}",
        list("private keys", available)
    )]
    KeyNotFound {
        /// The URI (without its query).
        uri: String,
        /// The labels of the private keys the token shows after login.
        available: Vec<String>,
    },
    /// Several private keys match.
    #[error("{count} private keys match {uri}")]
    KeyAmbiguous {
        /// The URI (without its query).
        uri: String,
        /// How many match.
        count: usize,
    },
    /// `keygen` would make a second key with one label.
    #[error(
        "the token {token:?} already has a key labelled {label:?}; keygen never replaces a key"
    )]
    KeyExists {
        /// The token.
        token: String,
        /// The label.
        label: String,
    },
    /// `C_Login` said `CKR_PIN_INCORRECT`.
    #[error("the token refused the PIN (CKR_PIN_INCORRECT)")]
    PinIncorrect,
    /// `C_Login` said `CKR_PIN_LOCKED`.
    #[error("the token's PIN is locked (CKR_PIN_LOCKED)")]
    PinLocked,
    /// The PIN file cannot be used.
    #[error("cannot read the PIN from {}: {reason}", path.display())]
    PinFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A key this tool does not sign with.
    #[error(
        "the key {uri} is {what}; firmware is signed with RSA (2048 to 4096 bits) or ECDSA P-256"
    )]
    UnsupportedKey {
        /// The URI (without its query).
        uri: String,
        /// What it is.
        what: String,
    },
    /// Reading the file to sign failed.
    #[error("cannot read the data to sign: {0}")]
    Io(#[from] io::Error),
    /// A PKCS#11 call failed.
    #[error("{function} failed: {rv}")]
    Token {
        /// The PKCS#11 function (`C_SignInit`, ...).
        function: &'static str,
        /// The return value (`CKR_...`) or the library wrapper's error.
        rv: String,
    },
    /// The certificate could not be built.
    #[error("cannot build the certificate: {0}")]
    Certificate(#[from] KeygenError),
    /// What the token returned is not what it should be (its signature does not verify, its
    /// public key does not parse).
    #[error("the token returned {0}")]
    Malformed(String),
}

fn list(what: &str, names: &[String]) -> String {
    if names.is_empty() {
        format!("there are no {what}")
    } else {
        let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
        format!("{what} present: {}", quoted.join(", "))
    }
}

impl Pkcs11Error {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Pkcs11Error::Uri(e) => return e.hint(),
            Pkcs11Error::NoModule => format!(
                "set {MODULE_ENV} to the token's PKCS#11 library (SoftHSM2: \
                 {SOFTHSM2_MODULE}) or add ?module-path=PATH to the URI"
            ),
            Pkcs11Error::Load { .. } => format!(
                "check the path ({MODULE_ENV} or module-path=); SoftHSM2's is {SOFTHSM2_MODULE} \
                 (apt-get install softhsm2)"
            ),
            Pkcs11Error::Initialize { .. } => "check the library's configuration (SoftHSM2: \
                 $SOFTHSM2_CONF or /etc/softhsm/softhsm2.conf, and that its tokendir exists)"
                .into(),
            Pkcs11Error::TokenNotFound { .. } => {
                "token= is the token's label (softhsm2-util --show-slots, p11tool --list-tokens)"
                    .into()
            }
            Pkcs11Error::TokenAmbiguous { .. } => {
                "add serial= to the URI to say which token".into()
            }
            Pkcs11Error::KeyNotFound { .. } => {
                "object= is the private key's label; id= (when given) must match too".into()
            }
            Pkcs11Error::KeyAmbiguous { .. } => "add id= to the URI to say which key".into(),
            Pkcs11Error::KeyExists { .. } => "choose another object= label".into(),
            Pkcs11Error::PinIncorrect => {
                "check the PIN (pin-source=file:, $SEALCELL_PKCS11_PIN or the prompt); \
                 tokens lock after a few wrong tries"
                    .into()
            }
            Pkcs11Error::PinLocked => {
                "the token's security officer must unlock or reset the PIN".into()
            }
            _ => return None,
        })
    }
}

/// `CKR_PIN_INCORRECT` from `PinIncorrect`: the return value's name as the standard spells it.
pub(super) fn rv_name(rv: &RvError) -> String {
    match rv {
        RvError::VendorDefined(v) => format!("CKR_VENDOR_DEFINED+{v:#x}"),
        RvError::UnknownErrorCode(v) => format!("CK_RV {v:#x}"),
        other => {
            let camel = format!("{other:?}");
            let mut s = String::from("CKR");
            for c in camel.chars() {
                if c.is_ascii_uppercase() {
                    s.push('_');
                }
                s.push(c.to_ascii_uppercase());
            }
            s
        }
    }
}

pub(super) fn token_error(function: &'static str) -> impl FnOnce(CkError) -> Pkcs11Error {
    move |e| Pkcs11Error::Token {
        function,
        rv: match &e {
            CkError::Pkcs11(rv, _) => rv_name(rv),
            other => other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_values_are_named_as_the_standard_does() {
        assert_eq!(rv_name(&RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(
            rv_name(&RvError::KeyFunctionNotPermitted),
            "CKR_KEY_FUNCTION_NOT_PERMITTED"
        );
        assert_eq!(rv_name(&RvError::UserNotLoggedIn), "CKR_USER_NOT_LOGGED_IN");
    }
}
