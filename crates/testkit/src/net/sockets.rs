//! The module's sockets on [`ScriptedNet`]: the same scripted servers answer them, on the same
//! virtual clock.
//!
//! A TCP connect to a scripted `host:port` succeeds [`CONNECT_DELAY`] later; the server then
//! sends its pieces, each at its delay after the connect, echoes what it is sent when its script
//! says [`Script::echo`], and ends as its script ends (close, hang or reset) once its pieces are
//! sent. A connect to a port nothing is scripted on is refused; a name not in the scripted
//! names ([`ScriptedNet::name`]) does not resolve. UDP works the same, datagram by datagram:
//! each piece, and each echo, is one datagram from the server. Delivery honours the room the
//! module gives, as the real edge does, so back-pressure is testable on virtual time.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use sealcell_modem::Module;
use sealcell_modem::socket::{
    DnsQuery, Protocol, RX_BUFFER, SocketFailure, SocketHandle, SocketOp,
};

use super::{Script, ScriptEnd, ScriptedNet};

/// How long a scripted TCP connect (or its refusal) takes: none, so a transcript needs no
/// wait after `+USOCO`.
pub const CONNECT_DELAY: Duration = Duration::ZERO;

/// How long a connect to a black hole ([`ScriptedNet::blackhole`]) waits: for ever, as far as
/// any test goes (the module's own timeout ends it first).
const NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// What [`ScriptedNet::socket_sent`] keeps: a test that floods a socket does not keep every
/// byte it sent.
pub const SENT_LOG_LIMIT: usize = 1 << 20;

/// The address a listening socket's scripted client dials from.
pub const CLIENT_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200));

/// One socket the module handed to the network.
#[derive(Debug)]
pub(crate) struct OpenSocket {
    protocol: Protocol,
    /// The scripted server it talks to (connected sockets), and its address.
    peer: Option<(Script, SocketAddr)>,
    /// When its connect completes (or completed), and the pieces' clock starts.
    connected: Instant,
    /// Whether the module has been told of the connect.
    announced: bool,
    /// The next piece of the script to send.
    next: usize,
    /// What is due and not yet delivered (the module's room ran out), with its sender.
    inbox: VecDeque<(SocketAddr, Vec<u8>)>,
    /// The room the module gave.
    room: usize,
    /// A listening TCP socket (what [`ScriptedNet::dial`] connects to).
    listening: bool,
}

impl OpenSocket {
    /// A socket of `protocol` talking to `peer`, connected at `connected` (`announced`: the
    /// module knows), nothing sent or received yet.
    fn new(
        protocol: Protocol,
        peer: Option<(Script, SocketAddr)>,
        connected: Instant,
        announced: bool,
    ) -> OpenSocket {
        OpenSocket {
            protocol,
            peer,
            connected,
            announced,
            next: 0,
            inbox: VecDeque::new(),
            room: RX_BUFFER,
            listening: false,
        }
    }
}

/// A peer that says nothing and stays.
fn silent() -> Script {
    Script {
        pieces: Vec::new(),
        end: ScriptEnd::Hang,
        echo: false,
    }
}

/// The socket side of a [`ScriptedNet`].
#[derive(Debug, Default)]
pub(crate) struct Sockets {
    pub(crate) open: std::collections::BTreeMap<SocketHandle, OpenSocket>,
    /// Connects that fail, when they fail.
    failing: Vec<(SocketHandle, Instant, SocketFailure)>,
    /// Lookups to answer.
    lookups: Vec<(sealcell_modem::job::JobId, Result<String, SocketFailure>)>,
}

impl ScriptedNet {
    /// Scripts a name: `+UDNSRN` and `+USOCO` resolve `name` to `ip` (and `ip` back to `name`).
    pub fn name(&mut self, name: &str, ip: IpAddr) {
        self.names.insert(name.to_string(), ip);
    }

    /// Makes `host:port` a black hole: a TCP connect to it is never answered (no SYN-ACK, no
    /// reset), so the module's connect timeout decides.
    pub fn blackhole(&mut self, host: &str, port: u16) {
        self.blackholes.insert((host.to_string(), port));
    }

    /// What the module's sockets sent, in order, with the socket (the first
    /// [`SENT_LOG_LIMIT`] bytes).
    pub fn socket_sent(&self) -> &[(SocketHandle, Vec<u8>)] {
        &self.socket_log
    }

    /// The module's sockets the network still holds.
    pub fn open_sockets(&self) -> usize {
        self.sockets.open.len()
    }

    /// The handles of the module's sockets the network still holds.
    pub fn socket_handles(&self) -> Vec<SocketHandle> {
        self.sockets.open.keys().copied().collect()
    }

    /// Keeps what a socket sent for [`ScriptedNet::socket_sent`], the first
    /// [`SENT_LOG_LIMIT`] bytes of it.
    fn log_sent(&mut self, handle: SocketHandle, bytes: &[u8]) {
        let room = SENT_LOG_LIMIT.saturating_sub(self.socket_log_bytes);
        let kept = &bytes[..bytes.len().min(room)];
        if !kept.is_empty() {
            self.socket_log_bytes += kept.len();
            self.socket_log.push((handle, kept.to_vec()));
        }
    }

    fn resolve(&self, host: &str) -> Option<IpAddr> {
        host.parse().ok().or_else(|| self.names.get(host).copied())
    }

    /// The script of the server at `addr` (by address, or by a scripted name for it).
    fn script_at(&self, host: &str, addr: SocketAddr) -> Option<Script> {
        let port = addr.port();
        self.servers
            .get(&(host.to_string(), port))
            .or_else(|| self.servers.get(&(addr.ip().to_string(), port)))
            .or_else(|| {
                self.names
                    .iter()
                    .filter(|(_, ip)| **ip == addr.ip())
                    .find_map(|(name, _)| self.servers.get(&(name.clone(), port)))
            })
            .cloned()
    }

    pub(crate) fn socket_op(&mut self, op: SocketOp) {
        let now = self.now.unwrap_or_else(Instant::now);
        match op {
            SocketOp::Connect {
                handle,
                protocol,
                host,
                port,
                ..
            } => {
                let Some(ip) = self.resolve(&host) else {
                    self.sockets
                        .failing
                        .push((handle, now + CONNECT_DELAY, SocketFailure::Dns));
                    return;
                };
                let addr = SocketAddr::new(ip, port);
                if protocol == Protocol::Tcp
                    && (self.blackholes.contains(&(host.clone(), port))
                        || self.blackholes.contains(&(ip.to_string(), port)))
                {
                    self.sockets
                        .open
                        .insert(handle, OpenSocket::new(protocol, None, now + NEVER, false));
                    return;
                }
                let script = self.script_at(&host, addr);
                if script.is_none() && protocol == Protocol::Tcp {
                    self.sockets.failing.push((
                        handle,
                        now + CONNECT_DELAY,
                        SocketFailure::Refused,
                    ));
                    return;
                }
                // UDP "connects" at once: it only fixes the peer.
                let delay = match protocol {
                    Protocol::Tcp => CONNECT_DELAY + self.shaping.latency,
                    Protocol::Udp => Duration::ZERO,
                };
                let script = script.map(|s| s.shaped(self.shaping, false));
                let peer = Some((script.unwrap_or_else(silent), addr));
                self.sockets
                    .open
                    .insert(handle, OpenSocket::new(protocol, peer, now + delay, false));
            }
            SocketOp::Listen {
                handle, protocol, ..
            } => {
                self.bound_reports.push(handle);
                self.sockets.open.insert(
                    handle,
                    OpenSocket {
                        listening: true,
                        ..OpenSocket::new(protocol, None, now, true)
                    },
                );
            }
            SocketOp::SendTo {
                handle, to, bytes, ..
            } => {
                self.log_sent(handle, &bytes);
                let script = self.script_at(&to.ip().to_string(), to);
                let open = self
                    .sockets
                    .open
                    .entry(handle)
                    .or_insert_with(|| OpenSocket::new(Protocol::Udp, None, now, true));
                if let Some(script) = script {
                    if script.echo {
                        open.inbox.push_back((to, bytes.clone()));
                    }
                    if open.peer.is_none() {
                        // The server's pieces start with the first datagram sent to it.
                        open.peer = Some((script, to));
                        open.connected = now;
                    }
                }
                self.sent_reports.push((handle, bytes.len()));
            }
            SocketOp::Send { handle, bytes } => {
                self.log_sent(handle, &bytes);
                if let Some(open) = self.sockets.open.get_mut(&handle)
                    && let Some((script, addr)) = &open.peer
                    && script.echo
                {
                    open.inbox.push_back((*addr, bytes.clone()));
                }
                self.sent_reports.push((handle, bytes.len()));
            }
            SocketOp::Resume { handle, room } => {
                if let Some(open) = self.sockets.open.get_mut(&handle) {
                    open.room = room;
                }
            }
            SocketOp::Close { handle } => {
                self.sockets.open.remove(&handle);
                self.sockets.failing.retain(|(h, _, _)| *h != handle);
            }
            SocketOp::Resolve { job, query } => {
                let answer = match query {
                    DnsQuery::Name(name) => self
                        .resolve(&name)
                        .map(|ip| ip.to_string())
                        .ok_or(SocketFailure::Dns),
                    DnsQuery::Address(ip) => self
                        .names
                        .iter()
                        .find(|(_, a)| **a == ip)
                        .map(|(name, _)| name.clone())
                        .ok_or(SocketFailure::Dns),
                };
                self.sockets.lookups.push((job, answer));
            }
        }
    }

    /// Makes a scripted client connect to the module's listening socket on `port` (from
    /// [`CLIENT_ADDR`]); it then behaves as the server scripted at `client:0`, if any.
    pub fn dial(&mut self, module: &mut Module, port: u16) -> bool {
        let now = self.now.unwrap_or_else(Instant::now);
        let listener = self
            .sockets
            .open
            .iter()
            .find_map(|(h, o)| (o.listening && o.protocol == Protocol::Tcp).then_some(*h));
        let Some(listener) = listener else {
            return false;
        };
        let remote = SocketAddr::new(CLIENT_ADDR, 40_000);
        let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        let Some(handle) = module.socket_accepted(listener, remote, local) else {
            return false;
        };
        let script = self.script_at("client", SocketAddr::new(CLIENT_ADDR, 0));
        let peer = Some((script.unwrap_or_else(silent), remote));
        self.sockets
            .open
            .insert(handle, OpenSocket::new(Protocol::Tcp, peer, now, true));
        true
    }

    /// When the next socket event is due.
    pub(crate) fn next_socket_event(&self) -> Option<Instant> {
        let failing = self.sockets.failing.iter().map(|(_, at, _)| *at);
        let open = self.sockets.open.values().filter_map(|o| {
            if !o.announced {
                return Some(o.connected);
            }
            let (script, _) = o.peer.as_ref()?;
            match script.pieces.get(o.next) {
                Some((at, _)) => Some(o.connected + *at),
                None if script.end != ScriptEnd::Hang && o.inbox.is_empty() => Some(o.connected),
                None => None,
            }
        });
        failing.chain(open).min()
    }

    /// Reports to `module` everything due at `now`; returns whether anything was.
    pub fn pump_sockets(&mut self, module: &mut Module, now: Instant) -> bool {
        self.now = Some(now);
        let mut progressed = false;
        for handle in std::mem::take(&mut self.bound_reports) {
            module.socket_bound(handle);
            progressed = true;
        }
        for (handle, n) in std::mem::take(&mut self.sent_reports) {
            module.socket_sent(handle, n);
            progressed = true;
        }
        for (job, answer) in std::mem::take(&mut self.sockets.lookups) {
            module.dns_answered(job, answer);
            progressed = true;
        }
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.sockets.failing)
            .into_iter()
            .partition(|(_, at, _)| *at <= now);
        self.sockets.failing = later;
        for (handle, _, why) in due {
            module.socket_failed(handle, why);
            progressed = true;
        }
        let handles: Vec<SocketHandle> = self.sockets.open.keys().copied().collect();
        for handle in handles {
            progressed |= self.pump_one(module, handle, now);
        }
        progressed
    }

    fn pump_one(&mut self, module: &mut Module, handle: SocketHandle, now: Instant) -> bool {
        let Some(open) = self.sockets.open.get_mut(&handle) else {
            return false;
        };
        if open.connected > now {
            return false;
        }
        let mut progressed = false;
        if !open.announced {
            open.announced = true;
            if let Some((_, addr)) = &open.peer {
                module.socket_connected(handle, *addr);
                progressed = true;
            }
        }
        let Some((script, addr)) = open.peer.clone() else {
            return progressed;
        };
        while let Some((at, bytes)) = script.pieces.get(open.next) {
            if open.connected + *at > now {
                break;
            }
            open.next += 1;
            open.inbox.push_back((addr, bytes.clone()));
        }
        while let Some((from, bytes)) = open.inbox.pop_front() {
            match open.protocol {
                Protocol::Tcp => {
                    if open.room == 0 {
                        open.inbox.push_front((from, bytes));
                        break;
                    }
                    let n = bytes.len().min(open.room);
                    open.room = module.socket_received(handle, None, &bytes[..n]);
                    if n < bytes.len() {
                        open.inbox.push_front((from, bytes[n..].to_vec()));
                    }
                }
                Protocol::Udp => {
                    open.room = module.socket_received(handle, Some(from), &bytes);
                }
            }
            progressed = true;
        }
        let all_sent = open.next >= script.pieces.len() && open.inbox.is_empty();
        if all_sent && open.protocol == Protocol::Tcp {
            match script.end {
                ScriptEnd::Hang => {}
                ScriptEnd::Close => {
                    self.sockets.open.remove(&handle);
                    module.socket_closed(handle);
                    progressed = true;
                }
                ScriptEnd::Reset => {
                    self.sockets.open.remove(&handle);
                    module.socket_failed(handle, SocketFailure::Reset);
                    progressed = true;
                }
            }
        }
        progressed
    }
}
