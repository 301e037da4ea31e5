//! [`Storage`] on a real directory: temp file -> `sync_all` -> rename -> fsync of the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
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
            match fs::create_dir(d) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
