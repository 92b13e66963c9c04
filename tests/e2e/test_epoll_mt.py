"""End-to-end tests of the two-thread epoll references that measure the
work-stealing design's rejected alternative (docs/decisions.md, "Work
stealing", I/O across workers): native-epoll-mt-owned (an epoll set per
thread) and native-epoll-mt-shared (both threads on one set, EPOLLONESHOT
re-armed per wait). Each serves tcp_echo only, through `axbench run`
beside native-epoll, and a cell is "ok" only after the scenario's own
check passed: small messages, and large pipelined ones that fill the
socket (the wait-to-write path and its re-arm). The other scenarios are
refused as unsupported, not failed.

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
MT = ["native-epoll-mt-owned", "native-epoll-mt-shared"]

pytestmark = pytest.mark.skipif(
    not (AXBENCH.is_file() and os.access(AXBENCH, os.X_OK)),
    reason=f"axbench binary not found at {AXBENCH} (build it, or set AXBENCH)",
)

# generous phases: a loaded machine must not empty them
SHORT = ["--reps", "1", "--duration", "1s", "--warmup", "0.5s"]


def axbench(*args, timeout=600):
    env = dict(os.environ)
    env.pop("AXBENCH_TEST_FAULT", None)
    env.pop("AXBENCH_TEST_UNAVAILABLE", None)
    return subprocess.run([str(AXBENCH), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def run_cells(tmp_path, *args):
    out = tmp_path / "r.json"
    r = axbench("run", *args, "--json", str(out))
    assert out.exists(), r.stderr
    return r, json.loads(out.read_text())["cells"]


def test_listed_with_tcp_echo_only():
    r = axbench("list", "--json")
    assert r.returncode == 0, r.stderr
    refs = {x["name"]: x for x in json.loads(r.stdout)["references"]}
    for name in MT:
        assert refs[name]["scenarios"] == ["tcp_echo"]
        assert refs[name]["available"]
        assert "2 threads" in refs[name]["summary"]


@pytest.mark.parametrize("params", [
    ["-p", "connections=64"],
    # 64 KiB messages, 4 in flight per connection: sends meet a full socket
    ["-p", "connections=8", "-p", "size=65536", "-p", "pipeline=4"],
], ids=["small", "full-socket"])
def test_owned_and_shared_pass_the_check(tmp_path, params):
    r, cells = run_cells(tmp_path, "--runtime", ",".join(["native-epoll"] + MT),
                         "--scenario", "tcp_echo", *params, *SHORT)
    assert r.returncode == 0, r.stderr
    assert sorted(c["runtime"] for c in cells) == sorted(["native-epoll"] + MT)
    for c in cells:
        assert c["status"] == "ok", (c["runtime"], c["message"])
        metrics = c["reps"][0]["metrics"]
        assert metrics["round_trips"]["value"] > 0
        assert metrics["server_cpu_us_per_msg"]["value"] > 0


@pytest.mark.parametrize("name", MT)
def test_other_scenarios_unsupported(tmp_path, name):
    r, cells = run_cells(tmp_path, "--runtime", name,
                         "--scenario", "tcp_echo,rpc_fanout,timers",
                         "-p", "connections=8", "-p", "count=20000",
                         "-p", "samples=5", *SHORT)
    assert r.returncode == 0, r.stderr
    status = {c["scenario"]: c["status"] for c in cells}
    assert status == {"tcp_echo": "ok", "rpc_fanout": "unsupported",
                      "timers": "unsupported"}, cells
