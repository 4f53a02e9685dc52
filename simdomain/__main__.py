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
        pass
    except ImportError as error:  # Ctrl-C inside an extension module's start comes as
        if not _interrupted(error):  # "ImportError: initialization failed"
            raise
    print("interrupted; no partial output was written", file=sys.stderr)
    return INTERRUPTED


def _interrupted(error: BaseException) -> bool:
    """Whether a KeyboardInterrupt caused ``error`` (anywhere in its chain)."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


if __name__ == "__main__":
    sys.exit(main())
