//! How `index.json` is replaced: through a spare (the previous index, rewritten in place and
//! swapped in by `RENAME_EXCHANGE`) only when nobody else can see the spare's file, and never in
//! a way that changes a file a reader or another link still holds.

use std::fs;
use std::io::{Read, Seek};
use std::os::unix::fs::MetadataExt;

use oci_core::fsck::fsck;
use oci_core::{ContentStore, ImageDriver, StrayKind};
use oci_dir::CACHE_DIR;

use crate::common::{new_layout, ref_names, small_image};

const SPARE: &str = "index.json.spare";

#[test]
fn every_update_leaves_the_index_it_wrote_and_the_previous_one_as_spare() {
    let (_tmp, layout) = new_layout();
    let image = small_image(&layout);
    let index = layout.root().join("index.json");
    let spare = layout.root().join(CACHE_DIR).join(SPARE);
    let mut previous = fs::read(&index).unwrap();
    for name in ["a", "b", "c", "d"] {
        layout.tag(image.manifest.clone(), name).unwrap();
        assert_eq!(fs::read(&spare).unwrap(), previous, "after tagging {name}");
        previous = fs::read(&index).unwrap();
    }
    assert_eq!(ref_names(&layout).len(), 4);
    // Shorter than the spare it is written over: the spare's tail must not survive.
    assert!(layout.remove_ref("a").unwrap());
    assert!(layout.remove_ref("b").unwrap());
    let names: Vec<_> = ref_names(&layout).into_iter().flatten().collect();
    assert_eq!(names, ["c", "d"]);
    assert!(fs::metadata(&index).unwrap().len() < fs::metadata(&spare).unwrap().len());
    assert!(fsck(&layout).unwrap().findings.is_empty());
    assert!(layout.stray_files().unwrap().is_empty());
}

#[test]
fn an_index_a_reader_still_has_open_is_never_rewritten() {
    let (_tmp, layout) = new_layout();
    let image = small_image(&layout);
    layout.tag(image.manifest.clone(), "first").unwrap();
    let mut reader = fs::File::open(layout.root().join("index.json")).unwrap();
    let mut seen = Vec::new();
    reader.read_to_end(&mut seen).unwrap();
    // The first update makes the reader's file the spare; the second would rewrite it.
    layout.tag(image.manifest.clone(), "second").unwrap();
    layout.tag(image.manifest.clone(), "third").unwrap();
    layout.tag(image.manifest.clone(), "fourth").unwrap();
    reader.rewind().unwrap();
    let mut again = Vec::new();
    reader.read_to_end(&mut again).unwrap();
    assert_eq!(again, seen);
    let names: Vec<_> = ref_names(&layout).into_iter().flatten().collect();
    assert_eq!(names, ["first", "second", "third", "fourth"]);
}

#[test]
fn an_index_with_another_link_is_never_rewritten() {
    let (tmp, layout) = new_layout();
    let image = small_image(&layout);
    layout.tag(image.manifest.clone(), "first").unwrap();
    // As `cp -al layout snapshot` would leave it.
    let snapshot = tmp.path().join("snapshot-index.json");
    fs::hard_link(layout.root().join("index.json"), &snapshot).unwrap();
    let seen = fs::read(&snapshot).unwrap();
    for name in ["second", "third", "fourth"] {
        layout.tag(image.manifest.clone(), name).unwrap();
    }
    assert_eq!(fs::read(&snapshot).unwrap(), seen);
    let spare = layout.root().join(CACHE_DIR).join(SPARE);
    assert_eq!(fs::metadata(&spare).unwrap().nlink(), 1);
}

#[test]
fn a_spare_that_is_not_a_regular_file_is_replaced_not_followed() {
    let (tmp, layout) = new_layout();
    let image = small_image(&layout);
    let outside = tmp.path().join("outside.json");
    fs::write(&outside, b"untouched").unwrap();
    fs::create_dir(layout.root().join(CACHE_DIR)).unwrap();
    let spare = layout.root().join(CACHE_DIR).join(SPARE);
    std::os::unix::fs::symlink(&outside, &spare).unwrap();
    layout.tag(image.manifest.clone(), "v1").unwrap();
    layout.tag(image.manifest.clone(), "v2").unwrap();
    assert_eq!(fs::read(&outside).unwrap(), b"untouched");
    assert!(fs::symlink_metadata(&spare).unwrap().is_file());
    let names: Vec<_> = ref_names(&layout).into_iter().flatten().collect();
    assert_eq!(names, ["v1", "v2"]);
}

#[test]
fn a_cache_directory_that_leads_outside_gets_no_spare() {
    let (tmp, layout) = new_layout();
    let image = small_image(&layout);
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, layout.root().join(CACHE_DIR)).unwrap();
    for name in ["v1", "v2", "v3"] {
        layout.tag(image.manifest.clone(), name).unwrap();
    }
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    assert_eq!(ref_names(&layout).len(), 3);
    // No old index left behind under a temp name: the only stray is the link itself.
    let strays = layout.stray_files().unwrap();
    assert_eq!(strays.len(), 1);
    assert_eq!(strays[0].kind, StrayKind::Other);
}

const RECORD: &str = "index.json.outline";

#[test]
fn an_index_changed_behind_the_record_is_parsed_not_spliced() {
    let (_tmp, layout) = new_layout();
    let image = small_image(&layout);
    layout.tag(image.manifest.clone(), "v1").unwrap();
    layout.tag(image.manifest.clone(), "v2").unwrap();
    let record = layout.root().join(CACHE_DIR).join(RECORD);
    assert!(record.is_file(), "an update leaves a record");
    // Another tool rewrites the index in place, to text of the same length with the entries
    // elsewhere: a record trusted blindly would cut it in the wrong places.
    let index = layout.root().join("index.json");
    let text = String::from_utf8(fs::read(&index).unwrap()).unwrap();
    let foreign: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut foreign = serde_json::to_string_pretty(&foreign).unwrap();
    foreign.truncate(foreign.trim_end().len());
    assert_ne!(foreign.len(), text.len());
    fs::write(&index, &foreign).unwrap();
    layout.tag(image.manifest.clone(), "v3").unwrap();
    let names: Vec<_> = ref_names(&layout).into_iter().flatten().collect();
    assert_eq!(names, ["v1", "v2", "v3"]);
    // A damaged record, or one of another length, is the same as none.
    for damage in [&b"OCIOUTL1"[..], b"", &fs::read(&record).unwrap()[..40]] {
        fs::write(&record, damage).unwrap();
        layout.tag(image.manifest.clone(), "v1").unwrap();
    }
    let names: Vec<_> = ref_names(&layout).into_iter().flatten().collect();
    assert_eq!(names, ["v2", "v3", "v1"]);
    assert!(fsck(&layout).unwrap().findings.is_empty());
    assert!(layout.stray_files().unwrap().is_empty());
}

#[test]
fn edits_through_the_record_give_what_edits_through_a_parse_give() {
    let (_tmp, layout) = new_layout();
    let image = small_image(&layout);
    let record = layout.root().join(CACHE_DIR).join(RECORD);
    let names = ["a", "b", "c", "d", "e"];
    // What the index should name, in order: a tag moves a name to the end.
    let mut model: Vec<&str> = Vec::new();
    for (round, name) in names.iter().cycle().take(12).enumerate() {
        // Every other edit finds no record, and parses.
        if round % 2 == 1 {
            fs::remove_file(&record).unwrap();
        }
        layout.tag(image.manifest.clone(), name).unwrap();
        model.retain(|n| n != name);
        model.push(name);
        if round % 3 == 0 {
            let named = model.contains(&"c");
            assert_eq!(layout.remove_ref("c").unwrap(), named, "round {round}");
            model.retain(|n| *n != "c");
        }
        let left: Vec<_> = ref_names(&layout).into_iter().flatten().collect();
        assert_eq!(left, model, "round {round}");
    }
    let index = fs::read(layout.root().join("index.json")).unwrap();
    let parsed = oci_core::index::IndexDocument::parse(index.clone()).unwrap();
    assert_eq!(
        parsed.to_bytes(),
        index,
        "the index is as a parse writes it"
    );
}

#[test]
fn a_record_that_is_a_link_is_neither_followed_nor_written_through() {
    let (tmp, layout) = new_layout();
    let image = small_image(&layout);
    let outside = tmp.path().join("outside-record");
    fs::write(&outside, b"untouched").unwrap();
    fs::create_dir(layout.root().join(CACHE_DIR)).unwrap();
    let record = layout.root().join(CACHE_DIR).join(RECORD);
    std::os::unix::fs::symlink(&outside, &record).unwrap();
    for name in ["v1", "v2"] {
        layout.tag(image.manifest.clone(), name).unwrap();
    }
    assert_eq!(fs::read(&outside).unwrap(), b"untouched");
    assert_eq!(ref_names(&layout).len(), 2);
    // And a record with another link (a snapshot's) is left as it is.
    fs::remove_file(&record).unwrap();
    layout.tag(image.manifest.clone(), "v3").unwrap();
    let snapshot = tmp.path().join("snapshot-record");
    fs::hard_link(&record, &snapshot).unwrap();
    let seen = fs::read(&snapshot).unwrap();
    layout.tag(image.manifest.clone(), "v4").unwrap();
    assert_eq!(fs::read(&snapshot).unwrap(), seen);
}
