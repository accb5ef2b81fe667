//! Times the stages of `AutoEts` on a monthly series (AirPassengers' first
//! 132 months, as in `infogap eval forecast --holdout 12`): the first fit of
//! the process, then the median (and minimum) of repeated fits of the whole
//! selection with AMSE-12 re-estimation, the selection alone (maximum
//! likelihood), the AMSE-12 refit alone and one full maximum-likelihood fit.
//!
//! ```sh
//! cargo run --release -p infogap-bench --example ets_parts -- ../shared/data/airpassengers/AirPassengers.csv
//! ```
//!
//! The first fit also reports the minor page faults it took (on this VM each
//! first touch of a 4 KB page costs ≈ 1.6 µs, most of the first fit's extra).
//!
//! Environment switches (for `perf record`): `CANDS=1` also times each
//! candidate's full and screening fits; `SPIN=refit` or `SPIN=auto` then loops
//! on that stage for a few seconds; `FIRST_ONLY=1` stops after the first fit
//! (`perf record -e minor-faults -c 1 --call-graph dwarf` shows where pages are
//! first touched); `PREFAULT=1` touches 2 MB of heap before the first fit —
//! with `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4000000:glibc.malloc.trim_threshold=100000000`
//! the fit then reuses those pages, which measures what the faults cost.

use infogap_models::forecast::{AutoEts, EtsFixed, EtsSpec, FitOptions, fit_ets_with};
use std::time::Instant;

fn summary(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!("{:.3} ms (min {:.3})", v[v.len() / 2], v[0])
}

/// The process's minor page faults so far (field 10 of `/proc/self/stat`;
/// 0 where that file does not exist).
fn minor_faults() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_owned();
            rest.split_whitespace().nth(7)?.parse().ok()
        })
        .unwrap_or(0)
}

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: ets_parts AirPassengers.csv");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(1);
    });
    let y: Vec<f64> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next_back()?.trim().parse().ok())
        .collect();
    if y.len() < 144 {
        eprintln!(
            "{path}: expected the 144 months of AirPassengers, read {}",
            y.len()
        );
        std::process::exit(1);
    }
    let y = &y[..132];
    let auto = |h: usize| AutoEts {
        refit_amse: h,
        ..AutoEts::new(12)
    };
    if std::env::var("PREFAULT").is_ok() {
        let v = vec![1.0f64; 1 << 18];
        std::hint::black_box(&v);
    }
    if std::env::var("ANCHOR_ORDER").is_ok() {
        // The anchor script's order: its Holt-Winters "cold" fit comes after
        // 6 + 6 simple-exponential-smoothing fits in the same process.
        let a1 = EtsFixed {
            alpha: Some(0.2),
            ..EtsFixed::default()
        };
        let a2 = EtsFixed {
            initial_level: Some(y[0]),
            ..a1
        };
        for fixed in [a1, a2] {
            for _ in 0..6 {
                fit_ets_with(y, EtsSpec::ses(), &fixed, &FitOptions::default()).expect("ses");
            }
        }
    }
    let faults0 = minor_faults();
    let t = Instant::now();
    let first = auto(12).fit_series(y).expect("fit");
    let first_ms = t.elapsed().as_secs_f64() * 1e3;
    let faults = minor_faults().saturating_sub(faults0);
    println!(
        "first fit in the process: {first_ms:.3} ms, {}, {faults} minor page faults",
        first.best.name()
    );
    if std::env::var("FIRST_ONLY").is_ok() {
        return;
    }
    let spec = first.best.spec;
    let amse = FitOptions {
        amse_horizon: 12,
        ..FitOptions::default()
    };
    let time = |f: &dyn Fn()| {
        summary(
            (0..201)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect(),
        )
    };
    let run_auto = || {
        auto(12).fit_series(y).expect("fit");
    };
    let run_refit = || {
        fit_ets_with(y, spec, &EtsFixed::default(), &amse).expect("fit");
    };
    println!("auto, AMSE-12 refit:  {}", time(&run_auto));
    println!(
        "auto, selection only: {}",
        time(&|| {
            auto(0).fit_series(y).expect("fit");
        })
    );
    println!("AMSE-12 refit alone:  {}", time(&run_refit));
    println!(
        "one full ML fit:      {}",
        time(&|| {
            fit_ets_with(y, spec, &EtsFixed::default(), &FitOptions::default()).expect("fit");
        })
    );
    if std::env::var("CANDS").is_ok() {
        let screen = FitOptions {
            heuristic_season: true,
            restarts: 0,
            max_evals: 750,
            tol: 0.05,
            ..FitOptions::default()
        };
        for c in AutoEts::new(12).candidates(y) {
            let full = time(&|| {
                let _ = fit_ets_with(y, c, &EtsFixed::default(), &FitOptions::default());
            });
            let quick = time(&|| {
                let _ = fit_ets_with(y, c, &EtsFixed::default(), &screen);
            });
            println!("{:<22} full {full}  screen {quick}", c.name());
        }
    }
    let until = Instant::now() + std::time::Duration::from_secs(3);
    match std::env::var("SPIN").as_deref() {
        Ok("refit") => {
            while Instant::now() < until {
                run_refit();
            }
        }
        Ok("auto") => {
            while Instant::now() < until {
                run_auto();
            }
        }
        _ => {}
    }
}
