//! Integration tests for `oci-digest`: the conformance vectors in `shared/conformance/vectors`,
//! the streaming adapters and their failure modes, error messages, the `oci_spec` conversions,
//! and property tests.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Cursor, Read, Write};
use std::path::PathBuf;

use oci_digest::{
    Algorithm, Digest, HashingWriter, ParseDigestError, VerifyError, VerifyingReader,
};
use proptest::prelude::*;
use serde::Deserialize;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The conformance vectors live beside the repository: `<workspace>/../shared/...`.
const VECTORS_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/vectors"
);

#[derive(Deserialize)]
struct VectorFile<C> {
    about: String,
    cases: Vec<C>,
}

/// Reads a vector file; a missing or malformed file fails the test (never skips it).
fn load_vectors<C: serde::de::DeserializeOwned>(name: &str) -> VectorFile<C> {
    let path = PathBuf::from(VECTORS_DIR).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "conformance vectors missing: cannot read {}: {e}\n\
             (the tests expect a copy of `shared/` beside the workspace root)",
            path.display()
        )
    });
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not a valid vector file: {e}", path.display()))
}

/// Fails with every collected failure listed, one per line.
fn assert_no_failures(what: &str, checked: usize, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} of {checked} {what} failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

/// Odd chunk sizes, so that chunk boundaries fall inside hash blocks (64 / 128 / 1024 bytes).
const ODD_CHUNKS: [usize; 9] = [1, 3, 7, 13, 63, 127, 1021, 4099, 65_537];

/// The digest of `data` fed to a `Hasher` in `chunks` (cycled), with empty updates mixed in.
fn hash_in_chunks(algorithm: Algorithm, data: &[u8], chunks: &[usize]) -> Digest {
    let mut hasher = algorithm.hasher();
    assert_eq!(hasher.algorithm(), algorithm);
    let mut rest = data;
    for &size in chunks.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(size.clamp(1, rest.len()));
        hasher.update(chunk);
        hasher.update(&[]);
        rest = tail;
    }
    hasher.finalize()
}

/// Writes `data` through a `HashingWriter` in `chunks` (cycled); returns what reached the inner
/// writer, the digest and the count.
fn write_in_chunks(algorithm: Algorithm, data: &[u8], chunks: &[usize]) -> (Vec<u8>, Digest, u64) {
    let mut writer = HashingWriter::new(Vec::new(), algorithm);
    let mut rest = data;
    for &size in chunks.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(size.clamp(1, rest.len()));
        writer.write_all(chunk).unwrap();
        rest = tail;
    }
    writer.flush().unwrap();
    assert_eq!(writer.bytes_written(), data.len() as u64);
    assert_eq!(writer.get_ref().len(), data.len());
    writer.finish()
}

/// A reader that hands out its data in small odd pieces and is interrupted now and then, as
/// pipes and sockets are.
struct Trickle<'a> {
    data: &'a [u8],
    calls: usize,
}

impl<'a> Trickle<'a> {
    fn new(data: &'a [u8]) -> Self {
        Trickle { data, calls: 0 }
    }
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls.is_multiple_of(5) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = ODD_CHUNKS[self.calls % ODD_CHUNKS.len()]
            .min(buf.len())
            .min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// How reading through a verifying reader failed.
#[derive(Debug)]
struct Failure {
    kind: io::ErrorKind,
    /// The `VerifyError` the I/O error carries.
    verify: Option<VerifyError>,
    message: String,
}

/// Reads everything from a verifying reader.
fn verify_read(mut reader: impl Read) -> Result<Vec<u8>, Box<Failure>> {
    let mut out = Vec::new();
    match reader.read_to_end(&mut out) {
        Ok(n) => {
            assert_eq!(n, out.len());
            Ok(out)
        }
        Err(e) => Err(Box::new(Failure {
            kind: e.kind(),
            verify: VerifyError::from_io(&e).cloned(),
            message: e.to_string(),
        })),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. digests.json: the parser's verdicts
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct DigestCase {
    input: String,
    verdict: String,
    #[serde(default)]
    why: String,
    algorithm: Option<String>,
    encoded: Option<String>,
}

/// The algorithm part of a digest string as the vectors mean it (everything before the first
/// ':').
fn algorithm_part(input: &str) -> &str {
    input.split_once(':').map_or(input, |(alg, _)| alg)
}

fn check_digest_case(case: &DigestCase) -> Result<(), String> {
    let input = case.input.as_str();
    let parsed = Digest::parse(input);

    // The other entry points must agree with `Digest::parse`.
    if input.parse::<Digest>() != parsed {
        return Err("FromStr disagrees with Digest::parse".into());
    }
    if Digest::try_from(input) != parsed {
        return Err("TryFrom<&str> disagrees with Digest::parse".into());
    }
    if let Err(e) = &parsed {
        let message = e.to_string();
        if message.contains(['\n', '\r']) {
            return Err(format!("error message is not one line: {message:?}"));
        }
        if !message.contains(&format!("{input:?}")) {
            return Err(format!(
                "error message does not name the input: {message:?}"
            ));
        }
    }

    match case.verdict.as_str() {
        "valid" => {
            let (Some(algorithm), Some(encoded)) = (&case.algorithm, &case.encoded) else {
                return Err(
                    "a valid case needs `algorithm` and `encoded` in the vector file".into(),
                );
            };
            let digest = parsed.map_err(|e| format!("expected valid, got error {e:?}"))?;
            if digest.algorithm().name() != algorithm {
                return Err(format!(
                    "algorithm {} instead of {algorithm}",
                    digest.algorithm()
                ));
            }
            if Algorithm::from_name(algorithm) != Some(digest.algorithm()) {
                return Err(format!(
                    "Algorithm::from_name({algorithm:?}) does not give the digest's algorithm"
                ));
            }
            if digest.encoded() != *encoded {
                return Err(format!(
                    "encoded() = {:?}, expected {encoded:?}",
                    digest.encoded()
                ));
            }
            if digest.as_bytes().len() * 2 != digest.algorithm().hex_len() {
                return Err(format!("as_bytes() has {} bytes", digest.as_bytes().len()));
            }
            if digest.to_string() != input {
                return Err(format!("Display gives {digest}, not the input"));
            }
            if Digest::parse(&digest.to_string()) != Ok(digest) {
                return Err("parse(display(d)) != d".into());
            }
            let path: PathBuf = ["blobs", algorithm.as_str(), encoded.as_str()]
                .iter()
                .collect();
            if digest.blob_path() != path {
                return Err(format!("blob_path() = {}", digest.blob_path().display()));
            }
            if digest.blob_entry_name() != format!("blobs/{algorithm}/{encoded}") {
                return Err(format!("blob_entry_name() = {}", digest.blob_entry_name()));
            }
            Ok(())
        }
        "invalid-format" => match parsed {
            Err(ParseDigestError::InvalidFormat { input: named, .. }) if named == input => Ok(()),
            other => Err(format!(
                "expected InvalidFormat naming the input, got {other:?}"
            )),
        },
        "invalid-length" => match parsed {
            Err(ParseDigestError::InvalidLength {
                input: named,
                algorithm,
                expected,
                actual,
            }) => {
                let encoded_len = input.split_once(':').map_or(0, |(_, e)| e.len());
                if named != input {
                    Err(format!("error names {named:?}, not the input"))
                } else if algorithm.name() != algorithm_part(input) {
                    Err(format!("error names algorithm {algorithm}"))
                } else if expected != algorithm.hex_len() || actual != encoded_len {
                    Err(format!(
                        "error says expected {expected}, actual {actual}; input has {encoded_len}"
                    ))
                } else {
                    Ok(())
                }
            }
            other => Err(format!("expected InvalidLength, got {other:?}")),
        },
        "unsupported" => {
            let want = case
                .algorithm
                .as_deref()
                .unwrap_or_else(|| algorithm_part(input));
            match parsed {
                Err(ParseDigestError::Unsupported {
                    input: named,
                    algorithm,
                }) if named == input && algorithm == want => Ok(()),
                other => Err(format!(
                    "expected Unsupported {{ algorithm: {want:?} }}, got {other:?}"
                )),
            }
        }
        other => Err(format!("unknown verdict {other:?} in the vector file")),
    }
}

#[test]
fn conformance_digest_vectors() {
    let vectors: VectorFile<DigestCase> = load_vectors("digests.json");
    assert!(!vectors.about.is_empty());
    assert!(
        vectors.cases.len() >= 20,
        "digests.json has only {} cases; expected at least 20",
        vectors.cases.len()
    );
    for verdict in ["valid", "invalid-format", "invalid-length", "unsupported"] {
        assert!(
            vectors.cases.iter().any(|c| c.verdict == verdict),
            "digests.json has no {verdict:?} case"
        );
    }

    let failures: Vec<String> = vectors
        .cases
        .iter()
        .filter_map(|case| {
            check_digest_case(case).err().map(|e| {
                format!(
                    "{:?} (verdict {}, {}): {e}",
                    case.input, case.verdict, case.why
                )
            })
        })
        .collect();
    assert_no_failures("digests.json cases", vectors.cases.len(), &failures);
}

// ---------------------------------------------------------------------------------------------
// 2. content-digests.json: hashing through every entry point
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ContentCase {
    name: String,
    size: u64,
    /// One digest string per algorithm, keyed by algorithm name.
    #[serde(flatten)]
    digests: BTreeMap<String, String>,
}

/// The input a case name describes (see the file's "about").
fn content_for(name: &str) -> Result<Vec<u8>, String> {
    Ok(match name {
        "empty" => Vec::new(),
        "abc" => b"abc".to_vec(),
        "empty-json-object" => b"{}".to_vec(),
        "bytes-0-to-250-repeated-1025" => (0..1025u32).map(|i| (i % 251) as u8).collect(),
        "one-mib-of-0x61" => vec![b'a'; 1_048_576],
        other => {
            return Err(format!(
                "unknown content case name {other:?}: teach content_for() to build it"
            ));
        }
    })
}

fn check_content_case(case: &ContentCase, algorithm: Algorithm, data: &[u8]) -> Result<(), String> {
    let text = case
        .digests
        .get(algorithm.name())
        .ok_or_else(|| format!("no {} digest in the vector file", algorithm.name()))?;
    let expected = Digest::parse(text).map_err(|e| format!("vector digest does not parse: {e}"))?;
    if expected.algorithm() != algorithm {
        return Err(format!("vector digest {expected} is not {algorithm}"));
    }
    let size = case.size;

    let one_shot = algorithm.digest(data);
    if one_shot != expected {
        return Err(format!("Algorithm::digest gives {one_shot}"));
    }

    let chunked = hash_in_chunks(algorithm, data, &ODD_CHUNKS);
    if chunked != expected {
        return Err(format!("Hasher fed odd-sized chunks gives {chunked}"));
    }

    let from_reader = algorithm
        .digest_reader(data)
        .map_err(|e| format!("digest_reader: {e}"))?;
    if from_reader != (expected, size) {
        return Err(format!("digest_reader gives {from_reader:?}"));
    }
    let trickled = algorithm
        .digest_reader(Trickle::new(data))
        .map_err(|e| format!("digest_reader(trickle): {e}"))?;
    if trickled != (expected, size) {
        return Err(format!(
            "digest_reader over a trickling, interrupted reader gives {trickled:?}"
        ));
    }

    let (written, writer_digest, writer_count) = write_in_chunks(algorithm, data, &ODD_CHUNKS);
    if written != data || writer_digest != expected || writer_count != size {
        return Err(format!(
            "HashingWriter gives {writer_digest} over {writer_count} bytes"
        ));
    }

    for (label, expected_size) in [("size given", Some(size)), ("size None", None)] {
        let mut reader = VerifyingReader::new(data, expected, expected_size);
        let mut out = Vec::new();
        reader
            .read_to_end(&mut out)
            .map_err(|e| format!("VerifyingReader ({label}): {e}"))?;
        if out != data || reader.bytes_read() != size {
            return Err(format!(
                "VerifyingReader ({label}) passed {} bytes",
                out.len()
            ));
        }
        // Past the end, the reader keeps reporting a clean end of file.
        if reader
            .read(&mut [0u8; 16])
            .map_err(|e| format!("read after EOF: {e}"))?
            != 0
        {
            return Err(format!("VerifyingReader ({label}) yields data after EOF"));
        }
    }
    let trickled = verify_read(VerifyingReader::new(
        Trickle::new(data),
        expected,
        Some(size),
    ))
    .map_err(|e| format!("VerifyingReader over a trickling reader: {e:?}"))?;
    if trickled != data {
        return Err("VerifyingReader over a trickling reader passed other bytes".into());
    }
    Ok(())
}

#[test]
fn conformance_content_digests() {
    let vectors: VectorFile<ContentCase> = load_vectors("content-digests.json");
    assert!(!vectors.about.is_empty());
    assert!(
        vectors.cases.len() >= 5,
        "content-digests.json has only {} cases",
        vectors.cases.len()
    );

    let mut failures = Vec::new();
    let mut checked = 0;
    for case in &vectors.cases {
        let data = match content_for(&case.name) {
            Ok(data) => data,
            Err(e) => {
                failures.push(format!("{}: {e}", case.name));
                continue;
            }
        };
        if data.len() as u64 != case.size {
            failures.push(format!(
                "{}: built {} bytes, the file says {}",
                case.name,
                data.len(),
                case.size
            ));
            continue;
        }
        for name in case.digests.keys() {
            if Algorithm::from_name(name).is_none() {
                failures.push(format!(
                    "{}: digest for unregistered algorithm {name:?}",
                    case.name
                ));
            }
        }
        for algorithm in Algorithm::ALL {
            checked += 1;
            if let Err(e) = check_content_case(case, algorithm, &data) {
                failures.push(format!("{} / {algorithm}: {e}", case.name));
            }
        }
    }
    assert_no_failures("content-digest checks", checked, &failures);
}

// ---------------------------------------------------------------------------------------------
// 3. VerifyingReader failure modes
// ---------------------------------------------------------------------------------------------

const CONTENT: &[u8] = b"the quick brown fox jumps over the lazy dog";

#[test]
fn verifying_reader_wrong_digest_fails_at_the_end() {
    for algorithm in Algorithm::ALL {
        let expected = algorithm.digest(b"some other content");
        let actual = algorithm.digest(CONTENT);
        let mut reader = VerifyingReader::new(CONTENT, expected, Some(CONTENT.len() as u64));

        // Reads before the end hand the content out; only the read reaching the end fails.
        let mut buf = [0u8; 10];
        let mut out = Vec::new();
        let err = loop {
            match reader.read(&mut buf) {
                Ok(0) => panic!("{algorithm}: a clean EOF for content with the wrong digest"),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        assert_eq!(
            out, CONTENT,
            "{algorithm}: all content is passed on before the failure"
        );
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{algorithm}");
        let verify = VerifyError::from_io(&err)
            .unwrap_or_else(|| panic!("{algorithm}: no VerifyError in {err:?}"));
        assert_eq!(
            verify,
            &VerifyError::Digest { expected, actual },
            "{algorithm}"
        );

        let message = err.to_string();
        assert!(message.contains(&expected.to_string()), "{message}");
        assert!(message.contains(&actual.to_string()), "{message}");

        // A caller that ignores the failure and reads again must not get a clean EOF.
        for _ in 0..2 {
            let again = reader.read(&mut buf).expect_err("the failure is sticky");
            assert_eq!(
                VerifyError::from_io(&again),
                Some(&VerifyError::Digest { expected, actual }),
                "{algorithm}"
            );
        }

        // Through read_to_end as well.
        let Failure { kind, verify, .. } =
            *verify_read(VerifyingReader::new(CONTENT, expected, None)).unwrap_err();
        assert_eq!(kind, io::ErrorKind::InvalidData);
        assert_eq!(
            verify,
            Some(VerifyError::Digest { expected, actual }),
            "{algorithm}"
        );
    }
}

#[test]
fn verifying_reader_too_short_reports_size() {
    for algorithm in Algorithm::ALL {
        let expected = algorithm.digest(CONTENT);
        let size = CONTENT.len() as u64;
        for cut in [0, 1, CONTENT.len() - 1] {
            let Failure {
                kind,
                verify,
                message,
            } = *verify_read(VerifyingReader::new(&CONTENT[..cut], expected, Some(size)))
                .unwrap_err();
            assert_eq!(kind, io::ErrorKind::InvalidData);
            assert_eq!(
                verify,
                Some(VerifyError::Size {
                    digest: expected,
                    expected: size,
                    actual: cut as u64
                }),
                "{algorithm}, {cut} of {size} bytes"
            );
            assert!(message.contains(&expected.to_string()), "{message}");
            assert!(message.contains(&size.to_string()), "{message}");
        }
    }
}

#[test]
fn verifying_reader_too_long_fails_before_consuming_everything() {
    let long = vec![b'a'; 1 << 20];
    for algorithm in Algorithm::ALL {
        for size in [0usize, 1, 10, 4096] {
            let expected = algorithm.digest(&long[..size]);

            // One extra byte after the right content is an error.
            let Failure { kind, verify, .. } = *verify_read(VerifyingReader::new(
                &long[..size + 1],
                expected,
                Some(size as u64),
            ))
            .unwrap_err();
            assert_eq!(kind, io::ErrorKind::InvalidData);
            assert!(
                matches!(verify, Some(VerifyError::Size { digest, expected: e, actual })
                    if digest == expected && e == size as u64 && actual > size as u64),
                "{algorithm}, size {size}: {verify:?}"
            );

            // A long stream fails early: the consumer never gets more than `size` bytes, and the
            // rest of the stream is not read.
            let mut reader =
                VerifyingReader::new(Cursor::new(&long[..]), expected, Some(size as u64));
            let mut buf = [0u8; 8192];
            let mut passed = 0usize;
            let err = loop {
                match reader.read(&mut buf) {
                    Ok(0) => panic!("{algorithm}: a clean EOF for content longer than its size"),
                    Ok(n) => passed += n,
                    Err(e) => break e,
                }
            };
            assert!(
                passed <= size,
                "{algorithm}: {passed} bytes passed on, expected size {size}"
            );
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert!(
                matches!(VerifyError::from_io(&err), Some(VerifyError::Size { .. })),
                "{err:?}"
            );
            let consumed = reader.into_inner().position();
            assert!(
                consumed < long.len() as u64,
                "{algorithm}: the whole stream was read ({consumed} bytes)"
            );
        }
    }
}

#[test]
fn verifying_reader_without_size_still_checks_digest() {
    for algorithm in Algorithm::ALL {
        let expected = algorithm.digest(CONTENT);
        assert_eq!(
            verify_read(VerifyingReader::new(CONTENT, expected, None)).unwrap(),
            CONTENT
        );

        let short = &CONTENT[..CONTENT.len() - 1];
        let Failure { kind, verify, .. } =
            *verify_read(VerifyingReader::new(short, expected, None)).unwrap_err();
        assert_eq!(kind, io::ErrorKind::InvalidData);
        assert_eq!(
            verify,
            Some(VerifyError::Digest {
                expected,
                actual: algorithm.digest(short)
            })
        );

        let mut long = CONTENT.to_vec();
        long.push(b'!');
        let Failure { verify, .. } =
            *verify_read(VerifyingReader::new(&long[..], expected, None)).unwrap_err();
        assert_eq!(
            verify,
            Some(VerifyError::Digest {
                expected,
                actual: algorithm.digest(&long)
            })
        );
    }
}

#[test]
fn verifying_reader_zero_length_read_is_not_end_of_file() {
    let expected = Algorithm::Sha256.digest(CONTENT);
    let mut reader = VerifyingReader::new(CONTENT, Algorithm::Sha256.digest(b"wrong"), None);
    assert_eq!(reader.read(&mut []).unwrap(), 0);
    assert_eq!(reader.bytes_read(), 0);

    let mut reader = VerifyingReader::new(CONTENT, expected, Some(CONTENT.len() as u64));
    assert_eq!(reader.read(&mut []).unwrap(), 0);
    assert_eq!(verify_read(&mut reader).unwrap(), CONTENT);
    assert_eq!(reader.bytes_read(), CONTENT.len() as u64);
}

#[test]
fn verify_error_display_names_the_digest() {
    let expected = Algorithm::Sha512.digest(b"a");
    let actual = Algorithm::Sha512.digest(b"b");
    let message = VerifyError::Digest { expected, actual }.to_string();
    assert!(
        message.contains(&expected.to_string()) && message.contains(&actual.to_string()),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");

    let message = VerifyError::Size {
        digest: expected,
        expected: 12345,
        actual: 678,
    }
    .to_string();
    assert!(message.contains(&expected.to_string()), "{message}");
    assert!(
        message.contains("12345") && message.contains("678"),
        "{message}"
    );

    // An unrelated I/O error carries no VerifyError.
    assert_eq!(VerifyError::from_io(&io::Error::other("boom")), None);
    assert_eq!(
        VerifyError::from_io(&io::ErrorKind::InvalidData.into()),
        None
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Error messages
// ---------------------------------------------------------------------------------------------

#[test]
fn parse_errors_are_one_line_and_name_the_input() {
    let inputs = [
        "",
        "sha256",
        "sha256:abc\ndef",
        "sha256:abc\r\n",
        "\nsha256:0",
        "sha256:\u{2028}",
        "sha256:\u{85}",
        "sha256:\"quoted\"",
        "sha256\n:abc",
        "sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "sha512:abc",
        "blake3:ABC",
        "sha256:é",
    ];
    for input in inputs {
        let err = Digest::parse(input).unwrap_err();
        let message = err.to_string();
        assert!(
            !message.contains(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']),
            "error for {input:?} is not one line: {message:?}"
        );
        assert!(
            message.contains(&format!("{input:?}")),
            "error for {input:?} does not name it: {message:?}"
        );
    }
}

#[test]
fn parse_error_for_a_huge_input_is_short() {
    const TEN_MB: usize = 10 * 1024 * 1024;
    let cases: Vec<(&str, String)> = vec![
        ("no separator", "a".repeat(TEN_MB)),
        (
            "long encoded part",
            format!("sha256:{}", "a".repeat(TEN_MB)),
        ),
        (
            "long unknown algorithm",
            format!("{}:abc", "x".repeat(TEN_MB)),
        ),
        ("non-ASCII", format!("sha256:{}", "é".repeat(TEN_MB / 2))),
        ("control characters", "\u{1}".repeat(TEN_MB)),
        ("unprintable characters", "\u{10ffff}".repeat(TEN_MB / 4)),
        ("newlines", "\n".repeat(TEN_MB)),
    ];
    for (label, input) in &cases {
        let err = Digest::parse(input).unwrap_err();
        let message = err.to_string();
        assert!(
            message.len() < 1024,
            "{label}: the error message has {} bytes",
            message.len()
        );
        assert!(!message.contains('\n'), "{label}: {message:?}");
        // It still names the start of the input.
        let start: String = input.chars().take(8).collect();
        let start = format!("{start:?}");
        assert!(
            message.contains(start.trim_end_matches('"')),
            "{label}: {message:?}"
        );
    }

    // The numbers in a length error describe the whole input, not the shortened one.
    let err = Digest::parse(&format!("sha256:{}", "a".repeat(TEN_MB))).unwrap_err();
    assert!(
        matches!(
            err,
            ParseDigestError::InvalidLength {
                expected: 64,
                actual: TEN_MB,
                ..
            }
        ),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. oci_spec conversions
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "oci-spec")]
#[test]
fn oci_spec_conversions_round_trip() {
    for algorithm in Algorithm::ALL {
        let digest = algorithm.digest(CONTENT);

        let spec: oci_spec::image::Digest = digest.into();
        assert_eq!(spec.to_string(), digest.to_string());
        assert_eq!(spec.algorithm().as_ref(), algorithm.name());
        assert_eq!(spec.digest(), digest.encoded());
        assert_eq!(oci_spec::image::Digest::from(&digest), spec);

        assert_eq!(Digest::try_from(&spec), Ok(digest));
        assert_eq!(Digest::try_from(spec), Ok(digest));

        // A digest string oci-spec parses on its own converts to the same value.
        let spec: oci_spec::image::Digest = digest.to_string().parse().unwrap();
        assert_eq!(Digest::try_from(spec), Ok(digest));
    }

    // oci-spec is laxer than this crate: what it accepts is still checked strictly.
    let lax: oci_spec::image::Digest = "blake3:abc".parse().unwrap();
    assert!(matches!(
        Digest::try_from(&lax),
        Err(ParseDigestError::InvalidLength { .. })
    ));
    let other: oci_spec::image::Digest =
        "sha256+b64:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7".parse().unwrap();
    assert!(matches!(
        Digest::try_from(other),
        Err(ParseDigestError::Unsupported { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Misc API behaviour a user relies on
// ---------------------------------------------------------------------------------------------

#[test]
fn algorithm_registry_is_consistent() {
    let mut names = Vec::new();
    for algorithm in Algorithm::ALL {
        assert_eq!(Algorithm::from_name(algorithm.name()), Some(algorithm));
        assert_eq!(algorithm.name().parse::<Algorithm>(), Ok(algorithm));
        assert_eq!(algorithm.to_string(), algorithm.name());
        assert_eq!(algorithm.hex_len(), 2 * algorithm.output_len());
        assert!(algorithm.output_len() <= Algorithm::MAX_OUTPUT_LEN);
        let digest = algorithm.digest(b"");
        assert_eq!(digest.algorithm(), algorithm);
        assert_eq!(digest.as_bytes().len(), algorithm.output_len());
        assert_eq!(digest.encoded().len(), algorithm.hex_len());
        names.push(algorithm.name());
    }
    assert_eq!(names, ["sha256", "sha512", "blake3"]);
    assert_eq!(Algorithm::default(), Algorithm::Sha256);
    assert!(matches!(
        "sha1".parse::<Algorithm>(),
        Err(ParseDigestError::Unsupported { .. })
    ));
    assert_eq!(Algorithm::from_name("SHA256"), None);
}

#[test]
fn digests_of_different_algorithms_differ() {
    // Same bytes, different algorithms (sha256 and blake3 have the same length): never equal.
    let sha = Digest::parse(&format!("sha256:{}", "ab".repeat(32))).unwrap();
    let b3 = Digest::parse(&format!("blake3:{}", "ab".repeat(32))).unwrap();
    assert_eq!(sha.as_bytes(), b3.as_bytes());
    assert_ne!(sha, b3);
    assert_ne!(sha.blob_path(), b3.blob_path());
    assert_eq!(format!("{sha:?}"), format!("Digest({sha})"));
}

// ---------------------------------------------------------------------------------------------
// 6. Properties
// ---------------------------------------------------------------------------------------------

/// The parser's verdict per the grammar in digests.json's "about", written independently of the
/// library: `Ok(())` for a valid digest, else the name of the expected error variant.
fn reference_verdict(input: &str) -> Result<(), &'static str> {
    let Some((algorithm, encoded)) = input.split_once(':') else {
        return Err("InvalidFormat");
    };
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    if !algorithm.split(['+', '.', '_', '-']).all(component_ok) {
        return Err("InvalidFormat");
    }
    if encoded.is_empty()
        || !encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
    {
        return Err("InvalidFormat");
    }
    let hex_len = match algorithm {
        "sha256" | "blake3" => 64,
        "sha512" => 128,
        _ => return Err("Unsupported"),
    };
    if encoded.len() != hex_len {
        return Err("InvalidLength");
    }
    if !encoded
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err("InvalidFormat");
    }
    Ok(())
}

fn variant_name(result: &Result<Digest, ParseDigestError>) -> Result<(), &'static str> {
    match result {
        Ok(_) => Ok(()),
        Err(ParseDigestError::InvalidFormat { .. }) => Err("InvalidFormat"),
        Err(ParseDigestError::InvalidLength { .. }) => Err("InvalidLength"),
        Err(ParseDigestError::Unsupported { .. }) => Err("Unsupported"),
    }
}

/// Strings near the digest grammar, so that valid digests and every error show up often.
fn near_digest_strings() -> impl Strategy<Value = String> {
    let algorithm = prop_oneof![
        Just("sha256".to_owned()),
        Just("sha512".to_owned()),
        Just("blake3".to_owned()),
        "[a-zA-Z0-9+._/-]{0,10}",
    ];
    let separator = prop_oneof![4 => Just(":"), 1 => Just(""), 1 => Just("::"), 1 => Just(" :")];
    let encoded = prop_oneof![
        "[0-9a-f]{64}",
        "[0-9a-f]{128}",
        "[0-9a-f]{63,65}",
        "[0-9a-fA-F]{64}",
        "[0-9a-zA-Z=_./ -]{0,130}",
        any::<String>(),
    ];
    (algorithm, separator, encoded).prop_map(|(a, s, e)| format!("{a}{s}{e}"))
}

fn check_parser_on(input: &str) -> Result<(), TestCaseError> {
    let parsed = Digest::parse(input);
    prop_assert_eq!(
        variant_name(&parsed),
        reference_verdict(input),
        "verdict for {:?}: {:?}",
        input,
        parsed
    );
    match parsed {
        Ok(digest) => {
            prop_assert_eq!(digest.to_string(), input);
            prop_assert_eq!(Digest::parse(&digest.to_string()), Ok(digest));
        }
        Err(e) => {
            let message = e.to_string();
            prop_assert!(!message.contains('\n'), "{:?}", message);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn prop_streaming_and_verification_agree_with_one_shot(
        data in prop::collection::vec(any::<u8>(), 0..64 * 1024),
        chunks in prop::collection::vec(1usize..5000, 1..12),
        flip_at in any::<prop::sample::Index>(),
        flip_bit in 0u8..8,
    ) {
        let size = data.len() as u64;
        for algorithm in Algorithm::ALL {
            let digest = algorithm.digest(&data);
            prop_assert_eq!(digest.algorithm(), algorithm);
            prop_assert_eq!(hash_in_chunks(algorithm, &data, &chunks), digest);
            let (written, written_digest, count) = write_in_chunks(algorithm, &data, &chunks);
            prop_assert_eq!(&written, &data);
            prop_assert_eq!((written_digest, count), (digest, size));
            prop_assert_eq!(algorithm.digest_reader(&data[..]).unwrap(), (digest, size));

            prop_assert_eq!(Digest::parse(&digest.to_string()), Ok(digest));

            let read = verify_read(VerifyingReader::new(&data[..], digest, Some(size)));
            prop_assert_eq!(read.ok(), Some(data.clone()));
            let read = verify_read(VerifyingReader::new(Trickle::new(&data), digest, None));
            prop_assert_eq!(read.ok(), Some(data.clone()));

            // One flipped bit is caught (an empty input has nothing to flip: add a byte).
            let mut tampered = data.clone();
            if tampered.is_empty() {
                tampered.push(0);
            } else {
                tampered[flip_at.index(data.len())] ^= 1 << flip_bit;
            }
            let actual = algorithm.digest(&tampered);
            prop_assert_ne!(actual, digest);
            let wrong_digest = Some(VerifyError::Digest { expected: digest, actual });
            let err = verify_read(VerifyingReader::new(&tampered[..], digest, None)).unwrap_err();
            prop_assert_eq!(err.kind, io::ErrorKind::InvalidData);
            prop_assert_eq!(&err.verify, &wrong_digest);
            let err = verify_read(VerifyingReader::new(&tampered[..], digest, Some(size)));
            let err = err.unwrap_err();
            prop_assert_eq!(err.kind, io::ErrorKind::InvalidData);
            if data.is_empty() {
                let too_long = matches!(err.verify, Some(VerifyError::Size { .. }));
                prop_assert!(too_long, "{}", err.message);
            } else {
                prop_assert_eq!(&err.verify, &wrong_digest);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn prop_parser_never_panics_on_any_string(input in any::<String>()) {
        check_parser_on(&input)?;
    }

    #[test]
    fn prop_parser_matches_the_grammar_near_valid_digests(input in near_digest_strings()) {
        check_parser_on(&input)?;
    }

    #[test]
    fn prop_display_parse_round_trip(
        algorithm in prop::sample::select(Algorithm::ALL.to_vec()),
        bytes in prop::collection::vec(any::<u8>(), 64),
    ) {
        let encoded = bytes[..algorithm.output_len()].iter().fold(String::new(), |mut s, b| {
            write!(s, "{b:02x}").unwrap();
            s
        });
        let text = format!("{algorithm}:{encoded}");
        let digest = Digest::parse(&text).unwrap();
        prop_assert_eq!(digest.as_bytes(), &bytes[..algorithm.output_len()]);
        prop_assert_eq!(digest.encoded(), encoded);
        prop_assert_eq!(digest.to_string(), text);
    }
}
