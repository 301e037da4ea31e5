//! Package verification. [`VerifiedFirmware`] can only be made here, after the signature over
//! the SHA-256 of the whole package checked out, so code that installs firmware and takes a
//! `VerifiedFirmware` cannot be handed an unverified package.

use std::io::{self, Read};

use crate::certificate::{CertificateError, ClockPolicy, SignerCertificate};
use crate::encoding::EncodingError;
use crate::hash::sha256_reader;
use crate::key::{KeyError, SignatureError, VerifyingKey};

/// Why a package was not verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The signature text does not decode.
    #[error(transparent)]
    Encoding(#[from] EncodingError),
    /// The key cannot verify firmware.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The certificate cannot verify firmware.
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    /// The signature does not verify (or has the wrong length).
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The package could not be read.
    #[error("reading the package: {0}")]
    Io(#[from] io::Error),
}

/// Proof that a package of `size` bytes with this SHA-256 was signed by the named key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedFirmware {
    sha256: [u8; 32],
    size: u64,
    signer: String,
}

impl VerifiedFirmware {
    /// SHA-256 of the package that was verified.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The signer: the certificate's subject CN, or the key type.
    pub fn signer(&self) -> &str {
        &self.signer
    }
}

/// Verifies `signature` (already decoded) over the package read from `package` with `key`.
pub fn verify_with_key(
    package: impl Read,
    signature: &[u8],
    key: &VerifyingKey,
    progress: impl FnMut(u64),
) -> Result<VerifiedFirmware, VerifyError> {
    let (sha256, size) = sha256_reader(package, progress)?;
    key.verify_digest(&sha256, signature)?;
    Ok(VerifiedFirmware {
        sha256,
        size,
        signer: key.describe(),
    })
}

/// Verifies against a certificate: its checks first (key usage, dates under `clock`), then the
/// signature.
pub fn verify_package(
    package: impl Read,
    signature: &[u8],
    cert: &SignerCertificate,
    clock: ClockPolicy,
    progress: impl FnMut(u64),
) -> Result<VerifiedFirmware, VerifyError> {
    cert.check_validity(clock)?;
    let mut v = verify_with_key(package, signature, cert.key(), progress)?;
    if !cert.subject_cn().is_empty() {
        v.signer = cert.subject_cn().to_string();
    }
    Ok(v)
}
