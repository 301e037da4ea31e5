//! The test bench on the real binary: `sealcell modem --control` and `sealcell ctl`, each
//! fault of this version once, and what a host connected over TCP sees of it.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::{BIN, Modem, TEST_IMEI, ctl, taken};

#[test]
fn every_fault_through_sealcell_ctl_and_what_the_host_sees() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = Modem::start(
        dir.path(),
        &["--imei", TEST_IMEI, "--control", "tcp:127.0.0.1:0"],
    );
    let control = m.control();
    let mut at = m.connect();
    at.cmd("ATE0");
    assert_eq!(at.cmd("AT+CMEE=1;+CEREG=1"), "\r\nOK\r\n");

    // The network goes and comes back.
    assert_eq!(taken(&control, &["detach"]), "detached\n");
    assert_eq!(at.read_until(b"\r\n+CEREG: 2\r\n"), b"\r\n+CEREG: 2\r\n");
    assert_eq!(at.cmd("AT+CSQ"), "\r\n+CSQ: 99,99\r\n\r\nOK\r\n");
    assert_eq!(taken(&control, &["attach"]), "attached\n");
    assert_eq!(at.read_until(b"\r\n+CEREG: 1\r\n"), b"\r\n+CEREG: 1\r\n");

    // A weaker cell; a URC of the bench's.
    assert_eq!(taken(&control, &["signal", "-110"]), "signal -110\n");
    assert_eq!(at.cmd("AT+CSQ"), "\r\n+CSQ: 14,99\r\n\r\nOK\r\n");
    assert_eq!(
        taken(&control, &["urc", "+CIEV:", "2,0"]),
        "urc +CIEV: 2,0\n"
    );
    assert_eq!(at.read_until(b"\r\n+CIEV: 2,0\r\n"), b"\r\n+CIEV: 2,0\r\n");

    // One-shot failures: armed, listed, fired by what they are for.
    assert_eq!(taken(&control, &["dns-fail"]), "dns-fail armed\n");
    assert_eq!(taken(&control, &["tls-fail"]), "tls-fail armed\n");
    assert_eq!(
        taken(&control, &["install-fail", "131"]),
        "install-fail 131 armed\n"
    );
    let status = taken(&control, &["status"]);
    assert!(
        status.contains("armed: tls-fail, dns-fail, install-fail 131"),
        "{status}"
    );
    at.send(b"AT+UDNSRN=0,\"localhost\"\r");
    assert_eq!(
        at.read_until(b"\r\n+CME ERROR: 3\r\n"),
        b"\r\n+CME ERROR: 3\r\n"
    );
    assert_eq!(at.cmd("AT+USOER"), "\r\n+USOER: 113\r\n\r\nOK\r\n");
    assert_eq!(
        at.cmd("AT+UDNSRN=0,\"localhost\""),
        "\r\n+UDNSRN: \"127.0.0.1\"\r\n\r\nOK\r\n"
    );
    assert_eq!(taken(&control, &["clear"]), "cleared\n");
    let json = ctl(&control, &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["armed"], serde_json::json!([]));
    let fired: Vec<&str> = v["fired"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(
        fired,
        [
            "detached",
            "attached",
            "signal -110",
            "urc +CIEV: 2,0",
            "dns-fail (+UDNSRN)"
        ]
    );

    // The line: bytes lost, bytes damaged, an answer held back.
    assert_eq!(taken(&control, &["link-drop", "6"]), "link-drop 6 armed\n");
    assert_eq!(at.cmd("AT+CGMI"), "ox\r\n\r\nOK\r\n");
    assert_eq!(
        taken(&control, &["link-corrupt", "3"]),
        "link-corrupt 3 armed\n"
    );
    let damaged = at.cmd("AT+CGMI");
    assert!(
        damaged.ends_with("-blox\r\n\r\nOK\r\n") && !damaged.starts_with("\r\nu"),
        "{damaged:?}"
    );
    assert_eq!(
        taken(&control, &["link-stall", "200"]),
        "link-stall 200 armed\n"
    );
    let start = std::time::Instant::now();
    assert_eq!(at.cmd("AT+CGMI"), "\r\nu-blox\r\n\r\nOK\r\n");
    // Held back for the stall (a lower bound: the answer is whole, and late).
    let stalled = start.elapsed();
    assert!(
        stalled >= std::time::Duration::from_millis(200),
        "{stalled:?}"
    );

    // A cut stream, armed; a power cut: the connection drops, the module is back on its port.
    assert_eq!(
        taken(&control, &["cut-after", "10"]),
        "cut-after 10 armed\n"
    );
    assert!(taken(&control, &["status"]).contains("armed: cut-after 10"));
    assert_eq!(taken(&control, &["clear"]), "cleared\n");
    assert_eq!(taken(&control, &["power-loss"]), "power lost\n");
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut at.stream, &mut rest);
    let mut at = m.connect();
    assert!(at.cmd("ATE0").ends_with("OK\r\n"));
    assert_eq!(
        taken(&control, &["power-loss-at-write", "1"]),
        "power-loss-at-write 1 armed\n"
    );
    at.send(b"AT+UDWNFILE=\"f\",1\r");
    assert_eq!(at.read_until(b">"), b"\r\n>");
    at.send(b"x");
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut at.stream, &mut rest);
    assert!(!String::from_utf8_lossy(&rest).contains("OK"), "{rest:?}");
    let mut at = m.connect();
    at.cmd("ATE0");
    // The file cut at its write is not there (the list is empty).
    assert_eq!(at.cmd("AT+ULSTFILE=0"), "\r\n+ULSTFILE: \r\n\r\nOK\r\n");

    // A reboot: the connection stays, the channel starts again with power-on settings.
    assert_eq!(taken(&control, &["reboot"]), "rebooted\n");
    assert_eq!(at.cmd("AT+CMEE?"), "AT+CMEE?\r\r\n+CMEE: 0\r\n\r\nOK\r\n");

    // A slow network: taken, listed, lifted; the module still answers through it.
    assert_eq!(taken(&control, &["throttle", "64"]), "throttle 64\n");
    assert_eq!(taken(&control, &["latency", "100"]), "latency 100\n");
    assert!(taken(&control, &["status"]).contains("armed: throttle 64, latency 100"));
    let start = std::time::Instant::now();
    assert_eq!(
        at.cmd("AT+UDNSRN=0,\"localhost\""),
        // Echo is on again since the reboot.
        "AT+UDNSRN=0,\"localhost\"\r\r\n+UDNSRN: \"127.0.0.1\"\r\n\r\nOK\r\n"
    );
    // The lookup waited for the latency (a lower bound).
    let looked_up = start.elapsed();
    assert!(
        looked_up >= std::time::Duration::from_millis(100),
        "{looked_up:?}"
    );
    assert_eq!(taken(&control, &["throttle", "0"]), "throttle lifted\n");
    assert_eq!(taken(&control, &["latency", "0"]), "latency lifted\n");

    // Refused: what no version has, bad arguments.
    for (args, why) in [
        (vec!["melt"], "no fault is called \"melt\""),
        (
            vec!["signal", "0"],
            "signal: takes an RSRP in dBm, -140..-44",
        ),
    ] {
        let out = ctl(&control, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
    }
    m.kill();
    // Nobody listening: it could not be asked (exit 2).
    let out = ctl(&control, &["status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hint: "));
}

#[test]
fn the_control_socket_is_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["modem", "--data"])
        .arg(dir.path())
        .args(["--listen", "tcp:127.0.0.1:0", "--control", "tcp:0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loopback only"), "{err}");
}
