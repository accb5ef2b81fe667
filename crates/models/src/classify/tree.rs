//! A depth-limited CART decision tree (Gini impurity) whose rules print for a person.
//!
//! Split search uses the shared [`super::bins::Binner`]: columns with
//! at most 255 distinct values are split exactly (cut half-way between two
//! neighbouring values), larger ones at quantile cuts. Leaf probabilities are
//! Laplace-smoothed (`(pos + 1) / (n + 2)`) so log loss stays finite. 0/1
//! columns (one-hot levels, flags) print as `Contract=Month-to-month` /
//! `not Contract=Month-to-month`; others as `tenure <= 16.5`.

use serde::{Deserialize, Serialize};

use super::bins::Binner;
use super::{DenseMatrix, check_xy};
use crate::ModelError;

/// Settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TreeConfig {
    /// Maximum depth (root = depth 0).
    pub max_depth: usize,
    /// Fewest training rows in a leaf.
    pub min_samples_leaf: usize,
    /// Bins per column for the split search.
    pub max_bins: usize,
}

impl Default for TreeConfig {
    fn default() -> Self {
        TreeConfig {
            max_depth: 5,
            min_samples_leaf: 20,
            max_bins: 255,
        }
    }
}

/// One node (internal or leaf).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TreeNode {
    /// Split column (internal nodes).
    pub feature: usize,
    /// Rows with `value <= threshold` (or a non-finite value) go left.
    pub threshold: f64,
    /// Left child index.
    pub left: usize,
    /// Right child index.
    pub right: usize,
    /// Whether this is a leaf.
    pub leaf: bool,
    /// Smoothed positive share of the node's training rows.
    pub prob: f64,
    /// Training rows in the node.
    pub n: usize,
}

/// A fitted tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TreeModel {
    nodes: Vec<TreeNode>,
    names: Vec<String>,
    binary: Vec<bool>,
}

struct Grower<'a> {
    cfg: &'a TreeConfig,
    bins: Vec<u8>,
    n_rows: usize,
    binner: Binner,
    y: &'a [bool],
    nodes: Vec<TreeNode>,
}

fn gini_sum(n: f64, pos: f64) -> f64 {
    // n · gini = n · 2p(1-p) = 2·pos·(n-pos)/n
    if n <= 0.0 {
        0.0
    } else {
        2.0 * pos * (n - pos) / n
    }
}

impl Grower<'_> {
    fn leaf_prob(n: usize, pos: usize) -> f64 {
        (pos as f64 + 1.0) / (n as f64 + 2.0)
    }

    fn grow(&mut self, rows: Vec<usize>, depth: usize) -> usize {
        let n = rows.len();
        let pos = rows.iter().filter(|&&i| self.y[i]).count();
        let id = self.nodes.len();
        self.nodes.push(TreeNode {
            feature: 0,
            threshold: 0.0,
            left: 0,
            right: 0,
            leaf: true,
            prob: Self::leaf_prob(n, pos),
            n,
        });
        if depth >= self.cfg.max_depth || pos == 0 || pos == n || n < 2 * self.cfg.min_samples_leaf
        {
            return id;
        }
        let parent = gini_sum(n as f64, pos as f64);
        let mut best: Option<(f64, usize, usize)> = None; // (gain, feature, bin)
        let n_cols = self.binner.cuts.len();
        let mut cnt = vec![0usize; 256];
        let mut cp = vec![0usize; 256];
        for j in 0..n_cols {
            let nb = self.binner.n_bins(j);
            if nb < 2 {
                continue;
            }
            cnt[..nb].iter_mut().for_each(|v| *v = 0);
            cp[..nb].iter_mut().for_each(|v| *v = 0);
            let col = &self.bins[j * self.n_rows..(j + 1) * self.n_rows];
            for &i in &rows {
                let b = col[i] as usize;
                cnt[b] += 1;
                cp[b] += usize::from(self.y[i]);
            }
            let (mut ln, mut lp) = (0usize, 0usize);
            for b in 0..nb - 1 {
                ln += cnt[b];
                lp += cp[b];
                let rn = n - ln;
                if ln < self.cfg.min_samples_leaf {
                    continue;
                }
                if rn < self.cfg.min_samples_leaf {
                    break;
                }
                let gain = parent
                    - gini_sum(ln as f64, lp as f64)
                    - gini_sum(rn as f64, (pos - lp) as f64);
                if gain > 1e-9 && best.is_none_or(|(g, _, _)| gain > g) {
                    best = Some((gain, j, b));
                }
            }
        }
        let Some((_, j, b)) = best else { return id };
        let col = &self.bins[j * self.n_rows..(j + 1) * self.n_rows];
        let (l, r): (Vec<usize>, Vec<usize>) = rows.iter().partition(|&&i| col[i] as usize <= b);
        let threshold = self.binner.cuts[j][b];
        let left = self.grow(l, depth + 1);
        let right = self.grow(r, depth + 1);
        let node = &mut self.nodes[id];
        node.leaf = false;
        node.feature = j;
        node.threshold = threshold;
        node.left = left;
        node.right = right;
        id
    }
}

impl TreeConfig {
    /// Fits on `x`, `y`.
    pub fn fit(&self, x: &DenseMatrix, y: &[bool]) -> Result<TreeModel, ModelError> {
        check_xy(x, y)?;
        if self.max_depth == 0 || self.max_depth > 30 {
            return Err(ModelError::InvalidParameter {
                name: "max_depth".into(),
                reason: "must be 1..=30".into(),
            });
        }
        let binner = Binner::fit(x, self.max_bins);
        let bins = binner.transform(x);
        let rows: Vec<usize> = (0..x.n_rows).collect();
        self.grow_on(x, binner, bins, rows, y)
    }

    /// Fits on the rows `train` of `x` (`y` indexed like `x`) with cut points
    /// and bins already computed for all of `x` ([`Binner::fit`] with
    /// `self.max_bins`, then [`Binner::transform`]), e.g. `auto`'s inner
    /// folds, which bin the training matrix once.
    pub fn fit_prebinned(
        &self,
        x: &DenseMatrix,
        binner: &Binner,
        bins: &[u8],
        train: &[usize],
        y: &[bool],
    ) -> Result<TreeModel, ModelError> {
        if self.max_depth == 0 || self.max_depth > 30 {
            return Err(ModelError::InvalidParameter {
                name: "max_depth".into(),
                reason: "must be 1..=30".into(),
            });
        }
        if y.len() != x.n_rows
            || bins.len() != x.n_rows * x.n_cols
            || binner.cuts.len() != x.n_cols
            || train.iter().any(|&i| i >= x.n_rows)
        {
            return Err(ModelError::InvalidInput(
                "tree: bins, labels or training rows do not match the matrix".into(),
            ));
        }
        // Borrowed bins would need a second Grower type; a copy of u8 bins is cheap.
        self.grow_on(x, binner.clone(), bins.to_vec(), train.to_vec(), y)
    }

    fn grow_on(
        &self,
        x: &DenseMatrix,
        binner: Binner,
        bins: Vec<u8>,
        rows: Vec<usize>,
        y: &[bool],
    ) -> Result<TreeModel, ModelError> {
        let binary = (0..x.n_cols)
            .map(|j| {
                rows.iter()
                    .all(|&i| matches!(x.get(i, j), v if v == 0.0 || v == 1.0))
            })
            .collect();
        let mut g = Grower {
            cfg: self,
            bins,
            n_rows: x.n_rows,
            binner,
            y,
            nodes: Vec::new(),
        };
        g.grow(rows, 0);
        Ok(TreeModel {
            nodes: g.nodes,
            names: x.names.clone(),
            binary,
        })
    }
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

fn fmt_num(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

impl TreeModel {
    fn leaf_of(&self, row: &[f64]) -> usize {
        let mut k = 0;
        while !self.nodes[k].leaf {
            let nd = &self.nodes[k];
            k = if super::goes_left(row[nd.feature], nd.threshold) {
                nd.left
            } else {
                nd.right
            };
        }
        k
    }

    /// Probability of one row.
    pub fn predict_row(&self, row: &[f64]) -> f64 {
        self.nodes[self.leaf_of(row)].prob
    }

    /// Change of log-odds along the row's path, credited to each split column.
    pub fn contributions(&self, row: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; row.len()];
        let mut k = 0;
        while !self.nodes[k].leaf {
            let nd = &self.nodes[k];
            let next = if super::goes_left(row[nd.feature], nd.threshold) {
                nd.left
            } else {
                nd.right
            };
            out[nd.feature] += logit(self.nodes[next].prob) - logit(nd.prob);
            k = next;
        }
        out
    }

    /// Depth of the deepest leaf.
    pub fn depth(&self) -> usize {
        fn d(m: &TreeModel, k: usize) -> usize {
            let nd = &m.nodes[k];
            if nd.leaf {
                0
            } else {
                1 + d(m, nd.left).max(d(m, nd.right))
            }
        }
        d(self, 0)
    }

    /// The nodes (index 0 is the root).
    pub fn nodes(&self) -> &[TreeNode] {
        &self.nodes
    }

    fn condition(&self, k: usize, left: bool) -> String {
        let nd = &self.nodes[k];
        let name = &self.names[nd.feature];
        if self.binary[nd.feature] {
            if left {
                format!("not {name}")
            } else {
                name.clone()
            }
        } else if left {
            format!("{name} <= {}", fmt_num(nd.threshold))
        } else {
            format!("{name} > {}", fmt_num(nd.threshold))
        }
    }

    /// The conditions on the path of one row (`["tenure <= 16.5", "Contract=Month-to-month"]`).
    pub fn path(&self, row: &[f64]) -> Vec<String> {
        let mut out = Vec::new();
        let mut k = 0;
        while !self.nodes[k].leaf {
            let nd = &self.nodes[k];
            let left = super::goes_left(row[nd.feature], nd.threshold);
            out.push(self.condition(k, left));
            k = if left { nd.left } else { nd.right };
        }
        out
    }

    /// One readable rule per leaf: `IF a AND b THEN p = 0.53 (n = 812)`.
    pub fn rules(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack: Vec<(usize, Vec<String>)> = vec![(0, Vec::new())];
        while let Some((k, conds)) = stack.pop() {
            let nd = &self.nodes[k];
            if nd.leaf {
                let c = if conds.is_empty() {
                    "always".to_string()
                } else {
                    conds.join(" AND ")
                };
                out.push(format!("IF {c} THEN p = {:.3} (n = {})", nd.prob, nd.n));
            } else {
                let mut r = conds.clone();
                r.push(self.condition(k, false));
                stack.push((nd.right, r));
                let mut l = conds;
                l.push(self.condition(k, true));
                stack.push((nd.left, l));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_planted_threshold_and_prints_it() {
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for i in 0..400 {
            let a = (i % 100) as f64; // 0..99
            let flag = f64::from(u8::from(i % 3 == 0));
            rows.push(vec![a, flag]);
            y.push(a < 30.0);
        }
        let mut x = DenseMatrix::from_rows(&rows).unwrap();
        x.names = vec!["tenure".into(), "promo".into()];
        let m = TreeConfig {
            max_depth: 2,
            min_samples_leaf: 5,
            max_bins: 255,
        }
        .fit(&x, &y)
        .unwrap();
        assert_eq!(m.nodes()[0].feature, 0);
        assert!((m.nodes()[0].threshold - 29.5).abs() < 1e-9);
        let rules = m.rules();
        assert!(
            rules.iter().any(|r| r.contains("tenure <= 29.5")),
            "{rules:?}"
        );
        assert!(m.predict_row(&[10.0, 0.0]) > 0.9);
        assert!(m.predict_row(&[80.0, 0.0]) < 0.1);
        assert_eq!(m.path(&[10.0, 1.0])[0], "tenure <= 29.5");
        let c = m.contributions(&[10.0, 0.0]);
        assert!(c[0] > 1.0);
    }
}
