//! Special functions the CLV models need: log-gamma (with sign), digamma and
//! the Gauss hypergeometric function 2F1.
//!
//! Written here rather than pulled from a crate because they are small and
//! the accuracy needs are known (the BG/NBD and Gamma-Gamma likelihoods).
//! 2F1 no longer computes the BG/NBD conditional expectation (its
//! transformations cancel catastrophically for new customers with a large b;
//! see [`super::expected`]); it stays as the paper's form that the tests check
//! the expectation against where it is well conditioned.

use std::f64::consts::PI;

/// ln(2π)/2.
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// Shift threshold: below it the recurrence moves the argument up before the
/// asymptotic (Stirling / digamma) series is used. At 15 the truncation error
/// of the series below is far under f64 precision.
const SHIFT: f64 = 15.0;

/// ln|Γ(x)| for x > 0 by upward recurrence and the Stirling series.
fn ln_gamma_pos(x: f64) -> f64 {
    let mut x = x;
    let mut prod = 1.0;
    let mut acc = 0.0;
    while x < SHIFT {
        prod *= x;
        if prod > 1e280 {
            acc += prod.ln();
            prod = 1.0;
        }
        x += 1.0;
    }
    acc += prod.ln();
    let z = 1.0 / x;
    let z2 = z * z;
    // Stirling series: 1/12x − 1/360x³ + 1/1260x⁵ − 1/1680x⁷ + 1/1188x⁹ − 691/360360x¹¹ + 1/156x¹³
    let series = z
        * (1.0 / 12.0
            + z2 * (-1.0 / 360.0
                + z2 * (1.0 / 1260.0
                    + z2 * (-1.0 / 1680.0
                        + z2 * (1.0 / 1188.0 + z2 * (-691.0 / 360_360.0 + z2 / 156.0))))));
    (x - 0.5) * x.ln() - x + HALF_LN_2PI + series - acc
}

/// ln Γ(x) for x > 0. Returns +∞ at 0 and NaN for negative or NaN input;
/// use [`ln_gamma_sign`] for negative arguments.
pub fn ln_gamma(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::INFINITY;
    }
    if x.is_infinite() {
        return f64::INFINITY;
    }
    ln_gamma_pos(x)
}

/// (ln|Γ(x)|, sign of Γ(x)) for any real x that is not a pole (0, −1, −2, …;
/// at a pole the result is (+∞, 0)). Uses the reflection formula for x < 0.5.
pub fn ln_gamma_sign(x: f64) -> (f64, f64) {
    if x.is_nan() {
        return (f64::NAN, f64::NAN);
    }
    if x > 0.0 {
        return (ln_gamma(x), 1.0);
    }
    if x == x.floor() {
        return (f64::INFINITY, 0.0);
    }
    // Γ(x) = π / (sin(πx) Γ(1−x)), with Γ(1−x) > 0 for x < 0.
    let s = (PI * x).sin();
    ((PI / s.abs()).ln() - ln_gamma_pos(1.0 - x), s.signum())
}

/// The Stirling series tail of ln Γ at x ≥ [`SHIFT`] (without the leading terms).
fn stirling_tail(x: f64) -> f64 {
    let z = 1.0 / x;
    let z2 = z * z;
    z * (1.0 / 12.0
        + z2 * (-1.0 / 360.0
            + z2 * (1.0 / 1260.0
                + z2 * (-1.0 / 1680.0
                    + z2 * (1.0 / 1188.0 + z2 * (-691.0 / 360_360.0 + z2 / 156.0))))))
}

/// The asymptotic tail of ψ at x ≥ [`SHIFT`] (without ln x − 1/2x).
fn digamma_tail(x: f64) -> f64 {
    let z = 1.0 / x;
    let z2 = z * z;
    z2 * (-1.0 / 12.0
        + z2 * (1.0 / 120.0
            + z2 * (-1.0 / 252.0
                + z2 * (1.0 / 240.0 + z2 * (-1.0 / 132.0 + z2 * (691.0 / 32760.0 - z2 / 12.0))))))
}

/// Largest whole increment summed term by term in the ratio functions.
const MAX_TERMWISE: f64 = 64.0;

/// ln Γ(y + d) − ln Γ(y) for y > 0, y + d > 0, without the cancellation of
/// subtracting two large log-gammas: a sum of logs when d is a small whole
/// number, the difference of Stirling expansions when both arguments are
/// large, the plain difference otherwise.
pub fn ln_gamma_ratio(y: f64, d: f64) -> f64 {
    if d == 0.0 {
        return 0.0;
    }
    if d > 0.0 && d <= MAX_TERMWISE && d == d.floor() {
        let mut acc = 0.0;
        let mut prod = 1.0;
        let mut k = 0.0;
        while k < d {
            prod *= y + k;
            if !(1e-250..=1e250).contains(&prod) {
                acc += prod.ln();
                prod = 1.0;
            }
            k += 1.0;
        }
        return acc + prod.ln();
    }
    if y >= SHIFT && y + d >= SHIFT {
        // (y+d−½)ln(y+d) − (y−½)ln y − d + tails, with ln(y+d) = ln y + ln1p(d/y)
        return d * y.ln() + (y + d - 0.5) * (d / y).ln_1p() - d + stirling_tail(y + d)
            - stirling_tail(y);
    }
    ln_gamma(y + d) - ln_gamma(y)
}

/// ψ(y + d) − ψ(y), the derivative of [`ln_gamma_ratio`] in y, computed the
/// same cancellation-free way.
pub fn digamma_ratio(y: f64, d: f64) -> f64 {
    if d == 0.0 {
        return 0.0;
    }
    if d > 0.0 && d <= MAX_TERMWISE && d == d.floor() {
        let mut acc = 0.0;
        let mut k = 0.0;
        while k < d {
            acc += 1.0 / (y + k);
            k += 1.0;
        }
        return acc;
    }
    if y >= SHIFT && y + d >= SHIFT {
        return (d / y).ln_1p() - 0.5 / (y + d) + 0.5 / y + digamma_tail(y + d) - digamma_tail(y);
    }
    digamma(y + d) - digamma(y)
}

/// Digamma ψ(x) = d ln Γ(x)/dx, for any real x that is not a pole.
pub fn digamma(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        if x == x.floor() {
            return f64::NAN;
        }
        // ψ(1−x) − ψ(x) = π cot(πx)
        return digamma(1.0 - x) - PI / (PI * x).tan();
    }
    let mut x = x;
    let mut acc = 0.0;
    while x < SHIFT {
        acc -= 1.0 / x;
        x += 1.0;
    }
    let z = 1.0 / x;
    let z2 = z * z;
    // ψ(x) ~ ln x − 1/2x − 1/12x² + 1/120x⁴ − 1/252x⁶ + 1/240x⁸ − 1/132x¹⁰ + 691/32760x¹² − 1/12x¹⁴
    let series = z2
        * (-1.0 / 12.0
            + z2 * (1.0 / 120.0
                + z2 * (-1.0 / 252.0
                    + z2 * (1.0 / 240.0
                        + z2 * (-1.0 / 132.0 + z2 * (691.0 / 32760.0 - z2 / 12.0))))));
    acc + x.ln() - 0.5 * z + series
}

/// Most terms the power series may sum before giving up (reached only when
/// z is extremely close to 1 and c−a−b is (nearly) an integer).
const MAX_TERMS: usize = 5_000_000;

/// The power series Σ (a)ₙ(b)ₙ/((c)ₙ n!) zⁿ, for |z| < 1.
///
/// Stops once every factor (a+n, b+n, c+n) is past its sign change, the
/// terms shrink, and the geometric bound of the tail, term·ρ/(1−ρ) with
/// ρ = max(current ratio, |z|) (the ratio tends to |z|), is below 1e-17 of
/// the sum.
fn series(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 1.0;
    let az = z.abs();
    for n in 0..MAX_TERMS {
        let nf = n as f64;
        let ratio = (a + nf) * (b + nf) / ((c + nf) * (nf + 1.0)) * z;
        term *= ratio;
        sum += term;
        if term == 0.0 || !sum.is_finite() {
            return sum;
        }
        let past_signs = a + nf > 0.0 && b + nf > 0.0 && c + nf > 0.0;
        let rho = ratio.abs().max(az);
        if past_signs && rho < 1.0 && term.abs() * rho / (1.0 - rho) <= 1e-17 * sum.abs() {
            return sum;
        }
    }
    sum
}

/// Gauss hypergeometric function ₂F₁(a, b; c; z) for real parameters and z < 1.
///
/// Strategy (all transformations are Abramowitz & Stegun 15.3.4 and 15.3.6):
/// - −0.5 ≤ z ≤ 0.9: the power series directly;
/// - z < −0.5: Pfaff's transformation (1−z)^(−a) ₂F₁(a, c−b; c; z/(z−1)),
///   whose argument lies in (1/3, 1);
/// - z > 0.9: the 1−z connection formula, which converges fast near 1, unless
///   c−a−b is within 0.05 of an integer (the formula has removable poles
///   there, with cancellation nearby); then the power series is summed to
///   convergence, which takes about 37/(1−z) terms.
///
/// Returns NaN when c is a non-positive integer (undefined) or z ≥ 1.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    hyp2f1_scaled(a, b, c, z, 0.0)
}

/// `exp(ln_scale) · ₂F₁(a, b; c; z)`, with the scale folded into the
/// exponentials of the transformed terms so that a huge ₂F₁ times a tiny
/// prefactor (as in the BG/NBD conditional expectation) does not overflow.
pub fn hyp2f1_scaled(a: f64, b: f64, c: f64, z: f64, ln_scale: f64) -> f64 {
    if !(a.is_finite() && b.is_finite() && c.is_finite() && z.is_finite()) || z >= 1.0 {
        return f64::NAN;
    }
    if c <= 0.0 && c == c.floor() {
        return f64::NAN;
    }
    if z == 0.0 || a == 0.0 || b == 0.0 {
        return ln_scale.exp();
    }
    if z < -0.5 {
        return hyp2f1_scaled(a, c - b, c, z / (z - 1.0), ln_scale - a * (1.0 - z).ln());
    }
    let polynomial = (a <= 0.0 && a == a.floor()) || (b <= 0.0 && b == b.floor());
    let s = c - a - b;
    if z <= 0.9 || polynomial || (s - s.round()).abs() < 0.05 {
        return ln_scale.exp() * series(a, b, c, z);
    }
    let w = 1.0 - z;
    // term 1: Γ(c)Γ(s)/(Γ(c−a)Γ(c−b)) ₂F₁(a, b; 1−s; 1−z)
    // term 2: (1−z)^s Γ(c)Γ(−s)/(Γ(a)Γ(b)) ₂F₁(c−a, c−b; 1+s; 1−z)
    let (lc, sc) = ln_gamma_sign(c);
    let (ls, ss) = ln_gamma_sign(s);
    let (lca, sca) = ln_gamma_sign(c - a);
    let (lcb, scb) = ln_gamma_sign(c - b);
    let (lms, sms) = ln_gamma_sign(-s);
    let (la, sa) = ln_gamma_sign(a);
    let (lb, sb) = ln_gamma_sign(b);
    // 1/Γ at a pole is 0: that term vanishes.
    let t1 = if sca == 0.0 || scb == 0.0 {
        0.0
    } else {
        sc * ss * sca * scb * (ln_scale + lc + ls - lca - lcb).exp() * series(a, b, 1.0 - s, w)
    };
    let t2 = if sa == 0.0 || sb == 0.0 {
        0.0
    } else {
        sc * sms
            * sa
            * sb
            * (ln_scale + lc + lms - la - lb + s * w.ln()).exp()
            * series(c - a, c - b, 1.0 + s, w)
    };
    t1 + t2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    #[test]
    fn ln_gamma_known_values() {
        assert!(close(ln_gamma(1.0), 0.0, 1e-13));
        assert!(close(ln_gamma(2.0), 0.0, 1e-13));
        assert!(close(ln_gamma(0.5), 0.5 * PI.ln(), 1e-14));
        assert!(close(ln_gamma(10.0), 362_880f64.ln(), 1e-14));
        assert!(close(ln_gamma(1e-3), 6.907_178_885_383_853, 1e-13));
        assert!(close(ln_gamma(171.5), 709.143_163_030_928_3, 1e-14));
        let (l, s) = ln_gamma_sign(-0.5); // Γ(−1/2) = −2√π
        assert!(close(l, (2.0 * PI.sqrt()).ln(), 1e-14));
        assert_eq!(s, -1.0);
        let (l, s) = ln_gamma_sign(-1.5); // Γ(−3/2) = 4√π/3
        assert!(close(l, (4.0 * PI.sqrt() / 3.0).ln(), 1e-14));
        assert_eq!(s, 1.0);
    }

    #[test]
    fn gamma_ratios_agree_with_differences_and_stay_exact_for_huge_arguments() {
        for &(y, d) in &[
            (0.3, 5.0),
            (2.5, 0.7),
            (20.0, 3.5),
            (40.0, 100.0),
            (1e3, 0.25),
            (0.8, 70.0),
        ] {
            let want = ln_gamma(y + d) - ln_gamma(y);
            assert!(
                close(ln_gamma_ratio(y, d), want, 1e-12),
                "ln ratio y={y} d={d}"
            );
            let want = digamma(y + d) - digamma(y);
            assert!(
                close(digamma_ratio(y, d), want, 1e-11),
                "psi ratio y={y} d={d}"
            );
        }
        // y huge: Γ(y+d)/Γ(y) ≈ y^d (1 + d(d−1)/(2y))
        for &(y, d) in &[(1e12, 3.0), (1e15, 2.7), (3e17, 0.5)] {
            let want = d * f64::ln(y) + (d * (d - 1.0) / (2.0 * y)).ln_1p();
            assert!(close(ln_gamma_ratio(y, d), want, 1e-14), "y={y} d={d}");
            assert!(close(digamma_ratio(y, d), d / y, 1e-9), "y={y} d={d}");
        }
    }

    #[test]
    fn hyp2f1_closed_forms() {
        // ₂F₁(1,1;2;z) = −ln(1−z)/z (c−a−b = 0: the long-series path near 1)
        for &z in &[-0.9f64, -0.3, 0.2, 0.5, 0.95, 0.999] {
            let want = -(1.0 - z).ln() / z;
            assert!(close(hyp2f1(1.0, 1.0, 2.0, z), want, 1e-12), "z={z}");
        }
        // ₂F₁(a,b;b;z) = (1−z)^(−a) (c−a−b = −a, not an integer: the 1−z formula)
        for &z in &[-5.0f64, -0.7, 0.4, 0.93, 0.999_9] {
            let want = (1.0 - z).powf(-0.3);
            assert!(close(hyp2f1(0.3, 1.7, 1.7, z), want, 1e-12), "z={z}");
        }
        // ₂F₁(1/2,1/2;3/2;x²) = arcsin(x)/x
        for &x in &[0.3f64, 0.9, 0.99] {
            assert!(
                close(hyp2f1(0.5, 0.5, 1.5, x * x), x.asin() / x, 1e-12),
                "x={x}"
            );
        }
        // polynomial: ₂F₁(−2,b;c;z) = 1 − 2bz/c + b(b+1)z²/(c(c+1))
        let (b, c, z) = (1.5, 2.5, 0.97);
        let want = 1.0 - 2.0 * b * z / c + b * (b + 1.0) * z * z / (c * (c + 1.0));
        assert!(close(hyp2f1(-2.0, b, c, z), want, 1e-13));
    }

    #[test]
    fn hyp2f1_matches_reference_values() {
        // Reference values from scipy.special.hyp2f1 (Cephes), 2026-11-22.
        let cases = [
            ((0.5, 1.3, 2.2, 0.97), 1.945_792_761_175_412_9),
            ((0.3, 0.7, 1.1, -0.6), 0.911_536_246_868_610_1),
            ((2.5, 1.5, 1.2, 0.995), 3_618_724.147_648_698_7),
            ((2.243, 4.426, 4.219, 0.93), 592.313_947_489_138_6),
            ((1.2, 0.4, 3.0, -3.5), 0.732_030_880_070_564_4),
            ((0.25, 2.4, 2.2, 0.9999), 31.072_244_128_540_86),
        ];
        for ((a, b, c, z), want) in cases {
            let got = hyp2f1(a, b, c, z);
            assert!(
                close(got, want, 1e-10),
                "2F1({a},{b};{c};{z}) = {got}, want {want}"
            );
        }
        // scaling is exact
        let f = hyp2f1(2.5, 1.5, 1.2, 0.995);
        assert!(close(
            hyp2f1_scaled(2.5, 1.5, 1.2, 0.995, -3.0),
            f * (-3f64).exp(),
            1e-13
        ));
        assert!(hyp2f1(1.0, 1.0, 0.0, 0.5).is_nan());
        assert!(hyp2f1(1.0, 1.0, 2.0, 1.0).is_nan());
    }

    #[test]
    fn digamma_known_values_and_derivative() {
        let euler = 0.577_215_664_901_532_9;
        assert!(close(digamma(1.0), -euler, 1e-14));
        assert!(close(digamma(0.5), -euler - 2.0 * 2f64.ln(), 1e-14));
        assert!(close(
            digamma(-0.5),
            digamma(1.5) + PI / (PI * -0.5).tan(),
            1e-12
        ));
        for &x in &[0.07f64, 0.8, 3.3, 14.9, 15.1, 80.0] {
            let h = 1e-5 * x.max(1.0);
            let fd = (ln_gamma(x + h) - ln_gamma(x - h)) / (2.0 * h);
            assert!(close(digamma(x), fd, 1e-7), "x={x}");
        }
    }
}
