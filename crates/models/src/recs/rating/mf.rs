//! Latent-factor rating models fitted by stochastic gradient descent:
//! biased matrix factorization (`r̂ = μ + b_u + b_i + q_iᵀp_u`, "SVD" as in
//! Funk / Koren 2009 and Surprise's `SVD`) and SVD++ (Koren 2008: the user
//! vector gains `|N(u)|^-½ Σ_{j∈N(u)} y_j`, an implicit-feedback term built
//! from *which* items the user rated).
//!
//! What makes it better than the textbook loop:
//! - ratings are standardized (`(r − μ)/σ`) before fitting, so learning
//!   rates and regularization mean the same on a 1–5, 1–10 or −10…10 scale;
//! - the biases start from the ALS [`Baseline`](super::baseline::Baseline)
//!   and have their own learning rate and regularization;
//! - the learning rate decays geometrically per epoch;
//! - the training triplets live in one contiguous array that is reshuffled
//!   in place every epoch (sequential memory access, no index indirection),
//!   factors are row-major `f32` so the inner loops vectorize;
//! - SVD++ uses the per-user accumulation trick (the implicit sum is built
//!   once per user per epoch and the `y_j` updated once per user), which
//!   makes it about twice the cost of plain MF instead of `|N(u)|` times;
//! - users/items absent from the training data get zero bias and factors,
//!   so they fall back to the baseline instead of random noise.
//!
//! Deterministic for a seed (single-threaded SGD; the parallelism lives in
//! prediction and in fitting independent models at once).

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::RatingData;
use super::baseline::{Baseline, BaselineParams};
use crate::ModelError;

/// Hyper-parameters of the SGD factor models (values are on the
/// standardized rating scale).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MfParams {
    /// Number of latent factors.
    pub factors: usize,
    /// Passes over the training ratings.
    pub epochs: usize,
    /// Learning rate of the factors.
    pub lr: f32,
    /// L2 regularization of the factors.
    pub reg: f32,
    /// Learning rate of the biases.
    pub lr_bias: f32,
    /// L2 regularization of the biases.
    pub reg_bias: f32,
    /// L2 regularization of the implicit factors `y_j` (SVD++ only).
    pub reg_y: f32,
    /// Learning-rate multiplier applied after each epoch.
    pub decay: f32,
    /// Standard deviation of the initial factors.
    pub init_std: f32,
}

impl MfParams {
    /// Defaults for biased MF.
    pub fn svd() -> Self {
        MfParams {
            factors: 64,
            epochs: 40,
            lr: 0.015,
            reg: 0.06,
            lr_bias: 0.01,
            reg_bias: 0.02,
            reg_y: 0.05,
            decay: 0.96,
            init_std: 0.1,
        }
    }
    /// Defaults for SVD++ (it converges in fewer epochs than plain MF).
    pub fn svdpp() -> Self {
        MfParams {
            factors: 16,
            epochs: 8,
            lr: 0.025,
            reg: 0.08,
            decay: 0.9,
            ..Self::svd()
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ModelError> {
        let bad = |n: &str, r: &str| {
            Err(ModelError::InvalidParameter {
                name: n.into(),
                reason: r.into(),
            })
        };
        if self.factors == 0 || self.factors > 4096 {
            return bad("factors", "must be in 1..=4096");
        }
        if self.epochs > 100_000 {
            return bad("epochs", "must be at most 100000");
        }
        for (n, v) in [
            ("lr", self.lr),
            ("reg", self.reg),
            ("lr_bias", self.lr_bias),
            ("reg_bias", self.reg_bias),
            ("reg_y", self.reg_y),
            ("decay", self.decay),
            ("init_std", self.init_std),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(n, "must be a finite number >= 0");
            }
        }
        if self.lr > 1.0 || self.lr_bias > 1.0 {
            return bad("lr", "learning rates above 1 diverge");
        }
        Ok(())
    }
}

/// A fitted factor model (plain MF or SVD++; for SVD++ the implicit term is
/// already folded into the user vectors).
#[derive(Debug, Clone, PartialEq)]
pub struct FactorModel {
    /// Global mean μ.
    pub mu: f32,
    /// Rating scale σ used for standardization.
    pub scale: f32,
    /// Number of factors.
    pub k: usize,
    /// User biases (standardized scale).
    pub bu: Vec<f32>,
    /// Item biases (standardized scale).
    pub bi: Vec<f32>,
    /// User vectors, row-major `n_users × k` (SVD++: `p_u + |N(u)|^-½ Σ y_j`).
    pub p: Vec<f32>,
    /// Item vectors, row-major `n_items × k`.
    pub q: Vec<f32>,
}

impl FactorModel {
    /// Predicted rating (not clipped).
    #[inline]
    pub fn predict(&self, u: u32, i: u32) -> f32 {
        let (u, i) = (u as usize, i as usize);
        let mut s = 0.0;
        if u < self.bu.len() {
            s += self.bu[u];
        }
        if i < self.bi.len() {
            s += self.bi[i];
        }
        if u < self.bu.len() && i < self.bi.len() {
            let k = self.k;
            s += dot(&self.p[u * k..(u + 1) * k], &self.q[i * k..(i + 1) * k]);
        }
        self.mu + self.scale * s
    }
}

/// Dot product with 8 independent accumulators (vectorizes).
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[derive(Clone, Copy)]
struct Triplet {
    u: u32,
    i: u32,
    r: f32,
}

struct Init {
    mu: f32,
    scale: f32,
    bu: Vec<f32>,
    bi: Vec<f32>,
    p: Vec<f32>,
    q: Vec<f32>,
    rng: ChaCha8Rng,
}

fn init(data: &RatingData, p: &MfParams, seed: u64) -> Init {
    let mu = data.mean();
    let var = data
        .ratings
        .iter()
        .map(|&r| (r - mu) * (r - mu))
        .sum::<f32>()
        / data.len().max(1) as f32;
    let scale = if var.sqrt() > 1e-6 { var.sqrt() } else { 1.0 };
    let base = Baseline::fit(data, &BaselineParams::default());
    let bu = base.bu.iter().map(|b| b / scale).collect();
    let bi = base.bi.iter().map(|b| b / scale).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let k = p.factors;
    let mut normal =
        |n: usize| -> Vec<f32> { (0..n).map(|_| p.init_std * gauss(&mut rng)).collect() };
    let pu = normal(data.n_users * k);
    let qi = normal(data.n_items * k);
    Init {
        mu,
        scale,
        bu,
        bi,
        p: pu,
        q: qi,
        rng,
    }
}

/// Standard normal by Box–Muller.
fn gauss(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// Zeroes biases and factors of users/items that have no training rating.
fn zero_unseen(data: &RatingData, m: &mut FactorModel) {
    let k = m.k;
    for (u, &c) in data.user_counts().iter().enumerate() {
        if c == 0 {
            m.bu[u] = 0.0;
            m.p[u * k..(u + 1) * k].iter_mut().for_each(|x| *x = 0.0);
        }
    }
    for (i, &c) in data.item_counts().iter().enumerate() {
        if c == 0 {
            m.bi[i] = 0.0;
            m.q[i * k..(i + 1) * k].iter_mut().for_each(|x| *x = 0.0);
        }
    }
}

/// Fits biased MF by SGD.
pub fn fit_svd(data: &RatingData, p: &MfParams, seed: u64) -> Result<FactorModel, ModelError> {
    p.validate()?;
    let Init {
        mu,
        scale,
        mut bu,
        mut bi,
        p: mut pu,
        q: mut qi,
        mut rng,
    } = init(data, p, seed);
    let k = p.factors;
    let inv = 1.0 / scale;
    let mut trip: Vec<Triplet> = data
        .users
        .iter()
        .zip(&data.items)
        .zip(&data.ratings)
        .map(|((&u, &i), &r)| Triplet {
            u,
            i,
            r: (r - mu) * inv,
        })
        .collect();
    let (mut lr, mut lrb) = (p.lr, p.lr_bias);
    let (reg, regb) = (p.reg, p.reg_bias);
    for _ in 0..p.epochs {
        trip.shuffle(&mut rng);
        for t in &trip {
            let (u, i) = (t.u as usize, t.i as usize);
            let pv = &mut pu[u * k..(u + 1) * k];
            let qv = &mut qi[i * k..(i + 1) * k];
            let e = t.r - (bu[u] + bi[i] + dot(pv, qv));
            bu[u] += lrb * (e - regb * bu[u]);
            bi[i] += lrb * (e - regb * bi[i]);
            for (a, b) in pv.iter_mut().zip(qv.iter_mut()) {
                let (x, y) = (*a, *b);
                *a += lr * (e * y - reg * x);
                *b += lr * (e * x - reg * y);
            }
        }
        lr *= p.decay;
        lrb *= p.decay;
    }
    let mut m = FactorModel {
        mu,
        scale,
        k,
        bu,
        bi,
        p: pu,
        q: qi,
    };
    if m.p
        .iter()
        .chain(&m.q)
        .chain(&m.bu)
        .chain(&m.bi)
        .any(|x| !x.is_finite())
    {
        return Err(ModelError::FitFailed(
            "SGD diverged (non-finite factors); lower lr".into(),
        ));
    }
    zero_unseen(data, &mut m);
    Ok(m)
}

/// Fits SVD++ by SGD (per-user accumulation of the implicit term).
pub fn fit_svdpp(data: &RatingData, p: &MfParams, seed: u64) -> Result<FactorModel, ModelError> {
    p.validate()?;
    let Init {
        mu,
        scale,
        mut bu,
        mut bi,
        p: mut pu,
        q: mut qi,
        mut rng,
    } = init(data, p, seed);
    let k = p.factors;
    let inv = 1.0 / scale;
    // y starts at zero-ish (small noise) so the implicit term grows from nothing.
    let mut y: Vec<f32> = (0..data.n_items * k)
        .map(|_| 0.1 * p.init_std * gauss(&mut rng))
        .collect();
    // Ratings grouped by user: (item, standardized rating).
    let csr = data.by_user();
    let mut items: Vec<u32> = csr.idx.clone();
    let mut vals: Vec<f32> = csr.val.iter().map(|&r| (r - mu) * inv).collect();
    let mut order: Vec<u32> = (0..data.n_users as u32)
        .filter(|&u| csr.len(u as usize) > 0)
        .collect();
    let (mut lr, mut lrb) = (p.lr, p.lr_bias);
    let (reg, regb, regy) = (p.reg, p.reg_bias, p.reg_y);
    let mut z = vec![0f32; k];
    let mut g = vec![0f32; k];
    let mut pe = vec![0f32; k];
    // Each user's ratings in a random order, fixed across epochs (the user
    // order is reshuffled every epoch), so the hot loop reads sequentially.
    let mut seg: Vec<(u32, f32)> = Vec::new();
    for u in 0..data.n_users {
        let (s, e_) = (csr.indptr[u], csr.indptr[u + 1]);
        seg.clear();
        seg.extend(
            items[s..e_]
                .iter()
                .copied()
                .zip(vals[s..e_].iter().copied()),
        );
        seg.shuffle(&mut rng);
        for (t, &(j, v)) in seg.iter().enumerate() {
            items[s + t] = j;
            vals[s + t] = v;
        }
    }
    for _ in 0..p.epochs {
        order.shuffle(&mut rng);
        for &u in &order {
            let u = u as usize;
            let (s, e_) = (csr.indptr[u], csr.indptr[u + 1]);
            let n = e_ - s;
            let nrm = 1.0 / (n as f32).sqrt();
            z.iter_mut().for_each(|x| *x = 0.0);
            for &j in &items[s..e_] {
                let yj = &y[j as usize * k..(j as usize + 1) * k];
                for (a, b) in z.iter_mut().zip(yj) {
                    *a += b;
                }
            }
            z.iter_mut().for_each(|x| *x *= nrm);
            g.iter_mut().for_each(|x| *x = 0.0);
            let pv = &mut pu[u * k..(u + 1) * k];
            for t in s..e_ {
                let i = items[t] as usize;
                let r = vals[t];
                let qv = &mut qi[i * k..(i + 1) * k];
                for ((e, a), b) in pe.iter_mut().zip(pv.iter()).zip(&z) {
                    *e = a + b;
                }
                let err = r - (bu[u] + bi[i] + dot(&pe, qv));
                bu[u] += lrb * (err - regb * bu[u]);
                bi[i] += lrb * (err - regb * bi[i]);
                for ((((q, p), e), gf), zf) in qv
                    .iter_mut()
                    .zip(pv.iter_mut())
                    .zip(&pe)
                    .zip(g.iter_mut())
                    .zip(z.iter_mut())
                {
                    let qo = *q;
                    *q += lr * (err * e - reg * qo);
                    *p += lr * (err * qo - reg * *p);
                    *gf += err * qo;
                    *zf += lr * (err * qo - regy * *zf);
                }
            }
            // One y update per user with the accumulated gradient.
            for &j in &items[s..e_] {
                let yj = &mut y[j as usize * k..(j as usize + 1) * k];
                for (a, b) in yj.iter_mut().zip(&g) {
                    *a += lr * (nrm * b - regy * *a);
                }
            }
        }
        lr *= p.decay;
        lrb *= p.decay;
    }
    // Fold the implicit term into the user vectors.
    for u in 0..data.n_users {
        let (s, e_) = (csr.indptr[u], csr.indptr[u + 1]);
        if s == e_ {
            continue;
        }
        let nrm = 1.0 / ((e_ - s) as f32).sqrt();
        let pv = &mut pu[u * k..(u + 1) * k];
        for &j in &items[s..e_] {
            let yj = &y[j as usize * k..(j as usize + 1) * k];
            for (a, b) in pv.iter_mut().zip(yj) {
                *a += nrm * b;
            }
        }
    }
    items.clear();
    vals.clear();
    let mut m = FactorModel {
        mu,
        scale,
        k,
        bu,
        bi,
        p: pu,
        q: qi,
    };
    if m.p
        .iter()
        .chain(&m.q)
        .chain(&m.bu)
        .chain(&m.bi)
        .any(|x| !x.is_finite())
    {
        return Err(ModelError::FitFailed(
            "SGD diverged (non-finite factors); lower lr".into(),
        ));
    }
    zero_unseen(data, &mut m);
    Ok(m)
}
