//! The firmware signature verification certificate (`VC` item, application note §4.2, §4.3):
//! its key, and the checks it must pass — key usage, when present, must include
//! digitalSignature (RFC 5280 §4.2.1.3; the §4.3 text asks for "a certificate with the digital
//! signature private key usage option"); validity dates only when the policy asks, against the
//! module clock (a module without network time cannot check dates honestly).

use der::{Decode, DecodePem};
use x509_cert::Certificate;
use x509_cert::ext::pkix::KeyUsage;

use crate::key::{KeyError, VerifyingKey};

/// Whether and against what clock the validity dates are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockPolicy {
    /// Dates are not checked.
    Ignore,
    /// Checked against this time, seconds since the Unix epoch.
    At(i64),
}

/// Why a certificate cannot verify firmware.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// It does not parse as X.509.
    #[error("not an X.509 certificate: {0}")]
    Malformed(String),
    /// Its key usage extension lacks digitalSignature.
    #[error("the certificate's key usage does not include digitalSignature")]
    NoDigitalSignatureUsage,
    /// notAfter has passed.
    #[error("the certificate expired at {0} (Unix time)")]
    Expired(i64),
    /// notBefore has not come.
    #[error("the certificate is not valid before {0} (Unix time)")]
    NotYetValid(i64),
    /// Its key cannot sign firmware.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// A certificate that passed the checks that do not depend on the clock.
#[derive(Clone, Debug)]
pub struct SignerCertificate {
    key: VerifyingKey,
    subject_cn: String,
    not_before: i64,
    not_after: i64,
}

impl SignerCertificate {
    /// Parses a PEM or DER certificate and checks its key and key usage.
    pub fn parse(input: &[u8]) -> Result<SignerCertificate, CertificateError> {
        let text = input.trim_ascii_start();
        let cert = if text.starts_with(b"-----BEGIN") {
            let pem = std::str::from_utf8(text)
                .map_err(|e| CertificateError::Malformed(e.to_string()))?;
            Certificate::from_pem(pem)
        } else {
            Certificate::from_der(input)
        }
        .map_err(|e| CertificateError::Malformed(e.to_string()))?;
        let tbs = cert.tbs_certificate();
        match tbs.get_extension::<KeyUsage>() {
            Ok(Some((_, ku))) if !ku.digital_signature() => {
                return Err(CertificateError::NoDigitalSignatureUsage);
            }
            Ok(_) => {}
            Err(e) => return Err(CertificateError::Malformed(format!("key usage: {e}"))),
        }
        let spki = der::Encode::to_der(tbs.subject_public_key_info())
            .map_err(|e| CertificateError::Malformed(e.to_string()))?;
        let key = VerifyingKey::from_spki_der(&spki)?;
        let subject_cn = tbs
            .subject()
            .common_name()
            .ok()
            .flatten()
            .map(|c| c.value().into_owned())
            .unwrap_or_default();
        let secs = |t: &x509_cert::time::Time| {
            i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
        };
        let validity = tbs.validity();
        Ok(SignerCertificate {
            key,
            subject_cn,
            not_before: secs(&validity.not_before),
            not_after: secs(&validity.not_after),
        })
    }

    /// Checks the validity dates under `clock`.
    pub fn check_validity(&self, clock: ClockPolicy) -> Result<(), CertificateError> {
        match clock {
            ClockPolicy::Ignore => Ok(()),
            ClockPolicy::At(now) if now > self.not_after => {
                Err(CertificateError::Expired(self.not_after))
            }
            ClockPolicy::At(now) if now < self.not_before => {
                Err(CertificateError::NotYetValid(self.not_before))
            }
            ClockPolicy::At(_) => Ok(()),
        }
    }

    /// The verification key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The subject common name.
    pub fn subject_cn(&self) -> &str {
        &self.subject_cn
    }
}
