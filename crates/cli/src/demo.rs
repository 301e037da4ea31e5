//! `sealcell demo`: the application note UBX-19022699 end to end on this machine, with no set-up.
//!
//! It starts an emulated module (its own data directory, the real KDF) and a TLS 1.2 firmware
//! server on loopback offering only ECDHE-ECDSA-AES128-GCM-SHA256, makes the PKI, a signing key
//! and a signed package, then drives the module with the same host library `sealcell provision`
//! and `sealcell fota` use, printing every AT exchange (secrets redacted). Every step checks its
//! outcome; the demo exits 0 only when the whole note behaved as it says.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use sealcell_at::cme::CmeError;
use sealcell_fw::keygen::{KeyAlgorithm, generate};
use sealcell_fw::sign::SigningKey;
use sealcell_host::client::{AtClient, ClientError, ClientOptions, Command};
use sealcell_host::fota::{FotaError, FotaRequest, HttpsUrl, fota, version};
use sealcell_host::plan::Plan;
use sealcell_host::port::PortSpec;
use sealcell_host::provision::{ProvisionOptions, SealAction, provision};
use sealcell_host::transcript::{Direction, FileTranscript, FnTranscript, Tee};
use sealcell_https::loopback::{FileServer, LoopbackPki};
use sealcell_modem::{Module, ModuleConfig};
use sealcell_serve::{Emulator, system_now};

use crate::Failure;

/// `sealcell demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Keep the keys, package, plan, transcript and module in DIR (made if missing; must be
    /// empty) instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
}

/// The server's name: the module resolves it, checks it against the certificate (level 3) and
/// sends it as SNI.
const HOST: &str = "localhost";
/// The package's path on the firmware server.
const PACKAGE_PATH: &str = "/fw/TOBY-L210-18.00.zip";
/// The version the package installs.
const NEW_VERSION: &str = "18.00";
/// The application note's suite: ECDHE-ECDSA-AES128-GCM-SHA256 (C0,2B).
const SUITE: &str = "ECDHE-ECDSA-AES128-GCM-SHA256";

/// Runs the demo.
pub(crate) fn run(args: DemoArgs) -> Result<(), Failure> {
    let fail = |e: anyhow::Error| Failure {
        code: 1,
        error: e,
        hint: None,
    };
    let (_temp, dir) = match &args.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::usage(anyhow!("cannot make {}: {e}", dir.display()), None))?;
            let empty = std::fs::read_dir(dir)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            if !empty {
                return Err(Failure::usage(
                    anyhow!("{} is not empty", dir.display()),
                    Some("--keep wants a new or empty directory".into()),
                ));
            }
            (None, dir.clone())
        }
        None => {
            let t = tempfile::tempdir().map_err(|e| Failure::usage(e, None))?;
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    let started = Instant::now();
    demo(&dir, say).map_err(fail)?;
    say(&format!(
        "\nThe application note works end to end ({:.1} s).{}",
        started.elapsed().as_secs_f64(),
        match &args.keep {
            Some(d) => format!(
                " Everything is in {}: plan.toml, the keys, the package, the transcript, \
                 and the module (`sealcell modem --data {}/module`).",
                d.display(),
                d.display()
            ),
            None => String::new(),
        }
    ));
    Ok(())
}

/// Where the demo's story goes (stdout; nowhere in tests).
type Say = fn(&str);

fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

fn step(say: Say, n: u32, title: &str) {
    say(&format!("\n== {n}. {title}"));
}

fn write(path: &Path, bytes: &[u8], private: bool) -> anyhow::Result<()> {
    use std::fs::OpenOptions;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// A firmware package as the module takes it: a ZIP with a `VERSION` entry and an image.
fn package() -> anyhow::Result<Vec<u8>> {
    use zip::write::SimpleFileOptions;
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    z.start_file("VERSION", stored)?;
    z.write_all(format!("{NEW_VERSION}\n").as_bytes())?;
    z.start_file("image.bin", stored)?;
    // 4 MiB of a deterministic, incompressible-looking image (an xorshift stream).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut image = Vec::with_capacity(4 << 20);
    while image.len() < 4 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        image.extend_from_slice(&x.to_le_bytes());
    }
    z.write_all(&image)?;
    Ok(z.finish()?.into_inner())
}

fn random_password() -> anyhow::Result<String> {
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("the OS random source failed: {e}"))?;
    Ok(hex::encode(bytes))
}

fn printer(say: Say) -> FnTranscript<impl FnMut(Direction, &str) + Send> {
    FnTranscript(move |direction: Direction, text: &str| match direction {
        Direction::Note => say(&format!("   # {text}")),
        Direction::Sent => say(&format!("   > {text}")),
        Direction::Received => say(&format!("   < {text}")),
    })
}

fn expect_refusal(at: &mut AtClient, line: &str, expected: CmeError) -> anyhow::Result<()> {
    let r = at.run(&Command::new(line))?;
    match r.into_ok() {
        Err(ClientError::Module { cme: Some(e), .. }) if e == expected => Ok(()),
        other => bail!("{line}: expected +CME ERROR: {expected:?}, got {other:?}"),
    }
}

fn demo(dir: &Path, say: Say) -> anyhow::Result<()> {
    step(
        say,
        1,
        "The customer's keys and a signed firmware package (application note §4.3)",
    );
    let signer = generate(KeyAlgorithm::Rsa(2048), "Customer FW Signer", 365)?;
    write(
        &dir.join("signer.key"),
        signer.private_key_pem.as_bytes(),
        true,
    )?;
    write(
        &dir.join("signer.pem"),
        signer.certificate_pem.as_bytes(),
        false,
    )?;
    let pkg = package()?;
    write(&dir.join("package.zip"), &pkg, false)?;
    let key = SigningKey::parse(signer.private_key_pem.as_bytes(), None)?;
    let (digest, _) = sealcell_fw::hash::sha256_reader(pkg.as_slice(), |_| {})?;
    let signature = key
        .sign_digest(&digest)
        .map_err(|e| anyhow!("signing failed: {e}"))?;
    let b64 = sealcell_fw::encoding::to_base64(&signature);
    write(
        &dir.join("package.zip.b64"),
        format!("{b64}\n").as_bytes(),
        false,
    )?;
    say(&format!(
        "   signer.key (RSA-2048) and signer.pem (self-signed, keyUsage digitalSignature)\n   \
         package.zip: {} bytes, VERSION {NEW_VERSION}\n   \
         package.zip.b64: PKCS#1 v1.5 over SHA-256, byte-identical to \
         `openssl dgst -sha256 -sign signer.key package.zip | base64 -w0`",
        pkg.len(),
    ));

    step(
        say,
        2,
        "A TLS firmware server on loopback, and an emulated TOBY-L210",
    );
    let pki = LoopbackPki::generate(HOST, 365)?;
    write(&dir.join("root.pem"), pki.root_pem.as_bytes(), false)?;
    write(&dir.join("server.pem"), pki.server_pem.as_bytes(), false)?;
    let files = HashMap::from([(PACKAGE_PATH.to_string(), Arc::new(pkg.clone()))]);
    let server = FileServer::start(&pki, SUITE, files)?;
    say(&format!(
        "   https://{HOST}:{}{PACKAGE_PATH}: TLS 1.2, {SUITE} only, certificate for {HOST} \
         signed by a fresh root CA (root.pem)",
        server.port()
    ));
    let module = Module::open(ModuleConfig::new(dir.join("module")), system_now())?;
    let mut emulator = Emulator::new(module)?;
    let addr = emulator.listen_tcp("127.0.0.1:0")?;
    let port: PortSpec = format!("tcp:{addr}").parse()?;
    say(&format!(
        "   module: {}/module, AT on {port} (any AT client can connect while the demo runs)",
        dir.display()
    ));
    let transcript = Tee(vec![
        Box::new(printer(say)),
        Box::new(FileTranscript::append(&dir.join("transcript.log"))?),
    ]);
    let mut at =
        AtClient::open_recorded(&port, ClientOptions::default(), Some(Box::new(transcript)))?;
    let before = version(&mut at)?;
    expect_refusal(
        &mut at,
        &format!("AT+UFWSINSTALL=\"{b64}\",\"CustomerFWVerificationCert\""),
        CmeError::OperationNotAllowed,
    )?;
    say("   before the seal, the signed install is disabled (application note §2.3)");

    step(
        say,
        3,
        "Provisioning: seal with the customer password, then import and pin (§2.3, §3, §4.1)",
    );
    let password = random_password()?;
    write(&dir.join("seal-password.txt"), password.as_bytes(), true)?;
    let plan_path = dir.join("plan.toml");
    write(
        &plan_path,
        format!(
            r#"# Written by `sealcell demo`: `sealcell provision --port PORT --plan plan.toml`.
[seal]
password_file = "seal-password.txt"

[[credential]]
type = "ca"
name = "RootCA"
file = "root.pem"

[[credential]]
type = "server-cert"
name = "ServerPin"
file = "server.pem"

[[credential]]
type = "verification-cert"
name = "CustomerFWVerificationCert"
file = "signer.pem"

[[profile]]
id = 1
validation = 3
tls_version = 3
cipher = "C02B"
root = "RootCA"
hostname = "{HOST}"
sni = "{HOST}"
pin = {{ cert = "ServerPin", level = 2 }}
"#
        )
        .as_bytes(),
        false,
    )?;
    let plan = Plan::load(&plan_path)?;
    let report = provision(&mut at, &plan, ProvisionOptions::default())?;
    if !report.sealed || report.seal != SealAction::Sealed {
        bail!("the module is not sealed after provisioning: {report:?}");
    }
    let again = provision(&mut at, &plan, ProvisionOptions::default())?;
    if again.changed {
        bail!("re-running the finished plan changed something: {again:?}");
    }
    say("   the plan again: only queries; nothing changed");

    step(say, 4, "The MD5-only update paths are shut (§2.3)");
    expect_refusal(&mut at, "AT+UFWINSTALL", CmeError::OperationNotAllowed)?;
    expect_refusal(&mut at, "AT+UFWUPD=3", CmeError::OperationNotAllowed)?;

    let package_md5 = hex::encode(<md5::Md5 as md5::Digest>::digest(&pkg));
    let request = |signature: Vec<u8>| FotaRequest {
        url: HttpsUrl {
            host: HOST.into(),
            port: Some(server.port()),
            path: PACKAGE_PATH.into(),
        },
        signature,
        cert_name: "CustomerFWVerificationCert".into(),
        security_profile: 1,
        http_profile: 0,
        expected_md5: Some(package_md5.clone()),
        download_timeout: Duration::from_secs(60),
        install_timeout: Duration::from_secs(60),
    };
    step(
        say,
        5,
        "A forged signature: pinned HTTPS download, then +UFWSINSTALL refuses it (§4.2)",
    );
    let mut forged = signature.clone();
    if let Some(b) = forged.last_mut() {
        *b ^= 1;
    }
    match fota(&mut at, &request(forged)) {
        Err(FotaError::Client(ClientError::Module {
            cme: Some(CmeError::SecFwPackageNotValid),
            ..
        })) => {}
        other => bail!("a forged signature was not refused with 1675: {other:?}"),
    }
    let unchanged = version(&mut at)?;
    if unchanged != before {
        bail!("the firmware changed after a refused install: {before} -> {unchanged}");
    }
    say("   refused; firmware unchanged");

    step(
        say,
        6,
        "The signed update: download, verify, install, reboot (§4.1, §4.2)",
    );
    let report = fota(&mut at, &request(signature))?;
    if !report.version_after.starts_with(NEW_VERSION) {
        bail!("ATI9 after the install is {}", report.version_after);
    }
    say(&format!(
        "   {} -> {} (install URCs {:?})",
        report.version_before, report.version_after, report.progress
    ));
    let still_sealed = sealcell_host::provision::seal_state(&mut at)?;
    let listed = sealcell_host::provision::list_credentials(&mut at)?;
    if !still_sealed || listed.len() != 3 {
        bail!(
            "after the install: sealed {still_sealed}, {} credentials",
            listed.len()
        );
    }
    say("   the seal and the three credentials survived the install");
    drop(at);
    emulator.stop();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo in this process (the child-process run is in `tests/host.rs`): every step's
    /// check passes, and what it keeps is what it says.
    #[test]
    fn the_demo_passes_in_process() {
        let dir = tempfile::tempdir().unwrap();
        demo(dir.path(), |_| {}).unwrap();
        for kept in [
            "signer.key",
            "signer.pem",
            "package.zip",
            "package.zip.b64",
            "root.pem",
            "server.pem",
            "plan.toml",
            "seal-password.txt",
            "transcript.log",
            "module",
        ] {
            assert!(dir.path().join(kept).exists(), "{kept}");
        }
        let password = std::fs::read_to_string(dir.path().join("seal-password.txt")).unwrap();
        let transcript = std::fs::read_to_string(dir.path().join("transcript.log")).unwrap();
        assert!(!transcript.contains(&password));
        assert!(transcript.contains("> AT+USECCFG=0,1,\"<redacted>\""));
    }
}
