//! Offline inspection of a module's data directory (`sealcell modem status`): identity, file
//! system usage, firmware. Reads only; never creates, repairs or unlocks anything, and never
//! prints the content of a file or a secret.

use std::path::Path;

use serde::Serialize;

use crate::datadir::{self, DataDir, OpenError};
use crate::firmware::{FirmwareFile, InstallRecord};
use crate::fs::Tag;
use crate::nvm::NvmFile;

/// Everything `sealcell modem status` reports. Field names are the JSON schema of `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// The data directory.
    pub data_dir: String,
    /// 15-digit IMEI.
    pub imei: String,
    /// Model (`AT+CGMM`).
    pub model: String,
    /// Type number (`ATI`).
    pub type_number: String,
    /// Module serial number.
    pub serial: String,
    /// SIM IMSI.
    pub imsi: String,
    /// SIM ICCID.
    pub iccid: String,
    /// Creation time, seconds since the Unix epoch.
    pub created_unix: u64,
    /// Whether enforced security is on (`+USECCFG: 0,1`).
    pub sealed: bool,
    /// Whether the credential store opens with this module's device key.
    pub store_opens: bool,
    /// Why it does not, when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_problem: Option<String>,
    /// Damage noticed that does not stop the store (a stale manifest slot).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub store_warnings: Vec<String>,
    /// Pre-seal plaintext credential files still on disk.
    pub plaintext_files: usize,
    /// Stored credentials (type, name, subject, expiry, MD5; never content).
    pub credentials: Vec<CredentialStatus>,
    /// Installed firmware and install history.
    pub firmware: FirmwareStatus,
    /// File-system usage.
    pub file_system: FileSystemStatus,
}

/// One credential as listed by the module.
#[derive(Clone, Debug, Serialize)]
pub struct CredentialStatus {
    /// `CA`, `CC`, `PK`, `SC` or `VC`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Internal name.
    pub name: String,
    /// Subject common name (certificates).
    pub subject: Option<String>,
    /// notAfter (certificates).
    pub expiry: Option<String>,
    /// MD5 of the stored DER (empty when damaged).
    pub md5: String,
    /// Why the record is unusable, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub damaged: Option<String>,
}

/// Firmware part of the status.
#[derive(Clone, Debug, Serialize)]
pub struct FirmwareStatus {
    /// `AT+CGMR`.
    pub version: String,
    /// Application version (`ATI9`).
    pub application: String,
    /// Completed installs, oldest first.
    pub installs: Vec<InstallRecord>,
}

/// File-system part of the status.
#[derive(Clone, Debug, Serialize)]
pub struct FileSystemStatus {
    /// Bytes used by both areas.
    pub used_bytes: u64,
    /// Every file: area, name and size.
    pub files: Vec<FileStatus>,
}

/// One file of the module file system.
#[derive(Clone, Debug, Serialize)]
pub struct FileStatus {
    /// `USER` or `FOAT`.
    pub area: &'static str,
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

/// Why the status could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// There is no module in the directory.
    #[error("no module in {0} (it has no otp/identity.toml)")]
    NoModule(String),
    /// A state file could not be read.
    #[error(transparent)]
    Open(#[from] OpenError),
}

/// Reads the status of the module in `dir`.
pub fn gather(dir: &Path) -> Result<Status, StatusError> {
    let data = DataDir::new(dir);
    if !data.exists() {
        return Err(StatusError::NoModule(dir.display().to_string()));
    }
    let id = data.load_identity()?;
    let storage = data.storage().clone();
    let fw = FirmwareFile::load(storage.clone(), Path::new(datadir::FW_STATE))
        .map_err(data.io_err("read", datadir::FW_STATE))?;
    // Parse nvm.toml too, so a damaged settings file shows up here rather than at the next boot.
    NvmFile::load(storage.clone(), Path::new(datadir::NVM))
        .map_err(data.io_err("read", datadir::NVM))?;
    let device = data.device_secrets(&id)?;
    let store = sealcell_store::Store::inspect(
        storage.clone(),
        device,
        sealcell_store::crypto::KdfPolicy::PRODUCTION,
    )
    .map_err(data.io_err("read", datadir::SEC))?;
    let credentials = match store.list() {
        Ok(items) => items
            .into_iter()
            .map(|i| {
                let (subject, expiry, md5, damaged) = match i.state {
                    sealcell_store::ItemState::Ok(f) => {
                        (f.subject_cn.clone(), f.not_after.clone(), f.md5_hex(), None)
                    }
                    sealcell_store::ItemState::Damaged(r) => (None, None, String::new(), Some(r)),
                };
                CredentialStatus {
                    kind: i.kind.tag().to_string(),
                    name: i.name,
                    subject,
                    expiry,
                    md5,
                    damaged,
                }
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let mut files = Vec::new();
    let mut used = 0u64;
    for tag in [Tag::User, Tag::Foat] {
        let area = Path::new(datadir::FS).join(tag.as_str());
        let Ok(names) = storage.list(&area) else {
            continue;
        };
        for name in names
            .into_iter()
            .filter(|n| !sealcell_store::is_temp_name(n))
        {
            let size = storage.len(&area.join(&name)).unwrap_or(0);
            used = used.saturating_add(size);
            files.push(FileStatus {
                area: tag.as_str(),
                name,
                size,
            });
        }
    }
    Ok(Status {
        data_dir: dir.display().to_string(),
        imei: id.imei.to_string(),
        model: id.model.name().to_string(),
        type_number: id.model.type_number().to_string(),
        serial: id.serial,
        imsi: id.imsi,
        iccid: id.iccid,
        created_unix: id.created_unix,
        sealed: store.is_sealed(),
        store_opens: store.problem().is_none(),
        store_problem: store.problem().map(ToString::to_string),
        store_warnings: store.warnings().to_vec(),
        plaintext_files: if store.is_sealed() {
            store.plaintext_files().unwrap_or(0)
        } else {
            0
        },
        credentials,
        firmware: FirmwareStatus {
            version: fw.state.version,
            application: fw.state.application,
            installs: fw.state.installs,
        },
        file_system: FileSystemStatus {
            used_bytes: used,
            files,
        },
    })
}

impl Status {
    /// The human-readable report.
    pub fn render(&self) -> String {
        let mut out: Vec<String> = Vec::new();
        let mut line = |k: &str, v: &str| out.push(format!("{k:<14}{v}"));
        line("data", &self.data_dir);
        line("model", &format!("{} ({})", self.model, self.type_number));
        line("imei", &self.imei);
        line("imsi", &self.imsi);
        line("iccid", &self.iccid);
        line(
            "sealed",
            if self.sealed {
                "yes (enforced security on)"
            } else {
                "no"
            },
        );
        match &self.store_problem {
            None => line("store", "opens with this module's key"),
            Some(p) => line(
                "store",
                &format!("DOES NOT OPEN with this module's key: {p}"),
            ),
        }
        for w in &self.store_warnings {
            line("warning", w);
        }
        if self.plaintext_files > 0 {
            line(
                "plaintext",
                &format!(
                    "{} pre-seal credential file(s) still on disk (unusable)",
                    self.plaintext_files
                ),
            );
        }
        line(
            "firmware",
            &format!("{},{}", self.firmware.version, self.firmware.application),
        );
        line("installs", &self.firmware.installs.len().to_string());
        for i in &self.firmware.installs {
            out.push(format!(
                "  {} {:<8} {:<12} {} bytes sha256 {}{}",
                crate::clock::format_cclk(i64::try_from(i.time_unix).unwrap_or(0)),
                i.version,
                i.method,
                i.size,
                i.sha256.get(..16).unwrap_or(&i.sha256),
                i.signer
                    .as_deref()
                    .map(|n| format!(" signed by {n}"))
                    .unwrap_or_default()
            ));
        }
        out.push(format!("{:<14}{}", "credentials", self.credentials.len()));
        for c in &self.credentials {
            out.push(format!(
                "  {:<3} {:<24} {:<24} {:<20} {}",
                c.kind,
                c.name,
                c.subject.as_deref().unwrap_or("-"),
                c.expiry.as_deref().unwrap_or("-"),
                c.damaged
                    .as_deref()
                    .map_or(c.md5.clone(), |d| format!("DAMAGED: {d}"))
            ));
        }
        out.push(format!(
            "{:<14}{} bytes in {} files",
            "file system",
            self.file_system.used_bytes,
            self.file_system.files.len()
        ));
        for f in &self.file_system.files {
            out.push(format!("  {:<4} {:<40} {}", f.area, f.name, f.size));
        }
        let mut s = out.join("\n");
        s.push('\n');
        s
    }
}
