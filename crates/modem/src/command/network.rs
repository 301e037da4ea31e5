//! The always-registered LTE network (at-contract §1; u-blox AT manual ch. 7 and 18): operator
//! selection, registration status, attach, signal quality, PDP contexts, and the persistent
//! radio settings (`+UMNOPROF`, `+URAT`, `+UBANDMASK`, `+CGDCONT`).
//!
//! With `AT+CFUN=1` the module is registered on the emulated home network "sealcell"
//! (PLMN 001/01, LTE); with `AT+CFUN=0` or `4`, or `AT+COPS=2`, it is not.

use sealcell_at::CmeError;
use sealcell_at::syntax::Form;

use super::{CmdResult, Ctx, Outcome, undefined_form};
use crate::module::Module;
use crate::nvm::PdpContext;

const OPERATOR_LONG: &str = "sealcell";
const OPERATOR_SHORT: &str = "sealcell";
const OPERATOR_NUMERIC: &str = "00101";
/// Access technology 7: E-UTRAN.
const ACT_LTE: i64 = 7;
const TAC: &str = "0001";
const CELL_ID: &str = "01A2D001";

/// A network-service or packet-domain command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// `+COPS`: operator selection.
    Cops,
    /// `+CREG`: CS registration status.
    Creg,
    /// `+CGREG`: GPRS registration status.
    Cgreg,
    /// `+CEREG`: EPS registration status.
    Cereg,
    /// `+CGATT`: packet-domain attach.
    Cgatt,
    /// `+CSQ`: signal quality.
    Csq,
    /// `+CGACT`: PDP context activation.
    Cgact,
    /// `+CGDCONT`: PDP context definition (persistent).
    Cgdcont,
    /// `+UMNOPROF`: MNO profile (persistent).
    Umnoprof,
    /// `+URAT`: radio access technology selection (persistent).
    Urat,
    /// `+UBANDMASK`: band selection (persistent).
    Ubandmask,
}

impl Cmd {
    pub(crate) fn from_name(name: &str) -> Option<Cmd> {
        Some(match name {
            "+COPS" => Cmd::Cops,
            "+CREG" => Cmd::Creg,
            "+CGREG" => Cmd::Cgreg,
            "+CEREG" => Cmd::Cereg,
            "+CGATT" => Cmd::Cgatt,
            "+CSQ" => Cmd::Csq,
            "+CGACT" => Cmd::Cgact,
            "+CGDCONT" => Cmd::Cgdcont,
            "+UMNOPROF" => Cmd::Umnoprof,
            "+URAT" => Cmd::Urat,
            "+UBANDMASK" => Cmd::Ubandmask,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy)]
enum Reg {
    Cs,
    Gprs,
    Eps,
}

impl Reg {
    fn prefix(self) -> &'static str {
        match self {
            Reg::Cs => "+CREG",
            Reg::Gprs => "+CGREG",
            Reg::Eps => "+CEREG",
        }
    }

    fn n(self, m: &Module) -> i64 {
        match self {
            Reg::Cs => m.radio.creg_n,
            Reg::Gprs => m.radio.cgreg_n,
            Reg::Eps => m.radio.cereg_n,
        }
    }

    fn set_n(self, m: &mut Module, n: i64) {
        match self {
            Reg::Cs => m.radio.creg_n = n,
            Reg::Gprs => m.radio.cgreg_n = n,
            Reg::Eps => m.radio.cereg_n = n,
        }
    }

    /// The status fields after `<n>` (read form) or alone (URC): `<stat>[,<tac>,<ci>,<AcT>]`.
    fn status(self, m: &Module, n: i64) -> String {
        let stat = u8::from(m.radio.registered());
        if n >= 2 && m.radio.registered() {
            format!("{stat},\"{TAC}\",\"{CELL_ID}\",{ACT_LTE}")
        } else {
            stat.to_string()
        }
    }
}

pub(crate) fn execute(cmd: Cmd, form: Form<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    match (cmd, form) {
        (Cmd::Cops, Form::Read) => {
            let r = &ctx.module.radio;
            if r.registered() {
                let oper = match r.cops_format {
                    1 => OPERATOR_SHORT,
                    2 => OPERATOR_NUMERIC,
                    _ => OPERATOR_LONG,
                };
                let line = format!(
                    "+COPS: {},{},\"{oper}\",{ACT_LTE}",
                    r.cops_mode, r.cops_format
                );
                ctx.info(line.as_bytes());
            } else {
                let mode = r.cops_mode;
                ctx.info_fmt(format_args!("+COPS: {mode}"));
            }
        }
        (Cmd::Cops, Form::Set(args)) => {
            let mut r = args.reader();
            let mode = r.int(0..=4)?;
            let format = r.opt_int(0..=2)?;
            let oper = r.opt_string(16)?;
            let _act = r.opt_int(0..=9)?;
            r.finish()?;
            if let Some(o) = oper {
                if ![OPERATOR_LONG, OPERATOR_SHORT, OPERATOR_NUMERIC].contains(&o) {
                    // Manual selection of a network that is not there.
                    return Err(CmeError::OperationNotAllowed);
                }
            }
            let before = ctx.module.radio.registered();
            if let Some(f) = format {
                ctx.module.radio.cops_format = f;
            }
            if mode != 3 {
                ctx.module.radio.cops_mode = if mode == 4 { 0 } else { mode };
            }
            announce_registration(ctx.module, before);
        }
        (Cmd::Cops, Form::Test) => {
            let line = format!(
                "+COPS: (2,\"{OPERATOR_LONG}\",\"{OPERATOR_SHORT}\",\"{OPERATOR_NUMERIC}\",{ACT_LTE}),,(0-4),(0-2)"
            );
            ctx.info(line.as_bytes());
        }
        (Cmd::Creg, form) => return registration(Reg::Cs, 2, form, ctx),
        (Cmd::Cgreg, form) => return registration(Reg::Gprs, 2, form, ctx),
        (Cmd::Cereg, form) => return registration(Reg::Eps, 3, form, ctx),
        (Cmd::Cgatt, Form::Read) => {
            let a = u8::from(ctx.module.radio.attached());
            ctx.info_fmt(format_args!("+CGATT: {a}"));
        }
        (Cmd::Cgatt, Form::Set(args)) => {
            let mut r = args.reader();
            let state = r.int(0..=1)?;
            r.finish()?;
            if state == 1 && !ctx.module.radio.registered() {
                return Err(CmeError::OperationNotAllowed);
            }
            ctx.module.radio.attach_wanted = state == 1;
        }
        (Cmd::Cgatt, Form::Test) => ctx.info(b"+CGATT: (0-1)"),
        (Cmd::Csq, Form::Action) => {
            let line: &[u8] = if ctx.module.radio.registered() {
                b"+CSQ: 24,99"
            } else {
                b"+CSQ: 99,99"
            };
            ctx.info(line);
        }
        (Cmd::Csq, Form::Test) => ctx.info(b"+CSQ: (0-31,99),(99)"),
        (Cmd::Cgact, Form::Read) => {
            let attached = ctx.module.radio.attached();
            let cids: Vec<i64> = ctx
                .module
                .nvm
                .values
                .contexts
                .keys()
                .filter_map(|k| k.parse().ok())
                .collect();
            for cid in cids {
                let active = u8::from(attached && !ctx.module.radio.deactivated.contains(&cid));
                ctx.info_fmt(format_args!("+CGACT: {cid},{active}"));
            }
        }
        (Cmd::Cgact, Form::Set(args)) => {
            let mut r = args.reader();
            let state = r.int(0..=1)?;
            let cid = r.opt_int(1..=8)?;
            r.finish()?;
            if state == 1 && !ctx.module.radio.attached() {
                return Err(CmeError::OperationNotAllowed);
            }
            let cids: Vec<i64> = match cid {
                Some(c) => vec![c],
                None => ctx
                    .module
                    .nvm
                    .values
                    .contexts
                    .keys()
                    .filter_map(|k| k.parse().ok())
                    .collect(),
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
        (Cmd::Umnoprof, Form::Read) => {
            let p = ctx.module.nvm.values.mno_profile;
            ctx.info_fmt(format_args!("+UMNOPROF: {p}"));
        }
        (Cmd::Umnoprof, Form::Set(args)) => {
            let mut r = args.reader();
            let p = r.int(0..=100)?;
            r.finish()?;
            ctx.update_nvm(|n| n.mno_profile = p)?;
        }
        (Cmd::Umnoprof, Form::Test) => ctx.info(b"+UMNOPROF: (0-100)"),
        (Cmd::Urat, Form::Read) => {
            let list: Vec<String> = ctx
                .module
                .nvm
                .values
                .rat
                .iter()
                .map(i64::to_string)
                .collect();
            let line = format!("+URAT: {}", list.join(","));
            ctx.info(line.as_bytes());
        }
        (Cmd::Urat, Form::Set(args)) => {
            let mut r = args.reader();
            let mut rats = vec![r.int(0..=6)?];
            for _ in 0..2 {
                if let Some(v) = r.opt_int(0..=6)? {
                    rats.push(v);
                }
            }
            r.finish()?;
            ctx.update_nvm(|n| n.rat = rats)?;
        }
        (Cmd::Urat, Form::Test) => ctx.info(b"+URAT: (0-6),(0-6),(0-6)"),
        (Cmd::Ubandmask, Form::Read) => {
            let parts: Vec<String> = ctx
                .module
                .nvm
                .values
                .band_masks
                .iter()
                .map(|(rat, mask)| format!("{rat},{mask}"))
                .collect();
            let line = format!("+UBANDMASK: {}", parts.join(","));
            ctx.info(line.as_bytes());
        }
        (Cmd::Ubandmask, Form::Set(args)) => {
            let mut r = args.reader();
            let rat = r.int(0..=3)?;
            let mask = r.int(1..=i64::MAX)?;
            let _second = r.opt_int(0..=i64::MAX)?;
            r.finish()?;
            let mask = u64::try_from(mask).map_err(|_| CmeError::OperationNotSupported)?;
            ctx.update_nvm(|n| {
                n.band_masks.insert(rat, mask);
            })?;
        }
        (Cmd::Ubandmask, Form::Test) => ctx.info(b"+UBANDMASK: (0-3),(1-9223372036854775807)"),
        (_, form) => return undefined_form(form),
    }
    Ok(Outcome::Done)
}

fn registration(reg: Reg, max_n: i64, form: Form<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    match form {
        Form::Read => {
            let n = reg.n(ctx.module);
            let line = format!("{}: {n},{}", reg.prefix(), reg.status(ctx.module, n));
            ctx.info(line.as_bytes());
        }
        Form::Set(args) => {
            let mut r = args.reader();
            let n = r.opt_int(0..=max_n)?.unwrap_or(0);
            r.finish()?;
            reg.set_n(ctx.module, n);
        }
        Form::Test => {
            let line = format!("{}: (0-{max_n})", reg.prefix());
            ctx.info(line.as_bytes());
        }
        form => return undefined_form(form),
    }
    Ok(Outcome::Done)
}

/// Sends the registration URCs a change of registration causes (`+CREG: <stat>` and its
/// siblings, to channels... every channel: the network is the module's).
pub(crate) fn announce_registration(module: &mut Module, before: bool) {
    if module.radio.registered() == before {
        return;
    }
    if !module.radio.registered() {
        module.radio.deactivated.clear();
    }
    for reg in [Reg::Cs, Reg::Gprs, Reg::Eps] {
        let n = reg.n(module);
        if n >= 1 {
            let urc = format!("{}: {}", reg.prefix(), reg.status(module, n));
            module.broadcast_urc(urc.as_bytes());
        }
    }
}

fn cgdcont(form: Form<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    match form {
        Form::Read => {
            let lines: Vec<String> = ctx
                .module
                .nvm
                .values
                .contexts
                .iter()
                .map(|(cid, c)| {
                    format!(
                        "+CGDCONT: {cid},\"{}\",\"{}\",\"{}\",{},{}",
                        c.pdp_type, c.apn, c.address, c.d_comp, c.h_comp
                    )
                })
                .collect();
            for l in lines {
                ctx.info(l.as_bytes());
            }
        }
        Form::Set(args) => {
            let mut r = args.reader();
            let cid = r.int(1..=8)?;
            let pdp_type = r.opt_string(8)?;
            let apn = r.opt_string(99)?;
            let address = r.opt_string(63)?;
            let d_comp = r.opt_int(0..=2)?;
            let h_comp = r.opt_int(0..=4)?;
            r.finish()?;
            let key = cid.to_string();
            match pdp_type {
                None => {
                    ctx.update_nvm(|n| {
                        n.contexts.remove(&key);
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
