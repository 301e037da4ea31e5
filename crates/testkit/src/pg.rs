//! A throw-away PostgreSQL server for one test: [`PgServer`].
//!
//! [`PgServer::start`] makes a private directory under `/tmp`, runs `initdb` (trust
//! authentication, no fsync: the data is thrown away), starts the server with `pg_ctl` on
//! 127.0.0.1 at a free port with its Unix socket in that directory, creates the role `sealcell`
//! and the database `ledger`, and waits until it accepts connections. Dropping the value stops the
//! server (`pg_ctl stop -m immediate`) and removes the directory. Several tests may start servers
//! at the same time: each gets its own directory and port.
//!
//! The binaries come from `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin`,
//! else `PATH`. When they are missing, [`PgServer::start`] **panics** (a test must never pass by
//! skipping) with the line that installs them: `apt-get install -y postgresql`.
//!
//! `initdb` and `postgres` refuse to run as root. When the effective uid is 0 (CI, containers),
//! they run as the `postgres` system user (created by Debian's `postgresql` package) through
//! `runuser -u postgres --`, and the directory is owned by that user (mode 0700).
//!
//! ```no_run
//! let pg = sealcell_testkit::pg::PgServer::start();
//! let url = pg.url(); // postgres://sealcell@127.0.0.1:PORT/ledger
//! let other = pg.create_database("second"); // another empty database on the same server
//! # let _ = (url, other);
//! ```
//!
//! A server survives its test only when the test process is killed (SIGKILL) before `Drop`
//! runs; `pg_ctl stop` on the printed data directory ends it.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The role the test server makes for clients (trust authentication: no password).
pub const ROLE: &str = "sealcell";
/// The database the test server makes, owned by [`ROLE`].
pub const DATABASE: &str = "ledger";
/// The package that provides the binaries, for the panic message.
pub const INSTALL_HINT: &str = "apt-get install -y postgresql";

/// How long the server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How many ports to try when another process takes the free one first.
const PORT_ATTEMPTS: usize = 5;

/// A running throw-away PostgreSQL server; stopped and deleted on drop.
pub struct PgServer {
    /// Holds the directory; removed (after the server stopped) when dropped.
    dir: tempfile::TempDir,
    bindir: PathBuf,
    port: u16,
    /// `Some("postgres")` when the server binaries run as that user (we are root).
    run_as: Option<String>,
}

impl PgServer {
    /// Starts a server with the role [`ROLE`] and the database [`DATABASE`].
    ///
    /// # Panics
    ///
    /// When the PostgreSQL binaries are missing (the message holds [`INSTALL_HINT`]), when running
    /// as root without a `postgres` system user, or when the server does not start within 30 s
    /// (the message holds the server's log).
    pub fn start() -> PgServer {
        let bindir = find_bindir();
        let run_as = if nix::unistd::geteuid().is_root() {
            Some("postgres".to_string())
        } else {
            None
        };
        let dir = private_dir(run_as.as_deref());
        let mut server = PgServer {
            dir,
            bindir,
            port: 0,
            run_as,
        };
        server.initdb();
        server.start_on_free_port();
        server.wait_ready();
        server.psql("postgres", &format!("CREATE ROLE {ROLE} LOGIN"));
        server.psql(
            "postgres",
            &format!("CREATE DATABASE {DATABASE} OWNER {ROLE}"),
        );
        server
    }

    /// `postgres://sealcell@127.0.0.1:PORT/ledger`.
    pub fn url(&self) -> String {
        self.url_for(DATABASE)
    }

    /// The URL of database `name` on this server, as [`ROLE`].
    pub fn url_for(&self, name: &str) -> String {
        format!("postgres://{ROLE}@127.0.0.1:{}/{name}", self.port)
    }

    /// The TCP port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates another empty database `name` (a plain identifier) owned by [`ROLE`] and returns
    /// its URL.
    pub fn create_database(&self, name: &str) -> String {
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "database name must be a plain identifier: {name:?}"
        );
        self.psql("postgres", &format!("CREATE DATABASE {name} OWNER {ROLE}"));
        self.url_for(name)
    }

    /// Runs one SQL statement with `psql` as the superuser on database `db`; panics with psql's
    /// output when it fails. Returns psql's unaligned, tuples-only output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bindir.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", db, "-c", sql])
            .output()
            .unwrap_or_else(|e| panic!("cannot run psql: {e}"));
        check("psql", &out, || self.log());
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// A command for a server binary, run as `postgres` when we are root.
    fn server_command(&self, program: &str) -> Command {
        let program = self.bindir.join(program);
        let mut c = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        };
        // The test's working directory may not be readable by the `postgres` user.
        c.current_dir(self.dir.path()).env("LC_ALL", "C");
        c
    }

    fn initdb(&self) {
        let out = self
            .server_command("initdb")
            .arg("-D")
            .arg(self.data_dir())
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()
            .unwrap_or_else(|e| panic!("cannot run initdb: {e}"));
        check("initdb", &out, String::new);
    }

    fn start_on_free_port(&mut self) {
        for _ in 0..PORT_ATTEMPTS {
            self.port = free_port();
            let options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off",
                self.port,
                self.dir.path().display()
            );
            let out = self
                .server_command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.log_path())
                .args(["-o", &options, "-w", "-t", "30", "start"])
                .output()
                .unwrap_or_else(|e| panic!("cannot run pg_ctl: {e}"));
            if out.status.success() {
                return;
            }
            let log = self.log();
            if !(log.contains("could not bind") || log.contains("already in use")) {
                check("pg_ctl start", &out, || log.clone());
            }
        }
        panic!(
            "PostgreSQL found no free port in {PORT_ATTEMPTS} attempts; log:\n{}",
            self.log()
        );
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let ok = Command::new(self.bindir.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "PostgreSQL on port {} not ready after {READY_TIMEOUT:?}; log:\n{}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl std::fmt::Debug for PgServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgServer")
            .field("data", &self.data_dir())
            .field("port", &self.port)
            .field("run_as", &self.run_as)
            .finish()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Errors are ignored: the server may never have started (a panic in `start`).
        let _ = self
            .server_command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// The directory holding `initdb`, `pg_ctl`, `postgres`, `psql` and `pg_isready`.
fn find_bindir() -> PathBuf {
    let has_all = |d: &Path| {
        ["initdb", "pg_ctl", "postgres", "psql", "pg_isready"]
            .iter()
            .all(|b| d.join(b).is_file())
    };
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_all(&d) {
            return d;
        }
    }
    // Debian keeps the server binaries out of PATH, one directory per major version.
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, e.path().join("bin")))
        })
        .filter(|(_, d)| has_all(d))
        .collect();
    versions.sort();
    if let Some((_, d)) = versions.pop() {
        return d;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            if has_all(&d) {
                return d;
            }
        }
    }
    panic!(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres, psql, pg_isready) not found via \
         `pg_config --bindir`, /usr/lib/postgresql/*/bin or PATH; the PostgreSQL tests need \
         them: {INSTALL_HINT}"
    );
}

/// A fresh mode-0700 directory under /tmp, owned by `owner` when given.
fn private_dir(owner: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("sealcell-pg-")
        .tempdir_in("/tmp")
        .unwrap_or_else(|e| panic!("cannot create a directory under /tmp: {e}"));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", dir.path().display()));
    if let Some(user) = owner {
        let u = nix::unistd::User::from_name(user)
            .unwrap_or_else(|e| panic!("looking up user {user}: {e}"))
            .unwrap_or_else(|| {
                panic!(
                    "running as root, and PostgreSQL refuses root: the tests run the server as \
                     the `{user}` system user, which does not exist; {INSTALL_HINT} creates it"
                )
            });
        std::os::unix::fs::chown(dir.path(), Some(u.uid.as_raw()), Some(u.gid.as_raw()))
            .unwrap_or_else(|e| panic!("chown {} to {user}: {e}", dir.path().display()));
    }
    dir
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port: {e}"))
}

/// Panics with the command's output (and `extra`, e.g. the server log) when it failed.
fn check(what: &str, out: &Output, extra: impl FnOnce() -> String) {
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n{}{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            extra()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_and_stops() {
        let pg = PgServer::start();
        assert_eq!(
            pg.psql(DATABASE, "SELECT current_database()").trim(),
            DATABASE
        );
        let url = pg.url();
        assert!(url.starts_with("postgres://sealcell@127.0.0.1:"), "{url}");
        let second = pg.create_database("second");
        assert!(second.ends_with("/second"));
        let dir = pg.dir.path().to_path_buf();
        let port = pg.port();
        drop(pg);
        assert!(!dir.exists(), "{} left behind", dir.display());
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }

    #[test]
    fn parallel_servers_get_distinct_ports() {
        let a = std::thread::spawn(PgServer::start);
        let b = PgServer::start();
        let a = a.join().unwrap();
        assert_ne!(a.port(), b.port());
        assert_eq!(a.psql("postgres", "SELECT 1").trim(), "1");
        assert_eq!(b.psql("postgres", "SELECT 1").trim(), "1");
    }
}
