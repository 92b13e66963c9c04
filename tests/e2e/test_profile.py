"""Instructions by function: `axbench run --measure instructions
--profile-functions DIR` keeps callgrind's output and writes, per cell, each
function's instructions per operation (docs/profiles.md). The tables must
add up: per callgrind file, the self costs sum to callgrind's total; per
cell, the per-operation self costs sum to the cell's instructions per
operation, which is the figure instructions mode reports; no function's
inclusive cost exceeds the total; the functions named are the binary's;
and across a task switch the inclusive cost of ax_yield is the switch (the
figure callgrind's own inclusive costs get wrong, above 100%).

The parser is also checked on a small hand-written file in callgrind's
format: name compression, relative addresses and a resumption that
callgrind records as a call.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXBENCH = os.environ.get("AXBENCH", str(ROOT / "build" / "axbench"))
sys.path.insert(0, str(ROOT / "reports"))
from axreports import functions  # noqa: E402

needs_axbench = pytest.mark.skipif(
    not os.path.exists(AXBENCH), reason=f"axbench not built at {AXBENCH} (build it, or set AXBENCH)")
needs_valgrind = pytest.mark.skipif(
    shutil.which("valgrind") is None,
    reason="valgrind not installed (scripts/setup installs it): the profile runs under callgrind")


def _nm_names(binary):
    out = subprocess.run(["nm", binary], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        pytest.skip(f"nm cannot read {binary}: {out.stderr.strip()}")
    return {line.split()[-1] for line in out.stdout.splitlines() if line.strip()}


@needs_axbench
@needs_valgrind
def test_profile_tables_add_up(tmp_path):
    prof = tmp_path / "prof"
    res = tmp_path / "instr.json"
    r = subprocess.run(
        [AXBENCH, "run", "--measure", "instructions", "--runtime", "epoll,native-epoll",
         "--scenario", "ctx_switch,timers:fire,tcp_echo", "-p", "count=2000",
         "-p", "tasks=100", "--messages", "1000", "--reps", "1",
         "--profile-functions", str(prof), "--top", "100000", "--json", str(res)],
        capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    doc = json.loads(res.read_text())
    per_op = {(c["runtime"], c["scenario"]):
              c["summary"]["metrics"]["instructions_per_op" if c["kind"] == "local"
                                      else "instructions_per_msg"]["median"]
              for c in doc["cells"]}
    # ctx_switch has no native version; the others are counted on both
    assert set(per_op) == {("epoll", "ctx_switch"), ("epoll", "timers:fire"),
                           ("native-epoll", "timers:fire"), ("epoll", "tcp_echo"),
                           ("native-epoll", "tcp_echo")}, per_op
    assert (prof / "index.md").is_file()
    fdoc = json.loads((prof / "functions.json").read_text())
    assert fdoc["schema"] == "axbench-functions" and len(fdoc["cells"]) == 5
    names = _nm_names(AXBENCH)
    by_key = {}
    for cell in fdoc["cells"]:
        key = (cell["runtime"], cell["scenario"])
        by_key[key] = cell
        assert (prof / cell["table"]).is_file()
        # callgrind's total is the sum of the self costs, file by file
        for f in cell["files"]:
            assert f["total"] == f["self_sum"], f
        total = cell["instructions_per_op"]
        assert total == pytest.approx(per_op[key], rel=1e-9), key
        fs = cell["functions"]
        assert sum(f["self"] for f in fs) == pytest.approx(total, rel=1e-9), key
        # (a server's figures are differences of two runs: what does not
        # grow with the messages comes out a hair above or below zero)
        slack = total * (0.01 if cell["kind"] == "net" else 1e-3)
        for f in fs:
            assert f["inclusive"] <= total + slack, (key, f)
            assert f["self"] <= f["inclusive"] + slack, (key, f)
        # the heaviest functions of the binary itself are its symbols
        # (static ones carry gcc's .isra/.constprop suffixes in nm too)
        # ("(below main)" is callgrind's name for what runs before main)
        own = [f for f in fs if os.path.basename(f["object"]) == "axbench"
               and f["self"] > 0 and not f["function"].startswith("(")][:5]
        assert own, key
        for f in own:
            assert f["function"] in names, (key, f["function"])
    # a switch: one ax__ctx_switch per yield, and ax_yield's inclusive
    # cost is nearly all of the operation's (the rest: spawn and join)
    sw = {f["function"]: f for f in by_key[("epoll", "ctx_switch")]["functions"]}
    total = by_key[("epoll", "ctx_switch")]["instructions_per_op"]
    assert 0.95 <= sw["ax__ctx_switch"]["calls"] <= 1.2, sw["ax__ctx_switch"]
    assert 0.8 * total <= sw["ax_yield"]["inclusive"] <= total, (sw["ax_yield"], total)
    assert by_key[("epoll", "ctx_switch")]["inclusive_method"] == "per-call"
    # the native echo never switches: callgrind's own inclusive costs stand
    assert by_key[("native-epoll", "tcp_echo")]["inclusive_method"] == "callgrind"
    # the tables can be rebuilt with another length
    r = subprocess.run([AXBENCH, "functions", str(prof), "--top", "3"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    cell = json.loads((prof / by_key[("epoll", "ctx_switch")]["table"])
                      .with_suffix(".json").read_text())
    assert len(cell["functions"]) == 3
    assert "| switch |" in (prof / "index.md").read_text()
    # the report shows them: the matrix in summary.md, a section per cell
    out = tmp_path / "report"
    r = subprocess.run([AXBENCH, "report", str(res), "--functions", str(prof), "-o", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    md = (out / "summary.md").read_text()
    assert "## Instructions per operation" in md and "| timer arm+fire |" in md
    page = (out / "index.html").read_text()
    sec = page.split('id="functions"', 1)[1].split("</section>", 1)[0]
    assert sec.count("<details>") == 5 and f"<td>{cell['functions'][0]['function']}</td>" in sec


@needs_axbench
def test_functions_bad_input(tmp_path):
    r = subprocess.run([AXBENCH, "functions", str(tmp_path / "missing")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "cells.json" in r.stderr, r.stderr
    (tmp_path / "cells.json").write_text("{\"schema\": \"other\"}")
    r = subprocess.run([AXBENCH, "functions", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "axbench-profile-input" in r.stderr, r.stderr
    r = subprocess.run([AXBENCH, "run", "--measure", "instructions", "--scenario",
                        "timers:nosuch"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "nosuch" in r.stderr, r.stderr


# main calls run (at 0x100) and work (0x200); a task switch (ax__ctx_switch,
# at 0x300) resumes another task inside work at 0x210, which callgrind
# records as a call from ax__ctx_switch and as a call from run into work
# arriving at 0x150: neither is a call.
SAMPLE = """# callgrind format
version: 1
positions: instr line
events: Ir
summary: 695

ob=(1) /bin/prog
fl=(1) prog.c
fn=(1) main
0x10 1 10
cfn=(2) run
calls=1 0x100 5
+2 * 990
fn=(2)
0x100 5 20
+4 * 5
cfn=(3) work'2
calls=4 0x200 8
* * 800
cfn=(3)
calls=2 +76 9
* * 300
fn=(3)
0x200 8 600
+16 * 20
cfn=(4) ax__ctx_switch
calls=4 0x300 3
* * 200
fn=(4)
0x300 3 40
cfn=(3)
calls=4 0x210 8
* * 100
totals: 695
"""


def test_parser_names_addresses_and_resumptions(tmp_path):
    path = tmp_path / "sample.callgrind"
    path.write_text(SAMPLE)
    p = functions.parse_callgrind(str(path))
    assert p.total == 695
    main, run = ("/bin/prog", "main"), ("/bin/prog", "run")
    work, sw = ("/bin/prog", "work"), ("/bin/prog", "ax__ctx_switch")
    # "work'2" (callgrind's recursion level) is work; (3) resolves to it
    assert p.self_cost == {main: 10, run: 25, work: 620, sw: 40}
    assert sum(p.self_cost.values()) == p.total
    assert p.low[work] == 0x200
    # a relative target counts from the last cost line (0x104), and a
    # target does not move it
    assert p.targets[(run, work)] == {0x200: 4, 0x104 + 76: 2}
    assert not functions._measured(p)
    attr = functions.attribute(p.self_cost, functions.real_calls(p), False)
    # the two resumptions are dropped: run called work 4 times, nobody else
    assert attr[work]["calls"] == 4 and attr[run]["calls"] == 1
    # work: self + its calls into the switch (40 per call, 4 calls)
    assert attr[work]["inclusive"] == 620 + 40
    assert attr[run]["inclusive"] == 25 + 660
    assert attr[main]["inclusive"] == 10 + 685 == p.total
    assert attr[work]["switches"] and attr[main]["switches"]


def test_parser_refuses_what_is_not_callgrind(tmp_path):
    bad = tmp_path / "bad.callgrind"
    bad.write_text("events: Ir\nfn=(1) f\n12 x\n")
    with pytest.raises(functions.InputError, match="bad.callgrind:3"):
        functions.parse_callgrind(str(bad))
    bad.write_text("events: Ir\nfn=(7)\n")
    with pytest.raises(functions.InputError, match="before its definition"):
        functions.parse_callgrind(str(bad))
    bad.write_text("# not a profile\n")
    with pytest.raises(functions.InputError, match="no totals"):
        functions.parse_callgrind(str(bad))
