//! skopeo and umoci read what the CLI writes, and the CLI reads what they write.
//!
//! These tests need `skopeo` and `umoci` on `PATH` (CI installs both). Without them a test
//! passes after printing `SKIPPED ...` on stderr; set `OCI_LAYOUT_REQUIRE_INTEROP=1` to make a
//! missing tool a failure instead.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::*;

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// `oci:DIR:REF`, as skopeo names a layout image.
fn oci_ref(dir: &Path, reference: &str) -> String {
    format!("oci:{}:{reference}", dir.display())
}

/// What [`build_image`] stored.
struct Built {
    manifest: String,
    manifest_bytes: Vec<u8>,
    config_bytes: Vec<u8>,
    layer: String,
}

const HELLO: &[u8] = b"hello from oci-layout\n";

/// A minimal real image made with the CLI only: a gzip tar layer made by `tar czf`, a config
/// naming arm64/linux and the layer's diff_id, a manifest referring to both, tagged `reference`.
fn build_image(layout: &Layout, reference: &str) -> Built {
    let work = layout.scratch();
    let rootfs = work.join("rootfs");
    fs::create_dir_all(&rootfs).unwrap();
    fs::write(rootfs.join("hello.txt"), HELLO).unwrap();
    let layer_path = work.join("layer.tar.gz");
    tool(
        "tar",
        &[
            os("czf"),
            layer_path.as_os_str(),
            os("-C"),
            rootfs.as_os_str(),
            os("."),
        ],
    );
    let tar_path = work.join("layer.tar");
    fs::write(
        &tar_path,
        tool("gzip", &[os("-dc"), layer_path.as_os_str()]),
    )
    .unwrap();
    let diff_id = external_digest("sha256", &tar_path).expect("sha256sum is needed");

    let put = |path: &Path, media_type: &str| -> Value {
        run(args![
            "blob",
            "put",
            layout.dir,
            path,
            "--json",
            "--media-type",
            media_type
        ])
        .success()
        .json()
    };
    let layer = put(&layer_path, OCI_LAYER_GZIP);
    assert_eq!(
        layer["size"],
        json!(fs::metadata(&layer_path).unwrap().len())
    );
    assert_eq!(
        layer["digest"],
        json!(external_digest("sha256", &layer_path).unwrap())
    );

    let config = json!({
        "architecture": "arm64",
        "os": "linux",
        "config": { "Cmd": ["/hello.txt"] },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created_by": "oci-layout interop test" }],
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_path = work.join("config.json");
    fs::write(&config_path, &config_bytes).unwrap();
    let config = put(&config_path, OCI_CONFIG);

    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [layer],
    });
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    let manifest_path = work.join("manifest.json");
    fs::write(&manifest_path, &manifest_bytes).unwrap();
    let manifest = put(&manifest_path, OCI_MANIFEST)["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    layout.tag(&manifest, reference);
    Built {
        manifest,
        manifest_bytes,
        config_bytes,
        layer: layer["digest"].as_str().unwrap().to_owned(),
    }
}

fn skopeo(args: &[&str]) -> Vec<u8> {
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    tool("skopeo", &args)
}

fn umoci(args: &[&OsStr]) -> Vec<u8> {
    tool("umoci", args)
}

#[test]
fn skopeo_reads_an_image_built_by_the_cli() {
    if !have(
        "interop::skopeo_reads_an_image_built_by_the_cli",
        &["skopeo"],
    ) {
        return;
    }
    let layout = Layout::new();
    let built = build_image(&layout, "v1.0");
    let image = oci_ref(&layout.dir, "v1.0");

    let raw = skopeo(&["inspect", "--raw", &image]);
    assert!(
        raw == built.manifest_bytes,
        "skopeo inspect --raw must return our manifest bytes exactly:\n{}",
        String::from_utf8_lossy(&raw)
    );
    let config = skopeo(&["inspect", "--config", "--raw", &image]);
    assert!(
        config == built.config_bytes,
        "skopeo inspect --config --raw"
    );

    let inspected: Value = serde_json::from_slice(&skopeo(&["inspect", &image])).unwrap();
    assert_eq!(inspected["Architecture"], "arm64", "{inspected}");
    assert_eq!(inspected["Os"], "linux", "{inspected}");
    assert_eq!(inspected["Digest"], json!(built.manifest), "{inspected}");
    assert_eq!(inspected["Layers"], json!([built.layer]), "{inspected}");

    // And our own listing agrees.
    let entry = &layout.entries_named("v1.0")[0];
    assert_eq!(
        entry["platform"],
        json!({ "architecture": "arm64", "os": "linux" })
    );
    assert_eq!(entry["size"], json!(built.manifest_bytes.len()));
}

#[test]
fn skopeo_copy_of_a_cli_image_is_listed_by_the_cli() {
    if !have(
        "interop::skopeo_copy_of_a_cli_image_is_listed_by_the_cli",
        &["skopeo"],
    ) {
        return;
    }
    let layout = Layout::new();
    let built = build_image(&layout, "v1");
    let copy = layout.tmp().join("copy");
    skopeo(&[
        "--insecure-policy",
        "copy",
        "--quiet",
        &oci_ref(&layout.dir, "v1"),
        &oci_ref(&copy, "v1"),
    ]);

    let listed = run(args!["ls", copy]).success().stdout_str();
    assert!(
        listed.lines().any(|l| l.starts_with("v1\t")),
        "ls of skopeo's copy does not list v1:\n{listed}"
    );
    let copied = Layout::copy_of(&copy);
    let entries = copied.entries_named("v1");
    assert_eq!(entries.len(), 1);
    // An OCI-to-OCI copy keeps the manifest as it is.
    assert_eq!(entries[0]["digest"], json!(built.manifest));
    assert_eq!(entries[0]["mediaType"], OCI_MANIFEST);

    // Every blob skopeo wrote verifies through the CLI.
    let blobs = copied.blobs();
    assert_eq!(blobs.len(), 3, "manifest, config, layer: {blobs:?}");
    for blob in blobs {
        run(args!["blob", "get", copy, blob["digest"].as_str().unwrap()]).success();
    }
    // The CLI can tag in skopeo's layout, and skopeo reads the result.
    run(args!["tag", copy, built.manifest, "again"]).success();
    let raw = skopeo(&["inspect", "--raw", &oci_ref(&copy, "again")]);
    assert!(raw == built.manifest_bytes);
}

#[test]
fn skopeo_copies_into_a_layout_made_by_the_cli() {
    if !have(
        "interop::skopeo_copies_into_a_layout_made_by_the_cli",
        &["skopeo"],
    ) {
        return;
    }
    let source = Layout::new();
    let built = build_image(&source, "src");
    let dest = Layout::new();
    let other = dest.image("amd64", "linux", "already-there");
    dest.tag(&other.digest, "mine");
    skopeo(&[
        "--insecure-policy",
        "copy",
        "--quiet",
        &oci_ref(&source.dir, "src"),
        &oci_ref(&dest.dir, "theirs"),
    ]);
    // skopeo added its entry to our index.json; both are listed.
    assert_eq!(dest.entries_named("mine")[0]["digest"], json!(other.digest));
    assert_eq!(
        dest.entries_named("theirs")[0]["digest"],
        json!(built.manifest)
    );
    assert_eq!(dest.ls().len(), 2);
}

#[test]
fn umoci_unpacks_an_image_built_by_the_cli() {
    if !have(
        "interop::umoci_unpacks_an_image_built_by_the_cli",
        &["umoci"],
    ) {
        return;
    }
    let layout = Layout::new();
    build_image(&layout, "v1");
    let listed =
        String::from_utf8(umoci(&[os("ls"), os("--layout"), layout.dir.as_os_str()])).unwrap();
    assert_eq!(listed.lines().collect::<Vec<_>>(), ["v1"]);

    let bundle = layout.tmp().join("bundle");
    let image = format!("{}:v1", layout.dir.display());
    umoci(&[
        os("unpack"),
        os("--rootless"),
        os("--image"),
        os(&image),
        bundle.as_os_str(),
    ]);
    assert_eq!(fs::read(bundle.join("rootfs/hello.txt")).unwrap(), HELLO);
}

/// A layout `umoci init` + `umoci new` made, as a directory in a fresh temporary directory.
fn umoci_layout(reference: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("umoci");
    umoci(&[os("init"), os("--layout"), dir.as_os_str()]);
    let image = format!("{}:{reference}", dir.display());
    umoci(&[os("new"), os("--image"), os(&image)]);
    (tmp, dir)
}

#[test]
fn a_umoci_layout_is_listed_by_the_cli() {
    if !have("interop::a_umoci_layout_is_listed_by_the_cli", &["umoci"]) {
        return;
    }
    let (_tmp, dir) = umoci_layout("base");
    let table = run(args!["ls", dir]).success().stdout_str();
    assert!(
        table.lines().any(|l| l.starts_with("base\t")),
        "ls does not list umoci's ref:\n{table}"
    );
    let listed = match run(args!["ls", dir, "--json"]).success().json() {
        Value::Array(entries) => entries,
        other => panic!("{other}"),
    };
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["ref"], "base");

    // The digest is index.json's, and the sha256 of the manifest skopeo reads.
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    assert_eq!(listed[0]["digest"], json!(digest));
    assert_eq!(listed[0]["mediaType"], OCI_MANIFEST);
    if which("skopeo").is_some() {
        let raw = skopeo(&["inspect", "--raw", &oci_ref(&dir, "base")]);
        let raw_path = dir.parent().unwrap().join("raw.json");
        fs::write(&raw_path, &raw).unwrap();
        assert_eq!(external_digest("sha256", &raw_path), Some(digest.clone()));
        assert_eq!(listed[0]["size"], json!(raw.len()));
    }

    // Every blob umoci wrote verifies through the CLI.
    for blob in match run(args!["blob", "ls", dir, "--json"]).success().json() {
        Value::Array(blobs) => blobs,
        other => panic!("{other}"),
    } {
        run(args!["blob", "get", dir, blob["digest"].as_str().unwrap()]).success();
    }
}

#[test]
fn the_cli_tags_in_a_umoci_layout_and_umoci_sees_it() {
    if !have(
        "interop::the_cli_tags_in_a_umoci_layout_and_umoci_sees_it",
        &["umoci"],
    ) {
        return;
    }
    let (_tmp, dir) = umoci_layout("base");
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    run(args!["tag", dir, digest, "from-cli"]).success();

    let listed = String::from_utf8(umoci(&[os("ls"), os("--layout"), dir.as_os_str()])).unwrap();
    let mut refs: Vec<&str> = listed.lines().collect();
    refs.sort_unstable();
    assert_eq!(refs, ["base", "from-cli"]);

    // The platform the CLI filled in is what umoci's config says.
    let manifest: Value =
        serde_json::from_slice(&run(args!["blob", "get", dir, digest]).success().stdout).unwrap();
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config: Value = serde_json::from_slice(
        &run(args!["blob", "get", dir, config_digest])
            .success()
            .stdout,
    )
    .unwrap();
    let out = run(args!["ls", dir, "--json"]).success().json();
    let entry = out
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["ref"] == "from-cli")
        .unwrap()
        .clone();
    assert_eq!(entry["platform"]["architecture"], config["architecture"]);
    assert_eq!(entry["platform"]["os"], config["os"]);
}
