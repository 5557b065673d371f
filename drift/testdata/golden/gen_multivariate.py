#!/usr/bin/python3
"""Generates the golden values drift's multivariate check is tested against.

Run from the repository root with Debian 12's packages (python3-sklearn 1.2.1,
python3-numpy 1.24.2):

    /usr/bin/python3 drift/testdata/golden/gen_multivariate.py

It writes multivariate.json beside itself: a reference of four correlated
features (some values missing) and a window whose correlations are reversed
while every feature's own distribution stays the same, listed in full, and what
NannyML's data reconstruction computes from them with scikit-learn: missing
values imputed with the mean (SimpleImputer), standardised (StandardScaler),
PCA(n_components=0.65) fitted on the reference, and each row's reconstruction
error, the Euclidean distance between the standardised row and its
reconstruction (inverse_transform). CI never runs it.
"""
import json
import os

import numpy as np
import sklearn
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    rng = np.random.default_rng(7)
    cov = np.array([[1.0, 0.8, 0.5, 0.0],
                    [0.8, 1.0, 0.4, 0.1],
                    [0.5, 0.4, 1.0, 0.0],
                    [0.0, 0.1, 0.0, 1.0]])
    sd = np.array([1.0, 2.0, 1.0, 3.0])
    mean = [0, 10, -5, 2]
    ref = rng.multivariate_normal(mean, cov * np.outer(sd, sd), size=2000)
    # A few missing values, imputed with the mean.
    for i in range(0, 2000, 97):
        ref[i, i % 4] = np.nan
    # The window: each feature's marginal as before, the correlations of b
    # with the others reversed (b mirrored about its mean).
    flip = cov.copy()
    flip[1, :] *= -1
    flip[:, 1] *= -1
    cur = rng.multivariate_normal(mean, flip * np.outer(sd, sd), size=1000)

    imp = SimpleImputer(strategy="mean").fit(ref)
    scaler = StandardScaler().fit(imp.transform(ref))
    pca = PCA(n_components=0.65, svd_solver="full").fit(scaler.transform(imp.transform(ref)))

    def errors(x):
        z = scaler.transform(imp.transform(x))
        back = pca.inverse_transform(pca.transform(z))
        return np.sqrt(((z - back) ** 2).sum(axis=1))

    er, ec = errors(ref), errors(cur)
    out = {
        "generator": "drift/testdata/golden/gen_multivariate.py",
        "versions": {"sklearn": sklearn.__version__, "numpy": np.__version__},
        "features": ["a", "b", "c", "d"],
        "reference": [[None if np.isnan(v) else float(v) for v in row] for row in ref],
        "window": [[float(v) for v in row] for row in cur],
        "components": int(pca.n_components_),
        "variance": float(pca.explained_variance_ratio_.sum()),
        "mean": [float(v) for v in imp.statistics_],
        "scale": [float(v) for v in scaler.scale_],
        "reference_errors": [float(v) for v in er],
        "window_errors": [float(v) for v in ec],
        "reference_error_mean": float(er.mean()),
        "reference_error_std": float(er.std()),
        "window_error_mean": float(ec.mean()),
    }
    with open(os.path.join(HERE, "multivariate.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
