//! `+UHTTP`, `+UHTTPC`, `+UHTTPER` (at-contract §5; application note §4.1): the HTTP(S) client.
//!
//! `+UHTTP` configures one of four volatile profiles; `+UHTTPC` starts a request and answers `OK`
//! at once, the result arriving later as `+UUHTTPCR`; `+UHTTPER` reads the last error of a
//! profile (codes in docs/uhttper.md). The arguments are parsed, and the answers formatted,
//! by the types of [`sealcell_at::commands::uhttp`], which the host tools use too.
//!
//! A request is a [`NetJob`] for the edge's connector: this module formats it
//! ([`crate::http::wire`]), opens the file the response goes to and sets the deadline (op 7,
//! for the whole exchange); the engine fails the request when the deadline passes.

use std::time::Duration;

use sealcell_at::CmeError;
use sealcell_at::commands::Wire;
use sealcell_at::commands::uhttp::{
    HttpAction, HttpAuthentication, HttpCommand, HttpErrorReport, HttpOp, HttpProfileCommand,
    HttpProfileId, HttpRequest, HttpSetting, PROFILE_TEST_RESPONSE, REQUEST_TEST_RESPONSE,
};
use sealcell_at::syntax::Form;
use zeroize::Zeroizing;

use super::{CmdResult, Ctx, Outcome, undefined_form};
use crate::cme_map::Failure;
use crate::firmware::PACKAGE;
use crate::fs::{Tag, validate_name};
use crate::http::sink::ResponseSink;
use crate::http::wire::{Request, request_bytes};
use crate::http::{HttpProfile, InFlight, err};
use crate::job::{Abandoned, NetJob, Target};

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

/// The largest file `+UHTTPC` commands 3 and 4 send (PUT, POST a file).
///
/// # Security
/// The request is built in memory: a 1 GiB file would take the module with it.
pub const MAX_SEND_FILE: u64 = 1 << 20;

pub(crate) fn execute(cmd: Cmd, form: Form<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    match (cmd, form) {
        (Cmd::Profile, Form::Set(args)) => {
            match HttpProfileCommand::parse(args.as_str()).map_err(Failure::from)? {
                HttpProfileCommand::Reset(p) => {
                    ctx.module.http.profiles[p.index()] = HttpProfile::default();
                }
                HttpProfileCommand::Read { profile, op } => read(ctx, profile, op)?,
                HttpProfileCommand::Set { profile, setting } => set(ctx, profile, setting)?,
            }
            Ok(Outcome::Done)
        }
        (Cmd::Profile, Form::Test) => {
            ctx.info(PROFILE_TEST_RESPONSE.as_bytes());
            Ok(Outcome::Done)
        }
        (Cmd::Request, Form::Set(args)) => {
            let req = HttpRequest::parse(args.as_str()).map_err(Failure::from)?;
            request(ctx, req)?;
            Ok(Outcome::Done)
        }
        (Cmd::Request, Form::Test) => {
            ctx.info(REQUEST_TEST_RESPONSE.as_bytes());
            Ok(Outcome::Done)
        }
        (Cmd::LastError, Form::Set(args)) => {
            let mut r = args.reader();
            let profile: HttpProfileId = r.wire().map_err(Failure::from)?;
            r.finish()?;
            let (class, code) = ctx.module.http.errors[profile.index()];
            let report = HttpErrorReport {
                profile,
                class,
                code,
            };
            ctx.info_fmt(format_args!("{report}"));
            Ok(Outcome::Done)
        }
        (_, form) => undefined_form(form),
    }
}

fn set(ctx: &mut Ctx<'_>, p: HttpProfileId, setting: HttpSetting) -> Result<(), CmeError> {
    let prof = &mut ctx.module.http.profiles[p.index()];
    match setting {
        HttpSetting::ServerIp(v) => prof.server_ip = v.as_str().to_string(),
        HttpSetting::ServerName(v) => prof.server_name = v.as_str().to_string(),
        HttpSetting::User(v) => prof.user = v.as_str().to_string(),
        HttpSetting::Password(v) => prof.password = Zeroizing::new(v.expose().to_string()),
        HttpSetting::Authentication(a) => prof.auth = a,
        HttpSetting::Port(port) => prof.port = Some(port.get()),
        HttpSetting::Secure {
            enabled,
            security_profile,
        } => {
            prof.secure = enabled;
            if let Some(s) = security_profile {
                prof.security_profile = s;
            }
        }
        HttpSetting::Timeout(t) => prof.timeout = t,
        HttpSetting::CustomHeader(spec) => {
            let mut parts = spec.as_str().splitn(3, ':');
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
    }
    Ok(())
}

fn read(ctx: &mut Ctx<'_>, p: HttpProfileId, op: HttpOp) -> Result<(), CmeError> {
    let prof = ctx.module.http.profiles[p.index()].clone();
    let value = match op {
        HttpOp::ServerIp => format!("\"{}\"", prof.server_ip),
        HttpOp::ServerName => format!("\"{}\"", prof.server_name),
        HttpOp::User => format!("\"{}\"", prof.user),
        // The password is write-only.
        HttpOp::Password => return Err(CmeError::OperationNotAllowed),
        HttpOp::Authentication => prof.auth.to_string(),
        HttpOp::Port => effective_port(&prof).to_string(),
        HttpOp::Secure => format!("{},{}", u8::from(prof.secure), prof.security_profile),
        HttpOp::Timeout => prof.timeout.seconds().to_string(),
        HttpOp::CustomHeader => {
            for (i, h) in prof.headers.iter().enumerate() {
                if let Some((n, v)) = h {
                    ctx.info_fmt(format_args!("+UHTTP: {p},9,\"{i}:{n}:{v}\""));
                }
            }
            return Ok(());
        }
    };
    ctx.info_fmt(format_args!("+UHTTP: {p},{op},{value}"));
    Ok(())
}

fn effective_port(prof: &HttpProfile) -> u16 {
    prof.port.unwrap_or(if prof.secure { 443 } else { 80 })
}

fn request(ctx: &mut Ctx<'_>, req: HttpRequest) -> Result<(), CmeError> {
    let p = req.profile.index();
    let cmd = req.action.command();
    let method = cmd.method();
    let path = req.path.as_str().to_string();
    if !path.starts_with('/') || path.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(CmeError::OperationNotSupported);
    }
    let (tag, file) = match &req.action {
        HttpAction::FirmwareDownload => (Tag::Foat, PACKAGE.to_string()),
        HttpAction::Head { response }
        | HttpAction::Get { response }
        | HttpAction::Delete { response }
        | HttpAction::Put { response, .. }
        | HttpAction::PostFile { response, .. }
        | HttpAction::PostData { response, .. } => {
            let f = if response.is_empty() {
                format!("http_last_response_{p}")
            } else {
                response.as_str().to_string()
            };
            validate_name(&f).map_err(|_| CmeError::OperationNotSupported)?;
            (Tag::User, f)
        }
    };
    let body = match &req.action {
        HttpAction::Put {
            send, content_type, ..
        }
        | HttpAction::PostFile {
            send, content_type, ..
        } => {
            let name = send.as_str();
            if ctx
                .module
                .fs
                .size(Tag::User, name)
                .is_ok_and(|n| n > MAX_SEND_FILE)
            {
                ctx.module.http.errors[p] = err::TOO_LARGE;
                return Err(CmeError::OperationNotAllowed);
            }
            match ctx.module.fs.read(Tag::User, name) {
                Ok(b) => Some((b, content_type.media_type().to_string())),
                Err(_) => {
                    ctx.module.http.errors[p] = err::NO_FILE;
                    return Err(CmeError::FileNotFound);
                }
            }
        }
        HttpAction::PostData {
            data, content_type, ..
        } => Some((
            data.as_str().as_bytes().to_vec(),
            content_type.media_type().to_string(),
        )),
        _ => None,
    };
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
        Some(super::tls_profile::tls_settings(
            ctx,
            prof.security_profile.index(),
        )?)
    } else {
        None
    };
    // The test bench's one-shot failures, where the exchange would meet them: the lookup of a
    // name, then the handshake.
    let fault =
        if host.parse::<std::net::IpAddr>().is_err() && ctx.module.faults.take_dns("+UHTTPC") {
            Some(err::DNS)
        } else if tls.is_some() && ctx.module.faults.take_tls("+UHTTPC") {
            Some(err::TLS)
        } else {
            None
        };
    if let Some(error) = fault {
        ctx.module.http.errors[p] = error;
        let done = crate::http::sink::HttpDone::failed(error);
        let urc = crate::http::outcome_urc(req.profile, cmd, &done);
        let channel = ctx.channel;
        ctx.module.post_urc(channel, urc.into_bytes());
        return Ok(());
    }
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
        basic_auth: (prof.auth == HttpAuthentication::Basic)
            .then(|| (prof.user.as_str(), prof.password.as_str())),
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
    let deadline = ctx.now.mono() + Duration::from_secs(u64::from(prof.timeout.seconds()));
    let abandoned = Abandoned::default();
    let fota = cmd == HttpCommand::FirmwareDownload;
    let sink = ResponseSink::new(method, free, upload, fota, abandoned.clone());
    let cut_left = ctx.module.faults.take_download_cut();
    let id = ctx.module.start_net_job(NetJob {
        target: Target { host, port, tls },
        request,
        deadline,
        sink,
        cut_left,
        cut: false,
    });
    ctx.module.http.errors[p] = err::NONE;
    ctx.module.http.in_flight.insert(
        id,
        InFlight {
            channel: ctx.channel,
            profile: req.profile,
            cmd,
            deadline: Some(deadline),
            abandoned,
        },
    );
    Ok(())
}
