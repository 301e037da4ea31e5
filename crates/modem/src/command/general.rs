//! Identification commands (at-contract §1; u-blox AT manual ch. 4).

use sealcell_at::CmeError;
use sealcell_at::syntax::Form;

use super::{CmdResult, Ctx, Outcome, undefined_form};

/// Software version number reported in the IMEISV (`AT+CGSN=2`).
const SVN: &str = "01";

/// An identification command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// `+CGMI` / `+GMI`: manufacturer, `u-blox`.
    Manufacturer,
    /// `+CGMM` / `+GMM`: model, e.g. `TOBY-L210`.
    Model,
    /// `+CGMR` / `+GMR`: firmware version, e.g. `17.00`.
    Revision,
    /// `+CGSN` / `+GSN`: IMEI (`=<snt>`: 0/1 IMEI, 2 IMEISV, 3 SVN, 255 IMEI + SVN).
    SerialNumber,
    /// `I`, `I0`: type number; `I9`: `<modem version>,<application version>`.
    Identification,
    /// `+CIMI`: the SIM's IMSI.
    Imsi,
    /// `+CCID`: the SIM's ICCID.
    Iccid,
}

impl Cmd {
    pub(crate) fn from_name(name: &str) -> Option<Cmd> {
        Some(match name {
            "+CGMI" | "+GMI" => Cmd::Manufacturer,
            "+CGMM" | "+GMM" => Cmd::Model,
            "+CGMR" | "+GMR" => Cmd::Revision,
            "+CGSN" | "+GSN" => Cmd::SerialNumber,
            "I" => Cmd::Identification,
            "+CIMI" => Cmd::Imsi,
            "+CCID" => Cmd::Iccid,
            _ => return None,
        })
    }
}

pub(crate) fn execute(cmd: Cmd, form: Form<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    match (cmd, form) {
        (Cmd::Manufacturer, Form::Action) => ctx.info(b"u-blox"),
        (Cmd::Model, Form::Action) => {
            let name = ctx.module.identity.model.name();
            ctx.info(name.as_bytes());
        }
        (Cmd::Revision, Form::Action) => {
            let version = ctx.module.firmware.state.version.clone();
            ctx.info(version.as_bytes());
        }
        (Cmd::SerialNumber, Form::Action) => serial_number(ctx, 0)?,
        (Cmd::SerialNumber, Form::Set(args)) => {
            let mut r = args.reader();
            let snt = r.opt_int(0..=255)?.unwrap_or(0);
            r.finish()?;
            serial_number(ctx, snt)?;
        }
        (Cmd::SerialNumber, Form::Test) => ctx.info(b"+CGSN: (0-3,255)"),
        (Cmd::Identification, Form::Basic(None | Some(0))) => {
            let t = ctx.module.identity.model.type_number();
            ctx.info(t.as_bytes());
        }
        (Cmd::Identification, Form::Basic(Some(9))) => {
            let fw = &ctx.module.firmware.state;
            let line = format!("{},{}", fw.version, fw.application);
            ctx.info(line.as_bytes());
        }
        (Cmd::Identification, Form::Basic(Some(_))) => return Err(CmeError::OperationNotSupported),
        (Cmd::Imsi, Form::Action) => {
            let imsi = ctx.module.identity.imsi.clone();
            ctx.info(imsi.as_bytes());
        }
        (Cmd::Iccid, Form::Action | Form::Read) => {
            let iccid = ctx.module.identity.iccid.clone();
            ctx.info_fmt(format_args!("+CCID: {iccid}"));
        }
        (Cmd::Manufacturer | Cmd::Model | Cmd::Revision | Cmd::Imsi | Cmd::Iccid, Form::Test) => {}
        (_, form) => return undefined_form(form),
    }
    Ok(Outcome::Done)
}

fn serial_number(ctx: &mut Ctx<'_>, snt: i64) -> Result<(), CmeError> {
    let imei = ctx.module.identity.imei.clone();
    match snt {
        0 | 1 => ctx.info(imei.as_str().as_bytes()),
        2 => ctx.info_fmt(format_args!("{}{SVN}", imei.body())),
        3 => ctx.info(SVN.as_bytes()),
        255 => ctx.info_fmt(format_args!("{}{SVN}", imei.as_str())),
        _ => return Err(CmeError::OperationNotSupported),
    }
    Ok(())
}
