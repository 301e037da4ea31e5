//! Runs the `sealcell` binary as a child process, the way a user does.

#![allow(dead_code, unreachable_pub)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_sealcell");
pub const TEST_IMEI: &str = "490154203237518";

/// A running `sealcell modem`.
pub struct Modem {
    pub child: Child,
    pub addr: Option<SocketAddr>,
    pub stderr: mpsc::Receiver<String>,
    seen_addr: Option<SocketAddr>,
}

impl Modem {
    /// Starts `sealcell modem --data DIR --listen tcp:127.0.0.1:0 ARGS...` and waits until it listens.
    pub fn start(dir: &Path, args: &[&str]) -> Modem {
        let mut cmd = Command::new(BIN);
        cmd.arg("modem").arg("--data").arg(dir).args(args);
        if !args
            .iter()
            .any(|a| *a == "--pty" || *a == "--stdio" || *a == "--listen")
        {
            cmd.args(["--listen", "tcp:127.0.0.1:0"]);
        }
        Self::spawn(cmd, !args.contains(&"--stdio"))
    }

    pub fn spawn(mut cmd: Command, wait_for_listen: bool) -> Modem {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "trace");
        let mut child = cmd.spawn().expect("spawn sealcell");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut m = Modem {
            child,
            addr: None,
            stderr: rx,
            seen_addr: None,
        };
        if wait_for_listen {
            m.wait_for_stderr(|l| {
                l.contains("listening on tcp:") || l.contains(" on /") || l.contains(" -> ")
            });
            if let Some(a) = m.seen_addr.take() {
                m.addr = Some(a);
            }
        }
        m
    }

    /// Waits for a stderr line matching `pred`, remembering a listen address on the way.
    pub fn wait_for_stderr(&mut self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .stderr
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no matching stderr line in time"));
            if let Some(rest) = line.split("listening on tcp:").nth(1) {
                self.seen_addr = rest.trim().parse().ok();
            }
            if pred(&line) {
                return line;
            }
        }
    }

    /// The control socket's address (`tcp:HOST:PORT`) once a `--control` modem has said it.
    pub fn control(&mut self) -> String {
        let line = self.wait_for_stderr(|l| l.contains("control socket on tcp:"));
        format!("tcp:{}", line.split("on tcp:").nth(1).unwrap().trim())
    }

    pub fn connect(&self) -> At {
        At::connect(self.addr.expect("modem listens on TCP"))
    }

    /// kill -9.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    pub fn wait_exit(mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("sealcell did not exit within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Modem {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sealcell ctl --control CONTROL ARGS...`.
pub fn ctl(control: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["ctl", "--control", control])
        .args(args)
        .output()
        .unwrap()
}

/// [`ctl`], which must succeed; returns what it printed.
pub fn taken(control: &str, args: &[&str]) -> String {
    let out = ctl(control, args);
    assert!(
        out.status.success(),
        "ctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A small AT client over TCP for tests: sends a line and reads up to the final result.
pub struct At {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
}

impl At {
    pub fn connect(addr: SocketAddr) -> At {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        At {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads until the accumulated output ends with `suffix`; returns and clears it.
    pub fn read_until(&mut self, suffix: &[u8]) -> Vec<u8> {
        let mut chunk = [0u8; 65536];
        while !self.buf.ends_with(suffix) {
            let n = self.stream.read(&mut chunk).expect("read");
            assert!(
                n > 0,
                "connection closed; got {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
        std::mem::take(&mut self.buf)
    }

    /// Sends `line` + CR and returns everything up to a final result.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r").as_bytes());
        let mut chunk = [0u8; 65536];
        loop {
            let text = String::from_utf8_lossy(&self.buf).into_owned();
            if text.ends_with("\r\nOK\r\n")
                || text.ends_with("ERROR\r\n")
                || text.ends_with("\r\n>")
            {
                self.buf.clear();
                return text;
            }
            let n = self.stream.read(&mut chunk).expect("read");
            assert!(n > 0, "connection closed after {text:?}");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

pub fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A TCP proxy in front of the module that kills it (SIGKILL) as soon as the host has sent
/// `kill_after` command lines (CRs) — the module may or may not have acted on the last one.
pub fn killing_proxy(
    module: SocketAddr,
    pid: u32,
    kill_after: usize,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    std::thread::spawn(move || {
        for host in listener.incoming() {
            let Ok(mut host) = host else { return };
            let Ok(mut dce) = TcpStream::connect(module) else {
                return;
            };
            let mut back = dce.try_clone().unwrap();
            let mut host_w = host.try_clone().unwrap();
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut back, &mut host_w);
            });
            let mut buf = [0u8; 4096];
            loop {
                let n = match host.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let _ = dce.write_all(&buf[..n]);
                let crs = buf[..n].iter().filter(|&&b| b == b'\r').count();
                if counter.fetch_add(crs, Ordering::SeqCst) + crs >= kill_after {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    let _ = host.shutdown(std::net::Shutdown::Both);
                    return;
                }
            }
        }
    });
    (addr, seen)
}

/// The `sealcell` binary with a pseudo-terminal as its stdin, stdout and stderr, as a person at a
/// terminal runs it: `master` is the terminal's keyboard (write) and screen (`output`, chunks as
/// they come, read by a thread).
pub struct OnTerminal {
    pub child: Child,
    pub master: std::fs::File,
    pub output: mpsc::Receiver<Vec<u8>>,
}

impl OnTerminal {
    pub fn spawn<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> OnTerminal {
        use std::os::fd::OwnedFd;
        let pty = nix::pty::openpty(None, None).unwrap();
        let slave: OwnedFd = pty.slave;
        let child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn()
            .unwrap();
        let master = std::fs::File::from(pty.master);
        let mut reader = master.try_clone().unwrap();
        let (tx, output) = mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        OnTerminal {
            child,
            master,
            output,
        }
    }
}
