//! Criterion benchmark suites of the commit log; the code lives in `benches/`.
//!
//! `cargo bench -p benches` runs them all: `format` (batch encode, decode and
//! verify), `index` (sparse index lookups, mmap and in-memory), `storage`
//! (appends, group commit) and `clean` (the log cleaner, cold compression).
//! This library holds what the suites share: [`write_extra`], the figures a
//! suite leaves beside criterion's for `cargo xtask bench`'s report.
#![forbid(unsafe_code)]

/// Leaves `line` (an `EXTRA key=value …` line) in
/// `target/criterion/{group}/extra.txt`, where `log-loadgen criterion`
/// finds it, when the suite runs measured (`cargo bench`, which passes
/// `--bench`): the single pass of `cargo test --all-targets` writes
/// nothing, so it never replaces a measured run's figures.
pub fn write_extra(group: &str, line: &str) {
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let Some(target) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(std::path::Path::to_path_buf))
    else {
        return;
    };
    let dir = target.join("criterion").join(group);
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join("extra.txt"), format!("{line}\n"));
    }
}
