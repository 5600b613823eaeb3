//! A private registry: HTTPS with a certificate from the test's own CA and a client
//! certificate required (`oci-test-registry`'s `MutualTls`), reached with `--cert-dir` holding
//! `ca.crt`, `client.cert` and `client.key` as docker's `certs.d` does. Never the system's
//! trust store or `/etc/containers`: `HOME` is the test's, and `--cert-dir` is always given.

use std::ffi::OsStr;

use oci_test_registry::harness::{Variant, write_cert_dir};

use crate::copy::{Ctx, docker, oci, registry};

#[test]
fn copy_with_a_cert_dir_holding_the_ca_and_a_client_pair_and_refusals_without_them() {
    let Some(registry) = registry(
        "private_registry::copy_with_a_cert_dir_holding_the_ca_and_a_client_pair_and_refusals_without_them",
        Variant::MutualTls,
        false,
    ) else {
        return;
    };
    let ctx = Ctx::new();
    let home = ctx.path("home");
    let env = [("HOME", home.as_os_str())];
    let (src, digest) = ctx.image("src", "v1", "mutual-tls", &[]);
    let target = docker(registry, "private/app:v1");
    let full = ctx.path("certs-full");
    write_cert_dir(&full, true, true);
    let no_client = ctx.path("certs-ca-only");
    write_cert_dir(&no_client, true, false);
    let no_ca = ctx.path("certs-client-only");
    write_cert_dir(&no_ca, false, true);

    let pushed = ctx
        .run_with(
            args!["copy", oci(&src, "v1"), target, "--cert-dir", full],
            &env,
        )
        .success()
        .line();
    assert_eq!(pushed, digest);
    let pulled = ctx.path("pulled");
    let got = ctx
        .run_with(
            args!["copy", target, oci(&pulled, "v1"), "--src-cert-dir", full],
            &env,
        )
        .success()
        .line();
    assert_eq!(got, digest);
    let listed = ctx
        .run_with(
            args![
                "ls",
                docker(registry, "private/app"),
                "--cert-dir",
                full,
                "--json"
            ],
            &env,
        )
        .success()
        .json();
    assert_eq!(listed[0]["digest"], digest.as_str());

    let run = ctx
        .run_with(
            args!["copy", oci(&src, "v1"), target, "--cert-dir", no_client],
            &env,
        )
        .failure_naming(&[&registry.host, "client certificate", "--cert-dir"]);
    eprintln!("no client pair: {}", run.stderr.trim_end());
    let run = ctx
        .run_with(
            args!["copy", target, oci(&pulled, "v2"), "--cert-dir", no_ca],
            &env,
        )
        .failure_naming(&[&registry.host, "not trusted", "--cert-dir"]);
    eprintln!("no CA: {}", run.stderr.trim_end());
}

#[test]
fn a_cert_dir_with_a_certificate_but_not_its_key_is_refused_naming_the_file() {
    let ctx = Ctx::new();
    let dir = ctx.path("certs");
    std::fs::create_dir_all(&dir).unwrap();
    // A CA saved as `.cert` (it should be `.crt`): docker refuses it, and so do we.
    std::fs::write(dir.join("ca.cert"), "").unwrap();
    let home = ctx.path("home");
    let run = ctx.run_with(
        args!["ls", "docker://127.0.0.1:1/app", "--cert-dir", dir],
        &[("HOME", home.as_os_str())],
    );
    run.failure_naming(&[&dir.join("ca.cert").display().to_string(), ".crt"]);
}

#[test]
fn one_cert_dir_for_two_registries_is_a_usage_error() {
    let ctx = Ctx::new();
    let dir = ctx.path("certs");
    let env: [(&str, &OsStr); 0] = [];
    ctx.run_with(
        args![
            "copy",
            "docker://127.0.0.1:1/a:v1",
            "docker://127.0.0.1:2/b:v1",
            "--cert-dir",
            dir
        ],
        &env,
    )
    .usage_error_naming(&["--cert-dir", "--src-cert-dir"]);
}
