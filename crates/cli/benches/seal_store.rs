//! Issue 3's figures, each beside its baseline in the same run, on the release binary:
//!
//! 1. Sealed boot with 16 credentials: process start to the first `OK` over TCP (goal
//!    <= 150 ms, Argon2id included); baseline: the same module unsealed with 16 credentials.
//!    The Argon2id derivation alone is timed in-process for reference.
//! 2. Import of an 8 KiB certificate over TCP (replacing the same item each time), sealed vs
//!    unsealed: the ratio.
//!
//! Run: `cargo bench -p sealcell --bench seal_store`.

// Bench code: a failed unwrap is a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::Instant;

use common::boot;

const BOOTS: usize = 15;
const IMPORTS: usize = 200;

fn pki(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/pki")
            .join(name),
    )
    .unwrap()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn module_with_16_credentials(sealed: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, _) = boot(dir.path());
    if sealed {
        m.cmd(b"AT+USECCFG=0,1,\"bench password\"\r", b"OK\r\n");
    }
    // Four of each: root CAs, client certificates, server certificates, client keys.
    let kinds = [
        (0, "root.der"),
        (1, "client.der"),
        (3, "server.der"),
        (2, "client-pkcs1.pem"),
    ];
    for i in 0..16 {
        let (kind, file) = kinds[i % 4];
        m.import(kind, &format!("item{i:02}"), &pki(file));
    }
    let list = m.cmd(b"AT+USECMNG=3\r", b"OK\r\n");
    assert_eq!(
        list.split(|&b| b == b'\n')
            .filter(|l| l.starts_with(b"\""))
            .count(),
        16
    );
    m.stop();
    dir
}

fn main() {
    println!(
        "sealcell issue 3 benchmark ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // The KDF alone, with the parameters a seal writes.
    let duk = secrecy::SecretBox::new(Box::new([7u8; 32]));
    let params = sealcell_store::crypto::KdfParams::PRODUCTION;
    let kdf: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            sealcell_store::crypto::master_key(
                b"bench password",
                &[1; 16],
                &duk,
                "490154203237518",
                params,
            )
            .unwrap();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();

    let sealed = module_with_16_credentials(true);
    let unsealed = module_with_16_credentials(false);
    let mut sealed_boots = Vec::new();
    let mut unsealed_boots = Vec::new();
    for _ in 0..BOOTS {
        for (dir, out) in [
            (&sealed, &mut sealed_boots),
            (&unsealed, &mut unsealed_boots),
        ] {
            let (m, took) = boot(dir.path());
            out.push(took.as_secs_f64() * 1e3);
            m.stop();
        }
    }
    println!();
    println!("1. boot with 16 credentials, process start to first OK (median of {BOOTS})");
    println!(
        "   sealed (Argon2id m={} KiB t={} p={})   {:>7.1} ms   (goal <= 150 ms)",
        params.m_kib,
        params.t,
        params.p,
        median(sealed_boots)
    );
    println!(
        "   baseline: unsealed                      {:>7.1} ms",
        median(unsealed_boots)
    );
    println!(
        "   Argon2id derivation alone (in-process)  {:>7.1} ms",
        median(kdf)
    );

    let big = pki("big.pem");
    let mut rates = Vec::new();
    for dir in [&sealed, &unsealed] {
        let (mut m, _) = boot(dir.path());
        for _ in 0..20 {
            m.import(0, "item00", &big);
        }
        let t = Instant::now();
        for _ in 0..IMPORTS {
            m.import(0, "item00", &big);
        }
        rates.push(t.elapsed().as_secs_f64() * 1e3 / IMPORTS as f64);
        m.stop();
    }
    println!();
    println!(
        "2. import of an {}-byte PEM certificate over TCP, replacing one item ({IMPORTS} imports)",
        big.len()
    );
    println!("   sealed                {:>7.3} ms per import", rates[0]);
    println!("   baseline: unsealed    {:>7.3} ms per import", rates[1]);
    println!("   ratio sealed/unsealed {:>7.2}", rates[0] / rates[1]);
}
