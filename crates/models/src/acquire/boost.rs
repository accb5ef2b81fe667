//! The missing-aware scorer: gradient-boosted trees on binned features in
//! which "unknown" is a value, trained with missingness augmentation.
//!
//! Why here: the curves pool rows that know *different* subsets of features
//! (that is what per-row acquisition does), so the scorer must be calibrated
//! for every subset, not only rank well within one. A linear model over the
//! known features cannot: it adds a redundant feature's full weight even when
//! its twin is known (tenure and total charges), so its probabilities get
//! over-confident as features are added and rows that know more are ranked
//! as if they knew more than they do. Trees can condition on which features
//! are known. Each training row is repeated `copies` times with a random
//! subset of its features hidden (subset size uniform over 0..=d, EDDI's
//! random drop rate); each split sends the unknown rows to the side learned
//! from the data (XGBoost's default direction). Binary targets get one score
//! (the log-odds of class 1 against class 0); more classes get one tree per
//! class per round (softmax).

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::discretize::MISSING;
use super::mixture::Binned;
use crate::ModelError;

/// One node; a leaf when `feature == u16::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Node {
    feature: u16,
    /// Bins ≤ `thresh` go left.
    thresh: u16,
    missing_left: bool,
    left: u32,
    right: u32,
    value: f64,
}

const LEAF: u16 = u16::MAX;

/// A fitted ensemble.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Boosted {
    /// Scores: 1 for two classes, else one per class.
    pub n_out: usize,
    /// Initial score of each output.
    pub base: Vec<f64>,
    /// Nodes of every tree.
    nodes: Vec<Node>,
    /// First node of each tree.
    roots: Vec<u32>,
    /// Output of each tree.
    out_of: Vec<u16>,
    /// Trees that split on feature j.
    pub uses: Vec<Vec<u32>>,
}

/// Booster settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BoostSettings {
    pub copies: usize,
    pub rounds: usize,
    pub depth: usize,
    pub learning_rate: f64,
    pub l2: f64,
    pub min_hess: f64,
    pub seed: u64,
}

impl Boosted {
    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.roots.len()
    }

    /// Output index of tree t.
    #[inline]
    pub fn output(&self, t: usize) -> usize {
        usize::from(self.out_of[t])
    }

    /// Leaf value of tree t for binned row `x` (`MISSING` = unknown).
    #[inline]
    pub fn tree_value(&self, t: usize, x: &[u16]) -> f64 {
        walk(&self.nodes, self.roots[t] as usize, x, usize::MAX, 0)
    }

    /// Leaf value of tree t with feature j set to bin v.
    #[inline]
    pub fn tree_value_with(&self, t: usize, x: &[u16], j: usize, v: u16) -> f64 {
        walk(&self.nodes, self.roots[t] as usize, x, j, v)
    }
}

/// The leaf value reached from `root` by row `x`, with feature `j` read as `v`.
#[inline]
fn walk(nodes: &[Node], root: usize, x: &[u16], j: usize, v: u16) -> f64 {
    let mut k = root;
    loop {
        let n = &nodes[k];
        if n.feature == LEAF {
            return n.value;
        }
        let f = usize::from(n.feature);
        let b = if f == j { v } else { x[f] };
        let left = if b == MISSING {
            n.missing_left
        } else {
            b <= n.thresh
        };
        k = if left { n.left } else { n.right } as usize;
    }
}

/// Fits the booster on binned rows with labels in `0..n_classes`.
pub(crate) fn fit_boosted(
    x: &Binned<'_>,
    n_rows: usize,
    y: &[usize],
    n_classes: usize,
    s: &BoostSettings,
) -> Result<Boosted, ModelError> {
    let d = x.d;
    // Augmented rows.
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed ^ 0xB005_7ED5);
    let copies = s.copies.max(1);
    let m = n_rows * copies;
    let mut codes = vec![MISSING; m * d];
    let mut lab = Vec::with_capacity(m);
    let mut perm: Vec<usize> = (0..d).collect();
    let mut r = 0;
    for (i, &yi) in y.iter().enumerate().take(n_rows) {
        let row = &x.data[i * d..(i + 1) * d];
        for _ in 0..copies {
            let keep = rng.random_range(0..=d);
            perm.shuffle(&mut rng);
            for &j in &perm[..keep] {
                codes[r * d + j] = row[j];
            }
            lab.push(yi);
            r += 1;
        }
    }
    let n_out = if n_classes == 2 { 1 } else { n_classes };
    let mut counts = vec![1.0_f64; n_classes];
    for &c in &lab {
        counts[c] += 1.0;
    }
    let base: Vec<f64> = if n_out == 1 {
        vec![(counts[1] / counts[0]).ln()]
    } else {
        let tot: f64 = counts.iter().sum();
        counts.iter().map(|c| (c / tot).ln()).collect()
    };
    let mut score: Vec<f64> = (0..m).flat_map(|_| base.iter().copied()).collect();
    let mut nodes = Vec::new();
    let mut roots = Vec::new();
    let mut out_of = Vec::new();
    let mut grad = vec![0.0; m];
    let mut hess = vec![0.0; m];
    let all: Vec<u32> = (0..m as u32).collect();
    let mut prob = vec![0.0; n_out.max(2)];
    for _ in 0..s.rounds {
        for o in 0..n_out {
            // Gradients of the log-loss for output o.
            for i in 0..m {
                let sc = &score[i * n_out..(i + 1) * n_out];
                let p = if n_out == 1 {
                    1.0 / (1.0 + (-sc[0]).exp())
                } else {
                    let mx = sc.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let mut tot = 0.0;
                    for (q, v) in prob.iter_mut().zip(sc) {
                        *q = (v - mx).exp();
                        tot += *q;
                    }
                    prob[o] / tot
                };
                let target = if n_out == 1 { lab[i] == 1 } else { lab[i] == o };
                grad[i] = p - f64::from(u8::from(target));
                hess[i] = (p * (1.0 - p)).max(1e-9);
            }
            let root = nodes.len() as u32;
            grow(
                &mut nodes,
                &codes,
                d,
                x.nb,
                &grad,
                &hess,
                all.clone(),
                s.depth,
                s,
            );
            roots.push(root);
            out_of.push(o as u16);
            for i in 0..m {
                score[i * n_out + o] += walk(
                    &nodes,
                    root as usize,
                    &codes[i * d..(i + 1) * d],
                    usize::MAX,
                    0,
                );
            }
        }
    }
    if !nodes.iter().all(|n| n.value.is_finite()) || !score.iter().all(|v| v.is_finite()) {
        return Err(ModelError::FitFailed(
            "acquisition scorer (boosted trees): non-finite scores".into(),
        ));
    }
    let mut uses = vec![Vec::new(); d];
    for (t, &root) in roots.iter().enumerate() {
        let end = roots.get(t + 1).map_or(nodes.len(), |&r| r as usize);
        let mut feats: Vec<usize> = nodes[root as usize..end]
            .iter()
            .filter(|n| n.feature != LEAF)
            .map(|n| usize::from(n.feature))
            .collect();
        feats.sort_unstable();
        feats.dedup();
        for f in feats {
            uses[f].push(t as u32);
        }
    }
    Ok(Boosted {
        n_out,
        base,
        nodes,
        roots,
        out_of,
        uses,
    })
}

/// Grows one tree depth-first; returns nothing (nodes are appended).
#[allow(clippy::too_many_arguments)]
fn grow(
    nodes: &mut Vec<Node>,
    codes: &[u16],
    d: usize,
    nb: &[usize],
    grad: &[f64],
    hess: &[f64],
    rows: Vec<u32>,
    depth: usize,
    s: &BoostSettings,
) {
    let (g, h) = rows.iter().fold((0.0, 0.0), |(g, h), &i| {
        (g + grad[i as usize], h + hess[i as usize])
    });
    let me = nodes.len();
    nodes.push(Node {
        feature: LEAF,
        thresh: 0,
        missing_left: false,
        left: 0,
        right: 0,
        value: -s.learning_rate * g / (h + s.l2),
    });
    if depth == 0 || h < 2.0 * s.min_hess {
        return;
    }
    // Histograms: per feature, bins then the missing bucket.
    let mut offs = Vec::with_capacity(d);
    let mut tot = 0;
    for &b in nb {
        offs.push(tot);
        tot += b + 1;
    }
    let mut hg = vec![0.0; tot];
    let mut hh = vec![0.0; tot];
    for &i in &rows {
        let i = i as usize;
        let (gi, hi) = (grad[i], hess[i]);
        for (j, &b) in codes[i * d..(i + 1) * d].iter().enumerate() {
            let k = offs[j] + if b == MISSING { nb[j] } else { usize::from(b) };
            hg[k] += gi;
            hh[k] += hi;
        }
    }
    let parent = g * g / (h + s.l2);
    let mut best: Option<(f64, usize, usize, bool)> = None;
    for j in 0..d {
        let o = offs[j];
        let (mg, mh) = (hg[o + nb[j]], hh[o + nb[j]]);
        let mut lg = 0.0;
        let mut lh = 0.0;
        for t in 0..nb[j].saturating_sub(1) {
            lg += hg[o + t];
            lh += hh[o + t];
            for miss_left in [false, true] {
                let (gl, hl) = if miss_left {
                    (lg + mg, lh + mh)
                } else {
                    (lg, lh)
                };
                let (gr, hr) = (g - gl, h - hl);
                if hl < s.min_hess || hr < s.min_hess {
                    continue;
                }
                let gain = gl * gl / (hl + s.l2) + gr * gr / (hr + s.l2) - parent;
                if gain > 1e-9 && best.is_none_or(|(bg, ..)| gain > bg) {
                    best = Some((gain, j, t, miss_left));
                }
            }
        }
        // Known vs unknown alone (all bins left, missing right).
        let (gl, hl) = (lg + hg[o + nb[j] - 1], lh + hh[o + nb[j] - 1]);
        let (gr, hr) = (mg, mh);
        if hl >= s.min_hess && hr >= s.min_hess {
            let gain = gl * gl / (hl + s.l2) + gr * gr / (hr + s.l2) - parent;
            if gain > 1e-9 && best.is_none_or(|(bg, ..)| gain > bg) {
                best = Some((gain, j, nb[j] - 1, false));
            }
        }
    }
    let Some((_, j, t, miss_left)) = best else {
        return;
    };
    let (lrows, rrows): (Vec<u32>, Vec<u32>) = rows.into_iter().partition(|&i| {
        let b = codes[i as usize * d + j];
        if b == MISSING {
            miss_left
        } else {
            usize::from(b) <= t
        }
    });
    let left = nodes.len() as u32;
    grow(nodes, codes, d, nb, grad, hess, lrows, depth - 1, s);
    let right = nodes.len() as u32;
    grow(nodes, codes, d, nb, grad, hess, rrows, depth - 1, s);
    let n = &mut nodes[me];
    n.feature = j as u16;
    n.thresh = t as u16;
    n.missing_left = miss_left;
    n.left = left;
    n.right = right;
}
