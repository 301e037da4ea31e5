//! The module file system (at-contract §7): two tagged areas, `USER` (the default) and `FOAT`
//! (the firmware-update area), each a flat directory under `DIR/fs/`.
//!
//! - **Names: 1..248 characters**, none of `/ * : % | " < > ?`, no control characters, not `.`
//!   or `..`. With no `/` and no `..`, no name leads out of its area, so the credential store
//!   (`DIR/sec/`) is never reachable from here. A name is also at most [`MAX_NAME_BYTES`] bytes
//!   of UTF-8, what the host file system can store as one file name, so a name of multibyte
//!   characters that could never be stored is refused before the `>` prompt, not after the
//!   payload.
//! - **Capacity** is configurable (default 1 GiB); both areas share it.
//! - `+UDWNFILE` appends to an existing file. An [`Upload`] streams the payload into a
//!   temporary file (a copy of the existing file when appending) and renames it into place only
//!   when every byte has arrived, so a crash or a payload timeout leaves the old file or the
//!   new one, never a torn one.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealcell_store::{Storage, TempFile, is_temp_name};

/// The longest file name (**248 characters on TOBY-L2**).
pub const MAX_NAME_LEN: usize = 248;

/// The longest file name in bytes of UTF-8: `NAME_MAX` of Linux file systems (ext4, XFS, Btrfs,
/// tmpfs). Each name is stored verbatim as one host file name, and an upload's temporary file is
/// named by the storage (`:tmp:<pid>:<n>`), not after the name, so nothing is added to it. 248
/// ASCII characters always fit; 128 `é` (256 bytes) do not.
///
/// # Security
/// Checked with the other rules before `+UDWNFILE` prompts, so a payload is never taken for a
/// file that cannot be created.
pub const MAX_NAME_BYTES: usize = 255;

/// The default capacity of the file system: 1 GiB.
pub const DEFAULT_CAPACITY: u64 = 1 << 30;

/// A tagged area of the file system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tag {
    /// User files (the default tag).
    User,
    /// The firmware-update area that holds `updatePackage.bin`.
    Foat,
}

impl Tag {
    /// Parses a tag argument (case-insensitive).
    pub fn parse(s: &str) -> Option<Tag> {
        if s.eq_ignore_ascii_case("USER") {
            Some(Tag::User)
        } else if s.eq_ignore_ascii_case("FOAT") {
            Some(Tag::Foat)
        } else {
            None
        }
    }

    /// The wire and directory name.
    pub fn as_str(self) -> &'static str {
        match self {
            Tag::User => "USER",
            Tag::Foat => "FOAT",
        }
    }
}

/// Why a file-system operation failed. The AT layer maps each to its `+CME ERROR`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    /// The name breaks the rules above.
    #[error("invalid file name")]
    InvalidName,
    /// No such file in the area.
    #[error("file not found")]
    NotFound,
    /// The data would not fit in the remaining capacity.
    #[error("not enough free space: {needed} bytes needed, {free} free")]
    NoSpace {
        /// Bytes requested.
        needed: u64,
        /// Bytes free.
        free: u64,
    },
    /// The host file system failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Checks a file name against the module's rules: characters, then bytes.
pub fn validate_name(name: &str) -> Result<(), FsError> {
    let bad_char = |c: char| {
        c.is_control()
            || matches!(
                c,
                '/' | '\\' | '*' | ':' | '%' | '|' | '"' | '<' | '>' | '?'
            )
    };
    if name.is_empty()
        || name.chars().count() > MAX_NAME_LEN
        || name.len() > MAX_NAME_BYTES
        || name == "."
        || name == ".."
        || name.contains(bad_char)
    {
        return Err(FsError::InvalidName);
    }
    Ok(())
}

/// The file system under `fs/` of the data directory.
#[derive(Clone, Debug)]
pub struct FileSystem {
    storage: Arc<dyn Storage>,
    root: PathBuf,
    capacity: u64,
    /// Bytes promised to uploads in progress and not yet written (what is written counts in
    /// their temporary files), shared by every clone: two uploads started side by side cannot
    /// both take the last free bytes.
    reserved: Arc<std::sync::Mutex<u64>>,
    /// Whether this boot's file system may still change files; a reboot retires it, waiting
    /// for a change in progress, so a job from before a reboot cannot touch a file after it.
    boot: Arc<std::sync::RwLock<bool>>,
}

/// Space promised to one upload and not yet written, given back as it is written and, for
/// the rest, when the upload ends (committed or not).
struct Reservation {
    pool: Arc<std::sync::Mutex<u64>>,
    bytes: u64,
}

impl Reservation {
    /// `n` of the promised bytes are in the temporary file now.
    fn written(&mut self, n: u64) {
        let n = n.min(self.bytes);
        self.bytes -= n;
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        *pool = pool.saturating_sub(n);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        *pool = pool.saturating_sub(self.bytes);
    }
}

/// Refused: the file system belongs to a boot that has ended.
fn retired() -> io::Error {
    io::Error::other("the module rebooted; this file system is retired")
}

impl FileSystem {
    /// Opens the areas under `root` (relative to the storage) and removes temporary files left
    /// by a crash.
    pub fn open(storage: Arc<dyn Storage>, root: &Path, capacity: u64) -> io::Result<FileSystem> {
        let fs = FileSystem {
            storage,
            root: root.to_path_buf(),
            capacity,
            reserved: Arc::default(),
            boot: Arc::new(std::sync::RwLock::new(true)),
        };
        for tag in [Tag::User, Tag::Foat] {
            let dir = fs.dir(tag);
            fs.storage.create_dir_all(&dir)?;
            let mut removed = 0;
            for name in fs
                .storage
                .list(&dir)?
                .into_iter()
                .filter(|n| is_temp_name(n))
            {
                fs.storage.remove(&dir.join(name))?;
                removed += 1;
            }
            if removed > 0 {
                tracing::info!(
                    removed,
                    area = tag.as_str(),
                    "removed incomplete uploads left by a crash"
                );
            }
        }
        Ok(fs)
    }

    /// The configured capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    fn dir(&self, tag: Tag) -> PathBuf {
        self.root.join(tag.as_str())
    }

    /// The storage path of a file (after validating its name).
    pub fn path(&self, tag: Tag, name: &str) -> Result<PathBuf, FsError> {
        validate_name(name)?;
        Ok(self.dir(tag).join(name))
    }

    /// The names in an area, sorted.
    pub fn list(&self, tag: Tag) -> io::Result<Vec<String>> {
        Ok(self
            .storage
            .list(&self.dir(tag))?
            .into_iter()
            .filter(|n| !is_temp_name(n))
            .collect())
    }

    /// Bytes used by both areas, including what uploads and downloads in progress have written
    /// to their temporary files (an append's copy of the old file too: it is needed until the
    /// commit, even if the old file is deleted meanwhile).
    pub fn used(&self) -> io::Result<u64> {
        let mut used = 0u64;
        for tag in [Tag::User, Tag::Foat] {
            let dir = self.dir(tag);
            for name in self.storage.list(&dir)? {
                used = used.saturating_add(self.storage.len(&dir.join(name)).unwrap_or(0));
            }
        }
        Ok(used)
    }

    /// Free bytes (`AT+ULSTFILE=1`).
    pub fn free(&self) -> io::Result<u64> {
        let reserved = *self.reserved.lock().unwrap_or_else(|p| p.into_inner());
        Ok(self
            .capacity
            .saturating_sub(self.used()?)
            .saturating_sub(reserved))
    }

    /// The size of a file (`AT+ULSTFILE=2`).
    pub fn size(&self, tag: Tag, name: &str) -> Result<u64, FsError> {
        let path = self.path(tag, name)?;
        self.storage.len(&path).map_err(not_found)
    }

    /// Reads a whole file (`AT+URDFILE`).
    pub fn read(&self, tag: Tag, name: &str) -> Result<Vec<u8>, FsError> {
        let path = self.path(tag, name)?;
        self.storage.read(&path).map_err(not_found)
    }

    /// Deletes a file (`AT+UDELFILE`).
    pub fn delete(&self, tag: Tag, name: &str) -> Result<(), FsError> {
        let path = self.path(tag, name)?;
        let alive = self.boot.read().unwrap_or_else(|p| p.into_inner());
        if !*alive {
            return Err(FsError::Io(retired()));
        }
        self.storage.remove(&path).map_err(not_found)
    }

    /// Ends this boot's file system (a reboot): once it returns, no clone of it changes a
    /// file any more; a change in progress finishes first.
    pub fn retire(&self) {
        *self.boot.write().unwrap_or_else(|p| p.into_inner()) = false;
    }

    /// Undoes [`FileSystem::retire`]: the reboot failed and this boot goes on.
    pub fn revive(&self) {
        *self.boot.write().unwrap_or_else(|p| p.into_inner()) = true;
    }

    /// Replaces a file atomically with `bytes` (used by downloads and tests).
    pub fn write(&self, tag: Tag, name: &str, bytes: &[u8]) -> Result<(), FsError> {
        let path = self.path(tag, name)?;
        let existing = self.size(tag, name).unwrap_or(0);
        let free = self.free()?.saturating_add(existing);
        if bytes.len() as u64 > free {
            return Err(FsError::NoSpace {
                needed: bytes.len() as u64,
                free,
            });
        }
        self.storage.write_atomic(&path, bytes)?;
        Ok(())
    }

    /// Starts a write of at most `max` bytes that will replace `name` when committed.
    pub fn begin_replace(&self, tag: Tag, name: &str) -> Result<Upload, FsError> {
        let path = self.path(tag, name)?;
        let temp = self.storage.create_temp(&self.dir(tag))?;
        Ok(Upload {
            temp: Some(temp),
            path,
            error: None,
            _reservation: None,
            boot: Arc::clone(&self.boot),
        })
    }

    /// Starts an upload of `size` bytes that will be appended to `name` (or create it).
    pub fn begin_upload(&self, tag: Tag, name: &str, size: u64) -> Result<Upload, FsError> {
        let path = self.path(tag, name)?;
        if !*self.boot.read().unwrap_or_else(|p| p.into_inner()) {
            return Err(FsError::Io(retired()));
        }
        let reservation = {
            // The check and the promise under one lock: concurrent starts see each other.
            let mut reserved = self.reserved.lock().unwrap_or_else(|p| p.into_inner());
            let free = self
                .capacity
                .saturating_sub(self.used()?)
                .saturating_sub(*reserved);
            if size > free {
                return Err(FsError::NoSpace { needed: size, free });
            }
            *reserved += size;
            Reservation {
                pool: Arc::clone(&self.reserved),
                bytes: size,
            }
        };
        let mut temp = self.storage.create_temp(&self.dir(tag))?;
        if self.storage.is_file(&path) {
            // Appending: the new file starts as a copy of the old one.
            self.storage.copy_into(&path, temp.as_mut())?;
        }
        Ok(Upload {
            temp: Some(temp),
            path,
            error: None,
            _reservation: Some(reservation),
            boot: Arc::clone(&self.boot),
        })
    }
}

fn not_found(e: io::Error) -> FsError {
    if e.kind() == io::ErrorKind::NotFound {
        FsError::NotFound
    } else {
        FsError::Io(e)
    }
}

/// An upload in progress. Dropping it without [`Upload::commit`] discards the new data and
/// leaves the original file untouched.
pub struct Upload {
    /// Given back as it is written, the rest when the upload is dropped.
    _reservation: Option<Reservation>,
    /// Its file system's boot: an upload from before a reboot is not committed after it.
    boot: Arc<std::sync::RwLock<bool>>,
    temp: Option<Box<dyn TempFile>>,
    path: PathBuf,
    error: Option<io::Error>,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("path", &self.path)
            .field("failed", &self.error.is_some())
            .finish()
    }
}

impl Upload {
    /// Appends payload bytes. A write failure is remembered and reported by `commit`, so the
    /// caller keeps consuming exactly `<size>` bytes from the wire.
    pub fn write(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if let Some(t) = self.temp.as_mut() {
            match t.write(bytes) {
                Ok(()) => {
                    if let Some(r) = self._reservation.as_mut() {
                        r.written(bytes.len() as u64);
                    }
                }
                Err(e) => self.error = Some(e),
            }
        }
    }

    /// Marks the upload failed: `commit` will return `error` and keep the old file.
    pub fn fail(&mut self, error: io::Error) {
        self.error.get_or_insert(error);
    }

    /// Starts flushing what was written so far (see [`sealcell_store::TempFile::flush_early`]).
    pub fn flush_early(&mut self) {
        if self.error.is_some() {
            return;
        }
        if let Some(t) = self.temp.as_mut()
            && let Err(e) = t.flush_early()
        {
            self.error = Some(e);
        }
    }

    /// Makes the new content visible atomically and durably.
    pub fn commit(mut self) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let alive = self.boot.read().unwrap_or_else(|p| p.into_inner());
        if !*alive {
            return Err(retired());
        }
        match self.temp.take() {
            Some(t) => t.commit(&self.path, None),
            None => Err(io::Error::other("upload already finished")),
        }
    }
}

/// A file of the module file system as `Read + Seek`, read in chunks through the storage (a
/// package of hundreds of MiB is never loaded whole). It owns its handle on the storage, so a
/// job can read it off the module lock and a response can stream it.
pub struct FileReader {
    file: Box<dyn sealcell_store::ReadAt>,
    pos: u64,
    len: u64,
}

impl FileSystem {
    /// Opens a file for streaming reads: the file as it is now, even if it is replaced or
    /// removed while it is read.
    pub fn reader(&self, tag: Tag, name: &str) -> Result<FileReader, FsError> {
        let path = self.path(tag, name)?;
        let file = self.storage.open_read(&path).map_err(not_found)?;
        let len = file.len();
        Ok(FileReader { file, pos: 0, len })
    }
}

impl FileReader {
    /// The file's size.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl io::Read for FileReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let n = self.file.read_at(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl io::Seek for FileReader {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let target = match to {
            io::SeekFrom::Start(n) => Some(n),
            io::SeekFrom::End(d) => self.len.checked_add_signed(d),
            io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "updatePackage.bin", "x y", ".hidden", &"n".repeat(248)] {
            assert!(validate_name(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a:b",
            "a*",
            "a%",
            "a|",
            "a\"",
            "a<",
            "a>",
            "a?",
            "a\0",
            "a\r",
            &"n".repeat(249),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    /// A file system on a real directory, where the host's name limit applies.
    fn on_disk(tmp: &tempfile::TempDir) -> FileSystem {
        let storage = Arc::new(sealcell_store::FsStorage::new(tmp.path()));
        FileSystem::open(storage, Path::new("fs"), 1 << 20).unwrap()
    }

    /// Uploads, lists, reads and deletes `name` through every path that stores it.
    fn round_trip(fs: &FileSystem, name: &str) {
        let mut up = fs.begin_upload(Tag::User, name, 3).unwrap();
        up.write(b"abc");
        up.commit().unwrap();
        fs.write(Tag::Foat, name, b"xyz").unwrap();
        assert_eq!(fs.list(Tag::User).unwrap(), [name]);
        assert_eq!(fs.read(Tag::User, name).unwrap(), b"abc");
        assert_eq!(fs.read(Tag::Foat, name).unwrap(), b"xyz");
        fs.delete(Tag::User, name).unwrap();
        fs.delete(Tag::Foat, name).unwrap();
        assert_eq!(fs.list(Tag::User).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn names_of_248_ascii_characters_and_of_255_bytes_are_stored() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = on_disk(&tmp);
        let at_the_limit = [
            ("n".repeat(MAX_NAME_LEN), 248),
            ("€".repeat(85), 255),
            (format!("a{}", "é".repeat(127)), 255),
            (format!("{}{}", "é".repeat(123), "n".repeat(9)), 255),
        ];
        for (name, bytes) in &at_the_limit {
            assert_eq!(name.len(), *bytes);
            round_trip(&fs, name);
        }
    }

    #[test]
    fn names_longer_than_the_host_can_store_are_refused_before_any_write() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = on_disk(&tmp);
        // Each within the 248 characters; each over the 255 bytes.
        let too_long = [
            ("é".repeat(128), 256),
            ("€".repeat(100), 300),
            (format!("{}n", "€".repeat(85)), 256),
            (format!("{}{}", "é".repeat(124), "n".repeat(8)), 256),
        ];
        for (name, bytes) in &too_long {
            assert_eq!(name.len(), *bytes);
            assert!(matches!(validate_name(name), Err(FsError::InvalidName)));
            assert!(matches!(
                fs.begin_upload(Tag::User, name, 3),
                Err(FsError::InvalidName)
            ));
            assert!(matches!(
                fs.write(Tag::User, name, b"abc"),
                Err(FsError::InvalidName)
            ));
        }
        assert_eq!(
            std::fs::read_dir(tmp.path().join("fs/USER"))
                .unwrap()
                .count(),
            0,
            "not even a temporary file"
        );
    }

    /// Two uploads started side by side cannot both take the last free bytes; an upload
    /// that ends (committed or dropped) gives its promise back.
    #[test]
    fn concurrent_uploads_reserve_their_space() {
        let storage: Arc<dyn Storage> = Arc::new(sealcell_store::SimStorage::new());
        let fs = FileSystem::open(storage, Path::new("fs"), 100).unwrap();
        let first = fs.begin_upload(Tag::User, "a", 60).unwrap();
        assert_eq!(fs.free().unwrap(), 40);
        assert!(matches!(
            fs.begin_upload(Tag::User, "b", 60),
            Err(FsError::NoSpace {
                needed: 60,
                free: 40
            })
        ));
        drop(first);
        assert_eq!(fs.free().unwrap(), 100);
        let mut second = fs.begin_upload(Tag::User, "b", 60).unwrap();
        second.write(&[7; 60]);
        second.commit().unwrap();
        assert_eq!(fs.free().unwrap(), 40);
    }

    #[test]
    fn upload_appends_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let storage = Arc::new(sealcell_store::FsStorage::new(tmp.path()));
        let fs = FileSystem::open(storage, Path::new("fs"), 100).unwrap();
        let mut up = fs.begin_upload(Tag::User, "f", 3).unwrap();
        up.write(b"abc");
        up.commit().unwrap();
        let mut up = fs.begin_upload(Tag::User, "f", 2).unwrap();
        up.write(b"de");
        assert_eq!(
            fs.read(Tag::User, "f").unwrap(),
            b"abc",
            "not visible before commit"
        );
        up.commit().unwrap();
        assert_eq!(fs.read(Tag::User, "f").unwrap(), b"abcde");
        let mut up = fs.begin_upload(Tag::User, "f", 2).unwrap();
        up.write(b"zz");
        drop(up);
        assert_eq!(
            fs.read(Tag::User, "f").unwrap(),
            b"abcde",
            "an abandoned upload changes nothing"
        );
        assert_eq!(fs.list(Tag::User).unwrap(), vec!["f".to_string()]);
        assert_eq!(fs.free().unwrap(), 95);
        assert!(matches!(
            fs.begin_upload(Tag::User, "g", 96),
            Err(FsError::NoSpace {
                needed: 96,
                free: 95
            })
        ));
        // A block as `+URDBLOCK` reads it: seek, then up to `len` bytes.
        let block = |offset: u64, len: u64| {
            let mut r = fs.reader(Tag::User, "f").unwrap();
            io::Seek::seek(&mut r, io::SeekFrom::Start(offset)).unwrap();
            let mut out = Vec::new();
            io::Read::read_to_end(&mut io::Read::take(r, len), &mut out).unwrap();
            out
        };
        assert_eq!(block(3, 10), b"de");
        assert_eq!(block(30, 10), b"");
        fs.delete(Tag::User, "f").unwrap();
        assert!(matches!(fs.delete(Tag::User, "f"), Err(FsError::NotFound)));
    }
}
