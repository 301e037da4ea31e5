//! The module: all state shared by its AT channels, loaded from and persisted to the data
//! directory. A [`crate::Channel`] drives it; transports share one `Module` behind a mutex.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sealcell_at::payload::DEFAULT_PAYLOAD_TIMEOUT;
use sealcell_store::crypto::KdfPolicy;
use sealcell_store::{FsStorage, Storage, Store};

use crate::datadir::{self, DataDir, OpenError};
use crate::firmware::FirmwareFile;
use crate::fs::{DEFAULT_CAPACITY, FileSystem};
use crate::identity::{Identity, Imei, Model};
use crate::nvm::NvmFile;

/// How to start a module (the `sealcell modem` options).
#[derive(Clone, Debug)]
pub struct ModuleConfig {
    /// The data directory (`--data`).
    pub data_dir: PathBuf,
    /// The model for a new module (`--model`); must match an existing one.
    pub model: Option<Model>,
    /// The IMEI for a new module (`--imei`); must match an existing one.
    pub imei: Option<Imei>,
    /// File-system capacity in bytes (`--fs-capacity`).
    pub fs_capacity: u64,
    /// Inter-byte timeout of raw payloads (`--payload-timeout`).
    pub payload_timeout: Duration,
    /// Argon2id parameters of a new seal and the floor enforced on open.
    pub kdf: KdfPolicy,
}

impl ModuleConfig {
    /// The defaults of `sealcell modem` for `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> ModuleConfig {
        ModuleConfig {
            data_dir: data_dir.into(),
            model: None,
            imei: None,
            fs_capacity: DEFAULT_CAPACITY,
            payload_timeout: DEFAULT_PAYLOAD_TIMEOUT,
            kdf: KdfPolicy::PRODUCTION,
        }
    }
}

/// Identifies one AT channel of the module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u64);

/// The emulated module.
#[derive(Debug)]
pub struct Module {
    config: ModuleConfig,
    dir: DataDir,
    pub(crate) identity: Identity,
    pub(crate) nvm: NvmFile,
    pub(crate) fs: FileSystem,
    pub(crate) firmware: FirmwareFile,
    pub(crate) store: Store,
    pub(crate) radio: crate::radio::Radio,
    /// The key that seals secrets kept in NVM (`+UAUTHREQ` passwords): derived from the device
    /// key, so a copied `nvm.toml` reveals nothing.
    nvm_key: sealcell_store::crypto::SecretKey,
    /// Stored values of the "accept and read back" settings, by command name.
    pub(crate) settings: BTreeMap<&'static str, Vec<crate::command::control::Value>>,
    /// `AT+CCLK` offset from the host clock, in milliseconds.
    clock_offset_ms: i64,
    /// The `AT+CCLK` time zone the host set, in quarters of an hour (volatile, like the offset:
    /// a real module's RTC zone is lost with its power).
    clock_zone: i64,
    /// The `+USECPRF` secrets, memory only.
    pub(crate) profile_secrets: [crate::profiles::ProfileSecrets; crate::profiles::PROFILES],
    /// The `+UHTTP` profiles, last errors and requests in flight (volatile).
    pub(crate) http: crate::http_client::HttpState,
    epoch: u64,
    next_channel: u64,
    urcs: HashMap<ChannelId, VecDeque<Vec<u8>>>,
    created: bool,
}

/// The most URCs queued for one channel; older ones are dropped first.
///
/// # Security
/// A channel that never reads cannot make the module grow without bound.
pub const MAX_QUEUED_URCS: usize = 256;

impl Module {
    /// Opens (creating on first start) the module described by `config`, in its data
    /// directory on the host file system.
    pub fn open(config: ModuleConfig) -> Result<Module, OpenError> {
        let storage: Arc<dyn Storage> = Arc::new(FsStorage::new(&config.data_dir));
        Module::open_with_storage(config, storage)
    }

    /// Opens the module on another storage (the crash-simulating disk of the tests).
    pub fn open_with_storage(
        config: ModuleConfig,
        storage: Arc<dyn Storage>,
    ) -> Result<Module, OpenError> {
        let dir = DataDir::with_storage(&config.data_dir, storage.clone());
        let opened = dir.open_or_create(config.model, config.imei.clone(), now_unix())?;
        let nvm = NvmFile::load(storage.clone(), Path::new(datadir::NVM))
            .map_err(dir.io_err("read", datadir::NVM))?;
        let fs = FileSystem::open(storage.clone(), Path::new(datadir::FS), config.fs_capacity)
            .map_err(dir.io_err("open", datadir::FS))?;
        let storage_for_store = storage.clone();
        let firmware = FirmwareFile::load(storage, Path::new(datadir::FW_STATE))
            .map_err(dir.io_err("read", datadir::FW_STATE))?;
        let device = dir.device_secrets(&opened.identity)?;
        let nvm_key = sealcell_store::crypto::hkdf(
            secrecy::ExposeSecret::expose_secret(&device.duk).as_slice(),
            None,
            &[b"sealcell/v1/nvm-secret", device.imei.as_bytes()],
        );
        let store = Store::open(storage_for_store, device, config.kdf)
            .map_err(dir.io_err("open", "sec"))?;
        if let Some(problem) = store.problem() {
            tracing::warn!(%problem, "the sealed credential store does not open with this module's key");
        }
        Ok(Module {
            config,
            dir,
            store,
            identity: opened.identity,
            nvm,
            fs,
            firmware,
            radio: crate::radio::Radio::default(),
            nvm_key,
            settings: BTreeMap::new(),
            clock_offset_ms: 0,
            clock_zone: 0,
            profile_secrets: Default::default(),
            http: Default::default(),
            epoch: 0,
            next_channel: 0,
            urcs: HashMap::new(),
            created: opened.created,
        })
    }

    /// The identity fixed at creation.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Whether this process created the module.
    pub fn was_created(&self) -> bool {
        self.created
    }

    /// The data directory layout.
    pub fn data_dir(&self) -> &DataDir {
        &self.dir
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &ModuleConfig {
        &self.config
    }

    /// Security profile `id` (0..4): the stored settings (factory values when never set).
    pub fn security_profile(&self, id: usize) -> crate::profiles::SecurityProfile {
        self.nvm
            .values
            .security_profiles
            .get(&id.to_string())
            .cloned()
            .unwrap_or_default()
    }

    /// The key that seals secrets kept in NVM.
    pub(crate) fn nvm_key(&self) -> &sealcell_store::crypto::SecretKey {
        &self.nvm_key
    }

    /// The credential store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether enforced security is on.
    pub fn is_sealed(&self) -> bool {
        self.store.is_sealed()
    }

    /// Whether firmware may be installed by `method` in the module's seal state.
    pub fn firmware_update_allowed(
        &self,
        method: crate::firmware::UpdateMethod,
    ) -> Result<(), sealcell_at::CmeError> {
        crate::firmware::update_allowed(self.is_sealed(), method)
    }

    /// The installed firmware version (`AT+CGMR`).
    pub fn firmware_version(&self) -> &str {
        &self.firmware.state.version
    }

    /// Power-cycles the module: volatile state back to factory, persistent state re-read from
    /// the data directory, and every channel reset at its next input (`AT+CFUN=15/16`).
    pub fn reboot(&mut self) -> Result<(), OpenError> {
        let fresh = Module::open_with_storage(self.config.clone(), self.dir.storage().clone())?;
        let epoch = self.epoch + 1;
        let next_channel = self.next_channel;
        let channels: Vec<ChannelId> = self.urcs.keys().copied().collect();
        *self = fresh;
        self.epoch = epoch;
        self.next_channel = next_channel;
        for id in channels {
            self.urcs.insert(id, VecDeque::new());
        }
        tracing::info!(epoch, "module rebooted");
        Ok(())
    }

    /// Counts boots since the process started; channels compare it to notice a reboot.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Registers a new AT channel.
    pub fn attach_channel(&mut self) -> ChannelId {
        let id = ChannelId(self.next_channel);
        self.next_channel += 1;
        self.urcs.insert(id, VecDeque::new());
        id
    }

    /// Forgets a channel and its queued URCs.
    pub fn detach_channel(&mut self, id: ChannelId) {
        self.urcs.remove(&id);
        self.radio.forget(id);
    }

    /// Queues a URC for the channel that started the work.
    pub fn post_urc(&mut self, id: ChannelId, text: impl Into<Vec<u8>>) {
        if let Some(q) = self.urcs.get_mut(&id) {
            if q.len() >= MAX_QUEUED_URCS {
                q.pop_front();
            }
            q.push_back(text.into());
        }
    }

    /// Queues a URC for every channel (network events).
    pub fn broadcast_urc(&mut self, text: &[u8]) {
        let ids: Vec<ChannelId> = self.urcs.keys().copied().collect();
        for id in ids {
            self.post_urc(id, text.to_vec());
        }
    }

    /// Sends each channel the URCs a radio change from `before` causes, in the modes that
    /// channel asked for (`+CREG`/`+CGREG`/`+CEREG`/`+CSCON`: the network is the module's, the
    /// reporting modes are each channel's).
    pub(crate) fn radio_changed(&mut self, before: crate::radio::RadioSnapshot) {
        if !self.radio.registered() {
            // Losing the network deactivates every context.
            self.radio.deactivated.clear();
        }
        let ids: Vec<ChannelId> = self.urcs.keys().copied().collect();
        for id in ids {
            for urc in self.radio.change_urcs(before, id) {
                self.post_urc(id, urc);
            }
        }
    }

    /// Takes the URCs queued for a channel.
    pub fn take_urcs(&mut self, id: ChannelId) -> Option<VecDeque<Vec<u8>>> {
        match self.urcs.get_mut(&id) {
            Some(q) if !q.is_empty() => Some(std::mem::take(q)),
            _ => None,
        }
    }

    /// Whether URCs wait for a channel.
    pub fn has_urcs(&self, id: ChannelId) -> bool {
        self.urcs.get(&id).is_some_and(|q| !q.is_empty())
    }

    /// The module clock (`AT+CCLK`), seconds since the Unix epoch.
    pub fn clock_unix(&self) -> i64 {
        now_unix_ms()
            .saturating_add(self.clock_offset_ms)
            .div_euclid(1000)
    }

    /// Sets the module clock to `unix` seconds in time zone `zone` (quarters of an hour;
    /// `AT+CCLK=`). The offset is kept to the millisecond, so a read right after the set shows
    /// the time that was set, whatever fraction of a second the host clock was at.
    pub(crate) fn set_clock(&mut self, unix: i64, zone: i64) {
        self.clock_offset_ms = unix.saturating_mul(1000).saturating_sub(now_unix_ms());
        self.clock_zone = zone;
    }

    /// The `AT+CCLK` time zone, in quarters of an hour (0, UTC, after boot).
    pub(crate) fn clock_zone(&self) -> i64 {
        self.clock_zone
    }
}

/// The host clock, milliseconds since the Unix epoch.
fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The host clock, seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
