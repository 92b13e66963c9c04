"""Fixtures shared by the end-to-end tests: one run of the whole
conformance suite on every runtime, which test_conform.py checks as a
matrix and test_differential.py compares between the thread-per-task
oracle and the async runtimes."""

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXBENCH = Path(os.environ.get("AXBENCH", ROOT / "build" / "axbench"))
# test-only environment hooks of axbench; never inherited by a test run
HOOKS = (
    "AXBENCH_TEST_CONFORM_SELFTEST",
    "AXBENCH_TEST_CONFORM_NO_FEATURES",
    "AXBENCH_TEST_UNAVAILABLE",
    "AXBENCH_TEST_FAULT",
)


def run_axbench(*args, env=None, timeout=600):
    full_env = {k: v for k, v in os.environ.items() if k not in HOOKS}
    if env:
        full_env.update(env)
    return subprocess.run(
        [str(AXBENCH), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


@pytest.fixture(scope="session")
def conform_suite(tmp_path_factory):
    """One run of the whole suite on every runtime: (process, JSON, path)."""
    if not (AXBENCH.is_file() and os.access(AXBENCH, os.X_OK)):
        pytest.skip(f"axbench binary not found at {AXBENCH}")
    path = tmp_path_factory.mktemp("conform") / "conform.json"
    p = run_axbench("conform", "--json", str(path), timeout=1800)
    assert path.exists(), f"no JSON written; stderr: {p.stderr[-2000:]}"
    return p, json.loads(path.read_text()), path
