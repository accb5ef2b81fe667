//! Identity resolution as a pure function: given the identity graph (keys as
//! nodes, "seen on the same record" / "link table" as edges) and the current
//! customer of every key, compute which keys form one person and which
//! customer id each group keeps.
//!
//! Rules, in order:
//! 1. Suppressed edges (undone by a split) are ignored.
//! 2. A global key (email, phone) that connects more than
//!    `max_customers_per_key` distinct customer ids of one namespace is
//!    *over-shared* (a family or office address, a shop's phone): none of its
//!    edges link, and it is reported.
//! 3. Union-find over the remaining edges gives the groups.
//! 4. Every group keeps the smallest existing customer id among its members
//!    that no other group has claimed (groups are visited in order of that
//!    id), so ids are stable across imports; a group with none gets a new id.
//!    Existing customers that no group keeps were merged; a group that had
//!    existing ids but could keep none was split off.

use std::collections::{BTreeMap, HashMap, HashSet};

/// A node of the identity graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Identity id.
    pub id: i64,
    /// Namespace (`email`/`phone` for global keys).
    pub namespace: String,
    /// True for email and phone keys.
    pub global: bool,
    /// Customer it belongs to now.
    pub customer: i64,
}

/// An edge of the identity graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    /// One identity.
    pub a: i64,
    /// The other.
    pub b: i64,
    /// Switched off by a split.
    pub suppressed: bool,
}

/// A global key ignored for linking because too many customers share it.
#[derive(Debug, Clone, PartialEq)]
pub struct OverShared {
    /// Identity id of the key.
    pub identity: i64,
    /// Namespace where the sharing was seen.
    pub namespace: String,
    /// Distinct customer ids of that namespace sharing it.
    pub ids: usize,
}

/// The outcome of a resolution.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolution {
    /// Identities whose customer changes: (identity, new customer).
    pub changes: Vec<(i64, i64)>,
    /// Customer ids created.
    pub new_customers: Vec<i64>,
    /// (kept customer, merged-away customer), for customers that existed before (`< first_new`).
    pub merges: Vec<(i64, i64)>,
    /// (customer split from, new customer).
    pub splits: Vec<(i64, i64)>,
    /// Over-shared keys.
    pub over_shared: Vec<OverShared>,
    /// Number of groups (unified customers).
    pub customers: usize,
}

struct Dsu {
    parent: Vec<usize>,
    rank: Vec<u8>,
}

impl Dsu {
    fn new(n: usize) -> Self {
        Dsu {
            parent: (0..n).collect(),
            rank: vec![0; n],
        }
    }
    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        match self.rank[ra].cmp(&self.rank[rb]) {
            std::cmp::Ordering::Less => self.parent[ra] = rb,
            std::cmp::Ordering::Greater => self.parent[rb] = ra,
            std::cmp::Ordering::Equal => {
                self.parent[rb] = ra;
                self.rank[ra] += 1;
            }
        }
    }
}

/// Resolves the graph. `first_new` is the first customer id that did not exist
/// before this run (ids `>= first_new` are provisional: merging them is not
/// reported); `next_id` is the next free customer id.
pub fn resolve(
    nodes: &[Node],
    edges: &[Edge],
    max_customers_per_key: usize,
    first_new: i64,
    next_id: i64,
) -> Resolution {
    let index: HashMap<i64, usize> = nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
    let live: Vec<(usize, usize)> = edges
        .iter()
        .filter(|e| !e.suppressed)
        .filter_map(|e| Some((*index.get(&e.a)?, *index.get(&e.b)?)))
        .collect();

    // rule 2: over-shared global keys
    let mut neighbours: HashMap<usize, BTreeMap<&str, HashSet<usize>>> = HashMap::new();
    for &(a, b) in &live {
        for (g, o) in [(a, b), (b, a)] {
            if nodes[g].global && !nodes[o].global {
                neighbours
                    .entry(g)
                    .or_default()
                    .entry(nodes[o].namespace.as_str())
                    .or_default()
                    .insert(o);
            }
        }
    }
    let mut ignored: HashSet<usize> = HashSet::new();
    let mut over_shared = Vec::new();
    let mut keys: Vec<_> = neighbours.into_iter().collect();
    keys.sort_by_key(|(g, _)| *g);
    for (g, per_ns) in keys {
        if let Some((ns, ids)) = per_ns.iter().max_by_key(|(_, s)| s.len())
            && ids.len() > max_customers_per_key
        {
            ignored.insert(g);
            over_shared.push(OverShared {
                identity: nodes[g].id,
                namespace: (*ns).to_string(),
                ids: ids.len(),
            });
        }
    }

    // rule 3: union-find
    let mut dsu = Dsu::new(nodes.len());
    for &(a, b) in &live {
        if !ignored.contains(&a) && !ignored.contains(&b) {
            dsu.union(a, b);
        }
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..nodes.len() {
        groups.entry(dsu.find(i)).or_default().push(i);
    }

    // rule 4: stable customer ids
    let mut ordered: Vec<(i64, i64, Vec<usize>, Vec<i64>)> = groups
        .into_values()
        .map(|members| {
            let mut cands: Vec<i64> = members.iter().map(|&m| nodes[m].customer).collect();
            cands.sort_unstable();
            cands.dedup();
            let min_node = members
                .iter()
                .map(|&m| nodes[m].id)
                .min()
                .unwrap_or(i64::MAX);
            (
                cands.first().copied().unwrap_or(i64::MAX),
                min_node,
                members,
                cands,
            )
        })
        .collect();
    ordered.sort_by_key(|(first, min_node, _, _)| (*first, *min_node));
    let mut taken: HashSet<i64> = HashSet::new();
    let mut next = next_id;
    let mut res = Resolution {
        over_shared,
        customers: ordered.len(),
        ..Default::default()
    };
    let mut kept_by_group: Vec<(i64, Vec<i64>)> = Vec::new();
    for (_, _, members, cands) in &ordered {
        let chosen = match cands.iter().find(|c| !taken.contains(c)) {
            Some(&c) => c,
            None => {
                let c = next;
                next += 1;
                res.new_customers.push(c);
                if let Some(&origin) = cands.iter().find(|&&c| c < first_new) {
                    res.splits.push((origin, c));
                }
                c
            }
        };
        taken.insert(chosen);
        for &m in members {
            if nodes[m].customer != chosen {
                res.changes.push((nodes[m].id, chosen));
            }
        }
        kept_by_group.push((chosen, cands.clone()));
    }
    for (chosen, cands) in kept_by_group {
        for c in cands {
            if c != chosen && !taken.contains(&c) && c < first_new && chosen < first_new {
                res.merges.push((chosen, c));
            }
        }
    }
    res.changes.sort_unstable();
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: i64, ns: &str, customer: i64) -> Node {
        Node {
            id,
            namespace: ns.into(),
            global: ns == "email" || ns == "phone",
            customer,
        }
    }
    fn edge(a: i64, b: i64) -> Edge {
        Edge {
            a,
            b,
            suppressed: false,
        }
    }

    #[test]
    fn links_across_namespaces_through_an_email() {
        // crm:1 — email:3 — web:2
        let nodes = vec![node(1, "crm", 10), node(2, "web", 11), node(3, "email", 12)];
        let r = resolve(&nodes, &[edge(1, 3), edge(2, 3)], 5, 100, 100);
        assert_eq!(r.customers, 1);
        assert_eq!(r.changes, vec![(2, 10), (3, 10)]);
        assert_eq!(r.merges, vec![(10, 11), (10, 12)]);
    }

    #[test]
    fn over_shared_email_does_not_link() {
        let mut nodes = vec![node(100, "email", 1000)];
        let mut edges = vec![];
        for i in 0..6 {
            nodes.push(node(i, "crm", i));
            edges.push(edge(i, 100));
        }
        let r = resolve(&nodes, &edges, 5, 0, 2000);
        assert_eq!(r.customers, 7);
        assert_eq!(r.over_shared.len(), 1);
        assert_eq!(r.over_shared[0].ids, 6);
        assert!(r.changes.is_empty());
        // five sharers are fine
        let r5 = resolve(&nodes[..6], &edges[..5], 5, 0, 2000);
        assert_eq!(r5.customers, 1);
    }

    #[test]
    fn suppressed_edge_splits_with_a_new_id() {
        let nodes = vec![node(1, "crm", 7), node(2, "web", 7)];
        let edges = vec![Edge {
            a: 1,
            b: 2,
            suppressed: true,
        }];
        let r = resolve(&nodes, &edges, 5, 50, 50);
        assert_eq!(r.customers, 2);
        assert_eq!(r.new_customers, vec![50]);
        assert_eq!(r.splits, vec![(7, 50)]);
        assert_eq!(r.changes, vec![(2, 50)]);
    }

    #[test]
    fn provisional_ids_merge_silently() {
        let nodes = vec![node(1, "crm", 20), node(2, "email", 21)];
        let r = resolve(&nodes, &[edge(1, 2)], 5, 20, 22);
        assert!(r.merges.is_empty());
        assert_eq!(r.changes, vec![(2, 20)]);
    }
}
