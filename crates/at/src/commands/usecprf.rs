//! `+USECPRF` security profiles (at-contract §4; u-blox AT manual §26.3; application note §4.1).
//!
//! | Wire form | Type |
//! |---|---|
//! | `AT+USECPRF=<p>` (reset), `=<p>,<op>` (read), `=<p>,<op>,<values>` (set) | [`SecPrfCommand`] |
//! | the set form alone | [`SecPrfSet`] |
//! | `+USECPRF: <p>,<op>,<value>` | [`SecPrfRead`] |
//!
//! The set and read forms of a value differ in two ways, so they are two types:
//! [`SecPrfValue`] (set) and [`SecPrfReading`] (read). A cipher suite is set as two bytes
//! (`255,"C0","2B"`) and read as one 4-hex-digit string (`255,"C02B"`); and the secrets — the
//! client key password (op 7), the PSK (op 8) and the session master key (op 13) — are set but
//! never read back, so [`SecPrfReading`] has no variant that could print one.
//!
//! **Limits (TOBY-L2, u-blox AT manual §26.3)**, in characters: names 200, hostname 256,
//! password 128, SNI 128, PSK 64 ASCII / 128 hex, PSK identity 128 ASCII / 256 hex, session id
//! 48, master key 64.

use std::fmt;

use super::{
    AtString, InfoLine, ParseError, Reveal, Secret, SetCommand, StringError, Wire, WriteArgs,
    info_fields, parse_all, profile_id, read_bool, secret_args, shown_line, wire_display,
    wire_enum, write_bool,
};
use crate::args::{Arg, ArgError, ArgReader, Args};

/// **TOBY-L2: a credential's internal name is at most 200 characters** (the `+USECMNG` name).
pub type CredentialName = super::usecmng::CredentialName;
/// **At most 256 characters**: the expected server hostname (op 4).
pub type Hostname = AtString<256>;
/// **At most 128 characters**: the server name indication (op 10).
pub type ServerName = AtString<128>;
/// **At most 128 characters**: the client key password (op 7).
pub type KeyPassword = Secret<128>;
/// **At most 48 characters**: the resumption session id, base64 (op 13 tag 2).
pub type SessionId = AtString<48>;
/// **At most 64 characters**: the resumption master key, base64 (op 13 tag 2).
pub type MasterKey = Secret<64>;

/// The answer to `AT+USECPRF=?`.
pub const TEST_RESPONSE: &str = "+USECPRF: (0-4),(0-10,12,13)";

profile_id! {
    /// A security profile id: **0..4 on TOBY-L2**.
    pub struct SecProfileId(count = 5);
}

wire_enum! {
    /// A `+USECPRF` op. Op 11 (root of trust) is a LARA-R6 op that TOBY-L2 does not have.
    pub enum SecPrfOp {
        /// 0: certificate validation level, [`ValidationLevel`].
        ValidationLevel = 0,
        /// 1: minimum TLS version, [`MinTlsVersion`].
        MinTlsVersion = 1,
        /// 2: cipher suite, [`CipherSuite`].
        CipherSuite = 2,
        /// 3: trusted root CA internal name.
        TrustedRoot = 3,
        /// 4: expected server hostname.
        ExpectedHostname = 4,
        /// 5: client certificate internal name.
        ClientCertificate = 5,
        /// 6: client private key internal name.
        ClientKey = 6,
        /// 7: client private key password (write-only).
        ClientKeyPassword = 7,
        /// 8: pre-shared key (write-only).
        PreSharedKey = 8,
        /// 9: pre-shared key identity.
        PskIdentity = 9,
        /// 10: server name indication.
        ServerNameIndication = 10,
        /// 12: server certificate pinning, [`Pinning`].
        ServerCertificatePinning = 12,
        /// 13: session resumption (stored; resumption itself is not supported, as on TOBY-L2).
        SessionResumption = 13,
    }
}

impl SecPrfOp {
    /// Whether `AT+USECPRF=<p>,<op>` reads the op back (secrets are write-only).
    pub const fn is_readable(self) -> bool {
        !matches!(self, SecPrfOp::ClientKeyPassword | SecPrfOp::PreSharedKey)
    }
}

wire_enum! {
    /// Op 0: how much of the server's certificate is checked. Each level adds to the one before.
    #[derive(Default)]
    pub enum ValidationLevel {
        /// 0 (factory default): no validation.
        #[default]
        NoValidation = 0,
        /// 1: the chain must end at the trusted root (op 3).
        RootCa = 1,
        /// 2: level 1, and the certificate must name the expected hostname (op 4).
        RootCaHostname = 2,
        /// 3: level 2, and the certificates must be within their validity dates.
        RootCaHostnameDates = 3,
    }
}

wire_enum! {
    /// Op 1: the lowest TLS version the module accepts.
    #[derive(Default)]
    pub enum MinTlsVersion {
        /// 0 (factory default): any.
        #[default]
        Any = 0,
        /// 1: TLS 1.0.
        Tls1_0 = 1,
        /// 2: TLS 1.1.
        Tls1_1 = 2,
        /// 3: TLS 1.2.
        Tls1_2 = 3,
    }
}

wire_enum! {
    /// Op 12: what of the server certificate must match the pinned `SC` item.
    #[derive(Default)]
    pub enum PinLevel {
        /// 0 (factory default): the same public key, compared by value.
        #[default]
        PublicKey = 0,
        /// 1: the same SubjectPublicKeyInfo bytes.
        SubjectPublicKeyInfo = 1,
        /// 2: the same certificate bytes.
        Certificate = 2,
    }
}

wire_enum! {
    /// Ops 8 and 9: how a PSK or PSK identity is written.
    #[derive(Default)]
    pub enum PskEncoding {
        /// 0 (the default when omitted): as ASCII text.
        #[default]
        Ascii = 0,
        /// 1: as hex digits, two per byte.
        Hex = 1,
    }
}

wire_enum! {
    /// Op 2: which form an IANA cipher suite was set with; a read answers in the same form.
    pub enum IanaForm {
        /// 99: the u-blox AT manual's form, `AT+USECPRF=<p>,2,99,"C0","2B"`.
        UBlox = 99,
        /// 255: the application note's form, `AT+USECPRF=<p>,2,255,<byte1>,<byte2>`.
        ApplicationNote = 255,
    }
}

wire_enum! {
    /// Op 13 tag 1: the resumption type.
    #[derive(Default)]
    pub enum ResumptionType {
        /// 0 (the only one): by session id.
        #[default]
        SessionId = 0,
    }
}

wire_display!(
    SecPrfOp,
    ValidationLevel,
    MinTlsVersion,
    PinLevel,
    PskEncoding,
    IanaForm,
    ResumptionType,
);

/// The legacy cipher suite numbers (TOBY-L2 family, `AT+USECPRF=<p>,2,<n>`) and their IANA codes.
pub const LEGACY_SUITES: [(u8, u16); 15] = [
    (1, 0x002F),
    (2, 0x003C),
    (3, 0x0035),
    (4, 0x003D),
    (5, 0x000A),
    (6, 0x008C),
    (7, 0x008D),
    (8, 0x008B),
    (9, 0x0094),
    (10, 0x0095),
    (11, 0x0093),
    (12, 0x00AE),
    (13, 0x00AF),
    (14, 0x00B6),
    (15, 0x00B7),
];

/// A legacy cipher suite number, 1..15.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegacySuite(u8);

impl LegacySuite {
    /// The suite with this legacy number, if the table has it.
    pub fn new(number: u8) -> Option<LegacySuite> {
        LEGACY_SUITES
            .iter()
            .any(|(n, _)| *n == number)
            .then_some(LegacySuite(number))
    }

    /// The legacy number.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// Its IANA code.
    pub fn iana_code(self) -> Option<u16> {
        LEGACY_SUITES
            .iter()
            .find(|(n, _)| *n == self.0)
            .map(|(_, c)| *c)
    }
}

/// Op 2: the cipher suite.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CipherSuite {
    /// 0 (factory default): negotiated from a modern default list (including the application
    /// note's three suites).
    #[default]
    Automatic,
    /// 1..15: the legacy table, [`LEGACY_SUITES`].
    Legacy(LegacySuite),
    /// 99 or 255 with the two IANA bytes.
    Iana {
        /// The form it was set with.
        form: IanaForm,
        /// The IANA code, e.g. `0xC02B`.
        code: u16,
    },
}

impl CipherSuite {
    /// The IANA code this setting asks for (`None` for automatic).
    pub fn iana_code(self) -> Option<u16> {
        match self {
            CipherSuite::Automatic => None,
            CipherSuite::Legacy(s) => s.iana_code(),
            CipherSuite::Iana { code, .. } => Some(code),
        }
    }

    /// The number before the suite's bytes, and whether bytes follow.
    fn read_number(r: &mut ArgReader<'_>) -> Result<Result<CipherSuite, IanaForm>, ArgError> {
        let position = r.next_position();
        let n = r.int(0..=255)?;
        if n == 0 {
            return Ok(Ok(CipherSuite::Automatic));
        }
        if let Some(s) = u8::try_from(n).ok().and_then(LegacySuite::new) {
            return Ok(Ok(CipherSuite::Legacy(s)));
        }
        IanaForm::try_from(n)
            .map(Err)
            .map_err(|_| ArgError::OutOfRange { position })
    }

    /// The set form: `0`, `<n>`, or `<99|255>,<byte1>,<byte2>` with each byte an integer
    /// 0..255 or a 2-hex-digit string.
    fn read_set(r: &mut ArgReader<'_>) -> Result<CipherSuite, ArgError> {
        match CipherSuite::read_number(r)? {
            Ok(suite) => Ok(suite),
            Err(form) => {
                let hi = cipher_byte(r)?;
                let lo = cipher_byte(r)?;
                Ok(CipherSuite::Iana {
                    form,
                    code: u16::from_be_bytes([hi, lo]),
                })
            }
        }
    }

    /// The read form: `0`, `<n>`, or `<99|255>,"<4 hex digits>"`.
    fn read_answer(r: &mut ArgReader<'_>) -> Result<CipherSuite, ArgError> {
        match CipherSuite::read_number(r)? {
            Ok(suite) => Ok(suite),
            Err(form) => {
                let position = r.next_position();
                let text = r.string(4)?;
                if text.len() != 4 || !is_hex(text) {
                    return Err(ArgError::OutOfRange { position });
                }
                let code =
                    u16::from_str_radix(text, 16).map_err(|_| ArgError::OutOfRange { position })?;
                Ok(CipherSuite::Iana { form, code })
            }
        }
    }

    fn write_set(self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CipherSuite::Automatic => f.write_str("0"),
            CipherSuite::Legacy(s) => write!(f, "{}", s.0),
            CipherSuite::Iana { form, code } => {
                let [hi, lo] = code.to_be_bytes();
                write!(f, "{form},\"{hi:02X}\",\"{lo:02X}\"")
            }
        }
    }

    fn write_answer(self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CipherSuite::Iana { form, code } => write!(f, "{form},\"{code:04X}\""),
            other => other.write_set(f),
        }
    }
}

/// A cipher byte: an integer 0..255 or a 2-hex-digit string (`"C0"`).
fn cipher_byte(r: &mut ArgReader<'_>) -> Result<u8, ArgError> {
    let position = r.next_position();
    match r.any()? {
        Some(Arg::Int(v)) => u8::try_from(v).map_err(|_| ArgError::OutOfRange { position }),
        Some(Arg::Str(s)) if s.len() == 2 && is_hex(s) => {
            u8::from_str_radix(s, 16).map_err(|_| ArgError::OutOfRange { position })
        }
        Some(Arg::Str(_)) => Err(ArgError::OutOfRange { position }),
        None | Some(Arg::Omitted) => Err(ArgError::Missing { position }),
        Some(Arg::Bare(_)) => Err(ArgError::WrongType { position }),
    }
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `s` is hex digits, two per byte.
fn is_hex_bytes(s: &str) -> bool {
    s.len().is_multiple_of(2) && is_hex(s)
}

/// Op 8: a pre-shared key, **at most 64 ASCII characters or 128 hex digits**.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Psk {
    key: Secret<128>,
    encoding: PskEncoding,
}

impl Psk {
    /// A PSK; refused if it breaks its encoding's rule. An empty key clears the PSK.
    pub fn new(key: Secret<128>, encoding: PskEncoding) -> Result<Psk, StringError> {
        if !psk_fits(key.expose(), encoding) {
            return Err(StringError::Rule(
                "a PSK is at most 64 ASCII characters, or at most 128 hex digits (two per byte)",
            ));
        }
        Ok(Psk { key, encoding })
    }

    /// The key.
    pub fn key(&self) -> &Secret<128> {
        &self.key
    }

    /// How it is written.
    pub fn encoding(&self) -> PskEncoding {
        self.encoding
    }
}

fn psk_fits(key: &str, encoding: PskEncoding) -> bool {
    match encoding {
        PskEncoding::Ascii => key.len() <= 64,
        PskEncoding::Hex => key.len() <= 128 && is_hex_bytes(key),
    }
}

/// Op 9: a PSK identity, **at most 128 ASCII characters or 256 hex digits**.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PskIdentity {
    identity: AtString<256>,
    encoding: PskEncoding,
}

impl PskIdentity {
    /// An identity; refused if it breaks its encoding's rule.
    pub fn new(identity: AtString<256>, encoding: PskEncoding) -> Result<PskIdentity, StringError> {
        if !identity_fits(identity.as_str(), encoding) {
            return Err(StringError::Rule(
                "a PSK identity is at most 128 ASCII characters, or hex digits (two per byte)",
            ));
        }
        Ok(PskIdentity { identity, encoding })
    }

    /// The identity.
    pub fn identity(&self) -> &AtString<256> {
        &self.identity
    }

    /// How it is written.
    pub fn encoding(&self) -> PskEncoding {
        self.encoding
    }
}

fn identity_fits(identity: &str, encoding: PskEncoding) -> bool {
    match encoding {
        PskEncoding::Ascii => identity.len() <= 128,
        PskEncoding::Hex => is_hex_bytes(identity),
    }
}

/// Op 12: the pinned server certificate (an `SC` item) and how it must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pinning {
    /// The `SC` item's internal name; empty: no pinning.
    pub name: CredentialName,
    /// What must match.
    pub level: PinLevel,
}

/// Op 13, set form `13,<tag>,<value...>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResumptionSetting {
    /// Tag 0: resumption on or off.
    Enabled(bool),
    /// Tag 1: the resumption type.
    Type(ResumptionType),
    /// Tag 2: the session id and, optionally, its master key (write-only).
    Session {
        /// The session id, base64.
        id: SessionId,
        /// The master key, base64.
        master_key: Option<MasterKey>,
    },
}

/// Op 13, read form: one line per tag, the master key never among them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResumptionReading {
    /// Tag 0: resumption on or off.
    Enabled(bool),
    /// Tag 1: the resumption type.
    Type(ResumptionType),
    /// Tag 2: the session id.
    SessionId(SessionId),
}

/// The tag of a line of op 13 (0 on/off, 1 type, 2 session).
fn read_resumption_tag(r: &mut ArgReader<'_>) -> Result<i64, ArgError> {
    r.int(0..=2)
}

/// A value as `AT+USECPRF=<p>,<op>,<value>` sets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecPrfValue {
    /// Op 0.
    ValidationLevel(ValidationLevel),
    /// Op 1.
    MinTlsVersion(MinTlsVersion),
    /// Op 2.
    CipherSuite(CipherSuite),
    /// Op 3: trusted root CA internal name (empty: none).
    TrustedRoot(CredentialName),
    /// Op 4: expected server hostname.
    ExpectedHostname(Hostname),
    /// Op 5: client certificate internal name.
    ClientCertificate(CredentialName),
    /// Op 6: client private key internal name.
    ClientKey(CredentialName),
    /// Op 7: client private key password (empty: none).
    ClientKeyPassword(KeyPassword),
    /// Op 8: pre-shared key (empty: none).
    PreSharedKey(Psk),
    /// Op 9: PSK identity.
    PskIdentity(PskIdentity),
    /// Op 10: server name indication (empty: none sent).
    ServerNameIndication(ServerName),
    /// Op 12: server certificate pinning.
    ServerCertificatePinning(Pinning),
    /// Op 13: session resumption.
    SessionResumption(ResumptionSetting),
}

impl SecPrfValue {
    /// The op it sets.
    pub fn op(&self) -> SecPrfOp {
        match self {
            SecPrfValue::ValidationLevel(_) => SecPrfOp::ValidationLevel,
            SecPrfValue::MinTlsVersion(_) => SecPrfOp::MinTlsVersion,
            SecPrfValue::CipherSuite(_) => SecPrfOp::CipherSuite,
            SecPrfValue::TrustedRoot(_) => SecPrfOp::TrustedRoot,
            SecPrfValue::ExpectedHostname(_) => SecPrfOp::ExpectedHostname,
            SecPrfValue::ClientCertificate(_) => SecPrfOp::ClientCertificate,
            SecPrfValue::ClientKey(_) => SecPrfOp::ClientKey,
            SecPrfValue::ClientKeyPassword(_) => SecPrfOp::ClientKeyPassword,
            SecPrfValue::PreSharedKey(_) => SecPrfOp::PreSharedKey,
            SecPrfValue::PskIdentity(_) => SecPrfOp::PskIdentity,
            SecPrfValue::ServerNameIndication(_) => SecPrfOp::ServerNameIndication,
            SecPrfValue::ServerCertificatePinning(_) => SecPrfOp::ServerCertificatePinning,
            SecPrfValue::SessionResumption(_) => SecPrfOp::SessionResumption,
        }
    }

    /// What reading the op back gives after this set (`None` for the write-only secrets).
    pub fn reading(&self) -> Option<SecPrfReading> {
        Some(match self {
            SecPrfValue::ValidationLevel(v) => SecPrfReading::ValidationLevel(*v),
            SecPrfValue::MinTlsVersion(v) => SecPrfReading::MinTlsVersion(*v),
            SecPrfValue::CipherSuite(v) => SecPrfReading::CipherSuite(*v),
            SecPrfValue::TrustedRoot(v) => SecPrfReading::TrustedRoot(v.clone()),
            SecPrfValue::ExpectedHostname(v) => SecPrfReading::ExpectedHostname(v.clone()),
            SecPrfValue::ClientCertificate(v) => SecPrfReading::ClientCertificate(v.clone()),
            SecPrfValue::ClientKey(v) => SecPrfReading::ClientKey(v.clone()),
            SecPrfValue::ClientKeyPassword(_) | SecPrfValue::PreSharedKey(_) => return None,
            SecPrfValue::PskIdentity(v) => SecPrfReading::PskIdentity(v.clone()),
            SecPrfValue::ServerNameIndication(v) => SecPrfReading::ServerNameIndication(v.clone()),
            SecPrfValue::ServerCertificatePinning(v) => {
                SecPrfReading::ServerCertificatePinning(v.clone())
            }
            SecPrfValue::SessionResumption(s) => SecPrfReading::SessionResumption(match s {
                ResumptionSetting::Enabled(b) => ResumptionReading::Enabled(*b),
                ResumptionSetting::Type(t) => ResumptionReading::Type(*t),
                ResumptionSetting::Session { id, .. } => ResumptionReading::SessionId(id.clone()),
            }),
        })
    }

    /// Reads the values of `op` in their set form.
    pub fn read(op: SecPrfOp, r: &mut ArgReader<'_>) -> Result<SecPrfValue, ArgError> {
        Ok(match op {
            SecPrfOp::ValidationLevel => SecPrfValue::ValidationLevel(r.wire()?),
            SecPrfOp::MinTlsVersion => SecPrfValue::MinTlsVersion(r.wire()?),
            SecPrfOp::CipherSuite => SecPrfValue::CipherSuite(CipherSuite::read_set(r)?),
            SecPrfOp::TrustedRoot => SecPrfValue::TrustedRoot(AtString::read(r)?),
            SecPrfOp::ExpectedHostname => SecPrfValue::ExpectedHostname(AtString::read(r)?),
            SecPrfOp::ClientCertificate => SecPrfValue::ClientCertificate(AtString::read(r)?),
            SecPrfOp::ClientKey => SecPrfValue::ClientKey(AtString::read(r)?),
            SecPrfOp::ClientKeyPassword => SecPrfValue::ClientKeyPassword(Secret::read(r)?),
            SecPrfOp::PreSharedKey => {
                let position = r.next_position();
                let key = Secret::read(r)?;
                let encoding = r.opt_wire()?.unwrap_or_default();
                if !psk_fits(key.expose(), encoding) {
                    return Err(ArgError::OutOfRange { position });
                }
                SecPrfValue::PreSharedKey(Psk { key, encoding })
            }
            SecPrfOp::PskIdentity => SecPrfValue::PskIdentity(read_identity(r)?),
            SecPrfOp::ServerNameIndication => SecPrfValue::ServerNameIndication(AtString::read(r)?),
            SecPrfOp::ServerCertificatePinning => {
                SecPrfValue::ServerCertificatePinning(read_pinning(r)?)
            }
            SecPrfOp::SessionResumption => {
                SecPrfValue::SessionResumption(match read_resumption_tag(r)? {
                    0 => ResumptionSetting::Enabled(read_bool(r)?),
                    1 => ResumptionSetting::Type(r.wire()?),
                    _ => ResumptionSetting::Session {
                        id: AtString::read(r)?,
                        master_key: Secret::read_opt(r)?,
                    },
                })
            }
        })
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, reveal: Reveal) -> fmt::Result {
        match self {
            SecPrfValue::ValidationLevel(v) => write!(f, "{v}"),
            SecPrfValue::MinTlsVersion(v) => write!(f, "{v}"),
            SecPrfValue::CipherSuite(v) => v.write_set(f),
            SecPrfValue::TrustedRoot(v)
            | SecPrfValue::ClientCertificate(v)
            | SecPrfValue::ClientKey(v) => v.write(f),
            SecPrfValue::ExpectedHostname(v) => v.write(f),
            SecPrfValue::ClientKeyPassword(v) => v.write(f, reveal),
            SecPrfValue::PreSharedKey(p) => {
                p.key.write(f, reveal)?;
                write!(f, ",{}", p.encoding)
            }
            SecPrfValue::PskIdentity(v) => write_identity(f, v),
            SecPrfValue::ServerNameIndication(v) => v.write(f),
            SecPrfValue::ServerCertificatePinning(p) => write_pinning(f, p),
            SecPrfValue::SessionResumption(s) => match s {
                ResumptionSetting::Enabled(b) => {
                    f.write_str("0,")?;
                    write_bool(f, *b)
                }
                ResumptionSetting::Type(t) => write!(f, "1,{t}"),
                ResumptionSetting::Session { id, master_key } => {
                    f.write_str("2,")?;
                    id.write(f)?;
                    if let Some(key) = master_key {
                        f.write_str(",")?;
                        key.write(f, reveal)?;
                    }
                    Ok(())
                }
            },
        }
    }
}

fn read_identity(r: &mut ArgReader<'_>) -> Result<PskIdentity, ArgError> {
    let position = r.next_position();
    let identity = AtString::read(r)?;
    let encoding = r.opt_wire()?.unwrap_or_default();
    if !identity_fits(identity.as_str(), encoding) {
        return Err(ArgError::OutOfRange { position });
    }
    Ok(PskIdentity { identity, encoding })
}

fn write_identity(f: &mut fmt::Formatter<'_>, v: &PskIdentity) -> fmt::Result {
    v.identity.write(f)?;
    write!(f, ",{}", v.encoding)
}

fn read_pinning(r: &mut ArgReader<'_>) -> Result<Pinning, ArgError> {
    Ok(Pinning {
        name: AtString::read(r)?,
        level: r.wire()?,
    })
}

fn write_pinning(f: &mut fmt::Formatter<'_>, p: &Pinning) -> fmt::Result {
    p.name.write(f)?;
    write!(f, ",{}", p.level)
}

/// A value as `AT+USECPRF=<p>,<op>` reads it back: every op but the write-only secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecPrfReading {
    /// Op 0.
    ValidationLevel(ValidationLevel),
    /// Op 1.
    MinTlsVersion(MinTlsVersion),
    /// Op 2, in its read form (`255,"C02B"`).
    CipherSuite(CipherSuite),
    /// Op 3.
    TrustedRoot(CredentialName),
    /// Op 4.
    ExpectedHostname(Hostname),
    /// Op 5.
    ClientCertificate(CredentialName),
    /// Op 6.
    ClientKey(CredentialName),
    /// Op 9.
    PskIdentity(PskIdentity),
    /// Op 10.
    ServerNameIndication(ServerName),
    /// Op 12.
    ServerCertificatePinning(Pinning),
    /// Op 13: one of its three lines.
    SessionResumption(ResumptionReading),
}

impl SecPrfReading {
    /// The op it reports.
    pub fn op(&self) -> SecPrfOp {
        match self {
            SecPrfReading::ValidationLevel(_) => SecPrfOp::ValidationLevel,
            SecPrfReading::MinTlsVersion(_) => SecPrfOp::MinTlsVersion,
            SecPrfReading::CipherSuite(_) => SecPrfOp::CipherSuite,
            SecPrfReading::TrustedRoot(_) => SecPrfOp::TrustedRoot,
            SecPrfReading::ExpectedHostname(_) => SecPrfOp::ExpectedHostname,
            SecPrfReading::ClientCertificate(_) => SecPrfOp::ClientCertificate,
            SecPrfReading::ClientKey(_) => SecPrfOp::ClientKey,
            SecPrfReading::PskIdentity(_) => SecPrfOp::PskIdentity,
            SecPrfReading::ServerNameIndication(_) => SecPrfOp::ServerNameIndication,
            SecPrfReading::ServerCertificatePinning(_) => SecPrfOp::ServerCertificatePinning,
            SecPrfReading::SessionResumption(_) => SecPrfOp::SessionResumption,
        }
    }

    /// Reads the values of `op` in their read form; `None` for a write-only op.
    fn read(op: SecPrfOp, r: &mut ArgReader<'_>) -> Result<Option<SecPrfReading>, ArgError> {
        Ok(Some(match op {
            SecPrfOp::ValidationLevel => SecPrfReading::ValidationLevel(r.wire()?),
            SecPrfOp::MinTlsVersion => SecPrfReading::MinTlsVersion(r.wire()?),
            SecPrfOp::CipherSuite => SecPrfReading::CipherSuite(CipherSuite::read_answer(r)?),
            SecPrfOp::TrustedRoot => SecPrfReading::TrustedRoot(AtString::read(r)?),
            SecPrfOp::ExpectedHostname => SecPrfReading::ExpectedHostname(AtString::read(r)?),
            SecPrfOp::ClientCertificate => SecPrfReading::ClientCertificate(AtString::read(r)?),
            SecPrfOp::ClientKey => SecPrfReading::ClientKey(AtString::read(r)?),
            SecPrfOp::ClientKeyPassword | SecPrfOp::PreSharedKey => return Ok(None),
            SecPrfOp::PskIdentity => SecPrfReading::PskIdentity(read_identity(r)?),
            SecPrfOp::ServerNameIndication => {
                SecPrfReading::ServerNameIndication(AtString::read(r)?)
            }
            SecPrfOp::ServerCertificatePinning => {
                SecPrfReading::ServerCertificatePinning(read_pinning(r)?)
            }
            SecPrfOp::SessionResumption => {
                SecPrfReading::SessionResumption(match read_resumption_tag(r)? {
                    0 => ResumptionReading::Enabled(read_bool(r)?),
                    1 => ResumptionReading::Type(r.wire()?),
                    _ => ResumptionReading::SessionId(AtString::read(r)?),
                })
            }
        }))
    }
}

impl fmt::Display for SecPrfReading {
    /// The value fields of the read answer (after `+USECPRF: <p>,<op>,`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecPrfReading::ValidationLevel(v) => write!(f, "{v}"),
            SecPrfReading::MinTlsVersion(v) => write!(f, "{v}"),
            SecPrfReading::CipherSuite(v) => v.write_answer(f),
            SecPrfReading::TrustedRoot(v)
            | SecPrfReading::ClientCertificate(v)
            | SecPrfReading::ClientKey(v) => v.write(f),
            SecPrfReading::ExpectedHostname(v) => v.write(f),
            SecPrfReading::PskIdentity(v) => write_identity(f, v),
            SecPrfReading::ServerNameIndication(v) => v.write(f),
            SecPrfReading::ServerCertificatePinning(p) => write_pinning(f, p),
            SecPrfReading::SessionResumption(s) => match s {
                ResumptionReading::Enabled(b) => {
                    f.write_str("0,")?;
                    write_bool(f, *b)
                }
                ResumptionReading::Type(t) => write!(f, "1,{t}"),
                ResumptionReading::SessionId(id) => {
                    f.write_str("2,")?;
                    id.write(f)
                }
            },
        }
    }
}

/// `AT+USECPRF=<p>,<op>,<values>`: set one op of a profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecPrfSet {
    /// The profile.
    pub profile: SecProfileId,
    /// The value, which names its op.
    pub value: SecPrfValue,
}

impl SecPrfSet {
    /// The op it sets.
    pub fn op(&self) -> SecPrfOp {
        self.value.op()
    }

    fn read(r: &mut ArgReader<'_>) -> Result<SecPrfSet, ArgError> {
        let profile = r.wire()?;
        let op = r.wire()?;
        Ok(SecPrfSet {
            profile,
            value: SecPrfValue::read(op, r)?,
        })
    }
}

impl WriteArgs for SecPrfSet {
    fn write_args(&self, f: &mut fmt::Formatter<'_>, reveal: Reveal) -> fmt::Result {
        write!(f, "{},{},", self.profile, self.value.op())?;
        self.value.write(f, reveal)
    }
}

secret_args!(SecPrfSet);

impl Wire for SecPrfSet {
    fn parse(text: &str) -> Result<SecPrfSet, ParseError> {
        parse_all(text, SecPrfSet::read)
    }
}

impl SetCommand for SecPrfSet {
    const NAME: &'static str = "+USECPRF";

    fn shown(&self) -> String {
        shown_line(self)
    }
}

/// The set form of `+USECPRF`, whichever of its three meanings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecPrfCommand {
    /// `AT+USECPRF=<p>`: back to the factory values, secrets forgotten.
    Reset(SecProfileId),
    /// `AT+USECPRF=<p>,<op>`: read one op.
    Read {
        /// The profile.
        profile: SecProfileId,
        /// The op.
        op: SecPrfOp,
    },
    /// `AT+USECPRF=<p>,<op>,<values>`.
    Set(SecPrfSet),
}

impl WriteArgs for SecPrfCommand {
    fn write_args(&self, f: &mut fmt::Formatter<'_>, reveal: Reveal) -> fmt::Result {
        match self {
            SecPrfCommand::Reset(p) => write!(f, "{p}"),
            SecPrfCommand::Read { profile, op } => write!(f, "{profile},{op}"),
            SecPrfCommand::Set(s) => s.write_args(f, reveal),
        }
    }
}

secret_args!(SecPrfCommand);

impl Wire for SecPrfCommand {
    fn parse(text: &str) -> Result<SecPrfCommand, ParseError> {
        let mut r = Args(text).reader();
        let profile = r.wire()?;
        let cmd = match r.opt_wire()? {
            None => SecPrfCommand::Reset(profile),
            Some(op) if r.is_empty() => SecPrfCommand::Read { profile, op },
            Some(op) => SecPrfCommand::Set(SecPrfSet {
                profile,
                value: SecPrfValue::read(op, &mut r)?,
            }),
        };
        r.finish()?;
        Ok(cmd)
    }
}

impl SetCommand for SecPrfCommand {
    const NAME: &'static str = "+USECPRF";

    fn shown(&self) -> String {
        shown_line(self)
    }
}

/// `+USECPRF: <p>,<op>,<value...>`: the answer to a read (op 13 answers with three).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecPrfRead {
    /// The profile.
    pub profile: SecProfileId,
    /// The value, which names its op.
    pub reading: SecPrfReading,
}

impl fmt::Display for SecPrfRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {},{},{}",
            Self::PREFIX,
            self.profile,
            self.reading.op(),
            self.reading
        )
    }
}

impl Wire for SecPrfRead {
    fn parse(line: &str) -> Result<SecPrfRead, ParseError> {
        let mut r = info_fields(line, Self::PREFIX)?;
        let profile = r.wire()?;
        let position = r.next_position();
        let op = r.wire()?;
        let reading = SecPrfReading::read(op, &mut r)?.ok_or(ArgError::OutOfRange { position })?;
        r.finish()?;
        Ok(SecPrfRead { profile, reading })
    }
}

impl InfoLine for SecPrfRead {
    const PREFIX: &'static str = "+USECPRF:";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: u8) -> SecProfileId {
        SecProfileId::new(id).unwrap()
    }

    fn set(text: &str) -> SecPrfSet {
        match SecPrfCommand::parse(text) {
            Ok(SecPrfCommand::Set(s)) => s,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn op_numbers_are_the_contract_s() {
        let numbers: Vec<u8> = SecPrfOp::ALL.iter().map(|o| o.wire()).collect();
        assert_eq!(numbers, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13]);
        assert_eq!(
            SecPrfOp::try_from(11),
            Err(crate::commands::UnknownValue(11))
        );
        assert_eq!(
            ValidationLevel::try_from(3),
            Ok(ValidationLevel::RootCaHostnameDates)
        );
        assert_eq!(MinTlsVersion::Tls1_2.to_string(), "3");
        assert_eq!(PinLevel::try_from(2), Ok(PinLevel::Certificate));
        assert!(PinLevel::try_from(3).is_err());
    }

    #[test]
    fn reset_read_and_set_are_told_apart() {
        assert_eq!(SecPrfCommand::parse("1"), Ok(SecPrfCommand::Reset(p(1))));
        // An omitted op is the reset form, as before.
        assert_eq!(SecPrfCommand::parse("1,"), Ok(SecPrfCommand::Reset(p(1))));
        assert_eq!(
            SecPrfCommand::parse("4,12"),
            Ok(SecPrfCommand::Read {
                profile: p(4),
                op: SecPrfOp::ServerCertificatePinning
            })
        );
        assert!(SecPrfCommand::parse("1,0,").is_err());
        assert!(SecPrfCommand::parse("5,0,1").is_err());
        assert!(SecPrfCommand::parse("1,11,1").is_err());
        assert!(SecPrfCommand::parse("1,14,1").is_err());
        assert!(SecPrfCommand::parse("1,,5").is_err());
        assert!(SecPrfSet::parse("1,0").is_err());
    }

    #[test]
    fn cipher_suites_in_both_forms() {
        let c = |code| CipherSuite::Iana {
            form: IanaForm::ApplicationNote,
            code,
        };
        assert_eq!(
            set("1,2,255,192,43").value,
            SecPrfValue::CipherSuite(c(0xC02B))
        );
        assert_eq!(
            set("1,2,255,\"C0\",35").value,
            SecPrfValue::CipherSuite(c(0xC023))
        );
        assert_eq!(
            set("1,2,99,\"C0\",\"2f\"").value,
            SecPrfValue::CipherSuite(CipherSuite::Iana {
                form: IanaForm::UBlox,
                code: 0xC02F
            })
        );
        for bad in [
            "1,2,16",
            "1,2,98,1,2",
            "1,2,255,\"C0\"",
            "1,2,255,\"C0\",\"2G\"",
            "1,2,255,\"C0\",\"+F\"",
            "1,2,255,256,1",
            "1,2,255,C0,1",
        ] {
            assert!(SecPrfCommand::parse(bad).is_err(), "{bad}");
        }
        let s = SecPrfSet {
            profile: p(1),
            value: SecPrfValue::CipherSuite(c(0xC02B)),
        };
        assert_eq!(s.to_string(), "1,2,255,\"C0\",\"2B\"");
        assert_eq!(s.line().as_str(), "AT+USECPRF=1,2,255,\"C0\",\"2B\"");
        let read = SecPrfRead {
            profile: p(1),
            reading: SecPrfReading::CipherSuite(c(0xC02B)),
        };
        assert_eq!(read.to_string(), "+USECPRF: 1,2,255,\"C02B\"");
        assert_eq!(SecPrfRead::parse("+USECPRF: 1,2,255,\"c02b\""), Ok(read));
        assert_eq!(
            SecPrfRead::parse("+USECPRF: 0,2,4").map(|r| r.reading),
            Ok(SecPrfReading::CipherSuite(CipherSuite::Legacy(
                LegacySuite(4)
            )))
        );
        assert_eq!(LegacySuite(4).iana_code(), Some(0x003D));
    }

    #[test]
    fn names_are_capped_in_characters() {
        let name = "r".repeat(200);
        assert!(SecPrfCommand::parse(&format!("1,3,\"{name}\"")).is_ok());
        assert!(SecPrfCommand::parse(&format!("1,3,\"{name}r\"")).is_err());
        assert!(SecPrfCommand::parse(&format!("1,4,\"{}\"", "h".repeat(257))).is_err());
        assert!(SecPrfCommand::parse(&format!("1,10,\"{}\"", "s".repeat(129))).is_err());
        assert!(SecPrfCommand::parse("1,3,5").is_err());
    }

    #[test]
    fn secrets_are_set_redacted_when_shown_and_never_read() {
        let s = set("1,7,\"keypass123\"");
        assert_eq!(s.line().as_str(), "AT+USECPRF=1,7,\"keypass123\"");
        assert_eq!(s.shown(), "AT+USECPRF=1,7,\"<redacted>\"");
        assert!(!format!("{s:?}").contains("keypass123"));
        assert_eq!(s.value.reading(), None);
        let psk = set("1,8,\"0102AB\",1");
        assert_eq!(psk.to_string(), "1,8,\"0102AB\",1");
        assert_eq!(psk.shown(), "AT+USECPRF=1,8,\"<redacted>\",1");
        assert_eq!(
            set("1,8,\"secret psk\"").to_string(),
            "1,8,\"secret psk\",0"
        );
        assert!(SecPrfCommand::parse("1,8,\"XYZ\",1").is_err());
        assert!(SecPrfCommand::parse(&format!("1,8,\"{}\"", "p".repeat(65))).is_err());
        assert!(SecPrfRead::parse("+USECPRF: 1,7,\"x\"").is_err());
        let session = set("1,13,2,\"c2Vzc2lvbg==\",\"bWFzdGVy\"");
        assert_eq!(
            session.shown(),
            "AT+USECPRF=1,13,2,\"c2Vzc2lvbg==\",\"<redacted>\""
        );
        assert_eq!(
            session.value.reading().map(|r| r.to_string()),
            Some("2,\"c2Vzc2lvbg==\"".into())
        );
    }

    #[test]
    fn read_answers_print_as_the_module_does() {
        let line = |reading| {
            SecPrfRead {
                profile: p(0),
                reading,
            }
            .to_string()
        };
        assert_eq!(
            line(SecPrfReading::ValidationLevel(ValidationLevel::default())),
            "+USECPRF: 0,0,0"
        );
        assert_eq!(
            line(SecPrfReading::TrustedRoot(CredentialName::default())),
            "+USECPRF: 0,3,\"\""
        );
        assert_eq!(
            line(SecPrfReading::ServerCertificatePinning(Pinning::default())),
            "+USECPRF: 0,12,\"\",0"
        );
        assert_eq!(
            line(SecPrfReading::PskIdentity(PskIdentity::default())),
            "+USECPRF: 0,9,\"\",0"
        );
        assert_eq!(
            line(SecPrfReading::SessionResumption(
                ResumptionReading::Enabled(false)
            )),
            "+USECPRF: 0,13,0,0"
        );
        assert_eq!(
            line(SecPrfReading::SessionResumption(ResumptionReading::Type(
                ResumptionType::SessionId
            ))),
            "+USECPRF: 0,13,1,0"
        );
        assert_eq!(
            SecPrfRead::parse("+USECPRF: 1,12,\"ServerPin\",2"),
            Ok(SecPrfRead {
                profile: p(1),
                reading: SecPrfReading::ServerCertificatePinning(Pinning {
                    name: CredentialName::new("ServerPin").unwrap(),
                    level: PinLevel::Certificate
                })
            })
        );
        assert!(SecPrfRead::parse("+USECMNG: 1,0,0").is_err());
        assert!(SecPrfRead::parse("+USECPRF: 1,0,0,0").is_err());
    }

    #[test]
    fn host_built_values_obey_the_module_s_rules() {
        let hex = |s| Secret::<128>::new(s).unwrap();
        assert!(Psk::new(hex("0102AB"), PskEncoding::Hex).is_ok());
        assert!(Psk::new(hex("0102A"), PskEncoding::Hex).is_err());
        assert!(Psk::new(hex(&"p".repeat(65)), PskEncoding::Ascii).is_err());
        let id = |s| AtString::<256>::new(s).unwrap();
        assert!(PskIdentity::new(id("6465"), PskEncoding::Hex).is_ok());
        assert!(PskIdentity::new(id(&"i".repeat(129)), PskEncoding::Ascii).is_err());
    }
}
