//! [`LedgerError`], and the redaction that keeps a PostgreSQL password out of every message.

use crate::model::RunId;

/// Why a ledger operation failed. Every message names the ledger by its redacted
/// [`location`](crate::Ledger::location): a password in a `postgres://` URL never appears.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The ledger cannot be opened: the SQLite file cannot be created or read (its directory
    /// must exist; it must be a SQLite database), or the PostgreSQL server cannot be reached or
    /// refused the login. Check the path or URL given by `--ledger` or `$SEALCELL_LEDGER`.
    #[error("cannot open the ledger {location}: {reason}")]
    Open {
        /// The ledger, password redacted.
        location: String,
        /// What went wrong, with a hint where one helps.
        reason: String,
    },
    /// Migration `version` failed and was rolled back: the database is as it was. The database
    /// user may lack the right to create tables, or the database holds foreign tables of the
    /// same names (`runs`, `seals`): use a database of its own for the ledger.
    #[error("ledger {location}: migration {version} failed (rolled back): {reason}")]
    Migration {
        /// The ledger, password redacted.
        location: String,
        /// The migration that failed.
        version: i64,
        /// The back end's message.
        reason: String,
    },
    /// The database was migrated by a newer sealcell (schema `found`, this build knows up to
    /// `known`); it is left untouched. Use a sealcell at least as new as the newest station's.
    #[error(
        "ledger {location} has schema version {found}, newer than this build knows ({known}); \
         use a newer sealcell"
    )]
    NewerSchema {
        /// The ledger, password redacted.
        location: String,
        /// The database's version.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// The database refused or failed a statement (disk full, connection lost, lock timeout);
    /// the transaction was rolled back. Retry once the cause is fixed.
    #[error("ledger {location}: database error: {reason}")]
    Database {
        /// The ledger, password redacted.
        location: String,
        /// The back end's message.
        reason: String,
    },
    /// No run has this id in this ledger (a [`RunId`] from another ledger?).
    #[error("the ledger has no run {0}")]
    UnknownRun(RunId),
    /// The run has already finished; a finished record is never changed.
    #[error("run {0} has already finished; a finished record is never changed")]
    AlreadyFinished(RunId),
    /// [`Ledger::finish_run`](crate::Ledger::finish_run) was given
    /// [`Outcome::Running`](crate::Outcome::Running); pass the final outcome.
    #[error("a run ends succeeded, failed or refused, not running")]
    NotAnEnd,
    /// [`Ledger::confirm_seal`](crate::Ledger::confirm_seal) for a module whose seal claim this
    /// run does not hold: claim it first ([`Ledger::claim_seal`](crate::Ledger::claim_seal)).
    #[error("run {run} holds no seal claim on module {imei}; claim it before sealing")]
    SealNotHeld {
        /// The module.
        imei: String,
        /// The run that tried to confirm.
        run: RunId,
    },
    /// A stored value cannot be read back (an unknown outcome, malformed JSON): the database was
    /// edited by hand or by a newer, incompatible build.
    #[error("ledger {location}: stored {what} is not valid: {reason}")]
    Corrupt {
        /// The ledger, password redacted.
        location: String,
        /// Which value (`run 7 outcome`).
        what: String,
        /// Why it is not valid.
        reason: String,
    },
    /// Writing an export failed (the output file's disk or pipe).
    #[error("cannot write the ledger export: {0}")]
    Export(#[source] std::io::Error),
}

/// How a ledger is named in messages, and the secret that must be scrubbed from them.
#[derive(Clone)]
pub(crate) struct Redactor {
    /// The display form: the path, or the URL with its password replaced by `***`.
    pub(crate) location: String,
    /// Password spellings (as written and percent-decoded) to scrub from back-end messages.
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.location)
    }
}

/// What replaces a password.
const REDACTED: &str = "***";

impl Redactor {
    /// The redactor for a ledger spec (a path or a `postgres://` URL).
    pub(crate) fn new(spec: &str) -> Redactor {
        let (location, found) = redact_url(spec);
        let mut secrets = Vec::new();
        for s in found {
            let decoded = percent_decode(&s);
            if !s.is_empty() {
                secrets.push(s);
            }
            if !decoded.is_empty() && !secrets.contains(&decoded) {
                secrets.push(decoded);
            }
        }
        let mut r = Redactor { location, secrets };
        // The password spelled elsewhere in the URL too (say, as the database name).
        r.location = r.scrub(&r.location);
        r
    }

    /// `message` without any spelling of the password.
    pub(crate) fn scrub(&self, message: &str) -> String {
        let mut m = message.to_string();
        for s in &self.secrets {
            m = m.replace(s.as_str(), REDACTED);
        }
        m
    }

    pub(crate) fn open(&self, reason: impl std::fmt::Display) -> LedgerError {
        LedgerError::Open {
            location: self.location.clone(),
            reason: self.scrub(&reason.to_string()),
        }
    }

    pub(crate) fn database(&self, reason: impl std::fmt::Display) -> LedgerError {
        LedgerError::Database {
            location: self.location.clone(),
            reason: self.scrub(&reason.to_string()),
        }
    }

    pub(crate) fn migration(&self, version: i64, reason: impl std::fmt::Display) -> LedgerError {
        LedgerError::Migration {
            location: self.location.clone(),
            version,
            reason: self.scrub(&reason.to_string()),
        }
    }

    pub(crate) fn corrupt(&self, what: String, reason: impl std::fmt::Display) -> LedgerError {
        LedgerError::Corrupt {
            location: self.location.clone(),
            what,
            reason: self.scrub(&reason.to_string()),
        }
    }
}

/// `spec` with the password of a `postgres://user:PASSWORD@...` URL and any `password=` query
/// parameter replaced by `***`, and the passwords found. Anything else is returned unchanged.
///
/// Errs on the side of hiding: everything between the first `:` of the user info and the last
/// `@` is taken as the password, even when it holds `/`, `?` or `#`.
pub(crate) fn redact_url(spec: &str) -> (String, Vec<String>) {
    let Some(scheme_len) = ["postgres://", "postgresql://"]
        .iter()
        .find(|s| spec.starts_with(*s))
        .map(|s| s.len())
    else {
        return (spec.to_string(), Vec::new());
    };
    let (scheme, rest) = spec.split_at(scheme_len);
    let mut found = Vec::new();
    let mut out = String::from(scheme);
    let after_auth = match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.split_once(':') {
                Some((user, password)) => {
                    found.push(password.to_string());
                    out.push_str(user);
                    out.push(':');
                    out.push_str(REDACTED);
                }
                None => out.push_str(userinfo),
            }
            out.push('@');
            &rest[at + 1..]
        }
        None => rest,
    };
    // `?password=...` (and `&password=...`) in the query.
    let mut tail = after_auth;
    while let Some(i) = find_password_param(tail) {
        let value_start = i + "password=".len();
        let value_end = tail[value_start..]
            .find('&')
            .map_or(tail.len(), |e| value_start + e);
        found.push(tail[value_start..value_end].to_string());
        out.push_str(&tail[..value_start]);
        out.push_str(REDACTED);
        tail = &tail[value_end..];
    }
    out.push_str(tail);
    (out, found)
}

/// The index of a `password=` that starts a query parameter in `s`.
fn find_password_param(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find("password=") {
        let i = from + i;
        if i > 0 && matches!(s.as_bytes()[i - 1], b'?' | b'&') {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// `%XX` decoded (invalid escapes kept as written); the text as the server sees the password.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_url_passwords() {
        let cases = [
            ("ledger.db", "ledger.db"),
            ("/tmp/x:y@z.db", "/tmp/x:y@z.db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://h:5432/db", "postgres://h:5432/db"),
            ("postgres://u:pw@h:5432/db", "postgres://u:***@h:5432/db"),
            ("postgresql://u:p/w@h/db", "postgresql://u:***@h/db"),
            ("postgres://u:a@b@h/db", "postgres://u:***@h/db"),
            (
                "postgres://h/db?user=u&password=pw&sslmode=disable",
                "postgres://h/db?user=u&password=***&sslmode=disable",
            ),
            (
                "postgres://h/db?password=pw",
                "postgres://h/db?password=***",
            ),
            (
                "postgres://h/db?oldpassword=x",
                "postgres://h/db?oldpassword=x",
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(redact_url(spec).0, want, "{spec}");
        }
    }

    #[test]
    fn scrubs_plain_and_percent_decoded_passwords() {
        let r = Redactor::new("postgres://u:s%40cret@h/db");
        assert_eq!(r.location, "postgres://u:***@h/db");
        assert_eq!(r.scrub("bad s%40cret and s@cret"), "bad *** and ***");
        let e = r.database("password s@cret rejected").to_string();
        assert!(!e.contains("cret"), "{e}");
        assert!(!format!("{r:?}").contains("cret"));
    }

    #[test]
    fn percent_decoding_keeps_invalid_escapes() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("%"), "%");
    }
}
