//! `copy --all-tags` (a whole repository, both ways and between registries), cosign's tags
//! with `--referrers`, and Docker Hub's short names in every command that takes a
//! `docker://` name. Against the real registry of `oci-test-registry`, like `copy`.

use std::path::Path;

use oci_test_registry::harness::Variant;

use crate::copy::{Ctx, blob_file, digests, docker, oci, registry, registry_tags};
use crate::support::*;

/// The tags `ls --json` lists for a store, with their digests, sorted.
fn listed(ctx: &Ctx, store: &str) -> Vec<(String, String)> {
    let listed = ctx.run(args!["ls", store, "--json"]).success().json();
    let mut entries: Vec<(String, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["ref"].as_str().unwrap().to_owned(),
                entry["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    entries.sort();
    entries
}

/// A layout holding three images, tagged v1, v2, v3.
fn three_tags(ctx: &Ctx, seed: &str) -> (std::path::PathBuf, Vec<(String, String)>) {
    let mut tags = Vec::new();
    let mut dir = None;
    for tag in ["v1", "v2", "v3"] {
        let (src, digest) = ctx.image("src", tag, &format!("{seed}-{tag}"), &[]);
        tags.push((tag.to_owned(), digest));
        dir = Some(src);
    }
    (dir.unwrap(), tags)
}

#[test]
fn every_tag_goes_to_a_registry_and_back_and_between_registries() {
    let Some(registry) = registry(
        "all_tags::every_tag_goes_to_a_registry_and_back_and_between_registries",
        Variant::Plain,
        false,
    ) else {
        return;
    };
    let ctx = Ctx::new();
    let (src, tags) = three_tags(&ctx, "all-tags");
    let repository = docker(registry, "alltags/app");
    let out = ctx
        .run(args![
            "copy",
            "--all-tags",
            format!("oci:{}", src.display()),
            repository
        ])
        .success()
        .stdout_str();
    let lines: Vec<String> = tags.iter().map(|(t, d)| format!("{t} {d}")).collect();
    assert_eq!(out.lines().collect::<Vec<_>>(), lines, "{out}");
    assert_eq!(listed(&ctx, &repository), tags);

    let back = ctx.path("back");
    ctx.run(args![
        "copy",
        "--all-tags",
        repository,
        format!("oci:{}", back.display())
    ])
    .success();
    for (tag, digest) in &tags {
        assert_eq!(&digests(&back, tag).manifest, digest);
        assert_eq!(digests(&back, tag), digests(&src, tag));
    }
    ctx.run(args!["fsck", back]).success();

    let copy = docker(registry, "alltags/copy");
    let report = ctx
        .run(args!["copy", "--all-tags", repository, copy, "--json"])
        .success()
        .json();
    assert_eq!(listed(&ctx, &copy), tags);
    let reported: Vec<(String, String)> = report["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tag"].as_str().unwrap().to_owned(),
                t["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(reported, tags, "{report}");
    // Same registry: the layers were mounted from the source repository, not sent again.
    assert!(
        report["tags"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| !t["mounted"].as_array().unwrap().is_empty()),
        "{report}"
    );
}

#[test]
fn a_name_with_a_tag_digest_or_ref_is_refused_with_all_tags() {
    let ctx = Ctx::new();
    let (src, tags) = three_tags(&ctx, "all-tags-refused");
    let layout = format!("oci:{}", src.display());
    for (source, destination, said) in [
        (oci(&src, "v1"), "oci:/nonexistent/x".to_owned(), "names v1"),
        (layout.clone(), oci(&ctx.path("dst"), "v1"), "names v1"),
        (
            "docker://localhost:1/app:v1".to_owned(),
            layout.clone(),
            "names v1 in localhost:1/app",
        ),
        (
            format!("docker://localhost:1/app@{}", tags[0].1),
            layout.clone(),
            "where a whole repository is meant",
        ),
        (
            layout.clone(),
            "docker://alpine:3".to_owned(),
            "names 3 in docker.io/library/alpine",
        ),
    ] {
        let run = ctx.run(args!["copy", "--all-tags", &source, &destination]);
        assert_eq!(run.code, 2, "{source} {destination}: {}", run.stderr);
        assert!(run.stderr.contains(said), "{said}: {}", run.stderr);
    }
    assert!(!ctx.path("dst").exists());
    for flag in [
        &["--platform", "linux/amd64"][..],
        &["--all"],
        &["--digestfile", "d"],
    ] {
        let mut args = args!["copy", "--all-tags", &layout, oci(&ctx.path("dst"), "x")];
        args.extend(flag.iter().map(Into::into));
        assert_eq!(ctx.run(args).code, 2, "{flag:?}");
    }
}

#[test]
fn a_failing_tag_is_reported_and_the_others_are_copied() {
    let ctx = Ctx::new();
    let (src, tags) = three_tags(&ctx, "all-tags-failing");
    let broken = digests(&src, "v2").layers[0].clone();
    flip_byte(&blob_file(&src, &broken), 5);
    let dst = ctx.path("dst");
    let run = ctx.run(args![
        "copy",
        "--all-tags",
        format!("oci:{}", src.display()),
        format!("oci:{}", dst.display()),
        "--json"
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("tag v2") && run.stderr.contains(&broken),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("1 of 3 tags failed: v2"),
        "{}",
        run.stderr
    );
    let report = run.json();
    assert_eq!(report["tags"][1]["tag"], "v2");
    assert!(
        report["tags"][1]["error"]
            .as_str()
            .unwrap()
            .contains(&broken),
        "{report}"
    );
    let expected: Vec<(String, String)> = tags.iter().filter(|(t, _)| t != "v2").cloned().collect();
    assert_eq!(listed(&ctx, &format!("oci:{}", dst.display())), expected);
    ctx.run(args!["fsck", dst]).success();
}

/// Cosign's signature tag for an image.
fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

#[test]
fn cosign_tags_go_with_referrers_and_not_without() {
    let Some(registry) = registry(
        "all_tags::cosign_tags_go_with_referrers_and_not_without",
        Variant::Plain,
        false,
    ) else {
        return;
    };
    let ctx = Ctx::new();
    let (src, digest) = ctx.image("src", "v1", "cosign-image", &[]);
    // What cosign would push: a small manifest under the tag named after the image's digest.
    let sig_tag = signature_tag(&digest);
    let (_, signature) = ctx.image("src", &sig_tag, "cosign-signature", &[]);
    let repository = docker(registry, "cosign/app");
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
    assert_eq!(report["cosignTags"][0]["tag"], sig_tag.as_str(), "{report}");
    assert_eq!(
        report["cosignTags"][0]["digest"],
        signature.as_str(),
        "{report}"
    );
    assert_eq!(
        listed(&ctx, &repository),
        vec![
            (sig_tag.clone(), signature.clone()),
            ("v1".into(), digest.clone())
        ]
    );

    let plain = docker(registry, "cosign/plain");
    ctx.run(args!["copy", oci(&src, "v1"), format!("{plain}:v1")])
        .success();
    assert_eq!(registry_tags(&ctx, &plain), ["v1"]);

    // From the registry into a layout: the signature is a ref name there.
    let back = ctx.path("back");
    ctx.run(args![
        "copy",
        format!("{repository}:v1"),
        oci(&back, "v1"),
        "--referrers"
    ])
    .success();
    assert_eq!(digests(&back, &sig_tag), digests(&src, &sig_tag));
    let without = ctx.path("without");
    ctx.run(args![
        "copy",
        format!("{repository}:v1"),
        oci(&without, "v1")
    ])
    .success();
    assert_eq!(
        listed(&ctx, &format!("oci:{}", without.display())),
        vec![("v1".into(), digest)]
    );
}

#[test]
fn every_command_reads_docker_hub_short_names_the_same_way() {
    let ctx = Ctx::new();
    let dir = ctx.path("dir");
    let unused = |p: &Path| format!("oci:{}", p.display());
    // Uppercase in a Hub path: refused before any network, naming the normalised path.
    for args in [
        args!["copy", "docker://UPPER", unused(&dir)],
        args!["copy", unused(&dir), "docker://UPPER:v1"],
        args!["inspect", "docker://UPPER"],
        args!["ls", "docker://UPPER"],
        args!["referrers", "docker://UPPER", "v1"],
        args!["fsck", "docker://UPPER"],
        args!["image", "unpack", "docker://UPPER", "v1", dir.clone()],
        args!["copy", "docker://index.docker.io/user/Bad", unused(&dir)],
    ] {
        let run = ctx.run(args.clone());
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("must be lowercase")
                && (run.stderr.contains("\"library/UPPER\"")
                    || run.stderr.contains("\"user/Bad\"")),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert!(!dir.exists());
}
