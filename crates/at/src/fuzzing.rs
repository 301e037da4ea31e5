//! Hooks shared by the cargo-fuzz targets (`fuzz/`) and the corpus replay test, so the same
//! assertions run under the fuzzer and on stable.

use crate::line::{LineAssembler, MAX_LINE, Push};
use crate::syntax::{Form, Line, parse_line};

/// Feeds arbitrary bytes to the line assembler and checks its invariants: no line is longer
/// than [`MAX_LINE`] and no line contains a terminator.
pub fn line_assembler(data: &[u8]) {
    let mut a = LineAssembler::new();
    for &b in data {
        if a.push(b) == Push::Line {
            let line = a.line();
            assert!(line.len() <= MAX_LINE);
            assert!(!line.contains(&b'\r') && !line.contains(&b'\n'));
        }
    }
}

/// Parses arbitrary bytes as a command line; every command that parses must print back to
/// text that parses to the same command (parse -> serialize -> equal), and every argument list
/// must tokenize without panicking.
pub fn command_parser(data: &[u8]) {
    let Ok(Line::Commands(line)) = parse_line(data) else {
        return;
    };
    for cmd in line.commands() {
        let Ok(cmd) = cmd else { break };
        if let Form::Set(args) = cmd.form {
            for arg in args.iter() {
                if arg.is_err() {
                    break;
                }
            }
        }
        let text = format!("AT{cmd}");
        let Ok(Line::Commands(again)) = parse_line(text.as_bytes()) else {
            panic!("reprinted command does not parse: {text:?}");
        };
        let mut cmds = again.commands();
        let reparsed = cmds.next();
        assert_eq!(reparsed, Some(Ok(cmd)), "round trip of {text:?}");
    }
}
