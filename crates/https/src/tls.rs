//! Profile -> TLS connection.
//!
//! [`ssl`] turns a profile into an OpenSSL `Ssl` ready for its handshake, whatever drives the
//! socket; [`check_pin`] is the check after it. [`connect`] is both over a blocking stream.

use std::io::{Read, Write};

use openssl::pkey::PKey;
use openssl::ssl::{
    ErrorCode, HandshakeError, Ssl, SslConnector, SslMethod, SslRef, SslStream, SslVerifyMode,
    SslVersion,
};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509VerifyResult};
pub use sealcell_at::commands::usecprf::{MinTlsVersion, PinLevel, ValidationLevel};

/// What a connection needs from a security profile, with the credentials already taken out of
/// the store (DER, decrypted in memory only).
#[derive(Clone, Copy, Debug, Default)]
pub struct TlsProfile<'a> {
    /// op 0: none, root CA, + hostname, + validity dates.
    pub validation: ValidationLevel,
    /// op 1: the minimum version.
    pub min_tls: MinTlsVersion,
    /// op 2: the IANA code of the one suite to offer; `None` for automatic.
    pub cipher: Option<u16>,
    /// op 3: the trusted root certificate.
    pub root_der: Option<&'a [u8]>,
    /// op 4: the expected server hostname (level 2 and 3); empty means the host connected to.
    pub hostname: &'a str,
    /// op 10: the server name to indicate; empty sends none.
    pub sni: &'a str,
    /// op 5: the client certificate.
    pub client_cert_der: Option<&'a [u8]>,
    /// op 6: the client private key (PKCS#1, SEC1 or PKCS#8 DER).
    pub client_key_der: Option<&'a [u8]>,
    /// op 12: the pinned server certificate and the level.
    pub pin: Option<(&'a [u8], PinLevel)>,
    /// The module clock, seconds since the Unix epoch: the time certificate dates are checked
    /// against (level 3). `None` uses the host's clock.
    pub now_unix: Option<i64>,
}

/// Why a TLS connection failed. Every variant is reported as `+UHTTPER: <p>,3,73` on the wire.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The profile cannot be turned into a connection (an unknown suite, a bad credential).
    #[error("the security profile cannot be used: {0}")]
    Profile(String),
    /// The handshake failed (no common suite or version, untrusted root, hostname, dates,
    /// client certificate refused, ...).
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
    /// The server's certificate is not the pinned one.
    #[error("the server certificate does not match the pinned certificate (level {0})")]
    PinMismatch(u8),
}

/// OpenSSL's name for an IANA cipher suite code (TLS 1.2 suites the module knows).
pub fn openssl_suite_name(code: u16) -> Option<&'static str> {
    Some(match code {
        0xC02B => "ECDHE-ECDSA-AES128-GCM-SHA256",
        0xC02F => "ECDHE-RSA-AES128-GCM-SHA256",
        0xC023 => "ECDHE-ECDSA-AES128-SHA256",
        0xC027 => "ECDHE-RSA-AES128-SHA256",
        0xC02C => "ECDHE-ECDSA-AES256-GCM-SHA384",
        0xC030 => "ECDHE-RSA-AES256-GCM-SHA384",
        0xC024 => "ECDHE-ECDSA-AES256-SHA384",
        0xC028 => "ECDHE-RSA-AES256-SHA384",
        0xC009 => "ECDHE-ECDSA-AES128-SHA",
        0xC013 => "ECDHE-RSA-AES128-SHA",
        0xCCA8 => "ECDHE-RSA-CHACHA20-POLY1305",
        0xCCA9 => "ECDHE-ECDSA-CHACHA20-POLY1305",
        0x002F => "AES128-SHA",
        0x003C => "AES128-SHA256",
        0x0035 => "AES256-SHA",
        0x003D => "AES256-SHA256",
        0x009C => "AES128-GCM-SHA256",
        0x009D => "AES256-GCM-SHA384",
        0x000A => "DES-CBC3-SHA",
        0x008C => "PSK-AES128-CBC-SHA",
        0x008D => "PSK-AES256-CBC-SHA",
        0x00AE => "PSK-AES128-CBC-SHA256",
        0x00AF => "PSK-AES256-CBC-SHA384",
        0x0094 => "RSA-PSK-AES128-CBC-SHA",
        0x0095 => "RSA-PSK-AES256-CBC-SHA",
        0x00B6 => "RSA-PSK-AES128-CBC-SHA256",
        0x00B7 => "RSA-PSK-AES256-CBC-SHA384",
        _ => return None,
    })
}

/// The automatic list: forward-secret AEAD first, the application note's three included.
pub const AUTOMATIC_SUITES: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:\
ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256";

fn profile_err<E: std::fmt::Display>(e: E) -> TlsError {
    TlsError::Profile(e.to_string())
}

// X509_V_ERR_CERT_NOT_YET_VALID and X509_V_ERR_CERT_HAS_EXPIRED.
const DATE_ERRORS: [i32; 2] = [9, 10];

/// The client side of one connection as `profile` says, to `host` (the name or address
/// connected to): the connector (versions, suites, trust, validation callback, client
/// certificate and key) and this connection's SNI, expected hostname and verification time.
/// Run the handshake on it with any transport: [`connect`] blocking, or an async `SslStream`;
/// then call [`check_pin`] on the result.
pub fn ssl(profile: &TlsProfile<'_>, host: &str) -> Result<Ssl, TlsError> {
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(profile_err)?;
    b.set_max_proto_version(Some(SslVersion::TLS1_2))
        .map_err(profile_err)?;
    let min = match profile.min_tls {
        MinTlsVersion::Tls1_0 => Some(SslVersion::TLS1),
        MinTlsVersion::Tls1_1 => Some(SslVersion::TLS1_1),
        MinTlsVersion::Tls1_2 => Some(SslVersion::TLS1_2),
        MinTlsVersion::Any => None,
    };
    b.set_min_proto_version(min).map_err(profile_err)?;
    let suites = match profile.cipher {
        None => AUTOMATIC_SUITES.to_string(),
        Some(code) => openssl_suite_name(code)
            .ok_or_else(|| {
                TlsError::Profile(format!("cipher suite 0x{code:04X} is not supported"))
            })?
            .to_string(),
    };
    b.set_cipher_list(&suites).map_err(profile_err)?;

    // Trust only the profile's root.
    let mut store = X509StoreBuilder::new().map_err(profile_err)?;
    if let Some(der) = profile.root_der {
        store
            .add_cert(X509::from_der(der).map_err(profile_err)?)
            .map_err(profile_err)?;
    }
    b.set_cert_store(store.build());
    if profile.validation == ValidationLevel::NoValidation {
        b.set_verify(SslVerifyMode::NONE);
    } else {
        let check_dates = profile.validation == ValidationLevel::RootCaHostnameDates;
        b.set_verify_callback(SslVerifyMode::PEER, move |ok, ctx| {
            ok || (!check_dates && DATE_ERRORS.contains(&ctx.error().as_raw()))
        });
    }
    if let Some(der) = profile.client_cert_der {
        let cert = X509::from_der(der).map_err(profile_err)?;
        b.set_certificate(&cert).map_err(profile_err)?;
    }
    if let Some(der) = profile.client_key_der {
        let key = PKey::private_key_from_der(der).map_err(profile_err)?;
        b.set_private_key(&key).map_err(profile_err)?;
        b.check_private_key().map_err(profile_err)?;
    }
    let connector = b.build();

    let mut cfg = connector.configure().map_err(profile_err)?;
    // SNI and the hostname check follow the profile (ops 10 and 4), not the host connected to.
    cfg.set_use_server_name_indication(false);
    cfg.set_verify_hostname(false);
    if !profile.sni.is_empty() {
        cfg.set_hostname(profile.sni).map_err(profile_err)?;
    }
    if profile.validation >= ValidationLevel::RootCaHostname {
        let expected = if profile.hostname.is_empty() {
            host
        } else {
            profile.hostname
        };
        cfg.param_mut().set_host(expected).map_err(profile_err)?;
    }
    if let Some(unix) = profile.now_unix {
        // Validity dates are the module's business: its clock (`+CCLK`), which a host may
        // have set to any date, not the clock of the machine running the emulator.
        // `time_t` is i64 here but 32 bits on some targets, hence the checked conversion.
        #[allow(clippy::useless_conversion)]
        let t = unix.try_into().map_err(|_| {
            TlsError::Profile(format!(
                "the module clock ({unix}) is out of OpenSSL's range"
            ))
        })?;
        cfg.param_mut().set_time(t);
    }
    cfg.into_ssl(host).map_err(profile_err)
}

/// Checks the server certificate of a finished handshake against the pinned one (op 12), at
/// level 0 (same public key), 1 (same SubjectPublicKeyInfo bytes) or 2 (same certificate
/// bytes). Without a pin there is nothing to check.
pub fn check_pin(profile: &TlsProfile<'_>, ssl: &SslRef) -> Result<(), TlsError> {
    let Some((pinned_der, level)) = profile.pin else {
        return Ok(());
    };
    let pinned = X509::from_der(pinned_der).map_err(profile_err)?;
    let peer = ssl
        .peer_certificate()
        .ok_or(TlsError::PinMismatch(level.wire()))?;
    let same = match level {
        PinLevel::Certificate => peer.to_der().map_err(profile_err)? == pinned_der,
        PinLevel::SubjectPublicKeyInfo => {
            let a = peer
                .public_key()
                .and_then(|k| k.public_key_to_der())
                .map_err(profile_err)?;
            let b = pinned
                .public_key()
                .and_then(|k| k.public_key_to_der())
                .map_err(profile_err)?;
            a == b
        }
        PinLevel::PublicKey => {
            let a = peer.public_key().map_err(profile_err)?;
            let b = pinned.public_key().map_err(profile_err)?;
            a.public_eq(&b)
        }
    };
    if same {
        Ok(())
    } else {
        Err(TlsError::PinMismatch(level.wire()))
    }
}

/// What a failed handshake on `ssl` says, with the certificate verification result when
/// that is why it failed.
pub fn handshake_error(ssl: &SslRef, error: &dyn std::fmt::Display) -> TlsError {
    let verify = ssl.verify_result();
    if verify == X509VerifyResult::OK {
        TlsError::Handshake(error.to_string())
    } else {
        TlsError::Handshake(format!("{error} ({})", verify.error_string()))
    }
}

/// Whether a read error on a TLS stream is the peer closing the connection without a
/// `close_notify` alert. HTTP servers commonly do that after `Connection: close`; like the
/// real module, the client takes it as the end of the connection (RFC 8446 §6.1 leaves that
/// to the application; a truncated body is still caught by the HTTP framing).
pub fn is_unexpected_eof(error: &std::io::Error) -> bool {
    if error.kind() == std::io::ErrorKind::UnexpectedEof {
        return true;
    }
    let Some(ssl_error) = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<openssl::ssl::Error>())
    else {
        return false;
    };
    match ssl_error.ssl_error() {
        // SSL_R_UNEXPECTED_EOF_WHILE_READING (OpenSSL 3).
        Some(stack) => stack
            .errors()
            .iter()
            .any(|e| e.reason_code() == UNEXPECTED_EOF_WHILE_READING),
        // OpenSSL 1.1: SSL_ERROR_SYSCALL with no error behind it.
        None => ssl_error.code() == ErrorCode::SYSCALL && ssl_error.io_error().is_none(),
    }
}

/// `SSL_R_UNEXPECTED_EOF_WHILE_READING`.
const UNEXPECTED_EOF_WHILE_READING: i32 = 294;

/// Runs the TLS handshake over `stream` (already connected to `host`) as `profile` says,
/// blocking, and checks the pin.
pub fn connect<S: Read + Write>(
    profile: &TlsProfile<'_>,
    host: &str,
    stream: S,
) -> Result<SslStream<S>, TlsError> {
    let tls = ssl(profile, host)?.connect(stream).map_err(|e| match e {
        HandshakeError::Failure(mid) => handshake_error(mid.ssl(), mid.error()),
        HandshakeError::SetupFailure(e) => TlsError::Profile(e.to_string()),
        HandshakeError::WouldBlock(_) => TlsError::Handshake("the connection would block".into()),
    })?;
    check_pin(profile, tls.ssl())?;
    Ok(tls)
}
