"""`axbench record RESULTS.json`: a history of results in one SQLite file
(python3's sqlite3, i.e. Debian's libsqlite3), keyed by commit, branch,
testbed and time; and the step-change rule that `report --history` marks.

The database is written in one transaction per recorded file: SQLite's
journal makes that append atomic, and it is safe against a concurrent
recorder (a temporary copy renamed over the database would silently drop
the other writer's run).
"""

import hashlib
import json
import os
import sqlite3
import subprocess
import time

from .results import ADDED_PARAMS, load_results
from .stats import median
from .util import InputError, finite, note

DB_SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id           INTEGER PRIMARY KEY,
    commit_id    TEXT NOT NULL,      -- git commit the binary was built from
    dirty        INTEGER,            -- 1: the work tree had local changes
    branch       TEXT NOT NULL,
    testbed      TEXT NOT NULL,      -- the machine (class) it ran on
    time_utc     TEXT NOT NULL,      -- when the run started (from the file)
    recorded_utc TEXT NOT NULL,
    source       TEXT,               -- path of the recorded file
    digest       TEXT NOT NULL UNIQUE, -- sha256 of the file: no double records
    status       TEXT,
    environment  TEXT                -- the file's environment block (JSON)
);
CREATE INDEX IF NOT EXISTS runs_by_key ON runs (testbed, branch, time_utc);
CREATE TABLE IF NOT EXISTS cells (
    run_id   INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    cell     TEXT NOT NULL,          -- JSON [runtime, scenario, {params}]
    runtime  TEXT NOT NULL,
    scenario TEXT NOT NULL,
    params   TEXT NOT NULL,
    label    TEXT,
    status   TEXT NOT NULL,
    PRIMARY KEY (run_id, cell)
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    cell    TEXT NOT NULL,
    metric  TEXT NOT NULL,
    unit    TEXT,
    better  INTEGER,
    n       INTEGER,
    median  REAL,
    ci_low  REAL,
    ci_high REAL,
    vals    TEXT,                    -- per-repetition values (JSON)
    PRIMARY KEY (run_id, cell, metric)
);
"""


def cell_key_text(cell):
    # a parameter added later, at its "as before" value, is left out so
    # that the cell continues the history of the older files' cell
    params = {k: v for k, v in cell.params.items()
              if not (k in ADDED_PARAMS and v == ADDED_PARAMS[k])}
    return json.dumps([cell.runtime, cell.scenario, params], sort_keys=True)


def open_db(path, create):
    if not create and not os.path.exists(path):
        raise InputError(f"history database {path} does not exist (axbench record creates it)")
    try:
        conn = sqlite3.connect(path, timeout=30)
        conn.execute("PRAGMA foreign_keys = ON")
        if create:
            with conn:
                conn.executescript(SCHEMA)
                conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                             (str(DB_SCHEMA_VERSION),))
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as e:
        raise InputError(f"{path}: not an axbench history database ({e})") from None
    if row is None or row[0] != str(DB_SCHEMA_VERSION):
        raise InputError(f"{path}: history schema version {row[0] if row else None!r} is not "
                         f"supported (this axbench reads version {DB_SCHEMA_VERSION})")
    return conn


def default_branch():
    """--branch when not given: $AXBENCH_BRANCH, then the usual CI
    variables, then git's current branch, then 'unknown'."""
    for var in ("AXBENCH_BRANCH", "GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME",
                "BRANCH_NAME", "BUILDKITE_BRANCH"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        out = subprocess.run(["git", "rev-parse", "--abbrev-ref", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        name = out.stdout.strip()
        if out.returncode == 0 and name and name != "HEAD":
            return name
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def default_testbed(doc):
    if os.environ.get("AXBENCH_TESTBED"):
        return os.environ["AXBENCH_TESTBED"]
    return doc.env.get("hostname") or "unknown"


def run_record(args):
    doc = load_results(args.results)
    with open(args.results, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    branch = args.branch or default_branch()
    testbed = args.testbed or default_testbed(doc)
    if doc.status != "complete":
        note(f"warning: {args.results} is {doc.status}, not complete; recording what it has")
    conn = open_db(args.db, create=True)
    try:
        old = conn.execute("SELECT id FROM runs WHERE digest = ?", (digest,)).fetchone()
        if old:
            note(f"{args.results} is already recorded in {args.db} as run {old[0]}; nothing to do")
            return 0
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        nmetrics = 0
        with conn:
            cur = conn.execute(
                "INSERT INTO runs (commit_id, dirty, branch, testbed, time_utc, recorded_utc, "
                "source, digest, status, environment) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (doc.commit, None if doc.dirty is None else int(bool(doc.dirty)), branch,
                 testbed, doc.time or now, now, os.path.abspath(args.results), digest,
                 doc.status, json.dumps(doc.env, sort_keys=True)))
            run_id = cur.lastrowid
            for c in doc.cells:
                key = cell_key_text(c)
                conn.execute("INSERT OR REPLACE INTO cells VALUES (?,?,?,?,?,?,?)",
                             (run_id, key, c.runtime, c.scenario,
                              json.dumps(c.params, sort_keys=True), c.label, c.status))
                for name, m in c.metrics.items():
                    conn.execute(
                        "INSERT OR REPLACE INTO metrics VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (run_id, key, name, m.unit, m.better, len(m.values),
                         m.median if finite(m.median) else None,
                         m.ci_low if finite(m.ci_low) else None,
                         m.ci_high if finite(m.ci_high) else None, json.dumps(m.values)))
                    nmetrics += 1
    except sqlite3.DatabaseError as e:
        raise InputError(f"{args.db}: cannot record: {e}") from None
    finally:
        conn.close()
    note(f"recorded {args.results} in {args.db} as run {run_id}: commit {doc.commit[:12]}, "
         f"branch {branch}, testbed {testbed}, {len(doc.cells)} cells, {nmetrics} metrics")
    return 0


# ---------------------------------------------------------------------------
# Reading the history back

class Run:
    __slots__ = ("id", "commit", "dirty", "branch", "testbed", "time")

    def __init__(self, row):
        self.id, self.commit, self.dirty, self.branch, self.testbed, self.time = row

    @property
    def short_commit(self):
        """The commit's short hash ('+': dirty work tree), or None."""
        if self.commit and self.commit != "unknown":
            return self.commit[:7] + ("+" if self.dirty else "")
        return None

    @property
    def date(self):
        """'2026-01-03 14:02' (UTC) from the run's start time."""
        t = self.time or ""
        return t[:16].replace("T", " ") if len(t) >= 16 else (t or "unknown")

    @property
    def label(self):
        """Two lines for a chart's x axis: the date, then the short commit
        (or the time of day when the commit is unknown)."""
        d = self.date
        return f"{d[:10]}\n{self.short_commit or d[11:] or '?'}"

    @property
    def text(self):
        """One line for tables: 'abc1234 (2026-01-03 14:02)'."""
        return f"{self.short_commit or 'unknown commit'} ({self.date})"


def load_history(path):
    """{(testbed, branch): (runs in time order, {(cell, metric): {run id:
    (median, lo, hi, unit, better)}}, {cell: (runtime, scenario, params)})}."""
    conn = open_db(path, create=False)
    try:
        runs = [Run(r) for r in conn.execute(
            "SELECT id, commit_id, dirty, branch, testbed, time_utc FROM runs "
            "ORDER BY time_utc, id")]
        cells = {}
        for cell, rt, sc, params in conn.execute(
                "SELECT DISTINCT cell, runtime, scenario, params FROM cells"):
            cells[cell] = (rt, sc, json.loads(params))
        data = {}
        for run_id, cell, metric, unit, better, med, lo, hi in conn.execute(
                "SELECT run_id, cell, metric, unit, better, median, ci_low, ci_high "
                "FROM metrics"):
            data.setdefault((cell, metric), {})[run_id] = (
                med, lo if lo is not None else float("nan"),
                hi if hi is not None else float("nan"), unit or "", better or 0)
    except sqlite3.DatabaseError as e:
        raise InputError(f"{path}: cannot read the history: {e}") from None
    finally:
        conn.close()
    groups = {}
    for r in runs:
        groups.setdefault((r.testbed, r.branch), []).append(r)
    out = {}
    for gkey, gruns in groups.items():
        ids = {r.id for r in gruns}
        gdata = {}
        for k, per in data.items():
            sel = {rid: v for rid, v in per.items() if rid in ids and v[0] is not None}
            if sel:
                gdata[k] = sel
        out[gkey] = (gruns, gdata, cells)
    return out


# ---------------------------------------------------------------------------
# Step changes

STEP_WINDOW = 3
STEP_MIN_SIDE = 2


def step_changes(values, floor, window=STEP_WINDOW, min_side=STEP_MIN_SIDE):
    """Indices i where the series `values` (per-run medians, in time order)
    steps between i-1 and i, with the relative shift.

    The rule: compare the window of up to `window` runs before i with the
    window of up to `window` runs from i on (each needs at least `min_side`
    runs, so one odd run is never a step and the newest run is confirmed by
    the next one). A step needs both (1) the median of the "after" window
    differing from the median of the "before" window by more than the noise
    floor, and (2) the two windows not overlapping at all (every run after
    above every run before, or below). Of several neighbouring candidates
    (within one window) only the largest shift is kept."""
    cands = []
    n = len(values)
    for i in range(min_side, n - min_side + 1):
        before = values[max(0, i - window):i]
        after = values[i:i + window]
        if len(before) < min_side or len(after) < min_side:
            continue
        mb, ma = median(before), median(after)
        if not mb:
            continue
        shift = ma / mb - 1
        separated = min(after) > max(before) or max(after) < min(before)
        if abs(shift) > floor and separated:
            cands.append((i, shift))
    kept = []
    for i, shift in sorted(cands, key=lambda c: -abs(c[1])):
        if all(abs(i - j) >= window for j, _ in kept):
            kept.append((i, shift))
    return sorted(kept)
