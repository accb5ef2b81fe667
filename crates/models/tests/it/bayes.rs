//! Integration tests: Bayes' rule with coherence checks.
#![allow(clippy::unwrap_used)]

use infogap_models::ModelError;
use infogap_models::bayes::{Evidence, posterior, wilson_interval};

#[test]
fn seed_example_gives_0_2667() {
    let r = posterior(0.1, 0.8, Evidence::Probability(0.3)).unwrap();
    assert_eq!((r.posterior * 10_000.0).round() / 10_000.0, 0.2667);
    assert_eq!(r.evidence, 0.3);
}

#[test]
fn seed_example_is_refused_because_evidence_is_below_the_joint() {
    let e = posterior(0.7, 0.9, Evidence::Probability(0.5)).unwrap_err();
    assert!(matches!(e, ModelError::Incoherent(_)));
    let msg = e.to_string();
    assert!(
        msg.contains("P(B) ≥ P(B|A)·P(A)") && msg.contains("0.63"),
        "{msg}"
    );
}

#[test]
fn evidence_from_likelihood_not_agrees_with_direct_evidence() {
    let a = posterior(0.3, 0.6, Evidence::LikelihoodNot(0.2)).unwrap();
    let b = posterior(0.3, 0.6, Evidence::Probability(a.evidence)).unwrap();
    assert!((a.posterior - b.posterior).abs() < 1e-12);
    assert!((b.likelihood_not.unwrap() - 0.2).abs() < 1e-12);
}

#[test]
fn every_coherent_grid_point_gives_a_probability_and_incoherent_ones_fail() {
    for pa in [0.05, 0.3, 0.7, 0.95] {
        for l in [0.0, 0.2, 0.9, 1.0] {
            for pb in [0.01, 0.1, 0.3, 0.5, 0.8, 1.0] {
                let lo = l * pa;
                let hi = lo + 1.0 - pa;
                let r = posterior(pa, l, Evidence::Probability(pb));
                if pb >= lo - 1e-12 && pb <= hi + 1e-12 {
                    let r = r.unwrap();
                    assert!((0.0..=1.0).contains(&r.posterior));
                } else {
                    assert!(r.is_err(), "{pa} {l} {pb}");
                }
            }
        }
    }
}

#[test]
fn wilson_interval_contains_the_proportion_and_narrows_with_n() {
    let (a, b) = wilson_interval(30, 100, 1.96).unwrap();
    let (c, d) = wilson_interval(300, 1000, 1.96).unwrap();
    assert!(a < 0.3 && 0.3 < b && c < 0.3 && 0.3 < d);
    assert!(d - c < b - a);
}
