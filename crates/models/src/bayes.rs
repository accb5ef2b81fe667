//! Bayes' rule that refuses incoherent inputs, and interval estimates for
//! probabilities counted from data.
//!
//! Why its own module: a posterior computed from numbers that cannot all be
//! true (textbooks print P(A|B) = 1.26) is worse than no answer. Given P(A),
//! P(B|A) and P(B), the law of total probability bounds P(B):
//! P(B|A)·P(A) ≤ P(B) ≤ P(B|A)·P(A) + (1 − P(A)), because
//! P(B) = P(B|A)P(A) + P(B|¬A)(1 − P(A)) with P(B|¬A) ∈ [0, 1]. [`posterior`]
//! checks every input is a probability, that P(B) > 0 and lies in those
//! bounds, and says which rule failed with the numbers. For estimates counted
//! from data, [`wilson_interval`] gives the Wilson score interval of a
//! proportion.

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// How P(B) is given.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Evidence {
    /// P(B) directly.
    Probability(f64),
    /// P(B|¬A); P(B) follows from the law of total probability.
    LikelihoodNot(f64),
}

/// The result of [`posterior`], with its inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BayesResult {
    /// P(A|B).
    pub posterior: f64,
    /// P(B) (given or computed).
    pub evidence: f64,
    /// P(A).
    pub prior: f64,
    /// P(B|A).
    pub likelihood: f64,
    /// P(B|¬A) (given or implied by P(B)); `None` when P(A) = 1.
    pub likelihood_not: Option<f64>,
}

/// Slack for floating-point comparisons of probabilities.
const EPS: f64 = 1e-12;

fn check_probability(name: &str, v: f64) -> Result<(), ModelError> {
    if !v.is_finite() || !(0.0..=1.0).contains(&v) {
        return Err(ModelError::InvalidParameter {
            name: name.into(),
            reason: format!("{v} is not a probability (must be between 0 and 1)"),
        });
    }
    Ok(())
}

fn fmt(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.into()
    }
}

/// P(A|B) = P(B|A)·P(A) / P(B), refusing incoherent inputs with the reason.
pub fn posterior(
    prior: f64,
    likelihood: f64,
    evidence: Evidence,
) -> Result<BayesResult, ModelError> {
    check_probability("prior P(A)", prior)?;
    check_probability("likelihood P(B|A)", likelihood)?;
    let joint = likelihood * prior;
    let (pb, lnot) = match evidence {
        Evidence::LikelihoodNot(ln) => {
            check_probability("likelihood-not P(B|not A)", ln)?;
            let pb = joint + ln * (1.0 - prior);
            if pb <= 0.0 {
                return Err(ModelError::Incoherent(format!(
                    "P(B) = P(B|A)·P(A) + P(B|not A)·(1 − P(A)) = {} × {} + {} × {} = 0: B never happens, so P(A|B) is undefined",
                    fmt(likelihood),
                    fmt(prior),
                    fmt(ln),
                    fmt(1.0 - prior)
                )));
            }
            (pb, Some(ln))
        }
        Evidence::Probability(pb) => {
            check_probability("evidence P(B)", pb)?;
            if pb <= 0.0 {
                return Err(ModelError::Incoherent(
                    "P(B) = 0: B never happens, so P(A|B) is undefined (evidence must be > 0)"
                        .into(),
                ));
            }
            if pb + EPS < joint {
                return Err(ModelError::Incoherent(format!(
                    "P(B) = {} is impossible: P(B) ≥ P(B|A)·P(A) = {} × {} = {} (otherwise P(A|B) = {} > 1)",
                    fmt(pb),
                    fmt(likelihood),
                    fmt(prior),
                    fmt(joint),
                    fmt(joint / pb)
                )));
            }
            let upper = joint + (1.0 - prior);
            if pb > upper + EPS {
                return Err(ModelError::Incoherent(format!(
                    "P(B) = {} is impossible: P(B) ≤ P(B|A)·P(A) + (1 − P(A)) = {} + {} = {} (otherwise P(B|not A) = {} > 1)",
                    fmt(pb),
                    fmt(joint),
                    fmt(1.0 - prior),
                    fmt(upper),
                    fmt((pb - joint) / (1.0 - prior))
                )));
            }
            let lnot = (prior < 1.0).then(|| ((pb - joint) / (1.0 - prior)).clamp(0.0, 1.0));
            (pb, lnot)
        }
    };
    Ok(BayesResult {
        posterior: (joint / pb).clamp(0.0, 1.0),
        evidence: pb,
        prior,
        likelihood,
        likelihood_not: lnot,
    })
}

/// The Wilson score interval of a proportion `successes / n` at normal
/// quantile `z` (1.96 for 95 %). `None` when `n` is 0.
pub fn wilson_interval(successes: u64, n: u64, z: f64) -> Option<(f64, f64)> {
    if n == 0 || successes > n {
        return None;
    }
    let nf = n as f64;
    let p = successes as f64 / nf;
    let z2 = z * z;
    let denom = 1.0 + z2 / nf;
    let center = (p + z2 / (2.0 * nf)) / denom;
    let half = z * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt() / denom;
    Some(((center - half).max(0.0), (center + half).min(1.0)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn seed_example_posterior() {
        let r = posterior(0.1, 0.8, Evidence::Probability(0.3)).unwrap();
        assert!((r.posterior - 0.08 / 0.3).abs() < 1e-12);
        assert!((r.posterior - 0.2667).abs() < 5e-5);
        // implied P(B|¬A) = (0.3 − 0.08)/0.9
        assert!((r.likelihood_not.unwrap() - 0.22 / 0.9).abs() < 1e-12);
    }

    #[test]
    fn seed_example_refused_with_reason() {
        let e = posterior(0.7, 0.9, Evidence::Probability(0.5))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("0.63") && e.contains("P(B) ≥ P(B|A)·P(A)"),
            "{e}"
        );
        assert!(e.contains("1.26"), "{e}");
    }

    #[test]
    fn upper_bound_and_domain() {
        let e = posterior(0.5, 0.2, Evidence::Probability(0.7))
            .unwrap_err()
            .to_string();
        assert!(e.contains("P(B) ≤") && e.contains("0.6"), "{e}");
        assert!(
            posterior(1.2, 0.5, Evidence::Probability(0.5))
                .unwrap_err()
                .to_string()
                .contains("prior")
        );
        assert!(
            posterior(0.5, 0.5, Evidence::Probability(0.0))
                .unwrap_err()
                .to_string()
                .contains("> 0")
        );
        assert!(posterior(0.5, f64::NAN, Evidence::Probability(0.5)).is_err());
    }

    #[test]
    fn likelihood_not_gives_total_probability() {
        let r = posterior(0.01, 0.9, Evidence::LikelihoodNot(0.05)).unwrap();
        let pb = 0.009 + 0.05 * 0.99;
        assert!((r.evidence - pb).abs() < 1e-15);
        assert!((r.posterior - 0.009 / pb).abs() < 1e-12);
        assert!(posterior(0.0, 0.5, Evidence::LikelihoodNot(0.0)).is_err());
    }

    #[test]
    fn wilson_known_value() {
        // 8 of 10 at 95 %: (0.4902, 0.9433)
        let (lo, hi) = wilson_interval(8, 10, 1.959964).unwrap();
        assert!(
            (lo - 0.4902).abs() < 1e-3 && (hi - 0.9433).abs() < 1e-3,
            "{lo} {hi}"
        );
        assert_eq!(wilson_interval(0, 0, 1.96), None);
    }
}
