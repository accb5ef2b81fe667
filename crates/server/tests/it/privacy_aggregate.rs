//! Aggregates that leave the analyst role, over HTTP: `/v1/segments` for a
//! marketing key never shows a segment under `[privacy] min_group_size`
//! and says how it was protected; admin sees exact sizes; the analyst's
//! member lists carry pseudonyms that no customer route accepts.

use std::time::Duration;

use serde_json::Value;

use super::fixture::fixture;

fn get(base: &str, path: &str, secret: &str) -> (u16, Value) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(async {
            let r = crate::http_client()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("a client")
                .get(format!("{base}{path}"))
                .bearer_auth(secret)
                .send()
                .await
                .expect("a response");
            let status = r.status().as_u16();
            let text = r.text().await.expect("a body");
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        })
}

fn sizes(v: &Value) -> Vec<(String, u64)> {
    v["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("name").to_string(),
                s["size"].as_u64().expect("size"),
            )
        })
        .collect()
}

#[test]
fn segments_for_a_marketing_key_hide_small_groups_and_admin_sees_exact_sizes() {
    let fx = fixture();
    let (st, admin) = get(&fx.base, "/v1/segments", &fx.staff("admin").secret);
    assert_eq!(st, 200, "{admin}");
    assert_eq!(admin["privacy"]["exact"], true, "{admin}");
    let exact = sizes(&admin);
    let (st, m) = get(&fx.base, "/v1/segments", &fx.staff("marketing").secret);
    assert_eq!(st, 200, "{m}");
    let p = &m["privacy"];
    assert_eq!(p["exact"], false, "{m}");
    let min = p["min_group_size"].as_u64().expect("min_group_size");
    assert!(min >= 1);
    assert!(p["note"].as_str().is_some_and(|n| !n.is_empty()), "{p}");
    let shown = sizes(&m);
    for (name, n) in &shown {
        assert!(*n >= min, "marketing sees {name} of size {n} < {min}");
    }
    // each exact segment is shown as is, or merged (named in the note)
    let merged: Vec<&str> = p["merged"]
        .as_array()
        .expect("merged")
        .iter()
        .filter_map(|x| x.as_str())
        .collect();
    for (name, n) in &exact {
        if *n < min {
            assert!(
                merged.contains(&name.as_str()),
                "{name} ({n}) not merged: {p}"
            );
            assert!(shown.iter().all(|(s, _)| s != name));
        } else {
            assert!(
                shown.contains(&(name.clone(), *n)),
                "{name} changed: {shown:?}"
            );
        }
    }
    // stats tell the same
    let (st, stats) = get(&fx.base, "/v1/stats", &fx.staff("marketing").secret);
    assert_eq!(st, 200, "{stats}");
    assert_eq!(stats["privacy"]["exact"], false, "{stats}");
    for s in stats["stats"]["sources"].as_array().expect("sources") {
        assert!(s["rows"].as_u64().expect("rows") >= min, "{s}");
    }
}

#[test]
fn the_analysts_members_are_pseudonyms_no_customer_route_accepts() {
    let fx = fixture();
    let analyst = &fx.staff("analyst").secret;
    let (_, segs) = get(&fx.base, "/v1/segments", analyst);
    let name = segs["segments"][0]["name"]
        .as_str()
        .expect("a segment")
        .replace(' ', "-");
    let (st, page) = get(
        &fx.base,
        &format!("/v1/segments/{name}/members?limit=1000"),
        analyst,
    );
    assert_eq!(st, 200, "{page}");
    assert_eq!(page["pseudonymized"], true, "{page}");
    let members = page["members"].as_array().expect("members");
    let (_, again) = get(
        &fx.base,
        &format!("/v1/segments/{name}/members?limit=1000"),
        analyst,
    );
    assert_eq!(page["members"], again["members"], "pseudonyms are stable");
    let Some(first) = members.first() else {
        return;
    };
    assert!(first.get("id").is_none(), "{first}");
    let p = first["key"].as_str().expect("key");
    assert!(p.starts_with("p_"), "{p}");
    for path in [
        format!("/v1/customers/{p}"),
        format!("/v1/customers/{}", &p[2..]),
    ] {
        let (st, body) = get(&fx.base, &path, analyst);
        assert!(st == 400 || st == 404, "{path}: {st} {body}");
    }
}
