"""`axbench ab --a A --b B [options] -- RUN-ARGS...`: measure two builds in
one run, repetition by repetition, and compare them as pairs.

Two runs minutes apart measure two different machines on a shared runner:
whatever else runs there moves every figure by 10-50%. Here repetition k of
A and repetition k of B run back to back (in the order A B, B A, A B, ... so
that a drift within a pair does not always favour one side), each as
`BIN run RUN-ARGS --reps 1`, and compare judges each change pair by pair
(an exact sign test over the per-pair ratios): interference that hits a
pair hits both of its sides.

A side is an axbench binary (a path), or a git revision of this repository
(`HEAD~1`, a branch, a commit), which is checked out into a worktree under
--work and built there with scripts/build (cached by commit). Environment
variables can be set for one side only (`--b-env NAME=VALUE`), which is how
the tests inject a deliberate slowdown.

Writes WORK/A.json and WORK/B.json (ordinary result files, each with an
`ab` member naming the run and its side), WORK/compare.json and
WORK/compare.md; exits with compare's status (0 pass, 1 regression,
3 inconclusive; 2 bad input).
"""

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import time
import uuid

from . import compare, stats
from .util import InputError, claim_output, note, write_atomic

MIN_PAIRS = 6   # the exact sign test reaches p < 0.05 from 6 pairs (2/64)
DEFAULT_PAIRS = 9  # one disturbed pair still leaves p = 0.039
MAX_PAIRS = 200
# Options of `run` that ab sets itself.
OWN_RUN_OPTIONS = ("--reps", "--json", "--measure")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_env(items, side):
    env = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise InputError(f"--{side}-env {item!r}: expected NAME=VALUE")
        env[name] = value
    return env


def _git(*args, cwd=ROOT):
    r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise InputError(f"git {' '.join(args)}: {r.stderr.strip() or 'failed'}")
    return r.stdout.strip()


def resolve_side(spec, work, side):
    """The axbench binary for a side: the path itself, or a build of the git
    revision `spec` in WORK/build-<commit> (built once, then reused)."""
    if os.path.sep in spec or os.path.exists(spec):
        path = os.path.abspath(spec)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise InputError(f"--{side} {spec}: not an executable file")
        return path, {"binary": path}
    if not os.path.isdir(os.path.join(ROOT, ".git")) and not os.path.isfile(
            os.path.join(ROOT, ".git")):
        raise InputError(f"--{side} {spec}: not a file, and {ROOT} is not a git checkout "
                         "to build a revision from")
    commit = _git("rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}")
    tree = os.path.join(work, f"build-{commit[:12]}")
    binary = os.path.join(tree, "build", "axbench")
    if not os.access(binary, os.X_OK):
        if os.path.isdir(tree):
            subprocess.run(["git", "worktree", "remove", "--force", tree], cwd=ROOT,
                           capture_output=True)
            shutil.rmtree(tree, ignore_errors=True)
        note(f"ab: building {spec} ({commit[:12]}) in {tree}")
        _git("worktree", "add", "--detach", tree, commit)
        r = subprocess.run([os.path.join(tree, "scripts", "build"), "release"], cwd=tree,
                           capture_output=True, text=True)
        if r.returncode != 0 or not os.access(binary, os.X_OK):
            raise InputError(f"--{side} {spec}: the build failed:\n{r.stderr[-2000:]}")
    return binary, {"revision": spec, "commit": commit, "binary": binary}


def check_run_args(run_args):
    for a in run_args:
        opt = a.split("=", 1)[0]
        if opt in OWN_RUN_OPTIONS:
            raise InputError(f"ab sets {opt} itself: leave it out of the run options "
                             f"(use --pairs for the repetitions)")


# ---------------------------------------------------------------------------
# Merging one-repetition runs into one result file per side

def merge_runs(paths):
    """One result document holding every repetition of several runs of the
    same cells (each usually `run --reps 1`), in run order: each cell's
    repetitions and per-metric values concatenated, its summary recomputed
    (median and distribution-free interval), a failure in any run kept."""
    from .results import read_json
    docs = [read_json(p, "result file") for p in paths]
    out = copy.deepcopy(docs[0])
    by_id = {}
    order = []
    for k, d in enumerate(docs):
        for c in d.get("cells", []):
            if c["id"] not in by_id:
                by_id[c["id"]] = {"cell": copy.deepcopy(c), "reps": [], "values": {},
                                  "meta": {}, "bad": None, "sat": False}
                order.append(c["id"])
            e = by_id[c["id"]]
            for rep in c.get("reps") or []:
                rep = dict(rep)
                rep["rep"] = len(e["reps"]) + 1
                rep["round"] = k + 1
                e["reps"].append(rep)
            if c.get("status") != "ok" and c.get("status") != "unsupported" and not e["bad"]:
                e["bad"] = (c.get("status"), c.get("message"))
            summ = c.get("summary") or {}
            e["sat"] |= bool(summ.get("loadgen_saturated"))
            for name, m in (summ.get("metrics") or {}).items():
                e["values"].setdefault(name, []).extend(m.get("values") or [])
                e["meta"][name] = (m.get("unit"), m.get("better", 0))
    cells = []
    for cid in order:
        e = by_id[cid]
        c = e["cell"]
        c["reps"] = e["reps"]
        c["reps_planned"] = len(docs)
        if e["bad"]:
            c["status"], c["message"] = e["bad"]
        if c.get("status") == "ok":
            ms = {}
            for name, vals in e["values"].items():
                unit, better = e["meta"][name]
                med, lo, hi, level = stats.median_ci(vals)
                ms[name] = {"unit": unit, "better": better, "n": len(vals), "median": med,
                            "ci_low": lo, "ci_high": hi, "ci_level": level, "values": vals}
            summ = dict(c.get("summary") or {})
            summ["reps"] = len(e["reps"])
            summ["metrics"] = ms
            summ["loadgen_saturated"] = e["sat"]
            c["summary"] = summ
        cells.append(c)
    out["cells"] = cells
    out["status"] = "complete" if all(d.get("status") == "complete" for d in docs) else \
        "interrupted"
    out.setdefault("config", {})["reps"] = len(docs)
    out["finished_utc"] = docs[-1].get("finished_utc")
    return out


def merge_side(paths, side, run_id, info):
    """One side of an ab run: its runs merged, named by the run and side."""
    out = merge_runs(paths)
    out["ab"] = dict(info, run_id=run_id, side=side, pairs=len(paths))
    return out


# ---------------------------------------------------------------------------
# The command

def run(args):
    if not args.run_args:
        raise InputError("ab: give the run options after --, e.g. "
                         "axbench ab --a OLD --b NEW -- --runtime epoll --scenario tcp_echo")
    run_args = list(args.run_args)
    if run_args and run_args[0] == "--":
        run_args = run_args[1:]
    check_run_args(run_args)
    if not (MIN_PAIRS <= args.pairs <= MAX_PAIRS):
        raise InputError(f"--pairs must be in [{MIN_PAIRS}, {MAX_PAIRS}] (the paired test "
                         f"cannot reach p < 0.05 with fewer than {MIN_PAIRS}), not {args.pairs}")
    env_a, env_b = parse_env(args.a_env, "a"), parse_env(args.b_env, "b")
    settings = compare.Settings(floor=args.floor, metrics=compare.parse_metric_option(args.metric))
    work = os.path.abspath(args.work)
    try:
        os.makedirs(work, exist_ok=True)
    except OSError as e:
        raise InputError(f"--work {args.work}: {e.strerror or e}") from None
    for name in ("A.json", "B.json", "compare.json", "compare.md"):
        claim_output(os.path.join(work, name), "ab output")
    bin_a, info_a = resolve_side(args.a, work, "a")
    bin_b, info_b = resolve_side(args.b, work, "b")
    run_id = f"ab-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    sides = {"A": (bin_a, env_a, info_a), "B": (bin_b, env_b, info_b)}
    parts = {"A": [], "B": []}
    pairs_done = 0
    try:
        for k in range(args.pairs):
            order = ("A", "B") if k % 2 == 0 else ("B", "A")
            for side in order:
                binary, extra, _ = sides[side]
                path = os.path.join(work, f"{side}-{k + 1}.json")
                env = dict(os.environ)
                for name in list(env_a) + list(env_b):
                    env.pop(name, None)
                env.update(extra)
                if not args.quiet:
                    note(f"ab: pair {k + 1}/{args.pairs}: {side}")
                r = subprocess.run([binary, "run", *run_args, "--reps", "1", "--json", path],
                                   env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
                if r.returncode == 2 or not os.path.isfile(path):
                    raise InputError(f"ab: {side}'s run failed (exit {r.returncode}): "
                                     + (r.stderr.strip().splitlines() or ["no output"])[-1])
                parts[side].append(path)
            pairs_done = k + 1
    except KeyboardInterrupt:
        note(f"ab: interrupted after {pairs_done} pair(s)")
        if pairs_done == 0:
            return 130
    for side in ("A", "B"):
        _, _, info = sides[side]
        doc = merge_side(parts[side][:pairs_done], side, run_id, info)
        write_atomic(os.path.join(work, f"{side}.json"), json.dumps(doc, indent=1) + "\n")
    from .results import load_results
    base = load_results(os.path.join(work, "A.json"))
    new = load_results(os.path.join(work, "B.json"))
    rep = compare.compare_docs(base, new, settings)
    md = compare.to_markdown(rep, title="axbench ab (A = BASE, B = NEW)")
    write_atomic(os.path.join(work, "compare.json"),
                 json.dumps(compare.sanitize_json(rep), indent=1, allow_nan=False) + "\n")
    write_atomic(os.path.join(work, "compare.md"), md)
    if not args.quiet:
        print(md)
    note(f"ab: results in {work}/A.json, {work}/B.json, {work}/compare.md")
    return rep["exit_code"] if pairs_done == args.pairs else 130


def add_parser(sub, fraction):
    p = sub.add_parser(
        "ab", prog="axbench ab", help="measure two builds interleaved, compare them as pairs",
        description="Measure build A and build B in one run, repetition by repetition "
                    "(A B, B A, A B, ...), each repetition a `run --reps 1` of the options "
                    "after --, then compare B against A pair by pair. Exit status: 0 pass, "
                    "1 regression, 2 bad input, 3 inconclusive, 4 internal error.",
        epilog="example: axbench ab --a HEAD~1 --b HEAD -- --runtime epoll --scenario "
               "tcp_echo -p connections=16 --duration 0.5")
    p.add_argument("--a", required=True, metavar="BIN|REV",
                   help="the baseline: an axbench binary, or a git revision to build")
    p.add_argument("--b", required=True, metavar="BIN|REV",
                   help="the candidate: an axbench binary, or a git revision to build")
    p.add_argument("--a-env", action="append", metavar="NAME=VALUE",
                   help="environment for A's runs only (repeatable)")
    p.add_argument("--b-env", action="append", metavar="NAME=VALUE",
                   help="environment for B's runs only (repeatable)")
    p.add_argument("--pairs", type=int, default=DEFAULT_PAIRS,
                   help=f"repetitions of each side, {MIN_PAIRS}..{MAX_PAIRS} "
                        f"(default {DEFAULT_PAIRS})")
    p.add_argument("--work", default="ab-work", metavar="DIR",
                   help="where the runs, builds and results go (default ab-work)")
    p.add_argument("--floor", type=fraction, default=compare.DEFAULT_FLOOR,
                   help="noise floor of the comparison (default 0.03 = 3%%)")
    p.add_argument("--metric", action="append", metavar="NAME[,NAME]",
                   help="metrics that decide the verdict, as for compare")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print neither progress nor the comparison")
    p.add_argument("run_args", nargs=argparse.REMAINDER, metavar="-- RUN-OPTIONS")
    return p
