"""Small shared pieces: the one-line error convention, exit statuses,
safe file writes (claimed output paths, a lock, atomic replacement) and
number formatting."""

import atexit
import errno
import fcntl
import math
import os
import stat
import sys
import tempfile

# Exit statuses, the same for every command of axbench, C and Python (the
# table is in docs/harness.md, "Exit status"; harness/common/common.h).
EXIT_OK = 0
EXIT_FAILED = 1        # compare: regression
EXIT_BAD_INPUT = 2
EXIT_INCONCLUSIVE = 3
EXIT_INTERNAL = 4
EXIT_WRITE = 5         # an output could not be written (disk full, I/O error)


class InputError(Exception):
    """Bad input (unreadable or corrupt file, wrong schema, bad option, an
    output path that is not a regular file or is locked by another writer):
    the command prints `axbench: <message>` on one line and exits 2."""


class WriteError(Exception):
    """An output could not be written at the end (disk full, I/O error):
    `axbench: <message>` and exit 5; the old file, if any, is left as it
    was."""


def warn(msg):
    """A warning on stderr, in the same one-line style as the C harness."""
    print(f"axbench: warning: {msg}", file=sys.stderr)


def note(msg):
    print(f"axbench: {msg}", file=sys.stderr)


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))


def file_kind(mode):
    """What a file of this st_mode is, in words ('a FIFO')."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def check_output_kind(path, what):
    """Raise InputError unless `path` names a regular file or nothing. A
    symbolic link is refused, even to a regular file: the rename would
    replace the link itself (the same rule as the C harness)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise InputError(f"{what} {path}: {e.strerror or e}") from None
    if stat.S_ISREG(st.st_mode):
        return
    if stat.S_ISLNK(st.st_mode):
        raise InputError(f"{what} {path} is a symbolic link (to {os.readlink(path)}); "
                         "output goes only to a regular file or a new path: give the "
                         "target's own path")
    raise InputError(f"{what} {path} is {file_kind(st.st_mode)}, not a regular file; output "
                     "goes only to a regular file or a new path")


_claims = []          # [(lock path, fd)] held until exit
_claims_owner = None


def _release_claims():
    if os.getpid() != _claims_owner:
        return
    while _claims:
        lock, fd = _claims.pop()
        try:
            os.unlink(lock)   # while still held: a waiter sees it replaced
        except OSError:
            pass
        os.close(fd)


def _take_lock(path, what):
    """An exclusive flock on PATH.lock (with our pid inside), kept until the
    process exits: the same protocol as harness/results/atomic.c, so C and
    Python writers of one path exclude each other."""
    global _claims_owner
    lock = path + ".lock"
    for _ in range(100):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise InputError(f"{what} {path}: cannot create the lock file {lock}: "
                             f"{e.strerror or e}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise InputError(f"{what} {path}: the lock file {lock} is not a regular file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise InputError(f"{what} {path}: cannot lock {lock}: {e.strerror}") from None
            raise InputError(f"{what} {path} is being written by another axbench (process "
                             f"{holder} holds {lock}); wait for it to finish or choose "
                             "another path") from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except OSError:
            same = False
        if not same:
            os.close(fd)      # removed or replaced meanwhile: again
            continue
        try:    # who holds it, for the message of a refused writer
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass    # a full disk: the lock holds all the same
        if _claims_owner is None:
            _claims_owner = os.getpid()
            atexit.register(_release_claims)
        _claims.append((lock, fd))
        return
    raise InputError(f"{what} {path}: cannot lock {lock}: it keeps being replaced")


def claim_output(path, what="output"):
    """Before any work: make sure `path` can receive an output file (a
    regular file or a new path in a writable directory) and that no other
    axbench process is writing it (a lock on PATH.lock, held until exit).
    Raises InputError (exit 2) saying why not."""
    path = os.fspath(path)
    if not path:
        raise InputError(f"{what}: an empty path cannot hold output")
    check_output_kind(path, what)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise InputError(f"{what} {path}: directory {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-check", dir=directory)
    except OSError as e:
        raise InputError(f"{what} {path}: cannot create files in {directory}: "
                         f"{e.strerror or e}") from None
    os.close(fd)
    os.unlink(tmp)
    _take_lock(path, what)


def write_atomic(path, data):
    """Write `data` (str or bytes) to `path` through a temporary file in the
    same directory and a rename, so a reader never sees a half-written file
    and an interrupted write leaves the old file intact. Refuses a path
    that names anything but a regular file or nothing (InputError); a
    failed write (disk full, I/O error) raises WriteError."""
    path = os.fspath(path)
    check_output_kind(path, "output")
    directory = os.path.dirname(os.path.abspath(path))
    mode = "wb" if isinstance(data, (bytes, bytearray)) else "w"
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + os.path.basename(path),
                                   dir=directory)
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; results are meant to be shared like any file
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise WriteError(f"{path} NOT written: {e.strerror or e}"
                         + (" (the previous version is left as it was)"
                            if os.path.exists(path) else "")) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def finite(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


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
