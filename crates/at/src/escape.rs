//! Byte escaping for transcript files: printable ASCII stands for itself, `\r`, `\n`, `\t`,
//! `\\` and `\xHH` for the rest.

/// Escapes bytes for a transcript line.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

/// Reverses [`escape`].
pub fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let hi = bytes.next().ok_or("truncated \\x escape")?;
                let lo = bytes.next().ok_or("truncated \\x escape")?;
                let hex = [hi, lo];
                let s = std::str::from_utf8(&hex).map_err(|_| "bad \\x escape")?;
                out.push(u8::from_str_radix(s, 16).map_err(|_| format!("bad \\x escape {s:?}"))?);
            }
            other => {
                return Err(format!(
                    "unknown escape \\{}",
                    other.map(char::from).unwrap_or(' ')
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(unescape(&escape(&all)).unwrap(), all);
        assert_eq!(escape(b"AT\r\n\x00\\"), "AT\\r\\n\\x00\\\\");
    }
}
