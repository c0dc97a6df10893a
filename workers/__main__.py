"""`python -m workers ...`: run one worker process (see workers/process.py)."""

from __future__ import annotations

import sys

from workers.process import main

if __name__ == "__main__":
    sys.exit(main())
