//! The AT client: one command at a time over a [`Link`], built on the sans-I/O
//! [`Digester`] of `sealcell-at`.
//!
//! - On open it synchronises (`AT` until `OK`, a module may still be booting), then sets `ATE0`
//!   and `AT+CMEE=2` so errors arrive as text that [`CmeError`] decodes. Echo is tolerated
//!   anyway: a module that reboots comes back with echo on.
//! - [`AtClient::run`] sends a [`Command`]; when the module prompts with `>`, it waits the
//!   prompt delay (50 ms on serial lines, as ubxlib does; none on TCP) and sends the payload.
//!   URCs that arrive meanwhile are queued for [`AtClient::wait_urc`] / [`AtClient::take_urcs`].
//! - Every command has a timeout; a module that does not answer in time is an error, never a
//!   hang.
//! - A [`Command`] carries two forms of its line: the one sent, zeroized on drop, and the one
//!   shown (transcripts, errors, `Debug`), in which secrets are `"<redacted>"`.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::thread;
use std::time::{Duration, Instant};

use sealcell_at::cme::CmeError;
use sealcell_at::dte::{Digester, DteEvent, FinalResponse};
use zeroize::Zeroizing;

use crate::port::{self, Link, PortSpec};
use crate::transcript::{Direction, Transcript};

/// The text a redacted argument is shown as.
pub const REDACTED: &str = "<redacted>";

/// The default time a command may take before the client gives up on it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How the client behaves.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Default per-command timeout.
    pub timeout: Duration,
    /// Pause between the `>` prompt and the payload; `None`: 50 ms on serial lines, none on TCP.
    pub prompt_delay: Option<Duration>,
    /// How long [`AtClient::open`] tries to get an `OK` to `AT`.
    pub sync_timeout: Duration,
    /// Run over one DLCI of a 27.010 multiplexer ([`crate::mux`]) instead of the plain link.
    pub multiplex: Option<crate::mux::MuxOptions>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: DEFAULT_TIMEOUT,
            prompt_delay: None,
            sync_timeout: Duration::from_secs(5),
            multiplex: None,
        }
    }
}

/// A command line to send, with its shown (redacted) form and an optional payload.
pub struct Command {
    line: Zeroizing<String>,
    shown: String,
    payload: Option<(Zeroizing<Vec<u8>>, String)>,
    timeout: Option<Duration>,
}

impl Command {
    /// A command with nothing secret in it (shown as sent).
    pub fn new(line: impl Into<String>) -> Command {
        let line: String = line.into();
        Command {
            shown: line.clone(),
            line: Zeroizing::new(line),
            payload: None,
            timeout: None,
        }
    }

    /// A command whose line holds a secret: `shown` is what transcripts and errors show.
    pub fn with_secret(line: Zeroizing<String>, shown: impl Into<String>) -> Command {
        Command {
            line,
            shown: shown.into(),
            payload: None,
            timeout: None,
        }
    }

    /// Adds the payload to send after the `>` prompt; `shown` describes it (never its bytes).
    pub fn payload(mut self, bytes: Zeroizing<Vec<u8>>, shown: impl Into<String>) -> Command {
        self.payload = Some((bytes, shown.into()));
        self
    }

    /// Overrides the client's default timeout.
    pub fn timeout(mut self, timeout: Duration) -> Command {
        self.timeout = Some(timeout);
        self
    }

    /// The shown form of the line.
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("line", &self.shown)
            .field(
                "payload",
                &self.payload.as_ref().map(|(_, shown)| shown.as_str()),
            )
            .finish()
    }
}

/// The module's answer to one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The command, as shown.
    pub command: String,
    /// The information lines, in order.
    pub lines: Vec<String>,
    /// The final result.
    pub result: FinalResponse,
}

impl Response {
    /// Whether the final result is `OK`.
    pub fn is_ok(&self) -> bool {
        self.result == FinalResponse::Ok
    }

    /// The response if it is `OK`, else [`ClientError::Module`].
    pub fn into_ok(self) -> Result<Response, ClientError> {
        if self.is_ok() {
            return Ok(self);
        }
        let cme = match &self.result {
            FinalResponse::Cme(report) => report.error,
            _ => None,
        };
        Err(ClientError::Module {
            command: self.command,
            result: result_text(&self.result),
            cme,
        })
    }

    /// The value of the first line starting with `prefix` (`"+USECCFG:"`), trimmed.
    pub fn value(&self, prefix: &str) -> Option<&str> {
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
    }
}

/// The final result as the module wrote it.
pub fn result_text(result: &FinalResponse) -> String {
    match result {
        FinalResponse::Ok => "OK".into(),
        FinalResponse::Error => "ERROR".into(),
        FinalResponse::Cme(r) => format!("+CME ERROR: {}", r.raw),
        FinalResponse::Cms(r) => format!("+CMS ERROR: {r}"),
    }
}

/// What went wrong talking to the module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The port could not be opened.
    #[error("cannot open {port}: {source}")]
    Open {
        /// The port.
        port: String,
        /// Why.
        source: io::Error,
    },
    /// Reading or writing failed.
    #[error("I/O error during {command}: {source}")]
    Io {
        /// The command in flight (shown form).
        command: String,
        /// Why.
        source: io::Error,
    },
    /// The module closed the connection.
    #[error("the module closed the connection during {command}")]
    Closed {
        /// The command in flight (shown form).
        command: String,
    },
    /// No final result in time.
    #[error("no answer to {command} within {} s", waited.as_secs_f32())]
    Timeout {
        /// The command (shown form).
        command: String,
        /// How long the client waited.
        waited: Duration,
    },
    /// The module answered with an error result (a negative answer, exit code 1).
    #[error("the module answered {result} to {command}")]
    Module {
        /// The command (shown form).
        command: String,
        /// The result line (`+CME ERROR: FW package not valid`).
        result: String,
        /// The decoded `+CME ERROR`, when it is in the table.
        cme: Option<CmeError>,
    },
    /// The module answered something the workflow cannot use.
    #[error("unexpected answer to {command}: {detail}")]
    Protocol {
        /// The command (shown form).
        command: String,
        /// What was wrong.
        detail: String,
    },
}

impl ClientError {
    /// Whether this is the module's negative answer (exit 1) rather than a failure to talk to
    /// it (exit 2).
    pub fn is_module_answer(&self) -> bool {
        matches!(self, ClientError::Module { .. })
    }
}

/// The link while a lost one is being replaced: every call fails as a closed port.
struct Gone;

impl std::io::Read for Gone {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::NotConnected.into())
    }
}

impl std::io::Write for Gone {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::NotConnected.into())
    }
    fn flush(&mut self) -> io::Result<()> {
        Err(io::ErrorKind::NotConnected.into())
    }
}

impl Link for Gone {
    fn set_read_timeout(&mut self, _: Duration) -> io::Result<()> {
        Ok(())
    }
}

/// `link`, or one DLCI of a multiplexer started on it.
fn multiplexed(link: Box<dyn Link>, mux: Option<crate::mux::MuxOptions>) -> Option<Box<dyn Link>> {
    match mux {
        None => Some(link),
        Some(mux) => crate::mux::MuxLink::open(link, mux, Duration::from_secs(2))
            .ok()
            .map(|m| Box::new(m) as Box<dyn Link>),
    }
}

/// An AT client on one link.
pub struct AtClient {
    spec: Option<PortSpec>,
    link: Box<dyn Link>,
    digester: Digester,
    urcs: VecDeque<String>,
    transcript: Option<Box<dyn Transcript>>,
    options: ClientOptions,
    prompt_delay: Duration,
}

impl AtClient {
    /// Opens the port, synchronises and sets `ATE0` and `AT+CMEE=2`.
    pub fn open(spec: &PortSpec, options: ClientOptions) -> Result<AtClient, ClientError> {
        AtClient::open_recorded(spec, options, None)
    }

    /// As [`AtClient::open`], recording from the first byte (the synchronisation included).
    pub fn open_recorded(
        spec: &PortSpec,
        options: ClientOptions,
        transcript: Option<Box<dyn Transcript>>,
    ) -> Result<AtClient, ClientError> {
        let mut link = port::open(spec).map_err(|source| ClientError::Open {
            port: spec.to_string(),
            source,
        })?;
        if let Some(mux) = options.multiplex {
            link = Box::new(
                crate::mux::MuxLink::open(link, mux, options.sync_timeout).map_err(|source| {
                    ClientError::Io {
                        command: format!("AT+CMUX (DLCI {})", mux.dlci),
                        source,
                    }
                })?,
            );
        }
        let prompt_delay = options.prompt_delay.unwrap_or(if spec.is_serial() {
            Duration::from_millis(50)
        } else {
            Duration::ZERO
        });
        let mut client = AtClient {
            spec: Some(spec.clone()),
            link,
            digester: Digester::new(),
            urcs: VecDeque::new(),
            transcript,
            options,
            prompt_delay,
        };
        client.synchronise()?;
        Ok(client)
    }

    /// A client on an already open link (tests, in-process pairs); not synchronised.
    pub fn from_link(link: Box<dyn Link>, options: ClientOptions) -> AtClient {
        AtClient {
            spec: None,
            prompt_delay: options.prompt_delay.unwrap_or(Duration::ZERO),
            link,
            digester: Digester::new(),
            urcs: VecDeque::new(),
            transcript: None,
            options,
        }
    }

    /// Records every exchange from now on in `transcript`.
    pub fn set_transcript(&mut self, transcript: Box<dyn Transcript>) {
        self.transcript = Some(transcript);
    }

    /// Takes the transcript sink back.
    pub fn take_transcript(&mut self) -> Option<Box<dyn Transcript>> {
        self.transcript.take()
    }

    /// Adds a note line to the transcript.
    pub fn note(&mut self, text: &str) {
        self.record(Direction::Note, text);
    }

    /// `AT` until `OK` (within the sync timeout), then `ATE0` and `AT+CMEE=2`.
    pub fn synchronise(&mut self) -> Result<(), ClientError> {
        let deadline = Instant::now() + self.options.sync_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt = Duration::from_millis(500).min(left.max(Duration::from_millis(1)));
            match self.run(&Command::new("AT").timeout(attempt)) {
                Ok(r) if r.is_ok() => break,
                Ok(_) | Err(ClientError::Timeout { .. }) if Instant::now() < deadline => {}
                Ok(r) => return r.into_ok().map(|_| ()),
                Err(e) => return Err(e),
            }
        }
        self.run(&Command::new("ATE0"))?.into_ok()?;
        self.run(&Command::new("AT+CMEE=2"))?.into_ok()?;
        Ok(())
    }

    /// Sends `command` and returns the module's answer (which may be an error result: see
    /// [`Response::into_ok`]).
    pub fn run(&mut self, command: &Command) -> Result<Response, ClientError> {
        let timeout = command.timeout.unwrap_or(self.options.timeout);
        let deadline = Instant::now() + timeout;
        if self.digester.is_in_flight() {
            // The previous command timed out: whatever it still says must not answer this one.
            self.digester = Digester::new();
        }
        self.digester.expect_response();
        self.record(Direction::Sent, &command.shown);
        let mut line = Zeroizing::new(Vec::with_capacity(command.line.len() + 1));
        line.extend_from_slice(command.line.as_bytes());
        line.push(b'\r');
        self.write(&line, &command.shown)?;
        let mut lines = Vec::new();
        loop {
            let event = self.next_event(deadline, &command.shown, timeout)?;
            match event {
                DteEvent::Echo(_) => {}
                DteEvent::Info(l) => lines.push(String::from_utf8_lossy(&l).into_owned()),
                DteEvent::Prompt => {
                    let Some((bytes, shown)) = &command.payload else {
                        // The module now reads raw bytes until its payload timeout; nothing
                        // sent on this line can be a command until then.
                        return Err(ClientError::Protocol {
                            command: command.shown.clone(),
                            detail: "the module asks for a payload (>) and none was given; it \
                                     returns to command mode after its payload timeout"
                                .into(),
                        });
                    };
                    if !self.prompt_delay.is_zero() {
                        thread::sleep(self.prompt_delay);
                    }
                    self.record(Direction::Sent, shown);
                    self.write(bytes, &command.shown)?;
                }
                DteEvent::Final(result) => {
                    return Ok(Response {
                        command: command.shown.clone(),
                        lines,
                        result,
                    });
                }
                DteEvent::Urc(u) => self.urcs.push_back(String::from_utf8_lossy(&u).into()),
            }
        }
    }

    /// Runs `command` and requires `OK`.
    pub fn ok(&mut self, command: &Command) -> Result<Response, ClientError> {
        self.run(command)?.into_ok()
    }

    /// Runs a plain command line and requires `OK`.
    pub fn ok_line(&mut self, line: &str) -> Result<Response, ClientError> {
        self.ok(&Command::new(line))
    }

    /// Waits for a URC that `accept` takes (queued ones first); the others stay queued.
    pub fn wait_urc(
        &mut self,
        mut accept: impl FnMut(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, ClientError> {
        if let Some(i) = self.urcs.iter().position(|u| accept(u))
            && let Some(u) = self.urcs.remove(i)
        {
            return Ok(u);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let DteEvent::Urc(u) = self.next_event(deadline, "(waiting for a URC)", timeout)? {
                let u = String::from_utf8_lossy(&u).into_owned();
                if accept(&u) {
                    return Ok(u);
                }
                self.urcs.push_back(u);
            }
        }
    }

    /// Reads for up to `wait` and returns every URC received so far (queued ones included).
    pub fn poll_urcs(&mut self, wait: Duration) -> Result<Vec<String>, ClientError> {
        let deadline = Instant::now() + wait;
        loop {
            match self.next_event(deadline, "(idle)", wait) {
                Ok(DteEvent::Urc(u)) => self.urcs.push_back(String::from_utf8_lossy(&u).into()),
                Ok(_) => {}
                Err(ClientError::Timeout { .. }) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(self.take_urcs())
    }

    /// The URCs queued so far.
    pub fn take_urcs(&mut self) -> Vec<String> {
        self.urcs.drain(..).collect()
    }

    /// Waits for the module to answer again after a reboot: `AT` every second (reopening the
    /// port when it went away, as a USB module's does), then `ATE0` and `AT+CMEE=2`.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.run(&Command::new("AT").timeout(Duration::from_secs(1))) {
                Ok(r) if r.is_ok() => break,
                Ok(_) => {}
                Err(ClientError::Timeout { .. }) => {
                    // Back up, the module speaks plain AT again: a multiplexer is started
                    // anew (a module still booting does not answer yet: try again).
                    if let Err(e) = self.link.after_reboot(Duration::from_secs(2)) {
                        tracing::debug!(error = %e, "setting the link up again failed");
                    }
                }
                Err(e) => {
                    let Some(spec) = self.spec.clone() else {
                        return Err(e);
                    };
                    thread::sleep(Duration::from_millis(500));
                    // The old link goes first: dropping a multiplexed one closes its DLCI
                    // and the multiplexer, which must not hit the new one on the same port.
                    self.link = Box::new(Gone);
                    // Not up yet (the port, or the multiplexer on it): the next round tries
                    // again.
                    if let Some(link) = port::open(&spec)
                        .ok()
                        .and_then(|link| multiplexed(link, self.options.multiplex))
                    {
                        self.link = link;
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(ClientError::Timeout {
                    command: "AT (after the reboot)".into(),
                    waited: timeout,
                });
            }
        }
        self.ok_line("ATE0")?;
        self.ok_line("AT+CMEE=2")?;
        Ok(())
    }

    fn write(&mut self, bytes: &[u8], what: &str) -> Result<(), ClientError> {
        use std::io::Write;
        self.link
            .write_all(bytes)
            .and_then(|()| self.link.flush())
            .map_err(|source| ClientError::Io {
                command: what.to_string(),
                source,
            })
    }

    /// The next digested event, reading as needed until `deadline`.
    fn next_event(
        &mut self,
        deadline: Instant,
        what: &str,
        timeout: Duration,
    ) -> Result<DteEvent, ClientError> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(event) = self.digester.next_event() {
                self.record_event(&event);
                return Ok(event);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout {
                    command: what.to_string(),
                    waited: timeout,
                });
            }
            let io_error = |source| ClientError::Io {
                command: what.to_string(),
                source,
            };
            self.link
                .set_read_timeout(left.min(Duration::from_millis(200)))
                .map_err(io_error)?;
            match io::Read::read(&mut self.link, &mut buf) {
                Ok(0) => {
                    return Err(ClientError::Closed {
                        command: what.to_string(),
                    });
                }
                Ok(n) => self.digester.feed(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(io_error(e)),
            }
        }
    }

    fn record_event(&mut self, event: &DteEvent) {
        let text = match event {
            // The echo repeats the line as sent, secrets included: never recorded.
            DteEvent::Echo(_) => return,
            DteEvent::Prompt => ">".to_string(),
            DteEvent::Info(l) | DteEvent::Urc(l) => printable(l),
            DteEvent::Final(r) => result_text(r),
        };
        self.record(Direction::Received, &text);
    }

    fn record(&mut self, direction: Direction, text: &str) {
        if let Some(t) = &mut self.transcript {
            t.record(direction, text);
        }
    }
}

/// A received line as text for a transcript: control bytes escaped, long raw data elided.
fn printable(line: &[u8]) -> String {
    const MAX: usize = 512;
    let mut s = String::new();
    for &b in line.iter().take(MAX) {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    if line.len() > MAX {
        s.push_str(&format!("... ({} bytes)", line.len()));
    }
    s
}

/// Quotes a string argument for an AT command line, refusing what the syntax cannot carry
/// (a `"`, or a control character).
pub fn quote(value: &str) -> Result<String, String> {
    if value.chars().any(|c| c == '"' || c.is_control()) {
        return Err(format!(
            "`{value}` holds a quote or a control character, which an AT string cannot carry"
        ));
    }
    Ok(format!("\"{value}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_only_the_redacted_line() {
        let c = Command::with_secret(
            Zeroizing::new("AT+USECCFG=0,1,\"hunter2\"".into()),
            format!("AT+USECCFG=0,1,\"{REDACTED}\""),
        )
        .payload(Zeroizing::new(b"key bytes".to_vec()), "<9 bytes>");
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2") && !d.contains("key bytes"), "{d}");
        assert!(d.contains("<redacted>") && d.contains("<9 bytes>"), "{d}");
    }

    #[test]
    fn quote_refuses_what_at_strings_cannot_hold() {
        assert_eq!(quote("RootCA"), Ok("\"RootCA\"".into()));
        assert!(quote("a\"b").is_err());
        assert!(quote("a\rb").is_err());
    }

    #[test]
    fn printable_escapes_and_elides() {
        assert_eq!(printable(b"a\r\n\x01"), "a\\r\\n\\x01");
        assert!(printable(&[b'x'; 600]).ends_with("... (600 bytes)"));
    }
}
