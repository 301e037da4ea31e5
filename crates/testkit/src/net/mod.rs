//! Networks for the engine's jobs in tests: a scripted one on virtual time, a real one.
//!
//! [`ScriptedNet`] is a [`Connector`] whose servers are scripts: each answers a connection with
//! pieces of bytes at given times after it was made, then closes, hangs or resets. Time is the
//! test's virtual clock: [`ScriptedNet::advance`] delivers what is due, so a server trickling
//! one byte a second for an hour costs nothing to test. It records every request and knows
//! which connections are still open, so a test can check that a cancelled job left none.
//!
//! The module's sockets reach the same scripted servers ([`sockets`]).
//!
//! [`ThreadNet`] makes real connections (one thread per exchange, TLS through
//! `sealcell-https`), for the suites that talk to real servers (`openssl s_server`, test
//! servers over loopback).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sealcell_modem::faults::Shaping;
use sealcell_modem::job::{Connector, JobDone, JobId, NetEnd, NetFailure, NetJob};
use sealcell_modem::socket::{SocketFailure, SocketHandle, SocketOp};

pub mod sockets;

/// How a scripted server ends a connection once its pieces are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScriptEnd {
    /// Closes it (the end of an HTTP/1.0 response).
    Close,
    /// Keeps it open and says nothing more.
    Hang,
    /// Resets it.
    Reset,
}

/// What a scripted server does with each connection.
#[derive(Clone, Debug)]
pub struct Script {
    /// Bytes to send, each at its delay after the connection was made (in order).
    pub pieces: Vec<(Duration, Vec<u8>)>,
    /// Then.
    pub end: ScriptEnd,
    /// Whether it sends back what it is sent (sockets only).
    pub echo: bool,
}

impl Script {
    /// This script as the test bench's `throttle` and `latency` shape it: each piece arrives
    /// no sooner than the one before has (at the throttled rate), and, `with_latency`, the
    /// latency later.
    pub fn shaped(mut self, shaping: Shaping, with_latency: bool) -> Script {
        let latency = if with_latency {
            shaping.latency
        } else {
            Duration::ZERO
        };
        let mut done = latency;
        for (at, bytes) in &mut self.pieces {
            let start = (*at + latency).max(done);
            done = start + shaping.pause(bytes.len());
            *at = done;
        }
        self
    }

    /// Answers at once with `bytes`, then closes.
    pub fn reply(bytes: impl Into<Vec<u8>>) -> Script {
        Script {
            pieces: vec![(Duration::ZERO, bytes.into())],
            end: ScriptEnd::Close,
            echo: false,
        }
    }

    /// Sends back what it is sent, and keeps the connection open.
    pub fn echo() -> Script {
        Script {
            pieces: Vec::new(),
            end: ScriptEnd::Hang,
            echo: true,
        }
    }

    /// Sends `bytes` one byte every `every`, then ends as `end`.
    pub fn trickle(bytes: &[u8], every: Duration, end: ScriptEnd) -> Script {
        Script {
            pieces: bytes
                .iter()
                .enumerate()
                .map(|(i, b)| (every * (i as u32 + 1), vec![*b]))
                .collect(),
            end,
            echo: false,
        }
    }
}

struct Open {
    job: NetJob,
    script: Script,
    connected: Instant,
    next: usize,
}

/// A [`Connector`] with scripted servers on virtual time.
#[derive(Default)]
pub struct ScriptedNet {
    servers: BTreeMap<(String, u16), Script>,
    open: BTreeMap<JobId, Open>,
    ended: Vec<(JobId, JobDone)>,
    /// Every request made: the server and the bytes sent.
    pub requests: Vec<((String, u16), Vec<u8>)>,
    /// Jobs cancelled by the module (their connections closed).
    pub cancelled: Vec<JobId>,
    now: Option<Instant>,
    /// Scripted names, for sockets and `+UDNSRN`.
    names: BTreeMap<String, std::net::IpAddr>,
    sockets: sockets::Sockets,
    socket_log: Vec<(SocketHandle, Vec<u8>)>,
    socket_log_bytes: usize,
    /// Sends to report as done at the next pump.
    sent_reports: Vec<(SocketHandle, usize)>,
    /// Listens to report as bound at the next pump.
    bound_reports: Vec<SocketHandle>,
    /// Servers whose connects are never answered.
    blackholes: std::collections::BTreeSet<(String, u16)>,
    /// The test bench's `throttle` and `latency`, for the connections made from now on.
    pub(crate) shaping: Shaping,
}

impl ScriptedNet {
    /// Scripts the server at `host:port` (later connections use the new script).
    pub fn serve(&mut self, host: &str, port: u16, script: Script) {
        self.servers.insert((host.to_string(), port), script);
    }

    /// Connections still open.
    pub fn open_connections(&self) -> usize {
        self.open.len()
    }

    /// The ends of exchanges that finished since the last call.
    pub fn take_ended(&mut self) -> Vec<(JobId, JobDone)> {
        std::mem::take(&mut self.ended)
    }

    /// When the next scripted event is due.
    pub fn next_event(&self) -> Option<Instant> {
        self.open
            .values()
            .filter_map(|o| match o.script.pieces.get(o.next) {
                Some((at, _)) => Some(o.connected + *at),
                None if o.script.end != ScriptEnd::Hang => Some(o.connected),
                None => None,
            })
            .chain(self.next_socket_event())
            .min()
    }

    /// The time now: connections made from here on start at it.
    pub fn set_now(&mut self, now: Instant) {
        self.now = Some(now);
    }

    /// The module's network shaping, for the connections made from here on.
    pub fn set_shaping(&mut self, shaping: Shaping) {
        self.shaping = shaping;
    }

    /// Delivers everything due at `now`.
    pub fn advance(&mut self, now: Instant) {
        self.now = Some(now);
        let ids: Vec<JobId> = self.open.keys().copied().collect();
        for id in ids {
            let Some(mut o) = self.open.remove(&id) else {
                continue;
            };
            let mut done = false;
            while let Some((at, bytes)) = o.script.pieces.get(o.next) {
                if o.connected + *at > now {
                    break;
                }
                o.next += 1;
                if o.job.receive(bytes) == sealcell_modem::job::Flow::Done {
                    done = true;
                    break;
                }
            }
            let all_sent = o.next >= o.script.pieces.len();
            let end = match (done, all_sent, o.script.end) {
                (true, _, _) | (false, true, ScriptEnd::Close) => Some(NetEnd::Closed),
                (false, true, ScriptEnd::Reset) => Some(NetEnd::Failed(NetFailure::Io)),
                _ => None,
            };
            match end {
                Some(end) => self.ended.push((id, o.job.finish(end))),
                None => {
                    self.open.insert(id, o);
                }
            }
        }
    }
}

impl Connector for ScriptedNet {
    fn start(&mut self, id: JobId, job: NetJob) {
        let key = (job.target.host.clone(), job.target.port);
        self.requests.push((key.clone(), job.request.to_vec()));
        match self.servers.get(&key) {
            None => self
                .ended
                .push((id, job.finish(NetEnd::Failed(NetFailure::Connect)))),
            Some(script) => {
                let connected = self.now.unwrap_or_else(Instant::now);
                let script = script.clone().shaped(self.shaping, true);
                self.open.insert(
                    id,
                    Open {
                        job,
                        script,
                        connected,
                        next: 0,
                    },
                );
            }
        }
    }

    fn cancel(&mut self, id: JobId) {
        if self.open.remove(&id).is_some() {
            self.cancelled.push(id);
        }
    }

    fn socket(&mut self, op: SocketOp) {
        self.socket_op(op);
    }
}

/// A [`Connector`] over real sockets: each exchange on its own thread, blocking I/O with the
/// job's deadline as the socket timeout.
pub struct ThreadNet {
    ended_tx: mpsc::Sender<(JobId, JobDone)>,
    ended_rx: mpsc::Receiver<(JobId, JobDone)>,
    cancelled: Vec<JobId>,
    /// Socket work it refuses (see [`ThreadNet::refuse_sockets`]).
    refused: Vec<SocketOp>,
    /// The module's (virtual) time: a job's deadline counts from it, not from the host's.
    now: Option<Instant>,
}

impl Default for ThreadNet {
    fn default() -> Self {
        let (ended_tx, ended_rx) = mpsc::channel();
        ThreadNet {
            ended_tx,
            ended_rx,
            cancelled: Vec::new(),
            refused: Vec::new(),
            now: None,
        }
    }
}

impl ThreadNet {
    /// The module's time now.
    pub fn set_now(&mut self, now: Instant) {
        self.now = Some(now);
    }

    /// The ends of exchanges that finished since the last call (a cancelled job's end is
    /// dropped).
    pub fn take_ended(&mut self) -> Vec<(JobId, JobDone)> {
        let cancelled = &self.cancelled;
        self.ended_rx
            .try_iter()
            .filter(|(id, _)| !cancelled.contains(id))
            .collect()
    }
}

impl Connector for ThreadNet {
    fn start(&mut self, id: JobId, job: NetJob) {
        let tx = self.ended_tx.clone();
        let timeout = job
            .deadline
            .saturating_duration_since(self.now.unwrap_or_else(Instant::now))
            .max(Duration::from_millis(10));
        std::thread::spawn(move || {
            let done = exchange(job, timeout);
            let _ = tx.send((id, done));
        });
    }

    fn cancel(&mut self, id: JobId) {
        // The thread ends at its socket timeout; its end is dropped.
        self.cancelled.push(id);
    }

    fn socket(&mut self, op: SocketOp) {
        self.refused.push(op);
    }
}

impl ThreadNet {
    /// Fails the socket work asked of it: it carries HTTP exchanges only. The suites that
    /// test sockets over real connections run the real edge (`sealcell-serve`).
    pub fn refuse_sockets(&mut self, module: &mut sealcell_modem::Module) -> bool {
        let refused = std::mem::take(&mut self.refused);
        let any = !refused.is_empty();
        for op in refused {
            match op {
                SocketOp::Connect { handle, .. } | SocketOp::Listen { handle, .. } => module
                    .socket_failed(
                        handle,
                        SocketFailure::Io("the test network carries no sockets".into()),
                    ),
                SocketOp::Resolve { job, .. } => module.dns_answered(job, Err(SocketFailure::Dns)),
                // Sent to nowhere, at once: the send buffer frees.
                SocketOp::Send { handle, bytes } | SocketOp::SendTo { handle, bytes, .. } => {
                    module.socket_sent(handle, bytes.len());
                }
                SocketOp::Resume { .. } | SocketOp::Close { .. } => {}
            }
        }
        any
    }
}

fn exchange(mut job: NetJob, timeout: Duration) -> JobDone {
    let addrs: Vec<_> = match (job.target.host.as_str(), job.target.port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(_) => return job.finish(NetEnd::Failed(NetFailure::Dns)),
    };
    let Some(tcp) = addrs
        .iter()
        .find_map(|a| TcpStream::connect_timeout(a, timeout).ok())
    else {
        return job.finish(NetEnd::Failed(NetFailure::Connect));
    };
    let _ = tcp.set_read_timeout(Some(timeout));
    let _ = tcp.set_write_timeout(Some(timeout));
    let end = match job.target.tls.take() {
        Some(t) => {
            let profile = sealcell_https::TlsProfile {
                validation: t.validation,
                min_tls: t.min_tls,
                cipher: t.cipher,
                root_der: t.root.as_deref().map(|v| v.as_slice()),
                hostname: &t.hostname,
                sni: &t.sni,
                client_cert_der: t.client_cert.as_deref().map(|v| v.as_slice()),
                client_key_der: t.client_key.as_deref().map(|v| v.as_slice()),
                pin: t.pin.as_ref().map(|(d, l)| (d.as_slice(), *l)),
                now_unix: Some(t.now_unix),
            };
            match sealcell_https::connect(&profile, &job.target.host, tcp) {
                Ok(mut tls) => pump(&mut tls, &mut job),
                Err(e) => NetEnd::Failed(NetFailure::Tls(e.to_string())),
            }
        }
        None => {
            let mut tcp = tcp;
            pump(&mut tcp, &mut job)
        }
    };
    job.finish(end)
}

fn pump(stream: &mut (impl Read + Write), job: &mut NetJob) -> NetEnd {
    if stream
        .write_all(&job.request)
        .and_then(|()| stream.flush())
        .is_err()
    {
        return NetEnd::Failed(NetFailure::Io);
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return NetEnd::Closed,
            Ok(n) => {
                if job.receive(&buf[..n]) == sealcell_modem::job::Flow::Done {
                    return NetEnd::Closed;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A TLS peer that closes without close_notify.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return NetEnd::ClosedWithoutNotify;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) =>
            {
                return NetEnd::Failed(NetFailure::Timeout);
            }
            Err(_) => return NetEnd::Failed(NetFailure::Io),
        }
    }
}
