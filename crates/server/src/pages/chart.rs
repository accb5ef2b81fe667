//! Charts as SVG drawn on the server: bars (counts, shares, money per
//! group) and lines with an interval band (trends, forecasts).
//!
//! Why our own: the charts are a few rectangles and paths, and drawing them
//! here keeps every label going through the page's policy-shaped data and
//! its language (a masked value is masked in a tooltip because the tooltip
//! is the same string). Each chart has a `<title>` and `aria-label`, every
//! mark a `<title>` tooltip, and the page shows the same numbers as a table
//! and a CSV download, so nothing is only in the picture.

use maud::{Markup, PreEscaped, html};

/// One bar.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Label under the bar (already shaped by the policy).
    pub label: String,
    /// Value.
    pub value: f64,
    /// The value as the page writes it (tooltip).
    pub shown: String,
}

const W: f64 = 640.0;
const H: f64 = 240.0;
const PAD_L: f64 = 56.0;
const PAD_R: f64 = 12.0;
const PAD_T: f64 = 12.0;
const PAD_B: f64 = 48.0;

fn fmt(x: f64) -> String {
    format!("{x:.1}")
}

/// Short axis labels: 1.2k, 3.4M.
fn axis(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || v == v.round() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// A "nice" upper bound for an axis.
fn nice_max(m: f64) -> f64 {
    if m.is_nan() || m <= 0.0 || !m.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(m.log10().floor());
    for k in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if k * p >= m {
            return k * p;
        }
    }
    10.0 * p
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Rough width of an axis label at 11 px (CJK characters are square).
fn text_width(s: &str) -> f64 {
    s.chars()
        .map(|c| if (c as u32) >= 0x2E80 { 11.0 } else { 6.2 })
        .sum()
}

fn grid(max: f64, out: &mut String) {
    for k in 0..=4 {
        let v = max * f64::from(k) / 4.0;
        let y = PAD_T + (H - PAD_T - PAD_B) * (1.0 - f64::from(k) / 4.0);
        out.push_str(&format!(
            r#"<line class="grid" x1="{}" y1="{y:.1}" x2="{}" y2="{y:.1}"/><text class="ax" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            fmt(PAD_L),
            fmt(W - PAD_R),
            fmt(PAD_L - 6.0),
            y + 4.0,
            esc(&axis(v))
        ));
    }
}

/// Escapes text for SVG (text content and attribute values).
pub(crate) fn esc(s: &str) -> String {
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

/// A vertical bar chart.
pub fn bars(title: &str, bars: &[Bar]) -> Markup {
    let mut s = String::new();
    let max = nice_max(bars.iter().map(|b| b.value).fold(0.0, f64::max));
    grid(max, &mut s);
    let n = bars.len().max(1) as f64;
    let slot = (W - PAD_L - PAD_R) / n;
    let bw = (slot * 0.7).max(1.0);
    let plot_h = H - PAD_T - PAD_B;
    let labels: Vec<String> = bars.iter().map(|b| cut(&b.label, 10)).collect();
    let widest = labels.iter().map(|t| text_width(t)).fold(0.0, f64::max);
    // labels wider than their slot are slanted; slanted ones need about
    // 22 px of slot each not to touch, else only every k-th is written
    let slant = widest > slot * 0.95;
    let every = if slant {
        (22.0 / slot).ceil().max(1.0) as usize
    } else {
        (bars.len() / 12).max(1)
    };
    for (i, b) in bars.iter().enumerate() {
        let v = if b.value.is_finite() {
            b.value.max(0.0)
        } else {
            0.0
        };
        let h = plot_h * v / max;
        let x = PAD_L + slot * i as f64 + (slot - bw) / 2.0;
        let y = PAD_T + plot_h - h;
        s.push_str(&format!(
            r#"<rect class="bar" x="{}" y="{}" width="{}" height="{}"><title>{}: {}</title></rect>"#,
            fmt(x),
            fmt(y),
            fmt(bw),
            fmt(h),
            esc(&b.label),
            esc(&b.shown)
        ));
        if i % every == 0 {
            let (lx, ly) = (fmt(x + bw / 2.0), fmt(H - PAD_B + 14.0));
            if slant {
                s.push_str(&format!(
                    r#"<text class="ax" x="{lx}" y="{ly}" text-anchor="end" transform="rotate(-30 {lx} {ly})">{}</text>"#,
                    esc(&labels[i])
                ));
            } else {
                s.push_str(&format!(
                    r#"<text class="ax" x="{lx}" y="{}" text-anchor="middle">{}</text>"#,
                    fmt(H - PAD_B + 16.0),
                    esc(&labels[i])
                ));
            }
        }
    }
    frame(title, &s)
}

/// One point of a line chart.
#[derive(Debug, Clone)]
pub struct Point {
    /// X label (a period).
    pub label: String,
    /// Value (None: no value at this point).
    pub value: Option<f64>,
    /// Interval, if any.
    pub band: Option<(f64, f64)>,
    /// Whether this point is a forecast (drawn dashed).
    pub forecast: bool,
}

/// A line chart: the history solid, the forecast dashed, its interval as a
/// band.
pub fn line(title: &str, pts: &[Point]) -> Markup {
    let mut s = String::new();
    let max = nice_max(
        pts.iter()
            .flat_map(|p| [p.value, p.band.map(|b| b.1)])
            .flatten()
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max),
    );
    grid(max, &mut s);
    let n = pts.len().max(2) as f64;
    let plot_w = W - PAD_L - PAD_R;
    let plot_h = H - PAD_T - PAD_B;
    let x = |i: usize| PAD_L + plot_w * i as f64 / (n - 1.0);
    let y = |v: f64| PAD_T + plot_h * (1.0 - (v.max(0.0) / max).min(1.0));
    // band
    let band: Vec<(usize, (f64, f64))> = pts
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.band.map(|b| (i, b)))
        .collect();
    if band.len() >= 2 {
        let mut d = String::new();
        for (k, (i, (_, hi))) in band.iter().enumerate() {
            d.push_str(&format!(
                "{}{},{} ",
                if k == 0 { "M" } else { "L" },
                fmt(x(*i)),
                fmt(y(*hi))
            ));
        }
        for (i, (lo, _)) in band.iter().rev() {
            d.push_str(&format!("L{},{} ", fmt(x(*i)), fmt(y(*lo))));
        }
        d.push('Z');
        s.push_str(&format!(r#"<path class="band" d="{d}"/>"#));
    }
    for forecast in [false, true] {
        let mut d = String::new();
        let mut started = false;
        for (i, p) in pts.iter().enumerate() {
            // the forecast line starts at the last history point
            let on = p.forecast == forecast
                || (forecast && !p.forecast && pts.get(i + 1).is_some_and(|q| q.forecast));
            match (on, p.value) {
                (true, Some(v)) if v.is_finite() => {
                    d.push_str(&format!(
                        "{}{},{} ",
                        if started { "L" } else { "M" },
                        fmt(x(i)),
                        fmt(y(v))
                    ));
                    started = true;
                }
                _ => started = started && on,
            }
        }
        if !d.is_empty() {
            s.push_str(&format!(
                r#"<path class="{}" d="{d}"/>"#,
                if forecast { "line fc" } else { "line" }
            ));
        }
    }
    let every = (pts.len() / 8).max(1);
    for (i, p) in pts.iter().enumerate() {
        if let Some(v) = p.value.filter(|v| v.is_finite()) {
            s.push_str(&format!(
                r#"<circle class="pt" cx="{}" cy="{}" r="2.5"><title>{}: {}</title></circle>"#,
                fmt(x(i)),
                fmt(y(v)),
                esc(&p.label),
                esc(&axis(v))
            ));
        }
        if i % every == 0 {
            // the last label ends at its point, so it is not cut off
            let anchor = if i + 1 == pts.len() && i > 0 {
                "end"
            } else {
                "middle"
            };
            s.push_str(&format!(
                r#"<text class="ax" x="{}" y="{}" text-anchor="{anchor}">{}</text>"#,
                fmt(x(i)),
                fmt(H - PAD_B + 16.0),
                esc(&cut(&p.label, 10))
            ));
        }
    }
    frame(title, &s)
}

/// One line of [`lines`]: a value (or a gap) per label.
#[derive(Debug, Clone)]
pub struct Series {
    /// Name in the legend (already in the page's language).
    pub name: String,
    /// One value per label; `None` breaks the line.
    pub values: Vec<Option<f64>>,
}

/// Several lines over the same labels on a fixed axis from `lo` to `hi`
/// (for scores that can be negative, such as NPS from −100 to 100): values
/// outside are drawn at the edge, a gap breaks a line, the zero line is
/// marked when the axis crosses it, and a legend names the series (each
/// series has the class `s0`, `s1`, … for its colour).
pub fn lines(title: &str, labels: &[String], series: &[Series], lo: f64, hi: f64) -> Markup {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let mut s = String::new();
    let plot_w = W - PAD_L - PAD_R;
    let plot_h = H - PAD_T - PAD_B;
    let y = |v: f64| PAD_T + plot_h * (1.0 - ((v - lo) / (hi - lo)).clamp(0.0, 1.0));
    for k in 0..=4 {
        let v = lo + (hi - lo) * f64::from(k) / 4.0;
        s.push_str(&format!(
            r#"<line class="{}" x1="{}" y1="{y:.1}" x2="{}" y2="{y:.1}"/><text class="ax" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            if v == 0.0 { "grid zero" } else { "grid" },
            fmt(PAD_L),
            fmt(W - PAD_R),
            fmt(PAD_L - 6.0),
            y(v) + 4.0,
            esc(&axis(v)),
            y = y(v),
        ));
    }
    let n = labels.len().max(2) as f64;
    let x = |i: usize| PAD_L + plot_w * i as f64 / (n - 1.0);
    for (k, se) in series.iter().enumerate() {
        let mut d = String::new();
        let mut started = false;
        for (i, v) in se.values.iter().enumerate().take(labels.len()) {
            match v.filter(|v| v.is_finite()) {
                Some(v) => {
                    d.push_str(&format!(
                        "{}{},{} ",
                        if started { "L" } else { "M" },
                        fmt(x(i)),
                        fmt(y(v))
                    ));
                    started = true;
                    s.push_str(&format!(
                        r#"<circle class="pt s{k}" cx="{}" cy="{}" r="2.5"><title>{} {}: {}</title></circle>"#,
                        fmt(x(i)),
                        fmt(y(v)),
                        esc(&se.name),
                        esc(&labels[i]),
                        esc(&axis(v))
                    ));
                }
                None => started = false,
            }
        }
        if !d.is_empty() {
            s.push_str(&format!(r#"<path class="line s{k}" d="{d}"/>"#));
        }
        // the legend, top left inside the plot
        let ly = PAD_T + 10.0 + 14.0 * k as f64;
        s.push_str(&format!(
            r#"<rect class="key s{k}" x="{}" y="{}" width="12" height="3"/><text class="ax" x="{}" y="{}">{}</text>"#,
            fmt(PAD_L + 8.0),
            fmt(ly - 4.0),
            fmt(PAD_L + 24.0),
            fmt(ly),
            esc(&se.name)
        ));
    }
    let every = (labels.len() / 8).max(1);
    let last = labels.len().saturating_sub(1);
    for (i, l) in labels.iter().enumerate() {
        // every k-th label and the last, none too close before the last
        if (i % every == 0 && i + every / 2 < last) || i == last {
            let anchor = if i == last && i > 0 { "end" } else { "middle" };
            s.push_str(&format!(
                r#"<text class="ax" x="{}" y="{}" text-anchor="{anchor}">{}</text>"#,
                fmt(x(i)),
                fmt(H - PAD_B + 16.0),
                esc(&cut(l, 10))
            ));
        }
    }
    frame(title, &s)
}

fn frame(title: &str, body: &str) -> Markup {
    html! {
        svg class="chart" viewBox=(format!("0 0 {W} {H}")) role="img" aria-label=(title)
            xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet" {
            title { (title) }
            (PreEscaped(body))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_carry_labels_escaped_and_scale_to_the_largest() {
        let b = vec![
            Bar {
                label: "<b>A&B".into(),
                value: 10.0,
                shown: "10".into(),
            },
            Bar {
                label: "B".into(),
                value: 5.0,
                shown: "5".into(),
            },
        ];
        let svg = bars("t", &b).into_string();
        assert!(svg.contains("&lt;b&gt;A&amp;B: 10"), "{svg}");
        assert!(!svg.contains("<b>"));
        // the larger bar is twice the smaller one's height
        let hs: Vec<f64> = svg
            .split("height=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next()?.parse().ok())
            .collect();
        assert_eq!(hs.len(), 2);
        assert!((hs[0] - 2.0 * hs[1]).abs() < 0.2, "{hs:?}");
        assert!(svg.contains("role=\"img\""));
    }

    #[test]
    fn long_labels_slant_instead_of_overlapping() {
        let bar = |label: &str| Bar {
            label: label.into(),
            value: 3.0,
            shown: "3".into(),
        };
        let short: Vec<Bar> = ["a", "b", "c"].iter().map(|l| bar(l)).collect();
        assert!(!bars("t", &short).into_string().contains("rotate("));
        let names = [
            "champions",
            "loyal",
            "potential loyalists",
            "new",
            "promising",
            "need attention",
            "about to sleep",
            "at risk",
            "can't lose",
            "hibernating",
            "lost",
            "no purchases",
        ];
        let many: Vec<Bar> = names.iter().map(|l| bar(l)).collect();
        let svg = bars("t", &many).into_string();
        assert_eq!(
            svg.matches("rotate(-30").count(),
            12,
            "every label, slanted"
        );
        // Chinese labels are wider per character: 9 of six characters
        // (66 px) do not fit 64 px slots, 7 fit 82 px ones
        let zh = |k: usize| -> Vec<Bar> { (0..k).map(|_| bar("潜在忠诚客户")).collect() };
        assert!(bars("t", &zh(9)).into_string().contains("rotate(-30"));
        assert!(!bars("t", &zh(7)).into_string().contains("rotate(-30"));
    }

    #[test]
    fn line_draws_history_forecast_and_band() {
        let mut pts: Vec<Point> = (0..5)
            .map(|i| Point {
                label: format!("w{i}"),
                value: Some(f64::from(i)),
                band: None,
                forecast: false,
            })
            .collect();
        pts.push(Point {
            label: "w5".into(),
            value: Some(5.0),
            band: Some((4.0, 6.0)),
            forecast: true,
        });
        pts.push(Point {
            label: "w6".into(),
            value: Some(6.0),
            band: Some((4.5, 7.5)),
            forecast: true,
        });
        let svg = line("t", &pts).into_string();
        assert!(svg.contains("class=\"band\""));
        assert!(svg.contains("class=\"line fc\""));
        assert!(svg.contains("class=\"line\""));
        assert_eq!(svg.matches("<circle").count(), 7);
    }

    #[test]
    fn lines_keep_negative_values_and_break_at_gaps() {
        let labels: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let series = vec![
            Series {
                name: "NPS".into(),
                values: vec![Some(-50.0), Some(0.0), None, Some(50.0)],
            },
            Series {
                name: "CSAT <%>".into(),
                values: vec![Some(80.0), Some(90.0), Some(100.0), Some(250.0)],
            },
        ];
        let svg = lines("t", &labels, &series, -100.0, 100.0).into_string();
        // the gap splits NPS into two paths' worth of moves: M, L, then M
        let nps = svg
            .split("class=\"line s0\" d=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("the NPS path");
        assert_eq!(nps.matches('M').count(), 2, "{nps}");
        assert_eq!(svg.matches("<circle class=\"pt s0\"").count(), 3);
        assert_eq!(svg.matches("<circle class=\"pt s1\"").count(), 4);
        // -50 lies a quarter of the way up the plot, 0 on the zero line
        let plot_h = H - PAD_T - PAD_B;
        let y_neg = PAD_T + plot_h * 0.75;
        assert!(svg.contains(&format!("cy=\"{y_neg:.1}\"")), "{svg}");
        assert!(svg.contains("class=\"grid zero\""));
        // 250 is drawn at the top edge; names are escaped in the legend
        assert!(svg.contains(&format!("cy=\"{:.1}\"", PAD_T)));
        assert!(svg.contains("CSAT &lt;%&gt;"));
        // 40 periods: every fifth label and the last, none crowding it
        let labels: Vec<String> = (0..40).map(|i| format!("p{i}")).collect();
        let one = vec![Series {
            name: "x".into(),
            values: vec![Some(1.0); 40],
        }];
        let svg = lines("t", &labels, &one, 0.0, 10.0).into_string();
        let axis_y = format!("y=\"{:.1}\"", H - PAD_B + 16.0);
        assert_eq!(svg.matches(&axis_y).count(), 9, "{svg}");
        assert!(svg.contains(">p35<") && svg.contains(">p39<") && !svg.contains(">p36<"));
    }

    #[test]
    fn nice_bounds() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(180.0), 200.0);
        assert_eq!(nice_max(2100.0), 2500.0);
        assert_eq!(axis(2500.0), "2.5k");
    }
}
