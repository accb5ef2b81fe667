//! Demand forecasting from the store: builds a weekly or monthly demand series
//! (revenue or quantity of order lines, for the whole store, one category or
//! one product), fits the automatic ETS selection of `infogap_models::forecast`
//! to it, and renders the history and forecast as an SVG chart.
//!
//! Seasonality: the yearly season (12 months, 52 weeks) is offered to the
//! selection once the history holds two full years; whether a seasonal model
//! is kept is the AICc's call (with exactly two years of weekly data the 51
//! extra seasonal states rarely pay for themselves, with monthly data a clear
//! pattern does).
//!
//! Why here: the model is pure and knows nothing of orders or calendars; the
//! calendar rules (ISO weeks starting Monday, calendar months, empty periods
//! count as 0, the incomplete last period is dropped so a half-finished week
//! does not look like a collapse) belong to the use case.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{Datelike, Duration, NaiveDate};
use infogap_core::dataset::Dataset;
use infogap_models::forecast::{AutoEts, EtsFit, Forecast};

use crate::EngineError;

/// Calendar period of the series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// ISO weeks (Monday to Sunday).
    Week,
    /// Calendar months.
    Month,
}

impl Period {
    /// The period containing `d`, as its first day.
    pub fn start_of(self, d: NaiveDate) -> NaiveDate {
        match self {
            Period::Week => d - Duration::days(i64::from(d.weekday().num_days_from_monday())),
            Period::Month => d.with_day(1).unwrap_or(d),
        }
    }

    /// The first day of the next period.
    pub fn next(self, start: NaiveDate) -> NaiveDate {
        match self {
            Period::Week => start + Duration::days(7),
            Period::Month => {
                let (y, m) = if start.month() == 12 {
                    (start.year() + 1, 1)
                } else {
                    (start.year(), start.month() + 1)
                };
                NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(start + Duration::days(31))
            }
        }
    }

    /// Default season length for yearly seasonality (52 weeks, 12 months).
    pub fn yearly_season(self) -> usize {
        match self {
            Period::Week => 52,
            Period::Month => 12,
        }
    }

    /// `week` or `month`.
    pub fn name(self) -> &'static str {
        match self {
            Period::Week => "week",
            Period::Month => "month",
        }
    }
}

/// What is summed per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    /// Amount paid (order lines).
    Revenue,
    /// Units (order lines).
    Quantity,
}

impl Measure {
    /// `revenue` or `quantity`.
    pub fn name(self) -> &'static str {
        match self {
            Measure::Revenue => "revenue",
            Measure::Quantity => "quantity",
        }
    }
}

/// Which order lines count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every line.
    Total,
    /// Lines of products of one category (case-insensitive).
    Category(String),
    /// Lines of one product (its key, or its store id).
    Product(String),
}

/// A demand series: one value per complete period.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DemandSeries {
    /// Human label of the scope (`total`, `category Books`, `product P1`).
    pub label: String,
    /// First day of each period.
    pub starts: Vec<NaiveDate>,
    /// Summed measure per period (0 where nothing sold).
    pub values: Vec<f64>,
    /// Period kind.
    pub period: Period,
    /// Measure.
    pub measure: Measure,
}

fn date_of(t: i64) -> Option<NaiveDate> {
    chrono::DateTime::from_timestamp(t, 0).map(|d| d.date_naive())
}

/// Builds the demand series of a scope from the store's order lines. The
/// series runs from the scope's first sale to the last complete period of the
/// data (the period holding the data set's last fact counts only if that fact
/// is on the period's last day).
pub fn demand_series(
    ds: &Dataset,
    scope: &Scope,
    period: Period,
    measure: Measure,
) -> Result<DemandSeries, EngineError> {
    type Keep = Box<dyn Fn(Option<i64>) -> bool>;
    let (label, keep): (String, Keep) = match scope {
        Scope::Total => ("total".into(), Box::new(|_| true)),
        Scope::Category(name) => {
            let ids: std::collections::HashSet<i64> = ds
                .products
                .iter()
                .filter(|p| {
                    p.category
                        .as_deref()
                        .is_some_and(|c| c.eq_ignore_ascii_case(name))
                })
                .map(|p| p.id)
                .collect();
            if ids.is_empty() {
                let mut cats: Vec<&str> = ds
                    .products
                    .iter()
                    .filter_map(|p| p.category.as_deref())
                    .collect();
                cats.sort_unstable();
                cats.dedup();
                return Err(EngineError::NotFound(format!(
                    "category {name:?} (known: {})",
                    cats.join(", ")
                )));
            }
            (
                format!("category {name}"),
                Box::new(move |p| p.is_some_and(|p| ids.contains(&p))),
            )
        }
        Scope::Product(key) => {
            let id = ds
                .products
                .iter()
                .find(|p| p.key == *key)
                .or_else(|| {
                    key.trim_start_matches('#')
                        .parse::<i64>()
                        .ok()
                        .and_then(|id| ds.products.iter().find(|p| p.id == id))
                })
                .map(|p| p.id)
                .ok_or_else(|| EngineError::NotFound(format!("product {key:?}")))?;
            (format!("product {key}"), Box::new(move |p| p == Some(id)))
        }
    };
    let data_end = ds
        .max_time()
        .and_then(date_of)
        .ok_or_else(|| EngineError::Invalid("the store holds no dated facts".into()))?;
    let mut sums: BTreeMap<NaiveDate, f64> = BTreeMap::new();
    for line in &ds.lines {
        if !keep(line.product) {
            continue;
        }
        let Some(d) = line.time.and_then(date_of) else {
            continue;
        };
        let v = match measure {
            Measure::Revenue => line.amount,
            Measure::Quantity => line.quantity,
        };
        if v.is_finite() {
            *sums.entry(period.start_of(d)).or_insert(0.0) += v;
        }
    }
    let Some((&first, _)) = sums.iter().next() else {
        return Err(EngineError::Invalid(format!(
            "no dated order lines for {label}"
        )));
    };
    // Last complete period.
    let end_start = period.start_of(data_end);
    let last_complete = if period.next(end_start) - Duration::days(1) == data_end {
        end_start
    } else {
        prev(period, end_start)
    };
    let mut starts = Vec::new();
    let mut values = Vec::new();
    let mut d = first;
    while d <= last_complete {
        starts.push(d);
        values.push(sums.get(&d).copied().unwrap_or(0.0));
        d = period.next(d);
    }
    if starts.is_empty() {
        return Err(EngineError::Invalid(format!(
            "no complete {} of data for {label}",
            period.name()
        )));
    }
    Ok(DemandSeries {
        label,
        starts,
        values,
        period,
        measure,
    })
}

fn prev(period: Period, start: NaiveDate) -> NaiveDate {
    period.start_of(start - Duration::days(1))
}

/// A fitted demand forecast.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemandForecast {
    /// The history.
    pub series: DemandSeries,
    /// The selected model.
    pub fit: EtsFit,
    /// Forecast with its interval.
    pub forecast: Forecast,
    /// First day of each forecast period.
    pub future: Vec<NaiveDate>,
    /// Season length that was offered to the selection.
    pub season: usize,
}

/// Forecasts a demand series `horizon` periods ahead with the automatic ETS
/// selection (season length `season`, or the yearly one of the period) and a
/// `level` prediction interval (lower bounds are clipped at 0: demand is not
/// negative; a point forecast clipped so adds a warning to the forecast).
pub fn forecast_series(
    series: DemandSeries,
    season: Option<usize>,
    horizon: usize,
    level: f64,
) -> Result<DemandForecast, EngineError> {
    if horizon == 0 {
        return Err(EngineError::Invalid("horizon must be at least 1".into()));
    }
    if series.values.len() < 4 {
        return Err(EngineError::Invalid(format!(
            "{}: only {} complete {}s of history; need at least 4",
            series.label,
            series.values.len(),
            series.period.name()
        )));
    }
    let season = season.unwrap_or(series.period.yearly_season());
    // Parameters aimed at the horizon asked for (AMSE over 1..h steps, h ≤ 30).
    let auto = AutoEts {
        refit_amse: horizon.clamp(1, 30),
        ..AutoEts::new(season)
    };
    let fit = auto.fit_series(&series.values)?.best;
    let mut forecast = fit.forecast_intervals(horizon, level)?;
    if let Some(j) = forecast.point.iter().position(|v| *v < 0.0) {
        forecast.warnings.push(format!(
            "{}: the forecast of {} falls below zero at step {} ({:.6}); demand is not negative, so the forecasts below zero are set to 0",
            fit.name(),
            series.label,
            j + 1,
            forecast.point[j]
        ));
    }
    for v in forecast
        .lower
        .iter_mut()
        .chain(forecast.point.iter_mut())
        .chain(forecast.upper.iter_mut())
    {
        *v = v.max(0.0);
    }
    let mut future = Vec::with_capacity(horizon);
    let mut d = series.starts.last().copied().map(|d| series.period.next(d));
    for _ in 0..horizon {
        if let Some(x) = d {
            future.push(x);
            d = Some(series.period.next(x));
        }
    }
    crate::invariants::checked(
        "forecast",
        DemandForecast {
            series,
            fit,
            forecast,
            future,
            season,
        },
    )
}

/// Builds and forecasts the demand of a scope.
pub fn forecast_demand(
    ds: &Dataset,
    scope: &Scope,
    period: Period,
    measure: Measure,
    horizon: usize,
    level: f64,
) -> Result<DemandForecast, EngineError> {
    forecast_series(
        demand_series(ds, scope, period, measure)?,
        None,
        horizon,
        level,
    )
}

/// The `n` categories with the most revenue, largest first.
pub fn top_categories(ds: &Dataset, n: usize) -> Vec<String> {
    let cat: BTreeMap<i64, &str> = ds
        .products
        .iter()
        .filter_map(|p| p.category.as_deref().map(|c| (p.id, c)))
        .collect();
    let mut rev: BTreeMap<&str, f64> = BTreeMap::new();
    for l in &ds.lines {
        if let Some(c) = l.product.and_then(|p| cat.get(&p)) {
            *rev.entry(c).or_insert(0.0) += l.amount;
        }
    }
    let mut v: Vec<(&str, f64)> = rev.into_iter().collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    v.into_iter().take(n).map(|(c, _)| c.to_string()).collect()
}

/// Rounds a tick step to 1, 2 or 5 × 10^k.
fn nice_step(range: f64, ticks: usize) -> f64 {
    let raw = (range / ticks.max(1) as f64).max(1e-12);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let n = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    n * mag
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a == a.round() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Renders history, forecast line and interval band as a standalone SVG
/// (800×400, axes with dates and values).
pub fn render_svg(f: &DemandForecast) -> String {
    let (w, h) = (800.0_f64, 400.0_f64);
    let (ml, mr, mt, mb) = (70.0, 20.0, 40.0, 60.0);
    let pw = w - ml - mr;
    let ph = h - mt - mb;
    let hist = &f.series.values;
    let nh = hist.len();
    let total = nh + f.forecast.point.len();
    let ymax = hist
        .iter()
        .chain(&f.forecast.upper)
        .chain(&f.forecast.point)
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let ymin = hist
        .iter()
        .chain(&f.forecast.lower)
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let step = nice_step((ymax - ymin).max(1e-9), 5);
    let y0 = (ymin / step).floor() * step;
    let y1 = ((ymax / step).ceil() * step).max(y0 + step);
    let xs = |i: usize| ml + pw * i as f64 / (total.max(2) - 1) as f64;
    let ys = |v: f64| mt + ph * (1.0 - (v - y0) / (y1 - y0));
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let title = format!(
        "{} {} per {} — {} forecast, {:.0}% interval",
        f.series.label,
        f.series.measure.name(),
        f.series.period.name(),
        f.fit.name(),
        f.forecast.level * 100.0
    );
    let _ = writeln!(
        s,
        r#"<text x="{ml}" y="22" font-size="14">{}</text>"#,
        esc(&title)
    );
    // Grid and y labels.
    let mut v = y0;
    while v <= y1 + step * 1e-6 {
        let y = ys(v);
        let _ = writeln!(
            s,
            r##"<line x1="{ml}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            ml + pw,
            ml - 6.0,
            y + 4.0,
            fmt_num(v)
        );
        v += step;
    }
    // Axes.
    let _ = writeln!(
        s,
        r##"<line x1="{ml}" y1="{mt}" x2="{ml}" y2="{:.1}" stroke="#333"/><line x1="{ml}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#333"/>"##,
        mt + ph,
        mt + ph,
        ml + pw,
        mt + ph
    );
    // x labels: about 8 dates.
    let dates: Vec<NaiveDate> = f.series.starts.iter().chain(&f.future).copied().collect();
    let every = (total / 8).max(1);
    for (i, d) in dates.iter().enumerate() {
        if i % every == 0 || i + 1 == dates.len() && i % every > every / 2 {
            let x = xs(i);
            let label = match f.series.period {
                Period::Week => d.format("%Y-%m-%d").to_string(),
                Period::Month => d.format("%Y-%m").to_string(),
            };
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#333"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
                mt + ph,
                mt + ph + 5.0,
                mt + ph + 18.0
            );
        }
    }
    // Interval band (starts at the last observation so it joins the history).
    if !f.forecast.point.is_empty() && nh > 0 {
        let mut pts = vec![(xs(nh - 1), ys(hist[nh - 1]))];
        for (j, &u) in f.forecast.upper.iter().enumerate() {
            pts.push((xs(nh + j), ys(u)));
        }
        for (j, &l) in f.forecast.lower.iter().enumerate().rev() {
            pts.push((xs(nh + j), ys(l)));
        }
        let p: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = writeln!(
            s,
            r##"<polygon points="{}" fill="#9ecae1" fill-opacity="0.5" stroke="none"/>"##,
            p.join(" ")
        );
    }
    let line = |pts: Vec<(f64, f64)>, color: &str, dash: &str| {
        let p: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        format!(
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.8"{dash}/>"#,
            p.join(" ")
        )
    };
    let hp: Vec<(f64, f64)> = hist
        .iter()
        .enumerate()
        .map(|(i, &v)| (xs(i), ys(v)))
        .collect();
    let _ = writeln!(s, "{}", line(hp, "#222222", ""));
    if nh > 0 {
        let mut fp = vec![(xs(nh - 1), ys(hist[nh - 1]))];
        fp.extend(
            f.forecast
                .point
                .iter()
                .enumerate()
                .map(|(j, &v)| (xs(nh + j), ys(v))),
        );
        let _ = writeln!(s, "{}", line(fp, "#08519c", r#" stroke-dasharray="6 3""#));
    }
    // Legend.
    let lx = ml + pw - 250.0;
    let _ = writeln!(
        s,
        r##"<line x1="{lx}" y1="{0}" x2="{1}" y2="{0}" stroke="#222"/><text x="{2}" y="{3}">history</text><line x1="{4}" y1="{0}" x2="{5}" y2="{0}" stroke="#08519c" stroke-dasharray="6 3"/><text x="{6}" y="{3}">forecast</text><rect x="{7}" y="{8}" width="18" height="10" fill="#9ecae1" fill-opacity="0.5"/><text x="{9}" y="{3}">interval</text>"##,
        mt - 12.0,
        lx + 18.0,
        lx + 22.0,
        mt - 8.0,
        lx + 75.0,
        lx + 93.0,
        lx + 97.0,
        lx + 160.0,
        mt - 17.0,
        lx + 182.0
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use infogap_core::dataset::{LineFact, ProductInfo};

    fn ts(y: i32, m: u32, d: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .map(|d| d.and_utc().timestamp())
            .unwrap_or(0)
    }

    fn product(id: i64, cat: &str) -> ProductInfo {
        ProductInfo {
            id,
            key: format!("P{id}"),
            name: None,
            category: Some(cat.into()),
            price: None,
        }
    }

    fn line(product: i64, t: i64, q: f64, amount: f64) -> LineFact {
        LineFact {
            order: 0,
            customer: 1,
            product: Some(product),
            quantity: q,
            amount,
            discount: 0.0,
            time: Some(t),
        }
    }

    fn dataset() -> Dataset {
        let mut ds = Dataset {
            products: vec![product(1, "Books"), product(2, "Toys")],
            ..Dataset::default()
        };
        // Mondays: 2024-01-01, 01-08 (nothing), 01-15, and a partial week 01-22 (data ends Wed 01-24).
        ds.lines.push(line(1, ts(2024, 1, 1), 2.0, 20.0));
        ds.lines.push(line(2, ts(2024, 1, 3), 1.0, 5.0));
        ds.lines.push(line(1, ts(2024, 1, 16), 1.0, 10.0));
        ds.lines.push(line(2, ts(2024, 1, 24), 3.0, 15.0));
        ds
    }

    #[test]
    fn weekly_series_fills_gaps_and_drops_incomplete_week() {
        let ds = dataset();
        let s = demand_series(&ds, &Scope::Total, Period::Week, Measure::Revenue).expect("series");
        assert_eq!(s.values, vec![25.0, 0.0, 10.0]);
        assert_eq!(
            s.starts[0],
            NaiveDate::from_ymd_opt(2024, 1, 1).expect("date")
        );
        let q = demand_series(
            &ds,
            &Scope::Category("books".into()),
            Period::Week,
            Measure::Quantity,
        )
        .expect("series");
        assert_eq!(q.values, vec![2.0, 0.0, 1.0]);
        let p = demand_series(
            &ds,
            &Scope::Product("P2".into()),
            Period::Week,
            Measure::Quantity,
        )
        .expect("series");
        assert_eq!(p.values, vec![1.0, 0.0, 0.0]);
        assert!(
            demand_series(
                &ds,
                &Scope::Category("nope".into()),
                Period::Week,
                Measure::Revenue
            )
            .is_err()
        );
        assert!(
            demand_series(
                &ds,
                &Scope::Product("P9".into()),
                Period::Week,
                Measure::Revenue
            )
            .is_err()
        );
    }

    #[test]
    fn monthly_last_period_complete_only_on_last_day() {
        let mut ds = dataset();
        ds.lines.push(line(1, ts(2024, 2, 29), 1.0, 7.0));
        let s = demand_series(&ds, &Scope::Total, Period::Month, Measure::Revenue).expect("series");
        assert_eq!(s.values, vec![50.0, 7.0]);
        ds.lines.push(line(1, ts(2024, 3, 2), 1.0, 7.0));
        let s = demand_series(&ds, &Scope::Total, Period::Month, Measure::Revenue).expect("series");
        assert_eq!(s.values.len(), 2);
    }

    /// Monthly demand with the demo's yearly shape (December peak, summer
    /// dip): seasonal models are offered from two full years on and AICc
    /// keeps one when the pattern is clear; the forecast repeats the peak.
    #[test]
    fn monthly_series_finds_a_planted_yearly_season() {
        let shape = [
            0.8, 1.0, 1.0, 1.0, 1.0, 0.75, 0.75, 0.75, 1.0, 1.0, 1.3, 1.8,
        ];
        let starts: Vec<NaiveDate> = (0..36)
            .map(|t| NaiveDate::from_ymd_opt(2022 + t / 12, (t % 12) as u32 + 1, 1).expect("date"))
            .collect();
        let values: Vec<f64> = (0..36)
            .map(|t| 1000.0 * shape[t % 12] * (1.0 + 0.02 * (((t * 7919) % 11) as f64 / 5.0 - 1.0)))
            .collect();
        let series = DemandSeries {
            label: "total".into(),
            starts,
            values,
            period: Period::Month,
            measure: Measure::Revenue,
        };
        let f = forecast_series(series, None, 12, 0.9).expect("forecast");
        assert_eq!(f.season, 12);
        assert_ne!(
            f.fit.spec.season,
            infogap_models::forecast::SeasonType::None,
            "{}",
            f.fit.name()
        );
        let p = &f.forecast.point;
        assert!(p[11] > 1.5 * p[6], "December {} vs July {}", p[11], p[6]);
    }

    #[test]
    fn forecast_and_chart() {
        let mut ds = Dataset {
            products: vec![product(1, "Books")],
            ..Dataset::default()
        };
        let start = NaiveDate::from_ymd_opt(2024, 1, 1).expect("date");
        for w in 0..60i64 {
            let d = start + Duration::days(7 * w + 2);
            let t = d
                .and_hms_opt(10, 0, 0)
                .map(|x| x.and_utc().timestamp())
                .unwrap_or(0);
            ds.lines
                .push(line(1, t, 1.0, 100.0 + w as f64 + 5.0 * ((w % 3) as f64)));
        }
        let f = forecast_demand(&ds, &Scope::Total, Period::Week, Measure::Revenue, 8, 0.9)
            .expect("forecast");
        assert_eq!(f.forecast.point.len(), 8);
        assert_eq!(f.future.len(), 8);
        assert_eq!(
            f.future[0],
            Period::Week.next(*f.series.starts.last().expect("start"))
        );
        assert!(
            f.forecast.point.iter().all(|&v| v > 120.0 && v < 200.0),
            "{:?}",
            f.forecast.point
        );
        let svg = render_svg(&f);
        assert!(svg.starts_with("<svg") && svg.contains("<polygon") && svg.contains("2024-"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(top_categories(&ds, 3), vec!["Books".to_string()]);
    }
}
