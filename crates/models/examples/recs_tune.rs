// TEMPORARY tuning harness (not to be committed): ml-100k shared split.
use infogap_models::recs::data::{Combine, InteractionsBuilder};
use infogap_models::recs::{select, AlgoParams, Recommender};
use std::time::Instant;

fn main() {
    let dir = "/work/shared/anchors";
    let mut b = InteractionsBuilder::new(Combine::Last);
    let read = |f: &str| -> Vec<(String, String)> {
        std::fs::read_to_string(format!("{dir}/{f}")).unwrap().lines().skip(1)
            .map(|l| { let v: Vec<&str> = l.split(',').collect(); (v[0].to_string(), v[1].to_string()) }).collect()
    };
    let tr = read("ml100k_split_train.csv");
    let te = read("ml100k_split_test.csv");
    for (u, i) in &tr { b.add(u, i, 1.0, None); }
    for (_, i) in &te { b.add_item(i); }
    let x = b.build().unwrap();
    let mut test = vec![Vec::new(); x.n_users()];
    for (u, i) in &te { test[x.users.get(u).unwrap() as usize].push(x.items.get(i).unwrap()); }
    println!("users {} items {} nnz {}", x.n_users(), x.n_items(), x.nnz());
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().cloned().unwrap_or("test".into());
    let mut cands: Vec<AlgoParams> = Vec::new();
    for spec in args.iter().skip(1) {
        let (algo, grid) = spec.split_once(':').unwrap_or((spec, ""));
        let base = AlgoParams::default_for(algo).unwrap();
        if grid.is_empty() { cands.push(base); } else {
            cands.extend(select::expand_grid(&base, &select::parse_grid(grid).unwrap()).unwrap());
        }
    }
    if mode == "blend" {
        // blend first two candidates with weights, rank-normalized; plus pop-exponent on the first
        let m1 = Recommender::fit(&cands[0], &x).unwrap();
        let m2 = Recommender::fit(&cands[1], &x).unwrap();
        let pop = m1.popularity.scores.clone();
        for w in [0.7f32, 0.5, 0.4, 0.3, 0.2] { for beta in [0.0f32] {
            let filter = infogap_models::recs::topn::TopNFilter::default();
            let recs: Vec<Vec<u32>> = (0..x.n_users()).map(|u| {
                let h = x.history(u);
                let mut a = vec![0f32; x.n_items()]; let mut b = vec![0f32; x.n_items()];
                m1.scores(Some(u as u32), &h, &mut a); m2.scores(Some(u as u32), &h, &mut b);
                let ra = rn(&a); let rb = rn(&b);
                let s: Vec<f32> = (0..a.len()).map(|j| (w*ra[j] + (1.0-w)*rb[j]) * (pop[j]+1.0).powf(beta)).collect();
                let seen: Vec<u32> = h.iter().map(|t| t.0).collect();
                infogap_models::recs::topn::top_n(&s, &seen, 10, &filter).into_iter().map(|t| t.item).collect()
            }).collect();
            let r = infogap_models::metrics::ranking::evaluate(&recs, &test, 10, x.n_items());
            println!("w {w} beta {beta} nDCG {:.4} P {:.4}", r.ndcg, r.precision);
        }}
        return;
    }
    if mode == "uw" || mode == "iw" {
        let g: f32 = std::env::var("GAMMA").unwrap().parse().unwrap();
        let mut by = x.by_user.clone();
        let pop: Vec<f32> = (0..x.n_items()).map(|i| x.by_item.row_len(i).max(1) as f32).collect();
        for u in 0..by.n_rows { let n = by.row_len(u) as f32; for p in by.indptr[u]..by.indptr[u+1] {
            by.values[p] = if mode == "uw" { n.powf(-g) } else { pop[by.indices[p] as usize].powf(-g) }; } }
        let bt = by.transpose();
        for c in &cands {
            let m = Recommender::fit_matrices(c, &by, &bt).unwrap();
            let (_, r) = select::evaluate(&m, &by, &test, 10);
            println!("{mode} g {g} {:?} nDCG {:.4} P {:.4}", c, r.ndcg, r.precision);
        }
        return;
    }
    if mode == "tk" {
        // time-kernel EASE
        let mut tmap = std::collections::HashMap::new();
        for l in std::fs::read_to_string(format!("{dir}/ml100k_split_train.csv")).unwrap().lines().skip(1) {
            let v: Vec<&str> = l.split(',').collect();
            tmap.insert((x.users.get(v[0]).unwrap(), x.items.get(v[1]).unwrap()), v[3].parse::<f64>().unwrap());
        }
        let n = x.n_items();
        let items: Vec<u32> = (0..n as u32).filter(|&i| x.by_item.row_len(i as usize) > 0).collect();
        let mut pos = vec![u32::MAX; n];
        for (p, &i) in items.iter().enumerate() { pos[i as usize] = p as u32; }
        let m = items.len();
        for tau_h in [1.0f64, 24.0, 24.0*7.0, 24.0*30.0, 1e9] {
          for mix in [0.0f64, 0.5] {
            let tau = tau_h * 3600.0;
            let mut g = vec![0f64; m*m];
            for u in 0..x.n_users() {
                let row: Vec<(usize, f64)> = x.by_user.row_indices(u).iter().map(|&i| (pos[i as usize] as usize, tmap[&(u as u32, i)])).collect();
                for &(a, ta) in &row { for &(b, tb) in &row { g[a*m+b] += mix + (1.0-mix) * (-(ta-tb).abs()/tau).exp(); } }
            }
            for lambda in [30.0, 100.0, 300.0, 500.0] {
                let e = infogap_models::recs::ease::Ease::from_gram(items.clone(), pos.clone(), g.clone(), lambda, 0.0).unwrap();
                let filter = infogap_models::recs::topn::TopNFilter::default();
                let recs: Vec<Vec<u32>> = (0..x.n_users()).map(|u| {
                    let h = x.history(u); let mut a = vec![0f32; n]; e.score(&h, &mut a);
                    let seen: Vec<u32> = h.iter().map(|t| t.0).collect();
                    infogap_models::recs::topn::top_n(&a, &seen, 10, &filter).into_iter().map(|t| t.item).collect() }).collect();
                let r = infogap_models::metrics::ranking::evaluate(&recs, &test, 10, n);
                println!("tau_h {tau_h} mix {mix} lambda {lambda} nDCG {:.4}", r.ndcg);
            }
          }
        }
        return;
    }
    if mode == "rw" {
        let g: f32 = std::env::var("GAMMA").unwrap().parse().unwrap();
        let mut rmap = std::collections::HashMap::new();
        for l in std::fs::read_to_string(format!("{dir}/ml100k_split_train.csv")).unwrap().lines().skip(1) {
            let v: Vec<&str> = l.split(',').collect();
            rmap.insert((x.users.get(v[0]).unwrap(), x.items.get(v[1]).unwrap()), v[2].parse::<f32>().unwrap());
        }
        let mut by = x.by_user.clone();
        for u in 0..by.n_rows { for p in by.indptr[u]..by.indptr[u+1] {
            by.values[p] = (rmap[&(u as u32, by.indices[p])] / 5.0).powf(g); } }
        let bt = by.transpose();
        for c in &cands {
            let m = Recommender::fit_matrices(c, &by, &bt).unwrap();
            let (_, r) = select::evaluate(&m, &by, &test, 10);
            println!("rw g {g} {:?} nDCG {:.4} P {:.4}", c, r.ndcg, r.precision);
        }
        return;
    }
    if mode == "inner" {
        let sel = select::grid_search(&cands, &x.by_user, 0.25, 0, 10).unwrap();
        for t in &sel.trials { println!("{:?} ndcg {:.4} fit {:.3}", t.params, t.report.map(|r| r.ndcg).unwrap_or(f64::NAN), t.fit_seconds); }
        println!("BEST {:?}", sel.best);
        cands = vec![sel.best];
    }
    for c in &cands {
        let t0 = Instant::now();
        let m = Recommender::fit(c, &x).unwrap();
        let fit = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let (_, r) = select::evaluate(&m, &x.by_user, &test, 10);
        let sc = t1.elapsed().as_secs_f64();
        println!("TEST {:?}\n   P {:.4} R {:.4} nDCG {:.4} MAP {:.4} cov {:.3} fit {:.3}s score {:.3}s", c, r.precision, r.recall, r.ndcg, r.map, r.coverage, fit, sc);
    }
}

fn rn(s: &[f32]) -> Vec<f32> {
    // z-score normalization
    let n = s.len() as f32; let m = s.iter().sum::<f32>()/n;
    let sd = (s.iter().map(|v| (v-m)*(v-m)).sum::<f32>()/n).sqrt().max(1e-9);
    s.iter().map(|v| (v-m)/sd).collect()
}
