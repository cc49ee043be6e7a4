//! `log-loadgen criterion DIR`: prints one `CRITERION` line per benchmark
//! that criterion measured under `DIR` (its `target/criterion`), from the
//! `new/benchmark.json` and `new/estimates.json` of the latest run:
//!
//! ```text
//! CRITERION id=append/durable/100 mean_ns=642241749 elements=1000000 rps=1557045 mbps=155.7
//! ```
//!
//! `rps` = throughput elements per second at the mean time; `mbps` = `rps`
//! times the benchmark's last id part when that part is a size in bytes
//! (the suites name their cases by record size), 10^6 bytes per MB.
//! `cargo xtask bench` appends these lines to `results.txt` so the report
//! puts the in-process targets beside the end-to-end ones. A suite may
//! leave `EXTRA` lines of its own in an `extra.txt` of a benchmark group
//! (the storage suite's syncs per cycle, for one): they are printed as
//! they are. It does not run criterion, and it reads nothing but those
//! files.

use std::path::{Path, PathBuf};

use serde_json::Value;

type BoxError = Box<dyn std::error::Error>;

/// Prints the `CRITERION` lines of every benchmark under `dir`, sorted by
/// id.
pub(crate) fn print(dir: &Path) -> Result<(), BoxError> {
    let mut found = Vec::new();
    let mut extras = Vec::new();
    collect(dir, &mut found, &mut extras)?;
    let mut lines = Vec::new();
    for new in found {
        lines.push(line(&new).map_err(|e| format!("{}: {e}", new.display()))?);
    }
    for extra in extras {
        let text = std::fs::read_to_string(&extra)
            .map_err(|e| format!("cannot read {}: {e}", extra.display()))?;
        lines.extend(
            text.lines()
                .filter(|l| l.starts_with("EXTRA "))
                .map(str::to_owned),
        );
    }
    lines.sort();
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

/// The `new` directories (latest measurement) and the `extra.txt` files
/// under `dir`, skipping criterion's own HTML `report` directories.
fn collect(
    dir: &Path,
    found: &mut Vec<PathBuf>,
    extras: &mut Vec<PathBuf>,
) -> Result<(), BoxError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.is_file() && path.file_name().is_some_and(|n| n == "extra.txt") {
            extras.push(path);
            continue;
        }
        if !path.is_dir() || path.file_name().is_some_and(|n| n == "report") {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            if path.join("benchmark.json").is_file() && path.join("estimates.json").is_file() {
                found.push(path);
            }
        } else {
            collect(&path, found, extras)?;
        }
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<Value, BoxError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// The `CRITERION` line of one `new` directory.
fn line(new: &Path) -> Result<String, BoxError> {
    let benchmark = read_json(&new.join("benchmark.json"))?;
    let estimates = read_json(&new.join("estimates.json"))?;
    let id = benchmark["full_id"]
        .as_str()
        .ok_or("benchmark.json has no full_id")?
        .replace(char::is_whitespace, "_");
    let mean_ns = estimates["mean"]["point_estimate"]
        .as_f64()
        .ok_or("estimates.json has no mean")?;
    let mut out = format!("CRITERION id={id} mean_ns={mean_ns:.0}");
    if let Some(elements) = benchmark["throughput"]["Elements"].as_f64()
        && mean_ns > 0.0
    {
        let rps = elements / (mean_ns / 1e9);
        out.push_str(&format!(" elements={elements:.0} rps={rps:.0}"));
        let size = id.rsplit('/').next().and_then(|s| s.parse::<f64>().ok());
        if let Some(size) = size {
            out.push_str(&format!(" mbps={:.1}", rps * size / 1e6));
        }
    }
    if let Some(bytes) = benchmark["throughput"]["Bytes"].as_f64()
        && mean_ns > 0.0
    {
        out.push_str(&format!(" mbps={:.1}", bytes / (mean_ns / 1e9) / 1e6));
    }
    Ok(out)
}
