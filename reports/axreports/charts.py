"""The report's charts, drawn with matplotlib (Debian's python3-matplotlib)
on the Agg backend, no display needed. Each function returns one chart as
SVG text; report.py embeds it as a data: URI so the page stays one
self-contained file whose charts cannot clash (every matplotlib SVG carries
its own element ids).
"""

import base64
import io
import math

from .util import InputError

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator
except ImportError:  # pragma: no cover - depends on the machine
    plt = None

# Figure sizes in inches. The page shows SVGs at their natural size (96 px
# per inch), so a standard chart is about 600 px wide and two fit side by
# side; a grouped bar chart with many bars grows up to the page's width.
STD_W, STD_H = 6.0, 3.3
MAX_W = 12.5

# The same runtime keeps the same colour in every chart of a report.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
           "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
VERDICT_COLOURS = {"worse": "#d62728", "better": "#2ca02c", "unchanged": "#7f7f7f",
                   "inconclusive": "#ff9800", "not comparable": "#c7c7c7"}


def require():
    if plt is None:
        raise InputError("report needs matplotlib (Debian package python3-matplotlib; "
                         "run scripts/setup)")
    matplotlib.rcParams.update({
        "svg.fonttype": "path",     # glyphs as paths: no font needed to view
        "svg.hashsalt": "axbench",  # stable ids: the same data gives the same file
        "font.size": 9,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
    })


class Colours:
    def __init__(self, names):
        self.map = {}
        for n in names:
            self.get(n)

    def get(self, name):
        if name not in self.map:
            self.map[name] = PALETTE[len(self.map) % len(PALETTE)]
        return self.map[name]


def _svg(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return buf.getvalue()


def data_uri(svg_bytes):
    return "data:image/svg+xml;base64," + base64.b64encode(svg_bytes).decode("ascii")


def _err(median, lo, hi):
    """Error-bar extents below and above a median (0 when unknown)."""
    below = median - lo if math.isfinite(lo) else 0.0
    above = hi - median if math.isfinite(hi) else 0.0
    return max(below, 0.0), max(above, 0.0)


def _si_label(v, _pos):
    a = abs(v)
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{v / div:g}{suffix}"
    return f"{v:g}"


def grouped_bars(title, groups, series, ylabel, colours, scale=1.0):
    """Bars per group (x) and series (colour) with confidence intervals,
    and every repetition drawn as a dot over its bar, so a bimodal cell
    (two repetitions at 27k, one at 60k) shows as two clusters rather than
    one median.

    groups: x labels; series: {name: [(median, ci_low, ci_high[, values[,
    hatched]]) or None per group]}; hatched bars mark cells whose figure is
    not the runtime's own (the load generator was the bottleneck). Values
    are multiplied by `scale` (unit conversion). With a single group the
    series themselves are the x categories."""
    single = len(groups) == 1
    n = max(1, len(series))
    width = 0.8 if single else 0.8 / n
    nbars = n if single else len(groups) * n
    width_in = STD_W if single else min(MAX_W, max(STD_W, 2.6 + 0.3 * nbars))
    fig, ax = plt.subplots(figsize=(width_in, STD_H))
    bar_w = width * (0.7 if single else 0.92)
    for k, (name, vals) in enumerate(series.items()):
        xs, ys, lo, hi, hatches = [], [], [], [], []
        dots_x, dots_y = [], []
        for g, v in enumerate(vals):
            if v is None or not math.isfinite(v[0]):
                continue
            med, cl, ch = (x * scale if math.isfinite(x) else x for x in v[:3])
            b, a = _err(med, cl, ch)
            x = k if single else g - 0.4 + width * (k + 0.5)
            xs.append(x)
            ys.append(med)
            lo.append(b)
            hi.append(a)
            hatched = len(v) > 4 and bool(v[4])
            hatches.append("////" if hatched else None)
            reps = [r * scale for r in (v[3] if len(v) > 3 and v[3] else [])
                    if math.isfinite(r)]
            # spread the dots across the bar so equal values stay visible
            for i, r in enumerate(sorted(reps)):
                off = 0.0 if len(reps) == 1 else (i / (len(reps) - 1) - 0.5) * bar_w * 0.6
                dots_x.append(x + off)
                dots_y.append(r)
        bars = ax.bar(xs, ys, bar_w, yerr=[lo, hi], capsize=3, label=name,
                      color=colours.get(name), error_kw={"elinewidth": 1, "ecolor": "#333"})
        for bar, h in zip(bars, hatches):
            if h:
                bar.set_hatch(h)
                bar.set_edgecolor("#ffffff")
        if dots_x:
            ax.scatter(dots_x, dots_y, s=18, color="#111", edgecolors="#fff", linewidths=0.7,
                       zorder=3)
    labels = list(series) if single else groups
    long_labels = max((len(g) for g in labels), default=0) > 14 or (
        single and len(labels) > 6)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=25 if long_labels else 0,
                       ha="right" if long_labels else "center")
    ax.yaxis.set_major_formatter(FuncFormatter(_si_label))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="x", visible=False)
    if not single:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _svg(fig)


PCT_TICKS = [(1, "0%"), (2, "50%"), (10, "90%"), (100, "99%"), (1e3, "99.9%"),
             (1e4, "99.99%"), (1e5, "99.999%"), (1e6, "99.9999%")]


# At most this many lines share one axis of a percentile plot; more are
# split into small multiples side by side.
MAX_LINES_PER_AXIS = 4
PANELS_PER_ROW = 3


def _curve_xy(pts):
    count = pts[-1][2] if len(pts[-1]) > 2 else None
    xs, ys = [], []
    for p, v, *_ in pts:
        frac = min(p / 100.0, 1.0)
        if frac >= 1.0:
            x = float(count) if count else 1e6
        else:
            x = 1.0 / (1.0 - frac)
        xs.append(x)
        ys.append(max(v, 1) / 1e3)
    # start the step line at p = 0 (x = 1) with the smallest value
    xs.insert(0, 1.0)
    ys.insert(0, ys[0])
    return xs, ys


def percentile_curves(title, curves, colours, unit_label="latency", panels=None,
                      reference=None):
    """HdrHistogram-style percentile distribution: x = 1/(1-p) on a log
    axis labelled with percentiles, y = value (log), one step line per
    series. curves: {name: [(percentile 0..100, value ns), ...]}; the last
    point (p = 100, the maximum) is drawn at 1/(1-p) of the sample size.

    panels: [[name, ...], ...] splits the series into small multiples
    sharing the y axis (at most MAX_LINES_PER_AXIS each); `reference`, a
    series name, is drawn grey and dashed in every panel that does not
    hold it, as the yardstick."""
    names = [n for n in curves if curves[n]]
    if not panels:
        panels = [names]
    panels = [[n for n in p if n in names] for p in panels]
    panels = [p for p in panels if p] or [[]]
    npan = len(panels)
    ncols = min(npan, PANELS_PER_ROW)
    nrows = (npan + ncols - 1) // ncols
    pw = STD_W if npan == 1 else 3.9
    fig, axes = plt.subplots(nrows, ncols, figsize=(pw * ncols, (STD_H + 0.5) * nrows),
                             sharey=True, squeeze=False)
    xmax = 10.0
    for pts in curves.values():
        if pts:
            xmax = max(xmax, max(_curve_xy(pts)[0]))
    # p = 0 is the axis' left end: unlabelled, so it cannot collide with 50%
    ticks = [t for t in PCT_TICKS if t[0] <= xmax * 1.01 and t[0] > 1]
    for i, ax in enumerate(axes.flat):
        if i >= npan:
            ax.set_visible(False)
            continue
        members = panels[i]
        if reference and reference in names and reference not in members:
            xs, ys = _curve_xy(curves[reference])
            ax.step(xs, ys, where="pre", label=f"{reference} (reference)", color="#888",
                    linestyle="--", linewidth=1.1)
        for name in members:
            xs, ys = _curve_xy(curves[name])
            ax.step(xs, ys, where="pre", label=name, color=colours.get(name.split(" ")[0]),
                    linewidth=1.4)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(FixedLocator([t[0] for t in ticks]))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: dict(ticks).get(x, "")))
        if npan > 1 or len(ticks) > 6:
            # narrow panels: slanted labels cannot collide
            for lab in ax.get_xticklabels():
                lab.set_rotation(40)
                lab.set_horizontalalignment("right")
                lab.set_fontsize(7)
        ax.set_xlim(1, xmax * 1.2)
        ax.yaxis.set_major_formatter(FuncFormatter(_us_label))
        if i // ncols == nrows - 1 or i + ncols >= npan:
            ax.set_xlabel("percentile")
        if i % ncols == 0:
            ax.set_ylabel(f"{unit_label} (log)")
        ax.legend(fontsize=7, loc="upper left")
    # minor labels once the shared limits are known
    for ax in axes.flat[:npan]:
        _minor_labels(ax)
    if npan == 1:
        axes.flat[0].set_title(title)
    else:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _svg(fig)


def _us_label(v, _pos):
    if v >= 1e6:
        return f"{v / 1e6:g}s"
    if v >= 1000:
        return f"{v / 1000:g}ms"
    return f"{v:g}us"


def _minor_labels(ax):
    """On a log y axis spanning less than about a decade and a half there
    are too few major ticks to read values: label minor ones as well."""
    lo, hi = ax.get_ylim()
    if lo > 0 and hi / lo < 30:
        ax.yaxis.set_minor_formatter(FuncFormatter(_us_minor_label))
    else:
        ax.yaxis.set_minor_formatter(NullFormatter())


def _us_minor_label(v, pos):
    """Minor ticks of a log axis: label 2x, 3x and 5x of a decade only."""
    mant = v / 10 ** math.floor(math.log10(v)) if v > 0 else 0
    if any(abs(mant - k) < 1e-6 for k in (2, 3, 5)):
        return _us_label(v, pos)
    return ""


def lines_xy(title, series, xlabel, ylabel, colours, logx=False, logy=False,
             yscale=1.0, xticks=None):
    """Lines with optional error bars. series: {name: [(x, y, lo, hi)]};
    the colour follows the first word of the name (the runtime)."""
    fig, ax = plt.subplots(figsize=(STD_W, STD_H))
    styles = ["-", "--", ":", "-."]
    seen_style = {}
    for name, pts in series.items():
        pts = [p for p in pts if p[1] is not None and math.isfinite(p[1])]
        if not pts:
            continue
        pts.sort()
        head = name.split(" ")[0]
        k = seen_style.setdefault(head, 0)
        seen_style[head] = k + 1
        xs = [p[0] for p in pts]
        ys = [p[1] * yscale for p in pts]
        lo = [max(0.0, (p[1] - p[2]) * yscale) if math.isfinite(p[2]) else 0 for p in pts]
        hi = [max(0.0, (p[3] - p[1]) * yscale) if math.isfinite(p[3]) else 0 for p in pts]
        ax.errorbar(xs, ys, yerr=[lo, hi], label=name, color=colours.get(head),
                    linestyle=styles[k % len(styles)], marker="o", markersize=3.5,
                    capsize=3, linewidth=1.3)
    if logx:
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(_si_label))
    if logy:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(_us_label))
        _minor_labels(ax)
    else:
        ax.yaxis.set_major_formatter(FuncFormatter(_si_label))
    if xticks:
        ax.set_xticks(xticks)
        ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    _legend(ax, len(series))
    return _svg(fig)


def _legend(ax, n):
    """Inside the axes for a few series, beside them for many."""
    if n <= 5:
        ax.legend(fontsize=8, loc="best")
    else:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def change_bars(title, rows, floor=None):
    """Horizontal bars of NEW/BASE changes in percent with CI whiskers,
    coloured by verdict, the noise floor shaded. rows: [(label, ratio,
    ci_low, ci_high, verdict)]. The axis spans the changes of the medians
    (at least +-10%, at most +-100%); longer whiskers are cut at its edge."""
    rows = [r for r in rows if r[1] is not None]
    fig, ax = plt.subplots(figsize=(STD_W + 1.5, max(1.6, 0.24 * len(rows) + 0.9)))
    ys = list(range(len(rows)))[::-1]
    span = 10.0
    for y, (label, ratio, lo, hi, verdict) in zip(ys, rows):
        v = (ratio - 1) * 100
        span = max(span, abs(v) * 1.3)
        err = None
        if lo is not None and hi is not None:
            err = [[max(0.0, v - (lo - 1) * 100)], [max(0.0, (hi - 1) * 100 - v)]]
        ax.barh(y, v, 0.6, xerr=err, capsize=2, color=VERDICT_COLOURS.get(verdict, "#999"),
                error_kw={"elinewidth": 1, "ecolor": "#333"})
    span = min(span, 100.0)
    if floor:
        ax.axvspan(-floor * 100, floor * 100, color="#999", alpha=0.15, linewidth=0)
    ax.set_xlim(-span, span)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_yticks(ys)
    ax.set_yticklabels([r[0] for r in rows], fontsize=7)
    ax.axvline(0, color="#333", linewidth=0.8)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:+.0f}%"))
    ax.set_xlabel("change of the median, NEW vs BASE, with its 95% bootstrap CI"
                  + ("; shaded: the noise floor" if floor else ""))
    ax.set_title(title)
    ax.grid(axis="y", visible=False)
    return _svg(fig)


# Markers and line styles that tell apart series of one colour (history
# charts with more series than colours).
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LINESTYLES = ["-", "--", "-.", ":"]


def series_styles(names, colours):
    """{name: (colour, marker, linestyle)}, distinct for every series: the
    runtime's own colour (its first word) when each runtime has one series,
    otherwise a colour per series from the palette, then markers and line
    styles beyond its ten colours."""
    heads = [n.split(" ")[0] for n in names]
    if len(set(heads)) == len(heads):
        return {n: (colours.get(h), "o", "-") for n, h in zip(names, heads)}
    out = {}
    for i, n in enumerate(names):
        out[n] = (PALETTE[i % len(PALETTE)], MARKERS[(i // len(PALETTE)) % len(MARKERS)],
                  LINESTYLES[(i // len(PALETTE)) % len(LINESTYLES)])
    return out


def history_chart(title, xlabels, series, steps, ylabel, colours, yscale=1.0):
    """A metric across recorded runs: one line per series with its CI band,
    step changes marked. xlabels: one per run (date and short commit, two
    lines); series: {name: [(run index, median, lo, hi)]}; steps: [(name,
    run index, shift)]. Every series has its own colour (or, beyond ten,
    its own marker and line style); the x labels are thinned so they never
    overlap."""
    fig, ax = plt.subplots(figsize=(STD_W, STD_H + 0.3))
    styles = series_styles([n for n, pts in series.items() if pts], colours)
    for name, pts in series.items():
        if not pts:
            continue
        colour, marker, ls = styles[name]
        xs = [p[0] for p in pts]
        ys = [p[1] * yscale for p in pts]
        lo = [(p[2] if math.isfinite(p[2]) else p[1]) * yscale for p in pts]
        hi = [(p[3] if math.isfinite(p[3]) else p[1]) * yscale for p in pts]
        ax.plot(xs, ys, marker=marker, markersize=3.5, linewidth=1.2, linestyle=ls,
                label=name, color=colour)
        ax.fill_between(xs, lo, hi, color=colour, alpha=0.12, linewidth=0)
    for name, idx, shift in steps:
        pts = dict((p[0], p[1]) for p in series.get(name, []))
        ax.axvline(idx - 0.5, color="#d62728", linestyle=":", linewidth=1)
        if idx in pts:
            ax.annotate(f"{shift * 100:+.0f}%", (idx, pts[idx] * yscale), fontsize=7,
                        color="#d62728", xytext=(3, 6), textcoords="offset points")
    # about 75 px per two-line label (a date is the widest line)
    room = max(2, int(STD_W * 96 / 75))
    every = max(1, math.ceil(len(xlabels) / room))
    shown = list(range(len(xlabels) - 1, -1, -every))[::-1]   # the newest is always labelled
    ax.set_xticks(shown)
    ax.set_xticklabels([xlabels[i] for i in shown], fontsize=7)
    if every > 1:
        ax.set_xticks(range(len(xlabels)), minor=True)
    ax.set_xlim(-0.5, len(xlabels) - 0.5)
    ax.yaxis.set_major_formatter(FuncFormatter(_si_label))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    _legend(ax, len(series))
    return _svg(fig)
