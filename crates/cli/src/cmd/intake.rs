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
