//! The DCE response formatter (at-contract §0, "Responses", "Echo", `AT+CMEE`, "URCs").
//!
//! Honours the channel's `ATV` (verbose or numeric results), `ATQ` (quiet) and `AT+CMEE`
//! settings. It writes into a caller-owned buffer and never allocates on its own.

use crate::cme::CmeError;

/// How `+CME ERROR` results are reported (`AT+CMEE=<n>`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CmeeMode {
    /// `AT+CMEE=0` (the default after every reboot): a bare `ERROR`.
    #[default]
    Off = 0,
    /// `AT+CMEE=1`: `+CME ERROR: <code>`.
    Numeric = 1,
    /// `AT+CMEE=2`: `+CME ERROR: <text>`.
    Verbose = 2,
}

impl CmeeMode {
    /// The mode for a wire value 0..=2.
    pub fn from_value(v: i64) -> Option<CmeeMode> {
        match v {
            0 => Some(CmeeMode::Off),
            1 => Some(CmeeMode::Numeric),
            2 => Some(CmeeMode::Verbose),
            _ => None,
        }
    }
}

/// Per-channel result settings. [`Default`] is the power-on state: echo on, verbose, CMEE=0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelSettings {
    /// `ATE1`: echo received command characters.
    pub echo: bool,
    /// `ATV1`: verbose result codes (`OK`); `ATV0` numeric (`0`).
    pub verbose: bool,
    /// `ATQ1`: suppress result codes.
    pub quiet: bool,
    /// `AT+CMEE`.
    pub cmee: CmeeMode,
}

impl Default for ChannelSettings {
    fn default() -> Self {
        ChannelSettings {
            echo: true,
            verbose: true,
            quiet: false,
            cmee: CmeeMode::Off,
        }
    }
}

/// A final result code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinalResult {
    /// `OK` / `0`.
    Ok,
    /// `ERROR` / `4`.
    Error,
    /// `+CME ERROR: ...`, or `ERROR` when CMEE is 0.
    Cme(CmeError),
}

impl From<CmeError> for FinalResult {
    fn from(e: CmeError) -> Self {
        FinalResult::Cme(e)
    }
}

impl ChannelSettings {
    /// Writes one information line: `\r\n<text>\r\n` (verbose) or `<text>\r\n` (numeric).
    pub fn write_info(&self, out: &mut Vec<u8>, text: &[u8]) {
        if self.verbose {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
    }

    /// Writes the final result code of a command line.
    pub fn write_final(&self, out: &mut Vec<u8>, result: FinalResult) {
        if self.quiet {
            return;
        }
        match (result, self.cmee) {
            (FinalResult::Cme(e), CmeeMode::Numeric) => {
                self.write_cme(out, |o| push_decimal(o, e.code().into()))
            }
            (FinalResult::Cme(e), CmeeMode::Verbose) => {
                self.write_cme(out, |o| o.extend_from_slice(e.text().as_bytes()))
            }
            (FinalResult::Ok, _) => self.write_code(out, b"OK", b"0"),
            (FinalResult::Error | FinalResult::Cme(_), _) => self.write_code(out, b"ERROR", b"4"),
        }
    }

    fn write_code(&self, out: &mut Vec<u8>, verbose: &[u8], numeric: &[u8]) {
        if self.verbose {
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(verbose);
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(numeric);
            out.push(b'\r');
        }
    }

    fn write_cme(&self, out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
        if self.verbose {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"+CME ERROR: ");
        body(out);
        out.extend_from_slice(b"\r\n");
    }

    /// Writes an unsolicited result code; the caller sends it only between responses.
    pub fn write_urc(&self, out: &mut Vec<u8>, text: &[u8]) {
        self.write_info(out, text);
    }
}

/// The data-entry prompt sent before a raw payload: `\r\n>`.
pub const PROMPT: &[u8] = b"\r\n>";

/// Appends a decimal number without allocating.
pub fn push_decimal(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fin(s: ChannelSettings, r: FinalResult) -> Vec<u8> {
        let mut out = Vec::new();
        s.write_final(&mut out, r);
        out
    }

    #[test]
    fn final_results_in_every_mode() {
        let mut s = ChannelSettings::default();
        let e = CmeError::FileNotFound;
        assert_eq!(fin(s, FinalResult::Ok), b"\r\nOK\r\n");
        assert_eq!(fin(s, FinalResult::Error), b"\r\nERROR\r\n");
        assert_eq!(fin(s, e.into()), b"\r\nERROR\r\n");
        s.cmee = CmeeMode::Numeric;
        assert_eq!(fin(s, e.into()), b"\r\n+CME ERROR: 1612\r\n");
        s.cmee = CmeeMode::Verbose;
        assert_eq!(fin(s, e.into()), b"\r\n+CME ERROR: FILE NOT FOUND\r\n");
        s.verbose = false;
        assert_eq!(fin(s, FinalResult::Ok), b"0\r");
        assert_eq!(fin(s, FinalResult::Error), b"4\r");
        assert_eq!(fin(s, e.into()), b"+CME ERROR: FILE NOT FOUND\r\n");
        s.cmee = CmeeMode::Off;
        assert_eq!(fin(s, e.into()), b"4\r");
        s.quiet = true;
        assert_eq!(fin(s, FinalResult::Ok), b"");
    }

    #[test]
    fn decimal() {
        for v in [0u64, 7, 10, 1612, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
        }
    }
}
