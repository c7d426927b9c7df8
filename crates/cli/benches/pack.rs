//! `make bench`: packing a build context — throughput, zip size and peak memory, printed.
//! Two trees: an agent-sized one (200 small source files) and a heavy one (2,000 files of
//! 32 KiB, half of them excluded by .dockerignore — the case .dockerignore exists for).

use agentbuild_cli::package::pack;
use std::fs;
use std::path::Path;
use std::time::Instant;

fn write_tree(root: &Path, files: usize, bytes_each: usize, ignored: usize) {
    fs::write(
        root.join("Dockerfile"),
        "FROM python:3.12-slim\nCOPY . /app\n",
    )
    .unwrap();
    fs::write(root.join(".dockerignore"), "node_modules\n**/*.pyc\n").unwrap();
    // Compressible but not trivially so: source-like text with a per-file seed.
    let body = |seed: usize| -> Vec<u8> {
        (0..bytes_each)
            .map(|i| b"abcdefghij klmnop\n"[(i * 7 + seed * 13 + i / 97) % 18])
            .collect()
    };
    for i in 0..files {
        let dir = root.join(format!("src/pkg{}", i % 20));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("mod{i}.py")), body(i)).unwrap();
    }
    for i in 0..ignored {
        let dir = root.join(format!("node_modules/dep{}", i % 50));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("f{i}.js")), body(i)).unwrap();
    }
}

fn peak_rss_kib() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn bench(label: &str, files: usize, bytes_each: usize, ignored: usize) {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), files, bytes_each, ignored);
    // Ignored files are never read: throughput counts what was packed.
    let input_mib = (files * bytes_each) as f64 / (1 << 20) as f64;
    pack(dir.path()).unwrap(); // warm the page cache
    let runs = 3;
    let start = Instant::now();
    let mut packed = None;
    for _ in 0..runs {
        packed = Some(pack(dir.path()).unwrap());
    }
    let secs = start.elapsed().as_secs_f64() / runs as f64;
    let p = packed.unwrap();
    println!(
        "{label:<34} {:>6} files in, {:>5} packed, {:>7.1} MiB read in {:>7.1} ms ({:>6.1} MiB/s), zip {:>8} bytes",
        files + ignored + 2,
        p.files,
        input_mib,
        secs * 1e3,
        input_mib / secs,
        p.size
    );
}

fn main() {
    bench("agent-sized (200 files, 2 KiB)", 200, 2048, 0);
    bench("heavy (1,000 kept + 1,000 ignored)", 1000, 32 * 1024, 1000);
    println!(
        "{:<34} {:>6} KiB peak RSS of the whole bench process",
        "memory",
        peak_rss_kib()
    );
}
