//! The host library against the emulator in this process, over real TCP: the AT client (echo,
//! URCs, timeouts, a closed link), provisioning (MD5s checked against openssl's facts, the seal
//! first, idempotent re-runs, dry runs, the preflight refusal, replacements, no secret anywhere)
//! and FOTA (a signed install over pinned TLS; a wrong signature, an MD5 mismatch, an unsealed
//! module and a TLS failure each stop with their own error and leave the firmware as it was).

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealcell_at::cme::CmeError;
use sealcell_host::client::{AtClient, ClientError, ClientOptions, Command};
use sealcell_host::fota::{FotaError, FotaRequest, fota, version};
use sealcell_host::mux::{MuxLink, MuxOptions};
use sealcell_host::plan::Plan;
use sealcell_host::port::PortSpec;
use sealcell_host::provision::{
    CredentialAction, ProfileAction, ProvisionError, ProvisionOptions, SealAction,
    list_credentials, provision, seal_state,
};
use sealcell_host::transcript::MemoryTranscript;
use sealcell_https::loopback::{FileServer, LoopbackPki};
use sealcell_modem::Module;
use sealcell_serve::{Emulator, system_now};
use sealcell_testkit::plans::{SEAL_PASSWORD, assert_no_secret, fw_dir, write_plan};
use sealcell_testkit::test_config;
use sealcell_testkit::transcript::{pki_dir, pki_facts};

struct Rig {
    dir: tempfile::TempDir,
    emulator: Option<Emulator>,
    port: PortSpec,
}

impl Rig {
    fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let module = Module::open(test_config(&dir.path().join("module")), system_now()).unwrap();
        let mut emulator = Emulator::new(module).unwrap();
        let addr = emulator.listen_tcp("127.0.0.1:0").unwrap();
        Rig {
            dir,
            emulator: Some(emulator),
            port: format!("tcp:{addr}").parse().unwrap(),
        }
    }

    fn client(&self) -> (AtClient, MemoryTranscript) {
        self.client_with(ClientOptions::default())
    }

    /// A client over one DLCI of a 27.010 multiplexer the client starts.
    fn muxed_client(&self, dlci: u8) -> (AtClient, MemoryTranscript) {
        self.client_with(ClientOptions {
            multiplex: Some(MuxOptions {
                dlci,
                ..MuxOptions::default()
            }),
            ..ClientOptions::default()
        })
    }

    fn client_with(&self, options: ClientOptions) -> (AtClient, MemoryTranscript) {
        let t = MemoryTranscript::default();
        let at = AtClient::open_recorded(&self.port, options, Some(Box::new(t.clone()))).unwrap();
        (at, t)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(e) = self.emulator.take() {
            e.stop();
        }
    }
}

#[test]
fn provision_seals_first_imports_with_checked_md5s_and_a_rerun_changes_nothing() {
    let rig = Rig::new();
    let plan = Plan::load(&write_plan(rig.dir.path(), true)).unwrap();
    let facts = pki_facts().unwrap();
    // The local MD5s are the module's rule applied on the host; openssl computed the same.
    let mut checked = 0;
    for c in &plan.credentials {
        let file = c.file.file_name().unwrap().to_str().unwrap();
        if let Some(f) = facts.get(file) {
            assert_eq!(c.md5, f[0], "{file}");
            checked += 1;
        }
    }
    assert_eq!(checked, 4, "every PKI fixture of the plan is in facts.txt");
    let (mut at, transcript) = rig.client();
    let report = provision(&mut at, &plan, ProvisionOptions::default()).unwrap();
    assert_eq!((report.sealed_before, report.sealed), (false, true));
    assert_eq!(report.seal, SealAction::Sealed);
    assert!(report.changed);
    let actions: Vec<(&str, &str, CredentialAction)> = report
        .credentials
        .iter()
        .map(|c| (c.kind, c.name.as_str(), c.action))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("CA", "RootCA", CredentialAction::Imported),
            ("CC", "Device", CredentialAction::Imported),
            ("PK", "DeviceKey", CredentialAction::Imported),
            ("SC", "ServerPin", CredentialAction::Imported),
            (
                "VC",
                "CustomerFWVerificationCert",
                CredentialAction::Imported
            ),
        ]
    );
    assert_eq!(report.profiles[0].action, ProfileAction::Set);
    let lines = transcript.lines();
    let seal_at = lines
        .iter()
        .position(|l| l.starts_with("> AT+USECCFG=0,1,"))
        .unwrap();
    let first_import = lines
        .iter()
        .position(|l| l.starts_with("> AT+USECMNG=0,"))
        .unwrap();
    assert!(seal_at < first_import, "the seal comes before the imports");
    assert_eq!(lines[seal_at], "> AT+USECCFG=0,1,\"<redacted>\"");
    assert!(lines.iter().any(
        |l| l.starts_with("> AT+USECMNG=0,2,\"DeviceKey\",") && l.ends_with(",\"<redacted>\"")
    ));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("> <") && l.contains("private key, redacted"))
    );

    // The module now lists exactly the plan, sealed, with the MD5s openssl computed.
    assert!(seal_state(&mut at).unwrap());
    let listed: Vec<(String, String)> = list_credentials(&mut at)
        .unwrap()
        .into_iter()
        .map(|i| (i.tag, i.name))
        .collect();
    assert_eq!(listed.len(), 5);
    let r = at
        .ok(&Command::new("AT+USECMNG=4,2,\"DeviceKey\""))
        .unwrap();
    assert_eq!(
        r.lines,
        vec![format!(
            "+USECMNG: 4,2,\"DeviceKey\",\"{}\"",
            facts["client-pkcs8-enc.pem"][0]
        )]
    );

    // Again: only queries, and it says nothing changed.
    let before = transcript.lines().len();
    let again = provision(&mut at, &plan, ProvisionOptions::default()).unwrap();
    assert!(!again.changed, "{again:?}");
    assert_eq!(again.seal, SealAction::AlreadySealed);
    assert!(
        again
            .credentials
            .iter()
            .all(|c| c.action == CredentialAction::Unchanged)
    );
    assert_eq!(again.profiles[0].action, ProfileAction::Unchanged);
    let sent: Vec<String> = transcript.lines()[before..]
        .iter()
        .filter(|l| l.starts_with("> "))
        .cloned()
        .collect();
    for line in &sent {
        let query = ["> AT+CGSN", "> AT+CCID", "> AT+CGMM", "> AT+CGMR"].contains(&line.as_str())
            || line == "> AT+USECCFG?"
            || line == "> AT+USECMNG=3"
            || line.starts_with("> AT+USECMNG=4,")
            || (line.starts_with("> AT+USECPRF=1,") && line.matches(',').count() == 1);
        assert!(query, "a re-run sent a change: {line}");
    }

    // No secret in the transcript, the report (JSON and Debug) or the plan's Debug.
    assert_no_secret("transcript", &transcript.lines().join("\n"));
    assert_no_secret("report JSON", &serde_json::to_string(&report).unwrap());
    assert_no_secret("report Debug", &format!("{report:?}"));
    assert_no_secret("plan Debug", &format!("{plan:?}"));
}

#[test]
fn preflight_refuses_to_strand_plaintext_credentials_unless_forced() {
    let rig = Rig::new();
    let plan = Plan::load(&write_plan(rig.dir.path(), true)).unwrap();
    let (mut at, _) = rig.client();
    let pem = std::fs::read(pki_dir().join("root.pem")).unwrap();
    at.ok(
        &Command::new(format!("AT+USECMNG=0,0,\"Old\",{}", pem.len()))
            .payload(pem.into(), "<root.pem>"),
    )
    .unwrap();
    let e = provision(&mut at, &plan, ProvisionOptions::default()).unwrap_err();
    match &e {
        ProvisionError::PlaintextCredentials { names } => {
            assert_eq!(names, &vec!["CA \"Old\"".to_string()])
        }
        other => panic!("{other:?}"),
    }
    assert!(e.is_negative());
    assert!(!seal_state(&mut at).unwrap(), "nothing was sealed");
    assert_eq!(
        list_credentials(&mut at).unwrap().len(),
        1,
        "nothing imported"
    );

    let forced = provision(
        &mut at,
        &plan,
        ProvisionOptions {
            force: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(forced.stranded, vec!["CA \"Old\"".to_string()]);
    assert!(forced.sealed);
    let names: Vec<String> = list_credentials(&mut at)
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert!(!names.contains(&"Old".to_string()), "{names:?}");
    assert_eq!(names.len(), 5);
}

#[test]
fn a_dry_run_queries_only_and_reports_what_would_change() {
    let rig = Rig::new();
    let plan = Plan::load(&write_plan(rig.dir.path(), true)).unwrap();
    let (mut at, transcript) = rig.client();
    let r = provision(
        &mut at,
        &plan,
        ProvisionOptions {
            dry_run: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.seal, SealAction::WouldSeal);
    assert!(r.changed && r.dry_run && !r.sealed);
    assert!(
        r.credentials
            .iter()
            .all(|c| c.action == CredentialAction::WouldImport)
    );
    assert_eq!(r.profiles[0].action, ProfileAction::WouldSet);
    assert!(!seal_state(&mut at).unwrap());
    assert!(list_credentials(&mut at).unwrap().is_empty());
    assert!(
        !transcript
            .lines()
            .iter()
            .any(|l| l.starts_with("> AT+USECCFG=0,1") || l.starts_with("> AT+USECMNG=0,"))
    );
}

#[test]
fn a_changed_file_replaces_the_item_and_an_unsealed_plan_does_not_seal() {
    let rig = Rig::new();
    let path = write_plan(rig.dir.path(), false);
    let plan = Plan::load(&path).unwrap();
    let (mut at, _) = rig.client();
    let r = provision(&mut at, &plan, ProvisionOptions::default()).unwrap();
    assert_eq!(r.seal, SealAction::NotRequested);
    assert!(!r.sealed);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("root.pem", "big.pem");
    std::fs::write(&path, text).unwrap();
    let plan = Plan::load(&path).unwrap();
    let r = provision(&mut at, &plan, ProvisionOptions::default()).unwrap();
    let root = &r.credentials[0];
    assert_eq!(
        (root.name.as_str(), root.action),
        ("RootCA", CredentialAction::Replaced)
    );
    assert_eq!(root.md5, pki_facts().unwrap()["big.pem"][0]);
    assert!(
        r.credentials[1..]
            .iter()
            .all(|c| c.action == CredentialAction::Unchanged)
    );
}

#[test]
fn a_plan_with_a_wrong_key_password_fails_before_anything_is_sent() {
    let rig = Rig::new();
    let path = write_plan(rig.dir.path(), true);
    std::fs::write(rig.path("keypass.txt"), "wrong").unwrap();
    let e = Plan::load(&path).unwrap_err().to_string();
    assert!(
        e.contains("\"DeviceKey\"") && e.contains("could not be decrypted"),
        "{e}"
    );
    assert!(!e.contains("wrong"), "{e}");
}

// ---- FOTA ----

struct FotaRig {
    rig: Rig,
    server: FileServer,
    package: Vec<u8>,
    signature: Vec<u8>,
}

/// A sealed module provisioned for `https://localhost:<port>/pkg.zip` with a pinned server and
/// the fixture signer as VC.
fn fota_rig() -> FotaRig {
    let rig = Rig::new();
    let pki = LoopbackPki::generate("localhost", 30).unwrap();
    std::fs::write(rig.path("root.pem"), &pki.root_pem).unwrap();
    std::fs::write(rig.path("server.pem"), &pki.server_pem).unwrap();
    std::fs::write(rig.path("seal.txt"), SEAL_PASSWORD).unwrap();
    std::fs::write(
        rig.path("plan.toml"),
        format!(
            r#"[seal]
password_file = "seal.txt"
[[credential]]
type = "ca"
name = "RootCA"
file = "root.pem"
[[credential]]
type = "server-cert"
name = "Pin"
file = "server.pem"
[[credential]]
type = "verification-cert"
name = "VC"
file = "{}"
[[profile]]
id = 2
validation = 3
tls_version = 3
cipher = "C02B"
root = "RootCA"
hostname = "localhost"
sni = "localhost"
pin = {{ cert = "Pin", level = 2 }}
"#,
            fw_dir().join("signer.pem").display()
        ),
    )
    .unwrap();
    let package = std::fs::read(fw_dir().join("package.zip")).unwrap();
    let signature = sealcell_fw::encoding::decode_signature(
        &std::fs::read(fw_dir().join("good.b64")).unwrap(),
        sealcell_fw::encoding::SignatureFormat::Auto,
    )
    .unwrap();
    let files = HashMap::from([("/pkg.zip".to_string(), Arc::new(package.clone()))]);
    let server = FileServer::start(&pki, "ECDHE-ECDSA-AES128-GCM-SHA256", files).unwrap();
    let (mut at, _) = rig.client();
    provision(
        &mut at,
        &Plan::load(&rig.path("plan.toml")).unwrap(),
        ProvisionOptions::default(),
    )
    .unwrap();
    FotaRig {
        rig,
        server,
        package,
        signature,
    }
}

impl FotaRig {
    fn request(&self, signature: Vec<u8>, expected_md5: Option<String>) -> FotaRequest {
        FotaRequest {
            url: format!("https://localhost:{}/pkg.zip", self.server.port())
                .parse()
                .unwrap(),
            signature,
            cert_name: "VC".into(),
            security_profile: 2,
            http_profile: 1,
            expected_md5,
            download_timeout: Duration::from_secs(30),
            install_timeout: Duration::from_secs(30),
        }
    }
}

fn package_size(at: &mut AtClient) -> Option<String> {
    at.run(&Command::new(
        "AT+ULSTFILE=2,\"updatePackage.bin\",\"FOAT\"",
    ))
    .unwrap()
    .value("+ULSTFILE:")
    .map(str::to_string)
}

#[test]
fn fota_downloads_over_pinned_tls_installs_the_signed_package_and_reports_ati9() {
    let f = fota_rig();
    let (mut at, transcript) = f.rig.client();
    let expected = {
        use md5::Digest;
        hex::encode(md5::Md5::digest(&f.package))
    };
    let report = fota(
        &mut at,
        &f.request(f.signature.clone(), Some(expected.clone())),
    )
    .unwrap();
    assert_eq!(report.http_status, 200);
    assert_eq!(report.md5, expected);
    assert_eq!(report.md5_matches_file, Some(true));
    assert_eq!(report.progress, vec![0, 20, 40, 60, 80, 100, 128]);
    assert_eq!(report.version_before, "17.00,A01.00");
    assert_eq!(report.version_after, "18.00,A01.00");
    assert_eq!(
        package_size(&mut at),
        None,
        "the package is deleted after the install"
    );
    let lines = transcript.lines();
    assert!(
        lines.contains(&"> AT+UHTTP=1,6,1,2".to_string()),
        "{lines:?}"
    );
    assert!(lines.contains(&"> AT+UHTTPC=1,100,\"/pkg.zip\"".to_string()));
}

#[test]
fn a_wrong_signature_leaves_firmware_and_package_and_returns_the_modules_error() {
    let f = fota_rig();
    let (mut at, _) = f.rig.client();
    let mut bad = f.signature.clone();
    bad[10] ^= 0x40;
    let e = fota(&mut at, &f.request(bad, None)).unwrap_err();
    match &e {
        FotaError::Client(ClientError::Module { cme, result, .. }) => {
            assert_eq!(*cme, Some(CmeError::SecFwPackageNotValid));
            assert_eq!(result, "+CME ERROR: SEC FW package not valid");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.is_negative());
    assert_eq!(version(&mut at).unwrap(), "17.00,A01.00");
    assert_eq!(
        package_size(&mut at),
        Some(format!("{}", f.package.len())),
        "the package stays for a retry"
    );
}

#[test]
fn an_md5_mismatch_with_the_local_file_stops_before_the_install() {
    let f = fota_rig();
    let (mut at, transcript) = f.rig.client();
    let e = fota(
        &mut at,
        &f.request(f.signature.clone(), Some("00".repeat(16))),
    )
    .unwrap_err();
    assert!(matches!(e, FotaError::Md5Mismatch { .. }), "{e:?}");
    assert!(
        !transcript
            .lines()
            .iter()
            .any(|l| l.starts_with("> AT+UFWSINSTALL"))
    );
    assert_eq!(version(&mut at).unwrap(), "17.00,A01.00");
}

#[test]
fn fota_refuses_an_unsealed_module_and_reports_tls_failures_as_uhttper() {
    let rig = Rig::new();
    let (mut at, _) = rig.client();
    let request = FotaRequest {
        url: "https://localhost:1/pkg.zip".parse().unwrap(),
        signature: vec![0; 256],
        cert_name: "VC".into(),
        security_profile: 0,
        http_profile: 0,
        expected_md5: None,
        download_timeout: Duration::from_secs(5),
        install_timeout: Duration::from_secs(5),
    };
    assert!(matches!(
        fota(&mut at, &request).unwrap_err(),
        FotaError::NotSealed
    ));

    // A profile pinned to another certificate: the module refuses the server (3,73).
    let f = fota_rig();
    let (mut at, _) = f.rig.client();
    let other = std::fs::read(pki_dir().join("server.pem")).unwrap();
    at.ok(
        &Command::new(format!("AT+USECMNG=0,3,\"Pin\",{}", other.len()))
            .payload(other.into(), "<server.pem>"),
    )
    .unwrap();
    let e = fota(&mut at, &f.request(f.signature.clone(), None)).unwrap_err();
    assert!(
        matches!(
            e,
            FotaError::Download {
                class: 3,
                code: 73,
                ..
            }
        ),
        "{e:?}"
    );
    let missing = FotaRequest {
        cert_name: "NoSuchVC".into(),
        ..f.request(f.signature.clone(), None)
    };
    assert!(matches!(
        fota(&mut at, &missing).unwrap_err(),
        FotaError::NoVerificationCertificate(n) if n == "NoSuchVC"
    ));
}

// ---- the client ----

#[test]
fn the_client_tolerates_echo_and_collects_urcs() {
    let rig = Rig::new();
    let addr = match &rig.port {
        PortSpec::Tcp { host, port } => format!("{host}:{port}"),
        _ => unreachable!(),
    };
    // Not synchronised: echo on and CMEE=0, as after power-on.
    let link = TcpStream::connect(addr).unwrap();
    let mut at = AtClient::from_link(Box::new(link), ClientOptions::default());
    let r = at.ok(&Command::new("AT+CGMI")).unwrap();
    assert_eq!(r.lines, vec!["u-blox"]);
    let e = at.ok(&Command::new("AT+NOPE")).unwrap_err();
    assert_eq!(e.to_string(), "the module answered ERROR to AT+NOPE");
    // A reboot turns echo back on; the client does not care.
    at.ok(&Command::new("AT+CFUN=16")).unwrap();
    at.ok(&Command::new("AT+CMEE=2")).unwrap();
    // A URC arriving after the command's OK is kept for wait_urc; others stay queued.
    for line in [
        "AT+UHTTP=0,0,\"127.0.0.1\"",
        "AT+UHTTP=0,5,1",
        "AT+UHTTPC=0,1,\"/\",\"r\"",
    ] {
        at.ok(&Command::new(line)).unwrap();
    }
    let urc = at
        .wait_urc(|u| u.starts_with("+UUHTTPCR:"), Duration::from_secs(10))
        .unwrap();
    assert_eq!(urc, "+UUHTTPCR: 0,1,0");
    let e = at
        .wait_urc(|u| u.starts_with("+UUHTTPCR:"), Duration::from_millis(200))
        .unwrap_err();
    assert!(matches!(e, ClientError::Timeout { .. }), "{e:?}");
    let r = at.run(&Command::new("AT+USECMNG=4,0,\"x\"")).unwrap();
    assert_eq!(
        sealcell_host::client::result_text(&r.result),
        "+CME ERROR: Operation not supported"
    );
}

fn silent_server(close: bool) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut keep = Vec::new();
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            if close {
                let mut b = [0u8; 16];
                let _ = s.read(&mut b);
                let _ = s.write_all(b"\r\nOK");
                drop(s);
            } else {
                keep.push(s);
            }
        }
    });
    addr
}

#[test]
fn a_silent_module_times_out_and_a_closed_link_is_reported() {
    let options = ClientOptions {
        sync_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let port: PortSpec = format!("tcp:{}", silent_server(false)).parse().unwrap();
    let started = Instant::now();
    let e = AtClient::open(&port, options.clone()).err().unwrap();
    assert!(matches!(e, ClientError::Timeout { .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!e.is_module_answer());

    let port: PortSpec = format!("tcp:{}", silent_server(true)).parse().unwrap();
    let e = AtClient::open(&port, options).err().unwrap();
    assert!(matches!(e, ClientError::Closed { .. }), "{e:?}");

    let e = AtClient::open(
        &"tcp:127.0.0.1:1".parse().unwrap(),
        ClientOptions::default(),
    )
    .err()
    .unwrap();
    assert!(
        e.to_string().starts_with("cannot open tcp:127.0.0.1:1: "),
        "{e}"
    );
}

#[test]
fn a_profile_naming_a_missing_credential_is_refused_before_anything_changes() {
    let rig = Rig::new();
    let path = write_plan(rig.dir.path(), true);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("client_key = \"DeviceKey\"", "client_key = \"Device\"");
    std::fs::write(&path, text).unwrap();
    let plan = Plan::load(&path).unwrap();
    let (mut at, _) = rig.client();
    let e = provision(&mut at, &plan, ProvisionOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "profile 1 names the PK credential \"Device\", which neither the plan nor the module holds"
    );
    assert!(!seal_state(&mut at).unwrap());
}

#[test]
fn a_prompt_without_a_payload_is_an_error_not_a_hang() {
    let rig = Rig::new();
    let (mut at, _) = rig.client();
    let started = Instant::now();
    let e = at.run(&Command::new("AT+UDWNFILE=\"x\",3")).unwrap_err();
    assert!(
        e.to_string()
            .contains("the module asks for a payload (>) and none was given"),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// The exact exchange of a full plan on a new module, as the transcript records it: the order
/// (queries, seal, imports, profile), every line sent, every answer, the redactions. Bless with
/// `SEALCELL_BLESS=1` after a deliberate change.
#[test]
fn golden_transcript_of_a_full_plan() {
    let rig = Rig::new();
    let plan = Plan::load(&write_plan(rig.dir.path(), true)).unwrap();
    let (mut at, transcript) = rig.client();
    provision(&mut at, &plan, ProvisionOptions::default()).unwrap();
    provision(&mut at, &plan, ProvisionOptions::default()).unwrap();
    let got = normalised(&transcript, rig.dir.path());
    let golden = golden_path();
    if std::env::var_os("SEALCELL_BLESS").is_some() {
        std::fs::write(&golden, &got).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap();
    assert_eq!(got, want, "the provisioning exchange changed");
}

/// A link that hands the client one byte per read, as a slow UART does.
struct OneByteAtATime(TcpStream);

impl Read for OneByteAtATime {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(1);
        self.0.read(&mut buf[..n])
    }
}

impl Write for OneByteAtATime {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl sealcell_host::port::Link for OneByteAtATime {
    fn set_read_timeout(&mut self, timeout: Duration) -> std::io::Result<()> {
        self.0.set_read_timeout(Some(timeout))
    }
}

#[test]
fn the_same_exchange_when_the_answer_arrives_one_byte_at_a_time() {
    let rig = Rig::new();
    let plan = Plan::load(&write_plan(rig.dir.path(), true)).unwrap();
    let PortSpec::Tcp { host, port } = &rig.port else {
        unreachable!()
    };
    let link = OneByteAtATime(TcpStream::connect((host.as_str(), *port)).unwrap());
    let mut at = AtClient::from_link(Box::new(link), ClientOptions::default());
    let t = MemoryTranscript::default();
    at.set_transcript(Box::new(t.clone()));
    at.synchronise().unwrap();
    provision(&mut at, &plan, ProvisionOptions::default()).unwrap();
    provision(&mut at, &plan, ProvisionOptions::default()).unwrap();
    let golden = std::fs::read_to_string(golden_path()).unwrap();
    assert_eq!(normalised(&t, rig.dir.path()), golden);
}

fn golden_path() -> PathBuf {
    pki_dir()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("golden/provision-full-plan.transcript")
}

/// The transcript as text, with the temporary directory written `<dir>`.
/// The transcript with what differs between runs replaced: the temp dir and the module's random
/// ICCID (its IMEI is the fixed test IMEI).
fn normalised(t: &MemoryTranscript, dir: &std::path::Path) -> String {
    let identity =
        std::fs::read_to_string(dir.join("module/otp/identity.toml")).unwrap_or_default();
    let iccid = identity
        .lines()
        .find_map(|l| l.strip_prefix("iccid = "))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "<no iccid>".into());
    let dir = dir.display().to_string();
    t.lines()
        .iter()
        .map(|l| format!("{}\n", l.replace(&dir, "<dir>").replace(&iccid, "<iccid>")))
        .collect()
}

/// A hostile or broken module: every command line gets a random answer (random lines, random
/// bytes, sometimes a final result, sometimes a prompt, sometimes nothing). Provisioning and
/// FOTA must end — with a result or an error — and never panic or hang.
#[test]
fn a_module_answering_garbage_never_panics_or_hangs_the_workflows() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Plan::load(&write_plan(dir.path(), true)).unwrap();
    let pieces: [&[u8]; 14] = [
        b"\r\nOK\r\n",
        b"\r\nERROR\r\n",
        b"\r\n+CME ERROR: 4\r\n",
        b"\r\n+CME ERROR: what\r\n",
        b"\r\n>",
        b"\r\n+USECCFG: 0,1\r\n",
        b"\r\n+USECCFG: x\r\n",
        b"\r\n\"CA\",\"RootCA\"\r\n",
        b"\r\n\"\r\n",
        b"\r\n+USECMNG: 0,0,\"RootCA\",\"311d879f791444d014a7daecf6b7e093\"\r\n",
        b"\r\n+UUHTTPCR: 0,100,1,200,\"\r\n",
        b"\r\n+UUFWINSTALL: 999999\r\n",
        b"\r\n+URDFILE: \"a\",99999999999,\"",
        b"\xff\x00\r\r\n\n",
    ];
    let started = Instant::now();
    for seed in 1..=40u64 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let mut buf = [0u8; 4096];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    return;
                }
                for _ in buf[..n].iter().filter(|&&b| b == b'\r') {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Mostly a final result at the end, so the workflows get deep.
                    for k in 0..(x % 3) {
                        let _ = s.write_all(pieces[((x >> (8 * k)) % 14) as usize]);
                    }
                    if x % 5 != 0 {
                        let _ = s.write_all(b"\r\nOK\r\n");
                    }
                }
            }
        });
        let options = ClientOptions {
            timeout: Duration::from_millis(150),
            sync_timeout: Duration::from_millis(300),
            prompt_delay: Some(Duration::ZERO),
            multiplex: None,
        };
        let port: PortSpec = format!("tcp:{addr}").parse().unwrap();
        let Ok(mut at) = AtClient::open(&port, options) else {
            continue;
        };
        let _ = provision(&mut at, &plan, ProvisionOptions::default());
        let request = FotaRequest {
            url: "https://localhost/pkg.zip".parse().unwrap(),
            signature: vec![1; 256],
            cert_name: "VC".into(),
            security_profile: 0,
            http_profile: 0,
            expected_md5: None,
            download_timeout: Duration::from_millis(300),
            install_timeout: Duration::from_millis(300),
        };
        let _ = fota(&mut at, &request);
    }
    assert!(started.elapsed() < Duration::from_secs(120));
}

#[test]
fn provisioning_runs_over_cmux_and_a_rerun_changes_nothing() {
    let rig = Rig::new();
    let plan = Plan::load(&write_plan(rig.dir.path(), true)).unwrap();
    let (mut at, transcript) = rig.muxed_client(2);
    let report = provision(&mut at, &plan, ProvisionOptions::default()).unwrap();
    assert_eq!(report.seal, SealAction::Sealed);
    assert!(seal_state(&mut at).unwrap());
    assert_eq!(
        list_credentials(&mut at).unwrap().len(),
        plan.credentials.len()
    );
    // The DLCI is a channel of its own: it reads the multiplexer's parameters back.
    let status = at.ok_line("AT+CMUX?").unwrap();
    assert_eq!(status.lines, ["+CMUX: 0,0,0,128,10,3,30,10,2"]);
    drop(at);
    assert_no_secret("the transcript over CMUX", &transcript.lines().join("\n"));
    let (mut again, _) = rig.muxed_client(1);
    let rerun = provision(&mut again, &plan, ProvisionOptions::default()).unwrap();
    assert!(!rerun.changed);
}

#[test]
fn fota_runs_over_cmux_through_the_reboot() {
    let f = fota_rig();
    let (mut at, _) = f.rig.muxed_client(1);
    let report = fota(&mut at, &f.request(f.signature.clone(), None)).unwrap();
    assert_eq!(report.progress, vec![0, 20, 40, 60, 80, 100, 128]);
    assert_eq!(report.version_before, "17.00,A01.00");
    // The module came back in plain AT; the client started the multiplexer again.
    assert_eq!(report.version_after, "18.00,A01.00");
    assert_eq!(
        at.ok_line("AT+CMUX?").unwrap().lines,
        ["+CMUX: 0,0,0,128,10,3,30,10,2"]
    );
}

/// Reads from a plain connection until `want` has arrived (or fails after 5 s).
fn read_until(stream: &mut TcpStream, want: &[u8]) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(want.len()).any(|w| w == want) {
        assert!(
            Instant::now() < deadline,
            "waiting for {want:?}, got {got:?}"
        );
        match stream.read(&mut buf) {
            Ok(0) => panic!("closed; got {got:?}"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    got
}

#[test]
fn a_mux_link_closes_down_what_it_started_and_leaves_alone_what_it_joined() {
    let rig = Rig::new();
    let PortSpec::Tcp { host, port } = &rig.port else {
        unreachable!()
    };
    // Started here: dropping the link closes the multiplexer down; the line is plain again.
    let mut plain = TcpStream::connect((host.as_str(), *port)).unwrap();
    let link = MuxLink::open(
        Box::new(plain.try_clone().unwrap()),
        MuxOptions::default(),
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(link.started());
    drop(link);
    plain.write_all(b"AT+CGMI\r").unwrap();
    read_until(&mut plain, b"u-blox\r\n\r\nOK\r\n");

    // A host application keeps a multiplexer running (DLCI 1): the tool joins on DLCI 3 and
    // leaves the multiplexer up when it is done.
    // Its N1 is the default, 31: the tool, expecting 128, must learn it before it sends.
    let mut app = TcpStream::connect((host.as_str(), *port)).unwrap();
    app.write_all(b"AT+CMUX=0\r").unwrap();
    read_until(&mut app, b"\r\nOK\r\n");
    let mut app_mux = sealcell_at::cmux::mux::Multiplexer::new(sealcell_at::cmux::mux::Config {
        role: sealcell_at::cmux::mux::Role::Initiator,
        n1: 31,
        max_dlci: 5,
    });
    let mut frames = Vec::new();
    app_mux.open(0, &mut frames);
    app_mux.open(1, &mut frames);
    app.write_all(&frames).unwrap();
    // SABM 0 and 1 answered: UA, UA (responses from the responder, C/R set, F set).
    read_until(&mut app, &[0xF9, 0x07, 0x73, 0x01, 0x15, 0xF9]);
    // (The app's DLCI 1 is not read from here on; the tool's DLCI 3 is its own.)
    let joined = MuxLink::open(
        Box::new(app.try_clone().unwrap()),
        MuxOptions {
            dlci: 3,
            ..MuxOptions::default()
        },
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(!joined.started());
    let mut at = AtClient::from_link(Box::new(joined), ClientOptions::default());
    at.synchronise().unwrap();
    // A line and an answer longer than N1: split into frames both ways.
    assert_eq!(
        at.ok_line("AT+CGMI;+CGMM;+CGMR;+CMUX?;+CGMI")
            .unwrap()
            .lines,
        [
            "u-blox",
            "TOBY-L210",
            "17.00",
            "+CMUX: 0,0,0,31,10,3,30,10,2",
            "u-blox"
        ]
    );
    drop(at);
    // DLCI 1 still works: AT on it, its answer framed.
    let mut frames = Vec::new();
    app_mux.send(1, b"ATE0\r", &mut frames);
    app.write_all(&frames).unwrap();
    read_until(&mut app, b"ATE0\r\r\nOK\r\n");
}
