//! The walk of a source tree: a tree that changes under it (an entry swapped between its
//! listing and its opening).

use std::cell::Cell;
use std::sync::mpsc;
use std::time::Duration;

use rustix::fs::{CWD, Mode};

use super::*;

/// The plain tar of a layer.
fn layer_tar(layout: &DirLayout, layer: &Layer) -> Vec<u8> {
    decompress(&blob(layout, layer), layer.descriptor.media_type())
}

fn names(tar_bytes: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(tar_bytes);
    archive
        .entries()
        .unwrap()
        .map(|entry| String::from_utf8_lossy(&entry.unwrap().path_bytes()).into_owned())
        .collect()
}

fn plain() -> LayerOptions {
    LayerOptions {
        compression: Compression::None,
        ..LayerOptions::default()
    }
}

// ---------------------------------------------------------------------------------------------
// An entry swapped under the walk
// ---------------------------------------------------------------------------------------------

/// Calls `swap` once, at the first bytes the walk reads. By then the walk has listed the root
/// (an lstat of each entry) and is reading `a_big`, its first file; every later entry of the
/// root is opened after the swap. A deterministic stand-in for someone racing the build.
struct SwapAtFirstRead<F: Fn()> {
    swap: F,
    done: Cell<bool>,
}

impl<F: Fn()> oci_image::Progress for SwapAtFirstRead<F> {
    fn advance(&self, _: u64) {
        if !self.done.replace(true) {
            (self.swap)();
        }
    }
}

const SECRET: &[u8] = b"SECRET-outside-the-tree";

/// `root/a_big` (read first, over one read), `root/z_secret`, `root/zz_dir/inner`; outside
/// the tree, `outside/secret` and `outside/dir/stolen`.
fn swap_tree(root: &Path, outside: &Path) {
    fs::create_dir_all(root.join("zz_dir")).unwrap();
    fs::write(root.join("a_big"), vec![7u8; 3 << 20]).unwrap();
    fs::write(root.join("z_secret"), [0u8; 100]).unwrap();
    fs::write(root.join("zz_dir/inner"), "inner").unwrap();
    fs::create_dir_all(outside.join("dir")).unwrap();
    fs::write(outside.join("secret"), SECRET.repeat(10)).unwrap();
    fs::write(outside.join("dir/stolen"), SECRET).unwrap();
}

#[test]
fn an_entry_swapped_between_its_listing_and_its_opening_fails_the_layer_and_none_of_it_is_stored() {
    type Swap = fn(&Path, &Path);
    let cases: [(&str, &str, Swap); 4] = [
        (
            "a symlink to a file outside",
            "z_secret",
            |root, outside| {
                fs::remove_file(root.join("z_secret")).unwrap();
                symlink(outside.join("secret"), root.join("z_secret")).unwrap();
            },
        ),
        (
            "another file (a hard link to one outside)",
            "z_secret",
            |root, outside| {
                fs::remove_file(root.join("z_secret")).unwrap();
                fs::hard_link(outside.join("secret"), root.join("z_secret")).unwrap();
            },
        ),
        (
            "a symlink to a directory outside",
            "zz_dir",
            |root, outside| {
                fs::rename(root.join("zz_dir"), outside.join("old")).unwrap();
                symlink(outside.join("dir"), root.join("zz_dir")).unwrap();
            },
        ),
        // Opened for reading in blocking mode, a FIFO without a writer hangs the build.
        ("a FIFO", "z_secret", |root, _| {
            fs::remove_file(root.join("z_secret")).unwrap();
            rustix::fs::mkfifoat(CWD, root.join("z_secret"), Mode::from_raw_mode(0o644)).unwrap();
        }),
    ];
    let mut failures = Vec::new();
    for (what, name, swap) in cases {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("rootfs");
        let outside = t.path().join("outside");
        swap_tree(&root, &outside);
        let layout_path = t.path().join("layout");
        DirLayout::create(&layout_path).unwrap();

        let (done, outcome) = mpsc::channel();
        let (walked, layout_dir) = (root.clone(), layout_path.clone());
        std::thread::spawn(move || {
            let layout = DirLayout::open(&layout_dir).unwrap();
            let progress = SwapAtFirstRead {
                swap: || swap(&walked, &outside),
                done: Cell::new(false),
            };
            let result = write_dir_layer(&layout, &walked, &plain(), Some(&progress))
                .map(|layer| layer_tar(&layout, &layer))
                .map_err(|e| e.to_string());
            let _ = done.send(result);
        });
        let case = format!("{name} swapped for {what}");
        match outcome.recv_timeout(Duration::from_secs(30)) {
            Err(_) => failures.push(format!("{case}: the walk hangs")),
            Ok(Ok(tar_bytes)) => failures.push(format!(
                "{case}: the layer was written, with {:?}{}",
                names(&tar_bytes),
                if tar_bytes.windows(SECRET.len()).any(|w| w == SECRET) {
                    " and content from outside the tree"
                } else {
                    ""
                }
            )),
            Ok(Err(message)) => {
                let expected = format!(
                    "{}: changed while the layer was written",
                    root.join(name).display()
                );
                if !message.starts_with(&expected) {
                    failures.push(format!("{case}: {message}"));
                }
            }
        }
        let layout = DirLayout::open(&layout_path).unwrap();
        if !layout.list_blobs_for_test().is_empty() {
            failures.push(format!("{case}: a blob was stored"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_source_given_through_a_symlink_is_the_directory_it_names() {
    // The root is the one path that is followed: the caller named it.
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("rootfs");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/motd"), "hi").unwrap();
    symlink(&root, t.path().join("alias")).unwrap();
    let layout = DirLayout::create(t.path().join("layout")).unwrap();
    let layer = write_dir_layer(&layout, &t.path().join("alias"), &plain(), None).unwrap();
    assert_eq!(names(&layer_tar(&layout, &layer)), ["etc/", "etc/motd"]);
}
