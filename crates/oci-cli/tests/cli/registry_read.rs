//! The read commands on `docker://` names, and how a registry is reached: basic auth from
//! `--creds` or Docker's `config.json`, TLS with and without verification. Against the real
//! registry of `oci-test-registry`, like `copy`.

use std::fs;

use base64::Engine as _;
use oci_test_registry::harness::{BASIC_PASSWORD, BASIC_USER, Variant};

use crate::copy::{Ctx, digests, docker, oci, registry, registry_tags};
use crate::support::*;

#[test]
fn ls_inspect_fsck_and_blob_get_read_a_repository() {
    let Some(registry) = registry(
        "registry_read::ls_inspect_fsck_and_blob_get_read_a_repository",
        Variant::Plain,
        false,
    ) else {
        return;
    };
    let ctx = Ctx::new();
    let (src, digest) = ctx.image("src", "v1", "read-commands", &[]);
    let built = digests(&src, "v1");
    let repository = docker(registry, "read/app");
    for tag in ["a", "b", "c"] {
        ctx.run(args![
            "copy",
            oci(&src, "v1"),
            format!("{repository}:{tag}")
        ])
        .success();
    }
    assert_eq!(registry_tags(&ctx, &repository), ["a", "b", "c"]);
    let listed = ctx.run(args!["ls", repository]).success().stdout_str();
    assert_eq!(listed.lines().count(), 3, "{listed}");
    assert!(
        listed.lines().all(|line| line.contains(&digest)),
        "{listed}"
    );

    let tree = ctx
        .run(args!["inspect", format!("{repository}:b")])
        .success()
        .stdout_str();
    for needle in [&digest, &built.config, &built.layers[0]] {
        assert!(tree.contains(needle.as_str()), "{needle} not in {tree}");
    }

    ctx.run(args!["fsck", format!("{repository}:a")]).success();

    let out = ctx.path("layer");
    ctx.run(args!["blob", "get", repository, built.layers[0], "-o", out])
        .success();
    assert_eq!(
        fs::read(&out).unwrap(),
        fs::read(crate::copy::blob_file(&src, &built.layers[0])).unwrap()
    );

    // A blob damaged in the registry's storage: fsck hashes it and names it.
    let (_, hex) = built.layers[0].split_once(':').unwrap();
    let stored = registry
        .storage
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    flip_byte(&stored, 10);
    let run = ctx.run(args!["fsck", format!("{repository}:a")]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let said = format!("{}{}", run.stdout_str(), run.stderr);
    eprintln!("fsck of a damaged blob: {said}");
    assert!(said.contains(&built.layers[0]), "{said}");
}

#[test]
fn basic_auth_takes_creds_or_docker_config_and_refuses_a_wrong_password() {
    let Some(registry) = registry(
        "registry_read::basic_auth_takes_creds_or_docker_config_and_refuses_a_wrong_password",
        Variant::Basic,
        false,
    ) else {
        return;
    };
    let ctx = Ctx::new();
    let (src, digest) = ctx.image("src", "v1", "basic-auth", &[]);
    let target = docker(registry, "basic/app:v1");
    let creds = format!("{BASIC_USER}:{BASIC_PASSWORD}");

    let run = ctx
        .run(args!["copy", oci(&src, "v1"), target])
        .failure_naming(&[&registry.host]);
    eprintln!("no credentials: {}", run.stderr.trim_end());
    let run = ctx
        .run(args![
            "copy",
            oci(&src, "v1"),
            target,
            "--creds",
            format!("{BASIC_USER}:wrong")
        ])
        .failure_naming(&[&registry.host]);
    eprintln!("wrong password: {}", run.stderr.trim_end());

    ctx.run(args!["copy", oci(&src, "v1"), target, "--creds", creds])
        .success();

    // Docker's config.json, `auths` with base64 user:pass.
    let config = ctx.path("docker-auth");
    fs::create_dir_all(&config).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(&creds);
    fs::write(
        config.join("config.json"),
        serde_json::json!({"auths": {registry.host.clone(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let pulled = ctx.path("pulled");
    let env = [("DOCKER_CONFIG", config.as_os_str())];
    let got = ctx
        .run_with(args!["copy", target, oci(&pulled, "v1")], &env)
        .success()
        .line();
    assert_eq!(got, digest);
    let listed = ctx
        .run_with(args!["ls", docker(registry, "basic/app"), "--json"], &env)
        .success()
        .json();
    assert_eq!(listed[0]["ref"], "v1");
}

#[test]
fn tls_without_verification_works_and_with_it_the_certificate_is_refused() {
    let Some(registry) = registry(
        "registry_read::tls_without_verification_works_and_with_it_the_certificate_is_refused",
        Variant::Tls,
        false,
    ) else {
        return;
    };
    let ctx = Ctx::new();
    let (src, digest) = ctx.image("src", "v1", "tls", &[]);
    let target = docker(registry, "tls/app:v1");
    // The test's CA is in no trust store: the certificate is refused, even on 127.0.0.1
    // (plain HTTP is only for a registry that does not speak TLS at all).
    let run = ctx
        .run(args!["copy", oci(&src, "v1"), target])
        .failure_naming(&[&registry.host]);
    eprintln!("unknown CA: {}", run.stderr.trim_end());
    assert!(
        run.stderr.to_lowercase().contains("certificate"),
        "{}",
        run.stderr
    );

    let pushed = ctx
        .run(args!["copy", oci(&src, "v1"), target, "--tls-verify=false"])
        .success()
        .line();
    assert_eq!(pushed, digest);
    let listed = ctx
        .run(args![
            "ls",
            docker(registry, "tls/app"),
            "--tls-verify=false",
            "--json"
        ])
        .success()
        .json();
    assert_eq!(listed[0]["digest"], digest.as_str());
}
