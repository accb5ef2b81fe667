"""Peer figures on the reference tables of crates/testkit/src/tables.rs
(issue 15): scikit-learn's standardized logistic regression and statsmodels'
OLS, fitted on exactly the folds `infogap eval classify|regress --folds 5
--seed 0` uses (the tables carry them in their `fold` column).

  cargo run -p infogap-testkit --example reference_tables -- /tmp/reftables
  /work/venv/bin/python scripts/reference/tabular_reference.py /tmp/reftables \
      > crates/cli/tests/fixtures/tabular_reference.json

Classification (every column but `y` and `fold`; categoricals one-hot with all
levels, as pandas.get_dummies; everything standardized inside each training
fold, as ../shared/anchors/churn_telco.py):
  - "logreg": LogisticRegression(C=1, solver="newton-cholesky", tol=1e-10),
    i.e. the penalized optimum, to which ours must converge (same objective:
    L2 1/2 |w|^2 on standardized coefficients, intercept free);
  - "logreg_default": LogisticRegression(max_iter=1000), the anchor's settings;
  - "lightgbm": LGBMClassifier defaults, for the auto comparison.
  Per fold: ROC AUC and log loss on the held-out rows.
Regression: statsmodels OLS on all rows, on standardized columns (on raw
columns the 1e-6 and 1.7e9 scales make numpy's rank test drop a real column),
mapped back to raw units; pinv, so exactly collinear columns share their
weight instead of being dropped: compare fitted quality, and coefficients only
where the design has full rank. R^2, residual standard error, the same at the
numerical rank infogap uses (singular values below 1e-5 of the largest count
as zero: the SVD analogue of its aliasing test), the rank of
[1, standardized non-constant columns], the constant columns and, at full rank, coefficients and standard
errors; and scikit-learn StandardScaler + LinearRegression out of fold (pooled
R^2, RMSE, MAE).
"""
import glob
import hashlib
import json
import os
import sys
import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from lightgbm import LGBMClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

warnings.simplefilter("ignore")
d = sys.argv[1]
out = {"classify": {}, "regress": {}}
for path in sorted(glob.glob(os.path.join(d, "*.csv"))):
    name = os.path.splitext(os.path.basename(path))[0]
    sha = hashlib.sha256(open(path, "rb").read()).hexdigest()
    df = pd.read_csv(path, float_precision="round_trip", keep_default_na=False)
    fold = df.pop("fold").to_numpy()
    y = df.pop("y")
    cats = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    X = pd.get_dummies(df, columns=cats, drop_first=False, dtype=np.float64).astype(np.float64)
    names = list(X.columns)
    X = X.to_numpy()
    folds = sorted(set(fold))
    if y.dtype == object or not pd.api.types.is_numeric_dtype(y):
        yb = (y == "yes").astype(int).to_numpy()
        res = {"rows": len(yb), "positives": int(yb.sum()), "features": len(names), "csv_sha256": sha}
        for key, make in {
            "logreg": lambda: make_pipeline(StandardScaler(), LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-10, max_iter=1000)),
            "logreg_default": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
            "lightgbm": lambda: LGBMClassifier(random_state=0, verbose=-1, n_jobs=1),
        }.items():
            aucs, losses = [], []
            for f in folds:
                tr, te = fold != f, fold == f
                m = make().fit(X[tr], yb[tr])
                p = m.predict_proba(X[te])[:, 1]
                aucs.append(roc_auc_score(yb[te], p))
                losses.append(log_loss(yb[te], p))
            res[key] = {"roc_auc": aucs, "log_loss": losses, "mean_roc_auc": float(np.mean(aucs))}
        out["classify"][name] = res
    else:
        yv = y.to_numpy(dtype=np.float64)
        # Standardized columns (constant ones left at 0): on raw columns the
        # 1e-6 and 1.7e9 scales make numpy's rank test drop a real column.
        mu, sd = X.mean(0), X.std(0)
        keep = sd > 0
        Z = (X[:, keep] - mu[keep]) / sd[keep]
        design = sm.add_constant(Z, has_constant="add")
        fit = sm.OLS(yv, design).fit()
        rank = int(np.linalg.matrix_rank(design))
        # infogap's OLS (normal equations) calls a column aliased when less than
        # 1e-10 of its variance is left after the columns before it; the SVD
        # analogue: singular values below 1e-5 of the largest count as zero.
        coef, _, num_rank, _ = np.linalg.lstsq(design, yv, rcond=1e-5)
        rss = float(((yv - design @ coef) ** 2).sum())
        tss = float(((yv - yv.mean()) ** 2).sum())
        res = {
            "rows": len(yv),
            "csv_sha256": sha,
            "features": len(names),
            "rank": rank,
            "constant_columns": int((~keep).sum()),
            "r2": float(fit.rsquared),
            "sigma": float(np.sqrt(fit.scale)),
            "numerical_rank": int(num_rank),
            "numerical_r2": 1 - rss / tss,
            "numerical_sigma": float(np.sqrt(rss / (len(yv) - num_rank))),
        }
        if rank == design.shape[1] and keep.all():
            beta = fit.params[1:] / sd
            res["intercept"] = float(fit.params[0] - (beta * mu).sum())
            res["coefficients"] = dict(zip(names, map(float, beta)))
            res["standard_errors"] = dict(zip(names, map(float, fit.bse[1:] / sd)))
        pred = np.empty_like(yv)
        for f in folds:
            tr, te = fold != f, fold == f
            m = make_pipeline(StandardScaler(), LinearRegression()).fit(X[tr], yv[tr])
            pred[te] = m.predict(X[te])
        resid = yv - pred
        res["cv"] = {
            "r2": float(1 - (resid ** 2).sum() / ((yv - yv.mean()) ** 2).sum()),
            "rmse": float(np.sqrt((resid ** 2).mean())),
            "mae": float(np.abs(resid).mean()),
        }
        out["regress"][name] = res
print(json.dumps(out, indent=1, sort_keys=True))
