//! The TLS matrix against loopback servers built with the `openssl` crate (`SslAcceptor` in a
//! thread): the application note's three suites negotiate when configured; a server offering
//! another suite only, or TLS 1.3 only, is refused; root trust; hostname at level 2; dates at
//! level 3; a client certificate the server requires; pinning at every level; SNI.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::ssl::{SslAcceptor, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};
use sealcell_https::{TlsError, TlsProfile, connect};

fn rsa() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

fn ec() -> PKey<Private> {
    PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap()
}

fn cert(
    cn: &str,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    days: (i64, i64),
    dns: Option<&str>,
) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(
        &BigNum::from_u32(rand_serial())
            .unwrap()
            .to_asn1_integer()
            .unwrap(),
    )
    .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    b.set_not_before(&Asn1Time::from_unix(now + days.0 * 86_400).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(now + days.1 * 86_400).unwrap())
        .unwrap();
    match issuer {
        None => {
            b.set_issuer_name(&name).unwrap();
            b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
            b.sign(key, MessageDigest::sha256()).unwrap();
        }
        Some((ca, ca_key)) => {
            b.set_issuer_name(ca.subject_name()).unwrap();
            if let Some(dns) = dns {
                let san = SubjectAlternativeName::new()
                    .dns(dns)
                    .build(&b.x509v3_context(Some(ca), None))
                    .unwrap();
                b.append_extension(san).unwrap();
            }
            b.sign(ca_key, MessageDigest::sha256()).unwrap();
        }
    }
    b.build()
}

fn rand_serial() -> u32 {
    let mut b = [0u8; 4];
    openssl::rand::rand_bytes(&mut b).unwrap();
    u32::from_le_bytes(b) >> 1
}

struct Pki {
    ca: X509,
    other_ca: X509,
    rsa_key: PKey<Private>,
    rsa_cert: X509,
    ec_key: PKey<Private>,
    ec_cert: X509,
    ec_cert_reissued: X509,
    expired: X509,
    client_key: PKey<Private>,
    client_cert: X509,
}

fn pki() -> Pki {
    let ca_key = rsa();
    let ca = cert("Test CA", &ca_key, None, (-1, 3650), None);
    let other_key = rsa();
    let other_ca = cert("Other CA", &other_key, None, (-1, 3650), None);
    let rsa_key = rsa();
    let rsa_cert = cert(
        "fota.example.com",
        &rsa_key,
        Some((&ca, &ca_key)),
        (-1, 365),
        Some("fota.example.com"),
    );
    let ec_key = ec();
    let ec_cert = cert(
        "fota.example.com",
        &ec_key,
        Some((&ca, &ca_key)),
        (-1, 365),
        Some("fota.example.com"),
    );
    let ec_cert_reissued = cert(
        "fota.example.com",
        &ec_key,
        Some((&ca, &ca_key)),
        (-2, 300),
        Some("fota.example.com"),
    );
    let expired = cert(
        "fota.example.com",
        &ec_key,
        Some((&ca, &ca_key)),
        (-30, -1),
        Some("fota.example.com"),
    );
    let client_key = ec();
    let client_cert = cert(
        "Device 42",
        &client_key,
        Some((&ca, &ca_key)),
        (-1, 365),
        None,
    );
    Pki {
        ca,
        other_ca,
        rsa_key,
        rsa_cert,
        ec_key,
        ec_cert,
        ec_cert_reissued,
        expired,
        client_key,
        client_cert,
    }
}

struct Server {
    key: PKey<Private>,
    cert: X509,
    ciphers: &'static str,
    tls13_only: bool,
    require_client_ca: Option<X509>,
}

/// Serves one connection; returns the port and a receiver of (cipher, sni) on success.
fn serve(s: Server) -> (u16, mpsc::Receiver<(String, Option<String>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    b.set_private_key(&s.key).unwrap();
    b.set_certificate(&s.cert).unwrap();
    b.set_cipher_list(s.ciphers).unwrap();
    if s.tls13_only {
        b.set_min_proto_version(Some(SslVersion::TLS1_3)).unwrap();
    }
    if let Some(ca) = s.require_client_ca {
        let mut store = openssl::x509::store::X509StoreBuilder::new().unwrap();
        store.add_cert(ca).unwrap();
        b.set_verify_cert_store(store.build()).unwrap();
        b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    }
    let acceptor = b.build();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        if let Ok(mut tls) = acceptor.accept(stream) {
            let cipher = tls
                .ssl()
                .current_cipher()
                .map(|c| c.name().to_string())
                .unwrap_or_default();
            let sni = tls
                .ssl()
                .servername(openssl::ssl::NameType::HOST_NAME)
                .map(str::to_string);
            let _ = tls.write_all(b"ok");
            let _ = tx.send((cipher, sni));
        }
    });
    (port, rx)
}

const ALL: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";

fn server(key: &PKey<Private>, cert: &X509) -> Server {
    Server {
        key: key.clone(),
        cert: cert.clone(),
        ciphers: ALL,
        tls13_only: false,
        require_client_ca: None,
    }
}

fn try_connect(s: Server, profile: &TlsProfile<'_>) -> Result<(String, Option<String>), TlsError> {
    let (port, rx) = serve(s);
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut tls = connect(profile, "fota.example.com", stream)?;
    let mut buf = [0u8; 2];
    tls.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ok");
    Ok(rx.recv().unwrap())
}

#[test]
fn the_three_suites_negotiate_when_configured_and_nothing_else() {
    let p = pki();
    let root = p.ca.to_der().unwrap();
    for (code, name, rsa_server) in [
        (0xC02B, "ECDHE-ECDSA-AES128-GCM-SHA256", false),
        (0xC02F, "ECDHE-RSA-AES128-GCM-SHA256", true),
        (0xC023, "ECDHE-ECDSA-AES128-SHA256", false),
    ] {
        let s = if rsa_server {
            server(&p.rsa_key, &p.rsa_cert)
        } else {
            server(&p.ec_key, &p.ec_cert)
        };
        let profile = TlsProfile {
            validation: vl(2),
            cipher: Some(code),
            root_der: Some(&root),
            ..Default::default()
        };
        let (cipher, _) = try_connect(s, &profile).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(cipher, name);
        // Automatic also works with a server that offers only that suite.
        let mut s = if rsa_server {
            server(&p.rsa_key, &p.rsa_cert)
        } else {
            server(&p.ec_key, &p.ec_cert)
        };
        s.ciphers = name;
        let auto = TlsProfile {
            validation: vl(2),
            root_der: Some(&root),
            ..Default::default()
        };
        assert_eq!(
            try_connect(s, &auto).unwrap().0,
            name,
            "automatic includes {name}"
        );
    }
    // A server offering only another suite.
    let mut s = server(&p.ec_key, &p.ec_cert);
    s.ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384";
    let profile = TlsProfile {
        validation: vl(1),
        cipher: Some(0xC02B),
        root_der: Some(&root),
        ..Default::default()
    };
    assert!(matches!(
        try_connect(s, &profile),
        Err(TlsError::Handshake(_))
    ));
    // A server speaking TLS 1.3 only: the module is capped at 1.2.
    let mut s = server(&p.ec_key, &p.ec_cert);
    s.tls13_only = true;
    assert!(matches!(
        try_connect(
            s,
            &TlsProfile {
                root_der: Some(&root),
                ..Default::default()
            }
        ),
        Err(TlsError::Handshake(_))
    ));
    // An unknown suite number is a profile error.
    assert!(matches!(
        try_connect(
            server(&p.ec_key, &p.ec_cert),
            &TlsProfile {
                cipher: Some(0x1301),
                ..Default::default()
            }
        ),
        Err(TlsError::Profile(_))
    ));
}

#[test]
fn trust_hostname_and_dates_by_validation_level() {
    let p = pki();
    let root = p.ca.to_der().unwrap();
    let other = p.other_ca.to_der().unwrap();
    let ok = |s: Server, prof: TlsProfile<'_>| try_connect(s, &prof).is_ok();
    let ec = || server(&p.ec_key, &p.ec_cert);
    // Root trust.
    assert!(ok(
        ec(),
        TlsProfile {
            validation: vl(1),
            root_der: Some(&root),
            ..Default::default()
        }
    ));
    assert!(!ok(
        ec(),
        TlsProfile {
            validation: vl(1),
            root_der: Some(&other),
            ..Default::default()
        }
    ));
    assert!(
        !ok(
            ec(),
            TlsProfile {
                validation: vl(1),
                ..Default::default()
            }
        ),
        "no root configured"
    );
    assert!(
        ok(
            ec(),
            TlsProfile {
                validation: vl(0),
                root_der: Some(&other),
                ..Default::default()
            }
        ),
        "level 0 checks nothing"
    );
    // Hostname at level 2 (op 4), not at level 1.
    let host = |h: &'static str, level| TlsProfile {
        validation: vl(level),
        root_der: Some(&root),
        hostname: h,
        ..Default::default()
    };
    assert!(ok(ec(), host("fota.example.com", 2)));
    assert!(!ok(ec(), host("evil.example.com", 2)));
    assert!(ok(ec(), host("evil.example.com", 1)));
    // Dates at level 3 only.
    let expired = || server(&p.ec_key, &p.expired);
    assert!(!ok(
        expired(),
        TlsProfile {
            validation: vl(3),
            root_der: Some(&root),
            ..Default::default()
        }
    ));
    assert!(ok(
        expired(),
        TlsProfile {
            validation: vl(2),
            root_der: Some(&root),
            ..Default::default()
        }
    ));
    assert!(ok(
        ec(),
        TlsProfile {
            validation: vl(3),
            root_der: Some(&root),
            ..Default::default()
        }
    ));
}

#[test]
fn client_certificate_sni_and_pinning() {
    let p = pki();
    let root = p.ca.to_der().unwrap();
    let cc = p.client_cert.to_der().unwrap();
    let ck = p.client_key.private_key_to_der().unwrap();
    let needs_client = || {
        let mut s = server(&p.ec_key, &p.ec_cert);
        s.require_client_ca = Some(p.ca.clone());
        s
    };
    let with_client = TlsProfile {
        validation: vl(1),
        root_der: Some(&root),
        client_cert_der: Some(&cc),
        client_key_der: Some(&ck),
        sni: "fota.example.com",
        ..Default::default()
    };
    let (_, sni) = try_connect(needs_client(), &with_client).unwrap();
    assert_eq!(sni.as_deref(), Some("fota.example.com"));
    assert!(
        try_connect(
            needs_client(),
            &TlsProfile {
                validation: vl(1),
                root_der: Some(&root),
                ..Default::default()
            }
        )
        .is_err()
    );
    // No SNI unless configured.
    let (_, sni) = try_connect(
        server(&p.ec_key, &p.ec_cert),
        &TlsProfile {
            root_der: Some(&root),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(sni, None);

    // Pinning: the same certificate passes every level; a re-issued certificate with the same
    // key passes 0 and 1 but not 2; another key fails every level.
    let same = p.ec_cert.to_der().unwrap();
    let reissued = p.ec_cert_reissued.to_der().unwrap();
    let different = p.rsa_cert.to_der().unwrap();
    for level in 0..=2u8 {
        let pin = |der: &[u8]| {
            try_connect(
                server(&p.ec_key, &p.ec_cert),
                &TlsProfile {
                    validation: vl(1),
                    root_der: Some(&root),
                    pin: Some((der, pl(level))),
                    ..Default::default()
                },
            )
        };
        assert!(pin(&same).is_ok(), "level {level}, same certificate");
        assert_eq!(
            pin(&reissued).is_ok(),
            level < 2,
            "level {level}, re-issued certificate"
        );
        assert!(
            matches!(pin(&different), Err(TlsError::PinMismatch(l)) if l == level),
            "level {level}, other key"
        );
    }
}

/// A validation level by number (the tests read as the wire does).
fn vl(n: u8) -> sealcell_https::ValidationLevel {
    sealcell_https::ValidationLevel::try_from(i64::from(n)).unwrap()
}

/// A pinning level by number.
#[allow(dead_code)]
fn pl(n: u8) -> sealcell_https::PinLevel {
    sealcell_https::PinLevel::try_from(i64::from(n)).unwrap()
}
