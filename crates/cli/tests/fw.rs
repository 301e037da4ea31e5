//! `sealcell fw sign` and `sealcell fw verify` as a customer uses them next to the application
//! note's §4.3.1 openssl script.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_sealcell");

fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sealcell(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("SEALCELL_KEY_PASSWORD")
        .output()
        .unwrap()
}

fn script(dir: &Path) {
    let pkg: Vec<u8> = (0..2_000_000u32)
        .map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8)
        .collect();
    std::fs::write(dir.join("update.zip"), pkg).unwrap();
    sh(
        dir,
        "openssl req -newkey rsa:2048 -nodes -keyout priv.key -x509 -days 365 -out cert.pem -nodes -subj '/CN=Customer' 2>/dev/null && \
         openssl x509 -pubkey -noout -in cert.pem > pubkey.pem && \
         openssl dgst -sha256 -sign priv.key -out signature.bin update.zip && \
         base64 signature.bin > signature.b64",
    );
}

#[test]
fn sign_is_byte_identical_to_openssl_and_verify_accepts_the_script_output() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    script(dir);
    let out = sealcell(
        dir,
        &[
            "fw",
            "sign",
            "--key",
            "priv.key",
            "--format",
            "bin",
            "-o",
            "ours.bin",
            "update.zip",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(dir.join("ours.bin")).unwrap(),
        std::fs::read(dir.join("signature.bin")).unwrap()
    );
    // Default: one line of base64 on stdout, the script's signature unwrapped.
    let out = sealcell(dir, &["fw", "sign", "--key", "priv.key", "update.zip"]);
    let b64 = String::from_utf8(out.stdout).unwrap();
    let script_b64: String = std::fs::read_to_string(dir.join("signature.b64"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(b64, format!("{script_b64}\n"));
    // Hex.
    let out = sealcell(
        dir,
        &[
            "fw",
            "sign",
            "--key",
            "priv.key",
            "--format",
            "hex",
            "update.zip",
        ],
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim().len(), 512);

    for signer in [["--cert", "cert.pem"], ["--pubkey", "pubkey.pem"]] {
        for sig in ["signature.b64", "signature.bin", "ours.bin"] {
            let out = sealcell(
                dir,
                &[
                    "fw",
                    "verify",
                    signer[0],
                    signer[1],
                    "--signature",
                    sig,
                    "update.zip",
                ],
            );
            assert_eq!(
                out.status.code(),
                Some(0),
                "{signer:?} {sig}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let out = sealcell(
        dir,
        &[
            "fw",
            "verify",
            "--cert",
            "cert.pem",
            "--signature",
            "signature.b64",
            "--json",
            "update.zip",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["signer"], "Customer");
    assert_eq!(v["size"], 2_000_000);
}

#[test]
fn encrypted_keys_take_their_password_from_a_file_or_the_environment_never_argv() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    script(dir);
    sh(
        dir,
        "openssl pkcs8 -topk8 -in priv.key -passout pass:s3cret -out enc.pem && printf 's3cret\\n' > pw.txt",
    );
    let out = sealcell(
        dir,
        &[
            "fw",
            "sign",
            "--key",
            "enc.pem",
            "--password-file",
            "pw.txt",
            "--format",
            "bin",
            "-o",
            "a.bin",
            "update.zip",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(dir.join("a.bin")).unwrap(),
        std::fs::read(dir.join("signature.bin")).unwrap()
    );
    let out = Command::new(BIN)
        .args(["fw", "sign", "--key", "enc.pem", "update.zip"])
        .current_dir(dir)
        .env("SEALCELL_KEY_PASSWORD", "s3cret")
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(dir.join("bad.txt"), "Hunter2-not-it\n").unwrap();
    let out = sealcell(
        dir,
        &[
            "fw",
            "sign",
            "--key",
            "enc.pem",
            "--password-file",
            "bad.txt",
            "update.zip",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: cannot use the key enc.pem") && !err.contains("Hunter2"),
        "{err}"
    );
}

#[test]
fn keys_encrypted_the_way_older_tools_write_them_sign_like_openssl() {
    // PBES1 (pbeWithMD5AndDES-CBC, ubxlib's test key's scheme) and PKCS#12 3DES, as
    // `openssl pkcs8 -topk8 -v1` writes them; OpenSSL 3 needs its legacy provider for PBES1.
    // And the traditional encrypted PEM (`Proc-Type: 4,ENCRYPTED`, `DEK-Info: DES-EDE3-CBC`) of
    // `openssl genrsa -des3`; OpenSSL 3 writes it with `openssl rsa -traditional`.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    script(dir);
    sh(
        dir,
        "v1() { openssl pkcs8 -topk8 -in priv.key -passout pass:0ld-t00l -v1 \"$1\" -out \"$2\" 2>/dev/null || \
                openssl pkcs8 -topk8 -in priv.key -passout pass:0ld-t00l -v1 \"$1\" -out \"$2\" -provider legacy -provider default; } && \
         v1 PBE-MD5-DES md5-des.pem && v1 PBE-SHA1-3DES sha1-3des.pem && printf '0ld-t00l\\n' > pw.txt && \
         { openssl rsa -in priv.key -traditional -des3 -passout pass:0ld-t00l -out des3.pem 2>/dev/null || \
           openssl rsa -in priv.key -des3 -passout pass:0ld-t00l -out des3.pem; } && \
         grep -q '^DEK-Info: DES-EDE3-CBC,' des3.pem",
    );
    for key in ["md5-des.pem", "sha1-3des.pem", "des3.pem"] {
        let out = sealcell(
            dir,
            &[
                "fw",
                "sign",
                "--key",
                key,
                "--password-file",
                "pw.txt",
                "--format",
                "bin",
                "-o",
                "legacy.bin",
                "update.zip",
            ],
        );
        assert!(
            out.status.success(),
            "{key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            std::fs::read(dir.join("legacy.bin")).unwrap(),
            std::fs::read(dir.join("signature.bin")).unwrap(),
            "{key}: byte-identical to openssl dgst -sha256 -sign"
        );
    }
    std::fs::write(dir.join("bad.txt"), "0ld-t00l!\n").unwrap();
    let out = sealcell(
        dir,
        &[
            "fw",
            "sign",
            "--key",
            "md5-des.pem",
            "--password-file",
            "bad.txt",
            "update.zip",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("password is missing or wrong") && !err.contains("0ld-t00l"),
        "{err}"
    );
}

#[test]
fn verify_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    script(dir);
    sh(
        dir,
        "cp update.zip flipped.zip && printf 'X' | dd of=flipped.zip bs=1 seek=1000 conv=notrunc 2>/dev/null",
    );
    let invalid = [
        vec![
            "--cert",
            "cert.pem",
            "--signature",
            "signature.b64",
            "flipped.zip",
        ],
        vec![
            "--pubkey",
            "pubkey.pem",
            "--signature",
            "signature.b64",
            "flipped.zip",
        ],
    ];
    for args in invalid {
        let out = sealcell(dir, &[&["fw", "verify"][..], &args].concat());
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("error: not verified: the signature does not match")
                && err.contains("hint: "),
            "{err}"
        );
    }
    // A certificate without digitalSignature in its key usage: a negative answer.
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pki/root.pem"),
        dir.join("ca.pem"),
    )
    .unwrap();
    let out = sealcell(
        dir,
        &[
            "fw",
            "verify",
            "--cert",
            "ca.pem",
            "--signature",
            "signature.b64",
            "update.zip",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("digitalSignature"));
    // Unusable input: exit 2.
    std::fs::write(dir.join("junk.b64"), "not base64 *** at all").unwrap();
    for args in [
        vec![
            "--cert",
            "cert.pem",
            "--signature",
            "junk.b64",
            "--format",
            "base64",
            "update.zip",
        ],
        vec![
            "--cert",
            "missing.pem",
            "--signature",
            "signature.b64",
            "update.zip",
        ],
        vec![
            "--cert",
            "cert.pem",
            "--signature",
            "signature.b64",
            "missing.zip",
        ],
        vec![
            "--cert",
            "update.zip",
            "--signature",
            "signature.b64",
            "update.zip",
        ],
        vec!["--signature", "signature.b64", "update.zip"],
    ] {
        let out = sealcell(dir, &[&["fw", "verify"][..], &args].concat());
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A truncated signature is a wrong length: invalid.
    sh(dir, "head -c 255 signature.bin > short.bin");
    let out = sealcell(
        dir,
        &[
            "fw",
            "verify",
            "--cert",
            "cert.pem",
            "--signature",
            "short.bin",
            "--format",
            "bin",
            "update.zip",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("255 bytes"));
}

#[test]
fn keygen_then_sign_then_openssl_verifies_and_the_files_are_protected() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("update.zip"), vec![3u8; 50_000]).unwrap();
    for (sub, alg) in [
        ("rsa", vec!["--rsa", "3072"]),
        ("ec", vec!["--ec", "p256"]),
        ("default", vec![]),
    ] {
        let out = sealcell(
            dir,
            &[
                &[
                    "fw",
                    "keygen",
                    "--out",
                    sub,
                    "--subject",
                    "Acme FW",
                    "--days",
                    "30",
                ][..],
                &alg,
            ]
            .concat(),
        );
        assert!(
            out.status.success(),
            "{sub}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mode = std::fs::metadata(dir.join(sub).join("priv.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{sub}");
        let key = format!("{sub}/priv.key");
        let sig = format!("{sub}/sig.bin");
        let out = sealcell(
            dir,
            &[
                "fw",
                "sign",
                "--key",
                &key,
                "--format",
                "bin",
                "-o",
                &sig,
                "update.zip",
            ],
        );
        assert!(out.status.success());
        sh(
            dir,
            &format!("openssl dgst -sha256 -verify {sub}/pubkey.pem -signature {sig} update.zip"),
        );
        let cert = format!("{sub}/cert.pem");
        let out = sealcell(
            dir,
            &[
                "fw",
                "verify",
                "--cert",
                &cert,
                "--signature",
                &sig,
                "update.zip",
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{sub}");
        sh(
            dir,
            &format!("openssl x509 -in {cert} -noout -text | grep -q 'Digital Signature'"),
        );
    }
    sh(
        dir,
        "openssl x509 -in default/cert.pem -noout -text | grep -q 'Public-Key: (2048 bit)'",
    );
    // Never overwrites a key.
    let out = sealcell(dir, &["fw", "keygen", "--out", "rsa"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("never overwrites"));
    let out = sealcell(dir, &["fw", "keygen", "--out", "small", "--rsa", "1024"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Every small input (signature, certificate, public key, key, password) is read up to its cap
/// and no further: `/dev/zero` or a file one byte over is refused at once, naming the file, what
/// it should be and the limit (exit 2).
#[test]
fn inputs_larger_than_their_cap_are_refused_without_reading_them_to_the_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("update.zip"), b"a package").unwrap();
    // 256 bytes of signature as one line of base64: it decodes, so the next input is read.
    std::fs::write(dir.join("sig.b64"), format!("{}\n", "A".repeat(344))).unwrap();
    std::fs::write(dir.join("big.sig"), vec![b'A'; 16 * 1024 + 1]).unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "fw",
                "verify",
                "--cert",
                "cert.pem",
                "--signature",
                "/dev/zero",
                "update.zip",
            ],
            "error: signature file /dev/zero is larger than 16 KiB (16384 bytes)\n",
        ),
        (
            &[
                "fw",
                "verify",
                "--cert",
                "cert.pem",
                "--signature",
                "big.sig",
                "update.zip",
            ],
            "error: signature file big.sig is larger than 16 KiB (16384 bytes)\n",
        ),
        (
            &[
                "fw",
                "verify",
                "--cert",
                "/dev/zero",
                "--signature",
                "sig.b64",
                "update.zip",
            ],
            "error: certificate file /dev/zero is larger than 64 KiB (65536 bytes)\n",
        ),
        (
            &[
                "fw",
                "verify",
                "--pubkey",
                "/dev/zero",
                "--signature",
                "sig.b64",
                "update.zip",
            ],
            "error: public key file /dev/zero is larger than 64 KiB (65536 bytes)\n",
        ),
        (
            &["fw", "sign", "--key", "/dev/zero", "update.zip"],
            "error: key file /dev/zero is larger than 8 KiB (8192 bytes)\n",
        ),
        (
            &[
                "fw",
                "sign",
                "--key",
                "update.zip",
                "--password-file",
                "/dev/zero",
                "update.zip",
            ],
            "error: password file /dev/zero is larger than 8 KiB (8192 bytes)\n",
        ),
    ];
    for (args, expected) in cases {
        let started = std::time::Instant::now();
        let out = sealcell(dir, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), expected, "{args:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}

/// `sealcell fota --signature /dev/zero` fails on the signature before it opens the port.
#[test]
fn a_fota_signature_larger_than_its_cap_is_refused_before_the_port_is_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let out = sealcell(
        tmp.path(),
        &[
            "fota",
            "--port",
            "tcp:127.0.0.1:9",
            "--url",
            "https://fota.example.com/update.zip",
            "--signature",
            "/dev/zero",
            "--cert-name",
            "Signer",
            "--no-ledger",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: signature file /dev/zero is larger than 16 KiB (16384 bytes)\n"
    );
}
