//! The breakout corpus: layers built to write, link, remove or chmod outside the target.
//!
//! Every case of containerd's `pkg/archive` `TestBreakouts` (same names; a case with
//! containerd's `apply` pre-state gets it as a first layer), umoci CVE-2021-29136, containerd
//! CVE-2021-32760, the tar-rs advisories' proofs of concept (RUSTSEC-2021-0080, the older
//! tar-rs #129, RUSTSEC-2026-0067 and -0068), absolute and `..` names, PAX records that
//! contradict the ustar header, and whiteouts and links aimed at the canary. Each case
//! unpacks into `dir` in a sandbox that also holds `canary/`; each asserts that nothing
//! beside `dir` changed (paths, types, modes, owners, contents, mtimes), that no host path a
//! containerd case aims at appeared, and what `dir` holds (or that the layer was refused and
//! `dir` is not there).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use oci_core::MemoryStore;
use oci_image::{UnpackOptions, Whiteouts, unpack_image};

use super::unpack_support::*;

type Check = Box<dyn Fn(&Path) -> Result<(), String>>;

enum Expect {
    /// Unpacked, and the check holds for `dir`.
    Holds(Check),
    /// Refused: an error, and no `dir`.
    Refused,
}

struct Case {
    name: &'static str,
    layers: Vec<Vec<Entry>>,
    expect: Expect,
}

fn case(name: &'static str, layers: Vec<Vec<Entry>>, check: Check) -> Case {
    Case {
        name,
        layers,
        expect: Expect::Holds(check),
    }
}

fn refused(name: &'static str, layers: Vec<Vec<Entry>>) -> Case {
    Case {
        name,
        layers,
        expect: Expect::Refused,
    }
}

fn content(path: &'static str, expected: &'static [u8]) -> Check {
    Box::new(move |root| match fs::read(root.join(path)) {
        Ok(bytes) if bytes == expected => Ok(()),
        Ok(bytes) => Err(format!(
            "{path}: {:?}, expected {:?}",
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(expected)
        )),
        Err(e) => Err(format!("{path}: {e}")),
    })
}

fn same_file(a: &'static str, b: &'static str) -> Check {
    Box::new(move |root| {
        let (x, y) = (identity_in_root(root, a), identity_in_root(root, b));
        if x.is_some() && x == y {
            Ok(())
        } else {
            Err(format!("{a} ({x:?}) and {b} ({y:?}) are not the same file"))
        }
    })
}

fn not_same_file(a: &'static str, b: &'static str) -> Check {
    Box::new(move |root| {
        let (x, y) = (identity_in_root(root, a), identity_in_root(root, b));
        if x.is_some() && y.is_some() && x != y {
            Ok(())
        } else {
            Err(format!(
                "{a} ({x:?}) and {b} ({y:?}) are the same file, or missing"
            ))
        }
    })
}

fn same_symlink(a: &'static str, b: &'static str) -> Check {
    Box::new(move |root| {
        let (x, y) = (
            fs::read_link(root.join(a.trim_start_matches('/'))),
            fs::read_link(root.join(b.trim_start_matches('/'))),
        );
        match (x, y) {
            (Ok(x), Ok(y)) if x == y => Ok(()),
            (x, y) => Err(format!(
                "{a} ({x:?}) and {b} ({y:?}) are not the same symlink"
            )),
        }
    })
}

fn missing(path: &'static str) -> Check {
    Box::new(move |root| match fs::symlink_metadata(root.join(path)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => Err(format!("{path} exists: {other:?}")),
    })
}

fn is_dir_with_mode(path: &'static str, mode: u32) -> Check {
    Box::new(move |root| match fs::symlink_metadata(root.join(path)) {
        Ok(meta) if meta.is_dir() && meta.permissions().mode() & 0o7777 == mode => Ok(()),
        other => Err(format!(
            "{path}: {other:?}, expected a directory of mode {mode:o}"
        )),
    })
}

fn symlink_to(path: &'static str, target: &'static str) -> Check {
    Box::new(move |root| match fs::read_link(root.join(path)) {
        Ok(t) if t == Path::new(target) => Ok(()),
        other => Err(format!("{path}: {other:?}, expected a symlink to {target}")),
    })
}

fn is_symlink(path: &'static str) -> Check {
    Box::new(move |root| match fs::symlink_metadata(root.join(path)) {
        Ok(meta) if meta.file_type().is_symlink() => Ok(()),
        other => Err(format!("{path}: {other:?}, expected a symlink")),
    })
}

fn is_fifo(path: &'static str) -> Check {
    use std::os::unix::fs::FileTypeExt;
    Box::new(move |root| match fs::symlink_metadata(root.join(path)) {
        Ok(meta) if meta.file_type().is_fifo() => Ok(()),
        other => Err(format!("{path}: {other:?}, expected a FIFO")),
    })
}

fn all(checks: Vec<Check>) -> Check {
    Box::new(move |root| checks.iter().try_for_each(|check| check(root)))
}

/// containerd's `TestBreakouts`, case by case.
fn containerd_cases(sandbox: &Sandbox) -> Vec<Case> {
    let unbroken = || content("etc/unbroken", b"unbroken");
    let passwd = || vec![dir("etc", 0o770), file("/etc/passwd", "inside", 0o644)];
    let with = |mut first: Vec<Entry>, rest: Vec<Entry>| {
        first.extend(rest);
        first
    };
    // The pre-state of the cases that have one: etc/passwd.
    let etc_passwd =
        |text: &'static str| vec![dir("/etc/", 0o755), file("/etc/passwd", text, 0o644)];
    let perm400 = sandbox.canary().join("perm400");
    let outside = sandbox.canary().join("also-exists-outside-root");
    let breakout_name = "foo/tmp/breakout-oci-image-test";
    vec![
        case(
            "SymlinkAbsolute",
            vec![vec![
                dir("etc", 0o755),
                symlink_entry("localetc", "/etc"),
                file("/localetc/unbroken", "unbroken", 0o644),
            ]],
            unbroken(),
        ),
        case(
            "SymlinkUpAndOut",
            vec![vec![
                dir("etc", 0o755),
                dir("dummy", 0o755),
                symlink_entry("localetc", "/dummy/../etc"),
                file("/localetc/unbroken", "unbroken", 0o644),
            ]],
            unbroken(),
        ),
        case(
            "SymlinkMultipleAbsolute",
            vec![vec![
                dir("etc", 0o755),
                dir("dummy", 0o755),
                symlink_entry("/dummy/etc", "/etc"),
                symlink_entry("localetc", "/dummy/etc"),
                file("/dummy/etc/unbroken", "unbroken", 0o644),
            ]],
            unbroken(),
        ),
        case(
            "SymlinkMultipleRelative",
            vec![vec![
                dir("etc", 0o755),
                dir("dummy", 0o755),
                symlink_entry("/dummy/etc", "/etc"),
                symlink_entry("localetc", "./dummy/etc"),
                file("/dummy/etc/unbroken", "unbroken", 0o644),
            ]],
            unbroken(),
        ),
        case(
            "SymlinkEmptyFile",
            vec![vec![
                dir("etc", 0o755),
                file("etc/emptied", "notempty", 0o644),
                symlink_entry("localetc", "/etc"),
                file("/localetc/emptied", "", 0o644),
            ]],
            content("etc/emptied", b""),
        ),
        case(
            "HardlinkRelative",
            vec![with(
                passwd(),
                vec![
                    dir("breakouts", 0o755),
                    symlink_entry("breakouts/d1", "../../etc"),
                    link("breakouts/mypasswd", "/breakouts/d1/passwd"),
                ],
            )],
            same_file("/breakouts/mypasswd", "/etc/passwd"),
        ),
        case(
            "HardlinkDownAndOut",
            vec![with(
                passwd(),
                vec![
                    dir("breakouts", 0o755),
                    dir("downandout", 0o755),
                    symlink_entry("breakouts/d1", "../downandout/../../etc"),
                    link("breakouts/mypasswd", "/breakouts/d1/passwd"),
                ],
            )],
            same_file("/breakouts/mypasswd", "/etc/passwd"),
        ),
        case(
            "HardlinkAbsolute",
            vec![with(
                passwd(),
                vec![
                    symlink_entry("localetc", "/etc"),
                    link("localpasswd", "/localetc/passwd"),
                ],
            )],
            same_file("localpasswd", "/etc/passwd"),
        ),
        case(
            "HardlinkRelativeLong",
            vec![with(
                passwd(),
                vec![
                    symlink_entry("localetc", "../../../../../../../etc"),
                    link("localpasswd", "/localetc/passwd"),
                ],
            )],
            same_file("localpasswd", "/etc/passwd"),
        ),
        case(
            "HardlinkRelativeUpAndOut",
            vec![with(
                passwd(),
                vec![
                    symlink_entry("localetc", "upandout/../../../etc"),
                    link("localpasswd", "/localetc/passwd"),
                ],
            )],
            same_file("localpasswd", "/etc/passwd"),
        ),
        case(
            "HardlinkDirectRelative",
            vec![with(
                passwd(),
                vec![link("localpasswd", "../../../../../etc/passwd")],
            )],
            same_file("localpasswd", "/etc/passwd"),
        ),
        case(
            "HardlinkDirectAbsolute",
            vec![with(passwd(), vec![link("localpasswd", "/etc/passwd")])],
            same_file("localpasswd", "/etc/passwd"),
        ),
        case(
            "SymlinkParentDirectory",
            vec![with(
                passwd(),
                vec![
                    symlink_entry("..", "/etc/"),
                    link("localpasswd", "/etc/passwd"),
                ],
            )],
            same_file("/localpasswd", "/etc/passwd"),
        ),
        case(
            "SymlinkEmptyFilename",
            vec![with(
                passwd(),
                vec![
                    symlink_entry("", "/etc/"),
                    link("localpasswd", "/etc/passwd"),
                ],
            )],
            same_file("/localpasswd", "/etc/passwd"),
        ),
        case(
            "SymlinkParentRelative",
            vec![with(
                passwd(),
                vec![
                    symlink_entry("localetc/sub/..", "/etc/"),
                    link("/localetc/localpasswd", "/etc/passwd"),
                ],
            )],
            same_file("/localetc/localpasswd", "/etc/passwd"),
        ),
        case(
            "SymlinkSlashEnded",
            vec![with(
                passwd(),
                vec![
                    dir("localetc/", 0o770),
                    link("/localetc/localpasswd", "/etc/passwd"),
                ],
            )],
            same_file("/localetc/localpasswd", "/etc/passwd"),
        ),
        case(
            "SymlinkOverrideDirectory",
            vec![
                with(etc_passwd("inside"), vec![dir("/localetc/", 0o755)]),
                vec![
                    symlink_entry("localetc", "/etc"),
                    link("/localetc/localpasswd", "/etc/passwd"),
                ],
            ],
            same_file("/localetc/localpasswd", "/etc/passwd"),
        ),
        case(
            "SymlinkOverrideDirectoryRelative",
            vec![
                with(etc_passwd("inside"), vec![dir("/localetc/", 0o755)]),
                vec![
                    symlink_entry("localetc", "../../etc"),
                    link("/localetc/localpasswd", "/etc/passwd"),
                ],
            ],
            same_file("/localetc/localpasswd", "/etc/passwd"),
        ),
        case(
            "DirectoryOverrideSymlink",
            vec![
                with(
                    etc_passwd("inside"),
                    vec![symlink_entry("localetc", "/etc")],
                ),
                vec![
                    dir("/localetc/", 0o755),
                    link("/localetc/localpasswd", "/etc/passwd"),
                ],
            ],
            same_file("/localetc/localpasswd", "/etc/passwd"),
        ),
        case(
            "DirectoryOverrideSymlinkAndHardlink",
            vec![
                with(
                    etc_passwd("inside"),
                    vec![
                        symlink_entry("localetc", "etc"),
                        link("/localetc/localpasswd", "/etc/passwd"),
                    ],
                ),
                vec![
                    dir("/localetc/", 0o755),
                    file("/localetc/localpasswd", "different", 0o644),
                ],
            ],
            all(vec![
                not_same_file("/localetc/localpasswd", "/etc/passwd"),
                content("etc/passwd", b"inside"),
                content("localetc/localpasswd", b"different"),
            ]),
        ),
        refused(
            "WhiteoutRootParent",
            vec![etc_passwd("inside"), vec![empty(".wh...")]],
        ),
        refused(
            "WhiteoutParent",
            vec![etc_passwd("inside"), vec![empty("etc/.wh...")]],
        ),
        refused(
            "WhiteoutRoot",
            vec![etc_passwd("inside"), vec![empty(".wh..")]],
        ),
        refused(
            "WhiteoutCurrentDirectory",
            vec![etc_passwd("inside"), vec![empty("etc/.wh..")]],
        ),
        case(
            "WhiteoutSymlink",
            vec![
                with(
                    etc_passwd("all users"),
                    vec![symlink_entry("localetc", "/etc")],
                ),
                vec![empty(".wh.localetc")],
            ],
            all(vec![
                content("etc/passwd", b"all users"),
                missing("localetc"),
            ]),
        ),
        case(
            "WhiteoutSymlinkPath",
            vec![
                with(
                    etc_passwd("all users"),
                    vec![
                        file("/etc/whitedout", "ahhhh whiteout", 0o644),
                        symlink_entry("localetc", "/etc"),
                    ],
                ),
                vec![empty("localetc/.wh.whitedout")],
            ],
            all(vec![
                content("etc/passwd", b"all users"),
                missing("etc/whitedout"),
            ]),
        ),
        case(
            "WhiteoutDirectoryName",
            vec![
                with(
                    etc_passwd("all users"),
                    vec![
                        file("/etc/whitedout", "ahhhh whiteout", 0o644),
                        symlink_entry("localetc", "/etc"),
                    ],
                ),
                vec![file(".wh.etc/somefile", "non-empty", 0o644)],
            ],
            all(vec![
                content("etc/passwd", b"all users"),
                content(".wh.etc/somefile", b"non-empty"),
            ]),
        ),
        case(
            "WhiteoutDeadSymlinkParent",
            vec![
                with(
                    etc_passwd("all users"),
                    vec![symlink_entry("localetc", "/dne")],
                ),
                vec![empty("localetc/.wh.etc")],
            ],
            content("etc/passwd", b"all users"),
        ),
        case(
            "WhiteoutRelativePath",
            vec![
                with(
                    etc_passwd("all users"),
                    vec![symlink_entry("localetc", "/dne")],
                ),
                vec![empty("dne/../.wh.etc")],
            ],
            missing("etc/passwd"),
        ),
        case(
            "SymlinkOverridePath",
            vec![vec![
                dir("foo", 0o755),
                dir("foo/tmp", 0o755),
                file(breakout_name, [0, 1, 2], 0o644),
                symlink_entry("foo", "/"),
                file(breakout_name, [3, 4, 5], 0o644),
                dir("foo", 0o755),
                dir("foo/tmp", 0o755),
                file(breakout_name, [6, 7, 8], 0o644),
            ]],
            all(vec![
                content("foo/tmp/breakout-oci-image-test", &[6, 7, 8]),
                // What went through the symlink landed in the root's own /tmp.
                content("tmp/breakout-oci-image-test", &[3, 4, 5]),
            ]),
        ),
        case(
            "HardlinkSymlinkBeforeCreateTarget",
            vec![vec![
                dir("etc", 0o770),
                symlink_entry("localpasswd", "/etc/passwd"),
                link("localpasswd-dup", "localpasswd"),
                file("/etc/passwd", "after", 0o644),
            ]],
            same_file("localpasswd-dup", "/etc/passwd"),
        ),
        case(
            "HardlinkSymlinkRelative",
            vec![with(
                passwd(),
                vec![
                    symlink_entry("passwdlink", "../../../../../etc/passwd"),
                    link("localpasswd", "/passwdlink"),
                ],
            )],
            all(vec![
                same_symlink("/localpasswd", "/passwdlink"),
                same_file("/localpasswd", "/etc/passwd"),
            ]),
        ),
        case(
            "HardlinkSymlinkAbsolute",
            vec![with(
                passwd(),
                vec![
                    symlink_entry("passwdlink", "/etc/passwd"),
                    link("localpasswd", "/passwdlink"),
                ],
            )],
            all(vec![
                same_symlink("/localpasswd", "/passwdlink"),
                same_file("/localpasswd", "/etc/passwd"),
            ]),
        ),
        {
            // Names that are the canary's absolute paths: the symlink lands inside `dir`
            // under that path, the hard link links that symlink, and the canary's 0400 file
            // keeps its mode.
            case(
                "HardlinkSymlinkChmod",
                vec![vec![
                    symlink_entry(bytes(&outside), bytes(&perm400)),
                    link("sketchylink", bytes(&outside)),
                ]],
                is_symlink("sketchylink"),
            )
        },
    ]
}

/// Beyond containerd: the CVEs and advisories, names out of the root, PAX disagreements, and
/// every kind of operation aimed at the canary.
fn other_cases(sandbox: &Sandbox) -> Vec<Case> {
    let canary_file = bytes(&sandbox.canary().join("file"));
    let canary_dir = bytes(&sandbox.canary().join("dir"));
    let canary = bytes(&sandbox.canary());
    vec![
        // umoci CVE-2021-29136: a symlink that names the root itself.
        case(
            "Cve2021_29136SymlinkNamedDot",
            vec![vec![
                symlink_entry(".", "../canary"),
                file("pwned", "x", 0o644),
            ]],
            all(vec![content("pwned", b"x"), missing("canary")]),
        ),
        case(
            "Cve2021_29136SymlinkNamedSlash",
            vec![vec![
                symlink_entry("/", canary.clone()),
                file("pwned", "x", 0o644),
            ]],
            content("pwned", b"x"),
        ),
        case(
            "Cve2021_29136SymlinkNamedDotSlashInLowerLayer",
            vec![
                vec![symlink_entry("./", "../canary")],
                vec![file("pwned", "x", 0o644), dir(".", 0o777)],
            ],
            content("pwned", b"x"),
        ),
        // containerd CVE-2021-32760: the mode of a symlink entry applied through it.
        case(
            "Cve2021_32760ChmodThroughSymlinkRelative",
            vec![vec![symlink_entry("link", "../canary/file")]],
            symlink_to("link", "../canary/file"),
        ),
        case(
            "Cve2021_32760ChmodThroughSymlinkAbsolute",
            vec![vec![
                symlink_entry("link", canary_file.clone()).with_owner(1234, 1234),
            ]],
            is_symlink("link"),
        ),
        case(
            "ChmodOfDirectoryThroughLowerLayersSymlink",
            vec![
                vec![symlink_entry("d", canary_dir.clone())],
                vec![dir("d", 0o777).with_owner(1234, 1234)],
            ],
            is_dir_with_mode("d", 0o777),
        ),
        case(
            "MtimeAndOwnerOfHardLinkToSymlinkOut",
            vec![vec![
                symlink_entry("s", canary_file.clone()),
                link("h", "s").with_mtime(5),
                dir("x", 0o700).with_mtime(5),
            ]],
            same_symlink("s", "h"),
        ),
        // tar-rs RUSTSEC-2021-0080: directories created through a symlink to `..`.
        case(
            "Rustsec2021_0080DirectoriesThroughDotDotSymlink",
            vec![vec![
                symlink_entry("symlink", ".."),
                file("symlink/exploit/foo/bar", "", 0o644),
            ]],
            all(vec![
                content("exploit/foo/bar", b""),
                symlink_to("symlink", ".."),
            ]),
        ),
        // tar-rs #129: a file over a symlink to an absolute path outside.
        case(
            "TarRs129FileOverAbsoluteSymlink",
            vec![vec![
                symlink_entry("symlink", canary_file.clone()),
                file("symlink", "overwritten", 0o644),
            ]],
            content("symlink", b"overwritten"),
        ),
        // tar-rs RUSTSEC-2026-0067: a directory entry over a symlink chmods its target.
        case(
            "Rustsec2026_0067DirectoryOverSymlinkRelative",
            vec![vec![symlink_entry("x", "../canary/dir"), dir("x", 0o777)]],
            is_dir_with_mode("x", 0o777),
        ),
        case(
            "Rustsec2026_0067DirectoryOverSymlinkAbsolute",
            vec![vec![
                symlink_entry("x", canary_dir.clone()),
                dir("x", 0o1777),
            ]],
            is_dir_with_mode("x", 0o1777),
        ),
        // tar-rs RUSTSEC-2026-0068: a PAX size the ustar header contradicts; the PAX size
        // wins, and what the ustar size would have hidden is parsed as an entry, confined.
        {
            let hidden = tar(&[file("../../canary/hidden", "smuggled", 0o644)]);
            let hidden_header = hidden[..512 + 512].to_vec();
            case(
                "Rustsec2026_0068PaxSizeDisagreesWithUstar",
                vec![vec![
                    file("carrier", hidden_header, 0o644)
                        .with_pax("size", "0")
                        .with_header_size(1024),
                ]],
                all(vec![
                    content("carrier", b""),
                    content("canary/hidden", b"smuggled"),
                ]),
            )
        },
        case(
            "PaxPathDisagreesWithUstar",
            vec![vec![
                file("innocent", "pwned", 0o644).with_pax("path", "../../canary/file"),
            ]],
            all(vec![content("canary/file", b"pwned"), missing("innocent")]),
        ),
        case(
            "PaxAbsolutePathDisagreesWithUstar",
            vec![vec![
                file("innocent", "pwned", 0o644).with_pax("path", canary_file.clone()),
            ]],
            missing("innocent"),
        ),
        case(
            "PaxLinkpathDisagreesWithUstar",
            vec![vec![
                symlink_entry("s", "harmless").with_pax("linkpath", "../canary"),
                file("s/file", "pwned", 0o644),
            ]],
            all(vec![
                symlink_to("s", "../canary"),
                content("canary/file", b"pwned"),
            ]),
        ),
        // No canary/file inside the target: nothing to link to.
        refused(
            "PaxHardLinkpathOut",
            vec![vec![
                file("a", "inside", 0o644),
                link("l", "a").with_pax("linkpath", "../canary/file"),
            ]],
        ),
        case(
            "AbsoluteName",
            vec![vec![file("/etc/abs", "x", 0o644)]],
            content("etc/abs", b"x"),
        ),
        case(
            "DotDotName",
            vec![vec![file("../../../canary/file", "pwned", 0o644)]],
            content("canary/file", b"pwned"),
        ),
        case(
            "DotDotInTheMiddle",
            vec![vec![file("a/../../canary/file", "pwned", 0o644)]],
            content("canary/file", b"pwned"),
        ),
        case(
            "AbsoluteNameOfTheCanary",
            vec![vec![file(canary_file.clone(), "pwned", 0o644)]],
            missing("canary"),
        ),
        refused(
            "HardLinkOutByDotDot",
            vec![vec![link("l", "../canary/file")]],
        ),
        refused(
            "HardLinkOutThroughSymlink",
            vec![vec![
                symlink_entry("s", canary.clone()),
                link("l", "s/file"),
            ]],
        ),
        refused("HardLinkToTheRoot", vec![vec![link("l", "/")]]),
        case(
            "WhiteoutThroughSymlinkOut",
            vec![
                vec![symlink_entry("s", canary.clone())],
                vec![empty("s/.wh.file")],
            ],
            is_symlink("s"),
        ),
        case(
            "WhiteoutThroughRelativeSymlinkOut",
            vec![
                vec![symlink_entry("s", "../canary")],
                vec![empty("s/.wh.file"), empty("s/.wh.dir")],
            ],
            symlink_to("s", "../canary"),
        ),
        case(
            "OpaqueThroughSymlinkOut",
            vec![
                vec![symlink_entry("s", "../canary")],
                vec![empty("s/.wh..wh..opq")],
            ],
            symlink_to("s", "../canary"),
        ),
        case(
            "WhiteoutOfDotDotViaCleanedName",
            vec![vec![file("f", "x", 0o644)], vec![empty("../.wh.canary")]],
            content("f", b"x"),
        ),
        case(
            "FifoAndDeviceThroughSymlinkOut",
            vec![vec![
                symlink_entry("s", "../canary"),
                fifo("s/fifo", 0o644),
                char_device("s/null", 0o666, 1, 3),
            ]],
            all(vec![
                symlink_to("s", "../canary"),
                is_fifo("canary/fifo"),
                missing("fifo"),
            ]),
        ),
        case(
            "FileOverSymlinkToCanaryDirectory",
            vec![
                vec![symlink_entry("d", "../canary/dir")],
                vec![file("d/sub/deep", "pwned", 0o644)],
            ],
            content("canary/dir/sub/deep", b"pwned"),
        ),
    ]
}

fn all_cases(sandbox: &Sandbox) -> Vec<Case> {
    let mut cases = containerd_cases(sandbox);
    cases.extend(other_cases(sandbox));
    cases
}

/// Host paths containerd's cases aim at: none may appear.
const HOST_PATHS: &[&str] = &[
    "/etc/unbroken",
    "/etc/emptied",
    "/tmp/breakout-oci-image-test",
    "/exploit",
];

fn run(case: Case, sandbox: &Sandbox, whiteouts: Whiteouts) -> Result<(), String> {
    let store = MemoryStore::new();
    let layers: Vec<Vec<u8>> = case.layers.iter().map(|entries| tar(entries)).collect();
    let image = image_of(&store, &layers);
    let before = sandbox.outside();
    let host_before: Vec<bool> = HOST_PATHS.iter().map(|p| Path::new(p).exists()).collect();
    let options = UnpackOptions {
        whiteouts,
        durable: false,
        ..UnpackOptions::default()
    };
    let result = unpack_image(&store, &image, &sandbox.dir(), &options, None);
    let after = sandbox.outside();
    if after != before {
        let changed: Vec<_> = after
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(v))
            .chain(before.iter().filter(|(k, _)| !after.contains_key(*k)))
            .collect();
        return Err(format!("outside the target changed: {changed:?}"));
    }
    let host_after: Vec<bool> = HOST_PATHS.iter().map(|p| Path::new(p).exists()).collect();
    if host_after != host_before {
        return Err(format!(
            "a host path appeared: {HOST_PATHS:?} {host_after:?}"
        ));
    }
    // Kept as overlayfs whiteouts, whiteouts leave devices where the checks expect nothing:
    // those cases are checked for confinement and refusals only.
    let skip_contents =
        whiteouts == Whiteouts::Overlay && case.layers.iter().flatten().any(Entry::is_whiteout);
    match (case.expect, result) {
        (Expect::Holds(_), Ok(_)) if skip_contents => Ok(()),
        (Expect::Holds(check), Ok(_)) => check(&sandbox.dir()),
        (Expect::Holds(_), Err(e)) => Err(format!("refused: {e}")),
        (Expect::Refused, Ok(_)) => Err("unpacked, expected a refusal".into()),
        (Expect::Refused, Err(e)) => {
            if sandbox.dir().exists() {
                Err(format!("refused ({e}) but the target exists"))
            } else {
                Ok(())
            }
        }
    }
}

fn run_all(whiteouts: Whiteouts) -> usize {
    let count = all_cases(&Sandbox::new()).len();
    let mut failures = Vec::new();
    for index in 0..count {
        let sandbox = Sandbox::new();
        let case = all_cases(&sandbox).swap_remove(index);
        let name = case.name;
        if let Err(why) = run(case, &sandbox, whiteouts) {
            failures.push(format!("{name}: {why}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    count
}

#[test]
fn no_layer_reaches_outside_the_target() {
    let count = run_all(Whiteouts::Remove);
    assert_eq!(
        containerd_cases(&Sandbox::new()).len(),
        34,
        "containerd's TestBreakouts"
    );
    println!("{count} breakout cases");
}

#[test]
fn no_layer_reaches_outside_the_target_keeping_overlay_whiteouts() {
    run_all(Whiteouts::Overlay);
}
