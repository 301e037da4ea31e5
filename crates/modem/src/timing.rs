//! Real-module timing (`sealcell modem --timing toby-l2`; cli.md, "A test bench for host
//! firmware"): how long a real TOBY-L2 takes to answer, to register, to boot, to install and
//! to move data, so host firmware meets on the emulator the waits it meets in the field.
//! `fast` (the default) is as fast as the machine.
//!
//! A profile is data ([`Timing`]); `docs/bench.md` gives each number of [`TOBY_L2`] its source
//! or marks it an estimate. The engine applies what happens on its own clock, so that the
//! golden transcripts see it on virtual time: the answer latency of each command
//! ([`Timing::answer_latency`]), registration after `AT+CFUN=1` and after a boot, the boot
//! window (no input is taken, then the greeting), and an install's `+UUFWINSTALL` progress
//! spread over its duration. The edge applies what belongs to the wire: the LTE rates and
//! round trip ([`crate::Module::network_shaping`]) and the UART's pace on a pseudo-terminal
//! ([`Timing::baud`]).

use std::time::{Duration, Instant};

/// A timing profile by name (`--timing`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Profile {
    /// As fast as the machine: no latency, no pacing (the default).
    #[default]
    Fast,
    /// A TOBY-L2 on an LTE Cat 4 network over its 115200-baud UART ([`TOBY_L2`]).
    TobyL2,
}

impl Profile {
    /// The profile's name, as `--timing` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Fast => "fast",
            Profile::TobyL2 => "toby-l2",
        }
    }

    /// The profile's table.
    pub fn timing(self) -> &'static Timing {
        match self {
            Profile::Fast => &FAST,
            Profile::TobyL2 => &TOBY_L2,
        }
    }
}

impl std::str::FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Profile, String> {
        match s {
            "fast" => Ok(Profile::Fast),
            "toby-l2" => Ok(Profile::TobyL2),
            _ => Err(format!("no timing profile is called {s:?} (fast, toby-l2)")),
        }
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The form of a command a latency applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormKind {
    /// Any form.
    Any,
    /// `AT+NAME=<args>` (and a basic command with its number).
    Set,
    /// `AT+NAME?`.
    Read,
    /// `AT+NAME=?`.
    Test,
    /// `AT+NAME` (and a basic command alone).
    Action,
}

impl FormKind {
    /// The kind of `form`.
    pub fn of(form: sealcell_at::syntax::Form<'_>) -> FormKind {
        use sealcell_at::syntax::Form;
        match form {
            Form::Set(_) | Form::Basic(Some(_)) => FormKind::Set,
            Form::Read => FormKind::Read,
            Form::Test => FormKind::Test,
            Form::Action | Form::Basic(None) => FormKind::Action,
        }
    }

    fn matches(self, other: FormKind) -> bool {
        self == FormKind::Any || self == other
    }
}

/// A command that answers slower than [`Timing::answer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlowAnswer {
    /// The command's upper-cased name (`+COPS`, `I`).
    pub name: &'static str,
    /// The forms it is slow in.
    pub form: FormKind,
    /// How long it takes to answer.
    pub latency: Duration,
}

/// How long things take (one profile's table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// From a command line's end to its answer, for a command [`Timing::slow`] does not name.
    pub answer: Duration,
    /// Commands that take longer (the first entry that matches a command applies).
    pub slow: &'static [SlowAnswer],
    /// From `AT+CFUN=1` (or the end of a boot) to registration on the network: until then the
    /// module is searching (`<stat>` 2) and the network cannot be used.
    pub registration: Duration,
    /// From a reboot or a power-on to the greeting: the module takes no input meanwhile.
    pub boot: Duration,
    /// From an install's `OK` to its final `+UUFWINSTALL` (128, or the failure's code); the
    /// progress URCs are spread evenly over it, and the module takes no input meanwhile.
    pub install: Duration,
    /// Added to every connect and name lookup: the radio network's round trip.
    pub network_latency: Duration,
    /// What the network carries to the module, bytes per second (`None`: the machine's).
    pub downlink_bytes_per_s: Option<u64>,
    /// What the module sends to the network, bytes per second (`None`: the machine's).
    pub uplink_bytes_per_s: Option<u64>,
    /// The UART's rate on a pseudo-terminal, bits per second, 8N1 (ten bits a byte), each
    /// way (`None`: unpaced).
    pub baud: Option<u32>,
}

impl Timing {
    /// How long `name` in `form` takes to answer.
    pub fn answer_latency(&self, name: &str, form: FormKind) -> Duration {
        self.slow
            .iter()
            .find(|s| s.name == name && s.form.matches(form))
            .map_or(self.answer, |s| s.latency)
    }

    /// How long `n` bytes take on the UART ([`Timing::baud`]; zero without a rate).
    pub fn on_the_wire(&self, n: usize) -> Duration {
        match self.baud {
            Some(baud) if baud > 0 => {
                Duration::from_secs_f64(n as f64 * BITS_PER_BYTE / f64::from(baud))
            }
            _ => Duration::ZERO,
        }
    }
}

/// Bits on the wire per byte at 8N1: a start bit, eight data bits, a stop bit.
pub const BITS_PER_BYTE: f64 = 10.0;

/// As fast as the machine.
pub const FAST: Timing = Timing {
    answer: Duration::ZERO,
    slow: &[],
    registration: Duration::ZERO,
    boot: Duration::ZERO,
    install: Duration::ZERO,
    network_latency: Duration::ZERO,
    downlink_bytes_per_s: None,
    uplink_bytes_per_s: None,
    baud: None,
};

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const fn slow(name: &'static str, form: FormKind, latency: Duration) -> SlowAnswer {
    SlowAnswer {
        name,
        form,
        latency,
    }
}

/// A TOBY-L2 (TOBY-L210, firmware 17.00) on an LTE Cat 4 network, over its UART. The
/// sources of each number are in `docs/bench.md` ("Real-module timing").
pub const TOBY_L2: Timing = Timing {
    answer: ms(20),
    slow: &[
        // Radio on or off: the protocol stack starts or stops.
        slow("+CFUN", FormKind::Set, ms(1_000)),
        // Operator selection and the network scan.
        slow("+COPS", FormKind::Set, ms(2_000)),
        slow("+COPS", FormKind::Test, ms(15_000)),
        // Packet attach and context activation.
        slow("+CGATT", FormKind::Set, ms(1_000)),
        slow("+CGACT", FormKind::Set, ms(1_000)),
        // The SIM, read over its own interface.
        slow("+CRSM", FormKind::Any, ms(150)),
        slow("+CCID", FormKind::Any, ms(100)),
        slow("+CIMI", FormKind::Any, ms(100)),
        // Flash work: the file system and the security manager.
        slow("+UDELFILE", FormKind::Set, ms(100)),
        slow("+USECMNG", FormKind::Set, ms(300)),
        slow("+USECCFG", FormKind::Set, ms(1_000)),
        // An install starts by checking the package (then [`Timing::install`]).
        slow("+UFWINSTALL", FormKind::Any, ms(1_000)),
        slow("+UFWSINSTALL", FormKind::Set, ms(2_000)),
    ],
    registration: ms(5_000),
    boot: ms(10_000),
    install: ms(210_000),
    network_latency: ms(50),
    // LTE Cat 4: 150 Mbit/s down, 50 Mbit/s up.
    downlink_bytes_per_s: Some(150_000_000 / 8),
    uplink_bytes_per_s: Some(50_000_000 / 8),
    baud: Some(115_200),
};

/// One module's timers of its profile: the quiet window of a boot or an install, and the
/// end of the radio's search for the network.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    quiet_until: Option<Instant>,
    registers_at: Option<Instant>,
    /// An install whose host went away ends with its reboot then.
    reboot_at: Option<Instant>,
}

impl Timers {
    /// The next instant a timer runs out at.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.quiet_until
            .into_iter()
            .chain(self.registers_at)
            .chain(self.reboot_at)
            .min()
    }
}

impl crate::Module {
    /// How long things take on this module ([`crate::ModuleConfig::timing`]).
    pub fn timing(&self) -> &'static Timing {
        self.config().timing.timing()
    }

    /// Whether the module is in a boot or an install: it takes no input meanwhile.
    pub fn is_quiet(&self) -> bool {
        self.timers
            .quiet_until
            .is_some_and(|t| self.now().mono() < t)
    }

    /// When the quiet window ends, if the module is in one.
    pub(crate) fn quiet_until(&self) -> Option<Instant> {
        self.timers.quiet_until.filter(|_| self.is_quiet())
    }

    /// Keeps the module quiet until at least `until` (an install).
    pub(crate) fn quiet_for(&mut self, until: Instant) {
        self.timers.quiet_until = self.timers.quiet_until.max(Some(until));
    }

    /// An install goes on without the channel that started it (its host went away): the
    /// module reboots when the install would have ended.
    pub(crate) fn reboot_at(&mut self, at: Instant) {
        self.timers.reboot_at = Some(at);
    }

    /// A boot just happened at `now`: quiet for the profile's boot time, then searching for
    /// the network for its registration time (a fast profile: neither).
    pub(crate) fn boot_window(&mut self, now: Instant) {
        let timing = self.timing();
        self.timers = Timers::default();
        if !timing.boot.is_zero() {
            self.timers.quiet_until = Some(now + timing.boot);
        }
        if !timing.registration.is_zero() && self.radio.wants_network() {
            self.radio.searching = true;
            self.timers.registers_at = Some(now + timing.boot + timing.registration);
        }
    }

    /// The radio was turned on or let register (`AT+CFUN=1`, `AT+COPS=0`, the network
    /// back): it searches for the profile's registration time. Turned off: no search.
    pub(crate) fn radio_wants_changed(&mut self) {
        let registration = self.timing().registration;
        if !self.radio.wants_network() {
            self.radio.searching = false;
            self.timers.registers_at = None;
        } else if !registration.is_zero() && !self.radio.searching {
            self.radio.searching = true;
            self.timers.registers_at = Some(self.now().mono() + registration);
        }
    }

    /// Runs the timers due at `now` (every call into the engine does, first).
    pub(crate) fn run_timing(&mut self, now: Instant) {
        if let Some(at) = self.timers.reboot_at.filter(|t| *t <= now) {
            tracing::info!("the install ended; rebooting");
            if let Err(e) = self.reboot() {
                tracing::error!(error = %e, "reboot failed; the module keeps its state");
            }
            // The boot began when the install ended, whenever a host next looks.
            self.boot_window(at);
        }
        if self.timers.quiet_until.is_some_and(|t| t <= now) {
            self.timers.quiet_until = None;
        }
        if self.timers.registers_at.is_some_and(|t| t <= now) {
            self.timers.registers_at = None;
            let before = self.radio.snapshot();
            self.radio.searching = false;
            tracing::debug!("registered (timing profile)");
            self.radio_changed(before);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealcell_at::syntax::Form;

    #[test]
    fn profiles_parse_by_name_and_print_it() {
        for p in [Profile::Fast, Profile::TobyL2] {
            assert_eq!(p.name().parse::<Profile>(), Ok(p));
            assert_eq!(p.to_string(), p.name());
        }
        assert_eq!(
            "toby-l1".parse::<Profile>(),
            Err("no timing profile is called \"toby-l1\" (fast, toby-l2)".to_string())
        );
    }

    #[test]
    fn a_slow_command_is_slow_only_in_its_form() {
        let t = Profile::TobyL2.timing();
        assert_eq!(
            t.answer_latency("+COPS", FormKind::of(Form::Test)),
            ms(15_000)
        );
        assert_eq!(
            t.answer_latency("+COPS", FormKind::of(Form::Read)),
            t.answer
        );
        assert_eq!(t.answer_latency("+CRSM", FormKind::Read), ms(150));
        assert_eq!(t.answer_latency("+CGMI", FormKind::Action), ms(20));
        assert_eq!(FAST.answer_latency("+COPS", FormKind::Test), Duration::ZERO);
    }

    #[test]
    fn the_uart_carries_a_byte_in_ten_bits() {
        // 11,520 bytes a second at 115200 baud.
        assert_eq!(TOBY_L2.on_the_wire(11_520), Duration::from_secs(1));
        assert_eq!(FAST.on_the_wire(11_520), Duration::ZERO);
    }
}
