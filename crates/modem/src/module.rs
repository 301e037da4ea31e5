//! The module: all state shared by its AT channels, loaded from and persisted to the data
//! directory. A [`crate::Channel`] drives it; transports share one `Module` behind a mutex.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sealcell_at::payload::DEFAULT_PAYLOAD_TIMEOUT;
use sealcell_store::crypto::KdfPolicy;
use sealcell_store::{FsStorage, Storage, Store, StoreSummary};

use crate::datadir::{self, DataDir, OpenError};
use crate::firmware::FirmwareFile;
use crate::fs::{DEFAULT_CAPACITY, FileSystem};
use crate::identity::{Identity, Imei, Model};
use crate::job::{DiskJob, Dispatch, Done, Job, JobDone, JobId, Work};
use crate::nvm::NvmFile;
use crate::time::Now;

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
    /// How long things take (`--timing`): [`crate::timing::Profile::Fast`] by default.
    pub timing: crate::timing::Profile,
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
            timing: crate::timing::Profile::Fast,
        }
    }
}

pub use crate::ids::ChannelId;

/// The emulated module.
#[derive(Debug)]
pub struct Module {
    config: ModuleConfig,
    dir: DataDir,
    pub(crate) identity: Identity,
    pub(crate) nvm: NvmFile,
    pub(crate) fs: FileSystem,
    pub(crate) firmware: FirmwareFile,
    /// The credential store, behind its own lock: an import's encryption and fsyncs run as a
    /// job holding only this lock, not the module's (at most one store writer at a time).
    store: StoreAccess,
    pub(crate) radio: crate::radio::Radio,
    /// The key that seals secrets kept in NVM (`+UAUTHREQ` passwords): derived from the device
    /// key, so a copied `nvm.toml` reveals nothing.
    nvm_key: sealcell_store::crypto::SecretKey,
    /// Stored values of the "accept and read back" settings, by command name.
    pub(crate) settings: BTreeMap<&'static str, Vec<crate::nvm::Value>>,
    /// `AT+CCLK` offset from the host clock, in milliseconds.
    clock_offset_ms: i64,
    /// The `AT+CCLK` time zone the host set, in quarters of an hour (volatile, like the offset:
    /// a real module's RTC zone is lost with its power).
    clock_zone: i64,
    /// The `+USECPRF` secrets, memory only.
    pub(crate) profile_secrets: [crate::profiles::ProfileSecrets; crate::profiles::PROFILES],
    /// The `+UHTTP` profiles, last errors and requests in flight (volatile).
    pub(crate) http: crate::http::HttpState,
    /// The `+USOCR` sockets (volatile).
    pub(crate) sockets: crate::socket::Sockets,
    /// What the test bench armed, and what fired (kept across reboots: the bench is outside
    /// the module).
    pub(crate) faults: crate::faults::Faults,
    /// The power switch of the storage, when it has one ([`Module::open`]).
    power: Option<sealcell_store::PowerSwitch>,
    /// The test bench's scenario, and what of it is still to fire.
    scenario: Option<crate::scenario::Running>,
    /// The scenario's seed.
    seed: Option<u64>,
    /// A reboot a scenario asked for, done at the end of the call into the engine.
    pending_reboot: bool,
    /// A scenario cut the power itself (not at a write): the module comes back at the end of
    /// the call, and no write is said to have fired it.
    pending_power_loss: bool,
    /// A scenario's `storage_write` power cuts still to come (write numbers since the module
    /// opened), smallest first; the first is armed on the switch.
    storage_cuts: Vec<u64>,
    /// Power losses since the process started.
    power_epoch: u64,
    /// Jobs for the edge, and the channels waiting for theirs.
    jobs: Jobs,
    /// The time of the latest call into the engine.
    now: Now,
    /// Called when a channel has something new (a URC, the end of its job).
    waker: Option<WakerSlot>,
    epoch: u64,
    next_channel: u64,
    urcs: HashMap<ChannelId, VecDeque<Vec<u8>>>,
    /// Channels whose wake-ups go to another id: the DLCIs of a multiplexed link wake the
    /// link ([`crate::link::Link`]), which the edge knows by its first channel's id.
    wake_as: HashMap<ChannelId, ChannelId>,
    /// The multiplexer parameters of the channels that are DLCIs (`AT+CMUX?`).
    multiplexers: HashMap<ChannelId, sealcell_at::commands::cmux::CmuxStatus>,
    created: bool,
    /// The timing profile's quiet window, registration, and the reboot of an install whose
    /// host went away ([`crate::timing`]).
    pub(crate) timers: crate::timing::Timers,
}

/// What the edge is told when a channel has something new to send: a URC, or the end of the
/// job its command waits for. It should poll that channel soon (no lock is held... the call
/// happens under the module's, so it must only signal, never lock the module).
pub type Waker = std::sync::Arc<dyn Fn(ChannelId) + Send + Sync>;

/// The waker, with a `Debug` that says only whether one is set.
struct WakerSlot(Waker);

impl std::fmt::Debug for WakerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Waker")
    }
}

/// The jobs side of the module: queued for the edge, to cancel, and waited for.
#[derive(Default)]
struct Jobs {
    next_id: u64,
    /// Started, not yet taken by the edge.
    start: Vec<Job>,
    /// To stop (deadline passed, reboot), not yet taken by the edge.
    cancel: Vec<JobId>,
    /// Socket work, in order, not yet taken by the edge.
    sockets: Vec<crate::socket::SocketOp>,
    /// Disk jobs in progress, and the channel each one's command waits on.
    waiting: BTreeMap<JobId, ChannelId>,
    /// Finished disk jobs' continuations, for their channels' next poll.
    answers: HashMap<ChannelId, crate::job::Answer>,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs")
            .field("start", &self.start.len())
            .field("cancel", &self.cancel.len())
            .field("sockets", &self.sockets.len())
            .field("waiting", &self.waiting.len())
            .field("answers", &self.answers.len())
            .finish()
    }
}

/// The most URCs queued for one channel; older ones are dropped first.
///
/// # Security
/// A channel that never reads cannot make the module grow without bound.
pub const MAX_QUEUED_URCS: usize = 256;

impl Module {
    /// Opens (creating on first start) the module described by `config`, in its data
    /// directory on the host file system.
    /// `now` is the time of the start (a new module records it as its creation time).
    pub fn open(config: ModuleConfig, now: Now) -> Result<Module, OpenError> {
        // Behind a power switch, so the test bench can cut the power (`power-loss`).
        let fs: Arc<dyn Storage> = Arc::new(FsStorage::new(&config.data_dir));
        let switch = sealcell_store::PowerSwitch::new(fs);
        let storage: Arc<dyn Storage> = Arc::new(switch.clone());
        let mut module = Module::open_with_storage(config, storage, now)?;
        module.power = Some(switch);
        Ok(module)
    }

    /// Opens the module on another storage (the crash-simulating disk of the tests).
    pub fn open_with_storage(
        config: ModuleConfig,
        storage: Arc<dyn Storage>,
        now: Now,
    ) -> Result<Module, OpenError> {
        let dir = DataDir::with_storage(&config.data_dir, storage.clone());
        let created_unix = u64::try_from(now.unix()).unwrap_or(0);
        let opened = dir.open_or_create(config.model, config.imei.clone(), created_unix)?;
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
            store: StoreAccess::new(store),
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
            sockets: Default::default(),
            faults: Default::default(),
            power: None,
            power_epoch: 0,
            scenario: None,
            seed: None,
            pending_reboot: false,
            pending_power_loss: false,
            storage_cuts: Vec::new(),
            jobs: Jobs::default(),
            now,
            waker: None,
            epoch: 0,
            next_channel: 0,
            urcs: HashMap::new(),
            wake_as: HashMap::new(),
            multiplexers: HashMap::new(),
            created: opened.created,
            timers: Default::default(),
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

    /// The credential store (waits while an import job writes it: commands that only need
    /// to know whether the store is sealed or would take an import use
    /// [`Module::store_summary`]).
    pub fn store(&self) -> MappedStore<'_> {
        self.store.store()
    }

    /// The store's seal state and contents as of its last write; never waits for a write.
    pub fn store_summary(&self) -> StoreSummary {
        lock(&self.store.summary).clone()
    }

    /// The store for a job that writes it off the module lock.
    pub(crate) fn store_handle(&self) -> StoreAccess {
        self.store.clone()
    }

    /// Whether enforced security is on.
    pub fn is_sealed(&self) -> bool {
        lock(&self.store.summary).is_sealed()
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
    /// Every job is cancelled: requests in flight end without a URC, their connections close,
    /// and commands waiting for a disk job are forgotten with their channels' state.
    pub fn reboot(&mut self) -> Result<(), OpenError> {
        let storage = self.dir.storage().clone();
        self.restart(storage)
    }

    /// Cuts the power (the test bench's `power-loss`): nothing of this boot is written any
    /// more, not even by a job still running, and the module comes back from what its disk
    /// holds, as after power-on, on a new boot of its storage. Every connection of the
    /// transports drops ([`Module::power_epoch`]). Fails for a module opened on another
    /// storage than its data directory's ([`Module::open_with_storage`]).
    pub fn power_loss(&mut self) -> Result<(), OpenError> {
        let Some(switch) = self.power.clone() else {
            return Err(OpenError::Io {
                what: "cut the power of",
                path: self.dir.root().to_path_buf(),
                source: std::io::Error::other("the module's storage has no power switch"),
            });
        };
        switch.cut();
        let next = switch.power_on();
        self.restart(Arc::new(next.clone()))?;
        self.power = Some(next);
        self.power_epoch += 1;
        self.arm_storage_cut();
        tracing::info!(epoch = self.power_epoch, "power lost; the module is back");
        Ok(())
    }

    /// Counts power losses since the process started: a transport that can hang up drops its
    /// connection when it changes, as a module losing power drops the line.
    pub fn power_epoch(&self) -> u64 {
        self.power_epoch
    }

    /// The power switch of the module's storage ([`Module::open`] puts one in).
    pub fn power_switch(&self) -> Option<&sealcell_store::PowerSwitch> {
        self.power.as_ref()
    }

    /// Runs the power loss an armed cut caused, if it did (a write of this call landed on it):
    /// the drivers call it after each call into the engine.
    pub fn settle_power(&mut self) -> bool {
        if std::mem::take(&mut self.pending_reboot)
            && let Err(e) = self.reboot()
        {
            tracing::error!(error = %e, "a scenario's reboot failed");
        }
        if !self.power.as_ref().is_some_and(|p| p.is_cut()) {
            return false;
        }
        let write = self.power.as_ref().map_or(0, |p| p.writes());
        match self.storage_cuts.first() {
            _ if std::mem::take(&mut self.pending_power_loss) => {}
            Some(n) if *n == write => {
                self.storage_cuts.remove(0);
                self.faults
                    .record(format!("scenario: power-loss at storage write {write}"));
            }
            _ => self
                .faults
                .record("power-loss-at-write (fired)".to_string()),
        }
        if let Err(e) = self.power_loss() {
            tracing::error!(error = %e, "the module did not come back after a power loss");
        }
        true
    }

    fn restart(&mut self, storage: Arc<dyn Storage>) -> Result<(), OpenError> {
        // A store job still writing finishes first, and jobs started before are stopped from
        // writing after (see StoreAccess). Jobs take only the store's lock, never the
        // module's: no deadlock.
        // File-system jobs from before the reboot change no file after it either.
        self.fs.retire();
        let (config, now) = (self.config.clone(), self.now);
        let mut access = self.store.clone();
        let fresh = match access.reopen(|| Module::open_with_storage(config, storage, now)) {
            Ok(fresh) => fresh,
            Err(e) => {
                // The module keeps its state, and so its file system.
                self.fs.revive();
                return Err(e);
            }
        };
        let epoch = self.epoch + 1;
        let next_channel = self.next_channel;
        let channels: Vec<ChannelId> = self.urcs.keys().copied().collect();
        let mut jobs = std::mem::take(&mut self.jobs);
        jobs.cancel.extend(self.http.abandon_all());
        jobs.cancel.extend(jobs.waiting.keys().copied());
        jobs.cancel.extend(jobs.start.drain(..).map(|j| j.id));
        // The sockets go with the power: their connections close, without a URC (the
        // channels start again with the greeting).
        self.close_all_sockets(false);
        jobs.sockets.append(&mut self.jobs.sockets);
        jobs.waiting.clear();
        jobs.answers.clear();
        let waker = self.waker.take();
        let wake_as = std::mem::take(&mut self.wake_as);
        let multiplexers = std::mem::take(&mut self.multiplexers);
        let sockets = self.sockets.after_reboot();
        let faults = std::mem::take(&mut self.faults);
        let (power, power_epoch) = (self.power.take(), self.power_epoch);
        let (scenario, seed) = (self.scenario.take(), self.seed);
        let storage_cuts = std::mem::take(&mut self.storage_cuts);
        // The network is not the module's: a lost network or a weak cell stays lost or weak.
        let (network_lost, rsrp_dbm) = (self.radio.network_lost, self.radio.rsrp_dbm);
        *self = fresh;
        self.sockets = sockets;
        self.faults = faults;
        self.power = power;
        self.power_epoch = power_epoch;
        self.scenario = scenario;
        self.seed = seed;
        self.storage_cuts = storage_cuts;
        self.radio.network_lost = network_lost;
        self.radio.rsrp_dbm = rsrp_dbm;
        self.wake_as = wake_as;
        self.multiplexers = multiplexers;
        self.epoch = epoch;
        self.next_channel = next_channel;
        self.jobs = jobs;
        self.waker = waker;
        for id in channels {
            self.urcs.insert(id, VecDeque::new());
            self.wake(id);
        }
        self.boot_window(self.now.mono());
        tracing::info!(epoch, "module rebooted");
        Ok(())
    }

    /// Records the time of a call into the engine (channels do it on every feed and poll).
    pub fn observe(&mut self, now: Now) {
        self.now = now;
        self.run_timing(now.mono());
        let due = match self.scenario.as_mut() {
            Some(s) if s.next_time().is_some_and(|t| t <= now.mono()) => s.on_time(now.mono()),
            _ => return,
        };
        for f in due {
            self.fire(f);
        }
    }

    /// Loads the test bench's scenario (`--scenario`): what fires at its start is armed now,
    /// the rest waits for its trigger.
    pub fn load_scenario(&mut self, scenario: crate::scenario::Scenario, seed: Option<u64>) {
        self.seed = seed.or(scenario.seed);
        self.faults.rng = self.seed.unwrap_or(0);
        tracing::info!(faults = scenario.faults.len(), seed = ?self.seed, "scenario loaded");
        let mut running = crate::scenario::Running::new(scenario, self.now.mono());
        let at_start = running.take_at_start();
        self.scenario = Some(running);
        for f in at_start {
            match f.fault {
                crate::faults::Fault::PowerLossAtWrite(n) => self.storage_cuts.push(n),
                crate::faults::Fault::CutAfter(n) => self.faults.download_cuts.push_back(n),
                other => {
                    if let Err(e) = self.inject(other) {
                        tracing::error!(fault = %f.label, error = %e, "a scenario fault was refused");
                    }
                }
            }
        }
        self.storage_cuts.sort_unstable();
        self.arm_storage_cut();
    }

    /// Arms the switch for the scenario's next `storage_write` cut still ahead.
    fn arm_storage_cut(&mut self) {
        let Some(switch) = self.power.as_ref() else {
            return;
        };
        let done = switch.writes();
        self.storage_cuts.retain(|n| *n > done);
        if let Some(n) = self.storage_cuts.first() {
            switch.cut_at_write(Some(n - done));
        }
    }

    /// Drops what of the scenario is still to fire (`clear`).
    pub(crate) fn drop_scenario(&mut self) {
        self.scenario = None;
        self.storage_cuts.clear();
        self.faults.download_cuts.clear();
    }

    /// Sets the seed of the bench's random choices (`--seed` without a scenario).
    pub fn set_seed(&mut self, seed: u64) {
        self.seed = Some(seed);
        self.faults.rng = seed;
    }

    /// The scenario's seed.
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }

    /// Fires the scenario faults due as command `name` starts.
    pub(crate) fn scenario_command(&mut self, name: &str) {
        let due = match self.scenario.as_mut() {
            Some(s) => s.on_command(name),
            None => return,
        };
        for f in due {
            self.fire(f);
        }
    }

    /// Fires one scenario fault: a power loss cuts the power at once (nothing more of this
    /// call is written) and the module comes back at the end of the call; a reboot waits for
    /// the end of the call; the rest are injected as `sealcell ctl` injects them.
    fn fire(&mut self, f: crate::scenario::ScenarioFault) {
        self.faults.record(format!("scenario: {}", f.label));
        match f.fault {
            crate::faults::Fault::PowerLoss => match &self.power {
                Some(switch) => {
                    switch.cut();
                    self.pending_power_loss = true;
                }
                None => tracing::error!("a scenario power loss on a module without a switch"),
            },
            crate::faults::Fault::Reboot => self.pending_reboot = true,
            fault => {
                if let Err(e) = self.inject(fault) {
                    tracing::error!(fault = %f.label, error = %e, "a scenario fault was refused");
                }
            }
        }
    }

    /// What of the scenario is still to fire.
    pub(crate) fn scenario_pending(&self) -> Vec<String> {
        self.scenario
            .as_ref()
            .map(|s| s.pending_labels())
            .unwrap_or_default()
    }

    /// When the scenario's next timed fault is due.
    pub(crate) fn scenario_deadline(&self) -> Option<Instant> {
        self.scenario.as_ref().and_then(|s| s.next_time())
    }

    /// The time of the latest call into the engine.
    pub fn now(&self) -> Now {
        self.now
    }

    /// Sets what is called when a channel has something new to send.
    pub fn set_waker(&mut self, waker: Waker) {
        self.waker = Some(WakerSlot(waker));
    }

    fn wake(&self, id: ChannelId) {
        if let Some(WakerSlot(w)) = &self.waker {
            w(self.wake_as.get(&id).copied().unwrap_or(id));
        }
    }

    /// Queues network work for the edge.
    pub(crate) fn start_net_job(&mut self, job: crate::job::NetJob) -> JobId {
        let id = self.next_job_id();
        self.jobs.start.push(Job {
            id,
            work: Work::Net(Box::new(job)),
        });
        id
    }

    /// Queues disk work for the edge; `channel`'s command waits for it.
    pub(crate) fn start_disk_job(&mut self, channel: ChannelId, job: DiskJob) -> JobId {
        let id = self.next_job_id();
        self.jobs.waiting.insert(id, channel);
        self.jobs.start.push(Job {
            id,
            work: Work::Disk(job),
        });
        id
    }

    fn next_job_id(&mut self) -> JobId {
        self.jobs.next_id += 1;
        JobId(self.jobs.next_id)
    }

    /// Takes the jobs to start and to cancel. The edge calls it after every call into the
    /// engine and runs what it gets ([`crate::job::dispatch`]).
    pub fn take_work(&mut self) -> Dispatch {
        Dispatch {
            start: std::mem::take(&mut self.jobs.start),
            cancel: std::mem::take(&mut self.jobs.cancel),
            sockets: std::mem::take(&mut self.jobs.sockets),
        }
    }

    /// Whether [`Module::take_work`] has something.
    pub fn has_work(&self) -> bool {
        !self.jobs.start.is_empty() || !self.jobs.cancel.is_empty() || !self.jobs.sockets.is_empty()
    }

    /// Asks the edge to stop job `id` (its connection closes).
    pub(crate) fn cancel_job(&mut self, id: JobId) {
        self.jobs.cancel.push(id);
    }

    /// Queues socket work for the edge.
    pub(crate) fn queue_socket_op(&mut self, op: crate::socket::SocketOp) {
        self.jobs.sockets.push(op);
    }

    /// Starts a wait of `channel`'s command for an event the edge reports (a connect, a
    /// lookup): [`Module::reply`] with the returned id ends it.
    pub(crate) fn await_reply(&mut self, channel: ChannelId) -> JobId {
        let id = self.next_job_id();
        self.jobs.waiting.insert(id, channel);
        id
    }

    /// Ends the wait `id` with `then`, run on its channel's next poll. A wait whose channel
    /// is gone (or that a reboot forgot) is ignored.
    pub(crate) fn reply(&mut self, id: JobId, then: crate::command::Continuation) {
        if let Some(channel) = self.jobs.waiting.remove(&id) {
            self.jobs.answers.insert(channel, Box::new(then));
            self.wake(channel);
        }
    }

    /// Whether channel `id` is attached.
    pub(crate) fn has_channel(&self, id: ChannelId) -> bool {
        self.urcs.contains_key(&id)
    }

    /// The address of the default PDP context (the module's own address).
    pub(crate) fn pdp_address(&self) -> std::net::Ipv4Addr {
        self.identity.pdp_address()
    }

    /// Reports the end of job `id`. The end of a job the module gave up on (its deadline
    /// passed, or a reboot came between) is ignored.
    pub fn finish_job(&mut self, id: JobId, done: JobDone) {
        match done.0 {
            Done::Net(done) => {
                if let Some((channel, urc)) = self.http.finished(id, &done) {
                    self.post_urc(channel, urc.into_bytes());
                }
            }
            Done::Disk(then) => {
                if let Some(channel) = self.jobs.waiting.remove(&id) {
                    self.jobs.answers.insert(channel, then);
                    self.wake(channel);
                }
            }
        }
        // A write of the job may have landed on the bench's armed power cut.
        self.settle_power();
    }

    /// Reports that job `id` could not run to its end (it panicked, or the edge could not run
    /// it): its command ends with `+CME ERROR: 23`, a request with `+UUHTTPCR: ...,0`. Without
    /// this the channel would wait for it for ever.
    pub fn fail_job(&mut self, id: JobId) {
        tracing::error!(job = id.0, "a job failed to run to its end");
        let failed = crate::http::sink::HttpDone::failed(crate::http::err::STORAGE);
        if let Some((channel, urc)) = self.http.finished(id, &failed) {
            self.post_urc(channel, urc.into_bytes());
        }
        if let Some(channel) = self.jobs.waiting.remove(&id) {
            self.jobs
                .answers
                .insert(channel, Box::new(crate::job::Failed));
            self.wake(channel);
        }
    }

    /// Fails the requests whose deadline has passed (their jobs are cancelled).
    pub(crate) fn expire_jobs(&mut self, now: Instant) {
        self.expire_connects(now);
        for (id, channel, urc) in self.http.expire(now) {
            self.jobs.cancel.push(id);
            self.post_urc(channel, urc.into_bytes());
        }
    }

    /// The earliest deadline of the jobs `channel` started.
    pub(crate) fn job_deadline(&self, channel: ChannelId) -> Option<Instant> {
        let connect = self
            .sockets
            .next_deadline()
            .filter(|_| self.jobs.waiting.values().any(|c| *c == channel));
        self.http
            .next_deadline(channel)
            .into_iter()
            .chain(connect)
            .chain(self.scenario_deadline())
            .chain(self.timers.next_deadline())
            .min()
    }

    /// Takes the continuation of `channel`'s finished disk job.
    pub(crate) fn take_answer(&mut self, channel: ChannelId) -> Option<crate::job::Answer> {
        self.jobs.answers.remove(&channel)
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

    /// Registers a new AT channel whose wake-ups go to `wake` (a DLCI of the link `wake`
    /// names).
    pub(crate) fn attach_channel_woken_as(&mut self, wake: ChannelId) -> ChannelId {
        let id = self.attach_channel();
        self.wake_as.insert(id, wake);
        id
    }

    /// Marks `id` as a DLCI of a multiplexer with these parameters.
    pub(crate) fn set_multiplexer(
        &mut self,
        id: ChannelId,
        status: sealcell_at::commands::cmux::CmuxStatus,
    ) {
        self.multiplexers.insert(id, status);
    }

    /// The parameters of the multiplexer `id` is a DLCI of, if it is one.
    pub(crate) fn multiplexer(
        &self,
        id: ChannelId,
    ) -> Option<sealcell_at::commands::cmux::CmuxStatus> {
        self.multiplexers.get(&id).copied()
    }

    /// How many channels are attached.
    pub fn channel_count(&self) -> usize {
        self.urcs.len()
    }

    /// Forgets a channel and its queued URCs.
    pub fn detach_channel(&mut self, id: ChannelId) {
        self.urcs.remove(&id);
        self.wake_as.remove(&id);
        self.multiplexers.remove(&id);
        self.radio.forget(id);
        self.jobs.answers.remove(&id);
        // Its disk jobs run to their end (they cannot be stopped midway), unanswered.
        self.jobs.waiting.retain(|_, c| *c != id);
    }

    /// Queues a URC for the channel that started the work.
    pub fn post_urc(&mut self, id: ChannelId, text: impl Into<Vec<u8>>) {
        if let Some(q) = self.urcs.get_mut(&id) {
            if q.len() >= MAX_QUEUED_URCS {
                q.pop_front();
            }
            q.push_back(text.into());
            self.wake(id);
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
        if before.wants != self.radio.wants_network() {
            self.radio_wants_changed();
        }
        if !self.radio.registered() {
            // Losing the network fails the requests in flight as a lost connection fails
            // them, deactivates every context, and closes every socket.
            for (id, channel, urc) in self.http.fail_all(crate::http::err::CONNECT) {
                self.cancel_job(id);
                self.post_urc(channel, urc.into_bytes());
            }
            self.radio.deactivated.clear();
            self.close_all_sockets(true);
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

    /// The module clock (`AT+CCLK`) at `now`, seconds since the Unix epoch.
    pub fn clock_unix(&self, now: Now) -> i64 {
        now.unix_ms()
            .saturating_add(self.clock_offset_ms)
            .div_euclid(1000)
    }

    /// Sets the module clock to `unix` seconds in time zone `zone` (quarters of an hour;
    /// `AT+CCLK=`) at `now`. The offset is kept to the millisecond, so a read right after the
    /// set shows the time that was set, whatever fraction of a second the host clock was at.
    pub(crate) fn set_clock(&mut self, unix: i64, zone: i64, now: Now) {
        self.clock_offset_ms = unix.saturating_mul(1000).saturating_sub(now.unix_ms());
        self.clock_zone = zone;
    }

    /// The `AT+CCLK` time zone, in quarters of an hour (0, UTC, after boot).
    pub(crate) fn clock_zone(&self) -> i64 {
        self.clock_zone
    }
}

/// A lock that a panic (a bug) left poisoned still guards data its last atomic write left
/// consistent: take it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The credential store and its summary, shared by the module and the jobs that write it.
///
/// One slot lives as long as the process: a reboot opens a new `Store` into the same slot
/// (under its lock, so no write is half done) and bumps its generation. A job holds the
/// generation it was started in and writes nothing after a reboot: two `Store`s never write one
/// directory, and a job queued before a power cycle cannot undo what was written after it.
#[derive(Clone)]
pub(crate) struct StoreAccess {
    slot: Arc<Mutex<StoreSlot>>,
    summary: Arc<Mutex<StoreSummary>>,
    /// The boot this handle belongs to.
    generation: u64,
}

struct StoreSlot {
    store: Store,
    generation: u64,
}

impl std::fmt::Debug for StoreAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreAccess")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl StoreAccess {
    fn new(store: Store) -> StoreAccess {
        let summary = store.summary();
        StoreAccess {
            slot: Arc::new(Mutex::new(StoreSlot {
                store,
                generation: 0,
            })),
            summary: Arc::new(Mutex::new(summary)),
            generation: 0,
        }
    }

    /// Runs a write on the store (a job, off the module lock), then refreshes the summary while
    /// still holding the store, so summaries follow the writes in their order. `None`: the
    /// module rebooted since the job started, and nothing was written.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut Store) -> T) -> Option<T> {
        let mut slot = lock(&self.slot);
        if slot.generation != self.generation {
            tracing::info!("a store job from before a reboot did nothing");
            return None;
        }
        let out = f(&mut slot.store);
        *lock(&self.summary) = slot.store.summary();
        Some(out)
    }

    /// Reads the store in a job (briefly: no disk write waits behind it for long). `None`: the
    /// module rebooted since the job started.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Store) -> T) -> Option<T> {
        let slot = lock(&self.slot);
        (slot.generation == self.generation).then(|| f(&slot.store))
    }

    /// The store, for reads under the module lock.
    fn store(&self) -> MappedStore<'_> {
        MappedStore(lock(&self.slot))
    }

    /// Replaces the store with `fresh` (a reboot), once no write is in progress: `open` runs
    /// with the slot locked, so it reads the directory as the last write left it.
    fn reopen(
        &mut self,
        open: impl FnOnce() -> Result<Module, OpenError>,
    ) -> Result<Module, OpenError> {
        let mut slot = lock(&self.slot);
        let mut fresh = open()?;
        let generation = slot.generation + 1;
        // The fresh module's own slot is new and shared with nothing yet: take its store.
        let theirs = std::mem::replace(&mut fresh.store, self.clone());
        let Ok(their_slot) = Arc::try_unwrap(theirs.slot) else {
            // Cannot happen (nothing else holds a fresh module's slot); keep its store then.
            tracing::error!("a fresh module's store is shared; keeping it apart");
            return Ok(fresh);
        };
        let store = their_slot
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .store;
        *lock(&self.summary) = store.summary();
        *slot = StoreSlot { store, generation };
        self.generation = generation;
        fresh.store = self.clone();
        Ok(fresh)
    }
}

/// The store behind its slot's lock.
pub struct MappedStore<'a>(MutexGuard<'a, StoreSlot>);

impl std::ops::Deref for MappedStore<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.0.store
    }
}
