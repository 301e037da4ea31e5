//! The one mapping from the module's internal errors to `+CME ERROR` codes (at-contract §9), in
//! the pattern of rustls' `Error` -> `AlertDescription`: handlers wrap what went wrong in a
//! [`Failure`] and [`cme`] alone decides what the wire says, so the same failure answers the
//! same code from every command.
//!
//! [`cme`] matches [`Failure`] without a wildcard arm: a new variant does not compile until it
//! has a code. The errors inside come from other crates and are `#[non_exhaustive]`, so the
//! compiler requires a `_` arm for each of those; that arm names the code a new kind of that
//! error gets, and says why.
//!
//! Handlers that need a different code for the same internal error in their context (a
//! credential a TLS profile names is refused as "not allowed", not "not supported") get their
//! own variant, so the choice is still made here.

use std::fmt;
use std::io;

use sealcell_at::CmeError;
use sealcell_at::args::ArgError;
use sealcell_at::commands::ParseError;
use sealcell_fw::certificate::CertificateError;
use sealcell_fw::encoding::EncodingError;
use sealcell_fw::key::SignatureError;
use sealcell_fw::verify::VerifyError;
use sealcell_store::credential::FormatError;
use sealcell_store::{SealError, StoreError};

use crate::fs::FsError;

/// What went wrong inside the module, before it becomes a wire code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A command's arguments do not parse: wrong count, type, range or length.
    Wire(ParseError),
    /// The credential store refused or failed an operation (`+USECMNG`, a `VC` lookup).
    Store(StoreError),
    /// Sealing failed (`+USECCFG=0,1,...`).
    Seal(SealError),
    /// A credential a TLS profile names cannot be read for a request (missing, or the store
    /// does not open).
    TlsCredential(StoreError),
    /// The module's file system (`+UDWNFILE`, `+USECMNG=1`, the firmware package).
    Fs(FsError),
    /// Storage under the data directory failed (`nvm.toml`, `fw/state.toml`, a read).
    Io(io::Error),
    /// The `+UFWSINSTALL` signature check.
    Verify(VerifyError),
    /// The `VC` certificate cannot verify firmware.
    SignerCertificate(CertificateError),
    /// The `+UFWSINSTALL` signature text does not decode.
    SignatureText(EncodingError),
    /// An imported certificate or key is not in an accepted format.
    CredentialFormat(FormatError),
}

/// The wire code of a failure. One arm per choice.
pub(crate) fn cme(failure: &Failure) -> CmeError {
    match failure {
        Failure::Wire(_) => CmeError::OperationNotSupported,
        Failure::Store(e) => store(e),
        Failure::Seal(e) => seal(e),
        // A request must not run with part of its profile: refused as a whole.
        Failure::TlsCredential(_) => CmeError::OperationNotAllowed,
        Failure::Fs(e) => fs(e),
        Failure::Io(_) => CmeError::MemoryFailure,
        Failure::Verify(e) => verify(e),
        // The certificate was stored as a VC item but cannot sign firmware (key usage, key
        // type): the application note reports that as the package not being valid.
        Failure::SignerCertificate(_) => CmeError::SecFwPackageNotValid,
        // at-contract §6: a signature that is neither base64 nor hex is a parameter error.
        Failure::SignatureText(_) => CmeError::OperationNotSupported,
        Failure::CredentialFormat(_) => CmeError::UsecmngInvalidCertificateKeyFormat,
    }
}

fn store(e: &StoreError) -> CmeError {
    match e {
        // A cloned or tampered store, or one damaged record: nothing is revealed (§2).
        StoreError::Unopenable(_) | StoreError::Damaged { .. } => {
            CmeError::SecDataInconsistentOrUnsupported
        }
        // at-contract §3: an unknown item for remove or MD5 is a parameter error.
        StoreError::NotFound(..) | StoreError::InvalidName => CmeError::OperationNotSupported,
        StoreError::Full => CmeError::UsecmngDatabaseFull,
        StoreError::Format(_) => CmeError::UsecmngInvalidCertificateKeyFormat,
        StoreError::Io(_) => CmeError::MemoryFailure,
        // #[non_exhaustive] (sealcell-store): a new kind of failure is an internal one.
        _ => CmeError::MemoryFailure,
    }
}

fn seal(e: &SealError) -> CmeError {
    match e {
        SealError::AlreadySealed => CmeError::OperationNotAllowed,
        SealError::InvalidPassword => CmeError::OperationNotSupported,
        // The KDF or the random source failed: the module's fault, not the host's.
        SealError::Kdf(_) | SealError::Random(_) | SealError::Io(_) => CmeError::MemoryFailure,
        // #[non_exhaustive] (sealcell-store): a new kind of failure is an internal one.
        _ => CmeError::MemoryFailure,
    }
}

fn fs(e: &FsError) -> CmeError {
    match e {
        FsError::InvalidName => CmeError::FfsInvalidFilename,
        FsError::NotFound => CmeError::FileNotFound,
        FsError::NoSpace { .. } => CmeError::FfsMemoryNotAvailable,
        FsError::Io(_) => CmeError::MemoryFailure,
    }
}

fn verify(e: &VerifyError) -> CmeError {
    match e {
        // at-contract §6: a signature of the wrong length for the key is a parameter error.
        VerifyError::Signature(SignatureError::WrongLength { .. }) => {
            CmeError::OperationNotSupported
        }
        VerifyError::Io(_) => CmeError::MemoryFailure,
        // Every other mismatch: the package is not valid, kept, nothing installed (§6).
        VerifyError::Signature(_)
        | VerifyError::Encoding(_)
        | VerifyError::Key(_)
        | VerifyError::Certificate(_) => CmeError::SecFwPackageNotValid,
        // #[non_exhaustive] (sealcell-fw): a new reason to refuse a package refuses it.
        _ => CmeError::SecFwPackageNotValid,
    }
}

/// Maps a failure and logs the internal ones (those the host cannot fix: the answer is
/// `+CME ERROR: 23` and the cause is only in the log).
pub(crate) fn report(failure: Failure) -> CmeError {
    let code = cme(&failure);
    if code == CmeError::MemoryFailure {
        tracing::error!(error = %failure, "internal failure");
    }
    code
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Wire(e) => write!(f, "arguments: {e}"),
            Failure::Store(e) | Failure::TlsCredential(e) => write!(f, "credential store: {e}"),
            Failure::Seal(e) => write!(f, "seal: {e}"),
            Failure::Fs(e) => write!(f, "file system: {e}"),
            Failure::Io(e) => write!(f, "storage: {e}"),
            Failure::Verify(e) => write!(f, "firmware signature: {e}"),
            Failure::SignerCertificate(e) => write!(f, "verification certificate: {e}"),
            Failure::SignatureText(e) => write!(f, "signature text: {e}"),
            Failure::CredentialFormat(e) => write!(f, "credential format: {e}"),
        }
    }
}

impl From<Failure> for CmeError {
    fn from(failure: Failure) -> CmeError {
        report(failure)
    }
}

impl From<ParseError> for Failure {
    fn from(e: ParseError) -> Failure {
        Failure::Wire(e)
    }
}

impl From<ArgError> for Failure {
    fn from(e: ArgError) -> Failure {
        Failure::Wire(ParseError::Args(e))
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        Failure::Store(e)
    }
}

impl From<SealError> for Failure {
    fn from(e: SealError) -> Failure {
        Failure::Seal(e)
    }
}

impl From<FsError> for Failure {
    fn from(e: FsError) -> Failure {
        Failure::Fs(e)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure::Io(e)
    }
}

impl From<VerifyError> for Failure {
    fn from(e: VerifyError) -> Failure {
        Failure::Verify(e)
    }
}

impl From<CertificateError> for Failure {
    fn from(e: CertificateError) -> Failure {
        Failure::SignerCertificate(e)
    }
}

impl From<EncodingError> for Failure {
    fn from(e: EncodingError) -> Failure {
        Failure::SignatureText(e)
    }
}

impl From<FormatError> for Failure {
    fn from(e: FormatError) -> Failure {
        Failure::CredentialFormat(e)
    }
}

#[cfg(test)]
mod tests {
    use sealcell_store::OpenProblem;
    use sealcell_store::credential::CredentialType;

    use super::*;

    /// The codes the golden transcripts and the contract assert, one per failure.
    #[test]
    fn each_failure_keeps_its_wire_code() {
        let table: Vec<(Failure, u16)> = vec![
            (ArgError::TooMany.into(), 4),
            (
                StoreError::Unopenable(OpenProblem::SealRecordMissing).into(),
                1679,
            ),
            (
                StoreError::Damaged {
                    kind: CredentialType::TrustedRootCa,
                    name: "R".into(),
                    reason: "x".into(),
                }
                .into(),
                1679,
            ),
            (
                StoreError::NotFound(CredentialType::TrustedRootCa, "R".into()).into(),
                4,
            ),
            (StoreError::InvalidName.into(), 4),
            (StoreError::Full.into(), 1914),
            (StoreError::Format(FormatError::Empty).into(), 1913),
            (StoreError::Io(io::Error::other("disk")).into(), 23),
            (SealError::AlreadySealed.into(), 3),
            (SealError::InvalidPassword.into(), 4),
            (SealError::Kdf("k".into()).into(), 23),
            (
                Failure::TlsCredential(StoreError::NotFound(
                    CredentialType::ClientPrivateKey,
                    "K".into(),
                )),
                3,
            ),
            (FsError::InvalidName.into(), 1638),
            (FsError::NotFound.into(), 1612),
            (FsError::NoSpace { needed: 2, free: 1 }.into(), 1637),
            (FsError::Io(io::Error::other("disk")).into(), 23),
            (io::Error::other("disk").into(), 23),
            (
                VerifyError::Signature(SignatureError::WrongLength {
                    expected: 256,
                    got: 255,
                })
                .into(),
                4,
            ),
            (
                VerifyError::Signature(SignatureError::Mismatch).into(),
                1675,
            ),
            (VerifyError::Io(io::Error::other("disk")).into(), 23),
            (CertificateError::NoDigitalSignatureUsage.into(), 1675),
            (EncodingError::Empty.into(), 4),
            (FormatError::KeyDecryption.into(), 1913),
        ];
        for (failure, code) in table {
            assert_eq!(cme(&failure).code(), code, "{failure}");
        }
    }
}
