//! The DTE-side response digester the host tools use: it turns the module's byte stream into
//! echo, information lines, data prompts, final results and URCs.
//!
//! The digester knows whether a command is in flight ([`Digester::expect_response`]):
//! - while one is, a line starting with `AT` is its echo, `>` at the start of a line is the data
//!   prompt, and other lines are information lines until a final result (`OK`, `ERROR`,
//!   `+CME ERROR: ...`, `+CMS ERROR: ...`, `ABORTED`);
//! - lines starting with `+UU` are URCs at any time (the u-blox naming rule), and so is every line
//!   that arrives while no command is in flight.
//!
//! `+URDFILE:` and `+URDBLOCK:` carry raw bytes that may contain CR, LF or quotes; the digester
//! reads their `<size>` field and takes exactly that many bytes.
//!
//! ```
//! use sealcell_at::dte::{Digester, DteEvent, FinalResponse};
//! let mut d = Digester::new();
//! d.expect_response();
//! d.feed(b"AT+CGMI\r\r\nu-blox\r\n\r\nOK\r\n");
//! assert_eq!(d.next_event(), Some(DteEvent::Echo(b"AT+CGMI".to_vec())));
//! assert_eq!(d.next_event(), Some(DteEvent::Info(b"u-blox".to_vec())));
//! assert_eq!(d.next_event(), Some(DteEvent::Final(FinalResponse::Ok)));
//! ```

use std::collections::VecDeque;

use crate::cme::CmeError;

/// The longest line the digester buffers before it gives the bytes up as one line.
///
/// # Security
/// Caps memory when a peer never sends a line terminator.
pub const MAX_DTE_LINE: usize = 64 * 1024;

/// The largest raw-data field (`+URDFILE`) the digester will wait for.
///
/// # Security
/// A malicious peer cannot make the host buffer more than this for one response.
pub const MAX_RAW_FIELD: usize = 64 * 1024 * 1024;

/// The final result of a command as the module reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinalResponse {
    /// `OK`.
    Ok,
    /// `ERROR` (or `ABORTED`).
    Error,
    /// `+CME ERROR: <code or text>`, decoded against the one table where possible.
    Cme(CmeReport),
    /// `+CMS ERROR: <code or text>`.
    Cms(String),
}

/// A `+CME ERROR` as received: numeric (`AT+CMEE=1`) or verbose (`AT+CMEE=2`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmeReport {
    /// The raw text after `+CME ERROR: `.
    pub raw: String,
    /// The table entry, when the number or text is known.
    pub error: Option<CmeError>,
}

/// One thing the module said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DteEvent {
    /// The echo of the command line (without its terminator).
    Echo(Vec<u8>),
    /// An information line of the response in flight.
    Info(Vec<u8>),
    /// The `>` data prompt: send the payload now.
    Prompt,
    /// The final result; the command is no longer in flight.
    Final(FinalResponse),
    /// An unsolicited result code.
    Urc(Vec<u8>),
}

/// Incremental digester. Feed bytes as they arrive; take events as they complete.
#[derive(Debug, Default)]
pub struct Digester {
    buf: Vec<u8>,
    in_flight: bool,
    events: VecDeque<DteEvent>,
}

impl Digester {
    /// A digester with no command in flight.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks that a command has just been sent: the following lines are its response.
    pub fn expect_response(&mut self) {
        self.in_flight = true;
    }

    /// Whether a command's final result is still awaited.
    pub fn is_in_flight(&self) -> bool {
        self.in_flight
    }

    /// Feeds bytes received from the module.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        while self.step() {}
    }

    /// The next complete event.
    pub fn next_event(&mut self) -> Option<DteEvent> {
        self.events.pop_front()
    }

    /// Bytes received but not yet part of an event (a partial line).
    pub fn pending_bytes(&self) -> &[u8] {
        &self.buf
    }

    fn consume(&mut self, n: usize) -> Vec<u8> {
        let rest = self.buf.split_off(n);
        std::mem::replace(&mut self.buf, rest)
    }

    /// Digests one item; false when more bytes are needed.
    fn step(&mut self) -> bool {
        let skip = self
            .buf
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        if skip > 0 {
            self.consume(skip);
        }
        if self.buf.is_empty() {
            return false;
        }
        if self.in_flight && self.buf[0] == b'>' {
            let n = if self.buf.get(1) == Some(&b' ') { 2 } else { 1 };
            self.consume(n);
            self.events.push_back(DteEvent::Prompt);
            return true;
        }
        if self.in_flight
            && let Some(done) = self.raw_data_line()
        {
            return done;
        }
        let Some(end) = self.buf.iter().position(|&b| b == b'\r' || b == b'\n') else {
            if self.buf.len() > MAX_DTE_LINE {
                let line = self.consume(MAX_DTE_LINE);
                self.classify(line);
                return true;
            }
            return false;
        };
        let mut line = self.consume(end + 1);
        line.pop();
        self.classify(line);
        true
    }

    /// Handles `+URDFILE: "name",size,"<raw>"`: `Some(true)` when taken, `Some(false)` when
    /// more bytes are needed, `None` when the buffer holds no such line.
    fn raw_data_line(&mut self) -> Option<bool> {
        let prefix_len = [&b"+URDFILE: "[..], &b"+URDBLOCK: "[..]]
            .iter()
            .find(|p| self.buf.starts_with(p))?
            .len();
        let after = &self.buf[prefix_len..];
        // Header: optional quoted name, a comma, the decimal size, a comma, the opening quote.
        let name_end = if after.first() == Some(&b'"') {
            1 + after.get(1..)?.iter().position(|&b| b == b'"')? + 1
        } else {
            after.iter().position(|&b| b == b',')?
        };
        let rest = after.get(name_end..)?;
        if rest.first() != Some(&b',') {
            return None;
        }
        let digits = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        let size_field = rest.get(1 + digits)?;
        if digits == 0 || *size_field != b',' {
            return None;
        }
        let size: usize = std::str::from_utf8(&rest[1..1 + digits])
            .ok()?
            .parse()
            .ok()?;
        if size > MAX_RAW_FIELD {
            return None;
        }
        let data_start = prefix_len + name_end + 1 + digits + 1;
        match self.buf.get(data_start) {
            None => return Some(false),
            Some(b'"') => {}
            Some(_) => return None,
        }
        let total = data_start + 1 + size + 1;
        if self.buf.len() < total {
            return Some(false);
        }
        let line = self.consume(total);
        self.events.push_back(DteEvent::Info(line));
        Some(true)
    }

    fn classify(&mut self, line: Vec<u8>) {
        // u-blox URCs start with +UU; anything while no command is in flight is unsolicited.
        let event = if line.starts_with(b"+UU") || !self.in_flight {
            DteEvent::Urc(line)
        } else if line.len() >= 2 && line[..2].eq_ignore_ascii_case(b"AT") {
            DteEvent::Echo(line)
        } else if let Some(fin) = final_response(&line) {
            self.in_flight = false;
            DteEvent::Final(fin)
        } else {
            DteEvent::Info(line)
        };
        self.events.push_back(event);
    }
}

fn final_response(line: &[u8]) -> Option<FinalResponse> {
    match line {
        b"OK" => return Some(FinalResponse::Ok),
        b"ERROR" | b"ABORTED" => return Some(FinalResponse::Error),
        _ => {}
    }
    if let Some(rest) = line.strip_prefix(b"+CME ERROR:") {
        let raw = String::from_utf8_lossy(rest).trim().to_string();
        let error = match raw.parse::<u16>() {
            Ok(code) => CmeError::from_code(code),
            Err(_) => CmeError::from_text(&raw),
        };
        return Some(FinalResponse::Cme(CmeReport { raw, error }));
    }
    if let Some(rest) = line.strip_prefix(b"+CMS ERROR:") {
        return Some(FinalResponse::Cms(
            String::from_utf8_lossy(rest).trim().to_string(),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(in_flight: bool, chunks: &[&[u8]]) -> Vec<DteEvent> {
        let mut d = Digester::new();
        if in_flight {
            d.expect_response();
        }
        let mut out = Vec::new();
        for c in chunks {
            for &b in c.iter() {
                d.feed(&[b]);
                while let Some(e) = d.next_event() {
                    out.push(e);
                }
            }
        }
        out
    }

    #[test]
    fn echo_info_final_bytewise() {
        let ev = events(true, &[b"AT+CGSN\r\r\n352099001761481\r\n\r\nOK\r\n"]);
        assert_eq!(
            ev,
            vec![
                DteEvent::Echo(b"AT+CGSN".to_vec()),
                DteEvent::Info(b"352099001761481".to_vec()),
                DteEvent::Final(FinalResponse::Ok)
            ]
        );
    }

    #[test]
    fn cme_numeric_and_verbose() {
        let ev = events(true, &[b"\r\n+CME ERROR: 1612\r\n"]);
        assert_eq!(
            ev,
            vec![DteEvent::Final(FinalResponse::Cme(CmeReport {
                raw: "1612".into(),
                error: Some(CmeError::FileNotFound)
            }))]
        );
        let ev = events(true, &[b"\r\n+CME ERROR: FFS TIMEOUT\r\n"]);
        assert_eq!(
            ev,
            vec![DteEvent::Final(FinalResponse::Cme(CmeReport {
                raw: "FFS TIMEOUT".into(),
                error: Some(CmeError::FfsTimeout)
            }))]
        );
    }

    #[test]
    fn prompt_and_urcs() {
        let ev = events(true, &[b"AT+UDWNFILE=\"a\",3\r\r\n>"]);
        assert_eq!(
            ev,
            vec![
                DteEvent::Echo(b"AT+UDWNFILE=\"a\",3".to_vec()),
                DteEvent::Prompt
            ]
        );
        let ev = events(false, &[b"\r\n+UUHTTPCR: 0,1,1\r\n"]);
        assert_eq!(ev, vec![DteEvent::Urc(b"+UUHTTPCR: 0,1,1".to_vec())]);
        let ev = events(true, &[b"\r\n+UUFWINSTALL: 10\r\n\r\nOK\r\n"]);
        assert_eq!(
            ev,
            vec![
                DteEvent::Urc(b"+UUFWINSTALL: 10".to_vec()),
                DteEvent::Final(FinalResponse::Ok)
            ]
        );
    }

    #[test]
    fn raw_file_data_with_line_breaks() {
        let ev = events(
            true,
            &[b"\r\n+URDFILE: \"f\",6,\"a\r\nOK\"\"\r\n\r\nOK\r\n"],
        );
        assert_eq!(
            ev,
            vec![
                DteEvent::Info(b"+URDFILE: \"f\",6,\"a\r\nOK\"\"".to_vec()),
                DteEvent::Final(FinalResponse::Ok)
            ]
        );
    }
}
