//! End-to-end tests of `eval recs` (top-N mode), `train recs` and `recommend`.

use std::fmt::Write as _;
use std::path::Path;

use infogap_models::recs::data::Interactions;
use infogap_models::recs::select::holdout;
use infogap_models::recs::synth::{planted_sessions, planted_taste};

use crate::common::{fails, json, ok, run_in, shared_anchors};

/// Writes a planted-taste train/test split (and the whole file) as MovieLens-style CSVs.
fn write_planted(dir: &Path) -> Vec<u32> {
    let p = planted_taste(200, 80, 4, 14, 0.1, 11);
    let x = Interactions::from_dense_triples(200, 80, &p.triples).expect("triples");
    let (train, test) = holdout(&x.by_user, 0.25, 3).expect("holdout");
    let mut tr = String::from("userId,movieId,rating,timestamp\n");
    let mut all = tr.clone();
    for u in 0..train.n_rows {
        for &i in train.row_indices(u) {
            writeln!(tr, "u{u},m{i},4,100").expect("write");
            writeln!(all, "u{u},m{i},4,100").expect("write");
        }
    }
    let mut te = String::from("userId,movieId,rating,timestamp\n");
    for (u, items) in test.iter().enumerate() {
        for &i in items {
            writeln!(te, "u{u},m{i},4,100").expect("write");
            writeln!(all, "u{u},m{i},4,100").expect("write");
        }
    }
    std::fs::write(dir.join("train.csv"), tr).expect("write train");
    std::fs::write(dir.join("test.csv"), te).expect("write test");
    // CRLF and no final newline are fine for the reader.
    std::fs::write(dir.join("all.csv"), all.replace('\n', "\r\n").trim_end()).expect("write all");
    p.user_group
}

/// `eval recs --train train.csv --test test.csv EXTRA --json` in `dir`.
fn split_json(dir: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["eval", "recs", "--train", "train.csv", "--test", "test.csv"];
    args.extend_from_slice(extra);
    args.push("--json");
    json(dir, &args)
}

#[test]
fn eval_recs_topn_on_a_planted_split() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_planted(dir.path());
    let ease = split_json(dir.path(), &["--algo", "ease", "--lambda", "20"]);
    for key in [
        "precision@10",
        "recall@10",
        "ndcg@10",
        "map@10",
        "coverage",
        "fit_seconds",
        "score_all_seconds",
    ] {
        assert!(ease[key].is_number(), "missing {key}: {ease}");
    }
    assert_eq!(ease["algo"], "ease");
    assert_eq!(ease["users_evaluated"], 200);
    let pop = split_json(dir.path(), &["--algo", "popularity"]);
    let (e, p) = (
        ease["ndcg@10"].as_f64().expect("ndcg"),
        pop["ndcg@10"].as_f64().expect("ndcg"),
    );
    assert!(e > p + 0.15, "EASE nDCG@10 {e:.3} vs popularity {p:.3}");

    // A grid is searched on the training data and reported; metric names follow --k.
    let grid = split_json(
        dir.path(),
        &[
            "--algo",
            "item-knn",
            "--grid",
            "k=5,40;shrink=0,10",
            "--k",
            "5",
        ],
    );
    assert!(grid["ndcg@5"].is_number());
    assert_eq!(
        grid["selection"]["candidates"]
            .as_array()
            .expect("candidates")
            .len(),
        4
    );
    assert!(
        grid["selection"]["chosen_on"]
            .as_str()
            .expect("chosen_on")
            .contains("training data")
    );
    // Small data: five disjoint inner splits of 10 % by default; both can be set.
    assert_eq!(
        grid["selection"]["inner_splits"], 5,
        "{}",
        grid["selection"]
    );
    assert_eq!(grid["selection"]["validation_fraction"], 0.1);
    let two = split_json(
        dir.path(),
        &[
            "--algo",
            "item-knn",
            "--grid",
            "k=5,40",
            "--inner-splits",
            "2",
            "--validation",
            "0.25",
        ],
    );
    assert_eq!(two["selection"]["inner_splits"], 2);
    assert_eq!(two["selection"]["validation_fraction"], 0.25);
    assert!(
        two["selection"]["chosen_on"]
            .as_str()
            .expect("chosen_on")
            .contains("mean of 2 disjoint per-user holdouts of 0.25")
    );
    for (bad, says) in [
        (
            &[
                "--train",
                "train.csv",
                "--test",
                "test.csv",
                "--inner-splits",
                "0",
            ][..],
            "inner-splits",
        ),
        (
            &[
                "--train",
                "train.csv",
                "--test",
                "test.csv",
                "--validation",
                "1.5",
            ][..],
            "inner validation share must be strictly between 0 and 1, got 1.5",
        ),
        (
            &["--ratings", "all.csv", "--inner-splits", "3"][..],
            "--inner-splits is a top-N parameter",
        ),
    ] {
        let err = fails(
            dir.path(),
            &[&["eval", "recs", "--algo", "auto"][..], bad].concat(),
        );
        assert!(err.contains(says), "{bad:?}: {err}");
    }

    // One file split per user.
    let h = json(
        dir.path(),
        &[
            "eval",
            "recs",
            "--ratings",
            "all.csv",
            "--holdout-per-user",
            "0.25",
            "--algo",
            "user-knn",
            "--json",
        ],
    );
    assert!(
        h["ndcg@10"].as_f64().expect("ndcg") > p,
        "user-kNN on the holdout: {h}"
    );
    assert_eq!(h["users_evaluated"], 200);

    // Human output names the metrics.
    let text = ok(
        dir.path(),
        &[
            "eval",
            "recs",
            "--train",
            "train.csv",
            "--test",
            "test.csv",
            "--algo",
            "ials",
        ],
    );
    assert!(text.contains("nDCG@10"), "{text}");
}

/// `eval recs --ratings FILE --holdout-per-user 0.25 EXTRA…`: top-N on a
/// per-user holdout of one file.
fn holdout_args<'a>(file: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "eval",
        "recs",
        "--ratings",
        file,
        "--holdout-per-user",
        "0.25",
    ];
    args.extend_from_slice(extra);
    args
}

/// Writes timed `(user, item, time)` events as `NAME.csv` (MovieLens CSV with
/// timestamps) and `NAME.txt` (whitespace, no times).
fn write_timed(dir: &Path, name: &str, events: impl IntoIterator<Item = (u64, u64, i64)>) {
    let mut csv = String::from("userId,movieId,rating,timestamp\n");
    let mut plain = String::new();
    for (u, i, t) in events {
        writeln!(csv, "u{u},m{i},4,{t}").expect("write");
        writeln!(plain, "u{u} m{i} 4").expect("write");
    }
    std::fs::write(dir.join(format!("{name}.csv")), csv).expect("write csv");
    std::fs::write(dir.join(format!("{name}.txt")), plain).expect("write txt");
}

/// Users walk a ring of 60 items in time order (16 consecutive items from a
/// pseudo-random start), so what a user rated next is a ring neighbour of what
/// they rated before. Written with timestamps (CSV) and without (whitespace).
fn write_walks(dir: &Path) {
    let mut events = Vec::new();
    let mut s = 7u64;
    for u in 0..150u64 {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let start = (s >> 33) % 60;
        for step in 0..16u64 {
            let t = 1_000_000 + u * 1000 + step * 10;
            events.push((u, (start + step) % 60, t as i64));
        }
    }
    write_timed(dir, "walks", events);
}

#[test]
fn seq_knn_uses_time_order_and_auto_falls_back_without_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_walks(dir.path());
    let run =
        |file: &str, algo: &str| json(dir.path(), &holdout_args(file, &["--algo", algo, "--json"]));
    let seq = run("walks.csv", "seq-knn");
    let pop = run("walks.csv", "popularity");
    let (r, p) = (
        seq["recall@10"].as_f64().expect("recall"),
        pop["recall@10"].as_f64().expect("recall"),
    );
    // 4 held-out items among 48 unseen: random recall@10 ≈ 0.21.
    assert!(
        r > 0.8 && r > p + 0.4,
        "seq-kNN recall@10 {r:.3} vs popularity {p:.3}"
    );
    // Without timestamps the sequence model says why it cannot fit ...
    let err = fails(
        dir.path(),
        &holdout_args("walks.txt", &["--algo", "seq-knn"]),
    );
    assert!(err.contains("time"), "{err}");
    // ... and auto still chooses (among the other models) and reports its search time.
    let auto = run("walks.txt", "auto");
    assert!(auto["ndcg@10"].as_f64().expect("ndcg") > pop["ndcg@10"].as_f64().expect("ndcg"));
    assert!(auto["select_seconds"].as_f64().expect("select_seconds") > 0.0);
    let cands = auto["selection"]["candidates"]
        .as_array()
        .expect("candidates");
    assert!(cands.iter().all(|c| c["algo"] != "seq-knn"));
}

/// Customers take part of each "page" they visit, one visit an hour
/// ([`planted_sessions`]). Written with timestamps (CSV) and without.
fn write_sessions(dir: &Path) {
    let p = planted_sessions(400, 150, 60, 6, 5, 4, 11);
    let events = p
        .events
        .iter()
        .map(|&(u, i, t)| (u64::from(u), u64::from(i), t));
    write_timed(dir, "sessions", events);
}

#[test]
fn session_models_use_visits_and_need_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_sessions(dir.path());
    let args = |file: &'static str, extra: &[&'static str]| {
        holdout_args(file, &[&["--seed", "3", "--json"], extra].concat())
    };
    let run = |file: &'static str, extra: &[&'static str]| run_in(dir.path(), &args(file, extra));
    let get = |file: &'static str, extra: &[&'static str]| json(dir.path(), &args(file, extra));
    // A session model against its plain counterpart on the same file: the
    // session model's JSON, after checking it recalls clearly more.
    let beats = |with: &[&'static str], without: &[&'static str]| {
        let (a, b) = (get("sessions.csv", with), get("sessions.csv", without));
        let (ra, rb) = (
            a["recall@10"].as_f64().expect("recall"),
            b["recall@10"].as_f64().expect("recall"),
        );
        assert!(
            ra > rb + 0.05,
            "{with:?}: recall@10 {ra:.3} vs {without:?} {rb:.3}"
        );
        a
    };
    let session = beats(
        &[
            "--algo",
            "session-ease",
            "--lambda",
            "10",
            "--session-gap",
            "60",
        ],
        &["--algo", "ease", "--lambda", "10"],
    );
    assert_eq!(session["params"]["session_gap"], 60);
    // A decay finds the visits even when the gap spans the whole history.
    let decayed = beats(
        &[
            "--algo",
            "session-ease",
            "--lambda",
            "10",
            "--session-gap",
            "100000000",
            "--session-decay",
            "60",
        ],
        &["--algo", "ease", "--lambda", "10"],
    );
    assert_eq!(decayed["params"]["session_decay"], 60.0);
    // The sparse counterpart, against plain item-kNN.
    let session_knn = beats(
        &[
            "--algo",
            "session-knn",
            "--session-gap",
            "60",
            "--session-weight",
            "3",
            "--neighbors",
            "50",
            "--shrink",
            "1",
        ],
        &["--algo", "item-knn", "--neighbors", "50", "--shrink", "1"],
    );
    assert_eq!(session_knn["params"]["session_weight"], 3.0);
    // Without timestamps: refused, saying why.
    for algo in ["session-ease", "session-knn"] {
        let out = run("sessions.txt", &["--algo", algo]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("{algo} needs the time")), "{err}");
    }
    // A negative gap is refused by name.
    let out = run(
        "sessions.csv",
        &["--algo", "session-ease", "--session-gap=-5"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("session_gap"));
    let err = fails(
        dir.path(),
        &args(
            "sessions.csv",
            &["--algo", "session-ease", "--session-decay=-1"],
        ),
    );
    assert!(err.contains("session_decay"), "{err}");
    // auto tries both when times are known, and only then.
    let (timed, untimed) = (
        get("sessions.csv", &["--algo", "auto"]),
        get("sessions.txt", &["--algo", "auto"]),
    );
    for algo in ["session-ease", "session-knn"] {
        let cands = |v: &serde_json::Value| -> usize {
            v["selection"]["candidates"]
                .as_array()
                .expect("candidates")
                .iter()
                .filter(|c| c["algo"] == algo)
                .count()
        };
        assert!(cands(&timed) >= 6, "{algo}");
        assert_eq!(cands(&untimed), 0, "{algo}");
    }
}

#[test]
fn rating_confidence_reads_the_ratings_and_needs_them_positive() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Taste items rated 4–5, noise items 1–2 (half the ratings are noise).
    let p = planted_taste(300, 120, 4, 24, 0.5, 5);
    let mut txt = String::new();
    for (u, i, r) in p.rated(6) {
        writeln!(txt, "u{u} m{i} {r}").expect("write");
    }
    std::fs::write(dir.path().join("rated.txt"), &txt).expect("write");
    // The same file with one rating of 0.
    let zero = txt.replacen(" 1\n", " 0\n", 1);
    assert_ne!(zero, txt);
    std::fs::write(dir.path().join("zero.txt"), zero).expect("write");
    write_sessions(dir.path());
    let args = |file: &'static str, extra: &[&'static str]| {
        holdout_args(file, &[&["--seed", "2", "--json"], extra].concat())
    };
    let get = |file: &'static str, extra: &[&'static str]| json(dir.path(), &args(file, extra));
    let ials = [
        "--algo",
        "ials",
        "--factors",
        "8",
        "--reg",
        "1",
        "--alpha",
        "5",
        "--iterations",
        "10",
    ];
    let (plain, rated) = (
        get("rated.txt", &ials),
        get("rated.txt", &[&ials[..], &["--rating-confidence"]].concat()),
    );
    let recall = |v: &serde_json::Value| v["recall@10"].as_f64().expect("recall");
    assert!(
        recall(&rated) > recall(&plain) + 0.03,
        "rating confidence {} vs plain {}",
        recall(&rated),
        recall(&plain)
    );
    assert_eq!(rated["params"]["rating_confidence"], true);
    assert_eq!(plain["params"]["rating_confidence"], false);
    // auto tries both confidences when the ratings vary, and only then.
    let rated_candidates = |v: &serde_json::Value| {
        v["selection"]["candidates"]
            .as_array()
            .expect("candidates")
            .iter()
            .filter(|c| c["params"]["rating_confidence"] == true)
            .count()
    };
    assert!(rated_candidates(&get("rated.txt", &["--algo", "auto"])) >= 12);
    assert_eq!(
        rated_candidates(&get("sessions.csv", &["--algo", "auto"])),
        0,
        "all ratings 4"
    );
    // A rating of 0 cannot be a confidence: refused, saying where.
    let err = fails(
        dir.path(),
        &args("zero.txt", &[&ials[..], &["--rating-confidence"]].concat()),
    );
    assert!(
        err.contains("zero.txt: ")
            && err.contains("positive ratings")
            && err.contains(" rated item m")
            && err.contains(" 0:"),
        "{err}"
    );
    // Only iALS reads it.
    let out = run_in(
        dir.path(),
        &args("rated.txt", &["--algo", "ease", "--rating-confidence"]),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rating_confidence"));
}

#[test]
fn eval_recs_rejects_bad_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_planted(dir.path());
    let cases: &[(&[&str], &str)] = &[
        (
            &["eval", "recs", "--train", "train.csv"],
            "--train and --test",
        ),
        (
            &[
                "eval",
                "recs",
                "--train",
                "train.csv",
                "--test",
                "test.csv",
                "--algo",
                "nope",
            ],
            "unknown algorithm",
        ),
        (
            &[
                "eval",
                "recs",
                "--train",
                "train.csv",
                "--test",
                "test.csv",
                "--algo",
                "ials",
                "--lambda",
                "5",
            ],
            "lambda",
        ),
        (
            &[
                "eval",
                "recs",
                "--train",
                "train.csv",
                "--test",
                "missing.csv",
                "--algo",
                "ease",
            ],
            "missing.csv",
        ),
        (
            &[
                "eval",
                "recs",
                "--ratings",
                "all.csv",
                "--holdout-per-user",
                "1.5",
            ],
            "holdout",
        ),
        (
            &[
                "eval",
                "recs",
                "--train",
                "train.csv",
                "--test",
                "test.csv",
                "--algo",
                "ease",
                "--grid",
                "lambda=x",
            ],
            "not a number",
        ),
    ];
    for (args, needle) in cases {
        let out = run_in(dir.path(), args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(needle),
            "{args:?}: stderr {err:?} should mention {needle:?}"
        );
    }
}

#[test]
fn train_and_recommend_on_the_demo_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    ok(
        d,
        &["demo", "--out", "demo", "--customers", "120", "--seed", "5"],
    );
    ok(d, &["import", "--config", "demo/infogap.toml"]);
    // No model yet: a clear error.
    let out = run_in(d, &["recommend", "--customer", "C000002"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("train recs"));
    // Rating confidence is for ratings files: refused here, nothing saved
    // (the next model is still version 1).
    let err = fails(
        d,
        &[
            "train",
            "recs",
            "--algo",
            "ials",
            "--set",
            "rating_confidence=1",
        ],
    );
    assert!(
        err.contains("rating_confidence") && err.contains("eval recs"),
        "{err}"
    );

    let t = json(d, &["train", "recs", "--algo", "ease", "--json"]);
    assert_eq!(t["version"], 1);
    assert_eq!(t["algo"], "ease");
    assert!(t["holdout"]["ndcg@10"].as_f64().expect("ndcg") > 0.0);

    // The top 5 of C000002, each explained by the customer's own products.
    let explained = || {
        let r = json(
            d,
            &[
                "recommend",
                "--customer",
                "C000002",
                "--k",
                "5",
                "--explain",
                "--json",
            ],
        );
        let items = r["items"].as_array().expect("items").clone();
        assert_eq!(items.len(), 5);
        for it in &items {
            let because = it["because"].as_array().expect("because");
            assert!(!because.is_empty(), "no explanation: {it}");
        }
        (r, items)
    };
    let (r, items) = explained();
    assert_eq!(r["fallback"], false);
    assert_eq!(r["in_training"], true);
    // Only one category when asked; seen products may come back with --include-seen.
    let cat = items[0]["product"]["category"]
        .as_str()
        .expect("category")
        .to_owned();
    let c = json(
        d,
        &[
            "recommend",
            "--customer",
            "C000002",
            "--k",
            "3",
            "--category",
            &cat,
            "--json",
        ],
    );
    assert!(
        c["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|i| i["product"]["category"] == cat.as_str())
    );
    let seen = json(
        d,
        &[
            "recommend",
            "--customer",
            "C000002",
            "--k",
            "100000",
            "--include-seen",
            "--json",
        ],
    );
    let unseen = json(
        d,
        &[
            "recommend",
            "--customer",
            "C000002",
            "--k",
            "100000",
            "--json",
        ],
    );
    let n_seen = seen["items"].as_array().expect("items").len();
    let n_unseen = unseen["items"].as_array().expect("items").len();
    assert_eq!(
        n_seen - n_unseen,
        r["history_items"].as_u64().expect("history") as usize
    );
    // Unknown customers are a clear error.
    let out = run_in(d, &["recommend", "--customer", "nobody-here"]);
    assert!(!out.status.success());
    // An allow list keeps only its products; an unknown allowed key is an error naming it.
    let pick: Vec<String> = unseen["items"].as_array().expect("items")[..3]
        .iter()
        .map(|i| i["product"]["key"].as_str().expect("key").to_owned())
        .collect();
    let allowed = format!("{},{}", pick[2], pick[0]);
    let a = json(
        d,
        &[
            "recommend",
            "--customer",
            "C000002",
            "--only",
            &allowed,
            "--json",
        ],
    );
    let got: Vec<&str> = a["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["product"]["key"].as_str().expect("key"))
        .collect();
    assert_eq!(got, vec![pick[0].as_str(), pick[2].as_str()]);
    let out = run_in(
        d,
        &["recommend", "--customer", "C000002", "--only", "NO-SUCH-P"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NO-SUCH-P"));
    // So is a category no product has, and an output file that cannot be written.
    let out = run_in(
        d,
        &[
            "recommend",
            "--customer",
            "C000002",
            "--category",
            "no-such-cat",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-cat"));
    let out = run_in(d, &["recommend", "--all", "--out", "no/such/dir/x.csv"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/dir/x.csv"));
    // Everyone at once: a CSV whose rows for C000002 equal the single answer.
    let b = json(
        d,
        &[
            "recommend",
            "--all",
            "--out",
            "all.csv",
            "--k",
            "5",
            "--json",
        ],
    );
    let customers = b["customers"].as_u64().expect("customers");
    assert!(customers >= 100, "{b}");
    assert_eq!(
        b["in_training"].as_u64().expect("n")
            + b["folded_in"].as_u64().expect("n")
            + b["fallback"].as_u64().expect("n"),
        customers
    );
    let csv = std::fs::read_to_string(d.join("all.csv")).expect("all.csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("customer,customer_id,rank,product,name,category,score,source")
    );
    let mine: Vec<&str> = lines
        .filter(|l| l.starts_with("crm:C000002,"))
        .map(|l| l.split(',').nth(3).expect("product"))
        .collect();
    let single: Vec<&str> = items
        .iter()
        .map(|i| i["product"]["key"].as_str().expect("key"))
        .collect();
    assert_eq!(mine, single);
    assert_eq!(
        csv.lines().count() as u64 - 1,
        b["rows"].as_u64().expect("rows")
    );
    // Retraining makes version 2; the session model reads the store's
    // times (order lines of one basket share theirs) and explains like item-kNN.
    let t2 = json(
        d,
        &[
            "train",
            "recs",
            "--algo",
            "session-knn",
            "--set",
            "session_gap=0,session_weight=3",
            "--json",
        ],
    );
    assert_eq!(t2["version"], 2);
    assert_eq!(t2["algo"], "session-knn");
    assert_eq!(t2["params"]["session_weight"], 3.0);
    assert!(t2["holdout"]["ndcg@10"].as_f64().expect("ndcg") > 0.0);
    explained();
}

#[test]
#[ignore = "real data: ../shared/data"]
fn eval_recs_auto_on_the_shared_ml100k_split() {
    let a = shared_anchors();
    let dir = tempfile::tempdir().expect("tempdir");
    let train = a.join("ml100k_split_train.csv");
    let test = a.join("ml100k_split_test.csv");
    let v = json(
        dir.path(),
        &[
            "eval",
            "recs",
            "--train",
            train.to_str().expect("path"),
            "--test",
            test.to_str().expect("path"),
            "--algo",
            "auto",
            "--json",
        ],
    );
    let ndcg = v["ndcg@10"].as_f64().expect("ndcg");
    // Chosen on the training data only; the peers' best (EASE, λ picked on the
    // test set) is 0.479, the target 0.50. infogap: 0.5005 (seeds
    // 0/1/2: 0.5005/0.5015/0.5005 with session-EASE's time decay; 0.4969/
    // 0.4976/0.4998 before it). The bound sits 0.0025 below today's figure:
    // it fails the build without the decay, and leaves room for another CPU's
    // rounding to change a close choice (BENCHMARKS.md, top-N, round 9).
    assert!(ndcg >= 0.498, "nDCG@10 {ndcg:.4}");
    assert_eq!(v["selection"]["inner_splits"], 5);
    // The train file has timestamps, so the session-aware models were tried.
    assert!(
        v["selection"]["candidates"]
            .as_array()
            .expect("candidates")
            .iter()
            .any(|c| c["algo"] == "session-ease")
    );
    // The search is reported and the refitted model is fast (loose bound for a loaded CI box).
    assert!(v["select_seconds"].as_f64().expect("select_seconds") > 0.0);
    assert!(v["fit_seconds"].as_f64().expect("fit_seconds") < 2.0);
    assert_eq!(v["users_evaluated"], 943);
    assert!(
        v["selection"]["candidates"]
            .as_array()
            .expect("candidates")
            .len()
            > 10
    );
}
