//! RFC 7512 `pkcs11:` URIs: parsing, percent-encoding, the `pin-source=` file.

use std::fmt;
use std::path::PathBuf;

use super::pin::PIN_ENV;

/// The longest URI accepted.
///
/// # Security
/// Bounds what an argument can make the parser allocate.
pub const MAX_URI: usize = 4096;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pkcs11::SOFTHSM2_MODULE;

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
}
