//! Issue 4's figures, each beside openssl in the same run (release build):
//!
//! 1. `sealcell fw sign` and `sealcell fw verify` on a 512 MiB file against
//!    `openssl dgst -sha256 -sign/-verify` on the same file: time ratio (goal <= 1.05) and
//!    sealcell's peak RSS (goal <= 32 MiB).
//! 2. `AT+UFWSINSTALL` on a 256 MiB package (verification, record, reboot), in-process, beside
//!    `openssl dgst -sha256 -verify` of the same file.
//!
//! Run: `cargo bench -p sealcell --bench fw`.

// Bench code: a failed unwrap is a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{big_file, median};

const BIN: &str = env!("CARGO_BIN_EXE_sealcell");
const RUNS: usize = 3;

fn run(dir: &Path, program: &str, args: &[&str]) -> Duration {
    let t = Instant::now();
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed()
}

fn children_peak_rss_mib() -> f64 {
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    usage.max_rss() as f64 / 1024.0
}

fn main() {
    println!(
        "sealcell issue 4 benchmark ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    big_file(&dir.join("big.bin"), 512);
    run(
        dir,
        "openssl",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "priv.key",
        ],
    );
    run(
        dir,
        "openssl",
        &["pkey", "-in", "priv.key", "-pubout", "-out", "pub.pem"],
    );
    run(
        dir,
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-sign",
            "priv.key",
            "-out",
            "openssl.sig",
            "big.bin",
        ],
    );

    // sealcell first, so the children's peak RSS so far is sealcell's alone.
    let mut sc_sign = Vec::new();
    let mut sc_verify = Vec::new();
    for _ in 0..RUNS {
        sc_sign.push(run(
            dir,
            BIN,
            &[
                "fw",
                "sign",
                "--key",
                "priv.key",
                "--format",
                "bin",
                "-o",
                "sealcell.sig",
                "big.bin",
            ],
        ));
        sc_verify.push(run(
            dir,
            BIN,
            &[
                "fw",
                "verify",
                "--pubkey",
                "pub.pem",
                "--signature",
                "openssl.sig",
                "big.bin",
            ],
        ));
    }
    let rss = children_peak_rss_mib();
    assert_eq!(
        std::fs::read(dir.join("sealcell.sig")).unwrap(),
        std::fs::read(dir.join("openssl.sig")).unwrap()
    );
    let mut os_sign = Vec::new();
    let mut os_verify = Vec::new();
    for _ in 0..RUNS {
        os_sign.push(run(
            dir,
            "openssl",
            &[
                "dgst", "-sha256", "-sign", "priv.key", "-out", "o.sig", "big.bin",
            ],
        ));
        os_verify.push(run(
            dir,
            "openssl",
            &[
                "dgst",
                "-sha256",
                "-verify",
                "pub.pem",
                "-signature",
                "openssl.sig",
                "big.bin",
            ],
        ));
    }
    let (ss, sv, os, ov) = (
        median(sc_sign),
        median(sc_verify),
        median(os_sign),
        median(os_verify),
    );
    println!();
    println!("1. 512 MiB file, RSA-2048, median of {RUNS} (signatures byte-identical)");
    println!(
        "   sign    sealcell {:>7.3} s   openssl {:>7.3} s   ratio {:.3}  (goal <= 1.05)",
        ss.as_secs_f64(),
        os.as_secs_f64(),
        ss.as_secs_f64() / os.as_secs_f64()
    );
    println!(
        "   verify  sealcell {:>7.3} s   openssl {:>7.3} s   ratio {:.3}  (goal <= 1.05)",
        sv.as_secs_f64(),
        ov.as_secs_f64(),
        sv.as_secs_f64() / ov.as_secs_f64()
    );
    println!("   sealcell peak RSS {rss:.1} MiB (goal <= 32 MiB)");

    // 2. AT+UFWSINSTALL on 256 MiB, in-process on a real data directory.
    let module_dir = dir.join("module");
    let mut module = sealcell_modem::Module::open(
        sealcell_testkit::test_config(&module_dir),
        sealcell_testkit::virtual_now(),
    )
    .unwrap();
    let mut ch = sealcell_modem::Channel::new(&mut module);
    let mut out = Vec::new();
    let generated =
        sealcell_fw::keygen::generate(sealcell_fw::keygen::KeyAlgorithm::Rsa(2048), "Bench", 30)
            .unwrap();
    let key =
        sealcell_fw::sign::SigningKey::parse(generated.private_key_pem.as_bytes(), None).unwrap();
    std::fs::write(dir.join("vc.pub"), &generated.public_key_pem).unwrap();
    std::fs::write(dir.join("vc.key"), generated.private_key_pem.as_bytes()).unwrap();
    let pem = generated.certificate_pem.as_bytes();
    out.extend_from_slice(
        sealcell_testkit::at(&mut module, &mut ch, b"ATE0;+CMEE=1;+USECCFG=0,1,\"pw\"\r")
            .as_bytes(),
    );
    out.extend_from_slice(
        sealcell_testkit::at(
            &mut module,
            &mut ch,
            format!("AT+USECMNG=0,4,\"VC\",{}\r", pem.len()).as_bytes(),
        )
        .as_bytes(),
    );
    out.extend_from_slice(sealcell_testkit::at(&mut module, &mut ch, pem).as_bytes());
    let package = module_dir.join("fs/FOAT/updatePackage.bin");
    let mut at_times = Vec::new();
    let mut os_times = Vec::new();
    for _ in 0..RUNS {
        big_file(&package, 256);
        let digest =
            sealcell_fw::hash::sha256_reader(std::fs::File::open(&package).unwrap(), |_| {})
                .unwrap()
                .0;
        let sig = key.sign_digest(&digest).unwrap();
        std::fs::write(dir.join("p.sig"), &sig).unwrap();
        let b64 = sealcell_fw::encoding::to_base64(&sig);
        let pkg_arg = package.to_str().unwrap().to_string();
        os_times.push(run(
            dir,
            "openssl",
            &[
                "dgst",
                "-sha256",
                "-verify",
                "vc.pub",
                "-signature",
                "p.sig",
                &pkg_arg,
            ],
        ));
        out.clear();
        let t = Instant::now();
        out.extend_from_slice(
            sealcell_testkit::at(
                &mut module,
                &mut ch,
                format!("AT+UFWSINSTALL=\"{b64}\",\"VC\"\r").as_bytes(),
            )
            .as_bytes(),
        );
        at_times.push(t.elapsed());
        assert!(
            String::from_utf8_lossy(&out).ends_with("+UUFWINSTALL: 128\r\n"),
            "{}",
            String::from_utf8_lossy(&out)
        );
        out.clear();
        out.extend_from_slice(
            sealcell_testkit::at(&mut module, &mut ch, b"ATE0;+CMEE=1\r").as_bytes(),
        );
    }
    let (at, ov) = (median(at_times), median(os_times));
    println!();
    println!("2. AT+UFWSINSTALL, 256 MiB package, median of {RUNS}");
    println!(
        "   command to final result + URCs  {:>7.3} s",
        at.as_secs_f64()
    );
    println!(
        "   baseline openssl dgst -verify   {:>7.3} s   ratio {:.3}",
        ov.as_secs_f64(),
        at.as_secs_f64() / ov.as_secs_f64()
    );
}
