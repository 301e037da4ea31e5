//! The AT wire vocabulary of sealcell, shared by the emulated module (DCE) and the host tools
//! (DTE). Everything here is sans-I/O: it takes bytes and returns values; sockets, PTYs and
//! clocks belong to the caller.
//!
//! | Need | Use |
//! |---|---|
//! | Split the host's byte stream into command lines | [`line::LineAssembler`] |
//! | Split a line into commands (`AT+A;+B=1`) | [`syntax::parse_line`] |
//! | Read a set command's arguments | [`args::Args::reader`] |
//! | Write responses honouring `ATE`/`ATV`/`ATQ`/`AT+CMEE` | [`format::ChannelSettings`] |
//! | Count a raw payload after `>` with its timeout | [`payload::PayloadReceiver`] |
//! | The one `+CME ERROR` table | [`cme::CmeError`] |
//! | Build or parse `+USECPRF`, `+USECMNG`, `+USECCFG`, `+UHTTP...` lines as types | [`commands`] |
//! | Digest the module's output on the host side | [`dte::Digester`] |
//!
//! ```
//! use sealcell_at::syntax::{parse_line, Line, Form};
//! let Line::Commands(line) = parse_line(b"AT+CMEE=2;+CGMI").unwrap() else { unreachable!() };
//! let names: Vec<String> = line.commands().map(|c| c.unwrap().name.to_string()).collect();
//! assert_eq!(names, ["+CMEE", "+CGMI"]);
//! ```
#![forbid(unsafe_code)]

pub mod args;
pub mod cme;
pub mod cmux;
pub mod commands;
pub mod dte;
pub mod escape;
pub mod format;
pub mod fuzzing;
pub mod line;
pub mod payload;
pub mod syntax;
pub mod xmodem;

pub use cme::CmeError;
