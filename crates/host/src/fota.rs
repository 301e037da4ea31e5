//! The signed firmware update over the air (application note §4.1 and §4.2), driven from the
//! host: HTTPS download into the module's `FOAT` area, an optional MD5 check against the package
//! the host holds, `AT+UFWSINSTALL` with the signature, the install URCs, the reboot, and the
//! new `ATI9`.
//!
//! Everything that can be checked before the download is: the module must be sealed (the signed
//! install is enabled only by the seal) and must hold the named `VC` certificate. An MD5 that
//! differs from `--file` stops before the install; a signature the module refuses leaves its
//! firmware and package as they were, and the module's error is returned as it said it.

use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

use std::num::NonZeroU16;

use sealcell_at::commands::uhttp::{
    HttpAction, HttpErrorReport, HttpProfileCommand, HttpProfileId, HttpRequest, HttpRequestResult,
    HttpSetting, PathText, ServerText,
};
use sealcell_at::commands::usecmng::{CredentialName, CredentialType, SecMngCommand};
use sealcell_at::commands::usecprf::SecProfileId;
use sealcell_at::commands::{SetCommand, Wire};

use crate::client::{AtClient, ClientError, Command, quote};
use crate::provision::seal_state;

/// An `https://HOST[:PORT]/PATH` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpsUrl {
    /// Host name (or address) as the module should resolve and verify it.
    pub host: String,
    /// Port; `None` means 443.
    pub port: Option<u16>,
    /// Path with query, starting with `/`.
    pub path: String,
}

impl FromStr for HttpsUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<HttpsUrl, String> {
        let rest = s.strip_prefix("https://").ok_or_else(|| {
            format!("`{s}` is not an https:// URL (the signed update downloads over TLS only)")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                let port = p
                    .parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| format!("`{p}` in `{s}` is not a port"))?;
                (h, Some(port))
            }
            _ => (authority, None),
        };
        if host.is_empty() || host.contains('@') {
            return Err(format!("`{s}` has no usable host"));
        }
        // Both go into AT strings, which cannot carry a quote or a control character.
        quote(host).map_err(|e| format!("the host of `{s}`: {e}"))?;
        quote(path).map_err(|e| format!("the path of `{s}`: {e}"))?;
        Ok(HttpsUrl {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }
}

/// What to update, and with what.
#[derive(Clone, Debug)]
pub struct FotaRequest {
    /// Where the package is.
    pub url: HttpsUrl,
    /// The signature (raw bytes; sent as one line of base64).
    pub signature: Vec<u8>,
    /// The `VC` item to verify it with.
    pub cert_name: String,
    /// The `+USECPRF` profile for the TLS connection.
    pub security_profile: u8,
    /// The `+UHTTP` profile to use.
    pub http_profile: u8,
    /// MD5 of the package the host holds, lowercase hex (`--file`).
    pub expected_md5: Option<String>,
    /// How long the download may take.
    pub download_timeout: Duration,
    /// How long the install (URCs up to 128) and the reboot may take.
    pub install_timeout: Duration,
}

/// What happened. Holds no secret.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FotaReport {
    /// The URL.
    pub url: String,
    /// The HTTP status of the download.
    pub http_status: u16,
    /// MD5 of the downloaded package, as the module computed it.
    pub md5: String,
    /// Whether it matched `--file` (`None` without `--file`).
    pub md5_matches_file: Option<bool>,
    /// The install progress values, in order (ending with 128).
    pub progress: Vec<u16>,
    /// `ATI9` before.
    pub version_before: String,
    /// `ATI9` after the reboot.
    pub version_after: String,
}

/// Why the update stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FotaError {
    /// Talking to the module failed, or it refused a command (its error is in the message).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The module is not sealed: `+UFWSINSTALL` is enabled only by the seal.
    #[error("the module is not sealed, so AT+UFWSINSTALL is disabled (application note §2.3)")]
    NotSealed,
    /// No `VC` item of that name.
    #[error("the module holds no verification certificate (VC) named \"{0}\"")]
    NoVerificationCertificate(String),
    /// The download failed; `class`/`code` are `+UHTTPER`'s.
    #[error("the download failed: +UHTTPER class {class}, code {code}{}", status.map(|s| format!(", HTTP status {s}")).unwrap_or_default())]
    Download {
        /// Error class.
        class: u16,
        /// Error code.
        code: u16,
        /// HTTP status, when a response arrived.
        status: Option<u16>,
    },
    /// The module's MD5 of the download differs from the local package's.
    #[error("the downloaded package has MD5 {module}; --file has {file}: not installing")]
    Md5Mismatch {
        /// The module's.
        module: String,
        /// The local file's.
        file: String,
    },
    /// The install reported a failure code.
    #[error("the install failed: +UUFWINSTALL: {0}")]
    InstallFailed(u16),
}

impl FotaError {
    /// Whether this is a negative answer (exit 1) rather than a failure to talk (exit 2).
    pub fn is_negative(&self) -> bool {
        match self {
            FotaError::Client(e) => e.is_module_answer(),
            _ => true,
        }
    }
}

/// Runs the update.
pub fn fota(at: &mut AtClient, request: &FotaRequest) -> Result<FotaReport, FotaError> {
    let url_text = format!(
        "https://{}{}{}",
        request.url.host,
        request
            .url
            .port
            .map(|p| format!(":{p}"))
            .unwrap_or_default(),
        request.url.path
    );
    at.note(&format!("fota {url_text}"));
    let version_before = version(at)?;
    if !seal_state(at)? {
        return Err(FotaError::NotSealed);
    }
    let protocol = |command: &str, detail: String| ClientError::Protocol {
        command: command.into(),
        detail,
    };
    let vc_name = CredentialName::new(request.cert_name.as_str())
        .map_err(|e| protocol("AT+UFWSINSTALL", e.to_string()))?;
    let vc = quote(&request.cert_name).map_err(|detail| protocol("AT+UFWSINSTALL", detail))?;
    let has_vc = SecMngCommand::Md5 {
        kind: CredentialType::SignatureVerificationCertificate,
        name: vc_name,
    };
    if !at.run(&Command::new(has_vc.line().as_str()))?.is_ok() {
        return Err(FotaError::NoVerificationCertificate(
            request.cert_name.clone(),
        ));
    }

    let profile = HttpProfileId::new(request.http_profile).ok_or_else(|| {
        protocol(
            "AT+UHTTP",
            format!("HTTP profile {} is not 0..3", request.http_profile),
        )
    })?;
    let security_profile = SecProfileId::new(request.security_profile).ok_or_else(|| {
        protocol(
            "AT+UHTTP",
            format!("security profile {} is not 0..4", request.security_profile),
        )
    })?;
    let host = ServerText::new(request.url.host.as_str())
        .map_err(|e| protocol("AT+UHTTP", format!("server name: {e}")))?;
    let port = NonZeroU16::new(request.url.port.unwrap_or(443))
        .ok_or_else(|| protocol("AT+UHTTP", "port 0".into()))?;
    let path = PathText::new(request.url.path.as_str())
        .map_err(|e| protocol("AT+UHTTPC", format!("path: {e}")))?;
    at.note("configure the HTTPS profile");
    let set = |setting| HttpProfileCommand::Set { profile, setting };
    for cmd in [
        HttpProfileCommand::Reset(profile),
        set(HttpSetting::ServerName(host)),
        set(HttpSetting::Port(port)),
        set(HttpSetting::Secure {
            enabled: true,
            security_profile: Some(security_profile),
        }),
    ] {
        at.ok_line(cmd.line().as_str())?;
    }

    at.note("download the package into FOAT (AT+UHTTPC command 100)");
    let download = HttpRequest {
        profile,
        path,
        action: HttpAction::FirmwareDownload,
    };
    at.ok_line(download.line().as_str())?;
    let result = at.wait_urc(
        |u| {
            matches!(
                HttpRequestResult::parse(u),
                Ok(HttpRequestResult::FirmwareDownload { profile: p, .. }) if p == profile
            )
        },
        request.download_timeout,
    )?;
    let Ok(HttpRequestResult::FirmwareDownload {
        success,
        status,
        md5,
        ..
    }) = HttpRequestResult::parse(&result)
    else {
        return Err(protocol("AT+UHTTPC", format!("unexpected URC {result:?}")).into());
    };
    if !success {
        let r = at.ok_line(&format!("AT+UHTTPER={profile}"))?;
        let report = r
            .lines
            .iter()
            .find_map(|l| HttpErrorReport::parse(l).ok())
            .filter(|e| e.profile == profile);
        return Err(FotaError::Download {
            class: report.map_or(0, |e| u16::from(e.class)),
            code: report.map_or(0, |e| e.code),
            status: Some(status).filter(|&s| s > 0),
        });
    }
    let md5 = md5.map(|m| m.to_string()).unwrap_or_default();
    let md5_matches_file = request.expected_md5.as_ref().map(|m| *m == md5);
    if let (Some(false), Some(file)) = (md5_matches_file, &request.expected_md5) {
        return Err(FotaError::Md5Mismatch {
            module: md5,
            file: file.clone(),
        });
    }

    at.note("install with the signature (AT+UFWSINSTALL)");
    let signature = sealcell_fw::encoding::to_base64(&request.signature);
    at.ok(
        &Command::new(format!("AT+UFWSINSTALL=\"{signature}\",{vc}"))
            .timeout(request.install_timeout),
    )?;
    let mut progress = Vec::new();
    loop {
        let u = at.wait_urc(|u| u.starts_with("+UUFWINSTALL:"), request.install_timeout)?;
        let value: u16 =
            u["+UUFWINSTALL:".len()..]
                .trim()
                .parse()
                .map_err(|_| ClientError::Protocol {
                    command: "AT+UFWSINSTALL".into(),
                    detail: format!("bad progress URC {u:?}"),
                })?;
        progress.push(value);
        match value {
            128 => break,
            129.. => return Err(FotaError::InstallFailed(value)),
            _ => {}
        }
    }
    at.note("the module reboots into the new firmware");
    at.wait_ready(request.install_timeout)?;
    let version_after = version(at)?;
    Ok(FotaReport {
        url: url_text,
        http_status: status,
        md5,
        md5_matches_file,
        progress,
        version_before,
        version_after,
    })
}

/// `ATI9`: `<modem version>,<application version>`.
pub fn version(at: &mut AtClient) -> Result<String, ClientError> {
    let r = at.ok_line("ATI9")?;
    r.lines.first().cloned().ok_or(ClientError::Protocol {
        command: r.command,
        detail: "no version line".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            "https://fota.example.com/fw/pkg.bin".parse(),
            Ok(HttpsUrl {
                host: "fota.example.com".into(),
                port: None,
                path: "/fw/pkg.bin".into()
            })
        );
        assert_eq!(
            "https://127.0.0.1:8443".parse(),
            Ok(HttpsUrl {
                host: "127.0.0.1".into(),
                port: Some(8443),
                path: "/".into()
            })
        );
        for bad in [
            "http://x/a",
            "https://:443/a",
            "https://x:0/a",
            "https://x/a\"b",
        ] {
            assert!(bad.parse::<HttpsUrl>().is_err(), "{bad}");
        }
    }
}
