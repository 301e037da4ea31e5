//! `sealcell ctl`: the command-line client of the test bench's control socket
//! (`sealcell modem --control`; docs/bench.md). One fault a run: it sends
//! `{"fault": NAME, "args": [...]}` and prints the answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::Failure;

/// How long `sealcell ctl` waits for the emulator's answer (a reboot reopens the data
/// directory; the rest answer at once).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Options of `sealcell ctl`.
#[derive(Debug, Args)]
pub(crate) struct CtlArgs {
    /// The emulator's control socket.
    #[arg(long, value_name = "tcp:HOST:PORT", value_parser = crate::modem::parse_listen)]
    control: String,
    /// Print the answer as the JSON object it is.
    #[arg(long)]
    json: bool,
    /// The fault: power-loss, power-loss-at-write N, reboot, detach, attach, signal RSRP,
    /// urc TEXT, tls-fail, dns-fail, install-fail CODE, cut-after BYTES, throttle KBIT/S,
    /// latency MS, link-drop N, link-corrupt N, link-stall MS, clear, status (docs/bench.md).
    fault: String,
    /// Its arguments.
    #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
    args: Vec<String>,
}

/// Runs `sealcell ctl`: exit 0 when the fault was taken, 1 when the emulator refused it, 2 when
/// it could not be asked.
pub(crate) fn run(args: CtlArgs) -> Result<(), Failure> {
    // HOST:PORT: `parse_listen` took the `tcp:` off and checked the rest.
    let answer = ask(&args.control, &args.fault, &args.args).map_err(|e| {
        Failure::usage(
            e,
            Some("is the emulator running with --control on that address?".into()),
        )
    })?;
    let value: serde_json::Value = serde_json::from_str(&answer)
        .with_context(|| format!("the control socket answered {answer:?}"))
        .map_err(|e| Failure::usage(e, None))?;
    if args.json {
        println!("{}", answer.trim_end());
    }
    if value["ok"] == true {
        if !args.json {
            let list = |key: &str| {
                value[key]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default()
            };
            println!("{}", value["done"].as_str().unwrap_or("done"));
            if args.fault == "status" {
                println!("armed: {}", list("armed"));
                println!("fired: {}", list("fired"));
                if let Some(seed) = value["seed"].as_u64() {
                    println!("seed: {seed}");
                }
                if let Some(timing) = value["timing"].as_str() {
                    println!("timing: {timing}");
                }
            }
        }
        return Ok(());
    }
    let why = value["error"].as_str().unwrap_or("refused").to_string();
    Err(Failure {
        code: 1,
        error: anyhow::anyhow!("{why}"),
        hint: None,
    })
}

fn ask(addr: &str, fault: &str, args: &[String]) -> anyhow::Result<String> {
    let mut stream =
        TcpStream::connect(addr).with_context(|| format!("cannot connect to tcp:{addr}"))?;
    stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    let mut line = serde_json::json!({ "fault": fault, "args": args }).to_string();
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(stream.take(1 << 20))
        .read_line(&mut answer)
        .context("no answer from the control socket")?;
    anyhow::ensure!(
        !answer.is_empty(),
        "the control socket closed without answering"
    );
    Ok(answer)
}
