//! The local files of one code build (Lambda's /tmp): the context at the exact version the plan
//! validated, its SHA-256 checked as the container path checks it, and removed when done.

use crate::domain::plan::BuildPlan;
use crate::ports::ObjectFiles;
use crate::Error;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// `<dir>/<buildId>-<name>`: one build's files, apart from another's on a reused sandbox;
/// removed on drop.
pub struct WorkFiles {
    paths: Vec<PathBuf>,
    prefix: PathBuf,
}

impl WorkFiles {
    pub fn new(dir: &Path, build_id: &str) -> Self {
        Self {
            paths: Vec::new(),
            prefix: dir.join(build_id),
        }
    }

    pub fn path(&mut self, name: &str) -> PathBuf {
        let p = PathBuf::from(format!("{}-{name}", self.prefix.display()));
        self.paths.push(p.clone());
        p
    }
}

impl Drop for WorkFiles {
    fn drop(&mut self) {
        for p in &self.paths {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Downloads the plan's source (its validated version) to `path` and checks its SHA-256
/// against the plan's: a context that is not the one validated is never read.
pub async fn fetch_context(
    files: &impl ObjectFiles,
    plan: &BuildPlan,
    path: &Path,
) -> Result<(), Error> {
    let source = &plan.source;
    let got = files
        .download(
            &source.bucket,
            &source.key,
            source.version_id.as_deref(),
            path,
        )
        .await?;
    if got.is_none() {
        return Err(Error::InvalidContext(format!(
            "source: {} (version {}) is gone",
            source.uri,
            source.version_id.as_deref().unwrap_or("-")
        )));
    }
    let sha = file_sha256(path)?;
    if sha != source.sha256 {
        return Err(Error::InvalidContext(format!(
            "source: {} hashes {sha}, not the validated {}",
            source.uri, source.sha256
        )));
    }
    Ok(())
}

/// Hex SHA-256 of a local file, streamed.
pub fn file_sha256(path: &Path) -> Result<String, Error> {
    let mut file = std::fs::File::open(path).map_err(|e| local(path, e))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|e| local(path, e))?;
        if n == 0 {
            return Ok(hex::encode(hash.finalize()));
        }
        hash.update(&buf[..n]);
    }
}

/// A failure of Lambda's own disk: not the context's fault.
pub fn local(path: &Path, e: std::io::Error) -> Error {
    Error::InvalidState(format!("{}: {e}", path.display()))
}

/// A local zip opened for reading; an unreadable one is the context's fault, named `what`.
pub fn open_zip(
    path: &Path,
    what: &str,
) -> Result<agentbuild_codezip::zip::ZipArchive<std::io::BufReader<std::fs::File>>, Error> {
    let file = std::fs::File::open(path).map_err(|e| local(path, e))?;
    agentbuild_codezip::zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| Error::InvalidContext(format!("{what}: not a readable zip: {e}")))
}

/// A refusal of the context, naming its file (and line).
pub fn refused(e: agentbuild_codezip::ContextError) -> Error {
    Error::InvalidContext(e.to_string())
}

/// The core's runtime as the packaging library names it (the same AgentCore names).
pub fn runtime_of(r: crate::domain::artifact::PythonRuntime) -> agentbuild_codezip::PythonRuntime {
    r.as_str()
        .parse()
        .expect("the core and codezip name the same AgentCore runtimes")
}
