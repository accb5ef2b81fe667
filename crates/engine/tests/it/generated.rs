//! Issue 15: property tests on generated stores. Whatever shape the data has
//! (one customer or sixty, everyone buying on one day, zero and negative order
//! amounts, refunds only, a million-unit order, no feedback or only tickets),
//! every report either comes back sound — it passed the engine's invariants:
//! finite numbers, probabilities in [0, 1], no negative expected purchases or
//! CLV — with no negative zero in any reason or segment description, or fails
//! with a user-facing error.
//! An invariant violation or a panic fails the property.

use std::fmt::Write as _;
use std::path::Path;

use infogap_core::config::Config;
use infogap_engine::import::{ImportOptions, import};
use infogap_engine::invariants::bad_text;
use infogap_engine::{Engine, EngineError};
use proptest::prelude::*;

/// One generated customer.
#[derive(Debug, Clone)]
struct Customer {
    /// Orders: (day offset, amount kind, product, quantity).
    orders: Vec<(u16, u8, u8, u8)>,
    /// Survey scores 1..=5.
    surveys: Vec<u8>,
    /// Support tickets.
    tickets: u8,
    /// Age band index (3 = missing).
    band: u8,
}

#[derive(Debug, Clone)]
struct Spec {
    customers: Vec<Customer>,
    /// Days the orders spread over (0: everything on one day).
    span: u16,
}

fn customer(span: u16) -> impl Strategy<Value = Customer> {
    (
        prop::collection::vec((0..=span, 0u8..8, 0u8..6, 1u8..4), 0..10),
        prop::collection::vec(1u8..=5, 0..3),
        0u8..3,
        0u8..4,
    )
        .prop_map(|(orders, surveys, tickets, band)| Customer {
            orders,
            surveys,
            tickets,
            band,
        })
}

fn spec() -> impl Strategy<Value = Spec> {
    // mostly long spans (where every model can be trained), sometimes a
    // month, a day or a single day for everything
    prop_oneof![1 => Just(0u16), 1 => Just(1), 2 => Just(30), 5 => Just(400)].prop_flat_map(
        |span| {
            prop::collection::vec(customer(span), 1..60)
                .prop_map(move |customers| Spec { customers, span })
        },
    )
}

/// A line amount of each kind: zero, a cent, a refund, ordinary, large.
fn amount(kind: u8, i: usize) -> String {
    match kind {
        0 => "0".into(),
        1 => "0.01".into(),
        2 => "-12.5".into(),
        3 => "1000000".into(),
        _ => format!("{}.{:02}", 5 + (i * 37) % 300, i % 100),
    }
}

const DAY0: i64 = 1_700_000_000 - 1_700_000_000 % 86_400;

fn date(day: i64) -> String {
    infogap_engine::clv::day_to_date(DAY0 / 86_400 + day)
}

/// Writes the spec as a sources config with CSV files.
fn write(dir: &Path, s: &Spec) -> std::path::PathBuf {
    let mut customers = String::from("customer_id,age_band,signup\n");
    let mut lines = String::from("order_no,customer_ref,sku,qty,line_total,ordered_at\n");
    let mut feedback = String::from("customer_id,type,score,at\n");
    let mut products = String::from("sku,title,category\n");
    for p in 0..6 {
        let _ = writeln!(
            products,
            "P{p},Product {p},{}",
            ["books", "toys", "food"][p % 3]
        );
    }
    let mut order = 0;
    for (c, cu) in s.customers.iter().enumerate() {
        let band = ["18-29", "30-49", "50+", ""][usize::from(cu.band)];
        let _ = writeln!(customers, "C{c},{band},{}", date(0));
        for (i, &(day, kind, product, qty)) in cu.orders.iter().enumerate() {
            order += 1;
            let _ = writeln!(
                lines,
                "O{order},C{c},P{product},{qty},{},{}",
                amount(kind, order + i),
                date(i64::from(day))
            );
        }
        for (i, &score) in cu.surveys.iter().enumerate() {
            let _ = writeln!(
                feedback,
                "C{c},survey,{score},{}",
                date(i64::from(s.span) * i as i64 / 3)
            );
        }
        for i in 0..cu.tickets {
            let _ = writeln!(
                feedback,
                "C{c},ticket,,{}",
                date(i64::from(s.span) / 2 + i64::from(i))
            );
        }
    }
    for (name, text) in [
        ("customers.csv", customers),
        ("lines.csv", lines),
        ("feedback.csv", feedback),
        ("products.csv", products),
    ] {
        std::fs::write(dir.join(name), text).expect("write");
    }
    let config = r#"
[[source]]
name = "crm"
file = "customers.csv"
kind = "customers"
[source.columns]
customer = "customer_id"
time = "signup"
[source.attributes]
age_band = "age_band"

[[source]]
name = "catalog"
file = "products.csv"
kind = "products"
[source.columns]
product = "sku"
name = "title"
category = "category"

[[source]]
name = "sales"
file = "lines.csv"
kind = "order_lines"
namespace = "crm"
[source.columns]
order = "order_no"
customer = "customer_ref"
product = "sku"
quantity = "qty"
amount = "line_total"
time = "ordered_at"

[[source]]
name = "support"
file = "feedback.csv"
kind = "feedback"
namespace = "crm"
[source.columns]
customer = "customer_id"
type = "type"
score = "score"
time = "at"
"#;
    let path = dir.join("infogap.toml");
    std::fs::write(&path, config).expect("write config");
    path
}

/// A report is fine when it is sound or a user-facing error; an invariant
/// violation (a bug) fails the property.
fn sound<T>(what: &str, r: Result<T, EngineError>) -> Result<Option<T>, TestCaseError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(EngineError::Invariant(m)) => Err(TestCaseError::fail(format!("{what}: {m}"))),
        Err(_) => Ok(None),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_report_on_a_generated_store_is_sound_or_a_clear_error(s in spec()) {
        use infogap_engine::{analytics, churn, clv, forecast, recs, report};
        let dir = tempfile::tempdir().expect("tmp");
        let cfg = write(dir.path(), &s);
        let engine = Engine::open(&dir.path().join("store.db")).expect("open");
        import(&engine, &Config::load(&cfg).expect("config"), &ImportOptions::default()).expect("import");
        sound("stats", report::stats(&engine))?;
        let ds = engine.dataset().expect("dataset");
        for method in [analytics::SegmentMethod::Rfm, analytics::SegmentMethod::Kmeans] {
            let opts = analytics::SegmentOptions { method, ..Default::default() };
            if let Some((r, _)) = sound("segments", analytics::segments(&ds, &opts))? {
                for s in &r.segments {
                    prop_assert!(!bad_text(&s.description), "{}", s.description);
                }
            }
        }
        if sound("train churn", churn::train(&engine, &churn::ChurnOptions::default()))?.is_some()
            && let Some(r) = sound("churn", churn::risk(&engine, &crate::admin(infogap_core::access::Action::ChurnRead), 0))?
        {
            for reason in r.customers.iter().flat_map(|c| &c.reasons) {
                prop_assert!(!bad_text(&reason.text), "{}", reason.text);
            }
        }
        if sound("train clv", clv::train(&engine, None, infogap_models::clv::TimeUnit::Week))?.is_some()
            && let Some(r) = sound("clv", clv::rank(&engine, &crate::admin(infogap_core::access::Action::ClvRead), usize::MAX, 12, 0.01))?
        {
            prop_assert!(r.top.iter().all(|c| c.expected_purchases >= 0.0 && c.clv >= 0.0));
        }
        sound("train amount", analytics::train_amount(&engine, &analytics::AmountOptions::default()))?;
        sound(
            "forecast",
            forecast::forecast_demand(&ds, &forecast::Scope::Total, forecast::Period::Week, forecast::Measure::Revenue, 4, 0.9),
        )?;
        let opts = recs::TrainOptions {
            algo: "auto".into(),
            params: Vec::new(),
            signals: recs::SignalConfig::default(),
            seed: 0,
            k: 10,
            progress: false,
        };
        if sound("train recs", recs::train(&engine, &opts))?.is_some() {
            let ropts = recs::RecommendOptions { k: 5, include_seen: false, explain: true, category: None, deny: Vec::new(), allow: Vec::new() };
            sound("recommend", recs::recommend(&engine, "C0", None, &ropts))?;
        }
    }
}
