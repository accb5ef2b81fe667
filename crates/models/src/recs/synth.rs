//! Generated interaction data with known structure, for tests and benchmarks.
//!
//! - [`planted_taste`]: items fall into taste groups; each user draws most of
//!   their interactions from one group (skewed by popularity inside the group)
//!   and a few at random. A recommender that learns anything must put the
//!   user's group first, so Recall@10 far above random is a real test.
//!   [`Planted::rated`] gives the same data as ratings that tell the taste
//!   (4–5) from the noise (1–2).
//! - [`power_law`]: users and items with power-law (Zipf) activity and
//!   popularity, the shape of real catalogues, at any size (scaling benchmarks).
//! - [`planted_sessions`]: customers visit "pages" (small fixed item sets that
//!   overlap) and take part of each page in one visit; only the times tell the
//!   visits apart, so a session-aware model has something real to find.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Planted-taste data: `(user, item, 1.0)` triples (no duplicates), the group
/// of each user and of each item (`item % n_groups`).
#[derive(Debug, Clone)]
pub struct Planted {
    /// Interactions (binary, unique per pair).
    pub triples: Vec<(u32, u32, f32)>,
    /// Taste group of each user.
    pub user_group: Vec<u32>,
    /// Group of each item.
    pub item_group: Vec<u32>,
}

fn zipf_cdf(n: usize, s: f64) -> Vec<f64> {
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = (0..n)
        .map(|r| {
            acc += 1.0 / ((r + 1) as f64).powf(s);
            acc
        })
        .collect();
    for c in cdf.iter_mut() {
        *c /= acc;
    }
    cdf
}

fn draw(cdf: &[f64], rng: &mut ChaCha8Rng) -> usize {
    let u: f64 = rng.random();
    cdf.partition_point(|&c| c < u).min(cdf.len() - 1)
}

/// Generates planted-taste data: `per_user` distinct items per user, a share
/// `noise` of them uniformly random, the rest from the user's group.
pub fn planted_taste(
    n_users: usize,
    n_items: usize,
    n_groups: usize,
    per_user: usize,
    noise: f64,
    seed: u64,
) -> Planted {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n_groups = n_groups.max(1);
    let item_group: Vec<u32> = (0..n_items).map(|i| (i % n_groups) as u32).collect();
    let group_items: Vec<Vec<u32>> = (0..n_groups)
        .map(|g| {
            (0..n_items as u32)
                .filter(|i| item_group[*i as usize] == g as u32)
                .collect()
        })
        .collect();
    let cdfs: Vec<Vec<f64>> = group_items
        .iter()
        .map(|v| zipf_cdf(v.len().max(1), 0.8))
        .collect();
    let mut user_group = Vec::with_capacity(n_users);
    let mut triples = Vec::with_capacity(n_users * per_user);
    for u in 0..n_users {
        let g = rng.random_range(0..n_groups);
        user_group.push(g as u32);
        let mut chosen = std::collections::BTreeSet::new();
        let want = per_user.min(n_items);
        let mut tries = 0;
        while chosen.len() < want && tries < want * 50 {
            tries += 1;
            let item = if rng.random::<f64>() < noise || group_items[g].is_empty() {
                rng.random_range(0..n_items as u32)
            } else {
                group_items[g][draw(&cdfs[g], &mut rng)]
            };
            chosen.insert(item);
        }
        triples.extend(chosen.into_iter().map(|i| (u as u32, i, 1.0)));
    }
    Planted {
        triples,
        user_group,
        item_group,
    }
}

impl Planted {
    /// The same interactions as explicit ratings that tell taste from noise:
    /// items of the user's own group are rated 4 or 5, the others 1 or 2
    /// (seeded). A model that reads the ratings can weigh the taste above the
    /// noise; one that counts every rating alike cannot.
    pub fn rated(&self, seed: u64) -> Vec<(u32, u32, f32)> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        self.triples
            .iter()
            .map(|&(u, i, _)| {
                let liked = self.user_group[u as usize] == self.item_group[i as usize];
                let r = if liked { 4.0 } else { 1.0 } + f32::from(rng.random::<bool>());
                (u, i, r)
            })
            .collect()
    }
}

/// About `nnz` implicit interactions between `n_users` and `n_items` with Zipf
/// exponent `exponent` on both sides (item ranks shuffled so popularity is
/// not the id order). Duplicate pairs may occur (combine them when building).
pub fn power_law(
    n_users: usize,
    n_items: usize,
    nnz: usize,
    exponent: f64,
    seed: u64,
) -> Vec<(u32, u32, f32)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let item_cdf = zipf_cdf(n_items, exponent);
    let user_cdf = zipf_cdf(n_users, exponent * 0.5);
    let mut perm: Vec<u32> = (0..n_items as u32).collect();
    for i in (1..perm.len()).rev() {
        let j = rng.random_range(0..=i);
        perm.swap(i, j);
    }
    (0..nnz)
        .map(|_| {
            let u = draw(&user_cdf, &mut rng) as u32;
            let i = perm[draw(&item_cdf, &mut rng)];
            (u, i, 1.0)
        })
        .collect()
}

/// Planted-session data: timed `(user, item, time)` events.
#[derive(Debug, Clone)]
pub struct PlantedSessions {
    /// Events, one per distinct `(user, item)`.
    pub events: Vec<(u32, u32, i64)>,
    /// The pages (item sets) visits were drawn from.
    pub pages: Vec<Vec<u32>>,
}

/// Generates planted-session data: `n_pages` pages of `page_size` distinct
/// random items (pages overlap); each user visits `visits` distinct random
/// pages, one hour apart, and takes `take` random items of each page, all
/// with the visit's time (an item already taken is not taken again).
pub fn planted_sessions(
    n_users: usize,
    n_items: usize,
    n_pages: usize,
    page_size: usize,
    visits: usize,
    take: usize,
    seed: u64,
) -> PlantedSessions {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let shuffle = |v: &mut Vec<u32>, rng: &mut ChaCha8Rng| {
        for i in (1..v.len()).rev() {
            let j = rng.random_range(0..=i);
            v.swap(i, j);
        }
    };
    let pages: Vec<Vec<u32>> = (0..n_pages)
        .map(|_| {
            let mut all: Vec<u32> = (0..n_items as u32).collect();
            shuffle(&mut all, &mut rng);
            all.truncate(page_size.min(n_items));
            all
        })
        .collect();
    let mut events = Vec::new();
    for u in 0..n_users {
        let mut order: Vec<u32> = (0..n_pages as u32).collect();
        shuffle(&mut order, &mut rng);
        let mut seen = std::collections::BTreeSet::new();
        for (v, &p) in order.iter().take(visits).enumerate() {
            let mut page = pages[p as usize].clone();
            shuffle(&mut page, &mut rng);
            let t = 1_000_000 + (u as i64) * 1_000_000 + (v as i64) * 3_600;
            for &i in page.iter().take(take) {
                if seen.insert(i) {
                    events.push((u as u32, i, t));
                }
            }
        }
    }
    PlantedSessions { events, pages }
}
