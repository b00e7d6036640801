"""The Python client: create and manage BackgroundJobs.

``AsyncClient`` is the asyncio core (kubernetes_asyncio); ``Client`` is the blocking facade
generated from it. Both have the same methods: ``enqueue``, ``schedule``,
``add_or_update_recurring``, ``remove_recurring``, ``trigger``, ``continue_with``,
``requeue``, ``cancel``, ``delete``, ``get``, ``wait``, ``list``, ``watch``,
``enqueue_many``, ``events``, ``runs``, ``pods`` and ``logs``.

Handler arguments follow the handler: positional ones as they are, keyword ones as the
method's ``**kwargs``. The options ``queue``, ``retries``, ``timeout``, ``image``, ``name``,
``labels``, ``namespace``, ``pod_template``, ``handler_kwargs`` (and per type ``delay``,
``at``, ``cron``, ``time_zone``, ``when``) are reserved keyword-only names; a handler
parameter that uses one of them goes into ``handler_kwargs={...}``.
"""

from backgroundjobs._extras import require_client_extra

require_client_extra("backgroundjobs.client (Client, AsyncClient)")

from backgroundjobs.api.constants import LABEL_BATCH, MAX_NAME_LENGTH  # noqa: E402
from backgroundjobs.client._arguments import HandlerRef  # noqa: E402
from backgroundjobs.client._async import AsyncClient, Item  # noqa: E402
from backgroundjobs.client._info import JobInfo  # noqa: E402
from backgroundjobs.client._logs import LogLine  # noqa: E402
from backgroundjobs.client._manifests import FIELD_MANAGER  # noqa: E402
from backgroundjobs.client._retry import RetryPolicy  # noqa: E402
from backgroundjobs.client._sync import Client  # noqa: E402
from backgroundjobs.client._watch import WatchEvent  # noqa: E402

__all__ = [
    "FIELD_MANAGER",
    "LABEL_BATCH",
    "MAX_NAME_LENGTH",
    "AsyncClient",
    "Client",
    "HandlerRef",
    "Item",
    "JobInfo",
    "LogLine",
    "RetryPolicy",
    "WatchEvent",
]
