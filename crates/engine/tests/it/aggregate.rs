//! Aggregates that leave the analyst role (small groups merged or
//! suppressed, optional Laplace noise) and the analyst's pseudonymized
//! exports, on the demo store.

use std::collections::HashMap;

use infogap_core::access::Action;
use infogap_core::config::Config;
use infogap_engine::Engine;
use infogap_engine::access::{Access, Principal};
use infogap_engine::import::{ImportOptions, import};
use infogap_engine::privacy::aggregate::OTHER;
use infogap_engine::share::Insights;

/// The demo store imported with `privacy` appended to its config's
/// `[privacy]` section.
fn store_with(privacy: &str) -> (infogap_testkit::DemoFixture, Engine) {
    let fx = infogap_testkit::demo(150, 21);
    let mut text = std::fs::read_to_string(&fx.config).expect("config");
    text.push_str("\n[privacy]\n");
    text.push_str(privacy);
    text.push('\n');
    std::fs::write(&fx.config, text).expect("write config");
    let engine = Engine::open(&fx.dir.path().join("store.db")).expect("open");
    let config = Config::load(&fx.config).expect("config");
    import(&engine, &config, &ImportOptions::default()).expect("import");
    (fx, engine)
}

fn as_role(engine: &Engine, role: &str, action: Action) -> Access {
    let policy = engine.policy().expect("policy");
    engine
        .authorize(&policy, &Principal::local(Some(role)), action)
        .expect("allowed")
}

/// Exact segment sizes by name (the admin's view).
fn exact_sizes(engine: &Engine, ins: &Insights) -> HashMap<String, usize> {
    let admin = as_role(engine, "admin", Action::SegmentsRead);
    let s = engine.share_segments(&admin, ins).expect("segments");
    assert!(s.privacy.exact, "{:?}", s.privacy);
    s.segments.into_iter().map(|s| (s.name, s.size)).collect()
}

#[test]
fn marketing_never_sees_a_segment_under_the_minimum_and_admin_sees_exact_sizes() {
    let min = 20;
    let (_fx, engine) = store_with(&format!("min_group_size = {min}"));
    let ins = Insights::current(&engine).expect("insights");
    let exact = exact_sizes(&engine, &ins);
    let t = ins.segments().expect("segments");
    // the admin's sizes are the report's
    for s in &t.report.segments {
        assert_eq!(exact[&s.name], s.size, "{}", s.name);
    }
    let small: Vec<&String> = exact
        .iter()
        .filter(|(_, n)| **n < min)
        .map(|(k, _)| k)
        .collect();
    assert!(
        !small.is_empty(),
        "the demo must have segments under {min} for this test: {exact:?}"
    );
    let m = as_role(&engine, "marketing", Action::SegmentsRead);
    let shared = engine.share_segments(&m, &ins).expect("segments");
    assert!(!shared.privacy.exact);
    assert_eq!(shared.privacy.min_group_size, Some(min));
    assert!(shared.privacy.dp.is_none());
    for s in &shared.segments {
        assert!(
            s.size >= min,
            "marketing sees {} of size {} < {min}",
            s.name,
            s.size
        );
    }
    // every small segment was merged (and none of them is listed by name)
    let mut merged = shared.privacy.merged.clone();
    merged.sort();
    let mut want: Vec<String> = small.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(merged, want);
    for name in &want {
        assert!(shared.segments.iter().all(|s| &s.name != name), "{name}");
    }
    // the merged bucket holds exactly their customers, unless suppressed
    let merged_total: usize = want.iter().map(|n| exact[n]).sum();
    match shared.segments.iter().find(|s| s.name == OTHER) {
        Some(o) => {
            assert_eq!(o.size, merged_total);
            assert_eq!(shared.privacy.suppressed, 0);
        }
        None => {
            assert!(merged_total < min);
            assert_eq!(shared.privacy.suppressed, want.len());
        }
    }
    // shares are over what is shown
    let share: f64 = shared.segments.iter().map(|s| s.share).sum();
    assert!((share - 1.0).abs() < 1e-9, "{share}");
    let json = serde_json::to_value(&shared).expect("json");
    assert_eq!(json["privacy"]["min_group_size"], min);
    assert!(
        json["privacy"]["note"]
            .as_str()
            .is_some_and(|n| n.contains("merged")),
        "{json}"
    );
}

#[test]
fn a_merged_group_still_under_the_minimum_is_suppressed() {
    let (_fx, engine) = store_with("min_group_size = 100000");
    let ins = Insights::current(&engine).expect("insights");
    let n_segments = ins.segments().expect("segments").report.segments.len();
    let m = as_role(&engine, "marketing", Action::SegmentsRead);
    let shared = engine.share_segments(&m, &ins).expect("segments");
    assert!(shared.segments.is_empty(), "{:?}", shared.segments);
    assert_eq!(shared.privacy.suppressed, n_segments);
    assert_eq!(shared.customers, 0);
    assert!(shared.privacy.note.contains("suppressed"));
    // the analyst still sees every segment, exactly
    let a = as_role(&engine, "analyst", Action::SegmentsRead);
    let exact = engine.share_segments(&a, &ins).expect("segments");
    assert_eq!(exact.segments.len(), n_segments);
    assert!(exact.privacy.exact);
}

#[test]
fn differential_privacy_noises_counts_and_reports_epsilon() {
    let (_fx, engine) = store_with("min_group_size = 1\ndp_epsilon = 1.0");
    let ins = Insights::current(&engine).expect("insights");
    let exact = exact_sizes(&engine, &ins);
    let m = as_role(&engine, "marketing", Action::SegmentsRead);
    let a = engine.share_segments(&m, &ins).expect("segments");
    let b = engine.share_segments(&m, &ins).expect("segments");
    let dp = a.privacy.dp.as_ref().expect("dp note");
    assert_eq!(dp.mechanism, "laplace");
    assert_eq!(dp.epsilon, 1.0);
    // sizes and revenue share ε (sequential composition)
    assert_eq!(dp.epsilon_of("segment sizes"), Some(0.5));
    assert_eq!(dp.epsilon_of("segment revenue"), Some(0.5));
    assert_eq!(dp.statistics[0].scale, 2.0);
    let mut changed = 0;
    for s in a.segments.iter().filter(|s| s.name != OTHER) {
        let e = exact[&s.name];
        // Laplace(2): |noise| > 40 has probability e^-20
        assert!(s.size.abs_diff(e) <= 40, "{}: {} vs {e}", s.name, s.size);
        if s.size != e {
            changed += 1;
        }
    }
    // each count stays exact with probability 1 - e^(-1/4) ≈ 0.22
    assert!(changed > 0, "no count changed under DP: {:?}", a.segments);
    // fresh noise on every release
    let sizes = |s: &infogap_engine::share::SharedSegments| -> Vec<(String, usize)> {
        s.segments
            .iter()
            .map(|x| (x.name.clone(), x.size))
            .collect()
    };
    assert_ne!(sizes(&a), sizes(&b));
    let json = serde_json::to_value(&a).expect("json");
    assert_eq!(json["privacy"]["dp"]["epsilon"], 1.0);
    assert_eq!(json["privacy"]["dp"]["mechanism"], "laplace");
    // the admin still sees exact figures
    assert!(exact_sizes(&engine, &ins).values().sum::<usize>() > 0);
}

#[test]
fn stats_outside_the_analyst_role_merge_small_sources_or_withhold_under_dp() {
    let (_fx, engine) = store_with("min_group_size = 1000000");
    let stats = infogap_engine::report::stats(&engine).expect("stats");
    let ds = engine.dataset().expect("dataset");
    let m = as_role(&engine, "marketing", Action::StatsRead);
    let (v, note) =
        infogap_engine::privacy::aggregate::shared_stats(&engine, &m, stats.clone(), &ds)
            .expect("stats");
    // every source is under a million rows: all merged and suppressed
    assert_eq!(v["sources"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(note.suppressed, stats.sources.len());
    assert_eq!(v["customers"], stats.customers);
    let admin = as_role(&engine, "admin", Action::StatsRead);
    let (v, note) =
        infogap_engine::privacy::aggregate::shared_stats(&engine, &admin, stats.clone(), &ds)
            .expect("stats");
    assert!(note.exact);
    assert_eq!(
        v["sources"].as_array().map(Vec::len),
        Some(stats.sources.len())
    );

    let (_fx2, engine) = store_with("dp_epsilon = 0.5\ndp_sum_bound = 250");
    let stats = infogap_engine::report::stats(&engine).expect("stats");
    let ds = engine.dataset().expect("dataset");
    let m = as_role(&engine, "sales", Action::StatsRead);
    let (v, note) =
        infogap_engine::privacy::aggregate::shared_stats(&engine, &m, stats.clone(), &ds)
            .expect("stats");
    let dp = note.dp.expect("dp");
    assert_eq!(dp.sum_bound, 250.0);
    assert_eq!(dp.epsilon_of("customers"), Some(0.25));
    assert_eq!(dp.epsilon_of("revenue"), Some(0.25));
    // facts one person may hold any number of are withheld
    assert!(
        v.get("orders").is_none() && v.get("sources").is_none(),
        "{v}"
    );
    let c = v["customers"].as_i64().expect("customers");
    assert!(
        (c - stats.customers).abs() <= 100,
        "{c} vs {}",
        stats.customers
    );
}

#[test]
fn the_analysts_export_is_pseudonymized_and_stable() {
    let (fx, engine) = store_with("min_group_size = 5");
    let ins = Insights::current(&engine).expect("insights");
    let t = ins.segments().expect("segments");
    let seg = t
        .report
        .segments
        .iter()
        .max_by_key(|s| s.size)
        .expect("a segment")
        .name
        .clone();
    // the real ids and every identity value of the segment's customers
    let admin = as_role(&engine, "admin", Action::SegmentsExport);
    let real = engine
        .share_segment_members(&admin, &ins, &seg, None, 0)
        .expect("members");
    assert!(!real.pseudonymized);
    assert!(real.members.len() >= 5);
    let mut secrets: Vec<String> = vec![];
    for m in &real.members {
        secrets.push(m.key.clone());
        for i in engine
            .store()
            .customer_identities(m.id)
            .expect("identities")
        {
            secrets.push(i.value.clone());
            if let Some((local, _)) = i.value.split_once('@') {
                secrets.push(format!("{local}@"));
            }
        }
    }
    let analyst = as_role(&engine, "analyst", Action::SegmentsExport);
    let page = engine
        .share_segment_members(&analyst, &ins, &seg, None, 0)
        .expect("members");
    assert!(page.pseudonymized);
    assert_eq!(page.members.len(), real.members.len());
    let text = serde_json::to_string(&page).expect("json");
    for s in &secrets {
        assert!(!text.contains(s.as_str()), "{s:?} in the analyst's export");
    }
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    for m in json["members"].as_array().expect("members") {
        assert!(m.get("id").is_none(), "{m}");
        let key = m["key"].as_str().expect("key");
        assert!(key.starts_with("p_") && key.len() == 18, "{key}");
        // not a key any lookup accepts
        assert!(engine.find_customer(key, None).ok().flatten().is_none());
    }
    // stable across calls, and the same in the CSV export
    let again = engine
        .share_segment_members(&analyst, &ins, &seg, None, 0)
        .expect("members");
    let keys = |p: &infogap_engine::share::MembersPage| -> Vec<String> {
        p.members.iter().map(|m| m.key.clone()).collect()
    };
    assert_eq!(keys(&page), keys(&again));
    let mut distinct = keys(&page);
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), page.members.len());
    let out = fx.dir.path().join("analyst.csv");
    let ds = engine.dataset().expect("dataset");
    let n = infogap_engine::analytics::export_segment(
        &engine,
        &analyst,
        &ds,
        &infogap_engine::analytics::SegmentOptions::default(),
        &seg,
        &out,
    )
    .expect("export");
    assert_eq!(n.written, page.members.len());
    let csv = std::fs::read_to_string(&out).expect("csv");
    for s in &secrets {
        assert!(!csv.contains(s.as_str()), "{s:?} in the analyst's CSV");
    }
    for k in keys(&page) {
        assert!(csv.contains(&k), "{k} missing from the CSV");
    }
    // the admin's CSV still has real keys
    let out2 = fx.dir.path().join("admin.csv");
    infogap_engine::analytics::export_segment(
        &engine,
        &admin,
        &ds,
        &infogap_engine::analytics::SegmentOptions::default(),
        &seg,
        &out2,
    )
    .expect("export");
    let csv2 = std::fs::read_to_string(&out2).expect("csv");
    assert!(csv2.contains(&real.members[0].key));
    assert!(!csv2.contains("p_"));
}

#[test]
fn pseudonymization_can_be_turned_off() {
    let (_fx, engine) = store_with("pseudonymize_analyst = false");
    let ins = Insights::current(&engine).expect("insights");
    let seg = ins.segments().expect("segments").report.segments[0]
        .name
        .clone();
    let analyst = as_role(&engine, "analyst", Action::SegmentsExport);
    let page = engine
        .share_segment_members(&analyst, &ins, &seg, None, 0)
        .expect("members");
    assert!(!page.pseudonymized);
    assert!(
        page.members
            .iter()
            .all(|m| m.id > 0 && !m.key.starts_with("p_"))
    );
}
