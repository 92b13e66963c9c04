"""End-to-end tests of `axbench conform`: the whole conformance suite on
every available runtime with --json, the JSON it writes, that every cell
that does not pass is explained in docs/conformance.md, the outcome mapping
(through the runner's self-test cases), and bad input.

The matrix guard: the feature bits each runtime advertises are pinned here
(FEATURES), because a runtime that stops advertising a bit turns the cases
that need it into UNSUPPORTED cells instead of failures; the set of case IDs
must equal the table in docs/conformance.md exactly; and an UNSUPPORTED cell
is explained in the document like a failure.

The binary comes from the AXBENCH environment variable (default:
build/axbench under the repository root); without it every test is skipped
with a message saying so.
"""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import run_axbench

ROOT = Path(__file__).resolve().parents[2]
AXBENCH = Path(os.environ.get("AXBENCH", ROOT / "build" / "axbench"))
DOC = ROOT / "docs" / "conformance.md"

pytestmark = pytest.mark.skipif(
    not (AXBENCH.is_file() and os.access(AXBENCH, os.X_OK)),
    reason=f"axbench binary not found at {AXBENCH} (build it, or set AXBENCH)",
)

OUTCOMES = {"PASS", "FAIL", "UNSUPPORTED", "TIMEOUT", "CRASH"}
# the runner (test-only hooks of axbench never inherited) is conftest's
axbench = run_axbench


# The feature bits each compiled-in runtime must advertise, exactly. A
# change here is a change of what the suite checks on that runtime: update
# it together with the driver and docs/conformance.md.
# The core design adds cheap-tasks, stack-check, one-thread and one-worker to its
# drivers' bits; the thread-per-task oracle has stack-check only of those.
# The work-stealing design (ws-<engine>) adds cheap-tasks, stack-check and
# multi-worker; the one-thread designs advertise one-worker.
CORE = {"cheap-tasks", "stack-check", "one-thread", "one-worker"}
WS = {"cheap-tasks", "stack-check", "multi-worker"}
FEATURES = {
    "epoll": {"tcp", "xthread"} | CORE,
    "io_uring": {"tcp", "file", "native-cancel", "completion", "xthread"} | CORE,
    "libuv": {"tcp", "file", "native-pool", "native-timers", "xthread"} | CORE,
    "libevent": {"tcp", "native-timers", "xthread"} | CORE,
    "threads": {"tcp", "file", "xthread", "stack-check", "one-worker"},
    "ws-epoll": {"tcp", "xthread"} | WS,
    "ws-io_uring": {"tcp", "file", "native-cancel", "completion", "xthread"} | WS,
    "ws-libuv": {"tcp", "file", "native-pool", "native-timers", "xthread"} | WS,
    "ws-libevent": {"tcp", "native-timers", "xthread"} | WS,
}


def documented_cases():
    """Case IDs of the table under "## The cases" in docs/conformance.md, in
    order."""
    text = DOC.read_text()
    section = text.split("## The cases", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z0-9_]+\.[a-z0-9_]+)` \|", section, re.M)


def known_failures():
    """(case, runtime) -> outcome from the tables under "Known failures" in
    docs/conformance.md: rows of | `case` | runtime | OUTCOME | why |
    (expected UNSUPPORTED cells included)."""
    text = DOC.read_text()
    section = text.split("## Known failures", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for m in re.finditer(r"^\| `([\w.]+)` \| ([\w-]+) \| (\w+) \|", section, re.M):
        rows[(m.group(1), m.group(2))] = m.group(3)
    return rows


@pytest.fixture(scope="module")
def suite(conform_suite):
    """One run of the whole suite on every runtime (conftest.py, shared with
    test_differential.py)."""
    return conform_suite


def test_json_schema(suite):
    _, doc, _ = suite
    assert doc["schema"] == "axbench-conform"
    assert doc["schema_version"] == 1
    assert doc["status"] == "complete"
    assert doc["command"][:2] == ["axbench", "conform"]
    # the environment block of every result file (docs/results-schema.md)
    env = doc["environment"]
    for key in ("time_utc", "kernel", "cpu", "build", "hostname", "git"):
        assert key in env
    assert doc["config"]["jobs"] >= 1
    assert doc["runtimes"], "no runtime listed"
    for rt in doc["runtimes"]:
        assert set(rt) >= {"name", "available", "reason", "features", "summary"}
        assert rt["available"] or rt["reason"]
    ids = [c["id"] for c in doc["cases"]]
    assert ids == documented_cases(), "the cases run differ from the " \
        "table in docs/conformance.md"
    assert len(ids) == len(set(ids)), "duplicate case IDs"
    for c in doc["cases"]:
        assert re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", c["id"]), c["id"]
        assert c["requirement"] and c["summary"]
        assert c["timeout_s"] > 0
        assert isinstance(c["features"], list)


def test_every_available_runtime_ran_every_case(suite):
    _, doc, _ = suite
    ids = [c["id"] for c in doc["cases"]]
    available = [r["name"] for r in doc["runtimes"] if r["available"]]
    assert available, "no runtime is available here"
    assert sorted(doc["results"]) == sorted(available)
    for rt in available:
        res = doc["results"][rt]
        assert sorted(res) == sorted(ids), rt
        for cid, r in res.items():
            assert r["outcome"] in OUTCOMES, (rt, cid)
            assert r["duration_s"] >= 0
            assert isinstance(r["detail"], str)
            if r["outcome"] == "PASS":
                assert r["detail"] == ""
            else:
                assert r["detail"], (rt, cid)
            if r["outcome"] == "CRASH":
                assert r["signal"].startswith("SIG")
        totals = doc["totals"][rt]
        for o in OUTCOMES:
            assert totals[o] == sum(1 for r in res.values() if r["outcome"] == o)


def test_exit_status_and_matrix(suite):
    p, doc, path = suite
    bad = [
        (rt, cid)
        for rt, res in doc["results"].items()
        for cid, r in res.items()
        if r["outcome"] in ("FAIL", "TIMEOUT", "CRASH")
    ]
    assert doc["ok"] == (not bad)
    assert p.returncode == (1 if bad else 0), p.stderr[-2000:]
    # the terminal matrix: a header with every runtime, a row per case
    header = next(l for l in p.stdout.splitlines() if l.startswith("case "))
    for rt in doc["runtimes"]:
        assert rt["name"] in header
    for c in doc["cases"]:
        assert re.search(rf"^{re.escape(c['id'])}\s", p.stdout, re.M)
    # written atomically: no temporary file left beside it
    assert [f.name for f in path.parent.iterdir()] == [path.name]


def test_no_unexplained_failure(suite):
    """A cell that does not pass (UNSUPPORTED included: a lost feature bit
    must not hide failures) stays in the matrix, explained in
    docs/conformance.md; a documented cell that now passes must be removed
    from the document."""
    _, doc, _ = suite
    known = known_failures()
    unexplained, fixed = [], []
    for rt, res in doc["results"].items():
        for cid, r in res.items():
            o = r["outcome"]
            if o == "PASS":
                if (cid, rt) in known:
                    fixed.append(f"{cid} on {rt}")
                continue
            if known.get((cid, rt)) != o:
                unexplained.append(f"{cid} on {rt}: {o}: {r['detail']}")
    assert not unexplained, "not passing and not explained in " \
        "docs/conformance.md (Known failures):\n" + "\n".join(unexplained)
    assert not fixed, "passing now; remove from Known failures in " \
        "docs/conformance.md:\n" + "\n".join(fixed)


def test_docs_list_every_case(suite):
    _, doc, _ = suite
    documented = documented_cases()
    assert len(documented) == len(set(documented)), "a case is listed twice"
    ran = [c["id"] for c in doc["cases"]]
    assert set(ran) == set(documented), (
        f"run but not documented: {sorted(set(ran) - set(documented))}; "
        f"documented but not run: {sorted(set(documented) - set(ran))}")


def test_list():
    """--list shows exactly the documented cases, in the documented order."""
    p = axbench("conform", "--list")
    assert p.returncode == 0
    ids = re.findall(r"^([a-z0-9_]+\.[a-z0-9_]+)\s", p.stdout, re.M)
    assert ids == documented_cases()
    assert not any(i.startswith("selftest.") for i in ids)


def check_features(runtimes):
    got = {r["name"]: set(r["features"]) for r in runtimes}
    assert set(got) == set(FEATURES), "compiled-in runtimes changed: " \
        f"{sorted(got)} (pinned: {sorted(FEATURES)})"
    wrong = {n: (sorted(f), sorted(FEATURES[n]))
             for n, f in got.items() if f != FEATURES[n]}
    assert not wrong, "features advertised (got, pinned): " + str(wrong)


def test_features_pinned(tmp_path):
    """Every compiled-in runtime advertises exactly its pinned features,
    whether or not it can run here."""
    out = tmp_path / "f.json"
    p = axbench("conform", "--case", "rt.eperm", "--json", str(out),
                timeout=120)
    assert out.exists(), p.stderr
    check_features(json.loads(out.read_text())["runtimes"])


def test_features_pinned_in_suite(suite):
    _, doc, _ = suite
    check_features(doc["runtimes"])


def test_outcome_mapping(tmp_path):
    """The runner's own cases: one of each outcome, on one runtime."""
    out = tmp_path / "st.json"
    p = axbench(
        "conform", "--case", "selftest.*", "--json", str(out),
        env={"AXBENCH_TEST_CONFORM_SELFTEST": "1"}, timeout=120,
    )
    assert p.returncode == 1, p.stderr
    doc = json.loads(out.read_text())
    assert doc["results"], "no runtime ran"
    for rt, res in doc["results"].items():
        assert res["selftest.pass"]["outcome"] == "PASS"
        fail = res["selftest.fail"]
        assert fail["outcome"] == "FAIL"
        assert "expected -EINTR, got -ECANCELED" in fail["detail"]
        crash = res["selftest.crash"]
        assert crash["outcome"] == "CRASH" and crash["signal"] == "SIGSEGV"
        hang = res["selftest.hang"]
        assert hang["outcome"] == "TIMEOUT"
        assert 1.5 < hang["duration_s"] < 30
        nov = res["selftest.no_verdict"]
        assert nov["outcome"] == "FAIL" and "status 3" in nov["detail"]
        assert res["selftest.unsupported"]["outcome"] == "UNSUPPORTED"
    # the hanging case's grandchild was killed with its process group
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True)
    assert "__case selftest.hang" not in ps.stdout


def test_unsupported_feature(tmp_path):
    out = tmp_path / "u.json"
    p = axbench(
        "conform", "--case", "post.context", "--case", "rt.eperm",
        "--json", str(out),
        env={"AXBENCH_TEST_CONFORM_NO_FEATURES": "xthread"}, timeout=120,
    )
    doc = json.loads(out.read_text())
    assert doc["results"], "no runtime ran"
    for rt, res in doc["results"].items():
        assert res["post.context"]["outcome"] == "UNSUPPORTED"
        assert "xthread" in res["post.context"]["detail"]
        assert res["rt.eperm"]["outcome"] == "PASS", res["rt.eperm"]["detail"]
    assert p.returncode == 0, p.stdout + p.stderr


def runtime_names(tmp_path):
    out = tmp_path / "names.json"
    p = axbench("conform", "--case", "rt.eperm", "--json", str(out), timeout=120)
    assert out.exists(), p.stderr
    return [r["name"] for r in json.loads(out.read_text())["runtimes"]]


def test_unavailable_runtime(tmp_path):
    victim = runtime_names(tmp_path)[0]
    out = tmp_path / "b.json"
    p = axbench(
        "conform", "--case", "rt.eperm", "--json", str(out),
        env={"AXBENCH_TEST_UNAVAILABLE": victim}, timeout=120,
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    rt = next(r for r in doc["runtimes"] if r["name"] == victim)
    assert rt["available"] is False and "AXBENCH_TEST_UNAVAILABLE" in rt["reason"]
    assert victim not in doc["results"]
    assert f"runtime {victim}: unavailable" in p.stdout


def test_runtime_and_case_selection(tmp_path):
    name = runtime_names(tmp_path)[-1]
    out = tmp_path / "s.json"
    p = axbench(
        "conform", "--runtime", name, "--case", "task.spawn_*",
        "--case", "chan.fifo", "--json", str(out), timeout=300,
    )
    assert p.returncode in (0, 1), p.stderr
    doc = json.loads(out.read_text())
    assert [r["name"] for r in doc["runtimes"]] == [name]
    ids = [c["id"] for c in doc["cases"]]
    assert ids == ["task.spawn_eager", "task.spawn_nested", "chan.fifo"]
    assert sorted(doc["results"][name]) == sorted(ids)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--runtime", "no-such-runtime"], "unknown runtime 'no-such-runtime'"),
        (["--case", "zz.*"], "matches no case"),
        (["--timeout", "soon"], "--timeout"),
        (["--jobs", "0"], "--jobs"),
        (["--bogus"], "unknown option"),
        (["--json", "/nonexistent-dir/x.json"], "cannot write"),
    ],
)
def test_bad_input(args, message):
    p = axbench("conform", *args, timeout=60)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], p.stderr
    assert p.stdout == ""
