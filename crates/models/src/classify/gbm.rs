//! Gradient-boosted trees for binary classification (logistic loss), our own
//! histogram implementation.
//!
//! Why our own: it is a few hundred lines, fast on the table sizes we see
//! (Telco, 5.6k rows × 46 columns: ~0.03 s CPU for 100 trees), deterministic
//! with a seed, and lets every split credit its column for churn reasons. The
//! maintained crate perpetual `=3.0.0-rc.2` (PerpetualBooster) was measured
//! behind the same interface on the same Telco folds and lost on both counts
//! (ROC AUC 0.815 at its default budget 0.5, 0.842 at budget 2.0, vs 0.848
//! here; 10–20× the fit time), so it is not a dependency.
//!
//! Algorithm: columns binned once (≤ `max_bins` quantile bins, `u8`) into a
//! [`BinnedMatrix`]: column-major bins for routing rows, plus each row's
//! bins that differ from its column's most common bin as a compressed list
//! (one-hot and flag columns are mostly at one value, so a row touches few
//! histogram cells; each column's common bin is the node total minus the
//! rest). Each round fits a depth-limited tree to the gradient and hessian
//! of the log loss (single precision, packed with a count into one 16-byte
//! cell per bin) with Newton leaf values `−G/(H+λ)` shrunk by the learning
//! rate; the smaller child's histogram is built and the larger one's taken
//! by subtraction; histograms are pooled, not reallocated. Rows and columns
//! are subsampled per tree (seeded). Given validation rows (`auto`'s inner
//! folds), boosting stops once their log loss has not improved for
//! `early_stopping_rounds` rounds. Explanations are Saabas path
//! contributions: each split credits its column with the change of node
//! value along the path.

use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::bins::Binner;
use super::{DenseMatrix, check_xy, sigmoid};
use crate::ModelError;

/// Settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GbmConfig {
    /// Boosting rounds.
    pub n_trees: usize,
    /// Shrinkage of every leaf value.
    pub learning_rate: f64,
    /// Depth of each tree.
    pub max_depth: usize,
    /// Fewest training rows in a leaf.
    pub min_samples_leaf: usize,
    /// L2 penalty on leaf values.
    pub l2: f64,
    /// Share of rows drawn (without replacement) for each tree.
    pub subsample: f64,
    /// Share of columns drawn for each tree.
    pub colsample: f64,
    /// Bins per column.
    pub max_bins: usize,
    /// Seed of the subsampling.
    pub seed: u64,
    /// When validation rows are given ([`GbmConfig::fit_binned`], as `auto`'s
    /// inner folds do), stop once their log loss has not improved for this
    /// many rounds and keep the best round (0 = never stop early).
    #[serde(default)]
    pub early_stopping_rounds: usize,
}

impl Default for GbmConfig {
    fn default() -> Self {
        GbmConfig {
            n_trees: 100,
            learning_rate: 0.1,
            max_depth: 3,
            min_samples_leaf: 20,
            l2: 1.0,
            subsample: 0.8,
            colsample: 0.8,
            max_bins: 64,
            seed: 0,
            early_stopping_rounds: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GNode {
    feature: u32,
    bin: u8,
    threshold: f64,
    left: u32,
    right: u32,
    leaf: bool,
    value: f64,
}

/// A fitted boosted ensemble.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GbmModel {
    base: f64,
    trees: Vec<Vec<GNode>>,
    n_cols: usize,
}

/// A training matrix binned once for boosting: `u8` bins column-major (for
/// row routing) plus a compressed row-major list of each row's bins that
/// differ from its column's most common bin (for histograms). One-hot and
/// flag columns are mostly at one value, so a row touches far fewer bins than
/// there are columns; the most common bin of each column is recovered by
/// subtraction from the node totals.
#[derive(Debug, Clone)]
pub struct BinnedMatrix {
    n_rows: usize,
    n_cols: usize,
    /// `bins[j * n_rows + i]`.
    bins: Vec<u8>,
    n_bins: Vec<usize>,
    /// Start of column `j`'s bins in a histogram; `offsets[n_cols]` = total bins.
    offsets: Vec<usize>,
    /// Most common bin of each column.
    common: Vec<u8>,
    /// Row `i`'s non-common bins as histogram slots: `slots[row_ptr[i]..row_ptr[i + 1]]`.
    row_ptr: Vec<usize>,
    slots: Vec<u32>,
    cuts: Vec<Vec<f64>>,
}

impl BinnedMatrix {
    /// Bins `x` with at most `max_bins` bins per column (cut points learned on `x`).
    pub fn new(x: &DenseMatrix, max_bins: usize) -> Self {
        let n = x.n_rows;
        let d = x.n_cols;
        let binner = Binner::fit(x, max_bins);
        let bins = binner.transform(x);
        let n_bins: Vec<usize> = (0..d).map(|j| binner.n_bins(j)).collect();
        let mut offsets = vec![0usize; d + 1];
        for j in 0..d {
            offsets[j + 1] = offsets[j] + n_bins[j];
        }
        let mut common = vec![0u8; d];
        let mut counts = Vec::new();
        for j in 0..d {
            counts.clear();
            counts.resize(n_bins[j], 0usize);
            for &b in &bins[j * n..(j + 1) * n] {
                counts[b as usize] += 1;
            }
            let mut best = 0;
            for (b, &c) in counts.iter().enumerate() {
                if c > counts[best] {
                    best = b;
                }
            }
            common[j] = best as u8;
        }
        let mut row_ptr = Vec::with_capacity(n + 1);
        let mut slots = Vec::new();
        row_ptr.push(0);
        for i in 0..n {
            for j in 0..d {
                let b = bins[j * n + i];
                if b != common[j] {
                    slots.push((offsets[j] + b as usize) as u32);
                }
            }
            row_ptr.push(slots.len());
        }
        BinnedMatrix {
            n_rows: n,
            n_cols: d,
            bins,
            n_bins,
            offsets,
            common,
            row_ptr,
            slots,
            cuts: binner.cuts,
        }
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    #[inline]
    fn bin(&self, i: usize, j: usize) -> u8 {
        self.bins[j * self.n_rows + i]
    }
}

/// Per-bin sums of gradient, hessian and row count, all bins of all columns.
struct Hist(Vec<[f32; 4]>);

impl Hist {
    fn sub_from(&mut self, parent: &Hist, child: &Hist) {
        for ((o, p), c) in self.0.iter_mut().zip(&parent.0).zip(&child.0) {
            *o = [p[0] - c[0], p[1] - c[1], p[2] - c[2], 0.0];
        }
    }
}

struct Booster<'a> {
    cfg: &'a GbmConfig,
    data: &'a BinnedMatrix,
    /// Gradient, hessian and 1 (the row count) of each row, indexed by row id;
    /// four lanes so a histogram update is one vector add.
    gh: Vec<[f32; 4]>,
    cols: Vec<usize>,
    nodes: Vec<GNode>,
    /// Spare histograms, reused across nodes and trees.
    pool: Vec<Hist>,
    /// Partition buffer.
    scratch: Vec<usize>,
}

impl Booster<'_> {
    fn take_hist(&mut self) -> Hist {
        let total = self.data.offsets[self.data.n_cols];
        match self.pool.pop() {
            Some(h) => h,
            None => Hist(vec![[0.0; 4]; total]),
        }
    }

    /// Histogram of `rows` whose totals are `(g, h)`.
    fn build_hist(&mut self, rows: &[usize], g: f64, h: f64) -> Hist {
        let mut hist = self.take_hist();
        hist.0.iter_mut().for_each(|e| *e = [0.0; 4]);
        let data = self.data;
        for &i in rows {
            let v = self.gh[i];
            for &s in &data.slots[data.row_ptr[i]..data.row_ptr[i + 1]] {
                let e = &mut hist.0[s as usize];
                for (a, b) in e.iter_mut().zip(v) {
                    *a += b;
                }
            }
        }
        // Common bins: node totals minus the column's other bins.
        let n = rows.len() as f64;
        for j in 0..data.n_cols {
            let (lo, hi_) = (data.offsets[j], data.offsets[j + 1]);
            let (mut sg, mut sh, mut sc) = (0.0f64, 0.0f64, 0.0f64);
            for e in &hist.0[lo..hi_] {
                sg += f64::from(e[0]);
                sh += f64::from(e[1]);
                sc += f64::from(e[2]);
            }
            let e = &mut hist.0[lo + data.common[j] as usize];
            e[0] += (g - sg) as f32;
            e[1] += (h - sh) as f32;
            e[2] += (n - sc) as f32;
        }
        hist
    }

    fn grow(&mut self, rows: &mut [usize], hist: Hist, gs: f64, hs: f64, depth: usize) -> u32 {
        let lambda = self.cfg.l2;
        let id = self.nodes.len() as u32;
        self.nodes.push(GNode {
            feature: 0,
            bin: 0,
            threshold: 0.0,
            left: 0,
            right: 0,
            leaf: true,
            value: -self.cfg.learning_rate * gs / (hs + lambda),
        });
        let n = rows.len();
        let min_leaf = self.cfg.min_samples_leaf.max(1);
        if depth >= self.cfg.max_depth || n < 2 * min_leaf {
            self.pool.push(hist);
            return id;
        }
        let parent_score = gs * gs / (hs + lambda);
        let mut best: Option<(f64, usize, usize, f64, f64)> = None;
        for &j in &self.cols {
            let nb = self.data.n_bins[j];
            if nb < 2 {
                continue;
            }
            let off = self.data.offsets[j];
            let (mut gl, mut hl, mut cl) = (0.0, 0.0, 0.0);
            for b in 0..nb - 1 {
                let e = hist.0[off + b];
                gl += f64::from(e[0]);
                hl += f64::from(e[1]);
                cl += f64::from(e[2]);
                let cr = n as f64 - cl;
                if cl < min_leaf as f64 - 0.5 {
                    continue;
                }
                if cr < min_leaf as f64 - 0.5 {
                    break;
                }
                let gr = gs - gl;
                let hr = hs - hl;
                let gain = gl * gl / (hl + lambda) + gr * gr / (hr + lambda) - parent_score;
                if gain > 1e-12 && best.is_none_or(|(g, ..)| gain > g) {
                    best = Some((gain, j, b, gl, hl));
                }
            }
        }
        let Some((_, j, b, gl, hl)) = best else {
            self.pool.push(hist);
            return id;
        };
        // Stable partition, left (bin <= b) first: rows stay in increasing id
        // order, so histogram building walks the row lists front to back.
        let col = &self.data.bins[j * self.data.n_rows..(j + 1) * self.data.n_rows];
        self.scratch.clear();
        let mut split = 0;
        for k in 0..n {
            let i = rows[k];
            if col[i] as usize <= b {
                rows[split] = i;
                split += 1;
            } else {
                self.scratch.push(i);
            }
        }
        rows[split..].copy_from_slice(&self.scratch);
        let (gr, hr) = (gs - gl, hs - hl);
        let (lrows, rrows) = rows.split_at_mut(split);
        let small_is_left = lrows.len() <= rrows.len();
        let small_hist = if small_is_left {
            self.build_hist(lrows, gl, hl)
        } else {
            self.build_hist(rrows, gr, hr)
        };
        let mut big_hist = self.take_hist();
        big_hist.sub_from(&hist, &small_hist);
        self.pool.push(hist);
        let (lh, rh) = if small_is_left {
            (small_hist, big_hist)
        } else {
            (big_hist, small_hist)
        };
        let left = self.grow(lrows, lh, gl, hl, depth + 1);
        let right = self.grow(rrows, rh, gr, hr, depth + 1);
        let node = &mut self.nodes[id as usize];
        node.leaf = false;
        node.feature = j as u32;
        node.bin = b as u8;
        node.threshold = self.data.cuts[j][b];
        node.left = left;
        node.right = right;
        id
    }
}

impl GbmConfig {
    fn validate(&self) -> Result<(), ModelError> {
        let bad = |name: &str, reason: &str| {
            Err(ModelError::InvalidParameter {
                name: name.into(),
                reason: reason.into(),
            })
        };
        if self.n_trees == 0 {
            return bad("n_trees", "must be > 0");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return bad("learning_rate", "must be in (0, 1]");
        }
        if self.max_depth == 0 || self.max_depth > 16 {
            return bad("max_depth", "must be 1..=16");
        }
        let unit = |v: f64| v > 0.0 && v <= 1.0;
        if !(unit(self.subsample) && unit(self.colsample)) {
            return bad("subsample", "subsample and colsample must be in (0, 1]");
        }
        if self.l2.is_nan() || self.l2 < 0.0 {
            return bad("l2", "must be >= 0");
        }
        Ok(())
    }

    /// Fits on `x`, `y`.
    pub fn fit(&self, x: &DenseMatrix, y: &[bool]) -> Result<GbmModel, ModelError> {
        check_xy(x, y)?;
        self.validate()?;
        let data = BinnedMatrix::new(x, self.max_bins);
        let rows: Vec<usize> = (0..x.n_rows).collect();
        self.fit_binned(&data, &rows, &[], y)
    }

    /// Fits on the rows `train` of an already binned matrix (`y` indexed by
    /// row id like the matrix), e.g. the inner folds of `auto`, which bin the
    /// training matrix once. Non-empty `valid` rows drive early stopping
    /// (see [`GbmConfig::early_stopping_rounds`]).
    pub fn fit_binned(
        &self,
        data: &BinnedMatrix,
        train: &[usize],
        valid: &[usize],
        y: &[bool],
    ) -> Result<GbmModel, ModelError> {
        Ok(self.fit_binned_scored(data, train, valid, y)?.0)
    }

    /// [`fit_binned`](Self::fit_binned), also returning the probabilities of
    /// the `valid` rows under the kept rounds (computed during early stopping,
    /// so scoring them again is not needed; empty when early stopping is off).
    pub fn fit_binned_scored(
        &self,
        data: &BinnedMatrix,
        train: &[usize],
        valid: &[usize],
        y: &[bool],
    ) -> Result<(GbmModel, Vec<f64>), ModelError> {
        self.validate()?;
        if y.len() != data.n_rows || train.iter().chain(valid).any(|&i| i >= data.n_rows) {
            return Err(ModelError::InvalidInput(
                "training rows out of range of the binned matrix".into(),
            ));
        }
        let n = train.len();
        let d = data.n_cols;
        let pos = train.iter().filter(|&&i| y[i]).count();
        if n == 0 || d == 0 || pos == 0 || pos == n {
            return Err(ModelError::InvalidInput(
                "boosting needs rows of both classes and at least one column".into(),
            ));
        }
        let yv: Vec<f64> = train.iter().map(|&i| f64::from(u8::from(y[i]))).collect();
        let prior = pos as f64 / n as f64;
        let base = (prior / (1.0 - prior)).ln();
        // f[k] is the score of row train[k]
        let mut f = vec![base; n];
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let n_cols_tree = ((self.colsample * d as f64).ceil() as usize).clamp(1, d);
        let mut trees = Vec::with_capacity(self.n_trees);
        let mut booster = Booster {
            cfg: self,
            data,
            gh: vec![[0.0f32; 4]; data.n_rows],
            cols: Vec::new(),
            nodes: Vec::new(),
            pool: Vec::new(),
            scratch: Vec::with_capacity(n),
        };
        let mut rows: Vec<usize> = Vec::with_capacity(n);
        let stop = if valid.is_empty() {
            0
        } else {
            self.early_stopping_rounds
        };
        let mut fv = vec![base; if stop > 0 { valid.len() } else { 0 }];
        let (mut best_loss, mut best_len) = (f64::INFINITY, 0usize);
        let mut best_fv = fv.clone();
        // Bernoulli row subsampling with a 32-bit threshold (one u64 draw gives two rows).
        let threshold = (self.subsample * f64::from(u32::MAX)) as u64;
        for _ in 0..self.n_trees {
            for (k, &i) in train.iter().enumerate() {
                // single precision is plenty for a gradient step (and its exp is cheaper)
                let p = 1.0 / (1.0 + (-(f[k] as f32)).exp());
                let yk = yv[k] as f32;
                booster.gh[i] = [p - yk, (p * (1.0 - p)).max(1e-12), 1.0, 0.0];
            }
            rows.clear();
            if self.subsample < 1.0 {
                let mut it = train.chunks(2);
                for pair in &mut it {
                    let r: u64 = rng.random();
                    if (r & 0xffff_ffff) <= threshold {
                        rows.push(pair[0]);
                    }
                    if pair.len() > 1 && (r >> 32) <= threshold {
                        rows.push(pair[1]);
                    }
                }
            } else {
                rows.extend_from_slice(train);
            }
            if rows.len() < 2 {
                continue;
            }
            booster.cols = if n_cols_tree < d {
                let mut c = sample(&mut rng, d, n_cols_tree).into_vec();
                c.sort_unstable();
                c
            } else {
                (0..d).collect()
            };
            booster.nodes = Vec::new();
            let (gs, hs) = rows.iter().fold((0.0, 0.0), |(a, b), &i| {
                (
                    a + f64::from(booster.gh[i][0]),
                    b + f64::from(booster.gh[i][1]),
                )
            });
            let hist = booster.build_hist(&rows, gs, hs);
            booster.grow(&mut rows, hist, gs, hs, 0);
            let tree = std::mem::take(&mut booster.nodes);
            for (fk, &i) in f.iter_mut().zip(train) {
                let mut k = 0usize;
                while !tree[k].leaf {
                    let nd = &tree[k];
                    k = if data.bin(i, nd.feature as usize) <= nd.bin {
                        nd.left as usize
                    } else {
                        nd.right as usize
                    };
                }
                *fk += tree[k].value;
            }
            trees.push(tree);
            if stop > 0 {
                let t = &trees[trees.len() - 1];
                // log loss = Σ max(z, 0) + ln Π (1 + e^{−|z|}), z the signed margin; the
                // product is flushed to a logarithm every 32 rows (each factor is ≤ 2),
                // so one `ln` serves 32 rows. Single precision: it is only compared
                // between rounds.
                let mut loss = 0.0;
                let mut prod = 1.0f64;
                for (r, (fk, &i)) in fv.iter_mut().zip(valid).enumerate() {
                    let mut k = 0usize;
                    while !t[k].leaf {
                        let nd = &t[k];
                        k = if data.bin(i, nd.feature as usize) <= nd.bin {
                            nd.left as usize
                        } else {
                            nd.right as usize
                        };
                    }
                    *fk += t[k].value;
                    let z = (if y[i] { -*fk } else { *fk }) as f32;
                    loss += f64::from(z.max(0.0));
                    prod *= f64::from(1.0 + (-z.abs()).exp());
                    if r % 32 == 31 {
                        loss += prod.ln();
                        prod = 1.0;
                    }
                }
                loss += prod.ln();
                if loss < best_loss - 1e-12 {
                    best_loss = loss;
                    best_len = trees.len();
                    best_fv.copy_from_slice(&fv);
                } else if trees.len() - best_len >= stop {
                    break;
                }
            }
        }
        if stop > 0 && best_len > 0 {
            trees.truncate(best_len);
        }
        let valid_proba = best_fv.into_iter().map(sigmoid).collect();
        Ok((
            GbmModel {
                base,
                trees,
                n_cols: d,
            },
            valid_proba,
        ))
    }
}

impl GbmModel {
    /// Log-odds of one row.
    pub fn decision_row(&self, row: &[f64]) -> f64 {
        let mut s = self.base;
        for t in &self.trees {
            let mut k = 0usize;
            while !t[k].leaf {
                let nd = &t[k];
                k = if super::goes_left(row[nd.feature as usize], nd.threshold) {
                    nd.left as usize
                } else {
                    nd.right as usize
                };
            }
            s += t[k].value;
        }
        s
    }

    /// Probability of one row.
    pub fn predict_row(&self, row: &[f64]) -> f64 {
        sigmoid(self.decision_row(row))
    }

    /// Saabas contributions to the log-odds per column.
    pub fn contributions(&self, row: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; row.len().max(self.n_cols)];
        for t in &self.trees {
            let mut k = 0usize;
            while !t[k].leaf {
                let nd = &t[k];
                let next = if super::goes_left(row[nd.feature as usize], nd.threshold) {
                    nd.left as usize
                } else {
                    nd.right as usize
                };
                out[nd.feature as usize] += t[next].value - nd.value;
                k = next;
            }
        }
        out.truncate(row.len());
        out
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// Total split gain proxy per column: how often each column is split on.
    pub fn split_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.n_cols];
        for t in &self.trees {
            for nd in t.iter().filter(|n| !n.leaf) {
                c[nd.feature as usize] += 1;
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_an_interaction_a_linear_model_cannot() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for _ in 0..3000 {
            let a: f64 = rng.random_range(-1.0..1.0);
            let b: f64 = rng.random_range(-1.0..1.0);
            let noise: f64 = rng.random_range(0.0..1.0);
            rows.push(vec![a, b, noise]);
            y.push((a * b > 0.0) ^ (rng.random::<f64>() < 0.1));
        }
        let x = DenseMatrix::from_rows(&rows).unwrap();
        let m = GbmConfig::default().fit(&x, &y).unwrap();
        let p: Vec<f64> = (0..x.n_rows).map(|i| m.predict_row(x.row(i))).collect();
        let auc = crate::metrics::classification::roc_auc(&y, &p).unwrap();
        assert!(auc > 0.85, "auc {auc}");
        // contributions + base-ish explain the log-odds direction
        let c = m.contributions(&[0.8, 0.8, 0.5]);
        assert!(c[0] + c[1] > c[2].abs());
        let sc = m.split_counts();
        assert!(sc[0] > sc[2] && sc[1] > sc[2]);
    }
    #[test]
    fn sparse_histograms_match_a_dense_count() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut rows = Vec::new();
        for _ in 0..500 {
            let flag = f64::from(u8::from(rng.random::<f64>() < 0.2));
            let level = f64::from(u8::from(rng.random::<f64>() < 0.7));
            rows.push(vec![flag, level, rng.random_range(0.0..10.0)]);
        }
        let x = DenseMatrix::from_rows(&rows).unwrap();
        let data = BinnedMatrix::new(&x, 16);
        // the 70% column's common bin is 1, so its 0s are the stored ones
        assert_eq!(data.common[1], 1);
        let cfg = GbmConfig::default();
        let mut b = Booster {
            cfg: &cfg,
            data: &data,
            gh: (0..500)
                .map(|i| [i as f32 / 500.0 - 0.3, 0.25, 1.0, 0.0])
                .collect(),
            cols: vec![0, 1, 2],
            nodes: Vec::new(),
            pool: Vec::new(),
            scratch: Vec::new(),
        };
        let sub: Vec<usize> = (0..500).filter(|i| i % 3 != 0).collect();
        let (g, h) = sub.iter().fold((0.0, 0.0), |(g, h), &i| {
            (g + f64::from(b.gh[i][0]), h + f64::from(b.gh[i][1]))
        });
        let hist = b.build_hist(&sub, g, h);
        for j in 0..3 {
            for bin in 0..data.n_bins[j] {
                let (mut eg, mut ec) = (0.0f64, 0.0f64);
                for &i in &sub {
                    if data.bin(i, j) as usize == bin {
                        eg += f64::from(b.gh[i][0]);
                        ec += 1.0;
                    }
                }
                let cell = hist.0[data.offsets[j] + bin];
                assert!((f64::from(cell[0]) - eg).abs() < 1e-3, "col {j} bin {bin}");
                assert!((f64::from(cell[2]) - ec).abs() < 1e-3, "col {j} bin {bin}");
            }
        }
    }

    #[test]
    fn early_stopping_keeps_few_trees_on_noise_and_many_on_signal() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let n = 2000;
        let mut rows = Vec::new();
        let mut signal = Vec::new();
        let mut noise = Vec::new();
        for _ in 0..n {
            let a: f64 = rng.random_range(-1.0..1.0);
            let b: f64 = rng.random_range(-1.0..1.0);
            rows.push(vec![a, b]);
            // smooth log-odds: boosting with shrinkage needs many rounds to fit it
            signal.push(rng.random::<f64>() < sigmoid(4.0 * a - 4.0 * b));
            noise.push(rng.random::<f64>() < 0.3);
        }
        let x = DenseMatrix::from_rows(&rows).unwrap();
        let data = BinnedMatrix::new(&x, 64);
        let train: Vec<usize> = (0..n).filter(|i| i % 2 == 0).collect();
        let valid: Vec<usize> = (0..n).filter(|i| i % 2 == 1).collect();
        let cfg = GbmConfig::default();
        let on_noise = cfg.fit_binned(&data, &train, &valid, &noise).unwrap();
        let on_signal = cfg.fit_binned(&data, &train, &valid, &signal).unwrap();
        assert!(on_noise.n_trees() < 20, "noise kept {}", on_noise.n_trees());
        assert!(
            on_signal.n_trees() > 50,
            "signal kept {}",
            on_signal.n_trees()
        );
        // without validation rows every round is kept
        assert_eq!(
            cfg.fit_binned(&data, &train, &[], &noise)
                .unwrap()
                .n_trees(),
            100
        );
    }
}
