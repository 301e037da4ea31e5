//! The receiving half of the framing: bytes in, whole checked frames out.
//!
//! A push parser: it keeps the frame it is in the middle of across calls, so frames may be
//! split at any byte. Anything that is not a good frame is dropped and counted: bytes before
//! a flag (noise, a host that has not switched yet), a frame whose length exceeds N1, an FCS
//! that does not check, a frame type or address the basic option does not have. After a bad
//! frame the decoder hunts for the next flag, so a broken stream recovers there.

use super::frame::{FLAG, Frame, Kind, fcs_ok};

/// What the decoder dropped, for the logs and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Bytes outside any frame.
    pub noise: u64,
    /// Frames whose FCS did not check.
    pub bad_fcs: u64,
    /// Frames longer than N1.
    pub too_long: u64,
    /// Frames with an address, control or closing flag the basic option does not allow.
    pub malformed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Looking for a flag.
    Hunt,
    /// After a flag: the address (or another flag).
    Address,
    Control,
    Length,
    LengthHigh,
    Info,
    Fcs,
    /// The closing flag.
    End,
}

/// The frame decoder.
pub struct Decoder {
    n1: usize,
    state: State,
    /// The header octets as received, for the FCS: address, control, length (1 or 2).
    header: [u8; 4],
    header_len: usize,
    kind: Kind,
    pf: bool,
    length: usize,
    info: Vec<u8>,
    fcs: u8,
    dropped: Dropped,
}

impl std::fmt::Debug for Decoder {
    /// The state and the counts; never the information field, which may be a key or a
    /// password on its way to the module.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("n1", &self.n1)
            .field("state", &self.state)
            .field("held", &self.info.len())
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    /// A decoder that accepts information fields of at most `n1` bytes.
    pub fn new(n1: usize) -> Decoder {
        Decoder {
            n1,
            state: State::Hunt,
            header: [0; 4],
            header_len: 0,
            kind: Kind::Uih,
            pf: false,
            length: 0,
            info: Vec::new(),
            fcs: 0,
            dropped: Dropped::default(),
        }
    }

    /// The largest information field accepted.
    pub fn n1(&self) -> usize {
        self.n1
    }

    /// What has been dropped so far.
    pub fn dropped(&self) -> Dropped {
        self.dropped
    }

    /// Whether the decoder is between frames (a flag seen or hunting, nothing held).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Hunt | State::Address)
    }

    /// Consumes bytes from the front of `input` until a whole good frame is decoded, and
    /// returns it; `None` once `input` is used up. Call again with the rest.
    pub fn next<'d>(&'d mut self, input: &mut &[u8]) -> Option<Frame<'d>> {
        if self.advance(input) {
            Some(self.frame())
        } else {
            None
        }
    }

    /// [`Decoder::next`] without the borrow: true when a frame is decoded, which
    /// [`Decoder::frame`] then shows until the next call.
    pub fn advance(&mut self, input: &mut &[u8]) -> bool {
        loop {
            if self.state == State::Info {
                // The information field in one copy, not a byte at a time: it is most of
                // what a busy link carries.
                let want = self.length - self.info.len();
                let (take, rest) = input.split_at(want.min(input.len()));
                self.info.extend_from_slice(take);
                *input = rest;
                if self.info.len() < self.length {
                    return false;
                }
                self.state = State::Fcs;
            }
            let Some((&b, rest)) = input.split_first() else {
                return false;
            };
            *input = rest;
            if self.step(b) {
                return true;
            }
        }
    }

    /// The frame the last [`Decoder::advance`] that returned true decoded.
    pub fn frame(&self) -> Frame<'_> {
        Frame {
            dlci: self.header[0] >> 2,
            cr: self.header[0] & 0x02 != 0,
            kind: self.kind,
            pf: self.pf,
            info: &self.info,
        }
    }

    /// One byte; true when it completed a good frame.
    fn step(&mut self, b: u8) -> bool {
        match self.state {
            State::Hunt => {
                if b == FLAG {
                    self.state = State::Address;
                } else {
                    self.dropped.noise += 1;
                }
            }
            State::Address => {
                if b == FLAG {
                    // Flags between frames (or a closing flag that opens the next one).
                } else if b & 0x01 == 0 {
                    // A two-octet address is not in the basic option.
                    self.malformed();
                } else {
                    self.header[0] = b;
                    self.header_len = 1;
                    self.info.clear();
                    self.state = State::Control;
                }
            }
            State::Control => match Kind::from_control(b) {
                Some((kind, pf)) => {
                    self.kind = kind;
                    self.pf = pf;
                    self.push_header(b);
                    self.state = State::Length;
                }
                None => self.malformed(),
            },
            State::Length => {
                self.push_header(b);
                self.length = usize::from(b >> 1);
                if b & 0x01 != 0 {
                    self.after_length();
                } else {
                    self.state = State::LengthHigh;
                }
            }
            State::LengthHigh => {
                self.push_header(b);
                self.length |= usize::from(b) << 7;
                self.after_length();
            }
            State::Info => {
                self.info.push(b);
                if self.info.len() == self.length {
                    self.state = State::Fcs;
                }
            }
            State::Fcs => {
                self.fcs = b;
                self.state = State::End;
            }
            State::End => {
                if b != FLAG {
                    self.malformed();
                    return false;
                }
                // The closing flag may open the next frame.
                self.state = State::Address;
                let header = &self.header[..self.header_len];
                let good = if self.kind == Kind::Uih {
                    fcs_ok(header, self.fcs)
                } else {
                    let mut checked = header.to_vec();
                    checked.extend_from_slice(&self.info);
                    fcs_ok(&checked, self.fcs)
                };
                if !good {
                    self.dropped.bad_fcs += 1;
                    return false;
                }
                return true;
            }
        }
        false
    }

    fn push_header(&mut self, b: u8) {
        if let Some(slot) = self.header.get_mut(self.header_len) {
            *slot = b;
            self.header_len += 1;
        }
    }

    fn after_length(&mut self) {
        if self.length > self.n1 {
            self.dropped.too_long += 1;
            self.state = State::Hunt;
        } else if self.length == 0 {
            self.state = State::Fcs;
        } else {
            self.info.reserve(self.length);
            self.state = State::Info;
        }
    }

    fn malformed(&mut self) {
        self.dropped.malformed += 1;
        self.state = State::Hunt;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(decoder: &mut Decoder, mut input: &[u8]) -> Vec<(u8, bool, Kind, bool, Vec<u8>)> {
        let mut got = Vec::new();
        while let Some(f) = decoder.next(&mut input) {
            got.push((f.dlci, f.cr, f.kind, f.pf, f.info.to_vec()));
        }
        got
    }

    #[test]
    fn decodes_the_close_down_frame_after_noise() {
        let mut d = Decoder::new(31);
        let got = frames(&mut d, b"AT\r\xF9\x03\xFF\x05\xC3\x01\xE7\xF9");
        assert_eq!(got, [(0, true, Kind::Uih, true, vec![0xC3, 0x01])]);
        assert_eq!(d.dropped().noise, 3);
    }

    #[test]
    fn back_to_back_frames_share_a_flag_and_split_anywhere() {
        let wire = [
            0xF9, 0x03, 0x3F, 0x01, 0x1C, 0xF9, 0x07, 0x3F, 0x01, 0xDE, 0xF9,
        ];
        for split in 0..=wire.len() {
            let mut d = Decoder::new(31);
            let mut got = frames(&mut d, &wire[..split]);
            got.extend(frames(&mut d, &wire[split..]));
            assert_eq!(got.len(), 2, "split at {split}");
            assert_eq!(got[1].0, 1);
            assert_eq!(d.dropped(), Dropped::default());
        }
    }

    #[test]
    fn a_bad_fcs_is_dropped_and_the_next_frame_still_decodes() {
        let mut d = Decoder::new(31);
        let got = frames(
            &mut d,
            &[
                0xF9, 0x03, 0x3F, 0x01, 0x1D, 0xF9, 0x03, 0x3F, 0x01, 0x1C, 0xF9,
            ],
        );
        assert_eq!(got.len(), 1);
        assert_eq!(d.dropped().bad_fcs, 1);
    }

    #[test]
    fn a_frame_longer_than_n1_is_dropped_and_the_stream_recovers_at_a_flag() {
        let mut d = Decoder::new(4);
        let mut long = Vec::new();
        Frame {
            dlci: 1,
            cr: true,
            kind: Kind::Uih,
            pf: false,
            info: b"ATI\r\n",
        }
        .encode(&mut long);
        let mut short = Vec::new();
        Frame {
            dlci: 1,
            cr: true,
            kind: Kind::Uih,
            pf: false,
            info: b"AT\r",
        }
        .encode(&mut short);
        long.extend_from_slice(&short);
        let got = frames(&mut d, &long);
        assert_eq!(got, [(1, true, Kind::Uih, false, b"AT\r".to_vec())]);
        assert_eq!(d.dropped().too_long, 1);
    }

    #[test]
    fn a_flag_inside_the_information_is_data() {
        let mut wire = Vec::new();
        Frame {
            dlci: 2,
            cr: true,
            kind: Kind::Uih,
            pf: false,
            info: &[0xF9, 0xF9, 0x00],
        }
        .encode(&mut wire);
        let mut d = Decoder::new(31);
        assert_eq!(frames(&mut d, &wire)[0].4, [0xF9, 0xF9, 0x00]);
    }
}
