//! Interaction data for recommenders: compact sparse matrices and id maps.
//!
//! Why here: every recommender (popularity, kNN, iALS, EASE, and the
//! rating-prediction models in [`super::rating`]) consumes the same
//! user × item data. External ids (strings from a file or the store) are mapped
//! once to dense `u32` indices by an [`IdMap`]; the interactions are then held
//! twice, by user (CSR) and by item (CSC, stored as the CSR of the transpose),
//! with `u32` indices and `f32` values. That is 8 bytes per stored interaction
//! and direction, so 50 M interactions fit in under a gigabyte.
//!
//! [`InteractionsBuilder`] builds [`Interactions`] from explicit ratings
//! (duplicates keep the last value) or from implicit signals (purchases, views,
//! carts …) with a configurable weight per signal kind and an optional
//! exponential time decay (duplicates are summed).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// A two-way map between external string ids and dense `u32` indices
/// (`0..len`, in order of first appearance).
///
/// Serializes as the plain list of external ids; the reverse index is rebuilt
/// on load.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<String>", into = "Vec<String>")]
pub struct IdMap {
    ids: Vec<String>,
    index: HashMap<String, u32>,
}

impl From<Vec<String>> for IdMap {
    fn from(ids: Vec<String>) -> Self {
        let mut map = IdMap::default();
        for id in ids {
            map.get_or_insert(&id);
        }
        map
    }
}

impl From<IdMap> for Vec<String> {
    fn from(map: IdMap) -> Self {
        map.ids
    }
}

impl IdMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The dense index of `id`, inserting it (as the next index) when new.
    pub fn get_or_insert(&mut self, id: &str) -> u32 {
        if let Some(&i) = self.index.get(id) {
            return i;
        }
        let i = self.ids.len() as u32;
        self.ids.push(id.to_owned());
        self.index.insert(id.to_owned(), i);
        i
    }

    /// The dense index of `id`, if known.
    pub fn get(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// The external id of dense index `i`, if in range.
    pub fn id(&self, i: u32) -> Option<&str> {
        self.ids.get(i as usize).map(String::as_str)
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The external ids in index order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// Forgets `id` (a person's erasure): its index stays taken, so every
    /// other id keeps its index (and the rows of matrices built with this map
    /// stay aligned), but `id` no longer maps to it nor it to `id`. The slot's
    /// external id becomes the placeholder [`IdMap::erased_id`], which no real
    /// id matches (it starts with a NUL). Returns the index `id` had, `None`
    /// when it was not known.
    ///
    /// The placeholder is indexed like any id, so a map serialized and read
    /// back equals the one it came from.
    pub fn forget(&mut self, id: &str) -> Option<u32> {
        let i = self.index.remove(id)?;
        let placeholder = Self::erased_id(i);
        self.ids[i as usize].clone_from(&placeholder);
        self.index.insert(placeholder, i);
        Some(i)
    }

    /// The placeholder external id of forgotten index `i`: `"\u{0}erased:<i>"`.
    pub fn erased_id(i: u32) -> String {
        format!("\u{0}erased:{i}")
    }

    /// Whether index `i` was forgotten (see [`IdMap::forget`]).
    pub fn is_erased(&self, i: u32) -> bool {
        self.id(i).is_some_and(|s| s.starts_with("\u{0}erased:"))
    }
}

/// A compressed sparse row matrix with `u32` column indices and `f32` values.
/// Column indices are sorted within each row and unique.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Csr {
    /// Number of rows.
    pub n_rows: usize,
    /// Number of columns.
    pub n_cols: usize,
    /// Row start offsets into `indices`/`values` (`n_rows + 1` entries).
    #[serde(with = "crate::packed")]
    pub indptr: Vec<usize>,
    /// Column index of each stored entry.
    #[serde(with = "crate::packed")]
    pub indices: Vec<u32>,
    /// Value of each stored entry.
    #[serde(with = "crate::packed")]
    pub values: Vec<f32>,
}

impl Csr {
    /// Builds from `(row, col, value)` triples; duplicates are combined with
    /// `combine(old, new)`.
    pub fn from_triples(
        n_rows: usize,
        n_cols: usize,
        triples: &[(u32, u32, f32)],
        combine: impl Fn(f32, f32) -> f32,
    ) -> Result<Self, ModelError> {
        let mut counts = vec![0usize; n_rows + 1];
        for &(r, c, v) in triples {
            if r as usize >= n_rows || c as usize >= n_cols {
                return Err(ModelError::InvalidInput(format!(
                    "entry ({r}, {c}) outside a {n_rows} x {n_cols} matrix"
                )));
            }
            if !v.is_finite() {
                return Err(ModelError::InvalidInput(format!(
                    "non-finite value at ({r}, {c})"
                )));
            }
            counts[r as usize + 1] += 1;
        }
        for i in 0..n_rows {
            counts[i + 1] += counts[i];
        }
        let nnz = counts[n_rows];
        let mut next = counts.clone();
        // Stable placement keeps input order within a row, so `combine` sees
        // duplicates in input order ("last wins" is meaningful).
        let mut cols = vec![0u32; nnz];
        let mut vals = vec![0f32; nnz];
        for &(r, c, v) in triples {
            let p = next[r as usize];
            cols[p] = c;
            vals[p] = v;
            next[r as usize] += 1;
        }
        let mut indptr = Vec::with_capacity(n_rows + 1);
        let mut indices = Vec::with_capacity(nnz);
        let mut values = Vec::with_capacity(nnz);
        indptr.push(0);
        let mut row: Vec<(u32, f32)> = Vec::new();
        for r in 0..n_rows {
            row.clear();
            row.extend((counts[r]..counts[r + 1]).map(|p| (cols[p], vals[p])));
            row.sort_by_key(|&(c, _)| c); // stable: input order kept among equal columns
            let mut k = 0;
            while k < row.len() {
                let (c, mut v) = row[k];
                let mut j = k + 1;
                while j < row.len() && row[j].0 == c {
                    v = combine(v, row[j].1);
                    j += 1;
                }
                indices.push(c);
                values.push(v);
                k = j;
            }
            indptr.push(indices.len());
        }
        Ok(Csr {
            n_rows,
            n_cols,
            indptr,
            indices,
            values,
        })
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Removes every stored entry of row `r` (the row stays, empty); returns
    /// how many there were (0 also for a row out of range).
    pub fn clear_row(&mut self, r: usize) -> usize {
        if r >= self.n_rows {
            return 0;
        }
        let (a, b) = (self.indptr[r], self.indptr[r + 1]);
        self.indices.drain(a..b);
        self.values.drain(a..b);
        for p in &mut self.indptr[r + 1..] {
            *p -= b - a;
        }
        b - a
    }

    /// Removes every stored entry of column `c` (the column stays, empty);
    /// returns how many there were.
    pub fn clear_col(&mut self, c: u32) -> usize {
        let mut w = 0;
        let mut start = 0;
        for r in 0..self.n_rows {
            let end = self.indptr[r + 1];
            for p in start..end {
                if self.indices[p] != c {
                    self.indices[w] = self.indices[p];
                    self.values[w] = self.values[p];
                    w += 1;
                }
            }
            start = end;
            self.indptr[r + 1] = w;
        }
        let removed = self.indices.len() - w;
        self.indices.truncate(w);
        self.values.truncate(w);
        removed
    }

    /// Column indices of row `r`.
    pub fn row_indices(&self, r: usize) -> &[u32] {
        &self.indices[self.indptr[r]..self.indptr[r + 1]]
    }

    /// Values of row `r`.
    pub fn row_values(&self, r: usize) -> &[f32] {
        &self.values[self.indptr[r]..self.indptr[r + 1]]
    }

    /// `(column, value)` pairs of row `r`.
    pub fn row(&self, r: usize) -> impl Iterator<Item = (u32, f32)> + '_ {
        self.row_indices(r)
            .iter()
            .copied()
            .zip(self.row_values(r).iter().copied())
    }

    /// Number of entries in row `r`.
    pub fn row_len(&self, r: usize) -> usize {
        self.indptr[r + 1] - self.indptr[r]
    }

    /// The transpose (CSR of the transpose = CSC of `self`).
    pub fn transpose(&self) -> Csr {
        let mut counts = vec![0usize; self.n_cols + 1];
        for &c in &self.indices {
            counts[c as usize + 1] += 1;
        }
        for i in 0..self.n_cols {
            counts[i + 1] += counts[i];
        }
        let mut next = counts.clone();
        let nnz = self.nnz();
        let mut indices = vec![0u32; nnz];
        let mut values = vec![0f32; nnz];
        for r in 0..self.n_rows {
            for (c, v) in self.row(r) {
                let p = next[c as usize];
                indices[p] = r as u32;
                values[p] = v;
                next[c as usize] += 1;
            }
        }
        Csr {
            n_rows: self.n_cols,
            n_cols: self.n_rows,
            indptr: counts,
            indices,
            values,
        }
    }

    /// A copy with every stored value replaced by `f(value)`.
    pub fn map_values(&self, f: impl Fn(f32) -> f32) -> Csr {
        Csr {
            values: self.values.iter().map(|&v| f(v)).collect(),
            ..self.clone()
        }
    }

    /// Keeps only the rows in `keep` (others become empty), same shape.
    pub fn retain_rows(&self, keep: impl Fn(usize) -> bool) -> Csr {
        let mut indptr = vec![0];
        let mut indices = Vec::new();
        let mut values = Vec::new();
        for r in 0..self.n_rows {
            if keep(r) {
                indices.extend_from_slice(self.row_indices(r));
                values.extend_from_slice(self.row_values(r));
            }
            indptr.push(indices.len());
        }
        Csr {
            n_rows: self.n_rows,
            n_cols: self.n_cols,
            indptr,
            indices,
            values,
        }
    }
}

/// User × item interactions with both orientations and the id maps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interactions {
    /// External user ids ↔ row indices.
    pub users: IdMap,
    /// External item ids ↔ column indices.
    pub items: IdMap,
    /// Rows = users, columns = items.
    pub by_user: Csr,
    /// Rows = items, columns = users (the transpose of `by_user`).
    pub by_item: Csr,
}

impl Interactions {
    /// Builds from a user × item matrix and its id maps.
    pub fn from_csr(users: IdMap, items: IdMap, by_user: Csr) -> Self {
        let by_item = by_user.transpose();
        Interactions {
            users,
            items,
            by_user,
            by_item,
        }
    }

    /// Builds from dense triples `(user, item, value)` with ids `"0".."n-1"`;
    /// duplicates are summed. Handy for generated data.
    pub fn from_dense_triples(
        n_users: usize,
        n_items: usize,
        triples: &[(u32, u32, f32)],
    ) -> Result<Self, ModelError> {
        let csr = Csr::from_triples(n_users, n_items, triples, |a, b| a + b)?;
        let users = IdMap::from((0..n_users).map(|i| i.to_string()).collect::<Vec<_>>());
        let items = IdMap::from((0..n_items).map(|i| i.to_string()).collect::<Vec<_>>());
        Ok(Self::from_csr(users, items, csr))
    }

    /// Number of users.
    pub fn n_users(&self) -> usize {
        self.by_user.n_rows
    }

    /// Number of items.
    pub fn n_items(&self) -> usize {
        self.by_user.n_cols
    }

    /// Number of stored interactions.
    pub fn nnz(&self) -> usize {
        self.by_user.nnz()
    }

    /// The same interactions with every value set to 1 (binary implicit data).
    pub fn binarized(&self) -> Interactions {
        Interactions {
            users: self.users.clone(),
            items: self.items.clone(),
            by_user: self.by_user.map_values(|_| 1.0),
            by_item: self.by_item.map_values(|_| 1.0),
        }
    }

    /// The history of user row `u` as `(item, value)` pairs.
    pub fn history(&self, u: usize) -> Vec<(u32, f32)> {
        self.by_user.row(u).collect()
    }
}

/// How duplicate (user, item) observations are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Combine {
    /// Keep the last value seen (explicit ratings).
    Last,
    /// Add them up (implicit signals).
    #[default]
    Sum,
    /// Keep the largest.
    Max,
}

/// Exponential time decay: an observation `age` seconds before `reference`
/// is weighted by `0.5^(age / half_life)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimeDecay {
    /// Half-life in seconds (> 0).
    pub half_life_seconds: f64,
    /// The time at which weights are 1 (usually the latest observation).
    pub reference_time: i64,
}

impl TimeDecay {
    /// The weight of an observation at `time` (1 when the time is unknown or later).
    pub fn weight(&self, time: Option<i64>) -> f32 {
        match time {
            Some(t) if t < self.reference_time => {
                let age = (self.reference_time - t) as f64;
                0.5f64.powf(age / self.half_life_seconds) as f32
            }
            _ => 1.0,
        }
    }
}

/// Weights of implicit signal kinds (e.g. `purchase` 1, `cart` 0.5, `view` 0.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalWeights {
    /// Weight per signal kind (lower-case); kinds not listed get `default`.
    pub weights: HashMap<String, f32>,
    /// Weight of kinds not listed (0 = ignore them).
    pub default: f32,
}

impl Default for SignalWeights {
    fn default() -> Self {
        let weights = [
            ("purchase", 1.0),
            ("rating", 1.0),
            ("cart", 0.5),
            ("wishlist", 0.5),
            ("click", 0.2),
            ("view", 0.1),
        ]
        .into_iter()
        .map(|(k, w)| (k.to_owned(), w))
        .collect();
        SignalWeights {
            weights,
            default: 0.0,
        }
    }
}

impl SignalWeights {
    /// The weight of one signal kind.
    pub fn weight(&self, kind: &str) -> f32 {
        self.weights.get(kind).copied().unwrap_or(self.default)
    }
}

/// Collects observations with external ids and builds [`Interactions`].
#[derive(Debug, Clone, Default)]
pub struct InteractionsBuilder {
    users: IdMap,
    items: IdMap,
    triples: Vec<(u32, u32, f32)>,
    times: Vec<Option<i64>>,
    combine: Combine,
    decay: Option<TimeDecay>,
}

impl InteractionsBuilder {
    /// A builder combining duplicates with `combine`.
    pub fn new(combine: Combine) -> Self {
        InteractionsBuilder {
            combine,
            ..Default::default()
        }
    }

    /// Starts from existing id maps (so indices stay those of a trained model);
    /// new ids are appended.
    pub fn with_maps(mut self, users: IdMap, items: IdMap) -> Self {
        self.users = users;
        self.items = items;
        self
    }

    /// Applies an exponential time decay to every observation with a time.
    pub fn time_decay(mut self, decay: Option<TimeDecay>) -> Self {
        self.decay = decay;
        self
    }

    /// Registers an item even if nobody interacted with it (keeps the catalogue complete).
    pub fn add_item(&mut self, item: &str) -> u32 {
        self.items.get_or_insert(item)
    }

    /// Registers a user even without interactions.
    pub fn add_user(&mut self, user: &str) -> u32 {
        self.users.get_or_insert(user)
    }

    /// Adds one observation (an explicit rating, or an implicit signal's weight).
    pub fn add(&mut self, user: &str, item: &str, value: f32, time: Option<i64>) {
        let u = self.users.get_or_insert(user);
        let i = self.items.get_or_insert(item);
        self.triples.push((u, i, value));
        self.times.push(time);
    }

    /// Adds an implicit signal of `kind` weighted by `weights` (ignored when the weight is 0).
    pub fn add_signal(
        &mut self,
        weights: &SignalWeights,
        user: &str,
        item: &str,
        kind: &str,
        time: Option<i64>,
    ) {
        let w = weights.weight(kind);
        if w != 0.0 {
            self.add(user, item, w, time);
        }
    }

    /// Number of observations added.
    pub fn len(&self) -> usize {
        self.triples.len()
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.triples.is_empty()
    }

    /// Builds the matrices and, when every observation has a time, the
    /// [`Timeline`] of each user's items.
    pub fn build_with_order(self) -> Result<(Interactions, Option<Timeline>), ModelError> {
        let events: Option<Vec<(u32, u32, i64)>> = self
            .triples
            .iter()
            .zip(&self.times)
            .map(|(&(u, i, _), t)| t.map(|t| (u, i, t)))
            .collect();
        let (nu, ni) = (self.users.len(), self.items.len());
        let x = self.build()?;
        let order = match events {
            Some(ev) if !ev.is_empty() => Some(Timeline::new(
                nu.max(x.n_users()),
                ni.max(x.n_items()),
                &ev,
            )?),
            _ => None,
        };
        Ok((x, order))
    }

    /// Builds the matrices.
    pub fn build(self) -> Result<Interactions, ModelError> {
        let mut triples = self.triples;
        if let Some(decay) = self.decay {
            if decay.half_life_seconds.is_nan() || decay.half_life_seconds <= 0.0 {
                return Err(ModelError::InvalidParameter {
                    name: "half_life".into(),
                    reason: "must be positive".into(),
                });
            }
            for (t, time) in triples.iter_mut().zip(&self.times) {
                t.2 *= decay.weight(*time);
            }
        }
        let combine = self.combine;
        let csr =
            Csr::from_triples(
                self.users.len(),
                self.items.len(),
                &triples,
                |a, b| match combine {
                    Combine::Last => b,
                    Combine::Sum => a + b,
                    Combine::Max => a.max(b),
                },
            )?;
        Ok(Interactions::from_csr(self.users, self.items, csr))
    }
}

/// The chronological order of each user's items: a user × item matrix with
/// the same cells as the interactions whose value is the rank (0, 1, …) of the
/// cell in the user's sequence sorted by time (the latest time of duplicate
/// observations; ties broken by item index). Sequence-aware models use it;
/// ranks rather than raw times keep it in `f32` exactly.
pub fn chronological_order(
    n_users: usize,
    n_items: usize,
    events: &[(u32, u32, i64)],
) -> Result<Csr, ModelError> {
    Ok(Timeline::new(n_users, n_items, events)?.order)
}

/// When each interaction happened: its rank in the user's sequence (the
/// `f32` matrix of [`chronological_order`], which sequence models read) and
/// its time (the latest of duplicate observations), which session-aware
/// models group into visits ([`Timeline::sessions`]).
///
/// A timeline may cover more cells than the matrix a model is fitted on (an
/// evaluation builds it from every rating, then holds some out): models look
/// up only the cells they are given, so held-out cells never shape a fit.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// Chronological rank of each cell (users × items).
    pub order: Csr,
    /// Time of each cell, aligned with `order`'s stored entries.
    times: Vec<i64>,
}

impl Timeline {
    /// Builds from `(user, item, time)` events (duplicates: the latest time).
    pub fn new(
        n_users: usize,
        n_items: usize,
        events: &[(u32, u32, i64)],
    ) -> Result<Self, ModelError> {
        let mut ev: Vec<(u32, u32, i64)> = events.to_vec();
        ev.sort_unstable_by_key(|&(u, i, t)| (u, i, std::cmp::Reverse(t)));
        ev.dedup_by_key(|&mut (u, i, _)| (u, i));
        // `ev` is now in CSR order (user, then item): the times line up with
        // the matrix built below.
        let times: Vec<i64> = ev.iter().map(|e| e.2).collect();
        let mut by_time: Vec<usize> = (0..ev.len()).collect();
        by_time.sort_unstable_by_key(|&k| (ev[k].0, ev[k].2, ev[k].1));
        let mut triples = vec![(0u32, 0u32, 0f32); ev.len()];
        let mut rank = 0u32;
        for (n, &k) in by_time.iter().enumerate() {
            if n == 0 || ev[by_time[n - 1]].0 != ev[k].0 {
                rank = 0;
            }
            triples[k] = (ev[k].0, ev[k].1, rank as f32);
            rank += 1;
        }
        let order = Csr::from_triples(n_users, n_items, &triples, |_, b| b)?;
        Ok(Timeline { order, times })
    }

    /// The time of user `u`'s interaction with item `i`, if the timeline has it.
    pub fn time(&self, u: usize, i: u32) -> Option<i64> {
        if u >= self.order.n_rows {
            return None;
        }
        let p = self.order.row_indices(u).binary_search(&i).ok()?;
        Some(self.times[self.order.indptr[u] + p])
    }

    /// Groups each user's interactions in `by_user` into sessions: sorted by
    /// time, a new session starts where the gap to the previous interaction
    /// exceeds `gap` (in the times' unit, seconds for the readers here; 0 =
    /// only equal times share a session, as the lines of one basket do).
    /// Returns a sessions × items matrix with `by_user`'s values. Only the
    /// cells of `by_user` are read, so a held-out interaction can neither
    /// join nor split a session. Cells without a time are an error.
    pub fn sessions(&self, by_user: &Csr, gap: i64) -> Result<Csr, ModelError> {
        // One row per visit, written in order (no triple list); each row's
        // cells are sorted by item when it closes.
        let v = self.visits(by_user, gap)?;
        let mut indptr = vec![0usize];
        let mut indices: Vec<u32> = Vec::with_capacity(v.item.len());
        let mut values: Vec<f32> = Vec::with_capacity(v.item.len());
        let mut open: Vec<(u32, f32)> = Vec::new();
        for k in 0..v.item.len() {
            open.push((v.item[k], v.value[k]));
            if v.visit.get(k + 1) != Some(&v.visit[k]) {
                open.sort_unstable_by_key(|&(i, _)| i);
                indices.extend(open.iter().map(|&(i, _)| i));
                values.extend(open.iter().map(|&(_, x)| x));
                indptr.push(indices.len());
                open.clear();
            }
        }
        Ok(Csr {
            n_rows: indptr.len() - 1,
            n_cols: by_user.n_cols,
            indptr,
            indices,
            values,
        })
    }

    /// Each user's cells of `by_user` in time order, each with the visit it
    /// falls in (visits cut as in [`Timeline::sessions`]), for models that
    /// weigh a pair of interactions by how far apart in time they are
    /// (session-EASE with a decay). Cells without a time are an error.
    pub fn visits(&self, by_user: &Csr, gap: i64) -> Result<Visits, ModelError> {
        let nnz = by_user.nnz();
        let mut v = Visits {
            rank: vec![0; nnz],
            time: Vec::with_capacity(nnz),
            item: Vec::with_capacity(nnz),
            value: Vec::with_capacity(nnz),
            visit: Vec::with_capacity(nnz),
        };
        let mut cells: Vec<(i64, u32, f32, u32)> = Vec::new();
        let mut visit = 0u32;
        for u in 0..by_user.n_rows {
            cells.clear();
            for (p, (i, x)) in by_user.row(u).enumerate() {
                let t = self.time(u, i).ok_or_else(|| {
                    ModelError::InvalidInput(format!(
                        "no time for interaction ({u}, {i}): sessions need every interaction's time"
                    ))
                })?;
                cells.push((t, i, x, p as u32));
            }
            cells.sort_unstable_by_key(|&(t, i, _, _)| (t, i));
            let base = by_user.indptr[u];
            for (k, &(t, i, x, p)) in cells.iter().enumerate() {
                if k == 0 || t.saturating_sub(cells[k - 1].0) > gap {
                    visit = visit.wrapping_add(1);
                }
                v.rank[base + p as usize] = k as u32;
                v.time.push(t);
                v.item.push(i);
                v.value.push(x);
                v.visit.push(visit);
            }
        }
        Ok(v)
    }
}

/// Every user's interactions in time order, cut into visits
/// ([`Timeline::visits`]): the input of a time-weighted co-occurrence. Each
/// user's cells sit where they sit in the `by_user` matrix the visits were
/// built from (its `indptr` delimits them), only reordered by time.
#[derive(Debug, Clone, PartialEq)]
pub struct Visits {
    /// For each cell of `by_user` (its CSR order): its position in the
    /// user's time order.
    pub rank: Vec<u32>,
    /// Time of each cell, in each user's time order.
    pub time: Vec<i64>,
    /// Item of each cell, in each user's time order.
    pub item: Vec<u32>,
    /// Value of each cell in `by_user`, in each user's time order.
    pub value: Vec<f32>,
    /// Visit of each cell (equal for the cells of one visit, different
    /// between consecutive visits), in each user's time order.
    pub visit: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_maps_ids_and_combines_duplicates() {
        let mut b = InteractionsBuilder::new(Combine::Last);
        b.add("u1", "a", 3.0, None);
        b.add("u2", "b", 4.0, None);
        b.add("u1", "a", 5.0, None);
        b.add("u1", "c", 1.0, None);
        let x = b.build().unwrap();
        assert_eq!(x.n_users(), 2);
        assert_eq!(x.n_items(), 3);
        assert_eq!(x.nnz(), 3);
        let u1 = x.users.get("u1").unwrap() as usize;
        let a = x.items.get("a").unwrap();
        assert_eq!(
            x.history(u1),
            vec![(a, 5.0), (x.items.get("c").unwrap(), 1.0)]
        );
        assert_eq!(x.by_item.row_len(a as usize), 1);
        assert_eq!(x.by_item.transpose(), x.by_user);
    }

    #[test]
    fn signal_weights_and_decay() {
        let w = SignalWeights::default();
        let mut b = InteractionsBuilder::new(Combine::Sum).time_decay(Some(TimeDecay {
            half_life_seconds: 100.0,
            reference_time: 1000,
        }));
        b.add_signal(&w, "u", "a", "purchase", Some(1000));
        b.add_signal(&w, "u", "a", "view", Some(900));
        b.add_signal(&w, "u", "b", "unknown", Some(1000));
        let x = b.build().unwrap();
        assert_eq!(x.nnz(), 1);
        assert!((x.by_user.values[0] - 1.05).abs() < 1e-6);
    }

    #[test]
    fn chronological_order_ranks_each_users_items_by_time() {
        let mut b = InteractionsBuilder::new(Combine::Last);
        b.add("u", "a", 1.0, Some(30));
        b.add("u", "b", 1.0, Some(10));
        b.add("u", "c", 1.0, Some(20));
        b.add("u", "b", 1.0, Some(40)); // the latest time counts
        b.add("v", "c", 1.0, Some(5));
        let (x, timeline) = b.build_with_order().unwrap();
        let timeline = timeline.expect("every observation has a time");
        let order = &timeline.order;
        let u = x.users.get("u").unwrap() as usize;
        let rank = |it: &str| {
            let i = x.items.get(it).unwrap();
            let p = order.row_indices(u).binary_search(&i).unwrap();
            order.row_values(u)[p]
        };
        assert_eq!((rank("c"), rank("a"), rank("b")), (0.0, 1.0, 2.0));
        assert_eq!(order.row_values(x.users.get("v").unwrap() as usize), &[0.0]);
        let mut b = InteractionsBuilder::new(Combine::Last);
        b.add("u", "a", 1.0, Some(30));
        b.add("u", "b", 1.0, None);
        assert!(
            b.build_with_order().unwrap().1.is_none(),
            "a missing time: no order"
        );
    }

    #[test]
    fn sessions_cut_at_gaps_and_read_only_the_given_cells() {
        let mut b = InteractionsBuilder::new(Combine::Last);
        for (it, t) in [("a", 0), ("b", 50), ("c", 100), ("d", 500), ("e", 500)] {
            b.add("u", it, 1.0, Some(t));
        }
        b.add("v", "a", 2.0, Some(7));
        let (x, timeline) = b.build_with_order().unwrap();
        let timeline = timeline.unwrap();
        let item = |it: &str| x.items.get(it).unwrap();
        let rows = |s: &Csr| -> Vec<Vec<u32>> {
            (0..s.n_rows).map(|r| s.row_indices(r).to_vec()).collect()
        };
        // a-b-c chain within 60 s; d and e share a time.
        let s = timeline.sessions(&x.by_user, 60).unwrap();
        let (a, bb, c, d, e) = (item("a"), item("b"), item("c"), item("d"), item("e"));
        assert_eq!(rows(&s), vec![vec![a, bb, c], vec![d, e], vec![a]]);
        assert_eq!(s.row_values(2), &[2.0], "values come from the matrix");
        // Gap 0: only equal times.
        let s = timeline.sessions(&x.by_user, 0).unwrap();
        assert_eq!(
            rows(&s),
            vec![vec![a], vec![bb], vec![c], vec![d, e], vec![a]]
        );
        // Holding b out breaks the chain: a and c are 100 s apart.
        let u = x.users.get("u").unwrap() as usize;
        let held: Vec<(u32, u32, f32)> = (0..x.n_users())
            .flat_map(|r| x.by_user.row(r).map(move |(i, v)| (r as u32, i, v)))
            .filter(|&(r, i, _)| !(r as usize == u && i == bb))
            .collect();
        let inner = Csr::from_triples(x.n_users(), x.n_items(), &held, |_, b| b).unwrap();
        let s = timeline.sessions(&inner, 60).unwrap();
        assert_eq!(rows(&s), vec![vec![a], vec![c], vec![d, e], vec![a]]);
        assert_eq!(timeline.time(u, d), Some(500));
        assert_eq!(timeline.time(u + 5, d), None);
    }

    #[test]
    fn idmap_roundtrips_through_serde_form() {
        let mut m = IdMap::new();
        m.get_or_insert("x");
        m.get_or_insert("y");
        let v: Vec<String> = m.clone().into();
        let back = IdMap::from(v);
        assert_eq!(back.get("y"), Some(1));
        assert_eq!(back, m);
    }
}
