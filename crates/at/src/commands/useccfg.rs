//! `+USECCFG` enforced security, the one-time seal (at-contract §2; application note §2.3).
//!
//! | Wire form | Type |
//! |---|---|
//! | `AT+USECCFG=0`, `=0,0`, `=0,1,"<password>"` | [`SecCfgCommand`] |
//! | `+USECCFG: 0,<encryption_status>` (also the answer to `AT+USECCFG?`) | [`SecCfgStatus`] |

use std::fmt;

use super::{
    InfoLine, ParseError, Reveal, Secret, SetCommand, StringError, Wire, WriteArgs, info_fields,
    parse_all, read_bool, secret_args, shown_line, write_bool,
};
use crate::args::{Arg, ArgError, ArgReader, Args};

/// The answer to `AT+USECCFG=?`.
pub const TEST_RESPONSE: &str = "+USECCFG: (0),(0,1),128";

/// The read command line.
pub const READ_LINE: &str = "AT+USECCFG?";

/// The seal password: **1..128 printable ASCII characters other than `"`** (at-contract §2).
///
/// # Security
/// Zeroized on drop, never in `Debug`; shown as `"<redacted>"` in [`SetCommand::shown`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealPassword(Secret<128>);

impl SealPassword {
    /// The rule, as a message.
    pub const RULE: &'static str =
        "the seal password is 1..128 printable ASCII characters other than `\"`";

    /// A password, if it follows the rule. The error never holds it.
    pub fn new(password: &str) -> Result<SealPassword, StringError> {
        if !follows_rule(password) {
            return Err(StringError::Rule(SealPassword::RULE));
        }
        Secret::new(password).map(SealPassword)
    }

    /// The password itself.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

fn follows_rule(password: &str) -> bool {
    (1..=128).contains(&password.len())
        && password
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"')
}

/// The set form `AT+USECCFG=0[,<enable>[,"<password>"]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecCfgCommand {
    /// `0`: report the status, as the read form does.
    Status,
    /// `0,0`: turn enforced security off: a no-op when it is off, refused (3) once sealed.
    Disable,
    /// `0,1,"<password>"`: seal the module. Once per lifetime.
    Seal(SealPassword),
}

impl SecCfgCommand {
    /// Whether the argument text asks to seal (`0,1,...`), whatever follows. A sealed module
    /// refuses any such request with `+CME ERROR: 3` before it looks at the password
    /// (at-contract §2: "already sealed, any new `=0,1,...`"), so it asks this first.
    pub fn asks_to_seal(args: &str) -> bool {
        let mut tokens = Args(args).iter();
        matches!(
            (tokens.next(), tokens.next()),
            (Some(Ok(Arg::Int(0))), Some(Ok(Arg::Int(1))))
        )
    }

    fn read(r: &mut ArgReader<'_>) -> Result<SecCfgCommand, ArgError> {
        r.int(0..=0)?;
        Ok(match r.opt_int(0..=1)? {
            None => SecCfgCommand::Status,
            Some(0) => SecCfgCommand::Disable,
            Some(_) => {
                let position = r.next_position();
                let password = Secret::read(r)?;
                if !follows_rule(password.expose()) {
                    return Err(ArgError::OutOfRange { position });
                }
                SecCfgCommand::Seal(SealPassword(password))
            }
        })
    }
}

impl WriteArgs for SecCfgCommand {
    fn write_args(&self, f: &mut fmt::Formatter<'_>, reveal: Reveal) -> fmt::Result {
        match self {
            SecCfgCommand::Status => f.write_str("0"),
            SecCfgCommand::Disable => f.write_str("0,0"),
            SecCfgCommand::Seal(p) => {
                f.write_str("0,1,")?;
                p.0.write(f, reveal)
            }
        }
    }
}

secret_args!(SecCfgCommand);

impl Wire for SecCfgCommand {
    fn parse(text: &str) -> Result<SecCfgCommand, ParseError> {
        parse_all(text, SecCfgCommand::read)
    }
}

impl SetCommand for SecCfgCommand {
    const NAME: &'static str = "+USECCFG";

    fn shown(&self) -> String {
        shown_line(self)
    }
}

/// `+USECCFG: 0,<encryption_status>`: whether the module is sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecCfgStatus {
    /// Whether enforced security is on (the module is sealed).
    pub sealed: bool,
}

impl fmt::Display for SecCfgStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} 0,", Self::PREFIX)?;
        write_bool(f, self.sealed)
    }
}

impl Wire for SecCfgStatus {
    fn parse(line: &str) -> Result<SecCfgStatus, ParseError> {
        let mut r = info_fields(line, Self::PREFIX)?;
        r.int(0..=0)?;
        let sealed = read_bool(&mut r)?;
        r.finish()?;
        Ok(SecCfgStatus { sealed })
    }
}

impl InfoLine for SecCfgStatus {
    const PREFIX: &'static str = "+USECCFG:";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms() {
        assert_eq!(SecCfgCommand::parse("0"), Ok(SecCfgCommand::Status));
        assert_eq!(SecCfgCommand::parse("0,0"), Ok(SecCfgCommand::Disable));
        let seal = SecCfgCommand::parse("0,1,\"my_pwd\"");
        assert_eq!(
            seal,
            Ok(SecCfgCommand::Seal(SealPassword::new("my_pwd").unwrap()))
        );
        let seal = seal.unwrap();
        assert_eq!(seal.line().as_str(), "AT+USECCFG=0,1,\"my_pwd\"");
        assert_eq!(seal.shown(), "AT+USECCFG=0,1,\"<redacted>\"");
        assert!(!format!("{seal:?}").contains("my_pwd"));
        for bad in [
            "0,1",
            "0,1,\"\"",
            "0,1,\"tab\there\"",
            "1,1,\"my_pwd\"",
            "0,2,\"my_pwd\"",
            "0,0,\"x\"",
        ] {
            assert!(SecCfgCommand::parse(bad).is_err(), "{bad}");
        }
        assert!(SecCfgCommand::parse(&format!("0,1,\"{}\"", "p".repeat(128))).is_ok());
        assert!(SecCfgCommand::parse(&format!("0,1,\"{}\"", "p".repeat(129))).is_err());
    }

    #[test]
    fn a_seal_request_is_recognised_before_its_password_is_read() {
        assert!(SecCfgCommand::asks_to_seal("0,1,\"\""));
        assert!(SecCfgCommand::asks_to_seal("0,01"));
        assert!(SecCfgCommand::asks_to_seal("0,1,\"pw\",7"));
        assert!(!SecCfgCommand::asks_to_seal("0,0"));
        assert!(!SecCfgCommand::asks_to_seal("1,1,\"pw\""));
        assert!(!SecCfgCommand::asks_to_seal("0"));
    }

    #[test]
    fn status_lines() {
        assert_eq!(SecCfgStatus { sealed: true }.to_string(), "+USECCFG: 0,1");
        assert_eq!(
            SecCfgStatus::parse("+USECCFG: 0,0"),
            Ok(SecCfgStatus { sealed: false })
        );
        assert!(SecCfgStatus::parse("+USECCFG: 0,2").is_err());
        assert!(SecCfgStatus::parse("+USECCFG: 0").is_err());
        assert!(SecCfgStatus::parse("+USECCFG: 1,1").is_err());
    }
}
