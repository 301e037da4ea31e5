//! Provisioning: make a module match a [`Plan`], and say what changed.
//!
//! The order is the application note's, not the one a first reading of spec/cli.md suggests:
//! **seal first, then import**. The application note (§2.3) says that once enforced security is
//! initialised, "all the previously certificates and private keys imported with +USECMNG will
//! not be usable anymore" — credentials imported before the seal would be stranded, as plaintext
//! files, and the sealed module would have none. What "seal last" was for — a mistake must not
//! be sealed in — is kept by checking everything first: the whole plan is loaded and every file
//! parsed on the host ([`Plan::load`]), and the module is queried (seal state, stored items,
//! capacity) before the one irreversible command is sent. After the seal, every credential and
//! profile can still be replaced, so a failure later leaves a module that a re-run fixes.
//!
//! Each step compares before it changes: a credential whose MD5 on the module equals the local
//! one is left alone, a profile whose every op reads back as planned is left alone, a sealed
//! module is not sealed again. So re-running a finished plan sends only queries, and re-running
//! an interrupted one converges.

use sealcell_at::commands::useccfg::{self, SecCfgCommand, SecCfgStatus};
use sealcell_at::commands::usecmng::{
    CredentialType, SecMngCommand, SecMngListItem, SecMngReport, SecMngReportOp,
};
use sealcell_at::commands::usecprf::{SecPrfCommand, SecPrfRead, SecPrfSet};
use sealcell_at::commands::{InfoLine, Md5Digest, SetCommand, Wire};
use serde::Serialize;

use crate::client::{AtClient, ClientError, Command, Response};
use crate::plan::{MAX_CREDENTIALS, Plan, PlannedCredential, PlannedProfile};

/// How long sealing may take (a KDF on a small CPU).
const SEAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// How long one import may take (an 8 KiB payload at 9600 baud, plus encryption).
const IMPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Who the module is: read at the start of every run, before anything changes.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ModuleFacts {
    /// `AT+CGSN`.
    pub imei: String,
    /// `AT+CCID`.
    pub iccid: String,
    /// `AT+CGMM`.
    pub model: String,
    /// `AT+CGMR`.
    pub firmware: String,
    /// `AT+USECCFG?` before the run.
    pub sealed_before: bool,
}

/// Why a station's rules stopped a run (exit 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// What was refused and why, naming the module.
    pub reason: String,
    /// What to do about it.
    pub hint: Option<String>,
}

/// A production station's rules around a run: consulted once the module is identified (before
/// any command that changes it) and right before the irreversible seal. The default methods
/// allow everything; `sealcell provision` implements them with its ledger, allowlist and
/// confirmation prompt.
pub trait StationRules {
    /// The module has been identified; refusing here leaves it untouched.
    fn identified(&mut self, facts: &ModuleFacts) -> Result<(), Refusal> {
        let _ = facts;
        Ok(())
    }

    /// The seal is next; refusing here leaves the module unsealed and unchanged.
    fn before_seal(&mut self, facts: &ModuleFacts) -> Result<(), Refusal> {
        let _ = facts;
        Ok(())
    }

    /// The module answered the seal command: `sealed` says whether the module is sealed now
    /// (read back with `AT+USECCFG?` when the answer was an error).
    fn seal_answered(&mut self, facts: &ModuleFacts, sealed: bool) {
        let _ = (facts, sealed);
    }

    /// A credential is on the module as planned (imported, replaced or found unchanged): the
    /// run's record of what it did, kept even when a later step fails.
    fn credential_done(&mut self, credential: &CredentialReport) {
        let _ = credential;
    }
}

/// No rules: every run goes ahead.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRules;

impl StationRules for NoRules {}

/// Options of a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProvisionOptions {
    /// Query only; report what would change.
    pub dry_run: bool,
    /// Seal even though the module holds credentials imported before the seal (they become
    /// unusable plaintext files).
    pub force: bool,
}

/// What happened to the seal.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SealAction {
    /// This run sealed the module.
    Sealed,
    /// The module was sealed already (its password cannot be checked).
    AlreadySealed,
    /// The plan has no `[seal]`.
    NotRequested,
    /// A dry run that would seal.
    WouldSeal,
}

/// What happened to a credential.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialAction {
    /// It was missing and is now stored.
    Imported,
    /// Another item of that type and name was replaced.
    Replaced,
    /// The module already held it (same MD5).
    Unchanged,
    /// A dry run that would import it.
    WouldImport,
    /// A dry run that would replace it.
    WouldReplace,
}

/// What happened to a profile.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ProfileAction {
    /// Reset and set.
    Set,
    /// Every op already read back as planned.
    Unchanged,
    /// A dry run that would set it.
    WouldSet,
}

/// What a run did (or, with `dry_run`, would do). Holds no secret.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Report {
    /// The plan file.
    pub plan: String,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// The module's seal state before the run.
    pub sealed_before: bool,
    /// The module's seal state after the run.
    pub sealed: bool,
    /// What happened to the seal.
    pub seal: SealAction,
    /// Credentials imported before the seal that it left unusable (with `--force`).
    pub stranded: Vec<String>,
    /// One entry per planned credential.
    pub credentials: Vec<CredentialReport>,
    /// One entry per planned profile.
    pub profiles: Vec<ProfileReport>,
    /// Whether anything on the module changed (or would change).
    pub changed: bool,
}

/// One credential's outcome.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CredentialReport {
    /// `CA`, `CC`, `PK`, `SC` or `VC`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The internal name.
    pub name: String,
    /// The MD5 the module reports (and the local DER has).
    pub md5: String,
    /// What happened to it.
    pub action: CredentialAction,
}

/// One profile's outcome.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ProfileReport {
    /// Profile id.
    pub id: u8,
    /// What happened to it.
    pub action: ProfileAction,
}

/// Why provisioning stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisionError {
    /// Talking to the module failed, or it refused a command.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The plan seals, and the unsealed module holds credentials the seal would strand.
    #[error(
        "the module is not sealed and holds {} credential(s) imported without the seal ({}); \
         sealing would leave them unusable, as plaintext files",
        names.len(), names.join(", ")
    )]
    PlaintextCredentials {
        /// `TAG "name"` of each.
        names: Vec<String>,
    },
    /// The plan needs more items than the module holds.
    #[error("the module would hold {needed} credentials; it holds at most {MAX_CREDENTIALS}")]
    Full {
        /// How many there would be.
        needed: usize,
    },
    /// The module stored something other than the local file.
    #[error("credential \"{name}\": the module reports MD5 {module}, the local DER has {local}")]
    Md5Mismatch {
        /// The credential.
        name: String,
        /// What the file gives.
        local: String,
        /// What the module said.
        module: String,
    },
    /// A profile names a credential that neither the plan nor the module (after the seal)
    /// has, with that type.
    #[error(
        "profile {profile} names the {tag} credential \"{name}\", which neither the plan nor \
         the module holds"
    )]
    UnknownReference {
        /// Profile id.
        profile: u8,
        /// The type it must have.
        tag: &'static str,
        /// The name.
        name: String,
    },
    /// The station's rules refused the module (allowlist, ledger, confirmation).
    #[error("{}", .0.reason)]
    Refused(Refusal),
    /// A profile does not read back as set.
    #[error("profile {id} op {op} reads back {got}, not {expected}")]
    ProfileMismatch {
        /// Profile id.
        id: u8,
        /// The op.
        op: u8,
        /// Planned.
        expected: String,
        /// Read.
        got: String,
    },
}

impl ProvisionError {
    /// Whether this is a negative answer (exit 1) rather than a failure to talk (exit 2).
    pub fn is_negative(&self) -> bool {
        match self {
            ProvisionError::Client(e) => e.is_module_answer(),
            _ => true,
        }
    }
}

/// An item the module lists (`AT+USECMNG=3`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedItem {
    /// Its type.
    pub kind: CredentialType,
    /// `CA`, `CC`, `PK`, `SC` or `VC` (the type's tag).
    pub tag: String,
    /// Its name.
    pub name: String,
}

/// Makes the module match `plan`.
pub fn provision(
    at: &mut AtClient,
    plan: &Plan,
    options: ProvisionOptions,
) -> Result<Report, ProvisionError> {
    provision_at_station(at, plan, options, &mut NoRules, &mut ModuleFacts::default())
}

/// Makes the module match `plan` under a station's `rules`; `facts` receives the module's
/// identity as soon as it is read (so a caller recording the run has it even when the run
/// fails later).
pub fn provision_at_station(
    at: &mut AtClient,
    plan: &Plan,
    options: ProvisionOptions,
    rules: &mut dyn StationRules,
    facts: &mut ModuleFacts,
) -> Result<Report, ProvisionError> {
    at.note(&format!(
        "provision {}{}",
        plan.path.display(),
        if options.dry_run { " (dry run)" } else { "" }
    ));
    *facts = identify(at)?;
    if !is_imei(&facts.imei) {
        return Err(ProvisionError::Refused(Refusal {
            reason: format!(
                "the module answered AT+CGSN with {:?}, which is not an IMEI (15 digits); \
                 nothing was changed",
                facts.imei
            ),
            hint: Some("is this a cellular module, and does it answer in verbose form?".into()),
        }));
    }
    let sealed_before = facts.sealed_before;
    rules.identified(facts).map_err(ProvisionError::Refused)?;
    let listed = list_credentials(at)?;
    let will_seal = plan.seal.is_some() && !sealed_before;

    // Preflight: everything that could make the seal a mistake is checked before it.
    let mut stranded = Vec::new();
    if will_seal && !listed.is_empty() {
        let names: Vec<String> = listed
            .iter()
            .map(|i| format!("{} \"{}\"", i.tag, i.name))
            .collect();
        if !options.force {
            return Err(ProvisionError::PlaintextCredentials { names });
        }
        stranded = names;
    }
    let surviving: Vec<&ListedItem> = if will_seal {
        Vec::new()
    } else {
        listed.iter().collect()
    };
    let new_items = plan
        .credentials
        .iter()
        .filter(|c| !surviving.iter().any(|i| is_item(i, c)))
        .count();
    if surviving.len() + new_items > MAX_CREDENTIALS {
        return Err(ProvisionError::Full {
            needed: surviving.len() + new_items,
        });
    }

    for p in &plan.profiles {
        for (kind, name) in &p.references {
            let planned = plan
                .credentials
                .iter()
                .any(|c| c.kind == *kind && c.name == *name);
            let stored = surviving.iter().any(|i| i.kind == *kind && i.name == *name);
            if !planned && !stored {
                return Err(ProvisionError::UnknownReference {
                    profile: p.id.get(),
                    tag: kind.tag(),
                    name: name.clone(),
                });
            }
        }
    }

    let seal = match (&plan.seal, sealed_before) {
        (None, _) => SealAction::NotRequested,
        (Some(_), true) => SealAction::AlreadySealed,
        (Some(_), false) if options.dry_run => SealAction::WouldSeal,
        (Some(password), false) => {
            rules.before_seal(facts).map_err(ProvisionError::Refused)?;
            at.note("seal (AT+USECCFG): irreversible");
            let seal = SecCfgCommand::Seal(password.0.clone());
            let answer = at.run(&command(&seal).timeout(SEAL_TIMEOUT));
            match answer {
                Ok(r) if r.is_ok() => rules.seal_answered(facts, true),
                Ok(r) => {
                    // An error answer: sealed or not is read back, not assumed (another host
                    // may have sealed it in the meantime).
                    let now = seal_state(at).unwrap_or(false);
                    rules.seal_answered(facts, now);
                    r.into_ok()?;
                }
                // No answer: whether it took is unknown, so the claim stays (a re-run reads
                // the seal state).
                Err(e) => return Err(e.into()),
            }
            SealAction::Sealed
        }
    };

    let mut credentials = Vec::new();
    for c in &plan.credentials {
        let present = surviving.iter().any(|i| is_item(i, c));
        let on_module = if present { md5_of(at, c)? } else { None };
        let action = match (&on_module, options.dry_run) {
            (Some(md5), _) if md5.to_string() == c.md5 => CredentialAction::Unchanged,
            (Some(_), true) => CredentialAction::WouldReplace,
            (None, true) => CredentialAction::WouldImport,
            (Some(_), false) => {
                import(at, c)?;
                CredentialAction::Replaced
            }
            (None, false) => {
                import(at, c)?;
                CredentialAction::Imported
            }
        };
        let report = CredentialReport {
            kind: c.kind.tag(),
            name: c.name.clone(),
            md5: c.md5.clone(),
            action,
        };
        rules.credential_done(&report);
        credentials.push(report);
    }

    let mut profiles = Vec::new();
    for p in &plan.profiles {
        let matches = profile_matches(at, p)?;
        let action = match (matches, options.dry_run) {
            (None, _) => ProfileAction::Unchanged,
            (Some(_), true) => ProfileAction::WouldSet,
            (Some(_), false) => {
                set_profile(at, p)?;
                if let Some((op, expected, got)) = profile_matches(at, p)? {
                    return Err(ProvisionError::ProfileMismatch {
                        id: p.id.get(),
                        op,
                        expected,
                        got,
                    });
                }
                ProfileAction::Set
            }
        };
        profiles.push(ProfileReport {
            id: p.id.get(),
            action,
        });
    }

    let sealed = if options.dry_run {
        sealed_before
    } else {
        seal_state(at)?
    };
    let changed = !matches!(seal, SealAction::NotRequested | SealAction::AlreadySealed)
        || credentials
            .iter()
            .any(|c| c.action != CredentialAction::Unchanged)
        || profiles
            .iter()
            .any(|p| p.action != ProfileAction::Unchanged);
    at.note(if changed {
        "provision: done"
    } else {
        "provision: the module already matches the plan; nothing changed"
    });
    Ok(Report {
        plan: plan.path.display().to_string(),
        dry_run: options.dry_run,
        sealed_before,
        sealed,
        seal,
        stranded,
        credentials,
        profiles,
        changed,
    })
}

fn is_item(item: &ListedItem, c: &PlannedCredential) -> bool {
    item.kind == c.kind && item.name == c.name
}

/// The command for a line of the wire vocabulary: sent as printed, shown with its secrets
/// redacted.
fn command<T: SetCommand>(cmd: &T) -> Command {
    Command::with_secret(cmd.line(), cmd.shown())
}

/// The first information line of `r` that is one of `T`'s, parsed.
fn answer<T: InfoLine>(r: &Response) -> Option<Result<T, String>> {
    r.lines
        .iter()
        .find(|l| T::is_own(l))
        .map(|l| T::parse(l).map_err(|e| format!("{l:?}: {e}")))
}

/// Reads who the module is (`AT+CGSN`, `AT+CCID`, `AT+CGMM`, `AT+CGMR`) and its seal state.
pub fn identify(at: &mut AtClient) -> Result<ModuleFacts, ClientError> {
    let imei = first_line(&at.ok_line("AT+CGSN")?, "+CGSN:");
    let iccid = first_line(&at.ok_line("AT+CCID")?, "+CCID:");
    let model = first_line(&at.ok_line("AT+CGMM")?, "+CGMM:");
    let firmware = first_line(&at.ok_line("AT+CGMR")?, "+CGMR:");
    Ok(ModuleFacts {
        imei,
        iccid,
        model,
        firmware,
        sealed_before: seal_state(at)?,
    })
}

/// Whether `s` is 15 decimal digits.
fn is_imei(s: &str) -> bool {
    s.len() == 15 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The first information line, without `prefix` when a module prints one (some answer
/// `+CCID: <iccid>`, others the bare value), and without quotes.
fn first_line(r: &crate::client::Response, prefix: &str) -> String {
    let line = r.lines.first().map(String::as_str).unwrap_or("");
    let value = line.strip_prefix(prefix).unwrap_or(line).trim();
    value.trim_matches('"').to_string()
}

/// `AT+USECCFG?`: whether the module is sealed.
pub fn seal_state(at: &mut AtClient) -> Result<bool, ClientError> {
    let r = at.ok_line(useccfg::READ_LINE)?;
    match answer::<SecCfgStatus>(&r) {
        Some(Ok(status)) => Ok(status.sealed),
        _ => Err(ClientError::Protocol {
            command: r.command,
            detail: format!("no +USECCFG: 0,<0|1> line in {:?}", r.lines),
        }),
    }
}

/// `AT+USECMNG=3`: the items the module lists.
pub fn list_credentials(at: &mut AtClient) -> Result<Vec<ListedItem>, ClientError> {
    let r = at.ok(&command(&SecMngCommand::List(None)))?;
    let mut items = Vec::new();
    for line in &r.lines {
        match SecMngListItem::parse(line) {
            Ok(item) => items.push(ListedItem {
                kind: item.kind,
                tag: item.kind.tag().to_string(),
                name: item.name.as_str().to_string(),
            }),
            Err(e) => {
                return Err(ClientError::Protocol {
                    command: r.command.clone(),
                    detail: format!(
                        "list line {line:?} is not \"<tag>\",\"<name>\"[,\"<CN>\",\"<notAfter>\"]: {e}"
                    ),
                });
            }
        }
    }
    Ok(items)
}

/// The quoted strings of a line, in order (AT strings hold no quotes, so no escaping).
pub fn quoted_fields(line: &str) -> Vec<String> {
    line.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// `AT+USECMNG=4`: the MD5 of a stored item; `None` when the module has no such item.
fn md5_of(at: &mut AtClient, c: &PlannedCredential) -> Result<Option<Md5Digest>, ClientError> {
    let query = SecMngCommand::Md5 {
        kind: c.kind,
        name: c.wire_name.clone(),
    };
    let r = at.run(&command(&query))?;
    // "Operation not supported" is the module's answer for an unknown item; anything else
    // (1679: the store does not open) must stop the run.
    let r = match r.into_ok() {
        Ok(r) => r,
        Err(ClientError::Module {
            cme: Some(sealcell_at::cme::CmeError::OperationNotSupported),
            ..
        }) => return Ok(None),
        Err(e) => return Err(e),
    };
    reported_md5(&r, SecMngReportOp::Md5, c).map(Some)
}

/// The MD5 in the `+USECMNG: <op>,...` line of `r`, which must name `c`.
fn reported_md5(
    r: &Response,
    op: SecMngReportOp,
    c: &PlannedCredential,
) -> Result<Md5Digest, ClientError> {
    let protocol = |detail: String| ClientError::Protocol {
        command: r.command.clone(),
        detail,
    };
    match answer::<SecMngReport>(r) {
        Some(Ok(report))
            if report.op == op && report.kind == c.kind && report.name == c.wire_name =>
        {
            Ok(report.md5)
        }
        Some(Ok(report)) => Err(protocol(format!(
            "the answer {report} is not about {} \"{}\"",
            c.kind, c.name
        ))),
        Some(Err(e)) => Err(protocol(format!("unreadable MD5 line {e}"))),
        None => Err(protocol(format!("no MD5 in {:?}", r.lines))),
    }
}

/// `AT+USECMNG=0`: imports one credential and checks the MD5 the module reports.
fn import(at: &mut AtClient, c: &PlannedCredential) -> Result<(), ProvisionError> {
    let head = SecMngCommand::Import {
        kind: c.kind,
        name: c.wire_name.clone(),
        // At most MAX_CREDENTIAL_SIZE: checked when the plan was loaded.
        size: i64::try_from(c.upload.len()).unwrap_or(i64::MAX),
        password: c.key_password.clone(),
    };
    let what = if c.kind.is_certificate() {
        format!(
            "<{} bytes of {}>",
            c.upload.len(),
            c.file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        )
    } else {
        format!("<{} bytes: private key, redacted>", c.upload.len())
    };
    let cmd = command(&head)
        .payload(c.upload.clone(), what)
        .timeout(IMPORT_TIMEOUT);
    let r = at.ok(&cmd)?;
    let module = reported_md5(&r, SecMngReportOp::Import, c)?.to_string();
    if module != c.md5 {
        return Err(ProvisionError::Md5Mismatch {
            name: c.name.clone(),
            local: c.md5.clone(),
            module,
        });
    }
    Ok(())
}

/// The first op of `p` that does not read back as planned: `(op, expected, got)`.
fn profile_matches(
    at: &mut AtClient,
    p: &PlannedProfile,
) -> Result<Option<(u8, String, String)>, ClientError> {
    for s in &p.settings {
        let read = SecPrfCommand::Read {
            profile: p.id,
            op: s.op(),
        };
        let r = at.ok(&command(&read))?;
        let got = r
            .lines
            .iter()
            .filter(|l| SecPrfRead::is_own(l))
            .find_map(|l| SecPrfRead::parse(l).ok())
            .filter(|g| g.profile == p.id && g.reading.op() == s.op());
        match got {
            Some(g) if g.reading == s.read_back => {}
            Some(g) => {
                return Ok(Some((
                    s.op().wire(),
                    s.read_back.to_string(),
                    g.reading.to_string(),
                )));
            }
            None => {
                let line = r.lines.iter().find(|l| SecPrfRead::is_own(l));
                return Ok(Some((
                    s.op().wire(),
                    s.read_back.to_string(),
                    line.cloned().unwrap_or_default(),
                )));
            }
        }
    }
    Ok(None)
}

/// Resets the profile, then sets every op that is not at its default.
fn set_profile(at: &mut AtClient, p: &PlannedProfile) -> Result<(), ClientError> {
    at.ok(&command(&SecPrfCommand::Reset(p.id)))?;
    for s in &p.settings {
        if let Some(value) = &s.set {
            let set = SecPrfSet {
                profile: p.id,
                value: value.clone(),
            };
            at.ok(&command(&set))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_of_list_lines() {
        assert_eq!(
            quoted_fields("\"CA\",\"RootCA\",\"Root, Inc.\",\"2036/01/01 00:00:00\""),
            vec!["CA", "RootCA", "Root, Inc.", "2036/01/01 00:00:00"]
        );
        assert_eq!(quoted_fields("\"PK\",\"Key\""), vec!["PK", "Key"]);
        assert_eq!(
            quoted_fields("+USECMNG: 4,0,\"R\",\"0123\""),
            vec!["R", "0123"]
        );
    }
}
