//! `agentbuild-codezip`: the library's steps as commands, for `make bench-artifact` and by hand.
//!
//!   agentbuild-codezip deps CONTEXT.zip [RUNTIME]            key, source, canonical requirements
//!   agentbuild-codezip layer DIR OUT.zip [LEVEL]               a dependency layer zip of DIR
//!   agentbuild-codezip assemble LAYER.zip|- CONTEXT.zip ENTRY OUT.zip   the code artifact (JSON)

use agentbuild_codezip::{
    assemble, read_dependencies, zip::ZipArchive, zip_directory, PythonRuntime,
};
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;
use std::process::ExitCode;

fn open(path: &str) -> Result<ZipArchive<BufReader<File>>, String> {
    let file = File::open(path).map_err(|e| format!("{path}: {e}"))?;
    ZipArchive::new(BufReader::new(file)).map_err(|e| format!("{path}: {e}"))
}

fn run(args: &[String]) -> Result<(), String> {
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["deps", context, rest @ ..] => {
            let runtime: PythonRuntime = rest.first().map_or(Ok(PythonRuntime::NEWEST), |r| r.parse()).map_err(|e| format!("{e}"))?;
            match read_dependencies(&mut open(context)?, runtime).map_err(|e| e.to_string())? {
                Some(d) => print!("{}\t{}\n{}", d.key, d.source, d.requirements),
                None => println!("no dependencies"),
            }
            Ok(())
        }
        ["layer", dir, out, rest @ ..] => {
            let level = rest.first().map_or(Ok(6), |l| l.parse::<i64>()).map_err(|e| format!("level: {e}"))?;
            let file = File::create(out).map_err(|e| format!("{out}: {e}"))?;
            let files = zip_directory(Path::new(dir), BufWriter::new(file), level).map_err(|e| e.to_string())?;
            println!("{files} files");
            Ok(())
        }
        ["assemble", layer, context, entry, out] => {
            let mut layer = if *layer == "-" { None } else { Some(open(layer)?) };
            let file = File::create(out).map_err(|e| format!("{out}: {e}"))?;
            let a = assemble(layer.as_mut(), &mut open(context)?, entry, BufWriter::new(file)).map_err(|e| e.to_string())?;
            println!(
                "{{\"sha256\":\"{}\",\"size\":{},\"unzipped\":{},\"files\":{},\"dropped\":{}}}",
                a.sha256,
                a.size,
                a.unzipped,
                a.files,
                a.dropped.len()
            );
            Ok(())
        }
        _ => Err("usage: agentbuild-codezip deps CONTEXT.zip [RUNTIME] | layer DIR OUT.zip [LEVEL] | assemble LAYER.zip|- CONTEXT.zip ENTRY OUT.zip".into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agentbuild-codezip: {e}");
            ExitCode::FAILURE
        }
    }
}
