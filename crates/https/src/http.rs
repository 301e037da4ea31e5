//! A small HTTP client for the module's `+UHTTPC` commands: one HTTP/1.0 request per
//! connection, as real u-blox modules send it (at-contract §5; a server answers in the request's
//! version, and ubxlib's HTTP tests expect the stored response to start `HTTP/1.0 200 OK`), the
//! response head returned, the body streamed to a sink. HTTP/1.0 closes the connection after
//! the response, so no `Connection` header is needed; `Host` is sent all the same (virtual
//! hosts, and the TLS name the server may check against it).
//!
//! Bodies are framed by `Transfer-Encoding: chunked`, by `Content-Length`, or by the end of the
//! connection (HTTP/1.0 servers such as `openssl s_server -WWW`). A body that ends early is an
//! error, so a cut connection never passes for a whole download.

use std::io::{self, Read, Write};

/// The largest response head accepted.
///
/// # Security
/// A server cannot make the module buffer an endless header block.
pub const MAX_HEAD: usize = 64 * 1024;

/// A request.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// `GET`, `HEAD`, `POST`, `PUT`, `DELETE`.
    pub method: &'a str,
    /// The path, starting with `/`.
    pub path: &'a str,
    /// The `Host` header value (with `:port` when not the scheme's default).
    pub host: &'a str,
    /// Basic authentication.
    pub basic_auth: Option<(&'a str, &'a str)>,
    /// Extra headers.
    pub headers: &'a [(String, String)],
    /// The body and its content type.
    pub body: Option<(&'a [u8], &'a str)>,
}

/// The status line and headers of a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// The head as received (status line and headers, up to the blank line).
    pub raw: Vec<u8>,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why an HTTP exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The connection failed or timed out.
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    /// The response is not HTTP.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The body is larger than allowed.
    #[error("the body exceeds {0} bytes")]
    TooLarge(u64),
    /// The connection ended before the body did.
    #[error("the connection ended after {got} of {expected} body bytes")]
    Truncated {
        /// Bytes received.
        got: u64,
        /// Bytes announced.
        expected: u64,
    },
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in input.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Writes the request.
pub fn write_request(w: &mut impl Write, req: &Request<'_>) -> io::Result<()> {
    let mut head = format!(
        "{} {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: sealcell TOBY-L2\r\n",
        req.method, req.path, req.host
    );
    if let Some((user, pass)) = req.basic_auth {
        head.push_str(&format!(
            "Authorization: Basic {}\r\n",
            base64(format!("{user}:{pass}").as_bytes())
        ));
    }
    for (n, v) in req.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    match req.body {
        Some((body, content_type)) => head.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )),
        None if matches!(req.method, "POST" | "PUT") => head.push_str("Content-Length: 0\r\n\r\n"),
        None => head.push_str("\r\n"),
    }
    w.write_all(head.as_bytes())?;
    if let Some((body, _)) = req.body {
        w.write_all(body)?;
    }
    w.flush()
}

/// Sends `req` over `stream` and streams the response body (at most `max_body` bytes) to `sink`.
pub fn exchange<S: Read + Write>(
    stream: &mut S,
    req: &Request<'_>,
    max_body: u64,
    sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> Result<ResponseHead, HttpError> {
    exchange_with_head(stream, req, max_body, &mut |_| Ok(()), sink)
}

/// [`exchange`], with `on_head` called once the head has arrived and before any body byte.
pub fn exchange_with_head<S: Read + Write>(
    stream: &mut S,
    req: &Request<'_>,
    max_body: u64,
    on_head: &mut dyn FnMut(&ResponseHead) -> io::Result<()>,
    sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> Result<ResponseHead, HttpError> {
    write_request(stream, req)?;
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(HttpError::Malformed("response head too long".into()));
        }
        let n = read_some(stream, &mut chunk)?;
        if n == 0 {
            return Err(HttpError::Malformed(
                "the connection ended inside the response head".into(),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = parse_head(&buf[..head_end])?;
    on_head(&head)?;
    let rest = buf[head_end..].to_vec();
    let no_body =
        req.method == "HEAD" || head.status / 100 == 1 || head.status == 204 || head.status == 304;
    if no_body {
        return Ok(head);
    }
    let mut body = Body {
        stream,
        pending: rest,
        chunk,
        max: max_body,
        got: 0,
        sink,
    };
    if head
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        body.chunked()?;
    } else if let Some(len) = head.header("content-length") {
        let len: u64 = len
            .trim()
            .parse()
            .map_err(|_| HttpError::Malformed(format!("Content-Length {len:?}")))?;
        body.exact(len)?;
    } else {
        body.until_close()?;
    }
    Ok(head)
}

fn read_some(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A TLS peer that closes without close_notify (common for HTTP/1.0 servers) ends the body.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
            other => return other,
        }
    }
}

fn parse_head(raw: &[u8]) -> Result<ResponseHead, HttpError> {
    let text =
        std::str::from_utf8(raw).map_err(|_| HttpError::Malformed("head is not text".into()))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Malformed(format!("status line {status_line:?}")));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..=599).contains(s))
        .ok_or_else(|| HttpError::Malformed(format!("status line {status_line:?}")))?;
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            l.split_once(':')
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    Ok(ResponseHead {
        status,
        raw: raw.to_vec(),
        headers,
    })
}

struct Body<'s, 'k, S> {
    stream: &'s mut S,
    pending: Vec<u8>,
    chunk: Vec<u8>,
    max: u64,
    got: u64,
    sink: &'k mut dyn FnMut(&[u8]) -> io::Result<()>,
}

impl<S: Read> Body<'_, '_, S> {
    fn deliver(&mut self, data: &[u8]) -> Result<(), HttpError> {
        self.got += data.len() as u64;
        if self.got > self.max {
            return Err(HttpError::TooLarge(self.max));
        }
        (self.sink)(data)?;
        Ok(())
    }

    /// Delivers the first `n` pending bytes without copying them.
    fn deliver_pending(&mut self, n: usize) -> Result<(), HttpError> {
        let mut pending = std::mem::take(&mut self.pending);
        let result = self.deliver(&pending[..n]);
        pending.drain(..n);
        self.pending = pending;
        result
    }

    /// More bytes into `pending`; false at the end of the connection.
    fn fill(&mut self) -> Result<bool, HttpError> {
        let n = read_some(self.stream, &mut self.chunk)?;
        self.pending.extend_from_slice(&self.chunk[..n]);
        Ok(n > 0)
    }

    fn exact(&mut self, len: u64) -> Result<(), HttpError> {
        if len > self.max {
            return Err(HttpError::TooLarge(self.max));
        }
        loop {
            let want = usize::try_from(len - self.got)
                .unwrap_or(usize::MAX)
                .min(self.pending.len());
            self.deliver_pending(want)?;
            if self.got == len {
                return Ok(());
            }
            if !self.fill()? {
                return Err(HttpError::Truncated {
                    got: self.got,
                    expected: len,
                });
            }
        }
    }

    fn until_close(&mut self) -> Result<(), HttpError> {
        loop {
            let data = std::mem::take(&mut self.pending);
            self.deliver(&data)?;
            if !self.fill()? {
                return Ok(());
            }
        }
    }

    fn line(&mut self) -> Result<String, HttpError> {
        loop {
            if let Some(i) = self.pending.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.pending.drain(..i + 2).collect();
                return Ok(String::from_utf8_lossy(&line[..i]).into_owned());
            }
            if self.pending.len() > 4096 {
                return Err(HttpError::Malformed("chunk size line too long".into()));
            }
            if !self.fill()? {
                return Err(HttpError::Truncated {
                    got: self.got,
                    expected: self.got + 1,
                });
            }
        }
    }

    fn chunked(&mut self) -> Result<(), HttpError> {
        loop {
            let line = self.line()?;
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size_text, 16)
                .map_err(|_| HttpError::Malformed(format!("chunk size {line:?}")))?;
            if size == 0 {
                // Trailers, up to the blank line.
                while !self.line()?.is_empty() {}
                return Ok(());
            }
            let end = self
                .got
                .checked_add(size)
                .ok_or(HttpError::TooLarge(self.max))?;
            if end > self.max {
                return Err(HttpError::TooLarge(self.max));
            }
            while self.got < end {
                if self.pending.is_empty() && !self.fill()? {
                    return Err(HttpError::Truncated {
                        got: self.got,
                        expected: end,
                    });
                }
                let take = usize::try_from(end - self.got)
                    .unwrap_or(usize::MAX)
                    .min(self.pending.len());
                self.deliver_pending(take)?;
            }
            if !self.line()?.is_empty() {
                return Err(HttpError::Malformed("missing CRLF after a chunk".into()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that reads a canned response (in small pieces) and records what was written.
    struct Canned {
        input: Vec<u8>,
        pos: usize,
        written: Vec<u8>,
    }

    impl Read for Canned {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(7).min(self.input.len() - self.pos);
            buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    impl Write for Canned {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn get(response: &[u8], max: u64) -> (Result<ResponseHead, HttpError>, Vec<u8>, Vec<u8>) {
        let mut s = Canned {
            input: response.to_vec(),
            pos: 0,
            written: Vec::new(),
        };
        let headers = vec![("X-Device".to_string(), "42".to_string())];
        let req = Request {
            method: "GET",
            path: "/fw.bin",
            host: "fota.example.com",
            basic_auth: Some(("user", "pa:ss")),
            headers: &headers,
            body: None,
        };
        let mut body = Vec::new();
        let r = exchange(&mut s, &req, max, &mut |d| {
            body.extend_from_slice(d);
            Ok(())
        });
        (r, body, s.written)
    }

    #[test]
    fn request_and_the_three_framings() {
        let (r, body, sent) = get(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 100);
        assert_eq!(r.unwrap().status, 200);
        assert_eq!(body, b"hello");
        assert_eq!(
            String::from_utf8(sent).unwrap(),
            "GET /fw.bin HTTP/1.0\r\nHost: fota.example.com\r\nUser-Agent: sealcell TOBY-L2\r\n\
             Authorization: Basic dXNlcjpwYTpzcw==\r\nX-Device: 42\r\n\r\n"
        );
        let (r, body, _) = get(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nT: 1\r\n\r\n", 100);
        assert_eq!((r.unwrap().status, body), (200, b"hello world".to_vec()));
        let (r, body, _) = get(
            b"HTTP/1.0 200 ok\r\nContent-type: text/plain\r\n\r\nuntil the end",
            100,
        );
        assert_eq!((r.unwrap().status, body), (200, b"until the end".to_vec()));
        let (r, body, _) = get(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 100);
        assert_eq!((r.unwrap().status, body.len()), (404, 0));
    }

    #[test]
    fn truncation_caps_and_garbage() {
        assert!(matches!(
            get(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", 100).0,
            Err(HttpError::Truncated {
                got: 5,
                expected: 10
            })
        ));
        assert!(matches!(
            get(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", 4).0,
            Err(HttpError::TooLarge(4))
        ));
        assert!(matches!(
            get(b"HTTP/1.1 200 OK\r\n\r\n0123456789", 4).0,
            Err(HttpError::TooLarge(4))
        ));
        assert!(matches!(
            get(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n",
                100
            )
            .0,
            Err(HttpError::TooLarge(_))
        ));
        assert!(matches!(
            get(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
                100
            )
            .0,
            Err(HttpError::Truncated { .. })
        ));
        assert!(matches!(
            get(b"SSH-2.0-OpenSSH\r\n\r\n", 100).0,
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            get(b"HTTP/1.1 200 OK\r\nContent-Le", 100).0,
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            get(b"HTTP/1.1 999 X\r\n\r\n", 100).0,
            Err(HttpError::Malformed(_))
        ));
    }

    #[test]
    fn base64_known_answers() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(
            base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }
}
