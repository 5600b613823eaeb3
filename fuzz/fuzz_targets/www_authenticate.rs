#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oci_layout_fuzz::www_authenticate(data));
