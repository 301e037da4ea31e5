//! Hooks shared by the cargo-fuzz targets (`fuzz/`) and the corpus replay test, so the same
//! assertions run under the fuzzer and on stable. A hook reports a broken invariant by
//! panicking: that is how libFuzzer and `cargo test` notice it.
#![allow(clippy::panic)]

use crate::line::{LineAssembler, MAX_LINE, Push};
use crate::syntax::{Form, Line, parse_line};

/// Feeds arbitrary bytes to the line assembler and checks its invariants: no line is longer
/// than [`MAX_LINE`] and no line contains a terminator.
pub fn line_assembler(data: &[u8]) {
    let mut a = LineAssembler::new();
    for &b in data {
        if a.push(b) == Push::Line {
            let line = a.line();
            assert!(line.len() <= MAX_LINE);
            assert!(!line.contains(&b'\r') && !line.contains(&b'\n'));
        }
    }
}

/// Parses arbitrary bytes as a command line; every command that parses must print back to
/// text that parses to the same command (parse -> serialize -> equal), and every argument list
/// must tokenize without panicking.
pub fn command_parser(data: &[u8]) {
    let Ok(Line::Commands(line)) = parse_line(data) else {
        return;
    };
    for cmd in line.commands() {
        let Ok(cmd) = cmd else { break };
        if cmd.name.is_overlong() {
            // An over-long name is kept only as "unknown"; it has no text to print back.
            continue;
        }
        if let Form::Set(args) = cmd.form {
            for arg in args.iter() {
                if arg.is_err() {
                    break;
                }
            }
        }
        let text = format!("AT{cmd}");
        let Ok(Line::Commands(again)) = parse_line(text.as_bytes()) else {
            panic!("reprinted command does not parse: {text:?}");
        };
        let mut cmds = again.commands();
        let reparsed = cmds.next();
        assert_eq!(reparsed, Some(Ok(cmd)), "round trip of {text:?}");
    }
}

/// Feeds arbitrary bytes to the host-side digester one at a time, re-arming it after each
/// event as a client would; it must never panic nor make more events than bytes.
pub fn dte_digester(data: &[u8]) {
    let mut d = crate::dte::Digester::new();
    d.expect_response();
    let mut events = 0usize;
    for b in data {
        d.feed(std::slice::from_ref(b));
        while d.next_event().is_some() {
            events += 1;
            d.expect_response();
        }
    }
    assert!(events <= data.len());
}

/// Feeds arbitrary bytes to an Xmodem receiver in uneven chunks with time passing; it must
/// never deliver more than it acknowledged, nor panic.
pub fn xmodem(data: &[u8]) {
    use crate::xmodem::{Receiver, Status};
    let t0 = std::time::Instant::now();
    let mut out = Vec::new();
    let mut r = Receiver::new(1 << 16, t0, &mut out);
    let mut delivered = 0u64;
    let mut t = t0;
    for (i, chunk) in data.chunks(7).enumerate() {
        t += std::time::Duration::from_millis(300 * (i as u64 % 5));
        r.poll(t, &mut out);
        if r.feed(chunk, t, &mut out, &mut |d| delivered += d.len() as u64) != Status::Receiving {
            break;
        }
    }
    assert_eq!(delivered, r.delivered());
    assert!(delivered <= (1 << 16) + 1024);
}

/// Parses arbitrary bytes (as UTF-8, lossily) as every type of the command vocabulary
/// ([`crate::commands`]), as argument text and, for answer lines, also after the type's
/// prefix; whatever parses must print back to text that parses to the same value
/// (parse -> format -> parse is the identity), and printing that again must give the same text.
pub fn vocabulary(data: &[u8]) {
    use crate::commands::{uhttp, useccfg, usecmng, usecprf};

    let text = String::from_utf8_lossy(data);
    // Set-command arguments and bare values.
    round_trip_text::<usecprf::SecPrfCommand>(&text);
    round_trip_text::<usecprf::SecPrfSet>(&text);
    round_trip_text::<usecprf::SecProfileId>(&text);
    round_trip_text::<usecprf::SecPrfOp>(&text);
    round_trip_text::<usecprf::ValidationLevel>(&text);
    round_trip_text::<usecprf::MinTlsVersion>(&text);
    round_trip_text::<usecprf::PinLevel>(&text);
    round_trip_text::<usecprf::PskEncoding>(&text);
    round_trip_text::<usecprf::IanaForm>(&text);
    round_trip_text::<usecprf::ResumptionType>(&text);
    round_trip_text::<usecmng::SecMngCommand>(&text);
    round_trip_text::<usecmng::SecMngOp>(&text);
    round_trip_text::<usecmng::SecMngReportOp>(&text);
    round_trip_text::<usecmng::SecMngListItem>(&text);
    round_trip_text::<useccfg::SecCfgCommand>(&text);
    round_trip_text::<uhttp::HttpProfileCommand>(&text);
    round_trip_text::<uhttp::HttpRequest>(&text);
    round_trip_text::<uhttp::HttpOp>(&text);
    round_trip_text::<uhttp::HttpAuthentication>(&text);
    round_trip_text::<uhttp::HttpCommand>(&text);
    // Answer lines, as they come and behind their prefix.
    round_trip_line::<usecprf::SecPrfRead>(&text);
    round_trip_line::<usecmng::SecMngReport>(&text);
    round_trip_line::<useccfg::SecCfgStatus>(&text);
    round_trip_line::<uhttp::HttpRequestResult>(&text);
    round_trip_line::<uhttp::HttpErrorReport>(&text);
}

fn round_trip_line<T>(text: &str)
where
    T: crate::commands::InfoLine + PartialEq + std::fmt::Debug,
{
    round_trip_text::<T>(text);
    round_trip_text::<T>(&format!("{} {text}", T::PREFIX));
}

fn round_trip_text<T>(text: &str)
where
    T: crate::commands::Wire + PartialEq + std::fmt::Debug,
{
    if let Ok(value) = T::parse(text) {
        vocabulary_value(&value);
    }
}

/// Checks one value of the command vocabulary: its text parses back to it, and prints again to
/// the same text. The proptests call this on generated values.
pub fn vocabulary_value<T>(value: &T)
where
    T: crate::commands::Wire + PartialEq + std::fmt::Debug,
{
    let printed = value.to_string();
    match T::parse(&printed) {
        Ok(again) => {
            assert_eq!(&again, value, "round trip of {printed:?}");
            assert_eq!(again.to_string(), printed, "reprint of {printed:?}");
        }
        Err(e) => panic!("printed value {printed:?} does not parse: {e}"),
    }
}

/// Feeds arbitrary bytes to both ends of a 27.010 multiplexer, whole and split at a point
/// the input chooses: neither panics, everything either end answers is whole frames with a
/// good FCS, no data event is longer than N1, and the split changes neither the answers nor
/// the data delivered.
pub fn cmux(data: &[u8]) {
    use crate::cmux::decoder::Decoder;
    use crate::cmux::mux::{Config, Event, Multiplexer, Role};
    let Some((&first, data)) = data.split_first() else {
        return;
    };
    let n1 = usize::from(first % 64) + 1;
    let split = usize::from(first).min(data.len());
    for role in [Role::Responder, Role::Initiator] {
        let config = Config {
            role,
            n1,
            max_dlci: 5,
        };
        let run = |pieces: &[&[u8]]| {
            let mut m = Multiplexer::new(config);
            let mut answers = Vec::new();
            let mut delivered = Vec::new();
            for piece in pieces {
                let mut input = *piece;
                while let Some(event) = m.receive(&mut input, &mut answers) {
                    if let Event::Data { dlci, data } = event {
                        assert!(data.len() <= n1, "a data event beyond N1");
                        delivered.push(dlci);
                        delivered.extend_from_slice(data);
                    }
                }
            }
            (answers, delivered)
        };
        let whole = run(&[data]);
        let (a, b) = data.split_at(split);
        assert_eq!(
            run(&[a, b]),
            whole,
            "a split changed what the multiplexer did"
        );
        let mut d = Decoder::new(crate::cmux::frame::MAX_INFO);
        let mut rest = whole.0.as_slice();
        while d.next(&mut rest).is_some() {}
        assert_eq!(
            d.dropped(),
            Default::default(),
            "an answer is not a good frame"
        );
        assert!(d.is_idle(), "an answer ends mid-frame");
    }
}
