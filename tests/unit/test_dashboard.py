"""The chart's Grafana dashboard and PrometheusRule: they parse, and every PromQL expression
names only metrics the operator exports (API.md §5); with promtool (hack/promtool.sh) every
expression also goes through Prometheus' own parser and rule checker."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.unit.test_chart_render import CHART, HELM, find, render

from backgroundjobs.controller import metrics

pytestmark = pytest.mark.unit

Body = dict[str, Any]
DASHBOARD = CHART / "files" / "dashboard.json"

# API.md §5, by Prometheus type.
API_METRICS = {
    "backgroundjobs_jobs_started_total": "counter",
    "backgroundjobs_jobs_finished_total": "counter",
    "backgroundjobs_job_duration_seconds": "histogram",
    "backgroundjobs_start_lateness_seconds": "histogram",
    "backgroundjobs_attempt_lateness_seconds": "histogram",
    "backgroundjobs_jobs": "gauge",
    "backgroundjobs_retries_total": "counter",
    "backgroundjobs_reconcile_errors_total": "counter",
    "backgroundjobs_build_info": "gauge",
    "backgroundjobs_operator_pending": "gauge",
    "backgroundjobs_leader": "gauge",
    "backgroundjobs_recurring_overdue_seconds": "gauge",
    "backgroundjobs_reconcile_duration_seconds": "histogram",
    "backgroundjobs_api_requests_total": "counter",
    "backgroundjobs_queue_pending": "gauge",
    "backgroundjobs_queue_wait_seconds": "histogram",
    "backgroundjobs_recurring_misfires_total": "counter",
    "backgroundjobs_batch_items": "gauge",
}
# Metrics the alerts once read before the operator exported them (issue 20): now exported.
PROPOSED_METRICS = {
    "backgroundjobs_leader": "gauge",  # 1 on the replica that acts, 0 on standbys
    "backgroundjobs_recurring_overdue_seconds": "gauge",  # {queue}: longest overdue run
}


def exported_series() -> set[str]:
    """Every backgroundjobs_ series name the operator's registry (and its gauges fed by a
    control loop) can expose."""
    families = list(metrics.REGISTRY.collect())
    families += list(metrics.phase_gauge(lambda: [("Running", "default")]).collect())
    families += list(metrics.pending_gauge(lambda: {"status": 0}).collect())
    families += list(metrics.overdue_gauge(lambda: {"default": 0.0}).collect())
    families += list(metrics.queue_pending_gauge(lambda: {"default": 0}).collect())
    families += list(metrics.batch_items_gauge(lambda: {("default", "total"): 1}).collect())
    names: set[str] = set()
    for family in families:
        if not family.name.startswith("backgroundjobs_"):
            continue  # the standard process_ and python_ collectors
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}{s}" for s in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


EXPORTED = exported_series()

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_CLAUSE = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w:.$])[A-Za-z_:][\w:]*")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _CLAUSE.sub("", text)
    names = set()
    for m in _IDENT.finditer(text):
        rest = text[m.end() :].lstrip()
        if rest.startswith("(") or m.group().lower() in _KEYWORDS:
            continue  # a function or aggregation, or an operator keyword
        names.add(m.group())
    return names


def dashboard_targets(dashboard: Body) -> Iterator[tuple[str, str]]:
    """(panel title, expression) of every query, nested rows included."""
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                yield inner["title"], target["expr"]


def dashboard_variable_queries(dashboard: Body) -> Iterator[str]:
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", query)
            assert inner, f"variable {var['name']}: {query}"
            yield inner.group(1)


def prometheus_rules() -> list[Body]:
    if HELM is None:
        pytest.skip("helm not built (make cluster-tools)")
    objs = render("--set", "prometheusRule.enabled=true")
    (rule,) = find(objs, "PrometheusRule")
    return rule["spec"]["groups"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def dashboard() -> Body:
    return json.loads(DASHBOARD.read_text())  # type: ignore[no-any-return]


# ------------------------------------------------------------------ the checker itself
@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (queue) (rate(foo_total{a="b"}[5m]))', {"foo_total"}),
        ("histogram_quantile(0.99, sum by (le) (rate(x_bucket[$__rate_interval])))", {"x_bucket"}),
        ('up{job="x"} == 1 and on (job) bar > 0.5', {"up", "bar"}),
        ('absent(b{le="+Inf", q=~"a|b"})', {"b"}),
        ("60 * sum without (pod) (c offset 5m)", {"c"}),
    ],
)
def test_metric_names_finds_selectors_only(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_api_metrics_are_what_the_registry_exports() -> None:
    expected = set()
    for name, kind in API_METRICS.items():
        if kind == "histogram":
            expected.update(f"{name}{s}" for s in ("_bucket", "_sum", "_count"))
        else:
            expected.add(name)
    assert expected == EXPORTED


# ------------------------------------------------------------------ the dashboard
def test_dashboard_parses_and_has_the_promised_panels(dashboard: Body) -> None:
    assert dashboard["uid"] == "backgroundjobs"
    titles = {p["title"] for p in dashboard["panels"]}
    for wanted in (
        "Jobs by phase",
        "Succeeded and failed per minute",
        "Retries per minute",
        "Run duration (succeeded)",
        "Start lateness",
        "Per queue",
        "Queues",
    ):
        assert wanted in titles
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "namespace", "job", "queue"}


def test_dashboard_shows_one_operator_at_a_time(dashboard: Body) -> None:
    """Operators of different namespaces (or scrape jobs) are never merged: one namespace and
    one job are chosen, and every selector of every query is pinned to both."""
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    for name in ("namespace", "job"):
        assert variables[name]["multi"] is False, name
        assert variables[name]["includeAll"] is False, name
    assert "$namespace" in variables["job"]["query"]["query"]
    assert "$namespace" in variables["queue"]["query"]["query"]
    assert "$job" in variables["queue"]["query"]["query"]
    for title, expr in dashboard_targets(dashboard):
        names = re.findall(r"backgroundjobs_\w+", expr)
        selectors = re.findall(r"backgroundjobs_\w+\{([^}]*)\}", expr)
        assert len(selectors) == len(names), f"{title}: a metric without selector: {expr}"
        for selector in selectors:
            assert 'namespace="$namespace"' in selector, f"{title}: {expr}"
            assert 'job="$job"' in selector, f"{title}: {expr}"


def test_dashboard_queries_use_only_exported_metrics(dashboard: Body) -> None:
    used: set[str] = set()
    for title, expr in dashboard_targets(dashboard):
        names = metric_names(expr)
        assert names, f"{title}: no metric in {expr}"
        assert names <= EXPORTED, f"{title}: {sorted(names - EXPORTED)} not exported: {expr}"
        used |= names
    for query in dashboard_variable_queries(dashboard):
        assert metric_names(query) <= EXPORTED, query
    bases = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
    assert bases == set(API_METRICS), f"unused: {sorted(set(API_METRICS) - bases)}"


def test_dashboard_dedupes_the_phase_gauge_of_replicas(dashboard: Body) -> None:
    """Every replica exports backgroundjobs_jobs from its own cache: sum of max, not sum."""
    for title, expr in dashboard_targets(dashboard):
        if "backgroundjobs_jobs{" in expr:
            assert "max by (phase, queue) (backgroundjobs_jobs{" in expr, title


# ------------------------------------------------------------------ the alerts
def test_rule_expressions_use_only_exported_metrics() -> None:
    for group in prometheus_rules():
        for rule in group["rules"]:
            names = metric_names(rule["expr"])
            assert names, rule["alert"]
            assert names <= EXPORTED, f"{rule['alert']}: {sorted(names - EXPORTED)}"


def test_proposed_metrics_are_exported() -> None:
    assert set(PROPOSED_METRICS) <= EXPORTED


def test_alerts_never_select_a_scrape_job() -> None:
    """Scraped by any job (ServiceMonitor, PodMonitor, annotations, static), the alerts work:
    no expression names the job label, and none names the release's Service."""
    for group in prometheus_rules():
        for rule in group["rules"]:
            assert not re.search(r"\bjob\b", rule["expr"]), rule["alert"]
            assert "-metrics" not in rule["expr"], rule["alert"]


# ------------------------------------------------------------------ promtool
def promtool_binary() -> str | None:
    cache = Path(os.environ.get("BACKGROUNDJOBS_CACHE", Path.home() / ".cache/backgroundjobs"))
    cached = cache / "bin" / "promtool"
    return str(cached) if cached.is_file() else shutil.which("promtool")


PROMTOOL = promtool_binary()
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not built (bash hack/promtool.sh)"
)


def promtool_check_rules(groups: list[Body], tmp_path: Path) -> None:
    assert PROMTOOL is not None
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    out = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr


@needs_promtool
def test_prometheus_rule_passes_promtool(tmp_path: Path) -> None:
    promtool_check_rules(prometheus_rules(), tmp_path)


@needs_promtool
def test_dashboard_queries_parse_with_promtool(dashboard: Body, tmp_path: Path) -> None:
    """Each query (Grafana variables substituted) as a recording rule: promtool parses it."""
    grafana = {"$__rate_interval": "5m", "$namespace": "bgj", "$job": "bgj", "$queue": ".*"}
    rules = []
    for i, (_, expr) in enumerate(dashboard_targets(dashboard)):
        for var, value in grafana.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    promtool_check_rules([{"name": "dashboard", "rules": rules}], tmp_path)
