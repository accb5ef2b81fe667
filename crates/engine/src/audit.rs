//! Recording and reading the audit trail: every read, search, export and
//! change of customer data by any principal becomes one chained record
//! (see `infogap_store::audit`) before the data leaves the engine.
//!
//! A command line writes its record directly. A server shares one
//! [`AuditSink::group`]: a writer thread takes every record waiting, appends
//! them in one transaction and only then releases the requests that made
//! them, so a response is never sent before its record is durable, and the
//! trail costs one commit per batch, not per request.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use infogap_store::audit::{
    AuditEntry, AuditFilter, AuditLog, AuditRecord, ChainCheck, audit_path,
};
use serde::Serialize;

use crate::access::{Access, Principal};
use crate::{Engine, EngineError};

type Reply = mpsc::SyncSender<Result<i64, String>>;

/// Where records go.
pub enum AuditSink {
    /// Appended by the caller, one transaction each.
    Direct(Arc<AuditLog>),
    /// Appended by a writer thread in batches (group commit).
    Group {
        /// The log (for reads).
        log: Arc<AuditLog>,
        /// Records waiting for the writer.
        queue: Mutex<mpsc::Sender<(AuditEntry, Reply)>>,
    },
}

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditSink::Direct(_) => f.write_str("AuditSink::Direct"),
            AuditSink::Group { .. } => f.write_str("AuditSink::Group"),
        }
    }
}

/// Most records one group commit takes.
const BATCH: usize = 4096;

impl AuditSink {
    /// A sink with a writer thread that group-commits.
    pub fn group(log: Arc<AuditLog>) -> Arc<AuditSink> {
        // checkpoints on their own connection and thread: with SQLite's
        // automatic ones, the commit that crossed 1,000 WAL pages copied them
        // while every request of its batch waited (the p99 at 1,000 req/s)
        if log.set_autocheckpoint(0).is_ok()
            && let Ok(cp) = AuditLog::open(log.path(), false)
        {
            let alive = Arc::downgrade(&log);
            let _ = thread::Builder::new()
                .name("audit-checkpoint".into())
                .spawn(move || {
                    while alive.upgrade().is_some() {
                        thread::sleep(std::time::Duration::from_millis(250));
                        if let Err(e) = cp.checkpoint() {
                            tracing::warn!(error = %e, "audit trail: checkpoint failed");
                        }
                    }
                });
        }
        let (tx, rx) = mpsc::channel::<(AuditEntry, Reply)>();
        let writer = log.clone();
        thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(x) => batch.push(x),
                            Err(_) => break,
                        }
                    }
                    let entries: Vec<AuditEntry> = batch.iter().map(|(e, _)| e.clone()).collect();
                    match writer.append(&entries) {
                        Ok(seqs) => {
                            for ((_, reply), seq) in batch.into_iter().zip(seqs) {
                                let _ = reply.send(Ok(seq));
                            }
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "audit trail: append failed");
                            for (_, reply) in batch {
                                let _ = reply.send(Err(e.to_string()));
                            }
                        }
                    }
                }
            })
            .unwrap_or_else(|e| panic!("cannot start the audit writer thread: {e}"));
        Arc::new(AuditSink::Group {
            log,
            queue: Mutex::new(tx),
        })
    }

    /// The log.
    pub fn log(&self) -> &AuditLog {
        match self {
            AuditSink::Direct(l) => l,
            AuditSink::Group { log, .. } => log,
        }
    }

    /// Appends one record and returns once it is durable.
    pub fn append(&self, e: AuditEntry) -> Result<i64, EngineError> {
        match self {
            AuditSink::Direct(l) => Ok(l.append(std::slice::from_ref(&e))?[0]),
            AuditSink::Group { queue, .. } => {
                let (tx, rx) = mpsc::sync_channel(1);
                {
                    let q = match queue.lock() {
                        Ok(q) => q,
                        Err(p) => p.into_inner(),
                    };
                    q.send((e, tx)).map_err(|_| {
                        EngineError::Invariant("the audit writer thread has stopped".into())
                    })?;
                }
                match rx.recv() {
                    Ok(Ok(seq)) => Ok(seq),
                    Ok(Err(msg)) => {
                        Err(EngineError::Store(infogap_store::StoreError::Database(msg)))
                    }
                    Err(_) => Err(EngineError::Invariant(
                        "the audit writer thread has stopped".into(),
                    )),
                }
            }
        }
    }
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// An audit entry for a principal's action.
pub fn entry(
    p: &Principal,
    action: &str,
    customers: Vec<i64>,
    fields: Vec<String>,
    detail: &str,
) -> AuditEntry {
    AuditEntry {
        time_us: now_us(),
        actor: p.name.clone(),
        actor_kind: p.kind.as_str().to_string(),
        role: p.role.clone(),
        action: action.to_string(),
        customers,
        fields,
        origin: p.origin.clone(),
        request_id: p.request_id.clone(),
        detail: detail.to_string(),
    }
}

/// A page of the trail as `GET /v1/audit` and `infogap audit` show it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditPage {
    /// Records, newest first.
    pub records: Vec<AuditRecord>,
    /// Cursor of the next (older) page, if any.
    pub next_cursor: Option<String>,
}

impl Engine {
    /// The audit sink (the store's trail, opened on first use).
    pub fn audit_sink(&self) -> Result<Arc<AuditSink>, EngineError> {
        if let Some(s) = self.audit.get() {
            return Ok(s.clone());
        }
        let log = match (&self.db_path, &self.pg_url) {
            (Some(p), _) => AuditLog::open(&audit_path(p), true)?,
            (None, Some(url)) => AuditLog::open_postgres(url)?,
            (None, None) => AuditLog::in_memory()?,
        };
        Ok(self
            .audit
            .get_or_init(|| Arc::new(AuditSink::Direct(Arc::new(log))))
            .clone())
    }

    /// Makes this engine record through a shared sink (a server's engines
    /// share one group-commit writer).
    pub fn set_audit_sink(&self, sink: Arc<AuditSink>) -> Result<(), EngineError> {
        self.audit
            .set(sink)
            .map_err(|_| EngineError::Invariant("the audit sink is already set".into()))
    }

    /// Records an entry; returns once it is durable.
    pub fn record(&self, e: AuditEntry) -> Result<i64, EngineError> {
        self.audit_sink()?.append(e)
    }

    /// Records what an access returned: `customers` and the field classes
    /// the principal was shown.
    pub fn record_access(
        &self,
        a: &Access,
        action: &str,
        customers: Vec<i64>,
        fields: Vec<String>,
    ) -> Result<i64, EngineError> {
        self.record(entry(&a.principal, action, customers, fields, "ok"))
    }

    /// Reads the trail (the caller has been granted `audit.read`, and this
    /// read is itself recorded).
    pub fn audit_records(
        &self,
        a: &Access,
        filter: &AuditFilter,
    ) -> Result<AuditPage, EngineError> {
        let limit = filter.limit.clamp(1, 1000);
        let mut f = filter.clone();
        f.limit = limit + 1;
        let mut records = self.audit_sink()?.log().records(&f)?;
        let next_cursor = if records.len() > limit {
            records.truncate(limit);
            records.last().map(|r| r.seq.to_string())
        } else {
            None
        };
        let customers: Vec<i64> = filter.customer.into_iter().collect();
        self.record(entry(&a.principal, "audit.read", customers, vec![], "ok"))?;
        Ok(AuditPage {
            records,
            next_cursor,
        })
    }

    /// Checks the trail's chain.
    pub fn audit_verify(&self) -> Result<ChainCheck, EngineError> {
        Ok(self.audit_sink()?.log().verify()?)
    }
}
