#![no_main]
use sealcell_fw::encoding::{SignatureFormat, decode_signature};
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for format in [SignatureFormat::Auto, SignatureFormat::Base64, SignatureFormat::Hex, SignatureFormat::Binary] {
        if let Ok(sig) = decode_signature(data, format) {
            assert!(!sig.is_empty());
        }
    }
});
