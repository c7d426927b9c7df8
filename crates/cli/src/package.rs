//! Packs a build context directory into a deterministic zip, honouring `.dockerignore`.
//!
//! The zip's SHA-256 identifies the source (and so the image tag), so the same tree must
//! always give the same bytes, whatever the filesystem's listing order, mtimes or umask:
//! - entries are regular files only (no directory entries; like git, empty directories are
//!   not kept), named by their `/`-separated path and sorted by that name's bytes;
//! - every entry has the timestamp 1980-01-01 00:00:00 (the zip epoch), "made by" Unix, and
//!   mode 0644 — or 0755 when the file has any execute bit (so `COPY`ed scripts stay
//!   runnable); nothing else of the file's metadata is recorded;
//! - deflate at level 6 by the pinned `zip`/`zlib-rs` versions (Cargo.lock): a different
//!   compressor version could in principle change the bytes, never the content.
//!
//! Symlinks: one that resolves to a regular file inside the context is stored as a regular
//! file with the target's content and mode (the zip has no links, so CodeBuild needs none);
//! one that points outside the context, to a directory, or nowhere is an error — unless the
//! ignore rules exclude it. Sockets, FIFOs and devices are errors on the same terms.
//!
//! Ignore rules: `<dockerfile>.dockerignore` if it exists (BuildKit's per-Dockerfile ignore
//! file), else `.dockerignore`; see [`crate::dockerignore`]. The Dockerfile and the ignore
//! files are always packed, even when excluded, as `docker build` always sends them.

use std::fs::{self, File};
use std::io::{self, Cursor};
use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, System, ZipWriter};

use crate::dockerignore::{self, DockerIgnore, MatchInfo, PatternError};

/// The ignore file Docker reads at the context root.
pub const DOCKERIGNORE: &str = ".dockerignore";
/// The Dockerfile path used when none is given.
pub const DEFAULT_DOCKERFILE: &str = "Dockerfile";
const DEFLATE_LEVEL: i64 = 6;

/// Errors while packing; each names the path at fault.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("build context {0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{file}: {source}")]
    Ignore {
        file: PathBuf,
        #[source]
        source: PatternError,
    },
    #[error("dockerfile `{path}`: {reason}")]
    InvalidDockerfilePath { path: String, reason: &'static str },
    #[error("dockerfile `{path}` not found in build context {context}")]
    DockerfileMissing { path: String, context: PathBuf },
    #[error("{0}: file name is not valid UTF-8")]
    NonUtf8Path(PathBuf),
    #[error("{path}: symlink points outside the build context (to {target})")]
    SymlinkOutsideContext { path: PathBuf, target: PathBuf },
    #[error("{0}: symlink points to a directory; replace it, or exclude it in .dockerignore")]
    SymlinkToDirectory(PathBuf),
    #[error("{0}: broken symlink; fix it, or exclude it in .dockerignore")]
    BrokenSymlink(PathBuf),
    #[error("{path}: {kind} files cannot be packed; exclude it in .dockerignore")]
    UnsupportedFileType { path: PathBuf, kind: &'static str },
    #[error("writing zip entry {path}: {source}")]
    Zip {
        path: String,
        #[source]
        source: zip::result::ZipError,
    },
}

pub type Result<T, E = PackError> = std::result::Result<T, E>;

/// Packing options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackOptions {
    /// The Dockerfile, relative to the context (no `..`, not absolute).
    pub dockerfile: String,
    /// A container build's context must hold its Dockerfile; a code artifact's need not.
    pub needs_dockerfile: bool,
}

impl Default for PackOptions {
    fn default() -> Self {
        Self {
            dockerfile: DEFAULT_DOCKERFILE.to_owned(),
            needs_dockerfile: true,
        }
    }
}

/// A packed build context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Packed {
    /// The zip archive.
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// Lower-case hex SHA-256 of `bytes`.
    pub sha256: String,
    /// Size of `bytes`.
    pub size: u64,
    /// Number of files in the archive.
    pub files: usize,
}

/// Packs `dir` with the default Dockerfile (`Dockerfile`).
pub fn pack(dir: &Path) -> Result<Packed> {
    pack_with(dir, &PackOptions::default())
}

/// Packs `dir`; fails if the Dockerfile is not a regular file of the packed tree.
pub fn pack_with(dir: &Path, options: &PackOptions) -> Result<Packed> {
    let dockerfile = dockerfile_path(&options.dockerfile)?;
    let root = fs::canonicalize(dir).map_err(|source| io_err(dir, source))?;
    if !root.is_dir() {
        return Err(PackError::NotADirectory(dir.to_path_buf()));
    }
    let specific = format!("{dockerfile}.dockerignore");
    let ignore_file = if root.join(&specific).is_file() {
        specific
    } else {
        DOCKERIGNORE.to_owned()
    };
    let walker = Walker {
        ignore: read_ignore(&root, &ignore_file)?,
        keep: vec![dockerfile.clone(), DOCKERIGNORE.to_owned(), ignore_file],
        root,
    };
    let mut entries = Vec::new();
    walker.walk("", None, &mut entries)?;
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    if options.needs_dockerfile && !entries.iter().any(|e| e.name == dockerfile) {
        return Err(PackError::DockerfileMissing {
            path: dockerfile,
            context: dir.to_path_buf(),
        });
    }
    let bytes = write_zip(&entries)?;
    Ok(Packed {
        sha256: hex::encode(Sha256::digest(&bytes)),
        files: entries.len(),
        size: bytes.len() as u64,
        bytes,
    })
}

/// Validates and normalises the Dockerfile path to the `/`-separated form used in the zip.
fn dockerfile_path(raw: &str) -> Result<String> {
    let invalid = |reason| PackError::InvalidDockerfilePath {
        path: raw.to_owned(),
        reason,
    };
    if raw.trim().is_empty() {
        return Err(invalid("must not be empty"));
    }
    let path = Path::new(raw);
    if path.is_absolute() || raw.starts_with('/') {
        return Err(invalid("must be relative to the build context"));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(invalid("must not contain `..`"));
    }
    let cleaned = dockerignore::clean(raw);
    if cleaned == "." {
        return Err(invalid("must name a file"));
    }
    Ok(cleaned)
}

fn read_ignore(root: &Path, name: &str) -> Result<DockerIgnore> {
    let path = root.join(name);
    match fs::read_to_string(&path) {
        Ok(contents) => DockerIgnore::parse(&contents)
            .map_err(|source| PackError::Ignore { file: path, source }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(DockerIgnore::default()),
        Err(source) => Err(io_err(&path, source)),
    }
}

/// One file to pack: its name in the zip and the regular file holding its content.
struct Entry {
    name: String,
    source: PathBuf,
}

struct Walker {
    root: PathBuf,
    ignore: DockerIgnore,
    /// Paths packed even when excluded.
    keep: Vec<String>,
}

impl Walker {
    fn walk(&self, rel_dir: &str, parent: Option<&MatchInfo>, out: &mut Vec<Entry>) -> Result<()> {
        let dir = self.root.join(rel_dir);
        let listing = fs::read_dir(&dir).map_err(|source| io_err(&dir, source))?;
        for item in listing {
            let item = item.map_err(|source| io_err(&dir, source))?;
            let path = item.path();
            let name = item
                .file_name()
                .into_string()
                .map_err(|_| PackError::NonUtf8Path(path.clone()))?;
            let rel = if rel_dir.is_empty() {
                name
            } else {
                format!("{rel_dir}/{name}")
            };
            let file_type = item.file_type().map_err(|source| io_err(&path, source))?;
            let (excluded, info) = self.ignore.matches(&rel, parent);
            if file_type.is_dir() {
                if !excluded || self.ignore.may_include_below(&rel) || self.keeps_below(&rel) {
                    self.walk(&rel, Some(&info), out)?;
                }
                continue;
            }
            if excluded && !self.keep.contains(&rel) {
                continue;
            }
            let source = if file_type.is_symlink() {
                self.resolve_symlink(&path)?
            } else if file_type.is_file() {
                path
            } else {
                return Err(PackError::UnsupportedFileType {
                    kind: special_kind(&file_type),
                    path,
                });
            };
            out.push(Entry { name: rel, source });
        }
        Ok(())
    }

    fn keeps_below(&self, dir: &str) -> bool {
        self.keep.iter().any(|k| {
            k.strip_prefix(dir)
                .is_some_and(|rest| rest.starts_with('/'))
        })
    }

    /// The regular file inside the context that the symlink at `path` resolves to.
    fn resolve_symlink(&self, path: &Path) -> Result<PathBuf> {
        let target = match fs::canonicalize(path) {
            Ok(target) => target,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(PackError::BrokenSymlink(path.to_path_buf()))
            }
            Err(source) => return Err(io_err(path, source)),
        };
        if !target.starts_with(&self.root) {
            return Err(PackError::SymlinkOutsideContext {
                path: path.to_path_buf(),
                target,
            });
        }
        let meta = fs::metadata(&target).map_err(|source| io_err(&target, source))?;
        if meta.is_dir() {
            return Err(PackError::SymlinkToDirectory(path.to_path_buf()));
        }
        if !meta.is_file() {
            return Err(PackError::UnsupportedFileType {
                path: path.to_path_buf(),
                kind: special_kind(&meta.file_type()),
            });
        }
        Ok(target)
    }
}

fn write_zip(entries: &[Entry]) -> Result<Vec<u8>> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for entry in entries {
        let zip_err = |source| PackError::Zip {
            path: entry.name.clone(),
            source,
        };
        let mut file = File::open(&entry.source).map_err(|source| io_err(&entry.source, source))?;
        let meta = file
            .metadata()
            .map_err(|source| io_err(&entry.source, source))?;
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(DEFLATE_LEVEL))
            .last_modified_time(DateTime::default())
            .system(System::Unix)
            .unix_permissions(if is_executable(&meta) { 0o755 } else { 0o644 })
            .large_file(meta.len() >= u64::from(u32::MAX));
        zip.start_file(entry.name.as_str(), options)
            .map_err(zip_err)?;
        io::copy(&mut file, &mut zip).map_err(|source| io_err(&entry.source, source))?;
    }
    let cursor = zip.finish().map_err(|source| PackError::Zip {
        path: "(central directory)".to_owned(),
        source,
    })?;
    Ok(cursor.into_inner())
}

fn io_err(path: &Path, source: io::Error) -> PackError {
    PackError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(unix)]
fn is_executable(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &fs::Metadata) -> bool {
    false
}

#[cfg(unix)]
fn special_kind(file_type: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "device"
    } else {
        "special"
    }
}

#[cfg(not(unix))]
fn special_kind(_file_type: &fs::FileType) -> &'static str {
    "special"
}

/// The artifact `submit <dir>` builds when `--artifact` is not given: `code` for a directory
/// with no Dockerfile and a Python project (the line that says so comes with it), else
/// `container`.
pub fn choose_artifact(dir: &Path, dockerfile: &str) -> (&'static str, Option<String>) {
    if dir.join(dockerfile).exists() {
        return ("container", None);
    }
    let python = ["requirements.txt", "pyproject.toml"]
        .into_iter()
        .find(|f| dir.join(f).is_file());
    match python {
        Some(found) => (
            "code",
            Some(format!(
                "no {dockerfile} in {} and a Python project ({found}): building a code artifact \
                 (--artifact container to build an image instead)",
                dir.display()
            )),
        ),
        None => ("container", None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use tempfile::TempDir;
    use zip::ZipArchive;

    /// A context directory holding `files` (path, content); parents are created.
    fn tree(files: &[(&str, &str)]) -> TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, content) in files {
            write(dir.path(), path, content);
        }
        dir
    }

    fn write(root: &Path, path: &str, content: &str) {
        let path = root.join(path);
        fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
        fs::write(path, content).expect("write");
    }

    /// (name, unix mode, content) of every entry, in archive order.
    fn entries(packed: &Packed) -> Vec<(String, u32, String)> {
        let mut archive = ZipArchive::new(Cursor::new(&packed.bytes)).expect("valid zip");
        (0..archive.len())
            .map(|i| {
                let mut file = archive.by_index(i).expect("entry");
                let mut content = String::new();
                file.read_to_string(&mut content).expect("read entry");
                let mode = file.unix_mode().expect("unix mode") & 0o7777;
                (file.name().expect("utf-8 name").into_owned(), mode, content)
            })
            .collect()
    }

    fn names(packed: &Packed) -> Vec<String> {
        entries(packed).into_iter().map(|(name, ..)| name).collect()
    }

    /// Context-level cases: (what, .dockerignore, files present, files expected in the zip).
    /// `Dockerfile` is always present.
    const PACK_CASES: &[(&str, &str, &[&str], &[&str])] = &[
        (
            "no .dockerignore packs everything, sorted",
            "",
            &["b.txt", "a/z.txt", "a/b/c.txt", ".hidden"],
            &[".hidden", "Dockerfile", "a/b/c.txt", "a/z.txt", "b.txt"],
        ),
        (
            "*.md with README exception",
            "*.md\n!README.md",
            &["README.md", "CHANGES.md", "docs/x.md"],
            &[".dockerignore", "Dockerfile", "README.md", "docs/x.md"],
        ),
        (
            "**/*.go at every depth",
            "**/*.go",
            &["main.go", "a/b/c.go", "a/b/c.rs"],
            &[".dockerignore", "Dockerfile", "a/b/c.rs"],
        ),
        (
            "excluded directory with an exception inside",
            "node_modules\n!node_modules/keep/index.js",
            &[
                "node_modules/x/y.js",
                "node_modules/keep/index.js",
                "node_modules/keep/other.js",
            ],
            &[".dockerignore", "Dockerfile", "node_modules/keep/index.js"],
        ),
        (
            "wildcard exception reaches into an excluded directory",
            "build\n!**/keep.txt",
            &["build/deep/keep.txt", "build/deep/drop.txt"],
            &[".dockerignore", "Dockerfile", "build/deep/keep.txt"],
        ),
        (
            "Dockerfile and .dockerignore always kept",
            "Dockerfile\n.dockerignore\n*.txt",
            &["a.txt"],
            &[".dockerignore", "Dockerfile"],
        ),
        (
            "** excludes all but the always-kept files",
            "**",
            &["src/main.py", "x"],
            &[".dockerignore", "Dockerfile"],
        ),
        (
            "** then an exception",
            "**\n!src",
            &["src/main.py", "x"],
            &[".dockerignore", "Dockerfile", "src/main.py"],
        ),
        (
            "dir/ and /anchored",
            "cache/\n/secret",
            &["cache/a", "secret", "sub/secret", "sub/cache/a"],
            &[".dockerignore", "Dockerfile", "sub/cache/a", "sub/secret"],
        ),
    ];

    #[test]
    fn pack_applies_dockerignore_like_docker() {
        for (what, ignore, present, want) in PACK_CASES {
            let dir = tree(&[("Dockerfile", "FROM scratch\n")]);
            if !ignore.is_empty() {
                write(dir.path(), DOCKERIGNORE, ignore);
            }
            for path in *present {
                write(dir.path(), path, path);
            }
            let packed = pack(dir.path()).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(names(&packed), *want, "{what}");
            assert_eq!(packed.files, want.len(), "{what}");
        }
    }

    #[test]
    fn keeps_a_dockerfile_inside_an_excluded_directory() {
        let dir = tree(&[
            ("docker/app.Dockerfile", "FROM scratch\n"),
            ("docker/other", "x"),
            (DOCKERIGNORE, "docker"),
        ]);
        let options = PackOptions {
            dockerfile: "./docker/app.Dockerfile".into(),
            ..Default::default()
        };
        let packed = pack_with(dir.path(), &options).unwrap();
        assert_eq!(names(&packed), [".dockerignore", "docker/app.Dockerfile"]);
    }

    #[test]
    fn uses_the_dockerfile_specific_ignore_file_when_present() {
        let dir = tree(&[
            ("app.Dockerfile", "FROM scratch\n"),
            (
                "app.Dockerfile.dockerignore",
                "*.log\napp.Dockerfile.dockerignore",
            ),
            (DOCKERIGNORE, "*.txt"),
            ("a.log", "x"),
            ("a.txt", "x"),
        ]);
        let options = PackOptions {
            dockerfile: "app.Dockerfile".into(),
            ..Default::default()
        };
        let packed = pack_with(dir.path(), &options).unwrap();
        assert_eq!(
            names(&packed),
            [
                ".dockerignore",
                "a.txt",
                "app.Dockerfile",
                "app.Dockerfile.dockerignore"
            ]
        );
    }

    #[test]
    fn same_tree_gives_same_bytes_whatever_order_mtime_or_umask() {
        let files = [
            ("Dockerfile", "FROM python:3.12\nCOPY . /app\n"),
            ("app/main.py", "print('hi')\n"),
            ("app/util/__init__.py", ""),
            ("requirements.txt", "boto3\n"),
            ("z/last.bin", "\u{0}\u{1}\u{2}"),
        ];
        let first = tree(&files);
        let reversed: Vec<_> = files.iter().rev().copied().collect();
        let second = tree(&reversed);
        set_modes_and_times(second.path(), &files);
        let (a, b) = (pack(first.path()).unwrap(), pack(second.path()).unwrap());
        assert_eq!(a.sha256, b.sha256);
        assert_eq!(a.bytes, b.bytes);
        assert_eq!(a.sha256, hex::encode(Sha256::digest(&a.bytes)));
        assert_eq!(a.size, a.bytes.len() as u64);
        assert_eq!(a.files, files.len());
    }

    /// Different (non-execute) permission bits and an old mtime on every file.
    fn set_modes_and_times(root: &Path, files: &[(&str, &str)]) {
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        for (path, _) in files {
            let file = File::options().write(true).open(root.join(path)).unwrap();
            file.set_modified(old).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(fs::Permissions::from_mode(0o600))
                    .unwrap();
            }
        }
    }

    #[test]
    fn entries_have_fixed_time_and_modes() {
        let dir = tree(&[("Dockerfile", "FROM scratch\n"), ("run.sh", "#!/bin/sh\n")]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir.path().join("run.sh"), fs::Permissions::from_mode(0o700))
                .unwrap();
        }
        let packed = pack(dir.path()).unwrap();
        let modes: Vec<_> = entries(&packed)
            .into_iter()
            .map(|(n, m, _)| (n, m))
            .collect();
        let exec = if cfg!(unix) { 0o755 } else { 0o644 };
        assert_eq!(
            modes,
            [("Dockerfile".into(), 0o644), ("run.sh".into(), exec)]
        );
        let mut archive = ZipArchive::new(Cursor::new(&packed.bytes)).unwrap();
        for i in 0..archive.len() {
            let file = archive.by_index(i).unwrap();
            assert_eq!(
                file.last_modified(),
                Some(DateTime::default()),
                "{:?}",
                file.name()
            );
            assert_eq!(file.compression(), CompressionMethod::Deflated);
        }
    }

    #[test]
    fn a_changed_file_changes_the_sha() {
        let dir = tree(&[("Dockerfile", "FROM scratch\n"), ("app.py", "v1\n")]);
        let before = pack(dir.path()).unwrap();
        write(dir.path(), "app.py", "v2\n");
        let after = pack(dir.path()).unwrap();
        assert_ne!(before.sha256, after.sha256);
    }

    #[test]
    fn a_renamed_or_made_executable_file_changes_the_sha() {
        let dir = tree(&[("Dockerfile", "FROM scratch\n"), ("a.sh", "x")]);
        let before = pack(dir.path()).unwrap();
        fs::rename(dir.path().join("a.sh"), dir.path().join("b.sh")).unwrap();
        let renamed = pack(dir.path()).unwrap();
        assert_ne!(before.sha256, renamed.sha256);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir.path().join("b.sh"), fs::Permissions::from_mode(0o755))
                .unwrap();
            assert_ne!(renamed.sha256, pack(dir.path()).unwrap().sha256);
        }
    }

    #[test]
    fn excluded_files_do_not_affect_the_sha() {
        let dir = tree(&[("Dockerfile", "FROM scratch\n"), (DOCKERIGNORE, "*.log")]);
        let before = pack(dir.path()).unwrap();
        write(dir.path(), "debug.log", "noise");
        assert_eq!(before.sha256, pack(dir.path()).unwrap().sha256);
    }

    #[test]
    fn names_a_missing_dockerfile() {
        let dir = tree(&[("dockerfile.txt", "x")]);
        let err = pack(dir.path()).unwrap_err();
        assert!(matches!(&err, PackError::DockerfileMissing { path, .. } if path == "Dockerfile"));
        assert!(err.to_string().contains("`Dockerfile`"), "{err}");
        let options = PackOptions {
            dockerfile: "build/Dockerfile".into(),
            ..Default::default()
        };
        let err = pack_with(dir.path(), &options).unwrap_err();
        assert!(err.to_string().contains("`build/Dockerfile`"), "{err}");
    }

    #[test]
    fn rejects_dockerfile_outside_context() {
        let dir = tree(&[("Dockerfile", "FROM scratch\n")]);
        for bad in [
            "../Dockerfile",
            "/etc/Dockerfile",
            "a/../../Dockerfile",
            "",
            ".",
        ] {
            let options = PackOptions {
                dockerfile: bad.into(),
                ..Default::default()
            };
            let err = pack_with(dir.path(), &options).unwrap_err();
            assert!(
                matches!(err, PackError::InvalidDockerfilePath { .. }),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn rejects_a_context_that_is_not_a_directory() {
        let dir = tree(&[("Dockerfile", "FROM scratch\n")]);
        let err = pack(&dir.path().join("Dockerfile")).unwrap_err();
        assert!(matches!(err, PackError::NotADirectory(_)), "{err}");
        let err = pack(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(err, PackError::Io { .. }), "{err}");
    }

    #[test]
    fn reports_the_ignore_file_line_of_a_bad_pattern() {
        let dir = tree(&[
            ("Dockerfile", "FROM scratch\n"),
            (DOCKERIGNORE, "ok\n[oops\n"),
        ]);
        let err = pack(dir.path()).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(".dockerignore") && message.contains("line 2"),
            "{message}"
        );
    }

    #[cfg(unix)]
    mod unix {
        use super::*;
        use std::os::unix::fs::symlink;

        #[test]
        fn stores_a_symlink_to_a_file_inside_the_context_as_that_file() {
            let dir = tree(&[
                ("Dockerfile", "FROM scratch\n"),
                ("real/config.toml", "k=1\n"),
            ]);
            symlink("real/config.toml", dir.path().join("config.toml")).unwrap();
            let packed = pack(dir.path()).unwrap();
            let got = entries(&packed);
            assert_eq!(got[1], ("config.toml".into(), 0o644, "k=1\n".into()));
        }

        #[test]
        fn rejects_a_symlink_leaving_the_context() {
            let outside = tree(&[("secret", "s")]);
            let dir = tree(&[("Dockerfile", "FROM scratch\n")]);
            symlink(outside.path().join("secret"), dir.path().join("secret")).unwrap();
            let err = pack(dir.path()).unwrap_err();
            assert!(
                matches!(err, PackError::SymlinkOutsideContext { .. }),
                "{err}"
            );
            assert!(err.to_string().contains("secret"), "{err}");
        }

        #[test]
        fn rejects_symlinked_directories_and_broken_symlinks() {
            let dir = tree(&[("Dockerfile", "FROM scratch\n"), ("lib/a.py", "")]);
            symlink("lib", dir.path().join("lib64")).unwrap();
            let err = pack(dir.path()).unwrap_err();
            assert!(matches!(err, PackError::SymlinkToDirectory(_)), "{err}");
            fs::remove_file(dir.path().join("lib64")).unwrap();
            symlink("nowhere", dir.path().join("dangling")).unwrap();
            let err = pack(dir.path()).unwrap_err();
            assert!(matches!(err, PackError::BrokenSymlink(_)), "{err}");
        }

        #[test]
        fn ignores_excluded_symlinks_and_special_files() {
            let dir = tree(&[
                ("Dockerfile", "FROM scratch\n"),
                (DOCKERIGNORE, "venv\nlink\n*.sock"),
                ("venv/lib/x.py", ""),
            ]);
            symlink("/etc/passwd", dir.path().join("link")).unwrap();
            symlink("lib", dir.path().join("venv/lib64")).unwrap();
            let _socket =
                std::os::unix::net::UnixListener::bind(dir.path().join("agent.sock")).unwrap();
            let packed = pack(dir.path()).unwrap();
            assert_eq!(names(&packed), [".dockerignore", "Dockerfile"]);
        }

        #[test]
        fn rejects_special_files_that_are_not_excluded() {
            let dir = tree(&[("Dockerfile", "FROM scratch\n")]);
            let _socket =
                std::os::unix::net::UnixListener::bind(dir.path().join("agent.sock")).unwrap();
            let err = pack(dir.path()).unwrap_err();
            assert!(
                matches!(err, PackError::UnsupportedFileType { kind: "socket", .. }),
                "{err}"
            );
        }
    }
}
