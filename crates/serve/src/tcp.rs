//! AT over TCP: every accepted connection is a channel, served by its own task.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::Edge;
use crate::session::{self, Transport};

/// How long the listener rests after a failed accept (out of file descriptors, say), so a
/// persistent failure does not spin.
pub(crate) const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Binds `addr` and spawns the accept loop on the edge's runtime; returns the bound address
/// and the loop's task, which ends once `stop` is true and every connection has closed.
pub(crate) fn spawn(
    edge: &Edge,
    addr: &str,
    stop: watch::Receiver<bool>,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let (local, listener) = bind(edge, addr)?;
    tracing::info!(%local, "listening for AT over TCP");
    let edge = edge.clone();
    let task = edge.handle().clone().spawn(async move {
        let serve = {
            let (edge, stop) = (edge.clone(), stop.clone());
            move |stream: TcpStream, peer: SocketAddr| {
                let (edge, stop) = (edge.clone(), stop.clone());
                async move {
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
                    }
                    let (reader, writer) = stream.into_split();
                    let label = peer.to_string();
                    let transport = Transport {
                        label: &label,
                        stall: None,
                        hang_up: true,
                        baud: None,
                    };
                    session::run(&edge, reader, writer, transport, stop).await;
                }
            }
        };
        accept_each(listener, stop, serve).await;
    });
    Ok((local, task))
}

/// Binds `addr` synchronously (so the caller gets the error and the address at once) and
/// hands the listener to the edge's runtime.
pub(crate) fn bind(edge: &Edge, addr: &str) -> io::Result<(SocketAddr, TcpListener)> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let listener = {
        let _runtime = edge.handle().enter();
        TcpListener::from_std(listener)?
    };
    Ok((local, listener))
}

/// Accepts connections until `stop`, serving each with `serve` as a task of its own, then
/// waits for them to end (each ends at `stop` too).
pub(crate) async fn accept_each<F, Fut>(
    listener: TcpListener,
    stop: watch::Receiver<bool>,
    mut serve: F,
) where
    F: FnMut(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut sessions = JoinSet::new();
    let mut stopping = stop;
    loop {
        tokio::select! {
            () = session::stopped(&mut stopping) => break,
            // Reap finished sessions as they end, so the set holds only live ones.
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    sessions.spawn(serve(stream, peer));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    drop(listener);
    while sessions.join_next().await.is_some() {}
}
