"""End-to-end tests of external targets (targets/, docs/targets.md): servers
written outside axbench, started, pinned, metered and stopped by the
harness, and checked like the ax runtimes.

The shipped Python targets run (asyncio always, uvloop when Debian's
python3-uvloop is installed); every other shipped target (Node.js, Go,
Tokio) runs when its toolchain is installed and built, and is skipped with
the reason `axbench list` gives otherwise. The fixtures in
fixtures/targets/ are misbehaving servers (AXBENCH_TARGETS points there):
one loses a byte on one connection, one answers rpc_fanout without its
backend calls, one forks its worker and ignores SIGTERM, one has a broken
spec, one lacks its toolchain, one is not built.
"""

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXBENCH = Path(os.environ.get("AXBENCH", ROOT / "build" / "axbench"))
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "targets"

pytestmark = pytest.mark.skipif(
    not (AXBENCH.is_file() and os.access(AXBENCH, os.X_OK)),
    reason=f"axbench binary not found at {AXBENCH} (build it, or set AXBENCH)",
)

SHORT = ["--duration", "0.4s", "--warmup", "0.2s", "--reps", "1"]


def axbench(*args, env=None, timeout=180, cwd=None):
    full_env = dict(os.environ)
    for k in ("AXBENCH_TEST_FAULT", "AXBENCH_TEST_UNAVAILABLE", "AXBENCH_TARGETS"):
        full_env.pop(k, None)
    if env:
        full_env.update(env)
    return subprocess.run([str(AXBENCH), *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=cwd)


def fixtures_env(**extra):
    return {"AXBENCH_TARGETS": str(FIXTURES), **extra}


def listed_targets(env=None):
    r = axbench("list", "--json", env=env)
    assert r.returncode == 0, r.stderr
    return {t["name"]: t for t in json.loads(r.stdout)["targets"]}


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is gone for our purposes
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def run_cells(tmp_path, runtimes, scenarios, *extra, env=None, phases=SHORT):
    out = tmp_path / "r.json"
    r = axbench("run", "--runtime", runtimes, "--scenario", scenarios, *phases,
                "--json", str(out), *extra, env=env, cwd=tmp_path)
    doc = json.loads(out.read_text()) if out.exists() else None
    return r, doc


def assert_measured(cell):
    """A cell of an external target carries what an ax runtime's does."""
    assert cell["status"] == "ok", cell
    assert cell["runtime_kind"] == "external"
    rep = cell["reps"][0]
    m = rep["metrics"]
    assert m["server_cpu_us_per_msg"]["value"] > 0
    assert m["server_maxrss_kib"]["value"] > 1000  # an interpreter, at least MiBs
    assert m["throughput"]["value"] > 0
    assert rep["server"]["measured"]["wall_s"] > 0
    target = rep["server"]["target"]
    assert target["signals"] is False and target["cpus"] == 1
    assert target["ended"] == "stopped by SIGTERM"
    # the server and everything it started are gone
    assert not pid_alive(target["pid"])
    return rep


# ---------------------------------------------------------------------------
# discovery and availability


def test_list_shows_the_shipped_targets():
    ts = listed_targets()
    assert ts["asyncio"]["available"] is True
    assert set(ts["asyncio"]["scenarios"]) >= {"tcp_echo", "http_plaintext", "rpc_fanout"}
    r = axbench("list")
    assert "external targets" in r.stdout and "asyncio" in r.stdout


def test_unavailable_targets_say_why_and_are_skipped_by_all(tmp_path):
    ts = listed_targets(fixtures_env())
    assert "needs /nonexistent/axbench-test-tool" in ts["needs-tool"]["unavailable_reason"]
    assert "scripts/setup --targets" in ts["needs-tool"]["unavailable_reason"]
    assert "unknown placeholder {prot}" in ts["broken"]["unavailable_reason"]
    # naming one is bad input; `all` leaves it out with a note
    r = axbench("run", "--runtime", "needs-tool", *SHORT, env=fixtures_env(), cwd=tmp_path)
    assert r.returncode == 2 and "needs /nonexistent/axbench-test-tool" in r.stderr
    r = axbench("run", "--runtime", "asyncoi", env=fixtures_env(), cwd=tmp_path)
    assert r.returncode == 2 and "did you mean 'asyncio'" not in r.stderr  # fixtures only
    r = axbench("run", "--runtime", "lossx", env=fixtures_env(), cwd=tmp_path)
    assert r.returncode == 2 and "did you mean 'lossy'" in r.stderr


def test_unknown_target_name_gets_a_suggestion(tmp_path):
    r = axbench("run", "--runtime", "asyncoi", cwd=tmp_path)
    assert r.returncode == 2
    assert "did you mean 'asyncio'" in r.stderr


def test_a_target_is_built_only_on_request(tmp_path):
    root = tmp_path / "targets"
    shutil.copytree(FIXTURES / "unbuilt", root / "unbuilt")
    shutil.copy(FIXTURES / "asyncio-echo.py", root / "asyncio-echo.py")
    env = {"AXBENCH_TARGETS": str(root)}
    t = listed_targets(env)["unbuilt"]
    assert t["available"] is False
    assert "not built: run build/axbench targets --build unbuilt" in t["unavailable_reason"]
    # run never builds: the target is skipped, with the reason
    r, doc = run_cells(tmp_path, "all", "tcp_echo", env=env)
    assert "skipping unbuilt" in r.stderr
    assert {"name": "unbuilt", "reason": t["unavailable_reason"]} in \
        doc["config"]["skipped_runtimes"]
    r = axbench("targets", "--build", env=env)
    assert r.returncode == 0, r.stderr
    assert "built unbuilt in" in r.stderr
    assert listed_targets(env)["unbuilt"]["available"] is True
    r, doc = run_cells(tmp_path, "unbuilt", "tcp_echo", env=env)
    assert r.returncode == 0, r.stderr
    assert_measured(doc["cells"][0])


# ---------------------------------------------------------------------------
# the shipped Python targets


def python_target_cells(tmp_path, name):
    r, doc = run_cells(tmp_path, name, "tcp_echo,http_plaintext,rpc_fanout",
                       "-p", "connections=8")
    assert r.returncode == 0, r.stderr + r.stdout
    cells = {c["scenario"]: c for c in doc["cells"]}
    assert set(cells) == {"tcp_echo", "http_plaintext", "rpc_fanout"}
    for c in cells.values():
        assert_measured(c)
    # rpc_fanout: the harness's backend saw every call
    rep = cells["rpc_fanout"]["reps"][0]
    b = rep["server"]["backend"]
    assert b["fanout"] == 4
    assert b["calls"] >= rep["metrics"]["round_trips"]["value"] * 4
    assert b["connections"] >= 8 * 4
    env = doc["environment"]["targets"][name]
    assert env["version"].startswith("Python 3")
    # the summary lists them with the ax runtimes
    assert name in r.stdout
    return doc


def test_asyncio_target_serves_every_scenario(tmp_path):
    python_target_cells(tmp_path, "asyncio")


def test_uvloop_target_serves_every_scenario(tmp_path):
    t = listed_targets()["uvloop"]
    if not t["available"]:
        pytest.skip(f"uvloop unavailable here: {t['unavailable_reason']}")
    doc = python_target_cells(tmp_path, "uvloop")
    assert "uvloop" in doc["environment"]["targets"]["uvloop"]["version"]


OTHER_TARGETS = sorted(p.name for p in (ROOT / "targets").iterdir()
                       if (p / "target.json").is_file() and p.name not in ("asyncio", "uvloop")) \
    if (ROOT / "targets").is_dir() else []


@pytest.mark.parametrize("folder", OTHER_TARGETS or ["(none)"])
def test_other_shipped_targets_when_their_toolchain_is_installed(tmp_path, folder):
    if folder == "(none)":
        pytest.skip("no other target is shipped in targets/")
    name = json.loads((ROOT / "targets" / folder / "target.json").read_text())["name"]
    t = listed_targets()[name]
    if not t["available"]:
        pytest.skip(f"{name} unavailable here: {t['unavailable_reason']}")
    scs = [s for s in ("tcp_echo", "http_plaintext", "rpc_fanout") if s in t["scenarios"]]
    r, doc = run_cells(tmp_path, name, ",".join(scs), "-p", "connections=8")
    assert r.returncode == 0, r.stderr + r.stdout
    for c in doc["cells"]:
        assert_measured(c)


def test_a_target_cell_goes_through_compare_and_report(tmp_path):
    r, doc = run_cells(tmp_path, "asyncio,epoll", "tcp_echo")
    assert r.returncode == 0, r.stderr
    res = tmp_path / "r.json"
    c = axbench("compare", str(res), str(res), cwd=tmp_path)
    assert c.returncode in (0, 3), c.stdout + c.stderr
    assert "asyncio" in c.stdout
    rep = axbench("report", str(res), "-o", str(tmp_path / "rep"), cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    assert "asyncio" in (tmp_path / "rep" / "summary.md").read_text()


# ---------------------------------------------------------------------------
# misbehaving servers


def test_a_server_that_loses_one_byte_on_one_connection_fails_its_cell(tmp_path):
    r, doc = run_cells(tmp_path, "lossy", "tcp_echo", "-p", "connections=8",
                       env=fixtures_env())
    assert r.returncode == 1, r.stderr
    cell = doc["cells"][0]
    assert cell["status"] == "check_failed"
    msg = cell["reps"][0]["message"]
    assert "63 of 64 bytes, 1 missing" in msg, msg
    assert "metrics" not in cell["reps"][0]


def test_the_same_server_without_the_loss_passes(tmp_path):
    # the control: the fixture's other seven connections are served right,
    # so with one connection (never the lossy third) the cell passes
    r, doc = run_cells(tmp_path, "lossy", "tcp_echo", "-p", "connections=1",
                       env=fixtures_env())
    assert r.returncode == 0, r.stderr
    assert doc["cells"][0]["status"] == "ok"


def test_rpc_fanout_without_backend_calls_fails(tmp_path):
    r, doc = run_cells(tmp_path, "nofanout", "rpc_fanout", env=fixtures_env())
    assert r.returncode == 1
    cell = doc["cells"][0]
    assert cell["status"] == "check_failed"
    assert "backend received 0 calls" in cell["reps"][0]["message"]


def test_forked_workers_are_metered_and_the_group_is_killed(tmp_path):
    pidfile = tmp_path / "child.pid"
    # a longer phase: a Python worker on a busy shared CPU may start late
    r, doc = run_cells(tmp_path, "forking", "tcp_echo",
                       env=fixtures_env(FIXTURE_PIDFILE=str(pidfile)),
                       phases=["--duration", "1s", "--warmup", "0.3s", "--reps", "1"])
    assert r.returncode == 0, r.stderr
    rep = doc["cells"][0]["reps"][0]
    # the work was done by the child: its CPU is in the figure
    assert rep["server"]["measured"]["processes"] == 2
    assert rep["metrics"]["server_cpu_us_per_msg"]["value"] > 0
    # it ignored SIGTERM: killed with its group after the grace period
    assert rep["server"]["target"]["ended"] == "killed with SIGKILL after the grace period"
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(child)


# ---------------------------------------------------------------------------
# axbench load against any server


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_load_waits_for_a_late_server_by_host_name_and_writes_a_result_file(tmp_path):
    port = free_port()
    procs = []

    def start_late():
        time.sleep(0.7)
        procs.append(subprocess.Popen(
            [str(AXBENCH), "serve", "--runtime", "epoll", "--scenario", "tcp_echo",
             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE))

    th = threading.Thread(target=start_late)
    th.start()
    out = tmp_path / "load.json"
    try:
        r = axbench("load", "--scenario", "tcp_echo", "--target", f"localhost:{port}",
                    "--duration", "0.4", "--warmup", "0.1", "--json", str(out),
                    "--name", "my-server")
        th.join()
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["check"]["passed"] is True
        # the server is up now: measure it from outside by pid
        pid = procs[0].pid
        r = axbench("load", "--scenario", "tcp_echo", "--target", f"localhost:{port}",
                    "--duration", "0.4", "--warmup", "0.1", "--server-pid", str(pid),
                    "--json", str(out), "--name", "my-server")
        assert r.returncode == 0, r.stderr
    finally:
        th.join()
        for p in procs:
            p.terminate()
            p.communicate(timeout=10)
    # the server was never signalled: `serve` ends with no measured phase
    doc = json.loads(out.read_text())
    assert doc["schema"] and doc["status"] == "complete"
    cell = doc["cells"][0]
    assert cell["runtime"] == "my-server" and cell["runtime_kind"] == "external"
    assert cell["status"] == "ok"
    m = cell["reps"][0]["metrics"]
    assert m["server_cpu_us_per_msg"]["value"] > 0
    assert m["server_maxrss_kib"]["value"] > 0
    c = axbench("compare", str(out), str(out))
    assert c.returncode in (0, 3), c.stdout + c.stderr
    rep = axbench("report", str(out), "-o", str(tmp_path / "rep"))
    assert rep.returncode == 0, rep.stderr


def test_load_refuses_a_server_pid_that_is_not_the_server(tmp_path):
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            r = axbench("load", "--scenario", "tcp_echo", "--target", f"127.0.0.1:{port}",
                        "--server-pid", str(stranger.pid), "--duration", "0.2")
            assert r.returncode == 2
            assert f"is not the process listening on port {port}" in r.stderr
            # and it was not signalled
            assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_load_gives_up_on_a_server_that_never_comes(tmp_path):
    port = free_port()
    t0 = time.monotonic()
    r = axbench("load", "--scenario", "tcp_echo", "--target", f"127.0.0.1:{port}",
                "--wait", "0.5", "--duration", "0.2")
    assert r.returncode == 1
    assert "does not accept connections (waited 0.5 s" in r.stderr
    assert time.monotonic() - t0 < 30


def test_load_help_lists_every_option():
    r = axbench("load", "--help")
    for opt in ("--target", "--scenario", "--server-pid", "--server-signals", "--wait",
                "--messages", "--json", "--name", "--cpu", "--duration", "--warmup"):
        assert opt in r.stdout, opt


def test_the_target_gets_its_placeholders_environment_and_cpus(tmp_path):
    envfile = tmp_path / "env.json"
    allowed = sorted(os.sched_getaffinity(0))
    extra = ["--server-cpus", f"{allowed[0]},{allowed[1]}", "--load-cpus",
             str(allowed[1])] if len(allowed) >= 2 else []
    r, doc = run_cells(tmp_path, "envdump", "tcp_echo", "-p", "size=100", *extra,
                       env=fixtures_env(FIXTURE_ENVFILE=str(envfile),
                                        AXBENCH_TEST_UNAVAILABLE="nothing"))
    assert r.returncode == 0, r.stderr
    got = json.loads(envfile.read_text())
    rep = doc["cells"][0]["reps"][0]
    port = int(rep["server"]["target"]["command"][3])
    n = 2 if extra else 1
    cpu_list = f"{allowed[0]}-{allowed[1]}" if extra and allowed[1] == allowed[0] + 1 \
        else str(allowed[0])
    # {param:fanout} and {backend}: tcp_echo has neither, so they are empty
    assert got["argv"] == ["--port", str(port), "tcp_echo", str(n), cpu_list, "100", "",
                           "", "{literal}"]
    env = got["env"]
    assert env["AXB_PORT"] == str(port) and env["AXB_SCENARIO"] == "tcp_echo"
    assert env["AXB_PARAM_SIZE"] == "100" and env["AXB_PARAM_CONNECTIONS"] == "16"
    assert env["AXB_CPUS"] == str(n) and env["FIXTURE_WORKERS"] == str(n)
    assert env["GOMAXPROCS"] == str(n)
    assert env["FIXTURE_DIR"] == str(FIXTURES / "envdump")
    assert "AXB_BACKEND" not in env
    # the harness's own test hooks do not leak into the target
    assert "AXBENCH_TEST_UNAVAILABLE" not in env
    # pinned before exec: the target runs on the server's CPUs only
    assert len(got["affinity"]) == n and got["affinity"][0] == allowed[0]
    assert rep["server"]["target"]["cpus"] == n


def test_another_process_on_the_port_does_not_pass_for_the_target(tmp_path):
    r, doc = run_cells(tmp_path, "impostor", "tcp_echo", env=fixtures_env())
    assert r.returncode == 1
    cell = doc["cells"][0]
    assert cell["status"] == "error"
    assert "is served by another process, not by target impostor" in \
        cell["reps"][0]["message"]
