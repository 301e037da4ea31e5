//! The argument tokenizer for the set form `AT+NAME=<args>` (at-contract §0, "Arguments").
//!
//! Arguments are comma-separated; strings are in double quotes with no escapes (a quote cannot
//! appear inside); integers are decimal; an omitted argument (`a,,c`) means "default".
//! [`ArgReader`] turns the tokens into typed values and reports *why* an argument is wrong, so
//! each command can map the failure to its contract error (usually `+CME ERROR: 4`).

use std::ops::RangeInclusive;

use crate::cme::CmeError;

/// One argument token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg<'a> {
    /// An empty position: the command's default applies.
    Omitted,
    /// A decimal integer (optionally signed) that fits an `i64`.
    Int(i64),
    /// A quoted string, without its quotes.
    Str(&'a str),
    /// Anything else that was not quoted (for example `C0`, or an integer too large for `i64`).
    Bare(&'a str),
}

/// The raw argument text of a set command, after the `=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Args<'a>(pub &'a str);

impl<'a> Args<'a> {
    /// The tokens, in order. An empty argument text has no tokens.
    pub fn iter(&self) -> ArgIter<'a> {
        ArgIter {
            rest: self.0,
            done: self.0.is_empty(),
        }
    }

    /// A typed reader over the tokens.
    pub fn reader(&self) -> ArgReader<'a> {
        ArgReader {
            iter: self.iter(),
            position: 0,
        }
    }

    /// The raw text.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

/// Iterator over [`Arg`] tokens; yields an error for a malformed token (an unterminated string
/// or a quote inside an unquoted token) and then stops.
#[derive(Clone, Debug)]
pub struct ArgIter<'a> {
    rest: &'a str,
    done: bool,
}

impl<'a> Iterator for ArgIter<'a> {
    type Item = Result<Arg<'a>, ArgError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.rest;
        let (token, tail) = if let Some(inner) = rest.strip_prefix('"') {
            let Some(close) = inner.find('"') else {
                self.done = true;
                return Some(Err(ArgError::Malformed));
            };
            let after = &inner[close + 1..];
            match after.strip_prefix(',') {
                Some(tail) => (Arg::Str(&inner[..close]), Some(tail)),
                None if after.is_empty() => (Arg::Str(&inner[..close]), None),
                None => {
                    self.done = true;
                    return Some(Err(ArgError::Malformed));
                }
            }
        } else {
            let (raw, tail) = match rest.find(',') {
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                None => (rest, None),
            };
            if raw.contains('"') {
                self.done = true;
                return Some(Err(ArgError::Malformed));
            }
            (classify(raw), tail)
        };
        match tail {
            Some(t) => self.rest = t,
            None => self.done = true,
        }
        Some(Ok(token))
    }
}

fn classify(raw: &str) -> Arg<'_> {
    if raw.is_empty() {
        return Arg::Omitted;
    }
    let digits = raw.strip_prefix(['-', '+']).unwrap_or(raw);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(v) = raw.parse::<i64>()
    {
        return Arg::Int(v);
    }
    Arg::Bare(raw)
}

/// Why an argument was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArgError {
    /// A required argument is absent or omitted.
    Missing {
        /// Zero-based position.
        position: usize,
    },
    /// The argument has the wrong type (a string where an integer belongs, or the reverse).
    WrongType {
        /// Zero-based position.
        position: usize,
    },
    /// The integer is outside the command's range (or too large for any integer).
    OutOfRange {
        /// Zero-based position.
        position: usize,
    },
    /// The string is longer than the command allows.
    TooLong {
        /// Zero-based position.
        position: usize,
    },
    /// More arguments than the command takes.
    TooMany,
    /// An unterminated string, or a quote where none may be.
    Malformed,
}

impl From<ArgError> for CmeError {
    /// The contract's default: wrong count, type or range is `+CME ERROR: 4`.
    fn from(_: ArgError) -> CmeError {
        CmeError::OperationNotSupported
    }
}

/// Reads typed arguments in order. Every method consumes one position.
#[derive(Clone, Debug)]
pub struct ArgReader<'a> {
    iter: ArgIter<'a>,
    position: usize,
}

impl<'a> ArgReader<'a> {
    fn next_token(&mut self) -> Result<Option<Arg<'a>>, ArgError> {
        let token = self.iter.next().transpose()?;
        self.position += 1;
        Ok(token)
    }

    fn position(&self) -> usize {
        self.position.saturating_sub(1)
    }

    /// Whether any token is left.
    pub fn is_empty(&self) -> bool {
        self.iter.clone().next().is_none()
    }

    /// The zero-based position the next read consumes (for errors a caller reports itself).
    pub fn next_position(&self) -> usize {
        self.position
    }

    /// A required integer that names a value of `T` (an enum with explicit wire values): any
    /// other integer is out of range.
    pub fn wire<T: TryFrom<i64>>(&mut self) -> Result<T, ArgError> {
        let position = self.position;
        match self.opt_wire()? {
            Some(v) => Ok(v),
            None => Err(ArgError::Missing { position }),
        }
    }

    /// An optional [`ArgReader::wire`] value; `None` when absent or omitted.
    pub fn opt_wire<T: TryFrom<i64>>(&mut self) -> Result<Option<T>, ArgError> {
        let position = self.position;
        self.opt_int(i64::MIN..=i64::MAX)?
            .map(|v| T::try_from(v).map_err(|_| ArgError::OutOfRange { position }))
            .transpose()
    }

    /// A required quoted string of at most `max_chars` characters (the manual's limits count
    /// characters; a character is at most 4 bytes, so the byte cap is `4 * max_chars`).
    pub fn string_chars(&mut self, max_chars: usize) -> Result<&'a str, ArgError> {
        let position = self.position;
        match self.opt_string_chars(max_chars)? {
            Some(v) => Ok(v),
            None => Err(ArgError::Missing { position }),
        }
    }

    /// An optional [`ArgReader::string_chars`] string.
    pub fn opt_string_chars(&mut self, max_chars: usize) -> Result<Option<&'a str>, ArgError> {
        let position = self.position;
        match self.opt_string(max_chars.saturating_mul(4))? {
            Some(s) if s.chars().count() > max_chars => Err(ArgError::TooLong { position }),
            other => Ok(other),
        }
    }

    /// A required integer within `range`.
    pub fn int(&mut self, range: RangeInclusive<i64>) -> Result<i64, ArgError> {
        match self.opt_int(range)? {
            Some(v) => Ok(v),
            None => Err(ArgError::Missing {
                position: self.position(),
            }),
        }
    }

    /// An optional integer within `range`; `None` when absent or omitted.
    pub fn opt_int(&mut self, range: RangeInclusive<i64>) -> Result<Option<i64>, ArgError> {
        let position = self.position;
        match self.next_token()? {
            None | Some(Arg::Omitted) => Ok(None),
            Some(Arg::Int(v)) if range.contains(&v) => Ok(Some(v)),
            Some(Arg::Int(_)) => Err(ArgError::OutOfRange { position }),
            Some(Arg::Bare(b))
                if b.trim_start_matches(['-', '+'])
                    .bytes()
                    .all(|c| c.is_ascii_digit()) =>
            {
                Err(ArgError::OutOfRange { position })
            }
            Some(_) => Err(ArgError::WrongType { position }),
        }
    }

    /// A required quoted string of at most `max_len` bytes.
    pub fn string(&mut self, max_len: usize) -> Result<&'a str, ArgError> {
        match self.opt_string(max_len)? {
            Some(v) => Ok(v),
            None => Err(ArgError::Missing {
                position: self.position(),
            }),
        }
    }

    /// An optional quoted string of at most `max_len` bytes.
    pub fn opt_string(&mut self, max_len: usize) -> Result<Option<&'a str>, ArgError> {
        let position = self.position;
        match self.next_token()? {
            None | Some(Arg::Omitted) => Ok(None),
            Some(Arg::Str(s)) if s.len() <= max_len => Ok(Some(s)),
            Some(Arg::Str(_)) => Err(ArgError::TooLong { position }),
            Some(_) => Err(ArgError::WrongType { position }),
        }
    }

    /// The next raw token, whatever its type (`None` when absent).
    pub fn any(&mut self) -> Result<Option<Arg<'a>>, ArgError> {
        self.next_token()
    }

    /// Succeeds when no argument is left.
    pub fn finish(mut self) -> Result<(), ArgError> {
        match self.iter.next() {
            None => Ok(()),
            Some(Err(e)) => Err(e),
            Some(Ok(_)) => Err(ArgError::TooMany),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Result<Arg<'_>, ArgError>> {
        Args(s).iter().collect()
    }

    #[test]
    fn tokens() {
        assert_eq!(toks(""), vec![]);
        assert_eq!(toks("1"), vec![Ok(Arg::Int(1))]);
        assert_eq!(
            toks("1,,\"a,b;c\",C0,-5"),
            vec![
                Ok(Arg::Int(1)),
                Ok(Arg::Omitted),
                Ok(Arg::Str("a,b;c")),
                Ok(Arg::Bare("C0")),
                Ok(Arg::Int(-5))
            ]
        );
        assert_eq!(toks("1,"), vec![Ok(Arg::Int(1)), Ok(Arg::Omitted)]);
        assert_eq!(toks(",2"), vec![Ok(Arg::Omitted), Ok(Arg::Int(2))]);
        assert_eq!(toks("\"\""), vec![Ok(Arg::Str(""))]);
        assert_eq!(
            toks("9223372036854775808"),
            vec![Ok(Arg::Bare("9223372036854775808"))]
        );
    }

    #[test]
    fn malformed_strings() {
        assert_eq!(toks("\"abc"), vec![Err(ArgError::Malformed)]);
        assert_eq!(toks("\"a\"b"), vec![Err(ArgError::Malformed)]);
        assert_eq!(toks("a\"b"), vec![Err(ArgError::Malformed)]);
    }

    #[test]
    fn reader_types_and_ranges() {
        let mut r = Args("1,\"x\",,300").reader();
        assert_eq!(r.int(0..=2), Ok(1));
        assert_eq!(r.string(1), Ok("x"));
        assert_eq!(r.opt_int(0..=5), Ok(None));
        assert_eq!(
            r.opt_int(0..=255),
            Err(ArgError::OutOfRange { position: 3 })
        );
        let mut r = Args("\"toolong\"").reader();
        assert_eq!(r.string(3), Err(ArgError::TooLong { position: 0 }));
        let mut r = Args("1,2").reader();
        assert_eq!(r.int(0..=9), Ok(1));
        assert_eq!(r.finish(), Err(ArgError::TooMany));
        let mut r = Args("9223372036854775808").reader();
        assert_eq!(
            r.int(0..=i64::MAX),
            Err(ArgError::OutOfRange { position: 0 })
        );
        let mut r = Args("").reader();
        assert_eq!(r.int(0..=1), Err(ArgError::Missing { position: 0 }));
    }
}
