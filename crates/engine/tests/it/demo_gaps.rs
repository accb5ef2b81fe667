//! The demo's planted information gaps, checked against its ground truth:
//! a churn driver (`plan`) the CRM records for only part of its customers,
//! demographics the CRM leaves blank for some, a web profile form that
//! contradicts the CRM now and then, and a preferences survey.

use std::collections::{HashMap, HashSet};

use infogap_testkit::csv_rows;

use crate::imported;

fn col<'a>(row: &'a HashMap<String, String>, name: &str) -> &'a str {
    row.get(name)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no column {name}"))
}

fn frac(num: usize, den: usize) -> f64 {
    assert!(den > 0);
    num as f64 / den as f64
}

#[test]
fn planted_plan_demographic_gaps_and_conflicts_are_in_the_files() {
    for (n, seed) in [(1000, 7), (400, 11)] {
        let fx = infogap_testkit::demo(n, seed);
        let dir = fx.config.parent().expect("dir").to_path_buf();
        let persons = infogap_testkit::truth_persons(&dir);
        assert_eq!(persons.len(), n);
        let in_crm: Vec<&HashMap<String, String>> = persons
            .iter()
            .filter(|p| !col(p, "crm_id").is_empty())
            .collect();

        // the plan: known to the CRM for ~60% of its customers, nobody else
        let known = in_crm
            .iter()
            .filter(|p| col(p, "plan_known") == "1")
            .count();
        let r = frac(known, in_crm.len());
        assert!((0.55..=0.65).contains(&r), "n={n}: plan known for {r}");
        assert!(
            persons
                .iter()
                .all(|p| col(p, "crm_id").is_empty() <= (col(p, "plan_known") == "0")),
            "plan known outside the CRM"
        );
        let monthly = persons
            .iter()
            .filter(|p| col(p, "plan") == "monthly")
            .count();
        let r = frac(monthly, n);
        assert!((0.42..=0.58).contains(&r), "n={n}: monthly share {r}");
        assert!(
            persons
                .iter()
                .all(|p| ["monthly", "annual"].contains(&col(p, "plan")))
        );

        // ...and it drives churn
        let churn_rate = |plan: &str| {
            let group: Vec<_> = persons.iter().filter(|p| col(p, "plan") == plan).collect();
            frac(
                group.iter().filter(|p| col(p, "churned") == "1").count(),
                group.len(),
            )
        };
        let (m, a) = (churn_rate("monthly"), churn_rate("annual"));
        assert!(m >= 2.0 * a, "n={n}: churn monthly {m} vs annual {a}");

        // the CRM file: plan as the truth says, demographics blank for ~40%
        let crm = csv_rows(&dir.join("crm/customers.csv"));
        assert_eq!(crm.len(), in_crm.len());
        let by_crm: HashMap<&str, &HashMap<String, String>> =
            in_crm.iter().map(|p| (col(p, "crm_id"), *p)).collect();
        let mut blank = 0;
        let mut blank_and_plan = 0;
        for row in &crm {
            let p = by_crm[col(row, "customer_id")];
            if col(p, "plan_known") == "1" {
                assert_eq!(col(row, "plan"), col(p, "plan"));
            } else {
                assert_eq!(col(row, "plan"), "");
            }
            let empty: Vec<bool> = ["age_band", "income_band", "region"]
                .iter()
                .map(|c| col(row, c).is_empty())
                .collect();
            assert!(empty.iter().all(|&e| e == empty[0]), "{row:?}");
            assert_eq!(empty[0], col(p, "demographics_known") == "0");
            if empty[0] {
                blank += 1;
                blank_and_plan += usize::from(col(p, "plan_known") == "1");
            } else {
                assert_eq!(col(row, "age_band"), col(p, "age_band"));
                assert_eq!(col(row, "income_band"), col(p, "income_band"));
                assert_eq!(col(row, "region"), col(p, "region"));
            }
        }
        let r = frac(blank, crm.len());
        assert!(
            (0.33..=0.47).contains(&r),
            "n={n}: demographics blank for {r}"
        );
        // independent of the plan's blanks: the plan is known for ~60% of both
        let r = frac(blank_and_plan, blank);
        assert!((0.48..=0.72).contains(&r), "n={n}: {r}");

        // web profiles: ~50% of web users, the planted conflicts really wrong
        let profiles = csv_rows(&dir.join("web/profiles.csv"));
        let web_users = persons
            .iter()
            .filter(|p| !col(p, "web_id").is_empty())
            .count();
        let r = frac(profiles.len(), web_users);
        assert!((0.42..=0.58).contains(&r), "n={n}: web profiles for {r}");
        assert_eq!(
            profiles.len(),
            persons
                .iter()
                .filter(|p| col(p, "web_profile") == "1")
                .count()
        );
        let profile_of: HashMap<&str, &HashMap<String, String>> =
            profiles.iter().map(|r| (col(r, "web_user"), r)).collect();
        let conflicts = csv_rows(&dir.join("truth/conflicts.csv"));
        let r = frac(conflicts.len(), profiles.len());
        assert!(
            (0.09..=0.21).contains(&r),
            "n={n}: conflicts in {r} of profiles"
        );
        let mut wrong: HashSet<(usize, String)> = HashSet::new();
        for c in &conflicts {
            let pid: usize = col(c, "person").parse().expect("person");
            let p = &persons[pid];
            assert_eq!(col(p, "person"), col(c, "person"));
            let attr = col(c, "attribute");
            assert_ne!(col(c, "value"), col(c, "true_value"), "{c:?}");
            assert_eq!(col(c, "true_value"), col(p, attr), "{c:?}");
            let held = match col(c, "source") {
                "web_profiles" => col(profile_of[col(p, "web_id")], attr),
                "crm" => col(
                    crm.iter()
                        .find(|r| col(r, "customer_id") == col(p, "crm_id"))
                        .expect("crm row"),
                    attr,
                ),
                other => panic!("conflict in an unexpected source {other}"),
            };
            assert_eq!(held, col(c, "value"), "{c:?}");
            assert!(wrong.insert((pid, attr.to_string())), "twice: {c:?}");
        }
        // every other profile value is the true one
        for p in persons.iter().filter(|p| col(p, "web_profile") == "1") {
            let pid: usize = col(p, "person").parse().expect("person");
            let row = profile_of[col(p, "web_id")];
            for attr in ["age_band", "region"] {
                if !wrong.contains(&(pid, attr.to_string())) {
                    assert_eq!(col(row, attr), col(p, attr), "person {pid} {attr}");
                }
            }
        }

        // the preferences survey: ~30% of people, mostly their first favourite
        let prefs = csv_rows(&dir.join("feedback/preferences.csv"));
        let answered: Vec<_> = persons
            .iter()
            .filter(|p| col(p, "interest_known") == "1")
            .collect();
        assert_eq!(prefs.len(), answered.len());
        let r = frac(answered.len(), n);
        assert!((0.24..=0.36).contains(&r), "n={n}: preferences from {r}");
        let first_fav = answered
            .iter()
            .filter(|p| {
                col(p, "favourite_categories").split('|').next() == Some(col(p, "interest"))
            })
            .count();
        let r = frac(first_fav, answered.len());
        assert!(r > 0.82, "n={n}: interest is the first favourite for {r}");
    }
}

#[test]
fn the_store_holds_the_plan_for_exactly_the_customers_the_crm_records_it_for() {
    let (fx, engine) = imported(400, 11);
    let dir = fx.config.parent().expect("dir").to_path_buf();
    let persons = infogap_testkit::truth_persons(&dir);
    let ds = engine.dataset().expect("dataset");
    let attrs: HashMap<i64, _> = ds.customers.iter().map(|c| (c.id, &c.attributes)).collect();
    let store = engine.store();
    let customer_of = |ns: &str, key: &str| -> i64 {
        store
            .identities_by_value(key)
            .expect("lookup")
            .iter()
            .find(|i| i.namespace == ns)
            .unwrap_or_else(|| panic!("{ns}:{key} not in the store"))
            .customer_id
    };
    let mut with_plan = HashSet::new();
    for p in &persons {
        let crm_id = col(p, "crm_id");
        let customer = if crm_id.is_empty() {
            customer_of("support", col(p, "support_id"))
        } else {
            customer_of("crm", crm_id)
        };
        let a = attrs[&customer];
        let plan = a.get("plan").map(|v| v.as_text());
        if col(p, "plan_known") == "1" {
            assert_eq!(plan.as_deref(), Some(col(p, "plan")), "{p:?}");
            with_plan.insert(customer);
        } else {
            assert_eq!(plan, None, "{p:?}");
        }
        // the answered interest reaches the same customer
        if col(p, "interest_known") == "1" {
            assert_eq!(
                a.get("interest").map(|v| v.as_text()).as_deref(),
                Some(col(p, "interest")),
                "{p:?}"
            );
        }
    }
    let known = persons
        .iter()
        .filter(|p| col(p, "plan_known") == "1")
        .count();
    assert_eq!(with_plan.len(), known);
    assert_eq!(
        ds.customers
            .iter()
            .filter(|c| c.attributes.contains_key("plan"))
            .count(),
        known
    );
}
