//! One AT channel: the sans-I/O engine a transport drives.
//!
//! [`Channel::feed`] takes the bytes the host sent and appends the module's answer to an output
//! buffer; [`Channel::poll`] runs the timers (payload timeout) and delivers queued URCs. Both
//! take `now` from the caller, so tests run on a virtual clock. A channel has its own echo,
//! `ATV`, `ATQ` and `AT+CMEE` settings; every channel of a module shares its state.

use std::time::Instant;

use sealcell_at::format::{ChannelSettings, FinalResult, PROMPT};
use sealcell_at::line::{LineAssembler, Push};
use sealcell_at::payload::PayloadReceiver;
use sealcell_at::syntax::{Line, parse_line};

use sealcell_at::xmodem::{Receiver, Status as XmodemStatus};

use crate::command::fw_update::XmodemJob;
use crate::command::{self, Ctx, Outcome, PayloadTarget};
use crate::module::{ChannelId, Module};

struct Payload {
    receiver: PayloadReceiver,
    target: Box<dyn PayloadTarget>,
    timeout_error: sealcell_at::CmeError,
}

/// An AT channel attached to a module.
pub struct Channel {
    id: ChannelId,
    settings: ChannelSettings,
    assembler: LineAssembler,
    payload: Option<Payload>,
    xmodem: Option<(Receiver, Box<XmodemJob>)>,
    epoch: u64,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("id", &self.id)
            .field("settings", &self.settings)
            .field("in_payload", &self.payload.is_some())
            .finish_non_exhaustive()
    }
}

impl Channel {
    /// Attaches a new channel to `module`, in the power-on state.
    pub fn new(module: &mut Module) -> Channel {
        Channel {
            id: module.attach_channel(),
            settings: ChannelSettings::default(),
            assembler: LineAssembler::new(),
            payload: None,
            xmodem: None,
            epoch: module.epoch(),
        }
    }

    /// This channel's id (URCs are addressed to it).
    pub fn id(&self) -> ChannelId {
        self.id
    }

    /// The current result settings.
    pub fn settings(&self) -> ChannelSettings {
        self.settings
    }

    /// Whether a raw payload is being received.
    pub fn in_payload(&self) -> bool {
        self.payload.is_some() || self.xmodem.is_some()
    }

    /// When [`Channel::poll`] must run next even if no byte arrives.
    pub fn next_deadline(&self) -> Option<Instant> {
        let payload = self.payload.as_ref().map(|p| p.receiver.deadline());
        let xmodem = self.xmodem.as_ref().and_then(|(r, _)| r.deadline());
        payload.into_iter().chain(xmodem).min()
    }

    /// Detaches from the module, abandoning any payload in progress.
    pub fn close(self, module: &mut Module) {
        module.detach_channel(self.id);
    }

    /// Processes bytes from the host; the answer is appended to `out`.
    pub fn feed(&mut self, module: &mut Module, mut input: &[u8], now: Instant, out: &mut Vec<u8>) {
        self.sync_with_boot(module, out);
        // URCs queued while the channel was idle go out before the answer to new input.
        if !self.assembler.is_mid_line() {
            self.deliver_urcs(module, out);
        }
        while !input.is_empty() {
            if let Some((receiver, job)) = self.xmodem.as_mut() {
                // The transfer owns the line until it ends; bytes after its end are dropped.
                let status = receiver.feed(input, now, out, &mut |d| job.write(d));
                input = &[];
                if status != XmodemStatus::Receiving {
                    self.finish_xmodem(module, status, now, out);
                }
                continue;
            }
            if let Some(p) = self.payload.as_mut() {
                let (taken, rest) = p.receiver.take(input, now);
                p.target.write(taken);
                input = rest;
                if p.receiver.is_complete() {
                    self.finish_payload(module, now, out);
                }
                continue;
            }
            let mut consumed = input.len();
            for (i, &b) in input.iter().enumerate() {
                match self.assembler.push(b) {
                    Push::Pending => {
                        if self.settings.echo {
                            out.push(b);
                        }
                    }
                    Push::IgnoredLf => {}
                    Push::Line => {
                        if self.settings.echo {
                            out.push(b);
                        }
                        consumed = i + 1;
                        self.run_line(module, now, out);
                        break;
                    }
                    Push::Overflow => {
                        if self.settings.echo {
                            out.push(b);
                        }
                        consumed = i + 1;
                        self.settings.write_final(out, FinalResult::Error);
                        break;
                    }
                }
            }
            input = &input[consumed..];
            // A reboot inside the line resets this channel before the rest of the input.
            self.sync_with_boot(module, out);
        }
        self.deliver_urcs(module, out);
    }

    /// Runs timers and delivers URCs queued while the channel was idle.
    pub fn poll(&mut self, module: &mut Module, now: Instant, out: &mut Vec<u8>) {
        self.sync_with_boot(module, out);
        if let Some((receiver, _)) = self.xmodem.as_mut() {
            let status = receiver.poll(now, out);
            if status != XmodemStatus::Receiving {
                self.finish_xmodem(module, status, now, out);
            }
        }
        if let Some(p) = self.payload.take() {
            if p.receiver.timed_out(now) {
                tracing::debug!(
                    channel = self.id.0,
                    remaining = p.receiver.remaining(),
                    "payload timed out"
                );
                self.settings
                    .write_final(out, FinalResult::Cme(p.timeout_error));
            } else {
                self.payload = Some(p);
            }
        }
        module.collect_http_jobs();
        self.deliver_urcs(module, out);
    }

    fn sync_with_boot(&mut self, module: &mut Module, out: &mut Vec<u8>) {
        if self.epoch == module.epoch() {
            return;
        }
        self.epoch = module.epoch();
        self.settings = ChannelSettings::default();
        self.assembler.reset();
        self.payload = None;
        self.xmodem = None;
        if module.nvm.values.greeting_enabled {
            let greeting = module.nvm.values.greeting.clone();
            self.settings.write_urc(out, greeting.as_bytes());
        }
    }

    fn deliver_urcs(&mut self, module: &mut Module, out: &mut Vec<u8>) {
        if self.in_payload() || !module.has_urcs(self.id) {
            return;
        }
        for urc in module.take_urcs(self.id).unwrap_or_default() {
            self.settings.write_urc(out, &urc);
        }
    }

    fn finish_xmodem(
        &mut self,
        module: &mut Module,
        status: XmodemStatus,
        now: Instant,
        out: &mut Vec<u8>,
    ) {
        let Some((_, job)) = self.xmodem.take() else {
            return;
        };
        let mut ctx = Ctx::new(module, self.id, &mut self.settings, out, now);
        let result = (*job).finish(status, &mut ctx);
        self.conclude(module, result, out);
    }

    /// Writes the final result of a command that ended outside `run_line`.
    fn conclude(&mut self, module: &mut Module, result: command::CmdResult, out: &mut Vec<u8>) {
        match result {
            Ok(Outcome::RebootAfter(urcs)) => {
                self.settings.write_final(out, FinalResult::Ok);
                for urc in urcs {
                    self.settings.write_urc(out, &urc);
                }
                if let Err(e) = module.reboot() {
                    tracing::error!(error = %e, "reboot failed; the module keeps its state");
                }
            }
            Ok(_) => self.settings.write_final(out, FinalResult::Ok),
            Err(e) => self.settings.write_final(out, FinalResult::Cme(e)),
        }
    }

    fn finish_payload(&mut self, module: &mut Module, now: Instant, out: &mut Vec<u8>) {
        let Some(p) = self.payload.take() else { return };
        let mut ctx = Ctx::new(module, self.id, &mut self.settings, out, now);
        let result = match p.target.finish(&mut ctx) {
            Ok(()) => FinalResult::Ok,
            Err(e) => FinalResult::Cme(e),
        };
        self.settings.write_final(out, result);
    }

    fn run_line(&mut self, module: &mut Module, now: Instant, out: &mut Vec<u8>) {
        let line = match parse_line(self.assembler.line()) {
            Ok(Line::Empty) => return,
            Ok(Line::Commands(line)) => {
                if line.discarded() > 0 {
                    tracing::debug!(
                        channel = self.id.0,
                        discarded = line.discarded(),
                        "bytes before the AT prefix discarded"
                    );
                }
                line
            }
            Err(e) => {
                tracing::debug!(channel = self.id.0, error = ?e, "syntax error");
                self.settings.write_final(out, FinalResult::Error);
                return;
            }
        };
        for cmd in line.commands() {
            let cmd = match cmd {
                Ok(cmd) => cmd,
                Err(_) => {
                    self.settings.write_final(out, FinalResult::Error);
                    return;
                }
            };
            let mut ctx = Ctx::new(module, self.id, &mut self.settings, out, now);
            match command::execute(&cmd, &mut ctx) {
                Ok(Outcome::Done) => {}
                Ok(Outcome::Prompt(job)) => {
                    // Commands after a payload command on the same line are not run.
                    out.extend_from_slice(PROMPT);
                    self.payload = Some(Payload {
                        receiver: PayloadReceiver::new(
                            job.size,
                            module.config().payload_timeout,
                            now,
                        ),
                        target: job.target,
                        timeout_error: job.timeout_error,
                    });
                    return;
                }
                Ok(Outcome::Xmodem(job)) => {
                    // Commands after the transfer command on the same line are not run.
                    let receiver = Receiver::new(job.free, now, out);
                    self.xmodem = Some((receiver, job));
                    return;
                }
                Ok(outcome @ Outcome::RebootAfter(_)) => {
                    self.conclude(module, Ok(outcome), out);
                    return;
                }
                Ok(Outcome::Reboot) => {
                    self.settings.write_final(out, FinalResult::Ok);
                    if let Err(e) = module.reboot() {
                        tracing::error!(error = %e, "reboot failed; the module keeps its state");
                    }
                    return;
                }
                Err(e) => {
                    self.settings.write_final(out, FinalResult::Cme(e));
                    return;
                }
            }
        }
        self.settings.write_final(out, FinalResult::Ok);
    }
}
