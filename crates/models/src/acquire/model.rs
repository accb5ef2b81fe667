//! The fitted acquisition model: p(y, x) as a class-conditional latent-class
//! mixture over binned features, and the incremental per-row state that makes
//! one acquisition decision cost O(candidates × bins × components).
//!
//! For a row with known features O the state holds, per component z (each
//! component belongs to one class), log p(z) + Σ_{j∈O} log θ_z(x_j). Then
//! p(y = c | x_O) is the softmax mass of class c's components,
//! p(x_j = v | x_O) = Σ_z w_z θ_zj(v), and revealing x_j = v adds one column
//! of log θ: no refit, no pass over the training data.

use serde::{Deserialize, Serialize};

use super::boost::{BoostSettings, Boosted, fit_boosted};
use super::discretize::{Binning, MISSING};
use super::mixture::{Binned, EmSettings, fit_class, marginal};
use super::{AcqOptions, AcqTable, Criterion};
use crate::ModelError;

/// What was fitted, for reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcqModelSummary {
    /// Mixture components of each class.
    pub components_per_class: Vec<usize>,
    /// Bins of each feature.
    pub bins_per_feature: Vec<usize>,
    /// EM iterations of each class's kept restart.
    pub em_iterations: Vec<usize>,
}

/// A fitted acquisition model (see the module docs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcqModel {
    names: Vec<String>,
    n_classes: usize,
    bins: Vec<Binning>,
    /// First bin of feature j in the flat bin list.
    offs: Vec<usize>,
    /// Components.
    m: usize,
    /// Components of class c are `class_start[c]..class_start[c + 1]`.
    class_start: Vec<usize>,
    /// log p(z) (class prior × within-class weight).
    log_prior: Vec<f64>,
    /// p(bin | z), bin-major: `theta[(offs[j] + v) * m + z]`.
    theta: Vec<f64>,
    /// ln of `theta`.
    log_theta: Vec<f64>,
    /// The missing-aware scorer.
    boost: Boosted,
    /// Training rows (for the gain's shrinkage).
    #[serde(default)]
    n_train: usize,
    /// Pseudo-rows of the gain's shrinkage ([`AcqOptions::gain_shrink`]).
    #[serde(default)]
    gain_shrink: f64,
    summary: AcqModelSummary,
}

/// What is known about one row: the per-component log-weights and which features are known.
#[derive(Debug, Clone, PartialEq)]
pub struct AcqState {
    log_w: Vec<f64>,
    logits: Vec<f64>,
    codes: Vec<u16>,
    tree_values: Vec<f64>,
    known: Vec<bool>,
}

impl AcqState {
    /// True when feature `j` has been revealed (or was known from the start).
    pub fn is_known(&self, j: usize) -> bool {
        self.known.get(j).copied().unwrap_or(false)
    }
}

/// Scratch buffers for [`AcqModel::gains_with`] (no allocation per decision).
#[derive(Debug, Clone, Default)]
pub struct GainScratch {
    w: Vec<f64>,
    pc: Vec<f64>,
    q: Vec<f64>,
    qbar: Vec<f64>,
}

impl AcqModel {
    /// Fits the model; `y[i]` in `0..n_classes`.
    pub fn fit(
        x: &AcqTable,
        y: &[usize],
        n_classes: usize,
        opts: &AcqOptions,
    ) -> Result<AcqModel, ModelError> {
        x.validate()?;
        opts.validate()?;
        if n_classes < 2 {
            return Err(ModelError::InvalidParameter {
                name: "n_classes".into(),
                reason: format!("{n_classes}; need at least 2"),
            });
        }
        if y.len() != x.n_rows {
            return Err(ModelError::InvalidInput(format!(
                "{} labels for {} rows",
                y.len(),
                x.n_rows
            )));
        }
        if let Some(bad) = y.iter().find(|&&c| c >= n_classes) {
            return Err(ModelError::InvalidInput(format!(
                "label {bad} is not in 0..{n_classes}"
            )));
        }
        let d = x.names.len();
        let n = x.n_rows;
        let bins: Vec<Binning> = (0..d)
            .map(|j| {
                let col: Vec<f64> = (0..n).map(|i| x.data[i * d + j]).collect();
                if x.categorical[j] {
                    Binning::categorical(&col, opts.min_level_rows, opts.max_levels)
                } else {
                    Binning::numeric(&col, opts.max_bins)
                }
            })
            .collect();
        let nb: Vec<usize> = bins.iter().map(Binning::n_bins).collect();
        let mut offs = Vec::with_capacity(d);
        let mut total = 0;
        for &b in &nb {
            offs.push(total);
            total += b;
        }
        let data: Vec<u16> = (0..n * d).map(|k| bins[k % d].bin(x.data[k])).collect();
        let binned = Binned {
            data: &data,
            d,
            offs: &offs,
            nb: &nb,
        };
        let mut rows_of: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
        for (i, &c) in y.iter().enumerate() {
            rows_of[c].push(i);
        }
        let all: Vec<usize> = (0..n).collect();
        let fits: Vec<_> = {
            use rayon::prelude::*;
            (0..n_classes)
                .into_par_iter()
                .map(|c| {
                    let rows = &rows_of[c];
                    if rows.is_empty() {
                        // No training row of this class: its p(x | y) is the overall marginal.
                        return super::mixture::ClassMixture {
                            weights: vec![1.0],
                            theta: marginal(&binned, &all, opts.alpha),
                            loglik: 0.0,
                            iterations: 0,
                        };
                    }
                    let k = opts.components.unwrap_or_else(|| {
                        (rows.len() / opts.min_rows_per_component.max(1))
                            .clamp(1, opts.max_components.max(1))
                    });
                    fit_class(
                        &binned,
                        rows,
                        &EmSettings {
                            k,
                            alpha: opts.alpha,
                            max_iter: opts.max_iter,
                            tol: opts.tol,
                            restarts: opts.restarts,
                            seed: opts.seed.wrapping_add(c as u64 * 1_000_003),
                        },
                    )
                })
                .collect()
        };
        let m: usize = fits.iter().map(|f| f.weights.len()).sum();
        let mut class_start = Vec::with_capacity(n_classes + 1);
        let mut log_prior = Vec::with_capacity(m);
        let mut theta = vec![0.0; total * m];
        let mut z = 0;
        for (c, f) in fits.iter().enumerate() {
            class_start.push(z);
            let pc = (rows_of[c].len() as f64 + 1.0) / (n as f64 + n_classes as f64);
            for (k, w) in f.weights.iter().enumerate() {
                log_prior.push(pc.ln() + w.ln());
                for b in 0..total {
                    theta[b * m + z] = f.theta[k * total + b];
                }
                z += 1;
            }
        }
        class_start.push(m);
        let log_theta: Vec<f64> = theta.iter().map(|t| t.ln()).collect();
        let boost = fit_boosted(
            &binned,
            n,
            y,
            n_classes,
            &BoostSettings {
                copies: opts.mask_copies,
                rounds: opts.trees,
                depth: opts.depth,
                learning_rate: opts.learning_rate,
                l2: opts.l2,
                min_hess: opts.min_hess,
                seed: opts.seed,
            },
        )?;
        if !log_theta.iter().chain(&log_prior).all(|v| v.is_finite()) {
            return Err(ModelError::FitFailed(format!(
                "acquisition mixture: non-finite parameters ({n} rows, {d} features)"
            )));
        }
        Ok(AcqModel {
            names: x.names.clone(),
            n_classes,
            summary: AcqModelSummary {
                components_per_class: fits.iter().map(|f| f.weights.len()).collect(),
                bins_per_feature: nb,
                em_iterations: fits.iter().map(|f| f.iterations).collect(),
            },
            bins,
            offs,
            m,
            class_start,
            log_prior,
            theta,
            log_theta,
            boost,
            n_train: n,
            gain_shrink: opts.gain_shrink,
        })
    }

    /// Feature names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Number of features.
    pub fn n_features(&self) -> usize {
        self.names.len()
    }

    /// What was fitted.
    pub fn summary(&self) -> &AcqModelSummary {
        &self.summary
    }

    /// Class probabilities given the row's known (non-NaN) features.
    pub fn predict(&self, row: &[f64]) -> Vec<f64> {
        self.predict_state(&self.state(row))
    }

    /// Expected information gain about y (nats) of acquiring each feature in
    /// `candidates`, given the known features of `row` (0 for a known or
    /// out-of-range feature).
    pub fn expected_gains(&self, row: &[f64], candidates: &[usize]) -> Vec<f64> {
        let st = self.state(row);
        let mut scratch = GainScratch::default();
        self.gains_with(&st, candidates, Criterion::Information, &mut scratch)
    }

    /// The state of a row from its known (non-NaN) features; a row shorter than
    /// the feature list leaves the rest unknown.
    pub fn state(&self, row: &[f64]) -> AcqState {
        let d = self.names.len();
        let codes = vec![MISSING; d];
        let tree_values: Vec<f64> = (0..self.boost.n_trees())
            .map(|t| self.boost.tree_value(t, &codes))
            .collect();
        let mut logits = vec![0.0; self.n_classes];
        for (o, b) in self.boost.base.iter().enumerate() {
            logits[self.class_of_output(o)] += b;
        }
        for (t, v) in tree_values.iter().enumerate() {
            logits[self.class_of_output(self.boost.output(t))] += v;
        }
        let mut st = AcqState {
            log_w: self.log_prior.clone(),
            logits,
            codes,
            tree_values,
            known: vec![false; d],
        };
        for (j, &v) in row.iter().enumerate().take(self.names.len()) {
            if !v.is_nan() {
                self.observe(&mut st, j, v);
            }
        }
        st
    }

    /// Reveals feature `j` = `value` (NaN: asked, but the answer is unknown).
    pub fn observe(&self, st: &mut AcqState, j: usize, value: f64) {
        if j >= self.names.len() || st.known[j] {
            return;
        }
        st.known[j] = true;
        let b = self.bins[j].bin(value);
        if b == MISSING {
            return;
        }
        let k = self.offs[j] + usize::from(b);
        let o = k * self.m;
        for (lw, lt) in st.log_w.iter_mut().zip(&self.log_theta[o..o + self.m]) {
            *lw += lt;
        }
        st.codes[j] = b;
        for &t in &self.boost.uses[j] {
            let t = t as usize;
            let v = self.boost.tree_value(t, &st.codes);
            st.logits[self.class_of_output(self.boost.output(t))] += v - st.tree_values[t];
            st.tree_values[t] = v;
        }
    }

    #[inline]
    fn class_of_output(&self, o: usize) -> usize {
        if self.boost.n_out == 1 { 1 } else { o }
    }

    /// Logits of the state with feature j read as bin v, into `out`.
    fn logits_with(&self, st: &AcqState, j: usize, v: u16, out: &mut Vec<f64>) {
        let start = out.len();
        out.extend_from_slice(&st.logits);
        let o = &mut out[start..];
        for &t in &self.boost.uses[j] {
            let t = t as usize;
            let nv = self.boost.tree_value_with(t, &st.codes, j, v);
            o[self.class_of_output(self.boost.output(t))] += nv - st.tree_values[t];
        }
    }

    /// Class probabilities of a state (the scorer's).
    pub fn predict_state(&self, st: &AcqState) -> Vec<f64> {
        let mut q = st.logits.clone();
        softmax(&mut q);
        q
    }

    /// Probability of the last class (class 1 of a binary model).
    pub fn positive_prob(&self, st: &AcqState, scratch: &mut GainScratch) -> f64 {
        scratch.q.clear();
        scratch.q.extend_from_slice(&st.logits);
        softmax(&mut scratch.q);
        scratch.q[self.n_classes - 1]
    }

    /// Probability of the last class if feature `j` were revealed as `value`
    /// (the state is not changed).
    pub fn positive_prob_after(
        &self,
        st: &AcqState,
        j: usize,
        value: f64,
        scratch: &mut GainScratch,
    ) -> f64 {
        let b = if j < self.names.len() && !st.known[j] {
            self.bins[j].bin(value)
        } else {
            MISSING
        };
        if b == MISSING {
            return self.positive_prob(st, scratch);
        }
        scratch.q.clear();
        self.logits_with(st, j, b, &mut scratch.q);
        softmax(&mut scratch.q);
        scratch.q[self.n_classes - 1]
    }

    /// The mixture's posterior over components given the state, into `scratch.w`.
    fn component_posterior(&self, st: &AcqState, w: &mut Vec<f64>) {
        w.clear();
        w.extend_from_slice(&st.log_w);
        softmax(w);
    }

    /// p(x_j = v | x_O) under the mixture, for every bin v of feature `j`.
    pub fn value_probs(&self, st: &AcqState, j: usize) -> Vec<f64> {
        let mut w = Vec::new();
        self.component_posterior(st, &mut w);
        (0..self.bins[j].n_bins())
            .map(|v| {
                let o = (self.offs[j] + v) * self.m;
                w.iter()
                    .zip(&self.theta[o..o + self.m])
                    .map(|(a, b)| a * b)
                    .sum()
            })
            .collect()
    }

    /// Expected gain of each candidate under `criterion`, reusing `scratch`.
    pub fn gains_with(
        &self,
        st: &AcqState,
        candidates: &[usize],
        criterion: Criterion,
        scratch: &mut GainScratch,
    ) -> Vec<f64> {
        self.component_posterior(st, &mut scratch.w);
        candidates
            .iter()
            .map(|&j| {
                if j >= self.names.len() || st.known[j] {
                    0.0
                } else {
                    self.gain_one(st, j, criterion, scratch)
                }
            })
            .collect()
    }

    /// The candidate with the highest gain (ties: the first); `None` when no
    /// candidate is still unknown.
    pub fn best_candidate(
        &self,
        st: &AcqState,
        candidates: &[usize],
        criterion: Criterion,
        scratch: &mut GainScratch,
    ) -> Option<usize> {
        self.component_posterior(st, &mut scratch.w);
        let mut best: Option<(usize, f64)> = None;
        for &j in candidates {
            if j >= self.names.len() || st.known[j] {
                continue;
            }
            let g = self.gain_one(st, j, criterion, scratch);
            if best.is_none_or(|(_, bg)| g > bg) {
                best = Some((j, g));
            }
        }
        best.map(|(j, _)| j)
    }

    /// Gain of feature j: the joint q(v, y) = p(x_j = v | x_O) · p(y | x_O, v)
    /// (the mixture's value distribution, the scorer's class probabilities);
    /// information = its mutual information Σ_v p_v KL(q(·|v) ‖ q̄), Brier =
    /// Σ_v p_v ‖q(·|v) − q̄‖², with q̄ = Σ_v p_v q(·|v). Needs the component
    /// posterior in `scratch.w`.
    fn gain_one(
        &self,
        st: &AcqState,
        j: usize,
        criterion: Criterion,
        scratch: &mut GainScratch,
    ) -> f64 {
        let m = self.m;
        let nc = self.n_classes;
        let nb = self.bins[j].n_bins();
        let GainScratch { w, pc, q, qbar } = scratch;
        pc.clear();
        q.clear();
        qbar.clear();
        qbar.resize(nc, 0.0);
        let mut ptot = 0.0;
        for v in 0..nb {
            let k = self.offs[j] + v;
            let o = k * m;
            let pv: f64 = w
                .iter()
                .zip(&self.theta[o..o + m])
                .map(|(a, b)| a * b)
                .sum();
            pc.push(pv);
            ptot += pv;
            if criterion == Criterion::MixtureInformation {
                // The mixture's own p(y | x_O, v): class masses of w·θ(v).
                let th = &self.theta[o..o + m];
                for c in 0..nc {
                    let r = self.class_start[c]..self.class_start[c + 1];
                    let a: f64 = w[r.clone()].iter().zip(&th[r]).map(|(a, b)| a * b).sum();
                    q.push(a / pv.max(1e-300));
                }
            } else {
                let start = q.len();
                self.logits_with(st, j, v as u16, q);
                softmax(&mut q[start..]);
            }
        }
        if ptot <= 0.0 {
            return 0.0;
        }
        for v in 0..nb {
            pc[v] /= ptot;
            for c in 0..nc {
                qbar[c] += pc[v] * q[v * nc + c];
            }
        }
        if self.gain_shrink > 0.0 {
            // Shrink each answer's class probabilities toward q̄ by its
            // expected training rows (thin bins are mostly noise).
            let n = self.n_train as f64;
            for v in 0..nb {
                let nv = n * pc[v];
                let keep = nv / (nv + self.gain_shrink);
                for c in 0..nc {
                    let a = &mut q[v * nc + c];
                    *a = keep * *a + (1.0 - keep) * qbar[c];
                }
            }
        }
        let mut gain = 0.0;
        for v in 0..nb {
            let qv = &q[v * nc..(v + 1) * nc];
            let mut s = 0.0;
            for c in 0..nc {
                match criterion {
                    Criterion::Information | Criterion::MixtureInformation => {
                        if qv[c] > 0.0 && qbar[c] > 0.0 {
                            s += qv[c] * (qv[c] / qbar[c]).ln();
                        }
                    }
                    Criterion::Brier => s += (qv[c] - qbar[c]).powi(2),
                }
            }
            gain += pc[v] * s;
        }
        gain.max(0.0)
    }
}

/// In-place softmax.
fn softmax(z: &mut [f64]) {
    let mx = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut tot = 0.0;
    for v in z.iter_mut() {
        *v = (*v - mx).exp();
        tot += *v;
    }
    for v in z.iter_mut() {
        *v /= tot;
    }
}
