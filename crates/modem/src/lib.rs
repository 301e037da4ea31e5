//! The emulated u-blox TOBY-L2 / MPC1-L2 module.
//!
//! The engine is sans-I/O: a [`Channel`] takes the bytes a host sent and the time ([`Now`]),
//! and returns the module's answer; it never touches a socket, starts a thread or reads a
//! clock. Long work leaves the engine as a [`job`]: the network through a
//! [`job::Connector`] the transport layer supplies, disk and CPU work off the module lock. The
//! module's state lives in a data directory ([`datadir`]) and every change is written
//! atomically through a [`sealcell_store::Storage`] before the command answers. The
//! transports (TCP, a PTY, stdio) are `sealcell-serve`'s.
//!
//! ```
//! use std::time::Instant;
//! use sealcell_modem::{Channel, Module, ModuleConfig, Now};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let now = Now::virtual_start(Instant::now());
//! let mut module = Module::open(ModuleConfig::new(dir.path()), now).unwrap();
//! let mut channel = Channel::new(&mut module);
//! let mut out = Vec::new();
//! channel.feed(&mut module, b"AT+CGMI\r", now, &mut out);
//! assert_eq!(out, b"AT+CGMI\r\r\nu-blox\r\n\r\nOK\r\n");
//! ```
#![forbid(unsafe_code)]

mod channel;
pub mod clock;
mod cme_map;
pub mod command;
pub mod datadir;
pub mod drive;
pub mod faults;
pub mod firmware;
pub mod fs;
pub mod fuzzing;
pub mod http;
pub mod identity;
mod ids;
pub mod job;
pub mod link;
mod module;
pub mod nvm;
pub mod profiles;
pub mod radio;
pub mod scenario;
pub mod snapshot;
pub mod socket;
pub mod status;
pub mod time;
pub mod timing;

pub use channel::{
    Channel, MAX_PENDING_INPUT, MIN_OUTPUT_LIMIT, MODULE_OUTPUT_BUDGET, OUTPUT_LIMIT, output_limit,
};
pub use link::{LINK_HOLD_INPUT, Link};
pub use module::{ChannelId, MAX_QUEUED_URCS, MappedStore, Module, ModuleConfig, Waker};
pub use time::Now;
