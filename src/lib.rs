//! shiplog: Sentry's Releases feature as one self-hosted binary.
//!
//! A release is a version of the code deployed somewhere. shiplog learns about releases from
//! git hooks, repository watching, GitHub webhooks, CI drop folders and its HTTP API (which
//! speaks the part of Sentry's API that `sentry-cli` uses), and keeps everything in one SQLite
//! file. See DESIGN.md for the architecture; in short:
//!
//! - [`model`]: pure domain types and rules (versions, environments, tokens, time);
//! - [`store`]: SQLite, migrations and per-aggregate queries;
//! - [`core`]: the domain operations every input calls;
//! - [`git`]: reading local repositories (ranges, commits, patch sets);
//! - [`pipeline`]: the durable inbox and the worker every input feeds;
//! - [`api`]: the HTTP layer (Sentry-compatible JSON);
//! - [`cli`]: the command line, a client of the API plus local admin commands;
//! - [`daemon`]: `shiplog serve`, wiring it all together;
//! - [`metrics`]: the named metrics served at `/metrics`.

#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod config;
pub mod core;
pub mod daemon;
pub mod git;
pub mod github;
pub mod hooks;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod pipeline;
pub mod schedule;
pub mod store;
pub mod systemd;
pub mod watch;
pub mod web;
