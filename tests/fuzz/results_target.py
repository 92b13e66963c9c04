"""What fuzz_results (tests/fuzz/fuzz_results.c) runs on every input: the
result-file reader of reports/axreports/results.py and everything compare,
report and record read from the document it returns.

The contract: for any bytes in the file, load_results returns a document
whose accessors all work, or raises InputError (one clear line for the
user). Any other exception is a crash; the fuzzer's -timeout and
-rss_limit_mb turn a hang or unbounded memory into one too.
"""

from axreports.results import (hist_curve, hist_percentile, load_results,
                               short_label, varying_params)
from axreports.util import InputError  # noqa: F401  (the harness reads it)


def run(path):
    doc = load_results(path)
    # the document-level facts compare, report and record print
    doc.commit[:12]
    bool(doc.dirty)
    doc.ab
    doc.time
    doc.ergonomics()
    varying = varying_params(doc.cells)
    by_key = {}
    for c in doc.cells:
        by_key.setdefault(c.key, c)  # compare pairs cells by key
        c.ok
        c.unsupported
        c.loadgen_saturated
        len(c.reps)
        c.others_share()
        c.loadgen_mode()
        c.primary_metric()
        short_label(c, varying)
        for m in c.metrics.values():
            m.instructions
            sorted(m.values)
        for h in c.merged_histograms().values():
            hist_curve(h)
            hist_percentile(h, 50)
            hist_percentile(h, 99.9)
