//! Top-N ranking metrics, defined exactly as in `shared/anchors/RESULTS.md` §2
//! so infogap's figures compare with the peers':
//!
//! - `P@k = hits / k` (not divided by `min(k, |test|)`);
//! - `R@k = hits / |test|`;
//! - `nDCG@k` with binary gains `1/log2(rank+1)` and the ideal DCG over
//!   `min(k, |test|)` hits;
//! - `MAP@k = Σ over hit ranks r of (hits@r / r)`, divided by `min(k, |test|)`;
//! - averaged over users with at least one test item; the caller removes the
//!   user's training items from the ranking before calling;
//! - catalogue coverage: distinct recommended items / catalogue size.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

fn is_hit(relevant: &[u32]) -> impl Fn(&u32) -> bool + '_ {
    // Small lists: linear scan is faster than hashing; sorted lists could
    // binary-search, but callers pass any order.
    move |i| relevant.contains(i)
}

/// Number of the first `k` recommendations that are relevant.
pub fn hits_at_k(recs: &[u32], relevant: &[u32], k: usize) -> usize {
    recs.iter().take(k).filter(|i| is_hit(relevant)(i)).count()
}

/// `hits / k`.
pub fn precision_at_k(recs: &[u32], relevant: &[u32], k: usize) -> f64 {
    if k == 0 {
        return 0.0;
    }
    hits_at_k(recs, relevant, k) as f64 / k as f64
}

/// `hits / |relevant|` (0 when nothing is relevant).
pub fn recall_at_k(recs: &[u32], relevant: &[u32], k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    hits_at_k(recs, relevant, k) as f64 / relevant.len() as f64
}

/// nDCG@k with binary gains; IDCG over `min(k, |relevant|)`.
pub fn ndcg_at_k(recs: &[u32], relevant: &[u32], k: usize) -> f64 {
    let ideal = k.min(relevant.len());
    if ideal == 0 {
        return 0.0;
    }
    let hit = is_hit(relevant);
    let dcg: f64 = recs
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, i)| hit(i))
        .map(|(r, _)| 1.0 / ((r + 2) as f64).log2())
        .sum();
    let idcg: f64 = (0..ideal).map(|r| 1.0 / ((r + 2) as f64).log2()).sum();
    dcg / idcg
}

/// Average precision at k, divided by `min(k, |relevant|)`.
pub fn ap_at_k(recs: &[u32], relevant: &[u32], k: usize) -> f64 {
    let denom = k.min(relevant.len());
    if denom == 0 {
        return 0.0;
    }
    let hit = is_hit(relevant);
    let mut hits = 0usize;
    let mut sum = 0.0;
    for (r, i) in recs.iter().take(k).enumerate() {
        if hit(i) {
            hits += 1;
            sum += hits as f64 / (r + 1) as f64;
        }
    }
    sum / denom as f64
}

/// Averages of the ranking metrics over the evaluated users.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RankingReport {
    /// Cut-off.
    pub k: usize,
    /// Users evaluated (those with at least one relevant item).
    pub users: usize,
    /// Mean P@k.
    pub precision: f64,
    /// Mean R@k.
    pub recall: f64,
    /// Mean nDCG@k.
    pub ndcg: f64,
    /// Mean MAP@k.
    pub map: f64,
    /// Distinct items recommended to the evaluated users (top k) / `n_items`.
    pub coverage: f64,
}

/// Evaluates per-user recommendation lists (`recs[u]`, already without the
/// user's training items) against per-user relevant items (`test[u]`).
pub fn evaluate(recs: &[Vec<u32>], test: &[Vec<u32>], k: usize, n_items: usize) -> RankingReport {
    let mut rep = RankingReport {
        k,
        users: 0,
        precision: 0.0,
        recall: 0.0,
        ndcg: 0.0,
        map: 0.0,
        coverage: 0.0,
    };
    let mut seen: HashSet<u32> = HashSet::new();
    for (r, t) in recs.iter().zip(test) {
        if t.is_empty() {
            continue;
        }
        rep.users += 1;
        rep.precision += precision_at_k(r, t, k);
        rep.recall += recall_at_k(r, t, k);
        rep.ndcg += ndcg_at_k(r, t, k);
        rep.map += ap_at_k(r, t, k);
        seen.extend(r.iter().take(k).copied());
    }
    if rep.users > 0 {
        let n = rep.users as f64;
        rep.precision /= n;
        rep.recall /= n;
        rep.ndcg /= n;
        rep.map /= n;
    }
    rep.coverage = if n_items > 0 {
        seen.len() as f64 / n_items as f64
    } else {
        0.0
    };
    rep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_checked_values() {
        // Hits at ranks 1 and 3 of 5, three relevant items.
        let recs = [7, 1, 8, 2, 3];
        let rel = [8, 7, 9];
        assert_eq!(precision_at_k(&recs, &rel, 5), 2.0 / 5.0);
        assert!((recall_at_k(&recs, &rel, 5) - 2.0 / 3.0).abs() < 1e-12);
        let dcg = 1.0 + 1.0 / 4f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert!((ndcg_at_k(&recs, &rel, 5) - dcg / idcg).abs() < 1e-12);
        // AP: (1/1 + 2/3) / min(5, 3).
        assert!((ap_at_k(&recs, &rel, 5) - (1.0 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        // k smaller than |test|: IDCG and MAP over k.
        assert!((ndcg_at_k(&recs, &rel, 1) - 1.0).abs() < 1e-12);
        assert!((ap_at_k(&recs, &rel, 2) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn evaluate_skips_users_without_test_items() {
        let recs = vec![vec![0, 1], vec![2, 3], vec![1, 0]];
        let test = vec![vec![1], vec![], vec![3]];
        let r = evaluate(&recs, &test, 2, 8);
        assert_eq!(r.users, 2);
        assert!((r.precision - 0.25).abs() < 1e-12);
        assert!((r.recall - 0.5).abs() < 1e-12);
        assert!((r.coverage - 2.0 / 8.0).abs() < 1e-12);
    }
}
