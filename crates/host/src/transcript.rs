//! Transcripts of an AT session, with every secret already redacted by the time it gets here.
//!
//! The [`client`](crate::client) never hands a sink the command line it sent: it hands over the
//! command's *shown* form, in which a seal password or key password is `"<redacted>"`, and a
//! payload is described by its size and kind, never by its bytes. Echo lines (which repeat the
//! line as sent) are not recorded at all. Lines are written as `> ` (sent), `< ` (received) and
//! `# ` (a note of the workflow), like the golden transcripts in `tests/transcripts/`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Which way a transcript line went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Host to module.
    Sent,
    /// Module to host.
    Received,
    /// A note from the workflow (a step's title, a decision).
    Note,
}

impl Direction {
    fn marker(self) -> &'static str {
        match self {
            Direction::Sent => "> ",
            Direction::Received => "< ",
            Direction::Note => "# ",
        }
    }
}

/// Receives transcript lines. Implementations must not fail the session: a sink that cannot
/// write drops the line (and says so once in the log).
pub trait Transcript: Send {
    /// Records one line (already redacted).
    fn record(&mut self, direction: Direction, text: &str);
}

/// Formats a line the way every sink shows it.
pub fn format_line(direction: Direction, text: &str) -> String {
    format!("{}{}", direction.marker(), text)
}

/// Appends to a file, one line per record, flushed after each line so an interrupted run keeps
/// its transcript up to the last exchange.
pub struct FileTranscript {
    out: BufWriter<File>,
    failed: bool,
}

impl FileTranscript {
    /// Opens `path` for appending (created with mode 0600 on Unix: a transcript names the
    /// module's credentials, even though it holds none of their secrets).
    pub fn append(path: &Path) -> io::Result<FileTranscript> {
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        Ok(FileTranscript {
            out: BufWriter::new(options.open(path)?),
            failed: false,
        })
    }
}

impl Transcript for FileTranscript {
    fn record(&mut self, direction: Direction, text: &str) {
        let line = format_line(direction, text);
        if let Err(e) = writeln!(self.out, "{line}").and_then(|()| self.out.flush())
            && !self.failed
        {
            tracing::warn!("transcript write failed: {e}");
            self.failed = true;
        }
    }
}

/// Keeps the lines in memory, shared (tests, reports).
#[derive(Clone, Default)]
pub struct MemoryTranscript(pub Arc<Mutex<Vec<String>>>);

impl MemoryTranscript {
    /// All lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Transcript for MemoryTranscript {
    fn record(&mut self, direction: Direction, text: &str) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(format_line(direction, text));
        }
    }
}

/// Calls a function for each line (the demo prints them as they happen).
pub struct FnTranscript<F: FnMut(Direction, &str) + Send>(pub F);

impl<F: FnMut(Direction, &str) + Send> Transcript for FnTranscript<F> {
    fn record(&mut self, direction: Direction, text: &str) {
        (self.0)(direction, text)
    }
}

/// Sends each line to several sinks.
#[derive(Default)]
pub struct Tee(pub Vec<Box<dyn Transcript>>);

impl Transcript for Tee {
    fn record(&mut self, direction: Direction, text: &str) {
        for sink in &mut self.0 {
            sink.record(direction, text);
        }
    }
}
