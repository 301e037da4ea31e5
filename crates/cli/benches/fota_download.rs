//! Issue 5's figures: `AT+UHTTPC=<p>,100` downloading 256 MiB over TLS 1.2 on loopback, against
//! `curl` fetching the same file from the same server in the same run.
//!
//! The server is the real, independent `openssl s_server -WWW` with the fixture certificate
//! (`fota.example.com`, ECDSA P-256). Both clients use TLS 1.2 with ECDHE-ECDSA-AES128-GCM-SHA256,
//! verify the chain against the test root and the host name, and write the body to a file in the
//! same directory; the module also computes the MD5 and commits the package atomically (fsync).
//! The module is the release `sealcell modem` process driven over TCP, so its peak RSS (VmHWM) is
//! the emulator's own.
//!
//! Run: `cargo bench -p sealcell --bench fota_download`.

// Bench code: a failed unwrap is a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{big_file, median};

const BIN: &str = env!("CARGO_BIN_EXE_sealcell");
const MIB: usize = 256;
const RUNS: usize = 3;

fn pki(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/pki")
        .join(name)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An AT session with the emulator: sends a line, reads until a final result or a URC prefix.
struct At {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl At {
    fn connect(port: u16) -> At {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(600))).unwrap();
        At {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        }
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        assert!(
            self.reader.read_line(&mut l).unwrap() > 0,
            "emulator closed"
        );
        l.trim_end().to_string()
    }

    fn cmd(&mut self, cmd: &str) {
        self.writer
            .write_all(format!("{cmd}\r").as_bytes())
            .unwrap();
        loop {
            let l = self.line();
            if l == "OK" {
                return;
            }
            assert!(!l.contains("ERROR"), "{cmd}: {l}");
        }
    }

    fn until(&mut self, prefix: &str) -> String {
        loop {
            let l = self.line();
            if l.starts_with(prefix) {
                return l;
            }
        }
    }

    fn import(&mut self, name: &str, file: &Path) {
        let bytes = std::fs::read(file).unwrap();
        self.writer
            .write_all(format!("AT+USECMNG=0,0,\"{name}\",{}\r", bytes.len()).as_bytes())
            .unwrap();
        let mut b = [0u8; 1];
        loop {
            self.reader.read_exact(&mut b).unwrap();
            if b[0] == b'>' {
                break;
            }
        }
        self.writer.write_all(&bytes).unwrap();
        self.until("OK");
    }
}

fn vm_hwm_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb / 1024.0
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    big_file(&www.join("package.bin"), MIB);
    let md5_started = Instant::now();
    let md5_expected = {
        let out = Command::new("openssl")
            .args(["dgst", "-md5", "-r"])
            .arg(www.join("package.bin"))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()[..32].to_string()
    };
    let md5_alone = md5_started.elapsed();

    let server_port = free_port();
    let _server = Killed(
        Command::new("openssl")
            .args(["s_server", "-WWW", "-quiet", "-tls1_2", "-accept"])
            .arg(server_port.to_string())
            .arg("-cert")
            .arg(pki("server.pem"))
            .arg("-key")
            .arg(pki("server-pkcs8.pem"))
            .current_dir(&www)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(server_port);

    let modem_port = free_port();
    let modem = Killed(
        Command::new(BIN)
            .arg("modem")
            .arg("--data")
            .arg(dir.path().join("module"))
            .arg("--listen")
            .arg(format!("tcp:127.0.0.1:{modem_port}"))
            .arg("--fs-capacity")
            .arg((1u64 << 30).to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(modem_port);
    let mut at = At::connect(modem_port);
    at.cmd("ATE0;+CMEE=1");
    at.import("root", &pki("root.pem"));
    for c in [
        "AT+USECPRF=0,0,2",
        "AT+USECPRF=0,1,3",
        "AT+USECPRF=0,2,99,\"C0\",\"2B\"",
        "AT+USECPRF=0,3,\"root\"",
        "AT+USECPRF=0,4,\"fota.example.com\"",
        "AT+UHTTP=0,0,\"127.0.0.1\"",
        &format!("AT+UHTTP=0,5,{server_port}"),
        "AT+UHTTP=0,6,1,0",
        "AT+UHTTP=0,7,600",
    ] {
        at.cmd(c);
    }

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        at.cmd("AT+UHTTPC=0,100,\"/package.bin\"");
        let urc = at.until("+UUHTTPCR:");
        ours.push(t.elapsed());
        assert_eq!(urc, format!("+UUHTTPCR: 0,100,1,200,\"{md5_expected}\""));

        let t = Instant::now();
        let out = Command::new("curl")
            .args([
                "-sS",
                "--fail",
                "--tls-max",
                "1.2",
                "--ciphers",
                "ECDHE-ECDSA-AES128-GCM-SHA256",
            ])
            .arg("--cacert")
            .arg(pki("root.pem"))
            .arg("--resolve")
            .arg(format!("fota.example.com:{server_port}:127.0.0.1"))
            .arg(format!(
                "https://fota.example.com:{server_port}/package.bin"
            ))
            .arg("-o")
            .arg(dir.path().join("curl.bin"))
            .output()
            .unwrap();
        theirs.push(t.elapsed());
        assert!(
            out.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let hwm = vm_hwm_mib(modem.0.id());
    let (ours, theirs) = (median(ours), median(theirs));
    let mb = (MIB << 20) as f64 / 1e6;
    println!(
        "FOTA download, {MIB} MiB over TLS 1.2 (ECDHE-ECDSA-AES128-GCM-SHA256), openssl s_server -WWW, median of {RUNS}"
    );
    println!(
        "  AT+UHTTPC=0,100 (module, +MD5, atomic commit): {:.3} s  {:.0} MB/s",
        ours.as_secs_f64(),
        mb / ours.as_secs_f64()
    );
    println!(
        "  curl (baseline, to a file):                    {:.3} s  {:.0} MB/s",
        theirs.as_secs_f64(),
        mb / theirs.as_secs_f64()
    );
    println!(
        "  throughput ratio (goal >= 0.9): {:.3}",
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
    println!(
        "  for scale: openssl dgst -md5 of the file alone: {:.3} s (CPU the module spends that curl does not)",
        md5_alone.as_secs_f64()
    );
    println!("  module peak RSS (VmHWM, goal <= 64 MiB): {hwm:.1} MiB");
}
