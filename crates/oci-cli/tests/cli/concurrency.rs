//! Several `oci-layout` processes changing one layout at once.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

const PROCESSES: usize = 8;
const ROUNDS: usize = 4;

/// Starts every command before waiting for any.
fn spawn_all(commands: Vec<Vec<OsString>>) -> Vec<(Vec<OsString>, Child)> {
    commands
        .into_iter()
        .map(|a| {
            let child = command(&a).spawn().expect("cannot start oci-layout");
            (a, child)
        })
        .collect()
}

fn index_refs(layout: &Layout) -> BTreeSet<String> {
    layout.index()["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["annotations"][REF_NAME].as_str().map(str::to_owned))
        .collect()
}

/// Sixteen processes tag distinct refs while four put the same blob, all started before any is
/// waited for, round after round: every ref lands, the blob is stored once, fsck stays clean.
#[test]
fn sixteen_concurrent_tags_and_four_puts_of_one_blob_all_land() {
    const TAGGERS: usize = 16;
    const PUTTERS: usize = 4;
    const ROUNDS: usize = 6;
    let layout = Layout::new();
    let image = layout.image("amd64", "linux", "concurrent");
    layout.tag(&image.digest, "base");
    let mut expected = BTreeSet::from(["base".to_owned()]);
    let mut blobs: BTreeSet<String> = layout
        .blobs()
        .iter()
        .map(|b| b["digest"].as_str().unwrap().to_owned())
        .collect();
    for round in 0..ROUNDS {
        // Half the rounds durable (the default), half --relaxed: both lock the index.
        let relaxed = round % 2 == 1;
        let content = pseudo_random(4 << 20, round as u64);
        let file = layout.scratch().join(format!("content-{round}.bin"));
        std::fs::write(&file, &content).unwrap();
        let mut commands: Vec<Vec<OsString>> = (0..TAGGERS)
            .map(|i| {
                let reference = format!("r{round}-p{i}");
                expected.insert(reference.clone());
                args!["tag", layout.dir, image.digest, reference]
            })
            .collect();
        commands.extend((0..PUTTERS).map(|_| args!["blob", "put", layout.dir, file]));
        if relaxed {
            commands.iter_mut().for_each(|a| a.push("--relaxed".into()));
        }
        let mut printed = BTreeSet::new();
        for (a, child) in spawn_all(commands) {
            let done = wait(a, child).success();
            if !done.stdout.is_empty() {
                printed.insert(done.line());
            }
        }
        assert_eq!(
            printed.len(),
            1,
            "round {round}: the four puts agree: {printed:?}"
        );
        let digest = printed.pop_first().unwrap();
        assert!(std::fs::read(layout.blob_path(&digest)).unwrap() == content);
        blobs.insert(digest);

        assert_eq!(index_refs(&layout), expected, "round {round}");
        let entries = layout.ls();
        assert_eq!(
            entries.len(),
            expected.len(),
            "round {round}: one entry per ref"
        );
        assert!(entries.iter().all(|e| e["digest"] == json!(image.digest)));
        let stored: BTreeSet<String> = files_under(&layout.dir.join("blobs"))
            .iter()
            .map(|p| format!("sha256:{}", p.file_name().unwrap().to_string_lossy()))
            .collect();
        assert_eq!(stored, blobs, "round {round}: each blob once, nothing else");
        let (code, report) = crate::integrity::fsck_json(&layout.dir);
        assert_eq!(code, 0, "round {round}: {report:#}");
        assert_eq!(report["findings"], json!([]), "round {round}");
    }
    // No temporary index files left in the root, and no cache: tags and puts keep nothing
    // beside the index (and take no lease).
    assert_eq!(names_in(&layout.dir), ["blobs", "index.json", "oci-layout"]);
    assert_eq!(mode(&layout.index_path()), 0o644);
}

#[test]
fn concurrent_tags_and_untags_do_not_lose_updates() {
    let layout = Layout::new();
    let image = layout.image("amd64", "linux", "mixed");
    for i in 0..PROCESSES {
        layout.tag(&image.digest, &format!("old{i}"));
    }
    for round in 0..ROUNDS {
        // Each process untags one old ref while another tags a new one.
        let mut commands = Vec::new();
        for i in 0..PROCESSES / 2 {
            commands.push(args![
                "untag",
                layout.dir,
                format!("old{}", (round * 4 + i) % PROCESSES)
            ]);
            commands.push(args![
                "tag",
                layout.dir,
                image.digest,
                format!("new{round}-{i}")
            ]);
        }
        for (a, child) in spawn_all(commands) {
            wait(a, child).success();
        }
        let refs = index_refs(&layout);
        for i in 0..PROCESSES / 2 {
            let old = format!("old{}", (round * 4 + i) % PROCESSES);
            assert!(
                !refs.contains(&old),
                "round {round}: {old} survived its untag"
            );
            let new = format!("new{round}-{i}");
            assert!(refs.contains(&new), "round {round}: {new} was lost");
        }
    }
}

#[test]
fn concurrent_tags_of_one_ref_leave_exactly_one_entry() {
    let layout = Layout::new();
    let images: Vec<Image> = (0..PROCESSES)
        .map(|i| layout.image("amd64", "linux", &format!("race{i}")))
        .collect();
    let digests: Vec<Value> = images.iter().map(|i| json!(i.digest)).collect();
    for round in 0..ROUNDS {
        let commands = images
            .iter()
            .map(|image| args!["tag", layout.dir, image.digest, "latest"])
            .collect();
        for (a, child) in spawn_all(commands) {
            wait(a, child).success();
        }
        let entries = layout.ls();
        assert_eq!(entries.len(), 1, "round {round}: {entries:?}");
        assert!(digests.contains(&entries[0]["digest"]), "round {round}");
    }
}

#[test]
fn concurrent_puts_of_one_blob_store_it_once() {
    let layout = Layout::new();
    let content = pseudo_random(2 << 20, 99);
    let file = layout.scratch().join("content.bin");
    std::fs::write(&file, &content).unwrap();
    for round in 0..ROUNDS {
        let commands = (0..PROCESSES)
            .map(|_| args!["blob", "put", layout.dir, file])
            .collect();
        let printed: BTreeSet<String> = spawn_all(commands)
            .into_iter()
            .map(|(a, child)| wait(a, child).success().line())
            .collect();
        assert_eq!(printed.len(), 1, "round {round}: {printed:?}");
        let digest = printed.into_iter().next().unwrap();
        assert!(std::fs::read(layout.blob_path(&digest)).unwrap() == content);
        assert_eq!(
            files_under(&layout.dir.join("blobs")).len(),
            1,
            "round {round}"
        );
    }
}

/// What a realistic writer does: put a layer, a config and a manifest, then tag it.
fn write_and_tag(layout: &Layout, label: &str, reference: &str) -> Run {
    let image = layout.image("amd64", "linux", label);
    run(args!["tag", layout.dir, image.digest, reference])
}

/// Puts `count` unreferenced blobs and makes them two hours old.
fn old_garbage(layout: &Layout, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let digest = layout.put(format!("garbage {i}").as_bytes());
            crate::integrity::age(&layout.blob_path(&digest), Duration::from_secs(7200));
            digest
        })
        .collect()
}

/// Runs `gc` with `grace` again and again until `done`, and at least three times; returns how
/// often. Each run must succeed.
fn gc_loop(layout: &Layout, grace: &str, done: &AtomicBool) -> usize {
    let mut runs = 0;
    while runs < 3 || !done.load(Ordering::SeqCst) {
        run(args!["gc", layout.dir, "--grace", grace]).success();
        runs += 1;
    }
    runs
}

/// With the default grace period, gc running while writers put and tag removes nothing they
/// add: what they put is younger than the grace period until it is tagged, and from then on
/// reachable. Old garbage goes meanwhile, so gc does sweep during the race.
#[test]
fn gc_with_the_default_grace_removes_nothing_concurrent_writers_add() {
    const WRITERS: usize = 4;
    const IMAGES: usize = 6;
    let layout = Layout::new();
    let garbage = old_garbage(&layout, 20);
    let done = AtomicBool::new(false);
    let gc_runs = std::thread::scope(|scope| {
        let gc = scope.spawn(|| gc_loop(&layout, "1h", &done));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let layout = &layout;
                scope.spawn(move || {
                    for i in 0..IMAGES {
                        write_and_tag(layout, &format!("w{w}-{i}"), &format!("w{w}-{i}")).success();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        done.store(true, Ordering::SeqCst);
        gc.join().unwrap()
    });
    assert!(gc_runs >= 3);
    assert_eq!(layout.ls().len(), WRITERS * IMAGES);
    // Every blob of every tagged image is there and verifies.
    let (code, report) = crate::integrity::fsck_json(&layout.dir);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["findings"], json!([]));
    assert_eq!(report["blobsChecked"], json!(WRITERS * IMAGES * 3));
    // The old garbage is gone: gc did sweep while the writers wrote.
    run(args!["gc", layout.dir]).success();
    for digest in &garbage {
        assert!(!layout.blob_path(digest).exists(), "{digest} survived");
    }
}

/// With `--grace 0s` the design guarantees less: a blob put and not yet tagged is unreferenced,
/// so gc may take it (that is what a zero grace period asks for). What still holds is that
/// `tag` never writes an entry for a manifest gc has removed: it checks, under the index lock
/// gc holds while it sweeps, that the manifest is there. So every index entry points at a
/// stored manifest, whatever the interleaving; a tag that lost the race fails with one line.
#[test]
fn gc_with_no_grace_never_leaves_a_dangling_index_entry() {
    const WRITERS: usize = 4;
    const IMAGES: usize = 8;
    let layout = Layout::new();
    let done = AtomicBool::new(false);
    let lost = std::thread::scope(|scope| {
        let gc = scope.spawn(|| gc_loop(&layout, "0s", &done));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let layout = &layout;
                scope.spawn(move || {
                    let mut lost = 0;
                    for i in 0..IMAGES {
                        let name = format!("w{w}-{i}");
                        let tagged = write_and_tag(layout, &name, &name);
                        if tagged.code != 0 {
                            // The manifest (or a blob it needs to describe itself) was taken.
                            tagged.failure_naming(&["not found"]);
                            lost += 1;
                        }
                    }
                    lost
                })
            })
            .collect();
        let lost: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
        done.store(true, Ordering::SeqCst);
        gc.join().unwrap();
        lost
    });
    let entries = layout.ls();
    assert_eq!(entries.len() + lost, WRITERS * IMAGES);
    for entry in &entries {
        let digest = entry["digest"].as_str().unwrap();
        assert!(layout.blob_path(digest).is_file(), "dangling entry {entry}");
    }
}

#[test]
fn tag_of_a_manifest_gc_has_removed_fails_cleanly() {
    let layout = Layout::new();
    let image = layout.image("amd64", "linux", "collected");
    run(args!["gc", layout.dir, "--grace", "0s"]).success();
    let before = layout.index_bytes();
    run(args!["tag", layout.dir, image.digest, "v1"]).failure_naming(&[image
        .digest
        .split_once(':')
        .unwrap()
        .1]);
    assert_eq!(layout.index_bytes(), before);
}

/// Re-putting a blob that is old and unreferenced makes it young again, so a gc with the
/// default grace keeps it until the writer tags what refers to it. Raced round after round:
/// gc and four re-puts start together on a blob made two hours old; whichever wins, the blob
/// is there afterwards (gc either saw it young or took it before a re-put stored it again).
#[test]
fn a_racing_re_put_refreshes_the_mtime_so_gc_keeps_the_blob() {
    const ROUNDS: usize = 12;
    let layout = Layout::new();
    let content = pseudo_random(1 << 20, 7);
    let file = layout.scratch().join("content.bin");
    std::fs::write(&file, &content).unwrap();
    let digest = run(args!["blob", "put", layout.dir, file]).success().line();
    let blob = layout.blob_path(&digest);
    let two_hours = Duration::from_secs(7200);

    // Plainly: old, re-put, young.
    crate::integrity::age(&blob, two_hours);
    let aged = std::fs::metadata(&blob).unwrap().modified().unwrap();
    run(args!["blob", "put", layout.dir, file]).success();
    let refreshed = std::fs::metadata(&blob).unwrap().modified().unwrap();
    assert!(
        refreshed.duration_since(aged).unwrap_or_default() > Duration::from_secs(3600),
        "the re-put did not refresh the mtime"
    );
    run(args!["gc", layout.dir]).success();
    assert!(blob.is_file());

    for round in 0..ROUNDS {
        crate::integrity::age(&blob, two_hours);
        let mut commands = vec![args!["gc", layout.dir]];
        commands.extend((0..4).map(|_| args!["blob", "put", layout.dir, file]));
        for (a, child) in spawn_all(commands) {
            wait(a, child).success();
        }
        assert!(
            blob.is_file(),
            "round {round}: gc removed a blob that was just put"
        );
        assert!(std::fs::read(&blob).unwrap() == content, "round {round}");
    }
}

/// A small tree for `image create --from-dir`.
fn source_tree(dir: &std::path::Path) -> std::path::PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("bin")).unwrap();
    std::fs::write(src.join("bin/app"), b"#!/bin/sh\necho app\n").unwrap();
    src
}

/// Issue #12, item 8: creators racing for a missing layout all succeed, with one layout that
/// holds what each of them wrote.
#[test]
fn concurrent_image_creates_and_unpacks_into_a_missing_layout_all_succeed() {
    const CREATORS: usize = 6;
    let tmp = tempfile::tempdir().unwrap();
    let src = source_tree(tmp.path());
    let source = Layout::new();
    let image = source.image("amd64", "linux", "unpacked");
    source.tag(&image.digest, "unpacked");
    let archive = tmp.path().join("source.tar");
    run(args!["pack", source.dir, archive]).success();
    for round in 0..3 {
        let dir = tmp.path().join(format!("round{round}/layout"));
        let mut commands: Vec<Vec<OsString>> = (0..CREATORS)
            .map(|i| {
                let mut a = args![
                    "image",
                    "create",
                    dir,
                    "--tag",
                    format!("t{i}"),
                    "--from-dir",
                    src,
                    "--label",
                    format!("n={i}")
                ];
                if i % 2 == 1 {
                    a.push("--relaxed".into());
                }
                a
            })
            .collect();
        commands.extend((0..CREATORS).map(|_| args!["unpack", archive, dir]));
        for (a, child) in spawn_all(commands) {
            wait(a, child).success();
        }
        let layout = Layout::copy_of(&dir);
        let mut expected: BTreeSet<String> = (0..CREATORS).map(|i| format!("t{i}")).collect();
        expected.insert("unpacked".to_owned());
        assert_eq!(index_refs(&layout), expected, "round {round}");
        let (code, report) = crate::integrity::fsck_json(&dir);
        assert_eq!(code, 0, "round {round}: {report:#}");
        assert_eq!(report["findings"], json!([]), "round {round}: {report:#}");
    }
}

/// Issue #12, item 3: `gc --grace 0s` running again and again while `image create` builds and
/// tags images. Each create holds a lease, so gc sweeps nothing it wrote before its tag: every
/// create succeeds and every tag names a whole image.
#[test]
fn gc_with_no_grace_racing_image_create_leaves_no_tag_on_an_incomplete_image() {
    const IMAGES: usize = 12;
    let tmp = tempfile::tempdir().unwrap();
    let src = source_tree(tmp.path());
    let layout = Layout::new();
    let done = AtomicBool::new(false);
    let gc_runs = std::thread::scope(|scope| {
        let gc = scope.spawn(|| gc_loop(&layout, "0s", &done));
        for i in 0..IMAGES {
            run(args![
                "image",
                "create",
                layout.dir,
                "--tag",
                format!("t{i}"),
                "--from-dir",
                src,
                "--label",
                format!("n={i}")
            ])
            .success();
        }
        done.store(true, Ordering::SeqCst);
        gc.join().unwrap()
    });
    assert!(gc_runs >= 3);
    assert_eq!(layout.ls().len(), IMAGES);
    let (code, report) = crate::integrity::fsck_json(&layout.dir);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["findings"], json!([]), "{report:#}");
}
