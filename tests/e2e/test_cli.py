"""End-to-end tests of the axbench command line: list, run (result file,
aggregation, watchdog), serve, load, and bad input.

The binary comes from the AXBENCH environment variable (default:
build/axbench under the repository root); without it every test is skipped
with a message saying so. Fault injection uses the test-only hooks
AXBENCH_TEST_FAULT and AXBENCH_TEST_UNAVAILABLE (docs/harness.md).
"""

import calendar
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXBENCH = Path(os.environ.get("AXBENCH", ROOT / "build" / "axbench"))

pytestmark = pytest.mark.skipif(
    not (AXBENCH.is_file() and os.access(AXBENCH, os.X_OK)),
    reason=f"axbench binary not found at {AXBENCH} (build it, or set AXBENCH)",
)

# Short phases keep every run to a fraction of a second per cell.
SHORT = ["--duration", "0.3s", "--warmup", "0.1s"]


def axbench(*args, env=None, timeout=120, cwd=None):
    full_env = dict(os.environ)
    full_env.pop("AXBENCH_TEST_FAULT", None)
    full_env.pop("AXBENCH_TEST_UNAVAILABLE", None)
    if env:
        full_env.update(env)
    return subprocess.run(
        [str(AXBENCH), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd,
    )


def cells_by(doc, runtime):
    return [c for c in doc["cells"] if c["runtime"] == runtime]


def assert_percentiles_ordered(lat):
    assert lat["count"] > 0
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"]
    assert lat["p99"] <= lat["p99_9"] <= lat["p99_99"] <= lat["max"]


# ---------------------------------------------------------------------------
# list


def test_list_shows_runtimes_references_and_scenarios():
    r = axbench("list")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "runtimes:" in out
    assert "reference implementations:" in out
    assert "scenarios:" in out
    assert re.search(r"^\s+epoll\s+(available|unavailable)", out, re.M)
    assert re.search(r"^\s+blocking\s+available", out, re.M)
    assert "features:" in out
    # a scenario with its parameters, defaults and help
    assert re.search(r"^\s+tcp_echo\s", out, re.M)
    assert re.search(r"connections\s+int\s+default \d+", out)
    assert re.search(r"size\s+bytes\s+default", out)


def test_list_json_is_machine_readable():
    r = axbench("list", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    names = {rt["name"] for rt in doc["runtimes"]}
    assert "epoll" in names
    assert any(ref["name"] == "blocking" for ref in doc["references"])
    echo = next(s for s in doc["scenarios"] if s["name"] == "tcp_echo")
    assert echo["kind"] == "net" and echo["protocol"] == "echo"
    params = {p["name"]: p for p in echo["params"]}
    assert {"connections", "size", "duration", "warmup"} <= set(params)
    assert all(p["help"] for p in echo["params"])


# ---------------------------------------------------------------------------
# run: the result file


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "short.json"
    t0 = time.monotonic()
    wall0 = time.time()
    r = axbench(
        "run", "--runtime", "epoll,blocking", *SHORT, "--reps", "2",
        "-p", "connections=1,4", "--json", str(out),
    )
    elapsed = time.monotonic() - t0
    SHORT_RUN_WALL[:] = [wall0, time.time()]
    return r, out, elapsed


SHORT_RUN_WALL = []


def cmake_cache():
    """The CMake cache of the build the binary comes from ({} if none)."""
    path = AXBENCH.parent / "CMakeCache.txt"
    cache = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*):[A-Z]+=(.*)$", line)
            if m:
                cache[m.group(1)] = m.group(2)
    return cache


def git_out(src, *args):
    r = subprocess.run(["git", "-C", src, *args], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def test_run_exits_cleanly_and_prints_a_summary(short_run):
    r, out, elapsed = short_run
    assert r.returncode == 0, r.stderr
    assert "cost median [CI]" in r.stdout
    assert re.search(r"^epoll\s+tcp_echo\s+connections=1\s+ok", r.stdout, re.M)
    # progress lines name the cell and give an ETA
    assert re.search(r"cell 1/8 .*epoll tcp_echo .*ETA", r.stderr)
    assert elapsed < 60


def test_run_result_file_schema(short_run):
    _, out, _ = short_run
    doc = json.loads(out.read_text())
    assert doc["schema"] == "axbench-results"
    assert doc["schema_version"] == 1
    assert doc["status"] == "complete"
    assert doc["config"]["reps"] == 2
    assert doc["config"]["pin"] == "split"
    assert doc["counts"]["reps_done"] == 8
    env = doc["environment"]
    for key in ("cpu", "kernel", "libraries", "io_uring", "build", "git",
                "time_utc", "pinning"):
        assert key in env, key
    # known answers: what this machine, this process and this build say
    cpu = env["cpu"]
    assert cpu["count"] == os.sysconf("SC_NPROCESSORS_ONLN")
    assert cpu["configured"] == os.sysconf("SC_NPROCESSORS_CONF")
    assert cpu["allowed"] == sorted(os.sched_getaffinity(0))
    assert cpu["model"] and cpu["model"] != "unknown"
    u = os.uname()
    assert env["kernel"] == {"sysname": u.sysname, "release": u.release,
                             "version": u.version, "machine": u.machine}
    assert env["hostname"] == socket.gethostname()
    pin = env["pinning"]
    assert pin["mode"] == "split"
    assert pin["server_cpu"] != pin["load_cpu"]
    assert {pin["server_cpu"], pin["load_cpu"]} <= set(cpu["allowed"])
    # written during the run (UTC, to the second)
    when = calendar.timegm(time.strptime(env["time_utc"], "%Y-%m-%dT%H:%M:%SZ"))
    wall0, wall1 = SHORT_RUN_WALL
    assert wall0 - 1 <= when <= wall1 + 1, (env["time_utc"], wall0, wall1)
    # the build and the commit it was built from
    cache = cmake_cache()
    if cache:
        assert env["build"]["build_type"] == cache["CMAKE_BUILD_TYPE"]
        assert env["build"]["sanitizers"] is (cache.get("AX_SANITIZE") == "ON")
        src = cache["CMAKE_HOME_DIRECTORY"]
        head = git_out(src, "rev-parse", "HEAD")
        if head:
            assert env["git"]["commit"] == head
            dirty = git_out(src, "status", "--porcelain", "--untracked-files=no")
            assert env["git"]["dirty"] is bool(dirty)
    assert re.fullmatch(r"[0-9a-f]{40}", env["git"]["commit"])
    # CMake's view ("GNU 12.2.0") and the compiler's own (__VERSION__)
    # name the same version
    assert env["build"]["compiler"].split()[-1] in env["build"]["compiler_version"]


def test_run_cells_have_medians_and_ordered_percentiles(short_run):
    _, out, _ = short_run
    doc = json.loads(out.read_text())
    assert len(doc["cells"]) == 4  # 2 runtimes x 2 connection counts
    seen = set()
    for cell in doc["cells"]:
        seen.add((cell["runtime"], cell["params"]["connections"]))
        assert cell["status"] == "ok", cell["message"]
        assert cell["params"]["duration"] == 300_000_000
        assert cell["params"]["warmup"] == 100_000_000
        assert len(cell["reps"]) == 2
        for rep in cell["reps"]:
            assert rep["status"] == "ok"
            assert rep["metrics"]["throughput"]["value"] > 0
            assert_percentiles_ordered(rep["latency"])
            assert rep["histogram"]["layout"] == "loglinear-v1"
            assert rep["loadgen"]["connections"] == cell["params"]["connections"]
            assert isinstance(rep["loadgen_saturated"], bool)
            assert rep["kernel_net"]["tcp_retrans_segs"] >= 0
        m = cell["summary"]["metrics"]
        # known answers for 2 repetitions: the values in repetition order,
        # their mean as the median, and [min, max] as the interval at its
        # true level 1 - 2 P(Bin(2, 1/2) = 0) = 0.5
        for name, metric in m.items():
            vals = [rep["metrics"][name]["value"] for rep in cell["reps"]]
            assert metric["n"] == 2 and metric["values"] == pytest.approx(vals), name
            assert metric["median"] == pytest.approx((vals[0] + vals[1]) / 2), name
            assert metric["ci_low"] == pytest.approx(min(vals)), name
            assert metric["ci_high"] == pytest.approx(max(vals)), name
            assert metric["ci_level"] == pytest.approx(0.5), name
            assert (metric["ci_rank_low"], metric["ci_rank_high"]) == (1, 2), name
            assert metric["unit"] == cell["reps"][0]["metrics"][name]["unit"], name
        tp = m["throughput"]
        assert tp["median"] > 0
        assert m["latency_p50"]["median"] <= m["latency_p99"]["median"]
        assert m["latency_p50"]["values"] == pytest.approx(
            [rep["latency"]["p50"] for rep in cell["reps"]])
        assert m["server_cpu_us_per_msg"]["median"] > 0
        assert m["server_maxrss_kib"]["median"] > 0
        merged = cell["summary"]["latency_merged"]
        assert_percentiles_ordered(merged)
        assert merged["count"] == sum(r["latency"]["count"] for r in cell["reps"])
    assert seen == {("epoll", 1), ("epoll", 4), ("blocking", 1), ("blocking", 4)}
    # runtime counters only exist for ax runtimes
    epoll = cells_by(doc, "epoll")[0]
    assert "loop_iterations_per_msg" in epoll["summary"]["metrics"]


def test_run_interleaves_repetitions(short_run):
    _, out, _ = short_run
    doc = json.loads(out.read_text())
    starts = sorted(
        (rep["started_utc"], rep["rep"]) for c in doc["cells"] for rep in c["reps"]
    )
    # every rep 1 starts no later than any rep 2
    first_rep2 = min(s for s, k in starts if k == 2)
    assert all(s <= first_rep2 for s, k in starts if k == 1)


def test_run_sweep_is_a_cartesian_product(tmp_path):
    out = tmp_path / "sweep.json"
    r = axbench("run", "--runtime", "epoll", "--duration", "0.1s", "--warmup",
                "0s", "--reps", "1", "-p", "connections=1,2", "-p", "size=8,1k",
                "--json", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    combos = {(c["params"]["connections"], c["params"]["size"]) for c in doc["cells"]}
    assert combos == {(1, 8), (1, 1024), (2, 8), (2, 1024)}


def test_run_http_plaintext(tmp_path):
    out = tmp_path / "http.json"
    r = axbench("run", "--runtime", "epoll,blocking", "--scenario", "http_plaintext",
                *SHORT, "--reps", "1", "-p", "connections=2", "-p", "pipeline=4",
                "--json", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    cell = cells_by(doc, "epoll")[0]
    assert cell["protocol"] == "http"
    assert cell["status"] == "ok", cell["message"]
    assert cell["summary"]["metrics"]["throughput"]["median"] > 0
    assert "throughput_mib" not in cell["summary"]["metrics"]  # no size
    assert cells_by(doc, "blocking")[0]["status"] == "unsupported"


def test_run_local_scenario(tmp_path):
    out = tmp_path / "local.json"
    r = axbench("run", "--runtime", "epoll,blocking", "--scenario", "ctx_switch",
                "--reps", "2", "-p", "count=20000", "--json", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    epoll = cells_by(doc, "epoll")[0]
    assert epoll["status"] == "ok", epoll["message"]
    assert epoll["kind"] == "local"
    assert epoll["summary"]["metrics"]["switch_ns"]["median"] > 0
    # the native reference serves only tcp_echo
    blocking = cells_by(doc, "blocking")[0]
    assert blocking["status"] == "unsupported" and blocking["reps"] == []


def test_run_pin_same_is_recorded(tmp_path):
    out = tmp_path / "same.json"
    r = axbench("run", "--pin", "same", "--duration", "0.1s", "--warmup", "0s",
                "--reps", "1", "-p", "connections=1", "--json", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    pin = doc["environment"]["pinning"]
    assert pin["mode"] == "same" and pin["server_cpu"] == pin["load_cpu"]


def test_run_default_json_path(tmp_path):
    r = axbench("run", "--duration", "0.1s", "--warmup", "0s", "--reps", "1",
                "-p", "connections=1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    files = list((tmp_path / "results").glob("*.json"))
    assert len(files) == 1
    assert json.loads(files[0].read_text())["status"] == "complete"
    assert not list((tmp_path / "results").glob("*.tmp.*"))


# ---------------------------------------------------------------------------
# run: the watchdog and failures


def test_crashing_server_is_recorded_and_the_run_goes_on(tmp_path):
    out = tmp_path / "crash.json"
    r = axbench("run", "--runtime", "epoll,blocking", *SHORT, "--reps", "1",
                "-p", "connections=2", "--json", str(out),
                env={"AXBENCH_TEST_FAULT": "server:crash@epoll"})
    assert r.returncode == 1, r.stderr
    doc = json.loads(out.read_text())
    assert doc["status"] == "complete"
    epoll = cells_by(doc, "epoll")[0]
    assert epoll["status"] == "crash"
    assert "SIGSEGV" in epoll["message"]
    assert epoll["reps"][0]["role"] == "server"
    assert epoll["summary"] is None and "metrics" not in epoll["reps"][0]
    assert cells_by(doc, "blocking")[0]["status"] == "ok"


def test_hanging_server_is_killed_and_recorded_as_timeout(tmp_path):
    out = tmp_path / "hang.json"
    t0 = time.monotonic()
    r = axbench("run", "--runtime", "epoll,blocking", *SHORT, "--reps", "1",
                "-p", "connections=2", "--timeout", "2s", "--json", str(out),
                env={"AXBENCH_TEST_FAULT": "server:hang@epoll"})
    assert time.monotonic() - t0 < 30
    assert r.returncode == 1, r.stderr
    doc = json.loads(out.read_text())
    epoll = cells_by(doc, "epoll")[0]
    assert epoll["status"] == "timeout", epoll
    assert epoll["summary"] is None
    assert cells_by(doc, "blocking")[0]["status"] == "ok"


def test_hanging_local_scenario_times_out(tmp_path):
    out = tmp_path / "hang-local.json"
    r = axbench("run", "--scenario", "ctx_switch", "--reps", "1", "--timeout",
                "1s", "-p", "count=1000", "--json", str(out),
                env={"AXBENCH_TEST_FAULT": "local:hang"})
    assert r.returncode == 1
    cell = json.loads(out.read_text())["cells"][0]
    assert cell["status"] == "timeout" and cell["reps"][0]["role"] == "local"


def test_check_failure_reports_no_numbers(tmp_path):
    out = tmp_path / "fail.json"
    r = axbench("run", *SHORT, "--reps", "2", "-p", "connections=1",
                "--json", str(out), env={"AXBENCH_TEST_FAULT": "load:fail"})
    assert r.returncode == 1
    cell = json.loads(out.read_text())["cells"][0]
    assert cell["status"] == "check_failed"
    assert "AXBENCH_TEST_FAULT" in cell["message"]
    assert cell["summary"] is None
    for rep in cell["reps"]:
        assert "metrics" not in rep and "latency" not in rep


@pytest.mark.parametrize("fault, status, role, message", [
    # a server that dies before it reports ready
    ("server-setup:noresult", "error", "server",
     "the server exited with status 0 before it reported ready"),
    ("server-setup:crash", "crash", "server", "server killed by SIGSEGV"),
    # a child whose result pipe carries no valid result
    ("server:garbage", "error", "server",
     "server wrote invalid JSON in line 2 of its result pipe: "
     "'this is not JSON'"),
    ("server:truncated", "error", "server",
     "server wrote an unfinished line 2 of its result pipe: "
     "'{\"event\":\"result\",\"check\":{\"pas'"),
    ("server:noresult", "error", "server", "server exited without a result"),
    ("server:error", "error", "server", "AXBENCH_TEST_FAULT reported an error"),
    ("load:garbage", "error", "loadgen",
     "loadgen wrote invalid JSON in line 1 of its result pipe: "
     "'this is not JSON'"),
    ("load:truncated", "error", "loadgen",
     "loadgen wrote an unfinished line 1 of its result pipe"),
    ("load:noresult", "error", "loadgen", "loadgen exited without a result"),
    ("load:error", "error", "loadgen", "AXBENCH_TEST_FAULT reported an error"),
    # the load generator crashing or hanging
    ("load:crash", "crash", "loadgen", "loadgen killed by SIGSEGV"),
    # a hang of either child stops the whole cell: a silent load generator
    # and a stalled server look alike, so the cell's timeout is reported
    ("load:hang", "timeout", "server", "the cell exceeded the timeout"),
])
def test_child_fault_modes(tmp_path, fault, status, role, message):
    """Every way a child can misbehave gives its own status and message,
    and no numbers."""
    out = tmp_path / "fault.json"
    t0 = time.monotonic()
    r = axbench("run", "--runtime", "epoll", *SHORT, "--reps", "1",
                "-p", "connections=1", "--timeout", "3s", "--json", str(out),
                env={"AXBENCH_TEST_FAULT": fault + "@epoll"})
    assert time.monotonic() - t0 < 60
    assert r.returncode == 1, r.stderr
    doc = json.loads(out.read_text())
    assert doc["status"] == "complete"
    cell = cells_by(doc, "epoll")[0]
    rep = cell["reps"][0]
    assert (cell["status"], rep["role"]) == (status, role), cell
    assert message in cell["message"], cell["message"]
    assert cell["summary"] is None
    assert "metrics" not in rep and "latency" not in rep


def test_local_child_fault_modes(tmp_path):
    out = tmp_path / "fault-local.json"
    r = axbench("run", "--scenario", "ctx_switch", "--reps", "1",
                "-p", "count=1000", "--json", str(out),
                env={"AXBENCH_TEST_FAULT": "local:garbage"})
    assert r.returncode == 1
    cell = json.loads(out.read_text())["cells"][0]
    assert cell["status"] == "error" and cell["reps"][0]["role"] == "local"
    assert "local wrote invalid JSON in line 1" in cell["message"]


def test_unavailable_runtime_skipped_under_all_error_when_named(tmp_path):
    env = {"AXBENCH_TEST_UNAVAILABLE": "libuv,io_uring,libevent"}
    r = axbench("run", "--runtime", "epoll,libuv", env=env)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0
    assert "unavailable" in r.stderr
    out = tmp_path / "all.json"
    r = axbench("run", "--runtime", "all", "--duration", "0.1s", "--warmup", "0s",
                "--reps", "1", "-p", "connections=1", "--json", str(out), env=env)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    runtimes = {c["runtime"] for c in doc["cells"]}
    assert "libuv" not in runtimes and "epoll" in runtimes and "blocking" in runtimes
    skipped = {s["name"] for s in doc["config"]["skipped_runtimes"]}
    assert "libuv" in skipped
    assert "skipping libuv" in r.stderr


def test_sigint_keeps_finished_results_and_exits_130(tmp_path):
    out = tmp_path / "int.json"
    p = subprocess.Popen(
        [str(AXBENCH), "run", "--runtime", "epoll,blocking", "--duration", "0.5s",
         "--warmup", "0s", "--reps", "5", "-p", "connections=1", "--json", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # wait until at least one repetition is in the file
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if json.loads(out.read_text())["counts"]["reps_done"] >= 1:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    doc = json.loads(out.read_text())
    assert doc["status"] == "interrupted"
    assert 1 <= doc["counts"]["reps_done"] < 10
    assert not list(tmp_path.glob("*.tmp.*"))


# ---------------------------------------------------------------------------
# bad input: one line "axbench: ...", exit 2, nothing run


@pytest.fixture
def busy_port():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]
    s.close()


BAD = {
    "unknown runtime": ["run", "--runtime", "nope"],
    "unknown runtime in a list": ["run", "--runtime", "epoll,nope"],
    "unknown scenario": ["run", "--scenario", "nope"],
    "unknown parameter": ["run", "-p", "nope=1"],
    "malformed size": ["run", "-p", "size=12q"],
    "malformed duration": ["run", "--duration", "1q"],
    "duration without unit": ["run", "-p", "duration=5"],
    "out of range": ["run", "-p", "connections=0"],
    "huge value": ["run", "-p", "connections=99999999999999999999999"],
    "empty list item": ["run", "-p", "size=1,,2"],
    "no equals": ["run", "-p", "size"],
    "bad reps": ["run", "--reps", "0"],
    "bad pin": ["run", "--pin", "diagonal"],
    "bad profile": ["run", "--profile", "slow"],
    "bad timeout": ["run", "--timeout", "soon"],
    "bad port": ["run", "--port", "70000"],
    "unknown option": ["run", "--frobnicate"],
    "missing value": ["run", "--runtime"],
    "stray argument": ["run", "extra"],
    "unwritable json": ["run", "--json", "/nonexistent/dir/out.json"],
    "json is a directory": ["run", "--json", "/"],
    "parameter of no selected scenario": ["run", "--scenario", "ctx_switch",
                                          "--duration", "1s"],
    "unknown command": ["frobnicate"],
    "serve local scenario": ["serve", "--runtime", "epoll", "--scenario",
                             "ctx_switch"],
    "load without target": ["load", "--scenario", "tcp_echo"],
    "load bad target": ["load", "--scenario", "tcp_echo", "--target", "nohost"],
    "load list value": ["load", "--scenario", "tcp_echo", "--target",
                        "127.0.0.1:9", "-p", "size=1,2"],
}


@pytest.mark.parametrize("args", list(BAD.values()), ids=list(BAD.keys()))
def test_bad_input_is_one_line_and_exit_2(args, tmp_path):
    t0 = time.monotonic()
    r = axbench(*args, cwd=tmp_path, timeout=20)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("axbench: ")
    assert r.stdout == ""
    assert time.monotonic() - t0 < 5
    assert not (tmp_path / "results").exists()  # nothing ran


@pytest.mark.parametrize("cmd", ["run", "serve"])
def test_port_in_use_is_bad_input(cmd, busy_port):
    args = [cmd, "--port", str(busy_port)]
    if cmd == "serve":
        args += ["--runtime", "epoll", "--scenario", "tcp_echo"]
    r = axbench(*args, timeout=20)
    assert r.returncode == 2
    assert r.stderr == f"axbench: port {busy_port} is in use\n"


# ---------------------------------------------------------------------------
# serve and load on their own


def test_serve_then_load_then_ctrl_c():
    srv = subprocess.Popen(
        [str(AXBENCH), "serve", "--runtime", "epoll", "--scenario", "tcp_echo"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = srv.stderr.readline()
        m = re.search(r"at 127\.0\.0\.1:(\d+)", line)
        assert m, line
        port = m.group(1)
        r = axbench("load", "--scenario", "tcp_echo", "--target",
                    f"127.0.0.1:{port}", "--duration", "0.3s", "--warmup", "0.1s",
                    "-p", "connections=3", "-p", "pipeline=2", "-p", "size=100")
        assert r.returncode == 0, r.stderr
        res = json.loads(r.stdout)
        assert res["check"]["passed"] is True
        assert res["connections"] == 3 and res["pipeline"] == 2 and res["size"] == 100
        assert res["measured"]["round_trips"] > 0
        assert_percentiles_ordered(res["latency"])
    finally:
        srv.send_signal(signal.SIGINT)
        out, _ = srv.communicate(timeout=20)
    assert srv.returncode == 0
    final = json.loads(out)
    assert final["check"]["passed"] is True
    assert final["role"] == "server"


def recv_some(conn):
    """What one recv gives, or b"" at the end or on an error."""
    try:
        return conn.recv(65536)
    except OSError:
        return b""


def send_all(conn, data):
    """Send all of data; False when the connection failed."""
    try:
        conn.sendall(data)
        return True
    except OSError:
        return False


class LoopbackServer:
    """A listening socket on 127.0.0.1, any port."""

    def __init__(self, backlog=64):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


class FaultyEcho(LoopbackServer):
    """An echo server that misbehaves after `after` bytes: 'corrupt' flips
    one byte, 'close' closes the connection."""

    def __init__(self, mode, after):
        super().__init__()
        self.mode, self.after = mode, after
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        seen = 0
        with conn:
            while True:
                data = recv_some(conn)
                if not data:
                    return
                if seen + len(data) > self.after:
                    if self.mode == "close":
                        return
                    i = self.after - seen if self.after >= seen else 0
                    data = data[:i] + bytes([data[i] ^ 0x40]) + data[i + 1:]
                    self.after = 1 << 62
                seen += len(data)
                if not send_all(conn, data):
                    return



@pytest.mark.parametrize("mode,expect", [("corrupt", "byte"), ("close", "closed")])
def test_load_generator_detects_a_broken_echo(mode, expect):
    srv = FaultyEcho(mode, after=64 * 10 + 20)
    try:
        r = axbench("load", "--scenario", "tcp_echo", "--target",
                    f"127.0.0.1:{srv.port}", "--duration", "0.3s", "--warmup", "0s",
                    "-p", "connections=1", "-p", "size=64")
    finally:
        srv.close()
    assert r.returncode == 1
    res = json.loads(r.stdout)
    assert res["check"]["passed"] is False
    assert expect in res["check"]["message"]
    assert "measured" not in res


class OneSlowEcho(LoopbackServer):
    """An echo server, a thread per connection, that treats its first
    connection apart: 'stall' reads it and never answers; 'late' holds its
    first answer for `hold` seconds, then echoes normally."""

    def __init__(self, mode, hold=0.5):
        super().__init__()
        self.mode, self.hold = mode, hold
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        first = True
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn, first), daemon=True).start()
            first = False

    def serve(self, conn, apart):
        with conn:
            held = False
            while True:
                data = recv_some(conn)
                if not data:
                    return
                if apart and self.mode == "stall":
                    continue
                if apart and not held:
                    time.sleep(self.hold)
                    held = True
                if not send_all(conn, data):
                    return



def test_load_generator_tells_a_stalled_connection_from_a_late_one():
    """A connection never answered fails the check as stalled; one answered
    only after a short measured phase (a server with a long tail) passes,
    and the result shows it as conn_round_trips_min = 0; after a phase
    over 1 s it is a stall again."""
    def load(srv, duration="0.3s"):
        try:
            return axbench("load", "--scenario", "tcp_echo", "--target",
                           f"127.0.0.1:{srv.port}", "--duration", duration,
                           "--warmup", "0s", "-p", "connections=4", "-p", "size=64")
        finally:
            srv.close()

    r = load(OneSlowEcho("stall"))
    assert r.returncode == 1, r.stderr
    res = json.loads(r.stdout)
    assert res["check"]["passed"] is False
    assert "stalled it" in res["check"]["message"]
    assert "still unanswered" in res["check"]["message"]

    r = load(OneSlowEcho("late", hold=0.5))
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout)
    assert res["check"]["passed"] is True
    assert res["measured"]["conn_round_trips_min"] == 0
    assert res["measured"]["conn_round_trips_max"] > 10

    r = load(OneSlowEcho("late", hold=1.6), duration="1.2s")
    assert r.returncode == 1, r.stdout + r.stderr
    res = json.loads(r.stdout)
    assert "1.2 s measured phase" in res["check"]["message"]
