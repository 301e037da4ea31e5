//! One net job: the HTTP(S) exchange the engine described, over a real socket.
//!
//! Resolve the host (every address in turn), connect, run the TLS handshake when the profile
//! asks for it (`sealcell_https::tls::ssl` driven by `tokio-openssl`, the pin checked after),
//! send the request, and push every byte of the response into the job until it says it has
//! enough or the server closes. The engine owns the deadline and cancels the job when it
//! passes; the task is also bounded by it, so it ends even if no channel polls the engine.

use std::pin::Pin;

use sealcell_https::TlsProfile;
use sealcell_https::tls::{check_pin, handshake_error, is_unexpected_eof, ssl};
use sealcell_modem::job::{Flow, JobDone, JobId, NetEnd, NetFailure, NetJob, TlsSettings};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

/// How much of a response is read at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Runs `job` to its end and returns what to report; `None` if it could not be finished (the
/// blocking pool failed).
pub(crate) async fn run(id: JobId, mut job: NetJob, edge: crate::Edge) -> Option<JobDone> {
    let deadline = tokio::time::Instant::from_std(job.deadline);
    let end = match tokio::time::timeout_at(deadline, exchange(&mut job, &edge)).await {
        Ok(end) => end,
        Err(_) => NetEnd::Failed(NetFailure::Timeout),
    };
    tracing::debug!(job = id.0, ?end, "net job ended");
    // Storing the response may fsync: off the runtime's workers.
    match tokio::task::spawn_blocking(move || job.finish(end)).await {
        Ok(done) => Some(done),
        Err(e) => {
            tracing::error!(job = id.0, error = %e, "storing an HTTP response failed to run");
            None
        }
    }
}

async fn exchange(job: &mut NetJob, edge: &crate::Edge) -> NetEnd {
    // The test bench's latency, before the lookup and the connect.
    edge.latency().await;
    let host = job.target.host.clone();
    let port = job.target.port;
    let Ok(addrs) = crate::socket::resolve(&host, port).await else {
        return NetEnd::Failed(NetFailure::Dns);
    };
    let mut tcp = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                tcp = Some(stream);
                break;
            }
            Err(e) => tracing::debug!(%addr, error = %e, "connect failed; trying the next address"),
        }
    }
    let Some(tcp) = tcp else {
        return NetEnd::Failed(NetFailure::Connect);
    };
    // Small requests go out at once.
    let _ = tcp.set_nodelay(true);
    let Some(settings) = job.target.tls.as_ref() else {
        return transfer(tcp, job, edge).await;
    };
    let tls = match handshake(settings, &host, tcp).await {
        Ok(tls) => tls,
        Err(why) => return NetEnd::Failed(NetFailure::Tls(why)),
    };
    transfer(tls, job, edge).await
}

/// The TLS handshake as the profile says, and the pin check (HTTP jobs and `+USOSEC`
/// sockets alike).
pub(crate) async fn handshake(
    settings: &TlsSettings,
    host: &str,
    tcp: TcpStream,
) -> Result<SslStream<TcpStream>, String> {
    let profile = profile(settings);
    let ssl = ssl(&profile, host).map_err(|e| e.to_string())?;
    let mut tls = SslStream::new(ssl, tcp).map_err(|e| e.to_string())?;
    if let Err(e) = Pin::new(&mut tls).connect().await {
        return Err(handshake_error(tls.ssl(), &e).to_string());
    }
    check_pin(&profile, tls.ssl()).map_err(|e| e.to_string())?;
    Ok(tls)
}

/// The connection settings of a `+USECPRF` profile, as `sealcell-https` takes them.
fn profile(s: &TlsSettings) -> TlsProfile<'_> {
    TlsProfile {
        validation: s.validation,
        min_tls: s.min_tls,
        cipher: s.cipher,
        root_der: s.root.as_deref().map(Vec::as_slice),
        hostname: &s.hostname,
        sni: &s.sni,
        client_cert_der: s.client_cert.as_deref().map(Vec::as_slice),
        client_key_der: s.client_key.as_deref().map(Vec::as_slice),
        pin: s.pin.as_ref().map(|(der, level)| (der.as_slice(), *level)),
        now_unix: Some(s.now_unix),
    }
}

/// Sends the request and feeds the response to the job.
async fn transfer<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    job: &mut NetJob,
    edge: &crate::Edge,
) -> NetEnd {
    if let Err(e) = write_request(&mut stream, &job.request).await {
        tracing::debug!(error = %e, "sending the request failed");
        return NetEnd::Failed(NetFailure::Io);
    }
    // A request (a `+UHTTPC` POST of a file) goes out at the uplink's rate.
    edge.pace_up(&mut crate::pace::Schedule::default(), job.request.len())
        .await;
    let mut buf = vec![0u8; READ_CHUNK];
    let mut downlink = crate::pace::Schedule::default();
    loop {
        let want = edge.shaping().chunk(buf.len());
        match stream.read(&mut buf[..want]).await {
            Ok(0) => return NetEnd::Closed,
            Ok(n) => {
                // The bytes take the time they would at the network's rate.
                edge.pace(&mut downlink, n).await;
                // The job writes to the module file system: page-cache writes, short enough
                // for a worker thread; its fsync waits for `finish` on the blocking pool.
                if job.receive(&buf[..n]) == Flow::Done {
                    return NetEnd::Closed;
                }
            }
            Err(e) if is_unexpected_eof(&e) => return NetEnd::ClosedWithoutNotify,
            Err(e) => {
                tracing::debug!(error = %e, "reading the response failed");
                return NetEnd::Failed(NetFailure::Io);
            }
        }
    }
}

async fn write_request<S: AsyncWrite + Unpin>(
    stream: &mut S,
    request: &[u8],
) -> std::io::Result<()> {
    stream.write_all(request).await?;
    stream.flush().await
}
