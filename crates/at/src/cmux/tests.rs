//! The two ends against each other, and the properties of the codec.

use proptest::prelude::*;

use super::decoder::Decoder;
use super::frame::{Frame, Kind};
use super::mux::{Config, Event, Multiplexer, Role};

fn pair(n1: usize) -> (Multiplexer, Multiplexer) {
    let host = Multiplexer::new(Config {
        role: Role::Initiator,
        n1,
        max_dlci: 63,
    });
    let module = Multiplexer::new(Config {
        role: Role::Responder,
        n1,
        max_dlci: 5,
    });
    (host, module)
}

/// A UIH frame on DLCI 0 from the host (the control channel) carrying `info`.
fn control_frame(info: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    Frame {
        dlci: 0,
        cr: true,
        kind: Kind::Uih,
        pf: false,
        info,
    }
    .encode(&mut wire);
    wire
}

/// Feeds `wire` to `to`, collecting its events in an owned form and its answers.
fn deliver(to: &mut Multiplexer, wire: &[u8]) -> (Vec<String>, Vec<u8>) {
    let mut input = wire;
    let mut answers = Vec::new();
    let mut events = Vec::new();
    while let Some(e) = to.receive(&mut input, &mut answers) {
        events.push(match e {
            Event::Data { dlci, data } => format!("data {dlci} {}", String::from_utf8_lossy(data)),
            other => format!("{other:?}"),
        });
    }
    (events, answers)
}

#[test]
fn a_session_opens_exchanges_and_closes_down() {
    let (mut host, mut module) = pair(31);
    let mut wire = Vec::new();
    host.open(0, &mut wire);
    host.open(1, &mut wire);
    host.open(9, &mut wire);
    let (events, answers) = deliver(&mut module, &wire);
    assert_eq!(events, ["Opened(0)", "Opened(1)"]);
    // UA, UA, then DM for the DLCI beyond the module's five (responses: C/R set by the
    // responder).
    assert_eq!(
        answers,
        [
            0xF9, 0x03, 0x73, 0x01, 0xD7, 0xF9, //
            0xF9, 0x07, 0x73, 0x01, 0x15, 0xF9, //
            0xF9, 0x27, 0x1F, 0x01, 0x21, 0xF9,
        ]
    );
    let (events, _) = deliver(&mut host, &answers);
    assert_eq!(events, ["Opened(0)", "Opened(1)", "Refused(9)"]);

    let mut wire = Vec::new();
    host.send(1, b"AT\r", &mut wire);
    // Host data: a command from the initiator, C/R set.
    assert_eq!(wire[1], 0x07);
    let (events, _) = deliver(&mut module, &wire);
    assert_eq!(events, ["data 1 AT\r"]);

    let mut wire = Vec::new();
    module.send(1, b"\r\nOK\r\n", &mut wire);
    // Module data: a command from the responder, C/R clear.
    assert_eq!(
        wire,
        [
            0xF9, 0x05, 0xEF, 0x0D, 0x0D, 0x0A, b'O', b'K', 0x0D, 0x0A, 0x5F, 0xF9
        ]
    );
    let (events, _) = deliver(&mut host, &wire);
    assert_eq!(events, ["data 1 \r\nOK\r\n"]);

    let mut wire = Vec::new();
    host.close_down(&mut wire);
    assert_eq!(wire, [0xF9, 0x03, 0xEF, 0x05, 0xC3, 0x01, 0xF2, 0xF9]);
    let (events, answers) = deliver(&mut module, &wire);
    assert_eq!(events, ["CloseDown"]);
    assert!(module.is_closed_down() && !module.is_open(1));
    // The CLD response: type C1, on DLCI 0 as the responder's UIH.
    assert_eq!(answers, [0xF9, 0x01, 0xEF, 0x05, 0xC1, 0x01, 0x93, 0xF9]);
    let (events, _) = deliver(&mut host, &answers);
    assert_eq!(events, ["CloseDown"]);
}

#[test]
fn ubxlibs_close_down_frame_closes_the_module_down() {
    let (_, mut module) = pair(31);
    deliver(&mut module, &[0xF9, 0x03, 0x3F, 0x01, 0x1C, 0xF9]);
    let (events, answers) = deliver(
        &mut module,
        &[0xF9, 0x03, 0xFF, 0x05, 0xC3, 0x01, 0xE7, 0xF9],
    );
    assert_eq!(events, ["CloseDown"]);
    assert_eq!(&answers[4..6], [0xC1, 0x01]);
}

#[test]
fn at_cmuxs_short_close_down_frame_closes_the_module_down() {
    let (_, mut module) = pair(31);
    deliver(&mut module, &[0xF9, 0x03, 0x3F, 0x01, 0x1C, 0xF9]);
    let (events, _) = deliver(&mut module, &[0xF9, 0x03, 0xEF, 0x03, 0xC3, 0x16, 0xF9]);
    assert_eq!(events, ["CloseDown"]);
}

#[test]
fn nothing_after_a_close_down_in_the_same_field_is_answered() {
    let (_, mut module) = pair(31);
    deliver(&mut module, &[0xF9, 0x03, 0x3F, 0x01, 0x1C, 0xF9]);
    // CLD, then FCoff and Test in the same information field.
    let wire = control_frame(&[0xC3, 0x01, 0x63, 0x01, 0x23, 0x03, b'x']);
    let (events, answers) = deliver(&mut module, &wire);
    assert_eq!(events, ["CloseDown"]);
    assert_eq!(answers, [0xF9, 0x01, 0xEF, 0x05, 0xC1, 0x01, 0x93, 0xF9]);
}

#[test]
fn a_pn_proposing_a_larger_n1_is_answered_with_this_ends() {
    let (_, mut module) = pair(31);
    deliver(&mut module, &[0xF9, 0x03, 0x3F, 0x01, 0x1C, 0xF9]);
    // PN for DLCI 1: UIH, priority 0, T1 10, N1 127, N2 3, k 2.
    let value = [0x01, 0x00, 0x00, 0x0A, 127, 0x00, 0x03, 0x02];
    let mut info = vec![0x83, 0x11];
    info.extend_from_slice(&value);
    let wire = control_frame(&info);
    let (_, answers) = deliver(&mut module, &wire);
    assert_eq!(
        &answers[4..14],
        [0x81, 0x11, 0x01, 0x00, 0x00, 0x0A, 31, 0x00, 0x03, 0x02]
    );
}

#[test]
fn a_pn_agreeing_a_smaller_n1_is_kept_for_that_dlci() {
    let (_, mut module) = pair(64);
    deliver(
        &mut module,
        &[
            0xF9, 0x03, 0x3F, 0x01, 0x1C, 0xF9, 0xF9, 0x07, 0x3F, 0x01, 0xDE, 0xF9,
        ],
    );
    let mut info = vec![0x83, 0x11];
    info.extend_from_slice(&[0x01, 0x00, 0x00, 0x0A, 16, 0x00, 0x03, 0x02]);
    let wire = control_frame(&info);
    let (_, answers) = deliver(&mut module, &wire);
    assert_eq!(answers[10], 16, "the N1 agreed");
    let mut out = Vec::new();
    module.send(1, &[b'x'; 40], &mut out);
    let mut d = Decoder::new(16);
    let mut rest = out.as_slice();
    let mut sizes = Vec::new();
    while let Some(f) = d.next(&mut rest) {
        sizes.push(f.info.len());
    }
    assert_eq!(sizes, [16, 16, 8]);
    // Other DLCIs keep the link's N1.
    let mut out = Vec::new();
    module.send(2, &[b'x'; 40], &mut out);
    assert_eq!(out.len(), 40 + 6);
}

#[test]
fn disc_closes_one_dlci_and_disc_of_0_closes_down() {
    let (mut host, mut module) = pair(31);
    let mut wire = Vec::new();
    host.open(0, &mut wire);
    host.open(2, &mut wire);
    host.close(2, &mut wire);
    host.close(3, &mut wire);
    let (events, answers) = deliver(&mut module, &wire);
    assert_eq!(events, ["Opened(0)", "Opened(2)", "Closed(2)"]);
    // DISC of a DLCI that is not open: DM.
    assert_eq!(
        &answers[answers.len() - 6..],
        [0xF9, 0x0F, 0x1F, 0x01, 0xB1, 0xF9]
    );
    let mut wire = Vec::new();
    host.close(0, &mut wire);
    assert_eq!(deliver(&mut module, &wire).0, ["CloseDown"]);
}

#[test]
fn test_msc_and_flow_control_are_answered() {
    let (mut host, mut module) = pair(64);
    let mut wire = Vec::new();
    host.open(0, &mut wire);
    host.open(1, &mut wire);
    deliver(&mut module, &wire);
    // Test: the value comes back.
    let test = control_frame(&[0x23, 0x09, b'p', b'i', b'n', b'g']);
    let (_, answers) = deliver(&mut module, &test);
    let mut d = Decoder::new(64);
    let mut input = answers.as_slice();
    assert_eq!(
        d.next(&mut input).map(|f| f.info.to_vec()),
        Some(vec![0x21, 0x09, b'p', b'i', b'n', b'g'])
    );

    // The host's MSC with FC set holds DLCI 1 back; FCoff holds everything.
    let mut msc = Vec::new();
    host.send_signals(1, super::control::signals::FC, &mut msc);
    let (events, answers) = deliver(&mut module, &msc);
    assert_eq!(events, ["Flow"]);
    assert!(!module.may_send(1) && module.may_send(2));
    assert_eq!(&answers[4..8], [0xE1, 0x05, 0x07, 0x03]);
    let mut msc = Vec::new();
    host.send_signals(1, 0, &mut msc);
    deliver(&mut module, &msc);
    assert!(module.may_send(1));

    // An unknown command gets NSC with its type.
    let odd = control_frame(&[0xFF, 0x01]);
    let (_, answers) = deliver(&mut module, &odd);
    assert_eq!(&answers[4..7], [0x11, 0x03, 0xFF]);
}

#[test]
fn data_on_a_closed_dlci_is_dropped_and_counted() {
    let (mut host, mut module) = pair(31);
    let mut wire = Vec::new();
    host.open(0, &mut wire);
    host.send(4, b"AT\r", &mut wire);
    let (events, answers) = deliver(&mut module, &wire);
    assert_eq!(events, ["Opened(0)"]);
    assert_eq!(answers.len(), 6);
    assert_eq!(module.counts().closed_dlci, 1);
}

#[test]
fn data_longer_than_n1_is_split() {
    let (mut host, mut module) = pair(31);
    let mut wire = Vec::new();
    host.open(1, &mut wire);
    deliver(&mut module, &wire);
    let data: Vec<u8> = (0..100u8).collect();
    let mut wire = Vec::new();
    host.send(1, &data, &mut wire);
    let mut input = wire.as_slice();
    let mut sink = Vec::new();
    let mut got = Vec::new();
    let mut frames = 0;
    while let Some(Event::Data { data, .. }) = module.receive(&mut input, &mut sink) {
        got.extend_from_slice(data);
        frames += 1;
    }
    assert_eq!((frames, got), (4, data));
}

fn arb_kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Sabm),
        Just(Kind::Ua),
        Just(Kind::Dm),
        Just(Kind::Disc),
        Just(Kind::Uih),
        Just(Kind::Ui),
    ]
}

proptest! {
    #[test]
    fn encode_then_decode_is_the_identity(
        dlci in 0u8..=61, cr: bool, kind in arb_kind(), pf: bool,
        info in proptest::collection::vec(any::<u8>(), 0..400),
        split in 0usize..500,
    ) {
        let mut wire = Vec::new();
        Frame { dlci, cr, kind, pf, info: &info }.encode(&mut wire);
        let split = split.min(wire.len());
        let mut d = Decoder::new(400);
        let mut first = &wire[..split];
        prop_assert!(d.next(&mut first).is_none() || split == wire.len());
        let mut d = Decoder::new(400);
        let mut a = &wire[..split];
        let mut b = &wire[split..];
        let got = match d.next(&mut a).map(|f| (f.dlci, f.cr, f.kind, f.pf, f.info.to_vec())) {
            Some(f) => Some(f),
            None => d.next(&mut b).map(|f| (f.dlci, f.cr, f.kind, f.pf, f.info.to_vec())),
        };
        prop_assert_eq!(got, Some((dlci, cr, kind, pf, info)));
        prop_assert_eq!(d.dropped(), Default::default());
    }

    #[test]
    fn any_bytes_to_either_end_never_panic_and_answers_are_frames(
        bytes in proptest::collection::vec(any::<u8>(), 0..2000),
        responder: bool,
    ) {
        let role = if responder { Role::Responder } else { Role::Initiator };
        let mut m = Multiplexer::new(Config { role, n1: 64, max_dlci: 5 });
        let mut input = bytes.as_slice();
        let mut answers = Vec::new();
        while m.receive(&mut input, &mut answers).is_some() {}
        // Whatever it said is whole, good frames.
        let mut d = Decoder::new(64);
        let mut rest = answers.as_slice();
        while d.next(&mut rest).is_some() {}
        prop_assert_eq!(d.dropped(), Default::default());
        prop_assert!(d.is_idle());
    }

    #[test]
    fn a_session_split_at_any_byte_gives_the_same_events(
        data in proptest::collection::vec(any::<u8>(), 1..200),
        split in 0usize..400,
    ) {
        let (mut host, _) = pair(31);
        let mut wire = Vec::new();
        host.open(0, &mut wire);
        host.open(3, &mut wire);
        host.send(3, &data, &mut wire);
        host.close_down(&mut wire);
        let whole = deliver(&mut pair(31).1, &wire);
        let split = split.min(wire.len());
        let mut module = pair(31).1;
        let (mut events, mut answers) = deliver(&mut module, &wire[..split]);
        let (e2, a2) = deliver(&mut module, &wire[split..]);
        events.extend(e2);
        answers.extend(a2);
        // Data may arrive in more pieces when a frame is split; join them to compare.
        let joined = |v: &[String]| v.iter().filter(|e| !e.starts_with("data")).cloned().collect::<Vec<_>>();
        prop_assert_eq!(joined(&events), joined(&whole.0));
        prop_assert_eq!(answers, whole.1);
    }
}
