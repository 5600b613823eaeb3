//! Several `oci-layout` processes changing one layout at once.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::process::Child;

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

#[test]
fn eight_concurrent_tags_all_land() {
    let layout = Layout::new();
    let image = layout.image("amd64", "linux", "concurrent");
    layout.tag(&image.digest, "base");
    let mut expected = BTreeSet::from(["base".to_owned()]);
    for round in 0..ROUNDS {
        // Half the rounds durable (the default), half --relaxed: both lock the index.
        let relaxed = round % 2 == 1;
        let commands = (0..PROCESSES)
            .map(|i| {
                let reference = format!("r{round}-p{i}");
                expected.insert(reference.clone());
                let mut a = args!["tag", layout.dir, image.digest, reference];
                if relaxed {
                    a.push("--relaxed".into());
                }
                a
            })
            .collect();
        for (a, child) in spawn_all(commands) {
            wait(a, child).success();
        }
        assert_eq!(index_refs(&layout), expected, "round {round}");
        let entries = layout.ls();
        assert_eq!(
            entries.len(),
            expected.len(),
            "round {round}: one entry per ref"
        );
        assert!(entries.iter().all(|e| e["digest"] == json!(image.digest)));
    }
    // No temporary index files left in the root.
    let mut names = names_in(&layout.dir);
    names.retain(|n| n != "blobs");
    assert_eq!(names, ["index.json", "oci-layout"]);
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
