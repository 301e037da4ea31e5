//! The token: load the PKCS#11 library, find the token, log in, find a key and sign with it.

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use sha2::{Digest, Sha256};

use super::error::{Pkcs11Error, rv_name, token_error};
use super::pin::Pin;
use super::uri::Pkcs11Uri;
use crate::hash::CHUNK;
use crate::key::{MAX_RSA_BITS, MIN_RSA_BITS};

/// The environment variable naming the PKCS#11 library when the URI has no `module-path=`.
pub const MODULE_ENV: &str = "SEALCELL_PKCS11_MODULE";
/// Where Debian and Ubuntu install SoftHSM2's PKCS#11 library (named in hints).
pub const SOFTHSM2_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// The DER of the named curve P-256 (`prime256v1`, 1.2.840.10045.3.1.7) as `CKA_EC_PARAMS`.
pub(super) const P256_PARAMS: [u8; 10] =
    [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// The DigestInfo prefix of SHA-256 (RFC 8017 §9.2, note 1), for `CKM_RSA_PKCS`.
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// The PKCS#11 library: the URI's `module-path=`, else `env` (the value of
/// [`MODULE_ENV`]).
pub fn module_path(uri: &Pkcs11Uri, env: Option<&std::ffi::OsStr>) -> Result<PathBuf, Pkcs11Error> {
    match (&uri.module_path, env) {
        (Some(p), _) => Ok(p.clone()),
        (None, Some(e)) if !e.is_empty() => Ok(PathBuf::from(e)),
        _ => Err(Pkcs11Error::NoModule),
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
    pub(super) session: cryptoki::session::Session,
    pub(super) token: String,
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
    pub(super) handle: ObjectHandle,
    pub(super) kind: TokenKeyKind,
}

impl PrivateKey {
    /// What kind of key it is.
    pub fn kind(&self) -> TokenKeyKind {
        self.kind
    }
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

    pub(super) fn find(
        &self,
        class: ObjectClass,
        uri: &Pkcs11Uri,
    ) -> Result<Vec<ObjectHandle>, Pkcs11Error> {
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
}

/// The number of significant bits of a big-endian modulus.
fn modulus_bits(n: &[u8]) -> u32 {
    let n = match n.iter().position(|b| *b != 0) {
        Some(i) => &n[i..],
        None => return 0,
    };
    (n.len() as u32 - 1) * 8 + (8 - n[0].leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

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
