//! The analytical snapshot as the store sees it: raw tables keyed by store
//! ids (facts still point at identities, grouped by the file they came from),
//! the delta that brings a snapshot from generation N to the store's current
//! one, and the assembly of the model-facing [`Dataset`].
//!
//! Why raw tables and not the `Dataset` itself: a merge or a split changes
//! which customer an identity belongs to, and a replaced file removes exactly
//! that file's facts. Keeping facts by identity and by file makes both a
//! cheap in-memory change, so a long-running process refreshes from "what
//! changed since generation N" ([`Store::snapshot_delta`]) and never rereads
//! the store. Assembly (identity → customer, order totals from their lines)
//! is a pass over memory. The cache file ([`crate::cache`]) stores these
//! raw tables; it is derived and disposable.

use std::collections::{BTreeMap, HashMap, HashSet};

use infogap_core::dataset::{
    AttrValue, CampaignFact, CampaignInfo, CustomerInfo, Dataset, EventFact, FeedbackFact, IdIndex,
    LineFact, OrderFact, ProductInfo,
};

use crate::{Result, StoreError};

/// Where a store stands: which store it is and how many write transactions
/// it has seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// Random id given to the store when it was created (tags caches).
    pub store_id: String,
    /// Increases with every write transaction.
    pub generation: i64,
}

/// An identity: which customer it belongs to and its key.
#[derive(Debug, Clone, PartialEq)]
pub struct RawIdentity {
    /// Store id.
    pub id: i64,
    /// Unified customer.
    pub customer_id: i64,
    /// Over-shared global key (never a customer's own key).
    pub shared: bool,
    /// Namespace.
    pub namespace: String,
    /// Normalized value.
    pub value: String,
}

/// A typed attribute recorded under an identity.
#[derive(Debug, Clone, PartialEq)]
pub struct RawAttribute {
    /// Row id: later rows win when two identities of one customer carry the same name.
    pub rowid: i64,
    /// Identity.
    pub identity_id: i64,
    /// Name.
    pub name: String,
    /// Value.
    pub value: AttrValue,
}

/// An order as stored: totals are `None` when they come from its lines.
#[derive(Debug, Clone, PartialEq)]
pub struct RawOrder {
    /// Store id.
    pub id: i64,
    /// Buyer identity.
    pub identity_id: i64,
    /// Time, when the source gave one.
    pub time: Option<i64>,
    /// Amount, when an orders source gave one.
    pub amount: Option<f64>,
    /// Discount, when an orders source gave one.
    pub discount: Option<f64>,
}

/// An order line.
#[derive(Debug, Clone, PartialEq)]
pub struct RawLine {
    /// Store id.
    pub id: i64,
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

/// An event.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent {
    /// Store id.
    pub id: i64,
    /// Identity.
    pub identity_id: i64,
    /// Kind.
    pub kind: String,
    /// Product.
    pub product_id: Option<i64>,
    /// Value (the rating for `rating`).
    pub value: Option<f64>,
    /// Channel.
    pub channel: Option<String>,
    /// Time.
    pub time: Option<i64>,
}

/// A piece of feedback.
#[derive(Debug, Clone, PartialEq)]
pub struct RawFeedback {
    /// Store id.
    pub id: i64,
    /// Identity.
    pub identity_id: i64,
    /// Kind.
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

/// A campaign contact.
#[derive(Debug, Clone, PartialEq)]
pub struct RawContact {
    /// Store id.
    pub id: i64,
    /// Identity.
    pub identity_id: i64,
    /// Campaign.
    pub campaign_id: i64,
    /// A redemption (else an exposure).
    pub redemption: bool,
    /// Time.
    pub time: Option<i64>,
}

/// The facts one file brought, each table sorted by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Segment {
    /// Order lines.
    pub lines: Vec<RawLine>,
    /// Events.
    pub events: Vec<RawEvent>,
    /// Feedback.
    pub feedback: Vec<RawFeedback>,
    /// Campaign contacts.
    pub contacts: Vec<RawContact>,
}

impl Segment {
    /// Whether the file left no fact rows.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
            && self.events.is_empty()
            && self.feedback.is_empty()
            && self.contacts.is_empty()
    }

    /// Number of fact rows.
    pub fn len(&self) -> usize {
        self.lines.len() + self.events.len() + self.feedback.len() + self.contacts.len()
    }
}

/// The fact rows of one file and table, as read for a delta.
#[derive(Debug, Clone, PartialEq)]
pub enum FactRows {
    /// Order lines.
    Lines(Vec<RawLine>),
    /// Events.
    Events(Vec<RawEvent>),
    /// Feedback.
    Feedback(Vec<RawFeedback>),
    /// Campaign contacts.
    Contacts(Vec<RawContact>),
}

impl FactRows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            FactRows::Lines(v) => v.len(),
            FactRows::Events(v) => v.len(),
            FactRows::Feedback(v) => v.len(),
            FactRows::Contacts(v) => v.len(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What one write transaction did to one file's facts of one table.
#[derive(Debug, Clone, PartialEq)]
pub struct FileChange {
    /// The file.
    pub file_id: i64,
    /// The file's earlier rows of this table are gone (a replaced file).
    pub replace: bool,
    /// Rows it added, sorted by id.
    pub rows: FactRows,
}

/// Everything that changed in a store between two generations, read in one
/// consistent read transaction. Keyed tables come as upserts (rows inserted
/// or changed since), facts as per-file changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnapshotDelta {
    /// The store.
    pub store_id: String,
    /// Generation the delta starts from (0: everything).
    pub since: i64,
    /// Generation it brings a snapshot to.
    pub generation: i64,
    /// The delta holds the whole store: apply it to an empty snapshot.
    pub full: bool,
    /// Identities inserted or changed (customer, shared flag), by id.
    pub identities: Vec<RawIdentity>,
    /// Attributes inserted or changed, by row id.
    pub attributes: Vec<RawAttribute>,
    /// Products inserted or changed, by id.
    pub products: Vec<ProductInfo>,
    /// Campaigns inserted or changed, by id.
    pub campaigns: Vec<CampaignInfo>,
    /// Orders inserted or changed, by id.
    pub orders: Vec<RawOrder>,
    /// Orders removed (their file was replaced and they have no lines left).
    pub orders_deleted: Vec<i64>,
    /// Fact changes per file and table, in the order they happened.
    pub files: Vec<FileChange>,
}

impl SnapshotDelta {
    /// Number of rows the delta carries (how much was read).
    pub fn rows(&self) -> usize {
        self.identities.len()
            + self.attributes.len()
            + self.products.len()
            + self.campaigns.len()
            + self.orders.len()
            + self.orders_deleted.len()
            + self.files.iter().map(|f| f.rows.len()).sum::<usize>()
    }
}

/// The raw tables of a store at one generation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawSnapshot {
    /// The store they come from.
    pub store_id: String,
    /// Its generation.
    pub generation: i64,
    /// Identities, by id.
    pub identities: Vec<RawIdentity>,
    /// Attributes, by row id.
    pub attributes: Vec<RawAttribute>,
    /// Products, by id.
    pub products: Vec<ProductInfo>,
    /// Campaigns, by id.
    pub campaigns: Vec<CampaignInfo>,
    /// Orders, by id.
    pub orders: Vec<RawOrder>,
    /// Facts by file id.
    pub segments: BTreeMap<i64, Segment>,
}

/// Merges `new` (sorted by key) into `old` (sorted by key); on equal keys the
/// new row replaces the old. Appending is the common case and costs nothing
/// more than the copy.
fn upsert_sorted<T>(old: &mut Vec<T>, mut new: Vec<T>, key: impl Fn(&T) -> i64) {
    if new.is_empty() {
        return;
    }
    if !new.is_sorted_by_key(&key) {
        new.sort_by_key(&key);
    }
    if old.is_empty() {
        // a move, not a copy: a full load must not hold its rows twice
        *old = new;
        return;
    }
    let appends = match (old.last(), new.first()) {
        (Some(a), Some(b)) => key(a) < key(b),
        _ => true,
    };
    if appends {
        old.append(&mut new);
        return;
    }
    let mut merged = Vec::with_capacity(old.len() + new.len());
    let mut a = std::mem::take(old).into_iter().peekable();
    let mut b = new.into_iter().peekable();
    loop {
        match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => {
                let (kx, ky) = (key(x), key(y));
                if kx < ky {
                    merged.extend(a.next());
                } else {
                    if kx == ky {
                        a.next();
                    }
                    merged.extend(b.next());
                }
            }
            (Some(_), None) => merged.extend(a.by_ref()),
            (None, Some(_)) => merged.extend(b.by_ref()),
            (None, None) => break,
        }
    }
    *old = merged;
}

impl RawSnapshot {
    /// Every order's final time, amount and discount (what the cache stores
    /// so a reader need not sum lines).
    pub fn order_finals(&self) -> Vec<OrderFinal> {
        order_totals(
            &self.orders,
            merge_by_id(self.segments.values().map(|s| s.lines.as_slice()), |r| r.id)
                .map(|l| (l.order_id, l.time, l.amount, l.discount)),
        )
    }

    /// Number of fact rows (lines, events, feedback, contacts) held.
    pub fn fact_rows(&self) -> usize {
        self.segments.values().map(Segment::len).sum()
    }

    /// Applies a delta read from the store. A full delta replaces everything.
    pub fn apply(&mut self, delta: SnapshotDelta) -> Result<()> {
        if delta.full {
            *self = RawSnapshot {
                store_id: delta.store_id.clone(),
                ..RawSnapshot::default()
            };
        } else if delta.store_id != self.store_id {
            return Err(StoreError::Corrupt(format!(
                "a delta of store {} cannot apply to a snapshot of store {}",
                delta.store_id, self.store_id
            )));
        } else if delta.since != self.generation {
            return Err(StoreError::Corrupt(format!(
                "a delta from generation {} cannot apply to a snapshot at generation {}",
                delta.since, self.generation
            )));
        }
        upsert_sorted(&mut self.identities, delta.identities, |r| r.id);
        upsert_sorted(&mut self.attributes, delta.attributes, |r| r.rowid);
        upsert_sorted(&mut self.products, delta.products, |r| r.id);
        upsert_sorted(&mut self.campaigns, delta.campaigns, |r| r.id);
        if !delta.orders_deleted.is_empty() {
            let gone: HashSet<i64> = delta.orders_deleted.into_iter().collect();
            self.orders.retain(|o| !gone.contains(&o.id));
        }
        upsert_sorted(&mut self.orders, delta.orders, |r| r.id);
        for change in delta.files {
            let seg = self.segments.entry(change.file_id).or_default();
            match change.rows {
                FactRows::Lines(rows) => {
                    if change.replace {
                        seg.lines.clear();
                    }
                    upsert_sorted(&mut seg.lines, rows, |r| r.id);
                }
                FactRows::Events(rows) => {
                    if change.replace {
                        seg.events.clear();
                    }
                    upsert_sorted(&mut seg.events, rows, |r| r.id);
                }
                FactRows::Feedback(rows) => {
                    if change.replace {
                        seg.feedback.clear();
                    }
                    upsert_sorted(&mut seg.feedback, rows, |r| r.id);
                }
                FactRows::Contacts(rows) => {
                    if change.replace {
                        seg.contacts.clear();
                    }
                    upsert_sorted(&mut seg.contacts, rows, |r| r.id);
                }
            }
            if seg.is_empty() {
                self.segments.remove(&change.file_id);
            }
        }
        self.generation = delta.generation;
        Ok(())
    }

    /// The same customers (identities are kept: the unified view decides
    /// who is who) with only the facts of the files, the attribute rows and
    /// the file-less orders a department holds: what it would know alone.
    /// An order stays when its file is kept, or, for orders without a file,
    /// when any of its lines is.
    pub fn restricted(
        &self,
        keep_file: impl Fn(i64) -> bool,
        keep_attribute: impl Fn(i64) -> bool,
        order_file: impl Fn(i64) -> Option<i64>,
    ) -> RawSnapshot {
        let segments: BTreeMap<i64, Segment> = self
            .segments
            .iter()
            .filter(|(f, _)| keep_file(**f))
            .map(|(f, s)| (*f, s.clone()))
            .collect();
        let with_lines: HashSet<i64> = segments
            .values()
            .flat_map(|s| s.lines.iter().map(|l| l.order_id))
            .collect();
        RawSnapshot {
            store_id: self.store_id.clone(),
            generation: self.generation,
            identities: self.identities.clone(),
            attributes: self
                .attributes
                .iter()
                .filter(|a| keep_attribute(a.rowid))
                .cloned()
                .collect(),
            products: self.products.clone(),
            campaigns: self.campaigns.clone(),
            orders: self
                .orders
                .iter()
                .filter(|o| match order_file(o.id) {
                    Some(f) => keep_file(f),
                    None => with_lines.contains(&o.id),
                })
                .cloned()
                .collect(),
            segments,
        }
    }

    /// Builds the model-facing [`Dataset`]: facts resolved to customers, in
    /// store-id order, orders' missing totals summed from their lines the
    /// way SQLite's `SUM` does (Kahan–Babuška–Neumaier), so every figure is
    /// the one the store's own SQL gives.
    pub fn dataset(&self) -> Result<Dataset> {
        let (customers, owner) = resolve_customers(&self.identities, &self.attributes)?;
        let mut ds = Dataset {
            customers,
            products: self.products.clone(),
            campaigns: self.campaigns.clone(),
            ..Dataset::default()
        };
        // facts in store-id order across files
        ds.lines = merge_by_id(self.segments.values().map(|s| s.lines.as_slice()), |r| r.id)
            .map(|l| owner.line(l))
            .collect::<Result<_>>()?;
        ds.events = merge_by_id(self.segments.values().map(|s| s.events.as_slice()), |r| {
            r.id
        })
        .map(|e| owner.event(e))
        .collect::<Result<_>>()?;
        ds.feedback = merge_by_id(self.segments.values().map(|s| s.feedback.as_slice()), |r| {
            r.id
        })
        .map(|f| owner.feedback(f))
        .collect::<Result<_>>()?;
        for c in merge_by_id(self.segments.values().map(|s| s.contacts.as_slice()), |r| {
            r.id
        }) {
            owner.contact(c, &mut ds)?;
        }
        ds.orders = orders_with_totals(&self.orders, &ds.lines, &owner)?;
        Ok(ds)
    }
}

/// Which customer each identity belongs to.
pub struct Owners(IdIndex);

impl Owners {
    /// The customer of an identity.
    pub fn customer(&self, identity: i64) -> Result<i64> {
        self.0.get(identity).ok_or_else(|| {
            StoreError::Corrupt(format!("a fact points at unknown identity {identity}"))
        })
    }

    /// An order line as the models see it.
    #[inline]
    pub fn line(&self, l: &RawLine) -> Result<LineFact> {
        Ok(LineFact {
            order: l.order_id,
            customer: self.customer(l.identity_id)?,
            product: l.product_id,
            quantity: l.quantity,
            amount: l.amount,
            discount: l.discount,
            time: l.time,
        })
    }

    /// An order as the models see it, with its final totals.
    pub fn order(&self, o: &RawOrder, (time, amount, discount): OrderFinal) -> Result<OrderFact> {
        Ok(OrderFact {
            id: o.id,
            customer: self.customer(o.identity_id)?,
            time,
            amount,
            discount,
        })
    }

    /// An event as the models see it.
    pub fn event(&self, e: &RawEvent) -> Result<EventFact> {
        Ok(EventFact {
            customer: self.customer(e.identity_id)?,
            kind: e.kind.clone(),
            product: e.product_id,
            value: e.value,
            channel: e.channel.clone(),
            time: e.time,
        })
    }

    /// Feedback as the models see it.
    pub fn feedback(&self, f: &RawFeedback) -> Result<FeedbackFact> {
        Ok(FeedbackFact {
            customer: self.customer(f.identity_id)?,
            kind: f.kind.clone(),
            score: f.score,
            text: f.text.clone(),
            channel: f.channel.clone(),
            time: f.time,
        })
    }

    /// Files a campaign contact as an exposure or a redemption.
    pub fn contact(&self, c: &RawContact, ds: &mut Dataset) -> Result<()> {
        let fact = CampaignFact {
            customer: self.customer(c.identity_id)?,
            campaign: c.campaign_id,
            time: c.time,
        };
        if c.redemption {
            ds.redemptions.push(fact);
        } else {
            ds.exposures.push(fact);
        }
        Ok(())
    }
}

/// The customers (key: their lowest-id identity that is not over-shared; a
/// customer with only over-shared keys is no person and is left out), with
/// their attributes (later rows win), and the identity → customer map.
pub fn resolve_customers(
    identities: &[RawIdentity],
    attributes: &[RawAttribute],
) -> Result<(Vec<CustomerInfo>, Owners)> {
    let owner = Owners(IdIndex::new(
        identities.iter().map(|i| (i.id, i.customer_id)),
    ));
    let mut keyed: HashMap<i64, usize> = HashMap::new();
    let mut customers: Vec<CustomerInfo> = Vec::new();
    for i in identities.iter().filter(|i| !i.shared) {
        keyed.entry(i.customer_id).or_insert_with(|| {
            customers.push(CustomerInfo {
                id: i.customer_id,
                key: format!("{}:{}", i.namespace, i.value),
                attributes: BTreeMap::new(),
            });
            customers.len() - 1
        });
    }
    customers.sort_by_key(|c| c.id);
    let index: HashMap<i64, usize> = customers
        .iter()
        .enumerate()
        .map(|(ix, c)| (c.id, ix))
        .collect();
    for a in attributes {
        let c = owner.customer(a.identity_id)?;
        if let Some(&ix) = index.get(&c) {
            customers[ix]
                .attributes
                .insert(a.name.clone(), a.value.clone());
        }
    }
    Ok((customers, owner))
}

/// An order's time, amount and discount as the models see them.
pub type OrderFinal = (Option<i64>, f64, f64);

/// Time, amount and discount of each order: from the order when its source
/// gave them, else from its lines (earliest time; sums as SQLite's `SUM`).
/// `lines` gives (order, time, amount, discount) in line-id order.
pub fn order_totals(
    orders: &[RawOrder],
    lines: impl Iterator<Item = (i64, Option<i64>, f64, f64)>,
) -> Vec<OrderFinal> {
    let pos = IdIndex::positions(orders, |o| o.id);
    let mut sums = vec![LineTotals::default(); orders.len()];
    for (order, time, amount, discount) in lines {
        if let Some(ix) = pos.pos(order) {
            sums[ix].add(time, amount, discount);
        }
    }
    orders
        .iter()
        .zip(&sums)
        .map(|(o, t)| {
            (
                o.time.or(t.min_time),
                o.amount.or(t.amount.value()).unwrap_or(0.0),
                o.discount.or(t.discount.value()).unwrap_or(0.0),
            )
        })
        .collect()
}

/// Orders as the models see them (see [`order_totals`]).
pub fn orders_with_totals(
    orders: &[RawOrder],
    lines: &[LineFact],
    owner: &Owners,
) -> Result<Vec<OrderFact>> {
    let finals = order_totals(
        orders,
        lines
            .iter()
            .map(|l| (l.order, l.time, l.amount, l.discount)),
    );
    orders
        .iter()
        .zip(finals)
        .map(|(o, f)| owner.order(o, f))
        .collect()
}

/// The running sum of SQLite's `SUM()` over REAL values (3.43+):
/// Kahan–Babuška–Neumaier, finalized as `sum + err` unless `err` overflowed.
#[derive(Debug, Clone, Copy, Default)]
pub struct KbnSum {
    n: u64,
    sum: f64,
    err: f64,
}

impl KbnSum {
    /// Adds one value.
    pub fn add(&mut self, r: f64) {
        self.n += 1;
        let s = self.sum;
        let t = s + r;
        if s.abs() > r.abs() {
            self.err += (s - t) + r;
        } else {
            self.err += (r - t) + s;
        }
        self.sum = t;
    }

    /// The sum, `None` for no values (SQL's NULL).
    pub fn value(&self) -> Option<f64> {
        (self.n > 0).then(|| {
            if self.err.is_finite() {
                self.sum + self.err
            } else {
                self.sum
            }
        })
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct LineTotals {
    min_time: Option<i64>,
    amount: KbnSum,
    discount: KbnSum,
}

impl LineTotals {
    fn add(&mut self, time: Option<i64>, amount: f64, discount: f64) {
        if let Some(t) = time {
            self.min_time = Some(self.min_time.map_or(t, |m| m.min(t)));
        }
        self.amount.add(amount);
        self.discount.add(discount);
    }
}

/// Rows of several id-sorted slices in id order. Files almost always hold
/// disjoint id ranges, so this is a concatenation; otherwise a k-way merge.
fn merge_by_id<'a, T>(
    parts: impl Iterator<Item = &'a [T]>,
    key: impl Fn(&T) -> i64 + Copy,
) -> Box<dyn Iterator<Item = &'a T> + 'a>
where
    T: 'a,
{
    let mut parts: Vec<&'a [T]> = parts.filter(|p| !p.is_empty()).collect();
    parts.sort_by_key(|p| key(&p[0]));
    let disjoint = parts
        .windows(2)
        .all(|w| key(&w[0][w[0].len() - 1]) < key(&w[1][0]));
    if disjoint {
        return Box::new(parts.into_iter().flatten());
    }
    let mut all: Vec<&'a T> = parts.into_iter().flatten().collect();
    all.sort_by_key(|r| key(r));
    Box::new(all.into_iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_appends_merges_and_replaces() {
        let mut v = vec![(1, 'a'), (3, 'b')];
        upsert_sorted(&mut v, vec![(5, 'c')], |r| r.0);
        assert_eq!(v, vec![(1, 'a'), (3, 'b'), (5, 'c')]);
        upsert_sorted(&mut v, vec![(3, 'x'), (2, 'y')], |r| r.0);
        assert_eq!(v, vec![(1, 'a'), (2, 'y'), (3, 'x'), (5, 'c')]);
    }

    #[test]
    fn kbn_matches_a_compensated_sum_where_naive_summation_drifts() {
        let mut k = KbnSum::default();
        assert_eq!(k.value(), None);
        let mut naive = 0.0;
        for _ in 0..10 {
            k.add(0.1);
            naive += 0.1;
        }
        assert_eq!(k.value(), Some(1.0));
        assert_ne!(naive, 1.0);
        let mut big = KbnSum::default();
        for x in [1e100, 1.0, -1e100] {
            big.add(x);
        }
        assert_eq!(big.value(), Some(1.0));
    }

    #[test]
    fn merge_by_id_interleaves_overlapping_files() {
        let a = [1, 4, 5];
        let b = [2, 3, 9];
        let got: Vec<i64> = merge_by_id([&a[..], &b[..]].into_iter(), |x| *x)
            .copied()
            .collect();
        assert_eq!(got, vec![1, 2, 3, 4, 5, 9]);
        let got: Vec<i64> = merge_by_id([&b[2..], &a[..]].into_iter(), |x| *x)
            .copied()
            .collect();
        assert_eq!(got, vec![1, 4, 5, 9]);
    }
}
