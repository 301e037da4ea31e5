//! UDP sockets: connected (`+USOCO`), bound by a first `+USOST`, or listening (`+USOLI`).
//! Each has a receiver, which reports every datagram with its sender (the engine drops what
//! does not fit: UDP has no window), and a sender.

use std::net::SocketAddr;
use std::sync::Arc;

use sealcell_modem::command::socket::CONNECT_TIMEOUT;
use sealcell_modem::socket::{SocketFailure, SocketOptions};
use tokio::net::UdpSocket;

use super::tcp::Target;
use super::{Inbox, Link, Msg, Role, bind_failure, connect_failure, resolve, unspecified};

/// The largest datagram received whole (an IPv4 UDP payload is at most 65,507 bytes).
///
/// # Security
/// The one receive buffer of a UDP socket.
const MAX_DATAGRAM: usize = 64 * 1024;

/// Binds (`+USOCR`'s local port, or any), connects to the first address of the target that
/// takes it, reports the connect, then receives and sends. Bounded by [`CONNECT_TIMEOUT`]
/// (the resolver may be slow), as the engine's wait is.
pub(super) async fn connect(link: Link, inbox: Inbox, target: Target) {
    // The test bench's latency, before the lookup.
    link.edge.latency().await;
    let dialed =
        match tokio::time::timeout(CONNECT_TIMEOUT + super::EDGE_GRACE, dial(&target)).await {
            Ok(result) => result,
            Err(_) => Err(SocketFailure::Timeout),
        };
    let socket = match dialed {
        Ok(socket) => Arc::new(socket),
        Err(failure) => return link.fail(failure, Role::Main),
    };
    let remote = match socket.peer_addr() {
        Ok(remote) => remote,
        Err(e) => return link.fail(SocketFailure::Io(e.to_string()), Role::Main),
    };
    let reader = receive(link.clone(), Arc::clone(&socket));
    link.edge.with_module(|m| {
        m.socket_connected(link.handle, remote);
        link.edge
            .sockets()
            .add_reader(&link.edge, link.handle, reader);
    });
    send(link, socket, inbox).await;
}

async fn dial(target: &Target) -> Result<UdpSocket, SocketFailure> {
    let addrs = resolve(&target.host, target.port).await?;
    let mut failure = SocketFailure::Dns;
    for addr in addrs {
        let local = SocketAddr::new(unspecified(addr.ip()), target.local_port.unwrap_or(0));
        let socket = match UdpSocket::bind(local).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%local, error = %e, "bind failed");
                failure = bind_failure(&e);
                continue;
            }
        };
        if let Err(e) = apply(&socket, &target.options) {
            tracing::debug!(error = %e, "a socket option was not applied");
        }
        match socket.connect(addr).await {
            Ok(()) => return Ok(socket),
            Err(e) => {
                tracing::debug!(%addr, error = %e, "connect failed; trying the next address");
                failure = connect_failure(&e);
            }
        }
    }
    Err(failure)
}

/// The `+USOSO` options that apply to a UDP socket: TTL and broadcast.
fn apply(socket: &UdpSocket, options: &SocketOptions) -> std::io::Result<()> {
    if options.ttl != 0 {
        socket.set_ttl(u32::from(options.ttl))?;
    }
    socket.set_broadcast(options.broadcast)
}

/// Binds `local` (a first `+USOST`'s any address, or [`super::LISTEN_ADDR`] for `+USOLI`),
/// then receives from anyone and sends what is queued.
pub(super) async fn bind(link: Link, inbox: Inbox, local: SocketAddr, options: SocketOptions) {
    let socket = match UdpSocket::bind(local).await {
        Ok(socket) => Arc::new(socket),
        Err(e) => return link.fail(bind_failure(&e), Role::Main),
    };
    if let Err(e) = apply(&socket, &options) {
        tracing::debug!(error = %e, "a socket option was not applied");
    }
    tracing::debug!(handle = link.handle.0, local = ?socket.local_addr().ok(), "UDP socket bound");
    let reader = receive(link.clone(), Arc::clone(&socket));
    link.edge.with_module(|m| {
        // A `+USOLI` waits for this; a first `+USOST` does not.
        m.socket_bound(link.handle);
        link.edge
            .sockets()
            .add_reader(&link.edge, link.handle, reader);
    });
    send(link, socket, inbox).await;
}

/// Reports every datagram, with its sender, until the socket fails or is closed.
async fn receive(link: Link, socket: Arc<UdpSocket>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut downlink = crate::pace::Schedule::default();
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                tracing::trace!(handle = link.handle.0, %from, len = n, "datagram received");
                link.edge.pace(&mut downlink, n).await;
                link.edge
                    .with_module(|m| m.socket_received(link.handle, Some(from), &buf[..n]));
            }
            // An ICMP error for an earlier datagram (port unreachable): UDP goes on.
            Err(e) if is_transient(&e) => {
                tracing::debug!(handle = link.handle.0, error = %e, "datagram error");
            }
            Err(e) => return link.fail(SocketFailure::Io(e.to_string()), Role::Reader),
        }
    }
}

/// Sends each queued datagram; one that the host's network refuses is lost, as UDP loses
/// it, and still counts as sent (the engine's send buffer is freed either way).
async fn send(link: Link, socket: Arc<UdpSocket>, mut inbox: Inbox) {
    let mut uplink = crate::pace::Schedule::default();
    while let Some(msg) = inbox.ops.recv().await {
        let (len, result) = match msg {
            Msg::Send(bytes) => (bytes.len(), socket.send(&bytes).await),
            Msg::SendTo(to, bytes) => (bytes.len(), socket.send_to(&bytes, to).await),
            Msg::Close => return,
        };
        if let Err(e) = result {
            tracing::debug!(handle = link.handle.0, len, error = %e, "datagram not sent");
        }
        link.edge.pace_up(&mut uplink, len).await;
        link.sent(len);
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::HostUnreachable
            | ErrorKind::NetworkUnreachable
    )
}
