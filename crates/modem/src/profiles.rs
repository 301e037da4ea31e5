//! `+USECPRF` security profiles (at-contract §4; u-blox AT manual §26.3): what a TLS
//! connection of the module will use. Profiles 0..4 are kept in NVM (`nvm.toml`) except their
//! secrets — the client key password (op 7), the PSK (op 8) and a resumption master key — which
//! stay in memory only: never on disk, never read back.

use sealcell_at::commands::usecprf::{
    self, IanaForm, LegacySuite, MinTlsVersion, PinLevel, SecProfileId, ValidationLevel,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Number of security profiles (**0..4 on TOBY-L2**).
pub const PROFILES: usize = SecProfileId::COUNT as usize;

/// The legacy cipher suite numbers (TOBY-L2 family, `AT+USECPRF=<p>,2,<n>`) and their IANA
/// codes: the wire vocabulary's table.
pub use sealcell_at::commands::usecprf::LEGACY_SUITES;

/// The cipher suite setting (op 2) as `nvm.toml` stores it (`kind = "iana"`, `form = 255`,
/// `code = 49195`); [`usecprf::CipherSuite`] is the same setting on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CipherSuite {
    /// 0: negotiated from a modern default list (which includes the application note's three).
    #[default]
    Automatic,
    /// 1..15: the legacy table.
    Legacy {
        /// The legacy number.
        number: u8,
    },
    /// 99 or 255 with the two IANA bytes.
    Iana {
        /// 99 (the u-blox manual's form) or 255 (the application note's).
        form: u8,
        /// The IANA code, e.g. 0xC02B.
        code: u16,
    },
}

impl CipherSuite {
    /// The IANA code this setting asks for (`None` for automatic, and for a stored number the
    /// wire does not define).
    pub fn iana(&self) -> Option<u16> {
        self.wire().and_then(usecprf::CipherSuite::iana_code)
    }

    /// The setting as the wire writes it; `None` for a stored value the wire cannot carry (a
    /// hand-edited `nvm.toml`).
    pub fn wire(&self) -> Option<usecprf::CipherSuite> {
        Some(match *self {
            CipherSuite::Automatic => usecprf::CipherSuite::Automatic,
            CipherSuite::Legacy { number } => {
                usecprf::CipherSuite::Legacy(LegacySuite::new(number)?)
            }
            CipherSuite::Iana { form, code } => usecprf::CipherSuite::Iana {
                form: IanaForm::try_from(i64::from(form)).ok()?,
                code,
            },
        })
    }
}

impl From<usecprf::CipherSuite> for CipherSuite {
    fn from(c: usecprf::CipherSuite) -> CipherSuite {
        match c {
            usecprf::CipherSuite::Automatic => CipherSuite::Automatic,
            usecprf::CipherSuite::Legacy(s) => CipherSuite::Legacy { number: s.get() },
            usecprf::CipherSuite::Iana { form, code } => CipherSuite::Iana {
                form: form.wire(),
                code,
            },
        }
    }
}

/// The persistent part of one profile.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecurityProfile {
    /// op 0: 0 none, 1 root CA, 2 + hostname, 3 + validity dates.
    pub validation: u8,
    /// op 1: minimum TLS version, 0 any, 1..3 TLS 1.0..1.2.
    pub min_tls: u8,
    /// op 2.
    pub cipher: CipherSuite,
    /// op 3: trusted root CA internal name.
    pub root: String,
    /// op 4: expected server hostname.
    pub hostname: String,
    /// op 5: client certificate internal name.
    pub client_cert: String,
    /// op 6: client private key internal name.
    pub client_key: String,
    /// op 9: PSK identity and its encoding (0 ASCII, 1 hex).
    pub psk_identity: String,
    /// op 9 encoding.
    pub psk_identity_hex: bool,
    /// op 10: server name indication.
    pub sni: String,
    /// op 12: pinned server certificate internal name.
    pub pin_name: String,
    /// op 12: pinning level (0 public key by value, 1 SubjectPublicKeyInfo bytes, 2 certificate).
    pub pin_level: u8,
    /// op 13 tag 0: session resumption on (stored; resumption is not supported, as on TOBY-L2).
    pub resumption: u8,
    /// op 13 tag 1: resumption type (0 session id).
    pub resumption_type: u8,
    /// op 13 tag 2: the session id (base64), stored as given.
    pub resumption_session_id: String,
}

// The levels stay numbers on disk (and in this struct, which `command/http.rs` reads as
// numbers): every write goes through the wire enums in `command/tls_profile.rs`, and these
// accessors give them back typed.
impl SecurityProfile {
    /// Op 0 as its type; `None` for a stored number the wire does not define (a hand-edited
    /// `nvm.toml`).
    pub fn validation_level(&self) -> Option<ValidationLevel> {
        ValidationLevel::try_from(i64::from(self.validation)).ok()
    }

    /// Op 1 as its type; `None` for a stored number the wire does not define.
    pub fn min_tls_version(&self) -> Option<MinTlsVersion> {
        MinTlsVersion::try_from(i64::from(self.min_tls)).ok()
    }

    /// Op 12's level as its type; `None` for a stored number the wire does not define.
    pub fn pinning_level(&self) -> Option<PinLevel> {
        PinLevel::try_from(i64::from(self.pin_level)).ok()
    }
}

/// The secrets of one profile: memory only.
#[derive(Default)]
pub struct ProfileSecrets {
    /// op 7: client key password.
    pub key_password: Option<Zeroizing<String>>,
    /// op 8: pre-shared key and whether it was given in hex.
    pub psk: Option<(Zeroizing<String>, bool)>,
    /// op 13 tag 2: the resumption master key (base64).
    pub master_key: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for ProfileSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileSecrets")
            .field("key_password", &self.key_password.as_ref().map(|_| "[set]"))
            .field("psk", &self.psk.as_ref().map(|_| "[set]"))
            .field("master_key", &self.master_key.as_ref().map(|_| "[set]"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `nvm.toml` keeps the levels as numbers and the cipher suite as a tagged table, as files
    /// written before the wire vocabulary existed have them.
    #[test]
    fn the_stored_form_is_unchanged() {
        let text = "validation = 3\nmin_tls = 3\npin_name = \"ServerPin\"\npin_level = 2\n\
                    \n[cipher]\nkind = \"iana\"\nform = 255\ncode = 49195\n";
        let p: SecurityProfile = toml::from_str(text).unwrap();
        assert_eq!(
            p.validation_level(),
            Some(ValidationLevel::RootCaHostnameDates)
        );
        assert_eq!(p.min_tls_version(), Some(MinTlsVersion::Tls1_2));
        assert_eq!(p.pinning_level(), Some(PinLevel::Certificate));
        assert_eq!(
            p.cipher.wire(),
            Some(usecprf::CipherSuite::Iana {
                form: IanaForm::ApplicationNote,
                code: 0xC02B
            })
        );
        assert_eq!(p.cipher.iana(), Some(0xC02B));
        let again = toml::to_string(&p).unwrap();
        assert!(again.contains("validation = 3\n"), "{again}");
        assert!(again.contains("pin_level = 2\n"), "{again}");
        assert!(
            again.contains("[cipher]\nkind = \"iana\"\nform = 255\ncode = 49195\n"),
            "{again}"
        );
        assert_eq!(toml::from_str::<SecurityProfile>(&again).unwrap(), p);
    }

    #[test]
    fn wire_and_stored_cipher_suites_convert_both_ways() {
        for wire in [
            usecprf::CipherSuite::Automatic,
            usecprf::CipherSuite::Legacy(LegacySuite::new(15).unwrap()),
            usecprf::CipherSuite::Iana {
                form: IanaForm::UBlox,
                code: 0xC02F,
            },
        ] {
            assert_eq!(CipherSuite::from(wire).wire(), Some(wire));
        }
        // A hand-edited file with a number the wire does not define.
        assert_eq!(CipherSuite::Legacy { number: 16 }.wire(), None);
        assert_eq!(CipherSuite::Legacy { number: 16 }.iana(), None);
        assert_eq!(
            SecurityProfile {
                validation: 7,
                ..Default::default()
            }
            .validation_level(),
            None
        );
    }
}
