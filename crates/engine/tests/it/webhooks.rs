//! Webhook payloads through the engine: each shaped by the webhook's role
//! (a role without predictions gets no probability), only about people
//! who allow marketing (a withdrawal always travels), each alert queued
//! once per webhook (a second pass, or a webhook added later, queues
//! nothing more), signed with the secret shown at `add`, and audited as a
//! read by the webhook.

use std::collections::BTreeMap;

use infogap_core::access::{AccessConfig, Action, FieldClass, RoleConfig, Visibility};
use infogap_core::config::Delivery;
use infogap_engine::access::Policy;
use infogap_engine::share::Insights;
use infogap_engine::webhooks::{WebhookRequest, parse_secret, verify};
use infogap_store::NewAlertRow;
use infogap_store::audit::AuditFilter;
use serde_json::Value;

use crate::{admin, imported};

fn policy() -> Policy {
    let mut roles = BTreeMap::new();
    roles.insert(
        "desk".to_string(),
        RoleConfig {
            actions: Some(vec![Action::AlertsRead]),
            fields: [
                (FieldClass::Contact, Visibility::Masked),
                (FieldClass::Demographic, Visibility::Hidden),
                (FieldClass::Behaviour, Visibility::Visible),
                (FieldClass::FeedbackText, Visibility::Hidden),
                (FieldClass::Predictions, Visibility::Hidden),
            ]
            .into_iter()
            .collect(),
        },
    );
    Policy::from_config(&AccessConfig {
        roles,
        ..Default::default()
    })
}

fn add(engine: &infogap_engine::Engine, policy: &Policy, role: &str) -> (i64, Vec<u8>) {
    let w = engine
        .add_webhook(
            &admin(Action::WebhooksManage),
            policy,
            &WebhookRequest {
                url: "https://hooks.example.com/in".into(),
                events: vec!["churn.high,consent.withdrawn".into()],
                role: role.into(),
                department: None,
            },
        )
        .expect("add");
    (w.webhook.id, parse_secret(&w.secret).expect("whsec_"))
}

#[test]
fn payloads_follow_the_role_and_the_consent_and_are_queued_once() {
    let (_fx, engine) = imported(120, 21);
    let policy = policy();
    let ds = engine.dataset().expect("dataset");
    let (a, b) = (ds.customers[0].id, ds.customers[1].id);
    for (id, granted) in [(a, true), (b, false)] {
        engine
            .share_consent_change(&admin(Action::ConsentsWrite), id, "marketing", granted)
            .expect("consent");
    }
    let (desk, desk_secret) = add(&engine, &policy, "desk");
    let (mkt, _) = add(&engine, &policy, "marketing");
    let alert = |kind: &str, customer: i64, detail: &str| NewAlertRow {
        rule: kind.into(),
        kind: kind.into(),
        customer_id: customer,
        generation: 1,
        detail: detail.into(),
    };
    engine
        .store()
        .record_alerts(
            &[
                alert("churn_risk", a, r#"{"probability":0.91,"before":0.4}"#),
                alert("churn_risk", b, r#"{"probability":0.95,"before":0.3}"#),
                alert("consent_withdrawn", b, r#"{"purpose":"marketing"}"#),
                alert("segment_change", a, r#"{"from":"x","to":"y"}"#),
            ],
            "{}",
        )
        .expect("alerts");
    let ins = Insights::current(&engine).expect("insights");
    assert_eq!(
        engine.enqueue_alert_messages(&policy, &ins).expect("queue"),
        4
    );
    assert_eq!(
        engine.enqueue_alert_messages(&policy, &ins).expect("again"),
        0,
        "each alert is queued once per webhook"
    );
    let (late, _) = add(&engine, &policy, "marketing");
    assert_eq!(
        engine.enqueue_alert_messages(&policy, &ins).expect("late"),
        0
    );

    let out = engine
        .claim_messages(&Delivery::default(), 100)
        .expect("claim");
    assert_eq!(out.len(), 4, "{out:?}");
    assert!(out.iter().all(|m| m.webhook_id != late));
    let body = |w: i64, event: &str| -> Vec<Value> {
        out.iter()
            .filter(|m| m.webhook_id == w && m.event == event)
            .map(|m| serde_json::from_str(&m.body).expect("json"))
            .collect()
    };
    // churn: only the person who allows marketing; probability by role
    for (w, shown) in [(desk, false), (mkt, true)] {
        let churn = body(w, "churn.high");
        assert_eq!(churn.len(), 1, "{churn:?}");
        assert_eq!(churn[0]["data"]["alert"]["customer_id"], a);
        assert_eq!(
            churn[0]["data"]["alert"]["detail"]
                .get("probability")
                .is_some(),
            shown,
            "{}",
            churn[0]
        );
        // the withdrawal travels although marketing was withdrawn
        let w = body(w, "consent.withdrawn");
        assert_eq!(w.len(), 1);
        assert_eq!(w[0]["data"]["alert"]["customer_id"], b);
    }
    assert!(body(desk, "segment.changed").is_empty(), "not subscribed");
    assert_eq!(
        body(desk, "churn.high")[0]["data"]["policy"]["role"],
        "desk"
    );
    // signed with the secret shown at `add`
    let m = out
        .iter()
        .find(|m| m.webhook_id == desk)
        .expect("a desk message");
    let h = m.headers(1_700_000_000);
    assert_eq!(h[0].1, m.msg_id);
    assert!(
        m.msg_id.starts_with("msg_") && m.msg_id.len() == 28,
        "{}",
        m.msg_id
    );
    assert!(verify(
        &desk_secret,
        &m.msg_id,
        1_700_000_000,
        m.body.as_bytes(),
        &h[2].1
    ));
    // the payloads' reads are in the audit trail under the webhook
    let trail = engine
        .audit_sink()
        .expect("sink")
        .log()
        .records(&AuditFilter::default())
        .expect("records");
    let queued: Vec<_> = trail
        .iter()
        .filter(|r| r.entry.action == "webhooks.queue")
        .collect();
    assert!(
        queued
            .iter()
            .any(|r| r.entry.actor == format!("webhook #{desk}") && r.entry.customers.contains(&a)),
        "{queued:?}"
    );
}
