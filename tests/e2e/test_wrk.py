"""Cross-check of axbench's load generator against an outside tool: the
requests per second that `axbench load` and Debian's `wrk` measure on the
same `http_plaintext` server (`axbench serve --runtime epoll`), with the
same connection count and the same pinning (server on the first allowed
CPU, client on the second), must agree within 15%.

The comparison runs at pipeline 1: one request in flight per connection,
plain wrk, the same discipline on both sides. The two clients run
alternately, three times each, and the medians are compared, so that a
slow drift of the shared machine hits both alike; when the comparison fails
it is repeated once (noise from other work on the machine), a systematic
disagreement fails both.

Pipelined (16 deep, wrk with tests/e2e/wrk_pipeline.lua) the server must
serve wrk correctly too, but the request rates are not expected to agree:
wrk writes a batch of 16 and waits for all 16 responses before the next
batch, axbench refills each connection as responses arrive and keeps 16 in
flight; on the 2-vCPU VM neither client nor server then saturates its CPU
(the cross-CPU wake-ups set the pace), so the discipline decides the rate
(measured: axbench 1.17M req/s, wrk 0.96-1.03M). That test records both
figures and checks only correctness.

The figures are printed (pytest -s) and written to
$AXBENCH_FIGURES_DIR/wrk.json (default /tmp/axbench-figures).
"""

import json
import os
import re
import shutil
import statistics
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXBENCH = Path(os.environ.get("AXBENCH", ROOT / "build" / "axbench"))
FIGURES = Path(os.environ.get("AXBENCH_FIGURES_DIR", "/tmp/axbench-figures"))
LUA = Path(__file__).with_name("wrk_pipeline.lua")
WRK = shutil.which("wrk")
TASKSET = shutil.which("taskset")
CONNECTIONS = 64
SECONDS = 2          # wrk takes whole seconds
TOLERANCE = 0.15

pytestmark = [
    pytest.mark.skipif(not (AXBENCH.is_file() and os.access(AXBENCH, os.X_OK)),
                       reason=f"axbench binary not found at {AXBENCH} (build it, or set AXBENCH)"),
    pytest.mark.skipif(WRK is None or TASKSET is None, reason="wrk or taskset is not installed"),
    pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs"),
]


@pytest.fixture(scope="module")
def server():
    """`axbench serve` of http_plaintext on epoll, pinned to the first CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    p = subprocess.Popen([str(AXBENCH), "serve", "--runtime", "epoll", "--scenario",
                          "http_plaintext", "--cpu", str(cpus[0])],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stderr.readline()
    m = re.search(r"127\.0\.0\.1:(\d+)", line)
    if not m:
        p.kill()
        pytest.fail(f"axbench serve did not start: {line}")
    yield {"port": int(m.group(1)), "client_cpu": cpus[1]}
    p.terminate()
    out, _ = p.communicate(timeout=10)
    # the server checked every request it got
    assert json.loads(out)["metrics"]["bad_requests"]["value"] == 0


def axbench_rps(srv, pipeline):
    r = subprocess.run([str(AXBENCH), "load", "--scenario", "http_plaintext", "--target",
                        f"127.0.0.1:{srv['port']}", "--cpu", str(srv["client_cpu"]),
                        "-p", f"connections={CONNECTIONS}", "-p", f"pipeline={pipeline}",
                        "--duration", str(SECONDS), "--warmup", "0.3"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["check"]["passed"]
    return j["measured"]["throughput_msgs_s"], j["saturated"]


def wrk_rps(srv, pipeline):
    cmd = [TASKSET, "-c", str(srv["client_cpu"]), WRK, "-t1", f"-c{CONNECTIONS}",
           f"-d{SECONDS}s"]
    env = dict(os.environ)
    if pipeline > 1:
        cmd += ["-s", str(LUA)]
        env["WRK_PIPELINE"] = str(pipeline)
    cmd.append(f"http://127.0.0.1:{srv['port']}/plaintext")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert "Non-2xx" not in r.stdout and "Socket errors" not in r.stdout, r.stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", r.stdout).group(1))


def save_figures(key, figures):
    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / "wrk.json"
    doc = json.loads(path.read_text()) if path.exists() else {}
    doc[key] = figures
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(path)


@pytest.mark.skipif(os.environ.get("AXBENCH_MEASURE") != "1",
                    reason="a wall-clock comparison of two load generators: run it on a quiet "
                           "machine with AXBENCH_MEASURE=1 (when both clients, not the server, "
                           "are the bottleneck it compares the clients; seen 0.7-21% apart on "
                           "the shared development VMs)")
def test_axbench_and_wrk_agree(server):
    pipeline, rounds = 1, 3
    attempts = []
    for _attempt in range(2):
        ax, wk, sat = [], [], False
        for _ in range(rounds):
            rps, s = axbench_rps(server, pipeline)
            ax.append(rps)
            sat |= s
            wk.append(wrk_rps(server, pipeline))
        a, w = statistics.median(ax), statistics.median(wk)
        diff = abs(a - w) / max(a, w)
        attempts.append({"axbench_rps": ax, "wrk_rps": wk, "axbench_median": a,
                         "wrk_median": w, "difference": diff,
                         "axbench_loadgen_saturated": sat})
        if diff <= TOLERANCE:
            break
    assert attempts[-1]["difference"] <= TOLERANCE, attempts
    last = attempts[-1]
    print(f"\nhttp_plaintext pipeline={pipeline} connections={CONNECTIONS}: "
          f"axbench {last['axbench_median']:,.0f} req/s, wrk {last['wrk_median']:,.0f} req/s "
          f"({last['difference']:.1%} apart)")
    save_figures(f"pipeline={pipeline}", {
        "server": "axbench serve --runtime epoll --scenario http_plaintext --cpu 0",
        "axbench": f"axbench load --scenario http_plaintext --target 127.0.0.1:PORT "
                   f"--cpu 1 -p connections={CONNECTIONS} -p pipeline={pipeline} "
                   f"--duration {SECONDS} --warmup 0.3",
        "wrk": f"taskset -c 1 wrk -t1 -c{CONNECTIONS} -d{SECONDS}s"
               + (f" -s tests/e2e/wrk_pipeline.lua (WRK_PIPELINE={pipeline})"
                  if pipeline > 1 else "") + " http://127.0.0.1:PORT/plaintext",
        "attempts": attempts})


def test_pipelined_wrk_is_served(server):
    """wrk pipelining 16 deep gets only 200 responses (wrk_rps checks for
    non-2xx and socket errors); both rates are recorded, not compared."""
    a, sat = axbench_rps(server, 16)
    w = wrk_rps(server, 16)
    assert a > 0 and w > 0
    print(f"\nhttp_plaintext pipeline=16 connections={CONNECTIONS}: axbench {a:,.0f} req/s "
          f"(keeps 16 in flight{', load generator saturated' if sat else ''}), "
          f"wrk {w:,.0f} req/s (batches of 16)")
    save_figures("pipeline=16", {"axbench_rps": a, "wrk_rps": w,
                                 "axbench_loadgen_saturated": sat})
