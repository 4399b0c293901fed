//! Charts drawn on the server as inline SVG: no script, scales with the page, themed by CSS.

use std::fmt::Write;

const W: f64 = 760.0;
const H: f64 = 200.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 44.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 22.0;

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn frame(out: &mut String, label: &str) {
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        esc(label)
    );
    for i in 0..=4 {
        let y = TOP + (H - TOP - BOTTOM) * f64::from(i) / 4.0;
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}"/>"#,
            W - RIGHT
        );
    }
}

fn x_labels(out: &mut String, labels: &[String]) {
    let n = labels.len().max(1);
    let step = (n / 6).max(1);
    let width = (W - LEFT - RIGHT) / n as f64;
    for (i, l) in labels.iter().enumerate().step_by(step) {
        let x = LEFT + width * (i as f64 + 0.5);
        let _ = write!(
            out,
            r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
            H - 6.0,
            esc(l)
        );
    }
}

/// A polyline of percentages (0–100) over `n` buckets; gaps where a value is `None`.
fn percent_line(out: &mut String, class: &str, values: &[Option<f64>], min: f64) {
    let n = values.len().max(1);
    let width = (W - LEFT - RIGHT) / n as f64;
    let plot = H - TOP - BOTTOM;
    let mut run = Vec::new();
    let flush = |out: &mut String, run: &mut Vec<String>| {
        // A lone point has no line to draw: a dot shows it.
        if let [point] = run.as_slice()
            && let Some((x, y)) = point.split_once(',')
        {
            let _ = write!(out, r#"<circle class="{class}" cx="{x}" cy="{y}" r="3"/>"#);
        } else if !run.is_empty() {
            let _ = write!(
                out,
                r#"<polyline class="{class}" points="{}"/>"#,
                run.join(" ")
            );
        }
        run.clear();
    };
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => {
                let x = LEFT + width * (i as f64 + 0.5);
                let y = TOP + plot * (1.0 - ((v - min) / (100.0 - min)).clamp(0.0, 1.0));
                run.push(format!("{x:.1},{y:.1}"));
            }
            None => flush(out, &mut run),
        }
    }
    flush(out, &mut run);
}

/// The lowest value of a percent axis: 0, or a tighter floor when every value is high, so a
/// drop from 100 % to 99 % is visible.
fn floor(values: &[Option<f64>]) -> f64 {
    let lowest = values.iter().flatten().fold(100.0_f64, |a, b| a.min(*b));
    if lowest >= 90.0 { 90.0 } else { 0.0 }
}

/// Sessions per bucket as bars (left axis) with the crash-free rate as a line (right axis).
pub fn sessions(labels: &[String], sessions: &[u64], crash_free: &[Option<f64>]) -> String {
    let mut out = String::new();
    frame(&mut out, "Sessions (bars) and crash-free sessions (line)");
    let max = sessions.iter().copied().max().unwrap_or(0).max(1);
    let n = sessions.len().max(1);
    let width = (W - LEFT - RIGHT) / n as f64;
    let plot = H - TOP - BOTTOM;
    out.push_str(r#"<g class="bars">"#);
    for (i, s) in sessions.iter().enumerate() {
        if *s == 0 {
            continue;
        }
        let h = plot * (*s as f64 / max as f64);
        let _ = write!(
            out,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}"><title>{}: {s} sessions</title></rect>"#,
            LEFT + width * i as f64 + width * 0.1,
            TOP + plot - h,
            width * 0.8,
            esc(labels.get(i).map(String::as_str).unwrap_or(""))
        );
    }
    out.push_str("</g>");
    let min = floor(crash_free);
    percent_line(&mut out, "rate", crash_free, min);
    let _ = write!(
        out,
        r#"<text x="4" y="{:.1}">{max}</text><text x="4" y="{:.1}">0</text><text x="{:.1}" y="{:.1}">100%</text><text x="{:.1}" y="{:.1}">{min}%</text>"#,
        TOP + 10.0,
        H - BOTTOM,
        W - RIGHT + 4.0,
        TOP + 10.0,
        W - RIGHT + 4.0,
        H - BOTTOM
    );
    x_labels(&mut out, labels);
    out.push_str("</svg>");
    out
}

/// A percentage over time (adoption).
pub fn percent(labels: &[String], values: &[Option<f64>], label: &str) -> String {
    let mut out = String::new();
    frame(&mut out, label);
    percent_line(&mut out, "adoption", values, 0.0);
    let _ = write!(
        out,
        r#"<text x="4" y="{:.1}">100%</text><text x="4" y="{:.1}">0%</text>"#,
        TOP + 10.0,
        H - BOTTOM
    );
    x_labels(&mut out, labels);
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_bars_and_a_line_with_gaps() {
        let labels: Vec<String> = (0..4).map(|i| format!("{i}h")).collect();
        let svg = sessions(
            &labels,
            &[0, 10, 5, 0],
            &[None, Some(100.0), Some(80.0), None],
        );
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<rect").count(), 2);
        assert_eq!(svg.matches("<polyline").count(), 1);
        let svg = percent(&labels, &[Some(1.0), Some(2.0), None, Some(3.0)], "a<b");
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(svg.contains("a&lt;b"));
    }
}
