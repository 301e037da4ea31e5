#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sealcell_at::fuzzing::cmux(data));
