//! `+USECPRF` (at-contract §4; u-blox AT manual §26.3): security profiles 0..4.
//!
//! `AT+USECPRF=<p>` resets profile p; `AT+USECPRF=<p>,<op>,<values>` sets one op;
//! `AT+USECPRF=<p>,<op>` reads it as `+USECPRF: <p>,<op>,<value...>`, strings quoted. Secrets (op 7
//! key password, op 8 PSK, the op 13 master key) are accepted, kept in memory only, and never
//! read back (`+CME ERROR: 3`). Wrong profile, op, type, range or length: `+CME ERROR: 4`.

use sealcell_at::CmeError;
use sealcell_at::args::{Arg, ArgReader};
use sealcell_at::syntax::Form;
use zeroize::Zeroizing;

use super::{CmdResult, Ctx, Outcome, undefined_form};
use crate::profiles::{CipherSuite, PROFILES, ProfileSecrets, SecurityProfile};

/// The `+USECPRF` command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// `+USECPRF`.
    SecurityProfile,
}

impl Cmd {
    pub(crate) fn from_name(name: &str) -> Option<Cmd> {
        (name == "+USECPRF").then_some(Cmd::SecurityProfile)
    }
}

/// **Limits** (u-blox AT manual §26.3): names 200, hostname 256, password 128, SNI 128, PSK 64
/// ASCII / 128 hex, PSK identity 128 ASCII / 256 hex, resumption session id 48, master key 64.
const NAME: usize = 200;

pub(crate) fn execute(_cmd: Cmd, form: Form<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    match form {
        Form::Set(args) => {
            let mut r = args.reader();
            let p = r.int(0..=(PROFILES as i64 - 1))? as usize;
            match r.opt_int(0..=13)? {
                None => {
                    r.finish()?;
                    reset(ctx, p)?;
                }
                Some(op) if r.is_empty() => read(ctx, p, op as u8)?,
                Some(op) => set(ctx, p, op as u8, r)?,
            }
            Ok(Outcome::Done)
        }
        Form::Test => {
            ctx.info(b"+USECPRF: (0-4),(0-10,12,13)");
            Ok(Outcome::Done)
        }
        form => undefined_form(form),
    }
}

fn save(ctx: &mut Ctx<'_>, p: usize, profile: SecurityProfile) -> Result<(), CmeError> {
    ctx.update_nvm(|n| {
        if profile == SecurityProfile::default() {
            n.security_profiles.remove(&p.to_string());
        } else {
            n.security_profiles.insert(p.to_string(), profile);
        }
    })
}

fn reset(ctx: &mut Ctx<'_>, p: usize) -> Result<(), CmeError> {
    ctx.module.profile_secrets[p] = ProfileSecrets::default();
    save(ctx, p, SecurityProfile::default())
}

fn string<'a>(r: &mut ArgReader<'a>, max: usize) -> Result<&'a str, CmeError> {
    r.string(max).map_err(|_| CmeError::OperationNotSupported)
}

/// A cipher byte: a 2-hex-digit string (`"C0"`) or an integer 0..255.
fn cipher_byte(r: &mut ArgReader<'_>) -> Result<u8, CmeError> {
    match r.any()? {
        Some(Arg::Int(v)) => u8::try_from(v).map_err(|_| CmeError::OperationNotSupported),
        Some(Arg::Str(s)) if s.len() == 2 => {
            u8::from_str_radix(s, 16).map_err(|_| CmeError::OperationNotSupported)
        }
        _ => Err(CmeError::OperationNotSupported),
    }
}

fn hex_ok(s: &str) -> bool {
    s.len().is_multiple_of(2) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn set(ctx: &mut Ctx<'_>, p: usize, op: u8, mut r: ArgReader<'_>) -> Result<(), CmeError> {
    let mut prof = ctx.module.security_profile(p);
    match op {
        0 => prof.validation = r.int(0..=3)? as u8,
        1 => prof.min_tls = r.int(0..=3)? as u8,
        2 => {
            prof.cipher = match r.int(0..=255)? {
                0 => CipherSuite::Automatic,
                n @ 1..=15 => CipherSuite::Legacy { number: n as u8 },
                form @ (99 | 255) => {
                    let hi = cipher_byte(&mut r)?;
                    let lo = cipher_byte(&mut r)?;
                    CipherSuite::Iana {
                        form: form as u8,
                        code: u16::from_be_bytes([hi, lo]),
                    }
                }
                _ => return Err(CmeError::OperationNotSupported),
            }
        }
        3 => prof.root = string(&mut r, NAME)?.to_string(),
        4 => prof.hostname = string(&mut r, 256)?.to_string(),
        5 => prof.client_cert = string(&mut r, NAME)?.to_string(),
        6 => prof.client_key = string(&mut r, NAME)?.to_string(),
        7 => {
            let pw = Zeroizing::new(string(&mut r, 128)?.to_string());
            r.finish()?;
            ctx.module.profile_secrets[p].key_password = (!pw.is_empty()).then_some(pw);
            return Ok(());
        }
        8 => {
            let psk = Zeroizing::new(string(&mut r, 128)?.to_string());
            let hex = r.opt_int(0..=1)?.unwrap_or(0) == 1;
            r.finish()?;
            if (hex && (psk.len() > 128 || !hex_ok(&psk))) || (!hex && psk.len() > 64) {
                return Err(CmeError::OperationNotSupported);
            }
            ctx.module.profile_secrets[p].psk = (!psk.is_empty()).then_some((psk, hex));
            return Ok(());
        }
        9 => {
            let id = string(&mut r, 256)?;
            let hex = r.opt_int(0..=1)?.unwrap_or(0) == 1;
            if (hex && !hex_ok(id)) || (!hex && id.len() > 128) {
                return Err(CmeError::OperationNotSupported);
            }
            prof.psk_identity = id.to_string();
            prof.psk_identity_hex = hex;
        }
        10 => prof.sni = string(&mut r, 128)?.to_string(),
        12 => {
            prof.pin_name = string(&mut r, NAME)?.to_string();
            prof.pin_level = r.int(0..=2)? as u8;
        }
        13 => match r.int(0..=2)? {
            0 => prof.resumption = r.int(0..=1)? as u8,
            1 => prof.resumption_type = r.int(0..=0)? as u8,
            _ => {
                let id = string(&mut r, 48)?.to_string();
                let key = r
                    .opt_string(64)
                    .map_err(|_| CmeError::OperationNotSupported)?;
                r.finish()?;
                prof.resumption_session_id = id;
                ctx.module.profile_secrets[p].master_key = key
                    .filter(|k| !k.is_empty())
                    .map(|k| Zeroizing::new(k.to_string()));
                return save(ctx, p, prof);
            }
        },
        _ => return Err(CmeError::OperationNotSupported),
    }
    r.finish()?;
    save(ctx, p, prof)
}

fn read(ctx: &mut Ctx<'_>, p: usize, op: u8) -> Result<(), CmeError> {
    let prof = ctx.module.security_profile(p);
    let line = match op {
        0 => format!("{}", prof.validation),
        1 => format!("{}", prof.min_tls),
        2 => match prof.cipher {
            CipherSuite::Automatic => "0".into(),
            CipherSuite::Legacy { number } => number.to_string(),
            CipherSuite::Iana { form, code } => format!("{form},\"{code:04X}\""),
        },
        3 => format!("\"{}\"", prof.root),
        4 => format!("\"{}\"", prof.hostname),
        5 => format!("\"{}\"", prof.client_cert),
        6 => format!("\"{}\"", prof.client_key),
        // Secrets are write-only.
        7 | 8 => return Err(CmeError::OperationNotAllowed),
        9 => format!(
            "\"{}\",{}",
            prof.psk_identity,
            u8::from(prof.psk_identity_hex)
        ),
        10 => format!("\"{}\"", prof.sni),
        12 => format!("\"{}\",{}", prof.pin_name, prof.pin_level),
        13 => {
            for (tag, value) in [
                (0, prof.resumption.to_string()),
                (1, prof.resumption_type.to_string()),
            ] {
                ctx.info_fmt(format_args!("+USECPRF: {p},13,{tag},{value}"));
            }
            ctx.info_fmt(format_args!(
                "+USECPRF: {p},13,2,\"{}\"",
                prof.resumption_session_id
            ));
            return Ok(());
        }
        _ => return Err(CmeError::OperationNotSupported),
    };
    ctx.info_fmt(format_args!("+USECPRF: {p},{op},{line}"));
    Ok(())
}
