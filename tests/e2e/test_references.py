"""End-to-end tests of the labelled second idioms among the native references
(native-<engine>-<idiom>: docs/ergonomics.md, "Two idioms, two columns"):
each is listed with only the scenarios its idiom changes, runs through
`axbench run` beside its engine's first idiom, passes the scenario's own
check (a cell is "ok" only then), and refuses the scenarios it does not
implement as unsupported. Also the rpc_fanout natives whose read and write
paths changed (native-epoll, native-libuv) at fanout=16.

The binary comes from the AXBENCH environment variable (default:
build/axbench under the repository root).
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXBENCH = Path(os.environ.get("AXBENCH", ROOT / "build" / "axbench"))

pytestmark = pytest.mark.skipif(
    not (AXBENCH.is_file() and os.access(AXBENCH, os.X_OK)),
    reason=f"axbench binary not found at {AXBENCH} (build it, or set AXBENCH)",
)

# label -> (its engine's first reference, the scenarios its idiom changes)
VARIANTS = {
    "native-io_uring-heap": ("native-io_uring", ["timers"]),
    "native-io_uring-multishot": ("native-io_uring", ["tcp_echo"]),
    "native-libevent-bufferevent": ("native-libevent", ["tcp_echo"]),
}

ALL = ["tcp_echo", "rpc_fanout", "timers"]


def short(scenarios):
    """Short-run options that every scenario in the list accepts."""
    args = ["--reps", "1"]
    if set(scenarios) - {"timers"}:
        # generous phases: a loaded machine must not empty them
        args += ["--duration", "1s", "--warmup", "0.5s", "-p", "connections=8"]
    if "timers" in scenarios:
        args += ["-p", "count=20000", "-p", "samples=5"]
    return args


def axbench(*args, timeout=600):
    env = dict(os.environ)
    env.pop("AXBENCH_TEST_FAULT", None)
    env.pop("AXBENCH_TEST_UNAVAILABLE", None)
    return subprocess.run([str(AXBENCH), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def references():
    r = axbench("list", "--json")
    assert r.returncode == 0, r.stderr
    return {x["name"]: x for x in json.loads(r.stdout)["references"]}


def run_cells(tmp_path, *args):
    out = tmp_path / "r.json"
    r = axbench("run", *args, "--json", str(out))
    assert out.exists(), r.stderr
    return r, json.loads(out.read_text())["cells"]


def test_variants_listed_with_their_engine():
    refs = references()
    for name, (base, scenarios) in VARIANTS.items():
        # a variant is built exactly when its engine is
        assert (name in refs) == (base in refs), name
        if name in refs:
            assert refs[name]["scenarios"] == scenarios
            assert refs[name]["available"]
            assert refs[name]["summary"]


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_passes_the_scenario_check(tmp_path, name):
    """The variant and its engine's first idiom in one run, same parameters,
    both through the scenario's own check."""
    refs = references()
    base, scenarios = VARIANTS[name]
    if name not in refs:
        pytest.skip(f"{base} not built here")
    r, cells = run_cells(tmp_path, "--runtime", f"{base},{name}",
                         "--scenario", ",".join(scenarios), *short(scenarios))
    assert r.returncode == 0, r.stderr
    assert len(cells) == 2 * len(scenarios)
    for c in cells:
        assert c["status"] == "ok", (c["runtime"], c["scenario"], c["message"])
        metrics = c["reps"][0]["metrics"]
        if c["scenario"] == "timers":
            assert metrics["timers_per_s"]["value"] > 0
        else:
            assert metrics["round_trips"]["value"] > 0
            assert metrics["server_cpu_us_per_msg"]["value"] > 0


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_refuses_other_scenarios(tmp_path, name):
    """Asked for every scenario, a variant runs its own and reports the
    others unsupported (not failed)."""
    refs = references()
    if name not in refs:
        pytest.skip(f"{VARIANTS[name][0]} not built here")
    r, cells = run_cells(tmp_path, "--runtime", name, "--scenario", ",".join(ALL),
                         *short(ALL))
    assert r.returncode == 0, r.stderr
    status = {c["scenario"]: c["status"] for c in cells}
    assert status == {s: "ok" if s in VARIANTS[name][1] else "unsupported"
                      for s in ALL}, cells
    for c in cells:
        if c["status"] == "unsupported":
            assert "only its own scenarios" in c["message"]


def test_multishot_survives_an_empty_buffer_ring(tmp_path):
    """native-io_uring-multishot: 128 connections with 4 messages of 20000
    bytes in flight each outrun its ring of provided buffers (4 MiB: 128 of
    20000 bytes; measured: thousands of recvs a second end with ENOBUFS),
    so multishot recvs end and are re-armed as buffers come back; every
    byte still echoes intact (the load generator's check)."""
    if "native-io_uring-multishot" not in references():
        pytest.skip("native-io_uring not built here")
    r, cells = run_cells(tmp_path, "--runtime", "native-io_uring-multishot",
                         "--scenario", "tcp_echo", "--reps", "1",
                         "--duration", "1s", "--warmup", "0.5s",
                         "-p", "connections=128", "-p", "pipeline=4",
                         "-p", "size=20000")
    assert r.returncode == 0, r.stderr
    assert [c["status"] for c in cells] == ["ok"], cells[0]["message"]


def test_rpc_natives_at_fanout_16(tmp_path):
    """native-epoll and native-libuv read the backend calls in a new way
    (one recv per readiness; a loop-wide read buffer): both still pass
    rpc_fanout's check (every backend reply right) at fanout=16."""
    refs = references()
    names = [n for n in ("native-epoll", "native-libuv") if n in refs]
    r, cells = run_cells(tmp_path, "--runtime", ",".join(names),
                         "--scenario", "rpc_fanout", *short(["rpc_fanout"]),
                         "-p", "fanout=16")
    assert r.returncode == 0, r.stderr
    assert len(cells) == len(names)
    for c in cells:
        assert c["status"] == "ok", (c["runtime"], c["message"])
