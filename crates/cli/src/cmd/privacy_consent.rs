//! `infogap privacy consent`: a customer's consent by purpose and its history.

use clap::Args;

use crate::Ctx;

/// `privacy consent`.
#[derive(Debug, Args)]
pub struct ConsentArgs {
    /// The person: email, phone, `ns:id` or `#ID`.
    pub key: String,
    /// JSON report.
    #[arg(long)]
    pub json: bool,
}

/// Runs `privacy consent`.
pub fn consent(_ctx: &Ctx, _a: &ConsentArgs) -> anyhow::Result<()> {
    anyhow::bail!("privacy consent: not built yet")
}
