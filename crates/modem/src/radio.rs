//! The emulated radio (at-contract §1, §1.1): functionality level, operator selection, the
//! per-channel reporting modes of `+CREG`/`+CGREG`/`+CEREG`/`+CSCON`, the one LTE serving cell
//! of the always-there home network, and the registration reports built from them.
//!
//! All of it is volatile: a reboot brings the factory values back. Reports are values (strings
//! and URC lists) so the handlers in `command::network` only format and route them.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::ids::ChannelId;

/// The emulated home network "sealcell": PLMN 001/01, the ITU test network.
pub mod home {
    /// `+COPS` long alphanumeric name.
    pub const OPERATOR_LONG: &str = "sealcell";
    /// `+COPS` short alphanumeric name.
    pub const OPERATOR_SHORT: &str = "sealcell";
    /// `+COPS` numeric name (MCC + MNC).
    pub const OPERATOR_NUMERIC: &str = "00101";
    /// Mobile country code.
    pub const MCC: u16 = 1;
    /// Mobile network code (two digits).
    pub const MNC: u16 = 1;
    /// The APN the network assigns when the host defines none.
    pub const DEFAULT_APN: &str = "sealcell";
}

/// Access technology 7 (27.007 `<AcT>`): E-UTRAN.
pub const ACT_LTE: u8 = 7;

/// The one LTE serving cell, the same for every module, so that `+UCGED`, `+CSQ`, `+CESQ` and the
/// registration reports agree with one another.
///
/// The signal is a good indoor one: RSRP -90 dBm, RSRQ -9 dB over 10 MHz (50 resource blocks),
/// which puts the RSSI at RSRP + 10·log10(50) - RSRQ = -64 dBm, `+CSQ` 24.
pub mod cell {
    /// Tracking area code (16 bits), as `+CEREG` prints it: 4 hex digits.
    pub const TAC: u16 = 0x0001;
    /// E-UTRAN cell identity (28 bits), as `+CEREG` prints it: 8 hex digits.
    pub const CELL_ID: u32 = 0x01A2_D001;
    /// Physical cell id (0..503).
    pub const PCI: u16 = 42;
    /// Downlink EARFCN: band 20 (800 MHz), one of TOBY-L210's EMEA bands.
    pub const EARFCN: u32 = 6300;
    /// The E-UTRA band of [`EARFCN`].
    pub const BAND: u8 = 20;
    /// Downlink and uplink bandwidth, in MHz.
    pub const BANDWIDTH_MHZ: u8 = 10;
    /// Reference signal received power, dBm.
    pub const RSRP_DBM: i32 = -90;
    /// Reference signal received quality, dB.
    pub const RSRQ_DB: i32 = -9;
    /// Signal to interference and noise ratio, dB.
    pub const SINR_DB: i32 = 13;
    /// Received signal strength, dBm (see the module docs).
    pub const RSSI_DBM: i32 = -64;
}

/// The RSSI of the serving cell when its RSRP is `rsrp_dbm` (the RSRQ fixed): see [`cell`].
pub fn rssi_dbm(rsrp_dbm: i32) -> i32 {
    rsrp_dbm + cell::RSSI_DBM - cell::RSRP_DBM
}

/// 27.007 `+CSQ` `<rssi>` for an RSRP of `rsrp_dbm`: 0 is -113 dBm or less, steps of 2 dB.
pub fn csq_rssi(rsrp_dbm: i32) -> u8 {
    ((rssi_dbm(rsrp_dbm) + 113) / 2).clamp(0, 31) as u8
}

/// 27.007 `+CESQ` `<rsrp>`: 0 is below -140 dBm, then one step per dB up to 97.
pub fn cesq_rsrp(rsrp_dbm: i32) -> u8 {
    (rsrp_dbm + 141).clamp(0, 97) as u8
}

/// 27.007 `+CESQ` `<rsrq>`: 0 is below -19.5 dB, then one step per 0.5 dB up to 34.
pub fn cesq_rsrq() -> u8 {
    // (rsrq + 19.5) * 2 + 1, in integers.
    (2 * cell::RSRQ_DB + 39 + 1).clamp(0, 34) as u8
}

/// Which registration report (27.007 §7.2, §10.1.20, §10.1.22).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reg {
    /// `+CREG`: circuit-switched domain.
    Cs,
    /// `+CGREG`: GPRS packet domain.
    Gprs,
    /// `+CEREG`: EPS.
    Eps,
}

impl Reg {
    /// The three, in the order their URCs go out.
    pub const ALL: [Reg; 3] = [Reg::Cs, Reg::Gprs, Reg::Eps];

    /// The prefix of reads and URCs.
    pub fn prefix(self) -> &'static str {
        match self {
            Reg::Cs => "+CREG",
            Reg::Gprs => "+CGREG",
            Reg::Eps => "+CEREG",
        }
    }

    /// The highest `<n>` accepted (at-contract §1.1: 0..5 for each; 27.007 Rel-13 defines 4
    /// and 5 for the packet domains only, and `+CREG` 4/5 report as 3 does, having no PSM).
    pub const MAX_N: u8 = 5;
}

/// One channel's reporting modes (27.007 `<n>`); factory value 0 for each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportModes {
    /// `AT+CREG=<n>`.
    pub creg: u8,
    /// `AT+CGREG=<n>`.
    pub cgreg: u8,
    /// `AT+CEREG=<n>`.
    pub cereg: u8,
    /// `AT+CSCON=<n>` (0 or 1).
    pub cscon: u8,
}

impl ReportModes {
    /// The `<n>` of `reg`.
    pub fn n(&self, reg: Reg) -> u8 {
        match reg {
            Reg::Cs => self.creg,
            Reg::Gprs => self.cgreg,
            Reg::Eps => self.cereg,
        }
    }

    /// Sets the `<n>` of `reg`.
    pub fn set_n(&mut self, reg: Reg, n: u8) {
        match reg {
            Reg::Cs => self.creg = n,
            Reg::Gprs => self.cgreg = n,
            Reg::Eps => self.cereg = n,
        }
    }
}

/// The emulated radio: volatile, back to factory values at every boot.
#[derive(Clone, Debug)]
pub(crate) struct Radio {
    pub(crate) cfun: i64,
    pub(crate) cops_mode: i64,
    pub(crate) cops_format: i64,
    pub(crate) attach_wanted: bool,
    pub(crate) deactivated: Vec<i64>,
    /// `AT+UCGED=<mode>` (0, 2 or 5).
    pub(crate) ucged_mode: i64,
    /// The network is gone (the test bench's `detach`): not registered, searching.
    pub(crate) network_lost: bool,
    /// The timing profile's search for the network after the radio came on
    /// ([`crate::timing`]): not registered yet, searching.
    pub(crate) searching: bool,
    /// The serving cell's RSRP, dBm (the test bench's `signal`; [`cell::RSRP_DBM`] at first).
    pub(crate) rsrp_dbm: i32,
    /// Reporting modes by channel: each channel (a USB interface, a TCP client) sets its own,
    /// as the interfaces of a real module do. A channel not in the map has the factory modes.
    modes: HashMap<ChannelId, ReportModes>,
}

impl Default for Radio {
    fn default() -> Self {
        Radio {
            cfun: 1,
            cops_mode: 0,
            cops_format: 0,
            attach_wanted: true,
            deactivated: Vec::new(),
            ucged_mode: 0,
            network_lost: false,
            searching: false,
            rsrp_dbm: cell::RSRP_DBM,
            modes: HashMap::new(),
        }
    }
}

/// What the radio looked like before a change, to find the URCs the change causes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RadioSnapshot {
    /// The `<stat>` of each report, in [`Reg::ALL`] order.
    stats: [u8; 3],
    connected: bool,
    /// Whether the radio wanted the network ([`Radio::wants_network`]).
    pub(crate) wants: bool,
}

impl Radio {
    /// Registered on the always-available emulated LTE network.
    pub(crate) fn registered(&self) -> bool {
        self.wants_network() && !self.searching
    }

    /// The radio is on, may register, and there is a network to register with.
    pub(crate) fn wants_network(&self) -> bool {
        self.cfun == 1 && self.cops_mode != 2 && !self.network_lost
    }

    /// Attached to the packet domain (the LTE default bearer is up).
    pub(crate) fn attached(&self) -> bool {
        self.registered() && self.attach_wanted
    }

    /// RRC connected (`+CSCON` `<mode>` 1): while attached, as the emulated network never lets
    /// the connection go idle.
    pub(crate) fn rrc_connected(&self) -> bool {
        self.attached()
    }

    /// The reporting modes of `channel`.
    pub(crate) fn modes(&self, channel: ChannelId) -> ReportModes {
        self.modes.get(&channel).copied().unwrap_or_default()
    }

    /// Changes the reporting modes of `channel`.
    pub(crate) fn modes_mut(&mut self, channel: ChannelId) -> &mut ReportModes {
        self.modes.entry(channel).or_default()
    }

    /// Forgets a channel that went away.
    pub(crate) fn forget(&mut self, channel: ChannelId) {
        self.modes.remove(&channel);
    }

    pub(crate) fn snapshot(&self) -> RadioSnapshot {
        RadioSnapshot {
            stats: Reg::ALL.map(|reg| self.stat(reg)),
            connected: self.rrc_connected(),
            wants: self.wants_network(),
        }
    }

    /// 27.007 `<stat>` of `reg`: 1 registered (home network), 0 not registered and not
    /// searching. On E-UTRAN a packet-domain detach (`AT+CGATT=0`) is an EPS detach, so
    /// `+CEREG` and `+CGREG` follow the attach; `+CREG` follows the cell (the radio is still
    /// camped, `+COPS` and `+CSQ` still see it).
    pub(crate) fn stat(&self, reg: Reg) -> u8 {
        // No network to register with, or not found yet: not registered, searching (2).
        if (self.network_lost || self.searching) && self.cfun == 1 && self.cops_mode != 2 {
            return 2;
        }
        match reg {
            Reg::Cs => u8::from(self.registered()),
            Reg::Gprs | Reg::Eps => u8::from(self.attached()),
        }
    }

    /// The fields of a registration report after `<n>` (read form) or alone (URC), for mode `n`:
    ///
    /// - `<stat>` for n = 0 and 1;
    /// - `,<lac|tac>,<ci>,<AcT>` added for n >= 2 while registered (quoted hex, as 27.007 says);
    /// - n = 3: cause fields only "if available": none is, so the same as 2;
    /// - n = 4 and 5 (packet domains): empty `<cause_type>,<reject_cause>`, then the PSM timers
    ///   `<Active-Time>` and the periodic update timer, empty since no PSM was granted
    ///   (`+CPSMS` is off). `+CGREG` has an (empty) `<rac>` before the causes and a third
    ///   timer (GPRS READY) after the two.
    pub(crate) fn report_fields(&self, reg: Reg, n: u8) -> String {
        let stat = self.stat(reg);
        let mut s = stat.to_string();
        if n < 2 || stat != 1 {
            return s;
        }
        let _ = write!(
            s,
            ",\"{:04X}\",\"{:08X}\",{ACT_LTE}",
            cell::TAC,
            cell::CELL_ID
        );
        if n >= 4 {
            match reg {
                // CS has no PSM: n = 4 and 5 report as 3.
                Reg::Cs => {}
                // <rac>, the two causes, Active-Time, Periodic-RAU, GPRS READY timer.
                Reg::Gprs => s.push_str(",,,,,,"),
                // The two causes, Active-Time, Periodic-TAU.
                Reg::Eps => s.push_str(",,,,"),
            }
        }
        s
    }

    /// The URCs a change from `before` causes on `channel`, in the order a module sends them:
    /// `+CREG`, `+CGREG`, `+CEREG` for each with n >= 1, then `+CSCON` when n = 1.
    pub(crate) fn change_urcs(&self, before: RadioSnapshot, channel: ChannelId) -> Vec<String> {
        let modes = self.modes(channel);
        let mut urcs = Vec::new();
        for (reg, was) in Reg::ALL.into_iter().zip(before.stats) {
            let n = modes.n(reg);
            if n >= 1 && self.stat(reg) != was {
                urcs.push(format!("{}: {}", reg.prefix(), self.report_fields(reg, n)));
            }
        }
        if before.connected != self.rrc_connected() && modes.cscon == 1 {
            urcs.push(format!("+CSCON: {}", u8::from(self.rrc_connected())));
        }
        urcs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_indices_agree_with_the_cell() {
        assert_eq!(csq_rssi(cell::RSRP_DBM), 24);
        assert_eq!(cesq_rsrp(cell::RSRP_DBM), 51);
        assert_eq!(csq_rssi(-110), 14);
        assert_eq!(cesq_rsrp(-150), 0);
        assert_eq!(cesq_rsrq(), 22);
        // RSSI = RSRP + 10 log10(12 * 50 / 12 ... ) - RSRQ: 50 RBs, -90 + 17 + 9 = -64.
        assert_eq!(
            cell::RSRP_DBM + 17 - cell::RSRQ_DB,
            cell::RSSI_DBM,
            "RSSI, RSRP and RSRQ disagree"
        );
    }

    #[test]
    fn report_fields_per_mode() {
        let mut r = Radio::default();
        assert_eq!(r.report_fields(Reg::Eps, 0), "1");
        assert_eq!(r.report_fields(Reg::Eps, 1), "1");
        assert_eq!(r.report_fields(Reg::Eps, 2), "1,\"0001\",\"01A2D001\",7");
        assert_eq!(r.report_fields(Reg::Eps, 3), "1,\"0001\",\"01A2D001\",7");
        assert_eq!(
            r.report_fields(Reg::Eps, 4),
            "1,\"0001\",\"01A2D001\",7,,,,"
        );
        assert_eq!(
            r.report_fields(Reg::Gprs, 5),
            "1,\"0001\",\"01A2D001\",7,,,,,,"
        );
        assert_eq!(r.report_fields(Reg::Cs, 5), "1,\"0001\",\"01A2D001\",7");
        r.cfun = 4;
        assert_eq!(r.report_fields(Reg::Eps, 4), "0");
    }

    #[test]
    fn a_packet_detach_is_an_eps_detach() {
        let mut r = Radio::default();
        let ch = ChannelId(7);
        for reg in Reg::ALL {
            r.modes_mut(ch).set_n(reg, 2);
        }
        let before = r.snapshot();
        r.attach_wanted = false;
        assert_eq!(r.report_fields(Reg::Cs, 2), "1,\"0001\",\"01A2D001\",7");
        assert_eq!(r.report_fields(Reg::Eps, 2), "0");
        assert_eq!(r.change_urcs(before, ch), ["+CGREG: 0", "+CEREG: 0"]);
        let before = r.snapshot();
        r.attach_wanted = true;
        assert_eq!(
            r.change_urcs(before, ch),
            [
                "+CGREG: 1,\"0001\",\"01A2D001\",7",
                "+CEREG: 1,\"0001\",\"01A2D001\",7"
            ]
        );
    }

    #[test]
    fn modes_are_per_channel() {
        let mut r = Radio::default();
        r.modes_mut(ChannelId(1)).set_n(Reg::Eps, 4);
        assert_eq!(r.modes(ChannelId(1)).n(Reg::Eps), 4);
        assert_eq!(r.modes(ChannelId(1)).n(Reg::Cs), 0);
        assert_eq!(r.modes(ChannelId(2)), ReportModes::default());
        let before = r.snapshot();
        r.cfun = 4;
        assert_eq!(r.change_urcs(before, ChannelId(1)), ["+CEREG: 0"]);
        assert!(r.change_urcs(before, ChannelId(2)).is_empty());
        r.forget(ChannelId(1));
        assert_eq!(r.modes(ChannelId(1)), ReportModes::default());
    }
}
