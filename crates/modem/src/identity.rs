//! The module's identity, fixed at creation (at-contract §1): model, Luhn-valid IMEI, and the
//! emulated SIM's IMSI and ICCID.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The modules the application note applies to (UBX-19022699, "This document applies to").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Model {
    /// TOBY-L200-03S.
    #[serde(rename = "TOBY-L200")]
    TobyL200,
    /// TOBY-L201-02S.
    #[serde(rename = "TOBY-L201")]
    TobyL201,
    /// TOBY-L210-03S, the default.
    #[serde(rename = "TOBY-L210")]
    TobyL210,
    /// TOBY-L280-03S.
    #[serde(rename = "TOBY-L280")]
    TobyL280,
    /// MPC1-L201-02S.
    #[serde(rename = "MPC1-L201")]
    Mpc1L201,
}

impl Model {
    /// Every model, in the order `--model` lists them.
    pub const ALL: [Model; 5] = [
        Model::TobyL200,
        Model::TobyL201,
        Model::TobyL210,
        Model::TobyL280,
        Model::Mpc1L201,
    ];

    /// The `AT+CGMM` answer.
    pub fn name(self) -> &'static str {
        match self {
            Model::TobyL200 => "TOBY-L200",
            Model::TobyL201 => "TOBY-L201",
            Model::TobyL210 => "TOBY-L210",
            Model::TobyL280 => "TOBY-L280",
            Model::Mpc1L201 => "MPC1-L201",
        }
    }

    /// The `ATI` type number. The application note excludes the `-00` type numbers, so the
    /// emulated modules are `-01`.
    pub fn type_number(self) -> &'static str {
        match self {
            Model::TobyL200 => "TOBY-L200-03S-01",
            Model::TobyL201 => "TOBY-L201-02S-01",
            Model::TobyL210 => "TOBY-L210-03S-01",
            Model::TobyL280 => "TOBY-L280-03S-01",
            Model::Mpc1L201 => "MPC1-L201-02S-01",
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Model {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Model::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = Model::ALL.iter().map(|m| m.name()).collect();
                format!("unknown model {s:?}; expected one of {}", names.join(", "))
            })
    }
}

/// The Luhn check digit for `digits` (ISO/IEC 7812), as used by IMEIs and ICCIDs.
pub fn luhn_check_digit(digits: &str) -> Option<u8> {
    let mut sum = 0u32;
    for (i, c) in digits.bytes().rev().enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        let mut d = u32::from(c - b'0');
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    Some(((10 - sum % 10) % 10) as u8)
}

/// A 15-digit IMEI whose last digit is the Luhn check digit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Imei(String);

impl Imei {
    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 14-digit body (TAC + serial), without the check digit.
    pub fn body(&self) -> &str {
        &self.0[..14]
    }
}

impl FromStr for Imei {
    type Err = String;

    /// Accepts 15 digits with a valid check digit, or 14 digits (the check digit is added).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.bytes().all(|b| b.is_ascii_digit()) || !(s.len() == 14 || s.len() == 15) {
            return Err(format!(
                "IMEI {s:?} must be 15 digits (or 14 without the check digit)"
            ));
        }
        let check =
            luhn_check_digit(&s[..14]).ok_or_else(|| format!("IMEI {s:?} is not digits"))?;
        if s.len() == 15 && s.as_bytes()[14] - b'0' != check {
            return Err(format!(
                "IMEI {s:?} fails the Luhn check (the last digit should be {check})"
            ));
        }
        Ok(Imei(format!("{}{}", &s[..14], check)))
    }
}

impl TryFrom<String> for Imei {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Imei> for String {
    fn from(i: Imei) -> String {
        i.0
    }
}

impl fmt::Display for Imei {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything fixed when the module was made: stored in `otp/identity.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// `AT+CGMM`.
    pub model: Model,
    /// `AT+CGSN`.
    pub imei: Imei,
    /// The module's serial number (informational).
    pub serial: String,
    /// `AT+CIMI`: MCC 001, MNC 01 (the ITU test network) and 10 random digits.
    pub imsi: String,
    /// `AT+CCID`: 20 digits, Luhn-valid.
    pub iccid: String,
    /// Creation time, seconds since the Unix epoch.
    pub created_unix: u64,
}

/// The Type Allocation Code of emulated IMEIs. Arbitrary: sealcell holds no real TAC.
pub const EMULATOR_TAC: &str = "35925406";

/// Random decimal digits from the OS random source.
pub fn random_digits(n: usize) -> Result<String, getrandom::Error> {
    let mut out = String::with_capacity(n);
    while out.len() < n {
        let mut buf = [0u8; 32];
        getrandom::fill(&mut buf)?;
        // Rejection sampling keeps the digits uniform.
        for b in buf.into_iter().filter(|&b| b < 250) {
            if out.len() == n {
                break;
            }
            out.push(char::from(b'0' + b % 10));
        }
    }
    Ok(out)
}

impl Identity {
    /// A new identity with random serial numbers; `imei` overrides the generated IMEI.
    pub fn generate(
        model: Model,
        imei: Option<Imei>,
        created_unix: u64,
    ) -> Result<Identity, getrandom::Error> {
        let imei = match imei {
            Some(i) => i,
            None => {
                let body = format!("{EMULATOR_TAC}{}", random_digits(6)?);
                // 14 digits always parse.
                body.parse().unwrap_or(Imei(format!("{body}0")))
            }
        };
        let iccid_body = format!("8900101{}", random_digits(12)?);
        let iccid_check = luhn_check_digit(&iccid_body).unwrap_or(0);
        Ok(Identity {
            model,
            imei,
            serial: random_digits(10)?,
            imsi: format!("00101{}", random_digits(10)?),
            iccid: format!("{iccid_body}{iccid_check}"),
            created_unix,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_known_values() {
        // A published example IMEI: 49015420323751 + check digit 8.
        assert_eq!(luhn_check_digit("49015420323751"), Some(8));
        assert_eq!(luhn_check_digit("7992739871"), Some(3));
        assert!("490154203237518".parse::<Imei>().is_ok());
        assert!("490154203237517".parse::<Imei>().is_err());
        assert_eq!(
            "49015420323751".parse::<Imei>().map(|i| i.0),
            Ok("490154203237518".into())
        );
        assert!("4901542032375".parse::<Imei>().is_err());
        assert!("49015420323751x".parse::<Imei>().is_err());
    }

    #[test]
    fn generated_identities_are_well_formed() {
        for _ in 0..50 {
            let id = Identity::generate(Model::TobyL210, None, 0).unwrap();
            assert_eq!(id.imei.as_str().len(), 15);
            assert!(id.imei.as_str().starts_with(EMULATOR_TAC));
            assert!(id.imei.as_str().parse::<Imei>().is_ok());
            assert_eq!(id.imsi.len(), 15);
            assert_eq!(id.iccid.len(), 20);
            assert_eq!(
                luhn_check_digit(&id.iccid[..19]),
                Some(id.iccid.as_bytes()[19] - b'0')
            );
        }
    }

    #[test]
    fn models_parse_case_insensitively() {
        assert_eq!("toby-l280".parse::<Model>(), Ok(Model::TobyL280));
        assert!("SARA-R5".parse::<Model>().is_err());
    }
}
