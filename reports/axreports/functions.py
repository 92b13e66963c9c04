"""Instructions by function: `axbench functions DIR` reads the callgrind
files that `axbench run --measure instructions --profile-functions DIR`
kept (DIR/cells.json lists them) and writes, per cell, each function's
instructions per operation, self and inclusive, as Markdown and JSON
(DIR/index.md, DIR/<cell>.md, DIR/functions.json). docs/profiles.md says
how to read them.

Per operation: a local workload's counts divided by its operation count;
a server's, the difference of its two runs (N1 and N2 messages) divided
by N2 - N1, function by function, so start-up and shutdown cancel as they
do in the total.

Self cost is exact: callgrind charges every instruction to the function
whose code it is (an inlined function's instructions to the function it
was inlined into). Inclusive cost is self plus what the function's calls
cost. callgrind measures a call's cost from the call to its return on one
stack, with a shadow call stack per thread; a task switch
(ax__ctx_switch) leaves a stack mid-call and resumes another, so in a run
where tasks switch, callgrind records resumptions as calls and charges
calls with other tasks' work (inclusive costs above 100%). There, the
resumptions are dropped (told apart by their address: a call arrives at
its callee's entry, a resumption in its middle; and nothing is called
from ax__ctx_switch) and every call is charged its callee's inclusive cost
per call (gprof's assumption: every call of a function costs the same).
In a run without a switch (the native versions) callgrind's own call
costs are exact and used as they are. Functions in a call cycle get only
the calls that leave the cycle.
"""

import json
import os
import re

from .util import InputError, write_atomic

# Functions that switch stacks: callgrind's arcs out of them are another
# task resuming, not calls.
SWITCH_FUNCTIONS = ("ax__ctx_switch",)

# What one operation of each workload is, for the tables.
OPERATIONS = {
    "tcp_echo": "echo: one message echoed (server side)",
    "http_plaintext": "one HTTP request answered (server side)",
    "rpc_fanout": "one RPC answered after its fan-out (server side)",
    "ctx_switch": "switch: one ax_yield handing over to another task",
    "spawn_join": "spawn+join: one task spawned, run and joined",
    "chan_pingpong": "channel hand-off: one round trip, two hand-offs",
    "timers": "timeout armed and cancelled (deadline churn)",
    "timers:fire": "timer arm+fire: one sleep armed and fired",
}

# Short names of the five operations, for the summary matrix.
SHORT = {
    "tcp_echo": "echo", "ctx_switch": "switch", "spawn_join": "spawn+join",
    "chan_pingpong": "chan round trip", "timers:fire": "timer arm+fire",
    "timers": "timeout churn", "http_plaintext": "http request",
    "rpc_fanout": "rpc request",
}

_TABLE = re.compile(r"^\d{2,}-.+\.(md|json)$")
_REC = re.compile(r"'\d+$")  # callgrind's recursion-level suffix: name'2
_COMPRESSED = re.compile(r"^\((\d+)\)(?: (.*))?$")


class Profile:
    """One callgrind output file: self cost per function, and the call
    arcs with their counts and callgrind's inclusive costs (event Ir)."""

    def __init__(self):
        self.total = 0
        self.self_cost = {}   # (object, function) -> Ir
        self.arcs = {}        # ((obj, fn), (obj, fn)) -> [calls, Ir]
        # with --dump-instr=yes: the addresses calls arrived at, per arc,
        # and each function's lowest executed address (its entry)
        self.targets = {}     # arc -> {address: calls}
        self.low = {}         # (obj, fn) -> lowest address
        self.addresses = False


def _addr(tok, last):
    """One instruction-address subposition: absolute (0x...), relative to
    the last cost line's (+N, -N, decimal) or the same (*)."""
    if tok == "*":
        return last
    if tok[0] in "+-":
        return last + int(tok)
    return int(tok, 0)


def _name(table, value, path, lineno):
    """Resolve callgrind's name compression: "(id) name" defines id,
    "(id)" refers to it; an uncompressed name stands for itself."""
    m = _COMPRESSED.match(value)
    if not m:
        return value
    ident, name = m.group(1), m.group(2)
    if name is not None:
        table[ident] = name
        return name
    if ident not in table:
        raise InputError(f"{path}:{lineno}: compressed name ({ident}) used before "
                         f"its definition")
    return table[ident]


def _fn_name(name):
    return _REC.sub("", name)


class _Reader:
    """The state of reading one callgrind file, line by line."""

    def __init__(self, path):
        self.path, self.prof = path, Profile()
        self.objs, self.fns = {}, {}      # the two name-compression tables
        self.npos, self.ev, self.ipos = 1, 0, -1
        self.last = 0                     # the last cost line's address
        self.ob = self.cob = "???"
        self.fn = self.callee = None
        self.pending = None               # (callee, calls, target) of a calls= line
        self.totals = self.summary = None

    def line(self, line, lineno):
        prof, c = self.prof, line[0]
        if c.isdigit() or c in "+-*":
            parts = line.split()
            vals = parts[self.npos:]
            v = int(vals[self.ev]) if self.ev < len(vals) else 0
            if self.pending is not None:
                # a call's cost line: its position is the call site's,
                # and it does not move the last position
                callee, calls, target = self.pending
                arc = prof.arcs.setdefault((self.fn, callee), [0, 0])
                arc[0] += calls
                arc[1] += v
                if target is not None:
                    t = prof.targets.setdefault((self.fn, callee), {})
                    t[target] = t.get(target, 0) + calls
                self.pending = None
            elif self.fn is not None:
                prof.self_cost[self.fn] = prof.self_cost.get(self.fn, 0) + v
                if self.ipos >= 0:
                    self.last = a = _addr(parts[self.ipos], self.last)
                    if a < prof.low.get(self.fn, a + 1):
                        prof.low[self.fn] = a
            return
        key, _, value = line.partition("=")
        if key == "ob":
            self.ob = self.cob = _name(self.objs, value, self.path, lineno)
        elif key == "fn":
            self.fn = (self.ob, _fn_name(_name(self.fns, value, self.path, lineno)))
            self.cob = self.ob
        elif key == "cob":
            self.cob = _name(self.objs, value, self.path, lineno)
        elif key == "cfn":
            self.callee = (self.cob, _fn_name(_name(self.fns, value, self.path, lineno)))
        elif key == "calls":
            if self.callee is None:
                raise InputError(f"{self.path}:{lineno}: calls= without cfn=")
            words = value.split()
            target = _addr(words[1 + self.ipos], self.last) if self.ipos >= 0 else None
            self.pending = (self.callee, int(words[0]), target)
            self.cob = self.ob
        elif line.startswith("positions:"):
            names = line.split(":", 1)[1].split()
            self.npos = len(names)
            self.ipos = names.index("instr") if "instr" in names else -1
            prof.addresses = self.ipos >= 0
        elif line.startswith("events:"):
            names = line.split(":", 1)[1].split()
            if "Ir" not in names:
                raise InputError(f"{self.path}: no Ir event (events: {' '.join(names)})")
            self.ev = names.index("Ir")
        elif line.startswith("totals:"):
            self.totals = (self.totals or 0) + int(line.split()[1 + self.ev])
        elif line.startswith("summary:"):
            self.summary = (self.summary or 0) + int(line.split()[1 + self.ev])
        # fl, fi, fe, cfi, cfl, jump, jcnd, desc, ...: not needed here


def parse_callgrind(path):
    """Read one callgrind output file (docs: valgrind's "Callgrind Format
    Specification"). Returns a Profile; InputError on a file it cannot
    read or understand."""
    r = _Reader(path)
    try:
        f = open(path, encoding="utf-8", errors="replace")
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}") from None
    with f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line[0] == "#":
                continue
            try:
                r.line(line, lineno)
            except (ValueError, IndexError):
                raise InputError(f"{path}:{lineno}: not callgrind's format: "
                                 f"{line[:60]!r}") from None
    prof = r.prof
    prof.total = r.totals if r.totals is not None else (r.summary or 0)
    if prof.total <= 0:
        raise InputError(f"{path}: not a callgrind output file (no totals)")
    return prof


def _sccs(nodes, succ):
    """Strongly connected components (Tarjan, iterative), callees before
    callers. Returns (list of components, node -> component index)."""
    index, low, on, stack, comps, comp_of = {}, {}, set(), [], [], {}
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(succ.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(succ.get(w, ()))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp_of[w] = len(comps)
                    comp.append(w)
                    if w == v:
                        break
                comps.append(comp)
    return comps, comp_of


def real_calls(prof):
    """The call arcs of a profile that are calls: (caller, callee) ->
    [calls, callgrind's inclusive cost of them]."""
    arcs = {}
    for k, v in prof.arcs.items():
        if k[0] is None or k[0][1] in SWITCH_FUNCTIONS or k[0] == k[1]:
            continue
        if prof.addresses:
            # a call arrives at its callee's entry; an arrival anywhere
            # else is a resumed task returning into a frame callgrind
            # lost track of when the stack switched
            entry = prof.low.get(k[1])
            real = sum(n for a, n in prof.targets.get(k, {}).items() if a == entry)
            if not real:
                continue
            if real != v[0]:
                v = [real, v[1]]
        arcs[k] = v
    return arcs


def difference(p2, p1):
    """The per-function difference of two runs of one server (N2 and N1
    messages): self costs, callgrind's call costs and call counts
    subtracted function by function and arc by arc. Returns (self costs,
    arcs, measured, calls), as attribute takes: the arcs keep the larger
    run's call counts, which say how a callee's cost is shared among its
    callers (a loop called once in both runs still owns what it calls)."""
    self_cost = {f: p2.self_cost.get(f, 0) - p1.self_cost.get(f, 0)
                 for f in set(p2.self_cost) | set(p1.self_cost)}
    a1, a2 = real_calls(p1), real_calls(p2)
    arcs, calls = {}, {}
    for k, (n2, c2) in a2.items():
        n1, c1 = a1.get(k, (0, 0))
        arcs[k] = [n2, c2 - c1]
        calls[k[1]] = calls.get(k[1], 0) + n2 - n1
    for k, (n1, _) in a1.items():
        if k not in a2:
            calls[k[1]] = calls.get(k[1], 0) - n1
    return self_cost, arcs, _measured(p1) and _measured(p2), calls


def _measured(prof):
    """Whether callgrind's call costs can be used as they are: only when
    no task switched stacks."""
    return not any(f[1] in SWITCH_FUNCTIONS for f in prof.self_cost)


def attribute(self_cost, arcs, measured, calls=None):
    """Per function: self, inclusive (module docstring), calls received,
    whether it may switch stacks and whether it is in a call cycle.
    arcs: (caller, callee) -> [calls, cost]. measured: use callgrind's
    call costs (no stack switch in the run) rather than the per-call
    charge. calls: the calls to show per function (default: the arcs')."""
    nodes = set(self_cost)
    for a, b in arcs:
        nodes.add(a)
        nodes.add(b)
    nodes = sorted(nodes)
    succ, calls_in = {}, {}
    for (a, b), (n, _) in arcs.items():
        succ.setdefault(a, []).append(b)
        calls_in[b] = calls_in.get(b, 0) + n
    for v in succ.values():
        v.sort()
    # functions from which a stack switch can be reached
    pred = {}
    for a, b in arcs:
        pred.setdefault(b, []).append(a)
    switching = set()
    todo = [n for n in nodes if n[1] in SWITCH_FUNCTIONS]
    while todo:
        n = todo.pop()
        if n in switching:
            continue
        switching.add(n)
        todo.extend(pred.get(n, ()))
    comps, comp_of = _sccs(nodes, succ)
    # without a switch, callgrind's call costs are exact; with one, its
    # shadow stack loses frames at every switch and charges calls with
    # time spent elsewhere, so every call is charged per call instead
    incl = {}
    for comp in comps:  # callees first
        for f in comp:
            total = self_cost.get(f, 0)
            for g in succ.get(f, ()):
                if comp_of[g] == comp_of[f]:
                    continue  # a call inside the cycle
                n, cost = arcs[(f, g)]
                if measured:
                    total += cost
                elif calls_in.get(g):
                    total += incl[g] * n / calls_in[g]
            incl[f] = total
    out = {}
    for f in nodes:
        out[f] = {
            "self": self_cost.get(f, 0),
            "inclusive": incl[f],
            "calls": (calls if calls is not None else calls_in).get(f, 0),
            "switches": f in switching,
            "cycle": len(comps[comp_of[f]]) > 1,
        }
    return out


def _per_op(cell, base):
    """Per-function figures per operation for one cell (its first kept
    repetition), with the per-file consistency figures."""
    reps = cell.get("profile_reps") or []
    if not reps:
        return None
    rep = reps[0]
    if cell.get("kind") == "net":
        (r1, r2) = rep["runs"]
        p1 = parse_callgrind(os.path.join(base, r1["file"]))
        p2 = parse_callgrind(os.path.join(base, r2["file"]))
        ops = r2["messages"] - r1["messages"]
        files = [(r1["file"], p1), (r2["file"], p2)]
        total = (p2.total - p1.total) / ops
        self_cost, arcs, measured, calls = difference(p2, p1)
    else:
        p = parse_callgrind(os.path.join(base, rep["file"]))
        ops = rep["ops"]
        files = [(rep["file"], p)]
        total = p.total / ops
        self_cost, arcs, measured, calls = p.self_cost, real_calls(p), _measured(p), None
    a = attribute(self_cost, arcs, measured, calls)
    method = "callgrind" if measured else "per-call"
    funcs = {f: dict(v, self=v["self"] / ops, inclusive=v["inclusive"] / ops,
                     calls=v["calls"] / ops)
             for f, v in a.items()}
    checks = []
    for name, p in files:
        s = sum(p.self_cost.values())
        checks.append({"file": name, "total": p.total, "self_sum": s})
    return {"ops": ops, "total_per_op": total, "functions": funcs, "files": checks,
            "inclusive_method": method}


def _slug(cell, i):
    """NN-RUNTIME-SCENARIO, with a variant's or workload's ':' (and
    anything else not plain in a file name) as '-'."""
    name = re.sub(r"[^A-Za-z0-9._+=-]", "-", f"{cell['runtime']}-{cell['scenario']}")
    return f"{i + 1:02d}-{name}"


def _scenario_key(cell):
    """The workload's name: the scenario, or SCENARIO:WORKLOAD."""
    return cell["scenario"]


def _fmt(v):
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _obj(path):
    return os.path.basename(path) if path else "???"


def _cell_markdown(cell, res, top):
    key = _scenario_key(cell)
    lines = [f"# {cell['runtime']} - {key}", "",
             f"Operation: {OPERATIONS.get(key, key)}.  ",
             f"Cell `{cell['id']}` ({cell.get('runtime_kind', 'ax')}), "
             f"{res['ops']:,} operations"
             + (" (N2 - N1 messages)" if cell.get("kind") == "net" else "") + ".  ",
             f"**{_fmt(res['total_per_op'])} instructions per operation** (user space; "
             "callgrind, event Ir).", "",
             "Self: instructions in the function's own code per operation (exact). "
             "Inclusive: self plus its callees' (docs/profiles.md: `~` marks a "
             "function that may switch tasks, whose callees that switch are charged "
             "per call; `cycle`, one in a call cycle). Calls: calls into the "
             "function per operation.", ""]
    funcs = res["functions"]
    total = res["total_per_op"] or 1
    by_self = sorted(funcs.items(), key=lambda kv: (-kv[1]["self"], kv[0]))[:top]
    lines += [f"## Top {len(by_self)} by self", "",
              "| function | object | self/op | self % | inclusive/op | calls/op |",
              "|---|---|---:|---:|---:|---:|"]
    for (ob, fn), v in by_self:
        lines.append(_row(ob, fn, v, total))
    by_incl = sorted(funcs.items(), key=lambda kv: (-kv[1]["inclusive"], kv[0]))[:top]
    lines += ["", f"## Top {len(by_incl)} by inclusive", "",
              "| function | object | self/op | self % | inclusive/op | calls/op |",
              "|---|---|---:|---:|---:|---:|"]
    for (ob, fn), v in by_incl:
        lines.append(_row(ob, fn, v, total))
    lines.append("")
    return "\n".join(lines)


def _row(ob, fn, v, total):
    mark = " ~" if v["switches"] else ""
    mark += " cycle" if v["cycle"] else ""
    return (f"| `{fn}` | {_obj(ob)} | {_fmt(v['self'])} | {100 * v['self'] / total:.1f} | "
            f"{_fmt(v['inclusive'])}{mark} | {_fmt(v['calls'])} |")


def _cell_json(cell, res, top):
    funcs = res["functions"]
    order = sorted(funcs.items(), key=lambda kv: (-kv[1]["self"], kv[0]))
    return {
        "id": cell["id"], "runtime": cell["runtime"],
        "runtime_kind": cell.get("runtime_kind"), "scenario": cell["scenario"],
        "workload": cell.get("workload"), "kind": cell.get("kind"),
        "operation": OPERATIONS.get(_scenario_key(cell), _scenario_key(cell)),
        "ops": res["ops"], "instructions_per_op": res["total_per_op"],
        "inclusive_method": res["inclusive_method"],
        "files": res["files"],
        "functions": [
            {"function": fn, "object": ob, "self": v["self"], "inclusive": v["inclusive"],
             "calls": v["calls"], "may_switch": v["switches"], "in_cycle": v["cycle"]}
            for (ob, fn), v in order[:top]],
    }


def build(directory, top=25):
    """Write the tables for DIR/cells.json; returns the JSON document."""
    path = os.path.join(directory, "cells.json")
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e} (write it with axbench run "
                         f"--measure instructions --profile-functions DIR)") from None
    except ValueError as e:
        raise InputError(f"{path}: not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("schema") != "axbench-profile-input" \
            or doc.get("schema_version") != 1 or not isinstance(doc.get("cells"), list):
        raise InputError(f"{path}: not an axbench-profile-input file, version 1")
    out_cells, index_rows, matrix = [], [], {}
    written = set()
    for i, cell in enumerate(doc["cells"]):
        key = _scenario_key(cell)
        if cell.get("status") != "ok":
            index_rows.append(f"| {cell['runtime']} | {key} | failed: "
                              f"{cell.get('message') or 'no count'} | | |")
            continue
        res = _per_op(cell, directory)
        if res is None:
            continue
        slug = _slug(cell, i)
        written.update((slug + ".md", slug + ".json"))
        write_atomic(os.path.join(directory, slug + ".md"), _cell_markdown(cell, res, top))
        cj = _cell_json(cell, res, top)
        cj["table"] = slug + ".md"
        write_atomic(os.path.join(directory, slug + ".json"),
                     json.dumps(cj, indent=1, sort_keys=True) + "\n")
        out_cells.append(cj)
        top3 = sorted(res["functions"].items(), key=lambda kv: -kv[1]["self"])[:3]
        names = ", ".join(f"`{fn}` {_fmt(v['self'])}" for (ob, fn), v in top3)
        index_rows.append(f"| {cell['runtime']} | {key} | {_fmt(res['total_per_op'])} | "
                          f"{names} | [{slug}.md]({slug}.md) |")
        matrix.setdefault(key, {})[cell["runtime"]] = res["total_per_op"]
    runtimes = []
    for cell in doc["cells"]:
        if cell["runtime"] not in runtimes:
            runtimes.append(cell["runtime"])
    lines = ["# Instructions per operation, by function", "",
             "User-space instructions (callgrind) per operation; servers from the "
             "difference of two runs. Per function tables: self (exact) and "
             "inclusive (docs/profiles.md).", "",
             "| operation | " + " | ".join(runtimes) + " |",
             "|---|" + "---:|" * len(runtimes)]
    for key, row in matrix.items():
        lines.append(f"| {SHORT.get(key, key)} | "
                     + " | ".join(_fmt(row[r]) if r in row else "-" for r in runtimes) + " |")
    lines += ["", "| runtime | workload | instructions/op | top 3 by self (per op) | table |",
              "|---|---|---:|---|---|"] + index_rows + [""]
    write_atomic(os.path.join(directory, "index.md"), "\n".join(lines))
    result = {"schema": "axbench-functions", "schema_version": 1, "top": top,
              "cells": out_cells}
    write_atomic(os.path.join(directory, "functions.json"),
                 json.dumps(result, indent=1, sort_keys=True) + "\n")
    # an earlier run's tables of cells this one does not have would read
    # as this run's: only the tables named as this builder names them go
    for name in os.listdir(directory):
        if _TABLE.match(name) and name not in written:
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass
    return result


def _number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def load(path):
    """Read DIR/functions.json (or the file named) for the report: the
    document, checked member by member; InputError with the first bad
    path."""
    from .results import read_json
    if os.path.isdir(path):
        path = os.path.join(path, "functions.json")
    doc = read_json(path, "functions file")
    if not isinstance(doc, dict) or doc.get("schema") != "axbench-functions":
        raise InputError(f"{path}: not an axbench functions file (write it with axbench "
                         f"run --measure instructions --profile-functions DIR)")
    if doc.get("schema_version") != 1:
        raise InputError(f"{path}: functions schema version {doc.get('schema_version')!r} "
                         f"is not supported (this axbench reads version 1)")
    cells = doc.get("cells")
    if not isinstance(cells, list):
        raise InputError(f"{path}: cells: not a list")
    for i, c in enumerate(cells):
        where = f"{path}: cells[{i}]"
        if not isinstance(c, dict):
            raise InputError(f"{where}: not an object")
        for k in ("runtime", "scenario", "operation"):
            if not isinstance(c.get(k), str):
                raise InputError(f"{where}.{k}: not a string")
        if not _number(c.get("instructions_per_op")):
            raise InputError(f"{where}.instructions_per_op: not a number")
        if not isinstance(c.get("functions"), list):
            raise InputError(f"{where}.functions: not a list")
        for j, f in enumerate(c["functions"]):
            if not isinstance(f, dict) or not isinstance(f.get("function"), str) \
                    or not isinstance(f.get("object"), str) \
                    or not all(_number(f.get(k)) for k in ("self", "inclusive", "calls")):
                raise InputError(f"{where}.functions[{j}]: not a function's figures")
    doc["path"] = path
    return doc


def matrix(doc):
    """(runtimes in order, [(operation short name, {runtime: per op})])."""
    runtimes, rows = [], {}
    for c in doc["cells"]:
        if c["runtime"] not in runtimes:
            runtimes.append(c["runtime"])
        key = _scenario_key(c)
        rows.setdefault(SHORT.get(key, key), {})[c["runtime"]] = c["instructions_per_op"]
    return runtimes, list(rows.items())


def matrix_markdown(doc):
    runtimes, rows = matrix(doc)
    lines = ["| operation | " + " | ".join(runtimes) + " |",
             "|---|" + "---:|" * len(runtimes)]
    for name, row in rows:
        lines.append(f"| {name} | "
                     + " | ".join(_fmt(row[r]) if r in row else "-" for r in runtimes) + " |")
    return lines


def add_parser(sub):
    f = sub.add_parser("functions", prog="axbench functions",
                       help="instructions per operation by function, from a kept profile",
                       description="Write DIR/index.md, DIR/functions.json and one table "
                                   "per cell from the callgrind files that axbench run "
                                   "--measure instructions --profile-functions DIR kept.")
    f.add_argument("directory", metavar="DIR")
    f.add_argument("--top", type=int, default=25,
                   help="functions per table (default 25)")
    return f


def run(args):
    if args.top < 1:
        raise InputError("functions: --top must be at least 1")
    doc = build(args.directory, args.top)
    print(open(os.path.join(args.directory, "index.md"), encoding="utf-8").read(), end="")
    return 0 if doc["cells"] else 1
