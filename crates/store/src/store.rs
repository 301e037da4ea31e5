//! The credential store: unsealed (plaintext DER, as the real module before enforced security)
//! or sealed (every credential an AES-256-GCM record under a key derived from the seal password
//! and the device key, listed by an A/B manifest whose generation is mirrored in the device's
//! monotonic counter).
//!
//! Write order, so that a crash anywhere leaves the old state or the new one:
//! 1. the new record file (`sec/cred/<id>-<generation>.bin`; never overwrites a live one),
//! 2. the manifest, in the slot not holding the current one,
//! 3. the counter (`otp/counter`),
//! 4. removal of the record file the change made obsolete.
//!
//! At open, the highest-generation manifest that decrypts wins; it must not be older than the
//! counter (that would be a rollback); record files it does not name are removed.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::credential::{self, CredentialType, Facts, FormatError, MAX_NAME, MAX_PASSWORD};
use crate::crypto::{self, KdfPolicy, SecretKey};
use crate::format::{
    self, DecodeError, ManifestBody, ManifestEntry, ManifestFile, PlainFile, RecordFile, SealFile,
};
use crate::{Storage, is_temp_name};

/// **TOBY-L2: at most 16 certificates and keys.**
pub const MAX_ITEMS: usize = 16;

/// `sec/seal.bin`.
pub const SEAL_PATH: &str = "sec/seal.bin";
/// `sec/manifest.a` and `sec/manifest.b`.
pub const MANIFEST_PATHS: [&str; 2] = ["sec/manifest.a", "sec/manifest.b"];
/// `sec/cred/`.
pub const CRED_DIR: &str = "sec/cred";
/// `sec/plain/`.
pub const PLAIN_DIR: &str = "sec/plain";
/// `otp/counter`: the simulated monotonic counter (8 bytes, little-endian).
pub const COUNTER_PATH: &str = "otp/counter";
/// `otp/sealed`: the simulated seal fuse.
pub const FUSE_PATH: &str = "otp/sealed";

/// What binds the store to one device.
pub struct DeviceSecrets {
    /// The device-unique key (`otp/duk.bin`).
    pub duk: SecretKey,
    /// The IMEI, used as HKDF context.
    pub imei: String,
}

impl fmt::Debug for DeviceSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceSecrets")
            .field("duk", &"[redacted]")
            .field("imei", &self.imei)
            .finish()
    }
}

/// Why a sealed store does not open. The module then still reads as sealed and refuses every
/// credential operation with `+CME ERROR: 1679`, revealing nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenProblem {
    /// The seal fuse is set but `sec/seal.bin` is gone.
    #[error("the seal record is missing")]
    SealRecordMissing,
    /// `sec/seal.bin` does not decode or does not decrypt with this device's key: a clone, a
    /// changed device key or IMEI, or a tampered file.
    #[error("the seal record does not open with this module's key")]
    SealRecordUnreadable,
    /// The KDF parameters in `sec/seal.bin` are below the enforced floor.
    #[error("the seal record asks for a KDF weaker than the enforced floor")]
    KdfBelowFloor,
    /// No manifest opens, but the counter says there was one.
    #[error("no valid manifest (the counter is at generation {counter})")]
    ManifestMissing {
        /// The counter's value.
        counter: u64,
    },
    /// The newest valid manifest is older than the counter: the store was rolled back, or the
    /// current manifest was damaged.
    #[error(
        "manifest generation {manifest} is older than the counter ({counter}): rollback or damage"
    )]
    Rollback {
        /// The newest valid manifest.
        manifest: u64,
        /// The counter's value.
        counter: u64,
    },
    /// `otp/counter` does not hold 8 bytes.
    #[error("the monotonic counter is unreadable")]
    CounterUnreadable,
}

/// One stored credential, as the module reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// Its type.
    pub kind: CredentialType,
    /// Internal name.
    pub name: String,
    /// What is known of it, or why it is damaged.
    pub state: ItemState,
}

/// Whether a stored credential is usable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemState {
    /// Usable; these are its facts.
    Ok(Facts),
    /// Its record is damaged (missing, altered, or not decrypting); only removal or
    /// replacement helps.
    Damaged(String),
}

/// Why a credential operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The sealed store does not open (`+CME ERROR: 1679`).
    #[error("the credential store does not open: {0}")]
    Unopenable(OpenProblem),
    /// This one record is damaged (`+CME ERROR: 1679`).
    #[error("the {kind} item {name:?} is damaged: {reason}")]
    Damaged {
        /// Its type.
        kind: CredentialType,
        /// Its name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// No such item (`+CME ERROR: 4`).
    #[error("no {0} item named {1:?}")]
    NotFound(CredentialType, String),
    /// The name is empty or longer than 200 characters (`+CME ERROR: 4`).
    #[error("an internal name must have 1 to {MAX_NAME} characters")]
    InvalidName,
    /// The store holds 16 items already (`+CME ERROR: 1914`).
    #[error("the store is full ({MAX_ITEMS} items)")]
    Full,
    /// The data is not an accepted certificate or key (`+CME ERROR: 1913`).
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The storage failed.
    #[error("storage: {0}")]
    Io(#[from] io::Error),
}

/// Why sealing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The module is sealed already (`+CME ERROR: 3`).
    #[error("the module is already sealed")]
    AlreadySealed,
    /// The password is empty, longer than 128, or not printable ASCII (`+CME ERROR: 4`).
    #[error("the password must be 1 to {MAX_PASSWORD} printable ASCII characters other than '\"'")]
    InvalidPassword,
    /// The KDF could not run with the policy's parameters.
    #[error("key derivation failed: {0}")]
    Kdf(String),
    /// The OS random source failed.
    #[error("random source: {0}")]
    Random(String),
    /// The storage failed.
    #[error("storage: {0}")]
    Io(#[from] io::Error),
}

struct Entry {
    generation: u64,
    sha256: [u8; 32],
    state: ItemState,
}

enum State {
    Unsealed {
        items: BTreeMap<(CredentialType, String), ItemState>,
    },
    Sealed {
        mk: SecretKey,
        generation: u64,
        slot: u8,
        entries: BTreeMap<(CredentialType, String), Entry>,
    },
    Broken(OpenProblem),
}

/// The credential store of one module.
pub struct Store {
    storage: Arc<dyn Storage>,
    device: DeviceSecrets,
    policy: KdfPolicy,
    state: State,
    warnings: Vec<String>,
    read_only: bool,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Unsealed { items } => format!("unsealed, {} items", items.len()),
            State::Sealed {
                generation,
                entries,
                ..
            } => format!("sealed, generation {generation}, {} items", entries.len()),
            State::Broken(p) => format!("sealed, does not open: {p}"),
        };
        f.debug_struct("Store")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

fn p(s: &str) -> &Path {
    Path::new(s)
}

fn read_optional(storage: &dyn Storage, path: &Path) -> io::Result<Option<Vec<u8>>> {
    match storage.read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn list_optional(storage: &dyn Storage, dir: &Path) -> io::Result<Vec<String>> {
    match storage.list(dir) {
        Ok(v) => Ok(v),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// A store's seal state and contents, copied out of it ([`Store::summary`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreSummary {
    sealed: bool,
    items: Result<Vec<Item>, OpenProblem>,
}

impl StoreSummary {
    /// Whether the store is sealed.
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// [`Store::list`] as of this summary.
    pub fn list(&self) -> Result<Vec<Item>, StoreError> {
        self.items.clone().map_err(StoreError::Unopenable)
    }

    /// [`Store::facts`] as of this summary.
    pub fn facts(&self, kind: CredentialType, name: &str) -> Result<Facts, StoreError> {
        facts_of(self.list()?, kind, name)
    }

    /// [`Store::check_import`] as of this summary.
    pub fn check_import(&self, kind: CredentialType, name: &str) -> Result<(), StoreError> {
        validate_name(name)?;
        let items = self
            .items
            .as_ref()
            .map_err(|p| StoreError::Unopenable(p.clone()))?;
        let replaces = items.iter().any(|i| i.kind == kind && i.name == name);
        if !replaces && items.len() >= MAX_ITEMS {
            return Err(StoreError::Full);
        }
        Ok(())
    }
}

/// What sealing needs, taken from a store ([`Store::seal_inputs`]). `Debug` shows no secret.
pub struct SealInputs {
    duk: SecretKey,
    imei: String,
    kdf: crypto::KdfParams,
}

impl fmt::Debug for SealInputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealInputs").finish_non_exhaustive()
    }
}

/// A seal record and its master key, derived and not yet written ([`Store::commit_seal`]).
pub struct PreparedSeal {
    file: SealFile,
    mk: SecretKey,
}

impl fmt::Debug for PreparedSeal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedSeal").finish_non_exhaustive()
    }
}

impl SealInputs {
    /// Checks the password and derives the master key (Argon2id: the slow part).
    pub fn prepare(&self, password: &[u8]) -> Result<PreparedSeal, SealError> {
        if password.is_empty()
            || password.len() > MAX_PASSWORD
            || !password
                .iter()
                .all(|b| (0x20..=0x7e).contains(b) && *b != b'"')
        {
            return Err(SealError::InvalidPassword);
        }
        let random = |e: getrandom::Error| SealError::Random(e.to_string());
        let salt = crypto::random::<16>().map_err(random)?;
        let nonce = crypto::random::<12>().map_err(random)?;
        let mut file = SealFile {
            kdf: self.kdf,
            salt,
            nonce,
            ciphertext: Vec::new(),
        };
        let k_seal = crypto::seal_key(&self.duk, &self.imei);
        file.ciphertext = crypto::encrypt(&k_seal, &nonce, &file.header(), password);
        let mk = crypto::master_key(password, &salt, &self.duk, &self.imei, self.kdf)
            .map_err(|e| SealError::Kdf(e.to_string()))?;
        Ok(PreparedSeal { file, mk })
    }
}

/// The facts of one item of `items`, or why there are none.
fn facts_of(items: Vec<Item>, kind: CredentialType, name: &str) -> Result<Facts, StoreError> {
    let item = items
        .into_iter()
        .find(|i| i.kind == kind && i.name == name)
        .ok_or_else(|| StoreError::NotFound(kind, name.to_string()))?;
    match item.state {
        ItemState::Ok(f) => Ok(f),
        ItemState::Damaged(reason) => Err(StoreError::Damaged {
            kind,
            name: name.to_string(),
            reason,
        }),
    }
}

fn validate_name(name: &str) -> Result<(), StoreError> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME || name.chars().any(char::is_control) {
        return Err(StoreError::InvalidName);
    }
    Ok(())
}

fn record_path(kind: CredentialType, name: &str, generation: u64) -> PathBuf {
    Path::new(CRED_DIR).join(format!(
        "{}-{generation}.bin",
        format::credential_id(kind, name)
    ))
}

fn plain_path(kind: CredentialType, name: &str) -> PathBuf {
    Path::new(PLAIN_DIR).join(format!("{}.der", format::credential_id(kind, name)))
}

impl Store {
    /// Opens the store. A sealed store that does not open is not an error here: the store is
    /// returned in its "does not open" state (see [`Store::problem`]). Only storage failures
    /// are errors.
    pub fn open(
        storage: Arc<dyn Storage>,
        device: DeviceSecrets,
        policy: KdfPolicy,
    ) -> io::Result<Store> {
        for dir in ["otp", "sec", CRED_DIR, PLAIN_DIR] {
            storage.create_dir_all(p(dir))?;
        }
        let mut store = Store::unloaded(storage, device, policy, false);
        store.state = store.load()?;
        if !matches!(store.state, State::Broken(_)) {
            store.collect_garbage()?;
        }
        Ok(store)
    }

    /// Opens the store for inspection only (`sealcell modem status`): nothing is written, not
    /// even the repairs and clean-up an open performs. Mutating calls fail.
    pub fn inspect(
        storage: Arc<dyn Storage>,
        device: DeviceSecrets,
        policy: KdfPolicy,
    ) -> io::Result<Store> {
        let mut store = Store::unloaded(storage, device, policy, true);
        store.state = store.load()?;
        Ok(store)
    }

    fn unloaded(
        storage: Arc<dyn Storage>,
        device: DeviceSecrets,
        policy: KdfPolicy,
        read_only: bool,
    ) -> Store {
        Store {
            storage,
            device,
            policy,
            state: State::Broken(OpenProblem::SealRecordMissing),
            warnings: Vec::new(),
            read_only,
        }
    }

    fn writable(&self) -> io::Result<()> {
        if self.read_only {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the store was opened for inspection only",
            ));
        }
        Ok(())
    }

    fn load(&mut self) -> io::Result<State> {
        let storage = self.storage.as_ref();
        let fuse = storage.is_file(p(FUSE_PATH));
        let seal = read_optional(storage, p(SEAL_PATH))?;
        let Some(seal) = seal else {
            if fuse {
                return Ok(State::Broken(OpenProblem::SealRecordMissing));
            }
            return self.load_unsealed();
        };
        if !fuse && !self.read_only {
            // A crash between sec/seal.bin and the fuse: the seal happened; finish it.
            storage.write_atomic(p(FUSE_PATH), b"sealed\n")?;
        }
        let Ok(seal) = SealFile::decode(&seal) else {
            return Ok(State::Broken(OpenProblem::SealRecordUnreadable));
        };
        if !seal.kdf.meets(&self.policy.floor) {
            return Ok(State::Broken(OpenProblem::KdfBelowFloor));
        }
        let k_seal = crypto::seal_key(&self.device.duk, &self.device.imei);
        let Some(password) =
            crypto::decrypt(&k_seal, &seal.nonce, &seal.header(), &seal.ciphertext)
        else {
            return Ok(State::Broken(OpenProblem::SealRecordUnreadable));
        };
        let Ok(mk) = crypto::master_key(
            &password,
            &seal.salt,
            &self.device.duk,
            &self.device.imei,
            seal.kdf,
        ) else {
            return Ok(State::Broken(OpenProblem::SealRecordUnreadable));
        };
        drop(password);
        self.load_sealed(mk)
    }

    fn load_unsealed(&mut self) -> io::Result<State> {
        let mut items = BTreeMap::new();
        for file in list_optional(self.storage.as_ref(), p(PLAIN_DIR))? {
            if is_temp_name(&file) {
                continue;
            }
            let bytes = self.storage.read(&Path::new(PLAIN_DIR).join(&file))?;
            match PlainFile::decode(&bytes) {
                Ok(plain) => {
                    let state = match credential::facts(plain.kind, &plain.der) {
                        Ok(f) => ItemState::Ok(f),
                        Err(e) => ItemState::Damaged(e.to_string()),
                    };
                    items.insert((plain.kind, plain.name), state);
                }
                Err(e) => self.warnings.push(format!("{PLAIN_DIR}/{file}: {e}")),
            }
        }
        Ok(State::Unsealed { items })
    }

    fn read_counter(&self) -> io::Result<Result<u64, OpenProblem>> {
        Ok(
            match read_optional(self.storage.as_ref(), p(COUNTER_PATH))? {
                None => Ok(0),
                Some(b) => match <[u8; 8]>::try_from(b.as_slice()) {
                    Ok(a) => Ok(u64::from_le_bytes(a)),
                    Err(_) => Err(OpenProblem::CounterUnreadable),
                },
            },
        )
    }

    fn load_sealed(&mut self, mk: SecretKey) -> io::Result<State> {
        let counter = match self.read_counter()? {
            Ok(c) => c,
            Err(problem) => return Ok(State::Broken(problem)),
        };
        let mut best: Option<(u64, u8, ManifestBody)> = None;
        for (slot, path) in MANIFEST_PATHS.iter().enumerate() {
            let Some(bytes) = read_optional(self.storage.as_ref(), p(path))? else {
                continue;
            };
            match open_manifest(&mk, slot as u8, &bytes) {
                Ok((generation, body)) => {
                    if best.as_ref().is_none_or(|(g, _, _)| generation > *g) {
                        best = Some((generation, slot as u8, body));
                    }
                }
                Err(e) => self.warnings.push(format!("{path}: {e}")),
            }
        }
        let (generation, slot, body) = match best {
            Some(b) => b,
            None if counter == 0 => (0, 1, ManifestBody::default()),
            None => return Ok(State::Broken(OpenProblem::ManifestMissing { counter })),
        };
        if generation < counter {
            return Ok(State::Broken(OpenProblem::Rollback {
                manifest: generation,
                counter,
            }));
        }
        if generation > counter {
            // The crash fell between the manifest and the counter: bring the counter up.
            self.storage
                .write_atomic(p(COUNTER_PATH), &generation.to_le_bytes())?;
        }
        let mut entries = BTreeMap::new();
        for e in body.entries {
            let state = match self.open_record(&mk, &e) {
                Ok(der) => match credential::facts(e.kind, &der) {
                    Ok(f) => ItemState::Ok(f),
                    Err(err) => ItemState::Damaged(err.to_string()),
                },
                Err(reason) => ItemState::Damaged(reason),
            };
            entries.insert(
                (e.kind, e.name),
                Entry {
                    generation: e.generation,
                    sha256: e.sha256,
                    state,
                },
            );
        }
        Ok(State::Sealed {
            mk,
            generation,
            slot,
            entries,
        })
    }

    fn open_record(&self, mk: &SecretKey, e: &ManifestEntry) -> Result<Zeroizing<Vec<u8>>, String> {
        let path = record_path(e.kind, &e.name, e.generation);
        let bytes = match self.storage.read(&path) {
            Ok(b) => b,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err("record file missing".into());
            }
            Err(err) => return Err(format!("record file unreadable: {err}")),
        };
        if Sha256::digest(&bytes).as_slice() != e.sha256 {
            return Err("record file altered (hash mismatch)".into());
        }
        let rec =
            RecordFile::decode(&bytes).map_err(|err| format!("record file malformed: {err}"))?;
        if rec.kind != e.kind || rec.name != e.name || rec.generation != e.generation {
            return Err("record file does not match the manifest".into());
        }
        let key = crypto::record_key(mk, &rec.salt, rec.kind.wire(), &rec.name);
        crypto::decrypt(&key, &rec.nonce, &rec.header(), &rec.ciphertext)
            .ok_or_else(|| "record does not decrypt".to_string())
    }

    fn collect_garbage(&mut self) -> io::Result<()> {
        let live: Vec<PathBuf> = match &self.state {
            State::Sealed { entries, .. } => entries
                .iter()
                .map(|((k, n), e)| record_path(*k, n, e.generation))
                .collect(),
            _ => Vec::new(),
        };
        for dir in ["sec", CRED_DIR, PLAIN_DIR] {
            for name in list_optional(self.storage.as_ref(), p(dir))? {
                let path = Path::new(dir).join(&name);
                let orphan_record = dir == CRED_DIR && !live.contains(&path);
                if is_temp_name(&name) || orphan_record {
                    self.storage.remove(&path)?;
                    tracing::debug!(file = %path.display(), "removed a file no manifest names");
                }
            }
        }
        Ok(())
    }

    /// Whether enforced security is on (`+USECCFG: 0,1`), including when the store does not open.
    pub fn is_sealed(&self) -> bool {
        !matches!(self.state, State::Unsealed { .. })
    }

    /// Why a sealed store does not open, if it does not.
    pub fn problem(&self) -> Option<&OpenProblem> {
        match &self.state {
            State::Broken(p) => Some(p),
            _ => None,
        }
    }

    /// Damage noticed at open that does not stop the store (a stale manifest slot that does not
    /// decrypt, a malformed pre-seal file).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The current manifest generation (0 when unsealed or empty).
    pub fn generation(&self) -> u64 {
        match &self.state {
            State::Sealed { generation, .. } => *generation,
            _ => 0,
        }
    }

    /// Pre-seal plaintext credential files still on disk (after a seal they are unusable and
    /// unlisted, as the application note says; host tools warn before sealing).
    pub fn plaintext_files(&self) -> io::Result<usize> {
        Ok(list_optional(self.storage.as_ref(), p(PLAIN_DIR))?
            .into_iter()
            .filter(|n| !is_temp_name(n))
            .count())
    }

    fn items(&self) -> Result<Vec<Item>, StoreError> {
        Ok(match &self.state {
            State::Broken(p) => return Err(StoreError::Unopenable(p.clone())),
            State::Unsealed { items } => items
                .iter()
                .map(|((kind, name), state)| Item {
                    kind: *kind,
                    name: name.clone(),
                    state: state.clone(),
                })
                .collect(),
            State::Sealed { entries, .. } => entries
                .iter()
                .map(|((kind, name), e)| Item {
                    kind: *kind,
                    name: name.clone(),
                    state: e.state.clone(),
                })
                .collect(),
        })
    }

    /// Every item, ordered by type, then name; damaged ones included.
    pub fn list(&self) -> Result<Vec<Item>, StoreError> {
        self.items()
    }

    /// One item's facts (`AT+USECMNG=4`).
    pub fn facts(&self, kind: CredentialType, name: &str) -> Result<Facts, StoreError> {
        facts_of(self.items()?, kind, name)
    }

    /// The stored DER of an item, decrypted in memory only (for TLS and firmware checks).
    pub fn der(&self, kind: CredentialType, name: &str) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        self.facts(kind, name)?;
        match &self.state {
            State::Broken(p) => Err(StoreError::Unopenable(p.clone())),
            State::Unsealed { .. } => {
                let plain = PlainFile::decode(&self.storage.read(&plain_path(kind, name))?)
                    .map_err(|e| StoreError::Damaged {
                        kind,
                        name: name.to_string(),
                        reason: e.to_string(),
                    })?;
                Ok(Zeroizing::new(plain.der))
            }
            State::Sealed { mk, entries, .. } => {
                let e = entries
                    .get(&(kind, name.to_string()))
                    .ok_or_else(|| StoreError::NotFound(kind, name.to_string()))?;
                let entry = ManifestEntry {
                    kind,
                    generation: e.generation,
                    sha256: e.sha256,
                    name: name.to_string(),
                };
                self.open_record(mk, &entry)
                    .map_err(|reason| StoreError::Damaged {
                        kind,
                        name: name.to_string(),
                        reason,
                    })
            }
        }
    }

    /// Checks that an import of `(kind, name)` would be accepted before its data is sent:
    /// a valid name, an open store, and room for it (a replacement always has room).
    pub fn check_import(&self, kind: CredentialType, name: &str) -> Result<(), StoreError> {
        self.summary().check_import(kind, name)
    }

    /// What a caller needs to answer without the store itself: whether it is sealed, and what
    /// it holds (or why it does not open). A module keeps one beside the store, refreshed
    /// after each write, so commands do not wait for a write in progress to ask.
    pub fn summary(&self) -> StoreSummary {
        StoreSummary {
            sealed: self.is_sealed(),
            items: match &self.state {
                State::Broken(p) => Err(p.clone()),
                _ => Ok(self.items().unwrap_or_default()),
            },
        }
    }

    /// Imports (or replaces) a credential from PEM or DER `input`.
    pub fn import(
        &mut self,
        kind: CredentialType,
        name: &str,
        input: &[u8],
        password: Option<&[u8]>,
    ) -> Result<Facts, StoreError> {
        self.check_import(kind, name)?;
        self.writable()?;
        let parsed = credential::parse(kind, input, password)?;
        let result = match &self.state {
            State::Broken(p) => return Err(StoreError::Unopenable(p.clone())),
            State::Unsealed { .. } => self.import_plain(kind, name, &parsed.der, &parsed.facts),
            State::Sealed { .. } => self.import_sealed(kind, name, &parsed.der, &parsed.facts),
        };
        self.after_write(result)?;
        Ok(parsed.facts)
    }

    fn import_plain(
        &mut self,
        kind: CredentialType,
        name: &str,
        der: &[u8],
        facts: &Facts,
    ) -> Result<(), StoreError> {
        let file = PlainFile {
            kind,
            name: name.to_string(),
            der: der.to_vec(),
        };
        self.storage
            .write_atomic(&plain_path(kind, name), &file.encode())?;
        if let State::Unsealed { items } = &mut self.state {
            items.insert((kind, name.to_string()), ItemState::Ok(facts.clone()));
        }
        Ok(())
    }

    fn import_sealed(
        &mut self,
        kind: CredentialType,
        name: &str,
        der: &[u8],
        facts: &Facts,
    ) -> Result<(), StoreError> {
        let State::Sealed { mk, generation, .. } = &self.state else {
            return Err(StoreError::Unopenable(OpenProblem::SealRecordMissing));
        };
        let next = generation + 1;
        let salt = crypto::random::<32>().map_err(|e| io::Error::other(e.to_string()))?;
        let nonce = crypto::random::<12>().map_err(|e| io::Error::other(e.to_string()))?;
        let mut rec = RecordFile {
            kind,
            generation: next,
            salt,
            nonce,
            name: name.to_string(),
            ciphertext: Vec::new(),
        };
        let key = crypto::record_key(mk, &salt, kind.wire(), name);
        rec.ciphertext = crypto::encrypt(&key, &nonce, &rec.header(), der);
        let bytes = rec.encode();
        let sha256: [u8; 32] = Sha256::digest(&bytes).into();
        self.storage
            .write_atomic(&record_path(kind, name, next), &bytes)?;
        let replaced = self.commit(|entries| {
            entries
                .insert(
                    (kind, name.to_string()),
                    Entry {
                        generation: next,
                        sha256,
                        state: ItemState::Ok(facts.clone()),
                    },
                )
                .map(|old| old.generation)
        })?;
        if let Some(old) = replaced {
            self.storage.remove(&record_path(kind, name, old))?;
        }
        Ok(())
    }

    /// Removes a credential.
    pub fn remove(&mut self, kind: CredentialType, name: &str) -> Result<(), StoreError> {
        let items = self.items()?;
        if !items.iter().any(|i| i.kind == kind && i.name == name) {
            return Err(StoreError::NotFound(kind, name.to_string()));
        }
        self.writable()?;
        let result = match &self.state {
            State::Unsealed { .. } => self
                .storage
                .remove(&plain_path(kind, name))
                .map_err(StoreError::from)
                .map(|()| {
                    if let State::Unsealed { items } = &mut self.state {
                        items.remove(&(kind, name.to_string()));
                    }
                }),
            _ => self
                .commit(|entries| {
                    entries
                        .remove(&(kind, name.to_string()))
                        .map(|e| e.generation)
                })
                .map_err(StoreError::from)
                .and_then(|old| match old {
                    Some(g) => self
                        .storage
                        .remove(&record_path(kind, name, g))
                        .map_err(StoreError::from),
                    None => Ok(()),
                }),
        };
        self.after_write(result)
    }

    /// Writes the manifest of the next generation with `change` applied, then the counter.
    fn commit<T>(
        &mut self,
        change: impl FnOnce(&mut BTreeMap<(CredentialType, String), Entry>) -> T,
    ) -> io::Result<T> {
        let State::Sealed {
            mk,
            generation,
            slot,
            entries,
        } = &mut self.state
        else {
            return Err(io::Error::other("the store is not sealed and open"));
        };
        let mut next_entries: BTreeMap<(CredentialType, String), Entry> = entries
            .iter()
            .map(|(k, e)| {
                (
                    k.clone(),
                    Entry {
                        generation: e.generation,
                        sha256: e.sha256,
                        state: e.state.clone(),
                    },
                )
            })
            .collect();
        let out = change(&mut next_entries);
        let next = *generation + 1;
        let next_slot = 1 - *slot;
        let body = ManifestBody {
            entries: next_entries
                .iter()
                .map(|((kind, name), e)| ManifestEntry {
                    kind: *kind,
                    generation: e.generation,
                    sha256: e.sha256,
                    name: name.clone(),
                })
                .collect(),
        };
        let nonce = crypto::random::<12>().map_err(|e| io::Error::other(e.to_string()))?;
        let mut file = ManifestFile {
            slot: next_slot,
            generation: next,
            nonce,
            ciphertext: Vec::new(),
        };
        file.ciphertext = crypto::encrypt(
            &crypto::manifest_key(mk, next),
            &nonce,
            &file.header(),
            &body.encode(),
        );
        self.storage
            .write_atomic(p(MANIFEST_PATHS[usize::from(next_slot)]), &file.encode())?;
        self.storage
            .write_atomic(p(COUNTER_PATH), &next.to_le_bytes())?;
        *generation = next;
        *slot = next_slot;
        *entries = next_entries;
        Ok(out)
    }

    /// After a failed write, memory may no longer match the disk: reload from the disk, which
    /// holds the old state or the new one.
    fn after_write(&mut self, result: Result<(), StoreError>) -> Result<(), StoreError> {
        if let Err(e) = &result
            && matches!(e, StoreError::Io(_))
        {
            tracing::error!(error = %e, "credential store write failed; reloading it from storage");
            self.warnings.clear();
            if let Ok(state) = self.load() {
                self.state = state;
            }
        }
        result
    }

    /// Seals the module with `password` (`AT+USECCFG=0,1,"<password>"`): once per lifetime.
    /// Credentials imported before stay on disk, unusable and unlisted.
    pub fn seal(&mut self, password: &[u8]) -> Result<(), SealError> {
        let prepared = self.seal_inputs()?.prepare(password)?;
        self.commit_seal(prepared)
    }

    /// What sealing needs from the store, copied out so the slow part (Argon2id) can run
    /// without it: [`SealInputs::prepare`], then [`Store::commit_seal`].
    pub fn seal_inputs(&self) -> Result<SealInputs, SealError> {
        if self.is_sealed() {
            return Err(SealError::AlreadySealed);
        }
        self.writable()?;
        Ok(SealInputs {
            duk: SecretKey::new(Box::new(*self.device.duk.expose_secret())),
            imei: self.device.imei.clone(),
            kdf: self.policy.new_seal,
        })
    }

    /// Seals with a prepared seal record: durable before it returns. Refused if the store was
    /// sealed (or broke) since the inputs were taken.
    pub fn commit_seal(&mut self, prepared: PreparedSeal) -> Result<(), SealError> {
        if self.is_sealed() {
            return Err(SealError::AlreadySealed);
        }
        self.writable()?;
        // The seal record first: from the moment it is durable the module is sealed.
        self.storage
            .write_atomic(p(SEAL_PATH), &prepared.file.encode())?;
        self.storage.write_atomic(p(FUSE_PATH), b"sealed\n")?;
        tracing::info!("enforced security is on: the module is sealed");
        self.state = State::Sealed {
            mk: prepared.mk,
            generation: 0,
            slot: 1,
            entries: BTreeMap::new(),
        };
        Ok(())
    }

    /// The device secrets the store was opened with (for a reload by the owner).
    pub fn device_imei(&self) -> &str {
        &self.device.imei
    }

    #[doc(hidden)]
    pub fn master_key_for_tests(&self) -> Option<[u8; 32]> {
        match &self.state {
            State::Sealed { mk, .. } => Some(*mk.expose_secret()),
            _ => None,
        }
    }
}

fn open_manifest(mk: &SecretKey, slot: u8, bytes: &[u8]) -> Result<(u64, ManifestBody), String> {
    let file = ManifestFile::decode(bytes).map_err(|e: DecodeError| e.to_string())?;
    if file.slot != slot {
        return Err("slot does not match its file".into());
    }
    let key = crypto::manifest_key(mk, file.generation);
    let body = crypto::decrypt(&key, &file.nonce, &file.header(), &file.ciphertext)
        .ok_or("does not decrypt")?;
    let body = ManifestBody::decode(&body).map_err(|e| e.to_string())?;
    Ok((file.generation, body))
}
