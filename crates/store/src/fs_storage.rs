//! [`Storage`] on a real directory: temp file -> `sync_all` -> rename -> fsync of the directory.
//!
//! Everything it makes is the module's alone: directories 0700, files 0600 unless the writer
//! asks for a mode (the device key is 0400). The data directory holds the device key, the
//! sealed store and the user's files; no other account on the host has a reason to read them.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Storage, TempFile, is_temp_name};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Storage rooted at a directory of the host file system.
#[derive(Debug, Clone)]
pub struct FsStorage {
    root: PathBuf,
}

impl FsStorage {
    /// Storage rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> FsStorage {
        FsStorage { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The mode of every directory it creates.
    ///
    /// # Security
    /// Owner only: the tree holds the device key and the credential store.
    pub const DIR_MODE: u32 = 0o700;

    /// The mode of every file it writes, unless [`TempFile::commit`] is given one.
    ///
    /// # Security
    /// Owner only, like [`FsStorage::DIR_MODE`].
    pub const FILE_MODE: u32 = 0o600;

    fn full(&self, path: &Path) -> PathBuf {
        self.root.join(path)
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Storage for FsStorage {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(self.full(path))
    }

    fn read_range(&self, path: &Path, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let mut f = File::open(self.full(path))?;
        let size = f.metadata()?.len();
        let n = len.min(size.saturating_sub(offset));
        f.seek(SeekFrom::Start(offset.min(size)))?;
        let mut buf = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
        f.take(n).read_to_end(&mut buf)?;
        Ok(buf)
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn crate::ReadAt>> {
        let file = File::open(self.full(path))?;
        let len = file.metadata()?.len();
        Ok(Box::new(OpenFile { file, len }))
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        let meta = fs::metadata(self.full(path))?;
        if meta.is_file() {
            Ok(meta.len())
        } else {
            Err(crate::not_found(path))
        }
    }

    fn is_file(&self, path: &Path) -> bool {
        self.full(path).is_file()
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(self.full(dir))? {
            let entry = entry?;
            if entry.file_type()?.is_file()
                && let Some(name) = entry.file_name().to_str()
            {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let full = self.full(dir);
        if full.is_dir() {
            return Ok(());
        }
        // Create and sync each missing level so every new entry survives a crash.
        let mut missing = Vec::new();
        let mut cur = full.as_path();
        while !cur.is_dir() {
            missing.push(cur.to_path_buf());
            match cur.parent() {
                Some(p) if !p.as_os_str().is_empty() => cur = p,
                _ => break,
            }
        }
        for d in missing.iter().rev() {
            match DirBuilder::new().mode(FsStorage::DIR_MODE).create(d) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            if let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        Ok(())
    }

    fn create_temp(&self, dir: &Path) -> io::Result<Box<dyn TempFile>> {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = self.full(dir);
        let path = dir.join(format!(":tmp:{}:{n}", std::process::id()));
        debug_assert!(is_temp_name(
            &path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FsStorage::FILE_MODE)
            .open(&path)?;
        Ok(Box::new(FsTemp {
            file: Some(file),
            path,
            root: self.root.clone(),
            flushing: None,
        }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let full = self.full(path);
        fs::remove_file(&full)?;
        match full.parent() {
            Some(p) => sync_dir(p),
            None => Ok(()),
        }
    }

    /// Sets the root to [`FsStorage::DIR_MODE`] when a group or others have any access to it,
    /// as data directories made by older versions (0755) do, and logs the change. A missing
    /// root is left for the first write to create.
    fn restrict_root(&self) -> io::Result<()> {
        let mode = match fs::metadata(&self.root) {
            Ok(meta) => meta.permissions().mode() & 0o7777,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if mode & 0o077 == 0 {
            return Ok(());
        }
        fs::set_permissions(&self.root, fs::Permissions::from_mode(Self::DIR_MODE))?;
        tracing::info!(
            dir = %self.root.display(),
            was = format_args!("{mode:04o}"),
            now = format_args!("{:04o}", Self::DIR_MODE),
            "made the data directory owner-only"
        );
        Ok(())
    }
}

struct FsTemp {
    file: Option<File>,
    path: PathBuf,
    root: PathBuf,
    /// A `sync_data` started by [`TempFile::flush_early`] on another thread (at most one).
    flushing: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl FsTemp {
    /// Waits for the early flush in progress, if any, and returns its error.
    fn wait_for_flush(&mut self) -> io::Result<()> {
        match self.flushing.take() {
            Some(done) => done
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("flush thread panicked"))),
            None => Ok(()),
        }
    }
}

impl TempFile for FsTemp {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.write_all(bytes),
            None => Err(io::Error::other("temporary file already finished")),
        }
    }

    /// Runs `sync_data` on a clone of the handle on another thread, so writing goes on while
    /// the disk catches up (`sync_file_range` would need `unsafe`). Skipped while one runs.
    fn flush_early(&mut self) -> io::Result<()> {
        if self.flushing.as_ref().is_some_and(|h| !h.is_finished()) {
            return Ok(());
        }
        self.wait_for_flush()?;
        let Some(file) = self.file.as_ref() else {
            return Ok(());
        };
        let clone = file.try_clone()?;
        self.flushing = Some(
            std::thread::Builder::new()
                .name("flush-early".into())
                .spawn(move || clone.sync_data())?,
        );
        Ok(())
    }

    fn commit(mut self: Box<Self>, dest: &Path, mode: Option<u32>) -> io::Result<()> {
        let Some(file) = self.file.take() else {
            return Err(io::Error::other("temporary file already finished"));
        };
        self.wait_for_flush()?;
        let dest = self.root.join(dest);
        let result = (|| {
            if let Some(mode) = mode {
                file.set_permissions(std::fs::Permissions::from_mode(mode))?;
            }
            file.sync_all()?;
            drop(file);
            fs::rename(&self.path, &dest)?;
            match dest.parent() {
                Some(p) => sync_dir(p),
                None => Ok(()),
            }
        })();
        if result.is_err() {
            let _ = fs::remove_file(&self.path);
        }
        result
    }
}

impl Drop for FsTemp {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// An open file of the real disk: reads go to the inode opened, not to the path.
struct OpenFile {
    file: File,
    len: u64,
}

impl crate::ReadAt for OpenFile {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        if offset >= self.len {
            return Ok(0);
        }
        let n = usize::try_from(self.len - offset).map_or(buf.len(), |left| left.min(buf.len()));
        loop {
            match self.file.read_at(&mut buf[..n], offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

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

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn everything_written_is_owner_only_unless_a_mode_is_asked_for() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("module");
        let s = Arc::new(FsStorage::new(&root));
        s.create_dir_all(Path::new("fs/USER")).unwrap();
        s.write_atomic(Path::new("nvm.toml"), b"echo = false")
            .unwrap();
        let device = crate::DeviceSecrets {
            duk: secrecy::SecretBox::new(Box::new([7; 32])),
            imei: "490154203237518".into(),
        };
        let mut store = crate::Store::open(
            s.clone(),
            device,
            crate::crypto::KdfPolicy::INSECURE_FAST_FOR_TESTS,
        )
        .unwrap();
        let root_pem = fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pki/root.pem"),
        )
        .unwrap();
        let ca = crate::credential::CredentialType::TrustedRootCa;
        store.import(ca, "Plain", &root_pem, None).unwrap();
        store.seal(b"a seal password").unwrap();
        store.import(ca, "Sealed", &root_pem, None).unwrap();
        // The store made otp/; the device key asks for 0400.
        s.write_atomic_mode(Path::new("otp/duk.bin"), &[7; 32], Some(0o400))
            .unwrap();
        let mut upload = s.create_temp(Path::new("fs/USER")).unwrap();
        upload.write(b"payload").unwrap();
        upload.commit(Path::new("fs/USER/file.txt"), None).unwrap();

        assert_eq!(mode_of(&root), 0o700);
        let found = modes(&root);
        let files: Vec<&str> = found
            .iter()
            .filter(|(_, dir, _)| !dir)
            .map(|(p, _, _)| p.as_str())
            .collect();
        for want in ["nvm.toml", "otp/duk.bin", "fs/USER/file.txt"] {
            assert!(files.contains(&want), "{want} in {files:?}");
        }
        assert!(
            files.iter().filter(|f| f.starts_with("sec/")).count() >= 3,
            "{files:?}"
        );
        for (path, dir, mode) in &found {
            let want = match (*dir, path.as_str()) {
                (true, _) => 0o700,
                (false, "otp/duk.bin") => 0o400,
                (false, _) => 0o600,
            };
            assert_eq!(*mode, want, "{path}: {mode:04o}");
        }
    }

    #[test]
    fn a_loose_root_is_tightened_and_a_tight_one_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("old");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        let s = FsStorage::new(&root);
        s.restrict_root().unwrap();
        assert_eq!(mode_of(&root), 0o700);
        fs::set_permissions(&root, fs::Permissions::from_mode(0o500)).unwrap();
        s.restrict_root().unwrap();
        assert_eq!(
            mode_of(&root),
            0o500,
            "owner-only already: not ours to change"
        );
        FsStorage::new(tmp.path().join("missing"))
            .restrict_root()
            .unwrap();
        assert!(!tmp.path().join("missing").exists());
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn atomic_writes_and_temps() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStorage::new(dir.path());
        s.create_dir_all(Path::new("a/b")).unwrap();
        s.write_atomic(Path::new("a/b/f"), b"one").unwrap();
        s.write_atomic_mode(Path::new("a/b/f"), b"two", Some(0o400))
            .unwrap();
        assert_eq!(s.read(Path::new("a/b/f")).unwrap(), b"two");
        let mode = fs::metadata(dir.path().join("a/b/f"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o400);
        assert_eq!(s.list(Path::new("a/b")).unwrap(), ["f"]);
        let mut t = s.create_temp(Path::new("a/b")).unwrap();
        t.write(b"x").unwrap();
        assert_eq!(
            s.list(Path::new("a/b")).unwrap().len(),
            2,
            "a temp file is visible until dropped"
        );
        drop(t);
        assert_eq!(s.list(Path::new("a/b")).unwrap(), ["f"]);
        assert_eq!(s.read_range(Path::new("a/b/f"), 1, 10).unwrap(), b"wo");
        s.remove(Path::new("a/b/f")).unwrap();
        assert!(!s.is_file(Path::new("a/b/f")));
        assert_eq!(
            s.len(Path::new("a/b/f")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
