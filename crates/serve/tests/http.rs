//! `+UHTTPC` through the edge against servers in this process: a download stored whole, a
//! server that trickles past the profile's timeout, and a reboot during a download. Each
//! ends with the server seeing its connection closed: no job outlives its request.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Client, Rig};

/// Reads a request head (bounded) from `s`.
fn read_head(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        if s.read(&mut byte).unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    head
}

/// Serves one connection with `response`, then closes; sends the request it read.
fn one_shot_server(response: &'static [u8]) -> (u16, mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let head = read_head(&mut s);
        s.write_all(response).unwrap();
        tx.send(head).unwrap();
    });
    (port, rx)
}

/// What a trickling server saw.
enum Seen {
    /// The request arrived and the trickle began.
    Request,
    /// The client closed the connection.
    Closed(Instant),
}

/// Accepts one connection, reads the request, then sends one byte of a response per second
/// (never finishing it) until the client closes.
fn trickle_server() -> (u16, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        read_head(&mut s);
        tx.send(Seen::Request).unwrap();
        let response = b"HTTP/1.0 200 OK\r\nContent-Length: 1000000\r\n\r\n";
        let mut buf = [0u8; 64];
        // Bounded: the test is over long before 120 s.
        for &b in response.iter().cycle().take(120) {
            if s.write_all(&[b]).is_err() {
                break;
            }
            s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            match s.read(&mut buf) {
                Ok(0) => break,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(Seen::Closed(Instant::now()));
    });
    (port, rx)
}

fn profile(c: &mut Client, port: u16) {
    c.send(b"AT+UHTTP=0,1,\"127.0.0.1\"\r");
    c.expect(b"\r\nOK\r\n");
    c.send(format!("AT+UHTTP=0,5,{port}\r").as_bytes());
    c.expect(b"\r\nOK\r\n");
}

#[test]
fn a_download_is_stored_whole_and_reported() {
    const RESPONSE: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nhello, world";
    let (port, requests) = one_shot_server(RESPONSE);
    let rig = Rig::start();
    let mut c = rig.connect();
    c.echo_off();
    profile(&mut c, port);
    c.send(b"AT+UHTTPC=0,1,\"/x\",\"resp\"\r");
    c.expect(b"\r\nOK\r\n");
    c.expect(b"\r\n+UUHTTPCR: 0,1,1\r\n");
    let request = requests.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        String::from_utf8(request).unwrap(),
        format!(
            "GET /x HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: sealcell TOBY-L2\r\n\r\n"
        )
    );
    c.send(b"AT+URDFILE=\"resp\"\r");
    let mut answer = format!("\r\n+URDFILE: \"resp\",{},\"", RESPONSE.len()).into_bytes();
    answer.extend_from_slice(RESPONSE);
    answer.extend_from_slice(b"\"\r\n\r\nOK\r\n");
    c.expect(&answer);
    c.send(b"AT+UHTTPER=0\r");
    c.expect(b"\r\n+UHTTPER: 0,0,0\r\n\r\nOK\r\n");
    rig.wait_for_no_jobs(Duration::from_secs(2));
    rig.emulator.stop();
}

#[test]
fn a_trickling_server_times_out_and_its_connection_is_closed() {
    let (port, seen) = trickle_server();
    let rig = Rig::start();
    let mut c = rig.connect();
    c.echo_off();
    profile(&mut c, port);
    c.send(b"AT+UHTTP=0,7,2\r");
    c.expect(b"\r\nOK\r\n");
    let asked = Instant::now();
    c.send(b"AT+UHTTPC=0,1,\"/slow\",\"slow\"\r");
    c.expect(b"\r\nOK\r\n");
    assert!(matches!(
        seen.recv_timeout(Duration::from_secs(5)).unwrap(),
        Seen::Request
    ));
    c.expect_within(b"\r\n+UUHTTPCR: 0,1,0\r\n", Duration::from_secs(6));
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(4),
        "the timeout came after {took:?}"
    );
    let reported = Instant::now();
    c.send(b"AT+UHTTPER=0\r");
    c.expect(b"\r\n+UHTTPER: 0,3,12\r\n\r\nOK\r\n");
    let Seen::Closed(at) = seen.recv_timeout(Duration::from_secs(5)).unwrap() else {
        panic!("the server saw a second request");
    };
    assert!(
        at.saturating_duration_since(reported) < Duration::from_secs(2),
        "the connection closed {:?} after the URC",
        at.saturating_duration_since(reported)
    );
    rig.wait_for_no_jobs(Duration::from_secs(2));
    // Nothing was stored.
    c.send(b"AT+CMEE=1;+URDFILE=\"slow\"\r");
    c.expect(b"\r\n+CME ERROR: 1612\r\n");
    rig.emulator.stop();
}

#[test]
fn a_reboot_during_a_download_closes_its_connection() {
    let (port, seen) = trickle_server();
    let rig = Rig::start();
    let mut c = rig.connect();
    c.echo_off();
    profile(&mut c, port);
    c.send(b"AT+UHTTPC=0,1,\"/slow\",\"slow\"\r");
    c.expect(b"\r\nOK\r\n");
    assert!(matches!(
        seen.recv_timeout(Duration::from_secs(5)).unwrap(),
        Seen::Request
    ));
    let reboot = Instant::now();
    c.send(b"AT+CFUN=16\r");
    c.expect(b"\r\nOK\r\n");
    let Seen::Closed(at) = seen.recv_timeout(Duration::from_secs(5)).unwrap() else {
        panic!("the server saw a second request");
    };
    assert!(
        at.saturating_duration_since(reboot) < Duration::from_secs(2),
        "the connection closed {:?} after the reboot",
        at.saturating_duration_since(reboot)
    );
    rig.wait_for_no_jobs(Duration::from_secs(2));
    // The request ended without a URC, and the channel is in its power-on state (echo on).
    c.send(b"AT\r");
    c.expect(b"AT\r\r\nOK\r\n");
    c.quiet(Duration::from_millis(300));
    rig.emulator.stop();
}
