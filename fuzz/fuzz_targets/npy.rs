#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rmx_io_fuzz::run(data, rmx_io::Format::Npy));
