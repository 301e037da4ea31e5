//! Faults a test bench injects into a running module (cli.md, "A test bench for host
//! firmware"): what a real module and a real network do to host firmware, on demand and
//! deterministically. The control socket (`sealcell modem --control`), `sealcell ctl` and the
//! golden transcripts (`@ fault`) all go through [`Fault::parse`] and [`crate::Module::inject`].
//!
//! Some faults act at once (`reboot`, `detach`, `attach`, `urc`, `signal`); the others arm a
//! one-shot failure the next operation of their kind takes (`tls-fail`: the next TLS
//! handshake, of `+UHTTPC` or `+USOCO`; `dns-fail`: the next name lookup; `install-fail`:
//! the next firmware install). Each firing is logged and listed by [`Faults::fired`]. The
//! network's state (`detach`, `signal`) outlives a reboot of the module, as a real network
//! does; what is armed does too.
//!
//! `power-loss` cuts the power now; `power-loss-at-write N` at the Nth durable write of the
//! storage from now ([`sealcell_store::PowerSwitch`]): the writes before it happened whole,
//! that one and every one after do not, and the module comes back from its disk as after
//! power-on; a transport that can hang up drops its connections ([`crate::Module::power_loss`]).
//!
//! The link faults (`link-drop`, `link-corrupt`, `link-stall`) act on what the module says to
//! a host, on whichever channel speaks next, as a noisy or stalled line would.
//!
//! `throttle` and `latency` shape the network until lifted (`0`): the edge paces every
//! connection to the module and delays every connect and lookup
//! ([`crate::Module::network_shaping`]).

/// The longest `urc` text.
///
/// # Security
/// The control socket is loopback only, but a URC still ends up in every channel's queue.
pub const MAX_URC: usize = 1024;

/// The fastest `throttle` (10 Gbit/s: no limit a test would notice).
pub const MAX_THROTTLE_KBPS: u64 = 10_000_000;

/// How the network is shaped (the test bench's `throttle` and `latency`, the timing
/// profile's rates and round trip): what the edge (and the scripted network of the tests)
/// applies to every connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shaping {
    /// Added before every connect and lookup.
    pub latency: std::time::Duration,
    /// The rate of what the network carries to the module, bytes per second (`None`: the
    /// machine's).
    pub bytes_per_s: Option<u64>,
    /// The rate of what the module sends to the network, bytes per second (`None`: the
    /// machine's).
    pub uplink_bytes_per_s: Option<u64>,
}

impl Shaping {
    /// The most bytes to read at once: a tenth of a second's worth when throttled, so the
    /// pace is even and a lifted throttle takes effect soon.
    pub fn chunk(&self, max: usize) -> usize {
        match self.bytes_per_s {
            Some(rate) => max.min(usize::try_from(rate / 10).unwrap_or(usize::MAX).max(1)),
            None => max,
        }
    }

    /// How long `n` bytes take at the downlink's rate (zero without one).
    pub fn pause(&self, n: usize) -> std::time::Duration {
        match self.bytes_per_s {
            Some(rate) if rate > 0 => std::time::Duration::from_secs_f64(n as f64 / rate as f64),
            _ => std::time::Duration::ZERO,
        }
    }
}

/// The largest count a link fault takes (bytes, or milliseconds for `link-stall`: an hour).
pub const MAX_LINK_FAULT: u64 = 3_600_000;

/// The longest entry of [`Faults::fired`] (longer ones are cut, with `...`).
pub const MAX_FIRED_TEXT: usize = 80;

/// The most fired faults [`Faults::fired`] keeps (the oldest go first).
pub const MAX_FIRED: usize = 256;

/// One fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Power-cycle the module (`AT+CFUN=16`, without the command).
    Reboot,
    /// Cut the power now.
    PowerLoss,
    /// Cut the power at the Nth durable storage write from now (1: the next).
    PowerLossAtWrite(u64),
    /// The network goes away: registration lost (`<stat>` 2, searching), with each channel's
    /// registration URCs; every socket closed (`+UUSOCL`); requests fail.
    Detach,
    /// The network comes back: registered again, with the URCs.
    Attach,
    /// Every channel gets this URC.
    Urc(String),
    /// The serving cell's RSRP becomes this (dBm, -140..-44): `+CSQ`, `+CESQ`, `+UCGED`.
    Signal(i32),
    /// The network carries at most this many kbit/s to the module (0 lifts it).
    Throttle(u64),
    /// Every connection and lookup of the network takes this many ms longer (0 lifts it).
    Latency(u64),
    /// The module's next N bytes to a host (on whichever channel speaks next) are lost.
    LinkDrop(u64),
    /// The module's next N bytes to a host have one bit flipped each (bits chosen by the seed).
    LinkCorrupt(u64),
    /// The next thing the module says to a host is held back this many milliseconds (with what
    /// follows it on that channel meanwhile).
    LinkStall(u64),
    /// The next firmware install ends with `+UUFWINSTALL: <code>` instead of 128 and leaves
    /// the firmware as it was (the module still reboots).
    InstallFail(u16),
    /// The next download (`+UHTTPC`) or socket connection (`+USOCO`) is cut after this many
    /// bytes received: a download fails as a broken connection does (`+UHTTPER` 3,13 or
    /// 3,11), a socket ends as if its peer had gone (`+UUSOCL` once its data is read).
    CutAfter(u64),
    /// The next TLS handshake fails (`+UHTTPC`: `+UUHTTPCR ...,0` and `+UHTTPER` 3,73;
    /// `+USOCO`: an error, `+USOER` 103).
    TlsFail,
    /// The next name lookup fails (`+UHTTPC` 3,10; `+USOCO` and `+UDNSRN` 113).
    DnsFail,
    /// Disarm everything armed (the network's state stays: `attach`, `signal` undo those).
    Clear,
    /// Nothing; the answer lists what is armed and what fired.
    Status,
}

/// Why a fault could not be taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FaultError {
    /// No fault has that name.
    #[error("no fault is called {0:?}")]
    Unknown(String),
    /// Its arguments are wrong.
    #[error("{name}: {why}")]
    Args {
        /// The fault.
        name: String,
        /// What is wrong.
        why: String,
    },
    /// The module could not do it (a reboot that failed to reopen the data directory).
    #[error("{0}")]
    Failed(String),
}

impl Fault {
    /// The fault `name` with its arguments, as the control socket and `sealcell ctl` give
    /// them.
    pub fn parse(name: &str, args: &[String]) -> Result<Fault, FaultError> {
        let args_err = |why: &str| FaultError::Args {
            name: name.to_string(),
            why: why.to_string(),
        };
        let none = |f: Fault| {
            if args.is_empty() {
                Ok(f)
            } else {
                Err(args_err("takes no argument"))
            }
        };
        let one = || match args {
            [a] => Ok(a.as_str()),
            _ => Err(args_err("takes one argument")),
        };
        match name {
            "reboot" => none(Fault::Reboot),
            "power-loss" => none(Fault::PowerLoss),
            "power-loss-at-write" => one()?
                .parse::<u64>()
                .ok()
                .filter(|n| *n >= 1)
                .map(Fault::PowerLossAtWrite)
                .ok_or_else(|| args_err("takes the write to cut the power at: 1, 2, ...")),
            "detach" => none(Fault::Detach),
            "attach" => none(Fault::Attach),
            "tls-fail" => none(Fault::TlsFail),
            "dns-fail" => none(Fault::DnsFail),
            "clear" => none(Fault::Clear),
            "status" => none(Fault::Status),
            "urc" => {
                let text = args.join(" ");
                if text.is_empty() || text.len() > MAX_URC || text.bytes().any(|b| b < 0x20) {
                    return Err(args_err(
                        "takes the URC's text: 1..1024 characters, no control characters",
                    ));
                }
                Ok(Fault::Urc(text))
            }
            "signal" => one()?
                .parse::<i32>()
                .ok()
                .filter(|r| (-140..=-44).contains(r))
                .map(Fault::Signal)
                .ok_or_else(|| args_err("takes an RSRP in dBm, -140..-44")),
            "link-drop" | "link-corrupt" | "link-stall" => {
                let n = one()?
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=MAX_LINK_FAULT).contains(n))
                    .ok_or_else(|| args_err("takes a count of bytes (or ms), 1..3600000"))?;
                Ok(match name {
                    "link-drop" => Fault::LinkDrop(n),
                    "link-corrupt" => Fault::LinkCorrupt(n),
                    _ => Fault::LinkStall(n),
                })
            }
            "cut-after" => one()?
                .parse::<u64>()
                .ok()
                .map(Fault::CutAfter)
                .ok_or_else(|| args_err("takes the bytes to let through before the cut")),
            "install-fail" => one()?
                .parse::<u16>()
                .ok()
                .filter(|c| *c != 128)
                .map(Fault::InstallFail)
                .ok_or_else(|| args_err("takes the +UUFWINSTALL code to end with (not 128)")),
            "throttle" => one()?
                .parse::<u64>()
                .ok()
                .filter(|k| *k <= MAX_THROTTLE_KBPS)
                .map(Fault::Throttle)
                .ok_or_else(|| args_err("takes kbit/s, 0..10000000 (0 lifts it)")),
            "latency" => one()?
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms <= MAX_LINK_FAULT)
                .map(Fault::Latency)
                .ok_or_else(|| args_err("takes ms, 0..3600000 (0 lifts it)")),
            _ => Err(FaultError::Unknown(name.to_string())),
        }
    }
}

/// What is armed, and what fired.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// The next TLS handshake fails.
    pub tls_fail: bool,
    /// The next lookup fails.
    pub dns_fail: bool,
    /// The next install ends with this code.
    pub install_fail: Option<u16>,
    /// The next download or socket stream is cut after this many bytes.
    pub cut_after: Option<u64>,
    /// A scenario's `download_bytes` cuts, for the downloads to come, in order.
    pub(crate) download_cuts: std::collections::VecDeque<u64>,
    /// `throttle`, kbit/s (0: none).
    pub throttle_kbps: u64,
    /// `latency`, ms (0: none).
    pub latency_ms: u64,
    /// Bytes to the host still to drop.
    pub link_drop: u64,
    /// Bytes to the host still to corrupt.
    pub link_corrupt: u64,
    /// The next output to a host is held this long.
    pub link_stall: Option<std::time::Duration>,
    /// The corruption's random bits (SplitMix64 from the seed).
    pub(crate) rng: u64,
    /// What fired (or was done), oldest first, at most [`MAX_FIRED`].
    fired: std::collections::VecDeque<String>,
}

impl Faults {
    /// What is armed, by fault name.
    pub fn armed(&self) -> Vec<String> {
        let mut armed = Vec::new();
        if self.tls_fail {
            armed.push("tls-fail".to_string());
        }
        if self.dns_fail {
            armed.push("dns-fail".to_string());
        }
        if let Some(code) = self.install_fail {
            armed.push(format!("install-fail {code}"));
        }
        if let Some(n) = self.cut_after {
            armed.push(format!("cut-after {n}"));
        }
        for n in &self.download_cuts {
            armed.push(format!("cut-after at download byte {n} (scenario)"));
        }
        if self.throttle_kbps > 0 {
            armed.push(format!("throttle {}", self.throttle_kbps));
        }
        if self.latency_ms > 0 {
            armed.push(format!("latency {}", self.latency_ms));
        }
        if self.link_drop > 0 {
            armed.push(format!("link-drop {}", self.link_drop));
        }
        if self.link_corrupt > 0 {
            armed.push(format!("link-corrupt {}", self.link_corrupt));
        }
        if let Some(d) = self.link_stall {
            armed.push(format!("link-stall {}", d.as_millis()));
        }
        armed
    }

    /// What fired, oldest first.
    pub fn fired(&self) -> Vec<String> {
        self.fired.iter().cloned().collect()
    }

    /// Records (and logs) that `what` fired.
    pub(crate) fn record(&mut self, mut what: String) {
        tracing::info!(fault = %what, "fault fired");
        // A long `urc` text is named by its start: the list stays small enough to answer.
        if what.len() > MAX_FIRED_TEXT {
            let mut end = MAX_FIRED_TEXT;
            while !what.is_char_boundary(end) {
                end -= 1;
            }
            what.truncate(end);
            what.push_str("...");
        }
        if self.fired.len() >= MAX_FIRED {
            self.fired.pop_front();
        }
        self.fired.push_back(what);
    }

    /// Takes the armed TLS failure, if any (it fires).
    pub(crate) fn take_tls(&mut self, on: &str) -> bool {
        let armed = std::mem::take(&mut self.tls_fail);
        if armed {
            self.record(format!("tls-fail ({on})"));
        }
        armed
    }

    /// Takes the armed lookup failure, if any (it fires).
    pub(crate) fn take_dns(&mut self, on: &str) -> bool {
        let armed = std::mem::take(&mut self.dns_fail);
        if armed {
            self.record(format!("dns-fail ({on})"));
        }
        armed
    }

    /// Applies the armed link faults to `out`, what the module just said to a host: drops,
    /// corrupts, or (stall) returns the time until which the caller must hold it.
    pub(crate) fn on_output(
        &mut self,
        out: &mut Vec<u8>,
        now: std::time::Instant,
    ) -> Option<std::time::Instant> {
        if out.is_empty() {
            return None;
        }
        if self.link_drop > 0 {
            let n = usize::try_from(self.link_drop)
                .unwrap_or(usize::MAX)
                .min(out.len());
            out.drain(..n);
            self.link_drop -= n as u64;
            if self.link_drop == 0 {
                self.record("link-drop (fired)".to_string());
            }
        }
        if self.link_corrupt > 0 && !out.is_empty() {
            let n = usize::try_from(self.link_corrupt)
                .unwrap_or(usize::MAX)
                .min(out.len());
            for b in &mut out[..n] {
                *b ^= 1 << (self.next_random() % 8);
            }
            self.link_corrupt -= n as u64;
            if self.link_corrupt == 0 {
                self.record("link-corrupt (fired)".to_string());
            }
        }
        let stall = self.link_stall.take()?;
        if out.is_empty() {
            self.link_stall = Some(stall);
            return None;
        }
        self.record(format!("link-stall {} (fired)", stall.as_millis()));
        Some(now + stall)
    }

    /// Whether a link fault is armed.
    pub(crate) fn link_armed(&self) -> bool {
        self.link_drop > 0 || self.link_corrupt > 0 || self.link_stall.is_some()
    }

    /// SplitMix64: a random bit position that the seed makes the same every run.
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Takes the cut for the download that starts: a scenario's `download_bytes` first, else
    /// the armed `cut-after`.
    pub(crate) fn take_download_cut(&mut self) -> Option<u64> {
        if let Some(n) = self.download_cuts.pop_front() {
            self.record(format!(
                "scenario: cut-after at download byte {n} (+UHTTPC)"
            ));
            return Some(n);
        }
        self.take_cut("+UHTTPC")
    }

    /// Takes the armed cut, if any, for the stream `on` starts (it fires as the bytes come).
    pub(crate) fn take_cut(&mut self, on: &str) -> Option<u64> {
        let n = self.cut_after.take();
        if let Some(n) = n {
            self.record(format!("cut-after {n} ({on})"));
        }
        n
    }

    /// Takes the armed install failure, if any (it fires).
    pub(crate) fn take_install(&mut self) -> Option<u16> {
        let code = self.install_fail.take();
        if let Some(code) = code {
            self.record(format!("install-fail {code}"));
        }
        code
    }
}

impl crate::Module {
    /// Injects `fault`; returns what happened, in a few words.
    pub fn inject(&mut self, fault: Fault) -> Result<String, FaultError> {
        let done = match fault {
            Fault::Reboot => {
                self.reboot()
                    .map_err(|e| FaultError::Failed(e.to_string()))?;
                "rebooted".to_string()
            }
            Fault::PowerLoss => {
                self.power_loss()
                    .map_err(|e| FaultError::Failed(e.to_string()))?;
                "power lost".to_string()
            }
            Fault::PowerLossAtWrite(n) => {
                let Some(switch) = self.power_switch() else {
                    return Err(FaultError::Failed(
                        "this module's storage has no power switch".into(),
                    ));
                };
                switch.cut_at_write(Some(n));
                return Ok(format!("power-loss-at-write {n} armed"));
            }
            Fault::Detach | Fault::Attach => {
                let lost = fault == Fault::Detach;
                let before = self.radio.snapshot();
                self.radio.network_lost = lost;
                self.radio_changed(before);
                if lost { "detached" } else { "attached" }.to_string()
            }
            Fault::Urc(text) => {
                self.broadcast_urc(text.as_bytes());
                format!("urc {text}")
            }
            Fault::Signal(rsrp) => {
                self.radio.rsrp_dbm = rsrp;
                format!("signal {rsrp}")
            }
            Fault::InstallFail(code) => {
                self.faults.install_fail = Some(code);
                return Ok(format!("install-fail {code} armed"));
            }
            Fault::TlsFail => {
                self.faults.tls_fail = true;
                return Ok("tls-fail armed".to_string());
            }
            Fault::CutAfter(n) => {
                self.faults.cut_after = Some(n);
                return Ok(format!("cut-after {n} armed"));
            }
            Fault::Throttle(kbps) => {
                self.faults.throttle_kbps = kbps;
                if kbps == 0 {
                    "throttle lifted".to_string()
                } else {
                    format!("throttle {kbps}")
                }
            }
            Fault::Latency(ms) => {
                self.faults.latency_ms = ms;
                if ms == 0 {
                    "latency lifted".to_string()
                } else {
                    format!("latency {ms}")
                }
            }
            Fault::LinkDrop(n) => {
                self.faults.link_drop = n;
                return Ok(format!("link-drop {n} armed"));
            }
            Fault::LinkCorrupt(n) => {
                self.faults.link_corrupt = n;
                return Ok(format!("link-corrupt {n} armed"));
            }
            Fault::LinkStall(ms) => {
                self.faults.link_stall = Some(std::time::Duration::from_millis(ms));
                return Ok(format!("link-stall {ms} armed"));
            }
            Fault::DnsFail => {
                self.faults.dns_fail = true;
                return Ok("dns-fail armed".to_string());
            }
            Fault::Clear => {
                let Faults { fired, rng, .. } = std::mem::take(&mut self.faults);
                self.faults.fired = fired;
                self.faults.rng = rng;
                if let Some(switch) = self.power_switch() {
                    switch.cut_at_write(None);
                }
                self.drop_scenario();
                return Ok("cleared".to_string());
            }
            Fault::Status => return Ok("status".to_string()),
        };
        self.faults.record(done.clone());
        Ok(done)
    }

    /// What is armed and what fired.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// How the network is shaped now (the bench's faults and the timing profile): the edge
    /// applies it to every connection.
    pub fn network_shaping(&self) -> Shaping {
        let timing = self.timing();
        let throttle = (self.faults.throttle_kbps > 0).then(|| self.faults.throttle_kbps * 125);
        // The slower of the bench's throttle and the profile's rate.
        let downlink = match (throttle, timing.downlink_bytes_per_s) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Shaping {
            latency: std::time::Duration::from_millis(self.faults.latency_ms)
                + timing.network_latency,
            bytes_per_s: downlink,
            uplink_bytes_per_s: timing.uplink_bytes_per_s,
        }
    }

    /// What is armed, by fault name: [`Faults::armed`], and a power cut at a write (with the
    /// writes left before it).
    pub fn armed_faults(&self) -> Vec<String> {
        let mut armed = self.faults.armed();
        if let Some(left) = self.power_switch().and_then(|s| s.writes_left()) {
            armed.push(format!("power-loss-at-write {left}"));
        }
        armed.extend(self.scenario_pending());
        armed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_long_urc_is_listed_by_its_start() {
        let mut f = Faults::default();
        f.record(format!("urc {}", "x".repeat(2000)));
        let fired = f.fired();
        assert_eq!(fired[0].len(), MAX_FIRED_TEXT + 3);
        assert!(fired[0].ends_with("..."));
    }

    #[test]
    fn parse_takes_the_names_and_arguments_of_the_spec() {
        assert_eq!(Fault::parse("reboot", &[]), Ok(Fault::Reboot));
        assert_eq!(
            Fault::parse("urc", &args(&["+CIEV:", "2,0"])),
            Ok(Fault::Urc("+CIEV: 2,0".into()))
        );
        assert_eq!(
            Fault::parse("signal", &args(&["-110"])),
            Ok(Fault::Signal(-110))
        );
        assert_eq!(
            Fault::parse("install-fail", &args(&["131"])),
            Ok(Fault::InstallFail(131))
        );
        for (name, a) in [
            ("reboot", vec!["now"]),
            ("signal", vec!["-30"]),
            ("signal", vec![]),
            ("install-fail", vec!["128"]),
            ("install-fail", vec!["x"]),
            ("urc", vec![]),
            ("urc", vec!["a\rb"]),
        ] {
            assert!(
                matches!(Fault::parse(name, &args(&a)), Err(FaultError::Args { .. })),
                "{name} {a:?}"
            );
        }
        assert_eq!(Fault::parse("power-loss", &[]), Ok(Fault::PowerLoss));
        assert_eq!(
            Fault::parse("power-loss-at-write", &args(&["3"])),
            Ok(Fault::PowerLossAtWrite(3))
        );
        assert!(matches!(
            Fault::parse("power-loss-at-write", &args(&["0"])),
            Err(FaultError::Args { .. })
        ));
        assert_eq!(
            Fault::parse("cut-after", &args(&["10"])),
            Ok(Fault::CutAfter(10))
        );
        assert_eq!(
            Fault::parse("throttle", &args(&["10"])),
            Ok(Fault::Throttle(10))
        );
        assert_eq!(
            Fault::parse("latency", &args(&["0"])),
            Ok(Fault::Latency(0))
        );
        assert_eq!(
            Shaping {
                latency: std::time::Duration::ZERO,
                bytes_per_s: Some(1000),
                uplink_bytes_per_s: None,
            }
            .pause(500),
            std::time::Duration::from_millis(500)
        );
        assert_eq!(
            Fault::parse("link-corrupt", &args(&["3"])),
            Ok(Fault::LinkCorrupt(3))
        );
        assert!(matches!(
            Fault::parse("link-stall", &args(&["0"])),
            Err(FaultError::Args { .. })
        ));
        assert_eq!(
            Fault::parse("melt", &[]),
            Err(FaultError::Unknown("melt".into()))
        );
    }
}
