//! AT over TCP: every accepted connection is a channel.

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::session::{self, Read, Transport};
use super::{SharedModule, TICK};

struct Tcp {
    stream: TcpStream,
    timeout: Option<Duration>,
}

impl Transport for Tcp {
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Read> {
        let timeout = timeout.max(Duration::from_millis(1));
        if self.timeout != Some(timeout) {
            self.stream.set_read_timeout(Some(timeout))?;
            self.timeout = Some(timeout);
        }
        match self.stream.read(buf) {
            Ok(0) => Ok(Read::Closed),
            Ok(n) => Ok(Read::Data(n)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(Read::Idle)
            }
            Err(e) => Err(e),
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.stream.write_all(data)
    }
}

pub(super) fn spawn(
    addr: &str,
    module: SharedModule,
    shutdown: Arc<AtomicBool>,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    tracing::info!(%local, "listening for AT over TCP");
    let handle = std::thread::Builder::new()
        .name(format!("tcp {local}"))
        .spawn(move || {
            let mut sessions: Vec<JoinHandle<()>> = Vec::new();
            while !shutdown.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, peer)) => {
                        let module = module.clone();
                        let shutdown = shutdown.clone();
                        let spawned = std::thread::Builder::new()
                            .name(format!("at {peer}"))
                            .spawn(move || {
                                if stream.set_nonblocking(false).is_err()
                                    || stream.set_nodelay(true).is_err()
                                {
                                    return;
                                }
                                let mut t = Tcp {
                                    stream,
                                    timeout: None,
                                };
                                session::run(&module, &mut t, &shutdown, &peer.to_string());
                            });
                        match spawned {
                            Ok(h) => sessions.push(h),
                            Err(e) => tracing::error!(error = %e, "cannot start a session thread"),
                        }
                        sessions.retain(|h| !h.is_finished());
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(TICK),
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        std::thread::sleep(TICK);
                    }
                }
            }
            for s in sessions {
                let _ = s.join();
            }
        })?;
    Ok((local, handle))
}
