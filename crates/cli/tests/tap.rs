//! `sealcell tap` and `sealcell replay` on the real binary: a host program (`sealcell at`)
//! talks through the tap to an emulated "real" module; the transcript, secrets redacted, is
//! replayed to another module (its identity differs: no difference) and to one that answers
//! differently (the difference is reported, exit 1).

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Modem};

fn port(m: &Modem) -> String {
    format!("tcp:{}", m.addr.unwrap())
}

#[test]
fn a_tapped_session_replays_to_another_module_and_shows_what_differs() {
    let dir = tempfile::tempdir().unwrap();
    let real = Modem::start(&dir.path().join("real"), &["--imei", "490154203237518"]);
    let link = dir.path().join("ttyHOST");
    let transcript = dir.path().join("session.at");
    let mut tap = Command::new(BIN)
        .args(["tap", "--port", &port(&real), "--pty"])
        .arg(&link)
        .arg("--transcript")
        .arg(&transcript)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !link.exists() {
        assert!(Instant::now() < deadline, "the tap made no terminal");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The host program: a few commands, one of them with a password.
    let out = Command::new(BIN)
        .args(["at", "--port"])
        .arg(&link)
        .args([
            "AT+CGMI",
            "AT+CGSN",
            "AT+CGMM",
            "AT+UHTTP=0,3,\"secretpw\"",
            "AT+UHTTP=0,0,\"a\"",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every complete line is in the file as it happens: once the last answer is there, the
    // tap can go.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&transcript).unwrap_or_default();
        if let Some(at) = text.find("> AT+UHTTP=0,0,\"a\"\\r")
            && text[at..].contains("< OK\\r\\n")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the transcript stops short: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = tap.kill();
    let _ = tap.wait();
    let text = std::fs::read_to_string(&transcript).unwrap();
    assert!(text.contains("> AT+CGSN\\r"), "{text}");
    assert!(text.contains("490154203237518"), "{text}");
    assert!(
        !text.contains("secretpw"),
        "a secret in the transcript: {text}"
    );
    assert!(text.contains("\"<redacted>\""), "{text}");

    let replay = |m: &Modem| {
        Command::new(BIN)
            .args(["replay"])
            .arg(&transcript)
            .args(["--port", &port(m)])
            .output()
            .unwrap()
    };
    // Another module, another IMEI: the same answers by shape.
    let other = Modem::start(&dir.path().join("other"), &["--imei", "35693803564380"]);
    let out = replay(&other);
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(report.contains(", 0 differ"), "{report}");

    // A module that answers differently: another model.
    let different = Modem::start(&dir.path().join("different"), &["--model", "TOBY-L280"]);
    let out = replay(&different);
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.trim_end().ends_with(", 1 differ"), "{report}");
    // The one difference is the model's line, each side as it was said.
    let out = Command::new(BIN)
        .args(["replay"])
        .arg(&transcript)
        .args(["--port", &port(&different), "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let diffs = v["differences"].as_array().unwrap();
    assert_eq!(diffs.len(), 1, "{v}");
    let (expected, actual) = (
        diffs[0]["expected"].as_str().unwrap(),
        diffs[0]["actual"].as_str().unwrap(),
    );
    assert!(
        expected.contains("TOBY-L210") && !expected.contains("TOBY-L280"),
        "{v}"
    );
    assert!(actual.contains("TOBY-L280"), "{v}");
}
