//! The benches' small AT client over TCP, and reading a stream up to a marker.
// Each bench uses the part it needs.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

/// Reads from `r` into `got` until it holds `end`; returns everything up to and including
/// it, and keeps the rest in `got`.
pub(crate) fn read_until(r: &mut impl Read, got: &mut Vec<u8>, end: &[u8]) -> Vec<u8> {
    let mut buf = [0u8; 64 * 1024];
    loop {
        if let Some(i) = find(got, end) {
            let rest = got.split_off(i + end.len());
            return std::mem::replace(got, rest);
        }
        let n = r.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(got));
        got.extend_from_slice(&buf[..n]);
    }
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// An AT connection to the emulator, echo off.
pub(crate) struct At {
    pub(crate) stream: TcpStream,
    got: Vec<u8>,
}

impl At {
    pub(crate) fn open(addr: SocketAddr) -> At {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut at = At {
            stream,
            got: Vec::new(),
        };
        at.command(b"ATE0\r");
        at
    }

    /// Sends `bytes` as they are.
    pub(crate) fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads until `end` has arrived; returns everything up to and including it.
    pub(crate) fn until(&mut self, end: &[u8]) -> Vec<u8> {
        read_until(&mut self.stream, &mut self.got, end)
    }

    /// Sends `line` (with its CR) and returns the answer up to its `OK`, which must not be an
    /// error.
    pub(crate) fn command(&mut self, line: &[u8]) -> Vec<u8> {
        self.send(line);
        let answer = self.until(b"OK\r\n");
        assert!(!contains(&answer, b"ERROR"), "{line:?} -> {answer:?}");
        answer
    }
}
