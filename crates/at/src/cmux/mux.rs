//! The multiplexer's state machine, for either end: frames in, events and per-DLCI data out;
//! data in, frames out. It answers what the standard makes it answer by itself (UA and DM,
//! the control channel's responses) straight into the output, so its user only moves the
//! bytes and handles the events.

use super::control::{Message, MessageType, signals};
use super::decoder::{Decoder, Dropped};
use super::frame::{Frame, Kind, MAX_DLCI};

/// Which end of the link this is; it decides the C/R bits (TS 27.010 §5.2.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The end that started the multiplexer (the host, after `AT+CMUX`).
    Initiator,
    /// The other end (the module).
    Responder,
}

/// The multiplexer's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// This end's role.
    pub role: Role,
    /// The largest information field, each way (`AT+CMUX`'s N1).
    pub n1: usize,
    /// The highest DLCI this end accepts a SABM for (0 is always the control channel).
    pub max_dlci: u8,
}

/// What a received frame meant.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A DLCI is open: the peer's SABM was accepted, or our SABM was acknowledged.
    Opened(u8),
    /// The peer refused our SABM with DM.
    Refused(u8),
    /// A DLCI closed: the peer's DISC, its UA to ours, or its DM on an open DLCI.
    Closed(u8),
    /// Data on an open DLCI.
    Data {
        /// The DLCI.
        dlci: u8,
        /// The information field.
        data: &'a [u8],
    },
    /// The multiplexer closed down (CLD either way, or DISC of DLCI 0): every DLCI is
    /// closed and the link is plain again.
    CloseDown,
    /// The peer changed its flow control (FCon/FCoff or an MSC's FC bit): see
    /// [`Multiplexer::may_send`].
    Flow,
}

/// Frames the state machine dropped after decoding, beside the decoder's own count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// What the decoder dropped.
    pub decoder: Dropped,
    /// Data frames for a DLCI that is not open.
    pub closed_dlci: u64,
}

/// Per-DLCI bit sets (DLCI 0..=63).
#[derive(Clone, Copy, Debug, Default)]
struct DlciSet(u64);

impl DlciSet {
    fn has(self, dlci: u8) -> bool {
        self.0 & (1u64 << (dlci & MAX_DLCI)) != 0
    }
    fn set(&mut self, dlci: u8, on: bool) {
        let bit = 1u64 << (dlci & MAX_DLCI);
        if on {
            self.0 |= bit;
        } else {
            self.0 &= !bit;
        }
    }
}

#[derive(Debug)]
struct Links {
    config: Config,
    open: DlciSet,
    opening: DlciSet,
    closing: DlciSet,
    /// DLCIs the peer stopped with an MSC's FC bit.
    held: DlciSet,
    /// FCoff: the peer stopped every DLCI.
    all_held: bool,
    closed_down: bool,
    closed_dlci: u64,
    /// N1 agreed per DLCI by PN (0: none, the link's N1 applies).
    agreed_n1: [u16; 64],
}

/// A 27.010 basic-option multiplexer (UIH data), sans-I/O.
#[derive(Debug)]
pub struct Multiplexer {
    decoder: Decoder,
    links: Links,
    /// The largest information field this end sends (N1, unless [`Multiplexer::limit_sends`]).
    send_n1: usize,
}

impl Multiplexer {
    /// A multiplexer with nothing open yet.
    pub fn new(config: Config) -> Multiplexer {
        Multiplexer {
            send_n1: config.n1,
            decoder: Decoder::new(config.n1),
            links: Links {
                config,
                open: DlciSet::default(),
                opening: DlciSet::default(),
                closing: DlciSet::default(),
                held: DlciSet::default(),
                all_held: false,
                closed_down: false,
                closed_dlci: 0,
                agreed_n1: [0; 64],
            },
        }
    }

    /// Its parameters.
    pub fn config(&self) -> Config {
        self.links.config
    }

    /// Decodes from the front of `input` until a frame means something to the user, and
    /// returns that; answers the peer (UA, DM, control responses) into `out` on the way.
    /// `None` once `input` is used up.
    pub fn receive<'m>(&'m mut self, input: &mut &[u8], out: &mut Vec<u8>) -> Option<Event<'m>> {
        let Multiplexer { decoder, links, .. } = self;
        let dlci = loop {
            if !decoder.advance(input) {
                return None;
            }
            let frame = decoder.frame();
            if matches!(frame.kind, Kind::Uih | Kind::Ui) && frame.dlci != 0 {
                if links.open.has(frame.dlci) {
                    break frame.dlci;
                }
                links.closed_dlci += 1;
                continue;
            }
            if let Some(event) = links.handle(&frame, out) {
                return Some(event);
            }
        };
        // Returned from here, not from the loop, so the borrow of the decoder's frame does not
        // overlap its next use.
        Some(Event::Data {
            dlci,
            data: decoder.frame().info,
        })
    }

    /// Sends `data` on `dlci` as UIH frames of at most N1 bytes each.
    pub fn send(&self, dlci: u8, data: &[u8], out: &mut Vec<u8>) {
        let agreed = usize::from(self.links.agreed_n1[usize::from(dlci & MAX_DLCI)]);
        let n1 = if agreed == 0 {
            self.send_n1
        } else {
            self.send_n1.min(agreed)
        };
        for chunk in data.chunks(n1.max(1)) {
            self.links.frame(dlci, Kind::Uih, true, false, chunk, out);
        }
    }

    /// Sends information fields of at most `n1` bytes (but never more than the N1 this end
    /// decodes): for a host that joined a multiplexer whose N1 it has yet to learn.
    pub fn limit_sends(&mut self, n1: usize) {
        self.send_n1 = n1.clamp(1, self.links.config.n1.max(1));
    }

    /// Asks the peer to open `dlci` (SABM); [`Event::Opened`] or [`Event::Refused`] follows.
    pub fn open(&mut self, dlci: u8, out: &mut Vec<u8>) {
        self.links.opening.set(dlci, true);
        self.links.closed_down = false;
        self.links.frame(dlci, Kind::Sabm, true, true, &[], out);
    }

    /// Asks the peer to close `dlci` (DISC); [`Event::Closed`] follows.
    pub fn close(&mut self, dlci: u8, out: &mut Vec<u8>) {
        self.links.closing.set(dlci, true);
        self.links.frame(dlci, Kind::Disc, true, true, &[], out);
    }

    /// Asks the peer to close the multiplexer down (CLD); [`Event::CloseDown`] follows.
    pub fn close_down(&mut self, out: &mut Vec<u8>) {
        self.links.message(MessageType::Cld, true, &[], out);
    }

    /// Sends this end's V.24 signals for `dlci` (an MSC command).
    pub fn send_signals(&self, dlci: u8, v24: u8, out: &mut Vec<u8>) {
        let address = (dlci & MAX_DLCI) << 2 | 0x02 | 0x01;
        self.links
            .message(MessageType::Msc, true, &[address, v24 | signals::EA], out);
    }

    /// Whether `dlci` is open.
    pub fn is_open(&self, dlci: u8) -> bool {
        self.links.open.has(dlci)
    }

    /// The open DLCIs but 0, lowest first.
    pub fn open_dlcis(&self) -> impl Iterator<Item = u8> + '_ {
        (1..=MAX_DLCI).filter(|&d| self.links.open.has(d))
    }

    /// Whether the peer lets this end send data on `dlci` now (neither FCoff nor the FC bit
    /// of an MSC holds it back).
    pub fn may_send(&self, dlci: u8) -> bool {
        !self.links.all_held && !self.links.held.has(dlci)
    }

    /// Whether the multiplexer has closed down.
    pub fn is_closed_down(&self) -> bool {
        self.links.closed_down
    }

    /// Whether a frame is half received.
    pub fn is_mid_frame(&self) -> bool {
        !self.decoder.is_idle()
    }

    /// What was dropped so far.
    pub fn counts(&self) -> Counts {
        Counts {
            decoder: self.decoder.dropped(),
            closed_dlci: self.links.closed_dlci,
        }
    }
}

impl Links {
    /// Handles every frame but data on DLCIs 1.. (the caller's).
    fn handle(&mut self, frame: &Frame<'_>, out: &mut Vec<u8>) -> Option<Event<'static>> {
        let dlci = frame.dlci;
        match frame.kind {
            Kind::Sabm => {
                if dlci <= self.config.max_dlci {
                    self.frame(dlci, Kind::Ua, false, frame.pf, &[], out);
                    self.closed_down = false;
                    if !self.open.has(dlci) {
                        self.open.set(dlci, true);
                        return Some(Event::Opened(dlci));
                    }
                } else {
                    self.frame(dlci, Kind::Dm, false, frame.pf, &[], out);
                }
                None
            }
            Kind::Disc => {
                if !self.open.has(dlci) {
                    self.frame(dlci, Kind::Dm, false, frame.pf, &[], out);
                    return None;
                }
                self.frame(dlci, Kind::Ua, false, frame.pf, &[], out);
                if dlci == 0 {
                    return Some(self.shut());
                }
                self.open.set(dlci, false);
                Some(Event::Closed(dlci))
            }
            Kind::Ua => {
                if self.closing.has(dlci) {
                    self.closing.set(dlci, false);
                    self.opening.set(dlci, false);
                    if dlci == 0 {
                        return Some(self.shut());
                    }
                    self.open.set(dlci, false);
                    return Some(Event::Closed(dlci));
                }
                if self.opening.has(dlci) {
                    self.opening.set(dlci, false);
                    self.open.set(dlci, true);
                    return Some(Event::Opened(dlci));
                }
                None
            }
            Kind::Dm => {
                if self.opening.has(dlci) {
                    self.opening.set(dlci, false);
                    return Some(Event::Refused(dlci));
                }
                self.closing.set(dlci, false);
                if self.open.has(dlci) {
                    self.open.set(dlci, false);
                    return Some(Event::Closed(dlci));
                }
                None
            }
            Kind::Uih | Kind::Ui => self.control(frame.info, out),
        }
    }

    /// The control channel's messages: commands answered, responses taken note of.
    fn control(&mut self, info: &[u8], out: &mut Vec<u8>) -> Option<Event<'static>> {
        let mut event = None;
        for message in Message::parse_all(info) {
            if !message.command {
                // A response to a command of ours. Only CLD's changes anything.
                if message.kind == MessageType::Cld {
                    // The link is plain from here: nothing after it is a message.
                    return Some(self.shut());
                }
                continue;
            }
            match message.kind {
                MessageType::Cld => {
                    self.message(MessageType::Cld, false, &[], out);
                    // The link is plain from here: nothing after it is answered as a message.
                    return Some(self.shut());
                }
                MessageType::Pn => {
                    // Accepted as proposed, but for an N1 above this end's: the response
                    // says the N1 this end keeps to (TS 27.010 §5.4.6.3.1).
                    let mut value = message.value.to_vec();
                    if let [dlci, _, _, _, low, high, ..] = value[..] {
                        let proposed = usize::from(u16::from_le_bytes([low, high]));
                        let kept =
                            u16::try_from(proposed.min(self.config.n1).max(1)).unwrap_or(u16::MAX);
                        // This end sends that DLCI frames no longer than agreed.
                        self.agreed_n1[usize::from(dlci & MAX_DLCI)] = kept;
                        value[4..6].copy_from_slice(&kept.to_le_bytes());
                    }
                    self.message(MessageType::Pn, false, &value, out);
                }
                MessageType::Test | MessageType::Psc | MessageType::Rpn => {
                    // Test comes back unchanged; the other parameters are accepted as they are.
                    self.message(message.kind, false, message.value, out);
                }
                MessageType::FcOff | MessageType::FcOn => {
                    self.all_held = message.kind == MessageType::FcOff;
                    self.message(message.kind, false, &[], out);
                    event = Some(Event::Flow);
                }
                MessageType::Msc => {
                    self.message(MessageType::Msc, false, message.value, out);
                    if let [address, v24, ..] = *message.value {
                        self.held.set(address >> 2, v24 & signals::FC != 0);
                        event = event.or(Some(Event::Flow));
                    }
                }
                MessageType::Nsc | MessageType::Rls | MessageType::Snc | MessageType::Other(_) => {
                    // Not supported here: say which (NSC carries the command's type octet).
                    let octet = message.kind.octet(true);
                    self.message(MessageType::Nsc, false, &[octet], out);
                }
            }
        }
        event
    }

    /// Every DLCI closed, the multiplexer down.
    fn shut(&mut self) -> Event<'static> {
        self.open = DlciSet::default();
        self.opening = DlciSet::default();
        self.closing = DlciSet::default();
        self.held = DlciSet::default();
        self.all_held = false;
        self.agreed_n1 = [0; 64];
        self.closed_down = true;
        Event::CloseDown
    }

    /// Writes a control-channel message.
    fn message(&self, kind: MessageType, command: bool, value: &[u8], out: &mut Vec<u8>) {
        let mut info = Vec::with_capacity(value.len() + 3);
        Message {
            kind,
            command,
            value,
        }
        .encode(&mut info);
        self.frame(0, Kind::Uih, true, false, &info, out);
    }

    /// Writes a frame with this end's C/R bit for a command or a response.
    fn frame(&self, dlci: u8, kind: Kind, command: bool, pf: bool, info: &[u8], out: &mut Vec<u8>) {
        let initiator = self.config.role == Role::Initiator;
        Frame {
            dlci,
            cr: command == initiator,
            kind,
            pf,
            info,
        }
        .encode(out);
    }
}
