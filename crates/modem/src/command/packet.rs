//! The packet domain (at-contract §1, §1.1; 3GPP TS 27.007 §10; u-blox AT manual ch. 18):
//! PDP context definition (`+CGDCONT`, persistent), activation (`+CGACT`), the dynamic
//! parameters the network gave (`+CGCONTRDP`), the address (`+CGPADDR`) and the authentication
//! a host asks for (`+UAUTHREQ`, persistent, the password write-only).
//!
//! On LTE the default bearer comes with the attach, so every defined context is active while
//! the module is attached, unless the host deactivated it (`AT+CGACT=0,<cid>`).

use std::net::Ipv4Addr;

use sealcell_at::CmeError;
use sealcell_at::syntax::Form;
use sealcell_store::crypto::{self, NONCE_LEN};

use super::{CmdResult, Ctx, Outcome, undefined_form};
use crate::identity::pdn;
use crate::nvm::{PdpAuth, PdpContext};
use crate::radio::home::DEFAULT_APN;

/// A packet-domain command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// `+CGACT`: PDP context activation.
    Cgact,
    /// `+CGDCONT`: PDP context definition (persistent).
    Cgdcont,
    /// `+CGCONTRDP`: dynamic parameters of active contexts.
    Cgcontrdp,
    /// `+CGPADDR`: context addresses.
    Cgpaddr,
    /// `+UAUTHREQ`: PDP authentication (persistent).
    Uauthreq,
}

impl Cmd {
    pub(crate) fn from_name(name: &str) -> Option<Cmd> {
        Some(match name {
            "+CGACT" => Cmd::Cgact,
            "+CGDCONT" => Cmd::Cgdcont,
            "+CGCONTRDP" => Cmd::Cgcontrdp,
            "+CGPADDR" => Cmd::Cgpaddr,
            "+UAUTHREQ" => Cmd::Uauthreq,
            _ => return None,
        })
    }
}

/// **TOBY-L2: context ids 1..8.**
const CIDS: std::ops::RangeInclusive<i64> = 1..=8;

/// The EPS bearer id of context `cid`: the default bearer of the first is 5 (ids 0..4 are
/// reserved by 24.007), the others follow.
fn bearer_id(cid: i64) -> i64 {
    cid + 4
}

/// **TOBY-L2: user name and password of at most 64 characters.**
///
/// # Security
/// Caps what one `+UAUTHREQ` can store.
const MAX_AUTH_TEXT: usize = 64;

pub(crate) fn execute(cmd: Cmd, form: Form<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    match (cmd, form) {
        (Cmd::Cgact, Form::Read) => {
            for cid in defined(ctx) {
                let active = u8::from(active(ctx, cid));
                ctx.info_fmt(format_args!("+CGACT: {cid},{active}"));
            }
        }
        (Cmd::Cgact, Form::Set(args)) => {
            let mut r = args.reader();
            let state = r.int(0..=1)?;
            let cid = r.opt_int(CIDS)?;
            r.finish()?;
            if state == 1 && !ctx.module.radio.attached() {
                return Err(CmeError::OperationNotAllowed);
            }
            let cids: Vec<i64> = match cid {
                Some(c) if !defined(ctx).contains(&c) => {
                    // 27.007: activating an undefined context is an error.
                    return Err(CmeError::OperationNotAllowed);
                }
                Some(c) => vec![c],
                None => defined(ctx),
            };
            let deactivated = &mut ctx.module.radio.deactivated;
            for c in cids {
                deactivated.retain(|&d| d != c);
                if state == 0 {
                    deactivated.push(c);
                }
            }
        }
        (Cmd::Cgact, Form::Test) => ctx.info(b"+CGACT: (0-1)"),
        (Cmd::Cgdcont, form) => return cgdcont(form, ctx),
        (Cmd::Cgcontrdp, Form::Action) => {
            for cid in defined(ctx) {
                if active(ctx, cid) {
                    contrdp_line(ctx, cid);
                }
            }
        }
        (Cmd::Cgcontrdp, Form::Set(args)) => {
            let mut r = args.reader();
            let cid = r.int(CIDS)?;
            r.finish()?;
            if !active(ctx, cid) {
                return Err(CmeError::OperationNotAllowed);
            }
            contrdp_line(ctx, cid);
        }
        (Cmd::Cgcontrdp, Form::Test) => {
            let list = id_list(&active_cids(ctx));
            ctx.info_fmt(format_args!("+CGCONTRDP: ({list})"));
        }
        (Cmd::Cgpaddr, Form::Action) => {
            for cid in defined(ctx) {
                paddr_line(ctx, cid);
            }
        }
        (Cmd::Cgpaddr, Form::Set(args)) => {
            let mut r = args.reader();
            let mut cids = vec![r.int(CIDS)?];
            while let Some(c) = r.opt_int(CIDS)? {
                cids.push(c);
                if cids.len() > 8 {
                    return Err(CmeError::OperationNotSupported);
                }
            }
            r.finish()?;
            for cid in cids {
                paddr_line(ctx, cid);
            }
        }
        (Cmd::Cgpaddr, Form::Test) => {
            let list = id_list(&defined(ctx));
            ctx.info_fmt(format_args!("+CGPADDR: ({list})"));
        }
        (Cmd::Uauthreq, form) => return uauthreq(form, ctx),
        (_, form) => return undefined_form(form),
    }
    Ok(Outcome::Done)
}

/// The defined context ids, ascending.
fn defined(ctx: &Ctx<'_>) -> Vec<i64> {
    let mut cids: Vec<i64> = ctx
        .module
        .nvm
        .values
        .contexts
        .keys()
        .filter_map(|k| k.parse().ok())
        .collect();
    cids.sort_unstable();
    cids
}

fn active(ctx: &Ctx<'_>, cid: i64) -> bool {
    let radio = &ctx.module.radio;
    radio.attached()
        && !radio.deactivated.contains(&cid)
        && ctx
            .module
            .nvm
            .values
            .contexts
            .contains_key(&cid.to_string())
}

fn active_cids(ctx: &Ctx<'_>) -> Vec<i64> {
    defined(ctx)
        .into_iter()
        .filter(|&c| active(ctx, c))
        .collect()
}

fn id_list(cids: &[i64]) -> String {
    cids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The address of an active context: the module's own (every context shares the one bearer
/// address of the emulated network).
fn address(ctx: &Ctx<'_>, cid: i64) -> Option<Ipv4Addr> {
    active(ctx, cid).then(|| ctx.module.identity.pdp_address())
}

fn contrdp_line(ctx: &mut Ctx<'_>, cid: i64) {
    let Some(addr) = address(ctx, cid) else {
        return;
    };
    let apn = match ctx.module.nvm.values.contexts.get(&cid.to_string()) {
        Some(c) if !c.apn.is_empty() => c.apn.clone(),
        // The network names the APN it chose when the host asked for none.
        _ => DEFAULT_APN.to_string(),
    };
    let line = format!(
        "+CGCONTRDP: {cid},{},\"{apn}\",\"{addr}.255.255.255.255\",\"{}\",\"{}\",\"{}\"",
        bearer_id(cid),
        pdn::GATEWAY,
        pdn::DNS_PRIMARY,
        pdn::DNS_SECONDARY,
    );
    ctx.info(line.as_bytes());
}

fn paddr_line(ctx: &mut Ctx<'_>, cid: i64) {
    // An inactive or undefined context has no address: 27.007 prints the cid alone.
    match address(ctx, cid) {
        Some(addr) => ctx.info_fmt(format_args!("+CGPADDR: {cid},\"{addr}\"")),
        None => ctx.info_fmt(format_args!("+CGPADDR: {cid}")),
    }
}

fn cgdcont(form: Form<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    match form {
        Form::Read => {
            let lines: Vec<String> = defined(ctx)
                .into_iter()
                .filter_map(|cid| {
                    let c = ctx.module.nvm.values.contexts.get(&cid.to_string())?;
                    Some(format!(
                        "+CGDCONT: {cid},\"{}\",\"{}\",\"{}\",{},{}",
                        c.pdp_type, c.apn, c.address, c.d_comp, c.h_comp
                    ))
                })
                .collect();
            for l in lines {
                ctx.info(l.as_bytes());
            }
        }
        Form::Set(args) => {
            let mut r = args.reader();
            let cid = r.int(CIDS)?;
            let pdp_type = r.opt_string(8)?;
            let apn = r.opt_string(99)?;
            let address = r.opt_string(63)?;
            let d_comp = r.opt_int(0..=2)?;
            let h_comp = r.opt_int(0..=4)?;
            r.finish()?;
            let key = cid.to_string();
            match pdp_type {
                None => {
                    // The context goes, and the authentication that belonged to it.
                    ctx.update_nvm(|n| {
                        n.contexts.remove(&key);
                        n.pdp_auth.remove(&key);
                    })?;
                }
                Some(t) => {
                    let t = t.to_ascii_uppercase();
                    if !["IP", "IPV6", "IPV4V6", "NONIP"].contains(&t.as_str()) {
                        return Err(CmeError::OperationNotSupported);
                    }
                    let context = PdpContext {
                        pdp_type: t,
                        apn: apn.unwrap_or("").to_string(),
                        address: address.unwrap_or("0.0.0.0").to_string(),
                        d_comp: d_comp.unwrap_or(0),
                        h_comp: h_comp.unwrap_or(0),
                    };
                    ctx.update_nvm(|n| {
                        n.contexts.insert(key, context);
                    })?;
                }
            }
        }
        Form::Test => {
            for t in ["IP", "IPV6", "IPV4V6", "NONIP"] {
                ctx.info_fmt(format_args!("+CGDCONT: (1-8),\"{t}\",,,(0-2),(0-4)"));
            }
        }
        form => return undefined_form(form),
    }
    Ok(Outcome::Done)
}

/// `AT+UAUTHREQ=<cid>,<auth_type>[,"<user>","<password>"]` (u-blox AT manual, "PDP context
/// authentication"): kept in NVM; the read gives the password back empty, as a real module does.
fn uauthreq(form: Form<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    match form {
        Form::Set(args) => {
            let mut r = args.reader();
            let cid = r.int(CIDS)?;
            let auth_type = r.int(0..=3)?;
            let user = r.opt_string(MAX_AUTH_TEXT)?.unwrap_or("").to_string();
            let password =
                zeroize::Zeroizing::new(r.opt_string(MAX_AUTH_TEXT)?.unwrap_or("").to_string());
            r.finish()?;
            if !defined(ctx).contains(&cid) {
                // TOBY-L2 manual: an error "if the input <cid> is ... not yet defined".
                return Err(CmeError::OperationNotAllowed);
            }
            let auth = PdpAuth {
                auth_type,
                user,
                password_sealed: seal_password(ctx, cid, password.as_bytes())?,
            };
            ctx.update_nvm(|n| {
                n.pdp_auth.insert(cid.to_string(), auth);
            })?;
        }
        Form::Read => {
            let lines: Vec<String> = defined(ctx)
                .into_iter()
                .map(|cid| {
                    let (auth_type, user) =
                        match ctx.module.nvm.values.pdp_auth.get(&cid.to_string()) {
                            Some(a) => (a.auth_type, a.user.clone()),
                            None => (0, String::new()),
                        };
                    format!("+UAUTHREQ: {cid},{auth_type},\"{user}\",\"\"")
                })
                .collect();
            for l in lines {
                ctx.info(l.as_bytes());
            }
        }
        Form::Test => ctx.info(b"+UAUTHREQ: (1-8),(0-3),,"),
        form => return undefined_form(form),
    }
    Ok(Outcome::Done)
}

/// Seals a PDP password for NVM: AES-256-GCM under a device-bound key, with the cid as AAD so a
/// sealed value cannot be moved to another context. An empty password stays empty.
fn seal_password(ctx: &Ctx<'_>, cid: i64, password: &[u8]) -> Result<String, CmeError> {
    if password.is_empty() {
        return Ok(String::new());
    }
    let nonce: [u8; NONCE_LEN] = crypto::random().map_err(|e| {
        tracing::error!(error = %e, "no randomness for a PDP password nonce");
        CmeError::MemoryFailure
    })?;
    let aad = format!("uauthreq/{cid}");
    let sealed = crypto::encrypt(ctx.module.nvm_key(), &nonce, aad.as_bytes(), password);
    let mut blob = nonce.to_vec();
    blob.extend_from_slice(&sealed);
    Ok(hex::encode(blob))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use sealcell_store::crypto;

    use crate::{Channel, Module, ModuleConfig};

    fn module(dir: &std::path::Path) -> Module {
        let mut config = ModuleConfig::new(dir);
        config.kdf = sealcell_store::crypto::KdfPolicy::INSECURE_FAST_FOR_TESTS;
        Module::open(config, crate::Now::virtual_start(Instant::now())).unwrap()
    }

    fn at(m: &mut Module, c: &mut Channel, line: &str) -> String {
        let mut out = Vec::new();
        c.feed(
            m,
            format!("{line}\r").as_bytes(),
            crate::Now::virtual_start(Instant::now()),
            &mut out,
        );
        String::from_utf8(out).unwrap()
    }

    /// The PDP password is in `nvm.toml` only sealed, under the device-bound key, bound to its
    /// cid; it survives a restart and is never read back.
    #[test]
    fn the_pdp_password_is_sealed_at_rest() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = module(dir.path());
        let mut c = Channel::new(&mut m);
        at(&mut m, &mut c, "ATE0");
        assert_eq!(
            at(&mut m, &mut c, "AT+UAUTHREQ=1,1,\"alice\",\"hunter2-pdp\""),
            "\r\nOK\r\n"
        );
        let nvm = std::fs::read_to_string(dir.path().join("nvm.toml")).unwrap();
        assert!(!nvm.contains("hunter2"), "{nvm}");
        assert!(nvm.contains("alice"), "{nvm}");

        let auth = m.nvm.values.pdp_auth.get("1").unwrap().clone();
        let blob = hex::decode(&auth.password_sealed).unwrap();
        let (nonce, sealed) = blob.split_at(crypto::NONCE_LEN);
        let nonce: [u8; crypto::NONCE_LEN] = nonce.try_into().unwrap();
        let opened = crypto::decrypt(m.nvm_key(), &nonce, b"uauthreq/1", sealed).unwrap();
        assert_eq!(opened.as_slice(), b"hunter2-pdp");
        // Moved to another cid, it does not open.
        assert!(crypto::decrypt(m.nvm_key(), &nonce, b"uauthreq/2", sealed).is_none());
        assert!(!format!("{auth:?}").contains("hunter2"));

        drop(c);
        let mut m = module(dir.path());
        let mut c = Channel::new(&mut m);
        at(&mut m, &mut c, "ATE0");
        assert_eq!(
            at(&mut m, &mut c, "AT+UAUTHREQ?"),
            "\r\n+UAUTHREQ: 1,1,\"alice\",\"\"\r\n\r\nOK\r\n"
        );
    }
}
