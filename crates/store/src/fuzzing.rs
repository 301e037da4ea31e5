//! Hooks shared by the cargo-fuzz targets and the corpus replay test.

use crate::credential::{self, CredentialType};
use crate::format::{ManifestBody, ManifestFile, PlainFile, RecordFile, SealFile};

/// Parses arbitrary bytes as every credential type, with and without a password; anything
/// accepted must report an MD5 of the DER it would store, and parse again from that DER.
pub fn credential(data: &[u8]) {
    for kind in CredentialType::ALL {
        for password in [None, Some(&b"keypass123"[..])] {
            if let Ok(parsed) = credential::parse(kind, data, password) {
                let again = credential::facts(kind, &parsed.der);
                assert_eq!(
                    again.as_ref().ok(),
                    Some(&parsed.facts),
                    "facts of the stored DER differ"
                );
            }
        }
    }
}

/// Decodes arbitrary bytes as every v1 file; whatever decodes must encode back to the same
/// bytes.
pub fn store_format(data: &[u8]) {
    if let Ok(f) = SealFile::decode(data) {
        assert_eq!(f.encode(), data);
    }
    if let Ok(f) = RecordFile::decode(data) {
        assert_eq!(f.encode(), data);
    }
    if let Ok(f) = ManifestFile::decode(data) {
        assert_eq!(f.encode(), data);
    }
    if let Ok(f) = ManifestBody::decode(data) {
        assert_eq!(f.encode(), data);
    }
    if let Ok(f) = PlainFile::decode(data) {
        assert_eq!(f.encode(), data);
    }
}
