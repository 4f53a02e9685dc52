"""The ``simdomain`` console script (and ``python -m simdomain``).

Loading the commands takes a moment (NumPy, pandas, ...); Ctrl-C during it ends the
command quietly with exit code 130 instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Load the command line and run it; return the exit code."""
    try:
        from simdomain.cli import main as run

        return run(argv)
    except KeyboardInterrupt:
        print("interrupted; no partial output was written", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
