"""The shipped external targets on Node.js, Go and Tokio (targets/*/
target.json): each one whose toolchain is installed is built (once: the
build is cached in its build/ folder and redone only when a source is
newer), started from its spec's command line as the harness starts it
(placeholders expanded, worker count in its `workers_env`, its own process
group), and must:

- serve every scenario it declares to `axbench load` in count mode: exactly
  N requests, every byte checked by the load generator;
- for rpc_fanout, make exactly `fanout` backend calls per request, counted
  by a backend run here (the client alone cannot see the fan-out);
- for http_plaintext, answer a request split across two writes and a
  pipelined burst in order, and answer junk with 400 then close;
- stop on SIGTERM within the harness's grace time (3 s);
- print a version line.

A target whose toolchain is missing is skipped with the program it needs
and the setup option that installs it (`scripts/setup --targets`). With
AXBENCH_TARGET_BUILD=0 nothing is built and a target not built yet is
skipped (its first build takes from 10 s to a few minutes).
"""

import json
import os
import re
import shutil
import signal
import socket
import socketserver
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXBENCH = Path(os.environ.get("AXBENCH", ROOT / "build" / "axbench"))
TARGETS = ROOT / "targets"
SHIPPED = ["node-net", "node-http", "go-net", "go-http", "tokio-mt", "tokio-ct"]
BUILD_TIMEOUT_S = 900      # Tokio from clean: ~90 s on the 2-vCPU VM
READY_TIMEOUT_S = 20
STOP_GRACE_S = 3
MESSAGES = 2000            # requests per load, in count mode
PARAMS = {                 # scenario parameters given to load and target
    "tcp_echo": {"connections": 8, "size": 64, "pipeline": 4},
    "http_plaintext": {"connections": 8, "pipeline": 16},
    "rpc_fanout": {"connections": 8, "size": 64, "fanout": 4},
}
REQUEST = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n"

pytestmark = pytest.mark.skipif(
    not (AXBENCH.is_file() and os.access(AXBENCH, os.X_OK)),
    reason=f"axbench binary not found at {AXBENCH} (build it, or set AXBENCH)")


def spec(name):
    return json.loads((TARGETS / name / "target.json").read_text())


def missing_program(s):
    """The first required program that is not there, or None."""
    for p in s.get("requires", []):
        if not (os.access(p, os.X_OK) if p.startswith("/") else shutil.which(p)):
            return p
    return None


_built = {}


def ensure_built(name):
    """Skip when the toolchain is missing; build when the output is absent
    or older than a source of the folder that holds it."""
    s = spec(name)
    need = missing_program(s)
    if need:
        pytest.skip(f"{name}: needs {need} (not found): install the toolchains "
                    f"with scripts/setup --targets")
    if "build" not in s or name in _built:
        return s
    d = TARGETS / name
    built = (d / s["built"]).resolve()
    src = built.parent.parent      # <target folder>/build/<file>
    newest = max(f.stat().st_mtime for f in src.rglob("*")
                 if f.is_file() and "build" not in f.relative_to(src).parts)
    if not built.exists() or built.stat().st_mtime < newest:
        if os.environ.get("AXBENCH_TARGET_BUILD") == "0":
            pytest.skip(f"{name}: not built or out of date, and AXBENCH_TARGET_BUILD=0: "
                        f"build it with sh {d / s['build'][-1]}")
        t0 = time.monotonic()
        try:
            r = subprocess.run(s["build"], cwd=d, capture_output=True, text=True,
                               timeout=BUILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name}: build took more than {BUILD_TIMEOUT_S} s")
        assert r.returncode == 0, f"{name}: build failed:\n{r.stdout[-2000:]}{r.stderr[-3000:]}"
        print(f"{name}: built in {time.monotonic() - t0:.1f} s")
    assert built.exists(), f"{name}: build succeeded but {s['built']} is missing"
    _built[name] = True
    return s


def free_port():
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


def expand(arg, values):
    """targets/README.md's placeholders: {dir}, {port}, ..., {param:NAME};
    {{ and }} are literal braces."""
    def one(m):
        if m.group(0) in ("{{", "}}"):
            return m.group(0)[0]
        key = m.group(1)
        assert key in values or key.startswith("param:"), f"unknown placeholder {{{key}}}"
        return str(values.get(key, ""))
    return re.sub(r"\{\{|\}\}|\{([a-z_]+(?::[a-z_]+)?)\}", one, arg)


class Backend(socketserver.ThreadingTCPServer):
    """rpc_fanout's backend: {id u64, value u64} -> {id, 2 * value + 1},
    little endian; counts the calls it answered."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        self.calls = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), BackendConn)


class BackendConn(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        while True:
            data = self.request.recv(4096)
            if not data:
                return
            buf += data
            out = []
            while len(buf) >= 16:
                i, v = struct.unpack_from("<QQ", buf)
                out.append(struct.pack("<QQ", i, (2 * v + 1) % 2**64))
                buf = buf[16:]
            with self.server.lock:
                self.server.calls += len(out)
            self.request.sendall(b"".join(out))


class Server:
    """A target started from its spec, as the harness starts it."""

    def __init__(self, name, s, scenario, backend=None):
        self.port = free_port()
        cpus = len(os.sched_getaffinity(0))
        values = {"dir": str(TARGETS / name), "port": self.port, "scenario": scenario,
                  "cpus": cpus, "cpu_list": ",".join(map(str, sorted(os.sched_getaffinity(0)))),
                  "backend": f"127.0.0.1:{backend}" if backend else ""}
        values.update({f"param:{k}": v for k, v in PARAMS[scenario].items()})
        argv = [expand(a, values) for a in s["command"]]
        env = dict(os.environ)
        env.update({k: expand(v, values) for k, v in s.get("env", {}).items()})
        workers = s.get("workers_env", [])
        for w in [workers] if isinstance(workers, str) else workers:
            env[w] = str(cpus)
        self.proc = subprocess.Popen(argv, cwd=TARGETS / name, env=env, start_new_session=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.kill()
                    pytest.fail(f"{name} did not listen on {self.port}: {self.stderr()}")
                time.sleep(0.05)

    def stderr(self):
        try:
            return self.proc.communicate(timeout=5)[1][-2000:]
        except subprocess.TimeoutExpired:
            return "(still running)"

    def stop(self):
        """SIGTERM to the process group; True when it exited within the grace."""
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_GRACE_S)
            return True
        except subprocess.TimeoutExpired:
            self.kill()
            return False

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def load(scenario, port):
    argv = [str(AXBENCH), "load", "--scenario", scenario, "--target", f"127.0.0.1:{port}",
            "--messages", str(MESSAGES)]
    for k, v in PARAMS[scenario].items():
        argv += ["-p", f"{k}={v}"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr


CASES = [(n, sc) for n in SHIPPED for sc in spec(n)["scenarios"]]


@pytest.mark.parametrize("name,scenario", CASES, ids=[f"{n}-{sc}" for n, sc in CASES])
def test_serves_scenario(name, scenario):
    s = ensure_built(name)
    backend = None
    if scenario == "rpc_fanout":
        backend = Backend()
        threading.Thread(target=backend.serve_forever, daemon=True).start()
    srv = Server(name, s, scenario, backend.server_address[1] if backend else None)
    try:
        rc, out, err = load(scenario, srv.port)
        assert rc == 0, f"{name} {scenario}: load failed: {err}\nserver: {srv.stderr()}"
        res = json.loads(out)
        assert res["check"]["passed"], res["check"]
        assert res["measured"]["round_trips"] == MESSAGES
        if backend:
            # every request fanned out to exactly `fanout` answered calls
            want = MESSAGES * PARAMS[scenario]["fanout"]
            deadline = time.monotonic() + 5
            while backend.calls < want and time.monotonic() < deadline:
                time.sleep(0.05)
            assert backend.calls == want, f"{backend.calls} backend calls for {MESSAGES} requests"
        assert srv.stop(), f"{name} did not stop within {STOP_GRACE_S} s of SIGTERM"
    finally:
        srv.kill()
        if backend:
            backend.shutdown()
            backend.server_close()


def read_responses(sk, count):
    """Read `count` whole responses (Content-Length framed) or what came
    before the peer closed."""
    data = b""
    sk.settimeout(10)
    while data.count(b"Hello, World!") < count:
        chunk = sk.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


HTTP_TARGETS = [n for n in SHIPPED if "http_plaintext" in spec(n)["scenarios"]]


@pytest.mark.parametrize("name", HTTP_TARGETS)
def test_http_split_pipelined_and_bad(name):
    s = ensure_built(name)
    srv = Server(name, s, "http_plaintext")
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sk:
            # one request in two writes, then three in one write
            sk.sendall(REQUEST[:20])
            time.sleep(0.1)
            sk.sendall(REQUEST[20:])
            sk.sendall(REQUEST * 3)
            data = read_responses(sk, 4)
            statuses = re.findall(rb"HTTP/1\.1 (\d{3})", data)
            assert statuses == [b"200"] * 4, data[:600]
            assert data.count(b"Content-Length: 13\r\n") + data.count(b"content-length: 13\r\n") == 4
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sk:
            sk.sendall(b"BLAH\r\n\r\n")
            sk.settimeout(10)
            data = b""
            while chunk := sk.recv(4096):
                data += chunk            # the server closes after its answer
            assert data.startswith(b"HTTP/1.1 400"), data[:200]
        assert srv.stop()
    finally:
        srv.kill()


@pytest.mark.parametrize("name", SHIPPED)
def test_version_line(name):
    s = ensure_built(name)
    r = subprocess.run(s["version"], cwd=TARGETS / name, capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0 and r.stdout.strip(), (r.stdout, r.stderr)
    assert re.search(r"\d+\.\d+", r.stdout.splitlines()[0]), r.stdout
