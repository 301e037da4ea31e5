//! The module's HTTP(S) client state (at-contract §5): `+UHTTP` profiles 0..3 (volatile, as on
//! the real module), the last error of each (`+UHTTPER`), and the requests in flight.
//!
//! A request runs on its own thread (network I/O never blocks the AT engine): it connects,
//! speaks TLS when the profile asks (through `sealcell-https`, with credentials taken from the
//! store beforehand, decrypted in memory only), streams the response into a temporary file of
//! the module file system and commits it only when the response arrived whole. A channel's poll
//! collects finished requests: the error is recorded and the URC queued for the channel that
//! asked.

use std::net::{TcpStream, ToSocketAddrs};
use std::thread::JoinHandle;
use std::time::Duration;

use md5::{Digest, Md5};
use sealcell_https::http::{HttpError, Request, exchange_with_head};
use sealcell_https::{TlsError, TlsProfile};
use zeroize::Zeroizing;

use crate::fs::Upload;
use crate::module::{ChannelId, Module};

/// Number of HTTP profiles (**0..3**).
pub const HTTP_PROFILES: usize = 4;

/// One `+UHTTP` profile. `Debug` leaves the password out.
#[derive(Clone)]
pub struct HttpProfile {
    /// op 0.
    pub server_ip: String,
    /// op 1.
    pub server_name: String,
    /// op 2.
    pub user: String,
    /// op 3 (memory only, write-only).
    pub password: Zeroizing<String>,
    /// op 4: 0 none, 1 basic.
    pub auth: u8,
    /// op 5 (None: 80, or 443 with TLS).
    pub port: Option<u16>,
    /// op 6: TLS on, and with which `+USECPRF` profile.
    pub secure: bool,
    /// op 6, second value.
    pub security_profile: u8,
    /// op 7: request timeout in seconds.
    pub timeout: u32,
    /// op 9: custom headers 0..4.
    pub headers: [Option<(String, String)>; 5],
}

impl std::fmt::Debug for HttpProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpProfile")
            .field("server_ip", &self.server_ip)
            .field("server_name", &self.server_name)
            .field("user", &self.user)
            .field("password_set", &!self.password.is_empty())
            .field("auth", &self.auth)
            .field("port", &self.port)
            .field("secure", &self.secure)
            .field("security_profile", &self.security_profile)
            .field("timeout", &self.timeout)
            .field("headers", &self.headers)
            .finish()
    }
}

impl Default for HttpProfile {
    fn default() -> Self {
        HttpProfile {
            server_ip: String::new(),
            server_name: String::new(),
            user: String::new(),
            password: Zeroizing::new(String::new()),
            auth: 0,
            port: None,
            secure: false,
            security_profile: 0,
            timeout: 180,
            headers: Default::default(),
        }
    }
}

/// `+UHTTPER` classes and codes (documented in docs/uhttper.md).
pub mod err {
    /// No error.
    pub const NONE: (u8, u16) = (0, 0);
    /// The server name did not resolve.
    pub const DNS: (u8, u16) = (3, 10);
    /// The connection could not be made.
    pub const CONNECT: (u8, u16) = (3, 11);
    /// No answer within the profile's timeout.
    pub const TIMEOUT: (u8, u16) = (3, 12);
    /// The connection ended before the response was complete.
    pub const TRUNCATED: (u8, u16) = (3, 13);
    /// The response is not HTTP.
    pub const MALFORMED: (u8, u16) = (3, 14);
    /// The response is larger than the free space.
    pub const TOO_LARGE: (u8, u16) = (3, 15);
    /// Command 100: the server answered with a status other than 2xx.
    pub const HTTP_STATUS: (u8, u16) = (3, 16);
    /// Any TLS failure: handshake, suite, version, trust, hostname, dates, pinning.
    pub const TLS: (u8, u16) = (3, 73);
    /// No server name or address in the profile.
    pub const NO_SERVER: (u8, u16) = (10, 1);
    /// The file to send does not exist.
    pub const NO_FILE: (u8, u16) = (10, 2);
    /// The response could not be stored.
    pub const STORAGE: (u8, u16) = (10, 3);
}

/// Owned TLS settings for a request thread.
#[derive(Default)]
pub(crate) struct OwnedTls {
    pub(crate) validation: u8,
    pub(crate) min_tls: u8,
    pub(crate) cipher: Option<u16>,
    pub(crate) hostname: String,
    pub(crate) sni: String,
    pub(crate) root: Option<Zeroizing<Vec<u8>>>,
    pub(crate) client_cert: Option<Zeroizing<Vec<u8>>>,
    pub(crate) client_key: Option<Zeroizing<Vec<u8>>>,
    pub(crate) pin: Option<(Zeroizing<Vec<u8>>, u8)>,
}

/// Everything a request thread needs.
pub(crate) struct Spec {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: Option<OwnedTls>,
    pub(crate) method: &'static str,
    pub(crate) path: String,
    pub(crate) host_header: String,
    pub(crate) basic: Option<(String, Zeroizing<String>)>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Option<(Vec<u8>, String)>,
    pub(crate) timeout: Duration,
    pub(crate) max: u64,
    /// Command 100: only the body is stored, and only a 2xx response counts.
    pub(crate) fota: bool,
    pub(crate) upload: Upload,
}

/// What a request thread hands back.
pub(crate) struct Done {
    pub(crate) status: u16,
    pub(crate) md5: String,
    pub(crate) error: (u8, u16),
}

/// A request in flight.
pub(crate) struct Job {
    pub(crate) channel: ChannelId,
    pub(crate) profile: usize,
    pub(crate) cmd: u8,
    pub(crate) handle: JoinHandle<Done>,
}

/// The HTTP state of the module (volatile).
#[derive(Default)]
pub struct HttpState {
    pub(crate) profiles: [HttpProfile; HTTP_PROFILES],
    pub(crate) errors: [(u8, u16); HTTP_PROFILES],
    pub(crate) jobs: Vec<Job>,
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState")
            .field("jobs", &self.jobs.len())
            .finish_non_exhaustive()
    }
}

fn http_error(e: &HttpError) -> (u8, u16) {
    match e {
        HttpError::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) =>
        {
            err::TIMEOUT
        }
        HttpError::Io(_) => err::TRUNCATED,
        HttpError::Truncated { .. } => err::TRUNCATED,
        HttpError::TooLarge(_) => err::TOO_LARGE,
        _ => err::MALFORMED,
    }
}

/// What the network side hands the writer.
enum Piece {
    /// The response head (stored by commands 0..5, not hashed).
    Head(Vec<u8>),
    /// Body bytes (hashed and stored).
    Body(Vec<u8>),
}

/// Decrypted chunks queued between the network and the writer (TLS records are at most 16 KiB,
/// so this bounds the buffer at about 1 MiB).
const PIPELINE: usize = 64;

/// The writer asks the disk to start writing back every this many bytes, so the final fsync of a
/// large download has little left to do.
const FLUSH_EVERY: u64 = 16 << 20;

/// Stores the pieces as they come, on its own thread, while another thread hashes the body: MD5,
/// the file system and TLS decryption each get a core.
fn write_pieces(mut upload: Upload, pieces: std::sync::mpsc::Receiver<Piece>) -> (Upload, String) {
    let (to_hasher, hasher_rx) = std::sync::mpsc::sync_channel::<std::sync::Arc<Vec<u8>>>(PIPELINE);
    let hasher = std::thread::Builder::new()
        .name("uhttpc-md5".into())
        .spawn(move || {
            let mut md5 = Md5::new();
            for chunk in hasher_rx {
                md5.update(chunk.as_slice());
            }
            hex::encode(md5.finalize())
        });
    let mut to_hasher = match hasher {
        Ok(_) => Some(to_hasher),
        Err(_) => None,
    };
    let mut unflushed = 0u64;
    for piece in pieces {
        match piece {
            Piece::Head(h) => upload.write(&h),
            Piece::Body(b) => {
                let b = std::sync::Arc::new(b);
                if let Some(tx) = to_hasher.as_ref()
                    && tx.send(b.clone()).is_err()
                {
                    to_hasher = None;
                }
                upload.write(&b);
                unflushed += b.len() as u64;
                if unflushed >= FLUSH_EVERY {
                    upload.flush_early();
                    unflushed = 0;
                }
            }
        }
    }
    drop(to_hasher);
    let md5 = match hasher.map(|h| h.join()) {
        Ok(Ok(md5)) => md5,
        // Without a hash the download cannot be reported: fail the upload.
        _ => {
            upload.fail(std::io::Error::other("the MD5 thread failed"));
            String::new()
        }
    };
    (upload, md5)
}

/// Runs one request (on its own thread).
pub(crate) fn run(spec: Spec) -> Done {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Piece>(PIPELINE);
    let upload = spec.upload;
    let writer = match std::thread::Builder::new()
        .name("uhttpc-writer".into())
        .spawn(move || write_pieces(upload, rx))
    {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the HTTP writer thread");
            return Done {
                status: 0,
                md5: String::new(),
                error: err::STORAGE,
            };
        }
    };
    let mut status = 0;
    let result = (|| -> Result<(), (u8, u16)> {
        let addrs: Vec<_> = (spec.host.as_str(), spec.port)
            .to_socket_addrs()
            .map_err(|_| err::DNS)?
            .collect();
        if addrs.is_empty() {
            return Err(err::DNS);
        }
        // Every address in turn, as a resolver-aware client does (`localhost` is often ::1
        // first, and a server may listen on 127.0.0.1 only); the last failure is reported.
        let mut failure = err::CONNECT;
        let mut connected = None;
        for addr in &addrs {
            match TcpStream::connect_timeout(addr, spec.timeout) {
                Ok(tcp) => {
                    connected = Some(tcp);
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => failure = err::TIMEOUT,
                Err(_) => failure = err::CONNECT,
            }
        }
        let tcp = connected.ok_or(failure)?;
        let _ = tcp.set_read_timeout(Some(spec.timeout));
        let _ = tcp.set_write_timeout(Some(spec.timeout));
        let req = Request {
            method: spec.method,
            path: &spec.path,
            host: &spec.host_header,
            basic_auth: spec.basic.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
            headers: &spec.headers,
            body: spec.body.as_ref().map(|(b, t)| (b.as_slice(), t.as_str())),
        };
        let fota = spec.fota;
        let stopped = |_| std::io::Error::other("the HTTP writer stopped");
        // The status is known (and reported) even when the body then fails.
        let status_seen = std::cell::Cell::new(0u16);
        let mut on_head = |h: &sealcell_https::http::ResponseHead| {
            status_seen.set(h.status);
            if fota {
                return Ok(());
            }
            tx.send(Piece::Head(h.raw.clone())).map_err(stopped)
        };
        let mut sink = |d: &[u8]| tx.send(Piece::Body(d.to_vec())).map_err(stopped);
        let head = match &spec.tls {
            Some(t) => {
                let profile = TlsProfile {
                    validation: t.validation,
                    min_tls: t.min_tls,
                    cipher: t.cipher,
                    root_der: t.root.as_deref().map(|v| v.as_slice()),
                    hostname: &t.hostname,
                    sni: &t.sni,
                    client_cert_der: t.client_cert.as_deref().map(|v| v.as_slice()),
                    client_key_der: t.client_key.as_deref().map(|v| v.as_slice()),
                    pin: t.pin.as_ref().map(|(d, l)| (d.as_slice(), *l)),
                };
                let mut tls =
                    sealcell_https::connect(&profile, &spec.host, tcp).map_err(|e: TlsError| {
                        tracing::info!(error = %e, "HTTPS request failed in TLS");
                        err::TLS
                    })?;
                exchange_with_head(&mut tls, &req, spec.max, &mut on_head, &mut sink)
            }
            None => {
                let mut tcp = tcp;
                exchange_with_head(&mut tcp, &req, spec.max, &mut on_head, &mut sink)
            }
        };
        status = status_seen.get();
        let head = head.map_err(|e| http_error(&e))?;
        if fota && !(200..300).contains(&head.status) {
            return Err(err::HTTP_STATUS);
        }
        Ok(())
    })();
    drop(tx);
    // The commit (the final fsync and the rename) happens here, not on the AT engine's thread,
    // so a large download never stalls the channels.
    let (md5, error) = match (writer.join(), result) {
        (Ok((upload, md5)), Ok(())) => match upload.commit() {
            Ok(()) => (md5, err::NONE),
            Err(e) => {
                tracing::error!(error = %e, "storing the HTTP response failed");
                (String::new(), err::STORAGE)
            }
        },
        // Dropping the upload discards the partial file; the old one stays.
        (Ok(_), Err(e)) => (String::new(), e),
        (Err(_), _) => (String::new(), err::STORAGE),
    };
    Done { status, md5, error }
}

impl Module {
    /// Collects finished HTTP requests: records their errors and queues their URCs. Called from
    /// every channel's poll.
    pub fn collect_http_jobs(&mut self) {
        let mut i = 0;
        while i < self.http.jobs.len() {
            if !self.http.jobs[i].handle.is_finished() {
                i += 1;
                continue;
            }
            let job = self.http.jobs.remove(i);
            // A request thread that panicked still answers its channel (its file was dropped).
            let done = job.handle.join().unwrap_or_else(|_| {
                tracing::error!("an HTTP request thread panicked");
                Done {
                    status: 0,
                    md5: String::new(),
                    error: err::STORAGE,
                }
            });
            let error = done.error;
            self.http.errors[job.profile] = error;
            let ok = u8::from(error == err::NONE);
            let urc = if job.cmd == 100 {
                let md5 = done.md5.as_str();
                format!(
                    "+UUHTTPCR: {},100,{ok},{},\"{md5}\"",
                    job.profile, done.status
                )
            } else {
                format!("+UUHTTPCR: {},{},{ok}", job.profile, job.cmd)
            };
            self.post_urc(job.channel, urc.into_bytes());
        }
    }
}
