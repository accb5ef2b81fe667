//! The analytical snapshot every use case reads, loaded in milliseconds and
//! kept fresh.
//!
//! Why here: the store owns the raw tables, their change log and the cache
//! file format; the engine decides when to use the cache, when to rebuild
//! it, and what a long-running process holds. Rules:
//! - SQLite is the single source of truth. The cache (`<db>.snapshot`) is
//!   derived and disposable: deleting it loses nothing; one of another store,
//!   newer than the store, damaged or of an older format is rebuilt, with a
//!   warning that says why.
//! - A stale cache is never used as it is: it is brought to the store's
//!   generation with the delta since its own (what changed, not everything).
//! - A process that holds a [`LiveSnapshot`] (the coming `infogap serve`)
//!   calls [`Engine::refresh`]: one cheap read when nothing changed, the
//!   delta otherwise, so an import, merge or split made by another process
//!   shows within one refresh interval.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use infogap_core::dataset::Dataset;
use infogap_store::cache::{self, CacheError};
use infogap_store::snapshot::RawSnapshot;
use serde::Serialize;

use crate::{Engine, EngineError};

/// A snapshot held by a long-running process.
#[derive(Debug, Clone)]
pub struct LiveSnapshot {
    raw: RawSnapshot,
    dataset: Arc<Dataset>,
}

impl LiveSnapshot {
    /// The assembled data set (cheap to clone and share between threads).
    pub fn dataset(&self) -> Arc<Dataset> {
        Arc::clone(&self.dataset)
    }

    /// The store generation it reflects.
    pub fn generation(&self) -> i64 {
        self.raw.generation
    }
}

/// What loading or refreshing a snapshot did.
#[derive(Debug, Clone, Serialize)]
pub struct RefreshReport {
    /// Generation before (0: nothing was held).
    pub from_generation: i64,
    /// Generation after.
    pub generation: i64,
    /// Rows read from the store (0 when the cache was current).
    pub rows_read: usize,
    /// Per-file fact changes applied.
    pub file_changes: usize,
    /// The cache could not be used and the snapshot was rebuilt from the
    /// store: why.
    pub rebuilt: Option<String>,
    /// Bytes written to the cache file (0: not written).
    pub cache_bytes_written: u64,
    /// Wall time.
    pub seconds: f64,
}

impl RefreshReport {
    /// Nothing done yet: at `generation`, nothing read or written.
    fn at(generation: i64) -> RefreshReport {
        RefreshReport {
            from_generation: generation,
            generation,
            rows_read: 0,
            file_changes: 0,
            rebuilt: None,
            cache_bytes_written: 0,
            seconds: 0.0,
        }
    }
}

impl Engine {
    /// Where this engine keeps its snapshot cache, if anywhere.
    pub fn cache_path(&self) -> Option<&PathBuf> {
        self.cache.as_ref()
    }

    /// The raw snapshot at the store's current generation: from the cache
    /// when it is usable, brought up to date by a delta, else rebuilt.
    pub(crate) fn current_raw(&self) -> Result<(RawSnapshot, RefreshReport), EngineError> {
        let started = Instant::now();
        let g = self.store.generation()?;
        let mut rebuilt: Option<String> = None;
        let mut raw = RawSnapshot::default();
        if let Some(path) = &self.cache {
            let t = Instant::now();
            let key = self.store.data_key();
            let read = cache::read(path, key.as_deref());
            tracing::debug!(seconds = t.elapsed().as_secs_f64(), "snapshot cache read");
            match read {
                Ok(c) if c.store_id != g.store_id => {
                    rebuilt = Some(format!(
                        "snapshot cache {} belongs to another store",
                        path.display()
                    ));
                }
                Ok(c) if c.generation > g.generation => {
                    rebuilt = Some(format!(
                        "snapshot cache {} is newer than the store (generation {} > {}): was the store restored from a backup?",
                        path.display(),
                        c.generation,
                        g.generation
                    ));
                }
                Ok(c) => raw = c,
                Err(CacheError::Missing) => {}
                Err(e) => rebuilt = Some(e.to_string()),
            }
        }
        let from = raw.generation;
        let mut report = RefreshReport::at(from);
        if let Some(reason) = &rebuilt {
            tracing::warn!("{reason}; rebuilding it from the store");
            report.rebuilt = rebuilt.clone();
        }
        if raw.store_id.is_empty() || raw.generation != g.generation {
            let delta = self.store.snapshot_delta(raw.generation)?;
            report.rows_read = delta.rows();
            report.file_changes = delta.files.len();
            raw.apply(delta)?;
            report.generation = raw.generation;
            if let Some(path) = &self.cache {
                let key = self.store.data_key();
                match cache::write(path, &raw, key.as_deref()) {
                    Ok(n) => report.cache_bytes_written = n,
                    Err(e) => tracing::warn!("{e}; the snapshot works without it"),
                }
            }
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok((raw, report))
    }

    /// Loads the whole analytical snapshot of the store (through the cache).
    pub fn dataset(&self) -> Result<Dataset, EngineError> {
        // the common case: the cache is current, read straight into a data set
        if let Some(path) = &self.cache {
            let g = self.store.generation()?;
            let t = Instant::now();
            let key = self.store.data_key();
            if let Ok(cache::Direct::Dataset(ds)) =
                cache::read_dataset(path, &g.store_id, g.generation, key.as_deref())
            {
                tracing::debug!(seconds = t.elapsed().as_secs_f64(), "snapshot cache read");
                return Ok(*ds);
            }
        }
        // otherwise bring the cache up to date (or rebuild it, saying why)
        let (raw, _) = self.current_raw()?;
        let t = Instant::now();
        let ds = raw.dataset()?;
        tracing::debug!(seconds = t.elapsed().as_secs_f64(), "snapshot assembled");
        Ok(ds)
    }

    /// Brings the cache file up to the store's generation (the import calls
    /// this when it is done, so the next reader finds it current).
    pub fn update_cache(&self) -> Result<RefreshReport, EngineError> {
        // current already: the header says so, nothing else is read
        if let Some(path) = &self.cache {
            let started = Instant::now();
            let g = self.store.generation()?;
            if let Ok((store_id, generation)) = cache::read_header(path)
                && store_id == g.store_id
                && generation == g.generation
            {
                return Ok(RefreshReport {
                    seconds: started.elapsed().as_secs_f64(),
                    ..RefreshReport::at(generation)
                });
            }
        }
        Ok(self.current_raw()?.1)
    }

    /// A snapshot to hold and [`refresh`](Engine::refresh).
    pub fn snapshot(&self) -> Result<(LiveSnapshot, RefreshReport), EngineError> {
        let (raw, report) = self.current_raw()?;
        let dataset = Arc::new(raw.dataset()?);
        Ok((LiveSnapshot { raw, dataset }, report))
    }

    /// Brings a held snapshot to the store's current generation by applying
    /// only what changed since its own; one small read when nothing did.
    pub fn refresh(&self, snap: &mut LiveSnapshot) -> Result<RefreshReport, EngineError> {
        let started = Instant::now();
        let g = self.store.generation()?;
        let from = snap.raw.generation;
        let mut report = RefreshReport::at(from);
        if g.store_id == snap.raw.store_id && g.generation == from {
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(report);
        }
        let since = if g.store_id == snap.raw.store_id {
            from
        } else {
            report.rebuilt = Some("the store was replaced by another one".into());
            0
        };
        let delta = self.store.snapshot_delta(since)?;
        report.rows_read = delta.rows();
        report.file_changes = delta.files.len();
        snap.raw.apply(delta)?;
        snap.dataset = Arc::new(snap.raw.dataset()?);
        report.generation = snap.raw.generation;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }
}

/// What `infogap snapshot` reports: where the snapshot stands and what it costs.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotStatus {
    /// The store's id.
    pub store_id: String,
    /// Its generation.
    pub generation: i64,
    /// The cache file.
    pub cache: Option<String>,
    /// Its size on disk.
    pub cache_bytes: u64,
    /// What bringing the cache up to date did (nothing when it was current).
    pub refresh: RefreshReport,
    /// Seconds to load the current cache into a data set (best of three).
    pub load_seconds: f64,
    /// Customers.
    pub customers: usize,
    /// Orders.
    pub orders: usize,
    /// Order lines.
    pub order_lines: usize,
    /// Events.
    pub events: usize,
    /// Feedback.
    pub feedback: usize,
    /// Heap bytes of the loaded data set.
    pub memory_bytes: u64,
    /// The same facts as plain 8-byte columns (see `Dataset::raw_column_bytes`).
    pub raw_column_bytes: u64,
    /// `memory_bytes / raw_column_bytes`.
    pub memory_ratio: f64,
}

impl Engine {
    /// Brings the cache up to date (rebuilding it from the store when
    /// `rebuild`), then measures loading it.
    pub fn snapshot_status(&self, rebuild: bool) -> Result<SnapshotStatus, EngineError> {
        if rebuild && let Some(p) = &self.cache {
            match std::fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(EngineError::Io {
                        path: p.display().to_string(),
                        source,
                    });
                }
            }
        }
        // a full read: every section's checksum is verified
        let mut refresh = self.current_raw()?.1;
        if rebuild {
            refresh.rebuilt = Some("rebuilt on request".into());
        }
        let g = self.store.generation()?;
        let mut best = f64::INFINITY;
        let mut ds = None;
        for _ in 0..3 {
            drop(ds.take());
            let t = Instant::now();
            ds = Some(self.dataset()?);
            best = best.min(t.elapsed().as_secs_f64());
        }
        let ds = ds.unwrap_or_default();
        let cache_bytes = self
            .cache
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len());
        let memory_bytes = ds.heap_bytes();
        let raw_column_bytes = ds.raw_column_bytes();
        Ok(SnapshotStatus {
            store_id: g.store_id,
            generation: g.generation,
            cache: self.cache.as_ref().map(|p| p.display().to_string()),
            cache_bytes,
            refresh,
            load_seconds: best,
            customers: ds.customers.len(),
            orders: ds.orders.len(),
            order_lines: ds.lines.len(),
            events: ds.events.len(),
            feedback: ds.feedback.len(),
            memory_bytes,
            raw_column_bytes,
            memory_ratio: if raw_column_bytes > 0 {
                memory_bytes as f64 / raw_column_bytes as f64
            } else {
                0.0
            },
        })
    }
}
