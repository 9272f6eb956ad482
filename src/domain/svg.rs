//! Chart images drawn as SVG text, for places that show images but not iframes (GitHub READMEs):
//! a line chart or sparkline, a shields-style badge, and a small image for errors.

use crate::domain::time::civil_from_days;
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    Light,
    Dark,
}

impl Theme {
    pub fn parse(raw: Option<&str>) -> Theme {
        match raw {
            Some("dark") => Theme::Dark,
            _ => Theme::Light,
        }
    }

    fn colors(self) -> Colors {
        match self {
            Theme::Light => Colors {
                bg: "#ffffff",
                fg: "#1f2328",
                muted: "#656d76",
                grid: "#d8dee4",
                line: "#2563eb",
                fill: "#2563eb22",
            },
            Theme::Dark => Colors {
                bg: "#0d1117",
                fg: "#e6edf3",
                muted: "#8d96a0",
                grid: "#30363d",
                line: "#58a6ff",
                fill: "#58a6ff26",
            },
        }
    }
}

struct Colors {
    bg: &'static str,
    fg: &'static str,
    muted: &'static str,
    grid: &'static str,
    line: &'static str,
    fill: &'static str,
}

/// What a chart image shows.
pub struct LineChart<'a> {
    pub title: &'a str,
    /// (ts, value), ascending.
    pub points: &'a [(i64, f64)],
    pub from: i64,
    pub to: i64,
    pub width: u32,
    pub height: u32,
    pub theme: Theme,
    /// A sparkline: the line alone, no text.
    pub spark: bool,
    /// Shown under the chart, such as "24h · avg".
    pub caption: &'a str,
}

const FONT: &str = "-apple-system,BlinkMacSystemFont,Segoe UI,Helvetica,Arial,sans-serif";

pub fn line_chart(c: &LineChart) -> String {
    let col = c.theme.colors();
    let (w, h) = (f64::from(c.width), f64::from(c.height));
    let (top, bottom, left, right) = if c.spark {
        (2.0, 2.0, 1.0, 1.0)
    } else {
        (34.0, 22.0, 10.0, 10.0)
    };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" role="img" aria-label="{}">"#,
        c.width,
        c.height,
        c.width,
        c.height,
        escape(c.title)
    );
    let _ = write!(s, r#"<title>{}</title>"#, escape(c.title));
    let _ = write!(
        s,
        r#"<rect width="100%" height="100%" rx="6" fill="{}"/>"#,
        col.bg
    );
    if !c.spark {
        let last = c
            .points
            .last()
            .map(|p| format_value(p.1))
            .unwrap_or_default();
        let _ = write!(
            s,
            r#"<text x="{left}" y="21" font-family="{FONT}" font-size="14" font-weight="600" fill="{}">{}</text>"#,
            col.fg,
            escape(&truncate(c.title, (c.width as usize / 9).saturating_sub(8)))
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="21" text-anchor="end" font-family="{FONT}" font-size="14" font-weight="600" fill="{}">{}</text>"#,
            w - right,
            col.line,
            escape(&last)
        );
        let _ = write!(
            s,
            r#"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1"/>"#,
            h - bottom,
            w - right,
            h - bottom,
            col.grid
        );
        let foot = format!(
            "{} – {} UTC{}{}",
            format_time(c.from),
            format_time(c.to),
            if c.caption.is_empty() { "" } else { " · " },
            c.caption
        );
        let _ = write!(
            s,
            r#"<text x="{left}" y="{}" font-family="{FONT}" font-size="11" fill="{}">{}</text>"#,
            h - 6.0,
            col.muted,
            escape(&foot)
        );
    }
    if c.points.is_empty() {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle" font-family="{FONT}" font-size="12" fill="{}">no data in this range</text>"#,
            w / 2.0,
            (top + h - bottom) / 2.0 + 4.0,
            col.muted
        );
    } else {
        let (lo, hi) = value_range(c.points);
        let span_t = (c.to - c.from).max(1) as f64;
        let plot_w = (w - left - right).max(1.0);
        let plot_h = (h - top - bottom).max(1.0);
        let xy: Vec<(f64, f64)> = c
            .points
            .iter()
            .map(|&(t, v)| {
                let x = left + ((t - c.from) as f64 / span_t).clamp(0.0, 1.0) * plot_w;
                let y = top + (1.0 - (v - lo) / (hi - lo)) * plot_h;
                (x, y)
            })
            .collect();
        if !c.spark {
            // A scale, so that a README reader can read values off the line: a few round values
            // with faint lines, labelled at the left edge above their line.
            let max_ticks = ((plot_h / 36.0) as usize).clamp(2, 5);
            for v in ticks(lo, hi, max_ticks) {
                let y = top + (1.0 - (v - lo) / (hi - lo)) * plot_h;
                let _ = write!(
                    s,
                    r#"<line x1="{left}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="{}" stroke-width="1" stroke-dasharray="2 3"/><text data-tick="{v}" x="{left}" y="{:.1}" font-family="{FONT}" font-size="10" fill="{}">{}</text>"#,
                    w - right,
                    col.grid,
                    y - 3.0,
                    col.muted,
                    escape(&format_value(v))
                );
            }
        }
        let mut line = String::new();
        for (x, y) in &xy {
            let _ = write!(line, "{x:.1},{y:.1} ");
        }
        let line = line.trim_end();
        if !c.spark {
            let (x0, _) = xy[0];
            let (x1, _) = xy[xy.len() - 1];
            let base = h - bottom;
            let _ = write!(
                s,
                r#"<polygon points="{x0:.1},{base} {line} {x1:.1},{base}" fill="{}"/>"#,
                col.fill
            );
        }
        let _ = write!(
            s,
            r#"<polyline data-points="{}" points="{line}" fill="none" stroke="{}" stroke-width="{}" stroke-linejoin="round" stroke-linecap="round"/>"#,
            xy.len(),
            col.line,
            if c.spark { 1.5 } else { 2.0 }
        );
        if xy.len() == 1 {
            let (x, y) = xy[0];
            let _ = write!(
                s,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{}"/>"#,
                col.line
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Lowest and highest value with a little room, never an empty range.
fn value_range(points: &[(i64, f64)]) -> (f64, f64) {
    let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    if (hi - lo).abs() < f64::EPSILON {
        let pad = if lo.abs() > 1.0 { lo.abs() * 0.1 } else { 1.0 };
        return (lo - pad, hi + pad);
    }
    let pad = (hi - lo) * 0.08;
    (lo - pad, hi + pad)
}

/// Up to `max` round values (1, 2 or 5 times a power of ten apart) inside `[lo, hi]`.
fn ticks(lo: f64, hi: f64, max: usize) -> Vec<f64> {
    let span = hi - lo;
    if !span.is_finite() || span <= 0.0 || max == 0 {
        return Vec::new();
    }
    let magnitude = 10f64.powf((span / max as f64).log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| span / step <= max as f64)
        .unwrap_or(10.0 * magnitude);
    let mut out = Vec::with_capacity(max);
    let mut i = (lo / step).ceil();
    while out.len() < max {
        let v = i * step;
        if v > hi {
            break;
        }
        // -0 and float dust such as 0.30000000000000004 read badly on a scale: round to the
        // step's decimals, dividing by a power of ten (exact for the result) to get there.
        let decimals = (-step.log10().floor()).max(0.0) as i32;
        let scale = 10f64.powi(decimals);
        let rounded = (v * scale).round() / scale;
        out.push(if rounded == 0.0 { 0.0 } else { rounded });
        i += 1.0;
    }
    out
}

/// A shields-style badge: the label on grey, the value on blue.
pub fn badge(label: &str, value: &str) -> String {
    let lw = text_width(label) + 12;
    let vw = text_width(value) + 12;
    let w = lw + vw;
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="20" role="img" aria-label="{l}: {v}"><title>{l}: {v}</title><linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient><clipPath id="r"><rect width="{w}" height="20" rx="3" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="{lw}" height="20" fill="#555"/><rect x="{lw}" width="{vw}" height="20" fill="#2563eb"/><rect width="{w}" height="20" fill="url(#s)"/></g><g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11"><text x="{lx}" y="15" fill="#010101" fill-opacity=".3">{l}</text><text x="{lx}" y="14">{l}</text><text x="{vx}" y="15" fill="#010101" fill-opacity=".3">{v}</text><text x="{vx}" y="14">{v}</text></g></svg>"##,
        l = escape(label),
        v = escape(value),
        lx = f64::from(lw) / 2.0,
        vx = f64::from(lw) + f64::from(vw) / 2.0,
    )
}

/// A small image that says what went wrong, for a README that shows it instead of a chart.
pub fn message(text: &str, width: u32, height: u32, theme: Theme) -> String {
    let col = theme.colors();
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{t}"><title>{t}</title><rect width="100%" height="100%" rx="6" fill="{bg}" stroke="{grid}"/><text x="{x}" y="{y}" text-anchor="middle" font-family="{FONT}" font-size="13" fill="{fg}">{t}</text></svg>"#,
        t = escape(text),
        bg = col.bg,
        grid = col.grid,
        fg = col.fg,
        x = width / 2,
        y = height / 2 + 4,
    )
}

/// Verdana 11px averages about 7 px a character; close enough for a badge.
fn text_width(s: &str) -> u32 {
    (s.chars().count() as u32) * 7
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max.max(4) {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.max(4) - 1).collect();
        t.push('…');
        t
    }
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A value as a person reads it: 42, 3.14, 12.3k, 4.56M.
pub fn format_value(v: f64) -> String {
    let a = v.abs();
    let (n, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let digits = if n.fract() == 0.0 {
        0
    } else if n.abs() >= 100.0 {
        1
    } else {
        2
    };
    let s = format!("{n:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{suffix}")
}

/// `Nov 22 14:05` in UTC, from unix seconds, without a date library.
pub fn format_time(ts: i64) -> String {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    let (_, month, day) = civil_from_days(days);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:02}:{:02}",
        MONTHS[(month - 1) as usize],
        day,
        secs / 3600,
        secs % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(points: &[(i64, f64)], spark: bool) -> String {
        line_chart(&LineChart {
            title: "users <prod>",
            points,
            from: 0,
            to: 3600,
            width: 600,
            height: 200,
            theme: Theme::Light,
            spark,
            caption: "1h · avg",
        })
    }

    #[test]
    fn a_chart_draws_one_vertex_per_point() {
        let points: Vec<(i64, f64)> = (0..50).map(|i| (i * 60, i as f64)).collect();
        let svg = chart(&points, false);
        assert!(svg.contains(r#"data-points="50""#));
        let line = svg.split("<polyline").nth(1).unwrap();
        let pts = line
            .split("points=\"")
            .nth(2)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(pts.split(' ').count(), 50);
    }

    fn tick_values(svg: &str) -> Vec<f64> {
        svg.split("data-tick=\"")
            .skip(1)
            .map(|t| t.split('"').next().unwrap().parse().unwrap())
            .collect()
    }

    #[test]
    fn a_chart_has_a_scale_of_round_values_within_its_data() {
        let points: Vec<(i64, f64)> = (0..=100).map(|i| (i * 30, 1000.0 + i as f64)).collect();
        let svg = chart(&points, false);
        let ticks = tick_values(&svg);
        assert!((2..=5).contains(&ticks.len()), "{ticks:?}");
        assert!(
            ticks.iter().all(|t| (992.0..=1108.0).contains(t)),
            "{ticks:?}"
        );
        assert!(ticks.iter().all(|t| t % 10.0 == 0.0), "{ticks:?}");
        assert_eq!(ticks, [1000.0, 1050.0, 1100.0]);
        assert!(svg.contains(">1050<"), "the labels are formatted values");
    }

    #[test]
    fn ticks_are_round_and_never_float_dust() {
        assert_eq!(ticks(0.0, 1.0, 4), [0.0, 0.5, 1.0]);
        assert_eq!(ticks(-0.15, 0.35, 5), [-0.1, 0.0, 0.1, 0.2, 0.3]);
        assert_eq!(ticks(3.0, 3.0, 4), Vec::<f64>::new());
        assert!(ticks(0.0, f64::INFINITY, 4).is_empty());
        let t = ticks(1e-9, 7e-9, 3);
        assert!(t.len() <= 3 && !t.is_empty());
    }

    #[test]
    fn a_sparkline_has_no_scale() {
        let svg = chart(&[(0, 1.0), (60, 9.0)], true);
        assert!(tick_values(&svg).is_empty());
    }

    #[test]
    fn the_title_is_escaped_and_the_last_value_shown() {
        let svg = chart(&[(0, 1.0), (60, 1234567.0)], false);
        assert!(svg.contains("users &lt;prod&gt;"));
        assert!(!svg.contains("<prod>"));
        assert!(svg.contains(">1.23M<"));
    }

    #[test]
    fn an_empty_range_says_so() {
        assert!(chart(&[], false).contains("no data in this range"));
    }

    #[test]
    fn a_sparkline_has_no_text() {
        let svg = chart(&[(0, 1.0), (60, 2.0)], true);
        assert!(!svg.contains("<text"));
        assert!(svg.contains("<polyline"));
    }

    #[test]
    fn the_dark_theme_uses_a_dark_background() {
        let svg = message("x", 100, 40, Theme::Dark);
        assert!(svg.contains("#0d1117"));
        assert_eq!(Theme::parse(Some("dark")), Theme::Dark);
        assert_eq!(Theme::parse(Some("neon")), Theme::Light);
    }

    #[test]
    fn a_badge_holds_label_and_value() {
        let svg = badge("users", "42");
        assert!(svg.contains(">users<") && svg.contains(">42<"));
    }

    #[test]
    fn values_read_like_a_person_writes_them() {
        assert_eq!(format_value(42.0), "42");
        assert_eq!(format_value(1.23456), "1.23");
        assert_eq!(format_value(12_345.0), "12.35k");
        assert_eq!(format_value(-2_500_000.0), "-2.5M");
        assert_eq!(format_value(0.5), "0.5");
    }

    #[test]
    fn times_are_formatted_in_utc() {
        assert_eq!(format_time(0), "Jan 1 00:00");
        assert_eq!(format_time(1_763_800_000), "Nov 22 08:26");
        assert_eq!(format_time(951_782_400), "Feb 29 00:00");
    }
}
