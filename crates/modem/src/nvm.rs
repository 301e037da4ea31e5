//! Persistent settings (`DIR/nvm.toml`): the values a real module keeps in NVM across power
//! cycles (at-contract §1: `+UMNOPROF`, `+URAT`, `+UBANDMASK`, `+CGDCONT`, and the `+CSGT`
//! greeting). Every change is written atomically before the command answers `OK`.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealcell_store::Storage;
use serde::{Deserialize, Serialize};

/// One PDP context (`+CGDCONT`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PdpContext {
    /// `"IP"`, `"IPV6"`, `"IPV4V6"` or `"NONIP"`.
    pub pdp_type: String,
    /// The access point name.
    pub apn: String,
    /// The requested address (`"0.0.0.0"` when none).
    pub address: String,
    /// Data compression (0..2).
    pub d_comp: i64,
    /// Header compression (0..4).
    pub h_comp: i64,
}

/// A stored setting value, printed back by the read form (`+ULWM2M`, `+UGPRF`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// An integer.
    Int(i64),
    /// A string (printed in quotes).
    Str(String),
}

/// `+UAUTHREQ` of one context: the authentication the host asked for.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PdpAuth {
    /// 0 none, 1 PAP, 2 CHAP, 3 automatic.
    pub auth_type: i64,
    /// The user name.
    pub user: String,
    /// The password, AES-256-GCM-sealed under a key derived from the device key (hex of
    /// nonce || ciphertext || tag; empty when none was given). Write-only on the wire.
    pub password_sealed: String,
}

impl std::fmt::Debug for PdpAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PdpAuth")
            .field("auth_type", &self.auth_type)
            .field("user", &self.user)
            .field("password", &"[sealed]")
            .finish()
    }
}

/// The persistent settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Nvm {
    /// `+UMNOPROF`: the mobile network operator profile.
    pub mno_profile: i64,
    /// `+URAT`: the selected radio access technologies, in preference order.
    pub rat: Vec<i64>,
    /// `+UBANDMASK`: band masks by RAT.
    pub band_masks: BTreeMap<i64, u64>,
    /// `+CGDCONT`: contexts by cid (keys are decimal strings so the TOML stays a table).
    pub contexts: BTreeMap<String, PdpContext>,
    /// `+CSGT`: the greeting text and whether it is shown at boot.
    pub greeting: String,
    /// Whether the greeting is enabled.
    pub greeting_enabled: bool,
    /// `+USECPRF` profiles that differ from the factory values, by number (secrets excluded).
    pub security_profiles: BTreeMap<String, crate::profiles::SecurityProfile>,
    /// The accept-and-read-back settings a real module keeps in NVM (`+ULWM2M`, `+UGPRF`), by
    /// command name.
    #[serde(default)]
    pub stored: BTreeMap<String, Vec<Value>>,
    /// `+UAUTHREQ` by cid (decimal string keys).
    #[serde(default)]
    pub pdp_auth: BTreeMap<String, PdpAuth>,
    /// EF FPLMN of the emulated SIM (`+CRSM`, TS 31.102 §4.2.16): its 24 bytes as uppercase
    /// hex, factory all `FF`. (A real SIM keeps it on the card; here the card is the data
    /// directory.)
    #[serde(default = "factory_fplmn_hex")]
    pub sim_fplmn: String,
    /// `+UGPIOC` settings of the pins a host changed, by GPIO id; absent pins keep the
    /// factory function (u-blox AT manual, GPIO chapter: the configuration is kept in NVM).
    #[serde(default)]
    pub gpio: BTreeMap<String, PinConfig>,
}

/// LTE bands 1, 3, 5, 7, 8 and 20: the EMEA set of TOBY-L210 (bit n-1 for band n).
pub const DEFAULT_LTE_BAND_MASK: u64 =
    (1 << 0) | (1 << 2) | (1 << 4) | (1 << 6) | (1 << 7) | (1 << 19);

impl Default for Nvm {
    fn default() -> Self {
        let mut contexts = BTreeMap::new();
        contexts.insert(
            "1".to_string(),
            PdpContext {
                pdp_type: "IP".into(),
                apn: String::new(),
                address: "0.0.0.0".into(),
                d_comp: 0,
                h_comp: 0,
            },
        );
        Nvm {
            mno_profile: 0,
            rat: vec![3],
            band_masks: BTreeMap::from([(3, DEFAULT_LTE_BAND_MASK)]),
            contexts,
            greeting: String::new(),
            greeting_enabled: false,
            security_profiles: BTreeMap::new(),
            stored: BTreeMap::new(),
            pdp_auth: BTreeMap::new(),
            sim_fplmn: factory_fplmn_hex(),
            gpio: BTreeMap::new(),
        }
    }
}

/// The settings together with the file they live in.
#[derive(Debug)]
pub struct NvmFile {
    storage: Arc<dyn Storage>,
    path: PathBuf,
    /// The current values.
    pub values: Nvm,
}

/// Reads a TOML state file, or `None` when it does not exist yet.
pub(crate) fn load_toml<T: serde::de::DeserializeOwned>(
    storage: &dyn Storage,
    path: &Path,
) -> io::Result<Option<T>> {
    match storage.read(path) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))?;
            let value = toml::from_str(&text)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.message().to_string()))?;
            Ok(Some(value))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl NvmFile {
    /// Loads `path`, or the factory values when it does not exist yet.
    pub fn load(storage: Arc<dyn Storage>, path: &Path) -> io::Result<NvmFile> {
        let values = load_toml(storage.as_ref(), path)?.unwrap_or_default();
        Ok(NvmFile {
            storage,
            path: path.to_path_buf(),
            values,
        })
    }

    /// Applies `change` and writes the result durably; on a write failure the values in memory
    /// are left as they were on disk.
    pub fn update(&mut self, change: impl FnOnce(&mut Nvm)) -> io::Result<()> {
        let mut next = self.values.clone();
        change(&mut next);
        let text = toml::to_string(&next).map_err(|e| io::Error::other(e.to_string()))?;
        self.storage.write_atomic(&self.path, text.as_bytes())?;
        self.values = next;
        Ok(())
    }
}

/// A pin's `+UGPIOC` setting, as kept in `nvm.toml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinConfig {
    /// `<gpio_mode>`.
    pub mode: i64,
    /// For an output the level it drives at boot (`<gpio_out_val>`); for an input its pull
    /// resistor (`<gpio_in_pull>`: 0 none, 1 up, 2 down); 0 otherwise.
    pub value: i64,
}

/// EF FPLMN's size: 8 PLMNs of 3 bytes (TS 31.102 §4.2.16 asks for at least 4).
pub const FPLMN_LEN: usize = 24;

/// The factory EF FPLMN (all `FF`: no forbidden network), as stored in `nvm.toml`.
pub fn factory_fplmn_hex() -> String {
    hex::encode_upper([0xFF; FPLMN_LEN])
}
