//! `+CMUX` 27.010 multiplexing (at-contract §10; 3GPP TS 27.007 §5.7; TOBY-L2: basic option,
//! UIH frames, control channel 0 and AT channels 1..5).
//!
//! | Wire form | Type |
//! |---|---|
//! | `AT+CMUX=<mode>[,<subset>[,<port_speed>[,<N1>[,<T1>[,<N2>[,<T2>[,<T3>[,<k>]]]]]]]]` | [`CmuxCommand`] |
//! | `+CMUX: <mode>,<subset>,<port_speed>,<N1>,<T1>,<N2>,<T2>,<T3>,<k>` (`AT+CMUX?`) | [`CmuxStatus`] |

use std::fmt;

use super::{InfoLine, ParseError, SetCommand, Wire, info_fields, parse_all};
use crate::args::{ArgError, ArgReader};

/// The answer to `AT+CMUX=?`: the basic option and UIH only; N1 1..1509, T1, N2, T2 in the
/// ranges of the u-blox manuals; the parameters the module ignores are blank, as u-blox
/// modules report them.
pub const TEST_RESPONSE: &str = "+CMUX: (0),(0),,(1-1509),(1-255),(0-5),(2-255),,";

/// The read command line.
pub const READ_LINE: &str = "AT+CMUX?";

/// The AT channels a TOBY-L2 multiplexer carries: DLCIs 1..=5 (DLCI 0 is the control
/// channel; System Integration Manual UBX-13004618 §1.9.2.5).
pub const MAX_AT_DLCI: u8 = 5;

/// The largest N1 accepted (bytes of an information field).
pub const MAX_N1: u16 = 1509;

/// N1 when the command leaves it out (TS 27.007: 31 for the basic option).
pub const DEFAULT_N1: u16 = 31;

/// The set command. Fields left out are `None` and take the defaults of [`CmuxStatus`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CmuxCommand {
    /// `<port_speed>` (1..6 in TS 27.007; the emulated UART has no speed, it is kept).
    pub port_speed: Option<u8>,
    /// `<N1>`: the largest information field, each way.
    pub n1: Option<u16>,
    /// `<T1>`: acknowledgement timer, tens of ms.
    pub t1: Option<u8>,
    /// `<N2>`: retransmissions.
    pub n2: Option<u8>,
    /// `<T2>`: control-channel response timer, tens of ms.
    pub t2: Option<u8>,
    /// `<T3>`: wake-up response timer, seconds.
    pub t3: Option<u8>,
    /// `<k>`: window size (advanced option only).
    pub k: Option<u8>,
}

impl CmuxCommand {
    /// ubxlib's form, `AT+CMUX=0,0,,<n1>`.
    pub fn with_n1(n1: u16) -> CmuxCommand {
        CmuxCommand {
            n1: Some(n1),
            ..CmuxCommand::default()
        }
    }

    /// The parameters in force after this command.
    pub fn status(&self) -> CmuxStatus {
        let d = CmuxStatus::default();
        CmuxStatus {
            port_speed: self.port_speed.unwrap_or(d.port_speed),
            n1: self.n1.unwrap_or(d.n1),
            t1: self.t1.unwrap_or(d.t1),
            n2: self.n2.unwrap_or(d.n2),
            t2: self.t2.unwrap_or(d.t2),
            t3: self.t3.unwrap_or(d.t3),
            k: self.k.unwrap_or(d.k),
        }
    }

    fn read(r: &mut ArgReader<'_>) -> Result<CmuxCommand, ArgError> {
        // Mode 0 (basic) and subset 0 (UIH) only: anything else is out of range, +CME ERROR: 4.
        r.int(0..=0)?;
        r.opt_int(0..=0)?;
        let small = |r: &mut ArgReader<'_>, range| -> Result<Option<u8>, ArgError> {
            Ok(r.opt_int(range)?.and_then(|v| u8::try_from(v).ok()))
        };
        let port_speed = small(r, 0..=7)?;
        let n1 = r
            .opt_int(1..=i64::from(MAX_N1))?
            .and_then(|v| u16::try_from(v).ok());
        let t1 = small(r, 1..=255)?;
        let n2 = small(r, 0..=5)?;
        let t2_position = r.next_position();
        let t2 = small(r, 2..=255)?;
        let t3 = small(r, 0..=255)?;
        let k = small(r, 1..=7)?;
        let command = CmuxCommand {
            port_speed,
            n1,
            t1,
            n2,
            t2,
            t3,
            k,
        };
        // The control channel's response timer cannot be shorter than the acknowledgement's.
        let status = command.status();
        if status.t1 > status.t2 {
            return Err(ArgError::OutOfRange {
                position: t2_position,
            });
        }
        Ok(command)
    }
}

impl fmt::Display for CmuxCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields = [
            self.port_speed.map(u16::from),
            self.n1,
            self.t1.map(u16::from),
            self.n2.map(u16::from),
            self.t2.map(u16::from),
            self.t3.map(u16::from),
            self.k.map(u16::from),
        ];
        // Trailing fields left out are not written; inner ones are empty.
        let given = fields
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |i| i + 1);
        f.write_str("0,0")?;
        for field in &fields[..given] {
            f.write_str(",")?;
            if let Some(v) = field {
                write!(f, "{v}")?;
            }
        }
        Ok(())
    }
}

impl Wire for CmuxCommand {
    fn parse(text: &str) -> Result<CmuxCommand, ParseError> {
        parse_all(text, CmuxCommand::read)
    }
}

impl SetCommand for CmuxCommand {
    const NAME: &'static str = "+CMUX";
}

/// `+CMUX: 0,0,<port_speed>,<N1>,<T1>,<N2>,<T2>,<T3>,<k>`: the multiplexer's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmuxStatus {
    /// `<port_speed>`.
    pub port_speed: u8,
    /// `<N1>`.
    pub n1: u16,
    /// `<T1>`.
    pub t1: u8,
    /// `<N2>`.
    pub n2: u8,
    /// `<T2>`.
    pub t2: u8,
    /// `<T3>`.
    pub t3: u8,
    /// `<k>`.
    pub k: u8,
}

impl Default for CmuxStatus {
    /// TS 27.010's defaults (N1 31 for the basic option, T1 100 ms, N2 3, T2 300 ms, T3 10 s,
    /// k 2); port speed 0, as u-blox modules read it back when it was left blank.
    fn default() -> CmuxStatus {
        CmuxStatus {
            port_speed: 0,
            n1: DEFAULT_N1,
            t1: 10,
            n2: 3,
            t2: 30,
            t3: 10,
            k: 2,
        }
    }
}

impl fmt::Display for CmuxStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} 0,0,{},{},{},{},{},{},{}",
            Self::PREFIX,
            self.port_speed,
            self.n1,
            self.t1,
            self.n2,
            self.t2,
            self.t3,
            self.k
        )
    }
}

impl Wire for CmuxStatus {
    fn parse(line: &str) -> Result<CmuxStatus, ParseError> {
        let mut r = info_fields(line, Self::PREFIX)?;
        r.int(0..=0)?;
        r.int(0..=0)?;
        let byte = |r: &mut ArgReader<'_>| -> Result<u8, ArgError> {
            let position = r.next_position();
            u8::try_from(r.int(0..=255)?).map_err(|_| ArgError::OutOfRange { position })
        };
        let port_speed = byte(&mut r)?;
        let position = r.next_position();
        let n1 = u16::try_from(r.int(1..=i64::from(MAX_N1))?)
            .map_err(|_| ArgError::OutOfRange { position })?;
        let status = CmuxStatus {
            port_speed,
            n1,
            t1: byte(&mut r)?,
            n2: byte(&mut r)?,
            t2: byte(&mut r)?,
            t3: byte(&mut r)?,
            k: byte(&mut r)?,
        };
        r.finish()?;
        Ok(status)
    }
}

impl InfoLine for CmuxStatus {
    const PREFIX: &'static str = "+CMUX:";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ubxlibs_command_and_its_read_back() {
        let command = CmuxCommand::parse("0,0,,128");
        assert_eq!(command, Ok(CmuxCommand::with_n1(128)));
        assert_eq!(
            CmuxCommand::with_n1(128).line().as_str(),
            "AT+CMUX=0,0,,128"
        );
        let status = CmuxCommand::with_n1(128).status();
        assert_eq!(status.to_string(), "+CMUX: 0,0,0,128,10,3,30,10,2");
        assert_eq!(CmuxStatus::parse(&status.to_string()), Ok(status));
    }

    #[test]
    fn every_parameter_is_read_back_as_given() {
        let command = CmuxCommand::parse("0,0,5,1509,100,5,200,30,7");
        assert_eq!(
            command.map(|c| c.status().to_string()),
            Ok("+CMUX: 0,0,5,1509,100,5,200,30,7".to_string())
        );
        assert_eq!(CmuxCommand::parse("0"), Ok(CmuxCommand::default()));
        assert_eq!(CmuxCommand::default().to_string(), "0,0");
    }

    #[test]
    fn other_modes_subsets_and_ranges_are_refused() {
        for bad in [
            "",
            "1",
            "0,1",
            "0,0,8",
            "0,0,,0",
            "0,0,,1510",
            "0,0,,31,0",
            "0,0,,31,,6",
            "0,0,,31,50,,40",
            "0,0,,31,,,,,8",
            "0,0,,31,,,,,,1",
            "0,0,,\"31\"",
        ] {
            assert!(CmuxCommand::parse(bad).is_err(), "{bad}");
        }
    }
}
