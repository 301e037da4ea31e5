//! `sealcell`: one binary, noun-verb subcommands (spec/cli.md). This file only parses
//! arguments, calls one library function per command, and maps errors to exit codes:
//! 0 success, 1 a negative answer, 2 usage, I/O or protocol error.
#![forbid(unsafe_code)]
// The doc comments of the argument structs are clap's --help texts, written for a terminal
// (`[?pin-source=file:PATH]`, `tcp:HOST:PORT`, `PLAN.<port>.log`), not rustdoc markdown.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

mod ctl;
mod demo;
mod fw;
mod host;
mod ledger;
mod modem;
mod provision;
mod record;
mod station;
mod tap;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// sealcell: u-blox TOBY-L2 "enforced security", on both sides of the serial line.
#[derive(Debug, Parser)]
#[command(name = "sealcell", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the emulated module, or inspect one offline (`sealcell modem status`).
    Modem(modem::ModemArgs),
    /// Firmware signatures: sign and verify packages (application note §4.3).
    Fw(fw::FwArgs),
    /// Send AT commands to a module (one-shot), or open an interactive AT terminal.
    At(host::AtArgs),
    /// Make a module match a provisioning plan: seal, credentials (MD5-checked), profiles.
    Provision(provision::ProvisionArgs),
    /// Signed firmware update over HTTPS: download (+UHTTPC 100), check, +UFWSINSTALL, reboot.
    Fota(host::FotaArgs),
    /// Inject a fault into an emulator started with --control (the test bench).
    Ctl(ctl::CtlArgs),
    /// Record what a host program and a real module say to each other, as a transcript.
    Tap(tap::TapArgs),
    /// Send a transcript's host side to a module and report every answer that differs.
    Replay(tap::ReplayArgs),
    /// Read the provisioning ledger: every run, by module (SQLite or PostgreSQL).
    Ledger(ledger::LedgerArgs),
    /// The whole application note, end to end, on this machine, with no set-up.
    Demo(demo::DemoArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) of sealcell.
    Man,
}

/// An error with the exit code it maps to.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) error: anyhow::Error,
    pub(crate) hint: Option<String>,
}

impl Failure {
    /// Usage, I/O or protocol error: exit 2.
    pub(crate) fn usage(error: impl Into<anyhow::Error>, hint: Option<String>) -> Failure {
        Failure {
            code: 2,
            error: error.into(),
            hint,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own story; the module's info logs would interleave with it.
    init_logging(if matches!(cli.command, Command::Demo(_)) {
        "warn"
    } else {
        "info"
    });
    let result = match cli.command {
        Command::Modem(args) => modem::run(args),
        Command::Fw(args) => fw::run(args),
        Command::At(args) => host::run_at(args),
        Command::Provision(args) => provision::run_provision(args),
        Command::Ledger(args) => ledger::run(args),
        Command::Fota(args) => host::run_fota(args),
        Command::Ctl(args) => ctl::run(args),
        Command::Tap(args) => tap::run_tap(args),
        Command::Replay(args) => tap::run_replay(args),
        Command::Demo(args) => demo::run(args),
        Command::Completions { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "sealcell", &mut text);
            print_bytes(&text)
        }
        Command::Man => {
            let mut text = Vec::new();
            match clap_mangen::Man::new(Cli::command()).render(&mut text) {
                Ok(()) => print_bytes(&text),
                Err(e) => Err(Failure::usage(e, None)),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {:#}", f.error);
            if let Some(hint) = f.hint {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(f.code)
        }
    }
}

/// Reads a file of at most `max` bytes (`what` names it in the error: `"signature file"`), so
/// a wrong path (`/dev/zero`, a disk image) is refused instead of read to the end. The caps are
/// [`sealcell_host::bounded_read`]'s.
pub(crate) fn read_capped(
    path: &std::path::Path,
    max: u64,
    what: &str,
) -> Result<Vec<u8>, Failure> {
    sealcell_host::bounded_read::read_capped(path, max, what).map_err(|e| Failure::usage(e, None))
}

/// [`read_capped`] for a text file that is not a secret (an allowlist).
pub(crate) fn read_capped_text(
    path: &std::path::Path,
    max: u64,
    what: &str,
) -> Result<String, Failure> {
    sealcell_host::bounded_read::read_capped_text(path, max, what)
        .map_err(|e| Failure::usage(e, None))
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
pub(crate) fn print_bytes(bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write;
    match std::io::stdout().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::usage(e, None)),
        _ => Ok(()),
    }
}

fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
