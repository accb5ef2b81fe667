//! Customer segments: RFM quintile scores with named segments, and k-means
//! (k-means++, restarts, k chosen by silhouette) on standardized features.
//!
//! Why here: segmenting is a pure function of per-customer numbers; the engine
//! computes recency, frequency and monetary value from the store and the
//! profiles of each segment, this module only scores and clusters.
//!
//! **RFM scores.** Each of R, F, M gets a quintile score 1..5 from the
//! customer's rank among all customers, ties sharing the lowest rank of their
//! group (`score = ceil(5 · rank / n)`, so e.g. all one-time buyers score
//! F = 1 however many they are); for recency *fewer* days is better, so the
//! most recent fifth scores R = 5. **Names** come from the R and F scores
//! (the widely used RF grid; M is reported but does not change the name):
//!
//! | R \ F | 1 | 2 | 3 | 4 | 5 |
//! |---|---|---|---|---|---|
//! | 5 | new | potential loyalists | potential loyalists | champions | champions |
//! | 4 | promising | potential loyalists | potential loyalists | loyal | loyal |
//! | 3 | about to sleep | about to sleep | need attention | loyal | loyal |
//! | 2 | hibernating | hibernating | at risk | at risk | can't lose |
//! | 1 | lost | hibernating | at risk | at risk | can't lose |
//!
//! **k-means.** Lloyd iterations from k-means++ seeds, `restarts` seeded runs,
//! the lowest inertia wins; when k is not given it is chosen among a range by
//! the mean silhouette (on a seeded sample of at most `silhouette_sample` rows).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::tabular::Matrix;

/// Segment names in the order reports list them.
pub const RFM_SEGMENTS: [&str; 11] = [
    "champions",
    "loyal",
    "potential loyalists",
    "new",
    "promising",
    "need attention",
    "about to sleep",
    "at risk",
    "can't lose",
    "hibernating",
    "lost",
];

/// Quintile scores 1..5 of `values` by rank (ties share the lowest rank of their group);
/// `higher_is_better = false` reverses the order (recency).
pub fn quintile_scores(values: &[f64], higher_is_better: bool) -> Vec<u8> {
    let n = values.len();
    if n == 0 {
        return vec![];
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| {
        let o = values[a].total_cmp(&values[b]);
        if higher_is_better { o } else { o.reverse() }
    });
    let mut scores = vec![0u8; n];
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && values[idx[j + 1]] == values[idx[i]] {
            j += 1;
        }
        // ranks i+1..=j+1 share the lowest one.
        let s = ((5.0 * (i + 1) as f64 / n as f64).ceil() as i64).clamp(1, 5) as u8;
        for &k in &idx[i..=j] {
            scores[k] = s;
        }
        i = j + 1;
    }
    scores
}

/// The segment name of an (R, F) score pair; see the module docs.
pub fn rfm_name(r: u8, f: u8) -> &'static str {
    match (r, f) {
        (5, 4..=5) => "champions",
        (3..=4, 4..=5) => "loyal",
        (4..=5, 2..=3) => "potential loyalists",
        (5, 1) => "new",
        (4, 1) => "promising",
        (3, 3) => "need attention",
        (3, 1..=2) => "about to sleep",
        (1..=2, 3..=4) => "at risk",
        (1..=2, 5) => "can't lose",
        (1, 1) => "lost",
        _ => "hibernating",
    }
}

/// RFM scores and name of one customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RfmScore {
    /// Recency score (5 = most recent fifth).
    pub r: u8,
    /// Frequency score.
    pub f: u8,
    /// Monetary score.
    pub m: u8,
    /// Segment name.
    pub segment: &'static str,
}

/// Scores every customer from recency (days since last purchase), frequency
/// (purchases) and monetary value (spend); slices are per customer.
pub fn rfm_scores(
    recency_days: &[f64],
    frequency: &[f64],
    monetary: &[f64],
) -> Result<Vec<RfmScore>, ModelError> {
    let n = recency_days.len();
    if frequency.len() != n || monetary.len() != n {
        return Err(ModelError::InvalidInput(format!(
            "recency, frequency and monetary have {n}, {} and {} values",
            frequency.len(),
            monetary.len()
        )));
    }
    let r = quintile_scores(recency_days, false);
    let f = quintile_scores(frequency, true);
    let m = quintile_scores(monetary, true);
    Ok((0..n)
        .map(|i| RfmScore {
            r: r[i],
            f: f[i],
            m: m[i],
            segment: rfm_name(r[i], f[i]),
        })
        .collect())
}

/// k-means configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KMeans {
    /// Number of clusters.
    pub k: usize,
    /// Independent k-means++ starts; the lowest inertia wins.
    pub restarts: usize,
    /// Maximum Lloyd iterations per start.
    pub max_iter: usize,
    /// Seed.
    pub seed: u64,
}

impl Default for KMeans {
    fn default() -> Self {
        KMeans {
            k: 4,
            restarts: 8,
            max_iter: 100,
            seed: 0,
        }
    }
}

/// A fitted k-means model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KMeansFit {
    /// Centroids, k × p (row-major).
    pub centroids: Vec<Vec<f64>>,
    /// Cluster of every row.
    pub labels: Vec<usize>,
    /// Sum of squared distances to the assigned centroid.
    pub inertia: f64,
    /// Lloyd iterations of the winning start.
    pub iterations: usize,
}

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn nearest(row: &[f64], centroids: &[Vec<f64>]) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (c, cen) in centroids.iter().enumerate() {
        let d = sq_dist(row, cen);
        if d < best.1 {
            best = (c, d);
        }
    }
    best
}

impl KMeans {
    /// Clusters the rows of `x`.
    pub fn fit(&self, x: &Matrix) -> Result<KMeansFit, ModelError> {
        let n = x.n_rows;
        if self.k == 0 {
            return Err(ModelError::InvalidParameter {
                name: "k".into(),
                reason: "must be ≥ 1".into(),
            });
        }
        if n < self.k {
            return Err(ModelError::InvalidInput(format!(
                "{n} rows cannot form {} clusters",
                self.k
            )));
        }
        if x.data.iter().any(|v| !v.is_finite()) {
            return Err(ModelError::InvalidInput(
                "k-means input has non-finite values".into(),
            ));
        }
        let mut best: Option<KMeansFit> = None;
        for r in 0..self.restarts.max(1) {
            let mut rng =
                ChaCha8Rng::seed_from_u64(self.seed.wrapping_mul(1_000_003).wrapping_add(r as u64));
            let fit = self.run(x, &mut rng);
            if best.as_ref().is_none_or(|b| fit.inertia < b.inertia) {
                best = Some(fit);
            }
        }
        best.ok_or_else(|| ModelError::FitFailed("no k-means run".into()))
    }

    fn seeds(&self, x: &Matrix, rng: &mut ChaCha8Rng) -> Vec<Vec<f64>> {
        let n = x.n_rows;
        let mut centroids = vec![x.row(rng.random_range(0..n)).to_vec()];
        let mut d2: Vec<f64> = x.rows().map(|r| sq_dist(r, &centroids[0])).collect();
        while centroids.len() < self.k {
            let total: f64 = d2.iter().sum();
            let pick = if total > 0.0 {
                let mut t = rng.random::<f64>() * total;
                let mut idx = n - 1;
                for (i, d) in d2.iter().enumerate() {
                    if t < *d {
                        idx = i;
                        break;
                    }
                    t -= d;
                }
                idx
            } else {
                rng.random_range(0..n)
            };
            let c = x.row(pick).to_vec();
            for (i, r) in x.rows().enumerate() {
                d2[i] = d2[i].min(sq_dist(r, &c));
            }
            centroids.push(c);
        }
        centroids
    }

    fn run(&self, x: &Matrix, rng: &mut ChaCha8Rng) -> KMeansFit {
        let (n, p, k) = (x.n_rows, x.n_cols, self.k);
        let mut centroids = self.seeds(x, rng);
        let mut labels = vec![usize::MAX; n];
        let mut iterations = 0;
        for it in 0..self.max_iter.max(1) {
            iterations = it + 1;
            let assign: Vec<(usize, f64)> = if n > 20_000 {
                x.data
                    .par_chunks(p.max(1))
                    .map(|r| nearest(r, &centroids))
                    .collect()
            } else {
                x.rows().map(|r| nearest(r, &centroids)).collect()
            };
            let mut changed = false;
            for (l, a) in labels.iter_mut().zip(&assign) {
                if *l != a.0 {
                    *l = a.0;
                    changed = true;
                }
            }
            if !changed && it > 0 {
                break;
            }
            let mut sums = vec![vec![0.0; p]; k];
            let mut counts = vec![0usize; k];
            for (r, &l) in x.rows().zip(&labels) {
                counts[l] += 1;
                for (s, v) in sums[l].iter_mut().zip(r) {
                    *s += v;
                }
            }
            for c in 0..k {
                if counts[c] > 0 {
                    centroids[c] = sums[c].iter().map(|s| s / counts[c] as f64).collect();
                } else {
                    // Empty cluster: move it to the point farthest from its centroid.
                    let far = assign
                        .iter()
                        .enumerate()
                        .max_by(|a, b| a.1.1.total_cmp(&b.1.1))
                        .map_or(0, |(i, _)| i);
                    centroids[c] = x.row(far).to_vec();
                }
            }
        }
        let inertia = x
            .rows()
            .zip(&labels)
            .map(|(r, &l)| sq_dist(r, &centroids[l]))
            .sum();
        KMeansFit {
            centroids,
            labels,
            inertia,
            iterations,
        }
    }
}

/// Mean silhouette of a clustering, on at most `sample` rows chosen with
/// `seed` (all rows when `n ≤ sample`). Distances from each sampled row go to
/// all sampled rows. `None` when there are fewer than 2 clusters in the sample.
pub fn silhouette(x: &Matrix, labels: &[usize], sample: usize, seed: u64) -> Option<f64> {
    use rand::seq::index::sample as pick;
    let n = x.n_rows;
    let rows: Vec<usize> = if n > sample {
        let mut v = pick(&mut ChaCha8Rng::seed_from_u64(seed), n, sample).into_vec();
        v.sort_unstable();
        v
    } else {
        (0..n).collect()
    };
    let k = labels.iter().copied().max()? + 1;
    let mut sizes = vec![0usize; k];
    for &r in &rows {
        sizes[labels[r]] += 1;
    }
    if sizes.iter().filter(|&&s| s > 0).count() < 2 {
        return None;
    }
    let s: Vec<f64> = rows
        .par_iter()
        .map(|&i| {
            let li = labels[i];
            if sizes[li] <= 1 {
                return 0.0;
            }
            let mut sum = vec![0.0; k];
            for &j in &rows {
                if j != i {
                    sum[labels[j]] += sq_dist(x.row(i), x.row(j)).sqrt();
                }
            }
            let a = sum[li] / (sizes[li] - 1) as f64;
            let b = (0..k)
                .filter(|&c| c != li && sizes[c] > 0)
                .map(|c| sum[c] / sizes[c] as f64)
                .fold(f64::INFINITY, f64::min);
            let m = a.max(b);
            if m > 0.0 { (b - a) / m } else { 0.0 }
        })
        .collect();
    Some(s.iter().sum::<f64>() / s.len() as f64)
}

/// Result of choosing k by silhouette.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KChoice {
    /// The chosen k.
    pub k: usize,
    /// (k, mean silhouette) for every k tried.
    pub silhouettes: Vec<(usize, f64)>,
    /// The fit at the chosen k.
    pub fit: KMeansFit,
}

/// Fits k-means for every k in `k_min..=k_max` and keeps the one with the
/// highest mean silhouette.
pub fn choose_k(
    x: &Matrix,
    k_min: usize,
    k_max: usize,
    base: &KMeans,
    sample: usize,
) -> Result<KChoice, ModelError> {
    let k_min = k_min.max(2);
    let k_max = k_max.min(x.n_rows.saturating_sub(1));
    if k_max < k_min {
        return Err(ModelError::InvalidInput(format!(
            "too few rows ({}) to choose k",
            x.n_rows
        )));
    }
    let mut best: Option<(f64, usize, KMeansFit)> = None;
    let mut sil = Vec::new();
    for k in k_min..=k_max {
        let fit = KMeans { k, ..base.clone() }.fit(x)?;
        let s = silhouette(x, &fit.labels, sample, base.seed).unwrap_or(f64::NEG_INFINITY);
        sil.push((k, s));
        if best.as_ref().is_none_or(|b| s > b.0) {
            best = Some((s, k, fit));
        }
    }
    let (_, k, fit) = best.ok_or_else(|| ModelError::FitFailed("no k tried".into()))?;
    Ok(KChoice {
        k,
        silhouettes: sil,
        fit,
    })
}

/// Adjusted Rand index between two labelings (1 = identical partitions, ≈ 0 = chance).
pub fn adjusted_rand_index(a: &[usize], b: &[usize]) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let ka = a.iter().max()? + 1;
    let kb = b.iter().max()? + 1;
    let mut table = vec![0u64; ka * kb];
    for (&x, &y) in a.iter().zip(b) {
        table[x * kb + y] += 1;
    }
    let c2 = |v: u64| (v * v.saturating_sub(1)) as f64 / 2.0;
    let sum_ij: f64 = table.iter().map(|&v| c2(v)).sum();
    let rows: f64 = (0..ka)
        .map(|i| c2(table[i * kb..(i + 1) * kb].iter().sum()))
        .sum();
    let cols: f64 = (0..kb)
        .map(|j| c2((0..ka).map(|i| table[i * kb + j]).sum()))
        .sum();
    let total = c2(a.len() as u64);
    let expected = rows * cols / total;
    let max = 0.5 * (rows + cols);
    if (max - expected).abs() < 1e-12 {
        return Some(1.0);
    }
    Some((sum_ij - expected) / (max - expected))
}

/// Standardizes the columns of `x` in place (mean 0, sd 1; constant columns
/// become 0). Returns (means, sds).
pub fn standardize(x: &mut Matrix) -> (Vec<f64>, Vec<f64>) {
    let (n, p) = (x.n_rows, x.n_cols);
    let mut mean = vec![0.0; p];
    for r in x.rows() {
        for (m, v) in mean.iter_mut().zip(r) {
            *m += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
    let mut sd = vec![0.0; p];
    for r in x.rows() {
        for j in 0..p {
            sd[j] += (r[j] - mean[j]).powi(2);
        }
    }
    sd.iter_mut()
        .for_each(|s| *s = (*s / n.max(1) as f64).sqrt());
    for row in x.data.chunks_exact_mut(p.max(1)) {
        for j in 0..p {
            row[j] = if sd[j] > 0.0 {
                (row[j] - mean[j]) / sd[j]
            } else {
                0.0
            };
        }
    }
    (mean, sd)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quintiles_with_ties() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(quintile_scores(&v, true), [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
        assert_eq!(quintile_scores(&v, false), [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]);
        let t = [1.0, 1.0, 1.0, 1.0, 2.0];
        assert_eq!(quintile_scores(&t, true), [1, 1, 1, 1, 5]);
    }

    #[test]
    fn grid_is_complete() {
        for r in 1..=5 {
            for f in 1..=5 {
                assert!(RFM_SEGMENTS.contains(&rfm_name(r, f)));
            }
        }
        assert_eq!(rfm_name(5, 5), "champions");
        assert_eq!(rfm_name(1, 1), "lost");
        assert_eq!(rfm_name(1, 5), "can't lose");
    }

    #[test]
    fn ari_values() {
        assert_eq!(adjusted_rand_index(&[0, 0, 1, 1], &[1, 1, 0, 0]), Some(1.0));
        let r = adjusted_rand_index(&[0, 0, 1, 1, 2, 2], &[0, 1, 0, 1, 0, 1]).unwrap();
        assert!(r < 0.1);
    }
}
