//! The module's own sockets (`+USOCR` and the rest, `+UDNSRN`) through the edge, against
//! servers and clients in this process on loopback: an echo over TCP, a refused connect, a
//! peer that closes, a listening socket, a UDP echo, a flood read back through the room
//! rule, TLS sockets, and lookups.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use common::{Client, Rig};
use sealcell_https::loopback::{FileServer, LoopbackPki};

/// A TCP echo server for one connection; says when the client has ended its stream.
fn echo_server() -> (u16, mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => {
                    let _ = tx.send(());
                    return;
                }
                Ok(n) => s.write_all(&buf[..n]).unwrap(),
                Err(_) => return,
            }
        }
    });
    (port, rx)
}

/// A loopback port nobody listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `ATE0;+CMEE=1`, and the first TCP or UDP socket.
fn socket(c: &mut Client, protocol: u8) {
    c.send(b"ATE0;+CMEE=1\r");
    c.expect(b"ATE0;+CMEE=1\r\r\nOK\r\n");
    c.send(format!("AT+USOCR={protocol}\r").as_bytes());
    c.expect(b"\r\n+USOCR: 0\r\n\r\nOK\r\n");
}

/// Waits until the edge runs no socket (bounded).
fn wait_for_no_sockets(rig: &Rig) {
    let start = Instant::now();
    while rig.emulator.edge().sockets_open() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{} sockets still open",
            rig.emulator.edge().sockets_open()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn tcp_bytes_go_to_an_echo_server_and_come_back() {
    let (port, ended) = echo_server();
    let rig = Rig::start();
    let mut c = rig.connect();
    socket(&mut c, 6);
    c.send(format!("AT+USOCO=0,\"127.0.0.1\",{port}\r").as_bytes());
    c.expect(b"\r\nOK\r\n");
    c.send(b"AT+USOWR=0,5,\"hello\"\r");
    c.expect(b"\r\n+USOWR: 0,5\r\n\r\nOK\r\n");
    c.expect(b"\r\n+UUSORD: 0,5\r\n");
    c.send(b"AT+USORD=0,5\r");
    c.expect(b"\r\n+USORD: 0,5,\"hello\"\r\n\r\nOK\r\n");
    c.send(b"AT+USOCTL=0,2;+USOCTL=0,3;+USOCTL=0,4\r");
    c.expect(
        format!(
            "\r\n+USOCTL: 0,2,5\r\n\r\n+USOCTL: 0,3,5\r\n\r\n+USOCTL: 0,4,\"127.0.0.1\",{port}\r\n\r\nOK\r\n"
        )
        .as_bytes(),
    );
    // The close ends the stream: the server reads its end.
    c.send(b"AT+USOCL=0\r");
    c.expect(b"\r\nOK\r\n");
    ended.recv_timeout(Duration::from_secs(5)).unwrap();
    wait_for_no_sockets(&rig);
    c.quiet(Duration::from_millis(200));
    rig.emulator.stop();
}

#[test]
fn a_refused_connect_answers_an_error_and_usoer_says_econnrefused() {
    let port = closed_port();
    let rig = Rig::start();
    let mut c = rig.connect();
    socket(&mut c, 6);
    c.send(format!("AT+USOCO=0,\"127.0.0.1\",{port}\r").as_bytes());
    c.expect(b"\r\n+CME ERROR: 3\r\n");
    c.send(b"AT+USOER\r");
    c.expect(b"\r\n+USOER: 111\r\n\r\nOK\r\n");
    wait_for_no_sockets(&rig);
    // The socket is still there, unconnected, and can try again.
    let (port, _ended) = echo_server();
    c.send(format!("AT+USOCO=0,\"127.0.0.1\",{port}\r").as_bytes());
    c.expect(b"\r\nOK\r\n");
    rig.emulator.stop();
}

#[test]
fn a_name_that_does_not_resolve_fails_the_connect() {
    let rig = Rig::start();
    let mut c = rig.connect();
    socket(&mut c, 6);
    // `.invalid` never resolves (RFC 6761 §6.4).
    c.send(b"AT+USOCO=0,\"no-such-host.invalid\",80\r");
    c.expect(b"\r\n+CME ERROR: 3\r\n");
    c.send(b"AT+USOER\r");
    c.expect(b"\r\n+USOER: 113\r\n\r\nOK\r\n");
    rig.emulator.stop();
}

#[test]
fn a_server_that_closes_is_announced_with_uusocl() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (go, closing) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let _ = closing.recv_timeout(Duration::from_secs(10));
        drop(s);
    });
    let rig = Rig::start();
    let mut c = rig.connect();
    socket(&mut c, 6);
    c.send(format!("AT+USOCO=0,\"127.0.0.1\",{port}\r").as_bytes());
    c.expect(b"\r\nOK\r\n");
    go.send(()).unwrap();
    c.expect(b"\r\n+UUSOCL: 0\r\n");
    wait_for_no_sockets(&rig);
    // The id is free again.
    c.send(b"AT+USOCR=6\r");
    c.expect(b"\r\n+USOCR: 0\r\n\r\nOK\r\n");
    rig.emulator.stop();
}

/// The module's own address, from `+CGPADDR`.
fn pdp_address(c: &mut Client) -> String {
    c.send(b"AT+CGPADDR=1\r");
    let answer = String::from_utf8(c.read_until(b"\r\nOK\r\n")).unwrap();
    let start = answer.find('"').unwrap() + 1;
    let end = start + answer[start..].find('"').unwrap();
    answer[start..end].to_string()
}

#[test]
fn a_listening_socket_announces_each_connection_with_uusoli() {
    let port = closed_port();
    let rig = Rig::start();
    let mut c = rig.connect();
    socket(&mut c, 6);
    let ip = pdp_address(&mut c);
    c.send(format!("AT+USOLI=0,{port}\r").as_bytes());
    c.expect(b"\r\nOK\r\n");
    // The listen is bound once the op has run; retry a moment until it is.
    let start = Instant::now();
    let mut peer = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) => {
                assert!(start.elapsed() < Duration::from_secs(5), "connect: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    let from = peer.local_addr().unwrap().port();
    c.expect(format!("\r\n+UUSOLI: 1,\"127.0.0.1\",{from},0,\"{ip}\",{port}\r\n").as_bytes());
    // The accepted socket is connected both ways.
    peer.write_all(b"ping").unwrap();
    c.expect(b"\r\n+UUSORD: 1,4\r\n");
    c.send(b"AT+USORD=1,4\r");
    c.expect(b"\r\n+USORD: 1,4,\"ping\"\r\n\r\nOK\r\n");
    c.send(b"AT+USOWR=1,4,\"pong\"\r");
    c.expect(b"\r\n+USOWR: 1,4\r\n\r\nOK\r\n");
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = [0u8; 4];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"pong");
    // Closing it sends the peer its end of stream.
    c.send(b"AT+USOCL=1\r");
    c.expect(b"\r\nOK\r\n");
    assert_eq!(peer.read(&mut got).unwrap(), 0);
    // Closing the listener frees the port.
    c.send(b"AT+USOCL=0\r");
    c.expect(b"\r\nOK\r\n");
    wait_for_no_sockets(&rig);
    rig.emulator.stop();
}

/// A UDP server that sends one datagram back to where it came from; its port.
fn udp_echo_once() -> u16 {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    std::thread::spawn(move || {
        server
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 2048];
        if let Ok((n, from)) = server.recv_from(&mut buf) {
            server.send_to(&buf[..n], from).unwrap();
        }
    });
    port
}

#[test]
fn a_udp_datagram_goes_to_an_echo_server_and_comes_back() {
    let port = udp_echo_once();
    let rig = Rig::start();
    let mut c = rig.connect();
    socket(&mut c, 17);
    c.send(format!("AT+USOST=0,\"127.0.0.1\",{port},3,\"abc\"\r").as_bytes());
    c.expect(b"\r\n+USOST: 0,3\r\n\r\nOK\r\n");
    c.expect(b"\r\n+UUSORF: 0,3\r\n");
    c.send(b"AT+USORF=0,3\r");
    c.expect(format!("\r\n+USORF: 0,\"127.0.0.1\",{port},3,\"abc\"\r\n\r\nOK\r\n").as_bytes());
    c.send(b"AT+USOCL=0\r");
    c.expect(b"\r\nOK\r\n");
    wait_for_no_sockets(&rig);
    rig.emulator.stop();
}

#[test]
fn a_connected_udp_socket_reads_its_peer_with_usord() {
    let port = udp_echo_once();
    let rig = Rig::start();
    let mut c = rig.connect();
    socket(&mut c, 17);
    c.send(format!("AT+USOCO=0,\"127.0.0.1\",{port}\r").as_bytes());
    c.expect(b"\r\nOK\r\n");
    c.send(b"AT+USOWR=0,2,\"hi\"\r");
    c.expect(b"\r\n+USOWR: 0,2\r\n\r\nOK\r\n");
    c.expect(b"\r\n+UUSORF: 0,2\r\n");
    c.send(b"AT+USORD=0,2\r");
    c.expect(b"\r\n+USORD: 0,2,\"hi\"\r\n\r\nOK\r\n");
    rig.emulator.stop();
}

/// The byte at offset `i` of the flood (letters only: text mode writes data as it is).
fn flood_byte(i: usize) -> u8 {
    b'a' + (i % 26) as u8
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_flood_larger_than_the_buffer_is_read_whole_through_resumes() {
    // More than the module's receive buffer: the edge must pause and resume.
    const TOTAL: usize = 3 * sealcell_modem::socket::RX_BUFFER / 2;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let flood: Vec<u8> = (0..TOTAL).map(flood_byte).collect();
        s.write_all(&flood).unwrap();
    });
    let rig = Rig::start();
    let mut c = rig.connect();
    socket(&mut c, 6);
    c.send(format!("AT+USOCO=0,\"127.0.0.1\",{port}\r").as_bytes());
    c.expect(b"\r\nOK\r\n");
    let mut got = Vec::with_capacity(TOTAL);
    let mut closed = false;
    let start = Instant::now();
    while got.len() < TOTAL {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} bytes read",
            got.len()
        );
        c.send(b"AT+USORD=0,1024\r");
        let answer = c.read_until(b"\r\nOK\r\n");
        closed |= contains(&answer, b"+UUSOCL: 0\r\n");
        let head = b"+USORD: 0,";
        let at = answer
            .windows(head.len())
            .position(|w| w == head)
            .unwrap_or_else(|| panic!("{:?}", String::from_utf8_lossy(&answer)));
        let rest = &answer[at + head.len()..];
        let comma = rest.iter().position(|&b| b == b',').unwrap();
        let len: usize = std::str::from_utf8(&rest[..comma])
            .unwrap()
            .parse()
            .unwrap();
        if len == 0 {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        got.extend_from_slice(&rest[comma + 2..comma + 2 + len]);
    }
    assert_eq!(got.len(), TOTAL);
    assert!(
        got.iter().enumerate().all(|(i, &b)| b == flood_byte(i)),
        "the bytes came out of order"
    );
    // All read and the server gone: the socket closes.
    if !closed {
        c.read_until(b"+UUSOCL: 0\r\n");
    }
    wait_for_no_sockets(&rig);
    rig.emulator.stop();
}

#[test]
fn a_peer_that_floods_fills_its_own_window_not_the_module() {
    // Far more than the module's buffer and the kernel's loopback buffers together.
    const TOTAL: usize = 64 * 1024 * 1024;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, stalled) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        let mut written = 0;
        while written < TOTAL {
            match s.write(&chunk) {
                Ok(n) => written += n,
                Err(_) => break,
            }
        }
        tx.send(written).unwrap();
    });
    let rig = Rig::start();
    let mut c = rig.connect();
    socket(&mut c, 6);
    c.send(format!("AT+USOCO=0,\"127.0.0.1\",{port}\r").as_bytes());
    c.expect(b"\r\nOK\r\n");
    let written = stalled.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(written < TOTAL, "the peer wrote all {written} bytes");
    // The module holds exactly its buffer's worth (announced once, when its first bytes
    // came).
    c.read_until(b"\r\n+UUSORD: 0,");
    c.read_until(b"\r\n");
    c.send(b"AT+USORD=0,0;+USOCTL=0,3\r");
    c.expect(b"\r\n+USORD: 0,65536\r\n\r\n+USOCTL: 0,3,65536\r\n\r\nOK\r\n");
    // Stopping the emulator closes the socket.
    rig.emulator.stop();
}

#[test]
fn udnsrn_resolves_localhost_both_ways() {
    let rig = Rig::start();
    let mut c = rig.connect();
    c.send(b"ATE0;+CMEE=1\r");
    c.expect(b"ATE0;+CMEE=1\r\r\nOK\r\n");
    c.send(b"AT+UDNSRN=0,\"localhost\"\r");
    c.expect(b"\r\n+UDNSRN: \"127.0.0.1\"\r\n\r\nOK\r\n");
    c.send(b"AT+UDNSRN=1,\"127.0.0.1\"\r");
    c.expect(b"\r\n+UDNSRN: \"localhost\"\r\n\r\nOK\r\n");
    c.send(b"AT+UDNSRN=0,\"no-such-host.invalid\"\r");
    c.expect(b"\r\n+CME ERROR: 3\r\n");
    c.send(b"AT+USOER\r");
    c.expect(b"\r\n+USOER: 113\r\n\r\nOK\r\n");
    rig.emulator.stop();
}

/// Imports `root` as "root" and sets profile 0 to check root, hostname and dates.
fn trust(c: &mut Client, root: &[u8]) {
    c.send(format!("AT+USECMNG=0,0,\"root\",{}\r", root.len()).as_bytes());
    c.expect(b"\r\n>");
    c.send(root);
    c.read_until(b"\r\nOK\r\n");
    for cmd in [
        "AT+USECPRF=0,0,3",
        "AT+USECPRF=0,3,\"root\"",
        "AT+USOSEC=0,1,0",
    ] {
        c.send(format!("{cmd}\r").as_bytes());
        c.expect(b"\r\nOK\r\n");
    }
}

#[test]
fn a_tls_socket_runs_the_profile_handshake_and_ends_with_close_notify() {
    let pki = LoopbackPki::generate("localhost", 30).unwrap();
    let files = HashMap::from([("/f".to_string(), Arc::new(b"sealed".to_vec()))]);
    let server = FileServer::start(&pki, "ECDHE-ECDSA-AES128-GCM-SHA256", files).unwrap();
    let rig = Rig::start();
    let mut c = rig.connect();
    socket(&mut c, 6);
    trust(&mut c, pki.root_pem.as_bytes());
    // "localhost" may resolve to ::1 first, where nothing listens: the next address is tried.
    c.send(format!("AT+USOCO=0,\"localhost\",{}\r", server.port()).as_bytes());
    c.expect(b"\r\nOK\r\n");
    let request = b"GET /f HTTP/1.0\r\n\r\n";
    c.send(format!("AT+USOWR=0,{}\r", request.len()).as_bytes());
    c.expect(b"@");
    c.send(request);
    c.expect(format!("\r\n+USOWR: 0,{}\r\n\r\nOK\r\n", request.len()).as_bytes());
    let response = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
                     Content-Length: 6\r\nConnection: close\r\n\r\nsealed";
    // The response may come in more than one record: read until all of it is there.
    let mut got = Vec::new();
    let start = Instant::now();
    while got.len() < response.len() {
        assert!(start.elapsed() < Duration::from_secs(10), "{got:?}");
        c.send(b"AT+USORD=0,1024\r");
        let answer = c.read_until(b"\r\nOK\r\n");
        let head = b"+USORD: 0,";
        let at = answer.windows(head.len()).position(|w| w == head).unwrap();
        let rest = &answer[at + head.len()..];
        let comma = rest.iter().position(|&b| b == b',').unwrap();
        let len: usize = std::str::from_utf8(&rest[..comma])
            .unwrap()
            .parse()
            .unwrap();
        got.extend_from_slice(&rest[comma + 2..comma + 2 + len]);
        if len == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    assert_eq!(got, response);
    c.read_until(b"+UUSOCL: 0\r\n");
    wait_for_no_sockets(&rig);
    rig.emulator.stop();
}

#[test]
fn a_tls_server_the_profile_does_not_trust_fails_the_connect() {
    let pki = LoopbackPki::generate("localhost", 30).unwrap();
    let other = LoopbackPki::generate("localhost", 30).unwrap();
    let server = FileServer::start(&pki, "ECDHE-ECDSA-AES128-GCM-SHA256", HashMap::new()).unwrap();
    let rig = Rig::start();
    let mut c = rig.connect();
    socket(&mut c, 6);
    trust(&mut c, other.root_pem.as_bytes());
    c.send(format!("AT+USOCO=0,\"127.0.0.1\",{}\r", server.port()).as_bytes());
    c.expect(b"\r\n+CME ERROR: 3\r\n");
    c.send(b"AT+USOER\r");
    c.expect(b"\r\n+USOER: 103\r\n\r\nOK\r\n");
    wait_for_no_sockets(&rig);
    rig.emulator.stop();
}

/// A MiB in which every byte value comes 4096 times, in no simple order.
fn mebibyte() -> Vec<u8> {
    (0..1usize << 20)
        .map(|i| (i.wrapping_mul(167) ^ (i >> 8)) as u8)
        .collect()
}

/// Reads `+USORD` answers of socket 0 until `len` bytes came; returns them. URCs may come
/// before an answer (`+UUSORD` when data reached an empty buffer) and after it (what a
/// partial read left): they are skipped.
fn read_all(c: &mut Client, len: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(len);
    while got.len() < len {
        c.send(b"AT+USORD=0,1024\r");
        c.read_until(b"\r\n+USORD: 0,");
        let head = c.read_until(b",\"");
        let n: usize = String::from_utf8_lossy(&head[..head.len() - 2])
            .parse()
            .unwrap();
        let mut data = vec![0u8; n];
        c.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        c.stream.read_exact(&mut data).unwrap();
        got.extend_from_slice(&data);
        c.expect(b"\"\r\n\r\nOK\r\n");
        if n == 0 {
            // Nothing yet: the next data into the empty buffer says so.
            c.read_until(b"\r\n+UUSORD: 0,");
        }
    }
    got
}

/// Writes `data` to socket 0 in binary `+USOWR`s of 1024 bytes.
fn write_all(c: &mut Client, data: &[u8]) {
    for chunk in data.chunks(1024) {
        c.send(format!("AT+USOWR=0,{}\r", chunk.len()).as_bytes());
        c.expect(b"@");
        c.send(chunk);
        c.expect(format!("\r\n+USOWR: 0,{}\r\n\r\nOK\r\n", chunk.len()).as_bytes());
    }
}

#[test]
fn a_mebibyte_each_way_over_tcp_arrives_whole() {
    use sha2::{Digest, Sha256};
    let data = mebibyte();
    let want = Sha256::digest(&data);
    // A server that takes a MiB, says its hash, and sends a MiB back.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    let back = data.clone();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = vec![0u8; 1 << 20];
        s.read_exact(&mut got).unwrap();
        tx.send(Sha256::digest(&got)).unwrap();
        s.write_all(&back).unwrap();
        // Then the end of the stream: the module announces it once all is read.
    });
    let rig = Rig::start();
    let mut c = rig.connect();
    socket(&mut c, 6);
    c.send(format!("AT+USOCO=0,\"127.0.0.1\",{port}\r").as_bytes());
    c.expect(b"\r\nOK\r\n");
    write_all(&mut c, &data);
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), want);
    let got = read_all(&mut c, data.len());
    assert_eq!(Sha256::digest(&got), want);
    // The server ended its stream: announced once everything it sent was read.
    c.read_until(b"\r\n+UUSOCL: 0\r\n");
}

#[test]
fn a_mebibyte_each_way_over_udp_arrives_whole() {
    use sha2::{Digest, Sha256};
    let data = mebibyte();
    let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = echo.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut hasher = Sha256::new();
        let mut buf = [0u8; 2048];
        let mut total = 0;
        while total < 1 << 20 {
            let (n, from) = echo.recv_from(&mut buf).unwrap();
            hasher.update(&buf[..n]);
            total += n;
            echo.send_to(&buf[..n], from).unwrap();
        }
        tx.send(hasher.finalize()).unwrap();
    });
    let rig = Rig::start();
    let mut c = rig.connect();
    socket(&mut c, 17);
    let mut got = Vec::with_capacity(data.len());
    // In step: a datagram out, its echo back (UDP may drop what floods a full buffer).
    for chunk in data.chunks(1024) {
        c.send(format!("AT+USOST=0,\"127.0.0.1\",{port},{}\r", chunk.len()).as_bytes());
        c.expect(b"@");
        c.send(chunk);
        c.expect(format!("\r\n+USOST: 0,{}\r\n\r\nOK\r\n", chunk.len()).as_bytes());
        c.expect(format!("\r\n+UUSORF: 0,{}\r\n", chunk.len()).as_bytes());
        c.send(b"AT+USORF=0,1024\r");
        c.expect(format!("\r\n+USORF: 0,\"127.0.0.1\",{port},{},\"", chunk.len()).as_bytes());
        let mut d = vec![0u8; chunk.len()];
        c.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        c.stream.read_exact(&mut d).unwrap();
        c.expect(b"\"\r\n\r\nOK\r\n");
        got.extend_from_slice(&d);
    }
    let want = Sha256::digest(&data);
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), want);
    assert_eq!(Sha256::digest(&got), want);
}

#[test]
fn a_reboot_and_the_process_stopping_close_the_connections() {
    // A reboot: the server sees the end of the stream; the channel greets again, no URC.
    let (port, ended) = echo_server();
    let rig = Rig::start();
    let mut c = rig.connect();
    socket(&mut c, 6);
    c.send(format!("AT+USOCO=0,\"127.0.0.1\",{port}\r").as_bytes());
    c.expect(b"\r\nOK\r\n");
    c.send(b"AT+CFUN=16\r");
    c.expect(b"\r\nOK\r\n");
    ended.recv_timeout(Duration::from_secs(10)).unwrap();
    wait_for_no_sockets(&rig);

    // The emulator stopping: its sockets close with it.
    let (port, ended) = echo_server();
    let mut c = rig.connect();
    socket(&mut c, 6);
    c.send(format!("AT+USOCO=0,\"127.0.0.1\",{port}\r").as_bytes());
    c.expect(b"\r\nOK\r\n");
    rig.emulator.stop();
    ended.recv_timeout(Duration::from_secs(10)).unwrap();
}
