//! A minimal SVG bar chart: one bar per OSD with its target marked.

use std::fmt::Write as _;

/// One bar.
pub struct Bar {
    /// Label under the bar.
    pub label: String,
    /// Bar height.
    pub value: f64,
    /// Where the target mark goes.
    pub target: f64,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders the chart as a standalone SVG document.
pub fn bar_chart(title: &str, bars: &[Bar]) -> String {
    let (left, top, bottom, height) = (50.0, 40.0, 60.0, 300.0);
    let bar_w = if bars.len() > 200 { 3.0 } else { 12.0 };
    let width = left + 20.0 + bars.len() as f64 * (bar_w + 2.0);
    let max = bars
        .iter()
        .map(|b| b.value.max(b.target))
        .fold(1.0, f64::max);
    let scale = height / max;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" font-family="sans-serif" font-size="10">"##,
        w = width.max(320.0),
        h = top + height + bottom
    );
    let _ = writeln!(
        s,
        r##"<text x="{left}" y="20" font-size="13">{}</text>"##,
        escape(title)
    );
    let base = top + height;
    let _ = writeln!(
        s,
        r##"<line x1="{left}" y1="{base}" x2="{x2:.1}" y2="{base}" stroke="black"/>"##,
        x2 = width - 10.0
    );
    for tick in 0..=4 {
        let v = max * tick as f64 / 4.0;
        let y = base - v * scale;
        let _ = writeln!(
            s,
            r##"<text x="{x}" y="{y:.1}" text-anchor="end">{v:.0}</text><line x1="{left}" y1="{y:.1}" x2="{x2:.1}" y2="{y:.1}" stroke="#ddd"/>"##,
            x = left - 4.0,
            x2 = width - 10.0
        );
    }
    for (i, b) in bars.iter().enumerate() {
        let x = left + 10.0 + i as f64 * (bar_w + 2.0);
        let h = b.value * scale;
        let over = b.value > b.target + 1.0;
        let under = b.value + 1.0 < b.target;
        let color = if over {
            "#d9534f"
        } else if under {
            "#f0ad4e"
        } else {
            "#5b9bd5"
        };
        let _ = writeln!(
            s,
            r##"<rect x="{x:.1}" y="{y:.1}" width="{bar_w}" height="{h:.1}" fill="{color}"><title>{} {} (target {:.2})</title></rect>"##,
            escape(&b.label),
            b.value,
            b.target,
            y = base - h
        );
        let ty = base - b.target * scale;
        let _ = writeln!(
            s,
            r##"<line x1="{x1:.1}" y1="{ty:.1}" x2="{x2:.1}" y2="{ty:.1}" stroke="black" stroke-width="2"/>"##,
            x1 = x - 1.0,
            x2 = x + bar_w + 1.0
        );
        if bars.len() <= 64 {
            let _ = writeln!(
                s,
                r##"<text x="{cx:.1}" y="{ly:.1}" transform="rotate(60 {cx:.1} {ly:.1})">{}</text>"##,
                escape(&b.label),
                cx = x + bar_w / 2.0,
                ly = base + 12.0
            );
        }
    }
    s.push_str("</svg>\n");
    s
}
