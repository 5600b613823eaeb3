//! `blob put`, `blob get`, `blob rm`, `blob ls`.

use std::fs;
use std::io::Read;

use serde_json::{Value, json};

use crate::support::*;

const ALGORITHMS: [&str; 3] = ["sha256", "sha512", "blake3"];

/// The input a `content-digests.json` case names.
fn content_vector_input(name: &str) -> Vec<u8> {
    match name {
        "empty" => Vec::new(),
        "abc" => b"abc".to_vec(),
        "empty-json-object" => b"{}".to_vec(),
        "bytes-0-to-250-repeated-1025" => (0..1025).map(|i| (i % 251) as u8).collect(),
        "one-mib-of-0x61" => vec![b'a'; 1 << 20],
        other => panic!("content-digests.json has a case this test cannot build: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// blob put
// ---------------------------------------------------------------------------------------------

#[test]
fn put_prints_the_digests_of_the_content_vectors() {
    let layout = Layout::new();
    let cases = vectors("content-digests.json");
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let input = content_vector_input(name);
        assert_eq!(case["size"], json!(input.len()), "{name}: size");
        for algorithm in ALGORITHMS {
            let expected = case[algorithm].as_str().unwrap();
            let printed = layout.put_with(&input, &["--algorithm", algorithm]);
            assert_eq!(printed, expected, "{name} with {algorithm}");
            assert_eq!(
                fs::read(layout.blob_path(&printed)).unwrap(),
                input,
                "{name} with {algorithm}: stored bytes"
            );
        }
        // The default is sha256.
        assert_eq!(
            layout.put(&input),
            case["sha256"].as_str().unwrap(),
            "{name}"
        );
    }
    assert_eq!(layout.blobs().len(), cases.len() * ALGORITHMS.len());
}

#[test]
fn put_from_file_dash_and_stdin_agree_with_coreutils() {
    let layout = Layout::new();
    // Over the 256 KiB copy buffer, and not a multiple of any hash block size.
    let content = pseudo_random(600_001, 1);
    let file = layout.scratch().join("content.bin");
    fs::write(&file, &content).unwrap();

    for algorithm in ALGORITHMS {
        let from_file = run(args![
            "blob",
            "put",
            layout.dir,
            file,
            "--algorithm",
            algorithm
        ])
        .success()
        .line();
        let from_dash = run_stdin(
            args!["blob", "put", layout.dir, "-", "--algorithm", algorithm],
            &content,
        )
        .success()
        .line();
        let from_stdin = layout.put_with(&content, &["--algorithm", algorithm]);
        assert_eq!(from_file, from_dash, "{algorithm}: FILE vs -");
        assert_eq!(from_file, from_stdin, "{algorithm}: FILE vs no FILE");
        assert!(from_file.starts_with(&format!("{algorithm}:")));
        match external_digest(algorithm, &file) {
            Some(independent) => assert_eq!(from_file, independent, "{algorithm}"),
            None => eprintln!(
                "NOTE: no external {algorithm} tool on PATH; {algorithm} is checked against \
                 content-digests.json only"
            ),
        }
        assert_eq!(fs::read(layout.blob_path(&from_file)).unwrap(), content);
    }
    let default = run(args!["blob", "put", layout.dir, file]).success().line();
    assert!(
        default.starts_with("sha256:"),
        "default algorithm: {default}"
    );
}

#[test]
fn put_json_prints_the_descriptor() {
    let layout = Layout::new();
    let run1 = run_stdin(args!["blob", "put", layout.dir, "--json"], b"abc").success();
    assert_eq!(
        run1.json(),
        json!({
            "mediaType": "application/octet-stream",
            "digest": "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "size": 3,
        })
    );
    let run2 = run_stdin(
        args![
            "blob",
            "put",
            layout.dir,
            "-",
            "--json",
            "--media-type",
            OCI_CONFIG,
            "--algorithm",
            "sha512"
        ],
        b"{}",
    )
    .success();
    assert_eq!(
        run2.json(),
        json!({
            "mediaType": OCI_CONFIG,
            "digest": "sha512:27c74670adb75075fad058d5ceaf7b20c4e7786c83bae8a32f626f9782af34c9a33c2046ef60fd2a7878d378e29fec851806bbd9a67878f3a9f1cda4830763fd",
            "size": 2,
        })
    );
}

#[test]
fn put_with_matching_expectations_succeeds() {
    let layout = Layout::new();
    let abc256 = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    let printed = run_stdin(
        args![
            "blob",
            "put",
            layout.dir,
            "--expect-digest",
            abc256,
            "--expect-size",
            "3"
        ],
        b"abc",
    )
    .success()
    .line();
    assert_eq!(printed, abc256);

    // The expected digest decides the algorithm, even against --algorithm.
    let abc512 = "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
    let printed = run_stdin(
        args!["blob", "put", layout.dir, "--expect-digest", abc512],
        b"abc",
    )
    .success()
    .line();
    assert_eq!(printed, abc512);
    let printed = run_stdin(
        args![
            "blob",
            "put",
            layout.dir,
            "--algorithm",
            "blake3",
            "--expect-digest",
            abc512
        ],
        b"abc",
    )
    .success()
    .line();
    assert_eq!(printed, abc512);

    // Putting what is already there is fine and changes nothing.
    let before = layout.snapshot();
    assert_eq!(layout.put(b"abc"), abc256);
    assert_eq!(layout.snapshot(), before);
}

/// Nothing may be left under `blobs/` by a refused put: no blob, no temporary file. (The
/// per-algorithm directory, `blobs/sha256/`, may be created empty; it holds no content.)
fn assert_no_blob_files(layout: &Layout, context: &str) {
    let files = files_under(&layout.dir.join("blobs"));
    assert!(
        files.is_empty(),
        "{context}: files left under blobs/: {files:?}"
    );
    assert!(
        layout.blobs().is_empty(),
        "{context}: blob ls lists something"
    );
}

#[test]
fn put_with_a_wrong_expected_digest_fails_and_stores_nothing() {
    let layout = Layout::new();
    let large = pseudo_random(700_000, 2);
    let file = layout.scratch().join("large.bin");
    fs::write(&file, &large).unwrap();
    let wrong = [
        // The digest of the empty blob, for content that is not empty.
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
        "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
    ];
    for expected in wrong {
        run_stdin(
            args!["blob", "put", layout.dir, "--expect-digest", expected],
            b"abc",
        )
        .failure_naming(&[expected]);
        assert_no_blob_files(&layout, expected);
        run(args![
            "blob",
            "put",
            layout.dir,
            file,
            "--expect-digest",
            expected
        ])
        .failure_naming(&[expected]);
        assert_no_blob_files(&layout, expected);
        // With the right size but the wrong digest.
        run_stdin(
            args![
                "blob",
                "put",
                layout.dir,
                "--expect-digest",
                expected,
                "--expect-size",
                "3",
                "--json"
            ],
            b"abc",
        )
        .failure_naming(&[expected]);
        assert_no_blob_files(&layout, expected);
    }
    // Nothing printed on stdout for a refused blob.
    let refused = run_stdin(
        args!["blob", "put", layout.dir, "--expect-digest", wrong[0]],
        b"abc",
    )
    .failure();
    assert!(refused.stdout.is_empty());
}

#[test]
fn put_with_a_wrong_expected_size_fails_and_stores_nothing() {
    let layout = Layout::new();
    let abc = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    for size in ["0", "2", "4", "18446744073709551615"] {
        let refused = run_stdin(
            args!["blob", "put", layout.dir, "--expect-size", size],
            b"abc",
        )
        .failure_naming(&[abc]);
        assert!(refused.stdout.is_empty());
        assert_no_blob_files(&layout, size);
    }
    // Both given, size wrong: the error names the expected digest.
    run_stdin(
        args![
            "blob",
            "put",
            layout.dir,
            "--expect-digest",
            abc,
            "--expect-size",
            "4"
        ],
        b"abc",
    )
    .failure_naming(&[abc]);
    assert_no_blob_files(&layout, "both");

    // Large content through a file.
    let large = pseudo_random(300_000, 3);
    let file = layout.scratch().join("large.bin");
    fs::write(&file, &large).unwrap();
    run(args![
        "blob",
        "put",
        layout.dir,
        file,
        "--expect-size",
        "299999"
    ])
    .failure();
    assert_no_blob_files(&layout, "large");
}

#[test]
fn put_of_a_missing_file_fails_naming_it() {
    let layout = Layout::new();
    let missing = layout.scratch().join("no-such-file");
    run(args!["blob", "put", layout.dir, missing]).failure_naming(&["no-such-file"]);
    assert_no_blob_files(&layout, "missing file");
    // A directory is not a blob either.
    let dir = layout.scratch();
    run(args!["blob", "put", layout.dir, dir]).failure_naming(&["scratch"]);
    assert_no_blob_files(&layout, "directory");
}

#[test]
fn put_into_something_that_is_not_a_layout_fails_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let not_layout = tmp.path().join("plain");
    fs::create_dir(&not_layout).unwrap();
    run_stdin(args!["blob", "put", not_layout], b"abc").failure_naming(&["plain"]);
    assert!(names_in(&not_layout).is_empty());
}

// ---------------------------------------------------------------------------------------------
// blob get
// ---------------------------------------------------------------------------------------------

#[test]
fn get_streams_the_stored_bytes() {
    let layout = Layout::new();
    for (i, len) in [0usize, 1, 4096, 1 << 20, 3 * (1 << 20) + 7]
        .into_iter()
        .enumerate()
    {
        let content = pseudo_random(len, 10 + i as u64);
        for algorithm in ALGORITHMS {
            let digest = layout.put_with(&content, &["--algorithm", algorithm]);
            let got = run(args!["blob", "get", layout.dir, digest]).success();
            assert!(got.stdout == content, "{algorithm}, {len} bytes");
        }
    }
}

#[test]
fn get_to_a_file_writes_exactly_that_file() {
    let layout = Layout::new();
    let content = pseudo_random(500_000, 20);
    let digest = layout.put(&content);
    let out_dir = layout.scratch().join("out");
    fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("blob.bin");
    let got = run(args!["blob", "get", layout.dir, digest, "-o", out]).success();
    assert!(got.stdout.is_empty(), "with -o nothing goes to stdout");
    assert!(fs::read(&out).unwrap() == content);
    assert_eq!(names_in(&out_dir), ["blob.bin"], "no temporary file left");
    let mode = std::os::unix::fs::PermissionsExt::mode(&fs::metadata(&out).unwrap().permissions());
    assert_eq!(
        mode & 0o777,
        0o644,
        "an ordinary file, not the temp file's 0600"
    );

    // Over an existing file, and with --output.
    fs::write(&out, b"old").unwrap();
    run(args!["blob", "get", layout.dir, digest, "--output", out]).success();
    assert!(fs::read(&out).unwrap() == content);
    assert_eq!(names_in(&out_dir), ["blob.bin"]);

    // A bare relative name lands in the working directory.
    run_in(
        &out_dir,
        args!["blob", "get", layout.dir, digest, "-o", "relative.bin"],
    )
    .success();
    assert!(fs::read(out_dir.join("relative.bin")).unwrap() == content);
    assert_eq!(names_in(&out_dir), ["blob.bin", "relative.bin"]);
}

#[test]
fn get_to_a_file_in_a_missing_directory_fails_cleanly() {
    let layout = Layout::new();
    let digest = layout.put(b"abc");
    let out = layout.scratch().join("missing-dir").join("out");
    run(args!["blob", "get", layout.dir, digest, "-o", out]).failure_naming(&["missing-dir"]);
    assert!(!out.exists());
}

/// A named way to damage a stored blob file.
type Corruption = (&'static str, fn(&std::path::Path));

/// Ways to damage a stored blob: flip a byte (first, middle, last), cut it, extend it.
fn corruptions() -> Vec<Corruption> {
    vec![
        ("first byte flipped", |p| flip_byte(p, 0)),
        ("last byte flipped", |p| flip_byte(p, -1)),
        ("middle byte flipped", |p| {
            let len = fs::metadata(p).unwrap().len() as i64;
            flip_byte(p, len / 2);
        }),
        ("truncated", |p| {
            let len = fs::metadata(p).unwrap().len();
            fs::OpenOptions::new()
                .write(true)
                .open(p)
                .unwrap()
                .set_len(len - 1)
                .unwrap();
        }),
        ("extended", |p| {
            let mut bytes = fs::read(p).unwrap();
            bytes.push(b'!');
            fs::write(p, bytes).unwrap();
        }),
    ]
}

#[test]
fn get_of_a_corrupt_blob_fails_naming_the_digest_and_leaves_no_file() {
    for len in [5usize, 3 * (1 << 20) + 11] {
        for (what, corrupt) in corruptions() {
            let layout = Layout::new();
            let content = pseudo_random(len, len as u64);
            let digest = layout.put(&content);
            let blob = layout.blob_path(&digest);
            assert_eq!(mode(&blob) & 0o200, 0o200, "blobs are stored 0644");
            corrupt(&blob);
            let context = format!("{len} bytes, {what}");

            // To stdout: exit 1 naming the digest. (Bytes may have been streamed before the
            // end was reached and the mismatch found; the exit status is what tells.)
            eprintln!("{context}");
            run(args!["blob", "get", layout.dir, digest]).failure_naming(&[&digest]);

            // To a file: the file never appears, and no temporary file is left beside it.
            let out_dir = layout.tmp().join(format!("out-{len}"));
            fs::create_dir_all(&out_dir).unwrap();
            let out = out_dir.join("blob.bin");
            run(args!["blob", "get", layout.dir, digest, "-o", out]).failure_naming(&[&digest]);
            assert!(!out.exists(), "{context}: the output file exists");
            assert!(
                names_in(&out_dir).is_empty(),
                "{context}: left behind: {:?}",
                names_in(&out_dir)
            );

            // A file that was already there keeps its old content.
            fs::write(&out, b"precious").unwrap();
            run(args!["blob", "get", layout.dir, digest, "-o", out]).failure_naming(&[&digest]);
            assert_eq!(fs::read(&out).unwrap(), b"precious", "{context}");
            assert_eq!(names_in(&out_dir), ["blob.bin"], "{context}");
        }
    }
}

#[test]
fn get_of_a_missing_blob_fails_naming_the_digest() {
    let layout = Layout::new();
    for algorithm in ALGORITHMS {
        let digest = layout.put_with(b"abc", &["--algorithm", algorithm]);
        fs::remove_file(layout.blob_path(&digest)).unwrap();
        let encoded = digest.split_once(':').unwrap().1;
        let out = layout.scratch().join("out");
        run(args!["blob", "get", layout.dir, digest]).failure_naming(&[encoded]);
        run(args!["blob", "get", layout.dir, digest, "-o", out]).failure_naming(&[encoded]);
        assert!(!out.exists());
    }
}

#[test]
fn get_to_a_reader_that_goes_away_is_not_an_error() {
    let layout = Layout::new();
    let content = pseudo_random(4 << 20, 30);
    let digest = layout.put(&content);
    let a = args!["blob", "get", layout.dir, digest];
    let mut child = command(&a).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut head = [0u8; 16];
    stdout.read_exact(&mut head).unwrap();
    assert_eq!(head, content[..16]);
    drop(stdout);
    let finished = wait(a, child);
    assert_eq!(
        finished.code, 0,
        "`blob get | head` must exit 0: {}",
        finished.stderr
    );
    assert!(finished.stderr.is_empty(), "{}", finished.stderr);
}

// ---------------------------------------------------------------------------------------------
// blob rm, blob ls
// ---------------------------------------------------------------------------------------------

#[test]
fn rm_deletes_the_blob_and_only_that_blob() {
    let layout = Layout::new();
    let keep = layout.put(b"keep");
    let gone = layout.put(b"gone");
    let gone512 = layout.put_with(b"gone", &["--algorithm", "sha512"]);
    run(args!["blob", "rm", layout.dir, gone]).success();
    assert!(!layout.blob_path(&gone).exists());
    assert!(layout.blob_path(&keep).exists());
    assert!(layout.blob_path(&gone512).exists());
    let listed: Vec<Value> = layout
        .blobs()
        .into_iter()
        .map(|b| b["digest"].clone())
        .collect();
    assert_eq!(listed.len(), 2);
    assert!(!listed.contains(&json!(gone)));

    let encoded = gone.split_once(':').unwrap().1;
    run(args!["blob", "get", layout.dir, gone]).failure_naming(&[encoded]);
    // Removing it again: exit 1 naming it.
    run(args!["blob", "rm", layout.dir, gone]).failure_naming(&[encoded]);
    run(args!["blob", "rm", layout.dir, gone512]).success();
    assert_eq!(layout.blobs(), [json!({ "digest": keep, "size": 4 })]);
}

#[test]
fn ls_lists_every_blob_with_its_size() {
    let layout = Layout::new();
    let mut expected = Vec::new();
    for (i, algorithm) in ALGORITHMS.iter().enumerate() {
        for len in [0usize, 7, 70_000] {
            let content = pseudo_random(len, (i * 100 + len) as u64);
            let digest = layout.put_with(&content, &["--algorithm", algorithm]);
            expected.push(json!({ "digest": digest, "size": len }));
        }
    }
    let listed = layout.blobs();
    assert_eq!(listed.len(), expected.len());
    for entry in &listed {
        let mut keys: Vec<&String> = entry.as_object().unwrap().keys().collect();
        keys.sort_unstable();
        assert_eq!(keys, ["digest", "size"]);
        assert!(expected.contains(entry), "unexpected entry {entry}");
    }
    // The plain listing: one digest per line, the same set.
    let plain = run(args!["blob", "ls", layout.dir]).success().stdout_str();
    let mut lines: Vec<&str> = plain.lines().collect();
    let mut digests: Vec<&str> = listed
        .iter()
        .map(|e| e["digest"].as_str().unwrap())
        .collect();
    lines.sort_unstable();
    digests.sort_unstable();
    assert_eq!(lines, digests);

    // Debris under blobs/ that is not a digest is not listed.
    fs::write(layout.dir.join("blobs/sha256/not-a-digest"), b"x").unwrap();
    fs::write(layout.dir.join("blobs/sha256/.tmp-123"), b"x").unwrap();
    assert_eq!(layout.blobs().len(), expected.len());
}

// ---------------------------------------------------------------------------------------------
// Output paths (`blob get -o`, `pack`): resolved as a shell redirection resolves them
// ---------------------------------------------------------------------------------------------

/// A layout with one blob; returns it with the blob's digest and content.
fn layout_with_blob() -> (Layout, String, Vec<u8>) {
    let layout = Layout::new();
    let content = pseudo_random(300 << 10, 41);
    let digest = layout.put(&content);
    (layout, digest, content)
}

/// What `pack` writes to a new regular file: the bytes every other output must get.
fn packed_bytes(layout: &Layout) -> Vec<u8> {
    let file = layout.scratch().join("reference.tar");
    run(args!["pack", layout.dir, file]).success();
    fs::read(file).unwrap()
}

#[test]
fn a_device_given_as_the_output_is_written_through_not_replaced() {
    let (layout, digest, _) = layout_with_blob();
    // A private /dev/null and /dev/full (same device numbers): the machine's own stay safe
    // even where this test fails.
    let null = layout.scratch().join("null");
    char_device(&null, 1, 3);
    run(args!["blob", "get", layout.dir, digest, "-o", null]).success();
    assert!(is_char_device(&null), "blob get -o replaced the device");
    run(args!["pack", layout.dir, null]).success();
    assert!(is_char_device(&null), "pack replaced the device");

    // A write error there is the output's: named, with the system's reason, not the blob's.
    let full = layout.scratch().join("full");
    char_device(&full, 1, 7);
    let encoded = digest.split_once(':').unwrap().1;
    for a in [
        args!["blob", "get", layout.dir, digest, "-o", full],
        args!["pack", layout.dir, full],
    ] {
        let failed = run(a).failure_naming(&["full", "No space left on device"]);
        assert!(!failed.stderr.contains(encoded), "{}", failed.stderr);
        assert!(
            !failed.stderr.contains("invalid layout"),
            "{}",
            failed.stderr
        );
        assert!(is_char_device(&full));
    }
}

#[test]
fn a_fifo_given_as_the_output_gets_the_bytes() {
    let (layout, digest, content) = layout_with_blob();
    let expected_archive = packed_bytes(&layout);
    let fifo = layout.scratch().join("fifo");
    tool("mkfifo", &[fifo.as_os_str()]);
    for (a, expected) in [
        (
            args!["blob", "get", layout.dir, digest, "-o", fifo],
            content,
        ),
        (args!["pack", layout.dir, fifo], expected_archive),
    ] {
        // The reader reports through a channel: where the FIFO was replaced, it waits on the
        // old one forever, and the test must fail, not hang.
        let (sender, received) = std::sync::mpsc::channel();
        let reader_path = fifo.clone();
        std::thread::spawn(move || sender.send(fs::read(reader_path).unwrap()));
        run(a).success();
        let got = received
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the FIFO's reader got nothing");
        assert_eq!(got, expected);
        let kind = fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(
            std::os::unix::fs::FileTypeExt::is_fifo(&kind),
            "the FIFO was replaced"
        );
    }
}

#[test]
fn a_symlink_given_as_the_output_has_its_target_replaced_and_stays() {
    let (layout, digest, content) = layout_with_blob();
    let scratch = layout.scratch();
    let target = scratch.join("real");
    let link = scratch.join("link");
    fs::write(&target, b"old content").unwrap();
    std::os::unix::fs::symlink("real", &link).unwrap();
    run(args!["blob", "get", layout.dir, digest, "-o", link]).success();
    assert!(
        fs::symlink_metadata(&link).unwrap().is_symlink(),
        "the link was replaced"
    );
    assert_eq!(fs::read(&target).unwrap(), content);

    run(args!["pack", layout.dir, link]).success();
    assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
    assert_eq!(fs::read(&target).unwrap(), packed_bytes(&layout));

    // A dangling link: the file it names is created, as `>` would.
    let dangling = scratch.join("dangling");
    std::os::unix::fs::symlink("made-by-get", &dangling).unwrap();
    run(args!["blob", "get", layout.dir, digest, "-o", dangling]).success();
    assert!(fs::symlink_metadata(&dangling).unwrap().is_symlink());
    assert_eq!(fs::read(scratch.join("made-by-get")).unwrap(), content);
}

/// `pack L /dev/stdout | wc -c`, with a link of our own to `/proc/self/fd/1` (what
/// `/dev/stdout` is), so that a failure cannot replace the machine's.
#[test]
fn pack_to_a_link_to_standard_output_writes_the_archive_into_the_pipe() {
    let (layout, _, _) = layout_with_blob();
    let stdout_link = layout.scratch().join("stdout");
    std::os::unix::fs::symlink("/proc/self/fd/1", &stdout_link).unwrap();
    let packed = run(args!["pack", layout.dir, stdout_link]).success();
    assert_eq!(packed.stdout, packed_bytes(&layout));
    assert!(fs::symlink_metadata(&stdout_link).unwrap().is_symlink());
}
