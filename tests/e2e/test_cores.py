"""End-to-end tests of thread-per-core servers (`-p workers=N`), CPU sets
(`--server-cpus`, `--load-cpus`, the children's `--cpus`) and the
multi-threaded load generator.

- workers=2 serves tcp_echo and http_plaintext on every engine with the
  load generator's byte-for-byte check passing, and both workers take
  connections (one SO_REUSEPORT listener each);
- a load generator given two CPUs runs two threads, and its merged
  histogram is exactly the bucket-wise sum of its threads' (closed loop,
  open loop, connection storm), as are its round-trip counts;
- the CPU sets are recorded, bad ones are bad input, a reference cannot
  run workers > 1 (unsupported, not a failure);
- the scaling profile sweeps workers=1,2 and the report draws it.

Every phase is short (0.3 s) and every child runs under the harness's
watchdog or a subprocess timeout. The binary comes from AXBENCH (default
build/axbench).
"""

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXBENCH = Path(os.environ.get("AXBENCH", ROOT / "build" / "axbench"))

pytestmark = pytest.mark.skipif(
    not (AXBENCH.is_file() and os.access(AXBENCH, os.X_OK)),
    reason=f"axbench binary not found at {AXBENCH} (build it, or set AXBENCH)",
)

ENGINES = ["epoll", "io_uring", "libuv", "libevent"]
SHORT = ["--duration", "0.3", "--warmup", "0.1"]


def allowed_cpus():
    return sorted(os.sched_getaffinity(0))


need_two = pytest.mark.skipif(len(allowed_cpus()) < 2, reason="needs two allowed CPUs")


def axbench(*args, timeout=180):
    env = dict(os.environ)
    env.pop("AXBENCH_TEST_FAULT", None)
    env.pop("AXBENCH_TEST_UNAVAILABLE", None)
    return subprocess.run([str(AXBENCH), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def run_doc(tmp_path, *args, name="r.json", expect=0):
    out = tmp_path / name
    r = axbench("run", *args, "--json", out)
    assert r.returncode == expect, r.stderr[-3000:]
    return json.loads(out.read_text()), r


def available(names):
    r = axbench("list", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    ok = {x["name"] for x in doc["runtimes"] if x.get("available")}
    return [n for n in names if n in ok]


@need_two
def test_workers_two_on_every_engine(tmp_path):
    engines = available(ENGINES)
    assert engines, "no engine available"
    cpus = allowed_cpus()[:2]
    sets = f"{cpus[0]}-{cpus[1]}" if cpus[1] == cpus[0] + 1 else f"{cpus[0]},{cpus[1]}"
    doc, r = run_doc(tmp_path, "--runtime", ",".join(engines),
                     "--scenario", "tcp_echo,http_plaintext", "-p", "workers=2",
                     "--server-cpus", sets, "--load-cpus", sets, "--reps", "1", *SHORT)
    assert len(doc["cells"]) == 2 * len(engines)
    for c in doc["cells"]:
        assert c["status"] == "ok", (c["runtime"], c["scenario"], c.get("message"))
        assert c["params"]["workers"] == 2
        rep = c["reps"][0]
        srv = rep["server"]
        assert srv["workers"] == 2 and srv["cpus"] == cpus
        # one runtime per worker, each on its own CPU of the set
        per = srv["per_worker"]
        assert [w["cpu"] for w in per] == cpus
        # the kernel spread the connections over both listeners: each
        # worker spawned its connections' tasks (16 or 64 connections by
        # default: all on one listener has probability 2^-15 or less)
        assert all(w["stats"]["tasks_spawned"] >= 2 for w in per), per
        assert sum(w["stats"]["tasks_spawned"] for w in per) == srv["stats"]["tasks_spawned"]
        # the load generator used both CPUs of its set
        lg = rep["loadgen"]
        assert lg["threads"] == 2 and lg["cpus"] == cpus
        assert sum(t["round_trips"] for t in lg["per_thread"]) == lg["measured"]["round_trips"]
    env = doc["environment"]["pinning"]
    assert env["mode"] == "sets" and env["server_cpus"] == cpus and env["load_cpus"] == cpus
    assert env["overlap"] is True
    assert doc["config"]["server_cpus"] == cpus


def hist_sum(hists):
    total = {}
    for h in hists:
        for i, n in h["buckets"]:
            total[i] = total.get(i, 0) + n
    return sorted([i, n] for i, n in total.items())


def check_merged(res, key):
    threads = res["per_thread"]
    merged = res[key]
    parts = [t[key] for t in threads]
    assert all(p["layout"] == merged["layout"] for p in parts)
    assert merged["count"] == sum(p["count"] for p in parts)
    assert merged["overflow"] == sum(p["overflow"] for p in parts)
    assert merged["buckets"] == hist_sum(parts)
    nonempty = [p for p in parts if p["count"]]
    assert merged["min"] == min(p["min"] for p in nonempty)
    assert merged["max"] == max(p["max"] for p in nonempty)
    assert abs(merged["sum"] - sum(p["sum"] for p in parts)) <= 1e-6 * max(1.0, merged["sum"])


@need_two
@pytest.mark.parametrize("mode", ["closed", "open", "connect"])
def test_load_threads_merge_exactly(tmp_path, mode):
    cpus = allowed_cpus()[:2]
    cl = ",".join(map(str, cpus))
    srv = subprocess.Popen([str(AXBENCH), "serve", "--runtime", "epoll", "--scenario",
                            "tcp_echo", "-p", "workers=2", "--cpus", cl],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.monotonic() + 20
        line = ""
        while time.monotonic() < deadline and port is None:
            line = srv.stderr.readline()
            m = re.search(r"127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
            elif not line and srv.poll() is not None:
                break
        assert port, f"server did not report its port: {line!r}"
        extra = ["-p", "rate=4000"] if mode == "open" else []
        # the connection storm's client against the same echo server
        scenario = "connect_storm" if mode == "connect" else "tcp_echo"
        r = axbench("load", "--scenario", scenario, "--target", f"127.0.0.1:{port}",
                    "--cpus", cl, "-p", "connections=8", *extra, *SHORT,
                    "--thread-histograms", "--server-pid", srv.pid, timeout=60)
        assert r.returncode == 0, r.stderr[-2000:]
        res = json.loads(r.stdout)
    finally:
        srv.terminate()
        out, err = srv.communicate(timeout=20)
    assert res["check"]["passed"] and res["mode"] == mode
    assert res["threads"] == 2 and res["cpus"] == cpus
    threads = res["per_thread"]
    assert [t["cpu"] for t in threads] == cpus
    assert sum(t["connections"] for t in threads) == 8
    assert all(t["round_trips"] > 0 for t in threads)
    assert sum(t["round_trips"] for t in threads) == res["measured"]["round_trips"]
    assert sum(t["warmup_round_trips"] for t in threads) == res["warmup_round_trips"]
    check_merged(res, "histogram")
    if mode == "open":
        check_merged(res, "histogram_uncorrected")
        # the rate is split over the threads, the total is the asked rate
        ol = res["open_loop"]
        assert ol["rate"] == 4000
        assert 0.8 * 4000 <= ol["offered_rate"] <= 1.2 * 4000
    # the server's result: both workers served, the check passed
    s = json.loads(out)
    assert s["check"]["passed"] and s["workers"] == 2


def test_cpu_set_bad_input(tmp_path):
    far = max(allowed_cpus()) + 1
    cases = [
        (["--server-cpus", f"{far}"], "not one this process may use"),
        (["--server-cpus", "1-0"], "malformed"),
        (["--server-cpus", "5000"], "CPU number out of range"),
        (["--load-cpus", "0,,1"], "malformed"),
        (["--server-cpus", "x"], "malformed"),
        (["--server-cpus", ",".join(map(str, allowed_cpus()))], "takes every allowed CPU"),
    ]
    for args, msg in cases:
        r = axbench("run", *args, "--reps", "1", *SHORT, "--json", tmp_path / "x.json")
        assert r.returncode == 2, (args, r.stderr)
        assert msg in r.stderr, (args, r.stderr)
    r = axbench("load", "--scenario", "tcp_echo", "--target", "127.0.0.1:1", "--cpus", "0-")
    assert r.returncode == 2 and "malformed --cpus" in r.stderr
    r = axbench("serve", "--runtime", "blocking", "--scenario", "tcp_echo", "-p", "workers=2")
    assert r.returncode == 2 and "thread-per-core" in r.stderr


@need_two
def test_default_split_and_reference_unsupported(tmp_path):
    doc, _ = run_doc(tmp_path, "--runtime", "epoll,blocking", "--scenario", "tcp_echo",
                     "-p", "workers=1,2", "--reps", "1", *SHORT)
    cpus = allowed_cpus()
    pin = doc["environment"]["pinning"]
    # the allowed CPUs split in halves (2 CPUs: server 0, load 1)
    assert pin["mode"] == "split"
    assert pin["server_cpus"] == cpus[: len(cpus) // 2]
    assert pin["load_cpus"] == cpus[len(cpus) // 2:]
    assert pin["overlap"] is False
    st = {(c["runtime"], c["params"]["workers"]): c for c in doc["cells"]}
    assert st[("blocking", 2)]["status"] == "unsupported"
    assert "thread-per-core" in st[("blocking", 2)]["message"]
    for k in [("epoll", 1), ("epoll", 2), ("blocking", 1)]:
        assert st[k]["status"] == "ok", (k, st[k].get("message"))
    assert st[("epoll", 2)]["reps"][0]["server"]["workers"] == 2


@need_two
def test_scaling_profile_and_report(tmp_path):
    doc, _ = run_doc(tmp_path, "--profile", "scaling", "--runtime", "epoll",
                     "--scenario", "tcp_echo", "--reps", "1", *SHORT)
    ws = sorted(c["params"]["workers"] for c in doc["cells"])
    assert ws[:2] == [1, 2]
    assert all(c["status"] == "ok" for c in doc["cells"])
    assert "workers=" in doc["config"]["profile_params"]["tcp_echo"]
    out = tmp_path / "rep"
    r = axbench("report", tmp_path / "r.json", "-o", out)
    assert r.returncode == 0, r.stderr
    page = (out / "index.html").read_text()
    sec = page[page.index('<section id="cores">'):]
    sec = sec[:sec.index("</section>")]
    assert sec.count("<figure>") >= 2, sec[:2000]
    assert "by workers" in sec


def test_workers_one_matches_files_without_workers():
    """A cell at workers=1 is the single-runtime server every file written
    before the parameter existed measured: compare and history pair them."""
    import sys
    sys.path.insert(0, str(ROOT / "reports"))
    from axreports.history import cell_key_text
    from axreports.results import Cell, params_key

    old = {"connections": 16, "size": 64}
    assert params_key({**old, "workers": 1}) == params_key(old)
    assert params_key({**old, "workers": 2}) != params_key(old)
    a = Cell({"runtime": "epoll", "scenario": "tcp_echo", "params": {**old, "workers": 1}})
    b = Cell({"runtime": "epoll", "scenario": "tcp_echo", "params": old})
    assert a.key == b.key and cell_key_text(a) == cell_key_text(b)
