//! Layouts built to break the integrity commands (`fsck`, `gc`, `referrers`, `attach`) and the
//! others with them: links out of the root, FIFOs and directories as blobs, an `index.json`
//! that is huge, deeply nested or not JSON, indexes that refer to themselves, absurd sizes.
//! Each gets one clear error line (or an fsck finding), no panic, no hang, and nothing read or
//! written outside the layout.
//!
//! The digest vectors against every command are in `errors.rs`, with the other commands.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::integrity::{fsck_json, write_index};
use crate::support::*;

/// Runs the binary, killing it if it has not finished after a minute: a command blocked on a
/// FIFO would otherwise hang the test run. The bound is a liveness guard, far above what any
/// of these commands needs; nothing asserts how long they take.
fn run_bounded(args: Vec<OsString>) -> Run {
    let child = command(&args)
        .stdin(Stdio::null())
        .spawn()
        .expect("cannot start oci-layout");
    let pid = child.id();
    let (done, finished) = mpsc::channel();
    let shown = show(&args);
    let waiter = std::thread::spawn(move || {
        let output = child.wait_with_output().unwrap();
        let _ = done.send(());
        output
    });
    if finished.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        panic!("`oci-layout {shown}` hung");
    }
    let output = waiter.join().unwrap();
    finish(args, &output)
}

/// A layout with one tagged image and an `outside` directory beside it, which no command may
/// change.
struct Scene {
    layout: Layout,
    image: Image,
    outside: PathBuf,
}

impl Scene {
    fn new(label: &str) -> Scene {
        let layout = Layout::new();
        let image = layout.image("amd64", "linux", label);
        layout.tag(&image.digest, "v1");
        let outside = layout.tmp().join("outside");
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("secret"), b"secret").unwrap();
        Scene {
            layout,
            image,
            outside,
        }
    }

    /// A file beside the layout, for `attach`.
    fn file(&self) -> PathBuf {
        let file = self.layout.scratch().join("attachment");
        fs::write(&file, b"attachment").unwrap();
        file
    }

    /// An archive of a small, clean layout, for `unpack` into this one.
    fn archive(&self) -> PathBuf {
        let other = Layout::new();
        let image = other.image("arm64", "linux", "incoming");
        other.tag(&image.digest, "incoming");
        let archive = self.layout.scratch().join("incoming.tar");
        run(args!["pack", other.dir, archive]).success();
        archive
    }

    /// Every command that reads `index.json`, each of which must fail on a broken one.
    fn index_commands(&self) -> Vec<Vec<OsString>> {
        let dir = &self.layout.dir;
        let digest = &self.image.digest;
        let mut commands = vec![
            args!["ls", dir],
            args!["ls", dir, "--json"],
            args!["tag", dir, digest, "v2"],
            args!["untag", dir, "v1"],
            args!["gc", dir],
            args!["gc", dir, "--dry-run", "--grace", "0s"],
            args!["referrers", dir, "v1"],
            args!["referrers", dir, digest],
            args!["attach", dir, digest, "--artifact-type", "a/b", self.file()],
            args!["pack", dir, self.layout.scratch().join("out.tar")],
            args!["unpack", self.archive(), dir],
        ];
        if has_command("inspect") {
            commands.push(args!["inspect", dir, "v1"]);
        }
        commands
    }

    fn outside_snapshot(&self) -> std::collections::BTreeMap<PathBuf, Option<Vec<u8>>> {
        snapshot(&self.outside)
    }
}

/// Whether the binary has a subcommand (`inspect` is being added alongside these tests).
fn has_command(name: &str) -> bool {
    run(args!["--help"])
        .success()
        .stdout_str()
        .lines()
        .any(|l| l.trim_start().starts_with(&format!("{name} ")))
}

/// `fsck` of a layout whose `index.json` is broken: exit 1, a finding about index.json.
fn check_fsck_reports_the_index(dir: &Path, needle: &str) {
    let (code, report) = fsck_json(dir);
    assert_eq!(code, 1);
    let findings = report["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(
            |f| f["subject"] == "index.json" && f["problem"].as_str().unwrap().contains(needle)
        ),
        "no index.json finding containing {needle:?}: {report:#}"
    );
}

/// Every index command fails with one line naming index.json and `needle`; fsck reports a
/// finding on index.json containing `finding`.
fn check_broken_index(scene: &Scene, content: &[u8], needle: &str, finding: &str) {
    check_broken_index_with(scene, scene.index_commands(), content, needle, finding);
}

fn check_broken_index_with(
    scene: &Scene,
    commands: Vec<Vec<OsString>>,
    content: &[u8],
    needle: &str,
    finding: &str,
) {
    fs::write(scene.layout.index_path(), content).unwrap();
    let before = scene.outside_snapshot();
    for a in commands {
        let failed = run_bounded(a).failure_naming(&["index.json", needle]);
        assert!(
            failed.stderr.len() < 2000,
            "the error quotes the index: {}",
            failed.stderr.len()
        );
    }
    check_fsck_reports_the_index(&scene.layout.dir, finding);
    assert!(
        fs::read(scene.layout.index_path()).unwrap() == content,
        "a failed command rewrote index.json"
    );
    assert!(!scene.layout.scratch().join("out.tar").exists());
    assert_eq!(scene.outside_snapshot(), before);
}

#[test]
fn an_index_json_that_is_not_json_fails_every_command_with_one_line() {
    let scene = Scene::new("not-json");
    check_broken_index(&scene, b"this is not JSON", "invalid JSON", "not JSON");
    check_broken_index(&scene, b"", "invalid JSON", "not JSON");
    check_broken_index(&scene, b"\xff\xfe{}", "invalid JSON", "not JSON");
    check_broken_index(
        &scene,
        b"[]",
        "invalid JSON",
        "does not parse as an image index",
    );
}

#[test]
fn an_index_json_nested_10000_deep_is_an_error_not_a_stack_overflow() {
    let scene = Scene::new("deep");
    // Index edits see at once that an array is not an index; readers recurse into it.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    check_broken_index(&scene, deep.as_bytes(), "invalid JSON", "recursion limit");
    // Deep inside an otherwise fine index, too.
    let nested = format!(
        r#"{{"schemaVersion":2,"manifests":[],"annotations":{{"x":{}1{}}}}}"#,
        r#"{"a":"#.repeat(10_000),
        "}".repeat(10_000)
    );
    check_broken_index(
        &scene,
        nested.as_bytes(),
        "recursion limit",
        "recursion limit",
    );
}

#[test]
fn an_index_json_of_100_mb_is_refused_with_one_line() {
    let scene = Scene::new("huge");
    // Valid JSON (the real index padded with whitespace) and hostile JSON that would parse
    // into gigabytes; both over the limit, both refused before parsing.
    let mut padded = scene.layout.index_bytes();
    padded.pop();
    padded.resize(100 << 20, b' ');
    padded.push(b'}');
    check_broken_index(&scene, &padded, "byte limit", "byte limit");
    let mut zeros = br#"{"schemaVersion":2,"manifests":["#.to_vec();
    while zeros.len() < 100 << 20 {
        zeros.extend_from_slice(b"0,");
    }
    zeros.extend_from_slice(b"0]}");
    check_broken_index(&scene, &zeros, "byte limit", "byte limit");
}

#[test]
fn descriptors_with_negative_or_absurd_sizes() {
    // In index.json: a negative or fractional size does not parse. Every command that reads
    // the entries says so; an edit (tag, untag, attach, unpack) reads only the entries it changes, and writes
    // the others back byte for byte (fsck still reports them).
    let scene = Scene::new("sizes");
    let mut index = scene.layout.index();
    let is_edit = |a: &Vec<OsString>| {
        ["tag", "untag", "attach", "unpack"]
            .iter()
            .any(|edit| a[0] == *edit)
    };
    for size in [json!(-1), json!(1.5), json!(1e30), json!("12")] {
        index["manifests"][0]["size"] = size.clone();
        let bytes = serde_json::to_vec(&index).unwrap();
        let (edits, reads): (Vec<_>, Vec<_>) =
            scene.index_commands().into_iter().partition(is_edit);
        check_broken_index_with(&scene, reads, &bytes, "invalid", "invalid");
        for a in edits {
            run(a.clone()).success();
            let after = scene.layout.index();
            let broken: Vec<&Value> = after["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["size"] == size)
                .collect();
            let untagged_v1 = a[0] == "untag";
            assert_eq!(
                broken.len(),
                usize::from(!untagged_v1),
                "{a:?} with size {size}"
            );
            fs::write(scene.layout.index_path(), &bytes).unwrap();
        }
    }

    // The largest u64 parses; fsck says it is not the blob's size, the rest works.
    let scene = Scene::new("absurd");
    let mut index = scene.layout.index();
    index["manifests"][0]["size"] = json!(u64::MAX);
    fs::write(
        scene.layout.index_path(),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let (code, report) = fsck_json(&scene.layout.dir);
    assert_eq!(code, 1);
    assert!(
        report["findings"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("descriptor says 18446744073709551615 bytes"),
        "{report:#}"
    );
    assert_eq!(scene.layout.ls()[0]["size"], json!(u64::MAX));
    run(args!["referrers", scene.layout.dir, "v1"]).success();
    run(args!["gc", scene.layout.dir, "--grace", "0s"]).success();
    assert!(
        scene.layout.blob_path(&scene.image.config).exists(),
        "still live"
    );
    // Retagging reads the size from the blob.
    scene.layout.tag(&scene.image.digest, "v1");
    assert_eq!(scene.layout.ls()[0]["size"], json!(scene.image.bytes.len()));

    // Inside a manifest: a layer of absurd size is an fsck finding, and not something gc or
    // pack trip over.
    let layout = Layout::new();
    let (config, _) = layout.put_json(&json!({"architecture": "amd64", "os": "linux"}), OCI_CONFIG);
    let layer = layout.put(b"layer");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer, "size": u64::MAX}],
    });
    let (manifest, _) = layout.put_json(&manifest, OCI_MANIFEST);
    layout.tag(manifest["digest"].as_str().unwrap(), "v1");
    let (code, report) = fsck_json(&layout.dir);
    assert_eq!(code, 1);
    assert_eq!(report["findings"][0]["subject"], json!(layer));
    run(args!["gc", layout.dir, "--grace", "0s"]).success();
    assert!(layout.blob_path(&layer).exists());
    run(args!["pack", layout.dir, layout.scratch().join("a.tar")]).success();
}

/// Two index blobs that list each other, and one that lists itself. Content addressing makes
/// such a cycle impossible for honest content, so these blobs do not hash to their names:
/// everything that reads them verifies, refuses them, and so never goes round the cycle.
fn cyclic(layout: &Layout) -> [String; 3] {
    let names: Vec<String> = ["cycle-a", "cycle-b", "self"]
        .iter()
        .map(|label| {
            oci_core::Algorithm::Sha256
                .digest(label.as_bytes())
                .to_string()
        })
        .collect();
    let index_listing = |child: &str| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_INDEX, "digest": child, "size": 200}],
            "subject": {"mediaType": OCI_INDEX, "digest": child, "size": 200},
        }))
        .unwrap()
    };
    fs::create_dir_all(layout.dir.join("blobs/sha256")).unwrap();
    fs::write(layout.blob_path(&names[0]), index_listing(&names[1])).unwrap();
    fs::write(layout.blob_path(&names[1]), index_listing(&names[0])).unwrap();
    fs::write(layout.blob_path(&names[2]), index_listing(&names[2])).unwrap();
    [names[0].clone(), names[1].clone(), names[2].clone()]
}

#[test]
fn indexes_that_refer_to_themselves_are_walked_once() {
    let layout = Layout::new();
    let [a, b, itself] = cyclic(&layout);
    let size = |d: &str| fs::metadata(layout.blob_path(d)).unwrap().len() as usize;
    write_index(
        &layout,
        &[
            json!({"mediaType": OCI_INDEX, "digest": a, "size": size(&a),
                   "annotations": {REF_NAME: "a"}}),
            json!({"mediaType": OCI_INDEX, "digest": itself, "size": size(&itself),
                   "annotations": {REF_NAME: "self"}}),
        ],
    );
    // fsck verifies before it follows: each tagged blob is one finding, and it ends.
    let (code, report) = fsck_json(&layout.dir);
    assert_eq!(code, 1);
    let subjects: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, [a.as_str(), itself.as_str()], "{report:#}");
    // gc's mark reads what it follows verified: a live index that is not what its name says
    // stops it, with one line naming it, before anything is swept.
    let stopped = run_bounded(args!["gc", layout.dir, "--grace", "0s"])
        .failure_naming(&["unexpected digest", "gc removes nothing"]);
    assert!(
        stopped.stderr.contains(a.as_str()) || stopped.stderr.contains(itself.as_str()),
        "{}",
        stopped.stderr
    );
    for d in [&a, &b, &itself] {
        assert!(layout.blob_path(d).exists(), "gc removed {d}");
    }
    // The referrers walk verifies too: it believes none of them, and ends.
    for reference in ["a", "self"] {
        let found = run_bounded(args!["referrers", layout.dir, reference, "--json"])
            .success()
            .json();
        assert_eq!(found, json!([]), "{reference}");
    }
    // Whatever verifies refuses them with one line.
    run_bounded(args!["pack", layout.dir, layout.scratch().join("x.tar")]).failure();
    run_bounded(args!["tag", layout.dir, a, "again"]).failure_naming(&["unexpected digest"]);
    run_bounded(args!["blob", "get", layout.dir, itself]).failure();
    assert!(!layout.scratch().join("x.tar").exists());
}

#[test]
fn a_blobs_directory_linked_out_of_the_root_is_refused_by_every_command() {
    let scene = Scene::new("blobs-link");
    let blobs = scene.layout.dir.join("blobs");
    // The outside holds a copy of every blob, so a command that followed the link would work.
    let copy = scene.outside.join("blobs");
    copy_dir(&blobs, &copy);
    fs::remove_dir_all(&blobs).unwrap();
    symlink(&copy, &blobs).unwrap();
    let before = scene.outside_snapshot();
    let index_before = scene.layout.index_bytes();
    let mut commands = scene.index_commands();
    commands.extend([
        args!["fsck", scene.layout.dir],
        args!["blob", "ls", scene.layout.dir],
        args!["blob", "get", scene.layout.dir, scene.image.digest],
    ]);
    for a in commands {
        run_bounded(a).failure_naming(&["blobs", "outside the layout root"]);
    }
    assert_eq!(
        scene.outside_snapshot(),
        before,
        "something changed outside"
    );
    assert_eq!(scene.layout.index_bytes(), index_before);
}

#[test]
fn an_algorithm_directory_linked_out_of_the_root_is_never_followed() {
    let scene = Scene::new("alg-link");
    let sha256 = scene.layout.dir.join("blobs/sha256");
    let copy = scene.outside.join("sha256");
    copy_dir(&sha256, &copy);
    fs::remove_dir_all(&sha256).unwrap();
    symlink(&copy, &sha256).unwrap();
    let before = scene.outside_snapshot();
    let dir = &scene.layout.dir;
    for a in [
        args!["fsck", dir],
        args!["gc", dir, "--grace", "0s"],
        args!["blob", "ls", dir],
        args!["pack", dir, scene.layout.scratch().join("out.tar")],
        args!["tag", dir, scene.image.digest, "v2"],
        args!["attach", dir, "v1", "--artifact-type", "a/b", scene.file()],
    ] {
        run_bounded(a).failure_naming(&["sha256", "outside the layout root"]);
    }
    // referrers reads manifests best-effort: it finds nothing rather than read outside.
    let found = run_bounded(args!["referrers", dir, scene.image.digest, "--json"])
        .success()
        .json();
    assert_eq!(found, json!([]));
    assert_eq!(
        scene.outside_snapshot(),
        before,
        "something changed outside"
    );
}

#[test]
fn a_cache_directory_linked_out_of_the_root_is_neither_read_nor_written() {
    let scene = Scene::new("cache-link");
    let file = scene.file();
    let attached = run(args![
        "attach",
        scene.layout.dir,
        "v1",
        "--artifact-type",
        "a/b",
        file
    ])
    .success()
    .line();
    // A forged cache outside that would answer with a referrer that does not exist.
    let forged = scene.outside.join("cache");
    fs::create_dir(&forged).unwrap();
    let index_digest = oci_core::Algorithm::Sha256.digest(&scene.layout.index_bytes());
    fs::write(
        forged.join("referrers.json"),
        serde_json::to_vec(&json!({
            "index_digest": index_digest.to_string(),
            "by_subject": { scene.image.digest.clone(): [{
                "digest": "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                "mediaType": OCI_MANIFEST, "artifactType": "forged", "size": 1, "annotations": {},
            }]},
        }))
        .unwrap(),
    )
    .unwrap();
    let cache = scene.layout.dir.join(".oci-layout-cache");
    let _ = fs::remove_dir_all(&cache);
    symlink(&forged, &cache).unwrap();
    let before = scene.outside_snapshot();
    let found = run(args!["referrers", scene.layout.dir, "v1", "--json"])
        .success()
        .json();
    assert_eq!(found.as_array().unwrap().len(), 1, "{found:#}");
    assert_eq!(
        found[0]["digest"],
        json!(attached),
        "the forged cache was read"
    );
    assert_eq!(
        scene.outside_snapshot(),
        before,
        "the cache was written outside"
    );
    // fsck reports it without entering it; gc leaves it alone.
    let (code, report) = fsck_json(&scene.layout.dir);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        report["findings"].as_array().unwrap().len(),
        1,
        "{report:#}"
    );
    assert_eq!(report["findings"][0]["severity"], "warning");
    assert!(
        report["findings"][0]["subject"]
            .as_str()
            .unwrap()
            .ends_with(".oci-layout-cache")
    );
    run(args!["gc", scene.layout.dir, "--grace", "0s"]).success();
    assert_eq!(scene.outside_snapshot(), before);
    assert!(
        fs::symlink_metadata(&cache)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

/// What the integrity commands do with a blob that is not a regular file, in both roles: as
/// the tagged image's layer (referenced) and as an unreferenced blob.
fn check_not_regular_blob(make: impl Fn(&Path), what: &str) {
    // Referenced: fsck reports the digest; gc keeps going (it needs no read of a layer).
    let scene = Scene::new(what);
    let manifest: Value = serde_json::from_slice(&scene.image.bytes).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let path = scene.layout.blob_path(&layer);
    fs::remove_file(&path).unwrap();
    make(&path);
    let before = scene.outside_snapshot();
    let (code, report) = fsck_json(&scene.layout.dir);
    assert_eq!(code, 1, "{what}");
    assert_eq!(
        report["findings"][0]["subject"],
        json!(layer),
        "{what}: {report:#}"
    );
    assert!(
        report["findings"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("not a regular file"),
        "{what}: {report:#}"
    );
    assert_eq!(
        report["findings"].as_array().unwrap().len(),
        1,
        "{report:#}"
    );
    run_bounded(args!["gc", scene.layout.dir, "--grace", "0s"]).success();
    run_bounded(args!["referrers", scene.layout.dir, "v1"]).success();
    // It is no blob: `blob ls` does not list it, and `pack` refuses to pack around it (a hole
    // no one asked for), naming it, and writes no archive.
    let listed = |store: &Path| -> Vec<String> {
        let run = run_bounded(args!["blob", "ls", store, "--json"]).success();
        run.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["digest"].as_str().unwrap().to_owned())
            .collect()
    };
    let in_layout = listed(&scene.layout.dir);
    assert!(!in_layout.contains(&layer), "{what}: {in_layout:?}");
    assert!(
        in_layout.contains(&scene.image.digest),
        "{what}: {in_layout:?}"
    );
    let archive = scene.layout.scratch().join("x.tar");
    let layer_hex = layer.split_once(':').unwrap().1;
    run_bounded(args!["pack", scene.layout.dir, archive]).failure_naming(&[layer_hex]);
    assert!(
        !archive.exists(),
        "{what}: a refused pack writes no archive"
    );

    // As the manifest a ref names: tag and attach refuse it, gc cannot follow it and stops.
    let target = scene.layout.blob_path(&scene.image.digest);
    fs::remove_file(&target).unwrap();
    make(&target);
    let encoded = scene.image.digest.split_once(':').unwrap().1;
    run_bounded(args!["tag", scene.layout.dir, scene.image.digest, "v2"])
        .failure_naming(&[encoded]);
    run_bounded(args![
        "attach",
        scene.layout.dir,
        "v1",
        "--artifact-type",
        "a/b",
        scene.file()
    ])
    .failure_naming(&[encoded]);
    run_bounded(args!["gc", scene.layout.dir, "--grace", "0s"]).failure_naming(&[encoded]);
    run_bounded(args!["referrers", scene.layout.dir, "v1"]).success();

    // Unreferenced (both of them now): no blobs, so gc leaves them (for a human to judge) and
    // collects the rest; fsck reports each as an error.
    run(args!["untag", scene.layout.dir, "v1"]).success();
    let (code, report) = fsck_json(&scene.layout.dir);
    assert_eq!(code, 1, "{what}: {report:#}");
    for path in [&path, &target] {
        assert!(
            report["findings"].as_array().unwrap().iter().any(|f| {
                f["severity"] == json!("error") && f["subject"] == json!(path.to_str().unwrap())
            }),
            "{what}: {report:#}"
        );
    }
    run_bounded(args!["gc", scene.layout.dir, "--grace", "0s"]).success();
    for path in [&path, &target] {
        assert!(
            fs::symlink_metadata(path).is_ok(),
            "{what}: still there for a human to judge"
        );
    }
    assert!(
        !scene.layout.blob_path(&scene.image.config).exists(),
        "{what}: gc collected the regular blobs"
    );
    assert_eq!(scene.outside_snapshot(), before, "{what}: outside changed");
}

#[test]
fn a_blob_that_is_a_symlink_out_of_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("elsewhere");
    check_not_regular_blob(
        |path| {
            // The target holds the very bytes the name promises (copied before replacing).
            fs::write(&target, b"anything").unwrap();
            symlink(&target, path).unwrap();
        },
        "symlink",
    );
    assert_eq!(
        fs::read(&target).unwrap(),
        b"anything",
        "the target was not touched"
    );
}

#[test]
fn a_blob_that_is_a_fifo() {
    check_not_regular_blob(
        |path| {
            tool("mkfifo", &[path.as_os_str()]);
        },
        "fifo",
    );
}

#[test]
fn a_blob_that_is_a_directory() {
    check_not_regular_blob(|path| fs::create_dir(path).unwrap(), "directory");
}

#[test]
fn a_manifest_nested_10000_deep_is_a_finding_and_an_error() {
    let layout = Layout::new();
    let deep = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","x":{}1{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let digest = layout.put(deep.as_bytes());
    write_index(
        &layout,
        &[
            json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": deep.len(),
                 "annotations": {REF_NAME: "v1"}}),
        ],
    );
    let (code, report) = fsck_json(&layout.dir);
    assert_eq!(code, 1);
    assert!(
        report["findings"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("recursion limit"),
        "{report:#}"
    );
    run(args!["tag", layout.dir, digest, "v2"]).failure_naming(&["recursion limit"]);
    run(args!["gc", layout.dir, "--grace", "0s"]).failure_naming(&["recursion limit"]);
    run(args!["referrers", layout.dir, "v1"]).success();
    run(args![
        "attach",
        layout.dir,
        "v1",
        "--artifact-type",
        "a/b",
        layout.index_path()
    ])
    .failure_naming(&["recursion limit"]);
}

// ---------------------------------------------------------------------------------------------
// Decompression bombs: bounded by what they cost (disk), not by a ratio honest data exceeds
// ---------------------------------------------------------------------------------------------

/// The original failure: a blob of zeros (a sparse disk image, say) packed with zstd goes
/// far past 2048:1, and our own archive was refused as a bomb by unpack, ls and fsck.
#[test]
fn our_own_zstd_pack_of_very_compressible_data_reads_and_unpacks() {
    const SIZE: usize = 128 << 20;
    let layout = Layout::new();
    let digest = layout.put(&vec![0u8; SIZE]);
    let archive = layout.scratch().join("zeros.tar.zst");
    run(args!["pack", layout.dir, archive, "--compress", "zstd"]).success();
    let packed = fs::metadata(&archive).unwrap().len();
    assert!(
        packed * 2048 < SIZE as u64,
        "{packed} bytes is not past 2048:1: the test shows nothing"
    );
    run(args!["ls", archive]).success();
    run(args!["fsck", archive]).success();
    run(args!["blob", "ls", archive]).success();
    let out = layout.scratch().join("out");
    run(args!["unpack", archive, out]).success();
    let (algorithm, encoded) = digest.split_once(':').unwrap();
    let unpacked = out.join("blobs").join(algorithm).join(encoded);
    assert_eq!(fs::metadata(unpacked).unwrap().len(), SIZE as u64);
}

/// A real bomb: a blob entry claiming 100 GiB, then 1 GiB of zeros as zstd RLE blocks (32 KiB
/// of archive), then the end of the stream. `unpack` refuses it at its header, before writing
/// anything; reading it in place stops when its temp file would eat into the reserve of the
/// filesystem it is on. Both onto a small tmpfs, which is left as empty as it was.
#[test]
fn a_zstd_bomb_is_refused_without_filling_the_disk() {
    let Some(small) = SmallFs::mount(32 << 20, "the bomb's filesystem") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("blobs/sha256/{}", "0".repeat(64));
    let bomb = zstd_rle_frame(&tar_header(&name, 100 << 30), 1 << 30);
    assert!(bomb.len() < 64 << 10, "{} bytes", bomb.len());
    let path = tmp.path().join("bomb.tar.zst");
    fs::write(&path, &bomb).unwrap();
    let empty = small.used();

    let out = small.dir.join("out");
    run_bounded(args!["unpack", path, out]).failure_naming(&["107374182400 bytes", "free"]);
    assert!(
        small.used() < empty + (1 << 20),
        "unpack wrote into the small filesystem"
    );

    for a in [args!["ls", path], args!["fsck", path]] {
        let mut listing = command(&a);
        listing.env("TMPDIR", &small.dir);
        let failed = finish(a, &listing.output().unwrap()).failure_naming(&["free"]);
        assert!(
            failed.stderr.contains(small.dir.to_str().unwrap()),
            "names where the temp file was: {}",
            failed.stderr
        );
    }
    assert!(small.used() < empty + (1 << 20));
}

/// `--max-size` bounds the time too: 64 MiB of an entry that is skipped is never written, but
/// is decompressed, and an absolute bound stops it.
#[test]
fn unpack_max_size_bounds_the_decompressed_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = zstd_rle_frame(&tar_header("junk", 64 << 20), 64 << 20);
    let path = tmp.path().join("junk.tar.zst");
    fs::write(&path, &junk).unwrap();
    let out = tmp.path().join("out");
    run(args!["unpack", path, out, "--max-size", "1M"])
        .failure_naming(&["junk.tar.zst", "over the 1048576 byte limit"]);
    run(args!["unpack", path, out, "--max-size", "many"]).usage_error();
}

// ---------------------------------------------------------------------------------------------
// Names from a crafted index cannot forge output lines
// ---------------------------------------------------------------------------------------------

/// Ref names, media types, platforms, artifact types and config fields with escape sequences
/// and line breaks: every human-readable printer escapes them (as fsck always did), so each
/// entry is one line and no ESC reaches the terminal.
#[test]
fn names_from_a_crafted_index_are_escaped_in_every_printer() {
    const FORGED_REF: &str = "v1\nsha256:0000\tforged\u{1b}[2K";
    let layout = Layout::new();
    let config = json!({
        "architecture": "amd64\u{1b}[31m",
        "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": [] },
        "config": { "Env": ["A=1\nforged: line"], "User": "\u{1b}]0;title\u{7}" },
    });
    let image = layout.image_with(&config, OCI_CONFIG, Some(OCI_MANIFEST));
    let size = image.bytes.len();
    write_index(
        &layout,
        &[
            json!({"mediaType": OCI_MANIFEST, "digest": image.digest, "size": size,
                   "annotations": {REF_NAME: FORGED_REF}}),
            json!({"mediaType": "application/vnd.oci.image.manifest.v1+json\n\u{1b}[1mx",
                   "digest": image.digest, "size": size,
                   "platform": {"os": "linux\nforged", "architecture": "amd64"}}),
        ],
    );
    run(args![
        "attach",
        layout.dir,
        image.digest,
        "--artifact-type",
        "application/vnd.x+json",
        layout.index_path()
    ])
    .success();
    let clean = |what: &str, out: &str, lines: usize| {
        assert!(
            !out.contains('\u{1b}') && !out.contains('\u{7}'),
            "{what}: {out:?}"
        );
        assert_eq!(out.lines().count(), lines, "{what}: {out:?}");
    };
    let listed = run(args!["ls", layout.dir]).success().stdout_str();
    clean("ls", &listed, 3);
    assert!(
        listed.contains("v1\\nsha256:0000\\tforged\\u{1b}[2K"),
        "{listed}"
    );
    assert!(listed.contains("linux\\nforged/amd64"), "{listed}");

    let shown = run(args!["inspect", layout.dir, image.digest])
        .success()
        .stdout_str();
    assert!(!shown.contains('\u{1b}'), "{shown:?}");
    assert!(shown.contains("A=1\\nforged: line"), "{shown}");
    assert!(!shown.lines().any(|l| l.starts_with("forged")), "{shown}");

    let referrers = run(args!["referrers", layout.dir, image.digest])
        .success()
        .stdout_str();
    clean("referrers", &referrers, 1);

    // fsck reports the invalid ref name, escaped (as it always was), on one line.
    let checked = run(args!["fsck", layout.dir]);
    let out = String::from_utf8(checked.stdout.clone()).unwrap();
    assert!(!out.contains('\u{1b}'), "{out:?}");
    assert!(
        out.contains("ref \"v1\\nsha256:0000\\tforged\\u{1b}[2K\""),
        "{out}"
    );
}

/// A stray file whose name holds an escape sequence: fsck and gc print it escaped.
#[test]
fn a_stray_file_name_with_escapes_is_printed_escaped() {
    let layout = Layout::new();
    let name = ".tmp-\u{1b}[2Kforged\nline";
    let dir = layout.dir.join("blobs").join("sha256");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), b"x").unwrap();
    let checked = run(args!["fsck", layout.dir]).success().stdout_str();
    assert!(!checked.contains('\u{1b}'), "{checked:?}");
    assert_eq!(checked.lines().count(), 2, "{checked:?}");
    let collected = run(args!["gc", layout.dir, "--grace", "0s"])
        .success()
        .stdout_str();
    assert!(!collected.contains('\u{1b}'), "{collected:?}");
    assert_eq!(collected.lines().count(), 2, "{collected:?}");
}

/// A FIFO under a digest's name that nothing refers to (the case gc used to fail on while
/// fsck said clean): fsck reports it as an error, gc skips it and succeeds.
#[test]
fn a_stray_fifo_under_a_digest_name_is_an_fsck_error_and_gc_skips_it() {
    let layout = Layout::new();
    let image = layout.image("amd64", "linux", "fifo-stray");
    layout.tag(&image.digest, "v1");
    let garbage = layout.put(b"garbage");
    let fifo = layout.blob_path(&format!("sha256:{}", "0".repeat(64)));
    tool("mkfifo", &[fifo.as_os_str()]);
    let (code, report) = fsck_json(&layout.dir);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        report["findings"][0]["subject"],
        json!(fifo.to_str().unwrap())
    );
    assert_eq!(report["findings"][0]["severity"], json!("error"));
    run_bounded(args!["gc", layout.dir, "--grace", "0s"]).success();
    assert!(!layout.blob_path(&garbage).exists(), "gc did its work");
    assert!(fs::symlink_metadata(&fifo).is_ok(), "the FIFO is left");
}
