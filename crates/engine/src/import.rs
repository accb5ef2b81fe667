//! The import use case: every source of a config, one transaction per file.
//!
//! Per file: hash it (an unchanged file with an unchanged mapping is skipped),
//! stream its rows, map and parse every field (errors name file, line, column,
//! value and reason), collect rows into batches of typed store rows, link the
//! identity keys seen on each row, resolve identities over the whole graph,
//! record the run, commit. Any error before the commit rolls the file back.
//!
//! All sources' headers are checked against the mapping before anything is
//! written, so a misspelt column fails the whole import up front.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use infogap_core::config::{Config, SourceConfig, SourceKind};
use infogap_core::dataset::AttrValue;
use infogap_core::ids::{Email, KeyKind, Phone, blocklist_form};
use infogap_core::value::{Cell, infer_attr, parse_bool, parse_decimal, parse_time};
use infogap_ingest::IngestError;
use infogap_ingest::identity::{self, Edge, Node};
use infogap_ingest::reader::{self, RowReader};
use infogap_store::{
    AttributeRow, CampaignRow, ConsentRow, ContactRow, CouponRow, EventRow, FeedbackRow, ImportRun,
    LineRow, MaxIds, MergeLogEntry, NewIdentity, NewLink, OrderRow, ProductRow, StoreTx,
    WriteBatch, now_rfc3339,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{Engine, EngineError};

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Bad rows accepted per file (written to a rejects file) before the file fails.
    pub skip_bad_rows: u64,
    /// Where rejects files go (default: beside the config).
    pub rejects_dir: Option<PathBuf>,
    /// Draw progress bars.
    pub progress: bool,
}

/// What happened to one source.
#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    /// Source name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// File.
    pub file: String,
    /// `ok` or `unchanged` (same file and mapping as the last import: skipped).
    pub status: String,
    /// Rows read.
    pub rows_read: u64,
    /// Fact rows newly written (0 on a repeat import).
    pub rows_written: u64,
    /// Bad rows skipped.
    pub rows_rejected: u64,
    /// Rows of erased people (their keys are on the suppression list), dropped.
    pub rows_suppressed: u64,
    /// Rows of an earlier version of this file that were replaced.
    pub rows_replaced: u64,
    /// Where the rejected rows were written.
    pub rejects_file: Option<String>,
    /// Identity values ignored (blocklisted junk like "n/a", or not a valid email/phone).
    pub ignored_identity_values: u64,
    /// Seconds.
    pub seconds: f64,
    /// Rows per second.
    pub rows_per_second: f64,
}

/// A key shared by too many customers to link.
#[derive(Debug, Clone, Serialize)]
pub struct OverSharedKey {
    /// `email` or `phone`.
    pub kind: String,
    /// The normalized value.
    pub value: String,
    /// The namespace where it was shared.
    pub namespace: String,
    /// How many distinct ids of that namespace carry it.
    pub customer_ids: usize,
}

/// The whole import.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// Per source, in config order.
    pub sources: Vec<SourceReport>,
    /// Unified customers after the import.
    pub customers: i64,
    /// Existing customers merged together by this import.
    pub merges: usize,
    /// Keys ignored for linking.
    pub over_shared_keys: Vec<OverSharedKey>,
}

/// A rejected row.
#[derive(Debug, Clone)]
pub(crate) struct Reject {
    pub line: u64,
    pub column: String,
    pub value: String,
    pub reason: String,
}

/// Runs the import of every source in `config`.
pub fn import(
    engine: &Engine,
    config: &Config,
    opts: &ImportOptions,
) -> Result<ImportReport, EngineError> {
    // 1. every mapped column must exist, before anything is written
    for src in &config.sources {
        let r = open_reader(src)?;
        check_columns(src, r.headers(), config)?;
    }
    // 2. the config's policy and privacy rules, even when every file is
    // unchanged (a config that only changed [access] or [privacy])
    let settings = config_settings(config)?;
    let store = engine.store();
    let mut changed = false;
    for (k, v) in &settings {
        changed |= store.setting(k)?.as_deref() != Some(v.as_str());
    }
    if changed {
        let mut tx = store.begin()?;
        for (k, v) in &settings {
            tx.set_setting(k, v)?;
        }
        tx.commit()?;
    }
    let mut reports = Vec::new();
    let mut merges = 0;
    let mut over_shared: HashMap<i64, OverSharedKey> = HashMap::new();
    for src in &config.sources {
        let (rep, m, os) = import_source(engine, config, src, opts)?;
        merges += m;
        for k in os {
            over_shared.insert(k.0, k.1);
        }
        reports.push(rep);
    }
    // the next reader finds the snapshot cache current; the import is
    // committed either way, so a failure here is a warning, not an error
    let spinner = crate::report::progress_bar(opts.progress, "updating the snapshot cache");
    if let Err(e) = engine.update_cache() {
        tracing::warn!("the snapshot cache was not updated ({e}); the next command will");
    }
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let customers = engine.store().stats(false)?.customers;
    let mut keys: Vec<OverSharedKey> = over_shared.into_values().collect();
    keys.sort_by(|a, b| a.value.cmp(&b.value));
    Ok(ImportReport {
        sources: reports,
        customers,
        merges,
        over_shared_keys: keys,
    })
}

fn open_reader(src: &SourceConfig) -> Result<Box<dyn RowReader>, EngineError> {
    let wanted: Vec<String> = src
        .columns
        .values()
        .chain(src.attributes.values())
        .flat_map(|c| split_columns(&c.column))
        .collect();
    Ok(reader::open(&src.file, src.format, src.delimiter, &wanted)?)
}

/// `a + b` in a numeric mapping sums columns.
fn split_columns(spec: &str) -> Vec<String> {
    spec.split('+')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn check_columns(
    src: &SourceConfig,
    headers: &[String],
    config: &Config,
) -> Result<(), EngineError> {
    let mapped = src.columns.iter().chain(src.attributes.iter());
    for (field, col) in mapped {
        for c in split_columns(&col.column) {
            if !headers.contains(&c) {
                return Err(IngestError::MissingColumn {
                    file: src.file.display().to_string(),
                    column: c,
                    field: field.clone(),
                    config: config.path.display().to_string(),
                    config_line: col.line,
                    available: headers.join(", "),
                }
                .into());
            }
        }
    }
    Ok(())
}

fn sha256_file(path: &Path) -> Result<String, EngineError> {
    let mut f = std::fs::File::open(path).map_err(|e| EngineError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| EngineError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Field → header indices (several for `a + b` sums).
struct Mapping {
    fields: FastMap<String, (Vec<usize>, String)>,
    attributes: Vec<(String, usize, String)>,
}

impl Mapping {
    fn new(src: &SourceConfig, headers: &[String]) -> Mapping {
        let idx = |c: &str| headers.iter().position(|h| h == c);
        let mut fields = FastMap::default();
        for (f, c) in &src.columns {
            let cols: Vec<usize> = split_columns(&c.column)
                .iter()
                .filter_map(|c| idx(c))
                .collect();
            fields.insert(f.clone(), (cols, c.column.clone()));
        }
        let mut attributes = Vec::new();
        for (a, c) in &src.attributes {
            if let Some(i) = idx(&c.column) {
                attributes.push((a.clone(), i, c.column.clone()));
            }
        }
        Mapping { fields, attributes }
    }
}

struct Loader<'c> {
    sink: std::sync::mpsc::SyncSender<WriteBatch>,
    src: &'c SourceConfig,
    file: String,
    source_id: i64,
    map: Mapping,
    next: MaxIds,
    first_new_customer: i64,
    customer_ids: FastMap<String, i64>,
    email_ids: FastMap<String, i64>,
    phone_ids: FastMap<String, i64>,
    other_ns_ids: FastMap<(String, String, String), i64>,
    products: FastMap<String, i64>,
    campaigns: FastMap<String, i64>,
    orders: FastMap<String, i64>,
    edges: HashSet<(i64, i64), foldhash::fast::RandomState>,
    file_id: i64,
    blocklist: Vec<String>,
    blocklist_max_len: usize,
    country_code: Option<String>,
    batch: WriteBatch,
    ignored_values: u64,
    line: u64,
    /// Erased identities (suppression hashes) and the key that makes them.
    suppress: Option<Suppressor>,
    /// The current row names an erased identity: it is dropped, not written.
    suppressed_hit: bool,
}

/// Tells whether a new key belongs to an erased person.
pub(crate) struct Suppressor {
    key: std::sync::Arc<infogap_store::crypto::DataKey>,
    hashes: std::collections::HashSet<String>,
}

impl Suppressor {
    /// Another handle on the same keys (one per load).
    pub(crate) fn clone_keys(&self) -> Suppressor {
        Suppressor {
            key: self.key.clone(),
            hashes: self.hashes.clone(),
        }
    }

    fn is_suppressed(&self, namespace: &str, kind: &str, value: &str) -> bool {
        self.hashes
            .contains(&self.key.suppression(&format!("{namespace}/{kind}"), value))
    }
}

type RowResult<T> = Result<T, IngestError>;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

fn fast_map<K: std::hash::Hash + Eq, V>(from: HashMap<K, V>) -> FastMap<K, V> {
    from.into_iter().collect()
}

/// Calls `f` with the cell as key text without allocating for text and integers.
fn with_key<R>(cell: &Cell<'_>, f: impl FnOnce(&str) -> R) -> Option<R> {
    match cell {
        Cell::Null => None,
        Cell::Str(s) => {
            let t = s.trim();
            (!t.is_empty()).then(|| f(t))
        }
        Cell::Int(i) => Some(f(itoa::Buffer::new().format(*i))),
        other => other.text().map(|t| f(&t)),
    }
}

impl Loader<'_> {
    fn bad(&self, field: &str, cell: &Cell<'_>, reason: String) -> IngestError {
        let column = self
            .map
            .fields
            .get(field)
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| field.to_string());
        IngestError::BadValue {
            file: self.file.clone(),
            line: self.line,
            column,
            value: cell.display(),
            reason,
        }
    }

    fn cell<'r>(&self, r: &'r dyn RowReader, field: &str) -> Cell<'r> {
        match self.map.fields.get(field) {
            Some((cols, _)) if cols.len() == 1 => r.cell(cols[0]),
            _ => Cell::Null,
        }
    }

    fn text(&self, r: &dyn RowReader, field: &str) -> Option<String> {
        self.cell(r, field).text()
    }

    fn decimal(&self, r: &dyn RowReader, field: &str) -> RowResult<Option<f64>> {
        let Some((cols, _)) = self.map.fields.get(field) else {
            return Ok(None);
        };
        let mut sum: Option<f64> = None;
        for &c in cols {
            let cell = r.cell(c);
            match parse_decimal(&cell) {
                Ok(Some(v)) => sum = Some(sum.unwrap_or(0.0) + v),
                Ok(None) => {}
                Err(reason) => {
                    let column = r.headers().get(c).cloned().unwrap_or_default();
                    return Err(IngestError::BadValue {
                        file: self.file.clone(),
                        line: self.line,
                        column,
                        value: cell.display(),
                        reason,
                    });
                }
            }
        }
        Ok(sum)
    }

    fn time(&self, r: &dyn RowReader, field: &str) -> RowResult<Option<i64>> {
        let c = self.cell(r, field);
        parse_time(&c).map_err(|reason| self.bad(field, &c, reason))
    }

    fn required_text(&self, r: &dyn RowReader, field: &str) -> RowResult<String> {
        let c = self.cell(r, field);
        c.text()
            .ok_or_else(|| self.bad(field, &c, format!("required field {field:?} is empty")))
    }

    fn blocked(&self, raw: &str) -> bool {
        let t = raw.trim();
        t.len() <= self.blocklist_max_len
            && self.blocklist.iter().any(|b| b.eq_ignore_ascii_case(t))
    }

    fn new_identity(&mut self, namespace: &str, kind: KeyKind, value: &str) -> i64 {
        self.next.identity += 1;
        self.next.customer += 1;
        let id = self.next.identity;
        self.batch.identities.push(NewIdentity {
            id,
            namespace: namespace.to_string(),
            kind: kind.as_str().to_string(),
            value: value.to_string(),
            customer_id: self.next.customer,
            source_id: self.source_id,
            line: self.line as i64,
        });
        id
    }

    fn key_id(&mut self, namespace: &str, kind: KeyKind, value: &str) -> i64 {
        let own_ns = kind == KeyKind::Customer && namespace == self.src.namespace;
        let found = match kind {
            KeyKind::Email => self.email_ids.get(value).copied(),
            KeyKind::Phone => self.phone_ids.get(value).copied(),
            KeyKind::Customer if own_ns => self.customer_ids.get(value).copied(),
            KeyKind::Customer => self
                .other_ns_ids
                .get(&(namespace.to_string(), "customer".into(), value.to_string()))
                .copied(),
        };
        if let Some(id) = found {
            return id;
        }
        // a key never seen before may be an erased person's: the row is dropped
        if let Some(sup) = &self.suppress {
            let k = match kind {
                KeyKind::Email => "email",
                KeyKind::Phone => "phone",
                KeyKind::Customer => "customer",
            };
            if sup.is_suppressed(namespace, k, value) {
                self.suppressed_hit = true;
                return 0;
            }
        }
        let id = self.new_identity(namespace, kind, value);
        match kind {
            KeyKind::Email => {
                self.email_ids.insert(value.to_string(), id);
            }
            KeyKind::Phone => {
                self.phone_ids.insert(value.to_string(), id);
            }
            KeyKind::Customer if own_ns => {
                self.customer_ids.insert(value.to_string(), id);
            }
            KeyKind::Customer => {
                self.other_ns_ids.insert(
                    (namespace.to_string(), "customer".into(), value.to_string()),
                    id,
                );
            }
        }
        id
    }

    fn link(&mut self, a: i64, b: i64, rule: &'static str) {
        if a == b {
            return;
        }
        let key = (a.min(b), a.max(b));
        if self.edges.insert(key) {
            self.batch.links.push(NewLink {
                a: key.0,
                b: key.1,
                source_id: self.source_id,
                line: self.line as i64,
                rule,
            });
        }
    }

    /// The identity keys of a row; returns the anchor identity (customer id, else email, else phone).
    fn identities(&mut self, r: &dyn RowReader) -> RowResult<i64> {
        let mut keys: Vec<i64> = Vec::with_capacity(3);
        let src = self.src;
        let cust = self.cell(r, "customer");
        if let Some(id) = with_key(&cust, |v| {
            if self.blocked(v) {
                self.ignored_values += 1;
                None
            } else {
                Some(self.key_id(&src.namespace, KeyKind::Customer, v))
            }
        })
        .flatten()
        {
            keys.push(id);
        }
        if let Some(v) = self.text(r, "email") {
            match Email::parse(&v) {
                Some(e) if !self.blocked(e.as_str()) => {
                    keys.push(self.key_id("email", KeyKind::Email, e.as_str()))
                }
                _ => self.ignored_values += 1,
            }
        }
        if let Some(v) = self.text(r, "phone") {
            match Phone::parse(&v, self.country_code.as_deref()) {
                Some(p) if !self.blocked(&v) && !self.blocked(p.as_str()) => {
                    keys.push(self.key_id("phone", KeyKind::Phone, p.as_str()))
                }
                _ => self.ignored_values += 1,
            }
        }
        let Some(&anchor) = keys.first() else {
            let mapped: Vec<String> = ["customer", "email", "phone"]
                .iter()
                .filter_map(|f| self.map.fields.get(*f).map(|(_, c)| c.clone()))
                .collect();
            return Err(IngestError::BadRow {
                file: self.file.clone(),
                line: self.line,
                reason: format!(
                    "no identity key: {} {} empty or junk (a row needs a customer id, an email or a phone)",
                    mapped.join(", "),
                    if mapped.len() == 1 { "is" } else { "are all" }
                ),
            });
        };
        for &k in &keys[1..] {
            self.link(anchor, k, "same_record");
        }
        Ok(anchor)
    }

    fn product_id(&mut self, key: &str) -> i64 {
        if let Some(&id) = self.products.get(key) {
            return id;
        }
        self.next.product += 1;
        let id = self.next.product;
        self.products.insert(key.to_string(), id);
        self.batch.products.push(ProductRow {
            id,
            key: key.to_string(),
            name: None,
            category: None,
            price: None,
            attrs: None,
        });
        id
    }

    fn campaign_id(&mut self, key: &str) -> i64 {
        if let Some(&id) = self.campaigns.get(key) {
            return id;
        }
        self.next.campaign += 1;
        let id = self.next.campaign;
        self.campaigns.insert(key.to_string(), id);
        self.batch.campaigns.push(CampaignRow {
            id,
            key: key.to_string(),
            name: None,
            kind: None,
            start: None,
            end: None,
        });
        id
    }

    fn attributes_json(&self, r: &dyn RowReader) -> Option<String> {
        let mut m = serde_json::Map::new();
        for (name, col, _) in &self.map.attributes {
            if let Some(v) = infer_attr(&r.cell(*col))
                && let Ok(j) = serde_json::to_value(v)
            {
                m.insert(name.clone(), j);
            }
        }
        (!m.is_empty()).then(|| serde_json::Value::Object(m).to_string())
    }

    fn customer_attributes(&mut self, r: &dyn RowReader, identity: i64) {
        let line = self.line as i64;
        for (name, col, _) in &self.map.attributes {
            if let Some(value) = infer_attr(&r.cell(*col)) {
                self.batch.attributes.push(AttributeRow {
                    identity_id: identity,
                    name: name.clone(),
                    value,
                    source_id: self.source_id,
                    line,
                });
            }
        }
    }

    /// Parses one row into the batch. On error nothing of the row is kept.
    fn row(&mut self, r: &dyn RowReader) -> RowResult<()> {
        let mark = (self.batch.clone_lengths(), self.next);
        let res = self.row_inner(r);
        let res = if self.suppressed_hit {
            Err(IngestError::BadRow {
                file: self.file.clone(),
                line: self.line,
                reason: "an erased person's row".into(),
            })
        } else {
            res
        };
        if res.is_err() {
            self.batch.truncate_to(&mark.0);
            // forget keys created by the failed row
            let (next, prev) = (self.next, mark.1);
            if next.identity > prev.identity {
                let gone: HashSet<i64> = ((prev.identity + 1)..=next.identity).collect();
                self.customer_ids.retain(|_, v| !gone.contains(v));
                self.email_ids.retain(|_, v| !gone.contains(v));
                self.phone_ids.retain(|_, v| !gone.contains(v));
                self.other_ns_ids.retain(|_, v| !gone.contains(v));
                self.edges
                    .retain(|(a, b)| !gone.contains(a) && !gone.contains(b));
            }
            if next.product > prev.product {
                self.products.retain(|_, v| *v <= prev.product);
            }
            if next.campaign > prev.campaign {
                self.campaigns.retain(|_, v| *v <= prev.campaign);
            }
            if next.order > prev.order {
                self.orders.retain(|_, v| *v <= prev.order);
            }
            self.next = prev;
        }
        res
    }

    fn row_inner(&mut self, r: &dyn RowReader) -> RowResult<()> {
        let sid = self.source_id;
        match self.src.kind {
            SourceKind::Customers => {
                let id = self.identities(r)?;
                self.customer_attributes(r, id);
                if let Some(t) = self.time(r, "time")? {
                    self.batch.attributes.push(AttributeRow {
                        identity_id: id,
                        name: "first_seen".into(),
                        value: AttrValue::Text(infogap_core::value::format_date(t)),
                        source_id: sid,
                        line: self.line as i64,
                    });
                }
            }
            SourceKind::Products => {
                let key = self.required_text(r, "product")?;
                let price = self.decimal(r, "price")?;
                let id = self.product_id(&key);
                let attrs = self.attributes_json(r);
                let name = self.text(r, "name");
                let category = self.text(r, "category");
                if let Some(p) = self.batch.products.iter_mut().rev().find(|p| p.id == id) {
                    p.name = name;
                    p.category = category;
                    p.price = price;
                    p.attrs = attrs;
                } else {
                    self.batch.products.push(ProductRow {
                        id,
                        key,
                        name,
                        category,
                        price,
                        attrs,
                    });
                }
            }
            SourceKind::Orders => {
                let key = self.required_text(r, "order")?;
                let amount = self.decimal(r, "amount")?;
                let discount = self.decimal(r, "discount")?.map(f64::abs);
                let time = self.time(r, "time")?;
                let identity = self.identities(r)?;
                self.customer_attributes(r, identity);
                let id = self.order_id(&key, identity, time);
                self.batch.orders.push(OrderRow {
                    id,
                    namespace: self.src.namespace.clone(),
                    key,
                    identity_id: identity,
                    time,
                    amount,
                    discount,
                    file_id: self.file_id,
                });
            }
            SourceKind::OrderLines => {
                let order_cell = self.cell(r, "order");
                if order_cell.is_null() {
                    return Err(self.bad(
                        "order",
                        &order_cell,
                        "required field \"order\" is empty".into(),
                    ));
                }
                let quantity = self.decimal(r, "quantity")?.unwrap_or(1.0);
                let price = self.decimal(r, "price")?;
                let amount = match (self.decimal(r, "amount")?, price) {
                    (Some(a), _) => a,
                    (None, Some(p)) => p * quantity,
                    (None, None) => {
                        let c = self.cell(r, "amount");
                        return Err(self.bad(
                            "amount",
                            &c,
                            "required field \"amount\" is empty".into(),
                        ));
                    }
                };
                let discount = self.decimal(r, "discount")?.map(f64::abs).unwrap_or(0.0);
                let time = self.time(r, "time")?;
                let identity = self.identities(r)?;
                let product_cell = self.cell(r, "product");
                let product_id = with_key(&product_cell, |p| self.product_id(p));
                if let Some(id) = product_id {
                    let (name, category) = (self.text(r, "name"), self.text(r, "category"));
                    if name.is_some() || category.is_some() {
                        let key = product_cell.text().unwrap_or_default();
                        self.batch.products.push(ProductRow {
                            id,
                            key,
                            name,
                            category,
                            price,
                            attrs: None,
                        });
                    }
                }
                let order_id =
                    with_key(&order_cell, |k| self.order_id(k, identity, time)).unwrap_or(0);
                self.batch.lines.push(LineRow {
                    source_id: sid,
                    file_id: self.file_id,
                    order_id,
                    identity_id: identity,
                    product_id,
                    quantity,
                    amount,
                    discount,
                    time,
                });
            }
            SourceKind::Events | SourceKind::Ratings => {
                let (kind, value) = if self.src.kind == SourceKind::Ratings {
                    let c = self.cell(r, "rating");
                    let v = parse_decimal(&c)
                        .map_err(|reason| self.bad("rating", &c, reason))?
                        .ok_or_else(|| {
                            self.bad("rating", &c, "required field \"rating\" is empty".into())
                        })?;
                    ("rating".to_string(), Some(v))
                } else {
                    let kind = self
                        .text(r, "event")
                        .map(|s| s.to_lowercase())
                        .or_else(|| self.src.default_type.clone())
                        .unwrap_or_else(|| "event".into());
                    (kind, self.decimal(r, "value")?)
                };
                let time = self.time(r, "time")?;
                let product = self.text(r, "product");
                let channel = self.text(r, "channel").map(|s| s.to_lowercase());
                let identity = self.identities(r)?;
                let product_id = product.map(|p| self.product_id(&p));
                self.batch.events.push(EventRow {
                    source_id: sid,
                    file_id: self.file_id,
                    identity_id: identity,
                    kind,
                    product_id,
                    value,
                    channel,
                    time,
                });
            }
            SourceKind::Feedback => {
                let kind = self
                    .text(r, "type")
                    .map(|s| s.to_lowercase())
                    .or_else(|| self.src.default_type.clone())
                    .unwrap_or_else(|| "feedback".into());
                let score = self.decimal(r, "score")?;
                let time = self.time(r, "time")?;
                let text = self.text(r, "text");
                let channel = self.text(r, "channel").map(|s| s.to_lowercase());
                let identity = self.identities(r)?;
                self.customer_attributes(r, identity);
                self.batch.feedback.push(FeedbackRow {
                    source_id: sid,
                    file_id: self.file_id,
                    identity_id: identity,
                    kind,
                    score,
                    text,
                    channel,
                    time,
                });
            }
            SourceKind::Campaigns => {
                let key = self.required_text(r, "campaign")?;
                let start = self.time(r, "start")?;
                let end = self.time(r, "end")?;
                let id = self.campaign_id(&key);
                let (name, kind) = (self.text(r, "name"), self.text(r, "type"));
                self.batch.campaigns.push(CampaignRow {
                    id,
                    key,
                    name,
                    kind,
                    start,
                    end,
                });
            }
            SourceKind::CampaignExposures | SourceKind::Redemptions => {
                let key = self.required_text(r, "campaign")?;
                let time = self.time(r, "time")?;
                let identity = self.identities(r)?;
                let campaign_id = self.campaign_id(&key);
                let kind = if self.src.kind == SourceKind::Redemptions {
                    "redemption"
                } else {
                    "exposure"
                };
                self.batch.contacts.push(ContactRow {
                    source_id: sid,
                    file_id: self.file_id,
                    identity_id: identity,
                    campaign_id,
                    kind,
                    time,
                });
            }
            SourceKind::Consents => {
                let purpose = self.required_text(r, "purpose")?.to_lowercase();
                let c = self.cell(r, "granted");
                let granted = parse_bool(&c)
                    .map_err(|reason| self.bad("granted", &c, reason))?
                    .ok_or_else(|| {
                        self.bad("granted", &c, "required field \"granted\" is empty".into())
                    })?;
                let time = self.time(r, "time")?;
                let identity = self.identities(r)?;
                self.batch.consents.push(ConsentRow {
                    source_id: sid,
                    file_id: self.file_id,
                    identity_id: identity,
                    purpose,
                    granted,
                    time,
                });
            }
            SourceKind::Coupons => {
                let campaign = self.required_text(r, "campaign")?;
                let product = self.required_text(r, "product")?;
                let coupon = self.text(r, "coupon").unwrap_or_default();
                let campaign_id = self.campaign_id(&campaign);
                let product_id = self.product_id(&product);
                self.batch.coupons.push(CouponRow {
                    campaign_id,
                    product_id,
                    coupon,
                    source_id: sid,
                });
            }
            SourceKind::IdentityLinks => {
                let left = self.required_text(r, "left")?;
                let right = self.required_text(r, "right")?;
                let lns = self.src.left_namespace.clone().unwrap_or_default();
                let rns = self.src.right_namespace.clone().unwrap_or_default();
                let a = self.link_key(&lns, &left);
                let b = self.link_key(&rns, &right);
                if let (Some(a), Some(b)) = (a, b) {
                    self.link(a, b, "link_table");
                }
            }
        }
        Ok(())
    }

    fn link_key(&mut self, namespace: &str, raw: &str) -> Option<i64> {
        if self.blocked(raw) {
            self.ignored_values += 1;
            return None;
        }
        match namespace {
            "email" => match Email::parse(raw) {
                Some(e) => Some(self.key_id("email", KeyKind::Email, e.as_str())),
                None => {
                    self.ignored_values += 1;
                    None
                }
            },
            "phone" => match Phone::parse(raw, self.country_code.as_deref()) {
                Some(p) => Some(self.key_id("phone", KeyKind::Phone, p.as_str())),
                None => {
                    self.ignored_values += 1;
                    None
                }
            },
            ns => Some(self.key_id(ns, KeyKind::Customer, raw.trim())),
        }
    }

    fn order_id(&mut self, key: &str, identity: i64, time: Option<i64>) -> i64 {
        if let Some(&id) = self.orders.get(key) {
            return id;
        }
        self.next.order += 1;
        let id = self.next.order;
        self.orders.insert(key.to_string(), id);
        if self.src.kind == SourceKind::OrderLines {
            self.batch.orders.push(OrderRow {
                id,
                namespace: self.src.namespace.clone(),
                key: key.to_string(),
                identity_id: identity,
                time,
                amount: None,
                discount: None,
                file_id: self.file_id,
            });
        }
        id
    }

    /// Hands the batch to the writer thread.
    fn flush(&mut self) -> Result<(), EngineError> {
        if !self.batch.is_empty() {
            let full = std::mem::take(&mut self.batch);
            self.sink
                .send(full)
                .map_err(|_| EngineError::Invalid("the store writer stopped".into()))?;
        }
        Ok(())
    }
}

/// Lengths of every vector of a batch, to undo a half-parsed row.
#[derive(Debug, Clone, Copy)]
struct BatchMark([usize; 12]);

trait BatchUndo {
    fn clone_lengths(&self) -> BatchMark;
    fn truncate_to(&mut self, m: &BatchMark);
}

impl BatchUndo for WriteBatch {
    fn clone_lengths(&self) -> BatchMark {
        BatchMark([
            self.identities.len(),
            self.links.len(),
            self.products.len(),
            self.campaigns.len(),
            self.orders.len(),
            self.lines.len(),
            self.events.len(),
            self.feedback.len(),
            self.contacts.len(),
            self.consents.len(),
            self.attributes.len(),
            self.coupons.len(),
        ])
    }

    fn truncate_to(&mut self, m: &BatchMark) {
        let l = m.0;
        self.identities.truncate(l[0]);
        self.links.truncate(l[1]);
        self.products.truncate(l[2]);
        self.campaigns.truncate(l[3]);
        self.orders.truncate(l[4]);
        self.lines.truncate(l[5]);
        self.events.truncate(l[6]);
        self.feedback.truncate(l[7]);
        self.contacts.truncate(l[8]);
        self.consents.truncate(l[9]);
        self.attributes.truncate(l[10]);
        self.coupons.truncate(l[11]);
    }
}

const BATCH_ROWS: usize = 20_000;

type OverSharedList = Vec<(i64, OverSharedKey)>;

fn import_source(
    engine: &Engine,
    config: &Config,
    src: &SourceConfig,
    opts: &ImportOptions,
) -> Result<(SourceReport, usize, OverSharedList), EngineError> {
    let started = Instant::now();
    let started_at = now_rfc3339();
    // erased people's keys (read before the write transaction takes the store)
    let suppress = suppressor(engine)?;
    let file_hash = sha256_file(&src.file)?;
    let config_digest = format!(
        "{:x}",
        Sha256::digest(format!(
            "{}|{:?}",
            src.mapping_digest, config.identity.blocklist
        ))
    );
    let store = engine.store();
    let mut tx = store.begin()?;
    let source_id = tx.upsert_source(&src.name, src.kind.as_str(), &src.namespace)?;
    let file = src.file.display().to_string();
    let mut report = SourceReport {
        name: src.name.clone(),
        kind: src.kind.as_str().to_string(),
        file: file.clone(),
        status: "ok".into(),
        rows_read: 0,
        rows_written: 0,
        rows_rejected: 0,
        rows_suppressed: 0,
        rows_replaced: 0,
        rejects_file: None,
        ignored_identity_values: 0,
        seconds: 0.0,
        rows_per_second: 0.0,
    };
    let file_id = tx.upsert_file(source_id, &file)?;
    let previous = tx.last_import(source_id, &file)?;
    if previous.as_ref() == Some(&(file_hash.clone(), config_digest.clone())) {
        report.status = "unchanged".into();
        report.seconds = started.elapsed().as_secs_f64();
        tx.record_import(&ImportRun {
            source: src.name.clone(),
            file,
            file_hash,
            config_hash: config_digest,
            rows_read: 0,
            rows_written: 0,
            rows_rejected: 0,
            status: "unchanged".into(),
            started_at,
            finished_at: now_rfc3339(),
            seconds: report.seconds,
        })?;
        tx.commit()?;
        return Ok((report, 0, Vec::new()));
    }

    // a changed file replaces the rows it brought last time
    let replaced = if previous.is_some() {
        tx.delete_file_facts(file_id)?
    } else {
        0
    };
    let rows = open_reader(src)?;
    let parsed = load_rows(
        tx.as_mut(),
        config,
        src,
        rows,
        Target {
            source_id,
            file: &file,
            file_id,
        },
        suppress,
        opts,
    )?;
    let ParseOutcome {
        read,
        suppressed,
        suppressed_lines: _,
        written,
        rejects,
        ignored,
        next_customer,
        first_new,
    } = parsed;

    // resolve identities over the whole graph
    // the policy, privacy rules, departments, alert rules, intake and
    // webhook settings of the config last imported: servers, `--as-role`
    // and the intake read them from the store
    for (k, v) in config_settings(config)? {
        tx.set_setting(k, &v)?;
    }
    tx.set_setting(
        "identity.max_customers_per_key",
        &config.identity.max_customers_per_key.to_string(),
    )?;
    // and the rest of the identity policy, for the event intake
    tx.set_setting(
        "identity.blocklist",
        &serde_json::to_string(&config.identity.blocklist)
            .map_err(|e| EngineError::Invalid(format!("[identity] blocklist: {e}")))?,
    )?;
    if let Some(cc) = &config.identity.default_country_code {
        tx.set_setting("identity.default_country_code", cc)?;
    }
    let (merges, over_shared) =
        resolve_in(tx.as_mut(), config, first_new, next_customer, &src.name)?;

    if !rejects.is_empty() {
        let dir = opts.rejects_dir.clone().unwrap_or_else(|| {
            config
                .path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        });
        let path = dir.join(format!("{}.rejects.csv", src.name));
        write_rejects(&path, &file, &rejects)?;
        report.rejects_file = Some(path.display().to_string());
        // an erasure cleans rejects files too: remember where they are
        let abs = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
        tx.set_setting(
            &format!("import.rejects.{}", src.name),
            &abs.display().to_string(),
        )?;
    }
    report.rows_read = read;
    report.rows_replaced = replaced;
    report.rows_written = written;
    report.rows_rejected = rejects.len() as u64;
    report.rows_suppressed = suppressed;
    report.ignored_identity_values = ignored;
    report.seconds = started.elapsed().as_secs_f64();
    report.rows_per_second = if report.seconds > 0.0 {
        read as f64 / report.seconds
    } else {
        0.0
    };
    tx.record_import(&ImportRun {
        source: src.name.clone(),
        file,
        file_hash,
        config_hash: config_digest,
        rows_read: read as i64,
        rows_written: written as i64,
        rows_rejected: rejects.len() as i64,
        status: "ok".into(),
        started_at,
        finished_at: now_rfc3339(),
        seconds: report.seconds,
    })?;
    tx.commit()?;
    Ok((report, merges, over_shared))
}

/// Erased people's keys, when there are any (read before a write
/// transaction takes the store).
pub(crate) fn suppressor(engine: &Engine) -> Result<Option<Suppressor>, EngineError> {
    Ok(match engine.store().data_key() {
        Some(key) => {
            let hashes = engine.store().suppressions()?;
            (!hashes.is_empty()).then_some(Suppressor { key, hashes })
        }
        None => None,
    })
}

/// Where rows go: the source and the file (or intake stream) they are
/// recorded as coming from.
pub(crate) struct Target<'a> {
    pub source_id: i64,
    pub file: &'a str,
    pub file_id: i64,
}

/// Maps, validates and writes the rows of one reader into `tx` (the core of
/// a file's import, shared with the event intake): parsing on its own
/// thread, writing on this one. Identities are not resolved here.
pub(crate) fn load_rows(
    tx: &mut (dyn StoreTx + '_),
    config: &Config,
    src: &SourceConfig,
    mut rows: Box<dyn RowReader>,
    target: Target<'_>,
    suppress: Option<Suppressor>,
    opts: &ImportOptions,
) -> Result<ParseOutcome, EngineError> {
    let max = tx.max_ids()?;
    let maps = tx.key_maps()?;
    let orders = if matches!(src.kind, SourceKind::Orders | SourceKind::OrderLines) {
        tx.order_keys(&src.namespace)?
    } else {
        HashMap::new()
    };
    let mut customer_ids = FastMap::default();
    let mut email_ids = FastMap::default();
    let mut phone_ids = FastMap::default();
    let mut other_ns_ids = FastMap::default();
    for ((ns, kind, value), (id, _)) in maps.identities {
        match kind.as_str() {
            "email" => {
                email_ids.insert(value, id);
            }
            "phone" => {
                phone_ids.insert(value, id);
            }
            _ if ns == src.namespace => {
                customer_ids.insert(value, id);
            }
            _ => {
                other_ns_ids.insert((ns, kind, value), id);
            }
        }
    }
    let map = Mapping::new(src, rows.headers());
    let (sink, receiver) = std::sync::mpsc::sync_channel::<WriteBatch>(2);
    let mut loader = Loader {
        sink,
        src,
        file: target.file.to_string(),
        source_id: target.source_id,
        map,
        next: max,
        first_new_customer: max.customer + 1,
        customer_ids,
        email_ids,
        phone_ids,
        other_ns_ids,
        products: fast_map(maps.products),
        campaigns: fast_map(maps.campaigns),
        orders: fast_map(orders),
        edges: HashSet::default(),
        file_id: target.file_id,
        blocklist: config
            .identity
            .blocklist
            .iter()
            .map(|b| blocklist_form(b))
            .collect(),
        blocklist_max_len: config
            .identity
            .blocklist
            .iter()
            .map(|b| b.trim().len())
            .max()
            .unwrap_or(0),
        country_code: config.identity.default_country_code.clone(),
        batch: WriteBatch::default(),
        ignored_values: 0,
        line: 0,
        suppress,
        suppressed_hit: false,
    };
    let bar = crate::report::progress_bar(opts.progress, &format!("{} ({})", src.name, src.kind));
    // Parsing runs on its own thread and hands full batches to this one, which
    // writes them: reading and writing overlap.
    std::thread::scope(|scope| -> Result<ParseOutcome, EngineError> {
        let parser =
            scope.spawn(move || parse_rows(&mut loader, rows.as_mut(), opts, bar.as_ref()));
        let mut written = 0u64;
        let mut write_err = None;
        for batch in receiver.iter() {
            match tx.write(&batch) {
                Ok(n) => written += n,
                Err(e) => {
                    write_err = Some(e);
                    break;
                }
            }
        }
        drop(receiver);
        let outcome = parser
            .join()
            .map_err(|_| EngineError::Invalid("the parser thread panicked".into()))?;
        if let Some(e) = write_err {
            return Err(e.into());
        }
        let mut outcome = outcome?;
        outcome.written = written;
        Ok(outcome)
    })
}

pub(crate) struct ParseOutcome {
    pub read: u64,
    pub suppressed: u64,
    /// Lines (intake: journal sequence numbers) of the suppressed rows.
    pub suppressed_lines: Vec<u64>,
    pub written: u64,
    pub rejects: Vec<Reject>,
    pub ignored: u64,
    pub next_customer: i64,
    pub first_new: i64,
}

fn parse_rows(
    loader: &mut Loader<'_>,
    rows: &mut dyn RowReader,
    opts: &ImportOptions,
    bar: Option<&indicatif::ProgressBar>,
) -> Result<ParseOutcome, EngineError> {
    let mut rejects: Vec<Reject> = Vec::new();
    let mut read = 0u64;
    let mut suppressed = 0u64;
    let mut suppressed_lines = Vec::new();
    loop {
        let more = match rows.advance() {
            Ok(m) => m,
            Err(e) if e.is_row_error() => {
                read += 1;
                loader.line = e.line().unwrap_or(0);
                reject_or_fail(&mut rejects, e, opts.skip_bad_rows)?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if !more {
            break;
        }
        read += 1;
        loader.line = rows.line();
        if let Err(e) = loader.row(rows) {
            if loader.suppressed_hit {
                loader.suppressed_hit = false;
                suppressed += 1;
                suppressed_lines.push(loader.line);
            } else {
                reject_or_fail(&mut rejects, e, opts.skip_bad_rows)?;
            }
        }
        if loader.batch.len() >= BATCH_ROWS {
            loader.flush()?;
        }
        if read.is_multiple_of(8192)
            && let Some(b) = bar
        {
            let (pos, total) = rows.progress();
            b.set_length(total.max(pos));
            b.set_position(pos);
            b.set_message(format!("{} {} rows", loader.src.name, read));
        }
    }
    loader.flush()?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(ParseOutcome {
        read,
        suppressed,
        suppressed_lines,
        written: 0,
        rejects,
        ignored: loader.ignored_values,
        next_customer: loader.next.customer + 1,
        first_new: loader.first_new_customer,
    })
}

fn reject_or_fail(
    rejects: &mut Vec<Reject>,
    e: IngestError,
    budget: u64,
) -> Result<(), EngineError> {
    if (rejects.len() as u64) >= budget {
        return Err(e.into());
    }
    let (line, column, value, reason) = match &e {
        IngestError::BadValue {
            line,
            column,
            value,
            reason,
            ..
        } => (*line, column.clone(), value.clone(), reason.clone()),
        IngestError::BadRow { line, reason, .. } => {
            (*line, String::new(), String::new(), reason.clone())
        }
        other => (0, String::new(), String::new(), other.to_string()),
    };
    rejects.push(Reject {
        line,
        column,
        value,
        reason,
    });
    Ok(())
}

fn write_rejects(path: &Path, file: &str, rejects: &[Reject]) -> Result<(), EngineError> {
    let io = |e: std::io::Error| EngineError::Io {
        path: path.display().to_string(),
        source: e,
    };
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(io)?;
    }
    let mut w = csv::Writer::from_path(path)
        .map_err(|e| EngineError::Invalid(format!("{}: {e}", path.display())))?;
    let werr = |e: csv::Error| EngineError::Invalid(format!("{}: {e}", path.display()));
    w.write_record(["file", "line", "column", "value", "reason"])
        .map_err(werr)?;
    for r in rejects {
        w.write_record([file, &r.line.to_string(), &r.column, &r.value, &r.reason])
            .map_err(werr)?;
    }
    w.flush().map_err(io)?;
    Ok(())
}

/// Re-resolves the identity graph inside `tx`; returns merges and over-shared keys.
pub(crate) fn resolve_in(
    tx: &mut dyn StoreTx,
    config: &Config,
    first_new: i64,
    next_customer: i64,
    why: &str,
) -> Result<(usize, OverSharedList), EngineError> {
    resolve_graph(
        tx,
        config.identity.max_customers_per_key,
        first_new,
        next_customer,
        why,
    )
}

/// Re-resolves the identity graph with a given policy (used by import and split).
pub(crate) fn resolve_graph(
    tx: &mut dyn StoreTx,
    max_customers_per_key: usize,
    first_new: i64,
    next_customer: i64,
    why: &str,
) -> Result<(usize, OverSharedList), EngineError> {
    let (ids, links) = tx.identity_graph()?;
    let by_id: HashMap<i64, &infogap_store::IdentityRecord> =
        ids.iter().map(|i| (i.id, i)).collect();
    let nodes: Vec<Node> = ids
        .iter()
        .map(|i| Node {
            id: i.id,
            namespace: i.namespace.clone(),
            global: i.kind != "customer",
            customer: i.customer_id,
        })
        .collect();
    let edges: Vec<Edge> = links
        .iter()
        .map(|l| Edge {
            a: l.a,
            b: l.b,
            suppressed: l.suppressed,
        })
        .collect();
    let next = next_customer.max(ids.iter().map(|i| i.customer_id).max().unwrap_or(0) + 1);
    let res = identity::resolve(&nodes, &edges, max_customers_per_key, first_new, next);
    let shared: Vec<i64> = res.over_shared.iter().map(|o| o.identity).collect();
    tx.assign_customers(&res.changes, &res.new_customers, &shared)?;
    let at = now_rfc3339();
    for (kept, gone) in &res.merges {
        tx.log_merge(&MergeLogEntry {
            at: at.clone(),
            action: "merge".into(),
            customer_id: *kept,
            other_id: Some(*gone),
            detail: format!(
                "customer #{gone} merged into #{kept}: their keys were linked by {why}"
            ),
        })?;
    }
    let over = res
        .over_shared
        .iter()
        .filter_map(|o| {
            let rec = by_id.get(&o.identity)?;
            Some((
                o.identity,
                OverSharedKey {
                    kind: rec.kind.clone(),
                    value: rec.value.clone(),
                    namespace: o.namespace.clone(),
                    customer_ids: o.ids,
                },
            ))
        })
        .collect();
    Ok((res.merges.len(), over))
}

/// The settings a config gives the store, whichever files it imports:
/// `[access]`, `[privacy]`, `[[department]]`, `[[rule]]`, `[intake]` and
/// `[webhooks]`, as (setting, value).
fn config_settings(config: &Config) -> Result<Vec<(&'static str, String)>, EngineError> {
    let js = |v: Result<String, serde_json::Error>, what: &str| {
        v.map_err(|e| EngineError::Invalid(format!("{what}: {e}")))
    };
    Ok(vec![
        (
            "access",
            js(serde_json::to_string(&config.access), "[access]")?,
        ),
        (
            "privacy",
            js(serde_json::to_string(&config.privacy), "[privacy]")?,
        ),
        (
            "departments",
            js(serde_json::to_string(&config.departments), "[[department]]")?,
        ),
        (
            crate::alerts::RULES_SETTING,
            js(serde_json::to_string(&config.rules), "[[rule]]")?,
        ),
        (
            crate::intake::BAD_EVENTS_SETTING,
            config
                .intake
                .bad_events
                .clone()
                .unwrap_or_else(|| "keep_rest".into()),
        ),
        (
            crate::webhooks::SETTING,
            js(serde_json::to_string(&config.webhooks), "[webhooks]")?,
        ),
    ])
}
