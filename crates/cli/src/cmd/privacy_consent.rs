//! `infogap privacy consent`: a customer's consent by purpose and its history.
//!
//! Shows, per purpose, the mode (`[privacy.consent]`: opt-in or opt-out),
//! whether uses of that purpose include the customer, why not, since when
//! and from which source; then every record, oldest first. `--grant` and
//! `--withdraw` record changes first (as the local principal, under the
//! store-made source `staff`); they apply from the next command on.

use clap::Args;
use infogap_core::access::Action;
use infogap_engine::privacy::consent::CustomerConsent;

use crate::Ctx;
use crate::ctx::print_json;

/// `privacy consent`.
#[derive(Debug, Args)]
pub struct ConsentArgs {
    /// The person: email, phone, `ns:id` or `#ID`.
    pub key: String,
    /// Record that the person grants this purpose (repeatable).
    #[arg(long, value_name = "PURPOSE")]
    pub grant: Vec<String>,
    /// Record that the person withdraws this purpose (repeatable).
    #[arg(long, value_name = "PURPOSE")]
    pub withdraw: Vec<String>,
    /// JSON report.
    #[arg(long)]
    pub json: bool,
}

/// Runs `privacy consent`.
pub fn consent(ctx: &Ctx, a: &ConsentArgs) -> anyhow::Result<()> {
    let engine = ctx.engine_existing()?;
    let changes: Vec<(&str, bool)> = a
        .grant
        .iter()
        .map(|p| (p.trim(), true))
        .chain(a.withdraw.iter().map(|p| (p.trim(), false)))
        .collect();
    // every purpose is checked before anything is recorded
    let known = engine.privacy()?.purposes();
    for (p, _) in &changes {
        if !known.iter().any(|k| k == p) {
            anyhow::bail!(
                "purpose {p:?} is not a consent purpose; known purposes: {}",
                known.join(", ")
            );
        }
    }
    if let Some(p) = a.grant.iter().find(|p| a.withdraw.contains(p)) {
        anyhow::bail!("purpose {p:?} is both granted and withdrawn: give one");
    }
    let action = if changes.is_empty() {
        Action::ConsentsRead
    } else {
        Action::ConsentsWrite
    };
    let access = ctx.access(&engine, action)?;
    let id = infogap_engine::report::resolve_key(&engine, &a.key, None)?;
    let mut view = None;
    for (p, granted) in &changes {
        view = Some(engine.share_consent_change(&access, id, p, *granted)?);
    }
    let view = match view {
        Some(v) => v,
        None => engine.share_consents(&access, id)?,
    };
    if a.json {
        let mut v = serde_json::to_value(&view)?;
        v["recorded"] = serde_json::json!(
            changes
                .iter()
                .map(|(p, g)| serde_json::json!({"purpose": p, "granted": g}))
                .collect::<Vec<_>>()
        );
        return print_json(&v);
    }
    for (p, g) in &changes {
        println!("recorded: {} {p}", if *g { "granted" } else { "withdrawn" });
    }
    print_view(&view);
    Ok(())
}

fn print_view(v: &CustomerConsent) {
    println!("consent of {} (#{})", v.key, v.customer);
    let w = v
        .purposes
        .iter()
        .map(|p| p.purpose.chars().count())
        .fold(7, usize::max);
    println!(
        "  {:<w$}  {:<7}  {:<7}  {:<11}  {:<20}  source",
        "purpose", "mode", "allowed", "reason", "since"
    );
    for p in &v.purposes {
        println!(
            "  {:<w$}  {:<7}  {:<7}  {:<11}  {:<20}  {}",
            p.purpose,
            p.mode.as_str(),
            if p.allowed { "yes" } else { "no" },
            p.reason.map_or("", |r| r.as_str()),
            p.since.as_deref().unwrap_or("-"),
            p.source.as_deref().unwrap_or("(mode default)")
        );
    }
    if v.history.is_empty() {
        println!("history: nothing recorded");
        return;
    }
    println!("history (oldest first):");
    for h in &v.history {
        println!(
            "  {:<20}  {:<w$}  {:<9}  {} ({})",
            h.time.as_deref().unwrap_or("-"),
            h.purpose,
            if h.granted { "granted" } else { "withdrawn" },
            h.source,
            h.file
        );
    }
}
