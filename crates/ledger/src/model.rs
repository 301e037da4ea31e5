//! The records: what a run starts with, what the host learns, how it ends, what is stored.
//!
//! **No field holds a secret**: names, hashes, actions and outcomes only; never key material,
//! passwords or PINs.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which command the run was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    /// `sealcell provision` (serialized `"provision"`).
    Provision,
    /// `sealcell fota` (serialized `"fota"`).
    Fota,
}

impl RunKind {
    /// The stored and serialized spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Provision => "provision",
            RunKind::Fota => "fota",
        }
    }

    /// The kind spelled `s` ([`RunKind::as_str`]).
    pub fn parse(s: &str) -> Option<RunKind> {
        match s {
            "provision" => Some(RunKind::Provision),
            "fota" => Some(RunKind::Fota),
            _ => None,
        }
    }
}

impl fmt::Display for RunKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run ended; [`Outcome::Running`] until [`Ledger::finish_run`](crate::Ledger::finish_run)
/// (a run still `running` long after it started was interrupted: a crash or a power cut).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Started and not finished (serialized `"running"`).
    Running,
    /// Every step done (serialized `"succeeded"`).
    Succeeded,
    /// A step failed; see the record's `error` (serialized `"failed"`).
    Failed,
    /// Refused before changing the module: allowlist, ledger rule, no confirmation
    /// (serialized `"refused"`).
    Refused,
}

impl Outcome {
    /// The stored and serialized spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
        }
    }

    /// The outcome spelled `s` ([`Outcome::as_str`]).
    pub fn parse(s: &str) -> Option<Outcome> {
        match s {
            "running" => Some(Outcome::Running),
            "succeeded" => Some(Outcome::Succeeded),
            "failed" => Some(Outcome::Failed),
            "refused" => Some(Outcome::Refused),
            _ => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a run is known by when it starts ([`Ledger::begin_run`](crate::Ledger::begin_run)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStart {
    /// `provision` or `fota`.
    pub kind: RunKind,
    /// Start time, milliseconds since the Unix epoch (UTC).
    pub started_unix_ms: i64,
    /// The station's name (`--station`, default the host name).
    pub station: String,
    /// Who ran it (`--operator`, default the login name).
    pub operator: String,
    /// The port the module is on (`/dev/ttyUSB0`, `tcp:127.0.0.1:5555`).
    pub port: String,
    /// The plan file as given, for `provision`.
    pub plan_path: Option<String>,
    /// SHA-256 of the plan file's bytes, lowercase hex.
    pub plan_sha256: Option<String>,
}

/// What the host read from the module ([`Ledger::identify`](crate::Ledger::identify)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleFacts {
    /// `AT+CGSN`.
    pub imei: String,
    /// `AT+CCID`.
    pub iccid: String,
    /// `AT+CGMM`.
    pub model: String,
    /// `AT+CGMR` (the firmware version before the run).
    pub firmware: String,
    /// Whether the module was already sealed when the run started.
    pub sealed_before: bool,
}

/// One credential the run handled: its identity and fingerprints, never its content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialEntry {
    /// The `+USECMNG` type: `CA`, `CC`, `PK`, `SC` or `VC`.
    pub kind: String,
    /// The name in the module's security store.
    pub name: String,
    /// The MD5 the module reports (`AT+USECMNG=4`), lowercase hex; an identifier, not security.
    pub md5: String,
    /// SHA-256 of the credential file the host sent, lowercase hex.
    pub sha256: String,
    /// What the run did: e.g. `imported`, `unchanged`, `replaced`, `skipped`, `failed`.
    pub action: String,
}

/// One security profile the run handled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileEntry {
    /// The `+USECPRF` profile id (0-4).
    pub id: u8,
    /// What the run did: e.g. `configured`, `unchanged`, `failed`.
    pub action: String,
}

/// How a run ended ([`Ledger::finish_run`](crate::Ledger::finish_run)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunEnd {
    /// End time, milliseconds since the Unix epoch (UTC).
    pub ended_unix_ms: i64,
    /// The result; never [`Outcome::Running`].
    pub outcome: Outcome,
    /// The error or refusal message (must hold no secret: the host's error texts hold none).
    pub error: Option<String>,
    /// Whether the module was sealed when the run ended, when known.
    pub sealed_after: Option<bool>,
    /// Every credential the run handled, in plan order.
    pub credentials: Vec<CredentialEntry>,
    /// Every profile the run handled, in plan order.
    pub profiles: Vec<ProfileEntry>,
    /// SHA-256 of the run's AT transcript file, lowercase hex.
    pub transcript_sha256: Option<String>,
    /// Free text for the kind of run, e.g. `fota`: the new firmware version.
    pub detail: Option<String>,
}

/// A run's id in the ledger (increasing in the order runs began).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub i64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One stored run: [`RunStart`], [`ModuleFacts`] and [`RunEnd`] as far as they are known.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run's id ([`RunId`]).
    pub id: i64,
    /// `provision` or `fota`.
    pub kind: RunKind,
    /// Start time, ms since the Unix epoch.
    pub started_unix_ms: i64,
    /// End time, ms since the Unix epoch; `None` while running (or interrupted).
    pub ended_unix_ms: Option<i64>,
    /// The station's name.
    pub station: String,
    /// Who ran it.
    pub operator: String,
    /// The port the module was on.
    pub port: String,
    /// The module's IMEI; `None` when the run ended before the host read it.
    pub imei: Option<String>,
    /// The SIM's ICCID.
    pub iccid: Option<String>,
    /// The module's model.
    pub model: Option<String>,
    /// The firmware version before the run.
    pub firmware: Option<String>,
    /// The plan file as given.
    pub plan_path: Option<String>,
    /// SHA-256 of the plan file, lowercase hex.
    pub plan_sha256: Option<String>,
    /// Sealed when the run started.
    pub sealed_before: Option<bool>,
    /// Sealed when the run ended.
    pub sealed_after: Option<bool>,
    /// Every credential the run handled.
    pub credentials: Vec<CredentialEntry>,
    /// Every profile the run handled.
    pub profiles: Vec<ProfileEntry>,
    /// The result; `running` for a run that never finished.
    pub outcome: Outcome,
    /// The error or refusal message.
    pub error: Option<String>,
    /// SHA-256 of the AT transcript, lowercase hex.
    pub transcript_sha256: Option<String>,
    /// Kind-specific text (`fota`: the new firmware version).
    pub detail: Option<String>,
}

/// What the ledger knows of one module's seal: who claimed it, for which plan, and whether the
/// module confirmed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealRecord {
    /// The module.
    pub imei: String,
    /// SHA-256 of the plan the seal was claimed under.
    pub plan_sha256: Option<String>,
    /// The station holding the claim.
    pub station: String,
    /// The run holding the claim.
    pub run: RunId,
    /// When the claim was made (or last re-granted), ms since the Unix epoch.
    pub claimed_unix_ms: i64,
    /// The module answered OK to the seal command.
    pub confirmed: bool,
}

/// The answer to [`Ledger::claim_seal`](crate::Ledger::claim_seal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SealClaim {
    /// This run may seal the module.
    Granted,
    /// Another claim stands: another station's, or a confirmed seal. Do not seal.
    HeldBy(SealRecord),
}

/// The answer to [`Ledger::lock_module`](crate::Ledger::lock_module).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModuleLock {
    /// This run holds the module until it finishes: it may provision it.
    Granted,
    /// Another run is provisioning the module. Do not change it.
    HeldBy {
        /// The run holding the lock (still `running`).
        run: RunId,
        /// Its station.
        station: String,
        /// When it took (or last renewed) the lock, ms since the Unix epoch.
        locked_unix_ms: i64,
    },
}
