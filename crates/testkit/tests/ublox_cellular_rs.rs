//! A real third-party client against the running emulator: the command structs of FactbirdHQ's
//! `ublox-cellular-rs` 0.5, sent by `atat` 0.25's blocking `SimpleClient` over TCP, and its 0.4.0
//! socket command set (the TOBY family's, which 0.5 does not compile) through atat 0.13, run as
//! a program of its own (`tests/support/ucr04_driver.rs`). Nothing here was written for
//! sealcell, so these tests check the wire as independent host code reads it.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use atat::atat_derive::{AtatCmd, AtatResp};
use atat::blocking::{AtatClient, SimpleClient};
use atat::{AtDigester, Config};
use sealcell_modem::Module;
use sealcell_serve::{Emulator, system_now};
use sealcell_testkit::{TEST_IMEI, test_config};
use ublox_cellular::command::Urc;
use ublox_cellular::command::control::SetEcho;
use ublox_cellular::command::control::types::Echo;
use ublox_cellular::command::device_data_security::types::SecurityDataType;
use ublox_cellular::command::device_data_security::{
    DeleteSecurityData, ListSecurityData, PrepareSecurityDataImport, RetrieveSecurityMd5,
    SendSecurityDataImport,
};
use ublox_cellular::command::file_system::{
    DeleteFile, DownloadFile, PrepareDownloadFile, ReadFile,
};
use ublox_cellular::command::general::{GetIMEI, GetManufacturerId, GetModelId};

/// A TCP stream in the embedded-io traits atat's blocking client needs.
struct TcpIo(TcpStream);

impl embedded_io::ErrorType for TcpIo {
    type Error = std::io::Error;
}

impl embedded_io::Read for TcpIo {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.0.set_read_timeout(None)?;
        self.0.read(buf)
    }
}

impl embedded_io::ReadReady for TcpIo {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        self.0.set_read_timeout(Some(Duration::from_millis(1)))?;
        let mut b = [0u8; 1];
        match self.0.peek(&mut b) {
            Ok(n) => Ok(n > 0),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

impl embedded_io::Write for TcpIo {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.0.flush()
    }
}

impl embedded_io::WriteReady for TcpIo {
    fn write_ready(&mut self) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// `AT+ULSTFILE=0`, declared with atat's derive. The crate's own `ListFiles` returns
/// `Vec<String<248>, 10>`, which serde_at 0.25 cannot deserialize from any input (its sequence
/// reader asks for one element past the end and fails with `EofWhileParsingValue`, even for a
/// bare `"a","b"`), so the listing is declared here the way the crate declares its other
/// responses: a struct of positional arguments.
#[derive(Clone, AtatCmd)]
#[at_cmd("+ULSTFILE", FileList)]
struct ListUserFiles {
    #[at_arg(position = 0)]
    op: u8,
}

#[derive(Debug, Clone, AtatResp)]
struct FileList {
    #[at_arg(position = 0)]
    first: Option<heapless::String<248>>,
    #[at_arg(position = 1)]
    second: Option<heapless::String<248>>,
    #[at_arg(position = 2)]
    third: Option<heapless::String<248>>,
}

impl FileList {
    fn names(&self) -> Vec<String> {
        [&self.first, &self.second, &self.third]
            .into_iter()
            .flatten()
            .map(|s| s.to_string())
            .collect()
    }
}

/// `AT+USECCFG=0,1,"<password>"`: the seal, which the crate does not declare.
#[derive(Clone, AtatCmd)]
#[at_cmd(
    "+USECCFG=0,1,",
    ublox_cellular::command::NoResponse,
    value_sep = false
)]
struct Seal<'a> {
    #[at_arg(position = 0)]
    password: &'a str,
}

fn start() -> (tempfile::TempDir, Emulator, TcpStream) {
    let dir = tempfile::tempdir().unwrap();
    let module = Module::open(test_config(dir.path()), system_now()).unwrap();
    let mut emulator = Emulator::new(module).unwrap();
    let addr = emulator.listen_tcp("127.0.0.1:0").unwrap();
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    (dir, emulator, stream)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn identification_and_file_system_through_ublox_cellular_rs() {
    let (_dir, emulator, stream) = start();
    let mut buf = [0u8; 4096];
    let mut client = SimpleClient::new(
        TcpIo(stream),
        AtDigester::<Urc>::new(),
        &mut buf,
        Config::new(),
    );

    client.send(&SetEcho { enabled: Echo::Off }).expect("ATE0");

    let manufacturer = client.send(&GetManufacturerId).expect("AT+CGMI");
    assert_eq!(text(&manufacturer.manufacturer), "u-blox");
    let model = client.send(&GetModelId).expect("AT+CGMM");
    assert_eq!(text(&model.model), "TOBY-L210");
    let imei = client.send(&GetIMEI { snt: None }).expect("AT+CGSN");
    assert_eq!(imei.imei.to_string(), TEST_IMEI);

    // +UDWNFILE: the prompt, then the raw bytes (which include CR, LF and a quote).
    let payload: &[u8] = b"line one\r\nline \"two\"";
    for name in ["client.txt", "second.txt"] {
        client
            .send(&PrepareDownloadFile {
                filename: name,
                size: payload.len(),
            })
            .expect("AT+UDWNFILE prompt");
        client
            .send(&DownloadFile {
                text: atat::serde_bytes::Bytes::new(payload),
            })
            .expect("payload accepted");
    }

    let listed = client
        .send(&ListUserFiles { op: 0 })
        .expect("AT+ULSTFILE=0");
    assert_eq!(listed.names(), ["client.txt", "second.txt"]);

    let read = client
        .send(&ReadFile {
            filename: "client.txt",
        })
        .expect("AT+URDFILE");
    assert_eq!(read.filename.as_str(), "client.txt");
    assert_eq!(read.size, payload.len());
    // serde_at hands over the raw field from its opening quote up to the end of the line.
    assert_eq!(text(&read.data), "\"line one\r\nline \"two\"\"");

    client
        .send(&DeleteFile {
            filename: "client.txt",
        })
        .expect("AT+UDELFILE");
    let listed = client
        .send(&ListUserFiles { op: 0 })
        .expect("AT+ULSTFILE=0 after delete");
    assert_eq!(listed.names(), ["second.txt"]);

    // Deleting it again: the module's +CME ERROR reaches the client as an error.
    assert!(
        client
            .send(&DeleteFile {
                filename: "client.txt"
            })
            .is_err()
    );
    // And the channel still works.
    let model = client.send(&GetModelId).expect("AT+CGMM after an error");
    assert_eq!(text(&model.model), "TOBY-L210");

    emulator.stop();
}

fn pki(name: &str) -> Vec<u8> {
    sealcell_testkit::transcript::pki_fixture(name).unwrap()
}

fn openssl_md5(name: &str) -> String {
    sealcell_testkit::transcript::pki_facts().unwrap()[name][0].clone()
}

#[test]
fn credentials_through_ublox_cellular_rs_before_and_after_the_seal() {
    let (_dir, emulator, stream) = start();
    let mut buf = [0u8; 4096];
    let mut client = SimpleClient::new(
        TcpIo(stream),
        AtDigester::<Urc>::new(),
        &mut buf,
        Config::new(),
    );
    client.send(&SetEcho { enabled: Echo::Off }).expect("ATE0");

    for round in ["unsealed", "sealed"] {
        if round == "sealed" {
            client
                .send(&Seal { password: "my_pwd" })
                .expect("AT+USECCFG=0,1");
        }
        let imports: [(SecurityDataType, &str, &str, Option<&str>, &str); 3] = [
            (
                SecurityDataType::TrustedRootCA,
                "RootCA",
                "root.pem",
                None,
                "root.pem",
            ),
            (
                SecurityDataType::ClientPrivateKey,
                "DeviceKey",
                "client-pkcs8-enc.pem",
                Some("keypass123"),
                "client-pkcs8.pem",
            ),
            (
                SecurityDataType::SignatureVerificationCertificate,
                "FwCert",
                "verify.der",
                None,
                "verify.der",
            ),
        ];
        for (data_type, name, file, password, md5_of) in imports {
            let data = pki(file);
            client
                .send(&PrepareSecurityDataImport {
                    data_type,
                    internal_name: name,
                    data_size: data.len(),
                    password,
                })
                .unwrap_or_else(|e| panic!("{round}: prompt for {name}: {e:?}"));
            let imported = client
                .send(&SendSecurityDataImport {
                    data: atat::serde_bytes::Bytes::new(&data),
                })
                .unwrap_or_else(|e| panic!("{round}: import of {name}: {e:?}"));
            assert_eq!(imported.internal_name.as_str(), name);
            assert_eq!(
                imported.md5_string.as_str(),
                openssl_md5(md5_of),
                "{round}: {name}"
            );
        }
        let md5 = client
            .send(&RetrieveSecurityMd5 {
                data_type: SecurityDataType::ClientPrivateKey,
                internal_name: "DeviceKey",
            })
            .expect("AT+USECMNG=4");
        assert_eq!(md5.md5_string.as_str(), openssl_md5("client-pkcs8.pem"));
        client
            .send(&DeleteSecurityData {
                data_type: SecurityDataType::TrustedRootCA,
                internal_name: "RootCA",
            })
            .expect("AT+USECMNG=2");
        client
            .send(&DeleteSecurityData {
                data_type: SecurityDataType::SignatureVerificationCertificate,
                internal_name: "FwCert",
            })
            .expect("AT+USECMNG=2");
        // The crate's list type (`Vec<SecurityData, 3>`) is read by serde_at, whose sequence
        // reader only continues at an element starting with '+': it parses a one-item list of
        // the contract's unprefixed lines, and none longer (see the closing notes).
        let listed = client.send(&ListSecurityData).expect("AT+USECMNG=3");
        assert_eq!(listed.len(), 1, "{round}");
        assert!(
            client
                .send(&RetrieveSecurityMd5 {
                    data_type: SecurityDataType::TrustedRootCA,
                    internal_name: "RootCA"
                })
                .is_err()
        );
        if round == "sealed" {
            // A second seal is refused, and the client sees the error.
            assert!(client.send(&Seal { password: "again" }).is_err());
        }
    }
    emulator.stop();
}

/// The network as the crate's network-service and packet-domain structs read it (at-contract
/// §1.1): registration reports with location, the signal of the serving cell, the contexts.
#[test]
fn network_registration_and_contexts_through_ublox_cellular_rs() {
    use ublox_cellular::command::network_service::GetSignalQuality;
    use ublox_cellular::command::network_service::types::RatAct;
    use ublox_cellular::command::psn::types::{
        EPSNetworkRegistrationStat, EPSNetworkRegistrationUrcConfig, GPRSNetworkRegistrationStat,
        GPRSNetworkRegistrationUrcConfig, PDPContextStatus,
    };
    use ublox_cellular::command::psn::{
        GetEPSNetworkRegistrationStatus, GetGPRSNetworkRegistrationStatus, GetPDPContextState,
        SetEPSNetworkRegistrationStatus, SetGPRSNetworkRegistrationStatus,
    };

    let (_dir, emulator, stream) = start();
    let mut buf = [0u8; 4096];
    let mut client = SimpleClient::new(
        TcpIo(stream),
        AtDigester::<Urc>::new(),
        &mut buf,
        Config::new(),
    );
    client.send(&SetEcho { enabled: Echo::Off }).expect("ATE0");

    client
        .send(&SetEPSNetworkRegistrationStatus {
            n: EPSNetworkRegistrationUrcConfig::UrcVerbose,
        })
        .expect("AT+CEREG=2");
    let eps = client
        .send(&GetEPSNetworkRegistrationStatus)
        .expect("AT+CEREG?");
    assert!(eps.n == EPSNetworkRegistrationUrcConfig::UrcVerbose);
    assert!(eps.stat == EPSNetworkRegistrationStat::Registered);
    assert_eq!(eps.tac.as_deref(), Some("0001"));
    assert_eq!(eps.ci.as_deref(), Some("01A2D001"));
    assert!(eps.act == Some(RatAct::Lte));

    client
        .send(&SetGPRSNetworkRegistrationStatus {
            n: GPRSNetworkRegistrationUrcConfig::UrcVerbose,
        })
        .expect("AT+CGREG=2");
    let gprs = client
        .send(&GetGPRSNetworkRegistrationStatus)
        .expect("AT+CGREG?");
    assert!(gprs.stat == GPRSNetworkRegistrationStat::Registered);
    assert_eq!(gprs.lac.as_deref(), Some("0001"));

    // +CESQ: RSRQ index 22 (-9 dB) and RSRP index 51 (-90 dBm), the cell +UCGED describes.
    let signal = client.send(&GetSignalQuality).expect("AT+CESQ");
    assert_eq!(
        (signal.rxlev, signal.ber, signal.rscp, signal.ecn0),
        (99, 99, 255, 255)
    );
    assert_eq!((signal.rsrq, signal.rsrp), (22, 51));

    let contexts = client.send(&GetPDPContextState).expect("AT+CGACT?");
    assert_eq!(contexts.len(), 1);
    assert_eq!(contexts[0].cid.0, 1);
    assert!(contexts[0].status == PDPContextStatus::Activated);
    emulator.stop();
}

/// The exact bytes atat 0.25 puts on the wire for a command.
fn wire<A: atat::AtatCmd>(cmd: &A) -> String {
    let mut out = vec![0u8; 1024];
    let n = cmd.write(&mut out);
    text(&out[..n])
}

/// The socket and DNS structs 0.5 compiles without its `internal-network-stack` feature
/// (at-contract §8): +USOCR for TCP and UDP, +USOCL, +UDNSRN through the host's resolver.
#[test]
fn sockets_and_dns_through_ublox_cellular_rs() {
    use ublox_cellular::command::dns::ResolveNameIp;
    use ublox_cellular::command::dns::types::ResolutionType;
    use ublox_cellular::command::ip_transport_layer::types::SocketProtocol;
    use ublox_cellular::command::ip_transport_layer::{CloseSocket, CreateSocket};

    let (_dir, emulator, stream) = start();
    let mut buf = [0u8; 4096];
    let mut client = SimpleClient::new(
        TcpIo(stream),
        AtDigester::<Urc>::new(),
        &mut buf,
        Config::new(),
    );
    client.send(&SetEcho { enabled: Echo::Off }).expect("ATE0");

    let tcp = CreateSocket {
        protocol: SocketProtocol::TCP,
        local_port: None,
        preferred_protocol_type: None,
        cid: None,
        report_aon: None,
    };
    assert_eq!(wire(&tcp), "AT+USOCR=6\r");
    assert_eq!(client.send(&tcp).expect("AT+USOCR=6").socket, 0);

    let udp = CreateSocket {
        protocol: SocketProtocol::UDP,
        ..tcp.clone()
    };
    assert_eq!(wire(&udp), "AT+USOCR=17\r");
    assert_eq!(client.send(&udp).expect("AT+USOCR=17").socket, 1);

    let close = CloseSocket { socket: 0 };
    assert_eq!(wire(&close), "AT+USOCL=0\r");
    client.send(&close).expect("AT+USOCL=0");
    // The lowest free id is reused.
    assert_eq!(client.send(&tcp).expect("AT+USOCR=6 again").socket, 0);
    for socket in [0, 1] {
        client.send(&CloseSocket { socket }).expect("AT+USOCL");
    }
    // A closed socket is an error the client sees, and the channel goes on.
    assert!(client.send(&CloseSocket { socket: 1 }).is_err());

    let lookup = ResolveNameIp {
        resolution_type: ResolutionType::DomainNameToIp,
        ip_domain_string: "localhost",
    };
    assert_eq!(wire(&lookup), "AT+UDNSRN=0,\"localhost\"\r");
    let resolved = client.send(&lookup).expect("AT+UDNSRN=0");
    assert_eq!(resolved.ip_domain_string.as_str(), "127.0.0.1");

    let model = client.send(&GetModelId).expect("AT+CGMM after the sockets");
    assert_eq!(text(&model.model), "TOBY-L210");
    emulator.stop();
}

// ublox-cellular-rs 0.4.0: the socket command set 0.5 does not compile (see
// `tests/support/ucr04_driver.rs` for why it is a program of its own).

/// Builds the scratch package whose binary is `tests/support/ucr04_driver.rs` (with
/// ublox-cellular-rs 0.4.0, pinned by `ucr04_driver.lock`; the first build fetches its crates
/// from crates.io), and returns the binary.
fn build_driver() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ublox-cellular-rs-0.4");
    std::fs::create_dir_all(&dir).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/ucr04_driver.rs");
    let manifest = format!(
        r#"[package]
name = "ucr04-driver"
version = "0.0.0"
edition = "2024"
publish = false

[[bin]]
name = "ucr04-driver"
path = {source:?}

[dependencies]
ublox-cellular = {{ package = "ublox-cellular-rs", version = "=0.4.0", default-features = false, features = ["toby-r2", "socket-tcp", "socket-udp"] }}
no-std-net = "0.5"

# Not a member of the sealcell workspace: its own lock file.
[workspace]
"#
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    // The versions this test was written against, whatever the registry has since.
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/ucr04_driver.lock");
    std::fs::copy(lock, dir.join("Cargo.lock")).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = dir.join("target");
    let out = Command::new(cargo)
        .args(["build", "--locked", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building the ublox-cellular-rs 0.4.0 driver ({}; the first build fetches its \
         crates from crates.io):\n{}",
        dir.join("Cargo.toml").display(),
        String::from_utf8_lossy(&out.stderr)
    );
    target.join("debug/ucr04-driver")
}

#[test]
fn sockets_through_ublox_cellular_rs_0_4() {
    let driver = build_driver();
    let dir = tempfile::tempdir().unwrap();
    let module = Module::open(test_config(dir.path()), system_now()).unwrap();
    let mut emulator = Emulator::new(module).unwrap();
    let addr = emulator.listen_tcp("127.0.0.1:0").unwrap();
    let out = Command::new(driver).arg(addr.to_string()).output().unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the 0.4.0 driver failed");
    emulator.stop();
}
