//! `+UHTTP`, `+UHTTPC`, `+UHTTPER` (at-contract §5; application note §4.1): the HTTP(S) client.
//!
//! `+UHTTP` configures one of four volatile profiles; `+UHTTPC` starts a request and answers `OK`
//! at once, the result arriving later as `+UUHTTPCR`; `+UHTTPER` reads the last error of a
//! profile (codes in docs/uhttper.md).
//!
//! A request is a [`NetJob`] for the edge's connector: this module formats it
//! ([`crate::http::wire`]), opens the file the response goes to and sets the deadline (op 7,
//! for the whole exchange); the engine fails the request when the deadline passes.

use std::time::Duration;

use sealcell_at::CmeError;
use sealcell_at::args::ArgReader;
use sealcell_at::syntax::Form;
use sealcell_store::credential::CredentialType;
use zeroize::Zeroizing;

use super::{CmdResult, Ctx, Outcome, undefined_form};
use crate::firmware::PACKAGE;
use crate::fs::{Tag, validate_name};
use crate::http::sink::ResponseSink;
use crate::http::wire::{Request, request_bytes};
use crate::http::{HTTP_PROFILES, HttpProfile, InFlight, err};
use crate::job::{Abandoned, NetJob, Target, TlsSettings};

/// The HTTP commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// `+UHTTP`: profile settings.
    Profile,
    /// `+UHTTPC`: run a request.
    Request,
    /// `+UHTTPER`: the last error of a profile.
    LastError,
}

impl Cmd {
    pub(crate) fn from_name(name: &str) -> Option<Cmd> {
        match name {
            "+UHTTP" => Some(Cmd::Profile),
            "+UHTTPC" => Some(Cmd::Request),
            "+UHTTPER" => Some(Cmd::LastError),
            _ => None,
        }
    }
}

/// Longest server name, user, password, path and header accepted (u-blox AT manual §27).
const SERVER: usize = 128;
const USER: usize = 30;
const PATH: usize = 128;
const HEADER: usize = 256;
/// Longest `+UHTTPC=...,5` data.
const DATA: usize = 1024;
/// The largest file `+UHTTPC` commands 3 and 4 send (PUT, POST a file).
///
/// # Security
/// The request is built in memory: a 1 GiB file would take the module with it.
pub const MAX_SEND_FILE: u64 = 1 << 20;

pub(crate) fn execute(cmd: Cmd, form: Form<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    match (cmd, form) {
        (Cmd::Profile, Form::Set(args)) => {
            let mut r = args.reader();
            let p = r.int(0..=(HTTP_PROFILES as i64 - 1))? as usize;
            match r.opt_int(0..=9)? {
                None => {
                    r.finish()?;
                    ctx.module.http.profiles[p] = HttpProfile::default();
                }
                Some(op) if r.is_empty() => read(ctx, p, op as u8)?,
                Some(op) => set(ctx, p, op as u8, r)?,
            }
            Ok(Outcome::Done)
        }
        (Cmd::Profile, Form::Test) => {
            ctx.info(b"+UHTTP: (0-3),(0-7,9)");
            Ok(Outcome::Done)
        }
        (Cmd::Request, Form::Set(args)) => {
            request(ctx, args.reader())?;
            Ok(Outcome::Done)
        }
        (Cmd::Request, Form::Test) => {
            ctx.info(b"+UHTTPC: (0-3),(0-5,100)");
            Ok(Outcome::Done)
        }
        (Cmd::LastError, Form::Set(args)) => {
            let mut r = args.reader();
            let p = r.int(0..=(HTTP_PROFILES as i64 - 1))? as usize;
            r.finish()?;
            let (class, code) = ctx.module.http.errors[p];
            ctx.info_fmt(format_args!("+UHTTPER: {p},{class},{code}"));
            Ok(Outcome::Done)
        }
        (_, form) => undefined_form(form),
    }
}

fn string<'a>(r: &mut ArgReader<'a>, max: usize) -> Result<&'a str, CmeError> {
    r.string(max).map_err(|_| CmeError::OperationNotSupported)
}

fn set(ctx: &mut Ctx<'_>, p: usize, op: u8, mut r: ArgReader<'_>) -> Result<(), CmeError> {
    let prof = &mut ctx.module.http.profiles[p];
    match op {
        0 => prof.server_ip = string(&mut r, SERVER)?.to_string(),
        1 => prof.server_name = string(&mut r, SERVER)?.to_string(),
        2 => prof.user = string(&mut r, USER)?.to_string(),
        3 => prof.password = Zeroizing::new(string(&mut r, USER)?.to_string()),
        4 => prof.auth = r.int(0..=1)? as u8,
        5 => prof.port = Some(r.int(1..=65535)? as u16),
        6 => {
            prof.secure = r.int(0..=1)? == 1;
            if let Some(s) = r.opt_int(0..=(crate::profiles::PROFILES as i64 - 1))? {
                prof.security_profile = s as u8;
            }
        }
        7 => prof.timeout = r.int(1..=3600)? as u32,
        9 => {
            let spec = string(&mut r, HEADER)?;
            let mut parts = spec.splitn(3, ':');
            let slot = parts.next().and_then(|s| s.parse::<usize>().ok());
            let (Some(slot @ 0..=4), Some(name), value) = (slot, parts.next(), parts.next()) else {
                return Err(CmeError::OperationNotSupported);
            };
            let name_ok = name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
            prof.headers[slot] = match value {
                // "<n>:" clears a slot.
                _ if name.is_empty() => None,
                Some(v) if name_ok && !v.bytes().any(|b| b == b'\r' || b == b'\n') => {
                    Some((name.to_string(), v.trim_start().to_string()))
                }
                _ => return Err(CmeError::OperationNotSupported),
            };
        }
        _ => return Err(CmeError::OperationNotSupported),
    }
    r.finish()?;
    Ok(())
}

fn read(ctx: &mut Ctx<'_>, p: usize, op: u8) -> Result<(), CmeError> {
    let prof = ctx.module.http.profiles[p].clone();
    let value = match op {
        0 => format!("\"{}\"", prof.server_ip),
        1 => format!("\"{}\"", prof.server_name),
        2 => format!("\"{}\"", prof.user),
        // The password is write-only.
        3 => return Err(CmeError::OperationNotAllowed),
        4 => prof.auth.to_string(),
        5 => effective_port(&prof).to_string(),
        6 => format!("{},{}", u8::from(prof.secure), prof.security_profile),
        7 => prof.timeout.to_string(),
        9 => {
            for (i, h) in prof.headers.iter().enumerate() {
                if let Some((n, v)) = h {
                    ctx.info_fmt(format_args!("+UHTTP: {p},9,\"{i}:{n}:{v}\""));
                }
            }
            return Ok(());
        }
        _ => return Err(CmeError::OperationNotSupported),
    };
    ctx.info_fmt(format_args!("+UHTTP: {p},{op},{value}"));
    Ok(())
}

fn effective_port(prof: &HttpProfile) -> u16 {
    prof.port.unwrap_or(if prof.secure { 443 } else { 80 })
}

/// The `Content-Type` of `+UHTTPC` content type numbers 0..5 (6 takes a user string).
fn content_type(r: &mut ArgReader<'_>) -> Result<String, CmeError> {
    let t = match r.int(0..=6)? {
        0 => "application/x-www-form-urlencoded",
        1 => "text/plain",
        2 => "application/octet-stream",
        3 => "multipart/form-data",
        4 => "application/json",
        5 => "application/xml",
        _ => {
            let s = string(r, 64)?;
            if s.is_empty() || s.bytes().any(|b| !(b' '..=b'~').contains(&b)) {
                return Err(CmeError::OperationNotSupported);
            }
            return Ok(s.to_string());
        }
    };
    Ok(t.to_string())
}

fn request(ctx: &mut Ctx<'_>, mut r: ArgReader<'_>) -> Result<(), CmeError> {
    let p = r.int(0..=(HTTP_PROFILES as i64 - 1))? as usize;
    let cmd = r.int(0..=100)? as u8;
    let method = match cmd {
        0 => "HEAD",
        1 | 100 => "GET",
        2 => "DELETE",
        3 => "PUT",
        4 | 5 => "POST",
        _ => return Err(CmeError::OperationNotSupported),
    };
    let path = string(&mut r, PATH)?;
    if !path.starts_with('/') || path.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(CmeError::OperationNotSupported);
    }
    let path = path.to_string();
    let (tag, file) = if cmd == 100 {
        // An optional (ignored) file name keeps clients that always send one working.
        let _ = r
            .opt_string(PATH)
            .map_err(|_| CmeError::OperationNotSupported)?;
        (Tag::Foat, PACKAGE.to_string())
    } else {
        let f = string(&mut r, PATH)?;
        let f = if f.is_empty() {
            format!("http_last_response_{p}")
        } else {
            f.to_string()
        };
        validate_name(&f).map_err(|_| CmeError::OperationNotSupported)?;
        (Tag::User, f)
    };
    let body = match cmd {
        3 | 4 => {
            let name = string(&mut r, PATH)?.to_string();
            let ctype = content_type(&mut r)?;
            match ctx.module.fs.size(Tag::User, &name) {
                Ok(n) if n > MAX_SEND_FILE => {
                    ctx.module.http.errors[p] = err::TOO_LARGE;
                    return Err(CmeError::OperationNotAllowed);
                }
                _ => {}
            }
            match ctx.module.fs.read(Tag::User, &name) {
                Ok(b) => Some((b, ctype)),
                Err(_) => {
                    ctx.module.http.errors[p] = err::NO_FILE;
                    return Err(CmeError::FileNotFound);
                }
            }
        }
        5 => {
            let data = string(&mut r, DATA)?.as_bytes().to_vec();
            let ctype = content_type(&mut r)?;
            Some((data, ctype))
        }
        _ => None,
    };
    r.finish()?;
    if ctx.module.http.is_busy(p) {
        return Err(CmeError::OperationNotAllowed);
    }
    let prof = ctx.module.http.profiles[p].clone();
    let host = if prof.server_name.is_empty() {
        prof.server_ip.clone()
    } else {
        prof.server_name.clone()
    };
    if host.is_empty() {
        ctx.module.http.errors[p] = err::NO_SERVER;
        return Err(CmeError::OperationNotAllowed);
    }
    let port = effective_port(&prof);
    let tls = if prof.secure {
        Some(tls_settings(ctx, usize::from(prof.security_profile))?)
    } else {
        None
    };
    let default_port = if prof.secure { 443 } else { 80 };
    let host_header = if port == default_port {
        host.clone()
    } else {
        format!("{host}:{port}")
    };
    let headers: Vec<(String, String)> = prof.headers.iter().flatten().cloned().collect();
    let request = request_bytes(&Request {
        method,
        path: &path,
        host: &host_header,
        basic_auth: (prof.auth == 1).then(|| (prof.user.as_str(), prof.password.as_str())),
        headers: &headers,
        body: body.as_ref().map(|(b, t)| (b.as_slice(), t.as_str())),
    });
    let free = ctx.module.fs.free().map_err(super::storage_failure)?;
    let upload = ctx
        .module
        .fs
        .begin_replace(tag, &file)
        .map_err(|_| CmeError::MemoryFailure)?;
    // Op 7 bounds the whole exchange, not each read: a server that trickles cannot hold the
    // profile past it (op 7 is at most 3600 s, its default 180 s).
    let deadline = ctx.now.mono() + Duration::from_secs(u64::from(prof.timeout));
    let abandoned = Abandoned::default();
    let sink = ResponseSink::new(method, free, upload, cmd == 100, abandoned.clone());
    let id = ctx.module.start_net_job(NetJob {
        target: Target { host, port, tls },
        request,
        deadline,
        sink,
    });
    ctx.module.http.errors[p] = err::NONE;
    ctx.module.http.in_flight.insert(
        id,
        InFlight {
            channel: ctx.channel,
            profile: p,
            cmd,
            deadline,
            abandoned,
        },
    );
    Ok(())
}

/// The TLS settings of a `+USECPRF` profile, with its credentials read (and decrypted, in memory
/// only) from the store. A named credential that is missing fails the command at once.
fn tls_settings(ctx: &mut Ctx<'_>, sp: usize) -> Result<TlsSettings, CmeError> {
    let prof = ctx.module.security_profile(sp);
    let store = ctx.module.store();
    let fetch =
        |kind: CredentialType, name: &str| -> Result<Option<Zeroizing<Vec<u8>>>, CmeError> {
            if name.is_empty() {
                return Ok(None);
            }
            store
                .der(kind, name)
                .map(Some)
                .map_err(|e| crate::cme_map::Failure::TlsCredential(e).into())
        };
    let now_unix = ctx.clock_unix();
    Ok(TlsSettings {
        validation: prof.validation,
        min_tls: prof.min_tls,
        cipher: prof.cipher.iana(),
        hostname: prof.hostname.clone(),
        sni: prof.sni.clone(),
        root: fetch(CredentialType::TrustedRootCa, &prof.root)?,
        client_cert: fetch(CredentialType::ClientCertificate, &prof.client_cert)?,
        client_key: fetch(CredentialType::ClientPrivateKey, &prof.client_key)?,
        pin: fetch(CredentialType::ServerCertificate, &prof.pin_name)?.map(|d| (d, prof.pin_level)),
        now_unix,
    })
}
