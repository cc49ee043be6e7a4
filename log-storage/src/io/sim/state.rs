//! The state of the simulated file system: the inode tree with its live
//! and durable images, the journal of namespace changes, and every
//! operation on them. `SimFs` (`mod.rs`) locks it and counts faults;
//! `crash.rs` plays a power loss on it.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Component, Path, PathBuf};

use super::{ABS_ROOT, FaultKind, Ino, MAX_FILE_BYTES, REL_ROOT};

/// An operation not yet made durable by `sync_data`.
#[derive(Debug, Clone)]
pub(super) enum DataOp {
    Write { pos: u64, bytes: Vec<u8> },
    SetLen(u64),
}

impl DataOp {
    pub(super) fn apply(&self, image: &mut Vec<u8>) {
        match self {
            DataOp::Write { pos, bytes } => write_into(image, *pos, bytes),
            DataOp::SetLen(len) => image.resize(to_usize(*len), 0),
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct FileNode {
    pub(super) live: Vec<u8>,
    pub(super) durable: Vec<u8>,
    /// Operations since the last sync, in order; replayed over `durable`
    /// they give `live`, unless a failed sync dropped some.
    pub(super) pending: Vec<DataOp>,
    /// Handles open on this file (since the last crash).
    pub(super) open: u32,
}

#[derive(Debug, Default)]
pub(super) struct DirNode {
    pub(super) live: BTreeMap<OsString, Ino>,
    pub(super) durable: BTreeMap<OsString, Ino>,
}

#[derive(Debug)]
pub(super) enum Node {
    File(FileNode),
    Dir(DirNode),
}

/// One entry change of a namespace operation: `name` in `dir` now points
/// at `target`, or is removed.
#[derive(Debug, Clone)]
pub(super) struct Change {
    pub(super) dir: Ino,
    pub(super) name: OsString,
    pub(super) target: Option<Ino>,
}

/// Which image to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Image {
    Live,
    Durable,
}

#[derive(Debug)]
pub(super) struct State {
    pub(super) nodes: BTreeMap<Ino, Node>,
    pub(super) next_ino: Ino,
    /// Namespace operations not yet durable, in the order they happened,
    /// each with the changes of directories not synced since.
    pub(super) journal: Vec<Vec<Change>>,
    /// Number of crashes so far.
    pub(super) generation: u64,
    pub(super) op_count: u64,
    /// The armed fault: the index of the operation it fails, and how.
    pub(super) armed: Option<(u64, FaultKind)>,
    pub(super) fail_syncs: bool,
    pub(super) capacity: Option<u64>,
}

impl Default for State {
    fn default() -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert(REL_ROOT, Node::Dir(DirNode::default()));
        nodes.insert(ABS_ROOT, Node::Dir(DirNode::default()));
        State {
            nodes,
            next_ino: ABS_ROOT + 1,
            journal: Vec::new(),
            generation: 0,
            op_count: 0,
            armed: None,
            fail_syncs: false,
            capacity: None,
        }
    }
}

impl State {
    /// Counts one operation; returns the armed fault if it fires now.
    pub(super) fn tick(&mut self) -> Option<FaultKind> {
        let index = self.op_count;
        self.op_count += 1;
        match self.armed {
            Some((at, kind)) if at == index => {
                self.armed = None;
                Some(kind)
            }
            _ => None,
        }
    }

    pub(super) fn add_node(&mut self, node: Node) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, node);
        ino
    }

    pub(super) fn dir(&self, ino: Ino) -> Option<&DirNode> {
        match self.nodes.get(&ino) {
            Some(Node::Dir(dir)) => Some(dir),
            _ => None,
        }
    }

    pub(super) fn dir_mut(&mut self, ino: Ino) -> Option<&mut DirNode> {
        match self.nodes.get_mut(&ino) {
            Some(Node::Dir(dir)) => Some(dir),
            _ => None,
        }
    }

    pub(super) fn file(&self, ino: Ino) -> Option<&FileNode> {
        match self.nodes.get(&ino) {
            Some(Node::File(file)) => Some(file),
            _ => None,
        }
    }

    pub(super) fn file_mut(&mut self, ino: Ino) -> Option<&mut FileNode> {
        match self.nodes.get_mut(&ino) {
            Some(Node::File(file)) => Some(file),
            _ => None,
        }
    }

    /// The live entry `name` of directory `dir`.
    pub(super) fn child(&self, dir: Ino, name: &OsStr) -> Option<Ino> {
        self.dir(dir)?.live.get(name).copied()
    }

    /// Follows `names` from `root` through live entries.
    pub(super) fn walk(&self, root: Ino, names: &[&OsStr], path: &Path) -> io::Result<Ino> {
        let mut at = root;
        for name in names {
            let dir = self
                .dir(at)
                .ok_or_else(|| error(io::ErrorKind::NotADirectory, "not a directory", path))?;
            at = *dir
                .live
                .get(*name)
                .ok_or_else(|| error(io::ErrorKind::NotFound, "no such file or directory", path))?;
        }
        Ok(at)
    }

    /// The live node at `path`.
    pub(super) fn resolve(&self, path: &Path) -> io::Result<Ino> {
        let (root, names) = split(path)?;
        self.walk(root, &names, path)
    }

    /// The live directory that holds (or would hold) `path`, and its name
    /// there.
    pub(super) fn resolve_parent(&self, path: &Path) -> io::Result<(Ino, OsString)> {
        let (root, names) = split(path)?;
        let Some((name, parents)) = names.split_last() else {
            return Err(error(io::ErrorKind::InvalidInput, "is a root", path));
        };
        let dir = self.walk(root, parents, path)?;
        if self.dir(dir).is_none() {
            return Err(error(io::ErrorKind::NotADirectory, "not a directory", path));
        }
        Ok((dir, name.to_os_string()))
    }

    /// Applies a namespace operation to the live entries and journals it.
    pub(super) fn record(&mut self, changes: Vec<Change>) {
        for change in &changes {
            let dir = self
                .dir_mut(change.dir)
                .expect("a namespace change names a directory");
            match change.target {
                Some(target) => dir.live.insert(change.name.clone(), target),
                None => dir.live.remove(&change.name),
            };
        }
        self.journal.push(changes);
    }

    pub(super) fn create_dir_all(&mut self, path: &Path, durable: bool) -> io::Result<()> {
        let (root, names) = split(path)?;
        let mut at = root;
        for name in names {
            if self.dir(at).is_none() {
                return Err(error(io::ErrorKind::NotADirectory, "not a directory", path));
            }
            let child = match self.child(at, name) {
                Some(child) => child,
                None => {
                    let child = self.add_node(Node::Dir(DirNode::default()));
                    self.record(vec![Change {
                        dir: at,
                        name: name.to_os_string(),
                        target: Some(child),
                    }]);
                    child
                }
            };
            if durable {
                self.settle(at, name);
            }
            at = child;
        }
        if self.dir(at).is_none() {
            return Err(error(
                io::ErrorKind::AlreadyExists,
                "exists and is not a directory",
                path,
            ));
        }
        Ok(())
    }

    /// Makes the live entry `name` of `dir` durable, alone.
    pub(super) fn settle(&mut self, dir: Ino, name: &OsStr) {
        let node = self.dir_mut(dir).expect("settle names a directory");
        match node.live.get(name).copied() {
            Some(target) => node.durable.insert(name.to_os_string(), target),
            None => node.durable.remove(name),
        };
        for op in &mut self.journal {
            op.retain(|change| change.dir != dir || change.name != name);
        }
        self.journal.retain(|op| !op.is_empty());
    }

    pub(super) fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let (from_dir, from_name) = self.resolve_parent(from)?;
        let ino = self
            .child(from_dir, &from_name)
            .ok_or_else(|| error(io::ErrorKind::NotFound, "no such file or directory", from))?;
        let (to_dir, to_name) = self.resolve_parent(to)?;
        if from_dir == to_dir && from_name == to_name {
            return Ok(());
        }
        let moving_dir = self.dir(ino).is_some();
        if let Some(existing) = self.child(to_dir, &to_name) {
            if existing == ino {
                // Two names of one file (after a half-synced rename): as
                // rename(2), do nothing.
                return Ok(());
            }
            match (moving_dir, self.dir(existing)) {
                (false, Some(_)) => {
                    return Err(error(io::ErrorKind::IsADirectory, "is a directory", to));
                }
                (true, None) => {
                    return Err(error(io::ErrorKind::NotADirectory, "not a directory", to));
                }
                (true, Some(target)) if !target.live.is_empty() => {
                    return Err(error(
                        io::ErrorKind::DirectoryNotEmpty,
                        "directory not empty",
                        to,
                    ));
                }
                _ => {}
            }
        }
        if moving_dir {
            // A directory cannot move into itself.
            let (root, names) = split(to)?;
            for depth in 0..names.len() {
                if self.walk(root, &names[..depth], to)? == ino {
                    return Err(error(
                        io::ErrorKind::InvalidInput,
                        "cannot move a directory into itself",
                        to,
                    ));
                }
            }
        }
        self.record(vec![
            Change {
                dir: from_dir,
                name: from_name,
                target: None,
            },
            Change {
                dir: to_dir,
                name: to_name,
                target: Some(ino),
            },
        ]);
        self.collect_garbage();
        Ok(())
    }

    pub(super) fn write(&mut self, ino: Ino, buf: &[u8], pos: u64) -> io::Result<()> {
        let end = pos
            .checked_add(buf.len() as u64)
            .filter(|end| *end <= MAX_FILE_BYTES)
            .ok_or_else(too_large)?;
        let current = self.file(ino).expect("writes name a file").live.len() as u64;
        let mut take = buf.len();
        let mut full = false;
        if let Some(capacity) = self.capacity {
            let room = capacity.saturating_sub(self.used_bytes());
            if end > current && end - current > room {
                full = true;
                let limit = current + room;
                take = to_usize(limit.saturating_sub(pos)).min(buf.len());
            }
        }
        if take > 0 {
            let op = DataOp::Write {
                pos,
                bytes: buf[..take].to_vec(),
            };
            let file = self.file_mut(ino).expect("writes name a file");
            op.apply(&mut file.live);
            file.pending.push(op);
        }
        if full {
            Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "simulated ENOSPC: capacity reached after {take} of {} bytes",
                    buf.len()
                ),
            ))
        } else {
            Ok(())
        }
    }

    pub(super) fn set_len(&mut self, ino: Ino, len: u64) -> io::Result<()> {
        if len > MAX_FILE_BYTES {
            return Err(too_large());
        }
        let current = self.file(ino).expect("set_len names a file").live.len() as u64;
        if let Some(capacity) = self.capacity
            && len > current
            && len - current > capacity.saturating_sub(self.used_bytes())
        {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "simulated ENOSPC: capacity reached",
            ));
        }
        let op = DataOp::SetLen(len);
        let file = self.file_mut(ino).expect("set_len names a file");
        op.apply(&mut file.live);
        file.pending.push(op);
        Ok(())
    }

    /// Bytes of the files linked in the live namespace or open.
    pub(super) fn used_bytes(&self) -> u64 {
        let mut counted = BTreeSet::new();
        self.walk_tree(Image::Live, |_, ino, _| {
            counted.insert(ino);
        });
        self.nodes
            .iter()
            .filter_map(|(ino, node)| match node {
                Node::File(file) if file.open > 0 || counted.contains(ino) => {
                    Some(file.live.len() as u64)
                }
                _ => None,
            })
            .sum()
    }

    /// Calls `visit` with the path, number and node of every entry reachable
    /// from the roots through `image` entries (a directory is entered once).
    pub(super) fn walk_tree(&self, image: Image, mut visit: impl FnMut(&Path, Ino, &Node)) {
        let mut entered = BTreeSet::from([REL_ROOT, ABS_ROOT]);
        let mut stack = vec![(PathBuf::new(), REL_ROOT), (PathBuf::from("/"), ABS_ROOT)];
        while let Some((path, ino)) = stack.pop() {
            let Some(dir) = self.dir(ino) else { continue };
            let entries = match image {
                Image::Live => &dir.live,
                Image::Durable => &dir.durable,
            };
            for (name, child) in entries {
                let Some(node) = self.nodes.get(child) else {
                    continue;
                };
                let child_path = path.join(name);
                visit(&child_path, *child, node);
                if matches!(node, Node::Dir(_)) && entered.insert(*child) {
                    stack.push((child_path, *child));
                }
            }
        }
    }

    pub(super) fn snapshot(&self, image: Image) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        self.walk_tree(image, |path, _, node| {
            if let Node::File(file) = node {
                let content = match image {
                    Image::Live => &file.live,
                    Image::Durable => &file.durable,
                };
                files.insert(path.to_path_buf(), content.clone());
            }
        });
        files
    }

    /// Drops every node that nothing can reach any more: not through live
    /// or durable entries, nor the journal, nor an open handle.
    /// The parent, name and inode of what a removal of `path` removes,
    /// after counting the operation (`op`) for faults.
    pub(super) fn entry_to_remove(
        &mut self,
        op: &str,
        missing: &str,
        path: &Path,
    ) -> io::Result<(Ino, OsString, Ino)> {
        if let Some(kind) = self.tick() {
            return Err(fault_error(kind, op, path));
        }
        let (dir, name) = self.resolve_parent(path)?;
        let ino = self
            .child(dir, &name)
            .ok_or_else(|| error(io::ErrorKind::NotFound, missing, path))?;
        Ok((dir, name, ino))
    }

    /// Removes `name` from `dir` (journaled, not durable until the
    /// directory is synced) and frees what nothing reaches any more.
    pub(super) fn unlink(&mut self, dir: Ino, name: OsString) {
        self.record(vec![Change {
            dir,
            name,
            target: None,
        }]);
        self.collect_garbage();
    }

    pub(super) fn collect_garbage(&mut self) {
        let mut work = vec![REL_ROOT, ABS_ROOT];
        for (ino, node) in &self.nodes {
            if let Node::File(file) = node
                && file.open > 0
            {
                work.push(*ino);
            }
        }
        for change in self.journal.iter().flatten() {
            work.push(change.dir);
            work.extend(change.target);
        }
        let mut marked = BTreeSet::new();
        while let Some(ino) = work.pop() {
            if !marked.insert(ino) {
                continue;
            }
            if let Some(dir) = self.dir(ino) {
                work.extend(dir.live.values());
                work.extend(dir.durable.values());
            }
        }
        self.nodes.retain(|ino, _| marked.contains(ino));
    }
}

/// Writes `bytes` at `pos` of `image`, zero-filling any gap.
pub(super) fn write_into(image: &mut Vec<u8>, pos: u64, bytes: &[u8]) {
    let start = to_usize(pos);
    let end = start + bytes.len();
    if image.len() < end {
        image.resize(end, 0);
    }
    image[start..end].copy_from_slice(bytes);
}

/// Converts a length or position already bounded by [`MAX_FILE_BYTES`].
pub(super) fn to_usize(n: u64) -> usize {
    usize::try_from(n).expect("simulated files are bounded far below usize::MAX")
}

/// The root and the names of `path`.
pub(super) fn split(path: &Path) -> io::Result<(Ino, Vec<&OsStr>)> {
    let mut root = REL_ROOT;
    let mut names = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir => root = ABS_ROOT,
            Component::CurDir => {}
            Component::Normal(name) => names.push(name),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(error(
                    io::ErrorKind::InvalidInput,
                    "`..` and path prefixes are not supported",
                    path,
                ));
            }
        }
    }
    Ok((root, names))
}

pub(super) fn error(kind: io::ErrorKind, what: &str, path: &Path) -> io::Error {
    io::Error::new(kind, format!("{what}: {}", path.display()))
}

pub(super) fn fault_error(kind: FaultKind, op: &str, path: &Path) -> io::Error {
    let at = if path.as_os_str().is_empty() {
        String::new()
    } else {
        format!(" of {}", path.display())
    };
    match kind {
        FaultKind::Eio | FaultKind::ShortWrite => {
            io::Error::other(format!("simulated EIO in {op}{at}"))
        }
        FaultKind::Enospc => io::Error::new(
            io::ErrorKind::StorageFull,
            format!("simulated ENOSPC in {op}{at}"),
        ),
    }
}

pub(super) fn too_large() -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        "simulated files are limited to 1 GiB",
    )
}
