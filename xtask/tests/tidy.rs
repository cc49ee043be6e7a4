//! Tidy checks of the workspace's source, in the spirit of rust-analyzer's
//! `tidy.rs`: rules about the shape of the code that review would otherwise
//! have to remember.
//!
//! - **No file over [`MAX_LINES`] lines** in any crate's `src/`, tests
//!   aside (counting stops at the first top-level `#[cfg(test)]`).
//! - **No module cycles** in any crate. Within each module, the modules it
//!   holds (its children) may use each other in one direction only: if
//!   anything under `a` names something under its sibling `b`, nothing
//!   under `b` may name anything under `a`, directly or through a chain of
//!   siblings. A child naming its parent (the facade it lives in, `super::`)
//!   or a parent naming its children is not a cycle. References are the
//!   paths written in the code (`crate::…`, `super::…`, `self::…`, in `use`
//!   groups too, over as many lines as they take), each followed through
//!   the `use` declarations it passes (a name re-exported or imported by a
//!   facade counts as naming the module that defines it); test modules
//!   are left out.
//! - **Every source file starts with module docs** (`//!`), saying what it
//!   does.
//!
//! The checks read files only; they compile nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Longest a source file may be, tests aside.
const MAX_LINES: usize = 700;

/// The workspace root (this crate lives in `xtask/`).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// The `src/` directory of every member crate.
fn crate_sources() -> Vec<PathBuf> {
    let root = workspace();
    let mut out = Vec::new();
    for entry in fs::read_dir(&root).expect("list the workspace") {
        let path = entry.expect("workspace entry").path();
        if path.join("Cargo.toml").is_file() && path.join("src").is_dir() {
            out.push(path.join("src"));
        }
    }
    out.sort();
    assert!(
        out.len() >= 5,
        "found too few crates under {}",
        root.display()
    );
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("list a source directory")
        .map(|e| e.expect("source entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The lines of a file up to its first top-level `#[cfg(test)]`.
fn code_lines(text: &str) -> Vec<&str> {
    text.lines()
        .take_while(|line| !line.starts_with("#[cfg(test)]"))
        .collect()
}

#[test]
fn no_source_file_is_over_the_line_limit() {
    let mut long = Vec::new();
    for src in crate_sources() {
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for file in files {
            let text = fs::read_to_string(&file).expect("read a source file");
            let lines = code_lines(&text).len();
            if lines > MAX_LINES {
                long.push(format!("{} has {lines} lines", file.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines (tests aside); split them by concern:\n{}",
        long.join("\n")
    );
}

#[test]
fn every_source_file_starts_with_module_docs() {
    let mut missing = Vec::new();
    for src in crate_sources() {
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for file in files {
            let text = fs::read_to_string(&file).expect("read a source file");
            if !text.trim_start().starts_with("//!") {
                missing.push(file.display().to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "files without module docs (`//!`):\n{}",
        missing.join("\n")
    );
}

/// A module path inside one crate (`["partition", "commit"]`).
type ModPath = Vec<String>;

/// One crate: its root file and the modules of its files.
struct Crate {
    root: PathBuf,
    files: BTreeMap<ModPath, PathBuf>,
}

/// The crates under `src`: the library (`lib.rs` and every file not under
/// `bin/`, nor `main.rs` when there is a library), `main.rs`, and each
/// binary under `bin/`.
fn crates_of(src: &Path) -> Vec<Crate> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let has_lib = src.join("lib.rs").is_file();
    let mut crates: BTreeMap<PathBuf, Crate> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(src).expect("under src").to_path_buf();
        let parts: Vec<String> = rel
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        let (root, base) = if parts[0] == "bin" {
            if parts.len() == 2 {
                (file.clone(), src.join("bin"))
            } else {
                (
                    src.join("bin").join(&parts[1]).join("main.rs"),
                    src.join("bin").join(&parts[1]),
                )
            }
        } else if has_lib && parts == ["main.rs"] {
            (file.clone(), src.to_path_buf())
        } else if has_lib {
            (src.join("lib.rs"), src.to_path_buf())
        } else {
            (src.join("main.rs"), src.to_path_buf())
        };
        let module = module_path(&file, &root, &base);
        crates
            .entry(root.clone())
            .or_insert_with(|| Crate {
                root,
                files: BTreeMap::new(),
            })
            .files
            .insert(module, file);
    }
    crates.into_values().collect()
}

fn module_path(file: &Path, root: &Path, base: &Path) -> ModPath {
    if file == root {
        return Vec::new();
    }
    let rel = file.strip_prefix(base).expect("under the crate's base");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    if last != "mod.rs" {
        parts.push(last.trim_end_matches(".rs").to_owned());
    }
    parts
}

/// Strips comments and string literals (roughly, enough for paths).
fn strip_noise(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        if in_str {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '/' if chars.peek() == Some(&'/') => break,
            _ => out.push(c),
        }
    }
    out
}

/// Every path that starts with `crate`, `super` or `self` in `code`, with
/// `use` groups expanded: `crate::{a::B, c}` gives `crate::a::B` and
/// `crate::c`.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    located_paths(code)
        .into_iter()
        .map(|(path, _)| path)
        .collect()
}

/// [`paths_in`], each path with the char index where it starts.
fn located_paths(code: &str) -> Vec<(Vec<String>, usize)> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if at_word_start(&chars, i) {
            for head in ["crate", "super", "self"] {
                let word: Vec<char> = head.chars().collect();
                if chars[i..].starts_with(&word) && chars[i + word.len()..].starts_with(&[':', ':'])
                {
                    let (paths, end) = parse_path(&chars, i);
                    out.extend(paths.into_iter().map(|p| (p, i)));
                    i = end;
                    break;
                }
            }
        }
        i += 1;
    }
    out
}

/// Whether a word may start at `i` (not inside a name or a path).
fn at_word_start(chars: &[char], i: usize) -> bool {
    i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_' || chars[i - 1] == ':')
}

/// The `use` declarations of `code` (`pub` or not, groups expanded), as
/// the name each brings into the module and the path it names, written as
/// it is (`crate::…`, `super::…`, or relative: a child module or another
/// crate). `a::B as C` brings `C`; a glob brings nothing.
fn uses_in(code: &str) -> Vec<(String, Vec<String>)> {
    let chars: Vec<char> = code.chars().collect();
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut i = 0;
    while i + 4 < chars.len() {
        if at_word_start(&chars, i)
            && chars[i..].starts_with(&['u', 's', 'e'])
            && chars[i + 3].is_whitespace()
        {
            let (paths, end) = parse_path(&chars, i + 4);
            // A group's `X as Y` reads as the paths `X`, `as` and `Y`,
            // each with the group's prefix: `Y` renames what `X` named.
            let mut renamed = false;
            for path in paths {
                let Some(last) = path.last() else {
                    continue;
                };
                if last == "as" {
                    renamed = true;
                } else if renamed {
                    if let Some(entry) = out.last_mut() {
                        entry.0 = last.clone();
                    }
                    renamed = false;
                } else {
                    out.push((last.clone(), path.clone()));
                }
            }
            i = end;
        }
        i += 1;
    }
    out
}

/// Parses `seg::seg::…` at `i`, expanding a `{…}` group; returns the paths
/// and the index after them.
fn parse_path(chars: &[char], mut i: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    loop {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i < chars.len() && chars[i] == '{' {
            let mut paths = Vec::new();
            i += 1;
            loop {
                while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
                    i += 1;
                }
                if i >= chars.len() || chars[i] == '}' {
                    return (
                        paths
                            .into_iter()
                            .map(|p: Vec<String>| [prefix.clone(), p].concat())
                            .collect(),
                        i + 1,
                    );
                }
                let (inner, end) = parse_path(chars, i);
                paths.extend(inner);
                i = end.max(i + 1);
            }
        }
        let start = i;
        while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        if i == start {
            return (vec![prefix], i);
        }
        prefix.push(chars[start..i].iter().collect());
        if chars[i..].starts_with(&[':', ':']) {
            i += 2;
        } else {
            return (vec![prefix], i);
        }
    }
}

/// Resolves a written path, seen from module `from`, to an absolute path.
fn absolute(from: &ModPath, path: &[String]) -> Option<ModPath> {
    let mut out: ModPath;
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            out = Vec::new();
            rest = &rest[1..];
        }
        Some("self") | Some("super") => {
            // `self` is the module itself, `super` its parent.
            out = from.clone();
            while let Some(head) = rest.first().map(String::as_str) {
                match head {
                    "self" => rest = &rest[1..],
                    "super" => {
                        out.pop()?;
                        rest = &rest[1..];
                    }
                    _ => break,
                }
            }
        }
        _ => return None,
    }
    out.extend(rest.iter().cloned());
    Some(out)
}

/// The longest prefix of `path` that is a module of the crate.
fn owning_module(modules: &BTreeSet<ModPath>, path: &ModPath) -> ModPath {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| modules.contains(prefix))
        .unwrap_or_default()
}

/// Inline modules (`mod name {`) are not files: a path into one is owned by
/// the file that holds it, which `owning_module` finds.
#[test]
fn no_module_cycles() {
    let mut problems = Vec::new();
    for src in crate_sources() {
        for krate in crates_of(&src) {
            problems.extend(cycles_of(&krate));
        }
    }
    assert!(
        problems.is_empty(),
        "module cycles (siblings that use each other):\n{}",
        problems.join("\n")
    );
}

/// A file's code as one text (comments and strings stripped, tests left
/// out), so a statement over several lines reads as one, and where each
/// of its lines starts.
fn file_code(text: &str) -> (String, Vec<usize>) {
    let mut code = String::new();
    let mut starts = Vec::new();
    for line in code_lines(text) {
        starts.push(code.chars().count());
        code.push_str(&strip_noise(line));
        code.push('\n');
    }
    (code, starts)
}

/// The names each module brings in with `use`, by module and name: what
/// they stand for, as absolute paths (relative ones resolved from the
/// module, so a path into another crate resolves to nothing of this one).
type Aliases = BTreeMap<(ModPath, String), ModPath>;

fn aliases_of(krate: &Crate, codes: &BTreeMap<ModPath, (String, Vec<usize>)>) -> Aliases {
    let mut aliases = Aliases::new();
    for module in krate.files.keys() {
        for (name, path) in uses_in(&codes[module].0) {
            let target = absolute(module, &path).unwrap_or_else(|| [module.clone(), path].concat());
            aliases.insert((module.clone(), name), target);
        }
    }
    aliases
}

/// The module that defines what `path` names: the longest module prefix,
/// followed through the `use` declarations (re-exports and imports) of the
/// modules on the way, so `crate::Dispatch`, re-exported at the root from
/// `partition::committer`, is owned by `partition::committer`.
fn defining_module(modules: &BTreeSet<ModPath>, aliases: &Aliases, path: &ModPath) -> ModPath {
    let mut path = path.clone();
    // Bounded: a chain of re-exports is short, and a loop of them (which
    // the compiler refuses) must not hang the check.
    for _ in 0..16 {
        let owner = owning_module(modules, &path);
        let Some(name) = path.get(owner.len()) else {
            return owner;
        };
        match aliases.get(&(owner.clone(), name.clone())) {
            Some(target) if *target != path[..=owner.len()] => {
                path = [target.clone(), path[owner.len() + 1..].to_vec()].concat();
            }
            _ => return owner,
        }
    }
    owning_module(modules, &path)
}

/// The cycles among sibling modules of one crate, described.
fn cycles_of(krate: &Crate) -> Vec<String> {
    let modules: BTreeSet<ModPath> = krate.files.keys().cloned().collect();
    let codes: BTreeMap<ModPath, (String, Vec<usize>)> = krate
        .files
        .iter()
        .map(|(module, file)| {
            let text = fs::read_to_string(file).expect("read a source file");
            (module.clone(), file_code(&text))
        })
        .collect();
    let aliases = aliases_of(krate, &codes);
    // (parent, child a, child b) -> one example reference of a using b.
    let mut edges: BTreeMap<ModPath, BTreeMap<String, BTreeMap<String, String>>> = BTreeMap::new();
    for (module, file) in &krate.files {
        let (code, starts) = &codes[module];
        let lines: Vec<&str> = code.lines().collect();
        for (path, at) in located_paths(code) {
            let Some(abs) = absolute(module, &path) else {
                continue;
            };
            let target = defining_module(&modules, &aliases, &abs);
            let common = module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            // Self, an ancestor (the facade) or a descendant: no edge.
            if common == module.len() || common == target.len() {
                continue;
            }
            let n = starts
                .partition_point(|&start| start <= at)
                .saturating_sub(1);
            let parent = module[..common].to_vec();
            edges
                .entry(parent)
                .or_default()
                .entry(module[common].clone())
                .or_default()
                .entry(target[common].clone())
                .or_insert_with(|| {
                    format!(
                        "{}:{}: {} (names {})",
                        file.display(),
                        n + 1,
                        lines.get(n).map_or("", |l| l.trim()),
                        target.join("::")
                    )
                });
        }
    }
    let mut problems = Vec::new();
    for (parent, graph) in &edges {
        if let Some(cycle) = find_cycle(graph) {
            let mut text = format!(
                "in `{}` of {}: {}",
                if parent.is_empty() {
                    "crate".to_owned()
                } else {
                    parent.join("::")
                },
                krate.root.display(),
                cycle.join(" -> ")
            );
            for pair in cycle.windows(2) {
                text.push_str(&format!("\n    {}", graph[&pair[0]][&pair[1]]));
            }
            problems.push(text);
        }
    }
    problems
}

/// A cycle of the graph, as a path that ends where it starts.
fn find_cycle(graph: &BTreeMap<String, BTreeMap<String, String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeMap<String, String>>,
        done: &mut BTreeSet<String>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flat_map(|m| m.keys()) {
            if let Some(cycle) = visit(next, graph, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, graph, &mut done, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn the_checks_see_what_they_check() {
    // The path reader expands `use` groups and resolves `super`.
    let paths = paths_in("use crate::{a::B, c::{d, e::F}}; let x = super::g::h();");
    assert_eq!(
        paths,
        vec![
            vec!["crate", "a", "B"],
            vec!["crate", "c", "d"],
            vec!["crate", "c", "e", "F"],
            vec!["super", "g", "h"],
        ]
        .into_iter()
        .map(|p| p.into_iter().map(String::from).collect::<Vec<_>>())
        .collect::<Vec<_>>()
    );
    let from: ModPath = vec!["partition".into(), "append".into()];
    let abs = absolute(&from, &["super".into(), "commit".into(), "Waiter".into()]);
    assert_eq!(
        abs,
        Some(vec!["partition".into(), "commit".into(), "Waiter".into()])
    );
    // A group over several lines is read whole.
    let (code, _) = file_code("use crate::{\n    a::B,\n    c,\n};\n");
    assert_eq!(
        paths_in(&code),
        vec![vec!["crate", "a", "B"], vec!["crate", "c"]]
            .into_iter()
            .map(|p| p.into_iter().map(String::from).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );
    // A name is followed through the `use` declarations that bring it in.
    let uses = uses_in("pub use committer::{Committer, Dispatch as Handoff};");
    let strings = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        uses,
        vec![
            ("Committer".to_owned(), strings(&["committer", "Committer"])),
            ("Handoff".to_owned(), strings(&["committer", "Dispatch"])),
        ]
    );
    let modules: BTreeSet<ModPath> = [strings(&[]), strings(&["p"]), strings(&["p", "c"])].into();
    let mut aliases = Aliases::new();
    aliases.insert((strings(&[]), "D".into()), strings(&["p", "D"]));
    aliases.insert((strings(&["p"]), "D".into()), strings(&["p", "c", "D"]));
    assert_eq!(
        defining_module(&modules, &aliases, &strings(&["D", "new"])),
        strings(&["p", "c"])
    );
    // A cycle is found, and a chain is not one.
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    graph
        .entry("a".into())
        .or_default()
        .insert("b".into(), String::new());
    graph
        .entry("b".into())
        .or_default()
        .insert("c".into(), String::new());
    assert_eq!(find_cycle(&graph), None);
    graph
        .entry("c".into())
        .or_default()
        .insert("a".into(), String::new());
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    // Every crate of the workspace is seen, with its modules.
    let storage = crates_of(&workspace().join("log-storage/src"));
    assert_eq!(storage.len(), 1);
    assert!(storage[0].files.len() > 10);
}
