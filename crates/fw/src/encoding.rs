//! Signature encodings: base64 as the §4.3.1 script writes it (`base64` wraps at 76 columns,
//! `openssl base64` at 64; both are accepted, whitespace is ignored), hex, or raw bytes.
//! Decoding is strict (canonical base64 padding, even-length hex); the length check against the
//! key is the verifier's.

use base64::Engine;

/// How a signature is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureFormat {
    /// Decide from the content: hex if it is only hex digits (and whitespace) of even length,
    /// else base64 if it is only base64 characters, else raw bytes.
    Auto,
    /// Base64 (standard alphabet, padded), line breaks allowed.
    Base64,
    /// Hexadecimal, either case, whitespace allowed.
    Hex,
    /// The bytes themselves.
    Binary,
}

/// Why a signature text does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodingError {
    /// No signature at all.
    #[error("the signature is empty")]
    Empty,
    /// Not valid base64.
    #[error("the signature is not valid base64: {0}")]
    Base64(String),
    /// Not valid hex.
    #[error("the signature is not valid hex: {0}")]
    Hex(String),
}

fn strip_whitespace(text: &[u8]) -> Vec<u8> {
    text.iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect()
}

/// Decodes a signature.
pub fn decode_signature(input: &[u8], format: SignatureFormat) -> Result<Vec<u8>, EncodingError> {
    let compact = strip_whitespace(input);
    let format = match format {
        SignatureFormat::Auto if compact.is_empty() => return Err(EncodingError::Empty),
        SignatureFormat::Auto
            if compact.len().is_multiple_of(2) && compact.iter().all(u8::is_ascii_hexdigit) =>
        {
            SignatureFormat::Hex
        }
        SignatureFormat::Auto
            if compact
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')) =>
        {
            SignatureFormat::Base64
        }
        SignatureFormat::Auto => SignatureFormat::Binary,
        other => other,
    };
    let out = match format {
        SignatureFormat::Base64 => base64::engine::general_purpose::STANDARD
            .decode(&compact)
            .map_err(|e| EncodingError::Base64(e.to_string()))?,
        SignatureFormat::Hex => {
            hex::decode(&compact).map_err(|e| EncodingError::Hex(e.to_string()))?
        }
        SignatureFormat::Binary | SignatureFormat::Auto => input.to_vec(),
    };
    if out.is_empty() {
        return Err(EncodingError::Empty);
    }
    Ok(out)
}

/// Encodes a signature as one line of base64 (ready for `AT+UFWSINSTALL`).
pub fn to_base64(sig: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(sig)
}

#[cfg(test)]
mod tests {
    use super::*;
    use SignatureFormat::*;

    #[test]
    fn formats() {
        let sig: Vec<u8> = (0u8..=255).collect();
        let b64 = to_base64(&sig);
        let wrapped: String = b64
            .as_bytes()
            .chunks(64)
            .map(|c| format!("{}\n", String::from_utf8_lossy(c)))
            .collect();
        assert_eq!(decode_signature(b64.as_bytes(), Base64).unwrap(), sig);
        assert_eq!(decode_signature(wrapped.as_bytes(), Auto).unwrap(), sig);
        assert_eq!(
            decode_signature(hex::encode(&sig).as_bytes(), Auto).unwrap(),
            sig
        );
        assert_eq!(
            decode_signature(hex::encode_upper(&sig).as_bytes(), Hex).unwrap(),
            sig
        );
        assert_eq!(decode_signature(&sig, Auto).unwrap(), sig);
        assert_eq!(decode_signature(&sig, Binary).unwrap(), sig);
    }

    #[test]
    fn malformed() {
        assert_eq!(decode_signature(b"", Auto), Err(EncodingError::Empty));
        assert_eq!(decode_signature(b" \n", Base64), Err(EncodingError::Empty));
        assert!(matches!(
            decode_signature(b"QUJD*", Base64),
            Err(EncodingError::Base64(_))
        ));
        assert!(matches!(
            decode_signature(b"QUJ", Base64),
            Err(EncodingError::Base64(_))
        ));
        assert!(matches!(
            decode_signature(b"abc", Hex),
            Err(EncodingError::Hex(_))
        ));
        // Non-canonical padding bits are refused.
        assert!(matches!(
            decode_signature(b"QUJDRB==", Base64),
            Err(EncodingError::Base64(_))
        ));
    }
}
