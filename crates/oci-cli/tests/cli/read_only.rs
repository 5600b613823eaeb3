//! The commands that only read (`ls`, `inspect`, `fsck`, `referrers`, `blob ls`, `blob get`)
//! leave what they read exactly as it was, over every layout of the corpus: no cache, no
//! lease, no lock file, not even a changed time. On a read-only copy they do the same as on a
//! writable one, with no error from a write they tried; where strace is installed, they are
//! seen to try none. And the commands that write refuse an archive, which is read-only, with
//! one line.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use oci_core::Algorithm;
use serde_json::Value;

use crate::support::*;

/// What a path is, as anything a reader could change shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: &'static str,
    mode: u32,
    owner: (u32, u32),
    inode: u64,
    links: u64,
    size: u64,
    modified: (i64, i64),
    changed: (i64, i64),
    /// The sha256 of a file's content.
    content: Option<String>,
}

/// Every path under `root`, `root` included, with its [`Entry`].
fn metadata_snapshot(root: &Path) -> BTreeMap<PathBuf, Entry> {
    fn walk(root: &Path, path: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
        let meta = fs::symlink_metadata(path).unwrap();
        let kind = if meta.is_dir() {
            "dir"
        } else if meta.is_file() {
            "file"
        } else if meta.is_symlink() {
            "symlink"
        } else {
            "other"
        };
        let content = meta.is_file().then(|| {
            Algorithm::Sha256
                .digest(&fs::read(path).unwrap())
                .to_string()
        });
        out.insert(
            path.strip_prefix(root).unwrap().to_path_buf(),
            Entry {
                kind,
                mode: meta.mode(),
                owner: (meta.uid(), meta.gid()),
                inode: meta.ino(),
                links: meta.nlink(),
                size: meta.size(),
                modified: (meta.mtime(), meta.mtime_nsec()),
                changed: (meta.ctime(), meta.ctime_nsec()),
                content,
            },
        );
        if meta.is_dir() {
            for entry in fs::read_dir(path).unwrap() {
                walk(root, &entry.unwrap().path(), out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Fails, naming `what` and each path that differs, when `now` is not `before`.
fn assert_unchanged(before: &BTreeMap<PathBuf, Entry>, now: &BTreeMap<PathBuf, Entry>, what: &str) {
    let changes: Vec<String> = before
        .keys()
        .chain(now.keys().filter(|path| !before.contains_key(*path)))
        .filter(|path| before.get(*path) != now.get(*path))
        .map(|path| {
            format!(
                "{}: {:?} -> {:?}",
                path.display(),
                before.get(path),
                now.get(path)
            )
        })
        .collect();
    assert!(changes.is_empty(), "{what}:\n{}", changes.join("\n"));
}

/// Every layout directory of the corpus.
fn corpus_layouts() -> Vec<PathBuf> {
    let mut layouts: Vec<PathBuf> = fs::read_dir(corpus().join("layouts"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    layouts.sort();
    assert!(layouts.len() >= 11, "the corpus lost layouts: {layouts:?}");
    layouts
}

/// What the read commands are asked about in `layout`: its ref names and index digests (read
/// leniently from `index.json`, which may be broken), and every file under a digest name.
fn targets(layout: &Path) -> (Vec<String>, Vec<String>) {
    let mut subjects = vec!["no-such-ref".to_owned()];
    if let Ok(index) =
        serde_json::from_slice::<Value>(&fs::read(layout.join("index.json")).unwrap())
    {
        for entry in index["manifests"].as_array().into_iter().flatten() {
            if let Some(name) = entry["annotations"][REF_NAME].as_str() {
                subjects.push(name.to_owned());
            }
            if let Some(digest) = entry["digest"].as_str() {
                subjects.push(digest.to_owned());
            }
        }
    }
    subjects.sort();
    subjects.dedup();
    let mut blobs = Vec::new();
    if let Ok(algorithms) = fs::read_dir(layout.join("blobs")) {
        for algorithm in algorithms {
            let algorithm = algorithm.unwrap();
            for blob in fs::read_dir(algorithm.path()).unwrap() {
                blobs.push(format!(
                    "{}:{}",
                    algorithm.file_name().to_string_lossy(),
                    blob.unwrap().file_name().to_string_lossy()
                ));
            }
        }
    }
    blobs.sort();
    (subjects, blobs)
}

/// Every read command over `layout`, with `out` as the file `blob get -o` writes.
fn read_commands(layout: &Path, out: &Path) -> Vec<Vec<OsString>> {
    let (subjects, blobs) = targets(layout);
    let mut commands = vec![
        args!["ls", layout],
        args!["ls", layout, "--json"],
        args!["fsck", layout],
        args!["fsck", layout, "--json"],
        args!["blob", "ls", layout],
        args!["blob", "ls", layout, "--json"],
    ];
    for subject in &subjects {
        commands.extend([
            args!["inspect", layout, subject],
            args!["inspect", layout, subject, "--json"],
            args!["referrers", layout, subject],
            args!["referrers", layout, subject, "--json"],
        ]);
    }
    for blob in &blobs {
        commands.extend([
            args!["blob", "get", layout, blob],
            args!["blob", "get", layout, blob, "-o", out],
        ]);
    }
    commands
}

/// A command's outcome, with the layout's path replaced so that two copies compare.
fn outcome(run: &Run, layout: &Path) -> (i32, String, String) {
    let path = layout.to_str().unwrap();
    (
        run.code,
        String::from_utf8_lossy(&run.stdout).replace(path, "LAYOUT"),
        run.stderr.replace(path, "LAYOUT"),
    )
}

/// Copies a corpus layout to `dir`, as it is: files keep their modes.
fn copy_layout(from: &Path, dir: &Path) {
    let status = Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Makes every file and directory under `dir` read-only, as `chmod -R a-w` does.
fn make_read_only(dir: &Path) {
    let status = Command::new("chmod")
        .args(["-R", "a-w"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
}

/// `dir` mounted read-only over itself, so that even root's writes fail there (`EROFS`);
/// unmounted on drop. `None`, with a visible SKIP line, where mounting is not permitted.
struct ReadOnlyMount {
    dir: PathBuf,
}

impl ReadOnlyMount {
    fn over(dir: &Path) -> Option<ReadOnlyMount> {
        let mount = |args: &[&str]| {
            Command::new("mount")
                .args(args)
                .arg(dir)
                .arg(dir)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !mount(&["--bind"]) {
            skip("the read-only mount: cannot bind-mount here (needs root)");
            return None;
        }
        let guard = ReadOnlyMount {
            dir: dir.to_path_buf(),
        };
        if !mount(&["-o", "remount,bind,ro"]) {
            skip("the read-only mount: cannot remount read-only here");
            return None;
        }
        Some(guard)
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

fn skip(what: &str) {
    let message =
        format!("SKIPPED {what}, in read_only::every_read_command_leaves_every_corpus_layout");
    // libtest captures `eprintln!` of passing tests, not the raw handle.
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

/// The syscalls that change a file system; `openat` counts when it opens to write or create.
const WRITING_SYSCALLS: &str = "openat,open,creat,mkdir,mkdirat,unlink,unlinkat,rmdir,rename,\
     renameat,renameat2,link,linkat,symlink,symlinkat,chmod,fchmod,fchmodat,chown,fchown,\
     fchownat,lchown,utimes,utimensat,futimesat,truncate,ftruncate,setxattr,lsetxattr,fsetxattr,\
     removexattr,lremovexattr,fremovexattr,mknod,mknodat,fallocate";

/// How to run strace here: `None` when it is not on `PATH`. Where it can filter in the kernel
/// (`--seccomp-bpf`, strace 5.3), the untraced calls do not stop the process.
fn strace_options() -> Option<Vec<&'static str>> {
    which("strace")?;
    let filtered = Command::new("strace")
        .args([
            "-f",
            "--seccomp-bpf",
            "-qq",
            "-e",
            "trace=openat",
            "-o",
            "/dev/null",
            "true",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    Some(if filtered {
        vec!["-f", "--seccomp-bpf"]
    } else {
        vec!["-f"]
    })
}

/// Runs `args` under strace; returns the run and the traced calls that would change something
/// under `root` (file descriptors shown as their paths, so `*at` calls show where they point).
fn run_traced(
    strace: &[&str],
    args: Vec<OsString>,
    root: &Path,
    trace: &Path,
) -> (Run, Vec<String>) {
    let output = Command::new("strace")
        .args(strace)
        .args(["-qq", "-y", "-e"])
        .arg(format!("trace={WRITING_SYSCALLS}"))
        .arg("-o")
        .arg(trace)
        .arg(BIN)
        .args(&args)
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::null())
        .output()
        .expect("cannot start strace");
    let run = finish(args, &output);
    let writes = writes_under(&fs::read_to_string(trace).unwrap(), root.to_str().unwrap());
    (run, writes)
}

/// The calls of an strace log (`PID name(args) = result` a line) that would change something
/// under `root`.
fn writes_under(log: &str, root: &str) -> Vec<String> {
    log.lines()
        .filter(|line| {
            let call = line
                .split_once(' ')
                .map_or("", |(_pid, call)| call.trim_start());
            // `<... name resumed>`: the rest of a call whose arguments its first line showed.
            let Some((name, arguments)) = call.split_once('(') else {
                return false;
            };
            if name.starts_with('<') {
                return false;
            }
            let arguments = arguments.rsplit_once(" = ").map_or(arguments, |(a, _)| a);
            if !arguments.contains(root) {
                return false;
            }
            let opens = matches!(name, "open" | "openat");
            !opens
                || ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_TMPFILE"]
                    .iter()
                    .any(|flag| arguments.contains(flag))
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_read_command_leaves_every_corpus_layout_as_it_was_writable_or_read_only() {
    let strace = strace_options();
    if strace.is_none() {
        skip("the syscall trace: strace not on PATH");
    }
    for original in corpus_layouts() {
        let name = original.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = tempfile::tempdir().unwrap();
        let writable = tmp.path().join("writable/layout");
        let read_only = tmp.path().join("read-only/layout");
        for copy in [&writable, &read_only] {
            fs::create_dir_all(copy.parent().unwrap()).unwrap();
            copy_layout(&original, copy);
        }
        // The corpus is read-only: the writable copy is made writable, files and directories.
        let status = Command::new("chmod")
            .args(["-R", "u+w"])
            .arg(&writable)
            .status()
            .unwrap();
        assert!(status.success());
        make_read_only(&read_only);
        assert_eq!(mode(&read_only) & 0o222, 0);
        let out = tmp.path().join("out/blob");
        fs::create_dir_all(out.parent().unwrap()).unwrap();
        let trace = tmp.path().join("out/trace");

        let writable_before = metadata_snapshot(&writable);
        let read_only_before = metadata_snapshot(&read_only);
        let _mount = ReadOnlyMount::over(&read_only);
        let commands = read_commands(&writable, &out);
        assert_eq!(commands.len(), read_commands(&read_only, &out).len());
        for (on_writable, on_read_only) in commands.into_iter().zip(read_commands(&read_only, &out))
        {
            let shown = show(&on_writable);
            let expected = outcome(&run(on_writable), &writable);
            assert_unchanged(
                &writable_before,
                &metadata_snapshot(&writable),
                &format!("{name}: `oci-layout {shown}` changed the layout it read"),
            );
            let shown = show(&on_read_only);
            let got = if let Some(strace) = &strace {
                let (run, writes) = run_traced(strace, on_read_only, &read_only, &trace);
                assert_eq!(
                    writes,
                    Vec::<String>::new(),
                    "{name}: `oci-layout {shown}` tried to change the layout it read"
                );
                run
            } else {
                run(on_read_only)
            };
            assert_eq!(
                outcome(&got, &read_only),
                expected,
                "{name}: `oci-layout {shown}` does otherwise on a read-only copy"
            );
            assert_unchanged(
                &read_only_before,
                &metadata_snapshot(&read_only),
                &format!("{name}: `oci-layout {shown}` changed the read-only layout it read"),
            );
        }
    }
}

#[test]
fn the_commands_that_write_refuse_an_archive_and_leave_it_as_it_was() {
    let layout = Layout::new();
    let image = layout.image("amd64", "linux", "archived");
    layout.tag(&image.digest, "v1");
    let archive = layout.scratch().join("image.tar");
    run(args!["pack", layout.dir, archive]).success();
    let file = layout.scratch().join("file");
    fs::write(&file, b"x").unwrap();
    let rootfs = layout.scratch().join("rootfs");
    fs::create_dir_all(&rootfs).unwrap();
    fs::write(rootfs.join("f"), b"f").unwrap();
    let before = metadata_snapshot(&archive);
    let refused = format!(
        "error: {}: an archive is read-only: unpack it into a layout directory to change it\n",
        archive.display()
    );
    for a in [
        args!["tag", archive, image.digest, "v2"],
        args!["untag", archive, "v1"],
        args!["gc", archive, "--grace", "0s"],
        args!["attach", archive, "v1", "--artifact-type", "a/b", file],
        args!["blob", "put", archive, file],
        args!["blob", "rm", archive, image.config],
        args![
            "image",
            "create",
            archive,
            "--tag",
            "v3",
            "--from-dir",
            rootfs
        ],
        args!["unpack", archive, archive],
    ] {
        let failed = run(a).failure();
        assert_eq!(failed.stderr, refused);
    }
    assert_eq!(metadata_snapshot(&archive), before);
    assert!(
        fs::metadata(&archive).unwrap().permissions().mode() & 0o200 != 0,
        "refused for what it is, not for its mode"
    );
}
