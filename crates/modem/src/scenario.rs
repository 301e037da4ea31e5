//! Scenarios of the test bench (cli.md, "A test bench"; `sealcell modem --scenario FILE`):
//! faults armed by triggers, so a run of host firmware meets the same failures at the same
//! points every time.
//!
//! ```toml
//! seed = 42                                        # optional; --seed overrides
//! [[fault]]
//! action = "cut-after"                             # any fault of crate::faults
//! args = [200000]
//! when = { command = "+UHTTPC", nth = 1 }          # the 1st +UHTTPC, as it starts
//! [[fault]]
//! action = "power-loss"
//! when = { command = "+UFWSINSTALL", nth = 2 }     # the 2nd install: nothing of it is written
//! ```
//!
//! Triggers:
//! - `{ command = NAME, nth = N }`: as the Nth command of that name starts, before it runs;
//! - `{ after_s = SECONDS }`: that long after the module opened;
//! - `{ storage_write = N }`: at the Nth durable storage write begun since the process
//!   started, a cut one included (`power-loss` only: the write lands on the cut);
//! - `{ download_bytes = N }`: when a download has received N bytes (`cut-after` only, without
//!   arguments: the download is cut there).
//!
//! A fault fires once. Every firing is logged and listed by `status` ([`crate::faults`]).
//! The seed chooses what is random: `link-corrupt`'s bits (seed 0 without one).

use std::time::{Duration, Instant};

use crate::faults::{Fault, FaultError};

/// The most faults a scenario holds.
///
/// # Security
/// A scenario is the user's own file, but it is parsed before anything checks it.
pub const MAX_FAULTS: usize = 1000;

/// When a scenario fault fires.
#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    /// As the `nth` command named `name` (upper case, with its `+`) starts.
    Command {
        /// The command.
        name: String,
        /// Which one (1: the first).
        nth: u64,
    },
    /// This long after the module opened.
    After(Duration),
    /// At this durable storage write (1: the first).
    StorageWrite(u64),
    /// When a download has received this many bytes.
    DownloadBytes(u64),
}

/// One fault of a scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioFault {
    /// What it does.
    pub fault: Fault,
    /// When.
    pub when: Trigger,
    /// Its text, for the logs and `status`.
    pub label: String,
}

/// A parsed scenario.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scenario {
    /// Its seed (`--seed` overrides).
    pub seed: Option<u64>,
    /// Its faults, in file order.
    pub faults: Vec<ScenarioFault>,
}

/// Why a scenario file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// Not TOML, or not of the scenario's shape.
    #[error("not a scenario: {0}")]
    Shape(String),
    /// A fault's action or arguments.
    #[error("fault {index}: {source}")]
    Fault {
        /// 1-based.
        index: usize,
        /// What is wrong.
        #[source]
        source: FaultError,
    },
    /// A trigger.
    #[error("fault {index}: {why}")]
    Trigger {
        /// 1-based.
        index: usize,
        /// What is wrong.
        why: String,
    },
}

impl Scenario {
    /// Parses a scenario file's text.
    pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        let shape = |e: &dyn std::fmt::Display| ScenarioError::Shape(e.to_string());
        let doc: toml::Table = text.parse().map_err(|e| shape(&e))?;
        for key in doc.keys() {
            if key != "seed" && key != "fault" {
                return Err(ScenarioError::Shape(format!("unknown key {key:?}")));
            }
        }
        let seed = match doc.get("seed") {
            None => None,
            Some(toml::Value::Integer(n)) => {
                Some(u64::try_from(*n).map_err(|_| shape(&"seed is a number >= 0"))?)
            }
            Some(_) => return Err(shape(&"seed is a number")),
        };
        let faults = match doc.get("fault") {
            None => Vec::new(),
            Some(toml::Value::Array(items)) => items.as_slice().to_vec(),
            Some(_) => return Err(shape(&"[[fault]] is a list of tables")),
        };
        if faults.len() > MAX_FAULTS {
            return Err(shape(&format!("at most {MAX_FAULTS} faults")));
        }
        let mut out = Vec::new();
        for (i, item) in faults.iter().enumerate() {
            out.push(fault(i + 1, item)?);
        }
        Ok(Scenario { seed, faults: out })
    }
}

fn fault(index: usize, item: &toml::Value) -> Result<ScenarioFault, ScenarioError> {
    let bad = |why: &str| ScenarioError::Trigger {
        index,
        why: why.to_string(),
    };
    let table = item
        .as_table()
        .ok_or_else(|| bad("a [[fault]] is a table"))?;
    for key in table.keys() {
        if !["action", "args", "when"].contains(&key.as_str()) {
            return Err(bad(&format!("unknown key {key:?}")));
        }
    }
    let action = table
        .get("action")
        .and_then(|a| a.as_str())
        .ok_or_else(|| bad("action is the fault's name"))?;
    let args: Vec<String> = match table.get("args") {
        None => Vec::new(),
        Some(toml::Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                toml::Value::String(s) => Ok(s.clone()),
                toml::Value::Integer(n) => Ok(n.to_string()),
                _ => Err(bad("each argument is a string or a whole number")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("args is a list")),
    };
    let when = table
        .get("when")
        .and_then(|w| w.as_table())
        .ok_or_else(|| bad("when is a table: { command = ..., nth = ... } or another trigger"))?;
    let int = |key: &str| -> Result<u64, ScenarioError> {
        when.get(key)
            .and_then(|v| v.as_integer())
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| *n >= 1)
            .ok_or_else(|| bad(&format!("{key} is a whole number >= 1")))
    };
    let trigger = if let Some(name) = when.get("command") {
        let name = name
            .as_str()
            .ok_or_else(|| bad("command is a name, like \"+UFWSINSTALL\""))?
            .to_ascii_uppercase();
        let nth = if when.contains_key("nth") {
            int("nth")?
        } else {
            1
        };
        Trigger::Command { name, nth }
    } else if let Some(s) = when.get("after_s") {
        let secs = s
            .as_float()
            .or_else(|| s.as_integer().map(|n| n as f64))
            .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 1e7)
            .ok_or_else(|| bad("after_s is seconds, 0..1e7"))?;
        Trigger::After(Duration::from_secs_f64(secs))
    } else if when.contains_key("storage_write") {
        Trigger::StorageWrite(int("storage_write")?)
    } else if when.contains_key("download_bytes") {
        Trigger::DownloadBytes(int("download_bytes")?)
    } else {
        return Err(bad(
            "when is one of: command (with nth), after_s, storage_write, download_bytes",
        ));
    };
    let (fault, label) = match &trigger {
        Trigger::DownloadBytes(n) if action == "cut-after" && args.is_empty() => (
            Fault::CutAfter(*n),
            format!("cut-after at download byte {n}"),
        ),
        Trigger::DownloadBytes(_) => {
            return Err(bad(
                "download_bytes goes with action \"cut-after\" and no args",
            ));
        }
        Trigger::StorageWrite(n) if action == "power-loss" && args.is_empty() => (
            Fault::PowerLossAtWrite(*n),
            format!("power-loss at storage write {n}"),
        ),
        Trigger::StorageWrite(_) => {
            return Err(bad(
                "storage_write goes with action \"power-loss\" and no args",
            ));
        }
        _ => {
            let fault = Fault::parse(action, &args)
                .map_err(|source| ScenarioError::Fault { index, source })?;
            let mut label = action.to_string();
            for a in &args {
                label.push(' ');
                label.push_str(a);
            }
            (fault, label)
        }
    };
    Ok(ScenarioFault {
        fault,
        when: trigger,
        label,
    })
}

/// A loaded scenario's progress: what is still to fire, and the counts its triggers need.
#[derive(Debug)]
pub(crate) struct Running {
    pending: Vec<ScenarioFault>,
    started: Instant,
    commands: std::collections::HashMap<String, u64>,
}

impl Running {
    pub(crate) fn new(scenario: Scenario, now: Instant) -> Running {
        Running {
            pending: scenario.faults,
            started: now,
            commands: Default::default(),
        }
    }

    /// The faults armed from the start (storage writes, download bytes): taken out now.
    pub(crate) fn take_at_start(&mut self) -> Vec<ScenarioFault> {
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|f| matches!(f.when, Trigger::StorageWrite(_) | Trigger::DownloadBytes(_)));
        self.pending = later;
        now
    }

    /// The faults due as command `name` starts.
    pub(crate) fn on_command(&mut self, name: &str) -> Vec<ScenarioFault> {
        if !self
            .pending
            .iter()
            .any(|f| matches!(&f.when, Trigger::Command { name: n, .. } if n == name))
        {
            return Vec::new();
        }
        let count = self.commands.entry(name.to_string()).or_default();
        *count += 1;
        let count = *count;
        self.take(|t| matches!(t, Trigger::Command { name: n, nth } if n == name && *nth == count))
    }

    /// The faults whose time has come at `now`.
    pub(crate) fn on_time(&mut self, now: Instant) -> Vec<ScenarioFault> {
        let start = self.started;
        self.take(|t| matches!(t, Trigger::After(d) if start + *d <= now))
    }

    /// When the next timed fault is due.
    pub(crate) fn next_time(&self) -> Option<Instant> {
        let start = self.started;
        self.pending
            .iter()
            .filter_map(|f| match f.when {
                Trigger::After(d) => Some(start + d),
                _ => None,
            })
            .min()
    }

    fn take(&mut self, due: impl Fn(&Trigger) -> bool) -> Vec<ScenarioFault> {
        let (fire, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|f| due(&f.when));
        self.pending = keep;
        fire
    }

    /// What is still to fire, for `status`.
    pub(crate) fn pending_labels(&self) -> Vec<String> {
        self.pending
            .iter()
            .map(|f| format!("{} (scenario: {})", f.label, describe(&f.when)))
            .collect()
    }
}

fn describe(t: &Trigger) -> String {
    match t {
        Trigger::Command { name, nth } => format!("{name} #{nth}"),
        Trigger::After(d) => format!("after {} s", d.as_secs_f64()),
        Trigger::StorageWrite(n) => format!("storage write {n}"),
        Trigger::DownloadBytes(n) => format!("download byte {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_s_shape_parses_and_mistakes_say_where() {
        let s = Scenario::parse(
            r#"
seed = 42
[[fault]]
action = "cut-after"
args = [100000]
when = { command = "+uhttpc", nth = 1 }
[[fault]]
action = "power-loss"
when = { command = "+UFWSINSTALL", nth = 2 }
[[fault]]
action = "detach"
when = { after_s = 5.0 }
[[fault]]
action = "power-loss"
when = { storage_write = 3 }
"#,
        )
        .unwrap();
        assert_eq!(s.seed, Some(42));
        assert_eq!(s.faults.len(), 4);
        assert_eq!(s.faults[0].fault, Fault::CutAfter(100000));
        assert_eq!(
            s.faults[0].when,
            Trigger::Command {
                name: "+UHTTPC".into(),
                nth: 1
            }
        );
        assert_eq!(s.faults[3].fault, Fault::PowerLossAtWrite(3));
        for (text, why) in [
            (
                "[[fault]]\naction = \"melt\"\nwhen = { after_s = 1 }",
                "fault 1: no fault",
            ),
            ("[[fault]]\naction = \"reboot\"", "fault 1: when is a table"),
            (
                "[[fault]]\naction = \"reboot\"\nwhen = { storage_write = 2 }",
                "power-loss",
            ),
            ("nonsense = 1", "unknown key"),
            (
                "[[fault]]\naction = \"reboot\"\nwhen = { command = \"+CGMI\", nth = 0 }",
                "nth",
            ),
        ] {
            let e = Scenario::parse(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
