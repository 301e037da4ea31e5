//! Hostile and sloppy input: garbage before commands, every line-ending variant, fed one byte
//! at a time; a 1 MB line; random byte streams (proptest). Each bad line gets ERROR or
//! +CME ERROR, nothing panics, and the channel keeps working.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use proptest::prelude::*;
use sealcell_testkit::TestModule;

fn bytewise(m: &mut TestModule, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in input {
        out.extend(m.send(std::slice::from_ref(b)));
    }
    out
}

#[test]
fn garbage_first_then_commands_byte_by_byte_with_every_line_ending() {
    for ending in [&b"\r"[..], b"\r\n", b"\n"] {
        let mut m = TestModule::new();
        assert_eq!(bytewise(&mut m, b"ATE0\r"), b"ATE0\r\r\nOK\r\n");
        let mut input = b"\x00\xff\x1b[A+++garbage".to_vec();
        input.extend_from_slice(ending);
        input.extend_from_slice(b"AT+CGMI");
        input.extend_from_slice(ending);
        assert_eq!(
            bytewise(&mut m, &input),
            b"\r\nERROR\r\n\r\nu-blox\r\n\r\nOK\r\n",
            "ending {ending:?}"
        );
    }
}

#[test]
fn a_one_megabyte_line_gets_one_error_and_the_channel_recovers() {
    let mut m = TestModule::new();
    m.send(b"ATE0\r");
    let mut line = b"AT+CGMI=".to_vec();
    line.extend(std::iter::repeat_n(b'9', 1 << 20));
    line.push(b'\r');
    assert_eq!(m.send(&line), b"\r\nERROR\r\n");
    assert_eq!(m.send(b"AT\r"), b"\r\nOK\r\n");
}

#[test]
fn error_results_for_each_kind_of_bad_input() {
    let mut m = TestModule::new();
    m.send(b"ATE0;+CMEE=1\r");
    let cases: &[(&[u8], &[u8])] = &[
        (b"\x00\x00\x00\r", b"\r\nERROR\r\n"),
        (b"AT\xc3\x28\r", b"\r\nERROR\r\n"),
        (
            b"AT+UDWNFILE=\"x\",9223372036854775808\r",
            b"\r\n+CME ERROR: 4\r\n",
        ),
        (
            b"AT+UDWNFILE=\"x\",18446744073709551616\r",
            b"\r\n+CME ERROR: 4\r\n",
        ),
        (b"AT+UDWNFILE=\"../sec/x\",1\r", b"\r\n+CME ERROR: 1638\r\n"),
        (
            b"AT+URDFILE=\"../otp/duk.bin\"\r",
            b"\r\n+CME ERROR: 1638\r\n",
        ),
        (b"AT+URDBLOCK=\"x\",0,99999999\r", b"\r\n+CME ERROR: 4\r\n"),
        (b"AT+CGSN=\"\r", b"\r\nERROR\r\n"),
        (b"AT+;;;\r", b"\r\n+CME ERROR: 100\r\n"),
        (
            b"AT+AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r",
            b"\r\n+CME ERROR: 100\r\n",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(m.send(input), *want, "{:?}", String::from_utf8_lossy(input));
        assert_eq!(
            m.send(b"AT\r"),
            b"\r\nOK\r\n",
            "after {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

/// Names are checked in bytes as well as characters before the `>` prompt: 128 `é` are 128
/// characters but 256 bytes, more than one host file name holds, so they get 1638 at once and
/// no payload is taken (regression: they got the prompt, then 23 after the payload). 248 ASCII
/// characters and 255 bytes of multibyte characters go end to end.
#[test]
fn file_names_the_host_cannot_store_are_refused_before_the_prompt() {
    let mut m = TestModule::new();
    m.send(b"ATE0;+CMEE=1\r");
    for name in ["é".repeat(128), "€".repeat(100)] {
        let line = format!("AT+UDWNFILE=\"{name}\",3\r");
        assert_eq!(m.send(line.as_bytes()), b"\r\n+CME ERROR: 1638\r\n");
        assert_eq!(
            m.send(b"AT\r"),
            b"\r\nOK\r\n",
            "command mode, not a payload"
        );
    }
    for name in ["n".repeat(248), "€".repeat(85)] {
        let mut answers = Vec::new();
        for line in [
            format!("AT+UDWNFILE=\"{name}\",3\r"),
            "abc".to_string(),
            "AT+ULSTFILE\r".to_string(),
            format!("AT+URDFILE=\"{name}\"\r"),
            format!("AT+UDELFILE=\"{name}\"\r"),
            "AT+ULSTFILE\r".to_string(),
        ] {
            answers.push(String::from_utf8(m.send(line.as_bytes())).unwrap());
        }
        assert_eq!(
            answers,
            [
                "\r\n>".to_string(),
                "\r\nOK\r\n".to_string(),
                format!("\r\n+ULSTFILE: \"{name}\"\r\n\r\nOK\r\n"),
                format!("\r\n+URDFILE: \"{name}\",3,\"abc\"\r\n\r\nOK\r\n"),
                "\r\nOK\r\n".to_string(),
                "\r\n+ULSTFILE: \r\n\r\nOK\r\n".to_string(),
            ],
            "{} bytes",
            name.len()
        );
    }
}

fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..16),
        Just(b"AT".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b";".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"=?".to_vec()),
        Just(b"?".to_vec()),
        Just(b",".to_vec()),
        Just(b"\x08".to_vec()),
        Just(b"+UDWNFILE=\"f\",3".to_vec()),
        Just(b"+URDFILE=\"f\"".to_vec()),
        Just(b"+UDELFILE=\"f\"".to_vec()),
        Just(b"+ULSTFILE=2,\"f\"".to_vec()),
        Just(b"+CFUN=16".to_vec()),
        Just(b"+CFUN=0".to_vec()),
        Just(b"+CEREG=2".to_vec()),
        Just(b"E0V0Q1".to_vec()),
        Just(b"+CMEE=2".to_vec()),
        Just(b"+CGDCONT=1,\"IP\",\"x\"".to_vec()),
        Just(b"+UBANDMASK=3,99999999999999999999".to_vec()),
        Just(b"+USECCFG=0,1,\"pw\"".to_vec()),
        Just(b"+USECCFG?".to_vec()),
        Just(b"+USECMNG=0,0,\"c\",40".to_vec()),
        Just(b"+USECMNG=0,2,\"k\",5,\"pw\"".to_vec()),
        Just(b"+USECMNG=1,0,\"c\",\"f\"".to_vec()),
        Just(b"+USECMNG=2,0,\"c\"".to_vec()),
        Just(b"+USECMNG=3".to_vec()),
        Just(b"+USECMNG=4,0,\"c\"".to_vec()),
        Just(b"-----BEGIN CERTIFICATE-----\nMIIB".to_vec()),
        (0u64..u64::MAX).prop_map(|n| n.to_string().into_bytes()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Random streams never panic the engine, and afterwards the channel still answers.
    #[test]
    fn random_streams_never_break_the_channel(
        fragments in prop::collection::vec(fragment(), 0..64),
        cuts in prop::collection::vec(1usize..64, 1..8),
    ) {
        let mut m = TestModule::new();
        let stream: Vec<u8> = fragments.concat();
        let mut rest = &stream[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            m.send(&rest[..n]);
            rest = &rest[n..];
            i += 1;
        }
        // Leave any payload by its timeout, end any partial line (which may itself start a
        // payload: let that time out too), restore verbose results.
        m.wait(Duration::from_secs(21));
        m.send(b"\r");
        m.wait(Duration::from_secs(21));
        m.send(b"ATE0V1Q0\r");
        prop_assert_eq!(m.send(b"AT+CGMI\r"), b"\r\nu-blox\r\n\r\nOK\r\n".to_vec());
    }
}
