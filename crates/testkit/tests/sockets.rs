//! Sockets on virtual time (at-contract §8), where a golden transcript cannot say it well:
//! large and hostile flows, and the events that can strand a waiting command (a reboot, a
//! close from another channel, registration lost, the owner channel gone).

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sealcell_modem::Channel;
use sealcell_modem::socket::RX_BUFFER;
use sealcell_testkit::net::Script;
use sealcell_testkit::{TestModule, settle};
use sha2::{Digest, Sha256};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn module() -> TestModule {
    let mut m = TestModule::new();
    assert_eq!(text(&m.send(b"ATE0;+CMEE=1\r")), "ATE0;+CMEE=1\r\r\nOK\r\n");
    m
}

fn ok(m: &mut TestModule, line: &str) {
    assert_eq!(
        text(&m.send(format!("{line}\r").as_bytes())),
        "\r\nOK\r\n",
        "{line}"
    );
}

/// `AT+USOCR=6`, which must make socket `id`.
fn tcp_socket(m: &mut TestModule, id: u8) {
    assert_eq!(
        text(&m.send(b"AT+USOCR=6\r")),
        format!("\r\n+USOCR: {id}\r\n\r\nOK\r\n")
    );
}

/// Sends `line` on a second channel and returns its answer.
fn on(m: &mut TestModule, c: &mut Channel, line: &str) -> String {
    let mut out = Vec::new();
    c.feed(
        &mut m.module,
        format!("{line}\r").as_bytes(),
        m.now,
        &mut out,
    );
    settle(&mut m.module, c, m.now, &mut m.net, &mut out);
    text(&out)
}

/// The bytes a server sends: every value, 3 MiB/s worth of a pattern.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 256) as u8).collect()
}

#[test]
fn a_flood_fills_the_buffer_and_no_more_and_every_byte_is_read_in_order() {
    let mut m = module();
    let sent = pattern(200 * 1024);
    m.net.scripted().serve(
        "192.0.2.50",
        9,
        Script {
            pieces: vec![(Duration::ZERO, sent.clone())],
            end: sealcell_testkit::net::ScriptEnd::Hang,
            echo: false,
        },
    );
    tcp_socket(&mut m, 0);
    assert_eq!(
        text(&m.send(b"AT+USOCO=0,\"192.0.2.50\",9\r")),
        format!("\r\nOK\r\n\r\n+UUSORD: 0,{RX_BUFFER}\r\n")
    );
    // The module holds its buffer and not a byte more; the rest waits at the server.
    assert_eq!(
        text(&m.send(b"AT+USORD=0,0\r")),
        format!("\r\n+USORD: 0,{RX_BUFFER}\r\n\r\nOK\r\n")
    );
    let mut got = Vec::new();
    let mut hasher = Sha256::new();
    while got.len() < sent.len() {
        let answer = m.send(b"AT+USORD=0,1024\r");
        let head = b"\r\n+USORD: 0,";
        assert!(answer.starts_with(head), "{}", text(&answer));
        let comma = head.len()
            + answer[head.len()..]
                .iter()
                .position(|b| *b == b',')
                .unwrap();
        let n: usize = text(&answer[head.len()..comma]).parse().unwrap();
        assert!(n > 0 && n <= 1024, "{n}");
        let data = &answer[comma + 2..comma + 2 + n];
        assert_eq!(&answer[comma + 2 + n..comma + 5 + n], b"\"\r\n");
        got.extend_from_slice(data);
        hasher.update(data);
        let pending = text(&m.send(b"AT+USORD=0,0\r"));
        let pending: usize = pending
            .trim()
            .strip_prefix("+USORD: 0,")
            .and_then(|p| p.split('\r').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(pending <= RX_BUFFER, "{pending}");
    }
    assert_eq!(got.len(), sent.len());
    assert_eq!(
        hasher.finalize().as_slice(),
        Sha256::digest(&sent).as_slice()
    );
    assert_eq!(
        text(&m.send(b"AT+USOCTL=0,3\r")),
        format!("\r\n+USOCTL: 0,3,{}\r\n\r\nOK\r\n", sent.len())
    );
}

#[test]
fn a_reboot_during_a_connect_leaves_no_channel_waiting_and_no_socket() {
    let mut m = module();
    m.net.scripted().blackhole("192.0.2.40", 80);
    tcp_socket(&mut m, 0);
    assert_eq!(text(&m.send(b"AT+USOCO=0,\"192.0.2.40\",80\r")), "");
    assert_eq!(m.net.scripted().open_sockets(), 1);
    let mut other = Channel::new(&mut m.module);
    assert!(on(&mut m, &mut other, "AT+CFUN=16").ends_with("OK\r\n"));
    // The first channel starts again (factory settings: echo on); its socket is gone.
    let after = text(&m.send(b"AT+USOCL=0\r"));
    assert_eq!(after, "AT+USOCL=0\r\r\nERROR\r\n");
    assert_eq!(m.net.scripted().open_sockets(), 0);
    assert_eq!(m.wait(Duration::from_secs(40)), b"");
}

#[test]
fn a_close_from_another_channel_ends_the_waiting_connect() {
    let mut m = module();
    m.net.scripted().blackhole("192.0.2.40", 80);
    tcp_socket(&mut m, 0);
    assert_eq!(text(&m.send(b"AT+USOCO=0,\"192.0.2.40\",80\r")), "");
    let mut other = Channel::new(&mut m.module);
    assert_eq!(
        on(&mut m, &mut other, "AT+USOCL=0"),
        "AT+USOCL=0\r\r\nOK\r\n"
    );
    assert_eq!(text(&m.wait(Duration::ZERO)), "\r\n+CME ERROR: 3\r\n");
    assert_eq!(
        text(&m.send(b"AT+USOER\r")),
        "\r\n+USOER: 103\r\n\r\nOK\r\n"
    );
    assert_eq!(m.net.scripted().open_sockets(), 0);
}

#[test]
fn registration_lost_during_a_connect_fails_it_and_closes_the_sockets() {
    let mut m = module();
    m.net.scripted().blackhole("192.0.2.40", 80);
    m.net.scripted().serve("192.0.2.20", 7, Script::echo());
    tcp_socket(&mut m, 0);
    ok(&mut m, "AT+USOCO=0,\"192.0.2.20\",7");
    tcp_socket(&mut m, 1);
    assert_eq!(text(&m.send(b"AT+USOCO=1,\"192.0.2.40\",80\r")), "");
    let mut other = Channel::new(&mut m.module);
    assert_eq!(on(&mut m, &mut other, "AT+CFUN=4"), "AT+CFUN=4\r\r\nOK\r\n");
    assert_eq!(
        text(&m.wait(Duration::ZERO)),
        // The connecting socket's command says it failed; the open one has its URC.
        "\r\n+CME ERROR: 3\r\n\r\n+UUSOCL: 0\r\n"
    );
    assert_eq!(
        text(&m.send(b"AT+USOER\r")),
        "\r\n+USOER: 101\r\n\r\nOK\r\n"
    );
    assert_eq!(m.net.scripted().open_sockets(), 0);
}

#[test]
fn the_urcs_of_a_socket_whose_channel_is_gone_reach_every_channel() {
    let mut m = module();
    m.net.scripted().serve("192.0.2.20", 7, Script::echo());
    let mut owner = Channel::new(&mut m.module);
    on(&mut m, &mut owner, "ATE0");
    assert_eq!(
        on(&mut m, &mut owner, "AT+USOCR=6"),
        "\r\n+USOCR: 0\r\n\r\nOK\r\n"
    );
    assert_eq!(
        on(&mut m, &mut owner, "AT+USOCO=0,\"192.0.2.20\",7"),
        "\r\nOK\r\n"
    );
    owner.close(&mut m.module);
    // The host came back on another connection: its socket is there, and so is its URC.
    assert_eq!(
        text(&m.send(b"AT+USOWR=0,3,\"abc\"\r")),
        "\r\n+USOWR: 0,3\r\n\r\nOK\r\n\r\n+UUSORD: 0,3\r\n"
    );
}

#[test]
fn a_peer_that_closes_during_a_binary_write_fails_it_then_says_uusocl() {
    let mut m = module();
    m.net.scripted().serve(
        "192.0.2.21",
        25,
        Script {
            pieces: vec![(Duration::from_millis(100), Vec::new())],
            end: sealcell_testkit::net::ScriptEnd::Close,
            echo: false,
        },
    );
    tcp_socket(&mut m, 0);
    ok(&mut m, "AT+USOCO=0,\"192.0.2.21\",25");
    assert_eq!(text(&m.send(b"AT+USOWR=0,4\r")), "@");
    assert_eq!(text(&m.send(b"ab")), "");
    // The server closes while the host is still sending.
    assert_eq!(text(&m.wait(Duration::from_millis(200))), "");
    assert_eq!(
        text(&m.send(b"cd")),
        "\r\n+CME ERROR: 3\r\n\r\n+UUSOCL: 0\r\n"
    );
    assert_eq!(
        text(&m.send(b"AT+USOER\r")),
        "\r\n+USOER: 107\r\n\r\nOK\r\n"
    );
}

#[test]
fn hostile_lengths_and_ids_are_refused_and_lose_nothing() {
    let mut m = module();
    m.net.scripted().serve("192.0.2.20", 7, Script::echo());
    tcp_socket(&mut m, 0);
    ok(&mut m, "AT+USOCO=0,\"192.0.2.20\",7");
    for line in [
        "AT+USORD=0,1025",
        "AT+USORD=0,-1",
        "AT+USORF=0,99999999999999999999",
        "AT+USOWR=0,0",
        "AT+USOWR=0,1025",
        "AT+USOWR=0,18446744073709551617,\"x\"",
        "AT+USOST=0,\"192.0.2.20\",7,2000,\"x\"",
        "AT+USOCO=0,\"192.0.2.20\",0",
        "AT+USOCO=0,\"192.0.2.20\",65536",
        "AT+USOCTL=0,100",
        "AT+USOSO=0,6,1,4294967296",
        "AT+UDNSRN=0,\"\"",
    ] {
        assert_eq!(
            text(&m.send(format!("{line}\r").as_bytes())),
            "\r\n+CME ERROR: 4\r\n",
            "{line}"
        );
    }
    ok(&mut m, "AT+UDCONF=1,1");
    for line in [
        "AT+USOWR=0,2,\"zz00\"",
        "AT+USOWR=0,513,\"00\"",
        "AT+USOWR=0,1,\"0\"",
    ] {
        assert_eq!(
            text(&m.send(format!("{line}\r").as_bytes())),
            "\r\n+CME ERROR: 4\r\n",
            "{line}"
        );
    }
    ok(&mut m, "AT+UDCONF=1,0");
    for line in ["AT+USORD=7,1", "AT+USORD=4294967296,1", "AT+USOCL=6"] {
        assert_eq!(
            text(&m.send(format!("{line}\r").as_bytes())),
            "\r\n+CME ERROR: 3\r\n",
            "{line}"
        );
        assert_eq!(text(&m.send(b"AT+USOER\r")), "\r\n+USOER: 9\r\n\r\nOK\r\n");
    }
    // The socket is as it was: it still carries data both ways.
    assert_eq!(
        text(&m.send(b"AT+USOWR=0,2,\"ok\"\r")),
        "\r\n+USOWR: 0,2\r\n\r\nOK\r\n\r\n+UUSORD: 0,2\r\n"
    );
    assert_eq!(
        text(&m.send(b"AT+USORD=0,2\r")),
        "\r\n+USORD: 0,2,\"ok\"\r\n\r\nOK\r\n"
    );
}

#[test]
fn a_cr_lf_host_s_line_end_is_not_payload_however_the_reads_split_it() {
    let mut m = module();
    m.net.scripted().serve("192.0.2.20", 7, Script::echo());
    // This host ends its lines with CR LF (atat 0.13).
    assert_eq!(text(&m.send(b"AT\r\n")), "\r\nOK\r\n");
    assert_eq!(
        text(&m.send(b"AT+USOCR=6\r\n")),
        "\r\n+USOCR: 0\r\n\r\nOK\r\n"
    );
    assert_eq!(
        text(&m.send(b"AT+USOCO=0,\"192.0.2.20\",7\r\n")),
        "\r\nOK\r\n"
    );
    assert_eq!(text(&m.send(b"AT+USOWR=0,2\r")), "@");
    assert_eq!(text(&m.send(b"\n")), "");
    assert_eq!(
        text(&m.send(b"cd")),
        "\r\n+USOWR: 0,2\r\n\r\nOK\r\n\r\n+UUSORD: 0,2\r\n"
    );
    assert_eq!(
        text(&m.send(b"AT+USORD=0,2\r\n")),
        "\r\n+USORD: 0,2,\"cd\"\r\n\r\nOK\r\n"
    );
}

#[test]
fn a_cr_host_s_payload_may_start_with_lf() {
    let mut m = module();
    m.net.scripted().serve("192.0.2.20", 7, Script::echo());
    tcp_socket(&mut m, 0);
    ok(&mut m, "AT+USOCO=0,\"192.0.2.20\",7");
    // ubxlib: CR alone, then the payload once the prompt came; its first byte is an LF.
    assert_eq!(text(&m.send(b"AT+USOWR=0,2\r")), "@");
    assert_eq!(
        text(&m.send(b"\nc")),
        "\r\n+USOWR: 0,2\r\n\r\nOK\r\n\r\n+UUSORD: 0,2\r\n"
    );
    assert_eq!(
        text(&m.send(b"AT+USORD=0,2\r")),
        "\r\n+USORD: 0,2,\"\nc\"\r\n\r\nOK\r\n"
    );
}

#[test]
fn a_socket_after_a_reboot_is_not_the_one_before_to_the_edge() {
    let mut m = module();
    m.net.scripted().serve("192.0.2.20", 7, Script::echo());
    tcp_socket(&mut m, 0);
    ok(&mut m, "AT+USOCO=0,\"192.0.2.20\",7");
    m.send(b"AT+USOWR=0,1,\"a\"\r");
    m.send(b"AT+CFUN=16\r");
    m.send(b"ATE0;+CMEE=1\r");
    tcp_socket(&mut m, 0);
    ok(&mut m, "AT+USOCO=0,\"192.0.2.20\",7");
    assert_eq!(
        text(&m.send(b"AT+USOWR=0,1,\"b\"\r")),
        "\r\n+USOWR: 0,1\r\n\r\nOK\r\n\r\n+UUSORD: 0,1\r\n"
    );
    let log = m.net.scripted().socket_sent().to_vec();
    assert_eq!(log.len(), 2);
    let (before, after) = (log[0].0, log[1].0);
    assert_ne!(before, after);
    // A late report of the socket from before the reboot changes nothing now.
    m.module
        .socket_failed(before, sealcell_modem::socket::SocketFailure::Reset);
    m.module.socket_sent(before, 1000);
    assert_eq!(text(&m.wait(Duration::ZERO)), "");
    assert_eq!(
        text(&m.send(b"AT+USOCTL=0,2\r")),
        "\r\n+USOCTL: 0,2,1\r\n\r\nOK\r\n"
    );
    assert_eq!(
        text(&m.send(b"AT+USORD=0,5\r")),
        "\r\n+USORD: 0,1,\"b\"\r\n\r\nOK\r\n"
    );
}

/// A network that takes every socket op and never answers.
#[derive(Default)]
struct Silent(Vec<sealcell_modem::socket::SocketOp>);

impl sealcell_modem::job::Connector for Silent {
    fn start(&mut self, _id: sealcell_modem::job::JobId, _job: sealcell_modem::job::NetJob) {}
    fn cancel(&mut self, _id: sealcell_modem::job::JobId) {}
    fn socket(&mut self, op: sealcell_modem::socket::SocketOp) {
        self.0.push(op);
    }
}

#[test]
fn a_lookup_nobody_answers_times_out_and_registration_loss_ends_one() {
    let dir = tempfile::tempdir().unwrap();
    let now = sealcell_testkit::virtual_now();
    let mut module =
        sealcell_modem::Module::open(sealcell_testkit::test_config(dir.path()), now).unwrap();
    let mut c = Channel::new(&mut module);
    let mut net = Silent::default();
    let mut run = |module: &mut sealcell_modem::Module, c: &mut Channel, input: &[u8], now| {
        let mut out = Vec::new();
        c.feed(module, input, now, &mut out);
        sealcell_modem::job::dispatch(module.take_work(), &mut net);
        c.poll(module, now, &mut out);
        text(&out)
    };
    assert_eq!(
        run(&mut module, &mut c, b"ATE0;+CMEE=1\r", now),
        "ATE0;+CMEE=1\r\r\nOK\r\n"
    );
    assert_eq!(
        run(&mut module, &mut c, b"AT+UDNSRN=0,\"x.example\"\r", now),
        ""
    );
    // The channel says when it must be polled: the lookup's deadline.
    let deadline = c.next_deadline(&module).unwrap();
    assert_eq!(
        deadline - now.mono(),
        sealcell_modem::command::dns::LOOKUP_TIMEOUT
    );
    let later = now.after(sealcell_modem::command::dns::LOOKUP_TIMEOUT);
    assert_eq!(
        run(&mut module, &mut c, b"", later),
        "\r\n+CME ERROR: 3\r\n"
    );
    assert_eq!(
        run(&mut module, &mut c, b"AT+USOER\r", later),
        "\r\n+USOER: 110\r\n\r\nOK\r\n"
    );
    // A late answer is ignored.
    module.dns_answered(sealcell_modem::job::JobId(1), Ok("192.0.2.1".into()));
    assert_eq!(run(&mut module, &mut c, b"", later), "");
    // Registration lost ends a lookup at once.
    assert_eq!(
        run(&mut module, &mut c, b"AT+UDNSRN=0,\"y.example\"\r", later),
        ""
    );
    let mut other = Channel::new(&mut module);
    let mut out = Vec::new();
    other.feed(&mut module, b"AT+CFUN=4\r", later, &mut out);
    assert_eq!(
        run(&mut module, &mut c, b"", later),
        "\r\n+CME ERROR: 3\r\n"
    );
    assert_eq!(
        run(&mut module, &mut c, b"AT+USOER\r", later),
        "\r\n+USOER: 101\r\n\r\nOK\r\n"
    );
}

#[test]
fn a_late_report_of_an_expired_connect_reaches_no_socket() {
    let mut m = module();
    m.net.scripted().blackhole("192.0.2.40", 80);
    tcp_socket(&mut m, 0);
    assert_eq!(text(&m.send(b"AT+USOCO=0,\"192.0.2.40\",80\r")), "");
    let old = m.net.scripted().socket_handles();
    assert_eq!(old.len(), 1);
    assert_eq!(
        text(&m.wait(sealcell_modem::command::socket::CONNECT_TIMEOUT)),
        "\r\n+CME ERROR: 3\r\n"
    );
    // The edge's own timeout, at the same instant, reports the attempt failed after all.
    m.module
        .socket_failed(old[0], sealcell_modem::socket::SocketFailure::Timeout);
    assert_eq!(text(&m.wait(Duration::ZERO)), "", "no +UUSOCL for it");
    assert_eq!(
        text(&m.send(b"AT+USOCTL=0,0\r")),
        "\r\n+USOCTL: 0,0,6\r\n\r\nOK\r\n",
        "the host's socket is still there"
    );
}

#[test]
fn a_reboot_forgets_that_the_host_ended_lines_with_cr_lf() {
    let mut m = module();
    m.net.scripted().serve("192.0.2.20", 7, Script::echo());
    assert_eq!(text(&m.send(b"AT\r\n")), "\r\nOK\r\n");
    m.send(b"AT+CFUN=16\r\n");
    // Another host after the boot: CR alone, and a payload that starts with LF.
    assert_eq!(text(&m.send(b"ATE0;+CMEE=1\r")), "ATE0;+CMEE=1\r\r\nOK\r\n");
    tcp_socket(&mut m, 0);
    ok(&mut m, "AT+USOCO=0,\"192.0.2.20\",7");
    assert_eq!(text(&m.send(b"AT+USOWR=0,2\r")), "@");
    assert_eq!(
        text(&m.send(b"\nc")),
        "\r\n+USOWR: 0,2\r\n\r\nOK\r\n\r\n+UUSORD: 0,2\r\n"
    );
    assert_eq!(
        text(&m.send(b"AT+USORD=0,2\r")),
        "\r\n+USORD: 0,2,\"\nc\"\r\n\r\nOK\r\n"
    );
}
