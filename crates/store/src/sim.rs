//! A simulated disk with power-loss semantics, for crash-at-every-write tests (in the manner of
//! MCUboot's `perm_with_fails` and redb's fuzzer backend).
//!
//! The model follows what POSIX promises and no more: file data survives a crash only up to the
//! last fsync of that file, and a directory entry (a create, a rename, an unlink) survives only
//! if its directory was fsynced afterwards. Every mutating primitive (create a temp file, write,
//! fsync a file, rename, fsync a directory, unlink, mkdir) is one numbered step; the storage can
//! be told to fail at step N, after which it is "powered off" and every call fails until
//! [`SimStorage::crash`] produces the disk as the next boot sees it.

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::{Storage, TempFile};

/// What survives the crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashMode {
    /// Power loss: only fsynced data and fsynced directory entries survive.
    LoseUnsynced,
    /// Process death (kill -9): everything the kernel accepted survives.
    KeepAll,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    File(u64),
    Dir,
}

#[derive(Clone, Debug, Default)]
struct Dir {
    entries: BTreeMap<String, Node>,
    synced: BTreeMap<String, Node>,
}

#[derive(Clone, Debug, Default)]
struct Inode {
    data: Vec<u8>,
    synced: Vec<u8>,
}

#[derive(Clone, Debug)]
struct State {
    dirs: BTreeMap<PathBuf, Dir>,
    inodes: BTreeMap<u64, Inode>,
    next_inode: u64,
    next_temp: u64,
    steps: u64,
    fail_at: Option<u64>,
    dead: bool,
}

impl Default for State {
    fn default() -> Self {
        State {
            dirs: BTreeMap::from([(PathBuf::new(), Dir::default())]),
            inodes: BTreeMap::new(),
            next_inode: 1,
            next_temp: 0,
            steps: 0,
            fail_at: None,
            dead: false,
        }
    }
}

fn power_off() -> io::Error {
    io::Error::other("simulated power loss")
}

fn normalize(path: &Path) -> io::Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("unsupported path {}", path.display()),
                ));
            }
        }
    }
    Ok(out)
}

fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let path = normalize(path)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?
        .to_string();
    let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok((parent, name))
}

impl State {
    fn alive(&self) -> io::Result<()> {
        if self.dead { Err(power_off()) } else { Ok(()) }
    }

    /// Counts one mutating step; fails (and powers off) at the configured step.
    fn step(&mut self) -> io::Result<()> {
        self.alive()?;
        self.steps += 1;
        if self.fail_at == Some(self.steps) {
            self.dead = true;
            return Err(power_off());
        }
        Ok(())
    }

    fn dir_mut(&mut self, dir: &Path) -> io::Result<&mut Dir> {
        self.dirs.get_mut(dir).ok_or_else(|| crate::not_found(dir))
    }

    fn file(&self, path: &Path) -> io::Result<&Inode> {
        self.alive()?;
        let (parent, name) = split(path)?;
        match self.dirs.get(&parent).and_then(|d| d.entries.get(&name)) {
            Some(Node::File(ino)) => self.inodes.get(ino).ok_or_else(|| crate::not_found(path)),
            _ => Err(crate::not_found(path)),
        }
    }

    fn after_crash(&self, mode: CrashMode) -> State {
        let mut next = State {
            dirs: BTreeMap::new(),
            inodes: BTreeMap::new(),
            next_inode: self.next_inode,
            next_temp: self.next_temp,
            steps: 0,
            fail_at: None,
            dead: false,
        };
        // Walk from the root through the entries that survive.
        let mut stack = vec![PathBuf::new()];
        while let Some(path) = stack.pop() {
            let Some(dir) = self.dirs.get(&path) else {
                continue;
            };
            let entries = match mode {
                CrashMode::LoseUnsynced => dir.synced.clone(),
                CrashMode::KeepAll => dir.entries.clone(),
            };
            for (name, node) in &entries {
                match node {
                    Node::Dir => stack.push(path.join(name)),
                    Node::File(ino) => {
                        if let Some(inode) = self.inodes.get(ino) {
                            let data = match mode {
                                CrashMode::LoseUnsynced => inode.synced.clone(),
                                CrashMode::KeepAll => inode.data.clone(),
                            };
                            next.inodes.insert(
                                *ino,
                                Inode {
                                    synced: data.clone(),
                                    data,
                                },
                            );
                        }
                    }
                }
            }
            next.dirs.insert(
                path,
                Dir {
                    synced: entries.clone(),
                    entries,
                },
            );
        }
        next
    }
}

/// The simulated disk. Clones share the same disk.
#[derive(Clone, Debug, Default)]
pub struct SimStorage {
    state: Arc<Mutex<State>>,
}

impl SimStorage {
    /// An empty disk.
    pub fn new() -> SimStorage {
        SimStorage::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Mutating steps taken so far.
    pub fn steps(&self) -> u64 {
        self.lock().steps
    }

    /// Fails, and powers off, at mutating step `step` (counted from the start of this disk's
    /// life or the last [`SimStorage::crash`]); `None` never fails.
    pub fn fail_at(&self, step: Option<u64>) {
        self.lock().fail_at = step;
    }

    /// Whether the disk has powered off.
    pub fn is_dead(&self) -> bool {
        self.lock().dead
    }

    /// The disk as the next boot finds it, as a new storage (this one stays as it was).
    pub fn crash(&self, mode: CrashMode) -> SimStorage {
        SimStorage {
            state: Arc::new(Mutex::new(self.lock().after_crash(mode))),
        }
    }

    /// Every file with its content, for comparing states.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let s = self.lock();
        let mut out = BTreeMap::new();
        for (path, dir) in &s.dirs {
            for (name, node) in &dir.entries {
                if let Node::File(ino) = node
                    && let Some(inode) = s.inodes.get(ino)
                {
                    out.insert(path.join(name), inode.data.clone());
                }
            }
        }
        out
    }
}

impl Storage for SimStorage {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        Ok(self.lock().file(path)?.data.clone())
    }

    fn read_range(&self, path: &Path, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let s = self.lock();
        let data = &s.file(path)?.data;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let end = start
            .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
            .min(data.len());
        Ok(data[start..end].to_vec())
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        Ok(self.lock().file(path)?.data.len() as u64)
    }

    fn is_file(&self, path: &Path) -> bool {
        self.lock().file(path).is_ok()
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.lock();
        s.alive()?;
        let dir = normalize(dir)?;
        let d = s.dirs.get(&dir).ok_or_else(|| crate::not_found(&dir))?;
        Ok(d.entries
            .iter()
            .filter(|(_, n)| matches!(n, Node::File(_)))
            .map(|(k, _)| k.clone())
            .collect())
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let dir = normalize(dir)?;
        let mut s = self.lock();
        s.alive()?;
        let mut prefix = PathBuf::new();
        for c in dir.components() {
            let parent = prefix.clone();
            prefix.push(c);
            if s.dirs.contains_key(&prefix) {
                continue;
            }
            let name = c.as_os_str().to_string_lossy().into_owned();
            if s.dirs
                .get(&parent)
                .and_then(|d| d.entries.get(&name))
                .is_some()
            {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} is a file", prefix.display()),
                ));
            }
            s.step()?;
            s.dir_mut(&parent)?.entries.insert(name, Node::Dir);
            s.dirs.insert(prefix.clone(), Dir::default());
            s.step()?;
            let p = s.dir_mut(&parent)?;
            p.synced = p.entries.clone();
        }
        Ok(())
    }

    fn create_temp(&self, dir: &Path) -> io::Result<Box<dyn TempFile>> {
        let dir = normalize(dir)?;
        let mut s = self.lock();
        s.alive()?;
        if !s.dirs.contains_key(&dir) {
            return Err(crate::not_found(&dir));
        }
        s.step()?;
        let ino = s.next_inode;
        s.next_inode += 1;
        let name = format!(":tmp:sim:{}", s.next_temp);
        s.next_temp += 1;
        s.inodes.insert(ino, Inode::default());
        s.dir_mut(&dir)?
            .entries
            .insert(name.clone(), Node::File(ino));
        Ok(Box::new(SimTemp {
            disk: self.clone(),
            dir,
            name,
            ino,
            done: false,
        }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let (parent, name) = split(path)?;
        let mut s = self.lock();
        s.alive()?;
        match s.dirs.get(&parent).and_then(|d| d.entries.get(&name)) {
            Some(Node::File(_)) => {}
            _ => return Err(crate::not_found(path)),
        }
        s.step()?;
        s.dir_mut(&parent)?.entries.remove(&name);
        s.step()?;
        let d = s.dir_mut(&parent)?;
        d.synced = d.entries.clone();
        Ok(())
    }
}

struct SimTemp {
    disk: SimStorage,
    dir: PathBuf,
    name: String,
    ino: u64,
    done: bool,
}

impl TempFile for SimTemp {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut s = self.disk.lock();
        s.step()?;
        let inode = s
            .inodes
            .get_mut(&self.ino)
            .ok_or_else(|| io::Error::other("temp file vanished"))?;
        inode.data.extend_from_slice(bytes);
        Ok(())
    }

    fn commit(mut self: Box<Self>, dest: &Path, _mode: Option<u32>) -> io::Result<()> {
        self.done = true;
        let (parent, name) = split(dest)?;
        let mut s = self.disk.lock();
        // fsync(file)
        s.step()?;
        let inode = s
            .inodes
            .get_mut(&self.ino)
            .ok_or_else(|| io::Error::other("temp file vanished"))?;
        inode.synced = inode.data.clone();
        // rename(temp, dest)
        if !s.dirs.contains_key(&parent) {
            return Err(crate::not_found(&parent));
        }
        s.step()?;
        s.dir_mut(&self.dir)?.entries.remove(&self.name);
        s.dir_mut(&parent)?
            .entries
            .insert(name, Node::File(self.ino));
        // fsync(dir)
        s.step()?;
        let d = s.dir_mut(&parent)?;
        d.synced = d.entries.clone();
        Ok(())
    }
}

impl Drop for SimTemp {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut s = self.disk.lock();
        if !s.dead
            && let Some(d) = s.dirs.get_mut(&self.dir)
        {
            d.entries.remove(&self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    #[test]
    fn only_synced_state_survives_power_loss() {
        let d = SimStorage::new();
        d.create_dir_all(p("a")).unwrap();
        d.write_atomic(p("a/f"), b"old").unwrap();
        // A temp file that was written but not committed is gone after the crash.
        let mut t = d.create_temp(p("a")).unwrap();
        t.write(b"new").unwrap();
        let after = d.crash(CrashMode::LoseUnsynced);
        assert_eq!(after.read(p("a/f")).unwrap(), b"old");
        assert_eq!(after.list(p("a")).unwrap(), ["f"]);
        // With KeepAll the temp file is still there (a crashed process leaves it behind).
        assert_eq!(d.crash(CrashMode::KeepAll).list(p("a")).unwrap().len(), 2);
        drop(t);
    }

    #[test]
    fn atomic_write_is_old_or_new_at_every_step() {
        let base = SimStorage::new();
        base.create_dir_all(p("d")).unwrap();
        base.write_atomic(p("d/f"), b"old").unwrap();
        let start = base.steps();
        let probe = base.crash(CrashMode::KeepAll);
        probe.write_atomic(p("d/f"), b"new").unwrap();
        let steps = probe.steps();
        assert_eq!(steps, 5, "create, write, fsync, rename, fsync dir");
        for fail in 1..=steps {
            for mode in [CrashMode::LoseUnsynced, CrashMode::KeepAll] {
                let d = base.crash(CrashMode::KeepAll);
                d.fail_at(Some(fail));
                assert!(d.write_atomic(p("d/f"), b"new").is_err());
                assert!(d.is_dead());
                let after = d.crash(mode);
                let got = after.read(p("d/f")).unwrap();
                assert!(
                    got == b"old" || got == b"new",
                    "step {fail} {mode:?}: {got:?}"
                );
                if fail < 4 {
                    assert_eq!(got, b"old", "before the rename the old content stays");
                }
            }
        }
        let _ = start;
    }

    #[test]
    fn a_rename_without_a_directory_sync_is_lost_on_power_loss() {
        let d = SimStorage::new();
        d.write_atomic(p("f"), b"v1").unwrap();
        d.fail_at(Some(d.steps() + 5));
        assert!(d.write_atomic(p("f"), b"v2").is_err());
        assert_eq!(
            d.crash(CrashMode::LoseUnsynced).read(p("f")).unwrap(),
            b"v1"
        );
        assert_eq!(d.crash(CrashMode::KeepAll).read(p("f")).unwrap(), b"v2");
    }

    #[test]
    fn removes_need_a_directory_sync() {
        let d = SimStorage::new();
        d.write_atomic(p("f"), b"x").unwrap();
        d.fail_at(Some(d.steps() + 2));
        assert!(d.remove(p("f")).is_err());
        assert!(d.crash(CrashMode::LoseUnsynced).is_file(p("f")));
        assert!(!d.crash(CrashMode::KeepAll).is_file(p("f")));
    }
}
