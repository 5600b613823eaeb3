//! Platforms as `os/arch[/variant]`: parsing, the host's, and matching an index entry.

use oci_core::oci_spec::image::{Arch, Os, Platform, PlatformBuilder};

use crate::{Error, Result};

/// Parses `os/arch` or `os/arch/variant` (`linux/amd64`, `linux/arm64/v8`).
pub fn parse(input: &str) -> Result<Platform> {
    let parts: Vec<&str> = input.split('/').collect();
    let valid = |s: &&str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    };
    if !(2..=3).contains(&parts.len()) || !parts.iter().all(valid) {
        return Err(Error::invalid(
            "platform",
            input,
            "expected OS/ARCH or OS/ARCH/VARIANT, e.g. linux/amd64 or linux/arm64/v8",
        ));
    }
    Ok(build(parts[0], parts[1], parts.get(2).copied()))
}

/// A platform from its parts.
pub fn build(os: &str, arch: &str, variant: Option<&str>) -> Platform {
    let builder = PlatformBuilder::default()
        .os(Os::from(os))
        .architecture(Arch::from(arch));
    let builder = match variant {
        Some(variant) => builder.variant(variant.to_owned()),
        None => builder,
    };
    builder
        .build()
        .expect("os and architecture are the only required fields, and both are set")
}

/// The platform of the machine this runs on, in Go's names (`x86_64` is `amd64`, `aarch64`
/// is `arm64`, ...). The OS is `linux` on every Unix host, since that is what containers
/// run, and `windows` on Windows.
pub fn host() -> Platform {
    let os = if cfg!(windows) { "windows" } else { "linux" };
    build(os, go_arch(std::env::consts::ARCH), None)
}

/// Go's `GOARCH` for a Rust `target_arch`.
pub fn go_arch(rust_arch: &str) -> &str {
    let little = cfg!(target_endian = "little");
    match rust_arch {
        "x86" => "386",
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "loongarch64" => "loong64",
        "mips" if little => "mipsle",
        "mips64" if little => "mips64le",
        "powerpc" => "ppc",
        "powerpc64" if little => "ppc64le",
        "powerpc64" => "ppc64",
        "wasm32" => "wasm",
        other => other,
    }
}

/// `os/arch[/variant]`.
pub fn to_string(platform: &Platform) -> String {
    let mut s = format!("{}/{}", platform.os(), platform.architecture());
    if let Some(variant) = platform.variant().as_deref().filter(|v| !v.is_empty()) {
        s.push('/');
        s.push_str(variant);
    }
    s
}

/// The variant an architecture has when none is named: `arm64` is `v8`, `arm` is `v7`.
fn normalized_variant(platform: &Platform) -> Option<String> {
    match platform.variant().as_deref().filter(|v| !v.is_empty()) {
        Some(variant) => Some(variant.to_owned()),
        None => match platform.architecture() {
            Arch::ARM64 => Some("v8".to_owned()),
            Arch::ARM => Some("v7".to_owned()),
            _ => None,
        },
    }
}

/// Whether an entry for `offered` serves a request for `wanted`: same OS and architecture,
/// and the same variant when `wanted` names one (`arm64` without a variant is `v8`).
pub fn matches(wanted: &Platform, offered: &Platform) -> bool {
    if wanted.os() != offered.os() || wanted.architecture() != offered.architecture() {
        return false;
    }
    match wanted.variant().as_deref().filter(|v| !v.is_empty()) {
        None => true,
        Some(_) => normalized_variant(wanted) == normalized_variant(offered),
    }
}

/// Whether a platform is the `unknown/unknown` of attestation manifests (BuildKit's
/// provenance and SBOMs), which no one runs.
pub(crate) fn is_unknown(platform: &Platform) -> bool {
    platform.os().to_string() == "unknown" && platform.architecture().to_string() == "unknown"
}
