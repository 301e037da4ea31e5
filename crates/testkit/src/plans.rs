//! Provisioning plans for the host-side suites: one full plan over the openssl-made fixtures
//! (every credential type, the client key encrypted, a complete profile, optionally a seal), and
//! the secrets that must never appear in any output.

use std::path::{Path, PathBuf};

use crate::transcript::pki_dir;

/// The seal password the plan uses.
pub const SEAL_PASSWORD: &str = "Seal-Pa55word-of-the-test";
/// The fixture client key's password.
pub const KEY_PASSWORD: &str = "keypass123";

/// `tests/fixtures/fw`.
pub fn fw_dir() -> PathBuf {
    pki_dir().parent().unwrap().join("fw")
}

/// The full plan: every credential type (the key encrypted), a complete profile, a seal.
pub fn write_plan(dir: &Path, seal: bool) -> PathBuf {
    std::fs::write(dir.join("seal.txt"), format!("{SEAL_PASSWORD}\n")).unwrap();
    std::fs::write(dir.join("keypass.txt"), KEY_PASSWORD).unwrap();
    let pki = pki_dir();
    let p = |n: &str| pki.join(n).display().to_string();
    let plan = format!(
        r#"{seal}
[[credential]]
type = "ca"
name = "RootCA"
file = "{root}"

[[credential]]
type = "client-cert"
name = "Device"
file = "{client}"

[[credential]]
type = "client-key"
name = "DeviceKey"
file = "{key}"
password_file = "keypass.txt"

[[credential]]
type = "server-cert"
name = "ServerPin"
file = "{server}"

[[credential]]
type = "verification-cert"
name = "CustomerFWVerificationCert"
file = "{verify}"

[[profile]]
id = 1
validation = 2
tls_version = 3
cipher = "C02B"
root = "RootCA"
hostname = "fota.example.com"
sni = "fota.example.com"
client_cert = "Device"
client_key = "DeviceKey"
pin = {{ cert = "ServerPin", level = 2 }}
"#,
        seal = if seal {
            "[seal]\npassword_file = \"seal.txt\"\n"
        } else {
            ""
        },
        root = p("root.pem"),
        client = p("client.der"),
        key = p("client-pkcs8-enc.pem"),
        server = p("server.pem"),
        verify = fw_dir().join("signer.pem").display(),
    );
    let path = dir.join("plan.toml");
    std::fs::write(&path, plan).unwrap();
    path
}

/// What must never appear: the passwords and the private key's PEM body lines.
pub fn secrets() -> Vec<String> {
    let key = std::fs::read_to_string(pki_dir().join("client-pkcs8-enc.pem")).unwrap();
    let mut s: Vec<String> = key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::to_string)
        .collect();
    s.push(SEAL_PASSWORD.into());
    s.push(KEY_PASSWORD.into());
    s
}

/// Panics when `text` holds any of [`secrets`].
pub fn assert_no_secret(what: &str, text: &str) {
    for secret in secrets() {
        assert!(
            !text.contains(&secret),
            "{what} contains a secret: {secret}"
        );
    }
}
