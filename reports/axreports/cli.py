"""Command line of the reporting side: `compare`, `report` and `record`
(the axbench binary forwards these subcommands here).

Exit status (docs/harness.md, "Exit status", the one table for every
command): 0 success (compare: pass); 1 compare found a regression; 2 bad
input (unreadable, oversized, non-regular or corrupt file, a file that
breaks the schema, wrong schema version, bad option, an output path that is
not a regular file or that another axbench is writing), with one line
`axbench: ...` on stderr; 3 compare is inconclusive; 4 an internal error (a
bug: one line, never a traceback, unless AXBENCH_DEBUG=1); 5 an output
could not be written (disk full, I/O error); 130 interrupted.
"""

import argparse
import os
import sys

from .util import (EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_WRITE, InputError,
                   WriteError)

PROG = "axbench"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one `axbench: ...` line and exit 2
    like every other bad input."""

    def error(self, message):
        raise InputError(f"{self.prog.replace(PROG + ' ', '')}: {message} "
                         f"(see {self.prog} --help)")


def _fraction(text):
    """'0.03' or '3%' -> 0.03."""
    t = text.strip()
    try:
        return float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or percentage: '{text}'") from None


def build_parser():
    p = _Parser(prog=PROG, description="axbench reports: compare, report, record")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    c = sub.add_parser("compare", prog=f"{PROG} compare",
                       help="compare two result files cell by cell",
                       description="Compare NEW against BASE cell by cell. Exit status: "
                                   "0 pass, 1 regression (a cell significantly worse beyond "
                                   "the noise floor), 2 bad input, 3 inconclusive (cells not "
                                   "comparable or disturbed by other work), 4 internal error.")
    c.add_argument("base", metavar="BASE.json")
    c.add_argument("new", metavar="NEW.json")
    c.add_argument("--floor", type=_fraction, default=0.03,
                   help="noise floor: relative change of the medians below which a "
                        "significant change still counts as unchanged (default 0.03 = 3%%)")
    c.add_argument("--metric", action="append", metavar="NAME[,NAME]",
                   help="metrics that decide the verdict (repeatable); 'all' = every "
                        "metric with a direction; default: those except the tail "
                        "percentiles (p90 and above, which are still reported)")
    c.add_argument("--alpha", type=float, default=0.05,
                   help="significance level of the test (Mann-Whitney U; the sign test for the "
                        "two sides of an ab run) (default 0.05)")
    c.add_argument("--instr-threshold", type=_fraction, default=0.01,
                   help="threshold for instruction counts (default 0.01 = 1%%)")
    c.add_argument("--resamples", type=int, default=2000,
                   help="bootstrap resamples, 100..100000 (default 2000)")
    c.add_argument("--max-interference", type=_fraction, default=0.10,
                   help="share of the pinned CPUs other processes may take "
                        "(machine.others_share) before a wall-clock cell is not trusted "
                        "(default 0.10 = 10%%)")
    c.add_argument("--normalize", metavar="RUNTIME",
                   help="divide every value by the same-repetition value of RUNTIME's "
                        "matching cell in the same file before comparing (cancels "
                        "machine-wide drift on shared machines)")
    c.add_argument("--json", metavar="OUT", help="write the comparison as JSON")
    c.add_argument("--md", metavar="OUT", help="write the comparison as Markdown")
    c.add_argument("-q", "--quiet", action="store_true",
                   help="do not print the Markdown table on stdout")

    r = sub.add_parser("report", prog=f"{PROG} report",
                       help="one self-contained HTML report and a Markdown summary",
                       description="Write DIR/index.html (self-contained, viewable "
                                   "offline) and DIR/summary.md.")
    r.add_argument("results", metavar="RESULTS.json")
    r.add_argument("--conform", metavar="CONFORM.json",
                   help="conformance matrix of axbench conform --json")
    r.add_argument("--baseline", metavar="BASE.json",
                   help="compare RESULTS against this result file")
    r.add_argument("--history", metavar="DB", help="SQLite history written by record")
    r.add_argument("--ergo", metavar="ERGO.json",
                   help="ergonomics table of axbench ergo --json")
    r.add_argument("--functions", metavar="DIR",
                   help="instructions by function: the directory of axbench run --measure "
                        "instructions --profile-functions DIR (or its functions.json)")
    r.add_argument("--floor", type=_fraction, default=0.03,
                   help="noise floor for the comparison and step changes (default 3%%)")
    r.add_argument("--max-interference", type=_fraction, default=0.10,
                   help="for the comparison: share of the pinned CPUs other processes may "
                        "take before a wall-clock cell is not trusted (default 10%%)")
    r.add_argument("-o", "--output", metavar="DIR", required=True,
                   help="output directory (created if missing)")

    from . import ab
    ab.add_parser(sub, _fraction)

    from . import functions
    functions.add_parser(sub)

    d = sub.add_parser("record", prog=f"{PROG} record",
                       help="append a result file to the SQLite history",
                       description="Append RESULTS.json to a SQLite database keyed by "
                                   "commit, branch, testbed and time.")
    d.add_argument("results", metavar="RESULTS.json")
    d.add_argument("--db", default="results.db", help="database file (default results.db)")
    d.add_argument("--branch", help="branch name (default: $AXBENCH_BRANCH, the CI's "
                                    "branch variable, or git's current branch)")
    d.add_argument("--testbed", help="name of the machine class (default: $AXBENCH_TESTBED "
                                     "or the result's host name)")
    return p


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            raise InputError("a command is needed: compare, report, record or ab "
                             "(see axbench-reports --help)")
        if args.command == "compare":
            from . import compare
            return compare.run(args)
        if args.command == "report":
            from . import report
            return report.run(args)
        if args.command == "ab":
            from . import ab
            return ab.run(args)
        if args.command == "functions":
            from . import functions
            return functions.run(args)
        from . import history
        return history.run_record(args)
    except InputError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except WriteError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return EXIT_WRITE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug: say so in one line, distinct from a verdict
        if os.environ.get("AXBENCH_DEBUG") == "1":
            raise
        print(f"{PROG}: internal error: {type(e).__name__}: {e} "
              f"(set AXBENCH_DEBUG=1 for a traceback)", file=sys.stderr)
        return EXIT_INTERNAL
