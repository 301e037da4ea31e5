//! at-contract §5 on the engine: `+UHTTP` profiles, `+UHTTPC` requests against loopback HTTP and
//! HTTPS servers (the TLS side is OpenSSL, with the PKI fixtures), `+UUHTTPCR`, `+UHTTPER`, and
//! the firmware download (command 100) into `FOAT/updatePackage.bin`.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use md5::Digest;
use openssl::pkey::PKey;
use openssl::ssl::{SslAcceptor, SslMethod, SslVerifyMode};
use openssl::x509::X509;
use sealcell_testkit::TestModule;
use sealcell_testkit::transcript::pki_fixture;

/// A server that answers each connection with the next canned response and reports the request
/// it read (head and body).
fn serve(responses: Vec<Vec<u8>>, tls: Option<SslAcceptor>) -> (u16, mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for response in responses {
            let Ok((tcp, _)) = listener.accept() else {
                return;
            };
            let request = match &tls {
                Some(acceptor) => match acceptor.accept(tcp) {
                    Ok(mut s) => answer(&mut s, &response),
                    Err(_) => b"TLS FAILED".to_vec(),
                },
                None => answer(&mut { tcp }, &response),
            };
            let _ = tx.send(request);
        }
    });
    (port, rx)
}

fn answer<S: Read + Write>(s: &mut S, response: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                break;
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let _ = s.write_all(response);
    let _ = s.flush();
    got
}

fn module() -> TestModule {
    // Real servers on loopback: the module's requests make real connections.
    let mut m = TestModule::with_real_network();
    m.send(b"ATE0;+CMEE=1\r");
    m
}

fn at(m: &mut TestModule, cmd: &str) -> String {
    String::from_utf8(m.send(format!("{cmd}\r").as_bytes())).unwrap()
}

/// Polls until a `+UUHTTPCR` URC arrives; returns it.
fn wait_result(m: &mut TestModule) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = String::new();
    while Instant::now() < deadline {
        seen.push_str(&String::from_utf8(m.wait(Duration::from_millis(5))).unwrap());
        if let Some(line) = seen.lines().find(|l| l.starts_with("+UUHTTPCR:")) {
            return line.to_string();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("no +UUHTTPCR within 20 s; saw {seen:?}");
}

fn response(status: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

#[test]
fn profile_settings_read_back_and_the_password_is_write_only() {
    let mut m = module();
    assert_eq!(
        at(&mut m, "AT+UHTTP=0,1,\"fota.example.com\""),
        "\r\nOK\r\n"
    );
    assert_eq!(
        at(&mut m, "AT+UHTTP=0,1"),
        "\r\n+UHTTP: 0,1,\"fota.example.com\"\r\n\r\nOK\r\n"
    );
    assert_eq!(
        at(&mut m, "AT+UHTTP=0,5"),
        "\r\n+UHTTP: 0,5,80\r\n\r\nOK\r\n"
    );
    assert_eq!(at(&mut m, "AT+UHTTP=0,6,1,2"), "\r\nOK\r\n");
    assert_eq!(
        at(&mut m, "AT+UHTTP=0,5"),
        "\r\n+UHTTP: 0,5,443\r\n\r\nOK\r\n"
    );
    assert_eq!(
        at(&mut m, "AT+UHTTP=0,6"),
        "\r\n+UHTTP: 0,6,1,2\r\n\r\nOK\r\n"
    );
    assert_eq!(at(&mut m, "AT+UHTTP=0,3,\"s3cret\""), "\r\nOK\r\n");
    assert_eq!(at(&mut m, "AT+UHTTP=0,3"), "\r\n+CME ERROR: 3\r\n");
    assert_eq!(at(&mut m, "AT+UHTTP=0,9,\"1:X-Device:abc\""), "\r\nOK\r\n");
    assert_eq!(
        at(&mut m, "AT+UHTTP=0,9"),
        "\r\n+UHTTP: 0,9,\"1:X-Device:abc\"\r\n\r\nOK\r\n"
    );
    assert_eq!(at(&mut m, "AT+UHTTP=4,1,\"x\""), "\r\n+CME ERROR: 4\r\n");
    assert_eq!(at(&mut m, "AT+UHTTP=0,6,2"), "\r\n+CME ERROR: 4\r\n");
    assert_eq!(at(&mut m, "AT+UHTTP=0"), "\r\nOK\r\n");
    assert_eq!(
        at(&mut m, "AT+UHTTP=0,1"),
        "\r\n+UHTTP: 0,1,\"\"\r\n\r\nOK\r\n"
    );
    assert_eq!(
        at(&mut m, "AT+UHTTPER=0"),
        "\r\n+UHTTPER: 0,0,0\r\n\r\nOK\r\n"
    );
    // No server: refused at once, and the reason recorded.
    assert_eq!(
        at(&mut m, "AT+UHTTPC=0,1,\"/\",\"\""),
        "\r\n+CME ERROR: 3\r\n"
    );
    assert_eq!(
        at(&mut m, "AT+UHTTPER=0"),
        "\r\n+UHTTPER: 0,10,1\r\n\r\nOK\r\n"
    );
}

#[test]
fn get_and_post_store_the_whole_response_in_the_named_file() {
    let body = b"hello from the server\n";
    let (port, requests) = serve(
        vec![response("200 OK", body), response("201 Created", b"ok")],
        None,
    );
    let mut m = module();
    at(&mut m, "AT+UHTTP=1,0,\"127.0.0.1\"");
    at(&mut m, &format!("AT+UHTTP=1,5,{port}"));
    at(&mut m, "AT+UHTTP=1,9,\"0:X-Device:unit-7\"");
    assert_eq!(
        at(&mut m, "AT+UHTTPC=1,1,\"/status\",\"resp.txt\""),
        "\r\nOK\r\n"
    );
    assert_eq!(wait_result(&mut m), "+UUHTTPCR: 1,1,1");
    let req = String::from_utf8(requests.recv().unwrap()).unwrap();
    // The request bytes exactly: HTTP/1.0 as real modules send it (at-contract §5).
    assert_eq!(
        req,
        format!(
            "GET /status HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: sealcell TOBY-L2\r\n\
             X-Device: unit-7\r\n\r\n"
        )
    );
    let stored = response("200 OK", body);
    let read = at(&mut m, "AT+URDFILE=\"resp.txt\"");
    let mut expected = format!("\r\n+URDFILE: \"resp.txt\",{},\"", stored.len()).into_bytes();
    expected.extend_from_slice(&stored);
    expected.extend_from_slice(b"\"\r\n\r\nOK\r\n");
    assert_eq!(read.as_bytes(), expected.as_slice());
    assert_eq!(
        at(&mut m, "AT+UHTTPER=1"),
        "\r\n+UHTTPER: 1,0,0\r\n\r\nOK\r\n"
    );

    // POST data, with basic authentication, into the default file.
    at(&mut m, "AT+UHTTP=1,2,\"user\"");
    at(&mut m, "AT+UHTTP=1,3,\"pass\"");
    at(&mut m, "AT+UHTTP=1,4,1");
    assert_eq!(
        at(&mut m, "AT+UHTTPC=1,5,\"/submit\",\"\",\"a=1&b=2\",0"),
        "\r\nOK\r\n"
    );
    assert_eq!(wait_result(&mut m), "+UUHTTPCR: 1,5,1");
    let req = String::from_utf8(requests.recv().unwrap()).unwrap();
    assert_eq!(
        req,
        format!(
            "POST /submit HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: sealcell TOBY-L2\r\n\
             Authorization: Basic dXNlcjpwYXNz\r\nX-Device: unit-7\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\na=1&b=2"
        )
    );
    assert!(at(&mut m, "AT+ULSTFILE=0").contains("\"http_last_response_1\""));
}

#[test]
fn a_closed_port_fails_with_a_connect_error_and_stores_nothing() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut m = module();
    at(&mut m, "AT+UHTTP=0,0,\"127.0.0.1\"");
    at(&mut m, &format!("AT+UHTTP=0,5,{port}"));
    assert_eq!(at(&mut m, "AT+UHTTPC=0,1,\"/\",\"r\""), "\r\nOK\r\n");
    assert_eq!(wait_result(&mut m), "+UUHTTPCR: 0,1,0");
    assert_eq!(
        at(&mut m, "AT+UHTTPER=0"),
        "\r\n+UHTTPER: 0,3,11\r\n\r\nOK\r\n"
    );
    assert_eq!(at(&mut m, "AT+URDFILE=\"r\""), "\r\n+CME ERROR: 1612\r\n");
}

#[test]
fn firmware_download_streams_the_body_into_foat_and_reports_its_md5() {
    let package = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/fw/package.zip"
    ))
    .unwrap();
    let md5 = hex::encode(md5::Md5::digest(&package));
    let (port, _requests) = serve(
        vec![
            response("200 OK", &package),
            response("404 Not Found", b"no such package"),
            // Announces more than it sends: truncated.
            b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nshort".to_vec(),
        ],
        None,
    );
    let mut m = module();
    at(&mut m, "AT+UHTTP=0,0,\"127.0.0.1\"");
    at(&mut m, &format!("AT+UHTTP=0,5,{port}"));
    assert_eq!(
        at(&mut m, "AT+UHTTPC=0,100,\"/fw/package.zip\""),
        "\r\nOK\r\n"
    );
    assert_eq!(
        wait_result(&mut m),
        format!("+UUHTTPCR: 0,100,1,200,\"{md5}\"")
    );
    let list = at(&mut m, "AT+ULSTFILE=0,\"FOAT\"");
    assert!(list.contains("\"updatePackage.bin\""), "{list}");
    let size = at(&mut m, "AT+ULSTFILE=2,\"updatePackage.bin\",\"FOAT\"");
    assert!(
        size.contains(&format!("+ULSTFILE: {}", package.len())),
        "{size}"
    );

    // A 404 and a truncated body leave the downloaded package as it was.
    assert_eq!(
        at(&mut m, "AT+UHTTPC=0,100,\"/fw/missing.zip\""),
        "\r\nOK\r\n"
    );
    assert_eq!(wait_result(&mut m), "+UUHTTPCR: 0,100,0,404,\"\"");
    assert_eq!(
        at(&mut m, "AT+UHTTPER=0"),
        "\r\n+UHTTPER: 0,3,16\r\n\r\nOK\r\n"
    );
    assert_eq!(
        at(&mut m, "AT+UHTTPC=0,100,\"/fw/short.zip\""),
        "\r\nOK\r\n"
    );
    assert_eq!(wait_result(&mut m), "+UUHTTPCR: 0,100,0,200,\"\"");
    assert_eq!(
        at(&mut m, "AT+UHTTPER=0"),
        "\r\n+UHTTPER: 0,3,13\r\n\r\nOK\r\n"
    );
    let size = at(&mut m, "AT+ULSTFILE=2,\"updatePackage.bin\",\"FOAT\"");
    assert!(
        size.contains(&format!("+ULSTFILE: {}", package.len())),
        "{size}"
    );
}

fn import(m: &mut TestModule, kind: u8, name: &str, file: &str) {
    let bytes = pki_fixture(file).unwrap();
    let prompt = at(
        m,
        &format!("AT+USECMNG=0,{kind},\"{name}\",{}", bytes.len()),
    );
    assert_eq!(prompt, "\r\n>");
    let done = String::from_utf8(m.send(&bytes)).unwrap();
    assert!(done.ends_with("\r\nOK\r\n"), "{done}");
}

fn tls_acceptor() -> SslAcceptor {
    tls_acceptor_requiring_client(false)
}

/// The fixture server (`fota.example.com`, signed by the test root); optionally it demands a
/// client certificate signed by the test root.
fn tls_acceptor_requiring_client(require_client: bool) -> SslAcceptor {
    let cert = X509::from_pem(&pki_fixture("server.pem").unwrap()).unwrap();
    let key = PKey::private_key_from_pem(&pki_fixture("server-pkcs8.pem").unwrap()).unwrap();
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    b.set_certificate(&cert).unwrap();
    b.set_private_key(&key).unwrap();
    if require_client {
        let root = X509::from_pem(&pki_fixture("root.pem").unwrap()).unwrap();
        let mut store = openssl::x509::store::X509StoreBuilder::new().unwrap();
        store.add_cert(root).unwrap();
        b.set_verify_cert_store(store.build()).unwrap();
        b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    }
    b.build()
}

#[test]
fn https_uses_the_security_profile_and_its_stored_root() {
    let (port, requests) = serve(
        vec![response("200 OK", b"secure"), response("200 OK", b"never")],
        Some(tls_acceptor()),
    );
    let mut m = module();
    import(&mut m, 0, "root", "root.pem");
    import(&mut m, 0, "other", "big.pem");
    // Profile 1: verify against the test root, ECDHE-ECDSA-AES128-GCM-SHA256 only.
    at(&mut m, "AT+USECPRF=1,0,1");
    at(&mut m, "AT+USECPRF=1,3,\"root\"");
    at(&mut m, "AT+USECPRF=1,2,99,\"C0\",\"2B\"");
    at(&mut m, "AT+UHTTP=2,1,\"localhost\"");
    at(&mut m, &format!("AT+UHTTP=2,5,{port}"));
    at(&mut m, "AT+UHTTP=2,6,1,1");
    assert_eq!(at(&mut m, "AT+UHTTPC=2,1,\"/\",\"s.txt\""), "\r\nOK\r\n");
    assert_eq!(wait_result(&mut m), "+UUHTTPCR: 2,1,1");
    let req = String::from_utf8(requests.recv().unwrap()).unwrap();
    assert!(req.starts_with("GET / HTTP/1.0\r\n"), "{req}");
    assert!(at(&mut m, "AT+URDFILE=\"s.txt\"").contains("secure"));

    // The same server, checked against a root that did not sign it: 3,73, nothing stored.
    at(&mut m, "AT+USECPRF=1,3,\"other\"");
    assert_eq!(at(&mut m, "AT+UHTTPC=2,1,\"/\",\"t.txt\""), "\r\nOK\r\n");
    assert_eq!(wait_result(&mut m), "+UUHTTPCR: 2,1,0");
    assert_eq!(
        at(&mut m, "AT+UHTTPER=2"),
        "\r\n+UHTTPER: 2,3,73\r\n\r\nOK\r\n"
    );
    assert_eq!(
        at(&mut m, "AT+URDFILE=\"t.txt\""),
        "\r\n+CME ERROR: 1612\r\n"
    );
    assert_eq!(requests.recv().unwrap(), b"TLS FAILED");

    // A root name that is not stored fails the command at once.
    at(&mut m, "AT+USECPRF=1,3,\"absent\"");
    assert_eq!(
        at(&mut m, "AT+UHTTPC=2,1,\"/\",\"t.txt\""),
        "\r\n+CME ERROR: 3\r\n"
    );
}

#[test]
fn sealed_store_supplies_the_client_certificate_and_the_pinned_server_certificate() {
    let (port, requests) = serve(
        vec![
            response("200 OK", b"mutual"),
            response("200 OK", b"pinned"),
            response("200 OK", b"never"),
        ],
        Some(tls_acceptor_requiring_client(true)),
    );
    let mut m = module();
    assert_eq!(at(&mut m, "AT+USECCFG=0,1,\"my_pwd\""), "\r\nOK\r\n");
    import(&mut m, 0, "root", "root.pem");
    import(&mut m, 1, "device", "client.pem");
    import(&mut m, 2, "device-key", "client-pkcs8.pem");
    import(&mut m, 3, "fota-server", "server.pem");
    import(&mut m, 3, "someone-else", "client.pem");
    at(&mut m, "AT+USECPRF=0,0,2");
    at(&mut m, "AT+USECPRF=0,3,\"root\"");
    at(&mut m, "AT+USECPRF=0,4,\"fota.example.com\"");
    at(&mut m, "AT+USECPRF=0,5,\"device\"");
    at(&mut m, "AT+USECPRF=0,6,\"device-key\"");
    at(&mut m, "AT+UHTTP=3,0,\"127.0.0.1\"");
    at(&mut m, &format!("AT+UHTTP=3,5,{port}"));
    at(&mut m, "AT+UHTTP=3,6,1");
    assert_eq!(at(&mut m, "AT+UHTTPC=3,1,\"/\",\"a\""), "\r\nOK\r\n");
    assert_eq!(wait_result(&mut m), "+UUHTTPCR: 3,1,1");
    assert!(requests.recv().unwrap().starts_with(b"GET / HTTP/1.0"));

    // Without the client certificate the server refuses the handshake.
    at(&mut m, "AT+USECPRF=0,5,\"\"");
    at(&mut m, "AT+USECPRF=0,6,\"\"");
    let (port2, requests2) = serve(
        vec![response("200 OK", b"never")],
        Some(tls_acceptor_requiring_client(true)),
    );
    at(&mut m, &format!("AT+UHTTP=3,5,{port2}"));
    assert_eq!(at(&mut m, "AT+UHTTPC=3,1,\"/\",\"b\""), "\r\nOK\r\n");
    assert_eq!(wait_result(&mut m), "+UUHTTPCR: 3,1,0");
    assert_eq!(
        at(&mut m, "AT+UHTTPER=3"),
        "\r\n+UHTTPER: 3,3,73\r\n\r\nOK\r\n"
    );
    assert_eq!(requests2.recv().unwrap(), b"TLS FAILED");

    // Pinning the server's own certificate (level 2) passes; another certificate fails.
    at(&mut m, "AT+USECPRF=0,5,\"device\"");
    at(&mut m, "AT+USECPRF=0,6,\"device-key\"");
    at(&mut m, &format!("AT+UHTTP=3,5,{port}"));
    at(&mut m, "AT+USECPRF=0,12,\"fota-server\",2");
    assert_eq!(at(&mut m, "AT+UHTTPC=3,1,\"/\",\"c\""), "\r\nOK\r\n");
    assert_eq!(wait_result(&mut m), "+UUHTTPCR: 3,1,1");
    assert!(at(&mut m, "AT+URDFILE=\"c\"").contains("pinned"));
    at(&mut m, "AT+USECPRF=0,12,\"someone-else\",2");
    assert_eq!(at(&mut m, "AT+UHTTPC=3,1,\"/\",\"d\""), "\r\nOK\r\n");
    assert_eq!(wait_result(&mut m), "+UUHTTPCR: 3,1,0");
    assert_eq!(
        at(&mut m, "AT+UHTTPER=3"),
        "\r\n+UHTTPER: 3,3,73\r\n\r\nOK\r\n"
    );
}

#[test]
fn head_delete_put_file_and_post_file() {
    let (port, requests) = serve(
        vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n".to_vec(),
            response("204 No Content", b""),
            response("201 Created", b"put"),
            response("200 OK", b"posted"),
        ],
        None,
    );
    let mut m = module();
    at(&mut m, "AT+UHTTP=0,0,\"127.0.0.1\"");
    at(&mut m, &format!("AT+UHTTP=0,5,{port}"));
    assert_eq!(at(&mut m, "AT+UHTTPC=0,0,\"/h\",\"head\""), "\r\nOK\r\n");
    assert_eq!(wait_result(&mut m), "+UUHTTPCR: 0,0,1");
    assert!(
        requests
            .recv()
            .unwrap()
            .starts_with(b"HEAD /h HTTP/1.0\r\n")
    );
    let head = at(&mut m, "AT+URDFILE=\"head\"");
    assert!(
        head.ends_with("Content-Length: 1234\r\n\r\n\"\r\n\r\nOK\r\n"),
        "{head:?}"
    );

    assert_eq!(at(&mut m, "AT+UHTTPC=0,2,\"/d\",\"del\""), "\r\nOK\r\n");
    assert_eq!(wait_result(&mut m), "+UUHTTPCR: 0,2,1");
    assert!(
        requests
            .recv()
            .unwrap()
            .starts_with(b"DELETE /d HTTP/1.0\r\n")
    );

    assert_eq!(at(&mut m, "AT+UDWNFILE=\"body.json\",12"), "\r\n>");
    assert!(
        String::from_utf8(m.send(b"{\"on\": true}"))
            .unwrap()
            .ends_with("OK\r\n")
    );
    assert_eq!(
        at(&mut m, "AT+UHTTPC=0,3,\"/p\",\"put\",\"body.json\",4"),
        "\r\nOK\r\n"
    );
    assert_eq!(wait_result(&mut m), "+UUHTTPCR: 0,3,1");
    let req = String::from_utf8(requests.recv().unwrap()).unwrap();
    assert!(req.starts_with("PUT /p HTTP/1.0\r\n"), "{req}");
    assert!(req.contains("Content-Type: application/json\r\n"), "{req}");
    assert!(req.ends_with("\r\n\r\n{\"on\": true}"), "{req}");

    assert_eq!(
        at(
            &mut m,
            "AT+UHTTPC=0,4,\"/q\",\"post\",\"body.json\",6,\"application/x-custom\""
        ),
        "\r\nOK\r\n"
    );
    assert_eq!(wait_result(&mut m), "+UUHTTPCR: 0,4,1");
    let req = String::from_utf8(requests.recv().unwrap()).unwrap();
    assert!(req.starts_with("POST /q HTTP/1.0\r\n"), "{req}");
    assert!(
        req.contains("Content-Type: application/x-custom\r\n"),
        "{req}"
    );
    assert!(req.ends_with("\r\n\r\n{\"on\": true}"), "{req}");

    // A file that does not exist: refused at once.
    assert_eq!(
        at(&mut m, "AT+UHTTPC=0,4,\"/q\",\"post\",\"absent\",1"),
        "\r\n+CME ERROR: 1612\r\n"
    );
    assert_eq!(
        at(&mut m, "AT+UHTTPER=0"),
        "\r\n+UHTTPER: 0,10,2\r\n\r\nOK\r\n"
    );
}

#[test]
fn a_silent_server_times_out_after_the_profile_timeout() {
    // Connections complete in the backlog but nothing is ever answered.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut m = module();
    at(&mut m, "AT+UHTTP=0,0,\"127.0.0.1\"");
    at(&mut m, &format!("AT+UHTTP=0,5,{port}"));
    at(&mut m, "AT+UHTTP=0,7,1");
    assert_eq!(at(&mut m, "AT+UHTTPC=0,1,\"/\",\"r\""), "\r\nOK\r\n");
    // A second request on a busy profile is refused.
    assert_eq!(
        at(&mut m, "AT+UHTTPC=0,1,\"/\",\"r\""),
        "\r\n+CME ERROR: 3\r\n"
    );
    assert_eq!(wait_result(&mut m), "+UUHTTPCR: 0,1,0");
    assert_eq!(
        at(&mut m, "AT+UHTTPER=0"),
        "\r\n+UHTTPER: 0,3,12\r\n\r\nOK\r\n"
    );
    drop(listener);
}

#[test]
fn the_result_goes_to_the_channel_that_asked() {
    let (port, _requests) = serve(vec![response("200 OK", b"x")], None);
    let mut m = module();
    let mut other = sealcell_modem::Channel::new(&mut m.module);
    at(&mut m, "AT+UHTTP=0,0,\"127.0.0.1\"");
    at(&mut m, &format!("AT+UHTTP=0,5,{port}"));
    assert_eq!(at(&mut m, "AT+UHTTPC=0,1,\"/\",\"r\""), "\r\nOK\r\n");
    assert_eq!(wait_result(&mut m), "+UUHTTPCR: 0,1,1");
    let mut out = Vec::new();
    other.poll(&mut m.module, m.now, &mut out);
    assert_eq!(out, b"");
}

/// Serves `total` generated bytes over TLS on each connection; the nth connection stops after
/// `cut[n]` bytes when given. Sends the MD5 of what it sent.
fn serve_generated(total: u64, cut: Vec<Option<u64>>) -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tls_acceptor();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stop in cut {
            let Ok((tcp, _)) = listener.accept() else {
                return;
            };
            let mut s = acceptor.accept(tcp).unwrap();
            answer(
                &mut s,
                format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n").as_bytes(),
            );
            let mut md5 = md5::Md5::new();
            let mut chunk = vec![0u8; 64 * 1024];
            let mut sent = 0u64;
            let limit = stop.unwrap_or(total);
            while sent < limit {
                for (i, b) in chunk.iter_mut().enumerate() {
                    *b = ((sent + i as u64) % 251) as u8;
                }
                let n = (limit - sent).min(chunk.len() as u64) as usize;
                s.write_all(&chunk[..n]).unwrap();
                md5.update(&chunk[..n]);
                sent += n as u64;
            }
            let _ = s.shutdown();
            let _ = tx.send(hex::encode(md5.finalize()));
        }
    });
    (port, rx)
}

#[test]
fn command_100_streams_256_mib_over_tls_and_a_cut_download_keeps_the_old_package() {
    const SIZE: u64 = 256 << 20;
    let (port, sent) = serve_generated(SIZE, vec![None, Some(SIZE / 2)]);
    let mut m = module();
    import(&mut m, 0, "root", "root.pem");
    at(&mut m, "AT+USECPRF=0,0,1");
    at(&mut m, "AT+USECPRF=0,3,\"root\"");
    at(&mut m, "AT+UHTTP=0,1,\"localhost\"");
    at(&mut m, &format!("AT+UHTTP=0,5,{port}"));
    at(&mut m, "AT+UHTTP=0,6,1,0");
    assert_eq!(at(&mut m, "AT+UHTTPC=0,100,\"/big.bin\""), "\r\nOK\r\n");
    let urc = wait_result(&mut m);
    let md5 = sent.recv().unwrap();
    assert_eq!(urc, format!("+UUHTTPCR: 0,100,1,200,\"{md5}\""));
    let size = at(&mut m, "AT+ULSTFILE=2,\"updatePackage.bin\",\"FOAT\"");
    assert!(size.contains(&format!("+ULSTFILE: {SIZE}")), "{size}");

    assert_eq!(at(&mut m, "AT+UHTTPC=0,100,\"/big.bin\""), "\r\nOK\r\n");
    assert_eq!(wait_result(&mut m), "+UUHTTPCR: 0,100,0,200,\"\"");
    let _ = sent.recv().unwrap();
    assert_eq!(
        at(&mut m, "AT+UHTTPER=0"),
        "\r\n+UHTTPER: 0,3,13\r\n\r\nOK\r\n"
    );
    let size = at(&mut m, "AT+ULSTFILE=2,\"updatePackage.bin\",\"FOAT\"");
    assert!(size.contains(&format!("+ULSTFILE: {SIZE}")), "{size}");
}

/// The real, independent `openssl s_server -WWW` (HTTP/1.0, no Content-Length: the body ends
/// with the connection), serving `dir` with the fixture certificate.
struct SServer(std::process::Child, u16);

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn s_server(dir: &std::path::Path) -> SServer {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pki = sealcell_testkit::transcript::pki_dir();
    let child = std::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-WWW", "-accept", &port.to_string()])
        .arg("-cert")
        .arg(pki.join("server.pem"))
        .arg("-key")
        .arg(pki.join("server-pkcs8.pem"))
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s_server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    SServer(child, port)
}

#[test]
fn application_note_4_1_against_openssl_s_server() {
    let www = tempfile::tempdir().unwrap();
    let package = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/fw/package.zip"
    ))
    .unwrap();
    std::fs::write(www.path().join("updatePackage.bin"), &package).unwrap();
    std::fs::write(www.path().join("hello.txt"), b"hello\n").unwrap();
    let server = s_server(www.path());
    let md5 = hex::encode(md5::Md5::digest(&package));

    let mut m = module();
    import(&mut m, 0, "RootCA", "root.pem");
    for c in [
        "AT+USECPRF=0,0,2",
        "AT+USECPRF=0,3,\"RootCA\"",
        "AT+USECPRF=0,4,\"fota.example.com\"",
        "AT+USECPRF=0,10,\"fota.example.com\"",
        "AT+UHTTP=0,0,\"127.0.0.1\"",
        "AT+UHTTP=0,6,1,0",
    ] {
        assert_eq!(at(&mut m, c), "\r\nOK\r\n", "{c}");
    }
    assert_eq!(
        at(&mut m, &format!("AT+UHTTP=0,5,{}", server.1)),
        "\r\nOK\r\n"
    );
    assert_eq!(
        at(&mut m, "AT+UHTTPC=0,100,\"/updatePackage.bin\""),
        "\r\nOK\r\n"
    );
    assert_eq!(
        wait_result(&mut m),
        format!("+UUHTTPCR: 0,100,1,200,\"{md5}\"")
    );
    let size = at(&mut m, "AT+ULSTFILE=2,\"updatePackage.bin\",\"FOAT\"");
    assert!(
        size.contains(&format!("+ULSTFILE: {}", package.len())),
        "{size}"
    );

    assert_eq!(
        at(&mut m, "AT+UHTTPC=0,1,\"/hello.txt\",\"hello\""),
        "\r\nOK\r\n"
    );
    assert_eq!(wait_result(&mut m), "+UUHTTPCR: 0,1,1");
    let file = at(&mut m, "AT+URDFILE=\"hello\"");
    assert!(file.contains("\"HTTP/1.0 200 ok\r\n"), "{file:?}");
    assert!(
        file.ends_with("\r\n\r\nhello\n\"\r\n\r\nOK\r\n"),
        "{file:?}"
    );

    // The wrong expected hostname at level 2: 3,73.
    at(&mut m, "AT+USECPRF=0,4,\"other.example.com\"");
    assert_eq!(
        at(&mut m, "AT+UHTTPC=0,1,\"/hello.txt\",\"x\""),
        "\r\nOK\r\n"
    );
    assert_eq!(wait_result(&mut m), "+UUHTTPCR: 0,1,0");
    assert_eq!(
        at(&mut m, "AT+UHTTPER=0"),
        "\r\n+UHTTPER: 0,3,73\r\n\r\nOK\r\n"
    );
}
