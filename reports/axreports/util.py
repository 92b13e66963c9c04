"""Small shared pieces: the one-line error convention, atomic file writes
and number formatting."""

import math
import os
import sys
import tempfile


class InputError(Exception):
    """Bad input (unreadable or corrupt file, wrong schema, bad option): the
    command prints `axbench: <message>` on one line and exits 2."""


def warn(msg):
    """A warning on stderr, in the same one-line style as the C harness."""
    print(f"axbench: warning: {msg}", file=sys.stderr)


def note(msg):
    print(f"axbench: {msg}", file=sys.stderr)


def write_atomic(path, data):
    """Write `data` (str or bytes) to `path` through a temporary file in the
    same directory and a rename, so a reader never sees a half-written file
    and an interrupted write leaves the old file intact."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    mode = "wb" if isinstance(data, (bytes, bytearray)) else "w"
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + os.path.basename(path),
                               dir=directory)
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; results are meant to be shared like any file
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def finite(x):
    """A number usable as a float: int or float, not bool, not NaN or
    infinite, and (an int) not too large for a float."""
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return False
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


def fmt_si(v, digits=3):
    """12345678 -> '12.3M'."""
    if not finite(v):
        return "-"
    a = abs(v)
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            v, a = v / div, a / div
            break
    else:
        suffix = ""
    if a >= 100:
        return f"{v:.0f}{suffix}"
    return f"{v:.{digits}g}{suffix}"


def fmt_ns(ns):
    """A duration in ns with a readable unit."""
    if not finite(ns):
        return "-"
    a = abs(ns)
    if a >= 1e9:
        return f"{ns / 1e9:.3g}s"
    if a >= 1e6:
        return f"{ns / 1e6:.3g}ms"
    if a >= 1e3:
        return f"{ns / 1e3:.3g}us"
    return f"{ns:.3g}ns"


def fmt_value(v, unit):
    """A metric value with its unit, scaled for reading."""
    if not finite(v):
        return "-"
    if unit == "ns":
        return fmt_ns(v)
    if unit == "KiB":
        return f"{v / 1024:.3g} MiB" if abs(v) >= 1024 else f"{v:.3g} KiB"
    if unit == "bytes":
        for div, suffix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if abs(v) >= div:
                return f"{v / div:.3g} {suffix}"
        return f"{v:.0f} B"
    if unit in ("ratio",):
        return f"{v:.3g}"
    text = fmt_si(v)
    return f"{text} {unit}" if unit and unit != "count" else text


def fmt_range(median, lo, hi, unit):
    """'52.1k [47.3k, 57.0k] msgs/s': the unit once, after the interval."""
    if not finite(median):
        return "-"
    if unit in ("ns", "KiB", "bytes", "ratio"):
        inner = [fmt_value(x, unit) for x in (median, lo, hi)]
        tail = ""
    else:
        inner = [fmt_si(x) for x in (median, lo, hi)]
        tail = f" {unit}" if unit and unit != "count" else ""
    if not (finite(lo) and finite(hi)):
        return inner[0] + tail
    return f"{inner[0]} [{inner[1]}, {inner[2]}]{tail}"


def fmt_pct(ratio):
    """A ratio as a signed percentage change: 1.034 -> '+3.4%'."""
    if not finite(ratio):
        return "-"
    return f"{(ratio - 1) * 100:+.1f}%"


# ---------------------------------------------------------------------------
# Human titles and units

# What the scenarios are, in words (ids stay visible beside them).
SCENARIO_TITLES = {
    "tcp_echo": "TCP echo",
    "http_plaintext": "HTTP plaintext",
    "fairness": "Fairness",
    "rpc_fanout": "RPC fan-out",
    "idle_conns": "Idle connections",
    "connect_storm": "Connect storm",
    "stall_echo": "Stalling echo",
    "spawn_join": "Spawn and join",
    "ctx_switch": "Context switch",
    "chan_pingpong": "Channel ping-pong",
    "timers": "Timers",
    "blocking_offload": "Blocking offload",
    "file_read": "File read",
}

# metric id -> (title, unit shown or None for the file's unit). A metric
# not listed shows its id.
METRIC_TITLES = {
    "throughput": ("Throughput", None),
    "throughput_mib": ("Throughput in bytes", "MiB/s"),
    "round_trips": ("Round trips", None),
    "server_cpu_us_per_msg": ("Server CPU per message", "us"),
    "loadgen_cpu_us_per_msg": ("Load generator CPU per message", "us"),
    "server_cpu_util": ("Server CPU utilisation", None),
    "server_sys_share": ("Server system-time share", None),
    "server_vcsw_per_s": ("Server voluntary switches", "1/s"),
    "server_ivcsw_per_s": ("Server involuntary switches", "1/s"),
    "loop_iterations_per_msg": ("Loop iterations per message", None),
    "events_per_iteration": ("Events per loop iteration", None),
    "switches_per_msg": ("Switches per message", None),
    "server_maxrss_kib": ("Server peak RSS", None),
    "maxrss_kib": ("Peak RSS", None),
    "loadgen_cpu_util": ("Load generator CPU utilisation", None),
    "msgs_per_cpu_s": ("Messages per server CPU second", None),
    "tcp_retransmits": ("TCP retransmissions", None),
    "machine_others_share": ("Other processes' share of the pinned CPUs", None),
    "server_rss_per_conn": ("Server memory per idle connection", None),
    "idle_connections": ("Idle connections held", None),
    "server_rss_idle_kib": ("Server RSS with the idle connections", None),
    "connect_all_s": ("Time to open every connection", "s"),
    "offered_rate": ("Offered rate", None),
    "spawn_join_ns": ("Spawn and join, per task", None),
    "spawn_join_per_s": ("Spawn and join rate", "tasks/s"),
    "bytes_per_live_task": ("Memory per live task", None),
    "switch_ns": ("Switch between two tasks", None),
    "local_rtt_ns": ("Channel round trip, same thread", None),
    "xthread_rtt_ns": ("Channel round trip, across threads", None),
    "timers_per_s": ("Timers armed and fired", "timers/s"),
    "arm_fire_ns": ("Timer arm and fire", None),
    "churn_ns": ("Timer arm and cancel", None),
    "calls_per_s": ("Offloaded blocking calls", "calls/s"),
    "seq_warm_mib_s": ("Sequential read, warm cache", "MiB/s"),
    "rand_warm_mib_s": ("Random read, warm cache", "MiB/s"),
    "rand_direct_mib_s": ("Random read, O_DIRECT", "MiB/s"),
    "o_direct_supported": ("O_DIRECT supported", None),
    "cpu_s": ("CPU time (user+sys)", "s"),
    "wall_s": ("Wall time", "s"),
    "instructions_per_op": ("Instructions per operation", None),
}

PERCENTILE_NAMES = {"p50": "p50", "p90": "p90", "p99": "p99", "p99_9": "p99.9",
                    "p99_99": "p99.99", "max": "max"}
PERCENTILE_FAMILIES = {"latency": "Latency", "latency_uncorrected": "Uncorrected latency",
                       "sleep_lateness": "Sleep lateness", "tick_lateness": "Loop tick lateness"}

# Per scenario, what one "message" of the load generator is.
MESSAGE_NAMES = {"http_plaintext": "request"}


def metric_title(name, scenario=None):
    """'Sequential read, warm cache' for seq_warm_mib_s; the id itself for
    a metric this table does not know."""
    if name in METRIC_TITLES:
        title = METRIC_TITLES[name][0]
    else:
        for fam, ftitle in PERCENTILE_FAMILIES.items():
            suffix = name[len(fam) + 1:] if name.startswith(fam + "_") else None
            if suffix in PERCENTILE_NAMES:
                return f"{ftitle} {PERCENTILE_NAMES[suffix]}"
        return name
    what = MESSAGE_NAMES.get(scenario)
    if what and title.endswith(" per message"):
        title = title[: -len("message")] + what
    return title


def display_unit(name, unit, scenario=None):
    """The unit a reader sees: HTTP throughput in req/s, the table's unit
    where it names one, else the file's."""
    if name == "throughput" and scenario == "http_plaintext":
        return "req/s"
    if name in METRIC_TITLES and METRIC_TITLES[name][1]:
        return METRIC_TITLES[name][1]
    return unit


def scenario_title(sc):
    return SCENARIO_TITLES.get(sc, sc)


def fmt_ratio(r):
    """A ratio against the reference: 0.934 -> '0.93x', 12.3 -> '12x'."""
    if not finite(r):
        return "-"
    if r >= 10:
        return f"{r:.0f}\u00d7"
    if r >= 0.095:
        return f"{r:.2f}\u00d7"
    return f"{r:.2g}\u00d7"
