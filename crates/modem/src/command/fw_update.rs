//! Firmware update (at-contract §6; application note §2.3, §4.2): `+UFWINSTALL` (MD5-only,
//! refused once sealed) and `+UFWSINSTALL` (a signature checked against a `VC` item, enabled
//! only by the seal). The package is `FOAT/updatePackage.bin`.
//!
//! Every check happens before `OK`. Then the install is recorded in `fw/state.toml` (atomically:
//! after a crash the module has the old firmware or the new one), the package is removed, the
//! `+UUFWINSTALL` URCs report progress and 128 (success), and the module reboots.
//!
//! `+UFWUPD=3[,<baud>[,"<md5>"]]` answers `+UFWUPD: ONGOING`, then runs an Xmodem-1k receiver
//! (`sealcell_at::xmodem`); the image replaces the package, then installs as `+UFWINSTALL`.
//! Ends without an image: `+CME ERROR: 2000` (the sender never started or kept failing),
//! `3000` (cancelled or out of sequence), `1637` (larger than the free space).

use md5::{Digest, Md5};
use sealcell_at::CmeError;
use sealcell_at::syntax::Form;
use sealcell_fw::certificate::{ClockPolicy, SignerCertificate};
use sealcell_fw::encoding::{SignatureFormat, decode_signature};
use sealcell_fw::key::SignatureError;
use sealcell_fw::verify::{VerifiedFirmware, VerifyError, verify_package};
use sealcell_store::StoreError;
use sealcell_store::credential::CredentialType;

use super::security::store_error;
use super::{CmdResult, Ctx, Outcome, storage_failure, undefined_form};
use crate::firmware::{InstallRecord, PACKAGE, UpdateMethod, package_version};
use crate::fs::{FsError, Tag};

/// The longest signature text accepted (4096-bit RSA is 684 base64 or 1024 hex characters).
///
/// # Security
/// Bounds what a signature argument can make the module decode.
pub const MAX_SIGNATURE_TEXT: usize = 1100;

/// A firmware update command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// `+UFWINSTALL[="<md5>"]`.
    Install,
    /// `+UFWSINSTALL="<signature>","<usecmng_iname>"`.
    SignedInstall,
    /// `+UFWUPD=3[,<baud>[,"<md5>"]]`: Xmodem-1k transfer, then install.
    Transfer,
}

impl Cmd {
    pub(crate) fn from_name(name: &str) -> Option<Cmd> {
        Some(match name {
            "+UFWINSTALL" => Cmd::Install,
            "+UFWSINSTALL" => Cmd::SignedInstall,
            "+UFWUPD" => Cmd::Transfer,
            _ => return None,
        })
    }
}

/// How a package came to be trusted: only these two ways exist.
enum Authority {
    Signed(VerifiedFirmware, String),
    Unsealed { method: UpdateMethod },
}

pub(crate) fn execute(cmd: Cmd, form: Form<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    match (cmd, form) {
        (Cmd::Install, Form::Action) => md5_install(ctx, None),
        (Cmd::Install, Form::Set(args)) => {
            let mut r = args.reader();
            let md5 = r.opt_string(32)?;
            r.finish()?;
            md5_install(ctx, md5)
        }
        (Cmd::SignedInstall, Form::Set(args)) => {
            let mut r = args.reader();
            let signature = r
                .string(MAX_SIGNATURE_TEXT)
                .map_err(|_| CmeError::OperationNotSupported)?;
            let iname = r
                .string(sealcell_store::credential::MAX_NAME * 4)
                .map_err(|_| CmeError::OperationNotSupported)?;
            r.finish()?;
            signed_install(ctx, signature, iname)
        }
        (Cmd::Transfer, Form::Set(args)) => {
            let mut r = args.reader();
            r.int(3..=3)?;
            if let Some(baud) = r.opt_int(0..=i64::MAX)?
                && ![
                    0, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 3000000,
                ]
                .contains(&baud)
            {
                return Err(CmeError::OperationNotSupported);
            }
            let md5 = r.opt_string(32)?.map(str::to_ascii_lowercase);
            r.finish()?;
            if md5
                .as_ref()
                .is_some_and(|m| m.len() != 32 || !m.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return Err(CmeError::OperationNotSupported);
            }
            ctx.module.firmware_update_allowed(UpdateMethod::Xmodem)?;
            let free = ctx.module.fs.free().map_err(storage_failure)?;
            let upload = ctx
                .module
                .fs
                .begin_replace(Tag::Foat, PACKAGE)
                .map_err(package_error)?;
            ctx.info(b"+UFWUPD: ONGOING");
            Ok(Outcome::Xmodem(Box::new(XmodemJob {
                free,
                upload: Some(upload),
                md5,
                hasher: Md5::new(),
            })))
        }
        (Cmd::Transfer, Form::Test) => {
            ctx.info(b"+UFWUPD: (3)");
            Ok(Outcome::Done)
        }
        (Cmd::Install | Cmd::SignedInstall, Form::Test) => Ok(Outcome::Done),
        (_, form) => undefined_form(form),
    }
}

fn package_error(e: FsError) -> CmeError {
    match e {
        FsError::NotFound => CmeError::FileNotFound,
        other => super::file_system::fs_error(other),
    }
}

fn md5_install(ctx: &mut Ctx<'_>, md5: Option<&str>) -> CmdResult {
    ctx.module
        .firmware_update_allowed(UpdateMethod::Md5Install)?;
    let reader = ctx
        .module
        .fs
        .reader(Tag::Foat, PACKAGE)
        .map_err(package_error)?;
    if let Some(want) = md5 {
        if want.len() != 32 || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CmeError::OperationNotSupported);
        }
        let mut hasher = Md5::new();
        let mut reader = reader;
        std::io::copy(&mut reader, &mut DigestWriter(&mut hasher)).map_err(storage_failure)?;
        if hex::encode(hasher.finalize()) != want.to_ascii_lowercase() {
            return Err(CmeError::FotaPackageDataCorrupted);
        }
    }
    install(
        ctx,
        Authority::Unsealed {
            method: UpdateMethod::Md5Install,
        },
    )
}

struct DigestWriter<'a>(&'a mut Md5);

impl std::io::Write for DigestWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn signed_install(ctx: &mut Ctx<'_>, signature: &str, iname: &str) -> CmdResult {
    ctx.module.firmware_update_allowed(UpdateMethod::Signed)?;
    let der = ctx
        .module
        .store
        .der(CredentialType::SignatureVerificationCertificate, iname)
        .map_err(|e| match e {
            StoreError::NotFound(..) => CmeError::OperationNotSupported,
            other => store_error(other),
        })?;
    // The stored item parsed as a certificate at import; here its fitness to sign firmware.
    let cert = SignerCertificate::parse(&der).map_err(|e| {
        tracing::info!(certificate = iname, reason = %e, "verification certificate refused");
        CmeError::SecFwPackageNotValid
    })?;
    // The application note's form is whitespace-free base64; hex is accepted too.
    if signature.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(CmeError::OperationNotSupported);
    }
    let sig = decode_signature(signature.as_bytes(), SignatureFormat::Auto)
        .map_err(|_| CmeError::OperationNotSupported)?;
    let reader = ctx
        .module
        .fs
        .reader(Tag::Foat, PACKAGE)
        .map_err(package_error)?;
    let clock = ClockPolicy::At(ctx.module.clock_unix());
    let verified = verify_package(reader, &sig, &cert, clock, |_| {}).map_err(|e| match e {
        VerifyError::Signature(SignatureError::WrongLength { .. }) => {
            CmeError::OperationNotSupported
        }
        VerifyError::Io(e) => storage_failure(e),
        other => {
            tracing::info!(certificate = iname, reason = %other, "firmware package refused");
            CmeError::SecFwPackageNotValid
        }
    })?;
    install(ctx, Authority::Signed(verified, iname.to_string()))
}

fn install(ctx: &mut Ctx<'_>, authority: Authority) -> CmdResult {
    let module = &mut *ctx.module;
    let reader = module
        .fs
        .reader(Tag::Foat, PACKAGE)
        .map_err(package_error)?;
    let size = reader.len();
    let new_version = package_version(reader);
    let (method, sha256, signer) = match authority {
        Authority::Signed(v, name) => ("UFWSINSTALL", hex::encode(v.sha256()), Some(name)),
        Authority::Unsealed { method } => {
            let reader = module
                .fs
                .reader(Tag::Foat, PACKAGE)
                .map_err(package_error)?;
            let (digest, _) =
                sealcell_fw::hash::sha256_reader(reader, |_| {}).map_err(storage_failure)?;
            let name = if method == UpdateMethod::Xmodem {
                "UFWUPD"
            } else {
                "UFWINSTALL"
            };
            (name, hex::encode(digest), None)
        }
    };
    let mut next = module.firmware.state.clone();
    if let Some(v) = &new_version {
        next.version = v.clone();
    }
    next.installs.push(InstallRecord {
        time_unix: u64::try_from(module.clock_unix()).unwrap_or(0),
        version: next.version.clone(),
        sha256,
        size,
        method: method.to_string(),
        signer,
    });
    // The new firmware is in place once fw/state.toml is: the package is removed after.
    module.firmware.store(next).map_err(storage_failure)?;
    if let Err(e) = module.fs.delete(Tag::Foat, PACKAGE) {
        tracing::warn!(error = %e, "the installed package could not be removed");
    }
    tracing::info!(version = %module.firmware.state.version, method, "firmware installed; rebooting");
    let urcs = [0, 20, 40, 60, 80, 100, 128]
        .iter()
        .map(|p| format!("+UUFWINSTALL: {p}").into_bytes())
        .collect();
    Ok(Outcome::RebootAfter(urcs))
}

/// An `AT+UFWUPD` transfer in progress: where the image goes, and its MD5 so far.
pub(crate) struct XmodemJob {
    pub(crate) free: u64,
    upload: Option<crate::fs::Upload>,
    md5: Option<String>,
    hasher: Md5,
}

impl XmodemJob {
    /// Takes image bytes from the receiver.
    pub(crate) fn write(&mut self, data: &[u8]) {
        self.hasher.update(data);
        if let Some(u) = self.upload.as_mut() {
            u.write(data);
        }
    }

    /// The transfer ended; installs the image (or reports why not).
    pub(crate) fn finish(
        mut self,
        status: sealcell_at::xmodem::Status,
        ctx: &mut Ctx<'_>,
    ) -> CmdResult {
        use sealcell_at::xmodem::{Failure, Status};
        match status {
            Status::Complete => {}
            Status::Failed(Failure::TooLarge) => return Err(CmeError::FfsMemoryNotAvailable),
            Status::Failed(Failure::Cancelled | Failure::OutOfSequence) => {
                return Err(CmeError::CommandAborted);
            }
            Status::Failed(_) | Status::Receiving => return Err(CmeError::CommandTimeout),
        }
        let upload = self.upload.take().ok_or(CmeError::MemoryFailure)?;
        upload.commit().map_err(storage_failure)?;
        let got = hex::encode(std::mem::take(&mut self.hasher).finalize());
        if self.md5.as_ref().is_some_and(|want| *want != got) {
            return Err(CmeError::FotaPackageDataCorrupted);
        }
        install(
            ctx,
            Authority::Unsealed {
                method: UpdateMethod::Xmodem,
            },
        )
    }
}
