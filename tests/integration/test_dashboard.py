"""The web dashboard in a real browser (headless Chromium) against the local cluster, with the
operator running: the overview's counts are the API server's, a finishing job shows up
without a reload, trigger and requeue do what they say, a user without `patch` is shown the
RBAC refusal, and the job page shows the attempts and the log stream."""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from selenium import webdriver
from selenium.webdriver.common.by import By
from tests.integration.bgj import FAIL_EXIT, MESSAGE, RUN_FOR, Jobs, manifest, wait_for
from tests.integration.browser import (
    DashboardProcess,
    find,
    missing_browser,
    navigate,
    new_driver,
    poll,
    texts,
)
from tests.integration.queue_helpers import Queues
from tests.integration.test_batches import FAIL_INDEXES
from tests.integration.test_progress import progress_record

from backgroundjobs.api import constants as c
from backgroundjobs.api.constants import PHASES
from backgroundjobs.dashboard._kube import Kube, load_api_client
from backgroundjobs.dashboard._queues import QueueStore
from backgroundjobs.dashboard._watcher import Watcher

pytestmark = pytest.mark.integration

Body = dict[str, Any]
READER_RULES = [
    {"apiGroups": [c.GROUP], "resources": [c.PLURAL], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
]


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    why = missing_browser()
    if why:
        pytest.fail(why)
    driver = new_driver(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def dashboard(
    kubeconfig: str, crd: dict, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DashboardProcess]:
    """`bgjobs dashboard -A` with the admin kubeconfig, for the whole session."""
    proc = DashboardProcess(kubeconfig, tmp_path_factory.mktemp("dashboard") / "log", "-A")
    yield proc
    proc.stop()


def open_page(driver: webdriver.Chrome, dash: DashboardProcess, path: str) -> None:
    """Open ``path`` of the dashboard (its token URL first: that sets the session cookie)."""
    if not driver.current_url.startswith(dash.base):
        navigate(driver, dash.url)
    navigate(driver, dash.base + path)
    poll("the page to start", lambda: find(driver, "#live.on"))


def click_action(driver: webdriver.Chrome, scope_css: str, action: str) -> None:
    """Click the action's button, then confirm. The page re-renders the job's head on each
    change it is sent (a status write right after the previous action), so a button found
    may be replaced before the click reaches it (StaleElementReferenceException, seen in
    CI): ``poll`` tries the click again on the button that is there now."""

    def click(css: str) -> bool:
        button = find(driver, css)
        if button is None:
            return False
        button.click()
        return True

    poll(
        f"the {action} button clicked", lambda: click(f'{scope_css} button[data-action="{action}"]')
    )
    poll("the confirmation clicked", lambda: click("dialog#confirm[open] button[data-confirm]"))


def phase_counts(driver: webdriver.Chrome) -> dict[str, int]:
    out = {}
    for card in driver.find_elements(By.CSS_SELECTOR, "[data-phase-count]"):
        number = card.find_element(By.CSS_SELECTOR, ".n").text.replace(",", "")
        out[str(card.get_attribute("data-phase-count"))] = int(number)
    return out


def api_counts(jobs: Jobs) -> dict[str, int]:
    items = jobs.custom.list_namespaced_custom_object(c.GROUP, c.VERSION, jobs.ns, c.PLURAL)[
        "items"
    ]
    phases = Counter((o.get("status") or {}).get("phase") or "Pending" for o in items)
    return {"total": len(items), **{p: phases.get(p, 0) for p in PHASES}}


# ------------------------------------------------------------------ the command


def test_kubectl_bgjobs_dashboard_opens_the_browser_on_its_namespace(
    bgjobs: Jobs, namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    """`kubectl bgjobs dashboard -n NS` (kubectl finds the plugin on PATH) opens the user's
    browser ($BROWSER here: a script that writes down the URL it is given) on its token URL,
    which lets in that browser's session, scoped to the namespace."""
    bgjobs.create(manifest("seen", delay="1h"))
    opened = tmp_path / "opened"
    browser_script = tmp_path / "browser"
    browser_script.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    browser_script.chmod(0o755)
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "KUBECONFIG": kubeconfig,
        "BROWSER": str(browser_script),
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
    }
    proc = subprocess.Popen(
        ["kubectl", "bgjobs", "dashboard", "-n", namespace],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = wait_for("the browser opened", lambda: opened.exists() and opened.read_text().strip())
        assert "?token=" in url and url.startswith("http://127.0.0.1:")
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        opener.open(url, timeout=30).read()  # the token becomes the session's cookie
        base = url.split("?", 1)[0].rstrip("/")
        info = json.load(opener.open(f"{base}/api/info", timeout=30))
        assert info["namespace"] == namespace
        jobs = wait_for(
            "the job in the dashboard's cache",
            lambda: json.load(opener.open(f"{base}/api/jobs", timeout=30))["items"],
        )
        assert [j["name"] for j in jobs] == ["seen"]
    finally:
        proc.terminate()
        proc.wait(30)


# ------------------------------------------------------------------ overview


def test_overview_counts_equal_what_the_api_server_lists(
    bgjobs: Jobs, namespace: str, browser: webdriver.Chrome, dashboard: DashboardProcess
) -> None:
    bgjobs.create(manifest("ok-1"))
    bgjobs.create(manifest("ok-2"))
    bgjobs.create(manifest("broken", pod_annotations={FAIL_EXIT: "1"}, retries=0))
    bgjobs.create(manifest("later", delay="1h"))
    bgjobs.create(manifest("yearly", schedule="0 0 1 1 *"))
    bgjobs.create(manifest("orphan", after={"name": "nobody"}))
    for name, phase in [
        ("ok-1", "Succeeded"), ("ok-2", "Succeeded"), ("broken", "Failed"),
        ("later", "Scheduled"), ("yearly", "Scheduled"), ("orphan", "Waiting"),
    ]:  # fmt: skip
        bgjobs.wait_phase(name, phase)
    expected = api_counts(bgjobs)
    assert expected["total"] == 6 and expected["Succeeded"] == 2 and expected["Waiting"] == 1

    open_page(browser, dashboard, f"/?namespace={namespace}")
    poll(
        "the overview's counts to equal the API server's", lambda: phase_counts(browser) == expected
    )
    queue_row = browser.find_element(By.CSS_SELECTOR, 'tr[data-queue="default"]')
    assert queue_row.find_elements(By.CSS_SELECTOR, "td")[-1].text == "6"
    # The live graph counted the three runs that finished (two succeeded, one failed).
    assert browser.find_element(By.CSS_SELECTOR, "#live-chart [data-total=succeeded]").text == "2"
    assert browser.find_element(By.CSS_SELECTOR, "#live-chart [data-total=failed]").text == "1"


def test_a_finishing_job_appears_without_a_reload(
    bgjobs: Jobs, namespace: str, browser: webdriver.Chrome, dashboard: DashboardProcess
) -> None:
    open_page(browser, dashboard, f"/jobs?namespace={namespace}&phase=Succeeded")
    poll("the empty list", lambda: "No job matches" in browser.find_element(By.ID, "table").text)
    browser.execute_script("window.__sameDocument = 'yes'")
    bgjobs.create(manifest("slow-echo", pod_annotations={RUN_FOR: "3s"}))
    bgjobs.wait_phase("slow-echo", "Succeeded")
    seen_by_api = time.monotonic()
    row = poll(
        "the job in the Succeeded list",
        lambda: find(browser, f'tr[data-job="{namespace}/slow-echo"]'),
        timeout=30,
    )
    shown = time.monotonic() - seen_by_api
    assert browser.execute_script("return window.__sameDocument") == "yes", "the page reloaded"
    assert row.get_attribute("data-job-phase") == "Succeeded"
    assert shown <= 2.0, f"the page showed the finished job {shown:.2f}s after the API server"
    tab = browser.find_element(By.CSS_SELECTOR, '[data-tab="Succeeded"] .count')
    assert tab.text == "1"


# ------------------------------------------------------------------ actions


def test_trigger_on_a_recurring_job_creates_its_job(
    bgjobs: Jobs, namespace: str, browser: webdriver.Chrome, dashboard: DashboardProcess
) -> None:
    bgjobs.create(manifest("new-year", schedule="0 0 1 1 *", timeZone="Europe/Paris"))
    bgjobs.wait_phase("new-year", "Scheduled")
    assert bgjobs.jobs("new-year") == []
    open_page(browser, dashboard, f"/recurring?namespace={namespace}")
    row_css = f'tr[data-job="{namespace}/new-year"]'
    row = poll("the recurring job's row", lambda: find(browser, row_css))
    assert "at 00:00 on the 1st of the month in January" in row.text
    assert "Europe/Paris" in row.text
    click_action(browser, row_css, "trigger")
    created = wait_for("the triggered Job", lambda: bgjobs.jobs("new-year"), timeout=60)
    assert len(created) == 1
    poll("the success message", lambda: "Trigger: new-year" in " ".join(texts(browser, ".toast")))


def test_requeue_on_a_failed_job_runs_it_again(
    bgjobs: Jobs, namespace: str, browser: webdriver.Chrome, dashboard: DashboardProcess
) -> None:
    bgjobs.create(manifest("flaky", pod_annotations={FAIL_EXIT: "1"}, retries=0))
    bgjobs.wait_phase("flaky", "Failed")
    open_page(browser, dashboard, f"/jobs/{namespace}/flaky")
    poll("the Failed badge", lambda: find(browser, 'h1 .badge[data-phase="Failed"]'))
    click_action(browser, ".jobhead", "requeue")
    wait_for("a second run", lambda: bgjobs.status("flaky").get("runs") == 2, timeout=60)
    assert len(bgjobs.jobs("flaky")) == 2
    poll("run 2 on the page", lambda: find(browser, '#runs .run[data-run="2"]'), timeout=30)


def test_requeue_failed_on_a_batch_reruns_only_its_failed_items(
    bgjobs: Jobs, namespace: str, browser: webdriver.Chrome, dashboard: DashboardProcess
) -> None:
    items = [{"args": [f"user-{i}"]} for i in range(3)]
    bgjobs.create(manifest("partly", pod_annotations={FAIL_INDEXES: "2"}, items=items, retries=0))
    bgjobs.wait_phase("partly", "Failed", timeout=120)
    open_page(browser, dashboard, f"/jobs/{namespace}/partly")
    poll("the Failed badge", lambda: find(browser, 'h1 .badge[data-phase="Failed"]'))
    click_action(browser, ".jobhead", "requeue-failed")
    wait_for("a second run", lambda: bgjobs.status("partly").get("runs") == 2, timeout=60)
    rerun = bgjobs.status("partly")["batch"].get("rerun")
    assert rerun == {"fromRun": 1, "items": 1, "indexes": "2"}


def test_suspend_resume_cancel_and_delete_from_the_job_page(
    bgjobs: Jobs, namespace: str, browser: webdriver.Chrome, dashboard: DashboardProcess
) -> None:
    """The other actions, each after its confirmation, do what they say on the object, and
    the page follows each change without a reload."""
    bgjobs.create(manifest("newsletter", delay="1h"))
    bgjobs.wait_phase("newsletter", "Scheduled")
    open_page(browser, dashboard, f"/jobs/{namespace}/newsletter")

    def badge(phase: str) -> Any:
        return poll(f"the {phase} badge", lambda: find(browser, f'h1 .badge[data-phase="{phase}"]'))

    badge("Scheduled")
    click_action(browser, ".jobhead", "suspend")
    bgjobs.wait_phase("newsletter", "Suspended")
    assert (bgjobs.get("newsletter") or {})["spec"]["suspend"] is True
    badge("Suspended")
    click_action(browser, ".jobhead", "resume")
    bgjobs.wait_phase("newsletter", "Scheduled")
    assert (bgjobs.get("newsletter") or {})["spec"]["suspend"] is False
    badge("Scheduled")
    click_action(browser, ".jobhead", "cancel")
    bgjobs.wait_phase("newsletter", "Cancelled")
    badge("Cancelled")
    click_action(browser, ".jobhead", "delete")
    wait_for("the job deleted", lambda: bgjobs.get("newsletter") is None, timeout=60)


def _reader_kubeconfig(
    admin_kubeconfig: str, core: client.CoreV1Api, rbac: client.RbacAuthorizationV1Api,
    namespace: str, path: Path,
) -> str:  # fmt: skip
    """A kubeconfig whose only credential is a token of a ServiceAccount that may read jobs,
    their Jobs, pods, logs and Events in ``namespace``, and change nothing."""
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "reader"}, "rules": READER_RULES})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    token = core.create_namespaced_service_account_token(
        "reader", namespace, {"spec": {"audiences": [], "expirationSeconds": 3600}}
    ).status.token
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    context = next(x["context"] for x in admin["contexts"] if x["name"] == admin["current-context"])
    cluster = dict(next(x["cluster"] for x in admin["clusters"] if x["name"] == context["cluster"]))
    ca = cluster.get("certificate-authority")
    if ca and not Path(ca).is_absolute():
        cluster["certificate-authority"] = str((Path(admin_kubeconfig).parent / ca).resolve())
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "reader", "user": {"token": token}}],
                "contexts": [
                    {
                        "name": "r",
                        "context": {"cluster": "c", "user": "reader", "namespace": namespace},
                    }
                ],
                "current-context": "r",
            }
        )
    )
    return str(path)


def test_a_user_without_patch_sees_the_rbac_refusal(
    bgjobs: Jobs,
    namespace: str,
    kubeconfig: str,
    core_v1: client.CoreV1Api,
    api_client: client.ApiClient,
    browser: webdriver.Chrome,
    tmp_path: Path,
) -> None:
    rbac = client.RbacAuthorizationV1Api(api_client)
    reader = _reader_kubeconfig(kubeconfig, core_v1, rbac, namespace, tmp_path / "reader.yaml")
    bgjobs.create(manifest("precious"))
    bgjobs.wait_phase("precious", "Succeeded")
    own = DashboardProcess(reader, tmp_path / "dashboard.log")  # the context's namespace
    try:
        open_page(browser, own, f"/jobs/{namespace}/precious")
        click_action(browser, ".jobhead", "requeue")
        error = poll("the refusal", lambda: find(browser, ".toast[data-error]"), timeout=30)
        assert "Refused by Kubernetes RBAC" in error.text
        assert "cannot patch" in error.text
        assert f"system:serviceaccount:{namespace}:reader" in error.text
    finally:
        own.stop()
    assert bgjobs.status("precious").get("runs") == 1


def test_impersonated_actions_follow_the_proxy_s_user_s_rbac(
    bgjobs: Jobs,
    namespace: str,
    kubeconfig: str,
    core_v1: client.CoreV1Api,
    api_client: client.ApiClient,
    tmp_path: Path,
) -> None:
    """Behind an authenticating proxy (--auth proxy --impersonate), each action is the named
    user's own request: a user who may only read is refused, one who may edit succeeds."""
    rbac = client.RbacAuthorizationV1Api(api_client)
    _reader_kubeconfig(kubeconfig, core_v1, rbac, namespace, tmp_path / "unused.yaml")
    # The editors are a group: the proxy's second group must reach the API server too.
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "editor"},
            "rules": [{"apiGroups": [c.GROUP], "resources": [c.PLURAL], "verbs": ["patch"]}],
        },
    )
    group = "rbac.authorization.k8s.io"
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "editor"},
            "roleRef": {"apiGroup": group, "kind": "Role", "name": "editor"},
            "subjects": [{"kind": "Group", "name": "team-b", "apiGroup": group}],
        },
    )
    bgjobs.create(manifest("shared"))
    bgjobs.wait_phase("shared", "Succeeded")
    own = DashboardProcess(
        kubeconfig, tmp_path / "dashboard.log", "-n", namespace, "--auth", "proxy", "--impersonate"
    )

    def requeue_as(user: str, groups: str = "") -> tuple[int, Body]:
        request = urllib.request.Request(
            f"{own.base}/api/jobs/{namespace}/shared/requeue",
            method="POST",
            headers={
                "X-Forwarded-User": user,
                "X-Forwarded-Groups": groups,
                "X-Requested-With": "bgjobs-dashboard",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    try:
        status, body = requeue_as(f"system:serviceaccount:{namespace}:reader")
        assert status == 403, body
        assert body["rbac"] is True and "cannot patch" in body["message"]
        assert bgjobs.status("shared").get("runs") == 1
        status, body = requeue_as("ed@example.com", "team-a")
        assert status == 403, body
        status, body = requeue_as("ed@example.com", "team-a, team-b")
        assert status == 200, body
        wait_for("the requeued run", lambda: bgjobs.status("shared").get("runs") == 2)
    finally:
        own.stop()


# ------------------------------------------------------------------ the job page


def test_job_page_shows_attempts_timeline_and_chain(
    bgjobs: Jobs, namespace: str, browser: webdriver.Chrome, dashboard: DashboardProcess
) -> None:
    failing = {FAIL_EXIT: "1", MESSAGE: '{"error": "SMTP down", "type": "ConnectionError"}'}
    bgjobs.create(manifest("retried", pod_annotations=failing, retries=2, args=["x"]))
    bgjobs.create(manifest("after-retried", after={"name": "retried", "when": "Failed"}))
    bgjobs.wait_phase("retried", "Failed")
    wait_for("three attempts recorded", lambda: bgjobs.status("retried").get("attemptsTotal") == 3)
    bgjobs.wait_phase("after-retried", "Running", "Succeeded")
    open_page(browser, dashboard, f"/jobs/{namespace}/retried")

    # The operator's record (status.attempts): one row per attempt, its exit code and error.
    rows = poll("three attempts", lambda: len(attempt_rows(browser)) == 3 and attempt_rows(browser))
    assert [r["attempt"] for r in rows] == ["1", "2", "3"]
    for row in rows:
        assert row["phase"] == "Failed" and row["error"] == "ConnectionError: SMTP down"
        assert "retried-1" in row["text"] and "Error" in row["text"]
    assert "3 in run 1" in browser.find_element(By.CSS_SELECTOR, "[data-attempts-total]").text
    # The pods of the run, as the API server still has them.
    assert len(texts(browser, '#runs .run[data-run="1"] tr[data-pod]')) == 3
    assert find(browser, '[data-child="after-retried"]') is not None
    timeline = browser.find_element(By.CSS_SELECTOR, "ol.timeline").text
    assert "Failed=True" in timeline and "BackoffLimitExceeded" in timeline
    assert '"x"' in browser.find_element(By.CSS_SELECTOR, ".panel pre.json").text
    # The child's page links back to its parent.
    browser.find_element(By.CSS_SELECTOR, '[data-child="after-retried"] a').click()
    poll(
        "the child's page",
        lambda: (
            find(browser, "[data-job-name]")
            and find(browser, "[data-job-name]").text == "after-retried"
        ),
    )
    assert find(browser, f'.chain a[href="/jobs/{namespace}/retried"]') is not None


def attempt_rows(driver: webdriver.Chrome) -> list[dict[str, str]]:
    """The job page's attempts table, read in one script (the page redraws on each change,
    so elements found one call earlier may be gone)."""
    rows: list[dict[str, str]] = driver.execute_script(
        """return [...document.querySelectorAll('#attempts tr[data-attempt]')].map((tr) => ({
          attempt: tr.dataset.attempt, text: tr.innerText,
          phase: tr.querySelector('.badge')?.dataset.phase || '',
          error: tr.querySelector('[data-error]')?.innerText || '',
        }));"""
    )
    return rows


def test_job_page_names_secret_references_and_never_their_values(
    bgjobs: Jobs, namespace: str, browser: webdriver.Chrome, dashboard: DashboardProcess
) -> None:
    secret_value = f"never-shown-{namespace}"
    bgjobs.core.create_namespaced_secret(
        namespace, {"metadata": {"name": "smtp"}, "stringData": {"password": secret_value}}
    )
    env = [{"name": "SMTP_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "smtp", "key": "password"}}}]  # fmt: skip
    template = {"spec": {"containers": [{"name": "handler", "env": env}]}}
    bgjobs.create(manifest("mailer", delay="1h", podTemplate=template))
    bgjobs.wait_phase("mailer", "Scheduled")
    open_page(browser, dashboard, f"/jobs/{namespace}/mailer")
    poll("the job page", lambda: find(browser, "[data-job-name]"))
    references = poll(
        "the secret reference", lambda: [t for t in texts(browser, ".panel li") if "smtp" in t]
    )
    path = "podTemplate.spec.containers[0].env[0].valueFrom"
    assert references == [f"Secret smtp key password ({path})"]
    assert secret_value not in browser.page_source


def append_pod_log(kubeconfig: str, record: Body) -> Path:
    """Append one JSON line to what every fake pod's handler container logs (hack/cluster.sh:
    kwok's ClusterLogs, a file in the container runtime's log format)."""
    path = Path(kubeconfig).resolve().parent / "logs" / "handler.log"
    if not path.exists():
        pytest.skip(f"no {path}: not the project's local cluster (hack/cluster.sh)")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with path.open("a") as f:
        f.write(f"{stamp} stdout F {json.dumps(record)}\n")
    return path


def test_job_page_follows_the_log_with_its_progress_bar(
    bgjobs: Jobs,
    namespace: str,
    kubeconfig: str,
    browser: webdriver.Chrome,
    dashboard: DashboardProcess,
) -> None:
    """A running job's page follows its handler log: a line written while the page is open
    appears, and a progress record moves the bar. On kwok the log is the file every fake
    pod's handler container shows (no container runs); the stream itself is the real one:
    the API server's pod log endpoint, followed through kwok's kubelet endpoint."""
    bgjobs.create(manifest("long-import", pod_annotations={RUN_FOR: "120s"}))
    bgjobs.wait_phase("long-import", "Running")
    open_page(browser, dashboard, f"/jobs/{namespace}/long-import")
    poll("the log stream", lambda: browser.find_element(By.ID, "log-status").text)
    mark = f"imported rows of {namespace}"
    append_pod_log(
        kubeconfig,
        {"time": "2026-11-29T20:00:00Z", "level": "info", "message": mark,
         "event": "progress", "done": 30, "total": 120},
    )  # fmt: skip

    def outcome() -> Any:
        if "no logs found" in browser.find_element(By.ID, "log-status").text:
            return "no logs"
        lines = browser.find_elements(By.CSS_SELECTOR, "#logs .log-line")
        return next((e for e in lines if mark in e.text), None)

    line = poll("the new log line", outcome, timeout=30)
    if line == "no logs":
        pytest.skip(
            "this cluster gives fake pods no log (created before hack/cluster.sh's ClusterLogs):"
            " hack/cluster.sh down && hack/cluster.sh up"
        )
    assert "INFO" in line.text
    bar = browser.find_element(By.ID, "progress")
    assert bar.is_displayed()
    assert bar.get_attribute("data-percent") == "25"
    assert "30 / 120" in bar.text
    assert browser.find_element(By.ID, "log-status").text == "following…"


def next_running_pod(bgjobs: Jobs, job: str, ended: list[str]) -> str:
    """The Job's running pod that is not one of ``ended``, once there is one."""

    def running() -> str | None:
        for p in bgjobs.pods(job):
            if p.status.phase == "Running" and p.metadata.name not in ended:
                return str(p.metadata.name)
        return None

    return wait_for(f"the next running pod of {job}", running, timeout=180)


def end_pod(bgjobs: Jobs, pod: str, exit_code: str, message: str) -> None:
    """Make a fake pod's handler end (kwok's stage, after RUN_FOR) with this exit code and
    termination message."""
    annotations = {FAIL_EXIT: exit_code, MESSAGE: message, RUN_FOR: "1s"}
    bgjobs.core.patch_namespaced_pod(pod, bgjobs.ns, {"metadata": {"annotations": annotations}})


def test_a_retried_job_s_page_shows_its_attempts_and_a_live_log_line(
    bgjobs: Jobs,
    namespace: str,
    kubeconfig: str,
    browser: webdriver.Chrome,
    dashboard: DashboardProcess,
) -> None:
    """Issue 18 item 5 on one job that failed and retried: attempt 1's row with its error
    (the operator's status.attempts), a line the retry logs while the page is open shown
    under the retry's pod, and attempt 2's row once it succeeds, all without a reload."""
    bgjobs.create(manifest("flaky-import", retries=2, pod_annotations={RUN_FOR: "1h"}))
    first = next_running_pod(bgjobs, "flaky-import-1", [])
    end_pod(bgjobs, first, "1", '{"error": "SMTP down", "type": "ConnectionError"}')
    wait_for(
        "attempt 1 recorded",
        lambda: len(bgjobs.status("flaky-import").get("attempts") or []) == 1,
        timeout=120,
    )
    second = next_running_pod(bgjobs, "flaky-import-1", [first])
    # Every fake pod shows the same log file, so a line is "live" only once the page follows
    # the retry's pod: a first line, there before the page opens, shows when it does.
    before = f"import started in {namespace}"
    append_pod_log(kubeconfig, {"time": "2026-11-30T10:59:00Z", "level": "info", "message": before})
    open_page(browser, dashboard, f"/jobs/{namespace}/flaky-import")

    (row,) = poll("attempt 1's row", lambda: attempt_rows(browser))
    assert row["attempt"] == "1" and first in row["text"] and "Error" in row["text"]
    assert row["phase"] == "Failed" and row["error"] == "ConnectionError: SMTP down"

    def lines_of(pod: str) -> list[str]:
        return texts(browser, f'#logs .log-line[data-pod="{pod}"]')

    def following() -> Any:
        if "no logs found" in browser.find_element(By.ID, "log-status").text:
            return "no logs"
        return any(before in t for t in lines_of(second))

    if poll("the page following the retry's pod", following, timeout=60) == "no logs":
        pytest.skip("this cluster gives fake pods no log: hack/cluster.sh down && up")
    mark = f"import retried in {namespace}"
    append_pod_log(
        kubeconfig, {"time": "2026-11-30T11:00:00Z", "level": "warning", "message": mark}
    )

    line = poll(
        "the retry's new log line",
        lambda: next((t for t in lines_of(second) if mark in t), None),
        timeout=30,
    )
    assert "WARNING" in line

    end_pod(bgjobs, second, "0", '{"imported": 120}')
    rows = poll(
        "attempt 2's row",
        lambda: len(attempt_rows(browser)) == 2 and attempt_rows(browser),
        timeout=90,
    )
    assert rows[1]["attempt"] == "2" and second in rows[1]["text"]
    assert rows[1]["phase"] == "Succeeded" and rows[1]["error"] == ""
    assert "2 in run 1" in browser.find_element(By.CSS_SELECTOR, "[data-attempts-total]").text


# ------------------------------------------------------------------ progress, queues, batches


def test_a_running_job_s_progress_shows_in_the_list_without_a_reload(
    bgjobs: Jobs,
    namespace: str,
    kubeconfig: str,
    browser: webdriver.Chrome,
    dashboard: DashboardProcess,
) -> None:
    """The operator copies the handler's progress record into status.progress; the jobs list
    shows it from its watch (no log read per row) and moves when it changes."""
    bgjobs.create(manifest("long-export", pod_annotations={RUN_FOR: "120s"}))
    bgjobs.wait_phase("long-export", "Running")
    open_page(browser, dashboard, f"/jobs?namespace={namespace}&phase=Running")
    row_css = f'tr[data-job="{namespace}/long-export"]'
    row = poll("the running job's row", lambda: find(browser, row_css))
    assert find(browser, f"{row_css} [data-progress]") is None  # nothing reported yet
    browser.execute_script("window.__sameDocument = 'yes'")
    append_pod_log(kubeconfig, progress_record("long-export", namespace, 3, 4, "rows exported"))
    wait_for(  # the operator reads logs every 5 s (BACKGROUNDJOBS_PROGRESS_INTERVAL)
        "status.progress", lambda: bgjobs.status("long-export").get("progress"), 60
    )
    bar = poll("the progress bar in the list", lambda: find(browser, f"{row_css} [data-progress]"))
    assert bar.get_attribute("data-progress") == "75"
    row = browser.find_element(By.CSS_SELECTOR, row_css)
    assert "3/4 (75%)" in row.text and "rows exported" in row.text
    append_pod_log(kubeconfig, progress_record("long-export", namespace, 4, 4, "all rows"))
    poll(
        "the newer progress",
        lambda: (
            browser.find_element(By.CSS_SELECTOR, f"{row_css} [data-progress]").get_attribute(
                "data-progress"
            )
            == "100"
        ),
    )
    assert browser.execute_script("return window.__sameDocument") == "yes", "the page reloaded"


def test_a_job_paused_until_a_time_shows_that_time(
    bgjobs: Jobs, namespace: str, browser: webdriver.Chrome, dashboard: DashboardProcess
) -> None:
    until = "2031-01-01T00:00:00Z"
    bgjobs.create(manifest("held", delay="1m", suspend=True, suspendUntil=until))
    bgjobs.wait_phase("held", "Suspended")
    open_page(browser, dashboard, f"/jobs?namespace={namespace}&phase=Suspended")
    cell = poll(
        "the resume time in the list",
        lambda: find(browser, f'tr[data-job="{namespace}/held"] time[datetime="{until}"]'),
    )
    assert cell.text.startswith("in ")
    open_page(browser, dashboard, f"/jobs/{namespace}/held")
    fact = poll("the job page's pause", lambda: find(browser, "[data-suspended]"))
    assert until in fact.text and "until" in fact.text

    # Once the time passed the operator resumes the job (spec.suspend stays true): the page
    # says it resumed, and no longer shows it as paused.
    soon = datetime.fromtimestamp(time.time() + 8, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    bgjobs.create(manifest("brief-hold", delay="1h", suspend=True, suspendUntil=soon))
    bgjobs.wait_phase("brief-hold", "Scheduled", timeout=90)
    open_page(browser, dashboard, f"/jobs/{namespace}/brief-hold")
    fact = poll("the job page's ended pause", lambda: find(browser, "[data-suspended]"))
    assert "resumed at" in fact.text and soon in fact.text


def test_queues_page_lists_a_queue_with_its_pending_jobs_in_order(
    bgjobs: Jobs,
    namespace: str,
    api_client: client.ApiClient,
    browser: webdriver.Chrome,
    dashboard: DashboardProcess,
) -> None:
    queues = Queues(api_client, namespace)
    queues.create("narrow", maxConcurrency=2, priority=7, paused=True)
    names = ["q-1", "q-2", "q-3"]
    for name in names:
        bgjobs.create(manifest(name, queue="narrow"))
    for name in names:
        bgjobs.wait_phase(name, "Queued")
    wait_for(
        "the queue's status", lambda: (queues.get("narrow").get("status") or {}).get("pending") == 3
    )
    open_page(browser, dashboard, f"/queues?namespace={namespace}")
    row_css = f'tr[data-queue-row="{namespace}/narrow"]'
    poll(
        "the queue's pending count",
        lambda: browser.find_element(By.CSS_SELECTOR, f"{row_css} [data-pending]").text == "3",
    )
    row = browser.find_element(By.CSS_SELECTOR, row_css)
    assert row.find_element(By.CSS_SELECTOR, "[data-queued]").text == "3"
    assert row.find_element(By.CSS_SELECTOR, "[data-paused]").text == "Paused"
    assert "max 2 at once" in row.text

    row.find_element(By.CSS_SELECTOR, "td a").click()
    poll("the queue's page", lambda: find(browser, "[data-queue-name]"))
    waiting = poll("the waiting jobs", lambda: len(texts(browser, "tr[data-waiting]")) == 3)
    assert waiting
    rows = browser.find_elements(By.CSS_SELECTOR, "tr[data-waiting]")
    assert [r.get_attribute("data-waiting") for r in rows] == names  # FIFO by creation
    assert [r.text.split()[0] for r in rows] == ["#1", "#2", "#3"]
    assert all("QueuePaused" in r.text for r in rows)
    # A waiting job's page says where it stands and links back to its queue.
    rows[1].find_element(By.CSS_SELECTOR, "a").click()
    position = poll("the job's place in line", lambda: find(browser, "[data-queue-position]"))
    assert position.text == "#2 in line"
    browser.find_element(By.CSS_SELECTOR, f'dl.facts a[href="/queues/{namespace}/narrow"]').click()
    poll("the queue's page again", lambda: len(texts(browser, "tr[data-waiting]")) == 3)

    # Resumed: the jobs leave the queue, and the page follows without a reload.
    queues.patch("narrow", {"paused": False})
    poll("the queue to drain", lambda: not find(browser, "tr[data-waiting]"), timeout=90)
    assert find(browser, "[data-paused]") is None


def test_batches_page_lists_a_batch_with_its_items_by_state(
    bgjobs: Jobs, namespace: str, browser: webdriver.Chrome, dashboard: DashboardProcess
) -> None:
    items = [{"args": [f"user-{i}"]} for i in range(4)]
    pod = {FAIL_INDEXES: "1"}
    bgjobs.create(manifest("mailing", pod_annotations=pod, items=items, retries=0, maxFailed=1))
    bgjobs.create(manifest("after-mailing", after={"name": "mailing"}))
    bgjobs.create(manifest("not-a-batch"))
    status = bgjobs.wait_phase("mailing", "Succeeded", "Failed", timeout=120)
    assert status["phase"] == "Succeeded", status.get("message")
    open_page(browser, dashboard, f"/batches?namespace={namespace}")
    row_css = f'tr[data-batch="{namespace}/mailing"]'

    def counts() -> dict[str, str]:
        cells = browser.find_elements(By.CSS_SELECTOR, f"{row_css} [data-items]")
        return {
            str(c.get_attribute("data-items")): c.find_element(By.TAG_NAME, "b").text for c in cells
        }

    expected = {"succeeded": "3", "failed": "1", "running": "0", "pending": "0"}
    poll("the batch's item counts", lambda: counts() == expected)
    assert find(browser, f'tr[data-batch="{namespace}/not-a-batch"]') is None
    row = browser.find_element(By.CSS_SELECTOR, row_css)
    assert "1 continuation" in row.text
    assert row.find_element(By.CSS_SELECTOR, "[data-progress]").get_attribute("data-progress") == (
        "100"
    )
    row.find_element(By.CSS_SELECTOR, "td a").click()
    poll("the batch's job page", lambda: find(browser, "[data-batch-items]"))
    assert "failed indexes 1" in browser.find_element(By.CSS_SELECTOR, "dl.facts").text


def test_a_watch_of_a_resource_the_api_server_lacks_reports_it_and_keeps_nothing(
    kubeconfig: str, namespace: str, crd: dict
) -> None:
    """The queue watch on a cluster without the BackgroundJobQueue CRD: the real API server's
    404 becomes a "not installed" state (the queues page says so), the cache is emptied, and
    the watcher keeps running (it looks again later) instead of failing the dashboard. A
    resource no CRD defines stands in for the missing CRD: the shared cluster keeps its own."""

    async def scenario() -> None:
        kube = Kube(await load_api_client(kubeconfig, None, False))
        store = QueueStore()
        store.apply("ADDED", {"metadata": {"name": "stale", "namespace": namespace}}, 0.0)
        watcher = Watcher(kube, store, namespace, plural="nosuchqueues", kind="NoSuchQueue")
        task = asyncio.create_task(watcher.run())
        try:
            for _ in range(600):
                if watcher.state.missing:
                    break
                await asyncio.sleep(0.1)
            assert watcher.state.missing, watcher.state
            assert not task.done(), "the watcher stopped"
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await kube.close()
        assert store.rows == {}
        assert watcher.state.error is not None and "CRD not installed" in watcher.state.error
        assert not watcher.state.synced

    asyncio.run(scenario())
