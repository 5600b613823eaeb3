//! The crash-safety harness: start a `blob put` of a large file, a `tag`, a `pack`, an
//! `unpack` (into the layout or a new directory), an `init` or a `blob get -o`, SIGKILL it at a
//! random moment, and check what is left. Run by `cargo xtask ci`
//! (it is `#[ignore]`d in a plain `cargo test`, being heavy):
//!
//! ```text
//! cargo test -p oci-cli --test cli -- --ignored --exact crash::sigkill_at_random_moments --nocapture
//! ```
//!
//! After every kill: `index.json` parses and holds at least the refs it held before, `fsck`
//! reports no error, and every file under `blobs/<alg>/` named as a digest hashes to that
//! digest. Then `gc --grace 0s` leaves no temp file anywhere in the layout, and fsck no
//! finding at all. A killed `pack` leaves no temp file beside its output, and the output is
//! either absent or a complete archive; a killed `blob get -o` likewise. A killed `init` or
//! `unpack` into a new directory, or into an existing empty one, leaves the directory as it
//! was (absent, or empty with the same inode), a layout that fsck passes, or an unfinished
//! layout: one that holds the marker `.oci-layout-init`, which `ls` and `fsck` refuse to open
//! and which the next `unpack` or `init` there turns into a layout. Nothing is ever left
//! beside the directory.
//!
//! The moments are drawn from a PRNG seeded from the clock; the seed is printed, and
//! `OCI_CRASH_SEED=<seed>` replays the same sequence of operations and delays (where in the
//! work each delay lands still depends on the machine). `OCI_CRASH_SECONDS` (default 60) bounds
//! the time spent iterating, `OCI_CRASH_MIB` (default 64) sets the size of the large blobs.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::integrity::fsck_json;
use crate::support::*;

/// xorshift64*: small, and enough to pick operations and delays.
struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    /// `blob put` of a large file that is not stored yet.
    Put,
    /// `tag` of the base image under a new name.
    Tag,
    /// `pack` of the layout (with its large blob) to `out/layout.tar`, new or replaced.
    Pack,
    /// `unpack` of an archive with a large blob, merged into the layout.
    Unpack,
    /// `unpack` of the same archive into a directory that does not exist yet.
    UnpackNew,
    /// `unpack` of the same archive into an existing empty directory (filled in place).
    UnpackEmpty,
    /// `init` of a directory that does not exist yet.
    Init,
    /// `blob get -o` of the large blob to a new file.
    GetOut,
}

/// What the harness counts.
#[derive(Default)]
struct Tally {
    iterations: usize,
    killed: BTreeMap<Op, usize>,
    finished: BTreeMap<Op, usize>,
    /// `pack` killed between linking its finished archive under a temporary name and renaming
    /// it to its name: the one moment it leaves a file behind (documented).
    pack_link_window: usize,
    /// The same for `blob get -o` (`.<name>.<random>`, complete).
    get_link_window: usize,
    /// Unfinished layouts (the marker) left by a killed `init` or `unpack` into a new or empty
    /// directory; each is refused by `ls` and finished by the next create there.
    unfinished_left: usize,
    /// Killed creates that left the directory as it was (absent, or empty).
    untouched: usize,
}

/// The marker of an unfinished layout.
const MARKER: &str = ".oci-layout-init";

/// What a killed create at `root` left, `empty_inode` being the inode of the empty directory it
/// was given (`None`: it was given a missing one):
/// - the directory as it was (absent, or empty with the same inode);
/// - a layout whose index parses, that fsck passes (with no finding at all unless
///   `allow_warnings`) and whose blobs match their names, in the same directory;
/// - an unfinished layout, holding the marker: refused by `ls` as unfinished, and made a layout
///   by `finish` (the next create there).
fn check_new_layout(
    root: &Path,
    empty_inode: Option<u64>,
    finish: Vec<OsString>,
    context: &str,
    allow_warnings: bool,
    tally: &mut Tally,
) {
    let Ok(metadata) = fs::symlink_metadata(root) else {
        assert!(empty_inode.is_none(), "{context}: the empty directory went");
        tally.untouched += 1;
        return;
    };
    if let Some(inode) = empty_inode {
        assert_eq!(
            metadata.ino(),
            inode,
            "{context}: the directory was replaced"
        );
    }
    let names = names_in(root);
    if names.is_empty() {
        tally.untouched += 1;
        return;
    }
    if names.iter().any(|n| n == MARKER) {
        tally.unfinished_left += 1;
        let refused = run(args!["ls", root]);
        assert!(
            refused.code == 1 && refused.stderr.contains("unfinished"),
            "{context}: an unfinished layout was opened: {}",
            refused.stderr
        );
        run(finish).success();
        assert!(!root.join(MARKER).exists(), "{context}");
        check_fsck(root, &format!("{context}, finished"), false);
    }
    check_index(root, &BTreeSet::new(), context);
    check_fsck(root, context, allow_warnings);
    check_blobs_match_their_names(root, &mut Verified::new(), &format!("{context}, before gc"));
}

/// Files already hashed, by name, inode, size and mtime: a blob never changes once named, so
/// each is hashed once however many iterations see it.
type Verified = BTreeSet<(String, u64, u64, i64, i64)>;

/// Every file under `blobs/<alg>/` whose name is a digest hashes to it.
fn check_blobs_match_their_names(root: &Path, verified: &mut Verified, context: &str) {
    let Ok(algorithms) = fs::read_dir(root.join("blobs")) else {
        return;
    };
    for algorithm in algorithms {
        let algorithm = algorithm.unwrap();
        let name = algorithm.file_name().to_string_lossy().into_owned();
        for entry in fs::read_dir(algorithm.path()).unwrap() {
            let entry = entry.unwrap();
            let encoded = entry.file_name().to_string_lossy().into_owned();
            let Ok(digest) = oci_core::Digest::parse(&format!("{name}:{encoded}")) else {
                assert!(
                    !encoded.starts_with(".tmp-") || context.contains("before gc"),
                    "{context}: {} left after gc",
                    entry.path().display()
                );
                continue;
            };
            let meta = fs::symlink_metadata(entry.path()).unwrap();
            assert!(meta.is_file(), "{context}: {digest} is not a regular file");
            let key = (
                digest.to_string(),
                meta.ino(),
                meta.size(),
                meta.mtime(),
                meta.mtime_nsec(),
            );
            if verified.contains(&key) {
                continue;
            }
            let content = fs::read(entry.path()).unwrap();
            let actual = digest.algorithm().digest(&content);
            assert_eq!(
                actual, digest,
                "{context}: a blob is visible under a name its content does not hash to"
            );
            verified.insert(key);
        }
    }
}

/// `index.json` parses, and every ref of `must_have` is in it.
fn check_index(root: &Path, must_have: &BTreeSet<String>, context: &str) -> BTreeSet<String> {
    let bytes =
        fs::read(root.join("index.json")).unwrap_or_else(|e| panic!("{context}: index.json: {e}"));
    let index: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{context}: index.json does not parse: {e}"));
    let refs: BTreeSet<String> = index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("{context}: manifests is not an array"))
        .iter()
        .filter_map(|e| e["annotations"][REF_NAME].as_str().map(str::to_owned))
        .collect();
    let lost: Vec<&String> = must_have.difference(&refs).collect();
    assert!(lost.is_empty(), "{context}: refs lost: {lost:?}");
    refs
}

/// fsck finds no error (warnings about leftover temp files are allowed before gc).
fn check_fsck(root: &Path, context: &str, allow_warnings: bool) {
    let (code, report) = fsck_json(root);
    assert_eq!(code, 0, "{context}: fsck found errors: {report:#}");
    if !allow_warnings {
        assert_eq!(report["findings"], json!([]), "{context}: {report:#}");
    }
}

/// Every path under `root` whose name starts with `.tmp-`.
fn temp_files(root: &Path) -> Vec<PathBuf> {
    files_under(root)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".tmp-")
        })
        .collect()
}

/// Writes `mib` MiB for a large blob: one pseudo-random MiB, each copy stamped with its index
/// (what matters here is size and a distinct digest, not entropy).
fn write_large(path: &Path, mib: u64, seed: u64) {
    let mut file = fs::File::create(path).unwrap();
    let mut chunk = pseudo_random(1 << 20, seed);
    for i in 0..mib {
        chunk[..8].copy_from_slice(&i.to_le_bytes());
        file.write_all(&chunk).unwrap();
    }
}

/// Stores a config, the large file as a layer, and a manifest; tags it `reference`. Returns the
/// layer's digest.
fn tag_large_image(layout: &Layout, file: &Path, reference: &str) -> String {
    let (config, _) = layout.put_json(
        &json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "ref": reference}),
        OCI_CONFIG,
    );
    let layer = run(args!["blob", "put", layout.dir, file, "--json"])
        .success()
        .json();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer["digest"], "size": layer["size"]}],
    });
    let (manifest, _) = layout.put_json(&manifest, OCI_MANIFEST);
    layout.tag(manifest["digest"].as_str().unwrap(), reference);
    layer["digest"].as_str().unwrap().to_owned()
}

/// How long an uninterrupted run of `args` takes (the kill moments are drawn below this).
fn duration_of(args: Vec<OsString>) -> Duration {
    let started = Instant::now();
    run(args).success();
    started.elapsed()
}

#[test]
#[ignore = "heavy (about a minute): run by `cargo xtask ci`"]
fn sigkill_at_random_moments() {
    let seed = env_u64("OCI_CRASH_SEED").unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1
    });
    let budget = Duration::from_secs(env_u64("OCI_CRASH_SECONDS").unwrap_or(60));
    let mib = env_u64("OCI_CRASH_MIB").unwrap_or(64);
    eprintln!(
        "crash harness: seed {seed} (OCI_CRASH_SEED={seed} replays it), {mib} MiB blobs, {}s",
        budget.as_secs()
    );
    let mut rng = Prng(seed);

    // The layout under test: a small image and a large one, both tagged.
    let layout = Layout::new();
    let base = layout.image("amd64", "linux", "base");
    layout.tag(&base.digest, "base");
    let scratch = layout.scratch();
    let large = scratch.join("large.bin");
    write_large(&large, mib, seed);
    let large_digest = tag_large_image(&layout, &large, "large");
    // What `blob put` writes: a large file whose first bytes change every time, so it is
    // never stored yet.
    let to_put = scratch.join("to-put.bin");
    write_large(&to_put, mib, seed ^ 0x5555);
    // What `unpack` reads: a layout of its own with another large image, packed.
    let source = Layout::new();
    let incoming = scratch.join("incoming.bin");
    write_large(&incoming, mib, seed ^ 0xAAAA);
    tag_large_image(&source, &incoming, "incoming");
    let archive = scratch.join("incoming.tar");
    run(args!["pack", source.dir, archive]).success();
    let out_dir = scratch.join("out");
    fs::create_dir(&out_dir).unwrap();
    let packed = out_dir.join("layout.tar");
    let fresh = scratch.join("fresh");
    let empty = scratch.join("empty");
    let new_init = scratch.join("new-init");
    let get_dir = scratch.join("get");
    fs::create_dir(&get_dir).unwrap();
    let got = get_dir.join("large.bin");

    let mut must_have = BTreeSet::from(["base".to_owned(), "large".to_owned()]);
    let mut verified = Verified::new();
    check_blobs_match_their_names(&layout.dir, &mut verified, "setup before gc");

    // Calibrate: how long each operation takes when left alone.
    let typical: BTreeMap<Op, Duration> = [
        (
            Op::Put,
            duration_of(args!["blob", "put", layout.dir, to_put]),
        ),
        (
            Op::Tag,
            duration_of(args!["tag", layout.dir, base.digest, "calibrate"]),
        ),
        (Op::Pack, duration_of(args!["pack", layout.dir, packed])),
        (Op::Unpack, duration_of(args!["unpack", archive, fresh])),
        (Op::Init, duration_of(args!["init", new_init])),
        (
            Op::GetOut,
            duration_of(args!["blob", "get", layout.dir, large_digest, "-o", got]),
        ),
    ]
    .into_iter()
    .collect();
    fs::remove_dir_all(&fresh).unwrap();
    fs::remove_dir_all(&new_init).unwrap();
    fs::remove_file(&packed).unwrap();
    fs::remove_file(&got).unwrap();
    must_have.insert("calibrate".to_owned());
    // What is beside the new directories: a create leaves nothing there.
    let scratch_names: BTreeSet<String> = names_in(&scratch).into_iter().collect();
    eprintln!("crash harness: uninterrupted durations {typical:?}");

    let mut tally = Tally::default();
    let started = Instant::now();
    while started.elapsed() < budget && tally.iterations < 1000 {
        let i = tally.iterations;
        tally.iterations += 1;
        let op = match rng.below(100) {
            0..23 => Op::Put,
            23..35 => Op::Tag,
            35..53 => Op::Pack,
            53..66 => Op::Unpack,
            66..76 => Op::UnpackNew,
            76..84 => Op::UnpackEmpty,
            84..90 => Op::Init,
            _ => Op::GetOut,
        };
        let empty_inode = (op == Op::UnpackEmpty).then(|| {
            fs::create_dir(&empty).unwrap();
            fs::metadata(&empty).unwrap().ino()
        });
        let relaxed = rng.below(2) == 1;
        let mut a = match op {
            Op::Put => {
                let mut file = fs::OpenOptions::new().write(true).open(&to_put).unwrap();
                file.seek(SeekFrom::Start(0)).unwrap();
                file.write_all(&(i as u64).to_le_bytes()).unwrap();
                args!["blob", "put", layout.dir, to_put]
            }
            Op::Tag => args!["tag", layout.dir, base.digest, format!("t{i}")],
            Op::Pack => args!["pack", layout.dir, packed],
            Op::Unpack => args!["unpack", archive, layout.dir],
            Op::UnpackNew => args!["unpack", archive, fresh],
            Op::UnpackEmpty => args!["unpack", archive, empty],
            Op::Init => args!["init", new_init],
            Op::GetOut => args!["blob", "get", layout.dir, large_digest, "-o", got],
        };
        if relaxed {
            a.push("--relaxed".into());
        }
        let typical = typical[&match op {
            Op::UnpackNew | Op::UnpackEmpty => Op::Unpack,
            other => other,
        }];
        // Anywhere in the typical duration; a run that is faster this time finishes first.
        let delay = Duration::from_nanos(rng.below(typical.as_nanos() as u64 + 1));
        let mut child = command(&a)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start oci-layout");
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().unwrap();
        let context = format!(
            "iteration {i} (seed {seed}): {op:?} {} killed after {delay:?}",
            show(&a)
        );
        let finished = match status.signal() {
            Some(9) => {
                *tally.killed.entry(op).or_default() += 1;
                false
            }
            Some(other) => panic!("{context}: died of signal {other}"),
            None => {
                assert!(status.success(), "{context}: failed: {status}");
                *tally.finished.entry(op).or_default() += 1;
                true
            }
        };

        // What the kill left.
        let refs = check_index(&layout.dir, &must_have, &context);
        if op == Op::Tag && refs.contains(&format!("t{i}")) {
            must_have.insert(format!("t{i}"));
        }
        check_fsck(&layout.dir, &context, true);
        check_blobs_match_their_names(&layout.dir, &mut verified, &format!("{context}, before gc"));
        if op == Op::Pack {
            for name in names_in(&out_dir) {
                let path = out_dir.join(&name);
                assert!(
                    name == "layout.tar" || name.starts_with(".layout.tar."),
                    "{context}: pack left {name} in its output directory"
                );
                // Present means complete: it reads back and verifies.
                let checked = run(args!["fsck", path, "--json"]);
                assert!(
                    checked.code == 0 && checked.json()["findings"] == json!([]),
                    "{context}: pack left an incomplete or broken {name}: {}",
                    checked.stderr
                );
                if name != "layout.tar" {
                    tally.pack_link_window += 1;
                    fs::remove_file(&path).unwrap();
                }
            }
        }
        if op == Op::GetOut {
            for name in names_in(&get_dir) {
                let path = get_dir.join(&name);
                assert!(
                    name == "large.bin" || name.starts_with(".large.bin."),
                    "{context}: blob get left {name} in its output directory"
                );
                // Present means complete and correct.
                let content = fs::read(&path).unwrap();
                let digest = oci_core::Digest::parse(&large_digest).unwrap();
                assert!(
                    content.len() as u64 == mib << 20
                        && digest.algorithm().digest(&content) == digest,
                    "{context}: blob get left an incomplete or wrong {name} ({} bytes)",
                    content.len()
                );
                if name != "large.bin" {
                    tally.get_link_window += 1;
                }
                fs::remove_file(&path).unwrap();
            }
        }
        if let Some((root, finish)) = match op {
            Op::UnpackNew => Some((&fresh, args!["unpack", archive, fresh])),
            Op::UnpackEmpty => Some((&empty, args!["unpack", archive, empty])),
            Op::Init => Some((&new_init, args!["init", new_init])),
            _ => None,
        } {
            // As it was, a layout, or unfinished: a killed init leaves no temp file in it
            // either.
            assert!(
                !finished || fs::symlink_metadata(root.join(MARKER)).is_err(),
                "{context}: a create that finished left its marker"
            );
            check_new_layout(
                root,
                empty_inode,
                finish,
                &context,
                op != Op::Init,
                &mut tally,
            );
            let mut beside: BTreeSet<String> = names_in(&scratch).into_iter().collect();
            beside.remove(&*root.file_name().unwrap().to_string_lossy());
            assert_eq!(beside, scratch_names, "{context}: left something beside it");
            // Killed before it made the directory, there is nothing to remove.
            let _ = fs::remove_dir_all(root);
        }

        // gc then leaves no debris, and the next unpack starts without the incoming image.
        run(args!["untag", layout.dir, "incoming"]).success();
        run(args!["gc", layout.dir, "--grace", "0s"]).success();
        let debris = temp_files(&layout.dir);
        assert!(debris.is_empty(), "{context}: gc left {debris:?}");
        check_fsck(&layout.dir, &format!("{context}, after gc"), false);
        check_blobs_match_their_names(&layout.dir, &mut verified, &format!("{context}, after gc"));
        let left = check_index(&layout.dir, &must_have, &context);
        assert!(!left.contains("incoming"));
    }

    let killed: usize = tally.killed.values().sum();
    eprintln!(
        "crash harness: seed {seed}: {} iterations in {:.0?}, {killed} killed mid-run {:?}, \
         {} finished before the kill {:?}, {} archives and {} got files caught between link and \
         rename, {} creates killed before they changed anything, {} unfinished layouts left by \
         killed creates (all refused, then finished)",
        tally.iterations,
        started.elapsed(),
        tally.killed,
        tally.finished.values().sum::<usize>(),
        tally.finished,
        tally.pack_link_window,
        tally.get_link_window,
        tally.untouched,
        tally.unfinished_left,
    );
    assert!(
        tally.iterations >= 10,
        "too few iterations to mean anything"
    );
    assert!(killed > 0, "no operation was ever killed mid-run");
}
