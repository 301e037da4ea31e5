//! The command line itself: help, version, man page and completions come from one definition.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_sealcell");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_version_man_and_completions() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("modem") && out.contains("Usage: sealcell"),
        "{out}"
    );
    let (code, out, _) = run(&["--version"]);
    assert_eq!(
        (code, out.trim()),
        (0, concat!("sealcell ", env!("CARGO_PKG_VERSION")))
    );
    let (code, out, _) = run(&["man"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with(".ie") && out.contains(".TH sealcell 1") && out.contains("modem"),
        "{out}"
    );
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, _) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}");
        assert!(out.contains("sealcell") && out.contains("modem"), "{shell}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, err) = run(&["modem", "--no-such-flag"]);
    assert_eq!(code, 2);
    assert!(err.contains("--no-such-flag"), "{err}");
    let (code, _, _) = run(&["nonsense"]);
    assert_eq!(code, 2);
}
