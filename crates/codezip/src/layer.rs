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

/// Zips `dir` to `out`; returns the number of files.
pub fn zip_directory<W: Write + io::Seek>(dir: &Path, out: W) -> Result<u64, ContextError> {
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    let mut writer = ZipWriter::new(out);
    for (rel, executable) in &files {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(6))
            .last_modified_time(DateTime::default())
            .unix_permissions(if *executable { 0o755 } else { 0o644 })
            .large_file(false);
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
        writer
            .start_file(rel.as_str(), options)
            .map_err(|e| ContextError::zip(rel, e))?;
        writer
            .write_all(&data)
            .map_err(|e| ContextError::io(rel, e))?;
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
            assert_eq!(zip_directory(dir.path(), &mut out).unwrap(), 2);
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
