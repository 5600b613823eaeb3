//! `image unpack`: the target rules and errors as a user meets them, a killed unpack, and
//! the tree it gives against `umoci unpack` of the same image (ours, umoci's own with
//! `insert` and `repack` deletions, and a multi-layer one skopeo copied). The umoci and
//! skopeo tests print `SKIPPED ...` without the tools, and fail with
//! `OCI_LAYOUT_REQUIRE_INTEROP=1`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// A tree with what unpacks get wrong: setuid and setgid files, hard links, symlinks
/// (relative, absolute, dangling), a FIFO, directories with odd modes, a sticky directory,
/// other owners, an extended attribute.
fn fixture(root: &Path) {
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::create_dir_all(root.join("etc/odd")).unwrap();
    fs::create_dir_all(root.join("tmp")).unwrap();
    fs::write(root.join("usr/bin/tool"), "#!/bin/true\n").unwrap();
    fs::set_permissions(
        root.join("usr/bin/tool"),
        fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    fs::write(root.join("usr/bin/group"), "g").unwrap();
    fs::set_permissions(
        root.join("usr/bin/group"),
        fs::Permissions::from_mode(0o2711),
    )
    .unwrap();
    fs::hard_link(root.join("usr/bin/tool"), root.join("usr/bin/tool-link")).unwrap();
    fs::write(root.join("etc/config"), "key=value\n").unwrap();
    fs::write(root.join("etc/remove-me"), "gone later\n").unwrap();
    symlink("../usr/bin/tool", root.join("etc/relative")).unwrap();
    symlink("/usr/bin/tool", root.join("etc/absolute")).unwrap();
    symlink("/nowhere", root.join("etc/dangling")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("etc/fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    fs::set_permissions(root.join("etc/fifo"), fs::Permissions::from_mode(0o640)).unwrap();
    if rustix::process::geteuid().is_root() {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("etc/null"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
        fs::set_permissions(root.join("etc/null"), fs::Permissions::from_mode(0o666)).unwrap();
    }
    fs::set_permissions(root.join("etc/odd"), fs::Permissions::from_mode(0o711)).unwrap();
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::write(root.join("etc/owned"), "owned").unwrap();
    rustix::fs::chown(
        root.join("etc/owned"),
        Some(rustix::fs::Uid::from_raw(1000)),
        Some(rustix::fs::Gid::from_raw(1001)),
    )
    .unwrap();
    rustix::fs::setxattr(
        root.join("etc/config"),
        "user.origin",
        b"fixture",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
}

/// What a tree holds, per path: type, mode, owner, size, content, link target, xattrs (and
/// for files, how many links they have).
fn tree(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        for entry in fs::read_dir(root.join(&relative)).unwrap() {
            let entry = entry.unwrap();
            let path = relative.join(entry.file_name());
            let full = root.join(&path);
            let meta = fs::symlink_metadata(&full).unwrap();
            let kind = meta.file_type();
            let what = if kind.is_dir() {
                stack.push(path.clone());
                "dir".to_owned()
            } else if kind.is_symlink() {
                format!("symlink {}", fs::read_link(&full).unwrap().display())
            } else if kind.is_file() {
                format!(
                    "file size {} links {} {:?}",
                    meta.len(),
                    meta.nlink(),
                    String::from_utf8_lossy(&fs::read(&full).unwrap())
                )
            } else if kind.is_fifo() {
                "fifo".to_owned()
            } else if kind.is_char_device() {
                format!("char {}", meta.rdev())
            } else {
                "other".to_owned()
            };
            let mut xattrs = Vec::new();
            if !kind.is_symlink() {
                let mut names = vec![0u8; 4096];
                let n = rustix::fs::llistxattr(&full, &mut names).unwrap_or(0);
                for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
                    let name = String::from_utf8_lossy(name).into_owned();
                    let mut value = vec![0u8; 4096];
                    let len = rustix::fs::lgetxattr(&full, name.as_str(), &mut value).unwrap_or(0);
                    xattrs.push(format!(
                        "{name}={:?}",
                        String::from_utf8_lossy(&value[..len])
                    ));
                }
            }
            let mode = if kind.is_symlink() {
                0
            } else {
                meta.mode() & 0o7777
            };
            out.insert(
                path,
                format!(
                    "{what} mode {mode:o} owner {}:{} xattrs {xattrs:?}",
                    meta.uid(),
                    meta.gid()
                ),
            );
        }
    }
    out
}

fn assert_same_tree(ours: &Path, theirs: &Path) {
    let (ours, theirs) = (tree(ours), tree(theirs));
    let differences: Vec<String> = ours
        .keys()
        .chain(theirs.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|path| ours.get(*path) != theirs.get(*path))
        .map(|path| {
            format!(
                "{}:\n  ours   {:?}\n  umoci  {:?}",
                path.display(),
                ours.get(path),
                theirs.get(path)
            )
        })
        .collect();
    assert!(
        differences.is_empty(),
        "the trees differ:\n{}",
        differences.join("\n")
    );
    assert!(ours.len() > 3, "a tree was compared: {ours:?}");
}

/// `umoci unpack` of `image` (`DIR:REF`) as root (as the current user, rootless), returning
/// its rootfs.
fn umoci_unpack(image: &str, bundle: &Path) -> PathBuf {
    umoci_unpack_as(image, bundle, !rustix::process::geteuid().is_root())
}

fn umoci_unpack_as(image: &str, bundle: &Path, rootless: bool) -> PathBuf {
    let mut args = vec![os("unpack"), os("--image"), os(image)];
    if rootless {
        args.push(os("--rootless"));
    }
    args.push(bundle.as_os_str());
    tool("umoci", &args);
    bundle.join("rootfs")
}

#[test]
fn unpack_gives_umocis_tree_for_an_image_we_build() {
    if !have(
        "image_unpack::unpack_gives_umocis_tree_for_an_image_we_build",
        &["umoci"],
    ) {
        return;
    }
    let layout = Layout::new();
    let rootfs = layout.tmp().join("rootfs");
    fixture(&rootfs);
    run(args![
        "image",
        "create",
        layout.dir,
        "--tag",
        "app",
        "--from-dir",
        rootfs
    ])
    .success();
    let ours = layout.tmp().join("ours");
    run(args!["image", "unpack", layout.dir, "app", ours]).success();
    let theirs = umoci_unpack(
        &format!("{}:app", layout.dir.display()),
        &layout.tmp().join("bundle"),
    );
    assert_same_tree(&ours, &theirs);
    // And both are the tree we started from.
    assert_same_tree(&ours, &rootfs);
}

/// Rootless (forced, whoever runs it): owners left as the user's, the image's recorded in
/// `user.rootlesscontainers` as umoci records them, devices as empty files.
#[test]
fn a_rootless_unpack_gives_umocis_rootless_tree() {
    if !have(
        "image_unpack::a_rootless_unpack_gives_umocis_rootless_tree",
        &["umoci"],
    ) {
        return;
    }
    let layout = Layout::new();
    let rootfs = layout.tmp().join("rootfs");
    fixture(&rootfs);
    run(args![
        "image",
        "create",
        layout.dir,
        "--tag",
        "app",
        "--from-dir",
        rootfs
    ])
    .success();
    let ours = layout.tmp().join("ours");
    let report = run(args![
        "image",
        "unpack",
        layout.dir,
        "app",
        ours,
        "--rootless",
        "--json"
    ])
    .success()
    .json();
    assert_eq!(report["rootless"], true);
    let theirs = umoci_unpack_as(
        &format!("{}:app", layout.dir.display()),
        &layout.tmp().join("bundle"),
        true,
    );
    assert_same_tree(&ours, &theirs);
    let mut record = vec![0u8; 64];
    let n = rustix::fs::getxattr(
        ours.join("etc/owned"),
        "user.rootlesscontainers",
        &mut record,
    )
    .unwrap();
    assert_eq!(
        &record[..n],
        [0x08, 0xe8, 0x07, 0x10, 0xe9, 0x07],
        "uid 1000, gid 1001"
    );
}

#[test]
fn unpack_gives_umocis_tree_for_an_image_umoci_builds_and_repacks_with_deletions() {
    if !have(
        "image_unpack::unpack_gives_umocis_tree_for_an_image_umoci_builds_and_repacks_with_deletions",
        &["umoci"],
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("umoci");
    let image = |tag: &str| format!("{}:{tag}", layout.display());
    tool("umoci", &[os("init"), os("--layout"), layout.as_os_str()]);
    tool("umoci", &[os("new"), os("--image"), os(&image("base"))]);
    let rootfs = tmp.path().join("rootfs");
    fixture(&rootfs);
    tool(
        "umoci",
        &[
            os("insert"),
            os("--image"),
            os(&image("base")),
            rootfs.as_os_str(),
            os("/app"),
        ],
    );
    // Deletions: unpack, remove a file and a directory, repack (whiteouts).
    let work = tmp.path().join("work");
    umoci_unpack(&image("base"), &work);
    fs::remove_file(work.join("rootfs/app/etc/remove-me")).unwrap();
    fs::remove_dir_all(work.join("rootfs/app/usr")).unwrap();
    tool(
        "umoci",
        &[
            os("repack"),
            os("--image"),
            os(&image("changed")),
            work.as_os_str(),
        ],
    );

    for tag in ["base", "changed"] {
        let ours = tmp.path().join(format!("ours-{tag}"));
        run(args!["image", "unpack", layout, tag, ours]).success();
        let theirs = umoci_unpack(&image(tag), &tmp.path().join(format!("bundle-{tag}")));
        assert_same_tree(&ours, &theirs);
    }
    let changed = tmp.path().join("ours-changed");
    assert!(!changed.join("app/etc/remove-me").exists() && !changed.join("app/usr").exists());
    assert!(changed.join("app/etc/config").exists());
}

#[test]
fn unpack_gives_umocis_tree_for_a_multi_layer_image_skopeo_copies() {
    if !have(
        "image_unpack::unpack_gives_umocis_tree_for_a_multi_layer_image_skopeo_copies",
        &["umoci", "skopeo"],
    ) {
        return;
    }
    let layout = Layout::new();
    let first = layout.tmp().join("first");
    fixture(&first);
    let second = layout.tmp().join("second");
    fs::create_dir_all(second.join("etc")).unwrap();
    fs::write(second.join("etc/config"), "replaced\n").unwrap();
    fs::write(second.join("etc/added"), "added\n").unwrap();
    run(args![
        "image",
        "create",
        layout.dir,
        "--tag",
        "one",
        "--from-dir",
        first
    ])
    .success();
    run(args![
        "image",
        "create",
        layout.dir,
        "--tag",
        "two",
        "--base",
        "one",
        "--from-dir",
        second,
    ])
    .success();
    // A third layer (gzip: the umoci here reads no zstd).
    let third = layout.tmp().join("third");
    fs::create_dir_all(third.join("usr/bin")).unwrap();
    fs::write(third.join("usr/bin/tool"), "replaced tool\n").unwrap();
    run(args![
        "image",
        "create",
        layout.dir,
        "--tag",
        "three",
        "--base",
        "two",
        "--from-dir",
        third
    ])
    .success();
    let copied = layout.tmp().join("copied");
    tool(
        "skopeo",
        &[
            os("copy"),
            os(&format!("oci:{}:three", layout.dir.display())),
            os(&format!("oci:{}:three", copied.display())),
        ],
    );
    let ours = layout.tmp().join("ours");
    let report = run(args!["image", "unpack", copied, "three", ours, "--json"])
        .success()
        .json();
    assert_eq!(report["layers"], 3);
    assert_eq!(
        fs::read_to_string(ours.join("usr/bin/tool")).unwrap(),
        "replaced tool\n"
    );
    // The hard link of layer 1 keeps layer 1's content.
    assert_eq!(
        fs::read_to_string(ours.join("usr/bin/tool-link")).unwrap(),
        "#!/bin/true\n"
    );
    assert_eq!(
        fs::read_to_string(ours.join("etc/config")).unwrap(),
        "replaced\n"
    );
    let theirs = umoci_unpack(
        &format!("{}:three", copied.display()),
        &layout.tmp().join("bundle"),
    );
    assert_same_tree(&ours, &theirs);
}

#[test]
fn unpack_refuses_a_non_empty_directory_and_bad_values() {
    let layout = Layout::new();
    let rootfs = layout.tmp().join("rootfs");
    fs::create_dir_all(&rootfs).unwrap();
    fs::write(rootfs.join("f"), "f").unwrap();
    run(args![
        "image",
        "create",
        layout.dir,
        "--tag",
        "app",
        "--from-dir",
        rootfs
    ])
    .success();
    let full = layout.tmp().join("full");
    fs::create_dir(&full).unwrap();
    fs::write(full.join("mine"), "mine").unwrap();
    run(args!["image", "unpack", layout.dir, "app", full]).failure_naming(&["full", "not empty"]);
    assert_eq!(names_in(&full), ["mine"]);
    run(args![
        "image",
        "unpack",
        layout.dir,
        "app",
        layout.tmp().join("x"),
        "--platform",
        "nope"
    ])
    .usage_error();
    run(args![
        "image",
        "unpack",
        layout.dir,
        "nosuchref",
        layout.tmp().join("x")
    ])
    .failure_naming(&["nosuchref"]);
    assert!(!layout.tmp().join("x").exists());
    // An archive is a store too.
    let archive = layout.tmp().join("img.tar");
    run(args!["pack", layout.dir, archive]).success();
    let out = layout.tmp().join("from-archive");
    let json = run(args!["image", "unpack", archive, "app", out, "--json"])
        .success()
        .json();
    assert_eq!(json["layers"], 1);
    assert_eq!(fs::read_to_string(out.join("f")).unwrap(), "f");
}

#[test]
fn a_killed_unpack_leaves_no_directory() {
    let layout = Layout::new();
    let rootfs = layout.tmp().join("rootfs");
    fs::create_dir_all(&rootfs).unwrap();
    // Large enough to take a while to write, small to store: zeros compress to nothing.
    for i in 0..3 {
        fs::File::create(rootfs.join(format!("big{i}")))
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
    }
    run(args![
        "image",
        "create",
        layout.dir,
        "--tag",
        "big",
        "--from-dir",
        rootfs
    ])
    .success();
    let parent = layout.tmp().join("parent");
    fs::create_dir(&parent).unwrap();
    let target = parent.join("dir");
    let args = args!["image", "unpack", layout.dir, "big", target];
    let mut child = command(&args).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Killed once it is writing: its temporary directory has something in it.
    loop {
        let writing = fs::read_dir(&parent).unwrap().any(|e| {
            let e = e.unwrap();
            e.file_name().to_string_lossy().starts_with(".dir.unpack-")
                && fs::read_dir(e.path()).is_ok_and(|mut d| d.next().is_some())
        });
        if writing {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the unpack ended before it could be killed"
        );
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    child.wait().unwrap();
    assert!(
        !target.exists(),
        "a killed unpack left {}",
        target.display()
    );
    // A new unpack is not confused by the debris.
    run(args!["image", "unpack", layout.dir, "big", target]).success();
    assert_eq!(fs::metadata(target.join("big0")).unwrap().len(), 64 << 20);
}

/// The round trip a user makes to change an image: unpack, change the tree, `image create
/// --base --diff` (only the changes, with whiteouts), unpack again: the tree is the changed one.
#[test]
fn unpack_change_diff_and_unpack_again_gives_the_changed_tree() {
    let layout = Layout::new();
    let source = layout.tmp().join("source");
    fixture(&source);
    run(args![
        "image",
        "create",
        layout.dir,
        "--tag",
        "base",
        "--from-dir",
        source
    ])
    .success();
    let first = layout.tmp().join("first");
    run(args!["image", "unpack", layout.dir, "base", first]).success();
    assert_same_tree(&first, &source);

    // The changes: content, a new file and directory, a removal, a mode, a symlink retargeted.
    fs::write(first.join("etc/config"), "key=changed value\n").unwrap();
    fs::create_dir_all(first.join("opt/new")).unwrap();
    fs::write(first.join("opt/new/file"), "added").unwrap();
    fs::remove_file(first.join("etc/remove-me")).unwrap();
    fs::set_permissions(
        first.join("usr/bin/group"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs::remove_file(first.join("etc/relative")).unwrap();
    symlink("../usr/bin/group", first.join("etc/relative")).unwrap();

    run(args![
        "image",
        "create",
        layout.dir,
        "--tag",
        "changed",
        "--base",
        "base",
        "--from-dir",
        first,
        "--diff"
    ])
    .success();
    let second = layout.tmp().join("second");
    run(args!["image", "unpack", layout.dir, "changed", second]).success();
    assert_same_tree(&second, &first);
    assert!(!second.join("etc/remove-me").exists());

    // The new layer holds the changes, not the tree again: far fewer entries than the base.
    let json = run(args![
        "image",
        "unpack",
        layout.dir,
        "changed",
        layout.tmp().join("third"),
        "--json"
    ])
    .success()
    .json();
    let base = run(args![
        "image",
        "unpack",
        layout.dir,
        "base",
        layout.tmp().join("fourth"),
        "--json"
    ])
    .success()
    .json();
    assert_eq!(json["layers"], 2);
    let entries = |report: &serde_json::Value| report["entries"].as_u64().unwrap();
    assert!(
        entries(&json) - entries(&base) < entries(&base),
        "the diff layer has {} entries, the base {}",
        entries(&json) - entries(&base),
        entries(&base)
    );
}
