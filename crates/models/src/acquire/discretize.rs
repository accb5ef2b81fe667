//! Feature values → a small number of bins, fitted on training rows only.
//!
//! Why here: the acquisition model is a mixture of products of categoricals,
//! so every feature must become a categorical with few values. A numeric
//! feature with few distinct training values keeps one bin per value (cuts
//! half-way between them); otherwise it gets quantile bins whose cuts are
//! training values, so a heavy value (a sentinel such as 999 in 96 % of rows)
//! is one bin, not several. A categorical feature (a level index) keeps one
//! bin per frequent level; rare levels, and levels unseen in training, share
//! an "other" bin. A NaN is "unknown" and has no bin.

use serde::{Deserialize, Serialize};

/// The bin of "unknown" in binned data.
pub(crate) const MISSING: u16 = u16::MAX;

/// How one feature is binned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Binning {
    /// Numeric: bin = number of cuts strictly below the value.
    Numeric {
        /// Increasing cut points.
        cuts: Vec<f64>,
    },
    /// Categorical: level index → bin (`MISSING` = pooled into `other`).
    Categorical {
        /// Bin of each level index seen in training.
        level_bin: Vec<u16>,
        /// Bin of rare and unseen levels, when there is one.
        other: Option<u16>,
        /// Number of bins.
        n_bins: u16,
    },
}

impl Binning {
    /// Fits a numeric binning with at most `max_bins` bins on the finite values.
    pub(crate) fn numeric(values: &[f64], max_bins: usize) -> Binning {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        let mut distinct: Vec<f64> = v.clone();
        distinct.dedup();
        let max_bins = max_bins.max(2);
        let cuts = if distinct.len() <= max_bins {
            distinct.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect()
        } else {
            let n = v.len();
            let top = v[n - 1];
            let mut cuts: Vec<f64> = (1..max_bins)
                .map(|q| v[(q * n / max_bins).saturating_sub(1).min(n - 1)])
                .collect();
            // A heavy value (a sentinel) gets a bin of its own: cut just below it too.
            let heavy = n / max_bins;
            let mut k = 0;
            while k < n {
                let e = v.partition_point(|&x| x <= v[k]);
                if e - k > heavy && k > 0 {
                    cuts.push(v[k - 1]);
                    cuts.push(v[k]);
                }
                k = e;
            }
            cuts.retain(|&c| c < top);
            cuts.sort_by(f64::total_cmp);
            cuts.dedup();
            cuts
        };
        Binning::Numeric { cuts }
    }

    /// Fits a categorical binning: levels with at least `min_rows` training rows get a
    /// bin (at most `max_levels` of them, the most frequent), the rest share `other`.
    pub(crate) fn categorical(values: &[f64], min_rows: usize, max_levels: usize) -> Binning {
        let mut counts: Vec<usize> = Vec::new();
        for &x in values {
            if x.is_finite() && x >= 0.0 {
                let l = x as usize;
                if l >= counts.len() {
                    counts.resize(l + 1, 0);
                }
                counts[l] += 1;
            }
        }
        let mut order: Vec<usize> = (0..counts.len()).filter(|&l| counts[l] > 0).collect();
        order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
        let max_levels = max_levels.max(2);
        let frequent: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&l| counts[l] >= min_rows.max(1))
            .take(max_levels - 1)
            .collect();
        let mut level_bin = vec![MISSING; counts.len()];
        let mut sorted = frequent.clone();
        sorted.sort_unstable();
        for (b, &l) in sorted.iter().enumerate() {
            level_bin[l] = b as u16;
        }
        let pooled = order.len() > frequent.len();
        let other = pooled.then_some(sorted.len() as u16);
        let n_bins = (sorted.len() + usize::from(pooled)).max(1) as u16;
        Binning::Categorical {
            level_bin,
            other,
            n_bins,
        }
    }

    /// Number of bins.
    pub(crate) fn n_bins(&self) -> usize {
        match self {
            Binning::Numeric { cuts } => cuts.len() + 1,
            Binning::Categorical { n_bins, .. } => usize::from(*n_bins),
        }
    }

    /// The bin of a value; `MISSING` for NaN (and for an unseen level when nothing is pooled).
    #[inline]
    pub(crate) fn bin(&self, x: f64) -> u16 {
        if x.is_nan() {
            return MISSING;
        }
        match self {
            Binning::Numeric { cuts } => cuts.partition_point(|&c| c < x) as u16,
            Binning::Categorical {
                level_bin, other, ..
            } => {
                let b = if x >= 0.0 && x.fract() == 0.0 {
                    level_bin.get(x as usize).copied().unwrap_or(MISSING)
                } else {
                    MISSING
                };
                if b == MISSING {
                    other.unwrap_or(MISSING)
                } else {
                    b
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_distinct_values_keep_one_bin_each() {
        let b = Binning::numeric(&[0.0, 1.0, 1.0, 0.0, f64::NAN, 2.0], 8);
        assert_eq!(b.n_bins(), 3);
        assert_eq!(b.bin(0.0), 0);
        assert_eq!(b.bin(1.0), 1);
        assert_eq!(b.bin(2.0), 2);
        assert_eq!(b.bin(7.0), 2);
        assert_eq!(b.bin(f64::NAN), MISSING);
    }

    #[test]
    fn quantile_bins_are_balanced_and_a_sentinel_is_one_bin() {
        let v: Vec<f64> = (0..1000).map(f64::from).collect();
        let b = Binning::numeric(&v, 8);
        assert_eq!(b.n_bins(), 8);
        let mut counts = [0usize; 8];
        for &x in &v {
            counts[usize::from(b.bin(x))] += 1;
        }
        assert!(counts.iter().all(|&c| c == 125), "{counts:?}");
        // 96 % sentinel
        let v: Vec<f64> = (0..1000)
            .map(|i| if i < 960 { 999.0 } else { f64::from(i % 27) })
            .collect();
        let b = Binning::numeric(&v, 8);
        assert!(b.n_bins() >= 2);
        assert_eq!(b.bin(999.0), (b.n_bins() - 1) as u16);
        assert!(b.bin(3.0) < b.bin(999.0));
    }

    #[test]
    fn rare_and_unseen_levels_share_other() {
        let mut v = vec![0.0; 50];
        v.extend(vec![2.0; 30]);
        v.extend([5.0, 5.0]);
        let b = Binning::categorical(&v, 10, 24);
        assert_eq!(b.n_bins(), 3);
        assert_eq!(b.bin(0.0), 0);
        assert_eq!(b.bin(2.0), 1);
        assert_eq!(b.bin(5.0), 2);
        assert_eq!(b.bin(9.0), 2);
        let b = Binning::categorical(&[0.0, 1.0, 0.0, 1.0], 1, 24);
        assert_eq!(b.n_bins(), 2);
        assert_eq!(b.bin(3.0), MISSING);
    }
}
