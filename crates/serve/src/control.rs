//! The test bench's control socket (cli.md, "A test bench"): one JSON object a line in, one
//! JSON answer a line out, on loopback only.
//!
//! ```text
//! > {"fault":"detach"}
//! < {"ok":true,"done":"detached","armed":[],"fired":["detached"],"timing":"fast"}
//! > {"fault":"signal","args":[-110]}
//! < {"ok":true,"done":"signal -110","armed":[],"fired":["detached","signal -110"],"timing":"fast"}
//! > {"fault":"melt"}
//! < {"ok":false,"error":"no fault is called \"melt\""}
//! ```
//!
//! A fault is [`sealcell_modem::faults::Fault`], parsed by its `parse` from the name and the
//! arguments (strings or numbers), and injected under the module lock through the edge, so the
//! work it queues (a cancelled request, closed sockets) reaches the network at once.

use std::io;
use std::net::SocketAddr;

use sealcell_modem::faults::{Fault, FaultError};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{Edge, session};

/// The longest request line.
///
/// # Security
/// A client that never ends its line costs this much, not more.
pub const MAX_REQUEST: usize = 4096;

/// Binds `addr` (a loopback address: the bench can power-cut the module, so it is not for the
/// network) and serves the control socket until `stop`; returns the bound address and the
/// task.
pub(crate) fn spawn(
    edge: &Edge,
    addr: &str,
    stop: watch::Receiver<bool>,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let (local, listener) = crate::tcp::bind(edge, addr)?;
    if !local.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the control socket listens on loopback only, not {local}"),
        ));
    }
    tracing::info!(%local, "control socket listening");
    let edge = edge.clone();
    let task = edge.handle().clone().spawn(async move {
        let serve = {
            let (edge, stop) = (edge.clone(), stop.clone());
            move |stream: TcpStream, _peer| {
                let (edge, stop) = (edge.clone(), stop.clone());
                async move { serve(&edge, stream, stop).await }
            }
        };
        crate::tcp::accept_each(listener, stop, serve).await;
    });
    Ok((local, task))
}

async fn serve(edge: &Edge, stream: TcpStream, mut stop: watch::Receiver<bool>) {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = tokio::select! {
            () = session::stopped(&mut stop) => return,
            read = read_line(&mut reader, &mut line) => read,
        };
        let answer = match read {
            Ok(Line::End) => return,
            Ok(Line::TooLong) => refusal(&format!("a request is at most {MAX_REQUEST} bytes")),
            Ok(Line::Text) => answer(edge, &line),
            Err(e) => {
                tracing::debug!(error = %e, "control client read failed");
                return;
            }
        };
        if writer.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

enum Line {
    Text,
    TooLong,
    End,
}

/// Reads one line (without its end) into `line`, at most [`MAX_REQUEST`] bytes of it; the
/// rest of a longer one is read and dropped.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> io::Result<Line> {
    let mut too_long = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(if line.is_empty() && !too_long {
                Line::End
            } else if too_long {
                Line::TooLong
            } else {
                Line::Text
            });
        }
        let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if !too_long {
            if line.len() + chunk.len() > MAX_REQUEST {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = done.unwrap_or(buf.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(if too_long { Line::TooLong } else { Line::Text });
        }
    }
}

/// The answer to one request line.
fn answer(edge: &Edge, line: &[u8]) -> String {
    let request: serde_json::Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => return refusal(&format!("not a JSON object: {e}")),
    };
    let Some(name) = request.get("fault").and_then(|f| f.as_str()) else {
        return refusal("a request is {\"fault\": NAME, \"args\": [...]}");
    };
    let args: Vec<String> = match request.get("args") {
        None => Vec::new(),
        Some(serde_json::Value::Array(items)) => {
            let mut args = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    serde_json::Value::String(s) => args.push(s.clone()),
                    serde_json::Value::Number(n) => args.push(n.to_string()),
                    _ => return refusal("each argument is a string or a number"),
                }
            }
            args
        }
        Some(_) => return refusal("\"args\" is a list"),
    };
    let fault = match Fault::parse(name, &args) {
        Ok(f) => f,
        Err(e) => return refusal(&e.to_string()),
    };
    type Answer = (String, Vec<String>, Vec<String>, Option<u64>, &'static str);
    let injected: Result<Answer, FaultError> = edge.with_module(|m| {
        // The fault happens now: a reboot's boot window and a registration start from here.
        m.observe(crate::system_now());
        let done = m.inject(fault)?;
        let timing = m.config().timing.name();
        Ok((done, m.armed_faults(), m.faults().fired(), m.seed(), timing))
    });
    match injected {
        Ok((done, armed, fired, seed, timing)) => {
            let mut answer = serde_json::json!({
                "ok": true,
                "done": done,
                "armed": armed,
                "fired": fired,
                "timing": timing,
            });
            if let Some(seed) = seed {
                answer["seed"] = seed.into();
            }
            let mut text = answer.to_string();
            text.push('\n');
            text
        }
        Err(e) => refusal(&e.to_string()),
    }
}

fn refusal(why: &str) -> String {
    let mut text = serde_json::json!({ "ok": false, "error": why }).to_string();
    text.push('\n');
    text
}
