//! `sealcell at`, `sealcell provision` and `sealcell fota`: the host side over `sealcell-host`.
//! Exit codes: 0 success, 1 the module's negative answer (or a refused plan or check), 2 usage,
//! I/O or protocol error.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::anyhow;
use clap::Args;
use sealcell_host::bounded_read::{self, MAX_SIGNATURE_FILE};
use sealcell_host::client::{AtClient, ClientError, ClientOptions, Command, REDACTED, result_text};
use sealcell_host::fota::{FotaError, FotaReport, FotaRequest, HttpsUrl, fota};
use sealcell_host::mux::MuxOptions;
use sealcell_host::port::{Flow, PortSpec};
use sealcell_host::transcript::{
    Direction, FileTranscript, FnTranscript, Tee, Transcript, format_line,
};

use crate::{Failure, print_bytes};

/// Where the module is, and how to talk to it.
#[derive(Debug, Args)]
pub(crate) struct PortArgs {
    /// The module: /dev/ttyUSB0[@BAUD] (8N1, default 115200), a PTY path, or tcp:HOST:PORT.
    /// `sealcell provision` takes several, one module each, provisioned in parallel.
    #[arg(long = "port", value_name = "PORT", required = true)]
    ports: Vec<PortSpec>,
    /// RTS/CTS hardware flow control (serial ports).
    #[arg(long)]
    rtscts: bool,
    /// Seconds a command may take before it is given up.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    timeout: u64,
    /// Print every AT exchange on stderr as it happens (secrets redacted, as in transcripts).
    #[arg(long, short)]
    verbose: bool,
    /// Talk over 27.010 multiplexing: start it with AT+CMUX=0,0,,128 (or join a multiplexer a
    /// host application left running) and use one DLCI; closed down again at the end.
    #[arg(long)]
    cmux: bool,
    /// The DLCI to use with --cmux (a TOBY-L2 has AT channels 1..5).
    #[arg(long, value_name = "N", default_value_t = 1, requires = "cmux",
          value_parser = clap::value_parser!(u8).range(1..=5))]
    dlci: u8,
}

impl PortArgs {
    /// The one port of a command that drives one module (`at`, `fota`).
    pub(crate) fn single(&self) -> Result<&PortSpec, Failure> {
        match self.ports.as_slice() {
            [one] => Ok(one),
            _ => Err(Failure::usage(
                anyhow!("this command drives one module: give one --port"),
                Some("`sealcell provision` takes several --port options".into()),
            )),
        }
    }

    /// Every `--port`, in order.
    pub(crate) fn ports(&self) -> &[PortSpec] {
        &self.ports
    }

    /// Whether `-v` was given.
    pub(crate) fn verbose(&self) -> bool {
        self.verbose
    }

    /// A spinner on stderr showing the workflow's current step: on a terminal, without `-v`.
    fn spinner(&self) -> Option<indicatif::ProgressBar> {
        if self.verbose || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(100));
        Some(bar)
    }

    /// Opens the one port, recording to `transcript` (appended) when given, with the
    /// workflow's notes shown on `spinner`.
    fn connect(
        &self,
        transcript: Option<&std::path::Path>,
        spinner: Option<&indicatif::ProgressBar>,
    ) -> Result<AtClient, Failure> {
        let port = self.single()?.clone();
        self.connect_to(&port, transcript, spinner, Vec::new())
    }

    /// Opens `port` with these options, recording to `transcript` (appended) and to `extra`
    /// sinks, with the workflow's notes shown on `spinner`.
    pub(crate) fn connect_to(
        &self,
        port: &PortSpec,
        transcript: Option<&std::path::Path>,
        spinner: Option<&indicatif::ProgressBar>,
        extra: Vec<Box<dyn Transcript>>,
    ) -> Result<AtClient, Failure> {
        let mut sinks: Vec<Box<dyn Transcript>> = extra;
        if let Some(bar) = spinner.cloned() {
            sinks.push(Box::new(FnTranscript(move |direction, text: &str| {
                if direction == Direction::Note {
                    bar.set_message(text.to_string());
                }
            })));
        }
        if let Some(path) = transcript {
            sinks.push(open_transcript(path)?);
        }
        if self.verbose {
            sinks.push(Box::new(FnTranscript(|direction, text: &str| {
                eprintln!("{}", format_line(direction, text))
            })));
        }
        let transcript = (!sinks.is_empty()).then(|| Box::new(Tee(sinks)) as Box<dyn Transcript>);
        let flow = if self.rtscts {
            Flow::RtsCts
        } else {
            Flow::None
        };
        let spec = port.clone().with_flow(flow);
        let options = ClientOptions {
            timeout: Duration::from_secs(self.timeout.max(1)),
            multiplex: self.cmux.then_some(MuxOptions {
                dlci: self.dlci,
                ..MuxOptions::default()
            }),
            ..ClientOptions::default()
        };
        AtClient::open_recorded(&spec, options, transcript).map_err(|e| {
            let hint = match &e {
                ClientError::Open { .. } if matches!(spec, PortSpec::Tcp { .. }) => Some(
                    "is the emulator running? `sealcell modem` listens on tcp:127.0.0.1:5555"
                        .to_string(),
                ),
                ClientError::Timeout { .. } => Some(
                    "check the baud rate (PORT@BAUD) and that nothing else holds the port".into(),
                ),
                _ => None,
            };
            client_failure(e, hint)
        })
    }
}

pub(crate) fn client_failure(e: ClientError, hint: Option<String>) -> Failure {
    let negative = e.is_module_answer();
    refusal(e, negative, hint)
}

/// `sealcell at`.
#[derive(Debug, Args)]
pub(crate) struct AtArgs {
    #[command(flatten)]
    port: PortArgs,
    /// Print the answers as JSON (`[{command, lines, result}]`).
    #[arg(long)]
    json: bool,
    /// Append a transcript (secrets redacted) to this file.
    #[arg(long, value_name = "FILE")]
    transcript: Option<PathBuf>,
    /// Bytes to send when a command prompts with `>` (AT+USECMNG=0, AT+UDWNFILE); never shown
    /// in transcripts.
    #[arg(long, value_name = "FILE")]
    payload: Option<PathBuf>,
    /// Commands to send, in order (stops at the first error). None: an interactive terminal.
    #[arg(value_name = "COMMAND")]
    commands: Vec<String>,
    /// Send a seal (`AT+USECCFG=0,1,...`) on a serial port without asking for the last four
    /// digits of the module's IMEI.
    #[arg(long)]
    yes: bool,
}

/// Before a seal typed into `sealcell at` on a real line (a serial port, a PTY, TCP to another
/// machine): the module's IMEI is read and its last four digits must be typed, unless `--yes`.
/// `ask` shows the question and returns the answer, or `None` when there is no terminal.
fn confirm_typed_seal(
    at: &mut AtClient,
    port: &PortSpec,
    yes: bool,
    ask: &mut dyn FnMut(&str) -> Option<String>,
) -> Result<(), Failure> {
    use crate::station::{judge_seal, seal_question};
    if yes || !port.needs_seal_confirmation() {
        return Ok(());
    }
    let answer = at.ok_line("AT+CGSN").map_err(|e| client_failure(e, None))?;
    let imei = answer.lines.first().cloned().unwrap_or_default();
    judge_seal(port, &imei, ask(&seal_question(port, &imei))).map_err(|r| Failure {
        code: 1,
        error: anyhow!(r.reason),
        hint: r.hint,
    })
}

/// `sealcell fota`.
#[derive(Debug, Args)]
pub(crate) struct FotaArgs {
    #[command(flatten)]
    port: PortArgs,
    /// The package: https://HOST[:PORT]/PATH.
    #[arg(long, value_name = "URL")]
    url: HttpsUrl,
    /// The signature file, as `sealcell fw sign` or the §4.3.1 script wrote it (base64 wrapped
    /// or not, hex, or raw); or the base64 or hex signature itself.
    #[arg(long, value_name = "SIG")]
    signature: PathBuf,
    /// The module's verification certificate (VC) to check the signature with.
    #[arg(long, value_name = "NAME")]
    cert_name: String,
    /// The +USECPRF security profile for the TLS connection.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=4))]
    security_profile: u8,
    /// The +UHTTP profile to use.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=3))]
    http_profile: u8,
    /// The package as the host has it: the module's MD5 of the download must match it.
    #[arg(long, value_name = "PKG")]
    file: Option<PathBuf>,
    /// Seconds the download may take.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    download_timeout: u64,
    /// Seconds the install and the reboot may take.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    install_timeout: u64,
    /// Append a transcript to this file.
    #[arg(long, value_name = "FILE")]
    transcript: Option<PathBuf>,
    #[command(flatten)]
    record: crate::record::RecordArgs,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn open_transcript(path: &std::path::Path) -> Result<Box<dyn Transcript>, Failure> {
    FileTranscript::append(path)
        .map(|t| Box::new(t) as Box<dyn Transcript>)
        .map_err(|e| Failure::usage(anyhow!("cannot open {}: {e}", path.display()), None))
}

/// The line as transcripts and `-v` show it when it seals the module (`AT+USECCFG=0,1,"..."`
/// in any form the module accepts: after other commands, with spaces, leading zeros, any case):
/// every quoted string redacted. `None` for a line that does not seal.
fn shown_line(line: &str) -> Option<String> {
    is_seal(line).then(|| redact_strings(line))
}

/// Whether one of the line's commands is the seal, parsed as the module parses it (the
/// module's own test, `SecCfgCommand::asks_to_seal`).
fn is_seal(line: &str) -> bool {
    use sealcell_at::commands::SetCommand;
    use sealcell_at::commands::useccfg::SecCfgCommand;
    use sealcell_at::syntax::{Form, Line, parse_line};
    let Ok(Line::Commands(commands)) = parse_line(line.as_bytes()) else {
        return false;
    };
    commands.commands().flatten().any(|c| {
        c.name.as_str() == SecCfgCommand::NAME
            && matches!(c.form, Form::Set(args) if SecCfgCommand::asks_to_seal(args.as_str()))
    })
}

/// Every quoted string of `line` replaced by `"<redacted>"`.
fn redact_strings(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut quoted = false;
    for c in line.chars() {
        if c == '"' {
            quoted = !quoted;
            out.push('"');
            if quoted {
                out.push_str(REDACTED);
            }
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

/// Whether a line would switch off the verbose result codes the client reads (`ATV0`,
/// `ATQ1`, a bare `ATV`): after it, no answer could be recognised.
fn silences_results(line: &str) -> bool {
    let upper = line.trim().to_ascii_uppercase();
    let Some(rest) = upper.strip_prefix("AT") else {
        return false;
    };
    let basic = rest.split(['+', ';']).next().unwrap_or("");
    basic.contains("V0") || basic.contains("Q1") || (basic.ends_with('V') && !basic.ends_with("&V"))
}

fn refuse_silencing(line: &str) -> Result<(), Failure> {
    if silences_results(line) {
        return Err(Failure::usage(
            anyhow!("`{line}` would turn off the verbose result codes this client reads"),
            Some("use ATV1 and ATQ0 (the defaults); a terminal program can show V0 answers".into()),
        ));
    }
    Ok(())
}

fn command_for(line: &str) -> Command {
    match shown_line(line) {
        Some(shown) => Command::with_secret(zeroize::Zeroizing::new(line.to_string()), shown),
        None => Command::new(line),
    }
}

/// Runs `sealcell at`.
pub(crate) fn run_at(args: AtArgs) -> Result<(), Failure> {
    let port = args.port.single()?.clone();
    let mut at = args.port.connect(args.transcript.as_deref(), None)?;
    if args.commands.is_empty() {
        return interactive(at, &port, args.yes);
    }
    if args.commands.iter().any(|c| shown_line(c).is_some()) {
        eprintln!(
            "warning: a seal password on the command line can leak (shell history, ps); \
             prefer `sealcell provision` or the interactive terminal"
        );
    }
    let payload = args
        .payload
        .as_ref()
        .map(|path| {
            std::fs::read(path)
                .map(|bytes| (zeroize::Zeroizing::new(bytes), path.display().to_string()))
                .map_err(|e| Failure::usage(anyhow!("cannot read {}: {e}", path.display()), None))
        })
        .transpose()?;
    for line in &args.commands {
        refuse_silencing(line)?;
    }
    let mut answers = Vec::new();
    let mut outcome = Ok(());
    for line in &args.commands {
        if shown_line(line).is_some() {
            confirm_typed_seal(
                &mut at,
                &port,
                args.yes,
                &mut crate::station::ask_on_terminal,
            )?;
        }
        let mut command = command_for(line);
        if let Some((bytes, name)) = &payload {
            command = command.payload(bytes.clone(), format!("<{} bytes of {name}>", bytes.len()));
        }
        let response = at.run(&command).map_err(|e| client_failure(e, None))?;
        if !args.json {
            let mut text = String::new();
            for l in &response.lines {
                text.push_str(l);
                text.push('\n');
            }
            print_bytes(text.as_bytes())?;
        }
        let ok = response.is_ok();
        answers.push(serde_json::json!({
            "command": response.command,
            "lines": response.lines,
            "result": result_text(&response.result),
        }));
        if !ok {
            outcome = response
                .into_ok()
                .map(|_| ())
                .map_err(|e| client_failure(e, None));
            break;
        }
    }
    for urc in at.take_urcs() {
        eprintln!("{urc}");
    }
    if args.json {
        print_json(&serde_json::Value::Array(answers))?;
    }
    outcome
}

/// The interactive terminal: line editing and history (in memory only: a typed seal password
/// must not land in a history file), URCs printed above the prompt as they come, Ctrl-C or
/// Ctrl-D to leave.
fn interactive(at: AtClient, port: &PortSpec, yes: bool) -> Result<(), Failure> {
    use rustyline::error::ReadlineError;
    use rustyline::{Config, DefaultEditor, ExternalPrinter};

    let config = Config::builder().auto_add_history(false).build();
    let mut editor = DefaultEditor::with_config(config)
        .map_err(|e| Failure::usage(anyhow!("terminal: {e}"), None))?;
    let at = Arc::new(Mutex::new(at));
    let stop = Arc::new(AtomicBool::new(false));
    let urc_thread = match editor.create_external_printer() {
        Ok(mut printer) => {
            let (at, stop) = (Arc::clone(&at), Arc::clone(&stop));
            Some(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let urcs = match at.lock() {
                        Ok(mut at) => at.poll_urcs(Duration::from_millis(20)).unwrap_or_default(),
                        Err(_) => break,
                    };
                    for u in urcs {
                        let _ = printer.print(format!("{u}\n"));
                    }
                    std::thread::sleep(Duration::from_millis(80));
                }
            }))
        }
        Err(_) => None,
    };
    if std::io::stdin().is_terminal() {
        eprintln!("connected; type AT commands, Ctrl-C or Ctrl-D to leave");
    }
    let result = loop {
        match editor.readline("AT> ") {
            Ok(line) => {
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                if shown_line(line).is_none() {
                    let _ = editor.add_history_entry(line);
                }
                if let Err(f) = refuse_silencing(line) {
                    println!("error: {:#}", f.error);
                    continue;
                }
                if shown_line(line).is_some() {
                    let confirmed = match at.lock() {
                        Ok(mut at) => {
                            confirm_typed_seal(&mut at, port, yes, &mut |q| editor.readline(q).ok())
                        }
                        Err(_) => break Err(Failure::usage(anyhow!("the AT client failed"), None)),
                    };
                    if let Err(f) = confirmed {
                        println!("error: {:#}", f.error);
                        continue;
                    }
                }
                let answer = match at.lock() {
                    Ok(mut at) => {
                        let answer = at.run(&command_for(line));
                        let urcs = at.take_urcs();
                        answer.map(|r| (r, urcs))
                    }
                    Err(_) => break Err(Failure::usage(anyhow!("the AT client failed"), None)),
                };
                match answer {
                    Ok((r, urcs)) => {
                        for l in r.lines.iter().chain(&urcs) {
                            println!("{l}");
                        }
                        println!("{}", result_text(&r.result));
                    }
                    Err(e) if e.is_module_answer() => println!("{e}"),
                    Err(e) => break Err(client_failure(e, None)),
                }
            }
            Err(ReadlineError::Interrupted | ReadlineError::Eof) => break Ok(()),
            Err(e) => break Err(Failure::usage(anyhow!("terminal: {e}"), None)),
        }
    };
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = urc_thread {
        let _ = t.join();
    }
    result
}

/// Prints `value` as pretty JSON and a newline.
pub(crate) fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::usage(e, None))?
        .into_bytes();
    text.push(b'\n');
    print_bytes(&text)
}

/// A workflow's error: exit 1 for a refusal or the module's negative answer, else 2.
pub(crate) fn refusal(
    error: impl Into<anyhow::Error>,
    negative: bool,
    hint: Option<String>,
) -> Failure {
    Failure {
        code: if negative { 1 } else { 2 },
        error: error.into(),
        hint,
    }
}

/// With `--json`, a failed workflow also says so on stdout, as one object
/// (`{"error", "hint", "exit"}`), so a production line parsing stdout sees why; stderr still
/// gets the usual `error:` line.
pub(crate) fn json_failure(json: bool, failure: Failure) -> Failure {
    if json {
        let _ = print_json(&serde_json::json!({
            "error": format!("{:#}", failure.error),
            "hint": failure.hint,
            "exit": failure.code,
        }));
    }
    failure
}

/// Prints a workflow's report: JSON with `--json`, else its text.
pub(crate) fn emit<T: serde::Serialize>(
    json: bool,
    report: &T,
    text: impl FnOnce() -> String,
) -> Result<(), Failure> {
    if json {
        let value = serde_json::to_value(report).map_err(|e| Failure::usage(e, None))?;
        return print_json(&value);
    }
    print_bytes(text().as_bytes())
}

/// An action's name as the JSON report writes it (`would-import`).
pub(crate) fn kebab(action: &impl serde::Serialize) -> String {
    serde_json::to_value(action)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Runs `sealcell fota`.
pub(crate) fn run_fota(args: FotaArgs) -> Result<(), Failure> {
    let json = args.json;
    fota_command(args).map_err(|f| json_failure(json, f))
}

fn fota_command(args: FotaArgs) -> Result<(), Failure> {
    // A file, as `sealcell fw sign` writes it; or, when no such file exists, the signature
    // itself on the command line (base64 or hex: it is not a secret).
    let read = bounded_read::read_capped(&args.signature, MAX_SIGNATURE_FILE, "signature file");
    let sig_text = match read {
        Ok(bytes) => bytes,
        Err(e) => match literal_signature(&args.signature) {
            Some(text) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => text,
            _ => return Err(Failure::usage(e, None)),
        },
    };
    let signature = sealcell_fw::encoding::decode_signature(
        &sig_text,
        sealcell_fw::encoding::SignatureFormat::Auto,
    )
    .map_err(|e| Failure::usage(anyhow!("{}: {e}", args.signature.display()), None))?;
    let expected_md5 = args.file.as_ref().map(|path| file_md5(path)).transpose()?;
    let ledger = args.record.open()?;
    let port = args.port.single()?.clone();
    let run = ledger
        .as_ref()
        .map(|l| {
            l.begin_run(&sealcell_ledger::RunStart {
                kind: sealcell_ledger::RunKind::Fota,
                started_unix_ms: crate::record::now_unix_ms(),
                station: args.record.station(),
                operator: args.record.operator(),
                port: port.to_string(),
                plan_path: None,
                plan_sha256: None,
            })
            .map(|id| (l, id))
            .map_err(|e| {
                Failure::usage(
                    anyhow!("the ledger could not record the run: {e}"),
                    Some("nothing was sent to the module; --no-ledger runs without one".into()),
                )
            })
        })
        .transpose()?;
    let (hasher, sink) = crate::provision::hashing_transcript();
    let spinner = args.port.spinner();
    let outcome = args
        .port
        .connect_to(
            &port,
            args.transcript.as_deref(),
            spinner.as_ref(),
            vec![sink],
        )
        .and_then(|at| fota_run(&args, at, run, expected_md5, signature));
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    if let Some((ledger, id)) = run {
        let end = sealcell_ledger::RunEnd {
            ended_unix_ms: crate::record::now_unix_ms(),
            outcome: match &outcome {
                Ok(_) => sealcell_ledger::Outcome::Succeeded,
                Err(f) if f.code == 1 => sealcell_ledger::Outcome::Refused,
                Err(_) => sealcell_ledger::Outcome::Failed,
            },
            error: outcome.as_ref().err().map(|f| format!("{:#}", f.error)),
            sealed_after: outcome.as_ref().ok().map(|_| true),
            credentials: Vec::new(),
            profiles: Vec::new(),
            transcript_sha256: crate::provision::hash_hex(&hasher),
            detail: outcome.as_ref().ok().map(|r| {
                format!(
                    "{} (md5 {}): ATI9 {} -> {}",
                    r.url, r.md5, r.version_before, r.version_after
                )
            }),
        };
        if let Err(e) = ledger.finish_run(id, &end) {
            tracing::error!(error = %e, "the ledger could not record the end of the run");
        }
    }
    let report = outcome?;
    emit(args.json, &report, || fota_text(&report))
}

/// The update itself, on an open link: the module identified (for the ledger), then
/// [`fota`].
fn fota_run(
    args: &FotaArgs,
    mut at: AtClient,
    run: Option<(&sealcell_ledger::Ledger, sealcell_ledger::RunId)>,
    expected_md5: Option<String>,
    signature: Vec<u8>,
) -> Result<FotaReport, Failure> {
    if let Some((ledger, id)) = run {
        let facts =
            sealcell_host::provision::identify(&mut at).map_err(|e| client_failure(e, None))?;
        if let Err(e) = ledger.identify(id, &crate::station::ledger_facts(&facts)) {
            tracing::error!(error = %e, "the ledger could not record the module");
        }
    }
    let request = FotaRequest {
        url: args.url.clone(),
        signature,
        cert_name: args.cert_name.clone(),
        security_profile: args.security_profile,
        http_profile: args.http_profile,
        expected_md5,
        download_timeout: Duration::from_secs(args.download_timeout),
        install_timeout: Duration::from_secs(args.install_timeout),
    };
    fota(&mut at, &request).map_err(|e| {
        let hint = match &e {
            FotaError::NotSealed => {
                Some("seal it first (`sealcell provision` with a [seal] table)".into())
            }
            FotaError::Download {
                class: 3, code: 73, ..
            } => Some(
                "a TLS failure: check the security profile's root, hostname, pin and cipher".into(),
            ),
            _ => None,
        };
        let negative = e.is_negative();
        refusal(e, negative, hint)
    })
}

/// `--signature` given as the signature itself (base64 or hex of at least 64 bytes) rather than
/// a file: it is not a secret, and `--signature "$(cat sig.b64)"` is a natural thing to type.
fn literal_signature(arg: &std::path::Path) -> Option<Vec<u8>> {
    use sealcell_fw::encoding::{SignatureFormat, decode_signature};
    let text = arg.to_str()?.as_bytes();
    [SignatureFormat::Hex, SignatureFormat::Base64]
        .into_iter()
        .find_map(|f| decode_signature(text, f).ok())
        .filter(|sig| sig.len() >= 64)
        .map(|_| text.to_vec())
}

fn fota_text(r: &FotaReport) -> String {
    format!(
        "downloaded {} (HTTP {}), md5 {}{}\ninstalled: {}\nATI9: {} -> {}\n",
        r.url,
        r.http_status,
        r.md5,
        match r.md5_matches_file {
            Some(true) => " (matches --file)",
            _ => "",
        },
        r.progress
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        r.version_before,
        r.version_after
    )
}

fn file_md5(path: &std::path::Path) -> Result<String, Failure> {
    use md5::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path)
        .map_err(|e| Failure::usage(anyhow!("cannot read {}: {e}", path.display()), None))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut progress = crate::fw::progress(len);
    let mut done = 0u64;
    let mut hasher = md5::Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Failure::usage(anyhow!("cannot read {}: {e}", path.display()), None))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
        progress(done);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_that_would_silence_the_results_are_recognised() {
        for silencing in ["ATV0", "atv", "ATE0V0", "ATQ1", "AT&FQ1;+CGMI"] {
            assert!(silences_results(silencing), "{silencing}");
        }
        for fine in [
            "ATV1",
            "ATE0",
            "AT+USECMNG=0,0,\"V0\",5",
            "AT+CMEE=2;+CGMI",
            "ATI9",
        ] {
            assert!(!silences_results(fine), "{fine}");
        }
    }

    #[test]
    fn a_seal_on_the_command_line_is_redacted() {
        assert!(
            shown_line("AT+USECCCFG=0,1,\"x\"").is_none(),
            "a different command"
        );
        assert_eq!(
            shown_line("AT+USECCFG=0,1,\"my_pwd\""),
            Some("AT+USECCFG=0,1,\"<redacted>\"".into())
        );
        assert_eq!(
            shown_line("AT+CMEE=2;+usecCfg=0,1,\"p\""),
            Some("AT+CMEE=2;+usecCfg=0,1,\"<redacted>\"".into())
        );
        // The forms the module accepts as a seal too (spaces, leading zeros, noise before AT).
        for (line, shown) in [
            ("AT+USECCFG=00,1,\"pw2\"", "AT+USECCFG=00,1,\"<redacted>\""),
            (
                "AT+CMEE=2;+USECCFG=0 ,1,\"pw5\"",
                "AT+CMEE=2;+USECCFG=0 ,1,\"<redacted>\"",
            ),
            (
                "AT + USECCFG = 0 , 01 , \"a b\"",
                "AT + USECCFG = 0 , 01 , \"<redacted>\"",
            ),
            (
                "xx AT+USECCFG=0,1,\"p\"",
                "xx AT+USECCFG=0,1,\"<redacted>\"",
            ),
        ] {
            assert_eq!(shown_line(line).as_deref(), Some(shown), "{line}");
        }
        for not_a_seal in [
            "AT+USECCFG=0",
            "AT+USECCFG?",
            "AT+USECCFG=0,0",
            "AT+USECMNG=3",
        ] {
            assert!(shown_line(not_a_seal).is_none(), "{not_a_seal}");
        }
    }
}
