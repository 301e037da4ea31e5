//! `sealcell tap`'s recorder (cli.md, "A test bench"): what a host program and a module say to
//! each other, as a golden transcript (`> ` host, `< ` module, escaped as in
//! `tests/transcripts/`), with the secrets redacted.
//!
//! The recorder is sans-I/O: the tap feeds it the bytes of each direction as they pass
//! ([`Recorder::host`], [`Recorder::module`]) and it hands back whole transcript lines. A host
//! line is one command line, up to its CR; a module line ends at each LF, and a prompt (`>`,
//! `@`) is a line of its own when the host speaks next.
//!
//! # Security
//!
//! Redacted, in the host's lines and in their echo: the seal password (`+USECCFG`), a key's
//! password (`+USECMNG=0,...,"<password>"`), a profile's secrets (`+USECPRF` ops 7, 8 and 13),
//! HTTP and PDP passwords (`+UHTTP=<p>,3`, `+UAUTHREQ`). The payload of a private key import
//! (`+USECMNG=0,2`) is recorded as its size only (`@ redacted N`), so the transcript holds no
//! key; a replay sends N zero bytes there and does not compare what follows.

use sealcell_at::escape::escape;

use crate::client::REDACTED;
use crate::transcript::{Direction, format_line};

/// The longest line the recorder buffers before it writes it as it is.
///
/// # Security
/// A host that never ends its line costs this much.
pub const MAX_LINE: usize = 64 * 1024;

/// A transcript line: its marker and its text (already escaped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// `> ...`: what the host sent.
    Host(String),
    /// `< ...`: what the module said.
    Module(String),
    /// `@ redacted N`: a payload of N bytes that is not recorded.
    Redacted(usize),
}

impl Line {
    /// The line as a transcript file holds it.
    pub fn render(&self) -> String {
        match self {
            Line::Host(t) => format_line(Direction::Sent, t),
            Line::Module(t) => format_line(Direction::Received, t),
            Line::Redacted(n) => format!("@ redacted {n}"),
        }
    }
}

/// What the recorder is in the middle of.
#[derive(Debug, Default)]
pub struct Recorder {
    host: Vec<u8>,
    module: Vec<u8>,
    /// The secrets of the last host line: they are redacted wherever the module repeats them
    /// (its echo, however it arrives).
    secrets: Vec<Vec<u8>>,
    /// The host's bytes are a payload: bytes still to come, its size, whether it is redacted,
    /// and whether any of it has come.
    payload: Option<Payload>,
}

#[derive(Debug, Clone, Copy)]
struct Payload {
    left: usize,
    size: usize,
    redact: bool,
    started: bool,
}

impl Recorder {
    /// A recorder at the start of a session.
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Takes bytes the host sent; returns the lines they complete.
    pub fn host(&mut self, bytes: &[u8]) -> Vec<Line> {
        let mut lines = self.flush_prompt();
        let mut rest = bytes;
        while !rest.is_empty() {
            if let Some(mut p) = self.payload {
                let n = p.left.min(rest.len());
                if !p.redact {
                    lines.push(Line::Host(escape(&rest[..n])));
                }
                rest = &rest[n..];
                p.left -= n;
                p.started = true;
                if p.left == 0 {
                    self.payload = None;
                    if p.redact {
                        lines.push(Line::Redacted(p.size));
                    }
                } else {
                    self.payload = Some(p);
                }
                continue;
            }
            let (line, after) = match rest.iter().position(|b| *b == b'\r') {
                Some(i) => (&rest[..=i], &rest[i + 1..]),
                None => (rest, &[][..]),
            };
            self.host.extend_from_slice(line);
            rest = after;
            if self.host.ends_with(b"\r") || self.host.len() >= MAX_LINE {
                let sent = std::mem::take(&mut self.host);
                let (shown, secrets) = redact(&sent);
                self.secrets = secrets;
                // What follows the line is the payload it asks for, whether or not the host
                // waits for the prompt (a refusal before any of it cancels it).
                self.payload = payload_of(&sent).map(|(size, redact)| Payload {
                    left: size,
                    size,
                    redact,
                    started: false,
                });
                if self.payload.is_some_and(|p| p.size == 0) {
                    self.payload = None;
                }
                lines.push(Line::Host(escape(&shown)));
            }
        }
        lines
    }

    /// Takes bytes the module sent; returns the lines they complete.
    pub fn module(&mut self, bytes: &[u8]) -> Vec<Line> {
        self.module.extend_from_slice(bytes);
        let mut lines = Vec::new();
        while let Some(i) = self.module.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.module.drain(..=i).collect();
            // A refusal before the payload came: the host will not send it.
            if self.payload.is_some_and(|p| !p.started) && contains(&line, b"ERROR") {
                self.payload = None;
            }
            lines.push(Line::Module(escape(&self.redact_echo(line))));
        }
        if self.module.len() >= MAX_LINE {
            let line = std::mem::take(&mut self.module);
            lines.push(Line::Module(escape(&self.redact_echo(line))));
        }
        lines
    }

    /// The module's unfinished line, written out as the host speaks next when it is a prompt
    /// (`>`, `@`); anything else waits for its line end (an echo typed a byte at a time is
    /// one line, so its secrets are found whole).
    fn flush_prompt(&mut self) -> Vec<Line> {
        let trimmed = trim_end_spaces(&self.module);
        if !(trimmed.ends_with(b">") || trimmed.ends_with(b"@")) {
            return Vec::new();
        }
        let line = std::mem::take(&mut self.module);
        vec![Line::Module(escape(&self.redact_echo(line)))]
    }

    /// The rest of the session, at its end.
    pub fn finish(&mut self) -> Vec<Line> {
        let mut lines = Vec::new();
        if !self.module.is_empty() {
            let line = std::mem::take(&mut self.module);
            lines.push(Line::Module(escape(&self.redact_echo(line))));
        }
        if !self.host.is_empty() {
            let sent = std::mem::take(&mut self.host);
            lines.push(Line::Host(escape(&redact(&sent).0)));
        }
        lines
    }

    /// `line` with the last host line's secrets replaced, wherever they are.
    fn redact_echo(&self, mut line: Vec<u8>) -> Vec<u8> {
        for secret in &self.secrets {
            line = replace_all(&line, secret, REDACTED.as_bytes());
        }
        line
    }
}

fn trim_end_spaces(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|c| *c != b' ').map_or(0, |i| i + 1);
    &b[..end]
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn replace_all(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() || hay.len() < from.len() {
        return hay.to_vec();
    }
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// `line` with its secrets replaced by [`REDACTED`] (every command of it).
#[cfg(test)]
fn redact_line(line: &[u8]) -> Vec<u8> {
    redact(line).0
}

/// One argument of a command: its byte range in the line, and whether it is a quoted string
/// (the range is then what is between the quotes).
#[derive(Clone, Copy, Debug)]
struct Arg {
    start: usize,
    end: usize,
    quoted: bool,
}

/// The commands of a line, each its name (upper case, spaces dropped) and its arguments, read
/// as the module reads them: quotes hold `;` and `,`, spaces around them do not count.
fn commands(line: &[u8]) -> Vec<(String, Vec<Arg>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        // The command: up to a `;` outside quotes.
        let mut name = String::new();
        while i < line.len() && !matches!(line[i], b'=' | b';' | b'?' | b'\r' | b'\n') {
            if line[i] != b' ' {
                name.push(char::from(line[i].to_ascii_uppercase()));
            }
            i += 1;
        }
        let name = match name.find('+') {
            Some(p) => name[p..].to_string(),
            None => name,
        };
        let mut args = Vec::new();
        if i < line.len() && line[i] == b'=' {
            i += 1;
            loop {
                while i < line.len() && line[i] == b' ' {
                    i += 1;
                }
                if i < line.len() && line[i] == b'"' {
                    let start = i + 1;
                    let end = line[start..]
                        .iter()
                        .position(|b| *b == b'"')
                        .map_or(line.len(), |p| start + p);
                    args.push(Arg {
                        start,
                        end,
                        quoted: true,
                    });
                    i = (end + 1).min(line.len());
                    while i < line.len() && line[i] == b' ' {
                        i += 1;
                    }
                } else {
                    let start = i;
                    while i < line.len() && !matches!(line[i], b',' | b';' | b'\r' | b'\n') {
                        i += 1;
                    }
                    args.push(Arg {
                        start,
                        end: i,
                        quoted: false,
                    });
                }
                if i < line.len() && line[i] == b',' {
                    i += 1;
                    continue;
                }
                break;
            }
        }
        out.push((name, args));
        // On to the next command.
        while i < line.len() && line[i] != b';' {
            i += 1;
        }
        i += 1;
    }
    out
}

fn text<'a>(line: &'a [u8], a: &Arg) -> &'a str {
    std::str::from_utf8(&line[a.start..a.end])
        .unwrap_or("")
        .trim()
}

/// Which arguments of a command are secrets.
fn secret_args(line: &[u8], name: &str, args: &[Arg]) -> Vec<usize> {
    let quoted: Vec<usize> = (0..args.len()).filter(|i| args[*i].quoted).collect();
    let arg = |i: usize| args.get(i).map_or("", |a| text(line, a));
    match name {
        "+USECCFG" => quoted,
        // 0: import (type, "name", size[, "password"]); 1: from a file (type, "name",
        // "file"[, "password"]): the password is the last quoted one past the name (and file).
        "+USECMNG" => match arg(0) {
            "0" => quoted.into_iter().skip(1).collect(),
            "1" => quoted.into_iter().skip(2).collect(),
            _ => Vec::new(),
        },
        "+USECPRF" if matches!(arg(1), "7" | "8" | "13") => quoted,
        "+UHTTP" if arg(1) == "3" => quoted,
        // <cid>,<auth>,"<user>","<password>".
        "+UAUTHREQ" => quoted.into_iter().skip(1).collect(),
        _ => Vec::new(),
    }
}

/// `line` with its secrets replaced, and the secrets.
fn redact(line: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for (name, args) in commands(line) {
        for i in secret_args(line, &name, &args) {
            if args[i].end > args[i].start {
                ranges.push((args[i].start, args[i].end));
            }
        }
    }
    if ranges.is_empty() {
        return (line.to_vec(), Vec::new());
    }
    ranges.sort_unstable();
    let mut out = Vec::with_capacity(line.len());
    let mut secrets = Vec::new();
    let mut at = 0;
    for (start, end) in ranges {
        if start < at {
            continue;
        }
        out.extend_from_slice(&line[at..start]);
        out.extend_from_slice(REDACTED.as_bytes());
        secrets.push(line[start..end].to_vec());
        at = end;
    }
    out.extend_from_slice(&line[at..]);
    (out, secrets)
}

/// The payload a command line asks for: its size, and whether it is a private key (not
/// recorded). `+USECMNG=0,<type>,"<name>",<size>[,...]` and `+UDWNFILE="<name>",<size>`.
fn payload_of(line: &[u8]) -> Option<(usize, bool)> {
    let (name, args) = commands(line).pop()?;
    let arg = |i: usize| args.get(i).map(|a| text(line, a));
    match name.as_str() {
        "+USECMNG" if arg(0) == Some("0") => {
            let size = arg(3)?.parse().ok()?;
            Some((size, arg(1) == Some("2")))
        }
        "+UDWNFILE" => Some((arg(1)?.parse().ok()?, false)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[Line]) -> Vec<String> {
        lines.iter().map(Line::render).collect()
    }

    #[test]
    fn secrets_are_redacted_in_the_line_and_its_echo() {
        let mut r = Recorder::new();
        assert_eq!(
            texts(&r.host(b"AT+USECCFG=0,1,\"my_pwd\"\r")),
            ["> AT+USECCFG=0,1,\"<redacted>\"\\r"]
        );
        assert_eq!(
            texts(&r.module(b"AT+USECCFG=0,1,\"my_pwd\"\r\r\nOK\r\n")),
            ["< AT+USECCFG=0,1,\"<redacted>\"\\r\\r\\n", "< OK\\r\\n"]
        );
        for (line, shown) in [
            (
                "AT+USECMNG=0,2,\"key\",12,\"pw\"\r",
                "AT+USECMNG=0,2,\"key\",12,\"<redacted>\"\r",
            ),
            (
                "AT+USECPRF=0,8,\"psk\"\r",
                "AT+USECPRF=0,8,\"<redacted>\"\r",
            ),
            ("AT+USECPRF=0,4,\"host\"\r", "AT+USECPRF=0,4,\"host\"\r"),
            ("AT+UHTTP=0,3,\"pw\"\r", "AT+UHTTP=0,3,\"<redacted>\"\r"),
            (
                "AT+UAUTHREQ=1,1,\"user\",\"pw\"\r",
                "AT+UAUTHREQ=1,1,\"user\",\"<redacted>\"\r",
            ),
            (
                "AT+CGMI;+USECCFG=0,1,\"x\"\r",
                "AT+CGMI;+USECCFG=0,1,\"<redacted>\"\r",
            ),
        ] {
            assert_eq!(
                String::from_utf8(redact_line(line.as_bytes())).unwrap(),
                shown
            );
        }
    }

    #[test]
    fn a_private_key_s_payload_is_its_size_and_a_certificate_s_is_kept() {
        let mut r = Recorder::new();
        r.host(b"AT+USECMNG=0,2,\"k\",4\r");
        assert_eq!(texts(&r.module(b"\r\n>")), ["< \\r\\n"]);
        assert_eq!(texts(&r.host(b"se")), ["< >"]);
        assert_eq!(texts(&r.host(b"cr")), ["@ redacted 4"]);
        assert_eq!(
            texts(&r.module(b"\r\n+USECMNG: 0,2,\"k\",\"0123\"\r\n")),
            ["< \\r\\n", "< +USECMNG: 0,2,\"k\",\"0123\"\\r\\n"]
        );
        r.host(b"AT+USECMNG=0,0,\"c\",2\r");
        r.module(b"\r\n>");
        assert_eq!(texts(&r.host(b"ab")), ["< >", "> ab"]);
    }

    #[test]
    fn the_leaks_a_second_look_found_stay_shut() {
        for (line, shown) in [
            (
                "AT+USECCFG = 0, 1, \"pw\"\r",
                "AT+USECCFG = 0, 1, \"<redacted>\"\r",
            ),
            (
                "AT+USECCFG=0,1,\"ab;cd\"\r",
                "AT+USECCFG=0,1,\"<redacted>\"\r",
            ),
            (
                "AT+USECMNG=1,2,\"k\",\"key.pem\",\"pw\"\r",
                "AT+USECMNG=1,2,\"k\",\"key.pem\",\"<redacted>\"\r",
            ),
            ("at+uhttp=0,3,\"pw\"\r", "at+uhttp=0,3,\"<redacted>\"\r"),
        ] {
            assert_eq!(
                String::from_utf8(redact_line(line.as_bytes())).unwrap(),
                shown
            );
        }
        // A key whose name has a comma, sent before the prompt: its size is still found, its
        // bytes still redacted.
        let mut r = Recorder::new();
        r.host(b"AT+USECMNG = 0,2,\"a,b\",3\r");
        assert_eq!(texts(&r.host(b"key")), ["@ redacted 3"]);
        // An echo typed a byte at a time is one line, its secret redacted.
        let mut r = Recorder::new();
        for b in b"AT+USECCFG=0,1,\"pw\"\r" {
            r.module(&[*b]);
            r.host(&[*b]);
        }
        let lines = texts(&r.module(b"\r\nOK\r\n"));
        assert_eq!(
            lines,
            ["< AT+USECCFG=0,1,\"<redacted>\"\\r\\r\\n", "< OK\\r\\n"],
            "{lines:?}"
        );
        // A refused import: the host's next line is a line, not a payload.
        let mut r = Recorder::new();
        r.host(b"AT+USECMNG=0,2,\"k\",4\r");
        r.module(b"\r\n+CME ERROR: 4\r\n");
        assert_eq!(texts(&r.host(b"AT\r")), ["> AT\\r"]);
    }
}
