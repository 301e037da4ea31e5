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

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use der::{Decode, Encode, EncodePem};
use pkcs8::LineEnding;
use sha2::{Digest, Sha256};
use spki::{
    AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, EncodePublicKey,
    SubjectPublicKeyInfoOwned,
};
use x509_cert::builder::Builder;
use zeroize::Zeroizing;

use crate::hash::CHUNK;
use crate::key::{MAX_RSA_BITS, MIN_RSA_BITS, VerifyingKey};
use crate::keygen::{KeyAlgorithm, KeygenError};

/// The environment variable naming the PKCS#11 library when the URI has no `module-path=`.
pub const MODULE_ENV: &str = "SEALCELL_PKCS11_MODULE";
/// The environment variable holding the PIN when the URI has no `pin-source=`.
pub const PIN_ENV: &str = "SEALCELL_PKCS11_PIN";
/// Where Debian and Ubuntu install SoftHSM2's PKCS#11 library (named in hints).
pub const SOFTHSM2_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// The longest URI accepted.
///
/// # Security
/// Bounds what an argument can make the parser allocate.
pub const MAX_URI: usize = 4096;
/// The largest PIN file read.
///
/// # Security
/// A wrong path (`/dev/zero`, a disk image) is refused instead of read to the end.
pub const MAX_PIN_FILE: u64 = 4096;

/// The DER of the named curve P-256 (`prime256v1`, 1.2.840.10045.3.1.7) as `CKA_EC_PARAMS`.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// The DigestInfo prefix of SHA-256 (RFC 8017 §9.2, note 1), for `CKM_RSA_PKCS`.
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
/// sha256WithRSAEncryption (RFC 4055 §5).
const OID_SHA256_RSA: &str = "1.2.840.113549.1.1.11";
/// ecdsa-with-SHA256 (RFC 5758 §3.2).
const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";

/// A `pkcs11:` URI (RFC 7512) naming one private key.
///
/// Path attributes: `token` and `object` (labels, required), `id` (optional, bytes), `type`
/// (`private` only), `serial`, `manufacturer`, `model` (to tell tokens with one label apart).
/// Query attributes: `pin-source` (`file:PATH`), `module-path`. Values are percent-decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// The token's label (`CKA_LABEL` of the token, `token=`).
    pub token: String,
    /// The key's label (`object=`).
    pub object: String,
    /// The key's `CKA_ID` (`id=`), when given.
    pub id: Option<Vec<u8>>,
    /// The token's serial number (`serial=`), when given.
    pub serial: Option<String>,
    /// The token's manufacturer (`manufacturer=`), when given.
    pub manufacturer: Option<String>,
    /// The token's model (`model=`), when given.
    pub model: Option<String>,
    /// Where the PIN is (`pin-source=file:PATH`).
    pub pin_source: Option<PathBuf>,
    /// The PKCS#11 library (`module-path=`).
    pub module_path: Option<PathBuf>,
}

/// Why a `pkcs11:` URI is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// Does not start with `pkcs11:`.
    #[error("{0:?} is not a pkcs11: URI")]
    Scheme(String),
    /// Longer than [`MAX_URI`].
    #[error("the pkcs11: URI is longer than {MAX_URI} characters")]
    TooLong,
    /// An attribute without `=`.
    #[error("the pkcs11: URI attribute {0:?} has no '='")]
    Attribute(String),
    /// A `%` not followed by two hex digits.
    #[error("the pkcs11: URI attribute {0} has a bad percent-encoding")]
    Percent(String),
    /// A label that is not UTF-8 after percent-decoding.
    #[error("the pkcs11: URI attribute {0} is not UTF-8 text")]
    Utf8(String),
    /// The same attribute twice.
    #[error("the pkcs11: URI has {0} twice")]
    Duplicate(String),
    /// An attribute this tool does not use (a URI naming more than it understands would match
    /// the wrong thing).
    #[error("the pkcs11: URI attribute {0} is not supported here")]
    Unsupported(String),
    /// `token` or `object` is missing or empty.
    #[error("the pkcs11: URI has no {0}=")]
    Missing(&'static str),
    /// `type=` other than `private`.
    #[error("the pkcs11: URI says type={0}; only type=private names a signing key")]
    Type(String),
    /// `pin-value=`: the PIN would be in the command line.
    #[error(
        "the pkcs11: URI contains pin-value=; a PIN on the command line is visible to every user of this machine"
    )]
    PinValue,
    /// `pin-source=` other than a file.
    #[error("pin-source={0:?} is not a file (pin-source=file:PATH)")]
    PinSource(String),
}

impl UriError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            UriError::PinValue | UriError::PinSource(_) => format!(
                "put the PIN in a file readable only by you and use ?pin-source=file:PATH, \
                 or set {PIN_ENV}, or leave both out to be asked on the terminal"
            ),
            UriError::Unsupported(_) => "supported: token, object, id, type, serial, \
                 manufacturer, model; ?pin-source=file:PATH, &module-path=PATH"
                .into(),
            UriError::Missing(_) | UriError::Scheme(_) | UriError::Attribute(_) => {
                "write pkcs11:token=TOKEN;object=LABEL (quote it in the shell: ';' ends a command)"
                    .into()
            }
            _ => return None,
        })
    }
}

/// Decodes RFC 3986 percent-encoding (`%2F` → `/`); `name` is for the error.
fn percent_decode(value: &str, name: &str) -> Result<Vec<u8>, UriError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| UriError::Percent(name.to_string()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn text(value: &str, name: &str) -> Result<String, UriError> {
    String::from_utf8(percent_decode(value, name)?).map_err(|_| UriError::Utf8(name.to_string()))
}

/// `file:PATH`, `file:///abs/path` or `file://localhost/abs/path`, or a bare path.
fn pin_file(source: &str) -> Result<PathBuf, UriError> {
    let path = match source.strip_prefix("file:") {
        Some(rest) => match rest.strip_prefix("//") {
            Some(authority_path) => {
                let (host, path) = authority_path
                    .find('/')
                    .map(|i| authority_path.split_at(i))
                    .unwrap_or((authority_path, ""));
                if !(host.is_empty() || host == "localhost") || path.is_empty() {
                    return Err(UriError::PinSource(source.to_string()));
                }
                path
            }
            None => rest,
        },
        None if source.starts_with('/') || source.starts_with('.') => source,
        None => return Err(UriError::PinSource(source.to_string())),
    };
    if path.is_empty() {
        return Err(UriError::PinSource(source.to_string()));
    }
    Ok(PathBuf::from(path))
}

impl Pkcs11Uri {
    /// Whether `arg` is meant as a `pkcs11:` URI (rather than a key file).
    pub fn is_uri(arg: &str) -> bool {
        arg.get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("pkcs11:"))
    }

    /// Parses a URI naming a private key.
    pub fn parse(uri: &str) -> Result<Pkcs11Uri, UriError> {
        if uri.len() > MAX_URI {
            return Err(UriError::TooLong);
        }
        if !Self::is_uri(uri) {
            return Err(UriError::Scheme(uri.chars().take(64).collect()));
        }
        let rest = &uri[7..];
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut out = Pkcs11Uri {
            token: String::new(),
            object: String::new(),
            id: None,
            serial: None,
            manufacturer: None,
            model: None,
            pin_source: None,
            module_path: None,
        };
        let mut seen: Vec<String> = Vec::new();
        let attributes = path
            .split(';')
            .map(|a| (a, false))
            .chain(query.split('&').map(|a| (a, true)));
        for (attribute, in_query) in attributes {
            if attribute.is_empty() {
                continue;
            }
            let (name, value) = attribute
                .split_once('=')
                .ok_or_else(|| UriError::Attribute(attribute.chars().take(64).collect()))?;
            let name = name.to_ascii_lowercase();
            if seen.contains(&name) {
                return Err(UriError::Duplicate(name));
            }
            seen.push(name.clone());
            match (in_query, name.as_str()) {
                (false, "token") => out.token = text(value, &name)?,
                (false, "object") => out.object = text(value, &name)?,
                (false, "id") => out.id = Some(percent_decode(value, &name)?),
                (false, "serial") => out.serial = Some(text(value, &name)?),
                (false, "manufacturer") => out.manufacturer = Some(text(value, &name)?),
                (false, "model") => out.model = Some(text(value, &name)?),
                (false, "type") => {
                    let t = text(value, &name)?;
                    if t != "private" {
                        return Err(UriError::Type(t));
                    }
                }
                (true, "pin-value") => return Err(UriError::PinValue),
                (true, "pin-source") => {
                    out.pin_source = Some(pin_file(&text(value, &name)?)?);
                }
                (true, "module-path") => {
                    out.module_path = Some(PathBuf::from(text(value, &name)?));
                }
                _ => return Err(UriError::Unsupported(name)),
            }
        }
        if out.token.is_empty() {
            return Err(UriError::Missing("token"));
        }
        if out.object.is_empty() {
            return Err(UriError::Missing("object"));
        }
        Ok(out)
    }
}

/// RFC 7512 §2.3: what is not unreserved (or one of the characters the path may hold) is
/// percent-encoded.
fn percent_encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~:[]@!$'()*+,=&".contains(&b) {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// The URI's key, without its query (no PIN source, no library): what messages show.
impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pkcs11:token={};object={}",
            percent_encode(self.token.as_bytes()),
            percent_encode(self.object.as_bytes())
        )?;
        if let Some(id) = &self.id {
            write!(f, ";id=")?;
            for b in id {
                write!(f, "%{b:02X}")?;
            }
        }
        Ok(())
    }
}

/// The PKCS#11 library: the URI's `module-path=`, else `env` (the value of
/// [`MODULE_ENV`]).
pub fn module_path(uri: &Pkcs11Uri, env: Option<&std::ffi::OsStr>) -> Result<PathBuf, Pkcs11Error> {
    match (&uri.module_path, env) {
        (Some(p), _) => Ok(p.clone()),
        (None, Some(e)) if !e.is_empty() => Ok(PathBuf::from(e)),
        _ => Err(Pkcs11Error::NoModule),
    }
}

/// A token PIN, zeroized on drop, never printed.
pub struct Pin(Zeroizing<String>);

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin([redacted])")
    }
}

impl Pin {
    /// A PIN from text (the environment, a prompt); surrounding whitespace is removed.
    pub fn new(text: Zeroizing<String>) -> Pin {
        let trimmed = text.trim();
        if trimmed.len() == text.len() {
            Pin(text)
        } else {
            Pin(Zeroizing::new(trimmed.to_string()))
        }
    }

    /// The first line of `path`, trimmed.
    pub fn from_file(path: &Path) -> Result<Pin, Pkcs11Error> {
        let fail = |reason: String| Pkcs11Error::PinFile {
            path: path.to_path_buf(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
        let mut bytes = Zeroizing::new(Vec::new());
        file.take(MAX_PIN_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(e.to_string()))?;
        if bytes.len() as u64 > MAX_PIN_FILE {
            return Err(fail(format!("larger than {MAX_PIN_FILE} bytes")));
        }
        let line = bytes.split(|b| *b == b'\n').next().unwrap_or(&[]);
        let line = std::str::from_utf8(line).map_err(|_| fail("not UTF-8 text".into()))?;
        let pin = Pin::new(Zeroizing::new(line.to_string()));
        if pin.0.is_empty() {
            return Err(fail("its first line is empty".into()));
        }
        Ok(pin)
    }

    fn auth(&self) -> AuthPin {
        // `String::from(&str)` has exactly the length as capacity, so the conversion to the
        // boxed str AuthPin holds (and zeroizes) does not reallocate and leave a copy behind.
        AuthPin::from(String::from(self.0.as_str()))
    }
}

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
fn rv_name(rv: &RvError) -> String {
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

fn token_error(function: &'static str) -> impl FnOnce(CkError) -> Pkcs11Error {
    move |e| Pkcs11Error::Token {
        function,
        rv: match &e {
            CkError::Pkcs11(rv, _) => rv_name(rv),
            other => other.to_string(),
        },
    }
}

/// A loaded and initialized PKCS#11 library (finalized on drop).
pub struct Module {
    ctx: Pkcs11,
    path: PathBuf,
}

impl fmt::Debug for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Module").field("path", &self.path).finish()
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        // The sessions borrow the module, so they are closed by now.
        let _ = self.ctx.clone().finalize();
    }
}

/// A token in a slot of a [`Module`], found by its label.
#[derive(Debug)]
pub struct Token<'m> {
    module: &'m Module,
    slot: Slot,
    label: String,
    login_required: bool,
}

/// A read-write session with a token, logged in when the token needs it.
pub struct Session<'m> {
    session: cryptoki::session::Session,
    token: String,
    module: &'m Module,
}

impl fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("token", &self.token)
            .finish()
    }
}

/// The kind of a key in a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKeyKind {
    /// RSA with this many modulus bits.
    Rsa(u32),
    /// ECDSA over P-256.
    P256,
}

/// A private key in a token, able to sign.
#[derive(Debug)]
pub struct PrivateKey {
    handle: ObjectHandle,
    kind: TokenKeyKind,
}

impl PrivateKey {
    /// What kind of key it is.
    pub fn kind(&self) -> TokenKeyKind {
        self.kind
    }
}

/// What [`Session::generate`] makes besides the key pair in the token, all PEM.
#[derive(Debug)]
pub struct GeneratedInToken {
    /// The self-signed certificate (key usage digitalSignature), signed by the token.
    pub certificate_pem: String,
    /// The public key (`openssl x509 -pubkey` form).
    pub public_key_pem: String,
    /// The `CKA_ID` both keys got.
    pub id: Vec<u8>,
}

impl Module {
    /// Loads the PKCS#11 library at `path` and initializes it.
    pub fn load(path: &Path) -> Result<Module, Pkcs11Error> {
        let load = |reason: String| Pkcs11Error::Load {
            path: path.to_path_buf(),
            reason,
        };
        if !path.exists() {
            return Err(load("no such file".into()));
        }
        let ctx = Pkcs11::new(path).map_err(|e| load(e.to_string()))?;
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => {
                return Err(Pkcs11Error::Initialize {
                    path: path.to_path_buf(),
                    rv: match e {
                        CkError::Pkcs11(rv, _) => rv_name(&rv),
                        other => other.to_string(),
                    },
                });
            }
        }
        Ok(Module {
            ctx,
            path: path.to_path_buf(),
        })
    }

    /// The token the URI names (by label, and serial, manufacturer, model when given).
    pub fn token(&self, uri: &Pkcs11Uri) -> Result<Token<'_>, Pkcs11Error> {
        let slots = self
            .ctx
            .get_slots_with_token()
            .map_err(token_error("C_GetSlotList"))?;
        let mut available = Vec::new();
        let mut found = Vec::new();
        for slot in slots {
            let Ok(info) = self.ctx.get_token_info(slot) else {
                continue;
            };
            if !info.token_initialized() {
                continue;
            }
            let label = info.label().trim_end().to_string();
            let matches = label == uri.token
                && uri
                    .serial
                    .as_deref()
                    .is_none_or(|s| info.serial_number().trim_end() == s)
                && uri
                    .manufacturer
                    .as_deref()
                    .is_none_or(|s| info.manufacturer_id().trim_end() == s)
                && uri
                    .model
                    .as_deref()
                    .is_none_or(|s| info.model().trim_end() == s);
            if matches {
                found.push((slot, info.login_required()));
            }
            available.push(label);
        }
        match found.as_slice() {
            [] => Err(Pkcs11Error::TokenNotFound {
                wanted: uri.token.clone(),
                module: self.path.clone(),
                available,
            }),
            [(slot, login_required)] => Ok(Token {
                module: self,
                slot: *slot,
                label: uri.token.clone(),
                login_required: *login_required,
            }),
            more => Err(Pkcs11Error::TokenAmbiguous {
                wanted: uri.token.clone(),
                count: more.len(),
            }),
        }
    }
}

impl<'m> Token<'m> {
    /// Whether [`Token::login`] needs a PIN.
    pub fn login_required(&self) -> bool {
        self.login_required
    }

    /// The token's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Opens a read-write session and logs in as the user with `pin` (ignored when the token
    /// needs no login).
    pub fn login(&self, pin: Option<&Pin>) -> Result<Session<'m>, Pkcs11Error> {
        let session = self
            .module
            .ctx
            .open_rw_session(self.slot)
            .map_err(token_error("C_OpenSession"))?;
        if self.login_required {
            let auth = pin.map(Pin::auth);
            match session.login(UserType::User, auth.as_ref()) {
                Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
                    return Err(Pkcs11Error::PinIncorrect);
                }
                Err(CkError::Pkcs11(RvError::PinLocked, _)) => return Err(Pkcs11Error::PinLocked),
                Err(e) => return Err(token_error("C_Login")(e)),
            }
        }
        Ok(Session {
            session,
            token: self.label.clone(),
            module: self.module,
        })
    }
}

fn label_of(attributes: &[Attribute]) -> Option<String> {
    attributes.iter().find_map(|a| match a {
        Attribute::Label(l) => Some(String::from_utf8_lossy(l).into_owned()),
        _ => None,
    })
}

impl Session<'_> {
    fn labels(&self, class: ObjectClass) -> Vec<String> {
        let Ok(handles) = self.session.find_objects(&[Attribute::Class(class)]) else {
            return Vec::new();
        };
        let mut labels: Vec<String> = handles
            .into_iter()
            .filter_map(|h| {
                self.session
                    .get_attributes(h, &[AttributeType::Label])
                    .ok()
                    .and_then(|a| label_of(&a))
            })
            .collect();
        labels.sort();
        labels.dedup();
        labels
    }

    fn find(&self, class: ObjectClass, uri: &Pkcs11Uri) -> Result<Vec<ObjectHandle>, Pkcs11Error> {
        let mut template = vec![
            Attribute::Class(class),
            Attribute::Label(uri.object.as_bytes().to_vec()),
        ];
        if let Some(id) = &uri.id {
            template.push(Attribute::Id(id.clone()));
        }
        self.session
            .find_objects(&template)
            .map_err(token_error("C_FindObjects"))
    }

    /// The private key the URI names, with its kind checked.
    pub fn private_key(&self, uri: &Pkcs11Uri) -> Result<PrivateKey, Pkcs11Error> {
        let handle = match self.find(ObjectClass::PRIVATE_KEY, uri)?.as_slice() {
            [] => {
                return Err(Pkcs11Error::KeyNotFound {
                    uri: uri.to_string(),
                    available: self.labels(ObjectClass::PRIVATE_KEY),
                });
            }
            [h] => *h,
            more => {
                return Err(Pkcs11Error::KeyAmbiguous {
                    uri: uri.to_string(),
                    count: more.len(),
                });
            }
        };
        let attributes = self
            .session
            .get_attributes(
                handle,
                &[
                    AttributeType::KeyType,
                    AttributeType::Modulus,
                    AttributeType::EcParams,
                ],
            )
            .map_err(token_error("C_GetAttributeValue"))?;
        let unsupported = |what: String| Pkcs11Error::UnsupportedKey {
            uri: uri.to_string(),
            what,
        };
        let key_type = attributes.iter().find_map(|a| match a {
            Attribute::KeyType(t) => Some(*t),
            _ => None,
        });
        let kind = match key_type {
            Some(KeyType::RSA) => {
                let bits = attributes
                    .iter()
                    .find_map(|a| match a {
                        Attribute::Modulus(n) => Some(modulus_bits(n)),
                        _ => None,
                    })
                    .ok_or_else(|| {
                        unsupported("an RSA key whose modulus the token hides".into())
                    })?;
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                    return Err(unsupported(format!("RSA-{bits}")));
                }
                TokenKeyKind::Rsa(bits)
            }
            Some(KeyType::EC) => {
                let params = attributes.iter().find_map(|a| match a {
                    Attribute::EcParams(p) => Some(p.as_slice()),
                    _ => None,
                });
                if params != Some(P256_PARAMS.as_slice()) {
                    return Err(unsupported("an EC key on a curve other than P-256".into()));
                }
                TokenKeyKind::P256
            }
            Some(other) => return Err(unsupported(format!("a {other} key"))),
            None => return Err(unsupported("a key of unknown type".into())),
        };
        Ok(PrivateKey { handle, kind })
    }

    /// Signs everything `reader` yields, as `openssl dgst -sha256 -sign` does with the same key;
    /// `progress` sees the bytes read so far.
    pub fn sign_reader(
        &self,
        key: &PrivateKey,
        mut reader: impl Read,
        mut progress: impl FnMut(u64),
    ) -> Result<Vec<u8>, Pkcs11Error> {
        // RSA streams through the token when it signs in parts; the host hashes too, for
        // ECDSA and for a token that turns out not to.
        let mut streaming = matches!(key.kind, TokenKeyKind::Rsa(_))
            && self.module.ctx.is_fn_supported(Function::SignUpdate)
            && self.module.ctx.is_fn_supported(Function::SignFinal);
        if streaming {
            match self
                .session
                .sign_init(&Mechanism::Sha256RsaPkcs, key.handle)
            {
                Ok(()) => {}
                Err(CkError::Pkcs11(
                    RvError::MechanismInvalid | RvError::FunctionNotSupported,
                    _,
                )) => streaming = false,
                Err(e) => return Err(token_error("C_SignInit")(e)),
            }
        }
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        let mut total: u64 = 0;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if streaming {
                        // Ends the token's operation; its answer does not matter any more.
                        let _ = self.session.sign_final();
                    }
                    return Err(e.into());
                }
            };
            hasher.update(&buf[..n]);
            if streaming {
                match self.session.sign_update(&buf[..n]) {
                    Ok(()) => {}
                    Err(CkError::Pkcs11(RvError::FunctionNotSupported, _)) if total == 0 => {
                        streaming = false;
                    }
                    Err(e) => return Err(token_error("C_SignUpdate")(e)),
                }
            }
            total += n as u64;
            progress(total);
        }
        let digest: [u8; 32] = hasher.finalize().into();
        match key.kind {
            TokenKeyKind::Rsa(_) if streaming => self
                .session
                .sign_final()
                .map_err(token_error("C_SignFinal")),
            TokenKeyKind::Rsa(_) => {
                let mut info = SHA256_DIGEST_INFO.to_vec();
                info.extend_from_slice(&digest);
                self.session
                    .sign(&Mechanism::RsaPkcs, key.handle, &info)
                    .map_err(token_error("C_Sign"))
            }
            TokenKeyKind::P256 => self.sign_p256_digest(key, &digest),
        }
    }

    fn sign_p256_digest(
        &self,
        key: &PrivateKey,
        digest: &[u8; 32],
    ) -> Result<Vec<u8>, Pkcs11Error> {
        let rs = self
            .session
            .sign(&Mechanism::Ecdsa, key.handle, digest)
            .map_err(token_error("C_Sign"))?;
        let sig = p256::ecdsa::Signature::from_slice(&rs).map_err(|_| {
            Pkcs11Error::Malformed(format!("an ECDSA signature of {} bytes, not r‖s", rs.len()))
        })?;
        Ok(sig.to_der().as_bytes().to_vec())
    }

    /// Makes a key pair inside the token (`CKA_TOKEN`; the private key `CKA_PRIVATE`,
    /// `CKA_SENSITIVE`, not `CKA_EXTRACTABLE`, `CKA_SIGN`) labelled `uri.object` with `uri.id`
    /// (16 random bytes when absent), and a self-signed certificate for `subject_cn` valid `days`
    /// days, signed by the new key: what [`crate::keygen::generate`] makes, without the private
    /// key file.
    pub fn generate(
        &self,
        uri: &Pkcs11Uri,
        algorithm: KeyAlgorithm,
        subject_cn: &str,
        days: u32,
    ) -> Result<GeneratedInToken, Pkcs11Error> {
        if let KeyAlgorithm::Rsa(bits) = algorithm
            && !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits)
        {
            return Err(KeygenError::RsaSize(bits).into());
        }
        // The certificate's subject is checked before anything is made in the token.
        crate::keygen::subject_name(subject_cn)?;
        let by_label = Pkcs11Uri {
            id: None,
            ..uri.clone()
        };
        if !self.find(ObjectClass::PRIVATE_KEY, &by_label)?.is_empty()
            || !self.find(ObjectClass::PUBLIC_KEY, &by_label)?.is_empty()
        {
            return Err(Pkcs11Error::KeyExists {
                token: self.token.clone(),
                label: uri.object.clone(),
            });
        }
        let id = match &uri.id {
            Some(id) => id.clone(),
            None => {
                let mut id = vec![0u8; 16];
                getrandom::fill(&mut id)
                    .map_err(|e| Pkcs11Error::Certificate(KeygenError::Crypto(e.to_string())))?;
                id
            }
        };
        let label = uri.object.as_bytes().to_vec();
        let mut public = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Label(label.clone()),
            Attribute::Id(id.clone()),
        ];
        let private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label),
            Attribute::Id(id.clone()),
        ];
        let mechanism = match algorithm {
            KeyAlgorithm::Rsa(bits) => {
                public.push(Attribute::ModulusBits(u64::from(bits).into()));
                public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
                Mechanism::RsaPkcsKeyPairGen
            }
            KeyAlgorithm::P256 => {
                public.push(Attribute::EcParams(P256_PARAMS.to_vec()));
                Mechanism::EccKeyPairGen
            }
        };
        let (public_handle, private_handle) = self
            .session
            .generate_key_pair(&mechanism, &public, &private)
            .map_err(token_error("C_GenerateKeyPair"))?;
        let kind = match algorithm {
            KeyAlgorithm::Rsa(bits) => TokenKeyKind::Rsa(bits),
            KeyAlgorithm::P256 => TokenKeyKind::P256,
        };
        let key = PrivateKey {
            handle: private_handle,
            kind,
        };
        match self.certify(public_handle, &key, subject_cn, days) {
            Ok((certificate_pem, public_key_pem)) => Ok(GeneratedInToken {
                certificate_pem,
                public_key_pem,
                id,
            }),
            Err(e) => {
                // A key without its certificate is of no use and would block the label.
                let _ = self.session.destroy_object(private_handle);
                let _ = self.session.destroy_object(public_handle);
                Err(e)
            }
        }
    }

    /// The SubjectPublicKeyInfo of a public key object.
    fn spki(
        &self,
        public: ObjectHandle,
        kind: TokenKeyKind,
    ) -> Result<SubjectPublicKeyInfoOwned, Pkcs11Error> {
        let malformed = |e: String| Pkcs11Error::Malformed(format!("a public key that {e}"));
        match kind {
            TokenKeyKind::Rsa(_) => {
                let attributes = self
                    .session
                    .get_attributes(
                        public,
                        &[AttributeType::Modulus, AttributeType::PublicExponent],
                    )
                    .map_err(token_error("C_GetAttributeValue"))?;
                let (mut n, mut e) = (None, None);
                for a in attributes {
                    match a {
                        Attribute::Modulus(v) => n = Some(v),
                        Attribute::PublicExponent(v) => e = Some(v),
                        _ => {}
                    }
                }
                let (Some(n), Some(e)) = (n, e) else {
                    return Err(malformed("has no modulus or exponent".into()));
                };
                let key = rsa::PublicKey::new(
                    rsa::BoxedUint::from_be_slice_vartime(&n),
                    rsa::BoxedUint::from_be_slice_vartime(&e),
                )
                .map_err(|e| malformed(e.to_string()))?;
                SubjectPublicKeyInfoOwned::from_key(&key).map_err(|e| malformed(e.to_string()))
            }
            TokenKeyKind::P256 => {
                let attributes = self
                    .session
                    .get_attributes(public, &[AttributeType::EcPoint])
                    .map_err(token_error("C_GetAttributeValue"))?;
                let point = attributes
                    .into_iter()
                    .find_map(|a| match a {
                        Attribute::EcPoint(p) => Some(p),
                        _ => None,
                    })
                    .ok_or_else(|| malformed("has no EC point".into()))?;
                // CKA_EC_POINT is the DER OCTET STRING of the point (PKCS#11 §2.3.3); some
                // tokens give the bare point.
                let bare = match der::asn1::OctetString::from_der(&point) {
                    Ok(o) if point.len() != 65 => o.as_bytes().to_vec(),
                    _ => point,
                };
                let key = p256::PublicKey::from_sec1_bytes(&bare)
                    .map_err(|e| malformed(e.to_string()))?;
                SubjectPublicKeyInfoOwned::from_key(&key).map_err(|e| malformed(e.to_string()))
            }
        }
    }

    /// The certificate and public key PEMs of a new key pair; the certificate is checked with
    /// the public key before it is returned.
    fn certify(
        &self,
        public: ObjectHandle,
        key: &PrivateKey,
        subject_cn: &str,
        days: u32,
    ) -> Result<(String, String), Pkcs11Error> {
        let spki = self.spki(public, key.kind)?;
        let spki_der = spki.to_der().map_err(|e| {
            Pkcs11Error::Malformed(format!("a public key that does not encode: {e}"))
        })?;
        let verifier = VerifyingKey::from_spki_der(&spki_der)
            .map_err(|e| Pkcs11Error::Malformed(format!("a public key that {e}")))?;
        let signer = CertSigner {
            spki: spki.clone(),
            kind: key.kind,
        };
        let crypto = |e: String| Pkcs11Error::Certificate(KeygenError::Crypto(e));
        let mut builder = crate::keygen::certificate_builder(subject_cn, days, spki.clone())?;
        let tbs = builder
            .finalize(&signer)
            .map_err(|e| crypto(e.to_string()))?;
        let signature = self.sign_reader(key, tbs.as_slice(), |_| {})?;
        let digest: [u8; 32] = Sha256::digest(&tbs).into();
        verifier.verify_digest(&digest, &signature).map_err(|e| {
            Pkcs11Error::Malformed(format!(
                "a certificate signature that fails its own check: {e}"
            ))
        })?;
        let bits =
            der::asn1::BitString::from_bytes(&signature).map_err(|e| crypto(e.to_string()))?;
        let cert = builder
            .assemble(bits, &signer)
            .map_err(|e| crypto(e.to_string()))?;
        let certificate_pem = cert
            .to_pem(LineEnding::LF)
            .map_err(|e| crypto(e.to_string()))?;
        let public_key_pem = spki
            .to_pem(LineEnding::LF)
            .map_err(|e| crypto(e.to_string()))?;
        Ok((certificate_pem, public_key_pem))
    }
}

/// The number of significant bits of a big-endian modulus.
fn modulus_bits(n: &[u8]) -> u32 {
    let n = match n.iter().position(|b| *b != 0) {
        Some(i) => &n[i..],
        None => return 0,
    };
    (n.len() as u32 - 1) * 8 + (8 - n[0].leading_zeros())
}

/// What the certificate builder needs to know of the token's key: its public half and its
/// signature algorithm. The signature itself is made by [`Session::sign_reader`] between the
/// builder's `finalize` and `assemble`, so a token error stays a [`Pkcs11Error`].
struct CertSigner {
    spki: SubjectPublicKeyInfoOwned,
    kind: TokenKeyKind,
}

/// The public key the builder encodes into the certificate.
#[derive(Clone)]
struct PublicHalf(SubjectPublicKeyInfoOwned);

impl EncodePublicKey for PublicHalf {
    fn to_public_key_der(&self) -> spki::Result<der::Document> {
        Ok(der::Document::encode_msg(&self.0)?)
    }
}

impl signature::Keypair for CertSigner {
    type VerifyingKey = PublicHalf;

    fn verifying_key(&self) -> PublicHalf {
        PublicHalf(self.spki.clone())
    }
}

impl DynSignatureAlgorithmIdentifier for CertSigner {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(match self.kind {
            TokenKeyKind::Rsa(_) => AlgorithmIdentifierOwned {
                oid: der::oid::ObjectIdentifier::new_unwrap(OID_SHA256_RSA),
                parameters: Some(der::asn1::Null.into()),
            },
            TokenKeyKind::P256 => AlgorithmIdentifierOwned {
                oid: der::oid::ObjectIdentifier::new_unwrap(OID_ECDSA_SHA256),
                parameters: None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_uri_parses_and_decodes() {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=Line%201;object=fw%2Fsigner;id=%01%02;type=private\
             ?pin-source=file:/run/pin&module-path=/usr/lib/softhsm/libsofthsm2.so",
        )
        .unwrap();
        assert_eq!(u.token, "Line 1");
        assert_eq!(u.object, "fw/signer");
        assert_eq!(u.id.as_deref(), Some(&[1u8, 2][..]));
        assert_eq!(u.pin_source, Some(PathBuf::from("/run/pin")));
        assert_eq!(u.module_path, Some(PathBuf::from(SOFTHSM2_MODULE)));
        assert_eq!(
            u.to_string(),
            "pkcs11:token=Line%201;object=fw%2Fsigner;id=%01%02"
        );
        assert_eq!(
            Pkcs11Uri::parse(&u.to_string()).unwrap().object,
            "fw/signer"
        );
    }

    #[test]
    fn pin_sources() {
        for (source, path) in [
            ("file:pin.txt", "pin.txt"),
            ("file:/abs/pin", "/abs/pin"),
            ("file:///abs/pin", "/abs/pin"),
            ("file://localhost/abs/pin", "/abs/pin"),
            ("/abs/pin", "/abs/pin"),
        ] {
            let u =
                Pkcs11Uri::parse(&format!("pkcs11:token=t;object=o?pin-source={source}")).unwrap();
            assert_eq!(u.pin_source, Some(PathBuf::from(path)), "{source}");
        }
        for source in [
            "|/bin/askpass",
            "file://elsewhere/pin",
            "file:",
            "http://x/pin",
        ] {
            assert!(
                matches!(
                    Pkcs11Uri::parse(&format!("pkcs11:token=t;object=o?pin-source={source}")),
                    Err(UriError::PinSource(_))
                ),
                "{source}"
            );
        }
    }

    #[test]
    fn fail_uris_say_why() {
        for (uri, want) in [
            ("pkcs11:token=t;object=o?pin-value=1234", UriError::PinValue),
            ("pkcs11:object=o", UriError::Missing("token")),
            ("pkcs11:token=t", UriError::Missing("object")),
            (
                "pkcs11:token=t;token=u;object=o",
                UriError::Duplicate("token".into()),
            ),
            (
                "pkcs11:token=t;object=o;slot-id=1",
                UriError::Unsupported("slot-id".into()),
            ),
            (
                "pkcs11:token=t;object=o;type=cert",
                UriError::Type("cert".into()),
            ),
            (
                "pkcs11:token=t;object=%zz",
                UriError::Percent("object".into()),
            ),
            ("pkcs11:token=t;object=%ff", UriError::Utf8("object".into())),
            (
                "pkcs11:token=t;object",
                UriError::Attribute("object".into()),
            ),
            ("key.pem", UriError::Scheme("key.pem".into())),
        ] {
            assert_eq!(Pkcs11Uri::parse(uri), Err(want), "{uri}");
        }
        assert_eq!(
            Pkcs11Uri::parse(&format!("pkcs11:token={};object=o", "a".repeat(MAX_URI))),
            Err(UriError::TooLong)
        );
        assert!(
            UriError::PinValue
                .hint()
                .unwrap()
                .contains("pin-source=file:")
        );
    }

    #[test]
    fn the_module_comes_from_the_uri_then_the_environment() {
        let mut u = Pkcs11Uri::parse("pkcs11:token=t;object=o").unwrap();
        assert!(matches!(module_path(&u, None), Err(Pkcs11Error::NoModule)));
        assert!(
            Pkcs11Error::NoModule
                .hint()
                .unwrap()
                .contains(SOFTHSM2_MODULE)
        );
        let env = std::ffi::OsStr::new("/env/lib.so");
        assert_eq!(
            module_path(&u, Some(env)).unwrap(),
            PathBuf::from("/env/lib.so")
        );
        u.module_path = Some("/uri/lib.so".into());
        assert_eq!(
            module_path(&u, Some(env)).unwrap(),
            PathBuf::from("/uri/lib.so")
        );
    }

    #[test]
    fn return_values_are_named_as_the_standard_does() {
        assert_eq!(rv_name(&RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(
            rv_name(&RvError::KeyFunctionNotPermitted),
            "CKR_KEY_FUNCTION_NOT_PERMITTED"
        );
        assert_eq!(rv_name(&RvError::UserNotLoggedIn), "CKR_USER_NOT_LOGGED_IN");
    }

    #[test]
    fn pin_files_give_their_first_line_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pin");
        std::fs::write(&p, " 1234 \r\nsecond line\n").unwrap();
        assert_eq!(Pin::from_file(&p).unwrap().0.as_str(), "1234");
        std::fs::write(&p, "\n").unwrap();
        assert!(matches!(
            Pin::from_file(&p),
            Err(Pkcs11Error::PinFile { .. })
        ));
        assert!(!format!("{:?}", Pin::new(Zeroizing::new("1234".into()))).contains("1234"));
    }

    #[test]
    fn the_digest_info_is_the_one_rsa_signs() {
        // What `rsa` prepends for PKCS#1 v1.5 SHA-256 (RFC 8017 §9.2 note 1).
        let scheme = rsa::Pkcs1v15Sign::new::<Sha256>();
        assert_eq!(scheme.prefix.as_ref(), SHA256_DIGEST_INFO.as_slice());
    }

    #[test]
    fn modulus_sizes() {
        assert_eq!(modulus_bits(&[0x00, 0x80, 0, 0]), 24);
        assert_eq!(modulus_bits(&[0x01, 0]), 9);
        assert_eq!(modulus_bits(&[0; 3]), 0);
    }
}
