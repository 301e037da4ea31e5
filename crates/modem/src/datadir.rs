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
//! A module is created on the first start of a directory without `otp/identity.toml`. The
//! device key is written first and the identity last, each atomically, so a crash during
//! creation leaves no half-made module: the next start finds no identity and creates the module
//! again (with a new device key).
//!
//! All access goes through a [`Storage`], so the same code runs on the real file system and on
//! the crash-simulating disk of the tests.
//!
//! The directory is the module's alone: on the host file system every directory is 0700 and
//! every file 0600 (the device key 0400), as [`FsStorage`] writes them, and a data directory
//! an older version left 0755 is made 0700 when the module opens (logged at info). Files it
//! wrote 0644 stay so until rewritten, but behind an owner-only root no one else reaches them.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealcell_store::{FsStorage, Storage};

use crate::identity::{Identity, Imei, Model};

/// Length of the device-unique key.
pub const DUK_LEN: usize = 32;

/// Paths inside one module's data directory, and the storage that holds them.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
    storage: Arc<dyn Storage>,
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

/// `otp/duk.bin`, relative to the data directory.
pub const DUK: &str = "otp/duk.bin";
/// `otp/identity.toml`.
pub const IDENTITY: &str = "otp/identity.toml";
/// `otp/counter`.
pub const COUNTER: &str = "otp/counter";
/// `nvm.toml`.
pub const NVM: &str = "nvm.toml";
/// `fs/`.
pub const FS: &str = "fs";
/// `sec/`.
pub const SEC: &str = "sec";
/// `fw/state.toml`.
pub const FW_STATE: &str = "fw/state.toml";

impl DataDir {
    /// The data directory `root` on the host file system (nothing is touched yet).
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        let root = root.into();
        DataDir {
            storage: Arc::new(FsStorage::new(&root)),
            root,
        }
    }

    /// A data directory on another storage; `root` is only used to name it in messages.
    pub fn with_storage(root: impl Into<PathBuf>, storage: Arc<dyn Storage>) -> DataDir {
        DataDir {
            root: root.into(),
            storage,
        }
    }

    /// The data directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The storage holding it.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// A path of the data directory for messages.
    pub fn display(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Whether a module exists here (its identity is in place).
    pub fn exists(&self) -> bool {
        self.storage.is_file(Path::new(IDENTITY))
    }

    /// Opens the module here, creating it first when the directory holds none.
    pub fn open_or_create(
        &self,
        model: Option<Model>,
        imei: Option<Imei>,
        now_unix: u64,
    ) -> Result<Opened, OpenError> {
        self.storage
            .restrict_root()
            .map_err(self.io_err("restrict the permissions of", ""))?;
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
        for dir in ["fs/USER", "fs/FOAT", SEC, "fw"] {
            self.storage
                .create_dir_all(Path::new(dir))
                .map_err(self.io_err("create", dir))?;
        }
        // Temporary files of writes a crash interrupted (nvm.toml, fw/state.toml, the identity).
        // The file-system areas are swept by the file system, the store by the store.
        for dir in ["", "otp", "fw"] {
            let names = self
                .storage
                .list(Path::new(dir))
                .map_err(self.io_err("list", dir))?;
            for name in names
                .into_iter()
                .filter(|n| sealcell_store::is_temp_name(n))
            {
                let path = Path::new(dir).join(&name);
                self.storage
                    .remove(&path)
                    .map_err(self.io_err("remove", dir))?;
                tracing::info!(file = %path.display(), "removed a temporary file left by a crash");
            }
        }
        Ok(Opened { identity, created })
    }

    fn create(&self, model: Model, imei: Option<Imei>, now_unix: u64) -> Result<(), OpenError> {
        self.storage
            .create_dir_all(Path::new("otp"))
            .map_err(self.io_err("create", "otp"))?;
        let mut duk = [0u8; DUK_LEN];
        getrandom::fill(&mut duk).map_err(OpenError::Random)?;
        let written = self
            .storage
            .write_atomic_mode(Path::new(DUK), &duk, Some(0o400));
        duk.iter_mut().for_each(|b| *b = 0);
        written.map_err(self.io_err("write", DUK))?;

        let identity = Identity::generate(model, imei, now_unix).map_err(OpenError::Random)?;
        let text = toml::to_string(&identity).map_err(|e| OpenError::Damaged {
            path: self.display(IDENTITY),
            reason: e.to_string(),
        })?;
        // The identity makes the module exist; everything before it is redone after a crash.
        self.storage
            .write_atomic(Path::new(IDENTITY), text.as_bytes())
            .map_err(self.io_err("write", IDENTITY))?;
        tracing::info!(imei = %identity.imei, model = %identity.model, dir = %self.root.display(), "created a new module");
        Ok(())
    }

    /// Reads `otp/identity.toml`.
    pub fn load_identity(&self) -> Result<Identity, OpenError> {
        let bytes = self
            .storage
            .read(Path::new(IDENTITY))
            .map_err(self.io_err("read", IDENTITY))?;
        let text = String::from_utf8(bytes).map_err(|_| OpenError::Damaged {
            path: self.display(IDENTITY),
            reason: "not UTF-8".into(),
        })?;
        toml::from_str(&text).map_err(|e| OpenError::Damaged {
            path: self.display(IDENTITY),
            reason: e.message().to_string(),
        })
    }

    fn check_device_key(&self) -> Result<(), OpenError> {
        let len = self
            .storage
            .len(Path::new(DUK))
            .map_err(self.io_err("read", DUK))?;
        if len != DUK_LEN as u64 {
            return Err(OpenError::BadDeviceKey {
                path: self.display(DUK),
                found: len,
            });
        }
        Ok(())
    }

    /// The device key and IMEI that bind the credential store to this module.
    pub fn device_secrets(
        &self,
        identity: &Identity,
    ) -> Result<sealcell_store::DeviceSecrets, OpenError> {
        let bytes = zeroize::Zeroizing::new(
            self.storage
                .read(Path::new(DUK))
                .map_err(self.io_err("read", DUK))?,
        );
        if bytes.len() != DUK_LEN {
            return Err(OpenError::BadDeviceKey {
                path: self.display(DUK),
                found: bytes.len() as u64,
            });
        }
        // Copied straight into its zeroizing box: no stray copy on the stack.
        let mut duk = Box::new([0u8; DUK_LEN]);
        duk.copy_from_slice(&bytes);
        Ok(sealcell_store::DeviceSecrets {
            duk: secrecy::SecretBox::new(duk),
            imei: identity.imei.as_str().to_string(),
        })
    }

    /// Maps an I/O error on `rel` to [`OpenError::Io`].
    pub fn io_err(
        &self,
        what: &'static str,
        rel: &str,
    ) -> impl FnOnce(io::Error) -> OpenError + use<> {
        io_err(what, &self.root.join(rel))
    }
}

/// Maps an I/O error to [`OpenError::Io`] naming the action and path.
pub fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> OpenError + use<> {
    let path = path.to_path_buf();
    move |source| OpenError::Io { what, path, source }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use sealcell_store::{CrashMode, SimStorage};

    use super::*;

    #[test]
    fn creates_once_then_reopens_the_same_identity() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path().join("m"));
        let first = dir.open_or_create(None, None, 1).unwrap();
        assert!(first.created);
        let duk = tmp.path().join("m").join(DUK);
        let mode = fs::metadata(&duk).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o400);
        assert_eq!(fs::metadata(&duk).unwrap().len(), 32);
        let again = dir.open_or_create(None, None, 2).unwrap();
        assert!(!again.created);
        assert_eq!(first.identity, again.identity);
        assert!(tmp.path().join("m/fs/USER").is_dir() && tmp.path().join("m/fs/FOAT").is_dir());
    }

    /// Every directory and file under `root` with its permission bits, sorted by path.
    fn modes(root: &Path) -> Vec<(String, bool, u32)> {
        let mut found = Vec::new();
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let meta = fs::metadata(&path).unwrap();
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                found.push((rel, meta.is_dir(), meta.permissions().mode() & 0o7777));
                if meta.is_dir() {
                    pending.push(path);
                }
            }
        }
        found.sort();
        found
    }

    /// Asserts the root and every directory are 0700, the device key 0400, every other file
    /// 0600; returns the files found.
    fn assert_owner_only(root: &Path) -> Vec<String> {
        let mode = fs::metadata(root).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700, "the data directory");
        let mut files = Vec::new();
        for (path, dir, mode) in modes(root) {
            let want = match (dir, path.as_str()) {
                (true, _) => 0o700,
                (false, DUK) => 0o400,
                (false, _) => 0o600,
            };
            assert_eq!(mode, want, "{path}: {mode:04o}");
            if !dir {
                files.push(path);
            }
        }
        files
    }

    /// A data directory as an older version left it: 0755.
    fn loose_root(tmp: &tempfile::TempDir) -> PathBuf {
        let root = tmp.path().join("m");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        root
    }

    #[test]
    fn the_layout_is_owner_only_and_a_loose_root_is_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let root = loose_root(&tmp);
        DataDir::new(&root).open_or_create(None, None, 1).unwrap();
        assert_eq!(assert_owner_only(&root), [DUK, IDENTITY]);
    }

    #[test]
    fn a_module_writes_only_owner_only_files() {
        use crate::{Channel, Module, ModuleConfig};
        let tmp = tempfile::tempdir().unwrap();
        let root = loose_root(&tmp);
        let mut config = ModuleConfig::new(&root);
        config.kdf = sealcell_store::crypto::KdfPolicy::INSECURE_FAST_FOR_TESTS;
        let now = crate::Now::virtual_start(std::time::Instant::now());
        let mut m = Module::open(config, now).unwrap();
        let mut c = Channel::new(&mut m);
        let pem = fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pki/root.pem"),
        )
        .unwrap();
        let import = format!("AT+USECMNG=0,0,\"Root\",{}\r", pem.len());
        let mut answers = Vec::new();
        for input in [
            &b"ATE0\r"[..],
            b"AT+UDWNFILE=\"notes.txt\",3\r",
            b"abc",
            import.as_bytes(),
            &pem,
            b"AT+CSGT=1,\"hello\"\r",
        ] {
            let mut out = Vec::new();
            c.feed(&mut m, input, now, &mut out);
            // The upload's commit and the import are disk jobs: run them inline.
            crate::drive::settle(&mut m, &mut c, now, &mut out);
            answers.push(String::from_utf8(out).unwrap());
        }
        assert_eq!(
            answers[..4],
            ["ATE0\r\r\nOK\r\n", "\r\n>", "\r\nOK\r\n", "\r\n>"]
        );
        assert!(
            answers[4].starts_with("\r\n+USECMNG: 0,0,\"Root\","),
            "{answers:?}"
        );
        assert_eq!(answers[5], "\r\nOK\r\n");
        drop(c);
        drop(m);
        let files = assert_owner_only(&root);
        for want in [DUK, IDENTITY, NVM, "fs/USER/notes.txt"] {
            assert!(files.iter().any(|f| f == want), "{want} in {files:?}");
        }
        assert!(files.iter().any(|f| f.starts_with("sec/")), "{files:?}");
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
    fn a_crash_at_any_step_of_creation_leaves_no_module_or_a_whole_one() {
        let probe = SimStorage::new();
        DataDir::with_storage("sim", Arc::new(probe.clone()))
            .open_or_create(None, None, 0)
            .unwrap();
        let steps = probe.steps();
        for fail in 1..=steps {
            for mode in [CrashMode::LoseUnsynced, CrashMode::KeepAll] {
                let disk = SimStorage::new();
                disk.fail_at(Some(fail));
                assert!(
                    DataDir::with_storage("sim", Arc::new(disk.clone()))
                        .open_or_create(None, None, 0)
                        .is_err()
                );
                let rebooted = disk.crash(mode);
                let dir = DataDir::with_storage("sim", Arc::new(rebooted.clone()));
                let had_module = dir.exists();
                let opened = dir
                    .open_or_create(None, None, 0)
                    .unwrap_or_else(|e| panic!("step {fail} {mode:?}: {e}"));
                assert_eq!(opened.created, !had_module);
                assert_eq!(rebooted.len(Path::new(DUK)).unwrap(), 32);
            }
        }
    }
}
