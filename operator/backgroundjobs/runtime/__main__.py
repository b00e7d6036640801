"""``python -m backgroundjobs.runtime``: the handler container's entrypoint."""

from backgroundjobs.runtime._main import main

raise SystemExit(main())
