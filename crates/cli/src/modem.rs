//! `sealcell modem`, `sealcell modem status`, and `sealcell modem snapshot` / `restore`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use sealcell_modem::identity::{Imei, Model};
use sealcell_modem::{Module, ModuleConfig, status};
use sealcell_serve::{Emulator, system_now};

use crate::Failure;

/// Options of `sealcell modem`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ModemArgs {
    #[command(subcommand)]
    command: Option<ModemCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum ModemCommand {
    /// Inspect a module's data directory offline: identity, seal, credentials, firmware, files.
    Status(StatusArgs),
    /// Write the whole module (device key and identity included) to one file, to rehearse a
    /// seal and undo it (emulator only). Take it of a stopped module. The file holds the
    /// device key: keep it as you keep the data directory.
    Snapshot(SnapshotArgs),
    /// Make a data directory the module of a snapshot again (refuses a non-empty directory
    /// without --force; never merges).
    Restore(RestoreArgs),
}

/// Options of `sealcell modem snapshot`.
#[derive(Debug, Args)]
struct SnapshotArgs {
    /// The module's data directory.
    #[arg(long, default_value = "./sealcell-module")]
    data: PathBuf,
    /// The snapshot file to write (replaced if it exists).
    file: PathBuf,
}

/// Options of `sealcell modem restore`.
#[derive(Debug, Args)]
struct RestoreArgs {
    /// The data directory to restore into.
    #[arg(long, default_value = "./sealcell-module")]
    data: PathBuf,
    /// The snapshot file.
    file: PathBuf,
    /// Replace the module already in the directory.
    #[arg(long)]
    force: bool,
}

/// Options of `sealcell modem status`.
#[derive(Debug, Args)]
struct StatusArgs {
    /// The module's data directory.
    #[arg(long, default_value = "./sealcell-module")]
    data: PathBuf,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    json: bool,
}

/// Options of the emulator itself.
#[derive(Debug, Args)]
struct RunArgs {
    /// The module's data directory; a new module is made there on first start.
    #[arg(long, default_value = "./sealcell-module")]
    data: PathBuf,
    /// Listen for AT over TCP (repeatable). Default tcp:127.0.0.1:5555 when neither --pty nor
    /// --stdio is given.
    #[arg(long, value_name = "tcp:HOST:PORT", value_parser = parse_listen)]
    listen: Vec<String>,
    /// Open a pseudo-terminal and keep a symlink to it at LINK (for picocom, minicom, pyserial).
    #[arg(long, value_name = "LINK")]
    pty: Option<PathBuf>,
    /// Speak AT on stdin/stdout (logs stay on stderr); end of input stops the emulator.
    #[arg(long)]
    stdio: bool,
    /// Model of a new module: TOBY-L200, TOBY-L201, TOBY-L210, TOBY-L280 or MPC1-L201.
    #[arg(long, value_name = "NAME")]
    model: Option<Model>,
    /// IMEI of a new module (15 Luhn-valid digits, or 14 and the check digit is added).
    #[arg(long, value_name = "DIGITS")]
    imei: Option<Imei>,
    /// Capacity of the module file system in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = sealcell_modem::fs::DEFAULT_CAPACITY)]
    fs_capacity: u64,
    /// Seconds without a payload byte after the `>` prompt before the command fails.
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    payload_timeout: f64,
    /// Open the test bench's control socket (loopback only): faults on demand, with
    /// `sealcell ctl` (docs/bench.md).
    #[arg(long, value_name = "tcp:HOST:PORT", value_parser = parse_listen)]
    control: Option<String>,
    /// Faults armed by triggers, from a TOML file (docs/bench.md, "Scenarios").
    #[arg(long, value_name = "FILE.toml")]
    scenario: Option<PathBuf>,
    /// The seed of the scenario's random choices (overrides the file's).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// How long things take: `fast` (as fast as the machine) or `toby-l2` (a real module's
    /// answer latencies, registration, boot, install, LTE Cat 4 rates and 115200 baud on a
    /// pseudo-terminal; docs/bench.md, "Real-module timing").
    #[arg(long, value_name = "fast|toby-l2", default_value = "fast")]
    timing: sealcell_modem::timing::Profile,
}

pub(crate) fn parse_listen(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("tcp:")
        .ok_or_else(|| format!("{s:?} must look like tcp:HOST:PORT"))?;
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(rest.to_string())
        }
        _ => Err(format!(
            "{s:?} must look like tcp:HOST:PORT, e.g. tcp:127.0.0.1:5555"
        )),
    }
}

pub(crate) fn run(args: ModemArgs) -> Result<(), Failure> {
    match args.command {
        Some(ModemCommand::Status(s)) => status(s),
        Some(ModemCommand::Snapshot(s)) => snapshot(s),
        Some(ModemCommand::Restore(r)) => restore(r),
        None => emulate(args.run),
    }
}

fn status(args: StatusArgs) -> Result<(), Failure> {
    let report = status::gather(&args.data).map_err(|e| {
        let hint = matches!(e, status::StatusError::NoModule(_)).then(|| {
            "start one with `sealcell modem --data DIR`, or pass the right --data".to_string()
        });
        Failure::usage(e, hint)
    })?;
    if args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| Failure::usage(e, None))?;
        println!("{text}");
    } else {
        print!("{}", report.render());
    }
    Ok(())
}

fn snapshot(args: SnapshotArgs) -> Result<(), Failure> {
    let summary = sealcell_modem::snapshot::snapshot(&args.data, &args.file).map_err(|e| {
        let hint = matches!(e, sealcell_modem::snapshot::SnapshotError::NoModule(_))
            .then(|| "pass the module's data directory with --data".to_string());
        Failure::usage(e, hint)
    })?;
    println!(
        "snapshot of {} ({}): {} files, {} bytes -> {}",
        args.data.display(),
        describe(&args.data),
        summary.files,
        summary.bytes,
        args.file.display()
    );
    Ok(())
}

fn restore(args: RestoreArgs) -> Result<(), Failure> {
    let summary =
        sealcell_modem::snapshot::restore(&args.file, &args.data, args.force).map_err(|e| {
            let hint =
                matches!(e, sealcell_modem::snapshot::SnapshotError::NotEmpty(_)).then(|| {
                    "stop the module first; --force replaces the module in that directory".into()
                });
            Failure::usage(e, hint)
        })?;
    println!(
        "restored {} ({}): {} files, {} bytes from {}",
        args.data.display(),
        describe(&args.data),
        summary.files,
        summary.bytes,
        args.file.display()
    );
    Ok(())
}

/// "IMEI ..., sealed" or "unsealed", from the module's status.
fn describe(dir: &std::path::Path) -> String {
    match status::gather(dir) {
        Ok(s) => format!(
            "IMEI {}, {}",
            s.imei,
            if s.sealed { "sealed" } else { "not sealed" }
        ),
        Err(e) => format!("status unreadable: {e}"),
    }
}

fn emulate(args: RunArgs) -> Result<(), Failure> {
    if !(args.payload_timeout.is_finite()
        && args.payload_timeout > 0.0
        && args.payload_timeout <= 3600.0)
    {
        return Err(Failure::usage(
            anyhow::anyhow!(
                "--payload-timeout {} is not between 0 and 3600 seconds",
                args.payload_timeout
            ),
            None,
        ));
    }
    let mut config = ModuleConfig::new(&args.data);
    config.model = args.model;
    config.imei = args.imei;
    config.fs_capacity = args.fs_capacity;
    config.payload_timeout = Duration::from_secs_f64(args.payload_timeout);
    config.timing = args.timing;
    let mut module = Module::open(config, system_now())
        .with_context(|| format!("cannot open the module in {}", args.data.display()))
        .map_err(|e| Failure::usage(e, None))?;
    if args.timing != sealcell_modem::timing::Profile::Fast {
        eprintln!(
            "sealcell: timing {} (docs/bench.md, \"Real-module timing\")",
            args.timing
        );
    }
    if let Some(path) = &args.scenario {
        let text = crate::read_capped_text(path, 1 << 20, "scenario file")?;
        let scenario = sealcell_modem::scenario::Scenario::parse(&text)
            .with_context(|| format!("{}", path.display()))
            .map_err(|e| Failure::usage(e, Some("the shape is in docs/bench.md".into())))?;
        eprintln!(
            "sealcell: scenario {} ({} faults)",
            path.display(),
            scenario.faults.len()
        );
        module.load_scenario(scenario, args.seed);
    } else if let Some(seed) = args.seed {
        module.set_seed(seed);
    }
    let id = module.identity().clone();
    let mut emulator = Emulator::new(module)
        .context("cannot start the emulator's runtime")
        .map_err(|e| Failure::usage(e, None))?;
    // SIGINT and SIGTERM stop every channel and job at once, then `wait` returns.
    emulator
        .stop_on_signals()
        .context("cannot handle SIGINT and SIGTERM")
        .map_err(|e| Failure::usage(e, None))?;
    let mut listen = args.listen;
    if listen.is_empty() && args.pty.is_none() && !args.stdio {
        listen.push("127.0.0.1:5555".to_string());
    }
    for addr in &listen {
        let local = emulator
            .listen_tcp(addr)
            .with_context(|| format!("cannot listen on tcp:{addr}"))
            .map_err(|e| {
                Failure::usage(
                    e,
                    Some("another emulator may hold the port; pick another with --listen".into()),
                )
            })?;
        eprintln!(
            "sealcell: {} IMEI {} listening on tcp:{local}",
            id.model, id.imei
        );
    }
    if let Some(addr) = &args.control {
        let local = emulator
            .listen_control(addr)
            .with_context(|| format!("cannot open the control socket on tcp:{addr}"))
            .map_err(|e| Failure::usage(e, None))?;
        eprintln!("sealcell: control socket on tcp:{local}");
    }
    if let Some(link) = &args.pty {
        let slave = emulator
            .open_pty(link)
            .with_context(|| format!("cannot open a pseudo-terminal at {}", link.display()))
            .map_err(|e| Failure::usage(e, None))?;
        eprintln!(
            "sealcell: {} IMEI {} on {} -> {}",
            id.model,
            id.imei,
            link.display(),
            slave.display()
        );
    }
    if args.stdio {
        emulator
            .attach_stdio(true)
            .map_err(|e| Failure::usage(e, None))?;
    }
    emulator.wait();
    tracing::info!("stopped");
    Ok(())
}
