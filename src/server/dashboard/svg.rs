//! The dashboard's charts as inline SVG: bars per day, the count or share
//! in a `<title>` so that hovering a bar shows it (no script needed).

use crate::event::Tls;
use crate::report::DayRow;
use crate::report::chart::tls_css;
use std::fmt::Write;

const W: f64 = 720.0;
const H: f64 = 240.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 12.0;

fn open(out: &mut String, label: &str) {
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg">"#
    );
}

/// Day labels under the bars: every one when few, else every n-th.
fn x_labels(out: &mut String, daily: &[DayRow], step: f64, bar: f64) {
    let every = daily.len().div_ceil(10).max(1);
    for (i, d) in daily.iter().enumerate().filter(|(i, _)| i % every == 0) {
        let x = LEFT + i as f64 * step + bar / 2.0;
        let _ = write!(
            out,
            r#"<text x="{x:.1}" y="{:.1}" class="axis" text-anchor="middle">{}</text>"#,
            H - 8.0,
            d.date.format("%m-%d")
        );
    }
}

/// Messages per day.
pub(super) fn volume(daily: &[DayRow]) -> String {
    let mut out = String::with_capacity(256 + daily.len() * 200);
    open(&mut out, "Sending volume: messages per day");
    let max = daily.iter().map(|d| d.messages).max().unwrap_or(0).max(1) as f64;
    let plot_h = H - BOTTOM - TOP;
    let step = (W - LEFT - 8.0) / daily.len().max(1) as f64;
    let bar = (step * 0.8).max(1.0);
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{:.1}" class="axis" text-anchor="end">{}</text><text x="{:.1}" y="{:.1}" class="axis" text-anchor="end">0</text><line x1="{LEFT}" y1="{:.1}" x2="{W}" y2="{:.1}" class="base"/>"#,
        LEFT - 6.0,
        TOP + 10.0,
        max as u64,
        LEFT - 6.0,
        H - BOTTOM,
        H - BOTTOM,
        H - BOTTOM
    );
    for (i, d) in daily.iter().enumerate() {
        let h = d.messages as f64 / max * plot_h;
        let x = LEFT + i as f64 * step;
        let _ = write!(
            out,
            r#"<rect class="bar" x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{h:.1}" data-date="{}" data-count="{}"><title>{}: {} messages</title></rect>"#,
            H - BOTTOM - h,
            d.date,
            d.messages,
            d.date,
            d.messages
        );
    }
    x_labels(&mut out, daily, step, bar);
    out.push_str("</svg>");
    out
}

/// Share of each TLS class per day, stacked to 100 %.
pub(super) fn tls(daily: &[DayRow]) -> String {
    let mut out = String::with_capacity(256 + daily.len() * 900);
    open(
        &mut out,
        "TLS usage: share of messages per TLS version per day",
    );
    let plot_h = H - BOTTOM - TOP;
    let step = (W - LEFT - 8.0) / daily.len().max(1) as f64;
    let bar = (step * 0.8).max(1.0);
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{:.1}" class="axis" text-anchor="end">100%</text><text x="{:.1}" y="{:.1}" class="axis" text-anchor="end">0%</text>"#,
        LEFT - 6.0,
        TOP + 10.0,
        LEFT - 6.0,
        H - BOTTOM
    );
    for (i, d) in daily.iter().enumerate() {
        let x = LEFT + i as f64 * step;
        let total = d.tls.total();
        let mut y = H - BOTTOM;
        for t in Tls::ALL {
            let n = d.tls.get(t);
            if n == 0 {
                continue;
            }
            let h = n as f64 / total as f64 * plot_h;
            y -= h;
            let _ = write!(
                out,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}" fill="{}" data-date="{}" data-tls="{}"><title>{}: {} {:.1}% ({} messages)</title></rect>"#,
                tls_css(t),
                d.date,
                t.key(),
                d.date,
                t.key(),
                d.tls.percent(t),
                n
            );
        }
    }
    x_labels(&mut out, daily, step, bar);
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legend_swatches_have_the_charts_colours() {
        let css = include_str!("../../../templates/dashboard/app.css");
        for t in Tls::ALL {
            let rule = format!(".swatch-{} {{ background: {}; }}", t.index(), tls_css(t));
            assert!(css.contains(&rule), "app.css lacks {rule}");
        }
    }
}
