"""The fuzz corpora as tests (docs/fuzzing.md): every seed and regression
input of the result-file reader keeps its contract here, under the
interpreter the reports use, whether or not clang's fuzzer is installed
(the C targets' corpora are replayed by ctest: fuzz.replay.*).

The contract of fuzz_results: load_results on any bytes returns a document
whose accessors all work, or raises InputError. Each regression input
(regress-*.json) is a crash the fuzzer found, minimised by hand; through
the CLI, compare and report answer it with an exit status of their table
(0, 2 or 3), never an internal error.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fuzz" / "corpus" / "results"
AXBENCH = Path(os.environ.get("AXBENCH", ROOT / "build" / "axbench"))

sys.path[:0] = [str(ROOT / "reports"), str(ROOT / "tests" / "fuzz")]
import results_target  # noqa: E402
from axreports.util import InputError  # noqa: E402

FILES = sorted(CORPUS.glob("*.json"))
REGRESS = [f for f in FILES if f.name.startswith("regress-")]
# the ones compare got past and report did not (a report takes seconds)
REPORT_CRASHED = {"regress-commit-int.json", "regress-hist-count-str.json",
                  "regress-hist-index.json"}


def test_corpus_is_there():
    # the real result files (axbench run --json) and the regression inputs
    assert any(not f.name.startswith(("regress-", "bad-")) for f in FILES)
    assert len(REGRESS) >= 10


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_reader_contract(path):
    try:
        results_target.run(str(path))
    except InputError as e:
        assert str(path) in str(e), "the error names the file"


def test_real_files_load():
    # the seeds taken from real runs are read as documents, not refused
    # (bad-*: seeds made to be refused)
    for f in FILES:
        if not f.name.startswith(("regress-", "bad-")):
            results_target.run(str(f))


@pytest.mark.skipif(not (AXBENCH.is_file() and os.access(AXBENCH, os.X_OK)),
                    reason=f"axbench binary not found at {AXBENCH}")
@pytest.mark.parametrize("path", REGRESS, ids=lambda p: p.name)
def test_cli_never_crashes(path, tmp_path):
    # before the fixes, each of these ended compare or report with
    # "internal error: <exception>" and exit 4
    r = subprocess.run([str(AXBENCH), "compare", str(path), str(path)],
                       capture_output=True, text=True, timeout=120)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    assert r.returncode in (0, 2, 3), (r.returncode, r.stderr)
    if path.name not in REPORT_CRASHED:
        return
    r = subprocess.run([str(AXBENCH), "report", str(path), "-o", str(tmp_path / "rep")],
                       capture_output=True, text=True, timeout=300)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    assert r.returncode in (0, 2), (r.returncode, r.stderr)
