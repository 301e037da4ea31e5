//! The module's identity, fixed at creation (at-contract §1): model, Luhn-valid IMEI, and the
//! emulated SIM's IMSI and ICCID.

use std::fmt;
use std::net::Ipv4Addr;
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
    /// The address of the module's PDP context (`+CGPADDR`), in the shared address space
    /// 100.64.0.0/10 (RFC 6598) that carriers use behind NAT. Modules made before it existed
    /// have none stored and get one derived from their IMEI ([`Identity::pdp_address`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pdp_address: Option<Ipv4Addr>,
}

/// The network side of the emulated PDP context: the gateway and the two DNS servers it
/// announces (`+CGCONTRDP`), the low addresses of 100.64.0.0/10, never given to a module.
pub mod pdn {
    use std::net::Ipv4Addr;
    /// The default gateway.
    pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
    /// The primary DNS server.
    pub const DNS_PRIMARY: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 2);
    /// The secondary DNS server.
    pub const DNS_SECONDARY: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 3);
}

/// A module address in 100.64.0.0/10 from 22 bits of `seed`, avoiding 100.64.0.0/24 (the
/// network's own, [`pdn`]) and host parts .0 and .255.
fn pdp_address_from(seed: u32) -> Ipv4Addr {
    // 100.64.0.0/10: the first octet is 100, the next 6 bits are 01xxxxxx, 22 bits free.
    let bits = seed & 0x003F_FFFF;
    let mut addr = (100u32 << 24) | (1 << 22) | bits;
    if addr & 0xFFFF_FF00 == u32::from(Ipv4Addr::new(100, 64, 0, 0)) {
        addr |= 1 << 8;
    }
    match addr & 0xFF {
        0 => addr |= 1,
        255 => addr &= !1,
        _ => {}
    }
    Ipv4Addr::from(addr)
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
    /// The PDP context address: stored at creation, or derived from the IMEI for a module made
    /// before addresses were stored (stable across restarts either way).
    pub fn pdp_address(&self) -> Ipv4Addr {
        self.pdp_address.unwrap_or_else(|| {
            // FNV-1a over the IMEI digits: a fixed, well-spread seed.
            let seed = self.imei.as_str().bytes().fold(0x811C_9DC5u32, |h, b| {
                (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
            });
            pdp_address_from(seed)
        })
    }

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
        let mut seed = [0u8; 4];
        getrandom::fill(&mut seed)?;
        Ok(Identity {
            model,
            imei,
            serial: random_digits(10)?,
            imsi: format!("00101{}", random_digits(10)?),
            iccid: format!("{iccid_body}{iccid_check}"),
            created_unix,
            pdp_address: Some(pdp_address_from(u32::from_le_bytes(seed))),
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
    fn pdp_addresses_stay_in_the_shared_range() {
        let shared = u32::from(Ipv4Addr::new(100, 64, 0, 0));
        for seed in [
            0,
            1,
            0xFF,
            0x3F_FFFF,
            0xFFFF_FFFF,
            0x1234_5678,
            0xFF00,
            0x3F_FF00,
        ] {
            let a = pdp_address_from(seed);
            assert_eq!(
                u32::from(a) & 0xFFC0_0000,
                shared,
                "{a} not in 100.64.0.0/10"
            );
            assert_ne!(u32::from(a) & 0xFFFF_FF00, shared, "{a} is the network's");
            assert!(!matches!(a.octets()[3], 0 | 255), "{a}");
        }
        let id = Identity::generate(Model::TobyL210, None, 0).unwrap();
        assert_eq!(id.pdp_address(), id.pdp_address.unwrap());
        // A module made before addresses were stored: derived from its IMEI (FNV-1a), the same
        // at every start, different for another IMEI (values computed independently).
        let derived = |imei: &str| {
            Identity {
                pdp_address: None,
                imei: imei.parse().unwrap(),
                ..id.clone()
            }
            .pdp_address()
        };
        assert_eq!(
            derived("490154203237518"),
            Ipv4Addr::new(100, 115, 175, 201)
        );
        assert_eq!(
            derived("359254065497257"),
            Ipv4Addr::new(100, 102, 237, 186)
        );
    }

    #[test]
    fn models_parse_case_insensitively() {
        assert_eq!("toby-l280".parse::<Model>(), Ok(Model::TobyL280));
        assert!("SARA-R5".parse::<Model>().is_err());
    }
}
