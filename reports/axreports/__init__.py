"""axreports - the reporting side of axbench: `compare` (is NEW worse than
BASE, and how sure are we), `ab` (two builds measured pair by pair), `report` (one self-contained HTML page and a
Markdown summary) and `record` (a SQLite history of results across commits).

Only the standard library is used, plus Debian's python3-matplotlib for the
charts of `report`. See docs/reports.md.
"""

__all__ = ["cli"]
