#!/usr/bin/env python3
"""Entry point of axbench's reporting side: `compare`, `report`, `record`.

Run it through the repository's launcher so that an interpreter that can
import matplotlib is chosen (reports/axbench-reports does that), or directly
with /usr/bin/python3. See docs/reports.md.
"""

import os
import sys

# the package lives beside this file
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from axreports.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
