//! Report charts as PNG, drawn in pure Rust with an embedded font (DejaVu
//! Sans): no system font, no freetype. Mail clients that strip SVG still
//! show PNG, so the mail carries these inline (by Content-ID).

use super::Report;
use crate::event::Tls;
use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};

const FONT: &[u8] = include_bytes!("../../../../assets/fonts/DejaVuSans.ttf");
const WIDTH: u32 = 680;
const HEIGHT: u32 = 250;
const INK: [u8; 3] = [0x1f, 0x23, 0x28];
const MUTED: [u8; 3] = [0x57, 0x60, 0x6a];
const GRID: [u8; 3] = [0xe1, 0xe4, 0xe8];
const BAR: [u8; 3] = [0x21, 0x6e, 0xd8];
/// The colour of each TLS class in [`Tls::ALL`] order, for every chart: the
/// mail's PNGs and the dashboard's SVGs show a class in the same colour.
/// Legacy classes in reds, modern ones in blue and green, so the ones to
/// chase stand out.
pub(crate) const TLS_COLOURS: [[u8; 3]; 5] = [
    [0xa4, 0x0e, 0x26],
    [0xe0, 0x5d, 0x44],
    [0xf2, 0xa3, 0x3a],
    [0x21, 0x6e, 0xd8],
    [0x1a, 0x7f, 0x37],
];

/// A TLS class's colour as CSS (`#rrggbb`), for SVG and HTML.
pub fn tls_css(tls: Tls) -> String {
    let [r, g, b] = TLS_COLOURS[tls.index()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// An RGB canvas on white.
struct Canvas {
    w: u32,
    h: u32,
    px: Vec<u8>,
    font: FontRef<'static>,
}

impl Canvas {
    fn new(w: u32, h: u32) -> Canvas {
        let font = FontRef::try_from_slice(FONT).expect("the embedded font parses");
        Canvas {
            w,
            h,
            px: vec![0xff; (w * h * 3) as usize],
            font,
        }
    }

    fn blend(&mut self, x: i64, y: i64, c: [u8; 3], alpha: f32) {
        if x < 0 || y < 0 || x >= i64::from(self.w) || y >= i64::from(self.h) {
            return;
        }
        let i = ((y as u32 * self.w + x as u32) * 3) as usize;
        for (dst, src) in self.px[i..i + 3].iter_mut().zip(c) {
            let old = f32::from(*dst);
            *dst = (old + (f32::from(src) - old) * alpha.clamp(0.0, 1.0)).round() as u8;
        }
    }

    fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, c: [u8; 3]) {
        for yy in y.round() as i64..(y + h).round() as i64 {
            for xx in x.round() as i64..(x + w).round() as i64 {
                self.blend(xx, yy, c, 1.0);
            }
        }
    }

    fn text_width(&self, text: &str, size: f32) -> f32 {
        let f = self.font.as_scaled(PxScale::from(size));
        text.chars().map(|ch| f.h_advance(f.glyph_id(ch))).sum()
    }

    /// Draws `text` with its baseline at `y`, starting at `x`.
    fn text(&mut self, x: f32, y: f32, size: f32, c: [u8; 3], text: &str) {
        let scale = PxScale::from(size);
        let mut caret = x;
        let mut glyphs = Vec::new();
        {
            let f = self.font.as_scaled(scale);
            for ch in text.chars() {
                let id = f.glyph_id(ch);
                glyphs.push(id.with_scale_and_position(scale, point(caret, y)));
                caret += f.h_advance(id);
            }
        }
        for g in glyphs {
            if let Some(outlined) = self.font.outline_glyph(g) {
                let b = outlined.px_bounds();
                let mut hits = Vec::new();
                outlined.draw(|gx, gy, cov| {
                    hits.push((
                        b.min.x as i64 + i64::from(gx),
                        b.min.y as i64 + i64::from(gy),
                        cov,
                    ))
                });
                for (px, py, cov) in hits {
                    self.blend(px, py, c, cov);
                }
            }
        }
    }

    fn png(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, self.w, self.h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        if let Ok(mut writer) = enc.write_header() {
            let _ = writer.write_image_data(&self.px);
        }
        out
    }
}

/// A "nice" axis maximum and step for values up to `max`.
fn nice_scale(max: u64) -> (u64, u64) {
    let max = max.max(1);
    let raw = max as f64 / 4.0;
    let mag = 10f64.powi(raw.log10().floor() as i32);
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
        .max(1.0) as u64;
    (max.div_ceil(step) * step, step)
}

/// Plot area: left, top, right, bottom.
const AREA: (f32, f32, f32, f32) = (56.0, 30.0, WIDTH as f32 - 16.0, HEIGHT as f32 - 50.0);

/// Horizontal gridlines at fractions of the plot height, labelled on the left.
fn gridlines(c: &mut Canvas, ticks: impl IntoIterator<Item = (f32, String)>) {
    let height = AREA.3 - AREA.1;
    for (fraction, label) in ticks {
        let y = AREA.3 - height * fraction;
        c.rect(AREA.0, y, AREA.2 - AREA.0, 1.0, GRID);
        c.text(
            AREA.0 - 6.0 - c.text_width(&label, 11.0),
            y + 4.0,
            11.0,
            MUTED,
            &label,
        );
    }
}

fn x_labels(c: &mut Canvas, report: &Report, slot: f32) {
    let every = (report.daily.len() / 10).max(1);
    for (i, d) in report
        .daily
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
    {
        let label = d.date.format("%m-%d").to_string();
        let x = AREA.0 + slot * (i as f32 + 0.5) - c.text_width(&label, 11.0) / 2.0;
        c.text(x, AREA.3 + 16.0, 11.0, MUTED, &label);
    }
}

/// Messages per day as bars, with a labelled axis.
pub fn volume_png(report: &Report) -> Vec<u8> {
    let mut c = Canvas::new(WIDTH, HEIGHT);
    c.text(AREA.0, 18.0, 14.0, INK, "Sending volume (messages per day)");
    let (top, step) = nice_scale(report.daily.iter().map(|d| d.messages).max().unwrap_or(0));
    let height = AREA.3 - AREA.1;
    let ticks = (0..=top / step).map(|i| i * step);
    gridlines(
        &mut c,
        ticks.map(|t| (t as f32 / top as f32, t.to_string())),
    );
    let slot = (AREA.2 - AREA.0) / report.daily.len().max(1) as f32;
    for (i, d) in report.daily.iter().enumerate() {
        let h = height * d.messages as f32 / top as f32;
        c.rect(
            AREA.0 + slot * i as f32 + slot * 0.15,
            AREA.3 - h,
            slot * 0.7,
            h,
            BAR,
        );
    }
    x_labels(&mut c, report, slot);
    c.png()
}

/// Share of messages per TLS version per day, as 100 % stacked bars, with a
/// legend giving each version's share of the whole period.
pub fn tls_png(report: &Report) -> Vec<u8> {
    let mut c = Canvas::new(WIDTH, HEIGHT);
    c.text(
        AREA.0,
        18.0,
        14.0,
        INK,
        "TLS usage (share of messages per day)",
    );
    let height = AREA.3 - AREA.1;
    gridlines(
        &mut c,
        [0u32, 50, 100].map(|p| (p as f32 / 100.0, format!("{p}%"))),
    );
    let slot = (AREA.2 - AREA.0) / report.daily.len().max(1) as f32;
    for (i, d) in report.daily.iter().enumerate() {
        let mut y = AREA.3;
        for tls in Tls::ALL {
            let h = height * d.tls.percent(tls) as f32 / 100.0;
            c.rect(
                AREA.0 + slot * i as f32 + slot * 0.15,
                y - h,
                slot * 0.7,
                h,
                TLS_COLOURS[tls.index()],
            );
            y -= h;
        }
    }
    x_labels(&mut c, report, slot);
    // Legend below the axis labels: each version's share of the period.
    let mut x = AREA.0;
    let y = HEIGHT as f32 - 8.0;
    for tls in Tls::ALL {
        let label = format!("{} {:.1}%", tls.key(), report.summary.tls.percent(tls));
        c.rect(x, y - 9.0, 10.0, 10.0, TLS_COLOURS[tls.index()]);
        c.text(x + 13.0, y, 11.0, INK, &label);
        x += c.text_width(&label, 11.0) + 28.0;
    }
    c.png()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_scales_are_round() {
        assert_eq!(nice_scale(0), (1, 1));
        assert_eq!(nice_scale(37), (40, 10));
        assert_eq!(nice_scale(412), (600, 200));
        assert_eq!(nice_scale(1000).0 % nice_scale(1000).1, 0);
    }
}
