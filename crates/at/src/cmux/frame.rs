//! 27.010 basic-option frames: the fields, the FCS and the encoder.
//!
//! A frame on the wire is `F9 <address> <control> <length 1|2> <information> <FCS> F9`. The
//! basic option has no transparency: the information field may hold `F9` bytes, so frames
//! are delimited by their length, and the flags only mark where to resynchronise.

/// The flag that opens and closes every basic-option frame.
pub const FLAG: u8 = 0xF9;

/// The highest DLCI the address field can carry (6 bits).
pub const MAX_DLCI: u8 = 63;

/// The longest information field a two-octet length can announce (15 bits).
pub const MAX_INFO: usize = 0x7FFF;

/// The poll/final bit of the control field.
const PF: u8 = 0x10;

/// A frame's type: its control field without the P/F bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Set asynchronous balanced mode: open a DLCI.
    Sabm,
    /// Unnumbered acknowledgement: the answer to SABM and DISC.
    Ua,
    /// Disconnected mode: the DLCI is not (or no longer) open.
    Dm,
    /// Disconnect: close a DLCI (DLCI 0: the whole multiplexer).
    Disc,
    /// Unnumbered information with header check: data, FCS over the header only.
    Uih,
    /// Unnumbered information: data, FCS over the header and the information.
    Ui,
}

impl Kind {
    /// The control octet with the P/F bit clear.
    pub fn control(self) -> u8 {
        match self {
            Kind::Sabm => 0x2F,
            Kind::Ua => 0x63,
            Kind::Dm => 0x0F,
            Kind::Disc => 0x43,
            Kind::Uih => 0xEF,
            Kind::Ui => 0x03,
        }
    }

    /// The type and the P/F bit of a control octet; `None` for a type the basic option does
    /// not use here.
    pub fn from_control(octet: u8) -> Option<(Kind, bool)> {
        let kind = match octet & !PF {
            0x2F => Kind::Sabm,
            0x63 => Kind::Ua,
            0x0F => Kind::Dm,
            0x43 => Kind::Disc,
            0xEF => Kind::Uih,
            0x03 => Kind::Ui,
            _ => return None,
        };
        Some((kind, octet & PF != 0))
    }

    /// Whether the FCS covers the information field too (every type but UIH).
    fn checks_information(self) -> bool {
        self != Kind::Uih
    }
}

/// One frame, its information borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The data link connection (0: the control channel).
    pub dlci: u8,
    /// The address field's command/response bit (its meaning depends on who started the
    /// multiplexer: TS 27.010 §5.2.1.2).
    pub cr: bool,
    /// The frame's type.
    pub kind: Kind,
    /// The poll (in a command) or final (in a response) bit.
    pub pf: bool,
    /// The information field.
    pub info: &'a [u8],
}

impl Frame<'_> {
    /// The address octet: EA set, the C/R bit, the DLCI.
    pub fn address(&self) -> u8 {
        (self.dlci & MAX_DLCI) << 2 | u8::from(self.cr) << 1 | 1
    }

    /// The control octet.
    pub fn control(&self) -> u8 {
        self.kind.control() | if self.pf { PF } else { 0 }
    }

    /// Appends the frame, flags included. An information field longer than [`MAX_INFO`] is
    /// cut there (callers split data at their N1, which is smaller).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let info = &self.info[..self.info.len().min(MAX_INFO)];
        let start = out.len();
        out.push(FLAG);
        out.push(self.address());
        out.push(self.control());
        // The length: one octet (EA set) up to 127, else two, low seven bits first.
        let len = info.len();
        if len <= 0x7F {
            out.push((len as u8) << 1 | 1);
        } else {
            out.push(((len & 0x7F) as u8) << 1);
            out.push((len >> 7) as u8);
        }
        let header_end = out.len();
        out.extend_from_slice(info);
        let checked = if self.kind.checks_information() {
            &out[start + 1..]
        } else {
            &out[start + 1..header_end]
        };
        let fcs = fcs(checked);
        out.push(fcs);
        out.push(FLAG);
    }
}

/// The frame check sequence over `bytes`: the ones' complement of the CRC-8 of TS 27.010
/// §5.2.1.6 (x^8 + x^2 + x + 1, reflected, initial value 0xFF).
pub fn fcs(bytes: &[u8]) -> u8 {
    0xFF - crc(0xFF, bytes)
}

/// Whether `fcs` is right for `bytes`: the CRC over the bytes and the FCS is the constant
/// remainder 0xCF.
pub fn fcs_ok(bytes: &[u8], fcs: u8) -> bool {
    crc(crc(0xFF, bytes), &[fcs]) == 0xCF
}

fn crc(mut crc: u8, bytes: &[u8]) -> u8 {
    for &b in bytes {
        crc = CRC_TABLE[usize::from(crc ^ b)];
    }
    crc
}

/// The reflected CRC-8 (polynomial 0x07, reflected 0xE0), one entry per byte value.
const CRC_TABLE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u8;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xE0 } else { c >> 1 };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(frame: Frame<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        frame.encode(&mut out);
        out
    }

    #[test]
    fn sabm_and_ua_on_the_control_channel_are_the_standards_frames() {
        let sabm = Frame {
            dlci: 0,
            cr: true,
            kind: Kind::Sabm,
            pf: true,
            info: &[],
        };
        assert_eq!(encoded(sabm), [0xF9, 0x03, 0x3F, 0x01, 0x1C, 0xF9]);
        let ua = Frame {
            kind: Kind::Ua,
            ..sabm
        };
        assert_eq!(encoded(ua), [0xF9, 0x03, 0x73, 0x01, 0xD7, 0xF9]);
    }

    #[test]
    fn ubxlib_close_down_frame() {
        // u_cell_mux.c's link recovery sends this before its first AT.
        let cld = Frame {
            dlci: 0,
            cr: true,
            kind: Kind::Uih,
            pf: true,
            info: &[0xC3, 0x01],
        };
        assert_eq!(
            encoded(cld),
            [0xF9, 0x03, 0xFF, 0x05, 0xC3, 0x01, 0xE7, 0xF9]
        );
    }

    #[test]
    fn a_long_information_field_takes_a_two_octet_length() {
        let info = vec![0x41; 200];
        let out = encoded(Frame {
            dlci: 1,
            cr: false,
            kind: Kind::Uih,
            pf: false,
            info: &info,
        });
        // 200 = 0b1_1001000: low seven bits 0x48 shifted, EA clear; then 0x01.
        assert_eq!(&out[..5], [0xF9, 0x05, 0xEF, 0x90, 0x01]);
        assert_eq!(out.len(), 1 + 4 + 200 + 2);
        assert!(fcs_ok(&out[1..5], out[205]));
    }

    #[test]
    fn the_fcs_check_accepts_its_own_fcs_and_nothing_else() {
        let header = [0x07, 0xEF, 0x09];
        let good = fcs(&header);
        assert!(fcs_ok(&header, good));
        for wrong in (0..=255u8).filter(|&b| b != good) {
            assert!(!fcs_ok(&header, wrong));
        }
    }

    #[test]
    fn every_control_octet_round_trips() {
        for kind in [
            Kind::Sabm,
            Kind::Ua,
            Kind::Dm,
            Kind::Disc,
            Kind::Uih,
            Kind::Ui,
        ] {
            for pf in [false, true] {
                let octet = kind.control() | if pf { PF } else { 0 };
                assert_eq!(Kind::from_control(octet), Some((kind, pf)));
            }
        }
        assert_eq!(Kind::from_control(0x00), None);
    }
}
