//! `write_index`: a multi-platform image from manifests already in the layout.

use oci_core::oci_spec::image::{ImageIndex, MediaType};
use oci_core::prelude::*;

use oci_image::{Error, ImageBuilder, LayerOptions, Mtime, platform, resolve_image, write_index};

use crate::fixture;

/// Builds a one-layer image for `platform` from the fixture's tree and tags it `name`.
fn image_for(f: &crate::Fixture, platform_name: &str, name: &str) -> Digest {
    let mut image = ImageBuilder::new(&f.layout, &platform::parse(platform_name).unwrap());
    let options = LayerOptions {
        mtime: Mtime::Fixed(0),
        ..LayerOptions::default()
    };
    image.add_dir_layer(&f.root, &options, None).unwrap();
    image.created_at(0);
    let manifest = image.write_and_tag(name).unwrap();
    Digest::try_from(manifest.digest()).unwrap()
}

#[test]
fn an_index_over_two_platforms_resolves_to_each_and_is_sound() {
    let f = fixture();
    let amd64 = image_for(&f, "linux/amd64", "amd64");
    let arm64 = image_for(&f, "linux/arm64/v8", "arm64");

    // One by ref name, one by digest.
    let index = write_index(&f.layout, &["amd64".to_owned(), arm64.to_string()]).unwrap();
    assert_eq!(index.media_type(), &MediaType::ImageIndex);
    let document: ImageIndex = serde_json::from_slice(
        &seed::read_blob(&f.layout, Digest::try_from(index.digest()).unwrap()).unwrap(),
    )
    .unwrap();
    let entries: Vec<(String, String)> = document
        .manifests()
        .iter()
        .map(|entry| {
            (
                entry.digest().to_string(),
                platform::to_string(entry.platform().as_ref().unwrap()),
            )
        })
        .collect();
    assert_eq!(entries.len(), 2);
    assert!(entries.contains(&(amd64.to_string(), "linux/amd64".to_owned())));
    assert!(entries.contains(&(arm64.to_string(), "linux/arm64/v8".to_owned())));
    assert!(
        document
            .manifests()
            .iter()
            .all(|entry| entry.media_type() == &MediaType::ImageManifest)
    );

    f.layout.tag(&index, "multi").unwrap();
    for (wanted, digest) in [("linux/amd64", amd64), ("linux/arm64", arm64)] {
        let image =
            resolve_image(&f.layout, "multi", Some(&platform::parse(wanted).unwrap())).unwrap();
        assert_eq!(image.descriptor.digest().to_string(), digest.to_string());
    }
    assert!(fsck(&f.layout).unwrap().is_clean());

    // The same manifests give the same index (the digest a push keeps).
    let again = write_index(&f.layout, &["amd64".to_owned(), "arm64".to_owned()]).unwrap();
    assert_eq!(again.digest(), index.digest());
}

#[test]
fn what_cannot_make_an_index_is_refused_naming_it() {
    let f = fixture();
    image_for(&f, "linux/amd64", "first");
    image_for(&f, "linux/amd64", "second");
    let arm64 = image_for(&f, "linux/arm64", "arm64");
    let index = write_index(&f.layout, &["first".to_owned(), "arm64".to_owned()]).unwrap();
    f.layout.tag(&index, "multi").unwrap();

    let refused = |names: &[&str]| {
        let names: Vec<String> = names.iter().map(|&n| n.to_owned()).collect();
        let error = write_index(&f.layout, &names).unwrap_err();
        assert!(
            matches!(error, Error::InvalidValue { .. } | Error::Store(_)),
            "{error:?}"
        );
        error.to_string()
    };
    let message = refused(&["first", "second"]);
    assert!(
        message.contains("second") && message.contains("linux/amd64"),
        "{message}"
    );
    let message = refused(&["multi", "arm64"]);
    assert!(
        message.contains("multi") && message.contains("not an image manifest"),
        "{message}"
    );
    let message = refused(&["arm64", "missing"]);
    assert!(message.contains("missing"), "{message}");
    assert!(!refused(&[]).is_empty());
    // Nothing was tagged by the refusals.
    let names: Vec<String> = f
        .layout
        .index()
        .unwrap()
        .manifests()
        .iter()
        .filter_map(|entry| oci_core::index::ref_name(entry).map(str::to_owned))
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    let _ = arm64;
}
