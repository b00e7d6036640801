"""The web dashboard with 10,000 jobs in a namespace (issue 18): how fast its pages and API
answer, how much memory its server holds, and what it costs the API server.

    KUBECONFIG=... python -m bench.dashboard [--jobs 10000] [--keep]

Against a cluster where no operator runs (the bench writes the jobs' statuses itself, a mix
of phases, so that 10,000 jobs do not become 10,000 pods): creates the namespace
``bench-dashboard`` and its jobs, starts ``bgjobs dashboard -n bench-dashboard``, then

* sync: time from start until ``/healthz`` says the cache is filled;
* memory: the server's RSS after the sync, after the page loads and after the churn;
* API latency: p50/p95 of the JSON endpoints the pages call (filters, text search, deep page);
* page load: p50/p95 in headless Chromium, from navigation to the data drawn;
* live: while 200 statuses change (20/s), the time from each change's write to the open
  jobs page drawing it, and the dashboard's requests to the API server (its own count
  and the audit log's, by its User-Agent): one list and one watch of the BackgroundJobs
  (and one of the BackgroundJobQueues), no polling.

Writes ``bench/RESULTS-dashboard.md`` and ``.json``. Timing goals live here, not in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from selenium.webdriver.common.by import By
from tests.integration.browser import DashboardProcess, navigate, new_driver, poll

from backgroundjobs.api import constants as c
from backgroundjobs.dashboard._kube import USER_AGENT
from bench.audit import AuditLog
from bench.k8s import api_client
from bench.procs import rss_bytes
from bench.stats import percentile

NAMESPACE = "bench-dashboard"
LIVE_MARK = "bench-live-change"
REPO = Path(__file__).resolve().parents[1]
PHASE_MIX = [
    ("Succeeded", 60), ("Failed", 10), ("Scheduled", 10), ("Queued", 5),
    ("Running", 5), ("Waiting", 5), ("Pending", 5),
]  # fmt: skip
HANDLERS = ["mail.send", "notifications.send_to_user", "report.generate", "cleanup.temp_files"]
API_CALLS = {
    "overview": "/api/overview",
    "jobs, first page": "/api/jobs",
    "jobs, Failed": "/api/jobs?phase=Failed&sort=-finished",
    "jobs, text search": "/api/jobs?q=user4242",
    "jobs, label": "/api/jobs?labels=bench-group%3D7",
    "jobs, last page": "/api/jobs?offset=9950&limit=50",
    "recurring": "/api/recurring",
    "24 h series": "/api/series",
    "queues": "/api/queues",
    "a queue's waiting jobs": f"/api/queues/{NAMESPACE}/default",
    "batches": "/api/batches",
}


def stamp(seconds_ago: float) -> str:
    moment = datetime.fromtimestamp(time.time() - seconds_ago, UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def status_for(phase: str, i: int) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "type": "Immediate", "observedGeneration": 1}
    if phase in ("Succeeded", "Failed"):
        finished = random.uniform(0, 20 * 3600)
        status.update(
            startedAt=stamp(finished + 2), finishedAt=stamp(finished), runs=1,
            jobName=f"bench-{i:05d}-1",
        )  # fmt: skip
        ctype, reason = (
            ("Succeeded", "Completed")
            if phase == "Succeeded"
            else ("Failed", "BackoffLimitExceeded")
        )
        status["conditions"] = [
            {"type": ctype, "status": "True", "reason": reason, "message": "bench",
             "lastTransitionTime": stamp(finished), "observedGeneration": 1}
        ]  # fmt: skip
        status["message"] = (
            "done" if phase == "Succeeded" else "failed (BackoffLimitExceeded): boom"
        )
        if phase == "Succeeded":
            status["result"] = {"sent": True, "id": i}
    elif phase == "Scheduled":
        status["dueAt"] = stamp(-random.uniform(60, 86400))
    elif phase == "Queued":
        status["message"] = "queue default is at its concurrency limit"
    elif phase == "Running":
        status.update(startedAt=stamp(random.uniform(0, 60)), runs=1)
        done = i % 100
        status["progress"] = {"done": done, "total": 100, "percent": float(done),
                              "summary": f"{done}/100 ({done}%)", "message": "rows"}  # fmt: skip
    return status


async def create_jobs(kubeconfig: str, count: int) -> float:
    """The namespace and ``count`` jobs with statuses; returns the seconds it took."""
    api = await api_client(kubeconfig)
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    try:
        await core.create_namespace({"metadata": {"name": NAMESPACE}})
    except ApiException as exc:
        if exc.status != 409:
            raise
    phases = [p for p, weight in PHASE_MIX for _ in range(weight)]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    t0 = time.monotonic()

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            name = f"bench-{i:05d}"
            body = {
                "apiVersion": c.API_VERSION, "kind": c.KIND,
                "metadata": {"name": name, "labels": {"bench-group": str(i % 20)}},
                "spec": {"handler": HANDLERS[i % len(HANDLERS)], "args": [f"user{i}@example.com"],
                         "kwargs": {"subject": "Welcome", "body": "<h1>Hi!</h1>"},
                         "queue": ["default", "critical", "low"][i % 3]},
            }  # fmt: skip
            try:
                await custom.create_namespaced_custom_object(
                    c.GROUP, c.VERSION, NAMESPACE, c.PLURAL, body
                )
            except ApiException as exc:
                if exc.status != 409:
                    raise
            patch = {"status": status_for(phases[i % len(phases)], i)}
            await custom.patch_namespaced_custom_object_status(
                c.GROUP, c.VERSION, NAMESPACE, c.PLURAL, name, patch,
                _content_type="application/merge-patch+json",
            )  # fmt: skip

    await asyncio.gather(*(worker() for _ in range(32)))
    await api.close()
    return time.monotonic() - t0


class Session:
    """HTTP requests to the dashboard with its session cookie."""

    def __init__(self, dash: DashboardProcess) -> None:
        self.base = dash.base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        self.opener.open(dash.url, timeout=30).read()

    def get(self, path: str) -> tuple[float, Any]:
        t0 = time.monotonic()
        with self.opener.open(self.base + path, timeout=60) as response:
            body = json.loads(response.read())
        return time.monotonic() - t0, body


def wait_synced(dash: DashboardProcess, timeout: float = 300) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            with urllib.request.urlopen(dash.base + "/healthz", timeout=5) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError("the dashboard did not sync")


def page_loads(dash: DashboardProcess, rounds: int) -> dict[str, list[float]]:
    """Seconds from opening a page to its data drawn, per page, as a user moves between pages
    of the open dashboard (its links change the page in place: the request for the page's
    data and the drawing); and the full load of the dashboard (document, script, data)."""
    pages = {
        "overview": ("/", "[data-phase-count=total] .n"),
        "jobs": ("/jobs", "tr[data-job]"),
        "jobs, Failed": ("/jobs?phase=Failed", "tr[data-job]"),
        "jobs, text search": ("/jobs?q=user4242", "tr[data-job]"),
        "job page": (f"/jobs/{NAMESPACE}/bench-00042", "#attempts"),
        "recurring": ("/recurring", "#recurring .empty, #recurring table"),
        "queues": ("/queues", "tr[data-queue-row]"),
        "batches": ("/batches", "#batches .empty, #batches table"),
    }
    driver = new_driver(Path(tempfile.mkdtemp(prefix="bench-chromium-")))
    out: dict[str, list[float]] = {name: [] for name in pages}
    out["full load (jobs)"] = []
    try:
        navigate(driver, dash.url)
        for _ in range(rounds):
            for name, (path, ready) in pages.items():
                driver.execute_script("document.getElementById('main').innerHTML = ''")
                t0 = time.monotonic()
                driver.execute_script(
                    "history.pushState(null, '', arguments[0]);"
                    " window.dispatchEvent(new PopStateEvent('popstate'))",
                    path,
                )
                poll(
                    name,
                    lambda r=ready: driver.find_elements(By.CSS_SELECTOR, r),
                    timeout=120,
                    interval=0.01,
                )
                out[name].append(time.monotonic() - t0)
        for _ in range(max(3, rounds // 4)):
            t0 = time.monotonic()
            if navigate(driver, dash.base + "/jobs"):
                continue  # Chromium aborted a load on a network change: not our time
            poll("jobs", lambda: driver.find_elements(By.CSS_SELECTOR, "tr[data-job]"), 120, 0.01)
            out["full load (jobs)"].append(time.monotonic() - t0)
    finally:
        driver.quit()
    return out


async def churn_and_watch(kubeconfig: str, dash: DashboardProcess, changes: int) -> list[float]:
    """Flip ``changes`` (at most 200: one page) Pending jobs to Running, 20 a second, with the
    jobs page open on them; returns, per change, the seconds from its write to the page
    showing it."""
    driver = new_driver(Path(tempfile.mkdtemp(prefix="bench-chromium-")))
    api = await api_client(kubeconfig)
    custom = client.CustomObjectsApi(api)
    written: dict[str, float] = {}
    shown: dict[str, float] = {}
    mark = f"{LIVE_MARK}-{random.randrange(16**6):06x}"  # this run's changes only (--reuse)
    try:
        navigate(driver, dash.url)
        navigate(driver, dash.base + f"/jobs?phase=Running&q={mark}&limit=200")
        poll("the empty list", lambda: "No job matches" in driver.find_element(By.ID, "table").text)
        listed = await custom.list_namespaced_custom_object(c.GROUP, c.VERSION, NAMESPACE, c.PLURAL)
        pending = [
            o["metadata"]["name"] for o in listed["items"] if o["status"]["phase"] == "Pending"
        ]
        names = pending[: min(changes, 200)]

        async def writer() -> None:
            for name in names:
                patch = {"status": {"phase": "Running", "startedAt": stamp(0), "message": mark}}
                await custom.patch_namespaced_custom_object_status(
                    c.GROUP, c.VERSION, NAMESPACE, c.PLURAL, name, patch,
                    _content_type="application/merge-patch+json",
                )  # fmt: skip
                written[name] = time.monotonic()
                await asyncio.sleep(0.05)

        async def reader() -> None:
            deadline = time.monotonic() + 300
            while len(shown) < len(names) and time.monotonic() < deadline:
                rows = driver.execute_script(
                    "return [...document.querySelectorAll('tr[data-job]')].map(r => r.dataset.job)"
                )
                now = time.monotonic()
                for key in rows:
                    name = key.split("/", 1)[1]
                    if name in written and name not in shown:
                        shown[name] = now
                await asyncio.sleep(0.02)

        await asyncio.gather(writer(), reader())
    finally:
        driver.quit()
        await api.close()
    return [shown[n] - written[n] for n in shown]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20, help="page loads per page")
    parser.add_argument("--changes", type=int, default=200, help="live changes (at most 200)")
    parser.add_argument("--keep", action="store_true", help="keep the namespace afterwards")
    parser.add_argument(
        "--reuse", action="store_true", help="the jobs of an earlier --keep run are there already"
    )
    args = parser.parse_args()
    kubeconfig = os.environ["KUBECONFIG"]
    results: dict[str, Any] = {
        "jobs": args.jobs,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    results["load_average"] = os.getloadavg()
    results["commit"] = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()

    if not args.reuse:
        print(f"[bench] creating {args.jobs} jobs in {NAMESPACE}", file=sys.stderr)
        results["create_seconds"] = asyncio.run(create_jobs(kubeconfig, args.jobs))
    audit = AuditLog(Path(kubeconfig).resolve().parent / "logs" / "audit.log")
    mark = audit.mark() if audit.exists() else None

    log = Path(tempfile.mkdtemp(prefix="bench-dashboard-")) / "dashboard.log"
    dash = DashboardProcess(kubeconfig, log, "-n", NAMESPACE)
    try:
        results["sync_seconds"] = wait_synced(dash)
        print(f"[bench] synced in {results['sync_seconds']:.1f}s", file=sys.stderr)
        results["rss_after_sync"] = rss_bytes(dash.proc.pid)
        session = Session(dash)
        _, overview = session.get("/api/overview")
        results["cache_total"] = overview["counts"]["total"]

        latency: dict[str, dict[str, float]] = {}
        for name, path in API_CALLS.items():
            times = [session.get(path)[0] for _ in range(50)]
            latency[name] = {"p50": percentile(times, 50), "p95": percentile(times, 95)}
        results["api"] = latency

        print("[bench] page loads in Chromium", file=sys.stderr)
        loads = page_loads(dash, args.rounds)
        results["pages"] = {
            n: {"p50": percentile(t, 50), "p95": percentile(t, 95), "n": len(t)}
            for n, t in loads.items()
        }
        results["rss_after_pages"] = rss_bytes(dash.proc.pid)

        _, info = session.get("/api/info")
        before = dict(info["watch"]["requests"])
        print(f"[bench] {args.changes} status changes with the jobs page open", file=sys.stderr)
        shown = asyncio.run(churn_and_watch(kubeconfig, dash, args.changes))
        results["live"] = {
            "changes": args.changes, "measured": len(shown),
            "p50": percentile(shown, 50), "p95": percentile(shown, 95),
            "max": max(shown) if shown else None,
        }  # fmt: skip
        _, info = session.get("/api/info")
        results["requests_before_churn"] = before
        results["requests_after_churn"] = dict(info["watch"]["requests"])
        results["watch_events"] = info["watch"]["events"]
        results["rss_after_churn"] = rss_bytes(dash.proc.pid)
    finally:
        dash.stop()
    if mark is not None:
        by_verb: dict[str, int] = {}
        for event in audit.since(mark, None, NAMESPACE):
            if event.get("userAgent", "").startswith(USER_AGENT.split("/")[0]):
                by_verb[event["verb"]] = by_verb.get(event["verb"], 0) + 1
        results["audit_requests"] = by_verb
    if not args.keep:
        kubectl = str(Path(sys.executable).parent / "kubectl")
        subprocess.run(
            # Waited for: an operator started on this cluster meanwhile would run 10,000 jobs.
            [kubectl, "delete", "namespace", NAMESPACE, "--timeout=600s"],
            check=False, capture_output=True,
        )  # fmt: skip
    write(results)
    return 0


def write(results: dict[str, Any]) -> None:
    (REPO / "bench" / "RESULTS-dashboard.json").write_text(json.dumps(results, indent=2) + "\n")
    mb = 1024 * 1024

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value * 1000:.0f} ms"

    live = results["live"]
    rss = "{:.0f} / {:.0f} / {:.0f} MiB".format(
        results["rss_after_sync"] / mb,
        results["rss_after_pages"] / mb,
        results["rss_after_churn"] / mb,
    )
    requests = f"{results['requests_before_churn']} → {results['requests_after_churn']}"
    rows = [
        (f"cache filled (list of {results['cache_total']:,} jobs, from start)",
         f"{results['sync_seconds']:.1f} s"),
        ("server RSS after sync / after page loads / after churn", rss),
        (f"live: status write → jobs page shows it (p50 / p95 / max, {live['measured']} changes)",
         f"{ms(live['p50'])} / {ms(live['p95'])} / {ms(live['max'])}"),
        ("dashboard's requests, its own count (before → after churn)", requests),
        ("dashboard's requests in the audit log (whole run, by verb)",
         str(results.get("audit_requests", "no audit log"))),
    ]  # fmt: skip
    lines = [
        "# Dashboard benchmark (`python -m bench.dashboard`)",
        "",
        f"{results['jobs']:,} BackgroundJobs in one namespace; commit {results['commit']},"
        f" {results['date']}, this machine (2 cores, shared: load average"
        f" {results['load_average'][1]:.1f} over the 5 minutes before). Statuses written by the"
        " bench (no operator).",
        "",
        "| what | figure |",
        "|---|---|",
        *(f"| {what} | {figure} |" for what, figure in rows),
        "",
        "| page (headless Chromium: link → data drawn; full load: URL → data drawn) | p50 | p95 |",
        "|---|---|---|",
        *(
            f"| {n} | {ms(v['p50'])} | {ms(v['p95'])} |"
            for n, v in results["pages"].items()
            if v["n"]
        ),
        "",
        "| API call (50 each) | p50 | p95 |",
        "|---|---|---|",
        *(f"| {n} | {ms(v['p50'])} | {ms(v['p95'])} |" for n, v in results["api"].items()),
        "",
    ]
    (REPO / "bench" / "RESULTS-dashboard.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
