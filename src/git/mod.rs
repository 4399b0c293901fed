//! Commit data from local git repositories, through git2 (libgit2).
//!
//! This module owns every read of a repository on disk: opening it (a work tree or a bare
//! repository), resolving what a user or a tool names (full or short sha, tag, branch, `HEAD`)
//! to a commit, and walking a range into [`CommitData`], the one commit shape every source
//! produces. It knows nothing of the store or of releases. Everything here blocks: call it from
//! `spawn_blocking`, and never inside a `Store::write` (resolve first, then write).
//!
//! # Which commits a range has
//!
//! [`collect_range`] with `from..to` returns what `git log from..to` shows: every commit
//! reachable from `to` and not from `from`, **merge commits included**, newest first by commit
//! time (git's default order). A merge's patch set is its diff against its **first parent**,
//! which is what GitHub shows for a merge commit and what the merge brought into the branch it
//! was merged into. The commits of the merged branch are listed too, each with its own diff.
//!
//! With `from` absent the range is the newest `initial_depth` commits reachable from `to`.
//! Every commit, the oldest included, is diffed against its own first parent, or against the
//! empty tree when it is a root commit (so a root's files are all `A`).
//!
//! # Patch sets
//!
//! Sentry knows three change types: `A`, `M` and `D`. There is no rename detection, so a rename
//! is a `D` of the old path and an `A` of the new one (as Sentry's GitHub integration records
//! it); a type change (file to symlink) or a mode change is an `M`; a file replaced by a
//! directory is a `D` and the directory's files `A`. File contents are never read: the trees
//! are compared entry by entry, so binary files cost nothing (see `Differ` for why this is not
//! libgit2's diff; BENCHMARKS.md has the numbers).
//!
//! # Path filters
//!
//! With [`RangeOptions::paths`] the range keeps the commits `git log from..to -- paths` shows,
//! including git's default history simplification: a commit is kept when it changed one of the
//! paths relative to its parent; at a merge that left the paths as one in-range parent had
//! them, only that parent's side is followed and the merge itself is left out. The patch set
//! of a kept commit still lists **every** file the commit changed, not only those under the
//! paths: file changes belong to the commit (one row per commit, shared by every release that
//! contains it), so they must not depend on which release recorded the commit first.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, SecondsFormat};
use git2::{Commit, ErrorCode, Oid, Repository, Sort, Tree};

use crate::model::commit::{ChangeKind, CommitData, FileChange};

/// Why a repository could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The path is not a work tree or bare repository.
    #[error("{} is not a git repository ({reason})", path.display())]
    NotARepository { path: PathBuf, reason: String },
    /// A revision names nothing in the repository, or names something that is not a commit.
    #[error("{spec} is not a commit in this repository ({reason})")]
    UnknownRevision { spec: String, reason: String },
    /// libgit2 failed while reading the repository.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

/// What a range keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeOptions {
    /// Only commits touching these paths (relative to the repository root, directories or
    /// files), as `git log -- paths` shows them. Empty: every commit.
    pub paths: Vec<String>,
    /// How many commits a range without a start gets (sentry-cli's and Sentry's default: 20).
    pub initial_depth: usize,
}

impl Default for RangeOptions {
    fn default() -> Self {
        RangeOptions {
            paths: Vec::new(),
            initial_depth: 20,
        }
    }
}

/// Opens the repository at `path` exactly (a work tree, its `.git` dir, or a bare repository);
/// parent directories are not searched.
pub fn open(path: &Path) -> Result<Repository, GitError> {
    Repository::open_ext(
        path,
        git2::RepositoryOpenFlags::NO_SEARCH,
        std::iter::empty::<&std::ffi::OsStr>(),
    )
    .map_err(|e| GitError::NotARepository {
        path: path.to_path_buf(),
        reason: e.message().to_string(),
    })
}

/// Opens the repository containing `path`, searching parent directories like `git` does.
pub fn discover(path: &Path) -> Result<Repository, GitError> {
    Repository::discover(path).map_err(|e| GitError::NotARepository {
        path: path.to_path_buf(),
        reason: e.message().to_string(),
    })
}

fn resolve_oid(repo: &Repository, spec: &str) -> Result<Oid, GitError> {
    let unknown = |reason: String| GitError::UnknownRevision {
        spec: spec.to_string(),
        reason,
    };
    if spec.is_empty() {
        return Err(unknown("empty revision".into()));
    }
    // `a..b` would parse as a range; a single revision is wanted here.
    if spec.contains("..") {
        return Err(unknown("a range, not a single revision".into()));
    }
    let object = repo.revparse_single(spec).map_err(|e| match e.code() {
        ErrorCode::Ambiguous => unknown("ambiguous short sha; give more characters".into()),
        ErrorCode::NotFound | ErrorCode::InvalidSpec => unknown("not found".into()),
        _ => unknown(e.message().to_string()),
    })?;
    let commit = object
        .peel_to_commit()
        .map_err(|_| unknown(format!("a {}, not a commit", kind_name(&object))))?;
    Ok(commit.id())
}

fn kind_name(object: &git2::Object<'_>) -> &'static str {
    object.kind().map_or("object", |k| k.str())
}

/// Resolves a full or short sha, a tag (peeled to its commit), a branch or any other ref to the
/// 40-hex sha of a commit.
pub fn resolve_commit(repo: &Repository, spec: &str) -> Result<String, GitError> {
    resolve_oid(repo, spec).map(|oid| oid.to_string())
}

/// The commits of `from..to`, newest first, with their patch sets (see the module docs for
/// merges, the oldest commit and path filters). `from` absent: the newest
/// `opts.initial_depth` commits reachable from `to`.
pub fn collect_range(
    repo: &Repository,
    from: Option<&str>,
    to: &str,
    opts: &RangeOptions,
) -> Result<Vec<CommitData>, GitError> {
    let to_oid = resolve_oid(repo, to)?;
    let from_oid = from.map(|f| resolve_oid(repo, f)).transpose()?;
    let limit = if from_oid.is_none() {
        opts.initial_depth
    } else {
        usize::MAX
    };
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut walk = repo.revwalk()?;
    // libgit2's default order is git's: newest commit time first, a commit only after a child
    // that reaches it. Any other sorting makes libgit2 walk the whole history up front.
    walk.set_sorting(Sort::NONE)?;
    walk.push(to_oid)?;
    if let Some(from) = from_oid {
        walk.hide(from)?;
    }
    let paths = normalize_paths(&opts.paths);
    let mut differ = Differ::new();
    let mut out = Vec::new();
    if paths.is_empty() {
        // Streamed: a range without a start stops after `limit` commits without walking the
        // rest of the history.
        for oid in walk {
            if out.len() >= limit {
                break;
            }
            let commit = repo.find_commit(oid?)?;
            out.push(differ.describe(repo, &commit)?);
        }
        return Ok(out);
    }
    let range: Vec<Oid> = walk.collect::<Result<_, _>>()?;
    let shown = simplify(repo, &range, to_oid, &paths)?;
    for oid in range.into_iter().filter(|oid| shown.contains(oid)) {
        if out.len() >= limit {
            break;
        }
        let commit = repo.find_commit(oid)?;
        out.push(differ.describe(repo, &commit)?);
    }
    Ok(out)
}

fn normalize_paths(paths: &[String]) -> Vec<PathBuf> {
    paths
        .iter()
        .map(|p| p.trim().trim_matches('/'))
        .filter(|p| !p.is_empty() && *p != ".")
        .map(PathBuf::from)
        .collect()
}

/// git's default history simplification for `git log from..to -- paths` (revision.c,
/// `try_to_simplify_commit`): the commits of `range` that are shown. A commit is TREESAME to a
/// parent when every path has the same tree entry in both. A TREESAME parent inside the range
/// is the only one followed and the commit is hidden; otherwise every parent is followed and
/// the commit is shown when it differs from an in-range parent (or, with none, from any).
fn simplify(
    repo: &Repository,
    range: &[Oid],
    to: Oid,
    paths: &[PathBuf],
) -> Result<HashSet<Oid>, GitError> {
    let in_range: HashSet<Oid> = range.iter().copied().collect();
    let mut reader = PathReader::new(repo, paths)?;
    let mut shown = HashSet::new();
    let mut seen = HashSet::new();
    let mut stack = vec![to];
    while let Some(oid) = stack.pop() {
        if !in_range.contains(&oid) || !seen.insert(oid) {
            continue;
        }
        let node = reader.node(oid)?;
        let (parents, mine) = (node.parents.clone(), node.entries.clone());
        if parents.is_empty() {
            if mine.iter().any(Option::is_some) {
                shown.insert(oid);
            }
            continue;
        }
        let mut followed_one = None;
        let mut relevant_change = false;
        let mut irrelevant_change = false;
        for &parent in &parents {
            let relevant = in_range.contains(&parent);
            if reader.node(parent)?.entries == mine {
                if relevant {
                    followed_one = Some(parent);
                    break;
                }
            } else if relevant {
                relevant_change = true;
            } else {
                irrelevant_change = true;
            }
        }
        if let Some(parent) = followed_one {
            stack.push(parent);
            continue;
        }
        let relevant_parents = parents.iter().filter(|p| in_range.contains(p)).count();
        let changed = if relevant_parents > 0 {
            relevant_change
        } else {
            irrelevant_change
        };
        if changed {
            shown.insert(oid);
        }
        // Pushed in reverse so the first parent is walked first.
        stack.extend(parents.iter().rev().copied());
    }
    Ok(shown)
}

/// What simplification knows of a commit: its parents and the ids of the tree entries at
/// the paths (`None` where a path does not exist).
struct PathNode {
    parents: Vec<Oid>,
    entries: Vec<Option<Oid>>,
}

/// Reads commits and trees for [`simplify`] straight from the object database, once each.
///
/// Simplification touches every commit of the range and every tree along the paths, and
/// needs nothing else of them, so they are not parsed as libgit2 objects (signatures,
/// messages, entry arrays): a commit's header and a tree's entries are read from the raw
/// bytes, the way git itself reads them. That took a path-filtered range from about 2.4x to
/// about 1.9x `git log -- PATH` (BENCHMARKS.md).
struct PathReader<'r> {
    odb: git2::Odb<'r>,
    /// Each path split into its components.
    paths: Vec<Vec<Vec<u8>>>,
    nodes: HashMap<Oid, PathNode>,
}

impl<'r> PathReader<'r> {
    fn new(repo: &'r Repository, paths: &[PathBuf]) -> Result<PathReader<'r>, GitError> {
        let paths = paths
            .iter()
            .map(|p| {
                p.to_string_lossy()
                    .split('/')
                    .filter(|c| !c.is_empty())
                    .map(|c| c.as_bytes().to_vec())
                    .collect()
            })
            .collect();
        Ok(PathReader {
            odb: repo.odb()?,
            paths,
            nodes: HashMap::new(),
        })
    }

    fn node(&mut self, oid: Oid) -> Result<&PathNode, GitError> {
        if !self.nodes.contains_key(&oid) {
            let object = self.odb.read(oid)?;
            let (tree, parents) = commit_header(object.data()).ok_or_else(|| {
                GitError::Git(git2::Error::from_str(&format!(
                    "commit {oid} has no readable header"
                )))
            })?;
            let mut entries = Vec::with_capacity(self.paths.len());
            for path in &self.paths {
                entries.push(self.entry_at(tree, path)?);
            }
            self.nodes.insert(oid, PathNode { parents, entries });
        }
        Ok(&self.nodes[&oid])
    }

    /// The id of the entry at `path` below `tree`, `None` when there is none.
    fn entry_at(&self, tree: Oid, path: &[Vec<u8>]) -> Result<Option<Oid>, GitError> {
        let mut current = tree;
        for (i, name) in path.iter().enumerate() {
            let object = self.odb.read(current)?;
            let Some((is_tree, id)) = tree_entry(object.data(), name) else {
                return Ok(None);
            };
            if i + 1 == path.len() {
                return Ok(Some(id));
            }
            if !is_tree {
                return Ok(None);
            }
            current = id;
        }
        Ok(None)
    }
}

/// The tree and parents of a raw commit (`tree <hex>` then `parent <hex>` lines).
fn commit_header(data: &[u8]) -> Option<(Oid, Vec<Oid>)> {
    let mut lines = data.split(|b| *b == b'\n');
    let hex = |line: &[u8], key: &[u8]| -> Option<Oid> {
        let rest = line.strip_prefix(key)?;
        Oid::from_str(std::str::from_utf8(rest).ok()?).ok()
    };
    let tree = hex(lines.next()?, b"tree ")?;
    let mut parents = Vec::new();
    for line in lines {
        match hex(line, b"parent ") {
            Some(p) => parents.push(p),
            None => break,
        }
    }
    Some((tree, parents))
}

/// The entry `name` of a raw tree (`<mode> <name>\0<20-byte id>` repeated): whether it is a
/// tree, and its id.
fn tree_entry(data: &[u8], name: &[u8]) -> Option<(bool, Oid)> {
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest.iter().position(|b| *b == b' ')?;
        let nul = space + rest[space..].iter().position(|b| *b == 0)?;
        let id = rest.get(nul + 1..nul + 21)?;
        if &rest[space + 1..nul] == name {
            // git writes a tree's mode as 40000; some old tools wrote 040000.
            let is_tree = matches!(&rest[..space], b"40000" | b"040000");
            return Some((is_tree, Oid::from_bytes(id).ok()?));
        }
        rest = &rest[nul + 21..];
    }
    None
}

/// Turns commits into [`CommitData`].
///
/// The patch set comes from a direct walk of the two trees rather than libgit2's diff
/// machinery: entries are merge-joined in git's tree order, a subtree whose id is the same on
/// both sides is skipped without being read, and only the trees that differ are loaded. No
/// blob is ever read. This is what `git diff-tree -r --no-renames` does, without the per-diff
/// setup (iterators, delta lists, path matching) that made libgit2's tree-to-tree diff the
/// bulk of a range's cost. The parent's tree of one commit is usually the next commit's own
/// tree (the walk goes from child to parent), so it is kept for the next round.
struct Differ<'r> {
    /// The last parent tree loaded, by commit id.
    parent: Option<(Oid, Tree<'r>)>,
}

impl<'r> Differ<'r> {
    fn new() -> Differ<'r> {
        Differ { parent: None }
    }

    fn describe(
        &mut self,
        repo: &'r Repository,
        commit: &Commit<'r>,
    ) -> Result<CommitData, GitError> {
        let tree = match self.parent.take() {
            Some((oid, tree)) if oid == commit.id() => tree,
            _ => commit.tree()?,
        };
        let parent_tree = match commit.parent_id(0) {
            Ok(parent) => Some((parent, repo.find_commit(parent)?.tree()?)),
            Err(_) => None,
        };
        let mut patch_set = Vec::new();
        let mut prefix = Vec::new();
        diff_trees(
            repo,
            parent_tree.as_ref().map(|(_, t)| t),
            Some(&tree),
            &mut prefix,
            &mut patch_set,
        )?;
        self.parent = parent_tree;
        let author = commit.author();
        let message = match commit.message() {
            Ok(m) => m.to_string(),
            Err(_) => String::from_utf8_lossy(commit.message_bytes()).into_owned(),
        };
        Ok(CommitData {
            id: commit.id().to_string(),
            repository: None,
            message: Some(message),
            author_name: author
                .name()
                .ok()
                .map(str::to_string)
                .filter(|n| !n.is_empty()),
            author_email: author
                .email()
                .ok()
                .map(str::to_string)
                .filter(|e| !e.is_empty()),
            timestamp: format_time(author.when()),
            patch_set,
        })
    }
}

const MODE_TYPE_MASK: i32 = 0o170000;
const MODE_TREE: i32 = 0o040000;

fn is_tree(entry: &git2::TreeEntry<'_>) -> bool {
    entry.filemode() & MODE_TYPE_MASK == MODE_TREE
}

/// git's order of tree entries: by name, a tree's name compared as if it ended in `/`.
fn entry_order(a: &git2::TreeEntry<'_>, b: &git2::TreeEntry<'_>) -> std::cmp::Ordering {
    let (an, bn) = (a.name_bytes(), b.name_bytes());
    let common = an.len().min(bn.len());
    match an[..common].cmp(&bn[..common]) {
        std::cmp::Ordering::Equal => {}
        other => return other,
    }
    let next = |name: &[u8], tree: bool| -> u8 {
        match name.get(common) {
            Some(c) => *c,
            None if tree => b'/',
            None => 0,
        }
    };
    next(an, is_tree(a))
        .cmp(&next(bn, is_tree(b)))
        .then_with(|| an.len().cmp(&bn.len()))
}

fn push_change(prefix: &[u8], name: &[u8], kind: ChangeKind, out: &mut Vec<FileChange>) {
    let mut path = Vec::with_capacity(prefix.len() + name.len());
    path.extend_from_slice(prefix);
    path.extend_from_slice(name);
    out.push(FileChange {
        path: match String::from_utf8(path) {
            Ok(p) => p,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        },
        kind,
    });
}

/// Every file of `entry` (a file, or a whole subtree) as added or deleted.
fn whole(
    repo: &Repository,
    entry: &git2::TreeEntry<'_>,
    kind: ChangeKind,
    prefix: &mut Vec<u8>,
    out: &mut Vec<FileChange>,
) -> Result<(), git2::Error> {
    if !is_tree(entry) {
        push_change(prefix, entry.name_bytes(), kind, out);
        return Ok(());
    }
    let sub = repo.find_tree(entry.id())?;
    let len = prefix.len();
    prefix.extend_from_slice(entry.name_bytes());
    prefix.push(b'/');
    let result = match kind {
        ChangeKind::Deleted => diff_trees(repo, Some(&sub), None, prefix, out),
        _ => diff_trees(repo, None, Some(&sub), prefix, out),
    };
    prefix.truncate(len);
    result
}

/// The file changes from `old` to `new` under `prefix` (recursive; renames are D + A, a file
/// whose content or mode changed is M, a file turned directory is D + A).
fn diff_trees(
    repo: &Repository,
    old: Option<&Tree<'_>>,
    new: Option<&Tree<'_>>,
    prefix: &mut Vec<u8>,
    out: &mut Vec<FileChange>,
) -> Result<(), git2::Error> {
    let old_len = old.map_or(0, Tree::len);
    let new_len = new.map_or(0, Tree::len);
    let (mut i, mut j) = (0, 0);
    while i < old_len || j < new_len {
        let o = old.filter(|_| i < old_len).and_then(|t| t.get(i));
        let n = new.filter(|_| j < new_len).and_then(|t| t.get(j));
        match (o, n) {
            (Some(o), Some(n)) => match entry_order(&o, &n) {
                std::cmp::Ordering::Less => {
                    whole(repo, &o, ChangeKind::Deleted, prefix, out)?;
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    whole(repo, &n, ChangeKind::Added, prefix, out)?;
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    if o.id() != n.id() || o.filemode() != n.filemode() {
                        if is_tree(&o) {
                            let (ot, nt) = (repo.find_tree(o.id())?, repo.find_tree(n.id())?);
                            let len = prefix.len();
                            prefix.extend_from_slice(o.name_bytes());
                            prefix.push(b'/');
                            let result = diff_trees(repo, Some(&ot), Some(&nt), prefix, out);
                            prefix.truncate(len);
                            result?;
                        } else {
                            push_change(prefix, n.name_bytes(), ChangeKind::Modified, out);
                        }
                    }
                    i += 1;
                    j += 1;
                }
            },
            (Some(o), None) => {
                whole(repo, &o, ChangeKind::Deleted, prefix, out)?;
                i += 1;
            }
            (None, Some(n)) => {
                whole(repo, &n, ChangeKind::Added, prefix, out)?;
                j += 1;
            }
            (None, None) => break,
        }
    }
    Ok(())
}

/// A git time as RFC 3339 in its own offset (`2024-01-02T12:00:25+02:00`), as sentry-cli sends
/// it.
fn format_time(t: git2::Time) -> Option<String> {
    let offset = FixedOffset::east_opt(t.offset_minutes().checked_mul(60)?)?;
    let utc = DateTime::from_timestamp(t.seconds(), 0)?;
    Some(
        utc.with_timezone(&offset)
            .to_rfc3339_opts(SecondsFormat::Secs, false),
    )
}

/// A tag, with when it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    /// The short name (`v1.2.0`).
    pub name: String,
    /// The commit it peels to.
    pub commit: String,
    /// When it was made, in shiplog's canonical UTC form: the tagger date of an annotated
    /// tag, else the committer date of its commit (what `git tag --sort=creatordate` uses).
    pub date: String,
}

/// Every tag of the repository that peels to a commit, by name.
pub fn tags(repo: &Repository) -> Result<Vec<TagInfo>, GitError> {
    let mut out = Vec::new();
    for reference in repo.references_glob("refs/tags/*")? {
        let reference = reference?;
        let Some(name) = reference
            .name()
            .ok()
            .and_then(|n| n.strip_prefix("refs/tags/"))
            .map(str::to_owned)
        else {
            continue;
        };
        let Ok(commit) = reference.peel_to_commit() else {
            continue;
        };
        let tagger = reference
            .peel_to_tag()
            .ok()
            .and_then(|t| t.tagger().map(|s| s.when()));
        let when = tagger.unwrap_or_else(|| commit.committer().when());
        let date = DateTime::from_timestamp(when.seconds(), 0)
            .map(crate::model::time::format)
            .unwrap_or_default();
        out.push(TagInfo {
            name,
            commit: commit.id().to_string(),
            date,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The 40-hex sha `HEAD` points at.
pub fn head_sha(repo: &Repository) -> Result<String, GitError> {
    resolve_commit(repo, "HEAD")
}

/// The URL of a remote, if the repository has one by that name.
pub fn remote_url(repo: &Repository, name: &str) -> Option<String> {
    repo.find_remote(name)
        .ok()
        .and_then(|r| r.url().ok().map(str::to_string))
}

#[cfg(test)]
mod tests;
