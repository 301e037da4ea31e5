//! A small HTTPS file server on loopback, with the PKI it needs, for `sealcell demo` and tests:
//! the "firmware server" of the application note §4.1 on this machine, with no set-up.
//!
//! - [`LoopbackPki::generate`]: a root CA and a server certificate for one host name (EC P-256,
//!   so the application note's ECDHE-ECDSA suites negotiate), as PEM.
//! - [`FileServer::start`]: serves fixed files by path over TLS 1.2 with exactly one cipher
//!   suite (OpenSSL name), `GET` and `HEAD`, `Connection: close`, 404 for anything else.
//!
//! It binds `127.0.0.1` only and is not meant to face a network.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslMethod, SslVersion};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};

/// **Security:** the longest request head the server reads.
const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// A root CA and a server certificate it signed.
pub struct LoopbackPki {
    /// The root CA certificate (PEM).
    pub root_pem: String,
    /// The server certificate (PEM), with the host name as CN and subjectAltName.
    pub server_pem: String,
    server_key: PKey<Private>,
    server_cert: X509,
}

impl LoopbackPki {
    /// Makes a fresh PKI for `hostname`, valid from an hour ago for `days` days.
    pub fn generate(hostname: &str, days: u32) -> Result<LoopbackPki, ErrorStack> {
        let root_key = ec_key()?;
        let root = certificate("sealcell demo root CA", &root_key, None, days, None)?;
        let server_key = ec_key()?;
        let server = certificate(
            hostname,
            &server_key,
            Some((&root, &root_key)),
            days,
            Some(hostname),
        )?;
        Ok(LoopbackPki {
            root_pem: String::from_utf8_lossy(&root.to_pem()?).into_owned(),
            server_pem: String::from_utf8_lossy(&server.to_pem()?).into_owned(),
            server_key,
            server_cert: server,
        })
    }
}

fn ec_key() -> Result<PKey<Private>, ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    PKey::from_ec_key(EcKey::generate(&group)?)
}

fn certificate(
    cn: &str,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    days: u32,
    dns: Option<&str>,
) -> Result<X509, ErrorStack> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", cn)?;
    let name = name.build();
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_pubkey(key)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let not_before = Asn1Time::from_unix(now - 3600)?;
    let not_after = Asn1Time::from_unix(now + i64::from(days) * 86_400)?;
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    match issuer {
        None => {
            b.set_issuer_name(&name)?;
            b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()?,
            )?;
            b.sign(key, MessageDigest::sha256())?;
        }
        Some((ca, ca_key)) => {
            b.set_issuer_name(ca.subject_name())?;
            if let Some(dns) = dns {
                let san = SubjectAlternativeName::new()
                    .dns(dns)
                    .build(&b.x509v3_context(Some(ca), None))?;
                b.append_extension(san)?;
            }
            b.sign(ca_key, MessageDigest::sha256())?;
        }
    }
    Ok(b.build())
}

/// A running file server; stops when dropped.
pub struct FileServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FileServer {
    /// Serves `files` (path -> content) on `127.0.0.1:<ephemeral>` with the PKI's server
    /// certificate, TLS 1.2 only, offering only `cipher` (an OpenSSL suite name such as
    /// `ECDHE-ECDSA-AES128-GCM-SHA256`).
    pub fn start(
        pki: &LoopbackPki,
        cipher: &str,
        files: HashMap<String, Arc<Vec<u8>>>,
    ) -> io::Result<FileServer> {
        let acceptor = acceptor(pki, cipher).map_err(io::Error::other)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            let files = Arc::new(files);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((tcp, _)) => {
                            let (acceptor, files) = (acceptor.clone(), Arc::clone(&files));
                            std::thread::spawn(move || {
                                let _ = serve_one(&acceptor, tcp, &files);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        Ok(FileServer {
            port,
            stop,
            thread: Some(thread),
        })
    }

    /// The TCP port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn acceptor(pki: &LoopbackPki, cipher: &str) -> Result<SslAcceptor, ErrorStack> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    b.set_max_proto_version(Some(SslVersion::TLS1_2))?;
    b.set_cipher_list(cipher)?;
    b.set_private_key(&pki.server_key)?;
    b.set_certificate(&pki.server_cert)?;
    b.check_private_key()?;
    Ok(b.build())
}

fn serve_one(
    acceptor: &SslAcceptor,
    tcp: TcpStream,
    files: &HashMap<String, Arc<Vec<u8>>>,
) -> io::Result<()> {
    tcp.set_nonblocking(false)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = acceptor.accept(tcp).map_err(io::Error::other)?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf)?;
        if n == 0 || head.len() > MAX_REQUEST_HEAD {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    match (method, files.get(path)) {
        ("GET" | "HEAD", Some(body)) => {
            write!(
                tls,
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            if method == "GET" {
                tls.write_all(body)?;
            }
        }
        _ => tls.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?,
    }
    tls.flush()?;
    let _ = tls.shutdown();
    Ok(())
}
