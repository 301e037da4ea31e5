//! The module's own TCP/IP stack (at-contract §8): seven TCP or UDP sockets, plain or TLS, on
//! the emulated PDP context, bridged by the edge to the host's network.
//!
//! The engine keeps what a real module keeps per socket: its state, the bytes received and not
//! yet read (capped: [`RX_BUFFER`], with back-pressure on TCP), the bytes written and not yet
//! sent (capped: [`TX_BUFFER`]), counters, options and the last error. It never touches a
//! socket: it hands the edge [`SocketOp`]s through [`crate::Module::take_work`], and the edge
//! reports what the network did with the `socket_*` methods of [`crate::Module`]
//! (in `events.rs`). The AT commands are [`crate::command::socket`] and [`crate::command::dns`].
//!
//! # Back-pressure
//!
//! Every report of received bytes returns the room left in that socket's buffer; the edge
//! reads no more than that, and stops reading at zero until a [`SocketOp::Resume`] (sent once
//! the host has read [`RESUME_AT`] bytes' worth of room back). So a server that floods a
//! socket fills the kernel's TCP window, not the module. UDP has no window: a datagram that
//! does not fit is dropped, as a real stack drops it.

pub mod errno;
mod events;
mod table;

use std::net::{IpAddr, SocketAddr};

pub(crate) use events::connect_failed;
pub use table::{Datagram, Socket, SocketOptions, SocketState, Sockets};

use crate::ids::JobId;
use crate::job::TlsSettings;

/// Sockets one module has at once (TOBY-L2: ids 0..6).
pub const MAX_SOCKETS: usize = 7;

/// Bytes one socket holds received and unread. An estimate (the manual does not give the
/// TOBY-L2's buffer); large enough for a TLS record and many `+USORD` reads.
///
/// # Security
/// Bounds what a flooding server costs the module, per socket.
pub const RX_BUFFER: usize = 64 * 1024;

/// Datagrams one UDP socket holds unread, whatever their size.
///
/// # Security
/// Bounds the bookkeeping of a flood of empty datagrams.
pub const MAX_DATAGRAMS: usize = 256;

/// Bytes written to one socket and not yet sent by the edge: a `+USOWR` beyond it writes what
/// fits (its answer says how much).
///
/// # Security
/// A peer that stops reading cannot make the module hold the host's writes without bound.
pub const TX_BUFFER: usize = 64 * 1024;

/// Room (bytes) a paused socket must have again before the edge is told to read on: a
/// resume per quarter buffer, not one per `+USORD`.
pub const RESUME_AT: usize = RX_BUFFER / 4;

/// Identifies one socket's dealings with the edge for as long as the process runs: each
/// connect and listen gets a new one (the AT socket id, 0..6, is reused; handles are not,
/// across reboots too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketHandle(pub u64);

/// `+USOCR`'s `<protocol>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// 6.
    Tcp,
    /// 17.
    Udp,
}

impl Protocol {
    /// The IANA protocol number the wire uses.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
}

/// What the edge must do with the network for the module. `Debug` shows the sizes of the
/// bytes to send, never the bytes.
pub enum SocketOp {
    /// TCP: resolve `host` (every address in turn), connect, run the TLS handshake when `tls`
    /// is set, then report [`crate::Module::socket_connected`] or
    /// [`crate::Module::socket_failed`], and read while there is room. UDP: resolve, bind
    /// (`local_port`, or any), connect the socket to the peer, report, and receive.
    Connect {
        /// The socket.
        handle: SocketHandle,
        /// Its protocol.
        protocol: Protocol,
        /// `+USOCR`'s local port (None: any).
        local_port: Option<u16>,
        /// The server, a name or an address.
        host: String,
        /// Its port.
        port: u16,
        /// The `+USOSEC` profile's settings, credentials read and decrypted in memory.
        tls: Option<Box<TlsSettings>>,
        /// `+USOSO` options set before the connect.
        options: SocketOptions,
    },
    /// Listen on `port` of the host: bind, report [`crate::Module::socket_bound`] (or
    /// [`crate::Module::socket_failed`]), then accept connections and report each with
    /// [`crate::Module::socket_accepted`] (TCP), or receive from anyone (UDP).
    Listen {
        /// The socket.
        handle: SocketHandle,
        /// Its protocol.
        protocol: Protocol,
        /// The port.
        port: u16,
        /// `+USOSO` options set before the listen.
        options: SocketOptions,
    },
    /// UDP without a connect: bind (`local_port`, or any) if not yet done, then send one
    /// datagram to `to`; then receive from anyone.
    SendTo {
        /// The socket.
        handle: SocketHandle,
        /// `+USOCR`'s local port.
        local_port: Option<u16>,
        /// `+USOSO` options (applied when the socket is bound).
        options: SocketOptions,
        /// The peer.
        to: SocketAddr,
        /// The datagram.
        bytes: Vec<u8>,
    },
    /// A connected socket: send these bytes (TCP), or this datagram (UDP), then report
    /// [`crate::Module::socket_sent`].
    Send {
        /// The socket.
        handle: SocketHandle,
        /// What to send.
        bytes: Vec<u8>,
    },
    /// The socket has `room` bytes free again: read on, no more than that before the next
    /// report.
    Resume {
        /// The socket.
        handle: SocketHandle,
        /// Room, in bytes.
        room: usize,
    },
    /// Close the socket and forget it; nothing more is reported of it.
    Close {
        /// The socket.
        handle: SocketHandle,
    },
    /// Look a name or an address up, and report [`crate::Module::dns_answered`] with `job`.
    Resolve {
        /// The lookup's id.
        job: JobId,
        /// What to look up.
        query: DnsQuery,
    },
}

impl std::fmt::Debug for SocketOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketOp::Connect {
                handle,
                protocol,
                local_port,
                host,
                port,
                tls,
                options,
            } => f
                .debug_struct("Connect")
                .field("handle", handle)
                .field("protocol", protocol)
                .field("local_port", local_port)
                .field("host", host)
                .field("port", port)
                .field("tls", tls)
                .field("options", options)
                .finish(),
            SocketOp::Listen {
                handle,
                protocol,
                port,
                options,
            } => f
                .debug_struct("Listen")
                .field("handle", handle)
                .field("protocol", protocol)
                .field("port", port)
                .field("options", options)
                .finish(),
            SocketOp::SendTo {
                handle,
                local_port,
                options,
                to,
                bytes,
            } => f
                .debug_struct("SendTo")
                .field("handle", handle)
                .field("local_port", local_port)
                .field("options", options)
                .field("to", to)
                .field("len", &bytes.len())
                .finish(),
            SocketOp::Send { handle, bytes } => f
                .debug_struct("Send")
                .field("handle", handle)
                .field("len", &bytes.len())
                .finish(),
            SocketOp::Resume { handle, room } => f
                .debug_struct("Resume")
                .field("handle", handle)
                .field("room", room)
                .finish(),
            SocketOp::Close { handle } => f.debug_struct("Close").field("handle", handle).finish(),
            SocketOp::Resolve { job, query } => f
                .debug_struct("Resolve")
                .field("job", job)
                .field("query", query)
                .finish(),
        }
    }
}

/// A `+UDNSRN` lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsQuery {
    /// Name to address (`+UDNSRN=0`).
    Name(String),
    /// Address to name (`+UDNSRN=1`).
    Address(IpAddr),
}

/// Why the network failed a socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocketFailure {
    /// The name did not resolve.
    Dns,
    /// The peer refused the connection (a TCP reset to the SYN).
    Refused,
    /// No route to the peer.
    Unreachable,
    /// The connection or handshake took too long.
    Timeout,
    /// The TLS handshake or a certificate check failed (the reason is logged, not shown).
    Tls(String),
    /// The peer reset an established connection.
    Reset,
    /// The local port is in use (a listen, or a bind to `+USOCR`'s local port).
    AddrInUse,
    /// Any other failure of the host's network (binding a port in use, for one).
    Io(String),
}

/// The one answer of a socket command (or `+UDNSRN`) the state or the network refuses:
/// `+CME ERROR: 3`, with `code` left for `+USOER`.
pub(crate) fn refused(module: &mut crate::Module, code: u16) -> sealcell_at::CmeError {
    module.sockets.last_error = code;
    sealcell_at::CmeError::OperationNotAllowed
}

impl SocketFailure {
    /// The `+USOER` code (BSD errno numbering, as the manual's socket error table).
    pub fn errno(&self) -> u16 {
        match self {
            SocketFailure::Dns => errno::EHOSTUNREACH,
            SocketFailure::Refused => errno::ECONNREFUSED,
            SocketFailure::Unreachable => errno::EHOSTUNREACH,
            SocketFailure::Timeout => errno::ETIMEDOUT,
            SocketFailure::Tls(_) => errno::ECONNABORTED,
            SocketFailure::Reset => errno::ECONNRESET,
            SocketFailure::AddrInUse => errno::EADDRINUSE,
            SocketFailure::Io(_) => errno::EIO,
        }
    }
}
