//! `init` and `ls`.

use std::fs;

use serde_json::{Value, json};

use crate::support::*;

#[test]
fn init_creates_oci_layout_index_and_blobs_with_their_modes() {
    let layout = Layout::new();
    let oci_layout = layout.dir.join("oci-layout");
    let index = layout.index_path();
    assert_eq!(mode(&oci_layout), 0o444, "oci-layout must be 0444");
    assert_eq!(mode(&index), 0o644, "index.json must be 0644");
    assert!(
        layout.dir.join("blobs").is_dir(),
        "blobs/ must be a directory"
    );

    let version: Value = serde_json::from_slice(&fs::read(&oci_layout).unwrap()).unwrap();
    assert_eq!(version, json!({ "imageLayoutVersion": "1.0.0" }));
    let index = layout.index();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["manifests"], json!([]));

    assert!(layout.ls().is_empty());
    assert!(layout.blobs().is_empty());
    assert!(run(args!["ls", layout.dir]).success().stdout.is_empty());
}

#[test]
fn init_accepts_an_empty_directory_and_missing_parents() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    run(args!["init", empty]).success();
    assert!(empty.join("index.json").is_file());

    let nested = tmp.path().join("a/b/c");
    run(args!["init", nested]).success();
    assert!(nested.join("oci-layout").is_file());
    assert!(nested.join("blobs").is_dir());
    run(args!["ls", nested]).success();
}

#[test]
fn init_refuses_an_existing_layout_and_leaves_it_alone() {
    let layout = Layout::new();
    let image = layout.image("amd64", "linux", "init");
    layout.tag(&image.digest, "v1");
    let before = layout.snapshot();

    let dir = layout.dir.to_str().unwrap();
    run(args!["init", layout.dir]).failure_naming(&[dir]);
    assert_eq!(layout.snapshot(), before);
}

#[test]
fn init_refuses_a_path_under_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("file");
    fs::write(&file, b"not a directory").unwrap();
    run(args!["init", file.join("layout")]).failure_naming(&["file"]);
    assert_eq!(fs::read(&file).unwrap(), b"not a directory");
}

#[test]
fn ls_json_entries_have_ref_digest_media_type_size_platform() {
    let layout = Layout::new();
    let image = layout.image("arm64", "linux", "ls");
    layout.tag(&image.digest, "v1");
    let entries = layout.ls();
    assert_eq!(entries.len(), 1);
    let entry = entries[0].as_object().unwrap();
    let mut keys: Vec<&str> = entry.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["digest", "mediaType", "platform", "ref", "size"]);
    assert_eq!(entry["ref"], "v1");
    assert_eq!(entry["digest"], json!(image.digest));
    assert_eq!(entry["mediaType"], OCI_MANIFEST);
    assert_eq!(entry["size"], json!(image.bytes.len()));
    assert_eq!(
        entry["platform"],
        json!({ "architecture": "arm64", "os": "linux" })
    );
}

#[test]
fn ls_shows_untagged_entries_with_a_null_ref() {
    let layout = Layout::new();
    let image = layout.image("amd64", "linux", "untagged");
    // An index entry without a ref name, as other tools write them.
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": image.digest,
            "size": image.bytes.len(),
        }],
    });
    fs::write(layout.index_path(), serde_json::to_vec(&index).unwrap()).unwrap();

    let entries = layout.ls();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["ref"], Value::Null);
    assert_eq!(entries[0]["digest"], json!(image.digest));
    assert_eq!(entries[0]["platform"], Value::Null);

    let table = run(args!["ls", layout.dir]).success().stdout_str();
    let expected = format!(
        "-\t{}\t{OCI_MANIFEST}\t{}\t-\n",
        image.digest,
        image.bytes.len()
    );
    assert_eq!(table, expected);
}

#[test]
fn ls_table_has_one_line_per_entry() {
    let layout = Layout::new();
    let amd = layout.image("amd64", "linux", "table-1");
    let arm = layout.image("arm", "linux", "table-2");
    layout.tag(&amd.digest, "amd");
    layout.tag(&arm.digest, "arm");
    let table = run(args!["ls", layout.dir]).success().stdout_str();
    let expected = format!(
        "amd\t{}\t{OCI_MANIFEST}\t{}\tlinux/amd64\narm\t{}\t{OCI_MANIFEST}\t{}\tlinux/arm\n",
        amd.digest,
        amd.bytes.len(),
        arm.digest,
        arm.bytes.len()
    );
    assert_eq!(table, expected);
}

#[test]
fn ls_reads_a_null_manifests_list_as_empty() {
    let layout = Layout::new();
    fs::write(
        layout.index_path(),
        br#"{"schemaVersion":2,"manifests":null}"#,
    )
    .unwrap();
    assert!(layout.ls().is_empty());
}

#[test]
fn ls_of_something_that_is_not_a_layout_fails_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    run(args!["ls", missing]).failure_naming(&[missing.to_str().unwrap()]);
    run(args!["ls", missing, "--json"]).failure_naming(&["missing"]);

    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    run(args!["ls", empty]).failure_naming(&["empty"]);
}

#[test]
fn ls_of_a_broken_index_fails_naming_index_json() {
    let layout = Layout::new();
    for garbage in [
        &b""[..],
        b"{",
        b"[]",
        b"null",
        b"{\"schemaVersion\":2,\"manifests\":{}}",
        b"{\"schemaVersion\":2,\"manifests\":[{\"digest\":42}]}",
        b"\xff\xfe\x00",
    ] {
        fs::write(layout.index_path(), garbage).unwrap();
        run(args!["ls", layout.dir, "--json"]).failure_naming(&["index.json"]);
        run(args!["ls", layout.dir]).failure_naming(&["index.json"]);
    }

    // index.json that is a directory.
    fs::remove_file(layout.index_path()).unwrap();
    fs::create_dir(layout.index_path()).unwrap();
    run(args!["ls", layout.dir]).failure_naming(&["index.json"]);
}
