//! The key hierarchy of the sealed store (architecture.md, "Key hierarchy").
//!
//! ```text
//! DUK (otp/duk.bin, 32 bytes)          the simulated fuse
//!  |- K_seal = HKDF-SHA256(ikm = DUK, info = "sealcell/v1/seal" || IMEI)
//!  |     wraps the seal password in sec/seal.bin (AES-256-GCM)
//!  '- MK = HKDF-SHA256(ikm = Argon2id(password, salt, secret = DUK), info = "sealcell/v1/mk" || IMEI)
//!        |- K_rec = HKDF-SHA256(ikm = MK, salt = record salt, info = "sealcell/v1/cred" || type || name)
//!        '- K_man = HKDF-SHA256(ikm = MK, info = "sealcell/v1/manifest" || generation)
//! ```
//!
//! Every key that encrypts is used for one write only (a fresh salt per record, the generation
//! in the manifest key), so a random nonce can never repeat under the same key.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use argon2::{Algorithm, Argon2, Params, Version};
use hkdf::Hkdf;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;
use zeroize::Zeroizing;

/// A 256-bit key that is zeroized on drop and never printed.
pub type SecretKey = SecretBox<[u8; 32]>;

/// Length of AES-GCM nonces.
pub const NONCE_LEN: usize = 12;
/// Length of AES-GCM tags.
pub const TAG_LEN: usize = 16;

/// Argon2id cost parameters, stored in `sec/seal.bin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// The parameters of a new seal on a module-class device: 16 MiB, 2 passes, 1 lane.
    ///
    /// A TOBY-L2 has a Cortex-A core with tens of MiB free; 16 MiB and two passes cost about
    /// 40 ms on a 2-core x86 host and stay inside RFC 9106's memory-constrained profile and the
    /// OWASP minimum (19 MiB / t=2 is the crate default; 16 MiB leaves room on the module).
    pub const PRODUCTION: KdfParams = KdfParams {
        m_kib: 16 * 1024,
        t: 2,
        p: 1,
    };
    /// The floor enforced when a store is opened, so a tampered header cannot weaken the KDF.
    pub const FLOOR: KdfParams = KdfParams {
        m_kib: 8 * 1024,
        t: 2,
        p: 1,
    };

    /// Whether these parameters meet `floor`.
    pub fn meets(&self, floor: &KdfParams) -> bool {
        self.m_kib >= floor.m_kib && self.t >= floor.t && self.p >= floor.p
    }
}

/// Which parameters new seals use and which floor opens enforce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfPolicy {
    /// Parameters written by a new seal.
    pub new_seal: KdfParams,
    /// The minimum accepted on open.
    pub floor: KdfParams,
}

impl KdfPolicy {
    /// The policy of the emulator and `sealcell modem status`.
    pub const PRODUCTION: KdfPolicy = KdfPolicy {
        new_seal: KdfParams::PRODUCTION,
        floor: KdfParams::FLOOR,
    };

    /// **Tests only**: a cheap KDF (64 KiB, one pass) so suites that reboot hundreds of times
    /// stay fast. Nothing in the binary can select it.
    pub const INSECURE_FAST_FOR_TESTS: KdfPolicy = KdfPolicy {
        new_seal: KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        },
        floor: KdfParams {
            m_kib: 8,
            t: 1,
            p: 1,
        },
    };
}

/// HKDF-SHA256 with no salt (or `salt`), expanded to one 32-byte key.
pub fn hkdf(ikm: &[u8], salt: Option<&[u8]>, info: &[&[u8]]) -> SecretKey {
    let hk = Hkdf::<Sha256>::new(salt, ikm);
    let mut okm = Box::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's limit of 255 * 32, so expand cannot fail.
    let _ = hk.expand_multi_info(info, okm.as_mut_slice());
    SecretBox::new(okm)
}

/// The key that wraps the seal password: bound to this device and its IMEI.
pub fn seal_key(duk: &SecretKey, imei: &str) -> SecretKey {
    hkdf(
        duk.expose_secret(),
        None,
        &[b"sealcell/v1/seal", imei.as_bytes()],
    )
}

/// The master key.
pub fn master_key(
    password: &[u8],
    salt: &[u8],
    duk: &SecretKey,
    imei: &str,
    params: KdfParams,
) -> Result<SecretKey, argon2::Error> {
    let p = Params::new(params.m_kib, params.t, params.p, Some(32))?;
    let argon =
        Argon2::new_with_secret(duk.expose_secret(), Algorithm::Argon2id, Version::V0x13, p)?;
    let mut stretched = Zeroizing::new([0u8; 32]);
    argon.hash_password_into(password, salt, stretched.as_mut_slice())?;
    Ok(hkdf(
        stretched.as_slice(),
        None,
        &[b"sealcell/v1/mk", imei.as_bytes()],
    ))
}

/// The key of one credential record (fresh `salt` per write).
pub fn record_key(mk: &SecretKey, salt: &[u8], kind: u8, name: &str) -> SecretKey {
    hkdf(
        mk.expose_secret(),
        Some(salt),
        &[b"sealcell/v1/cred", &[kind], name.as_bytes()],
    )
}

/// The key of the manifest of one generation.
pub fn manifest_key(mk: &SecretKey, generation: u64) -> SecretKey {
    hkdf(
        mk.expose_secret(),
        None,
        &[b"sealcell/v1/manifest", &generation.to_le_bytes()],
    )
}

/// AES-256-GCM encryption with `aad`.
pub fn encrypt(key: &SecretKey, nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key.expose_secret()));
    // Encryption only fails for inputs beyond GCM's 64 GiB limit; ours are a few KiB.
    cipher
        .encrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap_or_default()
}

/// AES-256-GCM decryption; `None` when the tag does not verify.
pub fn decrypt(
    key: &SecretKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key.expose_secret()));
    cipher
        .decrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
        .map(Zeroizing::new)
}

/// Random bytes from the OS.
pub fn random<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b)?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hkdf_matches_rfc5869_case_1() {
        // RFC 5869 A.1 (SHA-256), first 32 bytes of OKM.
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let okm = hkdf(&ikm, Some(&salt), &[&info]);
        assert_eq!(
            hex::encode(okm.expose_secret()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        );
    }

    #[test]
    fn aead_round_trip_and_tamper() {
        let key = SecretBox::new(Box::new([7u8; 32]));
        let nonce = [1u8; 12];
        let ct = encrypt(&key, &nonce, b"header", b"secret");
        assert_eq!(ct.len(), 6 + TAG_LEN);
        assert_eq!(
            decrypt(&key, &nonce, b"header", &ct).unwrap().as_slice(),
            b"secret"
        );
        assert!(decrypt(&key, &nonce, b"headeR", &ct).is_none());
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert!(decrypt(&key, &nonce, b"header", &bad).is_none());
    }

    #[test]
    fn keys_are_bound_to_device_imei_and_password() {
        let duk = SecretBox::new(Box::new([1u8; 32]));
        let other = SecretBox::new(Box::new([2u8; 32]));
        let fast = KdfPolicy::INSECURE_FAST_FOR_TESTS.new_seal;
        let a = master_key(b"pw", &[0; 16], &duk, "490154203237518", fast).unwrap();
        let b = master_key(b"pw", &[0; 16], &other, "490154203237518", fast).unwrap();
        let c = master_key(b"pw", &[0; 16], &duk, "490154203237526", fast).unwrap();
        let d = master_key(b"pW", &[0; 16], &duk, "490154203237518", fast).unwrap();
        let e = master_key(b"pw", &[0; 16], &duk, "490154203237518", fast).unwrap();
        assert_eq!(a.expose_secret(), e.expose_secret());
        for x in [&b, &c, &d] {
            assert_ne!(a.expose_secret(), x.expose_secret());
        }
        assert_ne!(
            seal_key(&duk, "1").expose_secret(),
            seal_key(&other, "1").expose_secret()
        );
    }

    #[test]
    fn floors() {
        assert!(KdfParams::PRODUCTION.meets(&KdfParams::FLOOR));
        assert!(
            !KdfPolicy::INSECURE_FAST_FOR_TESTS
                .new_seal
                .meets(&KdfParams::FLOOR)
        );
    }
}
