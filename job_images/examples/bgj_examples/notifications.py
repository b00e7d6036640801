"""``notifications.send_to_user``, ``notifications.send_bulk`` and
``notifications.batch_summary`` (scenario 5).

``send_bulk`` fans out: it enqueues one ``notifications.send_to_user`` job per user, in
batches, through the client library, so that one user's failure does not stop the others and
the workers run them in parallel. ``send_to_user`` delivers one notification:

- to ``BGJ_NOTIFY_WEBHOOK_URL`` when set: an HTTP POST of
  ``{"id", "userId", "title", "message"}`` with an ``Idempotency-Key`` header (5xx and network
  errors are retried, 4xx are permanent);
- else to the user's inbox file ``BGJ_NOTIFY_DIR/<user>.jsonl`` (one JSON line each; a retry
  of the same job run finds its line and does not add it twice);
- with neither set, to the job's log: one JSON record with ``event: notification`` (the jobs
  that ``send_bulk`` enqueues get no settings of their own, so this is where they deliver
  unless the image sets one of the two).

``batch_summary`` is the continuation of a batch of ``send_to_user`` calls (examples/
bulk-notification-batch.yaml): it mails the batch's counts through ``mail.send``.

The pod that runs ``send_bulk`` needs a service account allowed to create BackgroundJobs in
its namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from backgroundjobs import PermanentError, handler
from backgroundjobs.errors import BackgroundJobsError, Conflict, InvalidArguments, InvalidSpec
from backgroundjobs.runtime import cancelled, current_job, parent_result, progress
from bgj_examples._config import env_dir, env_number, env_str, safe_filename

log = logging.getLogger(__name__)

SEND_TO_USER = "notifications.send_to_user"


@handler(SEND_TO_USER)
def send_to_user(user_id: str | int, message: str, title: str = "") -> dict[str, Any]:
    """Deliver ``message`` to ``user_id``; returns ``{"id", "userId", "channel", "status"}``."""
    user = str(user_id)
    job = current_job()
    notification_id = job.key if job is not None and job.key else str(uuid.uuid4())
    notification = {
        "id": notification_id,
        "userId": user,
        "title": title,
        "message": message,
        "createdAt": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    url = env_str("BGJ_NOTIFY_WEBHOOK_URL")
    if url:
        _post(url, notification)
        return {"id": notification_id, "userId": user, "channel": "webhook", "status": "sent"}
    if not env_str("BGJ_NOTIFY_DIR"):
        log.info(
            "notification %s for user %s",
            notification_id,
            user,
            extra={"event": "notification", "notification": notification},
        )
        return {"id": notification_id, "userId": user, "channel": "log", "status": "sent"}
    inbox = env_dir("BGJ_NOTIFY_DIR") / f"{safe_filename(user, 128)}.jsonl"
    status = append_once(inbox, notification)
    log.info("notification %s for user %s: %s", notification_id, user, status)
    return {"id": notification_id, "userId": user, "channel": "inbox", "status": status}


@handler("notifications.send_bulk")
async def send_bulk(
    message: str,
    user_ids: list[str | int] | None = None,
    users_file: str | None = None,
    title: str = "",
    batch_size: Annotated[int, Field(ge=1, le=5000)] = 500,
    queue: str | None = None,
) -> dict[str, int]:
    """Enqueue one ``notifications.send_to_user`` job per user, ``batch_size`` at a time.

    The users come from ``user_ids`` or from ``users_file`` (one id a line, e.g. a mounted
    ConfigMap: 10,000 ids do not fit in a job's 64 KiB of arguments). The jobs' names are
    derived from this job's name and run, so a retry skips the users enqueued already
    (``Conflict``) and enqueues the rest. An item that fails does not stop the others; if
    any failed, the job fails at the end (retried, or permanent when every failure is a
    refused spec or arguments). Returns the counts.
    """
    users = [str(u) for u in user_ids or []]
    if users_file:
        try:
            text = await asyncio.to_thread(Path(users_file).read_text)
        except OSError as exc:
            raise PermanentError(f"cannot read users_file {users_file}: {exc}") from exc
        users += [line.strip() for line in text.splitlines()]
    users = [u for u in users if u]
    if not users:
        raise PermanentError("no users: give user_ids or users_file")

    # Imported here: only this handler needs the Kubernetes client and its dependencies.
    from backgroundjobs.client import AsyncClient

    job = current_job()
    run_id = hashlib.sha256((job.key if job and job.key else uuid.uuid4().hex).encode())
    prefix = f"notify-{run_id.hexdigest()[:10]}"
    counts = {"enqueued": 0, "alreadyEnqueued": 0, "failed": 0, "batches": 0}
    errors: list[BackgroundJobsError] = []
    async with AsyncClient(namespace=job.namespace if job else None) as client:
        for number, batch in enumerate(_batches(users, batch_size)):
            if cancelled():
                break
            items = [((user, message), {"title": title}) for user in batch]
            results = await client.enqueue_many(
                SEND_TO_USER, items, name_prefix=f"{prefix}-{number}", queue=queue
            )
            for result in results:
                if isinstance(result, str):
                    counts["enqueued"] += 1
                elif isinstance(result, Conflict):
                    counts["alreadyEnqueued"] += 1
                else:
                    counts["failed"] += 1
                    errors.append(result)
            counts["batches"] += 1
            done = counts["enqueued"] + counts["alreadyEnqueued"] + counts["failed"]
            progress(done, len(users), f"batch {number + 1}: {counts['failed']} failed so far")
    log.info("notification jobs: %s", counts, extra={"event": "bulk_enqueued", **counts})
    if errors:
        summary = f"{len(errors)} of {len(users)} notification jobs were not created: {errors[0]}"
        if all(isinstance(e, InvalidArguments | InvalidSpec) for e in errors):
            raise PermanentError(summary)
        raise RuntimeError(summary)
    return counts


@handler("notifications.batch_summary")
def batch_summary(to: str, subject: str = "Notifications sent") -> dict[str, Any]:
    """Mail ``to`` the counts of the batch this job continues (its parent's result:
    ``{total, succeeded, failed, failedIndexes}``), through ``mail.send``'s settings."""
    counts = parent_result()
    if not isinstance(counts, dict) or "total" not in counts:
        raise PermanentError(f"the parent's result {counts!r:.200} is not a batch's counts")
    body = (
        f"{counts.get('succeeded', 0)} of {counts['total']} notifications were sent;"
        f" {counts.get('failed', 0)} failed."
    )
    if counts.get("failedIndexes"):
        body += f" Failed items (0-based): {counts['failedIndexes']}."
    from bgj_examples import mail  # the SMTP settings and the sent-log of mail.send

    return mail.send(to, subject, body)


def append_once(inbox: Path, notification: dict[str, Any]) -> str:
    """Append ``notification`` as a JSON line unless a line with its id is there already."""
    with open(inbox, "a+", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            f.seek(0)
            for line in f:
                with contextlib.suppress(ValueError):
                    if json.loads(line).get("id") == notification["id"]:
                        return "already-sent"
            f.write(json.dumps(notification, ensure_ascii=False) + "\n")
            f.flush()
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
    return "sent"


def _post(url: str, notification: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(notification).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": notification["id"]},
    )
    try:
        with urllib.request.urlopen(request, timeout=env_number("BGJ_NOTIFY_TIMEOUT", 10)):
            pass
    except urllib.error.HTTPError as exc:
        if 400 <= exc.code < 500 and exc.code not in (408, 429):
            raise PermanentError(f"the webhook refused the notification: HTTP {exc.code}") from exc
        raise


def _batches(items: Sequence[str], size: int) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
