//! Command-line syntax (at-contract §0, "Syntax forms"): `AT` followed by basic commands
//! (`E0`, `I9`, `&K0`, `S3?`) and extended commands (`+NAME`, `+NAME?`, `+NAME=?`,
//! `+NAME=<args>`), several per line separated by `;`.
//!
//! Spaces outside quoted strings are ignored (V.250 §5.2), so `AT E0` and `AT+CMEE = 2` work as
//! on a real module. Command names are case-insensitive; string values keep their case.

use std::fmt;

use crate::args::Args;

/// The longest command name kept (`+UFWSINSTALL` is 12); longer names are unknown commands.
pub const MAX_NAME: usize = 24;

/// An upper-cased command name: `+CGMI`, `E`, `&K`, `S3`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name {
    buf: [u8; MAX_NAME],
    len: u8,
}

impl Name {
    fn new(raw: &str) -> Option<Name> {
        if raw.len() > MAX_NAME {
            return None;
        }
        let mut buf = [0u8; MAX_NAME];
        for (dst, src) in buf.iter_mut().zip(raw.bytes()) {
            *dst = src.to_ascii_uppercase();
        }
        Some(Name {
            buf,
            len: raw.len() as u8,
        })
    }

    /// The name given to a command whose name is longer than [`MAX_NAME`]: no command has
    /// such a name, so it is answered as an unknown command. It prints as nothing.
    pub const OVERLONG: Name = Name {
        buf: [0; MAX_NAME],
        len: 0,
    };

    /// Whether this is [`Name::OVERLONG`].
    pub fn is_overlong(&self) -> bool {
        self.len == 0
    }

    /// The name as text (always ASCII).
    pub fn as_str(&self) -> &str {
        // The buffer holds upper-cased bytes of a `&str` made only of ASCII characters.
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The form a command was given in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form<'a> {
    /// `AT+NAME`: run the action.
    Action,
    /// `AT+NAME?`: read the current value.
    Read,
    /// `AT+NAME=?`: list the accepted values.
    Test,
    /// `AT+NAME=<args>`: set.
    Set(Args<'a>),
    /// A basic command with its optional number: `E0` is `Basic(Some(0))`, `I` is `Basic(None)`.
    Basic(Option<u32>),
}

/// One command of a command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AtCommand<'a> {
    /// The upper-cased name.
    pub name: Name,
    /// How it was given.
    pub form: Form<'a>,
}

impl fmt::Display for AtCommand<'_> {
    /// Writes the command as it would appear after `AT` (used by the fuzz round trip).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name.as_str())?;
        match self.form {
            Form::Action | Form::Basic(None) => Ok(()),
            Form::Read => f.write_str("?"),
            Form::Test => f.write_str("=?"),
            Form::Set(args) => write!(f, "={}", args.as_str()),
            Form::Basic(Some(n)) => write!(f, "{n}"),
        }
    }
}

/// Why a command line could not be parsed. The module answers `ERROR` to all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyntaxError {
    /// The line is not valid UTF-8 (for example, stray binary bytes).
    NotUtf8,
    /// The line does not start with `AT`.
    NoPrefix,
    /// A character that starts no command, or a missing `;` between extended commands.
    Unexpected {
        /// Byte offset in the command body (after `AT`).
        offset: usize,
    },
    /// An odd number of quotes.
    UnterminatedString,
    /// A basic command's number does not fit a `u32`.
    NumberTooLarge,
}

/// A parsed command line: the commands after `AT`, ready to iterate.
#[derive(Debug)]
pub struct CommandLine<'a> {
    body: Body<'a>,
    discarded: usize,
}

/// The command body; a copy made to drop spaces is zeroized on drop (it may hold a password).
#[derive(Debug)]
enum Body<'a> {
    Borrowed(&'a str),
    Owned(zeroize::Zeroizing<String>),
}

impl Body<'_> {
    fn as_str(&self) -> &str {
        match self {
            Body::Borrowed(s) => s,
            Body::Owned(s) => s.as_str(),
        }
    }
}

/// What a received line turned out to be.
#[derive(Debug)]
pub enum Line<'a> {
    /// Nothing but white space: no response at all.
    Empty,
    /// A command line.
    Commands(CommandLine<'a>),
}

/// Parses one line as delivered by [`crate::line::LineAssembler`].
///
/// Bytes before the first `AT` (or `at`) are discarded, as V.250 modems hunt for the prefix:
/// line noise, a host's stray 27.010 close-down frame (`F9 03 FF 05 C3 01 E7 F9`, which ubxlib
/// sends when it recovers a link) or invalid UTF-8 in front of a command do not spoil it. A line
/// with no prefix at all is [`SyntaxError::NoPrefix`]; one of only spaces is [`Line::Empty`].
pub fn parse_line(line: &[u8]) -> Result<Line<'_>, SyntaxError> {
    let Some(start) = find_prefix(line) else {
        return if line.iter().all(|&b| b == b' ' || b == b'\t') {
            Ok(Line::Empty)
        } else {
            Err(SyntaxError::NoPrefix)
        };
    };
    let rest = &line[start + 2..];
    let text = std::str::from_utf8(rest).map_err(|_| SyntaxError::NotUtf8)?;
    let body = text.trim_end_matches([' ', '\t']);
    let body = strip_unquoted_spaces(body)?;
    Ok(Line::Commands(CommandLine {
        body,
        discarded: start,
    }))
}

/// Where the first `AT` or `at` of `line` starts (V.250 §5.2.1 and at-contract §0: `At` and `aT`
/// are not a prefix).
fn find_prefix(line: &[u8]) -> Option<usize> {
    line.windows(2).position(|w| w == b"AT" || w == b"at")
}

fn strip_unquoted_spaces(body: &str) -> Result<Body<'_>, SyntaxError> {
    let mut in_quotes = false;
    let mut has_space = false;
    for b in body.bytes() {
        match b {
            b'"' => in_quotes = !in_quotes,
            b' ' | b'\t' if !in_quotes => has_space = true,
            _ => {}
        }
    }
    if in_quotes {
        return Err(SyntaxError::UnterminatedString);
    }
    if !has_space {
        return Ok(Body::Borrowed(body));
    }
    let mut out = zeroize::Zeroizing::new(String::with_capacity(body.len()));
    let mut in_quotes = false;
    for c in body.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                out.push(c);
            }
            ' ' | '\t' if !in_quotes => {}
            _ => out.push(c),
        }
    }
    Ok(Body::Owned(out))
}

impl CommandLine<'_> {
    /// How many bytes before the `AT` prefix were discarded as noise.
    pub fn discarded(&self) -> usize {
        self.discarded
    }

    /// The commands in order. A bare `AT` has none.
    pub fn commands(&self) -> Commands<'_> {
        Commands {
            body: self.body.as_str(),
            pos: 0,
            failed: false,
        }
    }
}

/// Iterator over the commands of a line; after an error it stops.
#[derive(Debug)]
pub struct Commands<'a> {
    body: &'a str,
    pos: usize,
    failed: bool,
}

fn is_extended_prefix(b: u8) -> bool {
    matches!(b, b'+' | b'#' | b'$' | b'%' | b'^' | b'*')
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'!' | b'%' | b'-' | b'.' | b'/' | b':' | b'_')
}

impl<'a> Commands<'a> {
    fn fail(&mut self, e: SyntaxError) -> Option<Result<AtCommand<'a>, SyntaxError>> {
        self.failed = true;
        Some(Err(e))
    }

    /// Index of the next `;` outside quotes at or after `from`, or the end.
    fn end_of_args(&self, from: usize) -> usize {
        let bytes = self.body.as_bytes();
        let mut in_quotes = false;
        for (i, &b) in bytes.iter().enumerate().skip(from) {
            match b {
                b'"' => in_quotes = !in_quotes,
                b';' if !in_quotes => return i,
                _ => {}
            }
        }
        bytes.len()
    }

    fn extended(&mut self) -> Option<Result<AtCommand<'a>, SyntaxError>> {
        let body = self.body;
        let bytes = body.as_bytes();
        let start = self.pos;
        let mut end = start + 1;
        while end < bytes.len() && is_name_char(bytes[end]) {
            end += 1;
        }
        let Some(name) = Name::new(&body[start..end]) else {
            // A name too long for any command: skip it as an unknown command.
            let stop = self.end_of_args(end);
            self.pos = (stop + 1).min(bytes.len());
            return Some(Ok(AtCommand {
                name: Name::OVERLONG,
                form: Form::Action,
            }));
        };
        let rest = &bytes[end..];
        let (form, next) = if rest.starts_with(b"=?") {
            (Form::Test, end + 2)
        } else if rest.starts_with(b"?") {
            (Form::Read, end + 1)
        } else if rest.starts_with(b"=") {
            let stop = self.end_of_args(end + 1);
            (Form::Set(Args(&body[end + 1..stop])), stop)
        } else {
            (Form::Action, end)
        };
        match bytes.get(next) {
            None => self.pos = next,
            Some(b';') => self.pos = next + 1,
            Some(_) => return self.fail(SyntaxError::Unexpected { offset: next }),
        }
        Some(Ok(AtCommand { name, form }))
    }

    fn basic(&mut self) -> Option<Result<AtCommand<'a>, SyntaxError>> {
        let body = self.body;
        let bytes = body.as_bytes();
        let start = self.pos;
        let mut end = start + 1;
        if bytes[start] == b'&' {
            match bytes.get(end) {
                Some(b) if b.is_ascii_alphabetic() => end += 1,
                _ => return self.fail(SyntaxError::Unexpected { offset: end }),
            }
        }
        let letter_end = end;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
        let is_s_register = bytes[start].eq_ignore_ascii_case(&b'S') && end > letter_end;
        let (name_end, number) = if is_s_register {
            // `S3?`, `S3=13`: the register number is part of the name.
            (end, None)
        } else if end > letter_end {
            match body[letter_end..end].parse::<u32>() {
                Ok(n) => (letter_end, Some(n)),
                Err(_) => return self.fail(SyntaxError::NumberTooLarge),
            }
        } else {
            (letter_end, None)
        };
        let Some(name) = Name::new(&body[start..name_end]) else {
            return self.fail(SyntaxError::Unexpected { offset: start });
        };
        let rest = &bytes[end..];
        let (form, next) = if rest.starts_with(b"=?") {
            (Form::Test, end + 2)
        } else if rest.starts_with(b"?") {
            (Form::Read, end + 1)
        } else if rest.starts_with(b"=") {
            let mut stop = end + 1;
            while stop < bytes.len() && bytes[stop].is_ascii_digit() {
                stop += 1;
            }
            (Form::Set(Args(&body[end + 1..stop])), stop)
        } else {
            (Form::Basic(number), end)
        };
        self.pos = if bytes.get(next) == Some(&b';') {
            next + 1
        } else {
            next
        };
        Some(Ok(AtCommand { name, form }))
    }
}

impl<'a> Iterator for Commands<'a> {
    type Item = Result<AtCommand<'a>, SyntaxError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let bytes = self.body.as_bytes();
        let &b = bytes.get(self.pos)?;
        if is_extended_prefix(b) {
            self.extended()
        } else if b.is_ascii_alphabetic() || b == b'&' {
            self.basic()
        } else {
            self.fail(SyntaxError::Unexpected { offset: self.pos })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Vec<(String, String)>, SyntaxError> {
        match parse_line(line.as_bytes())? {
            Line::Empty => Ok(vec![]),
            Line::Commands(cl) => cl
                .commands()
                .map(|c| c.map(|c| (c.name.to_string(), format!("{:?}", c.form))))
                .collect(),
        }
    }

    #[test]
    fn forms() {
        assert_eq!(parse("AT"), Ok(vec![]));
        assert_eq!(
            parse("at+cgmi"),
            Ok(vec![("+CGMI".into(), "Action".into())])
        );
        assert_eq!(parse("AT+CMEE?"), Ok(vec![("+CMEE".into(), "Read".into())]));
        assert_eq!(
            parse("AT+CMEE=?"),
            Ok(vec![("+CMEE".into(), "Test".into())])
        );
        assert_eq!(
            parse("AT+CMEE=2;+CGMI"),
            Ok(vec![
                ("+CMEE".into(), "Set(Args(\"2\"))".into()),
                ("+CGMI".into(), "Action".into())
            ])
        );
        assert_eq!(
            parse("ATE0V1&K0I9"),
            Ok(vec![
                ("E".into(), "Basic(Some(0))".into()),
                ("V".into(), "Basic(Some(1))".into()),
                ("&K".into(), "Basic(Some(0))".into()),
                ("I".into(), "Basic(Some(9))".into())
            ])
        );
        assert_eq!(parse("ATS3?"), Ok(vec![("S3".into(), "Read".into())]));
        assert_eq!(
            parse("ATE;+CGMI"),
            Ok(vec![
                ("E".into(), "Basic(None)".into()),
                ("+CGMI".into(), "Action".into())
            ])
        );
    }

    #[test]
    fn spaces_and_quotes() {
        assert_eq!(
            parse("AT E0"),
            Ok(vec![("E".into(), "Basic(Some(0))".into())])
        );
        assert_eq!(
            parse("AT+X=\"a; b\",1 ;+Y"),
            Ok(vec![
                ("+X".into(), "Set(Args(\"\\\"a; b\\\",1\"))".into()),
                ("+Y".into(), "Action".into())
            ])
        );
        assert_eq!(parse("   "), Ok(vec![]));
    }

    #[test]
    fn hunts_for_the_prefix() {
        // ubxlib's 27.010 close-down frame, then AT: the frame is discarded.
        let line = b"\xF9\x03\xFF\x05\xC3\x01\xE7\xF9AT+CGMI";
        let Ok(Line::Commands(l)) = parse_line(line) else {
            panic!("not a command line")
        };
        assert_eq!(l.discarded(), 8);
        let names: Vec<String> = l.commands().map(|c| c.unwrap().name.to_string()).collect();
        assert_eq!(names, ["+CGMI"]);
        assert_eq!(
            parse("noise at+cgmi").unwrap(),
            vec![("+CGMI".into(), "Action".into())]
        );
        assert_eq!(parse("  AT  ").unwrap(), vec![]);
    }

    #[test]
    fn errors() {
        assert_eq!(parse("hello").unwrap_err(), SyntaxError::NoPrefix);
        assert_eq!(parse("A").unwrap_err(), SyntaxError::NoPrefix);
        assert_eq!(
            parse("AT+X=\"abc").unwrap_err(),
            SyntaxError::UnterminatedString
        );
        assert!(matches!(
            parse("AT+CGMI+CGMM").unwrap_err(),
            SyntaxError::Unexpected { .. }
        ));
        assert!(matches!(
            parse("AT+CGMI?x").unwrap_err(),
            SyntaxError::Unexpected { .. }
        ));
        assert!(matches!(
            parse("AT!").unwrap_err(),
            SyntaxError::Unexpected { .. }
        ));
        assert_eq!(parse_line(b"AT\xff").unwrap_err(), SyntaxError::NotUtf8);
        assert_eq!(
            parse_line(b"\xff\x00 \t").unwrap_err(),
            SyntaxError::NoPrefix
        );
        assert_eq!(
            parse("ATE99999999999").unwrap_err(),
            SyntaxError::NumberTooLarge
        );
    }
}
