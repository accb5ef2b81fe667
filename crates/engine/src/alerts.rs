//! Rules and alerts: what changed between two snapshots that someone should
//! act on (`[[rule]]` in the config): churn risk crossing a threshold, a
//! negative review or a ticket from a high-value customer, a customer
//! entering or leaving a segment, a consent withdrawn, unusual activity (a
//! refund, an order far above the customer's usual).
//!
//! Why a baseline: an alert is a change, so each evaluation compares the
//! snapshot now with a compact [`Baseline`] of the last evaluated one
//! (churn probabilities, segments, order and feedback counts, withdrawn
//! consents) rather than with the previous snapshot in memory. Stored with
//! the alerts it produced, in one transaction, the baseline makes the
//! evaluation resumable: a server killed between a change and its
//! evaluation raises the alerts when it starts again, and none twice.
//! Evaluation here is pure; storing and delivering alerts is the caller's.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use infogap_core::config::RuleConfig;
use infogap_core::dataset::Dataset;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The store setting holding the rules (`[[rule]]`, as JSON).
pub const RULES_SETTING: &str = "rules";

/// What the last evaluation saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Snapshot generation it describes.
    pub generation: i64,
    /// Churn probability of each scored customer.
    pub churn: BTreeMap<i64, f64>,
    /// Segment of each customer.
    pub segments: BTreeMap<i64, String>,
    /// Highest order id seen.
    pub max_order_id: i64,
    /// Orders and their summed positive amounts per customer.
    pub orders: BTreeMap<i64, (u32, f64)>,
    /// Feedback facts per customer.
    pub feedback: BTreeMap<i64, u32>,
    /// (customer, purpose) pairs whose latest consent withdraws.
    pub withdrawn: BTreeSet<(i64, String)>,
}

/// The snapshot an evaluation looks at.
#[derive(Debug, Clone, Copy)]
pub struct Now<'a> {
    /// Snapshot generation.
    pub generation: i64,
    /// The data.
    pub ds: &'a Dataset,
    /// Churn probability per scored customer (none without a churn model).
    pub churn: Option<&'a HashMap<i64, f64>>,
    /// Segment per customer.
    pub segments: Option<&'a HashMap<i64, String>>,
    /// Customers in each top share by lifetime value: the CLV of each
    /// customer (none without a CLV model).
    pub clv: Option<&'a HashMap<i64, f64>>,
    /// Latest consent per (customer, purpose): granted?
    pub consents: &'a [(i64, String, bool)],
}

/// An alert an evaluation raises.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewAlert {
    /// The rule's name.
    pub rule: String,
    /// The rule's kind (`churn_risk`, …) or, for `unusual_activity`,
    /// `refund` / `spend_spike`.
    pub kind: String,
    /// The customer.
    pub customer: i64,
    /// What was seen (numbers and names only, no personal values).
    pub detail: serde_json::Value,
}

impl Baseline {
    /// The baseline of a snapshot.
    pub fn of(now: &Now<'_>) -> Baseline {
        let mut orders: BTreeMap<i64, (u32, f64)> = BTreeMap::new();
        let mut max_order_id = 0;
        for o in &now.ds.orders {
            max_order_id = max_order_id.max(o.id);
            let e = orders.entry(o.customer).or_default();
            e.0 += 1;
            e.1 += o.amount.max(0.0);
        }
        let mut feedback: BTreeMap<i64, u32> = BTreeMap::new();
        for f in &now.ds.feedback {
            *feedback.entry(f.customer).or_default() += 1;
        }
        Baseline {
            generation: now.generation,
            churn: now
                .churn
                .map(|c| c.iter().map(|(k, v)| (*k, *v)).collect())
                .unwrap_or_default(),
            segments: now
                .segments
                .map(|s| s.iter().map(|(k, v)| (*k, v.clone())).collect())
                .unwrap_or_default(),
            max_order_id,
            orders,
            feedback,
            withdrawn: now
                .consents
                .iter()
                .filter(|c| !c.2)
                .map(|c| (c.0, c.1.clone()))
                .collect(),
        }
    }
}

/// Why a piece of feedback is negative, if it is: a ticket or complaint;
/// a score at most `max_score` (default by the kind's scale: 6 on NPS-like
/// 0–10 surveys, 2 on 1–5 reviews and CSAT); or a text whose sentiment is
/// negative (see [`infogap_models::text`]), in English or Chinese, with or
/// without a score.
fn negative(
    kind: &str,
    score: Option<f64>,
    text: Option<&str>,
    max_score: Option<f64>,
) -> Option<&'static str> {
    let k = kind.to_ascii_lowercase();
    if k.contains("ticket") || k.contains("complaint") {
        return Some("ticket");
    }
    if let Some(s) = score.filter(|s| s.is_finite()) {
        let nps = match crate::feedback::scale_named(&k) {
            Some(scale) => scale == crate::feedback::Scale::Nps,
            None => k == "survey",
        };
        if s <= max_score.unwrap_or(if nps { 6.0 } else { 2.0 }) {
            return Some("score");
        }
    }
    text.filter(|t| crate::feedback::negative_text(t))
        .map(|_| "text")
}

/// The customers in the top `share` by lifetime value.
fn top_by_clv(clv: &HashMap<i64, f64>, share: f64) -> BTreeSet<i64> {
    let mut v: Vec<(i64, f64)> = clv.iter().map(|(k, x)| (*k, *x)).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let n = ((v.len() as f64) * share).ceil() as usize;
    v.into_iter().take(n).map(|x| x.0).collect()
}

/// The alerts of the changes from `before` to `now`, rule by rule (each
/// customer at most once per rule), and the new baseline.
pub fn evaluate(
    rules: &[RuleConfig],
    before: &Baseline,
    now: &Now<'_>,
) -> (Vec<NewAlert>, Baseline) {
    let after = Baseline::of(now);
    let mut out = Vec::new();
    for r in rules {
        let mut seen: BTreeSet<i64> = BTreeSet::new();
        let mut raise = |kind: &str, customer: i64, detail: serde_json::Value| {
            if seen.insert(customer) {
                out.push(NewAlert {
                    rule: r.name.clone(),
                    kind: kind.to_string(),
                    customer,
                    detail,
                });
            }
        };
        match r.kind.as_str() {
            "churn_risk" => {
                let t = r.threshold.unwrap_or(0.5);
                for (c, p) in &after.churn {
                    let was = before.churn.get(c).copied();
                    if *p >= t && was.is_none_or(|b| b < t) {
                        raise(
                            "churn_risk",
                            *c,
                            json!({"probability": p, "before": was, "threshold": t}),
                        );
                    }
                }
            }
            "negative_feedback" => {
                let top = match (r.top_clv_share, now.clv) {
                    (Some(share), Some(clv)) => Some(top_by_clv(clv, share)),
                    // a value rule without a CLV model cannot tell who is high-value
                    (Some(_), None) => Some(BTreeSet::new()),
                    (None, _) => None,
                };
                // the newest facts of each customer beyond what was seen
                let mut by: BTreeMap<i64, Vec<&infogap_core::dataset::FeedbackFact>> =
                    BTreeMap::new();
                for f in &now.ds.feedback {
                    by.entry(f.customer).or_default().push(f);
                }
                for (c, mut facts) in by {
                    let old = before.feedback.get(&c).copied().unwrap_or(0) as usize;
                    if facts.len() <= old || top.as_ref().is_some_and(|t| !t.contains(&c)) {
                        continue;
                    }
                    facts.sort_by_key(|f| f.time.unwrap_or(i64::MIN));
                    let fresh = &facts[old..];
                    if let Some((f, why)) = fresh.iter().rev().find_map(|f| {
                        negative(&f.kind, f.score, f.text.as_deref(), r.max_score).map(|w| (f, w))
                    }) {
                        // the sentiment score, never the text
                        let sentiment = f
                            .text
                            .as_deref()
                            .map(|t| infogap_models::text::sentiment(t).score);
                        raise(
                            "negative_feedback",
                            c,
                            json!({"feedback_kind": f.kind, "score": f.score, "reason": why, "sentiment": sentiment, "clv": now.clv.and_then(|m| m.get(&c))}),
                        );
                    }
                }
            }
            "segment_change" => {
                for (c, seg) in &after.segments {
                    let Some(was) = before.segments.get(c) else {
                        continue;
                    };
                    if was == seg {
                        continue;
                    }
                    if r.segment
                        .as_ref()
                        .is_none_or(|s| s.eq_ignore_ascii_case(was) || s.eq_ignore_ascii_case(seg))
                    {
                        raise("segment_change", *c, json!({"from": was, "to": seg}));
                    }
                }
            }
            "consent_withdrawn" => {
                for (c, purpose) in after.withdrawn.difference(&before.withdrawn) {
                    if r.purpose.as_ref().is_none_or(|p| p == purpose) {
                        raise("consent_withdrawn", *c, json!({"purpose": purpose}));
                    }
                }
            }
            "unusual_activity" => {
                let factor = r.factor.unwrap_or(3.0);
                let mut fresh: Vec<&infogap_core::dataset::OrderFact> = now
                    .ds
                    .orders
                    .iter()
                    .filter(|o| o.id > before.max_order_id)
                    .collect();
                fresh.sort_by_key(|o| o.id);
                for o in fresh {
                    if o.amount < 0.0 {
                        raise("refund", o.customer, json!({"amount": o.amount}));
                        continue;
                    }
                    if let Some(&(n, sum)) = before.orders.get(&o.customer)
                        && n >= 2
                    {
                        let mean = sum / f64::from(n);
                        if mean > 0.0 && o.amount > factor * mean {
                            raise(
                                "spend_spike",
                                o.customer,
                                json!({"amount": o.amount, "usual": mean, "factor": factor}),
                            );
                        }
                    }
                }
            }
            _ => {}
        }
    }
    (out, after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use infogap_core::dataset::{FeedbackFact, OrderFact};

    fn rule(name: &str, kind: &str) -> RuleConfig {
        RuleConfig {
            name: name.into(),
            kind: kind.into(),
            threshold: None,
            max_score: None,
            top_clv_share: None,
            segment: None,
            purpose: None,
            factor: None,
        }
    }

    fn order(id: i64, customer: i64, amount: f64) -> OrderFact {
        OrderFact {
            id,
            customer,
            time: Some(id),
            amount,
            discount: 0.0,
        }
    }

    fn fb(customer: i64, kind: &str, score: Option<f64>, time: i64) -> FeedbackFact {
        FeedbackFact {
            customer,
            kind: kind.into(),
            score,
            text: None,
            channel: None,
            time: Some(time),
        }
    }

    #[test]
    fn each_rule_fires_on_its_change_once_and_not_again() {
        let mut churn_rule = rule("risk", "churn_risk");
        churn_rule.threshold = Some(0.7);
        let mut vip = rule("vip", "negative_feedback");
        vip.top_clv_share = Some(0.5);
        let mut champions = rule("champions", "segment_change");
        champions.segment = Some("champions".into());
        let mut marketing = rule("unsubscribed", "consent_withdrawn");
        marketing.purpose = Some("marketing".into());
        let rules = vec![
            churn_rule,
            vip,
            champions,
            marketing,
            rule("odd", "unusual_activity"),
        ];

        let mut ds = Dataset {
            orders: vec![order(1, 10, 20.0), order(2, 10, 30.0), order(3, 11, 25.0)],
            feedback: vec![fb(10, "review", Some(5.0), 1)],
            ..Dataset::default()
        };
        let churn1: HashMap<i64, f64> = [(10, 0.4), (11, 0.9), (12, 0.2)].into();
        let seg1: HashMap<i64, String> = [
            (10, "champions".to_string()),
            (11, "loyal".to_string()),
            (12, "lost".to_string()),
        ]
        .into();
        let clv: HashMap<i64, f64> = [(10, 900.0), (11, 50.0), (12, 10.0), (13, 5.0)].into();
        let consents1 = vec![(10, "marketing".to_string(), true)];
        let now1 = Now {
            generation: 1,
            ds: &ds,
            churn: Some(&churn1),
            segments: Some(&seg1),
            clv: Some(&clv),
            consents: &consents1,
        };
        let base = Baseline::of(&now1);

        // the next snapshot: 10 crosses the threshold, writes a bad review and
        // leaves the champions, withdraws marketing, orders 10× the usual; 11
        // (already above) stays; 12 complains but is not high-value
        ds.orders.push(order(4, 10, 250.0));
        ds.orders.push(order(5, 11, -25.0));
        ds.feedback.push(fb(10, "review", Some(1.0), 2));
        ds.feedback.push(fb(12, "ticket", None, 3));
        let churn2: HashMap<i64, f64> = [(10, 0.75), (11, 0.95), (12, 0.3)].into();
        let seg2: HashMap<i64, String> = [
            (10, "at risk".to_string()),
            (11, "loyal".to_string()),
            (12, "lost".to_string()),
        ]
        .into();
        let consents2 = vec![
            (10, "marketing".to_string(), false),
            (11, "analytics".to_string(), false),
        ];
        let now2 = Now {
            generation: 2,
            ds: &ds,
            churn: Some(&churn2),
            segments: Some(&seg2),
            clv: Some(&clv),
            consents: &consents2,
        };
        let (alerts, after) = evaluate(&rules, &base, &now2);
        let got: Vec<(&str, &str, i64)> = alerts
            .iter()
            .map(|a| (a.rule.as_str(), a.kind.as_str(), a.customer))
            .collect();
        assert_eq!(
            got,
            vec![
                ("risk", "churn_risk", 10),
                ("vip", "negative_feedback", 10),
                ("champions", "segment_change", 10),
                ("unsubscribed", "consent_withdrawn", 10),
                ("odd", "spend_spike", 10),
                ("odd", "refund", 11),
            ]
        );
        assert_eq!(alerts[0].detail["before"], 0.4);
        assert_eq!(alerts[4].detail["usual"], 25.0);
        assert_eq!(after.generation, 2);
        // nothing changed since: nothing raised
        let (again, _) = evaluate(&rules, &after, &now2);
        assert!(again.is_empty(), "{again:?}");
        // the baseline survives storing
        let back: Baseline = serde_json::from_str(&serde_json::to_string(&after).unwrap()).unwrap();
        assert_eq!(back, after);
    }

    #[test]
    fn negative_scores_follow_the_scale_of_their_kind() {
        assert_eq!(negative("ticket", None, None, None), Some("ticket"));
        assert_eq!(
            negative("survey", Some(6.0), None, None),
            Some("score"),
            "an NPS detractor"
        );
        assert_eq!(negative("survey", Some(7.0), None, None), None);
        // the portal's kinds: an NPS detractor, a CSAT of 3 is not negative
        assert_eq!(negative("survey_nps", Some(5.0), None, None), Some("score"));
        assert_eq!(negative("survey_csat", Some(3.0), None, None), None);
        assert_eq!(negative("review", Some(2.0), None, None), Some("score"));
        assert_eq!(negative("review", Some(3.0), None, None), None);
        assert_eq!(
            negative("review", Some(3.0), None, Some(3.0)),
            Some("score")
        );
        assert_eq!(negative("review", None, None, None), None);
    }

    #[test]
    fn negative_texts_count_with_or_without_a_score() {
        // no score: the text decides, in either language
        assert_eq!(
            negative("forum", None, Some("Refund still not received"), None),
            Some("text")
        );
        assert_eq!(
            negative("forum", None, Some("没有收到退款"), None),
            Some("text")
        );
        assert_eq!(
            negative("forum", None, Some("Where is my invoice?"), None),
            None
        );
        assert_eq!(negative("forum", None, Some("物流很快，好评"), None), None);
        // a middling score with a complaint
        assert_eq!(
            negative("review", Some(3.0), Some("Item arrived damaged"), None),
            Some("text")
        );
        assert_eq!(negative("review", Some(4.0), Some("All good"), None), None);
    }

    #[test]
    fn a_complaint_without_a_score_raises_an_alert() {
        let mut vip = rule("vip", "negative_feedback");
        vip.top_clv_share = Some(0.5);
        let rules = vec![vip];
        let text = |customer: i64, kind: &str, t: &str, time: i64| FeedbackFact {
            text: Some(t.into()),
            ..fb(customer, kind, None, time)
        };
        let mut ds = Dataset {
            feedback: vec![fb(10, "review", Some(5.0), 1)],
            ..Dataset::default()
        };
        let clv: HashMap<i64, f64> = [(10, 900.0), (11, 800.0), (12, 10.0), (13, 5.0)].into();
        let base = Baseline::of(&Now {
            generation: 1,
            ds: &ds,
            churn: None,
            segments: None,
            clv: Some(&clv),
            consents: &[],
        });
        // 10 complains in a forum post (no score), 11 writes a happy one,
        // 12 complains in Chinese but is not high-value
        ds.feedback
            .push(text(10, "forum", "Support never called back", 2));
        ds.feedback
            .push(text(11, "forum", "Great service, thank you!", 3));
        ds.feedback.push(text(12, "forum", "客服一直没有回复我", 4));
        let n2 = Now {
            generation: 2,
            ds: &ds,
            churn: None,
            segments: None,
            clv: Some(&clv),
            consents: &[],
        };
        let (alerts, after) = evaluate(&rules, &base, &n2);
        let got: Vec<i64> = alerts.iter().map(|a| a.customer).collect();
        assert_eq!(got, vec![10]);
        assert_eq!(alerts[0].detail["reason"], "text");
        assert!(
            alerts[0].detail["sentiment"]
                .as_f64()
                .is_some_and(|s| s < -0.25)
        );
        assert!(
            !alerts[0].detail.to_string().contains("called back"),
            "the text never goes into an alert"
        );
        // everyone's complaint, without the value filter: 12 too (in Chinese)
        let (all, _) = evaluate(&[rule("any", "negative_feedback")], &base, &n2);
        let got: Vec<i64> = all.iter().map(|a| a.customer).collect();
        assert_eq!(got, vec![10, 12]);
        // nothing new: nothing raised
        let (again, _) = evaluate(&rules, &after, &n2);
        assert!(again.is_empty());
    }
}

/// The store setting holding the last evaluation's [`Baseline`].
pub const BASELINE_SETTING: &str = "alerts.baseline";

impl crate::Engine {
    /// The rules the last import stored (`[[rule]]`).
    pub fn rules(&self) -> Result<Vec<RuleConfig>, crate::EngineError> {
        match self.store().setting(RULES_SETTING)? {
            Some(s) => serde_json::from_str(&s)
                .map_err(|e| crate::EngineError::Invalid(format!("stored [[rule]]s: {e}"))),
            None => Ok(Vec::new()),
        }
    }

    /// Evaluates the rules on a server's snapshot against the stored
    /// baseline and stores the alerts with the new baseline, in one
    /// transaction that leaves the snapshot generation alone (a change is
    /// alerted once, even across a crash). The
    /// first evaluation of a store only records its baseline. Returns the
    /// alerts raised.
    pub fn evaluate_alerts(
        &self,
        ins: &crate::share::Insights,
    ) -> Result<Vec<NewAlert>, crate::EngineError> {
        let rules = self.rules()?;
        if rules.is_empty() {
            return Ok(Vec::new());
        }
        let before: Option<Baseline> =
            match self.store().setting(BASELINE_SETTING)? {
                Some(s) => Some(serde_json::from_str(&s).map_err(|e| {
                    crate::EngineError::Invalid(format!("stored alert baseline: {e}"))
                })?),
                None => None,
            };
        if before
            .as_ref()
            .is_some_and(|b| b.generation >= ins.generation)
        {
            return Ok(Vec::new());
        }
        let churn: Option<HashMap<i64, f64>> = ins.churn(self).ok().map(|t| {
            t.ranked
                .iter()
                .map(|r| (r.customer, r.probability))
                .collect()
        });
        let segments: Option<HashMap<i64, String>> = ins.segments().ok().map(|t| {
            t.customers
                .iter()
                .map(|c| (c.id, c.segment.clone()))
                .collect()
        });
        let clv: Option<HashMap<i64, f64>> = ins
            .clv(self)
            .ok()
            .map(|t| t.ranked.iter().map(|r| (r.customer_id, r.clv)).collect());
        let consents: Vec<(i64, String, bool)> = self
            .store()
            .latest_consents()?
            .into_iter()
            .map(|c| (c.customer_id, c.purpose, c.granted))
            .collect();
        let now = Now {
            generation: ins.generation,
            ds: &ins.ds,
            churn: churn.as_ref(),
            segments: segments.as_ref(),
            clv: clv.as_ref(),
            consents: &consents,
        };
        let (alerts, after) = match &before {
            Some(b) => evaluate(&rules, b, &now),
            None => (Vec::new(), Baseline::of(&now)),
        };
        let rows: Vec<infogap_store::NewAlertRow> = alerts
            .iter()
            .map(|a| infogap_store::NewAlertRow {
                rule: a.rule.clone(),
                kind: a.kind.clone(),
                customer_id: a.customer,
                generation: ins.generation,
                detail: a.detail.to_string(),
            })
            .collect();
        let baseline = serde_json::to_string(&after)
            .map_err(|e| crate::EngineError::Invariant(format!("alert baseline as JSON: {e}")))?;
        // alerts are not facts: stored without moving the snapshot generation
        self.store().record_alerts(&rows, &baseline)?;
        Ok(alerts)
    }
}

/// One alert as a principal may see it.
#[derive(Debug, Clone, Serialize)]
pub struct SharedAlert {
    /// Id (newest first; `before=` pages on).
    pub id: i64,
    /// The rule's name.
    pub rule: String,
    /// Kind.
    pub kind: String,
    /// Customer id.
    pub customer_id: i64,
    /// Display key, shaped by the contact class.
    pub key: String,
    /// When (RFC 3339).
    pub created_at: String,
    /// What was seen; predictions (probabilities, lifetime value) only for
    /// roles that see predictions.
    pub detail: serde_json::Value,
}

/// `GET /v1/alerts`.
#[derive(Debug, Clone, Serialize)]
pub struct SharedAlerts {
    /// Alerts, newest first.
    pub alerts: Vec<SharedAlert>,
    /// Alerts left out: customers outside the principal's department, or
    /// who do not allow profiling (churn and value alerts).
    pub left_out: usize,
    /// The policy that shaped the answer.
    pub policy: crate::access::PolicyNote,
}

impl crate::Engine {
    /// The alerts a principal may see, newest first (`before`: an alert id
    /// to page on). A department sees its customers' alerts; churn and
    /// lifetime-value alerts of someone who does not allow profiling are
    /// left out; probabilities and values only where predictions are
    /// visible. The read is audited with the customers named.
    pub fn share_alerts(
        &self,
        a: &crate::access::Access,
        ins: &crate::share::Insights,
        before: Option<i64>,
        limit: usize,
    ) -> Result<SharedAlerts, crate::EngineError> {
        let limit = limit.clamp(1, 1000);
        let shaper = AlertShaper::new(self, a, ins)?;
        let mut left_out = 0;
        let mut out = Vec::new();
        let mut cursor = before;
        // read in pages until `limit` alerts survive the filters
        'pages: loop {
            let page = self.store().alerts(cursor, limit.max(100))?;
            if page.is_empty() {
                break;
            }
            for r in page {
                cursor = Some(r.id);
                match shaper.shape(r) {
                    Shaped::Shown(x) => out.push(x),
                    Shaped::LeftOut => left_out += 1,
                    Shaped::Gone => {}
                }
                if out.len() >= limit {
                    break 'pages;
                }
            }
        }
        self.record_access(
            a,
            "alerts.read",
            out.iter().map(|x| x.customer_id).collect(),
            vec![],
        )?;
        Ok(SharedAlerts {
            alerts: out,
            left_out,
            policy: a.note(),
        })
    }
}

/// What became of one stored alert for one principal.
pub(crate) enum Shaped {
    /// Shown, shaped by the policy.
    Shown(SharedAlert),
    /// Outside the principal's department, or the person does not allow
    /// profiling (churn and feedback alerts).
    LeftOut,
    /// The person is not in the served snapshot (erased since).
    Gone,
}

/// Shapes stored alerts for one principal: the department scope, the
/// profiling consent of churn and feedback alerts, the contact class of the
/// key and the prediction class of the details. `GET /v1/alerts`, the
/// alerts page and webhook payloads all go through it.
pub(crate) struct AlertShaper<'a> {
    a: &'a crate::access::Access,
    ins: &'a crate::share::Insights,
    scope: Option<std::collections::HashSet<i64>>,
    pub(crate) consents: crate::privacy::consent::Consents,
    predictions: bool,
    index: infogap_core::dataset::IdIndex,
}

impl<'a> AlertShaper<'a> {
    pub(crate) fn new(
        engine: &crate::Engine,
        a: &'a crate::access::Access,
        ins: &'a crate::share::Insights,
    ) -> Result<AlertShaper<'a>, crate::EngineError> {
        use infogap_core::access::{FieldClass, Visibility};
        let scope = match &a.department_sources {
            Some(src) => Some(engine.store().customers_of_sources(src)?),
            None => None,
        };
        Ok(AlertShaper {
            a,
            ins,
            scope,
            consents: engine.consents()?,
            predictions: a.visibility(FieldClass::Predictions) != Visibility::Hidden,
            index: ins.ds.customer_index(),
        })
    }

    pub(crate) fn shape(&self, r: infogap_store::AlertRecord) -> Shaped {
        let c = r.customer_id;
        let profiling = matches!(r.kind.as_str(), "churn_risk" | "negative_feedback");
        if self.scope.as_ref().is_some_and(|s| !s.contains(&c))
            || (profiling
                && self
                    .consents
                    .allows(c, infogap_core::privacy::PROFILING)
                    .is_err())
        {
            return Shaped::LeftOut;
        }
        let Some(key) = self
            .index
            .pos(c)
            .map(|i| self.ins.ds.customers[i].key.as_str())
        else {
            return Shaped::Gone;
        };
        let mut detail: serde_json::Value =
            serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::Null);
        if !self.predictions
            && let Some(m) = detail.as_object_mut()
        {
            for k in ["probability", "before", "clv"] {
                m.remove(k);
            }
        }
        Shaped::Shown(SharedAlert {
            id: r.id,
            rule: r.rule,
            kind: r.kind,
            customer_id: c,
            key: crate::share::show_key(self.a, c, key),
            created_at: chrono::DateTime::from_timestamp(r.created_at, 0)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default(),
            detail,
        })
    }
}
