//! The person's export over HTTP (`GET /v1/customers/{id}/export`,
//! `GET /v1/me/export`) on the security fixture: the planted merged
//! customer's zip holds the facts of every department with provenance, the
//! earlier staff read in its access log and the CSVs match the JSON; a
//! token's own export holds only its own data; staff roles other than
//! admin, department keys and anonymous callers are refused.

use std::collections::{BTreeSet, HashMap};
use std::io::{Cursor, Read};
use std::time::Duration;

use serde_json::Value;

use super::fixture::{PLANTED, fixture};

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(f)
}

struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn get(c: &reqwest::Client, path: &str, secret: Option<&str>) -> Got {
    let mut b = c.get(format!("{}{path}", fixture().base));
    if let Some(s) = secret {
        b = b.bearer_auth(s);
    }
    let r = b.send().await.expect("a response");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.bytes().await.expect("a body").to_vec();
    Got {
        status,
        headers,
        body,
    }
}

fn unzip(bytes: &[u8]) -> HashMap<String, Vec<u8>> {
    let mut z = zip::ZipArchive::new(Cursor::new(bytes)).expect("the zip opens");
    let mut out = HashMap::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).expect("an entry");
        let mut b = Vec::new();
        f.read_to_end(&mut b).expect("an entry reads");
        out.insert(f.name().expect("a name").to_string(), b);
    }
    out
}

fn all_text(files: &HashMap<String, Vec<u8>>) -> String {
    files
        .values()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The zip of an export, checked: headers, files, CSV rows = JSON rows.
fn check_zip(g: &Got, id: i64) -> (Value, HashMap<String, Vec<u8>>) {
    assert_eq!(g.status, 200, "{}", g.text());
    assert_eq!(g.header("content-type"), "application/zip");
    assert_eq!(
        g.header("content-disposition"),
        format!("attachment; filename=\"infogap-export-{id}.zip\"")
    );
    let files = unzip(&g.body);
    let json: Value = serde_json::from_slice(&files["export.json"]).expect("export.json");
    assert_eq!(json["customer_id"], id);
    assert!(files.contains_key("README.txt"));
    let counts = json["counts"].as_object().expect("counts");
    assert!(counts.len() >= 11, "{counts:?}");
    for (name, n) in counts {
        let bytes = files
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in the zip"));
        let mut r = csv::Reader::from_reader(bytes.as_slice());
        let rows = r
            .records()
            .collect::<Result<Vec<_>, _>>()
            .expect("CSV records")
            .len();
        assert_eq!(Some(rows as u64), n.as_u64(), "{name}");
    }
    (json, files)
}

#[test]
fn the_export_holds_every_department_and_only_the_person() {
    let fx = fixture();
    run(async {
        let c = crate::http_client()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("a client");
        let admin = &fx.staff("admin").secret;
        let a = fx.customer_a;

        // a staff read first, then the export
        let r = get(&c, &format!("/v1/customers/{a}"), Some(admin)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        // B's emails, to look for in A's export
        let r = get(&c, &format!("/v1/customers/{}", fx.customer_b), Some(admin)).await;
        let b_view: Value = serde_json::from_slice(&r.body).expect("JSON");
        let b_emails: Vec<String> = b_view["identities"]
            .as_array()
            .expect("identities")
            .iter()
            .filter(|i| i["kind"] == "email")
            .map(|i| i["value"].as_str().expect("a value").to_string())
            .collect();

        let g = get(&c, &format!("/v1/customers/{a}/export"), Some(admin)).await;
        let (json, files) = check_zip(&g, a);
        let text = all_text(&files);
        // every planted value of A, from CRM, sales, surveys and support
        for v in [
            PLANTED.email,
            PLANTED.first_name,
            PLANTED.last_name,
            PLANTED.region,
            PLANTED.ticket_text,
            PLANTED.survey_text,
        ] {
            assert!(text.contains(v), "{v} is missing from A's export");
        }
        // facts of every department, each with its provenance
        let facts = &json["facts"];
        let sources_of = |table: &str| -> BTreeSet<String> {
            facts[table]
                .as_array()
                .expect("a table")
                .iter()
                .map(|r| {
                    let has_place = r["file"].as_str().is_some_and(|f| !f.is_empty())
                        || r["line"].as_i64().is_some_and(|l| l > 0);
                    assert!(has_place, "{table}: no file or line: {r}");
                    r["source"].as_str().expect("a source").to_string()
                })
                .collect()
        };
        let mut depts = BTreeSet::new();
        for t in [
            "order_lines",
            "feedback",
            "attributes",
            "events",
            "campaigns",
        ] {
            depts.extend(sources_of(t));
        }
        for d in ["crm", "sales", "surveys", "support"] {
            assert!(depts.contains(d), "no facts from {d}: {depts:?}");
        }
        assert!(
            facts["feedback"]
                .as_array()
                .expect("feedback")
                .iter()
                .any(|f| f["text"] == PLANTED.ticket_text && f["source"] == "support")
        );
        let idents = json["identities"].as_array().expect("identities");
        let id_sources: BTreeSet<&str> = idents
            .iter()
            .map(|i| i["source"].as_str().expect("a source"))
            .collect();
        assert!(id_sources.len() >= 2, "{id_sources:?}");
        assert!(!json["links"].as_array().expect("links").is_empty());
        // the planted CRM consent is in the history, with its source and file
        assert!(
            json["consent_history"]
                .as_array()
                .expect("consents")
                .iter()
                .any(|c| c["purpose"] == "marketing"
                    && c["granted"] == true
                    && c["source"] == "consents"
                    && c["file"]
                        .as_str()
                        .is_some_and(|f| f.ends_with("consents.csv"))),
            "{}",
            json["consent_history"]
        );
        // models are trained in the fixture: derived data with reasons
        assert_eq!(
            json["derived"]["churn"]["available"], true,
            "{}",
            json["derived"]
        );
        assert_eq!(json["derived"]["clv"]["available"], true);
        assert_eq!(json["derived"]["recommendations"]["available"], true);
        // the access log: admin's read, and the export itself
        let log = json["access_log"].as_array().expect("access log");
        assert!(
            log.iter()
                .any(|e| e["action"] == "customers.read" && e["actor"] == "admin-key")
        );
        assert!(
            log.iter()
                .any(|e| e["action"] == "privacy.export" && e["actor"] == "admin-key")
        );
        // nobody else's data
        assert!(!text.contains(PLANTED.guest_email));
        assert!(!b_emails.is_empty());
        for e in &b_emails {
            assert!(!text.contains(e.as_str()), "B's {e} is in A's export");
        }
        // no PII in the URL or file name
        assert!(!g.header("content-disposition").contains('@'));

        // the tokens: each its own person, nobody else's
        let g = get(&c, "/v1/me/export", Some(&fx.token_a.secret)).await;
        let (me, files) = check_zip(&g, a);
        assert_eq!(me["requested_by"]["kind"], "customer");
        let text = all_text(&files);
        assert!(text.contains(PLANTED.email) && text.contains(PLANTED.survey_text));
        assert!(!text.contains(PLANTED.guest_email));
        let g = get(&c, "/v1/me/export?format=json", Some(&fx.token_b.secret)).await;
        assert_eq!(g.status, 200, "{}", g.text());
        assert!(g.header("content-type").starts_with("application/json"));
        let me_b: Value = serde_json::from_slice(&g.body).expect("JSON");
        assert_eq!(me_b["customer_id"], fx.customer_b);
        for v in [PLANTED.email, PLANTED.ticket_text, PLANTED.guest_email] {
            assert!(!g.text().contains(v), "B's export holds {v}");
        }
        // a token cannot reach anyone's export by id, its own included
        for id in [fx.customer_b, a] {
            let r = get(
                &c,
                &format!("/v1/customers/{id}/export"),
                Some(&fx.token_a.secret),
            )
            .await;
            assert_eq!(r.status, 403, "{}", r.text());
        }

        // refused: other staff roles, a department key, no key, a bad format
        for role in ["analyst", "marketing", "sales", "support"] {
            let r = get(
                &c,
                &format!("/v1/customers/{a}/export"),
                Some(&fx.staff(role).secret),
            )
            .await;
            assert_eq!(r.status, 403, "{role}: {}", r.text());
        }
        let r = get(
            &c,
            &format!("/v1/customers/{a}/export"),
            Some(&fx.support_dept.secret),
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.text());
        let r = get(&c, "/v1/me/export", Some(admin)).await;
        assert_eq!(r.status, 403, "{}", r.text());
        for path in [
            format!("/v1/customers/{a}/export"),
            "/v1/me/export".to_string(),
        ] {
            let r = get(&c, &path, None).await;
            assert_eq!(r.status, 401, "{path}: {}", r.text());
        }
        let r = get(
            &c,
            &format!("/v1/customers/{a}/export?format=xml"),
            Some(admin),
        )
        .await;
        assert_eq!(r.status, 400, "{}", r.text());
        let r = get(&c, "/v1/customers/99999999/export", Some(admin)).await;
        assert_eq!(r.status, 404, "{}", r.text());
    });
}
