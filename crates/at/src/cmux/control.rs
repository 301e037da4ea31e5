//! Control-channel messages: what DLCI 0 carries in its UIH frames (TS 27.010 §5.4.6).
//!
//! Each message is a type octet (EA, the C/R bit — command or response — and six type bits),
//! a length (EA-chained octets) and that many value octets.

/// A message type (the type octet's six type bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageType {
    /// DLC parameter negotiation.
    Pn,
    /// Power saving control.
    Psc,
    /// Multiplexer close down: back to plain AT.
    Cld,
    /// Test: the value comes back unchanged.
    Test,
    /// Flow control on: the sender may transmit again on every DLCI.
    FcOn,
    /// Flow control off: the sender stops transmitting on every DLCI but 0.
    FcOff,
    /// Modem status: V.24 signals (and flow control) for one DLCI.
    Msc,
    /// Non-supported command response.
    Nsc,
    /// Remote port negotiation.
    Rpn,
    /// Remote line status.
    Rls,
    /// Service negotiation.
    Snc,
    /// A type the standard does not define.
    Other(u8),
}

impl MessageType {
    fn bits(self) -> u8 {
        match self {
            MessageType::Pn => 0x20,
            MessageType::Psc => 0x10,
            MessageType::Cld => 0x30,
            MessageType::Test => 0x08,
            MessageType::FcOn => 0x28,
            MessageType::FcOff => 0x18,
            MessageType::Msc => 0x38,
            MessageType::Nsc => 0x04,
            MessageType::Rpn => 0x24,
            MessageType::Rls => 0x14,
            MessageType::Snc => 0x34,
            MessageType::Other(bits) => bits & 0x3F,
        }
    }

    fn from_bits(bits: u8) -> MessageType {
        match bits {
            0x20 => MessageType::Pn,
            0x10 => MessageType::Psc,
            0x30 => MessageType::Cld,
            0x08 => MessageType::Test,
            0x28 => MessageType::FcOn,
            0x18 => MessageType::FcOff,
            0x38 => MessageType::Msc,
            0x04 => MessageType::Nsc,
            0x24 => MessageType::Rpn,
            0x14 => MessageType::Rls,
            0x34 => MessageType::Snc,
            other => MessageType::Other(other),
        }
    }

    /// The type octet: EA set, C/R set for a command.
    pub fn octet(self, command: bool) -> u8 {
        self.bits() << 2 | u8::from(command) << 1 | 1
    }
}

/// One control message, its value borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// The type.
    pub kind: MessageType,
    /// A command (true) or the response to one.
    pub command: bool,
    /// The value octets.
    pub value: &'a [u8],
}

impl<'a> Message<'a> {
    /// Splits the messages of one control-channel information field; `None` ends the list,
    /// and a message cut short (its length beyond the field) ends it too.
    pub fn parse_all(mut info: &'a [u8]) -> impl Iterator<Item = Message<'a>> {
        std::iter::from_fn(move || {
            let (&octet, rest) = info.split_first()?;
            if octet & 0x01 == 0 {
                // Multi-octet types are not defined: nothing after it can be trusted.
                info = &[];
                return None;
            }
            let mut rest = rest;
            if rest.is_empty() {
                // A type octet alone: at-cmux sends its CLD so (`C3`, no length octet).
                info = &[];
                return Some(Message {
                    kind: MessageType::from_bits(octet >> 2),
                    command: octet & 0x02 != 0,
                    value: &[],
                });
            }
            let mut length = 0usize;
            let mut shift = 0u32;
            loop {
                let (&l, after) = rest.split_first()?;
                rest = after;
                // Seven bits an octet; more than two octets would announce more than any
                // frame holds.
                length |= usize::from(l >> 1) << shift;
                shift += 7;
                if l & 0x01 != 0 {
                    break;
                }
                if shift > 14 {
                    info = &[];
                    return None;
                }
            }
            if length > rest.len() {
                info = &[];
                return None;
            }
            let (value, after) = rest.split_at(length);
            info = after;
            Some(Message {
                kind: MessageType::from_bits(octet >> 2),
                command: octet & 0x02 != 0,
                value,
            })
        })
    }

    /// Appends the message (type, length, value). Values here are short: one length octet
    /// up to 127 bytes, two beyond.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.kind.octet(self.command));
        let len = self.value.len().min(0x3FFF);
        if len <= 0x7F {
            out.push((len as u8) << 1 | 1);
        } else {
            out.push(((len & 0x7F) as u8) << 1);
            out.push(((len >> 7) as u8) << 1 | 1);
        }
        out.extend_from_slice(&self.value[..len]);
    }
}

/// The V.24 signals octet of an MSC: EA, flow control (FC), ready to communicate (RTC),
/// ready to receive (RTR), incoming call (IC), data valid (DV).
pub mod signals {
    /// The EA bit (the octet is the last).
    pub const EA: u8 = 0x01;
    /// Flow control: set, the sender cannot accept frames on this DLCI.
    pub const FC: u8 = 0x02;
    /// Ready to communicate (DSR/DTR).
    pub const RTC: u8 = 0x04;
    /// Ready to receive (CTS/RTS).
    pub const RTR: u8 = 0x08;
    /// Incoming call (RI).
    pub const IC: u8 = 0x40;
    /// Data valid (DCD).
    pub const DV: u8 = 0x80;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_close_down_command_is_c3_01() {
        let cld = Message {
            kind: MessageType::Cld,
            command: true,
            value: &[],
        };
        let mut out = Vec::new();
        cld.encode(&mut out);
        assert_eq!(out, [0xC3, 0x01]);
        assert_eq!(Message::parse_all(&out).collect::<Vec<_>>(), [cld]);
    }

    #[test]
    fn a_type_octet_without_a_length_is_an_empty_message() {
        // at-cmux's close-down: `F9 03 EF 03 C3 16 F9`.
        let got: Vec<_> = Message::parse_all(&[0xC3]).collect();
        assert_eq!(
            got,
            [Message {
                kind: MessageType::Cld,
                command: true,
                value: &[]
            }]
        );
    }

    #[test]
    fn an_msc_and_a_test_in_one_field() {
        let info = [0xE3, 0x05, 0x07, 0x0D, 0x23, 0x07, b'a', b'b', b'c'];
        let got: Vec<_> = Message::parse_all(&info).collect();
        assert_eq!(
            got,
            [
                Message {
                    kind: MessageType::Msc,
                    command: true,
                    value: &[0x07, 0x0D]
                },
                Message {
                    kind: MessageType::Test,
                    command: true,
                    value: b"abc"
                },
            ]
        );
    }

    #[test]
    fn a_message_cut_short_ends_the_list() {
        assert_eq!(Message::parse_all(&[0x23, 0x09, b'a']).count(), 0);
        assert_eq!(Message::parse_all(&[0x23, 0x02]).count(), 0);
        assert_eq!(Message::parse_all(&[0x22, 0x01]).count(), 0);
    }

    #[test]
    fn every_type_round_trips_through_its_octet() {
        for bits in 0..0x40u8 {
            let kind = MessageType::from_bits(bits);
            assert_eq!(kind.bits(), bits);
            assert_eq!(kind.octet(false) >> 2, bits);
        }
        assert_eq!(MessageType::Msc.octet(true), 0xE3);
        assert_eq!(MessageType::Msc.octet(false), 0xE1);
        assert_eq!(MessageType::Nsc.octet(false), 0x11);
    }
}
