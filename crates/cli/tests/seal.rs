//! The seal on the real binary: after `AT+USECCFG=0,1,...` nothing imported is in plaintext on
//! disk, in the logs (at trace level) or in `sealcell modem status`; the status reports the
//! sealed store.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{BIN, Modem, data_files};

fn pki(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/pki")
            .join(name),
    )
    .unwrap()
}

const PASSWORD: &str = "Correct-Horse-Battery-Staple-42";
const KEY_PASSWORD: &str = "keypass123";

#[test]
fn nothing_imported_after_the_seal_is_in_plaintext_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let m = Modem::start(dir.path(), &[]);
    let mut at = m.connect();
    assert!(at.cmd("ATE0;+CMEE=2").ends_with("OK\r\n"));
    assert_eq!(
        at.cmd(&format!("AT+USECCFG=0,1,\"{PASSWORD}\"")),
        "\r\nOK\r\n"
    );
    let imports = [
        (2, "DeviceKey", "client-pkcs1.pem", "client-pkcs1.der", ""),
        (
            2,
            "EncKey",
            "client-pkcs8-enc.pem",
            "client-pkcs8.der",
            KEY_PASSWORD,
        ),
        (2, "EcKey", "server-sec1.pem", "server-sec1.der", ""),
        (1, "Device", "client.pem", "client.der", ""),
        (0, "RootCA", "root.der", "root.der", ""),
        (4, "FwCert", "verify.pem", "verify.der", ""),
    ];
    let mut needles: Vec<Vec<u8>> = vec![PASSWORD.into(), KEY_PASSWORD.into()];
    for (kind, name, file, der, pw) in imports {
        let data = pki(file);
        let pw = if pw.is_empty() {
            String::new()
        } else {
            format!(",\"{pw}\"")
        };
        assert!(
            at.cmd(&format!(
                "AT+USECMNG=0,{kind},\"{name}\",{}{pw}",
                data.len()
            ))
            .ends_with("\r\n>")
        );
        at.send(&data);
        assert!(
            at.read_until(b"\r\nOK\r\n")
                .starts_with(b"\r\n+USECMNG: 0,"),
            "{name}"
        );
        let der = pki(der);
        needles.extend(der.windows(24).step_by(53).map(<[u8]>::to_vec));
        let text = String::from_utf8_lossy(&data).into_owned();
        needles.extend(
            text.lines()
                .filter(|l| l.len() >= 60 && !l.starts_with("-----"))
                .map(|l| l.as_bytes().to_vec()),
        );
    }
    assert!(at.cmd("AT+USECMNG=3").contains("\"PK\",\"EncKey\""));
    m.signal(nix::sys::signal::Signal::SIGTERM);
    let mut logs = String::new();
    while let Ok(line) = m.stderr.recv_timeout(Duration::from_secs(5)) {
        logs.push_str(&line);
        logs.push('\n');
    }
    assert!(logs.contains("sealed"), "trace logs were captured: {logs}");

    let status = Command::new(BIN)
        .args(["modem", "status", "--json", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(status.status.success());
    let status_text = String::from_utf8_lossy(&status.stdout).into_owned();

    let mut haystacks: Vec<(String, Vec<u8>)> = data_files(dir.path())
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    haystacks.push(("the logs".into(), logs.into_bytes()));
    haystacks.push(("the status".into(), status_text.clone().into_bytes()));
    for (what, content) in &haystacks {
        for n in &needles {
            assert!(
                !content.windows(n.len()).any(|w| w == n.as_slice()),
                "{what} holds plaintext: {:?}",
                String::from_utf8_lossy(n)
            );
        }
    }

    let v: serde_json::Value = serde_json::from_str(&status_text).unwrap();
    assert_eq!(v["sealed"], true);
    assert_eq!(v["store_opens"], true);
    let creds = v["credentials"].as_array().unwrap();
    assert_eq!(creds.len(), 6);
    let enc = creds.iter().find(|c| c["name"] == "EncKey").unwrap();
    assert_eq!(enc["type"], "PK");
    assert_eq!(enc["subject"], serde_json::Value::Null);
    let ca = creds.iter().find(|c| c["name"] == "RootCA").unwrap();
    assert_eq!(ca["subject"], "sealcell Test Root CA");
    assert_eq!(ca["md5"].as_str().unwrap().len(), 32);
}

#[test]
fn status_of_a_clone_says_the_store_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let m = Modem::start(dir.path(), &[]);
    let mut at = m.connect();
    assert!(at.cmd("AT+USECCFG=0,1,\"pw\"").ends_with("OK\r\n"));
    m.kill();
    // Another device key: the clone.
    let duk = dir.path().join("otp/duk.bin");
    let mut perms = std::fs::metadata(&duk).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&duk, perms).unwrap();
    std::fs::write(&duk, [9u8; 32]).unwrap();
    let out = Command::new(BIN)
        .args(["modem", "status", "--json", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sealed"], true);
    assert_eq!(v["store_opens"], false);
    assert!(
        v["store_problem"]
            .as_str()
            .unwrap()
            .contains("does not open")
    );
    let text = Command::new(BIN)
        .args(["modem", "status", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("DOES NOT OPEN"));
}
