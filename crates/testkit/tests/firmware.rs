//! at-contract §6, `+UFWINSTALL` and `+UFWSINSTALL` on the engine: every check before `OK`,
//! the exact error for each failure, and a successful install (version from the package's ZIP
//! `VERSION` entry, recorded in fw/state.toml, package removed, reboot).

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;

use base64::Engine;
use md5::Digest;
use sealcell_fw::hash::sha256_reader;
use sealcell_fw::keygen::{KeyAlgorithm, generate};
use sealcell_fw::sign::SigningKey;
use sealcell_modem::{Channel, Module};
use sealcell_testkit::{at, boot};

fn package(version: &str) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buf);
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file("VERSION", opts).unwrap();
    writeln!(zip, "{version}").unwrap();
    zip.start_file(
        "image.bin",
        opts.compression_method(zip::CompressionMethod::Stored),
    )
    .unwrap();
    zip.write_all(&vec![0x5a; 200_000]).unwrap();
    zip.finish().unwrap();
    buf.into_inner()
}

fn upload(m: &mut Module, c: &mut Channel, pkg: &[u8]) {
    assert_eq!(
        at(
            m,
            c,
            format!("AT+UDWNFILE=\"updatePackage.bin\",{},\"FOAT\"\r", pkg.len()).as_bytes()
        ),
        "\r\n>"
    );
    assert_eq!(at(m, c, pkg), "\r\nOK\r\n");
}

fn import_vc(m: &mut Module, c: &mut Channel, name: &str, pem: &[u8]) {
    assert_eq!(
        at(
            m,
            c,
            format!("AT+USECMNG=0,4,\"{name}\",{}\r", pem.len()).as_bytes()
        ),
        "\r\n>"
    );
    assert!(at(m, c, pem).ends_with("\r\nOK\r\n"));
}

const INSTALLED: &str = "\r\nOK\r\n\r\n+UUFWINSTALL: 0\r\n\r\n+UUFWINSTALL: 20\r\n\r\n+UUFWINSTALL: 40\r\n\r\n+UUFWINSTALL: 60\r\n\r\n+UUFWINSTALL: 80\r\n\r\n+UUFWINSTALL: 100\r\n\r\n+UUFWINSTALL: 128\r\n";

#[test]
fn unsealed_md5_install() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut c) = boot(dir.path());
    assert_eq!(
        at(&mut m, &mut c, b"AT+UFWINSTALL\r"),
        "\r\n+CME ERROR: 1612\r\n",
        "no package yet"
    );
    let pkg = package("18.01");
    upload(&mut m, &mut c, &pkg);
    assert_eq!(
        at(&mut m, &mut c, b"AT+UFWSINSTALL=\"AAAA\",\"x\"\r"),
        "\r\n+CME ERROR: 3\r\n",
        "enabled only by the seal"
    );
    assert_eq!(
        at(
            &mut m,
            &mut c,
            b"AT+UFWINSTALL=\"00000000000000000000000000000000\"\r"
        ),
        "\r\n+CME ERROR: 5001\r\n"
    );
    assert_eq!(
        at(&mut m, &mut c, b"AT+UFWINSTALL=\"xyz\"\r"),
        "\r\n+CME ERROR: 4\r\n"
    );
    let md5 = hex::encode(md5::Md5::digest(&pkg));
    assert_eq!(
        at(
            &mut m,
            &mut c,
            format!("AT+UFWINSTALL=\"{md5}\"\r").as_bytes()
        ),
        INSTALLED
    );
    // After the reboot: echo on, CMEE 0, the new version, no package, the install recorded.
    assert_eq!(
        at(&mut m, &mut c, b"ATI9\r"),
        "ATI9\r\r\n18.01,A01.00\r\n\r\nOK\r\n"
    );
    assert!(at(&mut m, &mut c, b"AT+CGMR\r").contains("\r\n18.01\r\n"));
    assert_eq!(
        at(&mut m, &mut c, b"AT+ULSTFILE=0,\"FOAT\"\r"),
        "AT+ULSTFILE=0,\"FOAT\"\r\r\n+ULSTFILE: \r\n\r\nOK\r\n"
    );
    let state = std::fs::read_to_string(dir.path().join("fw/state.toml")).unwrap();
    let sha = hex::encode(sha256_reader(&pkg[..], |_| {}).unwrap().0);
    assert!(
        state.contains("version = \"18.01\"")
            && state.contains(&sha)
            && state.contains("method = \"UFWINSTALL\""),
        "{state}"
    );
    // A package that is not a ZIP with VERSION leaves the version as it is.
    at(&mut m, &mut c, b"ATE0;+CMEE=1\r");
    upload(&mut m, &mut c, b"not a zip at all");
    assert_eq!(at(&mut m, &mut c, b"AT+UFWINSTALL\r"), INSTALLED);
    assert!(at(&mut m, &mut c, b"AT+CGMR\r").contains("\r\n18.01\r\n"));
}

fn sign_b64(key: &SigningKey, pkg: &[u8]) -> String {
    let digest = sha256_reader(pkg, |_| {}).unwrap().0;
    base64::engine::general_purpose::STANDARD.encode(key.sign_digest(&digest).unwrap())
}

#[test]
fn sealed_signed_install_and_every_refusal() {
    // The certificates first: valid from the host's "now", which the module's virtual clock
    // (started at boot, moved only by the test) must not be before.
    let rsa = generate(KeyAlgorithm::Rsa(2048), "Customer FW", 30).unwrap();
    let ec = generate(KeyAlgorithm::P256, "Customer EC FW", 30).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut c) = boot(dir.path());
    import_vc(
        &mut m,
        &mut c,
        "CustomerFWVerificationCert",
        rsa.certificate_pem.as_bytes(),
    );
    import_vc(&mut m, &mut c, "EcCert", ec.certificate_pem.as_bytes());
    // The test PKI's client certificate: key usage digitalSignature, keyEncipherment: fine for
    // the store; the root CA (keyCertSign only) cannot sign firmware.
    let root = sealcell_testkit::transcript::pki_fixture("root.pem").unwrap();
    import_vc(&mut m, &mut c, "NotASigner", &root);
    assert_eq!(
        at(&mut m, &mut c, b"AT+USECCFG=0,1,\"my_pwd\"\r"),
        "\r\nOK\r\n"
    );
    // Imported before the seal, so no longer usable: import them again, sealed.
    import_vc(
        &mut m,
        &mut c,
        "CustomerFWVerificationCert",
        rsa.certificate_pem.as_bytes(),
    );
    import_vc(&mut m, &mut c, "EcCert", ec.certificate_pem.as_bytes());
    import_vc(&mut m, &mut c, "NotASigner", &root);

    let pkg = package("19.00");
    let rsa_key = SigningKey::parse(rsa.private_key_pem.as_bytes(), None).unwrap();
    let good = sign_b64(&rsa_key, &pkg);
    let cmd = |sig: &str, name: &str| format!("AT+UFWSINSTALL=\"{sig}\",\"{name}\"\r").into_bytes();

    assert_eq!(
        at(&mut m, &mut c, &cmd(&good, "CustomerFWVerificationCert")),
        "\r\n+CME ERROR: 1612\r\n",
        "no package"
    );
    upload(&mut m, &mut c, &pkg);
    assert_eq!(
        at(&mut m, &mut c, b"AT+UFWINSTALL\r"),
        "\r\n+CME ERROR: 3\r\n",
        "MD5 path shut"
    );
    assert_eq!(
        at(
            &mut m,
            &mut c,
            b"AT+UFWINSTALL=\"00000000000000000000000000000000\"\r"
        ),
        "\r\n+CME ERROR: 3\r\n"
    );
    assert_eq!(
        at(&mut m, &mut c, &cmd(&good, "NoSuchCert")),
        "\r\n+CME ERROR: 4\r\n",
        "not a VC item"
    );
    assert_eq!(
        at(
            &mut m,
            &mut c,
            &cmd("not*base64", "CustomerFWVerificationCert")
        ),
        "\r\n+CME ERROR: 4\r\n"
    );
    assert_eq!(
        at(
            &mut m,
            &mut c,
            &cmd(&good[4..], "CustomerFWVerificationCert")
        ),
        "\r\n+CME ERROR: 4\r\n",
        "wrong length"
    );
    assert_eq!(
        at(&mut m, &mut c, &cmd(&good, "NotASigner")),
        "\r\n+CME ERROR: 1675\r\n",
        "no digitalSignature"
    );
    assert_eq!(
        at(&mut m, &mut c, &cmd(&good, "EcCert")),
        "\r\n+CME ERROR: 4\r\n",
        "an RSA signature for an EC key"
    );
    let mut bad = base64::engine::general_purpose::STANDARD
        .decode(&good)
        .unwrap();
    bad[10] ^= 1;
    let bad = base64::engine::general_purpose::STANDARD.encode(bad);
    assert_eq!(
        at(&mut m, &mut c, &cmd(&bad, "CustomerFWVerificationCert")),
        "\r\n+CME ERROR: 1675\r\n",
        "wrong signature"
    );
    // An expired certificate (the module clock moved past its 30 days).
    assert_eq!(
        at(&mut m, &mut c, b"AT+CCLK=\"35/01/01,00:00:00+00\"\r"),
        "\r\nOK\r\n"
    );
    assert_eq!(
        at(&mut m, &mut c, &cmd(&good, "CustomerFWVerificationCert")),
        "\r\n+CME ERROR: 1675\r\n",
        "expired"
    );
    let now = sealcell_modem::clock::format_cclk(m.now().unix());
    at(&mut m, &mut c, format!("AT+CCLK=\"{now}\"\r").as_bytes());
    // Nothing was installed by any of that: same version, package kept.
    assert!(at(&mut m, &mut c, b"AT+CGMR\r").contains("\r\n17.00\r\n"));
    assert!(at(&mut m, &mut c, b"AT+ULSTFILE=0,\"FOAT\"\r").contains("\"updatePackage.bin\""));

    // The good one, in base64 and in hex.
    assert_eq!(
        at(&mut m, &mut c, &cmd(&good, "CustomerFWVerificationCert")),
        INSTALLED
    );
    assert!(at(&mut m, &mut c, b"AT+CGMR\r").contains("\r\n19.00\r\n"));
    assert!(
        at(&mut m, &mut c, b"AT+USECCFG?\r").contains("+USECCFG: 0,1"),
        "the seal survives the install"
    );
    assert!(
        at(&mut m, &mut c, b"AT+USECMNG=3\r").contains("\"VC\",\"EcCert\""),
        "and the credentials"
    );
    at(&mut m, &mut c, b"ATE0;+CMEE=1\r");
    let pkg2 = package("19.01");
    upload(&mut m, &mut c, &pkg2);
    let ec_key = SigningKey::parse(ec.private_key_pem.as_bytes(), None).unwrap();
    let digest = sha256_reader(&pkg2[..], |_| {}).unwrap().0;
    let hex_sig = hex::encode(ec_key.sign_digest(&digest).unwrap());
    assert_eq!(at(&mut m, &mut c, &cmd(&hex_sig, "EcCert")), INSTALLED);
    assert!(at(&mut m, &mut c, b"AT+CGMR\r").contains("\r\n19.01\r\n"));
    let state = std::fs::read_to_string(dir.path().join("fw/state.toml")).unwrap();
    assert!(
        state.contains("signer = \"CustomerFWVerificationCert\"")
            && state.contains("signer = \"EcCert\""),
        "{state}"
    );
    assert_eq!(state.matches("method = \"UFWSINSTALL\"").count(), 2);
}

fn wait(m: &mut Module, c: &mut Channel, t: sealcell_modem::Now) -> String {
    let mut out = Vec::new();
    c.poll(m, t, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn ufwupd_xmodem_transfer_then_install() {
    use sealcell_at::xmodem::{ACK, EOT, NAK, blocks};
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut c) = boot(dir.path());
    let pkg = package("20.02");
    let md5 = hex::encode(md5::Md5::digest(&pkg));
    assert_eq!(
        at(&mut m, &mut c, b"AT+UFWUPD=?\r"),
        "\r\n+UFWUPD: (3)\r\n\r\nOK\r\n"
    );
    assert_eq!(
        at(&mut m, &mut c, b"AT+UFWUPD=4\r"),
        "\r\n+CME ERROR: 4\r\n"
    );
    assert_eq!(
        at(&mut m, &mut c, b"AT+UFWUPD=3,1234\r"),
        "\r\n+CME ERROR: 4\r\n"
    );
    assert_eq!(
        at(
            &mut m,
            &mut c,
            format!("AT+UFWUPD=3,115200,\"{md5}\"\r").as_bytes()
        ),
        "\r\n+UFWUPD: ONGOING\r\nC"
    );
    let b = blocks(&pkg);
    let mut acks = Vec::new();
    for (i, block) in b.iter().enumerate() {
        if i == 3 {
            let mut bad = block.clone();
            bad[500] ^= 0x55;
            acks.extend(at(&mut m, &mut c, &bad).into_bytes());
        }
        acks.extend(at(&mut m, &mut c, block).into_bytes());
    }
    let mut want = vec![ACK; b.len() + 1];
    want[3] = NAK;
    assert_eq!(acks, want);
    let end = at(&mut m, &mut c, &[EOT]);
    assert_eq!(end.as_bytes()[0], ACK);
    assert_eq!(&end[1..], INSTALLED);
    assert!(at(&mut m, &mut c, b"AT+CGMR\r").contains("\r\n20.02\r\n"));
    let state = std::fs::read_to_string(dir.path().join("fw/state.toml")).unwrap();
    assert!(state.contains("method = \"UFWUPD\""), "{state}");
}

#[test]
fn ufwupd_md5_mismatch_keeps_the_image_and_installs_nothing() {
    use sealcell_at::xmodem::{EOT, blocks};
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut c) = boot(dir.path());
    let pkg = package("21.00");
    at(
        &mut m,
        &mut c,
        b"AT+UFWUPD=3,115200,\"00000000000000000000000000000000\"\r",
    );
    for block in blocks(&pkg) {
        at(&mut m, &mut c, &block);
    }
    assert_eq!(at(&mut m, &mut c, &[EOT]), "\u{6}\r\n+CME ERROR: 5001\r\n");
    assert!(at(&mut m, &mut c, b"AT+CGMR\r").contains("\r\n17.00\r\n"));
    assert!(
        at(
            &mut m,
            &mut c,
            b"AT+ULSTFILE=2,\"updatePackage.bin\",\"FOAT\"\r"
        )
        .contains(&format!("+ULSTFILE: {}", pkg.len()))
    );
}

#[test]
fn ufwupd_gives_up_after_ten_starts_and_is_refused_once_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut c) = boot(dir.path());
    let t0 = m.now();
    assert_eq!(
        at(&mut m, &mut c, b"AT+UFWUPD=3\r"),
        "\r\n+UFWUPD: ONGOING\r\nC"
    );
    let mut seen = String::new();
    for s in 1..=12 {
        seen.push_str(&wait(
            &mut m,
            &mut c,
            t0.after(std::time::Duration::from_secs(s)),
        ));
    }
    assert_eq!(
        seen, "CCCCCCCCC\r\n+CME ERROR: 2000\r\n",
        "ten Cs in all, then the timeout"
    );
    assert_eq!(at(&mut m, &mut c, b"AT\r"), "\r\nOK\r\n");
    assert_eq!(at(&mut m, &mut c, b"AT+USECCFG=0,1,\"pw\"\r"), "\r\nOK\r\n");
    assert_eq!(
        at(&mut m, &mut c, b"AT+UFWUPD=3\r"),
        "\r\n+CME ERROR: 3\r\n"
    );
}
