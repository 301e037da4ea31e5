//! TCP sockets: the connect (every address in turn, then the TLS handshake of
//! [`crate::net::handshake`]), the reader that keeps to the engine's room, the writer, and
//! the accept loop of a listening socket.

use std::net::SocketAddr;
use std::sync::Arc;

use sealcell_https::tls::is_unexpected_eof;
use sealcell_modem::command::socket::CONNECT_TIMEOUT;
use sealcell_modem::job::TlsSettings;
use sealcell_modem::socket::{RX_BUFFER, SocketFailure, SocketOptions};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, mpsc, watch};

use super::{
    CLOSE_LINGER, Inbox, LISTEN_ADDR, Link, Msg, READ_CHUNK, Role, bind_failure, connect_failure,
    resolve, stream_failure, unspecified,
};

/// Where a `+USOCO` connects, and how.
pub(super) struct Target {
    pub(super) local_port: Option<u16>,
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) tls: Option<Box<TlsSettings>>,
    pub(super) options: SocketOptions,
}

/// Connects (and runs the TLS handshake), reports it, then writes until the socket closes.
/// Bounded by [`CONNECT_TIMEOUT`], as the engine's wait is.
pub(super) async fn connect(link: Link, inbox: Inbox, mut target: Target) {
    let tls = target.tls.take();
    // The test bench's latency, before the connect.
    link.edge.latency().await;
    let handshake = async {
        let (tcp, remote) = dial(&target).await?;
        let Some(settings) = tls.as_deref() else {
            return Ok(Connected::Plain(tcp, remote));
        };
        match crate::net::handshake(settings, &target.host, tcp).await {
            Ok(tls) => Ok(Connected::Tls(Box::new(tls), remote)),
            Err(why) => Err(SocketFailure::Tls(why)),
        }
    };
    let connected = match tokio::time::timeout(CONNECT_TIMEOUT + super::EDGE_GRACE, handshake).await
    {
        Ok(result) => result,
        Err(_) => Err(SocketFailure::Timeout),
    };
    // The decrypted credentials were for the handshake: zeroized now, not kept for the
    // connection's life.
    drop(tls);
    match connected {
        Ok(Connected::Plain(tcp, remote)) => established(link, inbox, tcp, remote).await,
        Ok(Connected::Tls(tls, remote)) => established(link, inbox, *tls, remote).await,
        Err(failure) => link.fail(failure, Role::Main),
    }
}

enum Connected {
    Plain(TcpStream, SocketAddr),
    Tls(Box<tokio_openssl::SslStream<TcpStream>>, SocketAddr),
}

/// Tries every address of the target in turn; the failure of the last one if none connects.
async fn dial(target: &Target) -> Result<(TcpStream, SocketAddr), SocketFailure> {
    let addrs = resolve(&target.host, target.port).await?;
    let mut failure = SocketFailure::Dns;
    for addr in addrs {
        match dial_one(addr, target.local_port, &target.options).await {
            Ok(tcp) => return Ok((tcp, addr)),
            Err(e) => {
                tracing::debug!(%addr, error = %e, "connect failed; trying the next address");
                failure = connect_failure(&e);
            }
        }
    }
    Err(failure)
}

/// One connect, with the `+USOSO` options that apply to it.
async fn dial_one(
    addr: SocketAddr,
    local_port: Option<u16>,
    options: &SocketOptions,
) -> std::io::Result<TcpStream> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // SO_KEEPALIVE only: the keep-idle time (`+USOSO=<s>,6,2`) needs socket2, which is not a
    // dependency; the host's idle time applies.
    socket.set_keepalive(options.keep_alive)?;
    socket.set_nodelay(options.no_delay)?;
    if options.reuse_addr {
        socket.set_reuseaddr(true)?;
    }
    if let Some(port) = local_port {
        socket.bind(SocketAddr::new(unspecified(addr.ip()), port))?;
    }
    let tcp = socket.connect(addr).await?;
    if options.ttl != 0 {
        tcp.set_ttl(u32::from(options.ttl))?;
    }
    Ok(tcp)
}

/// A connected stream: report it, start its reader (under the same lock, so nothing the
/// peer sends is reported before the connect), then write.
async fn established<S>(link: Link, inbox: Inbox, stream: S, remote: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reading, writing) = tokio::io::split(stream);
    let reader = read(link.clone(), reading, inbox.room);
    link.edge.with_module(|m| {
        m.socket_connected(link.handle, remote);
        link.edge
            .sockets()
            .add_reader(&link.edge, link.handle, reader);
    });
    write(link, writing, inbox.ops, inbox.closing).await;
}

/// Reads while the engine has room: at most the room its last report returned, nothing at
/// zero until a resume grants more. Ends with the peer's end of stream or a failure,
/// reported.
pub(super) async fn read<R: AsyncRead + Unpin>(
    link: Link,
    mut stream: R,
    mut granted: watch::Receiver<usize>,
) {
    let mut room = RX_BUFFER;
    let mut buf = vec![0u8; READ_CHUNK];
    let mut downlink = crate::pace::Schedule::default();
    loop {
        while room == 0 {
            // Err: the socket was closed (its entry dropped); the task is being stopped.
            if granted.changed().await.is_err() {
                return;
            }
            room = *granted.borrow_and_update();
        }
        let want = link.edge.shaping().chunk(room.min(buf.len()));
        match stream.read(&mut buf[..want]).await {
            // The end of stream (TLS: close_notify).
            Ok(0) => return link.closed(),
            Ok(n) => {
                tracing::trace!(handle = link.handle.0, len = n, "socket received");
                // The bytes take the time they would at the network's rate.
                link.edge.pace(&mut downlink, n).await;
                room = link.edge.with_module(|m| {
                    let room = m.socket_received(link.handle, None, &buf[..n]);
                    // Under the module lock: any resume sent so far is older than this
                    // room; only a later one may grant more.
                    granted.mark_unchanged();
                    room
                });
            }
            Err(e) if is_unexpected_eof(&e) => return link.closed(),
            Err(e) => return link.fail(stream_failure(&e), Role::Reader),
        }
    }
}

/// Writes each send whole, reporting it, until a close: then ends the stream (FIN, after
/// `close_notify` on TLS). Once a close is asked for, all of it is bounded by
/// [`CLOSE_LINGER`].
pub(super) async fn write<W: AsyncWrite + Unpin>(
    link: Link,
    mut stream: W,
    mut ops: mpsc::UnboundedReceiver<Msg>,
    closing: Arc<Notify>,
) {
    let work = async {
        let mut uplink = crate::pace::Schedule::default();
        while let Some(msg) = ops.recv().await {
            match msg {
                Msg::Send(bytes) => {
                    if let Err(e) = send(&mut stream, &bytes).await {
                        return link.fail(stream_failure(&e), Role::Main);
                    }
                    link.edge.pace_up(&mut uplink, bytes.len()).await;
                    link.sent(bytes.len());
                }
                Msg::SendTo(to, bytes) => {
                    tracing::debug!(handle = link.handle.0, %to, len = bytes.len(), "a datagram for a TCP socket is dropped");
                }
                Msg::Close => {
                    if let Err(e) = stream.shutdown().await {
                        tracing::debug!(handle = link.handle.0, error = %e, "ending the stream failed");
                    }
                    return;
                }
            }
        }
    };
    let linger = async {
        closing.notified().await;
        tokio::time::sleep(CLOSE_LINGER).await;
    };
    tokio::select! {
        () = work => {}
        () = linger => tracing::debug!(handle = link.handle.0, "the close took too long; the socket is dropped"),
    }
}

async fn send<W: AsyncWrite + Unpin>(stream: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// A listener on `addr`, with `+USOSO`'s reuse-address option.
fn bind(addr: SocketAddr, options: &SocketOptions) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(options.reuse_addr)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Connections a listening socket's host queue holds before it accepts them.
const LISTEN_BACKLOG: u32 = 16;

/// Accepts connections on the host's loopback ([`LISTEN_ADDR`]) `port` until the socket is
/// closed; each becomes a socket of its own if the engine has one free.
pub(super) async fn listen(link: Link, port: u16, options: SocketOptions) {
    let listener = match bind(SocketAddr::new(LISTEN_ADDR, port), &options) {
        Ok(l) => l,
        Err(e) => return link.fail(bind_failure(&e), Role::Main),
    };
    link.edge.with_module(|m| m.socket_bound(link.handle));
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::debug!(handle = link.handle.0, error = %e, "accept failed");
                tokio::time::sleep(crate::tcp::ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let local = match tcp.local_addr() {
            Ok(local) => local,
            Err(e) => {
                tracing::debug!(%remote, error = %e, "an accepted connection has no address");
                continue;
            }
        };
        let edge = &link.edge;
        edge.with_module(|m| match m.socket_accepted(link.handle, remote, local) {
            // Registered under the module lock: the engine's ops for it come after.
            Some(new) => edge.sockets().open_accepted(edge, new, tcp),
            None => tracing::debug!(%remote, "accepted connection dropped"),
        });
    }
}
