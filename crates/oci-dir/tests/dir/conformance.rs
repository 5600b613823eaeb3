//! Every layout of `shared/conformance/layouts`, opened and read as its README describes it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use oci_core::{BlobListing, ContentKind, Digest, Error, Store, index, seed, walk};
use oci_dir::DirLayout;

use crate::common::{corpus, corpus_copy, corpus_layout, digest_of, err, read_all, ref_names};

/// What reading one blob reachable from `index.json` gives, when it is not a clean read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Problem {
    /// The blob is absent: [`Error::NotFound`].
    Missing,
    /// The descriptor's size is not the blob's: [`Error::UnexpectedSize`].
    Size { declared: u64, stored: u64 },
}

/// What the README says about one layout folder.
struct Expect {
    folder: &'static str,
    /// Whether it has an `oci-layout` file.
    has_oci_layout: bool,
    /// The ref name of every index entry, in order (the number of entries is its length).
    refs: &'static [Option<&'static str>],
    /// Distinct blobs reachable from `index.json` through manifests and indexes.
    reachable: usize,
    /// Reachable blobs that do not read back verified, and why.
    problems: &'static [(&'static str, Problem)],
    /// Stored blobs that nothing reachable refers to.
    unreferenced: &'static [&'static str],
}

const FALLBACK_DFAE: &str =
    "sha256-dfae8f425735a5e3a72e40d6609e03079995511d48157c74d54801ff4430491e";

/// One test per layout, and the list of them all for the coverage check.
macro_rules! layouts {
    ($($test:ident => $expect:expr,)*) => {
        $(
            #[test]
            fn $test() {
                check_layout(&$expect);
            }
        )*

        fn expectations() -> Vec<Expect> {
            vec![$($expect),*]
        }
    };
}

layouts! {
    conformance_ggcr_test_index => Expect {
        folder: "ggcr-test_index",
        has_oci_layout: true,
        refs: &[Some("1"), Some("2"), Some("3"), Some("4")],
        reachable: 6,
        problems: &[],
        // Children of entry "2", whose media type (`application/vnd.oci.descriptor.v1+json`)
        // is not one of a manifest, so a walk does not open it.
        unreferenced: &[
            "sha256:321460fa87fd42433950b42d04b7aff249f4ed960d43404a9f699886906cc9d3",
            "sha256:930705ce23e3b6ed4c08746b6fe880089c864fbaf62482702ae3fdd66b8c7fe9",
        ],
    },
    conformance_ggcr_test_index_one_image => Expect {
        folder: "ggcr-test_index_one_image",
        has_oci_layout: true,
        refs: &[None],
        reachable: 3,
        problems: &[],
        unreferenced: &[],
    },
    conformance_ggcr_test_index_media_type => Expect {
        folder: "ggcr-test_index_media_type",
        has_oci_layout: true,
        refs: &[None],
        reachable: 3,
        problems: &[],
        unreferenced: &[],
    },
    conformance_ggcr_test_gc_index => Expect {
        folder: "ggcr-test_gc_index",
        has_oci_layout: true,
        refs: &[Some("1"), Some("3"), Some("4")],
        reachable: 5,
        problems: &[],
        unreferenced: &["sha256:492b89b9dd3cda4596f94916d17f6901455fb8bd7f4c5a2a90df8d39c90f48a0"],
    },
    conformance_ggcr_test_gc_image_unknown_mediatype => Expect {
        folder: "ggcr-test_gc_image_unknown_mediatype",
        has_oci_layout: true,
        refs: &[None],
        reachable: 1,
        problems: &[(
            "sha256:32589985702551b6c56033bb3334432a0a513bf9d6aceda0f67c42b003850720",
            Problem::Missing,
        )],
        unreferenced: &[],
    },
    conformance_regclient_testrepo => Expect {
        folder: "regclient-testrepo",
        has_oci_layout: true,
        refs: &[
            Some("b1"), Some("b2"), Some("b3"), Some("v1"), Some("v2"), Some("v3"),
            Some("a-docker"), Some("a-docker-oci"),
            Some("sha256-7e87ffc91b9ceafa85be2777b16b1be10e4664fd4f3acc86e4295b97da5163ba"),
            Some("a1"), Some(FALLBACK_DFAE), Some("a2"),
            Some("sha256-ee378b79279b57eb5ac1f3b892c9ad2a9be9d9ccabe1a29a9cbaed8cad182358"),
            Some("sha256-36ed7f4ec4545a40ca043f60d76653ef3d2a76f58a051c0f3a256aaab26fb847"),
            Some("sha256-6bed79d0800a0d3a1d0e0e8105a6a5f7f7758ce09e160a8f142574c418302467"),
            Some("a3"), Some("ai"), Some("a-example"),
            Some("sha256-7ceb9b6bcc274697d0c38be6214b50cec79d601bc61708747d3f6cb772f6c6fa.6fe828b32b9b4572.meta"),
            Some("child"), Some("loop"),
            Some("sha256-8e54c6754f08d22f85c7552bb1951b228b8194d29b14a1639dbe50868da0273e"),
            Some("mirror"),
            Some("sha256-0514ce64171e869a0b065fa1ce1b533e82808c9228d5b97ea6e3ef2e026d9aed"),
            None, None,
        ],
        reachable: 91,
        problems: &[],
        unreferenced: &[],
    },
    conformance_regclient_external => Expect {
        folder: "regclient-external",
        has_oci_layout: true,
        refs: &[Some("a3"), Some(FALLBACK_DFAE), Some("a4")],
        reachable: 6,
        problems: &[],
        unreferenced: &[],
    },
    conformance_containers_image_delete_image_two_identical_references => Expect {
        folder: "containers-image-delete_image_two_identical_references",
        has_oci_layout: true,
        refs: &[Some("1.0.0"), Some("1.0.0")],
        reachable: 6,
        problems: &[],
        unreferenced: &[],
    },
    conformance_containers_image_delete_image_multiple_images => Expect {
        folder: "containers-image-delete_image_multiple_images",
        has_oci_layout: true,
        refs: &[
            Some("latest"), Some("3.18.3"), Some("3"), Some("3.18"), Some("3.17.5"),
            Some("3.16.7"), Some("1.0.0"),
        ],
        reachable: 19,
        problems: &[(
            "sha256:913cf3a39d377faf89ed388ad913a318a390488c9f34c46e43424795cdabffe8",
            Problem::Size { declared: 585, stored: 584 },
        )],
        unreferenced: &[],
    },
    conformance_containers_image_delete_image_only_one_image => Expect {
        folder: "containers-image-delete_image_only_one_image",
        has_oci_layout: true,
        refs: &[Some("latest")],
        reachable: 3,
        problems: &[(
            "sha256:a527179158cd5cebc11c152b8637b47ce96c838ba2aa0de66d14f45cedc11423",
            Problem::Size { declared: 585, stored: 740 },
        )],
        unreferenced: &[],
    },
    // No `oci-layout` and no `blobs/`. `DirLayout::open` only requires `index.json` (and a
    // `blobs/` that does not lead outside the root, which a missing one cannot), so it opens;
    // every blob is then NotFound.
    conformance_containers_image_name_lookups => Expect {
        folder: "containers-image-name_lookups",
        has_oci_layout: false,
        refs: &[Some("a"), Some("b"), Some("c"), Some("d"), Some("invalid-mime")],
        reachable: 5,
        problems: &[
            ("sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Problem::Missing),
            ("sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", Problem::Missing),
            ("sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc", Problem::Missing),
            ("sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd", Problem::Missing),
            ("sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", Problem::Missing),
        ],
        unreferenced: &[],
    },
}

/// Reads every blob reachable from `index.json`, verified against each descriptor's digest
/// and size, following manifests and indexes. Returns each blob's outcome: a blob referred to
/// by several descriptors is read once per distinct size, and any failure is its outcome.
fn walk_layout(layout: &DirLayout) -> BTreeMap<Digest, Result<(), Error>> {
    let mut outcomes = BTreeMap::new();
    let mut read_with = BTreeSet::new();
    let mut walked = BTreeSet::new();
    let mut pending = seed::read_index(layout).unwrap().manifests().clone();
    while let Some(descriptor) = pending.pop() {
        let digest = digest_of(&descriptor);
        if !read_with.insert((digest, descriptor.size())) {
            continue;
        }
        let read = seed::get_blob_reader(layout, digest, Some(descriptor.size())).and_then(|r| {
            read_all(r).map_err(|e| Error::io(layout.root().join(digest.blob_path()), e))
        });
        match read {
            Ok(bytes) => {
                outcomes.entry(digest).or_insert(Ok(()));
                let manifest_like = walk::is_manifest_like(descriptor.media_type().as_ref());
                if manifest_like && walked.insert(digest) {
                    let refs = walk::references(&bytes)
                        .unwrap_or_else(|e| panic!("{digest} does not parse as a manifest: {e}"));
                    pending.extend(refs.children);
                }
            }
            Err(e) => {
                outcomes.insert(digest, Err(e));
            }
        }
    }
    outcomes
}

/// Checks one failed read against the problem the README names; returns a failure message.
fn check_problem(digest: Digest, error: &Error, problem: Problem) -> Result<(), String> {
    match (problem, error) {
        (Problem::Missing, Error::NotFound { digest: d, .. }) if *d == Some(digest) => Ok(()),
        (
            Problem::Size { declared, stored },
            Error::UnexpectedSize {
                digest: d,
                expected,
                actual,
            },
        ) if *d == digest && *expected == declared => {
            // Content longer than declared fails as soon as the excess is read, so `actual`
            // is then a lower bound.
            let plausible = if stored > declared {
                *actual > declared && *actual <= stored
            } else {
                *actual == stored
            };
            if plausible {
                Ok(())
            } else {
                Err(format!("{digest}: {error} (stored {stored})"))
            }
        }
        _ => Err(format!("{digest}: expected {problem:?}, got {error:?}")),
    }
}

fn check_layout(expect: &Expect) {
    let root = corpus_layout(expect.folder);
    let layout = DirLayout::open(&root)
        .unwrap_or_else(|e| panic!("{}: DirLayout::open failed: {e}", expect.folder));
    let mut failures = Vec::new();

    // oci-layout
    match (expect.has_oci_layout, seed::read_image_layout(&layout)) {
        (true, Ok(l)) if l.image_layout_version() == "1.0.0" => {}
        (false, Err(Error::NotFound { .. })) => {}
        (_, other) => failures.push(format!("oci-layout: {other:?}")),
    }

    // index.json: entries and their names; every name resolves (to the last entry so named).
    let idx = layout.index().unwrap();
    let names: Vec<Option<&str>> = idx.manifests().iter().map(index::ref_name).collect();
    if names != expect.refs {
        failures.push(format!("ref names {names:?}, expected {:?}", expect.refs));
    }
    for name in expect.refs.iter().flatten() {
        let last = idx
            .manifests()
            .iter()
            .rfind(|d| index::ref_name(d) == Some(name))
            .map(|d| d.digest().to_string());
        match layout.resolve(name) {
            Ok(d) if Some(d.digest().to_string()) == last => {}
            other => failures.push(format!("resolve({name:?}) = {other:?}")),
        }
    }

    // Every reachable blob reads back verified, but for the problems the README names.
    let outcomes = walk_layout(&layout);
    if outcomes.len() != expect.reachable {
        failures.push(format!(
            "{} reachable blobs, expected {}",
            outcomes.len(),
            expect.reachable
        ));
    }
    let problems: BTreeMap<Digest, Problem> = expect
        .problems
        .iter()
        .map(|(d, p)| (Digest::parse(d).unwrap(), *p))
        .collect();
    for (digest, outcome) in &outcomes {
        match (outcome, problems.get(digest)) {
            (Ok(()), None) => {}
            (Ok(()), Some(problem)) => {
                failures.push(format!("{digest}: read clean, expected {problem:?}"));
            }
            (Err(e), None) => failures.push(format!("{digest}: {e}")),
            (Err(e), Some(problem)) => failures.extend(check_problem(*digest, e, *problem).err()),
        }
    }
    for digest in problems.keys().filter(|d| !outcomes.contains_key(d)) {
        failures.push(format!(
            "{digest}: expected a problem but it is not reachable"
        ));
    }
    for (digest, problem) in &problems {
        let size = layout.stat(ContentKind::Blob, *digest);
        let consistent = match problem {
            Problem::Missing => matches!(size, Ok(None)),
            Problem::Size { stored, .. } => matches!(size, Ok(Some(s)) if s == *stored),
        };
        if !consistent {
            failures.push(format!("{digest}: stat = {size:?} for {problem:?}"));
        }
    }

    // Stored blobs: the reachable ones that are present, plus the unreferenced ones.
    let stored: BTreeSet<Digest> = layout.list_blobs().unwrap().into_iter().collect();
    let expected_stored: BTreeSet<Digest> = outcomes
        .keys()
        .filter(|d| problems.get(d) != Some(&Problem::Missing))
        .copied()
        .chain(
            expect
                .unreferenced
                .iter()
                .map(|d| Digest::parse(d).unwrap()),
        )
        .collect();
    if stored != expected_stored {
        failures.push(format!(
            "stored blobs differ: extra {:?}, missing {:?}",
            stored.difference(&expected_stored).collect::<Vec<_>>(),
            expected_stored.difference(&stored).collect::<Vec<_>>()
        ));
    }

    assert!(
        failures.is_empty(),
        "{}:\n{}",
        expect.folder,
        failures.join("\n")
    );
}

#[test]
fn conformance_every_layout_has_an_expectation() {
    let on_disk: BTreeSet<String> = fs::read_dir(corpus().join("layouts"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    let expected: BTreeSet<String> = expectations().iter().map(|e| e.folder.to_owned()).collect();
    assert!(
        on_disk.len() >= 11,
        "only {} layouts in the corpus",
        on_disk.len()
    );
    assert_eq!(
        on_disk.difference(&expected).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "layouts without an expectation in tests/dir/conformance.rs"
    );
    assert_eq!(
        expected.difference(&on_disk).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "expectations for layouts that are not in the corpus"
    );
}

#[test]
fn conformance_broken_sizes_fail_with_unexpected_size() {
    // Through the store's fetch too, not only the seed reader.
    for (folder, digest, declared, stored) in [
        (
            "containers-image-delete_image_multiple_images",
            "sha256:913cf3a39d377faf89ed388ad913a318a390488c9f34c46e43424795cdabffe8",
            585,
            584,
        ),
        (
            "containers-image-delete_image_only_one_image",
            "sha256:a527179158cd5cebc11c152b8637b47ce96c838ba2aa0de66d14f45cedc11423",
            585,
            740,
        ),
    ] {
        let layout = DirLayout::open(corpus_layout(folder)).unwrap();
        let digest = Digest::parse(digest).unwrap();
        let read = layout
            .fetch(ContentKind::Blob, digest, Some(declared))
            .and_then(|r| {
                read_all(r).map_err(|e| Error::io(layout.root().join(digest.blob_path()), e))
            });
        let error = err(read);
        check_problem(digest, &error, Problem::Size { declared, stored }).unwrap();
        // The content itself is intact: without the wrong size it reads back verified.
        assert_eq!(
            seed::read_blob(&layout, digest).unwrap().len() as u64,
            stored
        );
    }
}

#[test]
fn conformance_name_lookups_blobs_not_found() {
    let layout = DirLayout::open(corpus_layout("containers-image-name_lookups")).unwrap();
    assert!(!layout.root().join("blobs").exists());
    assert!(layout.list_blobs().unwrap().is_empty());
    for entry in layout.index().unwrap().manifests() {
        let digest = digest_of(entry);
        assert!(err(layout.fetch(ContentKind::Blob, digest, None).map(drop)).is_not_found());
        assert!(err(seed::read_blob(&layout, digest)).is_not_found());
        assert!(!layout.contains(ContentKind::Blob, digest).unwrap());
    }
    assert!(err(seed::read_image_layout(&layout)).is_not_found());
}

#[test]
fn conformance_two_identical_references_retag() {
    let folder = "containers-image-delete_image_two_identical_references";
    let first = "sha256:49d1584496c6e196f512c4a9f52b17b187642269d84c044538523c5b69a660b3";
    for how in ["Store::tag", "seed::put_manifest_descriptor_to_index"] {
        let (_tmp, layout) = corpus_copy(folder);
        let entries = layout.index().unwrap().manifests().clone();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].digest().to_string(), first);
        let descriptor = entries[0].clone();
        match how {
            "Store::tag" => layout.tag(&descriptor, "1.0.0").unwrap(),
            _ => seed::put_manifest_descriptor_to_index(&layout, &descriptor).unwrap(),
        }
        let idx = layout.index().unwrap();
        assert_eq!(ref_names(&layout), [Some("1.0.0".to_owned())], "{how}");
        assert_eq!(idx.manifests()[0].digest().to_string(), first, "{how}");
        assert_eq!(layout.resolve("1.0.0").unwrap().digest().to_string(), first);
    }
}

#[test]
fn conformance_regclient_testrepo_referrers() {
    let layout = DirLayout::open(corpus_layout("regclient-testrepo")).unwrap();
    // Every manifest reachable from the index whose `subject` is set, by subject digest.
    let mut referrers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut pending = layout.index().unwrap().manifests().clone();
    let mut seen = BTreeSet::new();
    while let Some(descriptor) = pending.pop() {
        let media_type = descriptor.media_type().to_string();
        if !seen.insert(descriptor.digest().to_string()) || !walk::is_manifest_like(&media_type) {
            continue;
        }
        let bytes = seed::read_blob(&layout, digest_of(&descriptor)).unwrap();
        let refs = walk::references(&bytes).unwrap();
        if let Some(subject) = refs.subject {
            let document: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let artifact_type = document["artifactType"]
                .as_str()
                .or(document["config"]["mediaType"].as_str())
                .unwrap()
                .to_owned();
            referrers
                .entry(subject.digest().to_string())
                .or_default()
                .push(artifact_type);
        }
        pending.extend(refs.children);
    }
    let of = |name: &str| {
        let digest = layout.resolve(name).unwrap().digest().to_string();
        let mut types = referrers.get(&digest).cloned().unwrap_or_default();
        types.sort();
        types
    };
    assert_eq!(
        of("v2"),
        ["application/example.sbom", "application/example.signature"]
    );
    assert_eq!(
        of("v3"),
        ["application/example.sbom", "application/example.sbom"]
    );
    assert_eq!(of("child"), ["application/example.loop"]);
    assert_eq!(of("v1"), Vec::<String>::new());
}
