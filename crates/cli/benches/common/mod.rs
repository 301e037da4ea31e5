//! Helpers the benchmarks share.

// Bench code: a failed unwrap is a failed run.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// The median of a run's timings.
pub(crate) fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Writes `mib` MiB of deterministic, non-repeating-looking bytes to `path`.
pub(crate) fn big_file(path: &Path, mib: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut block = vec![0u8; 1 << 20];
    for i in 0..mib {
        for (j, b) in block.iter_mut().enumerate() {
            *b = (i.wrapping_mul(31) ^ j.wrapping_mul(2_654_435_761)) as u8;
        }
        f.write_all(&block).unwrap();
    }
    f.flush().unwrap();
}
