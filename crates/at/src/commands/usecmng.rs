//! `+USECMNG` certificates and keys (at-contract §3; application note §3, §4.2).
//!
//! | Wire form | Type |
//! |---|---|
//! | `AT+USECMNG=<op>,...` (import, import from file, remove, list, MD5) | [`SecMngCommand`] |
//! | `+USECMNG: <op>,<type>,"<name>","<md5>"` (after an import or an MD5 query) | [`SecMngReport`] |
//! | `"<tag>","<name>"[,"<subject CN>","<notAfter>"]` (a list line, no prefix) | [`SecMngListItem`] |
//!
//! **Limits (TOBY-L2):** names 1..200 characters, imports 1..8192 bytes, passwords at most
//! 128 characters, at most 16 items (the store enforces the count).

use std::fmt;

use super::{
    AtString, InfoLine, Md5Digest, ParseError, Reveal, Secret, SetCommand, Wire, WriteArgs,
    info_fields, parse_all, secret_args, shown_line, wire_display, wire_enum,
};
use crate::args::{ArgError, ArgReader, Args};

/// **TOBY-L2: internal names of 1 to 200 characters.**
pub const MAX_NAME: usize = 200;

/// **TOBY-L2: passwords (the seal's and a key's) of at most 128 characters.**
pub const MAX_PASSWORD: usize = 128;

/// **TOBY-L2: at most 8192 bytes per import** (else `+CME ERROR: 1911`).
///
/// # Security
/// Bounds the memory one import can take.
pub const MAX_IMPORT: usize = 8192;

/// The longest subject common name a list line carries; longer ones are cut.
pub const MAX_SUBJECT_CN: usize = 256;

/// A credential's internal name, at most [`MAX_NAME`] characters. The store refuses an empty
/// one (`+CME ERROR: 4`); `+USECPRF` takes an empty one as "none".
pub type CredentialName = AtString<MAX_NAME>;

/// A key password (`+USECMNG=0/1,...,"<password>"`).
pub type KeyPassword = Secret<MAX_PASSWORD>;

/// A file name of the module's file system (op 1). Capped only at the command line's length:
/// the file system's own rules (1..248 characters, no `/`, ...) answer `+CME ERROR: 1638`,
/// which a parse error (4) must not pre-empt.
pub type FileName = AtString<{ crate::line::MAX_LINE }>;

/// A `+USECMNG` credential type (application note §3, §4.2). `Display` is its list tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum CredentialType {
    /// 0: trusted root CA certificate, `CA`.
    TrustedRootCa = 0,
    /// 1: client certificate, `CC`.
    ClientCertificate = 1,
    /// 2: client private key, `PK`.
    ClientPrivateKey = 2,
    /// 3: server certificate for pinning, `SC`.
    ServerCertificate = 3,
    /// 4: firmware signature verification certificate, `VC` (application note §4.2).
    SignatureVerificationCertificate = 4,
}

impl CredentialType {
    /// Every type, in wire order.
    pub const ALL: [CredentialType; 5] = [
        CredentialType::TrustedRootCa,
        CredentialType::ClientCertificate,
        CredentialType::ClientPrivateKey,
        CredentialType::ServerCertificate,
        CredentialType::SignatureVerificationCertificate,
    ];

    /// The type for a wire value.
    pub fn from_wire(v: i64) -> Option<CredentialType> {
        CredentialType::ALL.into_iter().find(|t| *t as i64 == v)
    }

    /// The wire value.
    pub const fn wire(self) -> u8 {
        self as u8
    }

    /// The list tag: `CA`, `CC`, `PK`, `SC` or `VC`.
    pub const fn tag(self) -> &'static str {
        match self {
            CredentialType::TrustedRootCa => "CA",
            CredentialType::ClientCertificate => "CC",
            CredentialType::ClientPrivateKey => "PK",
            CredentialType::ServerCertificate => "SC",
            CredentialType::SignatureVerificationCertificate => "VC",
        }
    }

    /// The type with this list tag.
    pub fn from_tag(tag: &str) -> Option<CredentialType> {
        CredentialType::ALL.into_iter().find(|t| t.tag() == tag)
    }

    /// Whether items of this type are certificates (as opposed to keys).
    pub fn is_certificate(self) -> bool {
        self != CredentialType::ClientPrivateKey
    }
}

impl TryFrom<i64> for CredentialType {
    type Error = super::UnknownValue;

    fn try_from(v: i64) -> Result<CredentialType, super::UnknownValue> {
        CredentialType::from_wire(v).ok_or(super::UnknownValue(v))
    }
}

impl From<CredentialType> for u8 {
    fn from(t: CredentialType) -> u8 {
        t.wire()
    }
}

impl fmt::Display for CredentialType {
    /// The list tag (`CA`), as messages and logs name a type; the wire number is
    /// [`CredentialType::wire`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

wire_enum! {
    /// A `+USECMNG` op.
    pub enum SecMngOp {
        /// 0: import through the channel, after the `>` prompt.
        Import = 0,
        /// 1: import from a file of the module's file system.
        ImportFile = 1,
        /// 2: remove.
        Remove = 2,
        /// 3: list.
        List = 3,
        /// 4: MD5 of a stored item.
        Md5 = 4,
    }
}

wire_enum! {
    /// The ops that answer with a [`SecMngReport`] line.
    pub enum SecMngReportOp {
        /// 0: after an import through the channel.
        Import = 0,
        /// 1: after an import from a file.
        ImportFile = 1,
        /// 4: the MD5 query.
        Md5 = 4,
    }
}

wire_display!(SecMngOp, SecMngReportOp);

/// The answer to `AT+USECMNG=?`.
pub const TEST_RESPONSE: &str = "+USECMNG: (0-4),(0-4)";

/// The set form `AT+USECMNG=<op>,...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecMngCommand {
    /// `0,<type>,"<name>",<size>[,"<password>"]`: import `<size>` bytes sent after the prompt.
    Import {
        /// The type.
        kind: CredentialType,
        /// The internal name.
        name: CredentialName,
        /// The payload size as sent; the module takes 1..[`MAX_IMPORT`] and answers anything
        /// else (negative included) with `+CME ERROR: 1911`, so it is kept as given.
        size: i64,
        /// The password of an encrypted key.
        password: Option<KeyPassword>,
    },
    /// `1,<type>,"<name>","<filename>"[,"<password>"]`: import a file of the file system.
    ImportFile {
        /// The type.
        kind: CredentialType,
        /// The internal name.
        name: CredentialName,
        /// The file.
        file: FileName,
        /// The password of an encrypted key.
        password: Option<KeyPassword>,
    },
    /// `2,<type>,"<name>"`.
    Remove {
        /// The type.
        kind: CredentialType,
        /// The internal name.
        name: CredentialName,
    },
    /// `3[,<type>]`: list every item, or one type's.
    List(Option<CredentialType>),
    /// `4,<type>,"<name>"`: the MD5 of the stored DER.
    Md5 {
        /// The type.
        kind: CredentialType,
        /// The internal name.
        name: CredentialName,
    },
}

impl SecMngCommand {
    /// The op.
    pub fn op(&self) -> SecMngOp {
        match self {
            SecMngCommand::Import { .. } => SecMngOp::Import,
            SecMngCommand::ImportFile { .. } => SecMngOp::ImportFile,
            SecMngCommand::Remove { .. } => SecMngOp::Remove,
            SecMngCommand::List(_) => SecMngOp::List,
            SecMngCommand::Md5 { .. } => SecMngOp::Md5,
        }
    }

    fn read(r: &mut ArgReader<'_>) -> Result<SecMngCommand, ArgError> {
        Ok(match r.wire()? {
            SecMngOp::Import => SecMngCommand::Import {
                kind: r.wire()?,
                name: AtString::read(r)?,
                size: r.int(i64::MIN..=i64::MAX)?,
                password: Secret::read_opt(r)?,
            },
            SecMngOp::ImportFile => SecMngCommand::ImportFile {
                kind: r.wire()?,
                name: AtString::read(r)?,
                file: AtString::read(r)?,
                password: Secret::read_opt(r)?,
            },
            SecMngOp::Remove => SecMngCommand::Remove {
                kind: r.wire()?,
                name: AtString::read(r)?,
            },
            SecMngOp::List => SecMngCommand::List(r.opt_wire()?),
            SecMngOp::Md5 => SecMngCommand::Md5 {
                kind: r.wire()?,
                name: AtString::read(r)?,
            },
        })
    }
}

fn write_password(
    f: &mut fmt::Formatter<'_>,
    password: &Option<KeyPassword>,
    reveal: Reveal,
) -> fmt::Result {
    if let Some(p) = password {
        f.write_str(",")?;
        p.write(f, reveal)?;
    }
    Ok(())
}

impl WriteArgs for SecMngCommand {
    fn write_args(&self, f: &mut fmt::Formatter<'_>, reveal: Reveal) -> fmt::Result {
        write!(f, "{}", self.op())?;
        match self {
            SecMngCommand::Import {
                kind,
                name,
                size,
                password,
            } => {
                write!(f, ",{},", kind.wire())?;
                name.write(f)?;
                write!(f, ",{size}")?;
                write_password(f, password, reveal)
            }
            SecMngCommand::ImportFile {
                kind,
                name,
                file,
                password,
            } => {
                write!(f, ",{},", kind.wire())?;
                name.write(f)?;
                f.write_str(",")?;
                file.write(f)?;
                write_password(f, password, reveal)
            }
            SecMngCommand::Remove { kind, name } | SecMngCommand::Md5 { kind, name } => {
                write!(f, ",{},", kind.wire())?;
                name.write(f)
            }
            SecMngCommand::List(None) => Ok(()),
            SecMngCommand::List(Some(kind)) => write!(f, ",{}", kind.wire()),
        }
    }
}

secret_args!(SecMngCommand);

impl Wire for SecMngCommand {
    fn parse(text: &str) -> Result<SecMngCommand, ParseError> {
        parse_all(text, SecMngCommand::read)
    }
}

impl SetCommand for SecMngCommand {
    const NAME: &'static str = "+USECMNG";

    fn shown(&self) -> String {
        shown_line(self)
    }
}

/// `+USECMNG: <op>,<type>,"<name>","<md5>"`: what an import stored, or an MD5 query found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecMngReport {
    /// The op that answers.
    pub op: SecMngReportOp,
    /// The type.
    pub kind: CredentialType,
    /// The internal name.
    pub name: CredentialName,
    /// MD5 of the stored DER.
    pub md5: Md5Digest,
}

impl fmt::Display for SecMngReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {},{},", Self::PREFIX, self.op, self.kind.wire())?;
        self.name.write(f)?;
        write!(f, ",\"{}\"", self.md5)
    }
}

impl Wire for SecMngReport {
    fn parse(line: &str) -> Result<SecMngReport, ParseError> {
        let mut r = info_fields(line, Self::PREFIX)?;
        let report = SecMngReport {
            op: r.wire()?,
            kind: r.wire()?,
            name: AtString::read(&mut r)?,
            md5: Md5Digest::read(&mut r)?,
        };
        r.finish()?;
        Ok(report)
    }
}

impl InfoLine for SecMngReport {
    const PREFIX: &'static str = "+USECMNG:";
}

/// What a list line tells of a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateFacts {
    /// The subject's common name (quotes shown as `'`, cut at [`MAX_SUBJECT_CN`]).
    pub subject_cn: AtString<MAX_SUBJECT_CN>,
    /// notAfter as `YYYY/MM/DD HH:MM:SS`.
    pub not_after: AtString<32>,
}

/// One line of `AT+USECMNG=3`: `"<tag>","<name>"`, and for a certificate with a subject common
/// name `,"<subject CN>","<notAfter>"`. List lines have no prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecMngListItem {
    /// The type, by its tag.
    pub kind: CredentialType,
    /// The internal name.
    pub name: CredentialName,
    /// The certificate facts (none for keys, nor for a certificate without a common name).
    pub certificate: Option<CertificateFacts>,
}

impl fmt::Display for SecMngListItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\",", self.kind.tag())?;
        self.name.write(f)?;
        if let Some(c) = &self.certificate {
            f.write_str(",")?;
            c.subject_cn.write(f)?;
            f.write_str(",")?;
            c.not_after.write(f)?;
        }
        Ok(())
    }
}

impl Wire for SecMngListItem {
    fn parse(line: &str) -> Result<SecMngListItem, ParseError> {
        let mut r = Args(line).reader();
        let position = r.next_position();
        let kind =
            CredentialType::from_tag(r.string(2)?).ok_or(ArgError::OutOfRange { position })?;
        let name = AtString::read(&mut r)?;
        let certificate = match AtString::read_opt(&mut r)? {
            None => None,
            Some(subject_cn) => Some(CertificateFacts {
                subject_cn,
                not_after: AtString::read(&mut r)?,
            }),
        };
        r.finish()?;
        Ok(SecMngListItem {
            kind,
            name,
            certificate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> CredentialName {
        CredentialName::new(s).unwrap()
    }

    #[test]
    fn types_keep_their_wire_values_and_tags() {
        let wire: Vec<(u8, &str)> = CredentialType::ALL
            .iter()
            .map(|t| (t.wire(), t.tag()))
            .collect();
        assert_eq!(
            wire,
            [(0, "CA"), (1, "CC"), (2, "PK"), (3, "SC"), (4, "VC")]
        );
        assert_eq!(CredentialType::from_wire(5), None);
        assert_eq!(
            CredentialType::from_tag("VC"),
            Some(CredentialType::SignatureVerificationCertificate)
        );
        assert_eq!(CredentialType::ServerCertificate.to_string(), "SC");
        assert!(!CredentialType::ClientPrivateKey.is_certificate());
    }

    #[test]
    fn commands_print_and_parse() {
        let import = SecMngCommand::Import {
            kind: CredentialType::ClientPrivateKey,
            name: name("DeviceKey"),
            size: 1217,
            password: Some(KeyPassword::new("keypass123").unwrap()),
        };
        assert_eq!(
            import.line().as_str(),
            "AT+USECMNG=0,2,\"DeviceKey\",1217,\"keypass123\""
        );
        assert_eq!(
            import.shown(),
            "AT+USECMNG=0,2,\"DeviceKey\",1217,\"<redacted>\""
        );
        assert_eq!(
            SecMngCommand::parse("0,2,\"DeviceKey\",1217,\"keypass123\""),
            Ok(import)
        );
        assert_eq!(SecMngCommand::parse("3"), Ok(SecMngCommand::List(None)));
        assert_eq!(
            SecMngCommand::List(Some(CredentialType::TrustedRootCa)).to_string(),
            "3,0"
        );
        let md5 = SecMngCommand::Md5 {
            kind: CredentialType::SignatureVerificationCertificate,
            name: name("CustomerFWVerificationCert"),
        };
        assert_eq!(
            md5.line().as_str(),
            "AT+USECMNG=4,4,\"CustomerFWVerificationCert\""
        );
        assert_eq!(md5.shown(), md5.line().as_str());
        assert_eq!(
            SecMngCommand::parse("1,3,\"Pinned\",\"ca.der\""),
            Ok(SecMngCommand::ImportFile {
                kind: CredentialType::ServerCertificate,
                name: name("Pinned"),
                file: FileName::new("ca.der").unwrap(),
                password: None
            })
        );
        // The size is kept as sent: the module's answer to a bad size is 1911, not 4.
        assert!(matches!(
            SecMngCommand::parse("0,0,\"x\",-1"),
            Ok(SecMngCommand::Import { size: -1, .. })
        ));
        for bad in [
            "5,0,\"x\"",
            "0,5,\"x\",1",
            "2,0",
            "2,0,\"x\",1",
            "0,0,\"x\",99999999999999999999",
            "3,7",
        ] {
            assert!(SecMngCommand::parse(bad).is_err(), "{bad}");
        }
        assert!(SecMngCommand::parse(&format!("2,0,\"{}\"", "n".repeat(201))).is_err());
    }

    #[test]
    fn report_and_list_lines() {
        let report = SecMngReport {
            op: SecMngReportOp::Md5,
            kind: CredentialType::TrustedRootCa,
            name: name("R"),
            md5: Md5Digest([0xab; 16]),
        };
        let text = format!("+USECMNG: 4,0,\"R\",\"{}\"", "ab".repeat(16));
        assert_eq!(report.to_string(), text);
        assert_eq!(SecMngReport::parse(&text), Ok(report));
        assert!(SecMngReport::parse("+USECMNG: 2,0,\"R\",\"00\"").is_err());
        assert!(SecMngReport::is_own("+USECMNG: 0,0,\"R\",\"x\""));

        let ca = SecMngListItem::parse("\"CA\",\"RootCA\",\"Root, Inc.\",\"2036/01/01 00:00:00\"");
        assert_eq!(
            ca,
            Ok(SecMngListItem {
                kind: CredentialType::TrustedRootCa,
                name: name("RootCA"),
                certificate: Some(CertificateFacts {
                    subject_cn: AtString::new("Root, Inc.").unwrap(),
                    not_after: AtString::new("2036/01/01 00:00:00").unwrap(),
                })
            })
        );
        let pk = SecMngListItem {
            kind: CredentialType::ClientPrivateKey,
            name: name("Key"),
            certificate: None,
        };
        assert_eq!(pk.to_string(), "\"PK\",\"Key\"");
        assert_eq!(SecMngListItem::parse("\"PK\",\"Key\""), Ok(pk));
        assert!(SecMngListItem::parse("\"XX\",\"Key\"").is_err());
        assert!(SecMngListItem::parse("\"CA\",\"R\",\"cn\"").is_err());
    }
}
