//! Hot paths of import: value parsing and identity resolution.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use infogap_core::value::{Cell, parse_decimal, parse_time};
use infogap_ingest::identity::{Edge, Node, resolve};

fn parsing(c: &mut Criterion) {
    let times = [
        "2024-03-06 10:00:00",
        "2024-03-06",
        "2024-03-06T10:00:00Z",
        "20240306",
        "1709719200",
    ];
    c.bench_function("parse_time x5", |b| {
        b.iter(|| {
            times
                .iter()
                .map(|t| parse_time(&Cell::Str(t)).ok().flatten().unwrap_or(0))
                .sum::<i64>()
        })
    });
    c.bench_function("parse_decimal", |b| {
        b.iter(|| parse_decimal(&Cell::Str(std::hint::black_box("1234.56"))))
    });
}

fn identity_graph(c: &mut Criterion) {
    // 100k people, each with a crm id, a web id and an email linking them
    let n = 100_000i64;
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    for p in 0..n {
        let (crm, web, email) = (3 * p, 3 * p + 1, 3 * p + 2);
        for (id, ns) in [(crm, "crm"), (web, "web"), (email, "email")] {
            nodes.push(Node {
                id,
                namespace: ns.into(),
                global: ns == "email",
                customer: id,
            });
        }
        edges.push(Edge {
            a: crm,
            b: email,
            suppressed: false,
        });
        edges.push(Edge {
            a: web,
            b: email,
            suppressed: false,
        });
    }
    c.bench_function("resolve 300k keys / 200k links", |b| {
        b.iter(|| resolve(&nodes, &edges, 5, 0, 3 * n).customers)
    });
}

criterion_group!(benches, parsing, identity_graph);
criterion_main!(benches);
