//! AT over a pseudo-terminal, for minicom, picocom, screen, pyserial or ubxlib.
//!
//! The emulator keeps the slave side open itself, so clients can open and close the device as
//! often as they like without the master seeing a hang-up. The slave is put in raw mode so the
//! line discipline passes CR, LF and binary payloads through unchanged. Output written while no
//! client listens is dropped once the terminal's buffer is full, as on a real UART.

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;
use std::time::Duration;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::pty::openpty;
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};

use super::SharedModule;
use super::session::{self, Read, Transport};

/// Reads and writes a file descriptor with `poll(2)` timeouts.
pub(super) struct FdTransport {
    pub(super) reader: File,
    pub(super) writer: File,
    /// Drop output the peer is not reading instead of blocking (PTY with no client).
    pub(super) drop_when_full: bool,
}

impl Transport for FdTransport {
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Read> {
        let ms = u16::try_from(timeout.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.reader.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => return Ok(Read::Idle),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return Ok(Read::Idle),
            Err(e) => return Err(e.into()),
        }
        match self.reader.read(buf) {
            Ok(0) => Ok(Read::Closed),
            Ok(n) => Ok(Read::Data(n)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(Read::Idle)
            }
            Err(e) => Err(e),
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self.writer.write_all(data) {
            Err(e) if self.drop_when_full && e.kind() == io::ErrorKind::WouldBlock => {
                tracing::debug!(
                    bytes = data.len(),
                    "no reader on the terminal; output dropped"
                );
                Ok(())
            }
            other => other.and_then(|()| self.writer.flush()),
        }
    }
}

pub(super) fn spawn(
    link: &Path,
    module: SharedModule,
    shutdown: Arc<AtomicBool>,
) -> io::Result<(PathBuf, JoinHandle<()>)> {
    let pty = openpty(None, None).map_err(io::Error::from)?;
    let mut termios = tcgetattr(&pty.slave).map_err(io::Error::from)?;
    cfmakeraw(&mut termios);
    tcsetattr(&pty.slave, SetArg::TCSANOW, &termios).map_err(io::Error::from)?;
    let slave_path = nix::unistd::ttyname(&pty.slave).map_err(io::Error::from)?;
    let flags = fcntl(&pty.master, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    fcntl(
        &pty.master,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(io::Error::from)?;

    if link.is_symlink() {
        std::fs::remove_file(link)?;
    } else if link.exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a symlink; choose another --pty path",
                link.display()
            ),
        ));
    }
    std::os::unix::fs::symlink(&slave_path, link)?;
    tracing::info!(link = %link.display(), slave = %slave_path.display(), "AT on a pseudo-terminal");

    let master: OwnedFd = pty.master;
    let writer = File::from(master.try_clone()?);
    let reader = File::from(master);
    let slave = pty.slave;
    let label = link.display().to_string();
    let handle = std::thread::Builder::new()
        .name("pty".into())
        .spawn(move || {
            // Holding the slave keeps the master readable while clients come and go.
            let _slave_kept_open = slave;
            let mut t = FdTransport {
                reader,
                writer,
                drop_when_full: true,
            };
            session::run(&module, &mut t, &shutdown, &label);
        })?;
    Ok((slave_path, handle))
}
