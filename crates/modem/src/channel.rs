//! One AT channel: the sans-I/O engine a transport drives.
//!
//! [`Channel::feed`] takes the bytes the host sent and appends the module's answer to an output
//! buffer; [`Channel::poll`] runs the timers (payload timeout, request deadlines), ends commands
//! whose job has finished, continues a streamed answer and delivers queued URCs. Both take the
//! time from the caller ([`Now`]), so tests run on a virtual clock. A channel has its own echo,
//! `ATV`, `ATQ` and `AT+CMEE` settings; every channel of a module shares its state.
//!
//! # Back-pressure
//!
//! The channel stops producing once the output buffer holds [`OUTPUT_LIMIT`] bytes: input it
//! has not run yet stays queued (up to [`MAX_PENDING_INPUT`]) and a streamed answer waits.
//! The transport writes what it has, then polls again; it reads more input only while
//! [`Channel::wants_input`] says so. A host that pipelines reads without reading the answers
//! therefore costs the module at most about one output buffer, not the sum of the answers.

use std::time::{Duration, Instant};

use sealcell_at::commands::cmux::CmuxStatus;
use sealcell_at::format::{ChannelSettings, FinalResult};
use sealcell_at::line::{LineAssembler, Push};
use sealcell_at::payload::PayloadReceiver;
use sealcell_at::syntax::{Line, parse_line};

use sealcell_at::xmodem::{Receiver, Status as XmodemStatus};

use crate::command::fw_update::XmodemJob;
use crate::command::{self, Continuation, Ctx, Outcome, PayloadTarget, Stream};
use crate::module::{ChannelId, Module};
use crate::time::Now;
use crate::timing::FormKind;

/// Output a channel produces before it stops and waits for the transport to send it, when the
/// module has few channels; with many, each gets its share of [`MODULE_OUTPUT_BUDGET`] (at
/// least [`MIN_OUTPUT_LIMIT`]).
///
/// # Security
/// Bounds what one channel can make the module hold, whatever the host pipelines.
pub const OUTPUT_LIMIT: usize = 1 << 20;

/// The output all channels of a module may hold back at once, shared among them.
///
/// # Security
/// A host that opens many channels and reads none of them costs the module this much output,
/// not a full [`OUTPUT_LIMIT`] per channel.
pub const MODULE_OUTPUT_BUDGET: usize = 16 << 20;

/// The smallest share of [`MODULE_OUTPUT_BUDGET`] a channel gets, however many there are.
pub const MIN_OUTPUT_LIMIT: usize = 16 * 1024;

/// A channel's output limit when the module has `channels` of them.
pub fn output_limit(channels: usize) -> usize {
    (MODULE_OUTPUT_BUDGET / channels.max(1)).clamp(MIN_OUTPUT_LIMIT, OUTPUT_LIMIT)
}

/// Input a channel holds while its output is full or its command waits for a job.
///
/// # Security
/// A transport that kept feeding a blocked channel would lose bytes beyond this, not grow the
/// module; the transports here stop reading instead.
pub const MAX_PENDING_INPUT: usize = 1 << 20;

/// How much of a streamed answer is read from the file at a time.
const STREAM_CHUNK: usize = 64 * 1024;

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
    /// A streamed answer in progress.
    stream: Option<Stream>,
    /// The command waits for a disk job's end.
    waiting: bool,
    /// Input received but not yet run (output full, or a command waiting).
    pending: Vec<u8>,
    /// This channel's output limit, as of the last call ([`output_limit`]).
    limit: usize,
    /// The command line a job or a stream interrupted, and the index of its next command: the
    /// line goes on when that command ends (`AT+UDELFILE="a";+UDELFILE="b"`).
    rest_of_line: Option<(Vec<u8>, usize)>,
    /// `AT+CMUX` answered `OK`: the link switches to 27.010 before this channel runs more.
    multiplex: Option<CmuxStatus>,
    greets: bool,
    /// Output the test bench's `link-stall` holds, and until when.
    stalled: Option<(Instant, Vec<u8>)>,
    /// The module's power epoch this channel last saw.
    power_epoch: u64,
    /// The host ends its lines with CR LF (an LF came right after its last line's CR).
    crlf_host: bool,
    /// The last line ended with CR and the byte after it has not come yet.
    after_cr_line: bool,
    /// The payload that just started is from a CR LF host whose line-end LF has not come
    /// yet: an LF first is that, not data.
    skip_lf: bool,
    /// The transport holds this channel's output (a DLCI under the host's flow control):
    /// URCs stay in the module's queue, which bounds them.
    held: bool,
    /// The timing profile's answer latency ([`crate::timing`]): what the last command line
    /// said, held until the time a real module takes to say it. The channel runs nothing
    /// meanwhile.
    answering: Option<(Instant, Vec<u8>)>,
    /// The latency of the commands run since the line started (added as each runs).
    latency: Duration,
    /// A boot reset this channel while the module was quiet: the greeting comes at its end.
    greet_pending: bool,
    /// The timing profile's install: its `+UUFWINSTALL` URCs still to come, one a step.
    installing: Option<Progress>,
    /// A reboot whose `OK` is held for its latency: the module reboots once it is said.
    reboot_when_said: bool,
    /// A command line is running: a line that goes on inside it (after a short stream) is
    /// part of it, and the outermost holds the whole line's answer.
    in_line: bool,
    epoch: u64,
}

/// An install's progress on the timing profile's clock.
struct Progress {
    urcs: std::collections::VecDeque<Vec<u8>>,
    step: Duration,
    next: Instant,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("id", &self.id)
            .field("settings", &self.settings)
            .field("in_payload", &self.payload.is_some())
            .field("streaming", &self.stream.is_some())
            .field("waiting", &self.waiting)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Channel {
    /// Attaches a new channel to `module`, in the power-on state.
    pub fn new(module: &mut Module) -> Channel {
        let id = module.attach_channel();
        Channel::attached(module, id)
    }

    /// A DLCI's channel for an id already attached: power-on settings, and no greeting after
    /// a boot (the reboot ends its multiplexer, and the plain link greets).
    pub(crate) fn for_dlci(module: &Module, id: ChannelId) -> Channel {
        Channel {
            greets: false,
            ..Channel::attached(module, id)
        }
    }

    /// A stand-in while a link switches modes (`std::mem::replace`): never attached, never
    /// driven, replaced at once.
    pub(crate) fn placeholder(module: &Module) -> Channel {
        Channel::attached(module, ChannelId(u64::MAX))
    }

    /// A channel in the power-on state for an id already attached.
    fn attached(module: &Module, id: ChannelId) -> Channel {
        Channel {
            id,
            settings: ChannelSettings::default(),
            assembler: LineAssembler::new(),
            payload: None,
            xmodem: None,
            stream: None,
            waiting: false,
            pending: Vec::new(),
            limit: OUTPUT_LIMIT,
            rest_of_line: None,
            multiplex: None,
            greets: true,
            crlf_host: false,
            stalled: None,
            power_epoch: module.power_epoch(),
            after_cr_line: false,
            skip_lf: false,
            held: false,
            answering: None,
            latency: Duration::ZERO,
            greet_pending: false,
            installing: None,
            reboot_when_said: false,
            in_line: false,
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

    /// Whether the transport should read more input, given `out_len` bytes of output not yet
    /// sent: not while input waits to be run, an answer is streaming, a command waits for its
    /// job, or the output is full.
    pub fn wants_input(&self, out_len: usize) -> bool {
        self.pending.is_empty()
            && !self.is_busy()
            && self.multiplex.is_none()
            && out_len < self.limit
    }

    /// Input received and not yet run.
    pub fn pending_input(&self) -> usize {
        self.pending.len()
    }

    /// Takes the switch to 27.010 that `AT+CMUX` asked for, with the input after its line
    /// (frames, already).
    pub(crate) fn take_multiplex(&mut self) -> Option<(CmuxStatus, Vec<u8>)> {
        if self.answering.is_some() {
            // The `OK` is not said yet: the link switches once it is.
            return None;
        }
        let status = self.multiplex.take()?;
        Some((status, std::mem::take(&mut self.pending)))
    }

    /// Whether the channel has output to produce once the transport has sent what it has
    /// (a streamed answer, queued input): poll again after writing.
    pub fn has_more(&self) -> bool {
        if self.is_held_by_timing() {
            // The timing profile holds it: its deadline, not a poll, moves it on.
            return false;
        }
        self.stream.is_some()
            || (!self.pending.is_empty() && !self.waiting && self.multiplex.is_none())
    }

    /// Whether the timing profile holds this channel (an answer not said yet, an install, a
    /// boot's greeting to come).
    fn is_held_by_timing(&self) -> bool {
        self.answering.is_some() || self.installing.is_some() || self.greet_pending
    }

    fn is_busy(&self) -> bool {
        self.stream.is_some()
            || self.waiting
            || self.answering.is_some()
            || self.installing.is_some()
    }

    /// When [`Channel::poll`] must run next even if no byte arrives and nothing wakes it.
    pub fn next_deadline(&self, module: &Module) -> Option<Instant> {
        let job = module.job_deadline(self.id);
        let stalled = self.stalled.as_ref().map(|(until, _)| *until);
        let answering = self.answering.as_ref().map(|(due, _)| *due);
        let progress = self.installing.as_ref().map(|p| p.next);
        // While the timing profile holds the channel its own timers wait for the hold's end
        // (a payload's timeout is not run meanwhile): theirs would be past, and hide it. The
        // quiet window's end is the module's timer, in `job`.
        let held = self.is_held_by_timing() || module.is_quiet();
        let payload = self.payload.as_ref().map(|p| p.receiver.deadline());
        let xmodem = self.xmodem.as_ref().and_then(|(r, _)| r.deadline());
        let own = payload.into_iter().chain(xmodem).filter(|_| !held);
        own.chain(job)
            .chain(stalled)
            .chain(answering)
            .chain(progress)
            .min()
    }

    /// Detaches from the module, abandoning any payload in progress. An install in progress
    /// on it goes on without it (its URCs unheard) and ends with its reboot.
    pub fn close(self, module: &mut Module) {
        if self.installing.is_some()
            && self.epoch == module.epoch()
            && let Some(end) = module.quiet_until()
        {
            module.reboot_at(end);
        }
        module.detach_channel(self.id);
    }

    /// Processes bytes from the host; the answer is appended to `out` (up to about
    /// [`OUTPUT_LIMIT`]; what the limit holds back comes with later polls).
    pub fn feed(&mut self, module: &mut Module, input: &[u8], now: Now, out: &mut Vec<u8>) {
        let start = out.len();
        self.feed_inner(module, input, now, out);
        self.after_call(module, out, start);
    }

    /// Runs timers, ends a command whose job finished, continues a streamed answer or queued
    /// input, and delivers URCs queued while the channel was idle.
    pub fn poll(&mut self, module: &mut Module, now: Now, out: &mut Vec<u8>) {
        let start = out.len();
        self.poll_inner(module, now, out);
        self.after_call(module, out, start);
    }

    /// A write of this call that the test bench's armed power cut landed on: the module lost
    /// its power during it, so nothing it said is said, and the input it had not run is gone.
    fn after_call(&mut self, module: &mut Module, out: &mut Vec<u8>, start: usize) {
        if module.settle_power() {
            out.truncate(start);
            self.pending.clear();
            self.stalled = None;
            return;
        }
        // The test bench's link faults, on what this call said (nothing to do, and nothing
        // copied, without them).
        if self.stalled.is_none() && !module.faults.link_armed() {
            return;
        }
        let now = module.now().mono();
        let mut said = out.split_off(start);
        if let Some((until, held)) = self.stalled.as_mut() {
            if now < *until {
                held.append(&mut said);
                return;
            }
            let mut held = std::mem::take(held);
            self.stalled = None;
            held.append(&mut said);
            said = held;
        }
        if let Some(until) = module.faults.on_output(&mut said, now) {
            self.stalled = Some((until, said));
            return;
        }
        out.append(&mut said);
    }

    fn feed_inner(&mut self, module: &mut Module, input: &[u8], now: Now, out: &mut Vec<u8>) {
        module.observe(now);
        self.limit = output_limit(module.channel_count());
        self.sync_with_boot(module, out);
        if !self.keep_time(module, now.mono(), out) {
            if module.is_quiet() {
                // A booting or installing module's UART takes nothing: the bytes are lost.
                tracing::debug!(
                    channel = self.id.0,
                    bytes = input.len(),
                    "input while quiet dropped"
                );
            } else {
                self.hold(input);
            }
            return;
        }
        // URCs queued while the channel was idle go out before the answer to new input.
        if !self.assembler.is_mid_line() {
            self.deliver_urcs(module, out);
        }
        if self.pending.is_empty() {
            let used = self.consume(module, input, now, out);
            self.hold(&input[used..]);
        } else {
            self.hold(input);
            self.run_pending(module, now, out);
        }
        self.deliver_urcs(module, out);
    }

    fn poll_inner(&mut self, module: &mut Module, now: Now, out: &mut Vec<u8>) {
        module.observe(now);
        self.limit = output_limit(module.channel_count());
        module.expire_jobs(now.mono());
        self.sync_with_boot(module, out);
        if !self.keep_time(module, now.mono(), out) {
            return;
        }
        if let Some((receiver, _)) = self.xmodem.as_mut() {
            let status = receiver.poll(now.mono(), out);
            if status != XmodemStatus::Receiving {
                self.finish_xmodem(module, status, now, out);
            }
        }
        if let Some(p) = self.payload.take() {
            if p.receiver.timed_out(now.mono()) {
                tracing::debug!(
                    channel = self.id.0,
                    remaining = p.receiver.remaining(),
                    "payload timed out"
                );
                self.skip_lf = false;
                self.settings
                    .write_final(out, FinalResult::Cme(p.timeout_error));
            } else {
                self.payload = Some(p);
            }
        }
        if self.waiting
            && let Some(answer) = module.take_answer(self.id)
        {
            self.waiting = false;
            match answer.downcast::<Continuation>() {
                Ok(then) => {
                    let mut ctx = Ctx::new(module, self.id, &mut self.settings, out, now);
                    let result = (*then)(&mut ctx);
                    self.end(module, result, now, out);
                }
                Err(other) => {
                    if !other.is::<crate::job::Failed>() {
                        tracing::error!("a job answered with something else than a continuation");
                    }
                    self.rest_of_line = None;
                    self.settings
                        .write_final(out, FinalResult::Cme(sealcell_at::CmeError::MemoryFailure));
                }
            }
        }
        self.run_pending(module, now, out);
        self.deliver_urcs(module, out);
    }

    /// The timing profile's clock on this channel: says a held answer that is due, the
    /// install's progress that is due (and reboots after its last URC), and the greeting when
    /// a boot ends. Returns whether the channel may go on (not answering, the module not
    /// quiet).
    fn keep_time(&mut self, module: &mut Module, now: Instant, out: &mut Vec<u8>) -> bool {
        if let Some((due, _)) = &self.answering
            && *due <= now
            && let Some((_, said)) = self.answering.take()
        {
            out.extend_from_slice(&said);
            if std::mem::take(&mut self.reboot_when_said) {
                reboot(module);
                self.sync_with_boot(module, out);
            }
        }
        while let Some(p) = self.installing.as_mut()
            && p.next <= now
        {
            if let Some(urc) = p.urcs.pop_front() {
                self.settings.write_urc(out, &urc);
                p.next += p.step;
            }
            if p.urcs.is_empty() {
                // The last one is said: the module reboots into what it installed.
                self.installing = None;
                reboot(module);
                self.sync_with_boot(module, out);
            }
        }
        if self.answering.is_some() || self.installing.is_some() || module.is_quiet() {
            return false;
        }
        if std::mem::take(&mut self.greet_pending) {
            self.greet(module, out);
        }
        true
    }

    /// Keeps input the channel cannot run yet.
    fn hold(&mut self, input: &[u8]) {
        let room = MAX_PENDING_INPUT.saturating_sub(self.pending.len());
        if input.len() > room {
            tracing::warn!(
                channel = self.id.0,
                dropped = input.len() - room,
                "input beyond the pending limit dropped (the transport ignored wants_input)"
            );
        }
        self.pending
            .extend_from_slice(&input[..input.len().min(room)]);
    }

    /// Continues a streamed answer, then runs queued input, while the output has room.
    fn run_pending(&mut self, module: &mut Module, now: Now, out: &mut Vec<u8>) {
        self.pump_stream(module, now, out);
        if self.pending.is_empty()
            || self.is_busy()
            || self.multiplex.is_some()
            || out.len() >= self.limit
        {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let used = self.consume(module, &pending, now, out);
        // Input that arrived meanwhile cannot exist (this channel is the only feeder), so the
        // rest goes back as it was.
        self.pending = pending;
        self.pending.drain(..used);
    }

    /// Runs input until it is used up or the channel blocks; returns how much it used.
    fn consume(&mut self, module: &mut Module, input: &[u8], now: Now, out: &mut Vec<u8>) -> usize {
        let epoch = module.epoch();
        let mut rest = input;
        while !rest.is_empty() {
            if module.epoch() != epoch && !self.greets {
                // A DLCI rebooted the module: its multiplexer is gone with the boot, and the
                // rest of what it was sent is not run on the new one.
                return input.len();
            }
            if module.is_quiet() {
                // A booting (or installing) module's UART takes nothing: the rest is lost.
                return input.len();
            }
            self.pump_stream(module, now, out);
            if self.is_busy() || self.multiplex.is_some() || out.len() >= self.limit {
                break;
            }
            if let Some((receiver, job)) = self.xmodem.as_mut() {
                // The transfer owns the line until it ends; bytes after its end are dropped.
                let status = receiver.feed(rest, now.mono(), out, &mut |d| job.write(d));
                rest = &[];
                if status != XmodemStatus::Receiving {
                    self.finish_xmodem(module, status, now, out);
                }
                continue;
            }
            if let Some(p) = self.payload.as_mut() {
                if std::mem::take(&mut self.skip_lf) && rest.first() == Some(&b'\n') {
                    rest = &rest[1..];
                    continue;
                }
                let (taken, after) = p.receiver.take(rest, now.mono());
                p.target.write(taken);
                rest = after;
                if p.receiver.is_complete() {
                    self.finish_payload(module, now, out);
                }
                continue;
            }
            let mut consumed = rest.len();
            for (i, &b) in rest.iter().enumerate() {
                // The byte after a line's CR says whether this host ends lines with CR LF.
                if std::mem::take(&mut self.after_cr_line) {
                    self.crlf_host = b == b'\n';
                }
                match self.assembler.push(b) {
                    Push::Pending => {
                        if self.settings.echo {
                            out.push(b);
                        }
                    }
                    Push::IgnoredLf => self.crlf_host = true,
                    Push::Line => {
                        if self.settings.echo {
                            out.push(b);
                        }
                        consumed = i + 1;
                        self.run_line(module, now, out);
                        // A host that ends its lines with CR LF sends the LF before it can
                        // have seen the prompt: it ends the command line, it is not the
                        // payload's first byte (atat 0.13's `AT+USOWR=0,6\r\n`). Known by
                        // its arriving with the CR, or by the host's earlier lines; then the
                        // next byte is that LF however the reads split it. A host that ends
                        // lines with CR alone (ubxlib) sends its payload after the prompt,
                        // and an LF that starts it is data.
                        if b == b'\r' && self.payload.is_some() {
                            match rest.get(consumed) {
                                Some(b'\n') => {
                                    self.crlf_host = true;
                                    consumed += 1;
                                }
                                Some(_) => self.crlf_host = false,
                                None if self.crlf_host => self.skip_lf = true,
                                None => {}
                            }
                        } else {
                            self.after_cr_line = b == b'\r';
                        }
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
            rest = &rest[consumed..];
        }
        input.len() - rest.len()
    }

    /// Copies the next chunks of a streamed answer while the output has room; at its end,
    /// the suffix, then the rest of its command line (or `OK`).
    fn pump_stream(&mut self, module: &mut Module, now: Now, out: &mut Vec<u8>) {
        while let Some(stream) = self.stream.as_mut() {
            if stream.remaining == 0 {
                out.extend_from_slice(stream.suffix);
                let failed = stream.failed;
                self.stream = None;
                if failed {
                    self.rest_of_line = None;
                    self.settings
                        .write_final(out, FinalResult::Cme(sealcell_at::CmeError::MemoryFailure));
                } else {
                    self.go_on(module, now, out);
                }
                return;
            }
            if out.len() >= self.limit {
                return;
            }
            let want = usize::try_from(stream.remaining)
                .unwrap_or(usize::MAX)
                .min(STREAM_CHUNK)
                .min(self.limit - out.len());
            let start = out.len();
            out.resize(start + want, 0);
            match read_full(stream.reader.as_mut(), &mut out[start..]) {
                Ok(n) if n == want => stream.remaining -= n as u64,
                result => {
                    // The file failed under the reader: the answer cannot be completed with
                    // what it announced. Zeros keep the framing the host parses by length
                    // (pumped like the rest, within the output limit); the final result says
                    // it failed.
                    let n = *result.as_ref().unwrap_or(&0);
                    tracing::error!(
                        channel = self.id.0,
                        error = ?result.err(),
                        "a streamed answer's file could not be read to its end"
                    );
                    stream.remaining -= n as u64;
                    out.truncate(start + n);
                    stream.reader = Box::new(std::io::repeat(0));
                    stream.failed = true;
                }
            }
        }
    }

    /// Whether the transport holds this channel's output: URCs then wait in the module's
    /// queue (at most [`crate::MAX_QUEUED_URCS`]) instead of its output.
    pub(crate) fn set_held(&mut self, held: bool) {
        self.held = held;
    }

    pub(crate) fn sync_with_boot(&mut self, module: &mut Module, out: &mut Vec<u8>) {
        if self.epoch == module.epoch() {
            return;
        }
        self.epoch = module.epoch();
        self.settings = ChannelSettings::default();
        self.assembler.reset();
        // What the old boot had said, and was held back, is gone with it.
        self.stalled = None;
        self.answering = None;
        self.installing = None;
        self.reboot_when_said = false;
        if module.power_epoch() != self.power_epoch {
            // The power went: what the host had sent and the module had not run yet is lost.
            self.power_epoch = module.power_epoch();
            self.pending.clear();
        }
        self.payload = None;
        self.skip_lf = false;
        // A new boot may have a new host behind it.
        self.crlf_host = false;
        self.after_cr_line = false;
        self.xmodem = None;
        self.stream = None;
        self.waiting = false;
        self.rest_of_line = None;
        self.multiplex = None;
        if module.is_quiet() {
            // A booting module: what was sent to the old boot is lost with it, and the
            // greeting waits for the boot's end.
            self.pending.clear();
            self.greet_pending = true;
        } else {
            self.greet(module, out);
        }
    }

    fn greet(&mut self, module: &Module, out: &mut Vec<u8>) {
        if self.greets && module.nvm.values.greeting_enabled {
            let greeting = module.nvm.values.greeting.clone();
            self.settings.write_urc(out, greeting.as_bytes());
        }
    }

    fn deliver_urcs(&mut self, module: &mut Module, out: &mut Vec<u8>) {
        // A full or held output leaves them queued, where the module's own cap
        // (MAX_QUEUED_URCS) bounds them.
        if self.in_payload()
            || self.is_busy()
            || self.multiplex.is_some()
            || self.held
            || out.len() >= self.limit
            || !module.has_urcs(self.id)
        {
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
        now: Now,
        out: &mut Vec<u8>,
    ) {
        let Some((_, job)) = self.xmodem.take() else {
            return;
        };
        let mut ctx = Ctx::new(module, self.id, &mut self.settings, out, now);
        let result = (*job).finish(status, &mut ctx);
        self.end(module, result, now, out);
    }

    fn finish_payload(&mut self, module: &mut Module, now: Now, out: &mut Vec<u8>) {
        let Some(p) = self.payload.take() else { return };
        let mut ctx = Ctx::new(module, self.id, &mut self.settings, out, now);
        let result = p.target.finish(&mut ctx);
        self.end(module, result, now, out);
    }

    /// [`Channel::conclude`] for a command that ends outside its command line (after a
    /// payload, a transfer or a job): `Done` is its `OK`.
    fn end(
        &mut self,
        module: &mut Module,
        result: command::CmdResult,
        now: Now,
        out: &mut Vec<u8>,
    ) {
        let rest = self.rest_of_line.take();
        if self.conclude(module, result, now, out) {
            self.rest_of_line = rest;
            self.go_on(module, now, out);
        } else if self.is_busy() {
            // Suspended again (a job after a job, a stream after a job): the line still waits.
            self.rest_of_line = rest;
            self.pump_stream(module, now, out);
        }
    }

    /// A command that was suspended ended well: the rest of its line, or `OK`.
    fn go_on(&mut self, module: &mut Module, now: Now, out: &mut Vec<u8>) {
        match self.rest_of_line.take() {
            Some((text, next)) => self.run_commands(module, now, out, text, next),
            None => self.settings.write_final(out, FinalResult::Ok),
        }
    }

    /// Ends a command with its outcome: the final result, or the next state (a prompt, a
    /// transfer, a job to wait for, a stream). Returns whether the command line goes on.
    fn conclude(
        &mut self,
        module: &mut Module,
        result: command::CmdResult,
        now: Now,
        out: &mut Vec<u8>,
    ) -> bool {
        match result {
            Ok(Outcome::Done) => return true,
            Ok(Outcome::Prompt(job)) => {
                // Commands after a payload command on the same line are not run.
                out.extend_from_slice(job.prompt);
                self.payload = Some(Payload {
                    // The host hears the prompt once the line's latency has passed.
                    receiver: PayloadReceiver::new(
                        job.size,
                        module.config().payload_timeout,
                        now.mono() + self.latency,
                    ),
                    target: job.target,
                    timeout_error: job.timeout_error,
                });
            }
            Ok(Outcome::Xmodem(job)) => {
                // Commands after the transfer command on the same line are not run.
                // Its first `C` goes out once the line's latency has passed.
                let receiver = Receiver::new(job.free, now.mono() + self.latency, out);
                self.xmodem = Some((receiver, job));
            }
            Ok(Outcome::Wait(job)) => {
                module.start_disk_job(self.id, job);
                self.waiting = true;
            }
            Ok(Outcome::Await) => self.waiting = true,
            Ok(Outcome::Stream(stream)) => {
                // The caller pumps it, once the rest of the line is kept for its end.
                self.stream = Some(stream);
            }
            Ok(Outcome::RebootAfter(urcs)) if !module.timing().install.is_zero() => {
                // The install takes its time: the progress is spread over it, the module is
                // quiet meanwhile, and reboots once the last URC is said.
                self.settings.write_final(out, FinalResult::Ok);
                let install = module.timing().install;
                let steps = u32::try_from(urcs.len().max(1)).unwrap_or(u32::MAX);
                let step = install / steps;
                let start = now.mono() + self.latency;
                module.quiet_for(start + install);
                self.rest_of_line = None;
                self.installing = Some(Progress {
                    urcs: urcs.into(),
                    step,
                    next: start + step,
                });
            }
            Ok(Outcome::RebootAfter(urcs)) => {
                self.settings.write_final(out, FinalResult::Ok);
                for urc in urcs {
                    self.settings.write_urc(out, &urc);
                }
                reboot(module);
                // Whatever runs next on this channel (the rest of its input, input queued
                // behind a job) meets the rebooted one: greeting first, power-on settings.
                self.sync_with_boot(module, out);
            }
            Ok(Outcome::Multiplex(status)) => {
                // The OK goes out in plain text; what follows is the link's (crate::link).
                self.settings.write_final(out, FinalResult::Ok);
                self.multiplex = Some(status);
            }
            Ok(Outcome::Reboot) if !self.latency.is_zero() => {
                // The OK takes its time (the timing profile); the reboot follows it.
                self.settings.write_final(out, FinalResult::Ok);
                self.reboot_when_said = true;
            }
            Ok(Outcome::Reboot) => {
                self.settings.write_final(out, FinalResult::Ok);
                reboot(module);
                self.sync_with_boot(module, out);
            }
            Err(e) => self.settings.write_final(out, FinalResult::Cme(e)),
        }
        false
    }

    fn run_line(&mut self, module: &mut Module, now: Now, out: &mut Vec<u8>) {
        // A copy of the line (at most the assembler's limit) so that the commands, borrowed from
        // it, can change the channel's state, and the line can go on after a job.
        let text = self.assembler.line().to_vec();
        self.run_commands(module, now, out, text, 0);
    }

    /// Runs the commands of `text` from the `first`-th on; with a timing profile, what they
    /// say is held for their latency ([`Channel::keep_time`] says it).
    fn run_commands(
        &mut self,
        module: &mut Module,
        now: Now,
        out: &mut Vec<u8>,
        text: Vec<u8>,
        first: usize,
    ) {
        if self.in_line {
            // The line goes on inside itself (a short stream ended): the outer call holds it.
            self.run_commands_now(module, now, out, text, first);
            return;
        }
        self.in_line = true;
        let start = out.len();
        self.run_commands_now(module, now, out, text, first);
        self.in_line = false;
        let latency = std::mem::take(&mut self.latency);
        if !latency.is_zero() {
            let said = out.split_off(start.min(out.len()));
            self.answering = Some((now.mono() + latency, said));
        }
    }

    fn run_commands_now(
        &mut self,
        module: &mut Module,
        now: Now,
        out: &mut Vec<u8>,
        text: Vec<u8>,
        first: usize,
    ) {
        let line = match parse_line(&text) {
            Ok(Line::Empty) => return,
            Ok(Line::Commands(line)) => {
                if line.commands().next().is_none() {
                    // A bare `AT` takes a real module its time too.
                    self.latency += module.timing().answer;
                }
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
                self.latency += module.timing().answer;
                self.settings.write_final(out, FinalResult::Error);
                return;
            }
        };
        for (i, cmd) in line.commands().enumerate().skip(first) {
            let cmd = match cmd {
                Ok(cmd) => cmd,
                Err(_) => {
                    self.settings.write_final(out, FinalResult::Error);
                    return;
                }
            };
            self.latency += module
                .timing()
                .answer_latency(cmd.name.as_str(), FormKind::of(cmd.form));
            let mut ctx = Ctx::new(module, self.id, &mut self.settings, out, now);
            let result = command::execute(&cmd, &mut ctx);
            if !self.conclude(module, result, now, out) {
                if self.is_busy() {
                    // Commands after a job or a stream run when it ends; after a payload or a
                    // transfer they are not run.
                    self.rest_of_line = Some((text.clone(), i + 1));
                    self.pump_stream(module, now, out);
                }
                return;
            }
        }
        self.settings.write_final(out, FinalResult::Ok);
    }
}

fn reboot(module: &mut Module) {
    if let Err(e) = module.reboot() {
        tracing::error!(error = %e, "reboot failed; the module keeps its state");
    }
}

/// Reads until `buf` is full or the reader ends.
fn read_full(r: &mut dyn std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
