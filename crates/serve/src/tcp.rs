//! AT over TCP: every accepted connection is a channel, served by its own task.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::Edge;
use crate::session::{self, Transport};

/// How long the listener rests after a failed accept (out of file descriptors, say), so a
/// persistent failure does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Binds `addr` and spawns the accept loop on the edge's runtime; returns the bound address
/// and the loop's task, which ends once `stop` is true and every connection has closed.
pub(crate) fn spawn(
    edge: &Edge,
    addr: &str,
    stop: watch::Receiver<bool>,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    // Bound synchronously so the caller gets the error and the address at once.
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let listener = {
        let _runtime = edge.handle().enter();
        TcpListener::from_std(listener)?
    };
    tracing::info!(%local, "listening for AT over TCP");
    let edge = edge.clone();
    let task = edge.handle().clone().spawn(async move {
        accept_loop(&edge, listener, stop).await;
    });
    Ok((local, task))
}

async fn accept_loop(edge: &Edge, listener: TcpListener, stop: watch::Receiver<bool>) {
    let mut sessions = JoinSet::new();
    let mut stopping = stop.clone();
    loop {
        tokio::select! {
            () = session::stopped(&mut stopping) => break,
            // Reap finished sessions as they end, so the set holds only live ones.
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
                    }
                    let (edge, stop) = (edge.clone(), stop.clone());
                    sessions.spawn(async move {
                        let (reader, writer) = stream.into_split();
                        let label = peer.to_string();
                        let transport = Transport { label: &label, stall: None, hang_up: true };
                        session::run(&edge, reader, writer, transport, stop).await;
                    });
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
