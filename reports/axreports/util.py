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
