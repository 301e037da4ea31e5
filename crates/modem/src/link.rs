//! One serial link to the module: plain AT, or 27.010 multiplexed after `AT+CMUX`
//! (at-contract §10). What a transport drives.
//!
//! In plain mode the link is one [`Channel`]. Once `AT+CMUX` has answered `OK`, the link
//! speaks frames only ([`sealcell_at::cmux`]): each DLCI the host opens with SABM is an AT
//! channel of its own (echo, `+CMEE`, prompts, URCs, Xmodem), DLCI 0 is the control channel,
//! and CLD (or DISC of DLCI 0, or a reboot) brings the link back to plain AT with the settings
//! it had. The API is the channel's: [`Link::feed`], [`Link::poll`], [`Link::wants_input`],
//! [`Link::has_more`], [`Link::next_deadline`], [`Link::close`].
//!
//! # Wake-ups
//! The edge registers one wake-up per link, under [`Link::wake_id`]; every channel the link
//! opens later wakes that id.
//!
//! # Back-pressure
//! Each DLCI's channel writes into a buffer of its own, bounded by the channel's output limit;
//! the link frames it out while the host's flow control (FCoff, an MSC's FC bit) allows. The
//! link stops reading when its output is full, when a DLCI's buffer is full, or when a DLCI
//! holds [`LINK_HOLD_INPUT`] bytes of input it has not run (a host pipelining into a DLCI
//! whose command waits for a job) — 27.010 has no way to stop one DLCI's input but the
//! host's goodwill, so the whole link waits.

use std::collections::BTreeMap;
use std::time::Instant;

use sealcell_at::cmux::mux::{Config, Event, Multiplexer, Role};
use sealcell_at::commands::cmux::{CmuxStatus, MAX_AT_DLCI};
use sealcell_at::format::ChannelSettings;

use crate::channel::{Channel, OUTPUT_LIMIT};
use crate::module::{ChannelId, Module};
use crate::time::Now;

/// Input a DLCI may hold unrun before the link stops reading.
///
/// # Security
/// With the channel's own cap ([`crate::MAX_PENDING_INPUT`]) never reached, a host cannot make
/// the module drop the input of a DLCI it floods.
pub const LINK_HOLD_INPUT: usize = 64 * 1024;

/// A link: plain, or multiplexed.
#[derive(Debug)]
pub struct Link {
    wake: ChannelId,
    mode: Mode,
    epoch: u64,
}

// The plain channel stays inline: it is the common case, and a link is one per transport.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Mode {
    Plain(Channel),
    Multiplexed(Box<Muxed>),
}

#[derive(Debug)]
struct Muxed {
    mux: Multiplexer,
    status: CmuxStatus,
    dlcis: BTreeMap<u8, Dlci>,
    /// The plain channel's settings, for after the close-down.
    settings: ChannelSettings,
    /// One frame's data, copied out of the decoder so the multiplexer can frame the answer.
    inbox: Vec<u8>,
}

#[derive(Debug)]
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
    pub fn dropped(&self) -> sealcell_at::cmux::mux::Counts {
        match &self.mode {
            Mode::Plain(_) => Default::default(),
            Mode::Multiplexed(m) => m.mux.counts(),
        }
    }

    /// Processes bytes from the host; the answer is appended to `out`.
    pub fn feed(&mut self, module: &mut Module, input: &[u8], now: Now, out: &mut Vec<u8>) {
        self.sync_with_boot(module, out);
        let mut rest = self.feed_once(module, input, now, out);
        // Input after a switch (AT+CMUX's frames, or plain AT after a close-down).
        while let Some(more) = rest.filter(|r| !r.is_empty()) {
            rest = self.feed_once(module, &more, now, out);
        }
    }

    /// Runs timers and what the channels have waiting (see [`Channel::poll`]).
    pub fn poll(&mut self, module: &mut Module, now: Now, out: &mut Vec<u8>) {
        self.sync_with_boot(module, out);
        let mut rest = match &mut self.mode {
            Mode::Plain(channel) => {
                channel.poll(module, now, out);
                self.after_plain(module)
            }
            Mode::Multiplexed(m) => {
                m.poll(module, now, out);
                None
            }
        };
        self.sync_with_boot(module, out);
        while let Some(more) = rest.filter(|r| !r.is_empty()) {
            rest = self.feed_once(module, &more, now, out);
        }
    }

    /// Whether the transport should read more, given `out_len` bytes not yet sent.
    pub fn wants_input(&self, out_len: usize) -> bool {
        match &self.mode {
            Mode::Plain(channel) => channel.wants_input(out_len),
            Mode::Multiplexed(m) => out_len < OUTPUT_LIMIT && m.wants_input(),
        }
    }

    /// Whether a channel has output to produce once the transport has sent what it has.
    pub fn has_more(&self) -> bool {
        match &self.mode {
            Mode::Plain(channel) => channel.has_more(),
            Mode::Multiplexed(m) => m.dlcis.values().any(|d| d.channel.has_more()),
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
                for (_, dlci) in m.dlcis {
                    dlci.channel.close(module);
                }
            }
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
                self.after_plain(module)
            }
            Mode::Multiplexed(m) => {
                let rest = m.feed(module, self.wake, input, now, out);
                if rest.is_some() {
                    let rebooted = self.epoch != module.epoch();
                    self.epoch = module.epoch();
                    self.leave_multiplexer(module, rebooted, out);
                }
                rest
            }
        };
        self.sync_with_boot(module, out);
        rest
    }

    /// After the plain channel ran: if it answered `AT+CMUX`, the switch; returns the input
    /// it held after that line (frames).
    fn after_plain(&mut self, module: &mut Module) -> Option<Vec<u8>> {
        let Mode::Plain(channel) = &mut self.mode else {
            return None;
        };
        let (status, rest) = channel.take_multiplex()?;
        let settings = channel.settings();
        let Mode::Plain(channel) = std::mem::replace(
            &mut self.mode,
            Mode::Multiplexed(Box::new(Muxed::new(status, settings))),
        ) else {
            return None;
        };
        channel.close(module);
        tracing::info!(n1 = status.n1, "27.010 multiplexer on");
        Some(rest)
    }

    /// Back to plain AT: every DLCI closed, a plain channel with the settings the link had
    /// before (or, after a reboot, the power-on ones and the greeting).
    fn leave_multiplexer(&mut self, module: &mut Module, rebooted: bool, out: &mut Vec<u8>) {
        let Mode::Multiplexed(m) = &mut self.mode else {
            return;
        };
        let settings = m.settings;
        for (_, dlci) in std::mem::take(&mut m.dlcis) {
            dlci.channel.close(module);
        }
        let id = module.attach_channel_woken_as(self.wake);
        let mut channel = Channel::attached(module, id, settings, rebooted);
        // After a reboot the greeting goes out now, in plain text, as the module comes up.
        channel.sync_with_boot(module, out);
        self.mode = Mode::Plain(channel);
        tracing::info!(rebooted, "27.010 multiplexer off");
    }

    /// A reboot ends the multiplexer: the module comes back up in plain AT, as after power-on.
    fn sync_with_boot(&mut self, module: &mut Module, out: &mut Vec<u8>) {
        if self.epoch == module.epoch() {
            return;
        }
        self.epoch = module.epoch();
        if let Mode::Multiplexed(m) = &mut self.mode {
            // What the DLCIs said before the reboot (the OK of AT+CFUN=16) is framed first.
            m.flush(out);
            self.leave_multiplexer(module, true, out);
        }
    }
}

impl Muxed {
    fn new(status: CmuxStatus, settings: ChannelSettings) -> Muxed {
        Muxed {
            mux: Multiplexer::new(Config {
                role: Role::Responder,
                n1: usize::from(status.n1),
                max_dlci: MAX_AT_DLCI,
            }),
            status,
            dlcis: BTreeMap::new(),
            settings,
            inbox: Vec::new(),
        }
    }

    fn wants_input(&self) -> bool {
        self.dlcis
            .values()
            .all(|d| d.channel.pending_input() < LINK_HOLD_INPUT && d.output.len() < OUTPUT_LIMIT)
    }

    /// Runs every DLCI's timers and waiting work.
    fn poll(&mut self, module: &mut Module, now: Now, out: &mut Vec<u8>) {
        for d in self.dlcis.values_mut() {
            d.channel.poll(module, now, &mut d.output);
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
        let epoch = module.epoch();
        let mut rest = input;
        loop {
            let event = self.mux.receive(&mut rest, out);
            match event {
                None => break,
                Some(Event::Opened(0) | Event::Refused(_)) => {}
                Some(Event::Opened(dlci)) => {
                    let id = module.attach_channel_woken_as(wake);
                    module.set_multiplexer(id, self.status);
                    let mut channel =
                        Channel::attached(module, id, ChannelSettings::default(), false);
                    // A reboot ends the multiplexer: the greeting is the plain link's.
                    channel.set_greets(false);
                    self.dlcis.insert(
                        dlci,
                        Dlci {
                            channel,
                            output: Vec::new(),
                        },
                    );
                    tracing::debug!(dlci, channel = id.0, "DLCI opened");
                }
                Some(Event::Closed(dlci)) => {
                    if let Some(d) = self.dlcis.remove(&dlci) {
                        d.channel.close(module);
                    }
                    tracing::debug!(dlci, "DLCI closed");
                }
                Some(Event::Data { dlci, data }) => {
                    self.inbox.clear();
                    self.inbox.extend_from_slice(data);
                    if let Some(d) = self.dlcis.get_mut(&dlci) {
                        d.channel.feed(module, &self.inbox, now, &mut d.output);
                    }
                    if module.epoch() != epoch {
                        // The DLCI rebooted the module, which comes back in plain AT: the
                        // bytes after this frame are for it.
                        self.flush(out);
                        return Some(rest.to_vec());
                    }
                }
                Some(Event::Flow) => {}
                Some(Event::CloseDown) => {
                    self.flush(out);
                    return Some(rest.to_vec());
                }
            }
            self.flush(out);
        }
        // A command on one DLCI may have queued URCs for the others (a registration change
        // each reports in its own mode): one link, one output, so they go out now.
        self.poll(module, now, out);
        None
    }
}
