//! The walk of a source tree: a tree that changes under it (an entry swapped between its
//! listing and its opening), what it keeps beyond the tar header (extended attributes, mtimes
//! before 1970), and what it leaves out (sockets and their hard links, the layout being
//! written).

use std::cell::Cell;
use std::os::unix::net::UnixListener;
use std::sync::mpsc;
use std::time::Duration;

use rustix::fs::{AtFlags, CWD, Mode, Timestamps, XattrFlags};

use super::*;

/// The plain tar of a layer.
fn layer_tar(layout: &DirLayout, layer: &Layer) -> Vec<u8> {
    decompress(&blob(layout, layer), layer.descriptor.media_type())
}

/// A PAX record: key and raw value.
type Record = (String, Vec<u8>);

/// Every entry of a plain tar, in order: name, type, header mtime and the PAX records that
/// precede it. Records are split by their length, as POSIX frames them: the tar crate's own
/// reader splits at newlines, which a binary value may hold.
fn entries_with_records(tar_bytes: &[u8]) -> Vec<(Vec<u8>, tar::EntryType, u64, Vec<Record>)> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    let mut records = Vec::new();
    let mut long_name = None;
    for entry in archive.entries().unwrap().raw(true) {
        let mut entry = entry.unwrap();
        let mut data = Vec::new();
        let header = entry.header().clone();
        match header.entry_type() {
            tar::EntryType::XHeader => {
                entry.read_to_end(&mut data).unwrap();
                records = pax_records(&data);
            }
            tar::EntryType::GNULongName => {
                entry.read_to_end(&mut data).unwrap();
                long_name = Some(data.split(|&b| b == 0).next().unwrap().to_vec());
            }
            entry_type => out.push((
                long_name
                    .take()
                    .unwrap_or_else(|| header.path_bytes().into_owned()),
                entry_type,
                header.mtime().unwrap(),
                std::mem::take(&mut records),
            )),
        }
    }
    out
}

/// `<length> <key>=<value>\n` records, each `length` bytes long.
fn pax_records(mut data: &[u8]) -> Vec<Record> {
    let mut records = Vec::new();
    while !data.is_empty() {
        let space = data.iter().position(|&b| b == b' ').unwrap();
        let length: usize = std::str::from_utf8(&data[..space])
            .unwrap()
            .parse()
            .unwrap();
        let (record, rest) = data.split_at(length);
        let record = &record[space + 1..length - 1];
        let equals = record.iter().position(|&b| b == b'=').unwrap();
        records.push((
            String::from_utf8(record[..equals].to_vec()).unwrap(),
            record[equals + 1..].to_vec(),
        ));
        data = rest;
    }
    records
}

/// The PAX records of the entry `name`; panics when there is no such entry.
fn records_of(tar_bytes: &[u8], name: &str) -> Vec<Record> {
    entries_with_records(tar_bytes)
        .into_iter()
        .find(|(n, ..)| n == name.as_bytes())
        .unwrap_or_else(|| panic!("no entry {name}"))
        .3
}

fn names(tar_bytes: &[u8]) -> Vec<String> {
    entries_with_records(tar_bytes)
        .into_iter()
        .map(|(name, ..)| String::from_utf8_lossy(&name).into_owned())
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

// ---------------------------------------------------------------------------------------------
// Extended attributes and mtimes
// ---------------------------------------------------------------------------------------------

/// `cap_net_raw+ep` as the kernel stores it (`struct vfs_cap_data`, revision 2): magic and
/// the effective flag, then permitted and inheritable for capabilities 0-31 and 32-63.
const CAP_NET_RAW_EP: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// Sets an extended attribute on `path` itself (not a symlink's target). `false`, with a
/// visible message, when the filesystem or the kernel refuses it.
fn set_xattr(path: &Path, name: &str, value: &[u8]) -> bool {
    match rustix::fs::lsetxattr(path, name, value, XattrFlags::empty()) {
        Ok(()) => true,
        Err(e) => {
            eprintln!(
                "SKIPPED part of the xattr test: {}: setting {name}: {e}",
                path.display()
            );
            false
        }
    }
}

fn xattr_record(name: &str, value: &[u8]) -> Record {
    (format!("SCHILY.xattr.{name}"), value.to_vec())
}

#[test]
fn extended_attributes_are_kept_as_pax_records_in_name_order() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("rootfs");
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/conf"), "conf").unwrap();
    if !set_xattr(&root.join("etc/conf"), "user.test", b"raw\0bytes\n\xff=") {
        eprintln!(
            "SKIPPED extended_attributes_are_kept_as_pax_records_in_name_order: no user xattrs here"
        );
        return;
    }
    assert!(set_xattr(&root.join("etc/conf"), "user.a", b"1"));
    assert!(set_xattr(&root.join("etc"), "user.dir", b"d"));
    fs::write(root.join("etc/empty-value"), "").unwrap();
    assert!(set_xattr(&root.join("etc/empty-value"), "user.empty", b""));
    assert!(set_xattr(&root.join("etc/empty-value"), "user.full", b"f"));
    // A long name: the PAX header comes before the GNU long-name entry.
    let long = format!("etc/{}", "l".repeat(120));
    fs::write(root.join(&long), "long").unwrap();
    assert!(set_xattr(&root.join(&long), "user.long", b"l"));
    fs::write(root.join("bin/ping"), "ping").unwrap();
    fs::hard_link(root.join("bin/ping"), root.join("bin/ping6")).unwrap();
    symlink("ping", root.join("bin/pong")).unwrap();
    let root_only = is_root()
        && set_xattr(
            &root.join("bin/ping"),
            "security.capability",
            &CAP_NET_RAW_EP,
        )
        && set_xattr(
            &root.join("bin/pong"),
            "trusted.link",
            b"on the link itself",
        )
        && set_xattr(&root.join("etc/conf"), "trusted.t", b"t");
    // An SELinux label belongs to the host's policy: never stored.
    let labelled = is_root()
        && set_xattr(
            &root.join("etc/conf"),
            "security.selinux",
            b"system_u:object_r:etc_t:s0\0",
        );

    let layout = DirLayout::create(t.path().join("layout")).unwrap();
    let layer = write_dir_layer(&layout, &root, &plain(), None).unwrap();
    let tar_bytes = layer_tar(&layout, &layer);
    let mut conf = vec![
        xattr_record("user.a", b"1"),
        xattr_record("user.test", b"raw\0bytes\n\xff="),
    ];
    if root_only {
        conf.insert(0, xattr_record("trusted.t", b"t"));
    }
    assert_eq!(records_of(&tar_bytes, "etc/conf"), conf);
    assert_eq!(
        records_of(&tar_bytes, "etc/"),
        [xattr_record("user.dir", b"d")]
    );
    assert_eq!(
        records_of(&tar_bytes, &long),
        [xattr_record("user.long", b"l")]
    );
    assert_eq!(
        records_of(&tar_bytes, "etc/empty-value"),
        [xattr_record("user.full", b"f")]
    );
    assert_eq!(
        skipped(&layer),
        [(
            "etc/empty-value".to_owned(),
            "extended attribute user.empty: a PAX record cannot hold an empty value".to_owned()
        )]
    );
    if root_only {
        assert_eq!(
            records_of(&tar_bytes, "bin/ping"),
            [xattr_record("security.capability", &CAP_NET_RAW_EP)]
        );
        assert_eq!(
            records_of(&tar_bytes, "bin/pong"),
            [xattr_record("trusted.link", b"on the link itself")]
        );
    } else {
        eprintln!("SKIPPED the security.capability and trusted.* part: not root");
    }
    // The hard link names the first entry, which holds the attributes.
    assert_eq!(records_of(&tar_bytes, "bin/ping6"), []);
    // A value with a newline is framed by its length; our own `--from-tar` reads the layer.
    let tar_file = t.path().join("layer.tar");
    fs::write(&tar_file, &tar_bytes).unwrap();
    let again = write_tar_layer(&layout, &tar_file, &plain(), None).unwrap();
    assert_eq!(again.diff_id, layer.diff_id);
    if labelled {
        assert!(
            !entries_with_records(&tar_bytes)
                .iter()
                .flat_map(|e| &e.3)
                .any(|(key, _)| key.contains("selinux"))
        );
    }
}

/// 1960-01-01T00:00:00Z.
const BEFORE_1970: i64 = -315_619_200;

fn set_mtime(path: &Path, seconds: i64) {
    let time = rustix::fs::Timespec {
        tv_sec: seconds,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: time,
        last_modification: time,
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

#[test]
fn mtimes_before_1970_are_kept_in_pax_records() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("rootfs");
    fs::create_dir_all(root.join("old-dir")).unwrap();
    fs::write(root.join("old-dir/old"), "old").unwrap();
    fs::write(root.join("new"), "new").unwrap();
    symlink("new", root.join("old-link")).unwrap();
    set_mtime(&root.join("old-dir/old"), BEFORE_1970);
    set_mtime(&root.join("old-link"), -1);
    set_mtime(&root.join("old-dir"), BEFORE_1970 + 1);
    set_mtime(&root.join("new"), 1_700_000_000);
    let layout = DirLayout::create(t.path().join("layout")).unwrap();

    let layer = write_dir_layer(&layout, &root, &plain(), None).unwrap();
    let entries = entries_with_records(&layer_tar(&layout, &layer));
    let mtime_record = |seconds: i64| vec![("mtime".to_owned(), seconds.to_string().into_bytes())];
    let expected: Vec<(Vec<u8>, tar::EntryType, u64, Vec<Record>)> = vec![
        (
            b"new".to_vec(),
            tar::EntryType::Regular,
            1_700_000_000,
            vec![],
        ),
        (
            b"old-dir/".to_vec(),
            tar::EntryType::Directory,
            0,
            mtime_record(BEFORE_1970 + 1),
        ),
        (
            b"old-dir/old".to_vec(),
            tar::EntryType::Regular,
            0,
            mtime_record(BEFORE_1970),
        ),
        (
            b"old-link".to_vec(),
            tar::EntryType::Symlink,
            0,
            mtime_record(-1),
        ),
    ];
    assert_eq!(entries, expected);

    // A fixed time is the same for every entry and needs no record.
    let fixed = LayerOptions {
        mtime: Mtime::Fixed(1_600_000_000),
        ..plain()
    };
    let layer = write_dir_layer(&layout, &root, &fixed, None).unwrap();
    for (name, _, mtime, records) in entries_with_records(&layer_tar(&layout, &layer)) {
        assert_eq!((mtime, records), (1_600_000_000, vec![]), "{name:?}");
    }
}
