//! The engine's multiplexed link (sealcell_modem::Link) beyond what the transcripts show: the
//! host's flow control (an MSC's FC bit, FCoff/FCon) holds the module's output back and lets
//! it go; a host that pipelines into a DLCI whose command waits for a job stops the link
//! reading at LINK_HOLD_INPUT instead of losing input; every DLCI wakes the link's one id.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use sealcell_at::cmux::control::{Message, MessageType, signals};
use sealcell_at::cmux::mux::{Config, Event, Multiplexer, Role};
use sealcell_modem::drive::NoNetwork;
use sealcell_modem::job::dispatch;
use sealcell_modem::{ChannelId, LINK_HOLD_INPUT, Link, Module};
use sealcell_testkit::{settle, test_config, virtual_now};

/// A module and a plain link to it.
fn plain(dir: &std::path::Path) -> (Module, Link) {
    let mut m = Module::open(test_config(dir), virtual_now()).unwrap();
    let link = Link::new(&mut m);
    (m, link)
}

/// The host's end of a multiplexer with this N1.
fn host_end(n1: usize) -> Multiplexer {
    Multiplexer::new(Config {
        role: Role::Initiator,
        n1,
        max_dlci: 5,
    })
}

/// A module, a link multiplexed with DLCIs 1 and 2 open, and the host's end.
fn muxed(dir: &std::path::Path) -> (Module, Link, Multiplexer) {
    let (mut m, mut link) = plain(dir);
    let now = m.now();
    let mut out = Vec::new();
    link.feed(&mut m, b"AT+CMUX=0,0,,64\r", now, &mut out);
    assert!(link.is_multiplexed());
    let mut host = host_end(64);
    let mut frames = Vec::new();
    for dlci in [0, 1, 2] {
        host.open(dlci, &mut frames);
    }
    out.clear();
    link.feed(&mut m, &frames, now, &mut out);
    let events = receive(&mut host, &out);
    assert_eq!(events, ["Opened(0)", "Opened(1)", "Opened(2)"]);
    assert_eq!(link.open_dlcis(), [1, 2]);
    (m, link, host)
}

fn receive(host: &mut Multiplexer, wire: &[u8]) -> Vec<String> {
    let mut input = wire;
    let mut replies = Vec::new();
    let mut events = Vec::new();
    while let Some(e) = host.receive(&mut input, &mut replies) {
        events.push(match e {
            Event::Data { dlci, data } => format!("{dlci}: {}", String::from_utf8_lossy(data)),
            other => format!("{other:?}"),
        });
    }
    events
}

/// The host sends `data` on `dlci`; the module's answer as the host decodes it.
fn exchange(m: &mut Module, link: &mut Link, host: &mut Multiplexer, frames: &[u8]) -> Vec<String> {
    let now = m.now();
    let mut out = Vec::new();
    link.feed(m, frames, now, &mut out);
    settle(m, link, now, &mut Default::default(), &mut out);
    receive(host, &out)
}

/// The data of `dlci`'s events, joined (an answer may span frames); any other event fails.
fn joined(events: &[String], dlci: u8) -> String {
    let prefix = format!("{dlci}: ");
    events
        .iter()
        .map(|e| e.strip_prefix(&prefix).unwrap_or_else(|| panic!("{e}")))
        .collect()
}

fn data(host: &Multiplexer, dlci: u8, text: &[u8]) -> Vec<u8> {
    let mut frames = Vec::new();
    host.send(dlci, text, &mut frames);
    frames
}

fn control(kind: MessageType, value: &[u8]) -> Vec<u8> {
    controls(&[(kind, value)])
}

/// One UIH frame on DLCI 0 carrying these control commands.
fn controls(messages: &[(MessageType, &[u8])]) -> Vec<u8> {
    let mut info = Vec::new();
    for &(kind, value) in messages {
        Message {
            kind,
            command: true,
            value,
        }
        .encode(&mut info);
    }
    let mut frames = Vec::new();
    sealcell_at::cmux::frame::Frame {
        dlci: 0,
        cr: true,
        kind: sealcell_at::cmux::frame::Kind::Uih,
        pf: false,
        info: &info,
    }
    .encode(&mut frames);
    frames
}

#[test]
fn an_msc_with_fc_holds_one_dlcis_output_until_it_is_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut link, mut host) = muxed(dir.path());
    let hold = control(MessageType::Msc, &[1 << 2 | 3, signals::FC | signals::EA]);
    // The answer is the MSC response, which changes nothing at the host's end.
    assert!(exchange(&mut m, &mut link, &mut host, &hold).is_empty());
    // DLCI 1 is held: its answer waits; DLCI 2 is served.
    let both = [data(&host, 1, b"AT\r"), data(&host, 2, b"AT+CGMI\r")].concat();
    assert_eq!(
        exchange(&mut m, &mut link, &mut host, &both),
        ["2: AT+CGMI\r\r\nu-blox\r\n\r\nOK\r\n"]
    );
    let release = control(MessageType::Msc, &[1 << 2 | 3, signals::EA]);
    assert_eq!(
        exchange(&mut m, &mut link, &mut host, &release),
        ["1: AT\r\r\nOK\r\n"]
    );
}

#[test]
fn fcoff_holds_every_dlci_and_fcon_lets_it_all_go() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut link, mut host) = muxed(dir.path());
    assert!(
        exchange(
            &mut m,
            &mut link,
            &mut host,
            &control(MessageType::FcOff, &[])
        )
        .is_empty()
    );
    let both = [data(&host, 1, b"ATE0\r"), data(&host, 2, b"ATE0\r")].concat();
    assert!(exchange(&mut m, &mut link, &mut host, &both).is_empty());
    assert_eq!(
        exchange(
            &mut m,
            &mut link,
            &mut host,
            &control(MessageType::FcOn, &[])
        ),
        ["1: ATE0\r\r\nOK\r\n", "2: ATE0\r\r\nOK\r\n"]
    );
}

#[test]
fn pipelining_into_a_waiting_dlci_stops_the_link_at_the_hold_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut link, host) = muxed(dir.path());
    let now = m.now();
    let mut out = Vec::new();
    // A delete is a disk job: held here, as an edge holds it while it runs.
    link.feed(
        &mut m,
        &data(&host, 1, b"AT+UDELFILE=\"x\"\r"),
        now,
        &mut out,
    );
    let jobs = dispatch(m.take_work(), &mut NoNetwork::default());
    assert_eq!(jobs.len(), 1);
    let flood = data(&host, 1, &b"AT\r".repeat(LINK_HOLD_INPUT / 3 + 1));
    assert!(link.wants_input(0));
    link.feed(&mut m, &flood, now, &mut out);
    assert!(
        !link.wants_input(0),
        "the link reads on past the hold limit"
    );
    for (id, job) in jobs {
        m.finish_job(id, job.run());
    }
    out.clear();
    // The job's end wakes the link (an edge polls it then).
    link.poll(&mut m, now, &mut out);
    settle(&mut m, &mut link, now, &mut Default::default(), &mut out);
    assert!(link.wants_input(0));
    // Every pipelined AT was run: none was dropped (the delete itself failed: no such file).
    let mut host = host;
    let answers: String = receive(&mut host, &out)
        .iter()
        .map(|e| e.strip_prefix("1: ").unwrap_or_else(|| panic!("{e}")))
        .collect();
    assert!(answers.starts_with("\r\nERROR\r\n"), "{}", &answers[..40]);
    assert_eq!(answers.matches("OK").count(), LINK_HOLD_INPUT / 3 + 1);
}

#[test]
fn every_dlci_wakes_the_links_one_id() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut link, host) = muxed(dir.path());
    let woken: Arc<Mutex<Vec<ChannelId>>> = Arc::default();
    let seen = Arc::clone(&woken);
    m.set_waker(Arc::new(move |id| seen.lock().unwrap().push(id)));
    let now = m.now();
    let mut out = Vec::new();
    link.feed(
        &mut m,
        &data(&host, 2, b"AT+UDELFILE=\"x\"\r"),
        now,
        &mut out,
    );
    for (id, job) in dispatch(m.take_work(), &mut NoNetwork::default()) {
        m.finish_job(id, job.run());
    }
    let woken = woken.lock().unwrap().clone();
    assert!(!woken.is_empty());
    assert!(woken.iter().all(|id| *id == link.wake_id()), "{woken:?}");
}

#[test]
fn a_dlci_held_with_a_full_output_still_lets_the_host_release_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut link, mut host) = muxed(dir.path());
    let size = 1536 * 1024;
    // The payload after the prompt, as a host sends it.
    let command = data(&host, 2, format!("AT+UDWNFILE=\"big\",{size}\r").as_bytes());
    assert_eq!(
        exchange(&mut m, &mut link, &mut host, &command).concat(),
        format!("2: AT+UDWNFILE=\"big\",{size}\r2: \r\n>")
    );
    let payload = data(&host, 2, &vec![b'z'; size]);
    assert_eq!(
        exchange(&mut m, &mut link, &mut host, &payload),
        ["2: \r\nOK\r\n"]
    );
    let hold = control(MessageType::Msc, &[1 << 2 | 3, signals::FC | signals::EA]);
    exchange(&mut m, &mut link, &mut host, &hold);
    // A streamed read on the held DLCI fills its output to the channel's limit and stops.
    let read = data(&host, 1, b"AT+URDFILE=\"big\"\r");
    assert!(exchange(&mut m, &mut link, &mut host, &read).is_empty());
    // Nothing to do until the host releases it (a driver must not spin on it)...
    assert!(!link.has_more());
    // ...and the line stays readable: the release must get through.
    assert!(link.wants_input(0));
    let release = control(MessageType::Msc, &[1 << 2 | 3, signals::EA]);
    let now = m.now();
    let mut out = Vec::new();
    link.feed(&mut m, &release, now, &mut out);
    settle(&mut m, &mut link, now, &mut Default::default(), &mut out);
    let got: String = receive(&mut host, &out)
        .iter()
        .map(|e| e.strip_prefix("1: ").unwrap_or_else(|| panic!("{e}")))
        .collect();
    assert_eq!(got.matches('z').count(), size);
    assert!(
        got.ends_with("\"\r\n\r\nOK\r\n"),
        "{}",
        &got[got.len() - 20..]
    );
}

/// Uploads `size` bytes of `z` as `name` through `dlci`.
fn upload(
    m: &mut Module,
    link: &mut Link,
    host: &mut Multiplexer,
    dlci: u8,
    name: &str,
    size: usize,
) {
    let command = data(
        host,
        dlci,
        format!("AT+UDWNFILE=\"{name}\",{size}\r").as_bytes(),
    );
    exchange(m, link, host, &command);
    let payload = data(host, dlci, &vec![b'z'; size]);
    let answer = exchange(m, link, host, &payload);
    assert_eq!(answer, [format!("{dlci}: \r\nOK\r\n")]);
}

#[test]
fn a_close_down_followed_by_more_messages_still_closes_down_and_leaks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut link, _host) = muxed(dir.path());
    // CLD, then FCoff, in one information field.
    let frame = controls(&[(MessageType::Cld, &[]), (MessageType::FcOff, &[])]);
    let now = m.now();
    let mut out = Vec::new();
    link.feed(&mut m, &frame, now, &mut out);
    assert_eq!(out, [0xF9, 0x01, 0xEF, 0x05, 0xC1, 0x01, 0x93, 0xF9]);
    assert!(!link.is_multiplexed());
    out.clear();
    link.feed(&mut m, b"AT\r", now, &mut out);
    assert_eq!(out, b"AT\r\r\nOK\r\n");
    // Only the plain channel is attached; none once the link is closed.
    assert_eq!(m.channel_count(), 1);
    link.close(&mut m);
    assert_eq!(m.channel_count(), 0);
}

#[test]
fn output_the_host_held_is_not_framed_onto_the_plain_line_after_a_close_down() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut link, mut host) = muxed(dir.path());
    let hold = control(MessageType::Msc, &[1 << 2 | 3, signals::FC | signals::EA]);
    exchange(&mut m, &mut link, &mut host, &hold);
    let at = data(&host, 1, b"AT\r");
    assert!(exchange(&mut m, &mut link, &mut host, &at).is_empty());
    let now = m.now();
    let mut out = Vec::new();
    link.feed(&mut m, &control(MessageType::Cld, &[]), now, &mut out);
    assert_eq!(out, [0xF9, 0x01, 0xEF, 0x05, 0xC1, 0x01, 0x93, 0xF9]);
}

#[test]
fn urcs_for_a_held_dlci_stay_within_the_modules_queue() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut link, mut host) = muxed(dir.path());
    let creg = data(&host, 1, b"ATE0;+CREG=1\r");
    exchange(&mut m, &mut link, &mut host, &creg);
    let hold = control(MessageType::Msc, &[1 << 2 | 3, signals::FC | signals::EA]);
    exchange(&mut m, &mut link, &mut host, &hold);
    let flap = data(&host, 2, b"AT+CFUN=4;+CFUN=1\r");
    for _ in 0..600 {
        exchange(&mut m, &mut link, &mut host, &flap);
    }
    let release = control(MessageType::Msc, &[1 << 2 | 3, signals::EA]);
    let got: String = exchange(&mut m, &mut link, &mut host, &release).concat();
    let urcs = got.matches("+CREG:").count();
    assert!(
        (1..=sealcell_modem::MAX_QUEUED_URCS).contains(&urcs),
        "{urcs} URCs held for one DLCI"
    );
}

#[test]
fn tiny_frames_to_a_streaming_dlci_do_not_pump_past_the_output_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut link, mut host) = muxed(dir.path());
    upload(&mut m, &mut link, &mut host, 2, "big", 6 << 20);
    // The read and five one-byte frames in one read of the line.
    let mut wire = data(&host, 1, b"AT+URDFILE=\"big\"\r");
    for _ in 0..5 {
        wire.extend(data(&host, 1, b"A"));
    }
    let now = m.now();
    let mut out = Vec::new();
    link.feed(&mut m, &wire, now, &mut out);
    assert!(
        out.len() <= 2 * sealcell_modem::OUTPUT_LIMIT,
        "one feed made {} bytes",
        out.len()
    );
    assert!(link.has_more());
    assert!(!link.wants_input(out.len()));
}

#[test]
fn the_plain_links_report_modes_and_settings_survive_the_multiplexer() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut link) = plain(dir.path());
    let now = m.now();
    let mut out = Vec::new();
    link.feed(&mut m, b"ATE0;+CMEE=2;+CREG=2\rAT+CMUX=0\r", now, &mut out);
    assert!(link.is_multiplexed());
    let mut frames = vec![0xF9, 0x03, 0x3F, 0x01, 0x1C, 0xF9];
    frames.extend(control(MessageType::Cld, &[]));
    link.feed(&mut m, &frames, now, &mut out);
    assert!(!link.is_multiplexed());
    out.clear();
    link.feed(&mut m, b"AT+CREG?;+CMEE?\r", now, &mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("\r\n+CREG: 2,1"), "{text}");
    assert!(text.contains("+CMEE: 2"), "{text}");
}

#[test]
fn ufwupd_runs_its_xmodem_transfer_on_a_dlci_and_the_reboot_ends_the_multiplexer() {
    use sealcell_at::xmodem::{ACK, EOT, blocks};
    use sealcell_testkit::plans::fw_dir;
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut link, mut host) = muxed(dir.path());
    let pkg = std::fs::read(fw_dir().join("package.zip")).unwrap();
    let md5 = std::fs::read_to_string(fw_dir().join("package.md5")).unwrap();
    let md5 = md5.split_whitespace().next().unwrap().to_string();
    let start = data(
        &host,
        1,
        format!("ATE0;+UFWUPD=3,115200,\"{md5}\"\r").as_bytes(),
    );
    assert_eq!(
        joined(&exchange(&mut m, &mut link, &mut host, &start), 1),
        format!("ATE0;+UFWUPD=3,115200,\"{md5}\"\r\r\n+UFWUPD: ONGOING\r\nC"),
        "the transfer starts with C"
    );
    // Each 1029-byte block travels in many 64-byte frames; each is acknowledged in a frame.
    for block in blocks(&pkg) {
        let frames = data(&host, 1, &block);
        let answer = exchange(&mut m, &mut link, &mut host, &frames);
        assert_eq!(answer, [format!("1: {}", char::from(ACK))]);
    }
    let now = m.now();
    let mut out = Vec::new();
    link.feed(&mut m, &data(&host, 1, &[EOT]), now, &mut out);
    settle(&mut m, &mut link, now, &mut Default::default(), &mut out);
    // The ACK, the OK and the install URCs come framed on DLCI 1; the module then reboots
    // into plain AT.
    let framed = joined(&receive(&mut host, &out), 1);
    assert!(framed.starts_with(char::from(ACK)), "{framed:?}");
    assert!(framed.ends_with("+UUFWINSTALL: 128\r\n"), "{framed:?}");
    assert!(!link.is_multiplexed());
    out.clear();
    link.feed(&mut m, b"AT+CGMR\r", now, &mut out);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "AT+CGMR\r\r\n18.00\r\n\r\nOK\r\n"
    );
}

#[test]
fn a_reboot_then_at_cmux_in_one_read_keeps_the_multiplexer() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut link) = plain(dir.path());
    let now = m.now();
    let mut out = Vec::new();
    link.feed(&mut m, b"AT+CFUN=16\rAT+CMUX=0\r", now, &mut out);
    assert_eq!(out, b"AT+CFUN=16\r\r\nOK\r\nAT+CMUX=0\r\r\nOK\r\n");
    assert!(
        link.is_multiplexed(),
        "the OK was answered: the link must speak frames"
    );
}

#[test]
fn a_dlci_waiting_for_a_job_is_not_idle() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut link, host) = muxed(dir.path());
    let now = m.now();
    let mut out = Vec::new();
    link.feed(
        &mut m,
        &data(&host, 1, b"AT+UDELFILE=\"x\"\r"),
        now,
        &mut out,
    );
    let jobs = dispatch(m.take_work(), &mut NoNetwork::default());
    // The line may be read (the other DLCIs go on), but a transport at its end of input
    // must wait for the answer.
    assert!(link.wants_input(0));
    assert!(!link.is_idle());
    for (id, job) in jobs {
        m.finish_job(id, job.run());
    }
    link.poll(&mut m, now, &mut out);
    assert!(link.is_idle());
}

#[test]
fn a_dlci_that_reboots_the_module_runs_nothing_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut link, mut host) = muxed(dir.path());
    let both = data(&host, 1, b"AT+CFUN=16\rAT+CFUN=4\r");
    assert_eq!(
        joined(&exchange(&mut m, &mut link, &mut host, &both), 1),
        "AT+CFUN=16\r\r\nOK\r\n"
    );
    assert!(!link.is_multiplexed());
    let now = m.now();
    let mut out = Vec::new();
    link.feed(&mut m, b"AT+CFUN?\r", now, &mut out);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "AT+CFUN?\r\r\n+CFUN: 1,0\r\n\r\nOK\r\n"
    );
}

#[test]
fn urcs_the_sleeping_plain_channel_got_go_out_at_the_close_down() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut link) = plain(dir.path());
    let now = m.now();
    let mut out = Vec::new();
    link.feed(&mut m, b"ATE0;+CREG=1\rAT+CMUX=0,0,,64\r", now, &mut out);
    let mut host = host_end(64);
    let mut frames = Vec::new();
    host.open(0, &mut frames);
    host.open(1, &mut frames);
    link.feed(&mut m, &frames, now, &mut out);
    let radio_off = data(&host, 1, b"AT+CFUN=4\r");
    exchange(&mut m, &mut link, &mut host, &radio_off);
    out.clear();
    link.feed(&mut m, &control(MessageType::Cld, &[]), now, &mut out);
    assert_eq!(
        out,
        [
            &[0xF9, 0x01, 0xEF, 0x05, 0xC1, 0x01, 0x93, 0xF9][..],
            b"\r\n+CREG: 0\r\n"
        ]
        .concat()
    );
}

#[test]
fn input_fed_while_the_link_holds_undecoded_input_keeps_its_order() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut link, mut host) = muxed(dir.path());
    upload(&mut m, &mut link, &mut host, 2, "big", 3 << 20);
    let now = m.now();
    let mut out = Vec::new();
    let first = [
        data(&host, 1, b"ATE0;+URDFILE=\"big\"\r"),
        data(&host, 2, b"ATE0\r"),
        data(&host, 2, b"AT+CGMI\r"),
    ]
    .concat();
    link.feed(&mut m, &first, now, &mut out);
    assert!(!link.wants_input(out.len()));
    // A driver that feeds on anyway: DLCI 2's next command still comes after its first.
    out.clear();
    link.feed(&mut m, &data(&host, 2, b"AT+CGMM\r"), now, &mut out);
    settle(&mut m, &mut link, now, &mut Default::default(), &mut out);
    let dlci2: String = receive(&mut host, &out)
        .iter()
        .filter_map(|e| e.strip_prefix("2: "))
        .collect();
    let (cgmi, cgmm) = (dlci2.find("u-blox"), dlci2.find("TOBY-L210"));
    assert!(cgmi.is_some() && cgmm.is_some() && cgmi < cgmm, "{dlci2:?}");
}
