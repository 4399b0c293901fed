//! Watching the file system with notify: local repositories (their refs and the spool the git
//! hooks write) in [`repo`], and the spool format in [`spool`].
//!
//! Watchers are adapters: they notice, turn what they noticed into pipeline events and submit
//! them; they never change the store's domain rows themselves. Whatever a watcher misses
//! (the daemon was stopped, an inotify queue overflowed) reconcile finds later.

pub mod repo;
pub mod spool;
