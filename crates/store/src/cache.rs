//! The snapshot cache file: a [`RawSnapshot`] in a columnar binary layout
//! beside the store (`infogap.db.snapshot`), read in tens of milliseconds.
//!
//! Why our own layout: the snapshot is a handful of fixed tables of 8-byte
//! columns; writing them as little-endian arrays makes reading a `memcpy`
//! and a checksum, with no schema machinery to build or version. Layout:
//! a magic and format version, then sections `tag u32 · length u64 · crc32
//! u32 · payload`, each holding at most [`CHUNK_ROWS`] rows of one table
//! (so reading never needs more than one chunk of extra memory), closed by
//! an end section that counts the sections. The header section names the
//! store (`store_id`) and its generation, so a cache of another store, of an
//! older generation, truncated or flipped is detected. The cache is derived
//! and disposable: the caller rebuilds it from the store on any error.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use infogap_core::dataset::{AttrValue, CampaignInfo, Dataset, ProductInfo};

use crate::crypto::{DataKey, Field};
use crate::snapshot::*;

const MAGIC: &[u8; 8] = b"IGSNAP\0\0";
/// Bumped whenever the layout changes; an older cache is rebuilt.
pub const FORMAT_VERSION: u32 = 3;
/// Rows per section.
pub const CHUNK_ROWS: usize = 1 << 16;

/// Why a cache file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// There is no cache file.
    #[error("no snapshot cache")]
    Missing,
    /// It could not be read or written.
    #[error("snapshot cache {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// It is damaged, truncated, of another format version or of another store.
    #[error("snapshot cache {path} is unusable: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The cache file of the store at `db`: `<db>.snapshot`.
pub fn cache_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".snapshot");
    PathBuf::from(s)
}

mod tag {
    pub const END: u32 = 0;
    pub const HEADER: u32 = 1;
    pub const IDENTITIES: u32 = 2;
    pub const ATTRIBUTES: u32 = 3;
    pub const PRODUCTS: u32 = 4;
    pub const CAMPAIGNS: u32 = 5;
    pub const ORDERS: u32 = 6;
    pub const LINES: u32 = 7;
    pub const EVENTS: u32 = 8;
    pub const FEEDBACK: u32 = 9;
    pub const CONTACTS: u32 = 10;
}

// ---------------------------------------------------------------- encoding

#[derive(Default)]
struct Enc {
    buf: Vec<u8>,
}

impl Enc {
    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
    }
    fn i64s(&mut self, it: impl Iterator<Item = i64>) {
        for v in it {
            self.i64(v);
        }
    }
    fn f64s(&mut self, it: impl Iterator<Item = f64>) {
        for v in it {
            self.f64(v);
        }
    }
    /// Integers as offsets from their minimum: 4 bytes each when they span
    /// less than 2^32 (ids of one chunk, times of a few years), else 8.
    fn packed(&mut self, it: impl Iterator<Item = i64> + Clone) {
        let (lo, hi) = it
            .clone()
            .fold((i64::MAX, i64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let lo = if lo > hi { 0 } else { lo };
        let narrow = hi
            .checked_sub(lo)
            .is_some_and(|span| span <= i64::from(u32::MAX));
        self.i64(lo);
        self.u8(if narrow { 4 } else { 8 });
        for v in it {
            if narrow {
                self.u32((v - lo) as u32);
            } else {
                self.i64(v);
            }
        }
    }

    /// A field of every row: presence bitmap, then the values (0 where absent).
    fn opt_i64s<T>(&mut self, rows: &[T], f: impl Fn(&T) -> Option<i64>) {
        self.bitmap(rows.iter().map(|r| f(r).is_some()), rows.len());
        self.i64s(rows.iter().map(|r| f(r).unwrap_or(0)));
    }
    fn opt_f64s<T>(&mut self, rows: &[T], f: impl Fn(&T) -> Option<f64>) {
        self.bitmap(rows.iter().map(|r| f(r).is_some()), rows.len());
        self.f64s(rows.iter().map(|r| f(r).unwrap_or(0.0)));
    }
    fn bitmap(&mut self, it: impl Iterator<Item = bool>, n: usize) {
        let start = self.buf.len();
        self.buf.resize(start + n.div_ceil(8), 0);
        for (i, b) in it.enumerate() {
            if b {
                self.buf[start + i / 8] |= 1 << (i % 8);
            }
        }
    }
    fn strs<'a>(&mut self, it: impl Iterator<Item = &'a str> + Clone) {
        for s in it.clone() {
            self.u32(s.len() as u32);
        }
        for s in it {
            self.buf.extend_from_slice(s.as_bytes());
        }
    }
    fn opt_strs<'r, T>(&mut self, rows: &'r [T], f: impl Fn(&'r T) -> Option<&'r str> + Copy) {
        self.bitmap(rows.iter().map(|r| f(r).is_some()), rows.len());
        self.strs(rows.iter().map(move |r| f(r).unwrap_or("")));
    }
}

/// A column of little-endian 8-byte values inside a section.
#[derive(Clone, Copy)]
struct Col<'a>(&'a [u8]);

impl Col<'_> {
    #[inline]
    fn bytes(&self, i: usize) -> [u8; 8] {
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.0[8 * i..8 * i + 8]);
        a
    }
    #[inline]
    fn i64(&self, i: usize) -> i64 {
        i64::from_le_bytes(self.bytes(i))
    }
    #[inline]
    fn f64(&self, i: usize) -> f64 {
        f64::from_le_bytes(self.bytes(i))
    }
}

/// A column written by `Enc::packed`, read in place.
#[derive(Clone, Copy)]
struct Packed<'a> {
    base: i64,
    narrow: bool,
    bytes: &'a [u8],
}

impl Packed<'_> {
    #[inline]
    fn i64(&self, i: usize) -> i64 {
        if self.narrow {
            let b = &self.bytes[4 * i..4 * i + 4];
            self.base
                .wrapping_add(i64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        } else {
            let b = &self.bytes[8 * i..8 * i + 8];
            i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        }
    }
}

/// A presence bitmap inside a section.
#[derive(Clone, Copy)]
struct Bits<'a>(&'a [u8]);

impl Bits<'_> {
    #[inline]
    fn get(&self, i: usize) -> bool {
        self.0[i / 8] & (1 << (i % 8)) != 0
    }
}

struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

type DResult<T> = std::result::Result<T, String>;

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> DResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or("section ends early")?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> DResult<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u8(&mut self) -> DResult<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> DResult<u32> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    fn u64(&mut self) -> DResult<u64> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    fn i64(&mut self) -> DResult<i64> {
        Ok(i64::from_le_bytes(self.arr()?))
    }
    fn f64(&mut self) -> DResult<f64> {
        Ok(f64::from_le_bytes(self.arr()?))
    }
    fn count(&mut self) -> DResult<usize> {
        let n = usize::try_from(self.u64()?).map_err(|_| "count too large")?;
        // every row takes at least one byte: a count beyond the section is damage
        if n > self.buf.len() {
            return Err("row count beyond the section".into());
        }
        Ok(n)
    }
    fn str(&mut self) -> DResult<String> {
        let n = self.count()?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "text is not UTF-8".into())
    }
    /// A column written by `Enc::packed`.
    fn packed(&mut self, n: usize) -> DResult<Packed<'a>> {
        let base = self.i64()?;
        let width = self.u8()?;
        let narrow = match width {
            4 => true,
            8 => false,
            w => return Err(format!("packed column of width {w}")),
        };
        let bytes = self.take(n.checked_mul(usize::from(width)).ok_or("too large")?)?;
        Ok(Packed {
            base,
            narrow,
            bytes,
        })
    }

    /// A column of `n` 8-byte values, read in place.
    fn col(&mut self, n: usize) -> DResult<Col<'a>> {
        Ok(Col(self.take(n.checked_mul(8).ok_or("too large")?)?))
    }
    fn bitmap(&mut self, n: usize) -> DResult<Bits<'a>> {
        Ok(Bits(self.take(n.div_ceil(8))?))
    }
    fn opt_col(&mut self, n: usize) -> DResult<(Bits<'a>, Col<'a>)> {
        Ok((self.bitmap(n)?, self.col(n)?))
    }
    fn i64s(&mut self, n: usize) -> DResult<Vec<i64>> {
        let c = self.col(n)?;
        Ok((0..n).map(|i| c.i64(i)).collect())
    }
    fn bools(&mut self, n: usize) -> DResult<Vec<bool>> {
        let b = self.bitmap(n)?;
        Ok((0..n).map(|i| b.get(i)).collect())
    }
    fn opt_i64s(&mut self, n: usize) -> DResult<Vec<Option<i64>>> {
        let (b, c) = self.opt_col(n)?;
        Ok((0..n).map(|i| b.get(i).then(|| c.i64(i))).collect())
    }
    fn opt_f64s(&mut self, n: usize) -> DResult<Vec<Option<f64>>> {
        let (b, c) = self.opt_col(n)?;
        Ok((0..n).map(|i| b.get(i).then(|| c.f64(i))).collect())
    }
    fn strs(&mut self, n: usize) -> DResult<Vec<String>> {
        let mut lens = Vec::with_capacity(n);
        for _ in 0..n {
            lens.push(self.u32()? as usize);
        }
        lens.into_iter()
            .map(|l| {
                std::str::from_utf8(self.take(l)?)
                    .map(str::to_owned)
                    .map_err(|_| "text is not UTF-8".to_string())
            })
            .collect()
    }
    fn opt_strs(&mut self, n: usize) -> DResult<Vec<Option<String>>> {
        let present = self.bitmap(n)?;
        let vals = self.strs(n)?;
        Ok(vals
            .into_iter()
            .enumerate()
            .map(|(i, v)| present.get(i).then_some(v))
            .collect())
    }
    fn done(&self) -> DResult<()> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err("section has trailing bytes".into())
        }
    }
}

// Each table encodes a chunk of rows column by column.

fn enc_identities(e: &mut Enc, rows: &[RawIdentity]) {
    e.u64(rows.len() as u64);
    e.i64s(rows.iter().map(|r| r.id));
    e.i64s(rows.iter().map(|r| r.customer_id));
    e.bitmap(rows.iter().map(|r| r.shared), rows.len());
    e.strs(rows.iter().map(|r| r.namespace.as_str()));
    e.strs(rows.iter().map(|r| r.value.as_str()));
}

fn dec_identities(d: &mut Dec) -> DResult<Vec<RawIdentity>> {
    let n = d.count()?;
    let (id, cust, shared) = (d.i64s(n)?, d.i64s(n)?, d.bools(n)?);
    let (ns, val) = (d.strs(n)?, d.strs(n)?);
    Ok(itertools_zip5(id, cust, shared, ns, val)
        .map(|(id, customer_id, shared, namespace, value)| RawIdentity {
            id,
            customer_id,
            shared,
            namespace,
            value,
        })
        .collect())
}

fn itertools_zip5<A, B, C, D, E>(
    a: Vec<A>,
    b: Vec<B>,
    c: Vec<C>,
    d: Vec<D>,
    e: Vec<E>,
) -> impl Iterator<Item = (A, B, C, D, E)> {
    a.into_iter()
        .zip(b)
        .zip(c)
        .zip(d)
        .zip(e)
        .map(|((((a, b), c), d), e)| (a, b, c, d, e))
}

fn enc_attr(e: &mut Enc, v: &AttrValue) {
    match v {
        AttrValue::Bool(b) => {
            e.u8(0);
            e.u8(u8::from(*b));
        }
        AttrValue::Int(i) => {
            e.u8(1);
            e.i64(*i);
        }
        AttrValue::Float(f) => {
            e.u8(2);
            e.f64(*f);
        }
        AttrValue::Text(s) => {
            e.u8(3);
            e.str(s);
        }
    }
}

fn dec_attr(d: &mut Dec) -> DResult<AttrValue> {
    Ok(match d.u8()? {
        0 => AttrValue::Bool(d.u8()? != 0),
        1 => AttrValue::Int(d.i64()?),
        2 => AttrValue::Float(d.f64()?),
        3 => AttrValue::Text(d.str()?),
        t => return Err(format!("unknown attribute type {t}")),
    })
}

fn enc_attributes(e: &mut Enc, rows: &[RawAttribute]) {
    e.u64(rows.len() as u64);
    for r in rows {
        e.i64(r.rowid);
        e.i64(r.identity_id);
        e.str(&r.name);
        enc_attr(e, &r.value);
    }
}

fn dec_attributes(d: &mut Dec) -> DResult<Vec<RawAttribute>> {
    let n = d.count()?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(RawAttribute {
            rowid: d.i64()?,
            identity_id: d.i64()?,
            name: d.str()?,
            value: dec_attr(d)?,
        });
    }
    Ok(out)
}

fn enc_products(e: &mut Enc, rows: &[ProductInfo]) {
    e.u64(rows.len() as u64);
    e.i64s(rows.iter().map(|r| r.id));
    e.strs(rows.iter().map(|r| r.key.as_str()));
    e.opt_strs(rows, |r| r.name.as_deref());
    e.opt_strs(rows, |r| r.category.as_deref());
    e.opt_f64s(rows, |r| r.price);
}

fn dec_products(d: &mut Dec) -> DResult<Vec<ProductInfo>> {
    let n = d.count()?;
    let (id, key) = (d.i64s(n)?, d.strs(n)?);
    let (name, cat, price) = (d.opt_strs(n)?, d.opt_strs(n)?, d.opt_f64s(n)?);
    Ok(itertools_zip5(id, key, name, cat, price)
        .map(|(id, key, name, category, price)| ProductInfo {
            id,
            key,
            name,
            category,
            price,
        })
        .collect())
}

fn enc_campaigns(e: &mut Enc, rows: &[CampaignInfo]) {
    e.u64(rows.len() as u64);
    e.i64s(rows.iter().map(|r| r.id));
    e.strs(rows.iter().map(|r| r.key.as_str()));
    e.opt_strs(rows, |r| r.name.as_deref());
    e.opt_strs(rows, |r| r.kind.as_deref());
    e.opt_i64s(rows, |r| r.start);
    e.opt_i64s(rows, |r| r.end);
}

fn dec_campaigns(d: &mut Dec) -> DResult<Vec<CampaignInfo>> {
    let n = d.count()?;
    let (id, key, name, kind) = (d.i64s(n)?, d.strs(n)?, d.opt_strs(n)?, d.opt_strs(n)?);
    let (start, end) = (d.opt_i64s(n)?, d.opt_i64s(n)?);
    Ok(
        itertools_zip5(id, key, name, kind, start.into_iter().zip(end).collect())
            .map(|(id, key, name, kind, (start, end))| CampaignInfo {
                id,
                key,
                name,
                kind,
                start,
                end,
            })
            .collect(),
    )
}

/// Orders with their final totals (what the models see), so a reader of
/// the data set need not sum the lines again.
fn enc_orders(e: &mut Enc, rows: &[(&RawOrder, OrderFinal)]) {
    e.u64(rows.len() as u64);
    e.i64s(rows.iter().map(|r| r.0.id));
    e.i64s(rows.iter().map(|r| r.0.identity_id));
    e.opt_i64s(rows, |r| r.0.time);
    e.opt_f64s(rows, |r| r.0.amount);
    e.opt_f64s(rows, |r| r.0.discount);
    e.opt_i64s(rows, |r| r.1.0);
    e.f64s(rows.iter().map(|r| r.1.1));
    e.f64s(rows.iter().map(|r| r.1.2));
}

fn dec_orders(d: &mut Dec) -> DResult<Vec<(RawOrder, OrderFinal)>> {
    let n = d.count()?;
    let (id, ident, time) = (d.col(n)?, d.col(n)?, d.opt_col(n)?);
    let (amount, discount) = (d.opt_col(n)?, d.opt_col(n)?);
    let (ftime, famount, fdiscount) = (d.opt_col(n)?, d.col(n)?, d.col(n)?);
    Ok((0..n)
        .map(|i| {
            (
                RawOrder {
                    id: id.i64(i),
                    identity_id: ident.i64(i),
                    time: time.0.get(i).then(|| time.1.i64(i)),
                    amount: amount.0.get(i).then(|| amount.1.f64(i)),
                    discount: discount.0.get(i).then(|| discount.1.f64(i)),
                },
                (
                    ftime.0.get(i).then(|| ftime.1.i64(i)),
                    famount.f64(i),
                    fdiscount.f64(i),
                ),
            )
        })
        .collect())
}

fn enc_lines(e: &mut Enc, rows: &[RawLine]) {
    e.u64(rows.len() as u64);
    e.packed(rows.iter().map(|r| r.id));
    e.packed(rows.iter().map(|r| r.order_id));
    e.packed(rows.iter().map(|r| r.identity_id));
    e.bitmap(rows.iter().map(|r| r.product_id.is_some()), rows.len());
    e.packed(rows.iter().map(|r| r.product_id.unwrap_or(0)));
    e.f64s(rows.iter().map(|r| r.quantity));
    e.f64s(rows.iter().map(|r| r.amount));
    e.f64s(rows.iter().map(|r| r.discount));
    e.bitmap(rows.iter().map(|r| r.time.is_some()), rows.len());
    e.packed(rows.iter().map(|r| r.time.unwrap_or(0)));
}

/// The columns of a chunk of order lines, read in place.
struct LineCols<'a> {
    n: usize,
    id: Packed<'a>,
    order: Packed<'a>,
    ident: Packed<'a>,
    product: (Bits<'a>, Packed<'a>),
    qty: Col<'a>,
    amount: Col<'a>,
    discount: Col<'a>,
    time: (Bits<'a>, Packed<'a>),
}

fn line_cols<'a>(d: &mut Dec<'a>) -> DResult<LineCols<'a>> {
    let n = d.count()?;
    Ok(LineCols {
        n,
        id: d.packed(n)?,
        order: d.packed(n)?,
        ident: d.packed(n)?,
        product: (d.bitmap(n)?, d.packed(n)?),
        qty: d.col(n)?,
        amount: d.col(n)?,
        discount: d.col(n)?,
        time: (d.bitmap(n)?, d.packed(n)?),
    })
}

impl LineCols<'_> {
    #[inline]
    fn row(&self, i: usize) -> RawLine {
        RawLine {
            id: self.id.i64(i),
            order_id: self.order.i64(i),
            identity_id: self.ident.i64(i),
            product_id: self.product.0.get(i).then(|| self.product.1.i64(i)),
            quantity: self.qty.f64(i),
            amount: self.amount.f64(i),
            discount: self.discount.f64(i),
            time: self.time.0.get(i).then(|| self.time.1.i64(i)),
        }
    }
}

fn dec_lines(d: &mut Dec) -> DResult<Vec<RawLine>> {
    let c = line_cols(d)?;
    Ok((0..c.n).map(|i| c.row(i)).collect())
}

fn enc_events(e: &mut Enc, rows: &[RawEvent]) {
    e.u64(rows.len() as u64);
    e.i64s(rows.iter().map(|r| r.id));
    e.i64s(rows.iter().map(|r| r.identity_id));
    e.strs(rows.iter().map(|r| r.kind.as_str()));
    e.opt_i64s(rows, |r| r.product_id);
    e.opt_f64s(rows, |r| r.value);
    e.opt_strs(rows, |r| r.channel.as_deref());
    e.opt_i64s(rows, |r| r.time);
}

fn dec_events(d: &mut Dec) -> DResult<Vec<RawEvent>> {
    let n = d.count()?;
    let (id, ident, kind) = (d.i64s(n)?, d.i64s(n)?, d.strs(n)?);
    let (product, value, channel, time) = (
        d.opt_i64s(n)?,
        d.opt_f64s(n)?,
        d.opt_strs(n)?,
        d.opt_i64s(n)?,
    );
    let mut out = Vec::with_capacity(n);
    for (i, ((kind, channel), (product_id, (value, time)))) in kind
        .into_iter()
        .zip(channel)
        .zip(product.into_iter().zip(value.into_iter().zip(time)))
        .enumerate()
    {
        out.push(RawEvent {
            id: id[i],
            identity_id: ident[i],
            kind,
            product_id,
            value,
            channel,
            time,
        });
    }
    Ok(out)
}

fn enc_feedback(e: &mut Enc, rows: &[RawFeedback]) {
    e.u64(rows.len() as u64);
    e.i64s(rows.iter().map(|r| r.id));
    e.i64s(rows.iter().map(|r| r.identity_id));
    e.strs(rows.iter().map(|r| r.kind.as_str()));
    e.opt_f64s(rows, |r| r.score);
    e.opt_strs(rows, |r| r.text.as_deref());
    e.opt_strs(rows, |r| r.channel.as_deref());
    e.opt_i64s(rows, |r| r.time);
}

fn dec_feedback(d: &mut Dec) -> DResult<Vec<RawFeedback>> {
    let n = d.count()?;
    let (id, ident, kind, score) = (d.i64s(n)?, d.i64s(n)?, d.strs(n)?, d.opt_f64s(n)?);
    let (text, channel, time) = (d.opt_strs(n)?, d.opt_strs(n)?, d.opt_i64s(n)?);
    let mut out = Vec::with_capacity(n);
    for (i, ((kind, score), (text, (channel, time)))) in kind
        .into_iter()
        .zip(score)
        .zip(text.into_iter().zip(channel.into_iter().zip(time)))
        .enumerate()
    {
        out.push(RawFeedback {
            id: id[i],
            identity_id: ident[i],
            kind,
            score,
            text,
            channel,
            time,
        });
    }
    Ok(out)
}

fn enc_contacts(e: &mut Enc, rows: &[RawContact]) {
    e.u64(rows.len() as u64);
    e.i64s(rows.iter().map(|r| r.id));
    e.i64s(rows.iter().map(|r| r.identity_id));
    e.i64s(rows.iter().map(|r| r.campaign_id));
    e.bitmap(rows.iter().map(|r| r.redemption), rows.len());
    e.opt_i64s(rows, |r| r.time);
}

fn dec_contacts(d: &mut Dec) -> DResult<Vec<RawContact>> {
    let n = d.count()?;
    let (id, ident, camp) = (d.i64s(n)?, d.i64s(n)?, d.i64s(n)?);
    let (red, time) = (d.bools(n)?, d.opt_i64s(n)?);
    Ok(itertools_zip5(id, ident, camp, red, time)
        .map(
            |(id, identity_id, campaign_id, redemption, time)| RawContact {
                id,
                identity_id,
                campaign_id,
                redemption,
                time,
            },
        )
        .collect())
}

// ---------------------------------------------------------------- file

struct SectionWriter<'k, W: Write> {
    out: W,
    sections: u64,
    bytes: u64,
    key: Option<&'k DataKey>,
}

/// Sections that hold personal values (identity values, attributes,
/// feedback text): sealed with the store's data key when it has one.
fn is_personal(tag: u32) -> bool {
    matches!(tag, tag::IDENTITIES | tag::ATTRIBUTES | tag::FEEDBACK)
}

impl<W: Write> SectionWriter<'_, W> {
    fn section(&mut self, tag: u32, payload: &[u8]) -> std::io::Result<()> {
        let sealed;
        let payload = match self.key {
            Some(k) if is_personal(tag) => {
                sealed = k.seal(Field::Cache, payload);
                &sealed[..]
            }
            _ => payload,
        };
        self.out.write_all(&tag.to_le_bytes())?;
        self.out.write_all(&(payload.len() as u64).to_le_bytes())?;
        self.out
            .write_all(&crc32fast::hash(payload).to_le_bytes())?;
        self.out.write_all(payload)?;
        self.sections += 1;
        self.bytes += 16 + payload.len() as u64;
        Ok(())
    }

    fn chunks<T>(
        &mut self,
        tag: u32,
        rows: &[T],
        file_id: Option<i64>,
        enc: fn(&mut Enc, &[T]),
    ) -> std::io::Result<()> {
        for chunk in rows.chunks(CHUNK_ROWS) {
            let mut e = Enc::default();
            if let Some(f) = file_id {
                e.i64(f);
            }
            enc(&mut e, chunk);
            self.section(tag, &e.buf)?;
        }
        Ok(())
    }
}

/// Writes `snap` to `path` atomically (a temporary file renamed over it),
/// returning the bytes written. Readers never see a half-written cache.
/// With a data key, the sections holding personal values are sealed with it.
pub fn write(path: &Path, snap: &RawSnapshot, key: Option<&DataKey>) -> Result<u64, CacheError> {
    let io = |source| CacheError::Io {
        path: path.display().to_string(),
        source,
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}-{nanos}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let result = (|| -> std::io::Result<u64> {
        let file = std::fs::File::create(&tmp)?;
        let mut w = SectionWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            sections: 0,
            bytes: 0,
            key,
        };
        w.out.write_all(MAGIC)?;
        w.out.write_all(&FORMAT_VERSION.to_le_bytes())?;
        let mut h = Enc::default();
        h.str(&snap.store_id);
        h.i64(snap.generation);
        // row counts of the fact tables, so a reader can size its vectors once
        let segs = snap.segments.values();
        h.u64(segs.clone().map(|s| s.lines.len() as u64).sum());
        h.u64(segs.clone().map(|s| s.events.len() as u64).sum());
        h.u64(segs.clone().map(|s| s.feedback.len() as u64).sum());
        h.u64(segs.map(|s| s.contacts.len() as u64).sum());
        for n in [
            snap.identities.len(),
            snap.attributes.len(),
            snap.products.len(),
            snap.campaigns.len(),
            snap.orders.len(),
        ] {
            h.u64(n as u64);
        }
        w.section(tag::HEADER, &h.buf)?;
        w.chunks(tag::IDENTITIES, &snap.identities, None, enc_identities)?;
        w.chunks(tag::ATTRIBUTES, &snap.attributes, None, enc_attributes)?;
        w.chunks(tag::PRODUCTS, &snap.products, None, enc_products)?;
        w.chunks(tag::CAMPAIGNS, &snap.campaigns, None, enc_campaigns)?;
        let orders: Vec<(&RawOrder, OrderFinal)> =
            snap.orders.iter().zip(snap.order_finals()).collect();
        w.chunks(tag::ORDERS, &orders, None, enc_orders)?;
        // table by table, files in the order of their first id: a reader
        // that wants facts in id order can append section after section
        fn by_first_id<'s, T>(
            snap: &'s RawSnapshot,
            rows: fn(&'s Segment) -> &'s [T],
            id: fn(&T) -> i64,
        ) -> Vec<(i64, &'s [T])> {
            let mut v: Vec<(i64, &[T])> = snap
                .segments
                .iter()
                .map(|(f, s)| (*f, rows(s)))
                .filter(|(_, r)| !r.is_empty())
                .collect();
            v.sort_by_key(|(_, r)| id(&r[0]));
            v
        }
        for (file, rows) in by_first_id(snap, |s| &s.lines, |r| r.id) {
            w.chunks(tag::LINES, rows, Some(file), enc_lines)?;
        }
        for (file, rows) in by_first_id(snap, |s| &s.events, |r| r.id) {
            w.chunks(tag::EVENTS, rows, Some(file), enc_events)?;
        }
        for (file, rows) in by_first_id(snap, |s| &s.feedback, |r| r.id) {
            w.chunks(tag::FEEDBACK, rows, Some(file), enc_feedback)?;
        }
        for (file, rows) in by_first_id(snap, |s| &s.contacts, |r| r.id) {
            w.chunks(tag::CONTACTS, rows, Some(file), enc_contacts)?;
        }
        let n = w.sections;
        w.section(tag::END, &n.to_le_bytes())?;
        let bytes = w.bytes + 12;
        let file = w.out.into_inner().map_err(|e| e.into_error())?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        Ok(bytes)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    } else {
        remove_stale_temporaries(path);
    }
    result.map_err(io)
}

/// Removes temporaries of this cache left by writers that were killed
/// (older than ten minutes: a live writer renames its own much sooner).
fn remove_stale_temporaries(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut prefix = name.to_os_string();
    prefix.push(".tmp-");
    let prefix = prefix.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let stale = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(600));
        if stale && e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// One section as read, its checksum not yet verified (so batches of
/// sections can be verified in parallel).
struct Section {
    index: u64,
    tag: u32,
    crc: u32,
    payload: Vec<u8>,
}

impl Section {
    fn verify(&self) -> DResult<()> {
        if crc32fast::hash(&self.payload) == self.crc {
            Ok(())
        } else {
            Err("fails its checksum".into())
        }
    }

    fn dec(&self) -> Dec<'_> {
        Dec {
            buf: &self.payload,
            pos: 0,
        }
    }
}

/// Reads the sections of a cache file in order, checking the magic, the
/// version, that the header comes first and that the end section's count
/// matches. Checksums are left to [`Section::verify`].
struct Sections<'k> {
    key: Option<&'k DataKey>,
    path: String,
    file_len: u64,
    r: BufReader<std::fs::File>,
    next: u64,
    done: bool,
}

impl<'k> Sections<'k> {
    fn open(path: &Path, key: Option<&'k DataKey>) -> Result<Sections<'k>, CacheError> {
        let shown = path.display().to_string();
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CacheError::Missing);
            }
            Err(source) => {
                return Err(CacheError::Io {
                    path: shown,
                    source,
                });
            }
        };
        let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut s = Sections {
            key,
            path: shown,
            file_len,
            r: BufReader::with_capacity(1 << 16, file),
            next: 0,
            done: false,
        };
        let mut head = [0u8; 12];
        s.r.read_exact(&mut head)
            .map_err(|_| s.invalid("too short to be a snapshot cache".into()))?;
        if &head[..8] != MAGIC {
            return Err(s.invalid("not a snapshot cache (wrong magic)".into()));
        }
        let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        if version != FORMAT_VERSION {
            return Err(s.invalid(format!(
                "format version {version}, this infogap reads version {FORMAT_VERSION}"
            )));
        }
        Ok(s)
    }

    fn invalid(&self, reason: String) -> CacheError {
        CacheError::Invalid {
            path: self.path.clone(),
            reason,
        }
    }

    /// The next section, `None` after a valid end section (and nothing after it).
    fn next_section(&mut self) -> Result<Option<Section>, CacheError> {
        self.next_section_into(Vec::new())
    }

    /// [`Sections::next_section`] reading into a recycled buffer: fresh
    /// multi-megabyte buffers cost a page fault per 4 KiB.
    fn next_section_into(&mut self, mut payload: Vec<u8>) -> Result<Option<Section>, CacheError> {
        if self.done {
            return Ok(None);
        }
        let index = self.next;
        let mut sh = [0u8; 16];
        self.r
            .read_exact(&mut sh)
            .map_err(|_| self.invalid("truncated (no end section)".into()))?;
        let tag = u32::from_le_bytes([sh[0], sh[1], sh[2], sh[3]]);
        let len = u64::from_le_bytes([sh[4], sh[5], sh[6], sh[7], sh[8], sh[9], sh[10], sh[11]]);
        let crc = u32::from_le_bytes([sh[12], sh[13], sh[14], sh[15]]);
        let len = usize::try_from(len)
            .ok()
            .filter(|l| (*l as u64) <= self.file_len)
            .ok_or_else(|| self.invalid(format!("section {index} claims {len} bytes")))?;
        payload.clear();
        payload.resize(len, 0);
        self.r
            .read_exact(&mut payload)
            .map_err(|_| self.invalid(format!("section {index} is truncated")))?;
        let mut sec = Section {
            index,
            tag,
            crc,
            payload,
        };
        if let Some(k) = self.key
            && is_personal(tag)
        {
            // a cache sealed with another key (or none) is unusable: rebuilt
            sec.verify()
                .map_err(|e| self.invalid(format!("section {index} {e}")))?;
            sec.payload = k.open(Field::Cache, &sec.payload).map_err(|_| {
                self.invalid(format!(
                    "section {index} is not sealed with this store's key"
                ))
            })?;
            sec.crc = crc32fast::hash(&sec.payload);
        }
        if (index == 0) != (tag == tag::HEADER) {
            return Err(self.invalid("the header section is not first".into()));
        }
        if tag == tag::END {
            sec.verify()
                .map_err(|e| self.invalid(format!("end section {e}")))?;
            let n = sec.dec().u64().map_err(|e| self.invalid(e))?;
            if n != index || sec.payload.len() != 8 {
                return Err(self.invalid("section count does not match".into()));
            }
            let mut extra = [0u8; 1];
            if self
                .r
                .read(&mut extra)
                .map_err(|_| self.invalid("unreadable tail".into()))?
                != 0
            {
                return Err(self.invalid("bytes after the end section".into()));
            }
            self.done = true;
            return Ok(None);
        }
        self.next += 1;
        Ok(Some(sec))
    }

    /// Verifies a section and decodes it with `f`, which must use it whole.
    fn decode<T>(
        &self,
        sec: &Section,
        f: impl FnOnce(&mut Dec<'_>) -> DResult<T>,
    ) -> Result<T, CacheError> {
        decode(sec, f).map_err(|e| self.invalid(e))
    }
}

fn decode<T>(sec: &Section, f: impl FnOnce(&mut Dec<'_>) -> DResult<T>) -> DResult<T> {
    let run = || {
        sec.verify()?;
        let mut d = sec.dec();
        let v = f(&mut d)?;
        d.done()?;
        Ok(v)
    };
    run().map_err(|e: String| format!("section {}: {e}", sec.index))
}

struct Header {
    store_id: String,
    generation: i64,
    /// Rows of lines, events, feedback, contacts, identities, attributes,
    /// products, campaigns, orders.
    rows: [u64; 9],
}

fn header(d: &mut Dec<'_>) -> DResult<Header> {
    let store_id = d.str()?;
    let generation = d.i64()?;
    let mut rows = [0u64; 9];
    for r in &mut rows {
        *r = d.u64()?;
    }
    Ok(Header {
        store_id,
        generation,
        rows,
    })
}

/// Reads the cache at `path`. Any damage is an [`CacheError::Invalid`] that
/// says what was wrong; the caller decides whether the store id and
/// generation fit.
pub fn read(path: &Path, key: Option<&DataKey>) -> Result<RawSnapshot, CacheError> {
    let mut snap = RawSnapshot::default();
    let mut secs = Sections::open(path, key)?;
    while let Some(sec) = secs.next_section()? {
        secs.decode(&sec, |d| {
            match sec.tag {
                tag::HEADER => {
                    let h = header(d)?;
                    (snap.store_id, snap.generation) = (h.store_id, h.generation);
                }
                tag::IDENTITIES => snap.identities.extend(dec_identities(d)?),
                tag::ATTRIBUTES => snap.attributes.extend(dec_attributes(d)?),
                tag::PRODUCTS => snap.products.extend(dec_products(d)?),
                tag::CAMPAIGNS => snap.campaigns.extend(dec_campaigns(d)?),
                tag::ORDERS => snap.orders.extend(dec_orders(d)?.into_iter().map(|o| o.0)),
                tag::LINES | tag::EVENTS | tag::FEEDBACK | tag::CONTACTS => {
                    let file = d.i64()?;
                    let seg = snap.segments.entry(file).or_default();
                    match sec.tag {
                        tag::LINES => seg.lines.extend(dec_lines(d)?),
                        tag::EVENTS => seg.events.extend(dec_events(d)?),
                        tag::FEEDBACK => seg.feedback.extend(dec_feedback(d)?),
                        _ => seg.contacts.extend(dec_contacts(d)?),
                    }
                }
                t => return Err(format!("unknown section type {t}")),
            }
            Ok(())
        })?;
    }
    Ok(snap)
}

/// The store id and generation a cache file was written for, reading only
/// its header (and checking the header's checksum).
pub fn read_header(path: &Path) -> Result<(String, i64), CacheError> {
    let mut secs = Sections::open(path, None)?;
    let sec = secs
        .next_section()?
        .ok_or_else(|| secs.invalid("no header".into()))?;
    let h = secs.decode(&sec, header)?;
    Ok((h.store_id, h.generation))
}

/// What [`read_dataset`] found.
#[derive(Debug)]
pub enum Direct {
    /// The cache is of the store and generation asked for: its data set.
    Dataset(Box<Dataset>),
    /// The cache is of another store or generation (found in its header).
    Stale {
        /// The store it belongs to.
        store_id: String,
        /// Its generation.
        generation: i64,
    },
    /// Facts of several files interleave in id order: take the raw path.
    Interleaved,
}

/// Bytes of order-line sections decoded together, in parallel.
const BATCH_BYTES: usize = 8 << 20;

/// Reads the cache straight into a [`Dataset`] when it is of store
/// `store_id` at `generation`: facts are resolved to customers as they are
/// decoded, with no raw copy in between, and order lines (nearly all of the
/// bytes) are verified and decoded in parallel batches into their final
/// place. Same result as [`read`] followed by [`RawSnapshot::dataset`].
pub fn read_dataset(
    path: &Path,
    store_id: &str,
    generation: i64,
    key: Option<&DataKey>,
) -> Result<Direct, CacheError> {
    let mut secs = Sections::open(path, key)?;
    let mut identities = Vec::new();
    let mut attributes = Vec::new();
    let mut orders: Vec<(RawOrder, OrderFinal)> = Vec::new();
    let mut ds = Dataset::default();
    let mut owners: Option<Owners> = None;
    let mut expect_lines = 0usize;
    let mut last_id = [i64::MIN; 4];
    let mut batch: Vec<Section> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut spare: Vec<Vec<u8>> = Vec::new();

    // decodes a batch of order-line sections into ds.lines[filled..]
    let flush = |batch: &mut Vec<Section>,
                 spare: &mut Vec<Vec<u8>>,
                 ds: &mut Dataset,
                 owner: &Owners,
                 last: &mut i64|
     -> Result<bool, CacheError> {
        if batch.is_empty() {
            return Ok(true);
        }
        // row counts and id ranges first (cheap), to place each section
        let mut spans = Vec::with_capacity(batch.len());
        for sec in batch.iter() {
            let (n, first, lastid) = decode_partial(sec).map_err(|e| secs_invalid(path, e))?;
            if n > 0 {
                if first <= *last {
                    return Ok(false);
                }
                *last = lastid;
            }
            spans.push(n);
        }
        crate::raw::extend_parallel(&mut ds.lines, &spans, |i, slots| {
            decode(&batch[i], |d| {
                let _file = d.i64()?;
                let c = line_cols(d)?;
                if c.n != slots.len() {
                    return Err("row count changed".into());
                }
                for (i, slot) in slots.iter_mut().enumerate() {
                    slot.write(owner.line(&c.row(i)).map_err(|e| e.to_string())?);
                }
                Ok(())
            })
        })
        .map_err(|e| secs_invalid(path, e))?;
        spare.extend(batch.drain(..).map(|s| s.payload));
        Ok(true)
    };

    while let Some(sec) = secs.next_section_into(spare.pop().unwrap_or_default())? {
        if sec.tag == tag::HEADER {
            let h = secs.decode(&sec, header)?;
            if h.store_id != store_id || h.generation != generation {
                return Ok(Direct::Stale {
                    store_id: h.store_id,
                    generation: h.generation,
                });
            }
            // a row takes at least 8 bytes of the file: a count beyond that
            // is damage, and must not turn into a huge allocation
            let max = usize::try_from(secs.file_len / 8).unwrap_or(usize::MAX);
            let cap = |n: u64| usize::try_from(n).unwrap_or(0).min(max);
            expect_lines = cap(h.rows[0]);
            ds.lines.reserve_exact(expect_lines);
            crate::raw::advise_huge_pages(&mut ds.lines);
            ds.events.reserve_exact(cap(h.rows[1]));
            ds.feedback.reserve_exact(cap(h.rows[2]));
            identities.reserve_exact(cap(h.rows[4]));
            attributes.reserve_exact(cap(h.rows[5]));
            ds.products.reserve_exact(cap(h.rows[6]));
            ds.campaigns.reserve_exact(cap(h.rows[7]));
            orders.reserve_exact(cap(h.rows[8]));
            continue;
        }
        let is_fact = matches!(
            sec.tag,
            tag::LINES | tag::EVENTS | tag::FEEDBACK | tag::CONTACTS
        );
        if is_fact && owners.is_none() {
            let (customers, o) = resolve_customers(&identities, &attributes)
                .map_err(|e| secs.invalid(e.to_string()))?;
            ds.customers = customers;
            owners = Some(o);
        }
        if sec.tag == tag::LINES {
            batch_bytes += sec.payload.len();
            batch.push(sec);
            if batch_bytes >= BATCH_BYTES {
                let Some(owner) = owners.as_ref() else {
                    return Err(secs.invalid("no identities".into()));
                };
                if !flush(&mut batch, &mut spare, &mut ds, owner, &mut last_id[0])? {
                    return Ok(Direct::Interleaved);
                }
                batch_bytes = 0;
            }
            continue;
        }
        if let Some(owner) = owners.as_ref()
            && !flush(&mut batch, &mut spare, &mut ds, owner, &mut last_id[0])?
        {
            return Ok(Direct::Interleaved);
        }
        batch_bytes = 0;
        let mut interleaved = false;
        secs.decode(&sec, |d| {
            let mut ordered = |slot: usize, first: Option<i64>, last: Option<i64>| {
                if let (Some(f), Some(l)) = (first, last) {
                    if f <= last_id[slot] {
                        interleaved = true;
                    }
                    last_id[slot] = l;
                }
            };
            let e = |e: crate::StoreError| e.to_string();
            match sec.tag {
                tag::IDENTITIES => identities.extend(dec_identities(d)?),
                tag::ATTRIBUTES => attributes.extend(dec_attributes(d)?),
                tag::PRODUCTS => ds.products.extend(dec_products(d)?),
                tag::CAMPAIGNS => ds.campaigns.extend(dec_campaigns(d)?),
                tag::ORDERS => orders.extend(dec_orders(d)?),
                tag::EVENTS | tag::FEEDBACK | tag::CONTACTS => {
                    let Some(owner) = owners.as_ref() else {
                        return Err("no identities".into());
                    };
                    let _file = d.i64()?;
                    match sec.tag {
                        tag::EVENTS => {
                            let rows = dec_events(d)?;
                            ordered(1, rows.first().map(|r| r.id), rows.last().map(|r| r.id));
                            for r in &rows {
                                ds.events.push(owner.event(r).map_err(e)?);
                            }
                        }
                        tag::FEEDBACK => {
                            let rows = dec_feedback(d)?;
                            ordered(2, rows.first().map(|r| r.id), rows.last().map(|r| r.id));
                            for r in &rows {
                                ds.feedback.push(owner.feedback(r).map_err(e)?);
                            }
                        }
                        _ => {
                            let rows = dec_contacts(d)?;
                            ordered(3, rows.first().map(|r| r.id), rows.last().map(|r| r.id));
                            for r in &rows {
                                owner.contact(r, &mut ds).map_err(e)?;
                            }
                        }
                    }
                }
                t => return Err(format!("unknown section type {t}")),
            }
            Ok(())
        })?;
        if interleaved {
            return Ok(Direct::Interleaved);
        }
        spare.push(sec.payload);
    }
    let owner = match owners {
        Some(o) => o,
        None => {
            let (customers, o) = resolve_customers(&identities, &attributes)
                .map_err(|e| secs.invalid(e.to_string()))?;
            ds.customers = customers;
            o
        }
    };
    if !flush(&mut batch, &mut spare, &mut ds, &owner, &mut last_id[0])? {
        return Ok(Direct::Interleaved);
    }
    if ds.lines.len() != expect_lines {
        return Err(secs.invalid(format!(
            "holds {} order lines, its header says {expect_lines}",
            ds.lines.len()
        )));
    }
    ds.orders = orders
        .iter()
        .map(|(o, f)| owner.order(o, *f))
        .collect::<crate::Result<_>>()
        .map_err(|e| secs.invalid(e.to_string()))?;
    Ok(Direct::Dataset(Box::new(ds)))
}

fn secs_invalid(path: &Path, reason: String) -> CacheError {
    CacheError::Invalid {
        path: path.display().to_string(),
        reason,
    }
}

/// Row count and first and last id of an order-line section, without
/// decoding it (the checksum is verified with the full decode).
fn decode_partial(sec: &Section) -> DResult<(usize, i64, i64)> {
    let mut d = sec.dec();
    let _file = d.i64()?;
    let n = d.count()?;
    let ids = d.packed(n)?;
    if n == 0 {
        return Ok((0, 0, 0));
    }
    Ok((n, ids.i64(0), ids.i64(n - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> RawSnapshot {
        let mut s = RawSnapshot {
            store_id: "abc".into(),
            generation: 7,
            ..RawSnapshot::default()
        };
        s.identities.push(RawIdentity {
            id: 1,
            customer_id: 1,
            shared: false,
            namespace: "crm".into(),
            value: "C1".into(),
        });
        s.identities.push(RawIdentity {
            id: 2,
            customer_id: 1,
            shared: true,
            namespace: "email".into(),
            value: "家@x.com".into(),
        });
        for (rowid, v) in [
            AttrValue::Bool(true),
            AttrValue::Int(-3),
            AttrValue::Float(0.5),
            AttrValue::Text("高".into()),
        ]
        .into_iter()
        .enumerate()
        {
            s.attributes.push(RawAttribute {
                rowid: rowid as i64,
                identity_id: 1,
                name: format!("a{rowid}"),
                value: v,
            });
        }
        s.products.push(ProductInfo {
            id: 1,
            key: "P1".into(),
            name: None,
            category: Some("c".into()),
            price: Some(2.5),
        });
        s.campaigns.push(CampaignInfo {
            id: 1,
            key: "K".into(),
            name: Some("n".into()),
            kind: None,
            start: Some(-5),
            end: None,
        });
        s.orders.push(RawOrder {
            id: 1,
            identity_id: 1,
            time: None,
            amount: Some(1.25),
            discount: None,
        });
        let seg = s.segments.entry(4).or_default();
        seg.lines.push(RawLine {
            id: 1,
            order_id: 1,
            identity_id: 1,
            product_id: None,
            quantity: 2.0,
            amount: 1.25,
            discount: 0.0,
            time: Some(99),
        });
        seg.events.push(RawEvent {
            id: 1,
            identity_id: 2,
            kind: "view".into(),
            product_id: Some(1),
            value: None,
            channel: Some("web".into()),
            time: None,
        });
        seg.feedback.push(RawFeedback {
            id: 1,
            identity_id: 1,
            kind: "ticket".into(),
            score: Some(3.0),
            text: Some("慢".into()),
            channel: None,
            time: Some(1),
        });
        seg.contacts.push(RawContact {
            id: 1,
            identity_id: 1,
            campaign_id: 1,
            redemption: true,
            time: None,
        });
        s
    }

    #[test]
    fn a_killed_writers_temporary_is_cleared_and_a_live_ones_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.snapshot");
        let old = dir.path().join("x.snapshot.tmp-1-2");
        let fresh = dir.path().join("x.snapshot.tmp-3-4");
        let other = dir.path().join("y.snapshot.tmp-5-6");
        for f in [&old, &fresh, &other] {
            std::fs::write(f, b"partial").expect("write");
        }
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for f in [&old, &other] {
            std::fs::File::options()
                .write(true)
                .open(f)
                .and_then(|h| h.set_modified(hour_ago))
                .expect("age it");
        }
        write(&p, &sample(), None).expect("write");
        assert!(!old.exists(), "a killed writer's temporary stays behind");
        assert!(
            fresh.exists() && other.exists(),
            "only this cache's old temporaries go"
        );
    }

    #[test]
    fn packed_columns_keep_every_value_narrow_or_wide() {
        for vals in [
            vec![],
            vec![7],
            vec![-5, 0, 5],
            vec![1_600_000_000, 1_700_000_000],
            vec![0, i64::from(u32::MAX)],
            vec![0, i64::from(u32::MAX) + 1],
            vec![i64::MIN, 0, i64::MAX],
        ] {
            let mut e = Enc::default();
            e.packed(vals.iter().copied());
            let mut d = Dec {
                buf: &e.buf,
                pos: 0,
            };
            let p = d.packed(vals.len()).expect("decode");
            d.done().expect("all read");
            let got: Vec<i64> = (0..vals.len()).map(|i| p.i64(i)).collect();
            assert_eq!(got, vals);
        }
    }

    #[test]
    fn round_trips_every_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.snapshot");
        let s = sample();
        write(&p, &s, None).expect("write");
        assert_eq!(read(&p, None).expect("read"), s);
    }

    #[test]
    fn the_direct_read_gives_the_assembled_data_set() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.snapshot");
        let mut s = sample();
        // a second file whose lines come first in id order, and enough rows
        // to span several sections
        let seg = s.segments.entry(2).or_default();
        for i in 0..(CHUNK_ROWS as i64 + 5) {
            seg.lines.push(RawLine {
                id: -1 - i,
                order_id: 1,
                identity_id: 2,
                product_id: (i % 3 == 0).then_some(i),
                quantity: 1.0,
                amount: 0.1 * i as f64,
                discount: 0.0,
                time: (i % 5 != 0).then_some(i),
            });
        }
        seg.lines.reverse();
        s.orders[0].amount = None;
        write(&p, &s, None).expect("write");
        let want = s.dataset().expect("assemble");
        match read_dataset(&p, "abc", 7, None).expect("read") {
            Direct::Dataset(ds) => assert_eq!(*ds, want),
            other => panic!("expected a data set, got {other:?}"),
        }
        assert!(matches!(
            read_dataset(&p, "abc", 8, None).expect("read"),
            Direct::Stale { generation: 7, .. }
        ));
        assert!(matches!(
            read_dataset(&p, "other", 7, None).expect("read"),
            Direct::Stale { .. }
        ));
        // interleaved files: the direct read declines, the raw path copes
        s.segments.entry(2).or_default().lines[0].id = 10;
        s.segments.entry(2).or_default().lines.rotate_left(1);
        write(&p, &s, None).expect("write");
        assert!(matches!(
            read_dataset(&p, "abc", 7, None).expect("read"),
            Direct::Interleaved
        ));
        assert_eq!(read(&p, None).expect("raw"), s);
    }

    #[test]
    fn every_flipped_or_cut_byte_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.snapshot");
        write(&p, &sample(), None).expect("write");
        let good = std::fs::read(&p).expect("bytes");
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            std::fs::write(&p, &bad).expect("write bad");
            assert!(
                matches!(read(&p, None), Err(CacheError::Invalid { .. })),
                "flipping byte {i} went unnoticed"
            );
            assert!(
                !matches!(read_dataset(&p, "abc", 7, None), Ok(Direct::Dataset(_))),
                "flipping byte {i} went unnoticed by the direct read"
            );
        }
        for cut in [0, 5, 12, 30, good.len() - 1] {
            std::fs::write(&p, &good[..cut]).expect("write cut");
            assert!(
                matches!(read(&p, None), Err(CacheError::Invalid { .. })),
                "cutting at {cut} went unnoticed"
            );
        }
        let mut longer = good.clone();
        longer.push(0);
        std::fs::write(&p, &longer).expect("write long");
        assert!(matches!(read(&p, None), Err(CacheError::Invalid { .. })));
        std::fs::remove_file(&p).expect("rm");
        assert!(matches!(read(&p, None), Err(CacheError::Missing)));
    }
}
