//! The layouts in `shared/conformance/layouts`, written by go-containerregistry, regclient and
//! containers/image. The corpus is only read: every test works on a copy.

use std::fs;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::support::*;

/// The README table: every layout, whether it is broken, and the index entry count where it is
/// stated: by the README, by the fixture's own `info.txt` (`delete_image_multiple_images`: "7
/// references in the index") or by its name (`delete_image_only_one_image`). For the others
/// the count is checked against `index.json` only.
const TABLE: [(&str, bool, Option<usize>); 11] = [
    ("ggcr-test_index", false, Some(4)),
    ("ggcr-test_index_one_image", false, Some(1)),
    ("ggcr-test_index_media_type", false, None),
    ("ggcr-test_gc_index", false, None),
    ("ggcr-test_gc_image_unknown_mediatype", true, Some(1)),
    ("regclient-testrepo", false, Some(26)),
    ("regclient-external", false, Some(3)),
    (
        "containers-image-delete_image_two_identical_references",
        false,
        Some(2),
    ),
    (
        "containers-image-delete_image_multiple_images",
        true,
        Some(7),
    ),
    (
        "containers-image-delete_image_only_one_image",
        true,
        Some(1),
    ),
    ("containers-image-name_lookups", true, Some(5)),
];

/// Every folder of `layouts/` that has an `index.json`, after checking it against the table.
fn corpus_layouts() -> Vec<(String, PathBuf, bool, Option<usize>)> {
    let root = corpus().join("layouts");
    let mut found: Vec<String> = names_in(&root)
        .into_iter()
        .filter(|name| root.join(name).join("index.json").is_file())
        .collect();
    found.sort();
    let mut listed: Vec<String> = TABLE.iter().map(|(name, ..)| (*name).to_owned()).collect();
    listed.sort();
    assert_eq!(
        found,
        listed,
        "the layouts in {} differ from the README table this test encodes",
        root.display()
    );
    TABLE
        .iter()
        .map(|(name, broken, count)| ((*name).to_owned(), root.join(name), *broken, *count))
        .collect()
}

/// The index entries as `index.json` has them (`"manifests": null` is none).
fn raw_entries(layout: &Layout) -> Vec<Value> {
    match &layout.index()["manifests"] {
        Value::Array(entries) => entries.clone(),
        Value::Null => Vec::new(),
        other => panic!("manifests is {other}"),
    }
}

/// `ls` only reads `index.json`, which every layout in the corpus has and which parses in all of
/// them, so `ls` succeeds on the broken layouts too: their breakage (missing blobs, a missing
/// `oci-layout`, a wrong size in a config descriptor) is below the index, where `ls` does not
/// look. What the broken layouts must make fail is checked in
/// `tag_reads_every_corpus_entry_or_fails_cleanly`.
#[test]
fn ls_json_lists_every_corpus_layout() {
    for (name, src, _broken, count) in corpus_layouts() {
        let layout = Layout::copy_of(&src);
        let raw = raw_entries(&layout);
        let listed = layout.ls();
        if let Some(count) = count {
            assert_eq!(listed.len(), count, "{name}: entry count (README)");
        }
        assert_eq!(listed.len(), raw.len(), "{name}: entry count (index.json)");
        for (entry, raw) in listed.iter().zip(&raw) {
            assert_eq!(entry["digest"], raw["digest"], "{name}");
            assert_eq!(entry["mediaType"], raw["mediaType"], "{name}");
            assert_eq!(entry["size"], raw["size"], "{name}");
            let reference = &raw["annotations"][REF_NAME];
            assert_eq!(entry["ref"], *reference, "{name}: null when untagged");
            assert_eq!(
                entry["platform"].is_null(),
                raw["platform"].is_null(),
                "{name}"
            );
            if !raw["platform"].is_null() {
                assert_eq!(
                    entry["platform"]["architecture"],
                    raw["platform"]["architecture"]
                );
                assert_eq!(entry["platform"]["os"], raw["platform"]["os"]);
            }
        }
        // The table form has one line per entry.
        let table = run(args!["ls", layout.dir]).success().stdout_str();
        assert_eq!(table.lines().count(), raw.len(), "{name}: ls lines");
    }
}

#[test]
fn corpus_refs_are_listed_as_the_readme_says() {
    let root = corpus().join("layouts");
    let refs = |name: &str| -> Vec<Value> {
        Layout::copy_of(&root.join(name))
            .ls()
            .iter()
            .map(|e| e["ref"].clone())
            .collect()
    };
    assert_eq!(
        refs("ggcr-test_index"),
        [json!("1"), json!("2"), json!("3"), json!("4")]
    );
    assert_eq!(refs("ggcr-test_index_one_image"), [Value::Null]);
    assert_eq!(
        refs("containers-image-delete_image_two_identical_references"),
        [json!("1.0.0"), json!("1.0.0")]
    );
    let mut testrepo = refs("regclient-testrepo");
    for reference in ["v1", "v2", "v3", "child"] {
        assert!(
            testrepo.contains(&json!(reference)),
            "regclient-testrepo: {reference}"
        );
    }
    testrepo.retain(|r| r.as_str().is_some_and(|r| r.starts_with("sha256-")));
    assert!(
        !testrepo.is_empty(),
        "regclient-testrepo has sha256-<hex> fallback tags"
    );

    let lookups = Layout::copy_of(&root.join("containers-image-name_lookups")).ls();
    assert!(
        lookups
            .iter()
            .any(|e| e["mediaType"] == "x-completely-unknown"),
        "an unknown media type is listed, not an error"
    );
}

#[test]
fn blob_ls_and_get_cover_every_corpus_blob() {
    for (name, src, _broken, _count) in corpus_layouts() {
        let layout = Layout::copy_of(&src);
        let files = files_under(&layout.dir.join("blobs"));
        let listed = layout.blobs();
        assert_eq!(listed.len(), files.len(), "{name}: blob count");
        if name == "regclient-testrepo" {
            assert_eq!(listed.len(), 91, "{name}: the README says 91 blobs");
        }
        for entry in listed {
            let digest = entry["digest"].as_str().unwrap();
            let on_disk = fs::read(layout.blob_path(digest)).unwrap();
            assert_eq!(entry["size"], json!(on_disk.len()), "{name}: {digest}");
            let got = run(args!["blob", "get", layout.dir, digest]).success();
            assert!(got.stdout == on_disk, "{name}: {digest} bytes");
        }
    }
}

/// `tag` reads the blob an entry points at. Where it is there (every clean layout, and the
/// broken ones whose breakage is elsewhere) tagging succeeds and the new entry carries the
/// digest and the blob's size; where it is missing (`name_lookups`,
/// `gc_image_unknown_mediatype`) the tag fails with one line naming it and the index is
/// unchanged.
#[test]
fn tag_reads_every_corpus_entry_or_fails_cleanly() {
    for (name, src, broken, _count) in corpus_layouts() {
        let layout = Layout::copy_of(&src);
        for (i, raw) in raw_entries(&layout).iter().enumerate() {
            let digest = raw["digest"].as_str().unwrap();
            let reference = format!("probe{i}");
            let blob = layout.blob_path(digest);
            if blob.is_file() {
                layout.tag(digest, &reference);
                let tagged = layout.entries_named(&reference);
                assert_eq!(tagged.len(), 1, "{name}: {digest}");
                assert_eq!(tagged[0]["digest"], json!(digest));
                assert_eq!(
                    tagged[0]["size"],
                    json!(fs::metadata(&blob).unwrap().len()),
                    "{name}: {digest}"
                );
            } else {
                assert!(broken, "{name} is clean but {digest} is missing");
                let before = layout.index_bytes();
                let encoded = digest.split_once(':').unwrap().1;
                run(args!["tag", layout.dir, digest, reference]).failure_naming(&[encoded]);
                assert_eq!(layout.index_bytes(), before, "{name}");
            }
        }
    }
}

#[test]
fn tagging_a_duplicated_ref_again_leaves_exactly_one() {
    let src = corpus()
        .join("layouts")
        .join("containers-image-delete_image_two_identical_references");
    let layout = Layout::copy_of(&src);
    let first = raw_entries(&layout)[0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(layout.entries_named("1.0.0").len(), 2);
    layout.tag(&first, "1.0.0");
    let named = layout.entries_named("1.0.0");
    assert_eq!(named.len(), 1);
    assert_eq!(named[0]["digest"], json!(first));
    assert_eq!(layout.ls().len(), 1);
}

#[test]
fn retagging_and_untagging_corpus_layouts_keeps_other_entries() {
    let root = corpus().join("layouts");
    let layout = Layout::copy_of(&root.join("regclient-testrepo"));
    let before = layout.ls();
    let v1 = layout.entries_named("v1")[0].clone();
    layout.tag(v1["digest"].as_str().unwrap(), "v1");
    assert_eq!(layout.ls().len(), before.len(), "retagging v1 onto itself");
    assert_eq!(layout.entries_named("v1")[0]["digest"], v1["digest"]);

    run(args!["untag", layout.dir, "v1"]).success();
    let after = layout.ls();
    assert_eq!(after.len(), before.len() - 1);
    let others: Vec<&Value> = before.iter().filter(|e| e["ref"] != json!("v1")).collect();
    assert_eq!(after.iter().collect::<Vec<_>>(), others);

    // The untagged entry of ggcr-test_index_one_image survives an untag of something else.
    let one = Layout::copy_of(&root.join("ggcr-test_index_one_image"));
    run(args!["untag", one.dir, "absent"]).success();
    assert_eq!(one.ls().len(), 1);
    assert_eq!(one.ls()[0]["ref"], Value::Null);
}
