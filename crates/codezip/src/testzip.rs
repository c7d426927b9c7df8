//! Zips built in memory for the unit tests.

use std::io::{Cursor, Write};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

pub(crate) type MemZip = ZipArchive<Cursor<Vec<u8>>>;

pub(crate) fn bytes_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, content) in files {
        if name.ends_with('/') {
            w.add_directory(*name, options).unwrap();
        } else {
            w.start_file(*name, options).unwrap();
            w.write_all(content.as_bytes()).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

pub(crate) fn zip_of(files: &[(&str, &str)]) -> MemZip {
    ZipArchive::new(Cursor::new(bytes_of(files))).unwrap()
}

/// A zip with one symlink `name` -> `target` besides `files`.
pub(crate) fn zip_with_symlink(files: &[(&str, &str)], name: &str, target: &str) -> MemZip {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    for (n, content) in files {
        w.start_file(*n, SimpleFileOptions::default()).unwrap();
        w.write_all(content.as_bytes()).unwrap();
    }
    w.add_symlink(name, target, SimpleFileOptions::default())
        .unwrap();
    ZipArchive::new(Cursor::new(w.finish().unwrap().into_inner())).unwrap()
}

/// `bytes` with the central-directory header of `name` changed by `patch` (the 46-byte fixed
/// part; sizes at 20 (compressed) and 24 (uncompressed)), and `name` renamed to `rename`
/// (same length) in both headers when given.
pub(crate) fn patched(
    mut bytes: Vec<u8>,
    name: &str,
    patch: impl Fn(&mut [u8]),
    rename: Option<&str>,
) -> MemZip {
    let mut i = 0;
    while i + 46 <= bytes.len() {
        if bytes[i..i + 4] == [0x50, 0x4b, 0x01, 0x02] {
            let len = u16::from_le_bytes([bytes[i + 28], bytes[i + 29]]) as usize;
            if &bytes[i + 46..i + 46 + len] == name.as_bytes() {
                patch(&mut bytes[i..i + 46]);
                if let Some(new) = rename {
                    bytes[i + 46..i + 46 + len].copy_from_slice(new.as_bytes());
                    let local =
                        u32::from_le_bytes(bytes[i + 42..i + 46].try_into().unwrap()) as usize;
                    bytes[local + 30..local + 30 + len].copy_from_slice(new.as_bytes());
                }
            }
        }
        i += 1;
    }
    ZipArchive::new(Cursor::new(bytes)).unwrap()
}
