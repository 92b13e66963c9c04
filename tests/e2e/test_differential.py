"""Differential tests: the thread-per-task oracle (runtime "threads": a
kernel thread per task, blocking waits) against every async runtime. What
does not depend on timing must be the same on both:

- the conformance verdict of every case (from the suite run that
  test_conform.py checks, conftest.py): one side PASS and the other not is
  a disagreement, unless docs/conformance.md explains that cell among its
  known failures; UNSUPPORTED on either side is no verdict to compare;
- every scenario, run small with one repetition: the cell's status and,
  for a failed cell, that it failed; the tasks the scenario spawned (local
  scenarios: their own work, fixed by their parameters); the connections
  held and echoed by idle_conns.

A disagreement fails the test with both runtimes and the case or cell
named. The comparison itself is checked on made-up results first, so the
test is seen to fail.
"""

import json
import os

import pytest

from conftest import AXBENCH, run_axbench
from test_conform import known_failures

ORACLE = "threads"

pytestmark = pytest.mark.skipif(
    not (AXBENCH.is_file() and os.access(AXBENCH, os.X_OK)),
    reason=f"axbench binary not found at {AXBENCH} (build it, or set AXBENCH)",
)

# Small parameters so that all scenarios on all runtimes take seconds; every
# one of them still runs its own check.
SMALL = [
    "-p", "count=5000", "-p", "live=500", "-p", "xcount=500",
    "-p", "tasks=100", "-p", "samples=20", "-p", "calls=500",
    "-p", "file_size=1m", "-p", "connections=8",
    "--duration", "0.2", "--warmup", "0.05", "--reps", "1",
]

# Metrics that count work fixed by the parameters (no timing in them).
COUNT_METRICS = {"idle_conns": ("idle_connections", "round_trips")}


def conform_disagreements(results, known, oracle=ORACLE):
    """[(case, runtime, oracle outcome, runtime outcome)] for every case
    where the oracle and an async runtime give different verdicts that
    docs/conformance.md does not explain."""
    out = []
    mine = results.get(oracle, {})
    for rt, res in sorted(results.items()):
        if rt == oracle:
            continue
        for cid, r in sorted(res.items()):
            a = mine.get(cid, {}).get("outcome")
            b = r["outcome"]
            if a is None or "UNSUPPORTED" in (a, b) or a == b:
                continue
            if (cid, rt) in known or (cid, oracle) in known:
                continue
            out.append((cid, rt, a, b))
    return out


def cell_outcome(cell):
    """What of a result cell does not depend on timing."""
    rep = cell["reps"][0] if cell.get("reps") else {}
    got = {"status": cell["status"]}
    stats = rep.get("stats") or {}
    if cell["kind"] == "local" and "tasks_spawned" in stats:
        got["tasks_spawned"] = stats["tasks_spawned"]
    for m in COUNT_METRICS.get(cell["scenario"], ()):
        v = (rep.get("metrics") or {}).get(m)
        if v is not None:
            got[m] = v["value"]
    return got


def scenario_disagreements(cells, oracle=ORACLE):
    """[(cell label, runtime, oracle's outcome, runtime's outcome)]."""
    by = {}
    for c in cells:
        by.setdefault((c["scenario"], c["label"]), {})[c["runtime"]] = c
    out = []
    for (sc, label), rts in sorted(by.items()):
        if oracle not in rts:
            continue
        a = cell_outcome(rts[oracle])
        for rt, c in sorted(rts.items()):
            if rt == oracle:
                continue
            b = cell_outcome(c)
            if "unsupported" in (a["status"], b["status"]) or a == b:
                continue
            out.append((f"{sc}/{label}", rt, a, b))
    return out


def explain(rows, what):
    return f"the oracle ({ORACLE}) and an async runtime disagree on {what}:\n" + \
        "\n".join(f"  {cell}: {ORACLE} {a} but {rt} {b}" for cell, rt, a, b in rows)


def test_comparison_finds_a_disagreement():
    """Known answers: the comparisons report what differs, naming both
    runtimes, and only that."""
    results = {
        ORACLE: {"a.x": {"outcome": "PASS"}, "a.y": {"outcome": "PASS"},
                 "a.z": {"outcome": "UNSUPPORTED"}, "a.w": {"outcome": "FAIL"}},
        "epoll": {"a.x": {"outcome": "PASS"}, "a.y": {"outcome": "FAIL"},
                  "a.z": {"outcome": "FAIL"}, "a.w": {"outcome": "PASS"}},
    }
    assert conform_disagreements(results, {}) == [
        ("a.w", "epoll", "FAIL", "PASS"), ("a.y", "epoll", "PASS", "FAIL")]
    # a cell explained in the document is no disagreement
    assert conform_disagreements(results, {("a.y", "epoll"): "FAIL",
                                           ("a.w", ORACLE): "FAIL"}) == []
    msg = explain(conform_disagreements(results, {}), "cases")
    assert "a.y: threads PASS but epoll FAIL" in msg

    def cell(rt, status="ok", spawned=3, kind="local", sc="ctx_switch"):
        return {"runtime": rt, "scenario": sc, "label": "count=5", "kind": kind,
                "status": status,
                "reps": [{"stats": {"tasks_spawned": spawned}, "metrics": {}}]}
    cells = [cell(ORACLE), cell("epoll"), cell("libuv", spawned=4),
             cell("libevent", status="failed"), cell("io_uring", "unsupported")]
    got = scenario_disagreements(cells)
    assert [(c, rt) for c, rt, _, _ in got] == [
        ("ctx_switch/count=5", "libevent"), ("ctx_switch/count=5", "libuv")]
    assert got[1][2] == {"status": "ok", "tasks_spawned": 3}
    assert got[1][3] == {"status": "ok", "tasks_spawned": 4}


def test_conformance_verdicts_agree(conform_suite):
    _, doc, _ = conform_suite
    results = doc["results"]
    if ORACLE not in results:
        pytest.skip(f"runtime {ORACLE} did not run")
    assert len(results) > 1, "no async runtime to compare with"
    rows = conform_disagreements(results, known_failures())
    assert not rows, explain(rows, "conformance verdicts")


def test_scenarios_agree(tmp_path):
    listing = json.loads(run_axbench("list", "--json").stdout)
    rts = [r["name"] for r in listing["runtimes"] if r["available"]]
    if ORACLE not in rts or len(rts) < 2:
        pytest.skip("needs the oracle and an async runtime")
    out = tmp_path / "diff.json"
    p = run_axbench("run", "--runtime", ",".join(rts), "--scenario", "all",
                    *SMALL, "--json", str(out), timeout=900)
    assert out.exists(), p.stderr[-2000:]
    cells = json.loads(out.read_text())["cells"]
    scenarios = {c["scenario"] for c in cells}
    assert {"spawn_join", "idle_conns", "tcp_echo"} <= scenarios
    # the counts compared are there (else the comparison would be vacuous)
    mine = [c for c in cells if c["runtime"] == ORACLE]
    assert any("tasks_spawned" in cell_outcome(c) for c in mine)
    assert any("idle_connections" in cell_outcome(c) for c in mine)
    rows = scenario_disagreements(cells)
    assert not rows, explain(rows, "scenario outcomes")
