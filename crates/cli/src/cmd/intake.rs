//! `infogap intake …`: the event intake journal from the terminal. `infogap
//! serve` takes Segment-spec messages over HTTP and applies them in the
//! background; `intake status` shows the journal, `intake apply` applies
//! what is pending now (a store whose server is stopped). The engine
//! (`intake`) owns the mapping and the journal; this only prints.

use clap::Subcommand;

use crate::Ctx;
use crate::ctx::print_json;

/// `infogap intake …`
#[derive(Debug, Subcommand)]
pub enum IntakeCmd {
    /// Messages in the journal per state: pending, applied, suppressed
    /// (erased people), no_consent, rejected.
    Status {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Apply every pending message now (what the server's worker does).
    Apply {
        /// Messages per transaction.
        #[arg(long, default_value_t = 5000)]
        round: usize,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `infogap intake …`.
pub fn intake(ctx: &Ctx, cmd: &IntakeCmd) -> anyhow::Result<()> {
    let engine = ctx.engine_existing()?;
    match cmd {
        IntakeCmd::Status { json } => {
            let c = engine.store().intake_counts()?;
            if *json {
                print_json(&c)?;
            } else {
                println!(
                    "pending {} · applied {} · suppressed {} · no_consent {} · rejected {}",
                    c.pending, c.applied, c.suppressed, c.no_consent, c.rejected
                );
            }
        }
        IntakeCmd::Apply { round, json } => {
            if *round == 0 {
                anyhow::bail!("--round must be at least 1");
            }
            let r = engine.apply_all_intake(*round)?;
            if *json {
                print_json(&r)?;
            } else {
                println!(
                    "{} messages: {} applied, {} suppressed, {} without consent, {} rejected; {} rows, {} merges in {:.2} s",
                    r.messages,
                    r.applied,
                    r.suppressed,
                    r.no_consent,
                    r.rejected,
                    r.rows_written,
                    r.merges,
                    r.seconds
                );
            }
        }
    }
    Ok(())
}

/// What `infogap alerts --json` prints.
#[derive(Debug, serde::Serialize)]
struct AlertsOut {
    /// Snapshot generation the rules were last evaluated at (none before
    /// `infogap serve` first evaluated them).
    baseline_generation: Option<i64>,
    /// Rules stored by the last import.
    rules: Vec<String>,
    #[serde(flatten)]
    alerts: infogap_engine::alerts::SharedAlerts,
}

/// Runs `infogap alerts`: the alerts the `[[rule]]`s raised (evaluated by
/// `infogap serve`), newest first, under the acting role's policy.
pub fn alerts(ctx: &Ctx, limit: usize, json: bool) -> anyhow::Result<()> {
    let engine = ctx.engine_existing()?;
    let access = ctx.access(&engine, infogap_core::access::Action::AlertsRead)?;
    let ins = infogap_engine::share::Insights::current(&engine)?;
    let shared = engine.share_alerts(&access, &ins, None, limit)?;
    let baseline_generation = engine
        .store()
        .setting(infogap_engine::alerts::BASELINE_SETTING)?
        .and_then(|s| serde_json::from_str::<infogap_engine::alerts::Baseline>(&s).ok())
        .map(|b| b.generation);
    let rules = engine.rules()?.into_iter().map(|r| r.name).collect();
    let out = AlertsOut {
        baseline_generation,
        rules,
        alerts: shared,
    };
    if json {
        print_json(&out)?;
    } else if out.alerts.alerts.is_empty() {
        println!(
            "no alerts ({} rules{})",
            out.rules.len(),
            if out.baseline_generation.is_none() {
                "; not evaluated yet: `infogap serve` evaluates them"
            } else {
                ""
            }
        );
    } else {
        for a in &out.alerts.alerts {
            println!(
                "{}  {:<20} {:<18} {:<20} {}",
                a.created_at, a.rule, a.kind, a.key, a.detail
            );
        }
    }
    Ok(())
}
