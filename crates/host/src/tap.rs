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

/// What stands for a redacted secret.
pub const REDACTED: &str = "<redacted>";

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
            Line::Host(t) => format!("> {t}"),
            Line::Module(t) => format!("< {t}"),
            Line::Redacted(n) => format!("@ redacted {n}"),
        }
    }
}

/// What the recorder is in the middle of.
#[derive(Debug, Default)]
pub struct Recorder {
    host: Vec<u8>,
    module: Vec<u8>,
    /// The last host line as sent and as recorded (its echo is redacted the same way).
    last_sent: Option<(Vec<u8>, Vec<u8>)>,
    /// The host's bytes are a payload: bytes still to come, its size, whether it is redacted.
    payload: Option<(usize, usize, bool)>,
    /// The last host line asked for a payload (of this size, redacted or not).
    wants_payload: Option<(usize, bool)>,
}

impl Recorder {
    /// A recorder at the start of a session.
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Takes bytes the host sent; returns the lines they complete.
    pub fn host(&mut self, bytes: &[u8]) -> Vec<Line> {
        let mut lines = self.flush_module_partial();
        let mut rest = bytes;
        while !rest.is_empty() {
            if let Some((left, total, redact)) = self.payload {
                let n = left.min(rest.len());
                if !redact {
                    lines.push(Line::Host(escape(&rest[..n])));
                }
                rest = &rest[n..];
                if left == n {
                    self.payload = None;
                    if redact {
                        lines.push(Line::Redacted(total));
                    }
                } else {
                    self.payload = Some((left - n, total, redact));
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
                let shown = redact_line(&sent);
                self.wants_payload = payload_of(&sent);
                lines.push(Line::Host(escape(&shown)));
                self.last_sent = Some((sent, shown));
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
            lines.push(Line::Module(escape(&self.redact_echo(line))));
        }
        if self.module.len() >= MAX_LINE {
            let line = std::mem::take(&mut self.module);
            lines.push(Line::Module(escape(&line)));
        }
        // A prompt: the host's next bytes are the payload the last line asked for.
        if let Some(want) = self.wants_payload
            && (self.module.ends_with(b">") || self.module.ends_with(b"@"))
        {
            self.wants_payload = None;
            self.payload = Some((want.0, want.0, want.1));
        }
        lines
    }

    /// The module's unfinished line (a prompt), written out as the host speaks next.
    fn flush_module_partial(&mut self) -> Vec<Line> {
        if self.module.is_empty() {
            return Vec::new();
        }
        let line = std::mem::take(&mut self.module);
        vec![Line::Module(escape(&self.redact_echo(line)))]
    }

    /// The rest of the session, at its end.
    pub fn finish(&mut self) -> Vec<Line> {
        let mut lines = self.flush_module_partial();
        if !self.host.is_empty() {
            let sent = std::mem::take(&mut self.host);
            lines.push(Line::Host(escape(&redact_line(&sent))));
        }
        lines
    }

    /// The echo of the last host line, redacted as that line was.
    fn redact_echo(&self, line: Vec<u8>) -> Vec<u8> {
        match &self.last_sent {
            Some((sent, shown)) if sent != shown && line.starts_with(sent) => {
                let mut out = shown.clone();
                out.extend_from_slice(&line[sent.len()..]);
                out
            }
            _ => line,
        }
    }
}

/// Escapes bytes as the transcripts do: printable ASCII as it is, `\r`, `\n`, `\t`, `\\` and
/// `\xHH` for the rest.
pub fn escape(bytes: &[u8]) -> String {
    sealcell_at::escape::escape(bytes)
}

/// `line` with its secrets replaced by [`REDACTED`] (every command of it, `;`-separated).
pub fn redact_line(line: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(line);
    let mut out = String::with_capacity(text.len());
    for (i, part) in text.split(';').enumerate() {
        if i > 0 {
            out.push(';');
        }
        out.push_str(&redact_command(part));
    }
    if text.as_bytes() == line && out == text {
        return line.to_vec();
    }
    out.into_bytes()
}

/// One command's secrets: which quoted arguments of which commands.
fn redact_command(part: &str) -> String {
    let upper = part.to_ascii_uppercase();
    let name_at = upper.find('+').unwrap_or(usize::MAX);
    let name = upper.get(name_at..).unwrap_or("");
    // (command, which quoted strings are secret: all from the nth on, 1-based)
    let from = if name.starts_with("+USECCFG=") {
        Some(1)
    } else if name.starts_with("+USECMNG=0,") {
        // The name is the first quoted string; a password, the second.
        Some(2)
    } else if name.starts_with("+USECPRF=") {
        let op = name
            .trim_start_matches("+USECPRF=")
            .split(',')
            .nth(1)
            .map(str::trim);
        matches!(op, Some("7" | "8" | "13")).then_some(1)
    } else if name.starts_with("+UHTTP=") {
        let op = name.trim_start_matches("+UHTTP=").split(',').nth(1);
        (op.map(str::trim) == Some("3")).then_some(1)
    } else if name.starts_with("+UAUTHREQ=") {
        // <cid>,<auth>,"<user>","<password>": the password.
        Some(2)
    } else {
        None
    };
    let Some(from) = from else {
        return part.to_string();
    };
    let mut out = String::with_capacity(part.len());
    let mut quoted = 0;
    let mut inside = false;
    for c in part.chars() {
        if c == '"' {
            if !inside {
                quoted += 1;
                inside = true;
                out.push('"');
                if quoted >= from {
                    out.push_str(REDACTED);
                }
                continue;
            }
            inside = false;
            out.push('"');
            continue;
        }
        if !(inside && quoted >= from) {
            out.push(c);
        }
    }
    out
}

/// The payload a command line asks for: its size, and whether it is a private key (not
/// recorded). `+USECMNG=0,<type>,"<name>",<size>[,...]` and `+UDWNFILE="<name>",<size>`.
fn payload_of(line: &[u8]) -> Option<(usize, bool)> {
    let text = String::from_utf8_lossy(line).to_ascii_uppercase();
    let text = text.trim_end_matches(['\r', '\n']);
    let last = text.rsplit(';').next().unwrap_or("");
    let args = |prefix: &str| -> Option<Vec<String>> {
        let at = last.find(prefix)?;
        Some(
            last[at + prefix.len()..]
                .split(',')
                .map(|a| a.trim().to_string())
                .collect(),
        )
    };
    if let Some(a) = args("+USECMNG=0,") {
        let size = a.get(2)?.parse().ok()?;
        let private_key = a.first().map(String::as_str) == Some("2");
        return Some((size, private_key));
    }
    if let Some(a) = args("+UDWNFILE=") {
        return Some((a.get(1)?.parse().ok()?, false));
    }
    None
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
}
