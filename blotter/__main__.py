"""``blotter`` and ``python -m blotter``: the command line, loaded behind a guard.

Loading the command line takes a few tenths of a second (SQLAlchemy, the domain); Ctrl-C in
that time ends the program as it does later, in one line with exit 130, not a traceback.
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130  # as a shell reports a process Ctrl-C ended


def main() -> int:
    try:
        from blotter.cli import main as run
    except KeyboardInterrupt:
        print("blotter: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return run()


if __name__ == "__main__":
    sys.exit(main())
