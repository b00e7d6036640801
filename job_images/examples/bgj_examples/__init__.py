"""The reference scenarios' job handlers, as run by the ``backgroundjobs/examples`` image.

Each module registers its handlers with ``@backgroundjobs.handler`` when imported; the image
lists them in ``BACKGROUNDJOBS_HANDLER_MODULES`` (see ``MODULES``). Configuration comes from
env variables named ``BGJ_*`` (credentials from a Secret mounted as env or files).
"""

MODULES = (
    "bgj_examples.mail",
    "bgj_examples.report",
    "bgj_examples.cleanup",
    "bgj_examples.cache",
    "bgj_examples.notifications",
    "bgj_examples.echo",
)
