"""The contributor guides cannot rot: every C block in docs/adding-a-*.md is
a verbatim excerpt of the example it walks through, the examples build and
pass on every runtime, and the README's layout names every folder of the
tree and only folders that exist.

The binary comes from the AXBENCH environment variable (default:
build/axbench under the repository root); the tests that run it are skipped
without it, with a message saying so.
"""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXBENCH = Path(os.environ.get("AXBENCH", ROOT / "build" / "axbench"))
needs_axbench = pytest.mark.skipif(
    not (AXBENCH.is_file() and os.access(AXBENCH, os.X_OK)),
    reason=f"axbench binary not found at {AXBENCH} (build it, or set AXBENCH)",
)

# guide -> the source files its code blocks are taken from
GUIDES = {
    "docs/adding-a-scenario.md": ["scenarios/example_pipeline.c"],
    "docs/adding-a-runtime.md": ["tests/unit/toy_driver.c",
                                 "examples/out-of-tree-driver/oneshot.c"],
}


def c_blocks(text):
    return re.findall(r"```c\n(.*?)```", text, re.S)


@pytest.mark.parametrize("guide", sorted(GUIDES))
def test_guide_code_is_verbatim_from_its_example(guide):
    path = ROOT / guide
    if not path.exists():
        pytest.fail(f"{guide} is missing")
    sources = {s: (ROOT / s).read_text() for s in GUIDES[guide]}
    blocks = c_blocks(path.read_text())
    assert len(blocks) >= 4, f"{guide}: expected a walk-through, found {len(blocks)} C blocks"
    for block in blocks:
        if not any(block in src for src in sources.values()):
            first = block.strip().splitlines()[0]
            pytest.fail(
                f"{guide}: a C block starting {first!r} is not a verbatim "
                f"excerpt of {', '.join(sources)}: update the guide or the example"
            )


@needs_axbench
def test_example_scenario_passes_on_every_runtime(tmp_path):
    out = tmp_path / "pipeline.json"
    r = subprocess.run(
        [str(AXBENCH), "run", "--scenario", "example_pipeline", "--runtime", "all",
         "--reps", "1", "-p", "count=20000", "-p", "stages=1,8", "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    ax_cells = [c for c in doc["cells"] if c["runtime_kind"] == "ax"]
    ran = {c["runtime"] for c in ax_cells}
    listed = json.loads(subprocess.run([str(AXBENCH), "list", "--json"],
                                       capture_output=True, text=True,
                                       timeout=60).stdout)
    available = {rt["name"] for rt in listed["runtimes"] if rt["available"]}
    assert ran == available and ran, (ran, available)
    for c in ax_cells:
        assert c["status"] == "ok", (c["runtime"], c["message"])
        hop = c["summary"]["metrics"]["hop_ns"]["median"]
        assert hop > 0, c["runtime"]
    # hidden: found by name, never listed
    assert "example_pipeline" not in {s["name"] for s in listed["scenarios"]}


@needs_axbench
def test_example_scenario_counts_instructions(tmp_path):
    out = tmp_path / "instr.json"
    r = subprocess.run(
        [str(AXBENCH), "run", "--measure", "instructions", "--scenario",
         "example_pipeline", "--runtime", "epoll", "-p", "count=2000",
         "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    if "valgrind" in r.stderr and r.returncode == 2:
        pytest.skip(r.stderr.strip())
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    (cell,) = doc["cells"]
    assert cell["status"] == "ok", cell["message"]
    assert cell["summary"]["metrics"]["instructions_per_op"]["median"] > 0


def readme_layout():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Layout", 1)[1]
    block = section.split("```", 2)[1]
    paths = []
    for line in block.splitlines():
        if re.match(r"^\S+/", line):
            paths.append(line.split()[0])
    return paths


def test_readme_layout_is_true():
    paths = readme_layout()
    assert paths, "README.md has no layout block"
    for p in paths:
        if "<" in p:
            continue  # a pattern, not a path
        assert (ROOT / p).exists(), f"README layout names {p}, which does not exist"
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True,
                             text=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout: cannot list the tracked folders")
    top = {t.split("/")[0] for t in tracked if "/" in t and not t.startswith(".")}
    named = {p.split("/")[0] for p in paths}
    missing = sorted(top - named)
    assert not missing, f"README layout omits the folders {missing}"
    # every folder one level down in the source layers is named too; a
    # "<engine>" in the layout stands for any one folder
    second = {"/".join(t.split("/")[:2]) for t in tracked
              if t.count("/") >= 2 and t.split("/")[0] in
              ("runtimes", "scenarios", "references", "harness", "tests")}

    def covered(folder):
        for n in (p.rstrip("/") for p in paths):
            pattern = re.sub(r"<[^>]+>", "[^/]+", re.escape(n))
            if re.fullmatch(pattern, folder) or folder.startswith(n + "/") \
                    or n.startswith(folder + "/"):
                return True
        return False

    unnamed = sorted(f for f in second if not covered(f))
    assert not unnamed, f"README layout omits {unnamed}"
