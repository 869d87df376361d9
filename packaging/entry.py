"""The frozen desk's entry point: the command line of ``blotter``, after the check that
lets a spawned child process (the store's committer, replay's workers) run its own code
instead of a second desk."""

from __future__ import annotations

import multiprocessing
import sys

from blotter.__main__ import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
