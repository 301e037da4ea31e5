//! The commands both sides speak, as types: one type per set form and per answer line, argument
//! enums with explicit wire values. The module parses set commands and prints answers with them;
//! the host tools print set commands and parse answers with the same types, so the two cannot
//! disagree on a number, a quote or an argument order.
//!
//! | Command | Module |
//! |---|---|
//! | `+USECPRF` security profiles | [`usecprf`] |
//! | `+USECMNG` certificates and keys | [`usecmng`] |
//! | `+USECCFG` enforced security (the seal) | [`useccfg`] |
//! | `+UHTTP`, `+UHTTPC`, `+UUHTTPCR`, `+UHTTPER` | [`uhttp`] |
//! | `+CMUX` 27.010 multiplexing | [`cmux`] |
//!
//! Every type implements [`Wire`]: [`Wire::parse`] reads exactly the text its `Display` writes,
//! and parse -> print -> parse is the identity (checked by [`crate::fuzzing::vocabulary`]).
//! Which text that is depends on the kind of type:
//!
//! - a [`SetCommand`] prints its argument text, what follows `AT+NAME=`; [`SetCommand::line`]
//!   gives the whole line, [`SetCommand::shown`] the line with secrets redacted;
//! - an [`InfoLine`] prints a whole information line, its prefix (`+USECPRF: `) included;
//! - a wire enum ([`usecprf::ValidationLevel`], ...) prints its number.
//!
//! Strings are [`AtString`]s: they hold no `"` (an AT string has no escapes) and at most the
//! command's number of characters, so every length from the wire is capped by its type.
//! Secrets are [`Secret`]s: zeroized on drop, never in `Debug`.
//!
//! ```
//! use sealcell_at::commands::{SetCommand, Wire, InfoLine};
//! use sealcell_at::commands::usecprf::{
//!     SecPrfCommand, SecPrfRead, SecPrfReading, SecPrfSet, SecPrfValue, SecProfileId,
//!     ValidationLevel,
//! };
//!
//! // The host builds a line...
//! let profile = SecProfileId::new(1).unwrap();
//! let set = SecPrfSet { profile, value: SecPrfValue::ValidationLevel(ValidationLevel::RootCa) };
//! assert_eq!(set.line().as_str(), "AT+USECPRF=1,0,1");
//! // ...the module parses its arguments...
//! let SecPrfCommand::Set(got) = SecPrfCommand::parse("1,0,1").unwrap() else { unreachable!() };
//! assert_eq!(got, set);
//! // ...and answers a read with a line the host parses back.
//! let answer = SecPrfRead { profile, reading: SecPrfReading::ValidationLevel(ValidationLevel::RootCa) };
//! assert_eq!(answer.to_string(), "+USECPRF: 1,0,1");
//! assert_eq!(SecPrfRead::parse("+USECPRF: 1,0,1"), Ok(answer));
//! ```

pub mod cmux;
pub mod uhttp;
pub mod useccfg;
pub mod usecmng;
pub mod usecprf;

use std::fmt;

use zeroize::Zeroizing;

use crate::args::{ArgError, ArgReader, Args};
use crate::cme::CmeError;

/// The text a redacted secret is shown as, inside its quotes.
pub const REDACTED: &str = "<redacted>";

/// A value with one exact wire text.
pub trait Wire: Sized + fmt::Display {
    /// Parses the text [`fmt::Display`] writes (see the [module docs](self) for which text).
    fn parse(text: &str) -> Result<Self, ParseError>;
}

/// The arguments of a set command `AT+NAME=<args>`; `Display` prints `<args>`.
pub trait SetCommand: Wire {
    /// The command name with its `+`, upper case: `+USECPRF`.
    const NAME: &'static str;

    /// The whole command line, `AT+NAME=<args>`, without its CR. Zeroized on drop, as the
    /// arguments may hold a secret.
    fn line(&self) -> Zeroizing<String> {
        use fmt::Write as _;
        // One allocation large enough for any line the module accepts, so no reallocation leaves
        // a copy of a secret behind.
        let mut line = Zeroizing::new(String::with_capacity(crate::line::MAX_LINE + 16));
        // Writing into a String cannot fail.
        let _ = write!(line, "AT{}={}", Self::NAME, self);
        line
    }

    /// The line as transcripts, logs and errors show it: every secret is `"<redacted>"`.
    /// Commands without a secret show their line as it is.
    fn shown(&self) -> String {
        self.line().to_string()
    }
}

/// One information line of an answer, `+NAME: <fields>`; `Display` prints the whole line.
pub trait InfoLine: Wire {
    /// The prefix up to and including the colon: `+USECPRF:`. `Display` writes it followed by
    /// one space; [`Wire::parse`] also takes the line without the space.
    const PREFIX: &'static str;

    /// Whether `line` is one of this answer's lines (whether it parses or not).
    fn is_own(line: &str) -> bool {
        line.starts_with(Self::PREFIX)
    }
}

/// Why a text is not a value of a command's vocabulary. The module answers every one of these
/// with `+CME ERROR: 4` (at-contract §0: wrong count, type or range), unless a command says
/// otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// An argument of the wrong count, type, range or length.
    Args(ArgError),
    /// The line does not start with the answer's prefix.
    Prefix {
        /// The prefix expected.
        expected: &'static str,
    },
}

impl From<ArgError> for ParseError {
    fn from(e: ArgError) -> ParseError {
        ParseError::Args(e)
    }
}

impl From<ParseError> for CmeError {
    /// The contract's default: `+CME ERROR: 4`.
    fn from(_: ParseError) -> CmeError {
        CmeError::OperationNotSupported
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Args(ArgError::Missing { position }) => {
                write!(f, "argument {} is missing", position + 1)
            }
            ParseError::Args(ArgError::WrongType { position }) => {
                write!(f, "argument {} has the wrong type", position + 1)
            }
            ParseError::Args(ArgError::OutOfRange { position }) => {
                write!(f, "argument {} is out of range", position + 1)
            }
            ParseError::Args(ArgError::TooLong { position }) => {
                write!(f, "argument {} is too long", position + 1)
            }
            ParseError::Args(ArgError::TooMany) => f.write_str("too many arguments"),
            ParseError::Args(_) => f.write_str("malformed arguments"),
            ParseError::Prefix { expected } => write!(f, "the line does not start with {expected}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// The argument reader over an information line's fields, after its prefix and the optional
/// space.
pub(crate) fn info_fields<'a>(
    line: &'a str,
    prefix: &'static str,
) -> Result<ArgReader<'a>, ParseError> {
    let rest = line
        .strip_prefix(prefix)
        .ok_or(ParseError::Prefix { expected: prefix })?;
    Ok(Args(rest.strip_prefix(' ').unwrap_or(rest)).reader())
}

/// Why a host-built string cannot travel as an AT string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StringError {
    /// More characters than the command allows.
    TooLong {
        /// Characters given.
        chars: usize,
        /// The command's limit.
        max: usize,
    },
    /// A `"`: AT strings have no escapes, so a quote would end the string.
    Quote,
    /// A control character (a CR would end the command line).
    Control,
    /// The command's own rule for this value (a PSK's hex digits, a password's characters).
    Rule(&'static str),
}

impl fmt::Display for StringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StringError::TooLong { chars, max } => {
                write!(f, "{chars} characters; the module takes at most {max}")
            }
            StringError::Quote => {
                f.write_str("holds a quote, which an AT string cannot carry (no escapes)")
            }
            StringError::Control => {
                f.write_str("holds a control character, which an AT string cannot carry")
            }
            StringError::Rule(rule) => f.write_str(rule),
        }
    }
}

impl std::error::Error for StringError {}

fn check_text(value: &str, max: usize) -> Result<(), StringError> {
    if value.contains('"') {
        return Err(StringError::Quote);
    }
    if value.chars().any(char::is_control) {
        return Err(StringError::Control);
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(StringError::TooLong { chars, max });
    }
    Ok(())
}

/// A string argument of at most `MAX` characters with no `"` in it.
///
/// # Security
/// Parsed from the wire with [`ArgReader::string_chars`]: at most `MAX` characters, `4 * MAX`
/// bytes.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AtString<const MAX: usize>(String);

impl<const MAX: usize> AtString<MAX> {
    /// The limit, in characters.
    pub const MAX_CHARS: usize = MAX;

    /// A host-built string: refused if it holds a quote or a control character, or has more
    /// than `MAX` characters.
    pub fn new(value: impl Into<String>) -> Result<Self, StringError> {
        let value = value.into();
        check_text(&value, MAX)?;
        Ok(AtString(value))
    }

    /// A module-built string from data that may break the wire (a certificate's subject, a
    /// stored value): quotes become `'` and line ends spaces, so the answer line stays one
    /// line whose string parses back; it is cut at `MAX` characters. Other characters pass
    /// as the wire would have carried them.
    pub fn lossy(value: &str) -> Self {
        AtString(
            value
                .chars()
                .map(|c| match c {
                    '"' => '\'',
                    '\r' | '\n' => ' ',
                    c => c,
                })
                .take(MAX)
                .collect(),
        )
    }

    /// The text, without quotes.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it is empty (for most commands: "not set").
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn read(r: &mut ArgReader<'_>) -> Result<Self, ArgError> {
        Ok(AtString(r.string_chars(MAX)?.to_string()))
    }

    pub(crate) fn read_opt(r: &mut ArgReader<'_>) -> Result<Option<Self>, ArgError> {
        Ok(r.opt_string_chars(MAX)?.map(|s| AtString(s.to_string())))
    }

    /// Writes it in quotes.
    pub(crate) fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0)
    }
}

impl<const MAX: usize> fmt::Debug for AtString<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A secret string argument (a password, a pre-shared key) of at most `MAX` characters:
/// zeroized on drop, redacted in `Debug` and in [`SetCommand::shown`].
///
/// # Security
/// Parsed from the wire with [`ArgReader::string_chars`]: at most `MAX` characters.
#[derive(Clone, Default)]
pub struct Secret<const MAX: usize>(Zeroizing<String>);

impl<const MAX: usize> Secret<MAX> {
    /// The limit, in characters.
    pub const MAX_CHARS: usize = MAX;

    /// A host-built secret, under the rules of [`AtString::new`]. The error never holds it.
    pub fn new(value: &str) -> Result<Self, StringError> {
        check_text(value, MAX)?;
        Ok(Secret(Zeroizing::new(value.to_string())))
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty (for most commands: "clear it").
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn read(r: &mut ArgReader<'_>) -> Result<Self, ArgError> {
        Ok(Secret(Zeroizing::new(r.string_chars(MAX)?.to_string())))
    }

    pub(crate) fn read_opt(r: &mut ArgReader<'_>) -> Result<Option<Self>, ArgError> {
        Ok(r.opt_string_chars(MAX)?
            .map(|s| Secret(Zeroizing::new(s.to_string()))))
    }

    /// Writes it in quotes, or `"<redacted>"` when `reveal` is false.
    pub(crate) fn write(&self, f: &mut fmt::Formatter<'_>, reveal: Reveal) -> fmt::Result {
        match reveal {
            Reveal::Secrets => write!(f, "\"{}\"", self.0.as_str()),
            Reveal::Nothing => write!(f, "\"{REDACTED}\""),
        }
    }
}

impl<const MAX: usize> PartialEq for Secret<MAX> {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl<const MAX: usize> Eq for Secret<MAX> {}

impl<const MAX: usize> fmt::Debug for Secret<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

/// Whether a command's text carries its secrets (the wire) or redacts them (what is shown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reveal {
    Secrets,
    Nothing,
}

/// The argument text of a command that may hold a secret, written either way. Its `Display`
/// is `write_args(f, Reveal::Secrets)`; [`Redacted`] is the other.
pub(crate) trait WriteArgs {
    fn write_args(&self, f: &mut fmt::Formatter<'_>, reveal: Reveal) -> fmt::Result;
}

/// Displays a command's arguments with its secrets redacted.
pub(crate) struct Redacted<'a, T>(pub(crate) &'a T);

impl<T: WriteArgs> fmt::Display for Redacted<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write_args(f, Reveal::Nothing)
    }
}

/// `Display` through [`WriteArgs`] with the secrets, and [`SetCommand::shown`] without them.
macro_rules! secret_args {
    ($name:ty) => {
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                $crate::commands::WriteArgs::write_args(self, f, $crate::commands::Reveal::Secrets)
            }
        }
    };
}

/// The shown line of a [`SetCommand`] whose arguments may hold a secret.
pub(crate) fn shown_line<T: SetCommand + WriteArgs>(cmd: &T) -> String {
    format!("AT{}={}", T::NAME, Redacted(cmd))
}

/// An MD5 digest as `+USECMNG` and `+UUHTTPCR` report it: 32 hex digits in quotes, lowercase
/// when printed (any case is read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Md5Digest(pub [u8; 16]);

impl Md5Digest {
    /// Reads 32 hex digits.
    pub fn from_hex(text: &str) -> Option<Md5Digest> {
        let bytes = text.as_bytes();
        // from_str_radix would also take a sign: only hex digits are a digest.
        if bytes.len() != 32 || !bytes.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let mut out = [0u8; 16];
        for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            *o = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Md5Digest(out))
    }

    pub(crate) fn read(r: &mut ArgReader<'_>) -> Result<Self, ArgError> {
        let position = r.next_position();
        Md5Digest::from_hex(r.string(32)?).ok_or(ArgError::OutOfRange { position })
    }
}

impl fmt::Display for Md5Digest {
    /// 32 lowercase hex digits, without quotes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// An integer on the wire that names no value of the enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownValue(pub i64);

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is not a value this argument takes", self.0)
    }
}

impl std::error::Error for UnknownValue {}

/// Reads a whole argument text with `read`, then checks nothing is left.
pub(crate) fn parse_all<T>(
    text: &str,
    read: impl FnOnce(&mut ArgReader<'_>) -> Result<T, ArgError>,
) -> Result<T, ParseError> {
    let mut r = Args(text).reader();
    let v = read(&mut r)?;
    r.finish()?;
    Ok(v)
}

/// Writes a boolean as the wire does: `0` or `1`.
pub(crate) fn write_bool(f: &mut fmt::Formatter<'_>, b: bool) -> fmt::Result {
    write!(f, "{}", u8::from(b))
}

/// Reads `0` or `1` as a boolean.
pub(crate) fn read_bool(r: &mut ArgReader<'_>) -> Result<bool, ArgError> {
    Ok(r.int(0..=1)? == 1)
}

/// An enum with explicit wire values: `#[repr(u8)]`, `ALL`, `wire()`, `TryFrom<i64>`,
/// `From<Self> for u8` and [`Wire`] (the number alone). `Display` is added by
/// [`wire_display!`] (not for every enum: `CredentialType` displays its tag).
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant = $value, )*
        }

        impl $name {
            /// Every value, in wire order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The wire value.
            pub const fn wire(self) -> u8 {
                self as u8
            }
        }

        impl TryFrom<i64> for $name {
            type Error = $crate::commands::UnknownValue;

            fn try_from(v: i64) -> Result<$name, $crate::commands::UnknownValue> {
                match v {
                    $( $value => Ok($name::$variant), )*
                    _ => Err($crate::commands::UnknownValue(v)),
                }
            }
        }

        impl From<$name> for u8 {
            fn from(v: $name) -> u8 {
                v.wire()
            }
        }
    };
}

/// A profile number with a fixed count (`+USECPRF` 0..4, `+UHTTP` 0..3): a `u8` newtype with
/// `new`, `get`, `index`, `TryFrom<i64>`, `Display` and [`Wire`].
macro_rules! profile_id {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident(count = $count:literal);
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis struct $name(u8);

        impl $name {
            /// How many profiles there are.
            pub const COUNT: u8 = $count;

            /// The profile `id`, if it exists.
            pub const fn new(id: u8) -> Option<$name> {
                if id < $name::COUNT { Some($name(id)) } else { None }
            }

            /// The id.
            pub const fn get(self) -> u8 {
                self.0
            }

            /// The id as an index into a table of `COUNT` profiles.
            pub const fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl TryFrom<i64> for $name {
            type Error = $crate::commands::UnknownValue;

            fn try_from(v: i64) -> Result<$name, $crate::commands::UnknownValue> {
                u8::try_from(v)
                    .ok()
                    .and_then($name::new)
                    .ok_or($crate::commands::UnknownValue(v))
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl $crate::commands::Wire for $name {
            fn parse(text: &str) -> Result<$name, $crate::commands::ParseError> {
                $crate::commands::parse_all(text, |r| r.wire())
            }
        }
    };
}

/// `Display` as the wire number, and [`Wire`] reading it back.
macro_rules! wire_display {
    ($($name:ty),* $(,)?) => {$(
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}", self.wire())
            }
        }

        impl $crate::commands::Wire for $name {
            fn parse(text: &str) -> Result<$name, $crate::commands::ParseError> {
                $crate::commands::parse_all(text, |r| r.wire())
            }
        }
    )*};
}

pub(crate) use {profile_id, secret_args, wire_display, wire_enum};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_refuse_what_an_at_string_cannot_carry() {
        assert_eq!(AtString::<4>::new("abcd").map(|s| s.0), Ok("abcd".into()));
        assert_eq!(
            AtString::<4>::new("abcde"),
            Err(StringError::TooLong { chars: 5, max: 4 })
        );
        assert_eq!(AtString::<4>::new("ééé").map(|s| s.0), Ok("ééé".into()));
        assert_eq!(AtString::<9>::new("a\"b"), Err(StringError::Quote));
        assert_eq!(AtString::<9>::new("a\rb"), Err(StringError::Control));
        assert_eq!(AtString::<4>::lossy("a\"b\ncdef").0, "a'b ");
        assert_eq!(AtString::<9>::lossy("a\tb\r").0, "a\tb ");
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let s = Secret::<8>::new("hunter2").unwrap_or_default();
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn md5_reads_any_case_and_prints_lowercase() {
        let d = Md5Digest::from_hex("0123456789ABCDEF0123456789abcdef");
        assert_eq!(
            d.map(|d| d.to_string()),
            Some("0123456789abcdef0123456789abcdef".into())
        );
        assert_eq!(Md5Digest::from_hex("0123"), None);
        assert_eq!(
            Md5Digest::from_hex("g123456789abcdef0123456789abcdef"),
            None
        );
        assert_eq!(
            Md5Digest::from_hex("+123456789abcdef0123456789abcdef"),
            None
        );
    }

    #[test]
    fn info_fields_take_the_prefix_with_or_without_its_space() {
        let mut r = info_fields("+X: 1,2", "+X:").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.int(0..=9), Ok(1));
        let mut r = info_fields("+X:3", "+X:").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.int(0..=9), Ok(3));
        assert_eq!(
            info_fields("+Y: 1", "+X:").map(|_| ()),
            Err(ParseError::Prefix { expected: "+X:" })
        );
    }
}
