//! Key and certificate generation for `sealcell fw keygen`: what the §4.3.1 script's
//! `openssl req -newkey rsa:2048 -nodes -x509` makes, plus the key usage digitalSignature that
//! §4.3 asks for ("a certificate with the digital signature private key usage option").

use std::str::FromStr;
use std::time::Duration;

use der::EncodePem;
use pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use x509_cert::TbsCertificate;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{SubjectPublicKeyInfo, SubjectPublicKeyInfoRef};
use x509_cert::time::Validity;
use zeroize::Zeroizing;

/// The key to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSA with this many bits (2048..=4096).
    Rsa(u32),
    /// ECDSA over P-256.
    P256,
}

/// What keygen makes, all PEM.
pub struct Generated {
    /// The private key, PKCS#8 PEM (write it with mode 0600).
    pub private_key_pem: Zeroizing<String>,
    /// The self-signed certificate.
    pub certificate_pem: String,
    /// The public key (`openssl x509 -pubkey` form).
    pub public_key_pem: String,
}

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeygenError {
    /// RSA outside 2048..=4096 bits.
    #[error("RSA keys of {0} bits are not made here (2048 to 4096)")]
    RsaSize(u32),
    /// The subject is not a valid name.
    #[error("invalid subject {0:?}: {1}")]
    Subject(String, String),
    /// Any other failure of the underlying libraries.
    #[error("{0}")]
    Crypto(String),
}

fn crypto<E: std::fmt::Display>(e: E) -> KeygenError {
    KeygenError::Crypto(e.to_string())
}

/// A self-signed end-entity certificate with key usage digitalSignature (critical) and
/// basicConstraints CA:false.
pub(crate) struct SelfSignedSigner {
    subject: Name,
}

impl BuilderProfile for SelfSignedSigner {
    fn get_issuer(&self, subject: &Name) -> Name {
        subject.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let subject = tbs.subject();
        Ok(vec![
            (&BasicConstraints {
                ca: false,
                path_len_constraint: None,
            })
                .to_extension(subject, &[])?,
            (&KeyUsage(KeyUsages::DigitalSignature.into())).to_extension(subject, &[])?,
        ])
    }
}

/// The three PEM files of a generated key and its certificate.
fn pems(
    key: &impl EncodePrivateKey,
    public: &impl EncodePublicKey,
    cert: &x509_cert::Certificate,
) -> Result<Generated, KeygenError> {
    Ok(Generated {
        private_key_pem: Zeroizing::new(
            key.to_pkcs8_pem(LineEnding::LF)
                .map_err(crypto)?
                .to_string(),
        ),
        certificate_pem: cert.to_pem(LineEnding::LF).map_err(crypto)?,
        public_key_pem: public.to_public_key_pem(LineEnding::LF).map_err(crypto)?,
    })
}

fn validity(days: u32) -> Result<Validity, KeygenError> {
    Validity::from_now(Duration::from_secs(u64::from(days) * 86_400)).map_err(crypto)
}

fn serial() -> Result<SerialNumber, KeygenError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(crypto)?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::new(&bytes).map_err(crypto)
}

/// A P-256 key from 32 bytes of the OS random source (retried in the negligible case that they
/// are not a valid scalar).
fn p256_key() -> Result<p256::ecdsa::SigningKey, KeygenError> {
    loop {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut_slice()).map_err(crypto)?;
        if let Ok(k) = p256::ecdsa::SigningKey::from_slice(bytes.as_slice()) {
            return Ok(k);
        }
    }
}

/// The subject `CN=<subject_cn>` (`,` and `+` escaped).
pub(crate) fn subject_name(subject_cn: &str) -> Result<Name, KeygenError> {
    Name::from_str(&format!(
        "CN={}",
        subject_cn.replace(',', "\\,").replace('+', "\\+")
    ))
    .map_err(|e| KeygenError::Subject(subject_cn.to_string(), e.to_string()))
}

/// The builder of the certificate keygen makes for `spki`: self-signed, `CN=<subject_cn>`, a
/// random serial, valid `days` days from now; also used for keys in a token
/// ([`crate::pkcs11::Session::generate`]).
pub(crate) fn certificate_builder(
    subject_cn: &str,
    days: u32,
    spki: SubjectPublicKeyInfo<der::Any, der::asn1::BitString>,
) -> Result<CertificateBuilder<SelfSignedSigner>, KeygenError> {
    let profile = SelfSignedSigner {
        subject: subject_name(subject_cn)?,
    };
    CertificateBuilder::new(profile, serial()?, validity(days)?, spki).map_err(crypto)
}

/// Makes a key and a self-signed certificate for `subject` (a common name) valid `days` days.
pub fn generate(
    algorithm: KeyAlgorithm,
    subject_cn: &str,
    days: u32,
) -> Result<Generated, KeygenError> {
    subject_name(subject_cn)?;
    let mut rng = getrandom::SysRng;
    match algorithm {
        KeyAlgorithm::Rsa(bits) => {
            if !(crate::key::MIN_RSA_BITS..=crate::key::MAX_RSA_BITS).contains(&bits) {
                return Err(KeygenError::RsaSize(bits));
            }
            let key = rsa::PrivateKey::new(&mut rng, bits as usize).map_err(crypto)?;
            let public = key.to_public_key();
            let spki = SubjectPublicKeyInfo::from_key(&public).map_err(crypto)?;
            let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone());
            let builder = certificate_builder(subject_cn, days, spki)?;
            let cert = builder
                .build::<_, rsa::pkcs1v15::Signature>(&signer)
                .map_err(crypto)?;
            pems(&key, &public, &cert)
        }
        KeyAlgorithm::P256 => {
            let key = p256_key()?;
            let public = *key.verifying_key();
            let spki = SubjectPublicKeyInfo::from_key(&public).map_err(crypto)?;
            let builder = certificate_builder(subject_cn, days, spki)?;
            let cert = builder
                .build::<_, p256::ecdsa::DerSignature>(&key)
                .map_err(crypto)?;
            pems(&key, &public, &cert)
        }
    }
}
