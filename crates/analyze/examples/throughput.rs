//! Static-analysis throughput on a real tree: `cargo run --release -p palisade-analyze --example
//! throughput -- DIR [--threads N] [--include-tests] [--runs N]`.
//!
//! Prints files, MB of source, wall time and MB/s for each run (the first run reads from disk, later
//! runs from the page cache), then occurrences per rule and the findings kept after collapsing and
//! capping. The BENCHMARKS.md row comes from this.

use std::time::Instant;

use palisade_analyze::code::{Options, analyze_dir};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut options = Options::default();
    let mut runs = 3;
    let mut show = 0usize;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => options.threads = args.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            "--include-tests" => options.include_tests = true,
            "--runs" => runs = args.next().and_then(|n| n.parse().ok()).unwrap_or(3),
            "--show" => show = args.next().and_then(|n| n.parse().ok()).unwrap_or(20),
            _ => dir = Some(a),
        }
    }
    let Some(dir) = dir else {
        eprintln!("usage: throughput DIR [--threads N] [--include-tests] [--runs N] [--show N]");
        std::process::exit(2);
    };
    let mut last = None;
    for run in 1..=runs.max(1) {
        let t = Instant::now();
        let report = match analyze_dir(dir.as_ref(), &options) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(2);
            }
        };
        let secs = t.elapsed().as_secs_f64();
        let mb = report.stats.bytes as f64 / 1e6;
        println!(
            "run {run}: {} files, {:.1} MB of source in {:.2} s = {:.1} MB/s",
            report.stats.files,
            mb,
            secs,
            mb / secs
        );
        last = Some(report);
    }
    let Some(report) = last else { return };
    println!("stats: {:?}", report.stats);
    println!("occurrences per rule: {:?}", report.occurrences);
    println!(
        "findings kept: {} (suppressed by the per-rule cap: {:?}); score {}, verdict {}",
        report.findings.len(),
        report.suppressed,
        report.score,
        report.verdict().as_str()
    );
    for f in report.findings.iter().take(show) {
        let l = f
            .location
            .as_ref()
            .map(|l| {
                format!(
                    "{}:{}:{}",
                    report.relative(&l.path),
                    l.start.line,
                    l.start.column
                )
            })
            .unwrap_or_default();
        println!(
            "  {:<8} {:<22} {l}  {}",
            f.severity.as_str(),
            f.rule,
            f.message
        );
    }
}
