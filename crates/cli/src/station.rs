//! A production station's rules around `sealcell provision` (spec/cli.md, "The production
//! line"): the allowlist, the ledger's verdicts (a module sealed under another plan, a seal
//! another station holds) and the typed confirmation before a seal on a real line.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::anyhow;
use sealcell_host::plan::Plan;
use sealcell_host::port::{PortSpec, confirms_seal};
use sealcell_host::provision::{CredentialReport, ModuleFacts, Refusal, StationRules};
use sealcell_ledger::{Ledger, ModuleLock, RunId, SealClaim};

use crate::Failure;
use crate::record::now_unix_ms;

/// The largest allowlist read.
///
/// # Security
/// A wrong path (`/dev/zero`, a disk image) cannot make the station read without end.
const MAX_ALLOWLIST: u64 = 4 * 1024 * 1024;

/// The modules a station may touch (`--allowlist FILE`: one IMEI a line, `#` comments).
#[derive(Debug)]
pub(crate) struct Allowlist(BTreeSet<String>);

impl Allowlist {
    /// Reads and checks the file: every entry must be 15 digits.
    pub(crate) fn load(path: &Path) -> Result<Allowlist, Failure> {
        let text = crate::read_capped_text(path, MAX_ALLOWLIST, "allowlist")?;
        let mut imeis = BTreeSet::new();
        for (n, line) in text.lines().enumerate() {
            let entry = line.split('#').next().unwrap_or("").trim();
            if entry.is_empty() {
                continue;
            }
            if entry.len() != 15 || !entry.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Failure::usage(
                    anyhow!(
                        "{}:{}: `{entry}` is not an IMEI (15 digits)",
                        path.display(),
                        n + 1
                    ),
                    Some("one IMEI a line; `#` starts a comment".into()),
                ));
            }
            imeis.insert(entry.to_string());
        }
        Ok(Allowlist(imeis))
    }

    fn allows(&self, imei: &str) -> bool {
        self.0.contains(imei)
    }
}

/// Asks a person to confirm a seal on a real line: the last four digits of the IMEI, typed.
/// One question at a time, whatever the number of ports (`lock`), with the progress lines
/// suspended while it is asked.
#[derive(Clone)]
pub(crate) struct Confirmer {
    /// `--yes`: every seal is confirmed in advance.
    pub(crate) yes: bool,
    /// Serialises the questions of parallel workers.
    pub(crate) lock: Arc<Mutex<()>>,
    /// The progress lines to hide while asking.
    pub(crate) progress: Option<indicatif::MultiProgress>,
}

impl Confirmer {
    /// Confirms the seal of module `imei` on `port`, or refuses it.
    pub(crate) fn confirm(&self, port: &PortSpec, imei: &str) -> Result<(), Refusal> {
        if self.yes || !port.needs_seal_confirmation() {
            return Ok(());
        }
        let _one_at_a_time = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let question = seal_question(port, imei);
        let typed = match &self.progress {
            Some(p) => p.suspend(|| ask_on_terminal(&question)),
            None => ask_on_terminal(&question),
        };
        judge_seal(port, imei, typed)
    }
}

/// What a person is asked before module `imei` on `port` is sealed.
pub(crate) fn seal_question(port: &PortSpec, imei: &str) -> String {
    format!(
        "seal module {imei} on {port}? This cannot be undone.\n\
         type the last four digits of its IMEI to seal it: "
    )
}

/// The verdict on the answer to [`seal_question`] (`None`: there was no terminal to ask on).
pub(crate) fn judge_seal(
    port: &PortSpec,
    imei: &str,
    typed: Option<String>,
) -> Result<(), Refusal> {
    match typed {
        Some(typed) if confirms_seal(imei, &typed) => Ok(()),
        Some(typed) => Err(Refusal {
            reason: format!(
                "the seal of module {imei} on {port} was not confirmed (typed {:?}); nothing was \
                 sent",
                typed.trim()
            ),
            hint: Some("the last four digits of the IMEI confirm it".into()),
        }),
        None => Err(Refusal {
            reason: format!(
                "refusing to seal module {imei} on {port} without a confirmation: the seal is \
                 irreversible, and there is no terminal to ask on"
            ),
            hint: Some("pass --yes to confirm the seal in advance".into()),
        }),
    }
}

/// The question on stderr and the answer (at most 64 bytes) from stdin, when both are a
/// terminal.
pub(crate) fn ask_on_terminal(question: &str) -> Option<String> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return None;
    }
    let mut err = std::io::stderr().lock();
    write!(err, "{question}").ok()?;
    err.flush().ok()?;
    let mut line = String::new();
    std::io::Read::take(std::io::stdin().lock(), 64)
        .read_line(&mut line)
        .ok()?;
    Some(line)
}

/// The modules this process is provisioning right now, by IMEI, with their port: two ports of
/// one module (a module's several USB interfaces) must not run the plan twice at once.
pub(crate) type InProgress = Arc<Mutex<HashMap<String, String>>>;

/// The rules of one run at this station, for one module.
pub(crate) struct Station<'a> {
    /// The plan (for the SHA-256 of each credential the run records).
    pub(crate) plan: &'a Plan,
    /// The modules being provisioned by this process.
    pub(crate) in_progress: InProgress,
    /// The IMEI this run entered in `in_progress` (removed when the run ends).
    pub(crate) entered: Option<String>,
    /// Whether the module is sealed after the seal command (when this run sent one).
    pub(crate) sealed_now: Option<bool>,
    /// The credentials on the module as planned so far, for the record of a failed run too.
    pub(crate) done: Vec<sealcell_ledger::CredentialEntry>,
    /// The module's port.
    pub(crate) port: PortSpec,
    /// The station's name (in the ledger).
    pub(crate) station: String,
    /// `--force`: also provision a module the ledger shows sealed under another plan.
    pub(crate) force: bool,
    /// `--dry-run`: nothing is claimed.
    pub(crate) dry_run: bool,
    /// `--allowlist`.
    pub(crate) allowlist: Option<&'a Allowlist>,
    /// The ledger and this run's record.
    pub(crate) ledger: Option<(&'a Ledger, RunId)>,
    /// The seal confirmation.
    pub(crate) confirmer: Confirmer,
}

fn ledger_refusal(e: sealcell_ledger::LedgerError) -> Refusal {
    Refusal {
        reason: format!("the ledger: {e}"),
        hint: Some("nothing was changed on the module; `--no-ledger` runs without one".into()),
    }
}

impl Drop for Station<'_> {
    fn drop(&mut self) {
        if let Some(imei) = self.entered.take()
            && let Ok(mut map) = self.in_progress.lock()
        {
            map.remove(&imei);
        }
    }
}

impl StationRules for Station<'_> {
    fn identified(&mut self, facts: &ModuleFacts) -> Result<(), Refusal> {
        if let Some((ledger, run)) = self.ledger {
            ledger
                .identify(run, &ledger_facts(facts))
                .map_err(ledger_refusal)?;
        }
        self.enter(facts)?;
        if let Some(list) = self.allowlist
            && !list.allows(&facts.imei)
        {
            return Err(Refusal {
                reason: format!(
                    "module {} on {} is not on the allowlist; nothing was changed",
                    facts.imei, self.port
                ),
                hint: Some("add its IMEI to the --allowlist file".into()),
            });
        }
        let Some((ledger, run)) = self.ledger else {
            return Ok(());
        };
        if !self.dry_run {
            // One run at a time on one module, across stations: the ledger decides.
            let lock = ledger
                .lock_module(&facts.imei, &self.station, run, now_unix_ms(), self.force)
                .map_err(ledger_refusal)?;
            if let ModuleLock::HeldBy {
                run: other,
                station,
                locked_unix_ms,
            } = lock
            {
                let secs = (now_unix_ms() - locked_unix_ms).max(0) / 1000;
                return Err(Refusal {
                    reason: format!(
                        "module {} is being provisioned by station {station} (ledger run {}, for \
                         {secs} s); nothing was changed",
                        facts.imei, other.0
                    ),
                    hint: Some(format!(
                        "wait for that run to end; if it died, the lock lapses after {} min \
                         (at the same station, --force takes it over)",
                        sealcell_ledger::MODULE_LEASE_MS / 60_000
                    )),
                });
            }
        }
        let Some(mut seal) = ledger.seal_record(&facts.imei).map_err(ledger_refusal)? else {
            return Ok(());
        };
        if facts.sealed_before && !seal.confirmed {
            // The module is sealed, and its claim never heard so (the link died while the seal
            // was answered): claims are exclusive, so the claim's holder sealed it.
            ledger
                .confirm_seal(&facts.imei, seal.run)
                .map_err(ledger_refusal)?;
            seal.confirmed = true;
        }
        let other_plan = seal.plan_sha256.as_deref() != Some(self.plan.sha256.as_str());
        if seal.confirmed && other_plan && !self.force {
            return Err(Refusal {
                reason: format!(
                    "module {} was sealed under another plan (SHA-256 {}) at station {}; \
                     nothing was changed",
                    facts.imei,
                    seal.plan_sha256.as_deref().unwrap_or("unknown"),
                    seal.station
                ),
                hint: Some(format!(
                    "`sealcell ledger show {}` tells its story; --force provisions it with this \
                     plan all the same",
                    facts.imei
                )),
            });
        }
        Ok(())
    }

    fn before_seal(&mut self, facts: &ModuleFacts) -> Result<(), Refusal> {
        if self.dry_run {
            return Ok(());
        }
        self.confirmer.confirm(&self.port, &facts.imei)?;
        if let Some((ledger, run)) = self.ledger {
            // --force takes over this station's own claim of a run that died (never another
            // station's).
            let claim = if self.force {
                ledger.take_over_seal(
                    &facts.imei,
                    Some(&self.plan.sha256),
                    &self.station,
                    run,
                    now_unix_ms(),
                )
            } else {
                ledger.claim_seal(
                    &facts.imei,
                    Some(&self.plan.sha256),
                    &self.station,
                    run,
                    now_unix_ms(),
                )
            }
            .map_err(ledger_refusal)?;
            if let SealClaim::HeldBy(other) = claim {
                return Err(Refusal {
                    reason: format!(
                        "module {} is being sealed, or was sealed, by station {} (ledger run {}); \
                         this station leaves it alone",
                        facts.imei, other.station, other.run.0
                    ),
                    hint: Some(format!(
                        "`sealcell ledger show {}` tells its story",
                        facts.imei
                    )),
                });
            }
        }
        Ok(())
    }

    fn seal_answered(&mut self, facts: &ModuleFacts, sealed: bool) {
        self.sealed_now = Some(sealed);
        if let Some((ledger, run)) = self.ledger {
            let done = if sealed {
                ledger.confirm_seal(&facts.imei, run)
            } else {
                ledger.release_seal(&facts.imei, run).map(|_| ())
            };
            if let Err(e) = done {
                tracing::error!(error = %e, imei = %facts.imei, "the ledger missed the seal's outcome");
            }
        }
    }

    fn credential_done(&mut self, credential: &CredentialReport) {
        let entry = self.entry(credential);
        self.done.push(entry);
    }
}

impl Station<'_> {
    /// Enters the module in this process's in-progress set, or refuses a second port of it.
    fn enter(&mut self, facts: &ModuleFacts) -> Result<(), Refusal> {
        let mut map = self.in_progress.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(other) = map.get(&facts.imei) {
            return Err(Refusal {
                reason: format!(
                    "module {} answers on {other} and on {} in this run; it is provisioned once, \
                     on {other}",
                    facts.imei, self.port
                ),
                hint: Some("give each module one --port".into()),
            });
        }
        map.insert(facts.imei.clone(), self.port.to_string());
        self.entered = Some(facts.imei.clone());
        Ok(())
    }

    /// A credential's ledger entry (with the SHA-256 of the DER the plan holds).
    fn entry(&self, c: &CredentialReport) -> sealcell_ledger::CredentialEntry {
        sealcell_ledger::CredentialEntry {
            kind: c.kind.to_string(),
            name: c.name.clone(),
            md5: c.md5.clone(),
            sha256: self
                .plan
                .credentials
                .iter()
                .find(|p| p.kind.tag() == c.kind && p.name == c.name)
                .map(|p| p.sha256.clone())
                .unwrap_or_default(),
            action: crate::host::kebab(&c.action),
        }
    }
}

/// The module's identity as the ledger records it.
pub(crate) fn ledger_facts(facts: &ModuleFacts) -> sealcell_ledger::ModuleFacts {
    sealcell_ledger::ModuleFacts {
        imei: facts.imei.clone(),
        iccid: facts.iccid.clone(),
        model: facts.model.clone(),
        firmware: facts.firmware.clone(),
        sealed_before: facts.sealed_before,
    }
}
