//! Key pairs made inside the token, and their self-signed certificate signed by the token.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use der::{Decode, Encode, EncodePem};
use pkcs8::LineEnding;
use sha2::{Digest, Sha256};
use spki::{
    AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, EncodePublicKey,
    SubjectPublicKeyInfoOwned,
};
use x509_cert::builder::Builder;

use super::error::{Pkcs11Error, token_error};
use super::token::{P256_PARAMS, PrivateKey, Session, TokenKeyKind};
use super::uri::Pkcs11Uri;
use crate::key::{MAX_RSA_BITS, MIN_RSA_BITS, VerifyingKey};
use crate::keygen::{KeyAlgorithm, KeygenError};

/// sha256WithRSAEncryption (RFC 4055 §5).
const OID_SHA256_RSA: &str = "1.2.840.113549.1.1.11";
/// ecdsa-with-SHA256 (RFC 5758 §3.2).
const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";

/// What [`Session::generate`] makes besides the key pair in the token, all PEM.
#[derive(Debug)]
pub struct GeneratedInToken {
    /// The self-signed certificate (key usage digitalSignature), signed by the token.
    pub certificate_pem: String,
    /// The public key (`openssl x509 -pubkey` form).
    pub public_key_pem: String,
    /// The `CKA_ID` both keys got.
    pub id: Vec<u8>,
}

impl Session<'_> {
    /// Makes a key pair inside the token (`CKA_TOKEN`; the private key `CKA_PRIVATE`,
    /// `CKA_SENSITIVE`, not `CKA_EXTRACTABLE`, `CKA_SIGN`) labelled `uri.object` with `uri.id`
    /// (16 random bytes when absent), and a self-signed certificate for `subject_cn` valid `days`
    /// days, signed by the new key: what [`crate::keygen::generate`] makes, without the private
    /// key file.
    pub fn generate(
        &self,
        uri: &Pkcs11Uri,
        algorithm: KeyAlgorithm,
        subject_cn: &str,
        days: u32,
    ) -> Result<GeneratedInToken, Pkcs11Error> {
        if let KeyAlgorithm::Rsa(bits) = algorithm
            && !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits)
        {
            return Err(KeygenError::RsaSize(bits).into());
        }
        // The certificate's subject is checked before anything is made in the token.
        crate::keygen::subject_name(subject_cn)?;
        let by_label = Pkcs11Uri {
            id: None,
            ..uri.clone()
        };
        if !self.find(ObjectClass::PRIVATE_KEY, &by_label)?.is_empty()
            || !self.find(ObjectClass::PUBLIC_KEY, &by_label)?.is_empty()
        {
            return Err(Pkcs11Error::KeyExists {
                token: self.token.clone(),
                label: uri.object.clone(),
            });
        }
        let id = match &uri.id {
            Some(id) => id.clone(),
            None => {
                let mut id = vec![0u8; 16];
                getrandom::fill(&mut id)
                    .map_err(|e| Pkcs11Error::Certificate(KeygenError::Crypto(e.to_string())))?;
                id
            }
        };
        let label = uri.object.as_bytes().to_vec();
        let mut public = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Label(label.clone()),
            Attribute::Id(id.clone()),
        ];
        let private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label),
            Attribute::Id(id.clone()),
        ];
        let mechanism = match algorithm {
            KeyAlgorithm::Rsa(bits) => {
                public.push(Attribute::ModulusBits(u64::from(bits).into()));
                public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
                Mechanism::RsaPkcsKeyPairGen
            }
            KeyAlgorithm::P256 => {
                public.push(Attribute::EcParams(P256_PARAMS.to_vec()));
                Mechanism::EccKeyPairGen
            }
        };
        let (public_handle, private_handle) = self
            .session
            .generate_key_pair(&mechanism, &public, &private)
            .map_err(token_error("C_GenerateKeyPair"))?;
        let kind = match algorithm {
            KeyAlgorithm::Rsa(bits) => TokenKeyKind::Rsa(bits),
            KeyAlgorithm::P256 => TokenKeyKind::P256,
        };
        let key = PrivateKey {
            handle: private_handle,
            kind,
        };
        match self.certify(public_handle, &key, subject_cn, days) {
            Ok((certificate_pem, public_key_pem)) => Ok(GeneratedInToken {
                certificate_pem,
                public_key_pem,
                id,
            }),
            Err(e) => {
                // A key without its certificate is of no use and would block the label.
                let _ = self.session.destroy_object(private_handle);
                let _ = self.session.destroy_object(public_handle);
                Err(e)
            }
        }
    }

    /// The SubjectPublicKeyInfo of a public key object.
    fn spki(
        &self,
        public: ObjectHandle,
        kind: TokenKeyKind,
    ) -> Result<SubjectPublicKeyInfoOwned, Pkcs11Error> {
        let malformed = |e: String| Pkcs11Error::Malformed(format!("a public key that {e}"));
        match kind {
            TokenKeyKind::Rsa(_) => {
                let attributes = self
                    .session
                    .get_attributes(
                        public,
                        &[AttributeType::Modulus, AttributeType::PublicExponent],
                    )
                    .map_err(token_error("C_GetAttributeValue"))?;
                let (mut n, mut e) = (None, None);
                for a in attributes {
                    match a {
                        Attribute::Modulus(v) => n = Some(v),
                        Attribute::PublicExponent(v) => e = Some(v),
                        _ => {}
                    }
                }
                let (Some(n), Some(e)) = (n, e) else {
                    return Err(malformed("has no modulus or exponent".into()));
                };
                let key = rsa::PublicKey::new(
                    rsa::BoxedUint::from_be_slice_vartime(&n),
                    rsa::BoxedUint::from_be_slice_vartime(&e),
                )
                .map_err(|e| malformed(e.to_string()))?;
                SubjectPublicKeyInfoOwned::from_key(&key).map_err(|e| malformed(e.to_string()))
            }
            TokenKeyKind::P256 => {
                let attributes = self
                    .session
                    .get_attributes(public, &[AttributeType::EcPoint])
                    .map_err(token_error("C_GetAttributeValue"))?;
                let point = attributes
                    .into_iter()
                    .find_map(|a| match a {
                        Attribute::EcPoint(p) => Some(p),
                        _ => None,
                    })
                    .ok_or_else(|| malformed("has no EC point".into()))?;
                // CKA_EC_POINT is the DER OCTET STRING of the point (PKCS#11 §2.3.3); some
                // tokens give the bare point.
                let bare = match der::asn1::OctetString::from_der(&point) {
                    Ok(o) if point.len() != 65 => o.as_bytes().to_vec(),
                    _ => point,
                };
                let key = p256::PublicKey::from_sec1_bytes(&bare)
                    .map_err(|e| malformed(e.to_string()))?;
                SubjectPublicKeyInfoOwned::from_key(&key).map_err(|e| malformed(e.to_string()))
            }
        }
    }

    /// The certificate and public key PEMs of a new key pair; the certificate is checked with
    /// the public key before it is returned.
    fn certify(
        &self,
        public: ObjectHandle,
        key: &PrivateKey,
        subject_cn: &str,
        days: u32,
    ) -> Result<(String, String), Pkcs11Error> {
        let spki = self.spki(public, key.kind)?;
        let spki_der = spki.to_der().map_err(|e| {
            Pkcs11Error::Malformed(format!("a public key that does not encode: {e}"))
        })?;
        let verifier = VerifyingKey::from_spki_der(&spki_der)
            .map_err(|e| Pkcs11Error::Malformed(format!("a public key that {e}")))?;
        let signer = CertSigner {
            spki: spki.clone(),
            kind: key.kind,
        };
        let crypto = |e: String| Pkcs11Error::Certificate(KeygenError::Crypto(e));
        let mut builder = crate::keygen::certificate_builder(subject_cn, days, spki.clone())?;
        let tbs = builder
            .finalize(&signer)
            .map_err(|e| crypto(e.to_string()))?;
        let signature = self.sign_reader(key, tbs.as_slice(), |_| {})?;
        let digest: [u8; 32] = Sha256::digest(&tbs).into();
        verifier.verify_digest(&digest, &signature).map_err(|e| {
            Pkcs11Error::Malformed(format!(
                "a certificate signature that fails its own check: {e}"
            ))
        })?;
        let bits =
            der::asn1::BitString::from_bytes(&signature).map_err(|e| crypto(e.to_string()))?;
        let cert = builder
            .assemble(bits, &signer)
            .map_err(|e| crypto(e.to_string()))?;
        let certificate_pem = cert
            .to_pem(LineEnding::LF)
            .map_err(|e| crypto(e.to_string()))?;
        let public_key_pem = spki
            .to_pem(LineEnding::LF)
            .map_err(|e| crypto(e.to_string()))?;
        Ok((certificate_pem, public_key_pem))
    }
}

/// What the certificate builder needs to know of the token's key: its public half and its
/// signature algorithm. The signature itself is made by [`Session::sign_reader`] between the
/// builder's `finalize` and `assemble`, so a token error stays a [`Pkcs11Error`].
struct CertSigner {
    spki: SubjectPublicKeyInfoOwned,
    kind: TokenKeyKind,
}

/// The public key the builder encodes into the certificate.
#[derive(Clone)]
struct PublicHalf(SubjectPublicKeyInfoOwned);

impl EncodePublicKey for PublicHalf {
    fn to_public_key_der(&self) -> spki::Result<der::Document> {
        Ok(der::Document::encode_msg(&self.0)?)
    }
}

impl signature::Keypair for CertSigner {
    type VerifyingKey = PublicHalf;

    fn verifying_key(&self) -> PublicHalf {
        PublicHalf(self.spki.clone())
    }
}

impl DynSignatureAlgorithmIdentifier for CertSigner {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(match self.kind {
            TokenKeyKind::Rsa(_) => AlgorithmIdentifierOwned {
                oid: der::oid::ObjectIdentifier::new_unwrap(OID_SHA256_RSA),
                parameters: Some(der::asn1::Null.into()),
            },
            TokenKeyKind::P256 => AlgorithmIdentifierOwned {
                oid: der::oid::ObjectIdentifier::new_unwrap(OID_ECDSA_SHA256),
                parameters: None,
            },
        })
    }
}
