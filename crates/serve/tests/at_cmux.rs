//! 27.010 multiplexing (`AT+CMUX`) against a third-party host: the `at-cmux` crate (the one
//! ublox-cellular-rs drives a real module with), over real TCP and over the emulator's PTY.
//!
//! What it proves, with exact bytes:
//! - `AT+CMUX=0,0,,31` on plain AT is echoed and answered `OK`, and the same connection then
//!   speaks frames: at-cmux's SABMs for DLCI 0..=3 are accepted and every DLCI is an AT channel
//!   of its own, answering concurrently (echo, `ATE0`, `AT+CGMI`), with settings of its own
//!   (`+CMEE` 2, 1 and 0 give three forms of the same error);
//! - a `+UDWNFILE` payload holding every byte value (0xF9, the flag, too) goes through one
//!   DLCI while another lists and reads files, and reads back byte for byte on a third, which
//!   at-cmux paces with its flow control (MSC with FC), every MSC answered;
//! - a URC goes only to the DLCI that asked for it;
//! - the host's flow control holds the output of one DLCI (MSC FC) or of all (FCoff) until
//!   it is lifted, and nothing is lost;
//! - a DISC of one DLCI is answered UA, that DLCI is silent from then on and the others go on;
//! - at-cmux's close-down (DISC of each DLCI, then its CLD, which has no length octet) is
//!   answered frame by frame, and plain `AT` on the same connection is answered in plain text
//!   with the echo the link had before the multiplexer.
//!
//! at-cmux has no call to close a DLCI or the multiplexer: the test injects the DISC frame
//! through the writer it shares with at-cmux, and closes down the way at-cmux does when its
//! port ends (a kill switch in the port makes it read end-of-file). Every frame the module
//! sends is also copied to a tap, so the test sees the UA and DM frames at-cmux swallows.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use at_cmux::{Channel, FrameError, Mux};
// The "std" implementation of critical-section, which at-cmux's queues lock with.
use critical_section as _;
use embedded_io_async::{BufRead as _, Read as _, Write as _};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio::sync::{Mutex, Notify};

use common::Rig;

/// The N1 the test asks for (27.010's default for the basic option).
const N1: usize = 31;

/// Bytes per DLCI in at-cmux's queues: a few frames, so a long answer needs its flow control.
const BUF: usize = 256;

/// How long one answer may take.
const ANSWER: Duration = Duration::from_secs(5);

/// How long a whole scenario may take.
const SCENARIO: Duration = Duration::from_secs(10);

/// The three DLCIs of one multiplexer.
type Mux3 = Mux<3, BUF>;

// ---- 27.010 frames, written here independently of the emulator's codec ----

/// The FCS of TS 27.010 §5.2.1.6: ones' complement of the reflected CRC-8 (x^8+x^2+x+1).
fn fcs(bytes: &[u8]) -> u8 {
    let mut crc = 0xFFu8;
    for &b in bytes {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xE0
            } else {
                crc >> 1
            };
        }
    }
    0xFF - crc
}

/// A basic-option frame with no information field or a short one (UIH: FCS over the header).
fn frame(dlci: u8, cr: bool, control: u8, info: &[u8]) -> Vec<u8> {
    assert!(info.len() < 128);
    let header = [
        dlci << 2 | u8::from(cr) << 1 | 1,
        control,
        (info.len() as u8) << 1 | 1,
    ];
    let mut f = vec![0xF9];
    f.extend_from_slice(&header);
    f.extend_from_slice(info);
    f.push(fcs(&header));
    f.push(0xF9);
    f
}

/// The host's DISC of `dlci` (command, C/R 1 from the initiator, P set), as at-cmux writes it.
fn disc(dlci: u8) -> Vec<u8> {
    frame(dlci, true, 0x53, &[])
}

/// The module's UA (a response from the responder: C/R 1; F set, as the command had P).
fn ua(dlci: u8) -> Vec<u8> {
    frame(dlci, true, 0x73, &[])
}

/// The module's DM (response, F set): the DLCI was not open.
fn dm(dlci: u8) -> Vec<u8> {
    frame(dlci, true, 0x1F, &[])
}

/// The module's CLD response: UIH on DLCI 0 from the responder (C/R 0), type C1, length 0.
fn cld_response() -> Vec<u8> {
    frame(0, false, 0xEF, &[0xC1, 0x01])
}

/// How often `frame` occurs in `bytes`.
fn count(bytes: &[u8], frame: &[u8]) -> usize {
    bytes.windows(frame.len()).filter(|w| *w == frame).count()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---- the host's port: at-cmux's reader and writer over a tokio stream ----

/// What the test shares with at-cmux's port while at-cmux runs: the writer, the tap of what
/// at-cmux read, and the kill switch.
struct Wire<W> {
    writer: Mutex<W>,
    /// What at-cmux read from the module.
    tap: RefCell<Vec<u8>>,
    /// What at-cmux wrote to the module.
    sent: RefCell<Vec<u8>>,
    killed: Cell<bool>,
    kill: Notify,
}

impl<W: AsyncWrite + Unpin> Wire<W> {
    /// Writes `bytes` whole, between at-cmux's frames (plain AT, or a frame at-cmux cannot
    /// send).
    async fn inject(&self, bytes: &[u8]) {
        let mut w = self.writer.lock().await;
        w.write_all(bytes).await.unwrap();
        w.flush().await.unwrap();
    }

    /// Waits until what at-cmux read from the module holds `frame` `times` times.
    async fn wait_in_tap(&self, frame: &[u8], times: usize) {
        let start = Instant::now();
        while count(&self.tap.borrow(), frame) < times {
            assert!(
                start.elapsed() < ANSWER,
                "the module sent {frame:02X?} {} times, not {times}",
                count(&self.tap.borrow(), frame)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until the module answered every MSC at-cmux sent (its flow control: FC set with
    /// V.24 EA|FC|RTC|DV when a DLCI's queue is full, cleared with EA|RTC|RTR|DV as it
    /// drains); returns how many it sent with FC set.
    async fn flow_control_answered(&self) -> usize {
        let mut stops = 0;
        for dlci in 1..=3u8 {
            let address = dlci << 2 | 0x03;
            for v24 in [0x87, 0x8D] {
                let sent = count(
                    &self.sent.borrow(),
                    &frame(0, true, 0xEF, &[0xE3, 0x05, address, v24]),
                );
                let response = frame(0, false, 0xEF, &[0xE1, 0x05, address, v24]);
                self.wait_in_tap(&response, sent).await;
                if v24 == 0x87 {
                    stops += sent;
                }
            }
        }
        stops
    }

    /// Makes at-cmux close down: its port reads end-of-file, so it sends DISC for each DLCI
    /// it thinks open, then CLD, and `run` returns.
    fn kill(&self) {
        self.killed.set(true);
        self.kill.notify_one();
    }
}

/// The port's read half for at-cmux: a buffered reader that copies what at-cmux takes to the
/// tap, and reads end-of-file while the kill switch is on.
struct Port<R, W> {
    inner: BufReader<R>,
    wire: Rc<Wire<W>>,
}

impl<R, W> embedded_io_async::ErrorType for Port<R, W> {
    type Error = io::Error;
}

impl<R: AsyncRead + Unpin, W> embedded_io_async::Read for Port<R, W> {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let data = self.fill_buf().await?;
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: AsyncRead + Unpin, W> embedded_io_async::BufRead for Port<R, W> {
    async fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.wire.killed.get() {
            return Ok(&[]);
        }
        // tokio's fill_buf keeps what it read if it is cancelled.
        tokio::select! {
            data = self.inner.fill_buf() => data,
            () = self.wire.kill.notified() => Ok(&[]),
        }
    }

    fn consume(&mut self, amt: usize) {
        self.wire
            .tap
            .borrow_mut()
            .extend_from_slice(&self.inner.buffer()[..amt]);
        self.inner.consume(amt);
    }
}

/// The port's write half for at-cmux: it collects one frame (at-cmux flushes after each) and
/// writes it whole under the lock [`Wire::inject`] takes, so an injected frame never lands
/// inside one of at-cmux's.
struct FrameWriter<W> {
    wire: Rc<Wire<W>>,
    pending: Vec<u8>,
}

impl<W> embedded_io_async::ErrorType for FrameWriter<W> {
    type Error = io::Error;
}

impl<W: AsyncWrite + Unpin> embedded_io_async::Write for FrameWriter<W> {
    async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> io::Result<()> {
        let mut w = self.wire.writer.lock().await;
        w.write_all(&self.pending).await?;
        self.wire.sent.borrow_mut().extend_from_slice(&self.pending);
        self.pending.clear();
        w.flush().await
    }
}

/// One end of a link the test drives: plain AT first, then at-cmux over the same stream,
/// then plain AT again.
struct Host<R, W> {
    port: Port<R, W>,
    writer: FrameWriter<W>,
    wire: Rc<Wire<W>>,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Host<R, W> {
    fn new(reader: R, writer: W) -> Host<R, W> {
        let wire = Rc::new(Wire {
            writer: Mutex::new(writer),
            tap: RefCell::default(),
            sent: RefCell::default(),
            killed: Cell::new(false),
            kill: Notify::new(),
        });
        Host {
            port: Port {
                inner: BufReader::new(reader),
                wire: Rc::clone(&wire),
            },
            writer: FrameWriter {
                wire: Rc::clone(&wire),
                pending: Vec::new(),
            },
            wire,
        }
    }

    /// Reads exactly `want.len()` raw bytes (not through at-cmux) and asserts they are `want`.
    async fn expect_raw(&mut self, want: &[u8]) {
        let mut got = vec![0u8; want.len()];
        tokio::time::timeout(ANSWER, self.port.inner.read_exact(&mut got))
            .await
            .unwrap_or_else(|_| panic!("no {:?} within {ANSWER:?}", text(want)))
            .unwrap();
        assert_eq!(got, want, "got {:?}, want {:?}", text(&got), text(want));
    }

    /// Plain AT: sends `command` and asserts the answer (echo included) is `want`.
    async fn plain(&mut self, command: &[u8], want: &[u8]) {
        self.wire.inject(command).await;
        self.expect_raw(want).await;
    }

    /// Switches the module's link to 27.010 with N1 = 31 (echo on: the command comes back).
    async fn start_cmux(&mut self) {
        self.plain(b"AT+CMUX=0,0,,31\r", b"AT+CMUX=0,0,,31\r\r\nOK\r\n")
            .await;
    }

    /// Runs at-cmux on the link with `app` beside it; `app` ends by [`Wire::kill`], and
    /// what at-cmux's `run` returned is checked: the end of its port.
    async fn multiplex<'m, F, Fut>(&mut self, mux: &'m mut Mux3, app: F)
    where
        F: FnOnce([Channel<'m, BUF>; 3], Rc<Wire<W>>) -> Fut,
        Fut: Future<Output = ()> + 'm,
    {
        let (mut runner, channels) = mux.start();
        let app = app(channels, Rc::clone(&self.wire));
        let (ended, ()) = tokio::join!(runner.run(&mut self.port, &mut self.writer, N1), app);
        assert!(
            matches!(
                ended,
                Err(FrameError::Read(embedded_io_async::ErrorKind::BrokenPipe))
            ),
            "at-cmux ended with {ended:?}"
        );
        // The port reads the stream again.
        self.wire.killed.set(false);
    }

    /// After at-cmux's close-down (DISC of each DLCI it thinks open, highest first, then CLD):
    /// the module's `answers` to the DISCs and its CLD response, then plain AT with the echo
    /// on, as before `AT+CMUX`.
    async fn expect_close_down(&mut self, answers: &[Vec<u8>]) {
        let mut tail: Vec<u8> = answers.concat();
        tail.extend(cld_response());
        self.expect_raw(&tail).await;
        self.plain(b"AT\r", b"AT\r\r\nOK\r\n").await;
        self.plain(b"AT+CGMI\r", b"AT+CGMI\r\r\nu-blox\r\n\r\nOK\r\n")
            .await;
        // Plain again: no multiplexer runs, so there are no parameters to read.
        self.plain(b"AT+CMUX?\r", b"AT+CMUX?\r\r\nERROR\r\n").await;
    }
}

// ---- AT on an at-cmux channel ----

/// Reads exactly `want.len()` bytes from `ch` within [`ANSWER`] and asserts they are `want`.
async fn expect(ch: &mut Channel<'_, BUF>, dlci: u8, want: &[u8]) {
    let mut got = Vec::with_capacity(want.len());
    let read = async {
        let mut buf = [0u8; 64];
        while got.len() < want.len() {
            let n = (want.len() - got.len()).min(buf.len());
            let n = ch.read(&mut buf[..n]).await.unwrap();
            got.extend_from_slice(&buf[..n]);
        }
    };
    let done = tokio::time::timeout(ANSWER, read).await.is_ok();
    assert!(
        done && got == want,
        "DLCI {dlci}: got {:?}, want {:?}",
        text(&got),
        text(want)
    );
}

/// Writes `bytes` to `ch` (at-cmux frames them, N1 bytes at most a frame).
async fn send(ch: &mut Channel<'_, BUF>, bytes: &[u8]) {
    ch.write_all(bytes).await.unwrap();
    ch.flush().await.unwrap();
}

/// Sends `command` on `ch` and asserts the answer is exactly `want`.
async fn at(ch: &mut Channel<'_, BUF>, dlci: u8, command: &[u8], want: &[u8]) {
    send(ch, command).await;
    expect(ch, dlci, want).await;
}

/// Asserts that `ch` receives nothing for `d`.
async fn quiet(ch: &mut Channel<'_, BUF>, dlci: u8, d: Duration) {
    if let Ok(data) = tokio::time::timeout(d, ch.fill_buf()).await {
        panic!("DLCI {dlci}: unexpected {:?}", text(data.unwrap()));
    }
}

/// On each DLCI at once: echo off (the echo of `ATE0` itself still comes), then `+CGMI`.
async fn greet(ch: &mut Channel<'_, BUF>, dlci: u8) {
    at(ch, dlci, b"ATE0\r", b"ATE0\r\r\nOK\r\n").await;
    at(ch, dlci, b"AT+CGMI\r", b"\r\nu-blox\r\n\r\nOK\r\n").await;
}

// ---- running a scenario ----

/// Runs `scenario` on a single-threaded runtime of the test's own (at-cmux is `!Send`), and
/// fails it if it takes longer than [`SCENARIO`].
fn run<F: Future<Output = ()>>(scenario: F) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(SCENARIO, scenario)
            .await
            .unwrap_or_else(|_| panic!("the scenario did not end within {SCENARIO:?}"));
    });
}

/// Every byte value, 0xF9 (the flag) and 0x0D among them, in an order that shows a shift.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 256) as u8).collect()
}

#[test]
fn at_cmux_over_tcp_dlcis_files_urcs_disc_and_close_down() {
    let rig = Rig::start();
    run(async {
        let stream = tokio::net::TcpStream::connect(rig.addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (r, w) = stream.into_split();
        let mut host = Host::new(r, w);
        host.start_cmux().await;

        let mut mux = Mux3::new();
        host.multiplex(&mut mux, |[mut c1, mut c2, mut c3], wire| async move {
            // Three AT channels at once, each with its own echo.
            tokio::join!(greet(&mut c1, 1), greet(&mut c2, 2), greet(&mut c3, 3));

            // The multiplexer's parameters, read on a DLCI.
            at(
                &mut c3,
                3,
                b"AT+CMUX?\r",
                b"\r\n+CMUX: 0,0,0,31,10,3,30,10,2\r\n\r\nOK\r\n",
            )
            .await;

            // +CMEE per DLCI: the same refusal (no AT+CMUX inside the multiplexer) three ways.
            tokio::join!(
                at(&mut c1, 1, b"AT+CMEE=2\r", b"\r\nOK\r\n"),
                at(&mut c2, 2, b"AT+CMEE=1\r", b"\r\nOK\r\n"),
            );
            tokio::join!(
                at(
                    &mut c1,
                    1,
                    b"AT+CMUX=0\r",
                    b"\r\n+CME ERROR: Operation not allowed\r\n"
                ),
                at(&mut c2, 2, b"AT+CMUX=0\r", b"\r\n+CME ERROR: 3\r\n"),
                at(&mut c3, 3, b"AT+CMUX=0\r", b"\r\nERROR\r\n"),
            );

            // A file for DLCI 2 to read while DLCI 1 uploads.
            let other = b"the other file\r\n\xF9\x00";
            let command = format!("AT+UDWNFILE=\"other\",{}\r", other.len());
            at(&mut c2, 2, command.as_bytes(), b"\r\n>").await;
            at(&mut c2, 2, other, b"\r\nOK\r\n").await;

            // DLCI 1 uploads 3000 bytes of every value; halfway through, DLCI 2 lists and
            // reads files, then both finish at once.
            let blob = payload(3000);
            at(&mut c1, 1, b"AT+UDWNFILE=\"blob\",3000\r", b"\r\n>").await;
            send(&mut c1, &blob[..1500]).await;
            at(
                &mut c2,
                2,
                b"AT+ULSTFILE=\r",
                b"\r\n+ULSTFILE: \"other\"\r\n\r\nOK\r\n",
            )
            .await;
            let mut read_other = format!("\r\n+URDFILE: \"other\",{},\"", other.len()).into_bytes();
            read_other.extend_from_slice(other);
            read_other.extend_from_slice(b"\"\r\n\r\nOK\r\n");
            tokio::join!(
                at(&mut c1, 1, &blob[1500..], b"\r\nOK\r\n"),
                at(&mut c2, 2, b"AT+URDFILE=\"other\"\r", &read_other),
            );

            // The upload, read back on a third DLCI: about a hundred frames, more than
            // at-cmux's queue holds, and not read for a while.
            let mut read_blob = b"\r\n+URDFILE: \"blob\",3000,\"".to_vec();
            read_blob.extend_from_slice(&blob);
            read_blob.extend_from_slice(b"\"\r\n\r\nOK\r\n");
            send(&mut c3, b"AT+URDFILE=\"blob\"\r").await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            expect(&mut c3, 3, &read_blob).await;
            // While DLCI 3 was not read, at-cmux's queue filled: it stopped the module on
            // DLCI 3 with an MSC and let it go on as it drained; the module answered each.
            let msc = |v24: u8| frame(0, true, 0xEF, &[0xE3, 0x05, 0x0F, v24]);
            let stops = count(&wire.sent.borrow(), &msc(0x87));
            assert!(stops >= 1, "at-cmux never used its flow control");
            assert_eq!(count(&wire.sent.borrow(), &msc(0x8D)), stops);
            assert_eq!(wire.flow_control_answered().await, stops);
            at(
                &mut c2,
                2,
                b"AT+ULSTFILE=\r",
                b"\r\n+ULSTFILE: \"blob\",\"other\"\r\n\r\nOK\r\n",
            )
            .await;

            // +CREG reports on DLCI 2 only; DLCI 1 turns the radio off and on.
            at(&mut c2, 2, b"AT+CREG=1\r", b"\r\nOK\r\n").await;
            at(&mut c1, 1, b"AT+CFUN=4\r", b"\r\nOK\r\n").await;
            expect(&mut c2, 2, b"\r\n+CREG: 0\r\n").await;
            at(&mut c1, 1, b"AT+CFUN=1\r", b"\r\nOK\r\n").await;
            expect(&mut c2, 2, b"\r\n+CREG: 1\r\n").await;
            tokio::join!(
                quiet(&mut c1, 1, Duration::from_millis(200)),
                quiet(&mut c2, 2, Duration::from_millis(200)),
                quiet(&mut c3, 3, Duration::from_millis(200)),
            );

            // The host's flow control, injected (at-cmux sends it only when its queue fills):
            // an MSC with FC for DLCI 2 holds DLCI 2's answers, not DLCI 1's, until an MSC
            // without FC; FCoff holds every DLCI until FCon. Each is answered at once.
            let msc = |v24: u8| frame(0, true, 0xEF, &[0xE3, 0x05, 0x0B, v24]);
            let msc_response = |v24: u8| frame(0, false, 0xEF, &[0xE1, 0x05, 0x0B, v24]);
            wire.inject(&msc(0x87)).await;
            wire.wait_in_tap(&msc_response(0x87), 1).await;
            send(&mut c2, b"AT+CGMI\r").await;
            tokio::join!(
                quiet(&mut c2, 2, Duration::from_millis(300)),
                at(&mut c1, 1, b"AT\r", b"\r\nOK\r\n"),
            );
            wire.inject(&msc(0x8D)).await;
            expect(&mut c2, 2, b"\r\nu-blox\r\n\r\nOK\r\n").await;
            wire.inject(&frame(0, true, 0xEF, &[0x63, 0x01])).await;
            wire.wait_in_tap(&frame(0, false, 0xEF, &[0x61, 0x01]), 1)
                .await;
            send(&mut c1, b"AT\r").await;
            send(&mut c3, b"AT+CGMI\r").await;
            tokio::join!(
                quiet(&mut c1, 1, Duration::from_millis(300)),
                quiet(&mut c3, 3, Duration::from_millis(300)),
            );
            wire.inject(&frame(0, true, 0xEF, &[0xA3, 0x01])).await;
            wire.wait_in_tap(&frame(0, false, 0xEF, &[0xA1, 0x01]), 1)
                .await;
            tokio::join!(
                expect(&mut c1, 1, b"\r\nOK\r\n"),
                expect(&mut c3, 3, b"\r\nu-blox\r\n\r\nOK\r\n"),
            );

            // DISC of DLCI 3 (at-cmux has no call for it): the module answers UA; what at-cmux
            // still sends on DLCI 3 goes unanswered, and the other DLCIs go on.
            wire.inject(&disc(3)).await;
            wire.wait_in_tap(&ua(3), 1).await;
            send(&mut c3, b"AT\r").await;
            tokio::join!(
                at(&mut c1, 1, b"AT\r", b"\r\nOK\r\n"),
                at(&mut c2, 2, b"AT\r", b"\r\nOK\r\n"),
                quiet(&mut c3, 3, Duration::from_millis(300)),
            );

            wire.flow_control_answered().await;
            wire.kill();
        })
        .await;

        // at-cmux sent DISC 3, 2, 1 and CLD: DM for 3 (closed already), UA for 2 and 1.
        host.expect_close_down(&[dm(3), ua(2), ua(1)]).await;
    });
    rig.emulator.stop();
}

#[test]
fn at_cmux_over_a_pty_three_dlcis_and_close_down() {
    let mut rig = Rig::start();
    let links = tempfile::tempdir().unwrap();
    let slave = rig.emulator.open_pty(&links.path().join("tty")).unwrap();
    run(async {
        // The host end as a serial port driver opens it: no controlling terminal, non-blocking.
        let port = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK)
            .open(&slave)
            .unwrap();
        let fd = OwnedFd::from(port);
        let r = pipe::Receiver::from_owned_fd_unchecked(fd.try_clone().unwrap()).unwrap();
        let w = pipe::Sender::from_owned_fd_unchecked(fd).unwrap();
        let mut host = Host::new(r, w);
        host.start_cmux().await;

        let mut mux = Mux3::new();
        host.multiplex(&mut mux, |[mut c1, mut c2, mut c3], wire| async move {
            tokio::join!(greet(&mut c1, 1), greet(&mut c2, 2), greet(&mut c3, 3));
            tokio::join!(
                at(&mut c1, 1, b"AT+CMEE=2\r", b"\r\nOK\r\n"),
                at(&mut c2, 2, b"AT+CMEE=1\r", b"\r\nOK\r\n"),
            );
            tokio::join!(
                at(
                    &mut c1,
                    1,
                    b"AT+URDFILE=\"none\"\r",
                    b"\r\n+CME ERROR: FILE NOT FOUND\r\n"
                ),
                at(
                    &mut c2,
                    2,
                    b"AT+URDFILE=\"none\"\r",
                    b"\r\n+CME ERROR: 1612\r\n"
                ),
                at(&mut c3, 3, b"AT+URDFILE=\"none\"\r", b"\r\nERROR\r\n"),
            );

            // Every byte value through the terminal and back (the raw line discipline passes
            // CR, the flag and XON/XOFF alike), uploaded on DLCI 3 while DLCI 1 and 2 talk.
            let bytes = payload(512);
            let mut read_back = b"\r\n+URDFILE: \"bytes\",512,\"".to_vec();
            read_back.extend_from_slice(&bytes);
            read_back.extend_from_slice(b"\"\r\n\r\nOK\r\n");
            tokio::join!(
                async {
                    at(&mut c3, 3, b"AT+UDWNFILE=\"bytes\",512\r", b"\r\n>").await;
                    at(&mut c3, 3, &bytes, b"\r\nOK\r\n").await;
                    at(&mut c3, 3, b"AT+URDFILE=\"bytes\"\r", &read_back).await;
                },
                async {
                    for _ in 0..5 {
                        at(&mut c1, 1, b"AT\r", b"\r\nOK\r\n").await;
                    }
                },
                async {
                    for _ in 0..5 {
                        at(&mut c2, 2, b"AT+CGMI\r", b"\r\nu-blox\r\n\r\nOK\r\n").await;
                    }
                },
            );
            // Nothing but the close-down's answers may follow.
            wire.flow_control_answered().await;
            wire.kill();
        })
        .await;

        // at-cmux sent DISC 3, 2, 1 and CLD: a UA for each.
        host.expect_close_down(&[ua(3), ua(2), ua(1)]).await;
    });
    rig.emulator.stop();
}
