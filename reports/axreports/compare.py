"""`axbench compare BASE.json NEW.json`: is NEW slower than BASE, per cell,
and how sure are we.

Cells are matched by implementation, scenario and parameter values. For
each metric with a declared direction the ratio of medians NEW/BASE gets a 95% percentile
bootstrap confidence interval and a two-sided Mann-Whitney U test over the
per-repetition values. A change counts only when it is significant (p below
the level AND the interval excludes 1) AND beyond the noise floor (the whole
interval lies outside 1 +- floor, as Criterion.rs decides "change within
noise threshold"): a noisy machine then produces "unchanged", not a false
alarm. Metrics counted by callgrind (unit "instructions") do not move with
machine noise and use a plain threshold.

A cell is "slower" when any gated metric got significantly worse beyond
the floor (in its declared direction), "faster" when some got better and
none worse, "unchanged" otherwise, and "not comparable" when it is missing
on one side, failed on either side, or has too few repetitions to ever
reach significance. The exit status is 1 only when some cell is slower.
"""

import json
import math
import zlib

from . import stats
from .results import load_results, short_label, varying_params
from .util import InputError, finite, fmt_pct, fmt_value, warn

COMPARE_SCHEMA = "axbench-compare"
COMPARE_VERSION = 1

DEFAULT_FLOOR = 0.03
DEFAULT_ALPHA = 0.05
DEFAULT_INSTR_THRESHOLD = 0.01
DEFAULT_RESAMPLES = 2000
# The bootstrap stream of a metric is seeded from this and the cell and
# metric names, so every run of compare on the same files agrees.
SEED = 0x61786263

# Percentiles above the median move with whatever else the machine runs
# (one descheduling of the server lands in p90 and above), and the extreme
# tail of a short run rests on a handful of samples. They are compared and
# reported, but decide the verdict only when named (--metric) or with
# --metric all. So do metrics without a direction: they are not compared.
TAIL_SUFFIXES = ("_p90", "_p99", "_p99_9", "_p99_99", "_max")

# Fewer values than this on a side is "too few reps" whatever the test
# could say (a median of two is not a median).
MIN_REPS = 3


def default_gate(metric):
    """Whether a metric takes part in the verdict by default: it declares a
    direction and is not a tail percentile."""
    return metric.better != 0 and not metric.name.endswith(TAIL_SUFFIXES)


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
                 normalize=None):
        if not (0 <= floor < 1):
            raise InputError(f"--floor must be in [0, 1), e.g. 0.03 for 3%, not {floor}")
        if not (0 < alpha < 1):
            raise InputError(f"--alpha must be in (0, 1), not {alpha}")
        if not (0 <= instr_threshold < 1):
            raise InputError(f"--instr-threshold must be in [0, 1), not {instr_threshold}")
        if resamples < 100:
            raise InputError(f"--resamples must be at least 100, not {resamples}")
        self.floor = floor
        self.alpha = alpha
        self.metrics = metrics or []
        self.instr_threshold = instr_threshold
        self.resamples = resamples
        self.normalize = normalize

    def compared(self, metric):
        """Every metric with a direction is compared and reported."""
        return metric.better != 0

    def gates(self, metric):
        """Whether the metric decides the cell's verdict."""
        if not self.metrics:
            return default_gate(metric)
        if "all" in self.metrics:
            return metric.better != 0
        return metric.name in self.metrics or ("default" in self.metrics
                                               and default_gate(metric))

    def as_json(self):
        return {
            "floor": self.floor,
            "alpha": self.alpha,
            "ci_level": 0.95,
            "metrics": self.metrics or ["default"],
            "instructions_threshold": self.instr_threshold,
            "bootstrap_resamples": self.resamples,
            "bootstrap_seed": SEED,
            "normalize": self.normalize,
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
    ("libuv", ("libraries", "libuv", "loaded")),
    ("libevent", ("libraries", "libevent", "loaded")),
    ("liburing", ("libraries", "liburing", "loaded")),
]


def env_differences(base, new):
    """[(label, base value, new value)] for every recorded fact that differs."""
    out = []
    for label, path in ENV_FACTS:
        a, b = _get(base.env, *path), _get(new.env, *path)
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


def compare_metric(cell_key, metric, base_vals, new_vals, settings):
    """Compare one metric of one cell; returns a dict (see docs/reports.md)."""
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
        "significant": False,
        "beyond_floor": False,
        "verdict": "not comparable",
        "reason": None,
    }
    if not base_vals or not new_vals:
        m["reason"] = "no values on one side"
        return m
    bm, nm = m["base_median"], m["new_median"]
    if not (finite(bm) and finite(nm)) or bm == 0:
        m["reason"] = "baseline median is zero" if bm == 0 else "non-finite median"
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
            m["verdict"] = "same"
        return m

    if len(base_vals) < MIN_REPS or len(new_vals) < MIN_REPS:
        m["reason"] = f"too few reps ({len(base_vals)} vs {len(new_vals)}; at least {MIN_REPS})"
        return m
    if stats.min_two_sided_p(len(base_vals), len(new_vals)) >= settings.alpha:
        m["reason"] = (f"too few reps ({len(base_vals)} vs {len(new_vals)}) for p < "
                       f"{settings.alpha:g} to be reachable")
        return m
    lo, hi = stats.bootstrap_ratio_ci(base_vals, new_vals, 0.95, settings.resamples,
                                      _seed(cell_key, metric.name))
    _, p, method = stats.mann_whitney(new_vals, base_vals)
    m["ci_low"] = lo if finite(lo) else None
    m["ci_high"] = hi if finite(hi) else None
    m["p_value"] = p
    m["test"] = f"mann-whitney-{method}"
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
        m["verdict"] = "same"
    return m


# ---------------------------------------------------------------------------
# The comparison

def compare_docs(base, new, settings):
    """Compare two loaded result documents; returns the JSON-ready report."""
    varying = varying_params(base.cells + new.cells)
    base_by = {c.key: c for c in base.cells}
    new_by = {c.key: c for c in new.cells}
    keys = list(base_by)
    keys += [k for k in new_by if k not in base_by]

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
            "metrics": [],
        }
        cells.append(entry)
        if b is None or n is None:
            entry["reason"] = "only in BASE" if n is None else "only in NEW"
            continue
        if settings.normalize and key[0] == settings.normalize:
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
            continue
        if settings.normalize and (key not in base_norm or key not in new_norm):
            entry["reason"] = f"no {settings.normalize} cell to normalize by"
            continue
        names = [name for name, m in b.metrics.items()
                 if name in n.metrics and settings.compared(m)]
        for name in names:
            bm = b.metrics[name]
            bv, nv = bm.values, n.metrics[name].values
            if settings.normalize:
                bv = base_norm[key].get(name, [])
                nv = new_norm[key].get(name, [])
            mc = compare_metric(key, bm, bv, nv, settings)
            mc["gated"] = settings.gates(bm)
            entry["metrics"].append(mc)
        gated = [m for m in entry["metrics"] if m["gated"]]
        if not gated:
            entry["reason"] = "no gated metric in both files"
            continue
        verdicts = [m["verdict"] for m in gated]
        if "worse" in verdicts:
            entry["verdict"] = "slower"
        elif "better" in verdicts:
            entry["verdict"] = "faster"
        elif all(v == "not comparable" for v in verdicts):
            entry["reason"] = "; ".join(sorted({m["reason"] for m in gated if m["reason"]}))
        else:
            entry["verdict"] = "unchanged"

    counts = {v: 0 for v in ("slower", "faster", "unchanged", "not comparable")}
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
                     and m["gated"]]}
        for c in cells if c["verdict"] == "slower"
    ]
    diffs = env_differences(base, new)
    return {
        "schema": COMPARE_SCHEMA,
        "schema_version": COMPARE_VERSION,
        "base": _doc_info(base),
        "new": _doc_info(new),
        "settings": settings.as_json(),
        "environment_differences": [{"fact": l, "base": a, "new": b} for l, a, b in diffs],
        "cells": cells,
        "summary": {
            "counts": counts,
            "geomeans": geomeans,
            "regressions": regressions,
            "regression": bool(regressions),
        },
        "exit_code": 1 if regressions else 0,
    }


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


VERDICT_MARK = {"slower": "**slower**", "faster": "faster", "unchanged": "unchanged",
                "not comparable": "not comparable"}


def _md_escape(s):
    return str(s).replace("|", "\\|").replace("\n", " ")


def to_markdown(rep, title="axbench compare"):
    s = rep["settings"]
    b, n = rep["base"], rep["new"]
    counts = rep["summary"]["counts"]
    lines = [f"# {title}", ""]
    lines.append(f"- BASE: `{b['path']}` (commit {str(b['commit'])[:12]}, {b['time']})")
    lines.append(f"- NEW: `{n['path']}` (commit {str(n['commit'])[:12]}, {n['time']})")
    crit = (f"- a change counts when p < {s['alpha']:g} (Mann-Whitney U) and the 95% "
            f"bootstrap CI of the ratio of medians lies entirely beyond the noise floor "
            f"(+-{s['floor'] * 100:g}%); instruction counts use a plain "
            f"{s['instructions_threshold'] * 100:g}% threshold")
    lines.append(crit)
    gate = ", ".join(s["metrics"]) if s["metrics"] != ["default"] else (
        "every metric with a direction except the tail percentiles (p90 and above)")
    lines.append(f"- metrics deciding the verdict: {gate}")
    if s["normalize"]:
        lines.append(f"- values normalized by `{s['normalize']}` measured in the same run")
    lines.append("")
    for d in rep["environment_differences"]:
        lines.append(f"> **Warning:** environment differs: {d['fact']}: BASE "
                     f"`{d['base']}`, NEW `{d['new']}`")
    if rep["environment_differences"]:
        lines.append("")
    verdict = ("REGRESSION" if rep["summary"]["regression"] else "no significant regression")
    lines.append(f"**{counts['slower']} slower, {counts['faster']} faster, "
                 f"{counts['unchanged']} unchanged, {counts['not comparable']} not "
                 f"comparable: {verdict}**")
    lines.append("")
    lines.append("| runtime | scenario | params | verdict | significant changes beyond the floor |")
    lines.append("|---|---|---|---|---|")
    for c in rep["cells"]:
        changed = [f"{m['metric']} {metric_change_text(m)}" for m in c["metrics"]
                   if m["verdict"] in ("worse", "better") and m["gated"]]
        why = "; ".join(changed) if changed else (c["reason"] or "none")
        lines.append(f"| {c['runtime']} | {c['scenario']} | {_md_escape(c['label'])} | "
                     f"{VERDICT_MARK[c['verdict']]} | {_md_escape(why)} |")
    lines.append("")
    geo = rep["summary"]["geomeans"]
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
    for c in rep["cells"]:
        for m in c["metrics"]:
            unit = "x" if s["normalize"] else m["unit"]
            p = f"{m['p_value']:.3g}" if m["p_value"] is not None else ""
            change = (fmt_pct(m["ratio"]) + _ci_text(m)) if m["ratio"] is not None else "n/a"
            verdict = m["verdict"] if not m["reason"] else f"{m['verdict']} ({m['reason']})"
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
                        resamples=args.resamples, normalize=args.normalize)
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
