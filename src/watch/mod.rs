//! Watchers: notify-driven adapters that turn what appears on disk into pipeline events.

pub mod drop_dir;
