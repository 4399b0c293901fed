//! Suspect commits: which recent commits touched the files in an event's stack trace, and
//! who wrote them (sentry-semantics.md §9.1, Sentry's `utils/committers.py`).
//!
//! * Paths are compared from the file name backwards, case-insensitively: `app/views.py`
//!   and `src/app/views.py` share 2 trailing components.
//! * For each frame path, the commits whose changed files share the most trailing components
//!   win (ties kept); a 1-component match counts only for a changed file that is itself a bare
//!   name.
//! * Authors score 5, 4, 3, 2, 1 points for their commits met walking the frames in stack
//!   order, and are returned sorted by *ascending* score, as Sentry's code does.
//!
//! Pure: the caller loads frames, commits and file changes.

use std::collections::HashMap;

use crate::model::event::Frame;

/// Sentry's `frame_limit`.
pub const FRAME_LIMIT: usize = 25;
/// Points for the first matched commit; one less for each next one.
const POINTS: usize = 5;

/// Sentry's `tokenize_path`: split on the first separator the path contains, drop empty
/// parts, file name first.
pub fn tokenize_path(path: &str) -> Vec<&str> {
    for sep in ['/', '\\'] {
        if path.contains(sep) {
            return path.split(sep).filter(|p| !p.is_empty()).rev().collect();
        }
    }
    vec![path]
}

/// How many trailing path components two paths share, case-insensitively.
pub fn score_path_match_length(a: &str, b: &str) -> usize {
    tokenize_path(a)
        .into_iter()
        .zip(tokenize_path(b))
        .take_while(|(x, y)| x.to_lowercase() == y.to_lowercase())
        .count()
}

/// The path Sentry matches for a frame: `filename`, else `abs_path`; for Java frames with a
/// bare file name and a module, the module's package as directories.
pub fn frame_path(frame: &Frame, platform: Option<&str>) -> Option<String> {
    let filename = frame.filename.as_deref();
    if matches!(frame.platform.as_deref().or(platform), Some("java"))
        && let (Some(f), Some(module)) = (filename, frame.module.as_deref())
        && !f.contains('/')
    {
        let mut parts: Vec<&str> = module.split('.').collect();
        if let Some(last) = parts.last_mut() {
            *last = f;
        }
        return Some(parts.join("/"));
    }
    filename
        .or(frame.abs_path.as_deref())
        .filter(|p| !p.is_empty())
        .map(str::to_string)
}

/// The frames Sentry looks at: the last 25 in-app frames, else the last 25 frames.
pub fn app_frames(frames: &[Frame]) -> Vec<&Frame> {
    let in_app: Vec<&Frame> = frames.iter().filter(|f| f.in_app == Some(true)).collect();
    let chosen: Vec<&Frame> = if in_app.is_empty() {
        frames.iter().collect()
    } else {
        in_app
    };
    let skip = chosen.len().saturating_sub(FRAME_LIMIT);
    chosen.into_iter().skip(skip).collect()
}

/// The distinct file names (first path tokens) to look for in commits' changed files.
pub fn file_names(paths: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in paths {
        if let Some(name) = tokenize_path(p).first()
            && !out.iter().any(|o| o == name)
        {
            out.push((*name).to_string());
        }
    }
    out
}

/// Sentry's `_match_commits_path`: the commits (by id) whose changed file best matches
/// `path`, with the score.
pub fn match_commits_path(changes: &[(i64, String)], path: &str) -> Vec<(i64, usize)> {
    let mut best = 1;
    let mut matches: Vec<(i64, usize)> = Vec::new();
    for (commit, filename) in changes {
        let score = score_path_match_length(filename, path);
        if score > best {
            best = score;
            matches.clear();
        }
        if score == best {
            if score == 1 && tokenize_path(filename).len() > 1 {
                continue;
            }
            if !matches.iter().any(|(c, _)| c == commit) {
                matches.push((*commit, score));
            }
        }
    }
    matches
}

/// Sentry's `_get_committers`: author ids with their matched commits, lowest score first.
/// `frame_matches` is, per frame in stack order, the matched `(commit, score)` pairs;
/// `author_of` gives a commit's author, if it has one.
pub fn committers(
    frame_matches: &[Vec<(i64, usize)>],
    author_of: &HashMap<i64, i64>,
) -> Vec<(i64, Vec<(i64, usize)>)> {
    let mut points: Vec<(i64, usize)> = Vec::new();
    let mut limit = POINTS;
    'frames: for matches in frame_matches {
        if limit == 0 {
            break;
        }
        for (commit, _) in matches {
            let Some(author) = author_of.get(commit) else {
                continue;
            };
            match points.iter_mut().find(|(a, _)| a == author) {
                Some(p) => p.1 += limit,
                None => points.push((*author, limit)),
            }
            limit -= 1;
            if limit == 0 {
                break 'frames;
            }
        }
    }
    // Stable, ascending: Sentry's `sorted(committers.items(), key=itemgetter(1))`.
    points.sort_by_key(|(_, p)| *p);
    let mut all: Vec<(i64, usize)> = Vec::new();
    for matches in frame_matches {
        for m in matches {
            if !all.iter().any(|(c, _)| *c == m.0) {
                all.push(*m);
            }
        }
    }
    points
        .into_iter()
        .map(|(author, _)| {
            let commits = all
                .iter()
                .filter(|(c, _)| author_of.get(c) == Some(&author))
                .copied()
                .collect();
            (author, commits)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(filename: &str, in_app: bool) -> Frame {
        Frame {
            filename: Some(filename.into()),
            in_app: Some(in_app),
            ..Frame::default()
        }
    }

    #[test]
    fn paths_tokenize_and_score_like_sentry() {
        assert_eq!(
            tokenize_path("src/app/views.py"),
            ["views.py", "app", "src"]
        );
        assert_eq!(
            tokenize_path("/abs//app/views.py"),
            ["views.py", "app", "abs"]
        );
        assert_eq!(tokenize_path("C:\\app\\main.cs"), ["main.cs", "app", "C:"]);
        assert_eq!(tokenize_path("views.py"), ["views.py"]);
        assert_eq!(
            score_path_match_length("src/app/views.py", "app/Views.py"),
            2
        );
        assert_eq!(
            score_path_match_length("src/app/views.py", "lib/views.py"),
            1
        );
        assert_eq!(score_path_match_length("a.py", "b.py"), 0);
    }

    #[test]
    fn best_matches_win_and_bare_names_need_a_bare_change() {
        let changes = vec![
            (1, "src/app/views.py".to_string()),
            (2, "lib/views.py".to_string()),
            (3, "app/views.py".to_string()),
            (4, "views.py".to_string()),
        ];
        assert_eq!(
            match_commits_path(&changes, "app/views.py"),
            [(1, 2), (3, 2)]
        );
        // Only 1-component matches: `views.py` alone counts, `lib/views.py` does not.
        assert_eq!(match_commits_path(&changes, "other/views.py"), [(4, 1)]);
        assert!(match_commits_path(&changes, "nothing.py").is_empty());
    }

    #[test]
    fn authors_score_five_four_three_and_sort_ascending() {
        let frames = vec![vec![(10, 2)], vec![(11, 3), (12, 3)], vec![(13, 1)]];
        let authors: HashMap<i64, i64> = [(10, 100), (11, 200), (12, 100), (13, 300)].into();
        let got = committers(&frames, &authors);
        // 100: 5 + 3 = 8; 200: 4; 300: 2 — ascending.
        let order: Vec<i64> = got.iter().map(|(a, _)| *a).collect();
        assert_eq!(order, [300, 200, 100]);
        assert_eq!(got[2].1, [(10, 2), (12, 3)]);
        // Commits without an author are skipped and cost no points.
        let got = committers(&[vec![(99, 2), (10, 2)]], &authors);
        assert_eq!(got, [(100, vec![(10, 2)])]);
    }

    #[test]
    fn frames_and_java_paths() {
        let frames: Vec<Frame> = (0..30)
            .map(|i| frame(&format!("f{i}.py"), i % 2 == 0))
            .collect();
        let chosen = app_frames(&frames);
        assert_eq!(chosen.len(), 15);
        let none_in_app: Vec<Frame> = (0..30).map(|i| frame(&format!("f{i}.py"), false)).collect();
        assert_eq!(app_frames(&none_in_app).len(), 25);
        assert_eq!(
            app_frames(&none_in_app)[0].filename.as_deref(),
            Some("f5.py")
        );
        let mut j = frame("Charge.java", true);
        j.module = Some("com.acme.billing.Charge".into());
        assert_eq!(
            frame_path(&j, Some("java")).as_deref(),
            Some("com/acme/billing/Charge.java")
        );
        assert_eq!(
            frame_path(&j, Some("python")).as_deref(),
            Some("Charge.java")
        );
        assert_eq!(
            file_names(&["a/b.py".into(), "c/b.py".into(), "d.py".into()]),
            ["b.py", "d.py"]
        );
    }
}
