//! The walk of a source tree: a tree that changes under it (an entry swapped between its
//! listing and its opening), and what it leaves out (sockets and their hard links, the layout
//! being written).

use std::cell::Cell;
use std::os::unix::net::UnixListener;
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

/// What the layer left out, as `(path, reason)`.
fn skipped(layer: &Layer) -> Vec<(String, String)> {
    layer
        .skipped
        .iter()
        .map(|s| (s.path.display().to_string(), s.reason.to_string()))
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

// ---------------------------------------------------------------------------------------------
// Sockets and their hard links
// ---------------------------------------------------------------------------------------------

#[test]
fn a_socket_and_its_hard_links_are_left_out_and_the_layer_extracts_with_gnu_tar() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("rootfs");
    fs::create_dir_all(root.join("run")).unwrap();
    let _listener = UnixListener::bind(root.join("run/a.sock")).unwrap();
    fs::hard_link(root.join("run/a.sock"), root.join("run/b.sock")).unwrap();
    fs::write(root.join("run/c"), "c").unwrap();
    let layout = DirLayout::create(t.path().join("layout")).unwrap();
    let layer = write_dir_layer(&layout, &root, &plain(), None).unwrap();
    let tar_bytes = layer_tar(&layout, &layer);
    assert_eq!(names(&tar_bytes), ["run/", "run/c"]);
    let socket = "a socket cannot be stored in a layer".to_owned();
    assert_eq!(
        skipped(&layer),
        [
            ("run/a.sock".to_owned(), socket.clone()),
            ("run/b.sock".to_owned(), socket)
        ]
    );

    let tar_file = t.path().join("layer.tar");
    fs::write(&tar_file, &tar_bytes).unwrap();
    let out = t.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let extract = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&tar_file)
        .arg("-C")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        extract.status.success(),
        "tar -x: {}",
        String::from_utf8_lossy(&extract.stderr)
    );
    assert_eq!(fs::read(out.join("run/c")).unwrap(), b"c");
}

// ---------------------------------------------------------------------------------------------
// The layout being written
// ---------------------------------------------------------------------------------------------

#[test]
fn the_layout_being_written_is_left_out_of_a_layer_of_a_tree_that_holds_it() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("rootfs");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/motd"), "hi").unwrap();
    fs::write(root.join("zzz"), "last").unwrap();
    DirLayout::create(root.join("img")).unwrap();
    // The same layout by another path: it is known by its device and inode, not its name.
    symlink(root.join("img"), t.path().join("alias")).unwrap();
    for layout_path in [root.join("img"), t.path().join("alias")] {
        let layout = DirLayout::open(&layout_path).unwrap();
        let layer = write_dir_layer(&layout, &root, &plain(), None).unwrap();
        assert_eq!(
            names(&layer_tar(&layout, &layer)),
            ["etc/", "etc/motd", "zzz"],
            "{}",
            layout_path.display()
        );
        assert_eq!(
            skipped(&layer),
            [(
                "img".to_owned(),
                "the layout the layer is written into cannot be part of it".to_owned()
            )]
        );
    }
    let layout = DirLayout::open(root.join("img")).unwrap();
    let err = write_dir_layer(&layout, &root.join("img"), &plain(), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: is the layout the layer is written into",
            root.join("img").display()
        )
    );
}
