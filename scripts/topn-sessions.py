#!/usr/bin/env python3
"""Session-aware EASE on inner splits of the shared ml-100k TRAIN file (issue 3, round 5).

Reproduces the inner-validation rows of BENCHMARKS.md "Round 5": per-user holdouts of the
train file only (the test file is never read), nDCG@10 on the held-out part, for
EASE, session-EASE (EASE on X'X + w*S'S, sessions cut at gaps > GAP seconds) alone, and
session-EASE added to the 0.75*iALS + 0.25*GF-CF blend (per-user z-scores).

    PY=/work/venv/bin/python   # numpy, scipy, pandas
    $PY scripts/topn-sessions.py [--holdout 0.25] [--seeds 0,1] [--anchors ../shared/anchors]

A numpy prototype for reading, not the product: the Rust model is `--algo session-ease`.
iALS here is the exact-solve numpy version (a few minutes per split).
"""
import argparse

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import svds

ap = argparse.ArgumentParser()
ap.add_argument("--anchors", default="../shared/anchors")
ap.add_argument("--holdout", type=float, default=0.25)
ap.add_argument("--seeds", default="0,1")
args = ap.parse_args()

tr = pd.read_csv(f"{args.anchors}/ml100k_split_train.csv")
users = sorted(set(tr.user_id))
items = sorted(set(tr.item_id))
um = {u: k for k, u in enumerate(users)}
im = {i: k for k, i in enumerate(items)}
nu, ni = len(users), len(items)
ts = {(um[u], im[i]): t for u, i, t in zip(tr.user_id, tr.item_id, tr.timestamp)}
X = sp.csr_matrix((np.ones(len(tr)), (tr.user_id.map(um), tr.item_id.map(im))), shape=(nu, ni))
DISC = 1 / np.log2(np.arange(2, 12))


def split(X, frac, seed):
    """Per user: shuffle the items, floor(frac*n + 0.5) (at most n-1) are held out."""
    rng = np.random.default_rng(seed)
    a, v = ([], []), ([], [])
    for u in range(X.shape[0]):
        its = X.indices[X.indptr[u]:X.indptr[u + 1]].copy()
        rng.shuffle(its)
        nt = min(int(np.floor(frac * len(its) + 0.5)), len(its) - 1)
        v[0].extend([u] * nt); v[1].extend(its[:nt])
        a[0].extend([u] * (len(its) - nt)); a[1].extend(its[nt:])
    mk = lambda rc: sp.csr_matrix((np.ones(len(rc[0])), rc), shape=X.shape)
    return mk(a), mk(v)


def ndcg(S, A, V, k=10):
    S = np.array(S, dtype=np.float64)
    S[A.nonzero()] = -np.inf
    top = np.argpartition(-S, k, axis=1)[:, :k]
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(S, top, 1), 1), 1)
    rows = V.tolil().rows
    tot, n = 0.0, 0
    for u in range(S.shape[0]):
        t = set(rows[u])
        if t:
            hits = np.array([i in t for i in top[u]])
            tot += (hits * DISC).sum() / DISC[:min(k, len(t))].sum()
            n += 1
    return tot / n


def z(S, A):
    """Per-user standardized scores over the items not in the history."""
    S = np.array(S, dtype=float)
    S2 = np.where(A.toarray() > 0, np.nan, S)
    return (S - np.nanmean(S2, 1, keepdims=True)) / (np.nanstd(S2, 1, keepdims=True) + 1e-12)


def ease_from(G, lam):
    G = G.copy()
    G[np.diag_indices_from(G)] += lam
    P = np.linalg.inv(G)
    B = -P / np.diag(P)
    np.fill_diagonal(B, 0)
    return B


def sessions(A, gap):
    """Sessions x items: each user's cells of A sorted by time, cut where the gap exceeds `gap`."""
    r, c, s = [], [], 0
    for u in range(A.shape[0]):
        its = A.indices[A.indptr[u]:A.indptr[u + 1]]
        t = np.array([ts[(u, i)] for i in its])
        o = np.argsort(t, kind="stable")
        its, t = its[o], t[o]
        for k in range(len(its)):
            if k > 0 and t[k] - t[k - 1] > gap:
                s += 1
            r.append(s); c.append(its[k])
        s += 1
    return sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(s, A.shape[1]))


def ials(A, f=64, reg=30, alpha=3, it=8, seed=0):
    rng = np.random.default_rng(seed)
    U = rng.normal(0, 0.01, (A.shape[0], f)); Y = rng.normal(0, 0.01, (A.shape[1], f))
    At = A.T.tocsr()

    def solve(M, Yf, Xf):
        YtY = Yf.T @ Yf
        for u in range(M.shape[0]):
            idx = M.indices[M.indptr[u]:M.indptr[u + 1]]
            if len(idx) == 0:
                Xf[u] = 0
                continue
            Yi = Yf[idx]
            Xf[u] = np.linalg.solve(YtY + alpha * Yi.T @ Yi + reg * np.eye(f), (1 + alpha) * Yi.sum(0))

    for _ in range(it):
        solve(A, Y, U); solve(At, U, Y)
    return U @ Y.T


def gfcf(A, k=32, a=0.3):
    du = np.maximum(np.asarray(A.sum(1)).ravel(), 1); di = np.maximum(np.asarray(A.sum(0)).ravel(), 1)
    Rt = sp.diags(du ** -0.5) @ A @ sp.diags(di ** -0.5)
    _, _, Vt = svds(sp.csc_matrix(Rt), k=k)
    lin = np.asarray(A @ (Rt.T @ Rt).toarray())
    ideal = np.asarray((A @ sp.diags(di ** -0.5)) @ Vt.T @ Vt @ np.diag(di ** 0.5))
    return lin + a * ideal


for seed in [int(s) for s in args.seeds.split(",")]:
    A, V = split(X, args.holdout, seed)
    G = (A.T @ A).toarray()
    blend = 0.75 * z(ials(A, seed=seed), A) + 0.25 * z(gfcf(A), A)
    print(f"holdout {args.holdout} seed {seed}: EASE(500) {ndcg(A @ ease_from(G, 500), A, V):.4f}  "
          f"iALS+GF-CF blend {ndcg(blend, A, V):.4f}", flush=True)
    for gap in [0, 60, 600]:
        Gs = (lambda S: (S.T @ S).toarray())(sessions(A, gap))
        for w in [1.0, 3.0]:
            S = np.asarray(A @ ease_from(G + w * Gs, 500))
            zs = z(S, A)
            mixed = " ".join(f"{b:.2f}:{ndcg((1 - b) * blend + b * zs, A, V):.4f}" for b in (0.2, 0.3, 0.4))
            print(f"  session-EASE gap {gap:>3} w {w:g} λ 500: alone {ndcg(S, A, V):.4f}  in the blend {mixed}", flush=True)
