//! `sealcell ledger`: read the provisioning ledger (spec/cli.md, "The production line") — every
//! run, newest first; one module's story; a CSV export for the factory's records.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use sealcell_ledger::{Outcome, RunRecord};

use crate::host::print_json;
use crate::record::open_ledger_spec;
use crate::{Failure, print_bytes};

/// `sealcell ledger`.
#[derive(Debug, Args)]
pub(crate) struct LedgerArgs {
    /// The ledger: a SQLite file or a postgres:// URL. Default: $SEALCELL_LEDGER, else
    /// ./sealcell-ledger.db.
    #[arg(long, value_name = "PATH|URL", global = true)]
    ledger: Option<String>,
    #[command(subcommand)]
    command: LedgerCommand,
}

#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// Every run, newest first.
    List {
        /// As JSON (an array of runs).
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// As CSV (RFC 4180, one row per run).
        #[arg(long)]
        csv: bool,
    },
    /// One module's runs, oldest first.
    Show {
        /// The module's IMEI.
        imei: String,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write every run to a CSV file.
    Export {
        /// The file to write.
        #[arg(long, value_name = "FILE")]
        csv: PathBuf,
    },
}

/// Runs `sealcell ledger`.
pub(crate) fn run(args: LedgerArgs) -> Result<(), Failure> {
    let ledger = open_ledger_spec(args.ledger.as_deref())?;
    let db = |e: sealcell_ledger::LedgerError| Failure::usage(anyhow!("{e}"), None);
    match args.command {
        LedgerCommand::List { json, csv } => {
            if csv {
                let mut out = Vec::new();
                ledger.export_csv(&mut out).map_err(db)?;
                return print_bytes(&out);
            }
            let runs = ledger.list().map_err(db)?;
            if json {
                return print_json(&runs);
            }
            print_bytes(runs_text(&runs).as_bytes())
        }
        LedgerCommand::Show { imei, json } => {
            let runs = ledger.show(&imei).map_err(db)?;
            if runs.is_empty() {
                return Err(Failure {
                    code: 1,
                    error: anyhow!("the ledger has no run for module {imei}"),
                    hint: Some("`sealcell ledger list` shows every module it knows".into()),
                });
            }
            if json {
                return print_json(&runs);
            }
            print_bytes(story_text(&runs).as_bytes())
        }
        LedgerCommand::Export { csv } => {
            let mut out = Vec::new();
            ledger.export_csv(&mut out).map_err(db)?;
            std::fs::write(&csv, out).map_err(|e| {
                Failure::usage(anyhow!("cannot write {}: {e}", csv.display()), None)
            })?;
            eprintln!("wrote {}", csv.display());
            Ok(())
        }
    }
}

/// UTC time of a Unix millisecond timestamp, ISO 8601 to the second.
fn utc(unix_ms: i64) -> String {
    let (y, mo, d, h, mi, s) = sealcell_modem::clock::civil_time(unix_ms.div_euclid(1000));
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

fn outcome(o: &Outcome) -> &'static str {
    o.as_str()
}

fn seal_text(before: Option<bool>, after: Option<bool>) -> String {
    let one = |v: Option<bool>| match v {
        Some(true) => "sealed",
        Some(false) => "unsealed",
        None => "?",
    };
    format!("{} -> {}", one(before), one(after))
}

fn runs_text(runs: &[RunRecord]) -> String {
    if runs.is_empty() {
        return "the ledger is empty\n".into();
    }
    let mut s = format!(
        "{:>5}  {:<20}  {:<9}  {:<15}  {:<12}  {:<10}  {:<20}  {}\n",
        "run", "started (UTC)", "kind", "imei", "station", "outcome", "seal", "port"
    );
    for r in runs {
        s.push_str(&format!(
            "{:>5}  {:<20}  {:<9}  {:<15}  {:<12}  {:<10}  {:<20}  {}\n",
            r.id,
            utc(r.started_unix_ms),
            kind(r),
            r.imei.as_deref().unwrap_or("-"),
            r.station,
            outcome(&r.outcome),
            seal_text(r.sealed_before, r.sealed_after),
            r.port
        ));
    }
    s
}

fn kind(r: &RunRecord) -> &'static str {
    r.kind.as_str()
}

fn story_text(runs: &[RunRecord]) -> String {
    let mut s = String::new();
    for r in runs {
        s.push_str(&format!(
            "run {} {} {} at {} ({}) on {}: {}\n",
            r.id,
            kind(r),
            utc(r.started_unix_ms),
            r.station,
            r.operator,
            r.port,
            outcome(&r.outcome)
        ));
        s.push_str(&format!(
            "  module {} iccid {} {} firmware {}\n",
            r.imei.as_deref().unwrap_or("?"),
            r.iccid.as_deref().unwrap_or("?"),
            r.model.as_deref().unwrap_or("?"),
            r.firmware.as_deref().unwrap_or("?")
        ));
        if let Some(plan) = &r.plan_path {
            s.push_str(&format!(
                "  plan {plan} sha256 {}\n",
                r.plan_sha256.as_deref().unwrap_or("?")
            ));
        }
        s.push_str(&format!(
            "  seal {}\n",
            seal_text(r.sealed_before, r.sealed_after)
        ));
        for c in &r.credentials {
            s.push_str(&format!(
                "  {} {:<24} {:<10} md5 {} sha256 {}\n",
                c.kind, c.name, c.action, c.md5, c.sha256
            ));
        }
        for p in &r.profiles {
            s.push_str(&format!("  profile {} {}\n", p.id, p.action));
        }
        if let Some(d) = &r.detail {
            s.push_str(&format!("  {d}\n"));
        }
        if let Some(e) = &r.error {
            s.push_str(&format!("  error: {e}\n"));
        }
        if let Some(t) = &r.transcript_sha256 {
            s.push_str(&format!("  transcript sha256 {t}\n"));
        }
    }
    s
}
