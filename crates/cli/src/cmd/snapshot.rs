//! `infogap snapshot`: where the analytical snapshot and its cache stand,
//! and `--watch`, a process that holds the snapshot and follows the store
//! the way `infogap serve` will.

use std::time::{Duration, Instant};

use clap::Args;

use crate::Ctx;
use crate::ctx::print_json;

/// `infogap snapshot`
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Delete the cache and rebuild it from the store first.
    #[arg(long)]
    pub rebuild: bool,
    /// Hold the snapshot and refresh it every `--interval-ms`, printing a
    /// line whenever the store changed (an import, a merge, a split made by
    /// any process). Stops after `--for` seconds, or never.
    #[arg(long)]
    pub watch: bool,
    /// Refresh interval of `--watch`, in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub interval_ms: u64,
    /// Stop `--watch` after this many seconds.
    #[arg(long = "for")]
    pub for_seconds: Option<f64>,
    /// Print as JSON (one object per line with `--watch`).
    #[arg(long)]
    pub json: bool,
}

/// Runs `infogap snapshot`.
pub fn snapshot(ctx: &Ctx, a: &SnapshotArgs) -> anyhow::Result<()> {
    let engine = ctx.engine_existing()?;
    if a.watch {
        return watch(&engine, a);
    }
    let s = engine.snapshot_status(a.rebuild)?;
    if a.json {
        return print_json(&s);
    }
    let mb = |b: u64| b as f64 / 1e6;
    println!("store        {} (generation {})", s.store_id, s.generation);
    if let Some(c) = &s.cache {
        println!("cache        {c} ({:.1} MB)", mb(s.cache_bytes));
    }
    let r = &s.refresh;
    match (&r.rebuilt, r.rows_read) {
        (Some(why), _) => println!("refresh      rebuilt: {why} ({:.3} s)", r.seconds),
        (None, 0) => println!("refresh      the cache was current"),
        (None, n) => println!(
            "refresh      {n} rows read from the store, {} file changes ({:.3} s)",
            r.file_changes, r.seconds
        ),
    }
    println!("load         {:.3} s", s.load_seconds);
    println!(
        "holds        {} customers, {} orders, {} order lines, {} events, {} feedback",
        s.customers, s.orders, s.order_lines, s.events, s.feedback
    );
    println!(
        "memory       {:.1} MB ({:.2}x the {:.1} MB of its raw columns)",
        mb(s.memory_bytes),
        s.memory_ratio,
        mb(s.raw_column_bytes)
    );
    Ok(())
}

fn watch(engine: &infogap_engine::Engine, a: &SnapshotArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let (mut snap, first) = engine.snapshot()?;
    let line = |snap: &infogap_engine::snapshot::LiveSnapshot,
                r: &infogap_engine::snapshot::RefreshReport|
     -> anyhow::Result<()> {
        let ds = snap.dataset();
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        if a.json {
            println!(
                "{}",
                serde_json::json!({
                    "at_ms": at_ms,
                    "generation": r.generation,
                    "customers": ds.customers.len(),
                    "orders": ds.orders.len(),
                    "order_lines": ds.lines.len(),
                    "rows_read": r.rows_read,
                    "file_changes": r.file_changes,
                    "seconds": r.seconds,
                })
            );
        } else {
            println!(
                "generation {}: {} customers, {} orders, {} order lines ({} rows read in {:.3} s)",
                r.generation,
                ds.customers.len(),
                ds.orders.len(),
                ds.lines.len(),
                r.rows_read,
                r.seconds
            );
        }
        use std::io::Write;
        std::io::stdout().flush()?;
        Ok(())
    };
    line(&snap, &first)?;
    let interval = Duration::from_millis(a.interval_ms.max(1));
    loop {
        if a.for_seconds
            .is_some_and(|s| started.elapsed().as_secs_f64() >= s)
        {
            return Ok(());
        }
        std::thread::sleep(interval);
        let r = engine.refresh(&mut snap)?;
        if r.generation != r.from_generation {
            line(&snap, &r)?;
        }
    }
}
