//! `fsck`, `gc`, `attach` and `referrers`: the corpus findings exactly as its README states
//! them, synthetic breakage, what gc keeps and removes, and the referrers cache.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// fsck
// ---------------------------------------------------------------------------------------------

/// One expected finding: severity, subject, and a part of the problem text.
type Expect<'a> = (&'a str, &'a str, &'a str);

const fn error<'a>(subject: &'a str, problem: &'a str) -> Expect<'a> {
    ("error", subject, problem)
}

const fn warning<'a>(subject: &'a str, problem: &'a str) -> Expect<'a> {
    ("warning", subject, problem)
}

const PARTIAL: &str = "missing manifest listed by an index (a partial export?)";

/// Every layout and archive of the corpus with the findings its README row implies, and no
/// others. A fixture missing from this table fails `fsck_findings_match_the_corpus_readme`.
const FSCK_TABLE: &[(&str, &[Expect<'static>])] = &[
    ("layouts/ggcr-test_index", &[]),
    ("layouts/ggcr-test_index_one_image", &[]),
    // Helm config media type, `application/tar+gzip` layer: unknown types are no finding.
    ("layouts/ggcr-test_index_media_type", &[]),
    // The unreferenced blob is gc's business, not corruption.
    ("layouts/ggcr-test_gc_index", &[]),
    (
        "layouts/ggcr-test_gc_image_unknown_mediatype",
        &[
            error("blobs/", "missing"),
            error(
                "sha256:32589985702551b6c56033bb3334432a0a513bf9d6aceda0f67c42b003850720",
                "missing blob",
            ),
        ],
    ),
    ("layouts/regclient-testrepo", &[]),
    // Clean; its fallback tag is the referrers index of a subject that is not in this
    // repository, which is worth a warning and no more.
    (
        "layouts/regclient-external",
        &[warning(
            "sha256:dfae8f425735a5e3a72e40d6609e03079995511d48157c74d54801ff4430491e",
            "missing subject of a referrer",
        )],
    ),
    (
        "layouts/containers-image-delete_image_two_identical_references",
        &[],
    ),
    (
        "layouts/containers-image-delete_image_multiple_images",
        &[error(
            "sha256:913cf3a39d377faf89ed388ad913a318a390488c9f34c46e43424795cdabffe8",
            "size mismatch: descriptor says 585 bytes, blob has 584",
        )],
    ),
    (
        "layouts/containers-image-delete_image_only_one_image",
        &[error(
            "sha256:a527179158cd5cebc11c152b8637b47ce96c838ba2aa0de66d14f45cedc11423",
            "size mismatch: descriptor says 585 bytes, blob has 740",
        )],
    ),
    (
        "layouts/containers-image-name_lookups",
        &[
            error("oci-layout", "missing"),
            error("blobs/", "missing"),
            error(
                "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "missing blob",
            ),
            error(
                "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                "missing blob",
            ),
            error(
                "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
                "missing blob",
            ),
            error(
                "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
                "missing blob",
            ),
            // The entry with media type `x-completely-unknown`: missing, not unknown.
            error(
                "sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
                "missing blob",
            ),
        ],
    ),
    (
        "archives/docker-save-v25-hello-world.tar",
        &[error("index.json", "\"manifests\" is null")],
    ),
    // Only the amd64 manifest of the multi-platform list was exported: warnings, exit 0.
    (
        "archives/ctr-export-hello-world.tar",
        &[
            warning(
                "sha256:7b8b7289d0536a08eabdf71c20246e23f7116641db7e1d278592236ea4dcb30c",
                PARTIAL,
            ),
            warning(
                "sha256:f130bd2d67e6e9280ac6d0a6c83857bfaf70234e8ef4236876eccfbd30973b1c",
                PARTIAL,
            ),
            warning(
                "sha256:432f982638b3aefab73cc58ab28f5c16e96fdb504e8c134fc58dff4bae8bf338",
                PARTIAL,
            ),
            warning(
                "sha256:995efde2e81b21d1ea7066aa77a59298a62a9e9fbb4b77f36c189774ec9b1089",
                PARTIAL,
            ),
            warning(
                "sha256:eb11b1a194ff8e236a01eff392c4e1296a53b0fb4780d8b0382f7996a15d5392",
                PARTIAL,
            ),
            warning(
                "sha256:b836bb24a270b9cc935962d8228517fde0f16990e88893d935efcb1b14c0017a",
                PARTIAL,
            ),
            warning(
                "sha256:98c9722322be649df94780d3fbe594fce7996234b259f27eac9428b84050c849",
                PARTIAL,
            ),
            warning(
                "sha256:c7b6944911848ce39b44ed660d95fb54d69bbd531de724c7ce6fc9f743c0b861",
                PARTIAL,
            ),
            warning(
                "sha256:fb353688bcf45fc724fde3d1dcd7935ddf56803e2b7027164a7acc28758002f6",
                PARTIAL,
            ),
            warning(
                "sha256:c597fadc51747a7392f4d0312e9740aaee11793a47658a77a4ba51bd5d9b6be0",
                PARTIAL,
            ),
        ],
    ),
    ("archives/skopeo-1.9-oci-archive.tar", &[]),
];

/// `fsck --json`: exit code and report. Findings go to stdout; stderr stays empty either way.
pub fn fsck_json(path: &Path) -> (i32, Value) {
    let run = run(args!["fsck", path, "--json"]);
    assert!(
        run.stderr.is_empty(),
        "fsck wrote to stderr: {}",
        run.stderr
    );
    assert!(run.code == 0 || run.code == 1, "fsck exited {}", run.code);
    let report = run.json();
    check_report_shape(&report);
    assert_eq!(
        report["clean"],
        json!(run.code == 0),
        "exit code and `clean` disagree: {report:#}"
    );
    (run.code, report)
}

/// The `--json` report: exactly these keys, findings exactly `severity`, `subject`, `problem`.
fn check_report_shape(report: &Value) {
    let keys: BTreeSet<&str> = report
        .as_object()
        .expect("the report is an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["blobsChecked", "bytesChecked", "clean", "findings"]),
        "{report:#}"
    );
    assert!(report["clean"].is_boolean());
    assert!(report["blobsChecked"].is_u64());
    assert!(report["bytesChecked"].is_u64());
    for finding in report["findings"].as_array().expect("findings is an array") {
        let keys: BTreeSet<&str> = finding
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, BTreeSet::from(["problem", "severity", "subject"]));
        assert!(matches!(
            finding["severity"].as_str(),
            Some("error" | "warning")
        ));
        assert!(!finding["subject"].as_str().unwrap().is_empty());
        assert!(!finding["problem"].as_str().unwrap().is_empty());
    }
}

/// The findings of a report as (severity, subject, problem).
fn findings(report: &Value) -> Vec<(String, String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let text = |k: &str| f[k].as_str().unwrap().to_owned();
            (text("severity"), text("subject"), text("problem"))
        })
        .collect()
}

/// The findings are exactly `expected`, in any order: same count, each matched once.
fn check_findings(label: &str, report: &Value, expected: &[Expect<'_>]) {
    let mut actual = findings(report);
    let mut unmatched = Vec::new();
    for &(severity, subject, problem) in expected {
        match actual
            .iter()
            .position(|(s, sub, p)| s == severity && sub == subject && p.contains(problem))
        {
            Some(i) => {
                actual.remove(i);
            }
            None => unmatched.push(format!("{severity}: {subject}: ...{problem}...")),
        }
    }
    assert!(
        unmatched.is_empty() && actual.is_empty(),
        "{label}: findings differ\n expected but not found: {unmatched:#?}\n found but not expected: {actual:#?}"
    );
}

/// fsck of `path`, which must find exactly `expected`, exiting 1 exactly when one is an error.
fn check_fsck(path: &Path, expected: &[Expect<'_>]) -> Value {
    let (code, report) = fsck_json(path);
    check_findings(&path.display().to_string(), &report, expected);
    let errors = expected.iter().any(|(s, ..)| *s == "error");
    assert_eq!(code, i32::from(errors), "{}: exit code", path.display());
    report
}

#[test]
fn fsck_findings_match_the_corpus_readme() {
    let root = corpus();
    let mut on_disk = BTreeSet::new();
    for dir in ["layouts", "archives"] {
        for name in names_in(&root.join(dir)) {
            on_disk.insert(format!("{dir}/{name}"));
        }
    }
    let listed: BTreeSet<String> = FSCK_TABLE.iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(
        on_disk, listed,
        "every corpus fixture needs a row in FSCK_TABLE, and every row a fixture"
    );
    for (name, expected) in FSCK_TABLE {
        let report = check_fsck(&root.join(name), expected);
        if expected.is_empty() {
            assert!(
                report["blobsChecked"].as_u64().unwrap() > 0,
                "{name}: a clean fixture has blobs to verify"
            );
        }
    }
    // The README's counts where it gives them: every blob of regclient-testrepo is reachable
    // and verified.
    let (_, report) = fsck_json(&root.join("layouts/regclient-testrepo"));
    assert_eq!(report["blobsChecked"], 91);
}

#[test]
fn fsck_text_output_has_one_line_per_finding_and_a_summary() {
    let root = corpus().join("layouts");
    let broken = run(args![
        "fsck",
        root.join("containers-image-delete_image_only_one_image")
    ]);
    assert_eq!(broken.code, 1);
    assert!(broken.stderr.is_empty(), "{}", broken.stderr);
    let out = broken.stdout_str();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        lines[0],
        "error: sha256:a527179158cd5cebc11c152b8637b47ce96c838ba2aa0de66d14f45cedc11423: \
         size mismatch: descriptor says 585 bytes, blob has 740"
    );
    assert!(
        lines[1].ends_with("3 blobs (1249 bytes) verified, 1 errors, 0 warnings"),
        "{}",
        lines[1]
    );

    let clean = run(args!["fsck", root.join("ggcr-test_index")]).success();
    let out = clean.stdout_str();
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("0 errors, 0 warnings"), "{out}");

    let warned = run(args!["fsck", root.join("regclient-external")]).success();
    assert!(warned.stdout_str().starts_with("warning: sha256:dfae8f"));
}

#[test]
fn fsck_of_a_fresh_layout_and_of_what_the_cli_writes_is_clean() {
    let layout = Layout::new();
    check_fsck(&layout.dir, &[]);
    let image = layout.image("amd64", "linux", "fsck");
    layout.tag(&image.digest, "v1");
    let file = layout.scratch().join("sbom.json");
    fs::write(&file, b"{\"sbom\":true}").unwrap();
    run(args![
        "attach",
        layout.dir,
        "v1",
        "--artifact-type",
        "application/spdx+json",
        file
    ])
    .success();
    let report = check_fsck(&layout.dir, &[]);
    // Manifest, config, layer; artifact manifest, its empty config and its one layer.
    assert_eq!(report["blobsChecked"], 6);
    let archive = layout.scratch().join("packed.tar");
    run(args!["pack", layout.dir, archive]).success();
    check_fsck(&archive, &[]);
}

/// A layout with one tagged image, for the synthetic cases.
fn tagged_layout(label: &str) -> (Layout, Image) {
    let layout = Layout::new();
    let image = layout.image("amd64", "linux", label);
    layout.tag(&image.digest, "v1");
    (layout, image)
}

/// The digest of the one layer of an image made by `Layout::image`.
fn layer_of(image: &Image) -> String {
    let manifest: Value = serde_json::from_slice(&image.bytes).unwrap();
    manifest["layers"][0]["digest"].as_str().unwrap().to_owned()
}

#[test]
fn fsck_finds_a_blob_whose_content_is_not_its_digest() {
    let (layout, image) = tagged_layout("wrong-digest");
    let layer = layer_of(&image);
    flip_byte(&layout.blob_path(&layer), 0);
    let report = check_fsck(&layout.dir, &[error(&layer, "content hashes to sha256:")]);
    // The subject names the digest; the problem names what it hashes to instead.
    let problem = findings(&report)[0].2.clone();
    assert!(!problem.contains(&layer), "{problem}");
}

#[test]
fn fsck_finds_missing_and_truncated_blobs_and_broken_manifests() {
    let (layout, image) = tagged_layout("missing");
    let layer = layer_of(&image);
    fs::remove_file(layout.blob_path(&layer)).unwrap();
    check_fsck(&layout.dir, &[error(&layer, "missing blob")]);

    // Truncated: the content no longer hashes to its name, which is what fsck says.
    let (layout, image) = tagged_layout("truncated");
    let config = layout.blob_path(&image.config);
    let bytes = fs::read(&config).unwrap();
    fs::write(&config, &bytes[..bytes.len() - 1]).unwrap();
    check_fsck(&layout.dir, &[error(&image.config, "content hashes to")]);

    // Intact content under a descriptor with the wrong size (as in the corpus).
    let (layout, image) = tagged_layout("wrong-size");
    let mut index = layout.index();
    index["manifests"][0]["size"] = json!(image.bytes.len() + 1);
    fs::write(layout.index_path(), serde_json::to_vec(&index).unwrap()).unwrap();
    let problem = format!(
        "size mismatch: descriptor says {} bytes, blob has {}",
        image.bytes.len() + 1,
        image.bytes.len()
    );
    check_fsck(&layout.dir, &[error(&image.digest, &problem)]);

    // A manifest that is JSON but not an image manifest (no config), tagged by editing the
    // index by hand, the way another tool might have.
    let layout = Layout::new();
    let (bogus, bytes) = layout.put_json(
        &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}),
        OCI_MANIFEST,
    );
    write_index(
        &layout,
        &[entry(&bogus, bytes.len(), OCI_MANIFEST, Some("v1"))],
    );
    let digest = bogus["digest"].as_str().unwrap();
    check_fsck(
        &layout.dir,
        &[error(digest, &format!("does not parse as {OCI_MANIFEST}"))],
    );
}

#[test]
fn fsck_reports_invalid_ref_names() {
    let (layout, image) = tagged_layout("ref-names");
    let size = image.bytes.len();
    write_index(
        &layout,
        &[
            entry(
                &json!({"digest": image.digest}),
                size,
                OCI_MANIFEST,
                Some("v1"),
            ),
            entry(
                &json!({"digest": image.digest}),
                size,
                OCI_MANIFEST,
                Some("bad ref!"),
            ),
            entry(
                &json!({"digest": image.digest}),
                size,
                OCI_MANIFEST,
                Some("../up"),
            ),
        ],
    );
    check_fsck(
        &layout.dir,
        &[
            error("ref \"bad ref!\"", "invalid ref name"),
            error("ref \"../up\"", "invalid ref name"),
        ],
    );
}

#[test]
fn fsck_warns_about_temp_files_and_errs_on_names_that_are_not_digests() {
    let (layout, image) = tagged_layout("strays");
    // fsck names stray files by their canonical path.
    let root = fs::canonicalize(&layout.dir).unwrap();
    let root_temp = root.join(".tmp-index-1234");
    let blob_temp = root.join("blobs/sha256/.tmp-blob-5678");
    fs::write(&root_temp, b"half an index").unwrap();
    fs::write(&blob_temp, b"half a blob").unwrap();
    let (root_temp_name, blob_temp_name) = (
        root_temp.display().to_string(),
        blob_temp.display().to_string(),
    );
    check_fsck(
        &layout.dir,
        &[
            warning(&root_temp_name, "leftover temp file"),
            warning(&blob_temp_name, "leftover temp file"),
        ],
    );

    // Names that are not digests: plain junk, and a digest in uppercase hex (a path is only
    // ever built from a parsed, lowercase digest, so this is not that blob).
    let junk = root.join("blobs/sha256/not-a-digest");
    fs::write(&junk, b"junk").unwrap();
    let encoded = image.digest.split_once(':').unwrap().1;
    let upper = root.join("blobs/sha256").join(encoded.to_uppercase());
    fs::copy(layout.blob_path(&image.digest), &upper).unwrap();
    check_fsck(
        &layout.dir,
        &[
            warning(&root_temp_name, "leftover temp file"),
            warning(&blob_temp_name, "leftover temp file"),
            error(&junk.display().to_string(), "not a valid digest"),
            error(&upper.display().to_string(), "not a valid digest"),
        ],
    );
}

#[test]
fn fsck_does_not_treat_unknown_media_types_as_errors() {
    let layout = Layout::new();
    let (config, _) = layout.put_json(
        &json!({"chart": "x"}),
        "application/vnd.cncf.helm.config.v1+json",
    );
    let layer = layout.put(b"unknown layer");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [
            {"mediaType": "application/tar+gzip", "digest": layer, "size": 13},
            {"mediaType": "x-completely-unknown", "digest": layer, "size": 13},
        ],
    });
    let (manifest, bytes) = layout.put_json(&manifest, OCI_MANIFEST);
    let blob = layout.put(b"an entry of a type nobody knows");
    write_index(
        &layout,
        &[
            entry(&manifest, bytes.len(), OCI_MANIFEST, Some("chart")),
            entry(
                &json!({"digest": blob}),
                31,
                "x-completely-unknown",
                Some("odd"),
            ),
        ],
    );
    check_fsck(&layout.dir, &[]);
}

#[test]
fn fsck_checks_the_oci_layout_file_and_the_index_header() {
    let layout = Layout::new();
    let marker = layout.dir.join("oci-layout");
    fs::remove_file(&marker).unwrap();
    fs::write(&marker, br#"{"imageLayoutVersion":"2.0.0"}"#).unwrap();
    check_fsck(
        &layout.dir,
        &[error(
            "oci-layout",
            "imageLayoutVersion is \"2.0.0\", not \"1.0.0\"",
        )],
    );
    fs::write(&marker, b"not json").unwrap();
    check_fsck(&layout.dir, &[error("oci-layout", "invalid JSON")]);
    fs::remove_file(&marker).unwrap();
    check_fsck(&layout.dir, &[error("oci-layout", "missing")]);
    fs::write(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    check_fsck(&layout.dir, &[]);

    fs::write(
        layout.index_path(),
        br#"{"schemaVersion":3,"manifests":[]}"#,
    )
    .unwrap();
    check_fsck(
        &layout.dir,
        &[error("index.json", "schemaVersion is Some(3), not 2")],
    );
    fs::write(
        layout.index_path(),
        br#"{"schemaVersion":2,"manifests":{}}"#,
    )
    .unwrap();
    let (code, report) = fsck_json(&layout.dir);
    assert_eq!(code, 1);
    assert!(
        findings(&report)
            .iter()
            .all(|(s, sub, _)| s == "error" && sub == "index.json")
    );
    assert!(
        findings(&report)[0]
            .2
            .contains("\"manifests\" is not an array")
    );
    fs::write(layout.index_path(), b"[1, 2").unwrap();
    check_fsck(&layout.dir, &[error("index.json", "not JSON")]);
    fs::remove_file(layout.index_path()).unwrap();
    // Without index.json the directory is no layout at all: one error line, exit 1.
    run(args!["fsck", layout.dir]).failure_naming(&["index.json"]);
}

/// An index entry for a stored blob, written by hand the way another tool might.
fn entry(descriptor: &Value, size: usize, media_type: &str, name: Option<&str>) -> Value {
    let mut entry = json!({
        "mediaType": media_type,
        "digest": descriptor["digest"],
        "size": size,
    });
    if let Some(name) = name {
        entry["annotations"] = json!({ REF_NAME: name });
    }
    entry
}

/// Replaces `index.json` with these entries.
pub fn write_index(layout: &Layout, entries: &[Value]) {
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries});
    fs::write(layout.index_path(), serde_json::to_vec(&index).unwrap()).unwrap();
}

// ---------------------------------------------------------------------------------------------
// gc
// ---------------------------------------------------------------------------------------------

const GC_GARBAGE: &str = "sha256:492b89b9dd3cda4596f94916d17f6901455fb8bd7f4c5a2a90df8d39c90f48a0";

fn blob_set(layout: &Layout) -> BTreeSet<String> {
    layout
        .blobs()
        .iter()
        .map(|b| b["digest"].as_str().unwrap().to_owned())
        .collect()
}

/// Sets the modification time of `path` to `age` ago.
pub fn age(path: &Path, age: Duration) {
    let when = SystemTime::now() - age;
    File::options()
        .write(true)
        .open(path)
        .or_else(|_| File::open(path))
        .unwrap()
        .set_modified(when)
        .unwrap();
}

const TWO_HOURS: Duration = Duration::from_secs(2 * 3600);

#[test]
fn gc_removes_exactly_the_unreferenced_blob_of_ggcr_test_gc_index() {
    let layout = Layout::copy_of(&corpus().join("layouts/ggcr-test_gc_index"));
    let before = blob_set(&layout);
    assert!(before.contains(GC_GARBAGE));
    let out = run(args!["gc", layout.dir, "--grace", "0s"])
        .success()
        .stdout_str();
    assert_eq!(
        out,
        format!(
            "removed {GC_GARBAGE} (114 bytes)\n\
             5 blobs live, 1 removed (114 bytes), 0 unreferenced but younger than 0s\n"
        )
    );
    let after = blob_set(&layout);
    assert_eq!(
        before.difference(&after).collect::<Vec<_>>(),
        [GC_GARBAGE],
        "exactly that blob goes"
    );
    assert!(after.is_subset(&before));
    check_fsck(&layout.dir, &[]);
    // Nothing left to collect.
    let again = run(args!["gc", layout.dir, "--grace", "0s"])
        .success()
        .stdout_str();
    assert_eq!(
        again,
        "5 blobs live, 0 removed (0 bytes), 0 unreferenced but younger than 0s\n"
    );
}

#[test]
fn gc_leaves_every_clean_corpus_layout_readable() {
    // gc never breaks a clean layout: after it, fsck still finds what it found before.
    for (name, expected) in FSCK_TABLE {
        let Some(folder) = name.strip_prefix("layouts/") else {
            continue;
        };
        if expected.iter().any(|(s, ..)| *s == "error") {
            continue;
        }
        let layout = Layout::copy_of(&corpus().join(name));
        run(args!["gc", layout.dir, "--grace", "0s"]).success();
        check_fsck(&layout.dir, expected);
        let removed = blob_set(&Layout::copy_of(&corpus().join(name)))
            .difference(&blob_set(&layout))
            .cloned()
            .collect::<Vec<_>>();
        // ggcr-test_index: the children of entry "2", a manifest filed under a descriptor
        // media type, stay too: gc follows any JSON document.
        let expected: &[&str] = if folder == "ggcr-test_gc_index" {
            &[GC_GARBAGE]
        } else {
            &[]
        };
        assert_eq!(removed, expected, "{folder}");
    }
}

#[test]
fn gc_dry_run_changes_nothing() {
    let layout = Layout::copy_of(&corpus().join("layouts/ggcr-test_gc_index"));
    fs::write(layout.dir.join(".tmp-stale"), b"x").unwrap();
    age(&layout.dir.join(".tmp-stale"), TWO_HOURS);
    let before = layout.snapshot();
    let out = run(args!["gc", layout.dir, "--dry-run", "--grace", "0s"])
        .success()
        .stdout_str();
    assert!(
        out.contains(&format!("would remove {GC_GARBAGE} (114 bytes)")),
        "{out}"
    );
    assert!(out.contains(".tmp-stale"), "{out}");
    assert!(out.contains("1 would remove (114 bytes)"), "{out}");
    assert_eq!(layout.snapshot(), before, "a dry run changed the layout");
}

#[test]
fn gc_with_the_default_grace_keeps_young_unreferenced_blobs() {
    let layout = Layout::copy_of(&corpus().join("layouts/ggcr-test_gc_index"));
    // The copy is young: the default grace (1h) keeps it.
    let out = run(args!["gc", layout.dir]).success().stdout_str();
    assert_eq!(
        out,
        "5 blobs live, 0 removed (0 bytes), 1 unreferenced but younger than 1h\n"
    );
    assert!(blob_set(&layout).contains(GC_GARBAGE));
    // A blob just put is as young.
    let fresh = layout.put(b"written, not tagged yet");
    run(args!["gc", layout.dir, "--grace", "30m"]).success();
    assert!(layout.blob_path(&fresh).is_file());
    // Once older than the grace period, both go.
    age(&layout.blob_path(GC_GARBAGE), TWO_HOURS);
    age(&layout.blob_path(&fresh), TWO_HOURS);
    let out = run(args!["gc", layout.dir]).success().stdout_str();
    assert!(out.contains("2 removed"), "{out}");
    assert!(!layout.blob_path(&fresh).exists());
    assert!(!layout.blob_path(GC_GARBAGE).exists());
}

#[test]
fn gc_keeps_referrers_of_live_manifests() {
    let (layout, image) = tagged_layout("referred");
    let sbom = layout.scratch().join("sbom.json");
    fs::write(&sbom, b"{\"packages\":[]}").unwrap();
    let attached = run(args![
        "attach",
        layout.dir,
        "v1",
        "--artifact-type",
        "application/spdx+json",
        sbom
    ])
    .success()
    .line();

    // A second referrer that index.json does not record (pushed by another tool), with a
    // layer of its own, and a signature of that referrer: kept because their subjects live.
    let (sig_layer, _) = layout.put_json(&json!({"sig": 1}), "application/octet-stream");
    let (empty, _) = layout.put_json(&json!({}), "application/vnd.oci.empty.v1+json");
    let subject =
        json!({"mediaType": OCI_MANIFEST, "digest": image.digest, "size": image.bytes.len()});
    let unrecorded = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/example.signature",
        "config": empty,
        "layers": [sig_layer],
        "subject": subject,
    });
    let (unrecorded, unrecorded_bytes) = layout.put_json(&unrecorded, OCI_MANIFEST);
    let (counter_layer, _) = layout.put_json(&json!({"countersig": 1}), "application/octet-stream");
    let counter = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/example.countersignature",
        "config": empty,
        "layers": [counter_layer],
        "subject": {"mediaType": OCI_MANIFEST, "digest": unrecorded["digest"], "size": unrecorded_bytes.len()},
    });
    let (counter, _) = layout.put_json(&counter, OCI_MANIFEST);

    // A referrer of something nothing refers to goes, with its subject.
    let orphan_subject = layout.image("arm64", "linux", "orphan");
    let (orphan_layer, _) = layout.put_json(&json!({"orphan": 1}), "application/octet-stream");
    let orphan = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/example.signature",
        "config": empty,
        "layers": [orphan_layer],
        "subject": {"mediaType": OCI_MANIFEST, "digest": orphan_subject.digest, "size": orphan_subject.bytes.len()},
    });
    let (orphan, _) = layout.put_json(&orphan, OCI_MANIFEST);

    run(args!["gc", layout.dir, "--grace", "0s"]).success();
    let left = blob_set(&layout);
    for kept in [
        &image.digest,
        &image.config,
        &layer_of(&image),
        &attached,
        unrecorded["digest"].as_str().unwrap(),
        sig_layer["digest"].as_str().unwrap(),
        empty["digest"].as_str().unwrap(),
        counter["digest"].as_str().unwrap(),
        counter_layer["digest"].as_str().unwrap(),
    ] {
        assert!(left.contains(kept), "gc removed {kept}");
    }
    for gone in [
        orphan["digest"].as_str().unwrap(),
        orphan_layer["digest"].as_str().unwrap(),
        orphan_subject.digest.as_str(),
        orphan_subject.config.as_str(),
    ] {
        assert!(!left.contains(gone), "gc kept {gone}");
    }
    check_fsck(&layout.dir, &[]);
    // The attached artifact is still found.
    let found = run(args!["referrers", layout.dir, "v1", "--json"])
        .success()
        .json();
    assert_eq!(found[0]["digest"], json!(attached));
}

#[test]
fn gc_removes_stale_temp_files_and_nothing_else_that_is_not_a_blob() {
    let (layout, _image) = tagged_layout("temps");
    // The cache directory, where writers keep their leases, may hold temp files too.
    fs::create_dir_all(layout.dir.join(".oci-layout-cache")).unwrap();
    let temps = [
        layout.dir.join(".tmp-index"),
        layout.dir.join("blobs/sha256/.tmp-blob"),
        layout.dir.join(".oci-layout-cache/.tmp-cache"),
    ];
    for temp in &temps {
        fs::write(temp, b"debris").unwrap();
    }
    let junk = layout.dir.join("blobs/sha256/not-a-digest");
    fs::write(&junk, b"someone's file").unwrap();

    // Young temp files may belong to a write in progress: the default grace keeps them.
    run(args!["gc", layout.dir]).success();
    assert!(temps.iter().all(|t| t.exists()));
    for temp in &temps[..2] {
        age(temp, TWO_HOURS);
    }
    let out = run(args!["gc", layout.dir]).success().stdout_str();
    assert!(!temps[0].exists() && !temps[1].exists(), "{out}");
    assert!(temps[2].exists(), "a young one stays: {out}");
    run(args!["gc", layout.dir, "--grace", "0s"]).success();
    assert!(temps.iter().all(|t| !t.exists()));
    // A file gc does not understand is fsck's to report, not gc's to delete.
    assert!(junk.exists());
    assert!(
        files_under(&layout.dir).iter().all(|p| !p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".tmp-")),
        "no debris"
    );
}

#[test]
fn gc_stops_rather_than_sweep_below_a_live_manifest_it_cannot_follow() {
    // A tagged manifest whose layer descriptor has a negative size does not parse; sweeping
    // would remove its config and layer, which it may well need.
    let layout = Layout::new();
    let (config, _) = layout.put_json(&json!({"architecture": "amd64", "os": "linux"}), OCI_CONFIG);
    let layer = layout.put(b"layer");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer, "size": -1}],
    });
    let (manifest, bytes) = layout.put_json(&manifest, OCI_MANIFEST);
    write_index(
        &layout,
        &[entry(&manifest, bytes.len(), OCI_MANIFEST, Some("v1"))],
    );
    let before = layout.snapshot();
    let digest = manifest["digest"].as_str().unwrap();
    run(args!["gc", layout.dir, "--grace", "0s"]).failure_naming(&[digest, "gc removes nothing"]);
    assert_eq!(layout.snapshot(), before);
    // Untagged, it is garbage like the rest.
    write_index(&layout, &[]);
    run(args!["gc", layout.dir, "--grace", "0s"]).success();
    assert!(blob_set(&layout).is_empty());
}

#[test]
fn gc_refuses_an_archive() {
    let archive = corpus().join("archives/skopeo-1.9-oci-archive.tar");
    run(args!["gc", archive, "--grace", "0s"]).failure_naming(&["read-only", "unpack"]);
}

// ---------------------------------------------------------------------------------------------
// attach and referrers
// ---------------------------------------------------------------------------------------------

fn referrers_json(dir: &Path, subject: &str, artifact_type: Option<&str>) -> Vec<Value> {
    let mut a = args!["referrers", dir, subject, "--json"];
    if let Some(t) = artifact_type {
        a.extend(args!["--artifact-type", t]);
    }
    match run(a).success().json() {
        Value::Array(found) => found,
        other => panic!("referrers --json printed {other}"),
    }
}

fn artifact_types(found: &[Value]) -> Vec<String> {
    let mut types: Vec<String> = found
        .iter()
        .map(|r| r["artifactType"].as_str().unwrap().to_owned())
        .collect();
    types.sort();
    types
}

#[test]
fn referrers_of_regclient_testrepo_are_the_ones_the_corpus_holds() {
    let layout = Layout::copy_of(&corpus().join("layouts/regclient-testrepo"));
    let expected: [(&str, &[&str]); 4] = [
        (
            "v2",
            &["application/example.sbom", "application/example.signature"],
        ),
        (
            "v3",
            &["application/example.sbom", "application/example.sbom"],
        ),
        ("child", &["application/example.loop"]),
        ("v1", &[]),
    ];
    for (reference, types) in expected {
        let found = referrers_json(&layout.dir, reference, None);
        assert_eq!(artifact_types(&found), types, "{reference}");
        for referrer in &found {
            let keys: BTreeSet<&str> = referrer
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                BTreeSet::from(["annotations", "artifactType", "digest", "mediaType", "size"])
            );
            let digest = referrer["digest"].as_str().unwrap();
            let stored = fs::metadata(layout.blob_path(digest)).unwrap().len();
            assert_eq!(referrer["size"], json!(stored), "{reference}: {digest}");
            // Each one's subject is the manifest the ref names.
            let manifest: Value =
                serde_json::from_slice(&fs::read(layout.blob_path(digest)).unwrap()).unwrap();
            assert_eq!(referrer["mediaType"], manifest["mediaType"]);
            let subject = layout.entries_named(reference)[0]["digest"].clone();
            assert_eq!(manifest["subject"]["digest"], subject);
        }
        // By digest, the same answer; the table form has one line per referrer.
        let digest = layout.entries_named(reference)[0]["digest"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(referrers_json(&layout.dir, &digest, None), found);
        let table = run(args!["referrers", layout.dir, reference])
            .success()
            .stdout_str();
        assert_eq!(table.lines().count(), found.len(), "{table}");
    }
    // The same from the archive the layout packs into, which keeps no cache.
    let archive = layout.scratch().join("testrepo.tar");
    run(args!["pack", layout.dir, archive]).success();
    assert_eq!(
        artifact_types(&referrers_json(&archive, "v2", None)),
        expected[0].1
    );
    // An unknown ref is one error line naming it.
    run(args!["referrers", layout.dir, "v9"]).failure_naming(&["\"v9\""]);
}

#[test]
fn referrers_filter_by_artifact_type() {
    let layout = Layout::copy_of(&corpus().join("layouts/regclient-testrepo"));
    let only = |reference, t| artifact_types(&referrers_json(&layout.dir, reference, Some(t)));
    assert_eq!(
        only("v2", "application/example.sbom"),
        ["application/example.sbom"]
    );
    assert_eq!(
        only("v2", "application/example.signature"),
        ["application/example.signature"]
    );
    assert_eq!(only("v3", "application/example.sbom").len(), 2);
    assert!(only("v3", "application/example.signature").is_empty());
    assert!(only("child", "application/example.sbom").is_empty());
    assert!(
        only("v2", "application/example").is_empty(),
        "no prefix matching"
    );
}

#[test]
fn referrers_of_a_subject_that_is_not_stored_are_found_by_digest() {
    // regclient-external holds referrers of a manifest it does not hold.
    let layout = Layout::copy_of(&corpus().join("layouts/regclient-external"));
    let subject = "sha256:dfae8f425735a5e3a72e40d6609e03079995511d48157c74d54801ff4430491e";
    assert!(!layout.blob_path(subject).exists());
    let found = referrers_json(&layout.dir, subject, None);
    assert!(!found.is_empty(), "referrers of the absent subject");
    // Attaching to it fails, though: an artifact is attached only to what is there.
    let file = layout.scratch().join("f");
    fs::write(&file, b"x").unwrap();
    let before = layout.snapshot();
    run(args![
        "attach",
        layout.dir,
        subject,
        "--artifact-type",
        "a/b",
        file
    ])
    .failure_naming(&[subject.split_once(':').unwrap().1]);
    assert_eq!(layout.snapshot(), before);
}

#[test]
fn attach_then_referrers_finds_it() {
    let (layout, image) = tagged_layout("attach");
    let a = layout.scratch().join("sbom.spdx.json");
    let b = layout.scratch().join("notes.txt");
    fs::write(&a, b"{\"spdxVersion\":\"SPDX-2.3\"}").unwrap();
    fs::write(&b, b"release notes").unwrap();
    let attached = run(args![
        "attach",
        layout.dir,
        "v1",
        "--artifact-type",
        "application/spdx+json",
        a,
        b,
        "--annotation",
        "org.opencontainers.image.created=2026-11-27T00:00:00Z",
        "--annotation",
        "com.example.note=a=b"
    ])
    .success()
    .line();

    let found = referrers_json(&layout.dir, "v1", None);
    assert_eq!(found.len(), 1);
    let stored = fs::read(layout.blob_path(&attached)).unwrap();
    assert_eq!(
        found[0],
        json!({
            "digest": attached,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/spdx+json",
            "size": stored.len(),
            "annotations": {
                "org.opencontainers.image.created": "2026-11-27T00:00:00Z",
                "com.example.note": "a=b",
            },
        })
    );
    // By digest, and filtered, the same.
    assert_eq!(referrers_json(&layout.dir, &image.digest, None), found);
    assert_eq!(
        referrers_json(&layout.dir, "v1", Some("application/spdx+json")),
        found
    );
    assert!(referrers_json(&layout.dir, "v1", Some("application/other")).is_empty());

    // The artifact manifest: empty config, one titled layer per file, subject from the blob.
    let manifest: Value = serde_json::from_slice(&stored).unwrap();
    assert_eq!(manifest["artifactType"], "application/spdx+json");
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(manifest["config"]["size"], 2);
    assert_eq!(
        manifest["subject"],
        json!({"mediaType": OCI_MANIFEST, "digest": image.digest, "size": image.bytes.len()})
    );
    let titles: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["annotations"]["org.opencontainers.image.title"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(titles, ["sbom.spdx.json", "notes.txt"]);
    // Recorded in index.json, untagged, so that gc keeps it.
    let recorded: Vec<Value> = layout
        .ls()
        .into_iter()
        .filter(|e| e["digest"] == json!(attached))
        .collect();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["ref"], Value::Null);
    check_fsck(&layout.dir, &[]);

    // Bad input: one line each, nothing written.
    let before = layout.snapshot();
    run(args![
        "attach",
        layout.dir,
        "v1",
        "--artifact-type",
        "t/x",
        a,
        "--annotation",
        "novalue"
    ])
    .usage_error_naming(&["novalue"]);
    run(args![
        "attach",
        layout.dir,
        "v1",
        "--artifact-type",
        "t/x",
        layout.scratch().join("absent")
    ])
    .failure_naming(&["absent"]);
    run(args![
        "attach",
        layout.dir,
        "nope",
        "--artifact-type",
        "t/x",
        a
    ])
    .failure_naming(&["\"nope\""]);
    run(args!["attach", layout.dir, "v1", a]).usage_error();
    let after = layout.snapshot();
    // A failed attach may have stored blobs (gc's to collect) but no index entry.
    assert_eq!(
        after.get(Path::new("index.json")),
        before.get(Path::new("index.json"))
    );
}

#[test]
fn attach_describes_the_subject_from_its_blob_not_from_a_stale_index_entry() {
    let (layout, image) = tagged_layout("stale");
    // The index entry claims a wrong size; the artifact's subject must carry the real one.
    let mut index = layout.index();
    index["manifests"][0]["size"] = json!(999_999);
    fs::write(layout.index_path(), serde_json::to_vec(&index).unwrap()).unwrap();
    let file = layout.scratch().join("f");
    fs::write(&file, b"x").unwrap();
    let attached = run(args![
        "attach",
        layout.dir,
        "v1",
        "--artifact-type",
        "a/b",
        file
    ])
    .success()
    .line();
    let manifest: Value =
        serde_json::from_slice(&fs::read(layout.blob_path(&attached)).unwrap()).unwrap();
    assert_eq!(manifest["subject"]["size"], json!(image.bytes.len()));
    // A ref whose manifest is gone: nothing to attach to.
    fs::remove_file(layout.blob_path(&image.digest)).unwrap();
    let before = layout.index_bytes();
    run(args![
        "attach",
        layout.dir,
        "v1",
        "--artifact-type",
        "a/b",
        file
    ])
    .failure_naming(&[image.digest.split_once(':').unwrap().1]);
    assert_eq!(layout.index_bytes(), before);
}

#[test]
fn referrers_read_the_manifests_each_time_and_write_nothing() {
    let layout = Layout::copy_of(&corpus().join("layouts/regclient-testrepo"));
    let before = layout.snapshot();
    let first = referrers_json(&layout.dir, "v2", None);
    assert_eq!(first.len(), 2);
    assert_eq!(layout.snapshot(), before, "referrers wrote into the layout");
    assert!(
        !layout.dir.join(".oci-layout-cache").exists(),
        "no cache: referrers walks the index each time"
    );

    // Delete one referrer manifest, and empty the other: with index.json unchanged, the
    // next answer comes from the manifests as they are now, and lists neither.
    let sbom = first
        .iter()
        .find(|r| r["artifactType"] == "application/example.sbom")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let signature = first
        .iter()
        .find(|r| r["artifactType"] == "application/example.signature")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    fs::remove_file(layout.blob_path(&sbom)).unwrap();
    fs::write(layout.blob_path(&signature), b"{}").unwrap();
    let index_before = layout.index_bytes();
    let changed = layout.snapshot();
    assert!(
        referrers_json(&layout.dir, "v2", None).is_empty(),
        "answered from the manifests, not from an earlier answer"
    );
    assert_eq!(
        layout.index_bytes(),
        index_before,
        "referrers does not write index.json"
    );
    assert_eq!(layout.snapshot(), changed);

    // The cache file of earlier versions, keyed by this very index and listing the two
    // referrers that are gone, is neither believed nor touched.
    let cache = layout.dir.join(".oci-layout-cache/referrers.json");
    fs::create_dir_all(cache.parent().unwrap()).unwrap();
    let index_digest = oci_core::Algorithm::Sha256.digest(&index_before);
    let subject = layout.entries_named("v2")[0]["digest"].clone();
    let stale = serde_json::to_vec(&json!({
        "index_digest": index_digest.to_string(),
        "by_subject": { subject.as_str().unwrap(): first },
    }))
    .unwrap();
    fs::write(&cache, &stale).unwrap();
    assert!(referrers_json(&layout.dir, "v2", None).is_empty());
    fs::write(&cache, b"garbage").unwrap();
    assert!(referrers_json(&layout.dir, "v2", None).is_empty());
    assert_eq!(
        artifact_types(&referrers_json(&layout.dir, "v3", None)).len(),
        2
    );
    assert_eq!(fs::read(&cache).unwrap(), b"garbage");
}
