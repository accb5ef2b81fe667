//! `infogap privacy …`: the person's rights and the store's protection —
//! key rotation, consent, export, erasure, retention. Each subcommand is a
//! thin wrapper over an engine use case; the subcommands that grow large
//! live in their own files (`privacy_consent`, `privacy_export`).

use clap::{Args, Subcommand};

use infogap_core::access::Action;

use crate::Ctx;
use crate::ctx::print_json;

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
    #[arg(required_unless_present_any = ["approve", "requests", "resume"])]
    pub key: Option<String>,
    /// Count what would be erased; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Approve a customer's queued erasure request (its id) and run it.
    #[arg(long, value_name = "ID", conflicts_with = "key")]
    pub approve: Option<i64>,
    /// List erasure requests and receipts instead.
    #[arg(long, conflicts_with_all = ["key", "approve"])]
    pub requests: bool,
    /// Only finish erasures an interrupted run left (any erase does first).
    #[arg(long, conflicts_with_all = ["key", "approve", "requests"])]
    pub resume: bool,
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

fn rotate_key(ctx: &Ctx, a: &RotateKeyArgs) -> anyhow::Result<()> {
    let mut engine = ctx.engine_existing()?;
    let access = ctx.access(&engine, Action::PrivacyManage)?;
    let rep = engine.privacy_rotate_key(&access)?;
    if a.json {
        return print_json(&rep);
    }
    println!(
        "rotated the data key {} -> {} in {:.2} s: {} identities, {} attributes, {} feedback texts, {} models re-sealed",
        rep.old_key_id,
        rep.new_key_id,
        rep.seconds,
        rep.resealed.identities,
        rep.resealed.attributes,
        rep.resealed.feedback_texts,
        rep.resealed.models
    );
    println!("key file: {} (back it up)", rep.key_file);
    println!(
        "the old key is kept in {}: backups taken before now need it; destroy it once they are rotated out",
        rep.previous_key_file
    );
    Ok(())
}

fn erase(ctx: &Ctx, a: &EraseArgs) -> anyhow::Result<()> {
    let engine = ctx.engine_existing()?;
    let access = ctx.access(&engine, Action::PrivacyErase)?;
    if a.requests {
        let list = engine.erasures(None)?;
        if a.json {
            return print_json(&list);
        }
        if list.is_empty() {
            println!("no erasures");
        }
        for e in list {
            println!(
                "#{:<5} customer #{:<8} {:<10} {:<9} requested {} by {}",
                e.id, e.customer_id, e.status, e.mode, e.requested_at, e.requested_by
            );
        }
        return Ok(());
    }
    if a.resume {
        let done = engine.resume_erasures(&access)?;
        if a.json {
            return print_json(&done);
        }
        if done.is_empty() {
            println!("no interrupted erasure");
        }
        for r in &done {
            print_receipt(r);
        }
        return Ok(());
    }
    let receipt = match (a.approve, &a.key) {
        (Some(id), _) => {
            if a.dry_run {
                anyhow::bail!("--dry-run cannot be combined with --approve");
            }
            engine.approve_erasure(&access, id)?
        }
        (None, Some(key)) => {
            let id = infogap_engine::report::resolve_key(&engine, key, None)?;
            engine.privacy_erase(&access, id, a.dry_run)?
        }
        (None, None) => anyhow::bail!("give the person's KEY, --approve ID or --requests"),
    };
    if a.json {
        return print_json(&receipt);
    }
    print_receipt(&receipt);
    if receipt.residue.is_some_and(|r| r > 0) {
        anyhow::bail!(
            "the verification pass found {} erased patterns still in the store's files",
            receipt.residue.unwrap_or(0)
        );
    }
    Ok(())
}

fn print_receipt(r: &infogap_engine::privacy::erase::EraseReceipt) {
    let head = if r.dry_run {
        format!("would erase customer #{} ({}):", r.customer_id, r.mode)
    } else {
        format!(
            "erasure #{} of customer #{}: {} ({})",
            r.erasure_id.unwrap_or(0),
            r.customer_id,
            r.status,
            r.mode
        )
    };
    println!("{head}");
    for t in r.tables.iter().filter(|t| t.rows > 0) {
        println!(
            "  {:<18} {:>8} rows {}  ({})",
            t.table,
            t.rows,
            t.action,
            t.fields.join(", ")
        );
    }
    for f in &r.files {
        println!("  {:<40} {} ({})", f.file, f.action, f.rows);
    }
    println!(
        "  identities suppressed for future imports: {}",
        r.suppressed_identities
    );
    if let Some(v) = &r.verification {
        println!(
            "  verification: {} patterns searched in {} files ({} values too short to search)",
            v.patterns,
            v.files.len(),
            v.short_values_not_searched
        );
    }
    match r.residue {
        Some(n) => println!("  residue: {n}"),
        None if !r.dry_run && r.status == "done" => println!("  residue: not verified"),
        None => {}
    }
    for n in &r.notes {
        println!("  note: {n}");
    }
}

fn retain(ctx: &Ctx, a: &RetainArgs) -> anyhow::Result<()> {
    let engine = ctx.engine_existing()?;
    let access = ctx.access(&engine, Action::PrivacyManage)?;
    let now = chrono::Utc::now().timestamp();
    let rep = engine.privacy_retain(&access, now, a.dry_run)?;
    if a.json {
        return print_json(&rep);
    }
    if rep.kinds.is_empty() {
        println!("no [privacy.retention] in the config last imported: nothing to do");
    }
    for k in &rep.kinds {
        for t in &k.tables {
            println!(
                "{:<10} keep {:<6} {:<18} {:>8} rows {}",
                k.kind, k.keep, t.table, t.rows, t.action
            );
        }
    }
    Ok(())
}
