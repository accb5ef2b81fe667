//! The in-memory analytical snapshot of the store: every fact of every customer,
//! with ids already resolved to dense integers.
//!
//! Why a snapshot type in `core`: the model families (recommendations, churn,
//! CLV, forecasting, segments) all want the same joined, typed view of the
//! store, and they must not depend on the store crate (models are pure). The
//! engine fills a [`Dataset`] once from any storage backend and hands slices of
//! it to the models. Times are Unix seconds (UTC).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A typed attribute value (age band, income band, price tier, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttrValue {
    /// A boolean flag.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A decimal number.
    Float(f64),
    /// Free text or a category label.
    Text(String),
}

impl AttrValue {
    /// The value as a number, when it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            AttrValue::Bool(b) => Some(f64::from(u8::from(*b))),
            AttrValue::Int(i) => Some(*i as f64),
            AttrValue::Float(f) => Some(*f),
            AttrValue::Text(_) => None,
        }
    }

    /// The value rendered as text (for one-hot encoding of categories).
    pub fn as_text(&self) -> String {
        match self {
            AttrValue::Bool(b) => b.to_string(),
            AttrValue::Int(i) => i.to_string(),
            AttrValue::Float(f) => f.to_string(),
            AttrValue::Text(s) => s.clone(),
        }
    }
}

/// One unified customer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomerInfo {
    /// Store id of the unified customer.
    pub id: i64,
    /// The key people use to look the customer up (first identity seen, `ns:value`).
    pub key: String,
    /// Typed attributes, by name.
    pub attributes: BTreeMap<String, AttrValue>,
}

/// One product of the catalogue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProductInfo {
    /// Store id of the product.
    pub id: i64,
    /// The product's external key.
    pub key: String,
    /// Display name.
    pub name: Option<String>,
    /// Category (department, genre, …).
    pub category: Option<String>,
    /// List price.
    pub price: Option<f64>,
}

/// One order (basket) with its totals.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderFact {
    /// Store id of the order.
    pub id: i64,
    /// Unified customer id.
    pub customer: i64,
    /// Order time (Unix seconds); `None` when the source had none.
    pub time: Option<i64>,
    /// Total amount paid (sum of lines when the order came from order lines).
    pub amount: f64,
    /// Total discount given.
    pub discount: f64,
}

/// One order line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LineFact {
    /// Store id of the order the line belongs to.
    pub order: i64,
    /// Unified customer id.
    pub customer: i64,
    /// Store id of the product.
    pub product: Option<i64>,
    /// Quantity.
    pub quantity: f64,
    /// Amount paid for the line.
    pub amount: f64,
    /// Discount on the line (all kinds summed, positive = money off).
    pub discount: f64,
    /// Line time (Unix seconds).
    pub time: Option<i64>,
}

/// One behavioural event (view, click, cart, rating, any named type).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventFact {
    /// Unified customer id.
    pub customer: i64,
    /// Event type, lower-case (`view`, `click`, `cart`, `rating`, …).
    pub kind: String,
    /// Product the event is about.
    pub product: Option<i64>,
    /// A value carried by the event (the rating for `rating`).
    pub value: Option<f64>,
    /// Channel (`web`, `app`, `store`, …).
    pub channel: Option<String>,
    /// Event time (Unix seconds).
    pub time: Option<i64>,
}

/// One piece of feedback: survey answer, review, support ticket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeedbackFact {
    /// Unified customer id.
    pub customer: i64,
    /// `survey`, `review`, `ticket` or another label from the source.
    pub kind: String,
    /// Numeric score when there is one.
    pub score: Option<f64>,
    /// Free text.
    pub text: Option<String>,
    /// Channel.
    pub channel: Option<String>,
    /// Time (Unix seconds).
    pub time: Option<i64>,
}

/// A campaign.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CampaignInfo {
    /// Store id.
    pub id: i64,
    /// External key.
    pub key: String,
    /// Display name.
    pub name: Option<String>,
    /// Campaign type.
    pub kind: Option<String>,
    /// Start (Unix seconds).
    pub start: Option<i64>,
    /// End (Unix seconds).
    pub end: Option<i64>,
}

/// A customer's contact with a campaign (exposure or redemption).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CampaignFact {
    /// Unified customer id.
    pub customer: i64,
    /// Store id of the campaign.
    pub campaign: i64,
    /// Time of the contact (Unix seconds), when known.
    pub time: Option<i64>,
}

/// Everything the models need, loaded once from the store.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Dataset {
    /// Unified customers.
    pub customers: Vec<CustomerInfo>,
    /// Product catalogue (every product referenced by a fact is present).
    pub products: Vec<ProductInfo>,
    /// Orders.
    pub orders: Vec<OrderFact>,
    /// Order lines.
    pub lines: Vec<LineFact>,
    /// Events, ratings included (`kind == "rating"`, `value` = the rating).
    pub events: Vec<EventFact>,
    /// Feedback.
    pub feedback: Vec<FeedbackFact>,
    /// Campaigns.
    pub campaigns: Vec<CampaignInfo>,
    /// Campaign exposures (customer received the campaign).
    pub exposures: Vec<CampaignFact>,
    /// Campaign redemptions.
    pub redemptions: Vec<CampaignFact>,
}

impl Dataset {
    /// Position of each customer in [`Dataset::customers`], by store id: the
    /// one lookup every per-customer aggregation needs.
    pub fn customer_index(&self) -> std::collections::HashMap<i64, usize> {
        self.customers
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id, i))
            .collect()
    }

    /// The latest fact time in the data set (orders, lines, events, feedback), if any.
    pub fn max_time(&self) -> Option<i64> {
        let o = self.orders.iter().filter_map(|o| o.time);
        let l = self.lines.iter().filter_map(|l| l.time);
        let e = self.events.iter().filter_map(|e| e.time);
        let f = self.feedback.iter().filter_map(|f| f.time);
        o.chain(l).chain(e).chain(f).max()
    }
}
