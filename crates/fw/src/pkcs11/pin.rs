//! The token PIN: read from a file or given as text, zeroized, never printed.

use std::fmt;
use std::io::Read;
use std::path::Path;

use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use super::error::Pkcs11Error;

/// The environment variable holding the PIN when the URI has no `pin-source=`.
pub const PIN_ENV: &str = "SEALCELL_PKCS11_PIN";
/// The largest PIN file read.
///
/// # Security
/// A wrong path (`/dev/zero`, a disk image) is refused instead of read to the end.
pub const MAX_PIN_FILE: u64 = 4096;

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

    pub(super) fn auth(&self) -> AuthPin {
        // `String::from(&str)` has exactly the length as capacity, so the conversion to the
        // boxed str AuthPin holds (and zeroizes) does not reallocate and leave a copy behind.
        AuthPin::from(String::from(self.0.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
