//! The SQLite store's data key: finding and checking it at open, sealing a
//! store's plaintext on its first keyed open, and rotating it.
//!
//! Rotation survives `kill -9` at any point: the new key is written to
//! `<key>.new` (synced) first; one SQLite transaction then re-seals every
//! value and re-derives every blind index, and records the new key id; only
//! then is `<key>.new` renamed over the key file (the old one is kept as
//! `<key>.previous`, which older backups need). A store whose recorded key
//! id matches `<key>.new` rather than the key file finishes the rename at
//! its next open, so every interruption ends in exactly one of: the old key
//! and old ciphertexts, or the new key and new ciphertexts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::crypto::{self, DataKey, Field};
use crate::sql::RawDb;
use crate::{Result, SqliteStore, StoreError};

/// What a (re-)encryption pass changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SealCounts {
    /// Identity values (and their blind indexes).
    pub identities: u64,
    /// Attribute values.
    pub attributes: u64,
    /// Feedback texts.
    pub feedback_texts: u64,
    /// Saved model blobs.
    pub models: u64,
}

/// The outcome of `privacy rotate-key`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RotateReport {
    /// Key id before.
    pub old_key_id: String,
    /// Key id after.
    pub new_key_id: String,
    /// The key file (now holding the new key).
    pub key_file: String,
    /// Where the old key was kept (backups made before need it).
    pub previous_key_file: String,
    /// Values re-sealed.
    pub resealed: SealCounts,
    /// Seconds taken.
    pub seconds: f64,
}

/// Loads the key at `path` and checks it is the store's (`id`); finishes an
/// interrupted rotation whose new key matches.
pub(crate) fn load_checked(path: &Path, id: &str) -> Result<DataKey> {
    let loaded = match DataKey::load(path) {
        Ok(k) if k.id() == id => return Ok(k),
        other => other,
    };
    let pending = crypto::pending_key_path(path);
    if let Ok(k) = DataKey::load(&pending)
        && k.id() == id
    {
        finish_rotation(path)?;
        return Ok(k);
    }
    Err(match loaded {
        Ok(k) => StoreError::Key {
            path: path.display().to_string(),
            reason: format!(
                "it holds key {} but this store is encrypted with key {id}; give the right key file with INFOGAP_KEY_FILE or [privacy] key_file",
                k.id()
            ),
        },
        Err(StoreError::Key { path, reason }) => StoreError::Key {
            path,
            reason: format!(
                "{reason}; this store is encrypted with key {id}: give its key file with INFOGAP_KEY_FILE or [privacy] key_file"
            ),
        },
        Err(e) => e,
    })
}

/// Installs `<key>.new` as the key file, keeping the old one as
/// `<key>.previous`.
fn finish_rotation(path: &Path) -> Result<()> {
    let pending = crypto::pending_key_path(path);
    let kerr = |p: &Path, e: std::io::Error| StoreError::Key {
        path: p.display().to_string(),
        reason: e.to_string(),
    };
    if path.exists() {
        std::fs::copy(path, crypto::previous_key_path(path)).map_err(|e| kerr(path, e))?;
    }
    std::fs::rename(&pending, path).map_err(|e| kerr(&pending, e))?;
    crypto::sync_dir(path);
    Ok(())
}

impl SqliteStore {
    /// The data key, when the store has one.
    pub fn data_key(&self) -> Option<Arc<DataKey>> {
        match self.key.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The key file in use.
    pub fn key_path(&self) -> Option<&Path> {
        self.key_path.as_deref()
    }

    /// Whether this open generated the key file (tell the user to move and
    /// back it up).
    pub fn key_generated(&self) -> bool {
        self.key_generated
    }

    pub(crate) fn install_key(&mut self, k: DataKey, path: PathBuf) {
        let k = Some(Arc::new(k));
        match self.key.write() {
            Ok(mut g) => *g = k,
            Err(p) => *p.into_inner() = k,
        }
        self.key_path = Some(path);
    }

    /// The recorded key id and key file, when the store is encrypted.
    pub(crate) fn stored_key_id(&self) -> Result<Option<(String, Option<PathBuf>)>> {
        self.with_raw(|db| {
            if !db.table_exists("settings")? {
                return Ok(None);
            }
            let get = |key: &str| -> Result<Option<String>> {
                let mut st = db.prepare("SELECT value FROM settings WHERE key = ?1")?;
                st.bind_text(1, key)?;
                Ok(if st.step()? { Some(st.text(0)?) } else { None })
            };
            match get("privacy.key_id")? {
                Some(id) => Ok(Some((id, get("privacy.key_file")?.map(PathBuf::from)))),
                None => Ok(None),
            }
        })
    }

    /// First keyed open of a store: loads the key file (generating it when
    /// missing), seals every plaintext value and records the key id, in
    /// one transaction.
    pub(crate) fn establish_key(&mut self, path: &Path, explicit: Option<&Path>) -> Result<()> {
        let path = path.to_path_buf();
        let (key, generated) = if path.exists() {
            (DataKey::load(&path)?, false)
        } else {
            let k = DataKey::generate();
            k.write(&path)?;
            (k, true)
        };
        let remember = explicit.map(|p| absolute(p).display().to_string());
        let sealed = self.with_raw(|raw| {
            raw.immediate(|| {
                let c = reseal(raw, None, &key)?;
                set(raw, "privacy.key_id", key.id())?;
                if let Some(f) = &remember {
                    set(raw, "privacy.key_file", f)?;
                }
                Ok(c)
            })
        })?;
        if sealed != SealCounts::default() {
            // a store written before encryption: its plaintext leaves the
            // free pages and the WAL too
            self.vacuum()?;
        }
        self.key_generated = generated;
        self.install_key(key, path);
        Ok(())
    }

    /// Re-seals everything under a new key (see the module comment for why
    /// an interruption loses nothing).
    pub fn rotate_key(&mut self) -> Result<RotateReport> {
        let t0 = std::time::Instant::now();
        let (old, path) = match (self.data_key(), self.key_path.clone()) {
            (Some(k), Some(p)) => (k, p),
            _ => {
                return Err(StoreError::Corrupt(
                    "this store has no data key to rotate".into(),
                ));
            }
        };
        let new = old.rotated();
        let pending = crypto::pending_key_path(&path);
        new.write(&pending)?;
        crate::failpoint("rotate-key:before-commit");
        let counts = self.with_raw(|raw| {
            raw.immediate(|| {
                let c = reseal(raw, Some(&old), &new)?;
                set(raw, "privacy.key_id", new.id())?;
                Ok(c)
            })
        })?;
        // `kill -9` here: the next open finds the store on the new key id
        // and finishes the rename
        crate::failpoint("rotate-key:after-commit");
        finish_rotation(&path)?;
        // old ciphertexts out of the free pages and the WAL
        self.vacuum()?;
        let report = RotateReport {
            old_key_id: old.id().to_string(),
            new_key_id: new.id().to_string(),
            key_file: path.display().to_string(),
            previous_key_file: crypto::previous_key_path(&path).display().to_string(),
            resealed: counts,
            seconds: t0.elapsed().as_secs_f64(),
        };
        self.install_key(new, path);
        Ok(report)
    }
}

impl SqliteStore {
    /// Rewrites the database without its free pages (zeroed first, with
    /// `secure_delete`) and truncates the WAL: deleted values are then gone
    /// from the files, not only from the tables.
    pub fn vacuum(&self) -> Result<()> {
        self.with_raw(|raw| {
            raw.exec("PRAGMA secure_delete = ON")?;
            raw.exec("VACUUM")?;
            raw.exec("PRAGMA wal_checkpoint(TRUNCATE)")
        })
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn set(raw: &RawDb<'_>, key: &str, value: &str) -> Result<()> {
    let mut st = raw.prepare(
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?;
    st.bind_text(1, key)?;
    st.bind_text(2, value)?;
    st.step()?;
    Ok(())
}

/// Opens a stored value: its ciphertext under `old` when it has one, else
/// the plaintext column.
fn plain(
    old: Option<&DataKey>,
    field: Field,
    secret: Option<Vec<u8>>,
    clear: Option<String>,
) -> Result<Option<String>> {
    match (secret, old) {
        (Some(s), Some(k)) => k.open_text(field, &s).map(Some),
        (Some(_), None) => Err(StoreError::Corrupt(
            "an encrypted value without a key to open it".into(),
        )),
        (None, _) => Ok(clear),
    }
}

/// Seals every personal value under `new` (opening ciphertexts with `old`)
/// and re-derives the blind indexes and digests, inside the caller's
/// transaction.
pub(crate) fn reseal(raw: &RawDb<'_>, old: Option<&DataKey>, new: &DataKey) -> Result<SealCounts> {
    let mut c = SealCounts::default();
    let mut rows = Vec::new();
    {
        let mut st = raw.prepare("SELECT id, value, secret FROM identities")?;
        while st.step()? {
            rows.push((st.i64(0)?, st.opt_text(1)?, st.opt_blob(2)?));
        }
    }
    {
        let mut up = raw.prepare("UPDATE identities SET value = ?1, secret = ?2 WHERE id = ?3")?;
        for (id, clear, secret) in rows.drain(..) {
            let v = plain(old, Field::Identity, secret, clear)?.unwrap_or_default();
            up.bind_text(1, &new.blind(&v))?;
            up.bind_blob(2, &new.seal(Field::Identity, v.as_bytes()))?;
            up.bind_i64(3, id)?;
            up.step()?;
            up.reset()?;
            c.identities += 1;
        }
    }
    let mut attrs = Vec::new();
    {
        let mut st =
            raw.prepare("SELECT rowid, identity_id, name, value, secret FROM attributes")?;
        while st.step()? {
            attrs.push((
                st.i64(0)?,
                st.i64(1)?,
                st.text(2)?,
                st.opt_text(3)?,
                st.opt_blob(4)?,
            ));
        }
    }
    {
        let mut up = raw.prepare(
            "UPDATE attributes SET value = '', secret = ?1, digest = ?2 WHERE rowid = ?3",
        )?;
        for (rowid, identity, name, clear, secret) in attrs {
            let v = plain(old, Field::Attribute, secret, clear)?.unwrap_or_default();
            up.bind_blob(1, &new.seal(Field::Attribute, v.as_bytes()))?;
            up.bind_text(2, &new.row_digest(identity, &name, &v))?;
            up.bind_i64(3, rowid)?;
            up.step()?;
            up.reset()?;
            c.attributes += 1;
        }
    }
    let mut texts = Vec::new();
    {
        let mut st = raw.prepare(
            "SELECT id, text, secret FROM feedback WHERE text IS NOT NULL OR secret IS NOT NULL",
        )?;
        while st.step()? {
            texts.push((st.i64(0)?, st.opt_text(1)?, st.opt_blob(2)?));
        }
    }
    {
        let mut up = raw.prepare("UPDATE feedback SET text = NULL, secret = ?1 WHERE id = ?2")?;
        for (id, clear, secret) in texts {
            let v = plain(old, Field::FeedbackText, secret, clear)?.unwrap_or_default();
            up.bind_blob(1, &new.seal(Field::FeedbackText, v.as_bytes()))?;
            up.bind_i64(2, id)?;
            up.step()?;
            up.reset()?;
            c.feedback_texts += 1;
        }
    }
    let mut intake = Vec::new();
    {
        let mut st = raw.prepare(
            "SELECT seq, body, secret FROM intake WHERE body IS NOT NULL OR secret IS NOT NULL",
        )?;
        while st.step()? {
            intake.push((st.i64(0)?, st.opt_text(1)?, st.opt_blob(2)?));
        }
    }
    {
        let mut up = raw.prepare("UPDATE intake SET body = NULL, secret = ?1 WHERE seq = ?2")?;
        for (seq, clear, secret) in intake {
            let v = plain(old, Field::Intake, secret, clear)?.unwrap_or_default();
            up.bind_blob(1, &new.seal(Field::Intake, v.as_bytes()))?;
            up.bind_i64(2, seq)?;
            up.step()?;
            up.reset()?;
        }
    }
    let mut outbox = Vec::new();
    {
        let mut st = raw.prepare(
            "SELECT id, body, secret FROM webhook_outbox WHERE body IS NOT NULL OR secret IS NOT NULL",
        )?;
        while st.step()? {
            outbox.push((st.i64(0)?, st.opt_text(1)?, st.opt_blob(2)?));
        }
    }
    {
        let mut up =
            raw.prepare("UPDATE webhook_outbox SET body = NULL, secret = ?1 WHERE id = ?2")?;
        for (id, clear, secret) in outbox {
            let v = plain(old, Field::Outbox, secret, clear)?.unwrap_or_default();
            up.bind_blob(1, &new.seal(Field::Outbox, v.as_bytes()))?;
            up.bind_i64(2, id)?;
            up.step()?;
            up.reset()?;
        }
    }
    let mut models = Vec::new();
    {
        let mut st = raw.prepare("SELECT id, blob, sealed FROM models")?;
        while st.step()? {
            models.push((st.i64(0)?, st.blob(1)?, st.i64(2)? != 0));
        }
    }
    {
        let mut up = raw.prepare("UPDATE models SET blob = ?1, sealed = 1 WHERE id = ?2")?;
        for (id, stored, sealed) in models {
            let blob = crate::sqlite::open_model(old, sealed, stored)?;
            up.bind_blob(1, &new.seal(Field::Model, &blob))?;
            up.bind_i64(2, id)?;
            up.step()?;
            up.reset()?;
            c.models += 1;
        }
    }
    Ok(c)
}
