//! The provisioning ledger: a record of every `sealcell provision` and `sealcell fota` run, the
//! module locks that keep two stations from provisioning one module at the same time, and the
//! seal claims that keep two stations from sealing one module.
//!
//! One schema with numbered migrations, two back ends behind one synchronous API:
//!
//! - **SQLite** (the default): one file, e.g. `sealcell-ledger.db`, created mode 0600, in WAL
//!   mode with a 10 s busy timeout so several processes on one station can share it.
//! - **PostgreSQL**: a `postgres://` or `postgresql://` URL; several stations share one
//!   database. The connection is plain TCP: **TLS to the database is not supported yet** (run it
//!   on a trusted network, or through a tunnel).
//!
//! | Need | Use |
//! |---|---|
//! | Open (and migrate) a ledger from `--ledger` / `$SEALCELL_LEDGER` | [`Ledger::open`] |
//! | Show which ledger, without its password | [`Ledger::location`] |
//! | Record a run: start, module identity, end | [`Ledger::begin_run`], [`Ledger::identify`], [`Ledger::finish_run`] |
//! | Keep every other run off this module until this run finishes (after identifying it, before changing it) | [`Ledger::lock_module`] (released by [`Ledger::finish_run`]) |
//! | Ask before sealing whether another station or plan sealed this module | [`Ledger::seal_record`] |
//! | Decide a race between stations, just before the seal command | [`Ledger::claim_seal`] |
//! | After the seal command: it sealed / it failed without sealing | [`Ledger::confirm_seal`] / [`Ledger::release_seal`] |
//! | `sealcell ledger list` / `show IMEI` | [`Ledger::list`] / [`Ledger::show`] |
//! | `--csv`, `export --csv FILE` / `--json` | [`Ledger::export_csv`], [`write_csv`] / [`Ledger::export_json`], [`write_json`] |
//!
//! # What is stored
//!
//! Table `runs`: one row per run, with the fields of [`RunRecord`]; `credentials` and
//! `profiles` are JSON arrays (the serde form of [`CredentialEntry`] and [`ProfileEntry`]) in
//! text columns, so a record is one row written by one statement. Table `seals`: at most one
//! claim per IMEI (its primary key), see [`Ledger::claim_seal`]. Table `module_locks`: at most
//! one run provisioning an IMEI (its primary key), see [`Ledger::lock_module`]. Table
//! `schema_version`: one row per applied migration.
//!
//! **No column ever holds a secret**: the types carry names, hashes, actions and outcomes, never
//! key material, passwords or PINs; a PostgreSQL password in the URL is used to connect only and
//! is redacted (`***`) from [`Ledger::location`], `Debug` and every [`LedgerError`].
//!
//! # The seal race
//!
//! Before sending the seal command a run calls [`Ledger::claim_seal`]. The claim is an insert
//! into `seals` in a transaction (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: `INSERT ... ON CONFLICT
//! DO NOTHING` against the primary key), so of two stations racing on one module exactly one is
//! [`SealClaim::Granted`]. An existing claim passes to the new run only when the same station
//! made it and it is not confirmed (a re-run after a crash between claim and seal); otherwise
//! the answer is [`SealClaim::HeldBy`] and the run must not seal. (Two runs of the *same* station
//! on one module at once are not told apart: a module is on one port.)
//!
//! # Example
//!
//! ```
//! use sealcell_ledger::{Ledger, ModuleFacts, Outcome, RunEnd, RunKind, RunStart, SealClaim};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("sealcell-ledger.db");
//! let ledger = Ledger::open(path.to_str().ok_or("path")?)?;
//!
//! let run = ledger.begin_run(&RunStart {
//!     kind: RunKind::Provision,
//!     started_unix_ms: 1_700_000_000_000,
//!     station: "line1-a".into(),
//!     operator: "alice".into(),
//!     port: "/dev/ttyUSB0".into(),
//!     plan_path: Some("plan.toml".into()),
//!     plan_sha256: Some("ab".repeat(32)),
//! })?;
//! ledger.identify(run, &ModuleFacts {
//!     imei: "490154203237518".into(),
//!     iccid: "8988211000000000001".into(),
//!     model: "TOBY-L210".into(),
//!     firmware: "17.00".into(),
//!     sealed_before: false,
//! })?;
//! let plan = "ab".repeat(32);
//! let claim = ledger.claim_seal("490154203237518", Some(&plan), "line1-a", run, 1_700_000_001_000)?;
//! assert_eq!(claim, SealClaim::Granted);
//! // ... the module answers OK to the seal command:
//! ledger.confirm_seal("490154203237518", run)?;
//! ledger.finish_run(run, &RunEnd {
//!     ended_unix_ms: 1_700_000_002_000,
//!     outcome: Outcome::Succeeded,
//!     error: None,
//!     sealed_after: Some(true),
//!     credentials: vec![],
//!     profiles: vec![],
//!     transcript_sha256: None,
//!     detail: None,
//! })?;
//!
//! let runs = ledger.show("490154203237518")?;
//! assert_eq!(runs.len(), 1);
//! assert_eq!(runs[0].outcome, Outcome::Succeeded);
//! assert!(ledger.seal_record("490154203237518")?.is_some_and(|s| s.confirmed));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod backend;
mod error;
mod export;
mod model;
mod pg;
mod schema;
mod sqlite;

use std::io::Write;
use std::sync::{Mutex, MutexGuard};

pub use error::LedgerError;
pub use export::{CSV_HEADER, write_csv, write_json};
pub use model::{
    CredentialEntry, ModuleFacts, ModuleLock, Outcome, ProfileEntry, RunEnd, RunId, RunKind,
    RunRecord, RunStart, SealClaim, SealRecord,
};

use backend::{Backend, Claim, LockRequest};
use error::Redactor;

/// The newest schema version this build knows (and migrates to).
pub const SCHEMA_VERSION: i64 = schema::SCHEMA_VERSION;

/// How long an unconfirmed seal claim whose run still shows `running` is held before another run
/// of the same station may take it: the seal command answers within a minute, so a claim this
/// old belongs to a station that died between claim and seal.
pub const SEAL_LEASE_MS: i64 = 2 * 60 * 1000;

/// How long a module lock whose run still shows `running` keeps other runs off the module: a
/// provisioning run takes minutes, so a lock this old belongs to a station that died mid-run.
/// A run that may take longer renews its lock by calling [`Ledger::lock_module`] again.
pub const MODULE_LEASE_MS: i64 = 15 * 60 * 1000;

/// Which database holds a [`Ledger`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendKind {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

/// An open, migrated ledger. One connection; safe to share between threads (calls are
/// serialized). For parallel writers, several processes or several `Ledger`s may open the same
/// ledger.
pub struct Ledger {
    backend: Mutex<Box<dyn Backend>>,
    kind: BackendKind,
    redactor: Redactor,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("backend", &self.kind)
            .field("location", &self.redactor.location)
            .finish_non_exhaustive()
    }
}

impl Ledger {
    /// Opens the ledger `spec` and brings its schema up to [`SCHEMA_VERSION`] (in one
    /// transaction; a database already there is left as it is).
    ///
    /// `postgres://...` or `postgresql://...` (the libpq URL form; `connect_timeout` defaults to
    /// 10 s) is PostgreSQL; anything else is the path of a SQLite file, created (mode 0600) when
    /// missing; its directory must exist.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Open`], [`LedgerError::Migration`], or [`LedgerError::NewerSchema`] when a
    /// newer sealcell migrated the database.
    pub fn open(spec: &str) -> Result<Ledger, LedgerError> {
        let redactor = Redactor::new(spec);
        let (backend, kind): (Box<dyn Backend>, _) =
            if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
                (
                    Box::new(pg::Postgres::open(spec, redactor.clone())?),
                    BackendKind::Postgres,
                )
            } else {
                (
                    Box::new(sqlite::Sqlite::open(spec, redactor.clone())?),
                    BackendKind::Sqlite,
                )
            };
        Ok(Ledger {
            backend: Mutex::new(backend),
            kind,
            redactor,
        })
    }

    /// The ledger for messages: the SQLite path, or the URL with any password replaced by `***`.
    pub fn location(&self) -> &str {
        &self.redactor.location
    }

    /// Which database this is.
    pub fn backend(&self) -> BackendKind {
        self.kind
    }

    fn lock(&self) -> MutexGuard<'_, Box<dyn Backend>> {
        // A panic while holding the lock left no transaction open (each is rolled back on
        // drop), so the connection is still usable.
        self.backend
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records the start of a run (outcome [`Outcome::Running`] until [`Ledger::finish_run`]).
    ///
    /// # Errors
    ///
    /// [`LedgerError::Database`].
    pub fn begin_run(&self, start: &RunStart) -> Result<RunId, LedgerError> {
        self.lock().begin_run(start)
    }

    /// Adds what the host read from the module to a running run.
    ///
    /// # Errors
    ///
    /// [`LedgerError::UnknownRun`], [`LedgerError::AlreadyFinished`], [`LedgerError::Database`].
    pub fn identify(&self, run: RunId, facts: &ModuleFacts) -> Result<(), LedgerError> {
        let mut b = self.lock();
        if b.identify(run, facts)? {
            Ok(())
        } else {
            Err(not_running(&mut **b, run))
        }
    }

    /// Records how a run ended, and releases the run's module lock ([`Ledger::lock_module`]) in
    /// the same transaction. A finished record is never changed again.
    ///
    /// # Errors
    ///
    /// [`LedgerError::NotAnEnd`] for [`Outcome::Running`], [`LedgerError::UnknownRun`],
    /// [`LedgerError::AlreadyFinished`], [`LedgerError::Database`].
    pub fn finish_run(&self, run: RunId, end: &RunEnd) -> Result<(), LedgerError> {
        if end.outcome == Outcome::Running {
            return Err(LedgerError::NotAnEnd);
        }
        let json = |e: serde_json::Error| self.redactor.database(format_args!("encoding: {e}"));
        let credentials = serde_json::to_string(&end.credentials).map_err(json)?;
        let profiles = serde_json::to_string(&end.profiles).map_err(json)?;
        let mut b = self.lock();
        if b.finish_run(run, end, &credentials, &profiles)? {
            Ok(())
        } else {
            Err(not_running(&mut **b, run))
        }
    }

    /// Locks module `imei` for `run` at `station`, for the whole run: call it once the module is
    /// identified, before changing anything on it; [`Ledger::finish_run`] releases it. Atomic:
    /// of several runs racing on one module exactly one is [`ModuleLock::Granted`]. The seal
    /// claim alone is not enough: it is taken just before sealing, so a second station starting
    /// after the first has sealed would otherwise provision the module at the same time,
    /// interleaving profile writes.
    ///
    /// No lock yet: granted. The same run locking again: granted, and its lease renewed (from
    /// `now_unix_ms`). Another run's lock is taken over (moved to this run: granted) when
    ///
    /// - its run is no longer `running` (a safety net: [`Ledger::finish_run`] already deletes
    ///   the lock of the run it finishes), or
    /// - it is older than [`MODULE_LEASE_MS`] (its station died mid-run), or
    /// - `take_over` is set and the lock is this same `station`'s (`sealcell provision --force`:
    ///   the operator at this station knows that run is dead).
    ///
    /// Otherwise [`ModuleLock::HeldBy`] that run, and this run must not touch the module: a
    /// live run of another station is never taken over, not even with `take_over` (an operator
    /// cannot know another station's run is dead), and neither is another live run of this
    /// station without it (two ports or terminals on one module).
    ///
    /// # Errors
    ///
    /// [`LedgerError::UnknownRun`], [`LedgerError::AlreadyFinished`] (a finished run never
    /// holds a lock), [`LedgerError::Database`].
    pub fn lock_module(
        &self,
        imei: &str,
        station: &str,
        run: RunId,
        now_unix_ms: i64,
        take_over: bool,
    ) -> Result<ModuleLock, LedgerError> {
        let mut b = self.lock();
        match b.lock_module(&LockRequest {
            imei,
            station,
            run,
            now_unix_ms,
            take_over,
        })? {
            Some(answer) => Ok(answer),
            None => Err(not_running(&mut **b, run)),
        }
    }

    /// What the ledger knows of this module's seal: `None` when no run claimed it.
    ///
    /// A provisioning run asks this before changing the module: a confirmed seal under another
    /// plan (`plan_sha256`) is a refusal unless `--force`.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Database`].
    pub fn seal_record(&self, imei: &str) -> Result<Option<SealRecord>, LedgerError> {
        self.lock().seal_record(imei)
    }

    /// Claims the right to seal module `imei` for `run` at `station`, just before sending the
    /// seal command. Atomic: of several stations racing on one module exactly one is
    /// [`SealClaim::Granted`].
    ///
    /// No claim yet: granted. A claim by the same station that was never confirmed is moved to
    /// this run (granted) when its run is over (it failed before sealing) or its claim is older
    /// than [`SEAL_LEASE_MS`] (its station died between claim and seal): a re-run converges.
    /// While that run still shows `running` and its lease holds, even the same station is
    /// refused: two runs at once on one module (two ports of one module, two terminals) must
    /// not both seal it. Any other claim: [`SealClaim::HeldBy`] it, and the run must not seal.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Database`] (also when `run` is not a run of this ledger).
    pub fn claim_seal(
        &self,
        imei: &str,
        plan_sha256: Option<&str>,
        station: &str,
        run: RunId,
        now_unix_ms: i64,
    ) -> Result<SealClaim, LedgerError> {
        self.claim(imei, plan_sha256, station, run, now_unix_ms, false)
    }

    /// [`Ledger::claim_seal`], but an unconfirmed claim of this same station is taken over even
    /// while its run shows `running` and its lease holds (`sealcell provision --force`: the
    /// operator knows that run is dead). Another station's claim, or a confirmed one, is never
    /// taken over.
    ///
    /// # Errors
    ///
    /// As [`Ledger::claim_seal`].
    pub fn take_over_seal(
        &self,
        imei: &str,
        plan_sha256: Option<&str>,
        station: &str,
        run: RunId,
        now_unix_ms: i64,
    ) -> Result<SealClaim, LedgerError> {
        self.claim(imei, plan_sha256, station, run, now_unix_ms, true)
    }

    fn claim(
        &self,
        imei: &str,
        plan_sha256: Option<&str>,
        station: &str,
        run: RunId,
        now_unix_ms: i64,
        take_over: bool,
    ) -> Result<SealClaim, LedgerError> {
        self.lock().claim_seal(&Claim {
            imei,
            plan_sha256,
            station,
            run,
            now_unix_ms,
            take_over,
        })
    }

    /// The module answered OK to the seal command: marks `run`'s claim confirmed (for good: it
    /// is never re-granted or released). Confirming twice is harmless.
    ///
    /// # Errors
    ///
    /// [`LedgerError::SealNotHeld`] when `run` holds no claim on the module,
    /// [`LedgerError::Database`].
    pub fn confirm_seal(&self, imei: &str, run: RunId) -> Result<(), LedgerError> {
        if self.lock().confirm_seal(imei, run)? {
            Ok(())
        } else {
            Err(LedgerError::SealNotHeld {
                imei: imei.to_string(),
                run,
            })
        }
    }

    /// The seal command failed without sealing: deletes `run`'s claim if it is unconfirmed.
    /// Returns whether a claim was deleted (`false`: none, another run's, or confirmed).
    ///
    /// # Errors
    ///
    /// [`LedgerError::Database`].
    pub fn release_seal(&self, imei: &str, run: RunId) -> Result<bool, LedgerError> {
        self.lock().release_seal(imei, run)
    }

    /// Every run, newest first (by start time, then id).
    ///
    /// # Errors
    ///
    /// [`LedgerError::Database`], [`LedgerError::Corrupt`].
    pub fn list(&self) -> Result<Vec<RunRecord>, LedgerError> {
        self.records(None)
    }

    /// Module `imei`'s runs, oldest first; runs that ended before the module was identified
    /// are not among them (they have no IMEI).
    ///
    /// # Errors
    ///
    /// [`LedgerError::Database`], [`LedgerError::Corrupt`].
    pub fn show(&self, imei: &str) -> Result<Vec<RunRecord>, LedgerError> {
        self.records(Some(imei))
    }

    fn records(&self, imei: Option<&str>) -> Result<Vec<RunRecord>, LedgerError> {
        let rows = self.lock().runs(imei)?;
        rows.into_iter().map(|r| r.decode(&self.redactor)).collect()
    }

    /// Writes [`Ledger::list`] as CSV ([`write_csv`] describes the format).
    ///
    /// # Errors
    ///
    /// As [`Ledger::list`], and [`LedgerError::Export`].
    pub fn export_csv(&self, out: &mut impl Write) -> Result<(), LedgerError> {
        write_csv(&self.list()?, out)
    }

    /// Writes [`Ledger::list`] as JSON ([`write_json`]).
    ///
    /// # Errors
    ///
    /// As [`Ledger::list`], and [`LedgerError::Export`].
    pub fn export_json(&self, out: &mut impl Write) -> Result<(), LedgerError> {
        write_json(&self.list()?, out)
    }
}

/// Why an update of a running run matched no row.
fn not_running(b: &mut dyn Backend, run: RunId) -> LedgerError {
    match b.run_exists(run) {
        Ok(true) => LedgerError::AlreadyFinished(run),
        Ok(false) => LedgerError::UnknownRun(run),
        Err(e) => e,
    }
}
