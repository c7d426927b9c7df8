use super::*;
use crate::testzip::{bytes_of, patched, zip_of, zip_with_symlink, MemZip};
use std::io::Cursor;

const LAYER: &[(&str, &str)] = &[
    ("strands/__init__.py", "from .agent import Agent\n"),
    ("strands/agent.py", "class Agent: pass\n"),
    ("six.py", "# six\n"),
    (
        "strands_agents-1.0.dist-info/METADATA",
        "Name: strands-agents\n",
    ),
];

fn build(
    layer: Option<&mut MemZip>,
    context: &mut MemZip,
    entry: &str,
) -> Result<(Assembled, Vec<u8>), ContextError> {
    let mut out = Cursor::new(Vec::new());
    let assembled = assemble(layer, context, entry, &mut out)?;
    Ok((assembled, out.into_inner()))
}

fn refusal(layer: Option<&mut MemZip>, context: &mut MemZip, entry: &str) -> ContextError {
    build(layer, context, entry).unwrap_err()
}

fn raw_bytes(archive: &mut MemZip, name: &str) -> (CompressionMethod, Vec<u8>) {
    let index = archive.index_for_name(name).unwrap();
    let mut file = archive.by_index_raw(index).unwrap();
    let method = file.compression();
    let mut data = Vec::new();
    file.read_to_end(&mut data).unwrap();
    (method, data)
}

#[test]
fn copies_entries_compressed_byte_for_byte() {
    let mut layer = zip_of(LAYER);
    let mut context = zip_of(&[
        ("main.py", &"print('hello')\n".repeat(50)),
        ("app/util.py", "x = 1\n"),
    ]);
    let (assembled, bytes) = build(Some(&mut layer), &mut context, "main.py").unwrap();
    let mut out = ZipArchive::new(Cursor::new(bytes)).unwrap();
    for (source, name) in [(&mut layer, "strands/agent.py"), (&mut context, "main.py")] {
        let (method, data) = raw_bytes(source, name);
        assert_eq!(method, CompressionMethod::Deflated);
        assert_eq!(raw_bytes(&mut out, name), (method, data), "{name}");
    }
    let mut text = String::new();
    out.by_name("main.py")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.starts_with("print('hello')"));
    assert_eq!(assembled.files, 6);
    let names: Vec<String> = out.file_names().map(|n| n.unwrap().into_owned()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries in name order");
}

#[test]
fn equal_inputs_give_equal_bytes_and_the_hash_is_of_the_bytes() {
    let run = || {
        build(
            Some(&mut zip_of(LAYER)),
            &mut zip_of(&[("main.py", "x")]),
            "main.py",
        )
        .unwrap()
    };
    let (a, bytes_a) = run();
    let (b, bytes_b) = run();
    assert_eq!(bytes_a, bytes_b);
    assert_eq!(a, b);
    assert_eq!(a.sha256, hex::encode(Sha256::digest(&bytes_a)));
    assert_eq!(a.size, bytes_a.len() as u64);
    assert_eq!(
        a.unzipped,
        LAYER.iter().map(|(_, c)| c.len() as u64).sum::<u64>() + 1
    );
}

#[test]
fn assembles_without_a_layer_and_keeps_executable_bits() {
    let (assembled, bytes) = build(
        None::<&mut MemZip>,
        &mut zip_of(&[("main.py", "x"), ("pkg/", "")]),
        "main.py",
    )
    .unwrap();
    assert_eq!(assembled.files, 1, "directories are implied, not copied");
    let out = ZipArchive::new(Cursor::new(bytes)).unwrap();
    assert_eq!(
        out.by_index_data(0).unwrap().unix_mode().map(|m| m & 0o777),
        Some(0o644)
    );
}

#[test]
fn refuses_symlinks_in_the_context_and_the_layer() {
    let mut context = zip_with_symlink(&[("main.py", "x")], "creds", "/root/.aws/credentials");
    let err = refusal(None::<&mut MemZip>, &mut context, "main.py");
    assert_eq!(err.file, "creds");
    assert!(err.message.contains("symbolic links"), "{err}");
    let mut layer = zip_with_symlink(&[], "bin/python", "/usr/bin/python3");
    let err = refusal(
        Some(&mut layer),
        &mut zip_of(&[("main.py", "x")]),
        "main.py",
    );
    assert_eq!(err.file, "dependencies:bin/python");
}

#[test]
fn refuses_absolute_and_dotdot_names() {
    for evil in ["../x.py", "/etc/cron", "a/../../b.py"] {
        // Written under a same-length harmless name, renamed in both headers afterwards.
        let safe = "z".repeat(evil.len());
        let mut context = patched(
            bytes_of(&[("main.py", "x"), (&safe, "y")]),
            &safe,
            |_| {},
            Some(evil),
        );
        let err = refusal(None::<&mut MemZip>, &mut context, "main.py");
        assert_eq!(err.file, evil, "{err}");
    }
}

#[test]
fn refuses_duplicate_entries_and_case_collisions() {
    let mut dup = patched(
        bytes_of(&[("main.py", "x"), ("mbin.py", "y")]),
        "mbin.py",
        |_| {},
        Some("main.py"),
    );
    let err = refusal(None::<&mut MemZip>, &mut dup, "main.py");
    assert!(err.message.contains("two entries with one name"), "{err}");
    let err = refusal(
        None::<&mut MemZip>,
        &mut zip_of(&[("main.py", "x"), ("Main.py", "y")]),
        "main.py",
    );
    assert_eq!(err.file, "main.py");
    assert!(err.message.contains("`Main.py`"), "{err}");
    let err = refusal(
        Some(&mut zip_of(&[("README", "x")])),
        &mut zip_of(&[("main.py", "x"), ("readme", "y")]),
        "main.py",
    );
    assert!(
        err.message.contains("collides with `dependencies:README`"),
        "{err}"
    );
}

#[test]
fn refuses_context_files_shadowing_the_layer() {
    for (file, top) in [
        ("strands/agent.py", "strands"),
        ("six.py", "six"),
        ("strands.py", "strands"),
    ] {
        let err = refusal(
            Some(&mut zip_of(LAYER)),
            &mut zip_of(&[("main.py", "x"), (file, "evil")]),
            "main.py",
        );
        assert_eq!(err.file, file);
        assert!(err.message.contains(&format!("shadows `{top}`")), "{err}");
    }
}

#[test]
fn refuses_a_missing_or_escaping_entry_point() {
    let err = refusal(
        None::<&mut MemZip>,
        &mut zip_of(&[("app.py", "x")]),
        "main.py",
    );
    assert_eq!(
        (err.file.as_str(), err.message.contains("not a file")),
        ("main.py", true)
    );
    let err = refusal(
        None::<&mut MemZip>,
        &mut zip_of(&[("app.py", "x")]),
        "../app.py",
    );
    assert!(err.message.contains("entry point"), "{err}");
    // A dropped file is not an entry point either.
    let err = refusal(
        None::<&mut MemZip>,
        &mut zip_of(&[("main.pyc", "x")]),
        "main.pyc",
    );
    assert!(err.message.contains("not a file"), "{err}");
}

#[test]
fn refuses_root_site_hooks_and_package_metadata() {
    for file in [
        "sitecustomize.py",
        "usercustomize.py",
        "evil.pth",
        "fake-1.0.dist-info/entry_points.txt",
    ] {
        let err = refusal(
            None::<&mut MemZip>,
            &mut zip_of(&[("main.py", "x"), (file, "import os")]),
            "main.py",
        );
        assert_eq!(err.file, file, "{err}");
    }
}

#[test]
fn drops_bytecode_and_keeps_inert_nested_hooks() {
    let files = [
        ("main.py", "x"),
        ("__pycache__/main.cpython-312.pyc", "b"),
        ("pkg/__pycache__/a.pyc", "b"),
        ("pkg/x.pth", "import os"),
        ("pkg/sitecustomize.py", ""),
    ];
    let (assembled, _) = build(None::<&mut MemZip>, &mut zip_of(&files), "main.py").unwrap();
    assert_eq!(
        assembled.dropped,
        ["__pycache__/main.cpython-312.pyc", "pkg/__pycache__/a.pyc"]
    );
    assert_eq!(assembled.files, 3);
}

fn sized(uncompressed: u32, compressed: Option<u32>) -> impl Fn(&mut [u8]) {
    move |header: &mut [u8]| {
        header[24..28].copy_from_slice(&uncompressed.to_le_bytes());
        if let Some(c) = compressed {
            header[20..24].copy_from_slice(&c.to_le_bytes());
        }
    }
}

#[test]
fn refuses_over_750_mb_unzipped_naming_the_file_and_the_largest() {
    // Declared sizes (what AgentCore would unpack) are checked before anything is copied.
    let bytes = bytes_of(&[("a.bin", "x"), ("b.bin", "x"), ("main.py", "x")]);
    let context = patched(bytes, "a.bin", sized(500 << 20, None), None);
    let bytes = context.into_inner().into_inner();
    let mut context = patched(bytes, "b.bin", sized(300 << 20, None), None);
    let err = refusal(None::<&mut MemZip>, &mut context, "main.py");
    assert_eq!(err.file, "b.bin", "{err}");
    assert!(
        err.message.contains("750 MB")
            && err
                .message
                .contains("largest file: a.bin (524288000 bytes)"),
        "{err}"
    );
}

#[test]
fn refuses_over_250_mb_zipped_naming_the_file() {
    let mut layer = patched(
        bytes_of(&[("big.so", "x")]),
        "big.so",
        sized(260 << 20, Some(255 << 20)),
        None,
    );
    let err = refusal(
        Some(&mut layer),
        &mut zip_of(&[("main.py", "x")]),
        "main.py",
    );
    assert_eq!(err.file, "dependencies:big.so", "{err}");
    assert!(err.message.contains("250 MB"), "{err}");
}
