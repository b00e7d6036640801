"""``python -m backgroundjobs.cli``: the same command as ``bgjobs``."""

import sys

from backgroundjobs.cli import main

sys.exit(main())
