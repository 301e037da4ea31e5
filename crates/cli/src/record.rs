//! Where a workflow's run is recorded (`--ledger`, `--no-ledger`, `--station`, `--operator`):
//! shared by `sealcell provision` and `sealcell fota` (spec/cli.md, "The production line").

use anyhow::anyhow;
use clap::Args;
use sealcell_ledger::Ledger;

use crate::Failure;

/// The ledger file in the working directory when nothing else is named.
pub(crate) const DEFAULT_LEDGER: &str = "sealcell-ledger.db";

/// The recording options of a workflow.
#[derive(Debug, Args)]
pub(crate) struct RecordArgs {
    /// The ledger: a SQLite file, or postgres://USER@HOST/DB for stations sharing one (put a
    /// password in $SEALCELL_LEDGER, not here). Default: $SEALCELL_LEDGER, else
    /// ./sealcell-ledger.db.
    #[arg(long, value_name = "PATH|URL")]
    ledger: Option<String>,
    /// Record nothing.
    #[arg(long, conflicts_with = "ledger")]
    no_ledger: bool,
    /// This station's name in the ledger (default: $SEALCELL_STATION, else the host name).
    #[arg(long, value_name = "NAME")]
    station: Option<String>,
    /// The operator's name in the ledger (default: $SEALCELL_OPERATOR, else $USER).
    #[arg(long, value_name = "NAME")]
    operator: Option<String>,
}

impl RecordArgs {
    /// The ledger to record in (none with `--no-ledger`).
    pub(crate) fn open(&self) -> Result<Option<Ledger>, Failure> {
        if self.no_ledger {
            return Ok(None);
        }
        open_ledger_spec(self.ledger.as_deref()).map(Some)
    }

    /// This station's name.
    pub(crate) fn station(&self) -> String {
        self.station
            .clone()
            .or_else(|| std::env::var("SEALCELL_STATION").ok())
            .or_else(|| {
                nix::unistd::gethostname()
                    .ok()
                    .and_then(|h| h.into_string().ok())
            })
            .unwrap_or_else(|| "station".into())
    }

    /// The operator's name.
    pub(crate) fn operator(&self) -> String {
        self.operator
            .clone()
            .or_else(|| std::env::var("SEALCELL_OPERATOR").ok())
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "unknown".into())
    }
}

/// Opens the ledger named by `spec` (from `--ledger`), `$SEALCELL_LEDGER` or the default file.
pub(crate) fn open_ledger_spec(spec: Option<&str>) -> Result<Ledger, Failure> {
    if spec.is_some_and(has_url_password) {
        eprintln!(
            "warning: a database password on the command line can leak (shell history, ps); \
             put the URL in $SEALCELL_LEDGER instead"
        );
    }
    let spec = spec
        .map(str::to_string)
        .or_else(|| std::env::var("SEALCELL_LEDGER").ok())
        .unwrap_or_else(|| DEFAULT_LEDGER.to_string());
    Ledger::open(&spec).map_err(|e| {
        Failure::usage(
            anyhow!("{e}"),
            Some("--ledger takes a SQLite file path or a postgres:// URL".into()),
        )
    })
}

/// Whether a `postgres://user:password@...` URL (or one with `?password=`) carries a password.
fn has_url_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let in_userinfo = authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'));
    let in_query = rest.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|kv| kv.to_ascii_lowercase().starts_with("password="))
    });
    in_userinfo || in_query
}

/// Now, in milliseconds since the Unix epoch (the ledger's time stamps).
pub(crate) fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_noticed() {
        assert!(has_url_password("postgres://line:s3cret@db.example/ledger"));
        assert!(!has_url_password("postgres://line@db.example/ledger"));
        assert!(!has_url_password("postgres://db.example:5432/ledger"));
        assert!(!has_url_password("/var/lib/sealcell/ledger.db"));
        assert!(has_url_password(
            "postgres://line@db/ledger?sslmode=disable&password=x"
        ));
        assert!(has_url_password("postgresql://db/ledger?Password=x"));
        assert!(!has_url_password(
            "postgres://line@db/ledger?sslmode=disable"
        ));
    }
}
