//! `image create` and `inspect`, run as a user runs them, and read back by GNU tar, umoci and
//! skopeo (the interop tests skip visibly without them, as `interop` does).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::*;

/// A tree like a small image's root: files, modes, links of both kinds, an empty directory, a
/// name that is not UTF-8.
fn rootfs(root: &Path) {
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("etc/empty.d")).unwrap();
    fs::create_dir_all(root.join("usr/lib")).unwrap();
    fs::write(root.join("bin/hello"), "#!/bin/sh\necho hello\n").unwrap();
    fs::set_permissions(root.join("bin/hello"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(root.join("etc/motd"), "welcome\n").unwrap();
    fs::write(root.join("etc/shadow"), "root:*:1::::::\n").unwrap();
    fs::set_permissions(root.join("etc/shadow"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::set_permissions(root.join("etc/empty.d"), fs::Permissions::from_mode(0o750)).unwrap();
    let big: Vec<u8> = (0..2_500_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    fs::write(root.join("usr/lib/libbig.so"), big).unwrap();
    fs::write(root.join("bin/busybox"), "multi-call\n").unwrap();
    fs::hard_link(root.join("bin/busybox"), root.join("bin/sh")).unwrap();
    symlink("libbig.so", root.join("usr/lib/libbig.so.1")).unwrap();
    symlink("/etc/motd", root.join("etc/issue")).unwrap();
    fs::write(root.join(OsStr::from_bytes(b"etc/caf\xe9")), "latin-1\n").unwrap();
}

/// The manifest digest `image create` printed, as its one line.
fn digest_line(run: &Run) -> String {
    let digest = run.line();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest:?}"
    );
    digest
}

#[test]
fn image_create_makes_the_layout_tags_the_image_and_prints_its_digest() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("rootfs");
    rootfs(&src);
    let layout = t.path().join("new/layout");
    let created = run(args![
        "image",
        "create",
        layout,
        "--tag",
        "v1",
        "--from-dir",
        src,
        "--cmd",
        "/bin/hello",
        "--env",
        "A=1",
        "--label",
        "org.example=yes",
        "--workdir",
        "/",
        "--user",
        "0:0",
        "--expose",
        "8080"
    ])
    .success();
    let digest = digest_line(&created);
    assert!(
        created.stderr.is_empty(),
        "no progress bar off a terminal: {:?}",
        created.stderr
    );
    let entries = run(args!["ls", layout, "--json"]).success().json();
    assert_eq!(entries.as_array().unwrap().len(), 1);
    assert_eq!(entries[0]["ref"], "v1");
    assert_eq!(entries[0]["digest"], digest.as_str());
    assert_eq!(entries[0]["platform"]["os"], "linux");
    #[cfg(target_arch = "x86_64")]
    assert_eq!(entries[0]["platform"]["architecture"], "amd64");

    let tree = run(args!["inspect", layout, "v1", "--json"])
        .success()
        .json();
    assert_eq!(tree["kind"], "image");
    assert_eq!(tree["ref"], "v1");
    assert_eq!(tree["config"]["cmd"], serde_json::json!(["/bin/hello"]));
    assert_eq!(tree["config"]["env"], serde_json::json!(["A=1"]));
    assert_eq!(tree["config"]["labels"]["org.example"], "yes");
    assert_eq!(
        tree["config"]["exposedPorts"],
        serde_json::json!(["8080/tcp"])
    );
    assert_eq!(
        tree["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );

    // Tagging again replaces the entry; other compressions and algorithms.
    for (compression, algorithm) in [("zstd", "sha512"), ("none", "blake3")] {
        let again = run(args![
            "image",
            "create",
            layout,
            "--tag",
            "v1",
            "--from-dir",
            src,
            "--compression",
            compression,
            "--algorithm",
            algorithm
        ])
        .success();
        let entries = run(args!["ls", layout, "--json"]).success().json();
        assert_eq!(entries.as_array().unwrap().len(), 1);
        assert_eq!(entries[0]["digest"], again.line());
        assert!(again.line().starts_with(&format!("{algorithm}:")));
        let tree = run(args!["inspect", layout, "v1", "--json"])
            .success()
            .json();
        let media_type = tree["layers"][0]["mediaType"].as_str().unwrap().to_owned();
        let expected = match compression {
            "zstd" => "application/vnd.oci.image.layer.v1.tar+zstd",
            _ => "application/vnd.oci.image.layer.v1.tar",
        };
        assert_eq!(media_type, expected);
    }
    run(args!["fsck", layout]).success();
}

#[test]
fn source_date_epoch_makes_the_same_directory_give_the_same_manifest() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("rootfs");
    rootfs(&src);
    let epoch = [("SOURCE_DATE_EPOCH", "1700000000")];
    for compression in ["gzip", "zstd", "none"] {
        let digests: Vec<String> = ["one", "two", "one"]
            .iter()
            .map(|name| {
                let layout = t.path().join(format!("{compression}-{name}"));
                let run = run_env(
                    args![
                        "image",
                        "create",
                        layout,
                        "--tag",
                        "r",
                        "--from-dir",
                        src,
                        "--compression",
                        compression
                    ],
                    &epoch,
                )
                .success();
                digest_line(&run)
            })
            .collect();
        assert!(
            digests.iter().all(|d| *d == digests[0]),
            "{compression}: {digests:?}"
        );
        let tree = run(args![
            "inspect",
            t.path().join(format!("{compression}-one")),
            "r",
            "--json"
        ])
        .success()
        .json();
        assert_eq!(tree["config"]["created"], "2023-11-14T22:13:20Z");
    }
    run_env(
        args![
            "image",
            "create",
            t.path().join("bad"),
            "--tag",
            "r",
            "--from-dir",
            src
        ],
        &[("SOURCE_DATE_EPOCH", "yesterday")],
    )
    .usage_error_naming(&["SOURCE_DATE_EPOCH"]);
}

#[test]
fn errors_are_one_line_naming_what_is_wrong() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("rootfs");
    rootfs(&src);
    let layout = t.path().join("layout");
    let missing = t.path().join("no-such-dir");
    let cases: Vec<(Vec<OsString>, &str)> = vec![
        (
            args![
                "image",
                "create",
                layout,
                "--tag",
                "r",
                "--from-dir",
                missing
            ],
            "no-such-dir",
        ),
        (
            args![
                "image",
                "create",
                layout,
                "--tag",
                "r",
                "--from-dir",
                src.join("etc/motd")
            ],
            "not a directory",
        ),
        (
            args![
                "image",
                "create",
                layout,
                "--tag",
                "../r",
                "--from-dir",
                src
            ],
            "invalid ref name",
        ),
        (
            args![
                "image",
                "create",
                layout,
                "--tag",
                "r",
                "--from-dir",
                src,
                "--platform",
                "linux"
            ],
            "OS/ARCH",
        ),
        (
            args![
                "image",
                "create",
                layout,
                "--tag",
                "r",
                "--from-dir",
                src,
                "--env",
                "NOVALUE"
            ],
            "NAME=VALUE",
        ),
        (
            args![
                "image",
                "create",
                layout,
                "--tag",
                "r",
                "--from-dir",
                src,
                "--label",
                "novalue"
            ],
            "KEY=VALUE",
        ),
        (
            args![
                "image",
                "create",
                layout,
                "--tag",
                "r",
                "--from-dir",
                src,
                "--level",
                "42"
            ],
            "gzip level",
        ),
        (
            args![
                "image",
                "create",
                layout,
                "--tag",
                "r",
                "--from-dir",
                src,
                "--base",
                "nothing"
            ],
            "\"nothing\"",
        ),
        (
            args![
                "image",
                "create",
                layout,
                "--tag",
                "r",
                "--from-tar",
                src.join("etc/motd")
            ],
            "not a readable tar",
        ),
        (args!["inspect", layout, "nothing"], "\"nothing\""),
    ];
    // A value refused as given is a usage error (2); what is missing or wrong on disk, a
    // failure (1).
    const USAGE: [&str; 5] = [
        "invalid ref name",
        "OS/ARCH",
        "NAME=VALUE",
        "KEY=VALUE",
        "gzip level",
    ];
    for (args, expected) in cases {
        let failed = run(args);
        if USAGE.contains(&expected) {
            failed.usage_error_naming(&[expected]);
        } else {
            failed.failure_naming(&[expected]);
        }
    }
    // Nothing was tagged by the failures.
    if layout.exists() {
        let entries = run(args!["ls", layout, "--json"]).success().json();
        assert_eq!(entries, serde_json::json!([]));
    }
    // Usage errors exit 2.
    run(args!["image", "create", layout, "--from-dir", src]).usage_error();
    run(args!["image", "create", layout, "--tag", "r"]).usage_error();
    run(args![
        "image",
        "create",
        layout,
        "--tag",
        "r",
        "--from-dir",
        src,
        "--compression",
        "lz4"
    ])
    .usage_error();
}

#[test]
fn inspect_shows_an_index_by_platform_in_a_layout_and_in_an_archive() {
    let layout = corpus().join("layouts/regclient-testrepo");
    let text = run(args!["inspect", layout, "v1"]).success().stdout_str();
    assert!(text.starts_with("index sha256:7ceb9b6b"), "{text}");
    assert!(text.contains("ref=v1"));
    assert!(
        text.contains("platform=linux/amd64") && text.contains("platform=linux/arm64"),
        "{text}"
    );
    assert!(text.contains("  manifest sha256:1effc9d4"), "{text}");
    assert!(
        text.contains("application/vnd.oci.image.layer.v1.tar+gzip"),
        "{text}"
    );
    assert!(text.contains("diff_ids"), "{text}");
    let arm = run(args!["inspect", layout, "v1", "--platform", "linux/arm64"])
        .success()
        .stdout_str();
    assert!(
        arm.contains("platform=linux/arm64") && !arm.contains("platform=linux/amd64"),
        "{arm}"
    );
    let json = run(args![
        "inspect",
        layout,
        "v1",
        "--platform",
        "linux/arm64",
        "--json"
    ])
    .success()
    .json();
    assert_eq!(json["manifests"].as_array().unwrap().len(), 1);
    run(args![
        "inspect",
        layout,
        "v1",
        "--platform",
        "linux/riscv64"
    ])
    .failure_naming(&["linux/amd64, linux/arm64"]);

    // An archive, read in place: a built image packed, and the archives in the corpus.
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("rootfs");
    rootfs(&src);
    let dir = t.path().join("layout");
    let digest = digest_line(
        &run(args![
            "image",
            "create",
            dir,
            "--tag",
            "hello",
            "--from-dir",
            src,
            "--cmd",
            "/bin/hello"
        ])
        .success(),
    );
    let archive = t.path().join("hello.tar");
    run(args!["pack", dir, archive]).success();
    let from_archive = run(args!["inspect", archive, "hello", "--json"])
        .success()
        .json();
    let from_dir = run(args!["inspect", dir, "hello", "--json"])
        .success()
        .json();
    assert_eq!(from_archive, from_dir);
    let by_digest = run(args!["inspect", archive, digest, "--json"])
        .success()
        .json();
    assert_eq!(by_digest["digest"], from_dir["digest"]);
    assert!(by_digest.get("ref").is_none());
    // ctr's export holds only the amd64 blobs of a multi-platform index: the rest is shown as
    // missing, not an error.
    let ctr = corpus().join("archives/ctr-export-hello-world.tar");
    let index = fs::read(&ctr).unwrap();
    assert!(!index.is_empty());
    let listed = run(args!["ls", ctr, "--json"]).success().json();
    let reference = listed[0]["ref"].as_str().unwrap().to_owned();
    let tree = run(args!["inspect", ctr, reference]).success().stdout_str();
    assert!(tree.contains("(not in this layout)"), "{tree}");
    let amd64 = run(args![
        "inspect",
        ctr,
        reference,
        "--platform",
        "linux/amd64",
        "--json"
    ])
    .success()
    .json();
    assert_eq!(amd64["manifests"][0]["kind"], "image", "{amd64}");
}

#[test]
fn base_images_come_from_an_index_by_platform_and_keep_their_config() {
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("layout");
    copy_dir(&corpus().join("layouts/regclient-testrepo"), &layout);
    let src = t.path().join("rootfs");
    rootfs(&src);
    let built = run(args![
        "image",
        "create",
        layout,
        "--tag",
        "on-arm",
        "--from-dir",
        src,
        "--base",
        "v1",
        "--platform",
        "linux/arm64",
        "--env",
        "ADDED=1"
    ])
    .success();
    let digest = digest_line(&built);
    let tree = run(args!["inspect", layout, "on-arm", "--json"])
        .success()
        .json();
    assert_eq!(tree["digest"], digest.as_str());
    assert_eq!(tree["platform"]["architecture"], "arm64");
    let base = run(args![
        "inspect",
        layout,
        "v1",
        "--platform",
        "linux/arm64",
        "--json"
    ])
    .success()
    .json();
    let base_layers = base["manifests"][0]["layers"].as_array().unwrap().clone();
    let layers = tree["layers"].as_array().unwrap();
    assert_eq!(layers.len(), base_layers.len() + 1);
    assert_eq!(layers[..base_layers.len()], base_layers[..]);
    let env = tree["config"]["env"].as_array().unwrap();
    assert_eq!(env.last().unwrap(), "ADDED=1");
    assert!(env.len() > 1, "the base's env is kept: {env:?}");

    // Without --platform the base's platform is kept... and the host's picked from an index.
    let on_host = run(args![
        "image",
        "create",
        layout,
        "--tag",
        "on-host",
        "--from-dir",
        src,
        "--base",
        "v1"
    ])
    .success();
    let tree = run(args!["inspect", layout, on_host.line(), "--json"])
        .success()
        .json();
    #[cfg(target_arch = "x86_64")]
    assert_eq!(tree["platform"]["architecture"], "amd64");
    assert!(tree["layers"].as_array().unwrap().len() > 1);
    // A base that has no such platform.
    run(args![
        "image",
        "create",
        layout,
        "--tag",
        "x",
        "--from-dir",
        src,
        "--base",
        "v1",
        "--platform",
        "linux/ppc64le"
    ])
    .failure_naming(&["linux/ppc64le"]);
    run(args!["fsck", layout]).success();
}

#[test]
fn a_tar_file_becomes_a_layer_as_it_is_or_recompressed() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("rootfs");
    rootfs(&src);
    let tarball = t.path().join("layer.tar.gz");
    let status = Command::new("tar")
        .arg("czf")
        .arg(&tarball)
        .arg("-C")
        .arg(&src)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let layout = t.path().join("layout");
    run(args![
        "image",
        "create",
        layout,
        "--tag",
        "kept",
        "--from-tar",
        tarball
    ])
    .success();
    let kept = run(args!["inspect", layout, "kept", "--json"])
        .success()
        .json();
    assert_eq!(
        kept["layers"][0]["size"],
        fs::metadata(&tarball).unwrap().len()
    );
    run(args![
        "image",
        "create",
        layout,
        "--tag",
        "zst",
        "--from-tar",
        tarball,
        "--compression",
        "zstd"
    ])
    .success();
    let zst = run(args!["inspect", layout, "zst", "--json"])
        .success()
        .json();
    assert_eq!(
        zst["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    assert_eq!(zst["config"]["diffIds"], kept["config"]["diffIds"]);
}

// ---------------------------------------------------------------------------------------------
// Interop: umoci and skopeo read what `image create` writes
// ---------------------------------------------------------------------------------------------

/// An external tool's stdout as text ([`tool`] fails the test when it fails).
fn tool_text(program: &str, args: &[&OsStr]) -> String {
    String::from_utf8_lossy(&tool(program, args)).into_owned()
}

fn umoci_unpack(layout: &Path, reference: &str, bundle: &Path) -> PathBuf {
    let image = format!("{}:{reference}", layout.display());
    let mut args = vec![OsStr::new("unpack")];
    let rootless = fs::metadata("/proc/self")
        .map(|m| m.uid() != 0)
        .unwrap_or(true);
    if rootless {
        args.push(OsStr::new("--rootless"));
    }
    args.extend([
        OsStr::new("--image"),
        OsStr::new(&image),
        bundle.as_os_str(),
    ]);
    tool("umoci", &args);
    bundle.join("rootfs")
}

/// What a tree holds, by path: kind, mode bits, content, symlink target.
fn tree(root: &Path) -> BTreeMap<Vec<u8>, (String, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        for entry in fs::read_dir(root.join(&relative)).unwrap() {
            let entry = entry.unwrap();
            let path = relative.join(entry.file_name());
            let full = root.join(&path);
            let meta = fs::symlink_metadata(&full).unwrap();
            let (kind, data) = if meta.is_dir() {
                pending.push(path.clone());
                ("dir", Vec::new())
            } else if meta.is_symlink() {
                (
                    "symlink",
                    fs::read_link(&full)
                        .unwrap()
                        .as_os_str()
                        .as_bytes()
                        .to_vec(),
                )
            } else {
                ("file", fs::read(&full).unwrap())
            };
            out.insert(
                path.as_os_str().as_bytes().to_vec(),
                (kind.to_owned(), meta.mode() & 0o7777, data),
            );
        }
    }
    out
}

fn assert_same_tree(expected: &Path, actual: &Path) {
    let expected_tree = tree(expected);
    let actual_tree = tree(actual);
    let names = |t: &BTreeMap<Vec<u8>, _>| {
        t.keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&expected_tree), names(&actual_tree));
    for (name, entry) in &expected_tree {
        let mode = if entry.0 == "symlink" { 0 } else { entry.1 };
        let other = &actual_tree[name];
        let other_mode = if other.0 == "symlink" { 0 } else { other.1 };
        assert_eq!(
            (&entry.0, mode, &entry.2),
            (&other.0, other_mode, &other.2),
            "{}",
            String::from_utf8_lossy(name)
        );
    }
    // The hard link survived as one.
    let a = fs::metadata(actual.join("bin/busybox")).unwrap();
    let b = fs::metadata(actual.join("bin/sh")).unwrap();
    assert_eq!(a.ino(), b.ino(), "bin/sh is a hard link to bin/busybox");
}

#[test]
fn umoci_unpacks_a_gzip_image_to_the_source_tree_and_skopeo_reads_its_config() {
    if !have(
        "image::umoci_unpacks_a_gzip_image_to_the_source_tree_and_skopeo_reads_its_config",
        &["umoci", "skopeo"],
    ) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("rootfs");
    rootfs(&src);
    let layout = t.path().join("layout");
    run(args![
        "image",
        "create",
        layout,
        "--tag",
        "gz",
        "--from-dir",
        src,
        "--compression",
        "gzip",
        "--platform",
        "linux/arm64",
        "--entrypoint",
        "/bin/sh",
        "--entrypoint",
        "-c",
        "--cmd",
        "echo hi",
        "--env",
        "GREETING=hello",
        "--label",
        "org.example.test=interop"
    ])
    .success();
    let bundle = t.path().join("bundle");
    let unpacked = umoci_unpack(&layout, "gz", &bundle);
    assert_same_tree(&src, &unpacked);

    let oci = format!("oci:{}:gz", layout.display());
    let inspect: Value = serde_json::from_str(&tool_text(
        "skopeo",
        &[OsStr::new("inspect"), OsStr::new(&oci)],
    ))
    .unwrap();
    assert_eq!(inspect["Architecture"], "arm64");
    assert_eq!(inspect["Os"], "linux");
    assert_eq!(inspect["Labels"]["org.example.test"], "interop");
    assert!(
        inspect["Env"]
            .as_array()
            .unwrap()
            .contains(&Value::from("GREETING=hello"))
    );
    let config: Value = serde_json::from_str(&tool_text(
        "skopeo",
        &[
            OsStr::new("inspect"),
            OsStr::new("--config"),
            OsStr::new(&oci),
        ],
    ))
    .unwrap();
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["echo hi"]));
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/bin/sh", "-c"])
    );
}

#[test]
fn skopeo_recompresses_a_zstd_image_and_umoci_unpacks_the_result() {
    if !have(
        "image::skopeo_recompresses_a_zstd_image_and_umoci_unpacks_the_result",
        &["umoci", "skopeo"],
    ) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("rootfs");
    rootfs(&src);
    let layout = t.path().join("layout");
    run(args![
        "image",
        "create",
        layout,
        "--tag",
        "zst",
        "--from-dir",
        src,
        "--compression",
        "zstd",
        "--cmd",
        "/bin/hello"
    ])
    .success();
    let out = t.path().join("out");
    let (from, to) = (
        format!("oci:{}:zst", layout.display()),
        format!("oci:{}:zst", out.display()),
    );
    tool(
        "skopeo",
        &[
            OsStr::new("--insecure-policy"),
            OsStr::new("copy"),
            OsStr::new("--dest-compress-format"),
            OsStr::new("gzip"),
            OsStr::new(&from),
            OsStr::new(&to),
        ],
    );
    let copied = run(args!["inspect", out, "zst", "--json"]).success().json();
    assert_eq!(
        copied["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let ours = run(args!["inspect", layout, "zst", "--json"])
        .success()
        .json();
    assert_eq!(
        copied["config"]["diffIds"], ours["config"]["diffIds"],
        "same uncompressed layer"
    );
    let unpacked = umoci_unpack(&out, "zst", &t.path().join("bundle"));
    assert_same_tree(&src, &unpacked);
}

#[test]
fn umoci_unpacks_an_image_built_on_a_base_to_the_union_of_both_layers() {
    if !have(
        "image::umoci_unpacks_an_image_built_on_a_base_to_the_union_of_both_layers",
        &["umoci"],
    ) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let base_src = t.path().join("base");
    rootfs(&base_src);
    let top_src = t.path().join("top");
    fs::create_dir_all(top_src.join("etc")).unwrap();
    fs::create_dir_all(top_src.join("app")).unwrap();
    fs::write(top_src.join("etc/motd"), "replaced by the top layer\n").unwrap();
    fs::write(top_src.join("app/run"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(top_src.join("app/run"), fs::Permissions::from_mode(0o755)).unwrap();
    // Directories in a layer replace the metadata of the same directory below.
    fs::set_permissions(
        top_src.join("etc"),
        fs::metadata(base_src.join("etc")).unwrap().permissions(),
    )
    .unwrap();
    let layout = t.path().join("layout");
    run(args![
        "image",
        "create",
        layout,
        "--tag",
        "base",
        "--from-dir",
        base_src,
        "--cmd",
        "/bin/hello"
    ])
    .success();
    // umoci 0.4.7 reads gzip and plain layers, not zstd.
    run(args![
        "image",
        "create",
        layout,
        "--tag",
        "top",
        "--from-dir",
        top_src,
        "--base",
        "base",
        "--compression",
        "none"
    ])
    .success();

    // The union, built by hand: the base, then the top over it.
    let union = t.path().join("union");
    copy_tree(&base_src, &union);
    copy_tree(&top_src, &union);
    let unpacked = umoci_unpack(&layout, "top", &t.path().join("bundle"));
    assert_same_tree(&union, &unpacked);
    assert_eq!(
        fs::read(unpacked.join("etc/motd")).unwrap(),
        b"replaced by the top layer\n"
    );
    let config = run(args!["inspect", layout, "top", "--json"])
        .success()
        .json();
    assert_eq!(
        config["config"]["cmd"],
        serde_json::json!(["/bin/hello"]),
        "the base's Cmd is kept"
    );
}

#[test]
fn a_diff_layer_holds_only_the_changes_and_umoci_unpacks_the_changed_tree() {
    let t = tempfile::tempdir().unwrap();
    let base_src = t.path().join("base");
    rootfs(&base_src);
    let layout = t.path().join("layout");
    // --diff needs a base and a directory (clap's usage error).
    let refused = run(args![
        "image",
        "create",
        layout,
        "--tag",
        "x",
        "--from-dir",
        base_src,
        "--diff"
    ])
    .usage_error();
    assert!(refused.stderr.contains("--base"), "{}", refused.stderr);
    assert!(!layout.exists(), "nothing written on a usage error");
    run(args![
        "image",
        "create",
        layout,
        "--tag",
        "base",
        "--from-dir",
        base_src
    ])
    .success();

    let changed = t.path().join("changed");
    copy_tree(&base_src, &changed);
    let later = |path: &Path| {
        let status = Command::new("touch")
            .args(["-h", "-d", "@2000000000"])
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    };
    fs::write(changed.join("etc/motd"), "changed\n").unwrap();
    later(&changed.join("etc/motd"));
    fs::set_permissions(changed.join("bin/hello"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::remove_file(changed.join("etc/shadow")).unwrap();
    fs::remove_dir(changed.join("etc/empty.d")).unwrap();
    symlink("motd", changed.join("etc/empty.d")).unwrap();
    fs::write(changed.join("usr/new"), "added\n").unwrap();
    // Their entries changed; set apart from the base's mtimes whatever the clock did.
    later(&changed.join("etc"));
    later(&changed.join("usr"));
    // umoci 0.4.7 reads gzip and plain layers, not zstd.
    run(args![
        "image",
        "create",
        layout,
        "--tag",
        "top",
        "--from-dir",
        changed,
        "--base",
        "base",
        "--diff",
        "--compression",
        "none"
    ])
    .success();

    let tree = run(args!["inspect", layout, "top", "--json"])
        .success()
        .json();
    let digest = tree["layers"][1]["digest"].as_str().unwrap().to_owned();
    let (algorithm, hex) = digest.split_once(':').unwrap();
    let blob = layout.join("blobs").join(algorithm).join(hex);
    let listed = gnu_tar(args!["-tf", blob]);
    let mut names: Vec<&str> = listed.lines().collect();
    names.sort_unstable();
    // etc/ and usr/ changed (entries went and came), bin/ did not: only bin/hello's mode.
    assert_eq!(
        names,
        [
            "bin/hello",
            "etc/",
            "etc/.wh.empty.d",
            "etc/.wh.shadow",
            "etc/empty.d",
            "etc/motd",
            "usr/",
            "usr/new",
        ]
    );

    if !have(
        "image::a_diff_layer_holds_only_the_changes_and_umoci_unpacks_the_changed_tree",
        &["umoci"],
    ) {
        return;
    }
    let unpacked = umoci_unpack(&layout, "top", &t.path().join("bundle"));
    assert_same_tree(&changed, &unpacked);
}

fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

// ---------------------------------------------------------------------------------------------
// What a layer from a directory keeps and leaves out, read back by GNU tar and umoci
// ---------------------------------------------------------------------------------------------

/// The blob of the first layer of `reference` in `layout`.
fn first_layer_blob(layout: &Path, reference: &str) -> PathBuf {
    let tree = run(args!["inspect", layout, reference, "--json"])
        .success()
        .json();
    let digest = tree["layers"][0]["digest"].as_str().unwrap().to_owned();
    let (algorithm, hex) = digest.split_once(':').unwrap();
    layout.join("blobs").join(algorithm).join(hex)
}

/// GNU tar, in UTC; its stdout, after checking it succeeded.
fn gnu_tar(args: Vec<OsString>) -> String {
    let shown = show(&args);
    let output = Command::new("tar")
        .args(args)
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "`tar {shown}` failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn warnings(run: &Run) -> Vec<&str> {
    run.stderr.lines().collect()
}

#[test]
fn sockets_and_their_hard_links_are_skipped_with_a_warning_and_gnu_tar_extracts_the_layer() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("rootfs");
    rootfs(&src);
    fs::create_dir_all(src.join("run")).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(src.join("run/a.sock")).unwrap();
    fs::hard_link(src.join("run/a.sock"), src.join("run/b.sock")).unwrap();
    let layout = t.path().join("layout");
    let created = run(args![
        "image",
        "create",
        layout,
        "--tag",
        "s",
        "--from-dir",
        src,
        "--compression",
        "none"
    ])
    .success_with_warnings();
    assert_eq!(
        warnings(&created),
        [
            "warning: run/a.sock: a socket cannot be stored in a layer; skipped",
            "warning: run/b.sock: a socket cannot be stored in a layer; skipped"
        ]
    );
    let out = t.path().join("out");
    fs::create_dir_all(&out).unwrap();
    gnu_tar(args!["-xf", first_layer_blob(&layout, "s"), "-C", out]);
    assert_eq!(fs::read_dir(out.join("run")).unwrap().count(), 0);
    assert_eq!(fs::read(out.join("etc/motd")).unwrap(), b"welcome\n");
}

#[test]
fn a_layout_inside_the_source_directory_is_left_out_of_the_layer_with_a_warning() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("rootfs");
    rootfs(&src);
    let layout = src.join("img");
    // Twice: the second time the layout holds the first image's blobs.
    for tag in ["one", "two"] {
        let created = run(args![
            "image",
            "create",
            layout,
            "--tag",
            tag,
            "--from-dir",
            src,
            "--compression",
            "none"
        ])
        .success_with_warnings();
        assert_eq!(
            warnings(&created),
            ["warning: img: the layout the layer is written into cannot be part of it; skipped"]
        );
        let listing = gnu_tar(args!["-tf", first_layer_blob(&layout, tag)]);
        assert!(listing.lines().any(|name| name == "etc/motd"), "{listing}");
        assert!(
            !listing.lines().any(|name| name.starts_with("img")),
            "{listing}"
        );
    }
    let refused = run(args![
        "image",
        "create",
        layout,
        "--tag",
        "self",
        "--from-dir",
        layout
    ])
    .failure();
    assert_eq!(
        refused.stderr,
        format!(
            "error: {}: is the layout the layer is written into\n",
            layout.display()
        )
    );
}

/// `cap_net_raw+ep` as the kernel stores it (`struct vfs_cap_data`, revision 2).
const CAP_NET_RAW_EP: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// 1960-01-01T00:00:00Z.
const BEFORE_1970: i64 = -315_619_200;

fn xattr(path: &Path, name: &str) -> Vec<u8> {
    let size = rustix::fs::lgetxattr_query(path, name)
        .unwrap_or_else(|e| panic!("{}: {name}: {e}", path.display()));
    let mut value = vec![0; size];
    let n = rustix::fs::lgetxattr(path, name, &mut value[..]).unwrap();
    value.truncate(n);
    value
}

#[test]
fn extended_attributes_and_mtimes_before_1970_come_back_from_gnu_tar_and_umoci() {
    let test = "extended_attributes_and_mtimes_before_1970_come_back_from_gnu_tar_and_umoci";
    if !have(&format!("image::{test}"), &["umoci"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("rootfs");
    rootfs(&src);
    let set = |path: &str, name: &str, value: &[u8]| {
        rustix::fs::lsetxattr(src.join(path), name, value, rustix::fs::XattrFlags::empty())
    };
    if let Err(e) = set("etc/motd", "user.test", b"binary\0value\nwith a newline") {
        eprintln!("SKIPPED image::{test}: this filesystem refuses user xattrs: {e}");
        return;
    }
    set("etc", "user.dir", b"on a directory").unwrap();
    let long = format!("usr/lib/{}", "l".repeat(120));
    fs::write(src.join(&long), "long\n").unwrap();
    set(&long, "user.long", b"after a long name").unwrap();
    let root = fs::metadata("/proc/self").unwrap().uid() == 0;
    if root {
        set("bin/hello", "security.capability", &CAP_NET_RAW_EP).unwrap();
    } else {
        eprintln!("SKIPPED the security.capability part of image_cli::{test}: not root");
    }
    fs::write(src.join("etc/old"), "old\n").unwrap();
    let time = rustix::fs::Timespec {
        tv_sec: BEFORE_1970,
        tv_nsec: 0,
    };
    let times = rustix::fs::Timestamps {
        last_access: time,
        last_modification: time,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        src.join("etc/old"),
        &times,
        rustix::fs::AtFlags::empty(),
    )
    .unwrap();

    let layout = t.path().join("layout");
    // umoci 0.4.7 reads gzip and plain layers, not zstd.
    run(args![
        "image",
        "create",
        layout,
        "--tag",
        "x",
        "--from-dir",
        src
    ])
    .success();
    let blob = first_layer_blob(&layout, "x");

    let listing = gnu_tar(args!["--full-time", "-tvzf", blob]);
    let old = listing.lines().find(|l| l.ends_with(" etc/old")).unwrap();
    assert!(old.contains(" 1960-01-01 00:00:00 "), "{old}");

    let check = |tree: &Path, by: &str| {
        assert_eq!(
            xattr(&tree.join("etc/motd"), "user.test"),
            b"binary\0value\nwith a newline",
            "{by}"
        );
        assert_eq!(
            xattr(&tree.join("etc"), "user.dir"),
            b"on a directory",
            "{by}"
        );
        assert_eq!(
            xattr(&tree.join(&long), "user.long"),
            b"after a long name",
            "{by}"
        );
        if root {
            assert_eq!(
                xattr(&tree.join("bin/hello"), "security.capability"),
                CAP_NET_RAW_EP,
                "{by}"
            );
        }
        let old = fs::metadata(tree.join("etc/old")).unwrap();
        assert_eq!(old.mtime(), BEFORE_1970, "{by}");
    };
    let out = t.path().join("out");
    fs::create_dir_all(&out).unwrap();
    gnu_tar(args![
        "--xattrs",
        "--xattrs-include=*",
        "-xzf",
        blob,
        "-C",
        out
    ]);
    check(&out, "GNU tar");
    let unpacked = umoci_unpack(&layout, "x", &t.path().join("bundle"));
    check(&unpacked, "umoci");
}

#[test]
fn without_proc_the_attributes_of_symlinks_are_reported_as_not_stored() {
    let test = "without_proc_the_attributes_of_symlinks_are_reported_as_not_stored";
    // /proc hidden under a tmpfs in a mount namespace of the command's own.
    let hide_proc = |args: Vec<OsString>| {
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs none /proc && exec \"$0\" \"$@\"")
            .args(args)
            .stdin(Stdio::null())
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
    };
    match hide_proc(args!["true"]) {
        Ok(output) if output.status.success() => {}
        _ => {
            eprintln!("SKIPPED image::{test}: cannot unshare a mount namespace (needs root)");
            return;
        }
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("rootfs");
    rootfs(&src);
    let layout = t.path().join("layout");
    let output = hide_proc(args![
        BIN,
        "image",
        "create",
        layout,
        "--tag",
        "p",
        "--from-dir",
        src
    ])
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // etc/issue is the first symlink in walk order; one warning for the whole walk.
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            "warning: etc/issue: extended attributes of symlinks, FIFOs and devices are read \
             through /proc/self/fd, which is not mounted: not stored for this entry nor any \
             later one; skipped"
        ]
    );
    let listing = gnu_tar(args!["-tzf", first_layer_blob(&layout, "p")]);
    assert!(
        listing.lines().any(|name| name == "usr/lib/libbig.so.1"),
        "{listing}"
    );
}
