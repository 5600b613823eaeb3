//! `tag` and `untag`.

use std::fs;

use serde_json::{Value, json};

use crate::support::*;

/// The `index.json` entries named `reference`.
fn index_entries_named(layout: &Layout, reference: &str) -> Vec<Value> {
    layout.index()["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["annotations"][REF_NAME] == json!(reference))
        .cloned()
        .collect()
}

#[test]
fn tag_fills_the_descriptor_from_the_manifest_and_its_config() {
    let layout = Layout::new();
    let config = json!({
        "architecture": "arm64",
        "os": "linux",
        "variant": "v8",
        "rootfs": { "type": "layers", "diff_ids": [] },
    });
    let image = layout.image_with(&config, OCI_CONFIG, Some(OCI_MANIFEST));
    layout.tag(&image.digest, "v1");

    let entries = layout.ls();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0],
        json!({
            "ref": "v1",
            "digest": image.digest,
            "mediaType": OCI_MANIFEST,
            "size": image.bytes.len(),
            "platform": { "architecture": "arm64", "os": "linux", "variant": "v8" },
        })
    );

    // index.json itself, as the image-spec spells it.
    let index = layout.index();
    assert_eq!(index["schemaVersion"], 2);
    let entry = &index["manifests"][0];
    assert_eq!(entry["annotations"][REF_NAME], "v1");
    assert_eq!(entry["digest"], json!(image.digest));
    assert_eq!(entry["size"], json!(image.bytes.len()));
    assert_eq!(entry["mediaType"], OCI_MANIFEST);
    assert_eq!(entry["platform"]["architecture"], "arm64");
    assert_eq!(entry["platform"]["os"], "linux");
    assert_eq!(mode(&layout.index_path()), 0o644, "index.json stays 0644");

    let table = run(args!["ls", layout.dir]).success().stdout_str();
    assert_eq!(
        table,
        format!(
            "v1\t{}\t{OCI_MANIFEST}\t{}\tlinux/arm64/v8\n",
            image.digest,
            image.bytes.len()
        )
    );
}

#[test]
fn tag_reads_os_version_and_docker_media_types() {
    let layout = Layout::new();
    let config = json!({
        "architecture": "amd64",
        "os": "windows",
        "os.version": "10.0.17763.1234",
        "rootfs": { "type": "layers", "diff_ids": [] },
    });
    let image = layout.image_with(&config, DOCKER_CONFIG, Some(DOCKER_MANIFEST));
    layout.tag(&image.digest, "docker");
    let entry = &layout.ls()[0];
    assert_eq!(entry["mediaType"], DOCKER_MANIFEST);
    assert_eq!(entry["size"], json!(image.bytes.len()));
    assert_eq!(
        entry["platform"],
        json!({ "architecture": "amd64", "os": "windows", "os.version": "10.0.17763.1234" })
    );
}

#[test]
fn tag_without_a_platform_in_the_config_has_a_null_platform() {
    let layout = Layout::new();
    for (i, config) in [
        json!({}),
        json!({ "architecture": "amd64" }),
        json!({ "os": "linux" }),
        json!({ "architecture": "", "os": "linux" }),
    ]
    .iter()
    .enumerate()
    {
        let image = layout.image_with(config, OCI_CONFIG, Some(OCI_MANIFEST));
        let name = format!("c{i}");
        layout.tag(&image.digest, &name);
        let entry = &layout.entries_named(&name)[0];
        assert_eq!(entry["platform"], Value::Null, "config {config}");
        assert_eq!(entry["mediaType"], OCI_MANIFEST);
    }
    // A config of another media type (an artifact) is not read for a platform.
    let config = json!({ "architecture": "amd64", "os": "linux" });
    let image = layout.image_with(&config, "application/vnd.example.config+json", None);
    layout.tag(&image.digest, "artifact");
    assert_eq!(layout.entries_named("artifact")[0]["platform"], Value::Null);
}

#[test]
fn tag_infers_the_media_type_of_documents_without_one() {
    let layout = Layout::new();
    let config = json!({ "architecture": "s390x", "os": "linux" });
    let image = layout.image_with(&config, OCI_CONFIG, None);
    layout.tag(&image.digest, "manifest");
    let entry = &layout.entries_named("manifest")[0];
    assert_eq!(entry["mediaType"], OCI_MANIFEST);
    assert_eq!(entry["size"], json!(image.bytes.len()));

    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": image.digest,
            "size": image.bytes.len(),
            "platform": { "architecture": "s390x", "os": "linux" },
        }],
    });
    let (desc, bytes) = layout.put_json(&index, OCI_INDEX);
    layout.tag(desc["digest"].as_str().unwrap(), "index");
    let entry = &layout.entries_named("index")[0];
    assert_eq!(entry["mediaType"], OCI_INDEX);
    assert_eq!(entry["size"], json!(bytes.len()));
    assert_eq!(
        entry["platform"],
        Value::Null,
        "an index has no platform of its own"
    );
}

#[test]
fn tag_twice_leaves_one_entry_and_retagging_moves_the_ref() {
    let layout = Layout::new();
    let a = layout.image("amd64", "linux", "a");
    let b = layout.image("arm64", "linux", "b");
    layout.tag(&a.digest, "v1");
    layout.tag(&a.digest, "v1");
    assert_eq!(layout.ls().len(), 1);
    assert_eq!(index_entries_named(&layout, "v1").len(), 1);

    layout.tag(&b.digest, "v1");
    let entries = layout.ls();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["digest"], json!(b.digest));
    assert_eq!(entries[0]["platform"]["architecture"], "arm64");

    // Other refs are untouched.
    layout.tag(&a.digest, "v2");
    layout.tag(&b.digest, "v1");
    let entries = layout.ls();
    assert_eq!(entries.len(), 2);
    assert_eq!(layout.entries_named("v2")[0]["digest"], json!(a.digest));
}

#[test]
fn tag_accepts_every_valid_ref_name_vector() {
    let layout = Layout::new();
    let image = layout.image("amd64", "linux", "names");
    let valid: Vec<String> = vectors("refnames.json")
        .iter()
        .filter(|c| c["valid"] == json!(true))
        .map(|c| c["ref"].as_str().unwrap().to_owned())
        .collect();
    assert!(!valid.is_empty());
    for name in &valid {
        layout.tag(&image.digest, name);
        assert_eq!(index_entries_named(&layout, name).len(), 1, "{name:?}");
    }
    assert_eq!(layout.ls().len(), valid.len());
}

#[test]
fn tag_refuses_every_invalid_ref_name_vector_and_keeps_the_index() {
    let layout = Layout::new();
    let image = layout.image("amd64", "linux", "bad-names");
    layout.tag(&image.digest, "existing");
    let before = layout.index_bytes();
    let invalid: Vec<String> = vectors("refnames.json")
        .iter()
        .filter(|c| c["valid"] == json!(false))
        .map(|c| c["ref"].as_str().unwrap().to_owned())
        .chain([
            "../escape".to_owned(),
            "a/../b".to_owned(),
            format!("{}/", "x".repeat(100_000)),
        ])
        .collect();
    for name in &invalid {
        // Quoted as `{:?}` prints it; the empty name is passed as an empty argument, and `--`
        // lets names starting with `-` through clap to the ref-name check.
        let quoted = quoted_prefix(name, 40);
        let failed =
            run(args!["tag", layout.dir, image.digest, "--", name]).usage_error_naming(&[&quoted]);
        // A hostile name is shortened in the message, not echoed whole.
        assert!(
            failed.stderr.len() < 1024,
            "{} bytes of error",
            failed.stderr.len()
        );
        assert_eq!(
            layout.index_bytes(),
            before,
            "index.json changed for {name:?}"
        );
    }
}

#[test]
fn tag_of_a_blob_that_is_not_a_manifest_fails_and_keeps_the_index() {
    let layout = Layout::new();
    let image = layout.image("amd64", "linux", "keep");
    layout.tag(&image.digest, "v1");
    let before = layout.index_bytes();

    let not_json = layout.put(b"\x00\x01 not json");
    run(args!["tag", layout.dir, not_json, "v1"])
        .failure_naming(&[not_json.split_once(':').unwrap().1]);
    let (config, _) = layout.put_json(&json!({ "architecture": "amd64" }), OCI_CONFIG);
    let config = config["digest"].as_str().unwrap();
    run(args!["tag", layout.dir, config, "v2"]).failure_naming(&[config]);
    let (array, _) = layout.put_json(&json!([1, 2, 3]), "application/json");
    run(args![
        "tag",
        layout.dir,
        array["digest"].as_str().unwrap(),
        "v3"
    ])
    .failure();
    assert_eq!(layout.index_bytes(), before);
}

#[test]
fn tag_of_a_missing_or_corrupt_manifest_fails_naming_it() {
    let layout = Layout::new();
    let image = layout.image("amd64", "linux", "corrupt");
    let before = layout.index_bytes();
    let encoded = image.digest.split_once(':').unwrap().1.to_owned();

    // Missing manifest.
    let absent = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    run(args!["tag", layout.dir, absent, "v1"]).failure_naming(&["0000000000000000"]);

    // Corrupt manifest.
    let manifest = layout.blob_path(&image.digest);
    let original = fs::read(&manifest).unwrap();
    flip_byte(&manifest, 1);
    run(args!["tag", layout.dir, image.digest, "v1"]).failure_naming(&[&encoded]);
    fs::write(&manifest, &original).unwrap();

    // Corrupt config: the platform cannot be read, so nothing is tagged.
    let config = layout.blob_path(&image.config);
    flip_byte(&config, -2);
    run(args!["tag", layout.dir, image.digest, "v1"]).failure_naming(&[image
        .config
        .split_once(':')
        .unwrap()
        .1]);
    assert_eq!(layout.index_bytes(), before);
}

#[test]
fn tag_in_something_that_is_not_a_layout_fails_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let digest = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    let missing = tmp.path().join("nowhere");
    run(args!["tag", missing, digest, "v1"]).failure_naming(&["nowhere"]);
    run(args!["untag", missing, "v1"]).failure_naming(&["nowhere"]);
    assert!(!missing.exists());
}

#[test]
fn untag_removes_the_ref_and_an_absent_ref_is_fine() {
    let layout = Layout::new();
    let a = layout.image("amd64", "linux", "ua");
    let b = layout.image("arm64", "linux", "ub");
    layout.tag(&a.digest, "a");
    layout.tag(&b.digest, "b");

    run(args!["untag", layout.dir, "a"]).success();
    let entries = layout.ls();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["ref"], "b");
    // The blobs stay: untag only edits the index.
    assert!(layout.blob_path(&a.digest).exists());

    let before = layout.ls();
    run(args!["untag", layout.dir, "a"]).success();
    run(args!["untag", layout.dir, "never-existed"]).success();
    assert_eq!(layout.ls(), before);
    layout.index(); // still parses

    run(args!["untag", layout.dir, "b"]).success();
    assert!(layout.ls().is_empty());

    // An empty name is not "absent": it is not a name at all.
    run(args!["untag", layout.dir, ""]).usage_error_naming(&["invalid ref name"]);
}

#[test]
fn untag_removes_every_entry_with_that_name() {
    let layout = Layout::new();
    let a = layout.image("amd64", "linux", "dup-a");
    let b = layout.image("arm64", "linux", "dup-b");
    let entry = |image: &Image, name: &str| {
        json!({
            "mediaType": OCI_MANIFEST,
            "digest": image.digest,
            "size": image.bytes.len(),
            "annotations": { REF_NAME: name },
        })
    };
    // Two entries with one name, as some tools leave them.
    let index = json!({
        "schemaVersion": 2,
        "manifests": [entry(&a, "dup"), entry(&b, "dup"), entry(&a, "other")],
    });
    fs::write(layout.index_path(), serde_json::to_vec(&index).unwrap()).unwrap();
    assert_eq!(layout.entries_named("dup").len(), 2);
    run(args!["untag", layout.dir, "dup"]).success();
    let entries = layout.ls();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["ref"], "other");
}

// ---------------------------------------------------------------------------------------------
// blob rm of what a ref uses; inspect of an incomplete image
// ---------------------------------------------------------------------------------------------

#[test]
fn rm_refuses_a_blob_a_ref_uses_unless_forced() {
    let layout = Layout::new();
    let image = layout.image("amd64", "linux", "rm-used");
    layout.tag(&image.digest, "v1");
    layout.tag(&image.digest, "v2");
    let manifest: Value = serde_json::from_slice(&image.bytes).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let unused = layout.put(b"nobody uses this");
    let before = layout.snapshot();

    for used in [&layer, &image.config, &image.digest] {
        run(args!["blob", "rm", layout.dir, used]).failure_naming(&[
            used.as_str(),
            "\"v1\"",
            "\"v2\"",
            "--force",
        ]);
    }
    assert_eq!(layout.snapshot(), before, "a refused rm changed the layout");
    run(args!["blob", "rm", layout.dir, unused]).success();

    // An artifact attached to it: its blob is used by the untagged entry that records it.
    let attached = layout.scratch().join("sbom.json");
    fs::write(&attached, b"{\"sbom\":true}").unwrap();
    let artifact = run(args![
        "attach",
        layout.dir,
        "v1",
        "--artifact-type",
        "application/spdx+json",
        attached
    ])
    .success()
    .line();
    let sbom = run_stdin(args!["blob", "put", layout.dir], b"{\"sbom\":true}")
        .success()
        .line();
    run(args!["blob", "rm", layout.dir, sbom]).failure_naming(&["untagged entry", &artifact]);

    run(args!["blob", "rm", layout.dir, layer, "--force"]).success();
    assert!(!layout.blob_path(&layer).exists());
}

#[test]
fn inspect_of_an_image_with_a_missing_part_fails_after_showing_it() {
    let layout = Layout::new();
    let image = layout.image("amd64", "linux", "incomplete");
    layout.tag(&image.digest, "v1");
    let manifest: Value = serde_json::from_slice(&image.bytes).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    run(args!["inspect", layout.dir, "v1"]).success();

    fs::remove_file(layout.blob_path(&layer)).unwrap();
    for a in [
        args!["inspect", layout.dir, "v1"],
        args!["inspect", layout.dir, "v1", "--json"],
    ] {
        let shown = run(a).failure_naming(&[layer.as_str(), "incomplete"]);
        let out = String::from_utf8(shown.stdout.clone()).unwrap();
        assert!(out.contains(&layer), "the tree is still shown: {out}");
    }
    let shown = run(args!["inspect", layout.dir, "v1", "--json"]);
    let tree: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(tree["layers"][0]["missing"], json!(true), "{tree:#}");

    fs::remove_file(layout.blob_path(&image.config)).unwrap();
    run(args!["inspect", layout.dir, "v1"]).failure_naming(&[image.config.as_str()]);
    fs::remove_file(layout.blob_path(&image.digest)).unwrap();
    run(args!["inspect", layout.dir, image.digest]).failure();
}

/// An index that lists a platform whose manifest is not there (a partial export): listed as
/// absent, and no failure.
#[test]
fn inspect_of_an_index_with_an_absent_platform_succeeds() {
    let layout = Layout::new();
    let present = layout.image("amd64", "linux", "present");
    let absent = format!("sha256:{}", "1".repeat(64));
    let (index, _) = layout.put_json(
        &json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": present.digest, "size": present.bytes.len(),
                 "platform": {"os": "linux", "architecture": "amd64"}},
                {"mediaType": OCI_MANIFEST, "digest": absent, "size": 100,
                 "platform": {"os": "linux", "architecture": "arm64"}},
            ],
        }),
        OCI_INDEX,
    );
    layout.tag(index["digest"].as_str().unwrap(), "multi");
    let shown = run(args!["inspect", layout.dir, "multi"])
        .success()
        .stdout_str();
    assert!(shown.contains(&format!("missing {absent}")), "{shown}");
}
