//! AT over a pseudo-terminal, for minicom, picocom, screen, pyserial or ubxlib.
//!
//! The emulator keeps the slave side open itself, so clients can open and close the device as
//! often as they like without the master seeing a hang-up. The slave is put in raw mode so the
//! line discipline passes CR, LF and binary payloads through unchanged. The master is
//! non-blocking and registered with the runtime's reactor. Output that no client reads is
//! dropped once the terminal's buffer stays full for a second (`STALL`), as on a UART without flow
//! control. On the `toby-l2` timing profile the terminal carries bytes at the module's UART
//! rate (115200 baud, 8N1), each way.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::pty::openpty;
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use tokio::net::unix::pipe;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Edge;
use crate::session::{self, Transport};

/// How long output may wait for a client to read before it is dropped.
const STALL: Duration = Duration::from_secs(1);

/// Opens a pseudo-terminal, points `link` at its slave and spawns its channel; returns the
/// slave's path and the channel's task.
pub(crate) fn spawn(
    edge: &Edge,
    link: &Path,
    stop: watch::Receiver<bool>,
) -> io::Result<(PathBuf, JoinHandle<()>)> {
    let (master, slave, slave_path) = open_linked(link)?;
    tracing::info!(link = %link.display(), slave = %slave_path.display(), "AT on a pseudo-terminal");

    // tokio's pipe ends are plain non-blocking read(2)/write(2) on a registered descriptor,
    // which is what a PTY master needs too; each direction gets its own descriptor.
    let (reader, writer) = {
        let _runtime = edge.handle().enter();
        let reader = pipe::Receiver::from_owned_fd_unchecked(master.try_clone()?)?;
        let writer = pipe::Sender::from_owned_fd_unchecked(master)?;
        (reader, writer)
    };
    let label = link.display().to_string();
    // The timing profile paces a pseudo-terminal as the module's UART (TCP is its USB).
    let baud = edge.module().lock().timing().baud;
    let edge = edge.clone();
    let task = edge.handle().clone().spawn(async move {
        // Holding the slave keeps the master readable while clients come and go.
        let _slave_kept_open = slave;
        let transport = Transport {
            label: &label,
            stall: Some(STALL),
            hang_up: false,
            baud,
        };
        session::run(&edge, reader, writer, transport, stop).await;
    });
    Ok((slave_path, task))
}

/// Opens a pseudo-terminal whose slave is in raw mode (CR, LF and binary pass unchanged) and
/// whose master is non-blocking, and points the symlink `link` at the slave (replacing a
/// symlink there, refusing anything else); returns the master, the slave and its path.
pub fn open_linked(link: &Path) -> io::Result<(OwnedFd, OwnedFd, PathBuf)> {
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
    Ok((pty.master, pty.slave, slave_path))
}
