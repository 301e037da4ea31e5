//! The provisioning plan (`PLAN.toml`, spec/cli.md), loaded and checked entirely on the host
//! before anything is sent: every file read and parsed the way the module will parse it (so its
//! MD5 is known in advance), every key password tried, the seal password read and checked, every
//! name and value checked against the module's limits.
//!
//! Paths in the plan are relative to the plan's directory. Secrets come from files or the
//! environment, never from the plan itself: a plan can be committed, its secrets cannot.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use sealcell_at::commands::usecmng::{self, CredentialName, CredentialType, KeyPassword};
use sealcell_at::commands::usecprf::{
    CipherSuite, IanaForm, MinTlsVersion, PinLevel, Pinning, SecPrfOp, SecPrfReading, SecPrfValue,
    SecProfileId, ValidationLevel,
};
use sealcell_at::commands::{AtString, useccfg};
// The credential parsing of the module itself, so the host knows in advance the DER (and MD5)
// the module will store: the one reason this crate still depends on sealcell-store.
use sealcell_fw::credential;
use serde::Deserialize;
use zeroize::Zeroizing;

/// **TOBY-L2:** at most 16 items in the `+USECMNG` store.
pub const MAX_CREDENTIALS: usize = 16;
/// **TOBY-L2:** an import is at most 8192 bytes.
pub const MAX_CREDENTIAL_SIZE: usize = usecmng::MAX_IMPORT;
/// **TOBY-L2:** the seal password is 1..128 characters.
pub const MAX_SEAL_PASSWORD: usize = usecmng::MAX_PASSWORD;
/// **TOBY-L2:** internal names are 1..200 characters.
pub const MAX_NAME: usize = usecmng::MAX_NAME;

/// A loaded, checked plan.
#[derive(Debug)]
pub struct Plan {
    /// The plan file.
    pub path: PathBuf,
    /// The seal password, when the plan seals.
    pub seal: Option<SealPassword>,
    /// The credentials, in plan order.
    pub credentials: Vec<PlannedCredential>,
    /// The security profiles, in plan order.
    pub profiles: Vec<PlannedProfile>,
    /// SHA-256 of the plan file's bytes as loaded, lowercase hex (what a ledger records to tell
    /// plans apart).
    pub sha256: String,
}

/// The seal password (zeroized, redacted in `Debug`), checked against the module's rule.
pub struct SealPassword(pub(crate) useccfg::SealPassword);

impl fmt::Debug for SealPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealPassword(<redacted>)")
    }
}

/// One credential to import.
pub struct PlannedCredential {
    /// Its type.
    pub kind: CredentialType,
    /// The module's internal name.
    pub name: String,
    /// The same name, as the wire carries it.
    pub(crate) wire_name: CredentialName,
    /// The file it comes from.
    pub file: PathBuf,
    /// MD5 of the DER the module will store (what `+USECMNG` reports), lowercase hex.
    pub md5: String,
    /// SHA-256 of the same DER, lowercase hex (what a production ledger records: MD5 alone
    /// identifies nothing against a forger).
    pub sha256: String,
    /// The bytes to send: the file as it is (an encrypted key travels encrypted).
    pub(crate) upload: Zeroizing<Vec<u8>>,
    /// The password of an encrypted PKCS#8 key.
    pub(crate) key_password: Option<KeyPassword>,
}

impl fmt::Debug for PlannedCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlannedCredential")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("file", &self.file)
            .field("md5", &self.md5)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

/// One `+USECPRF` profile: the value every op it covers must read back, and how to set it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedProfile {
    /// Profile id, 0..4.
    pub id: SecProfileId,
    /// The ops, in the order they are set.
    pub settings: Vec<ProfileSetting>,
    /// The credentials it names (root, client certificate and key, pinned certificate).
    pub references: Vec<(CredentialType, String)>,
}

/// One op of a profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileSetting {
    /// What `AT+USECPRF=<p>,<op>` must answer; it names the op.
    pub read_back: SecPrfReading,
    /// The value that sets it; `None` when it is the default (a profile reset gives it).
    pub set: Option<SecPrfValue>,
}

impl ProfileSetting {
    /// The op.
    pub fn op(&self) -> SecPrfOp {
        self.read_back.op()
    }

    /// The setting `value` gives; `default` says whether a profile reset gives it already.
    fn new(value: SecPrfValue, default: bool) -> Result<ProfileSetting, String> {
        let read_back = value
            .reading()
            .ok_or_else(|| format!("op {} is write-only and cannot be checked", value.op()))?;
        Ok(ProfileSetting {
            read_back,
            set: (!default).then_some(value),
        })
    }
}

/// Why a plan cannot be used. Nothing has been sent to the module when one of these is
/// returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A file could not be read.
    // The cause is the source, not part of this message: error chains print it once.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML does not describe a plan.
    #[error("{} is not a valid plan: {message}", path.display())]
    Syntax {
        /// The plan.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("{} : {message}", path.display())]
    Invalid {
        /// The plan.
        path: PathBuf,
        /// What is wrong, naming the value.
        message: String,
    },
    /// A credential file is not what its type needs (or its password is wrong).
    #[error("credential \"{name}\" ({}): {source}", file.display())]
    Credential {
        /// The credential's name.
        name: String,
        /// Its file.
        file: PathBuf,
        /// The parse error.
        source: credential::FormatError,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    seal: Option<SealFile>,
    #[serde(default)]
    credential: Vec<CredentialFile>,
    #[serde(default)]
    profile: Vec<ProfileFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SealFile {
    password_file: Option<PathBuf>,
    password_env: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum Kind {
    Ca,
    ClientCert,
    ClientKey,
    ServerCert,
    VerificationCert,
}

impl From<Kind> for CredentialType {
    fn from(k: Kind) -> CredentialType {
        match k {
            Kind::Ca => CredentialType::TrustedRootCa,
            Kind::ClientCert => CredentialType::ClientCertificate,
            Kind::ClientKey => CredentialType::ClientPrivateKey,
            Kind::ServerCert => CredentialType::ServerCertificate,
            Kind::VerificationCert => CredentialType::SignatureVerificationCertificate,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialFile {
    #[serde(rename = "type")]
    kind: Kind,
    name: String,
    file: PathBuf,
    password_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    id: u8,
    validation: Option<u8>,
    tls_version: Option<u8>,
    cipher: Option<toml::Value>,
    root: Option<String>,
    hostname: Option<String>,
    sni: Option<String>,
    client_cert: Option<String>,
    client_key: Option<String>,
    pin: Option<PinFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PinFile {
    cert: String,
    level: u8,
}

impl Plan {
    /// Reads and checks the plan at `path`.
    pub fn load(path: &Path) -> Result<Plan, PlanError> {
        let text =
            crate::bounded_read::read_capped_text(path, crate::bounded_read::MAX_PLAN_FILE, "plan")
                .map_err(|e| PlanError::Read {
                    path: path.to_path_buf(),
                    source: e.into(),
                })?;
        let file: PlanFile = toml::from_str(&text).map_err(|e| PlanError::Syntax {
            path: path.to_path_buf(),
            message: e.message().to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let invalid = |message: String| PlanError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let seal = file
            .seal
            .map(|s| load_seal(base, s).map_err(&invalid))
            .transpose()?;
        if file.credential.len() > MAX_CREDENTIALS {
            return Err(invalid(format!(
                "{} credentials; the module holds at most {MAX_CREDENTIALS}",
                file.credential.len()
            )));
        }
        let mut seen = BTreeSet::new();
        let mut credentials = Vec::new();
        for c in file.credential {
            let wire_name = check_name(&c.name).map_err(&invalid)?;
            let kind = CredentialType::from(c.kind);
            if !seen.insert((kind.wire(), c.name.clone())) {
                return Err(invalid(format!(
                    "credential \"{}\" of type {kind} appears twice",
                    c.name
                )));
            }
            credentials.push(load_credential(base, kind, wire_name, c)?);
        }
        let mut ids = BTreeSet::new();
        let mut profiles = Vec::new();
        for p in file.profile {
            if !ids.insert(p.id) {
                return Err(invalid(format!("profile {} appears twice", p.id)));
            }
            profiles.push(plan_profile(p).map_err(&invalid)?);
        }
        Ok(Plan {
            path: path.to_path_buf(),
            seal,
            credentials,
            profiles,
            sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes())),
        })
    }
}

fn resolve(base: &Path, file: &Path) -> PathBuf {
    if file.is_absolute() {
        file.to_path_buf()
    } else {
        base.join(file)
    }
}

/// Reads a secret file: its content without one trailing newline (`echo pwd > file`).
fn read_secret(path: &Path) -> Result<Zeroizing<String>, String> {
    // A key password is at most what a credential file can be.
    let bytes = Zeroizing::new(
        crate::bounded_read::read_capped(
            path,
            crate::bounded_read::MAX_CREDENTIAL_FILE,
            "password",
        )
        .map_err(|e| e.to_string())?,
    );
    let text =
        std::str::from_utf8(&bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    Ok(Zeroizing::new(text.to_string()))
}

fn load_seal(base: &Path, seal: SealFile) -> Result<SealPassword, String> {
    let password = match (seal.password_file, seal.password_env) {
        (Some(file), None) => read_secret(&resolve(base, &file))?,
        (None, Some(var)) => Zeroizing::new(
            std::env::var(&var)
                .map_err(|_| format!("[seal] password_env: ${var} is not set (or not UTF-8)"))?,
        ),
        _ => return Err("[seal] needs exactly one of password_file and password_env".into()),
    };
    if password.is_empty() || password.len() > MAX_SEAL_PASSWORD {
        return Err(format!(
            "the seal password has {} characters; the module takes 1..{MAX_SEAL_PASSWORD}",
            password.len()
        ));
    }
    useccfg::SealPassword::new(&password)
        .map(SealPassword)
        .map_err(|_| {
            "the seal password must be printable ASCII without `\"` (the module's rule)".into()
        })
}

/// A credential name as the module takes it: 1..200 characters an AT string can carry.
fn check_name(name: &str) -> Result<CredentialName, String> {
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(format!(
            "name \"{name}\" must have 1..{MAX_NAME} characters"
        ));
    }
    CredentialName::new(name).map_err(|e| format!("name {name:?} {e}"))
}

fn load_credential(
    base: &Path,
    kind: CredentialType,
    wire_name: CredentialName,
    c: CredentialFile,
) -> Result<PlannedCredential, PlanError> {
    let file = resolve(base, &c.file);
    let upload = Zeroizing::new(
        crate::bounded_read::read_capped(
            &file,
            crate::bounded_read::MAX_CREDENTIAL_FILE,
            "credential",
        )
        .map_err(|e| PlanError::Read {
            path: file.clone(),
            source: e.into(),
        })?,
    );
    let key_password = c
        .password_file
        .map(|p| {
            let p = resolve(base, &p);
            let invalid = |message: String| PlanError::Invalid {
                path: p.clone(),
                message,
            };
            let text = read_secret(&p).map_err(invalid)?;
            KeyPassword::new(&text).map_err(|e| invalid(format!("the key password {e}")))
        })
        .transpose()?;
    let fail = |source| PlanError::Credential {
        name: c.name.clone(),
        file: file.clone(),
        source,
    };
    if upload.len() > MAX_CREDENTIAL_SIZE {
        return Err(fail(credential::FormatError::TooLarge(upload.len())));
    }
    let parsed = credential::parse(
        kind,
        &upload,
        key_password.as_ref().map(|p| p.expose().as_bytes()),
    )
    .map_err(fail)?;
    Ok(PlannedCredential {
        kind,
        name: c.name,
        wire_name,
        file,
        md5: parsed.facts.md5_hex(),
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            parsed.der.as_slice(),
        )),
        upload,
        key_password,
    })
}

fn plan_profile(p: ProfileFile) -> Result<PlannedProfile, String> {
    let pid = p.id;
    let id = SecProfileId::new(pid).ok_or_else(|| format!("profile id {pid} is not 0..4"))?;
    let validation: ValidationLevel = level(pid, "validation", p.validation, 3)?;
    let tls: MinTlsVersion = level(pid, "tls_version", p.tls_version, 3)?;
    let mut settings = vec![
        ProfileSetting::new(
            SecPrfValue::ValidationLevel(validation),
            validation == ValidationLevel::default(),
        )?,
        ProfileSetting::new(
            SecPrfValue::MinTlsVersion(tls),
            tls == MinTlsVersion::default(),
        )?,
        cipher_setting(pid, p.cipher.as_ref())?,
    ];
    let (root, default) = string_op(pid, "root", &p.root)?;
    settings.push(ProfileSetting::new(
        SecPrfValue::TrustedRoot(root),
        default,
    )?);
    let (hostname, default) = string_op(pid, "hostname", &p.hostname)?;
    settings.push(ProfileSetting::new(
        SecPrfValue::ExpectedHostname(hostname),
        default,
    )?);
    let (cert, default) = string_op(pid, "client_cert", &p.client_cert)?;
    settings.push(ProfileSetting::new(
        SecPrfValue::ClientCertificate(cert),
        default,
    )?);
    let (key, default) = string_op(pid, "client_key", &p.client_key)?;
    settings.push(ProfileSetting::new(SecPrfValue::ClientKey(key), default)?);
    let (sni, default) = string_op(pid, "sni", &p.sni)?;
    settings.push(ProfileSetting::new(
        SecPrfValue::ServerNameIndication(sni),
        default,
    )?);

    let mut references = Vec::new();
    for (kind, name) in [
        (CredentialType::TrustedRootCa, &p.root),
        (CredentialType::ClientCertificate, &p.client_cert),
        (CredentialType::ClientPrivateKey, &p.client_key),
        (
            CredentialType::ServerCertificate,
            &p.pin.as_ref().map(|pin| pin.cert.clone()),
        ),
    ] {
        if let Some(name) = name.as_ref().filter(|n| !n.is_empty()) {
            references.push((kind, name.clone()));
        }
    }
    settings.push(match &p.pin {
        None => ProfileSetting::new(
            SecPrfValue::ServerCertificatePinning(Pinning::default()),
            true,
        )?,
        Some(pin) => {
            let level = PinLevel::try_from(i64::from(pin.level))
                .map_err(|_| format!("profile {pid}: pin level {} is not 0..2", pin.level))?;
            let name = check_name(&pin.cert).map_err(|e| format!("profile {pid}: pin: {e}"))?;
            ProfileSetting::new(
                SecPrfValue::ServerCertificatePinning(Pinning { name, level }),
                false,
            )?
        }
    });
    Ok(PlannedProfile {
        id,
        settings,
        references,
    })
}

/// A string op of the plan (`root`, `hostname`, ...) as the wire carries it, and whether it is
/// the factory value (empty).
fn string_op<const N: usize>(
    id: u8,
    what: &str,
    value: &Option<String>,
) -> Result<(AtString<N>, bool), String> {
    let value = value.as_deref().unwrap_or("");
    let text = AtString::new(value).map_err(|e| format!("profile {id}: {what}: {e}"))?;
    Ok((text, value.is_empty()))
}

/// A level of the plan (`validation`, `tls_version`): its wire value, or the factory one.
fn level<T: TryFrom<i64> + Default>(
    id: u8,
    what: &str,
    v: Option<u8>,
    max: u8,
) -> Result<T, String> {
    match v {
        None => Ok(T::default()),
        Some(v) => T::try_from(i64::from(v))
            .map_err(|_| format!("profile {id}: {what} {v} is not 0..{max}")),
    }
}

/// `cipher = "C02B"` (IANA code, set with the application note's `255` form) or `0`.
fn cipher_setting(id: u8, cipher: Option<&toml::Value>) -> Result<ProfileSetting, String> {
    let automatic = ProfileSetting::new(SecPrfValue::CipherSuite(CipherSuite::Automatic), true);
    let code = match cipher {
        None => return automatic,
        Some(toml::Value::Integer(0)) => return automatic,
        Some(toml::Value::String(s)) if s == "0" => return automatic,
        Some(toml::Value::String(s)) => s.trim_start_matches("0x").to_ascii_uppercase(),
        Some(other) => {
            return Err(format!(
                "profile {id}: cipher {other} is not an IANA code like \"C02B\" or 0"
            ));
        }
    };
    let not_a_code =
        || format!("profile {id}: cipher \"{code}\" is not a 4-hex-digit IANA code like \"C02B\"");
    if code.len() != 4 || !code.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_a_code());
    }
    let code = u16::from_str_radix(&code, 16).map_err(|_| not_a_code())?;
    ProfileSetting::new(
        SecPrfValue::CipherSuite(CipherSuite::Iana {
            form: IanaForm::ApplicationNote,
            code,
        }),
        false,
    )
}

#[cfg(test)]
mod tests {
    use sealcell_at::commands::SetCommand;
    use sealcell_at::commands::usecprf::{SecPrfRead, SecPrfSet};

    use super::*;

    fn plan(dir: &Path, toml: &str) -> Result<Plan, PlanError> {
        let path = dir.join("plan.toml");
        std::fs::write(&path, toml).map_err(|source| PlanError::Read {
            path: path.clone(),
            source,
        })?;
        Plan::load(&path)
    }

    #[test]
    fn profile_settings_cover_every_op_with_defaults() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = plan(
            dir.path(),
            r#"
            [[profile]]
            id = 1
            validation = 2
            tls_version = 3
            cipher = "c02b"
            root = "RootCA"
            pin = { cert = "ServerPin", level = 2 }
            "#,
        );
        let Ok(p) = p else { panic!("{p:?}") };
        let profile = &p.profiles[0];
        let s = &profile.settings;
        let ops: Vec<u8> = s.iter().map(|x| x.op().wire()).collect();
        assert_eq!(ops, [0, 1, 2, 3, 4, 5, 6, 10, 12]);
        // What travels, byte for byte: the set line and the read answer the module must give.
        let wire = |op: SecPrfOp| {
            let x = s.iter().find(|x| x.op() == op).cloned().unwrap();
            let set = x.set.map(|value| {
                let line = SecPrfSet {
                    profile: profile.id,
                    value,
                }
                .line();
                line.to_string()
            });
            let read = SecPrfRead {
                profile: profile.id,
                reading: x.read_back,
            }
            .to_string();
            (set, read)
        };
        assert_eq!(
            wire(SecPrfOp::ValidationLevel),
            (Some("AT+USECPRF=1,0,2".into()), "+USECPRF: 1,0,2".into())
        );
        assert_eq!(
            wire(SecPrfOp::MinTlsVersion),
            (Some("AT+USECPRF=1,1,3".into()), "+USECPRF: 1,1,3".into())
        );
        assert_eq!(
            wire(SecPrfOp::CipherSuite),
            (
                Some("AT+USECPRF=1,2,255,\"C0\",\"2B\"".into()),
                "+USECPRF: 1,2,255,\"C02B\"".into()
            )
        );
        assert_eq!(
            wire(SecPrfOp::TrustedRoot),
            (
                Some("AT+USECPRF=1,3,\"RootCA\"".into()),
                "+USECPRF: 1,3,\"RootCA\"".into()
            )
        );
        assert_eq!(
            wire(SecPrfOp::ExpectedHostname),
            (None, "+USECPRF: 1,4,\"\"".into())
        );
        assert_eq!(
            wire(SecPrfOp::ServerCertificatePinning),
            (
                Some("AT+USECPRF=1,12,\"ServerPin\",2".into()),
                "+USECPRF: 1,12,\"ServerPin\",2".into()
            )
        );
        assert!(p.seal.is_none());
    }

    #[test]
    fn refusals_name_the_value() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for (toml, expect) in [
            ("[[profile]]\nid = 5", "profile id 5 is not 0..4"),
            (
                "[[profile]]\nid = 1\nvalidation = 4",
                "validation 4 is not 0..3",
            ),
            (
                "[[profile]]\nid = 1\ncipher = \"C0\"",
                "\"C0\" is not a 4-hex",
            ),
            ("[seal]", "exactly one of password_file"),
            (
                "[seal]\npassword_env = \"SEALCELL_TEST_UNSET_VAR\"",
                "$SEALCELL_TEST_UNSET_VAR is not set",
            ),
            ("bogus = 1", "unknown field `bogus`"),
            (
                "[[profile]]\nid = 1\nroot = \"a\\\"b\"",
                "profile 1: root: holds a quote",
            ),
            (
                "[[profile]]\nid = 1\npin = { cert = \"P\", level = 3 }",
                "pin level 3 is not 0..2",
            ),
        ] {
            let e = plan(dir.path(), toml).map(|_| ()).unwrap_err().to_string();
            assert!(e.contains(expect), "{toml}: {e}");
        }
    }

    /// A fixture of `tests/fixtures/legacy-keys` and openssl's MD5 of its decrypted DER.
    fn legacy_key(name: &str) -> (Vec<u8>, String) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/legacy-keys");
        let read = |f: &str| std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        let facts = String::from_utf8(read("facts.txt")).unwrap_or_else(|e| panic!("{e}"));
        let md5 = facts
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}\t")))
            .and_then(|rest| rest.rsplit('\t').next())
            .unwrap_or_else(|| panic!("{name} not in facts.txt"));
        (read(name), md5.to_string())
    }

    #[test]
    fn key_files_encrypted_the_way_older_tools_write_them_are_decrypted_and_hashed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("pw"), "legacy-pass\n").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("bad"), "legacy-pass!\n").unwrap_or_else(|e| panic!("{e}"));
        for name in [
            "rsa-pbe-md5-des.pem",
            "ec-pbe-sha1-des.der",
            "rsa-pbe-sha1-3des.der",
            "ec-pbe-sha1-2des.pem",
            "rsa-default.pem",
            "rsa-pem-des3.pem",
            "ec-pem-des3.pem",
        ] {
            let (bytes, md5) = legacy_key(name);
            std::fs::write(dir.path().join(name), &bytes).unwrap_or_else(|e| panic!("{e}"));
            let file = |password: &str| CredentialFile {
                kind: Kind::ClientKey,
                name: "DeviceKey".into(),
                file: PathBuf::from(name),
                password_file: Some(PathBuf::from(password)),
            };
            let key = CredentialName::new("DeviceKey").unwrap();
            let planned = load_credential(
                dir.path(),
                CredentialType::ClientPrivateKey,
                key.clone(),
                file("pw"),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            // The MD5 the module will report: openssl's, of the decrypted key.
            assert_eq!(planned.md5, md5, "{name}");
            // What travels is the file as it is, encrypted, with its password.
            assert_eq!(planned.upload.as_slice(), bytes.as_slice(), "{name}");
            assert_eq!(
                planned.key_password.as_ref().map(|p| p.expose()),
                Some("legacy-pass")
            );
            let e = load_credential(
                dir.path(),
                CredentialType::ClientPrivateKey,
                key,
                file("bad"),
            )
            .map(|_| ())
            .unwrap_err();
            assert!(
                matches!(
                    &e,
                    PlanError::Credential {
                        source: credential::FormatError::KeyDecryption,
                        ..
                    }
                ),
                "{name}: {e:?}"
            );
            assert!(!e.to_string().contains("legacy-pass"), "{e}");
        }
    }

    #[test]
    fn seal_password_file_is_read_without_its_newline_and_checked() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("pw"), "my_pwd\n").unwrap_or_else(|e| panic!("{e}"));
        let p = plan(dir.path(), "[seal]\npassword_file = \"pw\"");
        let Ok(p) = p else { panic!("{p:?}") };
        assert_eq!(p.seal.as_ref().map(|s| s.0.expose()), Some("my_pwd"));
        assert!(!format!("{p:?}").contains("my_pwd"));
        std::fs::write(dir.path().join("pw"), "has\"quote").unwrap_or_else(|e| panic!("{e}"));
        let e = plan(dir.path(), "[seal]\npassword_file = \"pw\"")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("printable ASCII"), "{e}");
        assert!(!e.contains("has\"quote"), "{e}");
    }
}
