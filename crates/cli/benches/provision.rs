//! Issue 6's figure, beside its baseline in the same run, on the release binaries:
//!
//! A 16-credential plan (four each of root CAs, client certificates, server certificates and
//! client keys), a seal and one security profile, provisioned end to end over loopback by
//! `sealcell provision` as a user runs it (process start, plan load and local parsing, connect,
//! preflight queries, seal, 16 imports with MD5 checks, the profile set and read back): wall time
//! (goal <= 2 s). Baseline: the same changes written as raw AT bytes over a socket by the bench
//! itself, with no queries and no checks — the floor the module and the loopback allow. Also
//! timed: re-running the finished plan (queries only).
//!
//! Run: `cargo bench -p sealcell --bench provision`. (Without the ledger, as issue 6 measured;
//! `--bench station` measures the ledger and parallel stations.)

// Bench code: a failed unwrap is a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, boot, median};

const ROUNDS: usize = 7;
const KINDS: [(u8, &str, &str); 4] = [
    (0, "ca", "root.der"),
    (1, "client-cert", "client.der"),
    (3, "server-cert", "server.der"),
    (2, "client-key", "client-pkcs1.pem"),
];
const PROFILE: [(u8, &str); 8] = [
    (0, "2"),
    (1, "3"),
    (2, "255,\"C0\",\"2B\""),
    (3, "\"item00\""),
    (4, "\"fota.example.com\""),
    (5, "\"item01\""),
    (6, "\"item03\""),
    (12, "\"item02\",2"),
];

fn pki_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pki")
}

fn write_plan(dir: &Path) -> std::path::PathBuf {
    std::fs::write(dir.join("seal.txt"), "bench seal password").unwrap();
    let mut plan = String::from("[seal]\npassword_file = \"seal.txt\"\n");
    for i in 0..16 {
        let (_, kind, file) = KINDS[i % 4];
        plan.push_str(&format!(
            "[[credential]]\ntype = \"{kind}\"\nname = \"item{i:02}\"\nfile = \"{}\"\n",
            pki_dir().join(file).display()
        ));
    }
    plan.push_str(
        "[[profile]]\nid = 1\nvalidation = 2\ntls_version = 3\ncipher = \"C02B\"\n\
         root = \"item00\"\nhostname = \"fota.example.com\"\nclient_cert = \"item01\"\n\
         client_key = \"item03\"\npin = { cert = \"item02\", level = 2 }\n",
    );
    let path = dir.join("plan.toml");
    std::fs::write(&path, plan).unwrap();
    path
}

fn provision(addr: &str, plan: &Path) -> Duration {
    let start = Instant::now();
    let out = Command::new(BIN)
        .args([
            "provision",
            "--no-ledger",
            "--port",
            &format!("tcp:{addr}"),
            "--plan",
        ])
        .arg(plan)
        .output()
        .unwrap();
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn main() {
    let work = tempfile::tempdir().unwrap();
    let plan = write_plan(work.path());
    let (mut full, mut rerun, mut raw) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let dir = work.path().join(format!("m{round}"));
        let (m, _) = boot(&dir);
        full.push(provision(&m.addr, &plan));
        rerun.push(provision(&m.addr, &plan));
        m.stop();

        let dir = work.path().join(format!("raw{round}"));
        let (mut m, _) = boot(&dir);
        let start = Instant::now();
        m.cmd(b"AT+USECCFG=0,1,\"bench seal password\"\r", b"OK\r\n");
        for i in 0..16 {
            let (kind, _, file) = KINDS[i % 4];
            m.import(
                kind,
                &format!("item{i:02}"),
                &std::fs::read(pki_dir().join(file)).unwrap(),
            );
        }
        m.cmd(b"AT+USECPRF=1\r", b"OK\r\n");
        for (op, value) in PROFILE {
            m.cmd(format!("AT+USECPRF=1,{op},{value}\r").as_bytes(), b"OK\r\n");
        }
        raw.push(start.elapsed());
        m.stop();
    }
    let (full, rerun, raw) = (median(full), median(rerun), median(raw));
    println!("16-credential plan + seal + 1 profile over loopback (median of {ROUNDS}, release):");
    println!(
        "  sealcell provision, end to end:     {:8.1} ms   (goal <= 2000 ms)",
        full.as_secs_f64() * 1e3
    );
    println!(
        "  raw AT replay of the same changes:  {:8.1} ms   (baseline: no process, no queries, no checks)",
        raw.as_secs_f64() * 1e3
    );
    println!(
        "  ratio provision / raw:              {:8.2}",
        full.as_secs_f64() / raw.as_secs_f64()
    );
    println!(
        "  re-run of the finished plan:        {:8.1} ms   (queries only; nothing changes)",
        rerun.as_secs_f64() * 1e3
    );
    println!("  (on a serial port add 16 x 50 ms = 800 ms of prompt pauses, as ubxlib waits)");
}
