//! The host's end of a 27.010 multiplexer (at-contract §10): one DLCI of a multiplexed link
//! as a [`Link`] of its own, so the AT client and every workflow run over CMUX unchanged.
//!
//! [`MuxLink::open`] starts the multiplexer with `AT+CMUX=0,0,,<N1>` (u-blox's host library
//! sends the same), or joins one a host application left running (no answer to `AT+CMUX`, but
//! a UA to SABM 0), then opens its DLCI. Reads return that DLCI's data only; frames for other
//! DLCIs are dropped (their owner is someone else), and the control channel is answered by
//! the codec. Dropping the link closes its DLCI and, if it started the multiplexer, closes it
//! down so the module speaks plain AT again.
//!
//! One DLCI is enough for the tools: the module sends each DLCI the URCs of the commands run on
//! it (`+UUHTTPCR`, the install URCs) and every broadcast URC.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use sealcell_at::cmux::mux::{Config, Event, Multiplexer, Role};
use sealcell_at::commands::SetCommand;
use sealcell_at::commands::Wire;
use sealcell_at::commands::cmux::{
    CmuxCommand, CmuxStatus, DEFAULT_N1 as DEFAULT_N1_27007, MAX_AT_DLCI, MAX_N1,
};

use crate::port::Link;

/// The N1 the tools ask for: 128, as u-blox's host library does.
pub const DEFAULT_N1: u16 = 128;

/// How long `AT+CMUX` may go unanswered before the link tries to join a multiplexer that
/// already runs.
const JOIN_AFTER: Duration = Duration::from_millis(1500);

/// How long the close-down waits for each answer when the link is dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Which DLCI, and the frame size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MuxOptions {
    /// The DLCI this link uses (1..=5 on a TOBY-L2).
    pub dlci: u8,
    /// `AT+CMUX`'s N1: the largest information field.
    pub n1: u16,
}

impl Default for MuxOptions {
    fn default() -> MuxOptions {
        MuxOptions {
            dlci: 1,
            n1: DEFAULT_N1,
        }
    }
}

/// One DLCI of a multiplexed link.
pub struct MuxLink {
    inner: Box<dyn Link>,
    mux: Multiplexer,
    dlci: u8,
    /// Data received for this DLCI and not yet read.
    inbox: VecDeque<u8>,
    /// Whether this link started the multiplexer (and so closes it down at the end).
    started: bool,
    read_timeout: Duration,
    /// The peer closed the DLCI or the multiplexer.
    ended: bool,
    n1: u16,
}

impl std::fmt::Debug for MuxLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MuxLink")
            .field("dlci", &self.dlci)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

impl MuxLink {
    /// Starts (or joins) the multiplexer on `inner` and opens `options.dlci`, each step
    /// within `wait`.
    pub fn open(inner: Box<dyn Link>, options: MuxOptions, wait: Duration) -> io::Result<MuxLink> {
        if !(1..=MAX_AT_DLCI).contains(&options.dlci) {
            return Err(invalid(format!(
                "DLCI {} is not an AT channel (1..={MAX_AT_DLCI})",
                options.dlci
            )));
        }
        if !(1..=MAX_N1).contains(&options.n1) {
            return Err(invalid(format!("N1 {} is not in 1..={MAX_N1}", options.n1)));
        }
        let mut link = MuxLink {
            inner,
            mux: initiator(options.n1),
            dlci: options.dlci,
            inbox: VecDeque::new(),
            started: false,
            read_timeout: Duration::from_millis(100),
            ended: false,
            n1: options.n1,
        };
        link.establish(wait)?;
        Ok(link)
    }

    /// Starts or joins the multiplexer and opens the DLCI, from scratch.
    fn establish(&mut self, wait: Duration) -> io::Result<()> {
        self.inbox.clear();
        self.ended = false;
        // A module answers AT+CMUX in milliseconds; one already multiplexing never does, so
        // joining it costs this much. (A link that started the multiplexer once and sets it
        // up again after a reboot still closes it down at the end.)
        let started = start(&mut *self.inner, self.n1, wait.min(JOIN_AFTER))?;
        self.started |= started;
        // Joining, the N1 is whoever started it's: decode anything, send what the default
        // N1 carries until the DLCI says (AT+CMUX?).
        self.mux = initiator(if started { self.n1 } else { MAX_N1 });
        if !started {
            self.mux.limit_sends(usize::from(DEFAULT_N1_27007));
        }
        for dlci in [0, self.dlci] {
            let mut frames = Vec::new();
            self.mux.open(dlci, &mut frames);
            self.inner.write_all(&frames)?;
            self.inner.flush()?;
            let answered = self.wait_for(wait, |e| match e {
                Event::Opened(d) if *d == dlci => Some(true),
                Event::Refused(d) if *d == dlci => Some(false),
                _ => None,
            })?;
            match answered {
                Some(true) => {}
                Some(false) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionRefused,
                        format!("the module refused DLCI {dlci} (DM)"),
                    ));
                }
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "no UA to SABM on DLCI {dlci} within {} s",
                            wait.as_secs_f32()
                        ),
                    ));
                }
            }
        }
        if !started {
            let n1 = self.ask_n1(wait)?;
            self.mux.limit_sends(n1);
        }
        Ok(())
    }

    /// The N1 of a multiplexer this link joined: `AT+CMUX?` on its DLCI.
    fn ask_n1(&mut self, wait: Duration) -> io::Result<usize> {
        let mut frames = Vec::new();
        self.mux.send(self.dlci, b"AT+CMUX?\r", &mut frames);
        self.inner.write_all(&frames)?;
        let deadline = Instant::now() + wait;
        let mut answer = Vec::new();
        while Instant::now() < deadline && answer.len() < 4096 {
            let _ = self.wait_for(Duration::from_millis(100), |_| Some(()))?;
            answer.extend(self.inbox.drain(..));
            let text = String::from_utf8_lossy(&answer).into_owned();
            let status = text.lines().find_map(|l| CmuxStatus::parse(l.trim()).ok());
            // The answer ends at its final result; what follows (a URC) is the client's.
            let end = [&b"\r\nOK\r\n"[..], b"\r0\r", b"\n0\r"]
                .iter()
                .filter_map(|r| {
                    answer
                        .windows(r.len())
                        .position(|w| w == *r)
                        .map(|i| i + r.len())
                })
                .min();
            if let (Some(status), Some(end)) = (status, end) {
                for &b in answer.get(end..).unwrap_or_default().iter().rev() {
                    self.inbox.push_front(b);
                }
                return Ok(usize::from(status.n1));
            }
            if text.contains("ERROR") {
                break;
            }
        }
        Err(io::Error::other(
            "the multiplexer joined did not say its N1 (AT+CMUX?)",
        ))
    }

    /// Whether this link started the multiplexer (rather than joined one).
    pub fn started(&self) -> bool {
        self.started
    }

    /// Reads frames until `pick` says something of an event, or `wait` passes (`None`).
    /// Data for this DLCI met on the way is kept for [`Read`].
    fn wait_for<T>(
        &mut self,
        wait: Duration,
        mut pick: impl FnMut(&Event<'_>) -> Option<T>,
    ) -> io::Result<Option<T>> {
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.inner
                .set_read_timeout(left.min(Duration::from_millis(100)))?;
            let n = match self.inner.read(&mut buf) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => n,
                Err(e) if is_timeout(&e) => continue,
                Err(e) => return Err(e),
            };
            let mut input = &buf[..n];
            let mut replies = Vec::new();
            let mut found = None;
            while let Some(event) = self.mux.receive(&mut input, &mut replies) {
                if found.is_none() {
                    found = pick(&event);
                }
                keep(event, self.dlci, &mut self.inbox, &mut self.ended);
            }
            self.inner.write_all(&replies)?;
            if found.is_some() {
                return Ok(found);
            }
        }
    }
}

/// Sends `AT+CMUX` in plain text and reads the answer: true on `OK`, false when nothing
/// answers (a multiplexer already runs: its decoder takes the line for noise).
fn start(inner: &mut dyn Link, n1: u16, wait: Duration) -> io::Result<bool> {
    let line = CmuxCommand::with_n1(n1).line();
    inner.write_all(format!("{}\r", line.as_str()).as_bytes())?;
    inner.flush()?;
    let deadline = Instant::now() + wait;
    let mut answer = Vec::new();
    let mut buf = [0u8; 256];
    while Instant::now() < deadline && answer.len() < 4096 {
        inner.set_read_timeout(
            deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100)),
        )?;
        match inner.read(&mut buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if is_timeout(&e) => {
                // Nothing for a while after some bytes: a multiplexer's frames (its answer to
                // noise is silence, but a URC frame may pass), so try joining.
                continue;
            }
            Err(e) => return Err(e),
        }
        let text = String::from_utf8_lossy(&answer);
        // Verbose `OK`, or numeric `0` (ATV0), after the echo, after a URC, or alone.
        if text.contains("\r\nOK\r\n")
            || text.ends_with("\r0\r")
            || text.ends_with("\n0\r")
            || text == "0\r"
        {
            return Ok(true);
        }
        if let Some(error) = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("+CME ERROR") || *l == "ERROR")
        {
            return Err(io::Error::other(format!(
                "the module answered {error} to {}",
                line.as_str()
            )));
        }
    }
    Ok(false)
}

impl Read for MuxLink {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.inbox.is_empty() && !self.ended {
            // Frames until one brings this DLCI data or ends it; the rest (other DLCIs, the
            // control channel) is handled on the way.
            let dlci = self.dlci;
            let arrived = self.wait_for(self.read_timeout, |e| match e {
                Event::Data { dlci: d, data } => (*d == dlci && !data.is_empty()).then_some(()),
                Event::Closed(d) => (*d == dlci).then_some(()),
                Event::CloseDown => Some(()),
                _ => None,
            });
            match arrived {
                Ok(Some(())) => {}
                Ok(None) => return Err(io::ErrorKind::TimedOut.into()),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => self.ended = true,
                Err(e) => return Err(e),
            }
        }
        let n = buf.len().min(self.inbox.len());
        for (slot, byte) in buf.iter_mut().zip(self.inbox.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
}

impl Write for MuxLink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.ended {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let mut frames = Vec::with_capacity(buf.len() + 8);
        self.mux.send(self.dlci, buf, &mut frames);
        self.inner.write_all(&frames)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Link for MuxLink {
    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.read_timeout = timeout.max(Duration::from_millis(1));
        Ok(())
    }

    /// A rebooted module speaks plain AT: the multiplexer is started again.
    fn after_reboot(&mut self, wait: Duration) -> io::Result<()> {
        self.establish(wait)
    }
}

fn initiator(n1: u16) -> Multiplexer {
    Multiplexer::new(Config {
        role: Role::Initiator,
        n1: usize::from(n1),
        max_dlci: MAX_AT_DLCI,
    })
}

impl Drop for MuxLink {
    /// Closes the DLCI, then (if this link started it) the multiplexer; best effort, each
    /// answer waited for at most a second.
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let dlci = self.dlci;
        let mut frames = Vec::new();
        self.mux.close(dlci, &mut frames);
        if self.inner.write_all(&frames).is_err() {
            return;
        }
        let _ = self.wait_for(CLOSE_WAIT, |e| {
            matches!(e, Event::Closed(d) if *d == dlci).then_some(())
        });
        if self.started {
            let mut frames = Vec::new();
            self.mux.close_down(&mut frames);
            if self.inner.write_all(&frames).is_ok() {
                let _ = self.wait_for(CLOSE_WAIT, |e| matches!(e, Event::CloseDown).then_some(()));
            }
        }
    }
}

/// Keeps `dlci`'s data; notes the end of the DLCI or of the multiplexer. (A function of the
/// fields, not a method: the event borrows the multiplexer.)
fn keep(event: Event<'_>, dlci: u8, inbox: &mut VecDeque<u8>, ended: &mut bool) {
    match event {
        Event::Data { dlci: d, data } if d == dlci => inbox.extend(data),
        Event::Closed(d) if d == dlci => *ended = true,
        Event::CloseDown => *ended = true,
        _ => {}
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}
