//! infogap-engine: the use cases that join readers, store and models.
//!
//! The CLI (and later the HTTP server) calls only this crate. It owns the
//! import pipeline (read → validate → resolve identities → write, one
//! transaction per file), the demo data generator, reports over the store, and
//! the glue that loads a [`Dataset`] snapshot for the model families and saves
//! fitted models back into the store.

pub mod access;
pub mod analytics;
pub mod audit;
pub mod churn;
pub mod clv;
pub mod demo;
pub mod features;
pub mod forecast;
pub mod import;
pub mod invariants;
pub mod keys;
pub mod privacy;
pub mod recs;
pub mod report;
pub mod share;
pub mod snapshot;

use std::path::Path;

pub use infogap_core::dataset::Dataset;
use infogap_store::{SqliteStore, Store};

/// Errors of the use cases. User errors (bad input, unknown customer) are kept
/// apart from internal ones so the front ends can map them to exit codes or
/// HTTP statuses at the edge.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] infogap_store::StoreError),
    /// Reading or validating an input failed.
    #[error(transparent)]
    Ingest(#[from] infogap_ingest::IngestError),
    /// A model could not be fitted or applied.
    #[error(transparent)]
    Model(#[from] infogap_models::ModelError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] infogap_core::config::ConfigError),
    /// Something asked for does not exist (customer, model, segment, …).
    #[error("not found: {0}")]
    NotFound(String),
    /// No valid credentials: missing, unknown, expired or revoked key or
    /// token (the message never says which, nor echoes the secret).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Authenticated, but the policy does not allow this action, customer
    /// or department.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The request is invalid (user error), with the reason.
    #[error("{0}")]
    Invalid(String),
    /// A report holds a value that cannot be true (see [`invariants`]): a
    /// bug, never a user error.
    #[error("internal error (a bug, please report it): {0}")]
    Invariant(String),
    /// A file could not be read or written.
    // The cause is the error's source (printed by the caller's cause chain),
    // not repeated in the message.
    #[error("{path}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// A fitted model saved in the store.
#[derive(Debug, Clone)]
pub struct ModelRecord {
    /// Model kind (`recs`, `churn`, `amount`, `clv`, …).
    pub kind: String,
    /// Version number, increasing per kind.
    pub version: i64,
    /// When it was saved (RFC 3339).
    pub created_at: String,
    /// Parameters it was trained with.
    pub params: serde_json::Value,
    /// Metrics measured when it was trained.
    pub metrics: serde_json::Value,
    /// The serialized model (format chosen by the family).
    pub blob: Vec<u8>,
}

/// A handle on one store, with the use cases as methods.
pub struct Engine {
    store: Box<dyn Store>,
    /// The snapshot cache file beside the store (none for a store given
    /// by [`Engine::with_store`]).
    cache: Option<std::path::PathBuf>,
    /// The store file (none for a store given by [`Engine::with_store`]).
    db_path: Option<std::path::PathBuf>,
    /// The store's secret for keyed hashes of keys, loaded once.
    secret: std::sync::OnceLock<keys::Secret>,
    /// Where audit records go (opened on first use).
    audit: std::sync::OnceLock<std::sync::Arc<audit::AuditSink>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// Opens (creating and migrating if needed) the SQLite store at `path`.
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        let store = SqliteStore::open(path)?;
        Ok(Engine {
            store: Box::new(store),
            cache: Some(infogap_store::cache::cache_path(path)),
            db_path: Some(path.to_path_buf()),
            secret: std::sync::OnceLock::new(),
            audit: std::sync::OnceLock::new(),
        })
    }

    /// Opens an existing store only: `no store at PATH` when the file does
    /// not exist (a read must never create an empty store).
    pub fn open_existing(path: &Path) -> Result<Self, EngineError> {
        if !path.exists() {
            return Err(EngineError::NotFound(format!(
                "no store at {}",
                path.display()
            )));
        }
        Self::open(path)
    }

    /// Wraps any storage backend.
    pub fn with_store(store: Box<dyn Store>) -> Self {
        Engine {
            store,
            cache: None,
            db_path: None,
            secret: std::sync::OnceLock::new(),
            audit: std::sync::OnceLock::new(),
        }
    }

    /// The store file, when the store is one.
    pub fn db_path(&self) -> Option<&Path> {
        self.db_path.as_deref()
    }

    /// The storage backend.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Saves a fitted model as the next version of its kind.
    pub fn save_model(
        &self,
        kind: &str,
        params: &serde_json::Value,
        metrics: &serde_json::Value,
        blob: &[u8],
    ) -> Result<ModelRecord, EngineError> {
        let rec = self.store.save_model(kind, params, metrics, blob)?;
        Ok(from_store_model(rec))
    }

    /// Loads the newest saved model of a kind.
    pub fn load_model(&self, kind: &str) -> Result<Option<ModelRecord>, EngineError> {
        Ok(self.store.load_model(kind)?.map(from_store_model))
    }

    /// Finds the unified customer a key belongs to: a customer id of `namespace`
    /// (or of any namespace when `None`), an email or a phone number (normalized
    /// the same way as on import), or `#ID` for the store's own id.
    pub fn find_customer(
        &self,
        key: &str,
        namespace: Option<&str>,
    ) -> Result<Option<i64>, EngineError> {
        report::find_customer(self.store.as_ref(), key, namespace)
    }
}

fn from_store_model(r: infogap_store::SavedModel) -> ModelRecord {
    ModelRecord {
        kind: r.kind,
        version: r.version,
        created_at: r.created_at,
        params: r.params,
        metrics: r.metrics,
        blob: r.blob,
    }
}
