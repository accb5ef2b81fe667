//! Consent over the API, against the running server of the shared fixture:
//! a change through `PUT …/consents` applies to the very next request
//! (segment members: marketing; recommendations: personalization) with no
//! retraining and no restart; unknown purposes are a 400 naming them; a
//! customer token changes only its own consent.
//!
//! The customers changed here are none of the fixture's named ones (A, B,
//! the guest, the department's outsider), and the security tests only ever
//! grant `analytics`, so the two do not disturb each other.

use std::time::Duration;

use serde_json::{Value, json};

use super::fixture::fixture;

struct Api {
    c: reqwest::Client,
    base: String,
}

impl Api {
    async fn send(
        &self,
        method: &str,
        path: &str,
        secret: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut b = self
            .c
            .request(m, format!("{}{path}", self.base))
            .bearer_auth(secret);
        if let Some(v) = body {
            b = b.json(&v);
        }
        let r = b.send().await.expect("a response");
        let status = r.status().as_u16();
        let text = r.text().await.expect("a body");
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(f)
}

fn ids(page: &Value) -> Vec<i64> {
    page["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["id"].as_i64().expect("an id"))
        .collect()
}

#[test]
fn consent_changes_apply_to_the_next_request_and_tokens_change_only_their_own() {
    let fx = fixture();
    let admin = fx.staff("admin").secret.clone();
    run(async {
        let api = Api {
            c: crate::http_client()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("a client"),
            base: fx.base.clone(),
        };
        let reserved = [fx.customer_a, fx.customer_b, fx.guest, fx.outside_support];
        // a member of a buying segment who granted marketing
        let (s, segs) = api.send("GET", "/v1/segments", &admin, None).await;
        assert_eq!(s, 200, "{segs}");
        let mut pick = None;
        for seg in segs["segments"].as_array().expect("segments") {
            let name = seg["name"].as_str().expect("a name").replace(' ', "-");
            if name == "no-purchases" {
                continue;
            }
            let path = format!("/v1/segments/{name}/members?limit=1000");
            let (s, page) = api.send("GET", &path, &admin, None).await;
            assert_eq!(s, 200, "{page}");
            if let Some(x) = ids(&page).into_iter().find(|x| !reserved.contains(x)) {
                pick = Some((path, page, x));
                break;
            }
        }
        let (path, page, x) = pick.expect("a segment member with marketing consent");

        // withdraw marketing: the next member list omits them, and says so
        let consents = format!("/v1/customers/{x}/consents");
        let (s, v) = api
            .send(
                "PUT",
                &consents,
                &admin,
                Some(json!({"purpose": "marketing", "granted": false})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let m = v["purposes"]
            .as_array()
            .expect("purposes")
            .iter()
            .find(|p| p["purpose"] == "marketing")
            .expect("marketing")
            .clone();
        assert_eq!(m["allowed"], false);
        assert_eq!(m["reason"], "withdrawn");
        assert_eq!(m["source"], "staff");
        let (s, after) = api.send("GET", &path, &admin, None).await;
        assert_eq!(s, 200, "{after}");
        assert!(!ids(&after).contains(&x), "withdrawn marketing: not listed");
        assert_eq!(
            after["total"].as_u64(),
            page["total"].as_u64().map(|t| t - 1)
        );
        assert_eq!(
            after["left_out"]["withdrawn"].as_u64(),
            page["left_out"]["withdrawn"].as_u64().map(|t| t + 1)
        );
        assert_eq!(after["left_out"]["purpose"], "marketing");

        // withdraw personalization: the labelled popular list, then personal again
        let recs = format!("/v1/customers/{x}/recommendations?k=5");
        let (s, personal) = api.send("GET", &recs, &admin, None).await;
        assert_eq!(s, 200, "{personal}");
        let (s, _) = api
            .send(
                "PUT",
                &consents,
                &admin,
                Some(json!({"purpose": "personalization", "granted": false})),
            )
            .await;
        assert_eq!(s, 200);
        let (s, popular) = api.send("GET", &recs, &admin, None).await;
        assert_eq!(s, 200, "{popular}");
        assert_eq!(popular["personalized"], false);
        assert_eq!(popular["basis"], "popular");
        assert_eq!(popular["reason"], "consent personalization withdrawn");
        assert_eq!(popular["history_items"], 0);
        let (s, _) = api
            .send(
                "PUT",
                &consents,
                &admin,
                Some(json!({"purpose": "personalization", "granted": true})),
            )
            .await;
        assert_eq!(s, 200);
        let (s, back) = api.send("GET", &recs, &admin, None).await;
        assert_eq!(s, 200, "{back}");
        assert_eq!(back["personalized"], personal["personalized"]);
        assert_eq!(back["items"], personal["items"]);
        assert!(back.get("reason").is_none(), "{back}");
        assert_eq!(
            back["model_version"], personal["model_version"],
            "no retraining"
        );

        // the history has every change, in order
        let (s, v) = api.send("GET", &consents, &admin, None).await;
        assert_eq!(s, 200, "{v}");
        let changes: Vec<(String, bool)> = v["history"]
            .as_array()
            .expect("history")
            .iter()
            .filter(|h| h["source"] == "staff")
            .map(|h| {
                (
                    h["purpose"].as_str().expect("purpose").to_string(),
                    h["granted"].as_bool().expect("granted"),
                )
            })
            .collect();
        assert_eq!(
            changes,
            vec![
                ("marketing".to_string(), false),
                ("personalization".to_string(), false),
                ("personalization".to_string(), true),
            ]
        );

        // an unknown purpose: 400 naming it and the known ones
        let (s, v) = api
            .send(
                "PUT",
                &consents,
                &admin,
                Some(json!({"purpose": "telepathy", "granted": true})),
            )
            .await;
        assert_eq!(s, 400, "{v}");
        let msg = v["message"].as_str().expect("a message");
        assert!(
            msg.contains("telepathy") && msg.contains("marketing"),
            "{msg}"
        );

        // a customer token: its own consent only
        let tok = &fx.token_a.secret;
        let (s, v) = api
            .send(
                "PUT",
                &consents,
                tok,
                Some(json!({"purpose": "personalization", "granted": true})),
            )
            .await;
        assert_eq!(s, 403, "{v}");
        let (s, v) = api
            .send(
                "PUT",
                "/v1/me/consents",
                tok,
                Some(json!({"purpose": "personalization", "granted": true})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["customer"].as_i64(), Some(fx.customer_a));
        let last = v["history"]
            .as_array()
            .expect("history")
            .last()
            .expect("a row")
            .clone();
        assert_eq!(last["source"], "self-service");
        let (s, v) = api.send("GET", "/v1/me/consents", tok, None).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["customer"].as_i64(), Some(fx.customer_a));
        // staff without consents.read: refused
        let (s, _) = api
            .send("GET", &consents, &fx.staff("analyst").secret, None)
            .await;
        assert_eq!(s, 403);
    });
}
