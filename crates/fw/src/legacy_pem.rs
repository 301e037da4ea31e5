//! The traditional OpenSSL encrypted PEM ("legacy PEM encryption"): a PKCS#1 `RSA PRIVATE KEY`
//! or SEC1 `EC PRIVATE KEY` block with RFC 1421-style headers, as `openssl genrsa -des3`
//! (OpenSSL 1.x), `openssl rsa -des3 -traditional` and `openssl ec -des3` write it, and as
//! u-blox ubxlib's own test key is:
//!
//! ```text
//! -----BEGIN RSA PRIVATE KEY-----
//! Proc-Type: 4,ENCRYPTED
//! DEK-Info: DES-EDE3-CBC,6E99E56864B62DEE
//!
//! <base64 of the ciphertext>
//! -----END RSA PRIVATE KEY-----
//! ```
//!
//! The key is OpenSSL's `EVP_BytesToKey` with MD5 and one iteration (`D_1 = MD5(P || S)`,
//! `D_i = MD5(D_(i-1) || P || S)`, key = the first bytes of `D_1 || D_2 || ...`), where the salt
//! `S` is the first 8 bytes of the DEK-Info IV and `P` the password bytes as given; the cipher is
//! CBC with PKCS#7 padding under that IV. DEK-Info ciphers: [`PemCipher`] (DES-CBC,
//! DES-EDE3-CBC, AES-128/192/256-CBC; the names as openssl writes them, in any ASCII case).
//!
//! What is accepted, exactly (this is stricter than RFC 1421, and as strict as openssl where it
//! matters):
//! - a block is a traditional PEM when its BEGIN line is `RSA PRIVATE KEY` or `EC PRIVATE KEY`
//!   and its first body line is a header (holds a `:`, which base64 never does); anything else
//!   is not this module's ([`EncryptedPem::parse`] returns `Ok(None)`);
//! - lines end in LF or CRLF; trailing spaces and tabs are ignored; text outside the block must
//!   be whitespace;
//! - headers are `Name: value` lines, at most [`MAX_HEADER_LINES`], names in any ASCII case, no
//!   folded continuation lines, ended by a blank line; the first is `Proc-Type: 4,ENCRYPTED`
//!   (RFC 1421 §4.6.1.1), `DEK-Info: <cipher>,<IV in hex>` appears once (§4.6.1.3), other
//!   headers are ignored;
//! - the body is standard base64 with padding, in lines of any length, up to the END line of
//!   the same label.
//!
//! Errors: a broken armour (no blank line after the headers, no END line, too many headers, a
//! body that is not base64, more than [`MAX_PEM`] bytes) is [`DecryptError::Pem`]; any other
//! Proc-Type, a missing or repeated DEK-Info, a cipher not in [`PemCipher`] (DES-EDE3-CFB,
//! aliases such as `DES3`, ...) or an IV that is not exactly the cipher's block of hex is
//! [`DecryptError::UnsupportedScheme`]; a missing password is [`DecryptError::NoPassword`]; a
//! plaintext that does not unpad, or is not the PKCS#1 or SEC1 DER its label names, is
//! [`DecryptError::Password`] (so a wrong password that happens to unpad does not pass).
//! The derived key and the plaintext are zeroized; the scheme tried is logged (`tracing`, at
//! debug, e.g. `scheme="PEM DEK-Info DES-EDE3-CBC"`), never the password.
//!
//! ```
//! use sealcell_fw::encrypted_key::{DecryptError, EncryptedPem};
//!
//! // An RFC 7468 PEM without headers is not a traditional encrypted PEM:
//! let plain = b"-----BEGIN RSA PRIVATE KEY-----\nMAA=\n-----END RSA PRIVATE KEY-----\n";
//! assert!(EncryptedPem::parse(plain).unwrap().is_none());
//! // One whose DEK-Info names a cipher this module does not decrypt:
//! let cfb = b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
//!     DEK-Info: DES-EDE3-CFB,6E99E56864B62DEE\n\nMAA=\n-----END RSA PRIVATE KEY-----\n";
//! assert!(matches!(
//!     EncryptedPem::parse(cfb),
//!     Err(DecryptError::UnsupportedScheme(s)) if s == "PEM DEK-Info DES-EDE3-CFB"
//! ));
//! ```

use std::fmt;

use base64::Engine;
use der::Decode;
use md5::{Digest, Md5};
use zeroize::{Zeroize, Zeroizing};

use crate::encrypted_key::{DecryptError, Scheme, cbc_decrypt, logged_decrypt};

/// The largest traditional PEM accepted, in bytes (an RSA-4096 key is about 3.3 KiB).
///
/// # Security
/// Bounds the memory and work of one parse; the input may come from the wire (where
/// `+USECMNG` takes at most 8 KiB anyway).
pub const MAX_PEM: usize = 16 * 1024;

/// The most header lines accepted before the blank line (openssl writes two).
///
/// # Security
/// Bounds the header scan and the headers kept.
pub const MAX_HEADER_LINES: usize = 8;

/// The longest piece of a refused header value quoted in an error message.
const MAX_QUOTED: usize = 40;

/// A DEK-Info cipher this module decrypts: CBC with PKCS#7 padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PemCipher {
    /// `DES-CBC` (FIPS 46-3; `openssl rsa -des`): 8-byte key, 8-byte IV.
    DesCbc,
    /// `DES-EDE3-CBC` (NIST SP 800-67; `-des3`, ubxlib's test key): 24-byte key, 8-byte IV.
    DesEde3Cbc,
    /// `AES-128-CBC` (FIPS 197; `-aes128`): 16-byte key, 16-byte IV.
    Aes128Cbc,
    /// `AES-192-CBC` (`-aes192`): 24-byte key, 16-byte IV.
    Aes192Cbc,
    /// `AES-256-CBC` (`-aes256`): 32-byte key, 16-byte IV.
    Aes256Cbc,
}

impl PemCipher {
    /// Every cipher.
    pub const ALL: [PemCipher; 5] = [
        PemCipher::DesCbc,
        PemCipher::DesEde3Cbc,
        PemCipher::Aes128Cbc,
        PemCipher::Aes192Cbc,
        PemCipher::Aes256Cbc,
    ];

    /// The name as DEK-Info carries it (and openssl writes it).
    pub fn name(self) -> &'static str {
        match self {
            PemCipher::DesCbc => "DES-CBC",
            PemCipher::DesEde3Cbc => "DES-EDE3-CBC",
            PemCipher::Aes128Cbc => "AES-128-CBC",
            PemCipher::Aes192Cbc => "AES-192-CBC",
            PemCipher::Aes256Cbc => "AES-256-CBC",
        }
    }

    /// The scheme's name in logs and errors: `PEM DEK-Info <name>`.
    pub(crate) fn scheme_name(self) -> &'static str {
        match self {
            PemCipher::DesCbc => "PEM DEK-Info DES-CBC",
            PemCipher::DesEde3Cbc => "PEM DEK-Info DES-EDE3-CBC",
            PemCipher::Aes128Cbc => "PEM DEK-Info AES-128-CBC",
            PemCipher::Aes192Cbc => "PEM DEK-Info AES-192-CBC",
            PemCipher::Aes256Cbc => "PEM DEK-Info AES-256-CBC",
        }
    }

    /// The key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            PemCipher::DesCbc => 8,
            PemCipher::Aes128Cbc => 16,
            PemCipher::DesEde3Cbc | PemCipher::Aes192Cbc => 24,
            PemCipher::Aes256Cbc => 32,
        }
    }

    /// The IV (block) length in bytes: the DEK-Info IV has twice as many hex digits.
    pub fn iv_len(self) -> usize {
        match self {
            PemCipher::DesCbc | PemCipher::DesEde3Cbc => 8,
            PemCipher::Aes128Cbc | PemCipher::Aes192Cbc | PemCipher::Aes256Cbc => 16,
        }
    }

    /// The cipher named `name`, in any ASCII case; aliases (`DES3`, `AES256`) are not names.
    pub fn from_name(name: &[u8]) -> Option<PemCipher> {
        PemCipher::ALL
            .into_iter()
            .find(|c| c.name().as_bytes().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for PemCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the PEM label says the plaintext is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PemKeyKind {
    /// `RSA PRIVATE KEY`: a PKCS#1 `RSAPrivateKey` (RFC 8017 appendix A.1.2).
    Rsa,
    /// `EC PRIVATE KEY`: a SEC1 `ECPrivateKey` (RFC 5915 §3).
    Ec,
}

impl PemKeyKind {
    /// The PEM label.
    pub fn label(self) -> &'static str {
        match self {
            PemKeyKind::Rsa => "RSA PRIVATE KEY",
            PemKeyKind::Ec => "EC PRIVATE KEY",
        }
    }
}

/// A parsed traditional encrypted PEM, not yet decrypted.
#[derive(Clone)]
pub struct EncryptedPem {
    kind: PemKeyKind,
    cipher: PemCipher,
    /// The IV; its first [`PemCipher::iv_len`] bytes are used.
    iv: [u8; 16],
    ciphertext: Vec<u8>,
}

impl fmt::Debug for EncryptedPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedPem")
            .field("kind", &self.kind)
            .field("cipher", &self.cipher)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

impl EncryptedPem {
    /// Parses `input` (leading and trailing whitespace allowed). `Ok(None)` when it is not a
    /// traditional PEM at all (DER, or a PEM without headers, or of another label: callers read
    /// it as they did before); an error when it is one this module will not open (see the
    /// module docs).
    pub fn parse(input: &[u8]) -> Result<Option<EncryptedPem>, DecryptError> {
        let text = input.trim_ascii();
        let mut lines = text.split(|&b| b == b'\n').map(trim_line);
        let kind = match lines.next() {
            Some(b"-----BEGIN RSA PRIVATE KEY-----") => PemKeyKind::Rsa,
            Some(b"-----BEGIN EC PRIVATE KEY-----") => PemKeyKind::Ec,
            _ => return Ok(None),
        };
        let mut lines = lines.peekable();
        if !lines.peek().is_some_and(|l| l.contains(&b':')) {
            return Ok(None);
        }
        if text.len() > MAX_PEM {
            return Err(pem(format!(
                "{} bytes is more than the {MAX_PEM} a PEM key may have",
                text.len()
            )));
        }

        // RFC 1421 §4.4: headers, one blank line, the body, the END line.
        let mut headers: Vec<(&[u8], &[u8])> = Vec::new();
        loop {
            let line = lines.next().ok_or_else(|| no_end(kind))?;
            if line.is_empty() {
                break;
            }
            if headers.len() == MAX_HEADER_LINES {
                return Err(pem(format!(
                    "more than {MAX_HEADER_LINES} header lines (or no blank line after them)"
                )));
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return Err(pem(
                    "no blank line after the Proc-Type and DEK-Info headers",
                ));
            };
            headers.push((line[..colon].trim_ascii(), line[colon + 1..].trim_ascii()));
        }
        let end = format!("-----END {}-----", kind.label());
        let mut body = Vec::with_capacity(text.len());
        loop {
            let line = lines.next().ok_or_else(|| no_end(kind))?;
            if line == end.as_bytes() {
                break;
            }
            body.extend_from_slice(line);
        }
        if lines.next().is_some() {
            return Err(pem(format!("data after the {end} line")));
        }

        let (cipher, iv) = encryption(&headers)?;
        let ciphertext = base64::engine::general_purpose::STANDARD
            .decode(&body)
            .map_err(|e| pem(format!("the PEM body is not base64 ({e})")))?;
        Ok(Some(EncryptedPem {
            kind,
            cipher,
            iv,
            ciphertext,
        }))
    }

    /// What the label says the plaintext is.
    pub fn kind(&self) -> PemKeyKind {
        self.kind
    }

    /// The DEK-Info cipher.
    pub fn cipher(&self) -> PemCipher {
        self.cipher
    }

    /// The scheme, as errors and logs name it.
    pub fn scheme(&self) -> Scheme {
        Scheme::Pem(self.cipher)
    }

    /// Decrypts it with `password`: the DER of the PKCS#1 or SEC1 key inside, as
    /// [`kind`](Self::kind) says.
    pub fn decrypt(&self, password: Option<&[u8]>) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        logged_decrypt(
            self.scheme(),
            "a traditional encrypted PEM private key",
            password,
            |password| self.decrypt_with(password),
        )
    }

    fn decrypt_with(&self, password: &[u8]) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        let wrong = DecryptError::Password(self.scheme());
        let iv = &self.iv[..self.cipher.iv_len()];
        let mut key = Zeroizing::new([0u8; 32]);
        let key = &mut key[..self.cipher.key_len()];
        evp_bytes_to_key_md5(password, &iv[..8], key);
        let ct = &self.ciphertext;
        let plain = match self.cipher {
            PemCipher::DesCbc => cbc_decrypt::<des::Des>(key, iv, ct),
            PemCipher::DesEde3Cbc => cbc_decrypt::<des::TdesEde3>(key, iv, ct),
            PemCipher::Aes128Cbc => cbc_decrypt::<aes::Aes128>(key, iv, ct),
            PemCipher::Aes192Cbc => cbc_decrypt::<aes::Aes192>(key, iv, ct),
            PemCipher::Aes256Cbc => cbc_decrypt::<aes::Aes256>(key, iv, ct),
        }
        .ok_or_else(|| wrong.clone())?;
        // A wrong password that happens to unpad (1 in 256 or so) still yields garbage.
        let is_key = match self.kind {
            PemKeyKind::Rsa => pkcs1::RsaPrivateKeyRef::from_der(&plain).is_ok(),
            PemKeyKind::Ec => sec1::EcPrivateKey::from_der(&plain).is_ok(),
        };
        if is_key { Ok(plain) } else { Err(wrong) }
    }
}

/// The cipher and IV the headers name: `Proc-Type: 4,ENCRYPTED` first, then exactly one
/// `DEK-Info: <cipher>,<hex IV>`.
fn encryption(headers: &[(&[u8], &[u8])]) -> Result<(PemCipher, [u8; 16]), DecryptError> {
    match headers.first() {
        Some((name, _)) if name.eq_ignore_ascii_case(b"Proc-Type") => {}
        Some((name, _)) => {
            return Err(unsupported(format!(
                "PEM with a {} header before Proc-Type",
                quote(name)
            )));
        }
        None => return Err(unsupported("PEM without Proc-Type".into())),
    }
    let proc_types = values(headers, "Proc-Type");
    let encrypted = match proc_types.as_slice() {
        [value] => value
            .split(|&b| b == b',')
            .map(<[u8]>::trim_ascii)
            .eq([&b"4"[..], b"ENCRYPTED"]),
        _ => false,
    };
    if !encrypted {
        let shown: Vec<String> = proc_types.iter().map(|v| quote(v)).collect();
        return Err(unsupported(format!(
            "PEM Proc-Type {}",
            shown.join(" and ")
        )));
    }
    let dek_info = match values(headers, "DEK-Info").as_slice() {
        [value] => *value,
        [] => {
            return Err(unsupported(
                "PEM Proc-Type 4,ENCRYPTED without DEK-Info".into(),
            ));
        }
        _ => return Err(unsupported("PEM with more than one DEK-Info".into())),
    };
    let (name, iv_hex) = match dek_info.iter().position(|&b| b == b',') {
        Some(comma) => (
            dek_info[..comma].trim_ascii(),
            dek_info[comma + 1..].trim_ascii(),
        ),
        None => (dek_info, &b""[..]),
    };
    let cipher = PemCipher::from_name(name)
        .ok_or_else(|| unsupported(format!("PEM DEK-Info {}", quote(name))))?;
    let bad_iv = || {
        unsupported(format!(
            "PEM DEK-Info {cipher} with an IV that is not {} hex digits",
            2 * cipher.iv_len()
        ))
    };
    let decoded = hex::decode(iv_hex).map_err(|_| bad_iv())?;
    if decoded.len() != cipher.iv_len() {
        return Err(bad_iv());
    }
    let mut iv = [0u8; 16];
    iv[..decoded.len()].copy_from_slice(&decoded);
    Ok((cipher, iv))
}

/// The values of the headers called `name` (in any ASCII case).
fn values<'a>(headers: &[(&'a [u8], &'a [u8])], name: &str) -> Vec<&'a [u8]> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| *v)
        .collect()
}

/// OpenSSL's `EVP_BytesToKey(cipher, EVP_md5(), salt, password, count = 1)`, key part only:
/// `D_1 = MD5(P || S)`, `D_i = MD5(D_(i-1) || P || S)`, `out` = the first bytes of
/// `D_1 || D_2 || ...`.
fn evp_bytes_to_key_md5(password: &[u8], salt: &[u8], out: &mut [u8]) {
    let mut previous = None;
    for chunk in out.chunks_mut(16) {
        let mut h = Md5::new();
        if let Some(d) = &previous {
            h.update(d);
        }
        h.update(password);
        h.update(salt);
        let d = h.finalize();
        chunk.copy_from_slice(&d[..chunk.len()]);
        if let Some(mut old) = previous.replace(d) {
            old.as_mut_slice().zeroize();
        }
    }
    if let Some(mut last) = previous {
        last.as_mut_slice().zeroize();
    }
}

/// A line without its CR (CRLF endings) and trailing spaces and tabs.
fn trim_line(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|b| !matches!(b, b'\r' | b' ' | b'\t'))
        .map_or(0, |i| i + 1);
    &line[..end]
}

/// A header value for an error message: escaped to printable ASCII, and cut short.
fn quote(value: &[u8]) -> String {
    let mut s = value.escape_ascii().to_string();
    if s.len() > MAX_QUOTED {
        // Escaped text is ASCII, so every index is a char boundary.
        s.truncate(MAX_QUOTED);
        s.push_str("...");
    }
    s
}

fn pem(what: impl Into<String>) -> DecryptError {
    DecryptError::Pem(what.into())
}

fn no_end(kind: PemKeyKind) -> DecryptError {
    pem(format!("no -----END {}----- line", kind.label()))
}

fn unsupported(what: String) -> DecryptError {
    DecryptError::UnsupportedScheme(what)
}

#[cfg(test)]
mod tests {
    // Test code: a failed unwrap or panic is a failed test, reported with its location.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const PASSWORD: &[u8] = b"legacy-pass";

    fn fixture(name: &str) -> Vec<u8> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/legacy-keys");
        std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
    }

    /// The DES-EDE3 fixture as text lines (LF), for editing.
    fn lines() -> Vec<String> {
        String::from_utf8(fixture("rsa-pem-des3.pem"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn join(lines: &[String]) -> Vec<u8> {
        (lines.join("\n") + "\n").into_bytes()
    }

    fn open(input: &[u8]) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        EncryptedPem::parse(input)?
            .expect("a traditional PEM")
            .decrypt(Some(PASSWORD))
    }

    fn unsupported_message(input: &[u8]) -> String {
        match EncryptedPem::parse(input) {
            Err(DecryptError::UnsupportedScheme(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn evp_bytes_to_key_md5_matches_openssl_enc() {
        // `openssl enc -des-ede3-cbc -P -S 0102030405060708 -pass pass:x -md md5` prints
        // key=DF39DED3E3F345CEBB53BF088AAC6D3E3056C591D7268AA6, iv =DCBCB8CE622B9155; and
        // `-aes-256-cbc` key=DF39...AA6DCBCB8CE622B9155, iv =E5326982A201989A05B46BE8792CFE3E:
        // one output stream, cut into key and IV.
        let salt = hex::decode("0102030405060708").unwrap();
        let mut out = [0u8; 48];
        evp_bytes_to_key_md5(b"x", &salt, &mut out);
        assert_eq!(
            hex::encode_upper(out),
            "DF39DED3E3F345CEBB53BF088AAC6D3E3056C591D7268AA6DCBCB8CE622B9155\
             E5326982A201989A05B46BE8792CFE3E"
        );
        for len in [8, 16, 24, 32] {
            let mut short = vec![0u8; len];
            evp_bytes_to_key_md5(b"x", &salt, &mut short);
            assert_eq!(short[..], out[..len], "{len} bytes");
        }
        // D_1 is one MD5 of password || salt.
        let mut d1 = [0u8; 16];
        evp_bytes_to_key_md5(b"pw", b"saltsalt", &mut d1);
        assert_eq!(d1[..], Md5::digest(b"pwsaltsalt")[..]);
    }

    #[test]
    fn cipher_names_are_openssls_in_any_case_without_aliases() {
        for c in PemCipher::ALL {
            assert_eq!(PemCipher::from_name(c.name().as_bytes()), Some(c));
            let lower = c.name().to_ascii_lowercase();
            assert_eq!(PemCipher::from_name(lower.as_bytes()), Some(c));
            assert_eq!(Scheme::Pem(c).name(), format!("PEM DEK-Info {c}"));
        }
        for other in [
            &b"DES3"[..],
            b"AES256",
            b"DES-EDE3-CFB",
            b"AES-256-GCM",
            b"DES-EDE-CBC",
            b"",
        ] {
            assert_eq!(PemCipher::from_name(other), None);
        }
    }

    #[test]
    fn not_a_traditional_pem_is_none() {
        for input in [
            &b""[..],
            b"\x30\x00",
            b"-----BEGIN RSA PRIVATE KEY-----",
            b"-----BEGIN RSA PRIVATE KEY-----\nMAA=\n-----END RSA PRIVATE KEY-----\n",
            b"-----BEGIN PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nMAA=\n-----END PRIVATE KEY-----",
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----",
            b"-----BEGIN RSA PRIVATE KEY----- \n\nProc-Type: 4,ENCRYPTED\n",
        ] {
            assert!(
                EncryptedPem::parse(input).unwrap().is_none(),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn header_variants_decrypt_alike() {
        let reference = open(&fixture("rsa-pem-des3.pem")).unwrap();
        let base = lines();
        let dek = base[2].clone();
        let (name, iv) = dek
            .strip_prefix("DEK-Info: ")
            .unwrap()
            .split_once(',')
            .unwrap();
        let mut variants: Vec<(&str, Vec<String>)> = Vec::new();
        let mut edit = |what, f: &dyn Fn(&mut Vec<String>)| {
            let mut v = base.clone();
            f(&mut v);
            variants.push((what, v));
        };
        edit("lower-case hex IV", &|v| {
            v[2] = format!("DEK-Info: {name},{}", iv.to_lowercase());
        });
        edit("lower-case cipher name", &|v| {
            v[2] = format!("DEK-Info: {},{iv}", name.to_lowercase());
        });
        edit("spaces around the values", &|v| {
            v[1] = "Proc-Type:  4 , ENCRYPTED ".into();
            v[2] = format!("dek-info:\t{name} , {iv}\t");
        });
        edit("an extra header after DEK-Info", &|v| {
            v.insert(3, "Comment: made by make.sh".into());
        });
        edit("an extra header between them", &|v| {
            v.insert(2, "X-Tool: openssl".into());
        });
        edit("headers up to the cap", &|v| {
            for i in 0..MAX_HEADER_LINES - 2 {
                v.insert(3, format!("X-{i}: y"));
            }
        });
        edit("body lines of other lengths", &|v| {
            let body: String = v[4..v.len() - 1].concat();
            v.truncate(4);
            v.extend(
                body.as_bytes()
                    .chunks(76)
                    .map(|c| String::from_utf8_lossy(c).into()),
            );
            v.push("-----END RSA PRIVATE KEY-----".into());
        });
        for (what, v) in variants {
            assert_eq!(open(&join(&v)).unwrap(), reference, "{what}");
        }
        // CRLF, whitespace around the block, no final newline.
        let crlf = (base.join("\r\n") + "\r\n").into_bytes();
        assert_eq!(open(&crlf).unwrap(), reference, "CRLF");
        let padded = [&b" \r\n\t"[..], &join(&base), b"\r\n\r\n"].concat();
        assert_eq!(open(&padded).unwrap(), reference, "surrounding whitespace");
        assert_eq!(open(base.join("\n").as_bytes()).unwrap(), reference);
    }

    #[test]
    fn broken_armour_is_a_pem_error() {
        let base = lines();
        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut edit = |what, f: &dyn Fn(&mut Vec<String>)| {
            let mut v = base.clone();
            f(&mut v);
            cases.push((what, join(&v)));
        };
        edit("missing blank line", &|v| {
            v.remove(3);
        });
        edit("blank line replaced by a header", &|v| {
            v[3] = "Comment: x".into();
        });
        edit("too many headers", &|v| {
            for i in 0..MAX_HEADER_LINES - 1 {
                v.insert(3, format!("X-{i}: y"));
            }
        });
        edit("no END line", &|v| {
            v.pop();
        });
        edit("END of another label", &|v| {
            *v.last_mut().unwrap() = "-----END EC PRIVATE KEY-----".into();
        });
        edit("data after END", &|v| v.push("x".into()));
        edit("a second block", &|v| {
            let again = v.clone();
            v.extend(again);
        });
        edit("not base64", &|v| v[5].replace_range(3..4, "*"));
        edit("a body one character short", &|v| {
            let n = v.len() - 2;
            v[n].pop();
        });
        edit("a folded header", &|v| {
            v.insert(2, " continued".into());
        });
        for (what, input) in cases {
            assert!(
                matches!(EncryptedPem::parse(&input), Err(DecryptError::Pem(_))),
                "{what}: {:?}",
                EncryptedPem::parse(&input)
            );
        }
        let huge = [&join(&base)[..], &vec![b' '; MAX_PEM]].concat();
        let mut huge_lines = base.clone();
        huge_lines.insert(3, format!("Comment: {}", "x".repeat(MAX_PEM)));
        assert!(matches!(
            EncryptedPem::parse(&join(&huge_lines)),
            Err(DecryptError::Pem(m)) if m.contains("16384")
        ));
        // Trailing whitespace is not content: this one is fine.
        assert!(EncryptedPem::parse(&huge).is_ok());
    }

    #[test]
    fn other_encryption_headers_are_unsupported() {
        let base = lines();
        let iv = base[2].rsplit(',').next().unwrap().to_string();
        let with = |i: usize, line: &str| {
            let mut v = base.clone();
            v[i] = line.into();
            join(&v)
        };
        for (line, expect) in [
            (
                "DEK-Info: DES-EDE3-CFB,".to_string() + &iv,
                "PEM DEK-Info DES-EDE3-CFB",
            ),
            ("DEK-Info: DES3,".to_string() + &iv, "PEM DEK-Info DES3"),
            (
                "DEK-Info: AES-256-GCM,".to_string() + &iv,
                "PEM DEK-Info AES-256-GCM",
            ),
            ("DEK-Info: DES-EDE3-CBC".into(), "not 16 hex digits"),
            ("DEK-Info: DES-EDE3-CBC,".into(), "not 16 hex digits"),
            (
                "DEK-Info: DES-EDE3-CBC,6E99E56864B62D".into(),
                "not 16 hex digits",
            ),
            (
                "DEK-Info: DES-EDE3-CBC,6E99E56864B62DEE00".into(),
                "not 16 hex digits",
            ),
            (
                "DEK-Info: DES-EDE3-CBC,6E99E56864B62DEG".into(),
                "not 16 hex digits",
            ),
            (
                "DEK-Info: DES-EDE3-CBC,6E99 E56864B62DEE".into(),
                "not 16 hex digits",
            ),
            (
                "DEK-Info: AES-256-CBC,".to_string() + &iv,
                "not 32 hex digits",
            ),
            ("Comment: no DEK-Info".into(), "without DEK-Info"),
            (
                "DEK-Info: \u{1b}[31mred".into(),
                "PEM DEK-Info \\x1b[31mred",
            ),
        ] {
            let m = unsupported_message(&with(2, &line));
            assert!(m.contains(expect), "{line}: {m}");
        }
        for (line, expect) in [
            ("Proc-Type: 4,MIC-CLEAR", "PEM Proc-Type 4,MIC-CLEAR"),
            ("Proc-Type: 3,ENCRYPTED", "PEM Proc-Type 3,ENCRYPTED"),
            ("Proc-Type: 4,ENCRYPTED,x", "PEM Proc-Type 4,ENCRYPTED,x"),
            ("Proc-Type: 4,encrypted", "PEM Proc-Type 4,encrypted"),
            ("Proc-Type:", "PEM Proc-Type "),
            (
                "DEK-Info: DES-EDE3-CBC,00",
                "a DEK-Info header before Proc-Type",
            ),
        ] {
            let m = unsupported_message(&with(1, line));
            assert!(m.contains(expect), "{line}: {m}");
        }
        let mut v = base.clone();
        v.insert(3, base[2].clone());
        assert!(unsupported_message(&join(&v)).contains("more than one DEK-Info"));
        let mut v = base.clone();
        v.insert(3, base[1].clone());
        assert!(unsupported_message(&join(&v)).contains("Proc-Type 4,ENCRYPTED and"));
        // A long refused value is quoted short.
        let m = unsupported_message(&with(2, &format!("DEK-Info: {}", "A".repeat(500))));
        assert!(m.len() < 80, "{m}");
    }

    #[test]
    fn passwords() {
        let pem = EncryptedPem::parse(&fixture("rsa-pem-des3.pem"))
            .unwrap()
            .unwrap();
        assert_eq!(pem.kind(), PemKeyKind::Rsa);
        assert_eq!(pem.cipher(), PemCipher::DesEde3Cbc);
        assert_eq!(pem.decrypt(None).unwrap_err(), DecryptError::NoPassword);
        for wrong in [&b"legacy-pasS"[..], b"", b"legacy-pass\n"] {
            assert_eq!(
                pem.decrypt(Some(wrong)).unwrap_err(),
                DecryptError::Password(Scheme::Pem(PemCipher::DesEde3Cbc))
            );
        }
        let plain = pem.decrypt(Some(PASSWORD)).unwrap();
        assert!(pkcs1::RsaPrivateKeyRef::from_der(&plain).is_ok());
    }

    #[test]
    fn a_wrong_password_that_unpads_is_still_a_wrong_password() {
        // Search wrong passwords until one's plaintext has valid PKCS#7 padding (about 1 in
        // 256): the DER check must catch it.
        let pem = EncryptedPem::parse(&fixture("rsa-pem-des.pem"))
            .unwrap()
            .unwrap();
        let iv = &pem.iv[..8];
        let found = (0..100_000u32)
            .map(|i| format!("wrong-{i}"))
            .find(|pw| {
                let mut key = [0u8; 8];
                evp_bytes_to_key_md5(pw.as_bytes(), iv, &mut key);
                cbc_decrypt::<des::Des>(&key, iv, &pem.ciphertext).is_some()
            })
            .expect("a wrong password that unpads");
        assert_eq!(
            pem.decrypt(Some(found.as_bytes())).unwrap_err(),
            DecryptError::Password(Scheme::Pem(PemCipher::DesCbc)),
            "{found}"
        );
    }

    #[test]
    fn every_byte_flipped_or_cut_is_an_error_or_another_key_never_a_panic() {
        let input = fixture("rsa-pem-des3.pem");
        let reference = open(&input).unwrap();
        for i in 0..input.len() {
            for bit in [0x01, 0x20, 0x80] {
                let mut damaged = input.clone();
                damaged[i] ^= bit;
                if let Ok(Some(pem)) = EncryptedPem::parse(&damaged)
                    && let Ok(plain) = pem.decrypt(Some(PASSWORD))
                {
                    // Only a flip in the key's own numbers (or letter case of the IV) gets
                    // here.
                    assert!(
                        plain != reference || bit == 0x20,
                        "flip {bit:#x} at {i} went unnoticed"
                    );
                }
            }
        }
        for cut in 0..input.len() {
            if let Ok(Some(pem)) = EncryptedPem::parse(&input[..cut]) {
                // Only whole trailing whitespace can go.
                assert!(cut >= input.len() - 1, "cut at {cut} parsed");
                assert_eq!(pem.decrypt(Some(PASSWORD)).unwrap(), reference);
            }
        }
    }
}
