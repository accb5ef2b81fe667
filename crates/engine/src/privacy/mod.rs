//! Privacy use cases: the `[privacy]` rules of the store, consent by
//! purpose, the person's export, erasure with its receipt, retention, and
//! aggregates that protect small groups. One submodule per concern; every
//! one takes the acting principal's [`crate::access::Access`] and writes
//! the audit record, like the rest of the engine.

pub mod aggregate;

pub mod consent;

pub mod erase;

pub mod export;

use infogap_core::privacy::PrivacyConfig;

use crate::{Engine, EngineError};

impl Engine {
    /// The `[privacy]` rules of the config last imported into this store
    /// (the defaults when none was).
    pub fn privacy(&self) -> Result<PrivacyConfig, EngineError> {
        match self.store.setting("privacy")? {
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                EngineError::Invalid(format!("the stored [privacy] rules are unreadable: {e}"))
            }),
            None => Ok(PrivacyConfig::default()),
        }
    }
}
