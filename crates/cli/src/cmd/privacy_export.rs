//! `infogap privacy export`: everything held about a person, as a zip.
//!
//! The zip is written to a temporary file beside `--out` and renamed over
//! it only once complete, so a failure never leaves a partial export.

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use infogap_core::access::Action;

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
pub fn export(ctx: &Ctx, a: &ExportArgs) -> anyhow::Result<()> {
    let engine = ctx.engine_existing()?;
    let access = ctx.access(&engine, Action::PrivacyExport)?;
    let id = infogap_engine::report::resolve_key(&engine, &a.key, None)?;
    let ex = engine.privacy_export(&access, None, id)?;
    write_zip(&a.out, &ex).with_context(|| format!("writing {}", a.out.display()))?;
    if !ctx.quiet {
        eprintln!(
            "exported customer #{id} to {}: {}",
            a.out.display(),
            ex.summary()
        );
    }
    Ok(())
}

/// Writes the zip to a temporary file in the target's directory, then
/// renames it over the target; on any failure the temporary file is removed.
fn write_zip(out: &Path, ex: &infogap_engine::privacy::export::PersonExport) -> anyhow::Result<()> {
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| anyhow::anyhow!("--out must name a file"))?;
    let tmp = dir.join(format!(".{name}.{}.partial", std::process::id()));
    let result = (|| -> anyhow::Result<()> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        let w = ex.to_zip(BufWriter::new(f))?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, out)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
