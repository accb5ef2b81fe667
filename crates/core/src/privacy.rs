//! The `[privacy]` section of the config, parsed once: where the data key
//! lives, how each consent purpose defaults (opt-in or opt-out differ by
//! jurisdiction), how long each kind of fact is kept, how erasure treats
//! aggregates, and how aggregates are protected when they leave the analyst
//! role (minimum group size, optional differential privacy, pseudonymized
//! exports). The engine applies it; import stores it in the store so every
//! later command and the server use the same rules.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Purposes every store knows (a config may add more).
pub const PURPOSES: [&str; 4] = ["personalization", "profiling", "marketing", "analytics"];

/// Recommendations built from the person's own history.
pub const PERSONALIZATION: &str = "personalization";
/// Scoring the person: churn risk, lifetime value.
pub const PROFILING: &str = "profiling";
/// Segment exports, campaign lists, webhooks about the person.
pub const MARKETING: &str = "marketing";
/// Counting the person in statistics.
pub const ANALYTICS: &str = "analytics";

/// Whether a purpose needs a recorded "granted" (opt-in) or applies until
/// withdrawn (opt-out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsentMode {
    /// Allowed only after the person granted it.
    #[serde(rename = "opt-in")]
    OptIn,
    /// Allowed unless the person withdrew it.
    #[serde(rename = "opt-out")]
    OptOut,
}

impl ConsentMode {
    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentMode::OptIn => "opt-in",
            ConsentMode::OptOut => "opt-out",
        }
    }
}

impl fmt::Display for ConsentMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What erasure does with a person's orders and other facts that count in
/// aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureMode {
    /// Every row of the person is deleted.
    #[default]
    Delete,
    /// Orders and their lines stay, detached from any person (revenue totals
    /// keep); everything that identifies or describes the person is deleted.
    Anonymize,
}

/// What happens to a customer's own erasure request (portal, `/v1/me`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureRequests {
    /// Queued until an admin approves it.
    #[default]
    Queue,
    /// Executed at once.
    Execute,
}

/// The `[privacy]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// The data key file (resolved against the config's directory);
    /// `INFOGAP_KEY_FILE` wins over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// Purpose → opt-in or opt-out. Purposes left out take their defaults:
    /// personalization, profiling and analytics opt-out, marketing opt-in.
    #[serde(default)]
    pub consent: BTreeMap<String, ConsentMode>,
    /// Fact kind (`orders`, `events`, `feedback`, `campaigns`, `consents`)
    /// → how long it is kept, as `400d`, `12w`, `36h`.
    #[serde(default)]
    pub retention: BTreeMap<String, String>,
    /// What erasure does with facts that count in aggregates.
    #[serde(default)]
    pub erasure: ErasureMode,
    /// What a customer's own erasure request does.
    #[serde(default)]
    pub erasure_requests: ErasureRequests,
    /// Smallest group an aggregate shared outside the analyst role may show.
    #[serde(default = "default_min_group")]
    pub min_group_size: usize,
    /// When set, shared counts and sums get Laplace noise of this ε.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp_epsilon: Option<f64>,
    /// Under differential privacy, each person's summed amount (revenue)
    /// is clamped to `[0, dp_sum_bound]` (default 1000): the sensitivity of
    /// a shared sum. A fixed number, never derived from the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp_sum_bound: Option<f64>,
    /// Whether customer exports for the analyst role carry keyed-hash ids
    /// and no contact fields.
    #[serde(default = "default_true")]
    pub pseudonymize_analyst: bool,
}

fn default_min_group() -> usize {
    5
}

fn default_true() -> bool {
    true
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            key_file: None,
            consent: BTreeMap::new(),
            retention: BTreeMap::new(),
            erasure: ErasureMode::default(),
            erasure_requests: ErasureRequests::default(),
            min_group_size: default_min_group(),
            dp_epsilon: None,
            dp_sum_bound: None,
            pseudonymize_analyst: true,
        }
    }
}

/// Fact kinds retention may name.
pub const RETENTION_KINDS: [&str; 5] = ["orders", "events", "feedback", "campaigns", "consents"];

impl PrivacyConfig {
    /// The mode of a purpose (its configured one, else the default).
    pub fn mode(&self, purpose: &str) -> ConsentMode {
        if let Some(m) = self.consent.get(purpose) {
            return *m;
        }
        if purpose == MARKETING {
            ConsentMode::OptIn
        } else {
            ConsentMode::OptOut
        }
    }

    /// Every purpose: the built-in ones and those the config adds.
    pub fn purposes(&self) -> Vec<String> {
        let mut v: Vec<String> = PURPOSES.iter().map(|s| s.to_string()).collect();
        for p in self.consent.keys() {
            if !v.contains(p) {
                v.push(p.clone());
            }
        }
        v
    }

    /// Retention per fact kind, in seconds.
    pub fn retention_seconds(&self) -> Result<BTreeMap<String, i64>, String> {
        let mut out = BTreeMap::new();
        for (kind, d) in &self.retention {
            out.insert(
                kind.clone(),
                parse_duration(d).map_err(|e| format!("[privacy.retention] {kind}: {e}"))?,
            );
        }
        Ok(out)
    }

    /// Checks values that serde cannot (names, ranges).
    pub fn validate(&self) -> Result<(), String> {
        for kind in self.retention.keys() {
            if !RETENTION_KINDS.contains(&kind.as_str()) {
                return Err(format!(
                    "[privacy.retention] {kind:?} is not a fact kind (one of {})",
                    RETENTION_KINDS.join(", ")
                ));
            }
        }
        self.retention_seconds()?;
        for p in self.consent.keys() {
            if p.trim().is_empty() || p != &p.to_lowercase() {
                return Err(format!(
                    "[privacy.consent] purpose {p:?} must be a non-empty lowercase name"
                ));
            }
        }
        if self.min_group_size == 0 {
            return Err("[privacy] min_group_size must be at least 1".into());
        }
        if let Some(e) = self.dp_epsilon
            && !(e.is_finite() && e > 0.0)
        {
            return Err(format!(
                "[privacy] dp_epsilon must be a positive number, not {e}"
            ));
        }
        if let Some(b) = self.dp_sum_bound
            && !(b.is_finite() && b > 0.0)
        {
            return Err(format!(
                "[privacy] dp_sum_bound must be a positive number, not {b}"
            ));
        }
        Ok(())
    }
}

/// Parses `400d`, `12w`, `36h`, `90m`, `30s` into seconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 400d, 12w, 36h"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "y" => 365 * 86_400,
        _ => {
            return Err(format!(
                "{s:?} is not a duration like 400d, 12w, 36h (units s m h d w y)"
            ));
        }
    };
    if n <= 0 {
        return Err(format!("{s:?} must be positive"));
    }
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_modes() {
        let p = PrivacyConfig::default();
        assert_eq!(p.min_group_size, 5);
        assert_eq!(p.mode(MARKETING), ConsentMode::OptIn);
        assert_eq!(p.mode(PERSONALIZATION), ConsentMode::OptOut);
        let mut q = p.clone();
        q.consent.insert(PROFILING.into(), ConsentMode::OptIn);
        assert_eq!(q.mode(PROFILING), ConsentMode::OptIn);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("400d"), Ok(400 * 86_400));
        assert_eq!(parse_duration("2w"), Ok(14 * 86_400));
        assert!(parse_duration("4 days").is_err());
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("d").is_err());
    }

    #[test]
    fn validation_names_the_field() {
        let mut p = PrivacyConfig::default();
        p.retention.insert("tickets".into(), "10d".into());
        assert!(p.validate().unwrap_err().contains("tickets"));
        let mut p = PrivacyConfig::default();
        p.retention.insert("events".into(), "ten days".into());
        assert!(p.validate().unwrap_err().contains("events"));
        let p = PrivacyConfig {
            dp_epsilon: Some(-1.0),
            ..PrivacyConfig::default()
        };
        assert!(p.validate().unwrap_err().contains("dp_epsilon"));
    }
}
