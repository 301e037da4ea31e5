//! A sans-I/O Xmodem-1k receiver, CRC mode, for `AT+UFWUPD` (at-contract §6).
//!
//! - Start: the receiver sends `C` at once and every second until the first block arrives;
//!   after 10 without an answer it gives up (the sender never started).
//! - Blocks: `SOH` (128 bytes) or `STX` (1024 bytes), block number, its complement, data,
//!   CRC-16/XMODEM (big-endian). A good next block is ACKed and delivered; a repeat of the
//!   previous one is ACKed and dropped; a damaged one is NAKed (and a silence of 10 s inside a
//!   block too); 10 consecutive errors, or a block out of sequence, cancel (`CAN CAN`).
//! - `EOT` ends the transfer (ACKed); `CAN CAN` from the sender aborts it.
//! - Xmodem carries no length: the last block is padded with `SUB` (0x1A). The receiver holds the
//!   most recent block back and strips trailing `SUB` bytes from the final one.

use std::time::{Duration, Instant};

/// Start of a 128-byte block.
pub const SOH: u8 = 0x01;
/// Start of a 1024-byte block.
pub const STX: u8 = 0x02;
/// End of transmission.
pub const EOT: u8 = 0x04;
/// Acknowledge.
pub const ACK: u8 = 0x06;
/// Negative acknowledge.
pub const NAK: u8 = 0x15;
/// Cancel.
pub const CAN: u8 = 0x18;
/// Padding of the last block.
pub const SUB: u8 = 0x1A;
/// "CRC mode, please": the receiver's start signal.
pub const CRC_START: u8 = b'C';

/// How many `C`s before the receiver gives up.
pub const START_TRIES: u32 = 10;
/// Time between `C`s.
pub const START_INTERVAL: Duration = Duration::from_secs(1);
/// Silence inside a block before it is NAKed.
pub const BLOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// Consecutive errors before the transfer is cancelled.
pub const MAX_ERRORS: u32 = 10;

/// CRC-16/XMODEM (polynomial 0x1021, initial value 0).
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Where the transfer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Still going.
    Receiving,
    /// `EOT` received: every byte has been delivered.
    Complete,
    /// Given up or cancelled.
    Failed(Failure),
}

/// Why a transfer failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No block after 10 `C`s.
    NeverStarted,
    /// Too many damaged blocks in a row.
    TooManyErrors,
    /// A block out of sequence.
    OutOfSequence,
    /// The sender cancelled.
    Cancelled,
    /// The image is larger than allowed.
    TooLarge,
}

/// The receiver.
#[derive(Debug)]
pub struct Receiver {
    packet: Vec<u8>,
    expected: u8,
    started: bool,
    starts_sent: u32,
    next_start: Instant,
    block_deadline: Option<Instant>,
    errors: u32,
    held: Option<Vec<u8>>,
    delivered: u64,
    max_size: u64,
    status: Status,
    last_was_can: bool,
}

impl Receiver {
    /// A receiver for at most `max_size` bytes; writes its first `C` into `out`.
    pub fn new(max_size: u64, now: Instant, out: &mut Vec<u8>) -> Receiver {
        out.push(CRC_START);
        Receiver {
            packet: Vec::with_capacity(1029),
            expected: 1,
            started: false,
            starts_sent: 1,
            next_start: now + START_INTERVAL,
            block_deadline: None,
            errors: 0,
            held: None,
            delivered: 0,
            max_size,
            status: Status::Receiving,
            last_was_can: false,
        }
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Bytes delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// When [`Receiver::poll`] must run next.
    pub fn deadline(&self) -> Option<Instant> {
        match self.status {
            // A block being received times out on its own clock, started or not (the next `C`
            // waits for it): otherwise a partial first block left a deadline in the past.
            Status::Receiving if !self.packet.is_empty() => self.block_deadline,
            Status::Receiving if !self.started => Some(self.next_start),
            // Between blocks: the wait for the next one (or EOT).
            Status::Receiving => self.block_deadline,
            _ => None,
        }
    }

    fn fail(&mut self, why: Failure, out: &mut Vec<u8>) {
        if why != Failure::Cancelled && why != Failure::NeverStarted {
            out.extend_from_slice(&[CAN, CAN]);
        }
        self.status = Status::Failed(why);
        self.held = None;
    }

    fn error(&mut self, now: Instant, out: &mut Vec<u8>) {
        self.packet.clear();
        // Once started, the resend is waited for like any block; before, the `C`s pace it,
        // the next one an interval after this NAK.
        self.block_deadline = self.started.then(|| now + BLOCK_TIMEOUT);
        if !self.started {
            self.next_start = now + START_INTERVAL;
        }
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            self.fail(Failure::TooManyErrors, out);
        } else {
            out.push(NAK);
        }
    }

    /// Runs the timers: `C` every second before the first block, NAK on a stalled block.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<u8>) -> Status {
        if self.status != Status::Receiving {
            return self.status;
        }
        if !self.started && self.packet.is_empty() && now >= self.next_start {
            if self.starts_sent >= START_TRIES {
                self.fail(Failure::NeverStarted, out);
            } else {
                out.push(CRC_START);
                self.starts_sent += 1;
                self.next_start = now + START_INTERVAL;
            }
        }
        if let Some(d) = self.block_deadline
            && now >= d
        {
            self.error(now, out);
        }
        self.status
    }

    /// Feeds bytes from the sender; answers go to `out`, image data to `sink`.
    pub fn feed(
        &mut self,
        input: &[u8],
        now: Instant,
        out: &mut Vec<u8>,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Status {
        for &b in input {
            if self.status != Status::Receiving {
                break;
            }
            if self.packet.is_empty() {
                match b {
                    SOH | STX => {
                        self.packet.push(b);
                        self.block_deadline = Some(now + BLOCK_TIMEOUT);
                        self.last_was_can = false;
                    }
                    EOT => {
                        out.push(ACK);
                        if let Some(last) = self.held.take() {
                            let end = last.iter().rposition(|&x| x != SUB).map_or(0, |i| i + 1);
                            sink(&last[..end]);
                            self.delivered += end as u64;
                        }
                        self.status = Status::Complete;
                    }
                    CAN if self.last_was_can => self.fail(Failure::Cancelled, out),
                    CAN => self.last_was_can = true,
                    // Line noise between blocks is ignored.
                    _ => self.last_was_can = false,
                }
                continue;
            }
            self.packet.push(b);
            let size = if self.packet[0] == STX { 1024 } else { 128 };
            if self.packet.len() < 3 + size + 2 {
                continue;
            }
            self.block_deadline = None;
            let (block, complement) = (self.packet[1], self.packet[2]);
            let data = &self.packet[3..3 + size];
            let crc = u16::from_be_bytes([self.packet[3 + size], self.packet[4 + size]]);
            if block != !complement || crc16(data) != crc {
                self.error(now, out);
                continue;
            }
            if block == self.expected.wrapping_sub(1) && self.started {
                // A repeat of the block we ACKed (our ACK was lost): ACK again, drop it, and
                // wait for the next one as after any block.
                out.push(ACK);
                self.packet.clear();
                self.block_deadline = Some(now + BLOCK_TIMEOUT);
                continue;
            }
            if block != self.expected {
                self.fail(Failure::OutOfSequence, out);
                continue;
            }
            if self.delivered + self.held.as_ref().map_or(0, |h| h.len() as u64) + size as u64
                > self.max_size + 1024
            {
                self.fail(Failure::TooLarge, out);
                continue;
            }
            self.started = true;
            self.errors = 0;
            self.expected = self.expected.wrapping_add(1);
            if let Some(prev) = self.held.replace(data.to_vec()) {
                sink(&prev);
                self.delivered += prev.len() as u64;
            }
            self.packet.clear();
            // A sender that vanishes between blocks is NAKed, and given up on after
            // MAX_ERRORS silences, instead of holding the channel forever.
            self.block_deadline = Some(now + BLOCK_TIMEOUT);
            out.push(ACK);
        }
        self.status
    }
}

/// Frames `data` as Xmodem-1k blocks numbered from `first` (1024-byte `STX` blocks, the last
/// one padded with `SUB`): for tests and host tools.
pub fn blocks(data: &[u8]) -> Vec<Vec<u8>> {
    data.chunks(1024)
        .enumerate()
        .map(|(i, chunk)| {
            let n = ((i + 1) % 256) as u8;
            let mut body = chunk.to_vec();
            body.resize(1024, SUB);
            let mut b = vec![STX, n, !n];
            b.extend_from_slice(&body);
            b.extend_from_slice(&crc16(&body).to_be_bytes());
            b
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(blocks: &[Vec<u8>], corrupt_first: bool) -> (Status, Vec<u8>, Vec<u8>) {
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut image = Vec::new();
        let mut r = Receiver::new(1 << 20, t0, &mut out);
        for (i, b) in blocks.iter().enumerate() {
            if corrupt_first && i == 0 {
                let mut bad = b.clone();
                bad[10] ^= 0xff;
                r.feed(&bad, t0, &mut out, &mut |d| image.extend_from_slice(d));
                assert_eq!(out.last(), Some(&NAK));
            }
            // Byte by byte, as a slow line would deliver it.
            for byte in b {
                r.feed(std::slice::from_ref(byte), t0, &mut out, &mut |d| {
                    image.extend_from_slice(d)
                });
            }
        }
        let s = r.feed(&[EOT], t0, &mut out, &mut |d| image.extend_from_slice(d));
        (s, out, image)
    }

    #[test]
    fn crc_known_answer() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }

    #[test]
    fn a_transfer_with_a_corrupted_block_is_nakked_and_retransmitted() {
        let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        let (s, out, image) = run(&blocks(&data), true);
        assert_eq!(s, Status::Complete);
        assert_eq!(image, data, "padding stripped");
        assert_eq!(out, [b'C', NAK, ACK, ACK, ACK, ACK]);
    }

    #[test]
    fn a_repeated_block_is_acked_and_dropped() {
        let data = vec![7u8; 2048];
        let b = blocks(&data);
        let repeated = vec![b[0].clone(), b[0].clone(), b[1].clone()];
        let (s, out, image) = run(&repeated, false);
        assert_eq!((s, image.len()), (Status::Complete, 2048));
        assert_eq!(out, [b'C', ACK, ACK, ACK, ACK]);
    }

    #[test]
    fn a_sender_that_never_starts() {
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut r = Receiver::new(1024, t0, &mut out);
        let mut t = t0;
        for _ in 0..20 {
            t += START_INTERVAL;
            r.poll(t, &mut out);
        }
        assert_eq!(out, vec![b'C'; 10]);
        assert_eq!(r.status(), Status::Failed(Failure::NeverStarted));
    }

    #[test]
    fn cancel_out_of_sequence_and_stalls() {
        let t0 = Instant::now();
        let b = blocks(&[1u8; 3000]);
        let mut out = Vec::new();
        let mut r = Receiver::new(1 << 20, t0, &mut out);
        r.feed(&b[1], t0, &mut out, &mut |_| {});
        assert_eq!(r.status(), Status::Failed(Failure::OutOfSequence));
        assert!(out.ends_with(&[CAN, CAN]));

        let mut out = Vec::new();
        let mut r = Receiver::new(1 << 20, t0, &mut out);
        r.feed(&[CAN, CAN], t0, &mut out, &mut |_| {});
        assert_eq!(r.status(), Status::Failed(Failure::Cancelled));

        let mut out = Vec::new();
        let mut r = Receiver::new(1 << 20, t0, &mut out);
        r.feed(&b[0][..100], t0, &mut out, &mut |_| {});
        r.poll(t0 + BLOCK_TIMEOUT, &mut out);
        assert_eq!(out, [b'C', NAK], "a stalled block is NAKed");
        r.feed(&b[0], t0, &mut out, &mut |_| {});
        assert_eq!(out.last(), Some(&ACK));
    }

    /// A partial first block is timed by the block clock: the deadline is in the future, and
    /// polling at it NAKs (it used to stay at the passed `C` time, so an event loop spun).
    #[test]
    fn a_partial_first_block_has_a_future_deadline() {
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut r = Receiver::new(1 << 20, t0, &mut out);
        let at = t0 + Duration::from_millis(1500);
        r.feed(&[STX, 1], at, &mut out, &mut |_| {});
        assert_eq!(r.deadline(), Some(at + BLOCK_TIMEOUT));
        out.clear();
        // Polling before it changes nothing, and the deadline stays put.
        r.poll(at + Duration::from_secs(5), &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(r.deadline(), Some(at + BLOCK_TIMEOUT));
        r.poll(at + BLOCK_TIMEOUT, &mut out);
        assert_eq!(out, [NAK]);
    }

    /// A sender that goes silent between blocks is NAKed every block timeout and given up on
    /// after MAX_ERRORS of them.
    #[test]
    fn a_sender_that_vanishes_between_blocks_is_given_up_on() {
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut r = Receiver::new(1 << 20, t0, &mut out);
        let first = blocks(&[7u8; 1024]).remove(0);
        r.feed(&first, t0, &mut out, &mut |_| {});
        assert_eq!(out.last(), Some(&ACK));
        let mut now = t0;
        let mut naks = 0;
        while r.status() == Status::Receiving {
            now = r.deadline().expect("a receiving transfer has a deadline");
            out.clear();
            r.poll(now, &mut out);
            naks += out.iter().filter(|&&b| b == NAK).count();
        }
        assert_eq!(r.status(), Status::Failed(Failure::TooManyErrors));
        assert_eq!(naks, MAX_ERRORS as usize - 1);
        assert_eq!(now, t0 + BLOCK_TIMEOUT * MAX_ERRORS);
    }

    /// A repeated block (the sender missed our ACK) is waited past like any block: a sender
    /// that then goes silent is NAKed after the block timeout.
    #[test]
    fn a_repeated_block_keeps_the_wait_for_the_next() {
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut r = Receiver::new(1 << 20, t0, &mut out);
        let first = blocks(&[1u8; 1024]).remove(0);
        r.feed(&first, t0, &mut out, &mut |_| {});
        let again = t0 + Duration::from_secs(1);
        r.feed(&first, again, &mut out, &mut |_| {});
        assert_eq!(out.last(), Some(&ACK));
        assert_eq!(r.deadline(), Some(again + BLOCK_TIMEOUT));
        out.clear();
        r.poll(again + BLOCK_TIMEOUT, &mut out);
        assert_eq!(out, [NAK]);
    }
}
