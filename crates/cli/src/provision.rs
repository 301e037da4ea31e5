//! `sealcell provision`: a plan applied to one module, or to several at once (a production
//! station: one worker per port, a progress line each, one report each), every run recorded in
//! the ledger and held to the station's rules ([`crate::station`]).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::anyhow;
use clap::Args;
use sealcell_host::client::ClientError;
use sealcell_host::plan::Plan;
use sealcell_host::port::PortSpec;
use sealcell_host::provision::{
    ModuleFacts, ProvisionError, ProvisionOptions, Report, SealAction, provision_at_station,
};
use sealcell_host::transcript::{Direction, FnTranscript, Transcript, format_line};
use sealcell_ledger::{Ledger, Outcome, ProfileEntry, RunEnd, RunId, RunKind, RunStart};
use sha2::{Digest, Sha256};

use crate::Failure;
use crate::host::{PortArgs, emit, json_failure, kebab, refusal};
use crate::record::{RecordArgs, now_unix_ms};
use crate::station::{Allowlist, Confirmer, Station};

/// The plan format, shown by `sealcell provision --help`.
const PLAN_HELP: &str = r#"The plan (TOML; paths relative to the plan; secrets only in files or the environment):

  [seal]                                  # omit to provision without sealing
  password_file = "seal-password.txt"     # or: password_env = "SEALCELL_SEAL_PASSWORD"

  [[credential]]
  type = "ca"            # ca | client-cert | client-key | server-cert | verification-cert
  name = "RootCA"        # the module's internal name
  file = "root.pem"      # PEM or DER
  # password_file = "key-password.txt"    # an encrypted PKCS#8 client key

  [[profile]]            # a +USECPRF security profile; omitted fields are the defaults
  id = 1
  validation = 2         # 0 none, 1 root CA, 2 + hostname, 3 + validity dates
  tls_version = 3        # 0 any, 1..3 TLS 1.0..1.2
  cipher = "C02B"        # IANA code, or 0 for automatic
  root = "RootCA"
  hostname = "fota.example.com"
  sni = "fota.example.com"
  client_cert = "Device"
  client_key = "DeviceKey"
  pin = { cert = "ServerPin", level = 2 }

Order: everything is checked first (files parsed, MD5s computed, key passwords tried, the module
queried), then the seal, then the imports (each MD5 compared), then the profiles. The seal comes
first because the module cannot use credentials imported before it (application note §2.3).
Re-running a finished plan only queries. Exit codes: 0 done or nothing to do, 1 refused (by the
preflight, the station's rules or the module), 2 unusable plan, port or protocol error.

A station: several --port options are provisioned in parallel (--jobs at a time), one report
each; exit 0 only when every module succeeded. Every run is recorded in the ledger
(./sealcell-ledger.db, $SEALCELL_LEDGER or --ledger PATH|postgres://...; never a secret), and
`sealcell ledger` reads it. A module the ledger shows sealed under another plan is refused unless
--force; with --allowlist only the IMEIs it lists are touched; on a serial port the seal waits
for the last four digits of the IMEI, typed (or --yes)."#;

/// `sealcell provision`.
#[derive(Debug, Args)]
#[command(after_long_help = PLAN_HELP)]
pub(crate) struct ProvisionArgs {
    #[command(flatten)]
    port: PortArgs,
    /// The provisioning plan (TOML; see `sealcell provision --help` and spec/cli.md).
    #[arg(long, value_name = "PLAN.toml")]
    plan: PathBuf,
    /// Print the report as JSON (several ports: one object per module, one per line).
    #[arg(long)]
    json: bool,
    /// Query the module and report what would change; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Seal even though the module holds credentials imported before the seal (they become
    /// unusable plaintext files on the module), and provision a module the ledger shows
    /// sealed under another plan.
    #[arg(long)]
    force: bool,
    /// Append the transcript (secrets redacted) here; default: PLAN.transcript.log beside the
    /// plan (several ports: PLAN.<port>.transcript.log each).
    #[arg(long, value_name = "FILE")]
    transcript: Option<PathBuf>,
    /// How many modules are provisioned at once (default: every --port).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    #[command(flatten)]
    record: RecordArgs,
    /// Touch only the modules whose IMEI this file lists (one a line, `#` comments).
    #[arg(long, value_name = "FILE")]
    allowlist: Option<PathBuf>,
    /// Confirm the seal of every module in advance (no typed IMEI digits on serial ports).
    #[arg(long)]
    yes: bool,
}

/// What every worker shares.
struct Shared<'a> {
    args: &'a ProvisionArgs,
    plan: &'a Plan,
    ledger: Option<&'a Ledger>,
    allowlist: Option<&'a Allowlist>,
    station: String,
    operator: String,
    confirmer: Confirmer,
    several: bool,
    in_progress: crate::station::InProgress,
}

/// One module's run.
struct Run {
    port: PortSpec,
    transcript: PathBuf,
    facts: ModuleFacts,
    result: Result<Report, Failure>,
}

/// Runs `sealcell provision`.
pub(crate) fn run_provision(args: ProvisionArgs) -> Result<(), Failure> {
    let json = args.json;
    let several = args.port.ports().len() > 1;
    // With several modules each report (or failure) is printed on its own; the summary failure
    // needs no JSON object of its own.
    provision_command(&args).map_err(|f| if several { f } else { json_failure(json, f) })
}

fn provision_command(args: &ProvisionArgs) -> Result<(), Failure> {
    let plan = Plan::load(&args.plan).map_err(|e| Failure::usage(e, None))?;
    let allowlist = args.allowlist.as_deref().map(Allowlist::load).transpose()?;
    let ledger = args.record.open()?;
    let ports = args.port.ports();
    let several = ports.len() > 1;
    let progress = (!args.port.verbose() && std::io::stderr().is_terminal())
        .then(indicatif::MultiProgress::new);
    let shared = Shared {
        args,
        plan: &plan,
        ledger: ledger.as_ref(),
        allowlist: allowlist.as_ref(),
        station: args.record.station(),
        operator: args.record.operator(),
        confirmer: Confirmer {
            yes: args.yes,
            lock: Arc::new(Mutex::new(())),
            progress: progress.clone(),
        },
        several,
        in_progress: Default::default(),
    };

    let jobs = usize::from(args.jobs.unwrap_or(u16::MAX)).clamp(1, ports.len());
    let next = Mutex::new(0usize);
    let runs: Mutex<Vec<Option<Run>>> = Mutex::new((0..ports.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().unwrap_or_else(|p| p.into_inner());
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(port) = ports.get(i) else { break };
                    let bar = progress.as_ref().map(|p| {
                        let bar = p.add(indicatif::ProgressBar::new_spinner());
                        bar.set_prefix(port.to_string());
                        bar.set_style(
                            indicatif::ProgressStyle::with_template("{spinner} {prefix}: {msg}")
                                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                        );
                        bar.enable_steady_tick(Duration::from_millis(100));
                        bar
                    });
                    let run = run_one(&shared, port, bar.as_ref());
                    if let Some(bar) = bar {
                        bar.finish_with_message(match &run.result {
                            Ok(_) => "done".to_string(),
                            Err(f) => format!("failed: {:#}", f.error),
                        });
                    }
                    if let Some(slot) = runs.lock().unwrap_or_else(|p| p.into_inner()).get_mut(i) {
                        *slot = Some(run);
                    }
                }
            });
        }
    });
    if let Some(p) = &progress {
        let _ = p.clear();
    }
    let runs: Vec<Run> = runs
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect();
    if !several {
        let Some(run) = runs.into_iter().next() else {
            return Err(Failure::usage(anyhow!("no module was provisioned"), None));
        };
        let report = run.result?;
        return emit(args.json, &report, || {
            provision_text(&report, &run.port, &run.transcript)
        });
    }
    report_several(args.json, &runs)
}

/// Prints one report (or failure) per module, in `--port` order; fails with the worst exit code.
fn report_several(json: bool, runs: &[Run]) -> Result<(), Failure> {
    let mut worst = 0u8;
    let mut failed = 0usize;
    for run in runs {
        match &run.result {
            Ok(report) => {
                if json {
                    let value = serde_json::json!({
                        "port": run.port.to_string(),
                        "imei": run.facts.imei,
                        "exit": 0,
                        "report": report,
                    });
                    crate::print_bytes(format!("{value}\n").as_bytes())?;
                } else {
                    crate::print_bytes(
                        provision_text(report, &run.port, &run.transcript).as_bytes(),
                    )?;
                }
            }
            Err(f) => {
                failed += 1;
                worst = worst.max(f.code);
                eprintln!("error: {}: {:#}", run.port, f.error);
                if let Some(hint) = &f.hint {
                    eprintln!("hint: {}: {hint}", run.port);
                }
                if json {
                    let value = serde_json::json!({
                        "port": run.port.to_string(),
                        "imei": (!run.facts.imei.is_empty()).then_some(&run.facts.imei),
                        "exit": f.code,
                        "error": format!("{:#}", f.error),
                        "hint": f.hint,
                    });
                    crate::print_bytes(format!("{value}\n").as_bytes())?;
                }
            }
        }
    }
    if failed == 0 {
        return Ok(());
    }
    Err(Failure {
        code: worst,
        error: anyhow!("{failed} of {} modules were not provisioned", runs.len()),
        hint: Some("each module's error is above; a re-run converges the others too".into()),
    })
}

fn run_one(shared: &Shared<'_>, port: &PortSpec, bar: Option<&indicatif::ProgressBar>) -> Run {
    let transcript = transcript_path(shared.args, port, shared.several);
    let (hasher, sink) = hashing_transcript();
    let started = now_unix_ms();
    let run = shared.ledger.and_then(|ledger| {
        let start = RunStart {
            kind: RunKind::Provision,
            started_unix_ms: started,
            station: shared.station.clone(),
            operator: shared.operator.clone(),
            port: port.to_string(),
            plan_path: Some(shared.plan.path.display().to_string()),
            plan_sha256: Some(shared.plan.sha256.clone()),
        };
        match ledger.begin_run(&start) {
            Ok(id) => Some((ledger, id)),
            Err(e) => {
                tracing::error!(error = %e, "the ledger could not record the run");
                None
            }
        }
    });
    if shared.ledger.is_some() && run.is_none() {
        return Run {
            port: port.clone(),
            transcript,
            facts: ModuleFacts::default(),
            result: Err(Failure::usage(
                anyhow!("the ledger could not record the run; nothing was sent to the module"),
                Some("check --ledger (or pass --no-ledger)".into()),
            )),
        };
    }
    let mut facts = ModuleFacts::default();
    let mut rules = Station {
        plan: shared.plan,
        in_progress: Arc::clone(&shared.in_progress),
        entered: None,
        sealed_now: None,
        done: Vec::new(),
        port: port.clone(),
        station: shared.station.clone(),
        force: shared.args.force,
        dry_run: shared.args.dry_run,
        allowlist: shared.allowlist,
        ledger: run,
        confirmer: shared.confirmer.clone(),
    };
    let result = shared
        .args
        .port
        .connect_to(port, Some(&transcript), bar, vec![sink])
        .and_then(|mut at| {
            let options = ProvisionOptions {
                dry_run: shared.args.dry_run,
                force: shared.args.force,
            };
            provision_at_station(&mut at, shared.plan, options, &mut rules, &mut facts)
                .map_err(|e| provision_failure(e, &transcript))
        });
    if let Some((ledger, id)) = run {
        let transcript_sha256 = hash_hex(&hasher);
        record_end(ledger, id, &rules, &facts, &result, transcript_sha256);
    }
    drop(rules);
    Run {
        port: port.clone(),
        transcript,
        facts,
        result,
    }
}

/// A transcript sink that hashes each line as the transcript file writes it (the ledger's
/// `transcript_sha256`: this run's lines, redacted as they are).
pub(crate) fn hashing_transcript() -> (Arc<Mutex<Sha256>>, Box<dyn Transcript>) {
    let hasher = Arc::new(Mutex::new(Sha256::new()));
    let sink = {
        let hasher = Arc::clone(&hasher);
        FnTranscript(move |direction: Direction, text: &str| {
            if let Ok(mut h) = hasher.lock() {
                h.update(format_line(direction, text).as_bytes());
                h.update(b"\n");
            }
        })
    };
    (hasher, Box::new(sink))
}

/// The hash so far, as hex.
pub(crate) fn hash_hex(hasher: &Mutex<Sha256>) -> Option<String> {
    hasher
        .lock()
        .ok()
        .map(|h| hex::encode(h.clone().finalize()))
}

fn provision_failure(e: ProvisionError, transcript: &Path) -> Failure {
    let hint = match &e {
        ProvisionError::PlaintextCredentials { .. } => Some(
            "remove them first (AT+USECMNG=2,<type>,\"<name>\"), or pass --force to strand them"
                .to_string(),
        ),
        ProvisionError::Refused(r) => r.hint.clone(),
        ProvisionError::Client(ClientError::Module { .. }) => {
            Some(format!("the transcript is in {}", transcript.display()))
        }
        _ => None,
    };
    let negative = e.is_negative();
    refusal(e, negative, hint)
}

/// Writes the run's end to the ledger: what the module ended with, never a secret. A failed run
/// keeps what it did before it failed: the seal's outcome and the credentials already in place.
fn record_end(
    ledger: &Ledger,
    id: RunId,
    rules: &Station<'_>,
    facts: &ModuleFacts,
    result: &Result<Report, Failure>,
    transcript_sha256: Option<String>,
) {
    let end = match result {
        Ok(report) => RunEnd {
            ended_unix_ms: now_unix_ms(),
            outcome: Outcome::Succeeded,
            error: None,
            sealed_after: Some(report.sealed),
            // The same entries the run collected as it went (one per planned credential).
            credentials: rules.done.clone(),
            profiles: report
                .profiles
                .iter()
                .map(|p| ProfileEntry {
                    id: p.id,
                    action: kebab(&p.action),
                })
                .collect(),
            transcript_sha256,
            detail: report.dry_run.then(|| "dry run".to_string()),
        },
        Err(f) => RunEnd {
            ended_unix_ms: now_unix_ms(),
            // Exit 1 is a refusal (the station's rules, the preflight or the module's answer).
            outcome: if f.code == 1 {
                Outcome::Refused
            } else {
                Outcome::Failed
            },
            error: Some(format!("{:#}", f.error)),
            // What is known: the seal's answer; else a module sealed before stays sealed (no
            // command unseals). Otherwise unknown.
            sealed_after: rules
                .sealed_now
                .or((!facts.imei.is_empty() && facts.sealed_before).then_some(true)),
            credentials: rules.done.clone(),
            profiles: Vec::new(),
            transcript_sha256,
            detail: None,
        },
    };
    if let Err(e) = ledger.finish_run(id, &end) {
        tracing::error!(error = %e, run = id.0, "the ledger could not record the end of a run");
    }
}

fn transcript_path(args: &ProvisionArgs, port: &PortSpec, several: bool) -> PathBuf {
    let stem = args
        .plan
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plan".into());
    let port_part = || {
        port.to_string()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect::<String>()
    };
    match (&args.transcript, several) {
        (Some(t), false) => t.clone(),
        (Some(t), true) => {
            let name = t
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "transcript.log".into());
            t.with_file_name(format!("{}.{name}", port_part()))
        }
        (None, false) => args.plan.with_file_name(format!("{stem}.transcript.log")),
        (None, true) => args
            .plan
            .with_file_name(format!("{stem}.{}.transcript.log", port_part())),
    }
}

fn provision_text(report: &Report, port: &PortSpec, transcript: &Path) -> String {
    let mut s = format!(
        "module {port}: {}\n",
        match report.seal {
            SealAction::Sealed => "sealed now",
            SealAction::AlreadySealed => "already sealed (the seal password cannot be read back)",
            SealAction::WouldSeal => "not sealed; would seal",
            _ if report.sealed => "sealed",
            _ => "not sealed (the plan does not seal)",
        }
    );
    for name in &report.stranded {
        s.push_str(&format!("  stranded by the seal: {name}\n"));
    }
    for c in &report.credentials {
        s.push_str(&format!(
            "  {} {:<28} {:<13} md5 {}\n",
            c.kind,
            c.name,
            kebab(&c.action),
            c.md5
        ));
    }
    for p in &report.profiles {
        s.push_str(&format!(
            "  profile {}{:<22} {}\n",
            p.id,
            "",
            kebab(&p.action)
        ));
    }
    s.push_str(if report.changed {
        if report.dry_run {
            "dry run: nothing was changed\n"
        } else {
            "done\n"
        }
    } else {
        "the module already matches the plan; nothing changed\n"
    });
    s.push_str(&format!("transcript: {}\n", transcript.display()));
    s
}
