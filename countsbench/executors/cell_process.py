"""The pool's subprocess entry point: ``python -m countsbench.executors.cell_process JOB OUTCOME``.

It is its own module, imported by nothing, so that ``-m`` does not re-execute `countsbench.executors.job`
after the package has imported it (Python warns, in every worker's log, that this "may result in
unpredictable behaviour").
"""

from __future__ import annotations

import sys

from countsbench.executors.job import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
