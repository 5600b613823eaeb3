//! `docker-archive:FILE[:REF]` as a source and a destination: skopeo reads what we write and
//! we read what skopeo writes, with the same image ID (config digest) and diff_ids both ways;
//! the docker archives of the conformance corpus; and archives built wrong on purpose.

use std::fs;
use std::path::{Path, PathBuf};

use oci_core::Algorithm;
use serde_json::{Value, json};

use crate::copy::{Ctx, blob_file, digests, oci, skopeo};
use crate::support::*;

/// `docker-archive:FILE[:REF]`.
fn archive(file: &Path, reference: Option<&str>) -> String {
    match reference {
        Some(reference) => format!("docker-archive:{}:{reference}", file.display()),
        None => format!("docker-archive:{}", file.display()),
    }
}

/// The diff_ids of the config `config` in the layout `dir`.
fn diff_ids(dir: &Path, config: &str) -> Vec<String> {
    let config: Value = serde_json::from_slice(&fs::read(blob_file(dir, config)).unwrap()).unwrap();
    config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect()
}

/// An image of three layers in the layout `layout`, tagged `tag`, from trees of its own: the
/// layers compressed as `compressions` say (`image create --base` on each before).
fn layered_image(ctx: &Ctx, layout: &str, tag: &str, compressions: &[&str]) -> PathBuf {
    let dir = ctx.path(layout);
    for (i, compression) in compressions.iter().enumerate() {
        let tree = ctx.path(&format!("{layout}-tree-{i}"));
        fs::create_dir_all(&tree).unwrap();
        fs::write(
            tree.join(format!("file-{i}")),
            pseudo_random(5000 + i, i as u64),
        )
        .unwrap();
        let this_tag = if i + 1 == compressions.len() {
            tag.to_owned()
        } else {
            format!("{tag}-{i}")
        };
        let mut args = args![
            "image",
            "create",
            dir,
            "--tag",
            this_tag,
            "--from-dir",
            tree,
            "--compression",
            compression
        ];
        if i > 0 {
            args.extend(args!["--base", format!("{tag}-{}", i - 1)]);
        }
        ctx.run(args).success();
    }
    dir
}

#[test]
fn skopeo_reads_what_we_write_with_the_same_image_id_and_diff_ids() {
    if !have(
        "docker_archive::skopeo_reads_what_we_write_with_the_same_image_id_and_diff_ids",
        &["skopeo"],
    ) {
        return;
    }
    let ctx = Ctx::new();
    for (name, compressions) in [
        ("mixed", &["gzip", "zstd", "none"][..]),
        ("plain", &["none"][..]),
    ] {
        let src = layered_image(&ctx, name, "v1", compressions);
        let source = digests(&src, "v1");
        let expected_diff_ids = diff_ids(&src, &source.config);
        let file = ctx.path(&format!("{name}.tar"));
        ctx.run(args![
            "copy",
            oci(&src, "v1"),
            archive(&file, Some("example.com/team/app:1.0"))
        ])
        .success();

        let members = tar_members(&file);
        let manifest: Value = serde_json::from_slice(&members["manifest.json"]).unwrap();
        let config_hex = source.config.strip_prefix("sha256:").unwrap();
        let layer_names: Vec<String> = expected_diff_ids
            .iter()
            .map(|d| format!("{}.tar", d.strip_prefix("sha256:").unwrap()))
            .collect();
        assert_eq!(
            manifest,
            json!([{
                "Config": format!("{config_hex}.json"),
                "RepoTags": ["example.com/team/app:1.0"],
                "Layers": layer_names,
            }])
        );

        // skopeo's dir: keeps its Docker schema 2 manifest and the config as they are.
        let dir = ctx.path(&format!("{name}-skopeo-dir"));
        skopeo(&[
            "copy",
            &archive(&file, None),
            &format!("dir:{}", dir.display()),
        ]);
        let copied: Value =
            serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(
            copied["config"]["digest"],
            source.config.as_str(),
            "{name}: image ID"
        );
        let layers: Vec<&str> = copied["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap())
            .collect();
        assert_eq!(
            layers, expected_diff_ids,
            "{name}: skopeo's layers are the diff_ids"
        );

        let inspected: Value =
            serde_json::from_slice(&skopeo(&["inspect", &archive(&file, None)])).unwrap();
        assert_eq!(inspected["Layers"], json!(expected_diff_ids), "{name}");

        // Into a layout: skopeo converts the manifest to OCI (re-serialising the config, and
        // compressing the layers its schema 2 manifest calls gzip); the diff_ids stay, and
        // the layout is sound.
        let layout = ctx.path(&format!("{name}-skopeo-oci"));
        skopeo(&["copy", &archive(&file, None), &oci(&layout, "x")]);
        ctx.run(args!["fsck", &layout]).success();
        let through_skopeo = digests(&layout, "x");
        assert_eq!(diff_ids(&layout, &through_skopeo.config), expected_diff_ids);
    }
}

#[test]
fn we_read_what_skopeo_writes_with_the_same_image_id_and_diff_ids() {
    if !have(
        "docker_archive::we_read_what_skopeo_writes_with_the_same_image_id_and_diff_ids",
        &["skopeo"],
    ) {
        return;
    }
    let ctx = Ctx::new();
    // skopeo 1.9 cannot write a zstd layer into a docker archive.
    let src = layered_image(&ctx, "src", "v1", &["gzip", "none"]);
    let source = digests(&src, "v1");
    let expected_diff_ids = diff_ids(&src, &source.config);
    let file = ctx.path("skopeo.tar");
    skopeo(&[
        "copy",
        &oci(&src, "v1"),
        &archive(&file, Some("docker.io/library/app:v3")),
    ]);

    let listed = ctx
        .run(args!["ls", archive(&file, None), "--json"])
        .success()
        .json();
    assert_eq!(
        listed[0]["ref"], "app:v3",
        "RepoTags in docker's familiar form"
    );
    assert_eq!(listed.as_array().unwrap().len(), 1);

    // Every way of naming the image, and the default (the only image).
    let references = [
        None,
        Some("app:v3"),
        Some("docker.io/library/app:v3"),
        Some("@0"),
    ];
    for (i, reference) in references.into_iter().enumerate() {
        let layout = ctx.path(&format!("from-skopeo-{i}"));
        ctx.run(args![
            "copy",
            archive(&file, reference),
            format!("oci:{}", layout.display())
        ])
        .success();
        ctx.run(args!["fsck", layout]).success();
        let copied = digests(&layout, "app:v3");
        assert_eq!(copied.config, source.config, "{reference:?}: image ID");
        assert_eq!(
            copied.layers, expected_diff_ids,
            "{reference:?}: layers are the diff_ids"
        );
        assert_eq!(
            copied.layer_types,
            vec!["application/vnd.oci.image.layer.v1.tar"; 2],
            "{reference:?}"
        );
        assert_eq!(diff_ids(&layout, &copied.config), expected_diff_ids);
    }

    // The read commands take it too.
    let rootfs = ctx.path("rootfs");
    ctx.run(args![
        "image",
        "unpack",
        archive(&file, None),
        "app:v3",
        rootfs
    ])
    .success();
    assert_eq!(
        fs::read(rootfs.join("file-1")).unwrap(),
        pseudo_random(5001, 1),
        "the unpacked tree"
    );
    let inspected = ctx
        .run(args!["inspect", archive(&file, None), "@0", "--json"])
        .success()
        .stdout_str();
    assert!(inspected.contains(&source.config), "{inspected}");
    ctx.run(args!["fsck", archive(&file, None)]).success();

    // And back out to a docker archive: the same config and layers, the RepoTag kept.
    let again = ctx.path("again.tar");
    ctx.run(args!["copy", archive(&file, None), archive(&again, None)])
        .success();
    let manifest: Value = serde_json::from_slice(&tar_members(&again)["manifest.json"]).unwrap();
    assert_eq!(manifest[0]["RepoTags"], json!(["app:v3"]));
    assert_eq!(
        manifest[0]["Config"],
        format!("{}.json", source.config.strip_prefix("sha256:").unwrap())
    );
}

#[test]
fn the_corpus_docker_archives_are_read() {
    let corpus = corpus().join("archives");
    let ctx = Ctx::new();
    // (file, RepoTag, config = image ID, diff_ids, platform)
    let expected = [
        (
            "docker-save-v25-hello-world.tar",
            None,
            "sha256:ee301c921b8aadc002973b2e0c3da17d701dcd994b606769a7e6eaa100b81d44",
            "sha256:12660636fe55438cc3ae7424da7ac56e845cdb52493ff9cf949c47a7f57f8b43",
            "linux/arm64",
        ),
        (
            // Its layer file is gzip: served decompressed, under the diff_id.
            "ctr-export-hello-world.tar",
            Some("hello-world:latest"),
            "sha256:feb5d9fea6a5e9606aa995e879d862b825965ba48de054caab5ef356dc6b3412",
            "sha256:e07ee1baac5fae6a26f30cabfe54a36d3402f96afda318fe0a96cec4ca393359",
            "linux/amd64",
        ),
    ];
    for (file, repo_tag, config, diff_id, platform) in expected {
        let path = corpus.join(file);
        let listed = ctx
            .run(args!["ls", archive(&path, None), "--json"])
            .success()
            .json();
        let entry = &listed.as_array().unwrap()[..];
        assert_eq!(entry.len(), 1, "{file}: {listed}");
        assert_eq!(entry[0]["ref"].as_str(), repo_tag, "{file}");
        let (os, architecture) = platform.split_once('/').unwrap();
        assert_eq!(
            entry[0]["platform"],
            json!({"os": os, "architecture": architecture}),
            "{file}"
        );
        let layout = ctx.path(file);
        ctx.run(args!["copy", archive(&path, None), oci(&layout, "copied")])
            .success();
        ctx.run(args!["fsck", &layout]).success();
        let copied = digests(&layout, "copied");
        assert_eq!(copied.config, config, "{file}: image ID");
        assert_eq!(copied.layers, [diff_id], "{file}");
        assert_eq!(diff_ids(&layout, config), [diff_id], "{file}");
    }
    // An OCI archive without manifest.json is not a docker archive, and says so.
    ctx.run(args![
        "ls",
        archive(&corpus.join("skopeo-1.9-oci-archive.tar"), None)
    ])
    .failure_naming(&["manifest.json", "not a docker archive"]);
}

/// Members of the tar `file` by name.
fn tar_members(file: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(fs::File::open(file).unwrap());
    let mut members = std::collections::BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        members.insert(name, bytes);
    }
    members
}

/// Writes a tar of `members` (regular files) to `file`.
fn write_tar(file: &Path, members: &[(&str, &[u8])]) {
    let mut builder = tar::Builder::new(fs::File::create(file).unwrap());
    for (name, bytes) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, *bytes).unwrap();
    }
    builder.into_inner().unwrap();
}

/// A layer tar holding one file `name` with `content`.
fn layer_tar(name: &str, content: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, name, content).unwrap();
    builder.into_inner().unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    Algorithm::Sha256.digest(bytes).to_string()
}

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap()
}

/// The config of an image with `diff_ids`.
fn config_json(diff_ids: &[String]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

#[test]
fn bad_docker_archives_are_refused_naming_what_is_wrong() {
    let ctx = Ctx::new();
    let layer = layer_tar("hello", b"hello\n");
    let diff_id = sha256(&layer);
    let config = config_json(std::slice::from_ref(&diff_id));
    let config_name = format!("{}.json", hex(&sha256(&config)));
    let layer_name = format!("{}.tar", hex(&diff_id));
    let manifest = |config: &str, tags: &[&str], layers: &[&str]| {
        serde_json::to_vec(&json!([{"Config": config, "RepoTags": tags, "Layers": layers}]))
            .unwrap()
    };

    // A sound one, to be sure the cases below fail for their one fault.
    let good = ctx.path("good.tar");
    let good_manifest = manifest(&config_name, &["app:1"], &[&layer_name]);
    write_tar(
        &good,
        &[
            (&config_name, &config),
            (&layer_name, &layer),
            ("manifest.json", &good_manifest),
        ],
    );
    ctx.run(args![
        "copy",
        archive(&good, Some("app:1")),
        oci(&ctx.path("good"), "x")
    ])
    .success();

    let no_manifest = ctx.path("no-manifest.tar");
    write_tar(
        &no_manifest,
        &[(&config_name, &config), (&layer_name, &layer)],
    );
    ctx.run(args!["ls", archive(&no_manifest, None)])
        .failure_naming(&["manifest.json", "not a docker archive"]);

    let escaping = ctx.path("escaping.tar");
    let escaping_manifest = manifest(&config_name, &["app:1"], &["../x"]);
    write_tar(
        &escaping,
        &[
            (&config_name, &config),
            (&layer_name, &layer),
            ("manifest.json", &escaping_manifest),
        ],
    );
    ctx.run(args!["ls", archive(&escaping, None)])
        .failure_naming(&["../x", "leaves the archive"]);

    // A layer whose content is not its diff_id: the copy fails naming it, and the layout
    // holds nothing under that digest.
    let corrupt = ctx.path("corrupt.tar");
    let other = layer_tar("hello", b"HELLO\n");
    write_tar(
        &corrupt,
        &[
            (&config_name, &config),
            (&layer_name, &other),
            ("manifest.json", &good_manifest),
        ],
    );
    let target = ctx.path("from-corrupt");
    ctx.run(args!["copy", archive(&corrupt, None), oci(&target, "x")])
        .failure_naming(&[&diff_id]);
    assert!(!blob_file(&target, &diff_id).exists());
    assert!(
        !target.join("index.json").exists()
            || ctx.run(args!["ls", target, "--json"]).success().json() == json!([])
    );

    // A config whose name claims another digest.
    let misnamed = ctx.path("misnamed.tar");
    let wrong_name = format!("{}.json", hex(&sha256(b"something else")));
    let misnamed_manifest = manifest(&wrong_name, &["app:1"], &[&layer_name]);
    write_tar(
        &misnamed,
        &[
            (&wrong_name, &config),
            (&layer_name, &layer),
            ("manifest.json", &misnamed_manifest),
        ],
    );
    ctx.run(args!["ls", archive(&misnamed, None)])
        .failure_naming(&[&wrong_name, &sha256(&config)]);

    // A RepoTag the archive does not hold.
    ctx.run(args![
        "copy",
        archive(&good, Some("nope:2")),
        oci(&ctx.path("nope"), "x")
    ])
    .failure_naming(&["nope:2"]);

    // Two images and no REF: the error names both RepoTags.
    let other_config = config_json(std::slice::from_ref(&diff_id))
        .into_iter()
        .chain(*b" ")
        .collect::<Vec<u8>>();
    let other_config_name = format!("{}.json", hex(&sha256(&other_config)));
    let two = serde_json::to_vec(&json!([
        {"Config": config_name, "RepoTags": ["app:1"], "Layers": [layer_name]},
        {"Config": other_config_name, "RepoTags": ["other:2"], "Layers": [layer_name]},
    ]))
    .unwrap();
    let both = ctx.path("two.tar");
    write_tar(
        &both,
        &[
            (&config_name, &config),
            (&other_config_name, &other_config),
            (&layer_name, &layer),
            ("manifest.json", &two),
        ],
    );
    ctx.run(args![
        "copy",
        archive(&both, None),
        oci(&ctx.path("two"), "x")
    ])
    .failure_naming(&["app:1", "other:2"]);
    ctx.run(args![
        "copy",
        archive(&both, Some("@1")),
        oci(&ctx.path("two"), "x")
    ])
    .success();
    assert_eq!(digests(&ctx.path("two"), "x").config, sha256(&other_config));
}

#[test]
fn a_layer_that_does_not_match_the_config_leaves_no_archive() {
    let ctx = Ctx::new();
    let (src, _) = ctx.image("src", "v1", "mismatch", &[]);
    let manifest = digests(&src, "v1");
    // The config names a diff_id the layer does not have (written as a new config blob, and
    // a new manifest pointing at it).
    let config_path = blob_file(&src, &manifest.config);
    let mut config: Value = serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
    let wrong = sha256(b"not the layer");
    config["rootfs"]["diff_ids"] = json!([wrong]);
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_file = ctx.path("config.json");
    fs::write(&config_file, &config_bytes).unwrap();
    let put = ctx
        .run(args![
            "blob",
            "put",
            src,
            config_file,
            "--json",
            "--media-type",
            OCI_CONFIG
        ])
        .success()
        .json();
    let mut document: Value =
        serde_json::from_slice(&fs::read(blob_file(&src, &manifest.manifest)).unwrap()).unwrap();
    document["config"]["digest"] = put["digest"].clone();
    document["config"]["size"] = put["size"].clone();
    let manifest_file = ctx.path("manifest.json");
    fs::write(&manifest_file, serde_json::to_vec(&document).unwrap()).unwrap();
    let new_manifest = ctx
        .run(args![
            "blob",
            "put",
            src,
            manifest_file,
            "--json",
            "--media-type",
            OCI_MANIFEST
        ])
        .success()
        .json();
    ctx.run(args![
        "tag",
        src,
        new_manifest["digest"].as_str().unwrap(),
        "bad"
    ])
    .success();

    let file = ctx.path("bad.tar");
    ctx.run(args!["copy", oci(&src, "bad"), archive(&file, None)])
        .failure_naming(&[&wrong, manifest.layers[0].as_str()]);
    assert!(!file.exists(), "a failed copy left {}", file.display());
    let leftovers: Vec<String> = names_in(&ctx.path(""))
        .into_iter()
        .filter(|name| name.contains("bad.tar"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_pipe_gets_the_same_archive_as_a_file() {
    // On a file a decompressed layer's header is rewritten once its size is known; a pipe
    // cannot seek, so the layer is spooled first. Both give the same members.
    let ctx = Ctx::new();
    let src = layered_image(&ctx, "src", "v1", &["gzip", "zstd", "none"]);
    let file = ctx.path("file.tar");
    ctx.run(args![
        "copy",
        oci(&src, "v1"),
        archive(&file, Some("app:1"))
    ])
    .success();
    let piped = ctx
        .run(args![
            "copy",
            oci(&src, "v1"),
            archive(Path::new("/dev/stdout"), Some("app:1"))
        ])
        .success();
    let from_pipe = ctx.path("pipe.tar");
    // The digest line follows the archive on stdout; tar stops at its end marker.
    fs::write(&from_pipe, &piped.stdout).unwrap();
    assert_eq!(tar_members(&from_pipe), tar_members(&file));
    let layout = ctx.path("back");
    ctx.run(args!["copy", archive(&from_pipe, None), oci(&layout, "x")])
        .success();
    assert_eq!(digests(&layout, "x").config, digests(&src, "v1").config);
}
