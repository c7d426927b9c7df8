//! A directory as a deterministic zip: the dependency layer as `make bench-artifact` makes it
//! (and as buildspec-code.yml's Python does on CodeBuild: sorted names, 1980-01-01 times,
//! 0644/0755, deflate level 6, no bytecode, no symlink, scripts' Python shebangs made portable).

use crate::error::ContextError;
use std::fs;
use std::io::{self, Write};
use std::path::Path;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// The portable shebang of the layer's scripts (`bin/*`): AgentCore's runtime has `python3`.
pub const SHEBANG: &[u8] = b"#!/usr/bin/env python3\n";

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, bool)>) -> Result<(), ContextError> {
    let io = |e: io::Error| ContextError::io(&dir.display().to_string(), e);
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let kind = entry.file_type().map_err(io)?;
        if kind.is_symlink() {
            return Err(ContextError::new(
                rel,
                "symbolic links are not allowed in a layer",
            ));
        }
        if kind.is_dir() {
            if entry.file_name() != "__pycache__" {
                walk(root, &path, out)?;
            }
        } else if !(rel.ends_with(".pyc") || rel.ends_with(".pyo")) {
            #[cfg(unix)]
            let executable = std::os::unix::fs::PermissionsExt::mode(
                &entry.metadata().map_err(io)?.permissions(),
            ) & 0o111
                != 0;
            #[cfg(not(unix))]
            let executable = false;
            out.push((rel, executable));
        }
    }
    Ok(())
}

/// The bytes a layer file is stored with: bin/ scripts' Python shebangs made portable.
fn layer_bytes(dir: &Path, rel: &str) -> Result<Vec<u8>, ContextError> {
    let mut data = fs::read(dir.join(rel)).map_err(|e| ContextError::io(rel, e))?;
    if rel.starts_with("bin/") && data.starts_with(b"#!") {
        let end = data
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |i| i + 1);
        if data[..end].windows(6).any(|w| w == b"python") {
            data.splice(..end, SHEBANG.iter().copied());
        }
    }
    Ok(data)
}

/// One chunk of the layer compressed into a zip in memory.
fn compress_chunk(
    dir: &Path,
    files: &[(String, bool)],
    level: i64,
) -> Result<Vec<u8>, ContextError> {
    let mut writer = ZipWriter::new(io::Cursor::new(Vec::new()));
    for (rel, executable) in files {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(level))
            .last_modified_time(DateTime::default())
            .unix_permissions(if *executable { 0o755 } else { 0o644 })
            .large_file(false);
        writer
            .start_file(rel.as_str(), options)
            .map_err(|e| ContextError::zip(rel, e))?;
        writer
            .write_all(&layer_bytes(dir, rel)?)
            .map_err(|e| ContextError::io(rel, e))?;
    }
    Ok(writer
        .finish()
        .map_err(|e| ContextError::zip("(layer)", e))?
        .into_inner())
}

/// Contiguous chunks of `files` of about equal size, one per thread.
fn chunks(dir: &Path, files: &[(String, bool)], count: usize) -> Vec<std::ops::Range<usize>> {
    let sizes: Vec<u64> = files
        .iter()
        .map(|(rel, _)| fs::metadata(dir.join(rel)).map_or(0, |m| m.len()))
        .collect();
    let target = sizes.iter().sum::<u64>() / count.max(1) as u64 + 1;
    let (mut out, mut start, mut acc) = (Vec::new(), 0, 0);
    for (i, size) in sizes.iter().enumerate() {
        acc += size;
        if acc >= target && out.len() + 1 < count {
            out.push(start..i + 1);
            (start, acc) = (i + 1, 0);
        }
    }
    out.push(start..files.len());
    out
}

/// Zips `dir` to `out` at deflate `level` (the buildspec uses 6); returns the number of files.
/// Files are compressed on every core, each chunk into a zip in memory, whose entries are then
/// raw-copied in name order: the bytes do not depend on the number of cores.
pub fn zip_directory<W: Write + io::Seek>(
    dir: &Path,
    out: W,
    level: i64,
) -> Result<u64, ContextError> {
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(16);
    let parts: Vec<Result<Vec<u8>, ContextError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks(dir, &files, threads)
            .into_iter()
            .map(|range| {
                let part = &files[range];
                scope.spawn(move || compress_chunk(dir, part, level))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(ContextError::new(
                        "(layer)",
                        "a compression thread panicked",
                    ))
                })
            })
            .collect()
    });
    let mut writer = ZipWriter::new(out);
    for part in parts {
        let mut archive = zip::ZipArchive::new(io::Cursor::new(part?))
            .map_err(|e| ContextError::zip("(layer)", e))?;
        for index in 0..archive.len() {
            let file = archive
                .by_index_raw(index)
                .map_err(|e| ContextError::zip("(layer)", e))?;
            writer
                .raw_copy_file(file)
                .map_err(|e| ContextError::zip("(layer)", e))?;
        }
    }
    writer
        .finish()
        .map_err(|e| ContextError::zip("(layer)", e))?;
    Ok(files.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Read};

    #[test]
    fn zips_sorted_without_bytecode_and_with_portable_shebangs() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("bin")).unwrap();
        fs::create_dir_all(dir.path().join("pkg/__pycache__")).unwrap();
        fs::write(
            dir.path().join("bin/tool"),
            "#!/root/.pyenv/bin/python3.11\nimport pkg\n",
        )
        .unwrap();
        fs::write(dir.path().join("pkg/__init__.py"), "x = 1\n").unwrap();
        fs::write(
            dir.path().join("pkg/__pycache__/__init__.cpython-312.pyc"),
            "b",
        )
        .unwrap();
        let zip_once = || {
            let mut out = Cursor::new(Vec::new());
            assert_eq!(zip_directory(dir.path(), &mut out, 6).unwrap(), 2);
            out.into_inner()
        };
        let bytes = zip_once();
        assert_eq!(bytes, zip_once(), "deterministic");
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        assert_eq!(archive.file_names().collect::<Vec<_>>().len(), 2);
        let mut text = String::new();
        archive
            .by_name("bin/tool")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "#!/usr/bin/env python3\nimport pkg\n");
    }
}
