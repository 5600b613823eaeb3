//! Integration tests of the `oci-layout` binary, run as a separate process the way a user runs
//! it: exit codes, stdout, the one-line `error: ...` on stderr, and what is (and is not) left on
//! disk afterwards.
//!
//! - `support`: running the binary, layouts in temporary directories, the shared corpus.
//! - `init_ls`, `blob`, `refs`: the commands one by one.
//! - `new_layouts`: `init`, `image create` and `unpack` into a missing, empty, foreign or
//!   unfinished directory; failed and killed unpacks; what a merge replaces.
//! - `errors`: usage errors, every invalid digest vector against every command, hostile input.
//! - `conformance`: the layouts other tools wrote (`shared/conformance/layouts`).
//! - `integrity`: fsck (the corpus findings exactly), gc, attach and referrers.
//! - `hostile`: layouts built to break them: links out of the root, FIFOs, huge or deep or
//!   self-referring indexes, absurd sizes.
//! - `concurrency`: several processes changing one layout at once, gc racing writers.
//! - `crash`: the SIGKILL harness (`#[ignore]`d; `cargo xtask ci` runs it).
//! - `interop`: skopeo and umoci read what the CLI writes and the other way round (skipped,
//!   with a visible message, when the tools are not on `PATH`).
//! - `read_only`: the commands that only read change nothing, on a writable or a read-only
//!   copy of every corpus layout; the commands that write refuse an archive.
//! - `copy`, `registry_read`: `copy` between layouts, archives and the real registry (started
//!   by `oci-test-registry`), skopeo on the other side; the read commands on `docker://`
//!   names, basic auth and TLS (skipped, visibly, without `docker-registry` or skopeo).
//! - `private_registry`: a registry that requires a client certificate, with `--cert-dir`.
//! - `proxy`: `HTTPS_PROXY` and `NO_PROXY`, through a CONNECT proxy that counts its tunnels.
//! - `docker_archive`: `docker-archive:` both ways against skopeo, the corpus's docker archives,
//!   archives built wrong on purpose.
//! - `image`: `image create` and `inspect`; what a layer keeps, read back by GNU tar, umoci
//!   and skopeo.
//! - `runc`: the built-in example, built static, runs under `runc` from a bundle with our
//!   config.json (skipped, visibly, without runc, umoci or root).
//! - `image_unpack`: `image unpack`: target rules, a killed unpack, and the tree against
//!   `umoci unpack` of images we, umoci and skopeo wrote.

#![allow(clippy::unwrap_used)]

/// Builds an argument vector from anything that is `AsRef<OsStr>` (`&str`, `String`, `&Path`,
/// `PathBuf`, …), so one call can mix paths and strings.
macro_rules! args {
    ($($arg:expr),* $(,)?) => {
        vec![$(::std::ffi::OsString::from(::std::convert::AsRef::<::std::ffi::OsStr>::as_ref(&$arg))),*]
    };
}

mod support;

mod all_tags;
mod blob;
mod concurrency;
mod conformance;
mod copy;
mod crash;
mod credentials;
mod docker_archive;
mod errors;
mod hostile;
mod image;
mod image_unpack;
mod init_ls;
mod integrity;
mod interop;
mod new_layouts;
mod private_registry;
mod proxy;
mod read_only;
mod refs;
mod registry_read;
mod runc;
