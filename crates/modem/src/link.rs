//! One serial link to the module: plain AT, or 27.010 multiplexed after `AT+CMUX`
//! (at-contract §10). What a transport drives.
//!
//! In plain mode the link is one [`Channel`]. Once `AT+CMUX` has answered `OK`, the link
//! speaks frames only ([`sealcell_at::cmux`]): each DLCI the host opens with SABM is an AT
//! channel of its own (echo, `+CMEE`, prompts, URCs, Xmodem), DLCI 0 is the control channel,
//! and CLD (or DISC of DLCI 0, or a reboot) brings the link back to plain AT. The plain channel
//! sleeps meanwhile, with its settings, its report modes and its queued URCs, and wakes up as
//! it was (after a reboot: as after power-on, with the greeting). The API is the channel's:
//! [`Link::feed`], [`Link::poll`], [`Link::wants_input`], [`Link::has_more`],
//! [`Link::next_deadline`], [`Link::close`].
//!
//! # Wake-ups
//! The edge registers one wake-up per link, under [`Link::wake_id`] (the plain channel's id);
//! every DLCI's channel wakes that id.
//!
//! # Back-pressure
//! Each DLCI's channel writes into a buffer of its own, bounded by the channel's output limit;
//! the link frames it out while the host's flow control (FCoff, an MSC's FC bit) allows. Once
//! the link's output holds [`OUTPUT_LIMIT`], the rest of the input waits, undecoded, for the
//! next poll (so a read of tiny frames to a streaming DLCI cannot make each frame pump another
//! limit's worth). The link stops reading while input waits so, or while a DLCI holds
//! [`LINK_HOLD_INPUT`] bytes of input it has not run (a host pipelining into a DLCI whose
//! command waits for a job): 27.010 has no way to stop one DLCI's input but the host's
//! goodwill, so the whole link waits. It never stops reading because the host holds a DLCI's
//! output: the frame that lets it go must get through.

use std::collections::BTreeMap;
use std::time::Instant;

use sealcell_at::cmux::mux::{Config, Counts, Event, Multiplexer, Role};
use sealcell_at::commands::cmux::{CmuxStatus, MAX_AT_DLCI};

use crate::channel::{Channel, MAX_PENDING_INPUT, OUTPUT_LIMIT};
use crate::module::{ChannelId, Module};
use crate::time::Now;

/// Input a DLCI may hold unrun before the link stops reading.
///
/// # Security
/// With the channel's own cap ([`crate::MAX_PENDING_INPUT`]) never reached, a host cannot make
/// the module drop the input of a DLCI it floods (unless it also holds that DLCI's output).
pub const LINK_HOLD_INPUT: usize = 64 * 1024;

/// A link: plain, or multiplexed.
pub struct Link {
    wake: ChannelId,
    mode: Mode,
    epoch: u64,
}

impl std::fmt::Debug for Link {
    /// The mode and the DLCIs; never a byte of what crosses the link (a payload may be a key).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("wake", &self.wake)
            .field("multiplexed", &self.is_multiplexed())
            .field("dlcis", &self.open_dlcis())
            .finish_non_exhaustive()
    }
}

// The plain channel stays inline: it is the common case, and a link is one per transport.
#[allow(clippy::large_enum_variant)]
enum Mode {
    Plain(Channel),
    Multiplexed(Box<Muxed>),
}

struct Muxed {
    mux: Multiplexer,
    status: CmuxStatus,
    dlcis: BTreeMap<u8, Dlci>,
    /// The plain channel, asleep until the close-down.
    plain: Channel,
    /// The data of consecutive frames for one DLCI, copied out of the decoder, fed to its
    /// channel at once.
    inbox: Vec<u8>,
    /// Input not decoded yet because the link's output was full.
    unread: Vec<u8>,
}

/// What a frame meant, once its data (if any) is owned: handled after the batch before it.
enum Pending {
    Nothing,
    Opened(u8),
    Closed(u8),
    Data(u8, Vec<u8>),
    CloseDown,
}

struct Dlci {
    channel: Channel,
    /// The channel's output not yet framed.
    output: Vec<u8>,
}

impl Link {
    /// A plain link to `module`, in the power-on state.
    pub fn new(module: &mut Module) -> Link {
        let channel = Channel::new(module);
        Link {
            wake: channel.id(),
            epoch: module.epoch(),
            mode: Mode::Plain(channel),
        }
    }

    /// The id the edge registers this link's wake-up under (every channel of the link wakes
    /// it).
    pub fn wake_id(&self) -> ChannelId {
        self.wake
    }

    /// Whether 27.010 multiplexing is on.
    pub fn is_multiplexed(&self) -> bool {
        matches!(self.mode, Mode::Multiplexed(_))
    }

    /// The DLCIs open, lowest first (none in plain mode).
    pub fn open_dlcis(&self) -> Vec<u8> {
        match &self.mode {
            Mode::Plain(_) => Vec::new(),
            Mode::Multiplexed(m) => m.dlcis.keys().copied().collect(),
        }
    }

    /// What the multiplexer dropped so far (zeros in plain mode).
    pub fn dropped(&self) -> Counts {
        match &self.mode {
            Mode::Plain(_) => Counts::default(),
            Mode::Multiplexed(m) => m.mux.counts(),
        }
    }

    /// Processes bytes from the host; the answer is appended to `out`.
    pub fn feed(&mut self, module: &mut Module, input: &[u8], now: Now, out: &mut Vec<u8>) {
        self.sync_with_boot(module, now, out);
        let rest = self.feed_once(module, input, now, out);
        self.go_on(module, rest, now, out);
    }

    /// Runs timers and what the channels have waiting (see [`Channel::poll`]), and input the
    /// link left undecoded while its output was full.
    pub fn poll(&mut self, module: &mut Module, now: Now, out: &mut Vec<u8>) {
        self.sync_with_boot(module, now, out);
        let rest = match &mut self.mode {
            Mode::Plain(channel) => {
                channel.poll(module, now, out);
                // A reboot there was the plain channel's own (it greeted): an AT+CMUX after
                // it on the same line starts a multiplexer on the rebooted module.
                self.epoch = module.epoch();
                self.after_plain(module)
            }
            Mode::Multiplexed(m) => {
                let rest = m.poll(module, self.wake, now, out);
                self.after_multiplexed(module, rest, now, out)
            }
        };
        self.sync_with_boot(module, now, out);
        self.go_on(module, rest, now, out);
    }

    /// Whether the transport should read more, given `out_len` bytes not yet sent.
    pub fn wants_input(&self, out_len: usize) -> bool {
        match &self.mode {
            Mode::Plain(channel) => channel.wants_input(out_len),
            Mode::Multiplexed(m) => out_len < OUTPUT_LIMIT && m.wants_input(),
        }
    }

    /// Whether every command the link was given has been answered (or cannot be, with no more
    /// input): what a transport waits for after the end of input before it closes. Not while
    /// any DLCI waits for a job, though the line may be read meanwhile.
    pub fn is_idle(&self) -> bool {
        match &self.mode {
            Mode::Plain(channel) => channel.wants_input(0),
            Mode::Multiplexed(m) => {
                m.unread.is_empty() && m.dlcis.values().all(|d| d.channel.wants_input(0))
            }
        }
    }

    /// Whether the link has output to produce once the transport has sent what it has.
    pub fn has_more(&self) -> bool {
        match &self.mode {
            Mode::Plain(channel) => channel.has_more(),
            Mode::Multiplexed(m) => m.has_more(),
        }
    }

    /// When [`Link::poll`] must run next even if no byte arrives and nothing wakes it.
    pub fn next_deadline(&self, module: &Module) -> Option<Instant> {
        match &self.mode {
            Mode::Plain(channel) => channel.next_deadline(module),
            Mode::Multiplexed(m) => m
                .dlcis
                .values()
                .filter_map(|d| d.channel.next_deadline(module))
                .min(),
        }
    }

    /// Detaches every channel of the link from the module.
    pub fn close(self, module: &mut Module) {
        match self.mode {
            Mode::Plain(channel) => channel.close(module),
            Mode::Multiplexed(m) => {
                let m = *m;
                tracing::info!(dropped = ?m.mux.counts(), "link closed while multiplexed");
                for (_, dlci) in m.dlcis {
                    dlci.channel.close(module);
                }
                m.plain.close(module);
            }
        }
    }

    /// Feeds input that followed a switch of mode (AT+CMUX's frames, or plain AT after a
    /// close-down), for as many switches as it holds.
    fn go_on(
        &mut self,
        module: &mut Module,
        mut rest: Option<Vec<u8>>,
        now: Now,
        out: &mut Vec<u8>,
    ) {
        while let Some(more) = rest.filter(|r| !r.is_empty()) {
            rest = self.feed_once(module, &more, now, out);
        }
    }

    /// One pass over `input` in the current mode; returns the input after a switch of mode.
    fn feed_once(
        &mut self,
        module: &mut Module,
        input: &[u8],
        now: Now,
        out: &mut Vec<u8>,
    ) -> Option<Vec<u8>> {
        let rest = match &mut self.mode {
            Mode::Plain(channel) => {
                channel.feed(module, input, now, out);
                self.epoch = module.epoch();
                self.after_plain(module)
            }
            Mode::Multiplexed(m) => {
                let rest = m.feed(module, self.wake, input, now, out);
                self.after_multiplexed(module, rest, now, out)
            }
        };
        self.sync_with_boot(module, now, out);
        rest
    }

    /// After the plain channel ran: if it answered `AT+CMUX`, the switch; returns the input
    /// it held after that line (frames).
    fn after_plain(&mut self, module: &mut Module) -> Option<Vec<u8>> {
        let Mode::Plain(channel) = &mut self.mode else {
            return None;
        };
        let (status, rest) = channel.take_multiplex()?;
        let mode = std::mem::replace(&mut self.mode, Mode::Plain(Channel::placeholder(module)));
        let Mode::Plain(plain) = mode else {
            return None;
        };
        self.mode = Mode::Multiplexed(Box::new(Muxed::new(status, plain)));
        tracing::info!(n1 = status.n1, "27.010 multiplexer on");
        Some(rest)
    }

    /// After the multiplexer ran: if it ended (a close-down, or a reboot a DLCI caused), back
    /// to plain AT; passes on the input after its end.
    fn after_multiplexed(
        &mut self,
        module: &mut Module,
        rest: Option<Vec<u8>>,
        now: Now,
        out: &mut Vec<u8>,
    ) -> Option<Vec<u8>> {
        if rest.is_some() {
            let rebooted = self.epoch != module.epoch();
            self.epoch = module.epoch();
            self.leave_multiplexer(module, rebooted, now, out);
        }
        rest
    }

    /// Back to plain AT: every DLCI closed, the plain channel awake again as it was (after a
    /// reboot: power-on settings and the greeting, at once, in plain text).
    fn leave_multiplexer(
        &mut self,
        module: &mut Module,
        rebooted: bool,
        now: Now,
        out: &mut Vec<u8>,
    ) {
        if !self.is_multiplexed() {
            return;
        }
        let mode = std::mem::replace(&mut self.mode, Mode::Plain(Channel::placeholder(module)));
        let Mode::Multiplexed(m) = mode else {
            return;
        };
        // What the host sent that was not a good frame, for whoever debugs its framing.
        let dropped = m.mux.counts();
        let Muxed {
            dlcis, mut plain, ..
        } = *m;
        for (_, dlci) in dlcis {
            dlci.channel.close(module);
        }
        plain.sync_with_boot(module, out);
        // What waited for it meanwhile (URCs; their wake-up went to the multiplexer) goes out
        // now.
        plain.poll(module, now, out);
        self.mode = Mode::Plain(plain);
        tracing::info!(rebooted, ?dropped, "27.010 multiplexer off");
    }

    /// A reboot ends the multiplexer: the module comes back up in plain AT, as after power-on.
    fn sync_with_boot(&mut self, module: &mut Module, now: Now, out: &mut Vec<u8>) {
        if self.epoch == module.epoch() {
            return;
        }
        self.epoch = module.epoch();
        if let Mode::Multiplexed(m) = &mut self.mode {
            // What the DLCIs said before the reboot (the OK of AT+CFUN=16) is framed first.
            m.flush(out);
            self.leave_multiplexer(module, true, now, out);
        }
    }
}

impl Muxed {
    fn new(status: CmuxStatus, plain: Channel) -> Muxed {
        Muxed {
            mux: Multiplexer::new(Config {
                role: Role::Responder,
                n1: usize::from(status.n1),
                max_dlci: MAX_AT_DLCI,
            }),
            status,
            dlcis: BTreeMap::new(),
            plain,
            inbox: Vec::new(),
            unread: Vec::new(),
        }
    }

    /// Whether the line may be read: no input waits undecoded, and no DLCI holds
    /// [`LINK_HOLD_INPUT`] of input it has not run — unless the host's flow control holds
    /// that DLCI's output: then the line must stay readable, or the host's FCon (or MSC) that
    /// lets the output go would never be seen. Such a DLCI is bounded by its channel's own
    /// input cap ([`crate::MAX_PENDING_INPUT`]; beyond it, input is dropped and logged).
    fn wants_input(&self) -> bool {
        self.unread.is_empty()
            && self.dlcis.iter().all(|(&dlci, d)| {
                d.channel.pending_input() < LINK_HOLD_INPUT || !self.mux.may_send(dlci)
            })
    }

    /// Whether a poll would produce something: input waits undecoded, or a DLCI the host lets
    /// send has more (a held one waits for the host's release, which arrives as input).
    fn has_more(&self) -> bool {
        !self.unread.is_empty()
            || self
                .dlcis
                .iter()
                .any(|(&dlci, d)| self.mux.may_send(dlci) && d.channel.has_more())
    }

    /// Decodes the input left waiting, then runs every DLCI's timers and waiting work.
    fn poll(
        &mut self,
        module: &mut Module,
        wake: ChannelId,
        now: Now,
        out: &mut Vec<u8>,
    ) -> Option<Vec<u8>> {
        if !self.unread.is_empty() && out.len() < OUTPUT_LIMIT {
            let unread = std::mem::take(&mut self.unread);
            return self.feed(module, wake, &unread, now, out);
        }
        self.run_channels(module, now, out);
        None
    }

    /// Polls every DLCI's channel; stops at a reboot one of them caused (the others must not
    /// run their input on the rebooted module: the link leaves the multiplexer next).
    fn run_channels(&mut self, module: &mut Module, now: Now, out: &mut Vec<u8>) {
        let epoch = module.epoch();
        for (&dlci, d) in &mut self.dlcis {
            d.channel.set_held(!self.mux.may_send(dlci));
            d.channel.poll(module, now, &mut d.output);
            if module.epoch() != epoch {
                break;
            }
        }
        self.flush(out);
    }

    /// Frames each DLCI's output that the host's flow control lets through.
    fn flush(&mut self, out: &mut Vec<u8>) {
        for (&dlci, d) in &mut self.dlcis {
            if !d.output.is_empty() && self.mux.may_send(dlci) {
                self.mux.send(dlci, &d.output, out);
                d.output.clear();
            }
        }
    }

    /// Decodes `input`; returns the bytes after the multiplexer's end (a close-down, or a
    /// reboot one of its DLCIs caused).
    fn feed(
        &mut self,
        module: &mut Module,
        wake: ChannelId,
        input: &[u8],
        now: Now,
        out: &mut Vec<u8>,
    ) -> Option<Vec<u8>> {
        if !self.unread.is_empty() {
            // A driver that fed on while the link did not want input: after what waits, in
            // order (and bounded like a channel's pending input).
            let room = MAX_PENDING_INPUT.saturating_sub(self.unread.len());
            if input.len() > room {
                tracing::warn!(
                    dropped = input.len() - room,
                    "input beyond the link's cap dropped"
                );
            }
            self.unread
                .extend_from_slice(&input[..input.len().min(room)]);
            return None;
        }
        let epoch = module.epoch();
        let mut rest = input;
        // Consecutive frames for one DLCI reach its channel in one feed (the information of a
        // read of small frames, not one call per frame): `batch` is that DLCI, its data in
        // `inbox`.
        let mut batch: Option<u8> = None;
        loop {
            if out.len() >= OUTPUT_LIMIT && !rest.is_empty() {
                if self.deliver(&mut batch, module, now, out) {
                    return Some(rest.to_vec());
                }
                if out.len() >= OUTPUT_LIMIT {
                    // The output is full: the rest is decoded once it has been sent.
                    self.unread.extend_from_slice(rest);
                    return None;
                }
            }
            let mark = out.len();
            let event = match self.mux.receive(&mut rest, out) {
                None => break,
                Some(Event::Data { dlci, data }) if batch.is_none() || batch == Some(dlci) => {
                    if self.dlcis.contains_key(&dlci) {
                        self.inbox.extend_from_slice(data);
                        batch = Some(dlci);
                    }
                    continue;
                }
                Some(Event::Data { dlci, data }) => Pending::Data(dlci, data.to_vec()),
                Some(Event::Opened(dlci)) => Pending::Opened(dlci),
                Some(Event::Closed(dlci)) => Pending::Closed(dlci),
                Some(Event::CloseDown) => Pending::CloseDown,
                Some(Event::Refused(_) | Event::Flow) => Pending::Nothing,
            };
            // Something else than more of the batch: the batch goes first, and so does its
            // answer, before whatever this frame made the multiplexer answer.
            if batch.is_some() {
                let replies = out.split_off(mark);
                if self.deliver(&mut batch, module, now, out) {
                    // The batch rebooted the module: this frame met a plain line.
                    return Some(rest.to_vec());
                }
                out.extend_from_slice(&replies);
            }
            match event {
                Pending::Nothing => {}
                Pending::Opened(0) => {}
                Pending::Opened(dlci) => self.open(module, wake, dlci),
                Pending::Closed(dlci) => {
                    if let Some(d) = self.dlcis.remove(&dlci) {
                        d.channel.close(module);
                    }
                    tracing::debug!(dlci, "DLCI closed");
                }
                Pending::Data(dlci, data) => {
                    if self.dlcis.contains_key(&dlci) {
                        self.inbox.extend_from_slice(&data);
                        batch = Some(dlci);
                    }
                }
                Pending::CloseDown => {
                    // The CLD response is out; what the host's flow control still held is
                    // not framed onto what is a plain line now.
                    return Some(rest.to_vec());
                }
            }
            self.flush(out);
        }
        if self.deliver(&mut batch, module, now, out) {
            return Some(rest.to_vec());
        }
        // A command on one DLCI may have queued URCs for the others (a registration change
        // each reports in its own mode): one link, one output, so they go out now (or at the
        // next poll, when the output is already full).
        if out.len() < OUTPUT_LIMIT {
            self.run_channels(module, now, out);
        }
        if module.epoch() != epoch {
            return Some(Vec::new());
        }
        None
    }

    /// Feeds the gathered data to its DLCI's channel and frames what may go out; true when
    /// that rebooted the module (the link is plain from here).
    fn deliver(
        &mut self,
        batch: &mut Option<u8>,
        module: &mut Module,
        now: Now,
        out: &mut Vec<u8>,
    ) -> bool {
        let Some(dlci) = batch.take() else {
            return false;
        };
        let epoch = module.epoch();
        if let Some(d) = self.dlcis.get_mut(&dlci) {
            d.channel.set_held(!self.mux.may_send(dlci));
            d.channel.feed(module, &self.inbox, now, &mut d.output);
        }
        self.inbox.clear();
        self.flush(out);
        module.epoch() != epoch
    }

    /// A DLCI the host opened: an AT channel in the power-on state.
    fn open(&mut self, module: &mut Module, wake: ChannelId, dlci: u8) {
        let id = module.attach_channel_woken_as(wake);
        module.set_multiplexer(id, self.status);
        let channel = Channel::for_dlci(module, id);
        let fresh = Dlci {
            channel,
            output: Vec::new(),
        };
        if let Some(old) = self.dlcis.insert(dlci, fresh) {
            // The multiplexer opens a DLCI only once until it is closed; should the two ever
            // disagree, the old channel is not left attached.
            old.channel.close(module);
        }
        tracing::debug!(dlci, channel = id.0, "DLCI opened");
    }
}
