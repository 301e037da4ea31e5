//! The DTE side of sealcell: what a host needs to drive a TOBY-L2 — real or emulated — through
//! the application note's enforced security.
//!
//! - [`port`]: where the module is (`/dev/ttyUSB0@115200`, a PTY path, `tcp:HOST:PORT`) and the
//!   byte link to it.
//! - [`client`]: the AT client: one command at a time, tolerant of echo, `+CME ERROR` decoded,
//!   the `>` prompt answered with the payload, URCs collected while waiting, a timeout per
//!   command, every exchange offered to a [`transcript`] with the secrets redacted.
//! - [`plan`] and [`provision`]: the provisioning plan (spec/cli.md) and the workflow that makes
//!   a module match it — idempotent, convergent after an interruption, never printing a secret.
//! - [`fota`]: the signed firmware update of the application note §4: HTTPS download with
//!   `+UHTTPC=...,100`, `+UFWSINSTALL`, the install URCs and the reboot.
//!
//! ```no_run
//! use sealcell_host::client::{AtClient, Command};
//! use sealcell_host::port::PortSpec;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let port: PortSpec = "tcp:127.0.0.1:5555".parse()?;
//! let mut at = AtClient::open(&port, Default::default())?;
//! let info = at.run(&Command::new("ATI9"))?.into_ok()?;
//! println!("{}", info.lines.join("\n"));
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod bounded_read;
pub mod client;
pub mod fota;
pub mod mux;
pub mod plan;
pub mod port;
pub mod provision;
pub mod replay;
pub mod tap;
pub mod transcript;
