"""The backgroundjobs operator (``kopf run -m backgroundjobs.controller``)."""

from backgroundjobs.controller import handlers as handlers

__all__ = ["handlers"]
