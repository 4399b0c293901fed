//! Release notes as HTML: the small Markdown subset `core::notes::markdown` writes (headings,
//! `- ` lists, paragraphs, `**bold**` and `` `code` ``), escaped before any tag is added.

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `**x**` and `` `x` `` of one escaped line.
fn inline(line: &str) -> String {
    let mut out = String::new();
    for (i, part) in esc(line).split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<code>{part}</code>"));
            continue;
        }
        for (j, piece) in part.split("**").enumerate() {
            if j % 2 == 1 {
                out.push_str(&format!("<strong>{piece}</strong>"));
            } else {
                out.push_str(piece);
            }
        }
    }
    out
}

/// The notes' Markdown as HTML (headings one level down: the page has its own `h1`, `h2`).
pub fn to_html(markdown: &str) -> String {
    let mut out = String::new();
    let mut in_list = false;
    for line in markdown.lines() {
        let is_item = line.starts_with("- ");
        if in_list && !is_item {
            out.push_str("</ul>\n");
            in_list = false;
        }
        if let Some(text) = line.strip_prefix("## ") {
            out.push_str(&format!("<h4>{}</h4>\n", inline(text)));
        } else if let Some(text) = line.strip_prefix("# ") {
            out.push_str(&format!("<h3>{}</h3>\n", inline(text)));
        } else if let Some(text) = line.strip_prefix("- ") {
            if !in_list {
                out.push_str("<ul>\n");
                in_list = true;
            }
            out.push_str(&format!("<li>{}</li>\n", inline(text)));
        } else if !line.trim().is_empty() {
            out.push_str(&format!("<p>{}</p>\n", inline(line)));
        }
    }
    if in_list {
        out.push_str("</ul>\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_html;

    #[test]
    fn renders_the_notes_subset_and_escapes() {
        let html = to_html(
            "# web@1.1\n\nReleased 2026-12-02.\n\n## Fixes\n\n- **billing:** no <b>zero</b> `9b1b7c5` (Dana)\n- docs `b577500`\n\n## Authors\n\n- Dana (1 commits)\n",
        );
        assert_eq!(
            html,
            "<h3>web@1.1</h3>\n<p>Released 2026-12-02.</p>\n<h4>Fixes</h4>\n<ul>\n\
             <li><strong>billing:</strong> no &lt;b&gt;zero&lt;/b&gt; <code>9b1b7c5</code> (Dana)</li>\n\
             <li>docs <code>b577500</code></li>\n</ul>\n<h4>Authors</h4>\n<ul>\n<li>Dana (1 commits)</li>\n</ul>\n"
        );
    }
}
