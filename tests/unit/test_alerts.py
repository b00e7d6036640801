"""The chart's alerts under `promtool test rules`: each fires on series that show its problem
and stays silent on series that do not, whatever the scrape job is called (the series here
come from jobs named anything but the chart's Service, or from a static config without a
namespace label), and operators of different namespaces alert apart.

The alerts are rendered from the chart (prometheusRule.enabled=true) and tested with their
expressions, `for` and labels; promtool compares annotations exactly, so they are left out
here and checked by `promtool check rules` (tests/unit/test_dashboard.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.unit.test_chart_render import HELM, find, render
from tests.unit.test_dashboard import PROMTOOL

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(HELM is None, reason="helm not built (make cluster-tools)"),
    pytest.mark.skipif(PROMTOOL is None, reason="promtool not built (bash hack/promtool.sh)"),
]

Body = dict[str, Any]
ALERTS = {
    "BackgroundJobsFailureRatioHigh",
    "BackgroundJobsStartLatenessHigh",
    "BackgroundJobsReconcileErrors",
    "BackgroundJobsOperatorDown",
    "BackgroundJobsNoLeader",
    "BackgroundJobsRecurringRunMissed",
}


def rule_groups(*values: str) -> list[Body]:
    """The chart's alert groups, without annotations."""
    objs = render("--set", "prometheusRule.enabled=true", *values)
    (rule,) = find(objs, "PrometheusRule")
    groups: list[Body] = rule["spec"]["groups"]
    for group in groups:
        for r in group["rules"]:
            r.pop("annotations", None)
    return groups


def promtool_test(
    tmp_path: Path, series: list[tuple[str, str]], checks: list[Body], *values: str
) -> None:
    """Run `promtool test rules` on ``series`` (selector, values) with ``checks``
    (alert_rule_test entries); fail with promtool's report."""
    assert PROMTOOL is not None
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups(*values)}))
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series],
                "alert_rule_test": checks,
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test, sort_keys=False))
    out = subprocess.run(
        [PROMTOOL, "test", "rules", "test.yaml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def fires(alert: str, at: str, *labels: dict[str, str]) -> Body:
    """``alert`` is firing at ``at`` with exactly these label sets (none: silent)."""
    return {
        "eval_time": at,
        "alertname": alert,
        "exp_alerts": [{"exp_labels": dict(lbl)} for lbl in labels],
    }


def severity(alert: str) -> str:
    (rule,) = [r for g in rule_groups() for r in g["rules"] if r["alert"] == alert]
    return str(rule["labels"]["severity"])


def alert_labels(alert: str, **labels: str) -> dict[str, str]:
    """The labels of a firing ``alert``: its own severity and ``labels``."""
    return {"severity": severity(alert), **labels}


# Two operators scraped by jobs that are not the chart's Service name.
A = 'namespace="team-a", job="kubernetes-pods", instance="10.0.0.1:8080"'
B = 'namespace="team-b", job="bgj-podmonitor", instance="10.0.0.2:8080"'
# Their second replicas (team-b's with a new address after a restart).
A2 = 'namespace="team-a", job="kubernetes-pods", instance="10.0.0.5:8080"'
B2_OLD = 'namespace="team-b", job="bgj-podmonitor", instance="10.0.0.3:8080"'
B2_NEW = 'namespace="team-b", job="bgj-podmonitor", instance="10.0.0.4:8080"'


def test_the_alerts_are_those_tested_here() -> None:
    """A new alert fails this until it is added to ALERTS, with its tests below."""
    assert {r["alert"] for g in rule_groups() for r in g["rules"]} == ALERTS


def test_failure_ratio_fires_per_namespace_and_queue(tmp_path: Path) -> None:
    alert = "BackgroundJobsFailureRatioHigh"
    finished = "backgroundjobs_jobs_finished_total"
    series = [
        # team-a, queue default: half the runs fail
        (f'{finished}{{{A}, type="immediate", queue="default", outcome="failed"}}', "0+1x60"),
        (f'{finished}{{{A}, type="immediate", queue="default", outcome="succeeded"}}', "0+1x60"),
        # team-a, queue low: 2 failures only (at least 3 are needed), none succeeded
        (f'{finished}{{{A}, type="immediate", queue="low", outcome="failed"}}', "0 1 2x60"),
        # team-b, queue default: 1 run in 30 fails, under the 10% threshold
        (f'{finished}{{{B}, type="immediate", queue="default", outcome="failed"}}', "0+1x60"),
        (f'{finished}{{{B}, type="immediate", queue="default", outcome="succeeded"}}', "0+29x60"),
    ]
    promtool_test(tmp_path, series, [
        fires(alert, "5m"),  # pending: for 10m
        fires(alert, "30m", alert_labels(alert, namespace="team-a", queue="default")),
    ])  # fmt: skip


def test_failure_ratio_without_namespace_or_job_label(tmp_path: Path) -> None:
    """A static scrape config: no namespace label; the alert still fires, by queue."""
    alert = "BackgroundJobsFailureRatioHigh"
    base = 'backgroundjobs_jobs_finished_total{job="static", type="delayed", queue="q"'
    series = [
        (f'{base}, outcome="failed"}}', "0+2x60"),
        (f'{base}, outcome="succeeded"}}', "0+1x60"),
    ]
    promtool_test(
        tmp_path, series, [fires(alert, "30m", {"severity": severity(alert), "queue": "q"})]
    )


def test_lateness_fires_on_late_starts_only(tmp_path: Path) -> None:
    alert = "BackgroundJobsStartLatenessHigh"
    bucket = "backgroundjobs_start_lateness_seconds_bucket"
    series = []
    for le in ("1", "30", "60", "+Inf"):
        # team-a Delayed: every start 45s late; team-b Delayed: every start under a second
        series.append((f'{bucket}{{{A}, type="delayed", le="{le}"}}',
                       "0x60" if le in ("1", "30") else "0+5x60"))  # fmt: skip
        series.append((f'{bucket}{{{B}, type="delayed", le="{le}"}}', "0+5x60"))
    promtool_test(tmp_path, series, [
        fires(alert, "5m"),
        fires(alert, "30m", alert_labels(alert, namespace="team-a", type="delayed")),
    ])  # fmt: skip


def test_reconcile_errors_fire_on_api_errors_not_on_invalid_specs(tmp_path: Path) -> None:
    alert = "BackgroundJobsReconcileErrors"
    errors = "backgroundjobs_reconcile_errors_total"
    series = [
        (f'{errors}{{{A}, reason="api403"}}', "0+12x60"),  # 0.2/s
        (f'{errors}{{{B}, reason="invalid_spec"}}', "0+60x60"),  # a user's bad manifests
        (f'{errors}{{{B}, reason="api409"}}', "0+1x60"),  # now and then: retried, fine
    ]
    promtool_test(tmp_path, series, [
        fires(alert, "10m"),  # pending: for 15m
        fires(alert, "40m", alert_labels(alert, namespace="team-a", reason="api403")),
    ])  # fmt: skip


def test_operator_down_fires_for_the_namespace_whose_operator_went(tmp_path: Path) -> None:
    alert = "BackgroundJobsOperatorDown"
    info = "backgroundjobs_build_info"
    series = [
        (f'{info}{{{A}, version="0.1.0"}}', "1x20"),  # gone after 20m
        (f'{info}{{{B}, version="0.1.0"}}', "1x90"),
        # team-b's second replica restarts with a new address: the operator never went
        (f'{info}{{{B2_OLD}, version="0.1.0"}}', "1x30"),
        (f'{info}{{{B2_NEW}, version="0.1.0"}}', "_x30 1x60"),
    ]  # fmt: skip
    promtool_test(tmp_path, series, [
        fires(alert, "15m"),
        fires(alert, "45m", alert_labels(alert, namespace="team-a")),
    ])  # fmt: skip


def test_operator_down_fires_when_nothing_is_scraped(tmp_path: Path) -> None:
    alert = "BackgroundJobsOperatorDown"
    other = [('up{job="something-else", instance="x"}', "1x30")]
    promtool_test(tmp_path, other, [fires(alert, "10m", alert_labels(alert))])


def test_operator_down_with_a_selector_watches_its_operator_only(tmp_path: Path) -> None:
    alert = "BackgroundJobsOperatorDown"
    series = [(f'backgroundjobs_build_info{{{B}, version="0.1.0"}}', "1x30")]
    sel = ["--set-string", 'prometheusRule.selector=namespace="team-a"']
    promtool_test(tmp_path, series, [fires(alert, "10m", alert_labels(alert, namespace="team-a"))],
                  *sel)  # fmt: skip
    sel_b = ["--set-string", 'prometheusRule.selector=namespace="team-b"']
    promtool_test(tmp_path, series, [fires(alert, "10m")], *sel_b)


def test_no_leader_fires_when_every_replica_stands_by(tmp_path: Path) -> None:
    alert = "BackgroundJobsNoLeader"
    leader = "backgroundjobs_leader"
    series = [
        # team-a: the leader stops leading at 10m and nobody takes over
        (f'{leader}{{{A}}}', "1x10 0x50"),
        (f'{leader}{{{A2}}}', "0x60"),
        # team-b: a hand-over, one minute without a leader
        (f'{leader}{{{B}}}', "1x10 0x50"),
        (f'{leader}{{{B2_OLD}}}', "0x11 1x49"),
    ]  # fmt: skip
    promtool_test(tmp_path, series, [
        fires(alert, "11m"),
        fires(alert, "20m", alert_labels(alert, namespace="team-a")),
    ])  # fmt: skip


def test_recurring_run_missed_fires_while_a_run_is_overdue(tmp_path: Path) -> None:
    alert = "BackgroundJobsRecurringRunMissed"
    overdue = "backgroundjobs_recurring_overdue_seconds"
    series = [
        # team-a, queue default: a run due at 10m never starts; the next one (at 30m) does
        (f'{overdue}{{{A}, queue="default"}}', "0x10 60+60x19 0x30"),
        # team-b: runs start within a minute of their time
        (f'{overdue}{{{B}, queue="default"}}', "0 30 0 30 0 30 0 30 0 30 0 30 0 30 0x46"),
    ]
    promtool_test(tmp_path, series, [
        fires(alert, "13m"),  # 240s overdue: not yet
        fires(alert, "20m", alert_labels(alert, namespace="team-a", queue="default")),
        fires(alert, "40m"),  # the next run started
    ])  # fmt: skip
