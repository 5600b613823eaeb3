//! OCI 1.1 referrers: against distribution 2.8, which has no referrers API (the client keeps
//! the referrers tag schema), and against the in-memory registry, which has one.

use std::collections::BTreeMap;

use oci_core::Location;
use oci_core::oci_spec::image::Descriptor;
use oci_core::prelude::*;
use oci_core::referrers::{ArtifactFile, attach};
use oci_registry::{Registry, referrers_tag};

use crate::fake_registry::{Behaviour, FakeRegistry};
use crate::harness::{Variant, registry};
use crate::{build_image, chain, open, options, require_registry};

const SBOM: &str = "application/vnd.example.sbom.v1";
const SIGNATURE: &str = "application/vnd.example.signature.v1";

/// Attaches an artifact of `artifact_type` holding `text` to `subject`.
fn attach_text(
    store: &Registry,
    subject: &Descriptor,
    artifact_type: &str,
    text: &str,
) -> Descriptor {
    let files = vec![ArtifactFile {
        title: "content.txt".into(),
        source: Location::Url("test".into()),
        media_type: "text/plain".into(),
        content: Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
    }];
    let annotations = BTreeMap::from([("org.example.note".to_owned(), text.to_owned())]);
    attach(store, subject, artifact_type, files, annotations).unwrap()
}

fn digests(descriptors: &[Descriptor]) -> Vec<String> {
    let mut all: Vec<String> = descriptors.iter().map(|d| d.digest().to_string()).collect();
    all.sort();
    all
}

#[test]
fn a_referrer_pushed_where_there_is_no_referrers_api_is_listed_under_its_tag() {
    require_registry!("a_referrer_pushed_where_there_is_no_referrers_api_is_listed_under_its_tag");
    let store = open(
        &registry(Variant::Plain).host,
        "referrers/fallback",
        options(),
    );
    let image = build_image("referrers fallback", &[10]);
    image.push_tagged(&store, "v1");
    let subject = image.digest();

    let sbom = attach_text(&store, &image.manifest, SBOM, "an sbom");
    let signature = attach_text(&store, &image.manifest, SIGNATURE, "a signature");
    // Pushed again: listed once.
    attach_text(&store, &image.manifest, SBOM, "an sbom");

    // The index under the tag, as another client reads it.
    let tagged = store.resolve(&referrers_tag(subject)).unwrap();
    let index: serde_json::Value = serde_json::from_slice(
        &store
            .read_document(
                ContentKind::Manifest,
                Digest::try_from(tagged.digest()).unwrap(),
                None,
            )
            .unwrap(),
    )
    .unwrap();
    let listed = index["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{index}");
    assert_eq!(listed[0]["digest"], sbom.digest().to_string());
    assert_eq!(listed[0]["artifactType"], SBOM);
    assert_eq!(listed[0]["annotations"]["org.example.note"], "an sbom");
    assert_eq!(listed[1]["digest"], signature.digest().to_string());

    // Read back through the client: the API answers 404, the tag is read.
    let fresh = open(
        &registry(Variant::Plain).host,
        "referrers/fallback",
        options(),
    );
    assert_eq!(
        digests(&fresh.referrers(subject, None).unwrap()),
        digests(&[sbom.clone(), signature.clone()])
    );
    assert_eq!(
        digests(&fresh.referrers(subject, Some(SIGNATURE)).unwrap()),
        digests(std::slice::from_ref(&signature))
    );
    // And through the core's walk of the index, which holds the tag.
    let found = oci_core::referrers::referrers(&fresh, subject, None).unwrap();
    let mut found: Vec<String> = found.into_iter().map(|r| r.digest).collect();
    found.sort();
    assert_eq!(found, digests(&[sbom, signature]));

    // A manifest with no referrers has none.
    let other = Algorithm::Sha256.digest(b"no referrers");
    assert!(fresh.referrers(other, None).unwrap().is_empty());
}

#[test]
fn a_registry_with_the_referrers_api_is_asked_and_no_tag_is_kept() {
    let (fake, server) = FakeRegistry::serve(Behaviour {
        referrers_api: true,
        referrers_page: 1,
        ..Behaviour::default()
    });
    let store = open(&server.host, "referrers/api", options());
    let image = build_image("referrers api", &[10]);
    copy_image(&image.store, &store, &image.manifest).unwrap();
    let subject = image.digest();
    let sbom = attach_text(&store, &image.manifest, SBOM, "an sbom");
    let signature = attach_text(&store, &image.manifest, SIGNATURE, "a signature");
    let second_signature = attach_text(&store, &image.manifest, SIGNATURE, "another signature");

    assert!(fake.tags().is_empty(), "{:?}", fake.tags());
    // Three pages of one.
    assert_eq!(
        digests(&store.referrers(subject, None).unwrap()),
        digests(&[sbom, signature.clone(), second_signature.clone()])
    );
    let signatures = store.referrers(subject, Some(SIGNATURE)).unwrap();
    assert_eq!(
        digests(&signatures),
        digests(&[signature, second_signature])
    );
    assert!(signatures.iter().all(|d| {
        d.artifact_type()
            .as_ref()
            .is_some_and(|t| t.to_string() == SIGNATURE)
    }));
    let asked: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.path().contains("/referrers/sha256:"))
        .map(|r| r.target().to_owned())
        .collect();
    assert_eq!(asked.len(), 5, "{asked:?}");
}

#[test]
fn a_referrers_tag_that_is_not_an_index_is_not_replaced() {
    let (fake, server) = FakeRegistry::serve(Behaviour::default());
    let store = open(&server.host, "referrers/squatted", options());
    let image = build_image("referrers squatted", &[10]);
    copy_image(&image.store, &store, &image.manifest).unwrap();
    let squatter = store
        .read_document(ContentKind::Manifest, image.digest(), None)
        .unwrap();
    let tag = referrers_tag(image.digest());
    let squatter_digest = fake.put_tag(
        &tag,
        &squatter,
        "application/vnd.oci.image.manifest.v1+json",
    );

    let files = vec![ArtifactFile {
        title: "x".into(),
        source: Location::Url("test".into()),
        media_type: "text/plain".into(),
        content: Box::new(std::io::Cursor::new(b"x".to_vec())),
    }];
    let error = attach(&store, &image.manifest, SBOM, files, BTreeMap::new()).unwrap_err();
    let text = chain(&error);
    assert!(text.contains(&tag), "{text}");
    assert!(text.contains("not an image index"), "{text}");
    assert_eq!(
        store.resolve(&tag).unwrap().digest().to_string(),
        squatter_digest.to_string()
    );
    // Reading treats it as no referrers.
    assert!(store.referrers(image.digest(), None).unwrap().is_empty());
}
