"""Reading the files axbench writes: result documents (schema
"axbench-results", version 1, docs/results-schema.md) and conformance
matrices (schema "axbench-conform", version 1, docs/conformance.md).

Everything the reporting side needs from a result file goes through here,
so a schema change touches one module. A file that cannot be used raises
InputError with a message naming the file and what is wrong.

Reads are bounded (docs/reports.md, "Reading files"): regular files only
(a FIFO or a device is refused before any read), at most MAX_INPUT_BYTES,
no NaN or Infinity anywhere (Python's json accepts them, JSON does not),
and a result file is checked against docs/results-schema.md, the error
naming the first offending member (`r.json: cells[3].summary.metrics.rps.
median: NaN is not a finite number`).
"""

import json
import math
import os
import stat

from . import stats
from .util import InputError, file_kind, finite

# The largest file a reader takes: a full-profile run of every scenario
# and runtime is a few MiB, histograms included.
MAX_INPUT_BYTES = 256 << 20

RESULTS_SCHEMA = "axbench-results"
RESULTS_VERSION = 1
CONFORM_SCHEMA = "axbench-conform"
CONFORM_VERSION = 1
ERGO_SCHEMA = "axbench-ergo"
ERGO_VERSION = 1

# Metrics whose unit is this were counted by callgrind (instructions mode):
# they do not move with machine noise and are compared by a plain threshold.
INSTRUCTIONS_UNIT = "instructions"


class _NonFinite:
    """What NaN, Infinity, -Infinity or an overflowing literal (1e999)
    parse to: kept as a marker so that the error can name where it is."""

    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text


def _parse_float(text):
    v = float(text)
    return v if math.isfinite(v) else _NonFinite(text)


def _json_path(parts):
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _find_nonfinite(obj, parts):
    """The path of the first non-finite number in obj, or None."""
    stack = [(obj, parts)]
    while stack:
        o, at = stack.pop()
        if isinstance(o, _NonFinite):
            return at, o.text
        if isinstance(o, dict):
            stack.extend((v, at + [k]) for k, v in reversed(list(o.items())))
        elif isinstance(o, list):
            stack.extend((v, at + [i]) for i, v in reversed(list(enumerate(o))))
    return None


def read_bytes(path, what="file", limit=MAX_INPUT_BYTES):
    """The bytes of a regular file of at most `limit` bytes, or InputError.
    Opened without blocking, so a FIFO is refused at once rather than
    waited on; a device (/dev/zero) is refused before any read."""
    path = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise InputError(f"cannot read {what} {path}: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{path}: {file_kind(st.st_mode)}, not a regular file "
                             f"(a {what} is read only from a regular file)")
        if st.st_size > limit:
            raise InputError(f"{path}: {st.st_size} bytes, more than the {limit >> 20} MiB "
                             f"a {what} may have")
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise InputError(f"{path}: grew beyond the {limit >> 20} MiB a {what} "
                                 "may have while being read")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as e:
        raise InputError(f"cannot read {what} {path}: {e.strerror or e}") from None
    finally:
        os.close(fd)


def read_json(path, what="file"):
    """Parse a JSON file or raise InputError with one clear line: a bounded
    read of a regular file (read_bytes), strict JSON (no NaN, Infinity or
    numbers beyond a double, named by their path)."""
    raw = read_bytes(path, what)
    if not raw.strip():
        raise InputError(f"{path}: empty file, not JSON")
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_NonFinite,
                         parse_float=_parse_float)
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason})") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} "
                         f"column {e.colno}; truncated or corrupt?)") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply") from None
    except ValueError as e:   # e.g. an integer literal too long to convert
        raise InputError(f"{path}: not usable JSON ({e})") from None
    bad = _find_nonfinite(doc, [])
    if bad:
        raise InputError(f"{path}: {_json_path(bad[0])}: {bad[1]} is not a finite number")
    return doc


# ---------------------------------------------------------------------------
# The result schema (docs/results-schema.md), checked on reading: types of
# the members the reports use. Members a reader does not know are allowed
# (later versions of schema 1 only add members).

class _SchemaError(Exception):
    def __init__(self, parts, msg):
        super().__init__(f"{_json_path(parts)}: {msg}")


def _tname(v):
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null", int: "a number", float: "a number"}.get(type(v), type(v).__name__)


def _want(v, at, kind, nullable=False):
    if v is None and nullable:
        return
    ok = {"object": isinstance(v, dict), "array": isinstance(v, list),
          "string": isinstance(v, str),
          "number": isinstance(v, (int, float)) and not isinstance(v, bool),
          "integer": isinstance(v, int) and not isinstance(v, bool)}[kind]
    if not ok:
        art = "an" if kind[0] in "aeiou" else "a"
        raise _SchemaError(at, f"{_tname(v)}, expected {art} {kind}"
                               + (" or null" if nullable else ""))


def _opt(obj, key, at, kind, nullable=False):
    if key in obj:
        _want(obj[key], at + [key], kind, nullable)


def _check_metric_summary(m, at):
    _want(m, at, "object")
    _opt(m, "unit", at, "string", nullable=True)
    if "better" in m and m["better"] not in (-1, 0, 1) or isinstance(m.get("better"), bool):
        raise _SchemaError(at + ["better"], f"{json.dumps(m['better'])}, expected -1, 0 or 1")
    for k in ("n", "median", "ci_low", "ci_high", "ci_level"):
        _opt(m, k, at, "number", nullable=True)
    if "values" in m:
        _want(m["values"], at + ["values"], "array")
        for i, v in enumerate(m["values"]):
            _want(v, at + ["values", i], "number", nullable=True)


def _check_histogram(h, at):
    _want(h, at, "object")
    _opt(h, "count", at, "integer")
    if "buckets" in h:
        _want(h["buckets"], at + ["buckets"], "array")
        for i, b in enumerate(h["buckets"]):
            if not (isinstance(b, list) and len(b) == 2
                    and all(isinstance(x, int) and not isinstance(x, bool) for x in b)):
                raise _SchemaError(at + ["buckets", i], f"{json.dumps(b)[:40]}, expected "
                                   "[index, count] integers")


def _check_cell(c, at):
    _want(c, at, "object")
    for k in ("id", "runtime", "scenario", "status"):
        if k not in c:
            raise _SchemaError(at, f"no \"{k}\" member")
        _want(c[k], at + [k], "string")
    _opt(c, "params", at, "object")
    _opt(c, "label", at, "string")
    _opt(c, "message", at, "string", nullable=True)
    _opt(c, "reps", at, "array")
    _opt(c, "summary", at, "object", nullable=True)
    for j, rep in enumerate(c.get("reps") or []):
        rat = at + ["reps", j]
        _want(rep, rat, "object")
        _opt(rep, "status", rat, "string")
        _opt(rep, "metrics", rat, "object")
        for name, m in (rep.get("metrics") or {}).items():
            _want(m, rat + ["metrics", name], "object")
            _opt(m, "value", rat + ["metrics", name], "number", nullable=True)
        _opt(rep, "machine", rat, "object")
        _opt(rep, "loadgen", rat, "object")
    s = c.get("summary")
    if c["status"] == "ok" and not isinstance(s, dict):
        raise _SchemaError(at + ["summary"], "a cell with status \"ok\" has no summary")
    if isinstance(s, dict):
        sat = at + ["summary"]
        if c["status"] == "ok" and "metrics" not in s:
            raise _SchemaError(sat, "no \"metrics\" member")
        _opt(s, "metrics", sat, "object")
        for name, m in (s.get("metrics") or {}).items():
            _check_metric_summary(m, sat + ["metrics", name])
        lm = s.get("latency_merged")
        if lm is not None:
            _want(lm, sat + ["latency_merged"], "object")
            if "histogram" in lm:
                _check_histogram(lm["histogram"], sat + ["latency_merged", "histogram"])
        hm = s.get("histograms_merged")
        if hm is not None:
            _want(hm, sat + ["histograms_merged"], "object")
            for name, h in hm.items():
                _want(h, sat + ["histograms_merged", name], "object")
                if "histogram" in h:
                    _check_histogram(h["histogram"],
                                     sat + ["histograms_merged", name, "histogram"])


def validate_results(raw):
    """Raise _SchemaError at the first member of a result document that
    breaks docs/results-schema.md (in the members the reports read)."""
    for k in ("environment", "config", "counts", "generator"):
        _opt(raw, k, [], "object")
    _opt(raw, "status", [], "string")
    _opt(raw, "command", [], "array")
    _want(raw.get("cells"), ["cells"], "array")
    for i, c in enumerate(raw["cells"]):
        _check_cell(c, ["cells", i])


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
    try:
        validate_results(raw)
    except _SchemaError as e:
        raise InputError(f"{path}: {e} (docs/results-schema.md)") from None
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
