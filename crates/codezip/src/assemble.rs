//! The code artifact: the dependency layer's entries and the context's, copied compressed as
//! they are (no decompression, no re-compression), in name order, with fixed timestamps and
//! modes, so equal inputs give byte-equal zips. Nothing in either zip is executed or unpacked:
//! only central-directory metadata is read and compressed bytes are streamed through.

use crate::error::ContextError;
use crate::paths::{self, Special};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Seek, Write};
use zip::read::ZipFileEntry;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

/// AgentCore Runtime's limits for a code artifact (250 MB zipped, 750 MB unzipped; MiB).
pub const MAX_ZIPPED: u64 = 250 * 1024 * 1024;
pub const MAX_UNZIPPED: u64 = 750 * 1024 * 1024;
/// `file` of errors about the dependency layer's entries: `dependencies:<name>`.
pub const LAYER_PREFIX: &str = "dependencies:";
/// Bytes an entry adds to the zip besides its data (local + central headers, name twice,
/// extended-timestamp and ZIP64 fields): for the limit check before anything is written.
const ENTRY_OVERHEAD: u64 = 30 + 46 + 64;

/// What `assemble` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assembled {
    /// Hex SHA-256 of the zip's bytes, as written.
    pub sha256: String,
    /// The zip's size in bytes.
    pub size: u64,
    /// The sum of its files' uncompressed sizes.
    pub unzipped: u64,
    /// How many files it holds.
    pub files: u64,
    /// Context files left out (bytecode: `__pycache__/`, `*.pyc`), in name order.
    pub dropped: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Layer,
    Context,
}

#[derive(Debug, Clone)]
struct Entry {
    origin: Origin,
    index: usize,
    name: String,
    size: u64,
    compressed: u64,
    executable: bool,
}

impl Entry {
    fn label(&self) -> String {
        match self.origin {
            Origin::Layer => format!("{LAYER_PREFIX}{}", self.name),
            Origin::Context => self.name.clone(),
        }
    }
}

/// Why an entry (not a directory) may not be copied, if it may not.
fn refusal(meta: &ZipFileEntry<'_>, name: &str) -> Option<&'static str> {
    if let Some(why) = paths::unsafe_name(name) {
        return Some(why);
    }
    if meta.is_symlink() {
        return Some("symbolic links are not allowed (a link could point outside the code)");
    }
    if meta.is_dir() {
        return None;
    }
    if meta.encrypted() {
        return Some("encrypted entries are not allowed");
    }
    match meta.compression() {
        CompressionMethod::Stored | CompressionMethod::Deflated => None,
        _ => Some("only stored or deflated entries are allowed"),
    }
}

/// The files of `archive` (directories skipped), each checked: a safe name, no symlink, no
/// encryption, stored or deflated only.
fn entries<R: Read + Seek>(
    archive: &ZipArchive<R>,
    origin: Origin,
) -> Result<Vec<Entry>, ContextError> {
    let prefix = if origin == Origin::Layer {
        LAYER_PREFIX
    } else {
        ""
    };
    if archive.has_duplicate_names() {
        let why = "the zip holds two entries with one name";
        return Err(ContextError::new(format!("{prefix}(zip)"), why));
    }
    let mut out = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let meta = archive
            .by_index_data(index)
            .map_err(|e| ContextError::zip(prefix, e))?;
        let lossy = || format!("{prefix}{}", String::from_utf8_lossy(meta.name_raw()));
        let name = std::str::from_utf8(meta.name_raw())
            .map_err(|_| ContextError::new(lossy(), "entry name is not UTF-8"))?
            .to_string();
        if let Some(why) = refusal(&meta, &name) {
            return Err(ContextError::new(format!("{prefix}{name}"), why));
        }
        if meta.is_dir() {
            continue;
        }
        let executable = meta.unix_mode().is_some_and(|m| m & 0o111 != 0);
        let (size, compressed) = (meta.size(), meta.compressed_size());
        out.push(Entry {
            origin,
            index,
            name,
            size,
            compressed,
            executable,
        });
    }
    Ok(out)
}

/// Drops or refuses the context's special files and anything shadowing the layer's packages.
fn screen_context(
    context: Vec<Entry>,
    layer_tops: &BTreeMap<String, String>,
) -> Result<(Vec<Entry>, Vec<String>), ContextError> {
    let mut kept = Vec::with_capacity(context.len());
    let mut dropped = Vec::new();
    for entry in context {
        match paths::special(&entry.name) {
            Some(Special::Drop) => {
                dropped.push(entry.name);
                continue;
            }
            Some(Special::Refuse(why)) => return Err(ContextError::new(entry.name, why)),
            None => {}
        }
        if let Some(layer_file) = layer_tops.get(paths::top_level(&entry.name)) {
            let why = format!(
                "shadows `{}` of the dependency layer ({layer_file}): rename it",
                paths::top_level(&entry.name)
            );
            return Err(ContextError::new(entry.name, why));
        }
        kept.push(entry);
    }
    dropped.sort();
    Ok((kept, dropped))
}

/// All entries in name order; refuses equal names and names equal but for case.
fn merge(mut all: Vec<Entry>) -> Result<Vec<Entry>, ContextError> {
    all.sort_by(|a, b| a.name.cmp(&b.name));
    let mut folded: BTreeMap<String, String> = BTreeMap::new();
    for entry in &all {
        if let Some(other) = folded.insert(entry.name.to_lowercase(), entry.label()) {
            let why = format!("collides with `{other}` (equal names, or equal but for case)");
            return Err(ContextError::new(entry.label(), why));
        }
    }
    Ok(all)
}

/// AgentCore's limits, checked before anything is written; names the file that crossed one
/// and the largest file.
fn check_limits(all: &[Entry]) -> Result<(u64, u64), ContextError> {
    let largest = |key: fn(&Entry) -> u64| {
        all.iter()
            .max_by_key(|e| key(e))
            .map(|e| format!("{} ({} bytes)", e.label(), key(e)))
            .unwrap_or_default()
    };
    let (mut zipped, mut unzipped) = (22u64, 0u64);
    for entry in all {
        zipped += entry.compressed + 2 * entry.name.len() as u64 + ENTRY_OVERHEAD;
        unzipped += entry.size;
        if unzipped > MAX_UNZIPPED {
            let why = format!("the artifact would unzip to over {MAX_UNZIPPED} bytes (750 MB) with this file; largest file: {}", largest(|e| e.size));
            return Err(ContextError::new(entry.label(), why));
        }
        if zipped > MAX_ZIPPED {
            let why = format!("the artifact would be over {MAX_ZIPPED} bytes (250 MB) zipped with this file; largest file: {}", largest(|e| e.compressed));
            return Err(ContextError::new(entry.label(), why));
        }
    }
    Ok((zipped, unzipped))
}

/// A writer that hashes and counts what is appended. The zip writer only ever appends when
/// every entry is a raw copy (sizes and CRCs known up front, no header patched afterwards; its
/// closing seeks write nothing), so the hash is of the output's bytes; a write anywhere but at
/// the end is refused rather than hashed wrong.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    count: u64,
    position: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.position != self.count {
            return Err(io::Error::other(
                "the artifact writer went back to rewrite bytes",
            ));
        }
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        self.position = self.count;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Seek> Seek for Hashing<W> {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        let base = self.inner.stream_position()? - self.position;
        let target = match pos {
            io::SeekFrom::Start(n) => base + n,
            other => self.inner.seek(other)?,
        };
        self.position = self.inner.seek(io::SeekFrom::Start(target))? - base;
        Ok(self.position)
    }
}

fn copy_all<R1: Read + Seek, R2: Read + Seek, W: Write + Seek>(
    mut layer: Option<&mut ZipArchive<R1>>,
    context: &mut ZipArchive<R2>,
    all: &[Entry],
    out: W,
) -> Result<Hashing<W>, ContextError> {
    let mut writer = ZipWriter::new(Hashing {
        inner: out,
        hash: Sha256::new(),
        count: 0,
        position: 0,
    });
    for entry in all {
        let mode = if entry.executable { 0o755 } else { 0o644 };
        let label = entry.label();
        let copied = match (entry.origin, layer.as_deref_mut()) {
            (Origin::Layer, Some(layer)) => layer
                .by_index_raw(entry.index)
                .and_then(|f| writer.raw_copy_file_touch(f, DateTime::default(), Some(mode))),
            _ => context
                .by_index_raw(entry.index)
                .and_then(|f| writer.raw_copy_file_touch(f, DateTime::default(), Some(mode))),
        };
        copied.map_err(|e| ContextError::zip(&label, e))?;
    }
    let mut hashing = writer
        .finish()
        .map_err(|e| ContextError::zip("(artifact)", e))?;
    hashing
        .flush()
        .map_err(|e| ContextError::io("(artifact)", e))?;
    Ok(hashing)
}

/// Writes the code artifact to `out`: the dependency layer (if any) and the context, entries
/// copied compressed as they are, in name order, timestamps fixed, modes 0644/0755; equal inputs
/// give equal bytes. Refuses, naming the file: unsafe names (absolute, `..`), symlinks,
/// encrypted or oddly compressed entries, duplicates and case collisions, context files that
/// shadow a top-level name of the layer, root site hooks (`sitecustomize.py`,
/// `usercustomize.py`, `*.pth`) and package metadata, a missing entry point, and an artifact
/// over AgentCore's limits. Drops the context's bytecode (`Assembled::dropped`).
/// `out` is only appended to (the zip writer's closing seeks write nothing): no entry carries a
/// data descriptor, and the hash is computed as the bytes go out.
pub fn assemble<R1: Read + Seek, R2: Read + Seek, W: Write + Seek>(
    dependencies: Option<&mut ZipArchive<R1>>,
    context: &mut ZipArchive<R2>,
    entry_point: &str,
    out: W,
) -> Result<Assembled, ContextError> {
    if let Some(why) = paths::unsafe_name(entry_point) {
        return Err(ContextError::new(
            entry_point,
            format!("entry point: {why}"),
        ));
    }
    let layer = match &dependencies {
        Some(layer) => entries(layer, Origin::Layer)?,
        None => Vec::new(),
    };
    let mut tops: BTreeMap<String, String> = BTreeMap::new();
    for entry in &layer {
        tops.entry(paths::top_level(&entry.name).to_string())
            .or_insert_with(|| entry.name.clone());
    }
    let (code, dropped) = screen_context(entries(context, Origin::Context)?, &tops)?;
    if !code.iter().any(|e| e.name == entry_point) {
        return Err(ContextError::new(
            entry_point,
            "the entry point is not a file of the context",
        ));
    }
    let files: BTreeSet<&str> = code.iter().map(|e| e.name.as_str()).collect();
    debug_assert!(files.contains(entry_point));
    let all = merge(layer.into_iter().chain(code).collect())?;
    let (_, unzipped) = check_limits(&all)?;
    let hashing = copy_all(dependencies, context, &all, out)?;
    if hashing.count > MAX_ZIPPED {
        return Err(ContextError::new(
            "(artifact)",
            format!("{} bytes zipped: over {MAX_ZIPPED} (250 MB)", hashing.count),
        ));
    }
    Ok(Assembled {
        sha256: hex::encode(hashing.hash.finalize()),
        size: hashing.count,
        unzipped,
        files: all.len() as u64,
        dropped,
    })
}

#[cfg(test)]
#[path = "tests/assemble.rs"]
mod tests;
