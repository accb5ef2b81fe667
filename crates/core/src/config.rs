//! The import configuration (`infogap.toml`): which files, of which kind, with
//! which column mapping, and the identity-resolution policy.
//!
//! Every error names the config file and line, so a user fixes the right
//! place before anything is written. Paths are relative to the config file.
//! See [`SourceKind::fields`] for the infogap fields each kind understands.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// A configuration problem, with the file and line it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ConfigError {
    /// The config file.
    pub file: String,
    /// 1-based line in the config file (0 when not known).
    pub line: usize,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Kinds of source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    /// A customer master (CRM export): ids, email, phone, attributes.
    Customers,
    /// A product catalogue.
    Products,
    /// Order headers.
    Orders,
    /// Order lines (items of orders).
    OrderLines,
    /// Behavioural events (view, click, cart, …).
    Events,
    /// Explicit ratings of products.
    Ratings,
    /// Surveys, reviews, support tickets.
    Feedback,
    /// Campaign definitions.
    Campaigns,
    /// Who received which campaign.
    CampaignExposures,
    /// Who redeemed which campaign.
    Redemptions,
    /// Consent records (purpose, granted).
    Consents,
    /// Pure link table mapping one id space to another.
    IdentityLinks,
    /// Which products a campaign's coupons apply to.
    Coupons,
}

impl SourceKind {
    /// All kinds, for messages.
    pub const ALL: [SourceKind; 13] = [
        SourceKind::Customers,
        SourceKind::Products,
        SourceKind::Orders,
        SourceKind::OrderLines,
        SourceKind::Events,
        SourceKind::Ratings,
        SourceKind::Feedback,
        SourceKind::Campaigns,
        SourceKind::CampaignExposures,
        SourceKind::Redemptions,
        SourceKind::Consents,
        SourceKind::IdentityLinks,
        SourceKind::Coupons,
    ];

    /// Config name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Customers => "customers",
            SourceKind::Products => "products",
            SourceKind::Orders => "orders",
            SourceKind::OrderLines => "order_lines",
            SourceKind::Events => "events",
            SourceKind::Ratings => "ratings",
            SourceKind::Feedback => "feedback",
            SourceKind::Campaigns => "campaigns",
            SourceKind::CampaignExposures => "campaign_exposures",
            SourceKind::Redemptions => "redemptions",
            SourceKind::Consents => "consents",
            SourceKind::IdentityLinks => "identity_links",
            SourceKind::Coupons => "coupons",
        }
    }

    /// Parses a config name.
    pub fn parse(s: &str) -> Option<SourceKind> {
        SourceKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The infogap fields this kind understands (`[source.columns]` keys).
    /// Identity fields `email` and `phone` are accepted by every kind with a customer.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            SourceKind::Customers => &["customer", "email", "phone", "time"],
            SourceKind::Products => &["product", "name", "category", "price"],
            SourceKind::Orders => &[
                "order", "customer", "email", "phone", "amount", "discount", "time",
            ],
            SourceKind::OrderLines => &[
                "order", "customer", "email", "phone", "product", "quantity", "amount", "price",
                "discount", "time", "name", "category",
            ],
            SourceKind::Events => &[
                "customer", "email", "phone", "event", "product", "value", "time", "channel",
            ],
            SourceKind::Ratings => &[
                "customer", "email", "phone", "product", "rating", "time", "channel",
            ],
            SourceKind::Feedback => &[
                "customer", "email", "phone", "type", "score", "text", "channel", "time",
            ],
            SourceKind::Campaigns => &["campaign", "name", "type", "start", "end"],
            SourceKind::CampaignExposures => &["campaign", "customer", "email", "phone", "time"],
            SourceKind::Redemptions => &["campaign", "customer", "email", "phone", "time"],
            SourceKind::Consents => &["customer", "email", "phone", "purpose", "granted", "time"],
            SourceKind::IdentityLinks => &["left", "right"],
            SourceKind::Coupons => &["coupon", "product", "campaign"],
        }
    }

    /// Fields that must be mapped.
    pub fn required(self) -> &'static [&'static str] {
        match self {
            SourceKind::Products => &["product"],
            SourceKind::Orders => &["order"],
            SourceKind::OrderLines => &["order", "amount"],
            SourceKind::Ratings => &["product", "rating"],
            SourceKind::Campaigns => &["campaign"],
            SourceKind::CampaignExposures | SourceKind::Redemptions => &["campaign"],
            SourceKind::Consents => &["purpose", "granted"],
            SourceKind::IdentityLinks => &["left", "right"],
            SourceKind::Coupons => &["product", "campaign"],
            _ => &[],
        }
    }

    /// Whether rows of this kind belong to a customer (need an identity key).
    pub fn has_customer(self) -> bool {
        !matches!(
            self,
            SourceKind::Products
                | SourceKind::Campaigns
                | SourceKind::IdentityLinks
                | SourceKind::Coupons
        )
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Delimited text (CSV, TSV, …).
    Csv,
    /// One JSON object per line.
    JsonLines,
    /// Apache Parquet.
    Parquet,
}

/// A column of the source file mapped in the config, with the config line of the mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnRef {
    /// Header name in the source file.
    pub column: String,
    /// Line of the mapping in the config file.
    pub line: usize,
}

/// Identity-resolution policy.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// Values never used to link (compared trimmed and lower-cased).
    pub blocklist: Vec<String>,
    /// A global key seen with more distinct customer ids of one namespace than this is not used to link.
    pub max_customers_per_key: usize,
    /// Country code prefixed to phone numbers written without one.
    pub default_country_code: Option<String>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            blocklist: [
                "",
                "null",
                "n/a",
                "na",
                "none",
                "0",
                "unknown",
                "-",
                "test@test.com",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            max_customers_per_key: 5,
            default_country_code: None,
        }
    }
}

/// One `[[source]]` entry, validated.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Department or system name (unique).
    pub name: String,
    /// Resolved file path.
    pub file: PathBuf,
    /// Kind of rows.
    pub kind: SourceKind,
    /// Id space of `customer` (defaults to the source name).
    pub namespace: String,
    /// File format (from `format` or the file extension).
    pub format: FileFormat,
    /// Forced delimiter for delimited text.
    pub delimiter: Option<u8>,
    /// infogap field → source column.
    pub columns: BTreeMap<String, ColumnRef>,
    /// Attribute name → source column (typed customer/product attributes).
    pub attributes: BTreeMap<String, ColumnRef>,
    /// Constant event type for `events` without an `event` column; `feedback` type for feedback.
    pub default_type: Option<String>,
    /// For `identity_links`: namespace of the `left` column.
    pub left_namespace: Option<String>,
    /// For `identity_links`: namespace of the `right` column.
    pub right_namespace: Option<String>,
    /// Line of the `[[source]]` header in the config.
    pub line: usize,
    /// A stable digest of the mapping (a changed mapping re-imports an unchanged file).
    pub mapping_digest: String,
}

impl SourceConfig {
    /// The source column mapped to `field`, if any.
    pub fn column(&self, field: &str) -> Option<&ColumnRef> {
        self.columns.get(field)
    }
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file.
    pub path: PathBuf,
    /// `[store] path`, resolved against the config's directory, or
    /// `[store] url` (a PostgreSQL URL, carried as a path).
    pub store_path: Option<PathBuf>,
    /// Identity policy.
    pub identity: IdentityConfig,
    /// Sources in file order.
    pub sources: Vec<SourceConfig>,
    /// `[access]`: departments, field classes of attributes, roles.
    pub access: crate::access::AccessConfig,
    /// `[privacy]`: key file, consent purposes, retention, erasure, shared aggregates.
    pub privacy: crate::privacy::PrivacyConfig,
    /// `[[department]]`: sources grouped into the departments the
    /// information-gap analysis compares (empty: every source is its own).
    pub departments: Vec<DepartmentConfig>,
    /// `[intake]`: how the event intake treats requests with bad messages.
    pub intake: IntakeConfig,
    /// `[[rule]]`: changes that raise alerts.
    pub rules: Vec<RuleConfig>,
    /// `[webhooks]`: how alerts are delivered to webhooks.
    pub webhooks: WebhooksConfig,
}

/// One `[[rule]]`: a change between two snapshots that raises an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Name (unique; alerts and webhooks carry it).
    pub name: String,
    /// `churn_risk` (risk crosses `threshold` upwards), `negative_feedback`
    /// (a ticket, a score at most `max_score` or a text whose sentiment is
    /// negative, from a customer in the top `top_clv_share` by lifetime
    /// value), `segment_change` (enters or
    /// leaves `segment`, or any segment), `consent_withdrawn` (`purpose`,
    /// or any), `unusual_activity` (a refund, or an order above `factor` ×
    /// the customer's mean order).
    pub kind: String,
    /// `churn_risk`: probability in (0, 1).
    pub threshold: Option<f64>,
    /// `negative_feedback`: highest score that counts as negative (default
    /// 2 for reviews and CSAT, 6 for NPS surveys).
    pub max_score: Option<f64>,
    /// `negative_feedback`: only customers in this top share by lifetime
    /// value (default: everyone).
    pub top_clv_share: Option<f64>,
    /// `segment_change`: only this segment.
    pub segment: Option<String>,
    /// `consent_withdrawn`: only this purpose.
    pub purpose: Option<String>,
    /// `unusual_activity`: how many times the customer's mean order (default 3).
    pub factor: Option<f64>,
}

/// Rule kinds `[[rule]]` takes.
pub const RULE_KINDS: [&str; 5] = [
    "churn_risk",
    "negative_feedback",
    "segment_change",
    "consent_withdrawn",
    "unusual_activity",
];

impl RuleConfig {
    /// Checks the kind and its parameters.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("[[rule]]: name is empty".into());
        }
        if !RULE_KINDS.contains(&self.kind.as_str()) {
            return Err(format!(
                "[[rule]] {:?}: kind {:?} is not one of {}",
                self.name,
                self.kind,
                RULE_KINDS.join(", ")
            ));
        }
        let share = |x: Option<f64>, what: &str| match x {
            Some(v) if !(v > 0.0 && v <= 1.0) => Err(format!(
                "[[rule]] {:?}: {what} = {v} must be in (0, 1]",
                self.name
            )),
            _ => Ok(()),
        };
        match self.kind.as_str() {
            "churn_risk" => match self.threshold {
                Some(t) if t > 0.0 && t < 1.0 => {}
                Some(t) => {
                    return Err(format!(
                        "[[rule]] {:?}: threshold = {t} must be between 0 and 1",
                        self.name
                    ));
                }
                None => {
                    return Err(format!(
                        "[[rule]] {:?}: a churn_risk rule needs a threshold",
                        self.name
                    ));
                }
            },
            "negative_feedback" => share(self.top_clv_share, "top_clv_share")?,
            "unusual_activity" => {
                if let Some(f) = self.factor
                    && !(f > 1.0 && f.is_finite())
                {
                    return Err(format!(
                        "[[rule]] {:?}: factor = {f} must be above 1",
                        self.name
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The `[intake]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeConfig {
    /// `keep_rest` (default: keep a request's good messages, list the bad
    /// ones) or `refuse_batch` (refuse the whole request).
    pub bad_events: Option<String>,
}

/// The `[webhooks]` section: how many times a message is tried and how
/// long the waits between tries are (exponential from `first_retry`,
/// capped at `max_retry`, with jitter). Durations are `250ms`, `5s`, `10m`,
/// `2h`, `1d`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Tries before a message goes to the dead letters (default 8).
    pub attempts: Option<u32>,
    /// The wait after the first failed try (default `5s`).
    pub first_retry: Option<String>,
    /// The longest wait between tries (default `1h`).
    pub max_retry: Option<String>,
    /// How long one try may take (default `10s`).
    pub timeout: Option<String>,
}

/// Delivery settings with every default filled in and durations in
/// milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Tries before the dead letters.
    pub attempts: u32,
    /// First wait (ms).
    pub first_retry_ms: u64,
    /// Longest wait (ms).
    pub max_retry_ms: u64,
    /// Time allowed for one try (ms).
    pub timeout_ms: u64,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            attempts: 8,
            first_retry_ms: 5_000,
            max_retry_ms: 3_600_000,
            timeout_ms: 10_000,
        }
    }
}

impl WebhooksConfig {
    /// The settings, checked: attempts 1–50, durations from 1 ms to 7 days,
    /// `first_retry` ≤ `max_retry`, a timeout of at most 60 s.
    pub fn delivery(&self) -> Result<Delivery, String> {
        let d = Delivery::default();
        let dur = |v: &Option<String>, what: &str, default: u64| match v {
            None => Ok(default),
            Some(s) => parse_millis(s).map_err(|e| format!("[webhooks] {what} = {s:?}: {e}")),
        };
        let out = Delivery {
            attempts: self.attempts.unwrap_or(d.attempts),
            first_retry_ms: dur(&self.first_retry, "first_retry", d.first_retry_ms)?,
            max_retry_ms: dur(&self.max_retry, "max_retry", d.max_retry_ms)?,
            timeout_ms: dur(&self.timeout, "timeout", d.timeout_ms)?,
        };
        if !(1..=50).contains(&out.attempts) {
            return Err(format!(
                "[webhooks] attempts = {}: must be from 1 to 50",
                out.attempts
            ));
        }
        if out.first_retry_ms > out.max_retry_ms {
            return Err("[webhooks] first_retry is longer than max_retry".into());
        }
        if out.timeout_ms > 60_000 {
            return Err("[webhooks] timeout: at most 60s".into());
        }
        Ok(out)
    }
}

/// A duration such as `250ms`, `5s`, `10m`, `2h` or `1d`, in milliseconds
/// (from 1 ms to 7 days).
pub fn parse_millis(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit())
        .ok_or("no unit (ms, s, m, h or d)")?;
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| "expected a number and a unit, e.g. 5s")?;
    let scale: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("unit {unit:?} is not one of ms, s, m, h, d")),
    };
    let ms = n.checked_mul(scale).ok_or("too long")?;
    if ms == 0 || ms > 7 * 86_400_000 {
        return Err("must be from 1ms to 7d".into());
    }
    Ok(ms)
}

/// One `[[department]]`: a name and the sources whose facts it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentConfig {
    /// Department name (`service`, `marketing`, …).
    pub name: String,
    /// Its sources (names of `[[source]]` entries).
    pub sources: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    store: Option<RawStore>,
    identity: Option<RawIdentity>,
    #[serde(default)]
    source: Vec<Spanned<RawSource>>,
    access: Option<Spanned<crate::access::AccessConfig>>,
    privacy: Option<Spanned<crate::privacy::PrivacyConfig>>,
    #[serde(default)]
    department: Vec<Spanned<DepartmentConfig>>,
    intake: Option<Spanned<IntakeConfig>>,
    #[serde(default)]
    rule: Vec<Spanned<RuleConfig>>,
    webhooks: Option<Spanned<WebhooksConfig>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    path: Option<String>,
    /// A PostgreSQL URL (`postgres://user@host:port/db`) instead of a file.
    url: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    blocklist: Option<Vec<String>>,
    max_customers_per_key: Option<Spanned<i64>>,
    default_country_code: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: Spanned<String>,
    file: Spanned<String>,
    kind: Spanned<String>,
    namespace: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    delimiter: Option<Spanned<String>>,
    #[serde(default)]
    columns: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    attributes: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(alias = "event_type", alias = "feedback_type")]
    default_type: Option<String>,
    left_namespace: Option<Spanned<String>>,
    right_namespace: Option<Spanned<String>>,
}

struct Lines<'a> {
    text: &'a str,
}

impl Lines<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }
}

impl Config {
    /// Reads and validates a config file. Checks that every source file exists.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: 0,
            message: format!("cannot read config: {e}"),
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates config text; `path` locates relative file paths and names errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let lines = Lines { text };
        let err = |line: usize, message: String| ConfigError {
            file: file.clone(),
            line,
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| lines.line(s.start)).unwrap_or(0);
            err(line, e.message().to_string())
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();

        let mut identity = IdentityConfig::default();
        if let Some(id) = raw.identity {
            if let Some(b) = id.blocklist {
                identity.blocklist = b.iter().map(|v| crate::ids::blocklist_form(v)).collect();
            }
            if let Some(m) = id.max_customers_per_key {
                let v = *m.get_ref();
                if v < 1 {
                    return Err(err(
                        lines.line(m.span().start),
                        "max_customers_per_key must be at least 1".into(),
                    ));
                }
                identity.max_customers_per_key = v as usize;
            }
            if let Some(cc) = id.default_country_code {
                let v = cc.get_ref().trim().trim_start_matches('+').to_string();
                if v.is_empty() || v.len() > 3 || !v.chars().all(|c| c.is_ascii_digit()) {
                    return Err(err(
                        lines.line(cc.span().start),
                        format!(
                            "default_country_code must be 1-3 digits, got {:?}",
                            cc.get_ref()
                        ),
                    ));
                }
                identity.default_country_code = Some(v);
            }
        }

        let store_path = match raw.store {
            None => None,
            Some(RawStore {
                path: Some(_),
                url: Some(u),
            }) => {
                return Err(err(
                    lines.line(u.span().start),
                    "[store]: give either path (a SQLite file) or url (PostgreSQL), not both"
                        .into(),
                ));
            }
            Some(RawStore { url: Some(u), .. }) => {
                let at = lines.line(u.span().start);
                let u = u.into_inner();
                if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                    return Err(err(
                        at,
                        "[store] url: expected postgres://user@host:port/database".into(),
                    ));
                }
                Some(PathBuf::from(u))
            }
            Some(RawStore { path, .. }) => path.map(|p| base.join(p)),
        };
        if raw.source.is_empty() {
            return Err(err(0, "no [[source]] entries: nothing to import".into()));
        }
        let mut sources: Vec<SourceConfig> = Vec::new();
        for spanned in raw.source {
            let at = lines.line(spanned.span().start);
            let s = spanned.into_inner();
            let name = s.name.get_ref().trim().to_string();
            if name.is_empty() {
                return Err(err(
                    lines.line(s.name.span().start),
                    "source name is empty".into(),
                ));
            }
            if let Some(prev) = sources.iter().find(|p| p.name == name) {
                return Err(err(
                    lines.line(s.name.span().start),
                    format!(
                        "duplicate source name {name:?} (first at line {})",
                        prev.line
                    ),
                ));
            }
            let kind_line = lines.line(s.kind.span().start);
            let kind = SourceKind::parse(s.kind.get_ref().trim()).ok_or_else(|| {
                let all: Vec<&str> = SourceKind::ALL.iter().map(|k| k.as_str()).collect();
                err(
                    kind_line,
                    format!(
                        "unknown kind {:?}; expected one of: {}",
                        s.kind.get_ref(),
                        all.join(", ")
                    ),
                )
            })?;
            let file_line = lines.line(s.file.span().start);
            let file_path = base.join(s.file.get_ref());
            if !file_path.is_file() {
                return Err(err(
                    file_line,
                    format!("source {name:?}: file not found: {}", file_path.display()),
                ));
            }
            let format = match &s.format {
                Some(f) => match f.get_ref().to_lowercase().as_str() {
                    "csv" | "tsv" | "txt" => FileFormat::Csv,
                    "jsonl" | "ndjson" | "json" => FileFormat::JsonLines,
                    "parquet" => FileFormat::Parquet,
                    other => {
                        return Err(err(
                            lines.line(f.span().start),
                            format!("unknown format {other:?}; expected csv, jsonl or parquet"),
                        ));
                    }
                },
                None => format_from_extension(&file_path),
            };
            let delimiter = match &s.delimiter {
                None => None,
                Some(d) => {
                    let v = d.get_ref();
                    let b = match v.as_str() {
                        "\\t" | "tab" => b'\t',
                        _ if v.len() == 1 && v.is_ascii() => v.as_bytes()[0],
                        _ => {
                            return Err(err(
                                lines.line(d.span().start),
                                format!(
                                    "delimiter must be one ASCII character (or \"\\t\"), got {v:?}"
                                ),
                            ));
                        }
                    };
                    Some(b)
                }
            };
            let mut columns = BTreeMap::new();
            for (k, v) in &s.columns {
                let l = lines.line(k.span().start);
                let field = k.get_ref().trim().to_string();
                if !kind.fields().contains(&field.as_str()) {
                    return Err(err(
                        l,
                        format!(
                            "source {name:?} ({kind}): unknown field {field:?}; fields of {kind}: {}",
                            kind.fields().join(", ")
                        ),
                    ));
                }
                if v.get_ref().trim().is_empty() {
                    return Err(err(
                        l,
                        format!("source {name:?}: column for {field:?} is empty"),
                    ));
                }
                columns.insert(
                    field,
                    ColumnRef {
                        column: v.get_ref().clone(),
                        line: l,
                    },
                );
            }
            for req in kind.required() {
                if !columns.contains_key(*req) {
                    return Err(err(
                        at,
                        format!(
                            "source {name:?} ({kind}) must map the field {req:?} in [source.columns]"
                        ),
                    ));
                }
            }
            if kind.has_customer()
                && !["customer", "email", "phone"]
                    .iter()
                    .any(|f| columns.contains_key(*f))
            {
                return Err(err(
                    at,
                    format!(
                        "source {name:?} ({kind}) must map at least one identity field: customer, email or phone"
                    ),
                ));
            }
            let mut attributes = BTreeMap::new();
            for (k, v) in &s.attributes {
                attributes.insert(
                    k.get_ref().trim().to_string(),
                    ColumnRef {
                        column: v.get_ref().clone(),
                        line: lines.line(k.span().start),
                    },
                );
            }
            let namespace = s
                .namespace
                .as_ref()
                .map(|n| n.get_ref().trim().to_string())
                .unwrap_or_else(|| name.clone());
            if namespace == "email" || namespace == "phone" {
                let l = s
                    .namespace
                    .as_ref()
                    .map(|n| lines.line(n.span().start))
                    .unwrap_or(at);
                return Err(err(
                    l,
                    "namespaces \"email\" and \"phone\" are reserved for global keys".into(),
                ));
            }
            let (left_namespace, right_namespace) = if kind == SourceKind::IdentityLinks {
                let get = |v: &Option<Spanned<String>>,
                           which: &str|
                 -> Result<String, ConfigError> {
                    v.as_ref()
                        .map(|n| n.get_ref().trim().to_string())
                        .filter(|n| !n.is_empty())
                        .ok_or_else(|| {
                            err(
                                at,
                                format!("identity_links source {name:?} needs {which}_namespace"),
                            )
                        })
                };
                (
                    Some(get(&s.left_namespace, "left")?),
                    Some(get(&s.right_namespace, "right")?),
                )
            } else {
                (None, None)
            };
            let mapping_digest = format!(
                "{kind}|{namespace}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
                columns
                    .iter()
                    .map(|(k, v)| (k, &v.column))
                    .collect::<Vec<_>>(),
                attributes
                    .iter()
                    .map(|(k, v)| (k, &v.column))
                    .collect::<Vec<_>>(),
                s.default_type,
                left_namespace,
                right_namespace,
                delimiter
            );
            sources.push(SourceConfig {
                name,
                file: file_path,
                kind,
                namespace,
                format,
                delimiter,
                columns,
                attributes,
                default_type: s.default_type.clone(),
                left_namespace,
                right_namespace,
                line: at,
                mapping_digest,
            });
        }
        let access = match raw.access {
            None => crate::access::AccessConfig::default(),
            Some(a) => {
                let at = lines.line(a.span().start);
                let a = a.into_inner();
                for (dept, srcs) in &a.departments {
                    if dept.trim().is_empty() {
                        return Err(err(
                            at,
                            "[access.departments]: a department name is empty".into(),
                        ));
                    }
                    for s in srcs {
                        if !sources.iter().any(|x| &x.name == s) {
                            return Err(err(
                                at,
                                format!(
                                    "[access.departments] {dept:?} names source {s:?}, which is not a [[source]] of this config"
                                ),
                            ));
                        }
                    }
                }
                a
            }
        };
        let privacy = match raw.privacy {
            None => crate::privacy::PrivacyConfig::default(),
            Some(p) => {
                let at = lines.line(p.span().start);
                let mut p = p.into_inner();
                p.validate().map_err(|reason| err(at, reason))?;
                if let Some(k) = &p.key_file {
                    // relative to the config's directory, like [store] path
                    let kp = Path::new(k);
                    if kp.is_relative()
                        && let Some(dir) = path.parent()
                    {
                        p.key_file = Some(dir.join(kp).display().to_string());
                    }
                }
                p
            }
        };
        let mut departments: Vec<DepartmentConfig> = Vec::new();
        for d in raw.department {
            let at = lines.line(d.span().start);
            let d = d.into_inner();
            if d.name.trim().is_empty() {
                return Err(err(at, "[[department]]: name is empty".into()));
            }
            if departments.iter().any(|x| x.name == d.name) {
                return Err(err(
                    at,
                    format!("[[department]] {:?} is defined twice", d.name),
                ));
            }
            if d.sources.is_empty() {
                return Err(err(
                    at,
                    format!("[[department]] {:?} lists no sources", d.name),
                ));
            }
            for s in &d.sources {
                if !sources.iter().any(|x| &x.name == s) {
                    return Err(err(
                        at,
                        format!(
                            "[[department]] {:?} names source {s:?}, which is not a [[source]] of this config",
                            d.name
                        ),
                    ));
                }
            }
            departments.push(d);
        }
        let intake = match raw.intake {
            None => IntakeConfig::default(),
            Some(i) => {
                let at = lines.line(i.span().start);
                let i = i.into_inner();
                if let Some(b) = &i.bad_events
                    && b != "keep_rest"
                    && b != "refuse_batch"
                {
                    return Err(err(
                        at,
                        format!(
                            "[intake] bad_events = {b:?}: expected \"keep_rest\" or \"refuse_batch\""
                        ),
                    ));
                }
                i
            }
        };
        let mut rules: Vec<RuleConfig> = Vec::new();
        for r in raw.rule {
            let at = lines.line(r.span().start);
            let r = r.into_inner();
            r.validate().map_err(|reason| err(at, reason))?;
            if rules.iter().any(|x| x.name == r.name) {
                return Err(err(at, format!("[[rule]] {:?} is defined twice", r.name)));
            }
            rules.push(r);
        }
        let webhooks = match raw.webhooks {
            None => WebhooksConfig::default(),
            Some(w) => {
                let at = lines.line(w.span().start);
                let w = w.into_inner();
                w.delivery().map_err(|reason| err(at, reason))?;
                w
            }
        };
        Ok(Config {
            path: path.to_path_buf(),
            store_path,
            identity,
            sources,
            access,
            privacy,
            departments,
            intake,
            rules,
            webhooks,
        })
    }
}

/// Format from a file extension (`.parquet`, `.jsonl`/`.ndjson`/`.json`, else delimited text).
pub fn format_from_extension(path: &Path) -> FileFormat {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_lowercase)
        .as_deref()
    {
        Some("parquet") | Some("pq") => FileFormat::Parquet,
        Some("jsonl") | Some("ndjson") | Some("json") => FileFormat::JsonLines,
        _ => FileFormat::Csv,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[&str]) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "infogap-cfg-{}-{}",
            std::process::id(),
            files.len()
        ));
        std::fs::create_dir_all(&d).ok();
        for f in files {
            std::fs::write(d.join(f), "a,b\n1,2\n").ok();
        }
        d
    }

    #[test]
    fn names_the_line_of_an_unknown_kind() {
        let d = dir_with(&["x.csv"]);
        let text = "[[source]]\nname = \"s\"\nfile = \"x.csv\"\nkind = \"invoices\"\n[source.columns]\ncustomer = \"a\"\n";
        let e = Config::parse(text, &d.join("infogap.toml"))
            .err()
            .map(|e| (e.line, e.message));
        let (line, msg) = e.unwrap_or_default();
        assert_eq!(line, 4);
        assert!(msg.contains("unknown kind"), "{msg}");
    }

    #[test]
    fn rules_and_intake_are_checked_with_their_line() {
        let d = dir_with(&["r.csv"]);
        let src = "[[source]]\nname = \"s\"\nfile = \"r.csv\"\nkind = \"customers\"\n[source.columns]\ncustomer = \"a\"\n";
        let ok = format!(
            "{src}[[rule]]\nname = \"risk\"\nkind = \"churn_risk\"\nthreshold = 0.8\n[[rule]]\nname = \"vip\"\nkind = \"negative_feedback\"\ntop_clv_share = 0.1\n[intake]\nbad_events = \"refuse_batch\"\n"
        );
        let c = Config::parse(&ok, &d.join("infogap.toml")).expect("a valid config");
        assert_eq!(c.rules.len(), 2);
        assert_eq!(c.rules[0].threshold, Some(0.8));
        assert_eq!(c.intake.bad_events.as_deref(), Some("refuse_batch"));
        assert_eq!(c.webhooks.delivery(), Ok(Delivery::default()));
        let w = Config::parse(
            &format!(
                "{src}[webhooks]\nattempts = 3\nfirst_retry = \"200ms\"\nmax_retry = \"1s\"\n"
            ),
            &d.join("infogap.toml"),
        )
        .expect("a valid [webhooks]");
        let dl = w.webhooks.delivery().expect("valid");
        assert_eq!(
            (dl.attempts, dl.first_retry_ms, dl.max_retry_ms),
            (3, 200, 1000)
        );
        assert_eq!(parse_millis("90m"), Ok(5_400_000));
        assert!(
            parse_millis("8d").is_err()
                && parse_millis("0s").is_err()
                && parse_millis("5").is_err()
        );
        for (bad, line, word) in [
            (
                "[[rule]]\nname = \"r\"\nkind = \"churn_risk\"\nthreshold = 1.5\n",
                7,
                "threshold",
            ),
            (
                "[[rule]]\nname = \"r\"\nkind = \"churn_risk\"\n",
                7,
                "needs a threshold",
            ),
            ("[[rule]]\nname = \"r\"\nkind = \"weather\"\n", 7, "weather"),
            (
                "[[rule]]\nname = \"r\"\nkind = \"negative_feedback\"\ntop_clv_share = 2\n",
                7,
                "top_clv_share",
            ),
            ("[intake]\nbad_events = \"drop\"\n", 7, "bad_events"),
            ("[webhooks]\nattempts = 0\n", 7, "attempts"),
            ("[webhooks]\nfirst_retry = \"5 weeks\"\n", 7, "first_retry"),
            (
                "[webhooks]\nfirst_retry = \"2h\"\nmax_retry = \"1h\"\n",
                7,
                "max_retry",
            ),
            ("[webhooks]\ntimeout = \"2m\"\n", 7, "timeout"),
        ] {
            let e = Config::parse(&format!("{src}{bad}"), &d.join("infogap.toml"))
                .err()
                .map(|e| (e.line, e.message))
                .unwrap_or_default();
            assert_eq!(e.0, line, "{bad}: {}", e.1);
            assert!(e.1.contains(word), "{bad}: {}", e.1);
        }
    }

    #[test]
    fn names_the_line_of_a_missing_file_and_bad_field() {
        let d = dir_with(&["y.csv"]);
        let text = "[[source]]\nname = \"s\"\nfile = \"nope.csv\"\nkind = \"customers\"\n";
        let e = Config::parse(text, &d.join("infogap.toml")).err();
        assert_eq!(e.as_ref().map(|e| e.line), Some(3));
        let text2 = "[[source]]\nname = \"s\"\nfile = \"y.csv\"\nkind = \"customers\"\n[source.columns]\ncustomer = \"a\"\nsku = \"b\"\n";
        let e2 = Config::parse(text2, &d.join("infogap.toml")).err();
        assert_eq!(e2.as_ref().map(|e| e.line), Some(7));
    }

    #[test]
    fn parses_a_full_source() {
        let d = dir_with(&["z.csv", "w.csv"]);
        let text = r#"
[identity]
blocklist = ["N/A", "unknown"]
max_customers_per_key = 3
default_country_code = "+1"

[[source]]
name = "crm"
file = "z.csv"
kind = "customers"
delimiter = ";"
[source.columns]
customer = "id"
email = "mail"
[source.attributes]
age = "age_band"

[[source]]
name = "links"
file = "w.csv"
kind = "identity_links"
left_namespace = "crm"
right_namespace = "web"
[source.columns]
left = "a"
right = "b"
"#;
        let c = Config::parse(text, &d.join("infogap.toml"));
        let c = match c {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(c.identity.blocklist, vec!["n/a", "unknown"]);
        assert_eq!(c.identity.max_customers_per_key, 3);
        assert_eq!(c.identity.default_country_code.as_deref(), Some("1"));
        assert_eq!(c.sources.len(), 2);
        assert_eq!(c.sources[0].delimiter, Some(b';'));
        assert_eq!(c.sources[0].namespace, "crm");
        assert_eq!(c.sources[0].columns["email"].column, "mail");
        assert_eq!(c.sources[0].columns["email"].line, 14);
        assert_eq!(c.sources[1].left_namespace.as_deref(), Some("crm"));
    }
}
