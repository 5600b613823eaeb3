#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oci_layout_fuzz::image_reference(data));
