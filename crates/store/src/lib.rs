//! infogap-store: where everything lands, behind one [`Store`] trait.
//!
//! Design decisions:
//! - **Synchronous trait, any backend.** The engine and CLI are synchronous;
//!   backends that speak async (sqlx) hide their runtime inside. SQLite and
//!   PostgreSQL share one implementation ([`SqliteStore`], over the
//!   statement API of `sql`, which holds what differs between the two);
//!   [`conformance`] is the suite both must pass.
//! - **Facts point at identities, not customers.** Order lines, events,
//!   feedback, contacts and attributes carry the `identity_id` of the key that
//!   brought them. Merging or splitting customers rewrites only
//!   `identities.customer_id`; every fact follows.
//! - **Ids are assigned by the writer.** An import holds the write lock for
//!   the whole file (`BEGIN IMMEDIATE`), reads the current maximum ids once and
//!   numbers new rows itself, so bulk inserts need no per-row round trip.
//! - **Facts remember their file.** Fact rows carry the `file_id` they came
//!   from: an unchanged file is skipped (by hash), a changed one replaces its
//!   own rows, a new file adds to its source. No per-row uniqueness index is
//!   needed, which keeps bulk inserts close to SQLite's raw speed.
//! - **Versioned migrations** live in `migrations/` and are applied in order at open.

pub mod audit;
pub mod cache;
pub mod conformance;
pub mod crypto;
mod erase;
mod keyed;
pub use erase::{ErasurePlan, ErasureRecord, TableCount};
pub use keyed::{RotateReport, SealCounts};
mod migrate;
mod outbox;
pub use outbox::{NewWebhook, OutboxIn, OutboxOutcome, OutboxRecord, WebhookRecord};
#[doc(hidden)]
pub mod pgtest;
mod raw;
pub mod snapshot;
mod sql;
mod sqlite;

use std::collections::HashMap;

use infogap_core::dataset::{AttrValue, Dataset};
use serde::Serialize;

pub use sqlite::{SqliteStore, redact_url};

/// The PostgreSQL URL a store location names (`postgres://…` or
/// `postgresql://…`), or `None` for a SQLite file path. A location travels
/// as a path everywhere (`--db`, `INFOGAP_DB`, `[store] path`), so a URL is
/// recognised wherever a path is given.
pub fn postgres_url(location: &std::path::Path) -> Option<&str> {
    location
        .to_str()
        .filter(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// A store location as it may be shown (a URL's password hidden).
pub fn shown_location(location: &std::path::Path) -> String {
    match postgres_url(location) {
        Some(url) => redact_url(url),
        None => location.display().to_string(),
    }
}

mod backup;
pub use backup::{BackupCheck, BackupReport, secret_path, verify_backup};

mod export;
pub use export::{
    AttributeRecord, ContactRecord, EventRecord, FeedbackRecord, LineRecord, OrderRecord,
    PersonRows,
};

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("database error: {0}")]
    Database(String),
    /// The store file cannot be opened or created.
    #[error("cannot open store {path}: {reason}")]
    Open {
        /// Path of the store.
        path: String,
        /// Why.
        reason: String,
    },
    /// The store was written by a newer infogap.
    #[error("store schema version {found} is newer than this infogap supports ({supported})")]
    TooNew {
        /// Version found.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// Stored data could not be decoded.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The data key is missing, unreadable or not this store's.
    #[error("key file {path}: {reason}")]
    Key {
        /// The key file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A backup cannot be written or checked.
    #[error("backup {path}: {reason}")]
    Backup {
        /// The backup file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Crash-test hook: when `INFOGAP_FAILPOINT` names this point, the process
/// aborts here, as `kill -9` would stop it. Tests of interrupted rotations
/// and erasures use it to stop at the exact step they want to prove safe.
pub fn failpoint(name: &str) {
    if std::env::var("INFOGAP_FAILPOINT").is_ok_and(|v| v == name) {
        std::process::abort();
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, StoreError>;

/// A source as registered in the store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceRecord {
    /// Store id.
    pub id: i64,
    /// Name from the config.
    pub name: String,
    /// Kind name.
    pub kind: String,
    /// Namespace of its customer ids.
    pub namespace: String,
}

/// One identity key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdentityRecord {
    /// Store id.
    pub id: i64,
    /// Namespace (`email`/`phone` for global keys).
    pub namespace: String,
    /// `customer`, `email` or `phone`.
    pub kind: String,
    /// Normalized value.
    pub value: String,
    /// Unified customer it belongs to.
    pub customer_id: i64,
    /// Source that first brought it.
    pub source_id: i64,
    /// Line (record) of that source.
    pub line: i64,
}

/// One edge of the identity graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkRecord {
    /// Store id.
    pub id: i64,
    /// One identity.
    pub a: i64,
    /// The other identity.
    pub b: i64,
    /// Source whose record linked them.
    pub source_id: i64,
    /// Line of that record.
    pub line: i64,
    /// Rule: `same_record` or `link_table`.
    pub rule: String,
    /// Switched off by a split.
    pub suppressed: bool,
}

/// A new identity to insert.
#[derive(Debug, Clone)]
pub struct NewIdentity {
    /// Preassigned id.
    pub id: i64,
    /// Namespace.
    pub namespace: String,
    /// Kind.
    pub kind: String,
    /// Normalized value.
    pub value: String,
    /// Customer (provisional until resolution).
    pub customer_id: i64,
    /// Source.
    pub source_id: i64,
    /// Line.
    pub line: i64,
}

/// A new link to insert (ignored when the same link of the same source and rule exists).
#[derive(Debug, Clone)]
pub struct NewLink {
    /// One identity.
    pub a: i64,
    /// The other.
    pub b: i64,
    /// Source.
    pub source_id: i64,
    /// Line.
    pub line: i64,
    /// Rule.
    pub rule: &'static str,
}

/// Product upsert (non-null fields overwrite).
#[derive(Debug, Clone)]
pub struct ProductRow {
    /// Preassigned id.
    pub id: i64,
    /// External key.
    pub key: String,
    /// Name.
    pub name: Option<String>,
    /// Category.
    pub category: Option<String>,
    /// Price.
    pub price: Option<f64>,
    /// Typed attributes as a JSON object text.
    pub attrs: Option<String>,
}

/// Order upsert (non-null fields overwrite).
#[derive(Debug, Clone)]
pub struct OrderRow {
    /// Preassigned id.
    pub id: i64,
    /// Namespace of the order key.
    pub namespace: String,
    /// External order key.
    pub key: String,
    /// Identity of the buyer.
    pub identity_id: i64,
    /// Time.
    pub time: Option<i64>,
    /// Amount (orders sources).
    pub amount: Option<f64>,
    /// Discount (orders sources).
    pub discount: Option<f64>,
    /// File that created the order.
    pub file_id: i64,
}

/// Order line.
#[derive(Debug, Clone)]
pub struct LineRow {
    /// Source.
    pub source_id: i64,
    /// File the row came from (a changed file replaces its rows).
    pub file_id: i64,
    /// Order.
    pub order_id: i64,
    /// Buyer identity.
    pub identity_id: i64,
    /// Product.
    pub product_id: Option<i64>,
    /// Quantity.
    pub quantity: f64,
    /// Amount.
    pub amount: f64,
    /// Discount.
    pub discount: f64,
    /// Time.
    pub time: Option<i64>,
}

/// Event (ratings included).
#[derive(Debug, Clone)]
pub struct EventRow {
    /// Source.
    pub source_id: i64,
    /// File the row came from (a changed file replaces its rows).
    pub file_id: i64,
    /// Identity.
    pub identity_id: i64,
    /// Event type.
    pub kind: String,
    /// Product.
    pub product_id: Option<i64>,
    /// Value (rating).
    pub value: Option<f64>,
    /// Channel.
    pub channel: Option<String>,
    /// Time.
    pub time: Option<i64>,
}

/// Feedback.
#[derive(Debug, Clone)]
pub struct FeedbackRow {
    /// Source.
    pub source_id: i64,
    /// File the row came from (a changed file replaces its rows).
    pub file_id: i64,
    /// Identity.
    pub identity_id: i64,
    /// survey | review | ticket | …
    pub kind: String,
    /// Score.
    pub score: Option<f64>,
    /// Text.
    pub text: Option<String>,
    /// Channel.
    pub channel: Option<String>,
    /// Time.
    pub time: Option<i64>,
}

/// Campaign upsert.
#[derive(Debug, Clone)]
pub struct CampaignRow {
    /// Preassigned id.
    pub id: i64,
    /// External key.
    pub key: String,
    /// Name.
    pub name: Option<String>,
    /// Type.
    pub kind: Option<String>,
    /// Start.
    pub start: Option<i64>,
    /// End.
    pub end: Option<i64>,
}

/// Campaign exposure or redemption.
#[derive(Debug, Clone)]
pub struct ContactRow {
    /// Source.
    pub source_id: i64,
    /// File the row came from (a changed file replaces its rows).
    pub file_id: i64,
    /// Identity.
    pub identity_id: i64,
    /// Campaign.
    pub campaign_id: i64,
    /// `exposure` or `redemption`.
    pub kind: &'static str,
    /// Time.
    pub time: Option<i64>,
}

/// Consent record.
#[derive(Debug, Clone)]
pub struct ConsentRow {
    /// Source.
    pub source_id: i64,
    /// File the row came from (a changed file replaces its rows).
    pub file_id: i64,
    /// Identity.
    pub identity_id: i64,
    /// Purpose (marketing, profiling, …).
    pub purpose: String,
    /// Granted or withdrawn.
    pub granted: bool,
    /// Time.
    pub time: Option<i64>,
}

/// Attribute upsert (per identity, name and source).
#[derive(Debug, Clone)]
pub struct AttributeRow {
    /// Identity.
    pub identity_id: i64,
    /// Name.
    pub name: String,
    /// Typed value.
    pub value: AttrValue,
    /// Source.
    pub source_id: i64,
    /// Line.
    pub line: i64,
}

/// A product a campaign's coupon applies to.
#[derive(Debug, Clone)]
pub struct CouponRow {
    /// Campaign.
    pub campaign_id: i64,
    /// Product.
    pub product_id: i64,
    /// Coupon code ('' when none).
    pub coupon: String,
    /// Source.
    pub source_id: i64,
}

/// Everything one write call inserts, in dependency order.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    /// New identities.
    pub identities: Vec<NewIdentity>,
    /// New links.
    pub links: Vec<NewLink>,
    /// Product upserts.
    pub products: Vec<ProductRow>,
    /// Campaign upserts.
    pub campaigns: Vec<CampaignRow>,
    /// Order upserts.
    pub orders: Vec<OrderRow>,
    /// Lines.
    pub lines: Vec<LineRow>,
    /// Events.
    pub events: Vec<EventRow>,
    /// Feedback.
    pub feedback: Vec<FeedbackRow>,
    /// Contacts.
    pub contacts: Vec<ContactRow>,
    /// Consents.
    pub consents: Vec<ConsentRow>,
    /// Attributes.
    pub attributes: Vec<AttributeRow>,
    /// Campaign products (coupons).
    pub coupons: Vec<CouponRow>,
}

impl WriteBatch {
    /// Number of rows held.
    pub fn len(&self) -> usize {
        self.identities.len()
            + self.links.len()
            + self.products.len()
            + self.campaigns.len()
            + self.orders.len()
            + self.lines.len()
            + self.events.len()
            + self.feedback.len()
            + self.contacts.len()
            + self.consents.len()
            + self.attributes.len()
            + self.coupons.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties the batch, keeping allocations.
    pub fn clear(&mut self) {
        self.identities.clear();
        self.links.clear();
        self.products.clear();
        self.campaigns.clear();
        self.orders.clear();
        self.lines.clear();
        self.events.clear();
        self.feedback.clear();
        self.contacts.clear();
        self.consents.clear();
        self.attributes.clear();
        self.coupons.clear();
    }
}

/// Largest ids in use, for the writer to number new rows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MaxIds {
    /// customers.id
    pub customer: i64,
    /// identities.id
    pub identity: i64,
    /// products.id
    pub product: i64,
    /// orders.id
    pub order: i64,
    /// campaigns.id
    pub campaign: i64,
}

/// Key maps an import needs to reuse existing rows.
#[derive(Debug, Clone, Default)]
pub struct KeyMaps {
    /// (namespace, kind, value) → (identity id, customer id)
    pub identities: HashMap<(String, String, String), (i64, i64)>,
    /// product key → id
    pub products: HashMap<String, i64>,
    /// campaign key → id
    pub campaigns: HashMap<String, i64>,
}

/// One recorded import run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportRun {
    /// Source name.
    pub source: String,
    /// File path.
    pub file: String,
    /// SHA-256 of the file.
    pub file_hash: String,
    /// Digest of the mapping used.
    pub config_hash: String,
    /// Rows read.
    pub rows_read: i64,
    /// Fact rows newly written.
    pub rows_written: i64,
    /// Rows rejected (bad rows skipped).
    pub rows_rejected: i64,
    /// `ok`, `unchanged` or `failed`.
    pub status: String,
    /// Start (RFC 3339).
    pub started_at: String,
    /// End (RFC 3339).
    pub finished_at: String,
    /// Duration.
    pub seconds: f64,
}

/// An entry of the merge log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MergeLogEntry {
    /// When (RFC 3339).
    pub at: String,
    /// `merge`, `split` or `unsplit`.
    pub action: String,
    /// Customer acted on (the survivor of a merge; the origin of a split).
    pub customer_id: i64,
    /// The other customer (absorbed by a merge; created by a split).
    pub other_id: Option<i64>,
    /// Human explanation.
    pub detail: String,
}

/// Per-source counts for `stats`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceStats {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Fact rows it contributed.
    pub rows: i64,
    /// Last import: file.
    pub last_file: Option<String>,
    /// Last import: when.
    pub last_import: Option<String>,
    /// Last import: status.
    pub last_status: Option<String>,
}

/// Store-wide counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// Unified customers (owning at least one identity that is not an over-shared key).
    pub customers: i64,
    /// Over-shared keys (family or office emails, shop phones) kept apart and never linked.
    pub shared_keys: i64,
    /// Identity keys.
    pub identities: i64,
    /// Orders.
    pub orders: i64,
    /// Order lines.
    pub order_lines: i64,
    /// Products.
    pub products: i64,
    /// Events (ratings included).
    pub events: i64,
    /// Feedback.
    pub feedback: i64,
    /// Campaigns.
    pub campaigns: i64,
    /// Exposures + redemptions.
    pub campaign_contacts: i64,
    /// Consent records.
    pub consents: i64,
    /// Revenue: per order its `amount` from an orders source, else the sum of its lines.
    pub revenue: f64,
    /// Per-source counts.
    pub sources: Vec<SourceStats>,
}

/// Orders summary of one customer.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct OrderSummary {
    /// Number of orders.
    pub count: i64,
    /// Revenue.
    pub revenue: f64,
    /// First order time.
    pub first: Option<i64>,
    /// Last order time.
    pub last: Option<i64>,
    /// Order lines.
    pub lines: i64,
    /// Total discount.
    pub discount: f64,
}

/// Feedback summary of one customer, per kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackSummary {
    /// Kind.
    pub kind: String,
    /// Count.
    pub count: i64,
    /// Mean score.
    pub mean_score: Option<f64>,
    /// Last score.
    pub last_score: Option<f64>,
    /// Last text.
    pub last_text: Option<String>,
}

/// Campaign contact summary of one customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignSummary {
    /// Campaign key.
    pub campaign: String,
    /// Name.
    pub name: Option<String>,
    /// Received (exposures).
    pub received: i64,
    /// Redeemed (redemptions).
    pub redeemed: i64,
}

/// Everything the unified view shows about one customer (identities aside).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerFacts {
    /// Orders.
    pub orders: OrderSummary,
    /// Events by type: (type, count).
    pub events: Vec<(String, i64)>,
    /// Feedback per kind.
    pub feedback: Vec<FeedbackSummary>,
    /// Campaigns.
    pub campaigns: Vec<CampaignSummary>,
    /// Attributes: (name, value, source name).
    pub attributes: Vec<(String, AttrValue, String)>,
    /// Latest consent per purpose: (purpose, granted, time).
    pub consents: Vec<(String, bool, Option<i64>)>,
}

/// A saved model.
#[derive(Debug, Clone)]
pub struct SavedModel {
    /// Kind.
    pub kind: String,
    /// Version (per kind, from 1).
    pub version: i64,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Parameters.
    pub params: serde_json::Value,
    /// Metrics.
    pub metrics: serde_json::Value,
    /// Serialized model.
    pub blob: Vec<u8>,
}

/// A write transaction. Dropping it without [`StoreTx::commit`] rolls back.
pub trait StoreTx {
    /// Registers (or finds) a source; returns its id.
    fn upsert_source(&mut self, name: &str, kind: &str, namespace: &str) -> Result<i64>;
    /// Registers (or finds) a file of a source; returns its id.
    fn upsert_file(&mut self, source_id: i64, path: &str) -> Result<i64>;
    /// File and mapping digests of the last successful import of this file of the source.
    fn last_import(&mut self, source_id: i64, path: &str) -> Result<Option<(String, String)>>;
    /// Deletes every fact that came from a file (before re-importing a changed file); returns rows deleted.
    fn delete_file_facts(&mut self, file_id: i64) -> Result<u64>;
    /// Largest ids in use.
    fn max_ids(&mut self) -> Result<MaxIds>;
    /// Key maps of identities, products and campaigns.
    fn key_maps(&mut self) -> Result<KeyMaps>;
    /// Order ids of one namespace, by key.
    fn order_keys(&mut self, namespace: &str) -> Result<HashMap<String, i64>>;
    /// Writes a batch; returns how many fact rows (lines, events, feedback,
    /// contacts, consents, new orders, attributes) were newly written.
    fn write(&mut self, batch: &WriteBatch) -> Result<u64>;
    /// The identity graph (all identities and links).
    fn identity_graph(&mut self) -> Result<(Vec<IdentityRecord>, Vec<LinkRecord>)>;
    /// Reassigns identities to customers and creates the new customer rows;
    /// `shared` lists the over-shared keys (all others are marked not shared).
    fn assign_customers(
        &mut self,
        changes: &[(i64, i64)],
        new_customers: &[i64],
        shared: &[i64],
    ) -> Result<()>;
    /// Switches links off (split) or on again (unsplit).
    fn set_links_suppressed(&mut self, link_ids: &[i64], suppressed: bool) -> Result<()>;
    /// Appends to the merge log.
    fn log_merge(&mut self, entry: &MergeLogEntry) -> Result<()>;
    /// Records an import run.
    fn record_import(&mut self, run: &ImportRun) -> Result<()>;
    /// Stores a setting (e.g. the identity policy used by the last import).
    fn set_setting(&mut self, key: &str, value: &str) -> Result<()>;
    /// Marks intake journal rows done (`applied`, `suppressed`,
    /// `no_consent` or `rejected`, with a note) and clears their bodies,
    /// in this transaction: the facts they became commit with the mark.
    fn intake_done(&mut self, done: &[IntakeDone]) -> Result<()>;

    /// How many of these journal rows are still pending, read inside this
    /// transaction (another process may have applied them since they were
    /// read).
    fn intake_still_pending(&mut self, seqs: &[i64]) -> Result<usize>;
    /// Commits.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// An alert to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlertRow {
    /// Rule name.
    pub rule: String,
    /// Kind.
    pub kind: String,
    /// Customer.
    pub customer_id: i64,
    /// Snapshot generation it was raised at.
    pub generation: i64,
    /// Details as JSON (no personal values).
    pub detail: String,
}

/// A stored alert.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertRecord {
    /// Id (increasing).
    pub id: i64,
    /// Rule name.
    pub rule: String,
    /// Kind.
    pub kind: String,
    /// Customer.
    pub customer_id: i64,
    /// Snapshot generation.
    pub generation: i64,
    /// When it was raised (Unix seconds).
    pub created_at: i64,
    /// Details as JSON.
    pub detail: String,
}

/// A message for the intake journal.
#[derive(Debug, Clone, Copy)]
pub struct IntakeIn<'a> {
    /// The sender's message id.
    pub message_id: &'a str,
    /// `identify`, `track`, `page` or `alias`.
    pub kind: &'a str,
    /// The validated message as JSON.
    pub body: &'a str,
}

/// A pending message of the intake journal.
#[derive(Debug, Clone, PartialEq)]
pub struct IntakeRecord {
    /// Journal sequence number (the order messages are applied in).
    pub seq: i64,
    /// Source name.
    pub source: String,
    /// The sender's message id.
    pub message_id: String,
    /// Kind.
    pub kind: String,
    /// When it was taken (Unix seconds).
    pub received_at: i64,
    /// The message as JSON (opened).
    pub body: String,
}

/// What became of a journal row.
#[derive(Debug, Clone, PartialEq)]
pub struct IntakeDone {
    /// Journal sequence number.
    pub seq: i64,
    /// `applied`, `suppressed`, `no_consent` or `rejected`.
    pub state: &'static str,
    /// Why (rejected), or nothing.
    pub note: Option<String>,
}

/// Journal rows per state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct IntakeCounts {
    /// Waiting to be applied.
    pub pending: u64,
    /// Applied to the facts.
    pub applied: u64,
    /// Dropped: the person is erased.
    pub suppressed: u64,
    /// Dropped: the person does not allow it.
    pub no_consent: u64,
    /// Refused when applied (a value the mapping could not take).
    pub rejected: u64,
}

/// A storage backend.
pub trait Store: Send + Sync {
    /// Starts a write transaction (exclusive for writers).
    fn begin(&self) -> Result<Box<dyn StoreTx + '_>>;
    /// Store-wide counts. `revenue` also sums the revenue by SQL (a scan
    /// of every order line; the engine takes it from the snapshot instead),
    /// else `revenue` is NaN.
    fn stats(&self, revenue: bool) -> Result<Stats>;
    /// The analytical snapshot.
    fn dataset(&self) -> Result<Dataset>;

    /// The store's id and current generation (one cheap read).
    fn generation(&self) -> Result<snapshot::Generation>;

    /// What changed since generation `since` (0: everything, as a full
    /// delta), read in one consistent read transaction. A `since` the store
    /// cannot answer from its change log (newer than the store: a restored
    /// backup) also gives a full delta.
    fn snapshot_delta(&self, since: i64) -> Result<snapshot::SnapshotDelta>;
    /// Registered sources.
    fn sources(&self) -> Result<Vec<SourceRecord>>;
    /// Identities whose normalized value equals `value` (any namespace).
    fn identities_by_value(&self, value: &str) -> Result<Vec<IdentityRecord>>;
    /// Identity by store id.
    fn identity(&self, id: i64) -> Result<Option<IdentityRecord>>;
    /// All identities of a customer.
    fn customer_identities(&self, customer_id: i64) -> Result<Vec<IdentityRecord>>;
    /// Links touching any of the identities.
    fn links_of(&self, identity_ids: &[i64]) -> Result<Vec<LinkRecord>>;
    /// Facts summary of a customer; with `sources`, only facts that came
    /// from those sources (a department's view).
    fn customer_facts(&self, customer_id: i64, sources: Option<&[i64]>) -> Result<CustomerFacts>;
    /// Merge-log entries that name the customer.
    fn merge_log(&self, customer_id: i64) -> Result<Vec<MergeLogEntry>>;
    /// Import runs, newest first.
    fn import_runs(&self) -> Result<Vec<ImportRun>>;
    /// A stored setting.
    fn setting(&self, key: &str) -> Result<Option<String>>;
    /// Saves a model as the next version of its kind.
    fn save_model(
        &self,
        kind: &str,
        params: &serde_json::Value,
        metrics: &serde_json::Value,
        blob: &[u8],
    ) -> Result<SavedModel>;
    /// The newest model of a kind.
    fn load_model(&self, kind: &str) -> Result<Option<SavedModel>>;

    /// A customer's dated facts (orders, events, feedback, campaign
    /// contacts, consents), newest first, after the cursor `before`
    /// (exclusive), at most `limit`; with `sources`, only those sources'.
    fn customer_timeline(
        &self,
        customer_id: i64,
        sources: Option<&[i64]>,
        before: Option<&TimelineCursor>,
        limit: usize,
    ) -> Result<Vec<TimelineRow>>;
    /// Customers known to any of these sources: an identity they brought,
    /// or a fact they hold (a department's customers).
    fn customers_of_sources(&self, sources: &[i64]) -> Result<std::collections::HashSet<i64>>;
    /// The newest version of every model kind.
    fn model_versions(&self) -> Result<Vec<(String, i64)>>;
    /// The newest version of every model kind and when it was saved
    /// (RFC 3339), without the blobs.
    fn model_times(&self) -> Result<Vec<(String, i64, String)>>;
    /// Every kept version of a model kind, oldest first.
    fn model_history(&self, kind: &str) -> Result<Vec<i64>>;
    /// One version of a model kind (as [`Store::load_model`] gives the newest).
    fn load_model_version(&self, kind: &str, version: i64) -> Result<Option<SavedModel>>;
    /// Replaces the blob of one saved version in place, stored the way
    /// [`Store::save_model`] stores blobs (a person's erasure from the saved
    /// models); params, metrics and the creation time stay. False when there
    /// is no such version.
    fn replace_model_blob(&self, kind: &str, version: i64, blob: &[u8]) -> Result<bool>;

    /// Saves a new API key or customer token (its hash only).
    fn create_key(&self, key: &KeyRecord) -> Result<()>;
    /// A key or token by its public id.
    fn key(&self, id: &str) -> Result<Option<KeyRecord>>;
    /// Every key and token, oldest first.
    fn keys(&self) -> Result<Vec<KeyRecord>>;
    /// Marks a key revoked at `at` (Unix seconds); false when there is no
    /// such key or it was already revoked.
    fn revoke_key(&self, id: &str, at: i64) -> Result<bool>;

    /// Saves a new staff user of the web pages; false (nothing written)
    /// when a user of that name exists.
    fn create_user(&self, user: &UserRecord) -> Result<bool>;
    /// A user by name.
    fn user(&self, name: &str) -> Result<Option<UserRecord>>;
    /// Every user, by name.
    fn users(&self) -> Result<Vec<UserRecord>>;
    /// Sets a user's password hash (a PHC string); false when there is no
    /// such user.
    fn set_user_password(&self, name: &str, hash: &str) -> Result<bool>;
    /// Marks a user disabled at `at` (Unix seconds); false when there is no
    /// such user or it was already disabled.
    fn disable_user(&self, name: &str, at: i64) -> Result<bool>;
    /// Saves a new browser session or one-time link (its hash only).
    fn create_session(&self, session: &SessionRecord) -> Result<()>;
    /// A session or link by its public id.
    fn session(&self, id: &str) -> Result<Option<SessionRecord>>;
    /// Marks a session or link revoked at `at`; true only when this call
    /// revoked it (it exists and was not revoked before), so a one-time
    /// link is redeemed once even by racing requests.
    fn revoke_session(&self, id: &str, at: i64) -> Result<bool>;
    /// Revokes every unrevoked session and link of a user; how many.
    fn revoke_sessions_of_user(&self, name: &str, at: i64) -> Result<u64>;
    /// Revokes every unrevoked session and link of a customer; how many.
    fn revoke_sessions_of_customer(&self, customer_id: i64, at: i64) -> Result<u64>;

    /// Appends messages of one source to the intake journal in one durable
    /// transaction (sealed under the data key when there is one); for each,
    /// whether it was new (false: a duplicate by message id, not written).
    fn intake_append(
        &self,
        source: &str,
        received_at: i64,
        messages: &[IntakeIn<'_>],
    ) -> Result<Vec<bool>>;
    /// Stores alerts (one per rule, customer and generation: a repeat is
    /// ignored) and the setting `alerts.baseline`, in one transaction that
    /// does not change the snapshot generation (alerts are not facts); how
    /// many alerts were new.
    fn record_alerts(&self, alerts: &[NewAlertRow], baseline: &str) -> Result<u64>;
    /// Alerts, newest first: those with an id below `before` (all when
    /// None), at most `limit`.
    fn alerts(&self, before: Option<i64>, limit: usize) -> Result<Vec<AlertRecord>>;
    /// Alerts with an id above `after`, oldest first, at most `limit`.
    fn alerts_after(&self, after: i64, limit: usize) -> Result<Vec<AlertRecord>>;
    /// Adds a webhook; it takes alerts raised after this call. Its id.
    fn create_webhook(&self, webhook: &NewWebhook) -> Result<i64>;
    /// Every webhook (removed ones too), by id.
    fn webhooks(&self) -> Result<Vec<WebhookRecord>>;
    /// Removes a webhook; its undelivered messages are dropped. False when
    /// there is no such webhook or it was removed before.
    fn remove_webhook(&self, id: i64, at: i64) -> Result<bool>;
    /// Writes messages to the outbox (a message id seen before, or a
    /// webhook's alert already queued, is skipped), first moving the
    /// webhook's alert cursor `(webhook, from, to)` when given: when the
    /// cursor is no longer at `from` (another process moved it) nothing is
    /// written and the answer is None. One transaction; how many messages
    /// were written.
    fn outbox_enqueue(
        &self,
        cursor: Option<(i64, i64, i64)>,
        rows: &[OutboxIn],
        now_ms: i64,
    ) -> Result<Option<usize>>;
    /// Claims up to `limit` pending messages due at `now_ms` (Unix ms) for
    /// a try: each gets one more attempt and is not due again before
    /// `now_ms + lease_ms`. A due message that has had `max_attempts`
    /// tries already (the server stopped during its last) becomes dead.
    fn outbox_claim(
        &self,
        now_ms: i64,
        lease_ms: i64,
        max_attempts: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRecord>>;
    /// Records what became of claimed tries (only messages still pending
    /// change).
    fn outbox_done(&self, outcomes: &[OutboxOutcome]) -> Result<()>;
    /// Outbox messages, newest first, in `state` (all when None), with an
    /// id below `before`, at most `limit`.
    fn outbox(
        &self,
        state: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<OutboxRecord>>;
    /// Puts a dead message back in the queue, due at `now_ms`, with its
    /// tries reset; false when it is not dead or its webhook was removed.
    fn outbox_replay(&self, id: i64, now_ms: i64) -> Result<bool>;
    /// How many outbox messages are in each state.
    fn outbox_counts(&self) -> Result<std::collections::BTreeMap<String, u64>>;
    /// The oldest pending messages of the journal, at most `limit`.
    fn intake_pending(&self, limit: usize) -> Result<Vec<IntakeRecord>>;
    /// How many journal rows are in each state.
    fn intake_counts(&self) -> Result<IntakeCounts>;

    /// The data key personal values are sealed with (the snapshot cache
    /// seals its personal sections with it too); `None`: no encryption.
    fn data_key(&self) -> Option<std::sync::Arc<crypto::DataKey>> {
        None
    }

    /// Re-seals everything under a new data key (see `keyed`).
    fn rotate_key(&mut self) -> Result<RotateReport>;

    /// Rewrites the store without free pages and truncates its log, so
    /// deleted values are gone from the files.
    fn vacuum(&self) -> Result<()>;

    /// What erasing a customer touches.
    fn erasure_plan(&self, customer_id: i64) -> Result<ErasurePlan>;

    /// Erases a customer in one transaction (see `erase`).
    fn erase_customer(
        &self,
        customer_id: i64,
        erasure_id: i64,
        anonymize: bool,
        suppress: &[(String, String)],
    ) -> Result<Vec<TableCount>>;

    /// Starts an erasure in the journal.
    fn create_erasure(
        &self,
        customer_id: i64,
        status: &str,
        mode: &str,
        requested_by: &str,
    ) -> Result<i64>;

    /// Sets an erasure's status and receipt.
    fn set_erasure(&self, id: i64, status: &str, receipt: Option<&str>) -> Result<()>;

    /// The erasure journal, newest first.
    fn erasures(&self, status: Option<&str>) -> Result<Vec<ErasureRecord>>;

    /// Suppression hashes of erased identities.
    fn suppressions(&self) -> Result<std::collections::HashSet<String>>;

    /// Deletes (or counts) facts of a kind older than `cutoff`.
    fn retain(&self, kind: &str, cutoff: i64, dry_run: bool) -> Result<Vec<TableCount>>;

    /// Every consent row of a customer (all its identities, every source),
    /// oldest first (by time, rows without a time first; ties by row id):
    /// the consent history.
    fn consent_history(&self, customer_id: i64) -> Result<Vec<ConsentRecord>>;
    /// The latest consent row per customer and purpose over all customers
    /// (latest by time, ties by the higher row id), in one read.
    fn latest_consents(&self) -> Result<Vec<LatestConsent>>;

    /// Which source every fact file, order, attribute, identity and consent
    /// came from (one consistent read).
    fn provenance(&self) -> Result<Provenance>;

    /// Every row of a customer (all its identities, every source) with
    /// the source and file or line it came from, read in one transaction:
    /// the person's export. Values encrypted at rest are left out (read
    /// them through `customer_identities`, `customer_facts` and
    /// `customer_timeline`).
    fn person_rows(&self, customer_id: i64) -> Result<PersonRows>;
}

/// Where a timeline page ends: (time, kind, id) of its last row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineCursor {
    /// Time (Unix seconds; facts without a time sort as -1).
    pub time: i64,
    /// Kind.
    pub kind: String,
    /// Row id within its kind.
    pub id: i64,
}

/// One dated fact of a customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineRow {
    /// Time (Unix seconds), if known.
    pub time: Option<i64>,
    /// `order`, `event`, `feedback`, `campaign`, `consent`.
    pub kind: String,
    /// Row id within its kind.
    pub id: i64,
    /// Order key, event type, feedback kind, campaign key or purpose.
    pub label: String,
    /// Amount, event value, score, or 1/0 for a consent.
    pub value: Option<f64>,
    /// Free text (feedback).
    pub text: Option<String>,
    /// Channel, or exposure/redemption.
    pub extra: Option<String>,
    /// Source name.
    pub source: String,
}

/// A stored API key or customer token: never the secret, only its keyed hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyRecord {
    /// Public id (part of the key string).
    pub id: String,
    /// `key` (staff or source) or `customer` (a customer token).
    pub kind: String,
    /// Name (who holds it; shown in the audit trail).
    pub name: String,
    /// Role.
    pub role: String,
    /// Department it is limited to, if any.
    pub department: Option<String>,
    /// Source it may write to (role `source`).
    pub source: Option<String>,
    /// The customer a token acts as.
    pub customer_id: Option<i64>,
    /// HMAC-SHA256 of the secret under the store's secret.
    #[serde(skip)]
    pub secret_hash: Vec<u8>,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// Expires (Unix seconds), if ever.
    pub expires_at: Option<i64>,
    /// Revoked (Unix seconds), if so.
    pub revoked_at: Option<i64>,
}

/// A staff user of the web pages: never a password, only its Argon2id hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserRecord {
    /// Unique name (what they sign in with; shown in the audit trail).
    pub name: String,
    /// Role.
    pub role: String,
    /// Department they are limited to, if any.
    pub department: Option<String>,
    /// Argon2id PHC string; `None` until set through a setup link.
    #[serde(skip)]
    pub password_hash: Option<String>,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// Disabled (Unix seconds), if so.
    pub disabled_at: Option<i64>,
}

/// A browser session or one-time link: never the secret, only its keyed
/// hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionRecord {
    /// Public id (part of the credential).
    pub id: String,
    /// `staff`, `customer` (signed-in sessions), `link` (a customer's
    /// sign-in link) or `setup` (a user's password-setup link).
    pub kind: String,
    /// The user (`staff`, `setup`).
    pub user_name: Option<String>,
    /// The customer (`customer`, `link`).
    pub customer_id: Option<i64>,
    /// HMAC-SHA256 of the secret under the store's secret.
    #[serde(skip)]
    pub secret_hash: Vec<u8>,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// Expires (Unix seconds).
    pub expires_at: i64,
    /// Revoked, signed out or redeemed (Unix seconds), if so.
    pub revoked_at: Option<i64>,
}

/// Current time as RFC 3339 (UTC, seconds).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// One consent row of a customer, as recorded (rows are only appended: a
/// change is a new row, so the rows are the history).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsentRecord {
    /// Row id.
    pub id: i64,
    /// Purpose.
    pub purpose: String,
    /// Granted (true) or withdrawn (false).
    pub granted: bool,
    /// When (Unix seconds), if the source said.
    pub time: Option<i64>,
    /// Source name (a department's, or `self-service` / `staff` for
    /// changes recorded through infogap).
    pub source: String,
    /// File of that source (`consent-changes` for recorded changes).
    pub file: String,
}

/// Which source every fact and attribute came from, for analyses that
/// compare departments (what each holds, what each alone can decide).
/// Values are unsealed; no identity value is included.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Provenance {
    /// File id → source id.
    pub file_sources: HashMap<i64, i64>,
    /// Order id → file that created it (orders without a file are left out).
    pub order_files: HashMap<i64, i64>,
    /// Every attribute row with its customer and source.
    pub attributes: Vec<AttributeSource>,
    /// Every identity as (customer, kind, source): which source knows whom
    /// and how (`customer`, `email`, `phone`), without the value.
    pub identities: Vec<(i64, String, i64)>,
    /// Every consent row as (customer, source, purpose, time).
    pub consents: Vec<(i64, i64, String, Option<i64>)>,
}

/// One attribute row and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeSource {
    /// Row id (as in the snapshot's raw attributes).
    pub rowid: i64,
    /// Customer of the identity that carries it.
    pub customer_id: i64,
    /// Source that recorded it.
    pub source_id: i64,
    /// Source line.
    pub line: i64,
    /// Name.
    pub name: String,
    /// Value.
    pub value: AttrValue,
}

/// The latest consent row of one customer for one purpose.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatestConsent {
    /// Customer.
    pub customer_id: i64,
    /// Purpose.
    pub purpose: String,
    /// Granted or withdrawn.
    pub granted: bool,
    /// When, if known.
    pub time: Option<i64>,
}
