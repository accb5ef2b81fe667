//! Tables with the shapes that break linear models, for reference checks
//! against scikit-learn and statsmodels (issue 15).
//!
//! Why here: the benchmarks' data never had these shapes, so a logistic
//! regression that gave constant predictions on a bank-marketing table passed
//! every test. Each table plants one or more of them: a sentinel (999 for
//! "never contacted" in 96 % of rows), scales that differ by 10⁴ and more,
//! near-collinear and exactly collinear columns, constant columns, separable
//! classes, rare positives, one-hot categories that are aliased with the
//! intercept, and Unix timestamps as numbers (a huge offset with a small
//! spread). Every table is generated from a fixed seed, so the same bytes come
//! out on every machine; [`Table::write_csv`] writes it with a `fold` column
//! (the folds `eval classify` / `eval regress` use with `--folds 5 --seed 0`)
//! so the reference script can fit the peers on exactly the same splits.
//!
//! `cargo run -p infogap-testkit --example reference_tables -- DIR` writes
//! them all; `scripts/reference/tabular_reference.py DIR` computes the peers'
//! figures into `crates/cli/tests/fixtures/tabular_reference.json`.

use std::io::Write;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Folds and seed of the reference runs (`--folds 5 --seed 0`).
pub const FOLDS: usize = 5;
/// Seed of the reference runs.
pub const SEED: u64 = 0;

/// What the table is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Binary target `y` (`yes`/`no`): `eval classify`.
    Classify,
    /// Numeric target `y`: `eval regress`.
    Regress,
}

/// One generated table: named columns of text cells (numbers written with
/// Rust's shortest round-trip formatting), the target last.
#[derive(Debug, Clone)]
pub struct Table {
    /// Name (file stem).
    pub name: &'static str,
    /// What it plants, for people.
    pub shapes: &'static str,
    /// Task.
    pub task: Task,
    /// Column names; the target is `y`.
    pub columns: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    fn new(name: &'static str, shapes: &'static str, task: Task, columns: &[&str]) -> Self {
        Table {
            name,
            shapes,
            task,
            columns: columns.iter().map(|c| (*c).to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// The target's column index.
    fn target(&self) -> usize {
        self.columns.len() - 1
    }

    /// The fold of every row, as `eval classify` (stratified) or `eval
    /// regress` (plain k-fold) make them with [`FOLDS`] and [`SEED`].
    pub fn folds(&self) -> Vec<usize> {
        let t = self.target();
        match self.task {
            Task::Classify => {
                let y: Vec<bool> = self.rows.iter().map(|r| r[t] == "yes").collect();
                infogap_models::classify::stratified_folds(&y, FOLDS, SEED)
                    .unwrap_or_else(|e| panic!("{}: {e}", self.name))
            }
            Task::Regress => {
                let mut fold = vec![0; self.rows.len()];
                for (f, rows) in infogap_models::regress::kfold(self.rows.len(), FOLDS, SEED)
                    .into_iter()
                    .enumerate()
                {
                    for i in rows {
                        fold[i] = f;
                    }
                }
                fold
            }
        }
    }

    /// Writes the table as CSV with a trailing `fold` column.
    pub fn write_csv(&self, path: &Path) -> std::io::Result<()> {
        let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(w, "{},fold", self.columns.join(","))?;
        for (row, fold) in self.rows.iter().zip(self.folds()) {
            writeln!(w, "{},{fold}", row.join(","))?;
        }
        w.flush()
    }
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    infogap_models::regress::std_normal(rng)
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

fn num(v: f64) -> String {
    format!("{v}")
}

/// Rounded to `d` decimals (as an export would write it).
fn round(v: f64, d: i32) -> f64 {
    let f = 10f64.powi(d);
    (v * f).round() / f
}

const LETTERS: &[&str] = &[
    "admin", "blue", "tech", "services", "mgmt", "retired", "entre", "self", "maid", "unemp",
    "student", "unknown",
];

/// A bank-marketing-like table: 11 % positives; `pdays` = 999 ("never
/// contacted") in 96 % of rows, small otherwise; `nr_employed` near 5,000
/// beside `euribor3m` near 1; five economic indicators driven by one latent
/// regime (near-collinear); ten categorical columns.
pub fn bank_like(n: usize, seed: u64) -> Table {
    let mut t = Table::new(
        "bank_like",
        "sentinel 999 in 96% of rows, scales 1e-1..5e3, near-collinear indicators, 10 categoricals, 11% positives",
        Task::Classify,
        &[
            "age",
            "duration",
            "campaign",
            "pdays",
            "previous",
            "emp_var_rate",
            "cons_price_idx",
            "cons_conf_idx",
            "euribor3m",
            "nr_employed",
            "job",
            "marital",
            "education",
            "default",
            "housing",
            "loan",
            "contact",
            "month",
            "day_of_week",
            "poutcome",
            "y",
        ],
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let regimes = [-3.4, -2.9, -1.8, -1.1, -0.1, 1.1, 1.4, 1.4, -1.8, 1.1];
    let months = [
        "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    for _ in 0..n {
        let age = (40.0 + 10.0 * normal(&mut rng)).clamp(17.0, 98.0).round();
        let duration = (-250.0 * (1.0 - rng.random::<f64>()).ln()).round();
        let mut campaign = 1.0;
        while rng.random::<f64>() < 0.55 && campaign < 50.0 {
            campaign += 1.0;
        }
        let contacted = rng.random::<f64>() < 0.037;
        let pdays = if contacted {
            f64::from(rng.random_range(0..27u32))
        } else {
            999.0
        };
        let previous = if contacted {
            f64::from(rng.random_range(1..7u32))
        } else {
            f64::from(u8::from(rng.random::<f64>() < 0.1))
        };
        let regime = rng.random_range(0..regimes.len());
        let evr = regimes[regime];
        let cpi = round(93.5 + 0.3 * evr + 0.05 * normal(&mut rng), 3);
        let cci = round(-40.0 + 2.0 * evr + 0.5 * normal(&mut rng), 1);
        let eur = round(3.6 + 0.9 * evr + 0.05 * normal(&mut rng), 3);
        let nre = round(5167.0 + 45.0 * evr + normal(&mut rng), 1);
        let job = rng.random_range(0..LETTERS.len());
        let marital = rng.random_range(0..4usize);
        let education = rng.random_range(0..8usize);
        let default = rng.random_range(0..3usize);
        let housing = rng.random_range(0..3usize);
        let loan = rng.random_range(0..3usize);
        let cellular = rng.random::<f64>() < 0.63;
        let month = if rng.random::<f64>() < 0.5 { 2 } else { regime };
        let dow = rng.random_range(0..5usize);
        let poutcome = if contacted {
            if rng.random::<f64>() < 0.65 {
                "success"
            } else {
                "failure"
            }
        } else if previous > 0.0 {
            "failure"
        } else {
            "nonexistent"
        };
        let z = -4.1 + 0.0045 * duration - 0.55 * evr - 0.08 * campaign
            + if contacted { 1.7 } else { 0.0 }
            + if cellular { 0.4 } else { 0.0 }
            + if month == 2 { -0.5 } else { 0.0 }
            + if job == 5 || job == 10 { 0.5 } else { 0.0 }
            + 0.01 * (age - 40.0);
        let y = rng.random::<f64>() < sigmoid(z);
        t.rows.push(vec![
            num(age),
            num(duration),
            num(campaign),
            num(pdays),
            num(previous),
            num(evr),
            num(cpi),
            num(cci),
            num(eur),
            num(nre),
            LETTERS[job].into(),
            ["married", "single", "divorced", "unknown"][marital].into(),
            format!("edu{education}"),
            ["no", "unknown", "yes"][default].into(),
            ["no", "yes", "unknown"][housing].into(),
            ["no", "yes", "unknown"][loan].into(),
            if cellular { "cellular" } else { "telephone" }.into(),
            months[month].into(),
            ["mon", "tue", "wed", "thu", "fri"][dow].into(),
            poutcome.into(),
            yes(y),
        ]);
    }
    t
}

/// The sentinel column alone: 3.7 % of rows were contacted (0–26 days ago,
/// 64 % positive), the rest hold 999 (9 % positive). The slope is negative;
/// an undamped Newton fit got its sign wrong.
pub fn sentinel_only(n: usize, seed: u64) -> Table {
    let mut t = Table::new(
        "sentinel_only",
        "one column: sentinel 999 in 96% of rows",
        Task::Classify,
        &["pdays", "y"],
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let recent = [3u32, 6, 4, 2, 9, 12, 0, 1, 5, 7, 10, 13, 15, 26];
    for _ in 0..n {
        let contacted = rng.random::<f64>() < 0.037;
        let pdays = if contacted {
            f64::from(recent[rng.random_range(0..recent.len())])
        } else {
            999.0
        };
        let y = rng.random::<f64>() < if contacted { 0.638 } else { 0.0926 };
        t.rows.push(vec![num(pdays), yes(y)]);
    }
    t
}

/// Perfectly separable by `x1` (y = x1 > 0.3), plus noise: without a penalty
/// the maximum-likelihood slope is infinite; with the default one it is not.
pub fn separable(n: usize, seed: u64) -> Table {
    let mut t = Table::new(
        "separable",
        "classes separated exactly by one column",
        Task::Classify,
        &["x1", "noise1", "noise2", "y"],
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..n {
        let x1 = round(normal(&mut rng), 6);
        t.rows.push(vec![
            num(x1),
            num(round(normal(&mut rng), 6)),
            num(round(3.0 * normal(&mut rng), 6)),
            yes(x1 > 0.3),
        ]);
    }
    t
}

/// 1 % positives, five informative numeric columns.
pub fn rare_positives(n: usize, seed: u64) -> Table {
    let mut t = Table::new(
        "rare_positives",
        "1% positives",
        Task::Classify,
        &["a", "b", "c", "d", "e", "y"],
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..n {
        let x: Vec<f64> = (0..5).map(|_| round(normal(&mut rng), 5)).collect();
        let z = -5.2 + 0.9 * x[0] - 0.6 * x[1] + 0.4 * x[2] + 0.1 * x[3];
        let mut row: Vec<String> = x.iter().map(|&v| num(v)).collect();
        row.push(yes(rng.random::<f64>() < sigmoid(z)));
        t.rows.push(row);
    }
    t
}

/// Near-collinear (`x2` = `x1` + 1e-6 noise), exactly collinear (`x3` =
/// `x1`, `x4` = 2·`x1` − `x5`) and constant columns.
pub fn collinear(n: usize, seed: u64, task: Task) -> Table {
    let mut t = Table::new(
        if task == Task::Classify {
            "collinear_classify"
        } else {
            "collinear_regress"
        },
        "near-collinear, exactly collinear and constant columns",
        task,
        &["x1", "x2", "x3", "x4", "x5", "constant", "y"],
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..n {
        let x1 = round(normal(&mut rng), 6);
        let x5 = round(normal(&mut rng), 6);
        let x2 = x1 + round(1e-6 * normal(&mut rng), 12);
        let x4 = 2.0 * x1 - x5;
        let z = 0.8 * x1 - 0.5 * x5;
        let y = match task {
            Task::Classify => yes(rng.random::<f64>() < sigmoid(z)),
            Task::Regress => num(round(3.0 + 2.0 * z + normal(&mut rng), 6)),
        };
        t.rows.push(vec![
            num(x1),
            num(x2),
            num(x1),
            num(x4),
            num(x5),
            "7".into(),
            y,
        ]);
    }
    t
}

/// Scales from 1e-6 to 1e9: a tiny rate, a ratio, a count, an income, and
/// a Unix timestamp (1.7e9 with a spread of months).
pub fn wide_scales(n: usize, seed: u64, task: Task) -> Table {
    let mut t = Table::new(
        if task == Task::Classify {
            "wide_scales_classify"
        } else {
            "wide_scales_regress"
        },
        "columns at 1e-6, 1e-1, 1e1, 1e5 and Unix timestamps (1.7e9 +- 3e7)",
        task,
        &["rate", "ratio", "count", "income", "signup_unix", "y"],
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..n {
        let rate = round(1e-6 * (1.0 + 0.3 * normal(&mut rng)), 12);
        let ratio = round(0.1 * rng.random::<f64>(), 6);
        let count = f64::from(rng.random_range(0..40u32));
        let income = round(60_000.0 + 20_000.0 * normal(&mut rng), 2);
        let signup = 1_700_000_000.0 + f64::from(rng.random_range(0..30_000_000u32));
        let z = 0.6 * (rate - 1e-6) / 3e-7 + 8.0 * (ratio - 0.05) - 0.03 * (count - 20.0)
            + 0.8 * (signup - 1.715e9) / 8.7e6
            + 1e-5 * (income - 60_000.0);
        let y = match task {
            Task::Classify => yes(rng.random::<f64>() < sigmoid(z)),
            Task::Regress => num(round(100.0 + 20.0 * z + 5.0 * normal(&mut rng), 6)),
        };
        t.rows.push(vec![
            num(rate),
            num(ratio),
            num(count),
            num(income),
            num(signup),
            y,
        ]);
    }
    t
}

/// Spend to predict with a sentinel (999 days since the last contact) and
/// three categorical columns whose one-hot levels add up to the intercept.
pub fn spend_categories(n: usize, seed: u64) -> Table {
    let mut t = Table::new(
        "spend_categories",
        "sentinel 999, one-hot categories aliased with the intercept, skewed target",
        Task::Regress,
        &[
            "tenure_months",
            "days_since_contact",
            "orders",
            "region",
            "channel",
            "segment",
            "y",
        ],
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let regions = ["north", "south", "east", "west", "centre"];
    let channels = ["web", "store", "phone"];
    for _ in 0..n {
        let tenure = f64::from(rng.random_range(1..120u32));
        let contacted = rng.random::<f64>() < 0.08;
        let days = if contacted {
            f64::from(rng.random_range(0..60u32))
        } else {
            999.0
        };
        let orders = f64::from(rng.random_range(0..30u32));
        let region = rng.random_range(0..regions.len());
        let channel = rng.random_range(0..channels.len());
        let segment = rng.random_range(0..4usize);
        let spend = 20.0 + 0.4 * tenure + 6.0 * orders + if contacted { 35.0 } else { 0.0 }
            - 0.01 * days.min(60.0)
            + [0.0, 5.0, -3.0, 8.0, 1.0][region]
            + [0.0, 12.0, -6.0][channel]
            + 4.0 * segment as f64
            + 15.0 * normal(&mut rng);
        t.rows.push(vec![
            num(tenure),
            num(days),
            num(orders),
            regions[region].into(),
            channels[channel].into(),
            format!("s{segment}"),
            num(round(spend, 2)),
        ]);
    }
    t
}

/// Every classification table of the reference checks.
pub fn classify_tables() -> Vec<Table> {
    vec![
        bank_like(12_000, 1),
        sentinel_only(12_000, 2),
        separable(3_000, 3),
        rare_positives(20_000, 4),
        collinear(5_000, 5, Task::Classify),
        wide_scales(5_000, 6, Task::Classify),
    ]
}

/// Every regression table of the reference checks.
pub fn regress_tables() -> Vec<Table> {
    vec![
        spend_categories(8_000, 7),
        collinear(5_000, 8, Task::Regress),
        wide_scales(5_000, 9, Task::Regress),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_deterministic_and_have_their_shapes() {
        let a = bank_like(3000, 1);
        let b = bank_like(3000, 1);
        assert_eq!(a.rows, b.rows);
        let pdays = a.columns.iter().position(|c| c == "pdays").unwrap_or(0);
        let sentinel = a.rows.iter().filter(|r| r[pdays] == "999").count();
        assert!(sentinel * 100 > 94 * a.rows.len(), "{sentinel}");
        let pos = a.rows.iter().filter(|r| r[a.target()] == "yes").count();
        let rate = pos as f64 / a.rows.len() as f64;
        assert!((0.07..0.16).contains(&rate), "positives {rate}");
        let rare = rare_positives(20_000, 4);
        let pos = rare
            .rows
            .iter()
            .filter(|r| r[rare.target()] == "yes")
            .count();
        assert!((100..400).contains(&pos), "{pos}");
        let f = a.folds();
        assert_eq!(f.len(), a.rows.len());
        assert!((0..FOLDS).all(|k| f.contains(&k)));
    }
}
