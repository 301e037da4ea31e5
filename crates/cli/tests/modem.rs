//! `sealcell modem` as a process: persistence across restarts, kill -9 during an upload,
//! clean shutdown on signals, the PTY and stdio transports, `modem status`, usage errors.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BIN, Modem, TEST_IMEI, data_files};

#[test]
fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let m = Modem::start(dir.path(), &["--imei", TEST_IMEI]);
    let mut at = m.connect();
    assert!(at.cmd("AT+CGSN").contains(TEST_IMEI));
    assert!(
        at.cmd("AT+UMNOPROF=100;+URAT=4,3;+CGDCONT=1,\"IP\",\"apn.example\"")
            .ends_with("OK\r\n")
    );
    assert!(at.cmd("AT+UDWNFILE=\"keep.txt\",4").ends_with(">"));
    at.send(b"data");
    assert!(at.read_until(b"OK\r\n").ends_with(b"\r\nOK\r\n"));
    m.kill();

    // No --imei this time: the module remembers its own.
    let m = Modem::start(dir.path(), &[]);
    let mut at = m.connect();
    assert_eq!(
        at.cmd("AT+CGSN"),
        format!("AT+CGSN\r\r\n{TEST_IMEI}\r\n\r\nOK\r\n")
    );
    assert!(at.cmd("AT+UMNOPROF?").contains("+UMNOPROF: 100\r\n"));
    assert!(at.cmd("AT+URAT?").contains("+URAT: 4,3\r\n"));
    assert!(
        at.cmd("AT+CGDCONT?")
            .contains("+CGDCONT: 1,\"IP\",\"apn.example\"")
    );
    assert!(
        at.cmd("AT+URDFILE=\"keep.txt\"")
            .contains("+URDFILE: \"keep.txt\",4,\"data\"")
    );
}

#[test]
fn kill_during_an_upload_leaves_no_file_and_an_acknowledged_upload_whole() {
    let dir = tempfile::tempdir().unwrap();
    let m = Modem::start(dir.path(), &[]);
    let mut at = m.connect();
    // An acknowledged upload...
    assert!(at.cmd("AT+UDWNFILE=\"whole.bin\",100000").ends_with(">"));
    at.send(&vec![b'w'; 100_000]);
    at.read_until(b"\r\nOK\r\n");
    // ...and an append that is cut by kill -9 after half of its bytes.
    assert!(at.cmd("AT+UDWNFILE=\"whole.bin\",100000").ends_with(">"));
    at.send(&vec![b'x'; 50_000]);
    std::thread::sleep(Duration::from_millis(200));
    m.kill();

    let m = Modem::start(dir.path(), &[]);
    let mut at = m.connect();
    assert!(
        at.cmd("AT+ULSTFILE")
            .contains("+ULSTFILE: \"whole.bin\"\r\n")
    );
    assert!(
        at.cmd("AT+ULSTFILE=2,\"whole.bin\"")
            .contains("+ULSTFILE: 100000\r\n")
    );
    // No temporary file is left behind after the reboot.
    let leftovers: Vec<_> = data_files(dir.path())
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(':'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn sigterm_and_sigint_stop_cleanly() {
    for sig in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("ttyTOBY");
        let mut m = Modem::start(
            dir.path(),
            &[
                "--pty",
                link.to_str().unwrap(),
                "--listen",
                "tcp:127.0.0.1:0",
            ],
        );
        m.wait_for_stderr(|l| l.contains(" -> "));
        assert!(link.is_symlink());
        let mut at = m.connect();
        assert!(at.cmd("AT").ends_with("OK\r\n"));
        m.signal(sig);
        let status = m.wait_exit(Duration::from_secs(5));
        assert_eq!(status.code(), Some(0), "{sig}");
        assert!(
            !link.exists() && !link.is_symlink(),
            "the PTY link is removed on exit"
        );
    }
}

#[test]
fn pty_serves_at_and_clients_can_come_and_go() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyTOBY");
    let _m = Modem::start(dir.path(), &["--pty", link.to_str().unwrap()]);
    for _ in 0..3 {
        let mut tty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&link)
            .unwrap();
        tty.write_all(b"ATE0\r").unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while !got.ends_with(b"\r\nOK\r\n") {
            let n = tty.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        tty.write_all(b"AT+CGMI\r").unwrap();
        got.clear();
        while !got.ends_with(b"\r\nOK\r\n") {
            let n = tty.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"\r\nu-blox\r\n\r\nOK\r\n");
        drop(tty);
    }
}

#[test]
fn stdio_speaks_at_and_stops_at_end_of_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["modem", "--stdio", "--imei", TEST_IMEI, "--data"])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"ATE0\rAT+CGSN\r").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(stdin);
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out),
        format!("ATE0\r\r\nOK\r\n\r\n{TEST_IMEI}\r\n\r\nOK\r\n")
    );
    assert!(status.success());
}

#[test]
fn several_listeners_share_one_module_with_separate_settings() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("modem").arg("--data").arg(dir.path()).args([
        "--listen",
        "tcp:127.0.0.1:0",
        "--listen",
        "tcp:127.0.0.1:0",
    ]);
    let mut m = Modem::spawn(cmd, true);
    let first = m.addr.unwrap();
    m.wait_for_stderr(|l| l.contains("listening on tcp:"));
    let second = m.addr.unwrap_or(first);
    let mut a = common::At::connect(first);
    let mut b = common::At::connect(second);
    assert!(a.cmd("ATE0;+CMEE=2").ends_with("OK\r\n"));
    assert!(a.cmd("AT+UDWNFILE=\"shared\",1").ends_with(">"));
    a.send(b"s");
    a.read_until(b"OK\r\n");
    assert_eq!(
        b.cmd("AT+URDFILE=\"nope\""),
        "AT+URDFILE=\"nope\"\r\r\nERROR\r\n",
        "b keeps echo on and CMEE=0"
    );
    assert!(
        b.cmd("AT+URDFILE=\"shared\"")
            .contains("\"shared\",1,\"s\"")
    );
}

#[test]
fn status_reports_identity_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let m = Modem::start(dir.path(), &["--imei", TEST_IMEI, "--model", "TOBY-L280"]);
    let mut at = m.connect();
    assert!(
        at.cmd("AT+UDWNFILE=\"updatePackage.bin\",3,\"FOAT\"")
            .ends_with(">")
    );
    at.send(b"PKG");
    at.read_until(b"OK\r\n");
    m.kill();

    let out = Command::new(BIN)
        .args(["modem", "status", "--json", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["imei"], TEST_IMEI);
    assert_eq!(v["model"], "TOBY-L280");
    assert_eq!(v["sealed"], false);
    assert_eq!(v["store_opens"], true);
    assert_eq!(v["credentials"], serde_json::json!([]));
    assert_eq!(v["firmware"]["version"], "17.00");
    assert_eq!(v["firmware"]["installs"], serde_json::json!([]));
    assert_eq!(
        v["file_system"]["files"],
        serde_json::json!([{"area": "FOAT", "name": "updatePackage.bin", "size": 3}])
    );

    let out = Command::new(BIN)
        .args(["modem", "status", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(TEST_IMEI)
            && text.contains("TOBY-L280-03S-01")
            && text.contains("updatePackage.bin"),
        "{text}"
    );

    let missing = dir.path().join("nothing-here");
    let out = Command::new(BIN)
        .args(["modem", "status", "--data"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: no module in") && err.contains("hint: "),
        "{err}"
    );
    assert!(!missing.exists(), "status never creates a module");
}

#[test]
fn usage_errors_exit_2_and_name_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--listen", "127.0.0.1:5555"], "tcp:HOST:PORT"),
        (&["--imei", "123"], "IMEI"),
        (&["--imei", "490154203237517"], "Luhn"),
        (&["--model", "SARA-R5"], "SARA-R5"),
        (&["--payload-timeout", "0"], "--payload-timeout"),
    ];
    for (args, needle) in cases {
        let out = Command::new(BIN)
            .arg("modem")
            .arg("--data")
            .arg(dir.path())
            .args(*args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // An existing module refuses a different identity.
    let m = Modem::start(dir.path(), &["--imei", TEST_IMEI]);
    m.kill();
    let out = Command::new(BIN)
        .arg("modem")
        .arg("--data")
        .arg(dir.path())
        .args(["--model", "TOBY-L200", "--listen", "tcp:127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("was made as a TOBY-L210"));
}
