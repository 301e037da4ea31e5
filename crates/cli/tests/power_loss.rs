//! The power cut of the test bench on the real binary, through the control socket and
//! `sealcell ctl` (cli.md, "A test bench"): at every storage write of a signed install, of an
//! import into the sealed store and of the seal, the power goes; the host's connection drops;
//! the same process brings the module back on the same port; its state is the old one or the
//! new one, never torn, never unsealed after a seal. Each cut runs on its own copy of a
//! prepared module, restored from a snapshot.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{At, BIN, Modem, TEST_IMEI, taken};

/// `tests/fixtures/<rel>` (`fw/...`, `pki/...`).
fn fixture(rel: &str) -> Vec<u8> {
    let fixtures = sealcell_testkit::plans::fw_dir()
        .parent()
        .unwrap()
        .to_path_buf();
    std::fs::read(fixtures.join(rel)).unwrap()
}

fn run(args: &[&str], paths: &[&Path]) {
    let out = Command::new(BIN).args(args).args(paths).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A module started on `dir` with a control socket; its AT and control addresses.
fn start(dir: &Path) -> (Modem, String) {
    let mut m = Modem::start(dir, &["--imei", TEST_IMEI, "--control", "tcp:127.0.0.1:0"]);
    let control = m.control();
    (m, control)
}

/// Sends `bytes` and reads until `end` or until the module hangs up; `None` when it did.
fn exchange(stream: &mut TcpStream, bytes: &[u8], end: &[u8]) -> Option<Vec<u8>> {
    if stream.write_all(bytes).is_err() {
        return None;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(20);
    while !got.ends_with(end) && !got.ends_with(b"ERROR\r\n") {
        assert!(
            Instant::now() < deadline,
            "no answer: {:?}",
            String::from_utf8_lossy(&got)
        );
        match stream.read(&mut buf) {
            Ok(0) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                return None;
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    Some(got)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Each write of `op` in turn on a copy of `template`: the cut, the module back, `check`.
fn at_every_write(
    template: &Path,
    op: impl Fn(&mut TcpStream) -> Option<Vec<u8>>,
    check: impl Fn(&mut At, bool),
) -> u64 {
    let work = tempfile::tempdir().unwrap();
    let snap = work.path().join("template.snap");
    run(&["modem", "snapshot", "--data"], &[template, &snap]);
    for n in 1.. {
        let dir = work.path().join(format!("m{n}"));
        run(&["modem", "restore", "--data"], &[&dir, &snap]);
        let (m, control) = start(&dir);
        let addr = m.addr.unwrap();
        assert_eq!(
            taken(&control, &["power-loss-at-write", &n.to_string()]),
            format!("power-loss-at-write {n} armed\n")
        );
        let mut stream = connect(addr);
        exchange(&mut stream, b"ATE0;+CMEE=1\r", b"OK\r\n").unwrap();
        let answer = op(&mut stream);
        let cut = answer.is_none();
        // The module came back by itself, on the same port.
        let mut at = At::connect(addr);
        at.cmd("ATE0;+CMEE=1");
        check(&mut at, cut);
        m.kill();
        if !cut {
            return n - 1;
        }
        assert!(n < 100, "the operation never ends");
    }
    unreachable!()
}

/// A stopped module in `dir` after `setup`.
fn prepare(dir: &Path, setup: impl Fn(&mut At)) {
    let (m, _) = start(dir);
    let mut at = m.connect();
    at.cmd("ATE0;+CMEE=1");
    setup(&mut at);
    m.kill();
}

fn import(at: &mut At, kind: u8, name: &str, bytes: &[u8]) {
    assert!(
        at.cmd(&format!("AT+USECMNG=0,{kind},\"{name}\",{}", bytes.len()))
            .ends_with("\r\n>")
    );
    at.send(bytes);
    let answer = at.read_until(b"OK\r\n");
    assert!(String::from_utf8_lossy(&answer).contains("+USECMNG: 0,"));
}

#[test]
fn a_power_cut_at_every_write_of_a_signed_install_leaves_old_or_new_firmware() {
    let work = tempfile::tempdir().unwrap();
    let template = work.path().join("template");
    prepare(&template, |at| {
        assert!(at.cmd("AT+USECCFG=0,1,\"my_pwd\"").ends_with("OK\r\n"));
        import(at, 4, "FwCert", &fixture("fw/signer.pem"));
        let package = fixture("fw/package.zip");
        assert!(
            at.cmd(&format!(
                "AT+UDWNFILE=\"updatePackage.bin\",{},\"FOAT\"",
                package.len()
            ))
            .ends_with("\r\n>")
        );
        at.send(&package);
        at.read_until(b"OK\r\n");
    });
    let signature = String::from_utf8(fixture("fw/good.b64")).unwrap();
    let writes = at_every_write(
        &template,
        |s| {
            let line = format!("AT+UFWSINSTALL=\"{}\",\"FwCert\"\r", signature.trim());
            exchange(s, line.as_bytes(), b"+UUFWINSTALL: 128\r\n")
        },
        |at, cut| {
            assert!(
                at.cmd("AT+USECCFG?").contains("+USECCFG: 0,1"),
                "the seal survives"
            );
            assert!(
                at.cmd("AT+USECMNG=3").contains("\"FwCert\""),
                "the VC survives"
            );
            let version = at.cmd("AT+CGMR");
            if version.contains("17.00") {
                assert!(cut, "an install that reported 128 left the old firmware");
            } else {
                assert!(version.contains("18.00"), "neither old nor new: {version}");
            }
        },
    );
    assert_eq!(writes, 2, "the signed install: {writes}");
}

#[test]
fn a_power_cut_at_every_write_of_the_seal_and_a_sealed_import_is_never_torn() {
    let work = tempfile::tempdir().unwrap();
    let unsealed = work.path().join("unsealed");
    prepare(&unsealed, |at| {
        import(at, 0, "PreSeal", &fixture("pki/root.pem"))
    });
    let writes = at_every_write(
        &unsealed,
        |s| exchange(s, b"AT+USECCFG=0,1,\"my_pwd\"\r", b"OK\r\n"),
        |at, cut| {
            let state = at.cmd("AT+USECCFG?");
            let list = at.cmd("AT+USECMNG=3");
            if state.contains("+USECCFG: 0,0") {
                assert!(cut, "the seal answered OK and did not seal");
                assert!(list.contains("\"PreSeal\""), "{list}");
            } else {
                assert!(state.contains("+USECCFG: 0,1"), "{state}");
                assert!(!list.contains("PreSeal"), "{list}");
            }
        },
    );
    assert_eq!(writes, 2, "the seal: {writes}");

    let sealed = work.path().join("sealed");
    prepare(&sealed, |at| {
        assert!(at.cmd("AT+USECCFG=0,1,\"my_pwd\"").ends_with("OK\r\n"));
    });
    let key = fixture("pki/client-pkcs8.pem");
    let writes = at_every_write(
        &sealed,
        |s| {
            let head = format!("AT+USECMNG=0,2,\"DeviceKey\",{}\r", key.len());
            exchange(s, head.as_bytes(), b"\r\n>")?;
            exchange(s, &key, b"OK\r\n")
        },
        |at, cut| {
            assert!(
                at.cmd("AT+USECCFG?").contains("+USECCFG: 0,1"),
                "never unsealed"
            );
            let list = at.cmd("AT+USECMNG=3");
            if list.contains("\"DeviceKey\"") {
                // Whole: the MD5 openssl computed for it (facts.txt).
                assert!(
                    at.cmd("AT+USECMNG=4,2,\"DeviceKey\"")
                        .contains("38e0129ca6493a63807c6f7f1727e394")
                );
            } else {
                assert!(cut, "an import that answered OK is not there");
            }
        },
    );
    assert_eq!(writes, 3, "the sealed import: {writes}");
}
