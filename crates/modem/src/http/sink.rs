//! Where a `+UHTTPC` response goes: parsed as it arrives, hashed, streamed into a temporary
//! file of the module file system and committed only when the response is whole.
//!
//! The sink belongs to the job, not to the module: the connector pushes bytes into it off the
//! module lock, so a large download (and its final fsync) never stalls the AT channels.

use md5::{Digest, Md5};

use super::err;
use super::wire::{Event, HttpError, Progress, ResponseParser};
use crate::fs::Upload;
use crate::job::{Abandoned, Flow, NetEnd, NetFailure};

/// The writer asks the disk to start writing back every this many bytes, so the final fsync of
/// a large download has little left to do.
const FLUSH_EVERY: u64 = 16 << 20;

/// How a request ended, for the module to report.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct HttpDone {
    /// The response status (0 when none arrived).
    pub(crate) status: u16,
    /// The body's MD5 (reported by command 100; none on failure).
    pub(crate) md5: Option<[u8; 16]>,
    /// The `+UHTTPER` class and code.
    pub(crate) error: (u8, u16),
}

impl HttpDone {
    /// A request that failed with `error` before any response.
    pub(crate) fn failed(error: (u8, u16)) -> HttpDone {
        HttpDone {
            status: 0,
            md5: None,
            error,
        }
    }
}

/// A response being received.
pub(crate) struct ResponseSink {
    parser: ResponseParser,
    upload: Option<Upload>,
    md5: Md5,
    /// Command 100: only the body is stored, and only a 2xx response counts.
    fota: bool,
    /// The first failure, which ends the exchange.
    error: Option<(u8, u16)>,
    unflushed: u64,
    abandoned: Abandoned,
}

impl std::fmt::Debug for ResponseSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseSink")
            .field("fota", &self.fota)
            .field("body", &self.parser.body_len())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

fn http_error(e: &HttpError) -> (u8, u16) {
    match e {
        HttpError::Truncated { .. } => err::TRUNCATED,
        HttpError::TooLarge(_) => err::TOO_LARGE,
        HttpError::Malformed(_) => err::MALFORMED,
    }
}

fn net_error(f: &NetFailure) -> (u8, u16) {
    match f {
        NetFailure::Dns => err::DNS,
        NetFailure::Connect => err::CONNECT,
        NetFailure::Timeout => err::TIMEOUT,
        NetFailure::Tls(why) => {
            tracing::info!(error = %why, "HTTPS request failed in TLS");
            err::TLS
        }
        // A connection that breaks mid-response leaves it incomplete.
        NetFailure::Io => err::TRUNCATED,
    }
}

impl ResponseSink {
    pub(crate) fn new(
        method: &str,
        max_body: u64,
        upload: Upload,
        fota: bool,
        abandoned: Abandoned,
    ) -> ResponseSink {
        ResponseSink {
            parser: ResponseParser::new(method, max_body),
            upload: Some(upload),
            md5: Md5::new(),
            fota,
            error: None,
            unflushed: 0,
            abandoned,
        }
    }

    pub(crate) fn receive(&mut self, bytes: &[u8]) -> Flow {
        if self.error.is_some() {
            return Flow::Done;
        }
        let (upload, md5, fota, unflushed) = (
            &mut self.upload,
            &mut self.md5,
            self.fota,
            &mut self.unflushed,
        );
        let mut on = |e: Event<'_>| -> Result<(), HttpError> {
            let Some(upload) = upload.as_mut() else {
                return Ok(());
            };
            match e {
                Event::Head(h) if !fota => upload.write(&h.raw),
                Event::Head(_) => {}
                Event::Body(b) => {
                    md5.update(b);
                    upload.write(b);
                    *unflushed += b.len() as u64;
                    if *unflushed >= FLUSH_EVERY {
                        upload.flush_early();
                        *unflushed = 0;
                    }
                }
            }
            Ok(())
        };
        match self.parser.push(bytes, &mut on) {
            Ok(Progress::More) => Flow::More,
            Ok(Progress::Complete) => Flow::Done,
            Err(e) => {
                tracing::debug!(error = %e, "HTTP response refused");
                self.error = Some(http_error(&e));
                Flow::Done
            }
        }
    }

    pub(crate) fn finish(mut self, end: NetEnd) -> HttpDone {
        let status = self.parser.head().map_or(0, |h| h.status);
        let error = match (self.error, &end) {
            (Some(e), _) => Some(e),
            // A connection that failed (reset, timed out) never completes a response, not even
            // one framed by the end of the connection: only a clean close does.
            (None, NetEnd::Failed(f)) => Some(net_error(f)),
            (None, NetEnd::Closed) => self.parser.end().err().map(|e| http_error(&e)),
            // Without close_notify the end of a TLS connection proves nothing.
            (None, NetEnd::ClosedWithoutNotify) if self.parser.ends_with_the_connection() => {
                Some(err::TRUNCATED)
            }
            (None, NetEnd::ClosedWithoutNotify) => self.parser.end().err().map(|e| http_error(&e)),
        };
        let error = error
            .or_else(|| (self.fota && !(200..300).contains(&status)).then_some(err::HTTP_STATUS));
        let fail = |error| HttpDone {
            status,
            md5: None,
            error,
        };
        if let Some(error) = error {
            // Dropping the upload discards the partial file; the old one stays.
            return fail(error);
        }
        if !self.abandoned.begin_commit() {
            return fail(err::TIMEOUT);
        }
        let Some(upload) = self.upload.take() else {
            return fail(err::STORAGE);
        };
        match upload.commit() {
            Ok(()) => HttpDone {
                status,
                md5: Some(std::mem::take(&mut self.md5).finalize().into()),
                error: err::NONE,
            },
            Err(e) => {
                tracing::error!(error = %e, "storing the HTTP response failed");
                fail(err::STORAGE)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::fs::{FileSystem, Tag};

    fn sink(fs: &FileSystem) -> ResponseSink {
        let upload = fs.begin_replace(Tag::User, "r").unwrap();
        ResponseSink::new("GET", 1 << 20, upload, false, Abandoned::default())
    }

    /// A TLS end without close_notify cannot end a body framed by the connection's end; a body
    /// framed by its length is whole all the same.
    #[test]
    fn an_end_without_close_notify_completes_only_a_framed_body() {
        let storage: Arc<dyn sealcell_store::Storage> = Arc::new(sealcell_store::SimStorage::new());
        let fs = FileSystem::open(storage, Path::new("fs"), 1 << 20).unwrap();

        let mut s = sink(&fs);
        s.receive(b"HTTP/1.0 200 OK\r\n\r\nall of it?");
        assert_eq!(s.finish(NetEnd::ClosedWithoutNotify).error, err::TRUNCATED);
        let mut s = sink(&fs);
        s.receive(b"HTTP/1.0 200 OK\r\n\r\nall of it");
        assert_eq!(s.finish(NetEnd::Closed).error, err::NONE);

        let mut s = sink(&fs);
        assert_eq!(
            s.receive(b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nwhole"),
            Flow::Done
        );
        assert_eq!(s.finish(NetEnd::ClosedWithoutNotify).error, err::NONE);
        let mut s = sink(&fs);
        s.receive(b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\ncut");
        assert_eq!(s.finish(NetEnd::ClosedWithoutNotify).error, err::TRUNCATED);
    }
}
