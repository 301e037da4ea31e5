//! `sealcell tap` and `sealcell replay` (cli.md, "A test bench"): record what a host program
//! and a real module say to each other as a golden transcript, and send a transcript's host
//! side to any module to see what it answers differently. How a user with a real TOBY-L2
//! checks the emulator against it.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use sealcell_host::port::{self, PortSpec};
use sealcell_host::replay;
use sealcell_host::tap::{Line, Recorder};

use crate::Failure;

/// How long one read of the module waits, so the host's bytes are never held longer.
const POLL: Duration = Duration::from_millis(5);

/// The largest transcript `sealcell replay` reads.
///
/// # Security
/// A wrong path (a disk image) is refused, not read to the end.
const MAX_TRANSCRIPT: u64 = 64 << 20;

/// Options of `sealcell tap`.
#[derive(Debug, Args)]
pub(crate) struct TapArgs {
    /// The real module: /dev/ttyACM0[@BAUD], a PTY path, or tcp:HOST:PORT.
    #[arg(long, value_name = "PORT")]
    port: PortSpec,
    /// The pseudo-terminal the host program opens (a symlink to it is made here).
    #[arg(long, value_name = "LINK")]
    pty: PathBuf,
    /// Where the transcript goes (default: standard output).
    #[arg(long, value_name = "FILE")]
    transcript: Option<PathBuf>,
}

/// Options of `sealcell replay`.
#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// The transcript (`sealcell tap`'s, or one of tests/transcripts/ without `@` lines).
    transcript: PathBuf,
    /// The module to replay it to.
    #[arg(long, value_name = "PORT")]
    port: PortSpec,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs `sealcell tap` until the module's link ends (or the process is stopped: every line is
/// written as it is complete).
pub(crate) fn run_tap(args: TapArgs) -> Result<(), Failure> {
    let mut module = port::open(&args.port)
        .with_context(|| format!("cannot open {}", args.port))
        .map_err(|e| Failure::usage(e, None))?;
    module
        .set_read_timeout(POLL)
        .map_err(|e| Failure::usage(e, None))?;
    // The slave stays open here (hosts may come and go).
    let (master, _slave, _) = sealcell_serve::pty::open_linked(&args.pty)
        .with_context(|| format!("cannot open a pseudo-terminal at {}", args.pty.display()))
        .map_err(|e| Failure::usage(e, None))?;
    let mut out: Box<dyn Write> = match &args.transcript {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))
                .map_err(|e| Failure::usage(e, None))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    eprintln!("sealcell: tapping {} on {}", args.port, args.pty.display());
    let mut host = std::fs::File::from(master);
    let mut recorder = Recorder::new();
    let mut buf = vec![0u8; 16 * 1024];
    let result = loop {
        // The host: whatever it has sent (the master is non-blocking).
        match host.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => {
                if let Err(e) = module.write_all(&buf[..n]).and_then(|()| module.flush()) {
                    break Err(e);
                }
                write_lines(&mut out, recorder.host(&buf[..n]));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            // No host has the terminal open (EIO): wait for one.
            Err(e) if e.raw_os_error() == Some(nix::libc::EIO) => {}
            Err(e) => break Err(e),
        }
        // The module: what it said within the poll.
        match module.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                // Only what the host got is recorded.
                let given = write_to_host(&mut host, &buf[..n]);
                write_lines(&mut out, recorder.module(&buf[..given]));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => break Err(e),
        }
    };
    write_lines(&mut out, recorder.finish());
    let _ = std::fs::remove_file(&args.pty);
    result
        .context("the module's link ended")
        .map_err(|e| Failure::usage(e, None))
}

fn write_lines(out: &mut dyn Write, lines: Vec<Line>) {
    for line in lines {
        let _ = writeln!(out, "{}", line.render());
    }
    let _ = out.flush();
}

/// Writes to the (non-blocking) master; returns how much went. A host that does not read
/// loses what does not fit within a moment, as on a UART without flow control.
fn write_to_host(host: &mut std::fs::File, bytes: &[u8]) -> usize {
    let mut given = 0;
    let mut tries = 0;
    while given < bytes.len() && tries < 20 {
        match host.write(&bytes[given..]) {
            Ok(n) => given += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => break,
        }
    }
    given
}

/// Runs `sealcell replay`: exit 0 when every answer matches, 1 when one differs, 2 when it
/// could not run.
pub(crate) fn run_replay(args: ReplayArgs) -> Result<(), Failure> {
    let text = crate::read_capped_text(&args.transcript, MAX_TRANSCRIPT, "transcript")?;
    let steps = replay::parse(&text)
        .with_context(|| format!("{}", args.transcript.display()))
        .map_err(|e| Failure::usage(e, None))?;
    let mut link = port::open(&args.port)
        .with_context(|| format!("cannot open {}", args.port))
        .map_err(|e| Failure::usage(e, None))?;
    let report = replay::run(&steps, link.as_mut()).map_err(|e| Failure::usage(e, None))?;
    if args.json {
        let diffs: Vec<_> = report
            .differences
            .iter()
            .map(
                |d| serde_json::json!({"line": d.line, "expected": d.expected, "actual": d.actual}),
            )
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "sent": report.sent,
                "compared": report.compared,
                "skipped": report.skipped,
                "differences": diffs,
            })
        );
    } else {
        for d in &report.differences {
            println!("line {}: expected < {}", d.line, d.expected);
            println!(
                "{:>width$}  got < {}",
                "",
                d.actual,
                width = d.line.to_string().len() + 5
            );
        }
        println!(
            "{} sent, {} answers compared, {} not compared, {} differ",
            report.sent,
            report.compared,
            report.skipped,
            report.differences.len()
        );
    }
    if report.differences.is_empty() {
        Ok(())
    } else {
        Err(Failure {
            code: 1,
            error: anyhow::anyhow!("{} of the answers differ", report.differences.len()),
            hint: None,
        })
    }
}
