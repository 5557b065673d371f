#!/usr/bin/python3
"""Generates the golden values package quality's metrics are tested against.

Run from the repository root with Debian 12's packages (python3-sklearn 1.2.1,
python3-numpy 1.24.2, python3-scipy 1.10.1):

    /usr/bin/python3 quality/testdata/golden/gen.py

It writes metrics.json beside itself: each case's inputs, listed in full (the
doubles survive JSON exactly: Python writes the shortest repr, Go parses it back
to the same bits), and what scikit-learn computes from them. CI never runs it;
the Go tests read the JSON.

The calibration error has no scikit-learn function; it is computed here from
calibration_curve's own binning (np.searchsorted on the inner edges of
np.linspace(0, 1, 11)), which the Go code mirrors.
"""
import json
import os

import numpy as np
import sklearn
from sklearn import metrics
from sklearn.calibration import _SigmoidCalibration, calibration_curve
from sklearn.isotonic import IsotonicRegression

HERE = os.path.dirname(os.path.abspath(__file__))


def ece(conf, outcome, n_bins=10):
    """Expected calibration error with calibration_curve's uniform bins."""
    conf, outcome = np.asarray(conf, float), np.asarray(outcome, float)
    bins = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(bins[1:-1], conf)
    total = np.bincount(ids, minlength=len(bins))
    prob_true, prob_pred = calibration_curve(outcome, conf, n_bins=n_bins)
    weights = total[total != 0] / len(conf)
    return float(np.sum(weights * np.abs(prob_true - prob_pred)))


def binary_case(name, scores, labels, threshold=0.5):
    s, y = np.asarray(scores, float), np.asarray(labels, int)
    pred = (s >= threshold).astype(int)
    tn, fp, fn, tp = metrics.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    return {
        "name": name, "kind": "binary", "threshold": threshold,
        "scores": [float(v) for v in s], "labels": [int(v) for v in y],
        "counts": {"tp": int(tp), "fp": int(fp), "fn": int(fn), "tn": int(tn)},
        "metrics": {
            "accuracy": metrics.accuracy_score(y, pred),
            "precision": metrics.precision_score(y, pred),
            "recall": metrics.recall_score(y, pred),
            "f1": metrics.f1_score(y, pred),
            "roc_auc": metrics.roc_auc_score(y, s),
            "log_loss": metrics.log_loss(y, s),
            "brier": metrics.brier_score_loss(y, s),
            "calibration_error": ece(s, y),
        },
    }


def multiclass_case(name, scores, labels):
    s, y = np.asarray(scores, float), np.asarray(labels, int)
    k = s.shape[1]
    pred = np.argmax(s, axis=1)
    conf = s[np.arange(len(s)), pred]
    return {
        "name": name, "kind": "multiclass", "classes": k,
        "scores": [float(v) for v in s.ravel()], "labels": [int(v) for v in y],
        "metrics": {
            "accuracy": metrics.accuracy_score(y, pred),
            "precision": metrics.precision_score(y, pred, average="macro", zero_division=0),
            "recall": metrics.recall_score(y, pred, average="macro", zero_division=0),
            "f1": metrics.f1_score(y, pred, average="macro", zero_division=0),
            "roc_auc": metrics.roc_auc_score(y, s, multi_class="ovr", average="macro"),
            "log_loss": metrics.log_loss(y, s, labels=list(range(k))),
            "calibration_error": ece(conf, (pred == y).astype(float)),
        },
    }


def regression_case(name, pred, truth):
    p, y = np.asarray(pred, float), np.asarray(truth, float)
    return {
        "name": name, "kind": "regression",
        "scores": [float(v) for v in p], "labels": [float(v) for v in y],
        "metrics": {
            "mae": metrics.mean_absolute_error(y, p),
            "rmse": metrics.mean_squared_error(y, p, squared=False),
            "mape": metrics.mean_absolute_percentage_error(y, p),
            "r2": metrics.r2_score(y, p),
        },
    }


def calibration_case(name, scores, labels, query):
    s, y, q = np.asarray(scores, float), np.asarray(labels, float), np.asarray(query, float)
    iso = IsotonicRegression(out_of_bounds="clip").fit(s, y)
    sig = _SigmoidCalibration().fit(s, y)
    # Platt's objective at scikit-learn's optimum (BFGS stops near it), so
    # the test can check that Newton's method reaches at least as low.
    prior1 = y.sum()
    prior0 = len(y) - prior1
    t = np.where(y > 0, (prior1 + 1) / (prior1 + 2), 1 / (prior0 + 2))
    z = sig.a_ * s + sig.b_
    obj = float(np.sum(t * z + np.logaddexp(0, -z)))
    return {
        "name": name, "scores": [float(v) for v in s], "labels": [float(v) for v in y],
        "query": [float(v) for v in q],
        "isotonic": [float(v) for v in iso.predict(q)],
        "platt": {"a": float(sig.a_), "b": float(sig.b_), "objective": obj,
                  "predict": [float(v) for v in sig.predict(q)]},
    }


def main():
    rng = np.random.default_rng(20240521)
    cases = []

    # Binary: a logistic model's scores on its own data (calibrated), scores
    # rounded to two decimals (heavy ties, many exactly on the calibration
    # bins' edges), a weak model, and an imbalanced set with a threshold.
    x = rng.normal(size=2000)
    p = 1 / (1 + np.exp(-(1.5 * x - 0.3)))
    y = (rng.random(2000) < p).astype(int)
    cases.append(binary_case("calibrated", p, y))
    cases.append(binary_case("ties", np.round(p, 2), y))
    noisy = np.clip(p + rng.normal(scale=0.25, size=2000), 0, 1)
    cases.append(binary_case("weak", noisy, y))
    xi = rng.normal(size=3000)
    pi = 1 / (1 + np.exp(-(2 * xi - 3.5)))
    yi = (rng.random(3000) < pi).astype(int)
    cases.append(binary_case("imbalanced", pi, yi, threshold=0.3))
    cases.append(binary_case("extremes", [0.0, 1.0, 0.0, 1.0, 0.5, 1e-20, 1 - 1e-12, 0.1, 0.2, 0.3],
                             [0, 1, 1, 0, 1, 0, 1, 0, 1, 1]))

    # Multiclass: softmax scores of a 3-class and a 4-class linear model.
    for k, n in ((3, 1500), (4, 2500)):
        feats = rng.normal(size=(n, 2))
        w = rng.normal(size=(2, k)) * 1.5
        logits = feats @ w
        prob = np.exp(logits - logits.max(axis=1, keepdims=True))
        prob /= prob.sum(axis=1, keepdims=True)
        lab = np.array([rng.choice(k, p=row) for row in prob])
        cases.append(multiclass_case("softmax%d" % k, prob, lab))

    # Regression: heteroscedastic noise, and truths near zero for MAPE.
    xr = rng.uniform(0, 10, size=1000)
    yr = 3 * xr + 2 + rng.normal(scale=0.5 + 0.3 * xr)
    cases.append(regression_case("linear", 3 * xr + 2.2, yr))
    yz = rng.normal(scale=0.1, size=500)
    cases.append(regression_case("near_zero", yz + rng.normal(scale=0.05, size=500), yz))

    # Calibration: overconfident scores of a logistic truth, with ties.
    xc = rng.normal(size=1500)
    truth = 1 / (1 + np.exp(-(xc - 0.5)))
    yc = (rng.random(1500) < truth).astype(float)
    sc = np.round(1 / (1 + np.exp(-(3 * xc + 1))), 3)
    query = np.concatenate([[-0.5, 0.0, 1.0, 1.5], np.linspace(0.0005, 0.9995, 41), sc[:20]])
    calib = [calibration_case("overconfident", sc, yc, query)]

    # Label delays: quantiles as NumPy's percentile computes them.
    delays = rng.exponential(scale=3600.0, size=999)
    quantiles = {str(q): float(np.percentile(delays, q)) for q in (50, 90, 99)}

    out = {
        "generator": "quality/testdata/golden/gen.py",
        "versions": {"sklearn": sklearn.__version__, "numpy": np.__version__},
        "cases": cases,
        "calibration": calib,
        "delays": {"values": [float(v) for v in delays], "quantiles": quantiles},
    }
    with open(os.path.join(HERE, "metrics.json"), "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
