//! The vocabulary of access control, parsed once: actions a role may take,
//! field classes of customer data, how a class is shown (visible, masked,
//! hidden), and the `[access]` section of the config that names departments
//! and overrides roles. The engine turns these into a policy and is the only
//! place that applies it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Something a principal may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Action {
    /// Find a customer by a key (email, phone, `ns:id`).
    #[serde(rename = "customers.lookup")]
    CustomersLookup,
    /// Read a customer's unified view and timeline.
    #[serde(rename = "customers.read")]
    CustomersRead,
    /// Split or unsplit a merge.
    #[serde(rename = "customers.merge")]
    CustomersMerge,
    /// Read recommendations of a customer.
    #[serde(rename = "recommendations.read")]
    RecommendationsRead,
    /// Read churn risk (one customer or the watchlist).
    #[serde(rename = "churn.read")]
    ChurnRead,
    /// Read lifetime value.
    #[serde(rename = "clv.read")]
    ClvRead,
    /// List segments and their profiles.
    #[serde(rename = "segments.read")]
    SegmentsRead,
    /// List or export a segment's members.
    #[serde(rename = "segments.export")]
    SegmentsExport,
    /// Store-wide counts.
    #[serde(rename = "stats.read")]
    StatsRead,
    /// Demand forecasts.
    #[serde(rename = "forecasts.read")]
    ForecastsRead,
    /// Train models.
    #[serde(rename = "models.train")]
    ModelsTrain,
    /// Read the audit trail.
    #[serde(rename = "audit.read")]
    AuditRead,
    /// Create, list and revoke keys and customer tokens.
    #[serde(rename = "keys.manage")]
    KeysManage,
    /// Import files.
    #[serde(rename = "data.import")]
    DataImport,
    /// Send events (sources).
    #[serde(rename = "events.write")]
    EventsWrite,
    /// A customer reads their own data.
    #[serde(rename = "self.read")]
    SelfRead,
    /// A customer changes their own data: consent, corrections, requests.
    #[serde(rename = "self.write")]
    SelfWrite,
    /// Read a customer's consent by purpose and its history.
    #[serde(rename = "consents.read")]
    ConsentsRead,
    /// Record a consent change on a customer's behalf.
    #[serde(rename = "consents.write")]
    ConsentsWrite,
    /// Export everything held about a person (GDPR Art. 15/20).
    #[serde(rename = "privacy.export")]
    PrivacyExport,
    /// Erase a person (GDPR Art. 17) and approve erasure requests.
    #[serde(rename = "privacy.erase")]
    PrivacyErase,
    /// Apply retention, rotate the data key.
    #[serde(rename = "privacy.manage")]
    PrivacyManage,
    /// List the alerts raised by the rules.
    #[serde(rename = "alerts.read")]
    AlertsRead,
    /// Add, list and remove webhooks; list and replay dead letters.
    #[serde(rename = "webhooks.manage")]
    WebhooksManage,
    /// Feedback figures: NPS, CSAT, sentiment and topics per segment,
    /// department and period (aggregates, no texts).
    #[serde(rename = "feedback.read")]
    FeedbackRead,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 25] = [
        Action::CustomersLookup,
        Action::CustomersRead,
        Action::CustomersMerge,
        Action::RecommendationsRead,
        Action::ChurnRead,
        Action::ClvRead,
        Action::SegmentsRead,
        Action::SegmentsExport,
        Action::StatsRead,
        Action::ForecastsRead,
        Action::ModelsTrain,
        Action::AuditRead,
        Action::KeysManage,
        Action::DataImport,
        Action::EventsWrite,
        Action::SelfRead,
        Action::SelfWrite,
        Action::ConsentsRead,
        Action::ConsentsWrite,
        Action::PrivacyExport,
        Action::PrivacyErase,
        Action::PrivacyManage,
        Action::AlertsRead,
        Action::WebhooksManage,
        Action::FeedbackRead,
    ];

    /// The config and JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::CustomersLookup => "customers.lookup",
            Action::CustomersRead => "customers.read",
            Action::CustomersMerge => "customers.merge",
            Action::RecommendationsRead => "recommendations.read",
            Action::ChurnRead => "churn.read",
            Action::ClvRead => "clv.read",
            Action::SegmentsRead => "segments.read",
            Action::SegmentsExport => "segments.export",
            Action::StatsRead => "stats.read",
            Action::ForecastsRead => "forecasts.read",
            Action::ModelsTrain => "models.train",
            Action::AuditRead => "audit.read",
            Action::KeysManage => "keys.manage",
            Action::DataImport => "data.import",
            Action::EventsWrite => "events.write",
            Action::SelfRead => "self.read",
            Action::SelfWrite => "self.write",
            Action::ConsentsRead => "consents.read",
            Action::ConsentsWrite => "consents.write",
            Action::PrivacyExport => "privacy.export",
            Action::PrivacyErase => "privacy.erase",
            Action::PrivacyManage => "privacy.manage",
            Action::AlertsRead => "alerts.read",
            Action::WebhooksManage => "webhooks.manage",
            Action::FeedbackRead => "feedback.read",
        }
    }

    /// Parses a config name.
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A class of customer data, shown or not as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldClass {
    /// Emails, phones, names, identity values.
    Contact,
    /// Attributes marked demographic (age band, income, region, …).
    Demographic,
    /// Orders, events, campaigns, consents, other attributes.
    Behaviour,
    /// Free text of feedback and tickets.
    FeedbackText,
    /// Scores: churn risk, lifetime value, recommendations, segments.
    Predictions,
}

impl FieldClass {
    /// Every class.
    pub const ALL: [FieldClass; 5] = [
        FieldClass::Contact,
        FieldClass::Demographic,
        FieldClass::Behaviour,
        FieldClass::FeedbackText,
        FieldClass::Predictions,
    ];

    /// The config and JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldClass::Contact => "contact",
            FieldClass::Demographic => "demographic",
            FieldClass::Behaviour => "behaviour",
            FieldClass::FeedbackText => "feedback_text",
            FieldClass::Predictions => "predictions",
        }
    }

    /// Parses a config name.
    pub fn parse(s: &str) -> Option<FieldClass> {
        FieldClass::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for FieldClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a field class is shown to a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Not shown at all (the field is left out of the output).
    Hidden,
    /// Shown masked (`a***@example.com`, `***-***-4567`, a risk band
    /// instead of a probability).
    Masked,
    /// Shown as stored.
    Visible,
}

impl Visibility {
    /// Parses a config name.
    pub fn parse(s: &str) -> Option<Visibility> {
        match s {
            "hidden" => Some(Visibility::Hidden),
            "masked" => Some(Visibility::Masked),
            "visible" => Some(Visibility::Visible),
            _ => None,
        }
    }
}

/// One role as the config gives it (every part optional: a built-in role
/// of the same name supplies what is left out).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// Actions allowed (replaces the built-in list when given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<Action>>,
    /// Field class → visibility (overrides the built-in per class).
    #[serde(default)]
    pub fields: BTreeMap<FieldClass, Visibility>,
}

/// The `[access]` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    /// Department → the sources whose facts it holds. A key limited to a
    /// department sees only customers its sources know, and only those
    /// sources' facts. Every source is also a department of its own name.
    #[serde(default)]
    pub departments: BTreeMap<String, Vec<String>>,
    /// Attribute names of class `contact` (besides identities), e.g. names.
    #[serde(default)]
    pub contact_attributes: Option<Vec<String>>,
    /// Attribute names of class `demographic`. Attributes in neither list
    /// are `behaviour`.
    #[serde(default)]
    pub demographic_attributes: Option<Vec<String>>,
    /// Roles: built-in ones overridden, or new ones.
    #[serde(default)]
    pub roles: BTreeMap<String, RoleConfig>,
}
