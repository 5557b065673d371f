#!/usr/bin/python3
"""Generates the golden values the drift statistics are tested against.

Run from the repository root, with Debian 12's packages (python3-scipy 1.10.1,
python3-numpy 1.24.2, python3-statsmodels 0.13.5):

    /usr/bin/python3 drift/testdata/golden/gen.py

It writes stats.json (each statistic on its own) and pipeline.json (profiles and
windows end to end) beside itself. CI never runs it: the tests only read the
JSON, so CI needs no SciPy.

Samples are described, not listed, where they are large: a 64-bit LCG whose
uniforms are exact doubles (k * 2**-53), summed and shifted with plain IEEE
additions and multiplications by powers of two, so the Go test regenerates the
very same doubles (see sample() in the Go tests).
"""
import json
import math
import os

import numpy as np
import scipy
from scipy import stats
from scipy.spatial.distance import jensenshannon
from scipy.stats._stats_py import _attempt_exact_2kssamp

try:
    from scipy.stats import false_discovery_control
except ImportError:  # SciPy < 1.11 (Debian 12 ships 1.10)
    false_discovery_control = None
from statsmodels.stats.multitest import multipletests

HERE = os.path.dirname(os.path.abspath(__file__))
MASK = (1 << 64) - 1


def uniforms(seed, n):
    s = seed & MASK
    out = []
    for _ in range(n):
        s = (s * 6364136223846793005 + 1442695040888963407) & MASK
        out.append((s >> 11) * 2.0**-53)
    return out


def sample(spec):
    """The sample a spec describes; Go's sample() mirrors it exactly."""
    if "values" in spec:
        return np.array(spec["values"], dtype=float)
    kind, n, seed = spec["kind"], spec["n"], spec["seed"]
    loc, scale = spec.get("loc", 0.0), spec.get("scale", 1.0)
    if kind == "uniform":
        u = uniforms(seed, n)
        return np.array([loc + scale * x for x in u])
    if kind == "normal":  # Irwin-Hall: the sum of 12 uniforms, less 6
        u = uniforms(seed, 12 * n)
        out = []
        for i in range(n):
            z = 0.0
            for x in u[12 * i:12 * i + 12]:
                z += x
            out.append(loc + scale * (z - 6.0))
        return np.array(out)
    if kind == "int":  # floor(k * u): heavy ties
        k = spec["k"]
        u = uniforms(seed, n)
        return np.array([loc + scale * math.floor(k * x) for x in u])
    raise ValueError(kind)


def spec(kind, n, seed, **kw):
    d = {"kind": kind, "n": n, "seed": seed}
    d.update(kw)
    return d


def ks_cases():
    cases = []

    def add(name, x, y):
        a, b = sample(x), sample(y)
        r = stats.ks_2samp(a, b)
        cases.append({"name": name, "x": x, "y": y,
                      "statistic": float(r.statistic), "pvalue": float(r.pvalue)})

    add("small equal sizes (exact, square)", spec("normal", 20, 1), spec("normal", 20, 2, loc=0.5))
    add("small unequal sizes (exact, inside)", spec("normal", 30, 3), spec("normal", 47, 4, loc=0.25))
    add("ties", spec("int", 40, 5, k=6), spec("int", 60, 6, k=6, loc=0.5))
    add("identical", spec("normal", 25, 7), spec("normal", 25, 7))
    add("separated", {"values": list(range(10))}, {"values": list(range(10, 20))})
    add("one each", {"values": [1.0]}, {"values": [2.0]})
    add("no drift, unequal (exact)", spec("normal", 500, 8), spec("normal", 731, 9))
    add("shift, equal (exact, square)", spec("normal", 1000, 10), spec("normal", 1000, 11, loc=0.125))
    add("shift, 10000 vs 7000 (exact)", spec("normal", 10000, 12), spec("normal", 7000, 13, loc=0.0625))
    add("12000 vs 3000 (asymptotic)", spec("normal", 12000, 14), spec("normal", 3000, 15, loc=0.03125))
    add("12000 vs 3000 shifted (asymptotic, smirnov)", spec("normal", 12000, 16), spec("normal", 3000, 17, loc=0.25))
    add("10001 vs 50 (asymptotic, n<=140)", spec("normal", 10001, 18), spec("normal", 50, 19, loc=0.25))
    add("10001 vs 120 (asymptotic, n<=140)", spec("normal", 10001, 20), spec("normal", 120, 21))
    add("20000 vs 20000 (asymptotic, Pelz-Good)", spec("normal", 20000, 22), spec("normal", 20000, 23))
    add("ties 15000 vs 12000 (asymptotic)", spec("int", 15000, 24, k=20), spec("int", 12000, 25, k=20))
    add("uniform vs normal 200 vs 300", spec("uniform", 200, 26, loc=-2.0, scale=4.0), spec("normal", 300, 27))
    return cases


def kstwo_cases():
    out = []
    ns = [1, 2, 3, 5, 10, 20, 50, 100, 140, 141, 200, 500, 1000, 5000, 20000,
          100000, 100001, 300000, 2000000]
    xs = [0.0001, 0.0005, 0.001, 0.003, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.45,
          0.5, 0.7, 0.95, 0.999]
    for n in ns:
        for x in xs:
            out.append({"n": n, "x": x, "sf": float(stats.kstwo.sf(x, n))})
    return out


def smirnov_cases():
    out = []
    for n in [2, 5, 10, 50, 140, 1000, 1013, 5000, 100000]:
        for x in [0.001, 0.01, 0.05, 0.1, 0.3, 0.5, 0.8]:
            out.append({"n": n, "x": x, "sf": float(scipy.special.smirnov(n, x))})
    return out


def ks_pvalue_cases():
    """p-values of a statistic d for sizes n1, n2, as ks_2samp's auto method."""
    out = []
    for n1, n2, d in [(5000, 800, 0.05), (5000, 800, 0.02), (800, 800, 0.05),
                      (9999, 10000, 0.01), (50000, 800, 0.05), (50000, 800, 0.01),
                      (100000, 100000, 0.004), (3, 7, 0.6), (1000, 37, 0.3)]:
        g = math.gcd(n1, n2)
        p = None
        dd = d
        if max(n1, n2) <= 10000:
            ok, dd, p = _attempt_exact_2kssamp(n1, n2, g, d, "two-sided")
            if not ok:
                p = None
        if p is None:
            m, n = sorted([float(n1), float(n2)], reverse=True)
            en = m * n / (m + n)
            p = stats.kstwo.sf(dd, np.round(en))
        out.append({"n1": n1, "n2": n2, "d": d, "pvalue": float(np.clip(p, 0, 1)),
                    "statistic": float(dd)})
    return out


def chi2_cases():
    out = []
    tables = [
        [[10, 20], [20, 10]],
        [[100, 5], [90, 15]],
        [[30, 30, 40], [20, 50, 30]],
        [[500, 300, 150, 50, 0], [40, 30, 20, 10, 5]],
        [[1000, 1], [1000, 0]],
        [[3, 0, 7, 12, 1, 1, 0, 9, 4, 2], [2, 1, 5, 20, 0, 3, 1, 4, 4, 0]],
        [[12345, 23456, 34567], [1234, 2345, 3467]],
        [[5, 5], [5, 5]],
    ]
    for t in tables:
        arr = np.array(t, dtype=float)
        keep = arr.sum(axis=0) > 0
        stat, p, dof, _ = stats.chi2_contingency(arr[:, keep], correction=False)
        out.append({"a": t[0], "b": t[1], "statistic": float(stat), "pvalue": float(p), "dof": int(dof)})
    for x, dof in [(0.5, 1), (3.84, 1), (10, 3), (50, 10), (200, 150), (1e-3, 4), (80, 2)]:
        out.append({"x": x, "dof": dof, "sf": float(stats.chi2.sf(x, dof))})
    return out


def psi(a, b, eps=1e-4):
    pa = np.asarray(a, float) / np.sum(a)
    pb = np.asarray(b, float) / np.sum(b)
    pa = np.where(pa == 0, eps, pa)
    pb = np.where(pb == 0, eps, pb)
    return float(np.sum((pa - pb) * np.log(pa / pb)))


def hellinger(a, b):
    pa = np.asarray(a, float) / np.sum(a)
    pb = np.asarray(b, float) / np.sum(b)
    return float(np.sqrt(np.sum((np.sqrt(pa) - np.sqrt(pb)) ** 2)) / np.sqrt(2))


def linf(a, b):
    pa = np.asarray(a, float) / np.sum(a)
    pb = np.asarray(b, float) / np.sum(b)
    return float(np.max(np.abs(pa - pb)))


def distance_cases():
    out = []
    pairs = [
        ([10, 10, 10, 10, 10, 10, 10, 10, 10, 10], [12, 9, 11, 10, 8, 10, 10, 9, 11, 10]),
        ([100, 100, 100, 100], [0, 50, 150, 200]),
        ([5, 0, 5], [0, 5, 5]),
        ([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]),
        ([1000, 0], [0, 1000]),
        ([7, 7], [7, 7]),
        ([300, 200, 100, 50, 25, 0, 1], [280, 210, 90, 60, 30, 3, 0]),
    ]
    for a, b in pairs:
        out.append({"a": a, "b": b, "psi": psi(a, b),
                    "js": float(jensenshannon(a, b, base=2)),
                    "hellinger": hellinger(a, b), "linf": linf(a, b)})
    return out


def wasserstein_cases():
    out = []

    def add(u, v, uw=None, vw=None):
        us, vs = sample(u), sample(v)
        w = stats.wasserstein_distance(us, vs, uw, vw)
        out.append({"u": u, "v": v, "uw": uw, "vw": vw, "w": float(w),
                    "std": float(np.std(us))})

    add({"values": [0, 1, 3]}, {"values": [5, 6, 8]})
    add({"values": [0, 1]}, {"values": [0, 1]}, [3, 1], [1, 3])
    add({"values": [3.4, 3.9, 7.5, 7.8]}, {"values": [4.5, 1.4]}, [1.4, 0.9, 3.1, 7.2], [3.2, 3.5])
    add(spec("normal", 1000, 30), spec("normal", 800, 31, loc=0.5, scale=2.0))
    add(spec("int", 500, 32, k=5), spec("int", 700, 33, k=5, loc=1.0))
    add(spec("uniform", 300, 34), spec("normal", 300, 35, scale=0.25, loc=0.5))
    return out


def correction_cases():
    out = []
    for ps in [[0.01, 0.02, 0.03, 0.04, 0.05], [0.5, 0.001, 0.2, 0.04, 0.03, 0.9],
               [1.0, 1.0], [0.0001], [0.04, 0.04, 0.04], [0.2, 0.01, 0.2, 0.6, 0.011, 0.3, 0.05]]:
        bh = multipletests(ps, method="fdr_bh")[1]
        if false_discovery_control is not None:
            assert np.allclose(bh, false_discovery_control(ps, method="bh"))
        assert np.allclose(bh, own_bh(ps))
        bonf = multipletests(ps, method="bonferroni")[1]
        out.append({"p": ps, "bonferroni": [float(x) for x in bonf], "bh": [float(x) for x in bh]})
    return out


def own_bh(ps):
    """false_discovery_control(ps, method="bh") as SciPy 1.11 defines it."""
    ps = np.asarray(ps, float)
    order = np.argsort(ps)
    m = len(ps)
    adj = ps[order] * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(adj[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.clip(adj, 0, 1)
    return out


def quantile_cases():
    out = []
    qs = [k / 100 for k in range(101)]
    for s in [spec("normal", 1000, 40), spec("int", 333, 41, k=7), spec("uniform", 17, 42),
              {"values": [5.0]}, {"values": [1.0, 2.0]}]:
        out.append({"x": s, "q": [float(v) for v in np.quantile(sample(s), qs)]})
    return out


# --- The pipeline: a profile from a reference sample, a window from a current
# sample, every statistic as drift.Evaluate defines it (see drift/doc.go).

EXACT_LIMIT = 1000  # the monitor's default: a window keeps its values up to it
VALUE_LIMIT = 1000  # the profile's default: a reference keeps its values up to it
PSI_EPS = 1e-4


def numerical_edges(ref):
    x = np.sort(ref)
    distinct = np.unique(x)
    if len(distinct) <= 5:
        return distinct, distinct, True
    q = np.quantile(x, [k / 100 for k in range(101)])
    return np.unique(q), np.unique(q[10:100:10]), False


def shares(c):
    c = np.asarray(c, float)
    return c / c.sum()


def distances(a, b):
    return {"psi": {"value": psi(a, b)}, "jensen_shannon": {"value": float(jensenshannon(a, b, base=2))},
            "hellinger": {"value": hellinger(a, b)}, "linf": {"value": linf(a, b)}}


def chi2(a, b):
    t = np.array([a, b], dtype=float)
    t = t[:, t.sum(axis=0) > 0]
    if t.shape[1] < 2:
        return {"value": 0.0, "p": 1.0}
    stat, p, _, _ = stats.chi2_contingency(t, correction=False)
    return {"value": float(stat), "p": float(p)}


def pipeline_numerical(name, ref_spec, cur_spec):
    ref, cur = sample(ref_spec), sample(cur_spec)
    edges, deciles, discrete = numerical_edges(ref)
    rb = np.searchsorted(edges, ref, side="left")
    cb = np.searchsorted(edges, cur, side="left")
    nb = len(edges) + 1
    rc, cc = np.bincount(rb, minlength=nb), np.bincount(cb, minlength=nb)
    exact = len(ref) <= VALUE_LIMIT and len(cur) <= EXACT_LIMIT
    norm = max(float(np.std(ref)), 0.001)
    out = {"name": name, "kind": "numerical", "ref": ref_spec, "cur": cur_spec, "exact": exact,
           "discrete": bool(discrete), "edges": [float(e) for e in edges],
           "ref_counts": [int(c) for c in rc], "cur_counts": [int(c) for c in cc]}
    st = {}
    raw = stats.ks_2samp(ref, cur)
    if exact:
        st["ks"] = {"value": float(raw.statistic), "p": float(raw.pvalue)}
        st["wasserstein"] = {"value": float(stats.wasserstein_distance(ref, cur)) / norm}
    else:
        # KS of the bin indices: the CDFs compared at the bin edges.
        kb = stats.ks_2samp(rb, cb)
        st["ks"] = {"value": float(kb.statistic), "p": float(kb.pvalue)}
        # Wasserstein with every value moved to its bin's mean.
        rs = np.bincount(np.searchsorted(edges, np.sort(ref), side="left"), weights=np.sort(ref), minlength=nb)
        cs = np.bincount(cb, weights=cur, minlength=nb)
        ru, cu = rc > 0, cc > 0
        w = stats.wasserstein_distance(rs[ru] / rc[ru], cs[cu] / cc[cu], rc[ru], cc[cu])
        st["wasserstein"] = {"value": float(w) / norm}
    out["raw_ks"] = float(raw.statistic)
    out["raw_wasserstein"] = float(stats.wasserstein_distance(ref, cur)) / norm
    coarse_r = np.bincount(np.searchsorted(deciles, ref, side="left"), minlength=len(deciles) + 1)
    coarse_c = np.bincount(np.searchsorted(deciles, cur, side="left"), minlength=len(deciles) + 1)
    d = distances(coarse_r, coarse_c)
    st["psi"], st["jensen_shannon"], st["hellinger"] = d["psi"], d["jensen_shannon"], d["hellinger"]
    if discrete:
        st["chi_square"] = chi2(rc, cc)
        st["linf"] = d["linf"]
    out["statistics"] = st
    return out


def pipeline_categorical(name, ref_spec, cur_spec, names):
    ref = [names[int(v)] for v in sample(ref_spec)]
    cur = [names[int(v)] for v in sample(cur_spec)]
    counts = {}
    for v in ref:
        counts[v] = counts.get(v, 0) + 1
    cats = sorted(counts, key=lambda k: (-counts[k], k))
    index = {c: i for i, c in enumerate(cats)}
    rc = np.bincount([index.get(v, len(cats)) for v in ref], minlength=len(cats) + 1)
    cc = np.bincount([index.get(v, len(cats)) for v in cur], minlength=len(cats) + 1)
    st = distances(rc, cc)
    st["chi_square"] = chi2(rc, cc)
    return {"name": name, "kind": "categorical", "ref": ref_spec, "cur": cur_spec, "names": names,
            "categories": cats, "ref_counts": [int(c) for c in rc], "cur_counts": [int(c) for c in cc],
            "statistics": st}


def pipeline_cases():
    return [
        pipeline_numerical("exact: small reference and window", spec("normal", 800, 50), spec("normal", 400, 51, loc=0.25)),
        pipeline_numerical("histograms: large reference and window", spec("normal", 5000, 52), spec("normal", 3000, 53, loc=0.125, scale=1.25)),
        pipeline_numerical("histograms: window above the exact limit", spec("normal", 600, 54), spec("normal", 1500, 55, loc=0.0625)),
        pipeline_numerical("histograms: heavy ties", spec("int", 3000, 56, k=20), spec("int", 2000, 57, k=20, loc=1.0)),
        pipeline_numerical("histograms: window beyond the reference", spec("uniform", 4000, 58), spec("uniform", 1200, 59, loc=0.75)),
        pipeline_numerical("discrete: four values, one new", spec("int", 2000, 60, k=4), spec("int", 1000, 61, k=5)),
        pipeline_categorical("categorical: a new category", spec("int", 3000, 62, k=4), spec("int", 800, 63, k=5),
                             ["visa", "mastercard", "amex", "<b>discover</b>", "unionpay"]),
    ]


def main():
    data = {
        "generator": "drift/testdata/golden/gen.py",
        "scipy": scipy.__version__,
        "numpy": np.__version__,
        "ks": ks_cases(),
        "kstwo": kstwo_cases(),
        "smirnov": smirnov_cases(),
        "ks_pvalue": ks_pvalue_cases(),
        "chi2": chi2_cases(),
        "distance": distance_cases(),
        "wasserstein": wasserstein_cases(),
        "correction": correction_cases(),
        "quantile": quantile_cases(),
    }
    with open(os.path.join(HERE, "stats.json"), "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    pipeline = {"generator": "drift/testdata/golden/gen.py", "scipy": scipy.__version__,
                "numpy": np.__version__, "exact_limit": EXACT_LIMIT, "value_limit": VALUE_LIMIT,
                "cases": pipeline_cases()}
    with open(os.path.join(HERE, "pipeline.json"), "w") as f:
        json.dump(pipeline, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
