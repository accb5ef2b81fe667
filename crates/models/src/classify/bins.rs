//! Per-feature binning shared by the decision tree and the boosted trees.
//!
//! Each column gets at most [`MAX_BINS`] ordered bins. A column with few
//! distinct values gets one bin per value, with cut points half-way between
//! neighbours (so a tree split is exact CART and prints as `tenure <= 16.5`);
//! otherwise cut points are quantiles of the training values. Bins are `u8`,
//! stored column-major, which keeps histogram building cache-friendly.

use serde::{Deserialize, Serialize};

use super::DenseMatrix;

/// Most bins a column may get (fits a `u8`).
pub const MAX_BINS: usize = 255;

/// Cut points of every column, learned on training data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Binner {
    /// `cuts[j]` are the increasing cut points of column `j`; value `v` falls in
    /// bin `b` = number of cuts `< v` (so bin `b` means `cuts[b-1] < v <= cuts[b]`).
    pub cuts: Vec<Vec<f64>>,
}

impl Binner {
    /// Learns cut points from the training matrix.
    pub fn fit(x: &DenseMatrix, max_bins: usize) -> Self {
        let max_bins = max_bins.clamp(2, MAX_BINS);
        let mut cuts = Vec::with_capacity(x.n_cols);
        let mut col = Vec::with_capacity(x.n_rows);
        for j in 0..x.n_cols {
            col.clear();
            col.extend((0..x.n_rows).map(|i| x.get(i, j)).filter(|v| v.is_finite()));
            col.sort_by(f64::total_cmp);
            let mut distinct: Vec<f64> = Vec::new();
            for &v in &col {
                if distinct.last() != Some(&v) {
                    distinct.push(v);
                }
            }
            let c = if distinct.len() <= max_bins {
                distinct.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect()
            } else {
                let mut c: Vec<f64> = Vec::with_capacity(max_bins);
                for k in 1..max_bins {
                    let pos = k * col.len() / max_bins;
                    let v = col[pos.min(col.len() - 1)];
                    // cut just below the quantile value, between it and its predecessor
                    let idx = distinct.partition_point(|&d| d < v);
                    if idx == 0 {
                        continue;
                    }
                    let cut = (distinct[idx - 1] + distinct[idx]) / 2.0;
                    if c.last().is_none_or(|&l| cut > l) {
                        c.push(cut);
                    }
                }
                c
            };
            cuts.push(c);
        }
        Binner { cuts }
    }

    /// Bin of one value of column `j` (non-finite values go to bin 0).
    #[inline]
    pub fn bin(&self, j: usize, v: f64) -> u8 {
        if !v.is_finite() {
            return 0;
        }
        self.cuts[j].partition_point(|&c| c < v) as u8
    }

    /// Number of bins of column `j`.
    pub fn n_bins(&self, j: usize) -> usize {
        self.cuts[j].len() + 1
    }

    /// Bins a whole matrix, column-major: `out[j * n_rows + i]`.
    pub fn transform(&self, x: &DenseMatrix) -> Vec<u8> {
        let mut out = vec![0u8; x.n_rows * x.n_cols];
        for j in 0..x.n_cols {
            let dst = &mut out[j * x.n_rows..(j + 1) * x.n_rows];
            for (i, d) in dst.iter_mut().enumerate() {
                *d = self.bin(j, x.get(i, j));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_values_get_exact_midpoints() {
        let x = DenseMatrix::from_rows(&[vec![1.0], vec![3.0], vec![3.0], vec![10.0]]).unwrap();
        let b = Binner::fit(&x, 255);
        assert_eq!(b.cuts[0], vec![2.0, 6.5]);
        assert_eq!(b.bin(0, 1.0), 0);
        assert_eq!(b.bin(0, 3.0), 1);
        assert_eq!(b.bin(0, 6.5), 1);
        assert_eq!(b.bin(0, 7.0), 2);
    }

    #[test]
    fn many_values_are_capped() {
        let rows: Vec<Vec<f64>> = (0..1000).map(|i| vec![i as f64]).collect();
        let x = DenseMatrix::from_rows(&rows).unwrap();
        let b = Binner::fit(&x, 16);
        assert!(b.n_bins(0) <= 16 && b.n_bins(0) >= 12);
        let t = b.transform(&x);
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
    }
}
