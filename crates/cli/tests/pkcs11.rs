//! Signing keys in a PKCS#11 token, for real: a throw-away SoftHSM2 token per test
//! (`sealcell_testkit::softhsm`), the `sealcell` binary as a user runs it, openssl as the
//! reference. A key imported into the token signs byte-identically to `openssl dgst -sha256
//! -sign` with the key file; keys made inside the token get a certificate that openssl and
//! `sealcell fw verify` accept; and a token signature installs on a sealed emulated module.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{BIN, Modem};
use sealcell_testkit::softhsm::SoftHsm;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn sh(dir: &Path, script: &str) -> Output {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}: {}", text(&out.stderr));
    out
}

/// `sealcell ARGS` in `dir` with the token's environment plus `env`; no PIN or key password
/// inherited from the caller, and no controlling terminal (`setsid`), so a prompt can never
/// wait for a person.
fn sealcell(hsm: &SoftHsm, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("setsid");
    cmd.arg("-w")
        .arg(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("SEALCELL_PKCS11_PIN")
        .env_remove("SEALCELL_KEY_PASSWORD")
        .env_remove("SEALCELL_PKCS11_MODULE");
    for (k, v) in hsm.env() {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        !all.contains(hsm.pin()),
        "the PIN is in the output of {args:?}: {all}"
    );
    out
}

fn ok(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// A deterministic package of `len` bytes.
fn package(dir: &Path, name: &str, len: usize) -> PathBuf {
    let data: Vec<u8> = (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// An RSA-2048 key file imported into the token as `signer`.
fn rsa_in_token(hsm: &SoftHsm) -> PathBuf {
    let dir = hsm.dir();
    sh(dir, "openssl genrsa -out signer.pem 2048 2>/dev/null");
    hsm.import_key(&dir.join("signer.pem"), "signer", "01");
    dir.join("signer.pem")
}

fn pin_file(hsm: &SoftHsm) -> PathBuf {
    let p = hsm.dir().join("pin.txt");
    std::fs::write(&p, format!("{}\n", hsm.pin())).unwrap();
    p
}

#[test]
fn a_key_imported_into_the_token_signs_byte_identically_to_openssl() {
    let hsm = SoftHsm::start();
    let dir = hsm.dir();
    rsa_in_token(&hsm);
    pin_file(&hsm);
    let uri = format!(
        "pkcs11:token={};object=signer;id=%01?pin-source=file:pin.txt",
        hsm.token()
    );
    for (name, len) in [
        ("empty.bin", 0),
        ("one.bin", 1),
        ("small.bin", 4096),
        ("chunk-plus-one.bin", (1 << 20) + 1),
        ("large.bin", 3 * (1 << 20) + 5),
    ] {
        package(dir, name, len);
        sh(
            dir,
            &format!("openssl dgst -sha256 -sign signer.pem -out {name}.openssl {name}"),
        );
        let out = sealcell(
            &hsm,
            dir,
            &[
                "fw",
                "sign",
                "--key",
                &uri,
                "--format",
                "bin",
                "-o",
                &format!("{name}.token"),
                name,
            ],
            &[],
        );
        ok(&out);
        assert_eq!(
            std::fs::read(dir.join(format!("{name}.token"))).unwrap(),
            std::fs::read(dir.join(format!("{name}.openssl"))).unwrap(),
            "{name} ({len} bytes)"
        );
    }
    // The default output: one line of base64, as openssl's signature is in base64; hex too.
    let b64 = ok(&sealcell(
        &hsm,
        dir,
        &["fw", "sign", "--key", &uri, "small.bin"],
        &[],
    ));
    let want = text(&sh(dir, "openssl base64 -A -in small.bin.openssl").stdout);
    assert_eq!(b64, format!("{want}\n"));
    let hex = ok(&sealcell(
        &hsm,
        dir,
        &["fw", "sign", "--key", &uri, "--format", "hex", "small.bin"],
        &[],
    ));
    let want: String = std::fs::read(dir.join("small.bin.openssl"))
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hex, format!("{want}\n"));
}

#[test]
fn the_pin_comes_from_a_file_or_the_environment_and_never_from_the_command_line() {
    let hsm = SoftHsm::start();
    let dir = hsm.dir();
    rsa_in_token(&hsm);
    package(dir, "fw.bin", 10_000);
    sh(
        dir,
        "openssl dgst -sha256 -sign signer.pem -out want.sig fw.bin",
    );
    let want = std::fs::read(dir.join("want.sig")).unwrap();
    let token = hsm.token();
    let pin = pin_file(&hsm);
    let sign = |uri: &str, env: &[(&str, &str)]| {
        sealcell(
            &hsm,
            dir,
            &[
                "fw", "sign", "--key", uri, "--format", "bin", "-o", "got.sig", "fw.bin",
            ],
            env,
        )
    };
    // pin-source=file: relative, absolute and as a file URI; the module from module-path=.
    for source in [
        "file:pin.txt".to_string(),
        format!("file:{}", pin.display()),
        format!("file://{}", pin.display()),
    ] {
        let _ = std::fs::remove_file(dir.join("got.sig"));
        ok(&sign(
            &format!("pkcs11:token={token};object=signer?pin-source={source}"),
            &[],
        ));
        assert_eq!(
            std::fs::read(dir.join("got.sig")).unwrap(),
            want,
            "{source}"
        );
    }
    let module = format!("{}", hsm.module().display());
    let _ = std::fs::remove_file(dir.join("got.sig"));
    let out = Command::new(BIN)
        .args(["fw", "sign", "--key"])
        .arg(format!(
            "pkcs11:token={token};object=signer?pin-source=file:pin.txt&module-path={module}"
        ))
        .args(["--format", "bin", "-o", "got.sig", "fw.bin"])
        .current_dir(dir)
        .env("SOFTHSM2_CONF", hsm.conf())
        .env_remove("SEALCELL_PKCS11_MODULE")
        .env_remove("SEALCELL_PKCS11_PIN")
        .output()
        .unwrap();
    ok(&out);
    assert_eq!(std::fs::read(dir.join("got.sig")).unwrap(), want);
    // $SEALCELL_PKCS11_PIN.
    let _ = std::fs::remove_file(dir.join("got.sig"));
    ok(&sign(
        &format!("pkcs11:token={token};object=signer"),
        &[("SEALCELL_PKCS11_PIN", hsm.pin())],
    ));
    assert_eq!(std::fs::read(dir.join("got.sig")).unwrap(), want);

    // pin-value= is refused, and the value is not repeated.
    let out = sign(
        &format!("pkcs11:token={token};object=signer?pin-value=00001111"),
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("pin-value="), "{err}");
    assert!(
        err.contains("hint: ") && err.contains("pin-source=file:"),
        "{err}"
    );
    assert!(!err.contains("00001111"), "{err}");
    // There is no --pin option.
    let out = sealcell(
        &hsm,
        dir,
        &[
            "fw",
            "sign",
            "--pin",
            "1",
            "--key",
            "pkcs11:token=t;object=o",
            "fw.bin",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    // No PIN anywhere and no terminal to ask on: a clear error, nothing hangs.
    let out = sign(&format!("pkcs11:token={token};object=signer"), &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("no terminal to ask for it"), "{err}");
    assert!(err.contains("SEALCELL_PKCS11_PIN"), "{err}");
    // A PIN file that is not there.
    let out = sign(
        &format!("pkcs11:token={token};object=signer?pin-source=file:missing.txt"),
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read the PIN from missing.txt"));
    // --password-file belongs to key files.
    let out = sealcell(
        &hsm,
        dir,
        &[
            "fw",
            "sign",
            "--key",
            &format!("pkcs11:token={token};object=signer?pin-source=file:pin.txt"),
            "--password-file",
            "pin.txt",
            "fw.bin",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--password-file is for key files"));
}

#[test]
fn a_wrong_pin_is_a_clear_error_with_exit_2() {
    let hsm = SoftHsm::start();
    let dir = hsm.dir();
    rsa_in_token(&hsm);
    package(dir, "fw.bin", 100);
    std::fs::write(dir.join("wrong.txt"), "99999999\n").unwrap();
    for (uri, env) in [
        (
            format!(
                "pkcs11:token={};object=signer?pin-source=file:wrong.txt",
                hsm.token()
            ),
            vec![],
        ),
        (
            format!("pkcs11:token={};object=signer", hsm.token()),
            vec![("SEALCELL_PKCS11_PIN", "99999999")],
        ),
    ] {
        let out = sealcell(&hsm, dir, &["fw", "sign", "--key", &uri, "fw.bin"], &env);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(
            err.starts_with("error: the token refused the PIN (CKR_PIN_INCORRECT)\nhint: "),
            "{err}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn a_missing_token_or_key_says_what_is_there() {
    let hsm = SoftHsm::start();
    hsm.init_token("Second Line");
    let dir = hsm.dir();
    rsa_in_token(&hsm);
    pin_file(&hsm);
    package(dir, "fw.bin", 100);
    let out = sealcell(
        &hsm,
        dir,
        &[
            "fw",
            "sign",
            "--key",
            "pkcs11:token=Nope;object=signer",
            "fw.bin",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("error: no token \"Nope\""), "{err}");
    assert!(
        err.contains(&format!(
            "tokens present: \"{}\", \"Second Line\"",
            hsm.token()
        )) || err.contains(&format!(
            "tokens present: \"Second Line\", \"{}\"",
            hsm.token()
        )),
        "{err}"
    );
    assert!(err.contains("hint: token= is the token's label"), "{err}");

    let out = sealcell(
        &hsm,
        dir,
        &[
            "fw",
            "sign",
            "--key",
            &format!(
                "pkcs11:token={};object=other%20key?pin-source=file:pin.txt",
                hsm.token()
            ),
            "fw.bin",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "error: no private key pkcs11:token={};object=other%20key in the token; private keys present: \"signer\"",
            hsm.token()
        )),
        "{err}"
    );
    // The right label with the wrong id is not the key either.
    let out = sealcell(
        &hsm,
        dir,
        &[
            "fw",
            "sign",
            "--key",
            &format!(
                "pkcs11:token={};object=signer;id=%02?pin-source=file:pin.txt",
                hsm.token()
            ),
            "fw.bin",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("object=signer;id=%02 in the token"));

    // No library named anywhere: the hint names SoftHSM2's.
    let out = Command::new(BIN)
        .args(["fw", "sign", "--key", "pkcs11:token=t;object=o", "fw.bin"])
        .current_dir(dir)
        .env_remove("SEALCELL_PKCS11_MODULE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("SEALCELL_PKCS11_MODULE is not set"), "{err}");
    assert!(err.contains("/usr/lib/softhsm/libsofthsm2.so"), "{err}");
    // A library that loads and does not start (SoftHSM2 without its configuration).
    let out = sealcell(
        &hsm,
        dir,
        &["fw", "sign", "--key", "pkcs11:token=t;object=o", "fw.bin"],
        &[("SOFTHSM2_CONF", "/nonexistent/softhsm2.conf")],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("does not start: C_Initialize: CKR_"), "{err}");
    assert!(
        err.contains("hint: check the library's configuration"),
        "{err}"
    );
    // A library that is not there.
    let out = sealcell(
        &hsm,
        dir,
        &["fw", "sign", "--key", "pkcs11:token=t;object=o", "fw.bin"],
        &[("SEALCELL_PKCS11_MODULE", "/nonexistent/libp11.so")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot load the PKCS#11 library /nonexistent/libp11.so"));
}

/// `fw keygen --pkcs11` in `dir/out`: returns the key's URI (with the id keygen printed).
fn keygen_in_token(hsm: &SoftHsm, label: &str, alg: &[&str], out: &str) -> String {
    let uri = format!(
        "pkcs11:token={};object={label}?pin-source=file:pin.txt",
        hsm.token()
    );
    let mut args = vec![
        "fw",
        "keygen",
        "--pkcs11",
        &uri,
        "--out",
        out,
        "--subject",
        "Token FW Signer",
    ];
    args.extend_from_slice(alg);
    let stdout = ok(&sealcell(hsm, hsm.dir(), &args, &[]));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with(&format!("pkcs11:token={};object={label};id=%", hsm.token())),
        "{stdout}"
    );
    assert_eq!(lines[1], format!("{out}/cert.pem"));
    assert_eq!(lines[2], format!("{out}/pubkey.pem"));
    assert!(!hsm.dir().join(out).join("priv.key").exists());
    lines[0].to_string()
}

#[test]
fn keys_made_in_the_token_get_certificates_openssl_and_verify_accept() {
    let hsm = SoftHsm::start();
    let dir = hsm.dir();
    pin_file(&hsm);
    package(dir, "fw.bin", 1_500_000);
    for (label, alg, algorithm) in [
        (
            "rsa-signer",
            vec!["--rsa", "2048"],
            "sha256WithRSAEncryption",
        ),
        ("ec-signer", vec!["--ec", "p256"], "ecdsa-with-SHA256"),
    ] {
        let uri = keygen_in_token(&hsm, label, &alg, label);
        let cert = format!("{label}/cert.pem");
        sh(
            dir,
            &format!("openssl verify -check_ss_sig -CAfile {cert} {cert}"),
        );
        let shown = text(&sh(dir, &format!("openssl x509 -in {cert} -noout -text")).stdout);
        assert!(
            shown.contains("X509v3 Key Usage: critical\n                Digital Signature"),
            "{shown}"
        );
        assert!(shown.contains("CA:FALSE"), "{shown}");
        assert!(
            shown.contains(&format!("Signature Algorithm: {algorithm}")),
            "{shown}"
        );
        assert!(
            shown.contains("Subject: CN=Token FW Signer")
                || shown.contains("Subject: CN = Token FW Signer"),
            "{shown}"
        );
        // 365 days, like the file-key keygen's certificate.
        let dates = text(
            &sh(
                dir,
                &format!("openssl x509 -in {cert} -noout -checkend {} && ! openssl x509 -in {cert} -noout -checkend {}", 364 * 86_400, 366 * 86_400),
            )
            .stdout,
        );
        assert!(dates.contains("will expire"), "{dates}");
        // The public key file is the certificate's.
        let from_cert = sh(dir, &format!("openssl x509 -in {cert} -noout -pubkey")).stdout;
        assert_eq!(
            text(&from_cert),
            std::fs::read_to_string(dir.join(label).join("pubkey.pem")).unwrap()
        );

        // A signature made with the token key: `fw verify` (cert and pubkey) and openssl.
        let sign_uri = format!("{uri}?pin-source=file:pin.txt");
        ok(&sealcell(
            &hsm,
            dir,
            &[
                "fw",
                "sign",
                "--key",
                &sign_uri,
                "-o",
                &format!("{label}.b64"),
                "fw.bin",
            ],
            &[],
        ));
        for signer in [
            ["--cert", &cert],
            ["--pubkey", &format!("{label}/pubkey.pem")],
        ] {
            let out = sealcell(
                &hsm,
                dir,
                &[
                    "fw",
                    "verify",
                    signer[0],
                    signer[1],
                    "--signature",
                    &format!("{label}.b64"),
                    "fw.bin",
                ],
                &[],
            );
            let said = ok(&out);
            assert!(said.starts_with("valid: 1500000 bytes"), "{said}");
            if signer[0] == "--cert" {
                assert!(said.contains("signed by Token FW Signer"), "{said}");
            }
        }
        sh(
            dir,
            &format!(
                "openssl base64 -d -A -in {label}.b64 -out {label}.sig && \
                 openssl dgst -sha256 -verify {label}/pubkey.pem -signature {label}.sig fw.bin"
            ),
        );
        // The key is in the token: a second keygen with its label is refused, nothing written.
        let again = sealcell(
            &hsm,
            dir,
            &[
                "fw",
                "keygen",
                "--pkcs11",
                &format!(
                    "pkcs11:token={};object={label}?pin-source=file:pin.txt",
                    hsm.token()
                ),
                "--out",
                "again",
            ],
            &[],
        );
        assert_eq!(again.status.code(), Some(2));
        assert!(text(&again.stderr).contains("keygen never replaces a key"));
        assert!(!dir.join("again/cert.pem").exists());
    }
    // The ECDSA signature is DER, as `fw sign` writes it with a key file.
    let sig = std::fs::read(dir.join("ec-signer.sig")).unwrap();
    assert_eq!(sig[0], 0x30);
    assert_eq!(usize::from(sig[1]) + 2, sig.len());
}

#[test]
fn a_token_signature_installs_on_a_sealed_module() {
    let hsm = SoftHsm::start();
    pin_file(&hsm);
    for (label, alg) in [("rsa-fw", &[][..]), ("ec-fw", &["--ec", "p256"][..])] {
        install_signed_by_the_token(&hsm, label, alg);
    }
}

/// The issue's end-to-end check: a key made in the token, its certificate imported as the VC of
/// a sealed module, a package signed by the token installed with `AT+UFWSINSTALL`.
fn install_signed_by_the_token(hsm: &SoftHsm, label: &str, alg: &[&str]) {
    let dir = hsm.dir();
    let out = format!("{label}-vc");
    keygen_in_token(hsm, label, alg, &out);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/fw");
    let pkg = std::fs::read(fixtures.join("package.zip")).unwrap();
    std::fs::write(dir.join("package.zip"), &pkg).unwrap();
    let b64 = ok(&sealcell(
        hsm,
        dir,
        &[
            "fw",
            "sign",
            "--key",
            &format!(
                "pkcs11:token={};object={label}?pin-source=file:pin.txt",
                hsm.token()
            ),
            "package.zip",
        ],
        &[],
    ));
    let b64 = b64.trim();

    let module_dir = tempfile::tempdir().unwrap();
    let m = Modem::start(module_dir.path(), &[]);
    let mut at = m.connect();
    assert!(at.cmd("AT+CGMR").contains("\r\n17.00\r\n"));
    assert!(at.cmd("AT+USECCFG=0,1,\"pw\"").ends_with("\r\nOK\r\n"));
    let vc = std::fs::read(dir.join(&out).join("cert.pem")).unwrap();
    assert!(
        at.cmd(&format!("AT+USECMNG=0,4,\"TokenVC\",{}", vc.len()))
            .ends_with("\r\n>")
    );
    at.send(&vc);
    let imported = text(&at.read_until(b"\r\nOK\r\n"));
    assert!(
        imported.contains("+USECMNG: 0,4,\"TokenVC\","),
        "{imported}"
    );
    assert!(
        at.cmd(&format!(
            "AT+UDWNFILE=\"updatePackage.bin\",{},\"FOAT\"",
            pkg.len()
        ))
        .ends_with("\r\n>")
    );
    at.send(&pkg);
    at.read_until(b"\r\nOK\r\n");
    // OK, then the progress URCs up to 128 (success) arrive without a pause between them.
    at.send(format!("AT+UFWSINSTALL=\"{b64}\",\"TokenVC\"\r").as_bytes());
    let answer = text(&at.read_until(b"+UUFWINSTALL: 128\r\n"));
    assert!(answer.contains("\r\nOK\r\n"), "{answer}");
    assert!(!answer.contains("ERROR"), "{answer}");
    assert!(answer.contains("+UUFWINSTALL: 100\r\n"), "{answer}");
    // After the reboot: the new version, still sealed.
    let version = at.cmd("AT+CGMR");
    assert!(version.contains("\r\n18.00\r\n"), "{version}");
    assert!(at.cmd("AT+USECCFG?").contains("+USECCFG: 0,1"));
}

#[test]
fn digest_is_openssls_sha256() {
    let hsm = SoftHsm::start();
    let dir = hsm.dir();
    for (name, len) in [("empty.bin", 0), ("large.bin", 2 * (1 << 20) + 3)] {
        package(dir, name, len);
        let want = text(&sh(dir, &format!("openssl dgst -sha256 -r {name}")).stdout);
        let want_hex = want.split_whitespace().next().unwrap();
        let hex = ok(&sealcell(&hsm, dir, &["fw", "digest", name], &[]));
        assert_eq!(hex, format!("{want_hex}\n"));
        let hex = ok(&sealcell(
            &hsm,
            dir,
            &["fw", "digest", "--format", "hex", name],
            &[],
        ));
        assert_eq!(hex, format!("{want_hex}\n"));
        let want_b64 = text(
            &sh(
                dir,
                &format!("openssl dgst -sha256 -binary {name} | openssl base64 -A"),
            )
            .stdout,
        );
        let b64 = ok(&sealcell(
            &hsm,
            dir,
            &["fw", "digest", "--format", "base64", name],
            &[],
        ));
        assert_eq!(b64, format!("{want_b64}\n"));
        let json = ok(&sealcell(&hsm, dir, &["fw", "digest", "--json", name], &[]));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["sha256"], want_hex);
        assert_eq!(v["size"], len);
    }
    let out = sealcell(&hsm, dir, &["fw", "digest", "missing.bin"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("missing.bin"));
}
