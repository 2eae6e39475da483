#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| npy_append_fuzz::group_journal(data));
