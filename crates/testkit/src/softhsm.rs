//! A throw-away SoftHSM2 token for the PKCS#11 tests: its own `softhsm2.conf` and token
//! directory in a temporary directory, so nothing outside it is read or changed.
//!
//! Nothing process-global is set: pass [`SoftHsm::conf`] to child processes as `SOFTHSM2_CONF`
//! ([`SoftHsm::env`] lists every variable a `sealcell` child needs).
//!
//! Without SoftHSM2 installed, [`SoftHsm::start`] panics with the install line: a PKCS#11 test
//! never passes by skipping.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where Debian and Ubuntu put SoftHSM2's PKCS#11 library, most common first.
pub const MODULE_CANDIDATES: [&str; 3] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
];

/// What to run when SoftHSM2 is missing.
pub const INSTALL: &str = "apt-get install -y softhsm2";

/// A SoftHSM2 configuration with one initialized token.
pub struct SoftHsm {
    dir: tempfile::TempDir,
    conf: PathBuf,
    module: PathBuf,
    token: String,
    pin: String,
    so_pin: String,
}

impl SoftHsm {
    /// The token label [`SoftHsm::start`] gives.
    pub const TOKEN: &'static str = "sealcell-test";
    /// The user PIN it sets.
    pub const PIN: &'static str = "31415926";
    /// The security officer's PIN it sets.
    pub const SO_PIN: &'static str = "27182818";

    /// A new configuration with the token [`SoftHsm::TOKEN`] (PIN [`SoftHsm::PIN`]).
    pub fn start() -> SoftHsm {
        Self::with_token(Self::TOKEN)
    }

    /// A new configuration with one token labelled `label`.
    pub fn with_token(label: &str) -> SoftHsm {
        let module = module_path();
        util_path();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap_or_else(|e| panic!("mkdir {}: {e}", tokens.display()));
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n\
                 slots.removable = false\n",
                tokens.display()
            ),
        )
        .unwrap_or_else(|e| panic!("write {}: {e}", conf.display()));
        let hsm = SoftHsm {
            dir,
            conf,
            module,
            token: label.to_string(),
            pin: Self::PIN.to_string(),
            so_pin: Self::SO_PIN.to_string(),
        };
        hsm.init_token(label);
        hsm
    }

    /// Initializes one more token labelled `label` (same PINs) in a free slot.
    pub fn init_token(&self, label: &str) {
        self.util(&[
            "--init-token",
            "--free",
            "--label",
            label,
            "--so-pin",
            &self.so_pin,
            "--pin",
            &self.pin,
        ]);
    }

    /// The `softhsm2.conf` to pass as `SOFTHSM2_CONF`.
    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// The PKCS#11 library.
    pub fn module(&self) -> &Path {
        &self.module
    }

    /// The first token's label.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The user PIN.
    pub fn pin(&self) -> &str {
        &self.pin
    }

    /// The temporary directory (removed on drop) for the tests' own files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The environment a child process needs to use the token: `SOFTHSM2_CONF` and
    /// `SEALCELL_PKCS11_MODULE`.
    pub fn env(&self) -> [(&'static str, &Path); 2] {
        [
            ("SOFTHSM2_CONF", self.conf.as_path()),
            ("SEALCELL_PKCS11_MODULE", self.module.as_path()),
        ]
    }

    /// Imports the private key of `key_pem` (any PEM openssl reads) into the first token as
    /// `label` with `CKA_ID` `id_hex`: converted to unencrypted PKCS#8 with
    /// `openssl pkcs8 -topk8 -nocrypt`, then `softhsm2-util --import`.
    pub fn import_key(&self, key_pem: &Path, label: &str, id_hex: &str) {
        let pk8 = self.dir.path().join(format!("import-{id_hex}.pk8"));
        let out = Command::new("openssl")
            .args(["pkcs8", "-topk8", "-nocrypt", "-in"])
            .arg(key_pem)
            .arg("-out")
            .arg(&pk8)
            .output()
            .unwrap_or_else(|e| panic!("run openssl: {e}"));
        check("openssl pkcs8 -topk8 -nocrypt", &out);
        let pk8_arg = pk8.to_string_lossy().into_owned();
        self.util(&[
            "--import",
            &pk8_arg,
            "--token",
            &self.token,
            "--label",
            label,
            "--id",
            id_hex,
            "--pin",
            &self.pin,
        ]);
        let _ = std::fs::remove_file(&pk8);
    }

    /// Runs `softhsm2-util ARGS` with this configuration; panics when it fails.
    pub fn util(&self, args: &[&str]) -> Output {
        let out = Command::new(util_path())
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .unwrap_or_else(|e| panic!("run softhsm2-util: {e}"));
        check(
            &format!("softhsm2-util {}", args.first().unwrap_or(&"")),
            &out,
        );
        out
    }
}

fn check(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// SoftHSM2's PKCS#11 library; panics with the install line when it is not installed.
pub fn module_path() -> PathBuf {
    MODULE_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "SoftHSM2's PKCS#11 library is not installed (looked in {}): run `{INSTALL}`",
                MODULE_CANDIDATES.join(", ")
            )
        })
}

/// `softhsm2-util`; panics with the install line when it is not installed.
fn util_path() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("softhsm2-util"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| panic!("softhsm2-util is not installed: run `{INSTALL}`"))
}
