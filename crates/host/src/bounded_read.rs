//! Reading a small input file without trusting its size.
//!
//! A credential, a plan, a signature or a certificate given on the command line is read into
//! memory whole. [`read_capped`] reads at most one byte more than such a value can be, so a
//! wrong path (`/dev/zero`, a disk image, a 1 GB log) is refused after `max + 1` bytes instead of
//! being read to the end, and the error names the file, what it was meant to be and the limit:
//! `credential file x.pem is larger than 8 KiB (8192 bytes)`. Firmware packages are not read this
//! way: they are streamed and may be hundreds of MiB.
//!
//! ```
//! use sealcell_host::bounded_read::{MAX_SIGNATURE_FILE, read_capped};
//! let err = read_capped("/dev/zero".as_ref(), MAX_SIGNATURE_FILE, "signature file").unwrap_err();
//! assert_eq!(err.to_string(), "signature file /dev/zero is larger than 16 KiB (16384 bytes)");
//! ```

use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The largest credential file: a certificate or key to import, a signing key, a password file.
///
/// # Security
/// The module takes at most 8 KiB per `+USECMNG` import
/// ([`sealcell_fw::credential::MAX_INPUT`]); nothing larger can be a credential, so nothing
/// larger is read.
pub const MAX_CREDENTIAL_FILE: u64 = sealcell_fw::credential::MAX_INPUT as u64;

/// The largest provisioning plan.
///
/// # Security
/// A plan is a page of TOML naming at most 16 credentials and a few profiles; 1 MiB leaves room
/// for any comments while keeping a wrong path from filling memory.
pub const MAX_PLAN_FILE: u64 = 1024 * 1024;

/// The largest signature file.
///
/// # Security
/// A 4096-bit RSA signature is 512 bytes raw, 1024 as hex and under 700 as wrapped base64;
/// 16 KiB bounds every encoding `sealcell fw verify` and `sealcell fota` accept, with slack.
pub const MAX_SIGNATURE_FILE: u64 = 16 * 1024;

/// The largest certificate (or public key) file.
///
/// # Security
/// A verification certificate is a few KiB of PEM; 64 KiB allows a chain or long extensions and
/// bounds the memory a wrong path can take.
pub const MAX_CERTIFICATE_FILE: u64 = 64 * 1024;

/// Buffers up to this size are allocated whole before reading, so a secret never leaves a copy
/// behind in memory freed by a reallocation.
const PREALLOCATE: u64 = 1024 * 1024;

/// Why a capped read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("cannot read {what} {}", path.display())]
    Io {
        /// What the file was meant to be (`"signature file"`).
        what: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file holds more than a value of its kind can be.
    #[error("{what} {} is larger than {}", path.display(), limit(*max))]
    TooLarge {
        /// What the file was meant to be.
        what: String,
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        max: u64,
    },
    /// A text file (see [`read_capped_text`]) is not UTF-8.
    #[error("{what} {} is not UTF-8 text", path.display())]
    NotUtf8 {
        /// What the file was meant to be.
        what: String,
        /// The file.
        path: PathBuf,
    },
}

impl ReadError {
    /// The I/O error kind when the file could not be read (`NotFound`, ...); `None` when it was
    /// read and refused.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            ReadError::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

/// For callers whose errors hold an [`io::Error`] next to the path: the OS error as it was, or
/// the refusal without the path (the caller names it).
impl From<ReadError> for io::Error {
    fn from(e: ReadError) -> io::Error {
        match e {
            ReadError::Io { source, .. } => source,
            ReadError::TooLarge { what, max, .. } => io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("a {what} is at most {}", limit(max)),
            ),
            ReadError::NotUtf8 { what, .. } => io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the {what} is not UTF-8"),
            ),
        }
    }
}

/// Reads the file at `path` if it holds at most `max` bytes; `what` names it in errors
/// (`"credential file"`, `"plan"`).
///
/// Reads at most `max + 1` bytes whatever the file is (a device, a FIFO, a growing file).
pub fn read_capped(path: &Path, max: u64, what: &str) -> Result<Vec<u8>, ReadError> {
    let io_error = |source| ReadError::Io {
        what: what.to_string(),
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_error)?;
    let limit = max.saturating_add(1);
    let mut bytes = Vec::with_capacity(usize::try_from(limit.min(PREALLOCATE)).unwrap_or(0));
    file.take(limit).read_to_end(&mut bytes).map_err(io_error)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge {
            what: what.to_string(),
            path: path.to_path_buf(),
            max,
        });
    }
    Ok(bytes)
}

/// [`read_capped`] for a text file that is not a secret (a plan, an allowlist): the bytes must
/// be UTF-8.
pub fn read_capped_text(path: &Path, max: u64, what: &str) -> Result<String, ReadError> {
    let bytes = read_capped(path, max, what)?;
    String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8 {
        what: what.to_string(),
        path: path.to_path_buf(),
    })
}

/// `8 KiB (8192 bytes)` for a whole number of KiB or MiB, `100 bytes` otherwise.
fn limit(max: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    match max {
        0 => "0 bytes".to_string(),
        m if m % MIB == 0 => format!("{} MiB ({m} bytes)", m / MIB),
        m if m % KIB == 0 => format!("{} KiB ({m} bytes)", m / KIB),
        m => format!("{m} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/dev/zero` never ends: each read must stop at the cap, with the error that names it.
    fn refuses_dev_zero(max: u64, what: &str, expected: &str) {
        let started = std::time::Instant::now();
        let err = read_capped(Path::new("/dev/zero"), max, what).unwrap_err();
        assert_eq!(err.to_string(), expected);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    /// A file of exactly `max` bytes is read; one byte more is refused with `expected` (where
    /// `{}` stands for the file's path).
    fn one_byte_over(max: u64, what: &str, expected: &str) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![b'a'; max as usize]).unwrap();
        assert_eq!(read_capped(&path, max, what).unwrap().len() as u64, max);
        std::fs::write(&path, vec![b'a'; max as usize + 1]).unwrap();
        let err = read_capped(&path, max, what).unwrap_err();
        assert_eq!(
            err.to_string(),
            expected.replace("{}", &path.display().to_string())
        );
        assert_eq!(err.io_kind(), None);
    }

    #[test]
    fn credential_cap() {
        refuses_dev_zero(
            MAX_CREDENTIAL_FILE,
            "credential file",
            "credential file /dev/zero is larger than 8 KiB (8192 bytes)",
        );
        one_byte_over(
            MAX_CREDENTIAL_FILE,
            "credential file",
            "credential file {} is larger than 8 KiB (8192 bytes)",
        );
    }

    #[test]
    fn plan_cap() {
        refuses_dev_zero(
            MAX_PLAN_FILE,
            "plan",
            "plan /dev/zero is larger than 1 MiB (1048576 bytes)",
        );
        one_byte_over(
            MAX_PLAN_FILE,
            "plan",
            "plan {} is larger than 1 MiB (1048576 bytes)",
        );
    }

    #[test]
    fn signature_cap() {
        refuses_dev_zero(
            MAX_SIGNATURE_FILE,
            "signature file",
            "signature file /dev/zero is larger than 16 KiB (16384 bytes)",
        );
        one_byte_over(
            MAX_SIGNATURE_FILE,
            "signature file",
            "signature file {} is larger than 16 KiB (16384 bytes)",
        );
    }

    #[test]
    fn certificate_cap() {
        refuses_dev_zero(
            MAX_CERTIFICATE_FILE,
            "certificate file",
            "certificate file /dev/zero is larger than 64 KiB (65536 bytes)",
        );
        one_byte_over(
            MAX_CERTIFICATE_FILE,
            "certificate file",
            "certificate file {} is larger than 64 KiB (65536 bytes)",
        );
    }

    #[test]
    fn a_missing_file_keeps_its_os_error() {
        let err = read_capped(Path::new("/nonexistent/x.pem"), 10, "credential file").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read credential file /nonexistent/x.pem"
        );
        assert_eq!(err.io_kind(), Some(io::ErrorKind::NotFound));
        assert_eq!(
            std::error::Error::source(&err).map(|s| s.to_string()),
            Some("No such file or directory (os error 2)".to_string())
        );
        assert_eq!(io::Error::from(err).kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn as_an_io_error_the_refusal_leaves_the_path_to_the_caller() {
        let err = read_capped(Path::new("/dev/zero"), MAX_PLAN_FILE, "plan").unwrap_err();
        let io = io::Error::from(err);
        assert_eq!(io.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(io.to_string(), "a plan is at most 1 MiB (1048576 bytes)");
    }

    #[test]
    fn a_plan_is_read_through_the_cap() {
        let err = crate::plan::Plan::load(Path::new("/dev/zero")).unwrap_err();
        // The message names the file; the cause follows once in the chain.
        assert_eq!(err.to_string(), "cannot read /dev/zero");
        let cause = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(
            cause.as_deref(),
            Some("a plan is at most 1 MiB (1048576 bytes)")
        );
    }

    #[test]
    fn text_must_be_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.toml");
        std::fs::write(&path, b"a = \"\xff\"").unwrap();
        let err = read_capped_text(&path, 100, "plan").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("plan {} is not UTF-8 text", path.display())
        );
        std::fs::write(&path, "a = 1").unwrap();
        assert_eq!(read_capped_text(&path, 100, "plan").unwrap(), "a = 1");
    }

    #[test]
    fn limits_read_as_people_write_them() {
        assert_eq!(limit(4 * 1024 * 1024), "4 MiB (4194304 bytes)");
        assert_eq!(limit(4096), "4 KiB (4096 bytes)");
        assert_eq!(limit(1000), "1000 bytes");
        assert_eq!(limit(0), "0 bytes");
    }
}
