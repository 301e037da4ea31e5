//! TLS sockets (`+USOSEC`, at-contract §8) on a **sealed** module against the real,
//! independent `openssl s_server -rev` (it sends every line back reversed): the application
//! note's three suites, an untrusted root and a wrong hostname refused, a client certificate
//! the server requires, and pinning right and wrong. Every credential is imported after the
//! seal, so it is stored encrypted and decrypted in memory for the handshake only.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, Rig};

fn pki(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/pki")
        .join(name)
}

/// `openssl s_server -rev` on a free loopback port, killed on drop.
struct SServer(Child, u16);

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn s_server(cert: &str, key: &str, extra: &[&str]) -> SServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-rev", "-accept", &port.to_string()])
        .arg("-cert")
        .arg(pki(cert))
        .arg("-key")
        .arg(pki(key))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("openssl s_server: {e} (apt-get install openssl)"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s_server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    SServer(child, port)
}

fn ok(c: &mut Client, cmd: &str) {
    c.send(format!("{cmd}\r").as_bytes());
    c.expect(b"\r\nOK\r\n");
}

fn import(c: &mut Client, kind: u8, name: &str, file: &str) {
    let bytes = std::fs::read(pki(file)).unwrap();
    c.send(format!("AT+USECMNG=0,{kind},\"{name}\",{}\r", bytes.len()).as_bytes());
    c.expect(b"\r\n>");
    c.send(&bytes);
    let answer = c.read_until(b"\r\nOK\r\n");
    assert!(
        answer.starts_with(format!("\r\n+USECMNG: 0,{kind},\"{name}\",\"").as_bytes()),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

/// A sealed module with the test PKI imported after the seal, and security profile 0 set to
/// trust the root and expect `fota.example.com`.
fn sealed() -> (Rig, Client) {
    let rig = Rig::start();
    let mut c = rig.connect();
    c.echo_off();
    ok(&mut c, "AT+CMEE=1");
    ok(&mut c, "AT+USECCFG=0,1,\"my_pwd\"");
    c.send(b"AT+USECCFG?\r");
    c.expect(b"\r\n+USECCFG: 0,1\r\n\r\nOK\r\n");
    import(&mut c, 0, "root", "root.pem");
    import(&mut c, 1, "device", "client.pem");
    import(&mut c, 2, "device-key", "client-pkcs8.pem");
    import(&mut c, 3, "fota-server", "server.pem");
    import(&mut c, 3, "someone-else", "client.pem");
    import(&mut c, 0, "other-root", "client.pem");
    ok(&mut c, "AT+USECPRF=0,0,2");
    ok(&mut c, "AT+USECPRF=0,3,\"root\"");
    ok(&mut c, "AT+USECPRF=0,4,\"fota.example.com\"");
    (rig, c)
}

/// Opens a TLS socket with profile 0 to `port`: the connect's answer (`OK` or the error).
fn connect(c: &mut Client, port: u16) -> Vec<u8> {
    c.send(b"AT+USOCR=6\r");
    c.expect(b"\r\n+USOCR: 0\r\n\r\nOK\r\n");
    ok(c, "AT+USOSEC=0,1,0");
    c.send(format!("AT+USOCO=0,\"127.0.0.1\",{port}\r").as_bytes());
    let answer = c.read_until(b"\r\n");
    let mut answer = answer;
    if answer == b"\r\n" {
        answer.extend(c.read_until(b"\r\n"));
    }
    answer
}

/// Writes a line through the TLS socket (binary: the `@` prompt, then the bytes with their
/// line end) and reads the server's reversed line back.
fn exchange(c: &mut Client, line: &str) {
    let data = format!("{line}\n");
    c.send(format!("AT+USOWR=0,{}\r", data.len()).as_bytes());
    c.expect(b"@");
    c.send(data.as_bytes());
    c.expect(format!("\r\n+USOWR: 0,{}\r\n\r\nOK\r\n", data.len()).as_bytes());
    c.expect(format!("\r\n+UUSORD: 0,{}\r\n", data.len()).as_bytes());
    let reversed: String = line.chars().rev().collect();
    c.send(b"AT+USORD=0,1024\r");
    c.expect(
        format!(
            "\r\n+USORD: 0,{},\"{reversed}\n\"\r\n\r\nOK\r\n",
            data.len()
        )
        .as_bytes(),
    );
}

fn close(c: &mut Client) {
    ok(c, "AT+USOCL=0");
}

fn refused(c: &mut Client, port: u16) {
    assert_eq!(
        String::from_utf8_lossy(&connect(c, port)),
        "\r\n+CME ERROR: 3\r\n"
    );
    c.send(b"AT+USOER\r");
    c.expect(b"\r\n+USOER: 103\r\n\r\nOK\r\n");
    close(c);
}

#[test]
fn the_application_note_suites_over_a_tls_socket_on_a_sealed_module() {
    let (_rig, mut c) = sealed();
    for (iana, cert, key, level) in [
        ("\"C0\",\"2B\"", "server.pem", "server-pkcs8.pem", 2),
        // The RSA server is the client certificate of the PKI (CN "Device 42"): root only.
        ("\"C0\",\"2F\"", "client.pem", "client-pkcs8.pem", 1),
        ("\"C0\",\"23\"", "server.pem", "server-pkcs8.pem", 2),
    ] {
        let server = s_server(cert, key, &[]);
        ok(&mut c, &format!("AT+USECPRF=0,0,{level}"));
        ok(&mut c, &format!("AT+USECPRF=0,2,99,{iana}"));
        assert_eq!(
            String::from_utf8_lossy(&connect(&mut c, server.1)),
            "\r\nOK\r\n",
            "{iana}"
        );
        exchange(&mut c, "hello over TLS");
        c.send(b"AT+USOSEC=0\r");
        c.expect(b"\r\n+USOSEC: 0,1,0\r\n\r\nOK\r\n");
        close(&mut c);
    }
}

#[test]
fn an_untrusted_root_and_a_wrong_hostname_are_refused() {
    let (_rig, mut c) = sealed();
    let server = s_server("server.pem", "server-pkcs8.pem", &[]);
    // The hostname the profile expects is not the certificate's.
    ok(&mut c, "AT+USECPRF=0,4,\"other.example.com\"");
    refused(&mut c, server.1);
    // A trusted root that did not sign the server's certificate.
    ok(&mut c, "AT+USECPRF=0,4,\"fota.example.com\"");
    ok(&mut c, "AT+USECPRF=0,3,\"other-root\"");
    refused(&mut c, server.1);
    // With the right root, the same server is trusted.
    ok(&mut c, "AT+USECPRF=0,3,\"root\"");
    assert_eq!(connect(&mut c, server.1), b"\r\nOK\r\n");
    exchange(&mut c, "trusted");
    close(&mut c);
}

#[test]
fn a_client_certificate_the_server_requires_is_given_from_the_sealed_store() {
    let (_rig, mut c) = sealed();
    let root = pki("root.pem");
    let root = root.to_str().unwrap();
    let server = s_server(
        "server.pem",
        "server-pkcs8.pem",
        &["-Verify", "1", "-CAfile", root],
    );
    // Without a client certificate the server ends the handshake.
    refused(&mut c, server.1);
    ok(&mut c, "AT+USECPRF=0,5,\"device\"");
    ok(&mut c, "AT+USECPRF=0,6,\"device-key\"");
    assert_eq!(connect(&mut c, server.1), b"\r\nOK\r\n");
    exchange(&mut c, "mutual");
    close(&mut c);
}

#[test]
fn pinning_the_right_certificate_connects_and_the_wrong_one_does_not() {
    let (_rig, mut c) = sealed();
    let server = s_server("server.pem", "server-pkcs8.pem", &[]);
    ok(&mut c, "AT+USECPRF=0,12,\"fota-server\",2");
    assert_eq!(connect(&mut c, server.1), b"\r\nOK\r\n");
    exchange(&mut c, "pinned");
    close(&mut c);
    ok(&mut c, "AT+USECPRF=0,12,\"someone-else\",2");
    refused(&mut c, server.1);
}
