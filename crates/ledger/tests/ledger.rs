//! The ledger's API suite, run against both back ends: every case is a function taking a
//! [`Fixture`], called from a `sqlite` and a `postgres` test (the [`both!`] macro). The
//! PostgreSQL fixture starts a throw-away server ([`PgServer`]); no test is skipped when the
//! server binaries are missing: it fails, naming the package to install.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sealcell_ledger::{
    BackendKind, CredentialEntry, Ledger, LedgerError, MODULE_LEASE_MS, ModuleFacts, ModuleLock,
    Outcome, ProfileEntry, RunEnd, RunId, RunKind, RunStart, SCHEMA_VERSION, SealClaim,
};
use sealcell_testkit::pg::PgServer;

// ---------------------------------------------------------------------------------------------
// Fixtures

/// A fresh, empty ledger of one back end.
struct Fixture {
    spec: String,
    /// Keeps the SQLite directory or the PostgreSQL server alive.
    _keep: Keep,
}

enum Keep {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres(PgServer),
}

impl Fixture {
    fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("sealcell-ledger.db").display().to_string();
        Fixture {
            spec,
            _keep: Keep::Sqlite(dir),
        }
    }

    fn postgres() -> Fixture {
        let pg = PgServer::start();
        Fixture {
            spec: pg.url(),
            _keep: Keep::Postgres(pg),
        }
    }

    fn kind(&self) -> BackendKind {
        match self._keep {
            Keep::Sqlite(_) => BackendKind::Sqlite,
            Keep::Postgres(_) => BackendKind::Postgres,
        }
    }

    fn open(&self) -> Ledger {
        Ledger::open(&self.spec).unwrap_or_else(|e| panic!("open {}: {e}", self.spec))
    }

    /// Runs SQL on the database directly, beside the ledger.
    fn raw_execute(&self, sql: &str) {
        match self.kind() {
            BackendKind::Sqlite => {
                rusqlite::Connection::open(&self.spec)
                    .unwrap()
                    .execute_batch(sql)
                    .unwrap();
            }
            _ => {
                let mut c = postgres::Client::connect(&self.spec, postgres::NoTls).unwrap();
                c.batch_execute(sql).unwrap();
            }
        }
    }

    /// Module `imei`'s lock as stored: `(run, station, locked_unix_ms)`.
    fn raw_lock(&self, imei: &str) -> Option<(i64, String, i64)> {
        const SQL: &str = "SELECT run, station, locked_unix_ms FROM module_locks WHERE imei = $1";
        match self.kind() {
            BackendKind::Sqlite => {
                use rusqlite::OptionalExtension;
                rusqlite::Connection::open(&self.spec)
                    .unwrap()
                    .query_row(&SQL.replace('$', "?"), [imei], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .optional()
                    .unwrap()
            }
            _ => {
                let mut c = postgres::Client::connect(&self.spec, postgres::NoTls).unwrap();
                c.query_opt(SQL, &[&imei])
                    .unwrap()
                    .map(|r| (r.get(0), r.get(1), r.get(2)))
            }
        }
    }

    /// The columns of `table`, in order (none when it does not exist).
    fn raw_columns(&self, table: &str) -> Vec<String> {
        self.raw_dump()
            .into_iter()
            .filter(|(t, _, v)| t == table && v.is_none())
            .map(|(_, c, _)| c)
            .collect()
    }

    /// Every value of every column of every table, as text: `(table, column, value)`.
    fn raw_dump(&self) -> Vec<(String, String, Option<String>)> {
        let mut out = Vec::new();
        match self.kind() {
            BackendKind::Sqlite => {
                let c = rusqlite::Connection::open(&self.spec).unwrap();
                let tables: Vec<String> = c
                    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                    .unwrap()
                    .query_map([], |r| r.get(0))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                for t in tables {
                    let columns: Vec<String> = c
                        .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
                        .unwrap()
                        .query_map([], |r| r.get(0))
                        .unwrap()
                        .collect::<Result<_, _>>()
                        .unwrap();
                    for col in columns {
                        let mut s = c
                            .prepare(&format!("SELECT CAST(\"{col}\" AS TEXT) FROM \"{t}\""))
                            .unwrap();
                        let values = s.query_map([], |r| r.get::<_, Option<String>>(0)).unwrap();
                        for v in values {
                            out.push((t.clone(), col.clone(), v.unwrap()));
                        }
                        // An empty table still shows its columns.
                        out.push((t.clone(), col.clone(), None));
                    }
                }
            }
            _ => {
                let mut c = postgres::Client::connect(&self.spec, postgres::NoTls).unwrap();
                let columns = c
                    .query(
                        "SELECT table_name::text, column_name::text FROM information_schema.columns \
                         WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
                        &[],
                    )
                    .unwrap();
                for row in columns {
                    let (t, col): (String, String) = (row.get(0), row.get(1));
                    for v in c
                        .query(&format!("SELECT \"{col}\"::text FROM \"{t}\""), &[])
                        .unwrap()
                    {
                        out.push((t.clone(), col.clone(), v.get(0)));
                    }
                    out.push((t.clone(), col.clone(), None));
                }
            }
        }
        out
    }
}

/// One `mod NAME { fn sqlite(); fn postgres(); }` per case `fn NAME(&Fixture)`.
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(&super::Fixture::sqlite());
            }
            #[test]
            fn postgres() {
                super::$name(&super::Fixture::postgres());
            }
        }
    )*};
}

both!(
    success_is_recorded,
    failure_is_recorded,
    refusal_is_recorded,
    interrupted_run_then_rerun,
    claim_rules,
    misuse_is_a_specific_error,
    two_processes_race_for_one_seal,
    lock_granted_then_held,
    lock_take_over_and_lease,
    lock_released_by_finish,
    lock_needs_a_running_run,
    two_processes_race_for_one_module_lock,
    opening_twice_is_idempotent,
    v1_database_migrates,
    newer_schema_is_refused,
    exports_match_golden_files,
    no_secret_in_any_column,
    shared_between_threads,
);

// ---------------------------------------------------------------------------------------------
// Data

const IMEI: &str = "490154203237518";
const PLAN_SHA: &str = "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592";
const OTHER_PLAN_SHA: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
/// 2023-11-14T22:13:20Z: fixed, so the golden files are stable.
const T0: i64 = 1_700_000_000_000;

fn start(station: &str, t: i64) -> RunStart {
    RunStart {
        kind: RunKind::Provision,
        started_unix_ms: t,
        station: station.into(),
        operator: "alice".into(),
        port: "/dev/ttyUSB0".into(),
        plan_path: Some("plans/line1.toml".into()),
        plan_sha256: Some(PLAN_SHA.into()),
    }
}

fn facts(imei: &str, sealed_before: bool) -> ModuleFacts {
    ModuleFacts {
        imei: imei.into(),
        iccid: "8988211000000000001".into(),
        model: "TOBY-L210".into(),
        firmware: "17.00,A01.00".into(),
        sealed_before,
    }
}

fn credentials() -> Vec<CredentialEntry> {
    let c = |kind: &str, name: &str, n: u8, action: &str| CredentialEntry {
        kind: kind.into(),
        name: name.into(),
        md5: format!("{n:02x}").repeat(16),
        sha256: format!("{n:02x}").repeat(32),
        action: action.into(),
    };
    vec![
        c("CA", "RootCA", 1, "imported"),
        c("CC", "Device", 2, "imported"),
        c("PK", "DeviceKey", 3, "imported"),
        c("SC", "ServerPin", 4, "unchanged"),
        c("VC", "CustomerFWVerificationCert", 5, "replaced"),
    ]
}

fn profiles() -> Vec<ProfileEntry> {
    vec![ProfileEntry {
        id: 1,
        action: "configured".into(),
    }]
}

fn end(t: i64, outcome: Outcome, error: Option<&str>) -> RunEnd {
    RunEnd {
        ended_unix_ms: t,
        outcome,
        error: error.map(str::to_string),
        sealed_after: Some(outcome == Outcome::Succeeded),
        credentials: credentials(),
        profiles: profiles(),
        transcript_sha256: Some("ab".repeat(32)),
        detail: None,
    }
}

/// A full, sealing, successful run with its seal claim confirmed.
fn full_run(l: &Ledger, imei: &str, station: &str, t: i64) -> RunId {
    let run = l.begin_run(&start(station, t)).unwrap();
    l.identify(run, &facts(imei, false)).unwrap();
    let claim = l
        .claim_seal(imei, Some(PLAN_SHA), station, run, t + 500)
        .unwrap();
    assert_eq!(claim, SealClaim::Granted);
    l.confirm_seal(imei, run).unwrap();
    l.finish_run(run, &end(t + 1000, Outcome::Succeeded, None))
        .unwrap();
    run
}

// ---------------------------------------------------------------------------------------------
// Records

fn success_is_recorded(f: &Fixture) {
    let l = f.open();
    assert_eq!(l.backend(), f.kind());
    let run = full_run(&l, IMEI, "line1-a", T0);
    let runs = l.show(IMEI).unwrap();
    assert_eq!(runs.len(), 1);
    let r = &runs[0];
    assert_eq!(r.id, run.0);
    assert_eq!(r.kind, RunKind::Provision);
    assert_eq!((r.started_unix_ms, r.ended_unix_ms), (T0, Some(T0 + 1000)));
    assert_eq!(
        (r.station.as_str(), r.operator.as_str()),
        ("line1-a", "alice")
    );
    assert_eq!(r.port, "/dev/ttyUSB0");
    assert_eq!(r.imei.as_deref(), Some(IMEI));
    assert_eq!(r.iccid.as_deref(), Some("8988211000000000001"));
    assert_eq!(r.model.as_deref(), Some("TOBY-L210"));
    assert_eq!(r.firmware.as_deref(), Some("17.00,A01.00"));
    assert_eq!(r.plan_path.as_deref(), Some("plans/line1.toml"));
    assert_eq!(r.plan_sha256.as_deref(), Some(PLAN_SHA));
    assert_eq!((r.sealed_before, r.sealed_after), (Some(false), Some(true)));
    assert_eq!(r.credentials, credentials());
    assert_eq!(r.profiles, profiles());
    assert_eq!(r.outcome, Outcome::Succeeded);
    assert_eq!(r.error, None);
    assert_eq!(
        r.transcript_sha256.as_deref(),
        Some("ab".repeat(32).as_str())
    );
    let seal = l.seal_record(IMEI).unwrap().unwrap();
    assert_eq!(seal.run, run);
    assert!(seal.confirmed);
    assert_eq!(seal.plan_sha256.as_deref(), Some(PLAN_SHA));
    assert_eq!(l.list().unwrap(), runs);
}

fn failure_is_recorded(f: &Fixture) {
    let l = f.open();
    let run = l.begin_run(&start("line1-a", T0)).unwrap();
    l.identify(run, &facts(IMEI, false)).unwrap();
    let mut e = end(
        T0 + 300,
        Outcome::Failed,
        Some("+CME ERROR: 4 on AT+USECMNG=0,1,\"Device\""),
    );
    e.credentials.truncate(2);
    e.credentials[1].action = "failed".into();
    e.profiles.clear();
    l.finish_run(run, &e).unwrap();
    let r = &l.show(IMEI).unwrap()[0];
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(r.error, e.error);
    assert_eq!(r.credentials, e.credentials);
    assert!(r.profiles.is_empty());
    assert_eq!(r.sealed_after, Some(false));
    assert_eq!(l.seal_record(IMEI).unwrap(), None);
}

fn refusal_is_recorded(f: &Fixture) {
    let l = f.open();
    // The module is sealed under another plan by line 2...
    let first = l.begin_run(&start("line2", T0)).unwrap();
    l.identify(first, &facts(IMEI, false)).unwrap();
    assert_eq!(
        l.claim_seal(IMEI, Some(OTHER_PLAN_SHA), "line2", first, T0)
            .unwrap(),
        SealClaim::Granted
    );
    l.confirm_seal(IMEI, first).unwrap();
    l.finish_run(first, &end(T0 + 10, Outcome::Succeeded, None))
        .unwrap();
    // ...so line 1 refuses it before changing anything.
    let run = l.begin_run(&start("line1-a", T0 + 100)).unwrap();
    l.identify(run, &facts(IMEI, true)).unwrap();
    let seal = l.seal_record(IMEI).unwrap().unwrap();
    assert_ne!(seal.plan_sha256.as_deref(), Some(PLAN_SHA));
    let refusal = RunEnd {
        ended_unix_ms: T0 + 120,
        outcome: Outcome::Refused,
        error: Some(format!(
            "module {IMEI} is sealed under plan {OTHER_PLAN_SHA} (station line2)"
        )),
        sealed_after: Some(true),
        credentials: vec![],
        profiles: vec![],
        transcript_sha256: None,
        detail: None,
    };
    l.finish_run(run, &refusal).unwrap();
    let runs = l.show(IMEI).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].outcome, Outcome::Refused);
    assert_eq!(runs[1].sealed_before, Some(true));
    assert_eq!(runs[1].error, refusal.error);
    assert!(runs[1].credentials.is_empty());
    // The seal is still line 2's.
    assert_eq!(l.seal_record(IMEI).unwrap().unwrap().run, first);
}

fn interrupted_run_then_rerun(f: &Fixture) {
    let l = f.open();
    // Power cut after the claim, before the seal answered: no finish, no confirm.
    let crashed = l.begin_run(&start("line1-a", T0)).unwrap();
    l.identify(crashed, &facts(IMEI, false)).unwrap();
    assert_eq!(
        l.claim_seal(IMEI, Some(PLAN_SHA), "line1-a", crashed, T0 + 5)
            .unwrap(),
        SealClaim::Granted
    );
    drop(l);

    // The station comes back (a new process: a new connection). Within the lease the dead run
    // still holds the claim (it could be a second run at once); --force takes it over.
    let l = f.open();
    let runs = l.show(IMEI).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].outcome, Outcome::Running);
    assert_eq!(runs[0].ended_unix_ms, None);
    let early = l.begin_run(&start("line1-a", T0 + 60_000)).unwrap();
    l.identify(early, &facts(IMEI, false)).unwrap();
    assert!(matches!(
        l.claim_seal(IMEI, Some(PLAN_SHA), "line1-a", early, T0 + 60_000)
            .unwrap(),
        SealClaim::HeldBy(s) if s.run == crashed
    ));
    assert!(
        matches!(
            l.take_over_seal(IMEI, Some(PLAN_SHA), "line2", early, T0 + 60_002)
                .unwrap(),
            SealClaim::HeldBy(_)
        ),
        "another station never takes over"
    );
    l.finish_run(early, &refused_end()).unwrap();
    // Past the lease, a plain re-run takes the dead run's claim.
    let rerun = full_run(&l, IMEI, "line1-a", T0 + 5 + sealcell_ledger::SEAL_LEASE_MS);

    let runs = l.show(IMEI).unwrap();
    assert_eq!(
        runs.iter().map(|r| (r.id, r.outcome)).collect::<Vec<_>>(),
        [
            (crashed.0, Outcome::Running),
            (early.0, Outcome::Refused),
            (rerun.0, Outcome::Succeeded)
        ],
        "show: oldest first"
    );
    let listed: Vec<i64> = l.list().unwrap().iter().map(|r| r.id).collect();
    assert_eq!(listed, [rerun.0, early.0, crashed.0], "list: newest first");
    assert_eq!(l.seal_record(IMEI).unwrap().unwrap().run, rerun);
}

fn claim_rules(f: &Fixture) {
    let l = f.open();
    let a1 = l.begin_run(&start("A", T0)).unwrap();
    let a2 = l.begin_run(&start("A", T0 + 1)).unwrap();
    let a3 = l.begin_run(&start("A", T0 + 2)).unwrap();
    let b1 = l.begin_run(&start("B", T0 + 3)).unwrap();

    // Granted: nobody holds it.
    assert_eq!(
        l.claim_seal(IMEI, Some(PLAN_SHA), "A", a1, T0 + 10)
            .unwrap(),
        SealClaim::Granted
    );
    let held = l.seal_record(IMEI).unwrap().unwrap();
    assert_eq!(
        (held.station.as_str(), held.run, held.confirmed),
        ("A", a1, false)
    );
    assert_eq!(held.claimed_unix_ms, T0 + 10);

    // Held by another station, even unconfirmed.
    match l
        .claim_seal(IMEI, Some(PLAN_SHA), "B", b1, T0 + 11)
        .unwrap()
    {
        SealClaim::HeldBy(s) => assert_eq!((s.station.as_str(), s.run), ("A", a1)),
        other => panic!("{other:?}"),
    }

    // Not to the same station while the holding run is still running (two runs at once)...
    assert!(matches!(
        l.claim_seal(IMEI, Some(OTHER_PLAN_SHA), "A", a2, T0 + 12).unwrap(),
        SealClaim::HeldBy(s) if s.run == a1
    ));
    // ...unless --force takes it over (the operator knows that run is dead)...
    let a4 = l.begin_run(&start("A", T0 + 4)).unwrap();
    assert_eq!(
        l.take_over_seal(IMEI, Some(PLAN_SHA), "A", a4, T0 + 12)
            .unwrap(),
        SealClaim::Granted
    );
    assert_eq!(l.seal_record(IMEI).unwrap().unwrap().run, a4);
    l.finish_run(a4, &refused_end()).unwrap();
    // ...or it is over without having sealed (a re-run after a failure): re-granted.
    l.finish_run(a1, &refused_end()).unwrap();
    assert_eq!(
        l.claim_seal(IMEI, Some(OTHER_PLAN_SHA), "A", a2, T0 + 12)
            .unwrap(),
        SealClaim::Granted
    );
    let held = l.seal_record(IMEI).unwrap().unwrap();
    assert_eq!((held.run, held.claimed_unix_ms), (a2, T0 + 12));
    assert_eq!(held.plan_sha256.as_deref(), Some(OTHER_PLAN_SHA));

    // Only the holder confirms.
    assert!(matches!(
        l.confirm_seal(IMEI, a1),
        Err(LedgerError::SealNotHeld { run, .. }) if run == a1
    ));
    l.confirm_seal(IMEI, a2).unwrap();
    l.confirm_seal(IMEI, a2).unwrap();

    // Not re-granted once confirmed, not even to the same station; not released either.
    match l
        .claim_seal(IMEI, Some(PLAN_SHA), "A", a3, T0 + 13)
        .unwrap()
    {
        SealClaim::HeldBy(s) => assert_eq!((s.run, s.confirmed), (a2, true)),
        other => panic!("{other:?}"),
    }
    assert!(!l.release_seal(IMEI, a2).unwrap());
    assert!(l.seal_record(IMEI).unwrap().unwrap().confirmed);

    // Release: only the holder's unconfirmed claim; then another station may claim.
    let other = "490154203237526";
    assert_eq!(
        l.claim_seal(other, None, "A", a3, T0 + 20).unwrap(),
        SealClaim::Granted
    );
    assert!(!l.release_seal(other, b1).unwrap(), "not b1's claim");
    assert!(!l.release_seal("000000000000000", a3).unwrap(), "no claim");
    assert!(l.release_seal(other, a3).unwrap());
    assert_eq!(l.seal_record(other).unwrap(), None);
    assert_eq!(
        l.claim_seal(other, None, "B", b1, T0 + 21).unwrap(),
        SealClaim::Granted
    );
    assert_eq!(l.seal_record(other).unwrap().unwrap().plan_sha256, None);
}

fn misuse_is_a_specific_error(f: &Fixture) {
    let l = f.open();
    let ghost = RunId(4242);
    assert!(
        matches!(l.identify(ghost, &facts(IMEI, false)), Err(LedgerError::UnknownRun(r)) if r == ghost)
    );
    assert!(matches!(
        l.finish_run(ghost, &end(T0, Outcome::Failed, None)),
        Err(LedgerError::UnknownRun(r)) if r == ghost
    ));
    let run = l.begin_run(&start("A", T0)).unwrap();
    assert!(matches!(
        l.finish_run(run, &end(T0, Outcome::Running, None)),
        Err(LedgerError::NotAnEnd)
    ));
    l.finish_run(run, &end(T0 + 1, Outcome::Failed, Some("first")))
        .unwrap();
    let again = l.finish_run(run, &end(T0 + 2, Outcome::Succeeded, None));
    assert!(
        matches!(again, Err(LedgerError::AlreadyFinished(r)) if r == run),
        "{again:?}"
    );
    assert!(matches!(
        l.identify(run, &facts(IMEI, false)),
        Err(LedgerError::AlreadyFinished(_))
    ));
    assert_eq!(
        l.list().unwrap()[0].error.as_deref(),
        Some("first"),
        "unchanged"
    );
    // A claim for a run that does not exist is refused by the database.
    assert!(matches!(
        l.claim_seal(IMEI, None, "A", ghost, T0),
        Err(LedgerError::Database { .. })
    ));
    assert_eq!(l.seal_record(IMEI).unwrap(), None);
}

// ---------------------------------------------------------------------------------------------
// Module locks

const OTHER_IMEI: &str = "490154203237526";

fn held_by(run: RunId, station: &str, locked_unix_ms: i64) -> ModuleLock {
    ModuleLock::HeldBy {
        run,
        station: station.into(),
        locked_unix_ms,
    }
}

fn lock_granted_then_held(f: &Fixture) {
    let l = f.open();
    let a1 = l.begin_run(&start("A", T0)).unwrap();
    let a2 = l.begin_run(&start("A", T0 + 1)).unwrap();
    let b1 = l.begin_run(&start("B", T0 + 2)).unwrap();

    // Granted: nobody holds it.
    assert_eq!(
        l.lock_module(IMEI, "A", a1, T0 + 10, false).unwrap(),
        ModuleLock::Granted
    );
    assert_eq!(f.raw_lock(IMEI), Some((a1.0, "A".into(), T0 + 10)));
    // Held by another running run of another station...
    assert_eq!(
        l.lock_module(IMEI, "B", b1, T0 + 11, false).unwrap(),
        held_by(a1, "A", T0 + 10)
    );
    // ...and of the same station (two ports or terminals on one module).
    assert_eq!(
        l.lock_module(IMEI, "A", a2, T0 + 12, false).unwrap(),
        held_by(a1, "A", T0 + 10)
    );
    assert_eq!(
        f.raw_lock(IMEI),
        Some((a1.0, "A".into(), T0 + 10)),
        "unchanged"
    );
    // Another module is another lock.
    assert_eq!(
        l.lock_module(OTHER_IMEI, "B", b1, T0 + 13, false).unwrap(),
        ModuleLock::Granted
    );
    // The same run locking again: granted, and its lease renewed.
    assert_eq!(
        l.lock_module(IMEI, "A", a1, T0 + 20, false).unwrap(),
        ModuleLock::Granted
    );
    assert_eq!(f.raw_lock(IMEI), Some((a1.0, "A".into(), T0 + 20)));
    // The answer is serializable (for `--json` reports).
    let json = serde_json::to_string(&held_by(a1, "A", T0)).unwrap();
    assert_eq!(
        serde_json::from_str::<ModuleLock>(&json).unwrap(),
        held_by(a1, "A", T0)
    );
}

fn lock_take_over_and_lease(f: &Fixture) {
    let l = f.open();
    let a1 = l.begin_run(&start("A", T0)).unwrap();
    let a2 = l.begin_run(&start("A", T0 + 1)).unwrap();
    let a3 = l.begin_run(&start("A", T0 + 2)).unwrap();
    let b1 = l.begin_run(&start("B", T0 + 3)).unwrap();
    assert_eq!(
        l.lock_module(IMEI, "A", a1, T0, false).unwrap(),
        ModuleLock::Granted
    );

    // take_over (--force) never takes another station's live lock...
    assert_eq!(
        l.lock_module(IMEI, "B", b1, T0 + 1, true).unwrap(),
        held_by(a1, "A", T0)
    );
    assert_eq!(f.raw_lock(IMEI), Some((a1.0, "A".into(), T0)));
    // ...but takes this station's.
    assert_eq!(
        l.lock_module(IMEI, "A", a2, T0 + 2, true).unwrap(),
        ModuleLock::Granted
    );
    assert_eq!(f.raw_lock(IMEI), Some((a2.0, "A".into(), T0 + 2)));
    // The run it was taken from has lost it.
    assert_eq!(
        l.lock_module(IMEI, "A", a1, T0 + 3, false).unwrap(),
        held_by(a2, "A", T0 + 2)
    );

    // The lease: within it, held (even from another station); past it, the holder's station is
    // presumed dead and any run takes it over.
    assert_eq!(
        l.lock_module(OTHER_IMEI, "B", b1, T0, false).unwrap(),
        ModuleLock::Granted
    );
    assert_eq!(
        l.lock_module(OTHER_IMEI, "A", a3, T0 + MODULE_LEASE_MS - 1, false)
            .unwrap(),
        held_by(b1, "B", T0)
    );
    assert_eq!(
        l.lock_module(OTHER_IMEI, "A", a3, T0 + MODULE_LEASE_MS, false)
            .unwrap(),
        ModuleLock::Granted
    );
    assert_eq!(
        f.raw_lock(OTHER_IMEI),
        Some((a3.0, "A".into(), T0 + MODULE_LEASE_MS))
    );
    // Locking again renews the lease: a long run keeps its module.
    let renewed = T0 + 2 * MODULE_LEASE_MS - 10;
    assert_eq!(
        l.lock_module(OTHER_IMEI, "A", a3, renewed, false).unwrap(),
        ModuleLock::Granted
    );
    assert_eq!(
        l.lock_module(OTHER_IMEI, "B", b1, T0 + 2 * MODULE_LEASE_MS, false)
            .unwrap(),
        held_by(a3, "A", renewed)
    );
}

fn lock_released_by_finish(f: &Fixture) {
    let l = f.open();
    let a1 = l.begin_run(&start("A", T0)).unwrap();
    let a2 = l.begin_run(&start("A", T0 + 1)).unwrap();
    let b1 = l.begin_run(&start("B", T0 + 2)).unwrap();
    let b2 = l.begin_run(&start("B", T0 + 3)).unwrap();
    assert_eq!(
        l.lock_module(IMEI, "A", a1, T0, false).unwrap(),
        ModuleLock::Granted
    );
    // The holder finishes: the lock goes with it, and another station's run gets the module.
    l.finish_run(a1, &end(T0 + 5, Outcome::Failed, Some("profile 1")))
        .unwrap();
    assert_eq!(f.raw_lock(IMEI), None);
    assert_eq!(
        l.lock_module(IMEI, "B", b1, T0 + 6, false).unwrap(),
        ModuleLock::Granted
    );
    // A run finishing releases its own lock only.
    assert_eq!(
        l.lock_module(OTHER_IMEI, "A", a2, T0 + 7, false).unwrap(),
        ModuleLock::Granted
    );
    l.finish_run(a2, &refused_end()).unwrap();
    assert_eq!(f.raw_lock(OTHER_IMEI), None);
    assert_eq!(f.raw_lock(IMEI), Some((b1.0, "B".into(), T0 + 6)));
    // A failed finish (already finished) changes no lock.
    assert!(l.finish_run(a2, &refused_end()).is_err());
    assert_eq!(f.raw_lock(IMEI), Some((b1.0, "B".into(), T0 + 6)));
    // Safety net: a lock whose run no longer shows `running` (here ended by hand, bypassing
    // finish_run) is taken over by any run.
    f.raw_execute(&format!(
        "UPDATE runs SET outcome = 'failed' WHERE id = {}",
        b1.0
    ));
    let a3 = l.begin_run(&start("A", T0 + 8)).unwrap();
    assert_eq!(
        l.lock_module(IMEI, "A", a3, T0 + 9, false).unwrap(),
        ModuleLock::Granted
    );
    assert_eq!(f.raw_lock(IMEI), Some((a3.0, "A".into(), T0 + 9)));
    // A full run (lock, seal, finish) leaves no lock behind.
    let m = "490154203237534";
    assert_eq!(
        l.lock_module(m, "B", b2, T0 + 10, false).unwrap(),
        ModuleLock::Granted
    );
    l.claim_seal(m, Some(PLAN_SHA), "B", b2, T0 + 11).unwrap();
    l.confirm_seal(m, b2).unwrap();
    l.finish_run(b2, &end(T0 + 12, Outcome::Succeeded, None))
        .unwrap();
    assert_eq!(f.raw_lock(m), None);
}

fn lock_needs_a_running_run(f: &Fixture) {
    let l = f.open();
    let ghost = RunId(4242);
    assert!(matches!(
        l.lock_module(IMEI, "A", ghost, T0, false),
        Err(LedgerError::UnknownRun(r)) if r == ghost
    ));
    let done = l.begin_run(&start("A", T0)).unwrap();
    l.finish_run(done, &refused_end()).unwrap();
    assert!(matches!(
        l.lock_module(IMEI, "A", done, T0 + 5, true),
        Err(LedgerError::AlreadyFinished(r)) if r == done
    ));
    assert_eq!(f.raw_lock(IMEI), None, "a finished run never holds a lock");
}

// ---------------------------------------------------------------------------------------------
// The race: two processes, two stations, one module, the same instant.

/// Set in the environment of a re-executed test binary: it is a racing station.
const CHILD_ENV: &str = "SEALCELL_LEDGER_RACE_CHILD";
const ROUNDS: usize = 20;

/// Not a test of its own: the body of a racing station when the test binary re-executes itself
/// with [`CHILD_ENV`] = `SPEC STATION`. Protocol on stdin/stdout (lines): the child says
/// `READY`, then for each `CLAIM IMEI AT_UNIX_MS` (the seal) or `LOCK IMEI AT_UNIX_MS` (the
/// module lock) waits until that instant, claims or locks, and answers `GRANTED IMEI` or
/// `HELD IMEI BY_STATION`; `QUIT` ends it.
#[test]
fn race_child() {
    let Ok(arg) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (spec, station) = arg.rsplit_once(' ').unwrap();
    let l = Ledger::open(spec).unwrap();
    let run = l.begin_run(&start(station, T0)).unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY").unwrap();
    out.flush().unwrap();
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["CLAIM", imei, at] => {
                sleep_until(at.parse().unwrap());
                let answer = match l
                    .claim_seal(imei, Some(PLAN_SHA), station, run, T0)
                    .unwrap()
                {
                    SealClaim::Granted => format!("GRANTED {imei}"),
                    SealClaim::HeldBy(s) => format!("HELD {imei} {}", s.station),
                };
                writeln!(out, "{answer}").unwrap();
                out.flush().unwrap();
            }
            ["LOCK", imei, at] => {
                sleep_until(at.parse().unwrap());
                let answer = match l.lock_module(imei, station, run, T0, false).unwrap() {
                    ModuleLock::Granted => format!("GRANTED {imei}"),
                    ModuleLock::HeldBy { station, .. } => format!("HELD {imei} {station}"),
                };
                writeln!(out, "{answer}").unwrap();
                out.flush().unwrap();
            }
            ["QUIT"] => return,
            _ => panic!("race child: unexpected {line:?}"),
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Sleeps until shortly before `at`, then spins, so both children start their claim within
/// microseconds of each other.
fn sleep_until(at: i64) {
    let left = at - now_ms();
    if left > 2 {
        std::thread::sleep(Duration::from_millis((left - 2) as u64));
    }
    while now_ms() < at {
        std::hint::spin_loop();
    }
}

struct Station {
    name: String,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Station {
    fn spawn(spec: &str, name: &str) -> Station {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "race_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
                "-q",
            ])
            .env(CHILD_ENV, format!("{spec} {name}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut s = Station {
            name: name.into(),
            child,
            stdin,
            stdout,
        };
        s.expect("READY");
        s
    }

    /// The next protocol line starting with `prefix` (the test harness prints its own lines).
    fn expect(&mut self, prefix: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "station {} exited before {prefix:?}", self.name);
            if line.starts_with(prefix) || line.starts_with("GRANTED") || line.starts_with("HELD") {
                return line.trim().to_string();
            }
        }
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }
}

fn two_processes_race_for_one_seal(f: &Fixture) {
    let l = f.open();
    race(f, "CLAIM", |imei| {
        l.seal_record(imei).unwrap().unwrap().station
    });
}

fn two_processes_race_for_one_module_lock(f: &Fixture) {
    race(f, "LOCK", |imei| f.raw_lock(imei).unwrap().1);
}

/// [`ROUNDS`] rounds of two stations sending `verb` on a new module at the same instant:
/// exactly one is granted each round, the other is told it is held by the winner, and
/// `holder(imei)` (what the ledger stored) names the winner.
fn race(f: &Fixture, verb: &str, holder: impl Fn(&str) -> String) {
    // Migrated once up front, as a station would find it.
    drop(f.open());
    let mut a = Station::spawn(&f.spec, "station-a");
    let mut b = Station::spawn(&f.spec, "station-b");
    let mut wins = [0usize; 2];
    for round in 0..ROUNDS {
        let imei = format!("35{round:013}");
        let at = now_ms() + 150;
        let claim = format!("{verb} {imei} {at}");
        a.send(&claim);
        b.send(&claim);
        let answers = [a.expect("GRANTED"), b.expect("GRANTED")];
        let granted: Vec<usize> = (0..2)
            .filter(|i| answers[*i].starts_with("GRANTED"))
            .collect();
        assert_eq!(
            granted.len(),
            1,
            "round {round}: exactly one granted: {answers:?}"
        );
        let winner = granted[0];
        wins[winner] += 1;
        let winner_name = ["station-a", "station-b"][winner];
        assert_eq!(answers[1 - winner], format!("HELD {imei} {winner_name}"));
        assert_eq!(holder(&imei), winner_name, "round {round}");
    }
    for s in [&mut a, &mut b] {
        s.send("QUIT");
        assert!(s.child.wait().unwrap().success());
    }
    eprintln!("{verb} race wins (a, b): {wins:?}");
}

// ---------------------------------------------------------------------------------------------
// Migrations

fn opening_twice_is_idempotent(f: &Fixture) {
    let run = full_run(&f.open(), IMEI, "A", T0);
    let l = f.open();
    let l2 = f.open();
    assert_eq!(l.show(IMEI).unwrap().len(), 1);
    assert_eq!(l2.seal_record(IMEI).unwrap().unwrap().run, run);
    let versions: Vec<_> = f
        .raw_dump()
        .into_iter()
        .filter(|(t, c, v)| t == "schema_version" && c == "version" && v.is_some())
        .map(|(_, _, v)| v.unwrap())
        .collect();
    assert_eq!(
        versions,
        (1..=SCHEMA_VERSION)
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
    );
}

/// Version 1's DDL as the first release created it (with the back end's `{id}`).
const V1_DDL: &str = "CREATE TABLE schema_version (\
     version BIGINT PRIMARY KEY, applied_unix_ms BIGINT NOT NULL);
    CREATE TABLE runs (
        id {id},
        kind TEXT NOT NULL,
        started_unix_ms BIGINT NOT NULL,
        ended_unix_ms BIGINT,
        station TEXT NOT NULL,
        operator TEXT NOT NULL,
        port TEXT NOT NULL,
        imei TEXT,
        iccid TEXT,
        model TEXT,
        firmware TEXT,
        plan_path TEXT,
        plan_sha256 TEXT,
        sealed_before BOOLEAN,
        sealed_after BOOLEAN,
        credentials TEXT NOT NULL DEFAULT '[]',
        profiles TEXT NOT NULL DEFAULT '[]',
        outcome TEXT NOT NULL,
        error TEXT,
        transcript_sha256 TEXT,
        detail TEXT
    );
    CREATE INDEX runs_by_imei ON runs (imei, started_unix_ms, id);
    CREATE INDEX runs_by_start ON runs (started_unix_ms, id);
    CREATE TABLE seals (
        imei TEXT PRIMARY KEY,
        plan_sha256 TEXT,
        station TEXT NOT NULL,
        run BIGINT NOT NULL REFERENCES runs (id),
        claimed_unix_ms BIGINT NOT NULL,
        confirmed BOOLEAN NOT NULL
    );
    INSERT INTO schema_version (version, applied_unix_ms) VALUES (1, 0);";

fn v1_database_migrates(f: &Fixture) {
    let id = match f.kind() {
        BackendKind::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        _ => "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    };
    f.raw_execute(&V1_DDL.replace("{id}", id));
    // A run of the old build, interrupted after identifying the module.
    f.raw_execute(&format!(
        "INSERT INTO runs (kind, started_unix_ms, station, operator, port, imei, outcome) \
         VALUES ('provision', {T0}, 'A', 'alice', '/dev/ttyUSB0', '{IMEI}', 'running')"
    ));
    assert!(f.raw_columns("module_locks").is_empty());

    let l = f.open();
    assert_eq!(
        f.raw_columns("module_locks"),
        ["imei", "run", "station", "locked_unix_ms"]
    );
    let versions: Vec<_> = f
        .raw_dump()
        .into_iter()
        .filter(|(t, c, v)| t == "schema_version" && c == "version" && v.is_some())
        .map(|(_, _, v)| v.unwrap())
        .collect();
    assert_eq!(versions, ["1", "2"]);
    assert_eq!(SCHEMA_VERSION, 2);
    // The old run is still there, and locks like a new one; a new run is kept off the module.
    let runs = l.show(IMEI).unwrap();
    assert_eq!(runs.len(), 1);
    let old = RunId(runs[0].id);
    assert_eq!(
        l.lock_module(IMEI, "A", old, T0 + 1, false).unwrap(),
        ModuleLock::Granted
    );
    let new = l.begin_run(&start("B", T0 + 2)).unwrap();
    assert!(new > old);
    assert_eq!(
        l.lock_module(IMEI, "B", new, T0 + 3, false).unwrap(),
        held_by(old, "A", T0 + 1)
    );
    l.finish_run(old, &refused_end()).unwrap();
    assert_eq!(
        l.lock_module(IMEI, "B", new, T0 + 4, false).unwrap(),
        ModuleLock::Granted
    );
    // Opening again migrates nothing more.
    drop(l);
    f.open();
    assert_eq!(
        f.raw_dump()
            .iter()
            .filter(|(t, c, v)| t == "schema_version" && c == "version" && v.is_some())
            .count(),
        2
    );
}

fn newer_schema_is_refused(f: &Fixture) {
    full_run(&f.open(), IMEI, "A", T0);
    f.raw_execute("INSERT INTO schema_version (version, applied_unix_ms) VALUES (99, 0)");
    match Ledger::open(&f.spec) {
        Err(LedgerError::NewerSchema {
            found,
            known,
            location,
        }) => {
            assert_eq!((found, known), (99, SCHEMA_VERSION));
            assert!(f.spec.contains(&location) || location.contains("127.0.0.1"));
        }
        other => panic!("want NewerSchema, got {other:?}"),
    }
    let e = Ledger::open(&f.spec).unwrap_err().to_string();
    assert!(
        e.contains("schema version 99") && e.contains("newer sealcell"),
        "{e}"
    );
    // Left untouched.
    f.raw_execute("DELETE FROM schema_version WHERE version = 99");
    assert_eq!(f.open().show(IMEI).unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Exports

/// A fixed ledger: a success, a failure with a message that needs CSV quoting, a refusal, an
/// interrupted run, a fota, and a run that ended before the module was identified.
fn golden_scenario(l: &Ledger) {
    full_run(l, IMEI, "line1-a", T0);

    let r = l.begin_run(&start("line1-b", T0 + 10_000)).unwrap();
    l.identify(r, &facts("490154203237526", false)).unwrap();
    let mut e = end(
        T0 + 12_000,
        Outcome::Failed,
        Some("AT+USECMNG=0,1,\"Device\" answered \"+CME ERROR: 4\"\nretry: re-run the plan"),
    );
    e.credentials.truncate(2);
    e.credentials[1].action = "failed".into();
    e.credentials[1].name = "Dev:ice;1%".into();
    e.profiles.clear();
    l.finish_run(r, &e).unwrap();

    let r = l.begin_run(&start("line1-b", T0 + 20_000)).unwrap();
    l.identify(r, &facts("490154203237534", true)).unwrap();
    l.finish_run(
        r,
        &RunEnd {
            ended_unix_ms: T0 + 20_100,
            outcome: Outcome::Refused,
            error: Some("module 490154203237534 is not in the allowlist".into()),
            sealed_after: None,
            credentials: vec![],
            profiles: vec![],
            transcript_sha256: None,
            detail: None,
        },
    )
    .unwrap();

    let r = l.begin_run(&start("line1-a", T0 + 30_000)).unwrap();
    l.identify(r, &facts("490154203237542", false)).unwrap();

    let mut fota = start("line1-a", T0 + 40_000);
    fota.kind = RunKind::Fota;
    fota.plan_path = None;
    fota.plan_sha256 = None;
    fota.port = "tcp:127.0.0.1:5555".into();
    let r = l.begin_run(&fota).unwrap();
    l.identify(r, &facts(IMEI, true)).unwrap();
    l.finish_run(
        r,
        &RunEnd {
            ended_unix_ms: T0 + 45_000,
            outcome: Outcome::Succeeded,
            error: None,
            sealed_after: Some(true),
            credentials: vec![],
            profiles: vec![],
            transcript_sha256: Some("cd".repeat(32)),
            detail: Some("17.01,A01.00".into()),
        },
    )
    .unwrap();

    let r = l.begin_run(&start("line1-b", T0 + 50_000)).unwrap();
    l.finish_run(
        r,
        &RunEnd {
            ended_unix_ms: T0 + 50_001,
            outcome: Outcome::Failed,
            error: Some("no answer on /dev/ttyUSB0".into()),
            sealed_after: None,
            credentials: vec![],
            profiles: vec![],
            transcript_sha256: None,
            detail: None,
        },
    )
    .unwrap();
}

fn golden(name: &str, got: &[u8]) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("SEALCELL_BLESS").is_some() {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (SEALCELL_BLESS=1 writes it)", path.display()));
    assert!(
        got == want.as_slice(),
        "{} differs (SEALCELL_BLESS=1 rewrites it):\n--- got\n{}\n--- want\n{}",
        path.display(),
        String::from_utf8_lossy(got),
        String::from_utf8_lossy(&want)
    );
}

fn exports_match_golden_files(f: &Fixture) {
    let l = f.open();
    golden_scenario(&l);
    let mut csv = Vec::new();
    l.export_csv(&mut csv).unwrap();
    golden("ledger.csv", &csv);
    let mut json = Vec::new();
    l.export_json(&mut json).unwrap();
    golden("ledger.json", &json);
    let mut show = Vec::new();
    sealcell_ledger::write_json(&l.show(IMEI).unwrap(), &mut show).unwrap();
    golden("show.json", &show);

    // The JSON reads back into the same records, and the CSV splits into the same rows.
    let back: Vec<sealcell_ledger::RunRecord> = serde_json_from(&json);
    assert_eq!(back, l.list().unwrap());
    let text = String::from_utf8(csv).unwrap();
    assert!(text.starts_with(&sealcell_ledger::CSV_HEADER.join(",")));
    assert!(
        text.contains("\"AT+USECMNG=0,1,\"\"Device\"\" answered"),
        "{text}"
    );
    assert!(text.contains("CC:Dev%3Aice%3B1%25:"), "{text}");
}

fn serde_json_from(bytes: &[u8]) -> Vec<sealcell_ledger::RunRecord> {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("JSON export: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Secrets

/// Passed only in the PostgreSQL URL (trust authentication ignores it): must appear in no
/// column, no location, no error, no `Debug`.
const URL_PASSWORD: &str = "Hunter2-url-password-31337";

fn no_secret_in_any_column(f: &Fixture) {
    let spec = match f.kind() {
        BackendKind::Sqlite => f.spec.clone(),
        _ => f
            .spec
            .replacen("sealcell@", &format!("sealcell:{URL_PASSWORD}@"), 1),
    };
    let l = Ledger::open(&spec).unwrap();
    golden_scenario(&l);
    let claimed = l.begin_run(&start("line1-b", T0 + 60_000)).unwrap();
    l.claim_seal("490154203237559", Some(PLAN_SHA), "line1-b", claimed, T0)
        .unwrap();
    l.lock_module("490154203237559", "line1-b", claimed, T0, false)
        .unwrap();

    let mut secrets = sealcell_testkit::plans::secrets();
    secrets.push(URL_PASSWORD.into());
    let no_secret = |what: &str, text: &str| {
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "{what} holds a secret ({s}): {text}"
            );
        }
    };

    let dump = f.raw_dump();
    for (t, c, v) in &dump {
        if let Some(v) = v {
            no_secret(&format!("{t}.{c}"), v);
        }
    }
    // Every column is one reviewed here: a new column must be added to this list on purpose.
    let mut columns: Vec<String> = dump
        .iter()
        .filter(|(t, _, _)| !t.starts_with("sqlite_"))
        .map(|(t, c, _)| format!("{t}.{c}"))
        .collect();
    columns.sort();
    columns.dedup();
    let reviewed = [
        "module_locks.imei",
        "module_locks.locked_unix_ms",
        "module_locks.run",
        "module_locks.station",
        "runs.credentials",
        "runs.detail",
        "runs.ended_unix_ms",
        "runs.error",
        "runs.firmware",
        "runs.iccid",
        "runs.id",
        "runs.imei",
        "runs.kind",
        "runs.model",
        "runs.operator",
        "runs.outcome",
        "runs.plan_path",
        "runs.plan_sha256",
        "runs.port",
        "runs.profiles",
        "runs.sealed_after",
        "runs.sealed_before",
        "runs.started_unix_ms",
        "runs.station",
        "runs.transcript_sha256",
        "schema_version.applied_unix_ms",
        "schema_version.version",
        "seals.claimed_unix_ms",
        "seals.confirmed",
        "seals.imei",
        "seals.plan_sha256",
        "seals.run",
        "seals.station",
    ];
    assert_eq!(columns, reviewed);

    no_secret("location()", l.location());
    no_secret("Debug", &format!("{l:?}"));
    if f.kind() == BackendKind::Postgres {
        assert!(
            l.location().contains("sealcell:***@127.0.0.1"),
            "{}",
            l.location()
        );
        // An error that carries the URL's parts: the server names the missing database, here
        // spelled like the password; and a refused connection.
        let Keep::Postgres(pg) = &f._keep else {
            unreachable!()
        };
        let bad_db = format!(
            "postgres://sealcell:{URL_PASSWORD}@127.0.0.1:{}/{URL_PASSWORD}",
            pg.port()
        );
        let refused =
            format!("postgresql://sealcell:{URL_PASSWORD}@127.0.0.1:1/ledger?connect_timeout=2");
        let query = format!(
            "postgres://127.0.0.1:{}/ledger?user=sealcell&password={URL_PASSWORD}",
            pg.port()
        );
        for spec in [bad_db, refused] {
            let e = Ledger::open(&spec).unwrap_err();
            assert!(matches!(e, LedgerError::Open { .. }), "{e:?}");
            no_secret("error", &e.to_string());
            no_secret("error Debug", &format!("{e:?}"));
        }
        let q = Ledger::open(&query).unwrap();
        no_secret("location()", q.location());
        assert!(q.location().ends_with("password=***"), "{}", q.location());
    }
}

// ---------------------------------------------------------------------------------------------
// Sharing

fn shared_between_threads(f: &Fixture) {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    let l = f.open();
    assert_send_sync(&l);
    std::thread::scope(|s| {
        for port in 0..4 {
            let l = &l;
            s.spawn(move || {
                full_run(l, &format!("49015420323{port:04}"), "line1-a", T0 + port);
            });
        }
    });
    assert_eq!(l.list().unwrap().len(), 4);
}

// ---------------------------------------------------------------------------------------------
// One back end only

#[test]
fn sqlite_file_is_private_and_its_directory_must_exist() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let l = Ledger::open(path.to_str().unwrap()).unwrap();
    assert_eq!(l.location(), path.to_str().unwrap());
    assert_eq!(l.backend(), BackendKind::Sqlite);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let missing = dir.path().join("no/such/dir/l.db");
    let e = Ledger::open(missing.to_str().unwrap()).unwrap_err();
    assert!(matches!(e, LedgerError::Open { .. }), "{e:?}");
    assert!(e.to_string().contains("does not exist"), "{e}");

    let not_db = dir.path().join("notes.txt");
    std::fs::write(
        &not_db,
        "this is not a database, just some text that is long enough",
    )
    .unwrap();
    let e = Ledger::open(not_db.to_str().unwrap()).unwrap_err();
    assert!(matches!(e, LedgerError::Open { .. }), "{e:?}");
}

#[test]
fn sqlite_several_processes_share_one_file() {
    // Two connections writing at once wait for each other (busy timeout) instead of failing.
    let f = Fixture::sqlite();
    let (a, b) = (f.open(), f.open());
    std::thread::scope(|s| {
        for (i, l) in [a, b].into_iter().enumerate() {
            s.spawn(move || {
                for n in 0..25 {
                    full_run(&l, &format!("4901542032{i}{n:04}"), "line1-a", T0 + n);
                }
            });
        }
    });
    assert_eq!(f.open().list().unwrap().len(), 50);
}

/// The end of a run that stopped before sealing.
fn refused_end() -> RunEnd {
    RunEnd {
        ended_unix_ms: T0 + 1,
        outcome: Outcome::Refused,
        error: Some("stopped before the seal".into()),
        sealed_after: Some(false),
        credentials: Vec::new(),
        profiles: Vec::new(),
        transcript_sha256: None,
        detail: None,
    }
}

/// Several stations opening one new ledger file at the same instant (the first run of a day):
/// switching a fresh file to WAL answers BUSY to all but one, and each must wait, not fail.
#[test]
fn sqlite_a_new_file_opened_by_many_at_once() {
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fresh.db");
        let start = std::sync::Arc::new(std::sync::Barrier::new(8));
        let opens: Vec<_> = (0..8)
            .map(|_| {
                let (path, start) = (path.clone(), std::sync::Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    Ledger::open(path.to_str().unwrap()).map(|_| ())
                })
            })
            .collect();
        for o in opens {
            o.join()
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
    }
}
