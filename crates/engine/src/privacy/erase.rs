//! Erasure (GDPR Art. 17) that can be verified, and retention.
//!
//! An erasure runs in steps that each survive `kill -9`:
//! 1. the journal gets a row (`planned`, no personal value in it), and the
//!    values to verify afterwards are sealed with the data key into
//!    `<db>.erasure-<id>` (synced);
//! 2. one store transaction deletes (or anonymizes) every row of the
//!    person, puts their identities on the suppression list and marks the
//!    journal row `erasing` with the counts;
//! 3. the files: the person leaves the saved models and the audit trail
//!    (records stay, redacted), the snapshot cache is dropped, rejects files
//!    lose the person's rows, the store is vacuumed and its WAL truncated;
//! 4. a verification pass searches every file of the store for every erased
//!    value (plaintext, ciphertext, blind index) and the receipt, ending in
//!    `residue`, is written to the journal (`done`); the sealed values go.
//!
//! Steps 3 and 4 are idempotent: an interrupted erasure is finished by the
//! next `privacy erase` (or [`Engine::resume_erasures`]) from its journal.

use std::path::{Path, PathBuf};

use infogap_core::access::Action;
use infogap_core::privacy::{ErasureMode, ErasureRequests};
use infogap_store::crypto::{self, Field};
use infogap_store::{ErasurePlan, ErasureRecord, TableCount};
use serde::{Deserialize, Serialize};

use crate::access::Access;
use crate::{Engine, EngineError};

/// A file an erasure changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileAction {
    /// The file.
    pub file: String,
    /// What was done.
    pub action: String,
    /// Rows or records touched.
    pub rows: u64,
}

/// The verification pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// Files searched.
    pub files: Vec<String>,
    /// Byte patterns searched for: plaintext values, their ciphertexts and
    /// blind indexes.
    pub patterns: usize,
    /// Values too short to tell apart from other data (not searched).
    pub short_values_not_searched: usize,
    /// Values that are also public reference data (a stated interest equal
    /// to a product category, a campaign name): not the person's, not searched.
    #[serde(default)]
    pub reference_values_not_searched: usize,
    /// Files where a pattern was found, with the count (never the value).
    pub found: Vec<FileAction>,
}

/// The receipt of an erasure (never holds a personal value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EraseReceipt {
    /// Journal id (none for a dry run).
    pub erasure_id: Option<i64>,
    /// The customer's store id (it no longer exists afterwards).
    pub customer_id: i64,
    /// `planned` (dry run), `done`, `requested` (queued for approval).
    pub status: String,
    /// `delete` or `anonymize`.
    pub mode: String,
    /// Nothing was changed.
    pub dry_run: bool,
    /// Who asked.
    pub requested_by: String,
    /// Every table, with the rows and fields touched.
    pub tables: Vec<TableCount>,
    /// Files outside the tables: audit trail, snapshot cache, rejects
    /// files, store file (vacuum).
    pub files: Vec<FileAction>,
    /// Saved models the person was removed from.
    pub models: serde_json::Value,
    /// Identities put on the suppression list (blind hashes only).
    pub suppressed_identities: usize,
    /// The search for what is left.
    pub verification: Option<Verification>,
    /// Patterns found by the verification pass (0: nothing left).
    pub residue: Option<u64>,
    /// Notes (what could not be done, and why).
    pub notes: Vec<String>,
}

/// What an unfinished erasure must verify, sealed beside the store.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Pending {
    customer_id: i64,
    identities: Vec<(String, String, String)>,
    attributes: Vec<(String, String)>,
    texts: Vec<String>,
    sealed_hex: Vec<String>,
    blind: Vec<String>,
}

impl Pending {
    fn from_plan(p: &ErasurePlan) -> Pending {
        Pending {
            customer_id: p.customer_id,
            identities: p.identities.clone(),
            attributes: p.attributes.clone(),
            texts: p.texts.clone(),
            sealed_hex: p
                .sealed
                .iter()
                .map(|b| infogap_store::audit::hex(b))
                .collect(),
            blind: p.blind.clone(),
        }
    }
}

/// Shortest plaintext the verification searches for: shorter values
/// (an age band, a two-letter name) occur in unrelated bytes by chance.
const MIN_SEARCH: usize = 6;

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn sibling(p: &Path, suffix: &str) -> PathBuf {
    crypto::sibling(p, suffix)
}

impl Engine {
    fn erasure_mode(&self) -> Result<ErasureMode, EngineError> {
        Ok(self.privacy()?.erasure)
    }

    fn pending_path(&self, id: i64) -> Option<PathBuf> {
        self.db_path()
            .map(|db| sibling(db, &format!(".erasure-{id}")))
    }

    fn write_pending(&self, id: i64, p: &Pending) -> Result<(), EngineError> {
        let (Some(path), Some(key)) = (self.pending_path(id), self.store.data_key()) else {
            return Ok(());
        };
        let json = serde_json::to_vec(p).map_err(|e| EngineError::Invariant(e.to_string()))?;
        let sealed = key.seal(Field::Journal, &json);
        let io = |e: std::io::Error| EngineError::Io {
            path: path.display().to_string(),
            source: e,
        };
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&path).map_err(io)?;
        std::io::Write::write_all(&mut f, &sealed).map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(())
    }

    fn read_pending(&self, id: i64) -> Option<Pending> {
        let path = self.pending_path(id)?;
        let key = self.store.data_key()?;
        let bytes = std::fs::read(path).ok()?;
        let json = key.open(Field::Journal, &bytes).ok()?;
        serde_json::from_slice(&json).ok()
    }

    /// Erases a customer (see the module comment), or with `dry_run` says
    /// what would be erased. Needs `privacy.erase`.
    pub fn privacy_erase(
        &self,
        a: &Access,
        customer_id: i64,
        dry_run: bool,
    ) -> Result<EraseReceipt, EngineError> {
        if a.action != Action::PrivacyErase {
            return Err(EngineError::Invariant(
                "privacy_erase needs an access for privacy.erase".into(),
            ));
        }
        // finish what an interrupted run left first
        self.resume_erasures(a)?;
        let mode = self.erasure_mode()?;
        let plan = self.store.erasure_plan(customer_id)?;
        if !plan
            .tables
            .iter()
            .any(|t| t.table == "customers" && t.rows > 0)
        {
            return Err(EngineError::NotFound(format!("no customer #{customer_id}")));
        }
        let requested_by = a.principal.name.clone();
        if dry_run {
            self.record_access(a, "privacy.erase", vec![customer_id], vec![])?;
            return Ok(EraseReceipt {
                erasure_id: None,
                customer_id,
                status: "planned".into(),
                mode: mode_name(mode).into(),
                dry_run: true,
                requested_by,
                suppressed_identities: plan.identities.len(),
                tables: plan.tables,
                files: Vec::new(),
                models: serde_json::Value::Null,
                verification: None,
                residue: None,
                notes: vec!["dry run: nothing was changed".into()],
            });
        }
        let id =
            self.store
                .create_erasure(customer_id, "planned", mode_name(mode), &requested_by)?;
        self.run_erasure(a, id, customer_id, mode, &requested_by, Some(plan))
    }

    /// Steps 1 to 4 for journal row `id` (the plan is read again when not given).
    fn run_erasure(
        &self,
        a: &Access,
        id: i64,
        customer_id: i64,
        mode: ErasureMode,
        requested_by: &str,
        plan: Option<ErasurePlan>,
    ) -> Result<EraseReceipt, EngineError> {
        let plan = match plan {
            Some(p) => p,
            None => self.store.erasure_plan(customer_id)?,
        };
        let pending = Pending::from_plan(&plan);
        self.write_pending(id, &pending)?;
        infogap_store::failpoint("erase:before-delete");
        let key = self.store.data_key();
        let suppress: Vec<(String, String)> = match &key {
            Some(k) => plan
                .identities
                .iter()
                .map(|(ns, kind, v)| (k.suppression(&format!("{ns}/{kind}"), v), kind.clone()))
                .collect(),
            None => Vec::new(),
        };
        let counts = self.store.erase_customer(
            customer_id,
            id,
            mode == ErasureMode::Anonymize,
            &suppress,
        )?;
        infogap_store::failpoint("erase:after-delete");
        self.finish_erasure(
            a,
            id,
            customer_id,
            mode,
            requested_by,
            counts,
            Some(pending),
        )
    }

    /// Steps 3 and 4: idempotent.
    #[allow(clippy::too_many_arguments)]
    fn finish_erasure(
        &self,
        a: &Access,
        id: i64,
        customer_id: i64,
        mode: ErasureMode,
        requested_by: &str,
        tables: Vec<TableCount>,
        pending: Option<Pending>,
    ) -> Result<EraseReceipt, EngineError> {
        let mut notes = Vec::new();
        let mut files = Vec::new();
        let models = match crate::recs::forget_in_saved_models(self, customer_id) {
            Ok(m) => serde_json::to_value(m).unwrap_or(serde_json::Value::Null),
            Err(e) => {
                notes.push(format!("saved models: {e}"));
                serde_json::Value::Null
            }
        };
        // the audit trail keeps its records, without the person
        let sink = self.audit_sink()?;
        let red = sink.log().redact_customer(customer_id)?;
        files.push(FileAction {
            file: sink.log().path().display().to_string(),
            action: "audit records redacted".into(),
            rows: red.records,
        });
        if red.not_redactable > 0 {
            notes.push(format!(
                "{} audit records were written before redaction existed and name the customer's id only",
                red.not_redactable
            ));
        }
        if let Some(cache) = &self.cache
            && cache.exists()
        {
            std::fs::remove_file(cache).map_err(|e| EngineError::Io {
                path: cache.display().to_string(),
                source: e,
            })?;
            files.push(FileAction {
                file: cache.display().to_string(),
                action: "snapshot cache removed (rebuilt on next use)".into(),
                rows: 0,
            });
        }
        let values = pending.as_ref().map(search_values).unwrap_or_default();
        for path in self.rejects_files()? {
            let n = scrub_rejects(&path, &values)?;
            files.push(FileAction {
                file: path.display().to_string(),
                action: "rejected rows naming the person removed".into(),
                rows: n,
            });
        }
        self.store.vacuum()?;
        if let Some(db) = self.db_path() {
            files.push(FileAction {
                file: db.display().to_string(),
                action: "vacuumed (free pages zeroed, WAL truncated)".into(),
                rows: 0,
            });
        }
        let (verification, residue) = match &pending {
            Some(p) => {
                let v = self.verify_erased(p)?;
                let r = v.found.iter().map(|f| f.rows).sum::<u64>();
                (Some(v), Some(r))
            }
            None => {
                notes.push(
                    "the values to verify were lost with an interrupted run: no verification pass"
                        .into(),
                );
                (None, None)
            }
        };
        let receipt = EraseReceipt {
            erasure_id: Some(id),
            customer_id,
            status: "done".into(),
            mode: mode_name(mode).into(),
            dry_run: false,
            requested_by: requested_by.to_string(),
            suppressed_identities: pending.as_ref().map_or(0, |p| p.identities.len()),
            tables,
            files,
            models,
            verification,
            residue,
            notes,
        };
        let json =
            serde_json::to_string(&receipt).map_err(|e| EngineError::Invariant(e.to_string()))?;
        self.store.set_erasure(id, "done", Some(&json))?;
        if let Some(p) = self.pending_path(id) {
            let _ = std::fs::remove_file(p);
        }
        // the audit record names the erasure, not the person
        self.record(crate::audit::entry(
            &a.principal,
            "privacy.erase",
            vec![],
            vec![],
            &format!(
                "erasure #{id} done: residue {}",
                residue.map_or("not verified".into(), |r| r.to_string())
            ),
        ))?;
        Ok(receipt)
    }

    /// Finishes erasures an interrupted run left (`planned` or `erasing`).
    pub fn resume_erasures(&self, a: &Access) -> Result<Vec<EraseReceipt>, EngineError> {
        let mut out = Vec::new();
        for e in self.store.erasures(None)? {
            let mode = if e.mode == "anonymize" {
                ErasureMode::Anonymize
            } else {
                ErasureMode::Delete
            };
            match e.status.as_str() {
                "planned" => {
                    // nothing was deleted yet (the delete is one transaction)
                    out.push(self.run_erasure(
                        a,
                        e.id,
                        e.customer_id,
                        mode,
                        &e.requested_by,
                        None,
                    )?);
                }
                "erasing" => {
                    let tables: Vec<TableCount> = e
                        .receipt
                        .as_deref()
                        .and_then(|r| serde_json::from_str(r).ok())
                        .unwrap_or_default();
                    let pending = self.read_pending(e.id);
                    out.push(self.finish_erasure(
                        a,
                        e.id,
                        e.customer_id,
                        mode,
                        &e.requested_by,
                        tables,
                        pending,
                    )?);
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// The erasure journal (requests waiting, receipts of finished ones).
    pub fn erasures(&self, status: Option<&str>) -> Result<Vec<ErasureRecord>, EngineError> {
        Ok(self.store.erasures(status)?)
    }

    /// A customer asks to be erased: executed at once or queued for an
    /// admin, as `[privacy] erasure_requests` says.
    pub fn request_erasure(&self, a: &Access) -> Result<EraseReceipt, EngineError> {
        let customer_id = a.principal.customer.ok_or_else(|| {
            EngineError::Forbidden("only a customer can request their own erasure".into())
        })?;
        let cfg = self.privacy()?;
        let open = self
            .store
            .erasures(Some("requested"))?
            .into_iter()
            .find(|e| e.customer_id == customer_id);
        if cfg.erasure_requests == ErasureRequests::Execute {
            let mode = cfg.erasure;
            let id = match open {
                Some(e) => e.id,
                None => self.store.create_erasure(
                    customer_id,
                    "planned",
                    mode_name(mode),
                    &a.principal.name,
                )?,
            };
            self.store.set_erasure(id, "planned", None)?;
            return self.run_erasure(a, id, customer_id, mode, &a.principal.name, None);
        }
        let id = match open {
            Some(e) => e.id,
            None => self.store.create_erasure(
                customer_id,
                "requested",
                mode_name(cfg.erasure),
                &a.principal.name,
            )?,
        };
        self.record_access(a, "privacy.erase.request", vec![customer_id], vec![])?;
        Ok(EraseReceipt {
            erasure_id: Some(id),
            customer_id,
            status: "requested".into(),
            mode: mode_name(cfg.erasure).into(),
            dry_run: false,
            requested_by: a.principal.name.clone(),
            tables: Vec::new(),
            files: Vec::new(),
            models: serde_json::Value::Null,
            suppressed_identities: 0,
            verification: None,
            residue: None,
            notes: vec![
                "queued: an admin approves it with `infogap privacy erase --approve ID`".into(),
            ],
        })
    }

    /// Approves a queued request and erases (needs `privacy.erase`).
    pub fn approve_erasure(&self, a: &Access, id: i64) -> Result<EraseReceipt, EngineError> {
        let e = self
            .store
            .erasures(Some("requested"))?
            .into_iter()
            .find(|e| e.id == id)
            .ok_or_else(|| EngineError::NotFound(format!("no erasure request #{id} waiting")))?;
        self.store.set_erasure(id, "planned", None)?;
        let mode = if e.mode == "anonymize" {
            ErasureMode::Anonymize
        } else {
            ErasureMode::Delete
        };
        self.run_erasure(a, id, e.customer_id, mode, &e.requested_by, None)
    }

    /// The rejects files imports wrote (absolute paths that exist).
    fn rejects_files(&self) -> Result<Vec<PathBuf>, EngineError> {
        let mut out = Vec::new();
        for s in self.store.sources()? {
            if let Some(p) = self.store.setting(&format!("import.rejects.{}", s.name))? {
                let p = PathBuf::from(p);
                if p.exists() {
                    out.push(p);
                }
            }
        }
        Ok(out)
    }

    /// Searches every file of the store for what the erasure removed.
    fn verify_erased(&self, p: &Pending) -> Result<Verification, EngineError> {
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut short = 0;
        let mut reference = 0;
        // the catalogue and campaigns are public: a value equal to one of
        // their texts (an interest `sports` = a category) is found there
        // whatever happened to the person
        let ds = self.dataset()?;
        let public: std::collections::HashSet<String> = ds
            .products
            .iter()
            .flat_map(|x| [Some(x.key.clone()), x.name.clone(), x.category.clone()])
            .chain(
                ds.campaigns
                    .iter()
                    .flat_map(|c| [Some(c.key.clone()), c.name.clone(), c.kind.clone()]),
            )
            .flatten()
            .flat_map(|t| {
                let low = t.to_lowercase();
                let words: Vec<String> = low.split_whitespace().map(str::to_string).collect();
                std::iter::once(low).chain(words)
            })
            .collect();
        for v in search_values(p) {
            if public.contains(&v.trim().to_lowercase()) {
                reference += 1;
            } else if v.len() >= MIN_SEARCH {
                patterns.push(v.as_bytes().to_vec());
            } else {
                short += 1;
            }
        }
        patterns.extend(p.sealed_hex.iter().filter_map(|h| unhex(h)));
        patterns.extend(p.blind.iter().map(|b| b.as_bytes().to_vec()));
        patterns.sort();
        patterns.dedup();
        let mut files: Vec<PathBuf> = Vec::new();
        if let Some(db) = self.db_path() {
            for suffix in ["", "-wal", "-shm"] {
                files.push(sibling(db, suffix));
                files.push(sibling(&infogap_store::audit::audit_path(db), suffix));
            }
        }
        if let Some(c) = &self.cache {
            files.push(c.clone());
        }
        files.extend(self.rejects_files()?);
        let finders: Vec<memchr::memmem::Finder<'_>> =
            patterns.iter().map(memchr::memmem::Finder::new).collect();
        let mut found = Vec::new();
        let mut searched = Vec::new();
        for f in files {
            let Ok(bytes) = std::fs::read(&f) else {
                continue;
            };
            searched.push(f.display().to_string());
            let hits: u64 = finders
                .iter()
                .map(|fi| fi.find_iter(&bytes).count() as u64)
                .sum();
            if hits > 0 {
                found.push(FileAction {
                    file: f.display().to_string(),
                    action: "erased values found".into(),
                    rows: hits,
                });
            }
        }
        Ok(Verification {
            files: searched,
            patterns: patterns.len(),
            short_values_not_searched: short,
            reference_values_not_searched: reference,
            found,
        })
    }
}

fn mode_name(m: ErasureMode) -> &'static str {
    match m {
        ErasureMode::Delete => "delete",
        ErasureMode::Anonymize => "anonymize",
    }
}

/// The plaintext values a verification looks for: identity values, names
/// and other attribute texts, feedback texts.
fn search_values(p: &Pending) -> Vec<String> {
    let mut v: Vec<String> = p.identities.iter().map(|(_, _, v)| v.clone()).collect();
    v.extend(p.attributes.iter().map(|(_, v)| v.clone()));
    v.extend(p.texts.iter().cloned());
    v.retain(|s| !s.trim().is_empty());
    v
}

/// Rewrites a rejects file without the rows whose value holds an erased
/// value; returns how many went.
fn scrub_rejects(path: &Path, values: &[String]) -> Result<u64, EngineError> {
    let wanted: Vec<String> = values
        .iter()
        .filter(|v| v.len() >= 3)
        .map(|v| v.to_lowercase())
        .collect();
    if wanted.is_empty() {
        return Ok(0);
    }
    let text = std::fs::read_to_string(path).map_err(|e| EngineError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let mut kept = String::with_capacity(text.len());
    let mut removed = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let low = line.to_lowercase();
        if i > 0 && wanted.iter().any(|w| low.contains(w.as_str())) {
            removed += 1;
        } else {
            kept.push_str(line);
        }
    }
    if removed > 0 {
        let tmp = sibling(path, ".tmp");
        let io = |e: std::io::Error| EngineError::Io {
            path: tmp.display().to_string(),
            source: e,
        };
        std::fs::write(&tmp, kept).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
    }
    Ok(removed)
}

/// What `privacy retain` did per fact kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetainReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// Per kind: the retention, the cutoff and the rows.
    pub kinds: Vec<RetainKind>,
}

/// One fact kind of a retention pass.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetainKind {
    /// Fact kind.
    pub kind: String,
    /// As configured (`400d`).
    pub keep: String,
    /// Facts older than this (Unix seconds) go.
    pub cutoff: i64,
    /// Tables and rows.
    pub tables: Vec<TableCount>,
}

impl Engine {
    /// Applies `[privacy.retention]`: deletes facts older than their kind
    /// keeps, measured from `now` (Unix seconds). Needs `privacy.manage`.
    pub fn privacy_retain(
        &self,
        a: &Access,
        now: i64,
        dry_run: bool,
    ) -> Result<RetainReport, EngineError> {
        if a.action != Action::PrivacyManage {
            return Err(EngineError::Invariant(
                "privacy_retain needs an access for privacy.manage".into(),
            ));
        }
        let cfg = self.privacy()?;
        let secs = cfg.retention_seconds().map_err(EngineError::Invalid)?;
        let mut kinds = Vec::new();
        for (kind, keep) in &secs {
            let cutoff = now - keep;
            let tables = self.store.retain(kind, cutoff, dry_run)?;
            kinds.push(RetainKind {
                kind: kind.clone(),
                keep: cfg.retention.get(kind).cloned().unwrap_or_default(),
                cutoff,
                tables,
            });
        }
        if !dry_run && !kinds.is_empty() {
            if let Some(cache) = &self.cache {
                let _ = std::fs::remove_file(cache);
            }
            self.store.vacuum()?;
        }
        let n: u64 = kinds.iter().flat_map(|k| &k.tables).map(|t| t.rows).sum();
        self.record(crate::audit::entry(
            &a.principal,
            "privacy.retain",
            vec![],
            vec![],
            &format!(
                "{} {n} rows older than their retention",
                if dry_run { "would delete" } else { "deleted" }
            ),
        ))?;
        Ok(RetainReport { dry_run, kinds })
    }

    /// Re-encrypts the store under a new data key (needs `privacy.manage`).
    pub fn privacy_rotate_key(
        &mut self,
        a: &Access,
    ) -> Result<infogap_store::RotateReport, EngineError> {
        if a.action != Action::PrivacyManage {
            return Err(EngineError::Invariant(
                "privacy_rotate_key needs an access for privacy.manage".into(),
            ));
        }
        let rep = self.store.rotate_key()?;
        // the cache's personal sections were sealed with the old key
        if let Some(cache) = &self.cache {
            let _ = std::fs::remove_file(cache);
        }
        self.record(crate::audit::entry(
            &a.principal,
            "privacy.rotate-key",
            vec![],
            vec![],
            &format!("key {} replaced by key {}", rep.old_key_id, rep.new_key_id),
        ))?;
        Ok(rep)
    }
}
