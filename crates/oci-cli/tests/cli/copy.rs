//! `copy` against real parts: Debian's `docker-registry` (distribution 2.8, started by the
//! shared harness of `oci-test-registry`) and skopeo on the other side. Each test pushes to a
//! repository of its own, with content of its own, so tests share the registry safely.
//!
//! Without `docker-registry` (or skopeo, where a test needs it) a test prints `SKIP` and
//! passes; with `OCI_LAYOUT_REQUIRE_INTEROP=1` it fails instead.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use oci_test_registry::harness::{self, RunningRegistry, Variant};
use serde_json::Value;
use tempfile::TempDir;

use crate::support::*;

/// The registry of `variant`, or `None` (the test skips, visibly) when it cannot run; with
/// `skopeo`, skopeo too.
pub fn registry(test: &str, variant: Variant, skopeo: bool) -> Option<&'static RunningRegistry> {
    if !harness::available(test) || (skopeo && !have(test, &["skopeo"])) {
        return None;
    }
    Some(harness::registry(variant))
}

/// A test's own directory, and the environment its runs see: no credential file of the
/// machine (Docker's config.json, the containers auth.json files: HOME and XDG_RUNTIME_DIR
/// are the test's, REGISTRY_AUTH_FILE unset), and a cache of its own (the record of where
/// blobs were pushed).
pub struct Ctx {
    tmp: TempDir,
}

impl Ctx {
    pub fn new() -> Ctx {
        let ctx = Ctx {
            tmp: tempfile::tempdir().unwrap(),
        };
        fs::create_dir_all(ctx.path("docker-config")).unwrap();
        ctx
    }

    /// `name` in the test's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Runs the binary in the test's environment.
    pub fn run(&self, args: Vec<OsString>) -> Run {
        self.run_with(args, &[])
    }

    /// Runs the binary in the test's environment, with `env` on top.
    pub fn run_with(&self, args: Vec<OsString>, env: &[(&str, &OsStr)]) -> Run {
        let output = self.command(&args, env).output().unwrap();
        finish(args, &output)
    }

    /// The command [`Ctx::run_with`] runs.
    pub fn command(&self, args: &[OsString], env: &[(&str, &OsStr)]) -> Command {
        let mut command = command(args);
        command
            .env("DOCKER_CONFIG", self.path("docker-config"))
            .env("HOME", self.path("home"))
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("REGISTRY_AUTH_FILE")
            .env("XDG_CACHE_HOME", self.path("cache"))
            .envs(env.iter().copied());
        command
    }

    /// Builds an image in the layout `layout` (created when missing) from a tree holding a
    /// file that differs with `seed`, tagged `tag`; `extra` goes to `image create`. Returns
    /// the layout's path and the manifest's digest.
    pub fn image(&self, layout: &str, tag: &str, seed: &str, extra: &[&str]) -> (PathBuf, String) {
        let tree = self.path(&format!("tree-{seed}"));
        fs::create_dir_all(&tree).unwrap();
        fs::write(tree.join("seed.txt"), format!("{seed}\n")).unwrap();
        let dir = self.path(layout);
        let mut args = args!["image", "create", dir, "--tag", tag, "--from-dir", tree];
        args.extend(extra.iter().map(OsString::from));
        let digest = self.run(args).success().line();
        (dir, digest)
    }
}

/// `oci:DIR:REF`.
pub fn oci(dir: &Path, reference: &str) -> String {
    format!("oci:{}:{reference}", dir.display())
}

/// `docker://HOST/REPO[:TAG|@DIGEST]` on `registry`.
pub fn docker(registry: &RunningRegistry, rest: &str) -> String {
    format!("docker://{}/{rest}", registry.host)
}

/// Runs skopeo; its output when it succeeds, else the test fails.
pub fn skopeo(args: &[&str]) -> Vec<u8> {
    let output = Command::new("skopeo").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The digest of `bytes` (sha256), as `sha256sum` says it.
pub fn sha256_of(dir: &Path, bytes: &[u8]) -> String {
    let file = dir.join("sha256-input");
    fs::write(&file, bytes).unwrap();
    external_digest("sha256", &file).unwrap()
}

/// The file of `digest` in the layout `dir`.
pub fn blob_file(dir: &Path, digest: &str) -> PathBuf {
    let (algorithm, hex) = digest.split_once(':').unwrap();
    dir.join("blobs").join(algorithm).join(hex)
}

/// An image as a layout holds it: the digests of its manifest, config and layers, and its
/// layers' media types.
#[derive(Debug, PartialEq, Eq)]
pub struct Digests {
    pub manifest: String,
    pub config: String,
    pub layers: Vec<String>,
    pub layer_types: Vec<String>,
}

/// The image `reference` names in the layout `dir` (any tool's), read from its files.
pub fn digests(dir: &Path, reference: &str) -> Digests {
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"][REF_NAME] == reference)
        .unwrap_or_else(|| panic!("no {reference} in {}: {index}", dir.display()));
    let manifest = entry["digest"].as_str().unwrap().to_owned();
    let document: Value =
        serde_json::from_slice(&fs::read(blob_file(dir, &manifest)).unwrap()).unwrap();
    let layers = document["layers"].as_array().unwrap();
    Digests {
        manifest,
        config: document["config"]["digest"].as_str().unwrap().to_owned(),
        layers: layers
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_owned())
            .collect(),
        layer_types: layers
            .iter()
            .map(|l| l["mediaType"].as_str().unwrap().to_owned())
            .collect(),
    }
}

/// The digests listed under `outcome` (`copied`, `present`, `mounted`) of a `--json` report.
pub fn reported(report: &Value, outcome: &str) -> Vec<String> {
    let mut digests: Vec<String> = report[outcome]
        .as_array()
        .unwrap_or_else(|| panic!("no {outcome} list in {report}"))
        .iter()
        .map(|item| item["digest"].as_str().unwrap().to_owned())
        .collect();
    digests.sort();
    digests
}

/// The tags `ls docker://...` lists.
pub fn registry_tags(ctx: &Ctx, repository: &str) -> Vec<String> {
    let listed = ctx.run(args!["ls", repository, "--json"]).success().json();
    let mut tags: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["ref"].as_str().unwrap().to_owned())
        .collect();
    tags.sort();
    tags
}

fn sorted(mut digests: Vec<String>) -> Vec<String> {
    digests.sort();
    digests
}

#[test]
fn a_pushed_image_is_pulled_by_skopeo_with_the_same_digests() {
    let Some(registry) = registry(
        "copy::a_pushed_image_is_pulled_by_skopeo_with_the_same_digests",
        Variant::Plain,
        true,
    ) else {
        return;
    };
    let ctx = Ctx::new();
    let (src, digest) = ctx.image("src", "v1", "pushed-for-skopeo", &[]);
    // A registry on 127.0.0.1 that does not speak TLS: no flag needed (HTTPS is tried first).
    let target = docker(registry, "cli-push/app:v1");
    let pushed = ctx
        .run(args!["copy", oci(&src, "v1"), target])
        .success()
        .line();
    assert_eq!(pushed, digest);

    let out = ctx.path("skopeo-out");
    skopeo(&[
        "copy",
        "-q",
        "--src-tls-verify=false",
        &target,
        &oci(&out, "v1"),
    ]);
    assert_eq!(digests(&out, "v1"), digests(&src, "v1"));
}

#[test]
fn an_image_pushed_by_skopeo_is_pulled_and_fsck_is_clean() {
    let Some(registry) = registry(
        "copy::an_image_pushed_by_skopeo_is_pulled_and_fsck_is_clean",
        Variant::Plain,
        true,
    ) else {
        return;
    };
    let ctx = Ctx::new();
    let (src, _) = ctx.image("src", "v1", "pushed-by-skopeo", &[]);
    let target = docker(registry, "skopeo-push/app:v1");
    skopeo(&[
        "copy",
        "-q",
        "--dest-tls-verify=false",
        &oci(&src, "v1"),
        &target,
    ]);
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &target]);
    let in_registry = sha256_of(&ctx.path("."), &raw);

    let pulled = ctx.path("pulled");
    let digest = ctx
        .run(args!["copy", target, oci(&pulled, "t")])
        .success()
        .line();
    assert_eq!(digest, in_registry);
    let got = digests(&pulled, "t");
    assert_eq!(got.manifest, in_registry);
    assert_eq!(got.layers, digests(&src, "v1").layers);
    ctx.run(args!["fsck", pulled]).success();
}

#[test]
fn a_multi_platform_index_keeps_its_digest_or_gives_one_platform() {
    let Some(registry) = registry(
        "copy::a_multi_platform_index_keeps_its_digest_or_gives_one_platform",
        Variant::Plain,
        true,
    ) else {
        return;
    };
    let ctx = Ctx::new();
    let (layout, amd) = ctx.image("multi", "amd", "multi", &["--platform", "linux/amd64"]);
    let (_, arm) = ctx.image("multi", "arm", "multi", &["--platform", "linux/arm64"]);
    let index = ctx
        .run(args![
            "image", "index", layout, "--tag", "multi", "amd", "arm"
        ])
        .success()
        .line();
    let target = docker(registry, "multi/app:multi");

    // The default is every platform: the index goes whole and keeps its digest.
    let pushed = ctx
        .run(args!["copy", oci(&layout, "multi"), target])
        .success()
        .line();
    assert_eq!(pushed, index);
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &target]);
    assert_eq!(sha256_of(&ctx.path("."), &raw), index);
    let document: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(document["mediaType"], OCI_INDEX);
    let children: Vec<&str> = document["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(children, [amd.as_str(), arm.as_str()]);

    let whole = ctx.path("whole");
    let pulled = ctx
        .run(args!["copy", target, oci(&whole, "m")])
        .success()
        .line();
    assert_eq!(pulled, index);
    ctx.run(args!["fsck", whole]).success();

    // One platform: that image alone.
    let one = ctx.path("one");
    let pulled = ctx
        .run(args![
            "copy",
            target,
            oci(&one, "m"),
            "--platform",
            "linux/arm64"
        ])
        .success()
        .line();
    assert_eq!(pulled, arm);
    assert_eq!(digests(&one, "m").manifest, arm);
    let blobs = ctx.run(args!["blob", "ls", one]).success().stdout_str();
    assert!(
        !blobs.contains(amd.trim_start_matches("sha256:")),
        "{blobs}"
    );
    ctx.run(args!["fsck", one]).success();
}

#[test]
fn zstd_layers_are_pushed_and_pulled_and_skopeo_pulls_them() {
    let Some(registry) = registry(
        "copy::zstd_layers_are_pushed_and_pulled_and_skopeo_pulls_them",
        Variant::Plain,
        true,
    ) else {
        return;
    };
    let ctx = Ctx::new();
    let (src, _) = ctx.image("zstd", "v1", "zstd", &["--compression", "zstd"]);
    let built = digests(&src, "v1");
    assert_eq!(
        built.layer_types,
        ["application/vnd.oci.image.layer.v1.tar+zstd"]
    );
    let target = docker(registry, "zstd/app:v1");
    ctx.run(args!["copy", oci(&src, "v1"), target]).success();

    let ours = ctx.path("ours");
    ctx.run(args!["copy", target, oci(&ours, "v1")]).success();
    assert_eq!(digests(&ours, "v1"), built);
    ctx.run(args!["fsck", ours]).success();

    let theirs = ctx.path("theirs");
    skopeo(&[
        "copy",
        "-q",
        "--src-tls-verify=false",
        &target,
        &oci(&theirs, "v1"),
    ]);
    assert_eq!(digests(&theirs, "v1"), built);
}

#[test]
fn a_blake3_image_is_refused_by_the_registry_in_one_line_and_tags_nothing() {
    let Some(registry) = registry(
        "copy::a_blake3_image_is_refused_by_the_registry_in_one_line_and_tags_nothing",
        Variant::Plain,
        false,
    ) else {
        return;
    };
    let ctx = Ctx::new();
    let (src, digest) = ctx.image("b3", "v1", "blake3", &["--algorithm", "blake3"]);
    assert!(digest.starts_with("blake3:"), "{digest}");
    let repository = docker(registry, "blake3/app");
    let run = ctx
        .run(args!["copy", oci(&src, "v1"), format!("{repository}:v1")])
        .failure_naming(&[
            "blake3:",
            &registry.host,
            "the registry does not accept blake3 digests",
        ]);
    // Distribution 2.8 knows sha256 and sha512 only; its answer is a 400 to the first HEAD.
    eprintln!("blake3 push: {}", run.stderr.trim_end());
    assert!(registry_tags(&ctx, &repository).is_empty());
}

#[test]
fn a_layout_named_without_a_ref_gives_its_only_image_and_its_tag() {
    let Some(registry) = registry(
        "copy::a_layout_named_without_a_ref_gives_its_only_image_and_its_tag",
        Variant::Plain,
        false,
    ) else {
        return;
    };
    let ctx = Ctx::new();
    let (src, digest) = ctx.image("src", "v1", "no-ref", &[]);

    // Source without REF: the only image; destination without REF: the source's tag.
    let dst = ctx.path("dst");
    let copied = ctx
        .run(args![
            "copy",
            format!("oci:{}", src.display()),
            format!("oci:{}", dst.display())
        ])
        .success()
        .line();
    assert_eq!(copied, digest);
    assert_eq!(digests(&dst, "v1").manifest, digest);

    // Named by digest: an untagged entry.
    let untagged = ctx.path("untagged");
    ctx.run(args![
        "copy",
        oci(&src, &digest),
        format!("oci:{}", untagged.display())
    ])
    .success();
    let listed = ctx.run(args!["ls", untagged, "--json"]).success().json();
    let entries = listed.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{listed}");
    assert_eq!(entries[0]["digest"], digest.as_str());
    assert!(entries[0]["ref"].is_null(), "{listed}");

    // From a registry by digest: untagged too.
    let repository = docker(registry, "no-ref/app");
    ctx.run(args!["copy", oci(&src, "v1"), format!("{repository}:v1")])
        .success();
    let by_digest = ctx.path("by-digest");
    ctx.run(args![
        "copy",
        format!("{repository}@{digest}"),
        format!("oci:{}", by_digest.display())
    ])
    .success();
    let listed = ctx.run(args!["ls", by_digest, "--json"]).success().json();
    assert!(listed[0]["ref"].is_null(), "{listed}");
    assert_eq!(listed[0]["digest"], digest.as_str());

    // Several images: an error naming them, nothing pushed.
    ctx.image("src", "v2", "no-ref-second", &[]);
    ctx.run(args![
        "copy",
        format!("oci:{}", src.display()),
        format!("{repository}:several")
    ])
    .failure_naming(&["v1", "v2", &src.display().to_string()]);
    assert_eq!(registry_tags(&ctx, &repository), ["v1"]);
}

#[test]
fn a_copy_between_repositories_mounts_and_a_second_push_sends_nothing() {
    let Some(registry) = registry(
        "copy::a_copy_between_repositories_mounts_and_a_second_push_sends_nothing",
        Variant::Plain,
        false,
    ) else {
        return;
    };
    let ctx = Ctx::new();
    let (src, digest) = ctx.image("src", "v1", "mounts", &[]);
    let built = digests(&src, "v1");
    let blobs = sorted([vec![built.config.clone()], built.layers.clone()].concat());
    let first = docker(registry, "mounts/first:v1");
    let pushed = ctx
        .run(args!["copy", oci(&src, "v1"), first, "--json"])
        .success()
        .json();
    assert_eq!(
        reported(&pushed, "copied"),
        sorted([blobs.clone(), vec![digest.clone()]].concat())
    );

    // Between two repositories of one registry: every blob (config and layers) is mounted,
    // only the manifest goes.
    let second = docker(registry, "mounts/second:v1");
    let report = ctx
        .run(args!["copy", first, second, "--json"])
        .success()
        .json();
    assert_eq!(reported(&report, "mounted"), blobs, "{report}");
    assert_eq!(reported(&report, "copied"), [digest.as_str()], "{report}");
    assert_eq!(report["digest"], digest.as_str());

    // The same image again: everything is there already, nothing is sent.
    let again = ctx
        .run(args!["copy", oci(&src, "v1"), first, "--json"])
        .success()
        .json();
    assert_eq!(reported(&again, "copied"), Vec::<String>::new(), "{again}");
    assert_eq!(reported(&again, "mounted"), Vec::<String>::new(), "{again}");
    assert_eq!(
        reported(&again, "present"),
        sorted([blobs, vec![digest]].concat())
    );
}

#[test]
fn a_copy_between_layouts_is_verified_and_link_makes_touched_hard_links() {
    let ctx = Ctx::new();
    let tree = ctx.path("tree");
    fs::create_dir_all(&tree).unwrap();
    fs::write(tree.join("data"), pseudo_random(3 << 20, 14)).unwrap();
    let src = ctx.path("src");
    ctx.run(args![
        "image",
        "create",
        src,
        "--tag",
        "v1",
        "--from-dir",
        tree,
        "--compression",
        "none"
    ])
    .success();
    let built = digests(&src, "v1");
    let blobs = [vec![built.config.clone()], built.layers.clone()].concat();

    // A copy: its own files, every one checked.
    let copy = ctx.path("copy");
    ctx.run(args!["copy", oci(&src, "v1"), oci(&copy, "v1")])
        .success();
    for blob in &blobs {
        let (a, b) = (
            fs::metadata(blob_file(&src, blob)).unwrap(),
            fs::metadata(blob_file(&copy, blob)).unwrap(),
        );
        assert_ne!((a.dev(), a.ino()), (b.dev(), b.ino()), "{blob} is shared");
    }
    ctx.run(args!["fsck", copy]).success();

    // --link: the same files, their times touched so gc's grace keeps them until tagged.
    let old = SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
    for blob in &blobs {
        fs::File::options()
            .write(true)
            .open(blob_file(&src, blob))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let before = SystemTime::now() - Duration::from_secs(2);
    let linked = ctx.path("linked");
    ctx.run(args!["copy", oci(&src, "v1"), oci(&linked, "v1"), "--link"])
        .success();
    for blob in &blobs {
        let (a, b) = (
            fs::metadata(blob_file(&src, blob)).unwrap(),
            fs::metadata(blob_file(&linked, blob)).unwrap(),
        );
        assert_eq!(
            (a.dev(), a.ino()),
            (b.dev(), b.ino()),
            "{blob} is not linked"
        );
        assert!(b.modified().unwrap() >= before, "{blob} was not touched");
    }
    ctx.run(args!["fsck", linked]).success();

    // Without --link the bytes are checked: a damaged source blob is refused, not copied.
    let layer = &built.layers[0];
    flip_byte(&blob_file(&src, layer), 1000);
    let refused = ctx.path("refused");
    ctx.run(args!["copy", oci(&src, "v1"), oci(&refused, "v1")])
        .failure_naming(&[layer.as_str()]);
    assert!(!blob_file(&refused, layer).exists());
    assert!(
        !refused.join("index.json").exists()
            || ctx.run(args!["ls", refused, "--json"]).success().json() == serde_json::json!([])
    );
}

#[test]
fn a_layout_goes_to_an_archive_and_the_archive_to_a_registry() {
    let Some(registry) = registry(
        "copy::a_layout_goes_to_an_archive_and_the_archive_to_a_registry",
        Variant::Plain,
        false,
    ) else {
        return;
    };
    let ctx = Ctx::new();
    let (src, digest) = ctx.image("src", "v1", "archive", &[]);
    let archive = ctx.path("image.tar");
    ctx.run(args![
        "copy",
        oci(&src, "v1"),
        format!("oci-archive:{}:t1", archive.display())
    ])
    .success();
    ctx.run(args!["fsck", archive]).success();
    let listed = ctx.run(args!["ls", archive, "--json"]).success().json();
    assert_eq!(listed[0]["ref"], "t1");
    assert_eq!(listed[0]["digest"], digest.as_str());

    let repository = docker(registry, "from-archive/app");
    let pushed = ctx
        .run(args![
            "copy",
            format!("oci-archive:{}:t1", archive.display()),
            format!("{repository}:t9")
        ])
        .success()
        .line();
    assert_eq!(pushed, digest);
    assert_eq!(registry_tags(&ctx, &repository), ["t9"]);
    ctx.run(args!["fsck", format!("{repository}:t9")]).success();
}

/// Layers go into an archive from several jobs at once: the archive takes them in turn.
#[test]
fn a_many_layer_image_goes_into_an_archive_with_parallel_jobs() {
    let ctx = Ctx::new();
    let (src, _) = ctx.image("src", "v1", "one", &[]);
    for (base, tag, seed) in [
        ("v1", "v2", "two"),
        ("v2", "v3", "three"),
        ("v3", "v4", "four"),
    ] {
        ctx.image("src", tag, seed, &["--base", base]);
    }
    let expected = digests(&src, "v4");
    assert_eq!(expected.layers.len(), 4);
    let archive = ctx.path("layers.tar");
    ctx.run(args![
        "copy",
        "-j",
        "4",
        oci(&src, "v4"),
        format!("oci-archive:{}", archive.display())
    ])
    .success();
    ctx.run(args!["fsck", archive]).success();
    let unpacked = ctx.path("unpacked");
    ctx.run(args![
        "copy",
        format!("oci-archive:{}:v4", archive.display()),
        oci(&unpacked, "v4")
    ])
    .success();
    assert_eq!(digests(&unpacked, "v4"), expected);
}

#[test]
fn referrers_go_with_the_image_through_the_tag_fallback() {
    let Some(registry) = registry(
        "copy::referrers_go_with_the_image_through_the_tag_fallback",
        Variant::Plain,
        false,
    ) else {
        return;
    };
    let ctx = Ctx::new();
    let (src, digest) = ctx.image("src", "v1", "referrers", &[]);
    let sbom = ctx.path("sbom.json");
    fs::write(&sbom, b"{\"spdxVersion\":\"SPDX-2.3\"}").unwrap();
    let artifact = ctx
        .run(args![
            "attach",
            src,
            "v1",
            sbom,
            "--artifact-type",
            "application/spdx+json"
        ])
        .success()
        .line();
    let repository = docker(registry, "referrers/app");
    let report = ctx
        .run(args![
            "copy",
            oci(&src, "v1"),
            format!("{repository}:v1"),
            "--referrers",
            "--json"
        ])
        .success()
        .json();
    assert!(reported(&report, "copied").contains(&artifact), "{report}");

    // Distribution 2.8 has no referrers API: the artifact is listed under the fallback tag.
    let fallback = format!("sha256-{}", digest.trim_start_matches("sha256:"));
    assert_eq!(
        registry_tags(&ctx, &repository),
        sorted(vec![fallback, "v1".into()])
    );
    let listed = ctx
        .run(args!["referrers", repository, "v1", "--json"])
        .success()
        .json();
    assert_eq!(listed[0]["digest"], artifact.as_str(), "{listed}");
    assert_eq!(listed[0]["artifactType"], "application/spdx+json");

    // And back: the pulled layout has it as a referrer of the image.
    let back = ctx.path("back");
    ctx.run(args![
        "copy",
        format!("{repository}:v1"),
        oci(&back, "v1"),
        "--referrers"
    ])
    .success();
    let listed = ctx
        .run(args!["referrers", back, "v1"])
        .success()
        .stdout_str();
    assert!(listed.contains(&artifact), "{listed}");
    ctx.run(args!["fsck", back]).success();
}

#[test]
fn the_digestfile_holds_the_digest_and_json_says_what_went_where() {
    let Some(registry) = registry(
        "copy::the_digestfile_holds_the_digest_and_json_says_what_went_where",
        Variant::Plain,
        false,
    ) else {
        return;
    };
    let ctx = Ctx::new();
    let (src, digest) = ctx.image("src", "v1", "digestfile", &[]);
    let digestfile = ctx.path("digest");
    let target = docker(registry, "digestfile/app:v1");
    let report = ctx
        .run(args![
            "copy",
            oci(&src, "v1"),
            target,
            "--digestfile",
            digestfile,
            "--json"
        ])
        .success()
        .json();
    assert_eq!(fs::read_to_string(&digestfile).unwrap().trim_end(), digest);
    assert_eq!(report["digest"], digest.as_str());
    assert_eq!(report["tag"], "v1");
    assert_eq!(report["mediaType"], OCI_MANIFEST);
    assert_eq!(reported(&report, "copied").len(), 3, "{report}");
    assert!(reported(&report, "present").is_empty());
    assert!(reported(&report, "mounted").is_empty());
}

#[test]
fn ctrl_c_during_a_push_cancels_the_upload_and_tags_nothing() {
    let Some(registry) = registry(
        "copy::ctrl_c_during_a_push_cancels_the_upload_and_tags_nothing",
        Variant::Plain,
        false,
    ) else {
        return;
    };
    let ctx = Ctx::new();
    let tree = ctx.path("tree");
    fs::create_dir_all(&tree).unwrap();
    // 300 MiB that no compression shrinks.
    let mut random = fs::File::open("/dev/urandom").unwrap().take(300 << 20);
    std::io::copy(
        &mut random,
        &mut fs::File::create(tree.join("big")).unwrap(),
    )
    .unwrap();
    let src = ctx.path("src");
    ctx.run(args![
        "image",
        "create",
        src,
        "--tag",
        "v1",
        "--from-dir",
        tree,
        "--compression",
        "none"
    ])
    .success();

    let repository = docker(registry, "ctrl-c/app");
    let uploads = registry
        .storage
        .join("docker/registry/v2/repositories/ctrl-c/app/_uploads");
    let args = args!["copy", oci(&src, "v1"), format!("{repository}:v1")];
    let mut child = ctx.command(&args, &[]).spawn().unwrap();
    // Wait until bytes of the layer are in the registry's upload session.
    let deadline = Instant::now() + Duration::from_secs(60);
    let session_data = || {
        fs::read_dir(&uploads)
            .into_iter()
            .flatten()
            .flatten()
            .any(|session| session.path().join("data").is_file())
    };
    while !session_data() {
        assert!(Instant::now() < deadline, "no upload started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // It stops: within seconds, not after the upload (nor never, spinning on the cancel).
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the copy did not stop after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = wait(args, child).failure_naming(&["cancelled"]);
    eprintln!("ctrl-c: {}", run.stderr.trim_end());

    assert!(registry_tags(&ctx, &repository).is_empty());
    // The session was deleted: the registry dropped the bytes it held.
    assert!(!session_data(), "an upload session still holds data");
}

#[test]
fn malformed_references_and_unknown_transports_are_refused_naming_them() {
    let ctx = Ctx::new();
    let (src, _) = ctx.image("src", "v1", "malformed", &[]);
    let never = ctx.path("never");
    for bad in [
        "docker://",
        "docker://127.0.0.1:5000/Upper/Case:v1",
        "docker://127.0.0.1:5000/repo:ta:g",
        "docker://127.0.0.1:5000/repo@sha256:abc",
        "oci:",
        "oci-archive:",
        "docker-archive:",
        "docker-archive:image.tar:Upper:v1",
        "docker-archive:image.tar:@one",
        "http://127.0.0.1:5000/repo:v1",
        "docker-daemon:app:v1",
    ] {
        let run = ctx
            .run(args!["copy", oci(&src, "v1"), bad])
            .usage_error_naming(&[bad]);
        eprintln!("{bad}: {}", run.stderr.trim_end());
        let run = ctx
            .run(args!["copy", bad, oci(&never, "v1")])
            .usage_error_naming(&[bad]);
        assert!(run.stderr.contains(bad));
    }
    assert!(!never.exists());
}
