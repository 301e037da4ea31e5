//! `+UHTTPC` over TLS through the edge (tokio-openssl driving sealcell-https's client) against
//! the loopback HTTPS server: the profile's root is trusted, and certificate dates are checked
//! against the module clock (`+CCLK`), not the host's.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::{Client, Rig};
use sealcell_https::loopback::{FileServer, LoopbackPki};

const BODY: &[u8] = b"secret firmware";

fn get(c: &mut Client, file: &str) -> Vec<u8> {
    c.send(format!("AT+UHTTPC=0,1,\"/f\",\"{file}\"\r").as_bytes());
    c.expect(b"\r\nOK\r\n");
    c.read_until(b"\r\n+UUHTTPCR: 0,1,1\r\n")
}

#[test]
fn https_trusts_the_profile_root_and_checks_dates_on_the_module_clock() {
    let pki = LoopbackPki::generate("localhost", 30).unwrap();
    let files = HashMap::from([("/f".to_string(), Arc::new(BODY.to_vec()))]);
    let server = FileServer::start(&pki, "ECDHE-ECDSA-AES128-GCM-SHA256", files).unwrap();
    let rig = Rig::start();
    let mut c = rig.connect();
    c.echo_off();
    let root = pki.root_pem.as_bytes();
    c.send(format!("AT+USECMNG=0,0,\"root\",{}\r", root.len()).as_bytes());
    c.expect(b"\r\n>");
    c.send(root);
    let imported = c.read_until(b"\r\nOK\r\n");
    assert!(
        imported.starts_with(b"\r\n+USECMNG: 0,0,\"root\",\""),
        "{}",
        String::from_utf8_lossy(&imported)
    );
    for cmd in [
        "AT+USECPRF=0,0,3".to_string(),
        "AT+USECPRF=0,3,\"root\"".to_string(),
        "AT+UHTTP=0,1,\"localhost\"".to_string(),
        format!("AT+UHTTP=0,5,{}", server.port()),
        "AT+UHTTP=0,6,1,0".to_string(),
    ] {
        c.send(format!("{cmd}\r").as_bytes());
        c.expect(b"\r\nOK\r\n");
    }

    // Root, hostname and dates all check out: the response is stored as it came.
    let result = get(&mut c, "f");
    assert_eq!(result, b"\r\n+UUHTTPCR: 0,1,1\r\n");
    let stored = [
        &b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
           Content-Length: 15\r\nConnection: close\r\n\r\n"[..],
        BODY,
    ]
    .concat();
    c.send(b"AT+URDFILE=\"f\"\r");
    let mut answer = format!("\r\n+URDFILE: \"f\",{},\"", stored.len()).into_bytes();
    answer.extend_from_slice(&stored);
    answer.extend_from_slice(b"\"\r\n\r\nOK\r\n");
    c.expect(&answer);

    // The module clock in 2040: the server certificate has expired by that clock.
    c.send(b"AT+CCLK=\"40/01/01,00:00:00+00\"\r");
    c.expect(b"\r\nOK\r\n");
    c.send(b"AT+UHTTPC=0,1,\"/f\",\"g\"\r");
    c.expect(b"\r\nOK\r\n");
    c.expect(b"\r\n+UUHTTPCR: 0,1,0\r\n");
    c.send(b"AT+UHTTPER=0\r");
    c.expect(b"\r\n+UHTTPER: 0,3,73\r\n\r\nOK\r\n");

    // Validation level 2 does not check dates: the same clock is fine.
    c.send(b"AT+USECPRF=0,0,2\r");
    c.expect(b"\r\nOK\r\n");
    assert_eq!(get(&mut c, "g"), b"\r\n+UUHTTPCR: 0,1,1\r\n");
    rig.wait_for_no_jobs(std::time::Duration::from_secs(2));
    rig.emulator.stop();
}
