//! The module's data directory (architecture.md, "The module's data directory"):
//!
//! ```text
//! DIR/otp/duk.bin        32-byte device-unique key (mode 0400): the simulated hardware fuse
//! DIR/otp/identity.toml  IMEI, model, serial, SIM identity: fixed at first start
//! DIR/otp/counter        simulated monotonic counter (written by the store)
//! DIR/nvm.toml           persistent settings
//! DIR/fs/USER/<name>     module file system, user area
//! DIR/fs/FOAT/<name>     firmware-update area
//! DIR/sec/               the credential store; never visible through the file system
//! DIR/fw/state.toml      installed firmware version and install history
//! ```
//!
//! A module is created on the first start of a directory without `otp/`. Creation builds the
//! whole `otp/` in a staging directory and renames it into place last, so a crash during
//! creation leaves no half-made module: the next start finds no `otp/` and creates one.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::durable;
use crate::identity::{Identity, Imei, Model};

/// Length of the device-unique key.
pub const DUK_LEN: usize = 32;

/// Paths inside one module's data directory.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

/// Why a data directory could not be opened or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// A file system operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// `otp/identity.toml` (or another state file) does not parse.
    #[error("{path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The device key has the wrong length.
    #[error("{path} must hold exactly {DUK_LEN} bytes, found {found}")]
    BadDeviceKey {
        /// The key file.
        path: PathBuf,
        /// Its length.
        found: u64,
    },
    /// `--imei` or `--model` differs from the identity fixed at creation.
    #[error("the module in {dir} was made as {existing}; {requested} cannot change it")]
    IdentityConflict {
        /// The data directory.
        dir: PathBuf,
        /// The existing value.
        existing: String,
        /// The requested value.
        requested: String,
    },
    /// The OS random source failed.
    #[error("the OS random source failed: {0}")]
    Random(getrandom::Error),
}

/// Result of opening or creating a module directory.
#[derive(Debug)]
pub struct Opened {
    /// The module's identity.
    pub identity: Identity,
    /// Whether this start created the module.
    pub created: bool,
}

impl DataDir {
    /// The layout rooted at `root` (nothing is touched yet).
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    /// The data directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `otp/`.
    pub fn otp(&self) -> PathBuf {
        self.root.join("otp")
    }
    /// `otp/duk.bin`.
    pub fn duk(&self) -> PathBuf {
        self.otp().join("duk.bin")
    }
    /// `otp/identity.toml`.
    pub fn identity(&self) -> PathBuf {
        self.otp().join("identity.toml")
    }
    /// `otp/counter`.
    pub fn counter(&self) -> PathBuf {
        self.otp().join("counter")
    }
    /// `nvm.toml`.
    pub fn nvm(&self) -> PathBuf {
        self.root.join("nvm.toml")
    }
    /// `fs/`.
    pub fn fs(&self) -> PathBuf {
        self.root.join("fs")
    }
    /// `sec/`.
    pub fn sec(&self) -> PathBuf {
        self.root.join("sec")
    }
    /// `fw/`.
    pub fn fw(&self) -> PathBuf {
        self.root.join("fw")
    }
    /// `fw/state.toml`.
    pub fn fw_state(&self) -> PathBuf {
        self.fw().join("state.toml")
    }
    fn staging(&self) -> PathBuf {
        self.root.join(":otp-staging")
    }

    /// Whether a module exists here (its `otp/` is in place).
    pub fn exists(&self) -> bool {
        self.identity().is_file()
    }

    /// Opens the module here, creating it first when the directory holds none.
    pub fn open_or_create(
        &self,
        model: Option<Model>,
        imei: Option<Imei>,
        now_unix: u64,
    ) -> Result<Opened, OpenError> {
        let created = !self.exists();
        if created {
            self.create(model.unwrap_or(Model::TobyL210), imei.clone(), now_unix)?;
        }
        let identity = self.load_identity()?;
        if let Some(m) = model.filter(|m| *m != identity.model) {
            return Err(OpenError::IdentityConflict {
                dir: self.root.clone(),
                existing: format!("a {}", identity.model),
                requested: format!("--model {m}"),
            });
        }
        if let Some(i) = imei.filter(|i| *i != identity.imei) {
            return Err(OpenError::IdentityConflict {
                dir: self.root.clone(),
                existing: format!("IMEI {}", identity.imei),
                requested: format!("--imei {i}"),
            });
        }
        self.check_device_key()?;
        for dir in [
            self.fs().join("USER"),
            self.fs().join("FOAT"),
            self.sec(),
            self.fw(),
        ] {
            durable::create_dir(&dir).map_err(io_err("create", &dir))?;
        }
        Ok(Opened { identity, created })
    }

    fn create(&self, model: Model, imei: Option<Imei>, now_unix: u64) -> Result<(), OpenError> {
        durable::create_dir(&self.root).map_err(io_err("create", &self.root))?;
        let staging = self.staging();
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(io_err("remove", &staging))?;
        }
        fs::create_dir(&staging).map_err(io_err("create", &staging))?;

        let mut duk = [0u8; DUK_LEN];
        getrandom::fill(&mut duk).map_err(OpenError::Random)?;
        let duk_path = staging.join("duk.bin");
        let write_duk = || -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o400)
                .open(&duk_path)?;
            f.write_all(&duk)?;
            f.sync_all()
        };
        let written = write_duk();
        duk.iter_mut().for_each(|b| *b = 0);
        written.map_err(io_err("write", &duk_path))?;

        let identity = Identity::generate(model, imei, now_unix).map_err(OpenError::Random)?;
        let text = toml::to_string(&identity).map_err(|e| OpenError::Damaged {
            path: self.identity(),
            reason: e.to_string(),
        })?;
        let id_path = staging.join("identity.toml");
        durable::atomic_write(&id_path, text.as_bytes()).map_err(io_err("write", &id_path))?;

        // The rename makes the module exist; everything before it is invisible.
        fs::rename(&staging, self.otp()).map_err(io_err("rename", &staging))?;
        durable::sync_dir(&self.root).map_err(io_err("sync", &self.root))?;
        tracing::info!(imei = %identity.imei, model = %identity.model, dir = %self.root.display(), "created a new module");
        Ok(())
    }

    /// Reads `otp/identity.toml`.
    pub fn load_identity(&self) -> Result<Identity, OpenError> {
        let path = self.identity();
        let text = fs::read_to_string(&path).map_err(io_err("read", &path))?;
        toml::from_str(&text).map_err(|e| OpenError::Damaged {
            path,
            reason: e.message().to_string(),
        })
    }

    fn check_device_key(&self) -> Result<(), OpenError> {
        let path = self.duk();
        let len = fs::metadata(&path).map_err(io_err("read", &path))?.len();
        if len != DUK_LEN as u64 {
            return Err(OpenError::BadDeviceKey { path, found: len });
        }
        Ok(())
    }
}

/// Maps an I/O error to [`OpenError::Io`] naming the action and path.
pub fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> OpenError + use<> {
    let path = path.to_path_buf();
    move |source| OpenError::Io { what, path, source }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn creates_once_then_reopens_the_same_identity() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path().join("m"));
        let first = dir.open_or_create(None, None, 1).unwrap();
        assert!(first.created);
        let mode = fs::metadata(dir.duk()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o400);
        assert_eq!(fs::metadata(dir.duk()).unwrap().len(), 32);
        let again = dir.open_or_create(None, None, 2).unwrap();
        assert!(!again.created);
        assert_eq!(first.identity, again.identity);
        assert!(dir.fs().join("USER").is_dir() && dir.fs().join("FOAT").is_dir());
    }

    #[test]
    fn identity_conflicts_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        let imei: Imei = "490154203237518".parse().unwrap();
        dir.open_or_create(Some(Model::TobyL280), Some(imei.clone()), 0)
            .unwrap();
        assert_eq!(dir.load_identity().unwrap().imei, imei);
        assert!(matches!(
            dir.open_or_create(Some(Model::TobyL210), None, 0),
            Err(OpenError::IdentityConflict { .. })
        ));
        let other: Imei = "35925406000000".parse().unwrap();
        assert!(matches!(
            dir.open_or_create(None, Some(other), 0),
            Err(OpenError::IdentityConflict { .. })
        ));
    }

    #[test]
    fn a_crash_during_creation_leaves_no_module() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        fs::create_dir_all(dir.staging()).unwrap();
        fs::write(dir.staging().join("duk.bin"), b"half").unwrap();
        assert!(!dir.exists());
        let opened = dir.open_or_create(None, None, 0).unwrap();
        assert!(opened.created);
        assert!(!dir.staging().exists());
    }
}
