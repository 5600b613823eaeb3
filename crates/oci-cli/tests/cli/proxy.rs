//! Proxies from the environment, set on the child process only: `HTTPS_PROXY` through the
//! CONNECT proxy of `oci-test-registry`, which counts the tunnels it opens, in front of the
//! TLS registry. The registry is named `registry.oci-layout.test`, a name that resolves nowhere
//! and that only the proxy routes to it: a copy that reaches it went through the proxy.

use std::ffi::OsStr;

use oci_test_registry::connect_proxy::ConnectProxy;
use oci_test_registry::harness::{UNRESOLVABLE_HOST, Variant, write_cert_dir};

use crate::copy::{Ctx, oci, registry};

/// The environment of a run: this proxy, `no_proxy` as given, and every other proxy variable
/// the test's own environment may hold overridden.
fn proxy_env<'a>(proxy: &'a ConnectProxy, no_proxy: &'a str) -> Vec<(&'static str, &'a OsStr)> {
    vec![
        ("HTTPS_PROXY", OsStr::new(&proxy.url)),
        ("https_proxy", OsStr::new("")),
        ("HTTP_PROXY", OsStr::new("")),
        ("http_proxy", OsStr::new("")),
        ("NO_PROXY", OsStr::new(no_proxy)),
        ("no_proxy", OsStr::new("")),
    ]
}

#[test]
fn https_proxy_carries_a_copy_and_no_proxy_or_loopback_go_around_it() {
    let Some(registry) = registry(
        "proxy::https_proxy_carries_a_copy_and_no_proxy_or_loopback_go_around_it",
        Variant::Tls,
        false,
    ) else {
        return;
    };
    let ctx = Ctx::new();
    let certs = ctx.path("certs");
    write_cert_dir(&certs, true, false);
    let (src, digest) = ctx.image("src", "v1", "proxied", &[]);
    let port = registry.host.rsplit_once(':').unwrap().1;
    let named = format!("{UNRESOLVABLE_HOST}:{port}");
    let proxy = ConnectProxy::start(&[(named.as_str(), registry.host.as_str())]);
    let target = format!("docker://{named}/proxy/app:v1");

    let pushed = ctx
        .run_with(
            args!["copy", oci(&src, "v1"), target, "--cert-dir", certs],
            &proxy_env(&proxy, ""),
        )
        .success()
        .line();
    assert_eq!(pushed, digest);
    let tunnels = proxy.targets();
    assert!(!tunnels.is_empty(), "the copy did not go through the proxy");
    assert!(tunnels.iter().all(|t| *t == named), "{tunnels:?}");

    // The host in NO_PROXY (a parent domain matches its subdomains): the client goes to it
    // directly, where the name resolves nowhere, and the proxy sees nothing.
    let proxy = ConnectProxy::start(&[(named.as_str(), registry.host.as_str())]);
    let run = ctx
        .run_with(
            args![
                "copy",
                target,
                oci(&ctx.path("pulled"), "v1"),
                "--cert-dir",
                certs
            ],
            &proxy_env(&proxy, "example.org, oci-layout.test"),
        )
        .failure_naming(&[&named]);
    eprintln!("NO_PROXY, unresolvable name: {}", run.stderr.trim_end());
    assert_eq!(proxy.targets(), Vec::<String>::new());

    // A registry on this machine is never proxied, as Go's clients never proxy loopback.
    let pulled = ctx
        .run_with(
            args![
                "copy",
                format!("docker://{}/proxy/app:v1", registry.host),
                oci(&ctx.path("pulled"), "v1"),
                "--cert-dir",
                certs
            ],
            &proxy_env(&proxy, ""),
        )
        .success()
        .line();
    assert_eq!(pulled, digest);
    assert_eq!(proxy.targets(), Vec::<String>::new());
}

#[test]
fn a_proxy_variable_that_does_not_parse_is_an_error_naming_it() {
    let ctx = Ctx::new();
    let env = [
        ("HTTPS_PROXY", OsStr::new("ftp://proxy.example:21")),
        ("https_proxy", OsStr::new("")),
    ];
    ctx.run_with(args!["ls", "docker://registry.example.com/app"], &env)
        .failure_naming(&["HTTPS_PROXY", "ftp://proxy.example:21"]);
}

#[test]
fn http_proxy_carries_a_plain_http_copy_and_https_proxy_does_not() {
    let Some(registry) = registry(
        "proxy::http_proxy_carries_a_plain_http_copy_and_https_proxy_does_not",
        Variant::Plain,
        false,
    ) else {
        return;
    };
    let ctx = Ctx::new();
    let (src, digest) = ctx.image("src", "v1", "proxied-plain", &[]);
    let port = registry.host.rsplit_once(':').unwrap().1;
    let named = format!("{UNRESOLVABLE_HOST}:{port}");
    let target = format!("docker://{named}/proxy/plain:v1");
    let routes = [(named.as_str(), registry.host.as_str())];

    // Only HTTPS_PROXY: not for an http:// registry, which is then looked up directly.
    let proxy = ConnectProxy::start(&routes);
    ctx.run_with(
        args!["copy", oci(&src, "v1"), target, "--plain-http"],
        &proxy_env(&proxy, ""),
    )
    .failure_naming(&[&named]);
    assert_eq!(proxy.targets(), Vec::<String>::new());

    let proxy = ConnectProxy::start(&routes);
    let env = [
        ("HTTPS_PROXY", OsStr::new("")),
        ("https_proxy", OsStr::new("")),
        ("HTTP_PROXY", OsStr::new(&proxy.url)),
        ("http_proxy", OsStr::new("")),
        ("NO_PROXY", OsStr::new("")),
        ("no_proxy", OsStr::new("")),
        ("REQUEST_METHOD", OsStr::new("")),
    ];
    let pushed = ctx
        .run_with(args!["copy", oci(&src, "v1"), target, "--plain-http"], &env)
        .success()
        .line();
    assert_eq!(pushed, digest);
    assert!(
        !proxy.targets().is_empty(),
        "the copy did not go through the proxy"
    );
}
