//! Firmware update (at-contract §6; application note §2.3, §4.2): `+UFWINSTALL` (MD5-only,
//! refused once sealed) and `+UFWSINSTALL` (a signature checked against a `VC` item, enabled
//! only by the seal). The package is `FOAT/updatePackage.bin`.
//!
//! Every check happens before `OK`. The checks that read the whole package (its MD5, its
//! SHA-256, the signature) run as a [`DiskJob`] off the module lock: other channels are served
//! while a large package is hashed; this channel waits. Then, back on the channel, the install
//! is recorded in `fw/state.toml` (atomically: after a crash the module has the old firmware or
//! the new one), the package is removed, the `+UUFWINSTALL` URCs report progress and 128
//! (success), and the module reboots.
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
use sealcell_fw::verify::{VerifyError, verify_package};
use sealcell_store::credential::CredentialType;

use super::{CmdResult, Continuation, Ctx, Outcome, storage_failure, undefined_form};
use crate::cme_map::Failure;
use crate::firmware::{InstallRecord, PACKAGE, UpdateMethod, package_version};
use crate::fs::{FileReader, FileSystem, FsError, Tag};
use crate::job::DiskJob;

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
    /// Its signature verified against the named `VC` item.
    Signed(String),
    /// The module is not sealed; installed by this method.
    Unsealed(UpdateMethod),
}

/// What the disk job learned about the package, for the install record.
struct Package {
    size: u64,
    version: Option<String>,
    sha256: String,
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
    Failure::Fs(e).into()
}

fn md5_install(ctx: &mut Ctx<'_>, md5: Option<&str>) -> CmdResult {
    ctx.module
        .firmware_update_allowed(UpdateMethod::Md5Install)?;
    let (reader, again) = package_readers(&ctx.module.fs)?;
    let want = match md5 {
        Some(m) if m.len() != 32 || !m.bytes().all(|b| b.is_ascii_hexdigit()) => {
            return Err(CmeError::OperationNotSupported);
        }
        m => m.map(str::to_ascii_lowercase),
    };
    Ok(Outcome::Wait(DiskJob::long(move || {
        let checked = hash_package(reader, again).and_then(|(md5, package)| {
            if want.is_some_and(|want| want != md5) {
                return Err(CmeError::FotaPackageDataCorrupted);
            }
            Ok(package)
        });
        installer(checked, Authority::Unsealed(UpdateMethod::Md5Install))
    })))
}

/// Two readers of the package: one to hash, one to find its version.
fn package_readers(fs: &FileSystem) -> Result<(FileReader, FileReader), CmeError> {
    let a = fs.reader(Tag::Foat, PACKAGE).map_err(package_error)?;
    let b = fs.reader(Tag::Foat, PACKAGE).map_err(package_error)?;
    Ok((a, b))
}

/// Reads the package once for its MD5 (hex) and SHA-256, and its `VERSION` entry.
fn hash_package(mut reader: FileReader, again: FileReader) -> Result<(String, Package), CmeError> {
    use sha2::Digest as _;
    let size = reader.len();
    let mut md5 = Md5::new();
    let mut sha = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = std::io::Read::read(&mut reader, &mut buf).map_err(storage_failure)?;
        if n == 0 {
            break;
        }
        Digest::update(&mut md5, &buf[..n]);
        sha.update(&buf[..n]);
    }
    let package = Package {
        size,
        version: package_version(again),
        sha256: hex::encode(sha.finalize()),
    };
    Ok((hex::encode(md5.finalize()), package))
}

fn signed_install(ctx: &mut Ctx<'_>, signature: &str, iname: &str) -> CmdResult {
    ctx.module.firmware_update_allowed(UpdateMethod::Signed)?;
    let der = ctx
        .module
        .store()
        .der(CredentialType::SignatureVerificationCertificate, iname)
        .map_err(Failure::Store)?;
    // The stored item parsed as a certificate at import; here its fitness to sign firmware.
    let cert = SignerCertificate::parse(&der).map_err(|e| {
        tracing::info!(certificate = iname, reason = %e, "verification certificate refused");
        Failure::SignerCertificate(e)
    })?;
    // The application note's form is whitespace-free base64; hex is accepted too.
    if signature.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(CmeError::OperationNotSupported);
    }
    let sig = decode_signature(signature.as_bytes(), SignatureFormat::Auto)
        .map_err(Failure::SignatureText)?;
    let (reader, again) = package_readers(&ctx.module.fs)?;
    // Certificate validity is judged by the module clock at the command, not the host's.
    let clock = ClockPolicy::At(ctx.clock_unix());
    let iname = iname.to_string();
    Ok(Outcome::Wait(DiskJob::long(move || {
        let size = reader.len();
        let checked = verify_package(reader, &sig, &cert, clock, |_| {})
            .map(|verified| Package {
                size,
                version: package_version(again),
                sha256: hex::encode(verified.sha256()),
            })
            .map_err(|e| {
                if !matches!(e, VerifyError::Io(_)) {
                    tracing::info!(certificate = %iname, reason = %e, "firmware package refused");
                }
                CmeError::from(Failure::Verify(e))
            });
        installer(checked, Authority::Signed(iname))
    })))
}

/// The continuation of an install job: on the channel, under the module lock, the install
/// when the checks passed, their error when not.
fn installer(checked: Result<Package, CmeError>, authority: Authority) -> crate::job::Answer {
    let then: Continuation = Box::new(move |ctx: &mut Ctx<'_>| install(ctx, checked?, authority));
    Box::new(then)
}

fn install(ctx: &mut Ctx<'_>, package: Package, authority: Authority) -> CmdResult {
    // Checked again now: the module may have been sealed (which shuts the MD5-only paths)
    // while the package was being hashed.
    // The store itself, not its summary: the summary follows a seal only after its fsyncs.
    if let Authority::Unsealed(method) = &authority {
        let sealed = ctx.module.store().is_sealed();
        crate::firmware::update_allowed(sealed, *method)?;
    }
    if let Some(code) = ctx.module.faults.take_install() {
        // The test bench's failed install: the progress stops, the code says why, the module
        // reboots on the firmware it had (the package stays where it was).
        tracing::info!(code, "firmware install failed (injected)");
        return Ok(Outcome::RebootAfter(progress_urcs(&[0, 20, 40], code)));
    }
    let time_unix = u64::try_from(ctx.clock_unix()).unwrap_or(0);
    let module = &mut *ctx.module;
    let (method, signer) = match authority {
        Authority::Signed(name) => ("UFWSINSTALL", Some(name)),
        Authority::Unsealed(UpdateMethod::Xmodem) => ("UFWUPD", None),
        Authority::Unsealed(_) => ("UFWINSTALL", None),
    };
    let mut next = module.firmware.state.clone();
    if let Some(v) = &package.version {
        next.version = v.clone();
    }
    next.installs.push(InstallRecord {
        time_unix,
        version: next.version.clone(),
        sha256: package.sha256,
        size: package.size,
        method: method.to_string(),
        signer,
    });
    // The new firmware is in place once fw/state.toml is: the package is removed after.
    module.firmware.store(next).map_err(storage_failure)?;
    if let Err(e) = module.fs.delete(Tag::Foat, PACKAGE) {
        tracing::warn!(error = %e, "the installed package could not be removed");
    }
    tracing::info!(version = %module.firmware.state.version, method, "firmware installed; rebooting");
    Ok(Outcome::RebootAfter(progress_urcs(
        &[0, 20, 40, 60, 80, 100],
        INSTALLED,
    )))
}

/// `+UUFWINSTALL`'s final code of an install that succeeded.
const INSTALLED: u16 = 128;

/// An install's `+UUFWINSTALL` URCs: its progress (percent), then its final code.
fn progress_urcs(percents: &[u16], end: u16) -> Vec<Vec<u8>> {
    percents
        .iter()
        .chain(std::iter::once(&end))
        .map(|p| format!("+UUFWINSTALL: {p}").into_bytes())
        .collect()
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
        let got = hex::encode(std::mem::take(&mut self.hasher).finalize());
        // A mismatch keeps the image (the host may inspect or install it) but installs nothing.
        let md5_ok = self.md5.as_ref().is_none_or(|want| *want == got);
        let fs = ctx.module.fs.clone();
        // The commit (fsync, rename) and the hashing of the image run off the module lock.
        Ok(Outcome::Wait(DiskJob::long(move || {
            let checked = upload
                .commit()
                .map_err(storage_failure)
                .and_then(|()| {
                    if !md5_ok {
                        return Err(CmeError::FotaPackageDataCorrupted);
                    }
                    let (a, b) = package_readers(&fs)?;
                    hash_package(a, b)
                })
                .map(|(_, package)| package);
            installer(checked, Authority::Unsealed(UpdateMethod::Xmodem))
        })))
    }
}
