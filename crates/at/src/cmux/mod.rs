//! 3GPP TS 27.010 multiplexing, basic option with UIH frames, as `AT+CMUX=0,0` starts it
//! (at-contract §10): several AT channels over one serial link. Sans-I/O: bytes in, events
//! and bytes out, for the module (responder) and the host tools (initiator) alike.
//!
//! | Need | Use |
//! |---|---|
//! | One frame's fields, its FCS, its bytes | [`frame::Frame`], [`frame::fcs`] |
//! | Frames out of a byte stream split anywhere, bad ones counted | [`decoder::Decoder`] |
//! | DLCI 0's messages (CLD, MSC, Test, FCon/FCoff, PN, NSC) | [`control::Message`] |
//! | Either end of the link: open/close DLCIs, data each way, control answered | [`mux::Multiplexer`] |
//!
//! ```
//! use sealcell_at::cmux::mux::{Config, Event, Multiplexer, Role};
//! let mut module = Multiplexer::new(Config { role: Role::Responder, n1: 31, max_dlci: 5 });
//! let mut answer = Vec::new();
//! // The host opens the control channel: SABM on DLCI 0.
//! let mut input: &[u8] = &[0xF9, 0x03, 0x3F, 0x01, 0x1C, 0xF9];
//! assert_eq!(module.receive(&mut input, &mut answer), Some(Event::Opened(0)));
//! assert_eq!(answer, [0xF9, 0x03, 0x73, 0x01, 0xD7, 0xF9]); // UA
//! ```

pub mod control;
pub mod decoder;
pub mod frame;
pub mod mux;

#[cfg(test)]
mod tests;
