//! Enforced security (application note §2-§3; at-contract §2, §3): `+USECCFG`, the one-time
//! seal, and `+USECMNG`, the certificate and key manager. The store behind them is
//! `sealcell-store`; this module only speaks the wire.
//!
//! Nothing here logs or echoes a password or credential bytes; the wire answers are the same
//! whether the store is sealed or not (application note §3: "+USECMNG does not return any
//! information about the encrypted and non-encrypted modes").

use sealcell_at::CmeError;
use sealcell_at::args::{ArgError, ArgReader};
use sealcell_at::syntax::Form;
use sealcell_store::credential::{CredentialType, MAX_INPUT, MAX_PASSWORD};
use sealcell_store::{ItemState, SealError, StoreError};
use zeroize::Zeroizing;

use super::{CmdResult, Ctx, Outcome, PayloadJob, PayloadTarget, storage_failure, undefined_form};
use crate::fs::Tag;

/// A security command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// `+USECCFG`: enforced security configuration (the seal).
    SecurityConfig,
    /// `+USECMNG`: certificate and private key manager.
    CredentialManager,
}

impl Cmd {
    pub(crate) fn from_name(name: &str) -> Option<Cmd> {
        Some(match name {
            "+USECCFG" => Cmd::SecurityConfig,
            "+USECMNG" => Cmd::CredentialManager,
            _ => return None,
        })
    }
}

/// The one mapping from store errors to wire codes.
pub(crate) fn store_error(e: StoreError) -> CmeError {
    match e {
        StoreError::Unopenable(_) | StoreError::Damaged { .. } => {
            CmeError::SecDataInconsistentOrUnsupported
        }
        StoreError::NotFound(..) | StoreError::InvalidName => CmeError::OperationNotSupported,
        StoreError::Full => CmeError::UsecmngDatabaseFull,
        StoreError::Format(_) => CmeError::UsecmngInvalidCertificateKeyFormat,
        StoreError::Io(e) => storage_failure(e),
        _ => CmeError::MemoryFailure,
    }
}

pub(crate) fn execute(cmd: Cmd, form: Form<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    match (cmd, form) {
        (Cmd::SecurityConfig, Form::Set(args)) => seccfg(ctx, args.reader()),
        (Cmd::SecurityConfig, Form::Read) => {
            report_seal(ctx);
            Ok(Outcome::Done)
        }
        (Cmd::SecurityConfig, Form::Test) => {
            ctx.info(b"+USECCFG: (0),(0,1),128");
            Ok(Outcome::Done)
        }
        (Cmd::CredentialManager, Form::Set(args)) => secmng(ctx, args.reader()),
        (Cmd::CredentialManager, Form::Test) => {
            ctx.info(b"+USECMNG: (0-4),(0-4)");
            Ok(Outcome::Done)
        }
        (_, form) => undefined_form(form),
    }
}

fn report_seal(ctx: &mut Ctx<'_>) {
    let status = u8::from(ctx.module.store.is_sealed());
    ctx.info_fmt(format_args!("+USECCFG: 0,{status}"));
}

/// `AT+USECCFG=0[,<enable>[,"<password>"]]`.
fn seccfg(ctx: &mut Ctx<'_>, mut r: ArgReader<'_>) -> CmdResult {
    r.int(0..=0)?;
    match r.opt_int(0..=1)? {
        None => {
            r.finish()?;
            report_seal(ctx);
        }
        Some(0) => {
            r.finish()?;
            // Turning enforced security off is never possible; when it is off this is a no-op.
            if ctx.module.store.is_sealed() {
                return Err(CmeError::OperationNotAllowed);
            }
        }
        Some(_) => {
            // The seal is permanent: a sealed module refuses before looking at the password.
            if ctx.module.store.is_sealed() {
                return Err(CmeError::OperationNotAllowed);
            }
            let password = match r.opt_string(MAX_PASSWORD) {
                Ok(Some(p)) => Zeroizing::new(p.as_bytes().to_vec()),
                Ok(None) | Err(ArgError::TooLong { .. }) => {
                    return Err(CmeError::OperationNotSupported);
                }
                Err(e) => return Err(e.into()),
            };
            r.finish()?;
            ctx.module.store.seal(&password).map_err(|e| match e {
                SealError::AlreadySealed => CmeError::OperationNotAllowed,
                SealError::InvalidPassword => CmeError::OperationNotSupported,
                SealError::Io(e) => storage_failure(e),
                other => {
                    tracing::error!(error = %other, "seal failed");
                    CmeError::MemoryFailure
                }
            })?;
        }
    }
    Ok(Outcome::Done)
}

fn kind(r: &mut ArgReader<'_>) -> Result<CredentialType, CmeError> {
    CredentialType::from_wire(r.int(0..=255)?).ok_or(CmeError::OperationNotSupported)
}

/// A name argument: longer than the limit is a parameter error (4), as a missing one.
fn name<'a>(r: &mut ArgReader<'a>) -> Result<&'a str, CmeError> {
    r.string(sealcell_store::credential::MAX_NAME * 4)
        .map_err(|_| CmeError::OperationNotSupported)
}

fn password(r: &mut ArgReader<'_>) -> Result<Option<Zeroizing<Vec<u8>>>, CmeError> {
    Ok(r.opt_string(MAX_PASSWORD)?
        .map(|p| Zeroizing::new(p.as_bytes().to_vec())))
}

/// `AT+USECMNG=<op>,...`.
fn secmng(ctx: &mut Ctx<'_>, mut r: ArgReader<'_>) -> CmdResult {
    let op = r.int(0..=4)?;
    match op {
        0 => {
            let kind = kind(&mut r)?;
            let name = name(&mut r)?;
            let size = r.int(i64::MIN..=i64::MAX)?;
            let password = password(&mut r)?;
            r.finish()?;
            if !(1..=MAX_INPUT as i64).contains(&size) {
                return Err(CmeError::UsecmngImportFileSizeExceedsLimit);
            }
            ctx.module
                .store
                .check_import(kind, name)
                .map_err(store_error)?;
            Ok(Outcome::Prompt(PayloadJob {
                size: size as u64,
                timeout_error: CmeError::UsecmngImportTimeout,
                target: Box::new(ImportTarget {
                    kind,
                    name: name.to_string(),
                    password,
                    data: Zeroizing::new(Vec::with_capacity(size as usize)),
                }),
            }))
        }
        1 => {
            let kind = kind(&mut r)?;
            let name = name(&mut r)?;
            let file = r
                .string(crate::fs::MAX_NAME_LEN * 4)
                .map_err(|_| CmeError::FfsInvalidFilename)?;
            let password = password(&mut r)?;
            r.finish()?;
            ctx.module
                .store
                .check_import(kind, name)
                .map_err(store_error)?;
            let size = ctx
                .module
                .fs
                .size(Tag::User, file)
                .map_err(super::file_system::fs_error)?;
            if size == 0 || size > MAX_INPUT as u64 {
                return Err(CmeError::UsecmngImportFileSizeExceedsLimit);
            }
            let data = Zeroizing::new(
                ctx.module
                    .fs
                    .read(Tag::User, file)
                    .map_err(super::file_system::fs_error)?,
            );
            import(
                ctx,
                1,
                kind,
                name,
                &data,
                password.as_deref().map(|p| p.as_slice()),
            )?;
            Ok(Outcome::Done)
        }
        2 => {
            let kind = kind(&mut r)?;
            let name = name(&mut r)?;
            r.finish()?;
            ctx.module.store.remove(kind, name).map_err(store_error)?;
            tracing::info!(kind = %kind, name, "credential removed");
            Ok(Outcome::Done)
        }
        3 => {
            let filter = match r.opt_int(0..=255)? {
                None => None,
                Some(v) => {
                    Some(CredentialType::from_wire(v).ok_or(CmeError::OperationNotSupported)?)
                }
            };
            r.finish()?;
            let items = ctx.module.store.list().map_err(store_error)?;
            for item in items
                .into_iter()
                .filter(|i| filter.is_none_or(|f| f == i.kind))
            {
                // A damaged record has no facts to list; +USECMNG=4 reports it (1679).
                let ItemState::Ok(facts) = item.state else {
                    continue;
                };
                match (facts.subject_cn, facts.not_after) {
                    (Some(cn), Some(not_after)) => ctx.info_fmt(format_args!(
                        "\"{}\",\"{}\",\"{}\",\"{}\"",
                        item.kind.tag(),
                        item.name,
                        cn.replace('"', "'"),
                        not_after
                    )),
                    _ => ctx.info_fmt(format_args!("\"{}\",\"{}\"", item.kind.tag(), item.name)),
                }
            }
            Ok(Outcome::Done)
        }
        _ => {
            let kind = kind(&mut r)?;
            let name = name(&mut r)?;
            r.finish()?;
            let facts = ctx.module.store.facts(kind, name).map_err(store_error)?;
            ctx.info_fmt(format_args!(
                "+USECMNG: 4,{},\"{name}\",\"{}\"",
                kind.wire(),
                facts.md5_hex()
            ));
            Ok(Outcome::Done)
        }
    }
}

fn import(
    ctx: &mut Ctx<'_>,
    op: u8,
    kind: CredentialType,
    name: &str,
    data: &[u8],
    password: Option<&[u8]>,
) -> Result<(), CmeError> {
    let facts = ctx
        .module
        .store
        .import(kind, name, data, password)
        .map_err(|e| {
            if let StoreError::Format(f) = &e {
                tracing::info!(kind = %kind, name, reason = %f, "credential refused");
            }
            store_error(e)
        })?;
    tracing::info!(kind = %kind, name, md5 = %facts.md5_hex(), "credential imported");
    ctx.info_fmt(format_args!(
        "+USECMNG: {op},{},\"{name}\",\"{}\"",
        kind.wire(),
        facts.md5_hex()
    ));
    Ok(())
}

struct ImportTarget {
    kind: CredentialType,
    name: String,
    password: Option<Zeroizing<Vec<u8>>>,
    data: Zeroizing<Vec<u8>>,
}

impl PayloadTarget for ImportTarget {
    fn write(&mut self, bytes: &[u8]) {
        // The size was checked against MAX_INPUT before the prompt, so this stays bounded.
        self.data.extend_from_slice(bytes);
    }

    fn finish(self: Box<Self>, ctx: &mut Ctx<'_>) -> Result<(), CmeError> {
        let password = self.password.as_deref().map(|p| p.as_slice());
        import(ctx, 0, self.kind, &self.name, &self.data, password)
    }
}
