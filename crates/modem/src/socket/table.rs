//! The socket table: seven slots, each a socket's state, buffers and counters.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use super::{
    MAX_DATAGRAMS, MAX_SOCKETS, Protocol, RESUME_AT, RX_BUFFER, SocketHandle, SocketOp, TX_BUFFER,
    errno,
};
use crate::ids::{ChannelId, JobId};

/// Where a socket is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketState {
    /// Made by `+USOCR`; nothing asked of the network yet.
    Created,
    /// `+USOCO` waits for the connection (and its TLS handshake).
    Connecting {
        /// The wait the command's channel is in.
        waiter: JobId,
        /// When the connect fails with `ETIMEDOUT`.
        deadline: Instant,
    },
    /// Connected (TCP established, or UDP with a default peer).
    Connected,
    /// `+USOLI` waits for the edge to bind the port.
    Binding {
        /// The wait the command's channel is in.
        waiter: JobId,
        /// When the listen fails with `ETIMEDOUT`.
        deadline: Instant,
    },
    /// `+USOLI`: accepting connections (TCP) or datagrams (UDP).
    Listening,
    /// UDP used by `+USOST` without a connect: bound, receiving from anyone.
    Bound,
    /// The peer closed (TCP): what is buffered can still be read; the socket is freed, with
    /// `+UUSOCL`, once it is.
    PeerClosed,
}

/// `+USOSO` options. Kept and read back; the edge applies no-delay, keep-alive, reuse-address,
/// TTL and broadcast (TOS, linger and keep-idle are kept only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketOptions {
    /// Level 0 option 1: IP type of service.
    pub tos: u8,
    /// Level 0 option 2: IP time to live (0: the host's default).
    pub ttl: u8,
    /// Level 65535 option 4: reuse the local address.
    pub reuse_addr: bool,
    /// Level 65535 option 8: TCP keep-alive.
    pub keep_alive: bool,
    /// Level 65535 option 32: UDP broadcast.
    pub broadcast: bool,
    /// Level 65535 option 128: linger on close (its time, 0..32767 ms), when set.
    pub linger: Option<u16>,
    /// Level 6 option 1: TCP no-delay.
    pub no_delay: bool,
    /// Level 6 option 2: TCP keep-idle time, ms.
    pub keep_idle_ms: u32,
}

/// One received datagram, with where it came from. `Debug` shows its size, not its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Its sender.
    pub from: SocketAddr,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Datagram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Datagram")
            .field("from", &self.from)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// One socket. `Debug` shows sizes, never the bytes (they may be a TLS socket's plaintext).
pub struct Socket {
    /// Its process-wide handle.
    pub handle: SocketHandle,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The channel that made it: its URCs go there (to every channel once that one is gone).
    pub owner: ChannelId,
    /// `+USOCR`'s local port.
    pub local_port: Option<u16>,
    /// Its state.
    pub state: SocketState,
    /// `+USOSEC`: the security profile, when TLS is on.
    pub tls_profile: Option<u8>,
    /// `+USOSO`.
    pub options: SocketOptions,
    /// The peer, once connected.
    pub remote: Option<SocketAddr>,
    /// TCP bytes received and not yet read.
    pub rx: VecDeque<u8>,
    /// UDP datagrams received and not yet read.
    pub datagrams: VecDeque<Datagram>,
    /// Bytes in [`Socket::datagrams`].
    pub datagram_bytes: usize,
    /// The edge was told the buffer is full (it reads no more until a resume).
    pub paused: bool,
    /// Bytes written and not yet sent by the edge.
    pub unsent: usize,
    /// Bytes sent, in total.
    pub sent: u64,
    /// Bytes received, in total.
    pub received: u64,
    /// This socket's last error (`+USOCTL=<s>,1`).
    pub last_error: u16,
    /// Whether the edge knows it (a close must be sent to it).
    pub at_edge: bool,
    /// The test bench's `cut-after`: bytes of the stream still let through before it ends.
    pub cut_left: Option<u64>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("handle", &self.handle)
            .field("protocol", &self.protocol)
            .field("owner", &self.owner)
            .field("state", &self.state)
            .field("tls_profile", &self.tls_profile)
            .field("remote", &self.remote)
            .field("pending", &self.pending())
            .field("datagrams", &self.datagrams.len())
            .field("unsent", &self.unsent)
            .field("sent", &self.sent)
            .field("received", &self.received)
            .field("last_error", &self.last_error)
            .finish_non_exhaustive()
    }
}

impl Socket {
    fn new(handle: SocketHandle, protocol: Protocol, owner: ChannelId) -> Socket {
        Socket {
            handle,
            protocol,
            owner,
            local_port: None,
            state: SocketState::Created,
            tls_profile: None,
            options: SocketOptions::default(),
            remote: None,
            rx: VecDeque::new(),
            datagrams: VecDeque::new(),
            datagram_bytes: 0,
            paused: false,
            unsent: 0,
            sent: 0,
            received: 0,
            last_error: errno::NONE,
            at_edge: false,
            cut_left: None,
        }
    }

    /// Bytes waiting to be read.
    pub fn pending(&self) -> usize {
        match self.protocol {
            Protocol::Tcp => self.rx.len(),
            Protocol::Udp => self.datagram_bytes,
        }
    }

    /// Room left in the receive buffer.
    pub fn room(&self) -> usize {
        RX_BUFFER.saturating_sub(self.pending())
    }

    /// Room left in the send buffer.
    pub fn send_room(&self) -> usize {
        TX_BUFFER.saturating_sub(self.unsent)
    }

    /// The 27.007-style TCP state `+USOCTL=<s>,10` reports.
    pub fn tcp_state(&self) -> u8 {
        match self.state {
            SocketState::Created | SocketState::Bound => 0,
            SocketState::Listening => 1,
            SocketState::Connecting { .. } | SocketState::Binding { .. } => 2,
            SocketState::Connected => 4,
            SocketState::PeerClosed => 7,
        }
    }

    /// Takes up to `max` received TCP bytes; returns the resume to send, if the socket was
    /// paused and now has room enough.
    pub fn read(&mut self, max: usize) -> (Vec<u8>, Option<SocketOp>) {
        let n = max.min(self.rx.len());
        let bytes: Vec<u8> = self.rx.drain(..n).collect();
        (bytes, self.resume())
    }

    /// Takes the next datagram, or up to `max` bytes of it (the rest of it is lost, as a
    /// real stack loses it); returns the resume to send, as [`Socket::read`].
    pub fn read_datagram(&mut self, max: usize) -> (Option<Datagram>, Option<SocketOp>) {
        let Some(mut d) = self.datagrams.pop_front() else {
            return (None, None);
        };
        self.datagram_bytes -= d.bytes.len();
        d.bytes.truncate(max);
        (Some(d), self.resume())
    }

    fn resume(&mut self) -> Option<SocketOp> {
        if self.paused && self.room() >= RESUME_AT {
            self.paused = false;
            return Some(SocketOp::Resume {
                handle: self.handle,
                room: self.room(),
            });
        }
        None
    }

    /// Takes received TCP bytes (no more than the room the edge was given); returns the room
    /// left, and marks the socket paused when there is none.
    pub(crate) fn take_stream(&mut self, bytes: &[u8]) -> usize {
        let fits = bytes.len().min(self.room());
        if fits < bytes.len() {
            tracing::warn!(
                handle = self.handle.0,
                dropped = bytes.len() - fits,
                "the edge reported more than the room it was given"
            );
        }
        self.rx.extend(&bytes[..fits]);
        self.received += fits as u64;
        let room = self.room();
        self.paused = room == 0;
        room
    }

    /// Takes one received datagram if it fits; returns whether it did.
    pub(crate) fn take_datagram(&mut self, from: SocketAddr, bytes: &[u8]) -> bool {
        // An empty datagram: `+UUSORF`/`+USORF` count bytes and could not announce it.
        if bytes.is_empty() || bytes.len() > self.room() || self.datagrams.len() >= MAX_DATAGRAMS {
            return false;
        }
        self.datagram_bytes += bytes.len();
        self.received += bytes.len() as u64;
        self.datagrams.push_back(Datagram {
            from,
            bytes: bytes.to_vec(),
        });
        true
    }
}

/// The seven sockets of a module (volatile: a reboot closes them all), and the lookups in
/// progress.
#[derive(Debug, Default)]
pub struct Sockets {
    slots: [Option<Socket>; MAX_SOCKETS],
    /// The last handle given; kept across reboots ([`Sockets::after_reboot`]), so the edge's
    /// tasks of a socket from before can never report into one made after.
    next_handle: u64,
    /// `+USOER`: the error of the last socket command.
    pub last_error: u16,
    /// `+UDNSRN` lookups waiting for the edge, and when each gives up.
    pub(crate) lookups: Vec<(JobId, Instant)>,
}

impl Sockets {
    /// Makes a socket in the lowest free slot; `None` when all seven are in use.
    pub fn create(&mut self, protocol: Protocol, owner: ChannelId) -> Option<u8> {
        let slot = self.slots.iter().position(Option::is_none)?;
        let handle = self.new_handle();
        self.slots[slot] = Some(Socket::new(handle, protocol, owner));
        u8::try_from(slot).ok()
    }

    fn new_handle(&mut self) -> SocketHandle {
        self.next_handle += 1;
        SocketHandle(self.next_handle)
    }

    /// Gives socket `id` a new handle before it goes to the edge again (a `+USOCO` after a
    /// failed one): a late report of the old attempt then names a handle no socket has.
    pub fn rehandle(&mut self, id: u8) -> Option<SocketHandle> {
        let handle = self.new_handle();
        let s = self.get_mut(id)?;
        s.handle = handle;
        Some(handle)
    }

    /// The table after a reboot: empty, handles going on from where they were.
    pub(crate) fn after_reboot(&self) -> Sockets {
        Sockets {
            next_handle: self.next_handle,
            ..Sockets::default()
        }
    }

    /// The socket with AT id `id`.
    pub fn get(&self, id: u8) -> Option<&Socket> {
        self.slots.get(usize::from(id))?.as_ref()
    }

    /// The socket with AT id `id`, to change.
    pub fn get_mut(&mut self, id: u8) -> Option<&mut Socket> {
        self.slots.get_mut(usize::from(id))?.as_mut()
    }

    /// The AT id of the socket with `handle`.
    pub fn id_of(&self, handle: SocketHandle) -> Option<u8> {
        let slot = self
            .slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.handle == handle))?;
        u8::try_from(slot).ok()
    }

    /// Frees slot `id`; returns the close the edge needs, if it knew the socket.
    pub fn remove(&mut self, id: u8) -> Option<SocketOp> {
        let socket = self.slots.get_mut(usize::from(id))?.take()?;
        socket.at_edge.then_some(SocketOp::Close {
            handle: socket.handle,
        })
    }

    /// Every socket in use, with its id.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &Socket)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((u8::try_from(i).ok()?, s.as_ref()?)))
    }

    /// The earliest deadline of a connect, a listen or a lookup.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flatten()
            .filter_map(|s| match s.state {
                SocketState::Connecting { deadline, .. }
                | SocketState::Binding { deadline, .. } => Some(deadline),
                _ => None,
            })
            .chain(self.lookups.iter().map(|(_, deadline)| *deadline))
            .min()
    }
}
