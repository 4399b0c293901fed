//! Watching the file system with notify: local repositories (their refs and the spool the git
//! hooks write) in [`repo`], the spool format in [`spool`], and the CI drop folders in
//! [`drop_dir`].
//!
//! Watchers are adapters: they notice, turn what they noticed into pipeline events and submit
//! them; they never change the store's domain rows themselves. Whatever a watcher misses
//! (the daemon was stopped, an inotify queue overflowed) reconcile or the start-up scan finds
//! later.

pub mod drop_dir;
pub mod repo;
pub mod spool;
