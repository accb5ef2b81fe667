//! One module per command family. Each owns its argument structs and the
//! printing of its reports; the work itself happens in the engine and models.

pub mod analytics;
pub mod ask_eval;
pub mod backup;
pub mod bench_intake;
pub mod classify;
pub mod clv;
pub mod data;
pub mod forecast;
pub mod gap;
pub mod intake;
pub mod privacy;
pub mod privacy_consent;
pub mod privacy_export;
pub mod rating;
pub mod recs;
pub mod share;
pub mod snapshot;
pub mod web;
pub mod webhooks;

/// Runs every model family's quickstart section; a failing section is
/// reported in its place and does not stop the others.
pub fn quickstart_sections(
    ctx: &crate::Ctx,
    engine: &infogap_engine::Engine,
    json: bool,
) -> serde_json::Map<String, serde_json::Value> {
    type Section =
        fn(&crate::Ctx, &infogap_engine::Engine, bool) -> anyhow::Result<serde_json::Value>;
    let sections: [(&str, Section); 6] = [
        ("recommendations", recs::quickstart_section),
        ("churn", classify::quickstart_section),
        ("segments", analytics::quickstart_section),
        ("clv", clv::quickstart_section),
        ("forecast", forecast::quickstart_section),
        ("information_gap", gap::quickstart_section),
    ];
    let mut out = serde_json::Map::new();
    for (name, f) in sections {
        if !json {
            println!();
        }
        let v = match f(ctx, engine, json) {
            Ok(v) => v,
            Err(e) => {
                let msg = format!("{e:#}");
                if !json {
                    println!("{name}: not available: {msg}");
                }
                serde_json::json!({ "error": msg })
            }
        };
        out.insert(name.to_string(), v);
    }
    out
}
