//! Code builds for the handler tests: contexts as zips in memory and a code plan over one.

use crate::domain::artifact::{ArtifactSpec, PythonRuntime};
use crate::domain::plan::BuildPlan;
use agentbuild_codezip::zip::write::SimpleFileOptions;
use agentbuild_codezip::zip::{CompressionMethod, ZipWriter};
use sha2::{Digest, Sha256};
use std::io::{Cursor, Write};

pub fn zip_bytes(files: &[(&str, &str)]) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, content) in files {
        w.start_file(*name, options).unwrap();
        w.write_all(content.as_bytes()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// The record tests' plan as a code build (`main.py`, PYTHON_3_13) of `context`.
pub fn code_plan(context: &[u8]) -> BuildPlan {
    let mut p = crate::domain::record::tests::plan();
    p.artifact = ArtifactSpec::Code {
        entry_point: "main.py".to_string().try_into().unwrap(),
        runtime: PythonRuntime::Python313,
    };
    p.source.sha256 = hex::encode(Sha256::digest(context));
    p
}

/// A test's own work directory (removed with it).
pub fn work_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}
