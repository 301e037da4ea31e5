//! TLS against the real, independent `openssl s_server -WWW`: it serves files from its
//! working directory over HTTP/1.0 with no Content-Length, so the body ends with the connection.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sealcell_https::tls::is_unexpected_eof;
use sealcell_https::{PinLevel, TlsError, TlsProfile, connect};

struct SServer(Child, u16);

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s_server(dir: &Path, extra: &[&str]) -> SServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-WWW",
            "-accept",
            &port.to_string(),
            "-cert",
            "server.pem",
            "-key",
            "server.key",
        ])
        .args(extra)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s_server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    SServer(child, port)
}

fn pki(dir: &Path) {
    sh(
        dir,
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 30 -subj /CN=TestCA 2>/dev/null && \
         openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null && \
         printf 'subjectAltName=DNS:localhost\\n' > san.ext && \
         openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 7 -days 30 -extfile san.ext -out server.pem 2>/dev/null && \
         openssl x509 -in ca.pem -outform DER -out ca.der && openssl x509 -in server.pem -outform DER -out server.der",
    );
}

/// `GET path` over HTTP/1.0, read to the end of the connection: the status and the body.
/// (HTTP itself is the module's, `sealcell_modem::http::wire`; this is just enough for
/// s_server.)
fn get(port: u16, profile: &TlsProfile<'_>, path: &str) -> Result<(u16, Vec<u8>), String> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = connect(profile, "localhost", tcp).map_err(|e: TlsError| e.to_string())?;
    write!(tls, "GET {path} HTTP/1.0\r\nHost: localhost:{port}\r\n\r\n")
        .map_err(|e| e.to_string())?;
    tls.flush().map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e) if is_unexpected_eof(&e) => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no response head")?;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    Ok((status, response[split + 4..].to_vec()))
}

#[test]
fn download_from_openssl_s_server_with_each_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    pki(dir);
    let file: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 9) as u8)
        .collect();
    std::fs::write(dir.join("update.bin"), &file).unwrap();
    let root = std::fs::read(dir.join("ca.der")).unwrap();
    let pinned = std::fs::read(dir.join("server.der")).unwrap();

    let server = s_server(dir, &[]);
    let profile = TlsProfile {
        validation: vl(3),
        root_der: Some(&root),
        sni: "localhost",
        pin: Some((&pinned, PinLevel::Certificate)),
        ..Default::default()
    };
    let (status, body) = get(server.1, &profile, "/update.bin").unwrap();
    assert_eq!(status, 200);
    assert_eq!(body.len(), file.len());
    assert!(body == file, "the body is the file, byte for byte");
    drop(server);

    // Each of the application note's EC suites, offered alone by the server and the client.
    for (code, name) in [
        (0xC02B, "ECDHE-ECDSA-AES128-GCM-SHA256"),
        (0xC023, "ECDHE-ECDSA-AES128-SHA256"),
    ] {
        let server = s_server(dir, &["-cipher", name, "-no_tls1_3"]);
        let p = TlsProfile {
            validation: vl(2),
            cipher: Some(code),
            root_der: Some(&root),
            ..Default::default()
        };
        assert_eq!(
            get(server.1, &p, "/update.bin").unwrap().1.len(),
            file.len(),
            "{name}"
        );
        // And a client configured for the other suite is refused.
        let other = if code == 0xC02B { 0xC023 } else { 0xC02B };
        let p = TlsProfile {
            validation: vl(2),
            cipher: Some(other),
            root_der: Some(&root),
            ..Default::default()
        };
        assert!(
            get(server.1, &p, "/update.bin").is_err(),
            "{name}: only the configured suite is offered"
        );
    }

    // A TLS 1.3-only server: refused.
    let server = s_server(dir, &["-tls1_3"]);
    assert!(
        get(
            server.1,
            &TlsProfile {
                root_der: Some(&root),
                ..Default::default()
            },
            "/update.bin"
        )
        .is_err()
    );
    drop(server);

    // A missing file: s_server -WWW answers 200 with an error text (its own behaviour); the
    // exchange completes and the body is that text.
    let server = s_server(dir, &[]);
    let (status, body) = get(
        server.1,
        &TlsProfile {
            root_der: Some(&root),
            ..Default::default()
        },
        "/missing.bin",
    )
    .unwrap();
    assert_eq!(status, 200);
    assert!(
        String::from_utf8_lossy(&body).contains("missing.bin"),
        "{}",
        String::from_utf8_lossy(&body)
    );
}

/// A validation level by number (the tests read as the wire does).
fn vl(n: u8) -> sealcell_https::ValidationLevel {
    sealcell_https::ValidationLevel::try_from(i64::from(n)).unwrap()
}

/// A pinning level by number.
#[allow(dead_code)]
fn pl(n: u8) -> sealcell_https::PinLevel {
    sealcell_https::PinLevel::try_from(i64::from(n)).unwrap()
}
