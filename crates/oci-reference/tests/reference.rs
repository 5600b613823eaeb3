//! Image references, normalised as docker does, checked against the reference grammar of the
//! distribution project (github.com/distribution/reference, `reference.go`; quoted below as
//! data) and the expectations of its `normalize_test.go` (`TestValidateReferenceName`,
//! `TestValidateRemoteName`, `TestParseRepositoryInfo`), which docker, podman and skopeo share;
//! and docker's familiar form of them, a docker archive's RepoTags.

#![allow(clippy::unwrap_used)]

use oci_reference::ImageReference;

/// The grammar, as `reference.go` of distribution/reference states it. `separator` is
/// `[-]+` in its `regexp.go` (the comment's `[-]*` would allow `ab`, split anywhere).
#[allow(dead_code)]
const DISTRIBUTION_GRAMMAR: &str = r#"
reference                       := name [ ":" tag ] [ "@" digest ]
name                            := [domain '/'] remote-name
domain                          := host [':' port-number]
host                            := domain-name | IPv4address | \[ IPv6address \]	; rfc3986 appendix-A
domain-name                     := domain-component ['.' domain-component]*
domain-component                := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
port-number                     := /[0-9]+/
path-component                  := alpha-numeric [separator alpha-numeric]*
path (or "remote-name")         := path-component ['/' path-component]*
alpha-numeric                   := /[a-z0-9]+/
separator                       := /[_.]|__|[-]*/

tag                             := /[\w][\w.-]{0,127}/

digest                          := digest-algorithm ":" digest-hex
digest-algorithm                := digest-algorithm-component [ digest-algorithm-separator digest-algorithm-component ]*
digest-algorithm-separator      := /[+.-_]/
digest-algorithm-component      := /[A-Za-z][A-Za-z0-9]*/
digest-hex                      := /[0-9a-fA-F]{32,}/ ; At least 128 bit digest value

identifier                      := /[a-f0-9]{64}/
"#;

const HEX: &str = "86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa";

/// What a reference means: registry, repository, tag, digest (hex of a sha256).
type Expected = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);

/// Every reference with what it must mean, or `None` where docker refuses it.
fn table() -> Vec<(String, Option<Expected>)> {
    let d = |hex: &'static str| Some(hex);
    let long_path = format!("a/{}", "b".repeat(253));
    let longest_hub = "b".repeat(255 - "library/".len());
    let mut rows: Vec<(String, Option<Expected>)> = vec![
        // Short names: Docker Hub, official images under library/, `latest` by default.
        (
            "alpine".into(),
            Some(("docker.io", "library/alpine", Some("latest"), None)),
        ),
        (
            "alpine:3.19".into(),
            Some(("docker.io", "library/alpine", Some("3.19"), None)),
        ),
        (
            "ubuntu-12.04-base".into(),
            Some((
                "docker.io",
                "library/ubuntu-12.04-base",
                Some("latest"),
                None,
            )),
        ),
        (
            "user/app".into(),
            Some(("docker.io", "user/app", Some("latest"), None)),
        ),
        (
            "user/app:v1".into(),
            Some(("docker.io", "user/app", Some("v1"), None)),
        ),
        (
            "library/foo/bar".into(),
            Some(("docker.io", "library/foo/bar", Some("latest"), None)),
        ),
        (
            "store/foo/bar".into(),
            Some(("docker.io", "store/foo/bar", Some("latest"), None)),
        ),
        (
            "other/library".into(),
            Some(("docker.io", "other/library", Some("latest"), None)),
        ),
        // Docker Hub spelled out, and its old name.
        (
            "docker.io/library/alpine".into(),
            Some(("docker.io", "library/alpine", Some("latest"), None)),
        ),
        (
            "docker.io/alpine".into(),
            Some(("docker.io", "library/alpine", Some("latest"), None)),
        ),
        (
            "docker.io/alpine:edge".into(),
            Some(("docker.io", "library/alpine", Some("edge"), None)),
        ),
        (
            "index.docker.io/alpine".into(),
            Some(("docker.io", "library/alpine", Some("latest"), None)),
        ),
        (
            "index.docker.io/fooo/bar".into(),
            Some(("docker.io", "fooo/bar", Some("latest"), None)),
        ),
        // A 64-hex path is an image ID alone, but a name under a host.
        (
            format!(
                "docker.io/{}",
                "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a"
            ),
            Some((
                "docker.io",
                "library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
                Some("latest"),
                None,
            )),
        ),
        // Hosts: a first component with `.` or `:`, `localhost`, or an uppercase letter.
        (
            "localhost/fooo".into(),
            Some(("localhost", "fooo", Some("latest"), None)),
        ),
        (
            "localhost/fooo/bar:t".into(),
            Some(("localhost", "fooo/bar", Some("t"), None)),
        ),
        (
            "localhost:5000/a/b:v1".into(),
            Some(("localhost:5000", "a/b", Some("v1"), None)),
        ),
        (
            "LOCALDOMAIN/fooo".into(),
            Some(("LOCALDOMAIN", "fooo", Some("latest"), None)),
        ),
        ("Foo/bar".into(), Some(("Foo", "bar", Some("latest"), None))),
        (
            "example.com/privatebase".into(),
            Some(("example.com", "privatebase", Some("latest"), None)),
        ),
        (
            "Example.COM/private/moonbase".into(),
            Some(("Example.COM", "private/moonbase", Some("latest"), None)),
        ),
        (
            "example.com:8000/private/moonbase".into(),
            Some(("example.com:8000", "private/moonbase", Some("latest"), None)),
        ),
        (
            "127.0.0.1:8000/private/moonbase".into(),
            Some(("127.0.0.1:8000", "private/moonbase", Some("latest"), None)),
        ),
        (
            "192.168.0.1:8/debian".into(),
            Some(("192.168.0.1:8", "debian", Some("latest"), None)),
        ),
        (
            "b.gcr.io/test.example.com/my-app:test.example.com".into(),
            Some((
                "b.gcr.io",
                "test.example.com/my-app",
                Some("test.example.com"),
                None,
            )),
        ),
        (
            "xn--n3h.com/myimage:xn--n3h.com".into(),
            Some(("xn--n3h.com", "myimage", Some("xn--n3h.com"), None)),
        ),
        // One component is a Docker Hub name, whatever it looks like: a host needs a path.
        (
            "192.168.0.1".into(),
            Some(("docker.io", "library/192.168.0.1", Some("latest"), None)),
        ),
        (
            "192.168.0.1:80".into(),
            Some(("docker.io", "library/192.168.0.1", Some("80"), None)),
        ),
        (
            "test.com:5000".into(),
            Some(("docker.io", "library/test.com", Some("5000"), None)),
        ),
        (
            "foo/foo_bar.com:8080".into(),
            Some(("docker.io", "foo/foo_bar.com", Some("8080"), None)),
        ),
        // IPv6 literals in brackets.
        (
            "[::1]:5000/x".into(),
            Some(("[::1]:5000", "x", Some("latest"), None)),
        ),
        (
            "[fc00::1]:5000/docker/docker".into(),
            Some(("[fc00::1]:5000", "docker/docker", Some("latest"), None)),
        ),
        (
            "[fc00:1:2:3:4:5:6:7]:5000/library/debian".into(),
            Some((
                "[fc00:1:2:3:4:5:6:7]:5000",
                "library/debian",
                Some("latest"),
                None,
            )),
        ),
        ("[::1]/x:v2".into(), Some(("[::1]", "x", Some("v2"), None))),
        // Digests, alone and with a tag (both kept: the digest is what is fetched).
        (
            format!("busybox@sha256:{HEX}"),
            Some(("docker.io", "library/busybox", None, d(HEX))),
        ),
        (
            format!("busybox:latest@sha256:{HEX}"),
            Some(("docker.io", "library/busybox", Some("latest"), d(HEX))),
        ),
        (
            format!("localhost:5000/a@sha256:{HEX}"),
            Some(("localhost:5000", "a", None, d(HEX))),
        ),
        (
            format!("[::1]:5000/a:v1@sha256:{HEX}"),
            Some(("[::1]:5000", "a", Some("v1"), d(HEX))),
        ),
        // Names the path grammar allows.
        (
            "docker---rules/docker".into(),
            Some(("docker.io", "docker---rules/docker", Some("latest"), None)),
        ),
        (
            "dock__er/docker".into(),
            Some(("docker.io", "dock__er/docker", Some("latest"), None)),
        ),
        (
            "d/docker".into(),
            Some(("docker.io", "d/docker", Some("latest"), None)),
        ),
        (
            "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev".into(),
            Some((
                "docker.io",
                "library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
                Some("latest"),
                None,
            )),
        ),
        (
            "lowercase:Uppercase".into(),
            Some(("docker.io", "library/lowercase", Some("Uppercase"), None)),
        ),
        (
            format!("x:{}", "t".repeat(128)),
            Some((
                "docker.io",
                "library/x",
                Some(Box::leak("t".repeat(128).into_boxed_str())),
                None,
            )),
        ),
        (
            long_path.clone(),
            Some((
                "docker.io",
                Box::leak(long_path.clone().into_boxed_str()),
                Some("latest"),
                None,
            )),
        ),
        (
            longest_hub.clone(),
            Some((
                "docker.io",
                Box::leak(format!("library/{longest_hub}").into_boxed_str()),
                Some("latest"),
                None,
            )),
        ),
    ];
    // What docker refuses.
    for bad in [
        "",
        " alpine",
        "alpine ",
        "https://github.com/docker/docker",
        // Uppercase in the repository path.
        "docker/Docker",
        "UPPER",
        "docker.io/docker/Docker",
        "localhost:5000/App",
        // Path grammar.
        "-docker",
        "-docker/docker",
        "docker-/docker",
        "-docker.io/docker/docker",
        "docker///docker",
        "a//b",
        "docker.io/docker///docker",
        "____/____",
        "_docker/_docker",
        "dock..er/docker",
        "dock_.er/docker",
        "dock-.er/docker",
        "docker/",
        "localhost:5000/",
        // An image ID is not a name.
        "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
        // Hosts: IPv6 without brackets or port forms docker does not take.
        "[fc00::1]",
        "[fc00::1]:5000",
        "fc00::1:5000/debian",
        "[fe80::1%eth0]:5000/debian",
        "[2001:db8:3:4::192.0.2.33]:5000/debian",
        "example.com:port/x",
        "exa_mple.com/x",
        // Tags: 128 characters at most, not starting with `.` or `-`, ASCII.
        "alpine:",
        "alpine:.hidden",
        "alpine:-dash",
        "alpine:a/b",
        "alpine:tâg",
        "alpine:v1:v2",
        // Digests.
        "alpine@",
        "alpine@sha256:abc",
        "alpine@sha256",
        "alpine@sha256:86E0E091D0DA6BDE2456DBB48306F3956BBEB2EAE1B5B9A43045843F69FE4AAA",
        "alpine@md5:d41d8cd98f00b204e9800998ecf8427e",
    ] {
        rows.push((bad.to_owned(), None));
    }
    rows.push((format!("alpine:{}", "t".repeat(129)), None));
    rows.push((format!("a/{}", "b".repeat(255)), None));
    rows.push(("b".repeat(255 - "library/".len() + 1), None));
    rows.push((
        "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255/docker".into(),
        None,
    ));
    rows
}

#[test]
fn references_normalise_as_the_distribution_grammar_says() {
    let rows = table();
    assert!(rows.len() >= 30);
    let mut wrong = Vec::new();
    for (text, expected) in &rows {
        let got = ImageReference::parse(text).map(|r| {
            (
                r.registry,
                r.repository,
                r.tag,
                r.digest.map(|d| d.encoded().to_owned()),
            )
        });
        let matches = match (&got, expected) {
            (Ok(got), Some((registry, repository, tag, digest))) => {
                got.0 == *registry
                    && got.1 == *repository
                    && got.2.as_deref() == *tag
                    && got.3.as_deref() == *digest
            }
            (Err(_), None) => true,
            _ => false,
        };
        if !matches {
            wrong.push(format!("{text:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_refused_reference_says_what_is_wrong() {
    for (text, said) in [
        ("docker/Docker", "lowercase"),
        ("alpine:.hidden", "invalid tag"),
        ("alpine@sha256:abc", "invalid digest"),
        ("fc00::1:5000/debian", "registry host"),
        (
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "image ID",
        ),
    ] {
        let message = ImageReference::parse(text).unwrap_err().to_string();
        assert!(
            message.contains(text) && message.contains(said),
            "{text}: {message}"
        );
    }
    let long = format!("a/{}", "b".repeat(255));
    let message = ImageReference::parse(&long).unwrap_err().to_string();
    assert!(message.contains("longer than 255"), "{message}");
}

#[test]
fn docker_hub_is_reached_and_keyed_as_docker_does() {
    for text in [
        "alpine",
        "docker.io/library/alpine",
        "index.docker.io/library/alpine",
    ] {
        let r = ImageReference::parse(text).unwrap();
        assert_eq!(r.to_string(), "docker.io/library/alpine:latest", "{text}");
        assert_eq!(r.api_host(), "registry-1.docker.io", "{text}");
        assert_eq!(r.credential_key(), "https://index.docker.io/v1/", "{text}");
    }
    let r = ImageReference::parse("localhost:5000/a").unwrap();
    assert_eq!(
        (r.api_host(), r.credential_key()),
        ("localhost:5000", "localhost:5000")
    );
    let r = ImageReference::parse("[::1]:5000/x").unwrap();
    assert!(r.is_loopback());
    assert_eq!(r.api_host(), "[::1]:5000");
}

#[test]
fn a_whole_repository_names_no_tag_or_digest() {
    let r = ImageReference::parse_repository("user/app").unwrap();
    assert_eq!(r.to_string(), "docker.io/user/app");
    assert_eq!((r.tag, r.digest), (None, None));
    for named in [
        "user/app:v1",
        "user/app:latest",
        &format!("user/app@sha256:{HEX}"),
    ] {
        let message = ImageReference::parse_repository(named)
            .unwrap_err()
            .to_string();
        assert!(message.contains("whole repository"), "{named}: {message}");
    }
}

#[test]
fn repo_tags_take_dockers_familiar_form() {
    let id = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a";
    let rows: Vec<(String, Result<&str, &str>)> = vec![
        ("busybox".into(), Ok("busybox:latest")),
        ("busybox:1.36".into(), Ok("busybox:1.36")),
        (
            "docker.io/library/busybox:latest".into(),
            Ok("busybox:latest"),
        ),
        ("library/busybox".into(), Ok("busybox:latest")),
        ("index.docker.io/library/x:1".into(), Ok("x:1")),
        ("docker.io/user/app".into(), Ok("user/app:latest")),
        ("library/a/b:2".into(), Ok("library/a/b:2")),
        ("localhost:5000/a/b".into(), Ok("localhost:5000/a/b:latest")),
        ("localhost/app:1".into(), Ok("localhost/app:1")),
        ("quay.io/org/app".into(), Ok("quay.io/org/app:latest")),
        ("[::1]:5000/x:1".into(), Ok("[::1]:5000/x:1")),
        // `Foo` is a host (an uppercase letter), its repository `bar` lowercase.
        ("Foo/bar:1".into(), Ok("Foo/bar:1")),
        // What a RepoTag cannot be.
        (id.into(), Err("image ID")),
        (
            format!("busybox@sha256:{HEX}"),
            Err("a RepoTag is NAME:TAG, not a digest"),
        ),
        (
            format!("busybox:1@sha256:{HEX}"),
            Err("a RepoTag is NAME:TAG, not a digest"),
        ),
        ("".into(), Err("empty, or spaces around it")),
        (" busybox".into(), Err("empty, or spaces around it")),
        ("Busybox:1".into(), Err("lowercase")),
        ("foo/Bar:1".into(), Err("lowercase")),
        ("exa_mple.com/x:1".into(), Err("registry host")),
        ("busybox:tâg".into(), Err("invalid tag")),
    ];
    let mut wrong = Vec::new();
    for (text, expected) in &rows {
        let got = ImageReference::familiar_repo_tag(text);
        let matches = match (&got, expected) {
            (Ok(got), Ok(expected)) => got == expected,
            (Err(error), Err(said)) => error.reference == *text && error.reason.contains(said),
            _ => false,
        };
        if !matches {
            wrong.push(format!("{text:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // 64 hex digits alone are an image ID, but a name under a host.
    assert_eq!(
        ImageReference::familiar_repo_tag(&format!("docker.io/{id}:1")).unwrap(),
        format!("{id}:1")
    );
}

#[test]
fn the_familiar_form_parses_back_to_the_same_reference() {
    for text in [
        "alpine",
        "user/app:v1",
        "library/a/b",
        "localhost:5000/a/b:v1",
        "[::1]:5000/x",
        &format!("busybox:1@sha256:{HEX}"),
        &format!("example.com/x@sha256:{HEX}"),
    ] {
        let reference = ImageReference::parse(text).unwrap();
        let familiar = reference.familiar();
        assert_eq!(
            ImageReference::parse(&familiar).unwrap(),
            reference,
            "{text}"
        );
    }
    let reference = ImageReference::parse(&format!("busybox:1@sha256:{HEX}")).unwrap();
    assert_eq!(reference.familiar(), format!("busybox:1@sha256:{HEX}"));
    assert_eq!(
        ImageReference::parse("docker.io/library/a/b")
            .unwrap()
            .familiar(),
        "library/a/b:latest"
    );
}
