//! The sealed credential store of the emulated module (architecture.md, "Key hierarchy and
//! on-disk format"; `docs/storage-format.md` for every byte), and the storage layer under it.
//!
//! | Need | Use |
//! |---|---|
//! | Seal, import, list, remove credentials | [`Store`] |
//! | Parse a certificate or key as `+USECMNG` accepts it | [`credential::parse`] |
//! | The key hierarchy | [`crypto`] |
//! | The byte layouts of format v1 | [`format`](mod@format) |
//!
//! Storage: every state change goes through [`Storage`], whose only
//! mutating operations are atomic (a temporary file made durable, then renamed into place, then
//! the directory synced) or a durable removal.
//!
//! | Need | Use |
//! |---|---|
//! | The real thing, on a data directory | [`FsStorage`] |
//! | Tests that crash at every write and reboot | [`SimStorage`] |
//! | The running emulator's disk, whose power the test bench cuts | [`PowerSwitch`] |
//!
//! [`SimStorage`] models a disk after power loss: only data that was fsynced, and only
//! directory entries whose directory was fsynced, survive [`SimStorage::crash`]. It can fail
//! (and "lose power") at any primitive step, so a test can count the steps of an operation,
//! crash at each one in turn, reboot, and check the state is the old one or the new one.
//!
//! ```
//! use std::path::Path;
//! use sealcell_store::{SimStorage, Storage, CrashMode};
//!
//! let disk = SimStorage::new();
//! disk.write_atomic(Path::new("nvm.toml"), b"v1").unwrap();
//! let after = disk.crash(CrashMode::LoseUnsynced);
//! assert_eq!(after.read(Path::new("nvm.toml")).unwrap(), b"v1");
//! ```
#![forbid(unsafe_code)]

// Parsing moved to sealcell-fw (the host checks its plan with the same rules, without the store).
pub use sealcell_fw::credential;
pub mod crypto;
pub mod format;
mod fs_storage;
pub mod fuzzing;
mod power;
mod sim;
mod store;

use std::fmt;
use std::io;
use std::path::Path;

pub use credential::CredentialType;
pub use fs_storage::FsStorage;
pub use power::PowerSwitch;
pub use sim::{CrashMode, SimStorage};
pub use store::{
    COUNTER_PATH, CRED_DIR, DeviceSecrets, FUSE_PATH, Item, ItemState, MANIFEST_PATHS, MAX_ITEMS,
    OpenProblem, PLAIN_DIR, PreparedSeal, SEAL_PATH, SealError, SealInputs, Store, StoreError,
    StoreSummary,
};

/// A file being written; it becomes visible only through [`TempFile::commit`]. Dropping it
/// discards it.
pub trait TempFile: Send {
    /// Appends bytes.
    fn write(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Starts writing what was written so far to the disk, so a long write's final `commit`
    /// has little left to flush. A hint: it promises nothing about durability.
    fn flush_early(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Makes the content durable, renames it to `dest` (replacing any file there) and syncs the
    /// directory. `mode` sets the permission bits where the backend has them.
    fn commit(self: Box<Self>, dest: &Path, mode: Option<u32>) -> io::Result<()>;
}

/// An open file read by position. It keeps reading the file that was opened, whatever later
/// happens to its path (a rename over it, a removal): a long read never mixes two files.
pub trait ReadAt: Send {
    /// The file's size when it was opened.
    fn len(&self) -> u64;
    /// Whether it is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Reads at `offset` into `buf`; fewer bytes (0 at the end) than asked is not an error.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

/// A file's content taken whole: [`Storage::open_read`] for backends without open handles.
struct Snapshot(Vec<u8>);

impl ReadAt for Snapshot {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.0.len());
        let n = buf.len().min(self.0.len() - start);
        buf[..n].copy_from_slice(&self.0[start..start + n]);
        Ok(n)
    }
}

/// The storage operations the module uses. Paths are relative to the storage's root.
pub trait Storage: Send + Sync + fmt::Debug {
    /// The whole content of a file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Up to `len` bytes at `offset` (fewer at the end of the file).
    fn read_range(&self, path: &Path, offset: u64, len: u64) -> io::Result<Vec<u8>>;
    /// The size of a file (`NotFound` when missing or not a file).
    fn len(&self, path: &Path) -> io::Result<u64>;
    /// Whether a file exists at `path`.
    fn is_file(&self, path: &Path) -> bool;
    /// The names of the files in a directory (not subdirectories), sorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Creates a directory and its parents, durably.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Starts a temporary file in `dir`, named so it can never collide with a file of the
    /// module's file system (it contains a `:`).
    fn create_temp(&self, dir: &Path) -> io::Result<Box<dyn TempFile>>;
    /// Removes a file and syncs its directory.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Opens a file to read by position ([`ReadAt`]). Default: the content read whole (the
    /// simulated disk); the real one keeps an open file.
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadAt>> {
        Ok(Box::new(Snapshot(self.read(path)?)))
    }
    /// Makes the root owner-only where the backend has permission bits, tightening a root that
    /// an older version made looser; a module calls it when it opens. Default: nothing to do.
    fn restrict_root(&self) -> io::Result<()> {
        Ok(())
    }

    /// Replaces `path` with `bytes` atomically and durably.
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.write_atomic_mode(path, bytes, None)
    }

    /// [`Storage::write_atomic`] with permission bits.
    fn write_atomic_mode(&self, path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new(""));
        let mut temp = self.create_temp(dir)?;
        temp.write(bytes)?;
        temp.commit(path, mode)
    }

    /// Copies the file at `src` into `temp` (for appends), in chunks.
    fn copy_into(&self, src: &Path, temp: &mut dyn TempFile) -> io::Result<()> {
        const CHUNK: u64 = 1 << 20;
        let len = self.len(src)?;
        let mut offset = 0;
        while offset < len {
            let chunk = self.read_range(src, offset, CHUNK)?;
            if chunk.is_empty() {
                break;
            }
            temp.write(&chunk)?;
            offset += chunk.len() as u64;
        }
        Ok(())
    }
}

/// Whether a file name is one of the storage's temporary files.
pub fn is_temp_name(name: &str) -> bool {
    name.contains(':')
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", path.display()),
    )
}
