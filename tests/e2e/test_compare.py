"""Tests of `axbench compare`: the statistics (Mann-Whitney U, bootstrap),
the verdicts on made-up result files with known answers, bad input, and the
end-to-end check on real runs: two runs of the same code are never a
regression (a pass, or inconclusive when other work disturbed them), and
the gate's verdicts (pass, regression, inconclusive) on made-up files with
interference, bimodal and load-generator-bound cells. The deliberate
slowdown on real runs is caught by `axbench ab` (test_ab.py).

The binary comes from AXBENCH (default build/axbench); `compare` goes
through it when it forwards the subcommand, otherwise straight to
reports/axbench_reports.py. The statistics tests need neither.
"""

import copy
import itertools
import json
import math
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports"
ENTRY = REPORTS / "axbench_reports.py"
AXBENCH = Path(os.environ.get("AXBENCH", ROOT / "build" / "axbench"))

sys.path.insert(0, str(REPORTS))
from axreports import ab, stats  # noqa: E402

HAVE_AXBENCH = AXBENCH.is_file() and os.access(AXBENCH, os.X_OK)
needs_axbench = pytest.mark.skipif(
    not HAVE_AXBENCH, reason=f"axbench binary not found at {AXBENCH} (build it, or set AXBENCH)")


# ---------------------------------------------------------------------------
# How to run compare

_forwarding = None


def compare_argv():
    """`axbench compare` when the binary forwards it, else the entry point."""
    global _forwarding
    if _forwarding is None:
        _forwarding = False
        if HAVE_AXBENCH:
            r = subprocess.run([str(AXBENCH), "compare", "--help"], capture_output=True,
                               text=True, timeout=60)
            _forwarding = r.returncode == 0 and "noise floor" in r.stdout
    if _forwarding:
        return [str(AXBENCH), "compare"]
    return [sys.executable, str(ENTRY), "compare"]


def run_compare(*args, env=None):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([*compare_argv(), *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=full_env)


# ---------------------------------------------------------------------------
# Made-up result files

ENV = {
    "cpu": {"model": "Test CPU 3000", "count": 2, "allowed": [0, 1], "governor": None},
    "kernel": {"sysname": "Linux", "release": "6.1.0-test", "machine": "x86_64"},
    "hostname": "testhost",
    "build": {"compiler": "cc", "compiler_version": "12.2.0", "build_type": "RelWithDebInfo",
              "c_flags": "-O2", "sanitizers": False},
    "git": {"commit": "a" * 40, "dirty": False},
    "pinning": {"mode": "split", "server_cpu": 0, "load_cpu": 1},
    "libraries": {"libuv": {"build": "1.44.2", "loaded": "1.44.2"}},
}

NET_METRICS = {
    # name: (unit, better)
    "throughput": ("msgs/s", 1),
    "latency_p50": ("ns", -1),
    "latency_p99": ("ns", -1),
    "latency_max": ("ns", -1),
    "server_cpu_us_per_msg": ("us", -1),
    "round_trips": ("count", 0),
}


def make_cell(runtime, values, scenario="tcp_echo", params=None, status="ok", units=None):
    """A cell whose metrics have the given per-repetition values."""
    params = params or {"connections": 16, "size": 64}
    label = ",".join(f"{k}={v}" for k, v in params.items())
    units = units or NET_METRICS
    cell = {
        "id": f"{runtime}/{scenario}/{label}",
        "runtime": runtime, "runtime_kind": "ax", "scenario": scenario, "kind": "net",
        "protocol": "echo", "params": params, "label": label, "status": status,
        "message": None if status == "ok" else f"server: {status} on purpose",
        "reps_planned": len(next(iter(values.values()))), "reps": [], "summary": None,
    }
    if status == "ok":
        ms = {}
        for name, vals in values.items():
            unit, better = units[name]
            s = sorted(vals)
            ms[name] = {"unit": unit, "better": better, "n": len(vals),
                        "median": stats.median(vals), "ci_low": s[0], "ci_high": s[-1],
                        "ci_level": 0.9, "values": list(vals)}
        cell["summary"] = {"reps": len(next(iter(values.values()))), "metrics": ms}
    return cell


def make_doc(cells, env=None, version=1, status="complete"):
    return {
        "schema": "axbench-results", "schema_version": version,
        "generator": {"name": "axbench", "version": "test"},
        "command": ["axbench", "run"], "status": status,
        "started_utc": "2026-01-01T00:00:00Z", "finished_utc": "2026-01-01T00:01:00Z",
        "config": {"runtimes": sorted({c["runtime"] for c in cells}), "reps": 5,
                   "pin": "split", "profile": "full"},
        "environment": copy.deepcopy(env or ENV),
        "counts": {"cells": len(cells)},
        "cells": cells,
    }


def noisy(center, n=7, spread=0.01, seed=1):
    """n values around `center` with a relative spread (deterministic)."""
    rng = random.Random(seed)
    return [center * (1 + rng.uniform(-spread, spread)) for _ in range(n)]


def net_values(scale=1.0, n=7, seed=1, spread=0.01):
    """Metrics of a plausible echo cell; scale > 1 makes it slower."""
    return {
        "throughput": noisy(100000 / scale, n, spread, seed),
        "latency_p50": noisy(20000 * scale, n, spread, seed + 1),
        "latency_p99": noisy(40000 * scale, n, spread, seed + 2),
        "latency_max": noisy(900000, n, 0.5, seed + 3),
        "server_cpu_us_per_msg": noisy(7.0 * scale, n, spread, seed + 4),
        "round_trips": noisy(50000, n, spread, seed + 5),
    }


def write(tmp_path, name, doc):
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


def verdicts(out_json):
    rep = json.loads(Path(out_json).read_text())
    return {(c["runtime"], c["scenario"]): c["verdict"] for c in rep["cells"]}, rep


# ---------------------------------------------------------------------------
# Statistics

def brute_force_mwu_p(x, y):
    """Two-sided exact p of U by enumerating every split, counting pairs
    (ties count one half): an independent check of stats.mann_whitney."""
    pooled = list(x) + list(y)
    n1 = len(x)

    def u_of(xs, ys):
        return sum((a > b) + 0.5 * (a == b) for a in xs for b in ys)

    u_obs = u_of(x, y)
    le = ge = total = 0
    for idx in itertools.combinations(range(len(pooled)), n1):
        chosen = set(idx)
        xs = [pooled[i] for i in idx]
        ys = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        u = u_of(xs, ys)
        total += 1
        le += u <= u_obs + 1e-9
        ge += u >= u_obs - 1e-9
    return min(1.0, 2 * min(le, ge) / total)


def test_mann_whitney_exact_separated_samples():
    u, p, method = stats.mann_whitney([6, 7, 8, 9, 10], [1, 2, 3, 4, 5])
    assert method == "exact"
    assert u == 25
    assert p == pytest.approx(2 / 252)


def test_mann_whitney_exact_matches_enumeration():
    rng = random.Random(7)
    for _ in range(20):
        x = [rng.random() for _ in range(rng.randint(3, 6))]
        y = [rng.random() for _ in range(rng.randint(3, 6))]
        _, p, method = stats.mann_whitney(x, y)
        assert method == "exact"
        assert p == pytest.approx(brute_force_mwu_p(x, y))


def test_mann_whitney_ties_exact_matches_enumeration():
    x = [1, 2, 2, 3, 5, 5]
    y = [2, 3, 3, 4, 5, 6, 6]
    _, p, method = stats.mann_whitney(x, y)
    assert method == "exact-ties"
    assert p == pytest.approx(brute_force_mwu_p(x, y))


def test_mann_whitney_normal_approximation_with_ties_is_close_to_exact():
    # 8 + 9 values with ties: 24310 splits, above the enumeration limit,
    # so the normal approximation (tie-corrected) answers
    x = [1, 2, 2, 3, 4, 4, 5, 7]
    y = [3, 4, 5, 5, 6, 6, 7, 8, 9]
    _, p, method = stats.mann_whitney(x, y)
    assert method == "normal"
    assert p == pytest.approx(brute_force_mwu_p(x, y), abs=0.01)


def test_mann_whitney_large_samples_and_identical_values():
    rng = random.Random(3)
    x = [rng.gauss(0, 1) for _ in range(40)]
    y = [rng.gauss(0, 1) for _ in range(40)]
    _, p, method = stats.mann_whitney(x, y)
    assert method == "normal" and 0.05 < p <= 1
    _, p2, _ = stats.mann_whitney([v + 3 for v in x], y)
    assert p2 < 1e-6
    _, p3, _ = stats.mann_whitney([5] * 30, [5] * 30)
    assert p3 == 1.0


def test_min_p_decides_too_few_reps():
    assert stats.min_two_sided_p(3, 3) == pytest.approx(0.1)
    assert stats.min_two_sided_p(4, 4) < 0.05
    assert stats.min_two_sided_p(5, 5) == pytest.approx(2 / 252)


def test_bootstrap_ci_is_reproducible_and_covers_the_ratio():
    base = noisy(100, 7, 0.05, 1)
    new = noisy(110, 7, 0.05, 2)
    a = stats.bootstrap_ratio_ci(base, new, seed=42)
    b = stats.bootstrap_ratio_ci(base, new, seed=42)
    assert a == b
    ratio = stats.median(new) / stats.median(base)
    assert a[0] <= ratio <= a[1]
    assert a[0] > 1  # clearly separated samples: the CI excludes 1
    same = stats.bootstrap_ratio_ci(base, noisy(100, 7, 0.05, 3), seed=1)
    assert same[0] < 1 < same[1]


def exact_bootstrap_ratios(base, new):
    """Every bootstrap outcome of median(new)/median(base) for small
    samples, each equally likely: all n^n ordered resamples of each side
    (drawn with replacement, the two sides independent), paired."""
    def medians(xs):
        return [stats.median(r) for r in itertools.product(xs, repeat=len(xs))]
    return sorted(n / b for b in medians(base) for n in medians(new))


def exact_cdf(ratios, x):
    """P(R <= x) and P(R < x) under the exact distribution."""
    le = sum(r <= x * (1 + 1e-12) for r in ratios)
    lt = sum(r < x * (1 - 1e-12) for r in ratios)
    return le / len(ratios), lt / len(ratios)


# Known answers at n = 3 on each side: 27 x 27 = 729 equally likely
# outcomes of the resampled ratio, enumerated.
BOOT3 = [([1, 2, 4], [3, 5, 11]),
         ([10, 10, 12], [9, 11, 15]),     # a tie on the base side
         ([100, 101, 150], [90, 100, 200])]


def test_bootstrap_ci_matches_the_exact_distribution_at_n3():
    """compare's percentile bootstrap against the exact bootstrap
    distribution: each end of the interval must sit at the exact
    distribution's quantile (1 +- level) / 2, up to resampling error: the
    share of outcomes below it (P(R < end)) may not exceed the tail, nor the
    share up to it (P(R <= end)) fall short of it, by more than 4 standard
    errors of a quantile estimated from `resamples` draws. Several levels
    (so the ends fall on inner outcomes, not only the extremes) and seeds."""
    resamples = 2000
    for base, new in BOOT3:
        ratios = exact_bootstrap_ratios(base, new)
        assert len(ratios) == 27 * 27
        for level in (0.95, 0.8, 0.5, 0.2):
            for seed in range(6):
                lo, hi = stats.bootstrap_ratio_ci(base, new, level=level,
                                                  resamples=resamples, seed=seed)
                for end, q in ((lo, (1 - level) / 2), (hi, (1 + level) / 2)):
                    tol = 4 * math.sqrt(q * (1 - q) / resamples) + 1 / resamples
                    le, lt = exact_cdf(ratios, end)
                    assert lt <= q + tol and le >= q - tol, (
                        f"base {base}, new {new}, level {level}, seed {seed}: "
                        f"interval end {end:.4f} for quantile {q:.3f} has "
                        f"P(R < end) = {lt:.3f}, P(R <= end) = {le:.3f}")
                assert lo <= hi


def test_bootstrap_ci_exact_ends_at_n3():
    """Where the exact quantile is far from any step of the distribution,
    the interval is that outcome exactly, whatever the seed: at 95% the
    extreme ratios (each has probability (7/27)^2 = 6.7% > 2.5%), at 50%
    the inner outcomes."""
    base, new = BOOT3[0]
    ratios = exact_bootstrap_ratios(base, new)
    # medians of 3 resampled values: the middle one with probability
    # 13/27, each extreme with 7/27
    assert ratios.count(3 / 4) == 49 and ratios.count(5 / 2) == 169
    for seed in range(5):
        assert stats.bootstrap_ratio_ci(base, new, seed=seed) == (0.75, 11.0)
    # level 0.5: the 25% and 75% quantiles, both well inside a step
    q25 = next(r for r in ratios if exact_cdf(ratios, r)[0] >= 0.25)
    q75 = next(r for r in ratios if exact_cdf(ratios, r)[0] >= 0.75)
    for q, x in ((0.25, q25), (0.75, q75)):
        le, lt = exact_cdf(ratios, x)
        assert lt < q - 0.05 and le > q + 0.05
    for seed in range(5):
        assert stats.bootstrap_ratio_ci(base, new, level=0.5, seed=seed) == \
            pytest.approx((q25, q75))


def test_median_ci_matches_the_harness():
    # the known answers of tests/unit/test_stats.c's axm_median_ci
    assert stats.median_ci([5, 1, 4, 2, 3]) == (3, 1, 5, pytest.approx(0.9375))
    med, lo, hi, level = stats.median_ci(list(range(1, 11)))
    assert (med, lo, hi) == (5.5, 2, 9) and level == pytest.approx(1 - 2 * 11 / 1024)
    assert stats.median_ci([7.0]) == (7.0, 7.0, 7.0, 0.0)


def test_geomean():
    assert stats.geomean([2, 0.5]) == pytest.approx(1.0)
    assert stats.geomean([1.1, 1.1, 1.1]) == pytest.approx(1.1)
    assert math.isnan(stats.geomean([]))


# ---------------------------------------------------------------------------
# Verdicts on made-up files

def test_identical_runs_are_unchanged(tmp_path):
    cells = [make_cell("epoll", net_values()), make_cell("libuv", net_values(seed=9))]
    a = write(tmp_path, "a.json", make_doc(cells))
    b = write(tmp_path, "b.json", make_doc(copy.deepcopy(cells)))
    r = run_compare(a, b, "--json", tmp_path / "c.json", "--md", tmp_path / "c.md")
    assert r.returncode == 0, r.stderr
    v, rep = verdicts(tmp_path / "c.json")
    assert set(v.values()) == {"unchanged"}
    assert rep["summary"]["regression"] is False
    assert rep["summary"]["verdict"] == "pass" and rep["exit_code"] == 0
    assert rep["schema"] == "axbench-compare" and rep["schema_version"] == 2
    md = (tmp_path / "c.md").read_text()
    assert "Verdict: PASS" in md
    assert r.stdout.strip() == md.strip()


def test_slower_runtime_is_flagged_alone(tmp_path):
    base = [make_cell("epoll", net_values(seed=1)), make_cell("libuv", net_values(seed=2))]
    new = [make_cell("epoll", net_values(1.10, seed=3)), make_cell("libuv", net_values(seed=4))]
    r = run_compare(write(tmp_path, "a.json", make_doc(base)),
                    write(tmp_path, "b.json", make_doc(new)), "--json", tmp_path / "c.json")
    assert r.returncode == 1, r.stdout + r.stderr
    v, rep = verdicts(tmp_path / "c.json")
    assert v == {("epoll", "tcp_echo"): "worse", ("libuv", "tcp_echo"): "unchanged"}
    ep = next(c for c in rep["cells"] if c["runtime"] == "epoll")
    m = {x["metric"]: x for x in ep["metrics"]}
    # throughput is higher-is-better: a lower ratio is the regression
    assert m["throughput"]["verdict"] == "worse"
    assert m["throughput"]["ratio"] == pytest.approx(1 / 1.10, rel=0.03)
    assert m["throughput"]["ci_low"] < m["throughput"]["ratio"] < m["throughput"]["ci_high"]
    assert m["throughput"]["ci_high"] < 1
    assert m["throughput"]["p_value"] < 0.05
    assert m["latency_p50"]["verdict"] == "worse"
    # a network scenario gates on the server's CPU per message by default;
    # throughput and latency are compared and reported, informative counts
    # never
    assert m["server_cpu_us_per_msg"]["gated"] and m["server_cpu_us_per_msg"]["verdict"] == "worse"
    assert not m["throughput"]["gated"] and not m["latency_p50"]["gated"]
    assert not m["latency_max"]["gated"] and not m["latency_p99"]["gated"]
    assert "round_trips" not in m
    assert rep["summary"]["regressions"][0]["runtime"] == "epoll"
    geo = rep["summary"]["geomeans"]["latency_p50"]
    assert geo["by_runtime"]["epoll"] == pytest.approx(1.10, rel=0.03)
    assert "REGRESSION" in r.stdout


def test_faster_is_not_a_regression(tmp_path):
    base = [make_cell("epoll", net_values(seed=1))]
    new = [make_cell("epoll", net_values(1 / 1.2, seed=2))]
    r = run_compare(write(tmp_path, "a.json", make_doc(base)),
                    write(tmp_path, "b.json", make_doc(new)), "--json", tmp_path / "c.json")
    assert r.returncode == 0, r.stdout + r.stderr
    v, _ = verdicts(tmp_path / "c.json")
    assert v[("epoll", "tcp_echo")] == "better"


def test_noise_floor_keeps_small_significant_changes_unchanged(tmp_path):
    base = [make_cell("epoll", net_values(seed=1, spread=0.002))]
    new = [make_cell("epoll", net_values(1.02, seed=2, spread=0.002))]
    a = write(tmp_path, "a.json", make_doc(base))
    b = write(tmp_path, "b.json", make_doc(new))
    r = run_compare(a, b, "--json", tmp_path / "c.json")
    assert r.returncode == 0, r.stdout
    v, rep = verdicts(tmp_path / "c.json")
    assert v[("epoll", "tcp_echo")] == "unchanged"
    m = {x["metric"]: x for x in rep["cells"][0]["metrics"]}
    cpu = m["server_cpu_us_per_msg"]
    assert cpu["significant"] and not cpu["beyond_floor"]
    # a floor below the change makes it count
    r = run_compare(a, b, "--floor", "1%", "--json", tmp_path / "d.json")
    assert r.returncode == 1
    v, _ = verdicts(tmp_path / "d.json")
    assert v[("epoll", "tcp_echo")] == "worse"


def test_noise_without_a_shift_is_unchanged(tmp_path):
    base = [make_cell("epoll", net_values(seed=11, spread=0.25))]
    new = [make_cell("epoll", net_values(seed=12, spread=0.25))]
    r = run_compare(write(tmp_path, "a.json", make_doc(base)),
                    write(tmp_path, "b.json", make_doc(new)), "--json", tmp_path / "c.json")
    assert r.returncode == 0
    v, _ = verdicts(tmp_path / "c.json")
    assert v[("epoll", "tcp_echo")] == "unchanged"


def test_not_comparable_cells(tmp_path):
    base = [
        make_cell("epoll", net_values(seed=1)),
        make_cell("libuv", net_values(seed=2)),
        make_cell("libevent", net_values(n=3, seed=3)),
        make_cell("io_uring", net_values(seed=4)),
    ]
    new = [
        make_cell("epoll", net_values(1.5, seed=5), status="check_failed"),
        make_cell("libevent", net_values(1.5, n=3, seed=6)),
        make_cell("io_uring", net_values(seed=7)),
        make_cell("blocking", net_values(seed=8)),
    ]
    r = run_compare(write(tmp_path, "a.json", make_doc(base)),
                    write(tmp_path, "b.json", make_doc(new)), "--json", tmp_path / "c.json")
    # a failed check, a missing cell and too few reps are not regressions,
    # and not a pass either: the gate is inconclusive (exit 3)
    assert r.returncode == 3, r.stdout
    v, rep = verdicts(tmp_path / "c.json")
    reasons = {c["runtime"]: c["reason"] for c in rep["cells"]}
    assert v[("epoll", "tcp_echo")] == "not comparable"
    assert "check_failed" in reasons["epoll"]
    assert v[("libuv", "tcp_echo")] == "not comparable" and reasons["libuv"] == "only in BASE"
    assert v[("blocking", "tcp_echo")] == "not comparable" and reasons["blocking"] == "only in NEW"
    assert v[("libevent", "tcp_echo")] == "not comparable"
    assert "too few reps" in reasons["libevent"]
    assert v[("io_uring", "tcp_echo")] == "unchanged"
    assert rep["summary"]["counts"] == {"worse": 0, "better": 0, "unchanged": 1,
                                        "inconclusive": 0, "not comparable": 4,
                                        "unsupported": 0, "reference": 0}
    assert rep["summary"]["verdict"] == "inconclusive"
    assert "not comparable" in " ".join(rep["summary"]["why"])
    # each not-comparable cell names the metric and why
    assert reasons["libevent"].startswith("server_cpu_us_per_msg: too few reps")


def test_cells_match_by_parameters(tmp_path):
    base = [make_cell("epoll", net_values(seed=1), params={"connections": 1}),
            make_cell("epoll", net_values(seed=2), params={"connections": 16})]
    new = [make_cell("epoll", net_values(seed=3), params={"connections": 16}),
           make_cell("epoll", net_values(1.3, seed=4), params={"connections": 1})]
    r = run_compare(write(tmp_path, "a.json", make_doc(base)),
                    write(tmp_path, "b.json", make_doc(new)), "--json", tmp_path / "c.json")
    assert r.returncode == 1
    rep = json.loads((tmp_path / "c.json").read_text())
    by = {c["label"]: c["verdict"] for c in rep["cells"]}
    assert by == {"connections=1": "worse", "connections=16": "unchanged"}


def test_metric_option_selects_what_gates(tmp_path):
    vals = net_values(seed=1)
    slower_p99 = copy.deepcopy(vals)
    slower_p99["latency_p99"] = [v * 1.5 for v in vals["latency_p99"]]
    a = write(tmp_path, "a.json", make_doc([make_cell("epoll", vals)]))
    b = write(tmp_path, "b.json", make_doc([make_cell("epoll", slower_p99)]))
    # tail percentiles are compared and reported, but gate only when asked
    r = run_compare(a, b, "--json", tmp_path / "c.json")
    assert r.returncode == 0
    rep = json.loads((tmp_path / "c.json").read_text())
    m = {x["metric"]: x for x in rep["cells"][0]["metrics"]}
    assert m["latency_p99"]["verdict"] == "worse" and not m["latency_p99"]["gated"]
    assert "(not gated)" in r.stdout
    assert run_compare(a, b, "--metric", "latency_p99").returncode == 1
    assert run_compare(a, b, "--metric", "throughput", "--metric", "latency_p99").returncode == 1
    assert run_compare(a, b, "--metric", "all").returncode == 1
    assert run_compare(a, b, "--metric", "default").returncode == 0
    assert "no such metric" in one_error_line(run_compare(a, b, "--metric", "nosuch"))
    # a slower p50 alone is the load generator's as much as the server's:
    # it gates only when named
    slower_p50 = copy.deepcopy(vals)
    slower_p50["latency_p50"] = [v * 1.5 for v in vals["latency_p50"]]
    c = write(tmp_path, "c2.json", make_doc([make_cell("epoll", slower_p50)]))
    assert run_compare(a, c).returncode == 0
    assert run_compare(a, c, "--metric", "latency_p50").returncode == 1
    assert run_compare(a, c, "--metric", "default,latency_p50").returncode == 1
    assert run_compare(a, c, "--metric", "throughput").returncode == 0


def test_instructions_use_a_plain_threshold(tmp_path):
    units = {"instructions_per_op": ("instructions", -1)}

    def doc(v, n=1):
        return make_doc([make_cell("epoll", {"instructions_per_op": [v] * n},
                                   scenario="spawn_join", params={"count": 1000}, units=units)])

    a = write(tmp_path, "a.json", doc(1000.0))
    # one repetition is enough: the counts repeat exactly
    assert run_compare(a, write(tmp_path, "b.json", doc(1005.0))).returncode == 0
    r = run_compare(a, write(tmp_path, "c.json", doc(1015.0)), "--json", tmp_path / "o.json")
    assert r.returncode == 1
    v, rep = verdicts(tmp_path / "o.json")
    assert v[("epoll", "spawn_join")] == "worse"
    assert rep["cells"][0]["metrics"][0]["test"] == "threshold"
    assert run_compare(a, write(tmp_path, "d.json", doc(1015.0)),
                       "--instr-threshold", "2%").returncode == 0
    assert run_compare(a, write(tmp_path, "e.json", doc(980.0))).returncode == 0


def test_normalize_cancels_machine_wide_drift(tmp_path):
    # the whole machine got 20% slower between the runs: every runtime moves
    base = [make_cell(rt, net_values(seed=s)) for rt, s in (("epoll", 1), ("libuv", 2),
                                                            ("blocking", 3))]
    new = [make_cell(rt, net_values(1.2, seed=s)) for rt, s in (("epoll", 4), ("libuv", 5),
                                                                ("blocking", 6))]
    a = write(tmp_path, "a.json", make_doc(base))
    b = write(tmp_path, "b.json", make_doc(new))
    assert run_compare(a, b).returncode == 1
    r = run_compare(a, b, "--normalize", "blocking", "--json", tmp_path / "c.json")
    assert r.returncode == 0, r.stdout
    v, rep = verdicts(tmp_path / "c.json")
    assert v[("epoll", "tcp_echo")] == "unchanged"
    assert v[("blocking", "tcp_echo")] == "reference"
    assert rep["settings"]["normalize"] == "blocking"
    bad = run_compare(a, b, "--normalize", "nosuch")
    assert bad.returncode == 2 and bad.stderr.startswith("axbench: ")


def test_environment_difference_is_a_warning_printed_first(tmp_path):
    env2 = copy.deepcopy(ENV)
    env2["cpu"]["model"] = "Other CPU 9000"
    env2["kernel"]["release"] = "6.12.0-other"
    env2["pinning"]["mode"] = "same"
    cells = [make_cell("epoll", net_values())]
    r = run_compare(write(tmp_path, "a.json", make_doc(cells)),
                    write(tmp_path, "b.json", make_doc(copy.deepcopy(cells), env=env2)),
                    "--json", tmp_path / "c.json")
    assert r.returncode == 0
    lines = r.stderr.splitlines()
    assert lines[0].startswith("axbench: warning: environment differs")
    assert any("CPU model" in x and "Other CPU 9000" in x for x in lines)
    assert any("kernel" in x for x in lines) and any("pinning" in x for x in lines)
    rep = json.loads((tmp_path / "c.json").read_text())
    facts = {d["fact"] for d in rep["environment_differences"]}
    assert {"CPU model", "kernel", "pinning"} <= facts
    assert "Warning" in r.stdout


def test_output_is_deterministic(tmp_path):
    base = [make_cell("epoll", net_values(seed=1, spread=0.05))]
    new = [make_cell("epoll", net_values(1.04, seed=2, spread=0.05))]
    a = write(tmp_path, "a.json", make_doc(base))
    b = write(tmp_path, "b.json", make_doc(new))
    run_compare(a, b, "--json", tmp_path / "1.json")
    run_compare(a, b, "--json", tmp_path / "2.json")
    assert (tmp_path / "1.json").read_bytes() == (tmp_path / "2.json").read_bytes()


# ---------------------------------------------------------------------------
# Bad input: exit 2 and one clear line

def one_error_line(r):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("axbench: ")
    return lines[0]


def test_bad_input(tmp_path):
    good = write(tmp_path, "good.json", make_doc([make_cell("epoll", net_values())]))
    v2 = write(tmp_path, "v2.json", make_doc([make_cell("epoll", net_values())], version=2))
    assert "schema version 2" in one_error_line(run_compare(good, v2))
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text(good.read_text()[:200])
    assert "not valid JSON" in one_error_line(run_compare(corrupt, good))
    empty = tmp_path / "empty.json"
    empty.write_text("")
    assert "empty" in one_error_line(run_compare(good, empty))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "something-else"}))
    assert "not an axbench result file" in one_error_line(run_compare(good, other))
    conform = tmp_path / "conform.json"
    conform.write_text(json.dumps({"schema": "axbench-conform", "version": 1}))
    assert "conformance" in one_error_line(run_compare(good, conform))
    assert "cannot read" in one_error_line(run_compare(good, tmp_path / "missing.json"))
    one_error_line(run_compare(good))
    one_error_line(run_compare(good, good, "--floor", "lots"))
    one_error_line(run_compare(good, good, "--floor", "1.5"))


def test_interrupted_run_is_compared_with_a_warning(tmp_path):
    cells = [make_cell("epoll", net_values())]
    r = run_compare(write(tmp_path, "a.json", make_doc(cells)),
                    write(tmp_path, "b.json", make_doc(copy.deepcopy(cells),
                                                       status="interrupted")))
    assert r.returncode == 0
    assert "interrupted" in r.stderr


# ---------------------------------------------------------------------------
# Real runs: the two checks

# What the two real-run tests measure, and why (measured on the 2-vCPU
# development VMs, many A/A and A/B pairs, see docs/reports.md):
# - split pinning with 16 connections keeps the server busy on its own CPU,
#   so the 2 us busy-wait per echo shows in full in the server's CPU per
#   message (about +30%) and in the median round trip. With both ends on one
#   CPU the scheduler hides most of it (the delayed server is preempted by
#   the woken client and then finds the next message already there).
# - the verdict is gated on those two, the server's own cost: throughput
#   and tail percentiles of a closed loop follow whatever else the machine
#   runs (they moved by 2-3x between identical runs while other jobs ran);
#   server CPU per message and the median moved less, but still together
#   by up to ~15-20% between runs; see GATE for the floor.
# - 5 repetitions (the minimum p of 5 against 5 is 0.008). If this ever
#   cries wolf, raise --reps, never the thresholds.
RUN_ARGS = ["--scenario", "tcp_echo", "-p", "connections=16", "--duration", "0.5",
            "--warmup", "0.2", "--reps", "1", "--pin", "split"]
# Repetitions come from ROUNDS separate one-repetition runs, interleaved in
# time across the variants (base, same, base, same, ...) and
# merged per cell: the machine's drift (DESIGN.md section 7: 20-30% between
# runs minutes apart on these shared VMs) then falls on every variant alike
# instead of on one whole file, as it would with back-to-back 5-rep runs.
ROUNDS = 5
# The floor: what is left of that drift between interleaved one-rep runs
# stays well inside 10%; the 2 us delay adds ~+35% to epoll's ~5.5 us per
# message. The default 3% floor is meant for dedicated machines (docs/ci.md).
GATE = ["--metric", "server_cpu_us_per_msg,latency_p50", "--floor", "10%"]


def available_runtimes():
    r = subprocess.run([str(AXBENCH), "list"], capture_output=True, text=True, timeout=60)
    return {m.group(1) for m in re.finditer(r"^\s+(\S+)\s+available\b", r.stdout, re.M)}


def merge_rounds(paths, out):
    """One result file whose cells carry the repetitions of every round
    (axbench ab's merge, without its pairing)."""
    merged = ab.merge_runs(paths)
    for cell in merged["cells"]:
        assert cell.get("summary"), cell.get("message")
    out.write_text(json.dumps(merged))
    return out


def interleaved_runs(d, runtimes, variants):
    """{name: merged result path} for variants [(name, delay or None)]."""
    parts = {name: [] for name, _ in variants}
    for i in range(ROUNDS):
        for name, delay in variants:
            e = dict(os.environ)
            e.pop("AX_TEST_ECHO_DELAY_NS", None)
            if delay:
                e["AX_TEST_ECHO_DELAY_NS"] = delay
            path = d / f"{name}-{i}.json"
            r = subprocess.run([str(AXBENCH), "run", "--runtime", ",".join(runtimes),
                                *RUN_ARGS, "--json", str(path)], capture_output=True,
                               text=True, timeout=300, env=e)
            assert r.returncode == 0, r.stderr[-3000:]
            parts[name].append(path)
    return {name: merge_rounds(paths, d / f"{name}.json") for name, paths in parts.items()}


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    """Two variants of the same code and one with epoll slowed down, each
    with epoll and a second ax runtime when one is available."""
    if os.cpu_count() is None or os.cpu_count() < 2:
        pytest.skip("split pinning needs two CPUs")
    have = available_runtimes()
    if "epoll" not in have:
        pytest.skip(f"the epoll runtime is not available here (available: {sorted(have)})")
    other = next((rt for rt in ("libuv", "io_uring", "libevent") if rt in have), None)
    runtimes = ["epoll"] + ([other] if other else [])
    d = tmp_path_factory.mktemp("compare-e2e")
    out = {"other": other, "dir": d, "runtimes": runtimes}
    out.update(interleaved_runs(d, runtimes, [("base", None), ("same", None)]))
    return out


@needs_axbench
def test_same_code_reports_no_regression(real_runs):
    d = real_runs["dir"]
    r = run_compare(real_runs["base"], real_runs["same"], *GATE,
                    "--json", d / "same-cmp.json", "--md", d / "same-cmp.md")
    # the same code: a pass on a quiet machine, inconclusive when other work
    # took the pinned CPUs; never a regression
    assert r.returncode in (0, 3), r.stdout
    v, rep = verdicts(d / "same-cmp.json")
    assert "worse" not in v.values(), r.stdout
    assert rep["summary"]["regression"] is False
    if r.returncode == 3:
        assert rep["interference"]["blocking"] or rep["summary"]["counts"]["inconclusive"], \
            r.stdout


# The slowed-down variant of these real runs lives in test_ab.py: a 2 us
# delay is caught there by `axbench ab`, pair by pair, under a CPU hog.
# Two separate runs, as compared here, cannot be trusted to catch it on a
# shared machine (the interleaved rounds above only soften the drift), and
# the gate now says so (inconclusive) rather than guessing.


# ---------------------------------------------------------------------------
# The gate: pass, regression, inconclusive

def with_others_share(cell, share):
    """Record that other processes took `share` of the pinned CPUs during
    every repetition of cell (as the harness does per repetition)."""
    n = cell["summary"]["reps"]
    cell["summary"]["metrics"]["machine_others_share"] = {
        "unit": "ratio", "better": 0, "n": n, "median": share, "ci_low": share,
        "ci_high": share, "ci_level": 0.9, "values": [share] * n}
    return cell


def test_zero_to_zero_is_unchanged_and_unsupported_is_left_out(tmp_path):
    units = dict(NET_METRICS, tcp_retransmits=("count", -1))
    vals = dict(net_values(), tcp_retransmits=[0.0] * 7)
    base = [make_cell("epoll", vals, units=units),
            make_cell("blocking", vals, scenario="http_plaintext", status="unsupported")]
    new = copy.deepcopy(base)
    r = run_compare(write(tmp_path, "a.json", make_doc(base)),
                    write(tmp_path, "b.json", make_doc(new)),
                    "--metric", "all", "--json", tmp_path / "c.json")
    assert r.returncode == 0, r.stdout
    v, rep = verdicts(tmp_path / "c.json")
    assert v[("blocking", "http_plaintext")] == "unsupported"
    assert rep["summary"]["counts"]["unsupported"] == 1
    assert rep["summary"]["counts"]["not comparable"] == 0
    m = {x["metric"]: x for x in rep["cells"][0]["metrics"]}
    assert m["tcp_retransmits"]["verdict"] == "unchanged" and m["tcp_retransmits"]["ratio"] == 1
    assert "baseline median is zero" not in r.stdout
    # unsupported cells are one line, not a row each
    assert "Unsupported on both sides (left out): blocking: http_plaintext" in r.stdout


def test_three_reps_against_themselves_are_inconclusive_not_a_pass(tmp_path):
    # the quick profile's 3 repetitions can never reach p < 0.05
    cells = [make_cell(rt, net_values(n=3, seed=i)) for i, rt in enumerate(("epoll", "libuv"))]
    doc = write(tmp_path, "quick.json", make_doc(cells))
    r = run_compare(doc, doc, "--json", tmp_path / "c.json")
    assert r.returncode == 3, r.stdout
    _, rep = verdicts(tmp_path / "c.json")
    assert rep["summary"]["verdict"] == "inconclusive"
    assert "INCONCLUSIVE" in r.stdout.splitlines()[2]
    assert "too few reps" in " ".join(rep["summary"]["why"])


def test_interference_turns_a_slowdown_into_inconclusive_and_is_printed_first(tmp_path):
    base = [with_others_share(make_cell("epoll", net_values(seed=1)), 0.02)]
    new = [with_others_share(make_cell("epoll", net_values(1.3, seed=2)), 0.32)]
    a = write(tmp_path, "a.json", make_doc(base))
    b = write(tmp_path, "b.json", make_doc(new))
    r = run_compare(a, b, "--json", tmp_path / "c.json")
    assert r.returncode == 3, r.stdout
    v, rep = verdicts(tmp_path / "c.json")
    assert v[("epoll", "tcp_echo")] == "inconclusive"
    assert "32%" in rep["cells"][0]["reason"]
    lines = [x for x in r.stdout.splitlines() if x.strip()]
    assert lines[1].startswith("> **Interference:**") and "32%" in lines[1]
    assert rep["interference"]["cells"] == [rep["cells"][0]["id"]]
    # unchanged under interference is not a pass either
    quiet = [with_others_share(make_cell("epoll", net_values(seed=3)), 0.32)]
    r = run_compare(a, write(tmp_path, "q.json", make_doc(quiet)))
    assert r.returncode == 3
    # a higher threshold accepts the machine as it is
    assert run_compare(a, b, "--max-interference", "50%").returncode == 1
    # instruction counts do not move with other work: still a regression
    units = {"instructions_per_op": ("instructions", -1)}
    ia = make_cell("epoll", {"instructions_per_op": [1000.0]}, scenario="spawn_join",
                   params={"count": 1}, units=units)
    ib = with_others_share(make_cell("epoll", {"instructions_per_op": [1100.0]},
                                     scenario="spawn_join", params={"count": 1},
                                     units=units), 0.9)
    assert run_compare(write(tmp_path, "ia.json", make_doc([ia])),
                       write(tmp_path, "ib.json", make_doc([ib]))).returncode == 1


def test_bimodal_repetitions_make_a_change_inconclusive(tmp_path):
    base = [make_cell("epoll", net_values(seed=1))]
    vals = net_values(1.3, seed=2)
    # two of seven repetitions at twice the cost: two groups, not noise
    vals["server_cpu_us_per_msg"][:2] = [v * 2 for v in vals["server_cpu_us_per_msg"][:2]]
    new = [make_cell("epoll", vals)]
    r = run_compare(write(tmp_path, "a.json", make_doc(base)),
                    write(tmp_path, "b.json", make_doc(new)), "--json", tmp_path / "c.json")
    assert r.returncode == 3, r.stdout
    v, rep = verdicts(tmp_path / "c.json")
    assert v[("epoll", "tcp_echo")] == "inconclusive"
    assert any(f["kind"] == "bimodal" for f in rep["cells"][0]["flags"])


def test_loadgen_bound_throughput_is_not_trusted(tmp_path):
    base = [make_cell("epoll", net_values(seed=1))]
    new = [make_cell("epoll", net_values(seed=2))]
    new[0]["summary"]["metrics"]["throughput"]["values"] = \
        [v / 1.3 for v in new[0]["summary"]["metrics"]["throughput"]["values"]]
    for c in base + new:
        c["summary"]["loadgen_saturated"] = True
    r = run_compare(write(tmp_path, "a.json", make_doc(base)),
                    write(tmp_path, "b.json", make_doc(new)), "--metric", "throughput",
                    "--json", tmp_path / "c.json")
    assert r.returncode == 3, r.stdout
    v, rep = verdicts(tmp_path / "c.json")
    assert v[("epoll", "tcp_echo")] == "inconclusive"
    assert "load generator was the bottleneck" in rep["cells"][0]["reason"]


def ab_doc(cells, side, run_id="ab-test-1"):
    d = make_doc(cells)
    d["ab"] = {"run_id": run_id, "side": side}
    return d


def test_paired_ab_sides_use_the_sign_test_and_survive_interference(tmp_path):
    # a machine whose speed swings up to 2x between pairs; B is 10% costlier
    # than A within every pair
    rng = random.Random(5)
    swing = [1 + rng.uniform(0, 1.0) for _ in range(7)]
    a_vals = net_values(seed=1)
    b_vals = copy.deepcopy(a_vals)
    a_vals["server_cpu_us_per_msg"] = [7.0 * s * (1 + rng.uniform(-0.01, 0.01)) for s in swing]
    b_vals["server_cpu_us_per_msg"] = [7.7 * s * (1 + rng.uniform(-0.01, 0.01)) for s in swing]
    a = write(tmp_path, "A.json", ab_doc([with_others_share(make_cell("epoll", a_vals), 0.4)], "A"))
    b = write(tmp_path, "B.json", ab_doc([with_others_share(make_cell("epoll", b_vals), 0.4)], "B"))
    r = run_compare(a, b, "--json", tmp_path / "c.json")
    assert r.returncode == 1, r.stdout
    v, rep = verdicts(tmp_path / "c.json")
    assert rep["paired"] is True
    m = {x["metric"]: x for x in rep["cells"][0]["metrics"]}["server_cpu_us_per_msg"]
    assert m["test"] == "sign-exact" and m["paired"]
    assert m["ratio"] == pytest.approx(1.1, rel=0.03)
    # the same files unpaired: the swing hides the change (unchanged even
    # with the interference accepted), and with the interference counted
    # the gate is inconclusive, never a pass
    for d, side in ((a, "A"), (b, "B")):
        doc = json.loads(d.read_text())
        doc["ab"]["run_id"] = "other-" + side
        d.write_text(json.dumps(doc))
    r = run_compare(a, b, "--max-interference", "100%", "--json", tmp_path / "u.json")
    assert r.returncode == 0, r.stdout
    assert verdicts(tmp_path / "u.json")[0][("epoll", "tcp_echo")] == "unchanged"
    assert run_compare(a, b).returncode == 3


def test_paired_edge_cases_are_said_not_crashed(tmp_path):
    # a counter at 0 in one NEW repetition: a ratio of 0, no crash (exit 4)
    units = dict(NET_METRICS, tcp_retransmits=("count", -1))
    base = dict(net_values(), tcp_retransmits=[3.0, 4, 5, 3, 4, 5, 3])
    new = dict(net_values(seed=2), tcp_retransmits=[0.0, 4, 5, 3, 4, 5, 3])
    a = write(tmp_path, "A.json", ab_doc([make_cell("epoll", base, units=units)], "A"))
    b = write(tmp_path, "B.json", ab_doc([make_cell("epoll", new, units=units)], "B"))
    r = run_compare(a, b, "--metric", "all", "--json", tmp_path / "c.json")
    assert r.returncode in (0, 1, 3), r.stderr
    # unequal repetition counts: judged unpaired, and the metric says so
    short = net_values(n=6, seed=3)
    c = write(tmp_path, "C.json", ab_doc([make_cell("epoll", short)], "B"))
    r = run_compare(a, c, "--json", tmp_path / "d.json")
    assert r.returncode in (0, 1, 3), r.stderr
    _, rep = verdicts(tmp_path / "d.json")
    m = {x["metric"]: x for x in rep["cells"][0]["metrics"]}["server_cpu_us_per_msg"]
    assert not m["paired"] and "not paired" in m["reason"]


def test_not_comparable_causes_are_counted_whole(tmp_path):
    base = [make_cell("epoll", net_values(n=2, seed=1)), make_cell("libuv", net_values(seed=2)),
            make_cell("libevent", net_values(n=2, seed=3))]
    new = [make_cell("epoll", net_values(n=2, seed=4)),
           make_cell("libevent", net_values(n=2, seed=5))]
    r = run_compare(write(tmp_path, "a.json", make_doc(base)),
                    write(tmp_path, "b.json", make_doc(new)), "--json", tmp_path / "c.json")
    assert r.returncode == 3
    _, rep = verdicts(tmp_path / "c.json")
    why = " ".join(rep["summary"]["why"])
    assert "3 cell(s) not comparable (too few reps: 2; only in BASE: 1)" in why, why


def test_min_sign_test_p_and_bimodality():
    assert stats.min_sign_test_p(5) > 0.05 > stats.min_sign_test_p(6)
    # 3 values: one apart is all there is to go by; 7 values: one outlier
    # is an outlier, two groups of 2 or more are a second mode
    assert stats.is_bimodal([27.6, 26.8, 59.9], 0.25)[0]
    assert not stats.is_bimodal([10, 10.1, 9.9, 10, 10.2, 9.8, 20], 0.25)[0]
    assert stats.is_bimodal([10, 10.1, 9.9, 10, 10.2, 20, 20.5], 0.25)[0]
    assert not stats.is_bimodal([10, 10.5, 11, 11.5, 12], 0.25)[0]


def test_sign_test_known_answers():
    # all 9 of one sign: 2/512; 8 of 9 (one disturbed pair): 2*10/512
    assert stats.sign_test([1] * 9) == (9, pytest.approx(2 / 512))
    assert stats.sign_test([1] * 8 + [-50]) == (8, pytest.approx(20 / 512))
    assert stats.sign_test([-1] * 7)[1] == pytest.approx(2 / 128)
    # balanced signs, and zeros dropped
    assert stats.sign_test([1, -1, 1, -1, 0, 0]) == (2, 1.0)
    assert stats.sign_test([]) == (0, 1.0)


def test_exit_codes_are_distinct_and_documented():
    # the one table of every command's exit statuses
    doc = (ROOT / "docs" / "harness.md").read_text()
    for code, word in ((0, "pass"), (1, "regression"), (2, "bad input"), (3, "inconclusive"),
                       (4, "internal error"), (5, "could not be written")):
        assert re.search(rf"\|\s*`?{code}`?\s*\|[^|\n]*{word}", doc, re.I), (code, word)
    # and the codes the reports use are those of that table
    from axreports import util
    assert (util.EXIT_OK, util.EXIT_FAILED, util.EXIT_BAD_INPUT, util.EXIT_INCONCLUSIVE,
            util.EXIT_INTERNAL, util.EXIT_WRITE) == (0, 1, 2, 3, 4, 5)
