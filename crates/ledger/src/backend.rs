//! What each back end implements, and the rules they share.

use crate::error::{LedgerError, Redactor};
use crate::model::{
    CredentialEntry, ModuleFacts, ModuleLock, Outcome, ProfileEntry, RunEnd, RunId, RunKind,
    RunRecord, RunStart, SealClaim, SealRecord,
};

/// One back end's connection. Each method is one transaction.
pub(crate) trait Backend: Send {
    fn begin_run(&mut self, s: &RunStart) -> Result<RunId, LedgerError>;
    /// `false` when no running run has this id.
    fn identify(&mut self, run: RunId, f: &ModuleFacts) -> Result<bool, LedgerError>;
    /// `false` when no running run has this id. `credentials` and `profiles` are JSON arrays.
    /// Deletes the run's module lock in the same transaction.
    fn finish_run(
        &mut self,
        run: RunId,
        e: &RunEnd,
        credentials: &str,
        profiles: &str,
    ) -> Result<bool, LedgerError>;
    fn run_exists(&mut self, run: RunId) -> Result<bool, LedgerError>;
    /// Every run newest first, or one module's oldest first.
    fn runs(&mut self, imei: Option<&str>) -> Result<Vec<RunRow>, LedgerError>;
    fn seal_record(&mut self, imei: &str) -> Result<Option<SealRecord>, LedgerError>;
    /// Applies the claim rule ([`regrantable`]) atomically.
    fn claim_seal(&mut self, c: &Claim<'_>) -> Result<SealClaim, LedgerError>;
    /// `false` when this run holds no claim on the module.
    fn confirm_seal(&mut self, imei: &str, run: RunId) -> Result<bool, LedgerError>;
    /// `true` when this run's unconfirmed claim was deleted.
    fn release_seal(&mut self, imei: &str, run: RunId) -> Result<bool, LedgerError>;
    /// Applies the module lock rule (`schema::LOCK_TAKE_OVER`) atomically. `None` when no
    /// running run has this id (nothing is locked).
    fn lock_module(&mut self, l: &LockRequest<'_>) -> Result<Option<ModuleLock>, LedgerError>;
}

/// The arguments of a module lock.
pub(crate) struct LockRequest<'a> {
    pub(crate) imei: &'a str,
    pub(crate) station: &'a str,
    pub(crate) run: RunId,
    pub(crate) now_unix_ms: i64,
    pub(crate) take_over: bool,
}

impl LockRequest<'_> {
    /// Locks taken (or renewed) before this are past their lease.
    pub(crate) fn lease_cutoff(&self) -> i64 {
        self.now_unix_ms.saturating_sub(crate::MODULE_LEASE_MS)
    }
}

/// The arguments of a seal claim.
pub(crate) struct Claim<'a> {
    pub(crate) imei: &'a str,
    pub(crate) plan_sha256: Option<&'a str>,
    pub(crate) station: &'a str,
    pub(crate) run: RunId,
    pub(crate) now_unix_ms: i64,
    pub(crate) take_over: bool,
}

impl Claim<'_> {
    /// Claims made before this are past their lease.
    pub(crate) fn lease_cutoff(&self) -> i64 {
        self.now_unix_ms.saturating_sub(crate::SEAL_LEASE_MS)
    }
}

/// THE claim rule for an existing claim, first half: it can pass to a new run only when the
/// same station made it and the module never confirmed the seal. The second half (the holding
/// run is over, or its lease ran out, or the caller takes over) is in `schema::SEAL_REGRANT`, so
/// it is decided inside the claim's transaction.
pub(crate) fn regrantable(held: &SealRecord, station: &str) -> bool {
    held.station == station && !held.confirmed
}

/// A `runs` row as stored: enums and lists still as text.
pub(crate) struct RunRow {
    pub(crate) id: i64,
    pub(crate) kind: String,
    pub(crate) started_unix_ms: i64,
    pub(crate) ended_unix_ms: Option<i64>,
    pub(crate) station: String,
    pub(crate) operator: String,
    pub(crate) port: String,
    pub(crate) imei: Option<String>,
    pub(crate) iccid: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) firmware: Option<String>,
    pub(crate) plan_path: Option<String>,
    pub(crate) plan_sha256: Option<String>,
    pub(crate) sealed_before: Option<bool>,
    pub(crate) sealed_after: Option<bool>,
    pub(crate) credentials: String,
    pub(crate) profiles: String,
    pub(crate) outcome: String,
    pub(crate) error: Option<String>,
    pub(crate) transcript_sha256: Option<String>,
    pub(crate) detail: Option<String>,
}

impl RunRow {
    /// The record, or [`LedgerError::Corrupt`] naming the value that does not decode.
    pub(crate) fn decode(self, r: &Redactor) -> Result<RunRecord, LedgerError> {
        let id = self.id;
        let kind = RunKind::parse(&self.kind)
            .ok_or_else(|| r.corrupt(format!("run {id} kind"), format!("{:?}", self.kind)))?;
        let outcome = Outcome::parse(&self.outcome)
            .ok_or_else(|| r.corrupt(format!("run {id} outcome"), format!("{:?}", self.outcome)))?;
        let credentials: Vec<CredentialEntry> = serde_json::from_str(&self.credentials)
            .map_err(|e| r.corrupt(format!("run {id} credentials"), e))?;
        let profiles: Vec<ProfileEntry> = serde_json::from_str(&self.profiles)
            .map_err(|e| r.corrupt(format!("run {id} profiles"), e))?;
        Ok(RunRecord {
            id,
            kind,
            started_unix_ms: self.started_unix_ms,
            ended_unix_ms: self.ended_unix_ms,
            station: self.station,
            operator: self.operator,
            port: self.port,
            imei: self.imei,
            iccid: self.iccid,
            model: self.model,
            firmware: self.firmware,
            plan_path: self.plan_path,
            plan_sha256: self.plan_sha256,
            sealed_before: self.sealed_before,
            sealed_after: self.sealed_after,
            credentials,
            profiles,
            outcome,
            error: self.error,
            transcript_sha256: self.transcript_sha256,
            detail: self.detail,
        })
    }
}

/// Now, in ms since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn unix_ms_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
