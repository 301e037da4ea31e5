//! Streaming SHA-256 (FIPS 180-4) with constant memory. `sha2` picks SHA-NI or the ARMv8 SHA
//! extensions at run time, the same speed as OpenSSL's assembly.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// Bytes read per step: large enough to stream at memory speed, small enough to keep the
/// resident set tiny.
pub const CHUNK: usize = 1 << 20;

/// SHA-256 of everything `reader` yields, and its length; `progress` sees the bytes so far.
pub fn sha256_reader(
    mut reader: impl Read,
    mut progress: impl FnMut(u64),
) -> io::Result<([u8; 32], u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total: u64 = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
        progress(total);
    }
    Ok((hasher.finalize().into(), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        let (d, n) = sha256_reader(&b"abc"[..], |_| {}).unwrap();
        assert_eq!(
            hex::encode(d),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(n, 3);
        let big = vec![b'a'; 1_000_000];
        let (d, n) = sha256_reader(&big[..], |_| {}).unwrap();
        assert_eq!(
            hex::encode(d),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
        assert_eq!(n, 1_000_000);
    }
}
