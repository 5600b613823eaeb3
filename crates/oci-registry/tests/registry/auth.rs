//! Authentication against the real registry: htpasswd (basic) and token (a bearer challenge,
//! tokens from the test's token server).

use oci_core::prelude::*;
use oci_registry::{Credentials, RegistryOptions};

use crate::harness::{BASIC_PASSWORD, BASIC_USER, Variant, registry};
use crate::proxy::FaultProxy;
use crate::tokens::{self, PASSWORD, READER};
use crate::{build_image, chain, open, options, require_registry};

fn basic(user: &str, password: &str) -> RegistryOptions {
    RegistryOptions {
        credentials: Credentials::Basic {
            username: user.to_owned(),
            password: password.to_owned(),
        },
        chunk_size: 1024,
        chunked_uploads: true,
        ..options()
    }
}

/// Pushes an image, tags it, reads it back through another client with the same options.
fn push_and_pull(host: &str, repository: &str, options: &RegistryOptions, seed: &str) {
    let image = build_image(seed, &[100, 3000]);
    image.push_tagged(&open(host, repository, options.clone()), "v1");
    image.assert_held_by(&open(host, repository, options.clone()), "v1");
}

#[test]
fn basic_auth_with_the_right_password_pushes_and_pulls() {
    require_registry!("basic_auth_with_the_right_password_pushes_and_pulls");
    let proxy = FaultProxy::start(&registry(Variant::Basic).host);
    push_and_pull(
        &proxy.host,
        "auth/basic",
        &basic(BASIC_USER, BASIC_PASSWORD),
        "basic",
    );
    // Once the registry asked, every request carried the credentials: one 401 per client
    // (besides the unauthenticated `GET /v2/` that finds out the scheme).
    let refused: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.status == Some(401) && s.target != "/v2/")
        .collect();
    assert!(refused.len() <= 2, "{refused:?}");
    assert!(refused.iter().all(|s| !s.authorized), "{refused:?}");
}

#[test]
fn basic_auth_without_credentials_is_refused_naming_the_registry() {
    require_registry!("basic_auth_without_credentials_is_refused_naming_the_registry");
    let host = &registry(Variant::Basic).host;
    let store = open(host, "auth/basic-anonymous", options());
    let text = chain(&store.resolve("v1").unwrap_err());
    assert!(text.contains(host), "{text}");
    assert!(text.contains("asks for a user and password"), "{text}");

    let image = build_image("basic anonymous", &[10]);
    let text = chain(&copy_image(&image.store, &store, &image.manifest).unwrap_err());
    assert!(text.contains(host), "{text}");
    assert!(text.contains("asks for a user and password"), "{text}");
}

#[test]
fn basic_auth_with_a_wrong_password_is_refused_clearly() {
    require_registry!("basic_auth_with_a_wrong_password_is_refused_clearly");
    let host = &registry(Variant::Basic).host;
    let store = open(
        host,
        "auth/basic-wrong",
        basic(BASIC_USER, "not the password"),
    );
    for _ in 0..2 {
        let text = chain(&store.resolve("v1").unwrap_err());
        assert!(text.contains(host), "{text}");
        assert!(text.contains("refused the user and password"), "{text}");
    }
    let image = build_image("basic wrong", &[10]);
    let text = chain(&copy_image(&image.store, &store, &image.manifest).unwrap_err());
    assert!(text.contains("refused the user and password"), "{text}");
}

fn token_user(user: &str, password: &str) -> RegistryOptions {
    basic(user, password)
}

#[test]
fn token_auth_pushes_and_pulls_with_tokens_cached_per_scope() {
    require_registry!("token_auth_pushes_and_pulls_with_tokens_cached_per_scope");
    let host = &registry(Variant::Token).host;
    let user = "token-pusher";
    let image = build_image("token", &[100, 3000, 5000]);
    let store = open(host, "auth/token", token_user(user, PASSWORD));
    image.push_tagged(&store, "v1");
    image.assert_held_by(&store, "v1");
    // Dozens of requests, one token per scope.
    let requests = tokens::server().requests_of(user);
    let mut scopes: Vec<String> = requests.iter().map(|r| r.scopes.join(" ")).collect();
    scopes.sort();
    assert_eq!(
        scopes,
        [
            "repository:auth/token:pull",
            "repository:auth/token:pull,push"
        ],
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.service.as_deref() == Some(tokens::SERVICE))
    );
}

#[test]
fn token_auth_with_a_wrong_password_is_refused_clearly() {
    require_registry!("token_auth_with_a_wrong_password_is_refused_clearly");
    let host = &registry(Variant::Token).host;
    let store = open(host, "auth/token-wrong", token_user("token-wrong", "nope"));
    let text = chain(&store.resolve("v1").unwrap_err());
    assert!(text.contains(host), "{text}");
    assert!(
        text.contains("token endpoint refused the user and password"),
        "{text}"
    );
}

#[test]
fn token_auth_without_credentials_is_refused_clearly() {
    require_registry!("token_auth_without_credentials_is_refused_clearly");
    let host = &registry(Variant::Token).host;
    let store = open(host, "auth/token-anonymous", options());
    let text = chain(&store.resolve("v1").unwrap_err());
    assert!(text.contains(host), "{text}");
    assert!(
        text.contains("no user and password is configured"),
        "{text}"
    );
}

#[test]
fn token_auth_refuses_a_push_the_token_does_not_allow() {
    require_registry!("token_auth_refuses_a_push_the_token_does_not_allow");
    let host = &registry(Variant::Token).host;
    // Someone who may push puts an image there.
    push_and_pull(
        host,
        "auth/token-read-only",
        &token_user("token-owner", PASSWORD),
        "owner",
    );
    // The reader may pull it...
    let reader = open(host, "auth/token-read-only", token_user(READER, PASSWORD));
    let root = reader.resolve("v1").unwrap();
    let copy = oci_core::MemoryStore::new();
    copy_image(&reader, &copy, &root).unwrap();
    // ...and not push.
    let image = build_image("reader push", &[10]);
    let text = chain(&copy_image(&image.store, &reader, &image.manifest).unwrap_err());
    assert!(text.contains(host), "{text}");
    assert!(text.contains("access denied to reader"), "{text}");
}
