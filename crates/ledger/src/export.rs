//! The CSV and JSON forms of a list of runs.

use std::io::Write;

use crate::error::LedgerError;
use crate::model::{CredentialEntry, ProfileEntry, RunRecord};

/// The CSV header, one column per [`RunRecord`] field, in this order.
pub const CSV_HEADER: [&str; 21] = [
    "id",
    "kind",
    "started_unix_ms",
    "ended_unix_ms",
    "station",
    "operator",
    "port",
    "imei",
    "iccid",
    "model",
    "firmware",
    "plan_path",
    "plan_sha256",
    "sealed_before",
    "sealed_after",
    "outcome",
    "error",
    "transcript_sha256",
    "detail",
    "credentials",
    "profiles",
];

/// Writes `records` as CSV (RFC 4180: CRLF line ends, fields quoted when they hold `,`, `"`,
/// CR or LF, quotes doubled): [`CSV_HEADER`], then one row per run in the given order.
///
/// An absent value is an empty field; booleans are `true` / `false`. `credentials` is
/// `TYPE:name:md5:action` per credential and `profiles` is `id:action` per profile, each joined
/// by `;` (credential SHA-256s are only in the JSON form); inside those parts `%`, `:` and `;` are
/// written `%25`, `%3A` and `%3B`, so the column splits unambiguously.
pub fn write_csv(records: &[RunRecord], out: &mut impl Write) -> Result<(), LedgerError> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out);
    w.write_record(CSV_HEADER).map_err(csv_error)?;
    for r in records {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let int = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
        let flag = |v: Option<bool>| v.map(|b| b.to_string()).unwrap_or_default();
        let row: [String; 21] = [
            r.id.to_string(),
            r.kind.as_str().to_string(),
            r.started_unix_ms.to_string(),
            int(r.ended_unix_ms),
            r.station.clone(),
            r.operator.clone(),
            r.port.clone(),
            opt(&r.imei),
            opt(&r.iccid),
            opt(&r.model),
            opt(&r.firmware),
            opt(&r.plan_path),
            opt(&r.plan_sha256),
            flag(r.sealed_before),
            flag(r.sealed_after),
            r.outcome.as_str().to_string(),
            opt(&r.error),
            opt(&r.transcript_sha256),
            opt(&r.detail),
            credentials_field(&r.credentials),
            profiles_field(&r.profiles),
        ];
        w.write_record(&row).map_err(csv_error)?;
    }
    w.flush().map_err(LedgerError::Export)
}

/// Writes `records` as a pretty-printed JSON array of [`RunRecord`] objects (the serde form:
/// field names as in the struct, enums lowercase), then a newline.
pub fn write_json(records: &[RunRecord], out: &mut impl Write) -> Result<(), LedgerError> {
    serde_json::to_writer_pretty(&mut *out, records)
        .map_err(|e| LedgerError::Export(std::io::Error::other(e)))?;
    out.write_all(b"\n").map_err(LedgerError::Export)?;
    out.flush().map_err(LedgerError::Export)
}

/// `TYPE:name:md5:action;...`.
fn credentials_field(c: &[CredentialEntry]) -> String {
    c.iter()
        .map(|c| {
            [&c.kind, &c.name, &c.md5, &c.action]
                .map(|p| escape(p))
                .join(":")
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// `id:action;...`.
fn profiles_field(p: &[ProfileEntry]) -> String {
    p.iter()
        .map(|p| format!("{}:{}", p.id, escape(&p.action)))
        .collect::<Vec<_>>()
        .join(";")
}

/// `%`, `:` and `;` percent-encoded.
fn escape(s: &str) -> String {
    s.replace('%', "%25")
        .replace(':', "%3A")
        .replace(';', "%3B")
}

fn csv_error(e: csv::Error) -> LedgerError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => LedgerError::Export(io),
        other => LedgerError::Export(std::io::Error::other(format!("{other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_fields_escape_their_separators() {
        let c = CredentialEntry {
            kind: "CA".into(),
            name: "a:b;c%d".into(),
            md5: "00".into(),
            sha256: "11".into(),
            action: "imported".into(),
        };
        assert_eq!(
            credentials_field(&[c.clone(), c]),
            "CA:a%3Ab%3Bc%25d:00:imported;CA:a%3Ab%3Bc%25d:00:imported"
        );
        let p = ProfileEntry {
            id: 2,
            action: "configured".into(),
        };
        assert_eq!(profiles_field(&[p]), "2:configured");
        assert_eq!(profiles_field(&[]), "");
    }
}
