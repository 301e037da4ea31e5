//! The socket error codes `+USOER` and `+USOCTL=<s>,1` report: the u-blox AT manual's
//! "Internal TCP/UDP/IP stack class error codes" appendix, which numbers them as Linux's errno.

/// No error.
pub const NONE: u16 = 0;
/// Operation not permitted (a command on a socket in the wrong state).
pub const EPERM: u16 = 1;
/// I/O error.
pub const EIO: u16 = 5;
/// Bad file descriptor: no such socket.
pub const EBADF: u16 = 9;
/// Try again: the socket's send buffer is full.
pub const EAGAIN: u16 = 11;
/// Out of memory: no free socket.
pub const ENOMEM: u16 = 12;
/// Invalid argument.
pub const EINVAL: u16 = 22;
/// Too many open files: all sockets in use.
pub const EMFILE: u16 = 24;
/// Broken pipe: writing to a socket the peer closed.
pub const EPIPE: u16 = 32;
/// Message too long.
pub const EMSGSIZE: u16 = 90;
/// Operation not supported on the socket (TCP command on UDP, or the reverse).
pub const EOPNOTSUPP: u16 = 95;
/// Address in use (listening on a port that is taken).
pub const EADDRINUSE: u16 = 98;
/// Network unreachable (no registration, no context).
pub const ENETUNREACH: u16 = 101;
/// Connection aborted (a TLS handshake that failed).
pub const ECONNABORTED: u16 = 103;
/// Connection reset by the peer.
pub const ECONNRESET: u16 = 104;
/// Already connected.
pub const EISCONN: u16 = 106;
/// Not connected.
pub const ENOTCONN: u16 = 107;
/// Timed out.
pub const ETIMEDOUT: u16 = 110;
/// Connection refused.
pub const ECONNREFUSED: u16 = 111;
/// No route to host (also: a name that does not resolve).
pub const EHOSTUNREACH: u16 = 113;
/// A connect already in progress.
pub const EALREADY: u16 = 114;
