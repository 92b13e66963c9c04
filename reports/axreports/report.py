"""`axbench report RESULTS.json [--conform C] [--baseline B] [--history DB]
-o DIR`: one self-contained HTML page (DIR/index.html: inline CSS, charts
as embedded SVG, no script and no external URL, viewable offline) and a
Markdown summary for CI job pages (DIR/summary.md).

Every section has a stable id (SECTIONS) that tests and links rely on; a
section without data says so instead of disappearing.
"""

import html
import json
import math
import os
import zlib

from . import charts, history, stats
from .compare import (BIMODAL_GAP, DEFAULT_GATES, LOAD_BOUND, TAIL_SUFFIXES, Settings,
                      compare_docs, env_differences, metric_change_text)
from .results import (format_param, hist_curve, load_conform, load_ergo, load_results,
                      short_label, varying_params)
from .util import (PERCENTILE_FAMILIES, InputError, display_unit, finite, fmt_ns, fmt_pct, fmt_range, fmt_ratio,
                   fmt_value, metric_title, note, scenario_title, warn, write_atomic,
                   claim_output)

# (id, title): the order of the page; ids are part of the interface.
SECTIONS = [
    ("answer", "At a glance"),
    ("summary", "All cells"),
    ("throughput", "Throughput"),
    ("latency", "Latency percentiles"),
    ("offered-load", "Latency against offered load"),
    ("faults", "Under faults"),
    ("scaling", "Scaling with connections"),
    ("cores", "Scaling with cores (thread-per-core)"),
    ("cpu", "CPU per operation"),
    ("functions", "Instructions by function"),
    ("memory", "Memory"),
    ("conformance", "Conformance matrix"),
    ("ergonomics", "Ergonomics"),
    ("environment", "Environment"),
    ("comparison", "Comparison with the baseline"),
    ("history", "History"),
]

# Shorter names for the navigation bar, so it fits one line.
NAV = {"offered-load": "Offered load", "faults": "Faults", "scaling": "Scaling", "cores": "Cores",
       "cpu": "CPU", "conformance": "Conformance", "comparison": "Comparison", "latency": "Latency"}

# A report of a big sweep would otherwise carry hundreds of charts.
MAX_CHARTS_PER_SECTION = 24

# Metrics of a network cell shown in the CPU section's table.
CPU_METRICS = [
    ("server_cpu_us_per_msg", "server CPU/msg"),
    ("loadgen_cpu_us_per_msg", "load gen. CPU/msg"),
    ("server_cpu_util", "server CPU util."),
    ("server_sys_share", "server sys share"),
    ("switches_per_msg", "switches/msg"),
    ("loop_iterations_per_msg", "loop iter./msg"),
    ("events_per_iteration", "events/iter."),
]

# The headline table: a figure whose confidence interval of the median
# reaches further than this share of the median on either side is "wide";
# ratios to the reference get a percentile-bootstrap CI from this many
# resamples (seeded, so the same file gives the same page).
WIDE_CI = 0.10
RATIO_RESAMPLES = 2000
RATIO_SEED = 0x61787270

# Flags of a figure in the headline table: (badge, explanation).
FLAGS = {
    "lg": ("LG", "load-generator-bound: the load generator, not the server, was the bottleneck: throughput "
                       "and latency describe the client as much as the runtime"),
    "wide": ("wide", f"the confidence interval of the median reaches more than "
                     f"{WIDE_CI * 100:g}% from it: repetitions disagree"),
    "bimodal": ("bimodal", f"the repetitions split into two groups (a gap above "
                           f"{BIMODAL_GAP * 100:g}% of the median): the median hides it"),
    "busy": ("busy", "other processes took more than the interference threshold of the "
                     "pinned CPUs during this cell"),
}

# The order of a scenario's charts in the history: headline metrics first.
HEADLINE = {"throughput": 0, "latency_p50": 1, "server_cpu_us_per_msg": 2,
            "server_maxrss_kib": 3}

CONFORM_CLASSES = {"PASS": "pass", "FAIL": "fail", "UNSUPPORTED": "unsup",
                   "TIMEOUT": "timeout", "CRASH": "crash", "PENDING": "pending",
                   # the environment kept the case from running (a resource
                   # limit): not a verdict on the runtime
                   "ERROR": "unsup"}

CSS = """
:root { --fg:#1d232a; --muted:#5b6673; --line:#d9dee4; --bg:#fff; --soft:#f5f7f9; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--fg); background: var(--bg); margin: 0; }
header { padding: 10px 28px 6px; border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 2px; font-size: 20px; }
header p.warn { margin: 4px 0 2px; padding: 3px 10px; }
header p { margin: 2px 0; color: var(--muted); }
nav { padding: 6px 28px; border-bottom: 1px solid var(--line); background: var(--soft);
      position: sticky; top: 0; z-index: 1; }
nav a { margin-right: 14px; color: #0b5cad; text-decoration: none; white-space: nowrap; }
main { padding: 0 28px 40px; max-width: 1400px; }
section { border-bottom: 1px solid var(--line); padding: 10px 0 18px; }
section h2 { font-size: 18px; margin: 12px 0 8px; }
section#answer { padding-top: 0; }
section#answer h2 { margin: 8px 0 4px; }
section h3 { font-size: 15px; margin: 14px 0 6px; }
.note { color: var(--muted); }
.placeholder { color: var(--muted); font-style: italic; padding: 8px 12px;
               background: var(--soft); border-left: 3px solid var(--line); }
.warn { background: #fff4e5; border-left: 3px solid #f0a030; padding: 6px 10px; margin: 6px 0; }
.bad { background: #fdecea; border-left: 3px solid #d62728; padding: 6px 10px; margin: 6px 0; }
.good { background: #edf7ed; border-left: 3px solid #2ca02c; padding: 6px 10px; margin: 6px 0; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.failed td { background: #fdecea; }
.charts { display: flex; flex-wrap: wrap; gap: 10px 24px; align-items: flex-start; }
figure { margin: 6px 0; }
figure img { max-width: 100%; height: auto; display: block; }
.charts figure { max-width: 100%; }
figcaption { color: var(--muted); font-size: 12px; max-width: 720px; }
td.pass { background: #c8e6c9; } td.fail { background: #ffcdd2; }
td.unsup { background: #eeeeee; color: #666; } td.timeout { background: #ffe0b2; }
td.crash { background: #e57373; color: #fff; } td.pending { background: #fff9c4; }
td.worse { background: #ffcdd2; } td.better { background: #c8e6c9; }
td.unchanged { background: #f1f3f5; } td.nc { background: #eeeeee; color: #666; }
td.inconclusive { background: #ffe0b2; }
.conform td { text-align: center; font-size: 12px; }
.conform td.case { text-align: left; white-space: nowrap; }
details { margin: 6px 0; } summary { cursor: pointer; color: #0b5cad; }
code { font-size: 12px; background: var(--soft); padding: 0 3px; }
header .title { color: var(--fg); }
header .warn { color: var(--fg); }
.answer p.bad, .answer p.good, .answer p.warn { margin: 4px 0; padding: 4px 10px; }
.answer ul { margin: 2px 0 4px; padding-left: 22px; }
.answer small.why { display: block; white-space: nowrap; overflow: hidden;
                    text-overflow: ellipsis; font-size: 12px; }
.answer li { margin: 0; }
table.hl { font-size: 12.5px; margin-top: 4px; }
table.hl th { text-align: center; font-size: 12px; line-height: 1.15; }
table.hl td { text-align: center; line-height: 1.25; padding: 2px 5px; }
table.hl td .v, table.hl td small { white-space: nowrap; }
table.hl td.sc { text-align: left; white-space: nowrap; line-height: 1.25; }
table.hl th:first-child { white-space: normal; max-width: 170px; text-align: left; }
table.hl td.sc code { font-size: 11px; }
table.hl small { color: var(--muted); font-size: 11px; }
table.hl td.ref { background: #eef3fb; }
table.hl td.better { background: #dcefdc; } table.hl td.worse { background: #fbdcdc; }
table.hl td.none { color: #aaa; } table.hl td.failed { background: #fbdcdc; color: #a11; }
.flag { display: inline-block; font-size: 9.5px; line-height: 1.2; padding: 0 2px;
        margin-left: 2px;
        border-radius: 3px; background: #ffe3b3; color: #6b4100; font-weight: 600;
        vertical-align: 1px; }
.flag.lg { background: #e3e6ea; color: #333; }
ul.unsup { color: var(--muted); font-size: 12.5px; margin: 2px 0; padding-left: 20px; }
"""


def esc(x):
    return html.escape("" if x is None else str(x), quote=True)


def table(headers, rows, classes=None, row_classes=None, num_cols=()):
    """An HTML table; cells are escaped unless wrapped as Raw."""
    out = ["<table>"]
    if headers:
        out.append("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr>")
    for i, row in enumerate(rows):
        rc = row_classes[i] if row_classes else None
        tr = f'<tr class="{rc}">' if rc else "<tr>"
        tds = []
        for j, v in enumerate(row):
            cls = []
            if j in num_cols:
                cls.append("num")
            if classes and classes[i] and j < len(classes[i]) and classes[i][j]:
                cls.append(classes[i][j])
            attr = f' class="{" ".join(cls)}"' if cls else ""
            if isinstance(v, Raw):
                tds.append(f"<td{attr}>{v.text}</td>")
            elif isinstance(v, Titled):
                tds.append(f'<td{attr} title="{esc(v.title)}">{esc(v.text)}</td>')
            else:
                tds.append(f"<td{attr}>{esc(v)}</td>")
        out.append(tr + "".join(tds) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def kv_table(rows):
    """A two-column table of facts, without a header row."""
    return table(None, rows)


class Raw:
    """Trusted HTML inside a table cell."""

    def __init__(self, text):
        self.text = text


class Titled:
    """Escaped text with a tooltip."""

    def __init__(self, text, title):
        self.text, self.title = text, title


def figure(svg, caption=None, alt="chart"):
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return (f'<figure><img alt="{esc(alt)}" src="{charts.data_uri(svg)}">{cap}</figure>')


def placeholder(text):
    return f'<p class="placeholder">{esc(text)}</p>'


def med_ci_text(m):
    """'52.1k [47.3k, 57.0k] msgs/s' from a Metric."""
    if m is None:
        return "-"
    return fmt_range(m.median, m.ci_low, m.ci_high, m.unit)


def mval(cell, name):
    m = cell.metrics.get(name)
    return m.median if m is not None and finite(m.median) else math.nan


def mtriple(cell, name):
    m = cell.metrics.get(name)
    if m is None or not finite(m.median):
        return None
    return (m.median, m.ci_low, m.ci_high)


def rss_kib(cell):
    for name in ("server_maxrss_kib", "maxrss_kib"):
        if name in cell.metrics:
            return cell.metrics[name]
    return None


class Report:
    def __init__(self, doc, conform=None, base=None, hist=None, floor=0.03, ergo=None,
                 max_interference=0.10, functions=None):
        self.doc = doc
        self.functions = functions
        self.ergo = ergo
        self.conform = conform
        self.base = base
        self.hist = hist
        self.floor = floor
        self.max_interference = max_interference
        self.varying = varying_params(doc.cells + (base.cells if base else []))
        self.kinds = {c.runtime: c.runtime_kind for c in doc.cells}
        order = []
        for c in doc.cells:
            if c.runtime not in order:
                order.append(c.runtime)
        if conform:
            for r in conform.runtimes:
                if r["name"] not in order:
                    order.append(r["name"])
        self.colours = charts.Colours(order)
        self.scenarios = []
        for c in doc.cells:
            if c.scenario not in self.scenarios:
                self.scenarios.append(c.scenario)
        self.comparison = None
        if base:
            self.comparison = compare_docs(base, doc, Settings(
                floor=floor, max_interference=max_interference))
        self.md = []

    # -- helpers -----------------------------------------------------------

    def label(self, cell):
        return short_label(cell, self.varying)

    def cells_of(self, scenario, ok_only=True):
        return [c for c in self.doc.cells if c.scenario == scenario and (c.ok or not ok_only)]

    def groups(self, cells):
        """Distinct parameter labels in order of appearance."""
        out = []
        for c in cells:
            lab = self.label(c)
            if lab not in out:
                out.append(lab)
        return out

    def runtimes(self, cells):
        out = []
        for c in cells:
            if c.runtime not in out:
                out.append(c.runtime)
        return out

    def bars(self, scenario, cells, metric_name, title, ylabel, scale=1.0, hatch_lg=False):
        """Grouped bars of one metric: median, CI, a dot per repetition;
        hatch_lg hatches the bars of load-generator-bound cells."""
        groups = self.groups(cells)
        series = {}
        for rt in self.runtimes(cells):
            vals = []
            for g in groups:
                cell = next((c for c in cells if c.runtime == rt and self.label(c) == g), None)
                t = mtriple(cell, metric_name) if cell else None
                if t:
                    t = t + (cell.metrics[metric_name].values,
                             hatch_lg and cell.loadgen_saturated)
                vals.append(t)
            series[rt] = vals
        return charts.grouped_bars(title, groups, series, ylabel, self.colours, scale)

    # -- the headline table ------------------------------------------------------

    def panels(self, names):
        """Split runtimes into groups of at most charts.MAX_LINES_PER_AXIS,
        ax runtimes apart from the native references, evenly sized."""
        out = []
        ax = [n for n in names if self.kinds.get(n) == "ax"]
        for grp in (ax, [n for n in names if n not in ax]):
            if not grp:
                continue
            k = math.ceil(len(grp) / charts.MAX_LINES_PER_AXIS)
            size = math.ceil(len(grp) / k)
            out += [grp[i:i + size] for i in range(0, len(grp), size)]
        return out

    def runtime_order(self):
        """ax runtimes first, then the native references, each in the
        order of the result file."""
        rts = self.runtimes(self.doc.cells)
        return [r for r in rts if self.kinds.get(r) == "ax"] + \
            [r for r in rts if self.kinds.get(r) != "ax"]

    @staticmethod
    def lead_metrics(scenario, cells):
        """(lead, secondary) metric names of a scenario: the lead is its
        stable figure (instruction counts when measured, else
        compare.DEFAULT_GATES), the secondary its throughput (network
        scenarios) or its second gated figure."""
        have = []
        for c in cells:
            have += [n for n in c.metrics if n not in have]
        instr = [n for n in have if any(c.metrics[n].instructions for c in cells
                                        if n in c.metrics)]
        gates = [g for g in DEFAULT_GATES.get(scenario, ()) if g in have]
        if instr:
            lead = "instructions_per_op" if "instructions_per_op" in instr else instr[0]
        elif gates:
            lead = gates[0]
        else:
            p = cells[0].primary_metric()
            lead = p.name if p else None
        second = None
        if "throughput" in have and lead != "throughput":
            second = "throughput"
        elif len(gates) > 1 and gates[1] != lead:
            second = gates[1]
        return lead, second

    @staticmethod
    def reference_of(cells, kinds, lead):
        """The reference cell of a row: epoll's (the hand-written reference
        runtime) when it succeeded, else the first ax runtime's, else the
        first cell with the lead figure."""
        ok = [c for c in cells if c.ok and lead in c.metrics]
        for pick in ([c for c in ok if c.runtime == "epoll"],
                     [c for c in ok if kinds.get(c.runtime) == "ax"], ok):
            if pick:
                return pick[0]
        return None

    def busy_cells(self):
        """The ok cells in which other processes took more than the
        interference threshold of the pinned CPUs."""
        return [c for c in self.doc.cells if c.ok and (c.others_share() or 0)
                > self.max_interference]

    def figure_of(self, cell, name, ref, scenario, busy_badge):
        """One figure of one cell against the reference cell: value, ratio
        of medians with its bootstrap CI, colour class and flags."""
        m = cell.metrics.get(name)
        if m is None or not finite(m.median):
            return None
        f = {"name": name, "metric": m, "ratio": math.nan, "lo": math.nan, "hi": math.nan,
             "cls": None, "flags": [], "ref": ref is cell}
        rm = ref.metrics.get(name) if ref is not None else None
        if ref is not None and ref is not cell and rm is not None and finite(rm.median) \
                and rm.median > 0:
            f["ratio"] = m.median / rm.median
            if len(m.values) >= 2 and len(rm.values) >= 2:
                seed = RATIO_SEED ^ zlib.crc32(json.dumps(
                    [cell.runtime, ref.runtime, scenario, list(cell.key[2]), name]).encode())
                lo, hi = stats.bootstrap_ratio_ci(rm.values, m.values, 0.95, RATIO_RESAMPLES,
                                                  seed)
                f["lo"], f["hi"] = lo, hi
                if finite(lo) and finite(hi) and m.better:
                    up, down = lo > 1 + self.floor, hi < 1 - self.floor
                    if up or down:
                        f["cls"] = "better" if (up and m.better > 0) or (down and m.better < 0) \
                            else "worse"
        if not m.instructions:
            if name.startswith(LOAD_BOUND) and cell.loadgen_saturated:
                f["flags"].append("lg")
            if stats.is_bimodal(m.values, BIMODAL_GAP)[0]:
                f["flags"].append("bimodal")
            elif finite(m.ci_low) and finite(m.ci_high) and m.median and max(
                    m.median - m.ci_low, m.ci_high - m.median) > WIDE_CI * abs(m.median):
                f["flags"].append("wide")
            if busy_badge and (cell.others_share() or 0) > self.max_interference:
                f["flags"].append("busy")
        return f

    def headline(self):
        """[{scenario, label, lead, second, ref, cells: {runtime: entry}}]
        with entry {cell, lead, second} (figures from figure_of), one row
        per scenario and parameter set."""
        if hasattr(self, "_headline"):
            return self._headline
        rows = []
        busy = self.busy_cells()
        ok_cells = [c for c in self.doc.cells if c.ok]
        # a badge on every cell says nothing: when most cells are busy the
        # title line says it once
        self.busy_badge = bool(busy) and len(busy) * 2 <= len(ok_cells)
        for sc in self.scenarios:
            cells = [c for c in self.doc.cells if c.scenario == sc]
            ok = [c for c in cells if c.ok]
            if not ok:
                rows.append({"scenario": sc, "label": "-", "lead": None, "second": None,
                             "ref": None, "cells": {c.runtime: {"cell": c} for c in cells}})
                continue
            lead, second = self.lead_metrics(sc, ok)
            for lab in self.groups(cells):
                group = [c for c in cells if self.label(c) == lab]
                ref = self.reference_of(group, self.kinds, lead)
                row = {"scenario": sc, "label": lab, "lead": lead, "second": second,
                       "ref": ref, "cells": {}}
                for c in group:
                    e = {"cell": c}
                    if c.ok:
                        e["lead"] = self.figure_of(c, lead, ref, sc, self.busy_badge)
                        e["second"] = self.figure_of(c, second, ref, sc, False) \
                            if second else None
                    row["cells"][c.runtime] = e
                rows.append(row)
        self._headline = rows
        return rows

    def fig_html(self, f, scenario, secondary=False):
        """A figure inside a headline cell."""
        m = f["metric"]
        unit = display_unit(m.name, m.unit, scenario)
        flags = "".join(f'<span class="flag {k}" title="{esc(FLAGS[k][1])}">'
                        f"{esc(FLAGS[k][0])}</span>" for k in f["flags"])
        if f["ref"] or not finite(f["ratio"]):
            text = esc(fmt_value(m.median, unit))
        else:
            text = esc(fmt_ratio(f["ratio"]))
        if secondary:
            return f'<span class="v"><small>{text}</small></span>{flags}'
        ci = ""
        if not f["ref"] and finite(f["lo"]) and finite(f["hi"]):
            ci = f"<br><small>{esc(fmt_ratio(f['lo'])[:-1])}\u2013{esc(fmt_ratio(f['hi']))}</small>"
        elif f["ref"]:
            ci = "<br><small>reference</small>"
        return f'<span class="v"><b>{text}</b></span>{flags}{ci}'

    def fig_tip(self, f, ref, scenario):
        m = f["metric"]
        unit = display_unit(m.name, m.unit, scenario)
        vals = ", ".join(fmt_value(v, unit) for v in m.values)
        tip = (f"{metric_title(m.name, scenario)}: {fmt_range(m.median, m.ci_low, m.ci_high, unit)}"
               f" (repetitions: {vals})")
        if not f["ref"] and finite(f["ratio"]) and ref is not None:
            tip += (f"; {fmt_ratio(f['ratio'])} of {ref.runtime}'s "
                    f"{fmt_value(ref.metrics[m.name].median, unit)}")
            if finite(f["lo"]):
                tip += f" [{fmt_ratio(f['lo'])}, {fmt_ratio(f['hi'])}] (95% bootstrap CI)"
        for k in f["flags"]:
            tip += f"; {FLAGS[k][0]}: {FLAGS[k][1]}"
        return tip

    def headline_html(self):
        rows = self.headline()
        rts = [r for r in self.runtime_order()
               if any(r in row["cells"] for row in rows)]
        # runtimes that were measured nowhere get no column
        rts = [r for r in rts if any(row["cells"].get(r, {}).get("cell") is not None
                                     and not row["cells"][r]["cell"].unsupported
                                     for row in rows)]
        head = "".join(f"<th>{esc(r).replace('-', '-<wbr>', 1)}</th>" for r in rts)
        out = ['<table class="hl">', f"<tr><th>scenario: the figure that leads \u2193 lower / \u2191 higher is better</th>{head}</tr>"]
        for row in rows:
            sc = row["scenario"]
            lead, second = row["lead"], row["second"]
            desc = ""
            arrow = {1: " \u2191", -1: " \u2193"}
            if lead:
                some = next((e["cell"].metrics[lead] for e in row["cells"].values()
                             if e["cell"].ok and lead in e["cell"].metrics), None)
                desc = esc(metric_title(lead, sc)) + arrow.get(some.better if some else 0, "")
                if second:
                    some = next((e["cell"].metrics[second] for e in row["cells"].values()
                                 if e["cell"].ok and second in e["cell"].metrics), None)
                    desc += ("<br>then " + esc(metric_title(second, sc).lower())
                             + arrow.get(some.better if some else 0, ""))
            lab = f" <small>{esc(row['label'])}</small>" if row["label"] != "-" else ""
            tds = [f'<td class="sc"><b title="{esc(sc)}">{esc(scenario_title(sc))}</b>{lab}'
                   f"<br><small>{desc}</small></td>"]
            for rt in rts:
                e = row["cells"].get(rt)
                c = e["cell"] if e else None
                if c is None:
                    tds.append('<td class="none" title="not run">&middot;</td>')
                elif c.unsupported:
                    tds.append(f'<td class="none" title="unsupported: {esc(c.message or "")}">'
                               "&middot;</td>")
                elif not c.ok:
                    tds.append(f'<td class="failed" title="{esc(c.message or "")}"><b>'
                               f"{esc(c.status)}</b></td>")
                elif not e.get("lead"):
                    tds.append('<td class="none">-</td>')
                else:
                    f = e["lead"]
                    cls = "ref" if f["ref"] else (f["cls"] or "")
                    tip = self.fig_tip(f, row["ref"], sc)
                    body = self.fig_html(f, sc)
                    if e.get("second"):
                        body += "<br>" + self.fig_html(e["second"], sc, secondary=True)
                        tip += " | " + self.fig_tip(e["second"], row["ref"], sc)
                    tds.append(f'<td class="{cls}" title="{esc(tip)}">{body}</td>')
            out.append("<tr>" + "".join(tds) + "</tr>")
        out.append("</table>")
        return "\n".join(out)

    def unsupported_lines(self):
        """[(runtime, text)]: one line per runtime with every scenario it
        does not support, grouped by the reason."""
        by = {}
        for c in self.doc.cells:
            if c.unsupported:
                reasons = by.setdefault(c.runtime, {})
                lst = reasons.setdefault(c.message or "no reason given", [])
                if c.scenario not in lst:
                    lst.append(c.scenario)
        out = []
        for rt in self.runtime_order():
            if rt in by:
                out.append((rt, "; ".join(f"{', '.join(scs)} ({reason})"
                                          for reason, scs in by[rt].items())))
        return out

    def failed_cells(self):
        return [c for c in self.doc.cells
                if not c.ok and c.status not in ("unsupported", "pending")]

    def conform_failures(self):
        """[(case id, runtime, result)] of FAIL, TIMEOUT and CRASH."""
        cf = self.conform
        if cf is None:
            return []
        return [(case["id"], rt, cf.results[rt][case["id"]]) for case in cf.cases
                for rt in cf.results
                if isinstance(cf.results[rt].get(case["id"]), dict)
                and cf.results[rt][case["id"]].get("outcome") in ("FAIL", "TIMEOUT", "CRASH")]

    def changed_cells(self):
        """Cells of the comparison whose verdict is worse, better or
        inconclusive, worse first, with the change that decided it."""
        rep = self.comparison
        out = []
        for verdict in ("worse", "inconclusive", "better"):
            for c in rep["cells"]:
                if c["verdict"] != verdict:
                    continue
                ms = [m for m in c["metrics"] if m["gated"]
                      and m["verdict"] in ("worse", "better")]
                what = "; ".join(f"{metric_title(m['metric'], c['scenario'])} "
                                 f"{metric_change_text(m)}" for m in ms)
                if verdict == "inconclusive" and c["reason"]:
                    what = c["reason"]
                out.append((verdict, c, what))
        return out

    # -- sections ------------------------------------------------------------

    def title_facts(self):
        """(facts line, interference note or None) for the top of the page."""
        d = self.doc
        cpu = d.env.get("cpu") if isinstance(d.env.get("cpu"), dict) else {}
        machine = d.env.get("hostname") or "unknown host"
        if cpu.get("model"):
            machine += f" ({cpu['model']}" + (f" \u00d7 {cpu['count']}" if cpu.get("count")
                                              else "") + ")"
        when = (d.time or "").replace("T", " ").replace("Z", " UTC")
        cfg = d.config
        facts = [f"commit {d.commit[:12]}{' (dirty)' if d.dirty else ''}", when or "no date",
                 machine]
        if cfg.get("profile") or cfg.get("reps"):
            facts.append(", ".join(x for x in (
                f"{cfg['profile']} profile" if cfg.get("profile") else "",
                f"{cfg['reps']} repetitions per cell" if cfg.get("reps") else "") if x))
        if d.status != "complete":
            facts.append(f"status {d.status}")
        shares = sorted(v for v in (c.others_share() for c in d.cells if c.ok) if v is not None)
        busy = [v for v in shares if v > self.max_interference]
        inter = None
        if busy:
            inter = (f"other processes took a median {min(stats.median(shares), 1) * 100:.0f}% "
                     f"(at most {min(shares[-1], 1) * 100:.0f}%) of the pinned CPUs, above "
                     f"{self.max_interference * 100:g}% in {len(busy)} of {len(shares)} cells, "
                     "whose wall-clock figures are not trustworthy.")
        return " \u00b7 ".join(facts), inter

    def sec_answer(self):
        """The first screen: the verdict against the baseline, conformance
        failures, failed cells, the headline table, unsupported cells."""
        parts = ['<div class="answer">']
        md = self.md_answer = []
        rep = self.comparison
        if rep is not None:
            summ = rep["summary"]
            counts = summ["counts"]
            cls = {"regression": "bad", "pass": "good"}.get(summ["verdict"], "warn")
            b = rep["base"]
            parts.append(
                f'<p class="{cls}"><b>Against the baseline: {esc(summ["verdict"].upper())}</b>: '
                f'{counts["worse"]} worse, {counts["better"]} better, {counts["unchanged"]} '
                f'unchanged, {counts["inconclusive"]} inconclusive, {counts["not comparable"]} '
                f'not comparable (baseline commit {esc(str(b["commit"])[:12])}, '
                f'{esc(b["time"])}; <a href="#comparison">details</a>)<br>'
                f'<small class="why" title="{esc("; ".join(summ["why"]))}">'
                f'{esc("; ".join(summ["why"]))}</small></p>')
            md.append(f"**Against the baseline: {summ['verdict'].upper()}** (commit "
                      f"`{str(b['commit'])[:12]}`): {'; '.join(summ['why'])}")
            changed = self.changed_cells()
            if changed:
                parts.append("<ul>")
                for verdict, c, what in changed[:6]:
                    lab = f" {c['label']}" if c["label"] != "-" else ""
                    parts.append(f"<li><b>{esc(verdict)}</b>: {esc(c['runtime'])} "
                                 f"{esc(c['scenario'])}{esc(lab)}: {esc(what)}</li>")
                if len(changed) > 6:
                    parts.append(f"<li>and {len(changed) - 6} more in "
                                 '<a href="#comparison">the comparison</a></li>')
                parts.append("</ul>")
                md.append("")
                for verdict, c, what in changed:
                    md.append(f"- **{verdict}**: {c['runtime']} {c['scenario']} "
                              f"{c['label'] if c['label'] != '-' else ''}: {what}".rstrip())
            md.append("")
        if self.conform is not None:
            cf = self.conform
            bad = self.conform_failures()
            rts = [r for r in cf.results]
            if bad:
                byrt = {}
                for cid, rt, r in bad:
                    byrt.setdefault(rt, []).append((cid, r))
                md.append(f"**Conformance: {len(bad)} failure(s)** ({len(cf.cases)} cases on "
                          f"{len(rts)} runtimes):")
                md.append("")
                items_html = []
                for rt, items in byrt.items():
                    text = "; ".join(
                        f"{cid} {r.get('outcome')}"
                        + (f" ({(r.get('detail') or '').splitlines()[0][:200]})"
                           if r.get("detail") else "") for cid, r in items)
                    md.append(f"- {rt}: {text}")
                    cases = ", ".join(
                        f'<span title="{esc(r.get("outcome"))}: {esc(r.get("detail") or "")}">'
                        f"{esc(cid)}{'' if r.get('outcome') == 'FAIL' else ' ' + esc(r.get('outcome'))}"
                        "</span>" for cid, r in items)
                    items_html.append(f"<b>{esc(rt)}</b> {cases}")
                parts.append(f'<p class="bad"><b>Conformance: {len(bad)} failure(s)</b> in '
                             f"{len(cf.cases)} cases on {len(rts)} runtimes: "
                             + "; ".join(items_html)
                             + ' (<a href="#conformance">matrix</a>; hover a case for its '
                             "detail)</p>")
            else:
                unsup = sum((cf.totals.get(rt) or {}).get("UNSUPPORTED", 0) for rt in rts)
                parts.append(f'<p class="good"><b>Conformance: no failure</b>: '
                             f"{len(cf.cases)} cases on {len(rts)} runtimes"
                             + (f", {unsup} unsupported" if unsup else "") + ".</p>")
                md.append(f"**Conformance: no failure** ({len(cf.cases)} cases on {len(rts)} "
                          "runtimes)")
            md.append("")
        failed = self.failed_cells()
        if failed:
            parts.append(f'<p class="bad"><b>{len(failed)} cell(s) failed</b>: ' + "; ".join(
                f'<span title="{esc(c.message or "")}">{esc(c.runtime)} {esc(c.scenario)}'
                + (f" {esc(self.label(c))}" if self.label(c) != "-" else "")
                + f": {esc(c.status)}"
                + (f" ({esc(c.message if len(c.message) <= 90 else c.message[:87] + '...')})"
                   if c.message else "") + "</span>"
                for c in failed[:4]) + (f"; and {len(failed) - 4} more" if len(failed) > 4
                                        else "") + "</p>")
        rows = self.headline()
        if not rows:
            parts.append(placeholder("no cells in these results"))
        else:
            parts.append(self.headline_html())
            legend = ("Each runtime against the reference of its row, whose own value is "
                      "shown (epoll, the hand-written reference runtime, where it ran, else the "
                      "first ax runtime): the ratio of medians of the figure that leads (the stable "
                      "one, which the comparison gates on) with its 95% bootstrap CI; below, "
                      "throughput or a second figure. Green: better, red: worse, the whole "
                      f"CI beyond \u00b1{self.floor * 100:g}%. Flags: "
                      + "; ".join(f"<b>{esc(b)}</b> {esc(t)}" for k, (b, t) in FLAGS.items()
                                  if k != "busy" or self.busy_badge)
                      + ". Hover a cell for the values of each repetition.")
            parts.append(f'<p class="note" style="font-size:12px">{legend}</p>')
        unsup = self.unsupported_lines()
        if unsup:
            n = sum(1 for c in self.doc.cells if c.unsupported)
            parts.append(f'<p class="note" style="margin-bottom:0">Not measured ({n} '
                         "unsupported cells):</p>")
            parts.append('<ul class="unsup">' + "".join(
                f"<li><b>{esc(rt)}</b>: {esc(text)}</li>" for rt, text in unsup) + "</ul>")
        parts.append("</div>")
        md.extend(self.headline_md())
        return "\n".join(parts)

    def headline_md(self):
        rows = self.headline()
        if not rows:
            return []
        rts = [r for r in self.runtime_order()
               if any(row["cells"].get(r, {}).get("cell") is not None
                      and not row["cells"][r]["cell"].unsupported for row in rows)]
        out = ["Each runtime against the reference of its row (epoll when it ran): ratio of "
               "medians of the stable figure [95% bootstrap CI]; then throughput or a second "
               "figure; flags in italics.", "",
               "| scenario | leads with | " + " | ".join(rts) + " |",
               "|---|---|" + "---|" * len(rts)]

        def ftext(f, sc, second=False):
            m = f["metric"]
            unit = display_unit(m.name, m.unit, sc)
            if f["ref"] or not finite(f["ratio"]):
                t = fmt_value(m.median, unit) + (" (ref.)" if f["ref"] and not second else "")
            else:
                t = fmt_ratio(f["ratio"])
                if not second and finite(f["lo"]):
                    t += f" [{fmt_ratio(f['lo'])[:-1]}, {fmt_ratio(f['hi'])[:-1]}]"
            if f["cls"] == "worse" and not second:
                t = f"**{t}**"
            flags = " ".join(f"*{FLAGS[k][0]}*" for k in f["flags"])
            return t + (f" {flags}" if flags else "")

        for row in rows:
            sc = row["scenario"]
            lead = metric_title(row["lead"], sc) if row["lead"] else "-"
            if row["second"]:
                lead += f" (then {metric_title(row['second'], sc).lower()})"
            cols = []
            for rt in rts:
                e = row["cells"].get(rt)
                c = e["cell"] if e else None
                if c is None or c.unsupported:
                    cols.append("")
                elif not c.ok:
                    cols.append(c.status)
                elif not e.get("lead"):
                    cols.append("-")
                else:
                    t = ftext(e["lead"], sc)
                    if e.get("second"):
                        t += "; " + ftext(e["second"], sc, True)
                    cols.append(t)
            lab = f" {row['label']}" if row["label"] != "-" else ""
            out.append(f"| {sc}{lab} | {lead} | " + " | ".join(x.replace("|", "\\|")
                                                              for x in cols) + " |")
        unsup = self.unsupported_lines()
        if unsup:
            out.append("")
            out.append("Not measured (unsupported):")
            out.append("")
            out += [f"- {rt}: {text}" for rt, text in unsup]
        out.append("")
        return out

    def sec_summary(self):
        d = self.doc
        cfg = d.config
        counts = d.raw.get("counts") or {}
        parts = []
        info = [
            ("status", d.status),
            ("commit", f"{d.commit}{' (dirty work tree)' if d.dirty else ''}"),
            ("started", d.time),
            ("finished", d.raw.get("finished_utc") or "-"),
            ("runtimes", ", ".join(cfg.get("runtimes") or [])),
            ("scenarios", ", ".join(cfg.get("scenarios") or [])),
            ("repetitions per cell", cfg.get("reps")),
            ("profile", cfg.get("profile")),
            ("pinning", cfg.get("pin")),
            ("cells", ", ".join(f"{k} {v}" for k, v in counts.items()
                                if k not in ("cells", "reps_done", "reps_planned"))),
        ]
        parts.append(kv_table([(k, "-" if v is None else v) for k, v in info]))
        if d.status != "complete":
            parts.append(f'<p class="warn">This run is <b>{esc(d.status)}</b>: some cells '
                         "may be missing or incomplete.</p>")
        leads = {row["scenario"]: (row["lead"], row["second"]) for row in self.headline()}
        rows, rclasses = [], []
        for c in d.cells:
            if c.unsupported:
                continue   # one line per runtime below
            lead, second = leads.get(c.scenario, (None, None))
            lm = c.metrics.get(lead) if lead else None
            sm = c.metrics.get(second) if second else c.primary_metric()
            if sm is lm:
                sm = None
            lat50 = mval(c, "latency_p50")
            lat99 = mval(c, "latency_p99")
            rss = rss_kib(c)
            notes = []
            if c.loadgen_saturated:
                notes.append("load-generator-bound")
            if c.summary and c.summary.get("rate_sustained") is False:
                notes.append("offered rate not sustained")
            share = c.others_share() if c.ok else None
            if share is not None and share > self.max_interference:
                notes.append(f"others took {min(share, 1) * 100:.0f}% of the pinned CPUs")
            if not c.ok:
                notes.append(c.message or "")

            def text(m):
                if m is None:
                    return "-"
                unit = display_unit(m.name, m.unit, c.scenario)
                return f"{metric_title(m.name, c.scenario)}: " + fmt_range(
                    m.median, m.ci_low, m.ci_high, unit)
            rows.append((c.runtime, c.scenario, self.label(c), c.status, text(lm), text(sm),
                         fmt_ns(lat50), fmt_ns(lat99),
                         fmt_value(rss.median, rss.unit) if rss else "-",
                         "; ".join(n for n in notes if n)))
            rclasses.append(None if c.ok or c.status == "pending" else "failed")
        parts.append("<h3>Cells</h3>")
        parts.append(table(["runtime", "scenario", "params", "status",
                            "stable figure: median [CI]", "then: median [CI]", "p50", "p99",
                            "peak RSS", "notes"], rows,
                           row_classes=rclasses, num_cols=(6, 7, 8)))
        unsup = self.unsupported_lines()
        if unsup:
            parts.append('<p class="note" style="margin-bottom:0">Unsupported, not in the '
                         "table:</p>")
            parts.append('<ul class="unsup">' + "".join(
                f"<li><b>{esc(rt)}</b>: {esc(t)}</li>" for rt, t in unsup) + "</ul>")
        parts.append('<p class="note">Medians over the repetitions with the harness\'s '
                     "distribution-free confidence interval of the median: 95% or more from "
                     "6 repetitions on; with fewer it is [min, max], whose level is lower (75% "
                     "with 3, 88% with 4, 94% with 5).</p>")
        # Markdown
        md = self.md
        md.append("# axbench report")
        md.append("")
        facts, inter = self.title_facts()
        md.append(facts)
        md.append("")
        if inter:
            md.append(f"> **Interference:** {inter}")
            md.append("")
        md.extend(self.md_answer)
        md.append("## Cells")
        md.append("")
        md.append(f"Runtimes: {', '.join(cfg.get('runtimes') or [])}; scenarios: "
                  f"{', '.join(cfg.get('scenarios') or [])}; {cfg.get('reps')} reps, "
                  f"pinning {cfg.get('pin')}.")
        md.append("")
        md.append("| runtime | scenario | params | status | stable figure | then | p50 | p99 | "
                  "peak RSS | notes |")
        md.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            md.append("| " + " | ".join(str(x).replace("|", "\\|") for x in r) + " |")
        failed = self.failed_cells()
        if failed:
            md.append("")
            md.append(f"**{len(failed)} cell(s) failed:**")
            md.append("")
            for c in failed:
                md.append(f"- {c.runtime} {c.scenario} {self.label(c)}: {c.status}: "
                          f"{c.message or ''}")
        md.append("")
        return "\n".join(parts)

    def sec_throughput(self):
        parts = []
        for sc in self.scenarios:
            cells = self.cells_of(sc)
            if not cells:
                parts.append(f"<div><h3>{esc(sc)}</h3>" + placeholder("no successful cell")
                             + "</div>")
                continue
            p = cells[0].primary_metric()
            if p is None:
                continue
            direction = {1: "higher is better", -1: "lower is better"}.get(p.better, "")
            unit = display_unit(p.name, p.unit, sc)
            title = f"{scenario_title(sc)}: {metric_title(p.name, sc)}"
            title += f" ({direction})" if direction else ""
            lg = any(c.loadgen_saturated for c in cells) and p.name.startswith(LOAD_BOUND)
            svg = self.bars(sc, cells, p.name, title, f"{metric_title(p.name, sc)} ({unit})",
                            hatch_lg=lg)
            levels = sorted({f"{c.metrics[p.name].ci_level:.0%}" for c in cells
                             if p.name in c.metrics and finite(c.metrics[p.name].ci_level)})
            parts.append(figure(svg, "Bar: the median over repetitions; dots: each repetition; "
                                f"whiskers: confidence interval of the median (level "
                                f"{', '.join(levels) or '?'})."
                                + (" Hatched: the load generator was the bottleneck, so the "
                                   "bar measures the client as much as the runtime." if lg
                                   else ""), alt=title))
        if not parts:
            return placeholder("no cells")
        return '<div class="charts">' + "\n".join(parts) + "</div>"

    def _latency_groups(self):
        """[(title, {series name: curve})] for every latency histogram:
        network cells by scenario and parameters, local scenarios' own
        histograms by name."""
        groups = {}
        order = []
        for c in self.doc.cells:
            if not c.ok:
                continue
            for hname, h in c.merged_histograms().items():
                lab = self.label(c)
                key = (c.scenario, lab, hname)
                if key not in groups:
                    groups[key] = {}
                    order.append(key)
                curve = hist_curve(h)
                if curve:
                    curve[-1] = curve[-1] + (h.get("count"),)
                    groups[key][c.runtime] = curve
        out = []
        for key in order:
            sc, lab, hname = key
            what = "round-trip latency" if hname == "latency" else \
                PERCENTILE_FAMILIES.get(hname, hname).lower()
            title = f"{scenario_title(sc)}{' ' + lab if lab != '-' else ''}: {what}"
            out.append((title, key, groups[key]))
        return out

    def sec_latency(self):
        groups = self._latency_groups()
        if not groups:
            return placeholder("no latency histograms in these results")
        parts = ['<p class="note">Percentile distribution of the histograms merged over all '
                 "repetitions (HdrHistogram style): the x axis is 1/(1-p) on a log scale, so "
                 "every tail decade gets the same room; both axes are logarithmic. At most "
                 f"{charts.MAX_LINES_PER_AXIS} runtimes share a panel (ax runtimes, then the "
                 "native references); the reference runtime is drawn dashed grey in the "
                 "panels that do not hold it.</p>",
                 '<div class="charts">']
        for title, key, curves in groups[:MAX_CHARTS_PER_SECTION]:
            if not curves:
                continue
            hname = key[2]
            names = list(curves)
            ax_names = [n for n in names if self.kinds.get(n) == "ax"]
            ref = "epoll" if "epoll" in names else (ax_names or names)[0]
            svg = charts.percentile_curves(
                title, curves, self.colours,
                "latency" if hname == "latency" else PERCENTILE_FAMILIES.get(hname, hname).lower(),
                panels=self.panels(names), reference=ref)
            parts.append(figure(svg, alt=title))
        parts.append("</div>")
        if len(groups) > MAX_CHARTS_PER_SECTION:
            parts.append(f'<p class="note">{len(groups) - MAX_CHARTS_PER_SECTION} more '
                         "histograms are in the result file.</p>")
        # the standard percentiles as a table
        rows = []
        for c in self.doc.cells:
            if not c.ok:
                continue
            lm = c.summary.get("latency_merged") if c.summary else None
            if isinstance(lm, dict) and lm.get("count"):
                rows.append((c.runtime, c.scenario, self.label(c), lm.get("count"),
                             *(fmt_ns(lm.get(k)) for k in
                               ("p50", "p90", "p99", "p99_9", "p99_99", "max"))))
        if rows:
            parts.append("<h3>Merged percentiles</h3>")
            parts.append(table(["runtime", "scenario", "params", "samples", "p50", "p90",
                                "p99", "p99.9", "p99.99", "max"], rows,
                               num_cols=(3, 4, 5, 6, 7, 8, 9)))
        return "\n".join(parts)

    @staticmethod
    def is_open_loop(cell):
        """Measured at a fixed offered rate: the load generator says so,
        or the cell has a positive `rate` parameter (0 means closed loop)."""
        rate = cell.params.get("rate")
        return cell.loadgen_mode() == "open" or (
            isinstance(rate, (int, float)) and not isinstance(rate, bool) and rate > 0)

    def sec_offered_load(self):
        """Open-loop cells: latency against the offered request rate."""
        open_cells = [c for c in self.doc.cells if c.ok and self.is_open_loop(c)]
        if not open_cells:
            return placeholder("no open-loop data: these results were measured in closed loop "
                               "(run a network scenario with -p rate=R[,R...] for the load "
                               "generator's open loop at a fixed request rate).")
        parts = []
        by = {}
        for c in open_cells:
            rest = {k: v for k, v in c.params.items() if k not in ("rate", "duration", "warmup")}
            key = (c.scenario, json.dumps(rest, sort_keys=True))
            by.setdefault(key, []).append(c)
        rows = []
        figs = []
        for (sc, rest), cells in list(by.items())[:MAX_CHARTS_PER_SECTION]:
            series = {}
            for c in cells:
                off = c.metrics.get("offered_rate")
                rate = off.median if off is not None and finite(off.median) else \
                    c.params.get("rate")
                if not finite(rate):
                    continue
                # corrected p50 and p99 (from each request's intended send
                # time), and the uncorrected p99 beside them
                for pname, label in (("latency_p50", "p50"), ("latency_p99", "p99"),
                                     ("latency_uncorrected_p99", "p99 uncorrected")):
                    t = mtriple(c, pname)
                    if t:
                        series.setdefault(f"{c.runtime} {label}", []).append((rate, *t))
                sus = c.summary.get("rate_sustained") if c.summary else None
                tp = c.metrics.get("throughput")
                rows.append((c.runtime, sc, self.label(c), fmt_value(rate, "req/s"),
                             med_ci_text(tp) if tp else "-",
                             "yes" if sus is True else "NO" if sus is False else "-",
                             fmt_ns(mval(c, "latency_p50")), fmt_ns(mval(c, "latency_p99")),
                             fmt_ns(mval(c, "latency_uncorrected_p99"))))
            rest_d = json.loads(rest)
            vary = [k for k in self.varying.get(sc, []) if k in rest_d]
            rest_txt = ",".join(f"{k}={format_param(k, rest_d[k])}" for k in vary)
            svg = charts.lines_xy(f"{sc}{' ' + rest_txt if rest_txt else ''}: latency by "
                                  "offered rate", series, "offered rate (requests/s)",
                                  "latency (log)", self.colours, logy=True, yscale=1e-3)
            figs.append(figure(svg, "Solid: p50, dashed: p99, both measured from each "
                                    "request's intended send time (coordinated omission "
                                    "corrected); dotted: p99 measured from the actual send."))
        parts.append('<div class="charts">' + "\n".join(figs) + "</div>")
        parts.append(table(["runtime", "scenario", "params", "offered", "achieved [CI]",
                            "rate sustained", "p50", "p99", "p99 uncorrected"], rows,
                           num_cols=(3, 4, 6, 7, 8)))
        return "\n".join(parts)

    # network faults are divided by the same impaired path with nothing
    # impaired; bad clients by the same cell without them
    NET_FAULTS = ("delay", "loss", "reorder")
    FAULT_PARAMS = ("fault", "bad_clients", "delay", "jitter", "duration", "warmup")

    @staticmethod
    def fault_info(cell):
        """The first repetition's fault block (loadgen.fault), or {}."""
        for r in cell.reps:
            f = (r.get("loadgen") or {}).get("fault") if isinstance(r, dict) else None
            if isinstance(f, dict):
                return f
        return {}

    def sec_faults(self):
        """The fault scenarios: what the well-behaved clients got under each
        fault, against the same path without it, and whether every runtime
        kept serving."""
        self.md_faults = []
        cells = [c for c in self.doc.cells if "fault" in c.params]
        if not cells:
            return placeholder("no fault cells: run tcp_echo_faults or http_plaintext_faults "
                               "(e.g. axbench run --profile full --scenario "
                               "tcp_echo_faults,http_plaintext_faults --runtime all).")

        def key(c):
            rest = {k: v for k, v in c.params.items() if k not in self.FAULT_PARAMS}
            return (c.runtime, c.scenario, json.dumps(rest, sort_keys=True))

        by = {}
        for c in cells:
            by.setdefault(key(c), {})[c.params["fault"]] = c
        rows, md_rows = [], []
        for (rt, sc, rest), faults in by.items():
            rest_d = json.loads(rest)
            vary = [k for k in self.varying.get(sc, []) if k in rest_d]
            rest_txt = ",".join(f"{k}={format_param(k, rest_d[k])}" for k in vary) or "-"
            for fname, c in faults.items():
                base_name = "baseline" if fname in self.NET_FAULTS else "none"
                base = faults.get(base_name) if fname not in ("none", "baseline") else None
                info = self.fault_info(c)
                mech = info.get("mechanism") or ("-" if fname == "none" else "?")
                if not c.ok:
                    # no figure: unsupported here, or the cell failed (a
                    # crash or stall, or a fault that did not act); the
                    # message says which
                    msg = (c.message or "").splitlines()[0] if c.message else ""
                    rows.append((rt, sc, rest_txt, fname, mech, c.status, msg, "-", "-",
                                 "-", "-", "-"))
                    md_rows.append((rt, sc, rest_txt, fname, f"{c.status}: {msg[:120]}",
                                    "-", "-", "-"))
                    continue
                tp = c.metrics.get("throughput")
                p99 = mval(c, "latency_p99")
                p99u = mval(c, "latency_uncorrected_p99")
                tp_ratio = p99_ratio = "-"
                if base is not None and base.ok:
                    bt = base.metrics.get("throughput")
                    if tp and bt and finite(tp.median) and finite(bt.median) and bt.median > 0:
                        tp_ratio = fmt_ratio(tp.median / bt.median)
                    bp = mval(base, "latency_p99")
                    if finite(p99) and finite(bp) and bp > 0:
                        p99_ratio = fmt_ratio(p99 / bp)
                elif base is not None:
                    tp_ratio = p99_ratio = f"({base_name}: {base.status})"
                rows.append((rt, sc, rest_txt, fname, mech, "yes", info.get("spec") or "",
                             med_ci_text(tp) if tp else "-", tp_ratio, fmt_ns(p99), p99_ratio,
                             fmt_ns(p99u)))
                md_rows.append((rt, sc, rest_txt, fname, "yes",
                                fmt_value(tp.median, tp.unit) if tp else "-", tp_ratio,
                                f"{fmt_ns(p99)} ({p99_ratio})"))
        parts = [
            "<p>The figures are the <b>well-behaved clients'</b>. Network faults (delay, "
            "loss, reorder) run open loop in a private network namespace and are divided by "
            "<code>fault=baseline</code>, the same impaired path with nothing impaired (on a "
            "machine without netem that path goes through a user-space packet queue, whose "
            "cost the baseline carries too); bad clients (reset, slow_reader, slowloris) run "
            "beside a closed loop and are divided by <code>fault=none</code>. "
            "<i>kept serving</i>: every response of the measured clients checked and the "
            "server alive to the end. Latency p99 is from each request's intended send time "
            "(corrected) in open loop; <i>p99 uncorrected</i> from its actual send. "
            "See docs/harness.md, \"Fault scenarios\".</p>",
            table(["runtime", "scenario", "params", "fault", "mechanism", "kept serving",
                   "what / why", "throughput [CI]", "vs baseline", "p99", "vs baseline",
                   "p99 uncorrected"], rows, num_cols=(7, 8, 9, 10, 11)),
        ]
        md = self.md_faults
        md.append("## Under faults")
        md.append("")
        md.append("Well-behaved clients' figures; ratios against `fault=baseline` (network "
                  "faults) or `fault=none` (bad clients).")
        md.append("")
        md.append("| runtime | scenario | params | fault | kept serving | throughput | "
                  "vs baseline | p99 (vs baseline) |")
        md.append("|---|---|---|---|---|---|---|---|")
        for r in md_rows:
            md.append("| " + " | ".join(str(x).replace("|", "\\|") for x in r) + " |")
        md.append("")
        return "\n".join(parts)

    def sec_scaling(self):
        parts = []
        for sc in self.scenarios:
            # closed loop only: at a fixed offered rate throughput is that rate
            cells = [c for c in self.cells_of(sc) if "connections" in c.params
                     and not self.is_open_loop(c)]
            conns = {c.params["connections"] for c in cells}
            if len(conns) < 2:
                continue
            by = {}
            for c in cells:
                rest = {k: v for k, v in c.params.items() if k != "connections"}
                by.setdefault(json.dumps(rest, sort_keys=True), []).append(c)
            for rest, group in by.items():
                if len({c.params["connections"] for c in group}) < 2:
                    continue
                p = group[0].primary_metric()
                series = {}
                for c in group:
                    t = mtriple(c, p.name)
                    if t:
                        series.setdefault(c.runtime, []).append((c.params["connections"], *t))
                restd = json.loads(rest)
                vary = [k for k in self.varying.get(sc, []) if k != "connections"]
                rest_txt = ",".join(f"{k}={format_param(k, restd[k])}" for k in vary if k in restd)
                svg = charts.lines_xy(f"{sc}{' ' + rest_txt if rest_txt else ''}: {p.name} "
                                      "by connections", series, "connections (log2)",
                                      f"{p.name} ({p.unit})", self.colours, logx=True,
                                      xticks=sorted({c.params['connections'] for c in group}))
                parts.append(figure(svg, "Median with the confidence interval of the median."))
        if not parts:
            return placeholder("no connection sweep in these results (run a network scenario "
                               "with e.g. -p connections=1,16,256)")
        return '<div class="charts">' + "\n".join(parts) + "</div>"

    def cpu_sets(self):
        """The server's and the load generator's CPU sets of the run (lists
        of CPU numbers; older files: the one CPU of each)."""
        pin = self.doc.env.get("pinning") if isinstance(self.doc.env, dict) else None
        pin = pin if isinstance(pin, dict) else {}
        srv = pin.get("server_cpus") or ([pin["server_cpu"]] if pin.get("server_cpu") is not None
                                        else [])
        load = pin.get("load_cpus") or ([pin["load_cpu"]] if pin.get("load_cpu") is not None
                                       else [])
        return [c for c in srv if isinstance(c, int)], [c for c in load if isinstance(c, int)]

    def sec_cores(self):
        """Throughput and server CPU per message against `workers` (the
        thread-per-core sweep), per scenario and combination of the other
        parameters; says when the workers outnumber the server's CPUs or
        share them with the load generator, where the curve shows no
        scaling of the design but the machine's limit."""
        parts = []
        srv, load = self.cpu_sets()
        shared = sorted(set(srv) & set(load))
        for sc in self.scenarios:
            cells = [c for c in self.cells_of(sc) if "workers" in c.params
                     and not self.is_open_loop(c)]
            if len({c.params["workers"] for c in cells}) < 2:
                continue
            by = {}
            for c in cells:
                rest = {k: v for k, v in c.params.items() if k != "workers"}
                by.setdefault(json.dumps(rest, sort_keys=True), []).append(c)
            for rest, group in by.items():
                ws = sorted({c.params["workers"] for c in group})
                if len(ws) < 2:
                    continue
                restd = json.loads(rest)
                vary = [k for k in self.varying.get(sc, []) if k != "workers"]
                rest_txt = ",".join(f"{k}={format_param(k, restd[k])}" for k in vary if k in restd)
                name = f"{sc}{' ' + rest_txt if rest_txt else ''}"
                p = group[0].primary_metric()
                for metric, unit_title in ((p.name if p else None, None),
                                           ("server_cpu_us_per_msg", "server CPU per message")):
                    if not metric:
                        continue
                    series = {}
                    for c in group:
                        t = mtriple(c, metric)
                        if t:
                            series.setdefault(c.runtime, []).append((c.params["workers"], *t))
                    if not series:
                        continue
                    unit = next((c.metrics[metric].unit for c in group if metric in c.metrics), "")
                    svg = charts.lines_xy(f"{name}: {unit_title or metric} by workers", series,
                                          "workers (runtimes, one per server CPU; log2)",
                                          f"{unit_title or metric} ({unit})", self.colours,
                                          logx=True, xticks=ws)
                    parts.append(figure(svg, "Median with the confidence interval of the median.",
                                        alt=f"{sc} {metric} by workers"))
                over = [w for w in ws if srv and w > len(srv)]
                notes = []
                if over:
                    notes.append(f"workers={','.join(str(w) for w in over)} outnumber the server's "
                                 f"{len(srv)} CPU{'s' if len(srv) != 1 else ''} "
                                 f"({','.join(map(str, srv))}): those workers share CPUs")
                if shared:
                    notes.append(f"the server and the load generator share CPU"
                                 f"{'s' if len(shared) > 1 else ''} {','.join(map(str, shared))}: "
                                 "more workers also take CPU from the load generator")
                msg = ('<p class="note">' + esc("; ".join(notes) + ". The curve then shows "
                       "the machine's limit, not how the design scales.") + "</p>")
                if notes and msg not in parts:
                    parts.append(msg)
        if not parts:
            return placeholder("no workers sweep in these results (run a network scenario with "
                               "e.g. --profile scaling or -p workers=1,2,4)")
        head = (f"<p>Server CPUs {','.join(map(str, srv)) or '-'}; load generator CPUs "
                f"{','.join(map(str, load)) or '-'}.</p>")
        return head + '<div class="charts">' + "\n".join(p for p in parts if p.startswith("<figure")) \
            + "</div>" + "\n".join(p for p in parts if not p.startswith("<figure"))

    def sec_cpu(self):
        parts = []
        net = [c for c in self.doc.cells if c.ok and "server_cpu_us_per_msg" in c.metrics]
        for sc in self.scenarios:
            cells = [c for c in net if c.scenario == sc]
            if not cells:
                continue
            what = metric_title("server_cpu_us_per_msg", sc)
            svg = self.bars(sc, cells, "server_cpu_us_per_msg",
                            f"{scenario_title(sc)}: {what.lower()} (lower is better)",
                            f"{what} (us)")
            parts.append(figure(svg, "Server CPU time (user+sys) per echoed message or request "
                                     "over the measured phase; dots: each repetition; "
                                     "whiskers: CI of the median.", alt=f"{sc} CPU"))
        if net:
            rows = [(c.runtime, c.scenario, self.label(c),
                     *(fmt_value(mval(c, k), c.metrics[k].unit) if k in c.metrics else "-"
                       for k, _ in CPU_METRICS)) for c in net]
            parts.append(table(["runtime", "scenario", "params"] + [t for _, t in CPU_METRICS],
                               rows, num_cols=tuple(range(3, 3 + len(CPU_METRICS)))))
        local = [c for c in self.doc.cells if c.ok and "cpu_s" in c.metrics
                 and "server_cpu_us_per_msg" not in c.metrics]
        if local:
            parts.append("<h3>Local scenarios</h3>")
            rows = []
            for c in local:
                own = [m for m in c.metrics.values() if m.unit == "ns" and m.better == -1
                       and not m.name.startswith(("sleep_lateness", "tick_lateness"))]
                rows.append((c.runtime, c.scenario, self.label(c),
                             "; ".join(f"{m.name} {fmt_ns(m.median)}" for m in own) or "-",
                             fmt_value(mval(c, "cpu_s"), "s"), fmt_value(mval(c, "wall_s"), "s")))
            parts.append(table(["runtime", "scenario", "params", "per-operation costs",
                                "CPU (user+sys)", "wall"], rows, num_cols=(4, 5)))
        return "\n".join(parts) if parts else placeholder("no CPU figures in these results")

    def sec_memory(self):
        parts = []
        for sc in self.scenarios:
            cells = [c for c in self.cells_of(sc) if rss_kib(c) is not None]
            if not cells:
                continue
            name = rss_kib(cells[0]).name
            who = "server " if name.startswith("server") else ""
            svg = self.bars(sc, cells, name, f"{scenario_title(sc)}: {who}peak RSS (lower is "
                            "better)", "peak RSS (MiB)", scale=1 / 1024)
            parts.append(figure(svg, "Peak resident set size (getrusage maxrss) of the "
                                     "process running the runtime under test."))
        per_task = [c for c in self.doc.cells if c.ok and "bytes_per_live_task" in c.metrics]
        if not parts and not per_task:
            return placeholder("no memory figures in these results")
        out = '<div class="charts">' + "\n".join(parts) + "</div>"
        if per_task:
            out += "\n<h3>Memory per live task</h3>\n" + table(
                ["runtime", "scenario", "params", "bytes per live task"],
                [(c.runtime, c.scenario, self.label(c),
                  med_ci_text(c.metrics["bytes_per_live_task"])) for c in per_task],
                num_cols=(3,))
        return out

    def sec_conformance(self):
        cf = self.conform
        if cf is None:
            self.md_conform = None
            return placeholder("no conformance matrix given (axbench report --conform "
                               "CONFORM.json, from axbench conform --json CONFORM.json)")
        rts = [r["name"] for r in cf.runtimes if r["name"] in cf.results]
        unavailable = [r for r in cf.runtimes if r["name"] not in cf.results]
        rows, classes = [], []
        for case in cf.cases:
            row = [Titled(case["id"], f"[{case.get('requirement', '')}] {case.get('summary', '')}")]
            cls = ["case"]
            for rt in rts:
                res = cf.results[rt].get(case["id"])
                if not isinstance(res, dict):
                    row.append("-")
                    cls.append(None)
                    continue
                out = res.get("outcome", "?")
                detail = res.get("detail") or ""
                dur = res.get("duration_s")
                tip = f"{out}: {detail}" if detail else out
                if finite(dur):
                    tip += f" ({dur:.2f} s)"
                row.append(Titled({"UNSUPPORTED": "UNSUP"}.get(out, out), tip))
                cls.append(CONFORM_CLASSES.get(out))
            rows.append(row)
            classes.append(cls)
        tot_rows = []
        for rt in rts:
            t = cf.totals.get(rt) or {}
            tot_rows.append((rt, *(t.get(k, 0) for k in
                                   ("PASS", "FAIL", "UNSUPPORTED", "TIMEOUT", "CRASH"))))
        parts = ['<p class="note">Each case ran in a fresh child process per runtime; hover a '
                 "cell for the detail. Green: pass; red: fail; orange: timeout; dark red: "
                 "crash; grey: unsupported (a missing capability, not a failure) or ERROR (the "
                 "environment kept the case from running, e.g. a descriptor limit).</p>"]
        parts.append('<div class="conform">' + table(["case"] + rts, rows, classes=classes)
                     + "</div>")
        parts.append("<h3>Totals</h3>")
        parts.append(table(["runtime", "pass", "fail", "unsupported", "timeout", "crash"],
                           tot_rows, num_cols=(1, 2, 3, 4, 5)))
        for r in unavailable:
            parts.append(f'<p class="note">{esc(r["name"])}: unavailable '
                         f"({esc(r.get('reason') or '')})</p>")
        bad = [(case["id"], rt, cf.results[rt][case["id"]]) for case in cf.cases for rt in rts
               if isinstance(cf.results[rt].get(case["id"]), dict)
               and cf.results[rt][case["id"]].get("outcome") in ("FAIL", "TIMEOUT", "CRASH")]
        if bad:
            parts.append("<details><summary>Failures in detail</summary>")
            parts.append(table(["case", "runtime", "outcome", "detail"],
                               [(cid, rt, r.get("outcome"), r.get("detail") or "")
                                for cid, rt, r in bad]))
            parts.append("</details>")
        self.md_conform = (rts, tot_rows, bad)
        return "\n".join(parts)

    def sec_functions(self, top=10):
        """Instructions per operation, by runtime and by function: from
        --functions (axbench run --measure instructions --profile-functions
        DIR)."""
        fdoc = self.functions
        if fdoc is None:
            return placeholder("no profile by function: write one with axbench run "
                               "--measure instructions --profile-functions DIR and give "
                               "--functions DIR (docs/profiles.md).")
        from . import functions
        runtimes, rows = functions.matrix(fdoc)
        parts = [f'<p class="note">From <code>{esc(os.path.basename(os.path.dirname(fdoc["path"])) or fdoc["path"])}'
                 "</code>: user-space instructions per operation under callgrind (servers: "
                 "the difference of two runs per message). Self is exact; inclusive is "
                 "self plus callees, charged per call where tasks switch "
                 "(docs/profiles.md).</p>",
                 table(["operation"] + runtimes,
                       [[name] + [functions._fmt(row[r]) if r in row else "-" for r in runtimes]
                        for name, row in rows], num_cols=range(1, len(runtimes) + 1))]
        for c in fdoc["cells"]:
            total = c["instructions_per_op"] or 1
            fs = sorted(c["functions"], key=lambda f: -f["self"])[:top]
            body = table(["function", "object", "self/op", "self %", "inclusive/op", "calls/op"],
                         [[f["function"], os.path.basename(f["object"]),
                           functions._fmt(f["self"]), f"{100 * f['self'] / total:.1f}",
                           functions._fmt(f["inclusive"]), functions._fmt(f["calls"])]
                          for f in fs], num_cols=(2, 3, 4, 5))
            parts.append(f"<details><summary>{esc(c['runtime'])}: {esc(c['operation'])}, "
                         f"{esc(functions._fmt(c['instructions_per_op']))} instructions "
                         f"(top {len(fs)} by self)</summary>{body}</details>")
        self.md_functions = ["## Instructions per operation", ""] + \
            functions.matrix_markdown(fdoc) + [""]
        return "\n".join(parts)

    def sec_ergonomics(self):
        """The ergonomics table: from --ergo (axbench ergo --json), else
        from an "ergonomics" member of the result file."""
        parts = []
        if self.ergo is not None:
            parts.append(f'<p class="note">From <code>{esc(os.path.basename(self.ergo.path))}'
                         "</code> (axbench ergo; definitions in docs/ergonomics.md): the ax "
                         "version of each scenario against its native versions. Hover a "
                         "count for its items.</p>")
            parts.append(rows_table(self.ergo.rows))
            if self.ergo.cost:
                parts.append("<h3>Cost of the abstraction</h3>")
                parts.append(rows_table(self.ergo.cost))
            return "\n".join(parts)
        e = self.doc.ergonomics()
        if e is None:
            return placeholder("no ergonomics data: give the table of axbench ergo --json "
                               "with --ergo ERGO.json (lines, functions, callbacks, states, "
                               "tasks and allocations per scenario in each programming "
                               "style), or a result file with an \"ergonomics\" member.")
        if isinstance(e, list):
            return rows_table(e)
        inner = []
        for v in e.values():
            if isinstance(v, dict):
                inner += [k for k in v if k not in inner]
        if not inner:
            return table(["item", "value"], [(k, _cell_text(v)) for k, v in e.items()])
        rows = [[k] + [_cell_text(v.get(i)) if isinstance(v, dict) else _cell_text(v)
                       for i in inner] for k, v in e.items()]
        return table([""] + inner, rows)

    def sec_environment(self):
        env = self.doc.env

        def g(*path):
            d = env
            for p in path:
                d = d.get(p) if isinstance(d, dict) else None
            return d

        libs = g("libraries") or {}
        lib_txt = "; ".join(
            f"{k} {v.get('loaded') or v.get('build') or 'not linked'}"
            + (f" (built against {v.get('build')})" if v.get("build") and v.get("loaded")
               and v.get("build") != v.get("loaded") else "")
            for k, v in libs.items() if isinstance(v, dict))
        ur = g("io_uring") or {}
        ur_txt = ("available: " + ", ".join(ur.get("features") or [])
                  + f"; COOP_TASKRUN {'yes' if ur.get('setup_coop_taskrun') else 'no'}, "
                  f"DEFER_TASKRUN {'yes' if ur.get('setup_defer_taskrun') else 'no'}"
                  if ur.get("available") else f"unavailable ({ur.get('error', '?')})")
        pin = g("pinning") or {}
        rows = [
            ("CPU", f"{g('cpu', 'model')} x {g('cpu', 'count')} (allowed "
                    f"{', '.join(str(x) for x in g('cpu', 'allowed') or []) or '-'}, "
                    f"frequency governor {g('cpu', 'governor') or 'not exposed'})"),
            ("kernel", f"{g('kernel', 'sysname')} {g('kernel', 'release')} "
                       f"{g('kernel', 'machine')}"),
            ("memory", fmt_value(g("memory_bytes"), "bytes") if g("memory_bytes") else "-"),
            ("host", g("hostname")),
            ("compiler", f"{g('build', 'compiler')} ({g('build', 'compiler_version')})"),
            ("build", f"{g('build', 'build_type')}, flags {g('build', 'c_flags')}"
                      f"{', sanitizers' if g('build', 'sanitizers') else ''}"),
            ("libraries", lib_txt or "-"),
            ("io_uring", ur_txt),
            ("commit", f"{g('git', 'commit')}{' (dirty)' if g('git', 'dirty') else ''}"),
            ("time", g("time_utc")),
            ("pinning", f"{pin.get('mode')}: server on CPU"
                        f"{'s' if len(self.cpu_sets()[0]) > 1 else ''} "
                        f"{','.join(map(str, self.cpu_sets()[0])) or '-'}, load generator on CPU"
                        f"{'s' if len(self.cpu_sets()[1]) > 1 else ''} "
                        f"{','.join(map(str, self.cpu_sets()[1])) or '-'}"
                        f"{' (shared)' if pin.get('overlap') else ''}"),
            ("command", " ".join(self.doc.raw.get("command") or [])),
        ]
        parts = [kv_table([(k, "-" if v is None else v) for k, v in rows])]
        rts = g("runtimes")
        if isinstance(rts, list) and rts:
            parts.append("<h3>Runtimes</h3>")
            parts.append(table(["name", "kind", "available", "features"],
                               [(r.get("name"), r.get("kind"),
                                 "yes" if r.get("available") else
                                 f"no ({r.get('unavailable_reason')})", r.get("features"))
                                for r in rts if isinstance(r, dict)]))
        parts.append("<details><summary>Everything recorded</summary>")
        parts.append(table(["key", "value"], [(k, v) for k, v in _flatten(env)]))
        parts.append("</details>")
        self.md_env = rows[:9]
        return "\n".join(parts)

    def sec_comparison(self):
        rep = self.comparison
        if rep is None:
            return placeholder("no baseline given (axbench report --baseline BASE.json)")
        counts = rep["summary"]["counts"]
        parts = []
        for dff in rep["environment_differences"]:
            parts.append(f'<p class="warn">Environment differs: {esc(dff["fact"])}: BASE '
                         f"<code>{esc(dff['base'])}</code>, NEW <code>{esc(dff['new'])}</code>"
                         "</p>")
        summ = rep["summary"]
        cls = {"regression": "bad", "pass": "good"}.get(summ["verdict"], "warn")
        parts.append(f'<p class="{cls}"><b>Verdict: {esc(summ["verdict"].upper())}</b>: '
                     f'{esc("; ".join(summ["why"]))}</p>')
        parts.append(f'<p><b>{counts["worse"]} worse, {counts["better"]} '
                     f'better, {counts["unchanged"]} unchanged, {counts["inconclusive"]} '
                     f'inconclusive, {counts["not comparable"]} not '
                     f"comparable</b> ({counts['unsupported']} unsupported on both sides left "
                     f"out) against <code>{esc(rep['base']['path'])}</code> (commit "
                     f"{esc(str(rep['base']['commit'])[:12])}). A change counts when the "
                     + ("sign test over the pairs" if rep.get("paired") else
                        "Mann-Whitney U test") +
                     " gives p &lt; 0.05 and the 95% bootstrap CI of the "
                     "ratio of medians lies entirely beyond the "
                     f"{rep['settings']['floor'] * 100:g}% noise floor.</p>")
        bars = []
        for c in rep["cells"]:
            # the metric that decided the verdict, else the cell's headline
            gated = [m for m in c["metrics"] if m["gated"] and m["ratio"] is not None]
            decided = [m for m in gated if m["verdict"] in ("worse", "better")]
            ms = {m["metric"]: m for m in gated}
            shown = (decided[0] if decided else ms.get("throughput")
                     or next(iter(gated), None))
            if shown:
                bars.append((f"{c['runtime']} {c['scenario']} {c['label']} ({shown['metric']})",
                             shown["ratio"], shown["ci_low"], shown["ci_high"], c["verdict"]))
        if bars:
            parts.append(figure(charts.change_bars("Change per cell, NEW vs BASE", bars,
                                                   rep["settings"]["floor"]),
                                "Per cell, the gated metric that decided its verdict (else its "
                                "headline metric), with the 95% bootstrap CI; colour: the "
                                "verdict (red worse, green better, orange inconclusive, grey unchanged)."))
        rows, classes = [], []
        for c in rep["cells"]:
            if c["verdict"] == "unsupported":
                continue
            changed = [f"{m['metric']} {metric_change_text(m)}" for m in c["metrics"]
                       if m["verdict"] in ("worse", "better") and m["gated"]]
            why = "; ".join(changed) if c["verdict"] in ("worse", "better") else (
                c["reason"] or "; ".join(changed) or "none")
            rows.append((c["runtime"], c["scenario"], c["label"], c["verdict"], why))
            classes.append([None, None, None, {"worse": "worse", "better": "better",
                                               "inconclusive": "inconclusive",
                                               "unchanged": "unchanged"}.get(c["verdict"], "nc"),
                            None])
        parts.append(table(["runtime", "scenario", "params", "verdict",
                            "significant changes beyond the floor"], rows, classes=classes))
        geo = rep["summary"]["geomeans"]
        if geo:
            rts = sorted({rt for gm in geo.values() for rt in gm["by_runtime"]})
            parts.append("<h3>Geometric mean of NEW/BASE</h3>")
            parts.append(table(["metric", "better", "cells", "all"] + rts,
                               [(name, {1: "higher", -1: "lower"}.get(gm["better"], "-"),
                                 gm["cells"], fmt_pct(gm["all"]),
                                 *(fmt_pct(gm["by_runtime"].get(rt, math.nan)) for rt in rts))
                                for name, gm in geo.items()],
                               num_cols=tuple(range(2, 4 + len(rts)))))
        return "\n".join(parts)

    def sec_history(self):
        md = self.md_history = ["## History", ""]
        if self.hist is None:
            md += ["No history given (`axbench report --history results.db`).", ""]
            return placeholder("no history given (axbench record RESULTS.json appends to "
                               "results.db; axbench report --history results.db draws it)")
        parts = []
        steps_rows = []
        nchart = 0
        skipped = []
        for (testbed, branch), (runs, data, cells) in sorted(self.hist.items()):
            if len(runs) < 2:
                parts.append(f'<p class="note">{esc(testbed)} / {esc(branch)}: one run so far; '
                             "a history needs two.</p>")
                md.append(f"- {testbed} / {branch}: one run so far ({runs[0].text})")
                continue
            parts.append(f"<h3>Testbed {esc(testbed)}, branch {esc(branch)} "
                         f"({len(runs)} runs, {esc(runs[0].text)} to {esc(runs[-1].text)})</h3>")
            md.append(f"- {testbed} / {branch}: {len(runs)} runs, {runs[0].text} to "
                      f"{runs[-1].text}")
            index = {r.id: i for i, r in enumerate(runs)}
            xlabels = [r.label for r in runs]
            # one chart per (scenario, metric), a line per cell
            by = {}
            for (cell, metric), per in data.items():
                rt, sc, params = cells.get(cell, ("?", "?", {}))
                unit, better = next(iter(per.values()))[3:5]
                if better == 0 or metric.endswith(TAIL_SUFFIXES):
                    continue  # the same metrics as compare's default gate
                by.setdefault((sc, metric, unit, better), []).append((cell, rt, params, per))
            hv = {}
            for cell, (rt, sc, params) in cells.items():
                for k, v in params.items():
                    hv.setdefault((sc, k), set()).add(json.dumps(v))
            figs = []

            def order(kv):
                sc, metric = kv[0][0], kv[0][1]
                stable = metric in DEFAULT_GATES.get(sc, ())
                return (sc, 0 if stable else 1 + HEADLINE.get(metric, 9), metric)
            for (sc, metric, unit, better), series_in in sorted(by.items(), key=order):
                # a metric that never moved (retransmissions at 0) has nothing to show
                values = {v[0] for _c, _r, _p, per in series_in for v in per.values()}
                if len(values) <= 1:
                    skipped.append(f"{sc} {metric}")
                    continue
                series, steps = {}, []
                for cell, rt, params, per in series_in:
                    lab = ",".join(f"{k}={format_param(k, v)}" for k, v in params.items()
                                   if len(hv.get((sc, k), ())) > 1)
                    name = f"{rt} {lab}".strip()
                    pts = sorted((index[rid], v[0], v[1], v[2]) for rid, v in per.items()
                                 if rid in index)
                    series[name] = pts
                    for i, shift in history.step_changes([p[1] for p in pts], self.floor):
                        run_i = pts[i][0]
                        steps.append((name, run_i, shift))
                        worse = (shift < 0) if better > 0 else (shift > 0)
                        steps_rows.append((testbed, branch, sc, name, metric,
                                           f"{runs[pts[i - 1][0]].text} -> {runs[run_i].text}",
                                           fmt_pct(1 + shift),
                                           "regression" if worse else "improvement"))
                if nchart >= MAX_CHARTS_PER_SECTION * 2:
                    continue
                nchart += 1
                # ns figures of microseconds and more read better in us
                big = unit == "ns" and max(
                    (p[1] for pts in series.values() for p in pts), default=0) >= 1e4
                scale = 1e-3 if big else 1.0
                shown_unit = "us" if big else display_unit(metric, unit, sc)
                title = metric_title(metric, sc)
                ylab = f"{title} ({shown_unit})" if len(title) < 28 else shown_unit
                figs.append(figure(charts.history_chart(
                    f"{scenario_title(sc)}: {title} ({'higher' if better > 0 else 'lower'} "
                    "is better)", xlabels, series, steps, ylab, self.colours, scale),
                    alt=f"{sc} {metric}"))
            parts.append('<div class="charts">' + "\n".join(figs) + "</div>")
        parts.insert(0, f'<p class="note">Medians per recorded run (band: CI of the median), in '
                        "time order, labelled with the run's date (UTC) and commit; dotted red "
                        "lines mark step changes: the median of the up "
                        "to 3 runs after differs from the median of the up to 3 runs before by "
                        f"more than the {self.floor * 100:g}% noise floor, the two windows do "
                        "not overlap, and each side has at least 2 runs.</p>")
        if skipped:
            parts.append(f'<p class="note">Not drawn, the same value in every run: '
                         f"{esc(', '.join(skipped))}.</p>")
        if steps_rows:
            parts.append("<h3>Step changes</h3>")
            parts.append(table(["testbed", "branch", "scenario", "cell", "metric", "between",
                                "shift", "kind"], steps_rows))
            md.append("")
            md.append(f"**{len(steps_rows)} step change(s)**, stable figures first:")
            md.append("")
            ranked = sorted(steps_rows, key=lambda r: (r[4] not in DEFAULT_GATES.get(r[2], ()),
                                                       r[7] != "regression"))
            for tb, br, sc, name, metric, between, shift, kind in ranked[:20]:
                md.append(f"- **{kind}**: {sc} {name}: {metric_title(metric, sc)} {shift}, "
                          f"{between} ({tb} / {br})")
            if len(ranked) > 20:
                md.append(f"- and {len(ranked) - 20} more in the report")
        elif self.hist:
            parts.append('<p class="note">No step change detected.</p>')
            md.append("")
            md.append("No step change detected.")
        if not self.hist:
            parts.append(placeholder("the history database holds no runs yet"))
            md.append("The history database holds no runs yet.")
        md.append("")
        return "\n".join(parts)

    # -- the page ------------------------------------------------------------

    def build(self):
        self.md_conform = None
        self.md_env = None
        bodies = {}
        for sid, _ in SECTIONS:
            bodies[sid] = getattr(self, "sec_" + sid.replace("-", "_"))()
        d = self.doc
        title = f"axbench report: {', '.join(self.scenarios) or 'no scenario'}"
        facts, inter = self.title_facts()
        inter_html = f'<p class="warn"><b>Busy machine:</b> {esc(inter)}</p>' if inter else ""
        nav = " ".join(f'<a href="#{sid}">{esc(NAV.get(sid, t))}</a>' for sid, t in SECTIONS)
        secs = "\n".join(f'<section id="{sid}">\n<h2>{esc(t)}</h2>\n{bodies[sid]}\n</section>'
                         for sid, t in SECTIONS)
        page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<link rel="icon" href="data:,">
<style>{CSS}</style>
</head>
<body>
<header>
<h1>axbench report</h1>
<p class="title">{esc(facts)} &middot; source <code>{esc(os.path.basename(d.path))}</code></p>
{inter_html}
</header>
<nav>{nav}</nav>
<main>
{secs}
</main>
</body>
</html>
"""
        return page, self.summary_md()

    def summary_md(self):
        md = list(self.md)
        md.extend(getattr(self, "md_faults", []))
        md.extend(getattr(self, "md_functions", []))
        if self.md_conform:
            rts, tot_rows, bad = self.md_conform
            md.append("## Conformance")
            md.append("")
            md.append("| runtime | pass | fail | unsupported | timeout | crash |")
            md.append("|---|---|---|---|---|---|")
            for r in tot_rows:
                md.append("| " + " | ".join(str(x) for x in r) + " |")
            if bad:
                md.append("")
                for cid, rt, r in bad:
                    md.append(f"- {cid} on {rt}: {r.get('outcome')}: "
                              f"{(r.get('detail') or '').splitlines()[0] if r.get('detail') else ''}")
            md.append("")
        rep = self.comparison
        if rep:
            counts = rep["summary"]["counts"]
            md.append("## Comparison with the baseline")
            md.append("")
            for dff in rep["environment_differences"]:
                md.append(f"> **Warning:** environment differs: {dff['fact']}: BASE "
                          f"`{dff['base']}`, NEW `{dff['new']}`")
            md.append(f"**Verdict: {rep['summary']['verdict'].upper()}**: "
                      + "; ".join(rep["summary"]["why"]))
            md.append("")
            md.append(f"{counts['worse']} worse, {counts['better']} better, "
                      f"{counts['unchanged']} unchanged, {counts['inconclusive']} inconclusive, "
                      f"{counts['not comparable']} not comparable against "
                      f"`{rep['base']['path']}`")
            md.append("")
            for c in rep["cells"]:
                if c["verdict"] in ("worse", "better", "inconclusive"):
                    changed = [f"{m['metric']} {metric_change_text(m)}" for m in c["metrics"]
                               if m["verdict"] in ("worse", "better") and m["gated"]]
                    md.append(f"- **{c['verdict']}**: {c['runtime']} {c['scenario']} "
                              f"{c['label']}: {'; '.join(changed)}")
            md.append("")
        md.extend(self.md_history)
        if self.md_env:
            md.append("## Environment")
            md.append("")
            for k, v in self.md_env:
                md.append(f"- {k}: {v}")
            md.append("")
        md.append("The full report with charts is `index.html` beside this file (sections: "
                  + ", ".join(t.lower() for _, t in SECTIONS) + ").")
        md.append("")
        return "\n".join(md)


# Members of ergonomics rows too long for a table cell (their counts are
# columns of their own).
ROW_SKIP = ("sources", "api_identifiers")


def rows_table(rows):
    """A table of a list of objects: one column per member (in order of
    first appearance); lists show their length with the items on hover,
    objects show as k=v pairs."""
    rows = [r for r in rows if isinstance(r, dict)]
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys and k not in ROW_SKIP]
    body = []
    for r in rows:
        line = []
        for k in keys:
            v = r.get(k)
            if isinstance(v, list):
                line.append(Titled(str(len(v)), ", ".join(_cell_text(x) for x in v)))
            elif isinstance(v, dict):
                line.append(", ".join(f"{a}={_cell_text(b)}" for a, b in v.items()))
            else:
                line.append("-" if v is None else _cell_text(v))
        body.append(line)
    nums = tuple(j for j, k in enumerate(keys)
                 if all(isinstance(r.get(k), (int, float, list)) or r.get(k) is None
                        for r in rows) and not all(r.get(k) is None for r in rows))
    return table(keys, body, num_cols=nums)


def _cell_text(v):
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def _flatten(d, prefix=""):
    out = []
    if isinstance(d, dict):
        for k, v in d.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else k)
    elif isinstance(d, list) and d and all(isinstance(x, dict) for x in d):
        for i, v in enumerate(d):
            out += _flatten(v, f"{prefix}[{i}]")
    else:
        out.append((prefix, _cell_text(d) if not isinstance(d, list) else
                    ", ".join(_cell_text(x) for x in d)))
    return out


def run(args):
    charts.require()
    doc = load_results(args.results)
    conform = load_conform(args.conform) if args.conform else None
    base = load_results(args.baseline) if args.baseline else None
    hist = history.load_history(args.history) if args.history else None
    ergo = load_ergo(args.ergo) if args.ergo else None
    fdoc = None
    if args.functions:
        from . import functions
        fdoc = functions.load(args.functions)
    if base:
        for label, a, b in env_differences(base, doc):
            warn(f"environment differs from the baseline: {label}: BASE {a!r}, NEW {b!r}")
    out = args.output
    if os.path.lexists(out) and not os.path.isdir(out):
        raise InputError(f"-o {out} exists and is not a directory")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create output directory {out}: {e.strerror or e}") from None
    if not os.access(out, os.W_OK):
        raise InputError(f"cannot write to output directory {out}")
    for name in ("index.html", "summary.md"):
        claim_output(os.path.join(out, name), "report output")
    page, md = Report(doc, conform, base, hist, args.floor, ergo,
                      args.max_interference, fdoc).build()
    write_atomic(os.path.join(out, "index.html"), page)
    write_atomic(os.path.join(out, "summary.md"), md)
    note(f"report in {os.path.join(out, 'index.html')} and {os.path.join(out, 'summary.md')}")
    return 0
