//! Long work as jobs: what a command hands to the edge instead of doing it on the AT engine.
//!
//! A handler never opens a socket, starts a thread or waits. When a command needs the network
//! (`+UHTTPC`) it queues a [`NetJob`]; when it needs a long stretch of disk or CPU (hashing and
//! verifying a firmware package, committing a large upload) it queues a [`DiskJob`]. The edge
//! takes them with [`crate::Module::take_work`]:
//!
//! - net jobs go to a [`Connector`] (the transport layer's, over real sockets; testkit's, a
//!   scripted server on virtual time), which connects, sends [`NetJob::request`], pushes every
//!   byte the server sends into [`NetJob::receive`] and ends with [`NetJob::finish`];
//! - disk jobs run off the module lock ([`DiskJob::run`]).
//!
//! Either way the edge reports the end with [`crate::Module::finish_job`], which records the
//! result, queues URCs and wakes the channel that asked. Deadlines are the engine's: a request
//! whose `+UHTTP` op 7 time has passed is failed by the next poll and its job cancelled, so a
//! trickling server cannot hold a profile. A reboot cancels every job.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

use sealcell_at::commands::usecprf::{MinTlsVersion, PinLevel, ValidationLevel};
use zeroize::Zeroizing;

use crate::http::sink::{HttpDone, ResponseSink};

/// What a disk job hands back: the continuation of the command that waits for it, opaque
/// here (the module routes it to its channel without knowing what it is; the channel runs it).
pub(crate) type Answer = Box<dyn std::any::Any + Send>;

/// The [`Answer`] of a job that could not run to its end: its command fails.
pub(crate) struct Failed;

pub use crate::ids::JobId;

/// A job the edge must run.
#[derive(Debug)]
pub struct Job {
    /// Its id, for [`crate::Module::finish_job`] and [`Connector::cancel`].
    pub id: JobId,
    /// The work.
    pub work: Work,
}

/// What a job does.
#[derive(Debug)]
pub enum Work {
    /// Network work, for a [`Connector`] (boxed: it carries the response sink).
    Net(Box<NetJob>),
    /// Disk or CPU work, run off the module lock.
    Disk(DiskJob),
}

/// What the edge takes from the module after each call: jobs to start and jobs to stop.
#[derive(Debug, Default)]
pub struct Dispatch {
    /// Jobs to start.
    pub start: Vec<Job>,
    /// Jobs to stop at once, closing their connections (deadline passed, reboot).
    pub cancel: Vec<JobId>,
    /// Socket work, in the order the module asked for it.
    pub sockets: Vec<crate::socket::SocketOp>,
}

impl Dispatch {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.start.is_empty() && self.cancel.is_empty() && self.sockets.is_empty()
    }
}

/// Where the module's network work runs. The transport layer implements it over real sockets;
/// testkit with a scripted server on virtual time.
pub trait Connector {
    /// Starts `job`: connect to [`NetJob::target`], send [`NetJob::request`], push what the
    /// server sends to [`NetJob::receive`] until it says [`Flow::Done`] or the connection ends,
    /// then report [`NetJob::finish`] through [`crate::Module::finish_job`].
    fn start(&mut self, id: JobId, job: NetJob);
    /// Stops job `id` and closes its connection; its end is not reported.
    fn cancel(&mut self, id: JobId);
    /// Does socket work ([`crate::socket::SocketOp`]), reporting what the network does with
    /// the module's `socket_*` methods and [`crate::Module::dns_answered`].
    fn socket(&mut self, op: crate::socket::SocketOp);
}

/// Hands a [`Dispatch`] to `connector` (net jobs) and returns the disk jobs, which the caller
/// runs off the module lock.
pub fn dispatch(work: Dispatch, connector: &mut dyn Connector) -> Vec<(JobId, DiskJob)> {
    for id in work.cancel {
        connector.cancel(id);
    }
    for op in work.sockets {
        connector.socket(op);
    }
    let mut disk = Vec::new();
    for job in work.start {
        match job.work {
            Work::Net(net) => connector.start(job.id, *net),
            Work::Disk(d) => disk.push((job.id, d)),
        }
    }
    disk
}

/// The server to reach.
#[derive(Debug)]
pub struct Target {
    /// Host name or address, as the profile gives it.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// TLS, when the profile asks for it.
    pub tls: Option<TlsSettings>,
}

/// The TLS settings of a `+USECPRF` profile, with its credentials read (and decrypted, in
/// memory only) from the store. `Debug` shows which credentials are present, never their bytes.
#[derive(Default)]
pub struct TlsSettings {
    /// Certificate validation level.
    pub validation: ValidationLevel,
    /// Minimum TLS version.
    pub min_tls: MinTlsVersion,
    /// One IANA cipher suite, or the automatic list.
    pub cipher: Option<u16>,
    /// The name to check the server certificate against (empty: the server's).
    pub hostname: String,
    /// Server Name Indication (empty: none).
    pub sni: String,
    /// The trusted root, DER.
    pub root: Option<Zeroizing<Vec<u8>>>,
    /// The client certificate, DER.
    pub client_cert: Option<Zeroizing<Vec<u8>>>,
    /// The client private key, DER.
    pub client_key: Option<Zeroizing<Vec<u8>>>,
    /// The pinned server certificate (DER) and pinning level.
    pub pin: Option<(Zeroizing<Vec<u8>>, PinLevel)>,
    /// The module clock, seconds since the Unix epoch: certificate dates are checked against
    /// it, not against the host's clock.
    pub now_unix: i64,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("validation", &self.validation)
            .field("min_tls", &self.min_tls)
            .field("cipher", &self.cipher)
            .field("hostname", &self.hostname)
            .field("sni", &self.sni)
            .field("root", &self.root.is_some())
            .field("client_cert", &self.client_cert.is_some())
            .field("client_key", &self.client_key.is_some())
            .field("pin", &self.pin.as_ref().map(|(_, level)| level))
            .field("now_unix", &self.now_unix)
            .finish()
    }
}

/// How much more a net job wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    More,
    /// The response is whole (or refused): stop reading and call [`NetJob::finish`].
    Done,
}

/// Why the connection of a net job ended without the response being whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetFailure {
    /// The server name did not resolve.
    Dns,
    /// No connection could be made.
    Connect,
    /// The connection or handshake took too long.
    Timeout,
    /// The TLS handshake or a certificate check failed (the reason is logged, not shown).
    Tls(String),
    /// Reading or writing failed after the connection was made.
    Io,
}

/// How the connection of a net job ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetEnd {
    /// The server closed the connection, or the job said [`Flow::Done`].
    Closed,
    /// A TLS server closed the connection without `close_notify`: an end an attacker can
    /// forge. It completes a response framed by its length or by chunks, never one framed by
    /// the end of the connection.
    ClosedWithoutNotify,
    /// It failed.
    Failed(NetFailure),
}

/// One HTTP exchange for a [`Connector`]. `Debug` shows the request's length only: it may
/// carry the profile's password (`Authorization: Basic`).
pub struct NetJob {
    /// Where to connect.
    pub target: Target,
    /// The bytes to send once connected (zeroized when dropped).
    pub request: Zeroizing<Vec<u8>>,
    /// When the engine gives up (informative: the engine enforces it itself).
    pub deadline: Instant,
    pub(crate) sink: ResponseSink,
    /// The test bench's `cut-after`: the bytes of the response still let through before the
    /// connection is cut (`None`: no cut).
    pub(crate) cut_left: Option<u64>,
    /// The cut came: the exchange ends as a broken connection.
    pub(crate) cut: bool,
}

impl std::fmt::Debug for NetJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetJob")
            .field("target", &self.target)
            .field("request_len", &self.request.len())
            .field("deadline", &self.deadline)
            .field("sink", &self.sink)
            .finish()
    }
}

impl NetJob {
    /// Takes bytes the server sent. Cheap and never blocking apart from writing to the
    /// module's file system.
    pub fn receive(&mut self, bytes: &[u8]) -> Flow {
        if let Some(left) = self.cut_left {
            let fits = usize::try_from(left).unwrap_or(usize::MAX);
            if bytes.len() >= fits {
                // The bench cuts the connection here: what came before the cut is all there is.
                self.cut_left = None;
                self.cut = true;
                tracing::info!(bytes = fits, "download cut (cut-after)");
                let _ = self.sink.receive(&bytes[..fits]);
                return Flow::Done;
            }
            self.cut_left = Some(left - bytes.len() as u64);
        }
        self.sink.receive(bytes)
    }

    /// Ends the job: stores the response (or discards it) and returns what to report.
    pub fn finish(self, end: NetEnd) -> JobDone {
        let end = if self.cut {
            NetEnd::Failed(NetFailure::Io)
        } else {
            end
        };
        JobDone(Done::Net(self.sink.finish(end)))
    }
}

/// Disk or CPU work that must not hold the module: it returns what to do, under the module
/// lock, on the channel that waits for it.
pub struct DiskJob {
    run: Box<dyn FnOnce() -> Answer + Send>,
    long: bool,
}

impl std::fmt::Debug for DiskJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DiskJob")
    }
}

impl DiskJob {
    /// A job of a few disk operations (a commit, a delete, an import).
    pub(crate) fn new(run: impl FnOnce() -> Answer + Send + 'static) -> DiskJob {
        DiskJob {
            run: Box::new(run),
            long: false,
        }
    }

    /// A job that reads a whole package or runs a KDF: the edge keeps it from delaying the
    /// short ones.
    pub(crate) fn long(run: impl FnOnce() -> Answer + Send + 'static) -> DiskJob {
        DiskJob {
            run: Box::new(run),
            long: true,
        }
    }

    /// Whether it is long work (made with `DiskJob::long`).
    pub fn is_long(&self) -> bool {
        self.long
    }

    /// Does the work (off the module lock).
    pub fn run(self) -> JobDone {
        JobDone(Done::Disk((self.run)()))
    }
}

/// The end of a job, to give to [`crate::Module::finish_job`].
pub struct JobDone(pub(crate) Done);

impl std::fmt::Debug for JobDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Done::Net(d) => f.debug_tuple("JobDone::Net").field(d).finish(),
            Done::Disk(_) => f.write_str("JobDone::Disk"),
        }
    }
}

pub(crate) enum Done {
    Net(HttpDone),
    Disk(Answer),
}

/// Who decides how a request ends, shared by the engine and the job: the engine when it gives
/// up (the deadline, a reboot) or the job when it starts its commit; whichever comes first.
/// So a file is never committed for a request the host was told failed, and a request whose
/// commit has begun is not reported as timed out.
#[derive(Clone, Debug, Default)]
pub(crate) struct Abandoned(Arc<AtomicU8>);

const RUNNING: u8 = 0;
const GIVEN_UP: u8 = 1;
const COMMITTING: u8 = 2;

impl Abandoned {
    /// The engine gives up; false when the job's commit had already begun.
    pub(crate) fn give_up(&self) -> bool {
        self.0
            .compare_exchange(RUNNING, GIVEN_UP, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// The job starts its commit; false when the engine had already given up.
    pub(crate) fn begin_commit(&self) -> bool {
        self.0
            .compare_exchange(RUNNING, COMMITTING, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }
}
