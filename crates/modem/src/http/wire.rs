//! HTTP/1.0 on the wire, sans-I/O: the request's bytes, and a push parser for the response.
//!
//! The module sends one HTTP/1.0 request per connection, as real u-blox modules do
//! (at-contract §5; a server answers in the request's version, and ubxlib's HTTP tests expect
//! the stored response to start `HTTP/1.0 200 OK`). HTTP/1.0 closes the connection after the
//! response, so no `Connection` header is needed; `Host` is sent all the same (virtual hosts,
//! and the TLS name the server may check against it).
//!
//! [`ResponseParser`] takes the server's bytes in whatever pieces they arrive and reports the
//! head once, then body bytes. Bodies are framed by `Transfer-Encoding: chunked`, by
//! `Content-Length`, or by the end of the connection (HTTP/1.0 servers such as
//! `openssl s_server -WWW`). A body that ends early is an error, so a cut connection never
//! passes for a whole download. Nothing here reads a socket: the transport pushes bytes in.

use base64::Engine as _;
use zeroize::Zeroizing;

/// The largest response head accepted.
///
/// # Security
/// A server cannot make the module buffer an endless header block.
pub const MAX_HEAD: usize = 64 * 1024;

/// The longest chunk-size or trailer line accepted.
///
/// # Security
/// A server cannot make the chunked decoder buffer an endless line.
pub const MAX_CHUNK_LINE: usize = 4096;

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

/// The request's bytes, head and body (zeroized when dropped: they may carry a password).
pub fn request_bytes(req: &Request<'_>) -> Zeroizing<Vec<u8>> {
    let mut head = Zeroizing::new(format!(
        "{} {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: sealcell TOBY-L2\r\n",
        req.method, req.path, req.host
    ));
    if let Some((user, pass)) = req.basic_auth {
        let credentials = Zeroizing::new(format!("{user}:{pass}"));
        let token = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&*credentials));
        head.push_str("Authorization: Basic ");
        head.push_str(&token);
        head.push_str("\r\n");
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
    let body = req.body.map_or(&[][..], |(b, _)| b);
    let mut bytes = Zeroizing::new(Vec::with_capacity(head.len() + body.len()));
    bytes.extend_from_slice(head.as_bytes());
    bytes.extend_from_slice(body);
    bytes
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

/// Why a response was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
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
        /// Bytes announced (or one more than received, inside a chunk line).
        expected: u64,
    },
}

/// What the parser found in the bytes pushed.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The head arrived (once, before any body byte).
    Head(&'a ResponseHead),
    /// Body bytes.
    Body(&'a [u8]),
}

/// Whether the response is complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// More bytes are needed.
    More,
    /// The response is whole; later bytes are ignored.
    Complete,
}

#[derive(Debug)]
enum Chunk {
    /// Reading a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines, up to the blank one.
    Trailer,
}

#[derive(Debug)]
enum State {
    Head,
    /// `Content-Length`: this many bytes left.
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

/// A push parser for one HTTP/1.x response.
#[derive(Debug)]
pub struct ResponseParser {
    state: State,
    /// Head bytes, or the current chunk line.
    buf: Vec<u8>,
    head: Option<ResponseHead>,
    /// A `HEAD` request's response has no body, whatever its headers say.
    head_request: bool,
    max_body: u64,
    got: u64,
}

impl ResponseParser {
    /// A parser for the response to a `method` request whose body may be at most `max_body`
    /// bytes.
    pub fn new(method: &str, max_body: u64) -> ResponseParser {
        ResponseParser {
            state: State::Head,
            buf: Vec::new(),
            head: None,
            head_request: method == "HEAD",
            max_body,
            got: 0,
        }
    }

    /// The head, once it has arrived.
    pub fn head(&self) -> Option<&ResponseHead> {
        self.head.as_ref()
    }

    /// Body bytes so far.
    pub fn body_len(&self) -> u64 {
        self.got
    }

    /// Whether the body's end is the end of the connection (no length, no chunks).
    pub fn ends_with_the_connection(&self) -> bool {
        matches!(self.state, State::UntilClose)
    }

    /// Takes the next bytes from the server; `on` sees the head and the body as they come. An
    /// error from `on` stops the parse and is returned.
    pub fn push<E: From<HttpError>>(
        &mut self,
        mut input: &[u8],
        on: &mut dyn FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<Progress, E> {
        while !input.is_empty() {
            match &mut self.state {
                State::Done => return Ok(Progress::Complete),
                State::Head => input = self.push_head(input, on)?,
                State::Length(left) => {
                    let n = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    *left -= n as u64;
                    let done = *left == 0;
                    self.deliver(&input[..n], on)?;
                    input = &input[n..];
                    if done {
                        self.state = State::Done;
                    }
                }
                State::UntilClose => {
                    self.deliver(input, on)?;
                    input = &[];
                }
                State::Chunked(_) => input = self.push_chunked(input, on)?,
            }
        }
        Ok(match self.state {
            State::Done => Progress::Complete,
            _ => Progress::More,
        })
    }

    /// The server closed the connection: whether the response is whole.
    pub fn end(&mut self) -> Result<(), HttpError> {
        match &self.state {
            State::Done => Ok(()),
            State::UntilClose => {
                self.state = State::Done;
                Ok(())
            }
            State::Head => Err(HttpError::Malformed(
                "the connection ended inside the response head".into(),
            )),
            State::Length(left) => Err(HttpError::Truncated {
                got: self.got,
                expected: self.got + left,
            }),
            State::Chunked(Chunk::Data(left)) => Err(HttpError::Truncated {
                got: self.got,
                expected: self.got + left,
            }),
            State::Chunked(_) => Err(HttpError::Truncated {
                got: self.got,
                expected: self.got + 1,
            }),
        }
    }

    fn deliver<E: From<HttpError>>(
        &mut self,
        data: &[u8],
        on: &mut dyn FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if data.is_empty() {
            return Ok(());
        }
        self.got += data.len() as u64;
        if self.got > self.max_body {
            return Err(HttpError::TooLarge(self.max_body).into());
        }
        on(Event::Body(data))
    }

    fn push_head<'i, E: From<HttpError>>(
        &mut self,
        input: &'i [u8],
        on: &mut dyn FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<&'i [u8], E> {
        // Look for the blank line across the boundary of what was buffered and what came.
        let start = self.buf.len().saturating_sub(3);
        let room = MAX_HEAD + 4 - self.buf.len();
        let take = input.len().min(room);
        self.buf.extend_from_slice(&input[..take]);
        let Some(i) = self.buf[start..].windows(4).position(|w| w == b"\r\n\r\n") else {
            if self.buf.len() > MAX_HEAD {
                return Err(HttpError::Malformed("response head too long".into()).into());
            }
            return Ok(&input[take..]);
        };
        let end = start + i + 4;
        let used = end - (self.buf.len() - take);
        self.buf.truncate(end);
        let head = parse_head(&self.buf)?;
        self.buf.clear();
        self.state = self.framing(&head)?;
        on(Event::Head(&head))?;
        self.head = Some(head);
        Ok(&input[used..])
    }

    fn framing(&self, head: &ResponseHead) -> Result<State, HttpError> {
        let no_body =
            self.head_request || head.status / 100 == 1 || head.status == 204 || head.status == 304;
        if no_body {
            return Ok(State::Done);
        }
        if head
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            return Ok(State::Chunked(Chunk::Size));
        }
        if let Some(len) = head.header("content-length") {
            let digits = len.trim();
            let len: u64 = digits
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| digits.parse().ok())
                .flatten()
                .ok_or_else(|| HttpError::Malformed(format!("Content-Length {len:?}")))?;
            if len > self.max_body {
                return Err(HttpError::TooLarge(self.max_body));
            }
            return Ok(if len == 0 {
                State::Done
            } else {
                State::Length(len)
            });
        }
        Ok(State::UntilClose)
    }

    /// Collects one CRLF-terminated line into `buf`; `None` until it is whole.
    fn line<'i>(&mut self, input: &'i [u8]) -> Result<(Option<String>, &'i [u8]), HttpError> {
        match input.iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.buf.extend_from_slice(&input[..=i]);
                if self.buf.len() > MAX_CHUNK_LINE + 2 {
                    return Err(HttpError::Malformed("chunk line too long".into()));
                }
                let line = std::mem::take(&mut self.buf);
                let Some(text) = line.strip_suffix(b"\r\n") else {
                    return Err(HttpError::Malformed("a chunk line without CRLF".into()));
                };
                Ok((
                    Some(String::from_utf8_lossy(text).into_owned()),
                    &input[i + 1..],
                ))
            }
            None => {
                self.buf.extend_from_slice(input);
                if self.buf.len() > MAX_CHUNK_LINE {
                    return Err(HttpError::Malformed("chunk line too long".into()));
                }
                Ok((None, &[]))
            }
        }
    }

    fn push_chunked<'i, E: From<HttpError>>(
        &mut self,
        input: &'i [u8],
        on: &mut dyn FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<&'i [u8], E> {
        let State::Chunked(chunk) = &mut self.state else {
            return Ok(input);
        };
        match chunk {
            Chunk::Data(left) => {
                let n = usize::try_from(*left)
                    .unwrap_or(usize::MAX)
                    .min(input.len());
                *left -= n as u64;
                if *left == 0 {
                    *chunk = Chunk::DataEnd;
                }
                self.deliver(&input[..n], on)?;
                Ok(&input[n..])
            }
            Chunk::Size => {
                let (line, rest) = self.line(input)?;
                let Some(line) = line else { return Ok(rest) };
                let size_text = line.split(';').next().unwrap_or("").trim();
                // from_str_radix takes a leading '+', which HTTP does not.
                let size = size_text
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit())
                    .then(|| u64::from_str_radix(size_text, 16).ok())
                    .flatten()
                    .ok_or_else(|| HttpError::Malformed(format!("chunk size {line:?}")))?;
                let end = self
                    .got
                    .checked_add(size)
                    .ok_or(HttpError::TooLarge(self.max_body))?;
                if end > self.max_body {
                    return Err(HttpError::TooLarge(self.max_body).into());
                }
                self.state = State::Chunked(if size == 0 {
                    Chunk::Trailer
                } else {
                    Chunk::Data(size)
                });
                Ok(rest)
            }
            Chunk::DataEnd => {
                let (line, rest) = self.line(input)?;
                match line {
                    None => Ok(rest),
                    Some(l) if l.is_empty() => {
                        self.state = State::Chunked(Chunk::Size);
                        Ok(rest)
                    }
                    Some(_) => {
                        Err(HttpError::Malformed("missing CRLF after a chunk".into()).into())
                    }
                }
            }
            Chunk::Trailer => {
                let (line, rest) = self.line(input)?;
                if line.is_some_and(|l| l.is_empty()) {
                    self.state = State::Done;
                }
                Ok(rest)
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `response` pushed in pieces of `piece` bytes, then the end of the connection.
    fn parse(response: &[u8], max: u64, piece: usize) -> (Result<u16, HttpError>, Vec<u8>, usize) {
        let mut p = ResponseParser::new("GET", max);
        let mut body = Vec::new();
        let mut heads = 0;
        let mut on = |e: Event<'_>| -> Result<(), HttpError> {
            match e {
                Event::Head(_) => heads += 1,
                Event::Body(d) => body.extend_from_slice(d),
            }
            Ok(())
        };
        let mut result = Ok(());
        for part in response.chunks(piece) {
            match p.push(part, &mut on) {
                Ok(Progress::Complete) => break,
                Ok(Progress::More) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        let result = result
            .and_then(|()| p.end())
            .map(|()| p.head().map_or(0, |h| h.status));
        (result, body, heads)
    }

    fn all_piece_sizes(response: &[u8], max: u64) -> (Result<u16, HttpError>, Vec<u8>) {
        let whole = parse(response, max, response.len().max(1));
        for piece in [1, 2, 3, 7] {
            let (r, b, heads) = parse(response, max, piece);
            // How much of a refused body was seen first depends on the pieces.
            assert_eq!(&r, &whole.0, "piece {piece}");
            if r.is_ok() {
                assert_eq!(&b, &whole.1, "piece {piece}");
            }
            assert!(heads <= 1);
        }
        (whole.0, whole.1)
    }

    #[test]
    fn the_request_is_http_1_0_with_host_and_basic_auth() {
        let headers = vec![("X-Device".to_string(), "42".to_string())];
        let req = Request {
            method: "GET",
            path: "/fw.bin",
            host: "fota.example.com",
            basic_auth: Some(("user", "pa:ss")),
            headers: &headers,
            body: None,
        };
        assert_eq!(
            String::from_utf8(request_bytes(&req).to_vec()).unwrap(),
            "GET /fw.bin HTTP/1.0\r\nHost: fota.example.com\r\nUser-Agent: sealcell TOBY-L2\r\n\
             Authorization: Basic dXNlcjpwYTpzcw==\r\nX-Device: 42\r\n\r\n"
        );
        let post = Request {
            method: "POST",
            path: "/",
            host: "h:8080",
            basic_auth: None,
            headers: &[],
            body: Some((b"a=1", "application/x-www-form-urlencoded")),
        };
        assert_eq!(
            String::from_utf8(request_bytes(&post).to_vec()).unwrap(),
            "POST / HTTP/1.0\r\nHost: h:8080\r\nUser-Agent: sealcell TOBY-L2\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=1"
        );
    }

    #[test]
    fn the_three_framings_in_any_pieces() {
        let (r, body) = all_piece_sizes(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 100);
        assert_eq!((r, body), (Ok(200), b"hello".to_vec()));
        let (r, body) = all_piece_sizes(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nT: 1\r\n\r\n",
            100,
        );
        assert_eq!((r, body), (Ok(200), b"hello world".to_vec()));
        let (r, body) = all_piece_sizes(
            b"HTTP/1.0 200 ok\r\nContent-type: text/plain\r\n\r\nuntil the end",
            100,
        );
        assert_eq!((r, body), (Ok(200), b"until the end".to_vec()));
        let (r, body) =
            all_piece_sizes(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 100);
        assert_eq!((r, body), (Ok(404), Vec::new()));
        // Bytes after a complete response are not body.
        let (r, body) = all_piece_sizes(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiXYZ", 100);
        assert_eq!((r, body), (Ok(200), b"hi".to_vec()));
    }

    #[test]
    fn a_head_response_has_no_body() {
        let mut p = ResponseParser::new("HEAD", 100);
        let mut bodies = 0;
        let progress = p
            .push::<HttpError>(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", &mut |e| {
                if matches!(e, Event::Body(_)) {
                    bodies += 1;
                }
                Ok(())
            })
            .unwrap();
        assert_eq!((progress, bodies), (Progress::Complete, 0));
    }

    #[test]
    fn truncation_caps_and_garbage() {
        let t = |r: &[u8], max| all_piece_sizes(r, max).0;
        assert_eq!(
            t(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", 100),
            Err(HttpError::Truncated {
                got: 5,
                expected: 10
            })
        );
        assert_eq!(
            t(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", 4),
            Err(HttpError::TooLarge(4))
        );
        assert_eq!(
            t(b"HTTP/1.1 200 OK\r\n\r\n0123456789", 4),
            Err(HttpError::TooLarge(4))
        );
        assert_eq!(
            t(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n",
                100
            ),
            Err(HttpError::TooLarge(100))
        );
        assert_eq!(
            t(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
                100
            ),
            Err(HttpError::Truncated {
                got: 3,
                expected: 5
            })
        );
        assert!(matches!(
            t(b"SSH-2.0-OpenSSH\r\n\r\n", 100),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            t(b"HTTP/1.1 200 OK\r\nContent-Le", 100),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            t(b"HTTP/1.1 999 X\r\n\r\n", 100),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            t(b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello", 100),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            t(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n",
                100
            ),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            t(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n",
                100
            ),
            Err(HttpError::Malformed(_))
        ));
    }

    #[test]
    fn an_endless_head_or_chunk_line_is_refused_without_buffering_it() {
        let mut p = ResponseParser::new("GET", 100);
        let junk = vec![b'a'; 1024];
        let mut result = Ok(Progress::More);
        for _ in 0..100 {
            result = p.push::<HttpError>(&junk, &mut |_| Ok(()));
            if result.is_err() {
                break;
            }
        }
        assert_eq!(
            result,
            Err(HttpError::Malformed("response head too long".into()))
        );
        assert!(p.buf.len() <= MAX_HEAD + 4);
        let mut p = ResponseParser::new("GET", 100);
        p.push::<HttpError>(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            &mut |_| Ok(()),
        )
        .unwrap();
        let mut result = Ok(Progress::More);
        for _ in 0..10 {
            result = p.push::<HttpError>(&junk, &mut |_| Ok(()));
            if result.is_err() {
                break;
            }
        }
        assert_eq!(
            result,
            Err(HttpError::Malformed("chunk line too long".into()))
        );
    }
}
