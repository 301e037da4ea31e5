//! Enforced security (application note §2-§3; at-contract §2, §3): `+USECCFG`, the one-time
//! seal, and `+USECMNG`, the certificate and key manager. The store behind them is
//! `sealcell-store`; this module only speaks the wire.
//!
//! Nothing here logs or echoes a password or credential bytes; the wire answers are the same
//! whether the store is sealed or not (application note §3: "+USECMNG does not return any
//! information about the encrypted and non-encrypted modes").

use sealcell_at::CmeError;
use sealcell_at::commands::useccfg::{self, SecCfgCommand, SecCfgStatus};
use sealcell_at::commands::usecmng::{
    self, CertificateFacts, CredentialName, KeyPassword, SecMngCommand, SecMngListItem,
    SecMngReport, SecMngReportOp,
};
use sealcell_at::commands::{AtString, Md5Digest, Wire};
use sealcell_at::syntax::Form;
use sealcell_store::credential::{CredentialType, MAX_INPUT};
use sealcell_store::{ItemState, StoreError};
use zeroize::Zeroizing;

use super::{CmdResult, Continuation, Ctx, Outcome, PayloadJob, PayloadTarget, undefined_form};
use crate::cme_map::Failure;
use crate::fs::Tag;
use crate::job::DiskJob;

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

pub(crate) fn execute(cmd: Cmd, form: Form<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    match (cmd, form) {
        (Cmd::SecurityConfig, Form::Set(args)) => seccfg(ctx, args.as_str()),
        (Cmd::SecurityConfig, Form::Read) => {
            report_seal(ctx);
            Ok(Outcome::Done)
        }
        (Cmd::SecurityConfig, Form::Test) => {
            ctx.info(useccfg::TEST_RESPONSE.as_bytes());
            Ok(Outcome::Done)
        }
        (Cmd::CredentialManager, Form::Set(args)) => secmng(ctx, args.as_str()),
        (Cmd::CredentialManager, Form::Test) => {
            ctx.info(usecmng::TEST_RESPONSE.as_bytes());
            Ok(Outcome::Done)
        }
        (_, form) => undefined_form(form),
    }
}

fn report_seal(ctx: &mut Ctx<'_>) {
    let status = SecCfgStatus {
        sealed: ctx.module.is_sealed(),
    };
    ctx.info_fmt(format_args!("{status}"));
}

/// `AT+USECCFG=0[,<enable>[,"<password>"]]`.
fn seccfg(ctx: &mut Ctx<'_>, args: &str) -> CmdResult {
    // The seal is permanent: a sealed module refuses any request to seal before it looks at
    // the password (at-contract §2: "any new =0,1,...").
    if ctx.module.is_sealed() && SecCfgCommand::asks_to_seal(args) {
        return Err(CmeError::OperationNotAllowed);
    }
    match SecCfgCommand::parse(args).map_err(Failure::from)? {
        SecCfgCommand::Status => report_seal(ctx),
        SecCfgCommand::Disable => {
            // Turning enforced security off is never possible; when it is off this is a no-op.
            if ctx.module.is_sealed() {
                return Err(CmeError::OperationNotAllowed);
            }
        }
        SecCfgCommand::Seal(password) => {
            // Argon2id takes a second or more: a job holding only the store's lock.
            let store = ctx.module.store_handle();
            return Ok(Outcome::Wait(DiskJob::long(move || {
                // The inputs under the store's lock, Argon2id without it, the record under it
                // again: a seal does not hold the store (and whoever waits for it) for seconds.
                let sealed = store.read(|s| s.seal_inputs()).and_then(|inputs| {
                    match inputs.and_then(|i| i.prepare(password.expose().as_bytes())) {
                        Ok(prepared) => store.write(|s| s.commit_seal(prepared)),
                        Err(e) => Some(Err(e)),
                    }
                });
                drop(password);
                let then: Continuation = Box::new(move |_ctx: &mut Ctx<'_>| {
                    // None: a reboot came between (this continuation then never runs).
                    sealed
                        .ok_or(CmeError::MemoryFailure)?
                        .map_err(Failure::from)?;
                    Ok(Outcome::Done)
                });
                Box::new(then)
            })));
        }
    }
    Ok(Outcome::Done)
}

/// `AT+USECMNG=<op>,...`.
fn secmng(ctx: &mut Ctx<'_>, args: &str) -> CmdResult {
    match SecMngCommand::parse(args).map_err(Failure::from)? {
        SecMngCommand::Import {
            kind,
            name,
            size,
            password,
        } => {
            let size = usize::try_from(size)
                .ok()
                .filter(|s| (1..=MAX_INPUT).contains(s))
                .ok_or(CmeError::UsecmngImportFileSizeExceedsLimit)?;
            ctx.module
                .store_summary()
                .check_import(kind, name.as_str())
                .map_err(Failure::from)?;
            Ok(Outcome::Prompt(PayloadJob {
                prompt: sealcell_at::format::PROMPT,
                size: size as u64,
                timeout_error: CmeError::UsecmngImportTimeout,
                target: Box::new(ImportTarget {
                    kind,
                    name,
                    password,
                    // At most MAX_INPUT: checked above.
                    data: Zeroizing::new(Vec::with_capacity(size)),
                }),
            }))
        }
        SecMngCommand::ImportFile {
            kind,
            name,
            file,
            password,
        } => {
            ctx.module
                .store_summary()
                .check_import(kind, name.as_str())
                .map_err(Failure::from)?;
            // The file system checks the name (1638) and finds the file (1612).
            let size = ctx
                .module
                .fs
                .size(Tag::User, file.as_str())
                .map_err(Failure::from)?;
            if size == 0 || size > MAX_INPUT as u64 {
                return Err(CmeError::UsecmngImportFileSizeExceedsLimit);
            }
            let data = Zeroizing::new(
                ctx.module
                    .fs
                    .read(Tag::User, file.as_str())
                    .map_err(Failure::from)?,
            );
            import(ctx, SecMngReportOp::ImportFile, kind, name, data, password)
        }
        SecMngCommand::Remove { kind, name } => {
            // Removing rewrites the manifest (fsyncs): a job, like an import.
            let store = ctx.module.store_handle();
            Ok(Outcome::Wait(DiskJob::new(move || {
                let removed = store.write(|s| s.remove(kind, name.as_str()));
                let then: Continuation = Box::new(move |_ctx: &mut Ctx<'_>| {
                    removed
                        .ok_or(CmeError::MemoryFailure)?
                        .map_err(Failure::from)?;
                    tracing::info!(kind = %kind, name = name.as_str(), "credential removed");
                    Ok(Outcome::Done)
                });
                Box::new(then)
            })))
        }
        SecMngCommand::List(filter) => {
            // From the summary: a list never waits for another channel's import.
            let items = ctx.module.store_summary().list().map_err(Failure::from)?;
            for item in items
                .into_iter()
                .filter(|i| filter.is_none_or(|f| f == i.kind))
            {
                // A damaged record has no facts to list; +USECMNG=4 reports it (1679).
                let ItemState::Ok(facts) = item.state else {
                    continue;
                };
                let certificate = match (facts.subject_cn, facts.not_after) {
                    (Some(cn), Some(not_after)) => Some(CertificateFacts {
                        subject_cn: AtString::lossy(&cn),
                        not_after: AtString::lossy(&not_after),
                    }),
                    _ => None,
                };
                let line = SecMngListItem {
                    kind: item.kind,
                    // The store holds only names the wire gave it.
                    name: AtString::lossy(&item.name),
                    certificate,
                };
                ctx.info_fmt(format_args!("{line}"));
            }
            Ok(Outcome::Done)
        }
        SecMngCommand::Md5 { kind, name } => {
            let facts = ctx
                .module
                .store_summary()
                .facts(kind, name.as_str())
                .map_err(Failure::from)?;
            let report = SecMngReport {
                op: SecMngReportOp::Md5,
                kind,
                name,
                md5: Md5Digest(facts.md5),
            };
            ctx.info_fmt(format_args!("{report}"));
            Ok(Outcome::Done)
        }
    }
}

/// Imports as a job: the parsing, the encryption and the store's fsyncs run holding only the
/// store's lock, so other channels are served meanwhile; the channel answers when it ends.
fn import(
    ctx: &mut Ctx<'_>,
    op: SecMngReportOp,
    kind: CredentialType,
    name: CredentialName,
    data: Zeroizing<Vec<u8>>,
    password: Option<KeyPassword>,
) -> CmdResult {
    let store = ctx.module.store_handle();
    Ok(Outcome::Wait(DiskJob::new(move || {
        let imported = store.write(|s| {
            s.import(
                kind,
                name.as_str(),
                &data,
                password.as_ref().map(|p| p.expose().as_bytes()),
            )
        });
        drop((data, password));
        let then: Continuation = Box::new(move |ctx: &mut Ctx<'_>| {
            let facts = imported.ok_or(CmeError::MemoryFailure)?.map_err(|e| {
                if let StoreError::Format(f) = &e {
                    tracing::info!(kind = %kind, name = name.as_str(), reason = %f, "credential refused");
                }
                Failure::from(e)
            })?;
            let report = SecMngReport {
                op,
                kind,
                name,
                md5: Md5Digest(facts.md5),
            };
            tracing::info!(kind = %kind, name = report.name.as_str(), md5 = %report.md5, "credential imported");
            ctx.info_fmt(format_args!("{report}"));
            Ok(Outcome::Done)
        });
        Box::new(then)
    })))
}

struct ImportTarget {
    kind: CredentialType,
    name: CredentialName,
    password: Option<KeyPassword>,
    data: Zeroizing<Vec<u8>>,
}

impl PayloadTarget for ImportTarget {
    fn write(&mut self, bytes: &[u8]) {
        // The size was checked against MAX_INPUT before the prompt, so this stays bounded.
        self.data.extend_from_slice(bytes);
    }

    fn finish(self: Box<Self>, ctx: &mut Ctx<'_>) -> CmdResult {
        let target = *self;
        import(
            ctx,
            SecMngReportOp::Import,
            target.kind,
            target.name,
            target.data,
            target.password,
        )
    }
}
