//! Snapshots of a whole module (cli.md, "A test bench"): its data directory, `otp/` (the
//! device key and identity) included, in one file, so a seal can be rehearsed on the emulator
//! and undone. An emulator-only power: a real module's fuses do not come back.
//!
//! # Format (v1)
//!
//! ```text
//! "sealcell-snapshot v1\n"
//! entry*          kind u8 (1 directory, 2 file), path length u16 BE, path (UTF-8, relative,
//!                 '/'-separated), mode u32 BE (permission bits), then for a file its length
//!                 u64 BE and its bytes
//! 0u8             the end
//! SHA-256         of every byte before it
//! ```
//!
//! Entries are in path order, directories before what they hold. [`restore`] reads the whole
//! file and checks its hash before it writes anything, then builds the module in a directory
//! beside the target and renames it into place: the target is the old module or the restored
//! one, never a mix.
//!
//! # Security
//!
//! A snapshot holds the device key: it is written 0600, and whoever has it has the module's
//! sealed store. Every length and count read from a snapshot is capped ([`MAX_ENTRIES`],
//! [`MAX_PATH`], [`MAX_TOTAL`]) and every path must be plain relative components, so a hostile
//! snapshot cannot write outside the target or exhaust the disk past its own size.
//!
//! Take a snapshot of a stopped module: every file of a running one is whole (each write is
//! atomic), but files written between two of the copy's reads may not agree.

use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::datadir::IDENTITY;

/// The first bytes of a snapshot.
pub const MAGIC: &[u8] = b"sealcell-snapshot v1\n";

/// The most entries (files and directories) a snapshot may hold.
///
/// # Security
/// Bounds the bookkeeping of a hostile snapshot.
pub const MAX_ENTRIES: usize = 1_000_000;

/// The longest path in a snapshot, in bytes.
pub const MAX_PATH: usize = 4096;

/// The most bytes of file content a snapshot may hold: 4 GiB, a default module's file
/// system (1 GiB, `fs::DEFAULT_CAPACITY`) with its firmware area and store, and room to spare.
/// A restore reads the snapshot whole before it writes a byte.
///
/// # Security
/// Bounds what a restore reads and writes, whatever the entries claim.
pub const MAX_TOTAL: u64 = 4 << 30;

const KIND_END: u8 = 0;
const KIND_DIR: u8 = 1;
const KIND_FILE: u8 = 2;

/// Why a snapshot or a restore failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The directory to snapshot holds no module.
    #[error("{0} holds no module (no {IDENTITY})")]
    NoModule(PathBuf),
    /// The target of a restore is not empty, and `--force` was not given.
    #[error("{0} is not empty: restore replaces a module only when told to (--force)")]
    NotEmpty(PathBuf),
    /// The file is not a snapshot, or it is damaged or truncated (nothing was written).
    #[error("{path} is not a sealcell snapshot, or it is damaged: {why}")]
    Corrupt {
        /// The snapshot.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A symbolic link or other special file in the data directory (a module has none).
    #[error("{0} is neither a file nor a directory; a module's data directory has only those")]
    Special(PathBuf),
    /// Reading or writing failed.
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
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + use<> {
    let path = path.to_path_buf();
    move |source| SnapshotError::Io { what, path, source }
}

/// What a snapshot or a restore moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Files.
    pub files: usize,
    /// Directories.
    pub dirs: usize,
    /// Bytes of file content.
    pub bytes: u64,
}

/// One entry of a snapshot.
struct Entry {
    path: String,
    mode: u32,
    content: Option<Vec<u8>>,
}

/// Writes a snapshot of the module in `dir` to `out` (atomically: a temporary file beside
/// it, fsynced, renamed, the directory fsynced).
pub fn snapshot(dir: &Path, out: &Path) -> Result<Summary, SnapshotError> {
    if !dir.join(IDENTITY).is_file() {
        return Err(SnapshotError::NoModule(dir.to_path_buf()));
    }
    let mut entries = Vec::new();
    walk(dir, "", &mut entries)?;
    let tmp = temporary(out);
    let written = write_snapshot(&tmp, &entries).and_then(|summary| {
        std::fs::rename(&tmp, out).map_err(io_err("rename", out))?;
        sync_parent(out)?;
        Ok(summary)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Every directory and file below `dir` (relative paths `prefix/...`), in path order.
fn walk(dir: &Path, prefix: &str, entries: &mut Vec<Entry>) -> Result<(), SnapshotError> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(io_err("read", dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io_err("read", dir))?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let Some(name) = name.to_str() else {
            return Err(SnapshotError::Special(path));
        };
        let rel = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        let meta = std::fs::symlink_metadata(&path).map_err(io_err("stat", &path))?;
        let mode = permissions(&meta);
        if meta.is_dir() {
            entries.push(Entry {
                path: rel.clone(),
                mode,
                content: None,
            });
            walk(&path, &rel, entries)?;
        } else if meta.is_file() {
            let content = std::fs::read(&path).map_err(io_err("read", &path))?;
            entries.push(Entry {
                path: rel,
                mode,
                content: Some(content),
            });
        } else {
            return Err(SnapshotError::Special(path));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn permissions(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o777
}

#[cfg(not(unix))]
fn permissions(meta: &std::fs::Metadata) -> u32 {
    if meta.is_dir() { 0o700 } else { 0o600 }
}

fn write_snapshot(tmp: &Path, entries: &[Entry]) -> Result<Summary, SnapshotError> {
    let file = create_private(tmp)?;
    let mut out = HashingWriter {
        inner: io::BufWriter::new(file),
        hash: Sha256::new(),
    };
    let mut summary = Summary {
        files: 0,
        dirs: 0,
        bytes: 0,
    };
    let put = |out: &mut HashingWriter<_>, bytes: &[u8]| {
        out.write_all(bytes).map_err(io_err("write", tmp))
    };
    put(&mut out, MAGIC)?;
    for e in entries {
        let kind = if e.content.is_some() {
            KIND_FILE
        } else {
            KIND_DIR
        };
        let path_len = u16::try_from(e.path.len())
            .ok()
            .filter(|n| usize::from(*n) <= MAX_PATH)
            .ok_or_else(|| SnapshotError::Special(PathBuf::from(&e.path)))?;
        put(&mut out, &[kind])?;
        put(&mut out, &path_len.to_be_bytes())?;
        put(&mut out, e.path.as_bytes())?;
        put(&mut out, &e.mode.to_be_bytes())?;
        match &e.content {
            Some(content) => {
                put(&mut out, &(content.len() as u64).to_be_bytes())?;
                put(&mut out, content)?;
                summary.files += 1;
                summary.bytes += content.len() as u64;
            }
            None => summary.dirs += 1,
        }
    }
    put(&mut out, &[KIND_END])?;
    let digest = out.hash.finalize();
    let mut inner = out.inner;
    inner.write_all(&digest).map_err(io_err("write", tmp))?;
    let file = inner.into_inner().map_err(|e| SnapshotError::Io {
        what: "write",
        path: tmp.to_path_buf(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io_err("fsync", tmp))?;
    Ok(summary)
}

struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Makes `dir` the module of the snapshot `file`: checks the whole snapshot first, builds
/// the module beside `dir`, then renames it into place. A `dir` that exists and is not empty
/// is replaced only when `force` (and never merged with).
pub fn restore(file: &Path, dir: &Path, force: bool) -> Result<Summary, SnapshotError> {
    let entries = read_snapshot(file)?;
    // Absolute, so the staging directory is beside the target, not in it (`--data .`).
    let dir = &std::path::absolute(dir).map_err(io_err("resolve", dir))?;
    if dir.file_name().is_none() {
        return Err(io_err("restore into", dir)(io::Error::other(
            "name a directory, not a root or a `..`",
        )));
    }
    let occupied = match std::fs::read_dir(dir) {
        Ok(mut d) => d.next().is_some(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(io_err("read", dir)(e)),
    };
    if occupied && !force {
        return Err(SnapshotError::NotEmpty(dir.to_path_buf()));
    }
    let staging = sibling(dir, "restore");
    let built = build(&staging, &entries);
    let summary = match built {
        Ok(summary) => summary,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    // The swap: the old module aside, the new one in, then the old one gone.
    let old = sibling(dir, "old");
    let had_dir = dir.exists();
    if had_dir {
        std::fs::rename(dir, &old).map_err(io_err("rename", dir))?;
    }
    if let Err(e) = std::fs::rename(&staging, dir) {
        if had_dir {
            let _ = std::fs::rename(&old, dir);
        }
        let _ = std::fs::remove_dir_all(&staging);
        return Err(io_err("rename", &staging)(e));
    }
    sync_parent(dir)?;
    if had_dir {
        std::fs::remove_dir_all(&old).map_err(io_err("remove", &old))?;
    }
    Ok(summary)
}

/// Reads and checks a whole snapshot: its magic, every entry's path and size, its hash.
fn read_snapshot(file: &Path) -> Result<Vec<Entry>, SnapshotError> {
    let corrupt = |why: &str| SnapshotError::Corrupt {
        path: file.to_path_buf(),
        why: why.to_string(),
    };
    let bytes = read_capped(file)?;
    if bytes.len() < MAGIC.len() + 1 + 32 || !bytes.starts_with(MAGIC) {
        return Err(corrupt("it does not start as a snapshot does"));
    }
    let (body, digest) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != digest {
        return Err(corrupt("its SHA-256 does not match (damaged or truncated)"));
    }
    let mut r = Cursor {
        bytes: &body[MAGIC.len()..],
    };
    let mut entries: Vec<Entry> = Vec::new();
    let mut total = 0u64;
    loop {
        let kind = r.u8().ok_or_else(|| corrupt("it ends inside an entry"))?;
        if kind == KIND_END {
            break;
        }
        if entries.len() >= MAX_ENTRIES {
            return Err(corrupt("it has too many entries"));
        }
        let len = usize::from(r.u16().ok_or_else(|| corrupt("it ends inside an entry"))?);
        if len == 0 || len > MAX_PATH {
            return Err(corrupt("a path is empty or too long"));
        }
        let path = r
            .take(len)
            .and_then(|p| std::str::from_utf8(p).ok())
            .ok_or_else(|| corrupt("a path is not UTF-8"))?
            .to_string();
        if !plain_relative(&path) {
            return Err(corrupt("a path leaves the module's directory"));
        }
        // The order the walk writes: by path component, a directory before what it holds.
        if entries
            .last()
            .is_some_and(|e| Path::new(&e.path) >= Path::new(&path))
        {
            return Err(corrupt(
                "its paths are not in order (or one is there twice)",
            ));
        }
        let mode = r.u32().ok_or_else(|| corrupt("it ends inside an entry"))? & 0o777;
        let content = match kind {
            KIND_DIR => None,
            KIND_FILE => {
                let n = r.u64().ok_or_else(|| corrupt("it ends inside an entry"))?;
                total = total.saturating_add(n);
                if total > MAX_TOTAL {
                    return Err(corrupt("its files are larger than a module holds"));
                }
                let n = usize::try_from(n).map_err(|_| corrupt("a file is too large"))?;
                Some(
                    r.take(n)
                        .ok_or_else(|| corrupt("it ends inside a file"))?
                        .to_vec(),
                )
            }
            _ => return Err(corrupt("an entry is of an unknown kind")),
        };
        entries.push(Entry {
            path,
            mode,
            content,
        });
    }
    if !r.bytes.is_empty() {
        return Err(corrupt("bytes follow its end"));
    }
    if !entries
        .iter()
        .any(|e| e.path == IDENTITY && e.content.is_some())
    {
        return Err(corrupt("it holds no module identity"));
    }
    Ok(entries)
}

/// The whole file, refused past what a snapshot can be.
fn read_capped(file: &Path) -> Result<Vec<u8>, SnapshotError> {
    let f = std::fs::File::open(file).map_err(io_err("open", file))?;
    let cap = MAX_TOTAL + (MAX_ENTRIES as u64) * (MAX_PATH as u64 + 16);
    let mut bytes = Vec::new();
    f.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err("read", file))?;
    if bytes.len() as u64 > cap {
        return Err(SnapshotError::Corrupt {
            path: file.to_path_buf(),
            why: "it is larger than any snapshot".into(),
        });
    }
    Ok(bytes)
}

/// Whether `path` is relative and made of plain names only (no `..`, no root, no `.`).
fn plain_relative(path: &str) -> bool {
    !path.contains('\\')
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// Writes the entries under `staging` (a new directory), each file fsynced, then each
/// directory.
fn build(staging: &Path, entries: &[Entry]) -> Result<Summary, SnapshotError> {
    create_dir_private(staging)?;
    let mut summary = Summary {
        files: 0,
        dirs: 0,
        bytes: 0,
    };
    let mut dirs = vec![staging.to_path_buf()];
    for e in entries {
        let path = staging.join(&e.path);
        match &e.content {
            None => {
                create_dir_private(&path)?;
                dirs.push(path);
                summary.dirs += 1;
            }
            Some(content) => {
                let mut f = create_private(&path)?;
                f.write_all(content).map_err(io_err("write", &path))?;
                f.sync_all().map_err(io_err("fsync", &path))?;
                set_mode(&path, e.mode)?;
                summary.files += 1;
                summary.bytes += content.len() as u64;
            }
        }
    }
    for d in dirs.iter().rev() {
        sync_dir(d)?;
    }
    Ok(summary)
}

/// A new file, readable by its owner only.
fn create_private(path: &Path) -> Result<std::fs::File, SnapshotError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(io_err("create", path))
}

fn create_dir_private(path: &Path) -> Result<(), SnapshotError> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path).map_err(io_err("create", path))
}

/// A file's recorded permission bits, never more than its owner's (a module's files are
/// its alone).
fn set_mode(path: &Path, mode: u32) -> Result<(), SnapshotError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = (mode & 0o700).max(0o400);
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(io_err("chmod", path))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync", dir))
}

fn sync_parent(path: &Path) -> Result<(), SnapshotError> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => sync_dir(p),
        _ => sync_dir(Path::new(".")),
    }
}

/// `path` with a temporary suffix, beside it.
fn temporary(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// A directory beside `dir` for the restore's staging (`what`: "restore" or "old").
fn sibling(dir: &Path, what: &str) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(dir.file_name().unwrap_or_default());
    name.push(format!(".{what}-{}", std::process::id()));
    dir.with_file_name(name)
}

/// Reads big-endian numbers and byte runs off a slice.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_beside_a_name_that_sorts_between_restores() {
        // `X` and `X.bak`: by string `X.bak` < `X/a`, by component `X/a` < `X.bak`.
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("m");
        std::fs::create_dir_all(dir.join("otp")).unwrap();
        std::fs::write(dir.join(IDENTITY), b"imei = 1").unwrap();
        std::fs::create_dir_all(dir.join("X")).unwrap();
        std::fs::write(dir.join("X/a"), b"a").unwrap();
        std::fs::write(dir.join("X.bak"), b"b").unwrap();
        let snap = work.path().join("s");
        snapshot(&dir, &snap).unwrap();
        // Into a path written with a trailing `.`: the staging goes beside it, not in it.
        let target = work.path().join("copy");
        std::fs::create_dir(&target).unwrap();
        let summary = restore(&snap, &target.join("."), false).unwrap();
        assert_eq!(summary.files, 3);
        assert_eq!(std::fs::read(target.join("X/a")).unwrap(), b"a");
        assert_eq!(std::fs::read(target.join("X.bak")).unwrap(), b"b");
        let names: Vec<_> = std::fs::read_dir(work.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.starts_with('.')), "{names:?}");
    }

    #[test]
    fn paths_must_stay_inside() {
        assert!(plain_relative("otp/duk.bin"));
        assert!(plain_relative("fs/USER/a b"));
        for bad in ["../x", "/etc/passwd", "a/../../b", "./a", "a\\..\\b"] {
            assert!(!plain_relative(bad), "{bad}");
        }
    }
}
