//! Crash at every storage step of seal, import, replace and remove (sealed and unsealed), on a
//! disk that keeps only what was fsynced (and, separately, one that keeps everything, as after
//! kill -9). After each crash the store must open, hold the old state or the new one, never
//! lose the seal, and never read unsealed after a seal. Then random sequences against a model.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{fixture, open};
use proptest::prelude::*;
use sealcell_store::credential::CredentialType::{self, *};
use sealcell_store::{CrashMode, ItemState, SimStorage, Store};

type View = (bool, Vec<(CredentialType, String, String)>);

fn view(s: &Store) -> View {
    assert!(
        s.problem().is_none(),
        "a crash made the store unopenable: {:?}",
        s.problem()
    );
    let items = s
        .list()
        .unwrap()
        .into_iter()
        .map(|i| match i.state {
            ItemState::Ok(f) => (i.kind, i.name, f.md5_hex()),
            ItemState::Damaged(r) => panic!("a crash damaged {} {}: {r}", i.kind, i.name),
        })
        .collect();
    (s.is_sealed(), items)
}

struct Case {
    name: &'static str,
    sealed: bool,
    setup: fn(&mut Store),
    change: fn(&mut Store) -> Result<(), String>,
}

fn import(s: &mut Store, kind: CredentialType, name: &str, file: &str) {
    s.import(kind, name, &fixture(file), None).unwrap();
}

fn try_import(s: &mut Store, kind: CredentialType, name: &str, file: &str) -> Result<(), String> {
    s.import(kind, name, &fixture(file), None)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

const CASES: &[Case] = &[
    Case {
        name: "seal",
        sealed: false,
        setup: |s| import(s, TrustedRootCa, "pre", "root.der"),
        change: |s| s.seal(b"pw").map_err(|e| e.to_string()),
    },
    Case {
        name: "import unsealed",
        sealed: false,
        setup: |_| {},
        change: |s| try_import(s, TrustedRootCa, "r", "root.pem"),
    },
    Case {
        name: "replace unsealed",
        sealed: false,
        setup: |s| import(s, TrustedRootCa, "r", "root.pem"),
        change: |s| try_import(s, TrustedRootCa, "r", "server.pem"),
    },
    Case {
        name: "remove unsealed",
        sealed: false,
        setup: |s| import(s, ClientPrivateKey, "k", "client-pkcs1.pem"),
        change: |s| s.remove(ClientPrivateKey, "k").map_err(|e| e.to_string()),
    },
    Case {
        name: "import sealed (first)",
        sealed: true,
        setup: |_| {},
        change: |s| try_import(s, TrustedRootCa, "r", "root.pem"),
    },
    Case {
        name: "import sealed",
        sealed: true,
        setup: |s| import(s, ClientCertificate, "c", "client.pem"),
        change: |s| try_import(s, ClientPrivateKey, "k", "server-sec1.pem"),
    },
    Case {
        name: "replace sealed",
        sealed: true,
        setup: |s| {
            import(s, TrustedRootCa, "r", "root.pem");
            import(s, ClientCertificate, "c", "client.pem");
        },
        change: |s| try_import(s, TrustedRootCa, "r", "verify.pem"),
    },
    Case {
        name: "remove sealed",
        sealed: true,
        setup: |s| {
            import(s, TrustedRootCa, "r", "root.pem");
            import(s, ClientCertificate, "c", "client.pem");
        },
        change: |s| s.remove(TrustedRootCa, "r").map_err(|e| e.to_string()),
    },
];

#[test]
fn every_step_of_every_operation() {
    let mut crashes = 0;
    for case in CASES {
        let base = SimStorage::new();
        {
            let mut s = open(&base, 1);
            if case.sealed {
                s.seal(b"pw").unwrap();
            }
            (case.setup)(&mut s);
        }
        let old = view(&open(&base.crash(CrashMode::KeepAll), 1));
        let probe = base.crash(CrashMode::KeepAll);
        let mut s = open(&probe, 1);
        let before = probe.steps();
        (case.change)(&mut s).unwrap();
        let steps = probe.steps() - before;
        let new = view(&open(&probe.crash(CrashMode::LoseUnsynced), 1));
        assert_ne!(old, new, "{}", case.name);
        for fail in 1..=steps {
            for mode in [CrashMode::LoseUnsynced, CrashMode::KeepAll] {
                let disk = base.crash(CrashMode::KeepAll);
                let mut s = open(&disk, 1);
                disk.fail_at(Some(disk.steps() + fail));
                assert!(
                    (case.change)(&mut s).is_err(),
                    "{}: step {fail} did not fail",
                    case.name
                );
                assert!(disk.is_dead(), "{}: step {fail} not reached", case.name);
                let after = disk.crash(mode);
                let seen = view(&open(&after, 1));
                assert!(
                    seen == old || seen == new,
                    "{} step {fail}/{steps} {mode:?}:\n old {old:?}\n new {new:?}\n seen {seen:?}",
                    case.name
                );
                if case.sealed {
                    assert!(seen.0, "{}: the seal was lost", case.name);
                }
                // A second boot agrees with the first (repairs at boot are themselves durable).
                assert_eq!(
                    view(&open(&after.crash(CrashMode::LoseUnsynced), 1)),
                    seen,
                    "{} step {fail}",
                    case.name
                );
                crashes += 1;
            }
        }
    }
    eprintln!(
        "{crashes} crashes simulated across {} operations",
        CASES.len()
    );
    assert!(crashes > 100);
}

#[derive(Clone, Debug)]
enum Op {
    Import(u8, u8, u8),
    Remove(u8, u8),
    Seal,
    Reboot,
    CrashDuring(Box<Op>, u64, bool),
}

const FILES: [&str; 4] = ["root.der", "client.pem", "server.pem", "verify.pem"];
const KEYS: [&str; 3] = ["client-pkcs1.pem", "server-sec1.der", "ed25519-pkcs8.pem"];

fn op() -> impl Strategy<Value = Op> {
    let simple = prop_oneof![
        6 => (0u8..5, 0u8..3, 0u8..4).prop_map(|(k, n, f)| Op::Import(k, n, f)),
        3 => (0u8..5, 0u8..3).prop_map(|(k, n)| Op::Remove(k, n)),
        1 => Just(Op::Seal),
        2 => Just(Op::Reboot),
    ];
    prop_oneof![
        8 => simple.clone(),
        2 => (simple, 1u64..12, any::<bool>()).prop_map(|(o, at, lose)| Op::CrashDuring(Box::new(o), at, lose)),
    ]
}

fn apply(s: &mut Store, op: &Op) {
    match op {
        Op::Import(k, n, f) => {
            let kind = CredentialType::from_wire(i64::from(*k)).unwrap();
            let file = if kind == ClientPrivateKey {
                KEYS[usize::from(*f) % 3]
            } else {
                FILES[usize::from(*f)]
            };
            let _ = s.import(kind, &format!("n{n}"), &fixture(file), None);
        }
        Op::Remove(k, n) => {
            let _ = s.remove(
                CredentialType::from_wire(i64::from(*k)).unwrap(),
                &format!("n{n}"),
            );
        }
        Op::Seal => {
            let _ = s.seal(b"pw");
        }
        Op::Reboot | Op::CrashDuring(..) => {}
    }
}

/// The model: whether sealed, and the visible items with the MD5 openssl computed for them.
#[derive(Clone, Debug, Default, PartialEq)]
struct Model {
    sealed: bool,
    items: std::collections::BTreeMap<(CredentialType, String), String>,
}

impl Model {
    fn view(&self) -> View {
        (
            self.sealed,
            self.items
                .iter()
                .map(|((k, n), m)| (*k, n.clone(), m.clone()))
                .collect(),
        )
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Import(k, n, f) => {
                let kind = CredentialType::from_wire(i64::from(*k)).unwrap();
                let file = if kind == ClientPrivateKey {
                    KEYS[usize::from(*f) % 3]
                } else {
                    FILES[usize::from(*f)]
                };
                let key = (kind, format!("n{n}"));
                if self.items.contains_key(&key) || self.items.len() < sealcell_store::MAX_ITEMS {
                    self.items.insert(key, common::facts()[file].0.clone());
                }
            }
            Op::Remove(k, n) => {
                self.items.remove(&(
                    CredentialType::from_wire(i64::from(*k)).unwrap(),
                    format!("n{n}"),
                ));
            }
            Op::Seal => {
                if !self.sealed {
                    self.sealed = true;
                    self.items.clear();
                }
            }
            Op::Reboot | Op::CrashDuring(..) => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Random sequences of import, remove, seal, reboot and crashes inside any of them, against
    /// the model. A crash leaves the model's old or new state; the seal is never lost.
    #[test]
    fn random_sequences_match_the_model(ops in prop::collection::vec(op(), 1..24)) {
        let mut disk = SimStorage::new();
        let mut s = open(&disk, 1);
        let mut model = Model::default();
        for op in &ops {
            match op {
                Op::Reboot => {
                    disk = disk.crash(CrashMode::LoseUnsynced);
                    s = open(&disk, 1);
                }
                Op::CrashDuring(inner, at, lose) => {
                    let old = model.clone();
                    let mut new = model.clone();
                    new.apply(inner);
                    disk.fail_at(Some(disk.steps() + at));
                    apply(&mut s, inner);
                    let was_dead = disk.is_dead();
                    disk = disk.crash(if *lose { CrashMode::LoseUnsynced } else { CrashMode::KeepAll });
                    s = open(&disk, 1);
                    let seen = view(&s);
                    if !was_dead {
                        // The operation finished before the step came: it must have taken effect.
                        prop_assert_eq!(&seen, &new.view());
                    }
                    prop_assert!(seen == old.view() || seen == new.view(), "old {:?}\nnew {:?}\nseen {:?}", old, new, seen);
                    model = if seen == new.view() { new } else { old };
                    prop_assert!(!model.sealed || seen.0, "the seal was lost");
                }
                other => {
                    apply(&mut s, other);
                    model.apply(other);
                }
            }
            prop_assert_eq!(view(&s), model.view(), "after {:?}", op);
        }
    }
}
