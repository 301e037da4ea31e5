//! GPIO and GNSS control (at-contract §1.1): the u-blox AT manual's GPIO chapter ("GPIO select
//! configuration +UGPIOC", "GPIO read +UGPIOR", "GPIO set +UGPIOW") on six virtual pins, and
//! its GNSS chapter's "GNSS power management +UGPS" for a module with no receiver attached.
//! They share a module because the GNSS functions of a TOBY-L2 are GPIO functions (supply
//! enable, data ready, RTC sharing on GPIO2..GPIO4).
//!
//! A pin is named by its GPIO id, which is the module pin number (GPIO1 is id 16). The
//! configuration (`+UGPIOC`) is kept in `nvm.toml`, as the manual says the module keeps it in
//! NVM for the next power-on; levels written with `+UGPIOW` are volatile, and at boot an output
//! pin drives the level its `+UGPIOC` set. Nothing is attached to the pins: an input reads the
//! level its pull resistor gives (1 with the pull-up, else 0).

use sealcell_at::CmeError;
use sealcell_at::args::ArgReader;
use sealcell_at::syntax::Form;

use super::control::Value;
use super::{CmdResult, Ctx, Outcome, undefined_form};

/// A GPIO or GNSS command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// `+UGPIOC=<gpio_id>,<gpio_mode>[,<gpio_out_val>|<gpio_in_pull>]`: a pin's function.
    Config,
    /// `+UGPIOR=<gpio_id>`: a pin's level.
    Read,
    /// `+UGPIOW=<gpio_id>,<gpio_out_val>`: drive an output pin.
    Write,
    /// `+UGPS=<mode>[,<aid_mode>[,<GNSS_systems>]]`: GNSS receiver power.
    Gnss,
}

impl Cmd {
    pub(crate) fn from_name(name: &str) -> Option<Cmd> {
        Some(match name {
            "+UGPIOC" => Cmd::Config,
            "+UGPIOR" => Cmd::Read,
            "+UGPIOW" => Cmd::Write,
            "+UGPS" => Cmd::Gnss,
            _ => return None,
        })
    }
}

/// `<gpio_mode>` 0: general purpose output.
pub const MODE_OUTPUT: i64 = 0;
/// `<gpio_mode>` 1: general purpose input.
pub const MODE_INPUT: i64 = 1;
/// `<gpio_mode>` 2: network status indication (any pin).
pub const MODE_NETWORK_STATUS: i64 = 2;
/// `<gpio_mode>` 3: GNSS supply enable (GPIO2 only).
pub const MODE_GNSS_SUPPLY: i64 = 3;
/// `<gpio_mode>` 4: GNSS data ready (GPIO3 only).
pub const MODE_GNSS_DATA_READY: i64 = 4;
/// `<gpio_mode>` 5: GNSS RTC sharing (GPIO4 only).
pub const MODE_GNSS_RTC: i64 = 5;
/// `<gpio_mode>` 7: SIM card detection (GPIO5 only).
pub const MODE_SIM_DETECTION: i64 = 7;
/// `<gpio_mode>` 255: pad disabled.
pub const MODE_DISABLED: i64 = 255;

/// One GPIO of the module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pin {
    /// The GPIO id: the module pin number.
    pub id: i64,
    /// The pin name in the data sheet.
    pub name: &'static str,
    /// The factory-programmed function.
    pub factory_mode: i64,
    /// The custom function only this pin can have, besides output, input, network status and
    /// disabled.
    pub own_function: Option<i64>,
}

/// **The six TOBY-L2 GPIOs** (TOBY-L2 data sheet and system integration manual; the same ids
/// ubxlib's `uCellGpioName_t` uses), in id order as `AT+UGPIOC?` lists them: GPIO1 (pin 16) and
/// GPIO6 (pin 19) disabled, GPIO2..GPIO4 (23..25) the GNSS supply-enable, data-ready and
/// RTC-sharing lines, GPIO5 (42) SIM card detection.
pub const PINS: [Pin; 6] = [
    Pin {
        id: 16,
        name: "GPIO1",
        factory_mode: MODE_DISABLED,
        own_function: None,
    },
    Pin {
        id: 19,
        name: "GPIO6",
        factory_mode: MODE_DISABLED,
        own_function: None,
    },
    Pin {
        id: 23,
        name: "GPIO2",
        factory_mode: MODE_GNSS_SUPPLY,
        own_function: Some(MODE_GNSS_SUPPLY),
    },
    Pin {
        id: 24,
        name: "GPIO3",
        factory_mode: MODE_GNSS_DATA_READY,
        own_function: Some(MODE_GNSS_DATA_READY),
    },
    Pin {
        id: 25,
        name: "GPIO4",
        factory_mode: MODE_GNSS_RTC,
        own_function: Some(MODE_GNSS_RTC),
    },
    Pin {
        id: 42,
        name: "GPIO5",
        factory_mode: MODE_SIM_DETECTION,
        own_function: Some(MODE_SIM_DETECTION),
    },
];

const IDS: &str = "(16,19,23,24,25,42)";

pub use crate::nvm::PinConfig;

impl Pin {
    fn factory(&self) -> PinConfig {
        PinConfig {
            mode: self.factory_mode,
            value: 0,
        }
    }

    fn allows(&self, mode: i64) -> bool {
        matches!(
            mode,
            MODE_OUTPUT | MODE_INPUT | MODE_NETWORK_STATUS | MODE_DISABLED
        ) || self.own_function == Some(mode)
    }
}

/// The volatile output levels live with the module's volatile settings (lost at reboot).
const LEVELS_KEY: &str = "+UGPIOW";

/// The pin index for a GPIO id; an id the module does not have is out of range (4).
fn pin_index(id: i64) -> Result<usize, CmeError> {
    PINS.iter()
        .position(|p| p.id == id)
        .ok_or(CmeError::OperationNotSupported)
}

/// Pin `i`'s stored configuration.
fn config(ctx: &Ctx<'_>, i: usize) -> PinConfig {
    ctx.module
        .nvm
        .values
        .gpio
        .get(&PINS[i].id.to_string())
        .copied()
        .filter(|c| PINS[i].allows(c.mode))
        .unwrap_or_else(|| PINS[i].factory())
}

/// Pin `i`'s level: an output's last written level (the boot level until `+UGPIOW`), an
/// input's pull. `None` for a pin with another function.
fn level(ctx: &Ctx<'_>, i: usize) -> Option<i64> {
    let c = config(ctx, i);
    match c.mode {
        MODE_OUTPUT => {
            let written = match ctx.module.settings.get(LEVELS_KEY).and_then(|v| v.get(i)) {
                Some(Value::Int(level @ 0..=1)) => Some(*level),
                _ => None,
            };
            Some(written.unwrap_or(c.value))
        }
        MODE_INPUT => Some(i64::from(c.value == 1)),
        _ => None,
    }
}

/// Records a volatile output level for pin `i`; `None` forgets it (back to the boot level).
fn set_level(ctx: &mut Ctx<'_>, i: usize, level: Option<i64>) {
    let levels = ctx.module.settings.entry(LEVELS_KEY).or_default();
    levels.resize(PINS.len(), Value::Int(-1));
    levels[i] = Value::Int(level.unwrap_or(-1));
}

pub(crate) fn execute(cmd: Cmd, form: Form<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    match (cmd, form) {
        (Cmd::Config, Form::Set(args)) => configure(ctx, args.reader())?,
        (Cmd::Config, Form::Read) => {
            ctx.info(b"+UGPIOC:");
            for (i, pin) in PINS.iter().enumerate() {
                let mode = config(ctx, i).mode;
                ctx.info_fmt(format_args!("{},{mode}", pin.id));
            }
        }
        (Cmd::Config, Form::Test) => ctx.info_fmt(format_args!("+UGPIOC: {IDS},(0-5,7,255)")),
        (Cmd::Read, Form::Set(args)) => {
            let mut r = args.reader();
            let i = pin_index(r.int(0..=255)?)?;
            r.finish()?;
            let level = level(ctx, i).ok_or(CmeError::OperationNotAllowed)?;
            ctx.info_fmt(format_args!("+UGPIOR: {},{level}", PINS[i].id));
        }
        (Cmd::Read, Form::Test) => ctx.info_fmt(format_args!("+UGPIOR: {IDS}")),
        (Cmd::Write, Form::Set(args)) => {
            let mut r = args.reader();
            let i = pin_index(r.int(0..=255)?)?;
            let value = r.int(0..=1)?;
            r.finish()?;
            if config(ctx, i).mode != MODE_OUTPUT {
                return Err(CmeError::OperationNotAllowed);
            }
            set_level(ctx, i, Some(value));
        }
        (Cmd::Write, Form::Test) => ctx.info_fmt(format_args!("+UGPIOW: {IDS},(0-1)")),
        (Cmd::Gnss, Form::Set(args)) => gnss(args.reader())?,
        (Cmd::Gnss, Form::Read) => ctx.info(b"+UGPS: 0"),
        (Cmd::Gnss, Form::Test) => ctx.info(b"+UGPS: (0-1),(0-255),(1-127)"),
        (_, form) => return undefined_form(form),
    }
    Ok(Outcome::Done)
}

/// `AT+UGPIOC=<gpio_id>,<gpio_mode>[,<value>]`: the value is the output level (0..1, default
/// 0) for mode 0 and the pull resistor (0..2, default 0) for mode 1; other modes take none.
/// A custom function (modes 2..254) belongs to one pin at a time: giving it to a second pin is
/// `+CME ERROR: 3` until the first pin gives it up.
fn configure(ctx: &mut Ctx<'_>, mut r: ArgReader<'_>) -> Result<(), CmeError> {
    let i = pin_index(r.int(0..=255)?)?;
    let mode = r.int(0..=255)?;
    if !PINS[i].allows(mode) {
        return Err(CmeError::OperationNotSupported);
    }
    let value = match mode {
        MODE_OUTPUT => r.opt_int(0..=1)?.unwrap_or(0),
        MODE_INPUT => r.opt_int(0..=2)?.unwrap_or(0),
        _ => 0,
    };
    r.finish()?;
    let is_function = mode != MODE_OUTPUT && mode != MODE_INPUT && mode != MODE_DISABLED;
    if is_function && (0..PINS.len()).any(|j| j != i && config(ctx, j).mode == mode) {
        return Err(CmeError::OperationNotAllowed);
    }
    let key = PINS[i].id.to_string();
    let setting = PinConfig { mode, value };
    let factory = PINS[i].factory();
    ctx.update_nvm(|n| {
        if setting == factory {
            n.gpio.remove(&key);
        } else {
            n.gpio.insert(key, setting);
        }
    })?;
    // A new configuration drives its own level until the next +UGPIOW.
    set_level(ctx, i, None);
    Ok(())
}

/// `AT+UGPS=<mode>[,<aid_mode>[,<GNSS_systems>]]`: mode 0 (off) is accepted, as the receiver
/// is already off; turning it on is `+CME ERROR: 3`, as no GNSS receiver is attached.
fn gnss(mut r: ArgReader<'_>) -> Result<(), CmeError> {
    let mode = r.int(0..=1)?;
    r.opt_int(0..=255)?;
    r.opt_int(1..=127)?;
    r.finish()?;
    if mode == 1 {
        return Err(CmeError::OperationNotAllowed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn pins_are_the_toby_l2_gpios() {
        let ids: Vec<i64> = PINS.iter().map(|p| p.id).collect();
        assert_eq!(ids, [16, 19, 23, 24, 25, 42]);
        assert_eq!(
            IDS,
            format!(
                "({})",
                ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
            )
        );
        for pin in PINS {
            assert!(pin.allows(pin.factory_mode), "{}", pin.name);
            assert!(pin.allows(MODE_OUTPUT) && pin.allows(MODE_INPUT));
        }
        assert!(!PINS[0].allows(MODE_GNSS_SUPPLY));
        assert!(PINS[2].allows(MODE_GNSS_SUPPLY));
        assert!(!PINS[2].allows(MODE_SIM_DETECTION));
        assert!(!PINS[5].allows(6));
    }

    #[test]
    fn config_round_trips_through_toml() {
        let mut nvm = crate::nvm::Nvm::default();
        nvm.gpio.insert(
            "16".into(),
            PinConfig {
                mode: MODE_OUTPUT,
                value: 1,
            },
        );
        let text = toml::to_string(&nvm).unwrap();
        let back: crate::nvm::Nvm = toml::from_str(&text).unwrap();
        assert_eq!(back, nvm);
    }
}
