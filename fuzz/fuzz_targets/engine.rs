#![no_main]
use std::sync::{Mutex, OnceLock};

use sealcell_modem::{Module, ModuleConfig, Now};

static MODULE: OnceLock<Mutex<(tempfile::TempDir, Module)>> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let cell = MODULE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = ModuleConfig::new(dir.path());
        config.fs_capacity = 1 << 20;
        // A virtual clock: the fuzzer never reads the host's.
        let now = Now::virtual_start(std::time::Instant::now());
        let module = Module::open(config, now).expect("module");
        Mutex::new((dir, module))
    });
    let mut guard = cell.lock().unwrap_or_else(|e| e.into_inner());
    sealcell_modem::fuzzing::engine(&mut guard.1, data);
});
