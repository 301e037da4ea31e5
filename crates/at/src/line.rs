//! The DCE line assembler: turns the byte stream from the host into command lines
//! (at-contract §0, "Command line").
//!
//! - A line ends with CR (S3 = 13); an LF right after a CR is ignored; a lone LF also ends a line.
//! - Backspace (S5 = 8) deletes one character.
//! - **A line longer than [`MAX_LINE`] characters is answered with `ERROR`**: the assembler
//!   stops storing, discards everything up to the next terminator, then reports
//!   [`Push::Overflow`] and is ready for the next line.
//!
//! The assembler is fed one byte at a time, so it is indifferent to how the transport splits
//! the stream. A finished line is zeroized before the next one starts: command lines can carry
//! passwords (`AT+USECCFG=0,1,"..."`).

use zeroize::Zeroize;

/// The longest command line the module accepts, in characters (bytes).
///
/// # Security
/// This caps the memory one channel can hold for an unfinished line.
pub const MAX_LINE: usize = 2048;

/// What one byte did to the assembler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Push {
    /// The byte was stored (or dropped while overflowing); the line is not finished.
    Pending,
    /// The byte ended a line; read it with [`LineAssembler::line`].
    Line,
    /// The byte ended a line that was longer than [`MAX_LINE`]; answer `ERROR`.
    Overflow,
    /// The byte was an LF right after a CR and was ignored.
    IgnoredLf,
}

/// Accumulates bytes into lines. See the module docs for the rules.
#[derive(Debug, Default)]
pub struct LineAssembler {
    buf: Vec<u8>,
    overflowed: bool,
    after_cr: bool,
    complete: bool,
}

impl LineAssembler {
    /// An empty assembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one byte.
    pub fn push(&mut self, byte: u8) -> Push {
        if self.complete {
            self.wipe();
            self.complete = false;
        }
        let after_cr = std::mem::replace(&mut self.after_cr, byte == b'\r');
        match byte {
            b'\n' if after_cr => Push::IgnoredLf,
            b'\r' | b'\n' => {
                if std::mem::take(&mut self.overflowed) {
                    self.wipe();
                    Push::Overflow
                } else {
                    self.complete = true;
                    Push::Line
                }
            }
            0x08 => {
                if !self.overflowed {
                    self.buf.pop();
                }
                Push::Pending
            }
            _ => {
                if self.overflowed {
                    // Discarding up to the next terminator.
                } else if self.buf.len() >= MAX_LINE {
                    self.overflowed = true;
                    self.wipe();
                } else {
                    self.buf.push(byte);
                }
                Push::Pending
            }
        }
    }

    /// The line finished by the last [`Push::Line`], without its terminator.
    pub fn line(&self) -> &[u8] {
        if self.complete { &self.buf } else { &[] }
    }

    /// Whether part of a line has been received (used to hold back nothing; informative).
    pub fn is_mid_line(&self) -> bool {
        !self.complete && (!self.buf.is_empty() || self.overflowed)
    }

    /// Forgets any partial line (after a reboot).
    pub fn reset(&mut self) {
        self.wipe();
        *self = Self::default();
    }

    /// Zeroes the bytes in use, then empties the buffer (keeping its capacity).
    fn wipe(&mut self) {
        self.buf.as_mut_slice().zeroize();
        self.buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<Result<Vec<u8>, ()>> {
        let mut a = LineAssembler::new();
        let mut out = Vec::new();
        for &b in input {
            match a.push(b) {
                Push::Line => out.push(Ok(a.line().to_vec())),
                Push::Overflow => out.push(Err(())),
                Push::Pending | Push::IgnoredLf => {}
            }
        }
        out
    }

    #[test]
    fn cr_lf_variants() {
        assert_eq!(lines(b"AT\r"), vec![Ok(b"AT".to_vec())]);
        assert_eq!(
            lines(b"AT\r\nATI\r\n"),
            vec![Ok(b"AT".to_vec()), Ok(b"ATI".to_vec())]
        );
        assert_eq!(
            lines(b"AT\nATI\n"),
            vec![Ok(b"AT".to_vec()), Ok(b"ATI".to_vec())]
        );
        // LF LF: the second LF is a lone LF and ends an empty line.
        assert_eq!(lines(b"AT\n\n"), vec![Ok(b"AT".to_vec()), Ok(vec![])]);
        assert_eq!(lines(b"AT\r\r"), vec![Ok(b"AT".to_vec()), Ok(vec![])]);
    }

    #[test]
    fn backspace_deletes_one_character() {
        assert_eq!(lines(b"ATX\x08I\r"), vec![Ok(b"ATI".to_vec())]);
        assert_eq!(lines(b"\x08\x08AT\r"), vec![Ok(b"AT".to_vec())]);
    }

    #[test]
    fn overflow_reports_once_and_recovers() {
        let mut input = vec![b'A'; MAX_LINE + 10];
        input.extend_from_slice(b"\rAT\r");
        assert_eq!(lines(&input), vec![Err(()), Ok(b"AT".to_vec())]);
        let mut exact = vec![b'A'; MAX_LINE];
        exact.push(b'\r');
        assert_eq!(lines(&exact), vec![Ok(vec![b'A'; MAX_LINE])]);
    }
}
