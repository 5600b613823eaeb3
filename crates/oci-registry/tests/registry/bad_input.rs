//! Bad input: references that do not parse, and servers that are not the registry they claim
//! to be (HTML, a 100 MB manifest, a redirect to another host, a token endpoint that hangs).

use std::time::{Duration, Instant};

use oci_core::MemoryStore;
use oci_core::oci_spec::image::{Descriptor, MediaType};
use oci_core::prelude::*;
use oci_registry::{Credentials, ImageReference, RegistryOptions};
use serde_json::json;

use crate::http::Response;
use crate::responder::{Reply, Responder};
use crate::{build_image, chain, open, options, read_blob};

#[test]
fn malformed_references_are_refused_naming_them() {
    let long_tag = format!("x:{}", "t".repeat(129));
    let bad = [
        "",
        " alpine",
        "alpine ",
        // (`UPPER/case` is the host UPPER, as docker reads it.)
        "upper/Case",
        "a//b",
        "-leading/x",
        "x:",
        "x:-tag",
        "x@sha256:abc",
        "x@sha256:ZZ5a9f2ff2a6e25d8b8d4bd7f7c7a6f4f4c0a2b0a3c0d7c1e5e9a3a7a1f3b2c1d0e",
        "x@md5:d41d8cd98f00b204e9800998ecf8427e",
        "localhost:5000:6000/x",
        "http://localhost:5000/x",
        "x:tag with space",
        "x/y:a:b",
        long_tag.as_str(),
    ];
    for text in bad {
        let error = ImageReference::parse(text).err();
        let Some(error) = error else {
            panic!("{text:?} was accepted");
        };
        let message = error.to_string();
        assert!(message.contains(&format!("{text:?}")), "{message}");
        assert!(message.starts_with("invalid image reference"), "{message}");
    }
    // And good ones, for contrast.
    let digest = Algorithm::Sha256.digest(b"x");
    for good in [
        "alpine".to_owned(),
        "localhost:5000/a/b:v1".to_owned(),
        format!("127.0.0.1:5000/x@{digest}"),
        format!("x:{}", "t".repeat(128)),
    ] {
        assert!(ImageReference::parse(&good).is_ok(), "{good}");
    }
}

fn html_page() -> Response {
    Response::new(200)
        .header("Content-Type", "text/html; charset=utf-8")
        .body("<!doctype html><html><body><h1>Welcome to our portal</h1></body></html>")
}

#[test]
fn a_server_that_answers_html_is_not_taken_for_a_registry() {
    let server = Responder::start(|_| Reply::Respond(html_page()));
    let store = open(&server.host, "html/site", options());
    let text = chain(&store.resolve("v1").unwrap_err());
    assert!(text.contains(&server.host), "{text}");
    assert!(text.contains("HTML"), "{text}");

    let text = chain(&store.index().unwrap_err());
    assert!(text.contains("HTML"), "{text}");

    let digest = Algorithm::Sha256.digest(b"x");
    let text = chain(&store.stat(ContentKind::Blob, digest).unwrap_err());
    assert!(text.contains(&digest.to_string()), "{text}");
    assert!(text.contains("HTML"), "{text}");

    // A copy does not take the page's 200s for "already there" or "stored".
    let image = build_image("html", &[10]);
    let text = chain(&copy_image(&image.store, &store, &image.manifest).unwrap_err());
    assert!(text.contains("HTML"), "{text}");
}

#[test]
fn a_manifest_of_100_mb_is_refused_without_reading_it() {
    const HUGE: u64 = 100 << 20;
    let digest = Algorithm::Sha256.digest(b"a huge manifest");
    for declared in [true, false] {
        let server = Responder::start(move |request| {
            if request.path() == "/v2/" {
                return Reply::Respond(Response::new(200).json(&json!({})));
            }
            let head = Response::new(200)
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .header("Docker-Content-Digest", digest.to_string());
            if request.method() == "HEAD" {
                return Reply::Respond(head.header("Content-Length", HUGE.to_string()));
            }
            Reply::Endless {
                response: head,
                length: HUGE,
                declared,
            }
        });
        let store = open(&server.host, "huge/manifest", options());
        let started = Instant::now();
        let text = chain(
            &store
                .read_document(ContentKind::Manifest, digest, None)
                .unwrap_err(),
        );
        assert!(text.contains(&digest.to_string()), "{text}");
        assert!(
            text.contains("a manifest over the 4194304 byte limit"),
            "{text}"
        );

        // What a tag resolves to is refused before it is read.
        let root = store.resolve("v1").unwrap();
        assert_eq!(root.size(), HUGE);
        let text = chain(&copy_image(&store, &MemoryStore::new(), &root).unwrap_err());
        assert!(text.contains("over the"), "{text}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }
}

#[test]
fn a_redirect_to_another_host_does_not_carry_the_credentials() {
    let blob = b"the blob, served from elsewhere".to_vec();
    let digest = Algorithm::Sha256.digest(&blob);
    let served = blob.clone();
    // "Another host": another loopback address.
    let storage = Responder::start_on("127.0.0.2", move |_| {
        Reply::Respond(
            Response::new(200)
                .header("Content-Type", "application/octet-stream")
                .body(served.clone()),
        )
    });
    let storage_url = format!("http://{}/bucket/{digest}", storage.host);
    let registry = Responder::start(move |request| {
        let authorized = request.head.get("Authorization") == Some("Basic dXNlcjpzZWNyZXQ=");
        if !authorized {
            return Reply::Respond(
                Response::new(401).header("WWW-Authenticate", "Basic realm=\"test\""),
            );
        }
        if request.path().contains("/blobs/") {
            return Reply::Respond(Response::new(307).header("Location", storage_url.clone()));
        }
        Reply::Respond(Response::new(200).json(&json!({})))
    });
    let store = open(
        &registry.host,
        "redirect/blob",
        RegistryOptions {
            credentials: Credentials::Basic {
                username: "user".into(),
                password: "secret".into(),
            },
            ..options()
        },
    );
    assert_eq!(read_blob(&store, digest).unwrap(), blob);
    let at_storage = storage.requests();
    assert!(!at_storage.is_empty());
    for request in at_storage {
        assert_eq!(request.head.get("Authorization"), None, "{request:?}");
    }
    // The registry did get them.
    assert!(
        registry
            .requests()
            .iter()
            .any(|r| r.head.get("Authorization").is_some())
    );
}

#[test]
fn a_token_endpoint_that_hangs_fails_within_the_timeout() {
    let hanging = Responder::start(|_| Reply::Hang(Duration::from_secs(60)));
    let realm = format!("http://{}/token", hanging.host);
    let registry = Responder::start(move |request| {
        if request.head.get("Authorization").is_some() {
            return Reply::Respond(Response::new(200).json(&json!({})));
        }
        Reply::Respond(Response::new(401).header(
            "WWW-Authenticate",
            format!("Bearer realm=\"{realm}\",service=\"hang\""),
        ))
    });
    let store = open(
        &registry.host,
        "hang/token",
        RegistryOptions {
            timeout: Duration::from_secs(1),
            ..options()
        },
    );
    let started = Instant::now();
    let text = chain(&store.resolve("v1").unwrap_err());
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}: {text}");
    assert!(
        text.contains(&format!("http://{}/token", hanging.host)),
        "{text}"
    );
    assert!(text.to_lowercase().contains("timeout"), "{text}");
}

#[test]
fn a_registry_that_hangs_fails_within_the_timeout() {
    let registry = Responder::start(|request| {
        if request.path() == "/v2/" {
            return Reply::Respond(Response::new(200).json(&json!({})));
        }
        Reply::Hang(Duration::from_secs(60))
    });
    let store = open(
        &registry.host,
        "hang/registry",
        RegistryOptions {
            timeout: Duration::from_secs(1),
            retries: 1,
            ..options()
        },
    );
    let started = Instant::now();
    let text = chain(&store.resolve("v1").unwrap_err());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(text.contains(&registry.host), "{text}");
    assert!(text.to_lowercase().contains("timeout"), "{text}");
}

#[test]
fn a_manifest_served_as_another_kind_is_refused() {
    let image = build_image("served as", &[10]);
    let manifest = image
        .store
        .read_document(ContentKind::Manifest, image.digest(), None)
        .unwrap();
    let digest = image.digest();
    let server = Responder::start(move |request| {
        if request.path() == "/v2/" {
            return Reply::Respond(Response::new(200).json(&json!({})));
        }
        Reply::Respond(
            Response::new(200)
                .header("Content-Type", "application/vnd.oci.image.index.v1+json")
                .header("Docker-Content-Digest", digest.to_string())
                .body(manifest.clone()),
        )
    });
    let store = open(&server.host, "served/as", options());
    let text = chain(
        &store
            .read_document(ContentKind::Manifest, digest, None)
            .unwrap_err(),
    );
    assert!(
        text.contains("served as application/vnd.oci.image.index.v1+json"),
        "{text}"
    );
    // The registry's answer, at its URL: nothing about a layout.
    assert!(
        text.contains("/v2/served/as/manifests/") && !text.contains("layout"),
        "{text}"
    );
    let descriptor = Descriptor::new(MediaType::ImageManifest, image.manifest.size(), digest);
    assert!(copy_image(&store, &MemoryStore::new(), &descriptor).is_err());
}
