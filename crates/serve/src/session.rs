//! One link (an AT channel, or several multiplexed with 27.010) as a task, the same for
//! every transport.
//!
//! The task waits for whichever comes first: input (only while the channel wants input), its
//! wake-up (a URC, its job's end, a reboot), the engine's next deadline for it, or shutdown.
//! Each event is one call into the engine under the module lock, then the answer is written
//! in full before anything else happens. While the peer does not read, the write waits and so
//! does the reading: that is the back-pressure, and the only buffer is the channel's output
//! (about 1 MiB) plus the read chunk.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::{Edge, system_now};

/// How much input is read at a time.
const READ_CHUNK: usize = 16 * 1024;

/// The output buffer kept between answers.
const KEPT_OUTPUT: usize = 4096;

/// How a transport behaves.
pub(crate) struct Transport<'a> {
    /// The peer, for the logs.
    pub(crate) label: &'a str,
    /// Drop output that cannot be written within this time instead of waiting for the peer:
    /// a pseudo-terminal with no client, like a UART with no flow control. `None` waits.
    pub(crate) stall: Option<Duration>,
    /// Close the connection when the module loses its power (TCP); a terminal cannot hang up,
    /// its host just hears nothing more of what was going on.
    pub(crate) hang_up: bool,
    /// The UART's rate, bits per second at 8N1 (the timing profile on a pseudo-terminal):
    /// bytes go each way no faster than a real serial line carries them. `None`: unpaced.
    pub(crate) baud: Option<u32>,
}

/// Serves one channel until the peer leaves or `stop` turns true.
pub(crate) async fn run<R, W>(
    edge: &Edge,
    mut reader: R,
    mut writer: W,
    transport: Transport<'_>,
    mut stop: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let label = transport.label;
    let (mut link, notify, mut power) = edge.open_link();
    tracing::info!(channel = link.wake_id().0, peer = label, "channel opened");
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut eof = false;
    let mut fired: Option<std::time::Instant> = None;
    let mut uart = transport.baud.map(Uart::new);
    let read_chunk = uart.as_ref().map_or(READ_CHUNK, Uart::chunk);
    loop {
        if !out.is_empty() {
            tokio::select! {
                written = write_out(&mut writer, &out, transport.stall, uart.as_mut()) => {
                    if let Err(e) = written {
                        tracing::debug!(peer = label, error = %e, "write failed");
                        break;
                    }
                }
                () = stopped(&mut stop) => break,
            }
            out.clear();
            // A streamed answer grew the buffer to the link's limit: give the memory back
            // rather than keep a megabyte per link that once read a file.
            if out.capacity() > KEPT_OUTPUT && !link.has_more() {
                out.shrink_to(KEPT_OUTPUT);
            }
        }
        if link.has_more() {
            if call(edge, &mut power, &mut out, |m, out| {
                link.poll(m, system_now(), out)
            }) && transport.hang_up
            {
                tracing::info!(peer = label, "power lost: hanging up");
                break;
            }
            if !out.is_empty() {
                continue;
            }
            // The engine had more but produced nothing: wait for an event rather than spin.
            tracing::debug!(
                channel = link.wake_id().0,
                "link has more but produced nothing"
            );
        }
        // After the end of input: done once every answer to it has been written.
        if eof && link.is_idle() {
            break;
        }
        let want_input = !eof && link.wants_input(out.len());
        // A deadline the last poll at it left in place is not waited for again: it would spin.
        let deadline = link
            .next_deadline(&edge.module().lock())
            .filter(|d| Some(*d) != fired)
            .map(tokio::time::Instant::from_std);
        let lost = tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            () = notify.notified() => {
                call(edge, &mut power, &mut out, |m, out| link.poll(m, system_now(), out))
            }
            () = sleep_until(deadline) => {
                fired = deadline.map(tokio::time::Instant::into_std);
                call(edge, &mut power, &mut out, |m, out| link.poll(m, system_now(), out))
            }
            read = reader.read(&mut buf[..read_chunk]), if want_input => match read {
                Ok(0) => {
                    eof = true;
                    false
                }
                Ok(n) => {
                    if let Some(uart) = uart.as_mut() {
                        // The last of these bytes reaches the module when the line has
                        // carried them all.
                        uart.receive(n).await;
                    }
                    let input = &buf[..n];
                    call(edge, &mut power, &mut out, |m, out| {
                        link.feed(m, input, system_now(), out)
                    })
                }
                Err(e) => {
                    tracing::debug!(peer = label, error = %e, "read failed");
                    break;
                }
            },
        };
        if lost && transport.hang_up {
            tracing::info!(peer = label, "power lost: hanging up");
            break;
        }
    }
    tracing::info!(channel = link.wake_id().0, peer = label, "link closed");
    edge.close_link(link);
}

/// One call into the engine under the module lock, and whether the module lost its power
/// since the last one (the test bench). Checked before the call as well as after: what the old
/// boot was saying is not said, what the new one says (its greeting) is.
fn call(
    edge: &Edge,
    power: &mut u64,
    out: &mut Vec<u8>,
    f: impl FnOnce(&mut sealcell_modem::Module, &mut Vec<u8>),
) -> bool {
    edge.with_module(|m| {
        let before = m.power_epoch() != *power;
        if before {
            out.clear();
        }
        f(m, out);
        let lost = before || m.power_epoch() != *power;
        *power = m.power_epoch();
        lost
    })
}

/// A serial line's pace, each way.
struct Uart {
    bytes_per_s: f64,
    sent: crate::pace::Schedule,
    received: crate::pace::Schedule,
}

impl Uart {
    fn new(baud: u32) -> Uart {
        Uart {
            bytes_per_s: f64::from(baud.max(1)) / sealcell_modem::timing::BITS_PER_BYTE,
            sent: crate::pace::Schedule::default(),
            received: crate::pace::Schedule::default(),
        }
    }

    /// Bytes a hundredth of a second carries: what is read or written at a time, so the pace
    /// is even and the other events are not kept waiting long.
    fn chunk(&self) -> usize {
        ((self.bytes_per_s / 100.0) as usize).clamp(1, READ_CHUNK)
    }

    /// Waits until `n` bytes from the host have come down the line.
    async fn receive(&mut self, n: usize) {
        self.received.carry(n, Some(self.bytes_per_s)).await;
    }

    /// Waits until `n` bytes to the host have gone up the line.
    async fn send(&mut self, n: usize) {
        self.sent.carry(n, Some(self.bytes_per_s)).await;
    }
}

/// Writes all of `out`; with a stall limit, what cannot be written in time is dropped. On a
/// paced line, a chunk at a time at the line's rate (the stall limit is each chunk's, and a
/// chunk nobody took drops the rest).
async fn write_out<W: AsyncWrite + Unpin>(
    writer: &mut W,
    out: &[u8],
    stall: Option<Duration>,
    uart: Option<&mut Uart>,
) -> std::io::Result<()> {
    let Some(uart) = uart else {
        return write_within(writer, out, stall).await.map(drop);
    };
    for (i, chunk) in out.chunks(uart.chunk()).enumerate() {
        if !write_within(writer, chunk, stall).await? {
            tracing::debug!(
                bytes = out.len() - i * uart.chunk(),
                "nobody reads the terminal; output dropped"
            );
            return Ok(());
        }
        uart.send(chunk.len()).await;
    }
    Ok(())
}

/// Writes `out`, within the stall limit if there is one; returns whether it was written.
async fn write_within<W: AsyncWrite + Unpin>(
    writer: &mut W,
    out: &[u8],
    stall: Option<Duration>,
) -> std::io::Result<bool> {
    let write = async {
        writer.write_all(out).await?;
        writer.flush().await
    };
    match stall {
        None => write.await.map(|()| true),
        Some(limit) => match tokio::time::timeout(limit, write).await {
            Ok(result) => result.map(|()| true),
            Err(_) => {
                tracing::debug!(
                    bytes = out.len(),
                    "nobody reads the terminal; output dropped"
                );
                Ok(false)
            }
        },
    }
}

/// Resolves once `stop` is true (or its sender is gone, which means the same).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
