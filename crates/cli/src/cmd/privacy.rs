//! `infogap privacy …`: the person's rights and the store's protection —
//! key rotation, consent, export, erasure, retention. Each subcommand is a
//! thin wrapper over an engine use case; the subcommands that grow large
//! live in their own files (`privacy_consent`, `privacy_export`).

use clap::{Args, Subcommand};

use crate::Ctx;

/// The `privacy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PrivacyCmd {
    /// Re-encrypt every protected value under a new data key; safe to interrupt.
    RotateKey(RotateKeyArgs),
    /// Show or change a customer's consent by purpose, with its history.
    Consent(super::privacy_consent::ConsentArgs),
    /// Everything the store holds about a person, as a zip (JSON + CSV).
    Export(super::privacy_export::ExportArgs),
    /// Erase a person (GDPR Art. 17), with a verifiable receipt.
    Erase(EraseArgs),
    /// Apply `[privacy.retention]`: delete facts older than their kind keeps.
    Retain(RetainArgs),
}

/// `privacy rotate-key`.
#[derive(Debug, Args)]
pub struct RotateKeyArgs {
    /// JSON report.
    #[arg(long)]
    pub json: bool,
}

/// `privacy erase`.
#[derive(Debug, Args)]
pub struct EraseArgs {
    /// The person: email, phone, `ns:id` or `#ID`.
    pub key: Option<String>,
    /// Count what would be erased; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// JSON receipt.
    #[arg(long)]
    pub json: bool,
}

/// `privacy retain`.
#[derive(Debug, Args)]
pub struct RetainArgs {
    /// Count what would be deleted; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// JSON report.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `privacy` subcommand.
pub fn privacy(ctx: &Ctx, cmd: &PrivacyCmd) -> anyhow::Result<()> {
    match cmd {
        PrivacyCmd::RotateKey(a) => rotate_key(ctx, a),
        PrivacyCmd::Consent(a) => super::privacy_consent::consent(ctx, a),
        PrivacyCmd::Export(a) => super::privacy_export::export(ctx, a),
        PrivacyCmd::Erase(a) => erase(ctx, a),
        PrivacyCmd::Retain(a) => retain(ctx, a),
    }
}

fn rotate_key(_ctx: &Ctx, _a: &RotateKeyArgs) -> anyhow::Result<()> {
    anyhow::bail!("privacy rotate-key: not built yet")
}

fn erase(_ctx: &Ctx, _a: &EraseArgs) -> anyhow::Result<()> {
    anyhow::bail!("privacy erase: not built yet")
}

fn retain(_ctx: &Ctx, _a: &RetainArgs) -> anyhow::Result<()> {
    anyhow::bail!("privacy retain: not built yet")
}
