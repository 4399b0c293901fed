//! `shiplog open`: a one-time sign-in link to the web pages, printed and opened in a browser.
//! Works on the data dir directly, like `token create`, so it needs no token itself.

use std::process::{ExitCode, Stdio};

use clap::Args;

use super::{CliError, admin, output};
use crate::config::Config;
use crate::core;

#[derive(Debug, Args)]
pub struct OpenArgs {
    /// Only print the link, alone on one line (for scripts, or a browser on another machine).
    #[arg(long)]
    print: bool,
    /// Organization (default: the config's).
    #[arg(long)]
    org: Option<String>,
    /// The daemon's URL to link to (default: the config's public_url, else the running
    /// daemon's address, else the listen address).
    #[arg(long)]
    url: Option<String>,
}

/// Tries the desktop's URL opener; `false` when none could be started.
fn open_browser(link: &str) -> bool {
    let openers: &[&str] = if cfg!(target_os = "macos") {
        &["open"]
    } else {
        &["xdg-open", "sensible-browser"]
    };
    openers.iter().any(|cmd| {
        std::process::Command::new(cmd)
            .arg(link)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .is_ok()
    })
}

pub fn open(config: &Config, args: &OpenArgs) -> Result<ExitCode, CliError> {
    let store = admin::open(config)?;
    let base = admin::token_url(config, args.url.as_deref());
    let org_slug = args
        .org
        .clone()
        .unwrap_or_else(|| config.organization.clone());
    let secret = store.write_blocking(|tx| {
        let org = core::org::org(tx, &org_slug)?;
        core::web_session::create_link(tx, &org, chrono::Utc::now())
    })?;
    let link = format!("{base}/auth/open?token={secret}");
    if args.print {
        output::line(&link)?;
        return Ok(ExitCode::SUCCESS);
    }
    output::line(&format!(
        "Sign in to shiplog ({org_slug}) with this link, valid for {} minutes and usable once:",
        core::web_session::LINK_TTL.num_minutes()
    ))?;
    output::line(&link)?;
    if !open_browser(&link) {
        output::line("(No browser could be started here: open the link yourself.)")?;
    }
    Ok(ExitCode::SUCCESS)
}
