//! `sealcell replay` (cli.md, "A test bench"): a transcript's host side sent to a module, every
//! answer compared with the transcript's, the fields that differ from module to module by
//! shape only.
//!
//! What is compared is what the module says after each host line, up to the next host line
//! of the transcript. Compared by shape ([`shape`]): runs of 14 or more digits (IMEI, IMSI,
//! ICCID, serial), 32 hex digits (an MD5), dotted addresses (the PDP address), `+CCLK` times.
//! After a payload the tap did not record (`@ redacted N`), N zero bytes are sent and the
//! answer is not compared.

use std::io;
use std::time::{Duration, Instant};

use crate::port::Link;

/// The most steps a transcript may have.
///
/// # Security
/// Bounds what a hostile transcript makes replay hold.
pub const MAX_STEPS: usize = 100_000;

/// How long replay waits for the module's whole answer to one host line.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the module must be quiet after its answer before replay moves on (an answer is
/// whole when its last expected line has come, or after this much quiet once it has begun).
pub const QUIET: Duration = Duration::from_millis(300);

/// The most bytes of one answer replay keeps.
///
/// # Security
/// A module (or a wrong port) that never stops talking costs this much per step.
pub const MAX_ANSWER: usize = 16 << 20;

/// One step of a transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes; `line` is its line number.
    Send {
        /// The bytes.
        bytes: Vec<u8>,
        /// The line.
        line: usize,
    },
    /// Send this many zero bytes: a payload the tap did not record.
    Redacted(usize),
    /// The module's answer (the `<` lines after a send, together).
    Expect(Vec<u8>),
}

/// Why a transcript was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// A line of the transcript does not parse.
    #[error("line {line}: {why}")]
    Parse {
        /// The line.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// The module's link failed.
    #[error("the module: {0}")]
    Io(#[from] io::Error),
}

/// Parses a transcript (`> `, `< `, `@ redacted N`, `#` comments; other `@` lines are the
/// emulator's own and refused).
pub fn parse(text: &str) -> Result<Vec<Step>, ReplayError> {
    let mut steps = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let bad = |why: &str| ReplayError::Parse {
            line: n,
            why: why.to_string(),
        };
        if steps.len() >= MAX_STEPS {
            return Err(bad("too many steps"));
        }
        if let Some(rest) = line.strip_prefix("> ") {
            let bytes = sealcell_at::escape::unescape(rest).map_err(|e| bad(&e))?;
            steps.push(Step::Send { bytes, line: n });
        } else if let Some(rest) = line.strip_prefix("< ") {
            let bytes = sealcell_at::escape::unescape(rest).map_err(|e| bad(&e))?;
            match steps.last_mut() {
                Some(Step::Expect(e)) => e.extend_from_slice(&bytes),
                _ => steps.push(Step::Expect(bytes)),
            }
        } else if let Some(rest) = line.strip_prefix("@ redacted ") {
            let size = rest
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= 1 << 24)
                .ok_or_else(|| bad("a redacted payload's size"))?;
            steps.push(Step::Redacted(size));
        } else if line.starts_with('@') {
            return Err(bad(
                "only `@ redacted N` is replayed; other `@` lines are the emulator's",
            ));
        } else if !(line.is_empty() || line.starts_with('#')) {
            return Err(bad("expected '> ', '< ', '@ redacted' or '#'"));
        }
    }
    Ok(steps)
}

/// One answer that differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// The line of the host step it answers (0: what the module said before the first).
    pub line: usize,
    /// What the transcript says (escaped).
    pub expected: String,
    /// What the module said (escaped).
    pub actual: String,
}

/// What a replay found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Host steps sent.
    pub sent: usize,
    /// Answers compared.
    pub compared: usize,
    /// Answers not compared (after a redacted payload).
    pub skipped: usize,
    /// The answers that differ.
    pub differences: Vec<Difference>,
}

/// Sends the host side of `steps` to `link` and compares every answer.
pub fn run(steps: &[Step], link: &mut dyn Link) -> Result<Report, ReplayError> {
    let mut report = Report::default();
    let mut skip_next = false;
    let mut last_line = 0;
    let mut i = 0;
    while i < steps.len() {
        match &steps[i] {
            Step::Send { bytes, line } => {
                link.write_all(bytes)?;
                link.flush()?;
                report.sent += 1;
                last_line = *line;
            }
            Step::Redacted(n) => {
                link.write_all(&vec![0u8; *n])?;
                link.flush()?;
                report.sent += 1;
                skip_next = true;
            }
            Step::Expect(_) => {}
        }
        let expected = match (&steps[i], steps.get(i + 1)) {
            // What the module said before the host's first line (a greeting, URCs): compared
            // as it is.
            (Step::Expect(e), _) => e.clone(),
            // What follows this step up to the next send is the answer to compare.
            (_, Some(Step::Expect(e))) => {
                i += 1;
                e.clone()
            }
            _ => Vec::new(),
        };
        let actual = collect(link, &expected)?;
        if std::mem::take(&mut skip_next) {
            report.skipped += 1;
        } else {
            report.compared += 1;
            if shape(&expected) != shape(&actual) {
                report.differences.push(Difference {
                    line: last_line,
                    expected: sealcell_at::escape::escape(&expected),
                    actual: sealcell_at::escape::escape(&actual),
                });
            }
        }
        i += 1;
    }
    Ok(report)
}

/// Reads the module's answer: until it ends as `expected` ends (its last line) or the module
/// has been quiet for [`QUIET`], at most [`ANSWER_TIMEOUT`].
fn collect(link: &mut dyn Link, expected: &[u8]) -> io::Result<Vec<u8>> {
    let tail = last_line(expected);
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut quiet_since = Instant::now();
    link.set_read_timeout(Duration::from_millis(50))?;
    loop {
        if !tail.is_empty() && got.len() >= expected.len() && got.ends_with(tail) {
            return Ok(got);
        }
        // Quiet counts once the answer has begun (or when none is expected): a slow module
        // gets up to the whole timeout for its first byte.
        let begun = !got.is_empty() || expected.is_empty();
        if start.elapsed() > ANSWER_TIMEOUT
            || (begun && quiet_since.elapsed() > QUIET)
            || got.len() >= MAX_ANSWER
        {
            return Ok(got);
        }
        match link.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                quiet_since = Instant::now();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

/// The last line of an answer (its final result), to know when it is whole.
fn last_line(bytes: &[u8]) -> &[u8] {
    let body = bytes.strip_suffix(b"\r\n").unwrap_or(bytes);
    match body.iter().rposition(|b| *b == b'\n') {
        Some(i) => &bytes[i + 1..],
        None => bytes,
    }
}

/// An answer with the fields that differ from module to module replaced by their kind.
pub fn shape(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        // +CCLK: "yy/MM/dd,hh:mm:ss+zz"
        if chars[i] == '"'
            && let Some(end) = chars[i + 1..].iter().position(|c| *c == '"')
        {
            let inner: String = chars[i + 1..i + 1 + end].iter().collect();
            if is_clock(&inner) {
                out.push_str("\"<TIME>\"");
                i += end + 2;
                continue;
            }
        }
        let run = chars[i..]
            .iter()
            .take_while(|c| c.is_ascii_hexdigit() || **c == '.')
            .count();
        if run > 0 {
            let word: String = chars[i..i + run].iter().collect();
            let kind = if word.len() >= 14 && word.chars().all(|c| c.is_ascii_digit()) {
                Some("<DIGITS>")
            } else if word.len() == 32 && word.chars().all(|c| c.is_ascii_hexdigit()) {
                Some("<MD5>")
            } else if word.split('.').count() == 4
                && word
                    .split('.')
                    .all(|p| !p.is_empty() && p.len() <= 3 && p.chars().all(|c| c.is_ascii_digit()))
            {
                Some("<IP>")
            } else {
                None
            };
            match kind {
                Some(k) => out.push_str(k),
                None => out.push_str(&word),
            }
            i += run;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out.into_bytes()
}

fn is_clock(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 17 && b[2] == b'/' && b[5] == b'/' && b[8] == b',' && b[11] == b':' && b[14] == b':'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_module_says_before_the_first_host_line_is_compared() {
        /// A module that says `first` at once and `\r\nOK\r\n` to each line it hears.
        struct Fake(std::collections::VecDeque<u8>);
        impl io::Read for Fake {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                let n = buf.len().min(self.0.len());
                for (b, c) in buf.iter_mut().zip(self.0.drain(..n)) {
                    *b = c;
                }
                Ok(n)
            }
        }
        impl io::Write for Fake {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if buf.ends_with(b"\r") {
                    self.0.extend(b"\r\nOK\r\n");
                }
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        impl crate::port::Link for Fake {
            fn set_read_timeout(&mut self, _: Duration) -> io::Result<()> {
                Ok(())
            }
        }
        let steps = parse("< \\r\\nready\\r\\n\n> AT\\r\n< \\r\\nOK\\r\\n\n").unwrap();
        let mut same = Fake(b"\r\nready\r\n".iter().copied().collect());
        let report = run(&steps, &mut same).unwrap();
        assert_eq!((report.sent, report.compared), (1, 2));
        assert_eq!(report.differences, []);
        let mut other = Fake(b"\r\nhello\r\n".iter().copied().collect());
        let report = run(&steps, &mut other).unwrap();
        assert_eq!(
            report.differences,
            [Difference {
                line: 0,
                expected: "\\r\\nready\\r\\n".into(),
                actual: "\\r\\nhello\\r\\n".into(),
            }]
        );
    }

    #[test]
    fn per_module_fields_compare_by_shape() {
        assert_eq!(
            shape(b"\r\n490154203237518\r\n"),
            shape(b"\r\n356938035643809\r\n")
        );
        assert_eq!(
            shape(b"+CCLK: \"26/12/01,14:53:30+00\""),
            shape(b"+CCLK: \"27/01/02,01:02:03+04\"")
        );
        assert_eq!(
            shape(b"+USECMNG: 0,0,\"r\",\"311d879f791444d014a7daecf6b7e093\""),
            shape(b"+USECMNG: 0,0,\"r\",\"0123456789abcdef0123456789abcdef\"")
        );
        assert_eq!(
            shape(b"+CGPADDR: 1,\"100.64.1.2\""),
            shape(b"+CGPADDR: 1,\"100.65.3.4\"")
        );
        assert_ne!(shape(b"TOBY-L210"), shape(b"TOBY-L280"));
        assert_ne!(shape(b"OK"), shape(b"ERROR"));
    }

    #[test]
    fn transcripts_parse_and_the_emulator_s_directives_are_refused() {
        let steps = parse("# c\n> AT\\r\n< \\r\\nOK\\r\\n\n@ redacted 4\n< x\n").unwrap();
        assert_eq!(steps.len(), 4);
        assert!(matches!(steps[2], Step::Redacted(4)));
        let e = parse("@ wait 1\n").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
    }
}
