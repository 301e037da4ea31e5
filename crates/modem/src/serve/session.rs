//! One connection's loop, the same for every transport.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{SharedModule, TICK};
use crate::channel::Channel;

/// What a read with a timeout produced.
pub(super) enum Read {
    /// Bytes arrived.
    Data(usize),
    /// Nothing arrived in time.
    Idle,
    /// The peer is gone.
    Closed,
}

/// A byte stream with timed reads.
pub(super) trait Transport {
    /// Reads into `buf`, waiting at most `timeout`.
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Read>;
    /// Writes all of `data`.
    fn write_all(&mut self, data: &[u8]) -> io::Result<()>;
}

/// Serves one channel until the peer leaves or shutdown is requested.
pub(super) fn run(
    module: &SharedModule,
    transport: &mut dyn Transport,
    shutdown: &Arc<AtomicBool>,
    label: &str,
) {
    let mut channel = Channel::new(&mut module.lock());
    tracing::info!(channel = channel.id().0, peer = label, "channel opened");
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(4096);
    while !shutdown.load(Ordering::Relaxed) {
        let timeout = match channel.next_deadline() {
            Some(d) => d.saturating_duration_since(Instant::now()).min(TICK),
            None => TICK,
        };
        match transport.read(&mut buf, timeout) {
            Ok(Read::Data(n)) => {
                channel.feed(&mut module.lock(), &buf[..n], Instant::now(), &mut out)
            }
            Ok(Read::Idle) => channel.poll(&mut module.lock(), Instant::now(), &mut out),
            Ok(Read::Closed) => break,
            Err(e) => {
                tracing::debug!(peer = label, error = %e, "read failed");
                break;
            }
        }
        if !out.is_empty() {
            if let Err(e) = transport.write_all(&out) {
                tracing::debug!(peer = label, error = %e, "write failed");
                break;
            }
            out.clear();
        }
    }
    tracing::info!(channel = channel.id().0, peer = label, "channel closed");
    channel.close(&mut module.lock());
}
