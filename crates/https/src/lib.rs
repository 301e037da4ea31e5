//! The emulated module's TLS client on OpenSSL (architecture.md, "Why OpenSSL"): a `+USECPRF`
//! security profile becomes a TLS 1.2 connection that
//!
//! - trusts only the profile's root certificate (op 3) and applies its validation level (op 0):
//!   0 none, 1 the chain to the root, 2 and the hostname (op 4), 3 and the validity dates;
//! - offers exactly the configured cipher suite (op 2), or, when automatic, a modern list that
//!   includes the application note's three (ECDHE-ECDSA-AES128-GCM-SHA256,
//!   ECDHE-RSA-AES128-GCM-SHA256, ECDHE-ECDSA-AES128-SHA256);
//! - is capped at TLS 1.2 (TOBY-L2), with the profile's minimum (op 1);
//! - sends SNI (op 10) and presents a client certificate and key (ops 5, 6), given as DER decrypted
//!   in memory by the caller;
//! - checks the pinned server certificate (op 12) at level 0 (same public key), 1 (same
//!   SubjectPublicKeyInfo bytes) or 2 (same certificate bytes) after the handshake.
//!
//! [`tls::ssl`] builds the client side of one connection (an `openssl::ssl::Ssl`) for any
//! transport, [`tls::check_pin`] checks the pin after the handshake; [`connect`] runs both over
//! a blocking stream. The emulator's event-driven edge (`sealcell-serve`) drives the same `Ssl`
//! over an async socket. HTTP itself is not here: the module formats requests and parses
//! responses sans-I/O (`sealcell_modem::http::wire`).
//!
//! [`loopback`] is the other side, for the demo and tests: a small HTTPS file server on
//! 127.0.0.1 with a generated root CA and server certificate.
//!
//! This is the only crate of the workspace that links OpenSSL.
#![forbid(unsafe_code)]

pub mod loopback;
pub mod tls;

pub use tls::{
    MinTlsVersion, PinLevel, TlsError, TlsProfile, ValidationLevel, check_pin, connect, ssl,
};
