//! Top-N selection with the filters marketers need: leave out what the
//! customer already has (switchable), allow and deny lists, and an arbitrary
//! candidate predicate (e.g. "only this category"). The answer holds exactly
//! `min(n, number of candidates)` items, best first, with their scores: an item
//! with a zero score is still a candidate, so a filter never makes the list
//! shorter than it could be.

use std::collections::HashSet;

/// One recommended item.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scored {
    /// Dense item index.
    pub item: u32,
    /// The model's score (higher is better; comparable only within one answer).
    pub score: f32,
}

/// Which items may be recommended.
#[derive(Default)]
pub struct TopNFilter<'a> {
    /// Leave out the items of the customer's history (default: yes).
    pub include_seen: bool,
    /// Only these items, when given.
    pub allow: Option<&'a HashSet<u32>>,
    /// Never these items.
    pub deny: Option<&'a HashSet<u32>>,
    /// Only items for which this returns true (e.g. a category test).
    pub candidate: Option<&'a (dyn Fn(u32) -> bool + Sync)>,
}

impl std::fmt::Debug for TopNFilter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopNFilter")
            .field("include_seen", &self.include_seen)
            .field("allow", &self.allow.map(HashSet::len))
            .field("deny", &self.deny.map(HashSet::len))
            .field("candidate", &self.candidate.is_some())
            .finish()
    }
}

impl TopNFilter<'_> {
    /// Whether `item` passes the allow/deny lists and the predicate (history aside).
    pub fn admits(&self, item: u32) -> bool {
        self.allow.is_none_or(|a| a.contains(&item))
            && self.deny.is_none_or(|d| !d.contains(&item))
            && self.candidate.is_none_or(|c| c(item))
    }
}

/// Indices of the `k` largest entries of `scores` among those where `keep(i)`,
/// best first (ties broken by lower index, so results are deterministic; NaN
/// ranks last).
///
/// For a short list (k up to an eighth of the catalogue) one pass keeps the k
/// best in a small sorted buffer: most items fail the comparison with the
/// current k-th and cost one comparison. Otherwise the candidates are
/// partially sorted. Both give the same list: the order is total.
pub fn top_k_indices(scores: &[f32], k: usize, keep: impl Fn(usize) -> bool) -> Vec<u32> {
    let cmp = |a: &u32, b: &u32| {
        let (sa, sb) = (scores[*a as usize], scores[*b as usize]);
        match (sa.is_nan(), sb.is_nan()) {
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ => sb.total_cmp(&sa).then(a.cmp(b)),
        }
    };
    if k == 0 {
        return Vec::new();
    }
    if k.saturating_mul(8) <= scores.len() {
        let mut top: Vec<u32> = Vec::with_capacity(k + 1);
        for i in (0..scores.len()).filter(|&i| keep(i)) {
            let i = i as u32;
            if top.len() == k {
                match top.last() {
                    Some(worst) if cmp(&i, worst) == std::cmp::Ordering::Less => {
                        top.pop();
                    }
                    _ => continue,
                }
            }
            let at = top.partition_point(|t| cmp(t, &i) == std::cmp::Ordering::Less);
            top.insert(at, i);
        }
        return top;
    }
    let mut cand: Vec<u32> = (0..scores.len())
        .filter(|&i| keep(i))
        .map(|i| i as u32)
        .collect();
    if cand.len() > k {
        cand.select_nth_unstable_by(k - 1, cmp);
        cand.truncate(k);
    }
    cand.sort_by(cmp);
    cand
}

/// The top `n` items of `scores` for a customer whose history items are
/// `seen`, under `filter`.
pub fn top_n(scores: &[f32], seen: &[u32], n: usize, filter: &TopNFilter<'_>) -> Vec<Scored> {
    let mut excluded = vec![false; scores.len()];
    if !filter.include_seen {
        for &i in seen {
            if let Some(e) = excluded.get_mut(i as usize) {
                *e = true;
            }
        }
    }
    top_k_indices(scores, n, |i| !excluded[i] && filter.admits(i as u32))
        .into_iter()
        .map(|item| Scored {
            item,
            score: scores[item as usize],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_seen_and_fills_exactly_n() {
        let scores = [0.5, 0.9, 0.0, 0.0, 0.1];
        let r = top_n(&scores, &[1], 4, &TopNFilter::default());
        assert_eq!(
            r.iter().map(|s| s.item).collect::<Vec<_>>(),
            vec![0, 4, 2, 3]
        );
        let deny: HashSet<u32> = [0].into();
        let pred = |i: u32| i != 4;
        let f = TopNFilter {
            include_seen: true,
            deny: Some(&deny),
            candidate: Some(&pred),
            ..Default::default()
        };
        let r = top_n(&scores, &[1], 10, &f);
        assert_eq!(r.iter().map(|s| s.item).collect::<Vec<_>>(), vec![1, 2, 3]);
        let allow: HashSet<u32> = [2, 4].into();
        let f = TopNFilter {
            allow: Some(&allow),
            ..Default::default()
        };
        assert_eq!(top_n(&scores, &[], 1, &f)[0].item, 4);
    }

    /// The one-pass path gives exactly the full sort's list, with ties, NaN
    /// and a filter, for short and long lists.
    #[test]
    fn short_lists_equal_a_full_sort() {
        let scores: Vec<f32> = (0..500u32)
            .map(|i| match i % 37 {
                0 => f32::NAN,
                1 => 0.5,
                _ => ((i * 7919) % 101) as f32 / 10.0 - 3.0,
            })
            .collect();
        let keep = |i: usize| i % 5 != 3;
        let mut want: Vec<u32> = (0..500u32).filter(|&i| keep(i as usize)).collect();
        want.sort_by(|a, b| {
            let (sa, sb) = (scores[*a as usize], scores[*b as usize]);
            match (sa.is_nan(), sb.is_nan()) {
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ => sb.total_cmp(&sa).then(a.cmp(b)),
            }
        });
        for k in [1, 3, 10, 62, 63, 200, 400, 1000] {
            let got = top_k_indices(&scores, k, keep);
            assert_eq!(got, want[..k.min(want.len())], "k = {k}");
        }
    }
}
