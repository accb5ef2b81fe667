//! `infogap privacy export`: everything held about a person, as a zip.

use clap::Args;

use crate::Ctx;

/// `privacy export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The person: email, phone, `ns:id` or `#ID`.
    pub key: String,
    /// The zip file to write.
    #[arg(long)]
    pub out: std::path::PathBuf,
}

/// Runs `privacy export`.
pub fn export(_ctx: &Ctx, _a: &ExportArgs) -> anyhow::Result<()> {
    anyhow::bail!("privacy export: not built yet")
}
