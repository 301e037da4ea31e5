//! Golden AT transcripts: exact bytes, run by one loop.
//!
//! ```text
//! # A comment.
//! @ option fs-capacity 1000      (before any I/O: model, imei, fs-capacity, payload-timeout)
//! > AT+CGMI\r                    bytes the host sends (escaped, see crate::escape)
//! < AT+CGMI\r\r\n                bytes the module answers; consecutive `<` lines concatenate
//! < u-blox\r\n
//! < \r\n
//! < OK\r\n
//! @ wait 21                      advance the virtual clock by 21 s and poll the channel
//! @ restart                      stop the process and start it again on the same directory
//! @ channel 1                    switch to channel 1 (made on first use); channel 0 is the first
//! ```
//!
//! In expected output `{IMEI}`, `{IMSI}`, `{ICCID}`, `{IPADDR}` (the PDP context address),
//! `{EF_ICCID}` and `{EF_IMSI}` (those SIM files in hex) stand for the module's identity.
//! `@ send-file NAME` sends a file of `tests/fixtures/pki/` as host input (a payload), and in
//! both directions `{SIZE:NAME}`, `{MD5:NAME}`, `{CN:NAME}` and `{NOTAFTER:NAME}` stand for that
//! fixture's size and the facts openssl computed for it (`facts.txt`); `{FILE:NAME}` stands
//! for a (text) fixture's content. Names are relative to `tests/fixtures/pki/`
//! (`../fw/...` reaches the firmware fixtures).
//!
//! Requests made with `+UHTTPC` reach scripted servers on the virtual clock
//! ([`crate::net::ScriptedNet`]); a server must be scripted before the request:
//!
//! ```text
//! @ serve 192.0.2.10:80 at 100 HTTP/1.0 200 OK\r\n\r\nhi   bytes sent 100 ms after connecting
//! @ trickle 192.0.2.10:81 1000 HTTP/1.0 200 OK\r\n          one byte a second
//! @ serve-end 192.0.2.10:80 close                            then close (default), hang or reset
//! @ connections 0                                            assert the open connections
//! ```
//!
//! The module's sockets (`+USOCO`, `+USOST`) reach the same scripted servers, which may also
//! echo what they are sent; names resolve only as scripted ([`crate::net::sockets`]):
//!
//! ```text
//! @ echo 192.0.2.20:7                 the server sends back what it is sent (and stays open)
//! @ dns echo.example 192.0.2.20       +UDNSRN and +USOCO resolve the name (and the address back)
//! @ dial 8000                         a scripted client connects to the listening socket
//! @ blackhole 192.0.2.40:80           connects to it are never answered (the timeout decides)
//! @ sockets 1                         assert the sockets the network holds for the module
//! ```
//!
//! The test bench's faults ([`sealcell_modem::faults`]) are injected as the control socket
//! injects them, and what the current channel says after is expected as usual:
//!
//! ```text
//! @ fault detach                      the network goes away
//! @ fault urc +CIEV: 2,0              every channel gets this URC
//! ```
//!
//! After `AT+CMUX` the link speaks 27.010 frames (at-contract §10). Frames may be written as
//! raw bytes (`> \xf9\x03...`) or decoded, one frame a line, with the C/R and P/F bits each
//! end sets (SABM and DISC with P, UA and DM with F, UIH with neither):
//!
//! ```text
//! >| SABM 1                      the host opens DLCI 1
//! <| UA 1                        the module's acknowledgement
//! >| UIH 1 AT\r                  data on DLCI 1 (escaped like `>` lines)
//! <| UIH 1 \r\nOK\r\n            the module's data frame; consecutive `<`/`<|` lines concatenate
//! ```
//!
//! Each step's output must equal the `<` lines that follow it, byte for byte. Setting
//! `SEALCELL_BLESS=1` rewrites the `<` lines from what the module said (review the diff!).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use sealcell_modem::{Link, Module, ModuleConfig, Now};

use crate::escape::{escape, unescape};
use crate::net::{Script, ScriptEnd};
use crate::{Network, advance, settle, test_config};

/// One line of a transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// `> ...`: the host sends these bytes.
    Send(Vec<u8>),
    /// `< ...`: the module answers these bytes.
    Expect(Vec<u8>),
    /// `>| <kind> <dlci> [info]`: the host sends one 27.010 frame (the text, its bytes).
    SendFrame(String, Vec<u8>),
    /// `<| <kind> <dlci> [info]`: the module answers one 27.010 frame.
    ExpectFrame(String, Vec<u8>),
    /// `@ wait <seconds>`.
    Wait(Duration),
    /// `@ restart`.
    Restart,
    /// `@ channel <n>`.
    Channel(u32),
    /// `@ option <name> <value>`.
    Option(String, String),
    /// `@ send-file <fixture>`.
    SendFile(String),
    /// `@ serve <host:port> at <ms> <bytes>`: the server sends `bytes` `ms` after connecting.
    Serve(String, u64, Vec<u8>),
    /// `@ trickle <host:port> <ms> <bytes>`: the server sends `bytes` a byte every `ms`.
    Trickle(String, u64, Vec<u8>),
    /// `@ serve-end <host:port> close|hang|reset`.
    ServeEnd(String, String),
    /// `@ connections <n>`: the scripted connections open now.
    Connections(usize),
    /// `@ echo <host:port>`: the server echoes.
    Echo(String),
    /// `@ dns <name> <ip>`.
    Dns(String, String),
    /// `@ dial <port>`: a scripted client connects to the module's listening socket.
    Dial(u16),
    /// `@ blackhole <host:port>`: connects are never answered.
    Blackhole(String),
    /// `@ sockets <n>`: the sockets the network holds for the module.
    Sockets(usize),
    /// `@ fault <name> [args]`: a test-bench fault.
    Fault(String, Vec<String>),
    /// A comment or blank line (kept so blessing preserves the file).
    Comment(String),
}

/// A decoded frame line (`UIH 1 AT\r`) to its bytes, as the host (`from_host`) or the module
/// sends it.
fn frame(text: &str, from_host: bool) -> Result<Vec<u8>, String> {
    use sealcell_at::cmux::frame::{Frame, Kind};
    let mut words = text.split_whitespace();
    let (Some(kind), Some(dlci)) = (words.next(), words.next()) else {
        return Err(format!("a frame is `<kind> <dlci> [info]`: {text:?}"));
    };
    let (kind, command) = match kind {
        "SABM" => (Kind::Sabm, true),
        "DISC" => (Kind::Disc, true),
        "UA" => (Kind::Ua, false),
        "DM" => (Kind::Dm, false),
        "UIH" => (Kind::Uih, true),
        other => return Err(format!("unknown frame kind {other:?}")),
    };
    let dlci: u8 = dlci
        .parse()
        .ok()
        .filter(|d| *d <= sealcell_at::cmux::frame::MAX_DLCI)
        .ok_or_else(|| format!("bad DLCI {dlci:?}"))?;
    let info = unescape(after_words(text, 2))?;
    let mut out = Vec::new();
    Frame {
        dlci,
        // TS 27.010 §5.2.1.2: commands carry C/R set from the initiator (the host), clear
        // from the responder; responses the other way round.
        cr: command == from_host,
        kind,
        pf: kind != Kind::Uih,
        info: &info,
    }
    .encode(&mut out);
    Ok(out)
}

/// `host:port` to its parts.
fn server(text: &str) -> Result<(String, u16), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("bad server {text:?}"))?;
    let port = port.parse().map_err(|_| format!("bad port in {text:?}"))?;
    Ok((host.to_string(), port))
}

/// The rest of `line` after `n` words and the spaces after them (bytes may contain spaces).
fn after_words(line: &str, n: usize) -> &str {
    let mut rest = line;
    for _ in 0..n {
        rest = rest.trim_start();
        rest = rest.find(' ').map_or("", |i| &rest[i..]);
    }
    rest.strip_prefix(' ').unwrap_or(rest)
}

/// A parsed transcript.
#[derive(Clone, Debug)]
pub struct Transcript {
    /// The steps with their 1-based line numbers.
    pub steps: Vec<(usize, Step)>,
}

/// How the host's bytes are delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Each `>` line in one call.
    Chunk,
    /// One byte per call.
    Bytewise,
}

impl Transcript {
    /// Parses transcript text.
    pub fn parse(text: &str) -> Result<Transcript, String> {
        let mut steps = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let step = if let Some(rest) = line.strip_prefix(">| ") {
                let bytes = frame(rest, true).map_err(|e| format!("line {n}: {e}"))?;
                Step::SendFrame(rest.to_string(), bytes)
            } else if let Some(rest) = line.strip_prefix("<| ") {
                let bytes = frame(rest, false).map_err(|e| format!("line {n}: {e}"))?;
                Step::ExpectFrame(rest.to_string(), bytes)
            } else if let Some(rest) = line.strip_prefix("> ") {
                Step::Send(unescape(rest).map_err(|e| format!("line {n}: {e}"))?)
            } else if line == ">" {
                Step::Send(Vec::new())
            } else if let Some(rest) = line.strip_prefix("< ") {
                Step::Expect(unescape(rest).map_err(|e| format!("line {n}: {e}"))?)
            } else if let Some(rest) = line.strip_prefix("@ ") {
                let words: Vec<&str> = rest.split_whitespace().collect();
                match words.as_slice() {
                    ["wait", secs] => Step::Wait(Duration::from_secs_f64(
                        secs.parse()
                            .map_err(|_| format!("line {n}: bad seconds {secs:?}"))?,
                    )),
                    ["restart"] => Step::Restart,
                    ["channel", c] => Step::Channel(
                        c.parse()
                            .map_err(|_| format!("line {n}: bad channel {c:?}"))?,
                    ),
                    ["option", name, value] => Step::Option(name.to_string(), value.to_string()),
                    ["send-file", name] => Step::SendFile(name.to_string()),
                    ["serve", srv, "at", ms, ..] => Step::Serve(
                        srv.to_string(),
                        ms.parse().map_err(|_| format!("line {n}: bad ms {ms:?}"))?,
                        unescape(after_words(rest, 4)).map_err(|e| format!("line {n}: {e}"))?,
                    ),
                    ["trickle", srv, ms, ..] => Step::Trickle(
                        srv.to_string(),
                        ms.parse().map_err(|_| format!("line {n}: bad ms {ms:?}"))?,
                        unescape(after_words(rest, 3)).map_err(|e| format!("line {n}: {e}"))?,
                    ),
                    ["serve-end", srv, how @ ("close" | "hang" | "reset")] => {
                        Step::ServeEnd(srv.to_string(), how.to_string())
                    }
                    ["connections", c] => Step::Connections(
                        c.parse()
                            .map_err(|_| format!("line {n}: bad count {c:?}"))?,
                    ),
                    ["echo", srv] => Step::Echo(srv.to_string()),
                    ["blackhole", srv] => Step::Blackhole(srv.to_string()),
                    ["fault", name, args @ ..] => Step::Fault(
                        name.to_string(),
                        args.iter().map(|a| a.to_string()).collect(),
                    ),
                    ["dns", name, ip] => Step::Dns(name.to_string(), ip.to_string()),
                    ["dial", port] => Step::Dial(
                        port.parse()
                            .map_err(|_| format!("line {n}: bad port {port:?}"))?,
                    ),
                    ["sockets", c] => Step::Sockets(
                        c.parse()
                            .map_err(|_| format!("line {n}: bad count {c:?}"))?,
                    ),
                    _ => return Err(format!("line {n}: unknown directive {rest:?}")),
                }
            } else if line.is_empty() || line.starts_with('#') {
                Step::Comment(line.to_string())
            } else {
                return Err(format!(
                    "line {n}: expected '> ', '< ', '@ ' or '#': {line:?}"
                ));
            };
            steps.push((n, step));
        }
        Ok(Transcript { steps })
    }

    /// Writes the transcript back as text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for (_, step) in &self.steps {
            match step {
                Step::Send(b) => s.push_str(&format!("> {}\n", escape(b))),
                Step::Expect(b) => s.push_str(&format!("< {}\n", escape(b))),
                Step::SendFrame(text, _) => s.push_str(&format!(">| {text}\n")),
                Step::ExpectFrame(text, _) => s.push_str(&format!("<| {text}\n")),
                Step::Wait(d) => s.push_str(&format!("@ wait {}\n", d.as_secs_f64())),
                Step::Restart => s.push_str("@ restart\n"),
                Step::Channel(c) => s.push_str(&format!("@ channel {c}\n")),
                Step::Option(k, v) => s.push_str(&format!("@ option {k} {v}\n")),
                Step::SendFile(f) => s.push_str(&format!("@ send-file {f}\n")),
                Step::Serve(srv, ms, b) => {
                    s.push_str(&format!("@ serve {srv} at {ms} {}\n", escape(b)))
                }
                Step::Trickle(srv, ms, b) => {
                    s.push_str(&format!("@ trickle {srv} {ms} {}\n", escape(b)))
                }
                Step::ServeEnd(srv, how) => s.push_str(&format!("@ serve-end {srv} {how}\n")),
                Step::Connections(c) => s.push_str(&format!("@ connections {c}\n")),
                Step::Echo(srv) => s.push_str(&format!("@ echo {srv}\n")),
                Step::Blackhole(srv) => s.push_str(&format!("@ blackhole {srv}\n")),
                Step::Fault(name, args) => {
                    let mut line = format!("@ fault {name}");
                    for a in args {
                        line.push(' ');
                        line.push_str(a);
                    }
                    s.push_str(&line);
                    s.push('\n');
                }
                Step::Dns(name, ip) => s.push_str(&format!("@ dns {name} {ip}\n")),
                Step::Dial(port) => s.push_str(&format!("@ dial {port}\n")),
                Step::Sockets(c) => s.push_str(&format!("@ sockets {c}\n")),
                Step::Comment(c) => s.push_str(&format!("{c}\n")),
            }
        }
        s
    }
}

struct Runner {
    config: ModuleConfig,
    module: Option<Module>,
    channels: BTreeMap<u32, Link>,
    current: u32,
    now: Now,
    net: Network,
    /// The scripts, by server (kept across restarts).
    scripts: BTreeMap<(String, u16), Script>,
    /// The scripted names (kept across restarts).
    names: BTreeMap<String, std::net::IpAddr>,
    /// The black holes (kept across restarts).
    blackholes: Vec<(String, u16)>,
}

impl Runner {
    fn module(&mut self) -> Result<&mut Module, String> {
        if self.module.is_none() {
            self.module = Some(
                Module::open(self.config.clone(), self.now).map_err(|e| format!("open: {e}"))?,
            );
        }
        self.module.as_mut().ok_or_else(|| "no module".to_string())
    }

    fn with_channel<T>(
        &mut self,
        f: impl FnOnce(&mut Link, &mut Module, &mut Now, &mut Network) -> T,
    ) -> Result<T, String> {
        let current = self.current;
        self.module()?;
        let (Some(module), channels, now, net) = (
            self.module.as_mut(),
            &mut self.channels,
            &mut self.now,
            &mut self.net,
        ) else {
            return Err("no module".into());
        };
        let channel = channels.entry(current).or_insert_with(|| Link::new(module));
        Ok(f(channel, module, now, net))
    }

    fn substitute(&mut self, expected: &[u8]) -> Result<Vec<u8>, String> {
        if !expected.contains(&b'{') {
            return Ok(expected.to_vec());
        }
        let expected = &fixture_placeholders(expected)?;
        let id = self.module()?.identity().clone();
        let address = id.pdp_address().to_string();
        let (ef_iccid, ef_imsi) = sim_files(&id);
        let mut out = expected.to_vec();
        for (name, value) in [
            ("{IMEI}", id.imei.as_str()),
            ("{IMSI}", id.imsi.as_str()),
            ("{ICCID}", &id.iccid),
            ("{IPADDR}", &address),
            ("{EF_ICCID}", &ef_iccid),
            ("{EF_IMSI}", &ef_imsi),
        ] {
            out = replace_bytes(&out, name.as_bytes(), value.as_bytes());
        }
        Ok(out)
    }
}

impl Runner {
    /// Changes the script of server `srv` (`host:port`) and gives it to the network.
    fn script(
        &mut self,
        srv: &str,
        line: usize,
        change: impl FnOnce(&mut Script),
    ) -> Result<(), String> {
        let key = server(srv).map_err(|e| format!("line {line}: {e}"))?;
        let script = self.scripts.entry(key.clone()).or_insert(Script {
            pieces: Vec::new(),
            end: ScriptEnd::Close,
            echo: false,
        });
        change(script);
        let script = script.clone();
        self.net.scripted().serve(&key.0, key.1, script);
        Ok(())
    }

    /// Puts the placeholders back into recorded output (for blessing).
    fn placeholders(&self, actual: &[u8]) -> Vec<u8> {
        let Some(m) = self.module.as_ref() else {
            return actual.to_vec();
        };
        let id = m.identity();
        let address = id.pdp_address().to_string();
        let (ef_iccid, ef_imsi) = sim_files(id);
        let mut out = actual.to_vec();
        // The SIM files first: their hex could contain a run of identity digits.
        for (value, name) in [
            (ef_iccid.as_str(), "{EF_ICCID}"),
            (ef_imsi.as_str(), "{EF_IMSI}"),
            (id.imei.as_str(), "{IMEI}"),
            (&id.imsi, "{IMSI}"),
            (&id.iccid, "{ICCID}"),
            (&address, "{IPADDR}"),
        ] {
            out = replace_bytes(&out, value.as_bytes(), name.as_bytes());
        }
        out
    }
}

/// EF ICCID and EF IMSI of the module's SIM as `+CRSM` prints them (uppercase hex).
fn sim_files(id: &sealcell_modem::identity::Identity) -> (String, String) {
    let (iccid, imsi) = sealcell_modem::command::sim::identity_files(id);
    (hex::encode_upper(iccid), hex::encode_upper(imsi))
}

/// The test PKI directory.
pub fn pki_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pki")
}

/// Reads a fixture of the test PKI.
pub fn pki_fixture(name: &str) -> Result<Vec<u8>, String> {
    std::fs::read(pki_dir().join(name)).map_err(|e| format!("fixture {name}: {e}"))
}

/// The facts openssl computed (`facts.txt`): file -> [md5, cn, notAfter as YYYY/MM/DD HH:MM:SS].
pub fn pki_facts() -> Result<BTreeMap<String, Vec<String>>, String> {
    let text = String::from_utf8(pki_fixture("facts.txt")?).map_err(|e| e.to_string())?;
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let mut v: Vec<String> = f.iter().skip(1).map(|s| s.to_string()).collect();
        if let Some(d) = f.get(3) {
            let w: Vec<&str> = d.split_whitespace().collect();
            let m = months
                .iter()
                .position(|x| Some(x) == w.first())
                .map_or(0, |m| m + 1);
            let day: u32 = w.get(1).and_then(|d| d.parse().ok()).unwrap_or(0);
            v[2] = format!(
                "{}/{m:02}/{day:02} {}",
                w.get(3).unwrap_or(&""),
                w.get(2).unwrap_or(&"")
            );
        }
        out.insert(f[0].to_string(), v);
    }
    Ok(out)
}

/// Replaces `{SIZE:f}`, `{MD5:f}`, `{CN:f}` and `{NOTAFTER:f}`.
fn fixture_placeholders(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = bytes.to_vec();
    let text = String::from_utf8_lossy(bytes).into_owned();
    let mut facts = None;
    for (tag, index) in [
        ("{FILE:", Some(usize::MAX)),
        ("{SIZE:", None),
        ("{MD5:", Some(0)),
        ("{CN:", Some(1)),
        ("{NOTAFTER:", Some(2)),
    ] {
        let mut rest = text.as_str();
        while let Some(start) = rest.find(tag) {
            let after = &rest[start + tag.len()..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("unterminated {tag}"))?;
            let file = &after[..end];
            let value = match index {
                None => pki_fixture(file)?.len().to_string(),
                Some(usize::MAX) => String::from_utf8(pki_fixture(file)?)
                    .map_err(|_| format!("{file} is not text"))?,
                Some(i) => {
                    if facts.is_none() {
                        facts = Some(pki_facts()?);
                    }
                    let f = facts
                        .as_ref()
                        .and_then(|f| f.get(file))
                        .ok_or_else(|| format!("no facts for {file}"))?;
                    f.get(i)
                        .cloned()
                        .ok_or_else(|| format!("no such fact of {file}"))?
                }
            };
            out = replace_bytes(&out, format!("{tag}{file}}}").as_bytes(), value.as_bytes());
            rest = &after[end..];
        }
    }
    Ok(out)
}

fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if !from.is_empty() && haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

fn apply_option(config: &mut ModuleConfig, name: &str, value: &str) -> Result<(), String> {
    match name {
        "model" => config.model = Some(value.parse()?),
        "imei" => config.imei = Some(value.parse()?),
        "fs-capacity" => {
            config.fs_capacity = value
                .parse()
                .map_err(|_| format!("bad capacity {value:?}"))?
        }
        "payload-timeout" => {
            config.payload_timeout = Duration::from_secs_f64(
                value
                    .parse()
                    .map_err(|_| format!("bad timeout {value:?}"))?,
            )
        }
        "timing" => config.timing = value.parse()?,
        _ => return Err(format!("unknown option {name:?}")),
    }
    Ok(())
}

/// What one run has heard and recorded.
#[derive(Default)]
struct Recorder {
    bless: bool,
    delivery: Option<Delivery>,
    actual: Vec<u8>,
    expected: Vec<u8>,
    expected_steps: Vec<(usize, Step)>,
    blessed: Vec<(usize, Step)>,
    pending_comments: Vec<(usize, Step)>,
}

impl Recorder {
    /// Closes the step that started at `line`: compares (or records) its output, then keeps
    /// the comments that followed it.
    fn check(&mut self, runner: &mut Runner, line: usize) -> Result<(), String> {
        if self.bless {
            if runner
                .substitute(&self.expected)
                .is_ok_and(|want| want == self.actual)
            {
                // Still right: keep the lines as written (placeholders and all).
                self.blessed.append(&mut self.expected_steps);
            } else {
                let actual = runner.placeholders(&self.actual);
                for piece in actual.split_inclusive(|&b| b == b'\n') {
                    self.blessed.push((0, Step::Expect(piece.to_vec())));
                }
            }
        } else {
            let want = runner.substitute(&self.expected)?;
            if self.actual != want {
                return Err(format!(
                    "step at line {line} ({:?} delivery):\n  expected: {}\n  actual:   {}",
                    self.delivery,
                    escape(&want),
                    escape(&self.actual)
                ));
            }
        }
        self.actual.clear();
        self.expected.clear();
        self.expected_steps.clear();
        self.blessed.append(&mut self.pending_comments);
        Ok(())
    }
}

/// Runs a transcript against a new module in `dir`. With `bless`, returns the transcript with
/// its `<` lines replaced by what the module said; otherwise fails on the first difference.
pub fn run(
    transcript: &Transcript,
    dir: &Path,
    delivery: Delivery,
    bless: bool,
) -> Result<Transcript, String> {
    let mut runner = Runner {
        config: test_config(dir),
        module: None,
        channels: BTreeMap::new(),
        current: 0,
        now: Now::virtual_start(Instant::now()),
        net: Network::default(),
        scripts: BTreeMap::new(),
        names: BTreeMap::new(),
        blackholes: Vec::new(),
    };
    let mut rec = Recorder {
        bless,
        delivery: Some(delivery),
        ..Recorder::default()
    };
    let mut step_line = 0usize;

    for (line, step) in &transcript.steps {
        match step {
            Step::Expect(b) | Step::ExpectFrame(_, b) => {
                rec.expected.extend_from_slice(b);
                rec.expected_steps.push((*line, step.clone()));
                continue;
            }
            Step::Comment(_) => {
                rec.pending_comments.push((*line, step.clone()));
                continue;
            }
            _ => {}
        }
        rec.check(&mut runner, step_line)?;
        step_line = *line;
        rec.blessed.push((*line, step.clone()));
        match step {
            Step::Send(_) | Step::SendFile(_) | Step::SendFrame(..) => {
                let bytes = match step {
                    Step::SendFrame(_, b) => b.clone(),
                    Step::SendFile(f) => pki_fixture(f).map_err(|e| format!("line {line}: {e}"))?,
                    Step::Send(b) if b.contains(&b'{') => {
                        fixture_placeholders(b).map_err(|e| format!("line {line}: {e}"))?
                    }
                    Step::Send(b) => b.clone(),
                    _ => Vec::new(),
                };
                let chunks: Vec<&[u8]> = match delivery {
                    Delivery::Chunk => vec![bytes.as_slice()],
                    Delivery::Bytewise => bytes.chunks(1).collect(),
                };
                for chunk in chunks {
                    let out = runner.with_channel(|c, m, now, net| {
                        let mut out = Vec::new();
                        c.feed(m, chunk, *now, &mut out);
                        settle(m, c, *now, net, &mut out);
                        out
                    })?;
                    rec.actual.extend_from_slice(&out);
                }
            }
            Step::Wait(d) => {
                let out = runner.with_channel(|c, m, now, net| {
                    let mut out = Vec::new();
                    advance(m, c, now, *d, net, &mut out);
                    out
                })?;
                rec.actual.extend_from_slice(&out);
            }
            Step::Serve(srv, ms, bytes) => runner.script(srv, *line, |script| {
                script
                    .pieces
                    .push((Duration::from_millis(*ms), bytes.clone()));
            })?,
            Step::Trickle(srv, ms, bytes) => runner.script(srv, *line, |script| {
                // A byte every `ms`, after whatever was scripted before.
                let start = script.pieces.last().map_or(Duration::ZERO, |p| p.0);
                let t = Script::trickle(bytes, Duration::from_millis(*ms), ScriptEnd::Close);
                script
                    .pieces
                    .extend(t.pieces.into_iter().map(|(at, b)| (start + at, b)));
            })?,
            Step::ServeEnd(srv, how) => runner.script(srv, *line, |script| {
                script.end = match how.as_str() {
                    "hang" => ScriptEnd::Hang,
                    "reset" => ScriptEnd::Reset,
                    _ => ScriptEnd::Close,
                };
            })?,
            Step::Echo(srv) => runner.script(srv, *line, |script| {
                script.echo = true;
                script.end = ScriptEnd::Hang;
            })?,
            Step::Fault(name, args) => {
                let fault = sealcell_modem::faults::Fault::parse(name, args)
                    .map_err(|e| format!("line {line}: {e}"))?;
                let out = runner.with_channel(|c, m, now, net| {
                    let done = m.inject(fault);
                    let mut out = Vec::new();
                    c.poll(m, *now, &mut out);
                    crate::settle(m, c, *now, net, &mut out);
                    done.map(|_| out)
                })?;
                let out = out.map_err(|e| format!("line {line}: {e}"))?;
                rec.actual.extend_from_slice(&out);
            }
            Step::Blackhole(srv) => {
                let (host, port) = server(srv).map_err(|e| format!("line {line}: {e}"))?;
                runner.blackholes.push((host.clone(), port));
                runner.net.scripted().blackhole(&host, port);
            }
            Step::Dns(name, ip) => {
                let ip = ip
                    .parse()
                    .map_err(|_| format!("line {line}: bad address {ip:?}"))?;
                runner.names.insert(name.clone(), ip);
                runner.net.scripted().name(name, ip);
            }
            Step::Dial(port) => {
                let out = runner.with_channel(|c, m, now, net| {
                    let mut out = Vec::new();
                    let dialled = net.scripted().dial(m, *port);
                    // The accept is news for the channel: its URC goes out now.
                    c.poll(m, *now, &mut out);
                    crate::settle(m, c, *now, net, &mut out);
                    (dialled, out)
                })?;
                if !out.0 {
                    return Err(format!("line {line}: nothing listens to dial"));
                }
                rec.actual.extend_from_slice(&out.1);
            }
            Step::Sockets(want) => {
                let open = runner.net.scripted().open_sockets();
                if open != *want {
                    return Err(format!(
                        "line {line}: the network holds {open} sockets, expected {want}"
                    ));
                }
            }
            Step::Connections(want) => {
                let open = runner.net.scripted().open_connections();
                if open != *want {
                    return Err(format!(
                        "line {line}: {open} scripted connections open, expected {want}"
                    ));
                }
            }
            Step::Restart => {
                // The process is gone, and its connections with it.
                runner.net = Network::default();
                for ((host, port), script) in &runner.scripts {
                    runner.net.scripted().serve(host, *port, script.clone());
                }
                for (name, ip) in &runner.names {
                    runner.net.scripted().name(name, *ip);
                }
                for (host, port) in &runner.blackholes {
                    runner.net.scripted().blackhole(host, *port);
                }
                runner.channels.clear();
                runner.module = None;
                runner.current = 0;
            }
            Step::Channel(c) => runner.current = *c,
            Step::Option(name, value) => {
                if runner.module.is_some() {
                    return Err(format!("line {line}: options must come before any I/O"));
                }
                apply_option(&mut runner.config, name, value)
                    .map_err(|e| format!("line {line}: {e}"))?;
            }
            Step::Expect(_) | Step::ExpectFrame(..) | Step::Comment(_) => {}
        }
    }
    rec.check(&mut runner, step_line)?;
    Ok(Transcript { steps: rec.blessed })
}
