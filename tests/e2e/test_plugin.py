"""End-to-end tests of out-of-tree drivers (docs/adding-a-runtime.md "Out of
tree"): `cmake --install` into a temporary prefix; the example driver of
examples/out-of-tree-driver/, copied out of the tree, built with nothing but
PKG_CONFIG_PATH pointing into that prefix; then the installed axbench runs
the whole conformance suite and every scenario on the shared object,
lists it, records its path in the result file, and refuses every kind of
wrong object with one clear line and exit status 2.

Also: the functions axbench exports for drivers are exactly the list in
runtimes/driver.exports, which is exactly the driver kit's functions; and the
installed core library (pkg-config axbench-core) links into a program of its
own.

The binary comes from the AXBENCH environment variable (default:
build/axbench under the repository root); its folder must be the CMake build
tree it came from (to install it). Without it, or without cmake, pkg-config
or cc, every test is skipped with a message saying so.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXBENCH = Path(os.environ.get("AXBENCH", ROOT / "build" / "axbench"))
BUILD = AXBENCH.parent
EXAMPLE = ROOT / "examples" / "out-of-tree-driver"
HEADERS = {"ax.h", "ax_driver.h", "kit.h", "theap.h"}
TOOLS = ("cmake", "pkg-config", "cc", "nm")

pytestmark = [
    pytest.mark.skipif(
        not (AXBENCH.is_file() and os.access(AXBENCH, os.X_OK)),
        reason=f"axbench binary not found at {AXBENCH} (build it, or set AXBENCH)",
    ),
    pytest.mark.skipif(
        not (BUILD / "CMakeCache.txt").is_file(),
        reason=f"{BUILD} is not the CMake build tree of axbench: nothing to install",
    ),
    pytest.mark.skipif(
        any(shutil.which(t) is None for t in TOOLS),
        reason=f"needs {', '.join(TOOLS)} on PATH",
    ),
]


def clean_env(**extra):
    """The environment without axbench's test hooks and loaded drivers."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AXBENCH_") and k != "PKG_CONFIG_PATH"}
    env.update(extra)
    return env


def sh(args, timeout=600, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, **kw)


@pytest.fixture(scope="module")
def pkg(tmp_path_factory):
    """The installed package and the example built against it alone."""
    base = tmp_path_factory.mktemp("plugin")
    prefix = base / "prefix"
    r = sh(["cmake", "--install", BUILD, "--prefix", prefix])
    assert r.returncode == 0, r.stderr
    pc = prefix / "lib" / "pkgconfig"
    env = clean_env(PKG_CONFIG_PATH=str(pc))
    # out of the tree: a copy, configured and built with only the .pc
    src = base / "example"
    shutil.copytree(EXAMPLE, src)
    r = sh(["cmake", "-S", src, "-B", src / "build"], env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    r = sh(["cmake", "--build", src / "build"], env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    lib = src / "build" / "liboneshot.so"
    assert lib.is_file()
    return {"base": base, "prefix": prefix, "env": env, "src": src, "lib": lib,
            "axbench": prefix / "bin" / "axbench"}


def pkg_flags(pkg, *args):
    r = sh(["pkg-config", *args], env=pkg["env"])
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def cc_driver(pkg, name, source):
    """A shared object built from C source as the guide's one-line command
    builds a driver (the example's folder on the include path)."""
    c = pkg["base"] / f"{name}.c"
    c.write_text(source)
    out = pkg["base"] / f"lib{name}.so"
    r = sh(["cc", "-shared", "-fPIC", "-Wall", "-Werror", "-o", out, c,
            "-I", pkg["src"], *pkg_flags(pkg, "--cflags", "--libs", "axbench-driver")])
    assert r.returncode == 0, r.stderr
    return out


def ax(pkg, *args, env=None, timeout=600):
    return sh([pkg["axbench"], *args], env=env or clean_env(), timeout=timeout,
              cwd=pkg["base"])


# ------------------------------------------------------------------ #
# the package                                                          #
# ------------------------------------------------------------------ #

def test_install_is_the_documented_set(pkg):
    p = pkg["prefix"]
    assert (p / "bin" / "axbench").is_file()
    assert {f.name for f in (p / "include" / "axbench").iterdir()} == HEADERS
    assert (p / "lib" / "libax.a").is_file()
    assert {f.name for f in (p / "lib" / "pkgconfig").iterdir()} == {
        "axbench-driver.pc", "axbench-core.pc"}
    # the driver package is headers only: the core comes from axbench
    assert pkg_flags(pkg, "--libs", "axbench-driver") == []
    cflags = pkg_flags(pkg, "--cflags", "axbench-driver")
    assert any(Path(f[2:]).resolve() == (p / "include" / "axbench").resolve()
               for f in cflags if f.startswith("-I")), cflags
    abi = re.search(r"#define AX_DRIVER_ABI (\d+)",
                    (ROOT / "runtimes/include/ax_driver.h").read_text()).group(1)
    assert pkg_flags(pkg, "--variable=abi", "axbench-driver") == [abi]


def test_example_exports_only_its_entry(pkg):
    out = sh(["nm", "-D", "--defined-only", pkg["lib"]]).stdout
    mine = {line.split()[-1] for line in out.splitlines()
            if line.split() and line.split()[-2] in "TDRB"}
    assert mine == {"ax_driver_entry"}, mine
    # the core stays in axbench: the object leaves the kit undefined
    undef = sh(["nm", "-D", "--undefined-only", pkg["lib"]]).stdout
    assert "ax__fdtab_grow" in undef and "ax_now" in undef


def test_core_library_links_into_a_program(pkg):
    """axbench-core: a program of its own runs an ax runtime from libax.a."""
    c = pkg["base"] / "own.c"
    c.write_text(
        '#include <stdio.h>\n#include "ax.h"\n'
        "static intptr_t body(void *a) { (void)a; return ax_sleep(1000000); }\n"
        "int main(void) { ax_rt *rt; intptr_t res = -1;\n"
        '  if (ax_rt_create(&rt, "epoll", NULL) || ax_rt_run(rt, body, NULL, &res)'
        " || res || ax_rt_destroy(rt)) return 1;\n"
        '  puts("ran"); return 0; }\n')
    exe = pkg["base"] / "own"
    r = sh(["cc", "-o", exe, c, *pkg_flags(pkg, "--cflags", "--libs", "axbench-core")])
    assert r.returncode == 0, r.stderr
    r = sh([exe])
    assert r.returncode == 0 and r.stdout == "ran\n", r.stderr


def test_exports_are_exactly_the_kit():
    """runtimes/driver.exports lists ax_now and every non-inline function of
    kit.h and theap.h, nothing else; axbench exports exactly those."""
    declared = {"ax_now"}
    for h in ("runtimes/core/kit.h", "runtimes/core/theap.h"):
        text = (ROOT / h).read_text()
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
        for m in re.finditer(r"^(?!static)[a-z][\w ]*?[\s*](ax__\w+)\(", text, re.M):
            declared.add(m.group(1))
    listed = set(re.findall(r"^\s*(ax_\w+);", re.sub(
        r"/\*.*?\*/", "", (ROOT / "runtimes/driver.exports").read_text(), flags=re.S), re.M))
    assert listed == declared, (listed - declared, declared - listed)
    out = sh(["nm", "-D", "--defined-only", AXBENCH]).stdout
    exported = {line.split()[-1] for line in out.splitlines()
                if line.split() and line.split()[-1].startswith("ax")}
    assert exported == listed, (exported - listed, listed - exported)


# ------------------------------------------------------------------ #
# axbench on the example                                               #
# ------------------------------------------------------------------ #

def test_conformance_suite_passes_from_outside(pkg):
    out = pkg["base"] / "conform.json"
    r = ax(pkg, "conform", "--runtime", pkg["lib"], "--json", out, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert [rt["name"] for rt in doc["runtimes"]] == ["oneshot"]
    feats = set(doc["runtimes"][0]["features"])
    # the driver declares tcp and xthread; the core adds what every driver
    # under its scheduler has (cheap-tasks, stack-check, one-thread)
    assert feats == {"tcp", "xthread", "cheap-tasks", "stack-check", "one-thread",
                     "one-worker"}
    res = doc["results"]["oneshot"]
    assert {c["id"] for c in doc["cases"]} == set(res)
    listed = ax(pkg, "conform", "--list").stdout
    assert len(res) == len(re.findall(r"^[a-z0-9_]+\.[a-z0-9_]+ ", listed, re.M))
    for case in doc["cases"]:
        # every case passes, but those needing a feature it lacks
        want = "PASS" if set(case["features"]) <= feats else "UNSUPPORTED"
        assert res[case["id"]]["outcome"] == want, (case["id"], res[case["id"]])


def test_every_scenario_runs_from_outside(pkg):
    """Every scenario (quick profile, one repetition) on the loaded driver,
    each cell's own check passed; tcp_echo measured as on any runtime."""
    out = pkg["base"] / "run.json"
    r = ax(pkg, "run", "--runtime", pkg["lib"], "--scenario", "all",
           "--profile", "quick", "--reps", "1", "--json", out, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["config"]["runtimes"] == ["oneshot"]
    listed = json.loads(ax(pkg, "list", "--json").stdout)["scenarios"]
    assert {c["scenario"] for c in doc["cells"]} == {s["name"] for s in listed}
    for c in doc["cells"]:
        # a fault cell this machine cannot impair is unsupported, with its reason
        if c["status"] == "unsupported" and (c.get("message") or "").startswith("fault="):
            continue
        assert c["status"] == "ok", (c["scenario"], c["status"], c.get("message"))
    assert {c["runtime"] for c in doc["cells"]} == {"oneshot"}
    assert {c["runtime_kind"] for c in doc["cells"]} == {"ax"}
    echo = [c for c in doc["cells"] if c["scenario"] == "tcp_echo"]
    assert echo
    for c in echo:
        assert c["summary"]["metrics"]["throughput"]["median"] > 0
        assert c["summary"]["metrics"]["server_cpu_us_per_msg"]["median"] > 0
    rts = {rt["name"]: rt for rt in doc["environment"]["runtimes"]}
    assert Path(rts["oneshot"]["path"]) == pkg["lib"].resolve()
    assert rts["epoll"].get("path") is None


def test_list_shows_a_driver_named_in_the_environment(pkg):
    env = clean_env(AXBENCH_DRIVERS=str(pkg["lib"]))
    r = ax(pkg, "list", env=env)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^  oneshot +available", r.stdout, re.M), r.stdout
    assert f"loaded from {pkg['lib'].resolve()}" in r.stdout
    j = json.loads(ax(pkg, "list", "--json", env=env).stdout)
    rt = {x["name"]: x for x in j["runtimes"]}["oneshot"]
    assert rt["available"] and Path(rt["path"]) == pkg["lib"].resolve()
    # and not without it
    assert "oneshot" not in ax(pkg, "list").stdout


# ------------------------------------------------------------------ #
# refusals: one line, exit 2, nothing run                               #
# ------------------------------------------------------------------ #

def wrapped(version_macro, header):
    """The example, compiled as if its header said version 999."""
    return (f'#include "{header}"\n#undef {version_macro}\n'
            f"#define {version_macro} 999\n#include \"oneshot.c\"\n")


REFUSALS = {
    "missing": (lambda pkg: pkg["base"] / "nope" / "libnone.so",
                "No such file or directory"),
    "text file": (lambda pkg: write(pkg["base"] / "notes.so", "not a shared object\n"),
                  "dlopen refused it"),
    "directory": (lambda pkg: pkg["base"], "dlopen refused it"),
    "no entry": (lambda pkg: cc_driver(pkg, "noentry",
                                       "int not_a_driver(void) { return 0; }\n"),
                 "exports no ax_driver_entry"),
    "abi": (lambda pkg: cc_driver(pkg, "abi", wrapped("AX_DRIVER_ABI", "ax_driver.h")),
            "driver ABI 999, this core implements ABI 1"),
    "api": (lambda pkg: cc_driver(pkg, "api", wrapped("AX_API_VERSION", "ax.h")),
            "ax.h version 999"),
    "vtable": (lambda pkg: cc_driver(pkg, "vtable",
                                     wrapped("AX_DRIVER_VERSION", "ax_driver.h")),
               "vtable version 999"),
    "name taken": (lambda pkg: copy(pkg["lib"], pkg["base"] / "other" / "libsame.so"),
                   None),
}


def write(path, text):
    path.write_text(text)
    return path


def copy(src, dst):
    dst.parent.mkdir(exist_ok=True)
    shutil.copy(src, dst)
    return dst


@pytest.mark.parametrize("command", ["run", "conform"])
@pytest.mark.parametrize("kind", sorted(REFUSALS))
def test_refusals(pkg, kind, command):
    make, says = REFUSALS[kind]
    path = make(pkg)
    rts = str(path)
    if kind == "name taken":
        # a second file whose driver has the loaded one's name
        rts = f"{pkg['lib']},{path}"
        says = "a driver named 'oneshot' is known already"
    out = pkg["base"] / f"refused-{command}.json"
    out.unlink(missing_ok=True)
    r = ax(pkg, command, "--runtime", rts, "--json", out, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("axbench: cannot load driver "), lines[0]
    assert says in lines[0], lines[0]
    assert not out.exists()


def test_refused_in_the_environment(pkg):
    r = ax(pkg, "list", env=clean_env(AXBENCH_DRIVERS=str(pkg["base"] / "gone.so")))
    assert r.returncode == 2
    assert "listed in AXBENCH_DRIVERS" in r.stderr and "No such file" in r.stderr
