//! A storage whose power the test bench can cut ([`PowerSwitch`]): the running emulator's
//! disk, able to lose power now or at its Nth durable write, as the crash tests' simulated
//! disk does.
//!
//! Every mutating operation of the storage under it is durable when it returns (the file made
//! durable, renamed, the directory synced) and atomic (a crash during it leaves the old
//! state). So a cut at a write boundary is exactly "only what was fsynced survives": the writes
//! before it happened whole, the one it lands on and every one after do not happen at all.
//! After a cut every operation of that boot is refused (a job still running writes nothing);
//! [`PowerSwitch::power_on`] gives the next boot a switch of its own.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::{ReadAt, Storage, TempFile};

/// A [`Storage`] with a power switch. Cheap to clone (clones share the switch and the boot).
#[derive(Clone, Debug)]
pub struct PowerSwitch {
    inner: Arc<dyn Storage>,
    shared: Arc<Shared>,
    /// The boot this handle belongs to.
    boot: u64,
}

/// The switch all handles share. Whether there is power is read without a lock (the module
/// asks after every call); the counts take the mutex.
#[derive(Debug, Default)]
struct Shared {
    /// The boot that has power.
    boot: AtomicU64,
    /// The power of that boot is cut.
    cut: AtomicBool,
    counts: Mutex<Power>,
}

#[derive(Debug, Default)]
struct Power {
    /// Durable writes left before the cut (`Some(1)`: the next write is the one it lands on).
    writes_left: Option<u64>,
    /// Durable writes begun since the process started (the one a cut lands on counts).
    writes: u64,
}

fn power_lost() -> io::Error {
    io::Error::other("power lost")
}

impl PowerSwitch {
    /// `inner` with its power on.
    pub fn new(inner: Arc<dyn Storage>) -> PowerSwitch {
        PowerSwitch {
            inner,
            shared: Arc::default(),
            boot: 0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Power> {
        self.shared.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cuts the power at the `n`th durable write from now (1: the next one); `None` disarms.
    pub fn cut_at_write(&self, n: Option<u64>) {
        self.lock().writes_left = n.filter(|n| *n > 0);
    }

    /// How many writes are left before an armed cut.
    pub fn writes_left(&self) -> Option<u64> {
        self.lock().writes_left
    }

    /// Cuts the power now.
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
    }

    /// Whether this handle's boot has lost its power.
    pub fn is_cut(&self) -> bool {
        self.shared.boot.load(Ordering::SeqCst) != self.boot
            || self.shared.cut.load(Ordering::SeqCst)
    }

    /// Durable writes begun since the process started, the one a cut landed on included.
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }

    /// Powers the disk on for a new boot and returns its handle; every handle of the boots
    /// before stays without power.
    pub fn power_on(&self) -> PowerSwitch {
        let mut p = self.lock();
        p.writes_left = None;
        let boot = self.shared.boot.fetch_add(1, Ordering::SeqCst) + 1;
        self.shared.cut.store(false, Ordering::SeqCst);
        drop(p);
        PowerSwitch {
            inner: Arc::clone(&self.inner),
            shared: Arc::clone(&self.shared),
            boot,
        }
    }

    fn alive(&self) -> io::Result<()> {
        if self.is_cut() {
            Err(power_lost())
        } else {
            Ok(())
        }
    }

    /// Counts a durable write about to happen: an error (and the power cut) when it is the one
    /// an armed cut lands on.
    fn write_step(&self) -> io::Result<()> {
        let mut p = self.lock();
        if self.is_cut() {
            return Err(power_lost());
        }
        if let Some(left) = p.writes_left.as_mut() {
            *left -= 1;
            if *left == 0 {
                p.writes_left = None;
                self.cut();
                p.writes += 1;
                tracing::info!(write = p.writes, "power cut at a storage write");
                return Err(power_lost());
            }
        }
        p.writes += 1;
        Ok(())
    }
}

impl Storage for PowerSwitch {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read(path)
    }

    fn read_range(&self, path: &Path, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        self.inner.read_range(path, offset, len)
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        self.inner.len(path)
    }

    fn is_file(&self, path: &Path) -> bool {
        self.inner.is_file(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.alive()?;
        self.inner.create_dir_all(dir)
    }

    fn create_temp(&self, dir: &Path) -> io::Result<Box<dyn TempFile>> {
        self.alive()?;
        let inner = self.inner.create_temp(dir)?;
        Ok(Box::new(SwitchedTemp {
            inner,
            switch: self.clone(),
        }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.write_step()?;
        self.inner.remove(path)
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadAt>> {
        self.inner.open_read(path)
    }

    fn restrict_root(&self) -> io::Result<()> {
        self.alive()?;
        self.inner.restrict_root()
    }
}

/// A temporary file of a switched storage: writing it needs power, committing it is one
/// durable write.
struct SwitchedTemp {
    inner: Box<dyn TempFile>,
    switch: PowerSwitch,
}

impl TempFile for SwitchedTemp {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.switch.alive()?;
        self.inner.write(bytes)
    }

    fn flush_early(&mut self) -> io::Result<()> {
        self.inner.flush_early()
    }

    fn commit(self: Box<Self>, dest: &Path, mode: Option<u32>) -> io::Result<()> {
        self.switch.write_step()?;
        self.inner.commit(dest, mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CrashMode, SimStorage};

    #[test]
    fn a_cut_at_the_nth_write_keeps_the_writes_before_and_none_after() {
        let disk = SimStorage::new();
        let switch = PowerSwitch::new(Arc::new(disk.clone()));
        switch.cut_at_write(Some(2));
        switch.write_atomic(Path::new("a"), b"1").unwrap();
        assert!(switch.write_atomic(Path::new("b"), b"2").is_err());
        assert!(switch.is_cut());
        assert!(switch.write_atomic(Path::new("c"), b"3").is_err());
        assert!(switch.remove(Path::new("a")).is_err());
        let after = disk.crash(CrashMode::LoseUnsynced);
        assert_eq!(after.read(Path::new("a")).unwrap(), b"1");
        assert!(!after.is_file(Path::new("b")) && !after.is_file(Path::new("c")));
        // The next boot has power; the old one's handles still have none.
        let next = switch.power_on();
        next.write_atomic(Path::new("d"), b"4").unwrap();
        assert!(switch.write_atomic(Path::new("e"), b"5").is_err());
        // a, b (the cut), d.
        assert_eq!(next.writes(), 3);
    }
}
