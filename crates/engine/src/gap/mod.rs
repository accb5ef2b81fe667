//! The information gap (信息差): what each department does not know, what
//! the business does not know about each customer, and what to ask next.
//!
//! Why in the engine: every measurement here reads customer data and is
//! shaped by the policy like any other output (the acting principal, its
//! department, its field classes), and is audited. The pure algorithms
//! (active feature acquisition) live in `infogap_models::acquire`.
//!
//! - [`departments`]: holdings, visibility matrix and decision quality per
//!   department vs the unified view (`gap departments`).
//! - [`knowledge`]: per-customer knowledge profile, staleness, conflicts,
//!   `knowledge_score`, its backtest against realized prediction errors,
//!   and the customer's side of the gap (`gap customer`, `gap`).
//! - [`ask`]: the per-customer question queue (`gap ask-next`).

pub mod ask;
pub mod departments;
pub mod knowledge;

use infogap_core::access::FieldClass;
use infogap_core::dataset::{EventFact, FeedbackFact};
use serde::Serialize;

use crate::access::Policy;

/// Kinds of information about a customer (the knowledge dimensions, plus
/// campaign contacts for the department matrix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Emails, phones, names.
    Contact,
    /// Age, income, region, plan, … (attributes).
    Demographics,
    /// Orders and non-product events (logins, visits).
    Behaviour,
    /// Ratings, product views and carts, redemptions, stated interests.
    Preferences,
    /// Surveys, reviews, tickets.
    NeedsFeedback,
    /// Consent records.
    Consent,
    /// Campaigns received or redeemed.
    Campaigns,
}

impl Kind {
    /// Every kind, in report order.
    pub fn all() -> [Kind; 7] {
        let [a, b, c, d, e, f] = Kind::dimensions();
        [a, b, c, d, e, f, Kind::Campaigns]
    }

    /// The six dimensions of a customer's knowledge profile.
    pub fn dimensions() -> [Kind; 6] {
        [
            Kind::Contact,
            Kind::Demographics,
            Kind::Behaviour,
            Kind::Preferences,
            Kind::NeedsFeedback,
            Kind::Consent,
        ]
    }

    /// Name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Contact => "contact",
            Kind::Demographics => "demographics",
            Kind::Behaviour => "behaviour",
            Kind::Preferences => "preferences",
            Kind::NeedsFeedback => "needs_feedback",
            Kind::Consent => "consent",
            Kind::Campaigns => "campaigns",
        }
    }
}

/// The attribute a customers source records its time column under (the
/// date of that record): not a field of its own, the date of the others.
pub const RECORD_TIME: &str = "first_seen";

/// Attribute names that state a preference (a stated interest, a favourite
/// category): they belong to preferences, not demographics.
const PREFERENCE_WORDS: [&str; 5] = ["interest", "prefer", "favourite", "favorite", "like"];

/// The kind of information an attribute is: contact per the policy's
/// contact class, preferences when named like one, else demographics.
pub fn attribute_kind(policy: &Policy, name: &str) -> Kind {
    let lower = name.to_ascii_lowercase();
    if policy.attribute_class(name) == FieldClass::Contact {
        Kind::Contact
    } else if PREFERENCE_WORDS.iter().any(|w| lower.contains(w)) {
        Kind::Preferences
    } else {
        Kind::Demographics
    }
}

/// An event about a product is a preference signal; others are behaviour.
pub fn kind_of_event(e: &EventFact) -> Kind {
    if e.product.is_some() || e.kind == "rating" {
        Kind::Preferences
    } else {
        Kind::Behaviour
    }
}

/// Every piece of feedback tells needs.
pub fn kind_of_feedback(_f: &FeedbackFact) -> Kind {
    Kind::NeedsFeedback
}

/// Spearman's rank correlation (average ranks for ties); `None` with fewer
/// than 3 pairs or a constant side.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 3 {
        return None;
    }
    let ra = ranks(a);
    let rb = ranks(b);
    let n = a.len() as f64;
    let ma = ra.iter().sum::<f64>() / n;
    let mb = rb.iter().sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    (saa > 0.0 && sbb > 0.0).then(|| sab / (saa * sbb).sqrt())
}

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut r = vec![0.0; v.len()];
    let mut k = 0;
    while k < idx.len() {
        let mut m = k;
        while m + 1 < idx.len() && v[idx[m + 1]] == v[idx[k]] {
            m += 1;
        }
        let avg = (k + m) as f64 / 2.0 + 1.0;
        for &i in &idx[k..=m] {
            r[i] = avg;
        }
        k = m + 1;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_of_monotone_and_reversed_and_ties() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [10.0, 20.0, 25.0, 100.0, 1000.0];
        assert!((spearman(&a, &b).unwrap() - 1.0).abs() < 1e-12);
        let c: Vec<f64> = b.iter().map(|x| -x).collect();
        assert!((spearman(&a, &c).unwrap() + 1.0).abs() < 1e-12);
        // ties get average ranks: [1, 2.5, 2.5, 4]
        assert_eq!(ranks(&[1.0, 5.0, 5.0, 9.0]), vec![1.0, 2.5, 2.5, 4.0]);
        assert!(spearman(&a, &[1.0; 5]).is_none());
        assert!(spearman(&a[..2], &b[..2]).is_none());
    }
}
