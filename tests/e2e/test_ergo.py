"""End-to-end tests of the ergonomics side: `axbench ergo` (the table of the
ax version of each scenario against its native versions, allocations per
operation, the cost of the abstraction), the native versions run as
implementations by `axbench run`, and a smoke run of the micro-benchmarks
(bench/axbench-micro). Definitions: docs/ergonomics.md.

The binary comes from the AXBENCH environment variable (default:
build/axbench under the repository root); the micro-benchmarks from
AXBENCH_MICRO (default: bench/axbench-micro beside axbench).
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXBENCH = Path(os.environ.get("AXBENCH", ROOT / "build" / "axbench"))
MICRO = Path(os.environ.get("AXBENCH_MICRO", AXBENCH.parent / "bench" / "axbench-micro"))

pytestmark = pytest.mark.skipif(
    not (AXBENCH.is_file() and os.access(AXBENCH, os.X_OK)),
    reason=f"axbench binary not found at {AXBENCH} (build it, or set AXBENCH)",
)

SCENARIOS = ["tcp_echo", "timers", "rpc_fanout"]


def axbench(*args, timeout=600, cwd=None):
    env = dict(os.environ)
    env.pop("AXBENCH_TEST_FAULT", None)
    env.pop("AXBENCH_TEST_UNAVAILABLE", None)
    return subprocess.run([str(AXBENCH), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd or ROOT)


def natives():
    """Each engine's native reference this build has (native-<engine>, as
    listed by `axbench list`), without the labelled second idioms
    (native-<engine>-<idiom>, tests/e2e/test_references.py)."""
    r = axbench("list", "--json")
    assert r.returncode == 0, r.stderr
    refs = json.loads(r.stdout)["references"]
    return sorted(x["name"] for x in refs
                  if x["name"].startswith("native-") and "-" not in x["name"][7:])


@pytest.fixture(scope="module")
def ergo(tmp_path_factory):
    """One full `axbench ergo` run (with the allocation counts), shared."""
    out = tmp_path_factory.mktemp("ergo") / "ergo.json"
    r = axbench("ergo", "--json", str(out))
    assert r.returncode == 0, r.stderr
    return r, json.loads(out.read_text())


def rows_of(doc, scenario):
    return {row["implementation"]: row for row in doc["rows"] if row["scenario"] == scenario}


def test_native_references_are_listed():
    names = natives()
    assert "native-epoll" in names
    r = axbench("list", "--json")
    for ref in json.loads(r.stdout)["references"]:
        if ref["name"] in names:
            assert set(ref["scenarios"]) == set(SCENARIOS)
            assert ref["available"]


def test_table_shape(ergo):
    r, doc = ergo
    assert doc["schema"] == "axbench-ergo" and doc["schema_version"] == 1
    impls = ["ax"] + natives()
    assert len(doc["rows"]) == len(SCENARIOS) * len(impls)
    for sc in SCENARIOS:
        rows = rows_of(doc, sc)
        assert sorted(rows) == sorted(impls)
        for name, row in rows.items():
            assert "error" not in row, row.get("error")
            assert name in r.stdout
            assert row["sources"] and row["sources"][0]["path"].endswith(".c")
    assert "allocs/op" in r.stdout


def test_code_metrics_are_plausible(ergo):
    _, doc = ergo
    for row in doc["rows"]:
        assert row["loc"] > 0 and row["functions"] > 0
        # one path through each function at least, and the max is one of them
        assert row["ccn_total"] >= row["functions"]
        assert 1 <= row["ccn_max"] <= row["ccn_total"]
        assert row["api_count"] == len(row["api_identifiers"]) > 0
        assert row["ioc"] == len(row["callbacks"]) + len(row["states"]) + row["dispatch_loops"]
        assert row["frees"] >= 1
    for sc in SCENARIOS:
        rows = rows_of(doc, sc)
        ax = rows.pop("ax")
        # the ax version is straight-line code in tasks: no inversion of control
        assert ax["ioc"] == 0 and not ax["callbacks"] and not ax["states"]
        assert ax["tasks"], "the ax version runs its work in tasks"
        assert all(i.startswith(("ax_", "AX_")) for i in ax["api_identifiers"])
        for name, row in rows.items():
            assert row["ioc"] > ax["ioc"], (sc, name)
            assert row["loc"] > ax["loc"], (sc, name)
            assert not row["tasks"]
    # callback engines call back; raw engines dispatch in a loop of their own
    echo = rows_of(doc, "tcp_echo")
    if "native-libuv" in echo:
        assert len(echo["native-libuv"]["callbacks"]) >= 3
    assert echo["native-epoll"]["dispatch_loops"] >= 1
    assert any(i.startswith("epoll_") for i in echo["native-epoll"]["api_identifiers"])


def test_allocations_per_operation(ergo):
    _, doc = ergo
    if not doc["allocs"]["measured"]:
        pytest.skip(doc["allocs"]["reason"])
    for row in doc["rows"]:
        per = row["allocs_per_op"]
        values = per.values() if isinstance(per, dict) else [per]
        for v in values:
            assert v is not None, row["allocs_notes"]
            assert 0 <= v < 100
    # a native echo server allocates per connection, never per message
    for name, row in rows_of(doc, "tcp_echo").items():
        if name != "ax":
            assert row["allocs_per_op"] < 0.05, name


def test_no_alloc_is_static_only(tmp_path):
    out = tmp_path / "e.json"
    r = axbench("ergo", "--no-alloc", "--json", str(out), timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc["allocs"]["measured"] is False
    assert doc["abstraction_cost"] is None and doc["abstraction_cost_run"] is None
    assert all("allocs_per_op" not in row for row in doc["rows"])


def test_bad_option_is_one_line():
    r = axbench("ergo", "--frobnicate")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "unknown option" in r.stderr


def test_measure_pairs_each_engine(tmp_path):
    out = tmp_path / "m.json"
    r = axbench("ergo", "--no-alloc", "--measure", "--reps", "1", "--connections", "4",
                "--json", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    cost, run = doc["abstraction_cost"], doc["abstraction_cost_run"]
    engines = {n[len("native-"):] for n in natives()}
    assert {p["engine"] for p in cost} == engines
    assert run["connections"] == 4 and run["reps"] == 1
    # one closed-loop cell per implementation, kept beside the ergo file
    cells = json.loads(Path(run["run_file"]).read_text())["cells"]
    assert len(cells) == 2 * len(engines)
    assert all(c["params"]["connections"] == 4 for c in cells)
    for p in cost:
        assert p["ax_status"] == "ok" and p["native_status"] == "ok", p
        assert p["throughput_ratio"] > 0 and p["p99_ratio"] > 0
        assert p["meets_90pct"] == (p["throughput_ratio"] >= 0.9)
    assert "cost of the abstraction" in r.stdout


def test_natives_pass_the_same_checks(tmp_path):
    """The native servers run beside the ax runtimes, same load, same check;
    the native timers run through `axbench run` too (run_local)."""
    out = tmp_path / "n.json"
    names = natives()
    r = axbench("run", "--runtime", ",".join(["epoll"] + names),
                "--scenario", "tcp_echo,rpc_fanout,timers",
                "--duration", "0.3s", "--warmup", "0.1s", "--reps", "1",
                "-p", "connections=4", "-p", "count=20000", "--json", str(out))
    assert r.returncode == 0, r.stderr
    cells = json.loads(out.read_text())["cells"]
    assert len(cells) == 3 * (1 + len(names))
    for c in cells:
        assert c["status"] == "ok", (c["runtime"], c["scenario"], c["message"])


@pytest.mark.skipif(not (MICRO.is_file() and os.access(MICRO, os.X_OK)),
                    reason=f"micro-benchmarks not built at {MICRO}")
def test_micro_benchmarks_smoke(tmp_path):
    out = tmp_path / "micro.json"
    r = subprocess.run([str(MICRO), "--benchmark_min_time=0.001",
                        f"--benchmark_out={out}", "--benchmark_out_format=json"],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    names = {b["name"] for b in doc["benchmarks"]}
    kinds = ["ctx_switch", "spawn_join", "yield", "chan_send_recv", "chan_handoff",
             "timer_arm_cancel"]
    assert "hist_record" in names
    assert all(f"{k}/epoll" in names for k in kinds)
    for b in doc["benchmarks"]:
        assert not b.get("error_occurred"), b
        assert b["iterations"] > 0 and b["real_time"] > 0
    assert any(k.startswith("ax_engine_") for k in doc["context"])
    # without --benchmark_out the report lands in results/ beside the others
    r = subprocess.run([str(MICRO), "--benchmark_min_time=0.001",
                        "--benchmark_filter=hist_record"],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert list((tmp_path / "results").glob("micro-*.json"))
