//! The module's sockets (at-contract §8) on the host's network: the [`SocketOp`]s the engine
//! hands out, run as tasks, and what the network does reported back with the module's
//! `socket_*` methods.
//!
//! Each socket the edge knows has an entry in a [`Registry`], by [`SocketHandle`]: a queue
//! of its sends and its close, the room its reader was last granted, and its tasks. A
//! connected TCP socket has two: a reader that reads no more than the room the engine last
//! reported (and waits at zero for a [`SocketOp::Resume`], so a flooding peer fills the
//! kernel's window, not the module), and a writer that writes each send whole and closes
//! with a FIN (TLS: `close_notify`), never blocking the reader. UDP sockets have the same
//! two; a listening TCP socket has one task, which accepts ([`tcp`], [`udp`]).
//!
//! Every report goes through [`Edge::with_module`], so what the engine queues in reaction
//! is dispatched at once. A task that reports its socket failed or closed by the peer
//! forgets its entry under that same lock, so the engine and the edge never disagree on
//! which sockets are at the edge. Ops for a handle the edge does not know (closed here
//! already, or its connect timed out) are ignored.
//!
//! Lock order: module, then registry (the engine dispatches under the module lock); a task
//! never holds the registry while it reports.

mod dns;
mod tcp;
mod udp;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sealcell_modem::job::JobId;
use sealcell_modem::socket::{Protocol, RX_BUFFER, SocketFailure, SocketHandle, SocketOp};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

use crate::{Edge, lock};

/// The host address a listening socket (`+USOLI`) binds: loopback. The emulated module's
/// network is bridged to the host's, and a server on the module must not be reachable from
/// other machines by default: only the host's own programs connect to it.
pub(crate) const LISTEN_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The most bytes one read of a TCP socket takes (less when the engine has less room).
///
/// # Security
/// Bounds the edge's buffer per socket; with the room rule, what a peer can make the
/// module hold is [`RX_BUFFER`].
const READ_CHUNK: usize = 64 * 1024;

/// How long a closed TCP socket may take to write what was queued before its close and send
/// its FIN; then it is dropped as it is.
///
/// # Security
/// A peer that stops reading cannot keep a closed socket (and its task) alive.
const CLOSE_LINGER: Duration = Duration::from_secs(5);

/// The sockets and lookups the edge is running for one module.
#[derive(Default)]
pub(crate) struct Registry(Mutex<Tasks>);

#[derive(Default)]
struct Tasks {
    open: HashMap<SocketHandle, Entry>,
    /// Tasks of sockets the engine forgot that are still ending (a writer sending its FIN,
    /// an aborted task not yet dropped): [`Registry::drain`] stops them too.
    ending: Vec<JoinHandle<()>>,
    lookups: HashMap<JobId, JoinHandle<()>>,
}

/// One socket at the edge.
struct Entry {
    protocol: Protocol,
    ops: mpsc::UnboundedSender<Msg>,
    /// The room granted by the last [`SocketOp::Resume`].
    room: watch::Sender<usize>,
    /// Signalled by a close: the writer's [`CLOSE_LINGER`] starts.
    closing: Arc<Notify>,
    /// The connect-then-write task, the UDP writer or the accept loop.
    main: Option<JoinHandle<()>>,
    /// The reader, once the socket is connected or bound.
    reader: Option<JoinHandle<()>>,
}

/// What the engine asks of a socket's writer, in order.
#[derive(Debug)]
enum Msg {
    /// Write these bytes (TCP) or this datagram (connected UDP).
    Send(Vec<u8>),
    /// Send this datagram to this peer (UDP).
    SendTo(SocketAddr, Vec<u8>),
    /// Write what came before, then end the stream gracefully.
    Close,
}

/// The ends of a new entry its tasks take.
struct Inbox {
    ops: mpsc::UnboundedReceiver<Msg>,
    room: watch::Receiver<usize>,
    closing: Arc<Notify>,
}

/// Which of a socket's tasks reports its end (the other one is stopped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Main,
    Reader,
}

/// Runs one socket op (under the module lock: it only spawns and signals).
pub(crate) fn run(edge: &Edge, op: SocketOp) {
    let sockets = edge.sockets();
    match op {
        SocketOp::Connect {
            handle,
            protocol,
            local_port,
            host,
            port,
            tls,
            options,
        } => {
            tracing::debug!(handle = handle.0, ?protocol, %host, port, tls = tls.is_some(), "socket connect");
            let target = tcp::Target {
                local_port,
                host,
                port,
                tls,
                options,
            };
            match protocol {
                Protocol::Tcp => sockets.open(edge, handle, protocol, None, |link, inbox| {
                    tcp::connect(link, inbox, target)
                }),
                Protocol::Udp => sockets.open(edge, handle, protocol, None, |link, inbox| {
                    udp::connect(link, inbox, target)
                }),
            }
        }
        SocketOp::Listen {
            handle,
            protocol,
            port,
            options,
        } => {
            tracing::debug!(handle = handle.0, ?protocol, port, "socket listen");
            match protocol {
                Protocol::Tcp => sockets.open(edge, handle, protocol, None, move |link, _| {
                    tcp::listen(link, port, options)
                }),
                Protocol::Udp => sockets.open(edge, handle, protocol, None, move |link, inbox| {
                    udp::bind(link, inbox, SocketAddr::new(LISTEN_ADDR, port), options)
                }),
            }
        }
        SocketOp::SendTo {
            handle,
            local_port,
            options,
            to,
            bytes,
        } => {
            tracing::trace!(handle = handle.0, %to, len = bytes.len(), "socket send to");
            let msg = Msg::SendTo(to, bytes);
            let Some(msg) = sockets.queue(handle, msg) else {
                return;
            };
            // The first datagram of an unconnected socket: bind, then send it.
            let local = SocketAddr::new(unspecified(to.ip()), local_port.unwrap_or(0));
            sockets.open(
                edge,
                handle,
                Protocol::Udp,
                Some(msg),
                move |link, inbox| udp::bind(link, inbox, local, options),
            );
        }
        SocketOp::Send { handle, bytes } => {
            tracing::trace!(handle = handle.0, len = bytes.len(), "socket send");
            if sockets.queue(handle, Msg::Send(bytes)).is_some() {
                tracing::debug!(
                    handle = handle.0,
                    "send for a socket the edge does not know"
                );
            }
        }
        SocketOp::Resume { handle, room } => sockets.resume(handle, room),
        SocketOp::Close { handle } => sockets.close(handle),
        SocketOp::Resolve { job, query } => {
            tracing::debug!(job = job.0, ?query, "lookup");
            sockets.spawn_lookup(edge, job, dns::resolve(edge.clone(), job, query));
        }
    }
}

impl Registry {
    /// Stops every socket and lookup; returns their tasks, to be awaited.
    pub(crate) fn drain(&self) -> Vec<JoinHandle<()>> {
        let mut tasks = lock(&self.0);
        let open = std::mem::take(&mut tasks.open);
        let mut all: Vec<JoinHandle<()>> = open
            .into_values()
            .flat_map(|e| e.main.into_iter().chain(e.reader))
            .collect();
        all.append(&mut tasks.ending);
        all.extend(tasks.lookups.drain().map(|(_, t)| t));
        for task in &all {
            task.abort();
        }
        all
    }

    /// How many sockets the edge runs.
    pub(crate) fn len(&self) -> usize {
        lock(&self.0).open.len()
    }

    /// Makes the entry of `handle`, with `first` already queued, and spawns its main task.
    /// The registry is held across the spawn, so the task finds its entry.
    fn open<F>(
        &self,
        edge: &Edge,
        handle: SocketHandle,
        protocol: Protocol,
        first: Option<Msg>,
        main: impl FnOnce(Link, Inbox) -> F,
    ) where
        F: Future<Output = ()> + Send + 'static,
    {
        let (mut entry, inbox) = Entry::new(protocol);
        if let Some(msg) = first {
            // The receiver is in `inbox`: the send cannot fail.
            let _ = entry.ops.send(msg);
        }
        let link = Link {
            edge: edge.clone(),
            handle,
        };
        let mut tasks = lock(&self.0);
        entry.main = Some(edge.handle().spawn(main(link, inbox)));
        if let Some(old) = tasks.open.insert(handle, entry) {
            // Handles are unique per process; a second open of one would be an engine bug.
            tracing::error!(
                handle = handle.0,
                "a socket was opened twice; the first is stopped"
            );
            tasks.end(old);
        }
    }

    /// Registers a connection accepted for the engine as socket `handle`: its reader and
    /// writer, spawned at once. Called under the module lock, within the report of the
    /// accept, so the engine's first op for it finds it.
    fn open_accepted(&self, edge: &Edge, handle: SocketHandle, stream: tokio::net::TcpStream) {
        let (mut entry, inbox) = Entry::new(Protocol::Tcp);
        let link = Link {
            edge: edge.clone(),
            handle,
        };
        let (read, write) = tokio::io::split(stream);
        let mut tasks = lock(&self.0);
        let reader = tcp::read(link.clone(), read, inbox.room);
        entry.reader = Some(edge.handle().spawn(reader));
        let writer = tcp::write(link, write, inbox.ops, inbox.closing);
        entry.main = Some(edge.handle().spawn(writer));
        if let Some(old) = tasks.open.insert(handle, entry) {
            tracing::error!(handle = handle.0, "an accepted socket reuses a handle");
            tasks.end(old);
        }
    }

    /// Spawns the reader of `handle`, if the socket is still open.
    fn add_reader<F>(&self, edge: &Edge, handle: SocketHandle, reader: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut tasks = lock(&self.0);
        let Some(entry) = tasks.open.get_mut(&handle) else {
            return;
        };
        let task = edge.handle().spawn(reader);
        if let Some(old) = entry.reader.replace(task) {
            old.abort();
            tasks.ending.push(old);
        }
    }

    /// Queues `msg` for the writer of `handle`; gives it back when the edge has no such
    /// socket.
    fn queue(&self, handle: SocketHandle, msg: Msg) -> Option<Msg> {
        let tasks = lock(&self.0);
        let Some(entry) = tasks.open.get(&handle) else {
            return Some(msg);
        };
        // A writer that has ended (a failure being reported) drops what comes after.
        let _ = entry.ops.send(msg);
        None
    }

    fn resume(&self, handle: SocketHandle, room: usize) {
        match lock(&self.0).open.get(&handle) {
            Some(entry) => {
                entry.room.send_replace(room);
            }
            None => tracing::debug!(
                handle = handle.0,
                "resume for a socket the edge does not know"
            ),
        }
    }

    /// The engine closed `handle`: a connected TCP socket writes what was queued and ends
    /// its stream (bounded by [`CLOSE_LINGER`]); any other socket is dropped at once.
    fn close(&self, handle: SocketHandle) {
        let mut tasks = lock(&self.0);
        let Some(mut entry) = tasks.open.remove(&handle) else {
            tracing::debug!(
                handle = handle.0,
                "close for a socket the edge does not know"
            );
            return;
        };
        tracing::debug!(handle = handle.0, "socket closed");
        let stream = entry.protocol == Protocol::Tcp && entry.reader.is_some();
        if stream && entry.ops.send(Msg::Close).is_ok() {
            entry.closing.notify_one();
            if let Some(reader) = entry.reader.take() {
                reader.abort();
                tasks.ending.push(reader);
            }
            tasks.ending.extend(entry.main.take());
            tasks.prune();
            return;
        }
        tasks.end(entry);
    }

    /// The peer of TCP socket `handle` ended its stream (its reader reported it): the writer
    /// still sends what the host wrote before, then ends the stream too (bounded by
    /// [`CLOSE_LINGER`]), as a half-closed peer may still read.
    fn peer_closed(&self, handle: SocketHandle) {
        let mut tasks = lock(&self.0);
        let Some(mut entry) = tasks.open.remove(&handle) else {
            return;
        };
        // The reporting reader returns right after.
        drop(entry.reader.take());
        if entry.ops.send(Msg::Close).is_ok() {
            entry.closing.notify_one();
            tasks.ending.extend(entry.main.take());
            tasks.prune();
            return;
        }
        tasks.end(entry);
    }

    /// Forgets `handle` after its task `me` reported its end, stopping the other one.
    fn forget(&self, handle: SocketHandle, me: Role) {
        let mut tasks = lock(&self.0);
        let Some(mut entry) = tasks.open.remove(&handle) else {
            return;
        };
        // The reporting task returns right after: it is left to end by itself.
        match me {
            Role::Main => drop(entry.main.take()),
            Role::Reader => drop(entry.reader.take()),
        }
        tasks.end(entry);
    }

    fn spawn_lookup<F>(&self, edge: &Edge, job: JobId, lookup: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let registry = edge.clone();
        let mut tasks = lock(&self.0);
        let task = edge.handle().spawn(async move {
            lookup.await;
            lock(&registry.sockets().0).lookups.remove(&job);
        });
        if let Some(old) = tasks.lookups.insert(job, task) {
            tracing::error!(job = job.0, "a lookup id was started twice");
            old.abort();
        }
    }
}

impl Tasks {
    /// Aborts an entry's tasks; they are awaited by [`Registry::drain`] if still ending.
    fn end(&mut self, entry: Entry) {
        for task in entry.main.into_iter().chain(entry.reader) {
            task.abort();
            self.ending.push(task);
        }
        self.prune();
    }

    fn prune(&mut self) {
        self.ending.retain(|t| !t.is_finished());
    }
}

impl Entry {
    /// A socket without tasks yet, and the ends its tasks take.
    fn new(protocol: Protocol) -> (Entry, Inbox) {
        let (ops, ops_rx) = mpsc::unbounded_channel();
        let (room, room_rx) = watch::channel(RX_BUFFER);
        let closing = Arc::new(Notify::new());
        let inbox = Inbox {
            ops: ops_rx,
            room: room_rx,
            closing: Arc::clone(&closing),
        };
        let entry = Entry {
            protocol,
            ops,
            room,
            closing,
            main: None,
            reader: None,
        };
        (entry, inbox)
    }
}

/// A socket's tasks' way to report: the edge and the handle.
#[derive(Clone)]
struct Link {
    edge: Edge,
    handle: SocketHandle,
}

impl Link {
    /// The network failed the socket: report it and forget the handle.
    fn fail(&self, failure: SocketFailure, me: Role) {
        tracing::debug!(handle = self.handle.0, ?failure, "socket failed");
        self.edge.with_module(|m| {
            m.socket_failed(self.handle, failure);
            self.edge.sockets().forget(self.handle, me);
        });
    }

    /// The peer ended its stream: report it and forget the handle; what the host wrote
    /// before still goes out.
    /// (Its reader saw the end: the writer may still drain.)
    fn closed(&self) {
        tracing::debug!(handle = self.handle.0, "socket closed by the peer");
        self.edge.with_module(|m| {
            m.socket_closed(self.handle);
            self.edge.sockets().peer_closed(self.handle);
        });
    }

    fn sent(&self, n: usize) {
        self.edge.with_module(|m| m.socket_sent(self.handle, n));
    }
}

/// The unspecified address of `ip`'s family (a client socket's bind).
fn unspecified(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// How much longer than the engine's own deadline (`CONNECT_TIMEOUT`) the edge lets a connect
/// run: the engine's timeout decides what the host is told; this only ends the task.
pub(super) const EDGE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a connect (or a bind before it) failed.
fn connect_failure(e: &std::io::Error) -> SocketFailure {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => SocketFailure::Refused,
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => SocketFailure::Unreachable,
        ErrorKind::TimedOut => SocketFailure::Timeout,
        ErrorKind::AddrInUse => SocketFailure::AddrInUse,
        _ => SocketFailure::Io(e.to_string()),
    }
}

/// Why binding a local port failed.
fn bind_failure(e: &std::io::Error) -> SocketFailure {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => SocketFailure::AddrInUse,
        _ => SocketFailure::Io(e.to_string()),
    }
}

/// Why an established connection failed.
fn stream_failure(e: &std::io::Error) -> SocketFailure {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted => {
            SocketFailure::Reset
        }
        _ => SocketFailure::Io(e.to_string()),
    }
}

/// Resolves `host` (a name or an address) for a connect: every address, in the resolver's
/// order; [`SocketFailure::Dns`] when there is none.
pub(crate) async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, SocketFailure> {
    match tokio::net::lookup_host((host, port)).await {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                return Err(SocketFailure::Dns);
            }
            Ok(addrs)
        }
        Err(e) => {
            tracing::debug!(%host, error = %e, "name resolution failed");
            Err(SocketFailure::Dns)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Error, ErrorKind};

    use super::*;

    #[test]
    fn connect_errors_map_to_the_failures_usoer_numbers() {
        let failure = |kind| connect_failure(&Error::from(kind));
        assert_eq!(
            failure(ErrorKind::ConnectionRefused),
            SocketFailure::Refused
        );
        assert_eq!(
            failure(ErrorKind::HostUnreachable),
            SocketFailure::Unreachable
        );
        assert_eq!(
            failure(ErrorKind::NetworkUnreachable),
            SocketFailure::Unreachable
        );
        assert_eq!(failure(ErrorKind::TimedOut), SocketFailure::Timeout);
        // `+USOCR`'s local port taken: 98, as for a listen.
        assert_eq!(failure(ErrorKind::AddrInUse), SocketFailure::AddrInUse);
        assert_eq!(SocketFailure::AddrInUse.errno(), 98);
        assert!(matches!(
            failure(ErrorKind::PermissionDenied),
            SocketFailure::Io(_)
        ));
    }

    #[test]
    fn a_peer_that_resets_an_established_stream_is_a_reset() {
        let failure = |kind| stream_failure(&Error::from(kind));
        assert_eq!(failure(ErrorKind::ConnectionReset), SocketFailure::Reset);
        assert_eq!(failure(ErrorKind::BrokenPipe), SocketFailure::Reset);
        assert!(matches!(failure(ErrorKind::Other), SocketFailure::Io(_)));
    }

    #[test]
    fn listening_sockets_stay_on_the_hosts_loopback() {
        assert!(LISTEN_ADDR.is_loopback());
    }
}
