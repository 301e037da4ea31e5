//! The edge of one module: its channels' wake-ups and the tasks running its jobs.
//!
//! The module wakes a channel (a URC, the end of its job, a reboot) by calling its waker under
//! the module lock; the waker here only looks the channel's [`Notify`] up in a registry behind
//! its own mutex and signals it, so it never waits for the module. Lock order, wherever two
//! are held: module, then registry or jobs; never the other way.
//!
//! Jobs are tasks on the runtime, kept by id so a cancel can abort one. An aborted task is
//! awaited by a reaper task: once that returns, the task's future (and its socket) is dropped.
//! The module's own sockets (`+USOCR` and the rest) are tasks too, kept in a
//! [`socket::Registry`] by handle.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sealcell_modem::job::{Connector, DiskJob, Dispatch, JobDone, JobId, NetJob};
use sealcell_modem::socket::SocketOp;
use sealcell_modem::{ChannelId, Link, Module};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::runtime::Handle;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;

use crate::{SharedModule, lock, net, session, socket};

/// The wake-up of every open channel, by id.
type Registry = Mutex<HashMap<ChannelId, Arc<Notify>>>;

/// The event-driven edge of one module: runs its channels and its jobs on a tokio runtime.
/// Cheap to clone (all clones are the same edge).
#[derive(Clone)]
pub struct Edge {
    inner: Arc<Inner>,
}

struct Inner {
    module: SharedModule,
    handle: Handle,
    channels: Arc<Registry>,
    jobs: Mutex<HashMap<JobId, JoinHandle<()>>>,
    /// The module's sockets and lookups.
    sockets: socket::Registry,
    /// Short disk jobs that may run at once; the others wait their turn.
    disk_slots: Arc<Semaphore>,
    /// Long ones (hashing a package, the seal's KDF), in their own queue so they do not hold
    /// up prompts and imports.
    long_slots: Arc<Semaphore>,
    /// The bench's network shaping as of the last call into the module (every change to it
    /// is one: [`Edge::with_module`] refreshes it), so a socket's reads need no module lock.
    latency_ms: AtomicU64,
    /// Bytes per second, 0 for none.
    rate: AtomicU64,
    /// The uplink's bytes per second, 0 for none.
    uplink: AtomicU64,
}

/// The most short disk jobs of one module running at once.
///
/// # Security
/// A host that starts jobs and hangs up (an append copies its whole file) queues work; it
/// does not get a thread and a disk stream for each.
pub const MAX_DISK_JOBS: usize = 4;

/// The most long disk jobs of one module running at once (installs hash whole packages).
pub const MAX_LONG_DISK_JOBS: usize = 2;

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge")
            .field("channels", &lock(&self.inner.channels).len())
            .field("jobs", &lock(&self.inner.jobs).len())
            .field("sockets", &self.inner.sockets.len())
            .finish_non_exhaustive()
    }
}

impl Edge {
    /// The edge of `module`, running its tasks on `handle`'s runtime. Installs the module's
    /// waker (replacing any other: one module has one edge).
    pub fn new(module: SharedModule, handle: Handle) -> Edge {
        let channels: Arc<Registry> = Arc::default();
        let registry = Arc::clone(&channels);
        module.lock().set_waker(Arc::new(move |id: ChannelId| {
            // Under the module lock: signal only. `notify_one` keeps the wake-up for a channel
            // that is busy elsewhere (writing) until it next waits.
            if let Some(notify) = lock(&registry).get(&id) {
                notify.notify_one();
            }
        }));
        Edge {
            inner: Arc::new(Inner {
                module,
                handle,
                channels,
                jobs: Mutex::default(),
                sockets: socket::Registry::default(),
                disk_slots: Arc::new(Semaphore::new(MAX_DISK_JOBS)),
                long_slots: Arc::new(Semaphore::new(MAX_LONG_DISK_JOBS)),
                latency_ms: AtomicU64::new(0),
                rate: AtomicU64::new(0),
                uplink: AtomicU64::new(0),
            }),
        }
    }

    /// The module.
    pub fn module(&self) -> &SharedModule {
        &self.inner.module
    }

    /// The runtime the edge runs on.
    pub fn handle(&self) -> &Handle {
        &self.inner.handle
    }

    /// Runs `f` on the locked module, then hands the work it queued to [`Edge::dispatch`]
    /// under the same lock (so a start and a later cancel of one job are seen in order).
    pub fn with_module<T>(&self, f: impl FnOnce(&mut Module) -> T) -> T {
        let mut module = self.inner.module.lock();
        let result = f(&mut module);
        let shaping = module.network_shaping();
        let latency_ms = u64::try_from(shaping.latency.as_millis()).unwrap_or(u64::MAX);
        self.inner.latency_ms.store(latency_ms, Ordering::Relaxed);
        self.inner
            .rate
            .store(shaping.bytes_per_s.unwrap_or(0), Ordering::Relaxed);
        self.inner
            .uplink
            .store(shaping.uplink_bytes_per_s.unwrap_or(0), Ordering::Relaxed);
        if module.has_work() {
            self.dispatch(module.take_work());
        }
        result
    }

    /// Runs what the module handed out: cancels first (abort, then join in the background so
    /// the connection closes), then starts net jobs as tasks and disk jobs on the blocking
    /// pool. Each reports its end with [`Module::finish_job`] and dispatches what follows.
    pub fn dispatch(&self, work: Dispatch) {
        let mut connector = self.clone();
        for (id, job) in sealcell_modem::job::dispatch(work, &mut connector) {
            self.start_disk(id, job);
        }
    }

    /// Serves one AT channel over `reader` and `writer` until the peer leaves (end of input,
    /// once every answer to it is written) or `stop` turns true.
    pub async fn serve<R, W>(&self, reader: R, writer: W, label: &str, stop: watch::Receiver<bool>)
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let transport = session::Transport {
            label,
            stall: None,
            hang_up: false,
            baud: None,
        };
        session::run(self, reader, writer, transport, stop).await;
    }

    /// How many job tasks are running (net and disk), cancelled ones not counted.
    pub fn jobs_running(&self) -> usize {
        lock(&self.inner.jobs).len()
    }

    /// How many of the module's sockets the edge runs (connected, listening or bound).
    pub fn sockets_open(&self) -> usize {
        self.inner.sockets.len()
    }

    /// Aborts every job and socket and waits until each task is gone (its socket closed).
    /// The module is not told: the edge is going away with it.
    pub async fn shutdown(&self) {
        let mut tasks: Vec<JoinHandle<()>> =
            lock(&self.inner.jobs).drain().map(|(_, t)| t).collect();
        tasks.extend(self.inner.sockets.drain());
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
    }

    /// The module's sockets at the edge.
    pub(crate) fn sockets(&self) -> &socket::Registry {
        &self.inner.sockets
    }

    /// Attaches a new link (a plain AT channel, multiplexed later if the host asks) and
    /// registers its wake-up, under one module lock so no wake-up between the two is lost.
    /// Returns the module's power epoch too, read under the same lock.
    pub(crate) fn open_link(&self) -> (Link, Arc<Notify>, u64) {
        let notify = Arc::new(Notify::new());
        let mut module = self.inner.module.lock();
        let link = Link::new(&mut module);
        lock(&self.inner.channels).insert(link.wake_id(), Arc::clone(&notify));
        (link, notify, module.power_epoch())
    }

    /// How the test bench shapes the network now (`throttle`, `latency`).
    pub(crate) fn shaping(&self) -> sealcell_modem::faults::Shaping {
        let rate = self.inner.rate.load(Ordering::Relaxed);
        let uplink = self.inner.uplink.load(Ordering::Relaxed);
        sealcell_modem::faults::Shaping {
            latency: std::time::Duration::from_millis(
                self.inner.latency_ms.load(Ordering::Relaxed),
            ),
            bytes_per_s: (rate > 0).then_some(rate),
            uplink_bytes_per_s: (uplink > 0).then_some(uplink),
        }
    }

    /// Waits the bench's latency (before a connect or a lookup).
    pub(crate) async fn latency(&self) {
        let latency = self.shaping().latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }

    /// Waits until `n` bytes received on a connection have come at the downlink's rate (the
    /// bench's throttle, the timing profile's), on that connection's schedule.
    pub(crate) async fn pace(&self, schedule: &mut crate::pace::Schedule, n: usize) {
        let rate = self.shaping().bytes_per_s.map(|r| r as f64);
        schedule.carry(n, rate).await;
    }

    /// Waits until `n` bytes sent on a connection have gone at the uplink's rate (the timing
    /// profile's), on that connection's schedule.
    pub(crate) async fn pace_up(&self, schedule: &mut crate::pace::Schedule, n: usize) {
        let rate = self.shaping().uplink_bytes_per_s.map(|r| r as f64);
        schedule.carry(n, rate).await;
    }

    /// Detaches a link's channels and forgets its wake-up.
    pub(crate) fn close_link(&self, link: Link) {
        let id = link.wake_id();
        self.with_module(|m| {
            m.observe(crate::system_now());
            link.close(m);
        });
        lock(&self.inner.channels).remove(&id);
    }

    /// Spawns a job's task and keeps its handle. The jobs lock is held across the spawn so the
    /// task, should it end at once, finds its entry to remove.
    fn spawn_job(&self, id: JobId, work: impl Future<Output = Option<JobDone>> + Send + 'static) {
        let edge = self.clone();
        let mut jobs = lock(&self.inner.jobs);
        let task = self.inner.handle.spawn(async move {
            match work.await {
                Some(done) => edge.with_module(|m| m.finish_job(id, done)),
                // It panicked or could not run: its channel must not wait for ever.
                None => edge.with_module(|m| m.fail_job(id)),
            }
            lock(&edge.inner.jobs).remove(&id);
        });
        if let Some(old) = jobs.insert(id, task) {
            // Ids are unique per module; a second start of one id would be an engine bug.
            tracing::error!(
                job = id.0,
                "a job id was started twice; the first task is stopped"
            );
            old.abort();
        }
    }

    fn start_disk(&self, id: JobId, job: DiskJob) {
        tracing::debug!(job = id.0, "disk job started");
        let slots = Arc::clone(if job.is_long() {
            &self.inner.long_slots
        } else {
            &self.inner.disk_slots
        });
        self.spawn_job(id, async move {
            // Closed only when the edge is dropped, and then nothing waits for the answer.
            let Ok(slot) = slots.acquire_owned().await else {
                return None;
            };
            // The permit goes with the work: a cancel aborts this task, not the blocking
            // work, which keeps its slot until it really ends.
            match tokio::task::spawn_blocking(move || {
                let _slot = slot;
                job.run()
            })
            .await
            {
                Ok(done) => Some(done),
                Err(e) => {
                    tracing::error!(job = id.0, error = %e, "a disk job failed to run to its end");
                    None
                }
            }
        });
    }
}

impl Connector for Edge {
    fn start(&mut self, id: JobId, job: NetJob) {
        tracing::debug!(job = id.0, host = %job.target.host, port = job.target.port, "net job started");
        self.spawn_job(id, net::run(id, job, self.clone()));
    }

    fn cancel(&mut self, id: JobId) {
        let Some(task) = lock(&self.inner.jobs).remove(&id) else {
            // Already ended (its end is ignored by the module) or never ours.
            return;
        };
        tracing::debug!(job = id.0, "job cancelled");
        task.abort();
        // Joined off the caller's path (which may hold the module lock): the socket closes when
        // the aborted future is dropped, which the join waits for.
        self.inner.handle.spawn(async move {
            let _ = task.await;
        });
    }

    fn socket(&mut self, op: SocketOp) {
        socket::run(self, op);
    }
}
