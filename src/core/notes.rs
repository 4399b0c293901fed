//! Release notes: what a release contains, for humans (`shiplog releases notes VERSION`).
//!
//! The commits of the release grouped by conventional-commit type (model::changelog), the
//! breaking changes, the issues it fixes (from "Fixes WEB-1" references in its commits and
//! from resolutions in it; an id that names a project of the organization is listed even when
//! no such issue exists, with its title when it does), the authors and the deploys.

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde_json::{Value, json};

use super::CoreError;
use crate::model::changelog::{self, Section};
use crate::store::issues as store;
use crate::store::orgs::Org;

/// The most commits (and authors) the notes list: a release of 100 000 commits must not make a
/// 20 MB answer. `commitCount` still says how many there are.
pub const MAX_LISTED: usize = 1000;

/// The notes of a release as JSON (the shape `--format json` prints and Markdown is made of).
pub fn notes(conn: &Connection, org: &Org, version: &str) -> Result<Value, CoreError> {
    let release = super::release::get(conn, org, version)?;
    let commit_count = store::release_commit_count(conn, release.id)?;
    let commits = store::release_commits(conn, release.id, MAX_LISTED)?;
    let authors = store::release_authors(conn, release.id, MAX_LISTED)?;

    let mut sections: BTreeMap<Section, Vec<Value>> = BTreeMap::new();
    let mut breaking = Vec::new();
    for c in &commits {
        let message = c.message.as_deref().unwrap_or("");
        let subject = changelog::parse(message);
        let entry = json!({
            "id": c.key,
            // By characters: a commit id sent over the API need not be ASCII.
            "shortId": c.key.chars().take(7).collect::<String>(),
            "repository": c.repository,
            "scope": subject.scope,
            "breaking": subject.breaking,
            "description": subject.description,
            "author": c.author_name.clone().or(c.author_email.clone()),
            "dateCreated": c.date_added,
        });
        if subject.breaking {
            breaking.push(entry.clone());
        }
        sections.entry(subject.section).or_default().push(entry);
    }

    let mut fixed: Vec<Value> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for id in store::resolved_in_release(conn, release.id)? {
        if let Some(issue) = store::by_id(conn, org.id, id)? {
            let sid = issue.qualified_short_id();
            seen.push(sid.clone());
            fixed.push(json!({
                "shortId": sid, "title": issue.title, "known": true,
                "status": status_name(issue.status),
            }));
        }
    }
    for link in store::links_of_release(conn, release.id)? {
        if seen.contains(&link.short_id) || link.issue_id.is_some() {
            continue;
        }
        if !store::project_slug_exists(conn, org.id, &link.project_slug)? {
            continue;
        }
        seen.push(link.short_id.clone());
        fixed.push(json!({
            "shortId": link.short_id, "title": null, "known": false, "status": null,
        }));
    }

    let deploys = super::deploy::list(conn, org, version)?;
    Ok(json!({
        "version": release.version,
        "dateCreated": release.date_added,
        "dateReleased": release.date_released,
        "commitCount": commit_count,
        // Past MAX_LISTED the notes list the newest commits only (and the first authors).
        "commitsListed": commits.len(),
        "sections": Section::ALL.iter().filter_map(|s| sections.get(s).map(|list| json!({
            "type": s.key(), "title": s.title(), "commits": list,
        }))).collect::<Vec<_>>(),
        "breaking": breaking,
        "fixedIssues": fixed,
        "authors": authors.iter().map(|(email, name, n)| json!({
            "name": name, "email": email, "commits": n,
        })).collect::<Vec<_>>(),
        "deploys": deploys.iter().map(|d| json!({
            "environment": d.environment, "name": d.name, "url": d.url,
            "dateFinished": d.date_finished,
        })).collect::<Vec<_>>(),
    }))
}

fn status_name(code: i64) -> &'static str {
    match code {
        store::STATUS_RESOLVED => "resolved",
        store::STATUS_IGNORED => "ignored",
        _ => "unresolved",
    }
}

/// Markdown for notes made by [`notes`].
pub fn markdown(notes: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut out = format!("# {}\n", s(&notes["version"]));
    if let Some(d) = notes["dateReleased"].as_str() {
        let day: String = d.chars().take(10).collect();
        out.push_str(&format!("\nReleased {day}.\n"));
    }
    let commit_line = |c: &Value| {
        let scope = c["scope"]
            .as_str()
            .map(|sc| format!("**{sc}:** "))
            .unwrap_or_default();
        let author = c["author"]
            .as_str()
            .map(|a| format!(" ({a})"))
            .unwrap_or_default();
        format!(
            "- {scope}{} `{}`{author}\n",
            s(&c["description"]),
            s(&c["shortId"])
        )
    };
    let breaking = notes["breaking"].as_array().cloned().unwrap_or_default();
    if !breaking.is_empty() {
        out.push_str("\n## Breaking changes\n\n");
        for c in &breaking {
            out.push_str(&commit_line(c));
        }
    }
    for section in notes["sections"].as_array().cloned().unwrap_or_default() {
        out.push_str(&format!("\n## {}\n\n", s(&section["title"])));
        for c in section["commits"].as_array().cloned().unwrap_or_default() {
            out.push_str(&commit_line(&c));
        }
    }
    let unlisted = notes["commitCount"]
        .as_u64()
        .unwrap_or(0)
        .saturating_sub(notes["commitsListed"].as_u64().unwrap_or(0));
    if unlisted > 0 {
        out.push_str(&format!("\n…and {unlisted} more commits.\n"));
    }
    let fixed = notes["fixedIssues"].as_array().cloned().unwrap_or_default();
    if !fixed.is_empty() {
        out.push_str("\n## Fixed issues\n\n");
        for i in &fixed {
            match i["title"].as_str() {
                Some(t) => out.push_str(&format!("- {}: {t}\n", s(&i["shortId"]))),
                None => out.push_str(&format!("- {}\n", s(&i["shortId"]))),
            }
        }
    }
    let authors = notes["authors"].as_array().cloned().unwrap_or_default();
    if !authors.is_empty() {
        out.push_str("\n## Authors\n\n");
        for a in &authors {
            let name = a["name"]
                .as_str()
                .unwrap_or_else(|| a["email"].as_str().unwrap_or("?"));
            out.push_str(&format!("- {name} ({} commits)\n", a["commits"]));
        }
    }
    let deploys = notes["deploys"].as_array().cloned().unwrap_or_default();
    if !deploys.is_empty() {
        out.push_str("\n## Deploys\n\n");
        for d in &deploys {
            out.push_str(&format!(
                "- {} at {}\n",
                s(&d["environment"]),
                s(&d["dateFinished"])
            ));
        }
    }
    if notes["commitCount"] == json!(0) && fixed.is_empty() {
        out.push_str("\nNo commits are recorded for this release yet.\n");
    }
    out
}
