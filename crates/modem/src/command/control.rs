//! Control and settings (at-contract §0 and §1; u-blox AT manual ch. 5, 14, 16): the V.250
//! basic commands, `+CMEE`, `+CFUN` with its reboot semantics, the clock, the greeting text, and
//! the settings a host library sets at start-up that the emulator accepts and reads back.

use sealcell_at::CmeError;
use sealcell_at::args::{Arg, ArgReader};
use sealcell_at::format::{ChannelSettings, CmeeMode};
use sealcell_at::syntax::{AtCommand, Form};

use super::{CmdResult, Ctx, Outcome, undefined_form};
use crate::clock;

pub use crate::nvm::Value;

/// A control or settings command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// `ATE<n>`: echo.
    Echo,
    /// `ATV<n>`: verbose (1) or numeric (0) results.
    ResultFormat,
    /// `ATQ<n>`: quiet mode.
    Quiet,
    /// `ATZ`, `AT&F`: channel settings back to factory values.
    FactoryReset,
    /// `ATX<n>` (0..4).
    ExtendedResults,
    /// `AT&C<n>` (0..1): DCD behaviour.
    DcdMode,
    /// `AT&D<n>` (0..2): DTR behaviour.
    DtrMode,
    /// `AT&K<n>` (0, 3, 4): flow control.
    FlowControl,
    /// `+CMEE`: error reporting.
    Cmee,
    /// `+CFUN`: functionality level; 15 and 16 reboot.
    Cfun,
    /// `+CCLK`: the module clock.
    Clock,
    /// `+CSGT`: the greeting text shown at boot (kept in NVM).
    Greeting,
    /// `+UDCONF=1,...`: HEX mode configuration.
    DataConfig,
    /// A setting that is accepted and read back.
    Stored(Stored),
}

/// The settings that are accepted and read back with no other effect on the emulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// `+IPR`: baud rate (meaningless on TCP; stored for hosts that set it).
    Ipr,
    /// `+UPSV`: power saving.
    Upsv,
    /// `+CGEREP`: packet-domain event reporting.
    Cgerep,
    /// `+UGPRF`: GPRS link profile (persistent).
    Ugprf,
    /// `+ULWM2M`: LwM2M client activation, 0 on (factory) and 1 off (persistent: ubxlib turns
    /// it off and reboots, and must find it off afterwards).
    Ulwm2m,
    /// `+UEMBPF`: embedded packet filtering.
    Uembpf,
}

#[derive(Clone, Copy)]
enum Param {
    Range(i64, i64),
    OneOf(&'static [i64]),
    IntOrStr,
}

struct Spec {
    name: &'static str,
    params: &'static [Param],
    /// Trailing parameters may be omitted; `keep_unset` keeps earlier values for them.
    keep_unset: bool,
    /// Kept in NVM across reboots (else volatile, back to `default` at boot).
    persistent: bool,
    default: &'static [i64],
    test: &'static str,
}

const BAUD_RATES: &[i64] = &[
    0, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 3000000,
];

impl Stored {
    fn spec(self) -> &'static Spec {
        match self {
            Stored::Ipr => &Spec {
                name: "+IPR",
                params: &[Param::OneOf(BAUD_RATES)],
                keep_unset: false,
                persistent: false,
                default: &[115200],
                test: "+IPR: (0,9600,19200,38400,57600,115200,230400,460800,921600,3000000),()",
            },
            Stored::Upsv => &Spec {
                name: "+UPSV",
                params: &[Param::Range(0, 4), Param::Range(40, 65000)],
                keep_unset: false,
                persistent: false,
                default: &[0],
                test: "+UPSV: (0-4),(40-65000)",
            },
            Stored::Cgerep => &Spec {
                name: "+CGEREP",
                params: &[Param::Range(0, 2), Param::Range(0, 1)],
                keep_unset: true,
                persistent: false,
                default: &[0, 0],
                test: "+CGEREP: (0-2),(0-1)",
            },
            Stored::Ugprf => &Spec {
                name: "+UGPRF",
                params: &[
                    Param::Range(0, 65535),
                    Param::Range(0, 65535),
                    Param::IntOrStr,
                ],
                keep_unset: true,
                persistent: true,
                default: &[0, 0],
                test: "+UGPRF: (0-65535),(0-65535),",
            },
            Stored::Ulwm2m => &Spec {
                name: "+ULWM2M",
                params: &[Param::Range(0, 1)],
                keep_unset: false,
                persistent: true,
                default: &[0],
                test: "+ULWM2M: (0-1)",
            },
            Stored::Uembpf => &Spec {
                name: "+UEMBPF",
                params: &[Param::Range(0, 1), Param::IntOrStr, Param::IntOrStr],
                keep_unset: true,
                persistent: false,
                default: &[0],
                test: "+UEMBPF: (0-1),,",
            },
        }
    }
}

impl Cmd {
    pub(crate) fn from_name(name: &str) -> Option<Cmd> {
        Some(match name {
            "E" => Cmd::Echo,
            "V" => Cmd::ResultFormat,
            "Q" => Cmd::Quiet,
            "Z" | "&F" => Cmd::FactoryReset,
            "X" => Cmd::ExtendedResults,
            "&C" => Cmd::DcdMode,
            "&D" => Cmd::DtrMode,
            "&K" => Cmd::FlowControl,
            "+CMEE" => Cmd::Cmee,
            "+CFUN" => Cmd::Cfun,
            "+CCLK" => Cmd::Clock,
            "+CSGT" => Cmd::Greeting,
            "+UDCONF" => Cmd::DataConfig,
            "+IPR" => Cmd::Stored(Stored::Ipr),
            "+UPSV" => Cmd::Stored(Stored::Upsv),
            "+CGEREP" => Cmd::Stored(Stored::Cgerep),
            "+UGPRF" => Cmd::Stored(Stored::Ugprf),
            "+ULWM2M" => Cmd::Stored(Stored::Ulwm2m),
            "+UEMBPF" => Cmd::Stored(Stored::Uembpf),
            _ => return None,
        })
    }
}

pub(crate) fn execute(cmd: Cmd, at: &AtCommand<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    let form = at.form;
    match (cmd, form) {
        (Cmd::Echo, Form::Basic(n)) => ctx.settings.echo = flag(n)?,
        (Cmd::ResultFormat, Form::Basic(n)) => ctx.settings.verbose = flag(n)?,
        (Cmd::Quiet, Form::Basic(n)) => ctx.settings.quiet = flag(n)?,
        (Cmd::FactoryReset, Form::Basic(None | Some(0))) => {
            *ctx.settings = ChannelSettings::default()
        }
        (Cmd::ExtendedResults, Form::Basic(n)) => basic_setting(ctx, "X", n, &[0, 1, 2, 3, 4])?,
        (Cmd::DcdMode, Form::Basic(n)) => basic_setting(ctx, "&C", n, &[0, 1])?,
        (Cmd::DtrMode, Form::Basic(n)) => basic_setting(ctx, "&D", n, &[0, 1, 2])?,
        (Cmd::FlowControl, Form::Basic(n)) => basic_setting(ctx, "&K", n, &[0, 3, 4])?,
        (Cmd::Cmee, Form::Set(args)) => {
            let mut r = args.reader();
            let n = r.opt_int(0..=2)?.unwrap_or(0);
            r.finish()?;
            ctx.settings.cmee = CmeeMode::from_value(n).unwrap_or_default();
        }
        (Cmd::Cmee, Form::Read) => {
            let n = ctx.settings.cmee as u8;
            ctx.info_fmt(format_args!("+CMEE: {n}"));
        }
        (Cmd::Cmee, Form::Test) => ctx.info(b"+CMEE: (0-2)"),
        (Cmd::Cfun, Form::Set(args)) => return cfun(ctx, args.reader()),
        (Cmd::Cfun, Form::Read) => {
            let fun = ctx.module.radio.cfun;
            ctx.info_fmt(format_args!("+CFUN: {fun},0"));
        }
        (Cmd::Cfun, Form::Test) => ctx.info(b"+CFUN: (0,1,4,15,16),(0-1)"),
        (Cmd::Clock, Form::Read) => {
            let text = clock::format_cclk_zoned(ctx.clock_unix(), ctx.module.clock_zone());
            ctx.info_fmt(format_args!("+CCLK: \"{text}\""));
        }
        (Cmd::Clock, Form::Set(args)) => {
            let mut r = args.reader();
            let text = r.string(32)?;
            r.finish()?;
            let (t, zone) = clock::parse_cclk_zoned(text).ok_or(CmeError::OperationNotSupported)?;
            ctx.module.set_clock(t, zone, ctx.now);
        }
        (Cmd::Clock, Form::Test) => {}
        (Cmd::Greeting, Form::Set(args)) => {
            let mut r = args.reader();
            let mode = r.int(0..=1)?;
            let text = r.opt_string(49)?.map(str::to_string);
            r.finish()?;
            ctx.update_nvm(|n| {
                n.greeting_enabled = mode == 1;
                if let Some(t) = text {
                    n.greeting = t;
                }
            })?;
        }
        (Cmd::Greeting, Form::Read) => {
            let n = &ctx.module.nvm.values;
            let line = format!("+CSGT: \"{}\",{}", n.greeting, u8::from(n.greeting_enabled));
            ctx.info(line.as_bytes());
        }
        (Cmd::Greeting, Form::Test) => ctx.info(b"+CSGT: (0-1),49"),
        (Cmd::DataConfig, Form::Set(args)) => {
            let mut r = args.reader();
            let op = r.int(1..=1)?;
            match r.opt_int(0..=1)? {
                Some(v) => {
                    r.finish()?;
                    ctx.module.settings.insert("+UDCONF=1", vec![Value::Int(v)]);
                }
                None => {
                    r.finish()?;
                    let v = match ctx.module.settings.get("+UDCONF=1").and_then(|v| v.first()) {
                        Some(Value::Int(v)) => *v,
                        _ => 0,
                    };
                    ctx.info_fmt(format_args!("+UDCONF: {op},{v}"));
                }
            }
        }
        (Cmd::DataConfig, Form::Test) => ctx.info(b"+UDCONF: 1,(0-1)"),
        (Cmd::Stored(s), form) => stored(s.spec(), form, ctx)?,
        (_, form) => return undefined_form(form),
    }
    Ok(Outcome::Done)
}

fn flag(n: Option<u32>) -> Result<bool, CmeError> {
    match n {
        None | Some(0) => Ok(false),
        Some(1) => Ok(true),
        Some(_) => Err(CmeError::OperationNotSupported),
    }
}

fn basic_setting(
    ctx: &mut Ctx<'_>,
    key: &'static str,
    n: Option<u32>,
    allowed: &[i64],
) -> Result<(), CmeError> {
    let v = i64::from(n.unwrap_or(0));
    if !allowed.contains(&v) {
        return Err(CmeError::OperationNotSupported);
    }
    ctx.module.settings.insert(key, vec![Value::Int(v)]);
    Ok(())
}

fn cfun(ctx: &mut Ctx<'_>, mut r: ArgReader<'_>) -> CmdResult {
    let fun = r.int(0..=19)?;
    let rst = r.opt_int(0..=1)?.unwrap_or(0);
    r.finish()?;
    match fun {
        15 | 16 => Ok(Outcome::Reboot),
        1 if rst == 1 => Ok(Outcome::Reboot),
        0 | 1 | 4 => {
            let before = ctx.module.radio.snapshot();
            ctx.module.radio.cfun = fun;
            ctx.module.radio_changed(before);
            Ok(Outcome::Done)
        }
        _ => Err(CmeError::OperationNotSupported),
    }
}

fn stored(spec: &'static Spec, form: Form<'_>, ctx: &mut Ctx<'_>) -> Result<(), CmeError> {
    match form {
        Form::Set(args) => {
            let mut values = if spec.keep_unset {
                current(spec, ctx)
            } else {
                Vec::new()
            };
            let mut r = args.reader();
            for (i, param) in spec.params.iter().enumerate() {
                let token = r.any()?;
                let value = match (param, token) {
                    (_, None | Some(Arg::Omitted)) if i == 0 => {
                        return Err(CmeError::OperationNotSupported);
                    }
                    (_, None | Some(Arg::Omitted)) => continue,
                    (Param::Range(lo, hi), Some(Arg::Int(v))) if (*lo..=*hi).contains(&v) => {
                        Value::Int(v)
                    }
                    (Param::OneOf(set), Some(Arg::Int(v))) if set.contains(&v) => Value::Int(v),
                    (Param::IntOrStr, Some(Arg::Int(v))) => Value::Int(v),
                    (Param::IntOrStr, Some(Arg::Str(s))) if s.len() <= 64 => {
                        Value::Str(s.to_string())
                    }
                    _ => return Err(CmeError::OperationNotSupported),
                };
                if values.len() <= i {
                    values.resize(i + 1, Value::Int(0));
                }
                values[i] = value;
            }
            r.finish()?;
            if spec.persistent {
                ctx.update_nvm(|n| {
                    n.stored.insert(spec.name.to_string(), values);
                })?;
            } else {
                ctx.module.settings.insert(spec.name, values);
            }
        }
        Form::Read => {
            let mut line = format!("{}: ", spec.name);
            for (i, v) in current(spec, ctx).iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                match v {
                    Value::Int(n) => line.push_str(&n.to_string()),
                    Value::Str(s) => {
                        line.push('"');
                        line.push_str(s);
                        line.push('"');
                    }
                }
            }
            ctx.info(line.as_bytes());
        }
        Form::Test => ctx.info(spec.test.as_bytes()),
        _ => return Err(CmeError::Unknown),
    }
    Ok(())
}

fn current(spec: &Spec, ctx: &Ctx<'_>) -> Vec<Value> {
    let stored = if spec.persistent {
        ctx.module.nvm.values.stored.get(spec.name)
    } else {
        ctx.module.settings.get(spec.name)
    };
    stored
        .cloned()
        .unwrap_or_else(|| spec.default.iter().map(|&v| Value::Int(v)).collect())
}
