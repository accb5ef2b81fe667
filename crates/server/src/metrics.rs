//! Request metrics in the Prometheus text format, without an external crate.
//!
//! The server needs a handful of series (requests by route, method and
//! status; latency by route; a few gauges such as the snapshot generation or
//! the audit queue length), so a small registry of our own is simpler than a
//! metrics framework. Route labels are route templates
//! (`/v1/customers/{id}`), never raw paths: customer ids and keys must not
//! become label values, both for privacy and to keep the number of series
//! bounded. Methods outside the standard set are counted as `OTHER` for the
//! same reason.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::http::Method;

/// Upper bounds (seconds) of the request-duration histogram buckets; `+Inf`
/// is implied.
pub const DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Name of the request counter.
pub const REQUESTS_TOTAL: &str = "infogap_http_requests_total";
/// Name of the request-duration histogram.
pub const REQUEST_DURATION: &str = "infogap_http_request_duration_seconds";

/// A gauge whose value is read when the metrics are rendered.
type GaugeFn = Arc<dyn Fn() -> f64 + Send + Sync>;

#[derive(Default)]
struct Histogram {
    /// Count per bucket (not cumulative), then the `+Inf` bucket.
    buckets: [u64; DURATION_BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

enum GaugeValue {
    Value(f64),
    Fn(GaugeFn),
}

struct Gauge {
    help: String,
    value: GaugeValue,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, &'static str, u16), u64>,
    durations: BTreeMap<String, Histogram>,
    gauges: BTreeMap<String, Gauge>,
}

/// The registry: thread-safe, shared as `Arc<Metrics>`.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Why a gauge was not registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    /// The name is not a valid Prometheus metric name.
    #[error("invalid metric name {0:?}: use [a-zA-Z_:][a-zA-Z0-9_:]*")]
    InvalidName(String),
    /// The name is one of the request metrics.
    #[error("metric name {0:?} is reserved for the request metrics")]
    Reserved(String),
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update is a few field writes; a panic cannot leave the maps
        // unusable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one request of `route` (a route template or `unmatched`) and
    /// records how long it took.
    pub fn observe_request(&self, route: &str, method: &Method, status: u16, elapsed: Duration) {
        let method = method_label(method);
        let secs = elapsed.as_secs_f64();
        let mut inner = self.lock();
        *inner
            .requests
            .entry((route.to_string(), method, status))
            .or_insert(0) += 1;
        let h = match inner.durations.get_mut(route) {
            Some(h) => h,
            None => inner.durations.entry(route.to_string()).or_default(),
        };
        let i = DURATION_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(DURATION_BUCKETS.len());
        h.buckets[i] += 1;
        h.sum += secs;
        h.count += 1;
    }

    /// Sets gauge `name` (with its help text) to `value`.
    pub fn set_gauge(&self, name: &str, help: &str, value: f64) -> Result<(), MetricsError> {
        self.put_gauge(name, help, GaugeValue::Value(value))
    }

    /// Registers gauge `name` whose value `f` gives each time the metrics
    /// are rendered (keep `f` cheap: it runs under the registry's lock).
    pub fn gauge_fn(
        &self,
        name: &str,
        help: &str,
        f: impl Fn() -> f64 + Send + Sync + 'static,
    ) -> Result<(), MetricsError> {
        self.put_gauge(name, help, GaugeValue::Fn(Arc::new(f)))
    }

    fn put_gauge(&self, name: &str, help: &str, value: GaugeValue) -> Result<(), MetricsError> {
        if !valid_name(name) {
            return Err(MetricsError::InvalidName(name.to_string()));
        }
        if name.starts_with(REQUESTS_TOTAL) || name.starts_with(REQUEST_DURATION) {
            return Err(MetricsError::Reserved(name.to_string()));
        }
        let mut inner = self.lock();
        inner.gauges.insert(
            name.to_string(),
            Gauge {
                help: help.to_string(),
                value,
            },
        );
        Ok(())
    }

    /// The number of requests counted for `route`, all methods and statuses
    /// (for tests and health pages).
    pub fn requests_for(&self, route: &str) -> u64 {
        self.lock()
            .requests
            .iter()
            .filter(|((r, _, _), _)| r == route)
            .map(|(_, n)| n)
            .sum()
    }

    /// All metrics in the Prometheus text exposition format (version
    /// 0.0.4; serve it as `text/plain; version=0.0.4`).
    pub fn render(&self) -> String {
        let inner = self.lock();
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail.
        let _ = render_into(&inner, &mut out);
        out
    }
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn render_into(inner: &Inner, out: &mut String) -> std::fmt::Result {
    writeln!(
        out,
        "# HELP {REQUESTS_TOTAL} HTTP requests answered, by route template, method and status."
    )?;
    writeln!(out, "# TYPE {REQUESTS_TOTAL} counter")?;
    for ((route, method, status), n) in &inner.requests {
        writeln!(
            out,
            "{REQUESTS_TOTAL}{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
            escape_label(route)
        )?;
    }
    writeln!(
        out,
        "# HELP {REQUEST_DURATION} Time from request to response head, by route template."
    )?;
    writeln!(out, "# TYPE {REQUEST_DURATION} histogram")?;
    for (route, h) in &inner.durations {
        let route = escape_label(route);
        let mut cumulative = 0;
        for (i, n) in h.buckets.iter().enumerate() {
            cumulative += n;
            let le = match DURATION_BUCKETS.get(i) {
                Some(b) => fmt_f64(*b),
                None => "+Inf".to_string(),
            };
            writeln!(
                out,
                "{REQUEST_DURATION}_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
            )?;
        }
        writeln!(
            out,
            "{REQUEST_DURATION}_sum{{route=\"{route}\"}} {}",
            fmt_f64(h.sum)
        )?;
        writeln!(
            out,
            "{REQUEST_DURATION}_count{{route=\"{route}\"}} {}",
            h.count
        )?;
    }
    for (name, g) in &inner.gauges {
        let value = match &g.value {
            GaugeValue::Value(v) => *v,
            GaugeValue::Fn(f) => f(),
        };
        writeln!(out, "# HELP {name} {}", escape_help(&g.help))?;
        writeln!(out, "# TYPE {name} gauge")?;
        writeln!(out, "{name} {}", fmt_f64(value))?;
    }
    Ok(())
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A sample value as Prometheus writes it (`+Inf`, `-Inf`, `NaN`).
fn fmt_f64(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v}")
    }
}

/// A label value: backslash, double quote and newline escaped.
fn escape_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A help text: backslash and newline escaped.
fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses one sample line: name, labels, value.
    fn parse_sample(line: &str) -> (String, Vec<(String, String)>, f64) {
        let (series, value) = line.rsplit_once(' ').expect("value");
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().expect("number"),
        };
        let Some((name, rest)) = series.split_once('{') else {
            return (series.to_string(), vec![], value);
        };
        let body = rest.strip_suffix('}').expect("closing brace");
        let mut labels = vec![];
        let mut chars = body.chars().peekable();
        while chars.peek().is_some() {
            let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
            assert_eq!(chars.next(), Some('"'));
            let mut val = String::new();
            loop {
                match chars.next().expect("unterminated label") {
                    '\\' => match chars.next().expect("escape") {
                        'n' => val.push('\n'),
                        c @ ('\\' | '"') => val.push(c),
                        c => panic!("bad escape \\{c}"),
                    },
                    '"' => break,
                    c => val.push(c),
                }
            }
            labels.push((key, val));
            if chars.peek() == Some(&',') {
                chars.next();
            }
        }
        (name.to_string(), labels, value)
    }

    #[test]
    fn renders_valid_text_format() {
        let m = Metrics::new();
        m.observe_request(
            "/v1/customers/{id}",
            &Method::GET,
            200,
            Duration::from_millis(3),
        );
        m.observe_request(
            "/v1/customers/{id}",
            &Method::GET,
            200,
            Duration::from_millis(70),
        );
        m.observe_request(
            "unmatched",
            &Method::from_bytes(b"BREW").unwrap(),
            404,
            Duration::ZERO,
        );
        m.observe_request(
            "/odd\"route\\\n",
            &Method::POST,
            500,
            Duration::from_secs(60),
        );
        m.set_gauge(
            "infogap_snapshot_generation",
            "Snapshot generation.\nSecond line",
            7.0,
        )
        .unwrap();
        m.gauge_fn(
            "infogap_audit_queue_length",
            "Audit events waiting.",
            || 3.0,
        )
        .unwrap();
        assert!(matches!(
            m.set_gauge("bad name", "", 1.0),
            Err(MetricsError::InvalidName(_))
        ));
        assert!(matches!(
            m.set_gauge("infogap_http_requests_total", "", 1.0),
            Err(MetricsError::Reserved(_))
        ));

        let text = m.render();
        let mut typed: BTreeMap<String, String> = BTreeMap::new();
        let mut samples = vec![];
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').expect("help text");
                assert!(valid_name(name), "{line}");
                assert!(!help.contains('\n'));
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("type");
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                assert!(typed.insert(name.to_string(), kind.to_string()).is_none());
            } else {
                assert!(!line.starts_with('#'), "{line}");
                let (name, labels, value) = parse_sample(line);
                let family = typed
                    .keys()
                    .find(|f| {
                        name == **f
                            || (typed[*f] == "histogram"
                                && ["_bucket", "_sum", "_count"]
                                    .iter()
                                    .any(|s| name == format!("{f}{s}")))
                    })
                    .unwrap_or_else(|| panic!("sample before its TYPE: {line}"));
                samples.push((family.clone(), name, labels, value));
            }
        }
        let get = |name: &str, want: &[(&str, &str)]| -> f64 {
            samples
                .iter()
                .find(|(_, n, l, _)| {
                    n == name
                        && want
                            .iter()
                            .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
                })
                .map(|s| s.3)
                .unwrap_or_else(|| panic!("no {name} {want:?} in\n{text}"))
        };
        let route = [("route", "/v1/customers/{id}")];
        assert_eq!(
            get(
                REQUESTS_TOTAL,
                &[route[0], ("method", "GET"), ("status", "200")]
            ),
            2.0
        );
        assert_eq!(
            get(REQUESTS_TOTAL, &[("method", "OTHER"), ("status", "404")]),
            1.0
        );
        assert_eq!(get(REQUESTS_TOTAL, &[("route", "/odd\"route\\\n")]), 1.0);
        let bucket = format!("{REQUEST_DURATION}_bucket");
        assert_eq!(get(&bucket, &[route[0], ("le", "0.005")]), 1.0);
        assert_eq!(get(&bucket, &[route[0], ("le", "0.05")]), 1.0);
        assert_eq!(get(&bucket, &[route[0], ("le", "0.1")]), 2.0);
        assert_eq!(get(&bucket, &[route[0], ("le", "+Inf")]), 2.0);
        assert_eq!(
            get(&bucket, &[("route", "/odd\"route\\\n"), ("le", "10")]),
            0.0
        );
        assert_eq!(get(&format!("{REQUEST_DURATION}_count"), &route), 2.0);
        assert!((get(&format!("{REQUEST_DURATION}_sum"), &route) - 0.073).abs() < 1e-9);
        assert_eq!(get("infogap_snapshot_generation", &[]), 7.0);
        assert_eq!(get("infogap_audit_queue_length", &[]), 3.0);
        assert!(
            text.contains(
                "# HELP infogap_snapshot_generation Snapshot generation.\\nSecond line\n"
            )
        );
        assert_eq!(m.requests_for("/v1/customers/{id}"), 2);
    }

    #[test]
    fn special_values() {
        assert_eq!(fmt_f64(f64::INFINITY), "+Inf");
        assert_eq!(fmt_f64(f64::NAN), "NaN");
        assert_eq!(fmt_f64(1.0), "1");
        assert_eq!(fmt_f64(0.025), "0.025");
    }
}
