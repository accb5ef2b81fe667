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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerInfo {
    /// Store id of the unified customer.
    pub id: i64,
    /// The key people use to look the customer up (first identity seen, `ns:value`).
    pub key: String,
    /// Typed attributes, by name.
    pub attributes: BTreeMap<String, AttrValue>,
}

/// One product of the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignFact {
    /// Unified customer id.
    pub customer: i64,
    /// Store id of the campaign.
    pub campaign: i64,
    /// Time of the contact (Unix seconds), when known.
    pub time: Option<i64>,
}

/// Everything the models need, loaded once from the store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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

/// A map from store ids to small values (positions, other ids): a dense
/// table when the ids are dense, as the writer numbers them, else a hash
/// map. A lookup per fact row over millions of rows is the hot loop of every
/// aggregation; the dense table makes it an array read.
#[derive(Debug, Clone, Default)]
pub struct IdIndex {
    base: i64,
    dense: Vec<i64>,
    sparse: std::collections::HashMap<i64, i64>,
}

impl IdIndex {
    const NONE: i64 = i64::MIN;

    /// Builds the index from `(id, value)` pairs (values other than `i64::MIN`).
    pub fn new(pairs: impl Iterator<Item = (i64, i64)> + Clone) -> IdIndex {
        let (mut lo, mut hi, mut n) = (i64::MAX, i64::MIN, 0usize);
        for (k, _) in pairs.clone() {
            lo = lo.min(k);
            hi = hi.max(k);
            n += 1;
        }
        let span = hi.checked_sub(lo).and_then(|s| usize::try_from(s).ok());
        match span {
            Some(span) if n > 0 && span < 4 * n + 1024 => {
                let mut dense = vec![Self::NONE; span + 1];
                for (k, v) in pairs {
                    if let Ok(ix) = usize::try_from(k - lo) {
                        dense[ix] = v;
                    }
                }
                IdIndex {
                    base: lo,
                    dense,
                    sparse: Default::default(),
                }
            }
            _ => IdIndex {
                base: 0,
                dense: Vec::new(),
                sparse: pairs.collect(),
            },
        }
    }

    /// Positions of a list by the ids `id` gives.
    pub fn positions<T>(rows: &[T], id: impl Fn(&T) -> i64) -> IdIndex {
        IdIndex::new(rows.iter().enumerate().map(|(i, r)| (id(r), i as i64)))
    }

    /// The value of `k`.
    #[inline]
    pub fn get(&self, k: i64) -> Option<i64> {
        if self.dense.is_empty() {
            return self.sparse.get(&k).copied();
        }
        let ix = usize::try_from(k.checked_sub(self.base)?).ok()?;
        self.dense.get(ix).copied().filter(|v| *v != Self::NONE)
    }

    /// The value of `k` as a position.
    #[inline]
    pub fn pos(&self, k: i64) -> Option<usize> {
        self.get(k).and_then(|v| usize::try_from(v).ok())
    }

    /// Whether this is the dense form (for tests).
    pub fn is_dense(&self) -> bool {
        !self.dense.is_empty()
    }
}

impl Dataset {
    /// Position of each customer in [`Dataset::customers`], by store id: the
    /// one lookup every per-customer aggregation needs.
    pub fn customer_index(&self) -> IdIndex {
        IdIndex::positions(&self.customers, |c| c.id)
    }

    /// Bytes this data set holds on the heap (vectors at their capacity,
    /// strings, attribute maps at an estimated 64 bytes of node overhead per
    /// entry): what a process pays to hold it.
    pub fn heap_bytes(&self) -> u64 {
        fn vec<T>(v: &Vec<T>) -> u64 {
            (v.capacity() * std::mem::size_of::<T>()) as u64
        }
        fn s(x: &str) -> u64 {
            x.len() as u64
        }
        fn os(x: &Option<String>) -> u64 {
            x.as_deref().map_or(0, s)
        }
        let customers: u64 = self
            .customers
            .iter()
            .map(|c| {
                s(&c.key)
                    + c.attributes
                        .iter()
                        .map(|(k, v)| {
                            64 + s(k)
                                + std::mem::size_of::<AttrValue>() as u64
                                + match v {
                                    AttrValue::Text(t) => s(t),
                                    _ => 0,
                                }
                        })
                        .sum::<u64>()
            })
            .sum();
        let products: u64 = self
            .products
            .iter()
            .map(|p| s(&p.key) + os(&p.name) + os(&p.category))
            .sum();
        let events: u64 = self
            .events
            .iter()
            .map(|e| s(&e.kind) + os(&e.channel))
            .sum();
        let feedback: u64 = self
            .feedback
            .iter()
            .map(|f| s(&f.kind) + os(&f.text) + os(&f.channel))
            .sum();
        let campaigns: u64 = self
            .campaigns
            .iter()
            .map(|c| s(&c.key) + os(&c.name) + os(&c.kind))
            .sum();
        vec(&self.customers)
            + customers
            + vec(&self.products)
            + products
            + vec(&self.orders)
            + vec(&self.lines)
            + vec(&self.events)
            + events
            + vec(&self.feedback)
            + feedback
            + vec(&self.campaigns)
            + campaigns
            + vec(&self.exposures)
            + vec(&self.redemptions)
    }

    /// The size of the facts as plain columns: every id, time and amount as
    /// an 8-byte value (lines: order, customer, product, quantity, amount,
    /// discount, time; orders: id, customer, time, amount, discount; events:
    /// customer, product, value, time; feedback: customer, score, time;
    /// contacts: customer, campaign, time; customers and products: their id),
    /// plus the bytes of their texts. The yardstick for [`Dataset::heap_bytes`].
    pub fn raw_column_bytes(&self) -> u64 {
        let n = |len: usize, cols: u64| len as u64 * cols * 8;
        let text: u64 = self
            .customers
            .iter()
            .map(|c| c.key.len() as u64)
            .sum::<u64>()
            + self
                .products
                .iter()
                .map(|p| {
                    (p.key.len()
                        + p.name.as_ref().map_or(0, String::len)
                        + p.category.as_ref().map_or(0, String::len)) as u64
                })
                .sum::<u64>()
            + self
                .feedback
                .iter()
                .map(|f| f.text.as_ref().map_or(0, String::len) as u64)
                .sum::<u64>();
        n(self.lines.len(), 7)
            + n(self.orders.len(), 5)
            + n(self.events.len(), 4)
            + n(self.feedback.len(), 3)
            + n(self.exposures.len() + self.redemptions.len(), 3)
            + n(self.customers.len(), 1)
            + n(self.products.len(), 2)
            + text
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

#[cfg(test)]
mod tests {
    use super::IdIndex;

    #[test]
    fn id_index_dense_and_sparse() {
        let m = IdIndex::new([(10, 1), (11, 2), (13, 3)].into_iter());
        assert!(m.is_dense());
        assert_eq!(
            (m.get(10), m.get(12), m.get(13), m.get(9), m.get(i64::MIN)),
            (Some(1), None, Some(3), None, None)
        );
        let s = IdIndex::new([(1, 1), (1 << 40, 2)].into_iter());
        assert!(!s.is_dense());
        assert_eq!(
            (s.get(1 << 40), s.pos(1), s.get(2)),
            (Some(2), Some(1), None)
        );
        assert_eq!(IdIndex::new(std::iter::empty()).get(0), None);
    }
}
