"""Tests of `axbench report` and `axbench record`: the HTML page and the
Markdown summary built from a real run, a conformance matrix, a baseline
and a history database; that the page is self-contained; that it loads in
headless chromium (Debian's package) with no console error and with every
section present; and bad input.

The binary comes from AXBENCH (default build/axbench). The report goes
through `axbench report|record` when the binary forwards them, otherwise
through reports/axbench-reports. Without chromium the browser test is
skipped with a message (scripts/setup chromium installs it; CI does).
"""

import copy
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports"
LAUNCHER = REPORTS / "axbench-reports"
AXBENCH = Path(os.environ.get("AXBENCH", ROOT / "build" / "axbench"))

sys.path.insert(0, str(REPORTS))
from axreports import browser  # noqa: E402
from axreports.report import SECTIONS  # noqa: E402

SECTION_IDS = [sid for sid, _ in SECTIONS]
REQUIRED_IDS = ["answer", "summary", "throughput", "latency", "offered-load", "scaling", "cores", "cpu", "memory",
                "conformance", "ergonomics", "environment", "comparison", "history"]

pytestmark = pytest.mark.skipif(
    not (AXBENCH.is_file() and os.access(AXBENCH, os.X_OK)),
    reason=f"axbench binary not found at {AXBENCH} (build it, or set AXBENCH)")


_forwards = {}


def tool_argv(sub):
    """`axbench SUB` when the binary forwards it, else the launcher."""
    if sub not in _forwards:
        r = subprocess.run([str(AXBENCH), sub, "--help"], capture_output=True, text=True,
                           timeout=60)
        _forwards[sub] = r.returncode == 0 and "RESULTS.json" in r.stdout
    return [str(AXBENCH), sub] if _forwards[sub] else [str(LAUNCHER), sub]


def tool(sub, *args, env=None, timeout=300):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([*tool_argv(sub), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def axbench(*args, timeout=300):
    env = dict(os.environ)
    env.pop("AX_TEST_ECHO_DELAY_NS", None)
    return subprocess.run([str(AXBENCH), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def one_error_line(r):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("axbench: "), r.stderr
    return lines[0]


def available_runtimes():
    r = axbench("list")
    return [m.group(1) for m in re.finditer(r"^\s+(\S+)\s+available\b", r.stdout, re.M)]


# ---------------------------------------------------------------------------
# Inputs: a real run, a real conformance matrix, a baseline, a history

def scaled(doc, runtime, factor, commit=None, when=None):
    """A copy of a result document with one runtime's values made `factor`
    times worse (throughput divided, costs multiplied)."""
    d = copy.deepcopy(doc)
    if commit:
        d["environment"]["git"]["commit"] = commit
    if when:
        d["started_utc"] = when
    for c in d["cells"]:
        if c["runtime"] != runtime or not c.get("summary"):
            continue
        for m in c["summary"]["metrics"].values():
            f = 1 / factor if m["better"] > 0 else factor if m["better"] < 0 else 1
            m["values"] = [v * f for v in m["values"]]
            for k in ("median", "ci_low", "ci_high"):
                if isinstance(m.get(k), (int, float)):
                    m[k] *= f
    return d


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("report-e2e")
    have = available_runtimes()
    if "epoll" not in have:
        pytest.skip(f"the epoll runtime is not available here ({have})")
    other = next((rt for rt in ("libuv", "io_uring", "libevent") if rt in have), None)
    rts = ",".join(["epoll"] + ([other] if other else []))
    res = d / "results.json"
    r = axbench("run", "--runtime", rts, "--scenario", "tcp_echo,blocking_offload,ctx_switch",
                "-p", "connections=1,4", "-p", "calls=2000", "-p", "count=100000",
                "--duration", "0.3", "--warmup", "0.1", "--reps", "4", "--json", res)
    # exit 1 means some cell failed (the harness's own tests cover that); the
    # report must show such a cell, so only a run that did not finish stops us
    assert r.returncode in (0, 1) and res.is_file(), r.stderr[-3000:]
    assert json.loads(res.read_text())["status"] == "complete", r.stderr[-3000:]
    conf = d / "conform.json"
    r = axbench("conform", "--runtime", rts, "--case", "time.zero_yields", "--case",
                "time.equal_order", "--case", "tcp.eof", "--case", "tcp.short_read",
                "--case", "cancel.sleep", "--json", conf)
    assert r.returncode in (0, 1), r.stderr[-3000:]
    assert conf.is_file()
    doc = json.loads(res.read_text())
    # the baseline: the same run with epoll twice as cheap, so NEW looks
    # worse whatever spread this machine's repetitions had (the statistics
    # have their own tests in test_compare.py; this one checks the page)
    base = d / "base.json"
    base.write_text(json.dumps(scaled(doc, "epoll", 1 / 2)))
    # a history of five commits with a step: commits 4 and 5 are 30% slower
    db = d / "results.db"
    for i, factor in enumerate((1.0, 1.0, 1.0, 1.3, 1.3)):
        f = d / f"hist{i}.json"
        f.write_text(json.dumps(scaled(doc, "epoll", factor, commit=f"{i + 1:x}" * 40,
                                       when=f"2026-01-0{i + 1}T00:00:00Z")))
        r = tool("record", f, "--db", db, "--branch", "main", "--testbed", "ci-vm")
        assert r.returncode == 0, r.stderr
    return {"dir": d, "results": res, "conform": conf, "base": base, "db": db,
            "doc": doc, "other": other}


@pytest.fixture(scope="module")
def full_report(inputs):
    out = inputs["dir"] / "report"
    # the comparison's verdict must not depend on what else this machine runs
    # (interference has tests of its own in test_compare.py)
    r = tool("report", inputs["results"], "--conform", inputs["conform"], "--baseline",
             inputs["base"], "--history", inputs["db"], "--max-interference", "100%", "-o", out)
    if r.returncode == 2 and "no Python 3 interpreter" in r.stderr:
        pytest.skip(f"no Python with matplotlib: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    return out


def section_html(page, sid):
    m = re.search(rf'<section id="{re.escape(sid)}">(.*?)</section>', page, re.S)
    assert m, f"section {sid} missing"
    return m.group(1)


# ---------------------------------------------------------------------------
# The report

def test_report_has_every_section_and_is_self_contained(full_report):
    page = (full_report / "index.html").read_text()
    for sid in SECTION_IDS:
        assert page.count(f'<section id="{sid}">') == 1, sid
    assert set(REQUIRED_IDS) <= set(SECTION_IDS)
    # nothing to fetch: no script, every src/href a data: URI or an anchor
    assert "<script" not in page.lower()
    refs = re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', page)
    assert refs and all(x.startswith(("data:", "#")) for x in refs), \
        [x for x in refs if not x.startswith(("data:", "#"))][:5]
    assert not re.search(r"url\((?!\s*['\"]?(?:data:|#))", page)
    assert "http://" not in page.replace("http://www.w3.org/", "")
    assert "https://" not in page


def test_report_sections_show_the_data(full_report, inputs):
    page = (full_report / "index.html").read_text()
    charts = lambda sid: section_html(page, sid).count("<img ")  # noqa: E731
    assert charts("throughput") >= 3          # tcp_echo, blocking_offload, ctx_switch
    assert charts("latency") >= 2             # echo round trips, tick lateness
    assert charts("scaling") >= 1             # connections=1,4
    assert charts("cpu") >= 1 and charts("memory") >= 3
    assert "no open-loop data" in section_html(page, "offered-load")
    conf = section_html(page, "conformance")
    assert 'class="pass"' in conf and "time.zero_yields" in conf
    assert "no ergonomics data" in section_html(page, "ergonomics")
    env = section_html(page, "environment")
    assert inputs["doc"]["environment"]["kernel"]["release"] in env
    cmp_html = section_html(page, "comparison")
    assert 'class="worse"' in cmp_html and charts("comparison") == 1
    hist = section_html(page, "history")
    assert charts("history") >= 1 and "Step changes" in hist and "regression" in hist
    assert "ci-vm" in hist
    # runs by date and commit; a metric that never moved gets no chart
    assert "2026-01-04" in hist and "4444444" in hist
    # the step is where it was put (between commits 3 and 4), of the size
    # put there (epoll's costs x1.3: +30%), a regression, and on epoll alone
    rows = re.findall(r"<tr>(.*?)</tr>", hist.split("Step changes", 1)[1], re.S)
    steps = [re.sub(r"<[^>]+>", "|", r) for r in rows if "->" in r or "&gt;" in r]
    assert steps, hist[-3000:]
    for row in steps:
        assert "epoll" in row and "3333333" in row and "4444444" in row, row
        assert "regression" in row, row
    cpu = [r for r in steps if "server_cpu_us_per_msg" in r]
    assert cpu and all("+30.0%" in r for r in cpu), steps
    if inputs["other"]:
        assert not any(inputs["other"] in r.split("|epoll")[0] for r in steps), steps
    retrans = [v for c in inputs["doc"]["cells"] if c.get("summary")
               for v in c["summary"]["metrics"].get("tcp_retransmits", {}).get("values", [])]
    if retrans and not any(retrans):
        assert "Not drawn, the same value in every run" in hist
        assert "tcp_echo tcp_retransmits" in hist


def test_first_section_answers(full_report, inputs):
    """The page opens on the answer: the verdict against the baseline,
    conformance, and a headline table with each runtime against the
    reference on the scenario's stable figure, throughput second."""
    assert SECTION_IDS[0] == "answer"
    page = (full_report / "index.html").read_text()
    ans = section_html(page, "answer")
    # the baseline made epoll twice as cheap, so NEW is worse: the verdict says so
    assert "Against the baseline: REGRESSION" in ans
    assert "<b>worse</b>: epoll" in ans and "Server CPU per message" in ans
    assert "Conformance:" in ans
    # one headline row per scenario and parameter set, epoll the reference
    hl = re.search(r'<table class="hl">(.*?)</table>', ans, re.S)
    assert hl, "no headline table"
    rows = re.findall(r"<tr>(.*?)</tr>", hl.group(1), re.S)
    assert len(rows) == 1 + 2 + 1 + 1      # header, tcp_echo x2, blocking_offload, ctx_switch
    assert rows[1].count("reference") >= 1 and "TCP echo" in rows[1]
    assert "Context switch" in hl.group(1) and "Offloaded blocking calls" in hl.group(1)
    if inputs["other"]:
        # the other runtime as a ratio of epoll's figure with a CI
        assert re.search(r"\d\.\d\d\u00d7</b>", hl.group(1)), hl.group(1)[:2000]
    # human titles, not metric ids, in the headline
    assert "server_cpu_us_per_msg" not in hl.group(1) and "switch_ns" not in hl.group(1)


def test_unsupported_cells_are_one_line_per_runtime(inputs, tmp_path):
    doc = copy.deepcopy(inputs["doc"])
    base = next(c for c in doc["cells"] if c["runtime"] == "epoll")
    for sc in ("http_plaintext", "file_read", "spawn_join"):
        c = copy.deepcopy(base)
        c.update({"runtime": "native-epoll", "runtime_kind": "reference", "scenario": sc,
                  "status": "unsupported", "summary": None, "reps": [], "id": f"u-{sc}",
                  "message": "reference native-epoll implements only its own scenarios"})
        doc["cells"].append(c)
    res = tmp_path / "unsup.json"
    res.write_text(json.dumps(doc))
    out = tmp_path / "unsup-report"
    r = tool("report", res, "-o", out)
    assert r.returncode == 0, r.stderr
    page = (out / "index.html").read_text()
    ans = section_html(page, "answer")
    line = re.search(r"<li><b>native-epoll</b>: ([^<]*)</li>", ans)
    assert line and "http_plaintext, file_read, spawn_join" in line.group(1), ans[-1500:]
    assert "implements only its own scenarios" in line.group(1)
    cells = section_html(page, "summary")
    assert "<td>unsupported</td>" not in cells       # no row per unsupported cell
    md = (out / "summary.md").read_text()
    assert "- native-epoll: http_plaintext, file_read, spawn_join" in md


def test_headline_flags_bimodal_and_loadgen_bound(inputs, tmp_path):
    doc = copy.deepcopy(inputs["doc"])
    other = inputs["other"]
    if not other:
        pytest.skip("one runtime only: no ratio to flag")
    for c in doc["cells"]:
        if c["runtime"] == other and c["scenario"] == "tcp_echo" and c.get("summary"):
            m = c["summary"]["metrics"]["server_cpu_us_per_msg"]
            med = m["median"]
            m["values"] = [med, med * 1.02] + [med * 2.2] * (len(m["values"]) - 2)
            c["summary"]["loadgen_saturated"] = True
    res = tmp_path / "flags.json"
    res.write_text(json.dumps(doc))
    out = tmp_path / "flags-report"
    r = tool("report", res, "-o", out)
    assert r.returncode == 0, r.stderr
    hl = section_html((out / "index.html").read_text(), "answer")
    assert 'class="flag bimodal"' in hl and 'class="flag lg"' in hl


def test_step_changes_known_answers():
    """Where a step is and how big, on series with known answers."""
    from axreports import history
    assert history.step_changes([10, 10, 10, 13, 13], 0.03) == [(3, pytest.approx(0.3))]
    assert history.step_changes([10, 10, 10, 7, 7, 7], 0.03) == [(3, pytest.approx(-0.3))]
    # below the floor: no step, however clean
    assert history.step_changes([10, 10, 10, 10.2, 10.2], 0.03) == []
    # one odd run is not a step, nor is the newest run alone
    assert history.step_changes([10, 10, 13, 10, 10], 0.03) == []
    assert history.step_changes([10, 10, 10, 10, 13], 0.03) == []
    # overlapping windows: noise, not a step
    assert history.step_changes([10, 12, 9, 12, 10, 13], 0.03) == []
    # two steps far apart are both found; neighbours keep the largest
    assert [i for i, _ in history.step_changes([5, 5, 5, 8, 8, 8, 12, 12, 12], 0.03)] == [3, 6]


def test_summary_markdown(full_report, inputs):
    md = (full_report / "summary.md").read_text()
    assert md.startswith("# axbench report")
    # the answer first: verdict and headline table before the cells
    assert md.index("Against the baseline: REGRESSION") < md.index("## Cells")
    assert md.index("| scenario | leads with |") < md.index("## Cells")
    assert "| runtime | scenario | params | status |" in md
    assert "## Conformance" in md and "## Comparison with the baseline" in md
    assert "**worse**: epoll" in md
    assert "## History" in md and "step change" in md and "**regression**" in md
    assert "## Environment" in md and "index.html" in md


def test_report_opens_in_headless_chromium(full_report, inputs):
    if browser.find_chromium() is None:
        pytest.skip("chromium is not installed: `scripts/setup chromium` installs Debian's "
                    "package (CI does); skipping the browser check")
    shot = inputs["dir"] / "report.png"
    out = browser.inspect_page(full_report / "index.html", screenshot=shot, timeout=90)
    assert out["problems"] == [], out["problems"]
    ids = [s["id"] for s in out["facts"]["sections"]]
    assert ids == SECTION_IDS
    assert all(s["height"] > 20 for s in out["facts"]["sections"])
    imgs = out["facts"]["images"]
    assert imgs and all(i["ok"] for i in imgs), [i for i in imgs if not i["ok"]][:3]
    assert shot.stat().st_size > 10000
    keep = os.environ.get("AXBENCH_SCREENSHOT_DIR")
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report.png")
        shutil.copytree(full_report, Path(keep) / "report", dirs_exist_ok=True)


def test_report_without_optional_inputs_says_so(inputs):
    out = inputs["dir"] / "plain"
    r = tool("report", inputs["results"], "-o", out)
    assert r.returncode == 0, r.stderr
    page = (out / "index.html").read_text()
    assert "no conformance matrix given" in section_html(page, "conformance")
    assert "no baseline given" in section_html(page, "comparison")
    assert "no history given" in section_html(page, "history")
    for sid in SECTION_IDS:
        assert f'<section id="{sid}">' in page


def test_conformance_file_of_the_old_header_is_read(inputs):
    """Conformance files written before the common result-file header say
    "version" where they now say "schema_version"; both are read."""
    doc = json.loads(inputs["conform"].read_text())
    assert doc["schema_version"] == 1 and "version" not in doc
    old = dict(doc)
    old["version"] = old.pop("schema_version")
    path = inputs["dir"] / "conform-old.json"
    path.write_text(json.dumps(old))
    out = inputs["dir"] / "old-conform"
    r = tool("report", inputs["results"], "--conform", path, "-o", out)
    assert r.returncode == 0, r.stderr
    page = (out / "index.html").read_text()
    assert "no conformance matrix given" not in section_html(page, "conformance")


def test_open_loop_and_ergonomics_data_are_drawn(inputs):
    if re.search(r"^\s+rate\s+int\b", axbench("list").stdout, re.M):
        # the load generator's open loop at two offered rates
        res = inputs["dir"] / "open.json"
        rts = ",".join(["epoll"] + ([inputs["other"]] if inputs["other"] else []))
        r = axbench("run", "--runtime", rts, "--scenario", "tcp_echo", "-p", "rate=1000,3000",
                    "-p", "connections=2", "--duration", "0.2", "--warmup", "0.1",
                    "--reps", "3", "--json", res)
        assert r.returncode in (0, 1) and res.is_file(), r.stderr[-3000:]
        doc = json.loads(res.read_text())
    else:
        # an older harness: make the echo cells look like an open-loop sweep
        doc = copy.deepcopy(inputs["doc"])
        rate = 1000
        for c in doc["cells"]:
            if c["scenario"] == "tcp_echo" and c.get("summary"):
                c["params"]["rate"] = rate
                rate *= 2
    doc["ergonomics"] = {"epoll": {"lines": 41, "concepts": 5, "callbacks": 0},
                         "native-epoll": {"lines": 212, "concepts": 11, "callbacks": 6}}
    res = inputs["dir"] / "open-ergo.json"
    res.write_text(json.dumps(doc))
    out = inputs["dir"] / "open-report"
    r = tool("report", res, "-o", out)
    assert r.returncode == 0, r.stderr
    page = (out / "index.html").read_text()
    sec = section_html(page, "offered-load")
    assert sec.count("<img ") >= 1 and "rate sustained" in sec
    ergo = section_html(page, "ergonomics")
    assert "native-epoll" in ergo and "callbacks" in ergo and "212" in ergo


def test_ergonomics_table_from_axbench_ergo(inputs):
    # the shape `axbench ergo --json` writes (docs/ergonomics.md)
    ergo = {"schema": "axbench-ergo", "schema_version": 1, "rows": [
        {"scenario": "tcp_echo", "implementation": "ax", "kind": "ax", "engine": None,
         "sources": [{"path": "scenarios/tcp_echo.c"}], "loc": 79, "functions": 2,
         "callbacks": [], "tasks": ["echo_conn_main"], "api_identifiers": ["ax_read"],
         "api_count": 10},
        {"scenario": "tcp_echo", "implementation": "native-libuv", "kind": "native",
         "engine": "libuv", "loc": 140, "functions": 8,
         "callbacks": ["on_read", "on_write", "on_alloc", "on_conn", "on_close"],
         "tasks": [], "api_count": 23}],
        "abstraction_cost": [{"scenario": "tcp_echo", "engine": "libuv",
                              "throughput_ratio": 0.97}]}
    path = inputs["dir"] / "ergo.json"
    path.write_text(json.dumps(ergo))
    out = inputs["dir"] / "ergo-report"
    r = tool("report", inputs["results"], "--ergo", path, "-o", out)
    assert r.returncode == 0, r.stderr
    sec = section_html((out / "index.html").read_text(), "ergonomics")
    assert "native-libuv" in sec and "on_alloc" in sec and "Cost of the abstraction" in sec
    assert "sources" not in sec
    assert "not an axbench ergonomics table" in one_error_line(
        tool("report", inputs["results"], "--ergo", inputs["conform"], "-o", out))


def test_report_bad_input(inputs, tmp_path):
    res = inputs["results"]
    one_error_line(tool("report", res))                          # no -o
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    assert "not valid JSON" in one_error_line(tool("report", res, "--conform", bad, "-o",
                                                   tmp_path / "o"))
    assert "not a conformance" in one_error_line(tool("report", res, "--conform", res, "-o",
                                                      tmp_path / "o"))
    v2 = tmp_path / "v2.json"
    d = json.loads(res.read_text())
    d["schema_version"] = 2
    v2.write_text(json.dumps(d))
    assert "schema version 2" in one_error_line(tool("report", v2, "-o", tmp_path / "o"))
    assert "does not exist" in one_error_line(tool("report", res, "--history",
                                                   tmp_path / "none.db", "-o", tmp_path / "o"))
    notdir = tmp_path / "file"
    notdir.write_text("x")
    one_error_line(tool("report", res, "-o", notdir))


# ---------------------------------------------------------------------------
# record

def test_record_appends_once_per_file(inputs, tmp_path):
    db = tmp_path / "r.db"
    r = tool("record", inputs["results"], "--db", db, "--branch", "feature-x",
             "--testbed", "box1")
    assert r.returncode == 0, r.stderr
    assert "as run 1" in r.stderr
    r = tool("record", inputs["results"], "--db", db)
    assert r.returncode == 0 and "already recorded" in r.stderr
    con = sqlite3.connect(db)
    runs = con.execute("SELECT commit_id, branch, testbed, time_utc FROM runs").fetchall()
    assert runs == [(inputs["doc"]["environment"]["git"]["commit"], "feature-x", "box1",
                     inputs["doc"]["started_utc"])]
    ncells = con.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
    assert ncells == len(inputs["doc"]["cells"])
    med = con.execute("SELECT median FROM metrics WHERE metric = 'throughput' LIMIT 1").fetchone()
    assert med and med[0] > 0
    con.close()


def test_record_default_testbed_and_branch(inputs, tmp_path):
    db = tmp_path / "d.db"
    r = tool("record", inputs["results"], "--db", db,
             env={"AXBENCH_BRANCH": "from-env", "AXBENCH_TESTBED": ""})
    assert r.returncode == 0, r.stderr
    con = sqlite3.connect(db)
    branch, testbed = con.execute("SELECT branch, testbed FROM runs").fetchone()
    con.close()
    assert branch == "from-env"
    assert testbed == inputs["doc"]["environment"]["hostname"]


def test_record_bad_input(inputs, tmp_path):
    one_error_line(tool("record", inputs["conform"], "--db", tmp_path / "x.db"))
    notdb = tmp_path / "not.db"
    notdb.write_text("this is not sqlite " * 100)
    assert "not an axbench history database" in one_error_line(
        tool("record", inputs["results"], "--db", notdb))
