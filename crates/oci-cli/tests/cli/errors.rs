//! Exit codes, usage errors, every invalid digest vector against every command that takes a
//! digest, and input meant to break things.

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::symlink;

use serde_json::json;

use crate::support::*;

#[test]
fn usage_errors_exit_2() {
    let layout = Layout::new();
    let digest = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    let before = layout.snapshot();
    // No subcommand at all: clap prints the help (many lines, not `error: `), still exit 2.
    for a in [args![], args!["blob"], args!["--relaxed"]] {
        let shown = run(a);
        assert_eq!(shown.code, 2, "{}: {}", show(&shown.args), shown.stderr);
        assert!(shown.stderr.contains("Usage:"), "{}", shown.stderr);
        assert!(shown.stdout.is_empty());
    }
    let cases: Vec<Vec<OsString>> = vec![
        args!["frobnicate"],
        args!["blob", "frobnicate", layout.dir],
        args!["init"],
        args!["blob", "get", layout.dir],
        args!["blob", "rm", layout.dir],
        args!["blob", "put"],
        args!["blob", "ls"],
        args!["tag", layout.dir, digest],
        args!["untag", layout.dir],
        args!["ls"],
        args!["ls", layout.dir, "--frobnicate"],
        args!["blob", "put", layout.dir, "--algorithm", "md5"],
        args!["blob", "put", layout.dir, "--algorithm"],
        args!["blob", "put", layout.dir, "--expect-size", "-1"],
        args!["blob", "put", layout.dir, "--expect-size", "three"],
        args![
            "blob",
            "put",
            layout.dir,
            "--expect-size",
            "18446744073709551616"
        ],
        args!["blob", "get", layout.dir, digest, "-o"],
        args!["tag", layout.dir, digest, "v1", "extra"],
        args!["init", layout.dir, "extra"],
        // A ref that looks like an option must come after `--`.
        args!["tag", layout.dir, digest, "--21js8CAS"],
    ];
    for a in cases {
        let failed = run(a).usage_error();
        assert!(failed.stdout.is_empty(), "{}", show(&failed.args));
    }
    assert_eq!(
        layout.snapshot(),
        before,
        "a usage error changed the layout"
    );
}

#[test]
fn help_and_version_exit_0() {
    for a in [
        args!["--help"],
        args!["-h"],
        args!["--version"],
        args!["blob", "--help"],
        args!["blob", "put", "--help"],
        args!["tag", "--help"],
    ] {
        let shown = run(a).success();
        assert!(!shown.stdout.is_empty());
    }
    let version = run(args!["--version"]).success().stdout_str();
    assert!(version.starts_with("oci-layout "), "{version}");
}

/// Every invalid digest of `digests.json` (verdict other than "valid") is refused by `blob
/// get`, `blob get -o`, `blob rm`, `tag`, `blob put --expect-digest`, and as the SUBJECT of
/// `attach` and `referrers` (and the target of `inspect`, where the binary has it), which take
/// a ref or a digest: exit 1, one error line quoting it, no panic, nothing written. Every input, the empty string included, reaches the
/// binary as one argv entry (clap accepts an empty positional value and an empty option value,
/// so no case needs skipping).
#[test]
fn every_invalid_digest_vector_is_refused_by_every_command() {
    let layout = Layout::new();
    let image = layout.image("amd64", "linux", "vectors");
    layout.tag(&image.digest, "v1");
    let out_dir = layout.scratch().join("out");
    fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("blob");
    let attachment = layout.scratch().join("attachment");
    fs::write(&attachment, b"attachment").unwrap();
    let has_inspect = run(args!["--help"])
        .success()
        .stdout_str()
        .lines()
        .any(|l| l.trim_start().starts_with("inspect "));
    let before = layout.snapshot();

    let cases = vectors("digests.json");
    let invalid: Vec<String> = cases
        .iter()
        .filter(|c| c["verdict"] != json!("valid"))
        .map(|c| c["input"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        invalid.len() >= 20,
        "digests.json has only {} invalid cases",
        invalid.len()
    );
    assert!(
        invalid.iter().any(String::is_empty),
        "the empty case is exercised"
    );
    assert!(
        invalid.iter().any(|d| d.contains('\n')),
        "the newline case is exercised"
    );

    for digest in &invalid {
        // Errors quote the input as `{:?}` does (a newline as `\n`, so still one line).
        let quoted = quoted_prefix(digest, 40);
        let named = [quoted.as_str()];
        // Where only a digest will do, a malformed one is a usage error.
        for a in [
            args!["blob", "get", layout.dir, digest],
            args!["blob", "get", layout.dir, digest, "-o", out],
            args!["blob", "rm", layout.dir, digest],
            args!["tag", layout.dir, digest, "v2"],
            args!["tag", layout.dir, digest, "v1"],
        ] {
            let refused = run(a).usage_error_naming(&named);
            assert!(refused.stdout.is_empty(), "{}", show(&refused.args));
        }
        // Where a ref name will do too, it is one not found.
        let mut commands = vec![
            args![
                "attach",
                layout.dir,
                digest,
                "--artifact-type",
                "a/b",
                attachment
            ],
            args!["referrers", layout.dir, digest],
            args!["referrers", layout.dir, digest, "--json"],
        ];
        if has_inspect {
            commands.push(args!["inspect", layout.dir, digest]);
        }
        for a in commands {
            let refused = run(a).failure_naming(&named);
            assert!(refused.stdout.is_empty(), "{}", show(&refused.args));
        }
        for form in [
            args!["blob", "put", layout.dir, "--expect-digest", digest],
            args![
                "blob",
                "put",
                layout.dir,
                "-",
                "--json",
                "--expect-digest",
                digest
            ],
            args![
                "blob",
                "put",
                layout.dir,
                format!("--expect-digest={digest}")
            ],
        ] {
            let refused = run_stdin(form, b"abc").usage_error_naming(&named);
            assert!(refused.stdout.is_empty(), "{}", show(&refused.args));
        }
        assert_eq!(
            layout.snapshot(),
            before,
            "something was written for {digest:?}"
        );
        assert!(names_in(&out_dir).is_empty(), "-o wrote for {digest:?}");
    }
}

/// The valid vectors parse; as nothing is stored under them, commands fail with "not found"
/// naming the blob rather than with a parse error.
#[test]
fn valid_digest_vectors_reach_the_store() {
    let layout = Layout::new();
    for case in vectors("digests.json") {
        if case["verdict"] != json!("valid") {
            continue;
        }
        let digest = case["input"].as_str().unwrap();
        let encoded = case["encoded"].as_str().unwrap();
        run(args!["blob", "get", layout.dir, digest]).failure_naming(&[encoded]);
        run(args!["blob", "rm", layout.dir, digest]).failure_naming(&[encoded]);
        run(args!["tag", layout.dir, digest, "v1"]).failure_naming(&[encoded]);
        run(args![
            "attach",
            layout.dir,
            digest,
            "--artifact-type",
            "a/b",
            layout.index_path()
        ])
        .failure_naming(&[encoded]);
        // A subject need not be stored to be asked about: no referrers, no error.
        let found = run(args!["referrers", layout.dir, digest]).success();
        assert!(found.stdout.is_empty());
    }
    assert!(layout.ls().is_empty());
}

#[test]
fn hostile_arguments_fail_cleanly() {
    let layout = Layout::new();
    let image = layout.image("amd64", "linux", "hostile");
    layout.tag(&image.digest, "v1");
    let before = layout.snapshot();
    let long_digest = format!("sha256:{}", "a".repeat(100_000));
    let long_name = format!("{}:{}", "a".repeat(100_000), "0".repeat(64));
    let traversal = "sha256:../../../../../../../../../../../../../../../../etc/passwd";
    for digest in [
        long_digest.as_str(),
        long_name.as_str(),
        traversal,
        "\u{202e}",
    ] {
        let refused = run(args!["blob", "get", layout.dir, digest]).usage_error_naming(&[]);
        assert!(
            refused.stderr.len() < 1000,
            "a huge input must not end up whole in the error ({} bytes)",
            refused.stderr.len()
        );
        run(args!["blob", "rm", layout.dir, digest]).usage_error_naming(&[]);
        run(args!["tag", layout.dir, digest, "v1"]).usage_error_naming(&[]);
        for a in [
            args!["referrers", layout.dir, digest],
            args![
                "attach",
                layout.dir,
                digest,
                "--artifact-type",
                "a/b",
                layout.index_path()
            ],
        ] {
            let refused = run(a).failure();
            assert!(refused.stderr.len() < 1000, "{}", refused.stderr.len());
        }
        run_stdin(
            args!["blob", "put", layout.dir, "--expect-digest", digest],
            b"x",
        )
        .usage_error_naming(&[]);
    }
    // Arguments that are not UTF-8: a digest or ref must be text (usage error); a path need not.
    let not_utf8 = OsString::from_vec(b"sha256:\xff\xfe".to_vec());
    run(args!["blob", "get", layout.dir, not_utf8]).usage_error();
    run(args![
        "tag",
        layout.dir,
        image.digest,
        OsString::from_vec(vec![b'v', 0xff])
    ])
    .usage_error();
    let odd_path = layout
        .scratch()
        .join(OsString::from_vec(b"dir-\xff".to_vec()));
    run(args!["ls", odd_path]).failure();
    run(args!["init", odd_path]).success();
    run(args!["ls", odd_path, "--json"]).success();
    assert_eq!(layout.snapshot(), before);
}

#[test]
fn a_blob_that_is_not_a_regular_file_is_refused() {
    let layout = Layout::new();
    let digest = layout.put(b"abc");
    let blob = layout.blob_path(&digest);
    let elsewhere = layout.scratch().join("elsewhere");
    fs::write(&elsewhere, b"abc").unwrap();
    let encoded = digest.split_once(':').unwrap().1;

    // A symlink, even to the right content.
    fs::remove_file(&blob).unwrap();
    symlink(&elsewhere, &blob).unwrap();
    run(args!["blob", "get", layout.dir, digest]).failure_naming(&[encoded]);

    // A FIFO: refused, without blocking on the open.
    fs::remove_file(&blob).unwrap();
    tool("mkfifo", &[blob.as_os_str()]);
    run(args!["blob", "get", layout.dir, digest]).failure_naming(&[encoded]);
    run(args!["tag", layout.dir, digest, "v1"]).failure_naming(&[encoded]);

    // A directory.
    fs::remove_file(&blob).unwrap();
    fs::create_dir(&blob).unwrap();
    run(args!["blob", "get", layout.dir, digest]).failure_naming(&[encoded]);
}

#[test]
fn a_blobs_directory_leading_outside_the_layout_is_refused() {
    let layout = Layout::new();
    let outside = layout.scratch().join("outside");
    fs::create_dir_all(outside.join("sha256")).unwrap();
    fs::remove_dir(layout.dir.join("blobs")).unwrap();
    symlink(&outside, layout.dir.join("blobs")).unwrap();

    run_stdin(args!["blob", "put", layout.dir], b"abc").failure_naming(&["blobs"]);
    let digest = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    fs::write(
        outside
            .join("sha256")
            .join(digest.split_once(':').unwrap().1),
        b"abc",
    )
    .unwrap();
    run(args!["blob", "get", layout.dir, digest]).failure_naming(&["blobs"]);
    run(args!["blob", "rm", layout.dir, digest]).failure_naming(&["blobs"]);
    assert_eq!(
        names_in(&outside.join("sha256")).len(),
        1,
        "nothing written outside"
    );
}

#[test]
fn an_unreadable_index_fails_every_index_command_with_one_line() {
    let layout = Layout::new();
    let image = layout.image("amd64", "linux", "bad-index");
    fs::write(layout.index_path(), b"{ not json").unwrap();
    run(args!["ls", layout.dir]).failure_naming(&["index.json"]);
    run(args!["tag", layout.dir, image.digest, "v1"]).failure_naming(&["index.json"]);
    run(args!["untag", layout.dir, "v1"]).failure_naming(&["index.json"]);
    assert_eq!(fs::read(layout.index_path()).unwrap(), b"{ not json");
}

#[test]
fn a_plain_file_given_as_the_layout_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let digest = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    for (name, content) in [
        ("garbage.txt", &b"garbage\n"[..]),
        ("empty", b""),
        ("zeros", &[0u8; 1024][..]),
    ] {
        let file = tmp.path().join(name);
        fs::write(&file, content).unwrap();
        let mut commands = vec![
            args!["ls", file],
            args!["ls", file, "--json"],
            args!["blob", "get", file, digest],
            args!["blob", "rm", file, digest],
            args!["tag", file, digest, "v1"],
            args!["untag", file, "v1"],
            args!["init", file],
        ];
        // An empty file and 1024 zero bytes are valid (empty) tar streams: `blob ls` reads
        // them as an archive with no blobs, so only the garbage file must fail there.
        if name == "garbage.txt" {
            commands.push(args!["blob", "ls", file]);
            commands.push(args!["blob", "ls", file, "--json"]);
        }
        for a in commands {
            run(a).failure_naming(&[name]);
        }
        run_stdin(args!["blob", "put", file], b"abc").failure_naming(&[name]);
        assert_eq!(fs::read(&file).unwrap(), content, "{name} was changed");
        assert_eq!(
            names_in(tmp.path()).len(),
            1,
            "nothing written beside {name}"
        );
        fs::remove_file(&file).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Messages name the thing at fault, with its whole path
// ---------------------------------------------------------------------------------------------

#[test]
fn pack_into_a_pipe_closed_early_exits_quietly() {
    let layout = Layout::new();
    layout.put(&pseudo_random(4 << 20, 51));
    for compress in ["none", "gzip", "zstd"] {
        let a = args!["pack", layout.dir, "-", "--compress", compress];
        let mut child = command(&a).spawn().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut head = [0u8; 100];
        std::io::Read::read_exact(&mut stdout, &mut head).unwrap();
        drop(stdout);
        let finished = wait(a, child);
        assert_eq!(finished.code, 0, "{compress}: {}", finished.stderr);
        assert!(
            finished.stderr.is_empty(),
            "{compress}: {}",
            finished.stderr
        );
    }
}

#[test]
fn a_bad_archive_is_blamed_not_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.tar");
    fs::write(&bad, "garbage".repeat(200)).unwrap();
    let out = tmp.path().join("out");
    let failed = run(args!["unpack", bad, out])
        .failure_naming(&[bad.to_str().unwrap(), "not a tar archive"]);
    assert!(
        !failed.stderr.contains(out.to_str().unwrap()),
        "{}",
        failed.stderr
    );
}

/// A file that is not an archive is refused without a byte of it in the message: the tar
/// parser's errors quote the header they failed on.
#[test]
fn a_file_that_is_not_an_archive_is_never_echoed() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("passwd");
    fs::write(
        &secret,
        "root:x:0:0:SECRET-LINE:/root:/bin/bash\n".repeat(20),
    )
    .unwrap();
    let out = tmp.path().join("out");
    for a in [
        args!["ls", secret],
        args!["fsck", secret],
        args!["blob", "ls", secret],
        args!["inspect", secret, "v1"],
        args!["unpack", secret, out],
    ] {
        let failed = run(a).failure_naming(&["passwd", "not a tar archive"]);
        assert!(
            !failed.stderr.contains("SECRET") && !failed.stderr.contains("root:x"),
            "{}",
            failed.stderr
        );
    }
}

#[test]
fn init_where_nothing_can_be_made_names_the_directory() {
    run(args!["init", "/proc/oci-layout-cannot-be-here"])
        .failure_naming(&["/proc/oci-layout-cannot-be-here"]);
}

#[test]
fn attach_of_a_directory_names_its_whole_path() {
    let layout = Layout::new();
    let image = layout.image("amd64", "linux", "attach-dir");
    layout.tag(&image.digest, "v1");
    let dir = layout.scratch().join("not-a-file");
    fs::create_dir(&dir).unwrap();
    run(args![
        "attach",
        layout.dir,
        "v1",
        "--artifact-type",
        "a/b",
        dir
    ])
    .failure_naming(&[dir.to_str().unwrap()]);
}

#[test]
fn inspect_of_a_malformed_digest_says_it_is_malformed() {
    let layout = Layout::new();
    let target = format!("SHA256:{}", "a".repeat(64));
    run(args!["inspect", layout.dir, target]).failure_naming(&["invalid digest", "no ref"]);
}

/// A full disk is the fault of what is being written: the layout a blob goes into, the
/// archive being written; never of the source being read.
#[test]
fn a_full_disk_is_blamed_on_what_is_written() {
    let Some(small) = SmallFs::mount(4 << 20, "a full disk") else {
        return;
    };
    let source = Layout::new();
    source.put(&pseudo_random(6 << 20, 52));
    let archive = source.scratch().join("a.tar");
    run(args!["pack", source.dir, archive]).success();

    let into = small.dir.join("layout");
    run(args!["init", into]).success();
    let big = source.scratch().join("big");
    fs::write(&big, pseudo_random(32 << 20, 53)).unwrap();
    let failed = run(args!["blob", "put", into, big]).failure_naming(&["No space left"]);
    assert!(
        failed.stderr.contains(into.to_str().unwrap()),
        "{}",
        failed.stderr
    );
    assert!(!failed.stderr.contains("reading"), "{}", failed.stderr);

    // Refused before writing (the blob does not fit), or failing as it writes: either way
    // about the layout, not the archive.
    let failed = run(args!["unpack", archive, into]).failure_naming(&[into.to_str().unwrap()]);
    assert!(!failed.stderr.contains("a.tar"), "{}", failed.stderr);
    assert!(!failed.stderr.contains("reading"), "{}", failed.stderr);

    let output = small.dir.join("out.tar");
    let failed = run(args!["pack", source.dir, output])
        .failure_naming(&[output.to_str().unwrap(), "No space left"]);
    assert!(
        !failed.stderr.contains("invalid layout"),
        "{}",
        failed.stderr
    );
    assert!(!failed.stderr.contains("blob"), "{}", failed.stderr);
}

// ---------------------------------------------------------------------------------------------
// Values our own parsing refuses are usage errors, refused before anything is written
// ---------------------------------------------------------------------------------------------

#[test]
fn values_our_own_parsing_refuses_exit_2_and_write_nothing() {
    let layout = Layout::new();
    let image = layout.image("amd64", "linux", "usage");
    layout.tag(&image.digest, "v1");
    let src = layout.scratch().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("file"), b"x").unwrap();
    let file = src.join("file");
    let new_layout = layout.scratch().join("new-layout");
    let before = layout.snapshot();
    let create = |extra: &[&str]| {
        let mut a = args![
            "image",
            "create",
            new_layout,
            "--tag",
            "t",
            "--from-dir",
            src
        ];
        a.extend(extra.iter().map(OsString::from));
        a
    };
    let cases: Vec<(Vec<OsString>, &str)> = vec![
        (args!["blob", "get", layout.dir, "sha256:xyz"], "sha256:xyz"),
        (args!["blob", "rm", layout.dir, "sha256:xyz"], "sha256:xyz"),
        (args!["tag", layout.dir, "sha256:xyz", "v2"], "sha256:xyz"),
        (
            args!["tag", layout.dir, image.digest, "bad ref!"],
            "bad ref!",
        ),
        (args!["untag", layout.dir, "../up"], "../up"),
        (
            args!["blob", "put", layout.dir, file, "--expect-digest", "md5:x"],
            "md5:x",
        ),
        (
            args!["blob", "put", layout.dir, file, "--media-type", ""],
            "media type",
        ),
        (
            args!["attach", layout.dir, "v1", "--artifact-type", "", file],
            "media type",
        ),
        (
            args![
                "attach",
                layout.dir,
                "v1",
                "--artifact-type",
                "a/b",
                "--annotation",
                "k",
                file
            ],
            "KEY=VALUE",
        ),
        (
            args![
                "referrers",
                layout.dir,
                "v1",
                "--artifact-type",
                "not a type"
            ],
            "media type",
        ),
        (
            args!["inspect", layout.dir, "v1", "--platform", "nope"],
            "nope",
        ),
        (create(&["--level", "42"]), "gzip level"),
        (
            create(&["--compression", "zstd", "--level", "0"]),
            "zstd level",
        ),
        (
            create(&["--compression", "zstd", "--level", "-3"]),
            "zstd level",
        ),
        (create(&["--platform", "linux"]), "linux"),
        (create(&["--label", "novalue"]), "KEY=VALUE"),
        (create(&["--env", "NOVALUE"]), "NOVALUE"),
        (create(&["--expose", "eighty"]), "eighty"),
        (
            args!["tag", layout.dir, image.digest, "--", ""],
            "invalid ref name",
        ),
    ];
    for (a, named) in cases {
        let refused = run(a).usage_error_naming(&[named]);
        assert!(refused.stdout.is_empty(), "{}", show(&refused.args));
    }
    for epoch in ["soon", "253402300800", "99999999999999999999"] {
        let a = create(&[]);
        let mut command = command(&a);
        command.env("SOURCE_DATE_EPOCH", epoch);
        finish(a, &command.output().unwrap()).usage_error_naming(&["SOURCE_DATE_EPOCH"]);
    }
    assert_eq!(
        layout.snapshot(),
        before,
        "a refused value changed the layout"
    );
    assert!(
        !new_layout.exists(),
        "a refused image create made its layout"
    );
}

/// The last second a timestamp can say is still accepted, and written as skopeo reads it.
#[test]
fn source_date_epoch_up_to_the_year_9999_is_accepted() {
    let layout = Layout::new();
    let src = layout.scratch().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("file"), b"x").unwrap();
    let a = args![
        "image",
        "create",
        layout.dir,
        "--tag",
        "t",
        "--from-dir",
        src
    ];
    let mut command = command(&a);
    command.env("SOURCE_DATE_EPOCH", "253402300799");
    finish(a, &command.output().unwrap()).success();
    let shown = run(args!["inspect", layout.dir, "t", "--json"])
        .success()
        .json();
    assert_eq!(
        shown["config"]["created"],
        json!("9999-12-31T23:59:59Z"),
        "{shown:#}"
    );
}
