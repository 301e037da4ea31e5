//! `+USECPRF` (at-contract §4; u-blox AT manual §26.3): security profiles 0..4.
//!
//! `AT+USECPRF=<p>` resets profile p; `AT+USECPRF=<p>,<op>,<values>` sets one op;
//! `AT+USECPRF=<p>,<op>` reads it as `+USECPRF: <p>,<op>,<value...>`, strings quoted. Secrets (op 7
//! key password, op 8 PSK, the op 13 master key) are accepted, kept in memory only, and never
//! read back (`+CME ERROR: 3`). Wrong profile, op, type, range or length: `+CME ERROR: 4`.
//!
//! The arguments and the answers are the wire vocabulary's
//! ([`sealcell_at::commands::usecprf`]): this module only moves values between them and the
//! stored profile.

use sealcell_at::CmeError;
use sealcell_at::commands::Wire;
use sealcell_at::commands::usecprf::{
    self, Pinning, PskEncoding, PskIdentity, ResumptionReading, ResumptionSetting, SecPrfCommand,
    SecPrfOp, SecPrfRead, SecPrfReading, SecPrfSet, SecPrfValue, SecProfileId,
};
use sealcell_at::commands::{AtString, Secret};
use sealcell_at::syntax::Form;
use zeroize::Zeroizing;

use super::{CmdResult, Ctx, Outcome, undefined_form};
use crate::cme_map::Failure;
use crate::job::TlsSettings;
use crate::profiles::{ProfileSecrets, SecurityProfile};
use sealcell_store::credential::CredentialType;

/// The `+USECPRF` command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// `+USECPRF`.
    SecurityProfile,
}

impl Cmd {
    pub(crate) fn from_name(name: &str) -> Option<Cmd> {
        (name == "+USECPRF").then_some(Cmd::SecurityProfile)
    }
}

pub(crate) fn execute(_cmd: Cmd, form: Form<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    match form {
        Form::Set(args) => {
            match SecPrfCommand::parse(args.as_str()).map_err(Failure::from)? {
                SecPrfCommand::Reset(p) => reset(ctx, p)?,
                SecPrfCommand::Read { profile, op } => read(ctx, profile, op)?,
                SecPrfCommand::Set(s) => set(ctx, s)?,
            }
            Ok(Outcome::Done)
        }
        Form::Test => {
            ctx.info(usecprf::TEST_RESPONSE.as_bytes());
            Ok(Outcome::Done)
        }
        form => undefined_form(form),
    }
}

fn save(ctx: &mut Ctx<'_>, p: SecProfileId, profile: SecurityProfile) -> Result<(), CmeError> {
    ctx.update_nvm(|n| {
        if profile == SecurityProfile::default() {
            n.security_profiles.remove(&p.to_string());
        } else {
            n.security_profiles.insert(p.to_string(), profile);
        }
    })
}

fn reset(ctx: &mut Ctx<'_>, p: SecProfileId) -> Result<(), CmeError> {
    ctx.module.profile_secrets[p.index()] = ProfileSecrets::default();
    save(ctx, p, SecurityProfile::default())
}

/// A secret, or `None` when it is empty (an empty value clears it).
fn kept<const N: usize>(secret: &Secret<N>) -> Option<Zeroizing<String>> {
    (!secret.is_empty()).then(|| Zeroizing::new(secret.expose().to_string()))
}

fn set(ctx: &mut Ctx<'_>, s: SecPrfSet) -> Result<(), CmeError> {
    let p = s.profile;
    let mut prof = ctx.module.security_profile(p.index());
    match s.value {
        SecPrfValue::ValidationLevel(v) => prof.validation = v.wire(),
        SecPrfValue::MinTlsVersion(v) => prof.min_tls = v.wire(),
        SecPrfValue::CipherSuite(c) => prof.cipher = c.into(),
        SecPrfValue::TrustedRoot(n) => prof.root = n.as_str().to_string(),
        SecPrfValue::ExpectedHostname(h) => prof.hostname = h.as_str().to_string(),
        SecPrfValue::ClientCertificate(n) => prof.client_cert = n.as_str().to_string(),
        SecPrfValue::ClientKey(n) => prof.client_key = n.as_str().to_string(),
        // Secrets live in memory only: nothing to save.
        SecPrfValue::ClientKeyPassword(pw) => {
            ctx.module.profile_secrets[p.index()].key_password = kept(&pw);
            return Ok(());
        }
        SecPrfValue::PreSharedKey(psk) => {
            let hex = psk.encoding() == PskEncoding::Hex;
            ctx.module.profile_secrets[p.index()].psk = kept(psk.key()).map(|k| (k, hex));
            return Ok(());
        }
        SecPrfValue::PskIdentity(id) => {
            prof.psk_identity = id.identity().as_str().to_string();
            prof.psk_identity_hex = id.encoding() == PskEncoding::Hex;
        }
        SecPrfValue::ServerNameIndication(n) => prof.sni = n.as_str().to_string(),
        SecPrfValue::ServerCertificatePinning(pin) => {
            prof.pin_name = pin.name.as_str().to_string();
            prof.pin_level = pin.level.wire();
        }
        SecPrfValue::SessionResumption(r) => match r {
            ResumptionSetting::Enabled(on) => prof.resumption = u8::from(on),
            ResumptionSetting::Type(t) => prof.resumption_type = t.wire(),
            ResumptionSetting::Session { id, master_key } => {
                prof.resumption_session_id = id.as_str().to_string();
                ctx.module.profile_secrets[p.index()].master_key =
                    master_key.as_ref().and_then(kept);
            }
        },
    }
    save(ctx, p, prof)
}

fn read(ctx: &mut Ctx<'_>, p: SecProfileId, op: SecPrfOp) -> Result<(), CmeError> {
    // Secrets are write-only.
    if !op.is_readable() {
        return Err(CmeError::OperationNotAllowed);
    }
    let prof = ctx.module.security_profile(p.index());
    for reading in readings(&prof, op) {
        ctx.info_fmt(format_args!(
            "{}",
            SecPrfRead {
                profile: p,
                reading
            }
        ));
    }
    Ok(())
}

/// A stored value the wire cannot carry (only a hand-edited `nvm.toml` has one) reads as the
/// factory value, with a warning.
fn or_factory<T: Default>(v: Option<T>, op: SecPrfOp) -> T {
    v.unwrap_or_else(|| {
        tracing::warn!(
            op = op.wire(),
            "stored security profile value is not a wire value"
        );
        T::default()
    })
}

/// What reading `op` answers, one line each (op 13 has three). Stored strings came from the
/// wire; [`AtString::lossy`] only matters for a hand-edited `nvm.toml`.
fn readings(prof: &SecurityProfile, op: SecPrfOp) -> Vec<SecPrfReading> {
    let reading = match op {
        SecPrfOp::ValidationLevel => {
            SecPrfReading::ValidationLevel(or_factory(prof.validation_level(), op))
        }
        SecPrfOp::MinTlsVersion => {
            SecPrfReading::MinTlsVersion(or_factory(prof.min_tls_version(), op))
        }
        SecPrfOp::CipherSuite => SecPrfReading::CipherSuite(or_factory(prof.cipher.wire(), op)),
        SecPrfOp::TrustedRoot => SecPrfReading::TrustedRoot(AtString::lossy(&prof.root)),
        SecPrfOp::ExpectedHostname => {
            SecPrfReading::ExpectedHostname(AtString::lossy(&prof.hostname))
        }
        SecPrfOp::ClientCertificate => {
            SecPrfReading::ClientCertificate(AtString::lossy(&prof.client_cert))
        }
        SecPrfOp::ClientKey => SecPrfReading::ClientKey(AtString::lossy(&prof.client_key)),
        SecPrfOp::PskIdentity => {
            let encoding = if prof.psk_identity_hex {
                PskEncoding::Hex
            } else {
                PskEncoding::Ascii
            };
            let id = PskIdentity::new(AtString::lossy(&prof.psk_identity), encoding).ok();
            SecPrfReading::PskIdentity(or_factory(id, op))
        }
        SecPrfOp::ServerNameIndication => {
            SecPrfReading::ServerNameIndication(AtString::lossy(&prof.sni))
        }
        SecPrfOp::ServerCertificatePinning => SecPrfReading::ServerCertificatePinning(Pinning {
            name: AtString::lossy(&prof.pin_name),
            level: or_factory(prof.pinning_level(), op),
        }),
        SecPrfOp::SessionResumption => {
            let resumption_type =
                usecprf::ResumptionType::try_from(i64::from(prof.resumption_type));
            return vec![
                SecPrfReading::SessionResumption(ResumptionReading::Enabled(prof.resumption != 0)),
                SecPrfReading::SessionResumption(ResumptionReading::Type(or_factory(
                    resumption_type.ok(),
                    op,
                ))),
                SecPrfReading::SessionResumption(ResumptionReading::SessionId(AtString::lossy(
                    &prof.resumption_session_id,
                ))),
            ];
        }
        // Refused by `read` before it gets here; nothing to print.
        SecPrfOp::ClientKeyPassword | SecPrfOp::PreSharedKey => return Vec::new(),
    };
    vec![reading]
}

/// The TLS settings of a `+USECPRF` profile, with its credentials read (and decrypted, in memory
/// only) from the store. A named credential that is missing fails the command at once.
pub(crate) fn tls_settings(ctx: &mut Ctx<'_>, sp: usize) -> Result<TlsSettings, CmeError> {
    let prof = ctx.module.security_profile(sp);
    let store = ctx.module.store();
    let fetch =
        |kind: CredentialType, name: &str| -> Result<Option<Zeroizing<Vec<u8>>>, CmeError> {
            if name.is_empty() {
                return Ok(None);
            }
            store
                .der(kind, name)
                .map(Some)
                .map_err(|e| crate::cme_map::Failure::TlsCredential(e).into())
        };
    let now_unix = ctx.clock_unix();
    Ok(TlsSettings {
        // A number the wire never wrote (a hand-edited nvm.toml) reads as the factory value,
        // as `+USECPRF` reads show it.
        validation: prof.validation_level().unwrap_or_default(),
        min_tls: prof.min_tls_version().unwrap_or_default(),
        cipher: prof.cipher.iana(),
        hostname: prof.hostname.clone(),
        sni: prof.sni.clone(),
        root: fetch(CredentialType::TrustedRootCa, &prof.root)?,
        client_cert: fetch(CredentialType::ClientCertificate, &prof.client_cert)?,
        client_key: fetch(CredentialType::ClientPrivateKey, &prof.client_key)?,
        pin: fetch(CredentialType::ServerCertificate, &prof.pin_name)?
            .map(|d| (d, prof.pinning_level().unwrap_or_default())),
        now_unix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(prof: &SecurityProfile, op: SecPrfOp) -> Vec<String> {
        let profile = SecProfileId::new(2).unwrap();
        readings(prof, op)
            .into_iter()
            .map(|reading| SecPrfRead { profile, reading }.to_string())
            .collect()
    }

    #[test]
    fn stored_values_read_back_as_the_wire_writes_them() {
        let prof = SecurityProfile {
            validation: 2,
            pin_name: "Pin".into(),
            pin_level: 1,
            psk_identity: "6465".into(),
            psk_identity_hex: true,
            resumption: 1,
            resumption_session_id: "c2Vzc2lvbg==".into(),
            ..Default::default()
        };
        assert_eq!(lines(&prof, SecPrfOp::ValidationLevel), ["+USECPRF: 2,0,2"]);
        assert_eq!(
            lines(&prof, SecPrfOp::ServerCertificatePinning),
            ["+USECPRF: 2,12,\"Pin\",1"]
        );
        assert_eq!(
            lines(&prof, SecPrfOp::PskIdentity),
            ["+USECPRF: 2,9,\"6465\",1"]
        );
        assert_eq!(
            lines(&prof, SecPrfOp::SessionResumption),
            [
                "+USECPRF: 2,13,0,1",
                "+USECPRF: 2,13,1,0",
                "+USECPRF: 2,13,2,\"c2Vzc2lvbg==\""
            ]
        );
        assert!(lines(&prof, SecPrfOp::ClientKeyPassword).is_empty());
    }

    /// Only a hand-edited `nvm.toml` has these: they read as the factory value, and a string
    /// with a quote cannot break the answer line.
    #[test]
    fn stored_values_the_wire_cannot_carry_read_as_the_factory_value() {
        let prof = SecurityProfile {
            validation: 7,
            pin_level: 9,
            root: "a\"b\r\n".into(),
            ..Default::default()
        };
        assert_eq!(lines(&prof, SecPrfOp::ValidationLevel), ["+USECPRF: 2,0,0"]);
        assert_eq!(
            lines(&prof, SecPrfOp::ServerCertificatePinning),
            ["+USECPRF: 2,12,\"\",0"]
        );
        assert_eq!(
            lines(&prof, SecPrfOp::TrustedRoot),
            ["+USECPRF: 2,3,\"a'b  \""]
        );
    }
}
