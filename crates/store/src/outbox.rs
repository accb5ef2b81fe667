//! Webhooks and their outbox (schema version 9): the durable queue between
//! an alert and its delivery. Every state change is one short write
//! transaction, so a message is never lost to a crash: it is written with
//! the webhook's alert cursor, claimed under a lease (a killed server's
//! claim runs out and the message is tried again), and finished as
//! delivered, retried later or dead (the dead-letter list, until replayed).
//! Payloads are sealed under the data key when the store has one and
//! cleared once delivered.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::crypto::Field;
use crate::sql::Stmt;
use crate::sqlite::SqliteStore;
use crate::{Result, StoreError};

/// A new webhook.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    /// Where messages are posted.
    pub url: String,
    /// Event types it takes (`churn.high`, …).
    pub events: Vec<String>,
    /// The role whose field policy shapes its payloads.
    pub role: String,
    /// The department it is limited to.
    pub department: Option<String>,
    /// The salt its signing secret is derived from.
    pub salt: Vec<u8>,
    /// Who added it.
    pub created_by: String,
    /// When (Unix seconds).
    pub created_at: i64,
}

/// A stored webhook.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookRecord {
    /// Id.
    pub id: i64,
    /// URL.
    pub url: String,
    /// Event types.
    pub events: Vec<String>,
    /// Role.
    pub role: String,
    /// Department.
    pub department: Option<String>,
    /// Salt of the signing secret (not shown).
    #[serde(skip)]
    pub salt: Vec<u8>,
    /// Added (Unix seconds).
    pub created_at: i64,
    /// By whom.
    pub created_by: String,
    /// The last alert id turned into messages for it.
    pub alerts_from: i64,
    /// Removed (Unix seconds).
    pub removed_at: Option<i64>,
}

/// A message to put into the outbox.
#[derive(Debug, Clone)]
pub struct OutboxIn {
    /// The `webhook-id` header (unique).
    pub msg_id: String,
    /// The webhook.
    pub webhook_id: i64,
    /// Event type.
    pub event: String,
    /// The person it is about (erased with them).
    pub customer_id: Option<i64>,
    /// The alert it carries.
    pub alert_id: Option<i64>,
    /// The payload (JSON).
    pub body: String,
}

/// A message of the outbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxRecord {
    /// Id.
    pub id: i64,
    /// The `webhook-id` header.
    pub msg_id: String,
    /// Webhook.
    pub webhook_id: i64,
    /// Event type.
    pub event: String,
    /// The person it is about.
    pub customer_id: Option<i64>,
    /// The alert it carries.
    pub alert_id: Option<i64>,
    /// Written (Unix seconds).
    pub created_at: i64,
    /// The payload (only when claimed for a try).
    #[serde(skip)]
    pub body: Option<String>,
    /// `pending`, `delivered`, `dead` or `dropped`.
    pub state: String,
    /// Tries so far.
    pub attempts: i64,
    /// Next try (Unix ms).
    pub next_at: i64,
    /// The last answer's HTTP status.
    pub last_status: Option<i64>,
    /// The last failure.
    pub last_error: Option<String>,
    /// Finished (Unix seconds).
    pub done_at: Option<i64>,
}

/// What became of one try.
#[derive(Debug, Clone)]
pub struct OutboxOutcome {
    /// Message id (row).
    pub id: i64,
    /// The receiver answered 2xx.
    pub delivered: bool,
    /// HTTP status, when there was an answer.
    pub status: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// When to try again (Unix ms); `None` after a failed last try: dead.
    pub retry_at: Option<i64>,
}

const COLUMNS: &str = "id, msg_id, webhook_id, event, customer_id, alert_id, created_at, \
                       state, attempts, next_at, last_status, last_error, done_at";

fn record(st: &Stmt<'_>) -> Result<OutboxRecord> {
    Ok(OutboxRecord {
        id: st.i64(0)?,
        msg_id: st.text(1)?,
        webhook_id: st.i64(2)?,
        event: st.text(3)?,
        customer_id: st.opt_i64(4)?,
        alert_id: st.opt_i64(5)?,
        created_at: st.i64(6)?,
        body: None,
        state: st.text(7)?,
        attempts: st.i64(8)?,
        next_at: st.i64(9)?,
        last_status: st.opt_i64(10)?,
        last_error: st.opt_text(11)?,
        done_at: st.opt_i64(12)?,
    })
}

fn webhook(st: &Stmt<'_>) -> Result<WebhookRecord> {
    Ok(WebhookRecord {
        id: st.i64(0)?,
        url: st.text(1)?,
        events: st
            .text(2)?
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        role: st.text(3)?,
        department: st.opt_text(4)?,
        salt: st.blob(5)?,
        created_at: st.i64(6)?,
        created_by: st.text(7)?,
        alerts_from: st.i64(8)?,
        removed_at: st.opt_i64(9)?,
    })
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

impl SqliteStore {
    pub(crate) fn create_webhook_impl(&self, w: &NewWebhook) -> Result<i64> {
        self.with_raw(|db| {
            db.immediate(|| {
                let mut st = db.prepare(
                    "INSERT INTO webhooks (url, events, role, department, salt, created_at, created_by, alerts_from)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, (SELECT COALESCE(MAX(id), 0) FROM alerts))
                     RETURNING id",
                )?;
                st.bind_text(1, &w.url)?;
                st.bind_text(2, &w.events.join(","))?;
                st.bind_text(3, &w.role)?;
                st.bind_opt_text(4, w.department.as_deref())?;
                st.bind_blob(5, &w.salt)?;
                st.bind_i64(6, w.created_at)?;
                st.bind_text(7, &w.created_by)?;
                if !st.step()? {
                    return Err(StoreError::Database("webhook insert returned no id".into()));
                }
                st.i64(0)
            })
        })
    }

    pub(crate) fn webhooks_impl(&self) -> Result<Vec<WebhookRecord>> {
        self.with_raw(|db| {
            let mut st = db.prepare(
                "SELECT id, url, events, role, department, salt, created_at, created_by, alerts_from, removed_at
                 FROM webhooks ORDER BY id",
            )?;
            let mut out = Vec::new();
            while st.step()? {
                out.push(webhook(&st)?);
            }
            Ok(out)
        })
    }

    pub(crate) fn remove_webhook_impl(&self, id: i64, at: i64) -> Result<bool> {
        self.with_raw(|db| {
            db.immediate(|| {
                let mut st = db.prepare(
                    "UPDATE webhooks SET removed_at = ?2 WHERE id = ?1 AND removed_at IS NULL RETURNING id",
                )?;
                st.bind_i64(1, id)?;
                st.bind_i64(2, at)?;
                let removed = st.step()?;
                drop(st);
                if removed {
                    let mut d = db.prepare(
                        "UPDATE webhook_outbox SET state = 'dropped', body = NULL, secret = NULL,
                         done_at = ?2, last_error = 'the webhook was removed'
                         WHERE webhook_id = ?1 AND state IN ('pending', 'dead')",
                    )?;
                    d.bind_i64(1, id)?;
                    d.bind_i64(2, at)?;
                    d.step()?;
                }
                Ok(removed)
            })
        })
    }

    pub(crate) fn outbox_enqueue_impl(
        &self,
        cursor: Option<(i64, i64, i64)>,
        rows: &[OutboxIn],
        now_ms: i64,
    ) -> Result<Option<usize>> {
        let key = self.data_key();
        let sealed: Vec<Option<Vec<u8>>> = rows
            .iter()
            .map(|r| {
                key.as_ref()
                    .map(|k| k.seal(Field::Outbox, r.body.as_bytes()))
            })
            .collect();
        self.with_raw(|db| {
            db.immediate(|| {
                if let Some((webhook, from, to)) = cursor {
                    let mut c = db.prepare(
                        "UPDATE webhooks SET alerts_from = ?3 WHERE id = ?1 AND alerts_from = ?2
                         AND removed_at IS NULL RETURNING id",
                    )?;
                    c.bind_i64(1, webhook)?;
                    c.bind_i64(2, from)?;
                    c.bind_i64(3, to)?;
                    if !c.step()? {
                        // another process moved the cursor first: nothing to do
                        return Ok(None);
                    }
                }
                let mut st = db.prepare(
                    "INSERT INTO webhook_outbox (msg_id, webhook_id, event, customer_id, alert_id, created_at, body, secret, next_at)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9
                     WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = ?2 AND removed_at IS NULL)
                     ON CONFLICT DO NOTHING RETURNING id",
                )?;
                let mut n = 0;
                let at = now_secs();
                for (r, sealed) in rows.iter().zip(&sealed) {
                    st.bind_text(1, &r.msg_id)?;
                    st.bind_i64(2, r.webhook_id)?;
                    st.bind_text(3, &r.event)?;
                    match r.customer_id {
                        Some(c) => st.bind_i64(4, c)?,
                        None => st.bind_null(4)?,
                    }
                    match r.alert_id {
                        Some(a) => st.bind_i64(5, a)?,
                        None => st.bind_null(5)?,
                    }
                    st.bind_i64(6, at)?;
                    match sealed {
                        Some(b) => {
                            st.bind_null(7)?;
                            st.bind_blob(8, b)?;
                        }
                        None => {
                            st.bind_text(7, &r.body)?;
                            st.bind_null(8)?;
                        }
                    }
                    st.bind_i64(9, now_ms)?;
                    if st.step()? {
                        n += 1;
                    }
                    st.reset()?;
                }
                Ok(Some(n))
            })
        })
    }

    pub(crate) fn outbox_claim_impl(
        &self,
        now_ms: i64,
        lease_ms: i64,
        max_attempts: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRecord>> {
        let key = self.data_key();
        self.with_raw(|db| {
            // nothing due: no write transaction (the worker asks often, and
            // the intake wants the write lock)
            let mut due = db.prepare(
                "SELECT 1 FROM webhook_outbox WHERE state = 'pending' AND next_at <= ?1 LIMIT 1",
            )?;
            due.bind_i64(1, now_ms)?;
            if !due.step()? {
                return Ok(Vec::new());
            }
            drop(due);
            db.immediate(|| {
                // a try that was claimed and never answered (the server
                // stopped) was the last one: dead, with the reason
                let mut dead = db.prepare(
                    "UPDATE webhook_outbox SET state = 'dead', done_at = ?3,
                     last_error = COALESCE(last_error || '; ', '') || 'no answer recorded for the last try (the server stopped)'
                     WHERE state = 'pending' AND next_at <= ?1 AND attempts >= ?2",
                )?;
                dead.bind_i64(1, now_ms)?;
                dead.bind_i64(2, max_attempts)?;
                dead.bind_i64(3, now_secs())?;
                dead.step()?;
                drop(dead);
                let mut st = db.prepare(&format!(
                    "SELECT {COLUMNS}, body, secret FROM webhook_outbox
                     WHERE state = 'pending' AND next_at <= ?1 ORDER BY next_at, id LIMIT ?2"
                ))?;
                st.bind_i64(1, now_ms)?;
                st.bind_i64(2, i64::try_from(limit).unwrap_or(i64::MAX))?;
                let mut out = Vec::new();
                while st.step()? {
                    let mut r = record(&st)?;
                    r.body = match (st.opt_text(13)?, st.opt_blob(14)?) {
                        (_, Some(sealed)) => match &key {
                            Some(k) => Some(k.open_text(Field::Outbox, &sealed)?),
                            None => {
                                return Err(StoreError::Corrupt(
                                    "a sealed webhook message without a key to open it".into(),
                                ));
                            }
                        },
                        (body, None) => body,
                    };
                    out.push(r);
                }
                drop(st);
                let mut up = db.prepare(
                    "UPDATE webhook_outbox SET attempts = attempts + 1, next_at = ?2 WHERE id = ?1",
                )?;
                for r in &mut out {
                    r.attempts += 1;
                    r.next_at = now_ms + lease_ms;
                    up.bind_i64(1, r.id)?;
                    up.bind_i64(2, r.next_at)?;
                    up.step()?;
                    up.reset()?;
                }
                Ok(out)
            })
        })
    }

    pub(crate) fn outbox_done_impl(&self, outcomes: &[OutboxOutcome]) -> Result<()> {
        let at = now_secs();
        self.with_raw(|db| {
            db.immediate(|| {
                let mut ok = db.prepare(
                    "UPDATE webhook_outbox SET state = 'delivered', done_at = ?2, last_status = ?3,
                     last_error = NULL, body = NULL, secret = NULL
                     WHERE id = ?1 AND state = 'pending'",
                )?;
                let mut again = db.prepare(
                    "UPDATE webhook_outbox SET next_at = ?2, last_status = ?3, last_error = ?4
                     WHERE id = ?1 AND state = 'pending'",
                )?;
                let mut dead = db.prepare(
                    "UPDATE webhook_outbox SET state = 'dead', done_at = ?2, last_status = ?3, last_error = ?4
                     WHERE id = ?1 AND state = 'pending'",
                )?;
                for o in outcomes {
                    let bind_status = |st: &mut Stmt<'_>| match o.status {
                        Some(s) => st.bind_i64(3, s),
                        None => st.bind_null(3),
                    };
                    if o.delivered {
                        ok.bind_i64(1, o.id)?;
                        ok.bind_i64(2, at)?;
                        bind_status(&mut ok)?;
                        ok.step()?;
                        ok.reset()?;
                    } else if let Some(t) = o.retry_at {
                        again.bind_i64(1, o.id)?;
                        again.bind_i64(2, t)?;
                        bind_status(&mut again)?;
                        again.bind_opt_text(4, o.error.as_deref())?;
                        again.step()?;
                        again.reset()?;
                    } else {
                        dead.bind_i64(1, o.id)?;
                        dead.bind_i64(2, at)?;
                        bind_status(&mut dead)?;
                        dead.bind_opt_text(4, o.error.as_deref())?;
                        dead.step()?;
                        dead.reset()?;
                    }
                }
                Ok(())
            })
        })
    }

    pub(crate) fn outbox_impl(
        &self,
        state: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<OutboxRecord>> {
        self.with_raw(|db| {
            let mut st = db.prepare(&format!(
                "SELECT {COLUMNS} FROM webhook_outbox
                 WHERE (?1 IS NULL OR state = ?1) AND id < ?2 ORDER BY id DESC LIMIT ?3"
            ))?;
            st.bind_opt_text(1, state)?;
            st.bind_i64(2, before.unwrap_or(i64::MAX))?;
            st.bind_i64(3, i64::try_from(limit).unwrap_or(i64::MAX))?;
            let mut out = Vec::new();
            while st.step()? {
                out.push(record(&st)?);
            }
            Ok(out)
        })
    }

    pub(crate) fn outbox_replay_impl(&self, id: i64, now_ms: i64) -> Result<bool> {
        self.with_raw(|db| {
            db.immediate(|| {
                let mut st = db.prepare(
                    "UPDATE webhook_outbox SET state = 'pending', attempts = 0, next_at = ?2, done_at = NULL
                     WHERE id = ?1 AND state = 'dead'
                     AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = webhook_id AND w.removed_at IS NULL)
                     RETURNING id",
                )?;
                st.bind_i64(1, id)?;
                st.bind_i64(2, now_ms)?;
                st.step()
            })
        })
    }

    pub(crate) fn outbox_counts_impl(&self) -> Result<BTreeMap<String, u64>> {
        self.with_raw(|db| {
            let mut st = db.prepare("SELECT state, COUNT(*) FROM webhook_outbox GROUP BY state")?;
            let mut out = BTreeMap::new();
            while st.step()? {
                out.insert(st.text(0)?, u64::try_from(st.i64(1)?).unwrap_or(0));
            }
            Ok(out)
        })
    }
}
