"""io_uring's design options as engine-flag variants (docs/decisions.md,
"io_uring at its best"; docs/harness.md, "Engine variants"): a variant
named DRIVER:KEY=VALUE[:...] is a runtime of its own in one run (its own
cells, its own label, its own engine_info), a flag the driver refuses
makes it unavailable (exit 2, nothing run), and the multishot receive
passes the TCP conformance cases, with a ring small enough to run dry."""

import json
import os
from pathlib import Path

import pytest
from conftest import run_axbench

ROOT = Path(__file__).resolve().parents[2]
AXBENCH = Path(os.environ.get("AXBENCH", ROOT / "build" / "axbench"))
pytestmark = pytest.mark.skipif(
    not (AXBENCH.is_file() and os.access(AXBENCH, os.X_OK)),
    reason=f"axbench binary not found at {AXBENCH} (build it, or set AXBENCH)")

VARIANTS = {
    "io_uring": "recv=single",
    "io_uring:recv=multishot": "recv=multishot(provided buffers",
    "io_uring:files=fixed:batch=16": "files=fixed(",
}


def uring_available():
    r = run_axbench("list", "--json")
    assert r.returncode == 0, r.stderr
    rts = json.loads(r.stdout)["runtimes"]
    return any(x["name"] == "io_uring" and x["available"] for x in rts)


def test_variants_are_columns(tmp_path):
    if not uring_available():
        pytest.skip("io_uring is not available here")
    out = tmp_path / "v.json"
    r = run_axbench("run", "--scenario", "tcp_echo", "-p", "connections=8",
                    "--duration", "300ms", "--warmup", "100ms", "--reps", "1",
                    "--runtime", ",".join(VARIANTS), "--json", str(out),
                    env={"AX_IO_URING_FLAGS": ""})
    assert r.returncode == 0, r.stderr
    cells = json.loads(out.read_text())["cells"]
    assert [c["runtime"] for c in cells] == list(VARIANTS)
    for c in cells:
        assert c["status"] == "ok", c.get("message")
        info = c["reps"][0]["server"]["engine_info"]
        assert VARIANTS[c["runtime"]] in info, (c["runtime"], info)
        if c["runtime"] == "io_uring:files=fixed:batch=16":
            assert "batch=16" in info, info


@pytest.mark.parametrize("name,why", [
    ("io_uring:nosuch=1", "refused engine flags 'nosuch=1'"),
    ("io_uring:recv=sometimes", "refused engine flags"),
    ("io_uring:bufs=1000", "refused engine flags"),   # not a power of two
    ("epoll:recv=multishot", "refused engine flags"),  # epoll has no flags
    ("io_uring:recv", "unknown runtime"),             # no value
    ("nosuch:recv=multishot", "unknown runtime"),
])
def test_bad_variant_is_refused(tmp_path, name, why):
    r = run_axbench("run", "--scenario", "tcp_echo", "--reps", "1",
                    "--runtime", name, "--json", str(tmp_path / "x.json"))
    if "io_uring" in name and not uring_available():
        pytest.skip("io_uring is not available here")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert why in r.stderr, r.stderr
    assert not (tmp_path / "x.json").exists()


def test_multishot_conforms():
    if not uring_available():
        pytest.skip("io_uring is not available here")
    rts = "io_uring:recv=multishot,io_uring:recv=multishot:bufs=16:bufsize=64"
    r = run_axbench("conform", "--runtime", rts, "--case", "tcp.*",
                    "--case", "cancel.*", timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    for rt in rts.split(","):
        assert f"{rt}: " in r.stdout and " 0 fail," in r.stdout, r.stdout
