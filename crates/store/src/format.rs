//! The on-disk format, version 1. `docs/storage-format.md` describes every byte; this module is
//! its only implementation. Integers are little-endian. Every encrypted file authenticates its
//! whole header as AES-GCM associated data, so no field can be changed, and no file swapped for
//! another, without the tag failing.

use std::fmt;

use crate::credential::{CredentialType, MAX_NAME, MAX_PASSWORD};
use crate::crypto::{KdfParams, NONCE_LEN, TAG_LEN};

/// The format version this code writes and reads.
pub const VERSION: u16 = 1;

/// `sec/seal.bin` magic.
pub const SEAL_MAGIC: &[u8; 4] = b"SCS1";
/// `sec/cred/*.bin` magic.
pub const RECORD_MAGIC: &[u8; 4] = b"SCR1";
/// `sec/manifest.a|b` magic.
pub const MANIFEST_MAGIC: &[u8; 4] = b"SCM1";
/// `sec/plain/*.der` magic (pre-seal credentials, not encrypted).
pub const PLAIN_MAGIC: &[u8; 4] = b"SCP1";

/// Argon2id, version 0x13.
pub const KDF_ARGON2ID: u8 = 1;

/// Length of the seal header (the AAD of the wrapped password).
pub const SEAL_HEADER_LEN: usize = 48;
/// Length of a record header before the name.
pub const RECORD_FIXED_LEN: usize = 62;
/// Length of the manifest header.
pub const MANIFEST_HEADER_LEN: usize = 28;

/// The most entries a manifest may hold (far above the 16 the module allows).
///
/// # Security
/// Bounds what a decrypted but hostile manifest can make the module allocate.
pub const MAX_MANIFEST_ENTRIES: usize = 1024;

/// The largest Argon2 memory a seal record may ask for: 1 GiB.
///
/// # Security
/// Bounds what a seal record can make the module allocate.
pub const MAX_KDF_M_KIB: u32 = 1 << 20;
/// The most Argon2 passes a seal record may ask for.
pub const MAX_KDF_T: u32 = 64;
/// The most Argon2 lanes a seal record may ask for.
pub const MAX_KDF_P: u32 = 16;

/// Why a file does not decode. The store reports these as "damaged".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than its fixed fields.
    #[error("truncated")]
    Truncated,
    /// Wrong magic.
    #[error("not a {0} file")]
    Magic(&'static str),
    /// A version this code does not read.
    #[error("format version {0} is not supported")]
    Version(u16),
    /// A field out of its range.
    #[error("invalid {0}")]
    Field(&'static str),
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let s = self.b.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    /// A reserved byte: must be zero, so the decoded header re-encodes to the bytes on disk
    /// (the AEAD's associated data is the re-encoded header).
    fn reserved(&mut self) -> Result<(), DecodeError> {
        match self.u8()? {
            0 => Ok(()),
            _ => Err(DecodeError::Field("reserved byte")),
        }
    }

    fn rest(&mut self) -> &'a [u8] {
        let s = &self.b[self.pos.min(self.b.len())..];
        self.pos = self.b.len();
        s
    }
}

fn magic(r: &mut Reader<'_>, want: &[u8; 4], what: &'static str) -> Result<(), DecodeError> {
    if r.take(4)? != want {
        return Err(DecodeError::Magic(what));
    }
    match r.u16()? {
        VERSION => Ok(()),
        v => Err(DecodeError::Version(v)),
    }
}

fn name(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    let len = usize::from(r.u16()?);
    if len == 0 || len > MAX_NAME * 4 {
        return Err(DecodeError::Field("name length"));
    }
    String::from_utf8(r.take(len)?.to_vec()).map_err(|_| DecodeError::Field("name"))
}

fn kind(b: u8) -> Result<CredentialType, DecodeError> {
    CredentialType::from_wire(i64::from(b)).ok_or(DecodeError::Field("credential type"))
}

/// `sec/seal.bin`: the wrapped seal password and the KDF parameters.
#[derive(Clone, PartialEq, Eq)]
pub struct SealFile {
    /// Argon2id parameters of the master key.
    pub kdf: KdfParams,
    /// Argon2 salt.
    pub salt: [u8; 16],
    /// AES-GCM nonce.
    pub nonce: [u8; NONCE_LEN],
    /// Encrypted password with its tag.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for SealFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealFile")
            .field("kdf", &self.kdf)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

impl SealFile {
    /// The header (also the AAD).
    pub fn header(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(SEAL_HEADER_LEN);
        h.extend_from_slice(SEAL_MAGIC);
        h.extend_from_slice(&VERSION.to_le_bytes());
        h.push(KDF_ARGON2ID);
        h.push(0);
        h.extend_from_slice(&self.kdf.m_kib.to_le_bytes());
        h.extend_from_slice(&self.kdf.t.to_le_bytes());
        h.extend_from_slice(&self.kdf.p.to_le_bytes());
        h.extend_from_slice(&self.salt);
        h.extend_from_slice(&self.nonce);
        h
    }

    /// The whole file.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = self.header();
        b.extend_from_slice(&self.ciphertext);
        b
    }

    /// Parses a file.
    pub fn decode(b: &[u8]) -> Result<SealFile, DecodeError> {
        let mut r = Reader { b, pos: 0 };
        magic(&mut r, SEAL_MAGIC, "seal")?;
        if r.u8()? != KDF_ARGON2ID {
            return Err(DecodeError::Field("kdf"));
        }
        r.reserved()?;
        let kdf = KdfParams {
            m_kib: r.u32()?,
            t: r.u32()?,
            p: r.u32()?,
        };
        let salt = r.array()?;
        let nonce = r.array()?;
        let ciphertext = r.rest().to_vec();
        if ciphertext.len() <= TAG_LEN || ciphertext.len() > MAX_PASSWORD + TAG_LEN {
            return Err(DecodeError::Field("password length"));
        }
        Ok(SealFile {
            kdf,
            salt,
            nonce,
            ciphertext,
        })
    }
}

/// `sec/cred/<id>-<generation>.bin`: one sealed credential.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordFile {
    /// Its type.
    pub kind: CredentialType,
    /// The manifest generation that wrote it.
    pub generation: u64,
    /// The record key's HKDF salt.
    pub salt: [u8; 32],
    /// AES-GCM nonce.
    pub nonce: [u8; NONCE_LEN],
    /// Internal name.
    pub name: String,
    /// Encrypted DER with its tag.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for RecordFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordFile")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl RecordFile {
    /// The header (also the AAD).
    pub fn header(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(RECORD_FIXED_LEN + self.name.len());
        h.extend_from_slice(RECORD_MAGIC);
        h.extend_from_slice(&VERSION.to_le_bytes());
        h.push(self.kind.wire());
        h.push(0);
        h.extend_from_slice(&self.generation.to_le_bytes());
        h.extend_from_slice(&self.salt);
        h.extend_from_slice(&self.nonce);
        h.extend_from_slice(&(self.name.len() as u16).to_le_bytes());
        h.extend_from_slice(self.name.as_bytes());
        h
    }

    /// The whole file.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = self.header();
        b.extend_from_slice(&self.ciphertext);
        b
    }

    /// Parses a file.
    pub fn decode(b: &[u8]) -> Result<RecordFile, DecodeError> {
        let mut r = Reader { b, pos: 0 };
        magic(&mut r, RECORD_MAGIC, "record")?;
        let kind = kind(r.u8()?)?;
        r.reserved()?;
        let generation = r.u64()?;
        let salt = r.array()?;
        let nonce = r.array()?;
        let name = name(&mut r)?;
        let ciphertext = r.rest().to_vec();
        if ciphertext.len() <= TAG_LEN {
            return Err(DecodeError::Truncated);
        }
        Ok(RecordFile {
            kind,
            generation,
            salt,
            nonce,
            name,
            ciphertext,
        })
    }
}

/// One live credential as the manifest names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestEntry {
    /// Its type.
    pub kind: CredentialType,
    /// The generation of its record file.
    pub generation: u64,
    /// SHA-256 of the whole record file.
    pub sha256: [u8; 32],
    /// Internal name.
    pub name: String,
}

/// The decrypted manifest body: the live credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManifestBody {
    /// Entries sorted by type, then name.
    pub entries: Vec<ManifestEntry>,
}

impl ManifestBody {
    /// Serialises the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(self.entries.len() as u16).to_le_bytes());
        for e in &self.entries {
            b.push(e.kind.wire());
            b.extend_from_slice(&e.generation.to_le_bytes());
            b.extend_from_slice(&e.sha256);
            b.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            b.extend_from_slice(e.name.as_bytes());
        }
        b
    }

    /// Parses a body.
    pub fn decode(b: &[u8]) -> Result<ManifestBody, DecodeError> {
        let mut r = Reader { b, pos: 0 };
        let n = usize::from(r.u16()?);
        if n > MAX_MANIFEST_ENTRIES {
            return Err(DecodeError::Field("entry count"));
        }
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let kind = kind(r.u8()?)?;
            let generation = r.u64()?;
            let sha256 = r.array()?;
            let name = name(&mut r)?;
            entries.push(ManifestEntry {
                kind,
                generation,
                sha256,
                name,
            });
        }
        if !r.rest().is_empty() {
            return Err(DecodeError::Field("trailing bytes"));
        }
        Ok(ManifestBody { entries })
    }
}

/// `sec/manifest.a|b`: the encrypted list of live records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestFile {
    /// 0 for slot A, 1 for slot B.
    pub slot: u8,
    /// Increases by one with every change of the store.
    pub generation: u64,
    /// AES-GCM nonce.
    pub nonce: [u8; NONCE_LEN],
    /// Encrypted body with its tag.
    pub ciphertext: Vec<u8>,
}

impl ManifestFile {
    /// The header (also the AAD).
    pub fn header(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(MANIFEST_HEADER_LEN);
        h.extend_from_slice(MANIFEST_MAGIC);
        h.extend_from_slice(&VERSION.to_le_bytes());
        h.push(self.slot);
        h.push(0);
        h.extend_from_slice(&self.generation.to_le_bytes());
        h.extend_from_slice(&self.nonce);
        h
    }

    /// The whole file.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = self.header();
        b.extend_from_slice(&self.ciphertext);
        b
    }

    /// Parses a file.
    pub fn decode(b: &[u8]) -> Result<ManifestFile, DecodeError> {
        let mut r = Reader { b, pos: 0 };
        magic(&mut r, MANIFEST_MAGIC, "manifest")?;
        let slot = r.u8()?;
        if slot > 1 {
            return Err(DecodeError::Field("slot"));
        }
        r.reserved()?;
        let generation = r.u64()?;
        let nonce = r.array()?;
        let ciphertext = r.rest().to_vec();
        if ciphertext.len() < TAG_LEN {
            return Err(DecodeError::Truncated);
        }
        Ok(ManifestFile {
            slot,
            generation,
            nonce,
            ciphertext,
        })
    }
}

/// `sec/plain/<id>.der`: a credential imported before the seal. Not encrypted: the real module
/// stores them "in a raw binary format" until enforced security is on.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainFile {
    /// Its type.
    pub kind: CredentialType,
    /// Internal name.
    pub name: String,
    /// The DER.
    pub der: Vec<u8>,
}

impl fmt::Debug for PlainFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainFile")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl PlainFile {
    /// The whole file.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(12 + self.name.len() + self.der.len());
        b.extend_from_slice(PLAIN_MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.push(self.kind.wire());
        b.push(0);
        b.extend_from_slice(&(self.name.len() as u16).to_le_bytes());
        b.extend_from_slice(self.name.as_bytes());
        b.extend_from_slice(&self.der);
        b
    }

    /// Parses a file.
    pub fn decode(b: &[u8]) -> Result<PlainFile, DecodeError> {
        let mut r = Reader { b, pos: 0 };
        magic(&mut r, PLAIN_MAGIC, "plain credential")?;
        let kind = kind(r.u8()?)?;
        r.reserved()?;
        let name = name(&mut r)?;
        let der = r.rest().to_vec();
        if der.is_empty() {
            return Err(DecodeError::Truncated);
        }
        Ok(PlainFile { kind, name, der })
    }
}

/// The file id of a credential: the first 16 bytes of SHA-256(type || name), in hex. Names may
/// hold any character and be 200 long; the id is a safe, fixed-length file name.
pub fn credential_id(kind: CredentialType, name: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update([kind.wire()]);
    h.update(name.as_bytes());
    hex::encode(&h.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let s = SealFile {
            kdf: KdfParams::PRODUCTION,
            salt: [1; 16],
            nonce: [2; 12],
            ciphertext: vec![3; 20],
        };
        assert_eq!(s.header().len(), SEAL_HEADER_LEN);
        assert_eq!(SealFile::decode(&s.encode()).unwrap(), s);
        let r = RecordFile {
            kind: CredentialType::ClientPrivateKey,
            generation: 7,
            salt: [4; 32],
            nonce: [5; 12],
            name: "key".into(),
            ciphertext: vec![6; 40],
        };
        assert_eq!(r.header().len(), RECORD_FIXED_LEN + 3);
        assert_eq!(RecordFile::decode(&r.encode()).unwrap(), r);
        let body = ManifestBody {
            entries: vec![ManifestEntry {
                kind: CredentialType::TrustedRootCa,
                generation: 3,
                sha256: [9; 32],
                name: "r".into(),
            }],
        };
        assert_eq!(ManifestBody::decode(&body.encode()).unwrap(), body);
        let m = ManifestFile {
            slot: 1,
            generation: 3,
            nonce: [8; 12],
            ciphertext: vec![1; 30],
        };
        assert_eq!(m.header().len(), MANIFEST_HEADER_LEN);
        assert_eq!(ManifestFile::decode(&m.encode()).unwrap(), m);
        let p = PlainFile {
            kind: CredentialType::ServerCertificate,
            name: "s".into(),
            der: vec![0x30, 0],
        };
        assert_eq!(PlainFile::decode(&p.encode()).unwrap(), p);
    }

    #[test]
    fn truncations_and_garbage_are_errors_not_panics() {
        let r = RecordFile {
            kind: CredentialType::TrustedRootCa,
            generation: 1,
            salt: [0; 32],
            nonce: [0; 12],
            name: "n".into(),
            ciphertext: vec![0; 17],
        }
        .encode();
        for n in 0..r.len() {
            let _ = RecordFile::decode(&r[..n]);
            let _ = SealFile::decode(&r[..n]);
            let _ = ManifestFile::decode(&r[..n]);
            let _ = ManifestBody::decode(&r[..n]);
            let _ = PlainFile::decode(&r[..n]);
        }
        assert_eq!(
            RecordFile::decode(b"XXXX\x01\x00"),
            Err(DecodeError::Magic("record"))
        );
        assert_eq!(
            RecordFile::decode(b"SCR1\x02\x00"),
            Err(DecodeError::Version(2))
        );
    }
}
