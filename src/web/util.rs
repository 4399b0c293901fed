//! Small formatting helpers of the pages.

/// Percent-encodes a path segment or query value (everything but RFC 3986's unreserved).
pub fn pct(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A query string from pairs, skipping empty values.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// `2026-11-21T05:25:52.637104Z` as `2026-11-21 05:25` (UTC).
pub fn when(stamp: &str) -> String {
    let s = stamp.replace('T', " ");
    s.get(..16).map(str::to_string).unwrap_or(s)
}

/// A percentage with up to three decimals as Sentry shows crash-free rates, or `n/a`.
pub fn percent(value: Option<f64>) -> String {
    match value {
        None => "n/a".into(),
        Some(v) if v >= 100.0 => "100%".into(),
        Some(v) => {
            let s = format!("{v:.3}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            format!("{s}%")
        }
    }
}

/// A size in bytes, KiB or MiB.
pub fn size(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1024 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

/// The first line of a commit message.
pub fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(pct("web@1.0+b 1/2"), "web%401.0%2Bb%201%2F2");
        assert_eq!(query(&[("a", "x y"), ("b", "")]), "?a=x%20y");
        assert_eq!(when("2026-11-21T05:25:52.637104Z"), "2026-11-21 05:25");
        assert_eq!(percent(Some(99.5)), "99.5%");
        assert_eq!(percent(Some(100.0)), "100%");
        assert_eq!(percent(None), "n/a");
        assert_eq!(size(2048), "2.0 KiB");
    }
}
