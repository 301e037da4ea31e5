//! Fixtures shared by the store's tests: the openssl-made PKI in `tests/fixtures/pki/`.
#![allow(dead_code, unreachable_pub)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use sealcell_store::crypto::KdfPolicy;
use sealcell_store::{DeviceSecrets, SimStorage, Storage, Store};
use secrecy::SecretBox;

pub const IMEI: &str = "490154203237518";

pub fn pki_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pki")
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(pki_dir().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// facts.txt: file -> (md5, subject CN, notAfter as `YYYY/MM/DD HH:MM:SS`), from openssl.
pub fn facts() -> BTreeMap<String, (String, Option<String>, Option<String>)> {
    let text = String::from_utf8(fixture("facts.txt")).unwrap();
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let not_after = f.get(3).map(|d| openssl_date(d));
            (
                f[0].to_string(),
                (f[1].to_string(), f.get(2).map(|s| s.to_string()), not_after),
            )
        })
        .collect()
}

/// `Nov  1 15:50:51 2126 GMT` -> `2126/11/01 15:50:51`.
pub fn openssl_date(d: &str) -> String {
    let w: Vec<&str> = d.split_whitespace().collect();
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = months.iter().position(|x| *x == w[0]).unwrap() + 1;
    format!(
        "{}/{:02}/{:02} {}",
        w[3],
        m,
        w[1].parse::<u32>().unwrap(),
        w[2]
    )
}

pub fn device(byte: u8) -> DeviceSecrets {
    DeviceSecrets {
        duk: SecretBox::new(Box::new([byte; 32])),
        imei: IMEI.to_string(),
    }
}

pub fn open(disk: &SimStorage, duk: u8) -> Store {
    Store::open(
        Arc::new(disk.clone()) as Arc<dyn Storage>,
        device(duk),
        KdfPolicy::INSECURE_FAST_FOR_TESTS,
    )
    .unwrap()
}
