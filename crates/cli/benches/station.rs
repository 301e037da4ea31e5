//! Issue 15's figures, beside their baselines in the same run, on the release binaries:
//!
//! - 16 emulated modules provisioned by one `sealcell provision` with 16 `--port`s (one worker
//!   each) against the same 16-module job run one after another (`--jobs 1`): wall times and the
//!   speed-up. Each module gets the full plan of tests/fixtures (seal, five credentials, one
//!   profile), and every run is recorded in a SQLite ledger.
//! - The ledger's cost per record (`begin_run`, `identify`, `lock_module`, `claim_seal`,
//!   `confirm_seal`, `finish_run`: what one provisioning run that seals writes), on SQLite (a file, synchronous=FULL) and on a throw-away PostgreSQL server
//!   (testkit's, which runs with fsync off), beside one module's provisioning time for scale.
//!
//! Run: `cargo bench -p sealcell --bench station` (needs PostgreSQL: `scripts/test-deps`).

// Bench code: a failed unwrap is a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, Running, boot};
use sealcell_ledger::{
    CredentialEntry, Ledger, ModuleFacts, Outcome, ProfileEntry, RunEnd, RunKind, RunStart,
};

const MODULES: usize = 16;
const RECORDS: usize = 200;

fn boot_all(dir: &Path, tag: &str) -> Vec<Running> {
    (0..MODULES)
        .map(|i| boot(&dir.join(format!("{tag}-{i}"))).0)
        .collect()
}

fn provision(modules: &[Running], plan: &Path, ledger: &Path, jobs: Option<usize>) -> Duration {
    let mut cmd = Command::new(BIN);
    cmd.arg("provision")
        .arg("--plan")
        .arg(plan)
        .arg("--ledger")
        .arg(ledger);
    for m in modules {
        cmd.args(["--port", &format!("tcp:{}", m.addr)]);
    }
    if let Some(j) = jobs {
        cmd.args(["--jobs", &j.to_string()]);
    }
    let start = Instant::now();
    let out = cmd.output().unwrap();
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// One record as a provisioning run that seals writes it: the run, the module's identity, the
/// module lock, the seal claim and its confirmation, the end (which releases the lock).
fn write_records(ledger: &Ledger, n: usize) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        let run = ledger
            .begin_run(&RunStart {
                kind: RunKind::Provision,
                started_unix_ms: 1_700_000_000_000 + i as i64,
                station: "bench".into(),
                operator: "bench".into(),
                port: "tcp:127.0.0.1:5555".into(),
                plan_path: Some("/plans/line-3.toml".into()),
                plan_sha256: Some("ab".repeat(32)),
            })
            .unwrap();
        ledger
            .identify(
                run,
                &ModuleFacts {
                    imei: format!("35925406{i:07}"),
                    iccid: "89001012345678901234".into(),
                    model: "TOBY-L210".into(),
                    firmware: "17.00".into(),
                    sealed_before: false,
                },
            )
            .unwrap();
        let imei = format!("35925406{i:07}");
        ledger
            .lock_module(&imei, "bench", run, 1_700_000_000_100 + i as i64, false)
            .unwrap();
        ledger
            .claim_seal(
                &imei,
                Some(&"ab".repeat(32)),
                "bench",
                run,
                1_700_000_000_200,
            )
            .unwrap();
        ledger.confirm_seal(&imei, run).unwrap();
        ledger
            .finish_run(
                run,
                &RunEnd {
                    ended_unix_ms: 1_700_000_000_500 + i as i64,
                    outcome: Outcome::Succeeded,
                    error: None,
                    sealed_after: Some(true),
                    credentials: (0..5)
                        .map(|c| CredentialEntry {
                            kind: "CA".into(),
                            name: format!("Root{c}"),
                            md5: "0".repeat(32),
                            sha256: "1".repeat(64),
                            action: "imported".into(),
                        })
                        .collect(),
                    profiles: vec![ProfileEntry {
                        id: 1,
                        action: "set".into(),
                    }],
                    transcript_sha256: Some("2".repeat(64)),
                    detail: None,
                },
            )
            .unwrap();
    }
    start.elapsed() / n as u32
}

fn main() {
    let work = tempfile::tempdir().unwrap();
    let plan = sealcell_testkit::plans::write_plan(work.path(), true);

    let parallel_modules = boot_all(work.path(), "parallel");
    let parallel = provision(
        &parallel_modules,
        &plan,
        &work.path().join("parallel.db"),
        None,
    );
    for m in parallel_modules {
        m.stop();
    }
    let serial_modules = boot_all(work.path(), "serial");
    let serial = provision(
        &serial_modules,
        &plan,
        &work.path().join("serial.db"),
        Some(1),
    );
    for m in serial_modules {
        m.stop();
    }

    let sqlite = Ledger::open(work.path().join("records.db").to_str().unwrap()).unwrap();
    let sqlite_cost = write_records(&sqlite, RECORDS);
    let pg = sealcell_testkit::pg::PgServer::start();
    let postgres = Ledger::open(&pg.url()).unwrap();
    let pg_cost = write_records(&postgres, RECORDS);

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{MODULES} emulated modules, the full test plan each (seal, 5 credentials, 1 profile), SQLite ledger:"
    );
    println!(
        "  one after another (--jobs 1):      {:8.1} ms   (baseline)",
        ms(serial)
    );
    println!(
        "  in parallel ({MODULES} workers):          {:8.1} ms",
        ms(parallel)
    );
    println!(
        "  speed-up:                          {:8.2}x  ({} cores)",
        serial.as_secs_f64() / parallel.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "  one module, serial share:          {:8.1} ms",
        ms(serial / MODULES as u32)
    );
    println!(
        "ledger cost per record (begin, identify, lock, claim, confirm, finish; mean of {RECORDS}):"
    );
    println!(
        "  SQLite (WAL, synchronous=FULL):    {:8.3} ms   ({:.1} % of one module's run)",
        ms(sqlite_cost),
        100.0 * sqlite_cost.as_secs_f64() / (serial.as_secs_f64() / MODULES as f64)
    );
    println!(
        "  PostgreSQL 127.0.0.1 (fsync off):  {:8.3} ms   ({:.1} % of one module's run)",
        ms(pg_cost),
        100.0 * pg_cost.as_secs_f64() / (serial.as_secs_f64() / MODULES as f64)
    );
}
