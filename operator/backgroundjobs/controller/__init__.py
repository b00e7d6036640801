"""The backgroundjobs operator: pure decisions and builders, and the loop that applies them.

Importing this package (or ``decisions``, ``builders``, ...) loads no kopf: the kopf wiring is
in ``handlers``, which only the entry points import (``python -m backgroundjobs.controller``,
``bgjobs operator run``, ``kopf run -m backgroundjobs.controller.handlers``).
"""
