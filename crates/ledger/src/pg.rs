//! The PostgreSQL back end: several stations share one database. Plain TCP (`NoTls`).

use std::str::FromStr;
use std::time::Duration;

use postgres::{Client, NoTls, Row, Statement};

use crate::backend::{Backend, Claim, LockRequest, RunRow, regrantable, unix_ms_now};
use crate::error::{LedgerError, Redactor};
use crate::model::{ModuleFacts, ModuleLock, RunEnd, RunId, RunStart, SealClaim, SealRecord};
use crate::schema;

/// How long connecting may take when the URL sets no `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Serializes migrations of one database between stations (`pg_advisory_xact_lock` key).
const MIGRATION_LOCK: i64 = 0x5EA1_CE11_1ED6_E200;
/// How often a seal claim or module lock is retried when the row it found was deleted under it.
const CLAIM_ATTEMPTS: usize = 3;

/// Every statement, prepared once per connection.
struct Statements {
    insert_run: Statement,
    identify: Statement,
    finish: Statement,
    run_exists: Statement,
    list: Statement,
    show: Statement,
    seal_get: Statement,
    seal_get_for_update: Statement,
    seal_insert: Statement,
    seal_regrant: Statement,
    seal_confirm: Statement,
    seal_release: Statement,
    run_running_for_share: Statement,
    lock_get_for_update: Statement,
    lock_insert: Statement,
    lock_take_over: Statement,
    lock_release_run: Statement,
}

/// One attempt of a [`Postgres::retried`] transaction.
enum Attempt<T> {
    Done(T),
    /// The row it found was deleted before it could lock it: try again in a new transaction.
    Retry,
}

pub(crate) struct Postgres {
    client: Client,
    st: Statements,
    redactor: Redactor,
}

/// The back end's message: a server error's code, message and detail; else the client's error
/// and its causes.
fn reason(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{} ({})", db.message(), db.code().code());
        if let Some(d) = db.detail() {
            s.push_str(": ");
            s.push_str(d);
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

impl Postgres {
    /// Connects to the `postgres://` URL `url` and migrates the database.
    pub(crate) fn open(url: &str, redactor: Redactor) -> Result<Postgres, LedgerError> {
        let mut config = postgres::Config::from_str(url).map_err(|e| redactor.open(reason(&e)))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let mut client = config.connect(NoTls).map_err(|e| {
            let mut m = reason(&e);
            if matches!(config.get_ssl_mode(), postgres::config::SslMode::Require) {
                m.push_str(
                    "; TLS to the database is not supported yet (use sslmode=prefer or disable)",
                );
            }
            redactor.open(m)
        })?;
        migrate(&mut client, &redactor)?;
        let st = prepare(&mut client).map_err(|e| redactor.open(reason(&e)))?;
        Ok(Postgres {
            client,
            st,
            redactor,
        })
    }

    fn db(&self, e: postgres::Error) -> LedgerError {
        self.redactor.database(reason(&e))
    }

    /// Runs `f` in a transaction (committed when it returns `Ok`) until it is
    /// [`Attempt::Done`], at most [`CLAIM_ATTEMPTS`] times; `what` on `imei` names it in the
    /// error when every attempt had to be retried.
    fn retried<T>(
        &mut self,
        what: &str,
        imei: &str,
        mut f: impl FnMut(
            &mut postgres::Transaction<'_>,
            &Statements,
        ) -> Result<Attempt<T>, postgres::Error>,
    ) -> Result<T, LedgerError> {
        for _ in 0..CLAIM_ATTEMPTS {
            let mut tx = self
                .client
                .transaction()
                .map_err(|e| self.redactor.database(reason(&e)))?;
            let answer = f(&mut tx, &self.st).and_then(|a| tx.commit().map(|()| a));
            match answer {
                Ok(Attempt::Done(a)) => return Ok(a),
                Ok(Attempt::Retry) => continue,
                Err(e) => return Err(self.redactor.database(reason(&e))),
            }
        }
        Err(self.redactor.database(format_args!(
            "{what} on {imei} kept changing under {CLAIM_ATTEMPTS} attempts; retry"
        )))
    }
}

/// A `module_locks` row as [`ModuleLock::HeldBy`].
fn lock_from_row(r: &Row) -> Result<ModuleLock, postgres::Error> {
    Ok(ModuleLock::HeldBy {
        run: RunId(r.try_get(0)?),
        station: r.try_get(1)?,
        locked_unix_ms: r.try_get(2)?,
    })
}

fn migrate(client: &mut Client, r: &Redactor) -> Result<(), LedgerError> {
    let mut tx = client.transaction().map_err(|e| r.open(reason(&e)))?;
    // Two stations opening a fresh database at once: the second waits here, then finds the
    // first one's tables.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(|e| r.migration(0, reason(&e)))?;
    tx.batch_execute(schema::CREATE_SCHEMA_VERSION)
        .map_err(|e| r.migration(0, reason(&e)))?;
    let found: i64 = tx
        .query_one(schema::CURRENT_VERSION, &[])
        .and_then(|row| row.try_get(0))
        .map_err(|e| r.migration(0, reason(&e)))?;
    if found > schema::SCHEMA_VERSION {
        return Err(LedgerError::NewerSchema {
            location: r.location.clone(),
            found,
            known: schema::SCHEMA_VERSION,
        });
    }
    for (version, ddl) in schema::MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.batch_execute(&schema::with_id(ddl, schema::ID_POSTGRES))
            .map_err(|e| r.migration(*version, reason(&e)))?;
        tx.execute(schema::RECORD_VERSION, &[version, &unix_ms_now()])
            .map_err(|e| r.migration(*version, reason(&e)))?;
    }
    tx.commit()
        .map_err(|e| r.migration(schema::SCHEMA_VERSION, reason(&e)))
}

fn prepare(c: &mut Client) -> Result<Statements, postgres::Error> {
    Ok(Statements {
        insert_run: c.prepare(schema::INSERT_RUN)?,
        identify: c.prepare(schema::IDENTIFY)?,
        finish: c.prepare(schema::FINISH)?,
        run_exists: c.prepare(schema::RUN_EXISTS)?,
        list: c.prepare(schema::LIST)?,
        show: c.prepare(schema::SHOW)?,
        seal_get: c.prepare(schema::SEAL_GET)?,
        seal_get_for_update: c.prepare(schema::SEAL_GET_FOR_UPDATE)?,
        seal_insert: c.prepare(schema::SEAL_INSERT)?,
        seal_regrant: c.prepare(schema::SEAL_REGRANT)?,
        seal_confirm: c.prepare(schema::SEAL_CONFIRM)?,
        seal_release: c.prepare(schema::SEAL_RELEASE)?,
        run_running_for_share: c.prepare(schema::RUN_RUNNING_FOR_SHARE)?,
        lock_get_for_update: c.prepare(schema::LOCK_GET_FOR_UPDATE)?,
        lock_insert: c.prepare(schema::LOCK_INSERT)?,
        lock_take_over: c.prepare(schema::LOCK_TAKE_OVER)?,
        lock_release_run: c.prepare(schema::LOCK_RELEASE_RUN)?,
    })
}

fn seal_from_row(r: &Row) -> Result<SealRecord, postgres::Error> {
    Ok(SealRecord {
        imei: r.try_get(0)?,
        plan_sha256: r.try_get(1)?,
        station: r.try_get(2)?,
        run: RunId(r.try_get(3)?),
        claimed_unix_ms: r.try_get(4)?,
        confirmed: r.try_get(5)?,
    })
}

fn run_from_row(r: &Row) -> Result<RunRow, postgres::Error> {
    Ok(RunRow {
        id: r.try_get(0)?,
        kind: r.try_get(1)?,
        started_unix_ms: r.try_get(2)?,
        ended_unix_ms: r.try_get(3)?,
        station: r.try_get(4)?,
        operator: r.try_get(5)?,
        port: r.try_get(6)?,
        imei: r.try_get(7)?,
        iccid: r.try_get(8)?,
        model: r.try_get(9)?,
        firmware: r.try_get(10)?,
        plan_path: r.try_get(11)?,
        plan_sha256: r.try_get(12)?,
        sealed_before: r.try_get(13)?,
        sealed_after: r.try_get(14)?,
        credentials: r.try_get(15)?,
        profiles: r.try_get(16)?,
        outcome: r.try_get(17)?,
        error: r.try_get(18)?,
        transcript_sha256: r.try_get(19)?,
        detail: r.try_get(20)?,
    })
}

impl Backend for Postgres {
    // Single statements: each is its own transaction (autocommit), one round trip.

    fn begin_run(&mut self, s: &RunStart) -> Result<RunId, LedgerError> {
        let row = self
            .client
            .query_one(
                &self.st.insert_run,
                &[
                    &s.kind.as_str(),
                    &s.started_unix_ms,
                    &s.station,
                    &s.operator,
                    &s.port,
                    &s.plan_path,
                    &s.plan_sha256,
                ],
            )
            .and_then(|r| r.try_get(0))
            .map_err(|e| self.db(e))?;
        Ok(RunId(row))
    }

    fn identify(&mut self, run: RunId, f: &ModuleFacts) -> Result<bool, LedgerError> {
        let n = self
            .client
            .execute(
                &self.st.identify,
                &[
                    &run.0,
                    &f.imei,
                    &f.iccid,
                    &f.model,
                    &f.firmware,
                    &f.sealed_before,
                ],
            )
            .map_err(|e| self.db(e))?;
        Ok(n == 1)
    }

    fn finish_run(
        &mut self,
        run: RunId,
        e: &RunEnd,
        credentials: &str,
        profiles: &str,
    ) -> Result<bool, LedgerError> {
        // One transaction: a finished run never holds a module lock.
        let mut tx = self
            .client
            .transaction()
            .map_err(|e| self.redactor.database(reason(&e)))?;
        let finished = (|| {
            let n = tx.execute(
                &self.st.finish,
                &[
                    &run.0,
                    &e.ended_unix_ms,
                    &e.outcome.as_str(),
                    &e.error,
                    &e.sealed_after,
                    &credentials,
                    &profiles,
                    &e.transcript_sha256,
                    &e.detail,
                ],
            )?;
            if n == 1 {
                tx.execute(&self.st.lock_release_run, &[&run.0])?;
            }
            Ok(n == 1)
        })();
        finished
            .and_then(|f| tx.commit().map(|()| f))
            .map_err(|e| self.redactor.database(reason(&e)))
    }

    fn run_exists(&mut self, run: RunId) -> Result<bool, LedgerError> {
        let n: i64 = self
            .client
            .query_one(&self.st.run_exists, &[&run.0])
            .and_then(|r| r.try_get(0))
            .map_err(|e| self.db(e))?;
        Ok(n > 0)
    }

    fn runs(&mut self, imei: Option<&str>) -> Result<Vec<RunRow>, LedgerError> {
        let rows = match imei {
            None => self.client.query(&self.st.list, &[]),
            Some(imei) => self.client.query(&self.st.show, &[&imei]),
        }
        .map_err(|e| self.db(e))?;
        rows.iter()
            .map(run_from_row)
            .collect::<Result<_, _>>()
            .map_err(|e| self.db(e))
    }

    fn seal_record(&mut self, imei: &str) -> Result<Option<SealRecord>, LedgerError> {
        self.client
            .query_opt(&self.st.seal_get, &[&imei])
            .and_then(|r| r.as_ref().map(seal_from_row).transpose())
            .map_err(|e| self.db(e))
    }

    fn claim_seal(&mut self, c: &Claim<'_>) -> Result<SealClaim, LedgerError> {
        self.retried("the seal claim", c.imei, |tx, st| {
            // The primary key decides: of two racing inserts exactly one inserts a row; the
            // other waits for it to commit, then inserts nothing.
            let inserted = tx.execute(
                &st.seal_insert,
                &[
                    &c.imei,
                    &c.plan_sha256,
                    &c.station,
                    &c.run.0,
                    &c.now_unix_ms,
                ],
            )?;
            if inserted == 1 {
                return Ok(Attempt::Done(SealClaim::Granted));
            }
            let Some(row) = tx.query_opt(&st.seal_get_for_update, &[&c.imei])? else {
                // Released between our insert and our read: try again.
                return Ok(Attempt::Retry);
            };
            let held = seal_from_row(&row)?;
            if regrantable(&held, c.station) {
                let n = tx.execute(
                    &st.seal_regrant,
                    &[
                        &c.imei,
                        &c.plan_sha256,
                        &c.run.0,
                        &c.now_unix_ms,
                        &c.station,
                        &c.lease_cutoff(),
                        &c.take_over,
                    ],
                )?;
                if n == 1 {
                    return Ok(Attempt::Done(SealClaim::Granted));
                }
            }
            Ok(Attempt::Done(SealClaim::HeldBy(held)))
        })
    }

    fn confirm_seal(&mut self, imei: &str, run: RunId) -> Result<bool, LedgerError> {
        let n = self
            .client
            .execute(&self.st.seal_confirm, &[&imei, &run.0])
            .map_err(|e| self.db(e))?;
        Ok(n == 1)
    }

    fn release_seal(&mut self, imei: &str, run: RunId) -> Result<bool, LedgerError> {
        let n = self
            .client
            .execute(&self.st.seal_release, &[&imei, &run.0])
            .map_err(|e| self.db(e))?;
        Ok(n == 1)
    }

    fn lock_module(&mut self, l: &LockRequest<'_>) -> Result<Option<ModuleLock>, LedgerError> {
        self.retried("the module lock", l.imei, |tx, st| {
            // The run cannot finish (and miss this lock when it releases its own) until we
            // commit.
            if tx
                .query_opt(&st.run_running_for_share, &[&l.run.0])?
                .is_none()
            {
                return Ok(Attempt::Done(None));
            }
            // As for the seal claim, the primary key decides between racing inserts.
            let inserted = tx.execute(
                &st.lock_insert,
                &[&l.imei, &l.run.0, &l.station, &l.now_unix_ms],
            )?;
            if inserted == 1 {
                return Ok(Attempt::Done(Some(ModuleLock::Granted)));
            }
            let Some(row) = tx.query_opt(&st.lock_get_for_update, &[&l.imei])? else {
                // Its run finished between our insert and our read: try again.
                return Ok(Attempt::Retry);
            };
            let held = lock_from_row(&row)?;
            let n = tx.execute(
                &st.lock_take_over,
                &[
                    &l.imei,
                    &l.run.0,
                    &l.station,
                    &l.now_unix_ms,
                    &l.lease_cutoff(),
                    &l.take_over,
                ],
            )?;
            Ok(Attempt::Done(Some(if n == 1 {
                ModuleLock::Granted
            } else {
                held
            })))
        })
    }
}
