"""``python -m backgroundjobs.dashboard``: the dashboard as the chart runs it."""

import sys

from backgroundjobs.dashboard._cli import main

sys.exit(main())
