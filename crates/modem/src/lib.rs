//! The emulated u-blox TOBY-L2 / MPC1-L2 module.
//!
//! The engine is sans-I/O: a [`Channel`] takes the bytes a host sent and the current time, and
//! returns the module's answer; it never touches a socket. The module's state lives in a data
//! directory ([`datadir`]) and every change is written atomically through a
//! [`sealcell_store::Storage`] before the command answers. [`serve`] connects channels to TCP, a PTY or stdio.
//!
//! ```
//! use std::time::Instant;
//! use sealcell_modem::{Channel, Module, ModuleConfig};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut module = Module::open(ModuleConfig::new(dir.path())).unwrap();
//! let mut channel = Channel::new(&mut module);
//! let mut out = Vec::new();
//! channel.feed(&mut module, b"AT+CGMI\r", Instant::now(), &mut out);
//! assert_eq!(out, b"AT+CGMI\r\r\nu-blox\r\n\r\nOK\r\n");
//! ```
#![forbid(unsafe_code)]

mod channel;
pub mod clock;
pub mod command;
pub mod datadir;
pub mod firmware;
pub mod fs;
pub mod fuzzing;
pub mod http_client;
pub mod identity;
mod module;
pub mod nvm;
pub mod profiles;
pub mod radio;
pub mod serve;
pub mod status;

pub use channel::Channel;
pub use module::{ChannelId, MAX_QUEUED_URCS, Module, ModuleConfig, now_unix};
