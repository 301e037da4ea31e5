//! The test bench's control socket: JSON lines in and out; what is not a request is refused
//! with a reason, and the connection goes on.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::Rig;

fn ask(conn: &mut (TcpStream, BufReader<TcpStream>), line: &[u8]) -> serde_json::Value {
    conn.0.write_all(line).unwrap();
    let mut answer = String::new();
    conn.1.read_line(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{answer:?}: {e}"))
}

#[test]
fn requests_are_answered_and_nonsense_is_refused_with_a_reason() {
    let mut rig = Rig::start();
    let addr = rig.emulator.listen_control("127.0.0.1:0").unwrap();
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut conn = (stream.try_clone().unwrap(), BufReader::new(stream));
    let mut c = rig.connect();
    c.echo_off();

    let v = ask(&mut conn, b"{\"fault\":\"signal\",\"args\":[-100]}\n");
    assert_eq!(
        v,
        serde_json::json!({"ok": true, "done": "signal -100", "armed": [], "fired": ["signal -100"], "timing": "fast"})
    );
    c.send(b"AT+CSQ\r");
    c.expect(b"\r\n+CSQ: 19,99\r\n\r\nOK\r\n");

    for (line, why) in [
        (&b"not json\n"[..], "not a JSON object"),
        (b"{\"args\":[]}\n", "a request is"),
        (
            b"{\"fault\":\"urc\",\"args\":[{}]}\n",
            "each argument is a string or a number",
        ),
        (
            b"{\"fault\":\"reboot\",\"args\":\"now\"}\n",
            "\"args\" is a list",
        ),
        (
            b"{\"fault\":\"latency\",\"args\":[-1]}\n",
            "latency: takes ms",
        ),
        (b"{\"fault\":\"melt\"}\n", "no fault is called"),
    ] {
        let v = ask(&mut conn, line);
        assert_eq!(v["ok"], false, "{line:?}");
        assert!(v["error"].as_str().unwrap().contains(why), "{line:?}: {v}");
    }
    // A line past the cap is refused whole; the next one is read as usual.
    let mut long = vec![b'x'; sealcell_serve::control::MAX_REQUEST + 10];
    long.push(b'\n');
    let v = ask(&mut conn, &long);
    assert!(
        v["error"].as_str().unwrap().contains("at most 4096 bytes"),
        "{v}"
    );
    let v = ask(&mut conn, b"{\"fault\":\"status\"}\n");
    assert_eq!(v["ok"], true);
    assert_eq!(v["fired"], serde_json::json!(["signal -100"]));
}

#[test]
fn the_control_socket_refuses_to_listen_beyond_loopback() {
    let mut rig = Rig::start();
    let err = rig.emulator.listen_control("0.0.0.0:0").unwrap_err();
    assert!(err.to_string().contains("loopback only"), "{err}");
}
