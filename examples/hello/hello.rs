//! `/bin/hello` of the built-in example image: prints the image's `/etc/motd`.
//!
//! `cargo xtask demo` builds it as a static binary (`rustc -C target-feature=+crt-static`), so
//! it runs in an image that holds nothing else: no shell, no libc, no loader.

use std::process::ExitCode;

fn main() -> ExitCode {
    match std::fs::read_to_string("/etc/motd") {
        Ok(motd) => {
            print!("{motd}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hello: /etc/motd: {e}");
            ExitCode::FAILURE
        }
    }
}
