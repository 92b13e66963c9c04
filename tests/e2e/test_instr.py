"""Instructions mode: `axbench run --measure instructions` counts the
instructions of each user-space scenario's fixed workload under callgrind;
two repetitions must agree within 0.5% (issue 6), and the result file must
have the schema `axbench compare` reads."""
import json
import os
import shutil
import subprocess

import pytest

AXBENCH = os.environ.get("AXBENCH", "build/axbench")

pytestmark = [
    pytest.mark.skipif(not os.path.exists(AXBENCH), reason="axbench not built"),
    pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed"),
]


def test_instruction_counts_repeat(tmp_path):
    out = tmp_path / "instr.json"
    r = subprocess.run(
        [AXBENCH, "run", "--measure", "instructions", "--runtime", "epoll",
         "--scenario", "spawn_join,chan_pingpong,timers", "--reps", "2",
         "-p", "count=20000", "--json", str(out)],
        capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc["schema"] == "axbench-results" and doc["schema_version"] == 1
    assert doc["measure"] == "instructions"
    assert len(doc["cells"]) == 3
    for cell in doc["cells"]:
        assert cell["status"] == "ok", cell
        m = cell["summary"]["metrics"]["instructions_per_op"]
        assert m["unit"] == "instructions" and m["better"] == -1
        a, b = m["values"]
        # a real workload, counted: at least a switch's worth per op
        assert a > 50, cell["id"]
        assert abs(a - b) / a < 0.005, (cell["id"], a, b)


def test_bad_measure_is_one_line():
    r = subprocess.run([AXBENCH, "run", "--measure", "cycles"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "measure" in r.stderr


def test_scenario_without_workload_is_rejected():
    r = subprocess.run([AXBENCH, "run", "--measure", "instructions",
                        "--scenario", "tcp_echo"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "instructions workload" in r.stderr
