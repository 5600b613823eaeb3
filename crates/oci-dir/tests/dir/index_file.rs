//! How `index.json` is replaced: read, parsed, written whole under another name and renamed
//! over it. Never rewritten in place, so a reader or another link keeps the index it had, and
//! nothing is left beside it (no spare, no record, no temp file).

use std::fs;
use std::io::{Read, Seek};
use std::os::unix::fs::MetadataExt;

use oci_core::fsck::fsck;
use oci_core::{LayoutFiles, Store, StrayKind};
use oci_dir::CACHE_DIR;

use crate::common::{new_layout, ref_names, small_image};

fn root_names(root: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_update_replaces_the_index_and_leaves_nothing_beside_it() {
    let (_tmp, layout) = new_layout();
    let image = small_image(&layout);
    let index = layout.root().join("index.json");
    for name in ["a", "b", "c", "d"] {
        let before = fs::metadata(&index).unwrap().ino();
        layout.tag(&image.manifest, name).unwrap();
        assert_ne!(
            fs::metadata(&index).unwrap().ino(),
            before,
            "tagging {name} rewrote index.json in place"
        );
        // No spare of the previous index, no outline record, no cache directory.
        assert_eq!(
            root_names(layout.root()),
            ["blobs", "index.json", "oci-layout"],
            "after tagging {name}"
        );
    }
    assert_eq!(ref_names(&layout).len(), 4);
    assert!(layout.remove_ref("a").unwrap());
    assert!(layout.remove_ref("b").unwrap());
    let names: Vec<_> = ref_names(&layout).into_iter().flatten().collect();
    assert_eq!(names, ["c", "d"]);
    assert_eq!(
        root_names(layout.root()),
        ["blobs", "index.json", "oci-layout"]
    );
    assert!(fsck(&layout).unwrap().findings.is_empty());
    assert!(layout.stray_files().unwrap().is_empty());
}

#[test]
fn an_index_a_reader_still_has_open_is_never_rewritten() {
    let (_tmp, layout) = new_layout();
    let image = small_image(&layout);
    layout.tag(&image.manifest, "first").unwrap();
    let mut reader = fs::File::open(layout.root().join("index.json")).unwrap();
    let mut seen = Vec::new();
    reader.read_to_end(&mut seen).unwrap();
    layout.tag(&image.manifest, "second").unwrap();
    layout.tag(&image.manifest, "third").unwrap();
    layout.tag(&image.manifest, "fourth").unwrap();
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
    layout.tag(&image.manifest, "first").unwrap();
    // As `cp -al layout snapshot` would leave it.
    let snapshot = tmp.path().join("snapshot-index.json");
    fs::hard_link(layout.root().join("index.json"), &snapshot).unwrap();
    let seen = fs::read(&snapshot).unwrap();
    for name in ["second", "third", "fourth"] {
        layout.tag(&image.manifest, name).unwrap();
    }
    assert_eq!(fs::read(&snapshot).unwrap(), seen);
    assert_eq!(fs::metadata(&snapshot).unwrap().nlink(), 1);
    let names: Vec<_> = ref_names(&layout).into_iter().flatten().collect();
    assert_eq!(names, ["first", "second", "third", "fourth"]);
}

#[test]
fn a_cache_directory_that_leads_outside_is_never_written_through() {
    let (tmp, layout) = new_layout();
    let image = small_image(&layout);
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, layout.root().join(CACHE_DIR)).unwrap();
    for name in ["v1", "v2", "v3"] {
        layout.tag(&image.manifest, name).unwrap();
    }
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    assert_eq!(ref_names(&layout).len(), 3);
    // No old index left behind under a temp name: the only stray is the link itself.
    let strays = layout.stray_files().unwrap();
    assert_eq!(strays.len(), 1);
    assert_eq!(strays[0].kind, StrayKind::Other);
}

/// Another tool rewrote the index (pretty-printed, entries elsewhere in the text): the next
/// edit starts from a parse of what is there, keeps every entry, and writes it canonically.
#[test]
fn an_index_another_tool_rewrote_is_parsed_for_the_next_edit() {
    let (_tmp, layout) = new_layout();
    let image = small_image(&layout);
    layout.tag(&image.manifest, "v1").unwrap();
    layout.tag(&image.manifest, "v2").unwrap();
    let index = layout.root().join("index.json");
    let text = String::from_utf8(fs::read(&index).unwrap()).unwrap();
    let foreign: serde_json::Value = serde_json::from_str(&text).unwrap();
    let foreign = serde_json::to_string_pretty(&foreign).unwrap();
    assert_ne!(foreign.len(), text.len());
    fs::write(&index, &foreign).unwrap();
    layout.tag(&image.manifest, "v3").unwrap();
    layout.tag(&image.manifest, "v1").unwrap();
    let names: Vec<_> = ref_names(&layout).into_iter().flatten().collect();
    assert_eq!(names, ["v2", "v3", "v1"]);
    let written = fs::read(&index).unwrap();
    let parsed = oci_core::index::IndexDocument::parse(written.clone()).unwrap();
    assert_eq!(
        parsed.to_bytes(),
        written,
        "the index is as a parse writes it"
    );
    assert!(fsck(&layout).unwrap().findings.is_empty());
    assert!(layout.stray_files().unwrap().is_empty());
}
