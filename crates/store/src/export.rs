//! The rows of one person, one by one with their provenance, for the
//! person's export (GDPR Art. 15/20): every order, order line, event,
//! feedback row, campaign contact and attribute of every identity of the
//! customer, each with the source and the file (or line) it came from.
//!
//! Only columns that are never encrypted at rest are read here: the
//! values that are (identity values, attribute values, feedback text) come
//! through the store's own readers (`customer_identities`,
//! `customer_facts`, `customer_timeline`), which open them, and the
//! engine joins them to these rows by id.

use serde::Serialize;

use crate::sql::RawDb;
use crate::{Result, SqliteStore};

/// Everything [`crate::Store::person_rows`] returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PersonRows {
    /// When the customer row was created (RFC 3339), if it exists.
    pub created_at: Option<String>,
    /// Identity id → over-shared flag (a family or office key, never linked).
    pub shared: Vec<(i64, bool)>,
    /// Orders.
    pub orders: Vec<OrderRecord>,
    /// Order lines.
    pub order_lines: Vec<LineRecord>,
    /// Events (ratings included).
    pub events: Vec<EventRecord>,
    /// Feedback rows (without their free text: see the module note).
    pub feedback: Vec<FeedbackRecord>,
    /// Campaign exposures and redemptions.
    pub campaigns: Vec<ContactRecord>,
    /// Attributes (without their value: see the module note).
    pub attributes: Vec<AttributeRecord>,
}

/// One order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderRecord {
    /// Row id.
    pub id: i64,
    /// Namespace of the order key.
    pub namespace: String,
    /// Order key.
    pub key: String,
    /// Identity of the buyer.
    pub identity_id: i64,
    /// Time (Unix seconds): the order's, else its first line's.
    pub time: Option<i64>,
    /// Amount: the order's, else the sum of its lines.
    pub amount: Option<f64>,
    /// Discount: the order's, else the sum of its lines.
    pub discount: Option<f64>,
    /// Source (of the file that created it, else of the buyer's identity).
    pub source: String,
    /// File that created it, if known.
    pub file: Option<String>,
}

/// One order line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineRecord {
    /// Row id.
    pub id: i64,
    /// Order key.
    pub order: String,
    /// Identity of the buyer.
    pub identity_id: i64,
    /// Product key.
    pub product: Option<String>,
    /// Product name.
    pub product_name: Option<String>,
    /// Quantity.
    pub quantity: f64,
    /// Amount.
    pub amount: f64,
    /// Discount.
    pub discount: f64,
    /// Time (Unix seconds).
    pub time: Option<i64>,
    /// Source.
    pub source: String,
    /// File.
    pub file: String,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRecord {
    /// Row id.
    pub id: i64,
    /// Identity.
    pub identity_id: i64,
    /// Event type.
    pub kind: String,
    /// Product key.
    pub product: Option<String>,
    /// Value (a rating).
    pub value: Option<f64>,
    /// Channel.
    pub channel: Option<String>,
    /// Time (Unix seconds).
    pub time: Option<i64>,
    /// Source.
    pub source: String,
    /// File.
    pub file: String,
}

/// One feedback row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackRecord {
    /// Row id (the id of its `feedback` timeline row).
    pub id: i64,
    /// Identity.
    pub identity_id: i64,
    /// survey | review | ticket | …
    pub kind: String,
    /// Score.
    pub score: Option<f64>,
    /// Channel.
    pub channel: Option<String>,
    /// Time (Unix seconds).
    pub time: Option<i64>,
    /// Source.
    pub source: String,
    /// File.
    pub file: String,
}

/// One campaign exposure or redemption.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContactRecord {
    /// Row id.
    pub id: i64,
    /// Identity.
    pub identity_id: i64,
    /// Campaign key.
    pub campaign: String,
    /// Campaign name.
    pub campaign_name: Option<String>,
    /// `exposure` or `redemption`.
    pub kind: String,
    /// Time (Unix seconds).
    pub time: Option<i64>,
    /// Source.
    pub source: String,
    /// File.
    pub file: String,
}

/// One attribute (its value is read through `customer_facts`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributeRecord {
    /// Identity it belongs to.
    pub identity_id: i64,
    /// Name.
    pub name: String,
    /// Source.
    pub source: String,
    /// Line of that source.
    pub line: i64,
}

/// The identities of a customer, as SQL (the id is bound as `?1`).
const MINE: &str = "SELECT id FROM identities WHERE customer_id = ?1";

impl SqliteStore {
    /// Every row of a customer with its provenance (see [`PersonRows`]).
    pub(crate) fn read_person_rows(&self, c: i64) -> Result<PersonRows> {
        self.with_raw(|db| db.read(|| person_rows(db, c)))
    }
}

fn person_rows(db: &RawDb<'_>, c: i64) -> Result<PersonRows> {
    let mut out = PersonRows::default();

    let mut st = db.prepare("SELECT created_at FROM customers WHERE id = ?1")?;
    st.bind_i64(1, c)?;
    if st.step()? {
        out.created_at = Some(st.text(0)?);
    }
    drop(st);

    let mut st =
        db.prepare("SELECT id, shared FROM identities WHERE customer_id = ?1 ORDER BY id")?;
    st.bind_i64(1, c)?;
    while st.step()? {
        out.shared.push((st.i64(0)?, st.i64(1)? != 0));
    }
    drop(st);

    let mut st = db.prepare(&format!(
        "SELECT o.id, o.namespace, o.key, o.identity_id,
                COALESCE(o.time, (SELECT MIN(time) FROM order_lines WHERE order_id = o.id)),
                COALESCE(o.amount, (SELECT SUM(amount) FROM order_lines WHERE order_id = o.id)),
                COALESCE(o.discount, (SELECT SUM(discount) FROM order_lines WHERE order_id = o.id)),
                COALESCE((SELECT s.name FROM files f JOIN sources s ON s.id = f.source_id WHERE f.id = o.file_id),
                         (SELECT s.name FROM identities i JOIN sources s ON s.id = i.source_id WHERE i.id = o.identity_id), ''),
                (SELECT f.path FROM files f WHERE f.id = o.file_id)
           FROM orders o WHERE o.identity_id IN ({MINE}) ORDER BY o.id"
    ))?;
    st.bind_i64(1, c)?;
    while st.step()? {
        out.orders.push(OrderRecord {
            id: st.i64(0)?,
            namespace: st.text(1)?,
            key: st.text(2)?,
            identity_id: st.i64(3)?,
            time: st.opt_i64(4)?,
            amount: st.opt_f64(5)?,
            discount: st.opt_f64(6)?,
            source: st.text(7)?,
            file: st.opt_text(8)?,
        });
    }
    drop(st);

    // the lines of the customer's orders (and any line the customer's
    // identities bought, should an order be keyed elsewhere)
    let mut st = db.prepare(&format!(
        "SELECT l.id, o.key, l.identity_id, p.key, p.name, l.quantity, l.amount, l.discount, l.time,
                COALESCE(s.name, ''), COALESCE(f.path, '')
           FROM order_lines l JOIN orders o ON o.id = l.order_id
           LEFT JOIN products p ON p.id = l.product_id
           LEFT JOIN sources s ON s.id = l.source_id
           LEFT JOIN files f ON f.id = l.file_id
          WHERE l.order_id IN (SELECT id FROM orders WHERE identity_id IN ({MINE}))
             OR l.identity_id IN ({MINE})
          ORDER BY l.id"
    ))?;
    st.bind_i64(1, c)?;
    while st.step()? {
        out.order_lines.push(LineRecord {
            id: st.i64(0)?,
            order: st.text(1)?,
            identity_id: st.i64(2)?,
            product: st.opt_text(3)?,
            product_name: st.opt_text(4)?,
            quantity: st.f64(5)?,
            amount: st.f64(6)?,
            discount: st.f64(7)?,
            time: st.opt_i64(8)?,
            source: st.text(9)?,
            file: st.text(10)?,
        });
    }
    drop(st);

    let mut st = db.prepare(&format!(
        "SELECT x.id, x.identity_id, x.kind, p.key, x.value, x.channel, x.time,
                COALESCE(s.name, ''), COALESCE(f.path, '')
           FROM events x
           LEFT JOIN products p ON p.id = x.product_id
           LEFT JOIN sources s ON s.id = x.source_id
           LEFT JOIN files f ON f.id = x.file_id
          WHERE x.identity_id IN ({MINE}) ORDER BY x.id"
    ))?;
    st.bind_i64(1, c)?;
    while st.step()? {
        out.events.push(EventRecord {
            id: st.i64(0)?,
            identity_id: st.i64(1)?,
            kind: st.text(2)?,
            product: st.opt_text(3)?,
            value: st.opt_f64(4)?,
            channel: st.opt_text(5)?,
            time: st.opt_i64(6)?,
            source: st.text(7)?,
            file: st.text(8)?,
        });
    }
    drop(st);

    let mut st = db.prepare(&format!(
        "SELECT x.id, x.identity_id, x.kind, x.score, x.channel, x.time,
                COALESCE(s.name, ''), COALESCE(f.path, '')
           FROM feedback x
           LEFT JOIN sources s ON s.id = x.source_id
           LEFT JOIN files f ON f.id = x.file_id
          WHERE x.identity_id IN ({MINE}) ORDER BY x.id"
    ))?;
    st.bind_i64(1, c)?;
    while st.step()? {
        out.feedback.push(FeedbackRecord {
            id: st.i64(0)?,
            identity_id: st.i64(1)?,
            kind: st.text(2)?,
            score: st.opt_f64(3)?,
            channel: st.opt_text(4)?,
            time: st.opt_i64(5)?,
            source: st.text(6)?,
            file: st.text(7)?,
        });
    }
    drop(st);

    let mut st = db.prepare(&format!(
        "SELECT x.id, x.identity_id, k.key, k.name, x.kind, x.time,
                COALESCE(s.name, ''), COALESCE(f.path, '')
           FROM campaign_contacts x JOIN campaigns k ON k.id = x.campaign_id
           LEFT JOIN sources s ON s.id = x.source_id
           LEFT JOIN files f ON f.id = x.file_id
          WHERE x.identity_id IN ({MINE}) ORDER BY x.id"
    ))?;
    st.bind_i64(1, c)?;
    while st.step()? {
        out.campaigns.push(ContactRecord {
            id: st.i64(0)?,
            identity_id: st.i64(1)?,
            campaign: st.text(2)?,
            campaign_name: st.opt_text(3)?,
            kind: st.text(4)?,
            time: st.opt_i64(5)?,
            source: st.text(6)?,
            file: st.text(7)?,
        });
    }
    drop(st);

    let mut st = db.prepare(&format!(
        "SELECT a.identity_id, a.name, COALESCE(s.name, ''), a.line
           FROM attributes a LEFT JOIN sources s ON s.id = a.source_id
          WHERE a.identity_id IN ({MINE}) ORDER BY a.name, s.name, a.identity_id"
    ))?;
    st.bind_i64(1, c)?;
    while st.step()? {
        out.attributes.push(AttributeRecord {
            identity_id: st.i64(0)?,
            name: st.text(1)?,
            source: st.text(2)?,
            line: st.i64(3)?,
        });
    }
    Ok(out)
}
