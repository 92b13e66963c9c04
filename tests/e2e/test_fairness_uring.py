"""The fairness finding (docs/decisions.md, "io_uring: writes through the
ring, or sent at once"), as counts that do not depend on the machine's
speed: next to a CPU-bound task, the io_uring driver with write=ring
delivers two completions per echoed message (the read's CQE and the
write's), each reaped by a poll that waits for the hog's slice; with
write=now the write finishes inside the task (send(2)) and a message
costs one completion, as on epoll. AX_IO_URING_FLAGS reaches the server
child.
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
    reason=f"axbench binary not found at {AXBENCH} (build it, or set AXBENCH)")


def fairness(tmp_path, runtime, flags):
    out = tmp_path / f"{runtime}-{flags or 'default'}.json"
    env = dict(os.environ)
    env.pop("AX_IO_URING_FLAGS", None)
    if flags:
        env["AX_IO_URING_FLAGS"] = flags
    r = subprocess.run([str(AXBENCH), "run", "--runtime", runtime, "--scenario", "fairness",
                        "-p", "yield_every=100us", "--duration", "300ms", "--warmup", "100ms",
                        "--reps", "1", "--json", str(out)],
                       capture_output=True, text=True, timeout=120, env=env)
    if r.returncode != 0 and "not available" in r.stderr:
        pytest.skip(f"{runtime} is not available here")
    assert r.returncode == 0, r.stderr
    cell = json.loads(out.read_text())["cells"][0]
    assert cell["status"] == "ok", cell.get("message")
    m = {k: v["median"] for k, v in cell["summary"]["metrics"].items()}
    info = cell["reps"][0]["server"]["engine_info"]
    return m["events_per_iteration"] * m["loop_iterations_per_msg"], info


def test_completions_per_message(tmp_path):
    ring, info_ring = fairness(tmp_path, "io_uring", None)
    now, info_now = fairness(tmp_path, "io_uring", "write=now")
    ep, _ = fairness(tmp_path, "epoll", None)
    assert "write=ring" in info_ring and "write=now" in info_now
    # write=ring: a read CQE and a write CQE per message
    assert 1.7 <= ring <= 2.3, ring
    # write=now: the write is done in the task; only the read completes
    assert 0.7 <= now <= 1.3, now
    assert 0.7 <= ep <= 1.3, ep
