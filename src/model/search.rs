//! Sentry's search syntax, the part every search shares: splitting a query into terms.

/// Splits a search on whitespace, keeping double-quoted runs together (quotes removed), so
/// `release:"my release"` is one term.
pub fn tokenize(query: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in query.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    tokens.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::tokenize;

    #[test]
    fn splits_on_whitespace_and_keeps_quoted_runs() {
        assert_eq!(tokenize("  a  b "), ["a", "b"]);
        assert_eq!(
            tokenize(r#"release:"my release" is:resolved"#),
            ["release:my release", "is:resolved"]
        );
        assert!(tokenize("").is_empty());
    }
}
