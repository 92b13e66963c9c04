"""`axbench compare BASE.json NEW.json`: is NEW worse than BASE, per cell,
how sure are we, and can the answer be trusted at all.

Cells are matched by implementation, scenario and parameter values. For
each gated metric the ratio of medians NEW/BASE gets a 95% percentile
bootstrap confidence interval and a two-sided Mann-Whitney U test over the
per-repetition values (or, for the two sides of one `axbench ab` run, the
per-pair ratios get an exact sign test and a paired bootstrap). A
change counts only when it is significant (p below the level AND the
interval excludes 1) AND beyond the noise floor (the whole interval lies
outside 1 +- floor, as Criterion.rs decides "change within noise
threshold"). Metrics counted by callgrind (unit "instructions") do not move
with machine noise and use a plain threshold.

By default each scenario gates on its stable figure (DEFAULT_GATES): the
server's CPU per message for network scenarios, whose throughput and
latency on a small machine are mostly the load generator's; a local
scenario's own cost per operation; instruction counts wherever present.

Metric and cell verdicts: worse, better, unchanged, not comparable; a cell
is also inconclusive when a change rests on repetitions that other work
disturbed (interference), that the load generator bounded, or that split
into two groups (bimodal); cells unsupported on both sides are left out.
The gate: *regression* (exit 1) when some cell is worse; otherwise
*inconclusive* (exit 3) when any cell is inconclusive or not comparable,
when nothing could be compared, or when other processes took more than
--max-interference of the pinned CPUs in either file (not for a paired A/B
run, which cancels it); otherwise *pass* (exit 0). Bad input is exit 2.
"""

import collections
import json
import math
import zlib

from . import stats
from .results import load_results, short_label, varying_params
from .util import InputError, finite, fmt_pct, fmt_value, warn

COMPARE_SCHEMA = "axbench-compare"
COMPARE_VERSION = 2

# The gate's exit codes (docs/reports.md); 2 is bad input, as everywhere.
EXIT_PASS = 0
EXIT_REGRESSION = 1
EXIT_BAD_INPUT = 2
EXIT_INCONCLUSIVE = 3

DEFAULT_FLOOR = 0.03
DEFAULT_ALPHA = 0.05
DEFAULT_INSTR_THRESHOLD = 0.01
DEFAULT_RESAMPLES = 2000
MAX_RESAMPLES = 100000
# Other processes' share of the pinned CPUs above which a wall-clock
# figure is not trusted (machine.others_share, docs/harness.md).
DEFAULT_MAX_INTERFERENCE = 0.10
# A gap between two consecutive sorted repetitions larger than this share
# of their median splits them into two groups: the cell is bimodal.
BIMODAL_GAP = 0.25
# The bootstrap stream of a metric is seeded from this and the cell and
# metric names, so every run of compare on the same files agrees.
SEED = 0x61786263

# What each scenario gates on by default: its stable figure. On a 2-CPU
# machine closed-loop throughput and latency are the load generator's as
# much as the server's and swing 10-50% beside other work, while the
# server's CPU per message moves 2-5% (DESIGN.md section 7); local
# scenarios run on one pinned CPU and their cost per operation is theirs.
DEFAULT_GATES = {
    "tcp_echo": ("server_cpu_us_per_msg",),
    "http_plaintext": ("server_cpu_us_per_msg",),
    "rpc_fanout": ("server_cpu_us_per_msg",),
    "fairness": ("server_cpu_us_per_msg",),
    "connect_storm": ("server_cpu_us_per_msg",),
    "stall_echo": ("server_cpu_us_per_msg",),
    "idle_conns": ("server_rss_per_conn",),
    "spawn_join": ("spawn_join_ns",),
    "ctx_switch": ("switch_ns",),
    # the cross-thread round trip is a cross-CPU wake (~30 us on VMs)
    "chan_pingpong": ("local_rtt_ns",),
    "timers": ("arm_fire_ns", "churn_ns"),
    "blocking_offload": ("calls_per_s",),
    "file_read": ("seq_warm_mib_s",),
}

# Percentiles above the median move with whatever else the machine runs
# (one descheduling of the server lands in p90 and above), and the extreme
# tail of a short run rests on a handful of samples. They are compared and
# reported, but decide the verdict only when named (--metric) or with
# --metric all.
TAIL_SUFFIXES = ("_p90", "_p99", "_p99_9", "_p99_99", "_max")
# Figures every cell carries that describe the process, not the scenario;
# gated only when named.
GENERIC = {"cpu_s", "wall_s", "maxrss_kib", "server_maxrss_kib", "tcp_retransmits",
           "throughput_mib", "msgs_per_cpu_s"}
# Figures that measure the load generator as much as the server: a change
# in them is not trusted when the load generator was the bottleneck.
LOAD_BOUND = ("throughput", "throughput_mib", "latency_", "msgs_per_cpu_s")

# Fewer values than this on a side is "too few reps" whatever the test
# could say (a median of two is not a median).
MIN_REPS = 3


def default_gate(metric, scenario=None):
    """Whether a metric takes part in the verdict by default: instruction
    counts always; the scenario's stable figure (DEFAULT_GATES); for a
    scenario without an entry, every metric with a direction except the
    tail percentiles and the generic process figures."""
    if metric.better == 0:
        return False
    if metric.instructions:
        return True
    if scenario in DEFAULT_GATES:
        return metric.name in DEFAULT_GATES[scenario]
    return not metric.name.endswith(TAIL_SUFFIXES) and metric.name not in GENERIC


def parse_metric_option(values):
    """--metric may be given several times and take comma lists; 'all'
    gates on every metric with a direction, 'default' on the default set."""
    names = []
    for v in values or []:
        names.extend(x.strip() for x in v.split(",") if x.strip())
    return names


class Settings:
    def __init__(self, floor=DEFAULT_FLOOR, alpha=DEFAULT_ALPHA, metrics=None,
                 instr_threshold=DEFAULT_INSTR_THRESHOLD, resamples=DEFAULT_RESAMPLES,
                 normalize=None, max_interference=DEFAULT_MAX_INTERFERENCE):
        if not (0 <= floor < 1):
            raise InputError(f"--floor must be in [0, 1), e.g. 0.03 for 3%, not {floor}")
        if not (0 < alpha < 1):
            raise InputError(f"--alpha must be in (0, 1), not {alpha}")
        if not (0 <= instr_threshold < 1):
            raise InputError(f"--instr-threshold must be in [0, 1), not {instr_threshold}")
        if not (100 <= resamples <= MAX_RESAMPLES):
            raise InputError(f"--resamples must be in [100, {MAX_RESAMPLES}], not {resamples}")
        if not (0 < max_interference <= 1):
            raise InputError(f"--max-interference must be in (0, 1], e.g. 0.1 for 10%, "
                             f"not {max_interference}")
        self.floor = floor
        self.alpha = alpha
        self.metrics = metrics or []
        self.instr_threshold = instr_threshold
        self.resamples = resamples
        self.normalize = normalize
        self.max_interference = max_interference

    def compared(self, metric):
        """Every metric with a direction is compared and reported."""
        return metric.better != 0

    def gates(self, metric, scenario=None):
        """Whether the metric decides the cell's verdict."""
        if not self.metrics:
            return default_gate(metric, scenario)
        if "all" in self.metrics:
            return metric.better != 0
        return metric.name in self.metrics or ("default" in self.metrics
                                               and default_gate(metric, scenario))

    def as_json(self):
        return {
            "floor": self.floor,
            "alpha": self.alpha,
            "ci_level": 0.95,
            "metrics": self.metrics or ["default"],
            "default_gates": {k: list(v) for k, v in DEFAULT_GATES.items()},
            "instructions_threshold": self.instr_threshold,
            "bootstrap_resamples": self.resamples,
            "bootstrap_seed": SEED,
            "normalize": self.normalize,
            "max_interference": self.max_interference,
            "bimodal_gap": BIMODAL_GAP,
        }


# ---------------------------------------------------------------------------
# Environment

def _get(d, *path):
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


# (label, path in the environment object): what makes two machines or
# builds differ enough that a ratio may reflect them rather than the code.
ENV_FACTS = [
    ("CPU model", ("cpu", "model")),
    ("CPU count", ("cpu", "count")),
    ("CPU governor", ("cpu", "governor")),
    ("kernel", ("kernel", "release")),
    ("machine", ("kernel", "machine")),
    ("compiler", ("build", "compiler")),
    ("compiler version", ("build", "compiler_version")),
    ("build type", ("build", "build_type")),
    ("C flags", ("build", "c_flags")),
    ("sanitizers", ("build", "sanitizers")),
    ("pinning", ("pinning", "mode")),
    ("server CPU", ("pinning", "server_cpu")),
    ("load generator CPU", ("pinning", "load_cpu")),
    ("server CPU set", ("pinning", "server_cpus")),
    ("load generator CPU set", ("pinning", "load_cpus")),
    ("libuv", ("libraries", "libuv", "loaded")),
    ("libevent", ("libraries", "libevent", "loaded")),
    ("liburing", ("libraries", "liburing", "loaded")),
]


# Facts older result files lack: compared only when both files have them.
OPTIONAL_FACTS = {"server_cpus", "load_cpus"}


def env_differences(base, new):
    """[(label, base value, new value)] for every recorded fact that differs."""
    out = []
    for label, path in ENV_FACTS:
        a, b = _get(base.env, *path), _get(new.env, *path)
        if path[-1] in OPTIONAL_FACTS and (a is None or b is None):
            continue  # a file written before the fact was recorded
        if a != b and not (a is None and b is None):
            out.append((label, a, b))
    return out


# ---------------------------------------------------------------------------
# Normalization by a reference implementation measured in the same run

def normalized_values(doc, ref):
    """{cell key: {metric name: [values / reference values]}} for every
    cell of `doc` that has a reference cell `ref` with the same scenario
    and parameters. Repetitions are paired by index (the harness runs
    repetition k of every cell back to back, so the pair saw the same
    machine); with unequal counts each value is divided by the reference's
    median. This cancels drift that moves every implementation alike, the
    dominant noise on shared machines (DESIGN.md section 7)."""
    refs = {}
    for c in doc.cells:
        if c.runtime == ref and c.ok:
            refs[(c.scenario, c.key[2])] = c
    out = {}
    for c in doc.cells:
        r = refs.get((c.scenario, c.key[2]))
        if c.runtime == ref or r is None or not c.ok:
            continue
        per = {}
        for name, m in c.metrics.items():
            rm = r.metrics.get(name)
            if rm is None or not rm.values or not m.values:
                continue
            if len(rm.values) == len(m.values) and all(v > 0 for v in rm.values):
                per[name] = [v / w for v, w in zip(m.values, rm.values)]
            elif finite(rm.median) and rm.median > 0:
                per[name] = [v / rm.median for v in m.values]
        out[c.key] = per
    return out


# ---------------------------------------------------------------------------
# One metric, one cell

def _seed(cell_key, metric):
    text = json.dumps([cell_key[0], cell_key[1], list(cell_key[2]), metric])
    return SEED ^ zlib.crc32(text.encode())


def compare_metric(cell_key, metric, base_vals, new_vals, settings, paired=False):
    """Compare one metric of one cell; returns a dict (see docs/reports.md).
    paired: base_vals[k] and new_vals[k] ran back to back (axbench ab)."""
    m = {
        "metric": metric.name,
        "unit": metric.unit,
        "better": metric.better,
        "n_base": len(base_vals),
        "n_new": len(new_vals),
        "base_median": stats.median(base_vals) if base_vals else None,
        "new_median": stats.median(new_vals) if new_vals else None,
        "ratio": None,
        "ci_low": None,
        "ci_high": None,
        "p_value": None,
        "test": None,
        "paired": False,
        "significant": False,
        "beyond_floor": False,
        "verdict": "not comparable",
        "reason": None,
    }
    if not base_vals or not new_vals:
        m["reason"] = m["cause"] = "no values on one side"
        return m
    bm, nm = m["base_median"], m["new_median"]
    if not (finite(bm) and finite(nm)):
        m["reason"] = m["cause"] = "non-finite median"
        return m
    if bm == 0:
        if nm == 0:
            # a counter that stayed at zero (retransmits, failures) did not
            # change; it is not "not comparable"
            m["ratio"] = 1.0
            m["test"] = "zero"
            m["verdict"] = "unchanged"
            return m
        m["reason"] = f"BASE median is 0 and NEW's is {fmt_value(nm, metric.unit)}: no ratio"
        m["cause"] = "BASE median 0: no ratio"
        return m
    ratio = nm / bm
    m["ratio"] = ratio
    worse_dir = (ratio < 1) if metric.better > 0 else (ratio > 1)

    if metric.instructions:
        # callgrind counts repeat exactly: a plain relative threshold
        m["test"] = "threshold"
        m["beyond_floor"] = abs(ratio - 1) > settings.instr_threshold
        m["significant"] = m["beyond_floor"]
        if m["beyond_floor"]:
            m["verdict"] = "worse" if worse_dir else "better"
        else:
            m["verdict"] = "unchanged"
        return m

    if paired and not stats.pairable(base_vals, new_vals):
        # said, not silent: the page says the run was judged pair by pair
        m["reason"] = (f"not paired ({len(base_vals)} vs {len(new_vals)} values, or a "
                       f"BASE value <= 0): judged as two independent samples")
    if paired and stats.pairable(base_vals, new_vals):
        m["paired"] = True
        n = len(base_vals)
        if stats.min_sign_test_p(n) >= settings.alpha:
            need = next(k for k in range(1, 64) if stats.min_sign_test_p(k) < settings.alpha)
            m["reason"] = (f"too few pairs ({n}) for p < {settings.alpha:g} to be "
                           f"reachable (at least {need})")
            m["cause"] = "too few pairs"
            return m
        ratios = [b2 / b1 for b1, b2 in zip(base_vals, new_vals)]
        m["ratio"] = ratio = stats.median(ratios)
        worse_dir = (ratio < 1) if metric.better > 0 else (ratio > 1)
        lo, hi = stats.bootstrap_paired_ci(ratios, 0.95, settings.resamples,
                                           _seed(cell_key, metric.name))
        # the sign test, not the signed-rank test: on a shared machine one
        # pair can be disturbed on one side only, and its size must not
        # outweigh the other pairs' agreement
        _, p = stats.sign_test([r - 1 for r in ratios])
        m["test"] = "sign-exact"
    else:
        if len(base_vals) < MIN_REPS or len(new_vals) < MIN_REPS:
            m["reason"] = (f"too few reps ({len(base_vals)} vs {len(new_vals)}, "
                           f"at least {MIN_REPS})")
            m["cause"] = "too few reps"
            return m
        if stats.min_two_sided_p(len(base_vals), len(new_vals)) >= settings.alpha:
            m["reason"] = (f"too few reps ({len(base_vals)} vs {len(new_vals)}) for p < "
                           f"{settings.alpha:g} to be reachable (at least 4 vs 4)")
            m["cause"] = "too few reps"
            return m
        lo, hi = stats.bootstrap_ratio_ci(base_vals, new_vals, 0.95, settings.resamples,
                                          _seed(cell_key, metric.name))
        _, p, method = stats.mann_whitney(new_vals, base_vals)
        m["test"] = f"mann-whitney-{method}"
    m["ci_low"] = lo if finite(lo) else None
    m["ci_high"] = hi if finite(hi) else None
    m["p_value"] = p
    ci_excludes_1 = finite(lo) and finite(hi) and (lo > 1 or hi < 1)
    m["significant"] = p < settings.alpha and ci_excludes_1
    # beyond the floor: the whole confidence interval, not just the point
    # estimate, lies outside [1 - floor, 1 + floor] (Criterion.rs's rule): a
    # shift the size of the floor is not called a change on a coin toss
    m["beyond_floor"] = finite(lo) and finite(hi) and (lo > 1 + settings.floor
                                                       or hi < 1 - settings.floor)
    if m["significant"] and m["beyond_floor"]:
        m["verdict"] = "worse" if worse_dir else "better"
    else:
        m["verdict"] = "unchanged"
    return m


# ---------------------------------------------------------------------------
# What can make a cell's figures untrustworthy

def cell_flags(b, n, gated_names, settings, paired):
    """[{kind, detail}] for a cell: interference (others took more than the
    threshold of the pinned CPUs on either side; not for a paired run),
    loadgen-bound (the load generator was the bottleneck on either side),
    bimodal (a gated metric's repetitions split into two groups)."""
    flags = []
    shares = [(side, c.others_share()) for side, c in (("BASE", b), ("NEW", n))]
    busy = [(side, v) for side, v in shares if v is not None and v > settings.max_interference]
    if busy:
        flags.append({
            "kind": "interference",
            "blocking": not paired,
            "detail": "other processes took " + " and ".join(
                f"{min(v, 1.0) * 100:.0f}% ({side})" for side, v in busy)
            + " of the pinned CPUs"
            + (" (paired A/B: cancelled pair by pair)" if paired else ""),
        })
    sat = [side for side, c in (("BASE", b), ("NEW", n)) if c.loadgen_saturated]
    if sat:
        flags.append({"kind": "loadgen-bound", "blocking": False,
                      "detail": f"the load generator was the bottleneck in {' and '.join(sat)}"})
    for name in gated_names:
        mb, mn = b.metrics.get(name), n.metrics.get(name)
        if paired and mb is not None and mn is not None and not mb.instructions \
                and stats.pairable(mb.values, mn.values):
            # a paired run: each pair saw the same machine, so what must
            # not split is the per-pair ratio (a slow phase of the machine
            # moves both sides of its pairs alike)
            ratios = [y / x for x, y in zip(mb.values, mn.values)]
            bimodal, lo, hi = stats.is_bimodal(ratios, BIMODAL_GAP)
            if bimodal:
                flags.append({
                    "kind": "bimodal", "blocking": False,
                    "detail": f"{name}'s NEW/BASE ratio split into {len(lo)} and {len(hi)} "
                              f"pairs ({lo[-1]:.3g}x vs {hi[0]:.3g}x)",
                    "metric": name,
                })
            continue
        for side, c in (("BASE", b), ("NEW", n)):
            mt = c.metrics.get(name)
            if mt is None or mt.instructions:
                continue
            bimodal, lo, hi = stats.is_bimodal(mt.values, BIMODAL_GAP)
            if bimodal:
                flags.append({
                    "kind": "bimodal", "blocking": False,
                    "detail": f"{name} in {side} split into {len(lo)} and {len(hi)} "
                              f"repetitions ({fmt_value(lo[-1], mt.unit)} vs "
                              f"{fmt_value(hi[0], mt.unit)})",
                    "metric": name,
                })
                break
    return flags


def _tainted(mc, flags):
    """Why a worse or better verdict of metric mc cannot be trusted, or
    None."""
    if mc["unit"] == "instructions":
        return None
    for f in flags:
        if f["kind"] == "interference" and f["blocking"]:
            return f["detail"]
        if f["kind"] == "bimodal" and f.get("metric") == mc["metric"]:
            return f["detail"]
        if f["kind"] == "loadgen-bound" and mc["metric"].startswith(LOAD_BOUND):
            return f["detail"]
    return None


# ---------------------------------------------------------------------------
# The comparison

CELL_VERDICTS = ("worse", "better", "unchanged", "inconclusive", "not comparable",
                 "unsupported", "reference")


def is_paired(base, new):
    """Whether BASE and NEW are the two sides of one axbench ab run."""
    a, b = base.ab, new.ab
    return bool(a and b and a.get("run_id") and a.get("run_id") == b.get("run_id")
                and a.get("side") != b.get("side"))


def compare_docs(base, new, settings):
    """Compare two loaded result documents; returns the JSON-ready report."""
    varying = varying_params(base.cells + new.cells)
    base_by = {c.key: c for c in base.cells}
    new_by = {c.key: c for c in new.cells}
    keys = list(base_by)
    keys += [k for k in new_by if k not in base_by]
    paired = is_paired(base, new)

    base_norm = new_norm = None
    if settings.normalize:
        ref = settings.normalize
        if not any(c.runtime == ref for c in base.cells) or \
           not any(c.runtime == ref for c in new.cells):
            raise InputError(f"--normalize {ref}: that implementation is not in both "
                             "files (run it alongside the others)")
        base_norm = normalized_values(base, ref)
        new_norm = normalized_values(new, ref)

    named = [m for m in settings.metrics if m not in ("all", "default")]
    if named:
        known = {name for c in base.cells + new.cells for name in c.metrics}
        unknown = [m for m in named if m not in known]
        if unknown:
            raise InputError(f"--metric {','.join(unknown)}: no such metric in either file "
                             f"(known: {', '.join(sorted(known)) or 'none'})")

    cells = []
    for key in keys:
        b, n = base_by.get(key), new_by.get(key)
        any_cell = b or n
        entry = {
            "runtime": key[0],
            "scenario": key[1],
            "params": any_cell.params,
            "label": short_label(any_cell, varying),
            "id": any_cell.id,
            "base_status": b.status if b else None,
            "new_status": n.status if n else None,
            "verdict": "not comparable",
            "reason": None,
            "cause": None,   # not comparable: a short cause, for the summary
            "flags": [],
            "metrics": [],
        }
        cells.append(entry)
        if b is None or n is None:
            entry["reason"] = entry["cause"] = "only in BASE" if n is None else "only in NEW"
            continue
        if b.unsupported and n.unsupported:
            entry["verdict"] = "unsupported"
            entry["reason"] = b.message or "unsupported on both sides"
            continue
        if settings.normalize and key[0] == settings.normalize:
            entry["verdict"] = "reference"
            entry["reason"] = "normalization reference"
            continue
        if not b.ok or not n.ok:
            if not b.ok and not n.ok and b.status == n.status and b.message == n.message:
                entry["reason"] = f"{b.status} on both sides" + (
                    f" ({b.message})" if b.message else "")
            else:
                entry["reason"] = "; ".join(
                    f"{side} {c.status}" + (f" ({c.message})" if c.message else "")
                    for side, c in (("BASE", b), ("NEW", n)) if not c.ok)
            entry["cause"] = "failed: " + ", ".join(sorted({c.status for c in (b, n)
                                                            if not c.ok}))
            continue
        if settings.normalize and (key not in base_norm or key not in new_norm):
            entry["reason"] = f"no {settings.normalize} cell to normalize by"
            entry["cause"] = "no normalization cell"
            continue
        names = [name for name, m in b.metrics.items()
                 if name in n.metrics and settings.compared(m)]
        for name in names:
            bm = b.metrics[name]
            bv, nv = bm.values, n.metrics[name].values
            if settings.normalize:
                bv = base_norm[key].get(name, [])
                nv = new_norm[key].get(name, [])
            mc = compare_metric(key, bm, bv, nv, settings, paired=paired)
            mc["gated"] = settings.gates(bm, key[1])
            entry["metrics"].append(mc)
        gated = [m for m in entry["metrics"] if m["gated"]]
        if not gated:
            wanted = ", ".join(DEFAULT_GATES.get(key[1], ())) or "a metric with a direction"
            entry["reason"] = f"no gated metric in both files (expected {wanted})"
            entry["cause"] = "no gated metric"
            continue
        wall = [m for m in gated if m["unit"] != "instructions"]
        entry["flags"] = cell_flags(b, n, [m["metric"] for m in wall], settings,
                                    paired) if wall else []
        for m in gated:
            if m["verdict"] in ("worse", "better"):
                m["tainted"] = _tainted(m, entry["flags"])
        worse = [m for m in gated if m["verdict"] == "worse" and not m.get("tainted")]
        shaky = [m for m in gated if m["verdict"] in ("worse", "better") and m.get("tainted")]
        better = [m for m in gated if m["verdict"] == "better" and not m.get("tainted")]
        lost = [m for m in gated if m["verdict"] == "not comparable"]
        if worse:
            entry["verdict"] = "worse"
        elif shaky:
            entry["verdict"] = "inconclusive"
            entry["reason"] = "; ".join(
                f"{m['metric']} {fmt_pct(m['ratio'])} but {m['tainted']}" for m in shaky)
        elif lost:
            entry["reason"] = "; ".join(f"{m['metric']}: {m['reason']}" for m in lost)
            entry["cause"] = lost[0].get("cause") or "not comparable"
        elif better:
            entry["verdict"] = "better"
        else:
            entry["verdict"] = "unchanged"

    counts = {v: 0 for v in CELL_VERDICTS}
    for c in cells:
        counts[c["verdict"]] += 1

    # geometric means of NEW/BASE per metric, over all cells and per runtime
    geo = {}
    for c in cells:
        for m in c["metrics"]:
            if m["ratio"] and m["verdict"] != "not comparable":
                g = geo.setdefault(m["metric"], {"unit": m["unit"], "better": m["better"],
                                                 "all": [], "by_runtime": {}})
                g["all"].append(m["ratio"])
                g["by_runtime"].setdefault(c["runtime"], []).append(m["ratio"])
    geomeans = {}
    for name, g in geo.items():
        geomeans[name] = {
            "unit": g["unit"],
            "better": g["better"],
            "cells": len(g["all"]),
            "all": stats.geomean(g["all"]),
            "by_runtime": {rt: stats.geomean(v) for rt, v in sorted(g["by_runtime"].items())},
        }

    regressions = [
        {"runtime": c["runtime"], "scenario": c["scenario"], "label": c["label"],
         "metrics": [m["metric"] for m in c["metrics"] if m["verdict"] == "worse"
                     and m["gated"] and not m.get("tainted")]}
        for c in cells if c["verdict"] == "worse"
    ]
    interference = interference_summary(cells, settings, base, new)
    verdict, why = gate_verdict(cells, counts, interference, paired)
    diffs = env_differences(base, new)
    return {
        "schema": COMPARE_SCHEMA,
        "schema_version": COMPARE_VERSION,
        "base": _doc_info(base),
        "new": _doc_info(new),
        "paired": paired,
        "settings": settings.as_json(),
        "environment_differences": [{"fact": l, "base": a, "new": b} for l, a, b in diffs],
        "interference": interference,
        "cells": cells,
        "summary": {
            "verdict": verdict,
            "why": why,
            "counts": counts,
            "compared": sum(counts[v] for v in ("worse", "better", "unchanged")),
            "geomeans": geomeans,
            "regressions": regressions,
            "regression": bool(regressions),
        },
        "exit_code": {"pass": EXIT_PASS, "regression": EXIT_REGRESSION,
                      "inconclusive": EXIT_INCONCLUSIVE}[verdict],
    }


def interference_summary(cells, settings, base, new):
    """How much other work shared the pinned CPUs in each file (median and
    maximum over its cells), and which compared cells it disturbed, for the
    top of the output."""
    touched = [c for c in cells if any(f["kind"] == "interference" for f in c["flags"])]
    bound = [c for c in cells if any(f["kind"] == "loadgen-bound" for f in c["flags"])]
    bimodal = [c for c in cells if any(f["kind"] == "bimodal" for f in c["flags"])]
    sides = {}
    for side, doc in (("base", base), ("new", new)):
        shares = sorted(v for v in (c.others_share() for c in doc.cells if c.ok)
                        if v is not None)
        sides[side] = {
            "median": stats.median(shares) if shares else None,
            "max": shares[-1] if shares else None,
            "cells_above": sum(1 for v in shares if v > settings.max_interference),
        }
    return {
        "threshold": settings.max_interference,
        "base": sides["base"],
        "new": sides["new"],
        "cells": [c["id"] for c in touched],
        "blocking": any(f["blocking"] for c in touched for f in c["flags"]
                        if f["kind"] == "interference"),
        "loadgen_bound_cells": [c["id"] for c in bound],
        "bimodal_cells": [c["id"] for c in bimodal],
    }


def interference_text(inter):
    """One line for the top of the output, or None when nothing exceeded
    the threshold."""
    if not inter["cells"]:
        return None
    parts = []
    for side in ("base", "new"):
        d = inter[side]
        if d["median"] is not None:
            parts.append(f"a median {min(d['median'], 1) * 100:.0f}% (max "
                         f"{min(d['max'], 1) * 100:.0f}%) in {side.upper()}")
    text = ("other processes took " + " and ".join(parts) + " of the pinned CPUs; "
            f"{len(inter['cells'])} compared cell(s) are above the "
            f"{inter['threshold'] * 100:g}% threshold and marked")
    if not inter["blocking"]:
        text += " (paired A/B: each pair saw the same machine, so this is reported only)"
    return text


def gate_verdict(cells, counts, interference, paired):
    """('pass' | 'regression' | 'inconclusive', [reasons])."""
    if counts["worse"]:
        return "regression", [f"{counts['worse']} cell(s) significantly worse beyond the floor"]
    why = []
    if counts["inconclusive"]:
        why.append(f"{counts['inconclusive']} cell(s) changed, but on repetitions that "
                   f"cannot be trusted (interference, load-generator-bound or bimodal)")
    if counts["not comparable"]:
        causes = collections.Counter(c["cause"] or "not comparable" for c in cells
                                     if c["verdict"] == "not comparable")
        why.append(f"{counts['not comparable']} cell(s) not comparable (" +
                   "; ".join(f"{k}: {v}" for k, v in causes.most_common()) + ")")
    compared = counts["worse"] + counts["better"] + counts["unchanged"]
    if compared == 0 and not why:
        why.append("no cell could be compared")
    if interference["blocking"]:
        why.append(f"other processes disturbed {len(interference['cells'])} cell(s) "
                   f"beyond {interference['threshold'] * 100:g}% of the pinned CPUs: "
                   f"an unchanged verdict there may hide a change (run on a quiet "
                   f"machine, or use axbench ab)")
    return ("inconclusive", why) if why else ("pass", [
        f"{compared} cell(s) compared, none significantly worse"
        + (" (paired A/B)" if paired else "")])


def _doc_info(doc):
    return {
        "path": doc.path,
        "commit": doc.commit,
        "dirty": doc.dirty,
        "time": doc.time,
        "status": doc.status,
        "hostname": doc.env.get("hostname"),
    }


# ---------------------------------------------------------------------------
# Markdown

def _ci_text(m):
    if m["ci_low"] is None or m["ci_high"] is None:
        return ""
    return f" [{fmt_pct(m['ci_low'])}, {fmt_pct(m['ci_high'])}]"


def metric_change_text(m):
    """'-8.1% [-12.0%, -4.3%] p=0.008' for one compared metric."""
    if m["ratio"] is None:
        return "n/a"
    text = fmt_pct(m["ratio"]) + _ci_text(m)
    if m["p_value"] is not None:
        text += f" p={m['p_value']:.3g}"
    elif m["test"] == "threshold":
        text += " (threshold)"
    return text


VERDICT_MARK = {"worse": "**worse**", "better": "better", "unchanged": "unchanged",
                "inconclusive": "*inconclusive*", "not comparable": "not comparable",
                "unsupported": "unsupported", "reference": "reference"}
GATE_MARK = {"pass": "PASS", "regression": "REGRESSION", "inconclusive": "INCONCLUSIVE"}


def _md_escape(s):
    return str(s).replace("|", "\\|").replace("\n", " ")


def _flags_text(c):
    return "; ".join(f"{f['kind']}: {f['detail']}" for f in c["flags"])


def to_markdown(rep, title="axbench compare"):
    s = rep["settings"]
    b, n = rep["base"], rep["new"]
    summ = rep["summary"]
    counts = summ["counts"]
    lines = [f"# {title}", ""]
    # what disturbed the measurement comes first, before any verdict
    inter = rep["interference"]
    itext = interference_text(inter)
    if itext:
        lines.append(f"> **Interference:** {itext}")
    for d in rep["environment_differences"]:
        lines.append(f"> **Warning:** environment differs: {d['fact']}: BASE "
                     f"`{d['base']}`, NEW `{d['new']}`")
    if itext or rep["environment_differences"]:
        lines.append("")
    lines.append(f"**Verdict: {GATE_MARK[summ['verdict']]}** (exit {rep['exit_code']}): "
                 + "; ".join(summ["why"]))
    lines.append("")
    lines.append(f"{counts['worse']} worse, {counts['better']} better, "
                 f"{counts['unchanged']} unchanged, {counts['inconclusive']} inconclusive, "
                 f"{counts['not comparable']} not comparable; {counts['unsupported']} "
                 f"unsupported on both sides left out"
                 + (f"; {counts['reference']} normalization reference(s)"
                    if counts["reference"] else ""))
    lines.append("")
    lines.append(f"- BASE: `{b['path']}` (commit {str(b['commit'])[:12]}, {b['time']})")
    lines.append(f"- NEW: `{n['path']}` (commit {str(n['commit'])[:12]}, {n['time']})")
    if rep["paired"]:
        lines.append("- paired: the two sides of one `axbench ab` run; repetition k of each "
                     "ran back to back, so each change is judged pair by pair (exact sign "
                     "test, paired bootstrap)")
    crit = (f"- a change counts when p < {s['alpha']:g} and the 95% "
            f"bootstrap CI of the ratio lies entirely beyond the noise floor "
            f"(+-{s['floor'] * 100:g}%); instruction counts use a plain "
            f"{s['instructions_threshold'] * 100:g}% threshold")
    lines.append(crit)
    gate = ", ".join(s["metrics"]) if s["metrics"] != ["default"] else (
        "each scenario's stable figure (server CPU per message for network "
        "scenarios, the cost per operation for local ones, instruction counts)")
    lines.append(f"- metrics deciding the verdict: {gate}")
    if s["normalize"]:
        lines.append(f"- values normalized by `{s['normalize']}` measured in the same run")
    lines.append("")
    shown = [c for c in rep["cells"] if c["verdict"] != "unsupported"]
    lines.append("| runtime | scenario | params | verdict | why |")
    lines.append("|---|---|---|---|---|")
    for c in shown:
        changed = [f"{m['metric']} {metric_change_text(m)}" for m in c["metrics"]
                   if m["verdict"] in ("worse", "better") and m["gated"]]
        why = "; ".join(changed)
        if c["reason"] and c["verdict"] != "worse":
            why = c["reason"] if not why or c["verdict"] == "inconclusive" else why
        if c["flags"]:
            why = (why + "; " if why else "") + _flags_text(c)
        lines.append(f"| {c['runtime']} | {c['scenario']} | {_md_escape(c['label'])} | "
                     f"{VERDICT_MARK[c['verdict']]} | {_md_escape(why or '-')} |")
    unsup = {}
    for c in rep["cells"]:
        if c["verdict"] == "unsupported":
            unsup.setdefault(c["runtime"], []).append(c["scenario"])
    if unsup:
        lines.append("")
        lines.append("Unsupported on both sides (left out): " + "; ".join(
            f"{rt}: {', '.join(sorted(set(sc)))}" for rt, sc in sorted(unsup.items())))
    lines.append("")
    geo = summ["geomeans"]
    if geo:
        rts = sorted({rt for g in geo.values() for rt in g["by_runtime"]})
        lines.append("## Geometric mean of NEW/BASE per metric")
        lines.append("")
        lines.append("| metric | better | cells | all | " + " | ".join(rts) + " |")
        lines.append("|---|---|---|---|" + "---|" * len(rts))
        for name, g in geo.items():
            better = {1: "higher", -1: "lower"}.get(g["better"], "-")
            per = [fmt_pct(g["by_runtime"][rt]) if rt in g["by_runtime"] else ""
                   for rt in rts]
            lines.append(f"| {name} | {better} | {g['cells']} | {fmt_pct(g['all'])} | "
                         + " | ".join(per) + " |")
        lines.append("")
    lines.append("## Details")
    lines.append("")
    lines.append("| runtime | scenario | params | metric | BASE | NEW | change [95% CI] | p | test | verdict |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for c in shown:
        for m in c["metrics"]:
            unit = "x" if s["normalize"] else m["unit"]
            p = f"{m['p_value']:.3g}" if m["p_value"] is not None else ""
            change = (fmt_pct(m["ratio"]) + _ci_text(m)) if m["ratio"] is not None else "n/a"
            verdict = m["verdict"] if not m["reason"] else f"{m['verdict']} ({m['reason']})"
            if m.get("tainted"):
                verdict += f" (not trusted: {m['tainted']})"
            if not m["gated"]:
                verdict += " (not gated)"
            lines.append(
                f"| {c['runtime']} | {c['scenario']} | {_md_escape(c['label'])} | {m['metric']} | "
                f"{fmt_value(m['base_median'], unit)} | {fmt_value(m['new_median'], unit)} | "
                f"{change} | {p} | {m['test'] or ''} | {_md_escape(verdict)} |")
    lines.append("")
    return "\n".join(lines)


def run(args):
    """The `compare` command: returns the exit status."""
    from .util import write_atomic
    settings = Settings(floor=args.floor, alpha=args.alpha,
                        metrics=parse_metric_option(args.metric),
                        instr_threshold=args.instr_threshold,
                        resamples=args.resamples, normalize=args.normalize,
                        max_interference=args.max_interference)
    base = load_results(args.base)
    new = load_results(args.new)
    # the environment warning comes first, before any verdict
    for label, a, b in env_differences(base, new):
        warn(f"environment differs: {label}: BASE {a!r}, NEW {b!r}")
    for doc, side in ((base, "BASE"), (new, "NEW")):
        if doc.status != "complete":
            warn(f"{side} {doc.path} is {doc.status}, not complete: some cells may be missing")
    rep = compare_docs(base, new, settings)
    md = to_markdown(rep)
    if args.json:
        write_atomic(args.json, json.dumps(sanitize_json(rep), indent=1,
                                           allow_nan=False) + "\n")
    if args.md:
        write_atomic(args.md, md)
    if not args.quiet:
        print(md)
    return rep["exit_code"]


def sanitize_json(obj):
    """NaN and infinities become null (JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: sanitize_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [sanitize_json(v) for v in obj]
    return obj
