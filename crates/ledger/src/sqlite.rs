//! The SQLite back end: one file, WAL mode, a busy timeout so several local processes share it.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::backend::{Backend, Claim, LockRequest, RunRow, regrantable, unix_ms_now};
use crate::error::{LedgerError, Redactor};
use crate::model::{ModuleFacts, ModuleLock, RunEnd, RunId, RunStart, SealClaim, SealRecord};
use crate::schema;

/// How long a statement waits for another process's write lock before failing.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Sqlite {
    conn: Connection,
    redactor: Redactor,
}

impl Sqlite {
    /// Opens (creating, mode 0600) the ledger file at `path` and migrates it.
    pub(crate) fn open(path: &str, redactor: Redactor) -> Result<Sqlite, LedgerError> {
        let p = Path::new(path);
        let parent = p.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = parent
            && !dir.is_dir()
        {
            return Err(redactor.open(format_args!(
                "directory {} does not exist; create it, or give another --ledger path",
                dir.display()
            )));
        }
        // Created here, not by SQLite, so that it is 0600 from the start; SQLite gives the
        // -wal and -shm files the same mode.
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(p)
            .map_err(|e| redactor.open(e))?;
        let conn = Connection::open(p).map_err(|e| redactor.open(e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| redactor.open(e))?;
        conn.set_prepared_statement_cache_capacity(32);
        // Not a database: fails here. Switching a new file to WAL takes an exclusive lock and
        // SQLite answers BUSY at once (no busy handler runs for it) when another process is
        // opening the same new file: retried up to the busy timeout.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
                Ok(_) => break,
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if matches!(
                        f.code,
                        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                    ) && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e @ rusqlite::Error::SqliteFailure(f, _))
                    if matches!(f.code, rusqlite::ErrorCode::NotADatabase) =>
                {
                    return Err(redactor.open(format_args!("{e} (is it a SQLite database?)")));
                }
                Err(e) => return Err(redactor.open(e)),
            }
        }
        conn.execute_batch("PRAGMA foreign_keys = ON")
            .map_err(|e| redactor.open(e))?;
        let mut s = Sqlite { conn, redactor };
        s.migrate()?;
        Ok(s)
    }

    fn migrate(&mut self) -> Result<(), LedgerError> {
        let r = self.redactor.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| r.open(e))?;
        tx.execute_batch(schema::CREATE_SCHEMA_VERSION)
            .map_err(|e| r.migration(0, e))?;
        let found: i64 = tx
            .query_row(schema::CURRENT_VERSION, [], |row| row.get(0))
            .map_err(|e| r.migration(0, e))?;
        if found > schema::SCHEMA_VERSION {
            return Err(LedgerError::NewerSchema {
                location: r.location.clone(),
                found,
                known: schema::SCHEMA_VERSION,
            });
        }
        for (version, ddl) in schema::MIGRATIONS.iter().filter(|(v, _)| *v > found) {
            tx.execute_batch(&schema::with_id(ddl, schema::ID_SQLITE))
                .map_err(|e| r.migration(*version, e))?;
            tx.execute(
                &schema::for_sqlite(schema::RECORD_VERSION),
                params![version, unix_ms_now()],
            )
            .map_err(|e| r.migration(*version, e))?;
        }
        tx.commit()
            .map_err(|e| r.migration(schema::SCHEMA_VERSION, e))
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction (the write lock taken up front, so a busy
    /// database waits for [`BUSY_TIMEOUT`] instead of failing on a lock upgrade).
    fn write<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, LedgerError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.redactor.database(e))?;
        let v = f(&tx).map_err(|e| self.redactor.database(e))?;
        tx.commit().map_err(|e| self.redactor.database(e))?;
        Ok(v)
    }
}

fn seal_from_row(r: &Row<'_>) -> rusqlite::Result<SealRecord> {
    Ok(SealRecord {
        imei: r.get(0)?,
        plan_sha256: r.get(1)?,
        station: r.get(2)?,
        run: RunId(r.get(3)?),
        claimed_unix_ms: r.get(4)?,
        confirmed: r.get(5)?,
    })
}

/// A `module_locks` row as [`ModuleLock::HeldBy`].
fn lock_from_row(r: &Row<'_>) -> rusqlite::Result<ModuleLock> {
    Ok(ModuleLock::HeldBy {
        run: RunId(r.get(0)?),
        station: r.get(1)?,
        locked_unix_ms: r.get(2)?,
    })
}

fn run_from_row(r: &Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        started_unix_ms: r.get(2)?,
        ended_unix_ms: r.get(3)?,
        station: r.get(4)?,
        operator: r.get(5)?,
        port: r.get(6)?,
        imei: r.get(7)?,
        iccid: r.get(8)?,
        model: r.get(9)?,
        firmware: r.get(10)?,
        plan_path: r.get(11)?,
        plan_sha256: r.get(12)?,
        sealed_before: r.get(13)?,
        sealed_after: r.get(14)?,
        credentials: r.get(15)?,
        profiles: r.get(16)?,
        outcome: r.get(17)?,
        error: r.get(18)?,
        transcript_sha256: r.get(19)?,
        detail: r.get(20)?,
    })
}

impl Backend for Sqlite {
    fn begin_run(&mut self, s: &RunStart) -> Result<RunId, LedgerError> {
        self.write(|tx| {
            tx.prepare_cached(&schema::for_sqlite(schema::INSERT_RUN))?
                .query_row(
                    params![
                        s.kind.as_str(),
                        s.started_unix_ms,
                        s.station,
                        s.operator,
                        s.port,
                        s.plan_path,
                        s.plan_sha256
                    ],
                    |r| r.get(0),
                )
                .map(RunId)
        })
    }

    fn identify(&mut self, run: RunId, f: &ModuleFacts) -> Result<bool, LedgerError> {
        self.write(|tx| {
            let n = tx
                .prepare_cached(&schema::for_sqlite(schema::IDENTIFY))?
                .execute(params![
                    run.0,
                    f.imei,
                    f.iccid,
                    f.model,
                    f.firmware,
                    f.sealed_before
                ])?;
            Ok(n == 1)
        })
    }

    fn finish_run(
        &mut self,
        run: RunId,
        e: &RunEnd,
        credentials: &str,
        profiles: &str,
    ) -> Result<bool, LedgerError> {
        self.write(|tx| {
            let n = tx
                .prepare_cached(&schema::for_sqlite(schema::FINISH))?
                .execute(params![
                    run.0,
                    e.ended_unix_ms,
                    e.outcome.as_str(),
                    e.error,
                    e.sealed_after,
                    credentials,
                    profiles,
                    e.transcript_sha256,
                    e.detail
                ])?;
            if n == 1 {
                // A finished run never holds a module lock.
                tx.prepare_cached(&schema::for_sqlite(schema::LOCK_RELEASE_RUN))?
                    .execute(params![run.0])?;
            }
            Ok(n == 1)
        })
    }

    fn run_exists(&mut self, run: RunId) -> Result<bool, LedgerError> {
        self.conn
            .prepare_cached(&schema::for_sqlite(schema::RUN_EXISTS))
            .and_then(|mut s| s.query_row(params![run.0], |r| r.get::<_, i64>(0)))
            .map(|n| n > 0)
            .map_err(|e| self.redactor.database(e))
    }

    fn runs(&mut self, imei: Option<&str>) -> Result<Vec<RunRow>, LedgerError> {
        let result = match imei {
            None => self
                .conn
                .prepare_cached(&schema::for_sqlite(schema::LIST))
                .and_then(|mut s| s.query_map([], run_from_row)?.collect()),
            Some(imei) => self
                .conn
                .prepare_cached(&schema::for_sqlite(schema::SHOW))
                .and_then(|mut s| s.query_map(params![imei], run_from_row)?.collect()),
        };
        result.map_err(|e| self.redactor.database(e))
    }

    fn seal_record(&mut self, imei: &str) -> Result<Option<SealRecord>, LedgerError> {
        self.conn
            .prepare_cached(&schema::for_sqlite(schema::SEAL_GET))
            .and_then(|mut s| s.query_row(params![imei], seal_from_row).optional())
            .map_err(|e| self.redactor.database(e))
    }

    fn claim_seal(&mut self, c: &Claim<'_>) -> Result<SealClaim, LedgerError> {
        // BEGIN IMMEDIATE: one writer at a time, so the read and the insert below see the same
        // database; a racing station waits for this transaction and then finds the claim.
        self.write(|tx| {
            let existing = tx
                .prepare_cached(&schema::for_sqlite(schema::SEAL_GET))?
                .query_row(params![c.imei], seal_from_row)
                .optional()?;
            match existing {
                None => {
                    tx.prepare_cached(&schema::for_sqlite(schema::SEAL_INSERT))?
                        .execute(params![
                            c.imei,
                            c.plan_sha256,
                            c.station,
                            c.run.0,
                            c.now_unix_ms
                        ])?;
                    Ok(SealClaim::Granted)
                }
                Some(held) if regrantable(&held, c.station) => {
                    let n = tx
                        .prepare_cached(&schema::for_sqlite(schema::SEAL_REGRANT))?
                        .execute(params![
                            c.imei,
                            c.plan_sha256,
                            c.run.0,
                            c.now_unix_ms,
                            c.station,
                            c.lease_cutoff(),
                            c.take_over
                        ])?;
                    Ok(if n == 1 {
                        SealClaim::Granted
                    } else {
                        SealClaim::HeldBy(held)
                    })
                }
                Some(held) => Ok(SealClaim::HeldBy(held)),
            }
        })
    }

    fn confirm_seal(&mut self, imei: &str, run: RunId) -> Result<bool, LedgerError> {
        self.write(|tx| {
            Ok(tx
                .prepare_cached(&schema::for_sqlite(schema::SEAL_CONFIRM))?
                .execute(params![imei, run.0])?
                == 1)
        })
    }

    fn release_seal(&mut self, imei: &str, run: RunId) -> Result<bool, LedgerError> {
        self.write(|tx| {
            Ok(tx
                .prepare_cached(&schema::for_sqlite(schema::SEAL_RELEASE))?
                .execute(params![imei, run.0])?
                == 1)
        })
    }

    fn lock_module(&mut self, l: &LockRequest<'_>) -> Result<Option<ModuleLock>, LedgerError> {
        // BEGIN IMMEDIATE, as for the seal claim: the reads and the write below see the same
        // database, and a racing station waits for this transaction, then finds the lock.
        self.write(|tx| {
            let running = tx
                .prepare_cached(&schema::for_sqlite(schema::RUN_RUNNING))?
                .query_row(params![l.run.0], |_| Ok(()))
                .optional()?;
            if running.is_none() {
                return Ok(None);
            }
            let held = tx
                .prepare_cached(&schema::for_sqlite(schema::LOCK_GET))?
                .query_row(params![l.imei], lock_from_row)
                .optional()?;
            let Some(held) = held else {
                tx.prepare_cached(&schema::for_sqlite(schema::LOCK_INSERT))?
                    .execute(params![l.imei, l.run.0, l.station, l.now_unix_ms])?;
                return Ok(Some(ModuleLock::Granted));
            };
            let n = tx
                .prepare_cached(&schema::for_sqlite(schema::LOCK_TAKE_OVER))?
                .execute(params![
                    l.imei,
                    l.run.0,
                    l.station,
                    l.now_unix_ms,
                    l.lease_cutoff(),
                    l.take_over
                ])?;
            Ok(Some(if n == 1 { ModuleLock::Granted } else { held }))
        })
    }
}
