"""Reading the files axbench writes: result documents (schema
"axbench-results", version 1, docs/results-schema.md) and conformance
matrices (schema "axbench-conform", version 1, docs/conformance.md).

Everything the reporting side needs from a result file goes through here,
so a schema change touches one module. A file that cannot be used raises
InputError with a message naming the file and what is wrong.
"""

import json
import math
import os

from . import stats
from .util import InputError, finite

RESULTS_SCHEMA = "axbench-results"
RESULTS_VERSION = 1
CONFORM_SCHEMA = "axbench-conform"
CONFORM_VERSION = 1
ERGO_SCHEMA = "axbench-ergo"
ERGO_VERSION = 1

# Metrics whose unit is this were counted by callgrind (instructions mode):
# they do not move with machine noise and are compared by a plain threshold.
INSTRUCTIONS_UNIT = "instructions"


def read_json(path, what="file"):
    """Parse a JSON file or raise InputError with one clear line."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise InputError(f"cannot read {what} {path}: {e.strerror or e}") from None
    if not raw.strip():
        raise InputError(f"{path}: empty file, not JSON")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason})") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} "
                         f"column {e.colno}; truncated or corrupt?)") from None


class Metric:
    """One metric of one cell: its per-repetition values and the harness's
    own median and confidence interval."""

    __slots__ = ("name", "unit", "better", "values", "median", "ci_low",
                 "ci_high", "ci_level")

    def __init__(self, name, obj):
        self.name = name
        self.unit = obj.get("unit") or ""
        better = obj.get("better", 0)
        self.better = better if better in (-1, 0, 1) else 0
        self.values = [float(v) for v in obj.get("values") or [] if finite(v)]
        self.median = obj.get("median") if finite(obj.get("median")) else math.nan
        self.ci_low = obj.get("ci_low") if finite(obj.get("ci_low")) else math.nan
        self.ci_high = obj.get("ci_high") if finite(obj.get("ci_high")) else math.nan
        self.ci_level = obj.get("ci_level") if finite(obj.get("ci_level")) else math.nan

    @property
    def instructions(self):
        return self.unit == INSTRUCTIONS_UNIT


# Parameters added to scenarios after result files were written, with the
# value that means "as before": a cell at that value matches a cell of an
# older file that lacks the parameter (workers=1 is the single-runtime
# server every earlier file measured).
ADDED_PARAMS = {"workers": 1}


def params_key(params):
    """A hashable, order-independent form of a cell's parameter values."""
    return tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in (params or {}).items()
                        if not (k in ADDED_PARAMS and v == ADDED_PARAMS[k])))


class Cell:
    """One cell (implementation x scenario x parameter values)."""

    def __init__(self, obj):
        self.obj = obj
        self.id = obj.get("id") or ""
        self.runtime = obj.get("runtime") or "?"
        self.runtime_kind = obj.get("runtime_kind") or ""
        self.scenario = obj.get("scenario") or "?"
        self.kind = obj.get("kind") or ""
        self.params = obj.get("params") if isinstance(obj.get("params"), dict) else {}
        self.label = obj.get("label") or ""
        self.status = obj.get("status") or "unknown"
        self.message = obj.get("message")
        self.reps_planned = obj.get("reps_planned")
        summary = obj.get("summary")
        self.summary = summary if isinstance(summary, dict) else None
        self.metrics = {}
        if self.summary:
            for name, m in (self.summary.get("metrics") or {}).items():
                if isinstance(m, dict):
                    self.metrics[name] = Metric(name, m)

    @property
    def key(self):
        return (self.runtime, self.scenario, params_key(self.params))

    @property
    def ok(self):
        return self.status == "ok" and self.summary is not None

    @property
    def reps(self):
        reps = self.obj.get("reps")
        return reps if isinstance(reps, list) else []

    @property
    def unsupported(self):
        return self.status == "unsupported"

    @property
    def loadgen_saturated(self):
        """True when some repetition was bounded by the load generator, not
        the server (network cells only)."""
        return bool(self.summary and self.summary.get("loadgen_saturated"))

    def others_share(self):
        """The median share of the pinned CPUs that other processes took
        during the repetitions (machine_others_share), or None when the
        file does not say."""
        m = self.metrics.get("machine_others_share")
        if m is not None and finite(m.median):
            return m.median
        vals = []
        for rep in self.reps:
            v = ((rep.get("metrics") or {}).get("machine_others_share") or {}).get("value") \
                if isinstance(rep, dict) else None
            if finite(v):
                vals.append(v)
        return stats.median(vals) if vals else None

    def loadgen_mode(self):
        """'open' or 'closed' (net cells), from the first repetition."""
        for rep in self.reps:
            lg = rep.get("loadgen") if isinstance(rep, dict) else None
            if isinstance(lg, dict) and lg.get("mode"):
                return lg["mode"]
        return None

    def primary_metric(self):
        """The metric a table shows first: throughput for a network cell,
        the scenario's first own metric with a direction otherwise."""
        if "throughput" in self.metrics:
            return self.metrics["throughput"]
        for m in self.metrics.values():
            if m.better and m.name not in ("cpu_s", "maxrss_kib", "wall_s"):
                return m
        return next(iter(self.metrics.values()), None)

    def merged_histograms(self):
        """{name: histogram JSON} of the latency histograms merged over the
        repetitions: the network cell's round-trip histogram is named
        'latency'; a local scenario's are named by the scenario."""
        out = {}
        if not self.summary:
            return out
        lm = self.summary.get("latency_merged")
        if isinstance(lm, dict) and isinstance(lm.get("histogram"), dict):
            out["latency"] = lm["histogram"]
        for name, h in (self.summary.get("histograms_merged") or {}).items():
            if isinstance(h, dict) and isinstance(h.get("histogram"), dict):
                out[name] = h["histogram"]
        return out


class ResultDoc:
    """A parsed, validated result document."""

    def __init__(self, path, raw):
        self.path = os.fspath(path)
        self.raw = raw
        self.env = raw.get("environment") if isinstance(raw.get("environment"), dict) else {}
        self.config = raw.get("config") if isinstance(raw.get("config"), dict) else {}
        self.status = raw.get("status") or "unknown"
        self.cells = [Cell(c) for c in raw["cells"] if isinstance(c, dict)]

    @property
    def commit(self):
        git = self.env.get("git") if isinstance(self.env.get("git"), dict) else {}
        return git.get("commit") or "unknown"

    @property
    def dirty(self):
        git = self.env.get("git") if isinstance(self.env.get("git"), dict) else {}
        return git.get("dirty")

    @property
    def ab(self):
        """{run_id, side, ...} when the file is one side of an axbench ab
        run, else None."""
        ab = self.raw.get("ab")
        return ab if isinstance(ab, dict) else None

    @property
    def time(self):
        return self.raw.get("started_utc") or self.env.get("time_utc") or ""

    def ergonomics(self):
        """The ergonomics table if the file carries one, else None."""
        e = self.raw.get("ergonomics")
        return e if isinstance(e, (dict, list)) and e else None


def load_results(path):
    raw = read_json(path, "result file")
    if not isinstance(raw, dict):
        raise InputError(f"{path}: not an axbench result file (a JSON {type(raw).__name__}, "
                         "expected an object)")
    schema = raw.get("schema")
    if schema == CONFORM_SCHEMA:
        raise InputError(f"{path}: this is a conformance matrix (axbench conform), "
                         "not a result file of axbench run")
    if schema != RESULTS_SCHEMA:
        raise InputError(f"{path}: not an axbench result file (schema {schema!r}, "
                         f"expected {RESULTS_SCHEMA!r})")
    version = raw.get("schema_version")
    if version != RESULTS_VERSION:
        raise InputError(f"{path}: result schema version {version!r} is not supported "
                         f"(this axbench reads version {RESULTS_VERSION})")
    if not isinstance(raw.get("cells"), list):
        raise InputError(f"{path}: malformed result file: no \"cells\" array")
    return ResultDoc(path, raw)


class ConformDoc:
    """A conformance matrix: cases x runtimes with an outcome each."""

    def __init__(self, path, raw):
        self.path = os.fspath(path)
        self.raw = raw
        self.cases = [c for c in raw.get("cases") or [] if isinstance(c, dict) and c.get("id")]
        results = raw.get("results") if isinstance(raw.get("results"), dict) else {}
        self.results = {rt: per for rt, per in results.items() if isinstance(per, dict)}
        self.runtimes = []
        for r in raw.get("runtimes") or []:
            if isinstance(r, dict) and r.get("name"):
                self.runtimes.append(r)
        self.totals = raw.get("totals") if isinstance(raw.get("totals"), dict) else {}
        self.env = raw.get("environment") if isinstance(raw.get("environment"), dict) else {}


def load_conform(path):
    raw = read_json(path, "conformance file")
    if not isinstance(raw, dict):
        raise InputError(f"{path}: not an axbench conformance file")
    schema = raw.get("schema")
    if schema == RESULTS_SCHEMA:
        raise InputError(f"{path}: this is a result file of axbench run, not a "
                         "conformance matrix (axbench conform --json)")
    if schema != CONFORM_SCHEMA:
        raise InputError(f"{path}: not an axbench conformance file (schema {schema!r}, "
                         f"expected {CONFORM_SCHEMA!r})")
    # "schema_version" since the common result-file header; files written
    # before it say "version"
    version = raw.get("schema_version", raw.get("version"))
    if version != CONFORM_VERSION:
        raise InputError(f"{path}: conformance schema version {version!r} is not "
                         f"supported (this axbench reads version {CONFORM_VERSION})")
    return ConformDoc(path, raw)


class ErgoDoc:
    """The ergonomics table of `axbench ergo --json` (docs/ergonomics.md)."""

    def __init__(self, path, raw):
        self.path = os.fspath(path)
        self.raw = raw
        self.rows = [r for r in raw.get("rows") or [] if isinstance(r, dict)]
        cost = raw.get("abstraction_cost")
        self.cost = [r for r in cost if isinstance(r, dict)] if isinstance(cost, list) else []


def load_ergo(path):
    raw = read_json(path, "ergonomics file")
    schema = raw.get("schema") if isinstance(raw, dict) else None
    if schema != ERGO_SCHEMA:
        raise InputError(f"{path}: not an axbench ergonomics table (schema {schema!r}, "
                         f"expected {ERGO_SCHEMA!r} from axbench ergo --json)")
    if raw.get("schema_version") != ERGO_VERSION:
        raise InputError(f"{path}: ergonomics schema version {raw.get('schema_version')!r} is "
                         f"not supported (this axbench reads version {ERGO_VERSION})")
    return ErgoDoc(path, raw)


def varying_params(cells):
    """For each scenario, the parameter names whose value differs between
    some of its cells: the ones worth showing in a label."""
    seen = {}
    for c in cells:
        for k, v in c.params.items():
            seen.setdefault((c.scenario, k), set()).add(json.dumps(v, sort_keys=True))
    out = {}
    for (sc, k), vals in seen.items():
        if len(vals) > 1:
            out.setdefault(sc, []).append(k)
    return out


def format_param(name, value):
    """A parameter value as the harness writes it in labels: durations
    (ns integers named duration/warmup/...) in readable units."""
    if isinstance(value, int) and name in ("duration", "warmup", "work", "yield_every"):
        ns = value
        for div, unit in ((10 ** 9, "s"), (10 ** 6, "ms"), (10 ** 3, "us")):
            if ns >= div and ns % div == 0:
                return f"{ns // div}{unit}"
        return f"{ns}ns"
    return str(value)


def short_label(cell, varying):
    """The varying parameters of a cell as 'connections=16,size=64', or '-'."""
    names = varying.get(cell.scenario, [])
    parts = [f"{k}={format_param(k, cell.params[k])}" for k in cell.params if k in names]
    return ",".join(parts) if parts else "-"


# ---------------------------------------------------------------------------
# Histograms (layout "loglinear-v1", lib/hist.h)

def hist_bucket_highest(index, sub_bits):
    """The largest value that maps to bucket `index` (hist.c's layout:
    values below 2^sub_bits have a bucket each, every power-of-two range
    above is split into 2^sub_bits buckets)."""
    sub = 1 << sub_bits
    if index < sub:
        return index
    shift = index // sub - 1
    lowest = (sub + index % sub) << shift
    return lowest + (1 << shift) - 1


def hist_curve(h):
    """The percentile curve of a serialised histogram: a list of
    (percentile 0..100, value in ns) at the upper end of each non-empty
    bucket, clamped to the exact min and max; [] when empty or not of the
    known layout."""
    if not isinstance(h, dict) or h.get("layout") != "loglinear-v1":
        return []
    count = h.get("count") or 0
    sub_bits = h.get("sub_bucket_bits", 7)
    if count <= 0:
        return []
    lo, hi = h.get("min", 0), h.get("max", 0)
    seen = 0
    out = []
    for pair in h.get("buckets") or []:
        if not isinstance(pair, list) or len(pair) != 2:
            continue
        idx, n = pair
        seen += n
        v = min(max(hist_bucket_highest(idx, sub_bits), lo), hi)
        out.append((100.0 * seen / count, v))
    return out


def hist_percentile(h, p):
    """The value at percentile p, the way axm_hist_percentile computes it."""
    curve = hist_curve(h)
    if not curve:
        return math.nan
    if p <= 0:
        return h.get("min", 0)
    if p >= 100:
        return h.get("max", 0)
    count = h["count"]
    rank = max(1, math.ceil(p / 100 * count))
    for pct, v in curve:
        if pct * count / 100 >= rank - 1e-9:
            return v
    return h.get("max", 0)
