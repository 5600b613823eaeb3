//! The registry over HTTPS with a certificate from the test's own CA: trusted through
//! `RegistryOptions::ca_certificates` (never the system's store), refused without it.

use oci_core::prelude::*;
use oci_registry::RegistryOptions;

use crate::harness::{Variant, certificates, registry, write_cert_dir};
use crate::{build_image, chain, open, options, require_registry};

#[test]
fn the_ca_given_in_the_options_is_trusted() {
    require_registry!("the_ca_given_in_the_options_is_trusted");
    let image = build_image("tls", &[100, 3000]);
    let trusting = RegistryOptions {
        ca_certificates: vec![certificates().ca_pem.clone()],
        chunk_size: 1024,
        ..options()
    };
    for host in [
        registry(Variant::Tls).host.clone(),
        registry(Variant::Tls)
            .host
            .replace("127.0.0.1", "localhost"),
    ] {
        let store = open(&host, "tls/trusted", trusting.clone());
        image.push_tagged(&store, "v1");
        image.assert_held_by(&store, "v1");
    }
}

#[test]
fn without_the_ca_the_registry_is_refused_for_its_certificate() {
    require_registry!("without_the_ca_the_registry_is_refused_for_its_certificate");
    let host = &registry(Variant::Tls).host;
    let store = open(host, "tls/untrusted", options());
    let error = store.resolve("v1").unwrap_err();
    let text = chain(&error);
    assert!(text.contains(&format!("https://{host}/v2/")), "{text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    // Nothing was sent in the clear instead.
    assert!(!text.contains("http://"), "{text}");

    let image = build_image("tls untrusted", &[10]);
    let error = copy_image(&image.store, &store, &image.manifest).unwrap_err();
    assert!(
        chain(&error).to_lowercase().contains("certificate"),
        "{}",
        chain(&error)
    );
}

#[test]
fn verification_can_be_turned_off() {
    require_registry!("verification_can_be_turned_off");
    let store = open(
        &registry(Variant::Tls).host,
        "tls/unverified",
        RegistryOptions {
            tls_verify: false,
            ..options()
        },
    );
    let image = build_image("tls unverified", &[10]);
    copy_image(&image.store, &store, &image.manifest).unwrap();
    assert_eq!(
        store.stat(ContentKind::Manifest, image.digest()).unwrap(),
        Some(image.manifest.size())
    );
}

#[test]
fn a_ca_option_that_is_not_a_certificate_is_a_clear_error() {
    let reference = oci_registry::ImageReference::parse("127.0.0.1:1/x").unwrap();
    let error = oci_registry::Registry::open(
        &reference,
        RegistryOptions {
            ca_certificates: vec![b"not a certificate".to_vec()],
            ..options()
        },
    )
    .unwrap_err();
    assert!(error.to_string().contains("CA certificate"), "{error}");
}

/// Options reading certificates only from `dir`.
fn with_cert_dir(dir: &std::path::Path) -> RegistryOptions {
    RegistryOptions {
        cert_dir: Some(dir.to_owned()),
        ..options()
    }
}

#[test]
fn a_cert_dir_with_the_ca_and_a_client_pair_reaches_a_registry_that_requires_one() {
    require_registry!(
        "a_cert_dir_with_the_ca_and_a_client_pair_reaches_a_registry_that_requires_one"
    );
    let host = &registry(Variant::MutualTls).host;
    let dir = tempfile::tempdir().unwrap();
    write_cert_dir(dir.path(), true, true);
    let store = open(host, "mtls/app", with_cert_dir(dir.path()));
    let image = build_image("mutual tls", &[100, 2000]);
    image.push_tagged(&store, "v1");
    image.assert_held_by(&store, "v1");
}

#[test]
fn without_a_client_pair_the_registry_that_requires_one_refuses_naming_the_host() {
    require_registry!(
        "without_a_client_pair_the_registry_that_requires_one_refuses_naming_the_host"
    );
    let host = &registry(Variant::MutualTls).host;
    let dir = tempfile::tempdir().unwrap();
    write_cert_dir(dir.path(), true, false);
    let store = open(host, "mtls/refused", with_cert_dir(dir.path()));
    let error = store.resolve("v1").unwrap_err();
    let text = chain(&error);
    eprintln!("no client certificate: {text}");
    assert!(text.contains(host.as_str()), "{text}");
    assert!(text.contains("client certificate"), "{text}");
}

#[test]
fn a_cert_dir_without_the_ca_leaves_the_certificate_untrusted() {
    require_registry!("a_cert_dir_without_the_ca_leaves_the_certificate_untrusted");
    let host = &registry(Variant::MutualTls).host;
    let dir = tempfile::tempdir().unwrap();
    write_cert_dir(dir.path(), false, true);
    let store = open(host, "mtls/untrusted", with_cert_dir(dir.path()));
    let text = chain(&store.resolve("v1").unwrap_err());
    eprintln!("no CA: {text}");
    assert!(text.contains(host.as_str()), "{text}");
    assert!(text.contains("not trusted"), "{text}");
    assert!(text.contains("--cert-dir"), "{text}");
}

#[test]
fn a_cert_dir_with_a_key_missing_is_refused_naming_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("client.cert"), "").unwrap();
    let reference = oci_registry::ImageReference::parse("127.0.0.1:1/x").unwrap();
    let error = oci_registry::Registry::open(&reference, with_cert_dir(dir.path())).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains(&dir.path().join("client.cert").display().to_string()),
        "{text}"
    );
}

#[test]
fn a_cert_dir_ca_that_is_not_a_certificate_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.crt"), "not a certificate").unwrap();
    let reference = oci_registry::ImageReference::parse("127.0.0.1:1/x").unwrap();
    let error = oci_registry::Registry::open(&reference, with_cert_dir(dir.path())).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains(&dir.path().join("ca.crt").display().to_string()),
        "{text}"
    );
}
