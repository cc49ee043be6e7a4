//! Criterion benchmark suites of the commit log; the code lives in `benches/`.
//!
//! `cargo bench -p benches` runs them all: `format` (batch encode, decode and
//! verify) and `index` (sparse index lookups, mmap and in-memory). This
//! library holds no code; it exists because a package needs a target.
#![forbid(unsafe_code)]
