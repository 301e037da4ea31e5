//! The always-registered LTE network (at-contract §1, §1.1; u-blox AT manual ch. 7 and 18;
//! 3GPP TS 27.007 §7 and §10): operator selection, the registration reports, attach, the
//! signalling connection, signal quality and the serving cell, and the persistent radio
//! settings (`+UMNOPROF`, `+URAT`, `+UBANDMASK`). PDP contexts are in [`super::packet`].
//!
//! With `AT+CFUN=1` the module is registered on the emulated home network "sealcell"
//! (PLMN 001/01, LTE); with `AT+CFUN=0` or `4`, or `AT+COPS=2`, it is not. The network itself
//! lives in [`crate::radio`]; this module parses and formats.

use sealcell_at::CmeError;
use sealcell_at::syntax::Form;

use super::{CmdResult, Ctx, Outcome, undefined_form};
use crate::radio::home::{MCC, MNC, OPERATOR_LONG, OPERATOR_NUMERIC, OPERATOR_SHORT};
use crate::radio::{ACT_LTE, Reg, cell, cesq_rsrp, cesq_rsrq, csq_rssi};

/// A network-service command.
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
    /// `+CSCON`: signalling connection status.
    Cscon,
    /// `+CEER`: extended error report.
    Ceer,
    /// `+CSQ`: signal quality.
    Csq,
    /// `+CESQ`: extended signal quality.
    Cesq,
    /// `+UCGED`: cell environment description.
    Ucged,
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
            "+CSCON" => Cmd::Cscon,
            "+CEER" => Cmd::Ceer,
            "+CSQ" => Cmd::Csq,
            "+CESQ" => Cmd::Cesq,
            "+UCGED" => Cmd::Ucged,
            "+UMNOPROF" => Cmd::Umnoprof,
            "+URAT" => Cmd::Urat,
            "+UBANDMASK" => Cmd::Ubandmask,
            _ => return None,
        })
    }
}

/// `+UCGED` modes (u-blox manual, "Cell environment description"): 0 off, 2 short form
/// (TOBY-L2, LARA-R6 and SARA-R5 report the serving cell in it), 5 the SARA-R4 form.
const UCGED_MODES: [i64; 3] = [0, 2, 5];

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
            if let Some(o) = oper
                && ![OPERATOR_LONG, OPERATOR_SHORT, OPERATOR_NUMERIC].contains(&o)
            {
                // Manual selection of a network that is not there.
                return Err(CmeError::OperationNotAllowed);
            }
            let before = ctx.module.radio.snapshot();
            if let Some(f) = format {
                ctx.module.radio.cops_format = f;
            }
            if mode != 3 {
                ctx.module.radio.cops_mode = if mode == 4 { 0 } else { mode };
            }
            ctx.module.radio_changed(before);
        }
        (Cmd::Cops, Form::Test) => {
            let line = format!(
                "+COPS: (2,\"{OPERATOR_LONG}\",\"{OPERATOR_SHORT}\",\"{OPERATOR_NUMERIC}\",{ACT_LTE}),,(0-4),(0-2)"
            );
            ctx.info(line.as_bytes());
        }
        (Cmd::Creg, form) => return registration(Reg::Cs, form, ctx),
        (Cmd::Cgreg, form) => return registration(Reg::Gprs, form, ctx),
        (Cmd::Cereg, form) => return registration(Reg::Eps, form, ctx),
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
            let before = ctx.module.radio.snapshot();
            ctx.module.radio.attach_wanted = state == 1;
            ctx.module.radio_changed(before);
        }
        (Cmd::Cgatt, Form::Test) => ctx.info(b"+CGATT: (0-1)"),
        (Cmd::Cscon, Form::Set(args)) => {
            let mut r = args.reader();
            let n = r.opt_int(0..=1)?.unwrap_or(0);
            r.finish()?;
            ctx.module.radio.modes_mut(ctx.channel).cscon = n as u8;
        }
        (Cmd::Cscon, Form::Read) => {
            let n = ctx.module.radio.modes(ctx.channel).cscon;
            let mode = u8::from(ctx.module.radio.rrc_connected());
            ctx.info_fmt(format_args!("+CSCON: {n},{mode}"));
        }
        (Cmd::Cscon, Form::Test) => ctx.info(b"+CSCON: (0-1)"),
        (Cmd::Ceer, Form::Action) => ctx.info(b"+CEER: \"No report available\""),
        (Cmd::Ceer, Form::Test) => {}
        (Cmd::Csq, Form::Action) => {
            if ctx.module.radio.registered() {
                let rssi = csq_rssi(ctx.module.radio.rsrp_dbm);
                ctx.info_fmt(format_args!("+CSQ: {rssi},99"));
            } else {
                ctx.info(b"+CSQ: 99,99");
            }
        }
        (Cmd::Csq, Form::Test) => ctx.info(b"+CSQ: (0-31,99),(99)"),
        (Cmd::Cesq, Form::Action) => {
            if ctx.module.radio.registered() {
                let (rsrq, rsrp) = (cesq_rsrq(), cesq_rsrp(ctx.module.radio.rsrp_dbm));
                ctx.info_fmt(format_args!("+CESQ: 99,99,255,255,{rsrq},{rsrp}"));
            } else {
                ctx.info(b"+CESQ: 99,99,255,255,255,255");
            }
        }
        (Cmd::Cesq, Form::Test) => {
            ctx.info(b"+CESQ: (0-63,99),(0-7,99),(0-96,255),(0-49,255),(0-34,255),(0-97,255)")
        }
        (Cmd::Ucged, form) => return ucged(form, ctx),
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

fn registration(reg: Reg, form: Form<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    match form {
        Form::Read => {
            let n = ctx.module.radio.modes(ctx.channel).n(reg);
            let fields = ctx.module.radio.report_fields(reg, n);
            ctx.info_fmt(format_args!("{}: {n},{fields}", reg.prefix()));
        }
        Form::Set(args) => {
            let mut r = args.reader();
            let n = r.opt_int(0..=i64::from(Reg::MAX_N))?.unwrap_or(0);
            r.finish()?;
            // In range 0..=5 by the reader.
            ctx.module.radio.modes_mut(ctx.channel).set_n(reg, n as u8);
        }
        Form::Test => {
            let line = format!("{}: (0-{})", reg.prefix(), Reg::MAX_N);
            ctx.info(line.as_bytes());
        }
        form => return undefined_form(form),
    }
    Ok(Outcome::Done)
}

/// `+UCGED`: the mode is the module's (it selects what the read reports).
fn ucged(form: Form<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    match form {
        Form::Set(args) => {
            let mut r = args.reader();
            let mode = r.int(0..=5)?;
            r.finish()?;
            if !UCGED_MODES.contains(&mode) {
                return Err(CmeError::OperationNotSupported);
            }
            ctx.module.radio.ucged_mode = mode;
        }
        Form::Read => {
            let mode = ctx.module.radio.ucged_mode;
            for line in ucged_report(
                mode,
                ctx.module.radio.registered(),
                ctx.module.radio.rsrp_dbm,
            ) {
                ctx.info(line.as_bytes());
            }
        }
        Form::Test => ctx.info(b"+UCGED: (0,2,5)"),
        form => return undefined_form(form),
    }
    Ok(Outcome::Done)
}

/// The lines of `AT+UCGED?` in `mode`, for the serving cell of [`crate::radio::cell`].
///
/// Mode 2 is the layout ubxlib parses for LARA-R6 and the u-blox manual gives for the LTE RATs
/// (`+UCGED: 2`, then `<RAT>,<svc>,<MCC>,<MNC>`, then `<EARFCN>,<Lband>,<ul_BW>,<dl_BW>,<TAC>,
/// <LcellId>,<P-CID>,<mTmsi>,<mmeGrId>,<mmeCode>,<RSRP>,<RSRQ>,<Lsinr>,<Lrrc>,<RI>,<CQI>,
/// <avg_rsrp>,<totalPuschPwr>,<avgPucchPwr>,<drx>,<l2w>,<volte_mode>,<meas_gap>,<tti_bundling>`):
/// bandwidths in resource blocks, TAC and cell id in hex, RSRP and RSRQ as the 3GPP indices
/// `+CESQ` also reports, 255 for what the emulator does not model. Mode 5 is the SARA-R4 form
/// (`+RSRP:`/`+RSRQ:` lines with dBm and dB values).
fn ucged_report(mode: i64, registered: bool, rsrp_dbm: i32) -> Vec<String> {
    const RAT_LTE: u8 = 4;
    const RESOURCE_BLOCKS: u8 = cell::BANDWIDTH_MHZ * 5;
    match (mode, registered) {
        (2, true) => {
            let (rsrp, rsrq) = (cesq_rsrp(rsrp_dbm), cesq_rsrq());
            vec![
                "+UCGED: 2".into(),
                format!("{RAT_LTE},0,{MCC:03},{MNC:02}"),
                format!(
                    "{},{},{RESOURCE_BLOCKS},{RESOURCE_BLOCKS},{:04x},{:x},{},00000000,ffff,ff,\
                     {rsrp},{rsrq},{}.00,255,255,255,{rsrp},255,255,0,255,255,0,0",
                    cell::EARFCN,
                    cell::BAND,
                    cell::TAC,
                    cell::CELL_ID,
                    cell::PCI,
                    cell::SINR_DB,
                ),
            ]
        }
        (5, true) => vec![
            format!(
                "+RSRP: {},{},\"{:04}.00\",",
                cell::PCI,
                cell::EARFCN,
                rsrp_dbm
            ),
            format!(
                "+RSRQ: {},{},\"{:03}.00\",",
                cell::PCI,
                cell::EARFCN,
                cell::RSRQ_DB
            ),
        ],
        // Off, or no serving cell to describe.
        _ => vec![format!("+UCGED: {mode}")],
    }
}
