//! The installed firmware (`DIR/fw/state.toml`): the version `AT+CGMR` and `ATI9` report, and
//! the install history the firmware-update commands append to.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealcell_store::Storage;
use serde::{Deserialize, Serialize};

use crate::nvm::load_toml;

/// The modem firmware version of a new module.
pub const FACTORY_VERSION: &str = "17.00";
/// The application version of a new module.
pub const FACTORY_APPLICATION: &str = "A01.00";

/// One completed install.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallRecord {
    /// Seconds since the Unix epoch.
    pub time_unix: u64,
    /// The version installed.
    pub version: String,
    /// SHA-256 of the package, lowercase hex.
    pub sha256: String,
    /// Package size in bytes.
    pub size: u64,
    /// How it was installed (`UFWINSTALL`, `UFWUPD`, `UFWSINSTALL`).
    pub method: String,
    /// The verification certificate's internal name, for signed installs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
}

/// The firmware state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareState {
    /// Modem firmware version (`AT+CGMR`).
    pub version: String,
    /// Application version (second part of `ATI9`).
    pub application: String,
    /// Install history, oldest first.
    #[serde(default)]
    pub installs: Vec<InstallRecord>,
}

impl Default for FirmwareState {
    fn default() -> Self {
        FirmwareState {
            version: FACTORY_VERSION.into(),
            application: FACTORY_APPLICATION.into(),
            installs: Vec::new(),
        }
    }
}

/// The state with its file.
#[derive(Debug)]
pub struct FirmwareFile {
    storage: Arc<dyn Storage>,
    path: PathBuf,
    /// Current values.
    pub state: FirmwareState,
}

impl FirmwareFile {
    /// Loads `path`, or the factory state when it does not exist yet.
    pub fn load(storage: Arc<dyn Storage>, path: &Path) -> io::Result<FirmwareFile> {
        let state = load_toml(storage.as_ref(), path)?.unwrap_or_default();
        Ok(FirmwareFile {
            storage,
            path: path.to_path_buf(),
            state,
        })
    }

    /// Writes `next` durably, then adopts it.
    pub fn store(&mut self, next: FirmwareState) -> io::Result<()> {
        let text = toml::to_string(&next).map_err(|e| io::Error::other(e.to_string()))?;
        self.storage.write_atomic(&self.path, text.as_bytes())?;
        self.state = next;
        Ok(())
    }
}

/// How a firmware package is installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateMethod {
    /// `AT+UFWINSTALL`: the package as it is, optionally checked against an MD5.
    Md5Install,
    /// `AT+UFWUPD`: Xmodem-1k transfer, then as `AT+UFWINSTALL`.
    Xmodem,
    /// `AT+UFWSINSTALL`: only with an RSA (or ECDSA) signature checked against a `VC` item.
    Signed,
}

/// The seal's effect on firmware update (application note §2.3): the seal enables
/// `+UFWSINSTALL` and shuts the MD5-only paths `+UFWINSTALL` and `+UFWUPD`. Refusals are
/// `+CME ERROR: 3` (operation not allowed).
pub fn update_allowed(sealed: bool, method: UpdateMethod) -> Result<(), sealcell_at::CmeError> {
    match (sealed, method) {
        (true, UpdateMethod::Signed) | (false, UpdateMethod::Md5Install | UpdateMethod::Xmodem) => {
            Ok(())
        }
        _ => Err(sealcell_at::CmeError::OperationNotAllowed),
    }
}

/// The update package's name in the `FOAT` area.
pub const PACKAGE: &str = "updatePackage.bin";

/// The longest `VERSION` line taken from a package.
///
/// # Security
/// A package cannot make the module report an arbitrarily long version.
pub const MAX_VERSION_LEN: usize = 32;

/// The firmware version a package carries: the first line of its ZIP entry `VERSION`, when it
/// is a ZIP with one; `None` otherwise (the version then stays as it is).
pub fn package_version(package: impl std::io::Read + std::io::Seek) -> Option<String> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(package).ok()?;
    let entry = archive.by_name("VERSION").ok()?;
    let mut text = String::new();
    entry.take(1024).read_to_string(&mut text).ok()?;
    let line = text.lines().next()?.trim();
    (!line.is_empty()
        && line.len() <= MAX_VERSION_LEN
        && line.chars().all(|c| c.is_ascii_graphic() || c == ' '))
    .then(|| line.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seal_switches_the_update_paths() {
        use UpdateMethod::*;
        let refused = Err(sealcell_at::CmeError::OperationNotAllowed);
        assert_eq!(update_allowed(false, Md5Install), Ok(()));
        assert_eq!(update_allowed(false, Xmodem), Ok(()));
        assert_eq!(update_allowed(false, Signed), refused);
        assert_eq!(update_allowed(true, Md5Install), refused);
        assert_eq!(update_allowed(true, Xmodem), refused);
        assert_eq!(update_allowed(true, Signed), Ok(()));
    }
}
